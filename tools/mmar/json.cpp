// SPDX-License-Identifier: BSD-2-Clause
#include "json.h"

#include <cassert>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "cli.h"
#include "support/text.h"

namespace mmar::cli {

namespace {
constexpr size_t kFlushBytes = size_t{1} << 20;
}


Json::~Json() {
  // A writer dropped without finish() (an error path that already reported)
  // still hands over what it has, so partial output is not silently lost.
  if (!buf_.empty() && write_errno_ == 0) {
    std::fflush(fd_ == 2 ? stderr : stdout);
    write_all(fd_, reinterpret_cast<const std::byte*>(buf_.data()), buf_.size());
  }
}

void Json::before_value() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (open_.empty()) return;
  Level& l = open_.back();
  assert(!l.is_object && "a value in an object needs a key");
  if (!l.empty) buf_ += ',';
  if (l.one_per_line) buf_ += '\n';
  l.empty = false;
}

void Json::maybe_flush() {
  if (buf_.size() < kFlushBytes || write_errno_ != 0) return;
  std::fflush(fd_ == 2 ? stderr : stdout);  // text printed before stays before
  if (!write_all(fd_, reinterpret_cast<const std::byte*>(buf_.data()), buf_.size())) write_errno_ = errno ? errno : EIO;
  buf_.clear();
}

Json& Json::object() {
  before_value();
  buf_ += '{';
  open_.push_back({true, false});
  return *this;
}

Json& Json::array(bool one_per_line) {
  before_value();
  buf_ += '[';
  open_.push_back({false, one_per_line});
  return *this;
}

Json& Json::end() {
  assert(!open_.empty() && !after_key_);
  const Level l = open_.back();
  open_.pop_back();
  if (l.one_per_line && !l.empty) buf_ += '\n';
  buf_ += l.is_object ? '}' : ']';
  maybe_flush();
  return *this;
}

Json& Json::key(std::string_view k) {
  assert(!open_.empty() && open_.back().is_object && !after_key_);
  Level& l = open_.back();
  if (!l.empty) buf_ += ',';
  l.empty = false;
  text::append_json_string(buf_, k);
  buf_ += ':';
  after_key_ = true;
  return *this;
}

Json& Json::value(std::string_view s) {
  before_value();
  text::append_json_string(buf_, s);
  return *this;
}

Json& Json::value(bool b) {
  before_value();
  buf_ += b ? "true" : "false";
  return *this;
}

Json& Json::value(std::nullptr_t) {
  before_value();
  buf_ += "null";
  return *this;
}

Json& Json::signed_value(int64_t v) {
  before_value();
  char tmp[24];
  auto r = std::to_chars(tmp, tmp + sizeof tmp, v);
  buf_.append(tmp, r.ptr);
  return *this;
}

Json& Json::unsigned_value(uint64_t v) {
  before_value();
  char tmp[24];
  auto r = std::to_chars(tmp, tmp + sizeof tmp, v);
  buf_.append(tmp, r.ptr);
  return *this;
}

Json& Json::value(double v, int decimals) {
  before_value();
  char tmp[64];
  std::snprintf(tmp, sizeof tmp, "%.*f", decimals, v);
  buf_ += tmp;
  return *this;
}

Json& Json::hex64(uint64_t v) {
  before_value();
  char tmp[24];
  std::snprintf(tmp, sizeof tmp, "\"%016" PRIx64 "\"", v);
  buf_ += tmp;
  return *this;
}

Json& Json::name_field(std::string_view k, std::string_view bytes) {
  field(k, bytes);
  if (!text::is_utf8(bytes)) {
    key(std::string(k) + "_base64");
    base64_value(bytes);
  }
  return *this;
}

Json& Json::time_field(std::string_view stem, int64_t ns) {
  // Floor division: a time before the epoch keeps 0 <= nsec < 1e9.
  int64_t seconds = ns / 1000000000;
  if (ns % 1000000000 < 0) --seconds;
  const std::string s(stem);
  field(s + "_ns", ns);
  field(s, seconds);
  return field(s + "_nsec", ns - seconds * 1000000000);
}

Json& Json::base64_value(std::string_view bytes) {
  before_value();
  buf_ += '"';
  buf_ += base64(bytes);
  buf_ += '"';
  return *this;
}

Json& Json::newline() {
  assert(open_.empty());
  buf_ += '\n';
  maybe_flush();
  return *this;
}

int Json::finish() {
  assert(open_.empty());
  if (write_errno_ == 0 && !buf_.empty()) {
    std::fflush(fd_ == 2 ? stderr : stdout);
    if (!write_all(fd_, reinterpret_cast<const std::byte*>(buf_.data()), buf_.size())) write_errno_ = errno ? errno : EIO;
  }
  buf_.clear();
  if (write_errno_ != 0) {
    error(std::string(fd_ == 2 ? "standard error" : "standard output") + ": " + std::strerror(write_errno_));
    return kExitError;
  }
  return kExitOk;
}

}  // namespace mmar::cli
