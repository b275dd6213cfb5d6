// SPDX-License-Identifier: BSD-2-Clause
// mmar mount / umount: serve an archive as a read-only FUSE filesystem.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>
#include <vector>

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
         "                               max_read=N, cache_size=BYTES (inflated frames kept in memory,\n"
         "                               default 32M), uid=N, gid=N, umask=OCTAL (what every entry shows;\n"
         "                               else its recorded owner); always nosuid,nodev unless -o suid / -o dev"},
        {"threads", 0, true, "N", "at most N threads serving requests"},
        {"debug", 'd', false, "", "log every FUSE request on stderr (implies -f)"},
        {"rw", 0, false, "", "writable: changes persist into ARCHIVE on fsync and at unmount (crash-safe)"},
    }};

const Verb kUmount{"umount",
                   "DIR [--lazy]",
                   "Unmount the archive mounted on DIR. Only mmar's own mounts (fuse.mmar in\n"
                   "/proc/self/mountinfo): anything else on DIR is refused. A busy mount is retried\n"
                   "for about two seconds.",
                   {
                       {"lazy", 'z', false, "", "detach now, finish when no longer busy (umount -l, fusermount3 -uz)"},
                   }};

// Undo the octal escapes (\040 for a space, ...) of /proc/self/mountinfo.
std::string unmangle(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
        s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The filesystem type of the topmost mount on `dir` (an absolute, resolved
// path), or "" when nothing is mounted there.
Result<std::string> mount_type(const std::string& dir) {
  FILE* f = std::fopen("/proc/self/mountinfo", "re");
  if (f == nullptr) return sys_error("/proc/self/mountinfo", errno);
  std::string type;
  char* line = nullptr;
  size_t cap = 0;
  while (getline(&line, &cap, f) > 0) {
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
    std::vector<std::string_view> fields;
    std::string_view rest(line);
    if (!rest.empty() && rest.back() == '\n') rest.remove_suffix(1);
    for (size_t at = 0; at <= rest.size();) {
      size_t sp = rest.find(' ', at);
      if (sp == std::string_view::npos) sp = rest.size();
      fields.push_back(rest.substr(at, sp - at));
      at = sp + 1;
    }
    if (fields.size() < 10 || unmangle(fields[4]) != dir) continue;
    size_t dash = 6;
    while (dash < fields.size() && fields[dash] != "-") ++dash;
    if (dash + 1 < fields.size()) type = std::string(fields[dash + 1]);  // later lines are mounted on top
  }
  std::free(line);
  std::fclose(f);
  return type;
}

// `dir` as an absolute path without symlinks; "" (errno set) if impossible.
std::string resolve_mount_point(const std::string& dir) {
  char buf[PATH_MAX];
  if (realpath(dir.c_str(), buf) != nullptr) return buf;
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  const size_t slash = d.rfind('/');
  const std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : d.substr(0, slash);
  const std::string base = slash == std::string::npos ? d : d.substr(slash + 1);
  if (base.empty() || base == "." || base == ".." || realpath(parent.c_str(), buf) == nullptr) return "";
  const std::string p = buf;
  return p == "/" ? "/" + base : p + "/" + base;
}

// fusermount3 -u [-z] [-q] -- DIR; its exit status, 127 when not found.
int fusermount_unmount(const std::string& dir, bool lazy, bool quiet) {
  pid_t pid = fork();
  if (pid == 0) {
    if (quiet) {
      int null = open("/dev/null", O_WRONLY);
      if (null >= 0) dup2(null, 2);
    }
    execlp("fusermount3", "fusermount3", lazy ? "-uz" : "-u", "--", dir.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return 1;
  return WEXITSTATUS(status);
}

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
  // cache_size=BYTES (K/M/G suffixes): the inflated frames kept in memory.
  // Ours, not libfuse's: taken out of the options passed on.
  // uid=, gid=, umask= (octal): what every entry shows, as squashfuse has them.
  OpenOptions open_options;
  for (auto it = o.fuse_options.begin(); it != o.fuse_options.end();) {
    const std::string& opt = *it;
    const size_t eq = opt.find('=');
    const std::string key = opt.substr(0, eq), value = eq == std::string::npos ? "" : opt.substr(eq + 1);
    if (key == "cache_size") {
      auto n = parse_size(value);
      if (!n) return usage_error("mount", "bad '" + opt + "'");
      open_options.frame_cache_bytes = *n;
    } else if (key == "uid" || key == "gid") {
      char* end = nullptr;
      errno = 0;
      const unsigned long v = std::strtoul(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || errno != 0 || v > 0xfffffffeUL) {
        return usage_error("mount", "bad '" + opt + "' (a number)");
      }
      (key == "uid" ? o.uid : o.gid) = static_cast<uint32_t>(v);
    } else if (key == "umask") {
      char* end = nullptr;
      const unsigned long v = std::strtoul(value.c_str(), &end, 8);
      if (value.empty() || *end != '\0' || v > 07777) return usage_error("mount", "bad '" + opt + "' (octal, <= 7777)");
      o.umask = static_cast<uint32_t>(v);
    } else {
      ++it;
      continue;
    }
    it = o.fuse_options.erase(it);
  }
  if (o.writable) {
    // Contradictions are refused, not settled silently.
    for (const auto& opt : o.fuse_options) {
      if (opt == "ro") return usage_error("mount", "--rw (or -o rw/writable) and -o ro contradict each other");
    }
    if (o.uid || o.gid || o.umask != 0) {
      return usage_error("mount", "-o uid=, gid=, umask= apply to read-only mounts (a writable mount stores owners)");
    }
  }
  // Absolute: the daemon changes to / when it detaches, and a writable mount
  // reopens the archive by name after each commit.
  char resolved[PATH_MAX];
  const std::string archive_path =
      realpath(p.positional[0].c_str(), resolved) != nullptr ? std::string(resolved) : p.positional[0];
  auto a = Archive::open(archive_path, open_options);
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
  // The mount point of a daemon that died cannot be stat'ed (ENOTCONN):
  // then resolve its parent and keep the last component.
  std::string resolved = resolve_mount_point(dir);
  if (resolved.empty()) return fail(sys_error(dir, errno));
  auto fstype = mount_type(resolved);
  if (!fstype.ok()) return fail(fstype.error());
  if (fstype->empty()) return fail(Error(Errc::invalid_argument, dir + ": not a mount point"));
  if (*fstype != "fuse.mmar") {
    return fail(Error(Errc::invalid_argument, dir + ": not an mmar mount (it is " + *fstype + "); not unmounting it"));
  }
  const bool lazy = p.has("lazy");
  // A writable mount commits what it holds first (fsyncdir of its root), so
  // a commit that fails -- a full disk -- reaches this command's exit status
  // and the mount, with the changes, stays until it can be committed.
  if (int dfd = ::open(resolved.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    const int synced = fsync(dfd);
    const int err = errno;
    ::close(dfd);
    if (synced != 0 && err != ENOSYS && err != EROFS && err != EINVAL) {
      return fail(Error(Errc::io,
                        dir + ": cannot commit the changes (" + std::strerror(err) + "); still mounted, nothing lost",
                        Error::kNoOffset, err));
    }
  }
  // Right after a program run from the mount exits, the kernel may still
  // hold the mount busy for a moment: retry EBUSY with backoff, ~2.5 s in all.
  int delay_ms = 10;
  for (;;) {
    const bool last = delay_ms > 1280;  // 10 + 20 + ... + 1280 ms of waiting before it
    int err = 0;
    if (geteuid() == 0) {
      if (umount2(resolved.c_str(), (lazy ? MNT_DETACH : 0) | UMOUNT_NOFOLLOW) == 0) return kExitOk;
      err = errno;
    } else {
      const int status = fusermount_unmount(resolved, lazy, /*quiet=*/!last);
      if (status == 0) return kExitOk;
      if (status == 127) return fail(Error(Errc::io, "umount " + dir + ": fusermount3 (package fuse3) not found"));
      if (last) return kExitError;  // fusermount3 said why
      err = EBUSY;                  // it gives no errno: retried like EBUSY
    }
    if (err != EBUSY || last) return fail(sys_error("umount " + dir, err));
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    delay_ms *= 2;
  }
}

}  // namespace mmar::cli
