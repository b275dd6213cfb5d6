// SPDX-License-Identifier: BSD-2-Clause
// Archive writer: one pass over the sorted members, compression on worker
// threads ahead of a single writing thread, atomic commit.
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t on the stack
#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "archive/attrs.h"
#include "archive/chunks.h"
#include "archive/codec.h"
#include "archive/detect.h"
#include "archive/fence.h"
#include "archive/format.h"
#include "archive/frames.h"
#include "archive/index_codec.h"
#include "archive/names.h"
#include "ctf/container.h"
#include "mmar/archive.h"
#include "support/atomic_file.h"
#include "support/checked.h"
#include "support/fd.h"
#include "support/hex.h"

namespace mmar {

namespace {

enum class InputType : uint8_t { file, bytes, dir, symlink, member, special };

struct Input {
  std::string name;
  InputType type = InputType::file;
  std::string path;                                     // file
  std::shared_ptr<const std::vector<std::byte>> bytes;  // bytes; symlink target
  uint32_t mode = 0;
  int64_t mtime_ns = 0;
  uint64_t size_hint = 0;  // for progress and the in-flight window
  std::string link_target;
  uint64_t dev = 0, ino = 0;  // for hard links (files with st_nlink > 1)
  std::shared_ptr<const Archive> archive;  // member: the archive it comes from
  std::optional<Member> member;            // its entry there (the name views `archive`)
  Attributes attrs;                        // owner, xattrs, device (link_id is the writer's)
};

// A per-thread buffer reused across members: no allocation and no page
// faults per member once it has grown to the largest one.
std::vector<std::byte>& thread_buffer(size_t at_least) {
  thread_local std::vector<std::byte> buffer;
  if (buffer.size() < at_least) buffer.resize(at_least);
  return buffer;
}

constexpr size_t kChunk = size_t{1} << 20;

Result<void> pread_full(int fd, std::byte* out, size_t size, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, out + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("read " + path, errno);
    }
    if (n == 0) return Error(Errc::io, path + ": file shrank while being archived");
    done += static_cast<size_t>(n);
  }
  return success();
}

struct FdReader {
  int fd;
};
bool fd_read_at(void* ctx, uint64_t offset, size_t length, void* out) {
  int fd = static_cast<FdReader*>(ctx)->fd;
  size_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(fd, static_cast<char*>(out) + done, length - done, static_cast<off_t>(offset + done));
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

int64_t mtime_of(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

// A fixed set of threads running jobs in submission order.
class ThreadPool {
 public:
  explicit ThreadPool(unsigned n) {
    for (unsigned i = 0; i < n; ++i) threads_.emplace_back([this] { run(); });
  }
  ~ThreadPool() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      jobs_.clear();  // abandoned on error: nobody waits for their results
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void submit(std::function<void()> job) {
    {
      std::lock_guard lock(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  bool stop_ = false;
};

}  // namespace

struct Writer::Impl {
  WriteOptions options;
  std::vector<Input> inputs;
  std::vector<std::pair<std::string, std::string>> links;  // (name, target)

  std::vector<std::pair<std::string, Attributes>> set_attrs;  // set_attributes, applied at write
  std::map<uint32_t, std::string> user_names, group_names;     // uid/gid -> name ("" when none)

  Result<void> add(Input in) {
    MMAR_ASSIGN(in.name, normalize_member_name(in.name));
    if (options.mtime_ns) {
      in.mtime_ns = *options.mtime_ns;
    } else if (options.clamp_mtime_ns && in.mtime_ns > *options.clamp_mtime_ns) {
      in.mtime_ns = *options.clamp_mtime_ns;
    }
    if (options.on_add) options.on_add(in.name);
    inputs.push_back(std::move(in));
    return success();
  }
  // What a file on disk has beyond bytes, mode and time, as the options ask.
  Result<void> collect_attributes(Input& in, const struct stat& st, const std::string& path);

  Result<WriteStats> write_mmar(int fd, const std::string& path, std::vector<Input>& sorted);
  Result<WriteStats> write_ctf(int fd, const std::string& path, std::vector<Input>& sorted);
};

Writer::Writer(WriteOptions options) : impl_(std::make_unique<Impl>()) { impl_->options = std::move(options); }
Writer::~Writer() = default;
Writer::Writer(Writer&&) noexcept = default;
Writer& Writer::operator=(Writer&&) noexcept = default;

size_t Writer::pending() const { return impl_->inputs.size(); }

bool Writer::excludes(std::string_view name) const {
  const auto& exclude = impl_->options.exclude;
  if (!exclude) return false;
  for (size_t slash = name.find('/'); slash != std::string_view::npos; slash = name.find('/', slash + 1)) {
    if (exclude(name.substr(0, slash))) return true;
  }
  return exclude(name);
}

Result<void> Writer::add_path(std::string name, const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return sys_error(path, errno);
  Input in;
  in.name = std::move(name);
  in.mtime_ns = mtime_of(st);
  in.path = path;
  if (S_ISDIR(st.st_mode)) {
    in.type = InputType::dir;
    in.mode = S_IFDIR | (st.st_mode & 07777);
  } else if (S_ISLNK(st.st_mode)) {
    std::vector<char> buf(static_cast<size_t>(st.st_size > 0 ? st.st_size : 255) + 1);
    ssize_t n = readlink(path.c_str(), buf.data(), buf.size());
    if (n < 0) return sys_error("readlink " + path, errno);
    if (static_cast<size_t>(n) >= buf.size()) {
      return Error(Errc::io, "readlink " + path + ": target changed while reading");
    }
    auto* b = reinterpret_cast<const std::byte*>(buf.data());
    in.type = InputType::symlink;
    in.bytes = std::make_shared<const std::vector<std::byte>>(b, b + n);
    in.mode = S_IFLNK | 0777;
    in.size_hint = static_cast<uint64_t>(n);
  } else if (S_ISREG(st.st_mode)) {
    in.type = InputType::file;
    in.mode = S_IFREG | (st.st_mode & 07777);
    in.size_hint = static_cast<uint64_t>(st.st_size);
    if (st.st_nlink > 1) {
      in.dev = st.st_dev;
      in.ino = st.st_ino;
    }
  } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
    in.type = InputType::special;
    in.mode = (st.st_mode & S_IFMT) | (st.st_mode & 07777);
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      in.attrs.rdev_major = major(st.st_rdev);
      in.attrs.rdev_minor = minor(st.st_rdev);
    }
  } else {
    return Error(Errc::unsupported, path + ": a file of an unknown type");
  }
  MMAR_TRY(impl_->collect_attributes(in, st, path));
  return impl_->add(std::move(in));
}

Result<void> Writer::add_tree(const std::string& name, const std::string& dir) {
  if (!name.empty()) MMAR_TRY(add_path(name, dir));
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return sys_error(dir, errno);
  std::vector<std::string> children;
  while (struct dirent* ent = readdir(d)) {
    std::string_view n = ent->d_name;
    if (n == "." || n == "..") continue;
    children.emplace_back(n);
  }
  closedir(d);
  // Sorted: the same tree is walked (and errors are met) in the same order.
  std::sort(children.begin(), children.end());
  for (const auto& child : children) {
    std::string child_path = dir + "/" + child;
    std::string child_name = name.empty() ? child : name + "/" + child;
    // Its parents were not excluded (or the walk would not be here).
    if (impl_->options.exclude && impl_->options.exclude(child_name)) continue;
    struct stat st {};
    if (lstat(child_path.c_str(), &st) != 0) return sys_error(child_path, errno);
    if (S_ISDIR(st.st_mode)) {
      MMAR_TRY(add_tree(child_name, child_path));
    } else {
      MMAR_TRY(add_path(child_name, child_path));
    }
  }
  return success();
}

Result<void> Writer::add_bytes(std::string name, std::vector<std::byte> data, uint32_t mode, int64_t mtime_ns) {
  Input in;
  in.name = std::move(name);
  in.type = InputType::bytes;
  in.size_hint = data.size();
  in.bytes = std::make_shared<const std::vector<std::byte>>(std::move(data));
  in.mode = S_IFREG | (mode & 07777);
  in.mtime_ns = mtime_ns;
  return impl_->add(std::move(in));
}

Result<void> Writer::add_member(std::string name, const Archive& from, const Member& m) {
  // Its attributes come along; a link id names a group in `from` (made
  // unique among all inputs at write).
  MMAR_ASSIGN(Attributes attrs, from.attributes(m));
  if (m.is_dir() || m.is_symlink() || (m.mode & S_IFMT) == S_IFCHR || (m.mode & S_IFMT) == S_IFBLK ||
      (m.mode & S_IFMT) == S_IFIFO || (m.mode & S_IFMT) == S_IFSOCK) {
    if (m.is_dir()) {
      MMAR_TRY(add_directory(std::move(name), m.mode, m.mtime_ns));
    } else if (m.is_symlink()) {
      MMAR_ASSIGN(Bytes target, from.read(m));
      MMAR_TRY(add_symlink(std::move(name), std::string(target.str()), m.mtime_ns));
    } else {
      MMAR_TRY(add_special(std::move(name), m.mode, m.mtime_ns));
    }
    impl_->inputs.back().attrs = std::move(attrs);
    if (m.link_id != 0) impl_->inputs.back().archive = std::make_shared<const Archive>(from);
    return success();
  }
  Input in;
  in.attrs = std::move(attrs);
  in.name = std::move(name);
  in.type = InputType::member;
  in.archive = std::make_shared<const Archive>(from);
  in.member = m;
  in.mode = S_IFREG | (m.mode & 07777);
  in.mtime_ns = m.mtime_ns;
  in.size_hint = m.size;
  return impl_->add(std::move(in));
}

Result<void> Writer::add_directory(std::string name, uint32_t mode, int64_t mtime_ns) {
  Input in;
  in.name = std::move(name);
  in.type = InputType::dir;
  in.mode = S_IFDIR | (mode & 07777);
  in.mtime_ns = mtime_ns;
  return impl_->add(std::move(in));
}

Result<void> Writer::add_symlink(std::string name, std::string target, int64_t mtime_ns) {
  if (target.empty()) return Error(Errc::invalid_argument, "symlink '" + name + "' has an empty target");
  Input in;
  in.name = std::move(name);
  in.type = InputType::symlink;
  auto* b = reinterpret_cast<const std::byte*>(target.data());
  in.bytes = std::make_shared<const std::vector<std::byte>>(b, b + target.size());
  in.size_hint = target.size();
  in.mode = S_IFLNK | 0777;
  in.mtime_ns = mtime_ns;
  return impl_->add(std::move(in));
}

Result<void> Writer::set_attributes(const std::string& name, Attributes attrs) {
  MMAR_ASSIGN(std::string n, normalize_member_name(name));
  // What the options leave out of every member is left out of these too.
  const WriteOptions& o = impl_->options;
  if (!o.owners) {
    attrs.has_owner = false;
    attrs.uid = attrs.gid = 0;
  }
  if (!o.owners || o.numeric_owner) {
    attrs.uname.clear();
    attrs.gname.clear();
  }
  if (!o.xattrs) attrs.xattrs.clear();
  MMAR_TRY(attrs::encode(attrs));  // refused now, not at write
  impl_->set_attrs.emplace_back(std::move(n), std::move(attrs));
  return success();
}

Result<void> Writer::add_special(std::string name, uint32_t mode, int64_t mtime_ns, Attributes a) {
  const uint32_t type = mode & S_IFMT;
  if (type != S_IFCHR && type != S_IFBLK && type != S_IFIFO && type != S_IFSOCK) {
    return Error(Errc::invalid_argument, "'" + name + "': not a device, FIFO or socket (mode " + std::to_string(mode) + ")");
  }
  if (type != S_IFCHR && type != S_IFBLK && (a.rdev_major != 0 || a.rdev_minor != 0)) {
    return Error(Errc::invalid_argument, "'" + name + "': a device number on a FIFO or socket");
  }
  Input in;
  in.name = std::move(name);
  in.type = InputType::special;
  in.mode = type | (mode & 07777);
  in.mtime_ns = mtime_ns;
  in.attrs = std::move(a);
  return impl_->add(std::move(in));
}

Result<void> Writer::Impl::collect_attributes(Input& in, const struct stat& st, const std::string& path) {
  if (options.owners) {
    in.attrs.uid = st.st_uid;
    in.attrs.gid = st.st_gid;
    in.attrs.has_owner = attrs::owner_needs_record(st.st_uid, st.st_gid, st.st_mode);
    if (!options.numeric_owner) {
      // Names as tar keeps them (root's too), looked up once per id, for
      // every owner recorded: root:root with no setuid/setgid bit is the
      // owner no record means, as for an imported tar.
      auto name_of = [](std::map<uint32_t, std::string>& cache, uint32_t id, bool user) -> std::string {
        auto it = cache.find(id);
        if (it != cache.end()) return it->second;
        std::string name;
        std::vector<char> buf(16384);
        if (user) {
          struct passwd pw {}, *res = nullptr;
          if (getpwuid_r(id, &pw, buf.data(), buf.size(), &res) == 0 && res != nullptr) name = res->pw_name;
        } else {
          struct group gr {}, *res = nullptr;
          if (getgrgid_r(id, &gr, buf.data(), buf.size(), &res) == 0 && res != nullptr) name = res->gr_name;
        }
        if (name.size() > 255) name.clear();
        cache.emplace(id, name);
        return name;
      };
      if (in.attrs.has_owner) {
        in.attrs.uname = name_of(user_names, st.st_uid, true);
        in.attrs.gname = name_of(group_names, st.st_gid, false);
      }
    }
  }
  if (options.xattrs) {
    // llistxattr/lgetxattr: a symlink's own attributes, never its target's.
    std::vector<char> names(4096);
    ssize_t n;
    for (;;) {
      n = ::llistxattr(path.c_str(), names.data(), names.size());
      if (n >= 0) break;
      if (errno == ERANGE) {
        const ssize_t need = ::llistxattr(path.c_str(), nullptr, 0);
        if (need < 0) return sys_error("list the extended attributes of " + path, errno);
        names.resize(static_cast<size_t>(need) + 1);
        continue;
      }
      if (errno == ENOTSUP || errno == ENOSYS) return success();
      return sys_error("list the extended attributes of " + path, errno);
    }
    for (ssize_t at = 0; at < n;) {
      const std::string xname(names.data() + at);
      at += static_cast<ssize_t>(xname.size()) + 1;
      if (xname.empty()) continue;
      std::string value(256, '\0');
      bool gone = false;  // removed since it was listed
      for (;;) {
        const ssize_t v = ::lgetxattr(path.c_str(), xname.c_str(), value.data(), value.size());
        if (v >= 0) {
          value.resize(static_cast<size_t>(v));
          break;
        }
        if (errno == ERANGE) {
          const ssize_t need = ::lgetxattr(path.c_str(), xname.c_str(), nullptr, 0);
          if (need < 0) return sys_error("read extended attribute " + xname + " of " + path, errno);
          value.resize(static_cast<size_t>(need) + 1);
          continue;
        }
        if (errno == ENODATA) {
          gone = true;
          break;
        }
        return sys_error("read extended attribute " + xname + " of " + path, errno);
      }
      if (!gone) in.attrs.xattrs.emplace_back(xname, std::move(value));
    }
  }
  return success();
}

Result<void> Writer::set_link(const std::string& name, const std::string& target) {
  MMAR_ASSIGN(std::string n, normalize_member_name(name));
  MMAR_ASSIGN(std::string t, normalize_member_name(target));
  impl_->links.emplace_back(std::move(n), std::move(t));
  return success();
}

namespace {

// Write all of [data, data+size) at offset.
Result<void> pwrite_all(int fd, const void* data, size_t size, uint64_t offset, const std::string& path) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::pwrite(fd, p, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("write " + path, errno);
    }
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return success();
}

Result<void> pwrite_all(int fd, std::span<const std::byte> data, uint64_t offset, const std::string& path) {
  return pwrite_all(fd, data.data(), data.size(), offset, path);
}

// Copy `size` bytes of `src` to `out` at `offset`: copy_file_range (no trip
// through user space), or pread/pwrite where the kernel cannot (sysfs, some
// filesystems).
Result<void> copy_raw(int src, uint64_t size, int out, uint64_t offset, const Input& in, const std::string& path) {
  uint64_t done = 0;
  bool use_copy_range = true;
  while (done < size) {
    if (use_copy_range) {
      loff_t in_off = static_cast<loff_t>(done);
      loff_t out_off = static_cast<loff_t>(offset + done);
      ssize_t n = ::copy_file_range(src, &in_off, out, &out_off, size - done, 0);
      if (n > 0) {
        done += static_cast<uint64_t>(n);
        continue;
      }
      if (n == 0) return Error(Errc::io, in.path + ": file shrank while being archived");
      if (errno == EINTR) continue;
      if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP && errno != EBADF) {
        return sys_error("copy " + in.path + " to " + path, errno);
      }
      use_copy_range = false;
    }
    auto& buf = thread_buffer(kChunk);
    size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, size - done));
    MMAR_TRY(pread_full(src, buf.data(), n, done, in.path));
    MMAR_TRY(pwrite_all(out, buf.data(), n, offset + done, path));
    done += n;
  }
  return success();
}

// The source did not change while it was archived (its hash and its bytes
// were taken at different times).
Result<void> check_unchanged(int fd, uint64_t size, const struct timespec& mtime, const Input& in) {
  struct stat st {};
  if (fstat(fd, &st) == 0 && (static_cast<uint64_t>(st.st_size) != size || st.st_mtim.tv_sec != mtime.tv_sec ||
                              st.st_mtim.tv_nsec != mtime.tv_nsec)) {
    return Error(Errc::io, in.path + ": file changed while being archived");
  }
  return success();
}

// Zeros over [offset, offset + size) of the output (what a member abandoned
// after it was written leaves): gaps in an archive are zero.
Result<void> zero_range(int fd, uint64_t offset, uint64_t size, const std::string& path) {
  if (size == 0) return success();
  if (::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(size)) == 0) {
    return success();
  }
  static const std::vector<std::byte> zeros(kChunk);
  for (uint64_t done = 0; done < size;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), size - done));
    MMAR_TRY(pwrite_all(fd, zeros.data(), n, offset + done, path));
    done += n;
  }
  return success();
}

}  // namespace

namespace {

// One frame after compression (on a worker thread): its stored bytes (the
// input itself when compressing did not make it smaller) and their XXH3.
struct FrameResult {
  std::vector<std::byte> stored;
  uint64_t xxh3 = 0;
};

Result<FrameResult> compress_one(Codec codec, int level, bool bare, std::vector<std::byte> in) {
  FrameResult r;
  thread_local std::vector<std::byte> out;
  MMAR_ASSIGN(bool smaller, codec::compress_frame(codec, level, bare, in, out));
  if (smaller) {
    r.stored.assign(out.begin(), out.end());
  } else {
    r.stored = std::move(in);
  }
  r.xxh3 = XXH3_64bits(r.stored.data(), r.stored.size());
  return r;
}

// The bytes of an input, by offset: a file (pread) or a buffer.
struct InputBytes {
  int fd = -1;
  const std::vector<std::byte>* bytes = nullptr;
  const Input* in = nullptr;  // for an archive member: in->archive, *in->member
  Result<void> read(uint64_t offset, std::byte* out, size_t n) const {
    if (bytes != nullptr) {
      std::memcpy(out, bytes->data() + offset, n);
      return success();
    }
    if (in->type == InputType::member) {
      MMAR_ASSIGN(size_t got, in->archive->read(*in->member, offset, n, out));
      if (got != n) return Error(Errc::io, in->archive->name() + ": member '" + in->name + "' ended early");
      return success();
    }
    return pread_full(fd, out, n, offset, in->path);
  }
  // Copy `size` bytes to `out` at `at`: kernel-side from a file, else
  // through a buffer.
  Result<void> copy_to(int out, uint64_t at, uint64_t size, const std::string& path) const;
  // XXH3 of [0, size), read in chunks through the thread's buffer.
  Result<uint64_t> hash(uint64_t size) const;
};

Result<uint64_t> InputBytes::hash(uint64_t size) const {
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  auto& buf = thread_buffer(std::min<uint64_t>(size, kChunk));
  for (uint64_t at = 0; at < size;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, size - at));
    MMAR_TRY(read(at, buf.data(), n));
    XXH3_64bits_update(&state, buf.data(), n);
    at += n;
  }
  return XXH3_64bits_digest(&state);
}

Result<void> InputBytes::copy_to(int out, uint64_t at, uint64_t size, const std::string& path) const {
  if (fd >= 0) return copy_raw(fd, size, out, at, *in, path);
  if (bytes != nullptr) return pwrite_all(out, bytes->data(), size, at, path);
  auto& buf = thread_buffer(kChunk);
  for (uint64_t done = 0; done < size;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, size - done));
    MMAR_TRY(read(done, buf.data(), n));
    MMAR_TRY(pwrite_all(out, buf.data(), n, at + done, path));
    done += n;
  }
  return success();
}


// Do two inputs hold the same `size` bytes? (Dedup: a hash match is
// confirmed byte by byte, so a crafted collision cannot swap contents.)
Result<bool> same_bytes(const InputBytes& a, const InputBytes& b, uint64_t size) {
  std::vector<std::byte> x(std::min<uint64_t>(size, kChunk)), y(x.size());
  for (uint64_t at = 0; at < size;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(x.size(), size - at));
    MMAR_TRY(a.read(at, x.data(), n));
    MMAR_TRY(b.read(at, y.data(), n));
    if (std::memcmp(x.data(), y.data(), n) != 0) return false;
    at += n;
  }
  return true;
}

}  // namespace

// The writing pipeline. The main thread walks the members in name order,
// reads their bytes once, frame by frame, and queues an operation per step;
// frames are compressed on the pool; operations are applied to the output
// strictly in queue order (so the output does not depend on the number of
// threads). The queue is bounded, so memory is about (queue length x 2
// frames or packs) whatever the members' sizes. Members smaller than a
// frame and a pack are packed together, in name order, into shared
// one-frame streams of up to the pack size; members
// with the same bytes as an earlier one (hard links, or checked copies)
// share its stored data.
Result<WriteStats> Writer::Impl::write_mmar(int fd, const std::string& path, std::vector<Input>& sorted) {
  const uint64_t align = options.alignment;
  uint8_t align_log2 = 0;
  while ((uint64_t{1} << align_log2) < align) ++align_log2;
  if ((uint64_t{1} << align_log2) != align || align_log2 < format::kMinAlignLog2 ||
      align_log2 > format::kMaxAlignLog2) {
    return Error(Errc::invalid_argument, "alignment must be 4096, 8192, 16384, 32768 or 65536");
  }
  // Frame, pack and chunk sizes: a power of two, 4 KiB .. 4 MiB; its log2.
  auto size_log2 = [](uint32_t bytes) -> std::optional<uint8_t> {
    if (!std::has_single_bit(bytes) || bytes < (1u << format::kMinFrameLog2) ||
        bytes > (1u << format::kMaxFrameLog2)) {
      return std::nullopt;
    }
    return static_cast<uint8_t>(std::countr_zero(bytes));
  };
  // frame_size 0: every compressed member is one stream of its own, as
  // before frame streams (what older readers read).
  const bool single_streams = options.frame_size == 0;
  uint8_t frame_log2 = frames::kDefaultLog2;
  if (!single_streams) {
    auto l = size_log2(options.frame_size);
    if (!l) return Error(Errc::invalid_argument, "frame size must be a power of two from 4 KiB to 4 MiB");
    frame_log2 = *l;
  }
  const uint64_t frame = single_streams ? 0 : uint64_t{1} << frame_log2;
  // Packs: members smaller than both a frame and a pack share one-frame
  // streams of up to pack_size bytes (0: twice the frame size, at most the
  // largest frame).
  uint8_t pack_log2 = std::min<uint8_t>(static_cast<uint8_t>(frame_log2 + 1), format::kMaxFrameLog2);
  if (!single_streams && options.pack_size != 0) {
    auto l = size_log2(options.pack_size);
    if (!l) return Error(Errc::invalid_argument, "pack size must be a power of two from 4 KiB to 4 MiB");
    pack_log2 = *l;
  }
  const uint64_t pack_bytes = single_streams ? 0 : uint64_t{1} << pack_log2;
  const uint64_t packed_below = std::min(frame, pack_bytes);
  if (options.frame_table < 1 || options.frame_table > 3) {
    return Error(Errc::invalid_argument, "frame table version must be 1, 2 or 3");
  }
  const uint8_t table_version = options.frame_table;
  const bool bare = table_version >= 2;
  if (options.chunk_size != 0 && !size_log2(options.chunk_size)) {
    return Error(Errc::invalid_argument, "chunk size must be 0 or a power of two from 4 KiB to 4 MiB");
  }
  if (sorted.size() > 0xfffffffeu) return Error(Errc::limit, "too many members");
  const bool may_compress = options.codec != Codec::none && options.threshold != 0;
  const Codec codec = options.codec;
  const int level = options.level;

  // Links by name -> index in sorted order.
  std::vector<uint32_t> link_of(sorted.size(), format::kNoLink);
  auto index_of = [&](const std::string& n) -> std::optional<uint32_t> {
    auto by = [](const Input& in, const std::string& x) { return in.name < x; };
    auto it = std::lower_bound(sorted.begin(), sorted.end(), n, by);
    if (it == sorted.end() || it->name != n) return std::nullopt;
    return static_cast<uint32_t>(it - sorted.begin());
  };
  for (const auto& [name, target] : links) {
    auto a = index_of(name);
    auto b = index_of(target);
    if (!a) return Error(Errc::invalid_argument, "link from unknown member '" + name + "'");
    if (!b) return Error(Errc::invalid_argument, "link to unknown member '" + target + "'");
    if (*a == *b) return Error(Errc::invalid_argument, "member '" + name + "' links to itself");
    link_of[*a] = *b;
  }

  // Hard links: the data of a file seen before under another name is
  // stored once; later names share its entry's data. Not even read again.
  std::vector<uint32_t> same_as(sorted.size(), format::kNoLink);
  {
    std::vector<std::pair<std::pair<uint64_t, uint64_t>, uint32_t>> keys;
    for (size_t i = 0; i < sorted.size(); ++i) {
      if (sorted[i].type == InputType::file && sorted[i].ino != 0) {
        keys.push_back({{sorted[i].dev, sorted[i].ino}, static_cast<uint32_t>(i)});
      }
    }
    std::sort(keys.begin(), keys.end());
    for (size_t k = 1; k < keys.size(); ++k) {
      if (keys[k].first == keys[k - 1].first) {
        same_as[keys[k].second] =
            same_as[keys[k - 1].second] != format::kNoLink ? same_as[keys[k - 1].second] : keys[k - 1].second;
      }
    }
  }

  const unsigned threads = options.threads != 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  uint64_t total = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (same_as[i] == format::kNoLink) total += sorted[i].size_hint;
  }

  // Attributes: what set_attributes gave, then link ids -- hard links found
  // here (same file), and groups carried from other archives -- numbered
  // anew so that they are unique in this archive.
  for (auto& [name, a] : set_attrs) {
    auto at = std::lower_bound(sorted.begin(), sorted.end(), name,
                               [](const Input& x, const std::string& n) { return x.name < n; });
    if (at == sorted.end() || at->name != name) {
      return Error(Errc::invalid_argument, "attributes for '" + name + "', which is not a member");
    }
    const uint64_t carried = at->attrs.link_id;
    at->attrs = a;
    if (a.link_id == 0) at->attrs.link_id = carried;
  }
  {
    uint64_t next_id = 1;
    // Keyed by the source archive (its Source: every copy of an Archive
    // shares it) and the id there.
    std::map<std::pair<const void*, uint64_t>, uint64_t> renumbered;
    std::vector<uint64_t> group_id(sorted.size(), 0);
    for (size_t i = 0; i < sorted.size(); ++i) {
      Input& in = sorted[i];
      if (same_as[i] != format::kNoLink) {
        uint64_t& g = group_id[same_as[i]];
        if (g == 0) g = next_id++;
        sorted[same_as[i]].attrs.link_id = g;
        in.attrs.link_id = g;
      } else if (in.attrs.link_id != 0 && group_id[i] == 0) {
        // From set_attributes (an import) or another archive: keyed by source.
        const void* from = in.archive ? static_cast<const void*>(&in.archive->source()) : nullptr;
        auto [it, fresh] = renumbered.try_emplace({from, in.attrs.link_id}, next_id);
        if (fresh) ++next_id;
        in.attrs.link_id = it->second;
      }
    }
  }
  index_codec::IndexBuilder entries;
  for (const Input& in : sorted) {
    auto encoded = attrs::encode(in.attrs);
    if (!encoded.ok()) return std::move(encoded).error().with_context(in.name);
    if (!encoded->empty()) {  // never write what the reader refuses (a device number on a file, ...)
      auto checked = attrs::parse(
          std::span<const std::byte>(reinterpret_cast<const std::byte*>(encoded->data()), encoded->size()), in.mode);
      if (!checked.ok()) return Error(Errc::invalid_argument, "'" + in.name + "': " + checked.error().message());
    }
    entries.add(in.name, *encoded);
  }
  WriteStats stats;
  std::vector<std::byte> fence_block;
  {
    std::vector<std::string_view> sorted_names;
    sorted_names.reserve(sorted.size());
    for (const Input& in : sorted) sorted_names.push_back(in.name);
    // The fence is written before the index is stored: its stride follows
    // the choice store_index() will most likely make (a wrong guess costs
    // a lookup a few KiB more or less read, never a wrong answer).
    fence_block = fence::build(sorted_names, index_codec::compresses(options.index, may_compress)
                                                 ? fence::kMinStrideCompressed
                                                 : fence::kMinStride);
  }
  uint64_t offset = *align_up(format::kHeaderAreaSize + fence_block.size(), format::kPackedAlign);
  uint64_t done = 0;
  uint64_t flushed = 0;
  bool any_framed = false;
  bool any_framed2 = false;  // a stream with a v2 table (superblock bit 2)
  bool any_framed3 = false;  // a stream with a v3 table (superblock bit 5)

  // Where a raw member goes (every raw member is placed here): on a page
  // when it may be mapped (format::raw_on_page), after
  // room for its chunk checksums when it is larger than a chunk (FORMAT.md
  // "Chunk checksums": they end where the data starts, in what is mostly
  // alignment padding anyway). Sets offset, flags and sizes; the caller
  // writes the data at e.me_data_offset, then finish_raw writes the sums.
  const uint8_t chunk_log2 = options.chunk_size == 0 ? 0 : static_cast<uint8_t>(std::countr_zero(options.chunk_size));
  // Holes: what aligning a member to a page left unused before it. Small
  // raw data placed later goes into the first that holds it (in the order
  // placed: the output stays deterministic), so a tree with large raw
  // members does not pay the padding (bench/RESULTS.md, "Padding").
  struct Hole {
    uint64_t begin, end;
  };
  std::vector<Hole> holes;
  constexpr size_t kMaxHoles = 4096;
  constexpr uint64_t kMinHole = 16;
  auto take_hole = [&](uint64_t size, uint64_t alignment) -> std::optional<uint64_t> {
    for (size_t h = 0; h < holes.size(); ++h) {
      const uint64_t at = *align_up(holes[h].begin, alignment);
      if (at <= holes[h].end && holes[h].end - at >= size) {
        holes[h].begin = at + size;
        if (holes[h].end - holes[h].begin < kMinHole) holes.erase(holes.begin() + static_cast<ptrdiff_t>(h));
        return at;
      }
    }
    return std::nullopt;
  };
  // Where a raw member of `size` bytes goes: a page (then any padding
  // before it, after its chunk sums, becomes a hole), a hole that holds it
  // (`may_fill`, no sums), or from `from` on. Sets the entry's offset, flags
  // and sizes, and `offset` past the data unless it went into a hole; the
  // caller writes the data at e.me_data_offset, then finish_raw the sums.
  auto place_raw = [&](format::Entry& e, uint64_t size, bool page, uint64_t from, bool may_fill = true) {
    const uint64_t sums =
        chunk_log2 != 0 && size > options.chunk_size ? chunks::table_bytes(size, chunk_log2) : 0;
    const uint64_t alignment = page ? align : format::packed_align(0, e.me_kind);
    if (page) e.me_flags = static_cast<uint16_t>(e.me_flags | format::kFlagPageAligned);
    if (sums != 0) e.me_flags = static_cast<uint16_t>(e.me_flags | format::kFlagChunkSums);
    e.me_stored_size = size;
    if (!page && sums == 0 && may_fill && size > 0) {
      if (auto at = take_hole(size, alignment)) {
        e.me_data_offset = *at;
        return;
      }
    }
    const uint64_t at = *align_up(from + sums, alignment);
    if (page && at - sums - from >= kMinHole && holes.size() < kMaxHoles) holes.push_back(Hole{from, at - sums});
    e.me_data_offset = at;
    offset = at + size;
  };
  // The chunk checksums of a raw member just written, read back from the
  // output (in the page cache): the sums cover exactly the bytes stored.
  auto finish_raw = [&](const format::Entry& e) -> Result<void> {
    if ((e.me_flags & format::kFlagChunkSums) == 0) return success();
    MMAR_ASSIGN(std::vector<std::byte> sums,
                chunks::encode_from_fd(fd, e.me_data_offset, e.me_size, path, chunk_log2));
    return pwrite_all(fd, sums, e.me_data_offset - sums.size(), path);
  };
  constexpr uint64_t kWritebackChunk = uint64_t{8} << 20;

  // The queue of operations, applied in order. A frame operation carries the
  // future of its compression.
  struct Op {
    std::future<Result<FrameResult>> frame;
    std::function<Result<void>(FrameResult*)> apply;
  };
  ThreadPool pool(threads);
  std::deque<Op> ops;
  const size_t max_ops = 4 * size_t{threads} + 4;
  auto apply_front = [&]() -> Result<void> {
    Op op = std::move(ops.front());
    ops.pop_front();
    if (!op.frame.valid()) return op.apply(nullptr);
    Result<FrameResult> r = op.frame.get();
    if (!r.ok()) return std::move(r).error();
    return op.apply(&*r);
  };
  auto push = [&](std::function<Result<void>(FrameResult*)> apply) -> Result<void> {
    ops.push_back(Op{{}, std::move(apply)});
    while (ops.size() > max_ops) MMAR_TRY(apply_front());
    return success();
  };
  auto push_frame = [&](std::vector<std::byte> in, std::function<Result<void>(FrameResult*)> apply) -> Result<void> {
    auto task = std::make_shared<std::packaged_task<Result<FrameResult>()>>(
        [codec, level, bare, buf = std::move(in)]() mutable {
          return compress_one(codec, level, bare, std::move(buf));
        });
    ops.push_back(Op{task->get_future(), std::move(apply)});
    pool.submit([task] { (*task)(); });
    while (ops.size() > max_ops) MMAR_TRY(apply_front());
    return success();
  };
  auto progress = [&](uint64_t n) {
    done += n;
    if (offset - flushed >= kWritebackChunk) {
      // Start writeback of what is written so far (as dpkg does), so the
      // fsync before the rename has little left to wait for.
      ::sync_file_range(fd, static_cast<off_t>(flushed), static_cast<off_t>(offset - flushed), SYNC_FILE_RANGE_WRITE);
      flushed = offset;
    }
    if (options.progress) options.progress(done, total);
  };

  // A frame stream: where it starts, what its frames stored.
  struct Stream {
    uint64_t start = 0;
    uint64_t size = 0;
    uint8_t log2 = 0;    // its frame size
    bool sized = false;  // v3: exactly one member's bytes (a 1-byte header)
    std::vector<uint64_t> lengths, sums;
  };
  auto begin_stream = [&](const std::shared_ptr<Stream>& st) {
    return push([&, st](FrameResult*) -> Result<void> {
      const uint64_t count = (st->size + (uint64_t{1} << st->log2) - 1) >> st->log2;
      st->start = offset;  // compressed: unaligned (format::packed_align)
      offset = st->start + frames::table_bytes(table_version, count, st->sized);
      return success();
    });
  };
  auto frame_op = [&](const std::shared_ptr<Stream>& st) {
    return [&, st](FrameResult* r) -> Result<void> {
      MMAR_TRY(pwrite_all(fd, r->stored, offset, path));
      offset += r->stored.size();
      st->lengths.push_back(r->stored.size());
      st->sums.push_back(r->xxh3);
      return success();
    };
  };
  // The table, once every frame is written; the stream's stored size.
  auto finish_stream = [&](Stream& st) -> Result<uint64_t> {
    std::vector<std::byte> table =
        frames::encode_table(table_version, st.size, st.log2, st.lengths, st.sums, st.sized);
    if (table_version == 2) any_framed2 = true;
    if (table_version == 3) any_framed3 = true;
    MMAR_TRY(pwrite_all(fd, table, st.start, path));
    return offset - st.start;
  };
  auto set_framed = [&](uint32_t i, uint64_t start, uint64_t stored, uint32_t stream_offset) {
    format::Entry& e = entries.entry(i);
    e.me_data_offset = start;
    e.me_stored_size = stored;
    e.me_codec = static_cast<uint8_t>(codec);
    e.me_flags = static_cast<uint16_t>(e.me_flags | format::kFlagFramed);
    e.me_stream_offset = stream_offset;
    any_framed = true;
  };

  // Small members gathered into one frame.
  struct Pack {
    std::vector<std::byte> bytes;
    std::vector<std::pair<uint32_t, uint32_t>> members;  // (member, offset in the pack)
  };
  Pack pack;
  auto flush_pack = [&]() -> Result<void> {
    if (pack.members.empty()) return success();
    auto st = std::make_shared<Stream>();
    st->size = pack.bytes.size();  // one frame: below 2^32 (v3's size field)
    st->log2 = pack_log2;
    st->sized = pack.members.size() == 1;  // then all of its one member
    auto members = std::make_shared<std::vector<std::pair<uint32_t, uint32_t>>>(std::move(pack.members));
    std::vector<std::byte> bytes = std::move(pack.bytes);
    pack = Pack{};
    MMAR_TRY(begin_stream(st));
    const uint64_t n = st->size;
    auto write_frame = frame_op(st);
    auto finish_pack = [&, st, members, write_frame, n](FrameResult* r) -> Result<void> {
      if (r->stored.size() == n) {
        // Nothing to gain from packing: each member raw (no table to pay for),
        // from where the table would have been (nothing was written since).
        offset = st->start;
        for (const auto& [i, at] : *members) {
          format::Entry& e = entries.entry(i);
          const bool page = format::raw_on_page(e.me_kind == static_cast<uint8_t>(Kind::elf), e.me_size, align,
                                                format::RawWhy::incompressible);
          place_raw(e, e.me_size, page, offset);
          MMAR_TRY(pwrite_all(fd, r->stored.data() + at, e.me_size, e.me_data_offset, path));
          MMAR_TRY(finish_raw(e));
          --stats.compressed_members;
        }
        progress(n);
        return success();
      }
      MMAR_TRY(write_frame(r));
      MMAR_ASSIGN(uint64_t stored, finish_stream(*st));
      for (const auto& [i, at] : *members) set_framed(i, st->start, stored, at);
      progress(n);
      return success();
    };
    return push_frame(std::move(bytes), std::move(finish_pack));
  };

  // Dedup: earlier members by (size, XXH3); a candidate is confirmed byte
  // by byte. Members whose hash is not known yet (raw ones, hashed on a
  // worker) wait by size and are hashed here, once, the first time a member
  // of their size asks: every member is hashed at most once, so the search
  // stays linear however many members share a size.
  struct ContentKey {
    uint64_t size, hash;
    bool operator==(const ContentKey&) const = default;
  };
  struct ContentKeyHash {
    size_t operator()(const ContentKey& k) const { return std::hash<uint64_t>()(k.hash ^ (k.size * 0x9e3779b97f4a7c15ULL)); }
  };
  std::unordered_map<ContentKey, std::vector<uint32_t>, ContentKeyHash> by_content;
  std::unordered_map<uint64_t, std::vector<uint32_t>> unhashed;  // by size
  std::unordered_set<uint64_t> sizes_seen;
  std::vector<uint64_t> hash_of(sorted.size(), 0);
  std::vector<uint8_t> same_bytes_as(sorted.size(), 0);  // same_as[i] found by content, not by inode
  std::vector<uint8_t> hash_known(sorted.size(), 0);
  auto register_content = [&](uint32_t i, uint64_t size) {
    sizes_seen.insert(size);
    if (hash_known[i]) {
      by_content[ContentKey{size, hash_of[i]}].push_back(i);
    } else {
      unhashed[size].push_back(i);
    }
  };
  // Which file each file member's bytes came from (device, inode, size,
  // mtime), so that re-opening it by path for a comparison is known to give
  // the same bytes: a path renamed over meanwhile is another file.
  struct FileId {
    uint64_t dev = 0, ino = 0, size = 0;
    struct timespec mtime {};
  };
  std::vector<FileId> file_ids(sorted.size());
  // The bytes of an earlier member, for a comparison; nullopt when its file
  // is no longer the one it was read from.
  auto open_input = [&](uint32_t j, UniqueFd& keep) -> Result<std::optional<InputBytes>> {
    const Input& in = sorted[j];
    InputBytes b;
    b.in = &in;
    if (in.type == InputType::bytes) {
      b.bytes = in.bytes.get();
      return std::optional<InputBytes>(b);
    }
    if (in.type == InputType::member) return std::optional<InputBytes>(b);
    int f = ::open(in.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (f < 0) return std::optional<InputBytes>();
    keep.reset(f);
    struct stat st {};
    const FileId& id = file_ids[j];
    if (fstat(f, &st) != 0 || st.st_dev != id.dev || st.st_ino != id.ino ||
        static_cast<uint64_t>(st.st_size) != id.size || st.st_mtim.tv_sec != id.mtime.tv_sec ||
        st.st_mtim.tv_nsec != id.mtime.tv_nsec) {
      return std::optional<InputBytes>();
    }
    b.fd = f;
    return std::optional<InputBytes>(b);
  };
  auto find_same = [&](uint32_t i, const InputBytes& mine, uint64_t size, uint64_t h) -> Result<std::optional<uint32_t>> {
    (void)i;
    if (auto w = unhashed.find(size); w != unhashed.end()) {
      for (uint32_t j : w->second) {
        if (!hash_known[j]) {
          UniqueFd keep;
          MMAR_ASSIGN(std::optional<InputBytes> opened, open_input(j, keep));
          if (!opened) continue;  // changed since: never a candidate
          MMAR_ASSIGN(hash_of[j], opened->hash(size));
          hash_known[j] = 1;
        }
        by_content[ContentKey{size, hash_of[j]}].push_back(j);
      }
      unhashed.erase(w);
    }
    auto it = by_content.find(ContentKey{size, h});
    if (it == by_content.end()) return std::optional<uint32_t>();
    for (uint32_t j : it->second) {
      UniqueFd keep;
      MMAR_ASSIGN(std::optional<InputBytes> theirs, open_input(j, keep));
      if (!theirs) continue;
      MMAR_ASSIGN(bool same, same_bytes(mine, *theirs, size));
      if (same) return std::optional<uint32_t>(j);
    }
    return std::optional<uint32_t>();
  };

  for (uint32_t i = 0; i < sorted.size(); ++i) {
    const Input& in = sorted[i];
    {
      format::Entry& e = entries.entry(i);
      e.me_mode = in.mode;
      e.me_mtime_ns = static_cast<uint64_t>(in.mtime_ns);
      e.me_link = link_of[i];
    }
    if (same_as[i] != format::kNoLink || in.type == InputType::dir || in.type == InputType::special) continue;
    if (in.type == InputType::symlink) {
      auto target = in.bytes;
      entries.entry(i).me_size = target->size();
      entries.entry(i).me_xxh3 = XXH3_64bits(target->data(), target->size());
      auto write_link = [&, i, target](FrameResult*) -> Result<void> {
        format::Entry& e = entries.entry(i);
        place_raw(e, target->size(), false, offset);  // plain data: unaligned (format::packed_align), or a hole
        MMAR_TRY(pwrite_all(fd, *target, e.me_data_offset, path));
        progress(target->size());
        return success();
      };
      MMAR_TRY(push(std::move(write_link)));
      continue;
    }

    // A regular member: its bytes from a buffer or a file.
    auto file = std::make_shared<UniqueFd>();
    InputBytes src;
    src.in = &in;
    uint64_t size = 0;
    struct timespec mtime {};
    if (in.type == InputType::bytes) {
      src.bytes = in.bytes.get();
      size = in.bytes->size();
    } else if (in.type == InputType::member) {
      size = in.member->size;
    } else {
      // Files are read with pread rather than mapped: on many machines a
      // page fault costs more than the copy.
      int raw_fd = ::open(in.path.c_str(), O_RDONLY | O_CLOEXEC);
      if (raw_fd < 0) return sys_error(in.path, errno);
      file->reset(raw_fd);
      struct stat st {};
      if (fstat(raw_fd, &st) != 0) return sys_error("stat " + in.path, errno);
      if (!S_ISREG(st.st_mode)) return Error(Errc::unsupported, in.path + ": no longer a regular file");
      size = static_cast<uint64_t>(st.st_size);
      mtime = st.st_mtim;
      src.fd = raw_fd;
      file_ids[i] = FileId{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino), size, st.st_mtim};
    }
    entries.entry(i).me_size = size;
    if (size == 0) {
      entries.entry(i).me_xxh3 = XXH3_64bits(nullptr, 0);
      continue;
    }

    // What it is, from its first bytes (and, for ELF, its section headers).
    const size_t head_size = static_cast<size_t>(std::min<uint64_t>(size, 65536));
    std::vector<std::byte> head(head_size);
    MMAR_TRY(src.read(0, head.data(), head_size));
    FdReader reader{src.fd};
    const Detected detected = in.type == InputType::member ? Detected{in.member->kind, in.member->has_btf}
                              : src.bytes != nullptr      ? detect_kind(*src.bytes)
                                                          : detect_kind(head, size, fd_read_at, &reader);
    {
      format::Entry& e = entries.entry(i);
      e.me_kind = static_cast<uint8_t>(detected.kind);
      e.me_flags = detected.has_btf ? format::kFlagHasBtf : 0;
    }
    if (options.link_for && (detected.kind == Kind::btf || detected.has_btf)) {
      LinkQuery q;
      q.member = in.name;
      q.path = in.type == InputType::file ? std::string_view(in.path) : std::string_view();
      q.bytes = src.bytes != nullptr ? std::span<const std::byte>(*src.bytes) : std::span<const std::byte>();
      q.kind = detected.kind;
      q.has_btf = detected.has_btf;
      if (auto target = options.link_for(q); target && entries.entry(i).me_link == format::kNoLink) {
        if (auto t = index_of(*target); t && *t != i) entries.entry(i).me_link = *t;
      }
    }
    stats.input_bytes += size;

    // A member of another archive with a frame stream of its own, in this
    // writer's codec and frame size: its stored bytes are copied as they are
    // (frames and their checksums; nothing inflated or compressed again).
    if (in.type == InputType::member && in.member->framed && in.member->stream_offset == 0 && may_compress &&
        !single_streams && in.member->codec == codec && size >= frame) {
      const Member& m = *in.member;
      const uint64_t table_head = std::min<uint64_t>(m.stored_size, sizeof(format::FrameTableHeader));
      const frames::StreamOf of{m.size, m.stream_offset};
      auto h = in.archive->source().read(m.data_offset, table_head);
      auto t = h.ok() ? frames::parse_header(h->span(), m.stored_size, in.name, m.data_offset, of)
                      : Result<frames::Table>(h.error());
      if (t.ok() && t->log2 == frame_log2 && t->size == m.size && t->version <= table_version) {
        entries.entry(i).me_xxh3 = m.xxh3;
        hash_of[i] = m.xxh3;
        hash_known[i] = 1;
        register_content(i, size);
        ++stats.compressed_members;
        auto archive = in.archive;
        auto copy_stream = [&, i, archive, m, size, table_head, of](FrameResult*) -> Result<void> {
          const Source& from = archive->source();  // compressed: unaligned (format::packed_align)
          // Copied frame by frame, each checked against its table entry on
          // the way (no inflating): damage is not carried into the copy.
          MMAR_ASSIGN(Bytes header, from.read(m.data_offset, table_head));
          const std::string what = archive->name() + ": member '" + std::string(m.name) + "'";
          MMAR_ASSIGN(frames::Table tb, frames::parse_header(header.span(), m.stored_size, what, m.data_offset, of));
          MMAR_TRY(pwrite_all(fd, header.span().first(static_cast<size_t>(tb.header_bytes())), offset, path));
          for (uint32_t k = 0; k < tb.count; ++k) {
            // What frame_at needs for frame k (a table is not read whole: it
            // may be large), copied as it is; v1 stays v1.
            const frames::Lookup l = frames::lookup(tb, k);
            MMAR_ASSIGN(Bytes anchors, from.read(m.data_offset + l.anchors_at, l.anchors_length));
            MMAR_ASSIGN(Bytes part, from.read(m.data_offset + l.entries_at, l.entries_length));
            MMAR_ASSIGN(frames::Frame f, frames::frame_at(tb, k, anchors.span(), part.span(), what, m.data_offset));
            // Each table byte written once: the group's anchors with its
            // first frame, then frame k's own entry (the last of `part`).
            if (k % format::kFrameGroup == 0) MMAR_TRY(pwrite_all(fd, anchors.span(), offset + l.anchors_at, path));
            const uint64_t entry = tb.entry_bytes();
            MMAR_TRY(pwrite_all(fd, part.span().last(static_cast<size_t>(entry)),
                                offset + l.entries_at + l.entries_length - entry, path));
            MMAR_ASSIGN(Bytes stored, from.read(m.data_offset + f.begin, f.end - f.begin));
            if (frames::checksum(tb, stored.span()) != f.sum) {
              return Error(Errc::checksum, what + ": frame " + std::to_string(k) + ": checksum mismatch (at offset " +
                                               hex(m.data_offset + f.begin) + ")", m.data_offset + f.begin);
            }
            MMAR_TRY(pwrite_all(fd, stored.span(), offset + f.begin, path));
          }
          set_framed(i, offset, m.stored_size, 0);
          if (tb.version == 2) any_framed2 = true;
          if (tb.version == 3) any_framed3 = true;
          offset += m.stored_size;
          progress(size);
          return success();
        };
        MMAR_TRY(push(std::move(copy_stream)));
        continue;
      }
    }

    // Small members: into the pack, unless the same bytes are stored already.
    if (may_compress && !single_streams && size > options.threshold && size < packed_below) {
      std::vector<std::byte> bytes(size);
      std::memcpy(bytes.data(), head.data(), head_size);
      if (size > head_size) MMAR_TRY(src.read(head_size, bytes.data() + head_size, size - head_size));
      if (src.fd >= 0) MMAR_TRY(check_unchanged(src.fd, size, mtime, in));
      const uint64_t h = XXH3_64bits(bytes.data(), bytes.size());
      entries.entry(i).me_xxh3 = h;
      hash_of[i] = h;
      InputBytes mine;
      mine.bytes = &bytes;
      MMAR_ASSIGN(std::optional<uint32_t> same, find_same(i, mine, size, h));
      if (same) {
        same_as[i] = *same;
        same_bytes_as[i] = 1;
        progress(size);
        continue;
      }
      hash_known[i] = 1;
      register_content(i, size);
      if (pack.bytes.size() + size > pack_bytes) MMAR_TRY(flush_pack());
      pack.members.emplace_back(i, static_cast<uint32_t>(pack.bytes.size()));
      pack.bytes.insert(pack.bytes.end(), bytes.begin(), bytes.end());
      ++stats.compressed_members;
      continue;
    }

    // Members with the same size as an earlier one: hashed first, and
    // stored once if the bytes are the same.
    std::optional<uint64_t> early_hash;
    if (sizes_seen.count(size) != 0) {
      MMAR_ASSIGN(early_hash, src.hash(size));
      MMAR_ASSIGN(std::optional<uint32_t> same, find_same(i, src, size, *early_hash));
      if (same) {
        same_as[i] = *same;
        same_bytes_as[i] = 1;
        progress(size);
        continue;
      }
      hash_of[i] = *early_hash;
      hash_known[i] = 1;
    }
    register_content(i, size);

    if (!may_compress || size <= options.threshold) {
      // Raw: hashed on a worker, copied kernel-side in order.
      auto hashed = std::make_shared<std::packaged_task<Result<FrameResult>()>>([src, size, file]() -> Result<FrameResult> {
        FrameResult r;
        MMAR_ASSIGN(r.xxh3, src.hash(size));
        return r;
      });
      ops.push_back(Op{hashed->get_future(), [&, i, file, src, size, mtime, detected](FrameResult* r) -> Result<void> {
                         format::Entry& e = entries.entry(i);
                         e.me_xxh3 = r->xxh3;
                         hash_of[i] = r->xxh3;
                         hash_known[i] = 1;
                         const bool page = format::raw_on_page(detected.kind == Kind::elf, size, align,
                                                               format::RawWhy::chosen);
                         place_raw(e, size, page, offset);
                         MMAR_TRY(src.copy_to(fd, e.me_data_offset, size, path));
                         if (src.fd >= 0) MMAR_TRY(check_unchanged(src.fd, size, mtime, *src.in));
                         MMAR_TRY(finish_raw(e));
                         progress(size);
                         return success();
                       }});
      pool.submit([hashed] { (*hashed)(); });
      while (ops.size() > max_ops) MMAR_TRY(apply_front());
      continue;
    }

    if (single_streams) {
      // One stream for the whole member (in memory: this is the format
      // older readers know, not the bounded pipeline).
      if (size > SIZE_MAX / 2) return Error(Errc::limit, in.name + ": too large to compress in one stream");
      auto whole = std::make_shared<std::vector<std::byte>>(size);
      MMAR_TRY(src.read(0, whole->data(), size));
      if (src.fd >= 0) MMAR_TRY(check_unchanged(src.fd, size, mtime, in));
      const uint64_t h = XXH3_64bits(whole->data(), size);
      entries.entry(i).me_xxh3 = h;
      hash_of[i] = h;
      hash_known[i] = 1;
      auto task = std::make_shared<std::packaged_task<Result<FrameResult>()>>(
          [codec, level, threads, whole]() -> Result<FrameResult> {
            MMAR_ASSIGN(auto c, codec::compress(codec, level, *whole, threads));
            FrameResult r;
            if (c) r.stored = std::move(*c);
            return r;
          });
      auto place = [&, i, whole, size, detected](FrameResult* r) -> Result<void> {
        format::Entry& e = entries.entry(i);
        if (!r->stored.empty()) {  // compressed: unaligned (format::packed_align)
          MMAR_TRY(pwrite_all(fd, r->stored, offset, path));
          e.me_codec = static_cast<uint8_t>(codec);
          e.me_stored_size = r->stored.size();
          e.me_data_offset = offset;
          offset += e.me_stored_size;
          ++stats.compressed_members;
        } else {
          const bool page =
              format::raw_on_page(detected.kind == Kind::elf, size, align, format::RawWhy::incompressible);
          place_raw(e, size, page, offset);
          MMAR_TRY(pwrite_all(fd, *whole, e.me_data_offset, path));
          MMAR_TRY(finish_raw(e));
        }
        progress(size);
        return success();
      };
      ops.push_back(Op{task->get_future(), std::move(place)});
      pool.submit([task] { (*task)(); });
      while (ops.size() > max_ops) MMAR_TRY(apply_front());
      continue;
    }

    // A frame stream of its own, read once, frame by frame.
    auto st = std::make_shared<Stream>();
    st->size = size;
    st->log2 = frame_log2;
    st->sized = true;  // the member's bytes, all of them
    MMAR_TRY(begin_stream(st));
    XXH3_state_t state;
    XXH3_64bits_reset(&state);
    for (uint64_t at = 0; at < size; at += frame) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(frame, size - at));
      std::vector<std::byte> buf(n);
      MMAR_TRY(src.read(at, buf.data(), n));
      if (!early_hash) XXH3_64bits_update(&state, buf.data(), n);
      auto write_frame = frame_op(st);
      auto write_counted = [write_frame, &progress, n](FrameResult* r) -> Result<void> {
        MMAR_TRY(write_frame(r));
        progress(n);
        return success();
      };
      MMAR_TRY(push_frame(std::move(buf), std::move(write_counted)));
    }
    if (src.fd >= 0) MMAR_TRY(check_unchanged(src.fd, size, mtime, in));
    const uint64_t h = early_hash ? *early_hash : XXH3_64bits_digest(&state);
    entries.entry(i).me_xxh3 = h;
    hash_of[i] = h;
    hash_known[i] = 1;
    ++stats.compressed_members;
    auto finish_member = [&, i, st, file, src, size, detected, mtime](FrameResult*) -> Result<void> {
      MMAR_ASSIGN(uint64_t stored, finish_stream(*st));
      if (stored < size) {
        set_framed(i, st->start, stored, 0);
        return success();
      }
      // Compression did not pay: the member is stored raw instead (read a
      // second time, kernel-side), and what the frames took is zeroed.
      --stats.compressed_members;
      const uint64_t abandoned_end = offset;
      const bool page =
          format::raw_on_page(detected.kind == Kind::elf, size, align, format::RawWhy::incompressible);
      MMAR_TRY(zero_range(fd, st->start, abandoned_end - st->start, path));
      format::Entry& e = entries.entry(i);
      // Where the frames were (zeros up to abandoned_end: later data
      // overwrites them, truncation cuts them), never a hole.
      place_raw(e, size, page, st->start, /*may_fill=*/false);
      MMAR_TRY(src.copy_to(fd, e.me_data_offset, size, path));
      // Read a second time: it must still be the bytes that were hashed.
      if (src.fd >= 0) MMAR_TRY(check_unchanged(src.fd, size, mtime, *src.in));
      MMAR_TRY(finish_raw(e));
      return success();
    };
    MMAR_TRY(push(std::move(finish_member)));
  }
  MMAR_TRY(flush_pack());
  while (!ops.empty()) MMAR_TRY(apply_front());

  // Members that share an earlier member's data (hard links, same bytes).
  for (uint32_t i = 0; i < sorted.size(); ++i) {
    if (same_as[i] == format::kNoLink) continue;
    const format::Entry first = entries.entry(same_as[i]);
    format::Entry& e = entries.entry(i);
    e.me_data_offset = first.me_data_offset;
    e.me_stored_size = first.me_stored_size;
    e.me_size = first.me_size;
    e.me_xxh3 = first.me_xxh3;
    e.me_codec = first.me_codec;
    e.me_kind = first.me_kind;
    e.me_flags = first.me_flags;
    e.me_stream_offset = first.me_stream_offset;
    if (same_bytes_as[i]) {
      ++stats.deduplicated;  // counted in input_bytes when it was read
      stats.deduplicated_bytes += first.me_size;
    } else {
      stats.input_bytes += first.me_size;  // a hard link, not read
    }
  }

  // Index: entries then names, 8-aligned, hashed as one range.
  offset = *align_up(offset, 8);
  const uint64_t index_offset = offset;
  uint32_t flags = (any_framed ? format::kSbFlagFramed : 0) | (any_framed2 ? format::kSbFlagFramed2 : 0) |
                   (any_framed3 ? format::kSbFlagFramed3 : 0);
  MMAR_ASSIGN(std::vector<std::byte> index,
              index_codec::store_index(entries.bytes(), static_cast<uint32_t>(entries.count()), options.index,
                                                stats.compressed_members > 0, flags));
  MMAR_TRY(pwrite_all(fd, index, index_offset, path));
  format::Superblock sb = index_codec::make_superblock(1, align_log2, flags, index_offset, index,
                                                       static_cast<uint32_t>(entries.count()));
  if (!fence_block.empty()) {
    fence::finish(fence_block, sb.sb_index_xxh3, 1);
    MMAR_TRY(pwrite_all(fd, fence_block, fence::kOffset, path));
  }
  MMAR_TRY(pwrite_all(fd, &sb, sizeof sb, 0, path));
  MMAR_TRY(pwrite_all(fd, &sb, sizeof sb, format::kSuperblockSize, path));

  stats.members = static_cast<uint32_t>(entries.count());
  stats.archive_bytes = index_offset + index.size();
  return stats;
}

namespace {
const char* ctf_model_name(uint64_t model) { return model == ctfa::kModelILP32 ? "ILP32" : "LP64"; }
}  // namespace

// The data model the header gives every dict: options.ctf_model, else the
// one the inputs imply (ctf_container::archive_input), inputs that disagree
// being refused; raw dicts imply none, and an archive of nothing else is
// LP64, libctf's default.
Result<WriteStats> Writer::Impl::write_ctf(int fd, const std::string& path, std::vector<Input>& sorted) {
  if (options.ctf_model > ctfa::kModelLP64) {
    return Error(Errc::invalid_argument, "CTF data model " + std::to_string(options.ctf_model) + " (1 ILP32, 2 LP64)");
  }
  for (const auto& in : sorted) {
    if (in.type == InputType::dir || in.type == InputType::symlink || in.type == InputType::special) {
      return Error(Errc::invalid_argument, "'" + in.name + "': a CTF archive holds only regular members");
    }
  }
  // The dicts: an input's own bytes (a raw dict), its ELF .ctf section's
  // dict, or the dicts of the CTF archive it is (or its .ctf section is),
  // named as there. All are read first: the model and the names are known
  // only once every input has been looked at.
  struct Dict {
    std::string name;
    Bytes bytes;        // the dict (a view into `data`)
    const Input* from;  // for messages
  };
  std::vector<Dict> dicts;
  uint64_t model = options.ctf_model;
  const Input* model_from = nullptr;
  for (const Input& in : sorted) {
    Bytes data;
    if (in.type == InputType::file) {
      MMAR_ASSIGN(Source src, Source::open(in.path));
      MMAR_ASSIGN(data, src.read(0, src.size()));
    } else if (in.type == InputType::member) {
      MMAR_ASSIGN(data, in.archive->read(*in.member));
    } else {
      data = Bytes({in.bytes->data(), in.bytes->size()}, in.bytes);
    }
    MMAR_ASSIGN(ctf_container::ArchiveInput got, ctf_container::archive_input(data.span(), in.name));
    if (options.ctf_model == 0 && got.model != 0) {
      if (got.model != ctfa::kModelILP32 && got.model != ctfa::kModelLP64) {
        return Error(Errc::unsupported, in.name + ": CTF archive data model " + std::to_string(got.model) +
                                            " (1 ILP32, 2 LP64; --ctf-model overrides it)");
      }
      if (model_from == nullptr) {
        model = got.model;
        model_from = &in;
      } else if (got.model != model) {
        return Error(Errc::invalid_argument, "'" + model_from->name + "' is " + ctf_model_name(model) + " but '" +
                                                 in.name + "' is " + ctf_model_name(got.model) +
                                                 ": a CTF archive has one data model (choose one with --ctf-model)");
      }
    }
    for (const auto& d : got.dicts) {
      const auto at = static_cast<size_t>(d.dict.data() - data.data());
      dicts.push_back({d.name.empty() ? in.name : d.name, data.subspan(at, d.dict.size()), &in});
    }
  }
  if (model == 0) model = ctfa::kModelLP64;
  std::stable_sort(dicts.begin(), dicts.end(), [](const Dict& a, const Dict& b) { return a.name < b.name; });
  for (size_t i = 1; i < dicts.size(); ++i) {
    if (dicts[i].name == dicts[i - 1].name) {
      return Error(Errc::invalid_argument, "duplicate member name '" + dicts[i].name + "' (from '" +
                                               dicts[i - 1].from->name + "' and '" + dicts[i].from->name + "')");
    }
  }

  // Layout: header, modents (sorted by name), names, then each dict as a u64
  // size and its bytes, 8-aligned (libctf aligns the same way).
  const uint64_t n = dicts.size();
  const uint64_t names_off = sizeof(ctfa::Header) + n * sizeof(ctfa::Modent);
  std::string names;
  std::vector<ctfa::Modent> modents(n);
  for (size_t i = 0; i < n; ++i) {
    modents[i].name_offset = names.size();
    names += dicts[i].name;
    names.push_back('\0');
  }
  const uint64_t ctfs_off = *align_up(names_off + names.size(), 8);
  uint64_t offset = ctfs_off;
  uint64_t end = ctfs_off;
  WriteStats stats;
  for (size_t i = 0; i < n; ++i) {
    const Bytes& data = dicts[i].bytes;
    modents[i].ctf_offset = offset - ctfs_off;
    ul64 size = data.size();
    MMAR_TRY(pwrite_all(fd, &size, sizeof size, offset, path));
    MMAR_TRY(pwrite_all(fd, data.span(), offset + 8, path));
    end = offset + 8 + data.size();
    offset = *align_up(end, 8);
    stats.input_bytes += data.size();
    if (options.progress) options.progress(stats.input_bytes, 0);
  }
  ctfa::Header h{};
  h.ctfa_magic = ctfa::kMagic;
  h.ctfa_model = model;
  h.ctfa_ndicts = n;
  h.ctfa_names = names_off;
  h.ctfa_ctfs = ctfs_off;
  MMAR_TRY(pwrite_all(fd, &h, sizeof h, 0, path));
  if (n != 0) MMAR_TRY(pwrite_all(fd, modents.data(), n * sizeof(ctfa::Modent), sizeof h, path));
  MMAR_TRY(pwrite_all(fd, names.data(), names.size(), names_off, path));
  stats.members = static_cast<uint32_t>(n);
  stats.archive_bytes = std::max<uint64_t>(end, names_off + names.size());
  return stats;
}

Result<WriteStats> Writer::write(const std::string& path) {
  // Replacing an archive is writing it: refused while another writer (a
  // writable mount, a compaction) holds it.
  std::optional<WriterLock> held;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    auto lock = WriterLock::acquire(path);
    if (lock.ok()) {
      held.emplace(std::move(lock).value());
    } else if (lock.error().code() == Errc::busy) {
      return std::move(lock).error();
    }  // else unreadable or gone: nobody can be writing it through mmar
  }
  return write_to(path);
}

Result<WriteStats> Writer::write(const WriterLock& held) { return write_to(held.path(), held.fd()); }

Result<WriteStats> Writer::write_to(const std::string& path, int like) {
  Impl& w = *impl_;
  if (w.options.format == Format::plain) {
    return Error(Errc::invalid_argument, "cannot write the 'plain' format");
  }
  std::vector<Input>& sorted = w.inputs;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Input& a, const Input& b) { return a.name < b.name; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i].name == sorted[i - 1].name) {
      return Error(Errc::invalid_argument, "duplicate member name '" + sorted[i].name + "'");
    }
  }
  // Only directories have members below them (what verify and the mount
  // require): "a" a file and "a/b" is refused here, not found later.
  if (w.options.format == Format::mmar) {
    for (const Input& in : sorted) {
      if (in.type == InputType::dir) continue;
      const std::string below = in.name + "/";
      auto at = std::lower_bound(sorted.begin(), sorted.end(), below,
                                 [](const Input& x, const std::string& n) { return x.name < n; });
      if (at != sorted.end() && at->name.compare(0, below.size(), below) == 0) {
        return Error(Errc::invalid_argument,
                     "'" + at->name + "' lies below '" + in.name + "', which is not a directory");
      }
    }
  }
  MMAR_ASSIGN(AtomicFile out, AtomicFile::create(path));
  // Locked before it becomes the archive, so no writer slips in between.
  MMAR_TRY(WriterLock::lock_fd(out.fd(), path));
  if (like >= 0) MMAR_TRY(out.copy_owner_and_mode(like));
  Result<WriteStats> stats =
      w.options.format == Format::ctf ? w.write_ctf(out.fd(), path, sorted) : w.write_mmar(out.fd(), path, sorted);
  if (!stats.ok()) return stats;
  if (ftruncate(out.fd(), static_cast<off_t>(stats->archive_bytes)) != 0) {
    return sys_error("truncate " + out.temp_path(), errno);
  }
  MMAR_TRY(out.commit());
  return stats;
}

}  // namespace mmar
