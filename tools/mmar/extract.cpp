// SPDX-License-Identifier: BSD-2-Clause
// mmar extract: write members below a target directory, safely.
//
// Every path is resolved component by component with openat(O_NOFOLLOW)
// from the target directory's fd, so neither "..", absolute names, nor a
// symlink extracted earlier (or planted beforehand) can lead a write outside
// the target. Directory modes and mtimes are applied last, deepest first, so
// a read-only directory does not block its own contents.
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>
#include <chrono>
#include <atomic>
#include <deque>
#include <map>
#include <optional>
#include <vector>

#include "cli.h"
#include "verbs.h"

namespace mmar::cli {

namespace {

const Verb kExtract{"extract",
                    "[-f] ARCHIVE [-C DIR] [NAME...]",
                    "Extract all members (or the NAMEs given, with everything below them) into DIR\n"
                    "(default: the current directory), restoring modes, mtimes, symlinks, hard links,\n"
                    "device nodes, FIFOs, extended attributes and, as root, owners (tar's habits).\n"
                    "Names that would escape DIR are refused. Each member's XXH3 checksum is checked\n"
                    "before its file is created: a damaged member is reported and not written. Setuid and\n"
                    "setgid bits are kept only with the owner they were recorded with (or with -p).",
                    {
                        {"file", 'f', true, "ARCHIVE", "archive to read ('-' for standard input)"},
                        {"directory", 'C', true, "DIR", "extract below DIR (created if missing)"},
                        {"verbose", 'v', false, "", "print each name as it is extracted"},
                        {"same-permissions", 'p', false, "",
                         "keep setuid and setgid bits even without their owner (they would belong to whoever "
                         "extracts)"},
                        {"same-owner", 0, false, "", "restore owners (the default as root)"},
                        {"no-same-owner", 0, false, "", "leave files to whoever extracts (the default as a user)"},
                        {"numeric-owner", 0, false, "", "restore owners by number, not by the names recorded"},
                        {"no-xattrs", 0, false, "", "do not restore extended attributes"},
                        {"strip-components", 0, true, "N", "drop the first N components of each name (shorter names are skipped)"},
                        {"keep-old-files", 'k', false, "", "never replace an existing file: report it as an error"},
                        {"skip-old-files", 0, false, "", "never replace an existing file: skip it silently"},
                        {"pread", 0, false, "", "read with pread instead of mmap"},
                        {"plain", 0, false, "", "open any file as a one-member archive (else only ELF, BTF, CTF objects)"},
                        {"no-verify", 0, false, "", "skip the XXH3 check of each member (salvage a damaged archive)"},
                    }};

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::vector<std::string_view> split(std::string_view name) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    parts.push_back(name.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

// Open (creating as needed) the directory holding the last component of
// `parts`, never following a symlink. Returns an fd or an error message.
Result<int> open_parent(int root, const std::vector<std::string_view>& parts, const std::string& name) {
  int cur = ::dup(root);
  if (cur < 0) return sys_error("dup", errno);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    std::string comp(parts[i]);
    int next = ::openat(cur, comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT) {
      if (::mkdirat(cur, comp.c_str(), 0755) != 0 && errno != EEXIST) {
        int e = errno;
        ::close(cur);
        return sys_error("mkdir for '" + name + "'", e);
      }
      next = ::openat(cur, comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (next < 0) {
      int e = errno;
      ::close(cur);
      if (e == ELOOP || e == ENOTDIR) {
        return Error(Errc::invalid_argument, "refusing to extract '" + name + "': '" + std::string(parts[i]) +
                                                 "' is not a directory (symlink?)");
      }
      return sys_error("open directory for '" + name + "'", e);
    }
    ::close(cur);
    cur = next;
  }
  return cur;
}

struct timespec to_timespec(int64_t ns) {
  struct timespec ts {};
  ts.tv_sec = static_cast<time_t>(ns / 1000000000);
  ts.tv_nsec = static_cast<long>(ns % 1000000000);
  if (ts.tv_nsec < 0) {
    ts.tv_nsec += 1000000000;
    ts.tv_sec -= 1;
  }
  return ts;
}

// Remove whatever non-directory is at leaf so the new member can take its place.
Result<void> clear_leaf(int parent, const std::string& leaf, const std::string& name, bool want_dir) {
  struct stat st {};
  if (::fstatat(parent, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return success();
  if (S_ISDIR(st.st_mode)) {
    if (want_dir) return success();
    return Error(Errc::invalid_argument, "cannot replace directory '" + name + "' with a non-directory");
  }
  if (::unlinkat(parent, leaf.c_str(), 0) != 0) return sys_error("unlink '" + name + "'", errno);
  return success();
}

// How members are restored beyond their bytes.
struct RestoreOptions {
  enum class Existing { replace, keep, skip } existing = Existing::replace;  // -k, --skip-old-files
  bool same_permissions = false;  // -p: setuid/setgid bits even without their owner
  bool same_owner = false;        // chown to the recorded owner (root's default)
  bool numeric_owner = false;     // by number, not by the names recorded
  bool xattrs = true;
  std::map<std::string, uid_t> users;  // name lookups, once each
  std::map<std::string, gid_t> groups;
};

// The permission bits to give an extracted file or directory: a
// setuid/setgid bit makes the file run as whoever owns it, so it is kept
// only with the owner it was recorded with (or on request).
mode_t extracted_mode(const Member& m, const RestoreOptions& o) {
  const mode_t mode = m.mode & 07777;
  return o.same_permissions || (o.same_owner && m.has_owner) ? mode : mode & ~mode_t{06000};
}

// The uid/gid to give a member: by the names recorded where this system
// knows them (tar's default), else by the numbers.
std::pair<uid_t, gid_t> owner_for(const Attributes& at, RestoreOptions& o) {
  uid_t uid = at.uid;
  gid_t gid = at.gid;
  if (!o.numeric_owner && !at.uname.empty()) {
    auto it = o.users.find(at.uname);
    if (it == o.users.end()) {
      std::vector<char> buf(16384);
      struct passwd pw {}, *res = nullptr;
      const uid_t found = getpwnam_r(at.uname.c_str(), &pw, buf.data(), buf.size(), &res) == 0 && res != nullptr
                              ? res->pw_uid
                              : static_cast<uid_t>(-1);
      it = o.users.emplace(at.uname, found).first;
    }
    if (it->second != static_cast<uid_t>(-1)) uid = it->second;
  }
  if (!o.numeric_owner && !at.gname.empty()) {
    auto it = o.groups.find(at.gname);
    if (it == o.groups.end()) {
      std::vector<char> buf(16384);
      struct group gr {}, *res = nullptr;
      const gid_t found = getgrnam_r(at.gname.c_str(), &gr, buf.data(), buf.size(), &res) == 0 && res != nullptr
                              ? res->gr_gid
                              : static_cast<gid_t>(-1);
      it = o.groups.emplace(at.gname, found).first;
    }
    if (it->second != static_cast<gid_t>(-1)) gid = it->second;
  }
  return {uid, gid};
}

// Owner, then extended attributes (chown clears security.capability, so
// they come after it), of the member just created as `leaf` in `parent`
// (or open as `fd`, when >= 0). The mode is set after this by the caller.
Result<void> restore_attributes(const Archive& a, const Member& m, int parent, const std::string& leaf, int fd,
                                RestoreOptions& o) {
  if (m.attr_bytes.empty()) return success();
  MMAR_ASSIGN(Attributes at, a.attributes(m));
  const std::string name(m.name);
  if (o.same_owner && at.has_owner) {
    auto [uid, gid] = owner_for(at, o);
    const int r = fd >= 0 ? ::fchown(fd, uid, gid) : ::fchownat(parent, leaf.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW);
    if (r != 0) return sys_error("chown '" + name + "'", errno);
  }
  if (o.xattrs) {
    // A symlink's own attributes: through its parent's fd (no path walk).
    // File capabilities are privileges, as setuid bits are: restored only
    // with the owner they were recorded with (or with -p).
    const bool privileges = o.same_permissions || (o.same_owner && at.has_owner);
    const std::string via = "/proc/self/fd/" + std::to_string(parent) + "/" + leaf;
    std::optional<Error> first_error;
    for (const auto& [xn, xv] : at.xattrs) {
      if (xn == "security.capability" && !privileges) continue;
      const int r = fd >= 0 ? ::fsetxattr(fd, xn.c_str(), xv.data(), xv.size(), 0)
                            : ::lsetxattr(via.c_str(), xn.c_str(), xv.data(), xv.size(), 0);
      // One that cannot be set (another filesystem, no privilege) is an
      // error, after the others, the mode and the time are set.
      if (r != 0 && !first_error) first_error = sys_error("set extended attribute " + xn + " of '" + name + "'", errno);
    }
    if (first_error) return std::move(*first_error);
  }
  return success();
}

// The directories on the path to the last member, kept open: members are
// sorted, so a directory's files and subdirectories come together and each
// directory is opened once, not walked from the root per file. Each was
// opened as open_parent opens (no symlinks followed, created when missing),
// and a directory is never replaced by a non-directory (clear_leaf refuses),
// so reusing them is as safe as walking again.
struct DirStack {
  int root = -1;
  std::vector<std::pair<std::string, int>> open;  // components from the root, each with its fd
  DirStack() = default;
  DirStack(const DirStack&) = delete;
  DirStack& operator=(const DirStack&) = delete;
  ~DirStack() {
    truncate(0);
    if (deep >= 0) ::close(deep);
  }
  void truncate(size_t n) {
    while (open.size() > n) {
      ::close(open.back().second);
      open.pop_back();
    }
  }
  // Deeper paths (a hostile name may have 2,048 components) are walked
  // from the root each time, in one fd: the stack never holds more than
  // this many.
  static constexpr size_t kMaxKept = 64;
  int deep = -1;
  // The directory holding the last of `parts`.
  Result<int> parent_of(const std::vector<std::string_view>& parts, const std::string& name) {
    if (deep >= 0) {
      ::close(deep);
      deep = -1;
    }
    const size_t want = parts.size() - 1;
    if (want > kMaxKept) {
      MMAR_ASSIGN(deep, open_parent(root, parts, name));
      return deep;
    }
    size_t common = 0;
    while (common < open.size() && common < want && open[common].first == parts[common]) ++common;
    truncate(common);
    for (size_t i = common; i < want; ++i) {
      const int at = i == 0 ? root : open.back().second;
      std::vector<std::string_view> one = {parts[i], std::string_view()};
      MMAR_ASSIGN(int fd, open_parent(at, one, name));  // opens (creating) parts[i] below `at`
      open.emplace_back(std::string(parts[i]), fd);
    }
    return open.empty() ? root : open.back().second;
  }
};

class Inflater;
void note_written(Inflater* inflater, uint64_t n);

// Hard links: the first extracted name of each link id.
using LinkFirst = std::map<uint64_t, std::string>;

Result<void> extract_one(const Archive& a, const Member& m, RestoreOptions& o, DirStack& dirs, Inflater* inflater,
                         LinkFirst& links, int root) {
  const std::string name(m.name);
  auto parts = split(m.name);
  MMAR_ASSIGN(int parent_fd, dirs.parent_of(parts, name));
  struct Borrowed {
    int fd;
  } parent{parent_fd};
  const std::string leaf(parts.back());
  const struct timespec times[2] = {to_timespec(m.mtime_ns), to_timespec(m.mtime_ns)};
  if (o.existing != RestoreOptions::Existing::replace && !m.is_dir()) {
    struct stat there {};
    if (::fstatat(parent.fd, leaf.c_str(), &there, AT_SYMLINK_NOFOLLOW) == 0) {
      if (o.existing == RestoreOptions::Existing::skip) return success();
      return Error(Errc::invalid_argument, "'" + name + "' exists already; not replaced (--keep-old-files)");
    }
  }
  if (m.is_dir()) {
    MMAR_TRY(clear_leaf(parent.fd, leaf, name, true));
    if (::mkdirat(parent.fd, leaf.c_str(), 0700) != 0 && errno != EEXIST)
      return sys_error("mkdir '" + name + "'", errno);
    return success();  // mode and mtime applied at the end
  }
  if (m.is_symlink()) {
    MMAR_TRY(clear_leaf(parent.fd, leaf, name, false));
    MMAR_ASSIGN(Bytes bytes, a.read(m));
    std::string target(bytes.str());
    if (target.empty() || target.find('\0') != std::string::npos) {
      return Error(Errc::malformed, "symlink '" + name + "' has a bad target");
    }
    if (::symlinkat(target.c_str(), parent.fd, leaf.c_str()) != 0) return sys_error("symlink '" + name + "'", errno);
    auto restored = restore_attributes(a, m, parent.fd, leaf, -1, o);
    ::utimensat(parent.fd, leaf.c_str(), times, AT_SYMLINK_NOFOLLOW);
    return restored;
  }
  // A hard link of a file extracted before: linked to it, through its own
  // parent opened as every parent is (no symlink followed).
  if (m.link_id != 0) {
    auto first = links.find(m.link_id);
    if (first != links.end()) {
      auto first_parts = split(first->second);
      MMAR_ASSIGN(int first_parent, open_parent(root, first_parts, first->second));
      Fd fp(first_parent);
      MMAR_TRY(clear_leaf(parent.fd, leaf, name, false));
      if (::linkat(fp.fd, std::string(first_parts.back()).c_str(), parent.fd, leaf.c_str(), 0) != 0) {
        return sys_error("link '" + name + "' to '" + first->second + "'", errno);
      }
      return success();
    }
    links.emplace(m.link_id, name);
  }
  const uint32_t type = m.mode & S_IFMT;
  if (type == S_IFCHR || type == S_IFBLK || type == S_IFIFO || type == S_IFSOCK) {
    MMAR_TRY(clear_leaf(parent.fd, leaf, name, false));
    const dev_t dev = makedev(m.rdev_major, m.rdev_minor);
    if (::mknodat(parent.fd, leaf.c_str(), type | 0600, dev) != 0) return sys_error("mknod '" + name + "'", errno);
    auto restored = restore_attributes(a, m, parent.fd, leaf, -1, o);
    // NOFOLLOW: the node just made, never what a symlink swapped in for it leads to.
    if (::fchmodat(parent.fd, leaf.c_str(), extracted_mode(m, o), AT_SYMLINK_NOFOLLOW) != 0) {
      return sys_error("chmod '" + name + "'", errno);
    }
    ::utimensat(parent.fd, leaf.c_str(), times, AT_SYMLINK_NOFOLLOW);
    return restored;
  }
  constexpr int kCreate = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  Fd out(::openat(parent.fd, leaf.c_str(), kCreate, 0600));
  if (out.fd < 0 && errno == EEXIST) {
    // Something is there already: replace it (never a directory).
    MMAR_TRY(clear_leaf(parent.fd, leaf, name, false));
    out.fd = ::openat(parent.fd, leaf.c_str(), kCreate, 0600);
  }
  if (out.fd < 0) return sys_error("create '" + name + "'", errno);
  // Streamed (memory independent of the member's size); a member whose
  // frames or checksum turn out bad is not left behind half written.
  Result<void> wrote = stream_member(a, m, [&](const std::byte* data, size_t n) -> Result<void> {
    if (!write_all(out.fd, data, n)) return sys_error("write '" + name + "'", errno);
    note_written(inflater, n);
    return success();
  });
  if (!wrote.ok()) {
    ::unlinkat(parent.fd, leaf.c_str(), 0);
    return wrote;
  }
  auto restored = restore_attributes(a, m, parent.fd, leaf, out.fd, o);
  if (::fchmod(out.fd, extracted_mode(m, o)) != 0) return sys_error("chmod '" + name + "'", errno);
  ::futimens(out.fd, times);
  return restored;
}

Result<void> finish_dir(const Archive& a, const Member& m, int root, RestoreOptions& o) {
  const std::string name(m.name);
  auto parts = split(m.name);
  MMAR_ASSIGN(int parent_fd, open_parent(root, parts, name));
  Fd parent(parent_fd);
  const std::string leaf(parts.back());
  Fd dir(::openat(parent.fd, leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (dir.fd < 0) return sys_error("open '" + name + "'", errno);
  auto restored = restore_attributes(a, m, parent.fd, leaf, dir.fd, o);
  if (::fchmod(dir.fd, extracted_mode(m, o)) != 0) return sys_error("chmod '" + name + "'", errno);
  const struct timespec times[2] = {to_timespec(m.mtime_ns), to_timespec(m.mtime_ns)};
  ::futimens(dir.fd, times);
  return restored;
}

bool selected(std::string_view name, const std::vector<std::string>& wanted) {
  if (wanted.empty()) return true;
  for (const auto& w : wanted) {
    if (name == w) return true;
    if (name.size() > w.size() && name.substr(0, w.size()) == w && name[w.size()] == '/') return true;
  }
  return false;
}

// Frames inflated ahead of the writer on a second thread (as tar's zstd
// runs beside tar): members in archive order, at most kAhead bytes of them
// beyond what has been written, into the archive's frame cache. A hint
// only: errors are left for the writer to meet.
class Inflater {
 public:
  static constexpr uint64_t kAhead = uint64_t{8} << 20;
  Inflater(const Archive& a, const std::vector<std::string>& wanted)
      : a_(a), wanted_(wanted), thread_([this] { run(); }) {}
  ~Inflater() {
    stop_ = true;
    thread_.join();
  }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  void written(uint64_t n) { written_ += n; }

 private:
  void run() {
    uint64_t ahead = 0;
    auto wait = [&](uint64_t at) {
      while (!stop_ && at > written_.load() + kAhead) std::this_thread::sleep_for(std::chrono::microseconds(200));
    };
    for (uint32_t i = 0; i < a_.size() && !stop_; ++i) {
      auto m = a_.at(i);
      if (!m.ok() || m->is_dir() || !selected(m->name, wanted_)) continue;
      if (m->framed) {
        // Every 4 KiB (the smallest frame): a frame already inflated is a
        // cache hit. Throttled within a member too.
        for (uint64_t off = 0; off < m->size && !stop_; off += 4096) {
          wait(ahead + off);
          (void)a_.read_bytes(*m, off, 1);
        }
      }
      ahead += m->size;
    }
  }
  const Archive& a_;
  const std::vector<std::string>& wanted_;
  std::atomic<uint64_t> written_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

void note_written(Inflater* inflater, uint64_t n) {
  if (inflater != nullptr) inflater->written(n);
}

}  // namespace

int run_extract(int argc, char** argv) {
  Parsed p = parse(kExtract, argc, argv);
  std::string path = archive_path(kExtract, p);
  auto a = open_archive(path, p);
  if (!a.ok()) return fail(a.error());
  const std::string target = p.get("directory", ".");
  for (size_t pos = 1; pos <= target.size(); ++pos) {  // mkdir -p
    if (pos != target.size() && target[pos] != '/') continue;
    std::string prefix = target.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) return fail(sys_error("mkdir " + prefix, errno));
  }
  Fd root(::open(target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (root.fd < 0) return fail(sys_error(target, errno));

  if (p.has("same-owner") && p.has("no-same-owner")) {
    return usage_error("extract", "--same-owner and --no-same-owner contradict each other");
  }
  RestoreOptions restore;
  restore.same_permissions = p.has("same-permissions");
  restore.same_owner = p.has("same-owner") || (::geteuid() == 0 && !p.has("no-same-owner"));
  restore.numeric_owner = p.has("numeric-owner");
  restore.xattrs = !p.has("no-xattrs");
  if (p.has("keep-old-files") && p.has("skip-old-files")) {
    return usage_error("extract", "--keep-old-files and --skip-old-files contradict each other");
  }
  if (p.has("keep-old-files")) restore.existing = RestoreOptions::Existing::keep;
  if (p.has("skip-old-files")) restore.existing = RestoreOptions::Existing::skip;
  size_t strip = 0;
  if (p.has("strip-components")) {
    auto n = parse_size(p.get("strip-components"));
    if (!n || *n > 4096) return usage_error("extract", "bad --strip-components '" + p.get("strip-components") + "'");
    strip = static_cast<size_t>(*n);
  }
  std::deque<std::string> stripped_names;  // what stripped Members' names view
  LinkFirst links;
  std::vector<std::string> wanted;
  for (const auto& n : p.positional) {
    auto norm = normalize_member_name(n);
    if (!norm.ok()) return fail(norm.error());
    wanted.push_back(*norm);
  }
  std::vector<bool> found(wanted.size(), false);
  std::vector<Member> dirs;
  DirStack parents;
  parents.root = root.fd;
  // Frames are cached only when checked: without checks the helper's work
  // would be thrown away.
  std::optional<Inflater> inflater;
  if (!p.has("no-verify")) inflater.emplace(*a, wanted);
  int rc = kExitOk;
  uint64_t total = 0;
  auto count = a->for_each([&](const Member& m) -> Result<void> {
    if (selected(m.name, wanted)) total += m.size;
    return success();
  });
  if (!count.ok()) return fail(count.error());
  Progress progress("extract");
  uint64_t done = 0;
  bool told_leading_slash = false;
  auto r = a->for_each([&](const Member& stored) -> Result<void> {
    // A CTF archive written by ld names its dicts by absolute paths: strip
    // the leading '/' as tar does (and say so once). Every name must then
    // be a plain relative one ("..", "." or empty components refused), what
    // the mmar format's own reader guarantees and a CTF archive does not.
    Member m = stored;
    if (!m.name.empty() && m.name.front() == '/') {
      m.name.remove_prefix(m.name.find_first_not_of('/') == std::string_view::npos ? m.name.size()
                                                                                  : m.name.find_first_not_of('/'));
      if (!told_leading_slash) error("removing leading '/' from member names");
      told_leading_slash = true;
    }
    if (!selected(m.name, wanted)) return success();
    for (size_t i = 0; i < wanted.size(); ++i) {
      if (selected(m.name, {wanted[i]})) found[i] = true;
    }
    if (strip > 0) {  // NAMEs select by the stored names; the files go where the stripped ones say
      std::string_view rest = m.name;
      for (size_t k = 0; k < strip; ++k) {
        const size_t slash = rest.find('/');
        if (slash == std::string_view::npos) {
          rest = {};
          break;
        }
        rest.remove_prefix(slash + 1);
      }
      if (rest.empty()) {
        note_written(inflater ? &*inflater : nullptr, m.size);
        return success();
      }
      m.name = stripped_names.emplace_back(rest);
    }
    if (auto norm = normalize_member_name(m.name); !norm.ok() || *norm != m.name) {
      rc = fail(Error(Errc::invalid_argument,
                      path + ": refusing to extract '" + std::string(stored.name) + "': not a plain relative name"));
      note_written(inflater ? &*inflater : nullptr, m.size);
      return success();
    }
    if (p.has("verbose")) std::printf("%s\n", escape_text(m.name).c_str());
    auto one = extract_one(*a, m, restore, parents, inflater ? &*inflater : nullptr, links, root.fd);
    if (!one.ok()) {
      progress.finish();
      rc = fail(Error(one.error().code(), path + ": " + one.error().message()));
    } else if (m.is_dir()) {
      dirs.push_back(m);
    }
    if (m.is_dir() || m.is_symlink() || !one.ok()) {
      note_written(inflater ? &*inflater : nullptr, m.size);  // what the stream did not count
    }
    done += m.size;
    progress.update(done, total);
    return success();
  });
  progress.finish();
  if (!r.ok()) return fail(r.error());
  // Deepest first, so a parent's mtime is not disturbed by its children.
  std::sort(dirs.begin(), dirs.end(), [](const Member& x, const Member& y) { return x.name > y.name; });
  for (const auto& d : dirs) {
    auto f = finish_dir(*a, d, root.fd, restore);
    if (!f.ok()) rc = fail(f.error());
  }
  for (size_t i = 0; i < wanted.size(); ++i) {
    if (!found[i]) rc = fail(Error(Errc::not_found, path + ": no member named '" + wanted[i] + "'"));
  }
  return rc;
}

}  // namespace mmar::cli
