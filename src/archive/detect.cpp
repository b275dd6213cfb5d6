#include "archive/detect.h"

#include <cstring>

#include "support/checked.h"
#include "support/endian.h"

namespace mmar {

namespace {

// Does a well-formed section header table name a section ".BTF"?
// Handles ELF32/ELF64 of either byte order; every read is bounds-checked.
bool elf_has_btf(std::span<const std::byte> b) {
  const auto* p = reinterpret_cast<const unsigned char*>(b.data());
  const uint64_t n = b.size();
  if (n < 52) return false;
  const bool is64 = p[4] == 2;
  const bool little = p[5] == 1;
  if ((p[4] != 1 && p[4] != 2) || (p[5] != 1 && p[5] != 2)) return false;
  auto u16 = [&](uint64_t off) { return read_int<uint16_t>(p + off, little); };
  auto u32 = [&](uint64_t off) { return read_int<uint32_t>(p + off, little); };
  auto u64 = [&](uint64_t off) { return read_int<uint64_t>(p + off, little); };
  if (is64 && n < 64) return false;
  uint64_t shoff = is64 ? u64(40) : u32(32);
  uint64_t shentsize = u16(is64 ? 58 : 46);
  uint64_t shnum = u16(is64 ? 60 : 48);
  uint64_t shstrndx = u16(is64 ? 62 : 50);
  uint64_t need_ent = is64 ? 64 : 40;
  if (shoff == 0 || shentsize < need_ent) return false;
  if (shnum == 0) {  // extended numbering: count in section 0's sh_size
    if (!in_bounds(shoff, need_ent, n)) return false;
    shnum = is64 ? u64(shoff + 32) : u32(shoff + 20);
  }
  auto table = checked_mul(shnum, shentsize);
  if (!table || !in_bounds(shoff, *table, n) || shnum > 1u << 20) return false;
  if (shstrndx == 0xffff) shstrndx = u32(shoff + (is64 ? 40 : 24));  // sh_link of section 0
  if (shstrndx >= shnum) return false;
  auto sect = [&](uint64_t i, uint64_t& off, uint64_t& size, uint32_t& name) {
    uint64_t h = shoff + i * shentsize;
    name = u32(h);
    off = is64 ? u64(h + 24) : u32(h + 16);
    size = is64 ? u64(h + 32) : u32(h + 20);
  };
  uint64_t str_off = 0, str_size = 0;
  uint32_t unused = 0;
  sect(shstrndx, str_off, str_size, unused);
  if (!in_bounds(str_off, str_size, n)) return false;
  for (uint64_t i = 1; i < shnum; ++i) {
    uint64_t off = 0, size = 0;
    uint32_t name = 0;
    sect(i, off, size, name);
    if (name >= str_size || str_size - name < 5) continue;
    if (std::memcmp(p + str_off + name, ".BTF", 5) == 0) return size > 0 && in_bounds(off, size, n);
  }
  return false;
}

}  // namespace

Detected detect_kind(std::span<const std::byte> bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  Detected d;
  if (n >= 16 && std::memcmp(p, "\x7f" "ELF", 4) == 0) {
    d.kind = Kind::elf;
    d.has_btf = elf_has_btf(bytes);
    return d;
  }
  // BTF header: magic 0xeB9F in the file's byte order, version 1, hdr_len >= 24.
  if (n >= 24 && p[2] == 1) {
    bool le = p[0] == 0x9f && p[1] == 0xeb;
    bool be = p[0] == 0xeb && p[1] == 0x9f;
    if ((le || be) && read_int<uint32_t>(p + 4, le) >= 24) {
      d.kind = Kind::btf;
      return d;
    }
  }
  // CTF preamble: magic 0xdff2 (either order), versions 1..5.
  if (n >= 4 && ((p[0] == 0xf2 && p[1] == 0xdf) || (p[0] == 0xdf && p[1] == 0xf2)) && p[2] >= 1 &&
      p[2] <= 5) {
    d.kind = Kind::ctf;
    return d;
  }
  return d;
}

}  // namespace mmar
