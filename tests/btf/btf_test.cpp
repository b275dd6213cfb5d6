// SPDX-License-Identifier: BSD-2-Clause
// BTF against its oracles: bpftool's dump (byte for byte), pahole-made split
// BTF, gcc -gbtf, libbpf for the opposite byte order; and malformed input.
#include <bpf/btf.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <map>

#include "mmar/archive.h"
#include "mmar/btf.h"
#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;

const std::string kInputs = MMAR_TEST_INPUTS;
const char* kVmlinux = "/sys/kernel/btf/vmlinux";

std::string q(const std::string& s) { return "'" + s + "'"; }

bool have(const char* tool) { return test::run(std::string("command -v ") + tool + " >/dev/null 2>&1") == 0; }

std::string ours(const std::string& file, const std::string& base = "", bool json = false) {
  std::optional<Btf> b;
  if (!base.empty()) {
    auto r = Btf::open(base);
    EXPECT_TRUE(r.ok()) << r.error().message();
    b = std::move(r).value();
  }
  auto btf = Btf::open(file, b ? &*b : nullptr);
  EXPECT_TRUE(btf.ok()) << btf.error().message();
  if (!btf.ok()) return "";
  EXPECT_TRUE(btf->validate().ok());
  std::string out;
  auto r = btf_dump_raw(*btf, out, json);
  EXPECT_TRUE(r.ok());
  return out;
}

std::string bpftool(const std::string& file, const std::string& base = "", bool json = false) {
  std::string out;
  std::string cmd = std::string("bpftool ") + (json ? "-j " : "") + "btf dump file " + q(file);
  if (!base.empty()) cmd += " --base-btf " + q(base);
  EXPECT_EQ(test::run(cmd, &out), 0) << cmd;
  return out;
}

// Objects with BTF made from tests/inputs/btf/*.c by gcc and pahole.
struct Objects {
  TempDir tmp;
  std::string base, module_base, module_split, module_gbtf;
  Objects() {
    base = tmp / "base.o";
    module_base = tmp / "module.o";
    module_split = tmp / "module_split.o";
    module_gbtf = tmp / "module_gbtf.o";
    auto sh = [](const std::string& c) { EXPECT_EQ(test::run(c + " 2>&1"), 0) << c; };
    sh("gcc -g -O1 -c " + q(kInputs + "/base.c") + " -o " + q(base) + " && pahole -J " + q(base));
    sh("gcc -g -O1 -c " + q(kInputs + "/module.c") + " -o " + q(module_base) + " && pahole -J " + q(module_base));
    sh("gcc -g -O1 -c " + q(kInputs + "/module.c") + " -o " + q(module_split) + " && pahole -J --btf_base " + q(base) +
       " " + q(module_split));
    sh("gcc -gbtf -O1 -c " + q(kInputs + "/module.c") + " -o " + q(module_gbtf));
  }
};

class BtfOracle : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have("bpftool") || !have("pahole") || !have("gcc")) GTEST_SKIP() << "needs bpftool, pahole and gcc";
  }
};

TEST_F(BtfOracle, KernelVmlinuxMatchesBpftool) {
  struct stat st {};
  if (stat(kVmlinux, &st) != 0) GTEST_SKIP() << kVmlinux << " is not present on this machine";
  std::string mine = ours(kVmlinux);
  std::string theirs = bpftool(kVmlinux);
  ASSERT_GT(theirs.size(), 1000000u);
  EXPECT_TRUE(mine == theirs) << "dumps differ (" << mine.size() << " vs " << theirs.size() << " bytes)";
}

TEST_F(BtfOracle, PaholeBaseAndSplitMatchBpftool) {
  Objects o;
  EXPECT_EQ(ours(o.base), bpftool(o.base));
  EXPECT_EQ(ours(o.module_base), bpftool(o.module_base));
  std::string split = ours(o.module_split, o.base);
  EXPECT_EQ(split, bpftool(o.module_split, o.base));
  // The split's IDs continue after the base's.
  auto base = Btf::open(o.base);
  ASSERT_TRUE(base.ok());
  auto count = base->type_count();
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(split.rfind("[" + std::to_string(*count) + "] ", 0), 0u) << split.substr(0, 80);
}

TEST_F(BtfOracle, GccBtfMatchesBpftool) {
  Objects o;
  EXPECT_EQ(ours(o.module_gbtf), bpftool(o.module_gbtf));
}

TEST_F(BtfOracle, SplitOnRealVmlinuxMatchesBpftool) {
  struct stat st {};
  if (stat(kVmlinux, &st) != 0) GTEST_SKIP() << kVmlinux << " is not present on this machine";
  Objects o;
  std::string obj = o.tmp / "on_vmlinux.o";
  ASSERT_EQ(test::run("gcc -g -O1 -c " + q(kInputs + "/module.c") + " -o " + q(obj) + " && pahole -J --btf_base " +
                      kVmlinux + " " + q(obj)),
            0);
  EXPECT_EQ(ours(obj, kVmlinux), bpftool(obj, kVmlinux));
}

// bpftool 7.1's JSON prints an unsigned 32-bit enum value through a signed
// field, sign-extended to 64 bits (0xf0000000 -> 18446744073441116160-ish).
// mmar prints the true value; undo exactly that quirk, nothing else.
std::string normalise_bpftool_enum_json() {
  std::string py =
      "import json,sys\n"
      "d=json.load(sys.stdin)\n"
      "for t in d['types']:\n"
      "  if t['kind']=='ENUM' and t['encoding']=='UNSIGNED':\n"
      "    for v in t['values']: v['val']&=0xffffffff\n"
      "print(json.dumps(d,sort_keys=True))\n";
  return py;
}

TEST_F(BtfOracle, JsonMatchesBpftool) {
  if (!have("python3")) GTEST_SKIP() << "needs python3";
  Objects o;
  TempDir tmp;
  std::string script = tmp / "norm.py";
  test::write_file(script, test::to_bytes(normalise_bpftool_enum_json()));
  test::write_file(tmp / "ours.json", test::to_bytes(ours(o.module_split, o.base, true)));
  test::write_file(tmp / "theirs.json", test::to_bytes(bpftool(o.module_split, o.base, true)));
  std::string a, b;
  ASSERT_EQ(test::run("python3 " + q(script) + " < " + q(tmp / "ours.json"), &a), 0);
  ASSERT_EQ(test::run("python3 " + q(script) + " < " + q(tmp / "theirs.json"), &b), 0);
  EXPECT_EQ(a, b);
  EXPECT_NE(a.find("4026531840"), std::string::npos) << "F_HIGH (0xf0000000) should print unsigned";
}

TEST_F(BtfOracle, OppositeByteOrderViaLibbpf) {
  Objects o;
  // libbpf writes the same BTF big-endian; we must read it to the same dump.
  struct btf* lb = btf__parse(o.module_base.c_str(), nullptr);
  ASSERT_NE(lb, nullptr);
  ASSERT_EQ(btf__set_endianness(lb, BTF_BIG_ENDIAN), 0);
  uint32_t size = 0;
  const void* raw = btf__raw_data(lb, &size);
  ASSERT_NE(raw, nullptr);
  std::vector<std::byte> be(static_cast<const std::byte*>(raw), static_cast<const std::byte*>(raw) + size);
  btf__free(lb);
  auto btf = Btf::parse(Bytes::from_vector(be), "be.btf");
  ASSERT_TRUE(btf.ok()) << btf.error().message();
  EXPECT_FALSE(btf->little_endian());
  EXPECT_TRUE(btf->validate().ok());
  std::string out;
  ASSERT_TRUE(btf_dump_raw(*btf, out).ok());
  EXPECT_EQ(out, bpftool(o.module_base));
}

TEST_F(BtfOracle, LookupsAcrossBaseAndSplit) {
  Objects o;
  auto base = Btf::open(o.base);
  ASSERT_TRUE(base.ok());
  auto split = Btf::open(o.module_split, &*base);
  ASSERT_TRUE(split.ok()) << split.error().message();
  EXPECT_TRUE(split->is_split());
  EXPECT_EQ(split->start_id(), *base->type_count());
  EXPECT_EQ(split->start_str_off(), base->str_size());
  // In the base, found through the split.
  auto task = split->find("task_struct", BtfKind::struct_);
  ASSERT_TRUE(task.ok());
  EXPECT_LT(task->id(), split->start_id());
  EXPECT_EQ(task->id(), base->find("task_struct")->id());
  // Only in the split.
  auto state = split->find("my_module_state", BtfKind::struct_);
  ASSERT_TRUE(state.ok());
  EXPECT_GE(state->id(), split->start_id());
  EXPECT_EQ(split->name_of(*state), "my_module_state");
  EXPECT_EQ(state->vlen(), 12);
  // The same ID resolves the same way from the split.
  auto again = split->type(state->id());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(split->name_of(*again), "my_module_state");
  // A member's type lives in the base (list_head deduplicated against it).
  auto link_type = split->type(state->extra_u32(1));
  ASSERT_TRUE(link_type.ok());
  EXPECT_EQ(split->name_of(*link_type), "list_head");
  EXPECT_LT(link_type->id(), split->start_id());
  EXPECT_EQ(split->find("no_such_type").error().code(), Errc::not_found);
  EXPECT_EQ(split->find("task_struct", BtfKind::union_).error().code(), Errc::not_found);
  EXPECT_FALSE(split->type(0).ok());
  EXPECT_EQ(split->type(*split->type_count()).error().code(), Errc::not_found);
  // libbpf agrees on IDs.
  struct btf* lb_base = btf__parse(o.base.c_str(), nullptr);
  struct btf* lb = btf__parse_split(o.module_split.c_str(), lb_base);
  ASSERT_NE(lb, nullptr);
  EXPECT_EQ(static_cast<uint32_t>(btf__find_by_name_kind(lb, "my_module_state", BTF_KIND_STRUCT)), state->id());
  EXPECT_EQ(btf__type_cnt(lb), *split->type_count());
  btf__free(lb);
  btf__free(lb_base);
}

// btf_find_in_file (pread, no mapping) finds what Btf::find finds, for a
// spread of names and kinds, in raw BTF and in ELF objects.
TEST_F(BtfOracle, FindInFileAgreesWithTheMappedBtf) {
  Objects o;
  std::vector<std::string> files = {o.base, o.module_base, o.module_gbtf};
  struct stat st {};
  if (stat(kVmlinux, &st) == 0) files.push_back(kVmlinux);
  for (const auto& file : files) {
    SCOPED_TRACE(file);
    auto btf = Btf::open(file);
    ASSERT_TRUE(btf.ok());
    auto count = btf->type_count();
    ASSERT_TRUE(count.ok());
    size_t checked = 0;
    const uint32_t step = std::max<uint32_t>(1, *count / 300);
    for (uint32_t id = 1; id < *count; id += step) {
      auto t = btf->type(id);
      ASSERT_TRUE(t.ok());
      std::string_view name = btf->name_of(*t);
      if (name.empty()) continue;
      auto want = btf->find(name, t->kind());
      auto got = btf_find_in_file(file, name, t->kind());
      ASSERT_TRUE(want.ok() && got.ok()) << name;
      EXPECT_EQ(got->id, want->id()) << name;
      EXPECT_EQ(got->kind, t->kind());
      auto any = btf_find_in_file(file, name);
      ASSERT_TRUE(any.ok());
      EXPECT_EQ(any->id, btf->find(name)->id()) << name;
      ++checked;
    }
    EXPECT_GT(checked, 5u);
    auto none = btf_find_in_file(file, "no_such_type_anywhere");
    ASSERT_FALSE(none.ok());
    EXPECT_EQ(none.error().code(), Errc::not_found);
  }
  // Bad files: one-line errors naming the file.
  TempDir tmp;
  auto good = test::read_file(o.base);
  std::string truncated = tmp / "truncated.o";
  test::write_file(truncated, std::vector<std::byte>(good.begin(), good.begin() + 100));
  auto r = btf_find_in_file(truncated, "task_struct");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("truncated.o"), std::string::npos) << r.error().message();
  std::string text = tmp / "text";
  test::write_file(text, test::to_bytes("hello, not BTF at all, but long enough to have a header\n"));
  r = btf_find_in_file(text, "x");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("not BTF"), std::string::npos) << r.error().message();
}

// btf_find_in_archive (pread: the archive's name fence, the stored name
// table) answers exactly as BtfSet::open(member).find does: every named type
// of the base and of a split, with and without its kind, absent names, and
// the cases it hands to the full path (compressed members, ELF members, an
// index bound to other bytes).
TEST_F(BtfOracle, FindInArchiveAgreesWithBtfSet) {
  MMAR_SKIP_WITHOUT_CLI();
  Objects o;
  auto sh = [](const std::string& c) { ASSERT_EQ(test::run(c + " 2>&1"), 0) << c; };
  // Raw BTF (the .BTF sections), and enough module copies for a name fence.
  const std::string base_raw = o.tmp / "vmlinux.btf", split_raw = o.tmp / "split.btf";
  sh("objcopy --dump-section .BTF=" + q(base_raw) + " " + q(o.base) + " " + q(o.tmp / "junk1"));
  sh("objcopy --dump-section .BTF=" + q(split_raw) + " " + q(o.module_split) + " " + q(o.tmp / "junk2"));
  sh("mkdir -p " + q(o.tmp / "mods/sub"));
  for (int i = 0; i < 40; ++i) {
    sh("cp " + q(split_raw) + " " + q(o.tmp / ("mods/m" + std::to_string(100 + i) + ".btf")));
  }
  sh("cp " + q(o.module_split) + " " + q(o.tmp / "mods/sub/elf_module.o"));
  const std::string raw_pack = o.tmp / "raw.mmar", z_pack = o.tmp / "z.mmar";
  sh(std::string(MMAR_BIN) + " btf pack -f " + q(raw_pack) + " " + q(base_raw) + " " + q(o.tmp / "mods"));
  sh(std::string(MMAR_BIN) + " btf pack --compress zstd -f " + q(z_pack) + " " + q(base_raw) + " " +
     q(o.tmp / "mods"));

  auto base = Btf::open(base_raw);
  ASSERT_TRUE(base.ok());
  auto split = Btf::open(split_raw, &*base);
  ASSERT_TRUE(split.ok());
  // Every named type of both, and names that are nowhere.
  std::vector<std::pair<std::string, BtfKind>> queries;
  for (const Btf* b : {&*base, &*split}) {
    for (uint32_t id = b->start_id() == 0 ? 1 : b->start_id(); id < *b->type_count(); ++id) {
      auto t = b->type(id);
      ASSERT_TRUE(t.ok());
      if (!b->name_of(*t).empty()) queries.emplace_back(std::string(b->name_of(*t)), t->kind());
    }
  }
  ASSERT_GT(queries.size(), 15u);
  for (const char* absent : {"no_such_type", "", "a", "zzzzzzzz", "task_struc", "task_struct_"}) {
    queries.emplace_back(absent, BtfKind::struct_);
  }
  struct Case {
    std::string archive, member;
    bool full_path;  // ELF members are answered by opening the archive
  };
  const std::vector<Case> cases = {{raw_pack, "vmlinux", false},
                                   {raw_pack, "modules/m117.btf", false},
                                   {raw_pack, "modules/sub/elf_module.o", true},
                                   {z_pack, "vmlinux", false},
                                   {z_pack, "modules/m139.btf", false}};
  size_t compared = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.archive + ":" + c.member);
    auto a = Archive::open(c.archive);
    ASSERT_TRUE(a.ok());
    BtfSet set(*a);
    auto btf = set.open(c.member);
    ASSERT_TRUE(btf.ok()) << btf.error().message();
    for (const auto& [name, kind] : queries) {
      for (std::optional<BtfKind> k : {std::optional<BtfKind>(kind), std::optional<BtfKind>()}) {
        auto want = btf->find(name, k);
        BtfLookupTrace trace;
        auto got = btf_find_in_archive(c.archive, c.member, name, k, &trace);
        EXPECT_TRUE(!c.full_path || trace.full_path) << name;
        ASSERT_EQ(want.ok(), got.ok()) << name << (got.ok() ? "" : ": " + got.error().message());
        if (!want.ok()) {
          EXPECT_EQ(got.error().code(), Errc::not_found) << got.error().message();
          continue;
        }
        EXPECT_EQ(got->id, want->id()) << name;
        EXPECT_EQ(got->kind, want->kind()) << name;
        EXPECT_EQ(got->size_or_type, want->size()) << name;
        EXPECT_EQ(got->vlen, want->vlen()) << name;
        ++compared;
      }
    }
  }
  EXPECT_GT(compared, 100u);

  // An index left bound to other bytes (the member replaced, its index
  // kept): ignored, the answers are those of the member's own bytes.
  auto a = Archive::open(raw_pack);
  ASSERT_TRUE(a.ok());
  Writer w;
  auto copy = [&](const std::string& from, const std::string& to) {
    auto bytes = a->read(from);
    ASSERT_TRUE(bytes.ok());
    ASSERT_TRUE(w.add_bytes(to, std::vector<std::byte>(bytes->data(), bytes->data() + bytes->size())).ok());
  };
  // Another BTF for "vmlinux": the .BTF of module.o.
  sh("objcopy --dump-section .BTF=" + q(o.tmp / "other.btf") + " " + q(o.module_base) + " " + q(o.tmp / "junk3"));
  ASSERT_TRUE(w.add_path("vmlinux", o.tmp / "other.btf").ok());
  copy("vmlinux.mmidx", "vmlinux.mmidx");
  copy("vmlinux.mmnames", "vmlinux.mmnames");
  for (int i = 0; i < 70; ++i) ASSERT_TRUE(w.add_bytes("pad/" + std::to_string(1000 + i), {}).ok());
  ASSERT_TRUE(w.set_link("vmlinux.mmidx", "vmlinux").ok());
  ASSERT_TRUE(w.set_link("vmlinux.mmnames", "vmlinux").ok());
  const std::string stale = o.tmp / "stale.mmar";
  ASSERT_TRUE(w.write(stale).ok());
  auto other = Btf::open(o.tmp / "other.btf");
  ASSERT_TRUE(other.ok());
  for (const char* name : {"my_module_state", "task_struct", "list_head", "no_such_type"}) {
    auto want = other->find(name);
    auto got = btf_find_in_archive(stale, "vmlinux", name);
    ASSERT_EQ(want.ok(), got.ok()) << name;
    if (want.ok()) {
      EXPECT_EQ(got->id, want->id()) << name;
    }
  }

  // Errors: a missing member, a file that is not there, one-line messages.
  auto missing = btf_find_in_archive(raw_pack, "modules/none.btf", "task_struct");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), Errc::not_found);
  EXPECT_NE(missing.error().message().find("modules/none.btf"), std::string::npos);
  auto nofile = btf_find_in_archive(o.tmp / "nope.mmar", "vmlinux", "task_struct");
  ASSERT_FALSE(nofile.ok());
  EXPECT_NE(nofile.error().message().find("nope.mmar"), std::string::npos);
}

// The same on a BTF large enough for the interpolated reads to miss and
// move (60,000 named types, names shared across kinds and repeated).
TEST(BtfArchive, FindInArchiveOnALargeBtf) {
  MMAR_SKIP_WITHOUT_CLI();
  TempDir tmp;
  BtfBuilder b;
  auto i32 = b.add_int("int", 4, 1);
  ASSERT_TRUE(i32.ok());
  for (int i = 0; i < 20000; ++i) {
    const std::string n = "type_" + std::to_string(i * 7919 % 100003);
    auto s = b.add_struct(n, 4);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(b.add_field("x", *i32, 0).ok());
    ASSERT_TRUE(b.add_typedef(n, *s).ok());  // same name, another kind
    ASSERT_TRUE(b.add_ptr(*s).ok());         // unnamed
    if (i % 3 == 0) {
      ASSERT_TRUE(b.add_fwd(n, false).ok());  // a repeat, higher ID
    }
    if (i % 2 == 0) {
      ASSERT_TRUE(b.add_func_proto(*i32).ok());  // unnamed
    }
  }
  const std::string raw = tmp / "big.btf", pack = tmp / "big.mmar";
  test::write_file(raw, b.write());
  ASSERT_EQ(test::run(std::string(MMAR_BIN) + " btf pack -f " + q(pack) + " " + q(raw) + " 2>&1"), 0);
  auto btf = Btf::open(raw);
  ASSERT_TRUE(btf.ok());
  uint64_t lookups = 0, reads = 0;
  for (int i = 0; i < 3000; ++i) {
    const std::string n = "type_" + std::to_string((i * 104729) % 100003);
    for (std::optional<BtfKind> k : {std::optional<BtfKind>(), std::optional<BtfKind>(BtfKind::typedef_),
                                     std::optional<BtfKind>(BtfKind::fwd)}) {
      auto want = btf->find(n, k);
      BtfLookupTrace trace;
      auto got = btf_find_in_archive(pack, "vmlinux", n, k, &trace);
      ASSERT_FALSE(trace.full_path) << n;
      ++lookups;
      reads += trace.reads;
      ASSERT_EQ(want.ok(), got.ok()) << n;
      if (want.ok()) {
        ASSERT_EQ(got->id, want->id()) << n;
        ASSERT_EQ(got->kind, want->kind()) << n;
      }
    }
  }
  // Head, the whole (small) index, the name entries, the name: about 4
  // reads, sometimes a second window.
  std::printf("%llu lookups, %.2f reads each\n", static_cast<unsigned long long>(lookups),
              static_cast<double>(reads) / static_cast<double>(lookups));
  EXPECT_LT(reads, lookups * 6);
}

TEST_F(BtfOracle, IndexedLookupsAgreeWithAScan) {
  Objects o;
  auto base = Btf::open(o.base);
  auto split = Btf::open(o.module_split, &*base);
  ASSERT_TRUE(split.ok());
  const uint32_t count = *split->type_count();
  // Brute force: the lowest ID for each (name, kind), base first.
  std::map<std::pair<std::string, int>, uint32_t> first;
  for (uint32_t id = 1; id < count; ++id) {
    auto t = split->type(id);
    ASSERT_TRUE(t.ok());
    std::string n(split->name_of(*t));
    if (!n.empty()) first.emplace(std::make_pair(n, static_cast<int>(t->kind())), id);
  }
  ASSERT_GT(first.size(), 20u);
  for (int round = 0; round < 2; ++round) {  // round 0 builds the index on its second lookup
    for (const auto& [key, id] : first) {
      auto t = split->find(key.first, static_cast<BtfKind>(key.second));
      ASSERT_TRUE(t.ok()) << key.first;
      EXPECT_EQ(t->id(), id) << key.first;
    }
  }
}

TEST_F(BtfOracle, StoredIndexIsUsedCheckedAndNeverTrustedBlindly) {
  MMAR_SKIP_WITHOUT_CLI();
  Objects o;
  const std::string m = MMAR_BIN;
  std::string out;
  ASSERT_EQ(
      test::run(m + " btf pack -f " + q(o.tmp / "k.mmar") + " " + q(o.base) + " " + q(o.module_split) + " 2>&1", &out),
      0)
      << out;
  auto a = Archive::open(o.tmp / "k.mmar");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->find("vmlinux.mmidx")->kind, Kind::btf_index);
  BtfSet set(*a);
  auto split = set.open("modules/module_split.o");
  ASSERT_TRUE(split.ok()) << split.error().message();
  EXPECT_TRUE(split->has_stored_index());
  EXPECT_TRUE(split->base()->has_stored_index());
  EXPECT_TRUE(split->validate().ok());
  std::string dump;
  ASSERT_TRUE(btf_dump_raw(*split, dump).ok());
  EXPECT_EQ(dump, bpftool(o.module_split, o.base));
  EXPECT_TRUE(split->find("task_struct", BtfKind::struct_).ok());
  EXPECT_TRUE(split->find("my_module_state", BtfKind::struct_).ok());

  // An index bound to other bytes is ignored: the BTF is scanned instead.
  auto base_bytes = a->read("vmlinux");
  auto idx = a->read("vmlinux.mmidx");
  auto names = a->read("vmlinux.mmnames");
  ASSERT_TRUE(idx.ok() && names.ok());
  EXPECT_EQ(a->find("vmlinux.mmnames")->kind, Kind::btf_index);
  auto other = Btf::parse_indexed(*base_bytes, "x", *idx, *names, 12345, nullptr);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_stored_index());
  // A damaged offset (checksum binding intact): a clean error on access, and
  // validate() reports the mismatch.
  std::vector<std::byte> bad(idx->data(), idx->data() + idx->size());
  bad[24 + 4 * 2] = std::byte{0xff};  // offset of the third type
  bad[24 + 4 * 2 + 1] = std::byte{0xff};
  const uint64_t binding = a->find("vmlinux")->xxh3;
  auto damaged = Btf::parse_indexed(*base_bytes, "damaged", Bytes::from_vector(bad), *names, binding, nullptr);
  ASSERT_TRUE(damaged.ok());
  ASSERT_TRUE(damaged->has_stored_index());
  auto t3 = damaged->type(3);
  ASSERT_FALSE(t3.ok());
  EXPECT_NE(t3.error().message().find("stored index: type 3 points at no valid record"), std::string::npos)
      << t3.error().message();
  auto v = damaged->validate();
  ASSERT_FALSE(v.ok());

  // A damaged name entry: found by validate(), and a lookup through it
  // still compares the name with the BTF's own string.
  std::vector<std::byte> bad_names(names->data(), names->data() + names->size());
  const size_t entry = 16 + 24 * 5;
  bad_names[entry + 8] = std::byte{0x7f};  // the ID of the sixth name
  auto wrong = Btf::parse_indexed(*base_bytes, "wrong", *idx, Bytes::from_vector(bad_names), binding, nullptr);
  ASSERT_TRUE(wrong.ok());
  ASSERT_TRUE(wrong->has_stored_index());
  auto wv = wrong->validate();
  ASSERT_FALSE(wv.ok());
  EXPECT_NE(wv.error().message().find("stored index: name entry 5"), std::string::npos) << wv.error().message();
  auto good = Btf::parse_indexed(*base_bytes, "good", *idx, *names, binding, nullptr);
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE(good->validate().ok());
  // A name table that does not fit its header is ignored altogether.
  auto cut = Btf::parse_indexed(*base_bytes, "cut", *idx, names->subspan(0, names->size() - 1), binding, nullptr);
  ASSERT_TRUE(cut.ok());
  EXPECT_FALSE(cut->has_stored_index());
}

// ---------------------------------------------------------------------------
// Malformed input: a hand-built BTF, patched one field at a time.

struct Builder {
  std::vector<uint32_t> types;
  std::string strs = std::string(1, '\0');
  uint32_t str(const std::string& s) {
    uint32_t off = static_cast<uint32_t>(strs.size());
    strs += s;
    strs.push_back('\0');
    return off;
  }
  static uint32_t info(BtfKind k, uint32_t vlen, bool kflag = false) {
    return (kflag ? 1u << 31 : 0) | (static_cast<uint32_t>(k) << 24) | vlen;
  }
  std::vector<std::byte> bytes(uint32_t hdr_len = 24) const {
    std::vector<std::byte> out(hdr_len + types.size() * 4 + strs.size());
    // Little-endian as the magic below says, whatever the host's order.
    auto put = [&](size_t at, uint32_t v) {
      for (size_t i = 0; i < 4; ++i) out[at + i] = static_cast<std::byte>(v >> (8 * i));
    };
    out[0] = std::byte{0x9f};
    out[1] = std::byte{0xeb};
    out[2] = std::byte{1};
    put(4, hdr_len);
    put(8, 0);
    put(12, static_cast<uint32_t>(types.size() * 4));
    put(16, static_cast<uint32_t>(types.size() * 4));
    put(20, static_cast<uint32_t>(strs.size()));
    for (size_t i = 0; i < types.size(); ++i) put(hdr_len + i * 4, types[i]);
    std::memcpy(out.data() + hdr_len + types.size() * 4, strs.data(), strs.size());
    return out;
  }
};

Builder sample() {
  Builder b;
  uint32_t int_name = b.str("int");
  b.types.insert(b.types.end(), {int_name, Builder::info(BtfKind::int_, 0), 4, (1u << 24) | 32});  // [1] int
  b.types.insert(b.types.end(), {0, Builder::info(BtfKind::ptr, 0), 1});                           // [2] int *
  uint32_t s = b.str("pair"), m = b.str("a"), n = b.str("b");
  b.types.insert(b.types.end(), {s, Builder::info(BtfKind::struct_, 2), 8, m, 1, 0, n, 1, 32});  // [3]
  return b;
}

std::string error_of(const std::vector<std::byte>& bytes, bool validate = true) {
  auto btf = Btf::parse(Bytes::from_vector(bytes), "t.btf");
  if (!btf.ok()) return btf.error().message();
  auto count = btf->type_count();
  if (!count.ok()) return count.error().message();
  if (validate) {
    auto v = btf->validate();
    if (!v.ok()) return v.error().message();
  }
  return "";
}

#define EXPECT_ERROR_CONTAINS(text, needle) EXPECT_NE((text).find(needle), std::string::npos) << "error was: " << (text)

TEST(BtfMalformed, SampleIsValid) {
  auto bytes = sample().bytes();
  EXPECT_EQ(error_of(bytes), "");
  auto btf = Btf::parse(Bytes::from_vector(bytes), "t.btf");
  std::string out;
  ASSERT_TRUE(btf_dump_raw(*btf, out).ok());
  EXPECT_EQ(out,
            "[1] INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED\n"
            "[2] PTR '(anon)' type_id=1\n"
            "[3] STRUCT 'pair' size=8 vlen=2\n\t'a' type_id=1 bits_offset=0\n\t'b' type_id=1 bits_offset=32\n");
}

TEST(BtfMalformed, HeaderErrors) {
  auto good = sample().bytes();
  auto b = good;
  b.resize(20);
  EXPECT_ERROR_CONTAINS(error_of(b), "t.btf: truncated BTF header (20 bytes)");
  b = good;
  b[0] = std::byte{0};
  EXPECT_ERROR_CONTAINS(error_of(b), "not BTF (magic 0xeb00)");
  b = good;
  b[2] = std::byte{2};
  EXPECT_ERROR_CONTAINS(error_of(b), "BTF version 2 (this mmar reads 1)");
  b = sample().bytes(32);
  EXPECT_EQ(error_of(b), "");  // a longer header with zero tail is fine
  b[30] = std::byte{1};
  EXPECT_ERROR_CONTAINS(error_of(b), "unknown non-zero header bytes (at offset 0x1e)");
  b = good;
  b[12] = std::byte{0xff};  // type_len
  EXPECT_ERROR_CONTAINS(error_of(b), "type section [0, +255) outside the data");
  b = good;
  b[20] = std::byte{0xff};
  b[21] = std::byte{0xff};  // str_len
  EXPECT_ERROR_CONTAINS(error_of(b), "string section [");
  b = good;
  b.back() = std::byte{'x'};
  EXPECT_ERROR_CONTAINS(error_of(b), "string section does not end with NUL");
  b = good;
  b[8] = std::byte{2};  // type_off not 4-aligned
  EXPECT_ERROR_CONTAINS(error_of(b), "type section offset not 4-aligned");
}

TEST(BtfMalformed, RecordErrors) {
  {
    Builder s = sample();
    s.types[1] = Builder::info(static_cast<BtfKind>(25), 0);
    EXPECT_ERROR_CONTAINS(error_of(s.bytes()), "type 1: unknown kind 25");
  }
  {
    Builder s = sample();
    s.types[5] = Builder::info(BtfKind::struct_, 0) | 0x00ff0000u;
    EXPECT_ERROR_CONTAINS(error_of(s.bytes()), "type 2: reserved bits set");
  }
  {
    Builder s = sample();
    s.types[8] = Builder::info(BtfKind::struct_, 3);  // one member too many
    EXPECT_ERROR_CONTAINS(error_of(s.bytes()), "type 3: STRUCT record with vlen 3 runs past the type section");
  }
  {
    Builder s = sample();
    s.types[0] = 9999;
    EXPECT_ERROR_CONTAINS(error_of(s.bytes()), "type 1: name offset 9999 outside the strings");
  }
  {
    Builder s = sample();
    s.types[10] = 5000;  // member 0's name
    EXPECT_ERROR_CONTAINS(error_of(s.bytes()), "type 3: member 0 name offset 5000 outside the strings");
  }
  {
    Builder s = sample();
    s.types[6] = 7;                             // PTR to a type that does not exist
    EXPECT_EQ(error_of(s.bytes(), false), "");  // only validate() follows references
    EXPECT_ERROR_CONTAINS(error_of(s.bytes()), "type 2: its target refers to type 7 (last is 3)");
  }
  {
    Builder s = sample();
    s.types[3] = (1u << 24) | 40;  // 40 bits in a 4-byte int
    EXPECT_ERROR_CONTAINS(error_of(s.bytes()), "type 1: INT bits 40 at offset 0 do not fit 4 bytes");
  }
  {
    Builder s = sample();
    s.types.push_back(0);  // 4 stray bytes: a truncated record
    EXPECT_ERROR_CONTAINS(error_of(s.bytes()), "type 4: truncated type record");
  }
}

// One record checker: Btf (open, find, the full index) and btf_find_in_file
// refuse the same records with the same words. Before, the pread lookup
// answered for records Btf refuses (reserved info bits, a kind_flag on an
// INT, a member name outside the strings).
TEST(BtfMalformed, EveryReaderRefusesTheSameRecords) {
  struct Case {
    const char* what;
    void (*damage)(Builder&);
    const char* error;
  };
  const Case cases[] = {
      {"reserved info bits", [](Builder& s) { s.types[5] = Builder::info(BtfKind::ptr, 0) | 0x00ff0000u; },
       "t.btf: type 2: reserved bits set in info 0x2ff0000 (at offset 0x28)"},
      {"a reserved high bit", [](Builder& s) { s.types[5] = Builder::info(BtfKind::ptr, 0) | 0x40000000u; },
       "t.btf: type 2: reserved bits set in info 0x42000000 (at offset 0x28)"},
      {"an unknown kind", [](Builder& s) { s.types[5] = Builder::info(static_cast<BtfKind>(27), 0); },
       "t.btf: type 2: unknown kind 27 (at offset 0x28)"},
      {"a kind_flag on a PTR", [](Builder& s) { s.types[5] = Builder::info(BtfKind::ptr, 0, true); },
       "t.btf: type 2: PTR record with kind_flag set (at offset 0x28)"},
      {"a kind_flag on an INT", [](Builder& s) { s.types[1] = Builder::info(BtfKind::int_, 0, true); },
       "t.btf: type 1: INT record with kind_flag set (at offset 0x18)"},
      {"a vlen too large for the section", [](Builder& s) { s.types[5] = Builder::info(BtfKind::enum_, 1000); },
       "t.btf: type 2: ENUM record with vlen 1000 runs past the type section (at offset 0x28)"},
      {"a member name outside the strings", [](Builder& s) { s.types[10] = 5000; },
       "t.btf: type 3: member 0 name offset 5000 outside the strings (at offset 0x34)"},
      {"a name outside the strings", [](Builder& s) { s.types[4] = 7000; },
       "t.btf: type 2: name offset 7000 outside the strings (at offset 0x28)"},
  };
  TempDir tmp;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Builder s = sample();
    c.damage(s);
    const std::string file = tmp / "t.btf";
    test::write_file(file, s.bytes());
    auto btf = Btf::open(file);
    ASSERT_TRUE(btf.ok()) << btf.error().message();  // opening checks the header only
    auto count = btf->type_count();
    ASSERT_FALSE(count.ok());
    const std::string want = std::string(file).substr(0, file.size() - 5) + c.error;
    EXPECT_EQ(count.error().message(), want);
    // A lookup that passes the bad record: both refuse, with the same words.
    for (const char* name : {"pair", "no_such_type"}) {
      SCOPED_TRACE(name);
      auto fresh = Btf::open(file);
      ASSERT_TRUE(fresh.ok());
      auto mapped = fresh->find(name);
      auto pread = btf_find_in_file(file, name);
      ASSERT_FALSE(mapped.ok());
      ASSERT_FALSE(pread.ok());
      EXPECT_EQ(mapped.error().message(), want);
      EXPECT_EQ(pread.error().message(), want);
      EXPECT_EQ(pread.error().code(), Errc::malformed);
      EXPECT_EQ(pread.error().offset(), mapped.error().offset());
    }
    // A lookup answered before the bad record: both answer (the first
    // lookup stops at its match, as the pread one does).
    if (std::string(c.error).find("type 1:") == std::string::npos) {
      auto fresh = Btf::open(file);
      ASSERT_TRUE(fresh.ok());
      auto mapped = fresh->find("int");
      auto pread = btf_find_in_file(file, "int");
      ASSERT_TRUE(mapped.ok()) << mapped.error().message();
      ASSERT_TRUE(pread.ok()) << pread.error().message();
      EXPECT_EQ(mapped->id(), 1u);
      EXPECT_EQ(pread->id, 1u);
    }
  }
  // The kinds that have a kind_flag keep it.
  Builder s = sample();
  s.types[8] = Builder::info(BtfKind::struct_, 2, true);
  EXPECT_EQ(error_of(s.bytes()), "");
}

// The header is checked by the same code too.
TEST(BtfMalformed, EveryReaderRefusesTheSameHeaders) {
  TempDir tmp;
  const std::string file = tmp / "h.btf";
  auto good = sample().bytes(32);
  std::vector<std::vector<std::byte>> bad;
  bad.push_back(good);
  bad.back()[30] = std::byte{1};  // unknown header bytes
  bad.push_back(good);
  bad.back()[32 + sample().types.size() * 4] = std::byte{'x'};  // strings do not start with ""
  bad.push_back(good);
  bad.back()[16] = std::byte{4};  // strings overlap the types
  for (const auto& b : bad) {
    test::write_file(file, b);
    auto mapped = Btf::open(file);
    auto pread = btf_find_in_file(file, "int");
    ASSERT_FALSE(mapped.ok());
    ASSERT_FALSE(pread.ok());
    EXPECT_EQ(pread.error().message(), mapped.error().message());
  }
}

TEST(BtfMalformed, ElfWithoutBtfAndOddInputs) {
  auto r = Btf::open("/proc/self/exe");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "/proc/self/exe: ELF object without a .BTF section");
  auto empty = Btf::parse(Bytes::from_vector({}), "empty");
  ASSERT_FALSE(empty.ok());
  EXPECT_ERROR_CONTAINS(empty.error().message(), "empty: truncated BTF header (0 bytes)");
}

TEST(BtfCli, DumpFindStatsAndArchiveMembers) {
  MMAR_SKIP_WITHOUT_CLI();
  if (!have("bpftool") || !have("pahole")) GTEST_SKIP() << "needs bpftool and pahole";
  Objects o;
  const std::string m = MMAR_BIN;
  std::string out;
  // Pack base and module into one archive; read them back as ARCHIVE:MEMBER.
  ASSERT_EQ(test::run(m + " create -f " + q(o.tmp / "k.mmar") + " -C " + q(o.tmp.path()) + " base.o module_split.o"),
            0);
  ASSERT_EQ(test::run(m + " btf dump " + q(o.tmp / "k.mmar") + ":module_split.o --base-btf " + q(o.tmp / "k.mmar") +
                          ":base.o",
                      &out),
            0);
  EXPECT_EQ(out, bpftool(o.module_split, o.base));
  ASSERT_EQ(test::run(m + " btf find " + q(o.module_split) + " -B " + q(o.base) + " task_struct my_module_state", &out),
            0);
  EXPECT_NE(out.find("STRUCT 'task_struct'"), std::string::npos) << out;
  EXPECT_NE(out.find("STRUCT 'my_module_state'"), std::string::npos) << out;
  ASSERT_EQ(test::run(m + " btf stats " + q(o.module_split) + " -B " + q(o.base), &out), 0);
  EXPECT_NE(out.find("split BTF"), std::string::npos) << out;
  EXPECT_EQ(test::run(m + " btf dump " + q(kInputs + "/module.c") + " 2>&1", &out), 1);
  EXPECT_NE(out.find("not BTF"), std::string::npos) << out;
  EXPECT_EQ(test::run(m + " btf frob x 2>&1", &out), 2);
  // Split BTF without its base: said to be split BTF, and how to give it
  // the base (the library says what it is, the command how).
  auto alone = Btf::open(o.module_split);
  ASSERT_FALSE(alone.ok());
  EXPECT_EQ(alone.error().code(), Errc::invalid_argument);
  EXPECT_EQ(alone.error().message(),
            o.module_split + ": split BTF (its string offsets continue a base's): it needs its base BTF");
  for (const char* verb : {"dump", "stats", "find"}) {
    EXPECT_EQ(
        test::run(m + " btf " + verb + " " + q(o.module_split) + (std::string(verb) == "find" ? " x" : "") + " 2>&1",
                  &out),
        1)
        << verb;
    EXPECT_EQ(out, "mmar: " + o.module_split +
                       ": split BTF (its string offsets continue a base's): give the base with --base-btf BASE (a "
                       "module's base is usually /sys/kernel/btf/vmlinux)\n")
        << verb;
  }

  // create --btf-base links split members (ELF .BTF here) and nothing else;
  // the linked member then opens on its base with no --base-btf.
  ASSERT_EQ(test::run(m + " create -f " + q(o.tmp / "c.mmar") + " -C " + q(o.tmp.path()) +
                          " --btf-base base.o base.o module.o module_split.o 2>&1",
                      &out),
            0)
      << out;
  auto a = Archive::open(o.tmp / "c.mmar");
  ASSERT_TRUE(a.ok());
  auto split = a->find("module_split.o");
  ASSERT_TRUE(split->link.has_value());
  EXPECT_EQ(a->at(*split->link)->name, "base.o");
  EXPECT_FALSE(a->find("module.o")->link.has_value());
  EXPECT_FALSE(a->find("base.o")->link.has_value());
  EXPECT_TRUE(split->has_btf);
  ASSERT_EQ(test::run(m + " btf dump " + q(o.tmp / "c.mmar") + ":module_split.o", &out), 0);
  EXPECT_EQ(out, bpftool(o.module_split, o.base));

  // find on a packed archive's member (the one-shot path) prints what the
  // full path (--validate opens and validates the member) prints.
  const std::string base_raw = o.tmp / "b.btf", split_raw = o.tmp / "s.btf";
  ASSERT_EQ(test::run("objcopy --dump-section .BTF=" + q(base_raw) + " " + q(o.base) + " " + q(o.tmp / "j1")), 0);
  ASSERT_EQ(test::run("objcopy --dump-section .BTF=" + q(split_raw) + " " + q(o.module_split) + " " + q(o.tmp / "j2")),
            0);
  ASSERT_EQ(test::run(m + " btf pack -f " + q(o.tmp / "p.mmar") + " " + q(base_raw) + " " + q(split_raw)), 0);
  for (const char* flags : {"", " --json", " --kind struct"}) {
    std::string fast, full;
    const std::string args = std::string(flags) + " task_struct my_module_state list_head";
    EXPECT_EQ(test::run(m + " btf find " + q(o.tmp / "p.mmar") + ":modules/s.btf" + args, &fast), 0);
    EXPECT_EQ(test::run(m + " btf find --validate " + q(o.tmp / "p.mmar") + ":modules/s.btf" + args, &full), 0);
    EXPECT_EQ(fast, full) << flags;
    EXPECT_NE(fast.find("my_module_state"), std::string::npos) << fast;
  }
  EXPECT_EQ(test::run(m + " btf find " + q(o.tmp / "p.mmar") + ":vmlinux no_such_type 2>&1", &out), 1);
  EXPECT_NE(out.find("no type named 'no_such_type'"), std::string::npos) << out;
}

}  // namespace
}  // namespace mmar
