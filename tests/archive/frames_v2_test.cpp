// SPDX-License-Identifier: BSD-2-Clause
// Frame table v2 (docs/FORMAT.md "Frame streams"): anchors every 256 frames,
// 8-byte entries (length, 32-bit checksum), magicless zstd frames; a random
// read needs one small part of the table; damaged tables are one-line
// errors naming member and frame; v1 archives (frames_v1.mmar, written by
// the mmar before v2) still read, extract and verify.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <cstring>
#include <mutex>
#include <random>

#include "archive/codec.h"
#include "archive/format.h"
#include "archive/frames.h"
#include "mmar/archive.h"
#include "support/hex.h"
#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;

const std::string kMmar = MMAR_BIN;
const std::string kFixtureV1 = std::string(MMAR_SOURCE_DIR) + "/fuzz/corpus/archive_reader/frames_v1.mmar";

#define EXPECT_ERROR_CONTAINS(text, needle) EXPECT_NE((text).find(needle), std::string::npos) << "error was: " << (text)

using test::text_bytes;

constexpr uint64_t kBigSize = (uint64_t{2} << 20) + 123;  // 513 frames of 4 KiB: groups 0, 1, 2; two anchors
constexpr uint64_t kMidSize = 100 * 4096 + 7;             // 101 frames: one group, no anchors

struct Built {
  std::vector<std::byte> bytes;
  std::vector<std::byte> big, mid;
};

Built build_with(uint8_t version) {
  Built b;
  b.big = text_bytes(kBigSize, 1);
  b.mid = text_bytes(kMidSize, 2);
  WriteOptions o;
  o.frame_size = 4096;
  o.frame_table = version;
  Writer w(o);
  EXPECT_TRUE(w.add_bytes("big", b.big).ok());
  EXPECT_TRUE(w.add_bytes("mid", b.mid).ok());
  for (int i = 0; i < 6; ++i)
    EXPECT_TRUE(w.add_bytes("small/" + std::to_string(i), text_bytes(300 + 50 * i, 10 + i)).ok());
  TempDir tmp;
  EXPECT_TRUE(w.write(tmp / "f.mmar").ok());
  b.bytes = test::read_file(tmp / "f.mmar");
  return b;
}

// Built once per test binary.
const Built& built() {
  static const Built b = build_with(2);
  return b;
}

Result<Archive> open_bytes(const std::vector<std::byte>& bytes, OpenOptions o = {}) {
  return Archive::open(Source::borrow(bytes, "f.mmar"), o);
}

template <class T>
T get(const std::vector<std::byte>& b, uint64_t at) {
  T v;
  std::memcpy(&v, b.data() + at, sizeof v);
  return v;
}
template <class T>
void put(std::vector<std::byte>& b, uint64_t at, const T& v) {
  std::memcpy(b.data() + at, &v, sizeof v);
}

// Where the parts of member m's v2 table are in the archive's bytes.
struct Layout {
  uint64_t base = 0;
  frames::Table t;
  uint64_t anchor_at(uint32_t g) const { return base + 32 + uint64_t{g} * 8; }
  uint64_t entry_at(uint32_t k) const { return base + 32 + uint64_t{t.anchors()} * 8 + uint64_t{k} * 8; }
};

Layout layout_of(const std::vector<std::byte>& bytes, const Member& m) {
  Layout l;
  l.base = m.data_offset;
  auto t = frames::parse_header(std::span(bytes).subspan(m.data_offset, 32), m.stored_size, "t", m.data_offset);
  EXPECT_TRUE(t.ok());
  l.t = *t;
  return l;
}

// `bytes` with frame k's entry given another stored length.
std::vector<std::byte> with_length(const std::vector<std::byte>& bytes, const Layout& l, uint32_t k, uint32_t length) {
  auto out = bytes;
  auto e = get<format::FrameEntry2>(out, l.entry_at(k));
  e.fr_length = length;
  put(out, l.entry_at(k), e);
  return out;
}

// Frame k's place, through the checker itself.
frames::Frame frame_of(const std::vector<std::byte>& bytes, const Member& m, uint32_t k) {
  const Layout l = layout_of(bytes, m);
  const frames::Lookup at = frames::lookup(l.t, k);
  std::span<const std::byte> all(bytes.data() + m.data_offset, m.stored_size);
  auto f = frames::frame_at(l.t, k, all.subspan(at.anchors_at, at.anchors_length),
                            all.subspan(at.entries_at, at.entries_length), "t", m.data_offset);
  EXPECT_TRUE(f.ok()) << f.error().message();
  return *f;
}

std::string read_error(const std::vector<std::byte>& bytes, const std::string& name, uint64_t off, size_t len,
                       OpenOptions o = {}) {
  auto a = open_bytes(bytes, o);
  if (!a.ok()) return a.error().message();
  auto m = a->find(name);
  if (!m.ok()) return m.error().message();
  std::vector<std::byte> out(len);
  auto r = a->read(*m, off, len, out.data());
  if (r.ok()) return "";
  EXPECT_EQ(r.error().message().find('\n'), std::string::npos) << "one line";
  return r.error().message();
}

std::string verify_problems(const std::vector<std::byte>& bytes) {
  auto a = open_bytes(bytes);
  if (!a.ok()) return a.error().message();
  auto p = a->verify();
  if (!p.ok()) return p.error().message();
  std::string out;
  for (const auto& x : *p) out += x.message + "\n";
  return out;
}

TEST(FramesV2, RoundTripWithAndWithoutAnchors) {
  const Built& b = built();
  auto a = open_bytes(b.bytes);
  ASSERT_TRUE(a.ok()) << a.error().message();
  for (const auto& [name, want] : {std::pair{"big", &b.big}, std::pair{"mid", &b.mid}}) {
    auto m = a->find(name);
    ASSERT_TRUE(m.ok());
    EXPECT_TRUE(m->framed);
    EXPECT_EQ(std::memcmp(b.bytes.data() + m->data_offset, "MMARFRM2", 8), 0);
    auto whole = a->read(*m);
    ASSERT_TRUE(whole.ok()) << whole.error().message();
    ASSERT_EQ(whole->size(), want->size());
    EXPECT_EQ(std::memcmp(whole->data(), want->data(), want->size()), 0) << name;
    std::mt19937 rng(5);
    std::vector<std::byte> out(3 * 4096);
    for (int i = 0; i < 200; ++i) {
      const uint64_t off = rng() % m->size;
      const size_t len = rng() % out.size();
      auto n = a->read(*m, off, len, out.data());
      ASSERT_TRUE(n.ok()) << n.error().message();
      ASSERT_EQ(std::memcmp(out.data(), want->data() + off, *n), 0) << name << " " << off;
    }
  }
  const Layout big = layout_of(b.bytes, *a->find("big"));
  EXPECT_EQ(big.t.count, 513u);
  EXPECT_EQ(big.t.anchors(), 2u);
  EXPECT_EQ(layout_of(b.bytes, *a->find("mid")).t.anchors(), 0u);
  // Anchor g: the end of frame 256g + 255.
  EXPECT_EQ(get<format::FrameAnchor>(b.bytes, big.anchor_at(0)).fa_end, frame_of(b.bytes, *a->find("big"), 255).end);
  EXPECT_EQ(get<format::FrameAnchor>(b.bytes, big.anchor_at(1)).fa_end, frame_of(b.bytes, *a->find("big"), 511).end);
  for (int i = 0; i < 6; ++i) {
    auto bytes = a->read("small/" + std::to_string(i));
    ASSERT_TRUE(bytes.ok());
    auto want = text_bytes(300 + 50 * i, 10 + i);
    EXPECT_TRUE(std::equal(want.begin(), want.end(), bytes->data()));
  }
  EXPECT_EQ(verify_problems(b.bytes), "");
  format::Superblock sb;
  std::memcpy(&sb, b.bytes.data(), sizeof sb);
  EXPECT_NE(sb.sb_flags & format::kSbFlagFramed, 0u);
  EXPECT_NE(sb.sb_flags & format::kSbFlagFramed2, 0u) << "readers before v2 refuse up front";
}

// A v2 stream of several groups copied into another archive (add_member)
// is stored byte for byte as it was: anchors, entries and frames.
TEST(FramesV2, CopiedStreamsWithAnchorsAreTheSameBytes) {
  const Built& b = built();
  auto a = open_bytes(b.bytes);
  ASSERT_TRUE(a.ok()) << a.error().message();
  auto m = a->find("big");
  ASSERT_TRUE(m.ok());
  TempDir tmp;
  Writer w({.frame_size = 4096, .frame_table = 2});
  ASSERT_TRUE(w.add_member("copy", *a, *m).ok());
  ASSERT_TRUE(w.write(tmp / "copy.mmar").ok());
  auto c = Archive::open(tmp / "copy.mmar");
  ASSERT_TRUE(c.ok());
  auto cm = c->find("copy");
  ASSERT_TRUE(cm.ok());
  ASSERT_EQ(cm->stored_size, m->stored_size);
  auto was = a->source().read(m->data_offset, m->stored_size);
  auto now = c->source().read(cm->data_offset, cm->stored_size);
  ASSERT_TRUE(was.ok() && now.ok());
  EXPECT_EQ(std::memcmp(was->data(), now->data(), m->stored_size), 0);
  EXPECT_EQ(c->read(*cm)->size(), b.big.size());
  EXPECT_TRUE(c->verify()->empty());
}

TEST(FramesV2, XzFramesStayWholeXzStreams) {
  const auto data = text_bytes(300 * 4096 + 5, 3);  // 301 frames: two groups
  TempDir tmp;
  Writer w({.codec = Codec::xz, .frame_size = 4096, .frame_table = 2});
  ASSERT_TRUE(w.add_bytes("x", data).ok());
  ASSERT_TRUE(w.write(tmp / "x.mmar").ok());
  const auto bytes = test::read_file(tmp / "x.mmar");
  auto a = open_bytes(bytes);
  ASSERT_TRUE(a.ok());
  auto m = a->find("x");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->codec, Codec::xz);
  EXPECT_EQ(std::memcmp(bytes.data() + m->data_offset, "MMARFRM2", 8), 0);
  const frames::Frame f = frame_of(bytes, *m, 290);
  const unsigned char xz_magic[] = {0xfd, '7', 'z', 'X', 'Z', 0};
  EXPECT_EQ(std::memcmp(bytes.data() + m->data_offset + f.begin, xz_magic, sizeof xz_magic), 0);
  EXPECT_EQ(a->read(*m)->str(), std::string(reinterpret_cast<const char*>(data.data()), data.size()));
  EXPECT_EQ(verify_problems(bytes), "");
  // Only versions 1, 2 and 3 are written.
  WriteOptions o;
  o.frame_table = 4;
  Writer bad(o);
  ASSERT_TRUE(bad.add_bytes("x", data).ok());
  auto r = bad.write(tmp / "bad.mmar");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Errc::invalid_argument);
}

TEST(FramesV2, SmallerThanV1ByAboutFifteenBytesAFrame) {
  const Built& v2 = built();
  const Built v1 = build_with(1);
  const uint64_t frames = 513 + 101 + 1;
  // 8 bytes of table entry and 5 of zstd frame header (magic 4, content
  // size 2 for 4 KiB, less the window descriptor 1) per frame, less 8 per
  // anchor (and some padding: streams are 8-aligned). At 128 KiB frames
  // the content size is 4 bytes: 15 per frame.
  EXPECT_GE(v1.bytes.size() - v2.bytes.size(), 12 * frames) << v1.bytes.size() << " vs " << v2.bytes.size();
  format::Superblock sb;
  std::memcpy(&sb, v1.bytes.data(), sizeof sb);
  EXPECT_EQ(sb.sb_flags & format::kSbFlagFramed2, 0u);
}

TEST(FramesV2, LookupNeedsAtMostTwoKiBForAnyFrame) {
  frames::Table t;
  t.version = 2;
  t.log2 = 12;
  t.count = 100000;
  t.size = uint64_t{t.count} << 12;
  t.stored = uint64_t{1} << 40;
  for (uint32_t k : {0u, 1u, 255u, 256u, 511u, 99999u, 70000u}) {
    const frames::Lookup l = frames::lookup(t, k);
    EXPECT_LE(l.anchors_length, 16u);
    EXPECT_LE(l.entries_length, 2048u);
    EXPECT_GE(l.entries_at, frames::table_bytes(2, 0) + uint64_t{t.anchors()} * 8);
    EXPECT_LE(l.entries_at + l.entries_length, t.table_bytes());
  }
}

// A source that records the ranges read from it (a remote archive's range
// requests).
struct Recorder {
  std::mutex mu;
  std::vector<std::pair<uint64_t, uint64_t>> reads;
};

TEST(FramesV2, RandomReadOfFrameKReadsOneSmallRangeOfTheTable) {
  // 10,240 frames: the table (80 KiB) is larger than the head a reader
  // keeps (64 KiB), so entries past it are read when needed.
  std::vector<std::byte> data(size_t{10240} * 4096);
  for (size_t i = 0; i < data.size(); i += 4096) std::memset(data.data() + i, static_cast<int>(i / 4096 % 251), 4096);
  TempDir tmp;
  Writer w({.frame_size = 4096, .frame_table = 2});
  ASSERT_TRUE(w.add_bytes("zeros", data).ok());
  ASSERT_TRUE(w.write(tmp / "z.mmar").ok());
  const auto bytes = test::read_file(tmp / "z.mmar");
  auto rec = std::make_shared<Recorder>();
  Source src = Source::from_reader("z.mmar", bytes.size(),
                                   [&bytes, rec](uint64_t offset, std::span<std::byte> out) -> Result<void> {
                                     std::lock_guard lock(rec->mu);
                                     rec->reads.emplace_back(offset, out.size());
                                     std::memcpy(out.data(), bytes.data() + offset, out.size());
                                     return success();
                                   });
  auto a = Archive::open(std::move(src));
  ASSERT_TRUE(a.ok()) << a.error().message();
  auto m = a->find("zeros");
  ASSERT_TRUE(m.ok());
  std::vector<std::byte> out(10);
  ASSERT_TRUE(a->read(*m, 0, 10, out.data()).ok());  // the stream's head, kept
  for (uint32_t k : {9000u, 9001u, 10239u, 3000u}) {
    rec->reads.clear();
    ASSERT_TRUE(a->read(*m, uint64_t{k} * 4096 + 5, 10, out.data()).ok());
    EXPECT_EQ(out[0], static_cast<std::byte>(k % 251));
    const frames::Frame f = frame_of(bytes, *m, k);
    uint64_t table = 0;
    for (const auto& [at, len] : rec->reads) {
      if (at >= m->data_offset + f.begin && at + len <= m->data_offset + f.end) continue;  // the frame
      table += len;
      EXPECT_LE(len, 2048u) << "frame " << k;
    }
    EXPECT_LE(rec->reads.size(), 2u) << "frame " << k;
    EXPECT_LE(table, 2048u) << "frame " << k;
  }
  EXPECT_TRUE(a->verify()->empty());
}

TEST(FramesV2, DamagedTablesAreOneLineErrorsNamingMemberAndFrame) {
  const Built& b = built();
  auto a = open_bytes(b.bytes);
  const Member m = *a->find("big");
  const Layout l = layout_of(b.bytes, m);
  const uint64_t a0 = get<format::FrameAnchor>(b.bytes, l.anchor_at(0)).fa_end;
  const uint64_t a1 = get<format::FrameAnchor>(b.bytes, l.anchor_at(1)).fa_end;
  {  // anchors out of order: group 1 ends before it starts
    auto bad = b.bytes;
    put(bad, l.anchor_at(1), format::FrameAnchor{a0 - 1});
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 300 * 4096, 10),
                          "f.mmar: member 'big': frame table: group 1 (frame 300) at [");
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 512 * 4096, 10), "frame 512, the last of group 2, ends at");
    EXPECT_EQ(read_error(bad, "big", 10 * 4096, 10), "") << "group 0 does not depend on it";
    EXPECT_ERROR_CONTAINS(verify_problems(bad), "member 'big': frame table: group 1");
  }
  {  // an anchor past the stream
    auto bad = b.bytes;
    put(bad, l.anchor_at(1), format::FrameAnchor{m.stored_size + 100});
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 300 * 4096, 10), "group 1 (frame 300) at [");
  }
  {  // a length of 0
    auto bad = with_length(b.bytes, l, 10, 0);
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 10 * 4096, 10),
                          "member 'big': frame table: frame 10 stores 0 bytes for 4096");
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 11 * 4096, 10), "frame 10 stores 0 bytes");
  }
  {  // a length larger than the frame inflates to
    auto bad = with_length(b.bytes, l, 512, 124);
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 512 * 4096, 10), "frame 512 stores 124 bytes for 123");
  }
  {  // a length that overruns its group's end
    auto bad = with_length(b.bytes, l, 300, 4096);
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 511 * 4096, 10), "frame 511 at [");
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 511 * 4096, 10), "ends after its group");
    EXPECT_ERROR_CONTAINS(verify_problems(bad), "member 'big': frame");
  }
  {  // lengths that do not sum to the group's anchor: reads of frames
     // before the group's last are fine, the last one and verify say so
    auto bad = b.bytes;
    put(bad, l.anchor_at(0), format::FrameAnchor{a0 + 1});
    EXPECT_EQ(read_error(bad, "big", 254 * 4096, 10), "");
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 255 * 4096, 10),
                          "member 'big': frame table: frame 255, the last of group 0, ends at " + hex(a0) +
                              ", the group at " + hex(a0 + 1));
    EXPECT_ERROR_CONTAINS(verify_problems(bad), "member 'big': frame table: frame 255, the last of group 0");
  }
  {  // an anchor one byte short: the group's last frame overruns it, and
     // the last group (ending at the stream's end) then does not add up
    auto bad = b.bytes;
    put(bad, l.anchor_at(1), format::FrameAnchor{a1 - 1});
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 511 * 4096, 10), "frame 511 at [");
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 511 * 4096, 10), "ends after its group");
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 512 * 4096, 10), "frame 512, the last of group 2, ends at");
    EXPECT_ERROR_CONTAINS(verify_problems(bad), "member 'big': frame table: frame 511 at [");
  }
  {  // a checksum mismatch
    auto bad = b.bytes;
    auto e = get<format::FrameEntry2>(bad, l.entry_at(300));
    e.fr_sum = e.fr_sum ^ 1;
    put(bad, l.entry_at(300), e);
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 300 * 4096, 10),
                          "f.mmar: member 'big': frame 300: checksum mismatch (at offset 0x");
    EXPECT_EQ(read_error(bad, "big", 301 * 4096, 10), "");
    EXPECT_ERROR_CONTAINS(verify_problems(bad), "member 'big': frame 300: checksum mismatch");
  }
  {  // a flipped byte in a frame
    auto bad = b.bytes;
    const frames::Frame f = frame_of(b.bytes, m, 7);
    bad[m.data_offset + (f.begin + f.end) / 2] ^= std::byte{0x40};
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 7 * 4096, 10), "member 'big': frame 7: checksum mismatch");
    // Unchecked, the codec refuses or the bytes differ; nothing crashes.
    (void)read_error(bad, "big", 7 * 4096, 4096, {.verify_checksums = false});
  }
}

TEST(FramesV2, FramesInflateToExactlyTheTablesLength) {
  const Built& b = built();
  auto a = open_bytes(b.bytes);
  const Member m = *a->find("big");
  const frames::Frame f = frame_of(b.bytes, m, 3);
  ASSERT_FALSE(f.raw());
  std::span<const std::byte> stored(b.bytes.data() + m.data_offset + f.begin, f.end - f.begin);
  // Magicless, no content size: two bytes of header (descriptor, window).
  EXPECT_NE(std::memcmp(stored.data(), "\x28\xb5\x2f\xfd", 4), 0);
  std::vector<std::byte> exact(4096), less(4000), more(5000);
  EXPECT_TRUE(codec::decompress_frame(Codec::zstd, true, stored, exact).ok());
  EXPECT_EQ(std::memcmp(exact.data(), b.big.data() + 3 * 4096, 4096), 0);
  auto r = codec::decompress_frame(Codec::zstd, true, stored, less);
  ASSERT_FALSE(r.ok());
  EXPECT_ERROR_CONTAINS(r.error().message(), "zstd: frame inflates to more than 4000 bytes");
  r = codec::decompress_frame(Codec::zstd, true, stored, more);
  ASSERT_FALSE(r.ok());
  EXPECT_ERROR_CONTAINS(r.error().message(), "of 5000");
  // Trailing bytes after the frame.
  std::vector<std::byte> longer(stored.begin(), stored.end());
  longer.push_back(std::byte{0});
  r = codec::decompress_frame(Codec::zstd, true, longer, exact);
  ASSERT_FALSE(r.ok());
  EXPECT_ERROR_CONTAINS(r.error().message(), "trailing bytes");
  // Cut short.
  r = codec::decompress_frame(Codec::zstd, true, stored.first(stored.size() - 3), exact);
  ASSERT_FALSE(r.ok());
  // A v1 reading of a v2 frame (and back) fails cleanly.
  EXPECT_FALSE(codec::decompress_frame(Codec::zstd, false, stored, exact).ok());
}

TEST(FramesV2, HostileWindowDescriptorIsRefusedNotAllocated) {
  const Built& b = built();
  auto a = open_bytes(b.bytes);
  const Member m = *a->find("big");
  const Layout l = layout_of(b.bytes, m);
  const frames::Frame f = frame_of(b.bytes, m, 3);
  auto bad = b.bytes;
  const uint64_t at = m.data_offset + f.begin;
  // Frame header descriptor: no single segment, so byte 1 is the window
  // descriptor; exponent 21: a 2^31-byte window.
  ASSERT_EQ(static_cast<uint8_t>(bad[at]) & 0x20, 0);
  bad[at + 1] = std::byte{21 << 3};
  std::vector<std::byte> out(4096);
  auto r = codec::decompress_frame(Codec::zstd, true, std::span(bad).subspan(at, f.end - f.begin), out);
  ASSERT_FALSE(r.ok());
  EXPECT_ERROR_CONTAINS(r.error().message(), "zstd: ");
  // In the archive, resealed so the frame's checksum passes.
  auto e = get<format::FrameEntry2>(bad, l.entry_at(3));
  e.fr_sum = static_cast<uint32_t>(XXH3_64bits(bad.data() + at, f.end - f.begin));
  put(bad, l.entry_at(3), e);
  const std::string err = read_error(bad, "big", 3 * 4096, 10);
  EXPECT_ERROR_CONTAINS(err, "f.mmar: member 'big': frame 3: zstd: ");
  EXPECT_ERROR_CONTAINS(verify_problems(bad), "member 'big': frame 3: zstd: ");
}

TEST(FramesV2, UpdatesAndCompactionKeepTheFeatureBit) {
  TempDir tmp;
  test::write_file(tmp / "u.mmar", built().bytes);
  auto flags = [&] {
    format::Superblock sb[2];
    auto bytes = test::read_file(tmp / "u.mmar");
    std::memcpy(sb, bytes.data(), sizeof sb);
    return sb[0].sb_generation > sb[1].sb_generation ? uint32_t{sb[0].sb_flags} : uint32_t{sb[1].sb_flags};
  };
  {
    auto u = ArchiveUpdater::open(tmp / "u.mmar", {.compact_ratio = 0});
    ASSERT_TRUE(u.ok()) << u.error().message();
    std::vector<UpdateMember> put_members;
    put_members.push_back(UpdateMember{.name = "newdir", .mode = 040755});
    ASSERT_TRUE(u->commit(std::move(put_members), {"small/0"}).ok());
    EXPECT_NE(flags() & format::kSbFlagFramed2, 0u) << "after a commit";
    ASSERT_TRUE(u->compact().ok());
    EXPECT_NE(flags() & format::kSbFlagFramed2, 0u) << "after compaction";
    // Without frame streams left, neither bit.
    ASSERT_TRUE(u->commit({}, {"big", "mid", "small/1", "small/2", "small/3", "small/4", "small/5"}).ok());
    EXPECT_EQ(flags() & (format::kSbFlagFramed | format::kSbFlagFramed2), 0u);
  }
  auto a = Archive::open(tmp / "u.mmar");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->verify()->empty());
}

// frames_v1.mmar's members, as fuzz/corpus/archive_reader/README.md says
// they were made.
std::vector<std::pair<std::string, std::string>> v1_fixture_members() {
  std::vector<std::pair<std::string, std::string>> out;
  std::string big;
  char line[64];
  for (int i = 0; i < 1000; ++i) {
    std::snprintf(line, sizeof line, "%05d the quick brown fox jumps over the lazy dog\n", i);
    big += line;
  }
  out.emplace_back("big.txt", big);
  std::string raw;
  uint64_t x = 1;
  for (int i = 0; i < 10000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    raw += static_cast<char>(x >> 56);
  }
  out.emplace_back("raw.bin", raw);
  for (char c = 'a'; c <= 'e'; ++c) {
    std::string s;
    for (int i = 0; i < 20; ++i) s += std::string("small file ") + c + "\n";
    out.emplace_back(std::string("small/") + c + ".txt", s);
  }
  out.emplace_back("tiny.txt", "hi\n");
  return out;
}

TEST(FramesV1, FixtureWrittenBeforeV2ReadsAndVerifies) {
  for (bool pread : {false, true}) {
    auto a = Archive::open(kFixtureV1, {.force_pread = pread});
    ASSERT_TRUE(a.ok()) << a.error().message();
    format::Superblock sb;
    std::memcpy(&sb, a->source().read(0, sizeof sb)->data(), sizeof sb);
    EXPECT_NE(sb.sb_flags & format::kSbFlagFramed, 0u);
    EXPECT_EQ(sb.sb_flags & format::kSbFlagFramed2, 0u);
    for (const auto& [name, want] : v1_fixture_members()) {
      auto m = a->find(name);
      ASSERT_TRUE(m.ok()) << name;
      auto got = a->read(*m);
      ASSERT_TRUE(got.ok()) << got.error().message();
      EXPECT_EQ(got->str(), want) << name;
      // Ranges across frame boundaries.
      for (uint64_t off : {uint64_t{0}, uint64_t{4090}, uint64_t{12280}, uint64_t{49990}}) {
        if (off >= want.size()) continue;
        std::string buf(5000, '\0');
        auto n = a->read(*m, off, buf.size(), buf.data());
        ASSERT_TRUE(n.ok()) << n.error().message();
        EXPECT_EQ(buf.substr(0, *n), want.substr(off, 5000)) << name << " " << off;
      }
    }
    auto big = a->find("big.txt");
    EXPECT_TRUE(big->framed);
    EXPECT_EQ(std::memcmp(a->source().read(big->data_offset, 8)->data(), "MMARFRM1", 8), 0);
    EXPECT_EQ(a->find("raw.bin")->codec, Codec::none);
    EXPECT_TRUE(a->find("small/c.txt")->framed);
    EXPECT_TRUE(a->verify()->empty());
  }
  // Copied by a v2 writer with the same frame size: v1 stays v1 (stored
  // frames are copied as they are), the packed members become v2.
  auto a = Archive::open(kFixtureV1);
  ASSERT_TRUE(a.ok());
  TempDir tmp;
  Writer w({.frame_size = 4096, .frame_table = 2});
  ASSERT_TRUE(a->for_each([&](const Member& m) { return w.add_member(std::string(m.name), *a, m); }).ok());
  ASSERT_TRUE(w.write(tmp / "copy.mmar").ok());
  auto c = Archive::open(tmp / "copy.mmar");
  ASSERT_TRUE(c.ok());
  auto big = c->find("big.txt");
  EXPECT_EQ(std::memcmp(c->source().read(big->data_offset, 8)->data(), "MMARFRM1", 8), 0);
  auto small = c->find("small/a.txt");
  EXPECT_EQ(std::memcmp(c->source().read(small->data_offset, 8)->data(), "MMARFRM2", 8), 0);
  for (const auto& [name, want] : v1_fixture_members()) EXPECT_EQ(c->read(name)->str(), want) << name;
  EXPECT_TRUE(c->verify()->empty());
}

TEST(FramesV1, FixtureExtractsByteForByte) {
  MMAR_SKIP_WITHOUT_CLI();
  TempDir tmp;
  ASSERT_EQ(test::run(kMmar + " verify " + kFixtureV1 + " > /dev/null"), 0);
  ASSERT_EQ(test::run(kMmar + " extract -f " + kFixtureV1 + " -C " + tmp.path()), 0);
  for (const auto& [name, want] : v1_fixture_members())
    EXPECT_EQ(test::read_file(tmp / name), test::to_bytes(want)) << name;
}

}  // namespace
}  // namespace mmar
