// SPDX-License-Identifier: BSD-2-Clause
// In-place updates (ArchiveUpdater): index deltas that Archive::open merges
// to exactly what a model of the commits holds, one writer at a time, a
// failed commit that leaves the file as it was, names the tools would refuse
// refused at commit, automatic compaction bounding the file to 2x its live
// data.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <set>

#include <xxhash.h>

#include "archive/format.h"
#include "mmar/archive.h"
#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;

std::string str(const Bytes& b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

// A file holding `content`, open for reading (the data_fd of a put).
int content_fd(const TempDir& tmp, const std::string& content) {
  static int n = 0;
  const std::string path = tmp / ("c" + std::to_string(n++));
  test::write_file(path, test::to_bytes(content));
  return ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
}

UpdateMember file_member(const std::string& name, int fd, uint64_t size) {
  UpdateMember u;
  u.name = name;
  u.mode = S_IFREG | 0644;
  u.mtime_ns = 1000;
  u.data_fd = fd;
  u.size = size;
  return u;
}

// Every member of `path`'s current generation equals the model (name ->
// contents; directories have contents "<dir>").
void expect_matches(const std::string& path, const std::map<std::string, std::string>& model) {
  auto a = Archive::open(path);
  ASSERT_TRUE(a.ok()) << a.error().message();
  ASSERT_EQ(a->size(), model.size());
  auto it = model.begin();
  auto r = a->for_each([&](const Member& m) -> Result<void> {
    EXPECT_EQ(m.name, it->first);
    if (m.is_dir()) {
      EXPECT_EQ("<dir>", it->second) << m.name;
    } else {
      auto b = a->read(m);
      EXPECT_TRUE(b.ok()) << m.name;
      if (b.ok()) {
        EXPECT_EQ(str(*b), it->second) << m.name;
      }
    }
    ++it;
    return success();
  });
  ASSERT_TRUE(r.ok()) << r.error().message();
  auto problems = a->verify();
  ASSERT_TRUE(problems.ok());
  EXPECT_TRUE(problems->empty()) << (*problems)[0].message;
}

class Update : public ::testing::Test {
 protected:
  // An archive of `count` small files f0000.., in directory d.
  std::string make_archive(int count, std::map<std::string, std::string>& model) {
    Writer w({.codec = Codec::none});
    EXPECT_TRUE(w.add_directory("d").ok());
    model["d"] = "<dir>";
    for (int i = 0; i < count; ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "d/f%04d", i);
      std::string body = "file " + std::to_string(i);
      EXPECT_TRUE(w.add_bytes(name, test::to_bytes(body)).ok());
      model[name] = body;
    }
    const std::string path = tmp_ / "a.mmar";
    EXPECT_TRUE(w.write(path).ok());
    return path;
  }
  TempDir tmp_;
};

TEST_F(Update, DeltaCommitsMergeToTheModel) {
  std::map<std::string, std::string> model;
  const std::string path = make_archive(1000, model);
  const uint64_t start_size = test::read_file(path).size();
  std::mt19937 rng(11);
  auto u = ArchiveUpdater::open(path, {.compact_ratio = 0});
  ASSERT_TRUE(u.ok()) << u.error().message();
  uint64_t index_bytes = 0;
  int fulls = 0;
  for (int c = 0; c < 300; ++c) {
    std::vector<UpdateMember> put;
    std::vector<std::string> remove;
    std::vector<UniqueFd> fds;
    const int changes = 1 + static_cast<int>(rng() % 3);
    std::set<std::string> touched;
    for (int k = 0; k < changes; ++k) {
      const int what = static_cast<int>(rng() % 3);
      char name[32];
      std::snprintf(name, sizeof name, "d/f%04d", static_cast<int>(rng() % 1400));
      if (touched.count(name) != 0) continue;
      touched.insert(name);
      if (what == 0 && model.count(name) != 0) {
        remove.push_back(name);
        model.erase(name);
      } else {
        std::string body = "v" + std::to_string(c) + " " + std::string(rng() % 300, 'x');
        fds.emplace_back(content_fd(tmp_, body));
        put.push_back(file_member(name, fds.back().get(), body.size()));
        model[name] = body;
      }
    }
    const uint64_t before = u->file_size();
    auto r = u->commit(std::move(put), remove);
    ASSERT_TRUE(r.ok()) << r.error().message();
    fulls += r->full_index ? 1 : 0;
    index_bytes += u->file_size() - before - r->appended;
    if (c % 37 == 0) {
      expect_matches(path, model);
      // A new updater picks up the chain where this one left it.
      u = Result<ArchiveUpdater>(Error(Errc::io, "closed"));
      u = ArchiveUpdater::open(path, {.compact_ratio = 0});
      ASSERT_TRUE(u.ok()) << u.error().message();
    }
  }
  expect_matches(path, model);
  // A whole index of 1,000 members is ~70 KB; 300 of them would be 21 MB.
  // Deltas: a few KB per commit, amortised.
  EXPECT_LT(index_bytes / 300, 8192u) << fulls << " full indexes";
  EXPECT_LT(test::read_file(path).size(), start_size + 300 * 12288);
}

TEST_F(Update, OneWriterAtATime) {
  std::map<std::string, std::string> model;
  const std::string path = make_archive(3, model);
  auto first = ArchiveUpdater::open(path);
  ASSERT_TRUE(first.ok());
  const std::string holder = "in use by another writer (pid " + std::to_string(getpid()) + ")";
  auto second = ArchiveUpdater::open(path);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code(), Errc::busy);
  EXPECT_EQ(second.error().message(), path + ": " + holder);
  auto compacted = compact_archive(path);
  ASSERT_FALSE(compacted.ok());
  EXPECT_EQ(compacted.error().code(), Errc::busy);
  Writer w;
  ASSERT_TRUE(w.add_bytes("x", test::to_bytes("x")).ok());
  auto replaced = w.write(path);
  ASSERT_FALSE(replaced.ok()) << "create replaced an archive another writer holds";
  EXPECT_EQ(replaced.error().code(), Errc::busy);
  auto a = Archive::open(path);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(commit_generation(path, *a, {}).error().code(), Errc::busy);
  // Readers are never refused; and once the writer is gone, writers may go.
  expect_matches(path, model);
  first = Result<ArchiveUpdater>(Error(Errc::io, "closed"));
  EXPECT_TRUE(compact_archive(path).ok());
  EXPECT_TRUE(ArchiveUpdater::open(path).ok());
}

TEST_F(Update, AFailedCommitLeavesTheFileAsItWas) {
  std::map<std::string, std::string> model;
  const std::string path = make_archive(10, model);
  auto u = ArchiveUpdater::open(path);
  ASSERT_TRUE(u.ok());
  const auto before = test::read_file(path);
  // The second member's bytes cannot be read (a write-only fd): the first
  // one's data was appended by then, and must be gone again.
  UniqueFd good(content_fd(tmp_, std::string(100000, 'g')));
  const std::string wpath = tmp_ / "writeonly";
  UniqueFd bad(::open(wpath.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  ASSERT_EQ(write(bad.get(), std::string(5000, 'b').data(), 5000), 5000);
  std::vector<UpdateMember> put;
  put.push_back(file_member("a-good", good.get(), 100000));
  put.push_back(file_member("b-bad", bad.get(), 5000));
  auto r = u->commit(std::move(put), {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("b-bad"), std::string::npos) << r.error().message();
  EXPECT_EQ(test::read_file(path), before) << "the failed commit left bytes behind";
  // And the next commit works from there.
  std::vector<UpdateMember> again;
  again.push_back(file_member("a-good", good.get(), 100000));
  ASSERT_TRUE(u->commit(std::move(again), {}).ok());
  model["a-good"] = std::string(100000, 'g');
  expect_matches(path, model);
}

TEST_F(Update, NamesTheToolsWouldRefuseAreRefused) {
  std::map<std::string, std::string> model;
  const std::string path = make_archive(2, model);
  auto u = ArchiveUpdater::open(path);
  ASSERT_TRUE(u.ok());
  const auto before = test::read_file(path);
  UniqueFd fd(content_fd(tmp_, "x"));
  for (const char* bad : {"x/../y", "/abs", "a//b", "./a", "d/f0000/below", "d"}) {
    std::vector<UpdateMember> put;
    put.push_back(file_member(bad, fd.get(), 1));
    auto r = u->commit(std::move(put), {});
    EXPECT_FALSE(r.ok()) << bad;
  }
  std::vector<UpdateMember> put;
  put.push_back(file_member(std::string(4097, 'n'), fd.get(), 1));
  EXPECT_FALSE(u->commit(std::move(put), {}).ok());
  EXPECT_FALSE(u->commit({}, {"no-such-member"}).ok());
  EXPECT_EQ(test::read_file(path), before);
  // The writer refuses a file with members below it too, and verify finds
  // one made by hand.
  Writer w;
  ASSERT_TRUE(w.add_bytes("a", test::to_bytes("file")).ok());
  ASSERT_TRUE(w.add_bytes("a/b", test::to_bytes("below")).ok());
  EXPECT_FALSE(w.write(tmp_ / "bad.mmar").ok());
  Writer ok;
  ASSERT_TRUE(ok.add_directory("a").ok());
  ASSERT_TRUE(ok.add_bytes("a-x", test::to_bytes("neighbour")).ok());
  ASSERT_TRUE(ok.add_bytes("a/b", test::to_bytes("below")).ok());
  ASSERT_TRUE(ok.write(tmp_ / "crafted.mmar").ok());
  auto bytes = test::read_file(tmp_ / "crafted.mmar");
  test::patch_entry(bytes, 0, [](format::Entry& e) {
    e.me_mode = S_IFREG | 0644;
    e.me_xxh3 = member_checksum({});
  });
  test::write_file(tmp_ / "crafted.mmar", bytes);
  auto a = Archive::open(tmp_ / "crafted.mmar");
  ASSERT_TRUE(a.ok());
  auto problems = a->verify();
  ASSERT_TRUE(problems.ok());
  ASSERT_EQ(problems->size(), 1u);
  EXPECT_NE((*problems)[0].message.find("'a/b' lies below 'a', which is not a directory"), std::string::npos)
      << (*problems)[0].message;
}

TEST_F(Update, AReplacedArchiveIsNeverWritten) {
  std::map<std::string, std::string> model;
  const std::string path = make_archive(2, model);
  auto u = ArchiveUpdater::open(path);
  ASSERT_TRUE(u.ok());
  // Someone moves another file over the archive's name.
  test::write_file(tmp_ / "other", test::to_bytes("someone else's file"));
  ASSERT_EQ(::rename((tmp_ / "other").c_str(), path.c_str()), 0);
  UniqueFd fd(content_fd(tmp_, "x"));
  std::vector<UpdateMember> put;
  put.push_back(file_member("new", fd.get(), 1));
  auto r = u->commit(std::move(put), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().sys_errno(), EIO);
  EXPECT_NE(r.error().message().find("replaced"), std::string::npos) << r.error().message();
  EXPECT_EQ(test::read_file(path), test::to_bytes("someone else's file"));
}

TEST_F(Update, ADamagedDeltaIsAnError) {
  std::map<std::string, std::string> model;
  const std::string path = make_archive(5, model);
  {
    auto u = ArchiveUpdater::open(path);
    ASSERT_TRUE(u.ok());
    UniqueFd fd(content_fd(tmp_, "hello"));
    std::vector<UpdateMember> put;
    put.push_back(file_member("zz", fd.get(), 5));
    auto r = u->commit(std::move(put), {});
    ASSERT_TRUE(r.ok());
    ASSERT_FALSE(r->full_index);
  }
  auto bytes = test::read_file(path);
  // The delta is the last thing in the file: flip a byte of its names.
  bytes[bytes.size() - 1] ^= std::byte{1};
  test::write_file(path, bytes);
  auto a = Archive::open(path);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code(), Errc::checksum);
  EXPECT_NE(a.error().message().find("index delta checksum mismatch (at offset 0x"), std::string::npos)
      << a.error().message();
  // A reader that does not know a superblock flag refuses the archive.
  std::map<std::string, std::string> m2;
  const std::string p2 = make_archive(1, m2);
  auto b2 = test::read_file(p2);
  test::patch_superblock(b2, [](format::Superblock& sb) { sb.sb_flags = 64; });
  test::write_file(p2, b2);
  auto refused = Archive::open(p2);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), Errc::unsupported);
}

TEST_F(Update, CompactionKeepsTheFileWithinTwiceItsLiveData) {
  std::map<std::string, std::string> model;
  const std::string path = make_archive(20, model);
  auto u = ArchiveUpdater::open(path);
  ASSERT_TRUE(u.ok());
  int compactions = 0;
  for (int round = 0; round < 40; ++round) {
    std::string body(1 << 20, static_cast<char>('a' + round % 26));
    UniqueFd fd(content_fd(tmp_, body));
    std::vector<UpdateMember> put;
    put.push_back(file_member("big", fd.get(), body.size()));
    auto r = u->commit(std::move(put), {});
    ASSERT_TRUE(r.ok()) << r.error().message();
    compactions += r->compacted ? 1 : 0;
    model["big"] = body;
    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_LE(static_cast<uint64_t>(st.st_size), 2 * u->live_bytes() + (uint64_t{1} << 20)) << "round " << round;
  }
  EXPECT_GT(compactions, 5);
  expect_matches(path, model);
  // The compacted archive has a fresh, usable name fence and generation.
  auto a = Archive::open(path);
  ASSERT_TRUE(a.ok());
  EXPECT_GT(a->generation(), 1u);
}

// Compaction copies stored bytes as they are; it reads the copy back before
// the copy replaces the archive. A damaged member stops it (explicit: an
// error naming the member; automatic, in a commit: the commit stands and
// the archive is left as committed), so damage is never laundered into a
// fresh file, and the file is not replaced.
TEST_F(Update, CompactionRefusesDamagedData) {
  std::map<std::string, std::string> model;
  const std::string path = make_archive(20, model);
  {
    auto a = Archive::open(path);
    ASSERT_TRUE(a.ok());
    auto m = a->find("d/f0007");
    ASSERT_TRUE(m.ok());
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, "X", 1, static_cast<off_t>(m->data_offset)), 1);
    ::close(fd);
  }
  struct stat before {};
  ASSERT_EQ(stat(path.c_str(), &before), 0);
  const auto bytes_before = test::read_file(path);
  {
    auto u = ArchiveUpdater::open(path, {.compact_ratio = 0});
    ASSERT_TRUE(u.ok());
    auto c = u->compact();
    ASSERT_FALSE(c.ok());
    EXPECT_NE(c.error().message().find("not compacted"), std::string::npos) << c.error().message();
    EXPECT_NE(c.error().message().find("d/f0007"), std::string::npos) << c.error().message();
  }
  EXPECT_EQ(test::read_file(path), bytes_before);
  // Automatic: commits that pass the ratio at once still succeed.
  auto u = ArchiveUpdater::open(path, {.compact_ratio = 1.0, .compact_min_bytes = 0});
  ASSERT_TRUE(u.ok());
  for (int round = 0; round < 3; ++round) {
    std::string body(4096, static_cast<char>('a' + round));
    UniqueFd fd(content_fd(tmp_, body));
    std::vector<UpdateMember> put;
    put.push_back(file_member("d/f0001", fd.get(), body.size()));
    auto r = u->commit(std::move(put), {});
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_FALSE(r->compacted);
  }
  struct stat after {};
  ASSERT_EQ(stat(path.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);  // never replaced
  auto a = Archive::open(path);
  ASSERT_TRUE(a.ok());
  auto problems = a->verify();
  ASSERT_TRUE(problems.ok());
  ASSERT_EQ(problems->size(), 1u);
  EXPECT_NE(problems->front().message.find("d/f0007"), std::string::npos);
  // Once mended, the same updater compacts at its next commit.
  {
    auto m = a->find("d/f0007");
    ASSERT_TRUE(m.ok());
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, "f", 1, static_cast<off_t>(m->data_offset)), 1);
    ::close(fd);
  }
  std::string body(4096, 'z');
  UniqueFd fd(content_fd(tmp_, body));
  std::vector<UpdateMember> put;
  put.push_back(file_member("d/f0001", fd.get(), body.size()));
  auto r = u->commit(std::move(put), {});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_TRUE(r->compacted);
  model["d/f0001"] = body;
  expect_matches(path, model);
}

// Incremental commits: only the dirty ranges are appended (an extent map
// over the earlier bytes), for raw, extent-mapped and compressed bases,
// through cuts and growth; compaction turns maps back into raw members.
TEST_F(Update, IncrementalCommitsAppendOnlyWhatChanged) {
  std::string big(1 << 20, '\0');
  std::mt19937 rng(5);
  for (auto& c : big) c = static_cast<char>('a' + rng() % 26);
  const std::string path = tmp_ / "inc.mmar";
  {
    Writer raw({.codec = Codec::none});
    ASSERT_TRUE(raw.add_bytes("raw", test::to_bytes(big)).ok());
    ASSERT_TRUE(raw.write(tmp_ / "raw.mmar").ok());
  }
  // Two archives: one with a raw base, one with a zstd base.
  struct Case {
    std::string file, member, body;
  };
  Writer z({.codec = Codec::zstd, .threshold = 100});
  ASSERT_TRUE(z.add_bytes("packed", test::to_bytes(big)).ok());
  ASSERT_TRUE(z.write(path).ok());
  for (const Case& c : {Case{tmp_ / "raw.mmar", "raw", big}, Case{path, "packed", big}}) {
    SCOPED_TRACE(c.member);
    auto u = ArchiveUpdater::open(c.file, {.compact_ratio = 0});
    ASSERT_TRUE(u.ok());
    std::string content = c.body;
    std::optional<uint32_t> keep = 0;
    std::optional<StoredExtent> extent;
    const std::string spill_path = tmp_ / ("spill-" + c.member);
    for (int round = 0; round < 12; ++round) {
      // A spill file holding only the dirty ranges, at their offsets.
      UniqueFd spill(::open(spill_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      std::vector<std::pair<uint64_t, uint64_t>> dirty;
      uint64_t size = content.size();
      if (round == 5) {
        size = content.size() - 300000;  // a cut
        content.resize(size);
      } else if (round == 7) {
        dirty.emplace_back(size, size + 50000);  // growth: zeros
        size += 50000;
        content.resize(size, '\0');
      }
      for (int k = 0; k < 3; ++k) {
        const uint64_t at = rng() % (size - 5000);
        const uint64_t len = 1 + rng() % 4000;
        std::string data(len, static_cast<char>('A' + round));
        ASSERT_EQ(pwrite(spill.get(), data.data(), len, static_cast<off_t>(at)), static_cast<ssize_t>(len));
        content.replace(at, len, data);
        dirty.emplace_back(at, at + len);
      }
      std::sort(dirty.begin(), dirty.end());
      std::vector<std::pair<uint64_t, uint64_t>> merged;
      for (auto d : dirty) {
        if (!merged.empty() && d.first <= merged.back().second) {
          merged.back().second = std::max(merged.back().second, d.second);
        } else {
          merged.push_back(d);
        }
      }
      UpdateMember m;
      m.name = c.member;
      m.mode = S_IFREG | 0644;
      m.data_fd = spill.get();
      m.size = size;
      m.incremental = true;
      m.keep = keep;
      m.extent = extent;
      m.dirty = merged;
      std::vector<UpdateMember> put;
      put.push_back(std::move(m));
      auto r = u->commit(std::move(put), {});
      ASSERT_TRUE(r.ok()) << r.error().message();
      ASSERT_TRUE(r->extents[0].has_value());
      if (c.member == "raw" || round > 0) {
        EXPECT_TRUE(r->extents[0]->extent_map) << "round " << round;
        EXPECT_LT(r->appended, 64u * 1024) << "round " << round << ": more than the change was appended";
      } else {
        EXPECT_FALSE(r->extents[0]->extent_map) << "a compressed base is written whole once";
      }
      keep.reset();
      extent = r->extents[0];
      // Reads through the updater and through a fresh Archive agree.
      std::string via(content.size(), '\0');
      ASSERT_TRUE(u->read_stored(*extent, 0, via.size(), via.data()).ok());
      ASSERT_EQ(via, content) << "round " << round;
      auto a = Archive::open(c.file);
      ASSERT_TRUE(a.ok()) << a.error().message();
      auto b = a->read(c.member);
      ASSERT_TRUE(b.ok()) << b.error().message();
      ASSERT_EQ(str(*b), content) << "round " << round;
    }
    // Compaction: a raw member again, same bytes, verify clean.
    ASSERT_TRUE(u->compact().ok());
    auto a = Archive::open(c.file);
    ASSERT_TRUE(a.ok());
    auto m = a->find(c.member);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->codec, Codec::none);
    auto b = a->read(*m);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(str(*b), content);
    auto problems = a->verify();
    ASSERT_TRUE(problems.ok());
    EXPECT_TRUE(problems->empty());
  }
}

// A damaged extent map is an error naming the member, never other bytes.
TEST_F(Update, ADamagedExtentMapIsAnError) {
  Writer raw({.codec = Codec::none});
  ASSERT_TRUE(raw.add_bytes("f", test::to_bytes(std::string(100000, 'x'))).ok());
  const std::string path = tmp_ / "m.mmar";
  ASSERT_TRUE(raw.write(path).ok());
  uint64_t map_offset = 0;
  {
    auto u = ArchiveUpdater::open(path, {.compact_ratio = 0});
    ASSERT_TRUE(u.ok());
    UniqueFd fd(content_fd(tmp_, "changed"));
    UpdateMember m = file_member("f", fd.get(), 100000);
    m.incremental = true;
    m.keep = 0;
    m.dirty = {{0, 7}};
    std::vector<UpdateMember> put;
    put.push_back(std::move(m));
    auto r = u->commit(std::move(put), {});
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(r->extents[0]->extent_map);
    map_offset = r->extents[0]->offset;
  }
  auto bytes = test::read_file(path);
  // The second extent's physical offset pointed past the file.
  const uint64_t physical = map_offset + 16 + 24 + 16;
  for (int i = 0; i < 8; ++i) bytes[physical + i] = std::byte{0x7f};
  test::write_file(path, bytes);
  auto a = Archive::open(path);
  ASSERT_TRUE(a.ok());
  auto r = a->read("f");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("member 'f': extent map: extent 1 data is not inside the file (at offset 0x"),
            std::string::npos)
      << r.error().message();
}

// Everything removed, in a delta and in a whole table (the null memcpy of
// an empty name table was live in the updater's own encoder once).
TEST_F(Update, RemovingEveryMemberLeavesAnEmptyArchive) {
  for (bool full : {false, true}) {
    std::map<std::string, std::string> model;
    const std::string path = make_archive(full ? 200 : 3, model);
    auto u = ArchiveUpdater::open(path);
    ASSERT_TRUE(u.ok());
    std::vector<std::string> all;
    for (const auto& [name, body] : model) all.push_back(name);
    auto r = u->commit({}, all);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->full_index, full);
    expect_matches(path, {});
  }
}

// Found by review: a delta removing a link's target leaves the member
// readable, without its link (FORMAT.md), not refused as out of range.
TEST_F(Update, RemovingALinkTargetDropsTheLink) {
  Writer w({.codec = Codec::none});
  ASSERT_TRUE(w.add_bytes("modules/a", test::to_bytes("split")).ok());
  ASSERT_TRUE(w.add_bytes("vmlinux", test::to_bytes("base")).ok());
  ASSERT_TRUE(w.add_bytes("zz", test::to_bytes("other")).ok());
  ASSERT_TRUE(w.set_link("modules/a", "vmlinux").ok());
  const std::string path = tmp_ / "l.mmar";
  ASSERT_TRUE(w.write(path).ok());
  {
    auto u = ArchiveUpdater::open(path);
    ASSERT_TRUE(u.ok());
    auto r = u->commit({}, {"vmlinux"});
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_FALSE(r->full_index);
  }
  std::map<std::string, std::string> model = {{"modules/a", "split"}, {"zz", "other"}};
  expect_matches(path, model);
  auto a = Archive::open(path);
  ASSERT_TRUE(a.ok());
  auto m = a->find("modules/a");
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_FALSE(m->link.has_value());
}

// Found by review: entries that share a data offset with different sizes
// (the format allows overlapping data) survive compaction each with its own
// bytes.
TEST_F(Update, CompactionKeepsOverlappingEntriesApart) {
  Writer w({.codec = Codec::none});
  ASSERT_TRUE(w.add_bytes("a", test::to_bytes(std::string(5000, 'a') + std::string(5000, 'b'))).ok());
  ASSERT_TRUE(w.add_bytes("b", test::to_bytes(std::string(3000, 'x'))).ok());
  const std::string path = tmp_ / "o.mmar";
  ASSERT_TRUE(w.write(path).ok());
  auto bytes = test::read_file(path);
  {
    auto a = Archive::open(path);
    ASSERT_TRUE(a.ok());
    const Member ma = *a->find("a");
    test::patch_entry(bytes, 1, [&](format::Entry& e) {
      e.me_data_offset = ma.data_offset;
      e.me_stored_size = 3000;
      e.me_size = 3000;
      e.me_xxh3 = member_checksum(test::to_bytes(std::string(3000, 'a')));
      e.me_flags = 0;
    });
  }
  test::write_file(path, bytes);
  std::map<std::string, std::string> model = {{"a", std::string(5000, 'a') + std::string(5000, 'b')},
                                              {"b", std::string(3000, 'a')}};
  expect_matches(path, model);
  auto u = ArchiveUpdater::open(path);
  ASSERT_TRUE(u.ok());
  ASSERT_TRUE(u->compact().ok());
  expect_matches(path, model);
}

// Found by review: a small change to a large file is an extent map, and
// does not count the file's data as garbage (no compaction per commit).
TEST_F(Update, ASmallChangeToABigFileDoesNotCompact) {
  Writer w({.codec = Codec::none});
  ASSERT_TRUE(w.add_bytes("big", test::to_bytes(std::string(8 << 20, 'b'))).ok());
  const std::string path = tmp_ / "big.mmar";
  ASSERT_TRUE(w.write(path).ok());
  auto u = ArchiveUpdater::open(path);
  ASSERT_TRUE(u.ok());
  std::optional<StoredExtent> extent;
  for (int round = 0; round < 20; ++round) {
    UniqueFd fd(content_fd(tmp_, std::string(static_cast<size_t>(round) * 1000 + 1, 'c')));
    UpdateMember m = file_member("big", fd.get(), 8 << 20);
    m.incremental = true;
    if (extent) {
      m.extent = extent;
    } else {
      m.keep = 0;
    }
    m.dirty = {{static_cast<uint64_t>(round) * 1000, static_cast<uint64_t>(round) * 1000 + 1}};
    std::vector<UpdateMember> put;
    put.push_back(std::move(m));
    auto r = u->commit(std::move(put), {});
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_FALSE(r->compacted) << "round " << round;
    ASSERT_TRUE(r->extents[0]->extent_map);
    extent = r->extents[0];
  }
  EXPECT_LT(u->file_size(), (9u << 20));
}

// Found by review: a map may not claim more bytes than the file holds, and
// large extent-mapped members are read by range, not assembled per read.
TEST_F(Update, ExtentMapsAreBoundedAndReadByRange) {
  Writer w({.codec = Codec::none});
  std::string body(4 << 20, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 23);
  ASSERT_TRUE(w.add_bytes("f", test::to_bytes(body)).ok());
  const std::string path = tmp_ / "r.mmar";
  ASSERT_TRUE(w.write(path).ok());
  {
    auto u = ArchiveUpdater::open(path);
    ASSERT_TRUE(u.ok());
    UniqueFd fd(content_fd(tmp_, std::string(100, 'Z')));
    UpdateMember m = file_member("f", fd.get(), body.size());
    m.incremental = true;
    m.keep = 0;
    m.dirty = {{0, 100}};
    std::vector<UpdateMember> put;
    put.push_back(std::move(m));
    ASSERT_TRUE(u->commit(std::move(put), {}).ok());
  }
  body.replace(0, 100, std::string(100, 'Z'));
  OpenOptions small_cache;
  small_cache.cache_bytes = 1 << 20;  // smaller than the member: no whole copy kept
  auto a = Archive::open(path, small_cache);
  ASSERT_TRUE(a.ok());
  auto m = a->find("f");
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->codec, Codec::extents);
  std::mt19937 rng(3);
  std::vector<char> buf(70000);
  for (int i = 0; i < 200; ++i) {
    const uint64_t off = rng() % body.size();
    auto got = a->read(*m, off, buf.size(), buf.data());
    ASSERT_TRUE(got.ok()) << got.error().message();
    ASSERT_EQ(*got, std::min<size_t>(buf.size(), body.size() - off));
    ASSERT_EQ(std::string(buf.data(), *got), body.substr(off, *got)) << off;
  }
  // A map claiming a terabyte in a file of a few megabytes is refused.
  // The map's entry is the only one of the delta the superblock points at:
  // patch its size there, then the delta's and the superblock's checksums.
  auto bytes = test::read_file(path);
  {
    format::Superblock sb[2];
    std::memcpy(sb, bytes.data(), sizeof sb);
    const int cur = sb[1].sb_generation > sb[0].sb_generation ? 1 : 0;
    ASSERT_NE(sb[cur].sb_flags & format::kSbFlagIndexDelta, 0u);
    const uint64_t at = sb[cur].sb_index_offset;
    format::Entry e;
    std::memcpy(&e, bytes.data() + at + sizeof(format::DeltaHeader), sizeof e);
    e.me_size = uint64_t{1} << 40;
    std::memcpy(bytes.data() + at + sizeof(format::DeltaHeader), &e, sizeof e);
    sb[cur].sb_index_xxh3 = XXH3_64bits(bytes.data() + at, sb[cur].sb_index_size);
    sb[cur].sb_xxh3 = XXH3_64bits(&sb[cur], offsetof(format::Superblock, sb_xxh3));
    std::memcpy(bytes.data() + cur * sizeof(format::Superblock), &sb[cur], sizeof sb[cur]);
  }
  test::write_file(path, bytes);
  auto bad = Archive::open(path);
  ASSERT_TRUE(bad.ok());
  auto at = bad->at(0);
  ASSERT_FALSE(at.ok());
  EXPECT_NE(at.error().message().find("extent-mapped member of 1099511627776 bytes in a file of"), std::string::npos)
      << at.error().message();
}

// Found by review: compaction keeps the archive's mode and owner, and
// compacts the file a symlink names, leaving the symlink.
TEST_F(Update, CompactionKeepsModeOwnerAndSymlinks) {
  std::map<std::string, std::string> model;
  const std::string path = make_archive(5, model);
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  if (geteuid() == 0) {
    ASSERT_EQ(chown(path.c_str(), 65534, 65534), 0);
  }
  const std::string link = tmp_ / "link.mmar";
  ASSERT_EQ(symlink(path.c_str(), link.c_str()), 0);
  ASSERT_TRUE(compact_archive(link).ok());
  {
    auto u = ArchiveUpdater::open(link);
    ASSERT_TRUE(u.ok());
    ASSERT_TRUE(u->compact().ok());
  }
  struct stat st {};
  ASSERT_EQ(lstat(link.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode)) << "the symlink was replaced by a file";
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  if (geteuid() == 0) {
    EXPECT_EQ(st.st_uid, 65534u);
    EXPECT_EQ(st.st_gid, 65534u);
  }
  expect_matches(path, model);
}

}  // namespace
}  // namespace mmar
