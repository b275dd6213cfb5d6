// SPDX-License-Identifier: BSD-2-Clause
// The text writer under the dumps (BTF raw and C header): appends into one
// buffer through a raw pointer, numbers by std::to_chars, no printf or
// iostream per field.
//
// Two targets:
//  - a std::string (appended to, grown by doubling), for callers that want
//    the whole text in memory;
//  - a sink, handed the text in chunks of about kChunk bytes, the buffer
//    reused between chunks. A 12 MB dump then touches 256 KiB of memory
//    instead of the 24 MB a doubling string writes (a page fault per 4 KiB
//    was a third of `mmar btf dump`'s time), and a reader at the other end
//    of a pipe works while the rest is formatted.
// The first error a sink returns is kept; later text is dropped, and
// finish() returns the error. Callers poll failed() to stop early.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

#include "mmar/result.h"

namespace mmar {

class TextOut {
 public:
  using Sink = std::function<Result<void>(std::string_view)>;
  static constexpr size_t kChunk = size_t{256} << 10;

  // Appends to `out`; the text is in `out` after finish() (or destruction).
  explicit TextOut(std::string& out) : buf_(out) {
    used_ = out.size();
    if (buf_.size() < used_ + 4096) buf_.resize(used_ + 4096);
    reset_pointers();
  }
  // Streams to `sink`, which must outlive this writer.
  explicit TextOut(const Sink& sink) : buf_(own_), sink_(&sink) {
    buf_.resize(kChunk + kSlack);
    reset_pointers();
  }
  TextOut(const TextOut&) = delete;
  TextOut& operator=(const TextOut&) = delete;
  ~TextOut() {
    if (!finished_) (void)finish();
  }

  TextOut& operator+=(std::string_view s) {
    if (s.empty()) return *this;  // a default view's data() is null: no memcpy from it
    if (static_cast<size_t>(end_ - p_) < s.size()) make_room(s.size());
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
    return *this;
  }
  TextOut& operator+=(const char* s) { return *this += std::string_view(s); }
  TextOut& operator+=(char c) {
    if (p_ == end_) make_room(1);
    *p_++ = c;
    return *this;
  }
  TextOut& operator<<(std::string_view s) { return *this += s; }
  TextOut& operator<<(const char* s) { return *this += std::string_view(s); }
  TextOut& operator<<(char c) { return *this += c; }
  void append(size_t n, char c) {
    if (static_cast<size_t>(end_ - p_) < n) make_room(n);
    std::memset(p_, c, n);
    p_ += n;
  }
  TextOut& u(uint64_t v) {
    if (end_ - p_ < 20) make_room(20);
    p_ = std::to_chars(p_, p_ + 20, v).ptr;
    return *this;
  }
  TextOut& i(int64_t v) {
    if (end_ - p_ < 20) make_room(20);
    p_ = std::to_chars(p_, p_ + 20, v).ptr;
    return *this;
  }

  // Called by the dumps between items (a type, a definition): hands a full
  // chunk to the sink, so chunks stay near kChunk and the buffer its size.
  void item_done() {
    if (sink_ != nullptr && static_cast<size_t>(p_ - buf_.data()) >= kChunk) flush();
  }

  // Bytes written so far, what `out` held before included.
  uint64_t size() const { return flushed_ + static_cast<uint64_t>(p_ - buf_.data()); }
  bool failed() const { return !error_.ok(); }

  // Hands the rest to the sink (or trims the string to the text); the
  // sink's first error, if any.
  Result<void> finish() {
    finished_ = true;
    if (sink_ != nullptr) {
      flush();
    } else {
      buf_.resize(static_cast<size_t>(p_ - buf_.data()));
    }
    return error_;
  }

 private:
  // Room a chunk may overrun kChunk by before the next flush: one append
  // larger than this goes through a grown buffer.
  static constexpr size_t kSlack = size_t{64} << 10;

  void reset_pointers() {
    p_ = buf_.data() + used_;
    end_ = buf_.data() + buf_.size();
  }
  void flush() {
    const size_t n = static_cast<size_t>(p_ - buf_.data());
    if (n != 0 && error_.ok()) error_ = (*sink_)(std::string_view(buf_.data(), n));
    flushed_ += n;
    used_ = 0;
    reset_pointers();
  }
  [[gnu::noinline]] void make_room(size_t n) {
    used_ = static_cast<size_t>(p_ - buf_.data());
    if (sink_ != nullptr && used_ >= kChunk) {
      flush();
      if (static_cast<size_t>(end_ - p_) >= n) return;
    }
    buf_.resize(std::max(buf_.size() * 2, used_ + n));
    reset_pointers();
  }

  std::string own_;
  std::string& buf_;
  const Sink* sink_ = nullptr;
  size_t used_ = 0;
  uint64_t flushed_ = 0;
  char* p_ = nullptr;
  char* end_ = nullptr;
  Result<void> error_ = success();
  bool finished_ = false;
};

}  // namespace mmar
