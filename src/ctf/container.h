// SPDX-License-Identifier: BSD-2-Clause
// The containers a CTF dict comes in: an ELF object's .ctf section (with
// its symbol table) and a libctf CTF archive. Shared by the reader
// (file.cpp: what `objdump --ctf` opens) and by what a CTF archive stores
// of an input (archive_input.cpp: `mmar create --format ctf`).
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "archive/format.h"
#include "ctf/dict_impl.h"
#include "support/checked.h"

namespace mmar::ctf_container {

struct ElfSection {
  uint32_t name = 0, type = 0, link = 0;
  uint64_t offset = 0, size = 0, entsize = 0;
};

inline constexpr uint32_t kShtSymtab = 2;
inline constexpr uint32_t kShtNobits = 8;
inline constexpr uint32_t kShtDynsym = 11;

// The section headers of an ELF object, each range checked against the file.
struct Elf {
  bool is64 = true;
  bool little = true;
  std::vector<ElfSection> sections;
  std::span<const std::byte> shstr;

  static Result<Elf> parse(std::span<const std::byte> f, const std::string& name) {
    Elf e;
    const auto* p = f.data();
    if (f.size() < 52) return ctf_malformed(name, 0, "ELF header truncated");
    const uint8_t cls = static_cast<uint8_t>(p[4]), data = static_cast<uint8_t>(p[5]);
    if ((cls != 1 && cls != 2) || (data != 1 && data != 2))
      return ctf_malformed(name, 4, "bad ELF class or byte order");
    e.is64 = cls == 2;
    e.little = data == 1;
    if (e.is64 && f.size() < 64) return ctf_malformed(name, 0, "ELF header truncated");
    auto u16 = [&](uint64_t o) { return read_int<uint16_t>(p + o, e.little); };
    auto u32 = [&](uint64_t o) { return read_int<uint32_t>(p + o, e.little); };
    auto u64 = [&](uint64_t o) { return read_int<uint64_t>(p + o, e.little); };
    const uint64_t shoff = e.is64 ? u64(40) : u32(32);
    const uint64_t shentsize = u16(e.is64 ? 58 : 46);
    uint64_t shnum = u16(e.is64 ? 60 : 48);
    uint64_t shstrndx = u16(e.is64 ? 62 : 50);
    const uint64_t need = e.is64 ? 64 : 40;
    if (shoff == 0) return e;
    if (shentsize < need || !in_bounds(shoff, need, f.size()))
      return ctf_malformed(name, shoff, "section header table outside the file");
    if (shnum == 0) shnum = e.is64 ? u64(shoff + 32) : u32(shoff + 20);
    if (shstrndx == 0xffff) shstrndx = u32(shoff + (e.is64 ? 40 : 24));
    auto table = checked_mul(shnum, shentsize);
    if (!table || !in_bounds(shoff, *table, f.size()))
      return ctf_malformed(name, shoff, "section header table outside the file");
    for (uint64_t i = 0; i < shnum; ++i) {
      const uint64_t h = shoff + i * shentsize;
      ElfSection s;
      s.name = u32(h);
      s.type = u32(h + 4);
      if (e.is64) {
        s.offset = u64(h + 24), s.size = u64(h + 32), s.link = u32(h + 40), s.entsize = u64(h + 56);
      } else {
        s.offset = u32(h + 16), s.size = u32(h + 20), s.link = u32(h + 24), s.entsize = u32(h + 36);
      }
      if (s.type != kShtNobits && i != 0 && !in_bounds(s.offset, s.size, f.size())) {
        return ctf_malformed(name, h, "section " + std::to_string(i) + " data outside the file");
      }
      e.sections.push_back(s);
    }
    if (shstrndx < e.sections.size()) e.shstr = e.contents(f, e.sections[shstrndx]);
    return e;
  }

  std::span<const std::byte> contents(std::span<const std::byte> f, const ElfSection& s) const {
    // Ranges were checked at parse, but section 0's (sh_size may hold the
    // section count) was not: check again here.
    if (s.type == kShtNobits || !in_bounds(s.offset, s.size, f.size())) return {};
    return f.subspan(s.offset, s.size);
  }

  std::string_view section_name(const ElfSection& s) const {
    if (s.name >= shstr.size()) return {};
    const char* c = reinterpret_cast<const char*>(shstr.data()) + s.name;
    return {c, strnlen(c, shstr.size() - s.name)};
  }

  const ElfSection* find(std::string_view want) const {
    for (size_t i = 1; i < sections.size(); ++i) {
      if (section_name(sections[i]) == want) return &sections[i];
    }
    return nullptr;
  }
  const ElfSection* find_type(uint32_t type) const {
    for (size_t i = 1; i < sections.size(); ++i) {
      if (sections[i].type == type) return &sections[i];
    }
    return nullptr;
  }
};

inline bool is_archive(std::span<const std::byte> b) {
  return b.size() >= 8 && read_int<uint64_t>(b.data(), true) == ctfa::kMagic;
}

// One dict of a libctf CTF archive: its member name and bytes (views into
// the archive).
struct ArchiveDict {
  std::string name;
  std::span<const std::byte> dict;
};

// A libctf CTF archive (little-endian; see archive/format.h): its dicts in
// the order of its member table, every range checked; `model` gets its
// ctfa_model.
Result<std::vector<ArchiveDict>> archive_dicts(std::span<const std::byte> b, const std::string& name, uint64_t& model);

// What a CTF archive stores of one input (`mmar create --format ctf`):
// libctf's archives hold dicts, so an ELF object gives its .ctf section's
// dict, and an archive (a file, or an ELF .ctf section ld wrote with
// --ctf-share-types) gives each of its dicts under its name there (the
// children find their parent by that name). `model` is the data model the
// input implies: an ELF object's class (ELFCLASS32 ILP32, ELFCLASS64 LP64),
// an archive file's ctfa_model (as stored: not checked here); 0 for a raw
// dict, which records none.
struct ArchiveInput {
  uint64_t model = 0;              // ctfa::kModelILP32, kModelLP64 (an archive's as stored); 0: none
  bool from_archive = false;       // dicts named as in an archive
  std::vector<ArchiveDict> dicts;  // views into the input; name "" for a lone dict
};
Result<ArchiveInput> archive_input(std::span<const std::byte> bytes, const std::string& name);

}  // namespace mmar::ctf_container
