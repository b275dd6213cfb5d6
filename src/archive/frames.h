// SPDX-License-Identifier: BSD-2-Clause
// Frame streams (docs/FORMAT.md "Frame streams"): the one encoder and
// checker of frame tables, shared by the writer, the reader, verify and
// compaction. A member with kFlagFramed stores a frame table followed by
// independently compressed frames, so a read of any byte range inflates only
// the frames it covers, and each frame is checked by its own XXH3.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "archive/format.h"
#include "mmar/archive.h"
#include "mmar/result.h"

namespace mmar::frames {

inline constexpr uint8_t kDefaultLog2 = 17;  // 128 KiB (bench/RESULTS.md, "Frame size")

// A checked frame table header: what a reader needs to locate any frame.
struct Table {
  uint64_t size = 0;   // inflated bytes of the stream
  uint32_t count = 0;  // frames
  uint8_t log2 = 0;    // frame size 2^log2
  uint64_t stored = 0; // stored bytes of the stream (the member's me_stored_size)

  uint64_t frame_size() const { return uint64_t{1} << log2; }
  // Bytes of header and entries; frame 0 starts here.
  uint64_t table_bytes() const { return sizeof(format::FrameTableHeader) + uint64_t{count} * sizeof(format::FrameEntry); }
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
  uint64_t xxh3 = 0;            // of the stored bytes
  uint64_t inflated = 0;        // bytes it inflates to
  bool raw() const { return end - begin == inflated; }
};

// Check the 32-byte header at the start of a stream of `stored` bytes: magic,
// checksum, reserved bytes, frame size in range, a count that matches the
// size and whose entries fit in the stored bytes with at least one byte per
// frame. `what` names file and member; `offset` is the stream's file offset.
Result<Table> parse_header(std::span<const std::byte> header, uint64_t stored, const std::string& what,
                           uint64_t offset);

// Frame k from the entries of frames k-1 and k (`entries` holds entries
// [first, first + entries.size()/16) of the table, and must cover k-1 (if
// k > 0) and k): checked that it starts after the table (or where frame k-1
// ends), is not empty, ends inside the stream, and is not larger than it
// may be for its inflated size (a raw frame is exactly that size).
Result<Frame> frame_at(const Table& t, std::span<const std::byte> entries, uint32_t first, uint32_t k,
                       const std::string& what, uint64_t offset);

// The table for a stream of `size` inflated bytes in frames of 2^log2, the
// frames' stored lengths and checksums given: header and entries.
std::vector<std::byte> encode_table(uint64_t size, uint8_t log2, std::span<const uint64_t> lengths,
                                    std::span<const uint64_t> checksums);

// The frames covering bytes [offset, offset + length) of the stream.
inline uint32_t first_frame(const Table& t, uint64_t offset) { return static_cast<uint32_t>(offset >> t.log2); }

}  // namespace mmar::frames
