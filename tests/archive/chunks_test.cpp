// SPDX-License-Identifier: BSD-2-Clause
// Chunk checksums of raw members (docs/FORMAT.md "Chunk checksums"): the
// writer gives every raw member larger than a chunk a table that ends at
// its (still page-aligned) data; a range read checks only the chunks it
// touches (over a range-only source: the bytes of those chunks, not the
// member); damage is found where it is, in the data or in the table; verify
// checks both; compaction keeps the tables; a table that lies is an error,
// never other bytes.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>

#include "archive/chunks.h"
#include "mmar/archive.h"
#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;

constexpr uint64_t kChunk = uint64_t{1} << 16;

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

struct Built {
  std::vector<std::byte> bytes;
  std::string big;  // 17 chunks and a bit
};

Built build(const TempDir& tmp) {
  Built b;
  b.big = random_bytes(16 * kChunk + 1000, 7);
  Writer w({.codec = Codec::none});
  EXPECT_TRUE(w.add_bytes("big", test::to_bytes(b.big)).ok());
  EXPECT_TRUE(w.add_bytes("exact", test::to_bytes(random_bytes(kChunk, 8))).ok());
  EXPECT_TRUE(w.add_bytes("small", test::to_bytes(random_bytes(1000, 9))).ok());
  EXPECT_TRUE(w.write(tmp / "c.mmar").ok());
  b.bytes = test::read_file(tmp / "c.mmar");
  return b;
}

chunks::Table table_of(const std::vector<std::byte>& bytes, const Member& m) {
  auto t = chunks::parse_header(std::span(bytes).subspan(m.data_offset - 16, 16), m.size, m.data_offset, "c");
  EXPECT_TRUE(t.ok()) << t.error().message();
  return t.ok() ? *t : chunks::Table{};
}

TEST(ChunkSums, LargeRawMembersHaveThemAndStayAligned) {
  TempDir tmp;
  Built b = build(tmp);
  auto a = Archive::open(Source::borrow(b.bytes, "c.mmar"));
  ASSERT_TRUE(a.ok());
  auto big = a->find("big");
  ASSERT_TRUE(big.ok());
  EXPECT_TRUE(big->chunk_sums);
  EXPECT_TRUE(big->page_aligned);
  EXPECT_EQ(big->data_offset % a->alignment(), 0u);
  const chunks::Table t = table_of(b.bytes, *big);
  EXPECT_EQ(t.count, 17u);
  EXPECT_EQ(t.log2, 16);
  EXPECT_FALSE(a->find("exact")->chunk_sums) << "one chunk: the whole checksum is enough";
  EXPECT_FALSE(a->find("small")->chunk_sums);
  auto problems = a->verify();
  ASSERT_TRUE(problems.ok());
  EXPECT_TRUE(problems->empty());
  std::string buf(100, '\0');
  ASSERT_EQ(*a->read(*big, 5 * kChunk + 10, 100, buf.data()), 100u);
  EXPECT_EQ(buf, b.big.substr(5 * kChunk + 10, 100));
}

// Over a source that only answers range reads (a remote archive), a range
// of a raw member costs its chunks and their sums, not the member.
TEST(ChunkSums, ARangeReadReadsItsChunksOnly) {
  TempDir tmp;
  Built b = build(tmp);
  auto read_bytes = std::make_shared<std::atomic<uint64_t>>(0);
  auto data = std::make_shared<std::vector<std::byte>>(b.bytes);
  auto src = Source::from_reader("remote.mmar", data->size(),
                                 [data, read_bytes](uint64_t off, std::span<std::byte> out) -> Result<void> {
                                   std::memcpy(out.data(), data->data() + off, out.size());
                                   *read_bytes += out.size();
                                   return success();
                                 });
  auto a = Archive::open(std::move(src));
  ASSERT_TRUE(a.ok());
  auto big = a->find("big");
  ASSERT_TRUE(big.ok());
  const uint64_t before = *read_bytes;
  std::string buf(200, '\0');
  // Straddles chunks 3 and 4.
  ASSERT_EQ(*a->read(*big, 4 * kChunk - 100, 200, buf.data()), 200u);
  EXPECT_EQ(buf, b.big.substr(4 * kChunk - 100, 200));
  const uint64_t cost = *read_bytes - before;
  EXPECT_LE(cost, 2 * kChunk + 4096) << "the two chunks, their sums, the header, the range";
  // The same chunks again: already checked, only the range is read.
  const uint64_t before2 = *read_bytes;
  ASSERT_EQ(*a->read(*big, 4 * kChunk - 50, 100, buf.data()), 100u);
  EXPECT_EQ(*read_bytes - before2, 100u);
}

TEST(ChunkSums, DamageIsFoundWhereItIs) {
  TempDir tmp;
  Built b = build(tmp);
  Member big;
  {
    auto a = Archive::open(Source::borrow(b.bytes, "c.mmar"));
    big = *a->find("big");
  }
  const chunks::Table t = table_of(b.bytes, big);
  auto range = [&](const std::vector<std::byte>& bytes, uint32_t chunk) -> Result<std::string> {
    auto a = Archive::open(Source::borrow(bytes, "c.mmar"));
    if (!a.ok()) return std::move(a).error();
    auto m = a->find("big");
    if (!m.ok()) return std::move(m).error();
    std::string buf(64, '\0');
    auto n = a->read(*m, uint64_t{chunk} * kChunk + 100, 64, buf.data());
    if (!n.ok()) return std::move(n).error();
    return buf;
  };
  auto verify = [&](const std::vector<std::byte>& bytes) {
    auto a = Archive::open(Source::borrow(bytes, "c.mmar"));
    auto p = a->verify();
    EXPECT_TRUE(p.ok());
    return p.ok() ? *p : std::vector<VerifyProblem>{};
  };
  {  // Data of chunk 5.
    auto bytes = b.bytes;
    bytes[big.data_offset + 5 * kChunk + 77] ^= std::byte{0x20};
    EXPECT_EQ(*range(bytes, 2), b.big.substr(2 * kChunk + 100, 64));
    auto bad = range(bytes, 5);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code(), Errc::checksum);
    EXPECT_NE(bad.error().message().find("member 'big'"), std::string::npos) << bad.error().message();
    EXPECT_NE(bad.error().message().find("chunk 5"), std::string::npos) << bad.error().message();
    auto a = Archive::open(Source::borrow(bytes, "c.mmar"));
    EXPECT_FALSE(a->read(*a->find("big")).ok()) << "the whole read checks the whole";
    EXPECT_EQ(verify(bytes).size(), 1u);
  }
  {  // Sum 3: the data is whole, but a range reader would be misled: refused, and verify says so.
    auto bytes = b.bytes;
    bytes[t.sums_offset + 3 * 8 + 2] ^= std::byte{0x01};
    auto a = Archive::open(Source::borrow(bytes, "c.mmar"));
    EXPECT_TRUE(a->read(*a->find("big")).ok());
    EXPECT_FALSE(range(bytes, 3).ok());
    EXPECT_TRUE(range(bytes, 4).ok());
    auto p = verify(bytes);
    ASSERT_EQ(p.size(), 1u);
    EXPECT_NE(p[0].message.find("chunk 3"), std::string::npos) << p[0].message;
  }
  // Every byte of the header and the sums, three ways: a range read gives
  // the right bytes or an error naming the file, and verify notices.
  const uint64_t first = t.sums_offset, last = big.data_offset;
  for (uint64_t i = first; i < last; ++i) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      auto bytes = b.bytes;
      bytes[i] ^= std::byte{mask};
      bool any_error = false;
      for (uint32_t k = 0; k < t.count; ++k) {
        auto r = range(bytes, k);
        if (r.ok()) {
          EXPECT_EQ(*r, b.big.substr(uint64_t{k} * kChunk + 100, 64)) << "byte " << i << " chunk " << k;
        } else {
          any_error = true;
          EXPECT_NE(r.error().message().find("c.mmar"), std::string::npos) << r.error().message();
        }
      }
      EXPECT_TRUE(any_error) << "flip of table byte " << i << " went unnoticed by range reads";
      EXPECT_FALSE(verify(bytes).empty()) << "flip of table byte " << i << " went unnoticed by verify";
    }
  }
}

// Threads reading ranges of one member through one Archive share its chunk
// state (run under ThreadSanitizer by ./x test).
TEST(ChunkSums, ThreadsShareTheCheckedChunks) {
  TempDir tmp;
  Built b = build(tmp);
  auto a = Archive::open(Source::borrow(b.bytes, "c.mmar"));
  ASSERT_TRUE(a.ok());
  auto big = a->find("big");
  ASSERT_TRUE(big.ok());
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<uint32_t>(t));
      std::string buf(300, '\0');
      for (int i = 0; i < 200; ++i) {
        const uint64_t off = rng() % (big->size - 300);
        auto n = a->read(*big, off, 300, buf.data());
        if (!n.ok() || *n != 300 || buf != b.big.substr(off, 300)) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(ChunkSums, CompactionKeepsThem) {
  TempDir tmp;
  Built b = build(tmp);
  const std::string path = tmp / "c.mmar";
  {
    auto u = ArchiveUpdater::open(path, {.compact_ratio = 0});
    ASSERT_TRUE(u.ok());
    std::vector<std::string> remove = {"small"};
    ASSERT_TRUE(u->commit({}, remove).ok());
    ASSERT_TRUE(u->compact().ok());
  }
  auto a = Archive::open(path);
  ASSERT_TRUE(a.ok());
  auto big = a->find("big");
  ASSERT_TRUE(big.ok());
  EXPECT_TRUE(big->chunk_sums);
  EXPECT_EQ(big->data_offset % a->alignment(), 0u);
  auto problems = a->verify();
  ASSERT_TRUE(problems.ok());
  EXPECT_TRUE(problems->empty());
  std::string buf(64, '\0');
  ASSERT_TRUE(a->read(*big, 9 * kChunk, 64, buf.data()).ok());
  EXPECT_EQ(buf, b.big.substr(9 * kChunk, 64));
}

}  // namespace
}  // namespace mmar
