// btf_find_in_archive: one name lookup in a BTF member of an archive with a
// handful of preads. The member and its NAME.mmnames are found through the
// archive's name fence (ArchiveProbe); NAME.mmnames holds (hash, id, info,
// size, name position) for every named type sorted by a hash seeded with the
// member's checksum, and its entry count follows from its size, so the
// lookup reads the few entries around where the hash says, then the name
// itself to compare. Anything unusual goes to the full path (Archive +
// BtfSet), which answers every case.
#include <algorithm>
#include <cstring>

#include "archive/probe.h"
#include "btf/stored_index.h"
#include "mmar/btf.h"

namespace mmar {

namespace {

constexpr uint64_t kEntry = sizeof(btf_index::NameEntry);
constexpr uint64_t kHeader = sizeof(btf_index::NamesHeader);
// Entries read around the interpolated position (~4 KiB).
constexpr uint64_t kWindow = 168;

enum class Outcome { found, absent, fallback };

struct Searched {
  Outcome outcome = Outcome::fallback;
  BtfFoundType found;
};

// A raw, uncompressed BTF member.
bool plain_btf(const Member& m) { return m.is_regular() && m.kind == Kind::btf && m.codec == Codec::none; }

Result<Searched> search(ArchiveProbe& probe, const Member& btf, const Member* base, std::string_view name,
                        std::optional<BtfKind> kind) {
  Searched r;
  MMAR_ASSIGN(auto names_member, probe.find(std::string(btf.name) + btf_index::kNamesSuffix));
  if (!names_member) return r;
  const Member& nm = **names_member;
  if (!nm.is_regular() || nm.kind != Kind::btf_index || nm.codec != Codec::none || nm.link != btf.index ||
      nm.size < kHeader || (nm.size - kHeader) % kEntry != 0) {
    return r;
  }
  const uint64_t n = (nm.size - kHeader) / kEntry;
  const uint64_t h = btf_index::name_hash(name, btf.xxh3);
  auto entries_at = [&](uint64_t first, uint64_t count, std::vector<btf_index::NameEntry>& out) -> Result<void> {
    out.resize(count);
    if (count == 0) return success();
    return probe.read(nm.data_offset + kHeader + first * kEntry, count * kEntry, out.data());
  };
  // The first entry with hash >= h lies in [lo, hi]; the hashes are
  // uniform, so it is almost always within the window around n * h / 2^64.
  std::vector<btf_index::NameEntry> w;
  uint64_t lo = 0, hi = n;
  __extension__ using u128 = unsigned __int128;
  const uint64_t guess = static_cast<uint64_t>((static_cast<u128>(h) * n) >> 64);
  uint64_t wlo = guess > kWindow / 2 ? guess - kWindow / 2 : 0;
  uint64_t whi = std::min(n, wlo + kWindow);
  wlo = whi > kWindow ? std::min(wlo, whi - kWindow) : 0;
  MMAR_TRY(entries_at(wlo, whi - wlo, w));
  const bool bracketed = (wlo == 0 || w.front().hash < h) && (whi == n || w.back().hash > h);
  if (!bracketed) {
    // Binary search with single-entry reads (a skewed or damaged table).
    btf_index::NameEntry e;
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
    wlo = lo;
    MMAR_TRY(entries_at(lo, end - lo, w));
  }
  std::string want(name);
  want.push_back('\0');
  std::string got(want.size(), '\0');
  for (const btf_index::NameEntry& e : w) {
    if (e.hash != h) continue;
    const uint32_t info = e.info;
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
                               std::optional<BtfKind> kind) {
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

Result<BtfFoundType> btf_find_in_archive(const std::string& path, std::string_view member, std::string_view name,
                                         std::optional<BtfKind> kind) {
  auto opened = ArchiveProbe::open(path);
  if (!opened.ok()) {
    if (opened.error().code() == Errc::unsupported) return full_path(path, member, name, kind);
    return std::move(opened).error();
  }
  ArchiveProbe& probe = *opened;
  MMAR_ASSIGN(auto m, probe.find(member));
  if (!m) return Error(Errc::not_found, path + ": no member '" + std::string(member) + "'");
  if (!plain_btf(**m)) return full_path(path, member, name, kind);
  std::optional<ProbedMember> base;
  if ((*m)->link) {
    MMAR_ASSIGN(ProbedMember b, probe.at(*(*m)->link));
    if (!plain_btf(*b) || b->link) return full_path(path, member, name, kind);
    base = std::move(b);
    // Btf::find answers from the base first.
    MMAR_ASSIGN(Searched in_base, search(probe, **base, nullptr, name, kind));
    if (in_base.outcome == Outcome::found) return in_base.found;
    if (in_base.outcome == Outcome::fallback) return full_path(path, member, name, kind);
  }
  MMAR_ASSIGN(Searched own, search(probe, **m, base ? &**base : nullptr, name, kind));
  if (own.outcome == Outcome::found) return own.found;
  if (own.outcome == Outcome::fallback) return full_path(path, member, name, kind);
  return not_found(path, member, name, kind);
}

}  // namespace mmar
