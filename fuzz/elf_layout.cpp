// SPDX-License-Identifier: BSD-2-Clause
// libFuzzer target: the ELF header / program header planner, and the mapper
// on top of it. Input: the object's bytes. Invariants, not just "no crash":
//  - a plan for ET_EXEC/ET_DYN has loads in ascending, non-overlapping order,
//    p_filesz <= p_memsz, file ranges inside the object, a page-aligned span
//    covering every load, and a power-of-two alignment of at least a page;
//  - when the span is small, mapping it (from a memory file) succeeds or
//    fails with an errno; on success every load's file bytes are in memory
//    at bias + p_vaddr and the rest of p_memsz reads as zero; mappings are
//    reported in address order without overlap.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <span>

#include "elf/layout.h"
#include "mmar/elf_map.h"

namespace {

constexpr uint64_t kPage = 4096;

void check_plan(const mmar::elf::Layout& l, uint64_t size) {
  if (l.type != 2 && l.type != 3) return;  // ET_EXEC, ET_DYN
  if (l.loads.empty()) std::abort();
  if (l.max_align < kPage || (l.max_align & (l.max_align - 1)) != 0) std::abort();
  if (l.lo % kPage != 0 || l.hi % kPage != 0 || l.lo > l.hi) std::abort();
  uint64_t prev_end = 0;
  for (const auto& s : l.loads) {
    if (s.filesz > s.memsz || s.offset + s.filesz > size || s.offset + s.filesz < s.offset) std::abort();
    if (s.vaddr < prev_end || s.vaddr < l.lo || s.vaddr + s.memsz > l.hi) std::abort();
    prev_end = s.vaddr + s.memsz;
  }
}

void check_mapping(const mmar::elf::Layout& l, const uint8_t* data, size_t size) {
  if (l.hi - l.lo > (64u << 20)) return;
  int fd = memfd_create("fuzz-elf", MFD_CLOEXEC);
  if (fd < 0) return;
  if (write(fd, data, size) != static_cast<ssize_t>(size)) {
    close(fd);
    return;
  }
  auto m = mmar::map_object(fd, 0, size, mmar::kMapInterpret, 0, "fuzz");
  close(fd);
  if (!m.ok()) {
    if (m.error().sys_errno() == 0) std::abort();  // every failure carries an errno
    return;
  }
  uint64_t prev = 0;
  for (const auto& r : m->mappings()) {
    if (r.addr < prev || r.size == 0) std::abort();
    prev = r.addr + r.size;
  }
  for (const auto& s : l.loads) {
    const auto* mem = reinterpret_cast<const uint8_t*>(m->load_bias() + s.vaddr);
    if ((s.prot & PROT_READ) == 0 || s.memsz == 0) continue;
    if (std::memcmp(mem, data + s.offset, s.filesz) != 0) std::abort();
    for (uint64_t i = s.filesz; i < s.memsz; ++i) {
      if (mem[i] != 0) std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  (void)mmar::elf::header_bytes_needed(bytes, size, "fuzz");
  for (bool interpret : {false, true}) {
    auto plan = mmar::elf::plan(bytes, size, kPage, interpret, "fuzz");
    if (!plan.ok()) {
      if (plan.error().sys_errno() == 0) std::abort();
      continue;
    }
    if (!interpret) continue;
    check_plan(*plan, size);
    if ((plan->type == 2 || plan->type == 3) && getenv("MMAR_FUZZ_NO_MAP") == nullptr) check_mapping(*plan, data, size);
  }
  return 0;
}
