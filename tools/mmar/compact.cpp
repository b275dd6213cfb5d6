// SPDX-License-Identifier: BSD-2-Clause
// mmar compact: rewrite an archive with only its current generation's data.
#include "cli.h"
#include "verbs.h"

namespace mmar::cli {

namespace {

const Verb kCompact{"compact",
                    "[-f] ARCHIVE [--compress zstd|xz|none] [--level N] [--threshold BYTES] [--frame-size BYTES]\n"
                    "                    [--pack-size BYTES] [--index auto|plain|compressed]",
                    "Rewrite ARCHIVE (atomically) keeping only what its current generation uses: the data that\n"
                    "updates through a writable mount superseded is dropped. Stored bytes are copied as they\n"
                    "are (frames are not recompressed), the index as --index says (default: as `mmar create`\n"
                    "would); --compress, --level, --threshold, --frame-size or --pack-size recompress every\n"
                    "member as `mmar create` would.",
                    {
                        {"file", 'f', true, "ARCHIVE", "the archive"},
                        {"compress", 0, true, "CODEC", "zstd (default), xz or none"},
                        {"level", 0, true, "N", "compression level"},
                        {"threshold", 0, true, "BYTES", "compress members larger than this (default 16)"},
                        {"frame-size", 0, true, "BYTES", "frame size when recompressing (default 128K)"},
                        {"pack-size", 0, true, "BYTES", "pack size of small members when recompressing (default twice the\n"
                                                        "                               frame size)"},
                        {"index", 0, true, "HOW", "store the index auto, plain or compressed (as create)"},
                    }};

}  // namespace

int run_compact(int argc, char** argv) {
  Parsed p = parse(kCompact, argc, argv);
  std::string path = archive_path(kCompact, p);
  no_more_arguments(kCompact, p);
  WriteOptions o;
  o.alignment = 0;
  if (p.has("compress")) {
    auto c = parse_codec(p.get("compress"));
    if (!c) return usage_error("compact", "unknown codec '" + p.get("compress") + "'");
    o.codec = *c;
  }
  if (p.has("level")) {
    auto n = parse_size(p.get("level"));
    if (!n || *n > 22) return usage_error("compact", "bad --level");
    o.level = static_cast<int>(*n);
  }
  if (p.has("index")) {
    auto v = parse_index_storage(p.get("index"));
    if (!v) return usage_error("compact", "--index must be auto, plain or compressed");
    o.index = *v;
  }
  if (p.has("frame-size")) {
    auto v = parse_frame_bytes(p.get("frame-size"));
    if (!v) return usage_error("compact", "--frame-size must be a power of two from 4K to 4M");
    o.frame_size = *v;
  }
  if (p.has("pack-size")) {
    auto v = parse_frame_bytes(p.get("pack-size"));
    if (!v) return usage_error("compact", "--pack-size must be a power of two from 4K to 4M");
    o.pack_size = *v;
  }
  if (p.has("threshold")) {
    auto n = parse_size(p.get("threshold"));
    if (!n) return usage_error("compact", "bad --threshold");
    o.threshold = *n;
  }
  auto before = Archive::open(path);
  if (!before.ok()) return fail(before.error());
  const uint64_t old_size = before->source().size();
  if (!p.has("compress") && !p.has("level") && !p.has("threshold") && !p.has("frame-size") &&
      !p.has("pack-size")) {
    // Copy what the current generation uses, as stored, under the lock
    // (nobody commits in between). The updater reads the copy back before
    // it replaces the archive, so damaged data is refused ("not
    // compacted: ...") rather than carried along. Damage in what compaction
    // rewrites anyway (the other superblock, an old fence) does not stop it.
    auto u = ArchiveUpdater::open(path, {.compact_ratio = 0});
    if (!u.ok()) return fail(u.error());
    Progress progress("compact");
    auto c = u->compact([&](uint64_t done, uint64_t total) { progress.update(done, total); }, o.index);
    progress.finish();
    if (!c.ok()) return fail(c.error());
    std::printf("%s: %u members, %llu -> %llu bytes\n", path.c_str(), u->size(),
                static_cast<unsigned long long>(old_size), static_cast<unsigned long long>(u->file_size()));
    return kExitOk;
  }
  Progress progress("compact");
  o.progress = [&](uint64_t done, uint64_t total) { progress.update(done, total); };
  auto stats = compact_archive(path, o);
  progress.finish();
  if (!stats.ok()) return fail(stats.error());
  std::printf("%s: %u members, %llu -> %llu bytes\n", path.c_str(), stats->members,
              static_cast<unsigned long long>(old_size), static_cast<unsigned long long>(stats->archive_bytes));
  return kExitOk;
}

}  // namespace mmar::cli
