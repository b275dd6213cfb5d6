// Content detection: what kind of bytes a member holds.
#pragma once

#include <span>

#include "mmar/archive.h"

namespace mmar {

struct Detected {
  Kind kind = Kind::data;
  bool has_btf = false;  // ELF with a .BTF section
};

// Looks at magic numbers (and, for ELF, the section headers); never fails:
// anything unrecognised or inconsistent is Kind::data.
Detected detect_kind(std::span<const std::byte> bytes);

}  // namespace mmar
