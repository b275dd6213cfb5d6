// SPDX-License-Identifier: BSD-2-Clause
// Temporary files and directories to remove when the process is killed by a
// signal it can catch (Ctrl-C, SIGTERM, SIGHUP): a writer's temporary
// archive (AtomicFile) and an import's spool directory would otherwise be
// left beside the output. Normal exits remove them by RAII; this covers only
// the signal path.
//
// The library never installs a handler (that is the program's choice):
// the mmar command calls remove_temporaries_now() from its handler, which
// is async-signal-safe (unlink, rmdir, getdents64 and unlinkat on a fixed
// table of slots, no allocation, no locks).
//
// The table is process-wide by nature (a signal handler has no context); a
// slot holds one heap copy of the path, published with an atomic exchange.
// When more temporaries are live than there are slots, the extra ones are
// simply not cleaned on a signal (registration never fails a writer).
#pragma once

#include <string>

namespace mmar {

class TemporaryGuard {
 public:
  TemporaryGuard() = default;
  // `directory`: remove its entries (not recursively) and then it.
  TemporaryGuard(const std::string& path, bool directory);
  TemporaryGuard(TemporaryGuard&& other) noexcept : slot_(other.slot_) { other.slot_ = -1; }
  TemporaryGuard& operator=(TemporaryGuard&& other) noexcept;
  TemporaryGuard(const TemporaryGuard&) = delete;
  TemporaryGuard& operator=(const TemporaryGuard&) = delete;
  ~TemporaryGuard() { release(); }
  // The path no longer needs removing on a signal (renamed into place, or
  // already removed).
  void release();

 private:
  int slot_ = -1;
};

// Removes every registered temporary. Async-signal-safe.
void remove_temporaries_now();

}  // namespace mmar
