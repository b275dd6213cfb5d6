// SPDX-License-Identifier: BSD-2-Clause
// libarchive loaded on first use: see libarchive_dl.h.
#define MMAR_LIBARCHIVE_NO_REDIRECT
#include "archive/libarchive_dl.h"

#include <dlfcn.h>

#include <mutex>
#include <string>

namespace mmar {

const LibArchive* g_libarchive = nullptr;

Result<void> libarchive_load() {
  static std::once_flag once;
  static LibArchive lib;
  static std::string failure;
  std::call_once(once, [] {
    // The SONAME of Debian's libarchive13 (ARCHIVE_VERSION_NUMBER 3.x).
    void* h = ::dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      const char* e = ::dlerror();
      failure = std::string("libarchive.so.13 could not be loaded (") + (e ? e : "?") +
                "): reading and writing tar, zip, cpio and ISO archives needs it (Debian: libarchive13)";
      return;
    }
    bool complete = true;
#define MMAR_LA_RESOLVE(name)                                                    \
  lib.name = reinterpret_cast<decltype(lib.name)>(::dlsym(h, #name));            \
  if (lib.name == nullptr && complete) {                                         \
    complete = false;                                                            \
    failure = "libarchive.so.13 has no " #name ": a libarchive older than 3.6?"; \
  }
    MMAR_LIBARCHIVE_FUNCTIONS(MMAR_LA_RESOLVE)
#undef MMAR_LA_RESOLVE
    if (complete) g_libarchive = &lib;  // the handle stays open for the process
  });
  if (g_libarchive == nullptr) return Error(Errc::unsupported, failure);
  return success();
}

}  // namespace mmar
