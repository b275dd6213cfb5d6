// SPDX-License-Identifier: BSD-2-Clause
#include "archive/frames.h"

#include <xxhash.h>

#include <cstring>

#include "archive/codec.h"
#include "support/checked.h"
#include "support/endian.h"
#include "support/hex.h"

namespace mmar::frames {

namespace {

Error bad(const std::string& what, uint64_t offset, const std::string& why) {
  return Error(Errc::malformed, what + ": frame table: " + why + " (at offset " + hex(offset) + ")", offset);
}

template <class T>
T load_at(std::span<const std::byte> b, uint64_t at) {
  T v;
  std::memcpy(&v, b.data() + at, sizeof v);
  return v;
}

std::string frame_name(uint32_t k) { return "frame " + std::to_string(k); }

// A v2 or v3 entry: stored length and 32-bit checksum.
struct Entry {
  uint64_t length;
  uint64_t sum;
};
Entry load_entry(const Table& t, std::span<const std::byte> entries, uint64_t at) {
  if (t.version == 2) {
    const auto e = load_at<format::FrameEntry2>(entries, at);
    return {e.fr_length, e.fr_sum};
  }
  const std::byte* p = entries.data() + at;  // 3-byte length, 4-byte sum, little-endian
  const uint64_t length = std::to_integer<uint64_t>(p[0]) | std::to_integer<uint64_t>(p[1]) << 8 |
                          std::to_integer<uint64_t>(p[2]) << 16;
  uint64_t sum = 0;
  for (int i = 3; i >= 0; --i) sum = sum << 8 | std::to_integer<uint64_t>(p[3 + i]);
  return {length, sum};
}

Result<Frame> frame_v1(const Table& t, uint32_t k, std::span<const std::byte> entries, const std::string& what,
                       uint64_t offset) {
  const uint32_t first = k == 0 ? 0 : k - 1;
  if (uint64_t{k - first + 1} * sizeof(format::FrameEntry) > entries.size()) {
    return bad(what, offset, frame_name(k) + " asked outside the table");
  }
  auto entry = [&](uint32_t i) {
    return load_at<format::FrameEntry>(entries, uint64_t{i - first} * sizeof(format::FrameEntry));
  };
  Frame f;
  f.index = k;
  f.begin = k == 0 ? t.table_bytes() : uint64_t{entry(k - 1).fr_end};
  const format::FrameEntry e = entry(k);
  f.end = e.fr_end;
  f.sum = e.fr_xxh3;
  f.inflated = t.inflated(k);
  const uint64_t at = offset + sizeof(format::FrameTableHeader) + uint64_t{k} * sizeof(format::FrameEntry);
  if (f.begin < t.table_bytes() || f.end <= f.begin || f.end > t.stored) {
    return bad(
        what, at,
        frame_name(k) + " at [" + hex(f.begin) + ", " + hex(f.end) + ") is not inside the stream after the table");
  }
  if (k + 1 == t.count && f.end != t.stored) {
    return bad(what, at, "the last frame ends at " + hex(f.end) + ", the stream at " + hex(t.stored));
  }
  if (f.end - f.begin > f.inflated) {
    // A compressed frame is smaller than its input; one that is not is
    // stored raw, at exactly its inflated size.
    return bad(
        what, at,
        frame_name(k) + " stores " + std::to_string(f.end - f.begin) + " bytes for " + std::to_string(f.inflated));
  }
  return f;
}

Result<Frame> frame_v2(const Table& t, uint32_t k, std::span<const std::byte> anchors,
                       std::span<const std::byte> entries, const std::string& what, uint64_t offset) {
  const uint32_t g = k / format::kFrameGroup;
  const uint32_t first = g * format::kFrameGroup;
  const Lookup l = lookup(t, k);
  if (anchors.size() < l.anchors_length || entries.size() < l.entries_length) {
    return bad(what, offset, frame_name(k) + " asked outside the table");
  }
  // The group's bounds: the end of the group before (or the table's end),
  // and its own anchor (or the stream's end for the last group).
  const uint64_t anchors_base = offset + t.header_bytes();
  uint64_t group_begin = t.table_bytes(), group_end = t.stored;
  size_t next = 0;
  if (g > 0) group_begin = load_at<format::FrameAnchor>(anchors, sizeof(format::FrameAnchor) * next++).fa_end;
  if (g < t.anchors()) group_end = load_at<format::FrameAnchor>(anchors, sizeof(format::FrameAnchor) * next).fa_end;
  if (group_begin < t.table_bytes() || group_end <= group_begin || group_end > t.stored) {
    const uint32_t which = g > 0 ? g - 1 : g;
    return bad(what, anchors_base + uint64_t{which} * sizeof(format::FrameAnchor),
               "group " + std::to_string(g) + " (" + frame_name(k) + ") at [" + hex(group_begin) + ", " +
                   hex(group_end) + ") is not inside the stream after the table, in order");
  }
  // Lengths of frames 256g .. k; each at least one byte and at most its
  // inflated size, so the sum cannot overflow (256 * 4 MiB).
  const uint64_t entries_base = l.entries_at + offset;
  Frame f;
  f.index = k;
  f.begin = group_begin;
  const uint64_t entry = t.entry_bytes();
  for (uint32_t i = first; i <= k; ++i) {
    const Entry e = load_entry(t, entries, uint64_t{i - first} * entry);
    const uint64_t length = e.length;
    const uint64_t at = entries_base + uint64_t{i - first} * entry;
    if (length == 0 || length > t.inflated(i)) {
      return bad(what, at,
                 frame_name(i) + " stores " + std::to_string(length) + " bytes for " + std::to_string(t.inflated(i)));
    }
    if (i < k) {
      f.begin += length;
    } else {
      f.end = f.begin + length;
      f.sum = e.sum;
    }
  }
  f.inflated = t.inflated(k);
  const uint64_t at = entries_base + uint64_t{k - first} * entry;
  if (f.end > group_end) {
    return bad(
        what, at,
        frame_name(k) + " at [" + hex(f.begin) + ", " + hex(f.end) + ") ends after its group (" + hex(group_end) + ")");
  }
  const bool last_of_group = k + 1 == t.count || (k + 1) % format::kFrameGroup == 0;
  if (last_of_group && f.end != group_end) {
    return bad(what, at,
               frame_name(k) + ", the last of group " + std::to_string(g) + ", ends at " + hex(f.end) +
                   ", the group at " + hex(group_end));
  }
  return f;
}

}  // namespace

namespace {

// The header's size and count checks, shared by all versions.
Result<Table> check_count(Table t, uint64_t stored, const std::string& what, uint64_t offset, uint64_t count_at) {
  if (t.log2 < format::kMinFrameLog2 || t.log2 > format::kMaxFrameLog2) {
    return bad(what, offset, "frame size 2^" + std::to_string(t.log2) + " out of range");
  }
  // count == ceil(size / frame), and at least one frame (an empty member
  // stores nothing, so never a stream).
  const uint64_t want = (t.size >> t.log2) + ((t.size & (t.frame_size() - 1)) != 0 ? 1 : 0);
  if (t.size == 0 || t.count != want) {
    return bad(what, count_at,
               std::to_string(t.version == 3 ? want : t.count) + " frames for " + std::to_string(t.size) +
                   " bytes of 2^" + std::to_string(t.log2));
  }
  // Every frame stores at least one byte after the table.
  auto need = checked_add(t.table_bytes(), t.count);
  if (!need || *need > stored) {
    return bad(what, count_at, std::to_string(t.count) + " frames do not fit in " + std::to_string(stored) + " bytes");
  }
  return t;
}

}  // namespace

Result<Table> parse_header(std::span<const std::byte> header, uint64_t stored, const std::string& what,
                           uint64_t offset, StreamOf of) {
  if (header.empty() || stored == 0) return bad(what, offset, "stream shorter than its header");
  Table t;
  t.stored = stored;
  const uint8_t first = std::to_integer<uint8_t>(header[0]);
  if (first != format::kFrameMagic[0]) {
    // v3: one byte, then (unless sized by the member) a 4-byte size; only
    // in archives that say they may have v3 tables.
    if (!of.v3) return bad(what, offset, "bad magic");
    t.version = 3;
    if ((first & format::kFrame3Reserved) != 0) return bad(what, offset, "bad magic or reserved header bits set");
    t.log2 = static_cast<uint8_t>(first & 0x1f);
    t.sized = (first & format::kFrame3Sized) != 0;
    if (t.sized) {
      if (of.size == 0 || of.stream_offset != 0) {
        return bad(what, offset, "a stream sized by its member, read for bytes that are not all of it");
      }
      t.size = of.size;
    } else {
      if (header.size() < 5 || stored < 5) return bad(what, offset, "stream shorter than its header");
      t.size = read_int<uint32_t>(header.data() + 1, true);
    }
    if (t.log2 < format::kMinFrameLog2 || t.log2 > format::kMaxFrameLog2) {
      return bad(what, offset, "frame size 2^" + std::to_string(t.log2) + " out of range");
    }
    const uint64_t count = (t.size >> t.log2) + ((t.size & (t.frame_size() - 1)) != 0 ? 1 : 0);
    if (count > UINT32_MAX) return bad(what, offset, std::to_string(count) + " frames: too many");
    // A writer never packs 4 GiB into one stream (packs are one frame).
    t.count = static_cast<uint32_t>(count);
    return check_count(t, stored, what, offset, offset);
  }
  format::FrameTableHeader h;
  if (header.size() < sizeof h || stored < sizeof h) return bad(what, offset, "stream shorter than its header");
  std::memcpy(&h, header.data(), sizeof h);
  if (std::memcmp(h.ft_magic, format::kFrameMagic, sizeof h.ft_magic) == 0) {
    t.version = 1;
  } else if (std::memcmp(h.ft_magic, format::kFrameMagic2, sizeof h.ft_magic) == 0) {
    t.version = 2;
  } else {
    return bad(what, offset, "bad magic");
  }
  if (XXH3_64bits(&h, offsetof(format::FrameTableHeader, ft_xxh3)) != h.ft_xxh3) {
    return bad(what, offset, "header checksum mismatch");
  }
  if (h.ft_reserved[0] != 0 || h.ft_reserved[1] != 0 || h.ft_reserved[2] != 0) {
    return bad(what, offset + 21, "reserved bytes are not zero");
  }
  t.size = h.ft_size;
  t.count = h.ft_count;
  t.log2 = h.ft_frame_log2;
  if (t.log2 < format::kMinFrameLog2 || t.log2 > format::kMaxFrameLog2) {
    return bad(what, offset + 20, "frame size 2^" + std::to_string(t.log2) + " out of range");
  }
  return check_count(t, stored, what, offset, offset + 16);
}

Lookup lookup(const Table& t, uint32_t k) {
  Lookup l;
  if (t.version == 1) {
    const uint32_t first = k == 0 ? 0 : k - 1;
    l.entries_at = sizeof(format::FrameTableHeader) + uint64_t{first} * sizeof(format::FrameEntry);
    l.entries_length = uint64_t{k - first + 1} * sizeof(format::FrameEntry);
    return l;
  }
  const uint32_t g = k / format::kFrameGroup;
  const uint32_t first_anchor = g > 0 ? g - 1 : 0;
  const uint32_t anchors = (g > 0 ? 1 : 0) + (g < t.anchors() ? 1 : 0);
  l.anchors_at = t.header_bytes() + uint64_t{first_anchor} * sizeof(format::FrameAnchor);
  l.anchors_length = uint64_t{anchors} * sizeof(format::FrameAnchor);
  const uint32_t first = g * format::kFrameGroup;
  l.entries_at = t.header_bytes() + uint64_t{t.anchors()} * sizeof(format::FrameAnchor) + uint64_t{first} * t.entry_bytes();
  l.entries_length = uint64_t{k - first + 1} * t.entry_bytes();
  return l;
}

Result<Frame> frame_at(const Table& t, uint32_t k, std::span<const std::byte> anchors,
                       std::span<const std::byte> entries, const std::string& what, uint64_t offset) {
  if (k >= t.count) return bad(what, offset, frame_name(k) + " asked outside the table");
  if (t.version == 1) return frame_v1(t, k, entries, what, offset);
  return frame_v2(t, k, anchors, entries, what, offset);
}

uint64_t checksum(const Table& t, std::span<const std::byte> stored) {
  const uint64_t h = XXH3_64bits(stored.data(), stored.size());
  return t.version == 1 ? h : (h & 0xffffffffu);
}

std::vector<std::byte> encode_table(uint8_t version, uint64_t size, uint8_t log2, std::span<const uint64_t> lengths,
                                    std::span<const uint64_t> checksums, bool sized) {
  std::vector<std::byte> out(static_cast<size_t>(table_bytes(version, lengths.size(), version == 3 && sized)));
  uint64_t header = sizeof(format::FrameTableHeader);
  if (version == 3) {
    out[0] = static_cast<std::byte>(log2 | (sized ? format::kFrame3Sized : 0));
    header = 1;
    if (!sized) {
      const uint32_t size32 = static_cast<uint32_t>(size);  // the caller keeps it below 2^32
      for (int i = 0; i < 4; ++i) out[1 + i] = static_cast<std::byte>(size32 >> (8 * i));
      header = 5;
    }
  } else {
    format::FrameTableHeader h{};
    std::memcpy(h.ft_magic, version == 1 ? format::kFrameMagic : format::kFrameMagic2, sizeof h.ft_magic);
    h.ft_size = size;
    h.ft_count = static_cast<uint32_t>(lengths.size());
    h.ft_frame_log2 = log2;
    h.ft_xxh3 = XXH3_64bits(&h, offsetof(format::FrameTableHeader, ft_xxh3));
    std::memcpy(out.data(), &h, sizeof h);
  }
  uint64_t end = out.size();
  if (version == 1) {
    for (size_t i = 0; i < lengths.size(); ++i) {
      end += lengths[i];
      format::FrameEntry e{};
      e.fr_end = end;
      e.fr_xxh3 = checksums[i];
      std::memcpy(out.data() + header + i * sizeof e, &e, sizeof e);
    }
    return out;
  }
  const size_t anchors = lengths.empty() ? 0 : (lengths.size() - 1) / format::kFrameGroup;
  const size_t entries_at = static_cast<size_t>(header) + anchors * sizeof(format::FrameAnchor);
  const size_t entry = static_cast<size_t>(entry_bytes(version));
  for (size_t i = 0; i < lengths.size(); ++i) {
    end += lengths[i];
    const uint32_t length = static_cast<uint32_t>(lengths[i]);  // <= 2^kMaxFrameLog2
    const uint32_t sum = static_cast<uint32_t>(checksums[i]);   // the low 32 bits
    std::byte* at = out.data() + entries_at + i * entry;
    if (version == 2) {
      format::FrameEntry2 e{};
      e.fr_length = length;
      e.fr_sum = sum;
      std::memcpy(at, &e, sizeof e);
    } else {
      for (int b = 0; b < 3; ++b) at[b] = static_cast<std::byte>(length >> (8 * b));
      for (int b = 0; b < 4; ++b) at[3 + b] = static_cast<std::byte>(sum >> (8 * b));
    }
    const size_t g = i / format::kFrameGroup;
    if ((i + 1) % format::kFrameGroup == 0 && g < anchors) {
      format::FrameAnchor a{};
      a.fa_end = end;
      std::memcpy(out.data() + header + g * sizeof a, &a, sizeof a);
    }
  }
  return out;
}

namespace {
Error frame_error(const Frame& f, Errc code, const std::string& why, const std::string& what, uint64_t offset) {
  return Error(code, what + ": " + frame_name(f.index) + ": " + why + " (at offset " + hex(offset + f.begin) + ")",
               offset + f.begin);
}
}  // namespace

Result<void> check_frame(const Table& t, const Frame& f, std::span<const std::byte> stored, const std::string& what,
                         uint64_t offset) {
  if (checksum(t, stored) != f.sum) return frame_error(f, Errc::checksum, "checksum mismatch", what, offset);
  return success();
}

Result<void> inflate_frame(const Table& t, const Frame& f, Codec codec, std::span<const std::byte> stored,
                           std::span<std::byte> out, bool verify, const std::string& what, uint64_t offset) {
  auto fail = [&](Errc code, const std::string& why) { return frame_error(f, code, why, what, offset); };
  if (stored.size() != f.end - f.begin || out.size() != f.inflated) {
    return fail(Errc::invalid_argument, "frame buffers of the wrong size");
  }
  if (verify) MMAR_TRY(check_frame(t, f, stored, what, offset));
  if (f.raw()) {
    if (!out.empty()) std::memcpy(out.data(), stored.data(), out.size());
    return success();
  }
  auto r = codec::decompress_frame(codec, t.bare_frames(), stored, out);
  if (!r.ok()) return fail(r.error().code(), r.error().message());
  return success();
}

Result<std::vector<std::byte>> encode_stream(std::span<const std::byte> in, int level, uint8_t log2) {
  if (in.empty()) return Error(Errc::invalid_argument, "a frame stream holds at least one byte");
  const uint64_t fsize = uint64_t{1} << log2;
  const uint64_t count = (in.size() + fsize - 1) / fsize;
  std::vector<uint64_t> lengths, sums;
  std::vector<std::byte> body, frame;
  for (uint64_t k = 0; k < count; ++k) {
    const uint64_t begin = k * fsize;
    std::span<const std::byte> part = in.subspan(begin, std::min<uint64_t>(fsize, in.size() - begin));
    MMAR_ASSIGN(bool packed, codec::compress_frame(Codec::zstd, level, /*bare=*/true, part, frame));
    std::span<const std::byte> stored = packed ? std::span<const std::byte>(frame) : part;
    lengths.push_back(stored.size());
    sums.push_back(XXH3_64bits(stored.data(), stored.size()));
    body.insert(body.end(), stored.begin(), stored.end());
  }
  std::vector<std::byte> out = encode_table(2, in.size(), log2, lengths, sums);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

Result<std::vector<std::byte>> inflate_stream(std::span<const std::byte> stored, uint64_t max_size,
                                              const std::string& what, uint64_t offset) {
  MMAR_ASSIGN(Table t, parse_header(stored, stored.size(), what, offset));
  if (t.size > max_size) {
    return Error(Errc::limit,
                 what + ": inflates to " + std::to_string(t.size) + " bytes, above the limit of " +
                     std::to_string(max_size) + " (at offset " + hex(offset) + ")",
                 offset);
  }
  std::vector<std::byte> out;
  for (uint32_t k = 0; k < t.count; ++k) {
    const Lookup l = lookup(t, k);
    MMAR_ASSIGN(Frame f, frame_at(t, k, stored.subspan(l.anchors_at, l.anchors_length),
                                  stored.subspan(l.entries_at, l.entries_length), what, offset));
    // Grown by what each frame really is (frame_at checked its stored
    // bytes lie in `stored`, and a frame inflates to at most 2^22).
    const size_t at = out.size();
    out.resize(at + f.inflated);
    MMAR_TRY(inflate_frame(t, f, Codec::zstd, stored.subspan(f.begin, f.end - f.begin),
                           std::span<std::byte>(out.data() + at, f.inflated), true, what, offset));
  }
  return out;
}

}  // namespace mmar::frames
