// SPDX-License-Identifier: BSD-2-Clause
// A few 64 KiB blocks of a Source (a file read with pread, or a remote
// range reader), least recently used replaced first: for answering one question of a file without mapping it
// (mapping costs page-table work per touched page, which on virtualised
// page tables is more than the answer).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>

#include "mmar/source.h"
#include "support/checked.h"

namespace mmar {

class BlockReader {
 public:
  static constexpr uint64_t kBlock = 64 * 1024;

  // Over any Source (a file read with pread, a remote range reader).
  explicit BlockReader(Source source) : source_(std::move(source)), size_(source_.size()) {}

  // [off, off + n) of the source; false if outside it or on a read error.
  bool read(uint64_t off, size_t n, void* out) {
    if (!in_bounds(off, n, size_)) {
      errno = EIO;  // callers report errno: not a stale one
      return false;
    }
    auto* dst = static_cast<char*>(out);
    while (n > 0) {
      const uint64_t index = off / kBlock;
      const Block* b = block(index);
      if (b == nullptr) return false;
      const uint64_t at = off - index * kBlock;
      const size_t take = static_cast<size_t>(std::min<uint64_t>(n, b->data.size() - at));
      if (take == 0) return false;
      std::memcpy(dst, b->data.data() + at, take);
      dst += take;
      off += take;
      n -= take;
    }
    return true;
  }
  uint64_t size() const { return size_; }
  uint64_t reads() const { return source_.reads(); }

 private:
  struct Block {
    uint64_t index = ~uint64_t{0};
    uint64_t used = 0;
    Bytes data;  // min(kBlock, what is left) bytes (a small file gets a small block)
  };
  const Block* block(uint64_t index) {
    Block* victim = &blocks_[0];
    for (Block& b : blocks_) {
      if (b.index == index) {
        b.used = ++clock_;
        return &b;
      }
      if (b.used < victim->used) victim = &b;
    }
    const uint64_t start = index * kBlock;
    auto got = source_.read(start, std::min<uint64_t>(kBlock, size_ - start));
    if (!got.ok()) {
      errno = got.error().sys_errno() != 0 ? got.error().sys_errno() : EIO;
      return nullptr;
    }
    victim->index = index;
    victim->data = std::move(got).value();
    victim->used = ++clock_;
    return victim;
  }

  Source source_;
  uint64_t size_;
  uint64_t clock_ = 0;
  std::array<Block, 4> blocks_{};
};

}  // namespace mmar
