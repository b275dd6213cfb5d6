// SPDX-License-Identifier: BSD-2-Clause
// Archive::prefetch (a sequential reader's read-ahead: the mount's) and the
// frame cache's flights: frames prefetched are read from the cache without
// touching the source again, and two readers of one frame inflate it once
// (the second waits for the first) -- a sequential read through the mount
// inflated every frame twice before, once per thread.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

#include "mmar/archive.h"
#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;

constexpr uint64_t kFrame = 4096;
constexpr uint64_t kHead = uint64_t{64} << 10;  // what a reader keeps of a stream's start

// 1 MiB that compresses about 2:1: 256 frames, stored well past the 64 KiB
// a reader keeps of the stream's start.
std::vector<std::byte> half_random(size_t n) {
  std::mt19937 rng(11);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng() & 15);
  return v;
}

struct Recorder {
  std::mutex mu;
  std::vector<std::pair<uint64_t, uint64_t>> reads;
  std::function<void(uint64_t offset)> hook;  // called outside the lock
  size_t past(uint64_t from) {
    std::lock_guard lock(mu);
    size_t n = 0;
    for (const auto& r : reads) n += r.first >= from ? 1 : 0;
    return n;
  }
  void clear() {
    std::lock_guard lock(mu);
    reads.clear();
  }
};

struct Opened {
  std::vector<std::byte> data, bytes;
  std::shared_ptr<Recorder> rec = std::make_shared<Recorder>();
  std::optional<Archive> archive;
  Member m;
};

void open_recorded(Opened& o) {
  TempDir tmp;
  o.data = half_random(size_t{1} << 20);
  Writer w({.frame_size = kFrame});
  ASSERT_TRUE(w.add_bytes("f", o.data).ok());
  ASSERT_TRUE(w.write(tmp / "p.mmar").ok());
  o.bytes = test::read_file(tmp / "p.mmar");
  auto rec = o.rec;
  const std::vector<std::byte>* bytes = &o.bytes;
  Source src = Source::from_reader("p.mmar", o.bytes.size(),
                                   [bytes, rec](uint64_t offset, std::span<std::byte> out) -> Result<void> {
                                     {
                                       std::lock_guard lock(rec->mu);
                                       rec->reads.emplace_back(offset, out.size());
                                     }
                                     if (rec->hook) rec->hook(offset);
                                     std::memcpy(out.data(), bytes->data() + offset, out.size());
                                     return success();
                                   });
  auto a = Archive::open(std::move(src));
  ASSERT_TRUE(a.ok()) << a.error().message();
  o.archive.emplace(std::move(*a));
  auto m = o.archive->find("f");
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(m->framed);
  ASSERT_GT(m->stored_size, 2 * kHead) << "the test needs frames past the kept head";
  o.m = *m;
  std::byte first[8];
  ASSERT_TRUE(o.archive->read(o.m, 0, sizeof first, first).ok());  // the stream's head (and table), kept
}

TEST(Prefetch, FramesPrefetchedAreReadWithoutTouchingTheSourceAgain) {
  Opened o;
  open_recorded(o);
  const Archive& a = *o.archive;
  const uint64_t off = 200 * kFrame + 5, len = 3 * kFrame;  // frames 200 ... 203
  o.rec->clear();
  a.prefetch(o.m, off, len);
  EXPECT_GE(o.rec->past(o.m.data_offset + kHead), 1u) << "prefetch read no frame";
  o.rec->clear();
  auto got = a.read_bytes(o.m, off, len);
  ASSERT_TRUE(got.ok()) << got.error().message();
  ASSERT_EQ(got->size(), len);
  EXPECT_EQ(std::memcmp(got->data(), o.data.data() + off, len), 0);
  EXPECT_EQ(o.rec->past(0), 0u) << "the read went to the source again";
  // A frame not prefetched does go to the source (the check above can fail).
  o.rec->clear();
  ASSERT_TRUE(a.read_bytes(o.m, 230 * kFrame, 10).ok());
  EXPECT_GE(o.rec->past(o.m.data_offset + kHead), 1u);
}

TEST(Prefetch, IsAHintThatNeverFails) {
  Opened o;
  open_recorded(o);
  const Archive& a = *o.archive;
  o.rec->clear();
  a.prefetch(o.m, o.m.size, 100);  // past the end
  a.prefetch(o.m, 10, 0);          // nothing
  EXPECT_EQ(o.rec->past(0), 0u);
  a.prefetch(o.m, o.m.size - 10, UINT64_MAX);  // cut at the end: the last frame
  auto got = a.read_bytes(o.m, o.m.size - 10, 10);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(std::memcmp(got->data(), o.data.data() + o.m.size - 10, 10), 0);

  // A damaged frame: prefetch says nothing, caches nothing, and the read
  // reports the damage.
  TempDir tmp;
  Writer w({.frame_size = kFrame});
  ASSERT_TRUE(w.add_bytes("f", o.data).ok());
  ASSERT_TRUE(w.write(tmp / "d.mmar").ok());
  auto bytes = test::read_file(tmp / "d.mmar");
  auto clean = Archive::open(Source::borrow(bytes, "d.mmar"));
  ASSERT_TRUE(clean.ok());
  auto m = clean->find("f");
  ASSERT_TRUE(m.ok());
  const uint64_t mid = m->data_offset + m->stored_size / 2;  // inside some frame's stored bytes
  bytes[mid] ^= std::byte{0x5a};
  auto damaged = Archive::open(Source::borrow(bytes, "d.mmar"));
  ASSERT_TRUE(damaged.ok());
  damaged->prefetch(*m, 0, m->size);
  auto whole = damaged->read(*m);
  ASSERT_FALSE(whole.ok());
  EXPECT_NE(whole.error().message().find("frame"), std::string::npos) << whole.error().message();
}

TEST(Prefetch, TwoReadersOfOneFrameInflateItOnce) {
  Opened o;
  open_recorded(o);
  const Archive& a = *o.archive;
  const uint64_t off = 150 * kFrame + 100, len = 1000;  // inside frame 150
  const uint64_t past_head = o.m.data_offset + kHead;
  // The first reader to reach the frame's stored bytes stalls there, holding
  // the frame in flight, until the second reader has started its read.
  std::atomic<bool> armed{true}, first_in{false}, second_started{false};
  // Spins end at a deadline: a broken reader fails the test, never hangs it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  const auto before_deadline = [&] { return std::chrono::steady_clock::now() < deadline; };
  o.rec->hook = [&](uint64_t offset) {
    if (offset < past_head || !armed.exchange(false)) return;
    first_in = true;
    while (!second_started && before_deadline()) std::this_thread::yield();
    // Give the second reader time to reach the frame: without flights it
    // reads the frame's bytes itself; with them it waits for this one.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  };
  o.rec->clear();
  std::vector<std::byte> one(len), two(len);
  std::thread first([&] { ASSERT_TRUE(a.read(o.m, off, len, one.data()).ok()); });
  while (!first_in && before_deadline()) std::this_thread::yield();
  EXPECT_TRUE(first_in) << "the first reader never reached the frame's bytes";
  std::thread second([&] {
    second_started = true;
    ASSERT_TRUE(a.read(o.m, off, len, two.data()).ok());
  });
  first.join();
  second.join();
  EXPECT_EQ(std::memcmp(one.data(), o.data.data() + off, len), 0);
  EXPECT_EQ(std::memcmp(two.data(), o.data.data() + off, len), 0);
  EXPECT_EQ(o.rec->past(past_head), 1u) << "the frame was read (and inflated) by both readers";
}

}  // namespace
}  // namespace mmar
