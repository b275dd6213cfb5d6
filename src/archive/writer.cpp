// Archive writer: one pass over the sorted members, compression on worker
// threads ahead of a single writing thread, atomic commit.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t on the stack
#include <xxhash.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "archive/codec.h"
#include "archive/detect.h"
#include "archive/fence.h"
#include "archive/format.h"
#include "archive/index_codec.h"
#include "archive/names.h"
#include "mmar/archive.h"
#include "support/atomic_file.h"
#include "support/checked.h"
#include "support/fd.h"

namespace mmar {

namespace {

enum class InputType : uint8_t { file, bytes, dir, symlink };

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
};

// A member ready to be written: its hash, its kind, and either the
// compressed form (when smaller), the bytes (buffers and symlinks), or an
// open fd whose contents the writer copies kernel-side (raw files).
struct Prepared {
  Bytes data;
  UniqueFd fd;
  uint64_t size = 0;
  struct timespec mtime {};
  std::optional<std::vector<std::byte>> compressed;
  uint64_t xxh3 = 0;
  Detected detected;
  std::optional<std::string> link_target;  // from WriteOptions::link_for
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

  Result<void> add(Input in) {
    MMAR_ASSIGN(in.name, normalize_member_name(in.name));
    inputs.push_back(std::move(in));
    return success();
  }

  Result<Prepared> prepare(const Input& in, unsigned threads) const;
  Result<Prepared> prepare_data(const Input& in, unsigned threads) const;
  Result<WriteStats> write_mmar(int fd, const std::string& path, std::vector<Input>& sorted);
  Result<WriteStats> write_ctf(int fd, const std::string& path, std::vector<Input>& sorted);
};

Writer::Writer(WriteOptions options) : impl_(std::make_unique<Impl>()) { impl_->options = std::move(options); }
Writer::~Writer() = default;
Writer::Writer(Writer&&) noexcept = default;
Writer& Writer::operator=(Writer&&) noexcept = default;

size_t Writer::pending() const { return impl_->inputs.size(); }

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
  } else {
    return Error(Errc::unsupported, path + ": not a regular file, directory or symlink");
  }
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
  for (const auto& child : children) {
    std::string child_path = dir + "/" + child;
    std::string child_name = name.empty() ? child : name + "/" + child;
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

Result<void> Writer::set_link(const std::string& name, const std::string& target) {
  MMAR_ASSIGN(std::string n, normalize_member_name(name));
  MMAR_ASSIGN(std::string t, normalize_member_name(target));
  impl_->links.emplace_back(std::move(n), std::move(t));
  return success();
}

Result<Prepared> Writer::Impl::prepare(const Input& in, unsigned threads) const {
  MMAR_ASSIGN(Prepared p, prepare_data(in, threads));
  if (options.link_for && in.type != InputType::dir && in.type != InputType::symlink &&
      (p.detected.kind == Kind::btf || p.detected.has_btf)) {
    LinkQuery q;
    q.member = in.name;
    q.path = in.type == InputType::file ? std::string_view(in.path) : std::string_view();
    q.bytes = in.type == InputType::bytes ? p.data.span() : std::span<const std::byte>();
    q.kind = p.detected.kind;
    q.has_btf = p.detected.has_btf;
    p.link_target = options.link_for(q);
  }
  return p;
}

Result<Prepared> Writer::Impl::prepare_data(const Input& in, unsigned threads) const {
  Prepared p;
  if (in.type == InputType::dir) return p;
  const bool may_compress = options.format == Format::mmar && options.codec != Codec::none && options.threshold != 0;
  if (in.type != InputType::file) {
    p.data = Bytes({in.bytes->data(), in.bytes->size()}, in.bytes);
    p.size = p.data.size();
    p.xxh3 = XXH3_64bits(p.data.data(), p.data.size());
    if (in.type == InputType::symlink) return p;
    p.detected = detect_kind(p.data.span());
    if (may_compress && p.size > options.threshold) {
      auto c = codec::compress(options.codec, options.level, p.data.span(), threads);
      if (!c.ok()) return std::move(c).error().with_context(in.name);
      p.compressed = std::move(c).value();
    }
    return p;
  }
  // Files are read with pread into a reused per-thread buffer rather than
  // mapped: on many machines a page fault costs more than the copy.
  int raw_fd = ::open(in.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw_fd < 0) return sys_error(in.path, errno);
  p.fd.reset(raw_fd);
  struct stat st {};
  if (fstat(raw_fd, &st) != 0) return sys_error("stat " + in.path, errno);
  if (!S_ISREG(st.st_mode)) return Error(Errc::unsupported, in.path + ": no longer a regular file");
  p.size = static_cast<uint64_t>(st.st_size);
  p.mtime = st.st_mtim;
  if (may_compress && p.size > options.threshold) {
    if (p.size > SIZE_MAX / 2) return Error(Errc::limit, in.path + ": too large to compress in memory");
    auto& buf = thread_buffer(p.size);
    MMAR_TRY(pread_full(raw_fd, buf.data(), p.size, 0, in.path));
    std::span<const std::byte> data(buf.data(), p.size);
    p.xxh3 = XXH3_64bits(data.data(), data.size());
    FdReader reader{raw_fd};
    p.detected = detect_kind(data.first(std::min<size_t>(data.size(), 65536)), p.size, fd_read_at, &reader);
    auto c = codec::compress(options.codec, options.level, data, threads);
    if (!c.ok()) return std::move(c).error().with_context(in.name);
    p.compressed = std::move(c).value();
    if (p.compressed) p.fd.reset();  // otherwise stored raw from the fd
    return p;
  }
  // Raw: hash in chunks; the writer copies the bytes kernel-side.
  auto& buf = thread_buffer(kChunk);
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  std::vector<std::byte> head;
  for (uint64_t off = 0; off < p.size;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, p.size - off));
    MMAR_TRY(pread_full(raw_fd, buf.data(), n, off, in.path));
    if (off == 0) head.assign(buf.data(), buf.data() + std::min<size_t>(n, 65536));
    XXH3_64bits_update(&state, buf.data(), n);
    off += n;
  }
  p.xxh3 = XXH3_64bits_digest(&state);
  FdReader reader{raw_fd};
  p.detected = detect_kind(head, p.size, fd_read_at, &reader);
  return p;
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
// filesystems). Then check the source did not change while archived, since
// its hash was taken before.
Result<void> copy_raw(Prepared& p, int out, uint64_t offset, const Input& in, const std::string& path) {
  const int src = p.fd.get();
  uint64_t done = 0;
  bool use_copy_range = true;
  while (done < p.size) {
    if (use_copy_range) {
      loff_t in_off = static_cast<loff_t>(done);
      loff_t out_off = static_cast<loff_t>(offset + done);
      ssize_t n = ::copy_file_range(src, &in_off, out, &out_off, p.size - done, 0);
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
    size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, p.size - done));
    MMAR_TRY(pread_full(src, buf.data(), n, done, in.path));
    MMAR_TRY(pwrite_all(out, buf.data(), n, offset + done, path));
    done += n;
  }
  struct stat st {};
  if (fstat(src, &st) == 0 && (static_cast<uint64_t>(st.st_size) != p.size || st.st_mtim.tv_sec != p.mtime.tv_sec ||
                               st.st_mtim.tv_nsec != p.mtime.tv_nsec)) {
    return Error(Errc::io, in.path + ": file changed while being archived");
  }
  return success();
}

}  // namespace

Result<WriteStats> Writer::Impl::write_mmar(int fd, const std::string& path, std::vector<Input>& sorted) {
  const uint64_t align = options.alignment;
  uint8_t align_log2 = 0;
  while ((uint64_t{1} << align_log2) < align) ++align_log2;
  if ((uint64_t{1} << align_log2) != align || align_log2 < format::kMinAlignLog2 ||
      align_log2 > format::kMaxAlignLog2) {
    return Error(Errc::invalid_argument, "alignment must be 4096, 8192, 16384, 32768 or 65536");
  }
  if (sorted.size() > 0xfffffffeu) return Error(Errc::limit, "too many members");

  // Links by name -> index in sorted order.
  std::vector<uint32_t> link_of(sorted.size(), format::kNoLink);
  for (const auto& [name, target] : links) {
    auto by = [](const Input& in, const std::string& n) { return in.name < n; };
    auto a = std::lower_bound(sorted.begin(), sorted.end(), name, by);
    auto b = std::lower_bound(sorted.begin(), sorted.end(), target, by);
    if (a == sorted.end() || a->name != name)
      return Error(Errc::invalid_argument, "link from unknown member '" + name + "'");
    if (b == sorted.end() || b->name != target)
      return Error(Errc::invalid_argument, "link to unknown member '" + target + "'");
    if (a == b) return Error(Errc::invalid_argument, "member '" + name + "' links to itself");
    link_of[a - sorted.begin()] = static_cast<uint32_t>(b - sorted.begin());
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

  unsigned threads = options.threads != 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  uint64_t total = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (same_as[i] == format::kNoLink) total += sorted[i].size_hint;
  }

  // Window of members in flight: bounded by count and by input bytes, so
  // memory does not grow with the size of the whole input.
  const size_t max_in_flight = 4 * size_t{threads} + 4;
  const uint64_t max_bytes_in_flight = uint64_t{256} << 20;
  ThreadPool pool(threads);
  std::deque<std::future<Result<Prepared>>> in_flight;
  uint64_t bytes_in_flight = 0;
  size_t next_submit = 0;
  auto submit_more = [&] {
    while (next_submit < sorted.size() && in_flight.size() < max_in_flight &&
           (in_flight.empty() || bytes_in_flight + sorted[next_submit].size_hint <= max_bytes_in_flight)) {
      const bool shared = same_as[next_submit] != format::kNoLink;
      auto task =
          std::make_shared<std::packaged_task<Result<Prepared>()>>([this, &in = sorted[next_submit], threads, shared] {
            return shared ? Result<Prepared>(Prepared{}) : prepare(in, threads);
          });
      in_flight.push_back(task->get_future());
      bytes_in_flight += sorted[next_submit].size_hint;
      pool.submit([task] { (*task)(); });
      ++next_submit;
    }
  };

  index_codec::IndexBuilder entries;
  WriteStats stats;
  // The name fence (if the archive is large enough for one) sits right
  // after the superblocks; its index-dependent fields are filled at the end.
  std::vector<std::byte> fence_block;
  {
    std::vector<std::string_view> sorted_names;
    sorted_names.reserve(sorted.size());
    for (const Input& in : sorted) sorted_names.push_back(in.name);
    fence_block = fence::build(sorted_names);
  }
  uint64_t offset = *align_up(format::kHeaderAreaSize + fence_block.size(), format::kPackedAlign);
  uint64_t done = 0;
  uint64_t flushed = 0;
  constexpr uint64_t kWritebackChunk = uint64_t{8} << 20;
  Result<void> failure;
  for (size_t i = 0; i < sorted.size(); ++i) {
    submit_more();
    Result<Prepared> r = in_flight.front().get();
    in_flight.pop_front();
    const Input& in = sorted[i];
    bytes_in_flight -= in.size_hint;
    if (!r.ok()) {
      failure = std::move(r).error();
      break;  // the pool drains the remaining jobs in its destructor
    }
    Prepared& p = *r;
    format::Entry& e = entries.add(in.name);
    e.me_mode = in.mode;
    e.me_mtime_ns = static_cast<uint64_t>(in.mtime_ns);
    e.me_link = link_of[i];
    if (same_as[i] != format::kNoLink) {
      const format::Entry& first = entries.entry(same_as[i]);
      e.me_data_offset = first.me_data_offset;
      e.me_stored_size = first.me_stored_size;
      e.me_size = first.me_size;
      e.me_xxh3 = first.me_xxh3;
      e.me_codec = first.me_codec;
      e.me_kind = first.me_kind;
      e.me_flags = first.me_flags;
      stats.input_bytes += first.me_size;
      continue;
    }
    if (p.link_target && e.me_link == format::kNoLink) {
      auto by = [](const Input& x, const std::string& n) { return x.name < n; };
      auto t = std::lower_bound(sorted.begin(), sorted.end(), *p.link_target, by);
      if (t != sorted.end() && t->name == *p.link_target && t - sorted.begin() != static_cast<ptrdiff_t>(i)) {
        e.me_link = static_cast<uint32_t>(t - sorted.begin());
      }
    }
    e.me_size = p.size;
    e.me_xxh3 = in.type == InputType::dir ? 0 : p.xxh3;
    e.me_kind = static_cast<uint8_t>(p.detected.kind);
    uint16_t flags = p.detected.has_btf ? format::kFlagHasBtf : 0;
    if (in.type != InputType::dir && p.size != 0) {
      if (p.compressed) {
        offset = *align_up(offset, format::kPackedAlign);
        e.me_codec = static_cast<uint8_t>(options.codec);
        e.me_stored_size = p.compressed->size();
        MMAR_TRY(pwrite_all(fd, *p.compressed, offset, path));
        ++stats.compressed_members;
      } else if (in.type == InputType::symlink) {
        e.me_stored_size = p.data.size();
        MMAR_TRY(pwrite_all(fd, p.data.span(), offset, path));
      } else {
        // Raw data that may be mapped starts on a page: ELF objects (their
        // segments map straight from the archive) and anything a page or
        // larger. Smaller members are packed; a page each would waste more
        // than they hold.
        if (p.detected.kind == Kind::elf || p.size >= align) {
          offset = *align_up(offset, align);
          flags |= format::kFlagPageAligned;
        } else {
          offset = *align_up(offset, format::kPackedAlign);
        }
        e.me_stored_size = p.size;
        if (p.fd) {
          MMAR_TRY(copy_raw(p, fd, offset, in, path));
        } else {
          MMAR_TRY(pwrite_all(fd, p.data.span(), offset, path));
        }
      }
      e.me_data_offset = offset;
      offset += e.me_stored_size;
    }
    e.me_flags = flags;
    stats.input_bytes += p.size;
    done += in.size_hint;
    // Start writeback of what is written so far (as dpkg does), so the
    // fsync before the rename has little left to wait for.
    if (offset - flushed >= kWritebackChunk) {
      ::sync_file_range(fd, static_cast<off_t>(flushed), static_cast<off_t>(offset - flushed), SYNC_FILE_RANGE_WRITE);
      flushed = offset;
    }
    if (options.progress) options.progress(done, total);
  }
  if (!failure.ok()) return std::move(failure).error();

  // Index: entries then names, 8-aligned, hashed as one range.
  offset = *align_up(offset, 8);
  const uint64_t index_offset = offset;
  std::vector<std::byte> index = entries.bytes();
  MMAR_TRY(pwrite_all(fd, index, index_offset, path));
  format::Superblock sb = index_codec::make_superblock(1, align_log2, 0, index_offset, index,
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

Result<WriteStats> Writer::Impl::write_ctf(int fd, const std::string& path, std::vector<Input>& sorted) {
  if (options.ctf_model > ctfa::kModelLP64) {
    return Error(Errc::invalid_argument, "CTF data model " + std::to_string(options.ctf_model) + " (1 ILP32, 2 LP64)");
  }
  // Layout: header, modents (sorted by name), names, then each dict as a u64
  // size and its bytes, 8-aligned (libctf aligns the same way).
  for (const auto& in : sorted) {
    if (in.type == InputType::dir || in.type == InputType::symlink) {
      return Error(Errc::invalid_argument, "'" + in.name + "': a CTF archive holds only regular members");
    }
  }
  const uint64_t n = sorted.size();
  const uint64_t names_off = sizeof(ctfa::Header) + n * sizeof(ctfa::Modent);
  std::string names;
  std::vector<ctfa::Modent> modents(n);
  for (size_t i = 0; i < n; ++i) {
    modents[i].name_offset = names.size();
    names += sorted[i].name;
    names.push_back('\0');
  }
  const uint64_t ctfs_off = *align_up(names_off + names.size(), 8);
  uint64_t offset = ctfs_off;
  uint64_t end = ctfs_off;
  WriteStats stats;
  for (size_t i = 0; i < n; ++i) {
    Bytes data;
    if (sorted[i].type == InputType::file) {
      MMAR_ASSIGN(Source src, Source::open(sorted[i].path));
      MMAR_ASSIGN(data, src.read(0, src.size()));
    } else {
      data = Bytes({sorted[i].bytes->data(), sorted[i].bytes->size()}, sorted[i].bytes);
    }
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
  h.ctfa_model = options.ctf_model != 0 ? uint64_t{options.ctf_model} : ctfa::kModelLP64;
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
