// mmar: mmappable archives of binaries and type information.
#include <cstdio>
#include <cstring>
#include <new>
#include <string_view>

#include "cli.h"
#include "verbs.h"

namespace {

struct VerbEntry {
  const char* name;
  int (*run)(int, char**);
  const char* summary;
};

constexpr VerbEntry kVerbs[] = {
    {"create", mmar::cli::run_create, "create an archive from files and directories"},
    {"list", mmar::cli::run_list, "list members (-l for details, --json for data)"},
    {"extract", mmar::cli::run_extract, "extract members into a directory"},
    {"cat", mmar::cli::run_cat, "write members' contents to standard output"},
    {"info", mmar::cli::run_info, "describe an archive: format, sizes, codecs"},
    {"verify", mmar::cli::run_verify, "check every checksum and structure"},
    {"btf", mmar::cli::run_btf, "BTF type information: dump (bpftool-exact), find, stats"},
    {"ctf", mmar::cli::run_ctf, "CTF type information: dump (objdump --ctf exact), find"},
    {"map", mmar::cli::run_map, "map an ELF object as ld.so would and print the mappings"},
    {"exec", mmar::cli::run_exec, "run a program from an archive without extracting it"},
    {"mount", mmar::cli::run_mount, "mount an archive with FUSE (read-only, or --rw)"},
    {"umount", mmar::cli::run_umount, "unmount an archive mounted with mmar mount"},
    {"compact", mmar::cli::run_compact, "drop data superseded by writable mounts"},
};

void usage(FILE* out) {
  std::fprintf(out, "Usage: mmar <verb> [options]\n\nVerbs:\n");
  for (const auto& v : kVerbs) std::fprintf(out, "  %-10s %s\n", v.name, v.summary);
  std::fprintf(out, "\n'mmar <verb> --help' describes a verb. Exit status: 0 ok, 1 error, 2 usage.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return mmar::cli::kExitUsage;
  }
  std::string_view verb = argv[1];
  if (verb == "-h" || verb == "--help" || verb == "help") {
    usage(stdout);
    return mmar::cli::kExitOk;
  }
  if (verb == "--version") {
    std::printf("mmar 0.1.0\n");
    return mmar::cli::kExitOk;
  }
  for (const auto& v : kVerbs) {
    if (verb != v.name) continue;
    try {
      return v.run(argc - 2, argv + 2);
    } catch (const mmar::cli::Exit& e) {
      return e.code;
    } catch (const std::bad_alloc&) {
      mmar::cli::error("out of memory");
      return mmar::cli::kExitError;
    }
  }
  mmar::cli::error("unknown verb '" + std::string(verb) + "'");
  usage(stderr);
  return mmar::cli::kExitUsage;
}
