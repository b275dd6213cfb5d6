// SPDX-License-Identifier: BSD-2-Clause
// The libarchive bridge driven like a user would: other archive formats
// into mmar (create --from) and mmar out to them (export), with GNU tar,
// Info-ZIP, cpio and bsdtar as the oracles that make the inputs and read the
// outputs; hostile inputs refused with the entry named.
#include <dirent.h>
#include <gtest/gtest.h>
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

bool has_spool_left(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return false;
  bool found = false;
  while (dirent* e = ::readdir(d)) {
    if (std::string(e->d_name).rfind(".mmar-import.", 0) == 0) found = true;
  }
  ::closedir(d);
  return found;
}

// One random tree, archived by the peers in every format once per binary.
class Convert : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new TempDir;
    src_ = *tmp_ / "src";
    ::mkdir(src_.c_str(), 0755);
    test::TreeSpec spec;
    spec.seed = 77;
    spec.files = 150;
    test::make_random_tree(src_, spec);
    // A hard link, and whole even seconds for the formats that keep no more
    // (zip: 2 s; cpio, ISO 9660: 1 s), so every tree compares exactly.
    ASSERT_EQ(sh("cd " + q(src_) + " && f=$(find . -type f | LC_ALL=C sort | head -n1) && ln \"$f\" hard-link"), 0);
    ASSERT_EQ(sh("find " + q(src_) + " -exec touch -h -d @1600000000 {} +"), 0);
    const std::string t = tmp_->path();
    ASSERT_EQ(sh("tar --format=posix -C " + q(src_) + " -cf " + q(t + "/t.tar") + " ."), 0);
    ASSERT_EQ(sh("gzip -c " + q(t + "/t.tar") + " > " + q(t + "/t.tar.gz")), 0);
    ASSERT_EQ(sh("xz -T1 -c " + q(t + "/t.tar") + " > " + q(t + "/t.tar.xz")), 0);
    ASSERT_EQ(sh("zstd -q -c " + q(t + "/t.tar") + " > " + q(t + "/t.tar.zst")), 0);
    ASSERT_EQ(sh("bzip2 -c " + q(t + "/t.tar") + " > " + q(t + "/t.tar.bz2")), 0);
    ASSERT_EQ(sh("tar --format=gnu -C " + q(src_) + " -cf " + q(t + "/gnu.tar") + " ."), 0);
    ASSERT_EQ(sh("cd " + q(src_) + " && zip -q -r -y " + q(t + "/t.zip") + " ."), 0);
    ASSERT_EQ(sh("cd " + q(src_) + " && find . | LC_ALL=C sort | cpio -o -H newc --quiet > " + q(t + "/t.cpio")), 0);
    ASSERT_EQ(sh("bsdtar --format iso9660 --options rockridge -C " + q(src_) + " -cf " + q(t + "/t.iso") + " ."), 0);
  }
  static void TearDownTestSuite() {
    delete tmp_;
    tmp_ = nullptr;
  }
  // `mmar create --from IN`, extracted, compared with the source tree.
  void round_trip(const std::string& input, bool exact_tree) {
    const std::string t = tmp_->path();
    const std::string base = input.substr(input.rfind('/') + 1);
    const std::string out = t + "/" + base + ".mmar", x = t + "/x-" + base;
    std::string log;
    ASSERT_EQ(sh(kMmar + " create -f " + q(out) + " --from " + q(input), &log), 0) << base << ": " << log;
    ASSERT_EQ(sh(kMmar + " verify " + q(out), &log), 0) << base << ": " << log;
    ASSERT_EQ(sh(kMmar + " extract -f " + q(out) + " -C " + q(x), &log), 0) << base << ": " << log;
    if (exact_tree) {
      EXPECT_EQ(test::diff_trees(src_, x), "") << base;
    } else {
      ASSERT_EQ(sh("diff -r --no-dereference " + q(src_) + " " + q(x), &log), 0) << base << ": " << log;
    }
    EXPECT_FALSE(has_spool_left(t)) << base;
  }
  static TempDir* tmp_;
  static std::string src_;
};
TempDir* Convert::tmp_ = nullptr;
std::string Convert::src_;

TEST_F(Convert, TarInEveryCompressionIsTheSameTree) {
  for (const char* f : {"t.tar", "t.tar.gz", "t.tar.xz", "t.tar.zst", "t.tar.bz2", "gnu.tar"}) {
    round_trip(*tmp_ / f, /*exact_tree=*/true);
  }
  // The hard link is stored once: the two names share their data.
  std::string out;
  ASSERT_EQ(sh(kMmar + " list --json " + q(*tmp_ / "t.tar.mmar") +
                   " | python3 -c 'import json,sys; m=[x for x in json.load(sys.stdin) if x[\"type\"]==\"file\"];"
                   " import collections; c=collections.Counter((x[\"offset\"],x.get(\"stream_offset\",0),x[\"size\"]) for x in m if x[\"size\"]);"
                   " print(max(c.values()))'",
               &out),
            0)
      << out;
  EXPECT_EQ(out, "2\n");
}

TEST_F(Convert, ZipCpioIsoKeepContentsAndLinks) {
  for (const char* f : {"t.zip", "t.cpio", "t.iso"}) round_trip(*tmp_ / f, /*exact_tree=*/false);
  // Modes and times too where the format keeps them (cpio, ISO Rock Ridge).
  // (ISO 9660 with Rock Ridge keeps them too, but directories' modes are
  // the writer's: contents and links only there.)
  for (const char* f : {"t.cpio"}) {
    EXPECT_EQ(test::diff_trees(src_, *tmp_ / (std::string("x-") + f)), "") << f;
  }
}

TEST_F(Convert, StandardInputStreams) {
  const std::string t = tmp_->path();
  std::string log;
  ASSERT_EQ(sh("cat " + q(t + "/t.tar.zst") + " | " + kMmar + " create -f " + q(t + "/stdin.mmar") + " --from -", &log),
            0)
      << log;
  ASSERT_EQ(sh(kMmar + " extract -f " + q(t + "/stdin.mmar") + " -C " + q(t + "/x-stdin"), &log), 0) << log;
  EXPECT_EQ(test::diff_trees(src_, t + "/x-stdin"), "");
  // Both ends on pipes: tar | mmar create --from - -f - | mmar list -.
  ASSERT_EQ(sh("tar -C " + q(src_) + " -cf - . | " + kMmar + " create --from - -f - | " + kMmar + " list - | wc -l",
               &log),
            0);
  std::string expected;
  ASSERT_EQ(sh("cd " + q(src_) + " && find . -mindepth 1 | wc -l", &expected), 0);
  EXPECT_EQ(log, expected);
}

TEST_F(Convert, ExportIsReadByThePeers) {
  const std::string t = tmp_->path();
  std::string log;
  ASSERT_EQ(sh(kMmar + " create -f " + q(t + "/tree.mmar") + " -C " + q(src_) + " .", &log), 0) << log;
  // pax by default (exact times), the compression from the extension.
  for (const char* f : {"e.tar", "e.tar.zst", "e.tgz", "e.tar.xz"}) {
    ASSERT_EQ(sh(kMmar + " export " + q(t + "/tree.mmar") + " -o " + q(t + "/" + f), &log), 0) << f << log;
    const std::string x = t + "/x-" + f;
    ::mkdir(x.c_str(), 0755);
    ASSERT_EQ(sh("tar -C " + q(x) + " -xf " + q(t + "/" + f), &log), 0) << f << log;
    EXPECT_EQ(test::diff_trees(src_, x), "") << f;
  }
  ASSERT_EQ(sh(kMmar + " export " + q(t + "/tree.mmar") + " -o " + q(t + "/e.zip"), &log), 0) << log;
  // Python's zipfile reads it (unzip would rename names with a tab): every
  // entry is in the tree with its bytes, link target and mode, and only those.
  test::write_file(t + "/zipcheck.py", test::to_bytes(R"(import os, stat, sys, zipfile
z, src = zipfile.ZipFile(sys.argv[1]), sys.argv[2]
names = set()
for i in z.infolist():
    # The bytes of the name: UTF-8 when flagged (bit 11), else as cp437.
    raw = i.filename.encode("utf-8" if i.flag_bits & 0x800 else "cp437")
    name = raw.decode("utf-8", "surrogateescape").rstrip("/"); names.add(name); p = os.path.join(src, name)
    mode = i.external_attr >> 16
    assert stat.S_IMODE(mode) == stat.S_IMODE(os.lstat(p).st_mode), name
    if stat.S_ISLNK(mode): assert os.readlink(p) == z.read(i).decode("utf-8", "surrogateescape"), name
    elif i.is_dir(): assert os.path.isdir(p) and not os.path.islink(p), name
    else: assert open(p, "rb").read() == z.read(i), name
tree = {os.path.relpath(os.path.join(d, n), src) for d, ds, fs in os.walk(src) for n in ds + fs}
assert names == tree, (names ^ tree)
print("ok")
)"));
  ASSERT_EQ(sh("python3 " + q(t + "/zipcheck.py") + " " + q(t + "/e.zip") + " " + q(src_), &log), 0) << log;
  ASSERT_EQ(sh(kMmar + " export " + q(t + "/tree.mmar") + " -o - --format cpio | (mkdir " + q(t + "/x-cpio") +
                   " && cd " + q(t + "/x-cpio") + " && cpio -idm --quiet)",
               &log),
            0)
      << log;
  ASSERT_EQ(sh("diff -r --no-dereference " + q(src_) + " " + q(t + "/x-cpio"), &log), 0) << log;
  // A bad format is a usage error; nothing is left behind.
  EXPECT_EQ(sh(kMmar + " export " + q(t + "/tree.mmar") + " -o " + q(t + "/bad.out") + " --format arj", &log), 2);
  EXPECT_NE(::access((t + "/bad.out").c_str(), F_OK), 0);
  // A write that fails is an error, never a success.
  EXPECT_EQ(sh(kMmar + " export " + q(t + "/tree.mmar") + " -o - > /dev/full", &log), 1) << log;
}

TEST_F(Convert, HostileInputsAreRefusedNamingTheEntry) {
  const std::string t = tmp_->path();
  const std::string py = t + "/hostile.py";
  test::write_file(py, test::to_bytes(R"(import io, sys, tarfile
def add(tf, name, data=b"x", **kw):
    ti = tarfile.TarInfo(name); ti.size = len(data)
    for k, v in kw.items(): setattr(ti, k, v)
    tf.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
kind, out = sys.argv[1], sys.argv[2]
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
    if kind == "dotdot": add(tf, "ok"); add(tf, "a/../../evil")
    elif kind == "abs": add(tf, "/etc/abs-name", b"abs")
    elif kind == "hardlink": add(tf, "l", type=tarfile.LNKTYPE, linkname="missing", size=0)
    elif kind == "fifo": add(tf, "f", b"", type=tarfile.FIFOTYPE)
    elif kind == "chr": add(tf, "dev/null", b"", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
    elif kind == "dup": add(tf, "same", b"first"); add(tf, "same", b"second")
)"));
  struct Case {
    const char* kind;
    int rc;
    const char* says;
  } cases[] = {
      {"dotdot", 1, "entry 'a/../../evil'"},
      {"hardlink", 1, "entry 'l': hard link to 'missing', which is not an earlier regular file"},
      {"fifo", 0, ""},
      {"chr", 0, ""},
      {"abs", 0, ""},
      {"dup", 0, ""},
  };
  for (const Case& c : cases) {
    const std::string in = t + "/" + c.kind + ".tar", out = t + "/" + c.kind + ".mmar";
    ASSERT_EQ(sh("python3 " + q(py) + " " + c.kind + " " + q(in)), 0) << c.kind;
    std::string log;
    EXPECT_EQ(sh(kMmar + " create -f " + q(out) + " --from " + q(in), &log), c.rc) << c.kind << ": " << log;
    if (c.rc != 0) {
      EXPECT_NE(log.find(c.says), std::string::npos) << log;
      EXPECT_EQ(log.find('\n'), log.size() - 1) << "one line: " << log;
      EXPECT_NE(::access(out.c_str(), F_OK), 0) << c.kind;
    }
    EXPECT_FALSE(has_spool_left(t)) << c.kind;
  }
  std::string out;
  // Device nodes and FIFOs are kept, with their numbers.
  ASSERT_EQ(sh(kMmar + " list --json " + q(t + "/chr.mmar"), &out), 0) << out;
  EXPECT_NE(out.find("\"type\":\"chardev\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"rdev_major\":1,\"rdev_minor\":3"), std::string::npos) << out;
  ASSERT_EQ(sh(kMmar + " list --json " + q(t + "/fifo.mmar"), &out), 0) << out;
  EXPECT_NE(out.find("\"type\":\"fifo\""), std::string::npos) << out;
  // A leading '/' is dropped, as tar does; the last of two same names wins.
  ASSERT_EQ(sh(kMmar + " cat " + q(t + "/abs.mmar") + " etc/abs-name", &out), 0) << out;
  EXPECT_EQ(out, "abs");
  ASSERT_EQ(sh(kMmar + " cat " + q(t + "/dup.mmar") + " same", &out), 0) << out;
  EXPECT_EQ(out, "second");
  // A zip whose data fails its CRC: an error naming the entry, never stored.
  ASSERT_EQ(sh("python3 -c \"import zipfile; z=zipfile.ZipFile('" + t + "/crc.zip','w'); "
               "z.writestr('data.txt', 'x' * 100); z.close()\""),
            0);
  ASSERT_EQ(sh("python3 -c \"b=bytearray(open('" + t + "/crc.zip','rb').read()); i=b.find(b'xxxx'); b[i]=ord('y'); "
               "open('" + t + "/crc.zip','wb').write(b)\""),
            0);
  EXPECT_EQ(sh(kMmar + " create -f " + q(t + "/crc.mmar") + " --from " + q(t + "/crc.zip"), &out), 1) << out;
  EXPECT_NE(out.find("entry 'data.txt'"), std::string::npos) << out;
  EXPECT_NE(::access((t + "/crc.mmar").c_str(), F_OK), 0);
  // UTF-8 names in a zip (Python's zipfile flags them): kept as bytes.
  ASSERT_EQ(sh("python3 -c \"import zipfile; z=zipfile.ZipFile('" + t + "/u.zip','w'); "
               "z.writestr('\u00e9-\u65e5\u672c.txt', 'hi'); z.close()\""),
            0);
  ASSERT_EQ(sh(kMmar + " create -f " + q(t + "/u.mmar") + " --from " + q(t + "/u.zip"), &out), 0) << out;
  ASSERT_EQ(sh(kMmar + " list " + q(t + "/u.mmar"), &out), 0) << out;
  EXPECT_EQ(out, "\xc3\xa9-\xe6\x97\xa5\xe6\x9c\xac.txt\n");
  // A text file is not an archive (libarchive would read it as an mtree).
  test::write_file(t + "/list.txt", test::to_bytes("./x type=file size=5 mode=4755\n"));
  EXPECT_EQ(sh(kMmar + " create -f " + q(t + "/mtree.mmar") + " --from " + q(t + "/list.txt"), &out), 1) << out;
  // Owners and xattrs from a tar follow --no-owners / --no-xattrs too.
  ASSERT_EQ(sh("python3 -c \"import tarfile, io; t=tarfile.open('" + t + "/own.tar','w',format=tarfile.PAX_FORMAT); "
               "ti=tarfile.TarInfo('f'); ti.size=1; ti.uid=1000; ti.uname='alice'; "
               "ti.pax_headers={'SCHILY.xattr.user.k':'v'}; t.addfile(ti, io.BytesIO(b'x')); t.close()\""),
            0);
  ASSERT_EQ(sh(kMmar + " create -f " + q(t + "/own.mmar") + " --from " + q(t + "/own.tar"), &out), 0) << out;
  ASSERT_EQ(sh(kMmar + " list --json " + q(t + "/own.mmar"), &out), 0) << out;
  EXPECT_NE(out.find("\"uid\":1000"), std::string::npos) << out;
  EXPECT_NE(out.find("\"uname\":\"alice\""), std::string::npos) << out;
  EXPECT_NE(out.find("user.k"), std::string::npos) << out;
  ASSERT_EQ(sh(kMmar + " create -f " + q(t + "/own2.mmar") + " --no-owners --no-xattrs --from " + q(t + "/own.tar"),
               &out),
            0)
      << out;
  ASSERT_EQ(sh(kMmar + " list --json " + q(t + "/own2.mmar"), &out), 0) << out;
  EXPECT_EQ(out.find("\"uid\""), std::string::npos) << out;
  EXPECT_EQ(out.find("user.k"), std::string::npos) << out;
  // Truncated and damaged inputs: an error, no archive.
  ASSERT_EQ(sh("head -c 3000 " + q(t + "/t.tar.gz") + " > " + q(t + "/cut.tar.gz")), 0);
  EXPECT_EQ(sh(kMmar + " create -f " + q(t + "/cut.mmar") + " --from " + q(t + "/cut.tar.gz"), &out), 1) << out;
  EXPECT_NE(::access((t + "/cut.mmar").c_str(), F_OK), 0);
  test::write_file(t + "/noise", test::to_bytes(std::string(5000, 'z')));
  EXPECT_EQ(sh(kMmar + " create -f " + q(t + "/noise.mmar") + " --from " + q(t + "/noise"), &out), 1) << out;
  EXPECT_NE(out.find("noise"), std::string::npos) << out;
  EXPECT_FALSE(has_spool_left(t));
}

// Tar writes a file's extended attributes on its first entry only; a hard
// link entry carries none. Every name is the same file all the same: each
// gets the file's attributes, whether the link's name sorts before the
// original's (the archive is in name order) or after. Extract and mount.
TEST_F(Convert, HardLinksKeepTheFilesXattrsInEitherNameOrder) {
  const std::string t = *tmp_ / "hardlink-xattrs";
  std::string out;
  ASSERT_EQ(
      sh("mkdir -p " + q(t + "/src") + " && cd " + q(t + "/src") +
         " && echo data > z && chmod 640 z && ln z a && python3 -c \"import os; os.setxattr('z', 'user.k', b'v')\""),
      0);
  const bool can_mount = sh(kMmar + " mount --help") == 0 && ::access("/dev/fuse", R_OK | W_OK) == 0;
  for (const std::string order : {"z a", "a z"}) {  // the original first, the link second
    SCOPED_TRACE("tar order: " + order);
    const std::string tar = t + "/h.tar", ar = t + "/h.mmar", x = t + "/x";
    ASSERT_EQ(sh("rm -rf " + q(x) + " " + q(ar) + " && tar --format=posix --xattrs --xattrs-include='*' -C " +
                 q(t + "/src") + " -cf " + q(tar) + " " + order),
              0);
    ASSERT_EQ(sh("tar -tvf " + q(tar) + " | grep -c ' link to '", &out), 0) << out;
    ASSERT_EQ(sh(kMmar + " create -f " + q(ar) + " --from " + q(tar), &out), 0) << out;
    ASSERT_EQ(sh(kMmar + " extract -f " + q(ar) + " -C " + q(x), &out), 0) << out;
    const std::string check =
        "python3 -c \"import os, sys; print(' '.join('%s:%s:%o:%d' % (n, os.listxattr(n), "
        "os.stat(n).st_mode & 0o7777, os.stat(n).st_nlink) for n in sys.argv[1:]))\" ";
    ASSERT_EQ(sh(check + q(x + "/a") + " " + q(x + "/z"), &out), 0) << out;
    EXPECT_EQ(out, x + "/a:['user.k']:640:2 " + x + "/z:['user.k']:640:2\n");
    if (!can_mount) continue;
    const std::string mnt = t + "/mnt";
    ::mkdir(mnt.c_str(), 0755);
    ASSERT_EQ(sh(kMmar + " mount " + q(ar) + " " + q(mnt), &out), 0) << out;
    EXPECT_EQ(sh(check + q(mnt + "/a") + " " + q(mnt + "/z"), &out), 0) << out;
    EXPECT_EQ(out, mnt + "/a:['user.k']:640:2 " + mnt + "/z:['user.k']:640:2\n");
    ASSERT_EQ(sh(kMmar + " umount " + q(mnt), &out), 0) << out;
  }
}

// --exclude and --exclude-from leave out entries of an input archive as
// they leave out files of a tree: the whole name or its last component,
// and everything below an excluded directory. A hard link to an excluded
// file keeps its data.
TEST_F(Convert, ExcludeAppliesToTheInputArchive) {
  const std::string t = *tmp_ / "exclude";
  std::string out;
  ASSERT_EQ(sh("mkdir -p " + q(t + "/src/d") + " " + q(t + "/src/skip/deep") + " && cd " + q(t + "/src") +
               " && echo o > a.o && echo c > b.c && echo o > d/x.o && echo y > d/y && echo s > skip/deep/s"
               " && ln a.o keep && echo 'skip' > ../patterns"),
            0);
  ASSERT_EQ(sh("tar --format=posix -C " + q(t + "/src") + " -cf " + q(t + "/e.tar") + " a.o b.c d skip keep"), 0);
  // The same patterns give the same members from the tree and from the tar.
  ASSERT_EQ(sh(kMmar + " create -f " + q(t + "/tree.mmar") + " --exclude '*.o' -X " + q(t + "/patterns") + " -C " +
                   q(t + "/src") + " .",
               &out),
            0)
      << out;
  ASSERT_EQ(sh(kMmar + " create -f " + q(t + "/tar.mmar") + " --exclude '*.o' -X " + q(t + "/patterns") + " --from " +
                   q(t + "/e.tar"),
               &out),
            0)
      << out;
  std::string from_tree;
  ASSERT_EQ(sh(kMmar + " list " + q(t + "/tree.mmar"), &from_tree), 0) << from_tree;
  ASSERT_EQ(sh(kMmar + " list " + q(t + "/tar.mmar"), &out), 0) << out;
  EXPECT_EQ(out, "b.c\nd\nd/y\nkeep\n");
  EXPECT_EQ(out, from_tree);
  ASSERT_EQ(sh(kMmar + " cat " + q(t + "/tar.mmar") + " keep", &out), 0) << out;
  EXPECT_EQ(out, "o\n");
  EXPECT_FALSE(has_spool_left(t));
}

}  // namespace
}  // namespace mmar
