// SPDX-License-Identifier: BSD-2-Clause
// Btf is documented thread-safe: one handle shared by threads that look up,
// resolve IDs and count types while the lazy index and the name index are
// being built. Run under ThreadSanitizer by `./x test` (build/tsan), which
// sees any access to the index that is not ordered by its publication.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "mmar/btf.h"

namespace mmar {
namespace {

constexpr uint32_t kStructs = 6000;  // enough records for several index chunks
constexpr int kThreads = 4;

// Many named structs (each with a member, so records differ in size),
// typedefs to them, and a pointer each: a BTF of ~18,000 types.
std::vector<std::byte> many_types() {
  BtfBuilder b;
  const uint32_t i32 = *b.add_int("int", 4, 1);
  for (uint32_t i = 0; i < kStructs; ++i) {
    const std::string n = "s" + std::to_string(i);
    const uint32_t s = *b.add_struct(n, 8);
    EXPECT_TRUE(b.add_field("a", i32, 0).ok());
    EXPECT_TRUE(b.add_field("b", i32, 32).ok());
    EXPECT_TRUE(b.add_typedef("t" + std::to_string(i), s).ok());
    EXPECT_TRUE(b.add_ptr(s).ok());
  }
  return b.write();
}

// What one thread asks: names and IDs spread over the whole section, from
// both ends, so that the index is extended by whichever thread gets there
// first and read by the others while it grows.
void hammer(const Btf& btf, uint32_t count_want, int seed, std::atomic<int>& ready, std::atomic<int>& failures) {
  ready.fetch_add(1);
  while (ready.load() < kThreads) {
  }
  auto check = [&](bool ok) {
    if (!ok) failures.fetch_add(1);
  };
  // Each thread's first request builds a different part: the offsets to
  // the last type, the count, the name index, the whole validation.
  switch (seed % 4) {
    case 0: check(btf.type(count_want - 1).ok()); break;
    case 1: check(btf.type_count().ok()); break;
    case 2: check(btf.find("t" + std::to_string(kStructs - 1)).ok()); break;
    default: check(btf.validate().ok()); break;
  }
  for (uint32_t k = 0; k < kStructs; k += 37) {
    const uint32_t i = seed % 2 == 0 ? k : kStructs - 1 - k;
    const uint32_t id = 2 + i * 3;  // struct s<i>
    auto t = btf.type(id);
    check(t.ok() && t->kind() == BtfKind::struct_ && btf.name_of(*t) == "s" + std::to_string(i));
    auto by_name = btf.find("t" + std::to_string(i), BtfKind::typedef_);
    check(by_name.ok() && by_name->id() == id + 1 && by_name->type() == id);
    auto ptr = btf.type(id + 2);
    check(ptr.ok() && ptr->kind() == BtfKind::ptr && ptr->type() == id);
    check(btf.find("no_such_" + std::to_string(i)).error().code() == Errc::not_found);
    if (k % 10 == static_cast<uint32_t>(seed)) {
      auto count = btf.type_count();
      check(count.ok() && *count == count_want);
    }
  }
  check(btf.validate().ok());
}

void run_threads(const Btf& btf, uint32_t count_want = 2 + kStructs * 3) {
  std::atomic<int> ready{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back([&, t] { hammer(btf, count_want, t, ready, failures); });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(BtfThreads, OneBtfSharedByThreadsWhileItsIndexIsBuilt) {
  const auto bytes = many_types();
  for (int round = 0; round < 3; ++round) {  // each round a fresh, unindexed Btf
    auto btf = Btf::parse(Bytes::from_vector(bytes), "many.btf");
    ASSERT_TRUE(btf.ok()) << btf.error().message();
    run_threads(*btf);
  }
}

TEST(BtfThreads, SplitAndStoredIndexSharedByThreads) {
  const auto bytes = many_types();
  auto base = Btf::parse(Bytes::from_vector(bytes), "base.btf");
  ASSERT_TRUE(base.ok());
  // A split BTF on an unindexed base: threads index the base through it.
  BtfBuilder sb(*base);
  ASSERT_TRUE(sb.add_ptr(2).ok());
  auto split = Btf::parse_split(Bytes::from_vector(sb.write()), "split.btf", *base);
  ASSERT_TRUE(split.ok());
  run_threads(*split, 3 + kStructs * 3);
  // The stored index: nothing built lazily, but the same promise.
  auto index = base->build_index(7);
  ASSERT_TRUE(index.ok());
  auto stored = Btf::parse_indexed(Bytes::from_vector(bytes), "stored.btf", Bytes::from_vector(index->offsets),
                                   Bytes::from_vector(index->names), 7, nullptr);
  ASSERT_TRUE(stored.ok());
  ASSERT_TRUE(stored->has_stored_index());
  run_threads(*stored);
}

}  // namespace
}  // namespace mmar
