// SPDX-License-Identifier: BSD-2-Clause
// BTF parsing: header and section checks at open, a lazily built and
// validated index of type offsets, lookups across base and split.
#include "mmar/btf.h"
#include "btf/records.h"
#include "btf/stored_index.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

#include <xxhash.h>

#include "elf/sections.h"
#include "support/checked.h"
#include "support/endian.h"

namespace mmar {

namespace {

constexpr uint32_t kTypeHeaderSize = kBtfTypeHeaderSize;

const char* const kKindNames[] = {"UNKNOWN", "INT",     "PTR",      "ARRAY",    "STRUCT",   "UNION", "ENUM",
                                  "FWD",     "TYPEDEF", "VOLATILE", "CONST",    "RESTRICT", "FUNC",  "FUNC_PROTO",
                                  "VAR",     "DATASEC", "FLOAT",    "DECL_TAG", "TYPE_TAG", "ENUM64"};

}  // namespace

const char* btf_kind_name(BtfKind kind) {
  auto k = static_cast<uint8_t>(kind);
  return k <= kBtfMaxKind ? kKindNames[k] : "UNKNOWN";
}

// ---------------------------------------------------------------------------

// The lazy index's storage: offsets in 16 KiB chunks, allocated as the scan
// reaches them. One flat array sized for the worst case (a megabyte for
// vmlinux) would come from mmap and cost page-table work at every open and
// close; chunks come from the heap and are reused. The chunk table's size is
// fixed at open, so readers of entries already published (below `indexed`,
// loaded with acquire) never race with the writer adding a chunk.
class ChunkedOffsets {
 public:
  static constexpr uint32_t kShift = 12;
  static constexpr uint32_t kChunk = 1u << kShift;
  void reset(uint64_t capacity) {
    chunk_count_ = static_cast<uint32_t>((capacity + kChunk - 1) / kChunk);
    chunks_ = std::make_unique<std::unique_ptr<uint32_t[]>[]>(chunk_count_);
  }
  uint32_t operator[](uint32_t i) const { return chunks_[i >> kShift][i & (kChunk - 1)]; }
  // Writer only (under the index mutex); i below the capacity given to reset.
  void set(uint32_t i, uint32_t off) {
    auto& chunk = chunks_[i >> kShift];
    if (!chunk) chunk.reset(new uint32_t[kChunk]);
    chunk[i & (kChunk - 1)] = off;
  }

 private:
  std::unique_ptr<std::unique_ptr<uint32_t[]>[]> chunks_;
  uint32_t chunk_count_ = 0;
};

struct Btf::Impl {
  Bytes bytes;  // keeps the mapping or buffer alive
  std::string name;
  bool little = true;
  std::shared_ptr<Impl> base;
  uint32_t start_id = 1;
  uint32_t start_str_off = 0;
  const std::byte* types = nullptr;
  uint32_t types_len = 0;
  const char* strs = nullptr;
  uint32_t strs_len = 0;
  uint64_t types_file_off = 0;  // for error messages
  uint64_t strs_file_off = 0;

  // Lazy index: offs[i] is the offset of type start_id + i in `types`.
  // Capacity is fixed at open (types_len / 12 + 1), so readers of entries
  // below `indexed` need no lock; extending takes `mu`.
  ChunkedOffsets offs;
  std::atomic<uint32_t> indexed{0};
  uint32_t scanned = 0;  // bytes of `types` indexed (under mu)
  // Set (release) once every record is indexed, after the last `indexed`
  // store: a reader that sees it (acquire) sees the whole index without
  // taking `mu`. Read without the lock, so atomic (ThreadSanitizer found
  // the plain bool racing with count()).
  std::atomic<bool> complete{false};
  std::optional<Error> scan_error;
  std::mutex mu;

  // A stored index (from an archive): offsets and the name table are read in
  // place from `index`; each record reached through it is bounds-checked.
  bool stored = false;
  Bytes index_bytes;  // keeps the stored index alive
  Bytes names_bytes;
  const std::byte* stored_offs = nullptr;
  const std::byte* stored_tuples = nullptr;  // btf_index::NameEntry x stored_names
  uint32_t stored_names = 0;
  uint64_t binding = 0;

  uint32_t off_at(uint32_t local) const {
    return stored ? read_int<uint32_t>(stored_offs + uint64_t{local} * 4, true) : offs[local];
  }

  // A record through the stored index: it must lie inside the type section,
  // 4-aligned, and pass the record checker as the lazy index's records do.
  Result<void> check_stored(uint32_t local) const {
    const uint32_t off = off_at(local);
    if (off % 4 != 0 || off >= types_len) {
      return malformed(types_file_off, "stored index: type " + std::to_string(start_id + local) +
                                           " points at no valid record (offset " + std::to_string(off) + ")");
    }
    MMAR_TRY(check_record(start_id + local, off));
    return success();
  }

  // Name index: (XXH3 of the name, ID) for every named type, sorted; a flat
  // array, built on the second lookup (a single lookup is cheaper as a scan
  // that stops at the first match).
  std::vector<std::pair<uint64_t, uint32_t>> names;
  std::atomic<bool> names_ready{false};
  std::atomic<bool> validated{false};  // validate() succeeded once: a base shared by many splits is checked once
  std::atomic<uint32_t> lookups{0};
  std::mutex names_mu;

  Result<void> build_name_index() {
    std::lock_guard lock(names_mu);
    if (names_ready.load(std::memory_order_acquire)) return success();
    MMAR_ASSIGN(uint32_t total, count());
    std::vector<std::pair<uint64_t, uint32_t>> index;
    index.reserve(total - start_id);
    for (uint32_t local = 0; local < total - start_id; ++local) {
      const std::byte* rec = types + offs[local];
      uint32_t name_off = read_int<uint32_t>(rec, little);
      if (name_off == 0) continue;
      auto s = str(name_off);
      if (!s || s->empty()) continue;
      index.emplace_back(XXH3_64bits(s->data(), s->size()), start_id + local);
    }
    std::sort(index.begin(), index.end());
    names = std::move(index);
    names_ready.store(true, std::memory_order_release);
    return success();
  }

  Error malformed(uint64_t offset, const std::string& what) const { return btf_malformed(name, offset, what); }

  bool str_valid(uint32_t off) const {
    if (off < start_str_off) return base != nullptr && base->str_valid(off);
    return off - start_str_off < strs_len;
  }

  std::optional<std::string_view> str(uint32_t off) const {
    if (off < start_str_off) {
      if (base == nullptr) return std::nullopt;
      return base->str(off);
    }
    uint32_t local = off - start_str_off;
    if (local >= strs_len) return std::nullopt;
    const size_t len = strnlen(strs + local, strs_len - local);
    if (len == strs_len - local) return std::nullopt;  // runs off an unterminated section
    return std::string_view(strs + local, len);
  }

  // Index records until at least `want` records are indexed or the section
  // ends, each checked by btf_check_record. A malformed record stops the
  // scan for good: the records before it stay indexed (a lookup that finds
  // its answer there answers, as btf_find_in_file does), and every request
  // past it gets the same error.
  Result<void> extend(uint32_t want) {
    std::lock_guard lock(mu);
    uint32_t n = indexed.load(std::memory_order_relaxed);
    while (n < want && !complete.load(std::memory_order_relaxed)) {
      if (scan_error) return *scan_error;
      if (scanned == types_len) {
        complete.store(true, std::memory_order_release);
        break;
      }
      const uint32_t off = scanned;
      auto size = check_record(start_id + n, off);
      if (!size.ok()) {
        scan_error = size.error();
        return *scan_error;
      }
      offs.set(n, off);
      ++n;
      indexed.store(n, std::memory_order_release);
      scanned = off + *size;
    }
    return success();
  }

  // The record at `off` in the type section, as type `id`: its size, or why
  // it is refused (see records.h).
  Result<uint32_t> check_record(uint32_t id, uint32_t off) const {
    const std::byte* rec = types + off;
    return btf_check_record(
        name, types_file_off + off, id, types_len - off, little,
        [rec](uint64_t at, size_t n, void* out) {
          std::memcpy(out, rec + at, n);
          return true;
        },
        [this](uint32_t str_off) { return str_valid(str_off); });
  }

  Result<uint32_t> count() {
    if (!complete.load(std::memory_order_acquire)) MMAR_TRY(extend(UINT32_MAX));
    return start_id + indexed.load(std::memory_order_acquire);
  }

  Result<BtfType> type(uint32_t id) {
    if (id < start_id) {
      if (base == nullptr) {
        return Error(Errc::invalid_argument, name + ": type 0 is void and has no record");
      }
      return base->type(id);
    }
    const uint32_t local = id - start_id;
    if (stored) {
      if (local >= indexed.load(std::memory_order_relaxed)) {
        return Error(Errc::not_found, name + ": no type " + std::to_string(id));
      }
      MMAR_TRY(check_stored(local));
      return BtfType(types + off_at(local), id, little);
    }
    if (local >= indexed.load(std::memory_order_acquire)) {
      MMAR_TRY(extend(local + 1));
      if (local >= indexed.load(std::memory_order_acquire)) {
        return Error(Errc::not_found, name + ": no type " + std::to_string(id) + " (last is " +
                                          std::to_string(start_id + indexed.load() - 1) + ")");
      }
    }
    return BtfType(types + offs[local], id, little);
  }
};

// ---------------------------------------------------------------------------
// Opening

namespace {

Result<std::shared_ptr<Btf::Impl>> parse_impl(Bytes bytes, std::string name, std::shared_ptr<Btf::Impl> base,
                                              bool allocate_index = true) {
  auto impl = std::make_shared<Btf::Impl>();
  impl->name = std::move(name);
  impl->base = std::move(base);
  auto& b = *impl;
  std::span<const std::byte> raw = bytes.span();
  uint64_t raw_file_off = 0;

  // An ELF object: use its .BTF section.
  if (raw.size() >= 4 && std::memcmp(raw.data(),
                                     "\x7f"
                                     "ELF",
                                     4) == 0) {
    auto sec = elf::find_section(raw, ".BTF");
    if (!sec) return Error(Errc::not_found, b.name + ": ELF object without a .BTF section");
    raw_file_off = sec->offset;
    raw = raw.subspan(sec->offset, sec->size);
  }
  b.bytes = bytes.subspan(static_cast<size_t>(raw.data() - bytes.data()), raw.size());
  auto read = [&raw](uint64_t at, size_t n, void* out) {
    std::memcpy(out, raw.data() + at, n);
    return true;
  };
  MMAR_ASSIGN(BtfHeader h, btf_check_header(b.name, raw_file_off, raw.size(), b.base == nullptr, read));
  b.little = h.little;
  b.types = raw.data() + h.types_at();
  b.types_len = h.type_len;
  b.types_file_off = raw_file_off + h.types_at();
  b.strs = reinterpret_cast<const char*>(raw.data() + h.strs_at());
  b.strs_len = h.str_len;
  const uint32_t type_len = h.type_len, str_len = h.str_len;
  // That the section ends with NUL is checked by validate(), not here: the
  // last byte is usually on a page of its own, and touching it at every open
  // costs a page fault (and page-table setup) that most lookups never need.
  // str() bounds every string by the section's end instead.
  b.strs_file_off = raw_file_off + h.strs_at();
  if (b.base != nullptr) {
    MMAR_ASSIGN(uint32_t base_count, b.base->count());
    b.start_id = base_count;
    auto next = checked_add(b.base->start_str_off, b.base->strs_len);
    if (!next || *next + uint64_t{str_len} > kBtfMaxStrOffset) {
      return b.malformed(raw_file_off + 20, "split string offsets overflow");
    }
    b.start_str_off = static_cast<uint32_t>(*next);
  }
  if (allocate_index) b.offs.reset(type_len / kTypeHeaderSize + 1);
  return impl;
}

}  // namespace

Result<Btf> Btf::parse(Bytes bytes, std::string name, const BtfOpenOptions& options) {
  MMAR_ASSIGN(auto impl, parse_impl(std::move(bytes), std::move(name), nullptr));
  Btf btf(std::move(impl));
  if (options.validate) MMAR_TRY(btf.validate());
  return btf;
}

Result<Btf> Btf::parse_split(Bytes bytes, std::string name, const Btf& base, const BtfOpenOptions& options) {
  MMAR_ASSIGN(auto impl, parse_impl(std::move(bytes), std::move(name), base.impl_));
  Btf btf(std::move(impl));
  if (options.validate) MMAR_TRY(btf.validate());
  return btf;
}

Result<Btf> Btf::parse_indexed(Bytes bytes, std::string name, Bytes offsets, Bytes names, uint64_t btf_xxh3,
                              const Btf* base) {
  // Parse without allocating the lazy index; allocate it only if the stored
  // one turns out not to fit.
  MMAR_ASSIGN(auto impl, parse_impl(std::move(bytes), std::move(name), base != nullptr ? base->impl_ : nullptr, false));
  Impl& b = *impl;
  const std::byte* p = offsets.data();
  const std::byte* q = names.data();
  if (offsets.size() >= sizeof(btf_index::OffsetsHeader) && names.size() >= sizeof(btf_index::NamesHeader)) {
    auto oh = load<btf_index::OffsetsHeader>(p);
    auto nh = load<btf_index::NamesHeader>(q);
    const uint64_t count = oh.count;
    const uint64_t entries = (names.size() - sizeof nh) / sizeof(btf_index::NameEntry);
    if (std::memcmp(oh.magic, btf_index::kOffsetsMagic, 8) == 0 && oh.binding == btf_xxh3 && oh.reserved == 0 &&
        offsets.size() == sizeof oh + count * 4 && count * kTypeHeaderSize <= b.types_len &&
        std::memcmp(nh.magic, btf_index::kNamesMagic, 8) == 0 && nh.binding == btf_xxh3 &&
        names.size() == sizeof nh + entries * sizeof(btf_index::NameEntry) && entries <= count) {
      b.stored = true;
      b.index_bytes = std::move(offsets);
      b.names_bytes = std::move(names);
      b.stored_offs = p + sizeof oh;
      b.stored_tuples = q + sizeof nh;
      b.stored_names = static_cast<uint32_t>(entries);
      b.binding = btf_xxh3;
      b.indexed.store(static_cast<uint32_t>(count));
      b.complete.store(true, std::memory_order_release);
    }
  }
  if (!b.stored) b.offs.reset(b.types_len / kTypeHeaderSize + 1);
  return Btf(std::move(impl));
}

Result<Btf::StoredIndex> Btf::build_index(uint64_t btf_xxh3) const {
  Impl& b = *impl_;
  MMAR_ASSIGN(uint32_t total, b.count());
  const uint32_t count = total - b.start_id;
  std::vector<btf_index::NameEntry> tuples;
  const uint64_t own_strs = static_cast<uint64_t>(reinterpret_cast<const std::byte*>(b.strs) - b.bytes.data());
  for (uint32_t local = 0; local < count; ++local) {
    const std::byte* rec = b.types + b.off_at(local);
    const uint32_t name_off = read_int<uint32_t>(rec, b.little);
    auto s = b.str(name_off);
    if (!s || s->empty()) continue;
    uint64_t at;
    if (name_off < b.start_str_off) {  // a base string
      const Impl& base = *b.base;
      at = static_cast<uint64_t>(reinterpret_cast<const std::byte*>(base.strs) - base.bytes.data()) + name_off;
      if (at >= btf_index::kNameInBase) return b.malformed(b.types_file_off, "BTF too large to index");
      at |= btf_index::kNameInBase;
    } else {
      at = own_strs + (name_off - b.start_str_off);
      if (at >= btf_index::kNameInBase) return b.malformed(b.types_file_off, "BTF too large to index");
    }
    btf_index::NameEntry e;
    e.hash = btf_index::name_hash(*s, btf_xxh3);
    e.id = b.start_id + local;
    e.info = read_int<uint32_t>(rec + 4, b.little);
    e.size_or_type = read_int<uint32_t>(rec + 8, b.little);
    e.name_at = static_cast<uint32_t>(at);
    tuples.push_back(e);
  }
  std::sort(tuples.begin(), tuples.end(), [](const btf_index::NameEntry& x, const btf_index::NameEntry& y) {
    return x.hash != y.hash ? x.hash < y.hash : x.id < y.id;
  });
  StoredIndex out;
  btf_index::OffsetsHeader oh{};
  std::memcpy(oh.magic, btf_index::kOffsetsMagic, 8);
  oh.binding = btf_xxh3;
  oh.count = count;
  out.offsets.resize(sizeof oh + uint64_t{count} * 4);
  std::memcpy(out.offsets.data(), &oh, sizeof oh);
  for (uint32_t i = 0; i < count; ++i) {
    ul32 v = b.off_at(i);
    std::memcpy(out.offsets.data() + sizeof oh + uint64_t{i} * 4, &v, 4);
  }
  btf_index::NamesHeader nh{};
  std::memcpy(nh.magic, btf_index::kNamesMagic, 8);
  nh.binding = btf_xxh3;
  out.names.resize(sizeof nh + tuples.size() * sizeof(btf_index::NameEntry));
  std::memcpy(out.names.data(), &nh, sizeof nh);
  if (!tuples.empty()) std::memcpy(out.names.data() + sizeof nh, tuples.data(), tuples.size() * sizeof tuples[0]);
  return out;
}

bool Btf::has_stored_index() const { return impl_->stored; }

Result<Btf> Btf::open(const std::string& path, const Btf* base, const BtfOpenOptions& options) {
  MMAR_ASSIGN(Source src, Source::open(path));
  MMAR_ASSIGN(Bytes bytes, src.read(0, src.size()));
  return base != nullptr ? parse_split(std::move(bytes), path, *base, options) : parse(std::move(bytes), path, options);
}

const std::string& Btf::name() const { return impl_->name; }
bool Btf::little_endian() const { return impl_->little; }
bool Btf::is_split() const { return impl_->base != nullptr; }
std::optional<Btf> Btf::base() const {
  if (impl_->base == nullptr) return std::nullopt;
  return Btf(impl_->base);
}
uint32_t Btf::start_id() const { return impl_->start_id; }
uint32_t Btf::start_str_off() const { return impl_->start_str_off; }
Result<uint32_t> Btf::type_count() const { return impl_->count(); }
uint32_t Btf::str_size() const { return impl_->strs_len; }
std::span<const std::byte> Btf::raw() const { return impl_->bytes.span(); }

Result<BtfType> Btf::type(uint32_t id) const { return impl_->type(id); }
std::optional<std::string_view> Btf::str(uint32_t off) const { return impl_->str(off); }
std::string_view Btf::name_of(const BtfType& t) const { return impl_->str(t.name_off()).value_or(""); }

// The stored name table's first entry whose hash is not less than `h`
// (stored_names if none). Hashes are uniform: interpolation finds the spot
// in a few probes, i.e. a few pages of the mapping touched instead of ~log2(n).
static uint32_t stored_first_at_least(const Btf::Impl& b, uint64_t h) {
  auto tuple = [&](uint32_t k) { return load<btf_index::NameEntry>(b.stored_tuples + uint64_t{k} * 24); };
  auto hash_at = [&](uint32_t k) { return tuple(k).hash.get(); };
  uint32_t lo = 0, hi = b.stored_names;  // answer in [lo, hi]: first entry with hash >= h
  while (hi - lo > 16) {
    const uint64_t vlo = hash_at(lo), vhi = hash_at(hi - 1);
    if (h <= vlo) {
      hi = lo;
      break;
    }
    if (h > vhi) {
      lo = hi;
      break;
    }
    const double frac = static_cast<double>(h - vlo) / static_cast<double>(vhi - vlo);
    uint32_t guess = lo + static_cast<uint32_t>(frac * static_cast<double>(hi - 1 - lo));
    guess = std::clamp(guess, lo, hi - 1);
    // Narrow to a window around the guess, then verify it brackets h.
    const uint32_t slack = 8;
    const uint32_t wlo = guess > lo + slack ? guess - slack : lo;
    const uint32_t whi = guess + slack < hi ? guess + slack : hi;
    if (hash_at(wlo) < h && (whi == hi || hash_at(whi - 1) >= h)) {
      lo = wlo + 1;
      hi = whi;
      break;
    }
    if (hash_at(guess) < h) {
      lo = guess + 1;
    } else {
      hi = guess;
    }
  }
  while (lo < hi) {  // binary search on what is left
    uint32_t mid = lo + (hi - lo) / 2;
    if (hash_at(mid) < h) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

Result<BtfType> Btf::find(std::string_view name, std::optional<BtfKind> kind) const {
  if (impl_->base != nullptr) {
    auto in_base = Btf(impl_->base).find(name, kind);
    if (in_base.ok() || in_base.error().code() != Errc::not_found) return in_base;
  }
  Impl& b = *impl_;
  if (b.stored) {
    const uint64_t h = btf_index::name_hash(name, b.binding);
    auto tuple = [&](uint32_t k) { return load<btf_index::NameEntry>(b.stored_tuples + uint64_t{k} * 24); };
    auto hash_at = [&](uint32_t k) { return tuple(k).hash.get(); };
    uint32_t lo = stored_first_at_least(b, h);
    for (; lo < b.stored_names && hash_at(lo) == h; ++lo) {
      const uint32_t id = tuple(lo).id;
      if (id < b.start_id) continue;
      auto t = b.type(id);
      if (!t.ok()) return std::move(t).error();
      if (kind && t->kind() != *kind) continue;
      if (b.str(t->name_off()) == name) return t;
    }
    return Error(Errc::not_found, b.name + ": no type named '" + std::string(name) + "'" +
                                      (kind ? std::string(" of kind ") + btf_kind_name(*kind) : ""));
  }
  if (b.names_ready.load(std::memory_order_acquire) || b.lookups.fetch_add(1) >= 1) {
    MMAR_TRY(b.build_name_index());
    const uint64_t h = XXH3_64bits(name.data(), name.size());
    auto it = std::lower_bound(b.names.begin(), b.names.end(), std::make_pair(h, uint32_t{0}));
    for (; it != b.names.end() && it->first == h; ++it) {
      BtfType t(b.types + b.offs[it->second - b.start_id], it->second, b.little);
      if (kind && t.kind() != *kind) continue;
      if (b.str(t.name_off()) == name) return t;
    }
    return Error(Errc::not_found, b.name + ": no type named '" + std::string(name) + "'" +
                                      (kind ? std::string(" of kind ") + btf_kind_name(*kind) : ""));
  }
  // The first lookup: a scan that indexes only as far as the first match.
  // Records are indexed in batches, but as btf_find_in_file, a malformed
  // record after the match does not fail the lookup; one before it does.
  for (uint32_t local = 0;; ++local) {
    if (local >= b.indexed.load(std::memory_order_acquire)) {
      auto extended = b.extend(local + 256);
      if (local >= b.indexed.load(std::memory_order_acquire)) {
        if (!extended.ok()) return std::move(extended).error();
        break;
      }
    }
    BtfType t(b.types + b.offs[local], b.start_id + local, b.little);
    if (kind && t.kind() != *kind) continue;
    if (t.name_off() == 0) continue;
    auto s = b.str(t.name_off());
    if (s && *s == name) return t;
  }
  return Error(Errc::not_found, b.name + ": no type named '" + std::string(name) + "'" +
                                    (kind ? std::string(" of kind ") + btf_kind_name(*kind) : ""));
}

Result<std::vector<BtfType>> Btf::find_all(std::string_view name, std::optional<BtfKind> kind) const {
  std::vector<BtfType> out;
  if (impl_->base != nullptr) {
    MMAR_ASSIGN(out, Btf(impl_->base).find_all(name, kind));
  }
  Impl& b = *impl_;
  auto take = [&](const BtfType& t) {
    if ((!kind || t.kind() == *kind) && b.str(t.name_off()) == name) out.push_back(t);
  };
  if (b.stored) {  // the stored table is in (hash, id) order
    const uint64_t h = btf_index::name_hash(name, b.binding);
    for (uint32_t k = stored_first_at_least(b, h); k < b.stored_names; ++k) {
      auto e = load<btf_index::NameEntry>(b.stored_tuples + uint64_t{k} * 24);
      if (e.hash.get() != h) break;
      if (e.id < b.start_id) continue;
      MMAR_ASSIGN(BtfType t, b.type(e.id));
      take(t);
    }
    return out;
  }
  MMAR_TRY(b.build_name_index());  // (hash, id) pairs, sorted
  const uint64_t h = XXH3_64bits(name.data(), name.size());
  for (auto it = std::lower_bound(b.names.begin(), b.names.end(), std::make_pair(h, uint32_t{0}));
       it != b.names.end() && it->first == h; ++it) {
    take(BtfType(b.types + b.offs[it->second - b.start_id], it->second, b.little));
  }
  return out;
}

Result<void> Btf::validate() const {
  Impl& b = *impl_;
  if (b.validated.load(std::memory_order_acquire)) return success();
  if (b.stored) {
    // Rescan without the index, validate that, and compare the index with it.
    MMAR_ASSIGN(auto fresh, parse_impl(b.bytes, b.name, b.base));
    Btf plain(fresh);
    MMAR_TRY(plain.validate());
    const uint32_t n = fresh->indexed.load();
    if (n != b.indexed.load()) return b.malformed(b.types_file_off, "stored index: type count differs from the BTF");
    for (uint32_t i = 0; i < n; ++i) {
      if (fresh->offs[i] != b.off_at(i)) {
        return b.malformed(b.types_file_off,
                           "stored index: offset of type " + std::to_string(b.start_id + i) + " is wrong");
      }
    }
    // The name table: every named type once, in (hash, id) order, each
    // field as the record and its name say.
    const uint64_t own_strs = static_cast<uint64_t>(reinterpret_cast<const std::byte*>(b.strs) - b.bytes.data());
    uint32_t named = 0;
    for (uint32_t i = 0; i < n; ++i) {
      auto s = b.str(read_int<uint32_t>(b.types + b.off_at(i), b.little));
      if (s && !s->empty()) ++named;
    }
    if (named != b.stored_names) {
      return b.malformed(b.types_file_off, "stored index: " + std::to_string(b.stored_names) + " names for " +
                                               std::to_string(named) + " named types");
    }
    uint64_t prev_hash = 0;
    uint32_t prev_id = 0;
    for (uint32_t k = 0; k < b.stored_names; ++k) {
      auto e = load<btf_index::NameEntry>(b.stored_tuples + uint64_t{k} * 24);
      const uint64_t h = e.hash;
      const uint32_t id = e.id;
      auto bad = [&](const char* what) {
        return b.malformed(b.types_file_off, "stored index: name entry " + std::to_string(k) + " (type " +
                                                 std::to_string(id) + "): " + what);
      };
      if (id < b.start_id || id - b.start_id >= n || (k > 0 && (h < prev_hash || (h == prev_hash && id <= prev_id)))) {
        return bad("out of order or out of range");
      }
      prev_hash = h;
      prev_id = id;
      const std::byte* rec = b.types + b.off_at(id - b.start_id);
      const uint32_t name_off = read_int<uint32_t>(rec, b.little);
      auto s = b.str(name_off);
      if (!s || s->empty() || btf_index::name_hash(*s, b.binding) != h) return bad("wrong name hash");
      if (e.info != read_int<uint32_t>(rec + 4, b.little) || e.size_or_type != read_int<uint32_t>(rec + 8, b.little)) {
        return bad("record fields differ");
      }
      uint64_t at;
      if (name_off < b.start_str_off) {
        at = static_cast<uint64_t>(reinterpret_cast<const std::byte*>(b.base->strs) - b.base->bytes.data()) + name_off;
        at |= btf_index::kNameInBase;
      } else {
        at = own_strs + (name_off - b.start_str_off);
      }
      if (e.name_at != at) return bad("wrong name position");
    }
    b.validated.store(true, std::memory_order_release);
    return success();
  }
  if (b.base != nullptr) MMAR_TRY(Btf(b.base).validate());
  if (b.strs_len > 0 && b.strs[b.strs_len - 1] != '\0') {
    return b.malformed(b.strs_file_off + b.strs_len - 1, "string section does not end with NUL");
  }
  MMAR_ASSIGN(uint32_t count, b.count());
  auto bad_ref = [&](uint32_t id, uint32_t ref, const char* what) -> Result<void> {
    if (ref < count) return success();
    return b.malformed(b.types_file_off + b.offs[id - b.start_id], "type " + std::to_string(id) + ": " + what +
                                                                       " refers to type " + std::to_string(ref) +
                                                                       " (last is " + std::to_string(count - 1) + ")");
  };
  for (uint32_t id = b.start_id; id < count; ++id) {
    BtfType t(b.types + b.offs[id - b.start_id], id, b.little);
    const uint32_t vlen = t.vlen();
    switch (t.kind()) {
      case BtfKind::ptr:
      case BtfKind::typedef_:
      case BtfKind::volatile_:
      case BtfKind::const_:
      case BtfKind::restrict_:
      case BtfKind::type_tag:
      case BtfKind::var:
      case BtfKind::decl_tag: MMAR_TRY(bad_ref(id, t.type(), "its target")); break;
      case BtfKind::func: {
        MMAR_TRY(bad_ref(id, t.type(), "its prototype"));
        auto proto = b.type(t.type());
        if (!proto.ok() || proto->kind() != BtfKind::func_proto) {
          return b.malformed(b.types_file_off + b.offs[id - b.start_id],
                             "type " + std::to_string(id) + ": FUNC whose type is not a FUNC_PROTO");
        }
        break;
      }
      case BtfKind::array:
        MMAR_TRY(bad_ref(id, t.extra_u32(0), "its element type"));
        MMAR_TRY(bad_ref(id, t.extra_u32(1), "its index type"));
        break;
      case BtfKind::struct_:
      case BtfKind::union_:
        for (uint32_t i = 0; i < vlen; ++i) MMAR_TRY(bad_ref(id, t.extra_u32(i * 3 + 1), "a member"));
        break;
      case BtfKind::func_proto:
        MMAR_TRY(bad_ref(id, t.type(), "its return type"));
        for (uint32_t i = 0; i < vlen; ++i) MMAR_TRY(bad_ref(id, t.extra_u32(i * 2 + 1), "a parameter"));
        break;
      case BtfKind::datasec:
        for (uint32_t i = 0; i < vlen; ++i) MMAR_TRY(bad_ref(id, t.extra_u32(i * 3), "a variable"));
        break;
      case BtfKind::int_: {
        uint32_t v = t.extra_u32(0);
        uint32_t bits = v & 0xff, offset = (v >> 16) & 0xff;
        if (bits > 128 || offset + bits > uint64_t{t.size()} * 8) {
          return b.malformed(b.types_file_off + b.offs[id - b.start_id],
                             "type " + std::to_string(id) + ": INT bits " + std::to_string(bits) + " at offset " +
                                 std::to_string(offset) + " do not fit " + std::to_string(t.size()) + " bytes");
        }
        break;
      }
      default: break;
    }
  }
  b.validated.store(true, std::memory_order_release);
  return success();
}

}  // namespace mmar
