// SPDX-License-Identifier: BSD-2-Clause
#include "support/cleanup.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace mmar {

namespace {

constexpr int kSlots = 64;
// A path with a leading byte: 'f' (file) or 'd' (directory).
std::atomic<char*> g_slots[kSlots];
static_assert(std::atomic<char*>::is_always_lock_free, "the signal handler reads the slots");

// Removes the entries of directory `path` (one level: a spool holds only
// files), without allocating: getdents64 into a stack buffer.
void empty_directory(const char* path) {
  const int dfd = ::open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) return;
  alignas(8) char buf[4096];
  for (;;) {
    const long n = ::syscall(SYS_getdents64, dfd, buf, sizeof buf);
    if (n <= 0) break;
    for (long at = 0; at < n;) {
      // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name
      unsigned short reclen;
      std::memcpy(&reclen, buf + at + 16, sizeof reclen);
      if (reclen == 0 || at + reclen > n) break;
      const char* name = buf + at + 19;
      if (std::strcmp(name, ".") != 0 && std::strcmp(name, "..") != 0) ::unlinkat(dfd, name, 0);
      at += reclen;
    }
  }
  ::close(dfd);
}

}  // namespace

TemporaryGuard::TemporaryGuard(const std::string& path, bool directory) {
  char* copy = static_cast<char*>(std::malloc(path.size() + 2));
  if (copy == nullptr) return;
  copy[0] = directory ? 'd' : 'f';
  std::memcpy(copy + 1, path.c_str(), path.size() + 1);
  for (int i = 0; i < kSlots; ++i) {
    char* expected = nullptr;
    if (g_slots[i].compare_exchange_strong(expected, copy)) {
      slot_ = i;
      return;
    }
  }
  std::free(copy);  // table full: this one is not cleaned on a signal
}

TemporaryGuard& TemporaryGuard::operator=(TemporaryGuard&& other) noexcept {
  if (this != &other) {
    release();
    slot_ = other.slot_;
    other.slot_ = -1;
  }
  return *this;
}

void TemporaryGuard::release() {
  if (slot_ < 0) return;
  std::free(g_slots[slot_].exchange(nullptr));
  slot_ = -1;
}

void remove_temporaries_now() {
  for (auto& slot : g_slots) {
    const char* p = slot.load();
    if (p == nullptr) continue;
    if (p[0] == 'd') {
      empty_directory(p + 1);
      ::rmdir(p + 1);
    } else {
      ::unlink(p + 1);
    }
  }
}

}  // namespace mmar
