// SPDX-License-Identifier: BSD-2-Clause
// The inside of a CtfDict: decoded header, section pointers, the type offset
// index, and the libctf-equivalent queries (resolve, size, align, encoding,
// name) that the public API and the dumper share.
//
// Queries return Q<T>: a value or one of libctf's error conditions (not an
// Error with a message: the dumper, like libctf's, decides per condition
// whether to print something else, drop an item or fail).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ctf/format.h"
#include "mmar/ctf.h"
#include "support/endian.h"

namespace mmar {

enum class CtfErr : uint8_t {
  none,
  bad_id,            // ECTF_BADID: no such type
  no_parent,         // ECTF_NOPARENT: a parent type, no parent imported
  nonrepresentable,  // ECTF_NONREPRESENTABLE: type 0 or an unknown kind
  incomplete,        // ECTF_INCOMPLETE: a forward has no size or alignment
  not_ref,           // ECTF_NOTREF: the type references nothing
  wrong_kind,        // not an array / function / struct / enum / int-float
  corrupt,           // ECTF_CORRUPT (only reachable on chains past the depth limit)
};

template <class T>
struct Q {
  T v{};
  CtfErr err = CtfErr::none;
  bool ok() const { return err == CtfErr::none; }
  static Q fail(CtfErr e) { return Q{T{}, e}; }
};

struct CtfRec {
  uint32_t off = 0;  // of the record in the dict's sections buffer
  uint32_t name = 0;
  uint32_t info = 0;
  uint32_t st = 0;    // ctt_size or ctt_type as stored
  uint64_t size = 0;  // ctt_size, or the large size
  uint32_t incr = 0;  // 12 or 20
  uint8_t kind = 0;
  bool root = false;
  uint32_t vlen = 0;
  uint32_t end = 0;  // offset after the record's variable data (set by decode() only)
  uint32_t vdata() const { return off + incr; }
};

struct CtfEncoding {
  uint32_t format = 0, offset = 0, bits = 0;
};

struct CtfFuncInfo {
  uint32_t ret = 0;
  uint32_t argc = 0;
  bool vararg = false;
  uint32_t args_off = 0;  // first argument word in the owning dict's buffer
};

struct CtfDict::Impl {
  std::string name;
  Bytes bytes;                      // the dict as given: keeps the mapping alive
  std::vector<std::byte> inflated;  // a compressed dict's sections (the only copy)
  const std::byte* buf = nullptr;   // the sections (after the header)
  uint64_t buf_len = 0;
  uint32_t header_size = 0;
  bool little = true;
  bool compressed = false;
  bool child = false;
  uint8_t open_flags = 0;  // flags as stored (before decompression), as libctf's ctf_openflags
  CtfHeader hdr;
  std::shared_ptr<const Impl> parent;
  CtfSymbols syms;
  uint32_t ptr_size = 8;
  uint32_t int_size = 4;
  const char* strs = nullptr;  // internal string table
  uint32_t strs_len = 0;

  // Everything below is built on first use, never at open (open reads the
  // header only): the type offset index (one u32 per type, by a walk that
  // checks each record's extent), the full validation (validate()), and
  // the name index (after a few find()s have scanned the records).
  mutable std::once_flag offs_once;
  mutable std::atomic<bool> offs_ready{false};  // set after offs_once ran: the hot path's check
  mutable std::vector<uint32_t> offs;           // offs[index - 1]: record offset of type `index`
  mutable std::optional<Error> offs_error;      // the walk failed: no type is reachable
  mutable std::once_flag valid_once;
  mutable std::optional<Error> valid_error;
  mutable std::once_flag names_once;
  mutable std::atomic<uint32_t> scans{0};  // find()s answered by a scan
  // Open addressing: slot -> type index + 1 (0 empty); the key is the type's
  // (namespace, name); a definition displaces a forward of its tag.
  mutable std::vector<uint32_t> names;

  uint32_t u32(uint64_t off) const { return read_int<uint32_t>(buf + off, little); }
  uint16_t u16(uint64_t off) const { return read_int<uint16_t>(buf + off, little); }

  // The offset index (built on first call; empty if the walk failed, the
  // reason in offs_error).
  const std::vector<uint32_t>& index() const;
  uint32_t count() const { return static_cast<uint32_t>(index().size()); }
  // Decode the record at `off` (in the type section) as type `index`,
  // checking that it and its variable data lie inside the type section.
  Result<CtfRec> decode(uint32_t off, uint32_t index) const;
  Result<void> validate() const;
  // find() without the name index: the type (index) a walk from the first
  // record finds for (namespace, name), 0 if none.
  Result<uint32_t> scan(uint8_t space, std::string_view name) const;
  void build_names() const;
  uint32_t find_indexed(uint8_t space, std::string_view name) const;
  uint32_t id_of(uint32_t index) const { return child ? (index | (ctf::kMaxParentType + 1)) : index; }

  // String reference -> string; nullopt if it resolves nowhere.
  std::optional<std::string_view> str(uint32_t ref) const;
  // libctf's ctf_strptr: "(?)" for what resolves nowhere.
  std::string_view strptr(uint32_t ref) const {
    auto s = str(ref);
    return s ? *s : std::string_view("(?)");
  }

  CtfRec rec(uint32_t index) const;

  struct Loc {
    const Impl* d = nullptr;
    uint32_t index = 0;
  };
  Q<Loc> locate(uint32_t id) const;

  // libctf's queries, same semantics (see ctf-types.c, binutils 2.40).
  Q<int> kind_unsliced(uint32_t id) const;
  Q<int> kind(uint32_t id) const;
  Q<uint32_t> reference(uint32_t id) const;
  Q<uint32_t> resolve(uint32_t id) const;
  Q<int64_t> size(uint32_t id, int depth = 0) const;
  Q<int64_t> align(uint32_t id, int depth = 0) const;
  Q<CtfEncoding> encoding(uint32_t id) const;
  Q<CtfFuncInfo> func_info(uint32_t id) const;
  Q<std::string> aname(uint32_t id, int depth = 0) const;
  // Member i of a struct/union record: name ref, type, bit offset.
  void member(const Loc& at, const CtfRec& r, uint32_t i, uint32_t& name, uint32_t& type, uint64_t& offset) const;

  std::vector<CtfDict::Symbol> symbols(bool functions) const;
};

inline std::string ctf_hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// The one malformed-CTF error, for dicts, archives and ELF containers alike:
// "NAME: WHAT at 0x...", NAME being the file (and archive member). Offsets
// are of the dict as stored (header included) or of the file; for a
// compressed dict's sections, of the inflated sections plus the header.
inline Error ctf_malformed(const std::string& name, uint64_t offset, const std::string& what) {
  return Error(Errc::malformed, name + ": " + what + " at " + ctf_hex(offset), offset);
}

// What objdump's libctf opens (src/ctf/file.cpp): an ELF object's .ctf
// section (a dict or a libctf CTF archive) with the object's symbol table
// and data model, a raw dict, or a CTF archive file; the dicts as views
// sharing `bytes`' owner, unopened.
struct CtfContainer {
  struct Dict {
    std::string name;  // archive member name; ".ctf" for a lone dict
    Bytes bytes;
  };
  std::vector<Dict> dicts;
  bool archive = false;  // a libctf CTF archive (else one dict)
  bool elf = false;      // found in an ELF object's .ctf section
  CtfSymbols symbols;    // the ELF object's, when elf
  uint32_t pointer_size = 8;
};
Result<CtfContainer> ctf_open_container(Bytes bytes, const std::string& name);

// Give a dict its parent (libctf's ctf_import). Only for a dict just opened
// by the caller and not yet shared or used (nothing lazy is built yet).
Result<void> ctf_import_parent(CtfDict& child, const CtfDict& parent);

// Limit on recursion through type chains (names, sizes, member visits): a
// valid dict has no cycles, but a chain may still be long.
inline constexpr int kCtfMaxDepth = 4096;

}  // namespace mmar
