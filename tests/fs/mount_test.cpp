// SPDX-License-Identifier: BSD-2-Clause
// mmar mount (read-only FUSE): the mounted tree equals the extracted one
// (names, types, modes, sizes, bytes, symlinks, mtimes; ls -lR, find, stat
// and du agree); inode numbers are stable across mounts; mmap works; ld.so
// loads programs and their libraries from the mount; a busybox root works
// as a chroot; several processes read and map every file at once with every
// byte checked; bad archives are refused; the archive is never modified.
// Skips, naming what is missing, where FUSE is unavailable.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <random>
#include <set>
#include <thread>

#include "archive/frames.h"
#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;

const std::string kMmar = MMAR_BIN;
std::string q(const std::string& s) { return "'" + s + "'"; }
constexpr long kFuseMagic = 0x65735546;

bool is_fuse(const std::string& dir) {
  struct statfs s {};
  return statfs(dir.c_str(), &s) == 0 && s.f_type == kFuseMagic;
}

std::string fuse_missing() {
  if (access("/dev/fuse", R_OK | W_OK) != 0) return "/dev/fuse is not available";
  if (test::run("command -v fusermount3 >/dev/null 2>&1") != 0) return "fusermount3 (package fuse3) is not installed";
  return "";
}

// A mount for the scope; unmounted (and waited for) on destruction.
class Mounted {
 public:
  Mounted(const std::string& archive, const std::string& dir, const std::string& flags = "") : dir_(dir) {
    std::string out;
    status_ = test::run(kMmar + " mount " + flags + " " + q(archive) + " " + q(dir) + " 2>&1", &out);
    message_ = out;
    for (int i = 0; i < 200 && status_ == 0 && !is_fuse(dir); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~Mounted() {
    if (status_ == 0) test::run(kMmar + " umount " + q(dir_) + " 2>/dev/null");
  }
  bool ok() const { return status_ == 0 && is_fuse(dir_); }
  const std::string& message() const { return message_; }

 private:
  std::string dir_;
  int status_;
  std::string message_;
};

class Mount : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = fuse_missing();
    if (!why.empty()) GTEST_SKIP() << "FUSE tests need it: " << why;
  }
  std::string make_archive(const std::string& name, const std::string& tree, const std::string& flags) {
    std::string path = tmp_ / name;
    EXPECT_EQ(test::run(kMmar + " create " + flags + " -f " + q(path) + " -C " + q(tree) + " . 2>&1"), 0);
    return path;
  }
  std::string mkdir(const std::string& name) {
    std::string d = tmp_ / name;
    EXPECT_EQ(::mkdir(d.c_str(), 0755), 0);
    return d;
  }
  TempDir tmp_;
};

std::string listing(const std::string& dir, const std::string& fmt) {
  std::string out;
  test::run("cd " + q(dir) + " && find . -mindepth 1 -printf " + q(fmt) + " | LC_ALL=C sort", &out);
  return out;
}

TEST_F(Mount, TreeMatchesTheExtractedOne) {
  std::string tree = mkdir("tree");
  test::TreeSpec spec;
  spec.files = 150;
  spec.big_size = 3 << 20;
  test::make_random_tree(tree, spec);
  for (const char* flags : {"--compress none", "--compress zstd --threshold 1024"}) {
    SCOPED_TRACE(flags);
    std::string archive = make_archive(std::string("t") + std::to_string(std::strlen(flags)) + ".mmar", tree, flags);
    std::string x = mkdir(std::string("x") + std::to_string(std::strlen(flags)));
    ASSERT_EQ(test::run(kMmar + " extract -f " + q(archive) + " -C " + q(x)), 0);
    std::string mnt = mkdir(std::string("m") + std::to_string(std::strlen(flags)));
    struct stat before {};
    ASSERT_EQ(stat(archive.c_str(), &before), 0);
    auto bytes_before = test::read_file(archive);
    {
      Mounted m(archive, mnt);
      ASSERT_TRUE(m.ok()) << m.message();
      EXPECT_EQ(test::diff_trees(x, mnt), "");
      // find, stat, ls and du agree with the extracted tree, on everything
      // that is the tree's (not the size a filesystem gives a directory or
      // its link count, nor the time of the root, which the archive does
      // not hold).
      EXPECT_EQ(listing(mnt, "%p %y %m %T@ %l\\n"), listing(x, "%p %y %m %T@ %l\\n"));
      auto files = [](const std::string& dir, const std::string& cmd) {
        std::string out;
        test::run("cd " + q(dir) + " && find . ! -type d -print0 | LC_ALL=C sort -z | xargs -0 -r " + cmd, &out);
        return out;
      };
      EXPECT_EQ(files(mnt, "stat -c '%n %F %a %s %Y'"), files(x, "stat -c '%n %F %a %s %Y'"));
      EXPECT_EQ(files(mnt, "du -b --apparent-size"), files(x, "du -b --apparent-size"));
      EXPECT_EQ(files(mnt, "ls -l --time-style=+%s"), files(x, "ls -l --time-style=+%s"));
      // Writing is refused.
      EXPECT_NE(test::run("touch " + q(mnt + "/newfile") + " 2>/dev/null"), 0);
    }
    struct stat after {};
    ASSERT_EQ(stat(archive.c_str(), &after), 0);
    EXPECT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
    EXPECT_TRUE(test::read_file(archive) == bytes_before) << "a read-only mount never modifies the archive";
  }
}

TEST_F(Mount, InodesAreStableAcrossMounts) {
  std::string tree = mkdir("tree");
  test::make_random_tree(tree, test::TreeSpec{});
  std::string archive = make_archive("a.mmar", tree, "--compress none");
  std::string mnt = mkdir("m");
  std::string first, second;
  {
    Mounted m(archive, mnt);
    ASSERT_TRUE(m.ok()) << m.message();
    first = listing(mnt, "%p %i\\n");
  }
  {
    Mounted m(archive, mnt);
    ASSERT_TRUE(m.ok()) << m.message();
    second = listing(mnt, "%p %i\\n");
  }
  EXPECT_GT(first.size(), 100u);
  EXPECT_EQ(first, second);
  // And distinct: no two paths share an inode.
  std::set<std::string> inodes;
  size_t lines = 0;
  for (size_t start = 0; start < first.size();) {
    size_t nl = first.find('\n', start);
    std::string line = first.substr(start, nl - start);
    inodes.insert(line.substr(line.rfind(' ') + 1));
    ++lines;
    start = nl + 1;
  }
  EXPECT_EQ(inodes.size(), lines);
}

TEST_F(Mount, ProgramsAndTheirLibrariesRunInPlace) {
  if (test::run("command -v gcc >/dev/null") != 0) GTEST_SKIP() << "gcc is missing";
  std::string tree = tmp_ / "tree";
  ASSERT_EQ(test::run("mkdir -p " + q(tree + "/bin") + " " + q(tree + "/lib")), 0);
  test::write_file(tmp_ / "greet.c",
                   test::to_bytes("#include <stdio.h>\nvoid greet(const char* w) { printf(\"hello, %s\\n\", w); }\n"));
  test::write_file(
      tmp_ / "main.c",
      test::to_bytes(
          "void greet(const char*);\nint main(int c, char** v) { greet(c > 1 ? v[1] : \"world\"); return 3; }\n"));
  ASSERT_EQ(test::run("gcc -shared -fPIC " + q(tmp_ / "greet.c") + " -o " + q(tree + "/lib/libgreet.so")), 0);
  ASSERT_EQ(test::run("gcc " + q(tmp_ / "main.c") + " -L" + q(tree + "/lib") + " -lgreet -o " + q(tree + "/bin/hello")),
            0);
  for (const char* flags : {"--compress none", "--compress zstd --threshold 1"}) {
    std::string archive = make_archive(std::string("p") + std::to_string(std::strlen(flags)) + ".mmar", tree, flags);
    std::string mnt = mkdir(std::string("m") + std::to_string(std::strlen(flags)));
    Mounted m(archive, mnt);
    ASSERT_TRUE(m.ok()) << m.message();
    std::string out;
    EXPECT_EQ(test::run("LD_LIBRARY_PATH=" + q(mnt + "/lib") + " " + q(mnt + "/bin/hello") + " mount", &out), 3);
    EXPECT_EQ(out, "hello, mount\n");
    // ld.so mapped the library from the mount.
    std::string maps;
    test::run("LD_LIBRARY_PATH=" + q(mnt + "/lib") + " LD_DEBUG=files " + q(mnt + "/bin/hello") + " 2>&1", &maps);
    EXPECT_NE(maps.find(mnt + "/lib/libgreet.so"), std::string::npos) << maps;
  }
}

TEST_F(Mount, BusyboxRootWorksAsAChroot) {
  if (access("/bin/busybox", X_OK) != 0) GTEST_SKIP() << "busybox-static is not installed";
  if (geteuid() != 0) GTEST_SKIP() << "chroot needs root";
  std::string tree = tmp_ / "root";
  ASSERT_EQ(test::run("mkdir -p " + q(tree + "/bin") + " " + q(tree + "/etc") + " && cp /bin/busybox " +
                      q(tree + "/bin/") + " && for a in sh ls cat echo; do ln -s busybox " + q(tree + "/bin/") +
                      "$a; done && echo root-ok > " + q(tree + "/etc/motd")),
            0);
  std::string archive = make_archive("root.mmar", tree, "--compress none");
  std::string mnt = mkdir("m");
  Mounted m(archive, mnt);
  ASSERT_TRUE(m.ok()) << m.message();
  std::string out;
  EXPECT_EQ(test::run("chroot " + q(mnt) + " /bin/sh -c 'cat /etc/motd; ls -1 /bin'", &out), 0);
  EXPECT_EQ(out, "root-ok\nbusybox\ncat\necho\nls\nsh\n");
}

// Several processes read and map every file at once; every byte checked.
TEST_F(Mount, ConcurrentReadersSeeEveryByte) {
  std::string tree = mkdir("tree");
  test::TreeSpec spec;
  spec.files = 200;
  spec.symlinks = false;
  auto names = test::make_random_tree(tree, spec);
  std::string archive = make_archive("c.mmar", tree, "--compress zstd --threshold 2048");
  std::string mnt = mkdir("m");
  Mounted m(archive, mnt);
  ASSERT_TRUE(m.ok()) << m.message();
  std::vector<std::string> files;
  for (const auto& n : names) {
    struct stat st {};
    if (lstat((tree + "/" + n).c_str(), &st) == 0 && S_ISREG(st.st_mode)) files.push_back(n);
  }
  ASSERT_GT(files.size(), 50u);
  std::vector<pid_t> kids;
  for (int k = 0; k < 6; ++k) {
    pid_t pid = fork();
    if (pid == 0) {
      std::mt19937 rng(static_cast<unsigned>(k));
      std::vector<std::string> order = files;
      std::shuffle(order.begin(), order.end(), rng);
      int bad = 0;
      for (const auto& f : order) {
        auto want = test::read_file(tree + "/" + f);
        int fd = open((mnt + "/" + f).c_str(), O_RDONLY);
        if (fd < 0) _exit(10);
        std::vector<std::byte> got(want.size());
        size_t done = 0;
        while (done < got.size()) {
          ssize_t r = pread(fd, got.data() + done, got.size() - done, static_cast<off_t>(done));
          if (r <= 0) break;
          done += static_cast<size_t>(r);
        }
        if (done != want.size() || got != want) ++bad;
        if (!want.empty()) {
          void* p = mmap(nullptr, want.size(), PROT_READ, MAP_SHARED, fd, 0);
          if (p == MAP_FAILED || std::memcmp(p, want.data(), want.size()) != 0) ++bad;
          if (p != MAP_FAILED) munmap(p, want.size());
        }
        close(fd);
      }
      _exit(bad == 0 ? 0 : 20);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "reader failed with status " << status;
  }
}

TEST_F(Mount, BadArchivesAreRefusedAtMount) {
  std::string tree = mkdir("tree");
  test::make_random_tree(tree, test::TreeSpec{});
  std::string archive = make_archive("good.mmar", tree, "--compress none");
  std::string mnt = mkdir("m");
  auto good = test::read_file(archive);
  // Both superblocks' checksums broken (the magic kept), and a file that is
  // no archive at all: each refused with the file named, nothing mounted.
  auto broken = good;
  broken[100] ^= std::byte{0xff};
  broken[36] ^= std::byte{0xff};
  std::string bad = tmp_ / "bad.mmar";
  test::write_file(bad, broken);
  std::string plain = tmp_ / "plain.txt";
  test::write_file(plain, test::to_bytes("just text\n"));
  for (const std::string& path : {bad, plain}) {
    std::string out;
    EXPECT_EQ(test::run(kMmar + " mount " + q(path) + " " + q(mnt) + " 2>&1", &out), 1) << path;
    EXPECT_NE(out.find(path.substr(path.rfind('/') + 1)), std::string::npos) << out;
    EXPECT_FALSE(is_fuse(mnt));
    if (is_fuse(mnt)) test::run(kMmar + " umount " + q(mnt));
  }
  std::string out;
  EXPECT_EQ(test::run(kMmar + " mount " + q(archive) + " " + q(tmp_ / "nope") + " 2>&1", &out), 1);
  EXPECT_NE(out.find("nope"), std::string::npos) << out;
  EXPECT_EQ(test::run(kMmar + " mount " + q(archive) + " 2>/dev/null"), 2);
}

// One /proc/self/mountinfo line, split: the per-mount options, the
// filesystem type, the source (octal escapes undone) and the superblock's
// options. Empty fstype when `dir` is no mount point.
struct MountInfo {
  std::string options, fstype, source, super_options;
};

std::string unmangle(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

MountInfo mount_info(const std::string& dir) {
  auto bytes = test::read_file("/proc/self/mountinfo");
  std::string all(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  MountInfo last;
  for (size_t start = 0; start < all.size();) {
    size_t nl = all.find('\n', start);
    std::string line = all.substr(start, nl - start);
    start = nl == std::string::npos ? all.size() : nl + 1;
    std::vector<std::string> f;
    for (size_t a = 0; a <= line.size();) {
      size_t sp = line.find(' ', a);
      if (sp == std::string::npos) sp = line.size();
      f.push_back(line.substr(a, sp - a));
      a = sp + 1;
    }
    if (f.size() < 10 || unmangle(f[4]) != dir) continue;
    size_t dash = 6;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (dash + 3 >= f.size()) continue;
    last = MountInfo{f[5], f[dash + 1], unmangle(f[dash + 2]), f[dash + 3]};  // the topmost mount wins
  }
  return last;
}

bool has_option(const std::string& list, const std::string& opt) {
  return ("," + list + ",").find("," + opt + ",") != std::string::npos;
}

// An archive's file name is never read as mount options: commas,
// backslashes (also before a comma), spaces and newlines all stay in the
// fsname, and the mount is nosuid,nodev without allow_other.
TEST_F(Mount, ArchiveNamesNeverBecomeMountOptions) {
  std::string tree = mkdir("tree");
  test::write_file(tree + "/f", test::to_bytes("x\n"));
  std::string mnt = mkdir("m");
  for (std::string name : {"inj.mmar,suid,allow_other", "a\\,suid,dev.mmar", "back\\slash\\.mmar",
                           "with space.mmar", "new\nline,allow_other.mmar", "oct\\054suid.mmar"}) {
    SCOPED_TRACE(name);
    std::string archive = make_archive(name, tree, "--compress none");
    Mounted m(archive, mnt);
    ASSERT_TRUE(m.ok()) << m.message();
    MountInfo mi = mount_info(mnt);
    EXPECT_EQ(mi.fstype, "fuse.mmar");
    EXPECT_TRUE(has_option(mi.options, "nosuid")) << mi.options;
    EXPECT_TRUE(has_option(mi.options, "nodev")) << mi.options;
    EXPECT_FALSE(has_option(mi.super_options, "allow_other")) << mi.super_options;
    EXPECT_EQ(mi.source, archive);
    std::string out;
    EXPECT_EQ(test::run("cat " + q(mnt + "/f"), &out), 0);
    EXPECT_EQ(out, "x\n");
  }
}

// -o: only options a user may set; suid and dev only when asked for.
TEST_F(Mount, UserOptionsAreChecked) {
  std::string tree = mkdir("tree");
  test::write_file(tree + "/f", test::to_bytes("x\n"));
  std::string archive = make_archive("a.mmar", tree, "--compress none");
  std::string mnt = mkdir("m");
  for (const char* bad : {"fsname=other", "subtype=x", "blkdev", "allow_other,user_id=0", "context=x", "max_read=x"}) {
    std::string out;
    EXPECT_EQ(test::run(kMmar + " mount -o " + q(bad) + " " + q(archive) + " " + q(mnt) + " 2>&1", &out), 1) << bad;
    EXPECT_NE(out.find("is not allowed"), std::string::npos) << out;
    EXPECT_FALSE(is_fuse(mnt));
    if (is_fuse(mnt)) test::run(kMmar + " umount " + q(mnt));
  }
  {
    Mounted m(archive, mnt, "-o noexec,noatime");
    ASSERT_TRUE(m.ok()) << m.message();
    MountInfo mi = mount_info(mnt);
    EXPECT_TRUE(has_option(mi.options, "nosuid") && has_option(mi.options, "nodev") &&
                has_option(mi.options, "noexec"))
        << mi.options;
  }
  {
    Mounted m(archive, mnt, "-o suid");
    ASSERT_TRUE(m.ok()) << m.message();
    MountInfo mi = mount_info(mnt);
    EXPECT_FALSE(has_option(mi.options, "nosuid")) << mi.options;
    EXPECT_TRUE(has_option(mi.options, "nodev")) << mi.options;
  }
}

// As a mount helper, the way mount(8) runs it for `mount -t fuse.mmar`
// and fstab lines: mount.fuse3 runs `mmar ARCHIVE DIR -o OPTS` with the
// options mount(8) adds (rw unless ro; dev,suid as root). `rw` alone never
// makes the mount writable (mount(8) adds it to everything): `writable` does.
TEST_F(Mount, WorksAsAMountHelper) {
  if (test::run("command -v mount.fuse3 >/dev/null 2>&1") != 0) GTEST_SKIP() << "mount.fuse3 (fuse3) is missing";
  std::string tree = mkdir("tree");
  test::write_file(tree + "/f", test::to_bytes("x\n"));
  std::string archive = make_archive("a.mmar", tree, "--compress none");
  std::string mnt = mkdir("m");
  const std::string bin_dir = std::string(kMmar).substr(0, std::string(kMmar).rfind('/'));
  const std::string helper = "PATH=" + q(bin_dir) + ":$PATH mount.fuse3 " + q(archive) + " " + q(mnt) + " -t fuse.mmar";
  std::string out;
  for (const char* opts : {"rw,dev,suid", "ro,allow_other,dev,suid"}) {
    SCOPED_TRACE(opts);
    ASSERT_EQ(test::run(helper + " -o " + opts + " 2>&1", &out), 0) << out;
    ASSERT_TRUE(is_fuse(mnt));
    MountInfo mi = mount_info(mnt);
    EXPECT_EQ(mi.fstype, "fuse.mmar");
    EXPECT_EQ(mi.source, archive);
    EXPECT_EQ(test::run("cat " + q(mnt + "/f"), &out), 0);
    EXPECT_EQ(out, "x\n");
    // Read-only either way: a write is refused, the archive unchanged.
    EXPECT_NE(test::run("echo y > " + q(mnt + "/f") + " 2>/dev/null"), 0);
    EXPECT_EQ(test::run(kMmar + " umount " + q(mnt) + " 2>&1", &out), 0) << out;
  }
  ASSERT_EQ(test::run(helper + " -o rw,writable 2>&1", &out), 0) << out;
  EXPECT_EQ(test::run("echo y > " + q(mnt + "/g"), &out), 0) << out;
  EXPECT_EQ(test::run(kMmar + " umount " + q(mnt) + " 2>&1", &out), 0) << out;
  EXPECT_EQ(test::run(kMmar + " cat " + q(archive) + " g", &out), 0);
  EXPECT_EQ(out, "y\n");
}

// mmar umount refuses what is not an mmar mount: a tmpfs, a plain
// directory; both stay as they were, exit 1.
TEST_F(Mount, UmountRefusesOtherFilesystems) {
  std::string dir = mkdir("plain");
  std::string out;
  EXPECT_EQ(test::run(kMmar + " umount " + q(dir) + " 2>&1", &out), 1);
  EXPECT_NE(out.find("not a mount point"), std::string::npos) << out;
  if (geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  std::string t = mkdir("tmpfs");
  ASSERT_EQ(test::run("mount -t tmpfs mmar-test " + q(t)), 0);
  out.clear();
  EXPECT_EQ(test::run(kMmar + " umount " + q(t) + " 2>&1", &out), 1);
  EXPECT_NE(out.find("not an mmar mount (it is tmpfs)"), std::string::npos) << out;
  EXPECT_EQ(mount_info(t).fstype, "tmpfs") << "the tmpfs was unmounted";
  test::run("umount " + q(t));
}

// A file held open for a moment after umount starts: the busy mount is
// retried until it is free, and then unmounted (exit 0).
TEST_F(Mount, UmountRetriesWhileBusy) {
  std::string tree = mkdir("tree");
  test::write_file(tree + "/f", test::to_bytes("x\n"));
  std::string archive = make_archive("a.mmar", tree, "--compress none");
  std::string mnt = mkdir("m");
  Mounted m(archive, mnt);
  ASSERT_TRUE(m.ok()) << m.message();
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t kid = fork();
  if (kid == 0) {
    int fd = open((mnt + "/f").c_str(), O_RDONLY);
    char c = fd >= 0 ? 'y' : 'n';
    if (write(ready[1], &c, 1) != 1) _exit(1);
    usleep(300 * 1000);  // busy for a moment, as a program that just exited
    _exit(0);
  }
  close(ready[1]);
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  ASSERT_EQ(c, 'y');
  std::string out;
  EXPECT_EQ(test::run(kMmar + " umount " + q(mnt) + " 2>&1", &out), 0) << out;
  EXPECT_EQ(mount_info(mnt).fstype, "");
  int status = 0;
  waitpid(kid, &status, 0);
}

// --lazy detaches a busy mount at once.
TEST_F(Mount, UmountLazyDetachesABusyMount) {
  std::string tree = mkdir("tree");
  test::write_file(tree + "/f", test::to_bytes("x\n"));
  std::string archive = make_archive("a.mmar", tree, "--compress none");
  std::string mnt = mkdir("m");
  Mounted m(archive, mnt);
  ASSERT_TRUE(m.ok()) << m.message();
  int fd = open((mnt + "/f").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::string out;
  EXPECT_EQ(test::run(kMmar + " umount --lazy " + q(mnt) + " 2>&1", &out), 0) << out;
  EXPECT_EQ(mount_info(mnt).fstype, "");
  char buf[4] = {};
  EXPECT_EQ(pread(fd, buf, sizeof buf, 0), 2) << "an open file keeps working after a lazy unmount";
  close(fd);
}

// open(2) and read(2) of PATH: the errno of the first that fails, 0 if both
// work (bytes read into *out).
int read_errno(const std::string& path, std::string* out = nullptr) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return errno;
  char buf[65536];
  std::string text;
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) != 0;) {
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return e;
    }
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (out != nullptr) *out = text;
  return 0;
}

TEST_F(Mount, DamagedRawMemberReadsAsEio) {
  std::string tree = mkdir("tree");
  test::write_file(tree + "/bad", test::to_bytes(std::string(10000, 'b')));
  test::write_file(tree + "/ok", test::to_bytes("fine\n"));
  std::string archive = make_archive("a.mmar", tree, "--compress none");
  auto bytes = test::read_file(archive);
  {
    auto a = Archive::open(Source::borrow(bytes, "a"));
    ASSERT_TRUE(a.ok());
    auto m = a->find("bad");
    ASSERT_TRUE(m.ok());
    bytes[m->data_offset + 5000] ^= std::byte{1};
  }
  test::write_file(archive, bytes);
  std::string mnt = mkdir("m");
  Mounted m(archive, mnt);
  ASSERT_TRUE(m.ok()) << m.message();
  EXPECT_EQ(read_errno(mnt + "/bad"), EIO);
  EXPECT_EQ(read_errno(mnt + "/bad"), EIO) << "and again, from what the mount remembers";
  std::string text;
  EXPECT_EQ(read_errno(mnt + "/ok", &text), 0);
  EXPECT_EQ(text, "fine\n");
}

// A raw member with chunk checksums: only the chunk that is damaged reads
// as EIO; the rest of the member reads, its first read costs one chunk,
// not the member.
TEST_F(Mount, DamagedRawChunkReadsAsEioAndTheRestReads) {
  std::string tree = mkdir("tree");
  std::string big;
  for (int i = 0; big.size() < 20 * 65536; ++i) big += "row " + std::to_string(i) + "\n";
  test::write_file(tree + "/big", test::to_bytes(big));
  std::string archive = make_archive("c.mmar", tree, "--compress none");
  auto bytes = test::read_file(archive);
  {
    auto a = Archive::open(Source::borrow(bytes, "c"));
    ASSERT_TRUE(a.ok());
    auto m = a->find("big");
    ASSERT_TRUE(m.ok());
    ASSERT_TRUE(m->chunk_sums);
    bytes[m->data_offset + 7 * 65536 + 123] ^= std::byte{0x04};
  }
  test::write_file(archive, bytes);
  std::string mnt = mkdir("m");
  Mounted m(archive, mnt);
  ASSERT_TRUE(m.ok()) << m.message();
  const std::string path = mnt + "/big";
  int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  char buf[4096];
  ASSERT_EQ(::pread(fd, buf, sizeof buf, 2 * 65536), static_cast<ssize_t>(sizeof buf));
  EXPECT_EQ(std::string(buf, sizeof buf), big.substr(2 * 65536, 4096));
  errno = 0;
  EXPECT_EQ(::pread(fd, buf, sizeof buf, 7 * 65536 + 4096), -1);
  EXPECT_EQ(errno, EIO);
  ASSERT_EQ(::pread(fd, buf, sizeof buf, 12 * 65536 + 1), static_cast<ssize_t>(sizeof buf));
  EXPECT_EQ(std::string(buf, sizeof buf), big.substr(12 * 65536 + 1, 4096));
  ::close(fd);
  EXPECT_EQ(read_errno(path), EIO) << "a sequential read stops at the bad chunk";
}

// A damaged frame of a compressed member: the ranges it holds read as EIO
// through the mount, never as other bytes; the member's other frames, and
// a small member packed with others, read normally; sequential readers (and
// the read-ahead) run into the same EIO.
TEST_F(Mount, DamagedFrameReadsAsEioAndTheRestReads) {
  std::string tree = mkdir("tree");
  std::string big;
  for (int i = 0; big.size() < 40 * 4096; ++i) big += "line " + std::to_string(i * 7919 % 100000) + "\n";
  test::write_file(tree + "/big", test::to_bytes(big));
  test::write_file(tree + "/small1", test::to_bytes(std::string(700, 's') + "one"));
  test::write_file(tree + "/small2", test::to_bytes(std::string(900, 't') + "two"));
  std::string archive = make_archive("f.mmar", tree, "--frame-size 4K");
  auto bytes = test::read_file(archive);
  uint64_t damaged_at = 0;
  {
    auto a = Archive::open(Source::borrow(bytes, "f"));
    ASSERT_TRUE(a.ok());
    auto m = a->find("big");
    ASSERT_TRUE(m.ok());
    ASSERT_TRUE(m->framed);
    // Frame 20's stored bytes, where the table (of either version) says.
    std::span<const std::byte> stream(bytes.data() + m->data_offset, m->stored_size);
    auto t = frames::parse_header(stream, m->stored_size, "f", m->data_offset, {m->size, m->stream_offset});
    ASSERT_TRUE(t.ok());
    const frames::Lookup l = frames::lookup(*t, 20);
    auto f = frames::frame_at(*t, 20, stream.subspan(l.anchors_at, l.anchors_length),
                              stream.subspan(l.entries_at, l.entries_length), "f", m->data_offset);
    ASSERT_TRUE(f.ok()) << f.error().message();
    damaged_at = m->data_offset + (f->begin + f->end) / 2;
    bytes[damaged_at] ^= std::byte{0x10};
  }
  test::write_file(archive, bytes);
  std::string mnt = mkdir("m");
  Mounted m(archive, mnt);
  ASSERT_TRUE(m.ok()) << m.message();
  const std::string path = mnt + "/big";
  int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  char buf[4096];
  errno = 0;
  EXPECT_EQ(::pread(fd, buf, sizeof buf, 20 * 4096 + 100), -1);
  EXPECT_EQ(errno, EIO);
  ASSERT_EQ(::pread(fd, buf, sizeof buf, 3 * 4096), static_cast<ssize_t>(sizeof buf));
  EXPECT_EQ(std::string(buf, sizeof buf), big.substr(3 * 4096, 4096));
  ASSERT_EQ(::pread(fd, buf, sizeof buf, 30 * 4096), static_cast<ssize_t>(sizeof buf));
  EXPECT_EQ(std::string(buf, sizeof buf), big.substr(30 * 4096, 4096));
  ::close(fd);
  std::string text;
  EXPECT_EQ(read_errno(path, &text), EIO) << "a sequential read stops at the bad frame";
  EXPECT_EQ(read_errno(mnt + "/small2", &text), 0);
  EXPECT_EQ(text, std::string(900, 't') + "two");
}

TEST_F(Mount, TruncatedArchiveGivesEioNotADeadDaemon) {
  std::string tree = mkdir("tree");
  for (const char* name : {"a", "b", "c"}) {
    test::write_file(tree + "/" + name, test::to_bytes(std::string(300000, name[0])));
  }
  test::write_file(tree + "/z", test::to_bytes(std::string(300000, 'z')));
  std::string archive = make_archive("a.mmar", tree, "--compress none --threshold 1000");
  // A compressed twin, so both read paths (raw and inflating) are covered.
  std::string zarchive = make_archive("z.mmar", tree, "--compress zstd --threshold 1000");
  for (const std::string& path : {archive, zarchive}) {
    SCOPED_TRACE(path);
    std::string mnt = mkdir("m" + std::to_string(path.size()) + path.substr(path.size() - 6, 1));
    Mounted m(path, mnt);
    ASSERT_TRUE(m.ok()) << m.message();
    struct stat st {};
    ASSERT_EQ(::stat((mnt + "/a").c_str(), &st), 0);  // looked up (cached) before the damage
    ASSERT_EQ(::truncate(path.c_str(), 128), 0);  // the superblocks only
    EXPECT_EQ(read_errno(mnt + "/a"), EIO);
    // The daemon is alive: another path still gets an answer (not ENOTCONN).
    const int e = read_errno(mnt + "/b");
    EXPECT_TRUE(e == EIO || e == ENOENT) << std::strerror(e);
    EXPECT_TRUE(is_fuse(mnt));
    EXPECT_EQ(test::run(kMmar + " umount " + q(mnt) + " 2>&1"), 0);
  }
}

}  // namespace
}  // namespace mmar
