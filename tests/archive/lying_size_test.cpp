// SPDX-License-Identifier: BSD-2-Clause
// Sizes that lie: a zstd frame header and an index entry that both declare
// 3 GiB for a few stored bytes. Decompression must refuse it from the
// codec's maximum ratio, in milliseconds and without the memory, and must
// grow its output with what the stream really produces when the lie is
// small enough to pass that bound. Real data, however compressible, always
// stays within the bound.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "archive/codec.h"
#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;

const std::string kMmar = MMAR_BIN;
constexpr uint64_t kThreeGiB = uint64_t{3} << 30;
// Peak RSS allowed: the binary's idle cost plus 64 MiB, far below the
// sizes the lying headers claim (GiBs) and below the inputs streamed.
long rss_limit() { return test::rss_limit_kib(MMAR_BIN, 64 << 10); }

// A zstd frame by hand: 8-byte Frame_Content_Size = `declared`, a 1 KiB
// window (not single-segment, so the decoder accepts the header) and one
// RLE block of 1024 'z' bytes: 18 bytes that honestly produce 1024.
std::vector<std::byte> lying_zstd_frame(uint64_t declared) {
  std::vector<std::byte> f;
  auto put = [&](uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) f.push_back(static_cast<std::byte>(v >> (8 * i)));
  };
  put(0xFD2FB528, 4);                  // magic
  put(0xC0, 1);                        // Frame_Header_Descriptor: FCS field of 8 bytes
  put(0x00, 1);                        // Window_Descriptor: 2^10 bytes
  put(declared, 8);                    // Frame_Content_Size
  put(1 | (1 << 1) | (1024 << 3), 3);  // last block, RLE, 1024 bytes
  put('z', 1);
  return f;
}

// An archive with one zstd member "bomb" whose stored bytes are `frame` and
// whose entry declares `size`, checksums resealed.
std::vector<std::byte> archive_with_frame(const std::vector<std::byte>& frame, uint64_t size) {
  Writer w({.frame_size = 0});  // one stream per member (the format before frame streams)
  EXPECT_TRUE(w.add_bytes("bomb", std::vector<std::byte>(256 << 10, std::byte{'z'})).ok());
  TempDir tmp;
  EXPECT_TRUE(w.write(tmp / "a.mmar").ok());
  auto bytes = test::read_file(tmp / "a.mmar");
  auto a = Archive::open(Source::borrow(bytes, "a"));
  EXPECT_TRUE(a.ok());
  auto m = a->find("bomb");
  EXPECT_TRUE(m.ok());
  EXPECT_EQ(m->codec, Codec::zstd);
  EXPECT_GE(m->stored_size, frame.size()) << "the writer's frame must have room for ours";
  std::memcpy(bytes.data() + m->data_offset, frame.data(), frame.size());
  test::patch_entry(bytes, m->index, [&](format::Entry& e) {
    e.me_stored_size = frame.size();
    e.me_size = size;
  });
  return bytes;
}

TEST(LyingSize, ArchiveReadRefusesAFrameThatClaimsMoreThanItsBytesCanHold) {
  auto bytes = archive_with_frame(lying_zstd_frame(kThreeGiB), kThreeGiB);
  auto a = Archive::open(Source::borrow(bytes, "bomb.mmar"));
  ASSERT_TRUE(a.ok()) << a.error().message();
  auto r = a->read("bomb");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Errc::malformed);
  const std::string& msg = r.error().message();
  EXPECT_NE(msg.find("bomb.mmar: member 'bomb': zstd: declared size of 3221225472 bytes is more than 18 stored bytes"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("(at offset 0x"), std::string::npos) << msg;
}

TEST(LyingSize, OutputGrowsWithTheStreamNotWithTheDeclaredSize) {
  // 700 KiB passes the ratio bound for 18 bytes (768 KiB), but the frame
  // only produces 1024 bytes: an error, not a 700 KiB buffer filled.
  constexpr uint64_t kClaim = 700 << 10;
  auto bytes = archive_with_frame(lying_zstd_frame(kClaim), kClaim);
  auto a = Archive::open(Source::borrow(bytes, "short.mmar"));
  ASSERT_TRUE(a.ok());
  auto r = a->read("bomb");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Errc::malformed);
  EXPECT_NE(r.error().message().find("short.mmar: member 'bomb': zstd: "), std::string::npos) << r.error().message();
  // A frame cut short: the stream ends before the declared size.
  auto cut = lying_zstd_frame(kClaim);
  cut.pop_back();
  auto r1 = codec::decompress(Codec::zstd, cut, kClaim);
  ASSERT_FALSE(r1.ok());
  EXPECT_NE(r1.error().message().find("zstd: truncated frame (inflated 0 of the declared 716800 bytes)"),
            std::string::npos)
      << r1.error().message();
  // A frame producing more than it and the index declare: refused.
  auto frame = lying_zstd_frame(1000);
  auto r2 = codec::decompress(Codec::zstd, frame, 1000);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.error().code(), Errc::malformed);
  // And the honest frame inflates.
  frame = lying_zstd_frame(1024);
  auto ok = codec::decompress(Codec::zstd, frame, 1024);
  ASSERT_TRUE(ok.ok()) << ok.error().message();
  EXPECT_TRUE(std::all_of(ok->begin(), ok->end(), [](std::byte b) { return b == std::byte{'z'}; }));
}

TEST(LyingSize, XzDeclaredSizeBeyondTheRatioIsRefused) {
  std::vector<std::byte> data(1 << 20, std::byte{0});
  auto packed = codec::compress(Codec::xz, 0, data, 1);
  ASSERT_TRUE(packed.ok() && packed->has_value());
  auto r = codec::decompress(Codec::xz, **packed, kThreeGiB);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("xz: declared size of 3221225472 bytes is more than"), std::string::npos)
      << r.error().message();
  // Within the bound but more than the stream holds: a short stream.
  r = codec::decompress(Codec::xz, **packed, data.size() + 4096);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("xz: inflated to 1048576 bytes, expected 1052672"), std::string::npos)
      << r.error().message();
}

TEST(LyingSize, RealDataNeverExceedsTheBound) {
  // The most compressible input there is, at the strongest levels.
  std::vector<std::byte> zeros(16 << 20, std::byte{0});
  for (auto [codec, level] : {std::pair{Codec::zstd, 19}, std::pair{Codec::zstd, 1}, std::pair{Codec::xz, 9}}) {
    auto packed = codec::compress(codec, level, zeros, 1);
    ASSERT_TRUE(packed.ok() && packed->has_value());
    EXPECT_LE(zeros.size(), codec::max_inflated_size(codec, (*packed)->size())) << codec_name(codec);
    auto back = codec::decompress(codec, **packed, zeros.size());
    ASSERT_TRUE(back.ok()) << back.error().message();
    EXPECT_TRUE(*back == zeros);
  }
}

TEST(LyingSize, CatAndVerifyFailFastWithBoundedMemory) {
  MMAR_SKIP_WITHOUT_CLI();
  TempDir tmp;
  test::write_file(tmp / "bomb.mmar", archive_with_frame(lying_zstd_frame(kThreeGiB), kThreeGiB));
  for (const char* verb : {"cat", "verify", "extract"}) {
    SCOPED_TRACE(verb);
    std::vector<std::string> argv = {kMmar, verb, "-f", tmp / "bomb.mmar"};
    if (std::string(verb) == "cat") argv.push_back("bomb");
    if (std::string(verb) == "extract") argv.insert(argv.end(), {"-C", tmp / "x"});
    auto r = test::run_child(argv);
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), std::string(verb) == "verify" ? 2 : 1) << r.err;
    EXPECT_NE(r.err.find("member 'bomb': zstd: declared size of 3221225472 bytes"), std::string::npos) << r.err;
    EXPECT_LT(r.max_rss_kib, rss_limit()) << "peak RSS " << r.max_rss_kib << " KiB";
  }
}

}  // namespace
}  // namespace mmar
