// SPDX-License-Identifier: BSD-2-Clause
// map_object / mmar_mmapfd on Linux: the loader as a sequence of named
// steps (plan, reserve, map segments over the reservation, zero the partial
// page, anonymous .bss, report), with the whole reservation unmapped on any
// failure. The reservation is never unmapped before the fixed maps go over
// it, so no other thread can slip a mapping into the span meanwhile.
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "elf/layout.h"
#include "mmar/elf_map.h"
#include "support/fd.h"
#include "support/io.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

namespace mmar {

namespace {

uint64_t page_size() {
  static const uint64_t size = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return size;
}
uint64_t page_down(uint64_t v) { return v & ~(page_size() - 1); }
uint64_t page_up(uint64_t v) { return (v + page_size() - 1) & ~(page_size() - 1); }

Error errno_error(const std::string& what, int err, Errc code = Errc::io) {
  return Error(code, what + ": " + std::strerror(err), Error::kNoOffset, err);
}

// Copy [offset, offset + length) of fd into a sealed anonymous memory file.
Result<UniqueFd> copy_to_memfd(int fd, uint64_t offset, uint64_t length, const std::string& name) {
  int m = memfd_create("mmar-object", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (m < 0 && errno == EINVAL) m = memfd_create("mmar-object", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (m < 0) return errno_error(name + ": memfd_create", errno);
  UniqueFd out(m);
  if (ftruncate(m, static_cast<off_t>(length)) != 0) return errno_error(name + ": ftruncate memfd", errno);
  uint64_t done = 0;
  std::vector<char> buf(1 << 20);
  while (done < length) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), length - done));
    if (!pread_full(fd, buf.data(), n, offset + done)) return errno_error(name + ": read", errno ? errno : EIO);
    for (size_t w = 0; w < n;) {
      ssize_t r = pwrite(m, buf.data() + w, n - w, static_cast<off_t>(done + w));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return errno_error(name + ": write memfd", errno ? errno : EIO);
      w += static_cast<size_t>(r);
    }
    done += n;
  }
  fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
  return out;
}

}  // namespace

// Builds a MappedObject step by step; its destructor unmaps whatever is
// already mapped if a step fails.
struct ObjectMapper {
  int fd;
  uint64_t base;  // the object's offset in fd (page-aligned)
  uint64_t length;
  uint32_t flags;
  uint64_t padding;
  const std::string& name;
  MappedObject out;

  void add(uint64_t addr, uint64_t size, uint64_t file_size, uint64_t offset, uint32_t prot, uint32_t mflags) {
    if (size == 0) return;
    out.mappings_.push_back({addr, size, file_size, offset, prot, mflags});
  }

  // The whole object, one private read-only mapping (default, ET_REL, ET_CORE).
  Result<void> map_whole() {
    const uint64_t size = page_up(length);
    const uint64_t total = size + 2 * padding;
    void* region = mmap(nullptr, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region == MAP_FAILED) return errno_error(name + ": reserve address space", errno);
    out.region_ = reinterpret_cast<uint64_t>(region);
    out.region_size_ = total;
    const uint64_t at = out.region_ + padding;
    if (mmap(reinterpret_cast<void*>(at), length, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, static_cast<off_t>(base)) ==
        MAP_FAILED) {
      return errno_error(name + ": mmap", errno);
    }
    add(out.region_, padding, 0, 0, PROT_NONE, MMAR_MAPPING_PADDING);
    add(at, size, length, base, PROT_READ, MMAR_MAPPING_ELF_HEADER);
    add(at + size, padding, 0, 0, PROT_NONE, MMAR_MAPPING_PADDING);
    return success();
  }

  Result<void> map_segments(const elf::Layout& l) {
    const uint64_t span = l.hi - l.lo;
    const uint64_t total = span + 2 * padding;
    // Step 1: reserve the span (and the padding), PROT_NONE.
    if (l.type == ET_EXEC) {
      if (l.lo < padding) return Error(Errc::invalid_argument, name + ": padding below address 0", 0, EINVAL);
      const uint64_t want = l.lo - padding;
      void* r = mmap(reinterpret_cast<void*>(want), total, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
      if (r == MAP_FAILED) {
        int err = errno == EEXIST ? EADDRINUSE : errno;
        return errno_error(name + ": its fixed addresses [" + hex(l.lo) + ", " + hex(l.hi) + ") are in use", err);
      }
      if (reinterpret_cast<uint64_t>(r) != want) {  // a kernel without MAP_FIXED_NOREPLACE treated it as a hint
        munmap(r, total);
        return errno_error(name + ": its fixed addresses [" + hex(l.lo) + ", " + hex(l.hi) + ") are in use",
                           EADDRINUSE);
      }
      out.region_ = want;
      out.region_size_ = total;
      out.bias_ = 0;
    } else {
      // ET_DYN: anywhere, aligned to the largest p_align (over-reserve, trim).
      const uint64_t extra = l.max_align - page_size();
      void* r = mmap(nullptr, total + extra, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (r == MAP_FAILED) return errno_error(name + ": reserve " + std::to_string(total) + " bytes", errno);
      const uint64_t raw = reinterpret_cast<uint64_t>(r);
      const uint64_t load_start = (raw + padding + l.max_align - 1) & ~(l.max_align - 1);
      const uint64_t start = load_start - padding;
      if (start > raw) munmap(r, start - raw);
      if (raw + total + extra > start + total) {
        munmap(reinterpret_cast<void*>(start + total), raw + total + extra - (start + total));
      }
      out.region_ = start;
      out.region_size_ = total;
      out.bias_ = load_start - l.lo;
    }
    const uint64_t bias = out.bias_;
    add(out.region_, padding, 0, 0, PROT_NONE, MMAR_MAPPING_PADDING);
    uint64_t cursor = bias + l.lo;  // end of what is reported so far
    // Step 2: each segment over the reservation.
    for (const elf::LoadSegment& s : l.loads) {
      const uint64_t seg_start = bias + page_down(s.vaddr);
      const uint64_t file_end = bias + s.vaddr + s.filesz;
      const uint64_t mem_end = bias + s.vaddr + s.memsz;  // end of .bss
      const uint64_t file_map_end = s.filesz ? page_up(file_end) : seg_start;
      if (seg_start > cursor) add(cursor, seg_start - cursor, 0, 0, PROT_NONE, MMAR_MAPPING_HOLE);
      // A segment starting on the page where the previous one ended shares it.
      const uint64_t from = std::max(seg_start, cursor);
      if (s.filesz > 0) {
        const uint64_t file_off = base + page_down(s.offset);
        if (mmap(reinterpret_cast<void*>(seg_start), file_map_end - seg_start, static_cast<int>(s.prot),
                 MAP_PRIVATE | MAP_FIXED, fd, static_cast<off_t>(file_off)) == MAP_FAILED) {
          return errno_error(name + ": map segment at " + hex(s.vaddr), errno);
        }
        const uint64_t skip = from - seg_start;
        add(from, file_map_end - from, std::min(file_end, file_map_end) - from, file_off + skip, s.prot,
            page_down(s.offset) == 0 && skip == 0 ? MMAR_MAPPING_ELF_HEADER : 0);
        // Step 3: zero the rest of the last file page (.bss's head). To the
        // page's end, as the kernel does for a program and its interpreter
        // (ld.so's early allocator takes its first memory from that tail and
        // relies on it being zero); ld.so itself stops at p_memsz.
        if (s.memsz > s.filesz && file_end < file_map_end) {
          const uint64_t zero_len = file_map_end - file_end;
          const bool writable = (s.prot & PROT_WRITE) != 0;
          void* page = reinterpret_cast<void*>(page_down(file_end));
          if (!writable && mprotect(page, page_size(), static_cast<int>(s.prot) | PROT_WRITE) != 0) {
            return errno_error(name + ": make the bss page writable", errno);
          }
          std::memset(reinterpret_cast<void*>(file_end), 0, zero_len);
          if (!writable && mprotect(page, page_size(), static_cast<int>(s.prot)) != 0) {
            return errno_error(name + ": protect the bss page", errno);
          }
        }
      }
      // Step 4: anonymous memory for the rest of .bss.
      const uint64_t anon_start = std::max(file_map_end, from);
      const uint64_t anon_end = page_up(mem_end);
      if (anon_end > anon_start) {
        if (mmap(reinterpret_cast<void*>(anon_start), anon_end - anon_start, static_cast<int>(s.prot),
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
          return errno_error(name + ": map bss at " + hex(anon_start - bias), errno);
        }
        add(anon_start, anon_end - anon_start, 0, 0, s.prot, MMAR_MAPPING_ANONYMOUS);
      }
      cursor = std::max(cursor, std::max(file_map_end, anon_end));
    }
    add(cursor, bias + l.hi - cursor, 0, 0, PROT_NONE, MMAR_MAPPING_HOLE);
    add(bias + l.hi, padding, 0, 0, PROT_NONE, MMAR_MAPPING_PADDING);
    out.entry_ = l.entry + bias;
    out.phdr_ = l.phdr_vaddr ? *l.phdr_vaddr + bias : 0;
    out.phnum_ = l.phnum;
    return success();
  }

  void set_type(uint16_t t) { out.elf_type_ = t; }
  void set_interpreter(std::string path) { out.interp_ = std::move(path); }

  static std::string hex(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
  }
};

MappedObject::~MappedObject() {
  if (region_size_ != 0) munmap(reinterpret_cast<void*>(region_), region_size_);
}
MappedObject::MappedObject(MappedObject&& o) noexcept
    : mappings_(std::move(o.mappings_)),
      region_(o.region_),
      region_size_(o.region_size_),
      bias_(o.bias_),
      entry_(o.entry_),
      phdr_(o.phdr_),
      elf_type_(o.elf_type_),
      phnum_(o.phnum_),
      interp_(std::move(o.interp_)) {
  o.region_size_ = 0;
}
MappedObject& MappedObject::operator=(MappedObject&& o) noexcept {
  if (this != &o) {
    this->~MappedObject();
    new (this) MappedObject(std::move(o));
  }
  return *this;
}
void MappedObject::release() { region_size_ = 0; }

namespace {

// The object's first bytes, enough for the ELF header, the program headers
// and (usually) PT_INTERP: one pread, or none when the caller has the bytes
// in memory already (an archive member in the archive's mapping).
struct Head {
  std::vector<std::byte> owned;
  std::span<const std::byte> bytes;
};

Result<Head> read_head(int fd, uint64_t offset, uint64_t length, std::span<const std::byte> known,
                       const std::string& name) {
  Head h;
  if (!known.empty()) {
    h.bytes = known.first(std::min<uint64_t>(known.size(), length));
    return h;
  }
  h.owned.resize(std::min<uint64_t>(length, 4096));
  if (!pread_full(fd, h.owned.data(), h.owned.size(), offset)) {
    return errno_error(name + ": read ELF header", errno ? errno : EIO);
  }
  h.bytes = h.owned;
  return h;
}

Result<MappedObject> map_impl(int fd, uint64_t offset, uint64_t length, uint32_t flags, uint64_t padding,
                              const std::string& name, std::span<const std::byte> known) {
  if ((flags & ~(kMapInterpret | kMapPadding)) != 0) {
    return Error(Errc::invalid_argument, name + ": unknown flags", Error::kNoOffset, EINVAL);
  }
  if ((flags & kMapPadding) != 0 && padding == 0) {
    return Error(Errc::invalid_argument, name + ": padding requested without a size", Error::kNoOffset, EINVAL);
  }
  if ((flags & kMapPadding) == 0 && padding != 0) {
    return Error(Errc::invalid_argument, name + ": a padding size without the padding flag", Error::kNoOffset, EINVAL);
  }
  padding = page_up(padding);
  if (length == 0) {
    struct stat st {};
    if (fstat(fd, &st) != 0) return errno_error(name + ": stat", errno);
    if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) <= offset) {
      return Error(Errc::invalid_argument, name + ": nothing to map at offset " + std::to_string(offset),
                   Error::kNoOffset, EINVAL);
    }
    length = static_cast<uint64_t>(st.st_size) - offset;
  }
  // Count and check everything before mapping anything.
  MMAR_ASSIGN(Head head, read_head(fd, offset, length, known, name));
  const bool interpret = (flags & kMapInterpret) != 0;
  if (interpret) {
    MMAR_ASSIGN(uint64_t need, elf::header_bytes_needed(head.bytes, length, name));
    if (need > (1u << 20)) need = sizeof(Elf64_Ehdr);  // absurd phnum*56: plan() reports it
    if (need > head.bytes.size()) {
      head.owned.resize(need);
      if (!pread_full(fd, head.owned.data(), need, offset)) {
        return errno_error(name + ": read program headers", errno ? errno : EIO);
      }
      head.bytes = head.owned;
    }
  }
  MMAR_ASSIGN(elf::Layout layout, elf::plan(head.bytes, length, page_size(), interpret, name));
  const bool segments = interpret && (layout.type == ET_EXEC || layout.type == ET_DYN);
  std::optional<std::string> interp;
  if (segments && layout.interp_size != 0) {
    std::string path(layout.interp_size, '\0');
    if (layout.interp_offset + layout.interp_size <= head.bytes.size()) {
      std::memcpy(path.data(), head.bytes.data() + layout.interp_offset, path.size());
    } else if (!pread_full(fd, path.data(), path.size(), offset + layout.interp_offset)) {
      return errno_error(name + ": read PT_INTERP", errno ? errno : EIO);
    }
    if (path.back() != '\0') return Error(Errc::malformed, name + ": PT_INTERP is not NUL-terminated", 0, EINVAL);
    path.resize(std::strlen(path.c_str()));
    interp = std::move(path);
  }
  // mmap needs page-aligned file offsets: map anything else from a copy.
  UniqueFd copy;
  uint64_t base = offset;
  int map_fd = fd;
  if (offset % page_size() != 0) {
    MMAR_ASSIGN(copy, copy_to_memfd(fd, offset, length, name));
    map_fd = copy.get();
    base = 0;
  }
  ObjectMapper m{map_fd, base, length, flags, (flags & kMapPadding) ? padding : 0, name, {}};
  m.set_type(interpret ? layout.type : 0);
  if (segments) {
    auto mapped = m.map_segments(layout);
    if (!mapped.ok()) {
      // A noexec mount refuses PROT_EXEC with EPERM: say so (only checked
      // on failure, so the common path makes no extra system call).
      struct statvfs vfs {};
      const int err = mapped.error().sys_errno();
      if ((err == EPERM || err == EACCES) && layout.executable && fstatvfs(fd, &vfs) == 0 &&
          (vfs.f_flag & ST_NOEXEC) != 0) {
        return Error(Errc::invalid_argument, name + ": executable segments on a noexec filesystem", Error::kNoOffset,
                     EACCES);
      }
      return std::move(mapped).error();
    }
    if (interp) m.set_interpreter(std::move(*interp));
  } else {
    MMAR_TRY(m.map_whole());
  }
  return std::move(m.out);
}

}  // namespace

Result<MappedObject> map_object(int fd, uint64_t offset, uint64_t length, uint32_t flags, uint64_t padding,
                                const std::string& given_name) {
  const std::string name = given_name.empty() ? "fd " + std::to_string(fd) : given_name;
  return map_impl(fd, offset, length, flags, padding, name, {});
}

Result<MappedObject> map_member(const Archive& archive, const Member& member, uint32_t flags, uint64_t padding) {
  const std::string name = archive.name() + ":" + std::string(member.name);
  if (!member.is_regular())
    return Error(Errc::invalid_argument, name + ": not a regular file", Error::kNoOffset, EINVAL);
  const int fd = archive.source().fd();
  if (member.codec == Codec::none && fd >= 0 && member.data_offset % page_size() == 0 && member.size > 0) {
    // The headers come from the archive's own mapping when it has one: no
    // read at all, only the mmap calls.
    std::span<const std::byte> known;
    if (archive.source().contiguous()) {
      MMAR_ASSIGN(Bytes view, archive.read(member));
      known = view.span();
      return map_impl(fd, member.data_offset, member.size, flags, padding, name, known);
    }
    return map_impl(fd, member.data_offset, member.size, flags, padding, name, known);
  }
  // Compressed (or packed at a non-page offset, or not in a file): inflated
  // frame by frame into an anonymous memory file (no copy in our memory).
  int m = memfd_create("mmar-member", MFD_CLOEXEC | MFD_EXEC);
  if (m < 0 && errno == EINVAL) m = memfd_create("mmar-member", MFD_CLOEXEC);
  if (m < 0) return errno_error(name + ": memfd_create", errno);
  UniqueFd mem(m);
  MMAR_TRY(copy_member_to_fd(archive, member, m));
  return map_impl(m, 0, member.size, flags, padding, name, {});
}

}  // namespace mmar

extern "C" int mmar_mmapfd(int fd, uint64_t offset, uint64_t length, unsigned flags, uint64_t padding,
                           struct mmar_mapping* maps, unsigned* count) {
  if (count == nullptr || (maps == nullptr && *count != 0)) {
    errno = EINVAL;
    return -1;
  }
  try {
    auto r = mmar::map_object(fd, offset, length, flags, padding);
    if (!r.ok()) {
      errno = r.error().sys_errno() != 0 ? r.error().sys_errno() : EINVAL;
      return -1;
    }
    const auto& ms = r->mappings();
    if (ms.size() > *count) {
      *count = static_cast<unsigned>(ms.size());
      errno = E2BIG;
      return -1;  // r unmaps everything
    }
    std::copy(ms.begin(), ms.end(), maps);
    *count = static_cast<unsigned>(ms.size());
    r->release();
    return 0;
  } catch (const std::bad_alloc&) {
    errno = ENOMEM;
    return -1;
  }
}

extern "C" int mmar_munmapfd(const struct mmar_mapping* maps, unsigned count) {
  int rc = 0;
  for (unsigned i = 0; i < count; ++i) {
    if (munmap(reinterpret_cast<void*>(maps[i].addr), maps[i].size) != 0) rc = -1;
  }
  return rc;
}
