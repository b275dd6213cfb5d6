// SPDX-License-Identifier: BSD-2-Clause
// The one encoder and decoder for what mmar writes about its members: member
// entries, the index (member table + names), superblocks and index deltas.
// The writer, the in-place updater, compaction and the reader share it, so a
// rule fixed here is fixed for every path (docs/FORMAT.md).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "archive/format.h"
#include "mmar/archive.h"
#include "mmar/result.h"

namespace mmar::index_codec {

// Entries and their names, in the order added (callers add in name order).
class IndexBuilder {
 public:
  // A zeroed entry naming `name`, with no link; the caller fills the rest.
  // `attrs`: the member's attribute record (attrs::encode), stored after the
  // name; bytes() sets kFlagAttrs on exactly the entries that have one.
  format::Entry& add(std::string_view name, std::string_view attrs = {});
  // A copy of `e` (its name fields and link replaced) naming `name`.
  format::Entry& add(std::string_view name, const format::Entry& e, std::string_view attrs = {});
  size_t count() const { return entries_.size(); }
  format::Entry& entry(size_t i) { return entries_[i]; }
  // The member table followed by the name table.
  std::vector<std::byte> bytes() const;
  // The same, after a delta header (docs/FORMAT.md, "Index deltas").
  std::vector<std::byte> delta_bytes(const format::DeltaHeader& header) const;

 private:
  std::vector<format::Entry> entries_;
  std::vector<bool> has_attrs_;
  std::string names_;
};

// IndexStorage::automatic compresses indexes up to this size.
inline constexpr size_t kAutoIndexLimit = size_t{16} << 20;

// Whether store_index() compresses an index of `plain_size` bytes
// (SIZE_MAX: not known yet -- a writer choosing its name fence's stride
// before the index exists -- and then the size limit is not applied).
inline bool compresses(IndexStorage how, bool compressed_members, size_t plain_size = SIZE_MAX) {
  return how == IndexStorage::compressed ||
         (how == IndexStorage::automatic && compressed_members &&
          (plain_size == SIZE_MAX || plain_size <= kAutoIndexLimit));
}

// The bytes to store for index `plain` (member table + names): itself, or
// (IndexStorage::compressed; automatic when `compressed_members` and at most
// kAutoIndexLimit) a frame
// stream of it with predicted offsets (docs/FORMAT.md "Compressed index"),
// kSbFlagIndexFramed and kSbFlagIndexPredicted then set in `flags`. An empty
// index is always plain. `member_count`: the entries at the start of `plain`.
Result<std::vector<std::byte>> store_index(std::vector<std::byte> plain, uint32_t member_count, IndexStorage how,
                                           bool compressed_members, uint32_t& flags);

// Offset prediction in a compressed index (kSbFlagIndexPredicted,
// docs/FORMAT.md "Predicted offsets"). `entries` are the member table's
// entries first … first + n - 1 (whole entries; a frame's, or all of them).
// predict_offsets turns each entry's name and stream offsets into
// differences from what the entry before predicts; unpredict_offsets undoes
// it. Both reset at every multiple of kIndexFrameEntries, so a frame decodes
// alone. Any bytes round-trip (arithmetic is modulo 2^32): nothing here
// validates; the entries are checked when read.
void predict_offsets(std::span<std::byte> entries, uint64_t first);
void unpredict_offsets(std::span<std::byte> entries, uint64_t first);

// A superblock for an index at `index_offset` whose bytes are `index`.
format::Superblock make_superblock(uint64_t generation, uint8_t align_log2, uint32_t flags, uint64_t index_offset,
                                   std::span<const std::byte> index, uint32_t member_count);

// A tombstone: the entry of a delta that removes its name.
inline bool is_tombstone(const format::Entry& e) { return e.me_mode == 0; }

// One index delta, checked: header, entry table within the record, names
// within the name table, names strictly increasing, tombstones all-zero but
// for their names, no links. `file` and `offset` are for messages.
struct DeltaView {
  format::DeltaHeader header{};
  std::span<const std::byte> entries;  // header.dh_count entries
  std::span<const std::byte> names;    // the name table
  format::Entry entry(uint32_t i) const;
  std::string_view name(const format::Entry& e) const;
  // The attribute record after the entry's name (empty without kFlagAttrs);
  // checked by parse_delta.
  std::string_view attrs(const format::Entry& e) const;
};
Result<DeltaView> parse_delta(std::span<const std::byte> record, const std::string& file, uint64_t offset);

// An extent map's bytes for `extents` (sorted, disjoint).
std::vector<std::byte> encode_extent_map(const std::vector<format::Extent>& extents);
// The extents of a member's extent map `stored`, checked: magic, count that
// fills the stored bytes exactly, lengths > 0, sorted and disjoint, inside
// [0, size), data inside [128, file_size). `what` names file and member for
// messages; `offset` is where the map is.
Result<std::vector<format::Extent>> parse_extent_map(std::span<const std::byte> stored, uint64_t size,
                                                     uint64_t file_size, const std::string& what, uint64_t offset);

// The pieces of [offset, offset + length) that `extents` (checked, sorted)
// cover: fn(physical, at, n) for n bytes at file offset `physical` that
// belong at `at` bytes into the range. The rest of the range is holes.
template <class Fn>
Result<void> for_each_piece(const std::vector<format::Extent>& extents, uint64_t offset, uint64_t length, Fn&& fn) {
  const uint64_t end = offset + length;
  auto it = std::upper_bound(extents.begin(), extents.end(), offset,
                             [](uint64_t v, const format::Extent& e) { return v < e.ex_logical + e.ex_length; });
  for (; it != extents.end() && it->ex_logical < end; ++it) {
    const uint64_t b = std::max<uint64_t>(offset, it->ex_logical);
    const uint64_t e = std::min<uint64_t>(end, it->ex_logical + it->ex_length);
    auto r = fn(uint64_t{it->ex_physical} + (b - it->ex_logical), b - offset, e - b);
    if (!r.ok()) return r;
  }
  return success();
}

}  // namespace mmar::index_codec
