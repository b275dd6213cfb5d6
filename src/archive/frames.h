// SPDX-License-Identifier: BSD-2-Clause
// Frame streams (docs/FORMAT.md "Frame streams"): the one encoder and
// checker of frame tables, v1 and v2, shared by the writer, the reader,
// verify and compaction. A member with kFlagFramed stores a frame table
// followed by independently compressed frames, so a read of any byte range
// inflates only the frames it covers, and each frame is checked by its own
// checksum.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "archive/format.h"
#include "mmar/archive.h"
#include "mmar/result.h"

namespace mmar::frames {

inline constexpr uint8_t kDefaultLog2 = 17;  // 128 KiB (bench/RESULTS.md, "Frame size")
inline constexpr uint8_t kWriteVersion = 3;  // what writers write unless told otherwise (tests)

// Bytes of a table header: 32 (v1, v2); v3: 1 for a stream that is its
// member's bytes (`sized`), else 5.
inline uint64_t header_bytes(uint8_t version, bool sized) {
  if (version <= 2) return sizeof(format::FrameTableHeader);
  return sized ? 1 : 5;
}
inline uint64_t entry_bytes(uint8_t version) {
  return version == 1 ? sizeof(format::FrameEntry) : version == 2 ? sizeof(format::FrameEntry2) : format::kFrameEntry3Size;
}

// Bytes of a table of `count` frames: header, anchors (v2, v3) and entries;
// frame 0 starts here.
inline uint64_t table_bytes(uint8_t version, uint64_t count, bool sized = false) {
  const uint64_t anchors = version == 1 || count == 0 ? 0 : (count - 1) / format::kFrameGroup;
  return header_bytes(version, sized) + anchors * sizeof(format::FrameAnchor) + count * entry_bytes(version);
}

// The member a stream is read for (a v3 table may take its size from it).
struct StreamOf {
  uint64_t size = 0;           // me_size (0: none, e.g. an index)
  uint64_t stream_offset = 0;  // me_stream_offset
  bool v3 = true;              // the archive may hold v3 tables (superblock bit 5): else only v1/v2 magics
};

// A checked frame table header: what a reader needs to locate any frame.
struct Table {
  uint8_t version = 1;  // 1 (kFrameMagic), 2 (kFrameMagic2) or 3
  uint64_t size = 0;    // inflated bytes of the stream
  uint32_t count = 0;   // frames
  uint8_t log2 = 0;     // frame size 2^log2
  uint64_t stored = 0;  // stored bytes of the stream (the member's me_stored_size)
  bool sized = false;   // v3: the size is the member's (a 1-byte header)

  uint64_t frame_size() const { return uint64_t{1} << log2; }
  // v2, v3: anchors, one per group of 256 frames but the last.
  uint32_t anchors() const { return version == 1 || count == 0 ? 0 : (count - 1) / format::kFrameGroup; }
  uint64_t header_bytes() const { return frames::header_bytes(version, sized); }
  uint64_t entry_bytes() const { return frames::entry_bytes(version); }
  uint64_t table_bytes() const { return frames::table_bytes(version, count, sized); }
  // v2, v3 zstd frames have no magic and no content size (codec::decompress_frame's `bare`).
  bool bare_frames() const { return version >= 2; }
  // Inflated size of frame k.
  uint64_t inflated(uint32_t k) const {
    const uint64_t begin = uint64_t{k} << log2;
    return std::min(frame_size(), size - begin);
  }
};

// One frame's place in the stream (offsets from the stream's start).
struct Frame {
  uint32_t index = 0;
  uint64_t begin = 0, end = 0;  // stored bytes [begin, end)
  uint64_t sum = 0;             // of the stored bytes, as checksum() computes it
  uint64_t inflated = 0;        // bytes it inflates to
  bool raw() const { return end - begin == inflated; }
};

// Check the header at the start of a stream of `stored` bytes (`header`:
// at least its first 32 bytes, or all of a shorter stream): v1/v2 by magic
// (checksum, reserved bytes), else v3 (reserved bits; a size from `of` only
// for a stream that is all of its member); the frame size in range, a count
// that matches the size and whose table fits in the stored bytes with at
// least one byte per frame. `what` names file and member; `offset` is the
// stream's file offset.
Result<Table> parse_header(std::span<const std::byte> header, uint64_t stored, const std::string& what,
                           uint64_t offset, StreamOf of = {});

// The table bytes frame_at needs for frame k, as [at, at + length) from the
// stream's start (inside the table: parse_header checked it fits). v1: the
// entries of frames k-1 and k. v2: the anchors that bound k's group g (g-1
// and g, those that exist; none for a stream of one group) and the entries
// of frames 256g .. k: at most 16 + 2 KiB.
struct Lookup {
  uint64_t anchors_at = 0, anchors_length = 0;
  uint64_t entries_at = 0, entries_length = 0;
};
Lookup lookup(const Table& t, uint32_t k);

// Frame k from the bytes lookup(t, k) names: checked that it starts after
// the table (or where frame k-1 ends), is not empty, ends inside the stream
// (v2: inside its group, and the group's last frame exactly at the group's
// end), and is not larger than it may be for its inflated size (a raw frame
// is exactly that size). Reading every frame so checks the whole table.
Result<Frame> frame_at(const Table& t, uint32_t k, std::span<const std::byte> anchors,
                       std::span<const std::byte> entries, const std::string& what, uint64_t offset);

// The checksum of a frame's stored bytes as its table keeps it: XXH3-64
// (v1) or its low 32 bits (v2, v3).
uint64_t checksum(const Table& t, std::span<const std::byte> stored);

// The table (header, anchors, entries) of version 1, 2 or 3 for a stream of
// `size` inflated bytes in frames of 2^log2, the frames' stored lengths and
// XXH3-64s given; v3 `sized`: the stream is exactly one member's bytes
// (`size` its me_size; a 1-byte header). v3 takes a size below 2^32 unless
// `sized`.
std::vector<std::byte> encode_table(uint8_t version, uint64_t size, uint8_t log2, std::span<const uint64_t> lengths,
                                    std::span<const uint64_t> checksums, bool sized = false);

// Frame f's stored bytes against the table's checksum: Errc::checksum
// naming `what`, the frame and its file offset (`offset`: the stream's).
Result<void> check_frame(const Table& t, const Frame& f, std::span<const std::byte> stored, const std::string& what,
                         uint64_t offset);

// Frame f's stored bytes `stored` (frame_at's f) into `out` (f.inflated
// bytes): checked against the table's checksum when `verify`, then copied
// (a raw frame) or inflated with `codec`. Errors name `what`, the frame and
// its file offset (`offset` is the stream's).
Result<void> inflate_frame(const Table& t, const Frame& f, Codec codec, std::span<const std::byte> stored,
                           std::span<std::byte> out, bool verify, const std::string& what, uint64_t offset);

// A whole buffer as one v2 frame stream of zstd frames of 2^log2 bytes at
// `level` (an index: docs/FORMAT.md "Compressed index"); a frame that does
// not shrink is stored raw.
Result<std::vector<std::byte>> encode_stream(std::span<const std::byte> in, int level, uint8_t log2);

// The inflated bytes of a whole v2/v1 zstd frame stream held in memory,
// every frame checked (its table, checksum and size); at most `max_size`
// bytes (a larger stream is Errc::limit). Memory grows with what the
// frames produce, never from the header's size word alone.
Result<std::vector<std::byte>> inflate_stream(std::span<const std::byte> stored, uint64_t max_size,
                                              const std::string& what, uint64_t offset);

// The frames covering bytes [offset, offset + length) of the stream.
inline uint32_t first_frame(const Table& t, uint64_t offset) { return static_cast<uint32_t>(offset >> t.log2); }

}  // namespace mmar::frames
