// SPDX-License-Identifier: BSD-2-Clause
// The BTF header and type records, checked in one place.
//
// Every BTF reader goes through these checks: Btf's lazy index and its stored
// index (btf.cpp), the pread lookup (find_file.cpp) and the archive lookup
// (find_archive.cpp, which only has a record's info word and sends anything
// the word does not pass to Btf). One set of rules and one wording, so no
// path accepts a header or a record that another refuses, and a refusal
// reads the same whichever path found it.
//
// The checks read through a callback, `read(at, n, out) -> bool` with `at`
// relative to the start of the BTF (header) or of the record, so the same
// code serves mapped bytes and pread blocks.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "mmar/btf.h"
#include "mmar/result.h"
#include "support/checked.h"
#include "support/endian.h"

namespace mmar {

inline constexpr uint32_t kBtfHeaderSize = 24;
inline constexpr uint32_t kBtfTypeHeaderSize = 12;
inline constexpr uint32_t kBtfMaxStrOffset = 0x7fffffff;  // BTF_MAX_STR_OFFSET
inline constexpr uint32_t kBtfMaxTypeId = 0x000fffff;     // BTF_MAX_TYPE
// Bits of a record's info word that no kind uses: 16-23 and 29-30.
inline constexpr uint32_t kBtfInfoReserved = 0x60ff0000u;

inline std::string btf_hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// Opened without its base, split BTF is refused with this (after its name;
// Errc::invalid_argument: the bytes are sound, the caller gave no base).
inline constexpr std::string_view kSplitBtfWithoutBase =
    "split BTF (its string offsets continue a base's): it needs its base BTF";

// "NAME: WHAT (at offset 0x...)": every malformed-BTF error, whichever reader.
inline Error btf_malformed(std::string_view name, uint64_t offset, const std::string& what) {
  return Error(Errc::malformed, std::string(name) + ": " + what + " (at offset " + btf_hex(offset) + ")", offset);
}

// Bytes of trailing data after a type record's 12-byte common header, by
// kind; -1 for an unknown kind.
inline int64_t btf_extra_size(uint8_t kind, uint32_t vlen) {
  switch (static_cast<BtfKind>(kind)) {
    case BtfKind::int_: return 4;
    case BtfKind::ptr:
    case BtfKind::fwd:
    case BtfKind::typedef_:
    case BtfKind::volatile_:
    case BtfKind::const_:
    case BtfKind::restrict_:
    case BtfKind::func:
    case BtfKind::float_:
    case BtfKind::type_tag: return 0;
    case BtfKind::array: return 12;
    case BtfKind::struct_:
    case BtfKind::union_: return int64_t{12} * vlen;
    case BtfKind::enum_: return int64_t{8} * vlen;
    case BtfKind::func_proto: return int64_t{8} * vlen;
    case BtfKind::var: return 4;
    case BtfKind::datasec: return int64_t{12} * vlen;
    case BtfKind::decl_tag: return 4;
    case BtfKind::enum64: return int64_t{12} * vlen;
    case BtfKind::unknown: return -1;
  }
  return -1;
}

// Kinds whose kind_flag means something (as the kernel's verifier allows
// it): bitfield offsets (STRUCT, UNION), a union (FWD), signedness (ENUM,
// ENUM64), an attribute (DECL_TAG, TYPE_TAG; Linux 6.14).
inline bool btf_kflag_allowed(BtfKind kind) {
  switch (kind) {
    case BtfKind::struct_:
    case BtfKind::union_:
    case BtfKind::fwd:
    case BtfKind::enum_:
    case BtfKind::enum64:
    case BtfKind::decl_tag:
    case BtfKind::type_tag: return true;
    default: return false;
  }
}

// What the info word alone says is wrong with a record ("" if nothing): an
// unknown kind, reserved bits, a kind_flag its kind does not have.
inline std::string btf_info_problem(uint32_t info) {
  const uint8_t kind = (info >> 24) & 0x1f;
  if (kind > kBtfMaxKind || btf_extra_size(kind, 0) < 0) return "unknown kind " + std::to_string(kind);
  if ((info & kBtfInfoReserved) != 0) return "reserved bits set in info " + btf_hex(info);
  if ((info >> 31) != 0 && !btf_kflag_allowed(static_cast<BtfKind>(kind))) {
    return std::string(btf_kind_name(static_cast<BtfKind>(kind))) + " record with kind_flag set";
  }
  return {};
}

// Checks the type record of type `id` and returns its size in bytes (the
// 12-byte common header and its trailing data). `room`: bytes from the
// record's start to the end of the type section; `file_off`: the record's
// offset in the file (for the error); `str_valid(off)`: is `off` a string of
// this BTF (its base's included)? `read` is only asked for bytes inside
// `room`. The checks: the header fits, the info word passes
// btf_info_problem, the trailing data fits, the ID is in range, and the
// record's name and its members', enumerators' and parameters' names are
// inside the strings.
template <class Read, class StrValid>
Result<uint32_t> btf_check_record(std::string_view name, uint64_t file_off, uint32_t id, uint64_t room, bool little,
                                  Read&& read, StrValid&& str_valid) {
  auto fail = [&](const std::string& what) {
    return btf_malformed(name, file_off, "type " + std::to_string(id) + ": " + what);
  };
  unsigned char head[kBtfTypeHeaderSize];
  if (room < kBtfTypeHeaderSize) return fail("truncated type record");
  if (!read(0, sizeof head, head)) return Error(Errc::io, std::string(name) + ": read error at " + btf_hex(file_off));
  const uint32_t name_off = read_int<uint32_t>(head, little);
  const uint32_t info = read_int<uint32_t>(head + 4, little);
  if (std::string problem = btf_info_problem(info); !problem.empty()) return fail(problem);
  const uint8_t kind = (info >> 24) & 0x1f;
  const uint32_t vlen = info & 0xffff;
  const auto extra = static_cast<uint64_t>(btf_extra_size(kind, vlen));
  if (room - kBtfTypeHeaderSize < extra) {
    return fail(std::string(btf_kind_name(static_cast<BtfKind>(kind))) + " record with vlen " + std::to_string(vlen) +
                " runs past the type section");
  }
  if (id > kBtfMaxTypeId) return fail("more than " + std::to_string(kBtfMaxTypeId) + " types");
  if (!str_valid(name_off)) return fail("name offset " + std::to_string(name_off) + " outside the strings");
  // Members, enumerators and parameters carry names too.
  uint32_t stride = 0;
  switch (static_cast<BtfKind>(kind)) {
    case BtfKind::struct_:
    case BtfKind::union_:
    case BtfKind::enum64: stride = 12; break;
    case BtfKind::enum_:
    case BtfKind::func_proto: stride = 8; break;
    default: break;
  }
  for (uint32_t i = 0; stride != 0 && i < vlen; ++i) {
    unsigned char word[4];
    const uint64_t at = kBtfTypeHeaderSize + uint64_t{i} * stride;
    if (!read(at, 4, word)) return Error(Errc::io, std::string(name) + ": read error at " + btf_hex(file_off + at));
    const uint32_t member_name = read_int<uint32_t>(word, little);
    if (!str_valid(member_name)) {
      return fail("member " + std::to_string(i) + " name offset " + std::to_string(member_name) +
                  " outside the strings");
    }
  }
  return static_cast<uint32_t>(kBtfTypeHeaderSize + extra);
}

// A BTF header's fields, checked.
struct BtfHeader {
  bool little = true;
  uint32_t hdr_len = 0;
  uint32_t type_off = 0;
  uint32_t type_len = 0;
  uint32_t str_off = 0;
  uint32_t str_len = 0;
  // From the start of the BTF.
  uint64_t types_at() const { return uint64_t{hdr_len} + type_off; }
  uint64_t strs_at() const { return uint64_t{hdr_len} + str_off; }
};

// Checks the header of the `size` bytes of BTF at `file_off` in the file:
// magic (either byte order), version, header length (its unknown tail
// zero), both sections inside the data, not overlapping, the type section
// 4-aligned; for a base BTF (`base` true) the strings start with "".
template <class Read>
Result<BtfHeader> btf_check_header(std::string_view name, uint64_t file_off, uint64_t size, bool base, Read&& read) {
  auto io = [&](uint64_t at) {
    return Error(Errc::io, std::string(name) + ": read error at " + btf_hex(file_off + at));
  };
  if (size < kBtfHeaderSize) {
    return btf_malformed(name, file_off, "truncated BTF header (" + std::to_string(size) + " bytes)");
  }
  unsigned char p[kBtfHeaderSize];
  if (!read(0, sizeof p, p)) return io(0);
  BtfHeader h;
  if (p[0] == 0x9f && p[1] == 0xeb) {
    h.little = true;
  } else if (p[0] == 0xeb && p[1] == 0x9f) {
    h.little = false;
  } else {
    return btf_malformed(name, file_off, "not BTF (magic " + btf_hex(read_int<uint16_t>(p, true)) + ")");
  }
  if (p[2] != 1) {
    return Error(Errc::unsupported,
                 std::string(name) + ": BTF version " + std::to_string(p[2]) + " (this mmar reads 1)");
  }
  h.hdr_len = read_int<uint32_t>(p + 4, h.little);
  h.type_off = read_int<uint32_t>(p + 8, h.little);
  h.type_len = read_int<uint32_t>(p + 12, h.little);
  h.str_off = read_int<uint32_t>(p + 16, h.little);
  h.str_len = read_int<uint32_t>(p + 20, h.little);
  if (h.hdr_len < kBtfHeaderSize || h.hdr_len > size) {
    return btf_malformed(name, file_off + 4, "header length " + std::to_string(h.hdr_len) + " out of range");
  }
  for (uint64_t at = kBtfHeaderSize; at < h.hdr_len;) {
    unsigned char chunk[64];
    const size_t n = static_cast<size_t>(std::min<uint64_t>(sizeof chunk, h.hdr_len - at));
    if (!read(at, n, chunk)) return io(at);
    for (size_t i = 0; i < n; ++i) {
      if (chunk[i] != 0) return btf_malformed(name, file_off + at + i, "unknown non-zero header bytes");
    }
    at += n;
  }
  const uint64_t data_size = size - h.hdr_len;
  if (h.type_off % 4 != 0) return btf_malformed(name, file_off + 8, "type section offset not 4-aligned");
  if (!in_bounds(h.type_off, h.type_len, data_size)) {
    return btf_malformed(name, file_off + 8,
                         "type section [" + std::to_string(h.type_off) + ", +" + std::to_string(h.type_len) +
                             ") outside the data (" + std::to_string(data_size) + " bytes)");
  }
  if (!in_bounds(h.str_off, h.str_len, data_size)) {
    return btf_malformed(name, file_off + 16,
                         "string section [" + std::to_string(h.str_off) + ", +" + std::to_string(h.str_len) +
                             ") outside the data (" + std::to_string(data_size) + " bytes)");
  }
  if (uint64_t{h.type_off} + h.type_len > h.str_off && uint64_t{h.str_off} + h.str_len > h.type_off) {
    return btf_malformed(name, file_off + 8, "type and string sections overlap");
  }
  if (h.str_len > kBtfMaxStrOffset) return btf_malformed(name, file_off + 20, "string section too large");
  if (base) {
    unsigned char first = 1;
    if (h.str_len != 0 && !read(h.strs_at(), 1, &first)) return io(h.strs_at());
    // A base's strings start with the empty string (offset 0 is ""); a
    // split BTF's continue its base's, so they start with a name: what a
    // module's BTF opened alone looks like. Said as such, not as damage.
    if (h.str_len != 0 && first != 0) {
      return Error(Errc::invalid_argument, std::string(name) + ": " + std::string(kSplitBtfWithoutBase),
                   file_off + h.strs_at());
    }
    if (h.str_len == 0) return btf_malformed(name, file_off + 20, "empty string section (it must hold at least \"\")");
  }
  return h;
}

}  // namespace mmar
