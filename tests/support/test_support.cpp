// SPDX-License-Identifier: BSD-2-Clause
#include "support/test_support.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "archive/frames.h"
#include "archive/index_codec.h"

namespace mmar::test {

TempDir::TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp != nullptr ? tmp : "/tmp") + "/mmar-test-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  // Make everything writable first: tests create read-only directories.
  nftw(
      path_.c_str(),
      [](const char* p, const struct stat* st, int type, struct FTW*) {
        if (type == FTW_D || type == FTW_DP) chmod(p, (st->st_mode & 07777) | 0700);
        return 0;
      },
      64, FTW_PHYS);
  nftw(
      path_.c_str(), [](const char* p, const struct stat*, int, struct FTW*) { return remove(p); }, 64,
      FTW_DEPTH | FTW_PHYS);
}

std::vector<std::byte> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return to_bytes(s);
}

void write_file(const std::string& path, const std::vector<std::byte>& data, uint32_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw std::runtime_error("cannot write " + path);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0) throw std::runtime_error("write failed " + path);
    done += static_cast<size_t>(n);
  }
  ::fchmod(fd, mode);
  ::close(fd);
}

std::vector<std::byte> to_bytes(std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}

std::vector<std::byte> text_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  static const char* words[] = {"frame ", "stream ", "table ", "archive ", "member ", "offset ", "zstd ", "\n"};
  std::string s;
  while (s.size() < n) s += words[rng() % 8];
  s.resize(n);
  return to_bytes(s);
}

std::vector<std::string> make_random_tree(const std::string& root, const TreeSpec& spec) {
  std::mt19937_64 rng(spec.seed);
  std::vector<std::string> made;
  std::vector<std::string> dirs = {""};
  const std::string odd[] = {"plain",     "with space", "ünïcödé",
                             "-dash",     "#hash",      "a.b.c",
                             "UPPER",     "x",          "very_long_name_" + std::string(150, 'n'),
                             "tab\tname", "quote'\"",   "semi;colon"};
  auto pick_name = [&](int i) { return odd[rng() % (sizeof odd / sizeof odd[0])] + "_" + std::to_string(i); };
  // Directories, some deep.
  for (int i = 0; i < spec.files / 6 + 1; ++i) {
    std::string parent = dirs[rng() % dirs.size()];
    int depth = static_cast<int>(std::count(parent.begin(), parent.end(), '/'));
    if (depth >= spec.max_depth) parent = "";
    std::string rel = (parent.empty() ? "" : parent + "/") + pick_name(i);
    ::mkdir((root + "/" + rel).c_str(), i % 7 == 0 ? 0750 : 0755);
    dirs.push_back(rel);
    made.push_back(rel);
  }
  // One deep chain.
  std::string chain;
  for (int d = 0; d < spec.max_depth; ++d) {
    chain += (chain.empty() ? "" : "/") + std::string("deep") + std::to_string(d);
    ::mkdir((root + "/" + chain).c_str(), 0755);
    made.push_back(chain);
  }
  dirs.push_back(chain);
  auto content = [&](uint64_t size) {
    std::vector<std::byte> data(size);
    int style = static_cast<int>(rng() % 3);
    if (style == 0) {
      for (auto& b : data) b = static_cast<std::byte>(rng());
    } else if (style == 1) {
      static const char words[] = "the quick brown fox jumps over the lazy dog 0123456789\n";
      for (size_t j = 0; j < size; ++j) data[j] = static_cast<std::byte>(words[(j + rng() % 3) % (sizeof words - 1)]);
    }  // style 2: zeros
    return data;
  };
  for (int i = 0; i < spec.files; ++i) {
    std::string dir = dirs[rng() % dirs.size()];
    std::string rel = (dir.empty() ? "" : dir + "/") + "f" + pick_name(i);
    uint64_t size;
    switch (rng() % 6) {
      case 0: size = 0; break;
      case 1: size = rng() % 64; break;
      case 2: size = 4090 + rng() % 12; break;  // around the default threshold
      default: size = rng() % (spec.max_size + 1);
    }
    write_file(root + "/" + rel, content(size), i % 5 == 0 ? 0755 : (i % 11 == 0 ? 0600 : 0644));
    struct timespec ts[2] = {
        {static_cast<time_t>(1600000000 + rng() % 100000000), static_cast<long>(rng() % 1000000000)}, {0, 0}};
    ts[1] = ts[0];
    ::utimensat(AT_FDCWD, (root + "/" + rel).c_str(), ts, 0);
    made.push_back(rel);
  }
  if (spec.big_size != 0) {
    std::string rel = "big.bin";
    std::vector<std::byte> data = content(spec.big_size);
    // Half compressible, half not.
    for (size_t j = 0; j < data.size() / 2; ++j) data[j] = static_cast<std::byte>(j % 251);
    write_file(root + "/" + rel, data);
    made.push_back(rel);
  }
  if (spec.symlinks) {
    for (int i = 0; i < 8; ++i) {
      std::string dir = dirs[rng() % dirs.size()];
      std::string rel = (dir.empty() ? "" : dir + "/") + "link" + std::to_string(i);
      std::string target = i % 2 == 0 ? "../somewhere/" + std::to_string(i) : "/absolute/target";
      if (::symlink(target.c_str(), (root + "/" + rel).c_str()) == 0) made.push_back(rel);
    }
  }
  return made;
}

std::vector<std::byte> archive_tree(const std::string& dir, const std::string& out, const WriteOptions& o) {
  Writer w(o);
  auto r = w.add_tree("", dir);
  if (!r.ok()) throw std::runtime_error(r.error().message());
  auto s = w.write(out);
  if (!s.ok()) throw std::runtime_error(s.error().message());
  return read_file(out);
}

std::vector<std::byte> inflated_index(std::span<const std::byte> a) {
  const auto sb = load<format::Superblock>(a.data());
  const uint64_t off = sb.sb_index_offset;
  if ((sb.sb_flags & format::kSbFlagIndexFramed) == 0) {
    return {a.begin() + static_cast<ptrdiff_t>(off), a.begin() + static_cast<ptrdiff_t>(off + sb.sb_index_size)};
  }
  auto plain = frames::inflate_stream(a.subspan(off, sb.sb_index_size), uint64_t{1} << 32, "index", off);
  if (!plain.ok()) throw std::runtime_error(plain.error().message());
  const uint64_t table = uint64_t{sb.sb_member_count} * format::kEntrySize;
  if (table > plain->size()) throw std::runtime_error("inflated_index: more members than the index holds");
  if ((sb.sb_flags & format::kSbFlagIndexPredicted) != 0) {
    index_codec::unpredict_offsets(std::span<std::byte>(plain->data(), static_cast<size_t>(table)), 0);
  }
  return std::move(*plain);
}

void plain_index(std::vector<std::byte>& a) {
  auto sb = load<format::Superblock>(a.data());
  if ((sb.sb_flags & format::kSbFlagIndexFramed) == 0) return;
  const uint64_t off = sb.sb_index_offset;
  if (off + sb.sb_index_size != a.size()) throw std::runtime_error("plain_index: the index is not last in the file");
  const std::vector<std::byte> plain = inflated_index(a);
  a.resize(off);
  a.insert(a.end(), plain.begin(), plain.end());
  sb.sb_flags = sb.sb_flags & ~(format::kSbFlagIndexFramed | format::kSbFlagIndexPredicted);
  sb.sb_index_size = plain.size();
  std::memcpy(a.data(), &sb, sizeof sb);
  reseal(a);
}

void reseal(std::vector<std::byte>& a) {
  auto sb = load<format::Superblock>(a.data());
  if ((sb.sb_flags & format::kSbFlagIndexFramed) != 0) {
    throw std::runtime_error("reseal patches a plain index: call plain_index first");
  }
  uint64_t off = sb.sb_index_offset;
  uint64_t size = sb.sb_index_size;
  if (off <= a.size() && size <= a.size() - off) sb.sb_index_xxh3 = XXH3_64bits(a.data() + off, size);
  sb.sb_xxh3 = XXH3_64bits(&sb, offsetof(format::Superblock, sb_xxh3));
  std::memcpy(a.data(), &sb, sizeof sb);
  std::memcpy(a.data() + format::kSuperblockSize, &sb, sizeof sb);
}

void patch_entry(std::vector<std::byte>& a, uint32_t i, const std::function<void(format::Entry&)>& fn) {
  plain_index(a);
  auto sb = load<format::Superblock>(a.data());
  uint64_t off = sb.sb_index_offset + uint64_t{i} * format::kEntrySize;
  auto e = load<format::Entry>(a.data() + off);
  fn(e);
  std::memcpy(a.data() + off, &e, sizeof e);
  reseal(a);
}

void patch_superblock(std::vector<std::byte>& a, const std::function<void(format::Superblock&)>& fn) {
  auto sb = load<format::Superblock>(a.data());
  fn(sb);
  sb.sb_xxh3 = XXH3_64bits(&sb, offsetof(format::Superblock, sb_xxh3));
  std::memcpy(a.data(), &sb, sizeof sb);
  std::memcpy(a.data() + format::kSuperblockSize, &sb, sizeof sb);
}

namespace {

struct Node {
  uint32_t mode = 0;
  uint64_t size = 0;
  int64_t mtime = 0;
  std::string link;
  uint64_t hash = 0;
};

std::map<std::string, Node> scan(const std::string& root) {
  std::map<std::string, Node> out;
  std::vector<std::string> stack = {""};
  while (!stack.empty()) {
    std::string rel = stack.back();
    stack.pop_back();
    std::string full = rel.empty() ? root : root + "/" + rel;
    DIR* d = opendir(full.c_str());
    if (d == nullptr) continue;
    while (auto* ent = readdir(d)) {
      std::string n = ent->d_name;
      if (n == "." || n == "..") continue;
      std::string child = rel.empty() ? n : rel + "/" + n;
      std::string path = root + "/" + child;
      struct stat st {};
      lstat(path.c_str(), &st);
      Node node;
      node.mode = st.st_mode;
      if (S_ISREG(st.st_mode)) {
        node.size = static_cast<uint64_t>(st.st_size);
        node.mtime = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        auto data = read_file(path);
        node.hash = XXH3_64bits(data.data(), data.size());
      } else if (S_ISLNK(st.st_mode)) {
        char buf[4096];
        ssize_t k = readlink(path.c_str(), buf, sizeof buf);
        node.link.assign(buf, k > 0 ? static_cast<size_t>(k) : 0);
      } else if (S_ISDIR(st.st_mode)) {
        stack.push_back(child);
      }
      out[child] = node;
    }
    closedir(d);
  }
  return out;
}

}  // namespace

std::string diff_trees(const std::string& a, const std::string& b) {
  auto x = scan(a);
  auto y = scan(b);
  for (const auto& [name, n] : x) {
    auto it = y.find(name);
    if (it == y.end()) return "missing in " + b + ": " + name;
    const Node& m = it->second;
    if (n.mode != m.mode) return "mode differs: " + name;
    if (n.size != m.size || n.hash != m.hash) return "contents differ: " + name;
    if (n.mtime != m.mtime) return "mtime differs: " + name;
    if (n.link != m.link) return "symlink target differs: " + name;
  }
  for (const auto& [name, n] : y) {
    if (x.count(name) == 0) return "extra in " + b + ": " + name;
  }
  return "";
}

int run(const std::string& command, std::string* out) {
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return -1;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  int status = pclose(p);
  if (out != nullptr) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

namespace {

std::string slurp_fd(int fd) {
  std::string text;
  char buf[4096];
  ::lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return text;
}

}  // namespace

// The peak resident set of the program a child runs is VmHWM of its memory
// map at exit. Not ru_maxrss: Linux folds the pre-exec image (a fork of this
// large test process) into the process's ru_maxrss at execve. So the child
// is traced (PTRACE_TRACEME) and stopped at exit (PTRACE_O_TRACEEXIT), while
// /proc/PID/status still describes the program's own memory.
long vm_hwm_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

long rss_limit_kib(const std::string& program, long extra_kib) {
  static std::mutex mu;
  static std::map<std::string, long> idle;
  std::lock_guard lock(mu);
  auto it = idle.find(program);
  if (it == idle.end()) it = idle.emplace(program, run_child({program, "--version"}).max_rss_kib).first;
  return it->second + extra_kib;
}

ChildRun run_child(const std::vector<std::string>& argv, const std::function<void(int fd)>& feed) {
  ChildRun r;
  const int out = memfd_create("child-out", MFD_CLOEXEC);
  const int err = memfd_create("child-err", MFD_CLOEXEC);
  int in[2] = {-1, -1};
  if (out < 0 || err < 0) throw std::runtime_error("memfd_create failed");
  if (feed) {
    if (pipe2(in, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  } else {
    in[0] = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // LeakSanitizer cannot run under ptrace (it aborts the child): the child
  // of a sanitizer build runs without it; leaks are the tests' own job.
  std::vector<std::string> env_s;
  std::string asan = "ASAN_OPTIONS=detect_leaks=0";
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "ASAN_OPTIONS=", 13) == 0) {
      asan = std::string(*e) + ":detect_leaks=0";
    } else {
      env_s.emplace_back(*e);
    }
  }
  env_s.push_back(asan);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out, 1);
    dup2(err, 2);
    ptrace(PTRACE_TRACEME, 0, nullptr, nullptr);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  ::close(in[0]);
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, &old);
  std::thread feeder;
  if (feed) {
    feeder = std::thread([&, fd = in[1]] {
      feed(fd);
      ::close(fd);
    });
  }
  int status = 0;
  struct rusage ru {};
  bool first_stop = true;
  for (;;) {
    if (wait4(pid, &status, 0, &ru) != pid) throw std::runtime_error("wait4 failed");
    if (WIFEXITED(status) || WIFSIGNALED(status)) break;
    if (!WIFSTOPPED(status)) continue;
    int deliver = 0;
    if (first_stop && WSTOPSIG(status) == SIGTRAP) {  // stopped after execve
      ptrace(PTRACE_SETOPTIONS, pid, nullptr, PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL);
    } else if ((status >> 8) == (SIGTRAP | (PTRACE_EVENT_EXIT << 8))) {
      r.max_rss_kib = vm_hwm_kib(pid);
    } else {
      deliver = WSTOPSIG(status);
    }
    first_stop = false;
    ptrace(PTRACE_CONT, pid, nullptr, reinterpret_cast<void*>(static_cast<intptr_t>(deliver)));
  }
  if (feeder.joinable()) feeder.join();
  sigaction(SIGPIPE, &old, nullptr);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp_fd(out);
  r.err = slurp_fd(err);
  return r;
}

}  // namespace mmar::test
