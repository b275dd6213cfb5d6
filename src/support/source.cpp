// SPDX-License-Identifier: BSD-2-Clause
#include "mmar/source.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <atomic>
#include <limits>

#include "support/checked.h"
#include "support/fd.h"

namespace mmar {

const char* errc_name(Errc code) {
  switch (code) {
    case Errc::io: return "io";
    case Errc::malformed: return "malformed";
    case Errc::unsupported: return "unsupported";
    case Errc::not_found: return "not_found";
    case Errc::checksum: return "checksum";
    case Errc::limit: return "limit";
    case Errc::invalid_argument: return "invalid_argument";
    case Errc::busy: return "busy";
  }
  return "unknown";
}

Error sys_error(const std::string& what, int err) {
  return Error(Errc::io, what + ": " + std::strerror(err), Error::kNoOffset, err);
}

Bytes Bytes::from_vector(std::vector<std::byte> buffer) {
  auto owner = std::make_shared<std::vector<std::byte>>(std::move(buffer));
  std::span<const std::byte> view(owner->data(), owner->size());
  return Bytes(view, std::move(owner));
}

namespace {

struct Mapping {
  void* addr = nullptr;
  size_t length = 0;
  Mapping(void* a, size_t l) : addr(a), length(l) {}
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (addr != nullptr && length != 0) munmap(addr, length);
  }
};

}  // namespace

struct Source::Impl {
  std::string name;
  UniqueFd fd;                            // -1 for memory sources
  std::span<const std::byte> contiguous;  // mapping or buffer, when contiguous
  std::shared_ptr<const void> owner;      // keeps `contiguous` alive
  uint64_t size = 0;
  bool is_contiguous = false;
  bool is_mapped = false;
  Source::RangeReader reader;  // from_reader sources
  mutable std::atomic<uint64_t> reads{0};
};

namespace {

Result<std::vector<std::byte>> read_stream(int fd, const std::string& name) {
  std::vector<std::byte> out;
  size_t used = 0;
  for (;;) {
    if (out.size() - used < 65536) out.resize(out.size() < 65536 ? 131072 : out.size() * 2);
    ssize_t n = ::read(fd, out.data() + used, out.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("read " + name, errno);
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  out.resize(used);
  out.shrink_to_fit();
  return out;
}

}  // namespace

// Takes ownership of `owned`.
static Result<Source> source_from_owned_fd(UniqueFd owned, std::string name, SourceOptions options) {
  const int dup = owned.get();
  auto impl = std::make_shared<Source::Impl>();
  impl->name = std::move(name);
  impl->fd = std::move(owned);

  struct stat st {};
  if (fstat(dup, &st) != 0) return sys_error("stat " + impl->name, errno);
  if (S_ISDIR(st.st_mode)) return Error(Errc::invalid_argument, impl->name + ": is a directory");

  // sysfs and procfs files report sizes that need not match their contents,
  // and some cannot be mapped: read those as streams.
  bool regular = S_ISREG(st.st_mode);
  // A file larger than the address space (a 32-bit process) is read with pread.
  const bool mappable = static_cast<uint64_t>(st.st_size) <= std::numeric_limits<size_t>::max();
  if (regular && st.st_size > 0 && mappable && !options.force_pread) {
    void* p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, dup, 0);
    if (p != MAP_FAILED) {
      impl->size = static_cast<uint64_t>(st.st_size);
      auto mapping = std::make_shared<Mapping>(p, impl->size);
      impl->contiguous = {static_cast<const std::byte*>(p), static_cast<size_t>(impl->size)};
      impl->owner = std::move(mapping);
      impl->is_contiguous = true;
      impl->is_mapped = true;
      return Source::from_impl(std::move(impl));
    }
  }
  if (regular && st.st_size > 0) {
    // pread on demand; the file is assumed not to change size under us, and
    // every read is still bounds-checked against the size seen here.
    impl->size = static_cast<uint64_t>(st.st_size);
    return Source::from_impl(std::move(impl));
  }
  // A stream (pipe, socket, tty) or a pseudo file: read it whole.
  MMAR_ASSIGN(auto buffer, read_stream(dup, impl->name));
  auto owner = std::make_shared<std::vector<std::byte>>(std::move(buffer));
  impl->size = owner->size();
  impl->contiguous = {owner->data(), owner->size()};
  impl->owner = std::move(owner);
  impl->is_contiguous = true;
  return Source::from_impl(std::move(impl));
}

Result<Source> Source::from_fd(int fd, std::string name, SourceOptions options) {
  int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (dup < 0) return sys_error("dup " + name, errno);
  return source_from_owned_fd(UniqueFd(dup), std::move(name), options);
}

Result<Source> Source::open(const std::string& path, SourceOptions options) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return sys_error(path, errno);
  return source_from_owned_fd(UniqueFd(fd), path, options);
}

Source Source::borrow(std::span<const std::byte> bytes, std::string name) {
  auto impl = std::make_shared<Impl>();
  impl->name = std::move(name);
  impl->contiguous = bytes;
  impl->size = bytes.size();
  impl->is_contiguous = true;
  return Source(std::move(impl));
}

Source Source::take(std::vector<std::byte> bytes, std::string name) {
  auto impl = std::make_shared<Impl>();
  auto owner = std::make_shared<std::vector<std::byte>>(std::move(bytes));
  impl->name = std::move(name);
  impl->contiguous = {owner->data(), owner->size()};
  impl->size = owner->size();
  impl->owner = std::move(owner);
  impl->is_contiguous = true;
  return Source(std::move(impl));
}

const std::string& Source::name() const { return impl_->name; }
uint64_t Source::size() const { return impl_->size; }
bool Source::contiguous() const { return impl_->is_contiguous; }
bool Source::mapped() const { return impl_->is_mapped; }
std::span<const std::byte> Source::all() const { return impl_->contiguous; }
int Source::fd() const { return impl_->fd.get(); }

Result<Bytes> Source::read(uint64_t offset, uint64_t size) const {
  if (!in_bounds(offset, size, impl_->size)) {
    return Error(Errc::malformed,
                 impl_->name + ": range [" + std::to_string(offset) + ", +" + std::to_string(size) +
                     ") is outside the file (" + std::to_string(impl_->size) + " bytes)",
                 offset);
  }
  if (impl_->is_contiguous) {
    return Bytes(impl_->contiguous.subspan(offset, size), impl_->owner);
  }
  std::vector<std::byte> buffer;
  try {
    buffer.resize(size);
  } catch (const std::bad_alloc&) {
    return Error(Errc::limit, impl_->name + ": cannot allocate " + std::to_string(size) + " bytes");
  }
  impl_->reads.fetch_add(1, std::memory_order_relaxed);
  if (impl_->reader) {
    MMAR_TRY(impl_->reader(offset, std::span<std::byte>(buffer.data(), buffer.size())));
    return Bytes::from_vector(std::move(buffer));
  }
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(impl_->fd.get(), buffer.data() + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("pread " + impl_->name, errno);
    }
    if (n == 0) {
      return Error(Errc::malformed, impl_->name + ": file shrank while reading", offset + done);
    }
    done += static_cast<size_t>(n);
  }
  return Bytes::from_vector(std::move(buffer));
}

uint64_t Source::reads() const { return impl_->reads.load(std::memory_order_relaxed); }

Result<std::vector<Bytes>> Source::read_batch(std::span<const Range> ranges) const {
  std::vector<Bytes> out(ranges.size());
  // Ranges in offset order, merged when the gap between them is small (one
  // read of the gap costs less than another request).
  constexpr uint64_t kGap = 4096;
  std::vector<size_t> order(ranges.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranges[a].offset < ranges[b].offset; });
  for (size_t i = 0; i < order.size();) {
    const Range& first = ranges[order[i]];
    if (!in_bounds(first.offset, first.size, impl_->size)) {
      return Error(Errc::malformed,
                   impl_->name + ": range [" + std::to_string(first.offset) + ", +" + std::to_string(first.size) +
                       ") is outside the file (" + std::to_string(impl_->size) + " bytes)",
                   first.offset);
    }
    uint64_t end = first.offset + first.size;
    size_t j = i + 1;
    for (; j < order.size(); ++j) {
      const Range& r = ranges[order[j]];
      if (!in_bounds(r.offset, r.size, impl_->size) || r.offset > end + kGap) break;
      end = std::max(end, r.offset + r.size);
    }
    MMAR_ASSIGN(Bytes whole, read(first.offset, end - first.offset));
    for (size_t k = i; k < j; ++k) {
      const Range& r = ranges[order[k]];
      out[order[k]] = whole.subspan(static_cast<size_t>(r.offset - first.offset), static_cast<size_t>(r.size));
    }
    i = j;
  }
  return out;
}

Source Source::from_reader(std::string name, uint64_t size, RangeReader read_range) {
  auto impl = std::make_shared<Impl>();
  impl->name = std::move(name);
  impl->size = size;
  impl->reader = std::move(read_range);
  return Source(std::move(impl));
}

}  // namespace mmar
