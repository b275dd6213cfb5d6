// SPDX-License-Identifier: BSD-2-Clause
// CTF: read, look up and print Compact C Type Format dicts (binutils libctf's
// format, CTF_VERSION_3 as binutils 2.40 writes it; CTF_VERSION_2 too).
//
// A CtfDict is a zero-copy view of one dict (the bytes of an ELF .ctf
// section, a raw dict file or one member of a libctf CTF archive): records
// and strings are read in place, in either byte order. A compressed dict
// (CTF_F_COMPRESS) is inflated once at open into one buffer, after its
// claimed size (the header's cth_stroff + cth_strlen) was checked against a
// limit and against zlib's largest possible expansion of the stored bytes;
// any other inflated length is an error.
//
// Opening reads the header only (O(1) for an uncompressed dict: no walk of
// the types, no memory proportional to their number): the header, section
// bounds and order, and the string table's ends. The rest is built on first
// use: the type offset index (one u32 per type, by a walk that checks each
// record's extent) on the first access by ID, and the name index after a
// few find()s (each earlier find() walks the records up to the first match).
// Every access checks what it reads, so a lazily opened dict that is
// damaged gives errors (Errc::malformed, naming the dict, type and offset),
// never other bytes; type chains are followed to a depth limit.
//
// validate() (or CtfOpenOptions::validate) checks everything, as libctf's
// open does: every type record (size, kind, vlen against the type section),
// every string reference, every referenced type ID, and the absence of
// reference cycles (naming: pointers, typedefs, qualifiers, slices, arrays,
// function returns and arguments; layout: typedefs, qualifiers, arrays and
// struct/union members by value). After it succeeds, lookups cannot fail on
// the dict's own bytes; they fail (as values) only where libctf's do: a
// forward has no size, type 0 has no record, a child's parent types need
// the parent. ctf_dump validates before it prints.
//
// Parent and child: a dict with a parent name is a child; its own type IDs
// are 0x80000000 | index, IDs at or below 0x7fffffff are its parent's. The
// parent is given by the caller (CtfOpenOptions::parent) and kept alive.
//
// External strings (CTF_STRTAB_1 references, and the symbol names of the
// data-object and function sections) come from the ELF symbol table and
// string table the caller supplies (CtfSymbols); ctf_open_file reads them
// from the ELF object as libctf does (.dynsym/.dynstr for CTF_F_DYNSTR
// dicts, .symtab/.strtab otherwise). A dict that refers to the ELF string
// table when none is given is refused at open, as libctf refuses it.
//
// CtfDict handles are cheap to copy and thread-safe (each lazy structure is
// built once under a std::once_flag).
#pragma once

#include "mmar/export.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mmar/archive.h"
#include "mmar/btf.h"
#include "mmar/result.h"
#include "mmar/source.h"

namespace mmar {

enum class CtfKind : uint8_t {
  unknown = 0,
  integer = 1,
  float_ = 2,
  pointer = 3,
  array = 4,
  function = 5,
  struct_ = 6,
  union_ = 7,
  enum_ = 8,
  forward = 9,
  typedef_ = 10,
  volatile_ = 11,
  const_ = 12,
  restrict_ = 13,
  slice = 14,
};
inline constexpr uint8_t kCtfMaxKind = 14;

// "integer", "struct", ... (lower case, as `mmar ctf find` prints them).
MMAR_API const char* ctf_kind_name(CtfKind kind);

// The preamble and header as stored (a v2 header is upgraded: no CU name,
// empty index sections at the variable section's offset). Offsets are
// relative to the end of the header, as in the file.
struct MMAR_API CtfHeader {
  uint16_t magic = 0;
  uint8_t version = 0;
  uint8_t flags = 0;
  uint32_t parlabel = 0, parname = 0, cuname = 0;
  uint32_t lbloff = 0, objtoff = 0, funcoff = 0, objtidxoff = 0, funcidxoff = 0, varoff = 0, typeoff = 0, stroff = 0,
           strlen = 0;
};

// An ELF symbol table for the data-object and function sections, and its
// string table (also CTF_STRTAB_1). Views; the caller keeps them alive as
// long as the dict.
struct MMAR_API CtfSymbols {
  std::span<const std::byte> symtab;  // Elf32_Sym or Elf64_Sym records, ELF order
  bool elf64 = true;
  bool little = true;
  std::span<const std::byte> strtab;
};

class CtfDict;

struct MMAR_API CtfOpenOptions {
  const CtfDict* parent = nullptr;  // for a child dict: its parent (kept alive)
  CtfSymbols symbols;
  uint32_t pointer_size = 8;  // the data model: LP64 (8) or ILP32 (4), as libctf's ctd_pointer
  // A compressed dict may claim at most this many inflated bytes (and at
  // most 1032 times its compressed size, zlib's bound).
  uint64_t max_inflated = uint64_t{1} << 30;
  bool validate = false;  // run validate() at open
};

// One member of a struct or union (not recursed), or of an enum.
struct MMAR_API CtfMember {
  std::string_view name;
  uint32_t type = 0;    // struct/union member
  uint64_t offset = 0;  // bits, struct/union member
  int32_t value = 0;    // enum member
};

struct MMAR_API CtfTypeInfo {
  uint32_t id = 0;
  CtfKind kind = CtfKind::unknown;  // as stored (slices are slices)
  bool root = true;                 // visible (libctf's CTF_ADD_ROOT)
  std::string_view name;            // raw name, "" when anonymous
  uint32_t vlen = 0;
  uint64_t size = 0;  // ctt_size (or the large size) for sized kinds
  uint32_t ref = 0;   // ctt_type: pointer, typedef, qualifiers, function return, forward's kind
};

class MMAR_API CtfDict {
 public:
  static Result<CtfDict> open(Bytes bytes, std::string name, const CtfOpenOptions& options = {});

  const std::string& name() const;
  const CtfHeader& header() const;
  bool little_endian() const;
  bool compressed() const;
  bool is_child() const;
  std::optional<CtfDict> parent() const;
  // The dict's parent name, CU name ("" when absent).
  std::string_view parent_name() const;
  std::string_view cu_name() const;

  // The full check (see above); its outcome is remembered. A child's
  // includes its parent's.
  Result<void> validate() const;

  // Own types (builds the offset index). 0 for a dict whose records cannot
  // all be walked (a record runs past the type section): validate() and
  // type() then give the reason.
  uint32_t type_count() const;
  uint32_t first_id() const;                   // 1, or 0x80000001 for a child
  uint32_t id_of_index(uint32_t index) const;  // index 1..type_count()
  // A type (own or, for a child, its parent's). Errc::not_found for an ID
  // out of range, invalid_argument for 0, not_found for a parent type when
  // no parent was given.
  Result<CtfTypeInfo> type(uint32_t id) const;
  // Members of a struct/union or enum (not resolved through typedefs).
  Result<std::vector<CtfMember>> members(uint32_t id) const;

  // The records' kind-specific data, as libctf's ctf_type_encoding,
  // ctf_array_info and ctf_func_type_info + ctf_func_type_args give it
  // (src/ctf/queries.cpp). Errc::invalid_argument for a type of another
  // kind. encoding: an integer's or float's format (kCtfInt* / kCtfFp*),
  // bit offset and bits; a slice's own offset and bits with its target's
  // format; an enum's kCtfIntSigned. array: the record as stored (gcc 12
  // stores a multi-dimensional array's dimensions innermost first, see
  // ctf_convert_btf). function: through typedefs and qualifiers; a
  // trailing varargs marker is `varargs`, not an argument. slice_target:
  // the type a slice narrows.
  struct Encoding {
    uint32_t format = 0, offset = 0, bits = 0;
  };
  struct ArrayInfo {
    uint32_t contents = 0, index = 0, nelems = 0;
  };
  struct FunctionInfo {
    uint32_t return_type = 0;
    std::vector<uint32_t> args;
    bool varargs = false;
  };
  Result<Encoding> encoding(uint32_t id) const;
  Result<ArrayInfo> array(uint32_t id) const;
  Result<FunctionInfo> function(uint32_t id) const;
  Result<uint32_t> slice_target(uint32_t id) const;

  // As libctf computes them: ctf_type_aname, ctf_type_size, ctf_type_align,
  // ctf_type_kind (slices report their target's kind).
  Result<std::string> type_name(uint32_t id) const;
  Result<int64_t> type_size(uint32_t id) const;
  Result<int64_t> type_align(uint32_t id) const;
  Result<CtfKind> type_kind(uint32_t id) const;

  // A string reference (either table); nullopt if it resolves nowhere.
  std::optional<std::string_view> str(uint32_t ref) const;

  // As ctf_lookup_by_name: "struct foo", "union u", "enum e", or a plain
  // name (integer, float, typedef, ...); root types only; a child looks in
  // its parent when its own types do not have the name. The first few
  // calls walk the records (stopping at a definition), later ones use the
  // name index, built once. Errc::not_found when absent.
  Result<uint32_t> find(std::string_view name) const;

  // The data-object or function section's (symbol name, type ID) pairs, in
  // libctf's order (index order when indexed, else ELF symbol order).
  struct Symbol {
    std::string_view name;
    uint32_t type = 0;
  };
  std::vector<Symbol> symbols(bool functions) const;

  struct MMAR_LOCAL Impl;  // internal: not exported
  const Impl& impl() const { return *impl_; }
  const std::shared_ptr<const Impl>& impl_ptr() const { return impl_; }

 private:
  explicit CtfDict(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// Everything `objdump --ctf` shows of one file: the dicts of its .ctf
// section (a dict or a CTF archive, the archive's ".ctf" member being the
// parent the others import), each with the file's symbols.
struct MMAR_API CtfFile {
  std::string section = ".ctf";  // the section dumped
  struct Entry {
    std::string name;  // archive member name; ".ctf" for a lone dict
    CtfDict dict;
  };
  std::vector<Entry> dicts;
  Bytes bytes;  // keeps the file, symbol table and strings alive
};

struct MMAR_API CtfFileOptions {
  // The archive member the other dicts import as parent (objdump
  // --ctf-parent); default ".ctf". An archive without it is refused
  // (Errc::not_found), as objdump refuses it.
  std::string parent_member = ".ctf";
};

// An ELF object with a .ctf section, a raw CTF dict, or a CTF archive.
MMAR_API Result<CtfFile> ctf_open_file(const std::string& path, const CtfFileOptions& options = {});
MMAR_API Result<CtfFile> ctf_open_bytes(Bytes bytes, std::string name, const CtfFileOptions& options = {});

// ---------------------------------------------------------------------------
// Typed iteration: the dicts of any archive, opened with their parents
// (libctf's ctf_archive_iter and ctf_dict_open).
//
// What holds dicts, through mmar::Archive:
//  - a libctf CTF archive: each member is a dict, named as stored;
//  - a plain file (Archive's one-member archive): a raw dict (".ctf"), or an
//    ELF object's .ctf section, itself a dict (".ctf") or a CTF archive (its
//    members), with the object's symbol table;
//  - an mmar archive: each member that is a dict (Kind::ctf), by its name;
//    each ELF member with a .ctf section, its dict named after the member,
//    or the members of a CTF archive there as "MEMBER:DICT". ELF members
//    are read (and searched for .ctf) only when names() or for_each() needs
//    them, or dict() is asked for one.
// A child dict (one with a parent name) gets its parent from the same
// archive (or the same ELF .ctf section): the dict named by its parent name
// (".ctf" as ld writes it, "shared_ctf" as DTrace's vmlinux.ctfa has it), or
// CtfArchiveOptions::parent for every child (objdump's --ctf-parent). A
// parent that is not there is an error naming both (libctf silently leaves
// the child without one: its parent's types would then be unnamed).
//
// Dicts open lazily (see CtfDict: O(1) each for uncompressed dicts) and are
// cached: dict() twice gives the same dict. Thread-safe.
struct MMAR_API CtfArchiveOptions {
  std::string parent;     // "" (default): each child's own parent name
  bool validate = false;  // validate() every dict as it is opened
};

class MMAR_API CtfArchive {
 public:
  static Result<CtfArchive> open(Archive archive, const CtfArchiveOptions& options = {});
  static Result<CtfArchive> open(const std::string& path, const CtfArchiveOptions& options = {});

  const Archive& archive() const;
  // The dicts' names, in archive order.
  Result<std::vector<std::string>> names() const;
  // One dict, its parent imported. Errc::not_found when there is none of
  // that name.
  Result<CtfDict> dict(std::string_view name) const;
  // Every dict in archive order; fn's error stops the walk and is returned.
  Result<void> for_each(const std::function<Result<void>(std::string_view name, const CtfDict& dict)>& fn) const;

  struct MMAR_LOCAL Impl;

 private:
  explicit CtfArchive(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

// One dict's dump, exactly as libctf's ctf_dump (binutils 2.40) prints it
// through objdump: the sections Header, Labels, Data objects, Function
// objects, Variables, Types and Strings, each introduced by "\n  NAME:\n".
MMAR_API Result<void> ctf_dump_dict(const CtfDict& dict, std::string& out);
// `objdump --ctf=.ctf FILE` from the line "Contents of CTF section .ctf:"
// to the end, byte for byte.
MMAR_API Result<void> ctf_dump(const CtfFile& file, std::string& out);
// The same text streamed to `sink` in chunks of about 256 KiB (btf.h's
// TextSink): memory stays at one chunk whatever the dump's size. An error
// the sink returns stops the dump and is its result.
MMAR_API Result<void> ctf_dump(const CtfFile& file, const TextSink& sink);

// ---------------------------------------------------------------------------
// Writing

// CTF_INT_* (integer encoding format bits) and CTF_FP_* (float encodings).
inline constexpr uint32_t kCtfIntSigned = 0x1, kCtfIntChar = 0x2, kCtfIntBool = 0x4, kCtfIntVarargs = 0x8;
inline constexpr uint32_t kCtfFpSingle = 1, kCtfFpDouble = 2, kCtfFpComplex = 3, kCtfFpDComplex = 4,
                          kCtfFpLDComplex = 5, kCtfFpLDouble = 6;

// Building one CTF dict, as libctf's ctf_add_* build one: every add returns
// the new type's ID (1, 2, ... for a parent or standalone dict; 0x80000001,
// ... for a child, whose IDs at or below 0x7fffffff name its parent's
// types). add_member / add_enumerator extend the struct, union or enum added
// last. Types may refer to IDs not added yet (they must exist by write()).
// Names are copied into the dict's own string table (deduplicated).
//
// write() gives an uncompressed CTF_VERSION_3 dict, little-endian, as libctf
// 2.40 reads it: header, no labels, the data-object and function-info
// sections with their name indexes (sorted by name, CTF_F_IDXSORTED; no ELF
// symbol table needed), variables sorted by name, types, strings.
class MMAR_API CtfBuilder {
 public:
  CtfBuilder();                                  // a parent or standalone dict
  explicit CtfBuilder(std::string parent_name);  // a child of the dict named so
  ~CtfBuilder();
  CtfBuilder(CtfBuilder&&) noexcept;
  CtfBuilder& operator=(CtfBuilder&&) noexcept;

  bool is_child() const;
  uint32_t type_count() const;  // own types added so far
  uint32_t next_id() const;     // the ID the next add returns
  void set_cu_name(std::string_view name);

  // `root` false adds a non-root type (libctf's CTF_ADD_NONROOT: not found
  // by name).
  Result<uint32_t> add_integer(std::string_view name, uint32_t format, uint32_t bits, uint32_t byte_size,
                               uint32_t bit_offset = 0, bool root = true);
  Result<uint32_t> add_float(std::string_view name, uint32_t format, uint32_t bits, uint32_t byte_size,
                             bool root = true);
  Result<uint32_t> add_pointer(uint32_t ref, bool root = true);
  Result<uint32_t> add_array(uint32_t contents, uint32_t index, uint32_t nelems, bool root = true);
  Result<uint32_t> add_struct(std::string_view name, uint64_t byte_size, bool root = true);
  Result<uint32_t> add_union(std::string_view name, uint64_t byte_size, bool root = true);
  Result<void> add_member(std::string_view name, uint32_t type, uint64_t bit_offset);
  Result<uint32_t> add_enum(std::string_view name, uint32_t byte_size = 4, bool root = true);
  Result<void> add_enumerator(std::string_view name, int32_t value);
  // kind: struct_, union_ or enum_.
  Result<uint32_t> add_forward(std::string_view name, CtfKind kind, bool root = true);
  Result<uint32_t> add_typedef(std::string_view name, uint32_t ref, bool root = true);
  // kind: volatile_, const_ or restrict_.
  Result<uint32_t> add_cv(CtfKind kind, uint32_t ref, bool root = true);
  // `bits` bits at `bit_offset` of integer or enum `ref`, `byte_size` bytes
  // (libctf's ctf_add_slice; the size is ref's).
  Result<uint32_t> add_slice(uint32_t ref, uint32_t bit_offset, uint32_t bits, uint32_t byte_size, bool root = false);
  Result<uint32_t> add_function(uint32_t return_type, std::span<const uint32_t> args, bool varargs, bool root = true);
  // A variable (the variable section), a data-object symbol or a function
  // symbol (`type` a function type) by name. Names must be unique per section.
  Result<void> add_variable(std::string_view name, uint32_t type);
  Result<void> add_object_symbol(std::string_view name, uint32_t type);
  Result<void> add_function_symbol(std::string_view name, uint32_t type);

  // The dict's bytes. Errc::invalid_argument if a type refers to an own ID
  // never added, or a symbol/variable name repeats.
  Result<std::vector<std::byte>> write() const;

  struct MMAR_LOCAL Impl;  // internal: not exported

 private:
  std::unique_ptr<Impl> impl_;
};

// Kernel BTF to CTF, shaped like DTrace's vmlinux.ctfa: a parent dict
// "shared_ctf" with every type of the base BTF, a child "vmlinux" with the
// base's function (BTF FUNC -> its prototype) and data-object (BTF VAR)
// symbols, and for each module (split BTF on that base) a child named after
// it with the module's own types and symbols.
//
// Kinds: INT -> integer (encoding, offset, bits); FLOAT -> float; PTR,
// TYPEDEF, VOLATILE, CONST, RESTRICT as such; ARRAY -> array, with the
// dimensions of a nested (multi-dimensional) array stored outermost-last, as
// gcc 12 stores them, so that libctf 2.40 (which prints them innermost
// first) names `int a[2][3]` `int [2][3]` (the total size is unchanged);
// STRUCT/UNION -> struct/union with bit offsets, a bitfield member (kflag)
// a slice of its type with the field's bits; ENUM -> enum of the BTF's size
// (an enum without values stays an empty enum, keeping its size); ENUM64 ->
// enum whose values are truncated to their low 32 bits when they do not fit
// an int32 (CTF enumerators are int32; counted in enum64_truncated); FWD ->
// forward; FUNC_PROTO -> function (a last void parameter: varargs); FUNC,
// VAR -> symbols as above; TYPE_TAG is skipped through (its users refer to
// its target); DECL_TAG and DATASEC are dropped. BTF's void (type 0) is
// shared_ctf's type 1, an integer "void" of no size and no bits, as gcc
// emits it (libctf names no type 0: `void *` would have no name).
// References to an enum that is not 4 bytes go through a slice of it with
// all its bits (libctf 2.40 sizes every enum type as an int; a slice has its
// own size): members, arrays and typedefs of it then have the BTF's size.
struct MMAR_API CtfFromBtfDict {
  std::string name;  // archive member name
  std::vector<std::byte> bytes;
};
struct MMAR_API CtfFromBtfResult {
  std::vector<CtfFromBtfDict> dicts;  // shared_ctf, vmlinux, then the modules
  // For each base BTF type ID, the shared_ctf type ID it became (0: none,
  // e.g. FUNC, VAR, DATASEC, DECL_TAG; a TYPE_TAG maps to its target's;
  // [0], void, to the `void` integer).
  std::vector<uint32_t> base_type_map;
  uint32_t types = 0;  // CTF types written, all dicts
  uint32_t functions = 0, objects = 0;
  uint32_t enum64_truncated = 0;  // enumerator values that did not fit 32 bits
};
struct MMAR_API CtfFromBtfModule {
  std::string name;  // the child dict's name
  Btf btf;           // split BTF on the base
};
// Every dict is opened with CtfDict before it is returned: BTF that makes
// no valid CTF (a reference cycle: a struct holding itself by value, a
// pointer to itself, which BTF's checks allow) is Errc::invalid_argument.
MMAR_API Result<CtfFromBtfResult> ctf_convert_btf(const Btf& vmlinux, const std::vector<CtfFromBtfModule>& modules);

// `mmar ctf from-btf`: vmlinux (raw BTF or ELF) and modules (files, or
// directories searched recursively, as /sys/kernel/btf; a file named
// "vmlinux" in them is skipped) to a CTF archive at `out` (written
// atomically, as Writer::write). Module dicts are named after the file.
struct MMAR_API CtfFromBtfStats {
  size_t modules = 0;
  uint32_t types = 0, functions = 0, objects = 0, enum64_truncated = 0;
  uint64_t archive_bytes = 0;
};
MMAR_API Result<CtfFromBtfStats> ctf_from_btf(const std::string& out, const std::string& vmlinux,
                                              const std::vector<std::string>& modules);

// ---------------------------------------------------------------------------
// CTF to BTF (userspace programs built with gcc -gctf; no peer does it)

// One dict (a child with its parent's types: the parent's first, then the
// child's) to raw little-endian BTF, whose C header (btf_dump_c) has the
// dict's layout. Kinds: integer -> INT (one encoding: BOOL, else SIGNED,
// else CHAR; full width), the integer "void" of no size and CTF type 0 ->
// BTF void; float -> FLOAT (complex ones too, of their name and size, as
// gcc -gbtf writes them: BTF has no complex kind);
// pointer, typedef, volatile, const, restrict as such; array -> ARRAY
// (index type as stored; a chain of arrays nested directly, which gcc 12
// and ctf_convert_btf store innermost dimension first, gets its dimensions
// back in C order); struct/union -> STRUCT/UNION with bit offsets, a member
// whose type is a slice a bitfield of the slice's target (kind_flag set);
// enum -> ENUM of the record's size (1, 2, 4 or 8 bytes), values signed;
// forward -> FWD (struct, union) or an empty 4-byte ENUM (enum, as libbpf
// writes an enum forward); function -> FUNC_PROTO (unnamed parameters; a
// trailing void parameter for varargs); a slice elsewhere -> its target.
// Symbols: each function symbol becomes a global FUNC of its type, each
// data-object symbol a global VAR (no DATASEC: there are no section
// offsets in CTF). Types and names are as the dict has them.
struct MMAR_API BtfFromCtfResult {
  std::vector<std::byte> btf;
  uint32_t types = 0;  // BTF types written, FUNC and VAR included
  uint32_t functions = 0, objects = 0;
};
MMAR_API Result<BtfFromCtfResult> btf_convert_ctf(const CtfDict& dict);

// `mmar btf from-ctf`: the dict `member` of `path` (an ELF object with a
// .ctf section, a raw dict or a CTF archive; "" picks the only dict, or the
// archive's parent ".ctf") to BTF at `out`, written atomically.
MMAR_API Result<BtfFromCtfResult> btf_from_ctf(const std::string& out, const std::string& path,
                                               const std::string& member = "");

}  // namespace mmar
