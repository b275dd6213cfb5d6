// SPDX-License-Identifier: BSD-2-Clause
/* 4 KiB reads at random 4 KiB-aligned offsets of one file (a fixed seed, so
 * every filesystem gets the same offsets); prints reads/s.
 *   random_read FILE COUNT */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  int fd = open(argv[1], O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < 4096) return 1;
  long count = atol(argv[2]);
  unsigned long long blocks = (unsigned long long)st.st_size / 4096, x = 88172645463325252ULL;
  char buf[4096];
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < count; ++i) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17; /* xorshift64 */
    if (pread(fd, buf, sizeof buf, (off_t)((x % blocks) * 4096)) != (ssize_t)sizeof buf) return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
  printf("%.0f reads/s (%ld reads in %.3f s)\n", (double)count / s, count, s);
  return 0;
}
