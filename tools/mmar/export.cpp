// SPDX-License-Identifier: BSD-2-Clause
// mmar export: an archive's members written out as tar, zip or cpio (the
// other direction of `mmar create --from`).
#include <unistd.h>

#include <cinttypes>

#include "cli.h"
#include "mmar/convert.h"
#include "verbs.h"

namespace mmar::cli {

namespace {

const Verb kExport{
    "export",
    "[-f] ARCHIVE -o OUT [--format FMT] [--compress FILTER]",
    "Write every member of ARCHIVE (in name order) to OUT as another archive format:\n"
    "by default chosen from OUT's extension (.tar, .tar.zst, .tgz, .zip, .cpio, ...),\n"
    "pax when none matches or OUT is '-' (standard output). Contents are checked\n"
    "as they are read; OUT appears only when complete.",
    {
        {"file", 'f', true, "ARCHIVE", "archive to read ('-' for standard input)"},
        {"output", 'o', true, "OUT", "file to write ('-': standard output)"},
        {"format", 0, true, "FMT", "pax, gnu, ustar, zip or cpio (default: from OUT's extension, else pax)"},
        {"compress", 0, true, "FILTER", "none, gzip, xz, zstd or bzip2 (default: from OUT's extension)"},
        {"stats", 's', false, "", "print a summary on stderr"},
        {"plain", 0, false, "", "open any file as a one-member archive (else only ELF, BTF, CTF objects)"},
    }};

}  // namespace

int run_export(int argc, char** argv) {
  Parsed p = parse(kExport, argc, argv);
  std::string path = archive_path(kExport, p);
  no_more_arguments(kExport, p);
  if (!p.has("output")) return usage_error("export", "no output given (-o OUT, '-' for standard output)");
  const std::string out = p.get("output");
  if (out == "-" && ::isatty(1)) {
    return usage_error("export", "refusing to write an archive to a terminal (redirect standard output)");
  }
  auto a = open_archive(path, p);
  if (!a.ok()) return fail(a.error());
  ExportOptions o;
  o.format = p.get("format");
  o.filter = p.get("compress");
  auto stats = export_archive(*a, out, o);
  if (!stats.ok()) {
    if (stats.error().code() == Errc::invalid_argument) return usage_error("export", stats.error().message());
    return fail(stats.error());
  }
  if (p.has("stats")) {
    std::fprintf(stderr, "%s: %" PRIu64 " members, %s\n", out.c_str(), stats->members, human_size(stats->bytes).c_str());
  }
  return kExitOk;
}

}  // namespace mmar::cli
