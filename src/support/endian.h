// SPDX-License-Identifier: BSD-2-Clause
// Align-1 little/big-endian integer wrappers for on-disk structs.
//
// Fields of on-disk records are declared with these types so that a struct
// can be overlaid on mapped bytes at any alignment (memcpy, never a cast to a
// native integer) and always decodes in the format's byte order.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace mmar {

template <class T>
constexpr T byteswap_int(T v) {
  static_assert(std::is_unsigned_v<T>);
  if constexpr (sizeof(T) == 1) {
    return v;
  } else if constexpr (sizeof(T) == 2) {
    return static_cast<T>(__builtin_bswap16(v));
  } else if constexpr (sizeof(T) == 4) {
    return static_cast<T>(__builtin_bswap32(v));
  } else {
    return static_cast<T>(__builtin_bswap64(v));
  }
}

template <class T, bool kLittle>
class EndianInt {
 public:
  EndianInt() = default;
  EndianInt(T v) { *this = v; }         // NOLINT(google-explicit-constructor)
  operator T() const { return get(); }  // NOLINT(google-explicit-constructor)
  T get() const {
    T v;
    std::memcpy(&v, bytes_, sizeof(T));
    return native() ? v : byteswap_int(v);
  }
  EndianInt& operator=(T v) {
    if (!native()) v = byteswap_int(v);
    std::memcpy(bytes_, &v, sizeof(T));
    return *this;
  }

 private:
  static constexpr bool native() { return (std::endian::native == std::endian::little) == kLittle; }
  unsigned char bytes_[sizeof(T)];
};

using ul16 = EndianInt<uint16_t, true>;
using ul32 = EndianInt<uint32_t, true>;
using ul64 = EndianInt<uint64_t, true>;
using ub16 = EndianInt<uint16_t, false>;
using ub32 = EndianInt<uint32_t, false>;
using ub64 = EndianInt<uint64_t, false>;

static_assert(sizeof(ul64) == 8 && alignof(ul64) == 1);
static_assert(std::is_trivially_copyable_v<ul64>);

// Load a trivially copyable on-disk struct from possibly unaligned bytes.
template <class T>
T load(const void* p) {
  static_assert(std::is_trivially_copyable_v<T>);
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Read an unsigned integer of either byte order.
template <class T>
T read_int(const void* p, bool little) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return (std::endian::native == std::endian::little) == little ? v : byteswap_int(v);
}

}  // namespace mmar
