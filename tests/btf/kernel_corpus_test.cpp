// SPDX-License-Identifier: BSD-2-Clause
// The real thing: a Debian kernel package's vmlinux and every module's BTF
// (scripts/kernel-btf.sh), dumped by mmar and by bpftool, byte for byte; and
// packed into one archive whose module members open on their base.
// Long-running; skips with the reason when the package cannot be had.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <map>

#include "mmar/btf.h"
#include "support/c_header_check.h"
#include "support/test_support.h"

namespace mmar {
namespace {

const std::string kCorpus = MMAR_KERNEL_BTF_DIR;

std::string q(const std::string& s) { return "'" + s + "'"; }

class KernelCorpus : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string out;
    int rc = test::run(std::string(MMAR_SOURCE_DIR) + "/scripts/kernel-btf.sh " + q(kCorpus) + " 2>&1", &out);
    available_ = rc == 0;
    why_ = out;
  }
  void SetUp() override {
    if (!available_) GTEST_SKIP() << "no Debian kernel package BTF: " << why_;
    if (test::run("command -v bpftool >/dev/null") != 0) GTEST_SKIP() << "bpftool is missing";
  }
  static std::vector<std::string> modules() {
    std::string list;
    test::run("cd " + q(kCorpus + "/modules") + " && find . -name '*.btf' | LC_ALL=C sort | cut -c3-", &list);
    std::vector<std::string> out;
    size_t start = 0;
    while (start < list.size()) {
      size_t nl = list.find('\n', start);
      out.push_back(list.substr(start, nl - start));
      start = nl + 1;
    }
    return out;
  }
  static bool available_;
  static std::string why_;
};
bool KernelCorpus::available_ = false;
std::string KernelCorpus::why_;

TEST_F(KernelCorpus, VmlinuxAndEveryModuleMatchBpftool) {
  const std::string vmlinux = kCorpus + "/vmlinux.btf";
  auto base = Btf::open(vmlinux, nullptr, BtfOpenOptions{.validate = true});
  ASSERT_TRUE(base.ok()) << base.error().message();
  std::string mine, theirs;
  ASSERT_TRUE(btf_dump_raw(*base, mine).ok());
  ASSERT_EQ(test::run("bpftool btf dump file " + q(vmlinux), &theirs), 0);
  EXPECT_TRUE(mine == theirs) << "vmlinux dumps differ";
  EXPECT_TRUE(BtfBuilder::from(*base)->write() == test::read_file(vmlinux)) << "vmlinux rewrite differs";
  auto mods = modules();
  ASSERT_GT(mods.size(), 1000u) << "expected a full module set";
  size_t differing = 0;
  for (const auto& m : mods) {
    const std::string path = kCorpus + "/modules/" + m;
    auto split = Btf::open(path, &*base, BtfOpenOptions{.validate = true});
    ASSERT_TRUE(split.ok()) << split.error().message();
    mine.clear();
    ASSERT_TRUE(btf_dump_raw(*split, mine).ok());
    ASSERT_EQ(test::run("bpftool btf dump file " + q(path) + " --base-btf " + q(vmlinux), &theirs), 0);
    if (mine != theirs) {
      ++differing;
      ADD_FAILURE() << m << ": dumps differ";
    }
    // Written back unmodified, byte for byte.
    auto rewritten = BtfBuilder::from(*split);
    ASSERT_TRUE(rewritten.ok());
    auto original = test::read_file(path);
    if (rewritten->write() != original) ADD_FAILURE() << m << ": rewrite differs";
  }
  std::printf("[kernel] %zu modules compared with bpftool, %zu differ\n", mods.size(), differing);
}

TEST_F(KernelCorpus, CHeadersMatchBpftoolAndCompileWithTheirLayout) {
  if (test::run("command -v gcc >/dev/null") != 0) GTEST_SKIP() << "gcc is missing";
  const std::string vmlinux = kCorpus + "/vmlinux.btf";
  auto base = Btf::open(vmlinux);
  ASSERT_TRUE(base.ok()) << base.error().message();
  // mmar's header has the BTF's layout; with bpftool_compat it is
  // bpftool 7.1's, byte for byte.
  const CHeaderOptions compat{.bpftool_compat = true};
  std::string mine, theirs, same_as_bpftool;
  ASSERT_TRUE(btf_dump_c(*base, mine).ok());
  ASSERT_TRUE(btf_dump_c(*base, same_as_bpftool, compat).ok());
  ASSERT_EQ(test::run("bpftool btf dump file " + q(vmlinux) + " format c", &theirs), 0);
  EXPECT_TRUE(same_as_bpftool == theirs) << "vmlinux headers differ";
  EXPECT_EQ(test::compile_c_header(mine, *base), "");
  // Every module's header holds the whole base too (as bpftool's does), so
  // compare a spread of 1 in 16, and compile a few.
  auto mods = modules();
  size_t compared = 0;
  for (size_t i = 0; i < mods.size(); ++i) {
    // virtio_scsi has a packed struct whose tail bpftool 7.1 pads short
    bool known_hard = mods[i].find("virtio_scsi") != std::string::npos;
    if (i % 16 != 0 && !known_hard) continue;
    ++compared;
    const std::string path = kCorpus + "/modules/" + mods[i];
    auto split = Btf::open(path, &*base);
    ASSERT_TRUE(split.ok()) << split.error().message();
    mine.clear();
    same_as_bpftool.clear();
    ASSERT_TRUE(btf_dump_c(*split, mine).ok()) << mods[i];
    ASSERT_TRUE(btf_dump_c(*split, same_as_bpftool, compat).ok()) << mods[i];
    ASSERT_EQ(test::run("bpftool btf dump file " + q(path) + " --base-btf " + q(vmlinux) + " format c", &theirs), 0);
    if (same_as_bpftool != theirs) ADD_FAILURE() << mods[i] << ": C headers differ";
    if (i % 256 == 0 || known_hard) {
      EXPECT_EQ(test::compile_c_header(mine, *split), "") << mods[i];
    }
  }
  std::printf("[kernel] C headers of vmlinux and %zu modules compared with bpftool\n", compared);
}

TEST_F(KernelCorpus, PackedArchiveResolvesBasesOnce) {
  test::TempDir tmp;
  std::string out;
  ASSERT_EQ(test::run(std::string(MMAR_BIN) + " btf pack -f " + q(tmp / "k.mmar") + " " + q(kCorpus + "/vmlinux.btf") +
                          " " + q(kCorpus + "/modules") + " 2>&1",
                      &out),
            0)
      << out;
  auto a = Archive::open(tmp / "k.mmar");
  ASSERT_TRUE(a.ok());
  BtfSet set(*a);
  auto mods = modules();
  const std::byte* base_bytes = nullptr;
  for (size_t i = 0; i < mods.size(); i += 97) {
    auto m = a->find("modules/" + mods[i]);
    ASSERT_TRUE(m.ok()) << mods[i];
    ASSERT_TRUE(m->link.has_value());
    auto btf = set.open(*m);
    ASSERT_TRUE(btf.ok()) << btf.error().message();
    ASSERT_TRUE(btf->is_split());
    EXPECT_TRUE(btf->has_stored_index());
    // Every split shares the one base parse: the same bytes, zero-copy.
    auto base = btf->base();
    if (base_bytes == nullptr) base_bytes = base->raw().data();
    EXPECT_EQ(base->raw().data(), base_bytes);
    EXPECT_TRUE(btf->find("task_struct", BtfKind::struct_).ok());
  }
  // Lookups through vmlinux's stored index (interpolation over ~100k name
  // hashes) agree with a brute-force scan for every named type.
  auto vm_btf = set.open("vmlinux");
  ASSERT_TRUE(vm_btf.ok());
  ASSERT_TRUE(vm_btf->has_stored_index());
  auto plain = Btf::open(kCorpus + "/vmlinux.btf");
  std::map<std::pair<std::string, int>, uint32_t> first;
  const uint32_t count = *plain->type_count();
  for (uint32_t id = 1; id < count; ++id) {
    auto t = plain->type(id);
    std::string n(plain->name_of(*t));
    if (!n.empty()) first.emplace(std::make_pair(n, static_cast<int>(t->kind())), id);
  }
  size_t mismatches = 0;
  for (const auto& [key, id] : first) {
    auto t = vm_btf->find(key.first, static_cast<BtfKind>(key.second));
    if (!t.ok() || t->id() != id) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0u) << "of " << first.size() << " names";
  EXPECT_EQ(vm_btf->find("no_such_type_anywhere").error().code(), Errc::not_found);
  EXPECT_TRUE(vm_btf->validate().ok());  // the stored index against a rescan

  // The one-shot lookup (preads: fence, name table) agrees with the scan for
  // 1 name in 16 of vmlinux, each with and without its kind, and answers a
  // sample of modules' own names and base names as BtfSet does; reads
  // counted to show the lookup stays a few reads on real data.
  const std::string archive = tmp / "k.mmar";
  uint64_t lookups = 0, reads = 0, full = 0;
  size_t k = 0;
  for (const auto& [key, id] : first) {
    if (k++ % 16 != 0) continue;
    BtfLookupTrace trace;
    auto t = btf_find_in_archive(archive, "vmlinux", key.first, static_cast<BtfKind>(key.second), &trace);
    ASSERT_TRUE(t.ok()) << key.first << ": " << t.error().message();
    EXPECT_EQ(t->id, id) << key.first;
    auto any = btf_find_in_archive(archive, "vmlinux", key.first);
    ASSERT_TRUE(any.ok());
    EXPECT_EQ(any->id, plain->find(key.first)->id()) << key.first;
    ++lookups;
    reads += trace.reads;
    full += trace.full_path;
  }
  for (size_t i = 0; i < mods.size(); i += 61) {
    const std::string member = "modules/" + mods[i];
    auto btf = set.open(member);
    ASSERT_TRUE(btf.ok());
    const uint32_t start = btf->start_id(), end = *btf->type_count();
    for (uint32_t id = start; id < end; id += std::max<uint32_t>(1, (end - start) / 8)) {
      auto t = btf->type(id);
      std::string n(btf->name_of(*t));
      if (n.empty()) continue;
      for (const std::string& name : {n, std::string("task_struct"), std::string("no_such_" + n)}) {
        auto want = btf->find(name);
        BtfLookupTrace trace;
        auto got = btf_find_in_archive(archive, member, name, std::nullopt, &trace);
        ASSERT_EQ(want.ok(), got.ok()) << member << " " << name;
        if (want.ok()) {
          EXPECT_EQ(got->id, want->id()) << member << " " << name;
        }
        ++lookups;
        reads += trace.reads;
        full += trace.full_path;
      }
    }
  }
  std::printf("[kernel] %llu one-shot lookups from the archive: %.2f reads each, %llu by the full path\n",
              static_cast<unsigned long long>(lookups), static_cast<double>(reads) / static_cast<double>(lookups),
              static_cast<unsigned long long>(full));
  EXPECT_EQ(full, 0u);

  // The raw member is a view into the archive mapping.
  auto vm = a->find("vmlinux");
  EXPECT_EQ(base_bytes, a->source().all().data() + vm->data_offset);
}

}  // namespace
}  // namespace mmar
