// Shared pieces of the read-only and the writable filesystem.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse3/fuse_lowlevel.h>

#include <cerrno>
#include <new>
#include <string>

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

// Create the session with `ops`, mount it on `dir` with `base_options` (plus
// the caller's -o options), daemonize unless in the foreground, serve with
// the multi-threaded loop until unmounted, and clean up.
Result<void> run_session(const fuse_lowlevel_ops& ops, void* userdata, const std::string& dir,
                         const MountOptions& options, const std::string& base_options);

// The writable filesystem (mount_rw.cpp).
Result<void> serve_writable(Archive archive, const std::string& archive_path, const std::string& dir,
                            const MountOptions& options);

}  // namespace mmar::fs
