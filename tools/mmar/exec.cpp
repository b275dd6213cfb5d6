// SPDX-License-Identifier: BSD-2-Clause
// mmar exec: run a program stored in an archive without extracting it.
#include <cstring>

#include "cli.h"
#include "mmar/elf_map.h"
#include "verbs.h"

namespace mmar::cli {

namespace {

const Verb kExec{"exec",
                 "[--argv0 NAME] ARCHIVE:MEMBER [ARG...]",
                 "Run the program MEMBER of ARCHIVE with ARGs, in this process, without writing it to disk:\n"
                 "it and its interpreter (ld.so) are mapped as the kernel would map them (an uncompressed,\n"
                 "page-aligned member straight from the archive) and started with the stack and auxiliary\n"
                 "vector the kernel builds. Scripts and objects for another machine run through an anonymous\n"
                 "memory file and fexecve instead (-v says why). Options end at ARCHIVE:MEMBER.",
                 {
                     {"argv0", 0, true, "NAME", "argv[0] for the program (default: the member's base name)"},
                     {"verbose", 'v', false, "", "say when falling back to fexecve, and why"},
                 }};

}  // namespace

int run_exec(int argc, char** argv) {
  // Options stop at the first operand: everything after it is the program's.
  int k = 0;
  for (; k < argc; ++k) {
    std::string_view a = argv[k];
    if (a == "--") {
      ++k;
      break;
    }
    if (a.size() < 2 || a[0] != '-') break;
    if (a == "--argv0") ++k;
  }
  Parsed p = parse(kExec, std::min(k, argc), argv);
  if (k >= argc) return usage_error("exec", "expected ARCHIVE:MEMBER");
  std::string archive_name, member_name;
  const std::string spec = argv[k];
  if (!split_member_spec(spec, archive_name, member_name)) {
    return usage_error("exec", "'" + spec + "' is not ARCHIVE:MEMBER");
  }
  auto a = Archive::open(archive_name);
  if (!a.ok()) return fail(a.error());
  auto m = a->find(member_name);
  if (!m.ok()) return fail(m.error());
  std::vector<std::string> args;
  std::string base = member_name.substr(member_name.rfind('/') + 1);
  args.push_back(p.has("argv0") ? p.get("argv0") : base);
  for (int i = k + 1; i < argc; ++i) args.emplace_back(argv[i]);
  const bool verbose = p.has("verbose");
  Error e = exec_member(*a, *m, args, [&](const std::string& why) {
    if (verbose) error("user-space exec not possible (" + why + "); running it with fexecve");
  });
  return fail(e);
}

}  // namespace mmar::cli
