// SPDX-License-Identifier: BSD-2-Clause
#include "support/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace mmar {

namespace {

std::string dir_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

Result<AtomicFile> AtomicFile::create(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.empty()) return Error(Errc::invalid_argument, path + ": not a file name");
  std::string temp = dir + "." + base + ".tmp-XXXXXX";
  int fd = mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) return sys_error("create " + temp, errno);
  // mkostemp creates 0600; archives are ordinary files.
  mode_t mask = umask(0);
  umask(mask);
  fchmod(fd, 0666 & ~mask);
  return AtomicFile(path, std::move(temp), UniqueFd(fd));
}

Result<void> AtomicFile::copy_owner_and_mode(int like) {
  struct stat st {};
  if (fstat(like, &st) != 0) return sys_error("stat " + path_, errno);
  // Owner first: chown clears setuid bits, the mode sets them back.
  if (fchown(fd_.get(), st.st_uid, st.st_gid) != 0 && errno != EPERM) return sys_error("chown " + temp_, errno);
  if (fchmod(fd_.get(), st.st_mode & 07777) != 0) return sys_error("chmod " + temp_, errno);
  return success();
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)),
      temp_(std::move(other.temp_)),
      fd_(std::move(other.fd_)),
      on_signal_(std::move(other.on_signal_)),
      committed_(other.committed_) {
  other.committed_ = true;  // the moved-from object must not unlink
}

AtomicFile::~AtomicFile() {
  if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
}

Result<void> AtomicFile::commit() {
  MMAR_ASSIGN(UniqueFd fd, commit_keep_fd());
  return success();
}

Result<UniqueFd> AtomicFile::commit_keep_fd() {
  if (fsync(fd_.get()) != 0) return sys_error("fsync " + temp_, errno);
  if (::rename(temp_.c_str(), path_.c_str()) != 0) return sys_error("rename to " + path_, errno);
  committed_ = true;
  on_signal_.release();
  UniqueFd kept = std::move(fd_);
  int dfd = ::open(dir_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    ::close(dfd);
  }
  return kept;
}

}  // namespace mmar
