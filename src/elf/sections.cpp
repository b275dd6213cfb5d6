// SPDX-License-Identifier: BSD-2-Clause
#include "elf/sections.h"

#include <cstring>
#include <vector>

#include "support/checked.h"
#include "support/endian.h"

namespace mmar::elf {

std::optional<SectionRange> find_section(std::span<const std::byte> head, uint64_t n, ReadAt read_at, void* ctx,
                                         std::string_view wanted) {
  const auto* p = reinterpret_cast<const unsigned char*>(head.data());
  if (n < 52 || head.size() < 52 ||
      std::memcmp(p,
                  "\x7f"
                  "ELF",
                  4) != 0)
    return std::nullopt;
  const bool is64 = p[4] == 2;
  const bool little = p[5] == 1;
  if ((p[4] != 1 && p[4] != 2) || (p[5] != 1 && p[5] != 2)) return std::nullopt;
  auto u16 = [&](uint64_t off) { return read_int<uint16_t>(p + off, little); };
  auto u32 = [&](uint64_t off) { return read_int<uint32_t>(p + off, little); };
  auto u64 = [&](uint64_t off) { return read_int<uint64_t>(p + off, little); };
  if (is64 && (n < 64 || head.size() < 64)) return std::nullopt;
  uint64_t shoff = is64 ? u64(40) : u32(32);
  uint64_t shentsize = u16(is64 ? 58 : 46);
  uint64_t shnum = u16(is64 ? 60 : 48);
  uint64_t shstrndx = u16(is64 ? 62 : 50);
  uint64_t need_ent = is64 ? 64 : 40;
  if (shoff == 0 || shentsize < need_ent) return std::nullopt;
  if (!in_bounds(shoff, need_ent, n)) return std::nullopt;
  std::vector<unsigned char> sh0(need_ent);
  if (!read_at(ctx, shoff, need_ent, sh0.data())) return std::nullopt;
  if (shnum == 0) {  // extended numbering: count in section 0's sh_size
    shnum = is64 ? read_int<uint64_t>(sh0.data() + 32, little) : read_int<uint32_t>(sh0.data() + 20, little);
  }
  if (shstrndx == 0xffff) shstrndx = read_int<uint32_t>(sh0.data() + (is64 ? 40 : 24), little);
  auto table_size = checked_mul(shnum, shentsize);
  if (!table_size || !in_bounds(shoff, *table_size, n) || shnum > 1u << 20 || shstrndx >= shnum) return std::nullopt;
  std::vector<unsigned char> table(*table_size);
  if (!read_at(ctx, shoff, table.size(), table.data())) return std::nullopt;
  auto sect = [&](uint64_t i, uint64_t& off, uint64_t& size, uint32_t& name) {
    const unsigned char* h = table.data() + i * shentsize;
    name = read_int<uint32_t>(h, little);
    off = is64 ? read_int<uint64_t>(h + 24, little) : read_int<uint32_t>(h + 16, little);
    size = is64 ? read_int<uint64_t>(h + 32, little) : read_int<uint32_t>(h + 20, little);
  };
  uint64_t str_off = 0, str_size = 0;
  uint32_t unused = 0;
  sect(shstrndx, str_off, str_size, unused);
  if (!in_bounds(str_off, str_size, n) || str_size > (64u << 20)) return std::nullopt;
  std::vector<unsigned char> strtab(str_size);
  if (!read_at(ctx, str_off, strtab.size(), strtab.data())) return std::nullopt;
  for (uint64_t i = 1; i < shnum; ++i) {
    uint64_t off = 0, size = 0;
    uint32_t name = 0;
    sect(i, off, size, name);
    if (name >= str_size || str_size - name < wanted.size() + 1) continue;
    if (std::memcmp(strtab.data() + name, wanted.data(), wanted.size()) != 0 || strtab[name + wanted.size()] != 0)
      continue;
    if (!in_bounds(off, size, n)) return std::nullopt;
    return SectionRange{off, size, little};
  }
  return std::nullopt;
}

bool span_read_at(void* ctx, uint64_t offset, size_t length, void* out) {
  auto* s = static_cast<std::span<const std::byte>*>(ctx);
  if (!in_bounds(offset, length, s->size())) return false;
  if (length != 0) std::memcpy(out, s->data() + offset, length);
  return true;
}

std::optional<SectionRange> find_section(std::span<const std::byte> file, std::string_view name) {
  return find_section(file.first(std::min<size_t>(file.size(), 64)), file.size(), span_read_at, &file, name);
}

}  // namespace mmar::elf
