// SPDX-License-Identifier: BSD-2-Clause
// mmar: mmappable archives of binaries and type information.
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>
#include <cstring>
#include <new>
#include <string_view>

#include "cli.h"
#include "support/cleanup.h"
#include "verbs.h"

namespace {

// Ctrl-C, SIGTERM, SIGHUP: the temporaries a writer or an import keeps
// beside its output (a half-written archive, a spool) go first; then the
// signal ends the process as it would have (the exit status shows it).
// `mmar mount` replaces these in its daemon with libfuse's own.
void on_fatal_signal(int sig) {
  mmar::remove_temporaries_now();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void remove_temporaries_on_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction old {};
    // A signal ignored by whoever started us (nohup, a shell's background
    // job) stays ignored.
    if (sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;
    sigaction(sig, &sa, nullptr);
  }
}

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
    {"export", mmar::cli::run_export, "write an archive's members as tar, zip or cpio"},
    {"btf", mmar::cli::run_btf, "BTF type information: dump (bpftool-exact), find, stats"},
    {"ctf", mmar::cli::run_ctf, "CTF type information: dump (objdump --ctf exact), find"},
    {"map", mmar::cli::run_map, "map an ELF object as ld.so would and print the mappings"},
    {"exec", mmar::cli::run_exec, "run a program from an archive without extracting it"},
#ifdef MMAR_HAVE_FUSE
    {"mount", mmar::cli::run_mount, "mount an archive with FUSE (read-only, or --rw)"},
    {"umount", mmar::cli::run_umount, "unmount an archive mounted with mmar mount"},
#endif
    {"compact", mmar::cli::run_compact, "drop data superseded by writable mounts"},
};

void usage(FILE* out) {
  std::fprintf(out, "Usage: mmar <verb> [options]\n\nVerbs:\n");
  for (const auto& v : kVerbs) std::fprintf(out, "  %-10s %s\n", v.name, v.summary);
  std::fprintf(out, "\n'mmar <verb> --help' describes a verb. Exit status: 0 ok, 1 error, 2 usage.\n");
}

int run(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return mmar::cli::kExitUsage;
  }
  std::string_view verb = argv[1];
  // help, --help and --version take nothing more (help: one verb, and a
  // btf or ctf sub-verb): anything else is a mistake, not ignored.
  auto extra = [&](int allowed) {
    if (argc <= 2 + allowed) return false;
    mmar::cli::error(std::string(verb) + ": unexpected argument '" + argv[2 + allowed] + "' (usage: mmar " +
                     (verb == "help" ? "help [VERB]" : std::string(verb)) + ")");
    return true;
  };
  if (verb == "help" && argc >= 3) {  // mmar help VERB: that verb's --help
    const std::string_view of = argv[2];
    if (extra(of == "btf" || of == "ctf" ? 2 : 1)) return mmar::cli::kExitUsage;
    static char help_flag[] = "--help";
    char* help_argv[] = {argv[0], argv[2], argc == 4 ? argv[3] : help_flag, help_flag, nullptr};
    return run(argc == 4 ? 4 : 3, help_argv);
  }
  if (verb == "-h" || verb == "--help" || verb == "help") {
    if (extra(0)) return mmar::cli::kExitUsage;
    usage(stdout);
    return mmar::cli::kExitOk;
  }
  if (verb == "--version" || verb == "-V") {
    if (extra(0)) return mmar::cli::kExitUsage;
    std::printf("mmar %s (format 1; features:%s%s)\n", MMAR_VERSION,
#ifdef MMAR_HAVE_FUSE
                " mount",
#else
                "",
#endif
#ifdef MMAR_HAVE_LIBARCHIVE
                " libarchive"
#else
                ""
#endif
    );
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
#ifdef MMAR_HAVE_FUSE
  // As a mount helper: `mount -t fuse.mmar ARCHIVE DIR -o OPTS` (and an
  // fstab line of type fuse.mmar) makes mount.fuse3 run `mmar ARCHIVE DIR
  // -o OPTS`. mount(8) adds `rw` unless told `ro`, so `rw` is not taken as a
  // request for a writable mount here: the option `writable` is.
  if (argc >= 3 && argv[1][0] != '-') {
    struct stat archive_st {}, dir_st {};
    if (::stat(argv[1], &archive_st) == 0 && S_ISREG(archive_st.st_mode) && ::stat(argv[2], &dir_st) == 0 &&
        S_ISDIR(dir_st.st_mode)) {
      std::vector<std::string> args = {"mount", argv[1], argv[2]};
      for (int i = 3; i < argc; ++i) {
        const std::string_view a = argv[i];
        if ((a == "-o" && i + 1 < argc) || (a.size() > 2 && a.substr(0, 2) == "-o")) {
          const std::string all = a == "-o" ? argv[++i] : std::string(a.substr(2));
          std::string kept;
          for (size_t start = 0; start <= all.size();) {
            size_t comma = all.find(',', start);
            if (comma == std::string::npos) comma = all.size();
            const std::string opt = all.substr(start, comma - start);
            start = comma + 1;
            if (opt.empty() || opt == "rw") continue;
            if (opt == "writable") {
              args.push_back("--rw");
              continue;
            }
            kept += (kept.empty() ? "" : ",") + opt;
          }
          if (!kept.empty()) {
            args.push_back("-o");
            args.push_back(kept);
          }
        } else {
          args.emplace_back(a);
        }
      }
      std::vector<char*> mount_argv;
      for (auto& x : args) mount_argv.push_back(x.data());
      mount_argv.push_back(nullptr);
      try {
        return mmar::cli::run_mount(static_cast<int>(args.size()) - 1, mount_argv.data() + 1);
      } catch (const mmar::cli::Exit& e) {
        return e.code;
      }
    }
  }
#endif
  mmar::cli::error("unknown verb '" + std::string(verb) + "'");
  usage(stderr);
  return mmar::cli::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  remove_temporaries_on_signals();
  const int rc = run(argc, argv);
  // Text printed with stdio reaches its reader only here: output that did
  // not (a full disk, a closed pipe) is an error, never a success.
  if (std::fflush(stdout) != 0 || std::ferror(stdout) != 0) {
    mmar::cli::error(std::string("standard output: ") + std::strerror(errno != 0 ? errno : EIO));
    return rc == mmar::cli::kExitOk ? mmar::cli::kExitError : rc;
  }
  return rc;
}
