// SPDX-License-Identifier: BSD-2-Clause
// mmar mount --rw: every operation lands in the archive (checked against
// the same operations on a plain directory); write() and shared mmap are
// coherent across processes; fsync persists; SIGKILL of the filesystem at
// random moments always leaves an archive that verifies, holding the old or
// the new contents; mmar compact drops superseded data.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <cstring>
#include <random>
#include <thread>

#include "mmar/archive.h"
#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;

const std::string kMmar = MMAR_BIN;
std::string q(const std::string& s) { return "'" + s + "'"; }

bool is_fuse(const std::string& dir) {
  struct statfs s {};
  return statfs(dir.c_str(), &s) == 0 && s.f_type == 0x65735546;
}

bool wait_mounted(const std::string& dir) {
  for (int i = 0; i < 300 && !is_fuse(dir); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return is_fuse(dir);
}

// A writable mount served by a foreground child we can SIGKILL.
class RwMount {
 public:
  RwMount(const std::string& archive, const std::string& dir) : dir_(dir) {
    pid_ = fork();
    if (pid_ == 0) {
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 2);
      execl(kMmar.c_str(), "mmar", "mount", "-f", "--rw", archive.c_str(), dir.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    ok_ = pid_ > 0 && wait_mounted(dir);
  }
  ~RwMount() { unmount(); }
  bool ok() const { return ok_; }
  void unmount() {
    if (pid_ <= 0) return;
    // The kernel may still be releasing the last file closed: retry a
    // little, then detach lazily rather than wait on a mount forever.
    for (int i = 0; i < 50 && test::run("fusermount3 -u " + q(dir_) + " 2>/dev/null") != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (is_fuse(dir_)) {
      // Still in use (a failed assertion left a file open): detach and end
      // the daemon, or waiting for it would hang the test binary.
      test::run("fusermount3 -u -z " + q(dir_) + " 2>/dev/null");
      ::kill(pid_, SIGKILL);
    }
    int status;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  void kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    test::run("fusermount3 -u -z " + q(dir_) + " 2>/dev/null");
  }

 private:
  std::string dir_;
  pid_t pid_ = -1;
  bool ok_ = false;
};

class MountRw : public ::testing::Test {
 public:
  void SetUp() override {
    if (access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "FUSE tests need /dev/fuse";
    if (test::run("command -v fusermount3 >/dev/null 2>&1") != 0) GTEST_SKIP() << "FUSE tests need fusermount3";
  }
  std::string dir(const std::string& name) {
    std::string d = tmp_ / name;
    EXPECT_EQ(::mkdir(d.c_str(), 0755), 0);
    return d;
  }
  TempDir tmp_;
};

std::string tree_listing(const std::string& dir) {
  std::string out;
  test::run("cd " + q(dir) +
                " && find . -mindepth 1 \\( -type d -printf '%p d %m\\n' \\) -o -printf '%p %y %m %s %l\\n' "
                "| LC_ALL=C sort && find . -type f "
                "-print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum",
            &out);
  return out;
}

// The same shell script on a plain directory and on the mount.
const char* kScript =
    "set -e\n"
    "echo new > new.txt\n"
    "printf 'more' >> dir/a.txt\n"
    "mkdir -p made/deeper\n"
    "echo deep > made/deeper/file\n"
    "ln -s ../b.txt made/link\n"
    "mv b.txt made/b2.txt\n"
    "mv dir/sub dir/sub2\n"
    "chmod 600 new.txt\n"
    "chmod 700 made\n"
    "rm dir/gone.txt\n"
    "rmdir empty\n"
    "truncate -s 3 dir/a.txt\n"
    "truncate -s 10000 big.bin\n"
    "dd if=/dev/zero of=big.bin bs=1 seek=5000 count=7 conv=notrunc status=none\n"
    "echo replaced > target.txt\n"
    "mv target.txt dir/sub2/x.txt\n";

void make_tree(const std::string& root) {
  ASSERT_EQ(test::run("cd " + q(root) +
                      " && mkdir -p dir/sub empty && echo alpha > dir/a.txt && echo beta > b.txt && "
                      "echo gone > dir/gone.txt && echo x > dir/sub/x.txt && head -c 200000 /dev/urandom > big.bin"),
            0);
}

TEST_F(MountRw, EveryOperationPersists) {
  std::string ref = dir("ref"), src = dir("src"), mnt = dir("m");
  make_tree(ref);
  ASSERT_EQ(test::run("cp -a " + q(ref) + "/. " + q(src)), 0);
  std::string archive = tmp_ / "a.mmar";
  ASSERT_EQ(test::run(kMmar + " create --compress zstd --threshold 1000 -f " + q(archive) + " -C " + q(src) + " ."), 0);
  ASSERT_EQ(test::run("cd " + q(ref) + " && sh -c " + q(kScript)), 0);
  {
    RwMount m(archive, mnt);
    ASSERT_TRUE(m.ok());
    ASSERT_EQ(test::run("cd " + q(mnt) + " && sh -c " + q(kScript) + " 2>&1"), 0);
    EXPECT_EQ(tree_listing(mnt), tree_listing(ref)) << "the mount shows the changes";
  }
  // Unmounted: the archive holds them, and verifies.
  std::string x = dir("x");
  ASSERT_EQ(test::run(kMmar + " verify -q " + q(archive)), 0);
  ASSERT_EQ(test::run(kMmar + " extract -f " + q(archive) + " -C " + q(x)), 0);
  EXPECT_EQ(tree_listing(x), tree_listing(ref));
  // And a second mount sees them too.
  std::string mnt2 = dir("m2");
  RwMount again(archive, mnt2);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(tree_listing(mnt2), tree_listing(ref));
}

// write() is visible through existing shared mappings at once; stores into a
// MAP_SHARED mapping are visible to read(); across processes.
TEST_F(MountRw, WriteAndSharedMmapAreCoherent) {
  std::string src = dir("src"), mnt = dir("m");
  test::write_file(src + "/f", std::vector<std::byte>(16384, std::byte{'.'}));
  std::string archive = tmp_ / "a.mmar";
  ASSERT_EQ(test::run(kMmar + " create --compress none -f " + q(archive) + " -C " + q(src) + " ."), 0);
  RwMount m(archive, mnt);
  ASSERT_TRUE(m.ok());
  const std::string f = mnt + "/f";
  int to_child[2], to_parent[2];
  ASSERT_EQ(pipe(to_child), 0);
  ASSERT_EQ(pipe(to_parent), 0);
  pid_t child = fork();
  if (child == 0) {
    // The mapper: map, wait for the writer, check, store, signal.
    int fd = open(f.c_str(), O_RDWR);
    auto* p = static_cast<char*>(mmap(nullptr, 16384, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    if (p == MAP_FAILED) _exit(2);
    char c = 0;
    if (write(to_parent[1], "r", 1) != 1 || read(to_child[0], &c, 1) != 1) _exit(3);
    if (std::memcmp(p + 100, "written", 7) != 0) _exit(4);  // write() seen through the mapping
    std::memcpy(p + 9000, "stored", 6);                     // a store, read() by others
    if (write(to_parent[1], "s", 1) != 1) _exit(5);
    if (read(to_child[0], &c, 1) != 1) _exit(6);
    munmap(p, 16384);
    close(fd);
    _exit(0);
  }
  char c = 0;
  ASSERT_EQ(read(to_parent[0], &c, 1), 1);
  int fd = open(f.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, "written", 7, 100), 7);
  ASSERT_EQ(write(to_child[1], "w", 1), 1);
  ASSERT_EQ(read(to_parent[0], &c, 1), 1);
  // A third process reads with read(): it sees both.
  std::string seen;
  ASSERT_EQ(test::run("dd if=" + q(f) + " bs=1 skip=9000 count=6 status=none", &seen), 0);
  EXPECT_EQ(seen, "stored");
  char buf[8] = {};
  ASSERT_EQ(pread(fd, buf, 7, 100), 7);
  EXPECT_EQ(std::string(buf, 7), "written");
  ASSERT_EQ(write(to_child[1], "d", 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "mapper failed: " << status;
  // fsync persists both changes.
  ASSERT_EQ(fsync(fd), 0);
  close(fd);
  auto a = Archive::open(archive);
  ASSERT_TRUE(a.ok());
  auto bytes = a->read("f");
  ASSERT_TRUE(bytes.ok());
  std::string content(reinterpret_cast<const char*>(bytes->data()), bytes->size());
  EXPECT_EQ(content.substr(100, 7), "written");
  EXPECT_EQ(content.substr(9000, 6), "stored");
}

// SIGKILL at random moments while a writer updates and fsyncs: the archive
// always verifies and holds a complete version. Returns the rounds in which
// a new version had been committed. `during` runs while the writer writes
// (competing writers); `pad` makes each version larger (to fill a disk).
int kill_rounds(MountRw& t, const std::string& archive, int rounds, size_t pad,
                const std::function<void(const std::string& mnt)>& during) {
  std::mt19937 rng(7);
  int committed_runs = 0;
  for (int round = 0; round < rounds; ++round) {
    std::string mnt = t.dir("m" + std::to_string(round));
    RwMount m(archive, mnt);
    EXPECT_TRUE(m.ok()) << "round " << round;
    if (!m.ok()) return committed_runs;
    // A writer rewriting the file with versions B, C, ... and fsyncing each,
    // plus new files, until killed with the filesystem. It says (a byte on
    // `first`) when its first fsync succeeded: the first round waits for it,
    // so that however slow a loaded machine is, some round kills the mount
    // after a commit (the random delays alone may all fall before one).
    int first[2];
    EXPECT_EQ(::pipe(first), 0);
    pid_t writer = fork();
    if (writer == 0) {
      ::close(first[0]);
      for (int v = 0;; ++v) {
        std::string body(5000 + v * 100 + pad, static_cast<char>('B' + (v % 20)));
        body.resize(body.size() - body.size() % 100);
        int fd = open((mnt + "/counter").c_str(), O_WRONLY | O_TRUNC);
        if (fd < 0) _exit(0);
        if (write(fd, body.data(), body.size()) < 0) _exit(0);
        const bool synced = fsync(fd) == 0;  // may fail (a full disk): the version is then not committed
        close(fd);
        if (synced && first[1] >= 0) {
          if (write(first[1], "s", 1) < 0) _exit(0);
          ::close(first[1]);
          first[1] = -1;
        }
        int g = open((mnt + "/extra" + std::to_string(v % 5)).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (g >= 0) {
          if (write(g, body.data(), 3000) < 0) _exit(0);
          close(g);
        }
      }
    }
    ::close(first[1]);
    if (round == 0 && pad == 0) {  // (with pad, the disk fills: commits may all fail)
      struct pollfd pfd {first[0], POLLIN, 0};
      ::poll(&pfd, 1, 30000);  // a commit happened (or the writer could not commit: a full disk)
    }
    ::close(first[0]);
    const auto until = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(std::uniform_int_distribution<int>(20, 400)(rng));
    if (during) during(mnt);
    std::this_thread::sleep_until(until);
    m.kill9();
    ::kill(writer, SIGKILL);
    int status;
    waitpid(writer, &status, 0);
    // Whatever happened, the archive opens, verifies, and the counter is one
    // whole version: all bytes the same letter, length matching the letter.
    std::string out;
    EXPECT_EQ(test::run(kMmar + " verify " + q(archive) + " 2>&1", &out), 0) << "round " << round << ": " << out;
    auto a = Archive::open(archive);
    EXPECT_TRUE(a.ok()) << a.error().message();
    if (!a.ok()) return committed_runs;
    auto bytes = a->read("counter");
    EXPECT_TRUE(bytes.ok()) << bytes.error().message();
    if (!bytes.ok()) return committed_runs;
    std::string c(reinterpret_cast<const char*>(bytes->data()), bytes->size());
    EXPECT_FALSE(c.empty());
    if (c.empty()) return committed_runs;
    EXPECT_EQ(c.find_first_not_of(c[0]), std::string::npos) << "round " << round << ": a torn version";
    if (c[0] != 'A') {
      EXPECT_EQ(c.size() % 100, 0u);
      ++committed_runs;
    }
  }
  return committed_runs;
}

TEST_F(MountRw, KilledAtAnyMomentTheArchiveStaysConsistent) {
  std::string src = dir("src");
  test::write_file(src + "/counter", test::to_bytes(std::string(5000, 'A')));
  std::string archive = tmp_ / "a.mmar";
  ASSERT_EQ(test::run(kMmar + " create --compress none -f " + q(archive) + " -C " + q(src) + " ."), 0);
  const int committed_runs = kill_rounds(*this, archive, 16, 0, nullptr);
  EXPECT_GT(committed_runs, 0) << "no round committed anything; the test proves little";
  // Compaction keeps exactly the current generation and shrinks the file.
  auto before = test::read_file(archive);
  std::string x1 = dir("before"), x2 = dir("after");
  ASSERT_EQ(test::run(kMmar + " extract -f " + q(archive) + " -C " + q(x1)), 0);
  ASSERT_EQ(test::run(kMmar + " compact --compress none " + q(archive) + " >/dev/null"), 0);
  EXPECT_LT(test::read_file(archive).size(), before.size());
  ASSERT_EQ(test::run(kMmar + " verify -q " + q(archive)), 0);
  ASSERT_EQ(test::run(kMmar + " extract -f " + q(archive) + " -C " + q(x2)), 0);
  EXPECT_EQ(test::diff_trees(x1, x2), "");
}

// The same with other writers trying all the while: each is refused with
// the holder named, none gets in, and once the mount is killed the lock is
// free again.
TEST_F(MountRw, KilledWhileOtherWritersCompete) {
  std::string src = dir("src");
  test::write_file(src + "/counter", test::to_bytes(std::string(5000, 'A')));
  std::string archive = tmp_ / "a.mmar";
  ASSERT_EQ(test::run(kMmar + " create --compress none -f " + q(archive) + " -C " + q(src) + " ."), 0);
  int refused = 0;
  const int committed_runs = kill_rounds(*this, archive, 6, 0, [&](const std::string& mnt) {
    std::string other = mnt + "-other", out;
    ::mkdir(other.c_str(), 0755);
    for (const std::string& cmd : {kMmar + " mount --rw " + q(archive) + " " + q(other),
                                   kMmar + " compact " + q(archive), kMmar + " create -f " + q(archive) + " -C " +
                                                                         q(tmp_ / "src") + " ."}) {
      EXPECT_EQ(test::run(cmd + " 2>&1", &out), 1) << cmd << ": " << out;
      EXPECT_NE(out.find("in use by another writer (pid "), std::string::npos) << out;
      ++refused;
    }
    EXPECT_FALSE(is_fuse(other));
  });
  EXPECT_EQ(refused, 18);
  EXPECT_GT(committed_runs, 0);
  std::string out;
  EXPECT_EQ(test::run(kMmar + " compact " + q(archive) + " 2>&1", &out), 0) << out;
  EXPECT_EQ(test::run(kMmar + " verify -q " + q(archive) + " 2>&1", &out), 0) << out;
}

// The same on a filesystem that fills up: commits fail with ENOSPC and are
// rolled back; whatever the moment of the kill, the archive is whole.
TEST_F(MountRw, KilledOnAFullDisk) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a tmpfs";
  std::string small = dir("small");
  ASSERT_EQ(test::run("mount -t tmpfs -o size=3m tmpfs " + q(small)), 0);
  struct Unmount {
    std::string d;
    ~Unmount() { test::run("umount -l " + q(d)); }
  } unmount{small};
  std::string src = dir("src");
  test::write_file(src + "/counter", test::to_bytes(std::string(5000, 'A')));
  std::string archive = small + "/a.mmar";
  ASSERT_EQ(test::run(kMmar + " create --compress none -f " + q(archive) + " -C " + q(src) + " ."), 0);
  // Versions of ~700 KB: a few commits fill 3 MiB.
  kill_rounds(*this, archive, 8, 700000, nullptr);
  struct statvfs fs {};
  ASSERT_EQ(statvfs(small.c_str(), &fs), 0);
  std::string out;
  EXPECT_EQ(test::run(kMmar + " verify -q " + q(archive) + " 2>&1", &out), 0) << out;
}


// An archive of one small file, and a mounted writable view of it.
class MountRwSafety : public MountRw {
 protected:
  std::string make_archive(const std::string& where = "") {
    std::string src = dir("src");
    test::write_file(src + "/f", test::to_bytes("original"));
    std::string archive = (where.empty() ? tmp_.path() : where) + "/a.mmar";
    EXPECT_EQ(test::run(kMmar + " create --compress none -f " + q(archive) + " -C " + q(src) + " ."), 0);
    return archive;
  }
};

pid_t mount_pid(const std::string& mnt) {
  // The daemon is the child that RwMount forked: find it by its mount point.
  std::string out;
  test::run("pgrep -f -- 'mount -f --rw .* " + mnt + "$' | head -n1", &out);
  return static_cast<pid_t>(std::atol(out.c_str()));
}

TEST_F(MountRwSafety, ASecondWriterIsRefused) {
  std::string archive = make_archive(), m1 = dir("m1"), m2 = dir("m2"), m3 = dir("m3");
  RwMount first(archive, m1);
  ASSERT_TRUE(first.ok());
  const pid_t holder = mount_pid(m1);
  ASSERT_GT(holder, 0);
  const std::string expect = "mmar: " + archive + ": in use by another writer (pid " + std::to_string(holder) + ")";
  std::string out;
  EXPECT_EQ(test::run(kMmar + " mount --rw " + q(archive) + " " + q(m2) + " 2>&1", &out), 1);
  EXPECT_NE(out.find(expect), std::string::npos) << out;
  EXPECT_FALSE(is_fuse(m2));
  EXPECT_EQ(test::run(kMmar + " compact " + q(archive) + " 2>&1", &out), 1);
  EXPECT_NE(out.find(expect), std::string::npos) << out;
  EXPECT_EQ(test::run(kMmar + " create -f " + q(archive) + " -C " + q(tmp_ / "src") + " . 2>&1", &out), 1);
  EXPECT_NE(out.find(expect), std::string::npos) << out;
  // Readers are welcome: a read-only mount of the same archive.
  ASSERT_EQ(test::run(kMmar + " mount " + q(archive) + " " + q(m3)), 0);
  EXPECT_EQ(test::run("cat " + q(m3 + "/f"), &out), 0);
  EXPECT_EQ(out, "original");
  test::run("fusermount3 -u " + q(m3));
  // The first writer's changes all land.
  ASSERT_EQ(test::run("echo changed > " + q(m1 + "/f") + " && sync " + q(m1 + "/f")), 0);
  first.unmount();
  EXPECT_EQ(test::run(kMmar + " cat " + q(archive) + " f", &out), 0);
  EXPECT_EQ(out, "changed\n");
}

// Found by review: a daemonized mount names itself, not the parent that
// exited, as the holder.
TEST_F(MountRwSafety, TheHolderNamedIsTheDaemon) {
  std::string archive = make_archive(), m1 = dir("m1"), m2 = dir("m2");
  ASSERT_EQ(test::run(kMmar + " mount --rw " + q(archive) + " " + q(m1)), 0);
  std::string pid;
  test::run("pgrep -f -- '^" + kMmar + " mount --rw " + archive + " " + m1 + "$' | head -n1", &pid);
  while (!pid.empty() && pid.back() == '\n') pid.pop_back();
  ASSERT_FALSE(pid.empty());
  std::string out;
  EXPECT_EQ(test::run(kMmar + " mount --rw " + q(archive) + " " + q(m2) + " 2>&1", &out), 1);
  EXPECT_NE(out.find("in use by another writer (pid " + pid + ")"), std::string::npos) << out << " daemon " << pid;
  EXPECT_EQ(test::run(kMmar + " umount " + q(m1)), 0);
}

TEST_F(MountRwSafety, AReplacedArchiveRefusesToCommit) {
  std::string archive = make_archive(), mnt = dir("m");
  RwMount m(archive, mnt);
  ASSERT_TRUE(m.ok());
  // Not through mmar (which would be refused): a plain rename over it.
  ASSERT_EQ(test::run("cp " + q(archive) + " " + q(archive + ".new") + " && mv " + q(archive + ".new") + " " +
                      q(archive)),
            0);
  const auto replaced = test::read_file(archive);
  int fd = ::open((mnt + "/f").c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "lost?", 5), 5);
  EXPECT_EQ(fsync(fd), -1) << "fsync reported success for a write that cannot reach the archive";
  EXPECT_EQ(errno, EIO);
  close(fd);
  m.unmount();
  EXPECT_EQ(test::read_file(archive), replaced) << "the mount wrote into the file that replaced its archive";
}

TEST_F(MountRwSafety, AnArchiveInsideItsMountPointIsRefused) {
  std::string mnt = dir("m");
  std::string archive = make_archive(mnt);
  std::string out;
  EXPECT_EQ(test::run(kMmar + " mount --rw " + q(archive) + " " + q(mnt) + " 2>&1", &out), 1);
  EXPECT_NE(out.find("inside the mount point"), std::string::npos) << out;
  EXPECT_FALSE(is_fuse(mnt));
}

TEST_F(MountRwSafety, NamesTheToolsWouldRefuseAreRefusedAtOnce) {
  std::string archive = make_archive(), mnt = dir("m");
  {
    RwMount m(archive, mnt);
    ASSERT_TRUE(m.ok());
    const std::string long_name(256, 'n');
    int fd = ::open((mnt + "/" + long_name).c_str(), O_WRONLY | O_CREAT, 0644);
    EXPECT_EQ(fd, -1);
    EXPECT_EQ(errno, ENAMETOOLONG);
    EXPECT_EQ(::mkdir((mnt + "/" + long_name).c_str(), 0755), -1);
    EXPECT_EQ(errno, ENAMETOOLONG);
    // Directories nested until the member name passes 4096 bytes.
    std::string rel;
    int made = 0;
    for (;; ++made) {
      std::string next = rel + (rel.empty() ? "" : "/") + std::string(200, 'd');
      if (::mkdirat(AT_FDCWD, (mnt + "/" + next).c_str(), 0755) != 0) {
        EXPECT_EQ(errno, ENAMETOOLONG) << "at depth " << made;
        break;
      }
      rel = next;
      ASSERT_LT(made, 100);
    }
    EXPECT_LE(rel.size(), 4096u);
    EXPECT_GT(made, 10);
    // Renaming the deep tree below a longer name would push it over: refused.
    ASSERT_EQ(::mkdir((mnt + "/" + std::string(250, 'p')).c_str(), 0755), 0);
    EXPECT_EQ(::rename((mnt + "/" + std::string(200, 'd')).c_str(),
                       (mnt + "/" + std::string(250, 'p') + "/" + std::string(200, 'd')).c_str()),
              -1);
    EXPECT_EQ(errno, ENAMETOOLONG);
    // A change of owner is stored (as root here; the kernel checks who may):
    // seen at once, and in the archive after the commit.
    if (geteuid() == 0) {
      EXPECT_EQ(::chown((mnt + "/f").c_str(), 12345, 23456), 0) << strerror(errno);
      struct stat owned {};
      ASSERT_EQ(stat((mnt + "/f").c_str(), &owned), 0);
      EXPECT_EQ(owned.st_uid, 12345u);
      EXPECT_EQ(owned.st_gid, 23456u);
    }
    // open(O_RDONLY | O_TRUNC) truncates, as on any Linux filesystem.
    fd = ::open((mnt + "/f").c_str(), O_RDONLY | O_TRUNC);
    EXPECT_GE(fd, 0) << strerror(errno);
    if (fd >= 0) close(fd);
    struct stat st {};
    ASSERT_EQ(stat((mnt + "/f").c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 0);
  }
  // Whatever the mount accepted, every tool reads.
  std::string x = dir("x"), out;
  ASSERT_EQ(test::run(kMmar + " verify -q " + q(archive) + " 2>&1", &out), 0) << out;
  ASSERT_EQ(test::run(kMmar + " list " + q(archive) + " >/dev/null"), 0);
  ASSERT_EQ(test::run(kMmar + " extract -f " + q(archive) + " -C " + q(x) + " 2>&1", &out), 0) << out;
  if (geteuid() == 0) {
    struct stat owned {};
    ASSERT_EQ(stat((x + "/f").c_str(), &owned), 0);
    EXPECT_EQ(owned.st_uid, 12345u);
    EXPECT_EQ(owned.st_gid, 23456u);
  }
  ASSERT_EQ(test::run(kMmar + " compact " + q(archive) + " >/dev/null 2>&1"), 0);
}

// A small filesystem made for the test: the archive fills it; fsync
// reports ENOSPC, nothing partial stays, and once space is freed the same
// changes commit.
TEST_F(MountRwSafety, AFullDiskFailsTheCommitAndLosesNothing) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a tmpfs";
  std::string small = dir("small"), mnt = dir("m");
  ASSERT_EQ(test::run("mount -t tmpfs -o size=4m tmpfs " + q(small)), 0);
  struct Unmount {
    std::string d;
    ~Unmount() { test::run("umount -l " + q(d)); }
  } unmount{small};
  std::string archive = make_archive(small);
  std::string out;
  {
    RwMount m(archive, mnt);
    ASSERT_TRUE(m.ok());
    struct statvfs fs {};
    ASSERT_EQ(statvfs(mnt.c_str(), &fs), 0);
    EXPECT_LE(fs.f_blocks * fs.f_frsize, uint64_t{4} << 20) << "statfs does not report the archive's filesystem";
    // 1.5 MiB of new contents fit the spill; a filler leaves too little for
    // the commit to append them.
    ASSERT_EQ(test::run("head -c 1572864 /dev/urandom > " + q(mnt + "/big")), 0);
    ASSERT_EQ(test::run("head -c 1500000 /dev/zero > " + q(small + "/filler") + " 2>/dev/null; true"), 0);
    const auto before = test::read_file(archive);
    int fd = ::open((mnt + "/big").c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(fsync(fd), -1);
    EXPECT_EQ(errno, ENOSPC);
    EXPECT_EQ(test::read_file(archive), before) << "a failed commit left bytes behind";
    // mmar umount commits first: it fails, says so, and leaves the mount.
    ASSERT_EQ(test::run(kMmar + " umount " + q(mnt) + " 2>&1", &out), 1) << out;
    EXPECT_NE(out.find("cannot commit the changes (No space left on device); still mounted"), std::string::npos)
        << out;
    EXPECT_TRUE(is_fuse(mnt));
    // Space back: the same changes commit.
    ASSERT_EQ(::unlink((small + "/filler").c_str()), 0);
    EXPECT_EQ(fsync(fd), 0) << strerror(errno);
    close(fd);
    ASSERT_EQ(test::run("cmp " + q(mnt + "/big") + " /dev/null >/dev/null 2>&1; true"), 0);
  }
  ASSERT_EQ(test::run(kMmar + " verify -q " + q(archive) + " 2>&1", &out), 0) << out;
  auto a = Archive::open(archive);
  ASSERT_TRUE(a.ok());
  auto big = a->find("big");
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->size, 1572864u);
}

// More files written between fsyncs than the daemon may hold descriptors:
// close() commits in batches; nothing fails, nothing is lost.
TEST_F(MountRwSafety, ManyFilesWithFewDescriptors) {
  if (test::run("command -v prlimit >/dev/null") != 0) GTEST_SKIP() << "needs prlimit";
  std::string archive = make_archive(), mnt = dir("m");
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);
    execlp("prlimit", "prlimit", "--nofile=64:64", kMmar.c_str(), "mount", "-f", "--rw", archive.c_str(), mnt.c_str(),
           static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_TRUE(wait_mounted(mnt));
  std::string out;
  EXPECT_EQ(test::run("cd " + q(mnt) + " && for i in $(seq 1 600); do echo file $i > n$i || exit 1; done 2>&1", &out),
            0)
      << out;
  test::run("fusermount3 -u " + q(mnt));
  int status = 0;
  waitpid(pid, &status, 0);
  auto a = Archive::open(archive);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->size(), 601u);
  auto n600 = a->read("n600");
  ASSERT_TRUE(n600.ok());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(n600->data()), n600->size()), "file 600\n");
}

// A sparse file stays sparse: in the spill file and in the archive.
TEST_F(MountRwSafety, HolesStayHoles) {
  std::string archive = make_archive(), mnt = dir("m");
  {
    RwMount m(archive, mnt);
    ASSERT_TRUE(m.ok());
    int fd = ::open((mnt + "/sparse").c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, "end", 3, off_t{1} << 30), 3);
    ASSERT_EQ(fsync(fd), 0);
    close(fd);
  }
  struct stat st {};
  ASSERT_EQ(stat(archive.c_str(), &st), 0);
  EXPECT_GT(st.st_size, off_t{1} << 30);
  EXPECT_LT(st.st_blocks * 512, 16 << 20) << "the hole was written out";
  auto a = Archive::open(archive);
  ASSERT_TRUE(a.ok());
  auto m = a->find("sparse");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->size, (uint64_t{1} << 30) + 3);
}

// fsx-style: random reads, writes, mapped reads and writes, truncates,
// fsyncs, reopens and remounts against an in-memory model, with a seed that
// replays. The archive stays within twice its live data plus the slack
// before compaction starts.
TEST_F(MountRwSafety, RandomOperationsMatchAModel) {
  std::string archive = make_archive();
  constexpr size_t kMax = 256 << 10;
  for (uint32_t seed : {1u, 2u}) {
    std::mt19937 rng(seed);
    std::string model;
    int round = 0;
    while (round < 3) {
      std::string mnt = dir("fsx" + std::to_string(seed) + "_" + std::to_string(round++));
      RwMount m(archive, mnt);
      ASSERT_TRUE(m.ok());
      const std::string f = mnt + "/fsx" + std::to_string(seed);
      int fd = ::open(f.c_str(), O_RDWR | O_CREAT, 0644);
      ASSERT_GE(fd, 0);
      struct stat st {};
      ASSERT_EQ(fstat(fd, &st), 0);
      ASSERT_EQ(static_cast<size_t>(st.st_size), model.size()) << "seed " << seed << " after remount";
      for (int op = 0; op < 150; ++op) {
        const int what = static_cast<int>(rng() % 8);
        const size_t off = rng() % kMax;
        const size_t len = 1 + rng() % 20000;
        SCOPED_TRACE("seed " + std::to_string(seed) + " op " + std::to_string(op) + " kind " + std::to_string(what));
        if (what <= 1) {  // write
          std::string data(len, '\0');
          for (auto& c : data) c = static_cast<char>('a' + rng() % 26);
          const size_t n = std::min(len, kMax - off);
          ASSERT_EQ(pwrite(fd, data.data(), n, static_cast<off_t>(off)), static_cast<ssize_t>(n));
          if (model.size() < off + n) model.resize(off + n, '\0');
          model.replace(off, n, data, 0, n);
        } else if (what == 2) {  // read
          std::string got(len, '\0');
          ssize_t r = pread(fd, got.data(), len, static_cast<off_t>(off));
          ASSERT_GE(r, 0);
          const size_t want = off >= model.size() ? 0 : std::min(len, model.size() - off);
          ASSERT_EQ(static_cast<size_t>(r), want);
          ASSERT_EQ(got.substr(0, want), model.substr(off < model.size() ? off : 0, want));
        } else if (what == 3 && !model.empty()) {  // mapped read
          void* p = mmap(nullptr, model.size(), PROT_READ, MAP_SHARED, fd, 0);
          ASSERT_NE(p, MAP_FAILED);
          ASSERT_EQ(std::memcmp(p, model.data(), model.size()), 0);
          munmap(p, model.size());
        } else if (what == 4 && !model.empty()) {  // mapped write
          const size_t at = off % model.size();
          const size_t n = std::min(len, model.size() - at);
          char* p = static_cast<char*>(mmap(nullptr, model.size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
          ASSERT_NE(p, MAP_FAILED);
          for (size_t i = 0; i < n; ++i) p[at + i] = model[at + i] = static_cast<char>('A' + (i + at) % 26);
          ASSERT_EQ(msync(p, model.size(), MS_SYNC), 0);
          munmap(p, model.size());
        } else if (what == 5) {  // truncate
          const size_t to = rng() % kMax;
          ASSERT_EQ(ftruncate(fd, static_cast<off_t>(to)), 0);
          model.resize(to, '\0');
        } else if (what == 6) {
          ASSERT_EQ(fsync(fd), 0);
        } else {  // close and reopen
          ASSERT_EQ(close(fd), 0);
          fd = ::open(f.c_str(), O_RDWR);
          ASSERT_GE(fd, 0);
        }
      }
      close(fd);
      m.unmount();
      auto a = Archive::open(archive);
      ASSERT_TRUE(a.ok());
      auto b = a->read("fsx" + std::to_string(seed));
      ASSERT_TRUE(b.ok()) << b.error().message();
      ASSERT_EQ(std::string(reinterpret_cast<const char*>(b->data()), b->size()), model) << "seed " << seed;
      struct stat ast {};
      ASSERT_EQ(stat(archive.c_str(), &ast), 0);
      EXPECT_LE(static_cast<uint64_t>(ast.st_size), 2 * (kMax + 65536) + (uint64_t{1} << 20));
    }
  }
  std::string out;
  ASSERT_EQ(test::run(kMmar + " verify -q " + q(archive) + " 2>&1", &out), 0) << out;
}

}  // namespace
}  // namespace mmar
