// SPDX-License-Identifier: BSD-2-Clause
// libFuzzer target: the archive reader (mmar, CTF archive, plain) on
// arbitrary bytes. Invariants, not just "no crash":
//  - every member handed out reads back as exactly `size` bytes, or errors,
//    and a range of it reads as the same bytes;
//  - a name found by at() is found again by find() (when the index is
//    sorted) at a member with the same name;
//  - a member streamed through a MemberReader, or a range of it read as
//    Bytes, gives the same bytes as the whole read, or an error;
//  - verify() never fails to run on an archive that opened;
//  - ArchiveProbe (preads, the name fence) finds every member of an archive
//    that verify() passes at the same index (archives with index deltas and
//    extent maps are Archive's alone), and btf_find_in_archive answers
//    (or fails cleanly) on every member;
//  - the same index stored compressed (docs/FORMAT.md "Compressed index",
//    written in place of the plain one, the file's size kept) gives the
//    same answers: every member ok or not alike, same name, place and bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <sys/mman.h>
#include <unistd.h>

#include <xxhash.h>

#include <vector>

#include "archive/format.h"
#include "archive/frames.h"
#include "archive/index_codec.h"
#include "archive/probe.h"
#include "mmar/archive.h"
#include "mmar/btf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  mmar::OpenOptions options;
  options.max_member_size = 64u << 20;  // keep the fuzzer's memory bounded
  options.cache_bytes = 1u << 20;
  // Half the inputs through a range reader (no mapping: what a remote
  // archive is): stream heads, index frames and fence runs are read by
  // range and kept, not viewed in place.
  // (The compressed-index copy below is read the same way: a mapped plain
  // index is searched in place, a lazy one through the name fence, and on
  // a damaged index the two may differ in which entry's damage they meet.)
  const bool ranged = (size & 2) != 0;
  auto source_of = [ranged](std::span<const std::byte> b, const char* name) {
    if (!ranged) return mmar::Source::borrow(b, name);
    return mmar::Source::from_reader(name, b.size(),
                                     [b](uint64_t off, std::span<std::byte> out) -> mmar::Result<void> {
                                       std::memcpy(out.data(), b.data() + off, out.size());
                                       return mmar::success();
                                     });
  };
  auto a = mmar::Archive::open(source_of(bytes, "fuzz"), options);
  if (!a.ok()) return 0;
  const uint32_t n = a->size() < 256 ? a->size() : 256;
  for (uint32_t i = 0; i < n; ++i) {
    auto m = a->at(i);
    if (!m.ok()) continue;
    // Frames prefetched into the cache first: every read below may take
    // them from there, and must still give the member's checked bytes.
    if (i % 2 == 0) a->prefetch(*m, m->size / 4, 1u << 16);
    auto d = a->read(*m);
    if (d.ok() && !m->is_dir() && d->size() != m->size) std::abort();
    // A range read gives the same bytes as the whole read, or fails.
    if (d.ok() && !m->is_dir() && m->size > 0) {
      char part[512];
      const uint64_t off = m->size / 3;
      auto got = a->read(*m, off, sizeof part, part);
      if (got.ok() && (*got != std::min<uint64_t>(sizeof part, m->size - off) ||
                       std::memcmp(part, d->data() + off, *got) != 0)) {
        std::abort();
      }
    }
    // Streamed (MemberReader) and by range as Bytes (read_bytes): the same
    // bytes as the whole read, or an error; never other bytes.
    if (d.ok() && !m->is_dir() && m->size > 0 && m->size <= (1u << 20)) {
      mmar::MemberReader r(*a, *m);
      char chunk[700];
      uint64_t at = 0;
      for (;;) {
        auto got = r.read(chunk, sizeof chunk);
        if (!got.ok() || *got == 0) break;
        if (at + *got > m->size || std::memcmp(chunk, d->data() + at, *got) != 0) std::abort();
        at += *got;
      }
      const uint64_t off = m->size / 2;
      auto rb = a->read_bytes(*m, off, 300);
      if (rb.ok() && (rb->size() != std::min<uint64_t>(300, m->size - off) ||
                      std::memcmp(rb->data(), d->data() + off, rb->size()) != 0)) {
        std::abort();
      }
    }
    auto f = a->find(m->name);
    if (f.ok() && f->name != m->name) std::abort();
  }
  // The same archive with its (plain, whole) index stored compressed.
  if (a->format() == mmar::Format::mmar && size >= mmar::format::kHeaderAreaSize) {
    // The slot in use: valid, of the generation the reader chose.
    mmar::format::Superblock sb;
    std::memcpy(&sb, data, sizeof sb);
    if (XXH3_64bits(&sb, offsetof(mmar::format::Superblock, sb_xxh3)) != sb.sb_xxh3 ||
        sb.sb_generation != a->generation()) {
      std::memcpy(&sb, data + mmar::format::kSuperblockSize, sizeof sb);
    }
    const uint64_t off = sb.sb_index_offset, len = sb.sb_index_size;
    constexpr uint32_t kMemberBits =
        mmar::format::kSbFlagFramed | mmar::format::kSbFlagFramed2 | mmar::format::kSbFlagFramed3;
    if (sb.sb_flags == (sb.sb_flags & kMemberBits) && len > 0 &&
        off <= size && len <= size - off) {
      // Both forms a reader reads: with predicted offsets (what writers
      // write) and without (archives written before them).
      std::vector<std::byte> plain(bytes.begin() + static_cast<ptrdiff_t>(off),
                                   bytes.begin() + static_cast<ptrdiff_t>(off + len));
      const uint64_t table = uint64_t{sb.sb_member_count} * mmar::format::kEntrySize;
      const bool predicted = (size & 1) != 0 && table <= len;
      if (predicted) mmar::index_codec::predict_offsets(std::span(plain).first(static_cast<size_t>(table)), 0);
      auto stored = mmar::frames::encode_stream(plain, 1, mmar::format::kIndexFrameLog2);
      if (stored.ok() && stored->size() <= size - off) {
        std::vector<std::byte> v(bytes.begin(), bytes.end());
        std::memset(v.data() + off, 0, len);
        std::memcpy(v.data() + off, stored->data(), stored->size());
        sb.sb_flags = sb.sb_flags | mmar::format::kSbFlagIndexFramed |
                      (predicted ? mmar::format::kSbFlagIndexPredicted : 0);
        sb.sb_index_size = stored->size();
        sb.sb_index_xxh3 = XXH3_64bits(stored->data(), stored->size());
        sb.sb_xxh3 = XXH3_64bits(&sb, offsetof(mmar::format::Superblock, sb_xxh3));
        std::memcpy(v.data(), &sb, sizeof sb);
        std::memcpy(v.data() + mmar::format::kSuperblockSize, &sb, sizeof sb);
        auto b = mmar::Archive::open(source_of(v, "fuzz-cidx"), options);
        if (b.ok()) {
          if (b->size() != a->size()) std::abort();
          for (uint32_t i = 0; i < n; ++i) {
            auto ma = a->at(i);
            auto mb = b->at(i);
            if (ma.ok() != mb.ok()) std::abort();
            if (!ma.ok()) continue;
            if (ma->name != mb->name || ma->data_offset != mb->data_offset || ma->size != mb->size ||
                ma->xxh3 != mb->xxh3) {
              std::abort();
            }
            auto fa = a->find(ma->name);
            auto fb = b->find(ma->name);
            // Mapped, both search the whole table and agree. Through a
            // range reader the plain index is searched through the name
            // fence's run, the compressed one (read whole at open) in
            // full: on a damaged index (names out of order or repeated, a
            // name out of bounds) they may meet different entries, so a
            // member both find need only have the name asked for.
            if (!ranged && (fa.ok() != fb.ok() || (fa.ok() && fa->index != fb->index))) std::abort();
            if (fa.ok() && fb.ok() && (fa->name != ma->name || fb->name != ma->name)) std::abort();
            // Bytes stored where the plain index was differ: not compared.
            if (ma->stored_size > 0 && ma->data_offset < off + len && off < ma->data_offset + ma->stored_size) continue;
            auto da = a->read(*ma);
            auto db = b->read(*mb);
            if (da.ok() && db.ok() &&
                (da->size() != db->size() ||
                 (da->size() > 0 && std::memcmp(da->data(), db->data(), da->size()) != 0))) {
              std::abort();
            }
          }
        }
      }
    }
  }
  auto problems = a->verify();
  if (!problems.ok() && a->format() == mmar::Format::mmar) {
    // verify() reports problems as a list; an Error means the archive could
    // not be read at all, which open() should already have caught.
    if (problems.error().code() != mmar::Errc::limit) std::abort();
  }
  if (a->format() != mmar::Format::mmar) return 0;
  // The pread path reads a file: the same bytes in a memfd.
  static int fd = memfd_create("fuzz", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, 0) != 0 || (size > 0 && pwrite(fd, data, size, 0) != static_cast<ssize_t>(size))) {
    std::abort();
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  const bool sound = problems.ok() && problems->empty();
  auto probe = mmar::ArchiveProbe::open(path);
  if (!probe.ok()) {
    // Archive::open accepted the same superblock; only an archive updated in
    // place (index deltas) is left to it.
    if (sound && probe.error().code() != mmar::Errc::unsupported) std::abort();
    return 0;
  }
  for (uint32_t i = 0; i < n; ++i) {
    auto m = a->at(i);
    if (!m.ok()) continue;
    auto f = probe->find(m->name);
    if (sound && (!f.ok() || !f->has_value() || (**f)->index != i || (**f)->data_offset != m->data_offset)) {
      std::abort();
    }
    if (i < 8) {
      auto t = mmar::btf_find_in_archive(path, m->name, "task_struct");
      auto any = mmar::btf_find_in_archive(path, m->name, "a");
      (void)t;
      (void)any;
    }
  }
  return 0;
}
