// SPDX-License-Identifier: BSD-2-Clause
// The BTF builder against libbpf: the same btf__add_* calls must give the
// same bytes (strings deduplicated as libbpf does, against the base first
// for split BTF); parsed BTF written back unmodified is byte-identical.
#include <bpf/btf.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>

#include "mmar/btf.h"
#include "support/test_support.h"

namespace mmar {
namespace {

std::vector<std::byte> libbpf_bytes(struct btf* b) {
  uint32_t size = 0;
  const void* raw = btf__raw_data(b, &size);
  EXPECT_NE(raw, nullptr);
  return {static_cast<const std::byte*>(raw), static_cast<const std::byte*>(raw) + size};
}

// The same sequence of adds through both APIs. Returns the libbpf bytes.
std::vector<std::byte> build_both(BtfBuilder& ours, struct btf* lb) {
  auto same = [&](Result<uint32_t> mine, int theirs) {
    ASSERT_TRUE(mine.ok()) << mine.error().message();
    ASSERT_GT(theirs, 0);
    EXPECT_EQ(*mine, static_cast<uint32_t>(theirs));
  };
  auto ok = [&](Result<void> mine, int theirs) {
    ASSERT_TRUE(mine.ok()) << mine.error().message();
    EXPECT_EQ(theirs, 0);
  };
  same(ours.add_int("int", 4, 1), btf__add_int(lb, "int", 4, BTF_INT_SIGNED));
  const uint32_t i32 = ours.next_id() - 1;
  same(ours.add_int("unsigned char", 1, 0), btf__add_int(lb, "unsigned char", 1, 0));
  same(ours.add_int("_Bool", 1, 4), btf__add_int(lb, "_Bool", 1, BTF_INT_BOOL));
  same(ours.add_float("double", 8), btf__add_float(lb, "double", 8));
  same(ours.add_ptr(i32), btf__add_ptr(lb, static_cast<int>(i32)));
  same(ours.add_array(i32, i32 + 1, 16), btf__add_array(lb, static_cast<int>(i32), static_cast<int>(i32 + 1), 16));
  same(ours.add_struct("task_struct", 24), btf__add_struct(lb, "task_struct", 24));
  ok(ours.add_field("pid", i32, 0), btf__add_field(lb, "pid", static_cast<int>(i32), 0, 0));
  ok(ours.add_field("flags", i32, 32, 3), btf__add_field(lb, "flags", static_cast<int>(i32), 32, 3));
  ok(ours.add_field("", i32 + 4, 64), btf__add_field(lb, nullptr, static_cast<int>(i32 + 4), 64, 0));
  same(ours.add_union("", 8), btf__add_union(lb, nullptr, 8));
  ok(ours.add_field("l", i32, 0), btf__add_field(lb, "l", static_cast<int>(i32), 0, 0));
  same(ours.add_enum("color", 4), btf__add_enum(lb, "color", 4));
  ok(ours.add_enum_value("RED", -1), btf__add_enum_value(lb, "RED", -1));
  ok(ours.add_enum_value("BLUE", 7), btf__add_enum_value(lb, "BLUE", 7));
  same(ours.add_enum64("big", 8, false), btf__add_enum64(lb, "big", 8, false));
  ok(ours.add_enum64_value("HUGE", 0x123456789aULL), btf__add_enum64_value(lb, "HUGE", 0x123456789aULL));
  same(ours.add_fwd("later", false), btf__add_fwd(lb, "later", BTF_FWD_STRUCT));
  same(ours.add_fwd("later_u", true), btf__add_fwd(lb, "later_u", BTF_FWD_UNION));
  same(ours.add_typedef("pid_t", i32), btf__add_typedef(lb, "pid_t", static_cast<int>(i32)));
  same(ours.add_volatile(i32), btf__add_volatile(lb, static_cast<int>(i32)));
  same(ours.add_const(i32), btf__add_const(lb, static_cast<int>(i32)));
  same(ours.add_restrict(i32 + 4), btf__add_restrict(lb, static_cast<int>(i32 + 4)));
  same(ours.add_type_tag("user", i32 + 4), btf__add_type_tag(lb, "user", static_cast<int>(i32 + 4)));
  const uint32_t proto = ours.next_id();
  same(ours.add_func_proto(i32), btf__add_func_proto(lb, static_cast<int>(i32)));
  ok(ours.add_param("task", i32 + 4), btf__add_func_param(lb, "task", static_cast<int>(i32 + 4)));
  ok(ours.add_param("", i32), btf__add_func_param(lb, nullptr, static_cast<int>(i32)));
  same(ours.add_func("do_thing", 1, proto), btf__add_func(lb, "do_thing", BTF_FUNC_GLOBAL, static_cast<int>(proto)));
  const uint32_t var = ours.next_id();
  same(ours.add_var("counter", 1, i32), btf__add_var(lb, "counter", BTF_VAR_GLOBAL_ALLOCATED, static_cast<int>(i32)));
  same(ours.add_datasec(".data", 4), btf__add_datasec(lb, ".data", 4));
  ok(ours.add_datasec_var(var, 0, 4), btf__add_datasec_var_info(lb, static_cast<int>(var), 0, 4));
  same(ours.add_decl_tag("bpf_kfunc", proto + 1, -1),
       btf__add_decl_tag(lb, "bpf_kfunc", static_cast<int>(proto + 1), -1));
  same(ours.add_decl_tag("arg_tag", proto + 1, 0), btf__add_decl_tag(lb, "arg_tag", static_cast<int>(proto + 1), 0));
  // A repeated string is stored once.
  same(ours.add_struct("task_struct", 8), btf__add_struct(lb, "task_struct", 8));
  return libbpf_bytes(lb);
}

TEST(BtfBuilder, SameBytesAsLibbpf) {
  BtfBuilder ours;
  struct btf* lb = btf__new_empty();
  // A new BtfBuilder writes little-endian on every host; libbpf writes the
  // host's order unless told.
  btf__set_endianness(lb, BTF_LITTLE_ENDIAN);
  auto theirs = build_both(ours, lb);
  btf__free(lb);
  EXPECT_EQ(ours.write(), theirs);
  // And it parses, validates and dumps.
  auto btf = Btf::parse(Bytes::from_vector(ours.write()), "built");
  ASSERT_TRUE(btf.ok()) << btf.error().message();
  EXPECT_TRUE(btf->validate().ok());
  EXPECT_EQ(btf->find("do_thing", BtfKind::func)->vlen(), 1);
}

TEST(BtfBuilder, SplitDedupsStringsAgainstTheBaseLikeLibbpf) {
  // A base with some of the names the split will use.
  BtfBuilder base_builder;
  ASSERT_TRUE(base_builder.add_int("int", 4, 1).ok());
  ASSERT_TRUE(base_builder.add_struct("task_struct", 8).ok());
  ASSERT_TRUE(base_builder.add_field("pid", 1, 0).ok());
  auto base_bytes = base_builder.write();
  auto base = Btf::parse(Bytes::from_vector(base_bytes), "base");
  ASSERT_TRUE(base.ok());
  struct btf* lb_base = btf__new(base_bytes.data(), static_cast<uint32_t>(base_bytes.size()));
  ASSERT_NE(lb_base, nullptr);

  BtfBuilder ours(*base);
  EXPECT_EQ(ours.next_id(), 3u);
  struct btf* lb = btf__new_empty_split(lb_base);
  auto theirs = build_both(ours, lb);
  btf__free(lb);
  btf__free(lb_base);
  auto mine = ours.write();
  EXPECT_EQ(mine, theirs);
  // "int", "task_struct" and "pid" came from the base: not in the split's strings.
  auto split = Btf::parse_split(Bytes::from_vector(mine), "split", *base);
  ASSERT_TRUE(split.ok()) << split.error().message();
  EXPECT_TRUE(split->validate().ok());
  auto task = split->type(split->start_id() + 6);  // the split's task_struct
  ASSERT_TRUE(task.ok());
  EXPECT_LT(task->name_off(), split->start_str_off());
  std::string_view strs(reinterpret_cast<const char*>(mine.data()) + mine.size() - split->str_size(),
                        split->str_size());
  EXPECT_EQ(strs.find("task_struct"), std::string_view::npos);
  EXPECT_NE(strs.find("do_thing"), std::string_view::npos);
}

std::vector<std::byte> btf_section(const std::string& object) {
  test::TempDir tmp;
  EXPECT_EQ(test::run("objcopy --dump-section .BTF=" + (tmp / "s") + " '" + object + "' /dev/null"), 0);
  return test::read_file(tmp / "s");
}

TEST(BtfBuilder, UnmodifiedRewriteIsByteIdentical) {
  if (test::run("command -v pahole >/dev/null && command -v gcc >/dev/null") != 0)
    GTEST_SKIP() << "needs pahole and gcc";
  test::TempDir tmp;
  const std::string in = MMAR_TEST_INPUTS;
  ASSERT_EQ(test::run("gcc -g -O1 -c '" + in + "/base.c' -o " + (tmp / "base.o") + " && pahole -J " + (tmp / "base.o")),
            0);
  ASSERT_EQ(test::run("gcc -g -O1 -c '" + in + "/module.c' -o " + (tmp / "m.o") + " && pahole -J --btf_base " +
                      (tmp / "base.o") + " " + (tmp / "m.o")),
            0);
  auto base_raw = btf_section(tmp / "base.o");
  auto split_raw = btf_section(tmp / "m.o");
  auto base = Btf::parse(Bytes::from_vector(base_raw), "base");
  ASSERT_TRUE(base.ok());
  auto b = BtfBuilder::from(*base);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->write(), base_raw);
  auto split = Btf::parse_split(Bytes::from_vector(split_raw), "split", *base);
  ASSERT_TRUE(split.ok());
  auto s = BtfBuilder::from(*split);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->write(), split_raw);
  // Appending to a parsed split keeps IDs and strings continuing.
  const uint32_t next = s->next_id();
  EXPECT_EQ(next, *split->type_count());
  auto id = s->add_struct("appended", 4);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, next);
  auto grown = Btf::parse_split(Bytes::from_vector(s->write()), "grown", *base);
  ASSERT_TRUE(grown.ok());
  EXPECT_TRUE(grown->validate().ok());
  EXPECT_EQ(grown->find("appended")->id(), next);
  EXPECT_EQ(grown->find("my_module_state")->id(), split->find("my_module_state")->id());

  // Opposite byte order round-trips too.
  struct btf* lb = btf__new(base_raw.data(), static_cast<uint32_t>(base_raw.size()));
  btf__set_endianness(lb, BTF_BIG_ENDIAN);
  auto be = libbpf_bytes(lb);
  btf__free(lb);
  auto be_btf = Btf::parse(Bytes::from_vector(be), "be");
  ASSERT_TRUE(be_btf.ok());
  EXPECT_EQ(BtfBuilder::from(*be_btf)->write(), be);
}

TEST(BtfBuilder, KernelVmlinuxRewriteIsByteIdentical) {
  struct stat st {};
  if (stat("/sys/kernel/btf/vmlinux", &st) != 0) GTEST_SKIP() << "/sys/kernel/btf/vmlinux is not present";
  auto raw = test::read_file("/sys/kernel/btf/vmlinux");
  auto btf = Btf::parse(Bytes::from_vector(raw), "vmlinux");
  ASSERT_TRUE(btf.ok());
  auto b = BtfBuilder::from(*btf);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->write() == raw);
}

TEST(BtfBuilder, MisuseIsAnError) {
  BtfBuilder b;
  EXPECT_FALSE(b.add_field("x", 1, 0).ok());
  ASSERT_TRUE(b.add_int("int", 4, 1).ok());
  auto e = b.add_field("x", 1, 0);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message(), "add_field: the last type is a INT");
  EXPECT_FALSE(b.add_int("", 4, 0).ok());
  EXPECT_FALSE(b.add_int("wide", 17, 0).ok());
  EXPECT_FALSE(b.add_func("f", 3, 1).ok());
  ASSERT_TRUE(b.add_enum("e", 4).ok());
  EXPECT_FALSE(b.add_enum_value("too_big", int64_t{1} << 33).ok());
  EXPECT_FALSE(b.add_str(std::string("a\0b", 3)).ok());
}

}  // namespace
}  // namespace mmar
