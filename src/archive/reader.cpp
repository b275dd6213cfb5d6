// SPDX-License-Identifier: BSD-2-Clause
// Archive reader: mmar format, libctf CTF archives, and plain files.
//
// Opening validates the superblock and that the index lies inside the file;
// it touches no per-member data, so its cost is independent of the member
// count. Each entry is validated when it is accessed (at/find), and verify()
// checks everything.
#include <sys/mman.h>
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14; older kernels answer EINVAL, harmless here
#endif
#include <sys/stat.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t on the stack
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>

#include "archive/attrs.h"
#include "archive/chunks.h"
#include "archive/codec.h"
#include "archive/detect.h"
#include "archive/entry.h"
#include "archive/fence.h"
#include "archive/format.h"
#include "archive/frames.h"
#include "archive/index_codec.h"
#include "archive/names.h"
#include "mmar/archive.h"
#include "support/checked.h"
#include "support/hex.h"
#include "support/io.h"

namespace mmar {

const char* codec_name(Codec codec) {
  switch (codec) {
    case Codec::none: return "none";
    case Codec::zstd: return "zstd";
    case Codec::xz: return "xz";
    case Codec::extents: return "extents";
  }
  return "?";
}

std::optional<Codec> parse_codec(std::string_view name) {
  if (name == "none" || name == "raw") return Codec::none;
  if (name == "zstd") return Codec::zstd;
  if (name == "xz") return Codec::xz;
  return std::nullopt;
}

std::optional<IndexStorage> parse_index_storage(std::string_view name) {
  if (name == "auto") return IndexStorage::automatic;
  if (name == "plain") return IndexStorage::plain;
  if (name == "compressed") return IndexStorage::compressed;
  return std::nullopt;
}

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::data: return "data";
    case Kind::elf: return "elf";
    case Kind::btf: return "btf";
    case Kind::ctf: return "ctf";
    case Kind::btf_index: return "btf-index";
  }
  return "?";
}

const char* format_name(Format format) {
  switch (format) {
    case Format::mmar: return "mmar";
    case Format::ctf: return "ctf-archive";
    case Format::plain: return "plain";
  }
  return "?";
}

std::optional<Format> archive_format_of(std::span<const std::byte> head) {
  auto magic_at = [&](uint64_t off) {
    return head.size() >= off + 8 && std::memcmp(head.data() + off, format::kMagic, 8) == 0;
  };
  if (magic_at(0) || magic_at(format::kSuperblockSize)) return Format::mmar;
  if (head.size() >= 8 && read_int<uint64_t>(head.data(), true) == ctfa::kMagic) return Format::ctf;
  if (head.size() < format::kHeaderAreaSize) return std::nullopt;
  return Format::plain;
}

uint64_t member_checksum(std::span<const std::byte> bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

bool Member::is_dir() const { return S_ISDIR(mode); }
bool Member::has_data() const { return S_ISREG(mode) || S_ISLNK(mode); }
bool Member::is_symlink() const { return S_ISLNK(mode); }
bool Member::is_regular() const { return S_ISREG(mode); }

namespace {

// The one helper for malformed-input errors: "FILE: WHAT (at offset 0x..)".
Error malformed(const std::string& file, uint64_t offset, const std::string& what) {
  return Error(Errc::malformed, file + ": " + what + " (at offset " + hex(offset) + ")", offset);
}

Error member_malformed(const std::string& file, uint32_t index, uint64_t offset, const std::string& what) {
  return malformed(file, offset, "member " + std::to_string(index) + ": " + what);
}

// Bytes by key, bounded by bytes, least recently used evicted first; one
// mutex guards only the list and map (callers inflate outside it, so
// independent readers never wait for each other's inflation).
template <class Key, class Hash = std::hash<Key>>
class LruBytes {
 public:
  explicit LruBytes(uint64_t capacity) : capacity_(capacity) {}
  uint64_t capacity() const { return capacity_; }

  std::optional<Bytes> get(const Key& key) {
    std::lock_guard lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->data;
  }

  void put(const Key& key, Bytes data) {
    const uint64_t bytes = data.size();
    if (bytes > capacity_) return;
    std::lock_guard lock(mu_);
    if (map_.count(key) != 0) return;
    while (used_ + bytes > capacity_ && !lru_.empty()) {
      used_ -= lru_.back().data.size();
      map_.erase(lru_.back().key);
      lru_.pop_back();
    }
    lru_.push_front({key, std::move(data)});
    map_[key] = lru_.begin();
    used_ += bytes;
  }

 private:
  struct Node {
    Key key;
    Bytes data;  // inflated or assembled bytes, owning their buffer
  };
  std::mutex mu_;
  uint64_t capacity_;
  uint64_t used_ = 0;
  std::list<Node> lru_;
  std::unordered_map<Key, typename std::list<Node>::iterator, Hash> map_;
};

// Decompressed (or assembled) members, by member index.
using InflateCache = LruBytes<uint32_t>;

// Inflated frames of frame streams, by (stream offset, frame, and for a v3
// stream sized by its member, that size: it places the table and so every
// frame, and entries sharing the stream must not share frames read under
// another size).
struct FrameKey {
  uint64_t stream;
  uint32_t frame;
  uint64_t sized = 0;
  bool operator==(const FrameKey&) const = default;
};
struct FrameKeyHash {
  size_t operator()(const FrameKey& k) const {
    return std::hash<uint64_t>()((k.stream * 0x9e3779b97f4a7c15ULL ^ k.frame) + k.sized * 0xbf58476d1ce4e5b9ULL);
  }
};
inline FrameKey frame_key(uint64_t stream, const frames::Table& t, uint32_t k) {
  return FrameKey{stream, k, t.sized ? t.size : 0};
}
using FrameCache = LruBytes<FrameKey, FrameKeyHash>;

// Frames being inflated, so that two readers of one frame -- a request and
// the mount's read-ahead, or two requests -- inflate it once: the second
// waits for the first and then takes the frame from the cache. (Readers of
// other frames never wait.) A wait is bounded: a reader that never lands
// (a SIGBUS guard's longjmp skips destructors) or is slow (a remote
// source) is given up on after a second, and the waiter takes the flight
// over and inflates the frame itself.
class FrameFlights {
 public:
  // Non-zero: the caller flies `key` under this id and must land(key, id).
  // Zero: another reader's flight for it landed while the caller waited:
  // look in the cache again.
  uint64_t board(const FrameKey& key) {
    std::unique_lock lock(mu_);
    auto [it, fresh] = flying_.try_emplace(key, serial_ + 1);
    if (fresh) return ++serial_;
    const uint64_t id = it->second;
    const auto landed = [&] {
      auto f = flying_.find(key);
      return f == flying_.end() || f->second != id;
    };
    if (cv_.wait_for(lock, std::chrono::seconds(1), landed)) return 0;
    // Given up on: this reader flies it now (the late owner's landing, if
    // any, no longer removes it); others waiting for the old flight wake.
    flying_[key] = ++serial_;
    cv_.notify_all();
    return serial_;
  }
  void land(const FrameKey& key, uint64_t id) {
    {
      std::lock_guard lock(mu_);
      auto it = flying_.find(key);
      if (it == flying_.end() || it->second != id) return;
      flying_.erase(it);
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t serial_ = 0;
  std::unordered_map<FrameKey, uint64_t, FrameKeyHash> flying_;
};

// Buffers for inflated frames, recycled: a frame costs no allocation, no
// zeroing and no page faults once the pool is warm (a sequential read of a
// large member through the mount inflates thousands of frames). Buffers
// come back when the last Bytes viewing them goes. They are sized in powers
// of two (a frame, or a pack of small members, whose frame size differs, or
// a stream's shorter last frame) and the pool keeps up to 32 MiB of them.
class FramePool : public std::enable_shared_from_this<FramePool> {
 public:
  std::shared_ptr<std::byte> take(size_t n) {
    const unsigned cls = static_cast<unsigned>(std::bit_width(std::max<size_t>(n, 1) - 1));
    if (cls >= kClasses) return nullptr;  // frames are at most 4 MiB
    std::byte* p = nullptr;
    {
      std::lock_guard lock(mu_);
      if (!free_[cls].empty()) {
        p = free_[cls].back();
        free_[cls].pop_back();
        kept_ -= size_t{1} << cls;
      }
    }
    if (p == nullptr) {
      p = static_cast<std::byte*>(::operator new(size_t{1} << cls, std::nothrow));
      if (p == nullptr) return nullptr;
    }
    std::weak_ptr<FramePool> self = weak_from_this();
    return std::shared_ptr<std::byte>(p, [self, cls](std::byte* q) {
      if (auto pool = self.lock()) {
        if (pool->give_back(q, cls)) return;
      }
      ::operator delete(q);
    });
  }
  ~FramePool() {
    for (auto& list : free_) {
      for (std::byte* p : list) ::operator delete(p);
    }
  }

 private:
  bool give_back(std::byte* p, unsigned cls) {
    std::lock_guard lock(mu_);
    if (kept_ + (size_t{1} << cls) > kKeepBytes) return false;
    free_[cls].push_back(p);
    kept_ += size_t{1} << cls;
    return true;
  }
  static constexpr unsigned kClasses = format::kMaxFrameLog2 + 1;
  static constexpr size_t kKeepBytes = size_t{32} << 20;
  std::mutex mu_;
  size_t kept_ = 0;
  std::array<std::vector<std::byte*>, kClasses> free_;
};

// The index of an archive read without a mapping (pread, or a remote
// source), or stored compressed: pieces read (or inflated) on demand and
// kept for the Archive's lifetime (names handed out view them), so opening
// costs the first 4 KiB whatever the member count, and a lookup through the
// name fence costs two more reads (or one or two frames inflated).
class LazyIndex {
 public:
  static constexpr uint64_t kBlock = 64 << 10;
  // Bytes [begin, end) of the index: read from the file, or inflated.
  using Fetch = std::function<Result<Bytes>(uint64_t begin, uint64_t end)>;

  // Bytes [off, off + len) of the index (of `index_size` bytes): from a
  // piece already read, or a fetch of the 64 KiB block around them (more
  // when they cross its end).
  Result<const std::byte*> get(const Fetch& fetch, uint64_t index_size, uint64_t off, uint64_t len) const {
    {
      std::lock_guard lock(mu_);
      if (const std::byte* p = find_locked(off, len)) return p;
    }
    uint64_t begin = off - off % kBlock;
    uint64_t end = std::min(index_size, std::max(begin + kBlock, off + len));
    return load(fetch, begin, end, off);
  }
  // Bytes [off, off + len) if a piece already holds them, else null.
  const std::byte* find(uint64_t off, uint64_t len) const {
    std::lock_guard lock(mu_);
    return find_locked(off, len);
  }
  // Fetch exactly [begin, end) of the index as one piece (a fence run).
  Result<void> prefetch(const Fetch& fetch, uint64_t begin, uint64_t end) const {
    {
      std::lock_guard lock(mu_);
      if (find_locked(begin, end - begin) != nullptr) return success();
    }
    auto r = load(fetch, begin, end, begin);
    if (!r.ok()) return std::move(r).error();
    return success();
  }

 private:
  const std::byte* find_locked(uint64_t off, uint64_t len) const {
    // Pieces may overlap: look at the few that start at or before `off`.
    auto it = pieces_.upper_bound(off);
    for (int steps = 0; it != pieces_.begin() && steps < 8; ++steps) {
      --it;
      if (off - it->first + len <= it->second.size()) return it->second.data() + (off - it->first);
    }
    return nullptr;
  }
  Result<const std::byte*> load(const Fetch& fetch, uint64_t begin, uint64_t end, uint64_t want) const {
    MMAR_ASSIGN(Bytes piece, fetch(begin, end));
    std::lock_guard lock(mu_);
    auto [it, fresh] = pieces_.try_emplace(begin, piece);
    if (!fresh && it->second.size() < piece.size()) {
      // Names and entries handed out view the old piece: it is kept, never
      // freed before the Archive.
      retired_.push_back(std::move(it->second));
      it->second = piece;
    }
    // What the map holds now (replaced pieces live on in retired_, so the
    // buffer is stable after the lock is released).
    return it->second.data() + (want - begin);
  }
  mutable std::mutex mu_;
  mutable std::map<uint64_t, Bytes> pieces_;
  mutable std::vector<Bytes> retired_;
};

}  // namespace

struct Archive::Impl {
  Source source;
  Format format = Format::plain;
  OpenOptions options;

  // mmar
  format::Superblock sb{};
  int sb_slot = 0;
  Bytes index;  // member table followed by the name table
  uint64_t names_size = 0;
  uint32_t count = 0;
  uint64_t align = 1;
  uint32_t delta_depth = 0;  // > 0: `index` was merged from a chain of index deltas (checked at open)
  // Without a mapping, the index is read on demand (`index` stays empty)
  // and lookups go through the name fence when there is a usable one.
  bool lazy = false;
  LazyIndex lazy_index;
  LazyIndex::Fetch fetch_index;  // lazy: reads (or inflates) bytes of the index
  // A compressed index (kSbFlagIndexFramed): its frame table, and the
  // stream's first bytes (the table and, for a small index, its frames).
  bool framed_index = false;
  frames::Table index_table;
  Bytes index_head;
  uint64_t index_bytes = 0;  // member table + names (inflated, when compressed)
  std::vector<std::byte> head_bytes;  // lazy: the first bytes of the file (superblocks, fence)
  std::optional<fence::View> fence;

  // ctf
  uint64_t ctf_names = 0;
  uint64_t ctf_ctfs = 0;
  uint64_t ctf_model = 0;

  // plain
  std::string plain_name;
  Detected plain_kind;
  uint32_t plain_mode = 0100644;
  int64_t plain_mtime = 0;

  mutable InflateCache cache;
  mutable FrameCache frame_cache;
  mutable FrameFlights frame_flights;
  std::shared_ptr<FramePool> frame_buffers = std::make_shared<FramePool>();
  // Raw members whose XXH3 has been checked, by member index: bit i of
  // `raw_good` / `raw_bad` (one word per 64 members, allocated on first use).
  mutable std::once_flag raw_bits_once;
  mutable std::unique_ptr<std::atomic<uint64_t>[]> raw_good, raw_bad;
  // Raw members with chunk checksums: per member, its table and the chunks
  // found good (one bit each; a bad chunk is checked again, and fails
  // again, at every read). Memory: a bit per 64 KiB of members read.
  struct ChunkState {
    chunks::Table table;
    std::unique_ptr<std::atomic<uint64_t>[]> good;
  };
  mutable std::mutex chunks_mu;
  mutable std::unordered_map<uint32_t, std::shared_ptr<ChunkState>> chunk_states;

  Impl(Source s, const OpenOptions& o)
      : source(std::move(s)), options(o), cache(o.cache_bytes), frame_cache(o.frame_cache_bytes) {}

  const std::string& file() const { return source.name(); }

  Result<Member> at(uint32_t index) const;
  // Bytes [off, off + len) of the mmar index (member table then names),
  // checked to lie inside it by the caller.
  Result<const std::byte*> index_at(uint64_t off, uint64_t len) const {
    if (!lazy) return index.data() + off;
    if (framed_index && len > 0) {
      // Inside one frame (all entries, and names but those that cross a
      // frame's end): the frame, inflated once, found without a lock.
      const uint64_t k = off >> index_table.log2;
      if (((off + len - 1) >> index_table.log2) == k) {
        const std::byte* p = index_frames[k].load(std::memory_order_acquire);
        if (p != nullptr) return p + (off - (k << index_table.log2));
        // A fence run read whole (without a mapping: one read) holds it.
        if (const std::byte* q = lazy_index.find(off, len)) return q;
        MMAR_ASSIGN(p, load_index_frame(static_cast<uint32_t>(k)));
        return p + (off - (k << index_table.log2));
      }
    }
    return lazy_index.get(fetch_index, index_bytes, off, len);
  }
  // Where messages say an entry is: its file offset, or for a compressed
  // index the index's own (the entry is inflated bytes, not the file's).
  uint64_t entry_file_offset(uint64_t eoff) const { return sb.sb_index_offset + (framed_index ? 0 : eoff); }
  // Frame k of a compressed index, inflated and kept (index_frames[k]).
  Result<const std::byte*> load_index_frame(uint32_t k) const;
  mutable std::unique_ptr<std::atomic<const std::byte*>[]> index_frames;  // one per frame of a compressed index
  mutable std::mutex index_frames_mu;
  mutable std::vector<Bytes> index_frames_kept;
  // Frame k of a stream at file offset `offset` whose first bytes are
  // `head`: its place and stored bytes (table parts and bytes beyond the
  // head read from the source).
  // With `read` false, bytes beyond the head are left empty (the caller
  // reads several frames at once).
  Result<std::pair<frames::Frame, Bytes>> stored_frame(uint64_t offset, const Bytes& head, const frames::Table& t,
                                                       uint32_t k, const std::string& what,
                                                       bool read = true) const;
  // Bytes [begin, end) of a compressed index, frame by frame (each checked).
  Result<Bytes> inflate_index(uint64_t begin, uint64_t end) const;
  Result<uint32_t> lower_bound(std::string_view name) const;
  Result<std::string_view> name_at(uint32_t index) const;
  // The attribute record after entry `e`'s name (kFlagAttrs), bounded by the
  // name table: the size word read first, then the record.
  Result<std::span<const std::byte>> attr_record(const format::Entry& e) const;
  Result<Member> mmar_entry(uint32_t index) const;
  Result<Member> ctf_entry(uint32_t index) const;
  Result<Bytes> read(const Member& m, bool verify) const;
  Result<Bytes> read_extents(const Member& m, bool verify) const;
  Result<void> check_raw(const Member& m, std::span<const std::byte> bytes) const;
  Result<std::shared_ptr<ChunkState>> chunk_state(const Member& m) const;
  // Bytes [offset, offset + n) of a raw member with chunk checksums: the
  // chunks they touch checked, each at most once per Archive.
  Result<void> check_chunks(const Member& m, uint64_t offset, uint64_t n) const;
  // Every chunk against its sum, none remembered (verify).
  Result<void> check_all_chunks(const Member& m) const;
  Result<void> check_extents(const Member& m, const std::vector<format::Extent>& extents) const;
  Result<void> check_once(const Member& m, const std::function<Result<uint64_t>()>& hash) const;
  Result<std::vector<format::Extent>> extent_map(const Member& m) const;
  // Frame streams: the member's checked table, and frame k inflated
  // (cached; its stored bytes' XXH3 checked unless `verify` is off).
  Result<frames::Table> frame_table(const Member& m) const;
  // The first bytes of a frame stream: all of it when mapped or at most
  // 256 KiB (a pack); else its table and up to 64 KiB. Kept per stream.
  Result<Bytes> stream_head(const Member& m) const;
  mutable LruBytes<uint64_t> heads{uint64_t{32} << 20};  // by stream offset
  Result<Bytes> frame(const Member& m, const frames::Table& t, uint32_t k, bool verify) const;
  // Bytes [offset, offset + n) of a framed member (in range), frame by frame.
  Result<void> read_framed(const Member& m, uint64_t offset, size_t n, std::byte* out, bool verify) const;
  Result<Bytes> read_framed_whole(const Member& m, bool verify) const;
  // The member's bytes hashed as a stream (verify, MemberReader), with
  // memory independent of its size.
  Result<uint64_t> stream_hash(const Member& m) const;
  Result<void> read_range(const Member& m, uint64_t offset, size_t n, std::byte* to, bool verify) const;
  std::string what(const Member& m) const { return file() + ": member '" + std::string(m.name) + "'"; }
  Error checksum_error(const Member& m) const {
    return Error(
        Errc::checksum,
        file() + ": member '" + std::string(m.name) + "': checksum mismatch (at offset " + hex(m.data_offset) + ")",
        m.data_offset);
  }
};

// ---------------------------------------------------------------------------
// Opening

namespace {

bool superblock_valid(const format::Superblock& sb) {
  if (std::memcmp(sb.sb_magic, format::kMagic, sizeof format::kMagic) != 0) return false;
  return XXH3_64bits(&sb, offsetof(format::Superblock, sb_xxh3)) == sb.sb_xxh3;
}

}  // namespace

Result<SuperblockChoice> choose_superblock(const std::string& file, const std::byte* head, uint64_t file_size) {
  auto s0 = load<format::Superblock>(head);
  auto s1 = load<format::Superblock>(head + format::kSuperblockSize);
  bool v0 = superblock_valid(s0);
  bool v1 = superblock_valid(s1);
  if (!v0 && !v1) return malformed(file, 0, "both superblocks fail their checksum");
  SuperblockChoice c;
  c.slot = (v1 && (!v0 || s1.sb_generation > s0.sb_generation)) ? 1 : 0;
  c.sb = c.slot == 1 ? s1 : s0;
  const uint64_t sb_off = c.slot * format::kSuperblockSize;
  const auto& sb = c.sb;

  if (sb.sb_version != format::kVersion) {
    return Error(Errc::unsupported, file + ": format version " + std::to_string(sb.sb_version.get()) +
                                        " (this mmar reads " + std::to_string(format::kVersion) + ")");
  }
  if (sb.sb_size != format::kSuperblockSize) {
    return malformed(file, sb_off + 10, "superblock size " + std::to_string(sb.sb_size.get()));
  }
  if ((sb.sb_flags & ~format::kKnownSbFlags) != 0) {
    return Error(Errc::unsupported, file + ": unknown superblock flags " + hex(sb.sb_flags));
  }
  if (sb.sb_align_log2 < format::kMinAlignLog2 || sb.sb_align_log2 > format::kMaxAlignLog2) {
    return malformed(file, sb_off + 44, "alignment 2^" + std::to_string(sb.sb_align_log2) + " out of range");
  }
  if (sb.sb_reserved[0] != 0 || sb.sb_reserved[1] != 0 || sb.sb_reserved[2] != 0) {
    return malformed(file, sb_off + 45, "reserved superblock bytes are not zero");
  }
  const uint64_t index_off = sb.sb_index_offset;
  const uint64_t index_size = sb.sb_index_size;
  auto table = checked_mul(sb.sb_member_count, format::kEntrySize);
  if (index_off < format::kHeaderAreaSize || index_off % 8 != 0 || !in_bounds(index_off, index_size, file_size)) {
    return malformed(file, sb_off + 24,
                     "index [" + hex(index_off) + ", +" + hex(index_size) + ") is not inside the file (" +
                         std::to_string(file_size) + " bytes)");
  }
  const bool delta = (sb.sb_flags & format::kSbFlagIndexDelta) != 0;
  const bool framed = (sb.sb_flags & format::kSbFlagIndexFramed) != 0;
  if (delta && framed) {
    // Deltas apply to plain member tables only (FORMAT.md "Compressed index").
    return malformed(file, sb_off + 12, "an index delta over a compressed index");
  }
  if ((sb.sb_flags & format::kSbFlagIndexPredicted) != 0 && !framed) {
    return malformed(file, sb_off + 12, "predicted offsets without a compressed index");
  }
  if (delta || framed) {
    // An index delta: its own header says how large it is (merge_delta_chain).
    // A compressed index: its frame table does (open_mmar).
    if (!table) return malformed(file, sb_off + 40, "member count overflows");
    c.names_size = 0;
    return c;
  }
  if (!table || *table > index_size) {
    return malformed(file, sb_off + 40,
                     std::to_string(sb.sb_member_count) + " members do not fit an index of " +
                         std::to_string(index_size) + " bytes");
  }
  c.names_size = index_size - *table;
  return c;
}

namespace {

// The index of an archive updated in place by deltas (docs/FORMAT.md,
// "Index deltas"): walk the chain back to its member table, checking each
// record's checksum (the depth strictly decreases, so the walk ends), then
// merge table and deltas into one member table in memory, laid out as a
// stored one, so every accessor works on it unchanged. Cost: the table and
// the deltas once, at open.
Result<void> merge_delta_chain(Archive::Impl& a) {
  const std::string& file = a.file();
  uint64_t off = a.sb.sb_index_offset;
  uint64_t size = a.sb.sb_index_size;
  uint64_t want = a.sb.sb_index_xxh3;
  std::vector<std::pair<Bytes, index_codec::DeltaView>> chain;  // newest first
  uint32_t base_count = 0;
  for (;;) {
    MMAR_ASSIGN(Bytes rec, a.source.read(off, size));
    if (XXH3_64bits(rec.data(), rec.size()) != want) {
      return Error(Errc::checksum, file + ": index delta checksum mismatch (at offset " + hex(off) + ")", off);
    }
    MMAR_ASSIGN(index_codec::DeltaView v, index_codec::parse_delta(rec.span(), file, off));
    const auto& h = v.header;
    if (!chain.empty() && h.dh_depth + 1 != chain.back().second.header.dh_depth) {
      return malformed(file, off + 40, "index delta chain depth does not decrease by one");
    }
    if (h.dh_prev_offset < format::kHeaderAreaSize || h.dh_prev_offset % 8 != 0 || h.dh_prev_offset >= off) {
      return malformed(file, off + 8, "previous index at " + hex(h.dh_prev_offset) + " does not precede its delta");
    }
    if (!in_bounds(h.dh_prev_offset, h.dh_prev_size, off)) {
      return malformed(file, off + 16, "previous index overlaps its delta");
    }
    off = h.dh_prev_offset;
    size = h.dh_prev_size;
    want = h.dh_prev_xxh3;
    base_count = h.dh_prev_count;
    const bool more = (h.dh_flags & format::kDeltaPrevIsDelta) != 0;
    chain.emplace_back(std::move(rec), v);
    if (!more) break;
  }
  // The member table at the bottom of the chain.
  MMAR_ASSIGN(Bytes table, a.source.read(off, size));
  if (XXH3_64bits(table.data(), table.size()) != want) {
    return Error(Errc::checksum, file + ": index checksum mismatch (at offset " + hex(off) + ")", off);
  }
  auto table_bytes = checked_mul(base_count, format::kEntrySize);
  if (!table_bytes || *table_bytes > table.size()) {
    return malformed(file, off, std::to_string(base_count) + " members do not fit an index of " +
                                    std::to_string(table.size()) + " bytes");
  }
  const uint64_t names_size = table.size() - *table_bytes;
  auto table_name = [&](uint32_t i, format::Entry& e, std::string_view& attrs) -> Result<std::string_view> {
    e = load<format::Entry>(table.data() + uint64_t{i} * format::kEntrySize);
    const uint64_t eoff = off + uint64_t{i} * format::kEntrySize;
    if (e.me_name_len == 0 || !in_bounds(e.me_name_offset, e.me_name_len, names_size)) {
      return member_malformed(file, i, eoff + 40, "name outside the name table");
    }
    const char* names = reinterpret_cast<const char*>(table.data()) + *table_bytes;
    attrs = {};
    if ((e.me_flags & format::kFlagAttrs) != 0) {  // carried into the merged index, checked as it is
      const uint64_t at = uint64_t{e.me_name_offset} + e.me_name_len;
      auto d = attrs::parse(std::span<const std::byte>(reinterpret_cast<const std::byte*>(names) + at, names_size - at),
                            e.me_mode);
      if (!d.ok()) return member_malformed(file, i, eoff + 58, d.error().message());
      attrs = std::string_view(names + at, d->record.size());
    }
    return std::string_view(names + e.me_name_offset, e.me_name_len);
  };
  // The deltas, newest last, as one sorted overlay: entries and their
  // attribute records (which view the delta records, alive until the end).
  struct Overlaid {
    format::Entry e;
    std::string_view attrs;
  };
  std::map<std::string_view, Overlaid> overlay;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    const auto& v = it->second;
    for (uint32_t i = 0; i < v.header.dh_count; ++i) {
      format::Entry e = v.entry(i);
      overlay[v.name(e)] = Overlaid{e, v.attrs(e)};
    }
  }
  index_codec::IndexBuilder out;
  std::vector<std::string_view> out_names;
  std::vector<std::pair<uint32_t, uint32_t>> links;  // (new position, old target index)
  auto emit = [&](std::string_view name, const format::Entry& e, std::string_view attrs) {
    out.add(name, e, attrs);
    out_names.push_back(name);
  };
  auto ov = overlay.begin();
  for (uint32_t i = 0; i < base_count; ++i) {
    format::Entry e;
    std::string_view attrs;
    MMAR_ASSIGN(std::string_view name, table_name(i, e, attrs));
    for (; ov != overlay.end() && ov->first < name; ++ov) {
      if (!index_codec::is_tombstone(ov->second.e)) emit(ov->first, ov->second.e, ov->second.attrs);
    }
    if (ov != overlay.end() && ov->first == name) {  // replaced or removed
      if (!index_codec::is_tombstone(ov->second.e)) emit(ov->first, ov->second.e, ov->second.attrs);
      ++ov;
      continue;
    }
    if (e.me_link != format::kNoLink) links.emplace_back(static_cast<uint32_t>(out.count()), e.me_link);
    emit(name, e, attrs);
  }
  for (; ov != overlay.end(); ++ov) {
    if (!index_codec::is_tombstone(ov->second.e)) emit(ov->first, ov->second.e, ov->second.attrs);
  }
  if (out.count() != a.sb.sb_member_count) {
    return malformed(file, a.sb_slot * format::kSuperblockSize + 40,
                     "the index deltas give " + std::to_string(out.count()) + " members, the superblock says " +
                         std::to_string(a.sb.sb_member_count));
  }
  // Links name members of the table: follow them to the same names; a link
  // whose target is gone is dropped (FORMAT.md, "Index deltas").
  for (auto [at, old_target] : links) {
    uint32_t target = format::kNoLink;  // gone: the link is dropped
    if (old_target < base_count) {
      format::Entry t;
      std::string_view unused_attrs;
      MMAR_ASSIGN(std::string_view name, table_name(old_target, t, unused_attrs));
      auto pos = std::lower_bound(out_names.begin(), out_names.end(), name);
      if (pos != out_names.end() && *pos == name) target = static_cast<uint32_t>(pos - out_names.begin());
    }
    out.entry(at).me_link = target;
  }
  std::vector<std::byte> merged = out.bytes();
  a.count = static_cast<uint32_t>(out.count());
  a.names_size = merged.size() - uint64_t{a.count} * format::kEntrySize;
  a.index = Bytes::from_vector(std::move(merged));
  a.delta_depth = chain.front().second.header.dh_depth;
  return success();
}

Result<void> open_mmar(Archive::Impl& a) {
  const uint64_t file_size = a.source.size();
  if (file_size < format::kHeaderAreaSize) {
    return malformed(a.file(), 0,
                     "truncated: " + std::to_string(file_size) + " bytes is smaller than the 128-byte header");
  }
  // Without a mapping, Archive::open read the first 4 KiB in one read (the
  // superblocks and the name fence after them).
  Bytes head;
  if (a.head_bytes.size() >= format::kHeaderAreaSize) {
    head = Bytes(std::span<const std::byte>(a.head_bytes.data(), format::kHeaderAreaSize), nullptr);
  } else {
    MMAR_ASSIGN(head, a.source.read(0, format::kHeaderAreaSize));
  }
  MMAR_ASSIGN(SuperblockChoice c, choose_superblock(a.file(), head.data(), file_size));
  a.sb_slot = c.slot;
  a.sb = c.sb;
  const auto& sb = a.sb;
  a.align = uint64_t{1} << sb.sb_align_log2;
  a.count = sb.sb_member_count;
  const uint64_t index_off = sb.sb_index_offset;
  const uint64_t index_size = sb.sb_index_size;
  a.names_size = c.names_size;
  if ((sb.sb_flags & format::kSbFlagIndexDelta) != 0) return merge_delta_chain(a);
  // The name fence, from the first bytes of the file (read at open without
  // a mapping; a view when mapped).
  auto load_fence = [&]() -> Result<void> {
    if (a.head_bytes.empty()) {
      MMAR_ASSIGN(Bytes first, a.source.read(0, std::min<uint64_t>(file_size, fence::kOffset + fence::kMaxBytes)));
      a.head_bytes.assign(first.data(), first.data() + first.size());
    }
    if (a.head_bytes.size() > fence::kOffset) {
      std::span<const std::byte> area(a.head_bytes.data() + fence::kOffset, a.head_bytes.size() - fence::kOffset);
      const uint32_t claimed = fence::View::claimed_size(area);
      if (claimed > area.size() && claimed <= 64 * 1024 && fence::kOffset + claimed <= file_size) {
        MMAR_ASSIGN(Bytes more, a.source.read(0, fence::kOffset + claimed));
        a.head_bytes.assign(more.data(), more.data() + more.size());
        area = std::span<const std::byte>(a.head_bytes.data() + fence::kOffset, claimed);
      }
      a.fence = fence::View::parse(area, sb, false);
    }
    return success();
  };
  if ((sb.sb_flags & format::kSbFlagIndexFramed) != 0) {
    // A compressed index is read lazily whether mapped or not: its first
    // 256 KiB in one read -- the table and, up to some 20,000 members, the
    // whole index, so a cold lookup is this read, the head's and the
    // member's --, then the frames a lookup needs through the fence.
    // Nothing is inflated at open.
    a.framed_index = true;
    const std::string what = a.file() + ": index";
    MMAR_ASSIGN(a.index_head, a.source.read(index_off, std::min<uint64_t>(index_size, uint64_t{256} << 10)));
    MMAR_ASSIGN(a.index_table, frames::parse_header(a.index_head.span(), index_size, what, index_off));
    const frames::Table& t = a.index_table;
    if (t.version != 2 || t.log2 != format::kIndexFrameLog2) {
      return malformed(a.file(), index_off, "a compressed index must have a v2 table of 64 KiB frames");
    }
    if (t.size / format::kMaxIndexRatio > index_size) {
      return malformed(a.file(), index_off + 8,
                       "a compressed index of " + std::to_string(index_size) + " bytes claims " +
                           std::to_string(t.size) + " (at most " + std::to_string(format::kMaxIndexRatio) +
                           " times as many)");
    }
    const uint64_t table = uint64_t{a.count} * format::kEntrySize;  // count < 2^32: no overflow
    if (table > t.size) {
      return malformed(a.file(), a.sb_slot * format::kSuperblockSize + 40,
                       std::to_string(a.count) + " members do not fit an index of " + std::to_string(t.size) +
                           " bytes");
    }
    a.index_bytes = t.size;
    a.names_size = t.size - table;
    // A pointer per frame (parse_header checked the table, 8 bytes a
    // frame, fits in the stored index: the count is bounded by the file).
    a.index_frames = std::make_unique<std::atomic<const std::byte*>[]>(t.count);
    if (a.options.verify_index) {
      MMAR_ASSIGN(Bytes stored, a.source.read(index_off, index_size));
      if (XXH3_64bits(stored.data(), stored.size()) != sb.sb_index_xxh3) {
        return Error(Errc::checksum, a.file() + ": index checksum mismatch", index_off);
      }
    }
    a.lazy = true;
    a.fetch_index = [&a](uint64_t begin, uint64_t end) { return a.inflate_index(begin, end); };
    return load_fence();
  }
  a.index_bytes = index_size;
  if (!a.source.contiguous() && !a.options.verify_index) {
    // Not mapped: nothing more is read at open. The fence in the first
    // 4 KiB (already read) narrows each lookup to one run of entries; its
    // checksum is left to verify(), since lookups prove every answer from
    // the entries around the run.
    a.lazy = true;
    a.fetch_index = [&a, index_off](uint64_t begin, uint64_t end) {
      return a.source.read(index_off + begin, end - begin);
    };
    return load_fence();
  }
  // A view when mapped; in pread mode (when asked to check the index at
  // open) the whole index is read.
  MMAR_ASSIGN(a.index, a.source.read(index_off, index_size));
  if (a.options.verify_index && XXH3_64bits(a.index.data(), a.index.size()) != sb.sb_index_xxh3) {
    return Error(Errc::checksum, a.file() + ": index checksum mismatch", index_off);
  }
  return success();
}

Result<void> open_ctf(Archive::Impl& a) {
  const uint64_t file_size = a.source.size();
  if (file_size < sizeof(ctfa::Header)) {
    return malformed(a.file(), 0, "truncated CTF archive header");
  }
  auto h = load<ctfa::Header>(a.source.all().data());
  uint64_t n = h.ctfa_ndicts;
  auto modents = checked_mul(n, sizeof(ctfa::Modent));
  if (!modents || !in_bounds(sizeof(ctfa::Header), *modents, file_size) || n > 0xffffffffu) {
    return malformed(a.file(), 16, "CTF archive claims " + std::to_string(n) + " dicts");
  }
  if (h.ctfa_names > file_size) return malformed(a.file(), 24, "CTF name table outside the file");
  if (h.ctfa_ctfs > file_size) return malformed(a.file(), 32, "CTF dict table outside the file");
  a.count = static_cast<uint32_t>(n);
  a.ctf_names = h.ctfa_names;
  a.ctf_model = h.ctfa_model;
  a.ctf_ctfs = h.ctfa_ctfs;
  a.index = Bytes(a.source.all().subspan(sizeof(ctfa::Header), *modents), nullptr);
  return success();
}

}  // namespace

Result<Archive> Archive::open(const std::string& path, const OpenOptions& options) {
  SourceOptions so;
  so.force_pread = options.force_pread;
  MMAR_ASSIGN(Source source, Source::open(path, so));
  return open(std::move(source), options);
}

Result<Archive> Archive::open(Source source, const OpenOptions& options) {
  auto impl = std::make_shared<Impl>(std::move(source), options);
  Impl& a = *impl;
  const uint64_t size = a.source.size();
  unsigned char magic[8] = {};
  bool slot1_magic = false;  // slot 0's magic may be the damaged part
  if (!a.source.contiguous()) {
    // One read: the superblocks, and the name fence after them (what a
    // lookup without a mapping starts from).
    MMAR_ASSIGN(Bytes first, a.source.read(0, std::min<uint64_t>(size, fence::kOffset + fence::kMaxBytes)));
    a.head_bytes.assign(first.data(), first.data() + first.size());
  }
  auto from_head = [&](uint64_t off, uint64_t n) -> Result<Bytes> {
    if (off + n <= a.head_bytes.size()) return Bytes(std::span<const std::byte>(a.head_bytes.data() + off, n), nullptr);
    return a.source.read(off, n);
  };
  if (size >= 8) {
    MMAR_ASSIGN(Bytes head, from_head(0, 8));
    std::memcpy(magic, head.data(), 8);
  }
  if (size >= format::kHeaderAreaSize) {
    MMAR_ASSIGN(Bytes second, from_head(format::kSuperblockSize, 8));
    slot1_magic = std::memcmp(second.data(), format::kMagic, 8) == 0;
  }
  if ((size >= 8 && std::memcmp(magic, format::kMagic, 8) == 0) || slot1_magic) {
    a.format = Format::mmar;
    MMAR_TRY(open_mmar(a));
  } else if (size >= 8 && read_int<uint64_t>(magic, true) == ctfa::kMagic) {
    a.format = Format::ctf;
    if (!a.source.contiguous()) {
      // CTF archives are small and their names are NUL-terminated strings:
      // read the whole file rather than pread each name.
      MMAR_ASSIGN(Bytes all, a.source.read(0, size));
      std::vector<std::byte> copy(all.data(), all.data() + all.size());
      a.source = Source::take(std::move(copy), a.source.name());
    }
    MMAR_TRY(open_ctf(a));
  } else {
    // Neither an mmar nor a CTF archive: another archive format is named
    // (a tar given to `mmar list` is a user's mistake, not a one-member
    // archive); a recognised object (ELF, BTF, CTF) opens as a one-member
    // archive, and any other file only when the caller asks for that.
    MMAR_ASSIGN(Bytes head, from_head(0, std::min<uint64_t>(size, 4096)));
    std::optional<Bytes> iso;
    if (size >= kIsoMagicOffset + 5) {
      MMAR_ASSIGN(Bytes b, a.source.read(kIsoMagicOffset, 5));
      iso = std::move(b);
    }
    const char* foreign =
        options.plain_data ? nullptr : foreign_format_of(head.span(), iso ? iso->span() : std::span<const std::byte>{});
    if (foreign != nullptr) {
      const std::string& file = a.source.name();
      return Error(Errc::unsupported,
                   file + ": " + foreign + ", not an mmar archive (" + conversion_hint(foreign, file) + ")", 0);
    }
    const Detected kind = detect_kind(head.span());
    if (kind.kind == Kind::data && !options.plain_data) {
      return Error(Errc::unsupported,
                   a.source.name() + ": " + (size == 0 ? std::string("an empty file") : std::string("not an archive")) +
                       " (no mmar or CTF archive header) nor an ELF, BTF or CTF object",
                   0);
    }
    a.format = Format::plain;
    a.count = 1;
    std::string_view path = a.source.name();
    size_t slash = path.find_last_of('/');
    a.plain_name = std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
    if (auto norm = normalize_member_name(a.plain_name); norm.ok()) {
      a.plain_name = *norm;
    } else {
      a.plain_name = "member";
    }
    if (a.source.contiguous()) {
      a.plain_kind = detect_kind(a.source.all());
    } else {
      a.plain_kind = kind;
      a.plain_kind.has_btf = false;  // section headers not read in pread mode
    }
    struct stat st {};
    if (a.source.fd() >= 0 && fstat(a.source.fd(), &st) == 0 && S_ISREG(st.st_mode)) {
      a.plain_mode = S_IFREG | (st.st_mode & 07777);
      a.plain_mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    }
  }
  return Archive(std::move(impl));
}

Format Archive::format() const { return impl_->format; }
const Source& Archive::source() const { return impl_->source; }
const std::string& Archive::name() const { return impl_->source.name(); }
uint32_t Archive::size() const { return impl_->count; }
uint64_t Archive::alignment() const { return impl_->align; }
uint64_t Archive::ctf_model() const { return impl_->ctf_model; }
bool Archive::has_name_fence() const { return impl_->lazy && impl_->fence.has_value(); }
uint64_t Archive::generation() const { return impl_->format == Format::mmar ? impl_->sb.sb_generation.get() : 0; }

// ---------------------------------------------------------------------------
// Entries

Result<std::string_view> Archive::Impl::name_at(uint32_t i) const {
  if (format == Format::plain) return std::string_view(plain_name);
  if (format == Format::ctf) {
    auto mod = load<ctfa::Modent>(index.data() + uint64_t{i} * sizeof(ctfa::Modent));
    auto off = checked_add(ctf_names, mod.name_offset);
    const uint64_t size = source.size();
    if (!off || *off >= size) {
      return member_malformed(file(), i, sizeof(ctfa::Header) + i * 16, "name offset outside the file");
    }
    const char* p = reinterpret_cast<const char*>(source.all().data()) + *off;
    const void* nul = std::memchr(p, 0, size - *off);
    if (nul == nullptr) return member_malformed(file(), i, *off, "unterminated name");
    return std::string_view(p, static_cast<const char*>(nul) - p);
  }
  const uint64_t eoff = uint64_t{i} * format::kEntrySize;
  MMAR_ASSIGN(const std::byte* ep, index_at(eoff, format::kEntrySize));
  auto e = load<format::Entry>(ep);
  const uint64_t names_start = uint64_t{count} * format::kEntrySize;
  if (e.me_name_len == 0 || e.me_name_len > kMaxNameLength ||
      !in_bounds(e.me_name_offset, e.me_name_len, names_size)) {
    return member_malformed(file(), i, entry_file_offset(eoff) + (framed_index ? 0 : 40),
                            "name [" + std::to_string(e.me_name_offset.get()) + ", +" +
                                std::to_string(e.me_name_len.get()) + ") outside the name table (" +
                                std::to_string(names_size) + " bytes)");
  }
  MMAR_ASSIGN(const std::byte* np, index_at(names_start + e.me_name_offset, e.me_name_len));
  return std::string_view(reinterpret_cast<const char*>(np), e.me_name_len);
}

Result<std::span<const std::byte>> Archive::Impl::attr_record(const format::Entry& e) const {
  if ((e.me_flags & format::kFlagAttrs) == 0) return std::span<const std::byte>();
  const uint64_t names_start = uint64_t{count} * format::kEntrySize;
  const uint64_t at = uint64_t{e.me_name_offset} + e.me_name_len;  // name bounds checked by name_at
  if (!in_bounds(at, 4, names_size)) return std::span<const std::byte>(static_cast<const std::byte*>(nullptr), 0);
  MMAR_ASSIGN(const std::byte* sp, index_at(names_start + at, 4));
  // A record is at most 4 + kMaxAttrSize bytes (attrs::parse refuses a
  // larger size word): no more is read, or inflated, for it.
  const uint64_t size = std::min<uint64_t>({uint64_t{4} + read_int<uint32_t>(sp, true), names_size - at,
                                            uint64_t{4} + format::kMaxAttrSize});
  MMAR_ASSIGN(const std::byte* rp, index_at(names_start + at, size));
  return std::span<const std::byte>(rp, size);
}

Result<Member> Archive::Impl::mmar_entry(uint32_t i) const {
  const uint64_t eoff = uint64_t{i} * format::kEntrySize;
  MMAR_ASSIGN(const std::byte* ep, index_at(eoff, format::kEntrySize));
  auto e = load<format::Entry>(ep);
  MMAR_ASSIGN(std::string_view name, name_at(i));
  MMAR_ASSIGN(std::span<const std::byte> attr_bytes, attr_record(e));
  EntryContext ctx{file(), count, source.size(), align, entry_file_offset(eoff), !framed_index};
  return decode_entry(e, i, name, ctx, attr_bytes);
}

Result<Member> decode_entry(const format::Entry& e, uint32_t i, std::string_view name, const EntryContext& ctx,
                            std::span<const std::byte> attr_bytes) {
  const uint64_t abs = ctx.entry_offset;
  auto at = [&](uint64_t field) { return ctx.exact ? abs + field : abs; };
  const std::string& file = ctx.file;
  const uint32_t count = ctx.count;
  const uint64_t align = ctx.align;
  if (const char* why = name_problem(name)) return member_malformed(file, i, at(40), why);
  Member m;
  m.index = i;
  m.name = name;
  m.data_offset = e.me_data_offset;
  m.stored_size = e.me_stored_size;
  m.size = e.me_size;
  m.xxh3 = e.me_xxh3;
  m.mtime_ns = static_cast<int64_t>(e.me_mtime_ns.get());
  m.mode = e.me_mode;
  if (e.me_codec > static_cast<uint8_t>(format::EntryCodec::extents)) {
    return member_malformed(file, i, at(56), "unknown codec " + std::to_string(e.me_codec));
  }
  m.codec = static_cast<Codec>(e.me_codec);
  if (e.me_kind > static_cast<uint8_t>(Kind::btf_index)) {
    return member_malformed(file, i, at(57), "unknown kind " + std::to_string(e.me_kind));
  }
  m.kind = static_cast<Kind>(e.me_kind);
  const uint16_t flags = e.me_flags;
  if ((flags & ~format::kKnownFlags) != 0) return member_malformed(file, i, at(58), "unknown flags " + hex(flags));
  m.page_aligned = (flags & format::kFlagPageAligned) != 0;
  m.has_btf = (flags & format::kFlagHasBtf) != 0;
  m.framed = (flags & format::kFlagFramed) != 0;
  m.chunk_sums = (flags & format::kFlagChunkSums) != 0;
  m.stream_offset = e.me_stream_offset;
  if (!m.framed && m.stream_offset != 0) return member_malformed(file, i, at(60), "stream offset without a frame stream");
  if (m.framed) {
    // The stream's own table is checked when it is read (frames.cpp); here
    // what the entry alone can tell.
    if (m.codec != Codec::zstd && m.codec != Codec::xz) {
      return member_malformed(file, i, at(56), "a frame stream with codec " + std::to_string(e.me_codec));
    }
    if ((m.mode & S_IFMT) != S_IFREG || m.size == 0 || m.page_aligned) {
      return member_malformed(file, i, at(58), "a frame stream for an empty, aligned or non-regular member");
    }
    if (m.stored_size < frames::table_bytes(3, 1, true) + 1) {  // the smallest stream: v3, one frame of one byte
      return member_malformed(file, i, at(8), "a frame stream of " + std::to_string(m.stored_size) + " bytes");
    }
  }
  if (m.chunk_sums) {
    // The table itself is checked when it is read; here what the entry
    // alone can tell: a raw regular file, and room for a header and two
    // sums between the header area and the data.
    if (m.codec != Codec::none || (m.mode & S_IFMT) != S_IFREG || m.framed || m.size == 0) {
      return member_malformed(file, i, at(58), "chunk checksums for a member that is not a raw regular file");
    }
    if (m.data_offset < format::kHeaderAreaSize + sizeof(format::ChunkSumsHeader) + 2 * sizeof(uint64_t)) {
      return member_malformed(file, i, abs, "no room for chunk checksums before data offset " + hex(m.data_offset));
    }
  }
  if (e.me_link != format::kNoLink) {
    if (e.me_link >= count || e.me_link == i) {
      return member_malformed(file, i, at(52), "link to member " + std::to_string(e.me_link.get()));
    }
    m.link = e.me_link;
  }
  const uint32_t type = m.mode & S_IFMT;
  const bool special = type == S_IFCHR || type == S_IFBLK || type == S_IFIFO || type == S_IFSOCK;
  if (type != S_IFREG && type != S_IFDIR && type != S_IFLNK && !special) {
    return member_malformed(file, i, at(48), "unsupported file type in mode " + hex(m.mode));
  }
  if ((m.mode & ~(S_IFMT | 07777u)) != 0) return member_malformed(file, i, at(48), "unknown mode bits " + hex(m.mode));
  if (special && (m.size != 0 || m.stored_size != 0 || m.codec != Codec::none || m.kind != Kind::data ||
                  (flags & ~format::kFlagAttrs) != 0 || m.link)) {
    return member_malformed(file, i, at(48), "a device, FIFO or socket with data");
  }
  if ((flags & format::kFlagAttrs) != 0) {
    auto d = attrs::parse(attr_bytes, m.mode);
    if (!d.ok()) {
      return member_malformed(file, i, at(58), d.error().message() + " (after the name at name table offset " +
                                                     std::to_string(e.me_name_offset.get() + e.me_name_len.get()) + ")");
    }
    m.has_owner = d->has_owner;
    m.uid = d->uid;
    m.gid = d->gid;
    m.rdev_major = d->rdev_major;
    m.rdev_minor = d->rdev_minor;
    m.link_id = d->link_id;
    m.attr_bytes = d->record;
  }
  if (m.codec == Codec::none && m.stored_size != m.size) {
    return member_malformed(
        file, i, at(8),
        "raw member with stored size " + std::to_string(m.stored_size) + " != size " + std::to_string(m.size));
  }
  if (m.codec == Codec::extents && type != S_IFREG) {
    return member_malformed(file, i, at(56), "an extent map for a member that is not a regular file");
  }
  if (m.codec == Codec::extents && m.size > ctx.file_size) {
    // Its data lies in this file: a member larger than the file would be
    // mostly holes, which updates never write (FORMAT.md, "Extent maps").
    return member_malformed(file, i, at(16),
                            "extent-mapped member of " + std::to_string(m.size) + " bytes in a file of " +
                                std::to_string(ctx.file_size));
  }
  if (type == S_IFDIR && (m.size != 0 || m.stored_size != 0)) {
    return member_malformed(file, i, at(16), "directory with data");
  }
  if (m.codec != Codec::none && m.stored_size == 0) {
    return member_malformed(file, i, at(8), "compressed member with no stored bytes");
  }
  if (m.stored_size != 0 &&
      (m.data_offset < format::kHeaderAreaSize || !in_bounds(m.data_offset, m.stored_size, ctx.file_size))) {
    return member_malformed(file, i, abs,
                            "data [" + hex(m.data_offset) + ", +" + hex(m.stored_size) + ") is not inside the file (" +
                                std::to_string(ctx.file_size) + " bytes)");
  }
  if (m.page_aligned && m.data_offset % align != 0) {
    return member_malformed(file, i, abs, "data offset " + hex(m.data_offset) + " is flagged aligned but is not");
  }
  return m;
}

Result<Member> Archive::Impl::ctf_entry(uint32_t i) const {
  auto mod = load<ctfa::Modent>(index.data() + uint64_t{i} * sizeof(ctfa::Modent));
  MMAR_ASSIGN(std::string_view name, name_at(i));
  const uint64_t mod_off = sizeof(ctfa::Header) + uint64_t{i} * sizeof(ctfa::Modent);
  if (name.empty()) return member_malformed(file(), i, mod_off, "empty name");
  auto size_off = checked_add(ctf_ctfs, mod.ctf_offset);
  if (!size_off || !in_bounds(*size_off, 8, source.size())) {
    return member_malformed(file(), i, mod_off + 8, "dict offset outside the file");
  }
  uint64_t size = read_int<uint64_t>(source.all().data() + *size_off, true);
  if (!in_bounds(*size_off + 8, size, source.size())) {
    return member_malformed(file(), i, *size_off,
                            "dict of " + std::to_string(size) + " bytes runs past the end of the file");
  }
  // libctf records each dict somewhat longer than the dict (by 8 bytes as
  // ctf_arc_write does it): bound an uncompressed CTF v3 dict by its own
  // header, which ends it at the end of its string section, 52 + cth_stroff
  // + cth_strlen. A compressed, older or foreign-endian dict keeps the size
  // word. A header claiming more than the size word is malformed.
  const std::byte* dict = source.all().data() + *size_off + 8;
  constexpr uint64_t kCtfV3HeaderSize = 52;
  if (size >= kCtfV3HeaderSize && read_int<uint16_t>(dict, true) == 0xdff2 &&
      std::to_integer<uint8_t>(dict[2]) == 4 /* CTF_VERSION_3 */ &&
      (std::to_integer<uint8_t>(dict[3]) & 0x1 /* CTF_F_COMPRESS */) == 0) {
    const uint64_t stroff = read_int<uint32_t>(dict + 44, true);
    const uint64_t strlen = read_int<uint32_t>(dict + 48, true);
    const uint64_t end = kCtfV3HeaderSize + stroff + strlen;  // no overflow: each term < 2^33
    if (end > size) {
      return member_malformed(file(), i, *size_off + 8,
                              "CTF dict header ends its strings at " + std::to_string(end) + " bytes, past its " +
                                  std::to_string(size) + "-byte record");
    }
    size = end;
  }
  Member m;
  m.index = i;
  m.name = name;
  m.data_offset = *size_off + 8;
  m.stored_size = m.size = size;
  m.mode = 0100644;
  m.kind = Kind::ctf;
  m.has_checksum = false;
  return m;
}

Result<Member> Archive::Impl::at(uint32_t i) const {
  if (i >= count) {
    return Error(Errc::invalid_argument, file() + ": member index " + std::to_string(i) + " out of range (" +
                                             std::to_string(count) + " members)");
  }
  switch (format) {
    case Format::mmar: return mmar_entry(i);
    case Format::ctf: return ctf_entry(i);
    case Format::plain: {
      Member m;
      m.name = plain_name;
      m.size = m.stored_size = source.size();
      m.mode = plain_mode;
      m.mtime_ns = plain_mtime;
      m.kind = plain_kind.kind;
      m.has_btf = plain_kind.has_btf;
      m.has_checksum = false;
      m.page_aligned = true;
      return m;
    }
  }
  return Error(Errc::invalid_argument, "bad format");
}

Result<Member> Archive::at(uint32_t index) const { return impl_->at(index); }

Result<Member> Archive::find(std::string_view name) const {
  const Impl& a = *impl_;
  MMAR_ASSIGN(uint32_t i, lower_bound(name));
  if (i < a.count) {
    MMAR_ASSIGN(std::string_view probe, a.name_at(i));
    if (probe == name) return a.at(i);
  }
  return Error(Errc::not_found, a.file() + ": no member named '" + std::string(name) + "'");
}

Result<uint32_t> Archive::lower_bound(std::string_view name) const { return impl_->lower_bound(name); }

Result<uint32_t> Archive::Impl::lower_bound(std::string_view name) const {
  auto search = [&](uint32_t lo, uint32_t hi) -> Result<uint32_t> {
    while (lo < hi) {
      const uint32_t mid = lo + (hi - lo) / 2;
      MMAR_ASSIGN(std::string_view probe, name_at(mid));
      if (probe.compare(name) < 0) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  };
  if (lazy && fence && count > 0 && fence->stride() <= 4096) {
    // The fence's run, with one entry either side (to prove absence): its
    // entries in one read, then their names in one read. Mapped, a
    // compressed index reads nothing: the search inflates the frames it
    // touches, not the whole run.
    auto [lo, hi] = fence->run(name);
    if (!source.contiguous()) {
      const uint32_t first = lo > 0 ? lo - 1 : 0;
      const uint32_t last = static_cast<uint32_t>(std::min<uint64_t>(uint64_t{hi} + 1, count));
      const uint64_t ebegin = uint64_t{first} * format::kEntrySize, eend = uint64_t{last} * format::kEntrySize;
      MMAR_TRY(lazy_index.prefetch(fetch_index, ebegin, eend));
      // Their names: a writer stores them in member order, so the first and
      // last entries' bracket them all (only a hint: a name outside it is
      // read when asked for).
      MMAR_ASSIGN(const std::byte* run, index_at(ebegin, eend - ebegin));
      uint64_t nlo = ~uint64_t{0}, nhi = 0;
      for (uint32_t i : {first, last - 1}) {
        auto e = load<format::Entry>(run + uint64_t{i - first} * format::kEntrySize);
        if (e.me_name_len == 0 || !in_bounds(e.me_name_offset, e.me_name_len, names_size)) continue;  // name_at reports
        nlo = std::min<uint64_t>(nlo, e.me_name_offset);
        nhi = std::max<uint64_t>(nhi, uint64_t{e.me_name_offset} + e.me_name_len);
      }
      const uint64_t names_start = uint64_t{count} * format::kEntrySize;
      if (nlo < nhi && nhi - nlo <= (uint64_t{1} << 20)) {
        MMAR_TRY(lazy_index.prefetch(fetch_index, names_start + nlo, names_start + nhi));
      }
    }
    MMAR_ASSIGN(uint32_t at, search(lo, hi));
    // The answer stands if the run's neighbours bracket it: the entry
    // before the run is less than `name`, and the answer's entry (or the
    // one after the run) is not. Otherwise the fence is wrong (it passed no
    // checksum): search without it.
    bool below = lo == 0;
    if (!below) {
      MMAR_ASSIGN(std::string_view n, name_at(lo - 1));
      below = n < name;
    }
    bool above = at < hi || hi == count;
    if (!above) {
      MMAR_ASSIGN(std::string_view n, name_at(hi));
      above = !(n < name);
    }
    if (below && above) return at;
  }
  return search(0, count);
}

// ---------------------------------------------------------------------------
// Reading

// A raw member's bytes against its XXH3, hashed at most once per Archive:
// later reads of the member (every FUSE read of a mounted file) cost one
// atomic load. Two threads may both hash a member the first time; both find
// the same outcome.
Result<void> Archive::Impl::check_raw(const Member& m, std::span<const std::byte> bytes) const {
  return check_once(m, [&]() -> Result<uint64_t> {
    // A large member of a mapped archive is hashed through pread: faulting
    // in every page of the mapping just to hash it costs more than the copy
    // where page faults are slow (measured: a mount's first read of a 256
    // MiB member), and the reads that follow populate the pages they need.
    if (source.mapped() && source.fd() >= 0 && bytes.size() >= (size_t{1} << 20)) {
      XXH3_state_t state;
      XXH3_64bits_reset(&state);
      std::vector<char> buf(size_t{1} << 20);
      uint64_t done = 0;
      while (done < bytes.size()) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), bytes.size() - done));
        if (!pread_full(source.fd(), buf.data(), n, m.data_offset + done)) break;
        XXH3_64bits_update(&state, buf.data(), n);
        done += n;
      }
      if (done == bytes.size()) return XXH3_64bits_digest(&state);
    }
    return XXH3_64bits(bytes.data(), bytes.size());
  });
}

// An extent-mapped member's XXH3, streamed over its extents and holes
// (nothing assembled), once per Archive.
Result<void> Archive::Impl::check_extents(const Member& m, const std::vector<format::Extent>& extents) const {
  return check_once(m, [&]() -> Result<uint64_t> {
    XXH3_state_t state;
    XXH3_64bits_reset(&state);
    static const std::vector<std::byte> zeros(1 << 16);
    uint64_t at = 0;
    auto hash_zeros = [&](uint64_t n) {
      for (; n > 0; n -= std::min<uint64_t>(n, zeros.size())) {
        XXH3_64bits_update(&state, zeros.data(), static_cast<size_t>(std::min<uint64_t>(n, zeros.size())));
      }
    };
    for (const auto& x : extents) {
      hash_zeros(x.ex_logical - at);
      for (uint64_t done = 0; done < x.ex_length;) {
        const uint64_t n = std::min<uint64_t>(x.ex_length - done, uint64_t{1} << 20);
        MMAR_ASSIGN(Bytes piece, source.read(x.ex_physical + done, n));
        XXH3_64bits_update(&state, piece.data(), piece.size());
        done += n;
      }
      at = x.ex_logical + x.ex_length;
    }
    hash_zeros(m.size - at);
    return XXH3_64bits_digest(&state);
  });
}

Result<std::shared_ptr<Archive::Impl::ChunkState>> Archive::Impl::chunk_state(const Member& m) const {
  const bool ours = m.index < count;
  if (ours) {
    std::lock_guard lock(chunks_mu);
    auto it = chunk_states.find(m.index);
    if (it != chunk_states.end()) return it->second;
  }
  MMAR_ASSIGN(Bytes head, source.read(m.data_offset - sizeof(format::ChunkSumsHeader), sizeof(format::ChunkSumsHeader)));
  MMAR_ASSIGN(chunks::Table t, chunks::parse_header(head.span(), m.size, m.data_offset, what(m)));
  auto st = std::make_shared<ChunkState>();
  st->table = t;
  st->good.reset(new std::atomic<uint64_t>[(size_t{t.count} + 63) / 64]());
  if (ours) {
    std::lock_guard lock(chunks_mu);
    return chunk_states.emplace(m.index, st).first->second;  // a racing load's state wins: the same table
  }
  return st;
}

Result<void> Archive::Impl::check_chunks(const Member& m, uint64_t offset, uint64_t n) const {
  if (n == 0) return success();
  MMAR_ASSIGN(std::shared_ptr<ChunkState> st, chunk_state(m));
  const chunks::Table& t = st->table;
  const uint32_t first = static_cast<uint32_t>(offset >> t.log2);
  const uint32_t last = static_cast<uint32_t>((offset + n - 1) >> t.log2);
  auto is_good = [&](uint32_t k) { return (st->good[k / 64].load(std::memory_order_acquire) >> (k % 64)) & 1; };
  uint32_t k = first;
  while (k <= last && is_good(k)) ++k;
  if (k > last) return success();  // the common case: one atomic load
  // The sums of the chunks from the first unchecked one on, in one read.
  MMAR_ASSIGN(Bytes sums, source.read(t.sums_offset + uint64_t{k} * sizeof(uint64_t),
                                      (uint64_t{last} - k + 1) * sizeof(uint64_t)));
  const uint32_t sums_first = k;
  for (; k <= last; ++k) {
    if (is_good(k)) continue;
    const uint64_t begin = t.begin(k), length = t.length(k, m.size);
    MMAR_ASSIGN(Bytes bytes, source.read(m.data_offset + begin, length));
    if (XXH3_64bits(bytes.data(), bytes.size()) != chunks::sum_at(sums.span(), sums_first, k)) {
      return Error(Errc::checksum,
                   what(m) + ": checksum mismatch in bytes [" + std::to_string(begin) + ", +" + std::to_string(length) +
                       ") (chunk " + std::to_string(k) + ", at offset " + hex(m.data_offset + begin) + ")",
                   m.data_offset + begin);
    }
    st->good[k / 64].fetch_or(uint64_t{1} << (k % 64), std::memory_order_release);
  }
  return success();
}

Result<void> Archive::Impl::check_all_chunks(const Member& m) const {
  MMAR_ASSIGN(Bytes head, source.read(m.data_offset - sizeof(format::ChunkSumsHeader), sizeof(format::ChunkSumsHeader)));
  MMAR_ASSIGN(chunks::Table t, chunks::parse_header(head.span(), m.size, m.data_offset, what(m)));
  MMAR_ASSIGN(Bytes sums, source.read(t.sums_offset, uint64_t{t.count} * sizeof(uint64_t)));
  for (uint32_t k = 0; k < t.count; ++k) {
    const uint64_t begin = t.begin(k), length = t.length(k, m.size);
    MMAR_ASSIGN(Bytes bytes, source.read(m.data_offset + begin, length));
    if (XXH3_64bits(bytes.data(), bytes.size()) != chunks::sum_at(sums.span(), 0, k)) {
      return Error(Errc::checksum,
                   what(m) + ": checksum mismatch in bytes [" + std::to_string(begin) + ", +" + std::to_string(length) +
                       ") (chunk " + std::to_string(k) + ", at offset " + hex(m.data_offset + begin) + ")",
                   m.data_offset + begin);
    }
  }
  return success();
}

Result<void> Archive::Impl::check_once(const Member& m, const std::function<Result<uint64_t>()>& hash) const {
  if (m.index >= count) {  // not a member of ours: check, remember nothing
    MMAR_ASSIGN(uint64_t h, hash());
    if (h != m.xxh3) return checksum_error(m);
    return success();
  }
  std::call_once(raw_bits_once, [&] {
    const size_t words = (size_t{count} + 63) / 64;
    raw_good.reset(new std::atomic<uint64_t>[words]());
    raw_bad.reset(new std::atomic<uint64_t>[words]());
  });
  const size_t word = m.index / 64;
  const uint64_t bit = uint64_t{1} << (m.index % 64);
  if ((raw_good[word].load(std::memory_order_acquire) & bit) != 0) return success();
  if ((raw_bad[word].load(std::memory_order_acquire) & bit) != 0) return checksum_error(m);
  MMAR_ASSIGN(uint64_t h, hash());
  const bool good = h == m.xxh3;
  (good ? raw_good : raw_bad)[word].fetch_or(bit, std::memory_order_release);
  if (!good) return checksum_error(m);
  return success();
}

Result<Bytes> Archive::Impl::read(const Member& m, bool verify) const {
  if (!m.has_data()) return Bytes();
  verify = verify && m.has_checksum;
  if (m.codec == Codec::none) {
    MMAR_ASSIGN(Bytes b, source.read(m.data_offset, m.size));
    if (verify) MMAR_TRY(check_raw(m, b.span()));
    return b;
  }
  if (m.codec == Codec::extents) return read_extents(m, verify);
  if (m.framed) return read_framed_whole(m, verify);
  // The cache only holds bytes whose checksum matched (or that have none).
  if (auto hit = cache.get(m.index)) return *hit;
  if (m.size > options.max_member_size) {
    return Error(Errc::limit, file() + ": member '" + std::string(m.name) + "' inflates to " + std::to_string(m.size) +
                                  " bytes, above the limit of " + std::to_string(options.max_member_size));
  }
  MMAR_ASSIGN(Bytes stored, source.read(m.data_offset, m.stored_size));
  auto inflated = codec::decompress(m.codec, stored.span(), m.size);
  if (!inflated.ok()) {
    return Error(inflated.error().code(),
                 file() + ": member '" + std::string(m.name) + "': " + inflated.error().message() + " (at offset " +
                     hex(m.data_offset) + ")",
                 m.data_offset);
  }
  const bool checked = m.has_checksum && verify;
  if (checked && XXH3_64bits(inflated->data(), inflated->size()) != m.xxh3) return checksum_error(m);
  Bytes out = Bytes::from_vector(std::move(inflated).value());
  if (checked || !m.has_checksum) cache.put(m.index, out);
  return out;
}

// An extent map's pieces assembled into an anonymous mapping: holes stay
// untouched zero pages (a sparse member costs memory for its data only),
// and the size word sizes a reservation of address space, never memory.
Result<Bytes> Archive::Impl::read_extents(const Member& m, bool verify) const {
  if (auto hit = cache.get(m.index)) return *hit;
  if (m.size > options.max_member_size) {
    return Error(Errc::limit, file() + ": member '" + std::string(m.name) + "' is " + std::to_string(m.size) +
                                  " bytes, above the limit of " + std::to_string(options.max_member_size));
  }
  MMAR_ASSIGN(std::vector<format::Extent> extents, extent_map(m));
  if (m.size == 0) return Bytes();
  const size_t size = static_cast<size_t>(m.size);
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return Error(Errc::limit, file() + ": member '" + std::string(m.name) + "': cannot reserve " +
                                  std::to_string(m.size) + " bytes");
  }
  std::shared_ptr<void> owner(p, [size](void* q) { munmap(q, size); });
  for (const auto& x : extents) {
    MMAR_ASSIGN(Bytes piece, source.read(x.ex_physical, x.ex_length));
    std::memcpy(static_cast<std::byte*>(p) + x.ex_logical, piece.data(), piece.size());
  }
  std::span<const std::byte> view(static_cast<const std::byte*>(p), size);
  const bool checked = m.has_checksum && verify;
  if (checked && XXH3_64bits(view.data(), view.size()) != m.xxh3) return checksum_error(m);
  Bytes out(view, std::move(owner));
  if (checked || !m.has_checksum) cache.put(m.index, out);
  return out;
}

Result<Bytes> Archive::Impl::stream_head(const Member& m) const {
  if (source.contiguous()) return source.read(m.data_offset, m.stored_size);  // a view: free
  // One read for the table and, for a small stream (a pack of small
  // members: up to 256 KiB by default), its frames too (for a remote
  // source, one request). Otherwise 64 KiB: the header and (v2) the anchors
  // of up to 256 GiB of 128 KiB frames; entries past it are read when
  // needed (v1: two per frame; v2: the group's, up to the frame, at most 2
  // KiB). Heads are kept by offset, up to 32 MiB, the least recently used
  // dropped first; a head is the file's bytes there, whichever member
  // asks, so a longer one serves a shorter request.
  constexpr uint64_t kWhole = (uint64_t{256} << 10) + 64;
  const uint64_t want = m.stored_size <= kWhole ? m.stored_size : uint64_t{64} << 10;
  if (auto hit = heads.get(m.data_offset); hit && hit->size() >= want) {
    return hit->subspan(0, static_cast<size_t>(want));
  }
  MMAR_ASSIGN(Bytes b, source.read(m.data_offset, want));
  heads.put(m.data_offset, b);
  return b;
}

Result<frames::Table> Archive::Impl::frame_table(const Member& m) const {
  MMAR_ASSIGN(Bytes head, stream_head(m));
  const bool v3 = (sb.sb_flags & format::kSbFlagFramed3) != 0;
  MMAR_ASSIGN(frames::Table t, frames::parse_header(head.span(), m.stored_size, what(m), m.data_offset,
                                                    frames::StreamOf{m.size, m.stream_offset, v3}));
  if (uint64_t{m.stream_offset} > t.size || m.size > t.size - m.stream_offset) {
    return malformed(file(), m.data_offset, "member '" + std::string(m.name) + "': bytes [" +
                                                std::to_string(m.stream_offset) + ", +" + std::to_string(m.size) +
                                                ") outside its frame stream of " + std::to_string(t.size));
  }
  return t;
}

Result<std::pair<frames::Frame, Bytes>> Archive::Impl::stored_frame(uint64_t offset, const Bytes& head,
                                                                    const frames::Table& t, uint32_t k,
                                                                    const std::string& what, bool read) const {
  // The few table bytes frame k needs (v2: its group's anchors and entries,
  // at most 16 + 2 KiB), from the kept head when they lie in it.
  auto table_part = [&](uint64_t at, uint64_t length) -> Result<Bytes> {
    if (in_bounds(at, length, head.size())) return head.subspan(static_cast<size_t>(at), static_cast<size_t>(length));
    // parse_header checked that the table lies inside the stored bytes.
    return source.read(offset + at, length);
  };
  const frames::Lookup l = frames::lookup(t, k);
  MMAR_ASSIGN(Bytes anchors, table_part(l.anchors_at, l.anchors_length));
  MMAR_ASSIGN(Bytes entries, table_part(l.entries_at, l.entries_length));
  MMAR_ASSIGN(frames::Frame f, frames::frame_at(t, k, anchors.span(), entries.span(), what, offset));
  Bytes stored;
  if (f.end <= head.size()) {
    stored = head.subspan(static_cast<size_t>(f.begin), static_cast<size_t>(f.end - f.begin));
  } else if (read) {
    MMAR_ASSIGN(stored, source.read(offset + f.begin, f.end - f.begin));
  }
  return std::make_pair(f, std::move(stored));
}

Result<const std::byte*> Archive::Impl::load_index_frame(uint32_t k) const {
  const uint64_t begin = uint64_t{k} << index_table.log2;
  MMAR_ASSIGN(Bytes frame, inflate_index(begin, begin + index_table.inflated(k)));
  std::lock_guard lock(index_frames_mu);
  if (const std::byte* p = index_frames[k].load(std::memory_order_acquire)) return p;  // another thread's
  index_frames_kept.push_back(std::move(frame));
  const std::byte* p = index_frames_kept.back().data();
  index_frames[k].store(p, std::memory_order_release);
  return p;
}

Result<Bytes> Archive::Impl::inflate_index(uint64_t begin, uint64_t end) const {
  const std::string what = file() + ": index";
  // What readers ask for: a frame, a fence run's entries (at most 4098) or
  // names (at most 1 MiB), an attribute record (at most 1 MiB + 4), a name
  // (at most 4 KiB) -- never more than this, whatever the table says.
  constexpr uint64_t kMost = (uint64_t{1} << 20) + (uint64_t{512} << 10);
  if (end - begin > kMost) {
    return Error(Errc::limit, what + ": " + std::to_string(end - begin) + " bytes asked at once (at most " +
                                  std::to_string(kMost) + ")");
  }
  const frames::Table& t = index_table;
  const uint64_t base = sb.sb_index_offset;
  const uint32_t k0 = frames::first_frame(t, begin), k1 = frames::first_frame(t, end - 1);
  // The frames' places, then their stored bytes: from the head read at
  // open, else in one read for all of them (a fence run: one request).
  std::vector<frames::Frame> fs;
  std::vector<Bytes> stored;
  for (uint32_t k = k0; k <= k1; ++k) {
    MMAR_ASSIGN(auto placed, stored_frame(base, index_head, t, k, what, /*read=*/false));
    fs.push_back(placed.first);
    stored.push_back(std::move(placed.second));
  }
  if (fs.back().end > index_head.size()) {
    // Frames are consecutive (frame_at checked each starts where the one
    // before ends): [first.begin, last.end) is at most end - begin plus a
    // frame's worth of compressed bytes per frame.
    MMAR_ASSIGN(Bytes all, source.read(base + fs.front().begin, fs.back().end - fs.front().begin));
    for (size_t i = 0; i < fs.size(); ++i) {
      stored[i] = all.subspan(static_cast<size_t>(fs[i].begin - fs.front().begin),
                              static_cast<size_t>(fs[i].end - fs[i].begin));
    }
  }
  std::vector<std::byte> out(static_cast<size_t>(end - begin));  // at most a block or a fence run (LazyIndex)
  std::vector<std::byte> whole;
  const bool predicted = (sb.sb_flags & format::kSbFlagIndexPredicted) != 0;
  const uint64_t table_bytes = uint64_t{count} * format::kEntrySize;
  for (size_t i = 0; i < fs.size(); ++i) {
    const frames::Frame& f = fs[i];
    const uint64_t fbegin = uint64_t{f.index} << t.log2;
    const uint64_t at = std::max(begin, fbegin);
    const uint64_t take = std::min<uint64_t>(end, fbegin + f.inflated) - at;
    // A frame's entries (whole ones: frames are multiples of 64 bytes) lose
    // their predicted offsets once it is inflated whole.
    const auto unpredict = [&](std::span<std::byte> frame) {
      if (!predicted || fbegin >= table_bytes) return;
      const uint64_t n = std::min<uint64_t>(frame.size(), table_bytes - fbegin);
      index_codec::unpredict_offsets(frame.first(static_cast<size_t>(n)), fbegin / format::kEntrySize);
    };
    if (at == fbegin && take == f.inflated) {
      const std::span<std::byte> to(out.data() + (at - begin), take);
      MMAR_TRY(frames::inflate_frame(t, f, Codec::zstd, stored[i].span(), to, true, what, base));
      unpredict(to);
    } else {
      whole.resize(static_cast<size_t>(f.inflated));
      MMAR_TRY(frames::inflate_frame(t, f, Codec::zstd, stored[i].span(), whole, true, what, base));
      unpredict(whole);
      std::memcpy(out.data() + (at - begin), whole.data() + (at - fbegin), take);
    }
  }
  return Bytes::from_vector(std::move(out));
}

Result<Bytes> Archive::Impl::frame(const Member& m, const frames::Table& t, uint32_t k, bool verify) const {
  // Members sharing a stream read it through one table (the key holds the
  // size a v3 stream sized by its member is read with), so a cached frame
  // always has the length this table gives it.
  const FrameKey key = frame_key(m.data_offset, t, k);
  const auto cached = [&](const Bytes& hit) -> Result<Bytes> {
    if (hit.size() == t.inflated(k)) return hit;
    return malformed(file(), m.data_offset,
                     "member '" + std::string(m.name) + "': frame " + std::to_string(k) + " is cached with another size");
  };
  if (auto hit = frame_cache.get(key)) return cached(*hit);
  const bool cacheable = (verify || !m.has_checksum) && t.inflated(k) <= frame_cache.capacity();
  // Not cached: inflate it, unless another reader is inflating it now (then
  // wait for that one; if its frame is not cached after all -- it failed --
  // inflate it here too). A frame that will not be cached flies no flight:
  // nobody could take it from the cache.
  struct Flight {
    FrameFlights* flights = nullptr;
    FrameKey key;
    uint64_t id = 0;
    ~Flight() {
      if (id != 0) flights->land(key, id);
    }
  } flight{&frame_flights, key};
  if (cacheable) {
    flight.id = frame_flights.board(key);
    if (flight.id == 0) {
      if (auto hit = frame_cache.get(key)) return cached(*hit);
    }
  }
  MMAR_ASSIGN(Bytes head, stream_head(m));  // the table's start (all of it when mapped)
  MMAR_ASSIGN(auto placed, stored_frame(m.data_offset, head, t, k, what(m)));
  const frames::Frame& f = placed.first;
  const Bytes& stored = placed.second;
  if (source.mapped() && stored.size() >= (size_t{16} << 10)) {
    // The compressed bytes' pages in one call, not a fault per page (page
    // faults cost more than the data on many machines; as the mount does
    // for raw members).
    const auto start = reinterpret_cast<uintptr_t>(stored.data());
    const uintptr_t page = start & ~uintptr_t{4095};
    madvise(reinterpret_cast<void*>(page), start + stored.size() - page, MADV_POPULATE_READ);
  }
  Bytes out;
  if (f.raw()) {
    if (verify) MMAR_TRY(frames::check_frame(t, f, stored.span(), what(m), m.data_offset));
    out = stored;  // a view of the archive, or of the buffer read for it alone
    if (!source.contiguous() && f.end <= head.size()) {
      // Taken from the stream's head: a copy, since a view would keep the
      // whole head (up to 256 KiB) alive in the cache for a frame of a few
      // bytes.
      std::shared_ptr<std::byte> buf = frame_buffers->take(stored.size());
      if (!buf) {
        return Error(Errc::limit, what(m) + ": frame " + std::to_string(k) + ": out of memory",
                     m.data_offset + f.begin);
      }
      std::memcpy(buf.get(), stored.data(), stored.size());
      out = Bytes(std::span<const std::byte>(buf.get(), stored.size()), std::shared_ptr<const void>(buf, buf.get()));
    }
  } else {
    // At most 2^kMaxFrameLog2: a constant of the format, not a size word.
    std::shared_ptr<std::byte> buf = frame_buffers->take(f.inflated);
    if (!buf) {
      return Error(Errc::limit, what(m) + ": frame " + std::to_string(k) + ": out of memory", m.data_offset + f.begin);
    }
    std::span<std::byte> into(buf.get(), f.inflated);
    MMAR_TRY(frames::inflate_frame(t, f, m.codec, stored.span(), into, verify, what(m), m.data_offset));
    out = Bytes(into, std::shared_ptr<const void>(buf, buf.get()));
  }
  if (verify || !m.has_checksum) frame_cache.put(key, out);
  return out;
}

Result<void> Archive::Impl::read_framed(const Member& m, uint64_t offset, size_t n, std::byte* out, bool verify) const {
  if (n == 0) return success();
  MMAR_ASSIGN(frames::Table t, frame_table(m));
  uint64_t at = m.stream_offset + offset;  // in the stream
  const uint64_t end = at + n;
  while (at < end) {
    const uint32_t k = frames::first_frame(t, at);
    MMAR_ASSIGN(Bytes f, frame(m, t, k, verify));
    const uint64_t fbegin = uint64_t{k} << t.log2;
    const uint64_t take = std::min<uint64_t>(end, fbegin + f.size()) - at;
    std::memcpy(out, f.data() + (at - fbegin), take);
    out += take;
    at += take;
  }
  return success();
}

Result<Bytes> Archive::Impl::read_framed_whole(const Member& m, bool verify) const {
  if (auto hit = cache.get(m.index)) return *hit;
  if (m.size > options.max_member_size) {
    return Error(Errc::limit, what(m) + " inflates to " + std::to_string(m.size) + " bytes, above the limit of " +
                                  std::to_string(options.max_member_size));
  }
  MMAR_ASSIGN(frames::Table t, frame_table(m));
  // Grown frame by frame with what the frames really produce (the table's
  // size word sizes nothing).
  std::vector<std::byte> buf;
  uint64_t at = m.stream_offset;
  const uint64_t end = at + m.size;
  try {
    while (at < end) {
      const uint32_t k = frames::first_frame(t, at);
      MMAR_ASSIGN(Bytes f, frame(m, t, k, verify));
      const uint64_t fbegin = uint64_t{k} << t.log2;
      const uint64_t take = std::min<uint64_t>(end, fbegin + f.size()) - at;
      buf.insert(buf.end(), f.data() + (at - fbegin), f.data() + (at - fbegin) + take);
      at += take;
    }
  } catch (const std::bad_alloc&) {
    return Error(Errc::limit, what(m) + ": out of memory for " + std::to_string(m.size) + " bytes");
  }
  const bool checked = m.has_checksum && verify;
  if (checked && XXH3_64bits(buf.data(), buf.size()) != m.xxh3) return checksum_error(m);
  Bytes out = Bytes::from_vector(std::move(buf));
  if (checked || !m.has_checksum) cache.put(m.index, out);
  return out;
}

Result<uint64_t> Archive::Impl::stream_hash(const Member& m) const {
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  if (m.framed) {
    MMAR_ASSIGN(frames::Table t, frame_table(m));
    uint64_t at = m.stream_offset;
    const uint64_t end = at + m.size;
    while (at < end) {
      const uint32_t k = frames::first_frame(t, at);
      MMAR_ASSIGN(Bytes f, frame(m, t, k, /*verify=*/true));
      const uint64_t fbegin = uint64_t{k} << t.log2;
      const uint64_t take = std::min<uint64_t>(end, fbegin + f.size()) - at;
      XXH3_64bits_update(&state, f.data() + (at - fbegin), take);
      at += take;
    }
    return XXH3_64bits_digest(&state);
  }
  std::vector<std::byte> buf(std::min<uint64_t>(m.size, size_t{1} << 20));
  for (uint64_t at = 0; at < m.size;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), m.size - at));
    MMAR_TRY(read_range(m, at, n, buf.data(), /*verify=*/false));
    XXH3_64bits_update(&state, buf.data(), n);
    at += n;
  }
  return XXH3_64bits_digest(&state);
}

Result<std::vector<format::Extent>> Archive::Impl::extent_map(const Member& m) const {
  MMAR_ASSIGN(Bytes stored, source.read(m.data_offset, m.stored_size));
  return index_codec::parse_extent_map(stored.span(), m.size, source.size(),
                                       file() + ": member '" + std::string(m.name) + "'", m.data_offset);
}

Result<Bytes> Archive::read(const Member& member) const { return impl_->read(member, impl_->options.verify_checksums); }

Result<size_t> Archive::read(const Member& m, uint64_t offset, size_t length, void* out) const {
  const Impl& a = *impl_;
  if (!m.has_data() || offset >= m.size) return size_t{0};
  const size_t n = static_cast<size_t>(std::min<uint64_t>(length, m.size - offset));
  const bool verify = a.options.verify_checksums && m.has_checksum;
  if (verify && m.codec == Codec::none && m.chunk_sums) {
    MMAR_TRY(a.check_chunks(m, offset, n));
  } else if (verify && m.codec == Codec::none) {
    MMAR_ASSIGN(Bytes whole, a.source.read(m.data_offset, m.size));
    MMAR_TRY(a.check_raw(m, whole.span()));
  } else if (verify && m.codec == Codec::extents) {
    MMAR_ASSIGN(std::vector<format::Extent> xs, a.extent_map(m));
    MMAR_TRY(a.check_extents(m, xs));
  }
  MMAR_TRY(a.read_range(m, offset, n, static_cast<std::byte*>(out), a.options.verify_checksums));
  return n;
}

void Archive::prefetch(const Member& m, uint64_t offset, uint64_t length) const noexcept {
  const Impl& a = *impl_;
  // Only what the read will take from the cache: checked frames, or those
  // of a member without a checksum.
  const bool verify = a.options.verify_checksums && m.has_checksum;
  if (!m.framed || offset >= m.size || length == 0 || (!verify && m.has_checksum)) return;
  try {
    auto t = a.frame_table(m);
    if (!t.ok()) return;
    const uint64_t at = m.stream_offset + offset;
    const uint64_t last = at + std::min(length, m.size - offset) - 1;
    for (uint64_t k = frames::first_frame(*t, at), end = frames::first_frame(*t, last); k <= end; ++k) {
      // Checked as read_bytes would, so that what lands in the cache is
      // what a reader may take from it.
      if (!a.frame(m, *t, static_cast<uint32_t>(k), verify).ok()) return;
    }
  } catch (...) {  // a hint: the read reports what went wrong
  }
}

Result<Bytes> Archive::read_bytes(const Member& m, uint64_t offset, size_t length) const {
  const Impl& a = *impl_;
  if (!m.has_data() || offset >= m.size) return Bytes();
  const size_t n = static_cast<size_t>(std::min<uint64_t>(length, m.size - offset));
  if (m.framed) {
    MMAR_ASSIGN(frames::Table t, a.frame_table(m));
    const uint64_t at = m.stream_offset + offset;
    const uint32_t k = frames::first_frame(t, at);
    if (n > 0 && frames::first_frame(t, at + n - 1) == k) {
      MMAR_ASSIGN(Bytes f, a.frame(m, t, k, a.options.verify_checksums && m.has_checksum));
      const uint64_t in_frame = at - (uint64_t{k} << t.log2);
      if (in_frame + n <= f.size()) return f.subspan(static_cast<size_t>(in_frame), n);
    }
  } else if (m.codec == Codec::none && m.chunk_sums && a.source.contiguous()) {
    // A view of the mapping; only the chunks under it checked.
    if (a.options.verify_checksums && m.has_checksum) MMAR_TRY(a.check_chunks(m, offset, n));
    return a.source.read(m.data_offset + offset, n);
  } else if (m.codec == Codec::none && a.source.contiguous()) {
    MMAR_ASSIGN(Bytes whole, a.read(m, a.options.verify_checksums));
    return whole.subspan(static_cast<size_t>(offset), n);
  }
  std::vector<std::byte> buf(n);
  MMAR_ASSIGN(size_t got, read(m, offset, n, buf.data()));
  buf.resize(got);
  return Bytes::from_vector(std::move(buf));
}

// Bytes [offset, offset + n) of the member, in range. Raw and extent-mapped
// members are copied from the file as they are; frames are checked one by
// one (`verify`); a legacy single-stream member is inflated whole.
Result<void> Archive::Impl::read_range(const Member& m, uint64_t offset, size_t n, std::byte* to, bool verify) const {
  if (n == 0) return success();
  if (m.codec == Codec::none) {
    MMAR_ASSIGN(Bytes part, source.read(m.data_offset + offset, n));
    std::memcpy(to, part.data(), n);
    return success();
  }
  if (m.codec == Codec::extents) {
    MMAR_ASSIGN(std::vector<format::Extent> xs, extent_map(m));
    std::memset(to, 0, n);
    return index_codec::for_each_piece(xs, offset, n, [&](uint64_t physical, uint64_t at, uint64_t k) -> Result<void> {
      MMAR_ASSIGN(Bytes part, source.read(physical, k));
      std::memcpy(to + at, part.data(), part.size());
      return success();
    });
  }
  if (m.framed) return read_framed(m, offset, n, to, verify && m.has_checksum);
  MMAR_ASSIGN(Bytes whole, read(m, verify));
  std::memcpy(to, whole.data() + offset, n);
  return success();
}

Result<Bytes> Archive::read(std::string_view name) const {
  MMAR_ASSIGN(Member m, find(name));
  return read(m);
}

Result<void> Archive::for_each(const std::function<Result<void>(const Member&)>& fn) const {
  for (uint32_t i = 0; i < impl_->count; ++i) {
    MMAR_ASSIGN(Member m, impl_->at(i));
    MMAR_TRY(fn(m));
  }
  return success();
}

Result<void> Archive::for_each(Kind kind, const std::function<Result<void>(const Member&)>& fn) const {
  return for_each([&](const Member& m) -> Result<void> {
    if (m.kind != kind) return success();
    return fn(m);
  });
}

// ---------------------------------------------------------------------------
// Verification

namespace {

// A fence that claims the index in use must be intact and right: each key
// sorts after the last name of the run before it and not after the first
// name of its own run. (A fence of an older generation is just unused.)
std::optional<std::string> check_fence(const Archive::Impl& a) {
  const uint64_t avail = std::min<uint64_t>(fence::kMaxBytes, a.source.size() - fence::kOffset);
  auto area = a.source.read(fence::kOffset, avail);
  if (!area.ok()) return area.error().message();
  if (fence::View::claimed_size(area->span()) == 0) return std::nullopt;
  fence::Header h;
  std::memcpy(&h, area->data(), sizeof h);
  if (h.index_xxh3 != a.sb.sb_index_xxh3 || h.generation != a.sb.sb_generation) return std::nullopt;
  auto v = fence::View::parse(area->span(), a.sb);
  if (!v) return "damaged (header, offsets or checksum)";
  if (!v->key(0).empty()) return "key 0 is not empty";
  for (uint32_t k = 1; k < v->keys(); ++k) {
    const uint64_t first = uint64_t{k} * v->stride();
    auto before = a.name_at(static_cast<uint32_t>(first - 1));
    auto at = a.name_at(static_cast<uint32_t>(first));
    if (!before.ok() || !at.ok()) return std::nullopt;  // reported per member
    if (!(*before < v->key(k)) || *at < v->key(k)) return "key " + std::to_string(k) + " does not separate its runs";
  }
  return std::nullopt;
}

}  // namespace

Result<Attributes> Archive::attributes(const Member& m) const {
  if (m.attr_bytes.empty()) return Attributes{};
  auto d = attrs::parse(m.attr_bytes, m.mode);
  if (!d.ok()) return Error(Errc::malformed, name() + ": member '" + std::string(m.name) + "': " +
                                                 d.error().message());
  return attrs::to_attributes(*d);
}

Result<std::vector<VerifyProblem>> Archive::verify(const std::function<void(uint64_t, uint64_t)>& progress) const {
  const Impl& a = *impl_;
  std::vector<VerifyProblem> problems;
  auto structural = [&](std::string msg) { problems.push_back({std::nullopt, std::move(msg)}); };
  if (a.format == Format::mmar) {
    MMAR_ASSIGN(Bytes head, a.source.read(0, format::kHeaderAreaSize));
    for (int slot = 0; slot < 2; ++slot) {
      auto s = load<format::Superblock>(head.data() + slot * format::kSuperblockSize);
      if (!superblock_valid(s)) {
        structural("superblock " + std::to_string(slot) + " is damaged (the other one is in use)");
      }
    }
    // A merged delta chain had every record's checksum checked at open.
    if (a.delta_depth == 0) {
      Bytes whole = a.index;
      if (a.lazy) {  // read, or compressed: the stored bytes
        auto all = a.source.read(a.sb.sb_index_offset, a.sb.sb_index_size);
        if (!all.ok()) return std::move(all).error();
        whole = *all;
      }
      if (XXH3_64bits(whole.data(), whole.size()) != a.sb.sb_index_xxh3) structural("index checksum mismatch");
    }
    if (auto why = check_fence(a)) structural("name fence: " + *why);
  }
  std::string_view prev;
  for (uint32_t i = 0; i < a.count; ++i) {
    if (progress) progress(i, a.count);
    auto m = a.at(i);
    if (!m.ok()) {
      problems.push_back({i, m.error().message()});
      continue;
    }
    if (i > 0 && !(prev < m->name)) {
      problems.push_back({i, "'" + std::string(m->name) + "' is out of order or duplicated"});
    }
    prev = m->name;
    if (!m->is_dir()) {
      // A file cannot also be a directory: no member may lie below it
      // ("a" and "a/b"). Sorted names put those right after "a/".
      const std::string below = std::string(m->name) + "/";
      auto at = lower_bound(below);
      if (at.ok() && *at < a.count) {
        auto next = a.name_at(*at);
        if (next.ok() && next->substr(0, below.size()) == below) {
          problems.push_back({*at, "'" + std::string(*next) + "' lies below '" + std::string(m->name) +
                                       "', which is not a directory"});
        }
      }
    }
    if (!m->has_data()) continue;  // directories, devices, FIFOs, sockets: no bytes
    if (m->has_checksum && (m->framed || m->codec == Codec::none || m->codec == Codec::extents)) {
      // Streamed: every frame of the member checked, memory one frame.
      auto h = a.stream_hash(*m);
      if (!h.ok()) {
        problems.push_back({i, h.error().message()});
      } else if (*h != m->xxh3) {
        problems.push_back({i, a.checksum_error(*m).message()});
      } else if (m->chunk_sums) {
        // The whole is right; its chunk table must agree too (a damaged
        // table would fail range reads that the whole check passes).
        auto c = a.check_all_chunks(*m);
        if (!c.ok()) problems.push_back({i, c.error().message()});
      }
      continue;
    }
    auto bytes = a.read(*m, /*verify=*/true);
    if (!bytes.ok()) problems.push_back({i, bytes.error().message()});
  }
  return problems;
}

// ---------------------------------------------------------------------------
// Streaming

struct MemberReader::State {
  State(Archive a, const Member& m) : archive(std::move(a)), member(m) {}
  Archive archive;
  Member member;
  uint64_t pos = 0;
  bool sequential = true;  // read from 0 without a seek: the whole XXH3 is checked at the end
  XXH3_state_t hash;
};

MemberReader::MemberReader(Archive archive, Member member) : s_(std::make_unique<State>(std::move(archive), member)) {
  XXH3_64bits_reset(&s_->hash);
}
MemberReader::~MemberReader() = default;
MemberReader::MemberReader(MemberReader&&) noexcept = default;
MemberReader& MemberReader::operator=(MemberReader&&) noexcept = default;

uint64_t MemberReader::tell() const { return s_->pos; }
const Member& MemberReader::member() const { return s_->member; }
void MemberReader::seek(uint64_t offset) {
  if (offset != s_->pos) s_->sequential = false;
  s_->pos = offset;
}

Result<size_t> MemberReader::read(void* out, size_t n) {
  State& st = *s_;
  const Archive::Impl& a = *st.archive.impl_;
  const Member& m = st.member;
  if (!m.has_data() || st.pos >= m.size) return size_t{0};
  n = static_cast<size_t>(std::min<uint64_t>(n, m.size - st.pos));
  const bool verify = a.options.verify_checksums && m.has_checksum;
  if (verify && !st.sequential && (m.codec == Codec::none || m.codec == Codec::extents)) {
    // After a seek the whole XXH3 cannot be streamed: a raw or extent-mapped
    // member is checked as a range read checks it (its chunks, or the whole
    // once per Archive).
    MMAR_ASSIGN(size_t got, st.archive.read(m, st.pos, n, out));
    st.pos += got;
    return got;
  }
  MMAR_TRY(a.read_range(m, st.pos, n, static_cast<std::byte*>(out), verify));
  if (verify && st.sequential) {
    XXH3_64bits_update(&st.hash, out, n);
    if (st.pos + n == m.size && XXH3_64bits_digest(&st.hash) != m.xxh3) {
      st.sequential = false;
      return a.checksum_error(m);
    }
  }
  st.pos += n;
  return n;
}

Result<void> copy_member_to_fd(const Archive& archive, const Member& member, int fd) {
  MemberReader reader(archive, member);
  std::vector<std::byte> buf(static_cast<size_t>(std::min<uint64_t>(member.size, uint64_t{1} << 20)));
  for (;;) {
    MMAR_ASSIGN(size_t n, reader.read(buf.data(), buf.size()));
    if (n == 0) return success();
    for (size_t w = 0; w < n;) {
      const ssize_t r = ::write(fd, buf.data() + w, n - w);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return sys_error(archive.name() + ": member '" + std::string(member.name) + "': write", errno ? errno : EIO);
      w += static_cast<size_t>(r);
    }
  }
}

}  // namespace mmar
