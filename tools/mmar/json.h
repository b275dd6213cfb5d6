// SPDX-License-Identifier: BSD-2-Clause
// The one JSON writer of the mmar command: every verb's --json goes through
// it, so strings, integers and nesting follow docs/JSON.md in one place.
//
//   Json j(stdout_sink());
//   j.object().field("archive", path).field("members", n).key("kinds").object()...end().end();
//   return j.finish();
//
// Commas and nesting are tracked by the writer; a misuse (a value where a
// key is due, end() with nothing open) is a programming error caught by an
// assertion in debug builds, never malformed output in release ones: the
// writer's state only ever emits complete tokens.
//
// Output goes to a file descriptor in pieces (flushed when the buffer passes
// 1 MiB and at finish()), so a listing of a million members needs no more
// than a buffer. A failed write is remembered and reported by finish() as an
// error naming the stream: JSON that did not reach its reader is never a
// success.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace mmar::cli {

class Json {
 public:
  // Writes to `fd` (1 = standard output, 2 = standard error).
  explicit Json(int fd = 1) : fd_(fd) {}
  Json(const Json&) = delete;
  Json& operator=(const Json&) = delete;
  ~Json();

  // Containers. `one_per_line`: each element starts on a new line (long
  // arrays stay readable and greppable; still one JSON value).
  Json& object();
  Json& array(bool one_per_line = false);
  Json& end();

  Json& key(std::string_view k);

  // Scalars.
  Json& value(std::string_view s);  // any bytes (docs/JSON.md "Strings")
  Json& value(const char* s) { return value(std::string_view(s)); }
  Json& value(const std::string& s) { return value(std::string_view(s)); }
  Json& value(bool b);
  Json& value(std::nullptr_t);
  template <class T>
    requires(std::is_integral_v<T> && !std::is_same_v<T, bool>)
  Json& value(T v) {
    if constexpr (std::is_signed_v<T>) {
      return signed_value(static_cast<int64_t>(v));
    } else {
      return unsigned_value(static_cast<uint64_t>(v));
    }
  }
  // A fraction with `decimals` digits after the point (seconds).
  Json& value(double v, int decimals);
  Json& hex64(uint64_t v);  // "0123456789abcdef"

  template <class T>
  Json& field(std::string_view k, const T& v) {
    key(k);
    return value(v);
  }
  // A name that may hold any bytes: `k` as a string, and when the bytes are
  // not valid UTF-8 also `k`_base64 with the exact bytes.
  Json& name_field(std::string_view k, std::string_view bytes);
  // A time in signed nanoseconds since the epoch: `stem`_ns, and the same
  // exact in a double as `stem` (seconds, rounded down) and `stem`_nsec.
  Json& time_field(std::string_view stem, int64_t ns);
  // Bytes as base64 (xattr values).
  Json& base64_value(std::string_view bytes);

  // Ends a top-level value with a newline (JSON Lines: call after each).
  Json& newline();
  // Writes what is buffered. 0 on success; otherwise reports "standard
  // output: ERROR" and returns the exit status 1.
  int finish();

 private:
  void before_value();
  void maybe_flush();
  Json& signed_value(int64_t v);
  Json& unsigned_value(uint64_t v);

  struct Level {
    bool is_object;
    bool one_per_line;
    bool empty = true;
  };
  int fd_;
  std::string buf_;
  std::vector<Level> open_;
  bool after_key_ = false;
  int write_errno_ = 0;
};


}  // namespace mmar::cli
