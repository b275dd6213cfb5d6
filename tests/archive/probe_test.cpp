// SPDX-License-Identifier: BSD-2-Clause
// The name fence and ArchiveProbe (pread lookups without a mapping) against
// the mapped reader: every member found in three reads with the same entry,
// every absent name reported absent, and wrong, damaged or stale fences
// never changing an answer.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "archive/fence.h"
#include "archive/probe.h"
#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;

// Names that stress the order: prefixes of each other, '-' '.' '/' next to
// each other, long shared prefixes, bytes above 0x7f.
std::vector<std::string> tricky_names(int n) {
  std::set<std::string> names = {"a", "a-b", "a.b", "a/b", "a/b/c", "ab", "b", "\xc3\xa9t\xc3\xa9", "z/\xff"};
  const std::string longdir(300, 'L');
  for (int i = 0; static_cast<int>(names.size()) < n; ++i) {
    switch (i % 4) {
      case 0: names.insert("d" + std::to_string(i % 7) + "/sub" + std::to_string(i % 13) + "/f" + std::to_string(i)); break;
      case 1: names.insert(longdir + "/" + std::to_string(i)); break;
      case 2: names.insert("modules/kernel/drivers/net/ethernet/m" + std::to_string(i) + ".btf"); break;
      default: names.insert("modules/kernel/drivers/net/ethernet/m" + std::to_string(i - 1) + ".btf.mmidx"); break;
    }
  }
  return {names.begin(), names.end()};
}

std::string write_archive(const TempDir& tmp, const std::vector<std::string>& names, const std::string& file,
                          IndexStorage index = IndexStorage::plain) {
  Writer w({.index = index});
  const std::set<std::string> all(names.begin(), names.end());
  for (size_t i = 0; i < names.size(); ++i) {
    // A name with members below it is a directory (the writer refuses a file there).
    auto next = all.lower_bound(names[i] + "/");
    if (next != all.end() && next->compare(0, names[i].size() + 1, names[i] + "/") == 0) {
      EXPECT_TRUE(w.add_directory(names[i]).ok()) << names[i];
      continue;
    }
    EXPECT_TRUE(w.add_bytes(names[i], test::to_bytes(std::string(i % 50, 'x'))).ok()) << names[i];
  }
  const std::string path = tmp / file;
  EXPECT_TRUE(w.write(path).ok());
  return path;
}

// `shift`: where b's data lies against a's (archives whose name fences
// differ in size: a plain and a compressed index).
void expect_same(const Member& a, const Member& b, int64_t shift = 0) {
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.data_offset, a.data_offset == 0 ? 0 : b.data_offset + static_cast<uint64_t>(shift));
  EXPECT_EQ(a.stored_size, b.stored_size);
  EXPECT_EQ(a.size, b.size);
  EXPECT_EQ(a.xxh3, b.xxh3);
  EXPECT_EQ(a.mode, b.mode);
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.link, b.link);
}

// Every name, and names between, before and after them, answered as
// Archive::find answers; a fresh probe's lookup of a present name costs at
// most `max_reads` reads (the head included).
void check_all(const std::string& path, uint32_t max_reads, const std::string& reference = "") {
  auto a = Archive::open(reference.empty() ? path : reference);
  ASSERT_TRUE(a.ok());
  std::vector<std::string> queries = {"", "\x01", "\xff\xff\xff", "zzz", "a/", "a/b/"};
  for (uint32_t i = 0; i < a->size(); ++i) {
    auto m = a->at(i);
    ASSERT_TRUE(m.ok());
    queries.emplace_back(m->name);
    queries.push_back(std::string(m->name) + "\x01");
    queries.push_back(std::string(m->name).substr(0, m->name.size() - 1));
  }
  auto shared = ArchiveProbe::open(path);  // one probe for all: the run cache
  ASSERT_TRUE(shared.ok());
  // The reference's data may lie elsewhere by a constant (its fence's size).
  int64_t shift = 0;
  if (!reference.empty()) {
    auto self = Archive::open(path);
    ASSERT_TRUE(self.ok());
    const auto first_data = [](const Archive& x) {
      uint64_t lo = UINT64_MAX;
      for (uint32_t i = 0; i < x.size(); ++i) {
        auto m = x.at(i);
        if (m.ok() && m->stored_size > 0) lo = std::min(lo, m->data_offset);
      }
      return lo;
    };
    shift = static_cast<int64_t>(first_data(*self) - first_data(*a));
  }
  for (const auto& q : queries) {
    auto want = a->find(q);
    auto fresh = ArchiveProbe::open(path);
    ASSERT_TRUE(fresh.ok());
    for (ArchiveProbe* p : {&*fresh, &*shared}) {
      auto got = p->find(q);
      ASSERT_TRUE(got.ok()) << got.error().message();
      ASSERT_EQ(want.ok(), got->has_value()) << q;
      if (want.ok()) expect_same(***got, *want, shift);
    }
    if (want.ok()) {
      EXPECT_LE(fresh->reads(), max_reads) << q;
    }
  }
}

TEST(Probe, FenceFindsEveryMemberInThreeReads) {
  TempDir tmp;
  const auto names = tricky_names(1500);
  const std::string path = write_archive(tmp, names, "big.mmar");
  auto p = ArchiveProbe::open(path);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->has_fence());
  EXPECT_EQ(p->reads(), 1u);
  auto a = Archive::open(path);
  ASSERT_TRUE(a.ok());
  auto problems = a->verify();
  ASSERT_TRUE(problems.ok());
  EXPECT_TRUE(problems->empty()) << (*problems)[0].message;
  check_all(path, 3);
  // at(): entries outside the cached run too.
  for (uint32_t i = 0; i < a->size(); i += 97) {
    auto m = p->at(i);
    ASSERT_TRUE(m.ok());
    expect_same(**m, *a->at(i));
  }
  EXPECT_FALSE(p->at(a->size()).ok());
}

// A compressed index: the head and the index (smaller than 256 KiB) at
// open, nothing more for any lookup.
TEST(Probe, CompressedIndexFindsEveryMemberInTwoReads) {
  TempDir tmp;
  const auto names = tricky_names(1500);
  const std::string path = write_archive(tmp, names, "c.mmar", IndexStorage::compressed);
  auto p = ArchiveProbe::open(path);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->has_fence());
  EXPECT_EQ(p->reads(), 2u);
  // Answers as the plain index's (its reader shares no code with the
  // compressed index's frames).
  check_all(path, 2, write_archive(tmp, names, "p.mmar", IndexStorage::plain));
}

TEST(Probe, SmallArchivesHaveNoFenceAndStillWork) {
  TempDir tmp;
  const std::string path = write_archive(tmp, tricky_names(40), "small.mmar");
  auto p = ArchiveProbe::open(path);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->has_fence());
  check_all(path, 3);  // the head, then the whole index in one block
  // An empty archive.
  Writer w;
  ASSERT_TRUE(w.write(tmp / "empty.mmar").ok());
  auto e = ArchiveProbe::open(tmp / "empty.mmar");
  ASSERT_TRUE(e.ok());
  auto none = e->find("x");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

// Rewrite the fence in place (its checksum made right again when `reseal`).
void patch_fence(const std::string& path, size_t at, unsigned char value, bool reseal) {
  auto bytes = test::read_file(path);
  fence::Header h;
  std::memcpy(&h, bytes.data() + fence::kOffset, sizeof h);
  std::vector<std::byte> block(bytes.begin() + fence::kOffset, bytes.begin() + fence::kOffset + h.bytes);
  block[at] = std::byte{value};
  if (reseal) fence::finish(block, h.index_xxh3, h.generation);
  std::copy(block.begin(), block.end(), bytes.begin() + fence::kOffset);
  test::write_file(path, bytes);
}

TEST(Probe, DamagedOrWrongFencesChangeNoAnswer) {
  TempDir tmp;
  const auto names = tricky_names(800);
  const std::string path = write_archive(tmp, names, "f.mmar");
  auto p = ArchiveProbe::open(path);
  ASSERT_TRUE(p.ok() && p->has_fence());
  fence::Header h;
  auto bytes = test::read_file(path);
  std::memcpy(&h, bytes.data() + fence::kOffset, sizeof h);
  const size_t key_text = sizeof h + 4 * (size_t{h.keys} + 1);
  ASSERT_LT(key_text + 3, size_t{h.bytes});

  // A flipped byte: verify's checksum catches it; lookups stay right (the
  // probe does not check the sum, it proves answers from the index).
  const std::string damaged = tmp / "damaged.mmar";
  test::write_file(damaged, bytes);
  patch_fence(damaged, key_text + 2, 0x7e, false);
  auto pd = ArchiveProbe::open(damaged);
  ASSERT_TRUE(pd.ok());
  auto ad = Archive::open(damaged);
  ASSERT_TRUE(ad.ok());
  auto vd = ad->verify();
  ASSERT_TRUE(vd.ok());
  ASSERT_EQ(vd->size(), 1u);
  EXPECT_NE((*vd)[0].message.find("name fence: damaged"), std::string::npos) << (*vd)[0].message;
  check_all(damaged, 8);

  // Key offsets out of order: not a fence at all.
  const std::string bad_offsets = tmp / "bad_offsets.mmar";
  test::write_file(bad_offsets, bytes);
  patch_fence(bad_offsets, sizeof h + 4 * 2 + 3, 0xff, false);
  auto po = ArchiveProbe::open(bad_offsets);
  ASSERT_TRUE(po.ok());
  EXPECT_FALSE(po->has_fence());
  check_all(bad_offsets, 8);

  // A wrong key with a good checksum (a writer's bug): used, but answers
  // are proved by the run's neighbours, so they stay right.
  for (unsigned char value : {0x00, 0x7f, 0xff}) {
    const std::string wrong = tmp / "wrong.mmar";
    test::write_file(wrong, bytes);
    patch_fence(wrong, key_text + 1, value, true);
    auto pw = ArchiveProbe::open(wrong);
    ASSERT_TRUE(pw.ok());
    EXPECT_TRUE(pw->has_fence());
    auto aw = Archive::open(wrong);
    auto vw = aw->verify();
    ASSERT_TRUE(vw.ok());
    ASSERT_EQ(vw->size(), 1u);
    EXPECT_NE((*vw)[0].message.find("does not separate"), std::string::npos) << (*vw)[0].message;
    check_all(wrong, 40);
  }
}

TEST(Probe, AnUpdatedArchiveLeavesTheFenceStale) {
  TempDir tmp;
  const auto names = tricky_names(300);
  const std::string path = write_archive(tmp, names, "u.mmar");
  {
    auto a = Archive::open(path);
    ASSERT_TRUE(a.ok());
    std::vector<UpdateMember> members;
    for (uint32_t i = 0; i < a->size(); ++i) {
      auto m = a->at(i);
      UpdateMember u;
      u.name = std::string(m->name);
      u.mode = m->mode;
      u.keep = i;
      members.push_back(u);
    }
    UpdateMember added;
    added.name = "a/new";
    added.symlink_target = "b";
    added.mode = 0120777;
    members.push_back(added);
    std::sort(members.begin(), members.end(), [](auto& x, auto& y) { return x.name < y.name; });
    ASSERT_TRUE(commit_generation(path, *a, members).ok());
  }
  auto p = ArchiveProbe::open(path);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->has_fence());  // generation 1's fence, generation 2's index
  auto m = p->find("a/new");
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(m->has_value());
  auto a = Archive::open(path);
  auto v = a->verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->empty());
  check_all(path, 8);
}

TEST(Probe, BadFilesGiveOneLineErrors) {
  TempDir tmp;
  const std::string path = write_archive(tmp, tricky_names(200), "t.mmar");
  auto bytes = test::read_file(path);
  auto a = Archive::open(path);
  ASSERT_TRUE(a.ok());
  // Cut inside the index: the lookup's read comes up short.
  const std::string cut = tmp / "cut.mmar";
  test::write_file(cut, std::vector<std::byte>(bytes.begin(), bytes.end() - 200));
  auto p = ArchiveProbe::open(cut);
  // The index runs past the file's end: refused at open (the size is known
  // from fstat), or by the lookup whose read comes up short.
  bool failed = !p.ok();
  if (!p.ok()) {
    EXPECT_NE(p.error().message().find("cut.mmar"), std::string::npos) << p.error().message();
    EXPECT_EQ(p.error().message().find('\n'), std::string::npos);
  }
  for (uint32_t i = 0; p.ok() && i < a->size(); ++i) {
    auto r = p->find(a->at(i)->name);
    if (!r.ok()) {
      failed = true;
      EXPECT_NE(r.error().message().find("cut.mmar"), std::string::npos) << r.error().message();
      EXPECT_EQ(r.error().message().find('\n'), std::string::npos);
    }
  }
  EXPECT_TRUE(failed);
  // Not an archive; both superblocks broken; a missing file.
  test::write_file(tmp / "plain", test::to_bytes("just text"));
  auto plain = ArchiveProbe::open(tmp / "plain");
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.error().code(), Errc::unsupported);
  auto broken = bytes;
  broken[20] = std::byte{0x55};
  broken[64 + 20] = std::byte{0x55};
  test::write_file(tmp / "broken.mmar", broken);
  auto pb = ArchiveProbe::open(tmp / "broken.mmar");
  ASSERT_FALSE(pb.ok());
  EXPECT_NE(pb.error().message().find("both superblocks"), std::string::npos) << pb.error().message();
  EXPECT_FALSE(ArchiveProbe::open(tmp / "missing").ok());
}

}  // namespace
}  // namespace mmar
