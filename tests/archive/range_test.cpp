// SPDX-License-Identifier: BSD-2-Clause
// The byte-range layer: an Archive over a Source that only answers range
// reads (what a remote archive will be) finds members in three reads and
// reads a framed member's range without touching the rest; read_batch
// merges nearby ranges; a failing reader is an error, never other bytes.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>

#include "mmar/archive.h"
#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;

struct Counting {
  std::vector<std::byte> bytes;
  std::atomic<uint64_t> bytes_read{0};
  std::atomic<bool> fail{false};
};

Source remote(const std::shared_ptr<Counting>& c) {
  return Source::from_reader("remote.mmar", c->bytes.size(), [c](uint64_t off, std::span<std::byte> out) -> Result<void> {
    if (c->fail) return Error(Errc::io, "remote.mmar: connection reset");
    std::memcpy(out.data(), c->bytes.data() + off, out.size());
    c->bytes_read += out.size();
    return success();
  });
}

std::string text(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s;
  while (s.size() < n) s += "word" + std::to_string(rng() % 1000) + " ";
  s.resize(n);
  return s;
}

std::shared_ptr<Counting> big_archive(IndexStorage index = IndexStorage::plain) {
  TempDir tmp;
  Writer w({.index = index});
  for (int i = 0; i < 5000; ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "dir%02d/file%05d.txt", i % 50, i);
    EXPECT_TRUE(w.add_bytes(name, test::to_bytes(text(200 + i % 300, static_cast<uint32_t>(i)))).ok());
  }
  EXPECT_TRUE(w.add_bytes("large.bin", test::to_bytes(text(3 << 20, 99))).ok());
  EXPECT_TRUE(w.write(tmp / "r.mmar").ok());
  auto c = std::make_shared<Counting>();
  c->bytes = test::read_file(tmp / "r.mmar");
  return c;
}

TEST(Range, ColdLookupIsThreeReadsAndARangeReadsItsFrameOnly) {
  auto c = big_archive();
  auto a = Archive::open(remote(c));
  ASSERT_TRUE(a.ok()) << a.error().message();
  EXPECT_EQ(a->source().reads(), 1u) << "superblocks and the name fence in one read";
  EXPECT_TRUE(a->has_name_fence());
  auto m = a->find("dir07/file02357.txt");
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(a->source().reads(), 3u) << "the fence's run of entries, then their names";
  EXPECT_FALSE(a->find("dir07/file02357.txu").ok());
  EXPECT_LE(a->source().reads(), 4u);
  auto bytes = a->read(*m);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message();
  EXPECT_EQ(bytes->str(), text(200 + 2357 % 300, 2357));
  // A range of a 3 MiB framed member: its table and one frame, not 3 MiB.
  auto big = a->find("large.bin");
  ASSERT_TRUE(big.ok());
  ASSERT_TRUE(big->framed);
  const uint64_t before = c->bytes_read;
  std::vector<char> out(100);
  ASSERT_TRUE(a->read(*big, 2 << 20, out.size(), out.data()).ok());
  EXPECT_EQ(std::string(out.data(), out.size()), text(3 << 20, 99).substr(2 << 20, 100));
  EXPECT_LT(c->bytes_read - before, 200u << 10);
  // Every member reads back through the lazy index as through a mapping.
  auto mapped = Archive::open(Source::borrow(c->bytes, "mapped.mmar"));
  ASSERT_TRUE(mapped.ok());
  for (uint32_t i = 0; i < mapped->size(); i += 97) {
    auto x = mapped->at(i);
    auto y = a->at(i);
    ASSERT_TRUE(x.ok() && y.ok());
    EXPECT_EQ(x->name, y->name);
    EXPECT_EQ(a->find(x->name)->index, i);
    EXPECT_EQ(mapped->read(*x)->str(), a->read(*y)->str());
  }
  auto problems = a->verify();
  ASSERT_TRUE(problems.ok());
  EXPECT_TRUE(problems->empty());
}

// A compressed index (docs/FORMAT.md "Compressed index") of 5,000 members
// is smaller than 256 KiB: read whole at open with the head, so a cold
// lookup needs no further read before the member's own.
TEST(Range, ColdLookupOfACompressedIndexIsTwoReadsThenTheMember) {
  auto c = big_archive(IndexStorage::compressed);
  auto a = Archive::open(remote(c));
  ASSERT_TRUE(a.ok()) << a.error().message();
  EXPECT_EQ(a->source().reads(), 2u) << "the head, then the compressed index";
  EXPECT_TRUE(a->has_name_fence());
  auto m = a->find("dir07/file02357.txt");
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_FALSE(a->find("dir07/file02357.txu").ok());
  EXPECT_EQ(a->source().reads(), 2u) << "frames inflated from the bytes already read";
  auto bytes = a->read(*m);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message();
  EXPECT_EQ(bytes->str(), text(200 + 2357 % 300, 2357));
  EXPECT_EQ(a->source().reads(), 3u);
  auto plain = Archive::open(remote(big_archive(IndexStorage::plain)));
  ASSERT_TRUE(plain.ok());
  for (uint32_t i = 0; i < a->size(); i += 97) {
    auto x = plain->at(i);
    auto y = a->at(i);
    ASSERT_TRUE(x.ok() && y.ok());
    EXPECT_EQ(x->name, y->name);
    auto found = a->find(x->name);
    ASSERT_TRUE(found.ok()) << found.error().message();
    EXPECT_EQ(found->index, i);
    auto rx = plain->read(*x), ry = a->read(*y);
    ASSERT_TRUE(rx.ok() && ry.ok());
    EXPECT_EQ(rx->str(), ry->str());
  }
}

TEST(Range, AFailingReaderIsAnErrorNotOtherBytes) {
  auto c = big_archive();
  auto a = Archive::open(remote(c));
  ASSERT_TRUE(a.ok());
  c->fail = true;
  auto m = a->find("dir01/file00001.txt");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message().find("connection reset"), std::string::npos) << m.error().message();
  c->fail = false;
  m = a->find("dir01/file00001.txt");
  ASSERT_TRUE(m.ok()) << m.error().message();
  c->fail = true;
  auto r = a->read(*m);
  EXPECT_FALSE(r.ok());
}

TEST(Range, BatchReadsMergeNearbyRanges) {
  std::vector<std::byte> bytes(1 << 20);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>(i * 7);
  auto c = std::make_shared<Counting>();
  c->bytes = bytes;
  Source s = remote(c);
  std::vector<Source::Range> ranges = {{1000, 10}, {100, 20}, {2000, 5}, {900000, 30}};
  auto got = s.read_batch(ranges);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(s.reads(), 2u) << "100..2005 in one read, 900000 in another";
  for (size_t i = 0; i < ranges.size(); ++i) {
    ASSERT_EQ((*got)[i].size(), ranges[i].size);
    EXPECT_EQ(std::memcmp((*got)[i].data(), bytes.data() + ranges[i].offset, ranges[i].size), 0);
  }
  std::vector<Source::Range> outside = {{(1 << 20) - 5, 10}};
  EXPECT_FALSE(s.read_batch(outside).ok());
}

}  // namespace
}  // namespace mmar

namespace mmar {
namespace {

// The lazy index shared by threads (the Archive is documented thread-safe):
// every thread walks and looks up every member at once, so blocks are missed
// and loaded concurrently; names must stay valid and right.
TEST(Range, ThreadsShareTheLazyIndex) {
  auto c = big_archive();
  auto a = Archive::open(remote(c));
  ASSERT_TRUE(a.ok());
  auto mapped = Archive::open(Source::borrow(c->bytes, "mapped.mmar"));
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint32_t k = 0; k < a->size(); ++k) {
        const uint32_t i = (k * 7 + static_cast<uint32_t>(t) * 1013) % a->size();
        auto m = a->at(i);
        auto want = mapped->at(i);
        if (!m.ok() || !want.ok() || m->name != want->name || m->data_offset != want->data_offset) {
          ++bad;
          continue;
        }
        auto f = a->find(want->name);
        if (!f.ok() || f->index != i) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace mmar
