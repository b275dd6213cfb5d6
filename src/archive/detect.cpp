// SPDX-License-Identifier: BSD-2-Clause
#include "archive/detect.h"

#include "elf/sections.h"

#include <cstring>
#include <vector>

#include "support/checked.h"
#include "support/endian.h"

namespace mmar {

Detected detect_kind(std::span<const std::byte> bytes) {
  return detect_kind(bytes, bytes.size(), elf::span_read_at, &bytes);
}

Detected detect_kind(std::span<const std::byte> head, uint64_t size, elf::ReadAt read_at, void* ctx) {
  const auto* p = reinterpret_cast<const unsigned char*>(head.data());
  const size_t n = head.size();
  Detected d;
  if (n >= 16 && std::memcmp(p,
                             "\x7f"
                             "ELF",
                             4) == 0) {
    d.kind = Kind::elf;
    auto btf = elf::find_section(head, size, read_at, ctx, ".BTF");
    d.has_btf = btf.has_value() && btf->size > 0;
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
  // The stored BTF index (src/btf/stored_index.h): offsets or names.
  if (n >= 16 && (std::memcmp(p, "MMBTFIX2", 8) == 0 || std::memcmp(p, "MMBTFNM1", 8) == 0)) {
    d.kind = Kind::btf_index;
    return d;
  }
  // CTF preamble: magic 0xdff2 (either order), versions 1..5.
  if (n >= 4 && ((p[0] == 0xf2 && p[1] == 0xdf) || (p[0] == 0xdf && p[1] == 0xf2)) && p[2] >= 1 && p[2] <= 5) {
    d.kind = Kind::ctf;
    return d;
  }
  return d;
}

}  // namespace mmar
