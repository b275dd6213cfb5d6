// SPDX-License-Identifier: BSD-2-Clause
// ArchiveProbe: find members of an mmar archive with a few reads and no
// mapping, for a process that asks one question of an archive.
//
// A thin layer over Archive opened without a mapping (its lazy index, see
// reader.cpp): opening reads the first 4 KiB (both superblocks and the name
// fence); a lookup reads the fence's run of entries and their names (two
// reads, kept for later lookups). Entries are decoded and checked by the
// one reader there is; what this adds is members that own their names and
// a count of the reads made.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "mmar/archive.h"

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
  // Over any source (a file read with pread, a remote reader).
  static Result<ArchiveProbe> open(Source source);

  const std::string& path() const { return archive_.name(); }
  uint32_t size() const { return archive_.size(); }
  const Archive& archive() const { return archive_; }
  bool has_fence() const { return archive_.has_name_fence(); }

  // The member with this exact name, or nullopt.
  Result<std::optional<ProbedMember>> find(std::string_view name);
  Result<ProbedMember> at(uint32_t index);
  // Exactly [offset, offset + size) of the file.
  Result<void> read(uint64_t offset, size_t size, void* out);
  // Reads made so far (for tests and benchmarks).
  uint32_t reads() const { return static_cast<uint32_t>(archive_.source().reads()); }

 private:
  explicit ArchiveProbe(Archive a) : archive_(std::move(a)) {}
  Archive archive_;
};

}  // namespace mmar
