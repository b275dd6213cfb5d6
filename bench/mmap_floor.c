// SPDX-License-Identifier: BSD-2-Clause
/* The floor under any mmap-based open on this machine: open + fstat + mmap +
 * touch two pages + munmap + close of one file, against pread of 8 KiB.
 *   build/bench/bench/mmap_floor FILE [ITERATIONS]  */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: mmap_floor FILE [ITERATIONS]\n");
    return 2;
  }
  const int n = argc > 2 ? atoi(argv[2]) : 3000;
  volatile char sink = 0;
  for (int mode = 0; mode < 2; ++mode) {
    double t0 = now_us();
    for (int i = 0; i < n; ++i) {
      int fd = open(argv[1], O_RDONLY);
      if (fd < 0) return 1;
      struct stat st;
      fstat(fd, &st);
      if (mode == 0 && st.st_size > 4 * 4096) {
        char* p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) return 1;
        sink += p[0];
        sink += p[3 * 4096];
        munmap(p, (size_t)st.st_size);
      } else {
        char buf[8192];
        if (pread(fd, buf, sizeof buf, 0) > 0) sink += buf[0];
      }
      close(fd);
    }
    printf("%s: %.1f us/iteration (%d iterations)\n", mode == 0 ? "open+mmap+2 faults+munmap" : "open+pread 8K",
           (now_us() - t0) / n, n);
  }
  return 0;
}
