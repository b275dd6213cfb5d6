// SPDX-License-Identifier: BSD-2-Clause
// The libfuse option string of a mount: what mmar always sets, the archive's
// name as fsname (escaped), and the caller's own -o options (checked).
//
// libfuse splits -o values at commas; its parser (fuse_opt.c,
// process_real_option_group) takes a backslash to mean "the next character
// is literal" (and \NNN as an octal byte). An archive named
// "x.mmar,suid,allow_other" passed raw would therefore add two mount options
// of the file name's choosing. Escaping ',' and '\' the way
// fuse_opt_add_opt_escaped does makes the whole name one fsname value.
#include <string>
#include <string_view>
#include <vector>

#include "fs/rw.h"

namespace mmar::fs {

namespace {

// Options a caller may pass with -o. Everything else (fsname=, subtype=,
// blkdev, fd=, user_id=, context=, ...) is mmar's to set or nobody's.
constexpr std::string_view kAllowedFlags[] = {
    "allow_other", "allow_root", "auto_unmount", "ro",       "rw",         "suid",        "nosuid",
    "dev",         "nodev",      "exec",         "noexec",   "async",      "sync",        "dirsync",
    "atime",       "noatime",    "diratime",     "nodiratime", "lazytime", "nolazytime", "relatime",
    "norelatime",  "strictatime", "nostrictatime",
};

bool is_decimal(std::string_view s) {
  if (s.empty() || s.size() > 10) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

std::string escape_fuse_option(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == ',' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string base_mount_options(bool writable, std::string_view fsname) {
  return std::string(writable ? "rw" : "ro") + ",default_permissions,fsname=" + escape_fuse_option(fsname) +
         ",subtype=mmar";
}

Result<std::vector<std::string>> checked_user_options(const std::vector<std::string>& options) {
  bool suid = false;
  bool dev = false;
  std::vector<std::string> out;
  for (const auto& o : options) {
    bool known = false;
    for (auto allowed : kAllowedFlags) known = known || o == allowed;
    if (o.rfind("max_read=", 0) == 0 && is_decimal(std::string_view(o).substr(9))) known = true;
    if (!known) {
      return Error(Errc::invalid_argument,
                   "mount option '" + o +
                       "' is not allowed (allowed: allow_other, allow_root, auto_unmount, ro, rw, suid, dev, exec "
                       "and their no- forms, sync, async, dirsync, the atime options, max_read=N)");
    }
    if (o == "suid") suid = true;
    if (o == "nosuid") suid = false;
    if (o == "dev") dev = true;
    if (o == "nodev") dev = false;
  }
  // Set first, so that only an explicit -o suid / -o dev after them turns
  // them off (libfuse applies flags in order). Written out although libfuse
  // defaults to them today: the mount must not depend on that default.
  if (!suid) out.emplace_back("nosuid");
  if (!dev) out.emplace_back("nodev");
  out.insert(out.end(), options.begin(), options.end());
  return out;
}

}  // namespace mmar::fs
