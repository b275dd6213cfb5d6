// SPDX-License-Identifier: BSD-2-Clause
// CTF on-disk layout (binutils include/ctf.h, CTF_VERSION_2 and _3).
//
// A dict's byte order is known only at open (the magic tells), so records
// are not overlaid as fixed-order structs: each field is read at its spec
// offset with read_int(p, little) (memcpy, never a cast). The offsets below
// keep the spec's field names.
#pragma once

#include <cstdint>

namespace mmar::ctf {

inline constexpr uint16_t kMagic = 0xdff2;  // CTF_MAGIC
inline constexpr uint8_t kVersion2 = 3;     // CTF_VERSION_2
inline constexpr uint8_t kVersion3 = 4;     // CTF_VERSION_3 (binutils 2.40 writes this)

inline constexpr uint8_t kFlagCompress = 0x1;     // CTF_F_COMPRESS: sections zlib-compressed
inline constexpr uint8_t kFlagNewFuncInfo = 0x2;  // CTF_F_NEWFUNCINFO
inline constexpr uint8_t kFlagIdxSorted = 0x4;    // CTF_F_IDXSORTED
inline constexpr uint8_t kFlagDynStr = 0x8;       // CTF_F_DYNSTR: symbols in .dynsym/.dynstr
inline constexpr uint8_t kFlagsKnown = 0xf;       // CTF_F_MAX

// ctf_preamble_t: ctp_magic (u16), ctp_version (u8), ctp_flags (u8).
inline constexpr uint32_t kPreambleSize = 4;
// ctf_header_t (v3): the preamble, then 12 u32: cth_parlabel, cth_parname,
// cth_cuname, cth_lbloff, cth_objtoff, cth_funcoff, cth_objtidxoff,
// cth_funcidxoff, cth_varoff, cth_typeoff, cth_stroff, cth_strlen.
inline constexpr uint32_t kHeaderV3Size = 52;
// ctf_header_v2_t: the preamble, then 9 u32: cth_parlabel, cth_parname,
// cth_lbloff, cth_objtoff, cth_funcoff, cth_varoff, cth_typeoff, cth_stroff,
// cth_strlen.
inline constexpr uint32_t kHeaderV2Size = 40;

// ctf_stype_t: ctt_name, ctt_info, ctt_size|ctt_type (12 bytes); when
// ctt_size is CTF_LSIZE_SENT, ctf_type_t adds ctt_lsizehi, ctt_lsizelo (20).
inline constexpr uint32_t kStypeSize = 12;
inline constexpr uint32_t kTypeSize = 20;
inline constexpr uint32_t kLsizeSent = 0xffffffff;

// ctt_info: kind in bits 26-31, root flag bit 25, vlen bits 0-23.
inline uint8_t info_kind(uint32_t info) { return static_cast<uint8_t>(info >> 26); }
inline bool info_isroot(uint32_t info) { return ((info >> 25) & 1) != 0; }
inline uint32_t info_vlen(uint32_t info) { return info & 0xffffff; }

// Names: bit 31 is the string table (0 internal, 1 the ELF strtab).
inline constexpr uint32_t kNameOffsetMask = 0x7fffffff;
inline uint32_t name_stid(uint32_t name) { return name >> 31; }

// Type IDs: a child's own types have bit 31 set; at or below this, a
// child's IDs are its parent's.
inline constexpr uint32_t kMaxParentType = 0x7fffffff;  // CTF_MAX_PTYPE

// Structs of this size or more use ctf_lmember_t (16 bytes: ctlm_name,
// ctlm_offsethi, ctlm_type, ctlm_offsetlo) instead of ctf_member_t (12:
// ctm_name, ctm_offset, ctm_type).
inline constexpr uint64_t kLstructThresh = 536870912;  // CTF_LSTRUCT_THRESH
inline constexpr uint32_t kMemberSize = 12;
inline constexpr uint32_t kLmemberSize = 16;
// ctf_array_t: cta_contents, cta_index, cta_nelems.
inline constexpr uint32_t kArraySize = 12;
// ctf_slice_t: cts_type (u32), cts_offset (u16), cts_bits (u16).
inline constexpr uint32_t kSliceSize = 8;
// ctf_enum_t: cte_name, cte_value (i32).
inline constexpr uint32_t kEnumSize = 8;
// ctf_lblent_t: ctl_label, ctl_type; ctf_varent_t: ctv_name, ctv_type.
inline constexpr uint32_t kLabelSize = 8;
inline constexpr uint32_t kVarSize = 8;

// CTF_INT_* / CTF_FP_* data word: encoding bits 24-31, offset 16-23, bits 0-15.
inline uint32_t enc_format(uint32_t data) { return data >> 24; }
inline uint32_t enc_offset(uint32_t data) { return (data >> 16) & 0xff; }
inline uint32_t enc_bits(uint32_t data) { return data & 0xffff; }

inline constexpr uint32_t kIntSigned = 0x01;  // CTF_INT_SIGNED (enums' guessed format)

// ELF symbol types and sections used by libctf's symbol skip rules.
inline constexpr uint8_t kSttObject = 1;
inline constexpr uint8_t kSttFunc = 2;
inline constexpr uint16_t kShnUndef = 0;
inline constexpr uint16_t kShnAbs = 0xfff1;

}  // namespace mmar::ctf
