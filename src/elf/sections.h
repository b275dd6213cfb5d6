// SPDX-License-Identifier: BSD-2-Clause
// Finding a named section in an ELF object (ELF32/ELF64, either byte order),
// reading only what is needed through a read-at callback, every range
// bounds-checked against the file size first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace mmar::elf {

// Reads [offset, offset+length) into out; false on a short read.
using ReadAt = bool (*)(void* ctx, uint64_t offset, size_t length, void* out);

struct SectionRange {
  uint64_t offset = 0;
  uint64_t size = 0;
  bool little_endian = true;
};

// The file range of the first section called `name`, if the section header
// table is well-formed and the range lies inside the file. `head` holds at
// least the first 64 bytes (fewer only if the file is smaller).
std::optional<SectionRange> find_section(std::span<const std::byte> head, uint64_t file_size, ReadAt read_at, void* ctx,
                                         std::string_view name);

// A ReadAt over bytes in memory; ctx is a std::span<const std::byte>*.
bool span_read_at(void* ctx, uint64_t offset, size_t length, void* out);

// The same over bytes in memory.
std::optional<SectionRange> find_section(std::span<const std::byte> file, std::string_view name);

}  // namespace mmar::elf
