// SPDX-License-Identifier: BSD-2-Clause
// Shared pieces of the mmar command: option parsing, messages, progress
// (JSON: json.h).
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mmar/archive.h"
#include "support/text.h"

namespace mmar::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

// Thrown only inside the CLI to unwind to main() with an exit code; the
// library itself never throws.
struct Exit {
  int code;
};

// "mmar: MESSAGE" on stderr.
void error(const std::string& message);
// Report a library error and return kExitError.
int fail(const Error& e);
// A usage error: message plus a pointer to --help; returns kExitUsage.
int usage_error(const std::string& verb, const std::string& message);

// Declarative options for one verb.
struct OptionSpec {
  std::string long_name;  // "compress"
  char short_name = 0;    // 'f'
  bool takes_value = false;
  std::string value_name;  // "CODEC"
  std::string help;
};

struct Parsed {
  std::map<std::string, std::string> values;  // long name -> value ("" for flags); the last one given
  std::map<std::string, std::vector<std::string>> all;  // every value of a repeated option, in order
  void set(const std::string& name, std::string value) {
    all[name].push_back(value);
    values[name] = std::move(value);
  }
  const std::vector<std::string>& get_all(const std::string& name) const {
    static const std::vector<std::string> none;
    auto it = all.find(name);
    return it == all.end() ? none : it->second;
  }
  std::vector<std::string> positional;
  bool has(const std::string& name) const { return values.count(name) != 0; }
  std::string get(const std::string& name, const std::string& fallback = "") const {
    auto it = values.find(name);
    return it == values.end() ? fallback : it->second;
  }
};

struct Verb {
  std::string name;
  std::string synopsis;  // "-f ARCHIVE [options] PATH..."
  std::string summary;
  std::vector<OptionSpec> options;
};

// Parse argv for a verb. --help prints help and exits 0; errors exit 2.
Parsed parse(const Verb& verb, int argc, char** argv);
void print_help(const Verb& verb, FILE* out);

// The archive path: -f, or else the first positional argument.
std::string archive_path(const Verb& verb, Parsed& p);
// A usage error (exit 2) for positional arguments beyond the first `max`.
void no_more_arguments(const Verb& verb, const Parsed& p, size_t max = 0);
// Parse an unsigned integer with optional K/M/G suffix (binary).
std::optional<uint64_t> parse_size(std::string_view s);
// A frame or pack size: parse_size's, and a power of two from 4K to 4M.
std::optional<uint32_t> parse_frame_bytes(std::string_view s);

// `stream`: the archive is read through once (cat): pread, not a mapping,
// so memory stays at a frame or a buffer, not at the mapped bytes touched.
Result<Archive> open_archive(const std::string& path, const Parsed& p, bool stream = false);

// "ARCHIVE:MEMBER" (when no file of that whole name exists): true, with the
// two parts; otherwise false (a plain FILE).
bool split_member_spec(const std::string& spec, std::string& archive, std::string& member);

// Names and messages printed as text: backslash as \\, \a \b \f \n \r \t \v
// as such, every other control byte (C0, DEL, the C1 range U+0080..U+009F)
// and every byte that is not part of valid UTF-8 as \ooo octal, like GNU
// tar's default "escape" quoting. Valid UTF-8 passes as it is. error()
// applies it to every message.
std::string escape_text(std::string_view s);
using text::is_utf8;  // support/text.h
using text::utf8_sequence;
std::string base64(std::string_view s);
std::string mode_string(uint32_t mode);
std::string human_size(uint64_t bytes);
std::string format_time(int64_t mtime_ns);

// A one-line progress bar on stderr (percentage, bytes, ETA): shown when
// stderr is a terminal, or always with --progress, never with --no-progress.
class Progress {
 public:
  // What done and total count: bytes (shown as sizes) or whole items.
  enum class Unit { bytes, members, modules };
  explicit Progress(std::string label, Unit unit = Unit::bytes);
  ~Progress();
  void update(uint64_t done, uint64_t total);
  void finish();
  bool enabled() const { return enabled_; }

 private:
  std::string label_;
  Unit unit_;
  bool enabled_;
  bool drawn_ = false;
  int64_t last_ns_ = 0;
  int64_t start_ns_ = 0;
};

int64_t now_ns();

// write(2) all of [p, p+n), retrying on EINTR and short writes.
bool write_all(int fd, const std::byte* p, size_t n);
// Where the streamed dumps (btf dump, ctf dump) write: standard output,
// each chunk written whole. Widens a pipe on stdout to 1 MiB first (Linux's
// default limit for anyone), so a 256 KiB chunk goes in without waiting for
// the reader to drain it; best effort.
std::function<Result<void>(std::string_view)> stdout_text_sink();
// A member's bytes handed to `sink` in pieces of at most 1 MiB, read through
// a MemberReader (frames checked as inflated, the whole XXH3 at the end).
Result<void> stream_member(const Archive& a, const Member& m,
                           const std::function<Result<void>(const std::byte*, size_t)>& sink);

}  // namespace mmar::cli
