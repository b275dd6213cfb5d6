// SPDX-License-Identifier: BSD-2-Clause
// The stored BTF index of docs/FORMAT.md, "BTF in archives": two archive
// members per BTF member NAME, both of kind btf_index linking to NAME.
//
//   NAME.mmidx    type offsets, so that opening needs no scan
//   NAME.mmnames  named types sorted by a hash of their names, so that one
//                 lookup is one interpolated read; its entry count follows
//                 from its size, so a reader that does not map the archive
//                 goes straight to the right place.
#pragma once

#include <xxhash.h>

#include <cstdint>
#include <string_view>

#include "support/endian.h"

namespace mmar::btf_index {

inline constexpr unsigned char kOffsetsMagic[8] = {'M', 'M', 'B', 'T', 'F', 'I', 'X', '2'};
inline constexpr unsigned char kNamesMagic[8] = {'M', 'M', 'B', 'T', 'F', 'N', 'M', '1'};
inline constexpr const char* kOffsetsSuffix = ".mmidx";
inline constexpr const char* kNamesSuffix = ".mmnames";

struct OffsetsHeader {
  unsigned char magic[8];  // kOffsetsMagic
  ul64 binding;            // XXH3 of the BTF member's bytes
  ul32 count;              // types of that BTF (not its base's)
  ul32 reserved;           // zero
  // then count x ul32: offset of each type record in the type section
};
static_assert(sizeof(OffsetsHeader) == 24);

struct NamesHeader {
  unsigned char magic[8];  // kNamesMagic
  ul64 binding;            // XXH3 of the BTF member's bytes
  // then NameEntry x ((size - 16) / 24), sorted by (hash, id)
};
static_assert(sizeof(NamesHeader) == 16);

// name_at: where the name's bytes are, from the start of the BTF data that
// holds them; kNameInBase set when that is the base's (a split type named by
// a base string).
inline constexpr uint32_t kNameInBase = 0x80000000u;

struct NameEntry {
  ul64 hash;          // name_hash(name, binding)
  ul32 id;            // type ID
  ul32 info;          // the record's info word (kind, vlen, kind_flag)
  ul32 size_or_type;  // the record's size/type word
  ul32 name_at;       // see kNameInBase
};
static_assert(sizeof(NameEntry) == 24);

// Seeded with the binding: an index left over from other bytes finds nothing.
inline uint64_t name_hash(std::string_view name, uint64_t binding) {
  return XXH3_64bits_withSeed(name.data(), name.size(), binding);
}

}  // namespace mmar::btf_index
