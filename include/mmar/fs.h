// SPDX-License-Identifier: BSD-2-Clause
// Mounting an archive with FUSE (libfuse3's low-level API, multi-threaded),
// read-only: every tool, ld.so included, reads, maps and runs what the
// archive holds, in place. A separate library (mmar_fs): libmmar itself
// never depends on FUSE.
//
// Inodes are derived from the sorted member table, so they are stable for
// an archive and nothing is built at mount (mount time does not depend on
// the number of members): member i is inode i + 2 (the root is 1); a
// directory that has no member of its own (only members below it) is
// N + 2 + k * 256 + depth, from the first member k below it and its depth.
// Reads of uncompressed members are replied straight from the archive's
// mapping; compressed members are inflated once into the archive's bounded
// cache. Files open with keep_cache, so the kernel's page cache serves
// repeated reads and mmap.
#pragma once

#include "mmar/export.h"

#include <optional>
#include <string>
#include <vector>

#include "mmar/archive.h"

namespace mmar::fs {

struct MMAR_API MountOptions {
  bool foreground = false;                // stay in the foreground (else daemonize once mounted)
  bool debug = false;                     // libfuse's request log on stderr
  bool writable = false;                  // --rw: changes persist into the archive (see below)
  unsigned max_threads = 0;               // 0: half the online CPUs, at least 1
  std::vector<std::string> fuse_options;  // -o values passed to libfuse ("allow_other", ...)
  // -o uid=, gid=, umask= as squashfuse has them: every entry shown owned by
  // this uid/gid, and these permission bits cleared. Without uid/gid, an
  // entry shows its recorded owner, or the mounting user when it has none.
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  uint32_t umask = 0;
};

// Writable (options.writable, mmar archives only): create, write, truncate,
// rename, unlink, mkdir, rmdir, chmod, symlink; write() and shared mmap stay
// coherent through the kernel's page cache; changes persist on fsync and at
// unmount as a new generation appended to the archive (commit_generation),
// so a crash at any moment leaves the old or the new contents.
//
// Mount `archive` on `dir` and serve it until unmounted (fusermount3 -u DIR,
// or mmar umount DIR) or interrupted. Returns 0, or an error naming the
// problem (no /dev/fuse, DIR not a directory, ...).
MMAR_API Result<void> mount_archive(Archive archive, const std::string& dir, const MountOptions& options);

}  // namespace mmar::fs
