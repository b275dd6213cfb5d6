// SPDX-License-Identifier: BSD-2-Clause
// CTF to BTF (btf_convert_ctf, `mmar btf from-ctf`) on what gcc -gctf
// writes for tests/inputs/ctf/many_types.c. Oracles: libbpf (bpftool must
// load and print the BTF, and print the same C header as our
// --bpftool-compat dump), gcc -gbtf (its BTF of the same source must have
// the same structs, members, bit offsets and bitfield sizes), and gcc
// itself (`mmar btf dump --format c` of the result compiles with
// _Static_asserts of sizes and offsets taken from the CTF dict).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "mmar/btf.h"
#include "mmar/ctf.h"
#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;

const std::string kSource = std::string(MMAR_SOURCE_DIR) + "/tests/inputs/ctf/many_types.c";

std::string q(const std::string& s) { return "'" + s + "'"; }
bool have(const char* tool) { return test::run(std::string("command -v ") + tool + " >/dev/null 2>&1") == 0; }
void spit(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// _Static_asserts of every layout fact the dict states for its own named
// types: sizeof of each struct, union and enum whose tag occurs once, and
// of each typedef with a size; offsetof of each named member that is not a
// bitfield (a slice) and starts on a byte.
std::string ctf_layout_asserts(const CtfDict& d) {
  std::map<std::string, int> tags;
  for (uint32_t i = 1; i <= d.type_count(); ++i) {
    auto t = d.type(d.id_of_index(i));
    if (t.ok() && !t->name.empty() &&
        (t->kind == CtfKind::struct_ || t->kind == CtfKind::union_ || t->kind == CtfKind::enum_)) {
      ++tags[std::string(t->kind == CtfKind::enum_    ? "enum "
                         : t->kind == CtfKind::union_ ? "union "
                                                      : "struct ") +
             std::string(t->name)];
    }
  }
  std::ostringstream out;
  out << "#include <stddef.h>\n";
  int n = 0;
  auto check = [&](const std::string& expr, int64_t want) {
    out << "_Static_assert(" << expr << " == " << want << ", \"" << expr << "\");\n";
    ++n;
  };
  for (uint32_t i = 1; i <= d.type_count(); ++i) {
    const uint32_t id = d.id_of_index(i);
    auto t = d.type(id);
    if (!t.ok() || t->name.empty()) continue;
    const std::string name(t->name);
    if (t->kind == CtfKind::typedef_) {
      auto kind = d.type_kind(id);
      auto size = d.type_size(id);
      if (kind.ok() && *kind != CtfKind::function && size.ok() && *size > 0) check("sizeof(" + name + ")", *size);
      continue;
    }
    if (t->kind == CtfKind::enum_) {
      if (tags["enum " + name] == 1) check("sizeof(enum " + name + ")", static_cast<int64_t>(t->size));
      continue;
    }
    if (t->kind != CtfKind::struct_ && t->kind != CtfKind::union_) continue;
    const std::string tag = (t->kind == CtfKind::struct_ ? "struct " : "union ") + name;
    if (tags[tag] != 1) continue;
    check("sizeof(" + tag + ")", static_cast<int64_t>(t->size));
    auto members = d.members(id);
    if (!members.ok()) continue;
    for (const CtfMember& m : *members) {
      auto mt = d.type(m.type);
      if (m.name.empty() || !mt.ok() || mt->kind == CtfKind::slice || m.offset % 8 != 0) continue;
      check("offsetof(" + tag + ", " + std::string(m.name) + ")", static_cast<int64_t>(m.offset / 8));
    }
  }
  out << "/* " << n << " asserts */\n";
  return out.str();
}

class BtfFromCtf : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have("gcc") || !have("bpftool")) GTEST_SKIP() << "needs gcc and bpftool";
    obj_ = tmp_ / "many.o";
    std::string log;
    if (test::run("gcc -gctf -c " + q(kSource) + " -o " + q(obj_) + " 2>&1", &log) != 0) {
      GTEST_SKIP() << "gcc cannot write CTF here: " << log;
    }
  }
  TempDir tmp_;
  std::string obj_;
};

TEST_F(BtfFromCtf, HeaderCompilesWithTheDictsLayoutAndBpftoolAgrees) {
  MMAR_SKIP_WITHOUT_CLI();
  const std::string m = MMAR_BIN, out = tmp_ / "many.btf";
  std::string said;
  ASSERT_EQ(test::run(m + " btf from-ctf -o " + q(out) + " " + q(obj_) + " 2>&1", &said), 0) << said;
  EXPECT_NE(said.find("(3 functions, 3 objects)"), std::string::npos) << said;

  // libbpf loads it and prints it; our compat header is its header.
  std::string raw, theirs;
  ASSERT_EQ(test::run("bpftool btf dump file " + q(out) + " 2>&1", &raw), 0) << raw;
  EXPECT_NE(raw.find("FUNC 'use_everything' type_id="), std::string::npos) << raw;
  EXPECT_NE(raw.find("VAR 'everything_var' type_id="), std::string::npos) << raw;
  ASSERT_EQ(test::run("bpftool btf dump file " + q(out) + " format c 2>&1", &theirs), 0) << theirs;
  auto btf = Btf::open(out, nullptr, BtfOpenOptions{.validate = true});
  ASSERT_TRUE(btf.ok()) << btf.error().message();
  std::string compat, header;
  ASSERT_TRUE(btf_dump_c(*btf, compat, CHeaderOptions{.bpftool_compat = true}).ok());
  EXPECT_EQ(compat, theirs);
  ASSERT_TRUE(btf_dump_c(*btf, header).ok());
  EXPECT_NE(header.find("\tlong int three[2][3][4];"), std::string::npos) << header;
  EXPECT_NE(header.find("\tchar two[2][3];"), std::string::npos) << header;
  EXPECT_NE(header.find("\tvoid (* (*nested)(int))(void);"), std::string::npos) << header;

  // The header, then asserts from the CTF dict (not from the BTF), through gcc.
  auto ctf = ctf_open_file(obj_);
  ASSERT_TRUE(ctf.ok()) << ctf.error().message();
  ASSERT_EQ(ctf->dicts.size(), 1u);
  const std::string asserts = ctf_layout_asserts(ctf->dicts[0].dict);
  ASSERT_NE(asserts.find("sizeof(struct everything) == "), std::string::npos) << asserts;
  ASSERT_NE(asserts.find("sizeof(enum packed_enum) == 1"), std::string::npos) << asserts;
  ASSERT_NE(asserts.find("offsetof(struct with_anon, after)"), std::string::npos) << asserts;
  const std::string complex_names = "#include <complex.h>\n";  // CTF's and gcc -gbtf's "complex double"
  spit(tmp_ / "check.c", complex_names + header + asserts);
  std::string errors;
  EXPECT_EQ(test::run("gcc -std=gnu11 -fsyntax-only -DBPF_NO_PRESERVE_ACCESS_INDEX " + q(tmp_ / "check.c") + " 2>&1",
                      &errors),
            0)
      << errors;
  // The asserts bite: one wrong size fails the compile.
  spit(tmp_ / "wrong.c", complex_names + header + asserts + "_Static_assert(sizeof(struct bits) == 17, \"wrong\");\n");
  EXPECT_NE(test::run("gcc -std=gnu11 -fsyntax-only -DBPF_NO_PRESERVE_ACCESS_INDEX " + q(tmp_ / "wrong.c") +
                      " >/dev/null 2>&1"),
            0);
}

// Bitfields cannot be asserted in C: gcc's own BTF of the same source is the
// oracle for every struct's and union's members, bit offsets and widths.
TEST_F(BtfFromCtf, MembersAndBitfieldsAreGccBtfs) {
  const std::string gbtf = tmp_ / "many_gbtf.o";
  if (test::run("gcc -gbtf -c " + q(kSource) + " -o " + q(gbtf) + " 2>/dev/null") != 0) {
    GTEST_SKIP() << "gcc cannot write BTF here";
  }
  auto ctf = ctf_open_file(obj_);
  ASSERT_TRUE(ctf.ok()) << ctf.error().message();
  auto converted = btf_convert_ctf(ctf->dicts[0].dict);
  ASSERT_TRUE(converted.ok()) << converted.error().message();
  auto ours = Btf::parse(Bytes::from_vector(converted->btf), "ours", BtfOpenOptions{.validate = true});
  auto gccs = Btf::open(gbtf, nullptr, BtfOpenOptions{.validate = true});
  ASSERT_TRUE(ours.ok()) << ours.error().message();
  ASSERT_TRUE(gccs.ok()) << gccs.error().message();
  auto members = [](const Btf& b, const BtfType& t) {
    std::vector<std::string> out;
    for (uint32_t i = 0; i < t.vlen(); ++i) {
      const uint32_t off = t.extra_u32(i * 3 + 2);
      out.push_back(std::string(b.str(t.extra_u32(i * 3)).value_or("?")) + "@" +
                    std::to_string(t.kflag() ? off & 0xffffff : off) + ":" + std::to_string(t.kflag() ? off >> 24 : 0));
    }
    return out;
  };
  int compared = 0;
  auto count = gccs->type_count();
  ASSERT_TRUE(count.ok());
  for (uint32_t id = 1; id < *count; ++id) {
    auto g = gccs->type(id);
    ASSERT_TRUE(g.ok());
    if ((g->kind() != BtfKind::struct_ && g->kind() != BtfKind::union_) || g->name_off() == 0) continue;
    const std::string name(gccs->name_of(*g));
    auto o = ours->find(name, g->kind());
    ASSERT_TRUE(o.ok()) << name;
    EXPECT_EQ(o->size(), g->size()) << name;
    EXPECT_EQ(members(*ours, *o), members(*gccs, *g)) << name;
    ++compared;
  }
  EXPECT_EQ(compared, 11);  // every named struct and union of many_types.c
  // The multi-dimensional array in C order: long three[2][3][4].
  auto arrays = ours->find("arrays", BtfKind::struct_);
  ASSERT_TRUE(arrays.ok());
  uint32_t t = arrays->extra_u32(2 * 3 + 1);  // member 2: three
  std::vector<uint32_t> dims;
  for (auto a = ours->type(t); a.ok() && a->kind() == BtfKind::array; a = ours->type(a->extra_u32(0))) {
    dims.push_back(a->extra_u32(2));
  }
  EXPECT_EQ(dims, (std::vector<uint32_t>{2, 3, 4}));
}

// A shared object whose CUs disagree on a struct: a CTF archive whose
// children hold the conflicting types; a child converts with its parent's.
TEST_F(BtfFromCtf, ChildDictsBringTheirParentsTypes) {
  spit(tmp_ / "a.c",
       "struct conflict { int a; };\nstruct shared_t { long x; };\n"
       "int fa(struct conflict* c, struct shared_t* s) { return c->a + (int)s->x; }\n");
  spit(tmp_ / "b.c",
       "struct conflict { char b[24]; };\nstruct shared_t { long x; };\n"
       "int fb(struct conflict* c, struct shared_t* s) { return c->b[0] + (int)s->x; }\n");
  const std::string so = tmp_ / "two.so";
  std::string log;
  if (test::run("cd " + q(tmp_.path()) + " && gcc -gctf -fPIC -shared a.c b.c -o two.so 2>&1", &log) != 0) {
    GTEST_SKIP() << "cannot link CTF: " << log;
  }
  auto f = ctf_open_file(so);
  ASSERT_TRUE(f.ok()) << f.error().message();
  std::set<uint32_t> sizes;
  for (const auto& e : f->dicts) {
    if (!e.dict.is_child()) continue;
    auto r = btf_convert_ctf(e.dict);
    ASSERT_TRUE(r.ok()) << e.name << ": " << r.error().message();
    auto b = Btf::parse(Bytes::from_vector(r->btf), e.name, BtfOpenOptions{.validate = true});
    ASSERT_TRUE(b.ok()) << b.error().message();
    auto conflict = b->find("conflict", BtfKind::struct_);
    ASSERT_TRUE(conflict.ok()) << e.name;
    sizes.insert(conflict->size());
    EXPECT_TRUE(b->find("shared_t", BtfKind::struct_).ok()) << e.name << ": the parent's type is missing";
  }
  EXPECT_EQ(sizes, (std::set<uint32_t>{4, 24}));
  // The CLI picks a child by name, and says which dicts there are when the name is wrong.
  if (std::string(MMAR_BIN).empty()) return;
  std::string child;
  for (const auto& e : f->dicts) {
    if (e.dict.is_child()) child = e.name;
  }
  ASSERT_FALSE(child.empty());
  std::string out;
  EXPECT_EQ(
      test::run(std::string(MMAR_BIN) + " btf from-ctf -o " + q(tmp_ / "c.btf") + " " + q(so + ":" + child) + " 2>&1",
                &out),
      0)
      << out;
  EXPECT_EQ(test::run("bpftool btf dump file " + q(tmp_ / "c.btf") + " >/dev/null 2>&1"), 0);
  EXPECT_EQ(test::run(std::string(MMAR_BIN) + " btf from-ctf -o " + q(tmp_ / "d.btf") + " " + q(so + ":nope") + " 2>&1",
                      &out),
            1);
  EXPECT_NE(out.find("no CTF dict named 'nope' (it has: .ctf, "), std::string::npos) << out;
  EXPECT_EQ(test::run(std::string(MMAR_BIN) + " btf from-ctf " + q(so) + " 2>&1", &out), 2) << out;
}

// Every kind through CtfBuilder (no compiler needed): the BTF, as bpftool
// prints it (btf_dump_raw is bpftool-exact, checked in btf_test.cpp).
CtfDict open_built(const CtfBuilder& b) {
  auto bytes = b.write();
  EXPECT_TRUE(bytes.ok()) << bytes.error().message();
  auto d = CtfDict::open(Bytes::from_vector(std::move(bytes).value()), "built");
  EXPECT_TRUE(d.ok()) << d.error().message();
  return std::move(d).value();
}

TEST(BtfFromCtfBuilt, EveryKindAsBpftoolPrintsIt) {
  CtfBuilder b;
  const uint32_t v = *b.add_integer("void", 0, 0, 0);
  const uint32_t i = *b.add_integer("int", kCtfIntSigned, 32, 4);
  const uint32_t u8 = *b.add_integer("unsigned char", kCtfIntChar, 8, 1);
  const uint32_t flag = *b.add_integer("_Bool", kCtfIntBool, 8, 1);
  const uint32_t f = *b.add_float("float", kCtfFpSingle, 32, 4);
  const uint32_t ptr = *b.add_pointer(v);
  const uint32_t inner = *b.add_array(u8, i, 3);
  const uint32_t outer = *b.add_array(inner, i, 2);  // gcc 12's `unsigned char m[3][2]`
  ASSERT_TRUE(b.add_enum("small", 1).ok());
  ASSERT_TRUE(b.add_enumerator("A", 1).ok());
  ASSERT_TRUE(b.add_enumerator("B", -2).ok());
  ASSERT_TRUE(b.add_forward("later_enum", CtfKind::enum_).ok());
  ASSERT_TRUE(b.add_forward("later_u", CtfKind::union_).ok());
  const uint32_t three_bits = *b.add_slice(i, 0, 3, 4);
  const uint32_t s = *b.add_struct("s", 12);
  ASSERT_TRUE(b.add_member("x", three_bits, 0).ok());
  ASSERT_TRUE(b.add_member("flag", flag, 8).ok());
  ASSERT_TRUE(b.add_member("m", outer, 16).ok());
  ASSERT_TRUE(b.add_member("f", f, 64).ok());
  const uint32_t td = *b.add_typedef("s_t", s);
  const uint32_t args[] = {ptr, td};
  const uint32_t fn = *b.add_function(i, args, true);
  ASSERT_TRUE(b.add_function_symbol("use", fn).ok());
  ASSERT_TRUE(b.add_object_symbol("global_s", s).ok());

  auto r = btf_convert_ctf(open_built(b));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->types, 16u);
  EXPECT_EQ(r->functions, 1u);
  EXPECT_EQ(r->objects, 1u);
  auto btf = Btf::parse(Bytes::from_vector(r->btf), "built.btf");
  ASSERT_TRUE(btf.ok()) << btf.error().message();
  std::string text;
  ASSERT_TRUE(btf_dump_raw(*btf, text).ok());
  EXPECT_EQ(text,
            "[1] INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED\n"
            "[2] INT 'unsigned char' size=1 bits_offset=0 nr_bits=8 encoding=CHAR\n"
            "[3] INT '_Bool' size=1 bits_offset=0 nr_bits=8 encoding=BOOL\n"
            "[4] FLOAT 'float' size=4\n"
            "[5] PTR '(anon)' type_id=0\n"
            "[6] ARRAY '(anon)' type_id=2 index_type_id=1 nr_elems=3\n"
            "[7] ARRAY '(anon)' type_id=14 index_type_id=1 nr_elems=3\n"
            "[8] ENUM 'small' encoding=SIGNED size=1 vlen=2\n"
            "\t'A' val=1\n"
            "\t'B' val=-2\n"
            "[9] ENUM 'later_enum' encoding=UNSIGNED size=4 vlen=0\n"
            "[10] FWD 'later_u' fwd_kind=union\n"
            "[11] STRUCT 's' size=12 vlen=4\n"
            "\t'x' type_id=1 bits_offset=0 bitfield_size=3\n"
            "\t'flag' type_id=3 bits_offset=8\n"
            "\t'm' type_id=7 bits_offset=16\n"
            "\t'f' type_id=4 bits_offset=64\n"
            "[12] TYPEDEF 's_t' type_id=11\n"
            "[13] FUNC_PROTO '(anon)' ret_type_id=1 vlen=3\n"
            "\t'(anon)' type_id=5\n"
            "\t'(anon)' type_id=12\n"
            "\t'(anon)' type_id=0\n"
            "[14] ARRAY '(anon)' type_id=2 index_type_id=1 nr_elems=2\n"
            "[15] FUNC 'use' type_id=13 linkage=global\n"
            "[16] VAR 'global_s' type_id=11, linkage=global\n");
  std::string header;
  ASSERT_TRUE(btf_dump_c(*btf, header).ok());
  EXPECT_NE(header.find("\tunsigned char m[3][2];"), std::string::npos) << header;
  EXPECT_NE(header.find("\tint x: 3;"), std::string::npos) << header;
  EXPECT_NE(header.find("typedef struct s s_t;"), std::string::npos) << header;
}

#define EXPECT_ERROR_CONTAINS(text, needle) EXPECT_NE((text).find(needle), std::string::npos) << "error was: " << (text)

TEST(BtfFromCtfBuilt, WhatBtfCannotSayIsAnError) {
  {
    CtfBuilder b;
    ASSERT_TRUE(b.add_integer("odd", 0, 3, 1, 2).ok());
    auto r = btf_convert_ctf(open_built(b));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), Errc::unsupported);
    EXPECT_ERROR_CONTAINS(r.error().message(), "built: type 1: an integer of 3 bits at bit 2 of 1 bytes");
  }
  {
    CtfBuilder b;
    ASSERT_TRUE(b.add_enum("three", 3).ok());
    auto r = btf_convert_ctf(open_built(b));
    ASSERT_FALSE(r.ok());
    EXPECT_ERROR_CONTAINS(r.error().message(), "built: type 1: ENUM size must be 1, 2, 4 or 8 (this one has 3)");
  }
  {
    CtfBuilder child("parent");
    ASSERT_TRUE(child.add_integer("int", kCtfIntSigned, 32, 4).ok());
    auto bytes = child.write();
    ASSERT_TRUE(bytes.ok());
    auto d = CtfDict::open(Bytes::from_vector(std::move(bytes).value()), "orphan");
    ASSERT_TRUE(d.ok()) << d.error().message();
    auto r = btf_convert_ctf(*d);
    ASSERT_FALSE(r.ok());
    EXPECT_ERROR_CONTAINS(r.error().message(), "orphan: a child dict needs its parent");
  }
}

}  // namespace
}  // namespace mmar
