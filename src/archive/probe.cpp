// SPDX-License-Identifier: BSD-2-Clause
#include "archive/probe.h"

#include <cstring>

namespace mmar {

Result<ArchiveProbe> ArchiveProbe::open(const std::string& path) {
  MMAR_ASSIGN(Source source, Source::open(path, {.force_pread = true}));
  return open(std::move(source));
}

Result<ArchiveProbe> ArchiveProbe::open(Source source) {
  OpenOptions o;
  o.force_pread = true;
  const std::string name = source.name();
  MMAR_ASSIGN(Archive a, Archive::open(std::move(source), o));
  if (a.format() != Format::mmar) return Error(Errc::unsupported, name + ": not an mmar archive");
  return ArchiveProbe(std::move(a));
}

Result<std::optional<ProbedMember>> ArchiveProbe::find(std::string_view name) {
  auto m = archive_.find(name);
  if (!m.ok()) {
    if (m.error().code() == Errc::not_found) return std::optional<ProbedMember>();
    return std::move(m).error();
  }
  return std::optional<ProbedMember>(ProbedMember(*m, std::string(m->name)));
}

Result<ProbedMember> ArchiveProbe::at(uint32_t index) {
  if (index >= archive_.size()) {
    return Error(Errc::invalid_argument, path() + ": no member " + std::to_string(index));
  }
  MMAR_ASSIGN(Member m, archive_.at(index));
  return ProbedMember(m, std::string(m.name));
}

Result<void> ArchiveProbe::read(uint64_t offset, size_t size, void* out) {
  MMAR_ASSIGN(Bytes b, archive_.source().read(offset, size));
  if (size > 0) std::memcpy(out, b.data(), size);
  return success();
}

}  // namespace mmar
