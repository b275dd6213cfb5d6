// SPDX-License-Identifier: BSD-2-Clause
// In-place updates of an mmar archive (docs/FORMAT.md, "Updating in place"
// and "Index deltas"). Each commit, under the archive's WriterLock:
//   1. appends the data of new and changed members after the committed end
//      of the file (holes in the source stay holes);
//   2. appends an index delta (what changed), or a whole member table when
//      the chain of deltas would grow too long or too large; fdatasync;
//   3. rewrites the superblock slot *not* in use with generation + 1;
//      fdatasync.
// A crash before step 3 completes leaves the old superblock the valid one
// with the higher generation (a torn slot fails its checksum); a commit that
// fails truncates the file back to its committed length. Data of the old
// generation is never overwritten, so a reader of it keeps reading correct
// bytes. Compaction rewrites the live data into a new file (copying stored
// bytes, never recompressing), locked before it is renamed into place.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <climits>
#include <cstdlib>
#include <tuple>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <set>

#include "archive/chunks.h"
#include "archive/detect.h"
#include "archive/entry.h"
#include "archive/fence.h"
#include "archive/attrs.h"
#include "archive/format.h"
#include "archive/index_codec.h"
#include "archive/names.h"
#include "mmar/archive.h"
#include "support/atomic_file.h"
#include "support/checked.h"
#include "support/fd.h"
#include "support/io.h"

namespace mmar {

namespace {

// A member of the current generation, as the updater tracks it: its entry
// (name fields unused) and the name of the member it links to.
struct TableEntry {
  format::Entry e{};
  std::string attrs;  // the attribute record after the name (empty: none)
  std::string link;
  uint64_t live = 0;  // bytes of the file it keeps in use (an extent map: the map and its extents)
};

// The file a path names (symlinks followed), or an error naming it.
Result<std::string> resolved_path(const std::string& path) {
  char buf[PATH_MAX];
  if (realpath(path.c_str(), buf) == nullptr) return sys_error(path, errno);
  return std::string(buf);
}

// Whether a generation has frame streams (superblock feature bit 1).
template <class Table>
bool has_framed(const Table& t) {
  for (const auto& [name, te] : t) {
    if ((te.e.me_flags & format::kFlagFramed) != 0) return true;
  }
  return false;
}

// The frame stream bits of a generation's superblock: bit 1 when it has
// frame streams; bits 2 and 5 (some may have v2 / v3 tables) kept from the
// generation before while it has any. Updates never write frame streams,
// only keep (or drop) those the archive had, so the bits stay set for as
// long as such a stream may remain, without reading every stream's header.
inline constexpr uint32_t kTableVersionBits = format::kSbFlagFramed2 | format::kSbFlagFramed3;
template <class Table>
uint32_t framed_flags(const Table& t, uint32_t had_versions) {
  if (!has_framed(t)) return 0;
  return format::kSbFlagFramed | (had_versions & kTableVersionBits);
}

format::Entry entry_of(const Member& m) {
  format::Entry e{};
  std::memset(&e, 0, sizeof e);
  e.me_data_offset = m.data_offset;
  e.me_stored_size = m.stored_size;
  e.me_size = m.size;
  e.me_xxh3 = m.xxh3;
  e.me_mtime_ns = static_cast<uint64_t>(m.mtime_ns);
  e.me_mode = m.mode;
  e.me_link = format::kNoLink;
  e.me_codec = static_cast<uint8_t>(m.codec);
  e.me_kind = static_cast<uint8_t>(m.kind);
  e.me_flags = static_cast<uint16_t>((m.page_aligned ? format::kFlagPageAligned : 0) |
                                     (m.has_btf ? format::kFlagHasBtf : 0) | (m.framed ? format::kFlagFramed : 0) |
                                     (m.chunk_sums ? format::kFlagChunkSums : 0));
  e.me_stream_offset = m.stream_offset;
  return e;
}

// A member's attribute record as stored (empty when it has none).
std::string attr_record_of(const Member& m) {
  return std::string(reinterpret_cast<const char*>(m.attr_bytes.data()), m.attr_bytes.size());
}

// One delta of the chain the current superblock points at.
struct Level {
  uint64_t offset = 0, size = 0, xxh3 = 0;
  uint32_t result_count = 0;                   // members once applied
  // Entries with their attribute records; tombstones included.
  std::map<std::string, std::pair<format::Entry, std::string>> changes;
};

Result<Bytes> read_range(const Archive& a, uint64_t offset, uint64_t size) { return a.source().read(offset, size); }

// Copy [from, from + size) of `in` to `to` of `out`: copy_file_range (kernel
// side, reflinks where the filesystem has them), else by hand.
Result<void> copy_range(int in, uint64_t from, int out, uint64_t to, uint64_t size, const std::string& what) {
  uint64_t copied = 0;
  std::vector<char> buf;
  while (copied < size) {
    loff_t in_off = static_cast<loff_t>(from + copied);
    loff_t out_off = static_cast<loff_t>(to + copied);
    ssize_t n = copy_file_range(in, &in_off, out, &out_off, size - copied, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      buf.resize(static_cast<size_t>(std::min<uint64_t>(size - copied, 1 << 20)));
      const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - copied));
      if (!pread_full(in, buf.data(), want, from + copied)) return sys_error("read for " + what, errno ? errno : EIO);
      MMAR_TRY(pwrite_full(out, buf.data(), want, to + copied, what));
      n = static_cast<ssize_t>(want);
    }
    copied += static_cast<uint64_t>(n);
  }
  return success();
}

}  // namespace

struct ArchiveUpdater::Impl {
  WriterLock lock;
  Archive base;
  UpdaterOptions options;
  uint8_t align_log2 = 12;
  uint64_t generation = 0;
  uint32_t framed2 = 0;  // the current superblock's kSbFlagFramed2 and kSbFlagFramed3
  // The current index is compressed (kSbFlagIndexFramed): deltas apply to
  // plain tables only, so the next commit writes a whole (plain) table.
  bool index_framed = false;
  int slot = 0;  // superblock slot of the current generation
  uint64_t file_size = 0;
  // The current generation.
  std::map<std::string, TableEntry, std::less<>> table;
  uint64_t stored_bytes = 0;  // sum of the table's live bytes

  // What an entry keeps in use: its stored bytes, and for an extent map the
  // bytes its extents name (shared data counted once per entry: an upper
  // bound, so compaction never runs early).
  uint64_t live_of(const format::Entry& e) const {
    if (e.me_codec != static_cast<uint8_t>(format::EntryCodec::extents)) return e.me_stored_size;
    std::vector<std::byte> map(e.me_stored_size);
    if (!pread_full(lock.fd(), map.data(), map.size(), e.me_data_offset)) return e.me_stored_size + e.me_size;
    auto xs = index_codec::parse_extent_map(map, e.me_size, ~uint64_t{0}, path(), e.me_data_offset);
    if (!xs.ok()) return e.me_stored_size + e.me_size;
    uint64_t sum = e.me_stored_size;
    for (const auto& x : *xs) sum += x.ex_length;
    return sum;
  }
  // Where the current index is and what it is.
  uint64_t index_offset = 0, index_size = 0, index_xxh3 = 0;
  uint32_t full_count = 0;    // members in the member table at the bottom of the chain
  uint64_t full_offset = 0, full_size = 0, full_xxh3 = 0;
  std::vector<Level> levels;  // the chain of deltas over it, oldest first
  uint64_t delta_entries = 0;

  Impl(WriterLock l, Archive a, UpdaterOptions o) : lock(std::move(l)), base(std::move(a)), options(o) {}

  const std::string& path() const { return lock.path(); }

  Result<void> load();
  Result<std::optional<StoredExtent>> append_data(const UpdateMember& u, uint64_t& offset);
  Result<CommitResult> commit(std::vector<UpdateMember> put, const std::vector<std::string>& remove);
  Result<void> write_superblock(uint32_t flags, uint64_t index_offset, std::span<const std::byte> index,
                                uint32_t count);
  std::vector<std::byte> full_index(const std::map<std::string, TableEntry, std::less<>>& t) const;
  Result<void> compact(const std::function<void(uint64_t, uint64_t)>& progress = {},
                       IndexStorage index = IndexStorage::automatic);
  Error rollback(uint64_t committed, Error e);
};

// The state of the archive as opened: its table, and where its index is.
Result<void> ArchiveUpdater::Impl::load() {
  if (base.format() != Format::mmar) {
    return Error(Errc::invalid_argument, path() + ": only mmar archives can be updated in place");
  }
  struct stat st {};
  if (fstat(lock.fd(), &st) != 0) return sys_error("stat " + path(), errno);
  MMAR_ASSIGN(Bytes head, read_range(base, 0, format::kHeaderAreaSize));
  MMAR_ASSIGN(SuperblockChoice c, choose_superblock(path(), head.data(), static_cast<uint64_t>(st.st_size)));
  generation = c.sb.sb_generation;
  framed2 = c.sb.sb_flags & kTableVersionBits;
  index_framed = (c.sb.sb_flags & format::kSbFlagIndexFramed) != 0;
  slot = c.slot;
  align_log2 = c.sb.sb_align_log2;
  // Appends start after everything the file holds, also bytes of a commit
  // that crashed before its superblock: they are unused but may be read by
  // nobody, so overwriting them is safe; appending after them is simpler.
  file_size = static_cast<uint64_t>(st.st_size);
  index_offset = c.sb.sb_index_offset;
  index_size = c.sb.sb_index_size;
  index_xxh3 = c.sb.sb_index_xxh3;
  table.clear();
  stored_bytes = 0;
  MMAR_TRY(base.for_each([&](const Member& m) -> Result<void> {
    TableEntry t;
    t.e = entry_of(m);
    t.attrs = attr_record_of(m);
    if (m.link) {
      MMAR_ASSIGN(Member target, base.at(*m.link));
      t.link = std::string(target.name);
    }
    t.live = live_of(t.e);
    stored_bytes += t.live;
    table.emplace(std::string(m.name), std::move(t));
    return success();
  }));
  // The chain of deltas as it is on disk (Archive::open checked it).
  levels.clear();
  delta_entries = 0;
  uint64_t off = index_offset, size = index_size, sum = index_xxh3;
  uint32_t count = c.sb.sb_member_count;
  bool is_delta = (c.sb.sb_flags & format::kSbFlagIndexDelta) != 0;
  while (is_delta) {
    MMAR_ASSIGN(Bytes rec, read_range(base, off, size));
    MMAR_ASSIGN(index_codec::DeltaView v, index_codec::parse_delta(rec.span(), path(), off));
    Level l;
    l.offset = off;
    l.size = size;
    l.xxh3 = sum;
    l.result_count = count;
    for (uint32_t i = 0; i < v.header.dh_count; ++i) {
      format::Entry e = v.entry(i);
      l.changes.emplace(std::string(v.name(e)), std::make_pair(e, std::string(v.attrs(e))));
    }
    delta_entries += l.changes.size();
    levels.insert(levels.begin(), std::move(l));
    off = v.header.dh_prev_offset;
    size = v.header.dh_prev_size;
    sum = v.header.dh_prev_xxh3;
    count = v.header.dh_prev_count;
    is_delta = (v.header.dh_flags & format::kDeltaPrevIsDelta) != 0;
  }
  full_offset = off;
  full_size = size;
  full_xxh3 = sum;
  full_count = count;
  return success();
}

Error ArchiveUpdater::Impl::rollback(uint64_t committed, Error e) {
  // Give back what this commit appended: the next commit starts from the
  // same length, and a full disk stays usable once space is freed.
  if (ftruncate(lock.fd(), static_cast<off_t>(committed)) == 0) fdatasync(lock.fd());
  return e;
}

// Where each part of a member's new bytes comes from.
struct Segment {
  enum Source : uint8_t { zero, fd, file, memory } source = zero;
  uint64_t logical = 0, length = 0;
  uint64_t from = 0;  // fd / file: offset there; memory: offset in `base_bytes`
};

// Append the bytes of one new member at `offset` (advanced past them): a
// symlink target, a file's bytes from data_fd, or (incremental) its base's
// bytes with the dirty ranges from data_fd -- only those ranges appended,
// under an extent map, while they are at most half the file.
Result<std::optional<StoredExtent>> ArchiveUpdater::Impl::append_data(const UpdateMember& u, uint64_t& offset) {
  const uint32_t type = u.mode & S_IFMT;
  if (type != S_IFREG && type != S_IFLNK) return std::optional<StoredExtent>();  // no bytes to store
  const bool is_link = type == S_IFLNK;
  const uint64_t size = is_link ? u.symlink_target.size() : u.size;
  const int fd = lock.fd();

  // The segments of [0, size), from the base, then the dirty ranges over them.
  std::vector<Segment> segs;
  Bytes base_bytes;  // a compressed base, inflated
  bool base_raw = true;
  if (u.incremental && !is_link && (u.keep || u.extent)) {
    uint64_t b_off = 0, b_stored = 0, b_size = 0;
    bool b_map = false;
    if (u.keep) {
      MMAR_ASSIGN(Member m, base.at(*u.keep));
      b_off = m.data_offset;
      b_stored = m.stored_size;
      b_size = m.size;
      b_map = m.codec == Codec::extents;
      if (m.codec == Codec::zstd || m.codec == Codec::xz) {
        MMAR_ASSIGN(base_bytes, base.read(m));
        base_raw = false;
      }
    } else {
      b_off = u.extent->offset;
      b_stored = u.extent->stored_size;
      b_size = u.extent->size;
      b_map = u.extent->extent_map;
    }
    const uint64_t keep_len = std::min(b_size, size);
    if (!base_raw) {
      if (keep_len > 0) segs.push_back({Segment::memory, 0, keep_len, 0});
    } else if (b_map) {
      std::vector<std::byte> map(b_stored);
      if (!pread_full(fd, map.data(), map.size(), b_off)) return sys_error("read " + path(), errno ? errno : EIO);
      MMAR_ASSIGN(std::vector<format::Extent> xs,
                  index_codec::parse_extent_map(map, b_size, file_size, path() + ": member '" + u.name + "'", b_off));
      for (const auto& x : xs) {
        if (x.ex_logical >= keep_len) break;
        segs.push_back({Segment::file, x.ex_logical, std::min<uint64_t>(x.ex_length, keep_len - x.ex_logical),
                        x.ex_physical});
      }
    } else if (keep_len > 0) {
      segs.push_back({Segment::file, 0, keep_len, b_off});
    }
    // Overlay the dirty ranges (clipped to the size): base parts inside
    // them are cut out, the ranges themselves come from data_fd.
    std::vector<Segment> out;
    size_t d = 0;
    auto dirty = u.dirty;
    for (auto& [b, e] : dirty) e = std::min(e, size);
    for (const Segment& sg : segs) {
      uint64_t pos = sg.logical;
      const uint64_t end = sg.logical + sg.length;
      while (pos < end) {
        while (d < dirty.size() && dirty[d].second <= pos) ++d;
        const uint64_t next_dirty = d < dirty.size() ? dirty[d].first : end;
        if (next_dirty > pos) {
          const uint64_t n = std::min(end, next_dirty) - pos;
          out.push_back({sg.source, pos, n, sg.from + (pos - sg.logical)});
          pos += n;
        } else {
          pos = std::min(end, dirty[d].second);
        }
      }
    }
    for (const auto& [b, e] : dirty) {
      if (b < e) out.push_back({Segment::fd, b, e - b, b});
    }
    std::sort(out.begin(), out.end(), [](const Segment& a, const Segment& b) { return a.logical < b.logical; });
    segs = std::move(out);
  } else if (size > 0) {
    segs.push_back({is_link ? Segment::memory : Segment::fd, 0, size, 0});
  }

  // One pass over the new bytes: their checksum and their first 64 KiB.
  std::vector<char> buf(1 << 20);
  auto read_seg = [&](const Segment& sg, uint64_t at, size_t n, char* to) -> Result<void> {
    switch (sg.source) {
      case Segment::zero: std::memset(to, 0, n); return success();
      case Segment::memory: {
        const char* src = is_link ? u.symlink_target.data() : reinterpret_cast<const char*>(base_bytes.data());
        std::memcpy(to, src + sg.from + at, n);
        return success();
      }
      case Segment::file:
        if (!pread_full(fd, to, n, sg.from + at)) return sys_error("read " + path(), errno ? errno : EIO);
        return success();
      case Segment::fd: {
        // A short read is a hole at the end of the new contents: zeros.
        size_t got = 0;
        while (got < n) {
          ssize_t r = ::pread(u.data_fd, to + got, n - got, static_cast<off_t>(sg.from + at + got));
          if (r < 0 && errno == EINTR) continue;
          if (r < 0) return sys_error(path() + ": read new contents of '" + u.name + "'", errno);
          if (r == 0) break;
          got += static_cast<size_t>(r);
        }
        std::memset(to + got, 0, n - got);
        return success();
      }
    }
    return success();
  };
  XXH3_state_t* h = XXH3_createState();
  if (h == nullptr) return Error(Errc::limit, "out of memory");
  struct Free {
    XXH3_state_t* h;
    ~Free() { XXH3_freeState(h); }
  } free_h{h};
  XXH3_64bits_reset(h);
  std::vector<std::byte> head;
  uint64_t hashed = 0, dirty_bytes = 0;
  for (const Segment& sg : segs) {
    if (sg.logical > hashed) {  // a gap: zeros
      std::memset(buf.data(), 0, buf.size());
      for (uint64_t left = sg.logical - hashed; left > 0;) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
        XXH3_64bits_update(h, buf.data(), n);
        if (head.size() < 65536) head.resize(std::min<size_t>(65536, head.size() + n));
        left -= n;
      }
    }
    if (sg.source == Segment::fd) dirty_bytes += sg.length;
    for (uint64_t at = 0; at < sg.length;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), sg.length - at));
      MMAR_TRY(read_seg(sg, at, n, buf.data()));
      XXH3_64bits_update(h, buf.data(), n);
      if (head.size() < 65536) {
        head.insert(head.end(), reinterpret_cast<std::byte*>(buf.data()),
                    reinterpret_cast<std::byte*>(buf.data()) + std::min<size_t>(n, 65536 - head.size()));
      }
      at += n;
    }
    hashed = sg.logical + sg.length;
  }
  if (hashed < size) {
    std::memset(buf.data(), 0, buf.size());
    for (uint64_t left = size - hashed; left > 0;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
      XXH3_64bits_update(h, buf.data(), n);
      left -= n;
    }
  }
  StoredExtent x;
  x.size = size;
  x.xxh3 = XXH3_64bits_digest(h);
  if (!is_link) {
    Detected det = detect_kind(head);
    x.kind = det.kind;
    x.has_btf = det.has_btf;
  }

  // The data runs of a segment (holes in data_fd are skipped: SEEK_DATA).
  auto data_runs = [&](const Segment& sg, const std::function<Result<void>(uint64_t, uint64_t)>& run) -> Result<void> {
    if (sg.source == Segment::zero) return success();
    if (sg.source != Segment::fd) return run(0, sg.length);
    uint64_t pos = sg.from;
    const uint64_t end = sg.from + sg.length;
    while (pos < end) {
      off_t d = lseek(u.data_fd, static_cast<off_t>(pos), SEEK_DATA);
      if (d < 0) {
        if (errno == ENXIO) break;  // only a hole is left
        return run(pos - sg.from, end - pos);  // no SEEK_DATA here: all of it
      }
      if (static_cast<uint64_t>(d) >= end) break;
      off_t e = lseek(u.data_fd, d, SEEK_HOLE);
      const uint64_t stop = e < 0 ? end : std::min<uint64_t>(end, static_cast<uint64_t>(e));
      MMAR_TRY(run(static_cast<uint64_t>(d) - sg.from, stop - static_cast<uint64_t>(d)));
      pos = stop;
    }
    return success();
  };
  auto copy_out = [&](const Segment& sg, uint64_t at, uint64_t n, uint64_t to) -> Result<void> {
    for (uint64_t done = 0; done < n;) {
      const size_t k = static_cast<size_t>(std::min<uint64_t>(buf.size(), n - done));
      MMAR_TRY(read_seg(sg, at + done, k, buf.data()));
      MMAR_TRY(pwrite_full(fd, buf.data(), k, to + done, path()));
      done += k;
    }
    return success();
  };

  // An extent map only while it saves most of the bytes, stays short, and
  // its member is no larger than the file (the readers' bound on holes).
  const bool incremental =
      u.incremental && base_raw && dirty_bytes <= size / 2 && segs.size() <= 4096 && size <= offset;
  if (!incremental) {
    // The whole member, raw and contiguous; holes stay holes.
    const uint64_t align = uint64_t{1} << align_log2;
    if (format::raw_on_page(false, size, align, format::RawWhy::chosen)) {
      offset = *align_up(offset, align);
      x.page_aligned = true;
    } else {
      offset = *align_up(offset, format::kPackedAlign);
    }
    const uint64_t start = offset;
    for (const Segment& sg : segs) {
      MMAR_TRY(data_runs(sg, [&](uint64_t at, uint64_t n) { return copy_out(sg, at, n, start + sg.logical + at); }));
    }
    x.offset = size == 0 ? 0 : start;
    x.stored_size = size;
    offset = start + size;
    return std::optional<StoredExtent>(x);
  }
  // Only the dirty ranges' data is appended; the map names the rest where
  // it already is.
  std::vector<format::Extent> extents;
  offset = *align_up(offset, format::kPackedAlign);
  for (const Segment& sg : segs) {
    auto add_extent = [&](uint64_t at, uint64_t n) -> Result<void> {
      format::Extent e{};
      e.ex_logical = sg.logical + at;
      e.ex_length = n;
      if (sg.source == Segment::file) {
        e.ex_physical = sg.from + at;
      } else {
        e.ex_physical = offset;
        auto copied = copy_out(sg, at, n, offset);
        if (!copied.ok()) return copied;
        offset += n;
      }
      extents.push_back(e);
      return success();
    };
    MMAR_TRY(data_runs(sg, add_extent));
  }
  std::vector<std::byte> map = index_codec::encode_extent_map(extents);
  offset = *align_up(offset, 8);
  MMAR_TRY(pwrite_full(fd, map.data(), map.size(), offset, path()));
  x.offset = offset;
  x.stored_size = map.size();
  x.extent_map = true;
  offset += map.size();
  return std::optional<StoredExtent>(x);
}

std::vector<std::byte> ArchiveUpdater::Impl::full_index(const std::map<std::string, TableEntry, std::less<>>& t) const {
  index_codec::IndexBuilder b;
  std::map<std::string_view, uint32_t> position;
  uint32_t i = 0;
  for (const auto& [name, te] : t) position.emplace(name, i++);
  for (const auto& [name, te] : t) {
    format::Entry& e = b.add(name, te.e, te.attrs);
    if (!te.link.empty()) {
      auto it = position.find(te.link);
      if (it != position.end() && it->first != name) e.me_link = it->second;
    }
  }
  return b.bytes();
}

Result<void> ArchiveUpdater::Impl::write_superblock(uint32_t flags, uint64_t new_index_offset,
                                                    std::span<const std::byte> index, uint32_t count) {
  format::Superblock sb =
      index_codec::make_superblock(generation + 1, align_log2, flags, new_index_offset, index, count);
  MMAR_TRY(pwrite_full(lock.fd(), &sb, sizeof sb, static_cast<uint64_t>(1 - slot) * format::kSuperblockSize, path()));
  if (fdatasync(lock.fd()) != 0) return sys_error("fsync " + path(), errno);
  ++generation;
  framed2 = flags & kTableVersionBits;
  index_framed = (flags & format::kSbFlagIndexFramed) != 0;
  slot = 1 - slot;
  index_offset = new_index_offset;
  index_size = index.size();
  index_xxh3 = sb.sb_index_xxh3;
  return success();
}

Result<CommitResult> ArchiveUpdater::Impl::commit(std::vector<UpdateMember> put,
                                                   const std::vector<std::string>& remove) {
  // Check everything before writing anything.
  std::vector<size_t> order(put.size());
  for (size_t i = 0; i < put.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return put[a].name < put[b].name; });
  std::map<std::string, TableEntry, std::less<>> next_entries;  // what changes, by name
  std::set<std::string, std::less<>> removed;
  for (size_t k = 0; k < order.size(); ++k) {
    const UpdateMember& u = put[order[k]];
    if (const char* why = name_problem(u.name)) {
      return Error(Errc::invalid_argument, path() + ": bad member name '" + u.name + "': " + why);
    }
    if (k > 0 && put[order[k - 1]].name == u.name) {
      return Error(Errc::invalid_argument, path() + ": duplicate member name '" + u.name + "'");
    }
    const uint32_t type = u.mode & S_IFMT;
    if (type != S_IFREG && type != S_IFDIR && type != S_IFLNK && type != S_IFCHR && type != S_IFBLK &&
        type != S_IFIFO && type != S_IFSOCK) {
      return Error(Errc::invalid_argument, path() + ": '" + u.name + "': unsupported file type");
    }
    // What the reader would refuse is refused here, before anything is written.
    if (auto encoded = attrs::encode(u.attrs); !encoded.ok()) {
      return std::move(encoded).error().with_context(path() + ": '" + u.name + "'");
    } else if (!encoded->empty()) {
      auto checked = attrs::parse(std::span<const std::byte>(reinterpret_cast<const std::byte*>(encoded->data()),
                                                             encoded->size()),
                                  u.mode);
      if (!checked.ok()) return std::move(checked).error().with_context(path() + ": '" + u.name + "'");
    }
    if (u.keep && *u.keep >= base.size()) {
      return Error(Errc::invalid_argument, path() + ": '" + u.name + "' keeps a member that does not exist");
    }
  }
  for (const auto& name : remove) {
    if (table.find(name) == table.end()) {
      return Error(Errc::invalid_argument, path() + ": cannot remove '" + name + "': no such member");
    }
    removed.insert(name);
  }
  for (const auto& u : put) removed.erase(u.name);
  // What the new generation looks like, for the tree rules: a member that
  // is not a directory has nothing below it, and every parent that exists
  // as a member is a directory.
  auto type_after = [&](std::string_view name) -> std::optional<uint32_t> {
    auto it = std::lower_bound(order.begin(), order.end(), name,
                               [&](size_t i, std::string_view n) { return put[i].name < n; });
    if (it != order.end() && put[*it].name == name) return put[*it].mode & S_IFMT;
    if (removed.count(name) != 0) return std::nullopt;
    auto t = table.find(name);
    if (t == table.end()) return std::nullopt;
    return t->second.e.me_mode & S_IFMT;
  };
  for (const auto& u : put) {
    for (size_t slash = u.name.find('/'); slash != std::string::npos; slash = u.name.find('/', slash + 1)) {
      auto parent = type_after(std::string_view(u.name).substr(0, slash));
      if (parent && *parent != S_IFDIR) {
        return Error(Errc::invalid_argument, path() + ": '" + u.name + "' lies below '" + u.name.substr(0, slash) +
                                                 "', which is not a directory");
      }
    }
    if ((u.mode & S_IFMT) != S_IFDIR) {
      // Anything below it must be going away in this commit.
      const std::string below = u.name + "/";
      for (auto it = table.lower_bound(below); it != table.end() && it->first.compare(0, below.size(), below) == 0;
           ++it) {
        if (removed.count(it->first) == 0) {
          return Error(Errc::invalid_argument,
                       path() + ": '" + it->first + "' lies below '" + u.name + "', which is not a directory");
        }
      }
    }
  }

  MMAR_TRY(lock.still_named());
  const uint64_t committed = file_size;
  CommitResult result;
  result.extents.resize(put.size());
  uint64_t offset = committed;

  // Step 1: data, and the entries of what is put.
  bool needs_full = false;
  for (size_t k = 0; k < order.size(); ++k) {
    const size_t i = order[k];
    const UpdateMember& u = put[i];
    TableEntry t;
    std::memset(&t.e, 0, sizeof t.e);
    if (u.incremental && u.data_fd >= 0 && (u.mode & S_IFMT) == S_IFREG) {
      auto r = append_data(u, offset);
      if (!r.ok()) return rollback(committed, std::move(r).error());
      result.extents[i] = *r;
      const StoredExtent& x = **r;
      t.e.me_data_offset = x.offset;
      t.e.me_stored_size = x.stored_size;
      t.e.me_size = x.size;
      t.e.me_xxh3 = x.xxh3;
      t.e.me_kind = static_cast<uint8_t>(x.kind);
      t.e.me_codec = static_cast<uint8_t>(x.extent_map ? format::EntryCodec::extents : format::EntryCodec::none);
      t.e.me_flags = static_cast<uint16_t>((x.page_aligned ? format::kFlagPageAligned : 0) |
                                           (x.has_btf ? format::kFlagHasBtf : 0));
    } else if (u.keep) {
      auto m = base.at(*u.keep);
      if (!m.ok()) return rollback(committed, std::move(m).error());
      t.e = entry_of(*m);
      if (m->link) {
        auto target = base.at(*m->link);
        if (target.ok()) t.link = std::string(target->name);
      }
    } else {
      std::optional<StoredExtent> x = u.extent;
      if (!x) {
        auto r = append_data(u, offset);
        if (!r.ok()) return rollback(committed, std::move(r).error());
        x = *r;
        result.extents[i] = x;
      }
      if (x) {
        t.e.me_data_offset = x->offset;
        t.e.me_stored_size = x->stored_size;
        t.e.me_size = x->size;
        t.e.me_xxh3 = x->xxh3;
        t.e.me_kind = static_cast<uint8_t>((u.mode & S_IFMT) == S_IFREG ? x->kind : Kind::data);
        t.e.me_flags = static_cast<uint16_t>((x->page_aligned ? format::kFlagPageAligned : 0) |
                                             (x->has_btf && (u.mode & S_IFMT) == S_IFREG ? format::kFlagHasBtf : 0));
      }
      t.e.me_codec =
          static_cast<uint8_t>(x && x->extent_map ? format::EntryCodec::extents : format::EntryCodec::none);
    }
    t.e.me_mode = u.mode;
    t.e.me_mtime_ns = static_cast<uint64_t>(u.mtime_ns);
    t.e.me_link = format::kNoLink;
    {
      auto encoded = attrs::encode(u.attrs);
      if (!encoded.ok()) return rollback(committed, std::move(encoded).error().with_context(u.name));
      t.attrs = std::move(encoded).value();
    }
    if (!t.link.empty()) needs_full = true;  // deltas carry no links
    next_entries.emplace(u.name, std::move(t));
  }
  result.appended = offset - committed;

  // The table after this commit.
  auto next = table;
  uint64_t next_stored = stored_bytes;
  for (const auto& name : removed) {
    auto it = next.find(name);
    next_stored -= it->second.live;
    next.erase(it);
  }
  for (auto& [name, t] : next_entries) {
    auto it = next.find(name);
    t.live = live_of(t.e);
    if (it != next.end()) {
      next_stored -= it->second.live;
      it->second = t;
    } else {
      next.emplace(name, t);
    }
    next_stored += t.live;
  }
  if (next.size() > 0xfffffffeu) return rollback(committed, Error(Errc::limit, path() + ": too many members"));

  // Step 2: the index. This commit's changes merge with the deltas below
  // them while those are no more than twice as large (a binary counter:
  // every change is rewritten O(log n) times, the chain stays short).
  std::map<std::string, std::pair<format::Entry, std::string>> changes;
  for (const auto& name : removed) {
    format::Entry tomb{};
    std::memset(&tomb, 0, sizeof tomb);
    tomb.me_link = format::kNoLink;
    changes.emplace(name, std::make_pair(tomb, std::string()));
  }
  for (const auto& [name, t] : next_entries) changes[name] = std::make_pair(t.e, t.attrs);
  std::vector<Level> next_levels = levels;
  while (!next_levels.empty() && next_levels.back().changes.size() <= 2 * changes.size()) {
    for (auto& [name, e] : next_levels.back().changes) changes.emplace(name, e);  // newer wins
    next_levels.pop_back();
  }
  uint64_t pending = changes.size();
  for (const auto& l : next_levels) pending += l.changes.size();
  if (next_levels.size() + 1 > format::kMaxDeltaDepth || pending > std::max<uint64_t>(64, next.size() / 2) ||
      index_framed) {
    needs_full = true;
  }
  offset = *align_up(offset, 8);
  const uint64_t new_index_offset = offset;
  std::vector<std::byte> index;
  uint32_t flags = 0;
  Level level;
  if (needs_full) {
    index = full_index(next);
  } else {
    index_codec::IndexBuilder b;
    for (const auto& [name, ea] : changes) b.add(name, ea.first, ea.second);
    format::DeltaHeader h{};
    std::memcpy(h.dh_magic, format::kDeltaMagic, sizeof h.dh_magic);
    if (next_levels.empty()) {
      h.dh_prev_offset = full_offset;
      h.dh_prev_size = full_size;
      h.dh_prev_xxh3 = full_xxh3;
      h.dh_prev_count = full_count;
      h.dh_flags = 0;
    } else {
      const Level& prev = next_levels.back();
      h.dh_prev_offset = prev.offset;
      h.dh_prev_size = prev.size;
      h.dh_prev_xxh3 = prev.xxh3;
      h.dh_prev_count = prev.result_count;
      h.dh_flags = format::kDeltaPrevIsDelta;
    }
    h.dh_depth = static_cast<uint32_t>(next_levels.size() + 1);
    h.dh_count = static_cast<uint32_t>(b.count());
    std::vector<std::byte> table_bytes = b.bytes();
    h.dh_names_size = table_bytes.size() - b.count() * format::kEntrySize;
    index = b.delta_bytes(h);
    flags = format::kSbFlagIndexDelta;
    level.offset = new_index_offset;
    level.size = index.size();
    level.xxh3 = XXH3_64bits(index.data(), index.size());
    level.result_count = static_cast<uint32_t>(next.size());
    level.changes = std::move(changes);
  }
  flags |= framed_flags(next, framed2);
  if (auto w = pwrite_full(lock.fd(), index.data(), index.size(), new_index_offset, path()); !w.ok()) {
    return rollback(committed, std::move(w).error());
  }
  // An empty table writes nothing: the file must still reach its offset.
  if (index.empty() && ftruncate(lock.fd(), static_cast<off_t>(new_index_offset)) != 0) {
    return rollback(committed, sys_error("truncate " + path(), errno));
  }
  if (fdatasync(lock.fd()) != 0) return rollback(committed, sys_error("fsync " + path(), errno));

  // Step 3: the other slot, one generation up.
  const uint64_t new_size = new_index_offset + index.size();
  if (auto w = write_superblock(flags, new_index_offset, index, static_cast<uint32_t>(next.size())); !w.ok()) {
    // The slot we wrote may hold a valid superblock for bytes about to be
    // truncated away: clear it, so the current slot stays the one in use.
    const format::Superblock zero{};
    (void)pwrite_full(lock.fd(), &zero, sizeof zero, static_cast<uint64_t>(1 - slot) * format::kSuperblockSize, path());
    return rollback(committed, std::move(w).error());
  }
  file_size = new_size;
  table = std::move(next);
  stored_bytes = next_stored;
  if (needs_full) {
    levels.clear();
    delta_entries = 0;
    full_offset = new_index_offset;
    full_size = index.size();
    full_xxh3 = index_xxh3;
    full_count = static_cast<uint32_t>(table.size());
  } else {
    levels = std::move(next_levels);
    levels.push_back(std::move(level));
    delta_entries = 0;
    for (const auto& l : levels) delta_entries += l.changes.size();
  }
  result.full_index = needs_full;

  // Reclaim superseded data once it outweighs the live data.
  const uint64_t live = stored_bytes + index_size;
  if (options.compact_ratio > 0 && file_size >= options.compact_min_bytes &&
      static_cast<double>(file_size) > options.compact_ratio * static_cast<double>(live)) {
    // The commit is durable whatever happens here: a compaction that fails
    // (a full disk) leaves the archive as committed and is tried again later.
    const uint64_t generation_before = generation;
    if (compact().ok()) {
      result.compacted = true;
    } else if (generation != generation_before) {
      return Error(Errc::io, path() + ": compaction failed after replacing the archive", 0, EIO);
    }
  }
  return result;
}

// Copy the live data into a new file laid out as the writer lays it out
// (name fence, data, one member table), stored bytes copied as they are.
Result<void> ArchiveUpdater::Impl::compact(const std::function<void(uint64_t, uint64_t)>& progress,
                                          IndexStorage index_storage) {
  MMAR_TRY(lock.still_named());
  MMAR_ASSIGN(AtomicFile out, AtomicFile::create(path()));
  // Locked before it is renamed into place: no second writer between.
  MMAR_TRY(WriterLock::lock_fd(out.fd(), path()));
  MMAR_TRY(out.copy_owner_and_mode(lock.fd()));
  std::vector<std::string_view> names;
  names.reserve(table.size());
  for (const auto& [name, t] : table) names.push_back(name);
  bool any_compressed = false;
  for (const auto& [name, te] : table) any_compressed = any_compressed || te.e.me_codec == 1 || te.e.me_codec == 2;
  // The stride for the index store_index() will write (below).
  std::vector<std::byte> fence_block = fence::build(
      names, index_codec::compresses(index_storage, any_compressed) ? fence::kMinStrideCompressed : fence::kMinStride);
  uint64_t offset = *align_up(format::kHeaderAreaSize + fence_block.size(), format::kPackedAlign);
  const uint64_t align = uint64_t{1} << align_log2;
  // (old offset, stored size, codec) -> new offset: entries sharing data
  // (hard links) share it again; entries that only overlap do not.
  struct Placed {
    uint64_t offset, stored_size;
    uint8_t codec;
    uint16_t flags;
  };
  std::map<std::tuple<uint64_t, uint64_t, uint8_t>, Placed> moved;
  // Progress in bytes: each stored range copied, then read back (verify).
  const uint64_t total = 2 * std::max<uint64_t>(stored_bytes, 1);
  uint64_t copied = 0;
  auto report = [&](uint64_t done) {
    if (progress) progress(std::min(done, total), total);
  };
  auto next = table;
  for (auto& [name, t] : next) {
    if (t.e.me_stored_size == 0) continue;
    const uint64_t from = t.e.me_data_offset;
    const auto key = std::make_tuple(from, uint64_t{t.e.me_stored_size}, uint8_t{t.e.me_codec});
    auto done = moved.find(key);
    if (done != moved.end()) {
      t.e.me_data_offset = done->second.offset;
      t.e.me_stored_size = done->second.stored_size;
      t.e.me_codec = done->second.codec;
      // Members of one frame stream share it; each keeps its own BTF flag
      // and its offset in the stream.
      t.e.me_flags = static_cast<uint16_t>((done->second.flags & ~format::kFlagHasBtf) |
                                           (t.e.me_flags & format::kFlagHasBtf));
      continue;
    }
    if (t.e.me_codec == static_cast<uint8_t>(format::EntryCodec::extents)) {
      // An extent map becomes raw bytes again, contiguous (holes kept).
      const uint64_t size = t.e.me_size;
      std::vector<std::byte> map(t.e.me_stored_size);
      if (!pread_full(lock.fd(), map.data(), map.size(), from)) {
        return sys_error("read " + path() + ": member '" + name + "'", errno ? errno : EIO);
      }
      MMAR_ASSIGN(std::vector<format::Extent> xs,
                  index_codec::parse_extent_map(map, size, file_size, path() + ": member '" + name + "'", from));
      const bool page = format::raw_on_page(false, size, align, format::RawWhy::chosen);
      offset = *align_up(offset, page ? align : format::kPackedAlign);
      for (const auto& x : xs) MMAR_TRY(copy_range(lock.fd(), x.ex_physical, out.fd(), offset + x.ex_logical,
                                                   x.ex_length, out.temp_path()));
      t.e.me_data_offset = size == 0 ? 0 : offset;
      t.e.me_stored_size = size;
      t.e.me_codec = static_cast<uint8_t>(format::EntryCodec::none);
      t.e.me_flags = static_cast<uint16_t>((t.e.me_flags & format::kFlagHasBtf) | (page ? format::kFlagPageAligned : 0));
      moved.emplace(key, Placed{t.e.me_data_offset, t.e.me_stored_size, t.e.me_codec, t.e.me_flags});
      offset += size;
      report(copied += t.e.me_stored_size);
      continue;
    }
    uint64_t sums_bytes = 0;
    if ((t.e.me_flags & format::kFlagChunkSums) != 0) {
      // A raw member's chunk checksums end at its data: copied with it (and
      // checked with it when the copy is read back).
      std::byte head[sizeof(format::ChunkSumsHeader)];
      if (!pread_full(lock.fd(), head, sizeof head, from - sizeof head)) {
        return sys_error("read " + path() + ": member '" + name + "'", errno ? errno : EIO);
      }
      MMAR_ASSIGN(chunks::Table ct,
                  chunks::parse_header(head, t.e.me_size, from, path() + ": member '" + name + "'"));
      sums_bytes = from - ct.sums_offset;
    }
    offset = *align_up(offset + sums_bytes, (t.e.me_flags & format::kFlagPageAligned) != 0
                                                 ? align
                                                 : format::packed_align(t.e.me_codec, t.e.me_kind));
    MMAR_TRY(copy_range(lock.fd(), from - sums_bytes, out.fd(), offset - sums_bytes, sums_bytes + t.e.me_stored_size,
                        out.temp_path()));
    t.e.me_data_offset = offset;
    moved.emplace(key, Placed{offset, t.e.me_stored_size, t.e.me_codec, t.e.me_flags});
    offset += t.e.me_stored_size;
    report(copied += t.e.me_stored_size);
  }
  offset = *align_up(offset, 8);
  // The index stored as `mmar create` stores it (compressed when any
  // member is); the next commit after it writes a whole plain table.
  uint32_t flags = framed_flags(next, framed2);
  MMAR_ASSIGN(std::vector<std::byte> index,
              index_codec::store_index(full_index(next), static_cast<uint32_t>(next.size()), index_storage,
                                                any_compressed, flags));
  MMAR_TRY(pwrite_full(out.fd(), index.data(), index.size(), offset, out.temp_path()));
  const uint64_t new_generation = generation + 1;
  format::Superblock sb = index_codec::make_superblock(new_generation, align_log2, flags, offset, index,
                                                       static_cast<uint32_t>(next.size()));
  if (!fence_block.empty()) {
    fence::finish(fence_block, sb.sb_index_xxh3, new_generation);
    MMAR_TRY(pwrite_full(out.fd(), fence_block.data(), fence_block.size(), fence::kOffset, out.temp_path()));
  }
  MMAR_TRY(pwrite_full(out.fd(), &sb, sizeof sb, 0, out.temp_path()));
  MMAR_TRY(pwrite_full(out.fd(), &sb, sizeof sb, format::kSuperblockSize, out.temp_path()));
  const uint64_t size = offset + index.size();
  if (ftruncate(out.fd(), static_cast<off_t>(size)) != 0) return sys_error("truncate " + out.temp_path(), errno);
  {
    // Stored bytes were copied as they are, unchecked: read the copy back
    // (every member's frames and checksum, as `mmar verify` does) before it
    // replaces the archive, so a compaction -- `mmar compact` or the
    // automatic one of a writable mount -- never launders damage it could
    // have noticed, nor installs a copy the reader refuses. The archive is
    // left as committed; the caller reports (or, automatic, retries later).
    MMAR_ASSIGN(Source copy_src, Source::from_fd(out.fd(), path()));
    MMAR_ASSIGN(Archive copy, Archive::open(std::move(copy_src)));
    MMAR_ASSIGN(std::vector<VerifyProblem> problems, copy.verify([&](uint64_t done, uint64_t members) {
      report(total / 2 + (members == 0 ? 0 : static_cast<uint64_t>(static_cast<double>(total / 2) *
                                                                   static_cast<double>(done) /
                                                                   static_cast<double>(members))));
    }));
    if (!problems.empty()) return Error(Errc::checksum, path() + ": not compacted: " + problems.front().message);
  }
  report(total);
  MMAR_ASSIGN(UniqueFd fd, out.commit_keep_fd());
  // From here on the new file is the archive: switch to it.
  MMAR_ASSIGN(WriterLock relocked, WriterLock::adopt(std::move(fd), path()));
  MMAR_ASSIGN(Source src, Source::from_fd(relocked.fd(), path()));
  MMAR_ASSIGN(Archive fresh, Archive::open(std::move(src)));
  lock = std::move(relocked);
  base = std::move(fresh);
  return load();
}

ArchiveUpdater::ArchiveUpdater(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ArchiveUpdater::ArchiveUpdater(ArchiveUpdater&&) noexcept = default;
ArchiveUpdater& ArchiveUpdater::operator=(ArchiveUpdater&&) noexcept = default;
ArchiveUpdater::~ArchiveUpdater() = default;

Result<ArchiveUpdater> ArchiveUpdater::open(const std::string& given, UpdaterOptions options) {
  // Through a symlink: compaction renames over the file it names, not the link.
  MMAR_ASSIGN(std::string path, resolved_path(given));
  MMAR_ASSIGN(WriterLock lock, WriterLock::acquire(path));
  // Read through the locked file itself, never by path again: the path may
  // lead through a filesystem served by the caller.
  MMAR_ASSIGN(Source src, Source::from_fd(lock.fd(), path));
  MMAR_ASSIGN(Archive a, Archive::open(std::move(src)));
  auto impl = std::make_unique<Impl>(std::move(lock), std::move(a), options);
  MMAR_TRY(impl->load());
  return ArchiveUpdater(std::move(impl));
}

const Archive& ArchiveUpdater::base() const { return impl_->base; }
const WriterLock& ArchiveUpdater::lock() const { return impl_->lock; }
uint64_t ArchiveUpdater::generation() const { return impl_->generation; }
uint64_t ArchiveUpdater::file_size() const { return impl_->file_size; }
uint64_t ArchiveUpdater::live_bytes() const { return impl_->stored_bytes + impl_->index_size; }
uint32_t ArchiveUpdater::size() const { return static_cast<uint32_t>(impl_->table.size()); }
std::optional<bool> ArchiveUpdater::is_dir(std::string_view name) const {
  auto it = impl_->table.find(name);
  if (it == impl_->table.end()) return std::nullopt;
  return (it->second.e.me_mode & S_IFMT) == S_IFDIR;
}
Result<CommitResult> ArchiveUpdater::commit(std::vector<UpdateMember> put, const std::vector<std::string>& remove) {
  return impl_->commit(std::move(put), remove);
}
Result<void> ArchiveUpdater::compact(const std::function<void(uint64_t, uint64_t)>& progress,
                                     IndexStorage index) {
  return impl_->compact(progress, index);
}

Result<void> ArchiveUpdater::read_stored(const StoredExtent& x, uint64_t offset, size_t length, void* out) const {
  const int fd = impl_->lock.fd();
  auto* to = static_cast<char*>(out);
  std::memset(to, 0, length);
  if (offset >= x.size) return success();
  length = static_cast<size_t>(std::min<uint64_t>(length, x.size - offset));
  auto read_at = [&](uint64_t from, size_t n, char* into) -> Result<void> {
    if (!pread_full(fd, into, n, from)) return sys_error("read " + impl_->path(), errno ? errno : EIO);
    return success();
  };
  if (!x.extent_map) return read_at(x.offset + offset, length, to);
  std::vector<std::byte> map(x.stored_size);
  MMAR_TRY(read_at(x.offset, map.size(), reinterpret_cast<char*>(map.data())));
  MMAR_ASSIGN(std::vector<format::Extent> xs,
              index_codec::parse_extent_map(map, x.size, impl_->file_size, impl_->path(), x.offset));
  return index_codec::for_each_piece(xs, offset, length, [&](uint64_t physical, uint64_t at, uint64_t n) {
    return read_at(physical, static_cast<size_t>(n), to + at);
  });
}

Result<void> commit_generation(const std::string& path, const Archive& current, std::vector<UpdateMember> members) {
  if (current.format() != Format::mmar) {
    return Error(Errc::invalid_argument, path + ": only mmar archives can be updated in place");
  }
  MMAR_ASSIGN(ArchiveUpdater u, ArchiveUpdater::open(path, {.compact_ratio = 0}));
  if (u.generation() != current.generation()) {
    return Error(Errc::invalid_argument, path + ": changed since it was opened (generation " +
                                             std::to_string(u.generation()) + ", expected " +
                                             std::to_string(current.generation()) + ")");
  }
  std::set<std::string, std::less<>> keep_names;
  for (const auto& m : members) keep_names.insert(m.name);
  std::vector<std::string> remove;
  MMAR_TRY(u.base().for_each([&](const Member& m) -> Result<void> {
    if (keep_names.count(m.name) == 0) remove.emplace_back(m.name);
    return success();
  }));
  MMAR_TRY(u.commit(std::move(members), remove));
  return success();
}

// mmar compact: the archive rewritten by the writer (recompressed as asked),
// under the archive's lock.
Result<WriteStats> compact_archive(const std::string& given, WriteOptions options) {
  MMAR_ASSIGN(std::string path, resolved_path(given));
  MMAR_ASSIGN(WriterLock lock, WriterLock::acquire(path));
  MMAR_ASSIGN(Source src, Source::from_fd(lock.fd(), path));
  MMAR_ASSIGN(Archive a, Archive::open(std::move(src)));
  if (a.format() != Format::mmar) return Error(Errc::invalid_argument, path + ": not an mmar archive");
  if (options.alignment == 0) options.alignment = static_cast<uint32_t>(a.alignment());
  // Members are the writer's inputs as they are: frame streams that already
  // match the options are copied as stored, the rest streamed and stored as
  // the options say. Memory stays bounded; nothing goes through scratch files.
  Writer w(options);
  std::vector<std::pair<std::string, std::string>> links;
  auto copied = a.for_each([&](const Member& m) -> Result<void> {
    const std::string name(m.name);
    if (m.link) {
      MMAR_ASSIGN(Member target, a.at(*m.link));
      links.emplace_back(name, std::string(target.name));
    }
    return w.add_member(name, a, m);
  });
  if (!copied.ok()) return std::move(copied).error();
  for (const auto& [name, target] : links) MMAR_TRY(w.set_link(name, target));
  return w.write(lock);
}

}  // namespace mmar
