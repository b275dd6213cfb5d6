// SPDX-License-Identifier: BSD-2-Clause
#include "archive/index_codec.h"

#include <xxhash.h>

#include <cstdio>
#include <cstring>

#include "archive/attrs.h"
#include "archive/frames.h"
#include "support/checked.h"
#include "support/endian.h"
#include "support/hex.h"

namespace mmar::index_codec {

namespace {

Error malformed(const std::string& file, uint64_t offset, const std::string& what) {
  return Error(Errc::malformed, file + ": index delta: " + what + " (at offset " + hex(offset) + ")", offset);
}

}  // namespace

format::Entry& IndexBuilder::add(std::string_view name, std::string_view attrs) {
  format::Entry& e = entries_.emplace_back();
  std::memset(&e, 0, sizeof e);
  e.me_name_offset = static_cast<uint32_t>(names_.size());
  e.me_name_len = static_cast<uint32_t>(name.size());
  e.me_link = format::kNoLink;
  names_.append(name);
  names_.append(attrs);
  has_attrs_.push_back(!attrs.empty());
  return e;
}

format::Entry& IndexBuilder::add(std::string_view name, const format::Entry& e, std::string_view attrs) {
  format::Entry& n = add(name, attrs);
  const uint32_t name_offset = n.me_name_offset, name_len = n.me_name_len;
  n = e;
  n.me_name_offset = name_offset;
  n.me_name_len = name_len;
  n.me_link = format::kNoLink;
  return n;
}

std::vector<std::byte> IndexBuilder::bytes() const {
  std::vector<std::byte> out(entries_.size() * format::kEntrySize + names_.size());
  // No memcpy from an empty vector's null data (an archive with no members).
  if (!entries_.empty()) std::memcpy(out.data(), entries_.data(), entries_.size() * format::kEntrySize);
  for (size_t i = 0; i < entries_.size(); ++i) {  // the flag says whether a record follows the name
    format::Entry e = entries_[i];
    e.me_flags = static_cast<uint16_t>((e.me_flags & ~format::kFlagAttrs) | (has_attrs_[i] ? format::kFlagAttrs : 0));
    std::memcpy(out.data() + i * format::kEntrySize, &e, sizeof e);
  }
  if (!names_.empty()) std::memcpy(out.data() + entries_.size() * format::kEntrySize, names_.data(), names_.size());
  return out;
}

std::vector<std::byte> IndexBuilder::delta_bytes(const format::DeltaHeader& header) const {
  std::vector<std::byte> table = bytes();
  std::vector<std::byte> out(sizeof header + table.size());
  std::memcpy(out.data(), &header, sizeof header);
  if (!table.empty()) std::memcpy(out.data() + sizeof header, table.data(), table.size());
  return out;
}

Result<std::vector<std::byte>> store_index(std::vector<std::byte> plain, uint32_t member_count, IndexStorage how,
                                           bool compressed_members, uint32_t& flags) {
  // automatic: up to 16 MiB of index (some 200,000 members). Beyond, a fence
  // run spans several frames, and a cold lookup would inflate them all
  // (bench/RESULTS.md): the index stays mapped in place.
  const bool compress = compresses(how, compressed_members, plain.size());
  if (!compress || plain.empty()) return plain;
  // Level 9 where it costs little (15 ms for 6,000 members; 2-5 % smaller
  // than level 3: bench/RESULTS.md), 3 for indexes of more than 8 MiB.
  const int level = plain.size() <= (size_t{8} << 20) ? 9 : 3;
  const uint64_t table = uint64_t{member_count} * format::kEntrySize;
  if (table > plain.size()) return Error(Errc::invalid_argument, "store_index: more members than the index holds");
  std::vector<std::byte> coded = plain;
  predict_offsets(std::span<std::byte>(coded.data(), static_cast<size_t>(table)), 0);
  MMAR_ASSIGN(std::vector<std::byte> stored, frames::encode_stream(coded, level, format::kIndexFrameLog2));
  if (plain.size() / format::kMaxIndexRatio > stored.size()) return plain;  // readers refuse such a ratio
  flags |= format::kSbFlagIndexFramed | format::kSbFlagIndexPredicted;
  return stored;
}

namespace {

// What entry `p` predicts for the entry after it: its name right after p's
// name (and attribute record: the difference is then that record's size),
// and, when both are frame streams at the same stored bytes (members packed
// together), its bytes right after p's in the stream.
struct Prediction {
  uint32_t name_offset;
  bool shares_stream;
  uint32_t stream_offset;
};

Prediction predict(const format::Entry& p, const format::Entry& e) {
  const auto streamed = [](const format::Entry& x) { return (x.me_flags & format::kFlagFramed) != 0; };
  Prediction r{};
  r.name_offset = static_cast<uint32_t>(p.me_name_offset + p.me_name_len);
  r.shares_stream = streamed(p) && streamed(e) && p.me_data_offset == e.me_data_offset &&
                    p.me_stored_size == e.me_stored_size;
  r.stream_offset = static_cast<uint32_t>(p.me_stream_offset + p.me_size);
  return r;
}

}  // namespace

void predict_offsets(std::span<std::byte> entries, uint64_t first) {
  // Backwards, so each prediction comes from the entry before as it is.
  for (size_t j = entries.size() / format::kEntrySize; j-- > 1;) {
    if ((first + j) % format::kIndexFrameEntries == 0) continue;
    std::byte* at = entries.data() + j * format::kEntrySize;
    const auto p = load<format::Entry>(at - format::kEntrySize);
    auto e = load<format::Entry>(at);
    const Prediction r = predict(p, e);
    e.me_name_offset = static_cast<uint32_t>(e.me_name_offset - r.name_offset);
    if (r.shares_stream) e.me_stream_offset = static_cast<uint32_t>(e.me_stream_offset - r.stream_offset);
    std::memcpy(at, &e, sizeof e);
  }
}

void unpredict_offsets(std::span<std::byte> entries, uint64_t first) {
  // Forwards: each entry from the one before, already restored.
  for (size_t j = 1; j < entries.size() / format::kEntrySize; ++j) {
    if ((first + j) % format::kIndexFrameEntries == 0) continue;
    std::byte* at = entries.data() + j * format::kEntrySize;
    const auto p = load<format::Entry>(at - format::kEntrySize);
    auto e = load<format::Entry>(at);
    const Prediction r = predict(p, e);
    e.me_name_offset = static_cast<uint32_t>(e.me_name_offset + r.name_offset);
    if (r.shares_stream) e.me_stream_offset = static_cast<uint32_t>(e.me_stream_offset + r.stream_offset);
    std::memcpy(at, &e, sizeof e);
  }
}

format::Superblock make_superblock(uint64_t generation, uint8_t align_log2, uint32_t flags, uint64_t index_offset,
                                   std::span<const std::byte> index, uint32_t member_count) {
  format::Superblock sb{};
  std::memcpy(sb.sb_magic, format::kMagic, sizeof sb.sb_magic);
  sb.sb_version = format::kVersion;
  sb.sb_size = static_cast<uint16_t>(format::kSuperblockSize);
  sb.sb_flags = flags;
  sb.sb_generation = generation;
  sb.sb_index_offset = index_offset;
  sb.sb_index_size = index.size();
  sb.sb_member_count = member_count;
  sb.sb_align_log2 = align_log2;
  sb.sb_index_xxh3 = XXH3_64bits(index.data(), index.size());
  sb.sb_xxh3 = XXH3_64bits(&sb, offsetof(format::Superblock, sb_xxh3));
  return sb;
}

format::Entry DeltaView::entry(uint32_t i) const {
  return load<format::Entry>(entries.data() + uint64_t{i} * format::kEntrySize);
}

std::string_view DeltaView::name(const format::Entry& e) const {
  return {reinterpret_cast<const char*>(names.data()) + e.me_name_offset, e.me_name_len};
}

std::string_view DeltaView::attrs(const format::Entry& e) const {
  if ((e.me_flags & format::kFlagAttrs) == 0) return {};
  const uint64_t at = uint64_t{e.me_name_offset} + e.me_name_len;  // checked by parse_delta
  const uint32_t size = read_int<uint32_t>(names.data() + at, true);
  return {reinterpret_cast<const char*>(names.data()) + at, size_t{4} + size};
}

Result<DeltaView> parse_delta(std::span<const std::byte> record, const std::string& file, uint64_t offset) {
  if (record.size() < sizeof(format::DeltaHeader)) return malformed(file, offset, "shorter than its header");
  DeltaView v;
  v.header = load<format::DeltaHeader>(record.data());
  const auto& h = v.header;
  if (std::memcmp(h.dh_magic, format::kDeltaMagic, sizeof h.dh_magic) != 0) return malformed(file, offset, "bad magic");
  if ((h.dh_flags & ~format::kDeltaPrevIsDelta) != 0 || h.dh_reserved != 0) {
    return malformed(file, offset + 36, "unknown flags or non-zero reserved field");
  }
  if (h.dh_depth == 0 || h.dh_depth > format::kMaxDeltaDepth ||
      ((h.dh_flags & format::kDeltaPrevIsDelta) != 0) != (h.dh_depth > 1)) {
    return malformed(file, offset + 40, "chain depth " + std::to_string(h.dh_depth.get()) + " out of range");
  }
  auto table = checked_mul(h.dh_count, format::kEntrySize);
  const uint64_t body = record.size() - sizeof(format::DeltaHeader);
  if (!table || *table > body || body - *table != h.dh_names_size) {
    return malformed(file, offset + 44,
                     std::to_string(h.dh_count.get()) + " entries and " + std::to_string(h.dh_names_size.get()) +
                         " bytes of names do not fill a record of " + std::to_string(record.size()) + " bytes");
  }
  v.entries = record.subspan(sizeof(format::DeltaHeader), *table);
  v.names = record.subspan(sizeof(format::DeltaHeader) + *table);
  std::string_view prev;
  for (uint32_t i = 0; i < h.dh_count; ++i) {
    const uint64_t at = offset + sizeof(format::DeltaHeader) + uint64_t{i} * format::kEntrySize;
    format::Entry e = v.entry(i);
    if (e.me_name_len == 0 || !in_bounds(e.me_name_offset, e.me_name_len, v.names.size())) {
      return malformed(file, at + 40, "entry " + std::to_string(i) + ": name outside the name table");
    }
    std::string_view name = v.name(e);
    if (i > 0 && !(prev < name)) {
      return malformed(file, at + 40, "entry " + std::to_string(i) + ": names out of order or duplicated");
    }
    prev = name;
    if (e.me_link != format::kNoLink) return malformed(file, at + 52, "entry " + std::to_string(i) + ": a link");
    if ((e.me_flags & format::kFlagAttrs) != 0) {
      auto r = attrs::parse(v.names.subspan(e.me_name_offset + e.me_name_len), e.me_mode);
      if (!r.ok()) return malformed(file, at + 58, "entry " + std::to_string(i) + ": " + r.error().message());
    }
    if (is_tombstone(e) && (e.me_data_offset != 0 || e.me_stored_size != 0 || e.me_size != 0 || e.me_xxh3 != 0 ||
                            e.me_mtime_ns != 0 || e.me_codec != 0 || e.me_kind != 0 || e.me_flags != 0)) {
      return malformed(file, at, "entry " + std::to_string(i) + ": a tombstone with fields set");
    }
  }
  return v;
}

std::vector<std::byte> encode_extent_map(const std::vector<format::Extent>& extents) {
  format::ExtentMapHeader h{};
  std::memcpy(h.ex_magic, format::kExtentMagic, sizeof h.ex_magic);
  h.ex_count = static_cast<uint32_t>(extents.size());
  std::vector<std::byte> out(sizeof h + extents.size() * sizeof(format::Extent));
  std::memcpy(out.data(), &h, sizeof h);
  if (!extents.empty()) std::memcpy(out.data() + sizeof h, extents.data(), extents.size() * sizeof(format::Extent));
  return out;
}

Result<std::vector<format::Extent>> parse_extent_map(std::span<const std::byte> stored, uint64_t size,
                                                     uint64_t file_size, const std::string& what, uint64_t offset) {
  auto bad = [&](uint64_t at, const std::string& why) {
    return Error(Errc::malformed, what + ": extent map: " + why + " (at offset " + hex(offset + at) + ")", offset + at);
  };
  if (stored.size() < sizeof(format::ExtentMapHeader)) return bad(0, "shorter than its header");
  auto h = load<format::ExtentMapHeader>(stored.data());
  if (std::memcmp(h.ex_magic, format::kExtentMagic, sizeof h.ex_magic) != 0) return bad(0, "bad magic");
  if (h.ex_reserved != 0) return bad(12, "non-zero reserved field");
  // The count is checked against the stored bytes before it sizes anything.
  if ((stored.size() - sizeof h) % sizeof(format::Extent) != 0 ||
      (stored.size() - sizeof h) / sizeof(format::Extent) != h.ex_count) {
    return bad(8, std::to_string(h.ex_count.get()) + " extents do not fill " + std::to_string(stored.size()) + " bytes");
  }
  std::vector<format::Extent> out(h.ex_count);
  uint64_t end = 0;
  for (uint32_t i = 0; i < h.ex_count; ++i) {
    const uint64_t at = sizeof h + uint64_t{i} * sizeof(format::Extent);
    out[i] = load<format::Extent>(stored.data() + at);
    const format::Extent& x = out[i];
    if (x.ex_length == 0 || x.ex_logical < end || !in_bounds(x.ex_logical, x.ex_length, size)) {
      return bad(at, "extent " + std::to_string(i) + " is empty, out of order or past the member's end");
    }
    if (x.ex_physical < format::kHeaderAreaSize || !in_bounds(x.ex_physical, x.ex_length, file_size)) {
      return bad(at + 16, "extent " + std::to_string(i) + " data is not inside the file");
    }
    end = x.ex_logical + x.ex_length;
  }
  return out;
}

}  // namespace mmar::index_codec
