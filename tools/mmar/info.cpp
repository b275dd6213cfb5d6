// SPDX-License-Identifier: BSD-2-Clause
// mmar info: what an archive is and what it holds, in aggregate.
#include <cinttypes>

#include <unordered_set>

#include "cli.h"
#include "json.h"
#include "verbs.h"

namespace mmar::cli {

namespace {

const Verb kInfo{
    "info",
    "[-f] ARCHIVE [--json]",
    "Describe ARCHIVE: format, member counts by type, codec and kind, sizes, alignment.",
    {
        {"file", 'f', true, "ARCHIVE", "archive to read ('-' for standard input)"},
        {"json", 0, false, "", "print JSON"},
        {"pread", 0, false, "", "read with pread instead of mmap"},
        {"plain", 0, false, "", "open any file as a one-member archive (else only ELF, BTF, CTF objects)"},
        {"lookup", 0, true, "NAME", "also time looking up and reading member NAME (repeatable: comma-separated)"},
    }};

}  // namespace

int run_info(int argc, char** argv) {
  Parsed p = parse(kInfo, argc, argv);
  std::string path = archive_path(kInfo, p);
  no_more_arguments(kInfo, p);
  int64_t t0 = now_ns();
  auto a = open_archive(path, p);
  int64_t open_ns = now_ns() - t0;
  if (!a.ok()) return fail(a.error());
  uint64_t files = 0, dirs = 0, links = 0, specials = 0, size = 0, stored = 0;
  uint64_t by_codec[4] = {}, by_kind[5] = {};
  // Stored bytes counted once per stored range: members packed into one
  // frame stream, hard links and identical files share theirs.
  std::unordered_set<uint64_t> seen, streams;
  uint64_t framed = 0, extents = 0;
  auto r = a->for_each([&](const Member& m) -> Result<void> {
    if (m.is_dir()) {
      ++dirs;
    } else if (m.is_symlink()) {
      ++links;
    } else if (!m.has_data()) {
      ++specials;  // devices, FIFOs, sockets
    } else {
      ++files;
      ++by_codec[static_cast<int>(m.codec)];
      if (m.codec == Codec::extents) ++extents;
      if (m.framed) {
        ++framed;
        streams.insert(m.data_offset);
      }
      ++by_kind[static_cast<int>(m.kind)];
    }
    size += m.size;
    if (m.stored_size != 0 && seen.insert(m.data_offset).second) stored += m.stored_size;
    return success();
  });
  if (!r.ok()) return fail(r.error());
  const uint64_t file_size = a->source().size();
  if (p.has("json")) {
    Json j;
    j.object().field("archive", path).field("format", format_name(a->format())).field("file_size", file_size);
    j.field("members", a->size()).field("files", files).field("directories", dirs).field("symlinks", links);
    j.field("special", specials).field("size", size).field("stored_size", stored).field("alignment", a->alignment());
    j.field("generation", a->generation()).field("mapped", a->source().mapped()).field("open_ns", open_ns);
    j.key("codecs").object().field("none", by_codec[0]).field("zstd", by_codec[1]).field("xz", by_codec[2]).end();
    j.key("kinds").object().field("data", by_kind[0]).field("elf", by_kind[1]).field("btf", by_kind[2]);
    j.field("ctf", by_kind[3]).end();
    j.end().newline();
    return j.finish();
  }
  std::printf("archive:     %s\n", path.c_str());
  std::printf("format:      %s%s\n", format_name(a->format()), a->format() == Format::mmar ? " v1" : "");
  if (a->format() == Format::ctf) {
    std::printf("data model:  %s\n", a->ctf_model() == 1 ? "ILP32" : a->ctf_model() == 2 ? "LP64" : "unknown");
  }
  std::printf("file size:   %" PRIu64 " (%s)\n", file_size, human_size(file_size).c_str());
  std::printf("members:     %u (%" PRIu64 " files, %" PRIu64 " directories, %" PRIu64 " symlinks", a->size(), files,
              dirs, links);
  if (specials != 0) std::printf(", %" PRIu64 " devices, FIFOs or sockets", specials);
  std::printf(")\n");
  std::printf("data:        %s original, %s stored", human_size(size).c_str(), human_size(stored).c_str());
  if (size != 0) std::printf(" (%.1f%%)", 100.0 * static_cast<double>(stored) / static_cast<double>(size));
  std::printf("\n");
  std::printf("codecs:      none %" PRIu64 ", zstd %" PRIu64 ", xz %" PRIu64 ", extent maps %" PRIu64 "\n",
              by_codec[0], by_codec[1], by_codec[2], extents);
  std::printf("framed:      %" PRIu64 " members in %zu frame streams\n", framed, streams.size());
  std::printf("kinds:       data %" PRIu64 ", elf %" PRIu64 ", btf %" PRIu64 ", ctf %" PRIu64 "\n", by_kind[0],
              by_kind[1], by_kind[2], by_kind[3]);
  if (a->format() == Format::mmar) {
    std::printf("alignment:   %" PRIu64 "\n", a->alignment());
    std::printf("generation:  %" PRIu64 "\n", a->generation());
  }
  std::printf("access:      %s\n", a->source().mapped() ? "mmap" : a->source().contiguous() ? "memory" : "pread");
  std::printf("open time:   %.1f us\n", static_cast<double>(open_ns) / 1e3);
  std::string lookups = p.get("lookup");
  int rc = kExitOk;
  for (size_t start = 0; !lookups.empty() && start <= lookups.size();) {
    size_t comma = lookups.find(',', start);
    if (comma == std::string::npos) comma = lookups.size();
    std::string name = lookups.substr(start, comma - start);
    start = comma + 1;
    int64_t f0 = now_ns();
    auto m = a->find(name);
    int64_t f1 = now_ns();
    if (!m.ok()) {
      rc = fail(m.error());
      continue;
    }
    auto bytes = a->read(*m);
    int64_t f2 = now_ns();
    if (!bytes.ok()) {
      rc = fail(bytes.error());
      continue;
    }
    std::printf("lookup:      %s: find %.2f us, read %.1f us (%s, %s)\n", name.c_str(),
                static_cast<double>(f1 - f0) / 1e3, static_cast<double>(f2 - f1) / 1e3, human_size(m->size).c_str(),
                m->codec == Codec::none ? "zero-copy view" : codec_name(m->codec));
  }
  return rc;
}

}  // namespace mmar::cli
