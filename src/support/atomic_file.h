// SPDX-License-Identifier: BSD-2-Clause
// Write-then-rename: a temporary file beside the target that becomes the
// target only on commit(). Destroyed uncommitted, it is removed, so an
// interrupted write never damages an existing file at the target path.
#pragma once

#include <string>

#include "mmar/result.h"
#include "support/cleanup.h"
#include "support/fd.h"

namespace mmar {

class AtomicFile {
 public:
  // Creates "<dir>/.<base>.tmp-XXXXXX" with mode 0644 (less umask).
  static Result<AtomicFile> create(const std::string& path);
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  ~AtomicFile();

  int fd() const { return fd_.get(); }
  // Give the temporary the mode and (where permitted) owner of the file
  // open at `like`: a rewrite keeps who may read and write the archive.
  Result<void> copy_owner_and_mode(int like);
  const std::string& temp_path() const { return temp_; }
  // fsync the data, rename over the target, fsync the directory.
  Result<void> commit();
  // The same, handing back the fd (still open on what is now the target,
  // with any lock taken on it).
  Result<UniqueFd> commit_keep_fd();

 private:
  AtomicFile(std::string path, std::string temp, UniqueFd fd)
      : path_(std::move(path)), temp_(std::move(temp)), fd_(std::move(fd)), on_signal_(temp_, false) {}
  std::string path_;
  std::string temp_;
  UniqueFd fd_;
  TemporaryGuard on_signal_;  // removes temp_ if a signal ends the process first
  bool committed_ = false;
};

}  // namespace mmar
