// SPDX-License-Identifier: BSD-2-Clause
// `mmar btf dump --format c`: byte for byte what bpftool's `format c` prints,
// on BTF made by pahole and gcc from C sources that stress the converter, on
// split BTF and on the running kernel; the header compiles with gcc and lays
// out every struct as the BTF says; hostile type graphs are errors.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "mmar/btf.h"
#include "support/c_header_check.h"
#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;

const std::string kInputs = MMAR_TEST_INPUTS;

std::string q(const std::string& s) { return "'" + s + "'"; }
bool have(const char* tool) { return test::run(std::string("command -v ") + tool + " >/dev/null 2>&1") == 0; }

std::string bpftool_c(const std::string& file, const std::string& base = "", int* rc = nullptr) {
  std::string out;
  std::string cmd = "bpftool btf dump file " + q(file) + (base.empty() ? "" : " --base-btf " + q(base)) + " format c";
  int status = test::run(cmd + " 2>/dev/null", &out);
  if (rc != nullptr) {
    *rc = status;
  } else {
    EXPECT_EQ(status, 0) << cmd;
  }
  return out;
}

Btf open_or_die(const std::string& file, const Btf* base = nullptr) {
  auto r = Btf::open(file, base);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  return std::move(r).value();
}

std::string ours_c(const Btf& btf, bool compat = false) {
  std::string out;
  auto r = btf_dump_c(btf, out, CHeaderOptions{.bpftool_compat = compat});
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  return out;
}

class CDump : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have("bpftool") || !have("pahole") || !have("gcc")) GTEST_SKIP() << "needs bpftool, pahole and gcc";
  }
  std::string compile(const std::string& src, const std::string& flags, const std::string& pahole_flags = "") {
    std::string obj = tmp_ / (std::to_string(n_++) + ".o");
    std::string cmd = "gcc " + flags + " -O1 -c " + q(kInputs + "/" + src) + " -o " + q(obj);
    if (flags == "-g") cmd += " && pahole -J " + pahole_flags + " " + q(obj);
    EXPECT_EQ(test::run(cmd + " 2>&1"), 0) << cmd;
    return obj;
  }
  TempDir tmp_;
  int n_ = 0;
};

TEST_F(CDump, MatchesBpftoolOnPaholeAndGccBtfAndCompiles) {
  for (const char* src : {"c_decls.c", "module.c", "base.c"}) {
    for (const char* flags : {"-g", "-gbtf"}) {
      SCOPED_TRACE(std::string(src) + " " + flags);
      std::string obj = compile(src, flags);
      Btf btf = open_or_die(obj);
      std::string mine = ours_c(btf);
      EXPECT_EQ(ours_c(btf, true), bpftool_c(obj));
      // gcc 12's -gbtf drops enumerators it cannot represent (module.c's
      // `enum flags` becomes an empty, incomplete enum embedded by value):
      // no C header can be made from that BTF, by bpftool or by us.
      if (std::string(src) != "module.c" || std::string(flags) != "-gbtf") {
        EXPECT_EQ(test::compile_c_header(mine, btf), "");
      }
    }
  }
}

TEST_F(CDump, SplitBtfPrintsBaseAndSplitAsBpftoolDoes) {
  std::string base = compile("base.c", "-g");
  std::string split = compile("module.c", "-g", "--btf_base " + q(base));
  Btf b = open_or_die(base);
  Btf s = open_or_die(split, &b);
  std::string mine = ours_c(s);
  EXPECT_EQ(ours_c(s, true), bpftool_c(split, base));
  EXPECT_NE(mine.find("struct task_struct {"), std::string::npos) << "the base's types are part of the header";
  EXPECT_NE(mine.find("struct my_module_state {"), std::string::npos);
  EXPECT_EQ(test::compile_c_header(mine, s), "");
}

TEST_F(CDump, RunningKernelMatchesBpftoolAndCompilesWithItsLayout) {
  const char* vmlinux = "/sys/kernel/btf/vmlinux";
  struct stat st {};
  if (stat(vmlinux, &st) != 0) GTEST_SKIP() << vmlinux << " is not present on this machine";
  Btf btf = open_or_die(vmlinux);
  std::string mine = ours_c(btf);
  std::string theirs = bpftool_c(vmlinux);
  ASSERT_GT(theirs.size(), 1000000u);
  EXPECT_TRUE(ours_c(btf, true) == theirs) << "headers differ (" << mine.size() << " vs " << theirs.size() << " bytes)";
  EXPECT_EQ(test::compile_c_header(mine, btf), "");
}

// Write built BTF to a file so bpftool can read the same bytes.
std::string write_btf(const TempDir& tmp, const std::string& name, const BtfBuilder& b) {
  std::string path = tmp / name;
  test::write_file(path, b.write());
  return path;
}

TEST_F(CDump, DuplicateNamesGetTheSuffixesBpftoolGives) {
  BtfBuilder b;
  uint32_t i32 = *b.add_int("int", 4, 1);
  uint32_t i64 = *b.add_int("long int", 8, 1);
  uint32_t s1 = *b.add_struct("dup", 4);
  ASSERT_TRUE(b.add_field("a", i32, 0).ok());
  uint32_t s2 = *b.add_struct("dup", 8);
  ASSERT_TRUE(b.add_field("b", i64, 0).ok());
  uint32_t e1 = *b.add_enum("mode", 4);
  ASSERT_TRUE(b.add_enum_value("MODE_ON", 1).ok());
  uint32_t e2 = *b.add_enum("mode", 4);
  ASSERT_TRUE(b.add_enum_value("MODE_ON", 2).ok());
  uint32_t holder = *b.add_struct("holder", 24);
  ASSERT_TRUE(b.add_field("x", s1, 0).ok());
  ASSERT_TRUE(b.add_field("y", s2, 64).ok());
  ASSERT_TRUE(b.add_field("m1", e1, 128).ok());
  ASSERT_TRUE(b.add_field("m2", e2, 160).ok());
  (void)holder;
  std::string path = write_btf(tmp_, "dups.btf", b);
  Btf btf = open_or_die(path);
  std::string mine = ours_c(btf);
  EXPECT_EQ(ours_c(btf, true), bpftool_c(path));
  EXPECT_NE(mine.find("struct dup___2 {"), std::string::npos) << mine;
  EXPECT_NE(mine.find("MODE_ON___2 = 2"), std::string::npos) << mine;
  EXPECT_EQ(test::compile_c_header(mine, btf), "");
}

TEST_F(CDump, EnumSizesSurviveTheHeader) {
  BtfBuilder b;
  uint32_t small = *b.add_enum("small", 1);
  ASSERT_TRUE(b.add_enum_value("SMALL_A", 3).ok());
  uint32_t wide = *b.add_enum64("wide", 8, false);
  ASSERT_TRUE(b.add_enum64_value("WIDE_A", 7).ok());
  uint32_t big = *b.add_enum64("big", 8, false);
  ASSERT_TRUE(b.add_enum64_value("BIG_A", 1ull << 40).ok());
  uint32_t holder = *b.add_struct("holder", 24);
  ASSERT_TRUE(b.add_field("s", small, 0).ok());
  ASSERT_TRUE(b.add_field("t", small, 8).ok());
  ASSERT_TRUE(b.add_field("w", wide, 64).ok());
  ASSERT_TRUE(b.add_field("g", big, 128).ok());
  (void)holder;
  ASSERT_TRUE(b.add_int("long int", 8, 1).ok());  // pointer size 8, as on the kernels we read
  std::string path = write_btf(tmp_, "enums.btf", b);
  Btf btf = open_or_die(path);
  std::string mine = ours_c(btf);
  EXPECT_NE(mine.find("\tSMALL_A = 3,\n} __attribute__((mode(byte)));"), std::string::npos) << mine;
  EXPECT_NE(mine.find("\tWIDE_A = 7ULL,\n} __attribute__((mode(word)));"), std::string::npos) << mine;
  EXPECT_NE(mine.find("\tBIG_A = 1099511627776ULL,\n};"), std::string::npos) << mine;
  EXPECT_EQ(ours_c(btf, true), bpftool_c(path));
  EXPECT_EQ(test::compile_c_header(mine, btf), "") << "sizes and offsets as the BTF says";
  EXPECT_NE(test::compile_c_header(ours_c(btf, true), btf), "") << "bpftool 7.1's header gets them wrong";
}

TEST_F(CDump, PackedGapsArePaddedExactly) {
  BtfBuilder b;
  uint32_t chr = *b.add_int("char", 1, 2);
  uint32_t i32 = *b.add_int("int", 4, 1);
  ASSERT_TRUE(b.add_int("long int", 8, 1).ok());
  uint32_t pk = *b.add_struct("pk", 12);  // an int at byte 1: packed; 7 bytes of tail
  ASSERT_TRUE(b.add_field("a", chr, 0).ok());
  ASSERT_TRUE(b.add_field("b", i32, 8).ok());
  uint32_t five = *b.add_array(i32, chr, 5);
  uint32_t pu = *b.add_union("pu", 5);  // an int among 5 bytes: a packed union
  ASSERT_TRUE(b.add_field("bytes", five, 0).ok());
  ASSERT_TRUE(b.add_field("i", i32, 0).ok());
  uint32_t outer = *b.add_struct("outer", 24);
  ASSERT_TRUE(b.add_field("p", pk, 0).ok());
  ASSERT_TRUE(b.add_field("u", pu, 96).ok());
  ASSERT_TRUE(b.add_field("after", chr, 136).ok());
  (void)outer;
  std::string path = write_btf(tmp_, "packed.btf", b);
  Btf btf = open_or_die(path);
  std::string mine = ours_c(btf);
  EXPECT_NE(mine.find("\tint b;\n\tlong: 24;\n\tint: 32;\n} __attribute__((packed));"), std::string::npos) << mine;
  EXPECT_NE(mine.find("\tint i;\n} __attribute__((packed));"), std::string::npos) << mine;
  EXPECT_EQ(test::compile_c_header(mine, btf), "");
  std::string compat = ours_c(btf, true);
  EXPECT_EQ(compat, bpftool_c(path));
  EXPECT_NE(test::compile_c_header(compat, btf), "") << "bpftool 7.1's header is short";
}

TEST_F(CDump, CyclesAreErrorsNotCrashes) {
  {  // struct a embeds struct b embeds struct a: no C can express it
    BtfBuilder b;
    uint32_t a = b.next_id();
    ASSERT_EQ(*b.add_struct("a", 4), a);
    ASSERT_TRUE(b.add_field("b", a + 1, 0).ok());
    ASSERT_EQ(*b.add_struct("b", 4), a + 1);
    ASSERT_TRUE(b.add_field("a", a, 0).ok());
    std::string path = write_btf(tmp_, "loop.btf", b);
    Btf btf = open_or_die(path);
    std::string out;
    auto r = btf_dump_c(btf, out);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("loop.btf: type 1: unsatisfiable type cycle"), std::string::npos)
        << r.error().message();
    int rc = 0;
    bpftool_c(path, "", &rc);
    EXPECT_NE(rc, 0) << "bpftool refuses it too";
  }
  {  // const -> volatile -> const: a modifier cycle with no terminal type
    BtfBuilder b;
    uint32_t c = b.next_id();
    ASSERT_EQ(*b.add_const(c + 1), c);
    ASSERT_EQ(*b.add_volatile(c), c + 1);
    ASSERT_EQ(*b.add_typedef("t", c), c + 2);
    std::string path = write_btf(tmp_, "modloop.btf", b);
    Btf btf = open_or_die(path);
    std::string out;
    auto r = btf_dump_c(btf, out);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("modloop.btf: type "), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("too deep or cyclic"), std::string::npos) << r.error().message();
  }
  {  // a self-referencing struct through a pointer is fine
    BtfBuilder b;
    uint32_t s = b.next_id();
    ASSERT_EQ(*b.add_struct("list", 8), s);
    ASSERT_TRUE(b.add_field("next", s + 1, 0).ok());
    ASSERT_EQ(*b.add_ptr(s), s + 1);
    std::string path = write_btf(tmp_, "list.btf", b);
    Btf btf = open_or_die(path);
    std::string mine = ours_c(btf);
    EXPECT_EQ(mine, bpftool_c(path));
    EXPECT_NE(mine.find("struct list {\n\tstruct list *next;\n};"), std::string::npos) << mine;
  }
}

TEST_F(CDump, CliFormatOption) {
  MMAR_SKIP_WITHOUT_CLI();
  std::string obj = compile("c_decls.c", "-g");
  std::string mine, err;
  ASSERT_EQ(test::run(std::string(MMAR_BIN) + " btf dump --format c " + q(obj), &mine), 0);
  std::string compat;
  ASSERT_EQ(test::run(std::string(MMAR_BIN) + " btf dump --format c --bpftool-compat " + q(obj), &compat), 0);
  EXPECT_EQ(compat, bpftool_c(obj));
  // From an archive member, too.
  std::string dir = tmp_ / "tree";
  ASSERT_EQ(test::run("mkdir -p " + q(dir) + " && cp " + q(obj) + " " + q(dir + "/obj.o")), 0);
  std::string archive = tmp_ / "a.mmar";
  ASSERT_EQ(test::run(std::string(MMAR_BIN) + " create -f " + q(archive) + " -C " + q(dir) + " obj.o"), 0);
  std::string from_member;
  ASSERT_EQ(test::run(std::string(MMAR_BIN) + " btf dump --format c " + q(archive + ":obj.o"), &from_member), 0);
  EXPECT_EQ(from_member, mine);
  EXPECT_EQ(test::run(std::string(MMAR_BIN) + " btf dump --format go " + q(obj) + " 2>/dev/null"), 2);
  EXPECT_EQ(test::run(std::string(MMAR_BIN) + " btf dump --format c --json " + q(obj) + " 2>/dev/null"), 2);
}

}  // namespace
}  // namespace mmar

namespace mmar {
namespace {

// Bounds proportional to the input, checked before printing: a struct that
// claims a gigabyte (or a few that claim hundreds of KiB each) is refused
// with nothing much printed. Before, a 100-byte BTF printed 4 MiB of
// `long: 64;` before the bound stopped it (the fuzzer ran at 150 inputs/s).
TEST(CDumpBounds, LyingSizesAreRefusedBeforeTheyArePrinted) {
  for (uint32_t structs : {1u, 8u}) {
    SCOPED_TRACE(structs);
    BtfBuilder b;
    const uint32_t i32 = *b.add_int("int", 4, 1);
    for (uint32_t i = 0; i < structs; ++i) {
      ASSERT_TRUE(b.add_struct("huge" + std::to_string(i), structs == 1 ? 1u << 30 : 256u << 10).ok());
      ASSERT_TRUE(b.add_field("x", i32, 0).ok());
    }
    auto btf = Btf::parse(Bytes::from_vector(b.write()), "huge.btf");
    ASSERT_TRUE(btf.ok());
    std::string out;
    auto r = btf_dump_c(*btf, out);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("the C header would be unreasonably large (padding)"), std::string::npos)
        << r.error().message();
    EXPECT_LT(out.size(), 64u << 10);
  }
  // A real gap (a 4 KiB struct with one member) is printed in full.
  BtfBuilder b;
  const uint32_t i32 = *b.add_int("int", 4, 1);
  ASSERT_TRUE(b.add_struct("page", 4096).ok());
  ASSERT_TRUE(b.add_field("x", i32, 0).ok());
  auto btf = Btf::parse(Bytes::from_vector(b.write()), "page.btf");
  ASSERT_TRUE(btf.ok());
  std::string out;
  ASSERT_TRUE(btf_dump_c(*btf, out).ok());
  EXPECT_NE(out.find("struct page {\n\tint x;\n\tlong: 64;\n"), std::string::npos) << out.substr(0, 400);
}

}  // namespace
}  // namespace mmar
