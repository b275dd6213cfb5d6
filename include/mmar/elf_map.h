// SPDX-License-Identifier: BSD-2-Clause
// Mapping ELF objects the way the runtime linker does (the `mmapfd` idea in
// user space), from a plain file or from inside an archive, and running a
// program straight from an archive.
//
// map_object() takes an fd and a byte range within it (so an archive member
// can be given), and either maps the whole object as one private read-only
// mapping (the default) or, with kMapInterpret, maps an executable or shared
// object's PT_LOAD segments: ET_EXEC at the addresses its program headers
// give, ET_DYN inside a reservation of its whole span at an address the
// kernel picks (aligned to the largest p_align), each segment with its
// protections, the tail of the last file page zeroed and anonymous memory
// for the rest of .bss, exactly as ld.so does. ET_REL and ET_CORE objects get
// one read-only mapping. With kMapPadding, `padding` bytes of inaccessible
// memory are reserved before the lowest and after the highest mapping.
//
// Every mapping made is described. On failure nothing is left mapped, and
// the error carries an errno: E2BIG (C API: the result array is too small;
// *count says how many are needed), EINVAL (not an ELF object, malformed
// program headers, bad flags, kMapPadding without a size), ENOTSUP (another
// class, byte order or machine than this process), EADDRINUSE (an ET_EXEC
// object's addresses overlap an existing mapping, which is never clobbered),
// EACCES (executable segments on a noexec filesystem).
#pragma once

#include "mmar/export.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MMAR_MAP_INTERPRET 0x1u
#define MMAR_MAP_PADDING 0x2u

#define MMAR_MAPPING_ELF_HEADER 0x1u /* the object's ELF header is mapped here */
#define MMAR_MAPPING_PADDING 0x2u    /* inaccessible padding (kMapPadding) */
#define MMAR_MAPPING_ANONYMOUS 0x4u  /* anonymous memory: .bss beyond the file */
#define MMAR_MAPPING_HOLE 0x8u       /* inaccessible gap between segments, inside the reservation */

struct mmar_mapping {
  uint64_t addr;      /* start address (page-aligned) */
  uint64_t size;      /* bytes mapped */
  uint64_t file_size; /* bytes of it backed by the file (0 for anonymous memory) */
  uint64_t offset;    /* file offset of addr in fd (0 for anonymous memory) */
  uint32_t prot;      /* PROT_READ | PROT_WRITE | PROT_EXEC */
  uint32_t flags;     /* MMAR_MAPPING_* */
};

/* Map the ELF object at [offset, offset + length) of fd (length 0: to the end
 * of the file). *count holds the capacity of `maps` and receives the number of
 * mappings made (or, with E2BIG, the number needed). Returns 0, or -1 with
 * errno set and nothing mapped. The caller unmaps with mmar_munmapfd. */
MMAR_API int mmar_mmapfd(int fd, uint64_t offset, uint64_t length, unsigned flags, uint64_t padding, struct mmar_mapping* maps,
                unsigned* count);
/* Unmap everything a successful mmar_mmapfd returned. */
MMAR_API int mmar_munmapfd(const struct mmar_mapping* maps, unsigned count);

#ifdef __cplusplus
}

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "mmar/archive.h"
#include "mmar/result.h"

namespace mmar {

inline constexpr uint32_t kMapInterpret = MMAR_MAP_INTERPRET;
inline constexpr uint32_t kMapPadding = MMAR_MAP_PADDING;

using ObjectMapping = mmar_mapping;

// The mappings of one object; unmapped when destroyed (unless released).
class MMAR_API MappedObject {
 public:
  MappedObject() = default;
  ~MappedObject();
  MappedObject(MappedObject&& other) noexcept;
  MappedObject& operator=(MappedObject&& other) noexcept;

  const std::vector<ObjectMapping>& mappings() const { return mappings_; }
  uint16_t elf_type() const { return elf_type_; }  // ET_EXEC, ET_DYN, ... (0: not interpreted)
  uint64_t load_bias() const { return bias_; }     // added to every p_vaddr
  uint64_t entry() const { return entry_; }        // e_entry + load_bias (interpreted)
  uint64_t phdr() const { return phdr_; }          // address of the program headers in memory, or 0
  uint16_t phnum() const { return phnum_; }
  const std::optional<std::string>& interpreter() const { return interp_; }  // PT_INTERP path
  // Leave everything mapped and forget it (a program about to run owns it).
  void release();

 private:
  friend struct ObjectMapper;
  std::vector<ObjectMapping> mappings_;
  uint64_t region_ = 0, region_size_ = 0;  // the whole range to unmap
  uint64_t bias_ = 0, entry_ = 0, phdr_ = 0;
  uint16_t elf_type_ = 0, phnum_ = 0;
  std::optional<std::string> interp_;
};

// Map [offset, offset + length) of fd (length 0: to the end of the file).
// A range not page-aligned in the file is copied into an anonymous memory
// file first (mmap needs page-aligned file offsets).
MMAR_API Result<MappedObject> map_object(int fd, uint64_t offset, uint64_t length, uint32_t flags, uint64_t padding = 0,
                                const std::string& name = "");
// An archive member: an uncompressed, page-aligned member is mapped straight
// from the archive's fd (no copy, shared page cache); any other member is
// inflated into an anonymous memory file and mapped from there.
MMAR_API Result<MappedObject> map_member(const Archive& archive, const Member& member, uint32_t flags, uint64_t padding = 0);

// Run a program stored in an archive without writing it to disk: map it and
// its interpreter (ld.so) with map_object, build the stack and auxiliary
// vector the kernel builds, and jump to the interpreter (or to the program,
// if static). Returns only on failure. When a user-space exec cannot be done
// (a script, an object for another machine, no usable interpreter) the
// member is put in an anonymous memory file and run with fexecve;
// `on_fallback` (if given) is told why, before that happens.
// The calling process must be single-threaded.
MMAR_API Error exec_member(const Archive& archive, const Member& member, const std::vector<std::string>& argv,
                  const std::function<void(const std::string& why)>& on_fallback = {});

}  // namespace mmar
#endif
