// SPDX-License-Identifier: BSD-2-Clause
/* Whole-file reads of files picked at random from a list (a fixed seed, so
 * every filesystem reads the same files in the same order); prints files/s.
 *   random_files ROOT LIST COUNT
 * LIST: one path per line, relative to ROOT. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  FILE* list = fopen(argv[2], "r");
  if (!list) return 1;
  size_t n = 0, cap = 0;
  char** names = NULL;
  char line[4096];
  while (fgets(line, sizeof line, list)) {
    line[strcspn(line, "\n")] = 0;
    if (n == cap) {
      cap = cap ? 2 * cap : 1024;
      names = realloc(names, cap * sizeof *names);
      if (!names) return 1;
    }
    names[n++] = strdup(line);
  }
  fclose(list);
  if (n == 0) return 1;
  long count = atol(argv[3]);
  unsigned long long x = 88172645463325252ULL, bytes = 0;
  static char buf[1 << 16];
  char path[8192];
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (long i = 0; i < count; ++i) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17; /* xorshift64 */
    snprintf(path, sizeof path, "%s/%s", argv[1], names[x % n]);
    int fd = open(path, O_RDONLY);
    if (fd < 0) { perror(path); return 1; }
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0) bytes += (unsigned long long)r;
    close(fd);
    if (r < 0) return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
  printf("%.0f files/s (%ld files, %llu bytes in %.3f s)\n", (double)count / s, count, bytes, s);
  return 0;
}
