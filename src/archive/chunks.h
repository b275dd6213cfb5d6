// SPDX-License-Identifier: BSD-2-Clause
// Chunk checksums of raw members (docs/FORMAT.md "Chunk checksums"): the one
// encoder and checker of the table, shared by the writer, the reader,
// verify and compaction. A raw member larger than a chunk carries one XXH3
// per chunk, stored just before its data (in what would be alignment
// padding), so a range read -- a mount's, or a remote reader's -- checks the
// chunks it touches instead of the whole member.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "archive/format.h"
#include "mmar/result.h"

namespace mmar::chunks {

// Where a member's table lies and how it divides the member.
struct Table {
  uint8_t log2 = 0;
  uint32_t count = 0;
  uint64_t sums_offset = 0;  // file offset of sum 0; the header follows the sums

  uint64_t chunk_size() const { return uint64_t{1} << log2; }
  // Chunk k's bytes within the member of `size` bytes: [begin, begin + length).
  uint64_t begin(uint32_t k) const { return uint64_t{k} << log2; }
  uint64_t length(uint32_t k, uint64_t size) const { return std::min(chunk_size(), size - begin(k)); }
};

// Writers give a raw member a table when it is larger than one chunk (a
// member of one chunk is checked whole at no extra cost).
inline bool wanted(uint64_t size) { return size > (uint64_t{1} << format::kChunkLog2); }
// Bytes of sums and header for a member of `size` bytes at `log2`.
inline uint64_t table_bytes(uint64_t size, uint8_t log2 = format::kChunkLog2) {
  return sizeof(format::ChunkSumsHeader) + ((size + (uint64_t{1} << log2) - 1) >> log2) * sizeof(uint64_t);
}

// Check the 16-byte header found right before the data of a raw member of
// `size` bytes at `data_offset`: magic, reserved bytes, chunk size in range,
// a count that matches the size (at least two chunks), and sums that lie
// after the archive's header area. `what` names file and member.
Result<Table> parse_header(std::span<const std::byte> header, uint64_t size, uint64_t data_offset,
                           const std::string& what);

// The sums and header for `data`, ready to be written so that they end at
// the data's offset.
std::vector<std::byte> encode(std::span<const std::byte> data, uint8_t log2 = format::kChunkLog2);
// The same for `size` bytes at `offset` of file `fd` (read back with pread:
// the writer's own output, after copying it kernel-side).
Result<std::vector<std::byte>> encode_from_fd(int fd, uint64_t offset, uint64_t size, const std::string& what,
                                              uint8_t log2 = format::kChunkLog2);

// Sum k of `sums` (the table's sum bytes from sum `first` on).
uint64_t sum_at(std::span<const std::byte> sums, uint32_t first, uint32_t k);

}  // namespace mmar::chunks
