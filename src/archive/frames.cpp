// SPDX-License-Identifier: BSD-2-Clause
#include "archive/frames.h"

#include <xxhash.h>

#include <cstring>

#include "support/checked.h"
#include "support/hex.h"

namespace mmar::frames {

namespace {

Error bad(const std::string& what, uint64_t offset, const std::string& why) {
  return Error(Errc::malformed, what + ": frame table: " + why + " (at offset " + hex(offset) + ")", offset);
}

}  // namespace

Result<Table> parse_header(std::span<const std::byte> header, uint64_t stored, const std::string& what,
                           uint64_t offset) {
  format::FrameTableHeader h;
  if (header.size() < sizeof h || stored < sizeof h) return bad(what, offset, "stream shorter than its header");
  std::memcpy(&h, header.data(), sizeof h);
  if (std::memcmp(h.ft_magic, format::kFrameMagic, sizeof h.ft_magic) != 0) return bad(what, offset, "bad magic");
  if (XXH3_64bits(&h, offsetof(format::FrameTableHeader, ft_xxh3)) != h.ft_xxh3) {
    return bad(what, offset, "header checksum mismatch");
  }
  if (h.ft_reserved[0] != 0 || h.ft_reserved[1] != 0 || h.ft_reserved[2] != 0) {
    return bad(what, offset + 21, "reserved bytes are not zero");
  }
  if (h.ft_frame_log2 < format::kMinFrameLog2 || h.ft_frame_log2 > format::kMaxFrameLog2) {
    return bad(what, offset + 20, "frame size 2^" + std::to_string(h.ft_frame_log2) + " out of range");
  }
  Table t;
  t.size = h.ft_size;
  t.count = h.ft_count;
  t.log2 = h.ft_frame_log2;
  t.stored = stored;
  // count == ceil(size / frame), and at least one frame (an empty member
  // stores nothing, so never a stream).
  const uint64_t want = (t.size >> t.log2) + ((t.size & (t.frame_size() - 1)) != 0 ? 1 : 0);
  if (t.size == 0 || t.count != want) {
    return bad(what, offset + 16,
               std::to_string(t.count) + " frames for " + std::to_string(t.size) + " bytes of 2^" +
                   std::to_string(t.log2));
  }
  // Every frame stores at least one byte after the table.
  auto need = checked_add(t.table_bytes(), t.count);
  if (!need || *need > stored) {
    return bad(what, offset + 16, std::to_string(t.count) + " frames do not fit in " + std::to_string(stored) + " bytes");
  }
  return t;
}

Result<Frame> frame_at(const Table& t, std::span<const std::byte> entries, uint32_t first, uint32_t k,
                       const std::string& what, uint64_t offset) {
  auto entry = [&](uint32_t i) {
    format::FrameEntry e;
    std::memcpy(&e, entries.data() + uint64_t{i - first} * sizeof e, sizeof e);
    return e;
  };
  if (k >= t.count || k < first || (k > 0 && k - 1 < first) ||
      uint64_t{k - first + 1} * sizeof(format::FrameEntry) > entries.size()) {
    return bad(what, offset, "frame " + std::to_string(k) + " asked outside the table");
  }
  Frame f;
  f.index = k;
  f.begin = k == 0 ? t.table_bytes() : uint64_t{entry(k - 1).fr_end};
  const format::FrameEntry e = entry(k);
  f.end = e.fr_end;
  f.xxh3 = e.fr_xxh3;
  f.inflated = t.inflated(k);
  const uint64_t at = offset + sizeof(format::FrameTableHeader) + uint64_t{k} * sizeof(format::FrameEntry);
  if (f.begin < t.table_bytes() || f.end <= f.begin || f.end > t.stored) {
    return bad(what, at, "frame " + std::to_string(k) + " at [" + hex(f.begin) + ", " + hex(f.end) +
                             ") is not inside the stream after the table");
  }
  if (k + 1 == t.count && f.end != t.stored) {
    return bad(what, at, "the last frame ends at " + hex(f.end) + ", the stream at " + hex(t.stored));
  }
  if (f.end - f.begin > f.inflated) {
    // A compressed frame is smaller than its input; one that is not is
    // stored raw, at exactly its inflated size.
    return bad(what, at, "frame " + std::to_string(k) + " stores " + std::to_string(f.end - f.begin) +
                             " bytes for " + std::to_string(f.inflated));
  }
  return f;
}

std::vector<std::byte> encode_table(uint64_t size, uint8_t log2, std::span<const uint64_t> lengths,
                                    std::span<const uint64_t> checksums) {
  format::FrameTableHeader h{};
  std::memcpy(h.ft_magic, format::kFrameMagic, sizeof h.ft_magic);
  h.ft_size = size;
  h.ft_count = static_cast<uint32_t>(lengths.size());
  h.ft_frame_log2 = log2;
  h.ft_xxh3 = XXH3_64bits(&h, offsetof(format::FrameTableHeader, ft_xxh3));
  std::vector<std::byte> out(sizeof h + lengths.size() * sizeof(format::FrameEntry));
  std::memcpy(out.data(), &h, sizeof h);
  uint64_t end = out.size();
  for (size_t i = 0; i < lengths.size(); ++i) {
    end += lengths[i];
    format::FrameEntry e{};
    e.fr_end = end;
    e.fr_xxh3 = checksums[i];
    std::memcpy(out.data() + sizeof h + i * sizeof e, &e, sizeof e);
  }
  return out;
}

}  // namespace mmar::frames
