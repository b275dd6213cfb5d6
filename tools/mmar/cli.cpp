// SPDX-License-Identifier: BSD-2-Clause
#include "cli.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace mmar::cli {

void error(const std::string& message) { std::fprintf(stderr, "mmar: %s\n", escape_text(message).c_str()); }

int fail(const Error& e) {
  error(e.message());
  return kExitError;
}

int usage_error(const std::string& verb, const std::string& message) {
  error(message);
  std::fprintf(stderr, "Try 'mmar %s --help'.\n", verb.c_str());
  return kExitUsage;
}

void print_help(const Verb& verb, FILE* out) {
  std::fprintf(out, "Usage: mmar %s %s\n\n%s\n\nOptions:\n", verb.name.c_str(), verb.synopsis.c_str(),
               verb.summary.c_str());
  for (const auto& o : verb.options) {
    std::string left = o.short_name != 0 ? std::string("-") + o.short_name + ", " : "    ";
    left += "--" + o.long_name;
    if (o.takes_value) left += " " + o.value_name;
    std::fprintf(out, "  %-28s %s\n", left.c_str(), o.help.c_str());
  }
  std::fprintf(out, "  %-28s %s\n", "--progress, --no-progress", "show a progress bar on stderr (default: when a terminal)");
  std::fprintf(out, "  %-28s %s\n", "-h, --help", "show this help");
}

namespace {
// --progress / --no-progress, accepted by every verb: -1 when a terminal,
// else 1 (always) or 0 (never).
int g_progress = -1;
}  // namespace

Parsed parse(const Verb& verb, int argc, char** argv) {
  Parsed p;
  auto find_long = [&](std::string_view n) -> const OptionSpec* {
    for (const auto& o : verb.options) {
      if (o.long_name == n) return &o;
    }
    return nullptr;
  };
  auto find_short = [&](char c) -> const OptionSpec* {
    for (const auto& o : verb.options) {
      if (o.short_name == c) return &o;
    }
    return nullptr;
  };
  bool only_positional = false;
  for (int i = 0; i < argc; ++i) {
    std::string_view a = argv[i];
    if (!only_positional && (a == "--progress" || a == "--no-progress")) {
      g_progress = a == "--progress" ? 1 : 0;
      continue;
    }
    if (only_positional || a.size() < 2 || a[0] != '-') {
      p.positional.emplace_back(a);
      continue;
    }
    if (a == "--") {
      only_positional = true;
      continue;
    }
    if (a == "-h" || a == "--help") {
      print_help(verb, stdout);
      throw Exit{kExitOk};
    }
    if (a.substr(0, 2) == "--") {
      std::string_view body = a.substr(2);
      std::optional<std::string> inline_value;
      if (size_t eq = body.find('='); eq != std::string_view::npos) {
        inline_value = std::string(body.substr(eq + 1));
        body = body.substr(0, eq);
      }
      const OptionSpec* o = find_long(body);
      if (o == nullptr) throw Exit{usage_error(verb.name, "unknown option '--" + std::string(body) + "'")};
      if (!o->takes_value) {
        if (inline_value) throw Exit{usage_error(verb.name, "option '--" + o->long_name + "' takes no value")};
        p.set(o->long_name, "");
      } else if (inline_value) {
        p.set(o->long_name, *inline_value);
      } else {
        if (i + 1 >= argc) throw Exit{usage_error(verb.name, "option '--" + o->long_name + "' needs a value")};
        p.set(o->long_name, argv[++i]);
      }
      continue;
    }
    // Short options, bundled: -lv, -fARCHIVE, -f ARCHIVE.
    for (size_t j = 1; j < a.size(); ++j) {
      const OptionSpec* o = find_short(a[j]);
      if (o == nullptr) throw Exit{usage_error(verb.name, std::string("unknown option '-") + a[j] + "'")};
      if (!o->takes_value) {
        p.set(o->long_name, "");
        continue;
      }
      if (j + 1 < a.size()) {
        p.set(o->long_name, std::string(a.substr(j + 1)));
      } else {
        if (i + 1 >= argc) throw Exit{usage_error(verb.name, std::string("option '-") + a[j] + "' needs a value")};
        p.set(o->long_name, argv[++i]);
      }
      break;
    }
  }
  return p;
}

std::string archive_path(const Verb& verb, Parsed& p) {
  if (p.has("file")) return p.get("file");
  if (p.positional.empty()) throw Exit{usage_error(verb.name, "no archive given (-f ARCHIVE)")};
  std::string path = p.positional.front();
  p.positional.erase(p.positional.begin());
  return path;
}

void no_more_arguments(const Verb& verb, const Parsed& p, size_t max) {
  if (p.positional.size() > max) {
    throw Exit{usage_error(verb.name, "unexpected argument '" + p.positional[max] + "'")};
  }
}

std::optional<uint64_t> parse_size(std::string_view s) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  size_t i = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, static_cast<uint64_t>(s[i] - '0'), &v)) {
      return std::nullopt;
    }
  }
  if (i == 0) return std::nullopt;
  std::string_view suffix = s.substr(i);
  unsigned shift = 0;
  if (suffix.empty()) {
    shift = 0;
  } else if (suffix == "K" || suffix == "k" || suffix == "KiB") {
    shift = 10;
  } else if (suffix == "M" || suffix == "MiB") {
    shift = 20;
  } else if (suffix == "G" || suffix == "GiB") {
    shift = 30;
  } else {
    return std::nullopt;
  }
  if (shift != 0 && (v >> (64 - shift)) != 0) return std::nullopt;
  return v << shift;
}

std::optional<uint32_t> parse_frame_bytes(std::string_view s) {
  auto v = parse_size(s);
  if (!v || *v < 4096 || *v > (4u << 20) || (*v & (*v - 1)) != 0) return std::nullopt;
  return static_cast<uint32_t>(*v);
}

namespace {

constexpr const char* kStdinName = "<stdin>";

// read(2) until `n` bytes or end of input; returns the bytes read.
Result<size_t> read_full(int fd, std::byte* p, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, p + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return sys_error(std::string("read ") + kStdinName, errno);
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

// An unlinked temporary file in $TMPDIR (or /tmp): O_TMPFILE where the
// filesystem has it, else mkstemp and unlink at once.
Result<int> unlinked_temp_file(std::string& dir) {
  const char* env = std::getenv("TMPDIR");
  dir = env != nullptr && *env != '\0' ? env : "/tmp";
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  std::string tmpl = dir + "/mmar-stdin-XXXXXX";
  fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) return sys_error("create a temporary file in " + dir, errno);
  ::unlink(tmpl.c_str());
  return fd;
}

// Standard input as an archive. A regular file (`< FILE`) is used as it is;
// a stream is copied to an unlinked temporary file that is then mapped like
// any archive, so memory stays bounded whatever the input's size. The first
// bytes must be an archive's magic: anything else is refused before the rest
// is read.
Result<Source> stdin_source(const SourceOptions& so) {
  struct stat st {};
  if (::fstat(0, &st) != 0) return sys_error(std::string("stat ") + kStdinName, errno);
  if (S_ISREG(st.st_mode)) return Source::from_fd(0, kStdinName, so);

  std::byte head[4096];  // tar's magic is at 257
  MMAR_ASSIGN(size_t got, read_full(0, head, sizeof head));
  const auto format = archive_format_of({head, got});
  if (const char* foreign = foreign_format_of({head, got}); foreign && (!format || *format == Format::plain)) {
    return Error(
        Errc::unsupported,
        std::string(kStdinName) + ": " + foreign + ", not an mmar archive (" + conversion_hint(foreign, "FILE") + ")",
        0);
  }
  if (!format || *format == Format::plain) {
    return Error(Errc::malformed,
                 std::string(kStdinName) + ": not an mmar or CTF archive (" +
                     (got < sizeof head ? std::to_string(got) + " bytes" : "bad magic") +
                     "); standard input must hold an archive",
                 0);
  }

  std::string dir;
  MMAR_ASSIGN(int raw_fd, unlinked_temp_file(dir));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } tmp{raw_fd};
  auto copy_error = [&](int e) {
    return sys_error(std::string(kStdinName) + ": copy to a temporary file in " + dir, e);
  };
  if (!write_all(tmp.fd, head, got)) return copy_error(errno);
  std::vector<std::byte> buf(size_t{1} << 20);
  for (;;) {
    MMAR_ASSIGN(size_t n, read_full(0, buf.data(), buf.size()));
    if (n == 0) break;
    if (!write_all(tmp.fd, buf.data(), n)) return copy_error(errno);
  }
  return Source::from_fd(tmp.fd, kStdinName, so);
}

// A file that is neither an archive nor an object opens as one member only
// when asked (OpenOptions::plain_data): the verbs that open through
// open_archive offer that as --plain, and only they say so (mount, compact
// and the others refuse a plain file: no hint there).
Result<Archive> with_plain_hint(Result<Archive> opened) {
  if (opened.ok()) return opened;
  Error e = std::move(opened).error();
  static constexpr std::string_view kNotAnObject = "nor an ELF, BTF or CTF object";
  const std::string& m = e.message();
  if (e.code() == Errc::unsupported && m.size() >= kNotAnObject.size() &&
      m.compare(m.size() - kNotAnObject.size(), kNotAnObject.size(), kNotAnObject) == 0) {
    return Error(e.code(), m + "; --plain opens any file as a one-member archive", e.offset(), e.sys_errno());
  }
  return e;
}

}  // namespace

Result<Archive> open_archive(const std::string& path, const Parsed& p, bool stream) {
  OpenOptions o;
  o.force_pread = p.has("pread") || stream;
  o.verify_checksums = !p.has("no-verify");  // only verbs that offer --no-verify have it
  o.plain_data = p.has("plain");               // likewise --plain
  if (path == "-") {
    SourceOptions so;
    so.force_pread = o.force_pread;
    MMAR_ASSIGN(Source s, stdin_source(so));
    return with_plain_hint(Archive::open(std::move(s), o));
  }
  return with_plain_hint(Archive::open(path, o));
}

bool split_member_spec(const std::string& spec, std::string& archive, std::string& member) {
  struct stat st {};
  if (stat(spec.c_str(), &st) == 0) return false;
  // The first colon after which the prefix is an existing file: member
  // names may hold colons themselves (a CTF dict of an ELF member is
  // "MEMBER:DICT"). Without one, the last colon (the error then names the
  // archive that is missing).
  size_t colon = spec.find(':', 1);
  for (; colon != std::string::npos; colon = spec.find(':', colon + 1)) {
    if (stat(spec.substr(0, colon).c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) break;
  }
  if (colon == std::string::npos) colon = spec.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  archive = spec.substr(0, colon);
  member = spec.substr(colon + 1);
  return true;
}


std::string escape_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto octal = [&](unsigned char c) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\%03o", c);
    out += buf;
  };
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = utf8_sequence(s, i);
    if (n > 1) {
      // U+0080..U+009F are the C1 controls (U+009B is a CSI to some terminals).
      const bool c1 = c == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0;
      for (size_t k = 0; k < n; ++k) {
        if (c1) {
          octal(static_cast<unsigned char>(s[i + k]));
        } else {
          out += s[i + k];
        }
      }
      i += n;
      continue;
    }
    ++i;
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\a': out += "\\a"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\v': out += "\\v"; break;
      default:
        if (n == 0 || c < 0x20 || c == 0x7f) {
          octal(c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

std::string base64(std::string_view s) {
  static constexpr char kDigits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < s.size(); i += 3) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(s[i])) << 16;
    if (i + 1 < s.size()) v |= static_cast<uint32_t>(static_cast<unsigned char>(s[i + 1])) << 8;
    if (i + 2 < s.size()) v |= static_cast<unsigned char>(s[i + 2]);
    out += kDigits[(v >> 18) & 63];
    out += kDigits[(v >> 12) & 63];
    out += i + 1 < s.size() ? kDigits[(v >> 6) & 63] : '=';
    out += i + 2 < s.size() ? kDigits[v & 63] : '=';
  }
  return out;
}

std::string mode_string(uint32_t mode) {
  std::string s(10, '-');
  if ((mode & 0170000) == 0040000) s[0] = 'd';
  if ((mode & 0170000) == 0120000) s[0] = 'l';
  if ((mode & 0170000) == 0020000) s[0] = 'c';
  if ((mode & 0170000) == 0060000) s[0] = 'b';
  if ((mode & 0170000) == 0010000) s[0] = 'p';
  if ((mode & 0170000) == 0140000) s[0] = 's';
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) {
    if (mode & (1u << (8 - i))) s[1 + i] = rwx[i];
  }
  if (mode & 04000) s[3] = (mode & 0100) ? 's' : 'S';
  if (mode & 02000) s[6] = (mode & 010) ? 's' : 'S';
  if (mode & 01000) s[9] = (mode & 01) ? 't' : 'T';
  return s;
}

std::string human_size(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%" PRIu64 " B", bytes);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  }
  return buf;
}

std::string format_time(int64_t mtime_ns) {
  time_t t = static_cast<time_t>(mtime_ns / 1000000000);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

bool write_all(int fd, const std::byte* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

std::function<Result<void>(std::string_view)> stdout_text_sink() {
  (void)fcntl(1, F_SETPIPE_SZ, 1 << 20);
  return [](std::string_view chunk) -> Result<void> {
    if (!write_all(1, reinterpret_cast<const std::byte*>(chunk.data()), chunk.size())) {
      return sys_error("write to standard output", errno);
    }
    return success();
  };
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Progress::Progress(std::string label, Unit unit)
    : label_(std::move(label)), unit_(unit), enabled_(g_progress == 1 || (g_progress == -1 && isatty(2) != 0)) {}

Progress::~Progress() { finish(); }

void Progress::update(uint64_t done, uint64_t total) {
  if (!enabled_) return;
  int64_t t = now_ns();
  if (start_ns_ == 0) start_ns_ = t;
  if (drawn_ && t - last_ns_ < 100'000'000 && done != total) return;  // 10 Hz
  last_ns_ = t;
  drawn_ = true;
  const int width = 30;
  const double frac = total == 0 ? 0.0 : std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
  const int filled = static_cast<int>(frac * width);
  // ETA from the average rate so far, once there is one.
  std::string eta;
  const double elapsed = static_cast<double>(t - start_ns_) / 1e9;
  if (done > 0 && done < total && elapsed >= 0.5) {
    const double left = elapsed * static_cast<double>(total - done) / static_cast<double>(done);
    char buf[32];
    const auto secs = static_cast<long long>(left + 0.5);
    std::snprintf(buf, sizeof buf, " ETA %lld:%02lld", secs / 60, secs % 60);
    eta = buf;
  }
  const std::string amount = unit_ == Unit::bytes ? human_size(done) + " / " + human_size(total)
                                                  : std::to_string(done) + " / " + std::to_string(total) +
                                                        (unit_ == Unit::members ? " members" : " modules");
  std::fprintf(stderr, "\r%s [%.*s%*s] %3d%% %s%s\033[K", label_.c_str(), filled, "##############################",
               width - filled, "", static_cast<int>(frac * 100), amount.c_str(), eta.c_str());
  std::fflush(stderr);
}

void Progress::finish() {
  if (enabled_ && drawn_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    drawn_ = false;
  }
}

Result<void> stream_member(const Archive& a, const Member& m,
                           const std::function<Result<void>(const std::byte*, size_t)>& sink) {
  MemberReader reader(a, m);
  std::vector<std::byte> buf(static_cast<size_t>(std::min<uint64_t>(m.size, uint64_t{1} << 20)));
  for (;;) {
    MMAR_ASSIGN(size_t n, reader.read(buf.data(), buf.size()));
    if (n == 0) return success();
    MMAR_TRY(sink(buf.data(), n));
  }
}

}  // namespace mmar::cli
