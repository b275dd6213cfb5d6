// SPDX-License-Identifier: BSD-2-Clause
// The reader against malformed, hostile and unusual input: one case a line,
// each checking the error code and the text a user would see.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;

std::vector<std::byte> small_archive(WriteOptions o = {}) {
  TempDir tmp;
  Writer w(o);
  EXPECT_TRUE(w.add_bytes("a.txt", test::to_bytes("hello")).ok());
  EXPECT_TRUE(w.add_bytes("b.bin", test::to_bytes(std::string(20000, 'b')), 0755).ok());
  EXPECT_TRUE(w.add_directory("dir").ok());
  EXPECT_TRUE(w.add_symlink("dir/link", "../a.txt").ok());
  EXPECT_TRUE(w.write(tmp / "s.mmar").ok());
  return test::read_file(tmp / "s.mmar");
}

Result<Archive> open_bytes(const std::vector<std::byte>& bytes, OpenOptions o = {}) {
  return Archive::open(Source::borrow(bytes, "test.mmar"), o);
}

// Open, then access member i; returns the first error's message or "".
std::string first_error(const std::vector<std::byte>& bytes, uint32_t i = 0) {
  auto a = open_bytes(bytes);
  if (!a.ok()) return a.error().message();
  auto m = a->at(i);
  if (!m.ok()) return m.error().message();
  auto d = a->read(*m);
  if (!d.ok()) return d.error().message();
  return "";
}

#define EXPECT_ERROR_CONTAINS(text, needle) EXPECT_NE((text).find(needle), std::string::npos) << "error was: " << (text)

TEST(Reader, OpensSmallArchive) {
  auto bytes = small_archive();
  auto a = open_bytes(bytes);
  ASSERT_TRUE(a.ok()) << a.error().message();
  EXPECT_EQ(a->size(), 4u);
  EXPECT_EQ(a->read("a.txt")->str(), "hello");
  EXPECT_EQ(a->find("b.bin")->codec, Codec::zstd);
  EXPECT_EQ(a->read("b.bin")->str(), std::string(20000, 'b'));
  EXPECT_EQ(a->generation(), 1u);
}

TEST(Reader, SuperblockErrors) {
  auto good = small_archive();
  auto b = good;
  b.resize(100);
  EXPECT_ERROR_CONTAINS(first_error(b), "test.mmar: truncated: 100 bytes is smaller than the 128-byte header");
  b = good;
  b[20] ^= std::byte{1};  // inside slot 0 and slot 1 differently: break both
  b[84] ^= std::byte{1};
  EXPECT_ERROR_CONTAINS(first_error(b), "both superblocks fail their checksum");
  b = good;
  test::patch_superblock(b, [](format::Superblock& s) { s.sb_version = 2; });
  EXPECT_ERROR_CONTAINS(first_error(b), "format version 2 (this mmar reads 1)");
  EXPECT_EQ(open_bytes(b).error().code(), Errc::unsupported);
  b = good;
  test::patch_superblock(b, [](format::Superblock& s) { s.sb_flags = 64; });
  EXPECT_ERROR_CONTAINS(first_error(b), "unknown superblock flags 0x40");
  b = good;
  test::patch_superblock(b, [](format::Superblock& s) { s.sb_flags = format::kSbFlagIndexPredicted; });
  EXPECT_ERROR_CONTAINS(first_error(b), "predicted offsets without a compressed index");
  b = good;
  test::patch_superblock(b, [](format::Superblock& s) { s.sb_align_log2 = 30; });
  EXPECT_ERROR_CONTAINS(first_error(b), "alignment 2^30 out of range");
  b = good;
  test::patch_superblock(b, [](format::Superblock& s) { s.sb_index_offset = ~uint64_t{0} - 8; });
  EXPECT_ERROR_CONTAINS(first_error(b), "is not inside the file");
  b = good;
  test::patch_superblock(b, [](format::Superblock& s) { s.sb_member_count = 0xffffffff; });
  EXPECT_ERROR_CONTAINS(first_error(b), "4294967295 members do not fit an index of");
  b = good;
  test::patch_superblock(b, [](format::Superblock& s) { s.sb_index_offset = s.sb_index_offset + 4; });
  EXPECT_ERROR_CONTAINS(first_error(b), "index [");
}

TEST(Reader, OneDamagedSuperblockIsSurvivable) {
  auto b = small_archive();
  b[20] ^= std::byte{0xff};  // slot 0 only
  auto a = open_bytes(b);
  ASSERT_TRUE(a.ok()) << a.error().message();
  EXPECT_EQ(a->read("a.txt")->str(), "hello");
  auto problems = a->verify();
  ASSERT_TRUE(problems.ok());
  ASSERT_EQ(problems->size(), 1u);
  EXPECT_ERROR_CONTAINS((*problems)[0].message, "superblock 0 is damaged");
}

TEST(Reader, EntryErrors) {
  auto good = small_archive();
  auto b = good;
  test::patch_entry(b, 0, [](format::Entry& e) { e.me_name_offset = 1u << 30; });
  EXPECT_ERROR_CONTAINS(first_error(b), "member 0: name [1073741824, +5) outside the name table");
  b = good;
  test::patch_entry(b, 0, [](format::Entry& e) { e.me_data_offset = ~uint64_t{0} - 2; });
  EXPECT_ERROR_CONTAINS(first_error(b), "member 0: data [0xfffffffffffffffd, +0x5) is not inside the file");
  b = good;
  test::patch_entry(b, 0, [](format::Entry& e) { e.me_data_offset = 8; });
  EXPECT_ERROR_CONTAINS(first_error(b), "is not inside the file");
  b = good;
  test::patch_entry(b, 0, [](format::Entry& e) { e.me_codec = 9; });
  EXPECT_ERROR_CONTAINS(first_error(b), "member 0: unknown codec 9");
  b = good;
  test::patch_entry(b, 0, [](format::Entry& e) { e.me_kind = 77; });
  EXPECT_ERROR_CONTAINS(first_error(b), "unknown kind 77");
  b = good;
  test::patch_entry(b, 0, [](format::Entry& e) { e.me_link = 3; });
  EXPECT_EQ(first_error(b), "");  // a valid link
  test::patch_entry(b, 0, [](format::Entry& e) { e.me_link = 4; });
  EXPECT_ERROR_CONTAINS(first_error(b), "member 0: link to member 4");
  b = good;
  test::patch_entry(b, 0, [](format::Entry& e) { e.me_mode = 0020644; });  // a character device with data
  EXPECT_ERROR_CONTAINS(first_error(b), "member 0: a device, FIFO or socket with data");
  test::patch_entry(b, 0, [](format::Entry& e) { e.me_mode = 0030644; });  // no such file type
  EXPECT_ERROR_CONTAINS(first_error(b), "unsupported file type in mode 0x31a4");
  test::patch_entry(b, 0, [](format::Entry& e) { e.me_mode = 0300644; });  // a stray bit above the type
  EXPECT_ERROR_CONTAINS(first_error(b), "unknown mode bits 0x181a4");
  b = good;
  test::patch_entry(b, 0, [](format::Entry& e) { e.me_size = 6; });
  EXPECT_ERROR_CONTAINS(first_error(b), "raw member with stored size 5 != size 6");
  b = good;
  test::patch_entry(b, 0, [](format::Entry& e) { e.me_flags = 0x80; });
  EXPECT_ERROR_CONTAINS(first_error(b), "unknown flags");
  b = good;
  // a.txt is small, so packed (8-aligned, not page-aligned): claim otherwise.
  test::patch_entry(b, 0, [](format::Entry& e) { e.me_flags = format::kFlagPageAligned; });
  EXPECT_ERROR_CONTAINS(first_error(b), "is flagged aligned but is not");
}

TEST(Reader, HostileNamesAreRefused) {
  auto b = small_archive();
  test::plain_index(b);
  // Member 0 is "a.txt" (5 bytes): rewrite its name in place to "../xx".
  auto sb = load<format::Superblock>(b.data());
  uint64_t names = sb.sb_index_offset + 4 * format::kEntrySize;
  auto e = load<format::Entry>(b.data() + sb.sb_index_offset);
  std::memcpy(b.data() + names + e.me_name_offset, "../xx", 5);
  test::reseal(b);
  EXPECT_ERROR_CONTAINS(first_error(b), "member 0: '..' path component");
  std::memcpy(b.data() + names + e.me_name_offset, "/etcx", 5);
  test::reseal(b);
  EXPECT_ERROR_CONTAINS(first_error(b), "member 0: absolute name");
  std::memcpy(b.data() + names + e.me_name_offset, "a//bc", 5);
  test::reseal(b);
  EXPECT_ERROR_CONTAINS(first_error(b), "empty path component");
}

TEST(Reader, CompressedMemberErrors) {
  // One stream per member: the format before frame streams, still read.
  auto good = small_archive({.frame_size = 0});
  auto a = open_bytes(good);
  ASSERT_TRUE(a.ok());
  const uint32_t bi = a->find("b.bin")->index;
  // Declared size smaller than the frame: the bomb guard.
  auto b = good;
  test::patch_entry(b, bi, [](format::Entry& e) { e.me_size = 100; });
  EXPECT_ERROR_CONTAINS(first_error(b, bi), "member 'b.bin': zstd: frame declares 20000 bytes, index says 100");
  // A huge declared size is refused before anything is allocated (this was
  // a 2 GiB memset per read before the frame header was checked first): more
  // than the stored bytes can inflate to at zstd's maximum ratio.
  b = good;
  test::patch_entry(b, bi, [](format::Entry& e) { e.me_size = uint64_t{1} << 39; });
  EXPECT_ERROR_CONTAINS(first_error(b, bi), "zstd: declared size of 549755813888 bytes is more than");
  // Checksum mismatch on inflate.
  b = good;
  test::patch_entry(b, bi, [](format::Entry& e) { e.me_xxh3 = e.me_xxh3 ^ 1; });
  EXPECT_ERROR_CONTAINS(first_error(b, bi), "member 'b.bin': checksum mismatch");
  // Corrupt frame bytes.
  b = good;
  auto m = open_bytes(good)->find("b.bin");
  b[m->data_offset + m->stored_size / 2] ^= std::byte{0x5a};
  std::string err = first_error(b, bi);
  EXPECT_FALSE(err.empty());
  EXPECT_ERROR_CONTAINS(err, "b.bin");
  // A configured limit on the inflated size.
  OpenOptions lim;
  lim.max_member_size = 1000;
  auto limited = open_bytes(good, lim);
  ASSERT_TRUE(limited.ok());
  auto r = limited->read("b.bin");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), Errc::limit);
  EXPECT_ERROR_CONTAINS(r.error().message(), "inflates to 20000 bytes, above the limit of 1000");
}

TEST(Reader, XzOutputGrowsWithTheStreamNotTheIndex) {
  WriteOptions o;
  o.codec = Codec::xz;
  o.frame_size = 0;  // one stream per member
  auto b = small_archive(o);
  auto a = open_bytes(b);
  ASSERT_TRUE(a.ok());
  const uint32_t bi = a->find("b.bin")->index;
  EXPECT_EQ(a->find("b.bin")->codec, Codec::xz);
  test::patch_entry(b, bi, [](format::Entry& e) { e.me_size = uint64_t{1} << 39; });
  EXPECT_ERROR_CONTAINS(first_error(b, bi), "xz: declared size of 549755813888 bytes is more than");
  // Within the ratio bound but more than the stream holds.
  b = small_archive(o);
  test::patch_entry(b, bi, [](format::Entry& e) { e.me_size = 1 << 20; });
  EXPECT_ERROR_CONTAINS(first_error(b, bi), "xz: inflated to 20000 bytes, expected 1048576");
  b = small_archive(o);
  test::patch_entry(b, bi, [](format::Entry& e) { e.me_size = 19999; });
  EXPECT_ERROR_CONTAINS(first_error(b, bi), "xz: data inflates beyond the declared 19999 bytes");
}

TEST(Reader, VerifyIndexAtOpen) {
  auto b = small_archive();
  test::plain_index(b);
  auto sb = load<format::Superblock>(b.data());
  b[sb.sb_index_offset + 24] ^= std::byte{1};  // a checksum byte of entry 0; not resealed
  OpenOptions o;
  o.verify_index = true;
  auto a = open_bytes(b, o);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code(), Errc::checksum);
  auto lazy = open_bytes(b);
  ASSERT_TRUE(lazy.ok());
  auto problems = lazy->verify();
  ASSERT_TRUE(problems.ok());
  EXPECT_GE(problems->size(), 1u);
}

TEST(Reader, PlainFilesAreOneMemberArchives) {
  TempDir tmp;
  std::vector<std::byte> btf =
      test::to_bytes(std::string("\x9f\xeb\x01\x00\x18\x00\x00\x00", 8) + std::string(40, '\0'));
  test::write_file(tmp / "vmlinux", btf, 0444);
  auto a = Archive::open(tmp / "vmlinux");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->format(), Format::plain);
  ASSERT_EQ(a->size(), 1u);
  auto m = a->at(0);
  EXPECT_EQ(m->name, "vmlinux");
  EXPECT_EQ(m->kind, Kind::btf);
  EXPECT_EQ(m->mode, 0100444u);
  EXPECT_EQ(a->read(*m)->size(), btf.size());
  EXPECT_TRUE(a->find("vmlinux").ok());
  // An ELF object with a .BTF section is detected as such.
  auto elf = Archive::open("/proc/self/exe");
  ASSERT_TRUE(elf.ok());
  EXPECT_EQ(elf->at(0)->kind, Kind::elf);
  // Any other file, an empty one too, only when asked for: a text file
  // handed to `mmar list` is a mistake, not a one-member archive.
  test::write_file(tmp / "empty", {});
  test::write_file(tmp / "notes.txt", test::to_bytes("just text\n"));
  for (const char* name : {"empty", "notes.txt"}) {
    auto refused = Archive::open(tmp / name);
    ASSERT_FALSE(refused.ok()) << name;
    EXPECT_EQ(refused.error().code(), Errc::unsupported);
    // The library names no option of the command (each verb that offers
    // --plain says so itself).
    EXPECT_EQ(refused.error().message(), tmp / name + ": " +
                                             (std::string(name) == "empty" ? "an empty file" : "not an archive") +
                                             " (no mmar or CTF archive header) nor an ELF, BTF or CTF object");
    auto e = Archive::open(tmp / name, OpenOptions{.plain_data = true});
    ASSERT_TRUE(e.ok()) << name;
    EXPECT_EQ(e->format(), Format::plain);
    EXPECT_EQ(e->at(0)->kind, Kind::data);
  }
  EXPECT_EQ(Archive::open(tmp / "empty", OpenOptions{.plain_data = true})->at(0)->size, 0u);
}

// Other archive formats are named, with the conversion: never a "1 members
// OK" over a tar (unless plain_data asks for the file as it is).
TEST(Reader, ForeignFormatsAreNamed) {
  TempDir tmp;
  test::write_file(tmp / "f", test::to_bytes("hello\n"));
  const std::string d = tmp.path();
  // The conversion each names is one that works: libarchive reads no
  // squashfs image, its own tool unpacks it.
  const std::string from = "convert: mmar create -f OUT.mmar --from @/";
  const std::string unsquash = "convert: unsquashfs -d DIR @/t.sqfs && mmar create -f OUT.mmar -C DIR .";
  struct Case {
    const char* file;
    const char* make;
    const char* what;
    std::string convert = "";  // "": mmar create --from the file
  } cases[] = {
      {"t.tar", "tar -C @ -cf @/t.tar f", "a tar archive"},
      {"t.tar.zst", "tar -C @ --zstd -cf @/t.tar.zst f", "a zstd-compressed stream"},
      {"t.tar.gz", "tar -C @ -czf @/t.tar.gz f", "a gzip-compressed stream"},
      {"t.tar.xz", "tar -C @ -cJf @/t.tar.xz f", "an xz-compressed stream"},
      {"t.zip", "cd @ && zip -q t.zip f", "a zip archive"},
      {"t.cpio", "cd @ && echo f | cpio -o -H newc --quiet > t.cpio", "a cpio archive"},
      {"t.sqfs", "mksquashfs @/f @/t.sqfs -quiet -no-progress >/dev/null", "a squashfs image", unsquash},
      {"t.a", "cd @ && ar rc t.a f", "an ar archive"},
  };
  for (const Case& c : cases) {
    std::string cmd;  // "@" is the scratch directory
    for (const char* k = c.make; *k != '\0'; ++k) cmd += *k == '@' ? d : std::string(1, *k);
    ASSERT_EQ(test::run(cmd), 0) << cmd;
    auto a = Archive::open(tmp / c.file);
    ASSERT_FALSE(a.ok()) << c.file;
    EXPECT_EQ(a.error().code(), Errc::unsupported);
    std::string convert;
    for (char k : c.convert.empty() ? from + c.file : c.convert) convert += k == '@' ? d : std::string(1, k);
    EXPECT_EQ(a.error().message(), tmp / c.file + ": " + c.what + ", not an mmar archive (" + convert + ")");
    // Asked for, any file is one member: the tar's bytes as they are.
    auto plain = Archive::open(tmp / c.file, OpenOptions{.plain_data = true});
    ASSERT_TRUE(plain.ok()) << c.file;
    EXPECT_EQ(plain->format(), Format::plain);
  }
}

TEST(Reader, PipesAreReadWhole) {
  auto bytes = small_archive();
  TempDir tmp;
  test::write_file(tmp / "s.mmar", bytes);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::thread feeder([&] {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::write(fds[1], bytes.data() + done, bytes.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    ::close(fds[1]);
  });
  auto src = Source::from_fd(fds[0], "<pipe>");
  feeder.join();
  ::close(fds[0]);
  ASSERT_TRUE(src.ok());
  EXPECT_FALSE(src->mapped());
  auto a = Archive::open(std::move(src).value());
  ASSERT_TRUE(a.ok()) << a.error().message();
  EXPECT_EQ(a->read("b.bin")->str(), std::string(20000, 'b'));
}

TEST(Reader, MissingFileIsAnIoError) {
  auto a = Archive::open("/nonexistent/archive.mmar");
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code(), Errc::io);
  EXPECT_EQ(a.error().message(), "/nonexistent/archive.mmar: No such file or directory");
}

TEST(Reader, CacheIsBoundedAndSharedBytesOutliveEviction) {
  TempDir tmp;
  Writer w;
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(
        w.add_bytes("m" + std::to_string(i), test::to_bytes(std::string(100000, static_cast<char>('a' + i)))).ok());
  }
  ASSERT_TRUE(w.write(tmp / "c.mmar").ok());
  OpenOptions o;
  o.cache_bytes = 250000;  // two members
  auto a = Archive::open(tmp / "c.mmar", o);
  ASSERT_TRUE(a.ok());
  auto first = a->read("m0");
  ASSERT_TRUE(first.ok());
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 20; ++i) {
      auto b = a->read("m" + std::to_string(i));
      ASSERT_TRUE(b.ok());
      EXPECT_EQ(b->str(), std::string(100000, static_cast<char>('a' + i)));
    }
  }
  EXPECT_EQ(first->str(), std::string(100000, 'a'));  // still valid after eviction
}

TEST(Reader, ConcurrentReadersSeeTheSameBytes) {
  TempDir tmp;
  Writer w;
  for (int i = 0; i < 64; ++i) {
    ASSERT_TRUE(
        w.add_bytes("m" + std::to_string(i), test::to_bytes(std::string(30000 + i, static_cast<char>(i)))).ok());
  }
  ASSERT_TRUE(w.write(tmp / "c.mmar").ok());
  OpenOptions o;
  o.cache_bytes = 200000;
  auto a = Archive::open(tmp / "c.mmar", o);
  ASSERT_TRUE(a.ok());
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 400; ++k) {
        int i = (k * 7 + t) % 64;
        auto b = a->read("m" + std::to_string(i));
        if (!b.ok() || b->str() != std::string(30000 + i, static_cast<char>(i))) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace mmar
