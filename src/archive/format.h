// SPDX-License-Identifier: BSD-2-Clause
// On-disk structures of the mmar archive format, version 1.
// docs/FORMAT.md is the normative description; keep the two in step.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "support/endian.h"

namespace mmar::format {

// "\x89MMAR\r\n\x1a": the high byte catches 7-bit transfers, CR LF catches
// newline translation, ^Z stops DOS `type`.
inline constexpr unsigned char kMagic[8] = {0x89, 'M', 'M', 'A', 'R', '\r', '\n', 0x1a};
inline constexpr uint16_t kVersion = 1;
inline constexpr uint64_t kSuperblockSize = 64;
inline constexpr uint64_t kSuperblockCount = 2;  // slots at offsets 0 and 64
inline constexpr uint64_t kHeaderAreaSize = kSuperblockSize * kSuperblockCount;
inline constexpr uint64_t kEntrySize = 64;
inline constexpr uint32_t kNoLink = 0xffffffffu;
inline constexpr uint8_t kMinAlignLog2 = 12;  // 4 KiB
inline constexpr uint8_t kMaxAlignLog2 = 16;  // 64 KiB
inline constexpr uint64_t kPackedAlign = 8;   // alignment of raw type information not on a page

// Where a writer starts stored bytes that are not on a page (docs/FORMAT.md
// "Member data"): raw type information (BTF, CTF, a BTF index, read in place
// as structs) at a multiple of 8; compressed bytes (always inflated into a
// buffer) and raw plain data right where the data before them ends.
inline uint64_t packed_align(uint8_t codec, uint8_t kind) { return codec == 0 && kind != 0 ? kPackedAlign : 1; }

// Whether a writer starts a raw member on a page (docs/FORMAT.md "Member
// data"): an ELF object always (its segments map straight from the archive);
// a member of at least a page stored raw by choice (no compression asked, or
// at most the threshold); a member stored raw only because compression did
// not make it smaller (an already compressed file: .gz, .png, .xz) from
// kIncompressibleOnPage up, so a tree of such files does not pay half a page
// of padding per file (at most 0.2 % of the member at 4 KiB pages, 3 % at
// 64 KiB).
inline constexpr uint64_t kIncompressibleOnPage = uint64_t{1} << 20;
enum class RawWhy { chosen, incompressible };
inline bool raw_on_page(bool elf, uint64_t size, uint64_t align, RawWhy why) {
  return elf || size >= (why == RawWhy::chosen ? align : std::max(align, kIncompressibleOnPage));
}

// Superblock flags (sb_flags). A reader refuses a flag it does not know.
inline constexpr uint32_t kSbFlagIndexDelta = 1u << 0;  // sb_index_offset holds an index delta, not a table
inline constexpr uint32_t kSbFlagFramed = 1u << 1;      // members may be frame streams (me_flags bit 2)
inline constexpr uint32_t kSbFlagFramed2 = 1u << 2;     // frame streams may have v2 tables (kFrameMagic2)
// The index (member table and names; never an index delta) is stored as a
// v2 frame stream of zstd frames ("Compressed index").
inline constexpr uint32_t kSbFlagIndexFramed = 1u << 3;
// With kSbFlagIndexFramed only: in each frame of the compressed index, an
// entry's name offset, and its stream offset when it shares the entry
// before's stream, are stored as differences from what that entry predicts
// ("Compressed index", "Predicted offsets").
inline constexpr uint32_t kSbFlagIndexPredicted = 1u << 4;
// Frame streams may have v3 tables (kFrame3Sized; "Table v3").
inline constexpr uint32_t kSbFlagFramed3 = 1u << 5;
inline constexpr uint32_t kKnownSbFlags =
    kSbFlagIndexDelta | kSbFlagFramed | kSbFlagFramed2 | kSbFlagIndexFramed | kSbFlagIndexPredicted | kSbFlagFramed3;
// Frames of a compressed index: 64 KiB (a lookup inflates one or two).
inline constexpr uint8_t kIndexFrameLog2 = 16;
// Entries per frame of a compressed index: frames hold whole entries, and
// offset prediction starts afresh with each frame's first.
inline constexpr uint32_t kIndexFrameEntries = (uint32_t{1} << kIndexFrameLog2) / 64;
// A compressed index inflates to at most this many times its stored size
// (real ones: about 5); a writer stores a more compressible one plain.
inline constexpr uint64_t kMaxIndexRatio = 64;

// Superblock: two copies, at offsets 0 and 64. A reader uses the valid copy
// (magic and sb_xxh3 correct) with the higher sb_generation. Writers of new
// archives write both identical; an in-place update (writable mount) writes
// the slot not in use, so a torn write leaves the other intact.
struct Superblock {
  unsigned char sb_magic[8];
  ul16 sb_version;         // kVersion
  ul16 sb_size;            // sizeof(Superblock) = 64
  ul32 sb_flags;           // kSbFlag*; 0 in archives written whole
  ul64 sb_generation;      // >= 1; the larger valid slot wins
  ul64 sb_index_offset;    // start of the member table, 8-aligned
  ul64 sb_index_size;      // member table + name table, bytes
  ul32 sb_member_count;    // entries in the member table
  uint8_t sb_align_log2;   // page alignment used for raw members (12..16)
  uint8_t sb_reserved[3];  // zero
  ul64 sb_index_xxh3;      // XXH3-64 of the index bytes
  ul64 sb_xxh3;            // XXH3-64 of bytes [0, 56) of this superblock
};
static_assert(sizeof(Superblock) == kSuperblockSize);
static_assert(std::is_trivially_copyable_v<Superblock>);

enum class EntryCodec : uint8_t { none = 0, zstd = 1, xz = 2, extents = 3 };

// An extent map (me_codec 3, written by in-place updates, docs/FORMAT.md
// "Extent maps"): the stored bytes are this header and ex_count Extents,
// sorted by ex_logical, disjoint, inside [0, me_size); what no extent covers
// reads as zeros.
inline constexpr unsigned char kExtentMagic[8] = {'M', 'M', 'A', 'R', 'E', 'X', 'T', '1'};
struct ExtentMapHeader {
  unsigned char ex_magic[8];  // kExtentMagic
  ul32 ex_count;              // extents that follow
  ul32 ex_reserved;           // zero
};
static_assert(sizeof(ExtentMapHeader) == 16);
struct Extent {
  ul64 ex_logical;   // offset in the member's bytes
  ul64 ex_length;    // bytes, > 0
  ul64 ex_physical;  // file offset of those bytes, stored raw
};
static_assert(sizeof(Extent) == 24);
static_assert(std::is_trivially_copyable_v<Extent>);

// Member flags (me_flags).
inline constexpr uint16_t kFlagPageAligned = 1u << 0;  // me_data_offset is sb_align-aligned
inline constexpr uint16_t kFlagHasBtf = 1u << 1;       // ELF object with a .BTF section
inline constexpr uint16_t kFlagFramed = 1u << 2;       // stored bytes are a frame stream (FrameTableHeader)
inline constexpr uint16_t kFlagAttrs = 1u << 3;        // an attribute record follows the name (docs/FORMAT.md "Attributes")
inline constexpr uint16_t kFlagChunkSums = 1u << 4;    // a raw member's chunk checksums end at me_data_offset (ChunkSumsHeader)
inline constexpr uint16_t kKnownFlags = kFlagPageAligned | kFlagHasBtf | kFlagFramed | kFlagAttrs | kFlagChunkSums;

// Attribute record (kFlagAttrs): right after the member's name in the name
// table, ul32 at_size, then at_size bytes of fields, each u8 tag, ul32 len,
// len bytes, in increasing tag order (kAttrXattr may repeat, names strictly
// increasing).
inline constexpr uint32_t kMaxAttrSize = 1u << 20;
enum AttrTag : uint8_t {
  kAttrOwner = 1,   // ul32 uid, ul32 gid
  kAttrUname = 2,   // the owner's name, 1..255 bytes, no NUL
  kAttrGname = 3,   // the group's name, likewise
  kAttrDevice = 4,  // ul32 major, ul32 minor (character and block devices only)
  kAttrLinkId = 5,  // ul64, non-zero: members sharing it are hard links of one file
  kAttrXattr = 6,   // name (1..255 bytes), NUL, value (0..65536 bytes)
};

// A frame stream (docs/FORMAT.md "Frame streams"): the stored bytes of a
// member with kFlagFramed are a FrameTableHeader, the rest of the table,
// then the frames back to back. Frame i holds bytes [i << ft_frame_log2,
// ...) of the stream, each frame independently compressed with the member's
// codec, or raw when its stored length equals its inflated length. Several
// members may share one stream (small members packed together): each member
// is bytes [me_stream_offset, me_stream_offset + me_size) of it.
//
// Table v1 (kFrameMagic): ft_count FrameEntry (16 bytes: end, XXH3-64).
// Table v2 (kFrameMagic2): ceil(ft_count / 256) - 1 anchors (ul64: the end
// of each group of 256 frames but the last), then ft_count FrameEntry2 (8
// bytes: stored length, low 32 bits of XXH3-64); zstd frames are magicless
// and carry no content size.
// Table v3: a header of one byte -- bits 0-4 ft_frame_log2, bits 5-6 zero,
// bit 7 (kFrame3Sized) set when the stream is exactly its member's bytes
// (ft_size is the member's me_size) -- and, bit 7 clear, a ul32 ft_size
// after it; then anchors as v2, then ft_count entries of 7 bytes (a 3-byte
// stored length, the low 32 bits of XXH3-64). ft_count is ceil(ft_size /
// 2^log2). The first byte of a v1 or v2 table is 'M', never a v3 header's.
inline constexpr unsigned char kFrameMagic[8] = {'M', 'M', 'A', 'R', 'F', 'R', 'M', '1'};
inline constexpr unsigned char kFrameMagic2[8] = {'M', 'M', 'A', 'R', 'F', 'R', 'M', '2'};
inline constexpr uint8_t kMinFrameLog2 = 12;  // 4 KiB
inline constexpr uint8_t kMaxFrameLog2 = 22;  // 4 MiB: what one frame may cost a reader in memory
inline constexpr uint32_t kFrameGroup = 256;  // v2, v3: frames per anchor
inline constexpr uint8_t kFrame3Sized = 0x80;     // v3 header: ft_size is the member's me_size
inline constexpr uint8_t kFrame3Reserved = 0x60;  // v3 header: zero
inline constexpr uint64_t kFrameEntry3Size = 7;   // v3 entry: 3-byte length, 4-byte sum
struct FrameTableHeader {
  unsigned char ft_magic[8];  // kFrameMagic or kFrameMagic2
  ul64 ft_size;               // bytes of the stream, inflated
  ul32 ft_count;              // frames: ceil(ft_size / 2^ft_frame_log2), >= 1
  uint8_t ft_frame_log2;      // kMinFrameLog2 .. kMaxFrameLog2
  uint8_t ft_reserved[3];     // zero
  ul64 ft_xxh3;               // XXH3-64 of bytes [0, 24) of this header
};
static_assert(sizeof(FrameTableHeader) == 32);
static_assert(std::is_trivially_copyable_v<FrameTableHeader>);
struct FrameEntry {
  ul64 fr_end;   // end of frame i's stored bytes, from the start of the stream
  ul64 fr_xxh3;  // XXH3-64 of frame i's stored bytes
};
static_assert(sizeof(FrameEntry) == 16);
static_assert(std::is_trivially_copyable_v<FrameEntry>);
struct FrameAnchor {
  ul64 fa_end;  // end of group g's last frame (frame 256g + 255), from the start of the stream
};
static_assert(sizeof(FrameAnchor) == 8);
static_assert(std::is_trivially_copyable_v<FrameAnchor>);
struct FrameEntry2 {
  ul32 fr_length;  // frame i's stored bytes: > 0, <= its inflated bytes (equal: stored raw)
  ul32 fr_sum;     // low 32 bits of XXH3-64 of frame i's stored bytes
};
static_assert(sizeof(FrameEntry2) == 8);
static_assert(std::is_trivially_copyable_v<FrameEntry2>);

// Chunk checksums of a raw member (docs/FORMAT.md "Chunk checksums"): with
// kFlagChunkSums, the member's data [me_data_offset, +me_size) is preceded
// by cs_count XXH3-64 sums (ul64 each, chunk i covering bytes
// [i << cs_chunk_log2, ...) of the member) and then this header, which ends
// exactly at me_data_offset: a reader finds it from the entry alone, and
// the data keeps its alignment (the table lies in what would be padding).
inline constexpr unsigned char kChunkSumsMagic[8] = {'M', 'M', 'A', 'R', 'S', 'U', 'M', '1'};
inline constexpr uint8_t kChunkLog2 = 16;  // what writers use: 64 KiB
struct ChunkSumsHeader {
  unsigned char cs_magic[8];  // kChunkSumsMagic
  ul32 cs_count;              // ceil(me_size / 2^cs_chunk_log2), >= 2
  uint8_t cs_chunk_log2;      // kMinFrameLog2 .. kMaxFrameLog2
  uint8_t cs_reserved[3];     // zero
};
static_assert(sizeof(ChunkSumsHeader) == 16);
static_assert(std::is_trivially_copyable_v<ChunkSumsHeader>);

// One member. The table is sorted by name, bytewise (memcmp, shorter first).
struct Entry {
  ul64 me_data_offset;  // absolute file offset of the stored bytes
  ul64 me_stored_size;  // bytes stored at me_data_offset
  ul64 me_size;         // original size (== stored size when me_codec is none)
  ul64 me_xxh3;         // XXH3-64 of the original bytes
  ul64 me_mtime_ns;     // signed nanoseconds since the Unix epoch
  ul32 me_name_offset;  // into the name table
  ul32 me_name_len;     // bytes, no terminator
  ul32 me_mode;         // st_mode: S_IFREG, S_IFDIR or S_IFLNK plus permissions
  ul32 me_link;         // index of a related member (split BTF -> base), or kNoLink
  uint8_t me_codec;     // EntryCodec
  uint8_t me_kind;      // mmar::Kind
  ul16 me_flags;        // kFlag*
  ul32 me_stream_offset;  // kFlagFramed: where the member starts in its frame stream; else zero
};
static_assert(sizeof(Entry) == kEntrySize);
static_assert(std::is_trivially_copyable_v<Entry>);

// Index delta (docs/FORMAT.md, "Index deltas"): what one in-place commit
// changed, relative to the index before it. Followed by dh_count entries
// sorted by name (a tombstone, me_mode 0, removes its name) and their names.
inline constexpr unsigned char kDeltaMagic[8] = {'M', 'M', 'A', 'R', 'D', 'L', 'T', '1'};
inline constexpr uint32_t kDeltaPrevIsDelta = 1u << 0;  // dh_flags: the previous index is a delta too
inline constexpr uint32_t kMaxDeltaDepth = 64;           // deltas in one chain, at most

struct DeltaHeader {
  unsigned char dh_magic[8];  // kDeltaMagic
  ul64 dh_prev_offset;        // the index this delta applies to: a member table, or another delta
  ul64 dh_prev_size;          // its size in bytes
  ul64 dh_prev_xxh3;          // XXH3-64 of its bytes
  ul32 dh_prev_count;         // members after the previous index is applied
  ul32 dh_flags;              // kDeltaPrevIsDelta
  ul32 dh_depth;              // deltas in the chain, this one included (1..kMaxDeltaDepth)
  ul32 dh_count;              // entries in this delta
  ul64 dh_names_size;         // bytes of names after the entries
  ul64 dh_reserved;           // zero
};
static_assert(sizeof(DeltaHeader) == 64);
static_assert(std::is_trivially_copyable_v<DeltaHeader>);

}  // namespace mmar::format

// binutils libctf archive (struct ctf_archive in ctf.h, binutils 2.40), all
// fields little-endian. After the header: ctfa_ndicts modents sorted by name;
// names are NUL-terminated at ctfa_names + name_offset; dict i is a u64 size
// followed by that many bytes at ctfa_ctfs + ctf_offset.
namespace mmar::ctfa {

inline constexpr uint64_t kMagic = 0x8b47f2a4d7623eebULL;
inline constexpr uint64_t kModelILP32 = 1;  // CTF_MODEL_ILP32
inline constexpr uint64_t kModelLP64 = 2;   // CTF_MODEL_LP64

struct Header {
  ul64 ctfa_magic;
  ul64 ctfa_model;
  ul64 ctfa_ndicts;
  ul64 ctfa_names;
  ul64 ctfa_ctfs;
};
static_assert(sizeof(Header) == 40);

struct Modent {
  ul64 name_offset;  // relative to ctfa_names
  ul64 ctf_offset;   // relative to ctfa_ctfs
};
static_assert(sizeof(Modent) == 16);

}  // namespace mmar::ctfa
