// SPDX-License-Identifier: BSD-2-Clause
// Frame table v3 (docs/FORMAT.md "Table v3"): a 1-byte header for a stream
// that is its member's bytes, 5 bytes for a packed one, 7-byte entries;
// what writers write by default. Round trips across groups, the bytes it
// saves against v2, copies that keep it, hostile headers and entries
// (including members that disagree about a stream sized by its member).
#include <gtest/gtest.h>
#include <xxhash.h>

#include <cstring>

#include "archive/format.h"
#include "archive/frames.h"
#include "mmar/archive.h"
#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;
using test::text_bytes;

#define EXPECT_ERROR_CONTAINS(text, needle) EXPECT_NE((text).find(needle), std::string::npos) << "error was: " << (text)

constexpr uint64_t kBigSize = (uint64_t{2} << 20) + 123;  // 513 frames of 4 KiB: three groups, two anchors

std::vector<std::byte> build(uint8_t version) {
  WriteOptions o;
  o.frame_size = 4096;
  o.pack_size = 16384;  // packs of small members: a frame size of their own
  o.frame_table = version;
  o.index = IndexStorage::plain;  // tests patch entries in place
  Writer w(o);
  EXPECT_TRUE(w.add_bytes("big", text_bytes(kBigSize, 1)).ok());
  EXPECT_TRUE(w.add_bytes("mid", text_bytes(100 * 4096 + 7, 2)).ok());
  for (int i = 0; i < 6; ++i) {
    EXPECT_TRUE(w.add_bytes("small/" + std::to_string(i), text_bytes(300 + 50 * i, 10 + i)).ok());
  }
  EXPECT_TRUE(w.add_bytes("twin", text_bytes(kBigSize, 1)).ok());  // the same bytes as big: shares its stream
  TempDir tmp;
  auto r = w.write(tmp / "v.mmar");
  EXPECT_TRUE(r.ok()) << r.error().message();
  return test::read_file(tmp / "v.mmar");
}

const std::vector<std::byte>& v3() {
  static const auto b = build(3);
  return b;
}

Result<Archive> open_bytes(const std::vector<std::byte>& bytes, OpenOptions o = {}) {
  return Archive::open(Source::borrow(bytes, "f.mmar"), o);
}

Member member(const std::vector<std::byte>& bytes, const std::string& name) {
  auto a = open_bytes(bytes);
  EXPECT_TRUE(a.ok());
  auto m = a->find(name);
  EXPECT_TRUE(m.ok()) << name;
  return *m;
}

std::string read_error(const std::vector<std::byte>& bytes, const std::string& name, uint64_t off, size_t len) {
  auto a = open_bytes(bytes);
  if (!a.ok()) return a.error().message();
  auto m = a->find(name);
  if (!m.ok()) return m.error().message();
  std::vector<std::byte> out(len);
  auto r = a->read(*m, off, len, out.data());
  if (r.ok()) return "";
  EXPECT_EQ(r.error().message().find('\n'), std::string::npos) << "one line";
  return r.error().message();
}

uint32_t sb_flags(const std::vector<std::byte>& b) { return load<format::Superblock>(b.data()).sb_flags; }

TEST(FramesV3, WritersWriteItAndEveryReadAgrees) {
  const auto& b = v3();
  EXPECT_NE(sb_flags(b) & format::kSbFlagFramed3, 0u);
  EXPECT_EQ(sb_flags(b) & format::kSbFlagFramed2, 0u) << "no v2 stream written";
  // A stream of its own: one byte, the frame size and "sized by its member".
  const Member big = member(b, "big");
  ASSERT_TRUE(big.framed);
  EXPECT_EQ(std::to_integer<uint8_t>(b[big.data_offset]), 12 | format::kFrame3Sized);
  auto t = frames::parse_header(std::span(b).subspan(big.data_offset, 32), big.stored_size, "t", big.data_offset,
                                {big.size, big.stream_offset});
  ASSERT_TRUE(t.ok()) << t.error().message();
  EXPECT_EQ(t->version, 3);
  EXPECT_EQ(t->count, 513u);
  EXPECT_EQ(t->anchors(), 2u);
  EXPECT_EQ(t->table_bytes(), 1u + 2 * 8 + 513 * 7);
  // The identical file shares the stream.
  const Member twin = member(b, "twin");
  EXPECT_EQ(twin.data_offset, big.data_offset);
  // Small members packed together: a 5-byte header with the stream's size.
  const Member s0 = member(b, "small/0"), s5 = member(b, "small/5");
  EXPECT_EQ(s0.data_offset, s5.data_offset);
  EXPECT_EQ(std::to_integer<uint8_t>(b[s0.data_offset]), 14) << "a pack's frame: the pack size, 16 KiB";
  EXPECT_EQ(read_int<uint32_t>(b.data() + s0.data_offset + 1, true), s5.stream_offset + s5.size);
  // Every byte reads back, whole and in ranges across frames and groups.
  auto a = open_bytes(b);
  ASSERT_TRUE(a.ok());
  const auto want = text_bytes(kBigSize, 1);
  EXPECT_TRUE(a->read("big")->span().size() == want.size() &&
              std::memcmp(a->read("big")->data(), want.data(), want.size()) == 0);
  for (uint64_t off : {uint64_t{0}, uint64_t{4095}, uint64_t{256} * 4096 - 3, uint64_t{512} * 4096 + 1}) {
    std::vector<std::byte> out(200);
    const size_t n = static_cast<size_t>(std::min<uint64_t>(out.size(), kBigSize - off));
    ASSERT_TRUE(a->read(big, off, n, out.data()).ok()) << off;
    EXPECT_EQ(std::memcmp(out.data(), want.data() + off, n), 0) << off;
  }
  for (int i = 0; i < 6; ++i) {
    const auto s = text_bytes(300 + 50 * i, 10 + i);
    EXPECT_EQ(a->read("small/" + std::to_string(i))->str(), std::string(reinterpret_cast<const char*>(s.data()), s.size()));
  }
  EXPECT_TRUE(a->verify()->empty());
}

TEST(FramesV3, SmallerThanV2ByTheHeaderAndAByteAFrame) {
  const auto two = build(2), three = build(3);
  // Streams: big (513 frames), mid (101), the pack (1): v2 pays 32 bytes of
  // header each and 8 a frame; v3 pays 1 (big, mid) or 5 (the pack) and 7.
  const uint64_t saved = (32 - 1) + (32 - 1) + (32 - 5) + 513 + 101 + 1;
  const auto sb2 = load<format::Superblock>(two.data()), sb3 = load<format::Superblock>(three.data());
  // The data ends where the index starts (both 8-aligned; the index is plain).
  EXPECT_EQ(sb2.sb_index_size, sb3.sb_index_size);
  EXPECT_NEAR(static_cast<double>(sb2.sb_index_offset - sb3.sb_index_offset), static_cast<double>(saved), 8.0);
}

TEST(FramesV3, CopiesKeepTheStoredBytesAndTheBit) {
  const auto& b = v3();
  TempDir tmp;
  test::write_file(tmp / "v3.mmar", b);
  auto a = Archive::open(tmp / "v3.mmar");
  ASSERT_TRUE(a.ok());
  for (uint8_t version : {uint8_t{3}, uint8_t{2}}) {
    Writer w({.frame_size = 4096, .frame_table = version});
    ASSERT_TRUE(a->for_each([&](const Member& m) { return w.add_member(std::string(m.name), *a, m); }).ok());
    const std::string out = tmp / ("copy" + std::to_string(version) + ".mmar");
    ASSERT_TRUE(w.write(out).ok());
    const auto c = test::read_file(out);
    const Member from = member(b, "big"), to = member(c, "big");
    const bool same = from.stored_size == to.stored_size &&
                      std::memcmp(b.data() + from.data_offset, c.data() + to.data_offset, from.stored_size) == 0;
    // A v3 writer copies the stream as it is; a v2 writer may not write v3
    // (its readers may predate it), so it compresses again.
    EXPECT_EQ(same, version == 3);
    EXPECT_EQ((sb_flags(c) & format::kSbFlagFramed3) != 0, version == 3);
    auto ca = Archive::open(out);
    ASSERT_TRUE(ca.ok());
    EXPECT_TRUE(ca->verify()->empty());
    EXPECT_EQ(ca->read("big")->str(), a->read("big")->str());
  }
}

TEST(FramesV3, UpdatesAndCompactionKeepTheBitUntilNoStreamIsLeft) {
  TempDir tmp;
  test::write_file(tmp / "u.mmar", v3());
  auto flags = [&] {
    const auto bytes = test::read_file(tmp / "u.mmar");
    const auto s0 = load<format::Superblock>(bytes.data());
    const auto s1 = load<format::Superblock>(bytes.data() + format::kSuperblockSize);
    return s0.sb_generation >= s1.sb_generation ? uint32_t{s0.sb_flags} : uint32_t{s1.sb_flags};
  };
  auto u = ArchiveUpdater::open(tmp / "u.mmar", {.compact_ratio = 0});
  ASSERT_TRUE(u.ok()) << u.error().message();
  std::vector<UpdateMember> put;
  put.push_back(UpdateMember{.name = "newdir", .mode = 040755});
  ASSERT_TRUE(u->commit(std::move(put), {"small/0"}).ok());
  EXPECT_NE(flags() & format::kSbFlagFramed3, 0u) << "after a commit";
  ASSERT_TRUE(u->compact().ok());
  EXPECT_NE(flags() & format::kSbFlagFramed3, 0u) << "after compaction";
  auto a = Archive::open(tmp / "u.mmar");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->verify()->empty());
  EXPECT_EQ(a->read("small/3")->size(), 450u);
  ASSERT_TRUE(u->commit({}, {"big", "mid", "twin", "small/1", "small/2", "small/3", "small/4", "small/5"}).ok());
  EXPECT_EQ(flags() & (format::kSbFlagFramed | format::kSbFlagFramed3), 0u);
}

TEST(FramesV3, HostileHeadersAndEntriesAreOneLineErrors) {
  const auto& good = v3();
  const Member big = member(good, "big"), s0 = member(good, "small/0");
  {  // reserved header bits
    auto bad = good;
    bad[big.data_offset] |= std::byte{0x20};
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 0, 10), "member 'big': frame table: bad magic or reserved header bits");
  }
  {  // frame size out of range
    auto bad = good;
    bad[big.data_offset] = std::byte{format::kFrame3Sized | 23};
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 0, 10), "frame size 2^23 out of range");
    bad[big.data_offset] = std::byte{format::kFrame3Sized | 11};
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 0, 10), "frame size 2^11 out of range");
  }
  {  // another frame size: every frame's bounds move, and their checks fail
    auto bad = good;
    bad[big.data_offset] = std::byte{format::kFrame3Sized | 13};
    const std::string e = read_error(bad, "big", 0, 10);
    EXPECT_ERROR_CONTAINS(e, "member 'big': frame");
  }
  {  // a packed stream claiming more frames than its bytes hold
    auto bad = good;
    const uint32_t huge = 0xffffffffu;
    std::memcpy(bad.data() + s0.data_offset + 1, &huge, 4);
    EXPECT_ERROR_CONTAINS(read_error(bad, "small/0", 0, 10), "frames do not fit in");
    const uint32_t zero = 0;
    std::memcpy(bad.data() + s0.data_offset + 1, &zero, 4);
    EXPECT_ERROR_CONTAINS(read_error(bad, "small/0", 0, 10), "0 frames for 0 bytes");
  }
  {  // a 3-byte length of zero, and one larger than the frame
    auto bad = good;
    const uint64_t entry0 = big.data_offset + 1 + 2 * 8;
    bad[entry0] = bad[entry0 + 1] = bad[entry0 + 2] = std::byte{0};
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 0, 10), "member 'big': frame table: frame 0 stores 0 bytes for 4096");
    bad = good;
    bad[entry0] = std::byte{0x01};
    bad[entry0 + 1] = std::byte{0x10};
    bad[entry0 + 2] = std::byte{0};
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 0, 10), "frame 0 stores 4097 bytes for 4096");
  }
  {  // a damaged checksum: that frame only
    auto bad = good;
    const uint64_t sum7 = big.data_offset + 1 + 2 * 8 + 7 * 7 + 3;
    bad[sum7] ^= std::byte{1};
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 7 * 4096, 10), "member 'big': frame 7: checksum mismatch");
    EXPECT_EQ(read_error(bad, "big", 8 * 4096, 10), "");
  }
  {  // a stream sized by its member, claimed for part of a stream
    auto bad = good;
    test::patch_entry(bad, 0, [&](format::Entry& e) { e.me_stream_offset = 5; });  // "big" is entry 0
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 0, 10), "a stream sized by its member, read for bytes that are not all of it");
  }
  {  // two members of different sizes sharing a stream sized by its member:
     // each read is checked against its own size, none reads past a frame
    auto bad = good;
    test::patch_entry(bad, 8, [&](format::Entry& e) { e.me_size = e.me_size - 100; });  // "twin"
    auto a = open_bytes(bad);
    ASSERT_TRUE(a.ok());
    std::vector<std::byte> out(4096);
    ASSERT_TRUE(a->read(*a->find("big"), 512 * 4096, 123, out.data()).ok());
    auto twin = a->find("twin");
    ASSERT_TRUE(twin.ok());
    auto r = a->read(*twin, 512 * 4096, 20, out.data());  // frame 512: 123 bytes cached by big, 23 for twin
    EXPECT_FALSE(r.ok());
    auto whole = a->read("twin");
    EXPECT_FALSE(whole.ok());
    auto p = a->verify();
    ASSERT_TRUE(p.ok());
    EXPECT_FALSE(p->empty());
  }
  {  // the same with another frame count, so another table layout: the
     // second member never gets the first's cached frames (each read is as
     // it is alone), and verify reports it
    auto bad = good;
    test::patch_entry(bad, 8, [&](format::Entry& e) { e.me_size = 256 * 4096; });  // "twin": 256 frames, no anchors
    auto a = open_bytes(bad);
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE(a->read("big").ok());  // every frame of big cached
    auto after = a->read("twin");
    ASSERT_FALSE(after.ok());
    auto fresh = open_bytes(bad);
    auto alone = fresh->read("twin");
    ASSERT_FALSE(alone.ok());
    EXPECT_EQ(after.error().message(), alone.error().message());
    std::vector<std::byte> out(100);
    EXPECT_FALSE(a->read(*a->find("twin"), 4096, 100, out.data()).ok());
    auto p = a->verify();
    ASSERT_TRUE(p.ok());
    ASSERT_EQ(p->size(), 1u);
    EXPECT_ERROR_CONTAINS((*p)[0].message, "member 'twin'");
  }
  {  // a v3 header in an archive without superblock bit 5: bad magic
    auto bad = good;
    test::patch_superblock(bad, [](format::Superblock& sb) { sb.sb_flags = sb.sb_flags & ~format::kSbFlagFramed3; });
    EXPECT_ERROR_CONTAINS(read_error(bad, "big", 0, 10), "member 'big': frame table: bad magic (at offset 0x");
  }
}

}  // namespace
}  // namespace mmar
