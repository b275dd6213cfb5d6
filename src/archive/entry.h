// SPDX-License-Identifier: BSD-2-Clause
// Decoding and checking of the mmar superblock and member entries, shared by
// the mapped reader (reader.cpp) and the pread lookup (probe.cpp).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "archive/format.h"
#include "mmar/archive.h"

namespace mmar {

struct SuperblockChoice {
  format::Superblock sb{};
  int slot = 0;
  uint64_t names_size = 0;  // index bytes after the member table
};

// The superblock in use among the two slots in `head` (128 bytes), with
// every check a reader makes at open; the index must lie within file_size.
Result<SuperblockChoice> choose_superblock(const std::string& file, const std::byte* head, uint64_t file_size);

struct EntryContext {
  const std::string& file;  // for messages
  uint32_t count;           // members in the table (for links)
  uint64_t file_size;       // member data must lie below this
  uint64_t align;           // the archive's page alignment
  uint64_t entry_offset;    // file offset of the entry (for messages)
  // false: entry_offset is a compressed index's, the entry's fields have no
  // file offset of their own (messages name the index's).
  bool exact = true;
};

// Entry `index` with its name: every rule of docs/FORMAT.md checked; the
// Member's name views `name`.
// `attr_bytes`: what follows the name in the name table (the attribute
// record when the entry has kFlagAttrs; it may run on past the record).
Result<Member> decode_entry(const format::Entry& e, uint32_t index, std::string_view name, const EntryContext& ctx,
                            std::span<const std::byte> attr_bytes = {});

}  // namespace mmar
