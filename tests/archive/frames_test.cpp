// SPDX-License-Identifier: BSD-2-Clause
// Frame streams (docs/FORMAT.md "Frame streams"): random access, packing,
// identical contents stored once, streaming, and damaged tables.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <bit>
#include <cstring>
#include <filesystem>
#include <random>

#include "archive/codec.h"
#include "archive/format.h"
#include "archive/frames.h"
#include "mmar/archive.h"
#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;

const std::string kMmar = MMAR_BIN;

using test::text_bytes;

struct Built {
  std::vector<std::byte> bytes;
  std::vector<std::byte> big;
};

// Frame table v1 (what the tests below that patch 16-byte entries need;
// frames_v2_test.cpp tests v2, the default).
WriteOptions v1_options() {
  WriteOptions o;
  o.frame_size = 4096;
  o.frame_table = 1;
  return o;
}

// "big": 20 frames and a bit of 4 KiB; "small/*": members packed together.
Built build(WriteOptions o = v1_options()) {
  Built b;
  b.big = text_bytes(20 * 4096 + 123, 1);
  Writer w(o);
  EXPECT_TRUE(w.add_bytes("big", b.big).ok());
  for (int i = 0; i < 6; ++i) {
    EXPECT_TRUE(w.add_bytes("small/" + std::to_string(i), text_bytes(300 + 50 * i, 10 + i)).ok());
  }
  TempDir tmp;
  EXPECT_TRUE(w.write(tmp / "f.mmar").ok());
  b.bytes = test::read_file(tmp / "f.mmar");
  return b;
}

Result<Archive> open_bytes(const std::vector<std::byte>& bytes, OpenOptions o = {}) {
  return Archive::open(Source::borrow(bytes, "f.mmar"), o);
}

TEST(Frames, RandomRangesReadTheRightBytes) {
  Built b = build();
  for (bool pread : {false, true}) {
    TempDir tmp;
    test::write_file(tmp / "f.mmar", b.bytes);
    auto a = Archive::open(tmp / "f.mmar", {.force_pread = pread, .frame_cache_bytes = 3 * 4096});
    ASSERT_TRUE(a.ok()) << a.error().message();
    auto m = a->find("big");
    ASSERT_TRUE(m.ok());
    EXPECT_TRUE(m->framed);
    EXPECT_EQ(m->codec, Codec::zstd);
    EXPECT_LT(m->stored_size, m->size);
    std::mt19937 rng(7);
    std::vector<std::byte> out(3 * 4096);
    for (int i = 0; i < 300; ++i) {
      const uint64_t off = rng() % (m->size + 10);
      const size_t len = rng() % out.size();
      auto n = a->read(*m, off, len, out.data());
      ASSERT_TRUE(n.ok()) << n.error().message();
      const size_t want = off >= m->size ? 0 : std::min<uint64_t>(len, m->size - off);
      ASSERT_EQ(*n, want);
      ASSERT_EQ(std::memcmp(out.data(), b.big.data() + std::min<uint64_t>(off, m->size), want), 0) << off;
    }
    auto whole = a->read(*m);
    ASSERT_TRUE(whole.ok());
    EXPECT_TRUE(std::equal(b.big.begin(), b.big.end(), whole->data()));
    EXPECT_TRUE(a->verify()->empty());
  }
}

TEST(Frames, SmallMembersShareOneStreamAndReadAlone) {
  Built b = build();
  auto a = open_bytes(b.bytes);
  ASSERT_TRUE(a.ok());
  std::optional<uint64_t> stream;
  uint32_t expect_offset = 0;
  for (int i = 0; i < 6; ++i) {
    auto m = a->find("small/" + std::to_string(i));
    ASSERT_TRUE(m.ok());
    EXPECT_TRUE(m->framed);
    if (!stream) stream = m->data_offset;
    EXPECT_EQ(m->data_offset, *stream) << "packed in name order into one frame";
    EXPECT_EQ(m->stream_offset, expect_offset);
    expect_offset += static_cast<uint32_t>(m->size);
    auto bytes = a->read(*m);
    ASSERT_TRUE(bytes.ok());
    auto want = text_bytes(300 + 50 * i, 10 + i);
    EXPECT_TRUE(std::equal(want.begin(), want.end(), bytes->data()));
  }
  // Feature bit: a reader that predates frame streams refuses up front.
  format::Superblock sb;
  std::memcpy(&sb, b.bytes.data(), sizeof sb);
  EXPECT_NE(sb.sb_flags & format::kSbFlagFramed, 0u);
  EXPECT_EQ(sb.sb_flags & format::kSbFlagFramed2, 0u) << "v1 tables only";
}

// Packs (WriteOptions::pack_size): members smaller than both a frame and a
// pack share one-frame streams filled up to the pack size in name order; a
// pack's frame size is its own (the table's), not the members' frame size.
TEST(Frames, PacksFillUpToThePackSize) {
  struct Case {
    uint32_t frame, pack;
  };
  for (const Case c : {Case{4096, 16384}, Case{16384, 4096}, Case{4096, 0}}) {
    SCOPED_TRACE(std::to_string(c.frame) + "/" + std::to_string(c.pack));
    const uint64_t pack = c.pack == 0 ? 2 * c.frame : c.pack;  // 0: twice the frame size
    const uint64_t packed_below = std::min<uint64_t>(c.frame, pack);
    Writer w({.frame_size = c.frame, .pack_size = c.pack, .index = IndexStorage::plain});
    std::vector<std::vector<std::byte>> want;
    for (int i = 0; i < 40; ++i) {
      want.push_back(text_bytes(700 + 331 * (i % 13), 50 + i));  // 700 .. 4,672 bytes
      char name[16];
      std::snprintf(name, sizeof name, "m%02d", i);
      ASSERT_TRUE(w.add_bytes(name, want.back()).ok());
    }
    TempDir tmp;
    ASSERT_TRUE(w.write(tmp / "p.mmar").ok());
    const auto bytes = test::read_file(tmp / "p.mmar");
    auto a = open_bytes(bytes);
    ASSERT_TRUE(a.ok()) << a.error().message();
    // Without a mapping too: a pack is read with its table in one read.
    auto pread = Archive::open(tmp / "p.mmar", {.force_pread = true});
    ASSERT_TRUE(pread.ok()) << pread.error().message();
    std::optional<uint64_t> stream;
    uint64_t fill = 0;
    for (uint32_t i = 0; i < 40; ++i) {
      auto m = a->at(i);
      ASSERT_TRUE(m.ok());
      ASSERT_TRUE(m->framed) << m->name;
      for (const Archive* from : {&*a, &*pread}) {
        auto r = from->read(*m);
        ASSERT_TRUE(r.ok()) << r.error().message();
        ASSERT_EQ(r->size(), want[i].size()) << m->name;
        EXPECT_TRUE(std::equal(want[i].begin(), want[i].end(), r->data())) << m->name;
      }
      if (m->size >= packed_below) {
        EXPECT_EQ(m->stream_offset, 0u) << m->name << ": a stream of its own";
        EXPECT_EQ(std::to_integer<uint8_t>(bytes[m->data_offset]),
                  std::countr_zero(c.frame) | format::kFrame3Sized) << m->name;
        continue;
      }
      if (stream && m->data_offset == *stream) {
        EXPECT_EQ(m->stream_offset, fill) << m->name << ": right after the member before";
      } else {
        if (stream) {
          EXPECT_GT(fill + m->size, pack) << m->name << ": a new pack only when the last is full";
        }
        stream = m->data_offset;
        fill = 0;
        EXPECT_EQ(m->stream_offset, 0u);
        const auto desc = std::to_integer<uint8_t>(bytes[m->data_offset]);
        EXPECT_EQ(desc & 0x1f, std::countr_zero(pack)) << m->name << ": the pack's frame size";
      }
      fill += m->size;
      EXPECT_LE(fill, pack) << m->name;
    }
    EXPECT_TRUE(a->verify()->empty());
    EXPECT_TRUE(pread->verify()->empty());
  }
  for (uint32_t bad : {3000u, 2048u, 8u << 20}) {
    Writer w({.pack_size = bad});
    ASSERT_TRUE(w.add_bytes("a", text_bytes(1000, 1)).ok());
    TempDir tmp;
    auto r = w.write(tmp / "bad.mmar");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), Errc::invalid_argument);
    EXPECT_FALSE(std::filesystem::exists(tmp / "bad.mmar"));
  }
}

// The command line: --pack-size on create and compact, checked as a usage
// error (exit 2) when not a power of two from 4K to 4M.
TEST(Frames, PackSizeFromTheCommandLine) {
  MMAR_SKIP_WITHOUT_CLI();
  TempDir tmp;
  std::filesystem::create_directories(tmp / "in");
  for (int i = 0; i < 30; ++i) {
    test::write_file(tmp / ("in/f" + std::to_string(i)), text_bytes(900 + 37 * i, 70 + i));
  }
  const std::string out = tmp / "p.mmar";
  auto pack_log2 = [&]() -> int {
    const auto bytes = test::read_file(out);
    auto a = open_bytes(bytes);
    if (!a.ok()) return -1;
    auto m = a->find("f0");
    if (!m.ok() || !m->framed) return -1;
    return std::to_integer<int>(bytes[m->data_offset]) & 0x1f;
  };
  EXPECT_EQ(test::run(kMmar + " create -f " + out + " --pack-size 3K -C " + tmp / "in . 2>/dev/null"), 2);
  EXPECT_EQ(test::run(kMmar + " create -f " + out + " --pack-size 8M -C " + tmp / "in . 2>/dev/null"), 2);
  EXPECT_FALSE(std::filesystem::exists(out));
  ASSERT_EQ(test::run(kMmar + " create -f " + out + " --frame-size 4K --pack-size 16K -C " + tmp / "in ."), 0);
  EXPECT_EQ(pack_log2(), 14);
  ASSERT_EQ(test::run(kMmar + " create -f " + out + " --frame-size 4K -C " + tmp / "in ."), 0);
  EXPECT_EQ(pack_log2(), 13) << "by default twice the frame size";
  ASSERT_EQ(test::run(kMmar + " compact -f " + out + " --pack-size 64K"), 0);
  EXPECT_EQ(pack_log2(), 16);
  EXPECT_EQ(test::run(kMmar + " verify -q " + out), 0);
  EXPECT_EQ(test::run(kMmar + " compact -f " + out + " --pack-size 0 2>/dev/null"), 2);
}

TEST(Frames, MemberReaderStreamsSeeksAndChecksTheWholeChecksum) {
  Built b = build();
  auto a = open_bytes(b.bytes);
  ASSERT_TRUE(a.ok());
  auto m = a->find("big");
  MemberReader r(*a, *m);
  std::vector<std::byte> got;
  std::vector<std::byte> buf(1000);
  for (;;) {
    auto n = r.read(buf.data(), buf.size());
    ASSERT_TRUE(n.ok()) << n.error().message();
    if (*n == 0) break;
    got.insert(got.end(), buf.begin(), buf.begin() + static_cast<ptrdiff_t>(*n));
  }
  EXPECT_EQ(got, b.big);
  r.seek(5000);
  auto n = r.read(buf.data(), 10);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::memcmp(buf.data(), b.big.data() + 5000, 10), 0);
  // A wrong whole-member checksum: the frames are fine, the end says no.
  auto bad = b.bytes;
  test::patch_entry(bad, m->index, [](format::Entry& e) { e.me_xxh3 = e.me_xxh3 ^ 1; });
  auto c = open_bytes(bad);
  MemberReader r2(*c, *c->find("big"));
  Result<size_t> last = size_t{0};
  do {
    last = r2.read(buf.data(), buf.size());
  } while (last.ok() && *last != 0);
  ASSERT_FALSE(last.ok());
  EXPECT_EQ(last.error().code(), Errc::checksum);
}

// The frame table entry i of `m` in `bytes`, patched.
void patch_frame(std::vector<std::byte>& bytes, const Member& m, uint32_t i,
                 const std::function<void(format::FrameEntry&)>& fn) {
  format::FrameEntry e;
  const uint64_t at = m.data_offset + sizeof(format::FrameTableHeader) + uint64_t{i} * sizeof e;
  std::memcpy(&e, bytes.data() + at, sizeof e);
  fn(e);
  std::memcpy(bytes.data() + at, &e, sizeof e);
}

std::string read_error(const std::vector<std::byte>& bytes, const std::string& name, uint64_t off, size_t len) {
  auto a = open_bytes(bytes);
  if (!a.ok()) return a.error().message();
  auto m = a->find(name);
  if (!m.ok()) return m.error().message();
  std::vector<std::byte> out(len);
  auto r = a->read(*m, off, len, out.data());
  return r.ok() ? "" : r.error().message();
}

#define EXPECT_ERROR_CONTAINS(text, needle) EXPECT_NE((text).find(needle), std::string::npos) << "error was: " << (text)

TEST(Frames, DamagedTablesAreErrorsNamingMemberAndFrame) {
  Built b = build();
  auto a = open_bytes(b.bytes);
  const Member m = *a->find("big");
  {  // a flipped byte in frame 3: that frame fails its checksum, others read
    auto bad = b.bytes;
    format::FrameEntry e2, e3;
    std::memcpy(&e2, bad.data() + m.data_offset + 32 + 2 * 16, 16);
    std::memcpy(&e3, bad.data() + m.data_offset + 32 + 3 * 16, 16);
    bad[m.data_offset + (e2.fr_end + e3.fr_end) / 2] ^= std::byte{0x40};
    const std::string err = read_error(bad, "big", 3 * 4096 + 10, 100);
    EXPECT_ERROR_CONTAINS(err, "f.mmar: member 'big': frame 3: checksum mismatch (at offset 0x");
    EXPECT_EQ(read_error(bad, "big", 0, 3 * 4096), "");
    EXPECT_EQ(read_error(bad, "big", 4 * 4096, 4096), "");
    auto c = open_bytes(bad);
    auto problems = c->verify();
    ASSERT_TRUE(problems.ok());
    ASSERT_EQ(problems->size(), 1u);
    EXPECT_ERROR_CONTAINS((*problems)[0].message, "member 'big': frame 3: checksum mismatch");
    // Without verification the codec still refuses or the bytes differ, but
    // nothing crashes.
    auto d = open_bytes(bad, {.verify_checksums = false});
    std::vector<std::byte> out(4096);
    (void)d->read(*d->find("big"), 3 * 4096, 4096, out.data());
  }
  {  // frame ends out of order
    auto bad = b.bytes;
    patch_frame(bad, m, 5, [](format::FrameEntry& e) { e.fr_end = 40; });
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 5 * 4096, 10), "member 'big': frame table: frame 5 at [");
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 6 * 4096, 10), "frame 6 at [");
  }
  {  // a frame past the stream
    auto bad = b.bytes;
    patch_frame(bad, m, 7, [](format::FrameEntry& e) { e.fr_end = e.fr_end + (uint64_t{1} << 40); });
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 7 * 4096, 10), "frame 7 at [");
  }
  {  // the last frame does not end where the stream does
    auto bad = b.bytes;
    patch_frame(bad, m, 20, [](format::FrameEntry& e) { e.fr_end = e.fr_end - 1; });
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 20 * 4096, 10), "the last frame ends at");
  }
  {  // a frame that inflates to another size than the table says
    format::FrameEntry e18, e19;
    std::memcpy(&e18, b.bytes.data() + m.data_offset + 32 + 18 * 16, 16);
    std::memcpy(&e19, b.bytes.data() + m.data_offset + 32 + 19 * 16, 16);
    std::span<const std::byte> f19(b.bytes.data() + m.data_offset + e18.fr_end, e19.fr_end - e18.fr_end);
    std::vector<std::byte> out(123);  // what frame 20 inflates to
    auto r = codec::decompress_frame(Codec::zstd, false, f19, out);
    ASSERT_FALSE(r.ok());
    EXPECT_ERROR_CONTAINS(r.error().message(), "zstd: frame declares 4096, the table 123 bytes");
    std::vector<std::byte> more(8192);
    EXPECT_FALSE(codec::decompress_frame(Codec::zstd, false, f19, more).ok());
    std::vector<std::byte> exact(4096);
    EXPECT_TRUE(codec::decompress_frame(Codec::zstd, false, f19, exact).ok());
  }
  {  // the header: magic, checksum, a count that does not match the size
    auto bad = b.bytes;
    bad[m.data_offset] = std::byte{'X'};
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 0, 10), "member 'big': frame table: bad magic");
    bad = b.bytes;
    bad[m.data_offset + 9] ^= std::byte{1};  // ft_size, checksum now wrong
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 0, 10), "frame table: header checksum mismatch");
    // A count claiming more entries than the stream holds, resealed.
    bad = b.bytes;
    format::FrameTableHeader h;
    std::memcpy(&h, bad.data() + m.data_offset, sizeof h);
    h.ft_size = uint64_t{1} << 40;
    h.ft_count = static_cast<uint32_t>((uint64_t{1} << 40) >> 12);
    h.ft_xxh3 = XXH3_64bits(&h, 24);
    std::memcpy(bad.data() + m.data_offset, &h, sizeof h);
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 0, 10), "frames do not fit in");
    // A member claiming bytes outside its stream.
    bad = b.bytes;
    test::patch_entry(bad, m.index, [](format::Entry& e) { e.me_stream_offset = 100; });
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 0, 10), "outside its frame stream");
    // Stream offset on an entry without frames.
    bad = b.bytes;
    test::patch_entry(bad, m.index, [](format::Entry& e) { e.me_flags = 0; });
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 0, 10), "");  // a legacy stream now: the codec refuses
    EXPECT_FALSE(read_error(bad, "big", 0, 10).empty());
  }
}

TEST(Frames, SameBytesAreStoredOnceAndStatsSaySo) {
  TempDir tmp;
  auto data = text_bytes(300000, 3);
  auto small = text_bytes(1000, 4);
  Writer w({.frame_size = 65536});
  ASSERT_TRUE(w.add_bytes("a/big", data).ok());
  ASSERT_TRUE(w.add_bytes("b/big", data).ok());
  ASSERT_TRUE(w.add_bytes("a/small", small).ok());
  ASSERT_TRUE(w.add_bytes("c/small", small).ok());
  auto other = small;
  other[999] ^= std::byte{1};
  ASSERT_TRUE(w.add_bytes("d/small", other).ok());
  auto stats = w.write(tmp / "d.mmar");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->deduplicated, 2u);
  auto a = Archive::open(tmp / "d.mmar");
  auto x = a->find("a/big"), y = a->find("b/big");
  EXPECT_EQ(x->data_offset, y->data_offset);
  auto s1 = a->find("a/small"), s2 = a->find("c/small"), s3 = a->find("d/small");
  EXPECT_EQ(s1->stream_offset, s2->stream_offset);
  EXPECT_NE(s1->stream_offset, s3->stream_offset);
  EXPECT_TRUE(a->verify()->empty());
  EXPECT_LT(a->source().size(), data.size() / 2);
  // Compaction keeps the sharing (and copies frames as they are).
  auto before = a->find("b/big")->stored_size;
  {
    auto u = ArchiveUpdater::open(tmp / "d.mmar", {.compact_ratio = 0});
    ASSERT_TRUE(u.ok());
    ASSERT_TRUE(u->compact().ok());
  }
  auto c = Archive::open(tmp / "d.mmar");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->find("a/big")->data_offset, c->find("b/big")->data_offset);
  EXPECT_EQ(c->find("b/big")->stored_size, before);
  EXPECT_EQ(c->find("c/small")->stream_offset, s2->stream_offset);
  EXPECT_TRUE(c->verify()->empty());
  EXPECT_EQ(c->read("d/small")->size(), 1000u);
}

TEST(Frames, IncompressibleMembersStayRawAndAligned) {
  TempDir tmp;
  std::vector<std::byte> noise((size_t{1} << 20) + 200000);  // on a page from 1 MiB (format::raw_on_page)
  std::mt19937 rng(9);
  for (auto& b : noise) b = static_cast<std::byte>(rng());
  Writer w;
  ASSERT_TRUE(w.add_bytes("noise", noise).ok());
  ASSERT_TRUE(w.add_bytes("tiny-noise", std::vector<std::byte>(noise.begin(), noise.begin() + 5000)).ok());
  ASSERT_TRUE(w.write(tmp / "n.mmar").ok());
  auto a = Archive::open(tmp / "n.mmar");
  auto m = a->find("noise");
  EXPECT_EQ(m->codec, Codec::none);
  EXPECT_TRUE(m->page_aligned);
  EXPECT_EQ(a->find("tiny-noise")->codec, Codec::none);
  EXPECT_TRUE(a->verify()->empty());
  // Gaps left by the abandoned frames are zero: the same input gives the
  // same bytes (determinism), whatever the threads.
  Writer w1({.threads = 1});
  ASSERT_TRUE(w1.add_bytes("noise", noise).ok());
  ASSERT_TRUE(w1.add_bytes("tiny-noise", std::vector<std::byte>(noise.begin(), noise.begin() + 5000)).ok());
  ASSERT_TRUE(w1.write(tmp / "n1.mmar").ok());
  EXPECT_EQ(test::read_file(tmp / "n.mmar"), test::read_file(tmp / "n1.mmar"));
}

// A member raw only because it did not compress (an already compressed
// file) starts on a page only from 16 pages up; asked for raw, from a page.
TEST(Frames, IncompressibleSmallMembersAreNotPadded) {
  TempDir tmp;
  std::vector<std::byte> noise(20000);
  std::mt19937 rng(11);
  for (auto& b : noise) b = static_cast<std::byte>(rng());
  for (Codec codec : {Codec::zstd, Codec::none}) {
    Writer w({.codec = codec});
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(w.add_bytes("gz" + std::to_string(i), noise).ok());
    noise[0] ^= std::byte{1};  // not identical: each stored
    ASSERT_TRUE(w.write(tmp / "n.mmar").ok());
    auto a = Archive::open(tmp / "n.mmar");
    ASSERT_TRUE(a.ok());
    uint64_t end = 0;
    for (int i = 0; i < 4; ++i) {
      auto m = a->find("gz" + std::to_string(i));
      ASSERT_TRUE(m.ok());
      EXPECT_EQ(m->codec, Codec::none);
      EXPECT_EQ(m->page_aligned, codec == Codec::none) << i;
      if (m->page_aligned) {
        EXPECT_EQ(m->data_offset % a->alignment(), 0u);
      }
      end = std::max(end, m->data_offset + m->stored_size);
    }
    if (codec == Codec::zstd) {
      EXPECT_LT(end, 128 + 4 * 20000 + 4 * 8 + 4096u);  // no page of padding each
    }
    EXPECT_TRUE(a->verify()->empty());
  }
}

TEST(Frames, OldSingleStreamArchivesStillRead) {
  Built b = build({.frame_size = 0});
  auto a = open_bytes(b.bytes);
  ASSERT_TRUE(a.ok());
  auto m = a->find("big");
  EXPECT_FALSE(m->framed);
  EXPECT_EQ(m->codec, Codec::zstd);
  std::vector<std::byte> out(100);
  ASSERT_TRUE(a->read(*m, 50000, 100, out.data()).ok());
  EXPECT_EQ(std::memcmp(out.data(), b.big.data() + 50000, 100), 0);
  format::Superblock sb;
  std::memcpy(&sb, b.bytes.data(), sizeof sb);
  EXPECT_EQ(sb.sb_flags & format::kSbFlagFramed, 0u);
  EXPECT_EQ(sb.sb_flags & format::kSbFlagFramed2, 0u);
  EXPECT_TRUE(a->verify()->empty());
}

TEST(Frames, CatStreamsAndFailsNamingTheFrame) {
  MMAR_SKIP_WITHOUT_CLI();
  TempDir tmp;
  Built b = build();
  test::write_file(tmp / "f.mmar", b.bytes);
  std::string out;
  ASSERT_EQ(test::run(kMmar + " cat " + tmp / "f.mmar" + " big > " + tmp / "out"), 0);
  EXPECT_EQ(test::read_file(tmp / "out"), b.big);
  auto a = open_bytes(b.bytes);
  const Member m = *a->find("big");
  auto bad = b.bytes;
  format::FrameEntry e;
  std::memcpy(&e, bad.data() + m.data_offset + 32 + 10 * 16, 16);
  bad[m.data_offset + e.fr_end - 2] ^= std::byte{0x10};
  test::write_file(tmp / "bad.mmar", bad);
  EXPECT_EQ(test::run(kMmar + " cat " + tmp / "bad.mmar" + " big > /dev/null 2> " + tmp / "err"), 1);
  auto err = test::read_file(tmp / "err");
  std::string text(reinterpret_cast<const char*>(err.data()), err.size());
  EXPECT_ERROR_CONTAINS(text, "member 'big': frame 10: checksum mismatch");
  // extract leaves nothing half-written behind
  EXPECT_EQ(test::run(kMmar + " extract -f " + tmp / "bad.mmar" + " -C " + tmp / "x big 2>/dev/null"), 1);
  EXPECT_NE(::access((tmp / "x/big").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace mmar

namespace mmar {
namespace {

TEST(Frames, MembersOfAnotherArchiveAreCopiedAsStoredOrStreamed) {
  MMAR_SKIP_WITHOUT_CLI();
  TempDir tmp;
  Built b = build();  // zstd, 4 KiB frames
  test::write_file(tmp / "src.mmar", b.bytes);
  auto from = Archive::open(tmp / "src.mmar");
  ASSERT_TRUE(from.ok());
  // Same codec and frame size: the big member's stream is copied byte for
  // byte; small ones are packed again.
  Writer same({.frame_size = 4096});  // v2 tables for what it packs; v1 stays v1
  ASSERT_TRUE(from->for_each([&](const Member& m) { return same.add_member(std::string(m.name), *from, m); }).ok());
  ASSERT_TRUE(same.write(tmp / "same.mmar").ok());
  auto c = Archive::open(tmp / "same.mmar");
  ASSERT_TRUE(c.ok());
  auto m0 = from->find("big"), m1 = c->find("big");
  ASSERT_EQ(m1->stored_size, m0->stored_size);
  EXPECT_EQ(c->source().read(m1->data_offset, m1->stored_size)->str(),
            from->source().read(m0->data_offset, m0->stored_size)->str());
  EXPECT_TRUE(c->verify()->empty());
  // Another codec: streamed and recompressed.
  Writer other({.codec = Codec::xz, .frame_size = 8192});
  ASSERT_TRUE(from->for_each([&](const Member& m) { return other.add_member(std::string(m.name), *from, m); }).ok());
  ASSERT_TRUE(other.write(tmp / "xz.mmar").ok());
  auto x = Archive::open(tmp / "xz.mmar");
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(x->find("big")->codec, Codec::xz);
  EXPECT_EQ(x->read("big")->str(), std::string(reinterpret_cast<const char*>(b.big.data()), b.big.size()));
  EXPECT_TRUE(x->verify()->empty());
  EXPECT_EQ(x->size(), from->size());
  // mmar compact --compress: the same through the CLI, in place.
  ASSERT_EQ(test::run(kMmar + " compact --compress xz " + tmp / "src.mmar" + " > /dev/null"), 0);
  auto y = Archive::open(tmp / "src.mmar");
  ASSERT_TRUE(y.ok());
  EXPECT_EQ(y->find("big")->codec, Codec::xz);
  EXPECT_TRUE(y->verify()->empty());
}

}  // namespace
}  // namespace mmar

namespace mmar {
namespace {

TEST(Frames, CompactionRefusesDamageInsteadOfCopyingIt) {
  MMAR_SKIP_WITHOUT_CLI();
  TempDir tmp;
  Built b = build();
  auto a = Archive::open(Source::borrow(b.bytes, "f"));
  const Member m = *a->find("big");
  auto bad = b.bytes;
  format::FrameEntry e;
  std::memcpy(&e, bad.data() + m.data_offset + 32 + 7 * 16, 16);
  bad[m.data_offset + e.fr_end - 3] ^= std::byte{0x20};
  test::write_file(tmp / "bad.mmar", bad);
  std::string out;
  EXPECT_EQ(test::run(kMmar + " compact " + tmp / "bad.mmar" + " 2>&1", &out), 1) << out;
  EXPECT_NE(out.find("frame 7: checksum mismatch"), std::string::npos) << out;
  EXPECT_EQ(test::read_file(tmp / "bad.mmar"), bad) << "left as it was";
  // Copied as stored through the writer (same codec and frame size): each
  // frame is checked on the way.
  auto c = Archive::open(Source::borrow(bad, "bad.mmar"));
  Writer w({.frame_size = 4096});  // v2 by default: a v1 stream is still copied as it is
  ASSERT_TRUE(w.add_member("big", *c, *c->find("big")).ok());
  auto r = w.write(tmp / "copy.mmar");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("frame 7: checksum mismatch"), std::string::npos) << r.error().message();
}

TEST(Frames, ExtractOfVeryDeepNamesKeepsFdsBounded) {
  MMAR_SKIP_WITHOUT_CLI();
  TempDir tmp;
  std::string deep;
  for (int i = 0; i < 300; ++i) deep += "d/";
  Writer w;
  for (int k = 0; k < 3; ++k) ASSERT_TRUE(w.add_bytes(deep + "f" + std::to_string(k), test::to_bytes("deep\n")).ok());
  ASSERT_TRUE(w.add_bytes("top", test::to_bytes("top\n")).ok());
  ASSERT_TRUE(w.write(tmp / "deep.mmar").ok());
  // 300 components: more than the stack keeps; with 200 fds allowed the
  // extraction still succeeds.
  ASSERT_EQ(test::run("ulimit -n 200 && " + kMmar + " extract -f " + tmp / "deep.mmar" + " -C " + tmp / "x"), 0);
  EXPECT_EQ(test::read_file(tmp / ("x/" + deep + "f2")), test::to_bytes("deep\n"));
  EXPECT_EQ(test::read_file(tmp / "x/top"), test::to_bytes("top\n"));
}

}  // namespace
}  // namespace mmar
