#include "archive/probe.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "support/checked.h"
#include "support/io.h"

namespace mmar {

namespace {

constexpr uint64_t kHeadRead = 4096;
// A run's names are read at once when they span at most this much.
constexpr uint64_t kMaxRunNames = 256 * 1024;
// Runs longer than this (a fence over very long names has few keys) are
// searched through blocks instead of read whole.
constexpr uint32_t kMaxRunEntries = 4096;

Error truncated(const std::string& path, uint64_t offset, size_t size) {
  return Error(Errc::malformed,
               path + ": truncated: " + std::to_string(size) + " bytes at offset " + std::to_string(offset) +
                   " lie past the end of the file",
               offset);
}

}  // namespace

Result<ArchiveProbe> ArchiveProbe::open(const std::string& path) {
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) return sys_error(path, errno);
  ArchiveProbe p;
  p.fd_ = UniqueFd(raw);
  p.path_ = path;
  p.head_.resize(kHeadRead);
  ssize_t got;
  do {
    got = ::pread(raw, p.head_.data(), kHeadRead, 0);
  } while (got < 0 && errno == EINTR);
  if (got < 0) return sys_error("read " + path, errno);
  ++p.reads_;
  p.head_.resize(static_cast<size_t>(got));
  const bool magic0 = p.head_.size() >= 8 && std::memcmp(p.head_.data(), format::kMagic, 8) == 0;
  const bool magic1 = p.head_.size() >= format::kHeaderAreaSize &&
                      std::memcmp(p.head_.data() + format::kSuperblockSize, format::kMagic, 8) == 0;
  if (!magic0 && !magic1) return Error(Errc::unsupported, path + ": not an mmar archive");
  if (p.head_.size() < format::kHeaderAreaSize) {
    return Error(Errc::malformed, path + ": truncated: smaller than the 128-byte header", 0);
  }
  // The file's size is not known here (no fstat): an index or member past
  // its end is found by the short read that tries to read it.
  MMAR_ASSIGN(SuperblockChoice c, choose_superblock(path, p.head_.data(), ~uint64_t{0}));
  if ((c.sb.sb_flags & format::kSbFlagIndexDelta) != 0) {
    // Updated in place: the index is a chain of deltas to merge, which is
    // Archive::open's work (callers take the full path on unsupported).
    return Error(Errc::unsupported, path + ": index deltas (an archive updated in place)");
  }
  p.sb_ = c.sb;
  p.count_ = c.sb.sb_member_count;
  p.names_size_ = c.names_size;
  std::span<const std::byte> area(p.head_.data() + fence::kOffset, p.head_.size() - fence::kOffset);
  const uint32_t claimed = fence::View::claimed_size(area);
  if (claimed > area.size() && claimed <= 64 * 1024) {
    // A fence larger than the first read (not written by mmar, which keeps
    // it inside 4 KiB): read the rest.
    const size_t had = p.head_.size();
    p.head_.resize(fence::kOffset + claimed);
    if (p.read(had, p.head_.size() - had, p.head_.data() + had).ok()) {
      area = std::span<const std::byte>(p.head_.data() + fence::kOffset, claimed);
    } else {
      p.head_.resize(had);
      area = {};
    }
  }
  // The checksum is left to verify(): find() proves every answer from the
  // entries around the run, so a damaged fence costs reads, never answers.
  p.fence_ = fence::View::parse(area, p.sb_, false);
  return p;
}

Result<void> ArchiveProbe::read(uint64_t offset, size_t size, void* out) {
  ++reads_;
  if (!pread_full(fd_.get(), out, size, offset)) {
    if (errno != 0) return sys_error("read " + path_, errno);
    return truncated(path_, offset, size);
  }
  return success();
}

Result<ProbedMember> ArchiveProbe::decode(uint32_t index, const format::Entry& e, std::string_view name) const {
  const uint64_t entry_at = sb_.sb_index_offset + uint64_t{index} * format::kEntrySize;
  EntryContext ctx{path_, count_, ~uint64_t{0}, uint64_t{1} << sb_.sb_align_log2, entry_at};
  MMAR_ASSIGN(Member m, decode_entry(e, index, name, ctx));
  return ProbedMember(m, std::string(name));
}

Result<void> ArchiveProbe::load_run(uint32_t first, uint32_t last) {
  const uint64_t n = last - first;
  std::vector<std::byte> entries(n * format::kEntrySize);
  MMAR_TRY(read(sb_.sb_index_offset + uint64_t{first} * format::kEntrySize, entries.size(), entries.data()));
  // The names of these entries: with a writer's sorted name table they are
  // adjacent, so one read covers them.
  uint64_t lo = ~uint64_t{0}, hi = 0;
  for (uint64_t i = 0; i < n; ++i) {
    auto e = load<format::Entry>(entries.data() + i * format::kEntrySize);
    if (e.me_name_len == 0 || !in_bounds(e.me_name_offset, e.me_name_len, names_size_)) continue;  // decode() reports
    lo = std::min<uint64_t>(lo, e.me_name_offset);
    hi = std::max<uint64_t>(hi, uint64_t{e.me_name_offset} + e.me_name_len);
  }
  run_first_ = first;
  run_entries_ = std::move(entries);
  run_names_.clear();
  run_names_at_ = 0;
  if (lo < hi && hi - lo <= kMaxRunNames) {
    run_names_.resize(hi - lo);
    const uint64_t names_start = sb_.sb_index_offset + uint64_t{count_} * format::kEntrySize;
    MMAR_TRY(read(names_start + lo, run_names_.size(), run_names_.data()));
    run_names_at_ = lo;
  }
  return success();
}

Result<std::string_view> ArchiveProbe::run_name(uint32_t index) const {
  auto e = load<format::Entry>(run_entries_.data() + uint64_t{index - run_first_} * format::kEntrySize);
  const uint64_t off = e.me_name_offset, len = e.me_name_len;
  if (len == 0 || !in_bounds(off, len, names_size_) || off < run_names_at_ ||
      !in_bounds(off - run_names_at_, len, run_names_.size())) {
    return Error(Errc::malformed,
                 path_ + ": member " + std::to_string(index) + ": name [" + std::to_string(off) + ", +" +
                     std::to_string(len) + ") outside the name table (" + std::to_string(names_size_) + " bytes)",
                 sb_.sb_index_offset + uint64_t{index} * format::kEntrySize + 40);
  }
  return std::string_view(run_names_.data() + (off - run_names_at_), len);
}

Result<std::optional<ProbedMember>> ArchiveProbe::find(std::string_view name) {
  if (count_ == 0) return std::optional<ProbedMember>();
  if (fence_ && fence_->stride() <= kMaxRunEntries) {
    auto [lo, hi] = fence_->run(name);
    // The run plus one entry on each side, to prove absence.
    const uint32_t first = lo > 0 ? lo - 1 : 0;
    const uint32_t last = std::min<uint64_t>(uint64_t{hi} + 1, count_);
    const uint32_t run_n = static_cast<uint32_t>(run_entries_.size() / format::kEntrySize);
    if (run_entries_.empty() || first < run_first_ || last > run_first_ + run_n) MMAR_TRY(load_run(first, last));
    uint32_t a = lo, b = hi;
    while (a < b) {
      const uint32_t mid = a + (b - a) / 2;
      MMAR_ASSIGN(std::string_view n, run_name(mid));
      if (n < name) {
        a = mid + 1;
      } else {
        b = mid;
      }
    }
    if (a < hi) {
      MMAR_ASSIGN(std::string_view n, run_name(a));
      if (n == name) {
        auto e = load<format::Entry>(run_entries_.data() + uint64_t{a - run_first_} * format::kEntrySize);
        MMAR_ASSIGN(ProbedMember m, decode(a, e, n));
        return std::optional<ProbedMember>(std::move(m));
      }
    }
    // Absent if the neighbours of the run bracket the name; otherwise the
    // fence is wrong (it passed its checksum, so it was written wrong):
    // search without it.
    bool below = lo == 0, above = hi == count_;
    if (!below) {
      MMAR_ASSIGN(std::string_view n, run_name(lo - 1));
      below = n < name;
    }
    if (!above) {
      MMAR_ASSIGN(std::string_view n, run_name(hi));
      above = name < n;
    }
    if (below && above) return std::optional<ProbedMember>();
  }
  return search_blocks(name);
}

Result<std::optional<ProbedMember>> ArchiveProbe::search_blocks(std::string_view name) {
  if (!blocks_) {
    struct stat st {};
    if (fstat(fd_.get(), &st) != 0) return sys_error("stat " + path_, errno);
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    if (!in_bounds(sb_.sb_index_offset, sb_.sb_index_size, size)) {
      return Error(Errc::malformed, path_ + ": index is not inside the file (" + std::to_string(size) + " bytes)",
                   sb_.sb_index_offset);
    }
    blocks_ = std::make_unique<BlockReader>(fd_.get(), size);
  }
  const uint64_t names_start = sb_.sb_index_offset + uint64_t{count_} * format::kEntrySize;
  std::string buf;
  auto entry_at = [&](uint32_t i, format::Entry& e) -> Result<void> {
    if (!blocks_->read(sb_.sb_index_offset + uint64_t{i} * format::kEntrySize, sizeof e, &e)) {
      return sys_error("read " + path_, errno != 0 ? errno : EIO);
    }
    return success();
  };
  auto name_of = [&](uint32_t i, const format::Entry& e) -> Result<std::string_view> {
    if (e.me_name_len == 0 || !in_bounds(e.me_name_offset, e.me_name_len, names_size_)) {
      return Error(Errc::malformed, path_ + ": member " + std::to_string(i) + ": name outside the name table",
                   sb_.sb_index_offset + uint64_t{i} * format::kEntrySize + 40);
    }
    buf.resize(e.me_name_len);
    if (!blocks_->read(names_start + e.me_name_offset, buf.size(), buf.data())) {
      return sys_error("read " + path_, errno != 0 ? errno : EIO);
    }
    return std::string_view(buf);
  };
  uint32_t lo = 0, hi = count_;
  format::Entry e{};
  while (lo < hi) {
    const uint32_t mid = lo + (hi - lo) / 2;
    MMAR_TRY(entry_at(mid, e));
    MMAR_ASSIGN(std::string_view n, name_of(mid, e));
    if (n < name) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == count_) return std::optional<ProbedMember>();
  MMAR_TRY(entry_at(lo, e));
  MMAR_ASSIGN(std::string_view n, name_of(lo, e));
  if (n != name) return std::optional<ProbedMember>();
  MMAR_ASSIGN(ProbedMember m, decode(lo, e, n));
  return std::optional<ProbedMember>(std::move(m));
}

Result<ProbedMember> ArchiveProbe::at(uint32_t index) {
  if (index >= count_) {
    return Error(Errc::invalid_argument, path_ + ": no member " + std::to_string(index));
  }
  const uint32_t run_n = static_cast<uint32_t>(run_entries_.size() / format::kEntrySize);
  if (!run_entries_.empty() && index >= run_first_ && index < run_first_ + run_n) {
    auto e = load<format::Entry>(run_entries_.data() + uint64_t{index - run_first_} * format::kEntrySize);
    auto n = run_name(index);
    if (n.ok()) return decode(index, e, *n);
  }
  // One entry and its name, leaving the cached run as it is.
  format::Entry e;
  MMAR_TRY(read(sb_.sb_index_offset + uint64_t{index} * format::kEntrySize, sizeof e, &e));
  if (e.me_name_len == 0 || !in_bounds(e.me_name_offset, e.me_name_len, names_size_)) {
    return Error(Errc::malformed, path_ + ": member " + std::to_string(index) + ": name outside the name table",
                 sb_.sb_index_offset + uint64_t{index} * format::kEntrySize + 40);
  }
  std::string name(e.me_name_len, '\0');
  MMAR_TRY(read(sb_.sb_index_offset + uint64_t{count_} * format::kEntrySize + e.me_name_offset, name.size(),
                name.data()));
  return decode(index, e, name);
}

}  // namespace mmar
