// SPDX-License-Identifier: BSD-2-Clause
// Flip every byte and truncate at every length of a small archive: the
// reader must give a clean error or correct data, never crash (the test runs
// under ASan/UBSan too), and verify() must notice every flip that changed
// anything a reader could see.
#include <gtest/gtest.h>

#include "support/test_support.h"

namespace mmar {
namespace {

struct Expected {
  std::string name;
  uint32_t mode;
  std::string data;
};

std::vector<Expected> expected_members(const Archive& a) {
  std::vector<Expected> out;
  EXPECT_TRUE(a.for_each([&](const Member& m) -> Result<void> {
                 auto b = a.read(m);
                 EXPECT_TRUE(b.ok());
                 out.push_back({std::string(m.name), m.mode, std::string(b->str())});
                 return success();
               }).ok());
  return out;
}

// Everything a reader can observe, or the first error.
std::string observe(const std::vector<std::byte>& bytes, const std::vector<Expected>& want, bool* same) {
  *same = false;
  auto a = Archive::open(Source::borrow(bytes, "c.mmar"));
  if (!a.ok()) return a.error().message();
  if (a->format() != Format::mmar) return "c.mmar: not recognised as an archive";
  if (a->size() != want.size()) {
    // Still must be safe to walk.
    for (uint32_t i = 0; i < a->size() && i < 64; ++i) {
      auto m = a->at(i);
      if (m.ok()) (void)a->read(*m);
    }
    return "count";
  }
  bool all_same = true;
  for (uint32_t i = 0; i < a->size(); ++i) {
    auto m = a->at(i);
    if (!m.ok()) return m.error().message();
    auto found = a->find(m->name);
    (void)found;
    auto d = a->read(*m);
    if (!d.ok()) return d.error().message();
    if (m->name != want[i].name || m->mode != want[i].mode || d->str() != want[i].data) all_same = false;
  }
  *same = all_same;
  return "";
}

std::vector<std::byte> make_small(Codec codec) {
  test::TempDir tmp;
  WriteOptions o;
  o.codec = codec;
  o.threshold = 64;
  o.frame_size = 4096;  // a member of three frames, and two packed into one
  Writer w(o);
  EXPECT_TRUE(w.add_bytes("alpha", test::to_bytes("tiny")).ok());
  EXPECT_TRUE(w.add_bytes("beta/compressible", test::to_bytes(std::string(300, 'z') + "end")).ok());
  EXPECT_TRUE(w.add_bytes("beta/second", test::to_bytes(std::string(200, 'y') + "fin")).ok());
  std::string multi;
  for (int i = 0; multi.size() < 9000; ++i) multi += "frame " + std::to_string(i * 7919 % 1000) + "\n";
  EXPECT_TRUE(w.add_bytes("delta/multi", test::to_bytes(multi)).ok());
  EXPECT_TRUE(w.add_directory("beta").ok());
  EXPECT_TRUE(w.add_symlink("gamma", "alpha").ok());
  EXPECT_TRUE(w.write(tmp / "c.mmar").ok());
  return test::read_file(tmp / "c.mmar");
}

void sweep(Codec codec) {
  const auto good = make_small(codec);
  auto ga = Archive::open(Source::borrow(good, "c.mmar"));
  ASSERT_TRUE(ga.ok());
  const auto want = expected_members(*ga);
  size_t flips = 0, errors = 0, unchanged = 0, undetected = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      auto b = good;
      b[i] ^= std::byte{mask};
      ++flips;
      bool same = false;
      std::string err = observe(b, want, &same);
      if (!err.empty()) {
        ++errors;
        EXPECT_NE(err.find("c.mmar"), std::string::npos) << "error does not name the file: " << err;
        continue;
      }
      if (same) {
        ++unchanged;
        continue;
      }
      // Data changed without an error on read (a raw member's bytes or
      // metadata): verify() must report it.
      auto a = Archive::open(Source::borrow(b, "c.mmar"));
      auto problems = a->verify();
      ASSERT_TRUE(problems.ok());
      if (problems->empty()) {
        ++undetected;
        ADD_FAILURE() << "flip of byte " << i << " with mask " << int(mask) << " changed data undetected";
      }
    }
  }
  for (size_t len = 0; len < good.size(); ++len) {
    std::vector<std::byte> b(good.begin(), good.begin() + static_cast<ptrdiff_t>(len));
    bool same = false;
    std::string err = observe(b, want, &same);
    // A truncated archive loses its index (at the end): never opens as mmar.
    auto a = Archive::open(Source::borrow(b, "c.mmar"));
    if (a.ok() && a->format() == Format::mmar) {
      ADD_FAILURE() << "truncated to " << len << " still opens";
    }
  }
  EXPECT_EQ(undetected, 0u);
  EXPECT_GT(errors, 0u);
  std::printf("[sweep %s] %zu bytes, %zu flips: %zu errors, %zu harmless\n", codec_name(codec), good.size(), flips,
              errors, unchanged);
}

TEST(Corruption, EveryByteRaw) { sweep(Codec::none); }
TEST(Corruption, EveryByteZstd) { sweep(Codec::zstd); }
TEST(Corruption, EveryByteXz) { sweep(Codec::xz); }

}  // namespace
}  // namespace mmar
