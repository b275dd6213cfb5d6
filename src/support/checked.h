// SPDX-License-Identifier: BSD-2-Clause
// Overflow-safe range arithmetic for offsets and sizes read from files.
//
// Every (offset, size) pair that comes from untrusted bytes goes through
// in_bounds() before it is used to form a pointer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace mmar {

// a + b, or nullopt on overflow.
inline std::optional<uint64_t> checked_add(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// a * b, or nullopt on overflow.
inline std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// Is [offset, offset + size) inside [0, limit)? Never overflows.
inline bool in_bounds(uint64_t offset, uint64_t size, uint64_t limit) {
  return offset <= limit && size <= limit - offset;
}

// Round v up to a multiple of align (a power of two); nullopt on overflow.
inline std::optional<uint64_t> align_up(uint64_t v, uint64_t align) {
  auto r = checked_add(v, align - 1);
  if (!r) return std::nullopt;
  return *r & ~(align - 1);
}

}  // namespace mmar
