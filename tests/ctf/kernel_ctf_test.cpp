// SPDX-License-Identifier: BSD-2-Clause
// The running kernel's types as kernel-sized CTF archives, written by libctf
// itself (its ctf_add_* API and ctf_arc_write, through test::LibctfFromBtf;
// with and without a `void` type, which decides whether libctf's dump takes
// its ordinary or its error paths) and by `mmar ctf from-btf`, each put into
// an ELF object's .ctf section: `mmar ctf dump` of the object equals
// `objdump --ctf=.ctf` byte for byte. Skipped without
// /sys/kernel/btf/vmlinux; labelled long (3-4 s each in a release build:
// converting, writing, and dumping tens of megabytes twice). Each test
// process builds its one archive once.
#include <ctf-api.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "mmar/btf.h"
#include "support/libctf_from_btf.h"
#include "support/test_support.h"

namespace mmar {
namespace {

const char* const kVmlinux = "/sys/kernel/btf/vmlinux";

#define SKIP_WITHOUT_KERNEL_BTF() \
  if (::access(kVmlinux, R_OK) != 0) GTEST_SKIP() << "no " << kVmlinux << " (a kernel without CONFIG_DEBUG_INFO_BTF)"

// A tiny gcc-compiled object with `archive` as its .ctf section, as the
// linker places CTF. Returns the object's path ("" when cc or objcopy fails).
std::string wrap_in_object(const std::string& archive, const std::string& dir) {
  const std::string obj = dir + "/wrapped.o";
  if (test::run("printf 'int x;\\n' | cc -x c -c - -o '" + dir + "/plain.o' && objcopy --add-section .ctf='" + archive +
                "' --set-section-flags .ctf=noload,readonly '" + dir + "/plain.o' '" + obj + "'") != 0) {
    return "";
  }
  return obj;
}

// Standard output of `command` from its "Contents of CTF section" line on.
std::string ctf_contents(const std::string& command) {
  std::string out;
  EXPECT_EQ(test::run(command, &out), 0) << command;
  const size_t at = out.find("Contents of CTF section");
  EXPECT_NE(at, std::string::npos) << command;
  return at == std::string::npos ? std::string() : out.substr(at);
}

// The first line where two dumps differ, for a readable failure.
std::string first_difference(const std::string& ours, const std::string& theirs) {
  size_t i = 0, line = 1;
  while (i < ours.size() && i < theirs.size() && ours[i] == theirs[i]) line += ours[i++] == '\n';
  auto line_at = [&](const std::string& s) {
    const size_t b = s.rfind('\n', i == 0 ? 0 : i - 1);
    const size_t from = b == std::string::npos ? 0 : b + 1;
    return s.substr(from, s.find('\n', from) - from);
  };
  return "line " + std::to_string(line) + ":\n  mmar:    " + line_at(ours) + "\n  objdump: " + line_at(theirs);
}

// `mmar ctf dump` and `objdump --ctf=.ctf` of `obj`, each with `parent`.
// Returns how many warnings objdump wrote (libctf's dump reports each type
// it cannot name or walk, and goes on).
size_t expect_dumps_equal(const std::string& obj, const std::string& parent) {
  const std::string warnings = obj + ".objdump-stderr";
  const std::string ours =
      ctf_contents(std::string(MMAR_BIN) + " ctf dump --ctf-parent '" + parent + "' '" + obj + "'");
  const std::string theirs =
      ctf_contents("objdump --ctf=.ctf --ctf-parent='" + parent + "' '" + obj + "' 2>'" + warnings + "'");
  EXPECT_GT(theirs.size(), size_t{1} << 20);  // a kernel's types: megabytes of dump
  EXPECT_TRUE(ours == theirs) << "dumps differ (" << ours.size() << " vs " << theirs.size() << " bytes) at "
                              << first_difference(ours, theirs);
  size_t lines = 0;
  for (std::byte b : test::read_file(warnings)) lines += b == std::byte{'\n'};
  return lines;
}

// The kernel's types through libctf's ctf_add_* API into a CTF archive
// written by ctf_arc_write (one member, named as objdump's default parent),
// in an ELF object; returns objdump's warning count on it.
size_t libctf_archive_dumps_as_objdump(bool void_type) {
  auto btf = Btf::open(kVmlinux, nullptr, BtfOpenOptions{.validate = true});
  EXPECT_TRUE(btf.ok()) << btf.error().message();
  if (!btf.ok()) return 0;
  int err = 0;
  ctf_dict_t* fp = ctf_create(&err);
  EXPECT_NE(fp, nullptr) << ctf_errmsg(err);
  if (fp == nullptr) return 0;
  test::LibctfFromBtf conv(*btf, fp, void_type);
  conv.run();
  // libctf refuses little of the kernel (the converter counts it): the dict
  // holds most of the BTF's types.
  ctf_next_t* it = nullptr;
  size_t types = 0;
  while (ctf_type_next(fp, &it, nullptr, 1) != CTF_ERR) ++types;
  EXPECT_GT(types, size_t{*btf->type_count()} / 2);
  ::testing::Test::RecordProperty("libctf_types", static_cast<int>(types));
  ::testing::Test::RecordProperty("libctf_refused", static_cast<int>(conv.refused));
  test::TempDir dir;
  const std::string archive = dir / "libctf.ctfa";
  const char* names[] = {".ctf"};
  const int written = ctf_arc_write(archive.c_str(), &fp, 1, names, static_cast<size_t>(-1));
  EXPECT_EQ(written, 0) << ctf_errmsg(ctf_errno(fp));
  ctf_dict_close(fp);
  const std::string obj = wrap_in_object(archive, dir.path());
  EXPECT_FALSE(obj.empty()) << "cc or objcopy failed";
  return written != 0 || obj.empty() ? 0 : expect_dumps_equal(obj, ".ctf");
}

TEST(CtfKernel, LibctfWrittenArchiveDumpsAsObjdump) {
  SKIP_WITHOUT_KERNEL_BTF();
  MMAR_SKIP_WITHOUT_CLI();
  // With a `void` type libctf names every type: its dump's ordinary paths.
  EXPECT_EQ(libctf_archive_dumps_as_objdump(true), 0u);
}

TEST(CtfKernel, LibctfWrittenArchiveWithoutVoidDumpsAsObjdump) {
  SKIP_WITHOUT_KERNEL_BTF();
  MMAR_SKIP_WITHOUT_CLI();
  // Without one, libctf's dump of every type that refers to void takes its
  // error paths ("cannot format name", "cannot visit members"): ours too.
  EXPECT_GT(libctf_archive_dumps_as_objdump(false), 1000u);
}

TEST(CtfKernel, FromBtfArchiveDumpsAsObjdump) {
  SKIP_WITHOUT_KERNEL_BTF();
  MMAR_SKIP_WITHOUT_CLI();
  test::TempDir dir;
  const std::string archive = dir / "vmlinux.ctfa";
  ASSERT_EQ(test::run(std::string(MMAR_BIN) + " ctf from-btf -o '" + archive + "' " + kVmlinux + " 2>/dev/null"), 0);
  const std::string obj = wrap_in_object(archive, dir.path());
  ASSERT_FALSE(obj.empty()) << "cc or objcopy failed";
  EXPECT_EQ(expect_dumps_equal(obj, "shared_ctf"), 0u);
}

}  // namespace
}  // namespace mmar
