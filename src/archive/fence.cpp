// SPDX-License-Identifier: BSD-2-Clause
#include "archive/fence.h"

#include <xxhash.h>

#include <cstring>

#include "support/checked.h"

namespace mmar::fence {

namespace {

constexpr uint64_t kKeysAt = sizeof(Header);

// The shortest prefix of b that sorts after a (a < b).
std::string_view separator(std::string_view a, std::string_view b) {
  size_t l = 0;
  while (l < a.size() && l < b.size() && a[l] == b[l]) ++l;
  return b.substr(0, std::min(b.size(), l + 1));
}

uint64_t checksum(const std::byte* block, uint64_t bytes) {
  const uint64_t seed = XXH3_64bits(block, offsetof(Header, xxh3));
  return XXH3_64bits_withSeed(block + kKeysAt, bytes - kKeysAt, seed);
}

uint32_t get32(const std::byte* p) {
  ul32 v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

std::vector<std::byte> build(const std::vector<std::string_view>& names, uint32_t min_stride) {
  const uint64_t count = names.size();
  if (count < kMinMembers) return {};
  for (uint64_t stride = std::max<uint32_t>(min_stride, 1);; stride *= 2) {
    const uint64_t keys = (count + stride - 1) / stride;
    std::vector<std::string_view> sep(keys);  // key 0 is empty
    uint64_t key_bytes = 0;
    for (uint64_t k = 1; k < keys; ++k) {
      sep[k] = separator(names[k * stride - 1], names[k * stride]);
      key_bytes += sep[k].size();
    }
    const uint64_t bytes = kKeysAt + 4 * (keys + 1) + key_bytes;
    if (bytes > kMaxBytes && keys > 1) continue;
    std::vector<std::byte> block(bytes);
    Header h{};
    std::memcpy(h.magic, kMagic, sizeof kMagic);
    h.member_count = static_cast<uint32_t>(count);
    h.stride = static_cast<uint32_t>(stride);
    h.keys = static_cast<uint32_t>(keys);
    h.bytes = static_cast<uint32_t>(bytes);
    std::memcpy(block.data(), &h, sizeof h);
    std::byte* offs = block.data() + kKeysAt;
    std::byte* text = offs + 4 * (keys + 1);
    uint32_t at = 0;
    for (uint64_t k = 0; k <= keys; ++k) {
      ul32 v = at;
      std::memcpy(offs + 4 * k, &v, 4);
      if (k < keys && !sep[k].empty()) {
        std::memcpy(text + at, sep[k].data(), sep[k].size());
        at += static_cast<uint32_t>(sep[k].size());
      }
    }
    return block;
  }
}

void finish(std::vector<std::byte>& block, uint64_t index_xxh3, uint64_t generation) {
  if (block.empty()) return;
  Header h;
  std::memcpy(&h, block.data(), sizeof h);
  h.index_xxh3 = index_xxh3;
  h.generation = generation;
  std::memcpy(block.data(), &h, sizeof h);
  h.xxh3 = checksum(block.data(), block.size());
  std::memcpy(block.data(), &h, sizeof h);
}

uint32_t View::claimed_size(std::span<const std::byte> area) {
  if (area.size() < sizeof(Header) || std::memcmp(area.data(), kMagic, sizeof kMagic) != 0) return 0;
  Header h;
  std::memcpy(&h, area.data(), sizeof h);
  return h.bytes;
}

std::optional<View> View::parse(std::span<const std::byte> area, const format::Superblock& sb, bool check_sum) {
  if (area.size() < sizeof(Header) || std::memcmp(area.data(), kMagic, sizeof kMagic) != 0) return std::nullopt;
  Header h;
  std::memcpy(&h, area.data(), sizeof h);
  if (h.index_xxh3 != sb.sb_index_xxh3 || h.generation != sb.sb_generation || h.member_count != sb.sb_member_count) {
    return std::nullopt;  // another generation's fence
  }
  const uint64_t count = h.member_count, stride = h.stride, keys = h.keys, bytes = h.bytes;
  if (count == 0 || stride == 0 || keys != (count + stride - 1) / stride) return std::nullopt;
  const uint64_t fixed = kKeysAt + 4 * (keys + 1);
  if (bytes < fixed || bytes > area.size()) return std::nullopt;
  if (check_sum && checksum(area.data(), bytes) != h.xxh3) return std::nullopt;
  const std::byte* offs = area.data() + kKeysAt;
  uint32_t prev = 0;
  for (uint64_t k = 0; k <= keys; ++k) {
    const uint32_t o = get32(offs + 4 * k);
    if (o < prev || (k == 0 && o != 0)) return std::nullopt;
    prev = o;
  }
  if (prev != bytes - fixed) return std::nullopt;
  View v;
  v.base_ = area.data();
  v.stride_ = static_cast<uint32_t>(stride);
  v.keys_ = static_cast<uint32_t>(keys);
  v.count_ = static_cast<uint32_t>(count);
  v.key_bytes_ = prev;
  return v;
}

std::string_view View::key(uint32_t k) const {
  const std::byte* offs = base_ + kKeysAt;
  const uint32_t a = get32(offs + 4 * uint64_t{k}), b = get32(offs + 4 * (uint64_t{k} + 1));
  const char* text = reinterpret_cast<const char*>(offs + 4 * (uint64_t{keys_} + 1));
  return {text + a, b - a};
}

std::pair<uint32_t, uint32_t> View::run(std::string_view name) const {
  // The last key not greater than name (key 0 is empty: always).
  uint32_t lo = 0, hi = keys_;
  while (hi - lo > 1) {
    const uint32_t mid = lo + (hi - lo) / 2;
    if (key(mid) <= name) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  const uint64_t first = uint64_t{lo} * stride_;
  return {static_cast<uint32_t>(first), static_cast<uint32_t>(std::min<uint64_t>(first + stride_, count_))};
}

}  // namespace mmar::fence
