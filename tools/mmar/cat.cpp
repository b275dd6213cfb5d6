// SPDX-License-Identifier: BSD-2-Clause
// mmar cat: members' bytes to standard output.
#include <unistd.h>

#include <cerrno>

#include "cli.h"
#include "verbs.h"

namespace mmar::cli {

namespace {

const Verb kCat{"cat",
                "[-f] ARCHIVE NAME...",
                "Write the contents of each member NAME to standard output, in order, streamed with pread:\n"
                "memory stays small whatever the member's size. Every frame of a compressed member is\n"
                "checked before its bytes are written, and every member's XXH3 when its end is reached:\n"
                "a mismatch exits 1 (what was written before stands, as with `zstd -dc`).",
                {
                    {"file", 'f', true, "ARCHIVE", "archive to read ('-' for standard input)"},
                    {"pread", 0, false, "", "read with pread instead of mmap"},
                    {"plain", 0, false, "", "open any file as a one-member archive (else only ELF, BTF, CTF objects)"},
                    {"no-verify", 0, false, "", "skip the XXH3 check of each member (salvage a damaged archive)"},
                }};

}  // namespace

int run_cat(int argc, char** argv) {
  Parsed p = parse(kCat, argc, argv);
  std::string path = archive_path(kCat, p);
  if (p.positional.empty()) return usage_error("cat", "no member NAME given");
  auto a = open_archive(path, p, /*stream=*/true);
  if (!a.ok()) return fail(a.error());
  for (const auto& name : p.positional) {
    auto m = a->find(name);
    if (!m.ok()) return fail(m.error());
    if (m->is_dir()) return fail(Error(Errc::invalid_argument, path + ": '" + name + "' is a directory"));
    if (m->codec == Codec::none && a->source().contiguous()) {
      // A view of the mapping, written as it is.
      auto bytes = a->read(*m);
      if (!bytes.ok()) return fail(bytes.error());
      if (!write_all(1, bytes->data(), bytes->size())) return fail(sys_error("write to standard output", errno));
      continue;
    }
    auto done = stream_member(*a, *m, [](const std::byte* data, size_t n) -> Result<void> {
      if (!write_all(1, data, n)) return sys_error("write to standard output", errno);
      return success();
    });
    if (!done.ok()) return fail(done.error());
  }
  return kExitOk;
}

}  // namespace mmar::cli
