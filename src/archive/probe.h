// ArchiveProbe: find members of an mmar archive with a few preads and no
// mapping, for a process that asks one question of an archive.
//
// Opening reads the first 4 KiB (both superblocks and the name fence); a
// lookup reads the fence's run of entries and their names (two reads, kept
// for the next lookup in the same run). Without a usable fence (small or
// older archives, another generation's fence) it binary-searches the index
// through 64 KiB blocks. Every entry is checked as Archive checks it, except
// that member data beyond the end of the file shows up as a short read.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "archive/entry.h"
#include "archive/fence.h"
#include "mmar/archive.h"
#include "support/block_reader.h"
#include "support/fd.h"

namespace mmar {

// A Member that owns its name.
class ProbedMember {
 public:
  ProbedMember(Member m, std::string name) : m_(m), name_(std::move(name)) { m_.name = name_; }
  ProbedMember(const ProbedMember& o) : ProbedMember(o.m_, o.name_) {}
  ProbedMember& operator=(const ProbedMember& o) {
    m_ = o.m_;
    name_ = o.name_;
    m_.name = name_;
    return *this;
  }
  const Member& operator*() const { return m_; }
  const Member* operator->() const { return &m_; }

 private:
  Member m_;
  std::string name_;
};

class ArchiveProbe {
 public:
  // Errc::unsupported when the file is not an mmar archive (a plain file,
  // a CTF archive): those are for Archive::open.
  static Result<ArchiveProbe> open(const std::string& path);
  ArchiveProbe(ArchiveProbe&&) noexcept = default;
  ArchiveProbe& operator=(ArchiveProbe&&) noexcept = default;

  const std::string& path() const { return path_; }
  uint32_t size() const { return count_; }
  bool has_fence() const { return fence_.has_value(); }

  // The member with this exact name, or nullopt.
  Result<std::optional<ProbedMember>> find(std::string_view name);
  Result<ProbedMember> at(uint32_t index);
  // Exactly [offset, offset + size) of the file.
  Result<void> read(uint64_t offset, size_t size, void* out);
  // Reads made so far (for tests and benchmarks).
  uint32_t reads() const { return reads_ + (blocks_ ? blocks_->reads() : 0); }

 private:
  ArchiveProbe() = default;
  Result<void> load_run(uint32_t first, uint32_t last);
  Result<std::string_view> run_name(uint32_t index) const;
  Result<ProbedMember> decode(uint32_t index, const format::Entry& e, std::string_view name) const;
  Result<std::optional<ProbedMember>> search_blocks(std::string_view name);

  UniqueFd fd_;
  std::string path_;
  format::Superblock sb_{};
  uint32_t count_ = 0;
  uint64_t names_size_ = 0;
  std::vector<std::byte> head_;  // bytes from offset 0: superblocks and fence
  std::optional<fence::View> fence_;
  // The run last read: entries [run_first_, run_first_ + n) and the names
  // they point at, [run_names_at_, + run_names_.size()) of the name table.
  uint32_t run_first_ = 0;
  std::vector<std::byte> run_entries_;
  uint64_t run_names_at_ = 0;
  std::vector<char> run_names_;
  std::unique_ptr<BlockReader> blocks_;
  uint32_t reads_ = 0;
};

}  // namespace mmar
