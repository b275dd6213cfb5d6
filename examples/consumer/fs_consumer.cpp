// SPDX-License-Identifier: BSD-2-Clause
// A program against the filesystem component (mmar::fs with mmar::mmar, or
// mmar::fs_static with mmar::mmar_static): an Archive made by the core is
// handed to the filesystem, which must refuse a mount point that does not
// exist with an error (never mount, never crash): both libraries share one
// copy of the core.
//   fs_consumer DIR
#include <mmar/archive.h>
#include <mmar/fs.h>

#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::string path = std::string(argv[1]) + "/fs.mmar";
  mmar::Writer w;
  std::vector<std::byte> b = {std::byte{0x78}};
  if (!w.add_bytes("x", b).ok() || !w.write(path).ok()) return 1;
  auto a = mmar::Archive::open(path);
  if (!a.ok()) return 1;
  auto r = mmar::fs::mount_archive(std::move(*a), std::string(argv[1]) + "/no-such-dir", {});
  if (r.ok()) {
    std::fprintf(stderr, "fs_consumer: mounted on a directory that does not exist\n");
    return 1;
  }
  std::printf("fs_consumer: refused as expected: %s\n", r.error().message().c_str());
  return 0;
}
