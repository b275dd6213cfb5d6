// mmar mount / umount: serve an archive as a read-only FUSE filesystem.
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "cli.h"
#include "mmar/fs.h"
#include "verbs.h"

namespace mmar::cli {

namespace {

const Verb kMount{
    "mount",
    "ARCHIVE DIR [-f] [--rw] [-o OPTION[,OPTION...]] [--threads N]",
    "Mount ARCHIVE on DIR: ls, find, stat, cat, mmap and exec (ld.so included) work on its members\n"
    "in place. Read-only unless --rw. Unmount with `mmar umount DIR` or `fusermount3 -u DIR`.",
    {
        {"foreground", 'f', false, "", "stay in the foreground until unmounted"},
        {"option", 'o', true, "OPTIONS",
         "mount options, comma-separated: allow_other, allow_root, auto_unmount, ro, rw, (no)exec, (no)suid,\n"
         "                               (no)dev, (no)atime and the other atime options, sync, async, dirsync,\n"
         "                               max_read=N; always nosuid,nodev unless -o suid / -o dev"},
        {"threads", 0, true, "N", "at most N threads serving requests"},
        {"debug", 'd', false, "", "log every FUSE request on stderr (implies -f)"},
        {"rw", 0, false, "", "writable: changes persist into ARCHIVE on fsync and at unmount (crash-safe)"},
    }};

const Verb kUmount{"umount", "DIR", "Unmount an archive mounted on DIR (fusermount3 -u).", {}};

}  // namespace

int run_mount(int argc, char** argv) {
  Parsed p = parse(kMount, argc, argv);
  if (p.positional.size() != 2) return usage_error("mount", "expected ARCHIVE and DIR");
  fs::MountOptions o;
  o.foreground = p.has("foreground") || p.has("debug");
  o.debug = p.has("debug");
  o.writable = p.has("rw");
  if (p.has("threads")) {
    auto n = parse_size(p.get("threads"));
    if (!n || *n == 0 || *n > 1024) return usage_error("mount", "bad --threads '" + p.get("threads") + "'");
    o.max_threads = static_cast<unsigned>(*n);
  }
  if (p.has("option")) {
    std::string all = p.get("option");
    for (size_t start = 0; start <= all.size();) {
      size_t comma = all.find(',', start);
      if (comma == std::string::npos) comma = all.size();
      if (comma > start) o.fuse_options.push_back(all.substr(start, comma - start));
      start = comma + 1;
    }
    for (const auto& opt : o.fuse_options) {
      if (opt == "rw") o.writable = true;
    }
  }
  // Absolute: the daemon changes to / when it detaches, and a writable mount
  // reopens the archive by name after each commit.
  char resolved[PATH_MAX];
  const std::string archive_path =
      realpath(p.positional[0].c_str(), resolved) != nullptr ? std::string(resolved) : p.positional[0];
  auto a = Archive::open(archive_path);
  if (!a.ok()) return fail(a.error());
  if (o.writable && a->format() != Format::mmar) {
    return fail(Error(Errc::invalid_argument, p.positional[0] + ": only mmar archives can be mounted writable"));
  }
  if (a->format() == Format::plain) {
    return fail(Error(Errc::invalid_argument, p.positional[0] + ": not an archive (no mmar or CTF archive header)"));
  }
  auto r = fs::mount_archive(std::move(a).value(), p.positional[1], o);
  if (!r.ok()) return fail(r.error());
  return kExitOk;
}

int run_umount(int argc, char** argv) {
  Parsed p = parse(kUmount, argc, argv);
  if (p.positional.size() != 1) return usage_error("umount", "expected DIR");
  const std::string dir = p.positional[0];
  pid_t pid = fork();
  if (pid == 0) {
    execlp("fusermount3", "fusermount3", "-u", "--", dir.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0) return kExitOk;
  if (pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) != 127) return kExitError;  // it said why
  // No fusermount3: unmount directly (root).
  if (umount2(dir.c_str(), 0) == 0) return kExitOk;
  return fail(sys_error("umount " + dir, errno));
}

}  // namespace mmar::cli
