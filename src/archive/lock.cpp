// SPDX-License-Identifier: BSD-2-Clause
// The one-writer rule (docs/FORMAT.md, "Writers"): an exclusive OFD lock
// (fcntl F_OFD_SETLK) on the archive file, held by its open file description
// for as long as the writer writes. OFD locks, unlike classic POSIX locks, are
// not dropped when the process closes some other fd of the same file, and
// two writers in one process conflict as two processes do.
//
// The kernel reports no owner for OFD locks (l_pid is -1), so the holder also
// locks one byte at kPidBase + its pid: F_OFD_GETLK over that range tells a
// refused writer who holds the archive.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "mmar/archive.h"
#include "support/fd.h"

namespace mmar {

namespace {

constexpr off_t kPidBase = off_t{1} << 62;
constexpr off_t kPidRange = off_t{1} << 32;

int ofd_lock(int fd, short type, off_t start, off_t len) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;
  return fcntl(fd, F_OFD_SETLK, &fl);
}

// The pid recorded by the writer holding `fd`'s file, or 0 if unknown.
long holder_pid(int fd) {
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = kPidBase;
  fl.l_len = kPidRange;
  if (fcntl(fd, F_OFD_GETLK, &fl) != 0 || fl.l_type == F_UNLCK) return 0;
  return static_cast<long>(fl.l_start - kPidBase);
}

bool same_file(const struct stat& a, const struct stat& b) { return a.st_dev == b.st_dev && a.st_ino == b.st_ino; }

}  // namespace

Result<void> WriterLock::lock_fd(int fd, const std::string& path) {
  // Byte 0 is the writer lock (a zero length would cover the pid bytes too).
  if (ofd_lock(fd, F_WRLCK, 0, 1) != 0) {
    if (errno != EAGAIN && errno != EACCES) return sys_error("lock " + path, errno);
    const long pid = holder_pid(fd);
    return Error(Errc::busy,
                 path + ": in use by another writer" + (pid > 0 ? " (pid " + std::to_string(pid) + ")" : ""), 0,
                 EBUSY);
  }
  ofd_lock(fd, F_WRLCK, kPidBase + getpid(), 1);  // best effort: only names the holder
  return success();
}

void WriterLock::refresh_pid() const {
  // The lock on byte 0 belongs to the open file description, which a fork
  // shares; only the byte naming the holder moves.
  ofd_lock(fd_.get(), F_UNLCK, kPidBase, kPidRange);
  ofd_lock(fd_.get(), F_WRLCK, kPidBase + getpid(), 1);
}

Result<WriterLock> WriterLock::acquire(const std::string& path) {
  // Open, lock, and check the name still names what we locked: a writer that
  // replaced the file (compact renames a new one into place) between our
  // open and our lock would otherwise leave us writing to a file nobody sees.
  for (int attempt = 0; attempt < 8; ++attempt) {
    int raw = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (raw < 0) return sys_error(path, errno);
    UniqueFd fd(raw);
    struct stat st {};
    if (fstat(fd.get(), &st) != 0) return sys_error("stat " + path, errno);
    if (!S_ISREG(st.st_mode)) return Error(Errc::invalid_argument, path + ": not a regular file");
    MMAR_TRY(lock_fd(fd.get(), path));
    WriterLock lock(std::move(fd), path);
    auto named = lock.still_named();
    if (named.ok()) return lock;
  }
  return Error(Errc::busy, path + ": replaced repeatedly while being locked", 0, EBUSY);
}

Result<void> WriterLock::still_named() const {
  struct stat mine {}, named {};
  if (fstat(fd_.get(), &mine) != 0) return sys_error("stat " + path_, errno);
  if (stat(path_.c_str(), &named) != 0) {
    if (errno == ENOENT) return Error(Errc::io, path_ + ": the archive was removed", 0, EIO);
    return sys_error("stat " + path_, errno);
  }
  if (!same_file(mine, named) || mine.st_nlink == 0) {
    return Error(Errc::io, path_ + ": the archive was replaced by another file", 0, EIO);
  }
  return success();
}

}  // namespace mmar
