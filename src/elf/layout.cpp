// SPDX-License-Identifier: BSD-2-Clause
#include "elf/layout.h"

#include <elf.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "support/checked.h"
#include "support/endian.h"

namespace mmar::elf {

namespace {

// Interpreting an object (segments mapped to run) is implemented for the
// machines below; on any other architecture the library still builds and
// plan() refuses with Errc::unsupported (EM_NONE matches no object).
#if defined(__x86_64__)
constexpr uint16_t kHostMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr uint16_t kHostMachine = EM_AARCH64;
#else
constexpr uint16_t kHostMachine = EM_NONE;
#endif

constexpr uint64_t kMinFixedAddress = 0x10000;

Error invalid(const std::string& name, const std::string& what) {
  return Error(Errc::malformed, name + ": " + what, Error::kNoOffset, EINVAL);
}
Error unsupported(const std::string& name, const std::string& what) {
  return Error(Errc::unsupported, name + ": " + what, Error::kNoOffset, ENOTSUP);
}

uint16_t u16(std::span<const std::byte> b, size_t at) { return read_int<uint16_t>(b.data() + at, true); }
uint32_t u32(std::span<const std::byte> b, size_t at) { return read_int<uint32_t>(b.data() + at, true); }
uint64_t u64(std::span<const std::byte> b, size_t at) { return read_int<uint64_t>(b.data() + at, true); }

// Identification: magic, then class/byte order/machine of this process.
Result<void> check_ident(std::span<const std::byte> head, const std::string& name) {
  if (head.size() < EI_NIDENT || std::memcmp(head.data(), ELFMAG, SELFMAG) != 0) {
    return invalid(name, "not an ELF object");
  }
  const auto cls = static_cast<uint8_t>(head[EI_CLASS]);
  const auto data = static_cast<uint8_t>(head[EI_DATA]);
  if (cls != ELFCLASS32 && cls != ELFCLASS64) return invalid(name, "ELF class " + std::to_string(cls) + " is invalid");
  if (data != ELFDATA2LSB && data != ELFDATA2MSB) {
    return invalid(name, "ELF byte order " + std::to_string(data) + " is invalid");
  }
  if (cls != ELFCLASS64) return unsupported(name, "a 32-bit ELF object (this process is 64-bit)");
  // The objects mmar maps are x86-64 or AArch64 ones: always little-endian,
  // whatever the host reading them (fields are decoded as such).
  if (data != ELFDATA2LSB) return unsupported(name, "a big-endian ELF object (only little-endian ones are mapped)");
  if (head.size() < sizeof(Elf64_Ehdr)) return invalid(name, "truncated ELF header");
  return success();
}

}  // namespace

Result<uint64_t> header_bytes_needed(std::span<const std::byte> ehdr, uint64_t object_size, const std::string& name) {
  MMAR_TRY(check_ident(ehdr, name));
  if (object_size < sizeof(Elf64_Ehdr)) return invalid(name, "truncated ELF header");
  const uint64_t phoff = u64(ehdr, offsetof(Elf64_Ehdr, e_phoff));
  const uint16_t phnum = u16(ehdr, offsetof(Elf64_Ehdr, e_phnum));
  auto end = checked_add(phoff, uint64_t{phnum} * sizeof(Elf64_Phdr));
  if (!end || *end > object_size) return uint64_t{sizeof(Elf64_Ehdr)};  // plan() reports it
  return std::max<uint64_t>(*end, sizeof(Elf64_Ehdr));
}

Result<Layout> plan(std::span<const std::byte> head, uint64_t object_size, uint64_t page_size, bool interpret,
                    const std::string& name) {
  if (head.size() > object_size) head = head.first(object_size);
  MMAR_TRY(check_ident(head, name));
  Layout l;
  l.type = u16(head, offsetof(Elf64_Ehdr, e_type));
  const uint16_t machine = u16(head, offsetof(Elf64_Ehdr, e_machine));
  if (!interpret) return l;
  if (kHostMachine == EM_NONE) {
    return unsupported(name, "mapping ELF objects to run is implemented on x86-64 and AArch64 only");
  }
  if (machine != kHostMachine) {
    return unsupported(name, "an ELF object for machine " + std::to_string(machine) + " (this process runs on " +
                                 std::to_string(kHostMachine) + ")");
  }
  if (u32(head, offsetof(Elf64_Ehdr, e_version)) != EV_CURRENT) return invalid(name, "unknown ELF version");
  if (l.type == ET_REL || l.type == ET_CORE) return l;  // one read-only mapping
  if (l.type != ET_EXEC && l.type != ET_DYN) {
    return invalid(name,
                   "ELF type " + std::to_string(l.type) + " is not an executable, shared, relocatable or core object");
  }
  l.entry = u64(head, offsetof(Elf64_Ehdr, e_entry));
  l.phoff = u64(head, offsetof(Elf64_Ehdr, e_phoff));
  l.phnum = u16(head, offsetof(Elf64_Ehdr, e_phnum));
  const uint16_t phentsize = u16(head, offsetof(Elf64_Ehdr, e_phentsize));
  if (l.phnum == 0) return invalid(name, "no program headers");
  if (phentsize != sizeof(Elf64_Phdr)) {
    return invalid(name, "program header size " + std::to_string(phentsize) + " (expected 56)");
  }
  auto ph_end = checked_add(l.phoff, uint64_t{l.phnum} * sizeof(Elf64_Phdr));
  if (!ph_end || *ph_end > object_size) return invalid(name, "program headers outside the object");
  if (*ph_end > head.size()) return invalid(name, "program headers not read");
  if (page_size == 0 || (page_size & (page_size - 1)) != 0) return invalid(name, "page size is not a power of two");

  l.max_align = page_size;
  for (uint16_t i = 0; i < l.phnum; ++i) {
    const size_t at = static_cast<size_t>(l.phoff) + size_t{i} * sizeof(Elf64_Phdr);
    const uint32_t type = u32(head, at + offsetof(Elf64_Phdr, p_type));
    const uint32_t pflags = u32(head, at + offsetof(Elf64_Phdr, p_flags));
    const uint64_t offset = u64(head, at + offsetof(Elf64_Phdr, p_offset));
    const uint64_t vaddr = u64(head, at + offsetof(Elf64_Phdr, p_vaddr));
    const uint64_t filesz = u64(head, at + offsetof(Elf64_Phdr, p_filesz));
    const uint64_t memsz = u64(head, at + offsetof(Elf64_Phdr, p_memsz));
    const uint64_t align = u64(head, at + offsetof(Elf64_Phdr, p_align));
    const std::string which = "program header " + std::to_string(i);
    auto file_end = checked_add(offset, filesz);
    if (type == PT_LOAD) {
      if (filesz > memsz) return invalid(name, which + ": p_filesz is larger than p_memsz");
      if (!file_end || *file_end > object_size) return invalid(name, which + ": segment data outside the object");
      auto mem_end = checked_add(vaddr, memsz);
      if (!mem_end || *mem_end > (uint64_t{1} << 47) + page_size) {
        return invalid(name, which + ": segment outside the address space");
      }
      if (align > 1 && (align & (align - 1)) != 0) return invalid(name, which + ": p_align is not a power of two");
      if ((vaddr - offset) % page_size != 0) {
        return invalid(name, which + ": p_vaddr and p_offset differ modulo the page size");
      }
      if (memsz == 0) continue;
      if (!l.loads.empty() && vaddr < l.loads.back().vaddr + l.loads.back().memsz) {
        return invalid(name, which + ": segments not in ascending, non-overlapping order");
      }
      LoadSegment s;
      s.vaddr = vaddr;
      s.memsz = memsz;
      s.offset = offset;
      s.filesz = filesz;
      s.align = align;
      s.prot =
          ((pflags & PF_R) ? PROT_READ : 0) | ((pflags & PF_W) ? PROT_WRITE : 0) | ((pflags & PF_X) ? PROT_EXEC : 0);
      l.executable = l.executable || (pflags & PF_X) != 0;
      // Alignments above a gigabyte are refused rather than reserved for.
      if (align > (uint64_t{1} << 30)) return invalid(name, which + ": p_align above 1 GiB");
      l.max_align = std::max(l.max_align, align);
      l.loads.push_back(s);
    } else if (type == PT_PHDR) {
      l.phdr_vaddr = vaddr;
    } else if (type == PT_INTERP) {
      if (!file_end || *file_end > object_size || filesz < 2 || filesz > 4096) {
        return invalid(name, which + ": interpreter path outside the object or of a bad size");
      }
      l.interp_offset = offset;
      l.interp_size = filesz;
    }
  }
  if (l.loads.empty()) return invalid(name, "no loadable segments");
  l.lo = l.loads.front().vaddr & ~(page_size - 1);
  // The kernel keeps the lowest 64 KiB unmapped (vm.mmap_min_addr) so that
  // null pointers fault; root could map there, and must not by accident.
  if (l.type == ET_EXEC && l.lo < kMinFixedAddress) {
    return invalid(name, "segments below address 0x10000 (the null-pointer guard)");
  }
  const LoadSegment& last = l.loads.back();
  l.hi = (last.vaddr + last.memsz + page_size - 1) & ~(page_size - 1);
  if (!l.phdr_vaddr) {
    // No PT_PHDR: the headers are in memory if a load maps their file range.
    for (const LoadSegment& s : l.loads) {
      if (l.phoff >= s.offset && *ph_end <= s.offset + s.filesz) {
        l.phdr_vaddr = s.vaddr + (l.phoff - s.offset);
        break;
      }
    }
  }
  return l;
}

}  // namespace mmar::elf
