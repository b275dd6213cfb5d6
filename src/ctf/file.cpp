// SPDX-License-Identifier: BSD-2-Clause
// Opening what `objdump --ctf` opens: an ELF object's .ctf section (a dict
// or a libctf CTF archive) with the object's symbol table, a raw dict, or a
// CTF archive file.
#include <cstring>

#include "archive/format.h"
#include "ctf/dict_impl.h"
#include "support/checked.h"

namespace mmar {

namespace {

Error bad(const std::string& name, uint64_t offset, const std::string& what) {
  return ctf_malformed(name, offset, what);
}

struct ElfSection {
  uint32_t name = 0, type = 0, link = 0;
  uint64_t offset = 0, size = 0, entsize = 0;
};

constexpr uint32_t kShtSymtab = 2;
constexpr uint32_t kShtNobits = 8;
constexpr uint32_t kShtDynsym = 11;

// The section headers of an ELF object, each range checked against the file.
struct Elf {
  bool is64 = true;
  bool little = true;
  std::vector<ElfSection> sections;
  std::span<const std::byte> shstr;

  static Result<Elf> parse(std::span<const std::byte> f, const std::string& name) {
    Elf e;
    const auto* p = f.data();
    if (f.size() < 52) return bad(name, 0, "ELF header truncated");
    const uint8_t cls = static_cast<uint8_t>(p[4]), data = static_cast<uint8_t>(p[5]);
    if ((cls != 1 && cls != 2) || (data != 1 && data != 2)) return bad(name, 4, "bad ELF class or byte order");
    e.is64 = cls == 2;
    e.little = data == 1;
    if (e.is64 && f.size() < 64) return bad(name, 0, "ELF header truncated");
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
      return bad(name, shoff, "section header table outside the file");
    if (shnum == 0) shnum = e.is64 ? u64(shoff + 32) : u32(shoff + 20);
    if (shstrndx == 0xffff) shstrndx = u32(shoff + (e.is64 ? 40 : 24));
    auto table = checked_mul(shnum, shentsize);
    if (!table || !in_bounds(shoff, *table, f.size())) return bad(name, shoff, "section header table outside the file");
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
        return bad(name, h, "section " + std::to_string(i) + " data outside the file");
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

bool is_archive(std::span<const std::byte> b) {
  return b.size() >= 8 && read_int<uint64_t>(b.data(), true) == ctfa::kMagic;
}

struct RawMember {
  std::string name;
  std::span<const std::byte> dict;
};

// A libctf CTF archive (little-endian; see archive/format.h): its dicts in
// the order of its member table.
Result<std::vector<RawMember>> archive_members(std::span<const std::byte> b, const std::string& name, uint64_t& model) {
  if (b.size() < sizeof(ctfa::Header)) return bad(name, 0, "CTF archive header truncated");
  const auto h = load<ctfa::Header>(b.data());
  model = h.ctfa_model;
  const uint64_t n = h.ctfa_ndicts;
  auto mods = checked_mul(n, sizeof(ctfa::Modent));
  if (!mods || !in_bounds(sizeof(ctfa::Header), *mods, b.size()))
    return bad(name, 16, "CTF archive member table outside the archive");
  std::vector<RawMember> out;
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t at = sizeof(ctfa::Header) + i * sizeof(ctfa::Modent);
    const auto m = load<ctfa::Modent>(b.data() + at);
    auto name_at = checked_add(h.ctfa_names, m.name_offset);
    if (!name_at || *name_at >= b.size())
      return bad(name, at, "CTF archive member " + std::to_string(i) + ": name outside the archive");
    const char* s = reinterpret_cast<const char*>(b.data()) + *name_at;
    const size_t len = strnlen(s, b.size() - *name_at);
    if (len == b.size() - *name_at)
      return bad(name, *name_at, "CTF archive member " + std::to_string(i) + ": unterminated name");
    auto dict_at = checked_add(h.ctfa_ctfs, m.ctf_offset);
    if (!dict_at || !in_bounds(*dict_at, 8, b.size()))
      return bad(name, at + 8, "CTF archive member " + std::to_string(i) + ": dict outside the archive");
    const uint64_t size = read_int<uint64_t>(b.data() + *dict_at, true);
    if (!in_bounds(*dict_at + 8, size, b.size()))
      return bad(name, *dict_at, "CTF archive member " + std::to_string(i) + ": dict size runs past the archive");
    out.push_back({std::string(s, len), b.subspan(*dict_at + 8, size)});
  }
  return out;
}

// The preamble flags of a dict, or of an archive's first dict (libctf's
// ctf_arc_bufpreamble): decides which symbol table goes with it.
uint8_t preamble_flags(std::span<const std::byte> ctf) {
  if (is_archive(ctf)) {
    if (ctf.size() < sizeof(ctfa::Header)) return 0;
    const auto h = load<ctfa::Header>(ctf.data());
    const uint64_t at = h.ctfa_ctfs + 8;
    if (h.ctfa_ctfs > ctf.size() || at + 4 > ctf.size()) return 0;
    return static_cast<uint8_t>(ctf[at + 3]);
  }
  return ctf.size() >= 4 ? static_cast<uint8_t>(ctf[3]) : 0;
}

bool has_parent_name(std::span<const std::byte> dict) {
  if (dict.size() < 12) return false;
  const bool little = read_int<uint16_t>(dict.data(), true) == ctf::kMagic;
  return read_int<uint32_t>(dict.data() + 8, little) != 0;
}

// `part` (a view into `whole`) as Bytes sharing whole's owner; an empty
// part (a section with no contents) is an empty Bytes.
Bytes slice(const Bytes& whole, std::span<const std::byte> part) {
  if (part.empty()) return whole.subspan(0, 0);
  return whole.subspan(static_cast<size_t>(part.data() - whole.data()), part.size());
}

}  // namespace

Result<CtfContainer> ctf_container(Bytes bytes, const std::string& name) {
  CtfContainer c;
  const std::span<const std::byte> all = bytes.span();
  std::span<const std::byte> ctf = all;
  if (all.size() >= 4 && std::memcmp(all.data(),
                                     "\x7f"
                                     "ELF",
                                     4) == 0) {
    MMAR_ASSIGN(Elf elf, Elf::parse(all, name));
    const ElfSection* sect = elf.find(".ctf");
    if (sect == nullptr) return Error(Errc::not_found, name + ": no .ctf section");
    ctf = elf.contents(all, *sect);
    c.elf = true;
    const bool dynstr = (preamble_flags(ctf) & ctf::kFlagDynStr) != 0;
    const ElfSection* sym = elf.find_type(dynstr ? kShtDynsym : kShtSymtab);
    c.symbols.elf64 = elf.is64;
    c.symbols.little = elf.little;
    if (sym != nullptr && sym->size != 0 && sym->entsize != 0) {
      if (sym->entsize != (elf.is64 ? 24u : 16u))
        return bad(name, sym->offset, "symbol table entry size " + std::to_string(sym->entsize));
      c.symbols.symtab = elf.contents(all, *sym);
      // libctf's data model for a dict with a symbol table: the table's
      // (ELF32 symbols: ILP32); without one, the host's (LP64 here).
      c.pointer_size = elf.is64 ? 8 : 4;
      if (sym->link < elf.sections.size()) c.symbols.strtab = elf.contents(all, elf.sections[sym->link]);
    } else if (const ElfSection* str = elf.find(dynstr ? ".dynstr" : ".strtab")) {
      c.symbols.strtab = elf.contents(all, *str);
    }
  }
  if (is_archive(ctf)) {
    uint64_t model = 0;
    MMAR_ASSIGN(auto members, archive_members(ctf, name, model));
    c.archive = true;
    c.pointer_size = model == ctfa::kModelILP32 ? 4 : 8;
    for (auto& m : members) c.dicts.push_back({std::move(m.name), slice(bytes, m.dict)});
    return c;
  }
  c.dicts.push_back({".ctf", slice(bytes, ctf)});
  return c;
}

Result<CtfFile> ctf_open_bytes(Bytes bytes, std::string name, const CtfFileOptions& options) {
  CtfFile file;
  file.bytes = bytes;
  MMAR_ASSIGN(CtfContainer c, ctf_container(bytes, name));
  CtfOpenOptions o;
  o.symbols = c.symbols;
  o.pointer_size = c.pointer_size;
  if (!c.archive) {
    MMAR_ASSIGN(CtfDict d, CtfDict::open(c.dicts[0].bytes, name, o));
    file.dicts.push_back({".ctf", std::move(d)});
    return file;
  }
  std::optional<CtfDict> parent;
  for (const auto& m : c.dicts) {
    if (m.name != options.parent_member) continue;
    MMAR_ASSIGN(CtfDict p, CtfDict::open(m.bytes, name + ": " + m.name, o));
    parent = std::move(p);
    break;
  }
  if (!parent) {  // objdump refuses the file likewise ("Name not found in CTF archive")
    return Error(Errc::not_found, name + ": no member '" + options.parent_member + "' (the parent) in the CTF archive");
  }
  for (const auto& m : c.dicts) {
    if (m.name == options.parent_member) {
      file.dicts.push_back({m.name, *parent});
      continue;
    }
    CtfOpenOptions mo = o;
    if (has_parent_name(m.bytes.span())) mo.parent = &*parent;
    MMAR_ASSIGN(CtfDict d, CtfDict::open(m.bytes, name + ": " + m.name, mo));
    file.dicts.push_back({m.name, std::move(d)});
  }
  return file;
}

Result<CtfFile> ctf_open_file(const std::string& path, const CtfFileOptions& options) {
  MMAR_ASSIGN(Source src, Source::open(path));
  MMAR_ASSIGN(Bytes bytes, src.read(0, src.size()));
  return ctf_open_bytes(std::move(bytes), path, options);
}

}  // namespace mmar
