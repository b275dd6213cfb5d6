// SPDX-License-Identifier: BSD-2-Clause
// Opening what `objdump --ctf` opens: an ELF object's .ctf section (a dict
// or a libctf CTF archive) with the object's symbol table, a raw dict, or a
// CTF archive file.
#include <cstring>

#include "archive/format.h"
#include "ctf/container.h"
#include "ctf/dict_impl.h"
#include "support/checked.h"

namespace mmar {

namespace ctf_container {

Result<std::vector<ArchiveDict>> archive_dicts(std::span<const std::byte> b, const std::string& name, uint64_t& model) {
  if (b.size() < sizeof(ctfa::Header)) return ctf_malformed(name, 0, "CTF archive header truncated");
  const auto h = load<ctfa::Header>(b.data());
  model = h.ctfa_model;
  const uint64_t n = h.ctfa_ndicts;
  auto mods = checked_mul(n, sizeof(ctfa::Modent));
  if (!mods || !in_bounds(sizeof(ctfa::Header), *mods, b.size()))
    return ctf_malformed(name, 16, "CTF archive member table outside the archive");
  std::vector<ArchiveDict> out;
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t at = sizeof(ctfa::Header) + i * sizeof(ctfa::Modent);
    const auto m = load<ctfa::Modent>(b.data() + at);
    auto name_at = checked_add(h.ctfa_names, m.name_offset);
    if (!name_at || *name_at >= b.size())
      return ctf_malformed(name, at, "CTF archive member " + std::to_string(i) + ": name outside the archive");
    const char* s = reinterpret_cast<const char*>(b.data()) + *name_at;
    const size_t len = strnlen(s, b.size() - *name_at);
    if (len == b.size() - *name_at)
      return ctf_malformed(name, *name_at, "CTF archive member " + std::to_string(i) + ": unterminated name");
    auto dict_at = checked_add(h.ctfa_ctfs, m.ctf_offset);
    if (!dict_at || !in_bounds(*dict_at, 8, b.size()))
      return ctf_malformed(name, at + 8, "CTF archive member " + std::to_string(i) + ": dict outside the archive");
    const uint64_t size = read_int<uint64_t>(b.data() + *dict_at, true);
    if (!in_bounds(*dict_at + 8, size, b.size()))
      return ctf_malformed(name, *dict_at,
                           "CTF archive member " + std::to_string(i) + ": dict size runs past the archive");
    out.push_back({std::string(s, len), b.subspan(*dict_at + 8, size)});
  }
  return out;
}
}  // namespace ctf_container

namespace {

using ctf_container::archive_dicts;
using ctf_container::Elf;
using ctf_container::ElfSection;
using ctf_container::is_archive;
using ctf_container::kShtDynsym;
using ctf_container::kShtSymtab;

Error bad(const std::string& name, uint64_t offset, const std::string& what) {
  return ctf_malformed(name, offset, what);
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

Result<CtfContainer> ctf_open_container(Bytes bytes, const std::string& name) {
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
      // libctf (ctf_bufopen) takes the data model from the symbol table's
      // entry size: a 32-bit object's dict has 4-byte pointers. Without a
      // symbol table it keeps its native LP64; an archive's ctfa_model
      // overrides both (below).
      c.pointer_size = elf.is64 ? 8 : 4;
      if (sym->link < elf.sections.size()) c.symbols.strtab = elf.contents(all, elf.sections[sym->link]);
    } else if (const ElfSection* str = elf.find(dynstr ? ".dynstr" : ".strtab")) {
      c.symbols.strtab = elf.contents(all, *str);
    }
  }
  if (is_archive(ctf)) {
    uint64_t model = 0;
    MMAR_ASSIGN(auto members, archive_dicts(ctf, name, model));
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
  MMAR_ASSIGN(CtfContainer c, ctf_open_container(bytes, name));
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
