// SPDX-License-Identifier: BSD-2-Clause
// Runs a fuzz target over files given on the command line (a corpus
// directory or single inputs) without libFuzzer: the "reproduce" mode, and
// how the seed corpus runs as a regression test in every ctest build.
#include <dirent.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

static int run_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return 1;
  }
  std::vector<char> buf((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(buf.data()), buf.size());
  return 0;
}

int main(int argc, char** argv) {
  int files = 0;
  for (int i = 1; i < argc; ++i) {
    struct stat st {};
    if (stat(argv[i], &st) != 0) {
      std::fprintf(stderr, "missing %s\n", argv[i]);
      return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
      if (run_file(argv[i]) != 0) return 1;
      ++files;
      continue;
    }
    DIR* d = opendir(argv[i]);
    while (auto* e = readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == ".." || name == "README.md") continue;
      if (run_file(std::string(argv[i]) + "/" + name) != 0) return 1;
      ++files;
    }
    closedir(d);
  }
  std::printf("ran %d inputs\n", files);
  return files > 0 ? 0 : 1;
}
