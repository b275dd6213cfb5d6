// SPDX-License-Identifier: BSD-2-Clause
// A minimal root filesystem -- busybox and its applet links, device nodes,
// a FIFO, owners other than root with their names, a setuid binary with a
// file capability, a POSIX ACL, user xattrs, hard links, a sticky /tmp --
// through create -> extract, create -> mount, and tar -> create --from ->
// extract, every entry's stat (type, mode, owner, size, mtime, device
// number), xattrs and hard-link grouping compared with the original by a
// script that reads both with lstat and listxattr. Needs root (mknod,
// chown); skipped otherwise.
#include <gtest/gtest.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;

const std::string kMmar = MMAR_BIN;

std::string q(const std::string& s) { return "'" + s + "'"; }

int sh(const std::string& cmd, std::string* out = nullptr) { return test::run(cmd + " 2>&1", out); }

// Compares two trees entry by entry; prints the first differences and
// exits 1, or prints "same N" with the number of entries compared.
// Hard links are compared as groups of names with one (st_dev, st_ino) and
// as st_nlink, unless --no-links.
constexpr const char* kCompare = R"(import os, stat, sys
a, b = sys.argv[1], sys.argv[2]
no_links = "--no-links" in sys.argv
def walk(root):
    out = {}
    for d, ds, fs in os.walk(root):
        for n in ds + fs:
            p = os.path.join(d, n); out[os.path.relpath(p, root)] = p
    return out
def facts(p):
    st = os.lstat(p)
    f = {"type": stat.S_IFMT(st.st_mode), "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid,
         "mtime": st.st_mtime_ns}
    if not stat.S_ISDIR(st.st_mode): f["size"] = st.st_size; f["nlink"] = st.st_nlink
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode): f["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
    if stat.S_ISLNK(st.st_mode): f["target"] = os.readlink(p)
    else:
        f["xattrs"] = sorted((x, os.getxattr(p, x, follow_symlinks=False)) for x in os.listxattr(p, follow_symlinks=False))
    if stat.S_ISREG(st.st_mode) and st.st_size < (1 << 24): f["data"] = open(p, "rb").read()
    return f, (st.st_dev, st.st_ino)
ta, tb = walk(a), walk(b)
bad = sorted(set(ta) ^ set(tb))
if bad: print("names differ:", bad[:5]); sys.exit(1)
groups_a, groups_b, diffs = {}, {}, []
for n in sorted(ta):
    fa, ia = facts(ta[n]); fb, ib = facts(tb[n])
    for k in fa:
        if fa.get(k) != fb.get(k): diffs.append("%s: %s %r != %r" % (n, k, fa.get(k), fb.get(k)) if k != "data" else "%s: data" % n)
    groups_a.setdefault(ia, []).append(n); groups_b.setdefault(ib, []).append(n)
if not no_links:
    ga = sorted(sorted(g) for g in groups_a.values() if len(g) > 1)
    gb = sorted(sorted(g) for g in groups_b.values() if len(g) > 1)
    if ga != gb: diffs.append("hard links differ: %r != %r" % (ga, gb))
    if not ga: diffs.append("no hard links in the tree compared")
if diffs: print("\n".join(diffs[:10])); sys.exit(1)
print("same", len(ta))
)";

class MinimalRoot : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0 || ::access("/bin/busybox", X_OK) != 0) return;
    tmp_ = new TempDir;
    root_ = tmp_->path() + "/root";
    const std::string r = root_;
    test::write_file(*tmp_ / "compare.py", test::to_bytes(kCompare));
    // An ACL (user 1000 may read), in the kernel's xattr form: version 2,
    // then (tag, perm, id) for USER_OBJ rw, USER r 1000, GROUP_OBJ r, MASK r, OTHER r.
    const std::string acl =
        "02000000" "0100" "0600" "ffffffff" "0200" "0400" "e8030000" "0400" "0400" "ffffffff"
        "1000" "0400" "ffffffff" "2000" "0400" "ffffffff";
    const std::string script =
        "set -e; r=" + q(r) + "\n"
        "mkdir -p $r/bin $r/sbin $r/dev $r/etc $r/tmp $r/home/user $r/usr/share $r/var/empty\n"
        "cp /bin/busybox $r/bin/busybox\n"
        "for a in sh ls cat echo mount; do ln -s busybox $r/bin/$a; done\n"
        "ln $r/bin/busybox $r/sbin/init\n"
        "mknod $r/dev/null c 1 3; mknod $r/dev/zero c 1 5; mknod $r/dev/sda b 8 0; mkfifo $r/dev/initctl\n"
        "chmod 666 $r/dev/null $r/dev/zero; chmod 660 $r/dev/sda; chown 0:6 $r/dev/sda\n"
        "printf 'root:x:0:0::/root:/bin/sh\\nuser:x:1000:1000::/home/user:/bin/sh\\n' > $r/etc/passwd\n"
        "printf 'secret\\n' > $r/etc/shadow; chown 0:42 $r/etc/shadow; chmod 640 $r/etc/shadow\n"
        "printf 'hello\\n' > $r/home/user/notes; chown -R 1000:1000 $r/home/user; chmod 700 $r/home/user\n"
        "cp /bin/busybox $r/bin/ping; chmod 4755 $r/bin/ping\n"
        "chmod 1777 $r/tmp; chown 65534:65534 $r/var/empty\n"
        "printf 'shared\\n' > $r/usr/share/doc; ln $r/usr/share/doc $r/usr/share/doc-link\n"
        "python3 - $r <<'EOF'\n"
        "import os, sys\n"
        "r = sys.argv[1]\n"
        "os.setxattr(r + '/bin/ping', 'security.capability', bytes.fromhex('0100000200200000000000000000000000000000'))\n"
        "os.setxattr(r + '/usr/share/doc', 'user.origin', b'test\\x00bytes')\n"
        "os.setxattr(r + '/home/user', 'user.kind', b'home')\n"
        "os.setxattr(r + '/etc/passwd', 'system.posix_acl_access', bytes.fromhex('" + acl + "'))\n"
        "EOF\n"
        // Times: a fixed one for files, links and nodes (directories last).
        "find $r -exec touch -h -d @1700000000.123456789 {} +\n";
    test::write_file(*tmp_ / "make-root.sh", test::to_bytes(script));
    std::string out;
    if (sh("bash " + q(*tmp_ / "make-root.sh"), &out) != 0) setup_error_ = "the minimal root was not built: " + out;
  }
  static void TearDownTestSuite() {
    delete tmp_;
    tmp_ = nullptr;
  }
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (mknod, chown)";
    if (tmp_ == nullptr) GTEST_SKIP() << "busybox (package busybox-static) is missing";
    ASSERT_EQ(setup_error_, "");
  }
  static std::string compare(const std::string& a, const std::string& b, const std::string& flags = "") {
    std::string out;
    sh("python3 " + q(*tmp_ / "compare.py") + " " + q(a) + " " + q(b) + " " + flags, &out);
    return out;
  }
  static TempDir* tmp_;
  static std::string root_;
  static std::string setup_error_;
};
TempDir* MinimalRoot::tmp_ = nullptr;
std::string MinimalRoot::root_;
std::string MinimalRoot::setup_error_;

TEST_F(MinimalRoot, CreateThenExtractKeepsEveryStat) {
  const std::string t = tmp_->path();
  std::string out;
  ASSERT_EQ(sh(kMmar + " create -f " + q(t + "/root.mmar") + " -C " + q(root_) + " .", &out), 0) << out;
  ASSERT_EQ(sh(kMmar + " verify " + q(t + "/root.mmar"), &out), 0) << out;
  ASSERT_EQ(sh(kMmar + " extract -f " + q(t + "/root.mmar") + " -C " + q(t + "/x"), &out), 0) << out;
  EXPECT_EQ(compare(root_, t + "/x").rfind("same ", 0), 0u) << compare(root_, t + "/x");
  // The owners are shown by list as tar -tv shows them.
  ASSERT_EQ(sh(kMmar + " list -l " + q(t + "/root.mmar") + " | grep ' home/user/notes'", &out), 0) << out;
  // (names where this system has them for 1000, else the numbers)
  std::string user = "1000", group = "1000";
  if (const passwd* pw = ::getpwuid(1000)) user = pw->pw_name;
  if (const struct group* gr = ::getgrgid(1000)) group = gr->gr_name;
  EXPECT_NE(out.find(" " + user + "/" + group + " "), std::string::npos) << out;
  // Without the owner restored, neither setuid bits nor file capabilities.
  ASSERT_EQ(sh(kMmar + " extract --no-same-owner -f " + q(t + "/root.mmar") + " -C " + q(t + "/nso"), &out), 0)
      << out;
  EXPECT_EQ(sh("stat -c %a " + q(t + "/nso/bin/ping"), &out), 0);
  EXPECT_EQ(out, "755\n");
  EXPECT_NE(sh("python3 -c \"import os; os.getxattr('" + t + "/nso/bin/ping', 'security.capability')\""), 0);
  // The compacted archive is the same tree.
  ASSERT_EQ(sh(kMmar + " compact --compress xz " + q(t + "/root.mmar"), &out), 0) << out;
  ASSERT_EQ(sh(kMmar + " extract -f " + q(t + "/root.mmar") + " -C " + q(t + "/xc"), &out), 0) << out;
  EXPECT_EQ(compare(root_, t + "/xc").rfind("same ", 0), 0u) << compare(root_, t + "/xc");
}

TEST_F(MinimalRoot, CreateThenMountShowsEveryStat) {
  const std::string t = tmp_->path();
  std::string out;
  ASSERT_EQ(sh(kMmar + " create -f " + q(t + "/m.mmar") + " -C " + q(root_) + " .", &out), 0) << out;
  const std::string mnt = t + "/mnt";
  ASSERT_EQ(::mkdir(mnt.c_str(), 0755), 0);
  ASSERT_EQ(sh(kMmar + " mount -o dev,suid " + q(t + "/m.mmar") + " " + q(mnt), &out), 0) << out;
  // Hard links included: the names of one file are one inode with its
  // st_nlink.
  const std::string same = compare(root_, mnt);
  EXPECT_EQ(same.rfind("same ", 0), 0u) << same;
  // So a tar made through the mount stores the other names as links, as
  // one made from the tree does.
  std::string through_mount, from_tree;
  ASSERT_EQ(sh("tar -C " + q(mnt) + " -cf - . | tar -tvf - | grep -c ' link to '", &through_mount), 0);
  ASSERT_EQ(sh("tar -C " + q(root_) + " -cf - . | tar -tvf - | grep -c ' link to '", &from_tree), 0);
  EXPECT_EQ(through_mount, from_tree);
  EXPECT_NE(from_tree, "0\n");
  // And the programs run in place, as root of a chroot.
  EXPECT_EQ(sh("chroot " + q(mnt) + " /bin/sh -c 'cat /home/user/notes'", &out), 0) << out;
  EXPECT_EQ(out, "hello\n");
  // uid=, gid=, umask= override what every entry shows.
  ASSERT_EQ(sh(kMmar + " umount " + q(mnt), &out), 0) << out;
  ASSERT_EQ(sh(kMmar + " mount -o uid=4321,gid=8765,umask=027 " + q(t + "/m.mmar") + " " + q(mnt), &out), 0) << out;
  EXPECT_EQ(sh("stat -c '%u %g %a' " + q(mnt + "/etc/passwd") + " " + q(mnt + "/home/user"), &out), 0);
  EXPECT_EQ(out, "4321 8765 640\n4321 8765 700\n");
  ASSERT_EQ(sh(kMmar + " umount " + q(mnt), &out), 0) << out;
}

// Through a writable mount: a chown of a FIFO and a device commits; a
// write drops the file's capabilities (as the kernel does) and unlinks it
// from its other names; what was not touched keeps everything.
TEST_F(MinimalRoot, WritableMountKeepsAndUpdatesAttributes) {
  const std::string t = tmp_->path();
  std::string out;
  ASSERT_EQ(sh(kMmar + " create -f " + q(t + "/rw.mmar") + " -C " + q(root_) + " .", &out), 0) << out;
  const std::string mnt = t + "/rwmnt";
  ::mkdir(mnt.c_str(), 0755);
  ASSERT_EQ(sh(kMmar + " mount --rw " + q(t + "/rw.mmar") + " " + q(mnt), &out), 0) << out;
  EXPECT_EQ(sh("chown 7:8 " + q(mnt + "/dev/initctl") + " " + q(mnt + "/dev/null"), &out), 0) << out;
  EXPECT_EQ(sh("printf '#!/bin/sh\\n' > " + q(mnt + "/bin/ping"), &out), 0) << out;
  EXPECT_EQ(sh("printf 'changed\\n' > " + q(mnt + "/usr/share/doc"), &out), 0) << out;
  ASSERT_EQ(sh(kMmar + " umount " + q(mnt), &out), 0) << out;
  ASSERT_EQ(sh(kMmar + " extract -f " + q(t + "/rw.mmar") + " -C " + q(t + "/xrw"), &out), 0) << out;
  EXPECT_EQ(sh("stat -c '%u:%g %F' " + q(t + "/xrw/dev/initctl") + " " + q(t + "/xrw/dev/null"), &out), 0);
  EXPECT_EQ(out, "7:8 fifo\n7:8 character special file\n");
  EXPECT_NE(sh("python3 -c \"import os; os.getxattr('" + t + "/xrw/bin/ping', 'security.capability')\""), 0);
  EXPECT_EQ(sh("cat " + q(t + "/xrw/usr/share/doc") + " " + q(t + "/xrw/usr/share/doc-link"), &out), 0);
  EXPECT_EQ(out, "changed\nshared\n");
  EXPECT_EQ(sh("stat -c %h " + q(t + "/xrw/etc/shadow") + " && stat -c '%u:%g %a' " + q(t + "/xrw/etc/shadow"), &out),
            0);
  EXPECT_EQ(out, "1\n0:42 640\n");
}

TEST_F(MinimalRoot, TarThenCreateFromKeepsEveryStat) {
  const std::string t = tmp_->path();
  std::string out;
  // GNU tar as the peer that reads the tree: pax with xattrs and ACLs.
  ASSERT_EQ(sh("tar --format=posix --xattrs --xattrs-include='*' --acls -C " + q(root_) + " -cf " +
                   q(t + "/root.tar") + " .",
               &out),
            0)
      << out;
  ASSERT_EQ(sh(kMmar + " create -f " + q(t + "/fromtar.mmar") + " --from " + q(t + "/root.tar"), &out), 0) << out;
  ASSERT_EQ(sh(kMmar + " extract -f " + q(t + "/fromtar.mmar") + " -C " + q(t + "/xt"), &out), 0) << out;
  EXPECT_EQ(compare(root_, t + "/xt").rfind("same ", 0), 0u) << compare(root_, t + "/xt");
  // And back out as a tar that GNU tar extracts to the same tree.
  ASSERT_EQ(sh(kMmar + " export " + q(t + "/fromtar.mmar") + " -o " + q(t + "/back.tar"), &out), 0) << out;
  ASSERT_EQ(::mkdir((t + "/xb").c_str(), 0755), 0);
  ASSERT_EQ(sh("tar --xattrs --xattrs-include='*' --acls --same-owner -C " + q(t + "/xb") + " -xpf " +
                   q(t + "/back.tar"),
               &out),
            0)
      << out;
  EXPECT_EQ(compare(root_, t + "/xb").rfind("same ", 0), 0u) << compare(root_, t + "/xb");
}

}  // namespace
}  // namespace mmar
