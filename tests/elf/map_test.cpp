// SPDX-License-Identifier: BSD-2-Clause
// map_object / mmar_mmapfd: every mapping checked against the program
// headers (readelf's view, parsed here), against the bytes of the file, and
// against /proc/self/maps; bss zeroing, alignment, padding, fixed-address
// conflicts, archive members (4K and 16K aligned, raw and compressed), and
// every error with nothing left mapped.
#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "mmar/elf_map.h"
#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;

std::string q(const std::string& s) { return "'" + s + "'"; }
const uint64_t kPage = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));

struct MapsLine {
  uint64_t lo, hi, offset, inode;
  std::string perms;
};

std::vector<MapsLine> proc_maps() {
  std::vector<MapsLine> out;
  std::ifstream f("/proc/self/maps");
  std::string line;
  while (std::getline(f, line)) {
    MapsLine m{};
    char perms[8] = {};
    unsigned long long lo, hi, off, inode;
    char dev[16];
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %15s %llu", &lo, &hi, perms, &off, dev, &inode) == 6) {
      out.push_back({lo, hi, off, inode, perms});
    }
  }
  return out;
}

// Mappings of the file with this inode. (Counting every mapping would be
// fragile: the sanitizers' allocators map memory of their own at any time.)
size_t mappings_of(uint64_t inode) {
  size_t n = 0;
  for (const auto& m : proc_maps()) n += m.inode == inode ? 1 : 0;
  return n;
}

// The /proc/self/maps entry covering addr.
std::optional<MapsLine> maps_at(uint64_t addr) {
  for (const auto& m : proc_maps()) {
    if (addr >= m.lo && addr < m.hi) return m;
  }
  return std::nullopt;
}

std::string perms_of(uint32_t prot) {
  std::string s = "---p";
  if (prot & PROT_READ) s[0] = 'r';
  if (prot & PROT_WRITE) s[1] = 'w';
  if (prot & PROT_EXEC) s[2] = 'x';
  return s;
}

struct Phdr {
  uint32_t type, flags;
  uint64_t offset, vaddr, filesz, memsz, align;
};

std::vector<Phdr> loads_of(const std::vector<std::byte>& file) {
  Elf64_Ehdr eh;
  std::memcpy(&eh, file.data(), sizeof eh);
  std::vector<Phdr> out;
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, file.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_type == PT_LOAD && ph.p_memsz > 0) {
      out.push_back({ph.p_type, ph.p_flags, ph.p_offset, ph.p_vaddr, ph.p_filesz, ph.p_memsz, ph.p_align});
    }
  }
  return out;
}

uint32_t prot_of(uint32_t pflags) {
  return ((pflags & PF_R) ? PROT_READ : 0) | ((pflags & PF_W) ? PROT_WRITE : 0) | ((pflags & PF_X) ? PROT_EXEC : 0);
}

// Everything the object's program headers promise, checked in memory:
// file bytes in place, .bss zero, protections and file offsets as
// /proc/self/maps reports them.
void check_segments(const MappedObject& o, const std::vector<std::byte>& file, uint64_t file_base, uint64_t inode) {
  auto loads = loads_of(file);
  ASSERT_FALSE(loads.empty());
  for (const Phdr& p : loads) {
    SCOPED_TRACE("segment at vaddr " + std::to_string(p.vaddr));
    const auto* mem = reinterpret_cast<const std::byte*>(o.load_bias() + p.vaddr);
    EXPECT_EQ(std::memcmp(mem, file.data() + p.offset, p.filesz), 0) << "file bytes in place";
    for (uint64_t i = p.filesz; i < p.memsz; ++i) {
      if (mem[i] != std::byte{0}) {
        ADD_FAILURE() << "bss byte " << i << " is not zero";
        break;
      }
    }
    auto m = maps_at(o.load_bias() + p.vaddr);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->perms, perms_of(prot_of(p.flags)));
    if (p.filesz > 0 && inode != 0) {
      EXPECT_EQ(m->inode, inode) << "mapped from the file itself";
      const uint64_t page_off = ((o.load_bias() + p.vaddr) & ~(kPage - 1)) - m->lo;
      EXPECT_EQ(m->offset + page_off, file_base + (p.offset & ~(kPage - 1)));
    }
  }
  // The report agrees with /proc/self/maps too.
  for (const auto& mp : o.mappings()) {
    auto m = maps_at(mp.addr);
    ASSERT_TRUE(m.has_value()) << "reported mapping at " << mp.addr << " is not in /proc/self/maps";
    EXPECT_EQ(m->perms, perms_of(mp.prot)) << "at " << mp.addr;
    EXPECT_LE(mp.addr + mp.size, maps_at(mp.addr + mp.size - 1)->hi);
  }
}

uint64_t inode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(stat(path.c_str(), &st), 0);
  return st.st_ino;
}

Result<MappedObject> map_path(const std::string& path, uint32_t flags, uint64_t padding = 0) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path;
  auto r = map_object(fd, 0, 0, flags, padding, path);
  close(fd);
  return r;
}

std::string libc_path() {
  for (const char* p :
       {"/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6"}) {
    if (access(p, R_OK) == 0) return p;
  }
  return "";
}

TEST(ElfMap, DefaultIsOneReadOnlyMappingOfTheWholeObject) {
  const std::string ls = "/usr/bin/ls";
  auto file = test::read_file(ls);
  auto o = map_path(ls, 0);
  ASSERT_TRUE(o.ok()) << o.error().message();
  ASSERT_EQ(o->mappings().size(), 1u);
  const auto& m = o->mappings()[0];
  EXPECT_EQ(m.prot, uint32_t{PROT_READ});
  EXPECT_EQ(m.flags, MMAR_MAPPING_ELF_HEADER);
  EXPECT_EQ(m.file_size, file.size());
  EXPECT_EQ(std::memcmp(reinterpret_cast<void*>(m.addr), file.data(), file.size()), 0);
  auto pm = maps_at(m.addr);
  ASSERT_TRUE(pm);
  EXPECT_EQ(pm->perms, "r--p");
  EXPECT_EQ(pm->inode, inode_of(ls));
}

TEST(ElfMap, SharedObjectAsLdSoMapsIt) {
  const std::string libc = libc_path();
  if (libc.empty()) GTEST_SKIP() << "no libc.so.6 found";
  auto file = test::read_file(libc);
  auto o = map_path(libc, kMapInterpret);
  ASSERT_TRUE(o.ok()) << o.error().message();
  EXPECT_EQ(o->elf_type(), ET_DYN);
  EXPECT_EQ(o->load_bias() % kPage, 0u);
  Elf64_Ehdr eh;
  std::memcpy(&eh, file.data(), sizeof eh);
  EXPECT_EQ(o->entry(), o->load_bias() + eh.e_entry);
  EXPECT_EQ(o->mappings().front().flags & MMAR_MAPPING_ELF_HEADER, MMAR_MAPPING_ELF_HEADER);
  check_segments(*o, file, 0, inode_of(libc));
  // The mapping is the object's own: unmapped when it goes.
  const uint64_t addr = o->mappings().front().addr;
  { MappedObject gone = std::move(o).value(); }
  EXPECT_FALSE(maps_at(addr).has_value());
}

// A test program with every shape of segment: a .data/.bss page shared with
// the file's last page, a large .bss needing anonymous memory, a large
// alignment.
class Built : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::run("command -v gcc >/dev/null") != 0) GTEST_SKIP() << "gcc is missing";
  }
  std::string build(const std::string& name, const std::string& code, const std::string& flags) {
    std::string src = tmp_ / (name + ".c"), out = tmp_ / name;
    test::write_file(src, test::to_bytes(code));
    EXPECT_EQ(test::run("gcc -O1 " + flags + " " + q(src) + " -o " + q(out) + " 2>&1"), 0) << name;
    return out;
  }
  TempDir tmp_;
};

const char* kBssProgram =
    "char data[5000] = {1, 2, 3};\n"
    "char small_bss[300];\n"
    "char big_bss[1 << 20];\n"
    "int main(void) { return data[0] + small_bss[0] + big_bss[4096]; }\n";

TEST_F(Built, BssIsZeroedAndAnonymous) {
  std::string exe = build("bss", kBssProgram, "-pie -fPIE");
  auto file = test::read_file(exe);
  auto o = map_path(exe, kMapInterpret);
  ASSERT_TRUE(o.ok()) << o.error().message();
  check_segments(*o, file, 0, inode_of(exe));
  bool anon = false;
  for (const auto& m : o->mappings()) {
    if (m.flags & MMAR_MAPPING_ANONYMOUS) {
      anon = true;
      EXPECT_EQ(m.file_size, 0u);
      EXPECT_EQ(m.prot, uint32_t{PROT_READ | PROT_WRITE});
      EXPECT_GE(m.size, uint64_t{1} << 20);
      auto pm = maps_at(m.addr);
      ASSERT_TRUE(pm);
      EXPECT_EQ(pm->inode, 0u) << "bss is anonymous memory";
    }
  }
  EXPECT_TRUE(anon);
}

TEST_F(Built, LargeAlignmentIsHonoured) {
  std::string so =
      build("aligned.so", "int x = 1; int f(void) { return x; }\n", "-shared -fPIC -Wl,-z,max-page-size=0x200000");
  auto file = test::read_file(so);
  uint64_t align = 0;
  for (const auto& p : loads_of(file)) align = std::max(align, p.align);
  ASSERT_EQ(align, 0x200000u);
  for (int i = 0; i < 3; ++i) {
    auto o = map_path(so, kMapInterpret);
    ASSERT_TRUE(o.ok()) << o.error().message();
    EXPECT_EQ(o->load_bias() % align, 0u);
    check_segments(*o, file, 0, inode_of(so));
  }
}

TEST_F(Built, FixedAddressesAreNeverClobbered) {
  std::string exe = build("fixed", kBssProgram, "-no-pie -fno-PIE -Wl,-Ttext-segment=0x10000000");
  auto file = test::read_file(exe);
  auto first = map_path(exe, kMapInterpret);
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_EQ(first->elf_type(), ET_EXEC);
  EXPECT_EQ(first->load_bias(), 0u);
  EXPECT_EQ(first->mappings().front().addr, 0x10000000u);
  check_segments(*first, file, 0, inode_of(exe));
  const size_t before = mappings_of(inode_of(exe));
  auto second = map_path(exe, kMapInterpret);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().sys_errno(), EADDRINUSE);
  EXPECT_NE(second.error().message().find("are in use"), std::string::npos) << second.error().message();
  EXPECT_EQ(mappings_of(inode_of(exe)), before) << "nothing mapped by the failed call";
  check_segments(*first, file, 0, inode_of(exe));  // still intact
}

TEST_F(Built, PaddingSurroundsTheObject) {
  std::string exe = build("pad", kBssProgram, "-pie -fPIE");
  for (uint64_t pad : {kPage, uint64_t{1} << 20}) {
    auto o = map_path(exe, kMapInterpret | kMapPadding, pad);
    ASSERT_TRUE(o.ok()) << o.error().message();
    const auto& ms = o->mappings();
    ASSERT_GE(ms.size(), 3u);
    EXPECT_EQ(ms.front().flags, MMAR_MAPPING_PADDING);
    EXPECT_EQ(ms.back().flags, MMAR_MAPPING_PADDING);
    EXPECT_EQ(ms.front().size, pad);
    EXPECT_EQ(ms.back().size, pad);
    EXPECT_EQ(ms.front().addr + pad, ms[1].addr) << "padding right before the lowest mapping";
    EXPECT_EQ(ms.back().addr, ms[ms.size() - 2].addr + ms[ms.size() - 2].size);
    for (const auto* m : {&ms.front(), &ms.back()}) {
      auto pm = maps_at(m->addr);
      ASSERT_TRUE(pm);
      EXPECT_EQ(pm->perms, "---p");
    }
  }
  // The default mapping takes padding too.
  auto whole = map_path(exe, kMapPadding, 8192);
  ASSERT_TRUE(whole.ok());
  ASSERT_EQ(whole->mappings().size(), 3u);
  EXPECT_EQ(whole->mappings()[1].flags, MMAR_MAPPING_ELF_HEADER);
}

TEST_F(Built, RelocatableAndCoreObjectsAreOneReadOnlyMapping) {
  std::string src = tmp_ / "rel.c", obj = tmp_ / "rel.o";
  test::write_file(src, test::to_bytes("int f(void) { return 42; }\n"));
  ASSERT_EQ(test::run("gcc -c " + q(src) + " -o " + q(obj)), 0);
  auto o = map_path(obj, kMapInterpret);
  ASSERT_TRUE(o.ok()) << o.error().message();
  EXPECT_EQ(o->elf_type(), ET_REL);
  ASSERT_EQ(o->mappings().size(), 1u);
  EXPECT_EQ(o->mappings()[0].prot, uint32_t{PROT_READ});
  auto file = test::read_file(obj);
  EXPECT_EQ(std::memcmp(reinterpret_cast<void*>(o->mappings()[0].addr), file.data(), file.size()), 0);
  // A core file: the same (its program headers describe another process).
  auto core = file;
  const uint16_t et_core = ET_CORE;
  std::memcpy(core.data() + offsetof(Elf64_Ehdr, e_type), &et_core, 2);
  std::string core_path = tmp_ / "core";
  test::write_file(core_path, core);
  auto c = map_path(core_path, kMapInterpret);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->elf_type(), ET_CORE);
  ASSERT_EQ(c->mappings().size(), 1u);
  EXPECT_EQ(c->mappings()[0].prot, uint32_t{PROT_READ});
}

TEST_F(Built, MapCommandPrintsTheTableAndJson) {
  std::string exe = build("cli", kBssProgram, "-pie -fPIE");
  std::string out;
  ASSERT_EQ(test::run(std::string(MMAR_BIN) + " map --interpret --padding 64K " + q(exe), &out), 0);
  EXPECT_NE(out.find(": dyn, load bias 0x"), std::string::npos) << out;
  EXPECT_NE(out.find("r--  elf-header"), std::string::npos) << out;
  EXPECT_NE(out.find("rw-  bss"), std::string::npos) << out;
  EXPECT_NE(out.find("---  padding"), std::string::npos) << out;
  if (test::run("command -v python3 >/dev/null") == 0) {
    std::string check;
    ASSERT_EQ(test::run(std::string(MMAR_BIN) + " map -i --json " + q(exe) +
                            " | python3 -c 'import json,sys; d=json.load(sys.stdin); m=d[\"mappings\"]; "
                            "print(d[\"type\"], len(m) >= 4, m[0][\"flags\"], "
                            "all(a[\"addr\"] + a[\"size\"] <= b[\"addr\"] for a, b in zip(m, m[1:])))'",
                        &check),
              0);
    EXPECT_EQ(check, "dyn True elf-header True\n");
  }
  EXPECT_EQ(test::run(std::string(MMAR_BIN) + " map " + q(tmp_ / "missing") + " 2>/dev/null"), 1);
  EXPECT_EQ(test::run(std::string(MMAR_BIN) + " map --padding 0 " + q(exe) + " 2>/dev/null"), 2);
}

// Errors: each with its errno and with nothing left mapped.
class ElfMapErrors : public Built {
 protected:
  int errno_of(const std::vector<std::byte>& bytes, uint32_t flags = kMapInterpret, uint64_t padding = 0) {
    std::string path = tmp_ / ("bad" + std::to_string(n_++));
    test::write_file(path, bytes);
    auto r = map_path(path, flags, padding);
    if (r.ok()) return 0;
    EXPECT_EQ(mappings_of(inode_of(path)), 0u) << "a failed call left mappings behind";
    last_message_ = r.error().message();
    EXPECT_NE(last_message_.find(path), std::string::npos) << "the message names the file: " << last_message_;
    return r.error().sys_errno();
  }
  std::string last_message_;
  int n_ = 0;
};

template <class T>
void poke(std::vector<std::byte>& b, size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof v);
}

TEST_F(ElfMapErrors, EveryErrorHasItsErrno) {
  std::string exe = build("good", kBssProgram, "-pie -fPIE");
  const auto good = test::read_file(exe);
  ASSERT_EQ(errno_of(good), 0);

  EXPECT_EQ(errno_of(test::to_bytes("#!/bin/sh\necho not elf\n")), EINVAL);
  EXPECT_NE(last_message_.find("not an ELF object"), std::string::npos);
  EXPECT_EQ(errno_of(test::to_bytes("#!/bin/sh\n"), 0), EINVAL) << "the default mapping wants ELF too";

  auto b = good;
  b[EI_CLASS] = std::byte{ELFCLASS32};
  EXPECT_EQ(errno_of(b), ENOTSUP);
  b = good;
  b[EI_DATA] = std::byte{ELFDATA2MSB};
  EXPECT_EQ(errno_of(b), ENOTSUP);
  b = good;
  poke<uint16_t>(b, offsetof(Elf64_Ehdr, e_machine), EM_RISCV);
  EXPECT_EQ(errno_of(b), ENOTSUP);
  EXPECT_EQ(errno_of(b, 0), 0) << "a read-only view of a foreign object is fine";

  // Flags.
  EXPECT_EQ(errno_of(good, 0x80), EINVAL);
  EXPECT_EQ(errno_of(good, kMapInterpret | kMapPadding, 0), EINVAL);
  EXPECT_NE(last_message_.find("padding requested without a size"), std::string::npos);

  // Program headers.
  Elf64_Ehdr eh;
  std::memcpy(&eh, good.data(), sizeof eh);
  size_t load = 0;
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, good.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_type == PT_LOAD) load = eh.e_phoff + i * sizeof ph;
  }
  ASSERT_NE(load, 0u);
  b = good;
  poke<uint64_t>(b, load + offsetof(Elf64_Phdr, p_filesz), ~uint64_t{0} / 2);
  EXPECT_EQ(errno_of(b), EINVAL);
  EXPECT_NE(last_message_.find("p_filesz is larger than p_memsz"), std::string::npos) << last_message_;
  b = good;
  poke<uint64_t>(b, load + offsetof(Elf64_Phdr, p_offset), good.size());
  EXPECT_EQ(errno_of(b), EINVAL);
  EXPECT_NE(last_message_.find("outside the object"), std::string::npos) << last_message_;
  b = good;
  Elf64_Phdr ph;
  std::memcpy(&ph, good.data() + load, sizeof ph);
  poke<uint64_t>(b, load + offsetof(Elf64_Phdr, p_vaddr), ph.p_vaddr + 8);
  EXPECT_EQ(errno_of(b), EINVAL);
  EXPECT_NE(last_message_.find("differ modulo the page size"), std::string::npos) << last_message_;
  b = good;
  poke<uint16_t>(b, offsetof(Elf64_Ehdr, e_phnum), 0xffff);
  EXPECT_EQ(errno_of(b), EINVAL);
  b = good;
  b.resize(40);
  EXPECT_EQ(errno_of(b), EINVAL);
  EXPECT_NE(last_message_.find("truncated ELF header"), std::string::npos) << last_message_;
}

TEST_F(ElfMapErrors, CApiSaysHowManyMappingsAreNeeded) {
  std::string exe = build("capi", kBssProgram, "-pie -fPIE");
  int fd = open(exe.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const uint64_t inode = inode_of(exe);
  mmar_mapping one[1];
  unsigned count = 1;
  errno = 0;
  EXPECT_EQ(mmar_mmapfd(fd, 0, 0, MMAR_MAP_INTERPRET, 0, one, &count), -1);
  EXPECT_EQ(errno, E2BIG);
  EXPECT_GT(count, 1u);
  EXPECT_EQ(mappings_of(inode), 0u) << "E2BIG leaves nothing mapped";
  std::vector<mmar_mapping> maps(count);
  unsigned got = count;
  ASSERT_EQ(mmar_mmapfd(fd, 0, 0, MMAR_MAP_INTERPRET, 0, maps.data(), &got), 0);
  EXPECT_EQ(got, count);
  EXPECT_GT(mappings_of(inode), 0u);
  EXPECT_EQ(mmar_munmapfd(maps.data(), got), 0);
  EXPECT_EQ(mappings_of(inode), 0u);
  unsigned zero = 0;
  EXPECT_EQ(mmar_mmapfd(fd, 0, 0, 0x40, 0, nullptr, &zero), -1);
  EXPECT_EQ(errno, EINVAL);
  close(fd);
}

TEST_F(ElfMapErrors, NoexecFilesystemRefusesExecutableSegments) {
  std::string mnt = tmp_ / "noexec";
  ASSERT_EQ(mkdir(mnt.c_str(), 0755), 0);
  if (mount("tmpfs", mnt.c_str(), "tmpfs", MS_NOEXEC, "size=16m") != 0) {
    GTEST_SKIP() << "cannot mount a noexec tmpfs here: " << std::strerror(errno);
  }
  std::string exe = build("noexec_prog", kBssProgram, "-pie -fPIE");
  std::string copy = mnt + "/prog";
  test::write_file(copy, test::read_file(exe), 0755);
  auto r = map_path(copy, kMapInterpret);
  EXPECT_FALSE(r.ok());
  if (!r.ok()) {
    EXPECT_EQ(r.error().sys_errno(), EACCES) << r.error().message();
  }
  auto view = map_path(copy, 0);
  EXPECT_TRUE(view.ok()) << "a read-only view is still fine";
  view = Error(Errc::io, "");
  umount2(mnt.c_str(), MNT_DETACH);
}

// Archive members: raw page-aligned members straight from the archive fd at
// 4K and 16K alignment; compressed ones through a memory file.
TEST_F(Built, ArchiveMembersMapStraightFromTheArchive) {
  std::string exe = build("member", kBssProgram, "-pie -fPIE");
  auto file = test::read_file(exe);
  std::string dir = tmp_ / "tree";
  ASSERT_EQ(test::run("mkdir -p " + q(dir) + " && cp " + q(exe) + " " + q(dir + "/prog")), 0);
  for (uint32_t align : {4096u, 16384u}) {
    for (Codec codec : {Codec::none, Codec::zstd}) {
      SCOPED_TRACE("alignment " + std::to_string(align) + " codec " + codec_name(codec));
      std::string path = tmp_ / ("a" + std::to_string(align) + codec_name(codec) + ".mmar");
      WriteOptions wo;
      wo.alignment = align;
      wo.codec = codec;
      wo.threshold = codec == Codec::none ? 0 : 1;
      test::archive_tree(dir, path, wo);
      auto a = Archive::open(path);
      ASSERT_TRUE(a.ok());
      auto m = a->find("prog");
      ASSERT_TRUE(m.ok());
      auto o = map_member(*a, *m, kMapInterpret);
      ASSERT_TRUE(o.ok()) << o.error().message();
      if (codec == Codec::none) {
        ASSERT_EQ(m->data_offset % align, 0u);
        check_segments(*o, file, m->data_offset, inode_of(path));
      } else {
        check_segments(*o, file, 0, 0);
        auto pm = maps_at(o->mappings().front().addr);
        ASSERT_TRUE(pm);
        EXPECT_NE(pm->inode, inode_of(path)) << "a compressed member comes from a memory file";
      }
    }
  }
}

}  // namespace
}  // namespace mmar
