// SPDX-License-Identifier: BSD-2-Clause
#include "archive/chunks.h"

#include <xxhash.h>

#include <cerrno>
#include <cstring>

#include "support/endian.h"
#include "support/hex.h"
#include "support/io.h"

namespace mmar::chunks {

namespace {

Error bad(const std::string& what, const std::string& why, uint64_t offset) {
  return Error(Errc::malformed, what + ": chunk checksums: " + why + " (at offset " + hex(offset) + ")", offset);
}

void append_sum(std::vector<std::byte>& out, uint64_t h) {
  const ul64 le(h);
  const auto* p = reinterpret_cast<const std::byte*>(&le);
  out.insert(out.end(), p, p + sizeof le);
}

void append_header(std::vector<std::byte>& out, uint32_t count, uint8_t log2) {
  format::ChunkSumsHeader h{};
  std::memcpy(h.cs_magic, format::kChunkSumsMagic, sizeof h.cs_magic);
  h.cs_count = count;
  h.cs_chunk_log2 = log2;
  const auto* p = reinterpret_cast<const std::byte*>(&h);
  out.insert(out.end(), p, p + sizeof h);
}

}  // namespace

Result<Table> parse_header(std::span<const std::byte> header, uint64_t size, uint64_t data_offset,
                           const std::string& what) {
  const uint64_t at = data_offset - sizeof(format::ChunkSumsHeader);
  if (data_offset < sizeof(format::ChunkSumsHeader) || header.size() < sizeof(format::ChunkSumsHeader)) {
    return bad(what, "no header before the data", data_offset);
  }
  format::ChunkSumsHeader h;
  std::memcpy(&h, header.data(), sizeof h);
  if (std::memcmp(h.cs_magic, format::kChunkSumsMagic, sizeof h.cs_magic) != 0) return bad(what, "bad magic", at);
  if (h.cs_reserved[0] != 0 || h.cs_reserved[1] != 0 || h.cs_reserved[2] != 0) {
    return bad(what, "reserved bytes not zero", at + 13);
  }
  if (h.cs_chunk_log2 < format::kMinFrameLog2 || h.cs_chunk_log2 > format::kMaxFrameLog2) {
    return bad(what, "chunk size 2^" + std::to_string(h.cs_chunk_log2) + " out of range", at + 12);
  }
  const uint64_t want = (size + (uint64_t{1} << h.cs_chunk_log2) - 1) >> h.cs_chunk_log2;
  if (uint64_t{h.cs_count} != want || want < 2) {
    return bad(what, std::to_string(h.cs_count.get()) + " sums for " + std::to_string(size) + " bytes in chunks of 2^" +
                         std::to_string(h.cs_chunk_log2),
               at + 8);
  }
  // The sums lie between the archive's header area and this header. The
  // count is bounded by the size, itself bounded by the file, so this
  // product cannot overflow.
  const uint64_t sums_bytes = want * sizeof(uint64_t);
  if (at < format::kHeaderAreaSize || at - format::kHeaderAreaSize < sums_bytes) {
    return bad(what, std::to_string(want) + " sums do not fit before the data", at);
  }
  Table t;
  t.log2 = h.cs_chunk_log2;
  t.count = h.cs_count;
  t.sums_offset = at - sums_bytes;
  return t;
}

std::vector<std::byte> encode(std::span<const std::byte> data, uint8_t log2) {
  std::vector<std::byte> out;
  const uint64_t chunk = uint64_t{1} << log2;
  uint32_t count = 0;
  for (uint64_t at = 0; at < data.size(); at += chunk, ++count) {
    append_sum(out, XXH3_64bits(data.data() + at, static_cast<size_t>(std::min<uint64_t>(chunk, data.size() - at))));
  }
  append_header(out, count, log2);
  return out;
}

Result<std::vector<std::byte>> encode_from_fd(int fd, uint64_t offset, uint64_t size, const std::string& what,
                                              uint8_t log2) {
  std::vector<std::byte> out;
  const uint64_t chunk = uint64_t{1} << log2;
  std::vector<std::byte> buf(static_cast<size_t>(chunk));
  uint32_t count = 0;
  for (uint64_t at = 0; at < size; at += chunk, ++count) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk, size - at));
    if (!pread_full(fd, buf.data(), n, offset + at)) return sys_error("read back " + what, errno ? errno : EIO);
    append_sum(out, XXH3_64bits(buf.data(), n));
  }
  append_header(out, count, log2);
  return out;
}

uint64_t sum_at(std::span<const std::byte> sums, uint32_t first, uint32_t k) {
  ul64 v;
  std::memcpy(&v, sums.data() + (uint64_t{k} - first) * sizeof(uint64_t), sizeof v);
  return v;
}

}  // namespace mmar::chunks
