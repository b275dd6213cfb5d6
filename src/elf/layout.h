// SPDX-License-Identifier: BSD-2-Clause
// The loader's plan for an ELF object, from its ELF header and program
// headers alone: validated before anything is mapped (checked arithmetic;
// p_filesz <= p_memsz; segments inside the object, ascending, not
// overlapping, congruent to the page size). Pure: no system calls, so the
// libFuzzer target drives it directly.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mmar/result.h"

namespace mmar::elf {

struct LoadSegment {
  uint64_t vaddr = 0, memsz = 0, offset = 0, filesz = 0, align = 0;
  uint32_t prot = 0;  // PROT_*
};

struct Layout {
  uint16_t type = 0;  // ET_*
  uint64_t entry = 0;
  uint64_t phoff = 0;
  uint16_t phnum = 0;
  std::vector<LoadSegment> loads;               // ascending by vaddr
  std::optional<uint64_t> phdr_vaddr;           // where the program headers are in memory (unbiased)
  uint64_t interp_offset = 0, interp_size = 0;  // PT_INTERP (size 0: none)
  uint64_t lo = 0, hi = 0;                      // page-aligned span of the loads (unbiased)
  uint64_t max_align = 0;                       // the largest p_align, at least the page size
  bool executable = false;                      // some load is PROT_EXEC
};

// The bytes of the ELF header and program headers an ELF64 object needs
// read: [0, phdrs_end). Errors as for plan().
Result<uint64_t> header_bytes_needed(std::span<const std::byte> ehdr, uint64_t object_size, const std::string& name);

// `head` holds at least header_bytes_needed() bytes of the object.
// interpret: validate the program headers for mapping (ET_EXEC/ET_DYN);
// otherwise only the identification is checked. Errors carry sys_errno:
// EINVAL (not ELF, malformed), ENOTSUP (class, byte order, machine).
Result<Layout> plan(std::span<const std::byte> head, uint64_t object_size, uint64_t page_size, bool interpret,
                    const std::string& name);

}  // namespace mmar::elf
