// SPDX-License-Identifier: BSD-2-Clause
// Byte sources: a file mapped read-only, a file read with pread, or memory.
//
// Everything that parses archives, BTF or ELF reads through a Source, so the
// same code works whether the bytes are mapped (zero copy) or not (pipes,
// stdin, filesystems without mmap, or when the caller forces pread).
#pragma once

#include "mmar/export.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mmar/result.h"

namespace mmar {

// A read-only byte range plus whatever keeps it alive (a mapping, a heap
// buffer). Copying a Bytes shares the owner; the bytes stay valid as long as
// any copy exists.
class MMAR_API Bytes {
 public:
  Bytes() = default;
  Bytes(std::span<const std::byte> view, std::shared_ptr<const void> owner) : view_(view), owner_(std::move(owner)) {}
  // Takes ownership of a heap buffer.
  static Bytes from_vector(std::vector<std::byte> buffer);

  std::span<const std::byte> span() const { return view_; }
  const std::byte* data() const { return view_.data(); }
  size_t size() const { return view_.size(); }
  bool empty() const { return view_.empty(); }
  std::string_view str() const { return {reinterpret_cast<const char*>(view_.data()), view_.size()}; }
  Bytes subspan(size_t offset, size_t size) const { return {view_.subspan(offset, size), owner_}; }

 private:
  std::span<const std::byte> view_;
  std::shared_ptr<const void> owner_;
};

struct MMAR_API SourceOptions {
  // Never mmap: read with pread on demand (regular files) or read the whole
  // stream into memory (pipes, character devices).
  bool force_pread = false;
};

class MMAR_API Source {
 public:
  // Open a path read-only. Regular files are mapped unless force_pread; a
  // file that cannot be mapped falls back to pread; streams are read whole.
  static Result<Source> open(const std::string& path, SourceOptions options = {});
  // Same, from an fd the caller keeps; the Source dups it.
  static Result<Source> from_fd(int fd, std::string name, SourceOptions options = {});
  // Bytes the caller keeps alive for as long as the Source (and any Bytes
  // read from it) are used.
  static Source borrow(std::span<const std::byte> bytes, std::string name);
  static Source take(std::vector<std::byte> bytes, std::string name);

  const std::string& name() const;
  uint64_t size() const;
  // True when read() returns views into one contiguous mapping/buffer.
  bool contiguous() const;
  // True when the bytes come from mmap of a file (page cache shared).
  bool mapped() const;
  // The whole contents, when contiguous(); empty span otherwise.
  std::span<const std::byte> all() const;
  // An fd open on the underlying file, or -1 for memory sources.
  int fd() const;

  // [offset, offset+size): a view when contiguous, otherwise a fresh buffer.
  // Out-of-range requests are an Errc::malformed error naming the source.
  Result<Bytes> read(uint64_t offset, uint64_t size) const;

  // Several ranges at once, in the order given: what a reader that knows it
  // needs several pieces asks (a frame table entry and its frame; a run of
  // entries and their names). Ranges close to each other are read as one
  // (for a file, one pread; for a remote source, one request).
  struct Range {
    uint64_t offset = 0;
    uint64_t size = 0;
  };
  Result<std::vector<Bytes>> read_batch(std::span<const Range> ranges) const;

  // Reads that reached the underlying file or reader (pread calls, range
  // requests); 0 for contiguous sources. For tests, benchmarks and the
  // remote reader's budget.
  uint64_t reads() const;

  // A source whose bytes come from `read_range(offset, out)` (fill exactly
  // out.size() bytes at offset, or fail): the hook for remote archives
  // (HTTP range requests, object storage). `size` is the whole length.
  using RangeReader = std::function<Result<void>(uint64_t offset, std::span<std::byte> out)>;
  static Source from_reader(std::string name, uint64_t size, RangeReader read_range);

  struct MMAR_LOCAL Impl;  // internal: not exported
  static Source from_impl(std::shared_ptr<const Impl> impl) { return Source(std::move(impl)); }

 private:
  explicit Source(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace mmar
