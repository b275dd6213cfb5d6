// SPDX-License-Identifier: BSD-2-Clause
// BTF: parse, look up and print kernel type information, split BTF included.
//
// A Btf is a zero-copy view of raw BTF bytes (a file, an ELF .BTF section or
// an archive member): type records and strings are read in place, in either
// byte order. Opening checks the header and section bounds only; the index of
// type offsets is built lazily, as far as a lookup needs, validating each
// record it indexes (size, kind, string offsets). validate() checks
// everything, including every referenced type ID.
//
// Split BTF (a kernel module on vmlinux): its type IDs continue after the
// base's last ID and its string offsets after the base's string section;
// type(), str() and find() work across base and split transparently. A Btf
// keeps its base alive. Btf handles are cheap to copy and thread-safe.
#pragma once

#include "mmar/export.h"

#include <bit>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mmar/archive.h"
#include "mmar/result.h"
#include "mmar/source.h"

namespace mmar {

enum class BtfKind : uint8_t {
  unknown = 0,
  int_ = 1,
  ptr = 2,
  array = 3,
  struct_ = 4,
  union_ = 5,
  enum_ = 6,
  fwd = 7,
  typedef_ = 8,
  volatile_ = 9,
  const_ = 10,
  restrict_ = 11,
  func = 12,
  func_proto = 13,
  var = 14,
  datasec = 15,
  float_ = 16,
  decl_tag = 17,
  type_tag = 18,
  enum64 = 19,
};
inline constexpr uint8_t kBtfMaxKind = 19;

// "INT", "STRUCT", ... as bpftool prints them.
MMAR_API const char* btf_kind_name(BtfKind kind);

class Btf;

// One type record, read in place. Valid while its Btf is alive.
class MMAR_API BtfType {
 public:
  // Inline: the dumps read millions of fields, and a call per field cost
  // more than the decoding (a fifth of `btf dump --format c`).
  uint32_t id() const { return id_; }
  BtfKind kind() const { return static_cast<BtfKind>((u32_at(4) >> 24) & 0x1f); }
  uint16_t vlen() const { return static_cast<uint16_t>(u32_at(4) & 0xffff); }
  bool kflag() const { return (u32_at(4) >> 31) != 0; }
  uint32_t name_off() const { return u32_at(0); }
  uint32_t size() const { return u32_at(8); }  // size_or_type, as a size
  uint32_t type() const { return u32_at(8); }  // size_or_type, as a type ID
  // The u32 at `index` of the record's trailing data (after the 12-byte
  // common header); the record's size was checked when it was indexed.
  uint32_t extra_u32(uint32_t index) const { return u32_at(12 + uint64_t{index} * 4); }

 private:
  friend class Btf;
  BtfType(const std::byte* rec, uint32_t id, bool little) : rec_(rec), id_(id), little_(little) {}
  // The record's u32 at byte `at`, in the BTF's byte order (any alignment).
  uint32_t u32_at(uint64_t at) const {
    uint32_t v;
    std::memcpy(&v, rec_ + at, sizeof v);
    return (std::endian::native == std::endian::little) == little_ ? v : __builtin_bswap32(v);
  }
  const std::byte* rec_;
  uint32_t id_;
  bool little_;
};

struct MMAR_API BtfOpenOptions {
  bool validate = false;  // run validate() at open
};

class MMAR_API Btf {
 public:
  // Raw BTF bytes, or an ELF object whose .BTF section is used.
  static Result<Btf> parse(Bytes bytes, std::string name, const BtfOpenOptions& options = {});
  static Result<Btf> parse_split(Bytes bytes, std::string name, const Btf& base, const BtfOpenOptions& options = {});
  // Raw BTF with its stored index (see docs/FORMAT.md, "BTF in archives":
  // the NAME.mmidx and NAME.mmnames members) built for bytes whose XXH3 is
  // `btf_xxh3`. An index that does not match is ignored (the BTF is then
  // indexed lazily as usual).
  static Result<Btf> parse_indexed(Bytes bytes, std::string name, Bytes offsets, Bytes names, uint64_t btf_xxh3,
                                   const Btf* base);
  // The stored index for this BTF, bound to `btf_xxh3` (the XXH3 of its bytes).
  struct StoredIndex {
    std::vector<std::byte> offsets;  // NAME.mmidx
    std::vector<std::byte> names;    // NAME.mmnames
  };
  Result<StoredIndex> build_index(uint64_t btf_xxh3) const;
  bool has_stored_index() const;

  // A file path (raw BTF or ELF), mapped.
  static Result<Btf> open(const std::string& path, const Btf* base = nullptr, const BtfOpenOptions& options = {});

  const std::string& name() const;
  bool little_endian() const;
  bool is_split() const;
  std::optional<Btf> base() const;  // nullopt for a base BTF
  uint32_t start_id() const;        // first type ID of this BTF (1 for a base)
  uint32_t start_str_off() const;   // first string offset of this BTF (0 for a base)
  // One past the last type ID (base included), like libbpf's btf__type_cnt.
  // Indexes the whole type section; an error if a record is malformed.
  Result<uint32_t> type_count() const;
  uint32_t str_size() const;  // this BTF's string section, bytes
  std::span<const std::byte> raw() const;

  // Type by ID (0 is void: an error). Indexes lazily up to `id`.
  Result<BtfType> type(uint32_t id) const;
  // String at offset `off` (across base and split), or nullopt if invalid.
  std::optional<std::string_view> str(uint32_t off) const;
  std::string_view name_of(const BtfType& t) const;  // "" when anonymous or invalid

  // First type with this name (and kind, if given), base first; Errc::not_found.
  Result<BtfType> find(std::string_view name, std::optional<BtfKind> kind = std::nullopt) const;
  // Every type with this name (and kind), base first, in ID order; empty
  // when there is none. Builds the name index (or uses the stored one).
  Result<std::vector<BtfType>> find_all(std::string_view name, std::optional<BtfKind> kind = std::nullopt) const;

  // Check every record, string offset and referenced type ID.
  Result<void> validate() const;

  struct MMAR_LOCAL Impl;  // internal: not exported

 private:
  explicit Btf(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

// Building BTF: an empty base, an empty split on a base, or the types of a
// parsed BTF to append to. Follows libbpf's btf__add_* semantics (and string
// deduplication: own strings, and for split BTF the base's first), so the
// same calls give the same bytes as libbpf. Every add returns the new type
// ID; add_field/add_enum_value/add_param/add_datasec_var extend the last type.
class MMAR_API BtfBuilder {
 public:
  BtfBuilder();                                    // empty base BTF
  explicit BtfBuilder(const Btf& base);            // empty split BTF on base
  static Result<BtfBuilder> from(const Btf& btf);  // a parsed BTF's own types and strings
  ~BtfBuilder();
  BtfBuilder(BtfBuilder&&) noexcept;
  BtfBuilder& operator=(BtfBuilder&&) noexcept;

  uint32_t next_id() const;
  Result<uint32_t> add_str(std::string_view s);

  Result<uint32_t> add_int(std::string_view name, uint32_t byte_size, uint8_t encoding);  // 1 signed, 2 char, 4 bool
  Result<uint32_t> add_float(std::string_view name, uint32_t byte_size);
  Result<uint32_t> add_ptr(uint32_t type);
  Result<uint32_t> add_array(uint32_t index_type, uint32_t elem_type, uint32_t nr_elems);
  Result<uint32_t> add_struct(std::string_view name, uint32_t byte_size);
  Result<uint32_t> add_union(std::string_view name, uint32_t byte_size);
  Result<void> add_field(std::string_view name, uint32_t type, uint32_t bit_offset, uint32_t bit_size = 0);
  Result<uint32_t> add_enum(std::string_view name, uint32_t byte_size);
  Result<void> add_enum_value(std::string_view name, int64_t value);
  Result<uint32_t> add_enum64(std::string_view name, uint32_t byte_size, bool is_signed);
  Result<void> add_enum64_value(std::string_view name, uint64_t value);
  Result<uint32_t> add_fwd(std::string_view name, bool is_union);
  Result<uint32_t> add_typedef(std::string_view name, uint32_t type);
  Result<uint32_t> add_volatile(uint32_t type);
  Result<uint32_t> add_const(uint32_t type);
  Result<uint32_t> add_restrict(uint32_t type);
  Result<uint32_t> add_type_tag(std::string_view value, uint32_t type);
  Result<uint32_t> add_func(std::string_view name, uint32_t linkage, uint32_t proto);  // 0 static, 1 global, 2 extern
  Result<uint32_t> add_func_proto(uint32_t ret_type);
  Result<void> add_param(std::string_view name, uint32_t type);
  Result<uint32_t> add_var(std::string_view name, uint32_t linkage, uint32_t type);
  Result<uint32_t> add_datasec(std::string_view name, uint32_t byte_size);
  Result<void> add_datasec_var(uint32_t var_type, uint32_t offset, uint32_t byte_size);
  Result<uint32_t> add_decl_tag(std::string_view value, uint32_t type, int32_t component_idx);

  // Raw BTF: header, types, strings (in the byte order of the BTF it came
  // from; little-endian for new ones).
  std::vector<std::byte> write() const;

  struct MMAR_LOCAL Impl;  // internal: not exported

 private:
  std::unique_ptr<Impl> impl_;
};

// One lookup in a BTF file (raw, or an ELF object's .BTF) without mapping
// it: the header, then the type section and the names compared, are read in
// 64 KiB blocks with pread, stopping at the first type with this name (and
// kind); each record passed is checked as Btf's index checks it. For a tool
// that asks one question of a file: where page-table updates are slow, a
// mapping costs more than the answer. A split BTF's names in its base are
// not resolved here (open it with Btf::open on its base).
struct MMAR_API BtfFoundType {
  uint32_t id = 0;
  BtfKind kind = BtfKind::unknown;
  uint32_t size_or_type = 0;
  uint16_t vlen = 0;
  std::string name;
};
MMAR_API Result<BtfFoundType> btf_find_in_file(const std::string& path, std::string_view name,
                                      std::optional<BtfKind> kind = std::nullopt);

// One lookup in a BTF member of an archive, answered as BtfSet::open(member)
// .find(name, kind) would answer it (a split member's base is searched
// first), without mapping anything: with the stored index that `mmar btf
// pack` writes and the archive's name fence, it is five small preads (the
// archive's head, a run of entries, their names, the hashed name entries,
// the name itself). The name is always compared with the BTF's own string;
// kind, size and vlen come from the index, which is bound to the member's
// checksum. Members that are compressed, ELF objects, or without a usable
// index are answered by opening the archive.
struct MMAR_API BtfLookupTrace {
  uint32_t reads = 0;      // preads made (the full path's mapping not counted)
  bool full_path = false;  // answered by opening the archive
};
MMAR_API Result<BtfFoundType> btf_find_in_archive(const std::string& archive, std::string_view member, std::string_view name,
                                         std::optional<BtfKind> kind = std::nullopt, BtfLookupTrace* trace = nullptr);

// `mmar btf pack`: one kernel's base BTF (`vmlinux`, raw BTF) and its
// modules' split BTF (files, or directories searched recursively, as
// /sys/kernel/btf is) in one archive at `out`: member "vmlinux", members
// "modules/NAME" linked to it, and for each a stored index (NAME.mmidx,
// NAME.mmnames) bound to its bytes. Every module is checked to be valid
// split BTF on this base first. Written atomically, as Writer::write.
struct MMAR_API BtfPackOptions {
  Codec codec = Codec::none;  // none keeps members zero-copy (mapped in place)
  // Called as each module is checked and added: (modules done, modules in
  // all), counts of modules, not bytes.
  std::function<void(size_t done, size_t total)> progress;
};
struct MMAR_API BtfPackStats {
  size_t modules = 0;
  uint64_t archive_bytes = 0;
};
MMAR_API Result<BtfPackStats> btf_pack(const std::string& out, const std::string& vmlinux, const std::vector<std::string>& modules,
                              const BtfPackOptions& options = {});

// The BTF members of one archive. Opening a split member (one whose entry
// links to its base member) opens the base first; each base is parsed once
// and shared by all its splits. Thread-safe.
class MMAR_API BtfSet {
 public:
  explicit BtfSet(Archive archive);
  ~BtfSet();
  BtfSet(BtfSet&&) noexcept;
  BtfSet& operator=(BtfSet&&) noexcept;
  const Archive& archive() const;
  Result<Btf> open(std::string_view member_name) const;
  Result<Btf> open(const Member& member) const;

 private:
  struct MMAR_LOCAL Impl;  // internal: not exported
  std::unique_ptr<Impl> impl_;
};

// Print types exactly as `bpftool btf dump file F [--base-btf B]` does in its
// default (raw) format: for a split BTF only its own types. With json, the
// same data as bpftool -j prints.
MMAR_API Result<void> btf_dump_raw(const Btf& btf, std::string& out, bool json = false);

// Where a streamed dump goes: called with consecutive pieces of the text
// (about 256 KiB each, the last shorter), each view valid only during the
// call. An error it returns stops the dump and is the dump's result.
using TextSink = std::function<Result<void>(std::string_view chunk)>;

// The same text as the std::string overload, streamed to `sink`: memory
// stays at one chunk whatever the dump's size, and a consumer (a pipe)
// works while the rest is formatted.
MMAR_API Result<void> btf_dump_raw(const Btf& btf, const TextSink& sink, bool json = false);

struct MMAR_API CHeaderOptions {
  // Reproduce bpftool 7.1 byte for byte, including the places where its
  // header does not have the BTF's layout (1- and 8-byte enums printed
  // without a mode attribute; gaps in packed structs left to alignment;
  // packed unions not marked packed).
  bool bpftool_compat = false;
};

// A C header as `bpftool btf dump file F [--base-btf B] format c` prints it
// (every type, the base's included; dependencies before use, forward
// declarations where a pointer suffices, duplicate names suffixed ___N), but
// with every struct's size and offsets as the BTF says (see CHeaderOptions).
// Validates the BTF first; a cyclic or over-deep type chain is an error.
MMAR_API Result<void> btf_dump_c(const Btf& btf, std::string& out, const CHeaderOptions& options = {});
// The same header streamed to `sink` (see TextSink). On an error the sink
// may already have been given part of the header.
MMAR_API Result<void> btf_dump_c(const Btf& btf, const TextSink& sink, const CHeaderOptions& options = {});

}  // namespace mmar
