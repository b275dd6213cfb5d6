// SPDX-License-Identifier: BSD-2-Clause
// Whole reads and writes at an offset, retrying short transfers and EINTR.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>

#include "mmar/result.h"

namespace mmar {

// False on EOF or an error (errno says which; 0 at EOF).
inline bool pread_full(int fd, void* out, size_t size, uint64_t offset) {
  auto* p = static_cast<char*>(out);
  while (size > 0) {
    ssize_t n = ::pread(fd, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = 0;
      return false;
    }
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

inline Result<void> pwrite_full(int fd, const void* data, size_t size, uint64_t offset, const std::string& what) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::pwrite(fd, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return sys_error("write " + what, n < 0 ? errno : EIO);
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return success();
}

// Nanoseconds since the epoch as a timespec (tv_nsec in [0, 1e9) also for
// times before 1970).
inline timespec to_timespec(int64_t ns) {
  timespec t{};
  t.tv_sec = ns / 1000000000;
  t.tv_nsec = ns % 1000000000;
  if (t.tv_nsec < 0) {
    t.tv_nsec += 1000000000;
    t.tv_sec -= 1;
  }
  return t;
}

}  // namespace mmar
