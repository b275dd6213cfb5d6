// SPDX-License-Identifier: BSD-2-Clause
// mmar create: pack files, directories and symlinks into an archive.
#include <sys/stat.h>

#include <cerrno>
#include <cinttypes>
#include <cstdlib>
#include <fnmatch.h>
#include <optional>
#include <vector>

#include <fcntl.h>

#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "mmar/btf.h"
#include "mmar/convert.h"
#include "verbs.h"

namespace mmar::cli {

namespace {

const Verb kCreate{
    "create",
    "-f ARCHIVE [options] PATH...",
    "Create ARCHIVE from PATHs (directories recursively; symlinks kept as links).\n"
    "Member names are the paths as given, relative, without a leading '/'.\n"
    "The archive is written to a temporary file and renamed into place.",
    {
        {"file", 'f', true, "ARCHIVE", "archive to create ('-': standard output)"},
        {"directory", 'C', true, "DIR", "resolve PATHs relative to DIR"},
        {"from", 0, true, "IN", "convert another archive instead of PATHs: tar (plain, gz, xz, zst, bz2), zip,\n"
                                "                               cpio, ISO 9660, 7-Zip ... ('-': standard input)"},
        {"compress", 0, true, "CODEC", "zstd (default), xz or none"},
        {"level", 0, true, "N", "compression level (default: zstd 3, xz 6)"},
        {"threshold", 0, true, "BYTES", "compress members larger than this (default 16; 0 = never)"},
        {"frame-size", 0, true, "BYTES", "compressed members are frames of this size, each inflated alone\n"
                                         "                               (a power of two, 4K..4M; default 128K)"},
        {"pack-size", 0, true, "BYTES", "members smaller than a frame and a pack are packed, in name order, into\n"
                                        "                               shared frames of up to this size (a power of two, 4K..4M;\n"
                                        "                               default twice the frame size: 256K)"},
        {"align", 0, true, "BYTES", "page alignment of raw members: 4096 (default), 8192, 16384, 32768 or 65536"},
        {"index", 0, true, "HOW", "compressed: the index in zstd frames, inflated a frame at a time (smaller);\n"
                                  "                               plain: mapped and searched in place; auto (default): compressed\n"
                                  "                               when any member is, up to 16 MiB of index"},
        {"format", 0, true, "FMT",
         "mmar (default) or ctf (binutils libctf CTF archive): its members are dicts;\n"
         "                               an ELF PATH gives its .ctf section's dict, a CTF archive PATH\n"
         "                               (or .ctf section ld wrote with --ctf-share-types) each of its\n"
         "                               dicts, named as there"},
        {"ctf-model", 0, true, "MODEL",
         "with --format ctf: ilp32 or lp64, the data model libctf gives the dicts\n"
         "                               (default: the inputs' own, an ELF's class or a CTF archive's;\n"
         "                               inputs that disagree are refused; lp64 for raw dicts)"},
        {"threads", 'j', true, "N", "compression threads (default: one per CPU)"},
        {"btf-base", 0, true, "MEMBER", "link split BTF members (raw or ELF .BTF) to base BTF member MEMBER"},
        {"verbose", 'v', false, "", "print each member's name as it is added"},
        {"exclude", 0, true, "PATTERN", "leave out names matching PATTERN (a shell glob, as tar: against the whole\n"
                                        "                               name and against its last component; repeatable)"},
        {"exclude-from", 'X', true, "FILE", "leave out names matching the patterns in FILE, one per line"},
        {"files-from", 'T', true, "FILE", "add the PATHs listed in FILE, one per line ('-': standard input)"},
        {"mtime", 0, true, "DATE", "give every member this time: @SECONDS or a date `date -d` understands;\n"
                                   "                               without it, SOURCE_DATE_EPOCH clamps newer times (reproducible)"},
        {"no-owners", 0, false, "", "record no owners (extract then leaves files to whoever extracts)"},
        {"numeric-owner", 0, false, "", "record owners by number only, without their names"},
        {"no-xattrs", 0, false, "", "record no extended attributes"},
        {"stats", 's', false, "", "print a summary: members, sizes, time"},
        {"json", 0, false, "", "print the summary as JSON"},
    }};

// `-f -`: the archive is written (atomically, as any) into a private
// directory under $TMPDIR, then streamed to standard output: the writer
// seeks back to finish its superblock, which a pipe cannot. Standard output
// failing (a closed pipe, a full disk) is an error, never a silent success.
Result<WriteStats> write_to_stdout(Writer& w) {
  const char* env = std::getenv("TMPDIR");
  std::string dir = std::string(env != nullptr && *env != '\0' ? env : "/tmp") + "/mmar-create.XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) return sys_error("create a temporary directory " + dir, errno);
  const std::string path = dir + "/archive.mmar";
  struct Cleanup {
    const std::string& dir;
    const std::string& path;
    ~Cleanup() {
      ::unlink(path.c_str());
      ::rmdir(dir.c_str());
    }
  } cleanup{dir, path};
  MMAR_ASSIGN(WriteStats stats, w.write(path));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return sys_error("open " + path, errno);
  std::vector<std::byte> buf(size_t{1} << 20);
  Result<WriteStats> result = stats;
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      result = sys_error("read " + path, errno);
      break;
    }
    if (n == 0) break;
    if (!write_all(1, buf.data(), static_cast<size_t>(n))) {
      result = sys_error("write the archive to standard output", errno);
      break;
    }
  }
  ::close(fd);
  return result;
}

}  // namespace

int run_create(int argc, char** argv) {
  Parsed p = parse(kCreate, argc, argv);
  if (!p.has("file")) return usage_error("create", "no archive given (-f ARCHIVE)");
  const std::string out = p.get("file");
  if (out == "-" && ::isatty(1)) {
    return usage_error("create", "refusing to write an archive to a terminal (redirect standard output)");
  }
  // -T: more PATHs, from a file (or standard input), one per line.
  if (p.has("files-from")) {
    const std::string list = p.get("files-from");
    FILE* f = list == "-" ? stdin : std::fopen(list.c_str(), "r");
    if (f == nullptr) return fail(sys_error(list, errno));
    char* line = nullptr;
    size_t cap = 0;
    ssize_t n;
    while ((n = ::getline(&line, &cap, f)) >= 0) {
      std::string path(line, static_cast<size_t>(n));
      if (!path.empty() && path.back() == '\n') path.pop_back();
      if (!path.empty()) p.positional.push_back(std::move(path));
    }
    std::free(line);
    const bool bad = std::ferror(f) != 0;
    if (f != stdin) std::fclose(f);
    if (bad) return fail(sys_error("read " + list, EIO));
  }
  if (p.has("from") && !p.positional.empty()) {
    return usage_error("create", "--from converts one archive; no PATHs with it");
  }
  if (p.positional.empty() && !p.has("from")) return usage_error("create", "nothing to add: give at least one PATH");

  WriteOptions o;
  if (p.has("compress")) {
    auto c = parse_codec(p.get("compress"));
    if (!c) return usage_error("create", "unknown codec '" + p.get("compress") + "' (zstd, xz, none)");
    o.codec = *c;
  }
  if (p.has("level")) {
    auto v = parse_size(p.get("level"));
    if (!v || *v > 22) return usage_error("create", "bad --level '" + p.get("level") + "'");
    o.level = static_cast<int>(*v);
    if (o.codec == Codec::xz && o.level > 9) return usage_error("create", "xz levels are 0..9");
  }
  if (p.has("index")) {
    auto v = parse_index_storage(p.get("index"));
    if (!v) return usage_error("create", "--index must be auto, plain or compressed");
    o.index = *v;
  }
  if (p.has("frame-size")) {
    auto v = parse_frame_bytes(p.get("frame-size"));
    if (!v) return usage_error("create", "--frame-size must be a power of two from 4K to 4M");
    o.frame_size = *v;
  }
  if (p.has("pack-size")) {
    auto v = parse_frame_bytes(p.get("pack-size"));
    if (!v) return usage_error("create", "--pack-size must be a power of two from 4K to 4M");
    o.pack_size = *v;
  }
  if (p.has("threshold")) {
    auto v = parse_size(p.get("threshold"));
    if (!v) return usage_error("create", "bad --threshold '" + p.get("threshold") + "'");
    o.threshold = *v;
  }
  if (p.has("align")) {
    auto v = parse_size(p.get("align"));
    if (!v || (*v != 4096 && *v != 8192 && *v != 16384 && *v != 32768 && *v != 65536)) {
      return usage_error("create", "--align must be 4096, 8192, 16384, 32768 or 65536");
    }
    o.alignment = static_cast<uint32_t>(*v);
  }
  if (p.has("ctf-model")) {
    const std::string m = p.get("ctf-model");
    if (m == "ilp32") {
      o.ctf_model = 1;
    } else if (m == "lp64") {
      o.ctf_model = 2;
    } else {
      return usage_error("create", "unknown CTF data model '" + m + "' (ilp32, lp64)");
    }
  }
  if (p.has("format")) {
    std::string f = p.get("format");
    if (f == "mmar") {
      o.format = Format::mmar;
    } else if (f == "ctf") {
      o.format = Format::ctf;
    } else {
      return usage_error("create", "unknown format '" + f + "' (mmar, ctf)");
    }
  }
  if (p.has("threads")) {
    auto v = parse_size(p.get("threads"));
    if (!v || *v == 0 || *v > 256) return usage_error("create", "bad --threads '" + p.get("threads") + "'");
    o.threads = static_cast<unsigned>(*v);
  }

  // Split BTF detection: a member that is not valid BTF on its own but is
  // valid split BTF on the base gets linked to the base.
  std::optional<Btf> btf_base;
  std::string btf_base_name;
  if (p.has("btf-base")) {
    auto n = normalize_member_name(p.get("btf-base"));
    if (!n.ok()) return fail(n.error());
    btf_base_name = *n;
    const std::string dir = p.get("directory");
    std::string path = dir.empty() ? btf_base_name : dir + "/" + btf_base_name;
    if (dir.empty() && ::access(path.c_str(), F_OK) != 0) path = "/" + btf_base_name;
    auto b = Btf::open(path, nullptr, BtfOpenOptions{.validate = true});
    if (!b.ok()) return fail(std::move(b).error().with_context("--btf-base"));
    btf_base = std::move(b).value();
    o.link_for = [&](const LinkQuery& q) -> std::optional<std::string> {
      if (q.member == btf_base_name) return std::nullopt;
      auto standalone =
          q.path.empty() ? Btf::parse(Bytes(q.bytes, nullptr), std::string(q.member)) : Btf::open(std::string(q.path));
      if (standalone.ok() && standalone->validate().ok()) return std::nullopt;  // a base itself
      auto split = q.path.empty() ? Btf::parse_split(Bytes(q.bytes, nullptr), std::string(q.member), *btf_base)
                                  : Btf::open(std::string(q.path), &*btf_base);
      if (split.ok() && split->validate().ok()) return btf_base_name;
      return std::nullopt;
    };
  }

  // --exclude / -X: shell globs, as tar matches them (the whole name, or
  // its last component: '*.o' leaves out every object file).
  std::vector<std::string> excludes = p.get_all("exclude");
  for (const auto& file : p.get_all("exclude-from")) {
    FILE* f = std::fopen(file.c_str(), "r");
    if (f == nullptr) return fail(sys_error(file, errno));
    char* line = nullptr;
    size_t cap = 0;
    ssize_t n;
    while ((n = ::getline(&line, &cap, f)) >= 0) {
      std::string pat(line, static_cast<size_t>(n));
      if (!pat.empty() && pat.back() == '\n') pat.pop_back();
      if (!pat.empty()) excludes.push_back(std::move(pat));
    }
    std::free(line);
    std::fclose(f);
  }
  if (!excludes.empty()) {
    o.exclude = [excludes](std::string_view name) {
      const std::string whole(name);
      const size_t slash = whole.rfind('/');
      const std::string last = slash == std::string::npos ? whole : whole.substr(slash + 1);
      for (const auto& pat : excludes) {
        if (::fnmatch(pat.c_str(), whole.c_str(), 0) == 0 || ::fnmatch(pat.c_str(), last.c_str(), 0) == 0) return true;
      }
      return false;
    };
  }
  // --mtime, or SOURCE_DATE_EPOCH (https://reproducible-builds.org/specs/source-date-epoch/).
  if (p.has("mtime")) {
    const std::string when = p.get("mtime");
    int64_t secs = 0;
    if (!when.empty() && when[0] == '@') {
      char* end = nullptr;
      errno = 0;
      secs = std::strtoll(when.c_str() + 1, &end, 10);
      if (end == when.c_str() + 1 || *end != '\0' || errno != 0) return usage_error("create", "bad --mtime '" + when + "'");
    } else {
      // A date as date(1) reads it, to seconds since the epoch.
      const std::string cmd = "date -d '" + when + "' +%s 2>/dev/null";
      if (when.find('\'') != std::string::npos) return usage_error("create", "bad --mtime '" + when + "'");
      FILE* d = ::popen(cmd.c_str(), "r");
      char buf[64] = {};
      const bool got = d != nullptr && std::fgets(buf, sizeof buf, d) != nullptr;
      const int rc = d != nullptr ? ::pclose(d) : -1;
      char* end = nullptr;
      secs = std::strtoll(buf, &end, 10);
      if (!got || rc != 0 || end == buf) return usage_error("create", "bad --mtime '" + when + "'");
    }
    o.mtime_ns = secs * 1000000000;
  } else if (const char* sde = std::getenv("SOURCE_DATE_EPOCH"); sde != nullptr && *sde != '\0') {
    char* end = nullptr;
    errno = 0;
    const long long secs = std::strtoll(sde, &end, 10);
    if (*end != '\0' || errno != 0 || secs < 0) {
      return usage_error("create", std::string("bad SOURCE_DATE_EPOCH '") + sde + "'");
    }
    o.clamp_mtime_ns = static_cast<int64_t>(secs) * 1000000000;
  }
  if (p.has("verbose")) {
    // On stdout as tar prints it; on stderr when the archive goes to stdout.
    FILE* const list = out == "-" ? stderr : stdout;
    o.on_add = [list](std::string_view name) { std::fprintf(list, "%s\n", escape_text(name).c_str()); };
  }
  o.owners = !p.has("no-owners");
  o.numeric_owner = p.has("numeric-owner");
  o.xattrs = !p.has("no-xattrs");
  Progress progress("create");
  o.progress = [&](uint64_t done, uint64_t total) { progress.update(done, total); };
  Writer w(o);
  const std::string base = p.get("directory");
  for (const auto& path : p.positional) {
    std::string src = base.empty() || path.front() == '/' ? path : base + "/" + path;
    // A name that normalises to nothing ("." or "/") means "the contents".
    std::string name;
    bool top = true;
    for (char c : path) {
      if (c != '/' && c != '.') top = false;
    }
    if (!top) {
      auto n = normalize_member_name(path);
      if (!n.ok()) return fail(n.error());
      name = *n;
      if (o.exclude && o.exclude(name)) continue;
    }
    struct stat st {};
    if (lstat(src.c_str(), &st) != 0) return fail(sys_error(src, errno));
    Result<void> r = S_ISDIR(st.st_mode) ? w.add_tree(name, src) : w.add_path(name, src);
    if (!r.ok()) return fail(r.error());
  }
  // --from: the input's entries, spooled beside the output (the space is
  // needed there anyway), added to the writer; the spool goes with `import`.
  std::optional<ArchiveImport> import;
  if (p.has("from")) {
    std::string spool_parent = ".";
    if (out != "-") {
      const size_t slash = out.rfind('/');
      spool_parent = slash == std::string::npos ? "." : slash == 0 ? "/" : out.substr(0, slash);
    } else if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0') {
      spool_parent = t;
    } else {
      spool_parent = "/tmp";
    }
    auto r = ArchiveImport::read(p.get("from"), w, spool_parent);
    if (!r.ok()) return fail(r.error());
    import.emplace(std::move(r).value());
  }
  int64_t t0 = now_ns();
  auto stats = out == "-" ? write_to_stdout(w) : w.write(out);
  progress.finish();
  // What a CTF archive cannot hold as given (a directory, inputs of two
  // data models, two dicts of one name) is the command line's to change.
  if (!stats.ok() && o.format == Format::ctf && stats.error().code() == Errc::invalid_argument) {
    return usage_error("create", stats.error().message());
  }
  if (!stats.ok()) return fail(stats.error());
  double secs = static_cast<double>(now_ns() - t0) / 1e9;
  // With the archive on standard output, the summary goes to stderr.
  FILE* const report = out == "-" ? stderr : stdout;
  if (p.has("json")) {
    Json j(out == "-" ? 2 : 1);
    j.object().field("archive", out).field("members", stats->members).field("input_bytes", stats->input_bytes);
    j.field("archive_bytes", stats->archive_bytes).field("compressed_members", stats->compressed_members);
    j.field("deduplicated_members", stats->deduplicated).field("deduplicated_bytes", stats->deduplicated_bytes);
    j.key("seconds").value(secs, 6);
    j.end().newline();
    return j.finish();
  } else if (p.has("stats")) {
    std::fprintf(report, "%s: %u members, %s in, %s archive (%u compressed; %u with the bytes of another, %s not stored "
                "again), %.3f s\n",
                out.c_str(), stats->members, human_size(stats->input_bytes).c_str(),
                human_size(stats->archive_bytes).c_str(), stats->compressed_members, stats->deduplicated,
                human_size(stats->deduplicated_bytes).c_str(), secs);
  }
  return kExitOk;
}

}  // namespace mmar::cli
