// A few 64 KiB blocks of a file read with pread, least recently used
// replaced first: for answering one question of a file without mapping it
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

#include "support/checked.h"

namespace mmar {

class BlockReader {
 public:
  static constexpr uint64_t kBlock = 64 * 1024;

  BlockReader(int fd, uint64_t size) : fd_(fd), size_(size) {}

  // [off, off + n) of the file; false if outside it or on a read error.
  bool read(uint64_t off, size_t n, void* out) {
    if (!in_bounds(off, n, size_)) return false;
    auto* dst = static_cast<char*>(out);
    while (n > 0) {
      const uint64_t index = off / kBlock;
      const Block* b = block(index);
      if (b == nullptr) return false;
      const uint64_t at = off - index * kBlock;
      const size_t take = static_cast<size_t>(std::min<uint64_t>(n, b->len - at));
      if (take == 0) return false;
      std::memcpy(dst, b->data.get() + at, take);
      dst += take;
      off += take;
      n -= take;
    }
    return true;
  }
  uint64_t size() const { return size_; }
  uint32_t reads() const { return reads_; }

 private:
  struct Block {
    uint64_t index = ~uint64_t{0};
    uint64_t len = 0;
    uint64_t used = 0;
    std::unique_ptr<char[]> data;  // min(kBlock, file size) bytes, allocated on first use
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
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kBlock, size_ - start));
    // A small file gets small blocks: a one-shot lookup in a 1 KiB BTF
    // should not allocate (and, from the sanitizers' allocator, map and
    // unmap) 256 KiB.
    if (!victim->data) victim->data.reset(new char[static_cast<size_t>(std::min<uint64_t>(kBlock, size_))]);
    victim->index = ~uint64_t{0};  // until the read completes: a failed read leaves no stale block
    size_t got = 0;
    while (got < want) {
      ++reads_;
      ssize_t r = ::pread(fd_, victim->data.get() + got, want - got, static_cast<off_t>(start + got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return nullptr;
      got += static_cast<size_t>(r);
    }
    victim->index = index;
    victim->len = got;
    victim->used = ++clock_;
    return victim;
  }

  int fd_;
  uint64_t size_;
  uint64_t clock_ = 0;
  uint32_t reads_ = 0;
  std::array<Block, 4> blocks_{};
};

}  // namespace mmar
