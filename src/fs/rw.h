// SPDX-License-Identifier: BSD-2-Clause
// Shared pieces of the read-only and the writable filesystem.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse3/fuse_lowlevel.h>

#include <cerrno>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "mmar/fs.h"

namespace mmar::fs {

// Every request handler runs inside this: a bad_alloc becomes ENOMEM and
// nothing escapes into libfuse.
template <class F>
void guarded(fuse_req_t req, F f) {
  try {
    f();
  } catch (const std::bad_alloc&) {
    fuse_reply_err(req, ENOMEM);
  }
}

// `value` escaped for a libfuse option string: a backslash before each ','
// and '\\', as fuse_opt_add_opt_escaped does, so libfuse's parser gives back
// `value` whole (options.cpp).
std::string escape_fuse_option(std::string_view value);
// "ro|rw,default_permissions,fsname=<escaped fsname>,subtype=mmar".
std::string base_mount_options(bool writable, std::string_view fsname);
// The caller's -o options checked against the options a user may set (an
// error naming the first other one), preceded by nosuid and nodev unless
// the caller asked for suid or dev explicitly.
Result<std::vector<std::string>> checked_user_options(const std::vector<std::string>& options);

// Create the session with `ops`, mount it on `dir` with `base_options` (from
// base_mount_options; plus the caller's -o options, checked), daemonize unless in the foreground, serve with
// the multi-threaded loop until unmounted, and clean up.
// `in_daemon` runs in the process that will serve, before whoever started
// the mount is let go (the writable mount names the daemon as the writer
// lock's holder there, so a second writer refused right after `mmar mount`
// returns names the daemon, never the parent that exited).
Result<void> run_session(const fuse_lowlevel_ops& ops, void* userdata, const std::string& dir,
                         const MountOptions& options, const std::string& base_options,
                         void (*in_daemon)(void* userdata) = nullptr);

// The writable filesystem (mount_rw.cpp).
Result<void> serve_writable(Archive archive, const std::string& archive_path, const std::string& dir,
                            const MountOptions& options);

}  // namespace mmar::fs
