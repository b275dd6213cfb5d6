// SPDX-License-Identifier: BSD-2-Clause
// Test-only helpers: scratch directories, random trees, archive byte patching.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "archive/format.h"
#include "mmar/archive.h"

// A test that drives the mmar CLI skips itself in a build without one
// (MMAR_CORE_ONLY, the cross build under qemu-user: MMAR_BIN is "").
#define MMAR_SKIP_WITHOUT_CLI() \
  if (std::string_view(MMAR_BIN).empty()) GTEST_SKIP() << "no mmar CLI in this build (MMAR_CORE_ONLY)"

namespace mmar::test {

// A fresh directory under $TMPDIR, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

std::vector<std::byte> read_file(const std::string& path);
void write_file(const std::string& path, const std::vector<std::byte>& data, uint32_t mode = 0644);
std::vector<std::byte> to_bytes(std::string_view s);
// `n` bytes of words drawn by a seeded generator: text that compresses, but
// not to nothing (every 4 KiB frame of it is a real compressed frame).
std::vector<std::byte> text_bytes(size_t n, uint32_t seed);

struct TreeSpec {
  uint32_t seed = 1;
  int files = 120;
  int max_depth = 10;
  uint64_t max_size = 256 << 10;  // typical file sizes stay below this
  uint64_t big_size = 0;          // if non-zero, one extra file of this size
  bool symlinks = true;
};

// Build a random tree of files (random, text-like and zero contents, sizes
// from 0 up), directories (deep paths, odd names) and symlinks below `root`.
// Returns the relative names of everything created.
std::vector<std::string> make_random_tree(const std::string& root, const TreeSpec& spec);

// Write an archive of `dir` and return its bytes.
std::vector<std::byte> archive_tree(const std::string& dir, const std::string& out, const WriteOptions& o);

// Recompute the index checksum and both superblock checksums after a test
// patched the bytes, so the reader gets past the checksums to what is tested.
void reseal(std::vector<std::byte>& archive);
// The index of `archive` as a plain index holds it (member table + names),
// whether stored plain or compressed (inflated, offsets unpredicted).
std::vector<std::byte> inflated_index(std::span<const std::byte> archive);
// Store a compressed index (docs/FORMAT.md "Compressed index") plain, so
// tests can patch entries and names in place (the index is last in files
// the writer makes). Does nothing to a plain index.
void plain_index(std::vector<std::byte>& archive);
// Patch entry `i` with `fn`, then reseal.
void patch_entry(std::vector<std::byte>& archive, uint32_t i, const std::function<void(format::Entry&)>& fn);
// Patch superblock slot 0 (and 1) with `fn`, then reseal.
void patch_superblock(std::vector<std::byte>& archive, const std::function<void(format::Superblock&)>& fn);

// Compare two directory trees: names, types, modes, sizes, contents,
// symlink targets, file mtimes. Returns "" when equal, else the difference.
std::string diff_trees(const std::string& a, const std::string& b);

// Run a shell command; returns its exit status and captures stdout.
int run(const std::string& command, std::string* out = nullptr);

// What a child process did: its exit status (128 + signal if killed), what
// it wrote, and the peak resident set size of the program it ran (VmHWM at
// exit, KiB; see run_child).
struct ChildRun {
  int status = -1;
  std::string out;
  std::string err;
  long max_rss_kib = 0;
};

// Run argv[0] (a path) with argv, without a shell. Standard input is
// /dev/null, or a pipe that `feed` writes to from another thread (SIGPIPE
// ignored; feed sees EPIPE when the child stops reading), closed after it
// returns. The child is traced (ptrace) to read its peak RSS at exit.
ChildRun run_child(const std::vector<std::string>& argv, const std::function<void(int fd)>& feed = {});

// A bound for "memory independent of the input": the peak RSS of `program
// --version` (the binary's own cost: a few MiB in a release build, about
// 64 MiB under ASan's shadow and allocator) plus `extra_kib`. Measured once
// per program.
long rss_limit_kib(const std::string& program, long extra_kib);

}  // namespace mmar::test
