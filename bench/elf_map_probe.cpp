// SPDX-License-Identifier: BSD-2-Clause
// Mapping an ELF object: mmar's map_object against what ld.so does for the
// same object (dlmopen into a new namespace, so libc.so.6 is really loaded
// again rather than found already open).
//   elf_map_probe time FILE [ARCHIVE MEMBER]   mean µs per map+unmap, and per dlmopen+dlclose
//   elf_map_probe once map|member|dlmopen FILE [ARCHIVE MEMBER]
// `once` brackets the one operation between two getppid() calls, so
// `strace -f` of it shows exactly the system calls the operation made.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "mmar/elf_map.h"

namespace {

void die(const std::string& m) {
  std::fprintf(stderr, "elf_map_probe: %s\n", m.c_str());
  std::exit(1);
}

void marker() { syscall(SYS_getppid); }

template <class F>
double mean_us(int n, F f) {
  for (int i = 0; i < 20; ++i) f();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) f();
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / n;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) die("usage: time FILE [ARCHIVE MEMBER] | once map|member|dlmopen FILE [ARCHIVE MEMBER]");
  const std::string mode = argv[1];
  if (mode == "time") {
    const char* file = argv[2];
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die(std::string(file) + ": " + std::strerror(errno));
    double map_file = mean_us(2000, [&] {
      auto m = mmar::map_object(fd, 0, 0, mmar::kMapInterpret, 0, file);
      if (!m.ok()) die(m.error().message());
    });
    std::printf("map_object(%s, interpret)            %8.1f us\n", file, map_file);
    if (argc >= 5) {
      auto a = mmar::Archive::open(argv[3]);
      if (!a.ok()) die(a.error().message());
      auto mem = a->find(argv[4]);
      if (!mem.ok()) die(mem.error().message());
      double map_member = mean_us(2000, [&] {
        auto m = mmar::map_member(*a, *mem, mmar::kMapInterpret);
        if (!m.ok()) die(m.error().message());
      });
      std::printf("map_member(%s:%s, interpret)   %8.1f us\n", argv[3], argv[4], map_member);
    }
    double dl = mean_us(300, [&] {
      void* h = dlmopen(LM_ID_NEWLM, file, RTLD_NOW | RTLD_LOCAL);
      if (h == nullptr) die(dlerror());
      dlclose(h);
    });
    std::printf("dlmopen(LM_ID_NEWLM, %s) + dlclose   %8.1f us\n", file, dl);
    return 0;
  }
  if (mode == "once" && argc >= 4) {
    const std::string what = argv[2];
    const char* file = argv[3];
    if (what == "map") {
      int fd = open(file, O_RDONLY | O_CLOEXEC);
      marker();
      auto m = mmar::map_object(fd, 0, 0, mmar::kMapInterpret, 0, file);
      marker();
      if (!m.ok()) die(m.error().message());
      m->release();
      return 0;
    }
    if (what == "member" && argc >= 6) {
      auto a = mmar::Archive::open(argv[4]);
      if (!a.ok()) die(a.error().message());
      auto mem = a->find(argv[5]);
      if (!mem.ok()) die(mem.error().message());
      marker();
      auto m = mmar::map_member(*a, *mem, mmar::kMapInterpret);
      marker();
      if (!m.ok()) die(m.error().message());
      m->release();
      return 0;
    }
    if (what == "dlmopen") {
      marker();
      void* h = dlmopen(LM_ID_NEWLM, file, RTLD_NOW | RTLD_LOCAL);
      marker();
      if (h == nullptr) die(dlerror());
      return 0;
    }
  }
  die("bad arguments");
}
