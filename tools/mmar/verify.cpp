// SPDX-License-Identifier: BSD-2-Clause
// mmar verify: check every checksum and structure, report each problem.
#include "cli.h"
#include "json.h"
#include "verbs.h"

namespace mmar::cli {

namespace {

const Verb kVerify{"verify",
                   "[-f] ARCHIVE [--json]",
                   "Check ARCHIVE: both superblocks, the index checksum, name order, every member's\n"
                   "metadata, size and XXH3 checksum. Each problem is reported; exit 1 if any.",
                   {
                       {"file", 'f', true, "ARCHIVE", "archive to check ('-' for standard input)"},
                       {"json", 0, false, "", "print JSON"},
                       {"quiet", 'q', false, "", "print nothing; only the exit status"},
                       {"pread", 0, false, "", "read with pread instead of mmap"},
                       {"plain", 0, false, "", "open any file as a one-member archive (else only ELF, BTF, CTF objects)"},
                   }};

}  // namespace

int run_verify(int argc, char** argv) {
  Parsed p = parse(kVerify, argc, argv);
  std::string path = archive_path(kVerify, p);
  no_more_arguments(kVerify, p);
  auto a = open_archive(path, p);
  if (!a.ok()) return fail(a.error());
  Progress progress("verify", Progress::Unit::members);
  auto problems = a->verify([&](uint64_t done, uint64_t total) { progress.update(done, total); });
  progress.finish();
  if (!problems.ok()) return fail(problems.error());
  const bool quiet = p.has("quiet");
  int written = kExitOk;
  if (p.has("json")) {
    Json j;
    j.object().field("archive", path).field("members", a->size()).field("ok", problems->empty());
    j.key("problems").array(true);
    for (const auto& pr : *problems) {
      j.object().key("member");
      if (pr.member) {
        j.value(*pr.member);
      } else {
        j.value(nullptr);
      }
      j.field("message", pr.message).end();
    }
    j.end().end().newline();
    written = j.finish();
  } else if (!quiet) {
    for (const auto& pr : *problems) error(pr.message);
    if (problems->empty()) std::printf("%s: %u members OK\n", escape_text(path).c_str(), a->size());
  }
  if (!problems->empty()) {
    if (!quiet && !p.has("json")) error(path + ": " + std::to_string(problems->size()) + " problem(s) found");
    return kExitError;
  }
  return written;
}

}  // namespace mmar::cli
