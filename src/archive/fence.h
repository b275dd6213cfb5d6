// SPDX-License-Identifier: BSD-2-Clause
// The name fence: an optional block at offset 128 (right after the two
// superblock slots) that narrows a name lookup to a run of `stride` members,
// so a reader that does not map the archive finds a member with three reads
// (superblock + fence, that run of entries, their names) instead of a binary
// search of preads over the whole index. docs/FORMAT.md, "Name fence".
//
// A fence describes one generation's index (its checksum, generation and
// member count are recorded); a reader ignores a fence that does not match
// the superblock in use, so in-place updates simply leave it stale.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "archive/format.h"

namespace mmar::fence {

inline constexpr unsigned char kMagic[8] = {'M', 'M', 'A', 'R', 'F', 'N', 'C', '1'};
inline constexpr uint64_t kOffset = format::kHeaderAreaSize;
// Superblocks and fence together fit in the first 4 KiB: one read.
inline constexpr uint64_t kMaxBytes = 4096 - kOffset;
// Written only for archives with more members than this; smaller indexes
// are read whole.
inline constexpr uint32_t kMinMembers = 65;

struct Header {
  unsigned char magic[8];
  ul64 index_xxh3;     // sb_index_xxh3 of the index it describes
  ul64 generation;     // sb_generation of that index
  ul32 member_count;   // sb_member_count of that index
  ul32 stride;         // members per key, >= 1
  ul32 keys;           // ceil(member_count / stride)
  ul32 bytes;          // size of the whole block
  ul64 xxh3;           // XXH3 of bytes [48, bytes) seeded with XXH3 of bytes [0, 40)
};
static_assert(sizeof(Header) == 48);

// Members per key, at least: a run of a plain index is read alone (8
// entries: 512 bytes), while a compressed index is read a 64 KiB frame of
// 1,024 entries at a time, whose run need only name the frames (128
// entries and their names lie in one or two): a fence a sixteenth the size.
inline constexpr uint32_t kMinStride = 8;
inline constexpr uint32_t kMinStrideCompressed = 128;

// The block for these names (sorted, strictly increasing), the fields that
// depend on the index left to finish(). Empty when too few members. The
// stride is the smallest power of two, at least `min_stride`, that keeps
// the block within kMaxBytes.
std::vector<std::byte> build(const std::vector<std::string_view>& sorted_names, uint32_t min_stride = kMinStride);
void finish(std::vector<std::byte>& block, uint64_t index_xxh3, uint64_t generation);

class View {
 public:
  // The fence in `area` (bytes from offset 128 on) if it is one, is intact
  // and describes the index `sb` points at; nullopt otherwise. A reader
  // that proves its answers from the index itself (ArchiveProbe brackets
  // each run with its neighbours) may skip the checksum.
  static std::optional<View> parse(std::span<const std::byte> area, const format::Superblock& sb,
                                   bool check_sum = true);
  // Bytes the fence occupies, from its header (0 when no magic): how much to
  // read when `area` was too short to parse.
  static uint32_t claimed_size(std::span<const std::byte> area);

  uint32_t stride() const { return stride_; }
  uint32_t keys() const { return keys_; }
  std::string_view key(uint32_t k) const;
  // Members [first, last) hold `name` if the archive does.
  std::pair<uint32_t, uint32_t> run(std::string_view name) const;

 private:
  const std::byte* base_ = nullptr;
  uint32_t stride_ = 0, keys_ = 0, count_ = 0, key_bytes_ = 0;
};

}  // namespace mmar::fence
