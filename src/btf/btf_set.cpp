// SPDX-License-Identifier: BSD-2-Clause
// BTF members of an archive, split members resolved onto their bases.
#include <mutex>
#include <vector>

#include "mmar/btf.h"
#include "btf/stored_index.h"

#include <string>

namespace mmar {

struct BtfSet::Impl {
  Archive archive;
  mutable std::mutex mu;
  mutable std::vector<std::optional<Btf>> cache;  // by member index
  explicit Impl(Archive a) : archive(std::move(a)), cache(archive.size()) {}

  Result<Btf> open(const Member& m, int depth) const {
    {
      std::lock_guard lock(mu);
      if (cache[m.index]) return *cache[m.index];
    }
    if (depth > 8)
      return Error(Errc::malformed, archive.name() + ": member '" + std::string(m.name) + "': base chain too long");
    MMAR_ASSIGN(Bytes bytes, archive.read(m));
    std::string name = archive.name() + ":" + std::string(m.name);
    Result<Btf> btf = Error(Errc::invalid_argument, "");
    std::optional<Btf> base;
    if (m.link) {
      MMAR_ASSIGN(Member base_member, archive.at(*m.link));
      MMAR_ASSIGN(base, open(base_member, depth + 1));
    }
    // A stored index (NAME.mmidx + NAME.mmnames) made for exactly these bytes.
    auto idx = archive.find(std::string(m.name) + btf_index::kOffsetsSuffix);
    auto names = archive.find(std::string(m.name) + btf_index::kNamesSuffix);
    auto usable = [&](const Result<Member>& x) { return x.ok() && x->kind == Kind::btf_index && x->link == m.index; };
    if (usable(idx) && usable(names) && m.has_checksum) {
      MMAR_ASSIGN(Bytes offsets, archive.read(*idx));
      MMAR_ASSIGN(Bytes name_table, archive.read(*names));
      btf = Btf::parse_indexed(std::move(bytes), std::move(name), std::move(offsets), std::move(name_table), m.xxh3,
                               base ? &*base : nullptr);
    } else if (base) {
      btf = Btf::parse_split(std::move(bytes), std::move(name), *base);
    } else {
      btf = Btf::parse(std::move(bytes), std::move(name));
    }
    if (!btf.ok()) return btf;
    std::lock_guard lock(mu);
    if (!cache[m.index]) cache[m.index] = *btf;
    return *cache[m.index];
  }
};

BtfSet::BtfSet(Archive archive) : impl_(std::make_unique<Impl>(std::move(archive))) {}
BtfSet::~BtfSet() = default;
BtfSet::BtfSet(BtfSet&&) noexcept = default;
BtfSet& BtfSet::operator=(BtfSet&&) noexcept = default;
const Archive& BtfSet::archive() const { return impl_->archive; }
Result<Btf> BtfSet::open(const Member& member) const { return impl_->open(member, 0); }
Result<Btf> BtfSet::open(std::string_view member_name) const {
  MMAR_ASSIGN(Member m, impl_->archive.find(member_name));
  return impl_->open(m, 0);
}

}  // namespace mmar
