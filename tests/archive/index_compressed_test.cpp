// SPDX-License-Identifier: BSD-2-Clause
// Compressed index (docs/FORMAT.md "Compressed index"): the member table and
// names stored as a v2 frame stream of 64 KiB zstd frames, read a frame at
// a time through the name fence whether the archive is mapped or read with
// pread; the same members, names and bytes as the plain index; damage is a
// one-line error naming the index frame; updates write a plain table, then
// deltas; compaction compresses again.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <random>
#include <thread>

#include "archive/fence.h"
#include "archive/format.h"
#include "archive/frames.h"
#include "archive/index_codec.h"
#include "mmar/archive.h"
#include "mmar/unique_fd.h"
#include "support/hex.h"
#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;

const std::string kMmar = MMAR_BIN;

#define EXPECT_ERROR_CONTAINS(text, needle) EXPECT_NE((text).find(needle), std::string::npos) << "error was: " << (text)

constexpr int kMembers = 3000;  // 192 KB of entries and ~60 KB of names: five index frames

std::string name_of(int i) {
  char b[64];
  std::snprintf(b, sizeof b, "dir%02d/sub/file-%05d.txt", i % 37, i);
  return b;
}
std::string body_of(int i) { return "member " + std::to_string(i) + " " + std::string(static_cast<size_t>(i % 500), 'a' + i % 26); }

std::vector<std::byte> build(IndexStorage how, Codec codec = Codec::zstd) {
  WriteOptions o;
  o.index = how;
  o.codec = codec;
  o.mtime_ns = 1'800'000'000'000'000'000;
  Writer w(o);
  for (int i = 0; i < kMembers; ++i) EXPECT_TRUE(w.add_bytes(name_of(i), test::to_bytes(body_of(i))).ok());
  TempDir tmp;
  auto r = w.write(tmp / "a.mmar");
  EXPECT_TRUE(r.ok()) << r.error().message();
  return test::read_file(tmp / "a.mmar");
}

const std::vector<std::byte>& compressed() {
  static const std::vector<std::byte> b = build(IndexStorage::automatic);
  return b;
}

// The name fence's size (nf_bytes), 0 without one.
uint64_t fence_bytes(const std::vector<std::byte>& b) {
  fence::Header h;
  std::memcpy(&h, b.data() + fence::kOffset, sizeof h);
  return std::memcmp(h.magic, fence::kMagic, sizeof h.magic) == 0 ? uint64_t{h.bytes} : 0;
}

format::Superblock superblock(const std::vector<std::byte>& b) {
  format::Superblock s0, s1;
  std::memcpy(&s0, b.data(), sizeof s0);
  std::memcpy(&s1, b.data() + format::kSuperblockSize, sizeof s1);
  return s1.sb_generation > s0.sb_generation ? s1 : s0;
}

// Every member, as text: the same for any index storage.
std::string listing(const Archive& a) {
  std::string out;
  auto r = a.for_each([&](const Member& m) -> Result<void> {
    auto bytes = a.read(m);
    if (!bytes.ok()) return std::move(bytes).error();
    out += std::string(m.name) + " " + std::to_string(m.size) + " " + std::to_string(m.xxh3) + " " +
           std::string(reinterpret_cast<const char*>(bytes->data()), bytes->size()) + "\n";
    return success();
  });
  EXPECT_TRUE(r.ok()) << r.error().message();
  return out;
}

void expect_lookups(const Archive& a) {
  std::mt19937 rng(5);
  for (int n = 0; n < 200; ++n) {
    const int i = static_cast<int>(rng() % kMembers);
    auto m = a.find(name_of(i));
    ASSERT_TRUE(m.ok()) << name_of(i) << ": " << m.error().message();
    auto bytes = a.read(*m);
    ASSERT_TRUE(bytes.ok()) << bytes.error().message();
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(bytes->data()), bytes->size()), body_of(i));
  }
  for (const char* absent : {"", "a", "dir00/sub/file-00000.txt0", "dir36/sub/zzz", "zzz"}) {
    auto m = a.find(absent);
    ASSERT_FALSE(m.ok()) << absent;
    EXPECT_EQ(m.error().code(), Errc::not_found) << m.error().message();
  }
}

TEST(IndexCompressed, SameArchiveAsThePlainIndexMappedAndRead) {
  const auto plain = build(IndexStorage::plain);
  const auto& packed = compressed();
  const auto sp = superblock(plain), sc = superblock(packed);
  EXPECT_EQ(sp.sb_flags & format::kSbFlagIndexFramed, 0u);
  EXPECT_NE(sc.sb_flags & format::kSbFlagIndexFramed, 0u) << "automatic: compressed members, compressed index";
  EXPECT_LT(sc.sb_index_size * 3, sp.sb_index_size) << "the index compresses at least 3:1";
  // Only the index and the name fence differ in size (the fence of a
  // compressed index has a stride of at least 128, a plain index's 8), and
  // the data moves by the fences' difference.
  const uint64_t fence_diff = fence_bytes(plain) - fence_bytes(packed);
  EXPECT_GT(fence_diff, 0u);
  // (up to 7 bytes apart: the index starts at a multiple of 8)
  const uint64_t rest = plain.size() - fence_diff - (sp.sb_index_size - sc.sb_index_size);
  EXPECT_LE(packed.size(), rest + 7);
  EXPECT_GE(packed.size() + 7, rest);
  // The stored index is a v2 stream of 64 KiB frames of the plain bytes.
  auto t = frames::parse_header(std::span(packed).subspan(sc.sb_index_offset, sc.sb_index_size), sc.sb_index_size,
                                "index", sc.sb_index_offset);
  ASSERT_TRUE(t.ok()) << t.error().message();
  EXPECT_EQ(t->version, 2);
  EXPECT_EQ(t->log2, 16);
  EXPECT_EQ(t->size, sp.sb_index_size);
  EXPECT_GE(t->count, 4u);
  EXPECT_NE(sc.sb_flags & format::kSbFlagIndexPredicted, 0u) << "writers predict offsets";
  const auto whole = test::inflated_index(packed);
  // The entries as the plain index has them: its data starts after its
  // larger fence.
  const auto first_data = [](const std::vector<std::byte>& index) {
    uint64_t lo = UINT64_MAX;
    for (size_t i = 0; i < kMembers; ++i) {
      format::Entry e;
      std::memcpy(&e, index.data() + i * sizeof e, sizeof e);
      if (e.me_data_offset != 0) lo = std::min<uint64_t>(lo, e.me_data_offset);
    }
    return lo;
  };
  const std::vector<std::byte> plain_index(plain.begin() + static_cast<ptrdiff_t>(sp.sb_index_offset), plain.end());
  const uint64_t shift = first_data(plain_index) - first_data(whole);
  EXPECT_LE(shift, fence_diff + 7) << "data starts at a multiple of 8 after the fence";
  EXPECT_GE(shift + 7, fence_diff) << "data starts at a multiple of 8 after the fence";
  auto moved = whole;
  for (size_t i = 0; i < kMembers; ++i) {
    format::Entry e;
    std::memcpy(&e, moved.data() + i * sizeof e, sizeof e);
    if (e.me_data_offset != 0) e.me_data_offset = e.me_data_offset + shift;
    std::memcpy(moved.data() + i * sizeof e, &e, sizeof e);
  }
  EXPECT_TRUE(std::equal(moved.begin(), moved.end(), plain.begin() + static_cast<ptrdiff_t>(sp.sb_index_offset)));
  // Stored without the unprediction, the entries differ (the transform is
  // not a no-op on this archive): name offsets become small differences.
  auto raw = frames::inflate_stream(std::span(packed).subspan(sc.sb_index_offset, sc.sb_index_size), 1u << 30,
                                    "index", sc.sb_index_offset);
  ASSERT_TRUE(raw.ok()) << raw.error().message();
  ASSERT_EQ(raw->size(), whole.size());
  EXPECT_FALSE(std::equal(raw->begin(), raw->end(), whole.begin()));

  TempDir tmp;
  test::write_file(tmp / "p.mmar", plain);
  test::write_file(tmp / "c.mmar", packed);
  auto pa = Archive::open(tmp / "p.mmar");
  ASSERT_TRUE(pa.ok()) << pa.error().message();
  const std::string want = listing(*pa);
  for (bool pread : {false, true}) {
    SCOPED_TRACE(pread ? "pread" : "mapped");
    auto src = Source::open(tmp / "c.mmar", {.force_pread = pread});
    ASSERT_TRUE(src.ok()) << src.error().message();
    auto a = Archive::open(std::move(*src));
    ASSERT_TRUE(a.ok()) << a.error().message();
    EXPECT_EQ(a->size(), static_cast<uint32_t>(kMembers));
    EXPECT_TRUE(a->has_name_fence()) << "lookups go through the fence, mapped or not";
    expect_lookups(*a);
    EXPECT_EQ(listing(*a), want);
    auto problems = a->verify();
    ASSERT_TRUE(problems.ok()) << problems.error().message();
    EXPECT_TRUE(problems->empty()) << problems->front().message;
  }
  // Checked whole at open when asked.
  auto checked = Archive::open(tmp / "c.mmar", OpenOptions{.verify_index = true});
  ASSERT_TRUE(checked.ok()) << checked.error().message();
  expect_lookups(*checked);
}

TEST(IndexCompressed, PredictedOffsetsRoundTripAnyBytesAFrameAtATime) {
  // 2,500 entries of random bytes (three frames' worth), a third of them
  // made to share the entry before's stream (frame stream flag, same stored
  // bytes) so stream offsets are predicted too.
  constexpr size_t kEntries = 2500;
  std::mt19937_64 rng(11);
  std::vector<std::byte> original(kEntries * format::kEntrySize);
  for (auto& b : original) b = static_cast<std::byte>(rng());
  size_t shared = 0;
  for (size_t i = 1; i < kEntries; ++i) {
    auto e = load<format::Entry>(original.data() + i * format::kEntrySize);
    auto p = load<format::Entry>(original.data() + (i - 1) * format::kEntrySize);
    if (i % 3 == 0) {
      p.me_flags = static_cast<uint16_t>(p.me_flags | format::kFlagFramed);
      e.me_flags = static_cast<uint16_t>(e.me_flags | format::kFlagFramed);
      e.me_data_offset = p.me_data_offset;
      e.me_stored_size = p.me_stored_size;
      std::memcpy(original.data() + (i - 1) * format::kEntrySize, &p, sizeof p);
      std::memcpy(original.data() + i * format::kEntrySize, &e, sizeof e);
      ++shared;
    }
  }
  ASSERT_GT(shared, 800u);
  auto coded = original;
  index_codec::predict_offsets(coded, 0);
  // Only the two offsets change, and never an entry that starts a frame.
  size_t changed = 0;
  for (size_t i = 0; i < kEntries; ++i) {
    auto o = load<format::Entry>(original.data() + i * format::kEntrySize);
    auto c = load<format::Entry>(coded.data() + i * format::kEntrySize);
    const bool first = i % format::kIndexFrameEntries == 0;
    if (first) {
      EXPECT_EQ(std::memcmp(&o, &c, sizeof o), 0) << i;
    }
    changed += o.me_name_offset != c.me_name_offset;
    o.me_name_offset = c.me_name_offset;
    o.me_stream_offset = c.me_stream_offset;
    EXPECT_EQ(std::memcmp(&o, &c, sizeof o), 0) << i;
  }
  EXPECT_GT(changed, kEntries - 10);
  // Whole, and each frame alone (as a reader inflates them).
  auto whole = coded;
  index_codec::unpredict_offsets(whole, 0);
  EXPECT_EQ(whole, original);
  const size_t per = size_t{format::kIndexFrameEntries} * format::kEntrySize;
  for (size_t at = 0; at < coded.size(); at += per) {
    std::vector<std::byte> frame(coded.begin() + static_cast<ptrdiff_t>(at),
                                 coded.begin() + static_cast<ptrdiff_t>(std::min(coded.size(), at + per)));
    index_codec::unpredict_offsets(frame, at / format::kEntrySize);
    EXPECT_TRUE(std::equal(frame.begin(), frame.end(), original.begin() + static_cast<ptrdiff_t>(at))) << at;
  }
}

TEST(IndexCompressed, AColdLookupReadsTheHeadAndTheIndexOnly) {
  TempDir tmp;
  test::write_file(tmp / "c.mmar", compressed());
  auto src = Source::open(tmp / "c.mmar", {.force_pread = true});
  ASSERT_TRUE(src.ok());
  auto a = Archive::open(std::move(*src));
  ASSERT_TRUE(a.ok()) << a.error().message();
  EXPECT_EQ(a->source().reads(), 2u) << "the first 4 KiB, then the index (under 256 KiB) whole";
  auto m = a->find(name_of(2345));
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(a->source().reads(), 2u) << "its frames inflated from the bytes read at open";
}

TEST(IndexCompressed, AutomaticKeepsThePlainIndexWhenMembersAreRaw) {
  const auto raw = build(IndexStorage::automatic, Codec::none);
  EXPECT_EQ(superblock(raw).sb_flags & format::kSbFlagIndexFramed, 0u) << "zero-copy archives stay mapped in place";
  const auto forced = build(IndexStorage::compressed, Codec::none);
  EXPECT_NE(superblock(forced).sb_flags & format::kSbFlagIndexFramed, 0u);
  auto a = Archive::open(Source::borrow(forced, "forced.mmar"));
  ASSERT_TRUE(a.ok()) << a.error().message();
  expect_lookups(*a);
}

// The stored index and where frame k's stored bytes are.
struct IndexPlace {
  uint64_t offset, size;
  frames::Table table;
  frames::Frame frame(const std::vector<std::byte>& b, uint32_t k) const {
    std::span<const std::byte> s = std::span(b).subspan(offset, size);
    const frames::Lookup l = frames::lookup(table, k);
    auto f = frames::frame_at(table, k, s.subspan(l.anchors_at, l.anchors_length),
                              s.subspan(l.entries_at, l.entries_length), "index", offset);
    EXPECT_TRUE(f.ok());
    return *f;
  }
};
IndexPlace place(const std::vector<std::byte>& b) {
  const auto sb = superblock(b);
  auto t = frames::parse_header(std::span(b).subspan(sb.sb_index_offset, sb.sb_index_size), sb.sb_index_size, "index",
                                sb.sb_index_offset);
  EXPECT_TRUE(t.ok());
  return IndexPlace{sb.sb_index_offset, sb.sb_index_size, *t};
}

TEST(IndexCompressed, ADamagedFrameIsAnErrorNamingTheIndexFrameNeverOtherBytes) {
  auto b = compressed();
  const IndexPlace p = place(b);
  const frames::Frame f1 = p.frame(b, 1);  // entries of members 1024 .. 2047
  b[p.offset + f1.begin + (f1.end - f1.begin) / 2] ^= std::byte{0x40};
  auto a = Archive::open(Source::borrow(b, "bad.mmar"));
  ASSERT_TRUE(a.ok()) << "open reads no frame: " << a.error().message();
  auto hit = a->find(name_of(5));  // frame 0 and names: fine
  EXPECT_TRUE(hit.ok()) << hit.error().message();
  auto m = a->at(1500);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code(), Errc::checksum);
  EXPECT_ERROR_CONTAINS(m.error().message(), "bad.mmar: index: frame 1: checksum mismatch (at offset 0x");
  auto problems = a->verify();
  ASSERT_TRUE(problems.ok()) << problems.error().message();
  ASSERT_FALSE(problems->empty());
  EXPECT_ERROR_CONTAINS(problems->front().message, "index checksum mismatch");
  auto checked = Archive::open(Source::borrow(b, "bad.mmar"), OpenOptions{.verify_index = true});
  ASSERT_FALSE(checked.ok());
  EXPECT_ERROR_CONTAINS(checked.error().message(), "index checksum mismatch");
  // The CLI: a one-line error, exit 1.
  MMAR_SKIP_WITHOUT_CLI();
  TempDir tmp;
  test::write_file(tmp / "bad.mmar", b);
  auto r = test::run_child({kMmar, "list", "-f", tmp / "bad.mmar"});
  EXPECT_EQ(r.status, 1);
  EXPECT_ERROR_CONTAINS(r.err, "index: frame 1: checksum mismatch");
}

TEST(IndexCompressed, BadTablesAndFlagsAreRefusedAtOpen) {
  const auto& good = compressed();
  const IndexPlace p = place(good);
  {
    auto b = good;  // the stream's magic
    b[p.offset] = std::byte{'X'};
    auto a = Archive::open(Source::borrow(b, "m.mmar"));
    ASSERT_FALSE(a.ok());
    EXPECT_ERROR_CONTAINS(a.error().message(), "m.mmar: index: frame table: bad magic");
  }
  {
    // A table that claims 2^40 inflated bytes (its own checksum right):
    // refused by its count, nothing sized from it.
    auto b = good;
    format::FrameTableHeader h;
    std::memcpy(&h, b.data() + p.offset, sizeof h);
    h.ft_size = uint64_t{1} << 40;
    h.ft_xxh3 = XXH3_64bits(&h, offsetof(format::FrameTableHeader, ft_xxh3));
    std::memcpy(b.data() + p.offset, &h, sizeof h);
    auto a = Archive::open(Source::borrow(b, "m.mmar"));
    ASSERT_FALSE(a.ok());
    EXPECT_ERROR_CONTAINS(a.error().message(), "index: frame table:");
  }
  {
    // Frames of another size than 64 KiB.
    auto b = good;
    format::FrameTableHeader h;
    std::memcpy(&h, b.data() + p.offset, sizeof h);
    h.ft_frame_log2 = 22;
    h.ft_count = 1;
    h.ft_xxh3 = XXH3_64bits(&h, offsetof(format::FrameTableHeader, ft_xxh3));
    std::memcpy(b.data() + p.offset, &h, sizeof h);
    auto a = Archive::open(Source::borrow(b, "m.mmar"));
    ASSERT_FALSE(a.ok());
  }
  {
    // More members than the inflated index holds.
    auto b = good;
    test::patch_superblock(b, [](format::Superblock& s) { s.sb_member_count = 1'000'000; });
    auto a = Archive::open(Source::borrow(b, "m.mmar"));
    ASSERT_FALSE(a.ok());
    EXPECT_ERROR_CONTAINS(a.error().message(), "1000000 members do not fit an index of");
  }
  {
    // Deltas never apply to a compressed table.
    auto b = good;
    test::patch_superblock(b, [](format::Superblock& s) { s.sb_flags = s.sb_flags | format::kSbFlagIndexDelta; });
    auto a = Archive::open(Source::borrow(b, "m.mmar"));
    ASSERT_FALSE(a.ok());
    EXPECT_ERROR_CONTAINS(a.error().message(), "an index delta over a compressed index");
  }
}

// Change the inflated index of `b` with `fn` and store it compressed again
// (checksums right): hostile entries inside a compressed index.
void recompress(std::vector<std::byte>& b, const std::function<void(std::vector<std::byte>&)>& fn) {
  const auto sb = superblock(b);
  ASSERT_NE(sb.sb_flags & format::kSbFlagIndexFramed, 0u);
  ASSERT_EQ(sb.sb_index_offset + sb.sb_index_size, b.size());
  auto plain = test::inflated_index(b);
  fn(plain);
  uint32_t flags = 0;
  auto stored = index_codec::store_index(plain, sb.sb_member_count, IndexStorage::compressed, true, flags);
  ASSERT_TRUE(stored.ok());
  ASSERT_NE(flags & format::kSbFlagIndexFramed, 0u);
  b.resize(sb.sb_index_offset);
  b.insert(b.end(), stored->begin(), stored->end());
  test::patch_superblock(b, [&](format::Superblock& s) {
    s.sb_index_size = stored->size();
    s.sb_index_xxh3 = XXH3_64bits(stored->data(), stored->size());
  });
}

TEST(IndexCompressed, HostileEntriesInsideAreErrorsWithBoundedMemory) {
  {
    // A name 4 GiB long: refused by the entry check, nothing of that size
    // asked of the index (it was a 4 GiB buffer before).
    auto b = compressed();
    recompress(b, [](std::vector<std::byte>& idx) {
      format::Entry e;
      std::memcpy(&e, idx.data() + 7 * format::kEntrySize, sizeof e);
      e.me_name_len = 0xffffffffu;
      std::memcpy(idx.data() + 7 * format::kEntrySize, &e, sizeof e);
    });
    auto a = Archive::open(Source::borrow(b, "h.mmar"));
    ASSERT_TRUE(a.ok()) << a.error().message();
    auto m = a->at(7);
    ASSERT_FALSE(m.ok());
    EXPECT_ERROR_CONTAINS(m.error().message(), "h.mmar: member 7: name [");
    // At the compressed index's offset: the entry has none of its own.
    EXPECT_ERROR_CONTAINS(m.error().message(), "(at offset " + hex(superblock(b).sb_index_offset) + ")");
    EXPECT_TRUE(a->at(8).ok());
  }
  {
    // An attribute record claiming 4 GiB: read no further than 1 MiB.
    auto b = compressed();
    recompress(b, [](std::vector<std::byte>& idx) {
      format::Entry e;
      std::memcpy(&e, idx.data() + 9 * format::kEntrySize, sizeof e);
      e.me_flags = e.me_flags | format::kFlagAttrs;
      std::memcpy(idx.data() + 9 * format::kEntrySize, &e, sizeof e);
      const uint64_t at = uint64_t{kMembers} * format::kEntrySize + e.me_name_offset + e.me_name_len;
      const uint32_t huge = 0xfffffff0u;
      std::memcpy(idx.data() + at, &huge, 4);
    });
    auto a = Archive::open(Source::borrow(b, "h.mmar"));
    ASSERT_TRUE(a.ok()) << a.error().message();
    auto m = a->at(9);
    ASSERT_FALSE(m.ok());
    EXPECT_ERROR_CONTAINS(m.error().message(), "over the 1 MiB limit");
  }
  {
    // A table whose count matches a size of 2^32 + 1 MiB: a few hundred KB
    // of stored bytes cannot claim that (at most 64 times as many).
    auto b = compressed();
    const auto sb = superblock(b);
    format::FrameTableHeader h;
    std::memcpy(&h, b.data() + sb.sb_index_offset, sizeof h);
    h.ft_size = (uint64_t{1} << 32) + (1u << 20);
    h.ft_count = static_cast<uint32_t>((h.ft_size.get() + 0xffff) >> 16);
    h.ft_xxh3 = XXH3_64bits(&h, offsetof(format::FrameTableHeader, ft_xxh3));
    std::memcpy(b.data() + sb.sb_index_offset, &h, sizeof h);
    // Room for the table and a byte per frame, as parse_header asks.
    b.resize(b.size() + frames::table_bytes(2, h.ft_count) + h.ft_count, std::byte{0});
    test::patch_superblock(b, [&](format::Superblock& s) { s.sb_index_size = b.size() - s.sb_index_offset; });
    auto a = Archive::open(Source::borrow(b, "h.mmar"));
    ASSERT_FALSE(a.ok());
    EXPECT_ERROR_CONTAINS(a.error().message(), "at most 64 times as many");
  }
}

// An index larger than the 256 KiB read at open: lookups read the frames
// of the fence's run (table parts and frames beyond the head), a failing
// reader is an error, never other bytes.
TEST(IndexCompressed, ALargeIndexOverARangeReaderReadsItsRunsFrames) {
  WriteOptions o;
  o.mtime_ns = 1;
  Writer w(o);
  std::mt19937_64 rng(3);
  std::vector<std::string> names;
  for (int i = 0; i < 20000; ++i) {
    char b[80];
    std::snprintf(b, sizeof b, "d%03d/%016llx%016llx", i % 211, static_cast<unsigned long long>(rng()),
                  static_cast<unsigned long long>(rng()));
    names.push_back(b);
    ASSERT_TRUE(w.add_bytes(names.back(), test::to_bytes("the body of member " + std::to_string(i))).ok());
  }
  TempDir tmp;
  ASSERT_TRUE(w.write(tmp / "l.mmar").ok());
  auto bytes = std::make_shared<std::vector<std::byte>>(test::read_file(tmp / "l.mmar"));
  const auto sb = superblock(*bytes);
  ASSERT_NE(sb.sb_flags & format::kSbFlagIndexFramed, 0u);
  ASSERT_GT(sb.sb_index_size, 300u << 10) << "larger than what open reads";
  auto reads = std::make_shared<std::atomic<int>>(0);
  auto fail_after = std::make_shared<std::atomic<int>>(1 << 30);
  auto remote = Source::from_reader("l.mmar", bytes->size(),
                                    [=](uint64_t off, std::span<std::byte> out) -> Result<void> {
                                      if (++*reads > *fail_after) return Error(Errc::io, "l.mmar: connection reset");
                                      std::memcpy(out.data(), bytes->data() + off, out.size());
                                      return success();
                                    });
  auto a = Archive::open(remote);
  ASSERT_TRUE(a.ok()) << a.error().message();
  EXPECT_EQ(reads->load(), 2);
  std::sort(names.begin(), names.end());
  for (int i : {0, 7777, 19999}) {
    const int before = reads->load();
    auto m = a->find(names[static_cast<size_t>(i)]);
    ASSERT_TRUE(m.ok()) << m.error().message();
    EXPECT_EQ(m->index, static_cast<uint32_t>(i));
    EXPECT_LE(reads->load() - before, 2) << "the run's entries, then its names: lookup " << i;
  }
  auto plain_ok = Archive::open(Source::borrow(*bytes, "mapped.mmar"));
  ASSERT_TRUE(plain_ok.ok());
  EXPECT_EQ(listing(*plain_ok), listing(*a));
  // A fresh reader whose third read fails: the lookup is an error.
  *fail_after = 2;
  *reads = 0;
  auto b = Archive::open(remote);
  ASSERT_TRUE(b.ok()) << b.error().message();
  auto m = b->find(names[12345]);
  ASSERT_FALSE(m.ok());
  EXPECT_ERROR_CONTAINS(m.error().message(), "connection reset");
}

// Threads looking up and listing through one Archive: frames inflated once
// and published to all (mapped), runs shared through the lazy index
// (pread); every answer as the plain index gives it. (ThreadSanitizer runs
// this too.)
TEST(IndexCompressed, ConcurrentLookupsAgree) {
  TempDir tmp;
  test::write_file(tmp / "c.mmar", compressed());
  for (bool pread : {false, true}) {
    SCOPED_TRACE(pread ? "pread" : "mapped");
    auto src = Source::open(tmp / "c.mmar", {.force_pread = pread});
    ASSERT_TRUE(src.ok());
    auto a = Archive::open(std::move(*src));
    ASSERT_TRUE(a.ok()) << a.error().message();
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937 rng(static_cast<unsigned>(t));
        for (int n = 0; n < 400; ++n) {
          const int i = static_cast<int>(rng() % kMembers);
          auto m = a->find(name_of(i));
          if (!m.ok() || m->name != name_of(i)) {
            ++wrong;
            continue;
          }
          auto bytes = a->read(*m);
          if (!bytes.ok() || std::string(reinterpret_cast<const char*>(bytes->data()), bytes->size()) != body_of(i)) {
            ++wrong;
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(wrong.load(), 0);
  }
}

UniqueFd content_fd(const TempDir& tmp, const std::string& name, const std::string& content) {
  const std::string path = tmp / name;
  test::write_file(path, test::to_bytes(content));
  return UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
}

TEST(IndexCompressed, UpdatesWriteAPlainTableThenDeltasAndCompactionCompressesAgain) {
  TempDir tmp;
  const std::string path = tmp / "u.mmar";
  test::write_file(path, compressed());
  auto u = ArchiveUpdater::open(path, {.compact_ratio = 0});
  ASSERT_TRUE(u.ok()) << u.error().message();
  auto commit = [&](const std::string& name, const std::string& body) {
    UniqueFd fd = content_fd(tmp, "c", body);
    UpdateMember m;
    m.name = name;
    m.mode = S_IFREG | 0644;
    m.data_fd = fd.get();
    m.size = body.size();
    auto r = u->commit({m}, {});
    EXPECT_TRUE(r.ok()) << r.error().message();
    return r.ok() ? r->full_index : false;
  };
  EXPECT_TRUE(commit("new/one", "first")) << "a delta may not apply to the compressed table";
  auto sb = superblock(test::read_file(path));
  EXPECT_EQ(sb.sb_flags & (format::kSbFlagIndexFramed | format::kSbFlagIndexDelta), 0u);
  EXPECT_FALSE(commit("new/two", "second")) << "then deltas, over the plain table";
  sb = superblock(test::read_file(path));
  EXPECT_EQ(sb.sb_flags & format::kSbFlagIndexDelta, format::kSbFlagIndexDelta);
  EXPECT_EQ(sb.sb_flags & format::kSbFlagIndexFramed, 0u);
  auto check = [&]() {
    auto a = Archive::open(path);
    ASSERT_TRUE(a.ok()) << a.error().message();
    EXPECT_EQ(a->size(), static_cast<uint32_t>(kMembers + 2));
    for (auto [name, body] : {std::pair<std::string, std::string>{"new/one", "first"}, {"new/two", "second"},
                              {name_of(77), body_of(77)}, {name_of(2999), body_of(2999)}}) {
      auto m = a->find(name);
      ASSERT_TRUE(m.ok()) << m.error().message();
      auto bytes = a->read(*m);
      ASSERT_TRUE(bytes.ok());
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(bytes->data()), bytes->size()), body);
    }
    auto problems = a->verify();
    ASSERT_TRUE(problems.ok());
    EXPECT_TRUE(problems->empty()) << problems->front().message;
  };
  check();
  ASSERT_TRUE(u->compact().ok());
  sb = superblock(test::read_file(path));
  EXPECT_NE(sb.sb_flags & format::kSbFlagIndexFramed, 0u) << "compaction stores the index as create does";
  check();
  EXPECT_TRUE(commit("new/three", "third")) << "again a plain table first";
}

TEST(IndexCompressed, TheCommandChoosesAndCompactConverts) {
  MMAR_SKIP_WITHOUT_CLI();
  TempDir tmp;
  const std::string dir = tmp / "in";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  for (int i = 0; i < 200; ++i) test::write_file(dir + "/f" + std::to_string(i), test::to_bytes(body_of(i) + body_of(i)));
  auto flags = [&](const std::string& p) { return superblock(test::read_file(p)).sb_flags.get(); };
  auto r = test::run_child({kMmar, "create", "-f", tmp / "a.mmar", "-C", dir, "."});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(flags(tmp / "a.mmar") & format::kSbFlagIndexFramed, 0u);
  r = test::run_child({kMmar, "create", "--index", "plain", "-f", tmp / "b.mmar", "-C", dir, "."});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(flags(tmp / "b.mmar") & format::kSbFlagIndexFramed, 0u);
  EXPECT_GT(test::read_file(tmp / "b.mmar").size(), test::read_file(tmp / "a.mmar").size());
  r = test::run_child({kMmar, "create", "--index", "zip", "-f", tmp / "c.mmar", "-C", dir, "."});
  EXPECT_EQ(r.status, 2);
  EXPECT_ERROR_CONTAINS(r.err, "--index must be auto, plain or compressed");
  r = test::run_child({kMmar, "compact", "--index", "compressed", "-f", tmp / "b.mmar"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(flags(tmp / "b.mmar") & format::kSbFlagIndexFramed, 0u);
  r = test::run_child({kMmar, "verify", "-f", tmp / "b.mmar"});
  EXPECT_EQ(r.status, 0) << r.err;
  auto la = test::run_child({kMmar, "list", "-l", "-f", tmp / "a.mmar"});
  auto lb = test::run_child({kMmar, "list", "-l", "-f", tmp / "b.mmar"});
  EXPECT_EQ(la.out, lb.out);
}

}  // namespace
}  // namespace mmar
