// SPDX-License-Identifier: BSD-2-Clause
// btf_find_in_archive: one name lookup in a BTF member of an archive with a
// handful of preads. The member and its NAME.mmnames are found through the
// archive's name fence (ArchiveProbe); NAME.mmnames holds (hash, id, info,
// size, name position) for every named type sorted by a hash seeded with the
// member's checksum, and its entry count follows from its size, so the
// lookup reads the few entries around where the hash says, then the name
// itself to compare. Anything unusual goes to the full path (Archive +
// BtfSet), which answers every case.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "archive/probe.h"
#include "btf/records.h"
#include "btf/stored_index.h"
#include "mmar/btf.h"

namespace mmar {

namespace {

constexpr uint64_t kEntry = sizeof(btf_index::NameEntry);
constexpr uint64_t kHeader = sizeof(btf_index::NamesHeader);

enum class Outcome { found, absent, fallback };

struct Searched {
  Outcome outcome = Outcome::fallback;
  BtfFoundType found;
};

// A raw, uncompressed BTF member.
bool plain_btf(const Member& m) { return m.is_regular() && m.kind == Kind::btf && m.codec == Codec::none; }

// The stored name table of `btf`, if it is there and usable.
Result<std::optional<ProbedMember>> name_table(ArchiveProbe& probe, const Member& btf) {
  MMAR_ASSIGN(auto nm, probe.find(std::string(btf.name) + btf_index::kNamesSuffix));
  if (nm && (*nm)->is_regular() && (*nm)->kind == Kind::btf_index && (*nm)->codec == Codec::none &&
      (*nm)->link == btf.index && (*nm)->size >= kHeader && ((*nm)->size - kHeader) % kEntry == 0) {
    return nm;
  }
  return std::optional<ProbedMember>();
}

Result<Searched> search(ArchiveProbe& probe, const Member& btf, const Member& nm, const Member* base,
                        std::string_view name, std::optional<BtfKind> kind) {
  Searched r;
  const uint64_t n = (nm.size - kHeader) / kEntry;
  const uint64_t h = btf_index::name_hash(name, btf.xxh3);
  auto entries_at = [&](uint64_t first, uint64_t count, std::vector<btf_index::NameEntry>& out) -> Result<void> {
    out.resize(count);
    if (count == 0) return success();
    return probe.read(nm.data_offset + kHeader + first * kEntry, count * kEntry, out.data());
  };
  // Where the first entry with hash >= h is: the number of the n uniform
  // hashes below h is binomial(n, p), p = h / 2^64, so a window of 1.5
  // standard deviations either side of n p holds it ~87% of the time;
  // otherwise the window moves towards it.
  std::vector<btf_index::NameEntry> w;
  const double p = static_cast<double>(h) / 18446744073709551616.0;
  const double sd = std::sqrt(static_cast<double>(n) * p * (1 - p));
  const uint64_t half = std::max<uint64_t>(32, static_cast<uint64_t>(1.5 * sd) + 1);
  const uint64_t guess = std::min<uint64_t>(n, static_cast<uint64_t>(p * static_cast<double>(n)));
  uint64_t wlo = guess > half ? guess - half : 0;
  uint64_t whi = std::min(n, guess + half);
  bool bracketed = false;
  for (int step = 0; step < 8 && !bracketed; ++step) {
    MMAR_TRY(entries_at(wlo, whi - wlo, w));
    const bool low_ok = wlo == 0 || (!w.empty() && w.front().hash < h);
    const bool high_ok = whi == n || (!w.empty() && w.back().hash > h);
    bracketed = low_ok && high_ok;
    if (!low_ok) {
      whi = wlo + 1;
      wlo = wlo > 2 * half ? wlo - 2 * half : 0;
    } else if (!high_ok) {
      wlo = whi - 1;
      whi = std::min(n, whi + 2 * half);
    }
  }
  if (!bracketed) {
    // Binary search with single-entry reads (a skewed or damaged table).
    btf_index::NameEntry e;
    uint64_t lo = 0, hi = n;
    while (lo < hi) {
      const uint64_t mid = lo + (hi - lo) / 2;
      MMAR_TRY(probe.read(nm.data_offset + kHeader + mid * kEntry, kEntry, &e));
      if (e.hash < h) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    uint64_t end = lo;
    while (end < n && end - lo < 64) {
      MMAR_TRY(probe.read(nm.data_offset + kHeader + end * kEntry, kEntry, &e));
      if (e.hash != h) break;
      ++end;
    }
    MMAR_TRY(entries_at(lo, end - lo, w));
  }
  std::string want(name);
  want.push_back('\0');
  std::string got(want.size(), '\0');
  for (const btf_index::NameEntry& e : w) {
    if (e.hash != h) continue;
    const uint32_t info = e.info;
    // A record the checker refuses is Btf's to report (the full path does).
    if (!btf_info_problem(info).empty()) return r;
    const auto k = static_cast<BtfKind>((info >> 24) & 0x1f);
    if (kind && k != *kind) continue;
    const Member* holder = &btf;
    uint64_t at = e.name_at;
    if ((at & btf_index::kNameInBase) != 0) {
      if (base == nullptr) return r;  // a base string in a base BTF: not ours
      holder = base;
      at &= ~uint64_t{btf_index::kNameInBase};
    }
    if (!in_bounds(at, want.size(), holder->size)) return r;
    MMAR_TRY(probe.read(holder->data_offset + at, want.size(), got.data()));
    if (got == want) {
      r.outcome = Outcome::found;
      r.found = BtfFoundType{e.id, k, e.size_or_type, static_cast<uint16_t>(info & 0xffff), std::string(name)};
      return r;
    }
  }
  // Not there: trust that only if the table is the one for these bytes.
  btf_index::NamesHeader hd;
  MMAR_TRY(probe.read(nm.data_offset, sizeof hd, &hd));
  if (std::memcmp(hd.magic, btf_index::kNamesMagic, 8) == 0 && hd.binding == btf.xxh3) r.outcome = Outcome::absent;
  return r;
}

Result<BtfFoundType> full_path(const std::string& path, std::string_view member, std::string_view name,
                               std::optional<BtfKind> kind, BtfLookupTrace& trace) {
  trace.full_path = true;
  MMAR_ASSIGN(Archive a, Archive::open(path));
  BtfSet set(std::move(a));
  MMAR_ASSIGN(Btf btf, set.open(member));
  MMAR_ASSIGN(BtfType t, btf.find(name, kind));
  return BtfFoundType{t.id(), t.kind(), t.size(), t.vlen(), std::string(name)};
}

Error not_found(const std::string& path, std::string_view member, std::string_view name,
                std::optional<BtfKind> kind) {
  return Error(Errc::not_found, path + ":" + std::string(member) + ": no type named '" + std::string(name) + "'" +
                                    (kind ? std::string(" of kind ") + btf_kind_name(*kind) : ""));
}

}  // namespace

namespace {

Result<BtfFoundType> find_fast(const std::string& path, std::string_view member, std::string_view name,
                               std::optional<BtfKind> kind, BtfLookupTrace& trace) {
  auto opened = ArchiveProbe::open(path);
  if (!opened.ok()) {
    if (opened.error().code() == Errc::unsupported) return full_path(path, member, name, kind, trace);
    return std::move(opened).error();
  }
  ArchiveProbe& probe = *opened;
  struct CountReads {
    ArchiveProbe& p;
    BtfLookupTrace& t;
    ~CountReads() { t.reads = p.reads(); }
  } count{probe, trace};
  MMAR_ASSIGN(auto m, probe.find(member));
  if (!m) return Error(Errc::not_found, path + ": no member '" + std::string(member) + "'");
  if (!plain_btf(**m)) return full_path(path, member, name, kind, trace);
  MMAR_ASSIGN(auto names, name_table(probe, **m));
  if (!names) return full_path(path, member, name, kind, trace);
  std::optional<ProbedMember> base;
  if ((*m)->link) {
    MMAR_ASSIGN(ProbedMember b, probe.at(*(*m)->link));
    if (!plain_btf(*b) || b->link) return full_path(path, member, name, kind, trace);
    MMAR_ASSIGN(auto base_names, name_table(probe, *b));
    if (!base_names) return full_path(path, member, name, kind, trace);
    // Btf::find answers from the base first.
    MMAR_ASSIGN(Searched in_base, search(probe, *b, **base_names, nullptr, name, kind));
    if (in_base.outcome == Outcome::found) return in_base.found;
    if (in_base.outcome == Outcome::fallback) return full_path(path, member, name, kind, trace);
    base = std::move(b);
  }
  MMAR_ASSIGN(Searched own, search(probe, **m, **names, base ? &**base : nullptr, name, kind));
  if (own.outcome == Outcome::found) return own.found;
  if (own.outcome == Outcome::fallback) return full_path(path, member, name, kind, trace);
  return not_found(path, member, name, kind);
}

}  // namespace

Result<BtfFoundType> btf_find_in_archive(const std::string& path, std::string_view member, std::string_view name,
                                         std::optional<BtfKind> kind, BtfLookupTrace* trace) {
  BtfLookupTrace local;
  return find_fast(path, member, name, kind, trace != nullptr ? *trace : local);
}

}  // namespace mmar
