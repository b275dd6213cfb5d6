// SPDX-License-Identifier: BSD-2-Clause
// Round trips of random trees through the writer and the reader.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;

// Every member read back equals the file it came from; the same through
// mmap and pread; names sorted and complete.
void check_archive_matches_tree(const std::string& archive, const std::string& dir,
                                const std::vector<std::string>& names) {
  for (bool pread : {false, true}) {
    OpenOptions o;
    o.force_pread = pread;
    auto a = Archive::open(archive, o);
    ASSERT_TRUE(a.ok()) << a.error().message();
    EXPECT_EQ(a->format(), Format::mmar);
    EXPECT_EQ(a->source().mapped(), !pread);
    ASSERT_EQ(a->size(), names.size());
    std::string prev;
    for (uint32_t i = 0; i < a->size(); ++i) {
      auto m = a->at(i);
      ASSERT_TRUE(m.ok()) << m.error().message();
      if (i > 0) {
        EXPECT_LT(prev, std::string(m->name));
      }
      prev = std::string(m->name);
      std::string path = dir + "/" + prev;
      struct stat st {};
      ASSERT_EQ(lstat(path.c_str(), &st), 0) << path;
      EXPECT_EQ(m->mode, st.st_mode) << prev;
      auto found = a->find(m->name);
      ASSERT_TRUE(found.ok()) << found.error().message();
      EXPECT_EQ(found->index, i);
      if (S_ISDIR(st.st_mode)) {
        EXPECT_TRUE(m->is_dir());
        continue;
      }
      EXPECT_EQ(m->mtime_ns, st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec) << prev;
      auto bytes = a->read(*m);
      ASSERT_TRUE(bytes.ok()) << bytes.error().message();
      if (S_ISLNK(st.st_mode)) {
        char buf[4096];
        ssize_t n = readlink(path.c_str(), buf, sizeof buf);
        EXPECT_EQ(bytes->str(), std::string_view(buf, static_cast<size_t>(n)));
        continue;
      }
      auto want = test::read_file(path);
      ASSERT_EQ(bytes->size(), want.size()) << prev;
      EXPECT_TRUE(std::equal(want.begin(), want.end(), bytes->data())) << prev;
      EXPECT_EQ(m->xxh3, XXH3_64bits(want.data(), want.size()));
      // On a page whatever made it raw (format::raw_on_page).
      if (m->codec == Codec::none &&
          (m->size >= std::max<uint64_t>(a->alignment(), uint64_t{1} << 20) || m->kind == Kind::elf)) {
        EXPECT_TRUE(m->page_aligned);
      }
      if (m->page_aligned) {
        EXPECT_EQ(m->data_offset % a->alignment(), 0u);
      }
    }
    auto problems = a->verify();
    ASSERT_TRUE(problems.ok());
    EXPECT_TRUE(problems->empty()) << (*problems)[0].message;
  }
}

struct Case {
  Codec codec;
  uint64_t threshold;
  uint32_t align;
  int level;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << codec_name(c.codec) << "/threshold=" << c.threshold << "/align=" << c.align << "/level=" << c.level;
}

class RoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(RoundTrip, RandomTree) {
  const Case c = GetParam();
  TempDir tmp;
  std::string src = tmp / "src";
  ::mkdir(src.c_str(), 0755);
  test::TreeSpec spec;
  spec.seed = static_cast<uint32_t>(c.threshold * 7 + static_cast<int>(c.codec) + c.align);
  if (c.threshold >= spec.max_size) spec.max_size = c.threshold * 3;
  auto names = test::make_random_tree(src, spec);
  std::sort(names.begin(), names.end());
  WriteOptions o;
  o.codec = c.codec;
  o.threshold = c.threshold;
  o.alignment = c.align;
  o.level = c.level;
  test::archive_tree(src, tmp / "a.mmar", o);
  check_archive_matches_tree(tmp / "a.mmar", src, names);

  auto a = Archive::open(tmp / "a.mmar");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->alignment(), c.align);
  uint32_t compressed = 0;
  ASSERT_TRUE(a->for_each([&](const Member& m) -> Result<void> {
                 if (m.codec != Codec::none) {
                   ++compressed;
                   EXPECT_EQ(m.codec, c.codec);
                   EXPECT_GT(m.size, c.threshold);
                   // A member with a frame stream of its own is smaller
                   // than its bytes; a small one shares its stream.
                   EXPECT_TRUE(m.framed);
                   if (m.size >= (128u << 10)) {
                     EXPECT_EQ(m.stream_offset, 0u);
                     EXPECT_LT(m.stored_size, m.size);
                   }
                 } else if (m.is_regular() && c.codec != Codec::none && c.threshold != 0 && m.size > c.threshold) {
                   // Stored raw only because compression did not help; verify that.
                   auto data = test::read_file(src + "/" + std::string(m.name));
                   EXPECT_GT(data.size(), 0u);
                 }
                 return success();
               }).ok());
  if (c.codec != Codec::none && c.threshold != 0) {
    EXPECT_GT(compressed, 0u);
  } else {
    EXPECT_EQ(compressed, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Codecs, RoundTrip,
                         ::testing::Values(Case{Codec::none, 4096, 4096, 0}, Case{Codec::zstd, 4096, 4096, 0},
                                           Case{Codec::zstd, 1, 4096, 1}, Case{Codec::zstd, 0, 4096, 0},
                                           Case{Codec::zstd, 1 << 20, 65536, 0}, Case{Codec::xz, 4096, 16384, 1},
                                           Case{Codec::xz, 1, 4096, 0}),
                         [](const ::testing::TestParamInfo<Case>& param_info) {
                           const Case& c = param_info.param;
                           return std::string(codec_name(c.codec)) + "_threshold" + std::to_string(c.threshold) +
                                  "_align" + std::to_string(c.align) + "_level" + std::to_string(c.level);
                         });

TEST(RoundTrip, LargeMembersAndExtraction) {
  TempDir tmp;
  std::string src = tmp / "src";
  ::mkdir(src.c_str(), 0755);
  test::TreeSpec spec;
  spec.seed = 99;
  spec.files = 40;
  spec.big_size = 24u << 20;  // above codec::kLargeMember: multi-threaded path
  spec.max_size = 3u << 20;
  auto names = test::make_random_tree(src, spec);
  std::sort(names.begin(), names.end());
  test::archive_tree(src, tmp / "a.mmar", WriteOptions{});
  check_archive_matches_tree(tmp / "a.mmar", src, names);
  auto a = Archive::open(tmp / "a.mmar");
  ASSERT_TRUE(a.ok());
  auto big = a->find("big.bin");
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->codec, Codec::zstd);
  EXPECT_EQ(big->size, 24u << 20);
}

TEST(Writer, DeterministicAcrossThreadCounts) {
  TempDir tmp;
  std::string src = tmp / "src";
  ::mkdir(src.c_str(), 0755);
  test::TreeSpec spec;
  spec.seed = 5;
  spec.big_size = 9u << 20;
  test::make_random_tree(src, spec);
  WriteOptions one;
  one.threads = 1;
  WriteOptions four;
  four.threads = 4;
  auto a = test::archive_tree(src, tmp / "1.mmar", one);
  auto b = test::archive_tree(src, tmp / "4.mmar", four);
  auto c = test::archive_tree(src, tmp / "again.mmar", four);
  EXPECT_EQ(a, b);
  EXPECT_EQ(b, c);
  WriteOptions xz1{.codec = Codec::xz, .level = 1, .threads = 1};
  WriteOptions xz2{.codec = Codec::xz, .level = 1, .threads = 2};
  EXPECT_EQ(test::archive_tree(src, tmp / "x1.mmar", xz1), test::archive_tree(src, tmp / "x2.mmar", xz2));
}

std::string str(const std::vector<std::byte>& v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size()); }

TEST(Writer, SmallRawDataFillsThePaddingOfPageAlignedMembers) {
  // Uncompressed: "a" (5,000 bytes) and "b" are page-aligned and leave
  // padding before them (after the header, and 3,192 bytes between them),
  // which the small members after them fill, a symlink's target too.
  // Whatever the thread count, the same bytes.
  TempDir tmp;
  auto build = [&](uint32_t threads) {
    Writer w({.codec = Codec::none, .threads = threads});
    EXPECT_TRUE(w.add_bytes("a", test::text_bytes(5000, 1)).ok());
    EXPECT_TRUE(w.add_bytes("b", test::text_bytes(9000, 2)).ok());
    for (int i = 0; i < 8; ++i) EXPECT_TRUE(w.add_bytes("c" + std::to_string(i), test::text_bytes(300, 3 + i)).ok());
    EXPECT_TRUE(w.add_symlink("d", "c0").ok());
    const std::string out = tmp / ("h" + std::to_string(threads) + ".mmar");
    EXPECT_TRUE(w.write(out).ok());
    return test::read_file(out);
  };
  const auto bytes = build(1);
  EXPECT_EQ(bytes, build(3));
  auto a = Archive::open(Source::borrow(bytes, "h.mmar"));
  ASSERT_TRUE(a.ok());
  const Member ma = *a->find("a"), mb = *a->find("b");
  ASSERT_TRUE(ma.page_aligned && mb.page_aligned);
  EXPECT_EQ(mb.data_offset, ma.data_offset + 8192) << "b right on the page after a's two";
  int in_hole = 0;
  for (int i = 0; i < 8; ++i) {
    const Member c = *a->find("c" + std::to_string(i));
    EXPECT_FALSE(c.page_aligned);
    // In the padding before a (after the header) or between a and b.
    const bool before_a = c.data_offset >= 128 && c.data_offset + c.size <= ma.data_offset;
    const bool between = c.data_offset >= ma.data_offset + ma.size && c.data_offset + c.size <= mb.data_offset;
    if (before_a || between) ++in_hole;
    EXPECT_EQ(a->read(c)->str(), str(test::text_bytes(300, 3 + i)));
  }
  EXPECT_EQ(in_hole, 8) << "the padding holds all eight";
  const Member md = *a->find("d");
  EXPECT_LT(md.data_offset, mb.data_offset) << "the symlink's target too";
  EXPECT_EQ(a->read(md)->str(), "c0");
  EXPECT_EQ(a->read("a")->str(), str(test::text_bytes(5000, 1)));
  EXPECT_EQ(a->read("b")->str(), str(test::text_bytes(9000, 2)));
  EXPECT_TRUE(a->verify()->empty());
}

TEST(Writer, BuffersSymlinksDirectoriesAndLinks) {
  TempDir tmp;
  Writer w;
  ASSERT_TRUE(w.add_bytes("btf/vmlinux", test::to_bytes(std::string(10000, 'x')), 0444, 5).ok());
  ASSERT_TRUE(w.add_bytes("btf/mod.ko", test::to_bytes("module"), 0644, 6).ok());
  ASSERT_TRUE(w.add_directory("btf", 0755, 7).ok());
  ASSERT_TRUE(w.add_symlink("latest", "btf/vmlinux", 8).ok());
  ASSERT_TRUE(w.add_bytes("empty", {}, 0600, 9).ok());
  ASSERT_TRUE(w.set_link("btf/mod.ko", "btf/vmlinux").ok());
  auto stats = w.write(tmp / "a.mmar");
  ASSERT_TRUE(stats.ok()) << stats.error().message();
  EXPECT_EQ(stats->members, 5u);
  auto a = Archive::open(tmp / "a.mmar");
  ASSERT_TRUE(a.ok());
  auto mod = a->find("btf/mod.ko");
  ASSERT_TRUE(mod.ok());
  ASSERT_TRUE(mod->link.has_value());
  auto base = a->at(*mod->link);
  ASSERT_TRUE(base.ok());
  EXPECT_EQ(base->name, "btf/vmlinux");
  EXPECT_EQ(base->mode, 0100444u);
  EXPECT_EQ(base->mtime_ns, 5);
  auto link = a->find("latest");
  ASSERT_TRUE(link.ok());
  EXPECT_TRUE(link->is_symlink());
  EXPECT_EQ(a->read(*link)->str(), "btf/vmlinux");
  auto empty = a->find("empty");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->size, 0u);
  EXPECT_TRUE(a->read(*empty)->empty());
  auto dir = a->find("btf");
  ASSERT_TRUE(dir.ok());
  EXPECT_TRUE(dir->is_dir());
  EXPECT_EQ(a->find("nope").error().code(), Errc::not_found);
  EXPECT_EQ(a->find("btf/").error().code(), Errc::not_found);
}

TEST(Writer, HardLinkedFilesAreStoredOnce) {
  TempDir tmp;
  ::mkdir((tmp / "src").c_str(), 0755);
  std::string big(50000, 'h');
  for (size_t i = 0; i < big.size(); i += 7) big[i] = static_cast<char>('a' + i % 26);
  test::write_file(tmp / "src/one", test::to_bytes(big), 0755);
  ASSERT_EQ(::link((tmp / "src/one").c_str(), (tmp / "src/two").c_str()), 0);
  ASSERT_EQ(::link((tmp / "src/one").c_str(), (tmp / "src/zzz").c_str()), 0);
  test::write_file(tmp / "src/other", test::to_bytes(big));  // same bytes, not a link: stored once too
  std::string near = big;
  near[near.size() / 2] ^= 1;
  test::write_file(tmp / "src/near", test::to_bytes(near));  // same size, other bytes: stored apart
  for (Codec codec : {Codec::none, Codec::zstd}) {
    WriteOptions o;
    o.codec = codec;
    test::archive_tree(tmp / "src", tmp / "a.mmar", o);
    auto a = Archive::open(tmp / "a.mmar");
    ASSERT_TRUE(a.ok());
    auto one = a->find("one"), two = a->find("two"), zzz = a->find("zzz"), other = a->find("other");
    auto near_m = a->find("near");
    EXPECT_EQ(one->data_offset, two->data_offset);
    EXPECT_EQ(one->data_offset, zzz->data_offset);
    EXPECT_EQ(one->data_offset, other->data_offset);
    EXPECT_EQ(one->stream_offset, other->stream_offset);
    EXPECT_TRUE(near_m->data_offset != one->data_offset || near_m->stream_offset != one->stream_offset);
    EXPECT_EQ(a->read(*zzz)->str(), big);
    EXPECT_EQ(a->read(*other)->str(), big);
    EXPECT_EQ(a->read(*near_m)->str(), near);
    EXPECT_EQ(zzz->mode, 0100755u);
    EXPECT_TRUE(a->verify()->empty());
  }
}

TEST(Writer, RefusesBadNamesAndDuplicates) {
  Writer w;
  EXPECT_FALSE(w.add_bytes("../escape", {}).ok());
  EXPECT_FALSE(w.add_bytes("a/../../b", {}).ok());
  EXPECT_FALSE(w.add_bytes("", {}).ok());
  EXPECT_FALSE(w.add_bytes(std::string("nul\0byte", 8), {}).ok());
  EXPECT_EQ(*normalize_member_name("/usr//bin/./ls"), "usr/bin/ls");
  ASSERT_TRUE(w.add_bytes("same", {}).ok());
  ASSERT_TRUE(w.add_bytes("./same", {}).ok());
  TempDir tmp;
  auto r = w.write(tmp / "dup.mmar");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("duplicate member name 'same'"), std::string::npos);
  EXPECT_NE(::access((tmp / "dup.mmar").c_str(), F_OK), 0);
}

TEST(Writer, FailedWriteLeavesExistingArchiveIntact) {
  TempDir tmp;
  Writer good;
  ASSERT_TRUE(good.add_bytes("keep", test::to_bytes("original")).ok());
  ASSERT_TRUE(good.write(tmp / "a.mmar").ok());
  auto before = test::read_file(tmp / "a.mmar");
  Writer bad;
  ASSERT_TRUE(bad.add_bytes("x", test::to_bytes("new")).ok());
  ASSERT_TRUE(bad.add_path("vanishes", tmp / "vanishing-file").ok() == false);
  // A source file that disappears between add and write fails the write.
  test::write_file(tmp / "gone", test::to_bytes("soon gone"));
  ASSERT_TRUE(bad.add_path("gone", tmp / "gone").ok());
  ::unlink((tmp / "gone").c_str());
  auto r = bad.write(tmp / "a.mmar");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(test::read_file(tmp / "a.mmar"), before);
  // No temporary left behind.
  std::string listing;
  test::run("ls -A " + tmp.path(), &listing);
  EXPECT_EQ(listing, "a.mmar\n");
}

}  // namespace
}  // namespace mmar
