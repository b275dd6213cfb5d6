// SPDX-License-Identifier: BSD-2-Clause
// Every path that hands out a whole member's bytes checks its XXH3: a
// flipped byte in a raw member makes Archive::read, `mmar cat` and `mmar
// extract` fail naming the member (nothing of it written), unless the
// caller asks for the bytes anyway (verify_checksums = false, --no-verify).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>

#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;

const std::string kMmar = MMAR_BIN;

// An archive with a good raw member "ok" and a raw member "bad" with one
// byte flipped; also returns "bad"'s original text.
std::vector<std::byte> damaged_archive(const std::string& path) {
  Writer w({.codec = Codec::none});
  EXPECT_TRUE(w.add_bytes("bad", test::to_bytes("the original bytes\n")).ok());
  EXPECT_TRUE(w.add_bytes("ok", test::to_bytes("fine\n")).ok());
  EXPECT_TRUE(w.write(path).ok());
  auto bytes = test::read_file(path);
  auto a = Archive::open(Source::borrow(bytes, "a"));
  EXPECT_TRUE(a.ok());
  auto m = a->find("bad");
  EXPECT_TRUE(m.ok());
  EXPECT_EQ(m->codec, Codec::none);
  bytes[m->data_offset] ^= std::byte{0x20};  // 't' -> 'T'
  test::write_file(path, bytes);
  return bytes;
}

TEST(ReadVerify, ArchiveReadChecksRawMembers) {
  TempDir tmp;
  auto bytes = damaged_archive(tmp / "a.mmar");
  auto a = Archive::open(Source::borrow(bytes, "a.mmar"));
  ASSERT_TRUE(a.ok());
  for (int attempt = 0; attempt < 2; ++attempt) {  // the second answer is the remembered one
    auto r = a->read("bad");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), Errc::checksum);
    EXPECT_NE(r.error().message().find("a.mmar: member 'bad': checksum mismatch (at offset 0x"), std::string::npos)
        << r.error().message();
  }
  auto good = a->read("ok");
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good->str(), "fine\n");

  OpenOptions no_verify;
  no_verify.verify_checksums = false;
  auto b = Archive::open(Source::borrow(bytes, "a.mmar"), no_verify);
  ASSERT_TRUE(b.ok());
  auto r = b->read("bad");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->str(), "The original bytes\n");
  // verify() checks whatever the options say.
  auto problems = b->verify();
  ASSERT_TRUE(problems.ok());
  ASSERT_EQ(problems->size(), 1u);
  EXPECT_NE((*problems)[0].message.find("member 'bad': checksum mismatch"), std::string::npos);
}

TEST(ReadVerify, CompressedMembersAreCheckedAsTheyInflate) {
  TempDir tmp;
  Writer w;
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "line " + std::to_string(i) + "\n";
  ASSERT_TRUE(w.add_bytes("z", test::to_bytes(text)).ok());
  ASSERT_TRUE(w.write(tmp / "z.mmar").ok());
  auto bytes = test::read_file(tmp / "z.mmar");
  auto a = Archive::open(Source::borrow(bytes, "z"));
  ASSERT_TRUE(a.ok());
  auto m = a->find("z");
  ASSERT_EQ(m->codec, Codec::zstd);
  test::patch_entry(bytes, m->index, [](format::Entry& e) { e.me_xxh3 = e.me_xxh3 ^ 1; });
  auto b = Archive::open(Source::borrow(bytes, "z.mmar"));
  ASSERT_TRUE(b.ok());
  auto r = b->read("z");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Errc::checksum);
  OpenOptions no_verify;
  no_verify.verify_checksums = false;
  auto c = Archive::open(Source::borrow(bytes, "z.mmar"), no_verify);
  ASSERT_TRUE(c.ok());
  auto rc = c->read("z");
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(rc->str(), text);
}

TEST(ReadVerify, CatFailsNamingTheMemberUnlessNoVerify) {
  MMAR_SKIP_WITHOUT_CLI();
  TempDir tmp;
  damaged_archive(tmp / "a.mmar");
  auto r = test::run_child({kMmar, "cat", "-f", tmp / "a.mmar", "bad"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "") << "no byte of a damaged member is written";
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.rfind("mmar: " + tmp / "a.mmar" + ": member 'bad': checksum mismatch (at offset 0x", 0), 0u) << r.err;

  r = test::run_child({kMmar, "cat", "--no-verify", "-f", tmp / "a.mmar", "bad"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "The original bytes\n");

  r = test::run_child({kMmar, "cat", "-f", tmp / "a.mmar", "ok"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "fine\n");

  r = test::run_child({kMmar, "cat", "--help"});
  EXPECT_NE(r.out.find("--no-verify"), std::string::npos);
}

TEST(ReadVerify, ExtractWritesNothingOfADamagedMember) {
  MMAR_SKIP_WITHOUT_CLI();
  TempDir tmp;
  damaged_archive(tmp / "a.mmar");
  auto r = test::run_child({kMmar, "extract", "-f", tmp / "a.mmar", "-C", tmp / "x"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("member 'bad': checksum mismatch"), std::string::npos) << r.err;
  EXPECT_NE(::access((tmp / "x/bad").c_str(), F_OK), 0) << "no file claimed as good";
  EXPECT_EQ(test::read_file(tmp / "x/ok"), test::to_bytes("fine\n")) << "the sound members are extracted";

  r = test::run_child({kMmar, "extract", "--no-verify", "-f", tmp / "a.mmar", "-C", tmp / "y"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(test::read_file(tmp / "y/bad"), test::to_bytes("The original bytes\n"));

  r = test::run_child({kMmar, "extract", "--help"});
  EXPECT_NE(r.out.find("--no-verify"), std::string::npos);
}

}  // namespace
}  // namespace mmar
