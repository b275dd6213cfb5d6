// SPDX-License-Identifier: BSD-2-Clause
// Errors as values: Result<T> is shaped like std::expected<T, Error>.
//
// The library never throws across its API and never prints. An Error carries
// a code (what kind of failure), a one-line message that already names the
// file/member/type involved, and, for malformed input, the byte offset at
// which the problem was found.
#pragma once

#include "mmar/export.h"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace mmar {

enum class Errc : uint8_t {
  io,                // a system call failed (errno in Error::sys_errno)
  malformed,         // input bytes violate the format
  unsupported,       // well-formed, but a version/feature we do not handle
  not_found,         // a lookup found nothing
  checksum,          // stored checksum does not match the bytes
  limit,             // a size or count exceeds a configured limit
  invalid_argument,  // the caller asked for something impossible
  busy,              // another writer holds the archive's lock
};

MMAR_API const char* errc_name(Errc code);

class [[nodiscard]] MMAR_API Error {
 public:
  static constexpr uint64_t kNoOffset = ~uint64_t{0};

  Error(Errc code, std::string message, uint64_t offset = kNoOffset, int sys_errno = 0)
      : code_(code), message_(std::move(message)), offset_(offset), errno_(sys_errno) {}

  Errc code() const { return code_; }
  const std::string& message() const { return message_; }
  uint64_t offset() const { return offset_; }
  bool has_offset() const { return offset_ != kNoOffset; }
  int sys_errno() const { return errno_; }

  // Prefix the message with context ("archive.mmar: " + message).
  Error&& with_context(const std::string& context) && {
    message_ = context + ": " + message_;
    return std::move(*this);
  }

 private:
  Errc code_;
  std::string message_;
  uint64_t offset_;
  int errno_;
};

// An io error from errno, with a message such as "open foo: No such file".
MMAR_API Error sys_error(const std::string& what, int err);

template <class T>
class [[nodiscard]] MMAR_API Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::in_place, std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return !err_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const& { return *err_; }
  Error&& error() && { return std::move(*err_); }

 private:
  std::optional<Error> err_;
};

inline Result<void> success() { return {}; }

}  // namespace mmar

// Propagate an error from an expression yielding Result<...>.
#define MMAR_TRY(expr)                                            \
  do {                                                            \
    auto&& mmar_try_r_ = (expr);                                  \
    if (!mmar_try_r_.ok()) return std::move(mmar_try_r_).error(); \
  } while (0)

#define MMAR_CONCAT_INNER(a, b) a##b
#define MMAR_CONCAT(a, b) MMAR_CONCAT_INNER(a, b)
// auto x = value of expr, or return its error.
#define MMAR_ASSIGN(lhs, expr) MMAR_ASSIGN_IMPL(MMAR_CONCAT(mmar_r_, __LINE__), lhs, expr)
#define MMAR_ASSIGN_IMPL(tmp, lhs, expr)        \
  auto tmp = (expr);                            \
  if (!tmp.ok()) return std::move(tmp).error(); \
  lhs = std::move(tmp).value()
