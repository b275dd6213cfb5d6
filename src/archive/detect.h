// SPDX-License-Identifier: BSD-2-Clause
// Content detection: what kind of bytes a member holds.
#pragma once

#include <span>

#include "elf/sections.h"
#include "mmar/archive.h"

namespace mmar {

struct Detected {
  Kind kind = Kind::data;
  bool has_btf = false;  // ELF with a .BTF section
};

// Looks at magic numbers (and, for ELF, the section headers); never fails:
// anything unrecognised or inconsistent is Kind::data.
Detected detect_kind(std::span<const std::byte> bytes);

// The same for a file read through `read_at(offset, length, out)` (returns
// false on a short read), of `size` bytes, whose first bytes are `head`.
Detected detect_kind(std::span<const std::byte> head, uint64_t size, elf::ReadAt read_at, void* ctx);

// foreign_format_of() is declared in mmar/archive.h.
inline constexpr uint64_t kIsoMagicOffset = 0x8001;

}  // namespace mmar
