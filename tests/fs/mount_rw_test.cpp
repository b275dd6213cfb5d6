// mmar mount --rw: every operation lands in the archive (checked against
// the same operations on a plain directory); write() and shared mmap are
// coherent across processes; fsync persists; SIGKILL of the filesystem at
// random moments always leaves an archive that verifies, holding the old or
// the new contents; mmar compact drops superseded data.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
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
    test::run("fusermount3 -u " + q(dir_) + " 2>/dev/null");
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
 protected:
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
// always verifies and holds a complete version.
TEST_F(MountRw, KilledAtAnyMomentTheArchiveStaysConsistent) {
  std::string src = dir("src");
  test::write_file(src + "/counter", test::to_bytes(std::string(5000, 'A')));
  std::string archive = tmp_ / "a.mmar";
  ASSERT_EQ(test::run(kMmar + " create --compress none -f " + q(archive) + " -C " + q(src) + " ."), 0);
  std::mt19937 rng(7);
  int committed_runs = 0;
  for (int round = 0; round < 16; ++round) {
    std::string mnt = dir("m" + std::to_string(round));
    RwMount m(archive, mnt);
    ASSERT_TRUE(m.ok()) << "round " << round;
    // A writer rewriting the file with versions B, C, ... and fsyncing each,
    // plus new files, until killed with the filesystem.
    pid_t writer = fork();
    if (writer == 0) {
      for (int v = 0;; ++v) {
        std::string body(5000 + v * 100, static_cast<char>('B' + (v % 20)));
        int fd = open((mnt + "/counter").c_str(), O_WRONLY | O_TRUNC);
        if (fd < 0) _exit(0);
        if (write(fd, body.data(), body.size()) < 0) _exit(0);
        fsync(fd);
        close(fd);
        int g = open((mnt + "/extra" + std::to_string(v % 5)).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (g >= 0) {
          if (write(g, body.data(), 3000) < 0) _exit(0);
          close(g);
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(20, 400)(rng)));
    m.kill9();
    ::kill(writer, SIGKILL);
    int status;
    waitpid(writer, &status, 0);
    // Whatever happened, the archive opens, verifies, and the counter is one
    // whole version: all bytes the same letter, length matching the letter.
    std::string out;
    ASSERT_EQ(test::run(kMmar + " verify " + q(archive) + " 2>&1", &out), 0) << "round " << round << ": " << out;
    auto a = Archive::open(archive);
    ASSERT_TRUE(a.ok()) << a.error().message();
    auto bytes = a->read("counter");
    ASSERT_TRUE(bytes.ok()) << bytes.error().message();
    std::string c(reinterpret_cast<const char*>(bytes->data()), bytes->size());
    ASSERT_FALSE(c.empty());
    EXPECT_EQ(c.find_first_not_of(c[0]), std::string::npos) << "round " << round << ": a torn version";
    if (c[0] != 'A') {
      const int v = c[0] - 'B';
      EXPECT_EQ(c.size() % 100, 0u);
      EXPECT_GE(c.size(), 5000u + static_cast<size_t>(v) * 100);
      ++committed_runs;
    }
  }
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

}  // namespace
}  // namespace mmar
