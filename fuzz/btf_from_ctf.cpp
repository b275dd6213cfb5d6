// SPDX-License-Identifier: BSD-2-Clause
// libFuzzer target: CTF to BTF (btf_convert_ctf, what `mmar btf from-ctf`
// runs) on every dict that ctf_open_bytes opens. Invariants, not just "no
// crash":
//  - a conversion that succeeds gives BTF our reader opens and validates,
//    whose raw dump succeeds and whose C dump succeeds or refuses as
//    malformed (never crashes);
//  - every named struct and union among the dict's first types has a BTF
//    struct or union of that name and size;
//  - the conversion is deterministic (the same bytes twice).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "mmar/btf.h"
#include "mmar/ctf.h"

namespace {

mmar::Bytes copy(const uint8_t* data, size_t size) {
  std::vector<std::byte> v(size);
  if (size != 0) std::memcpy(v.data(), data, size);
  return mmar::Bytes::from_vector(std::move(v));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = mmar::ctf_open_bytes(copy(data, size), "fuzz");
  if (!file.ok()) return 0;
  for (const auto& e : file->dicts) {
    const mmar::CtfDict& d = e.dict;
    auto r = mmar::btf_convert_ctf(d);
    if (!r.ok()) continue;
    auto again = mmar::btf_convert_ctf(d);
    if (!again.ok() || again->btf != r->btf) std::abort();
    auto btf = mmar::Btf::parse(mmar::Bytes::from_vector(r->btf), "converted", mmar::BtfOpenOptions{.validate = true});
    if (!btf.ok()) std::abort();
    std::string out;
    if (!mmar::btf_dump_raw(*btf, out).ok()) std::abort();
    out.clear();
    auto c = mmar::btf_dump_c(*btf, out);
    if (!c.ok() && c.error().code() != mmar::Errc::malformed) std::abort();
    for (uint32_t index = 1; index <= d.type_count() && index <= 512; ++index) {
      auto t = d.type(d.id_of_index(index));
      if (!t.ok()) std::abort();
      if ((t->kind != mmar::CtfKind::struct_ && t->kind != mmar::CtfKind::union_) || t->name.empty()) continue;
      const auto kind = t->kind == mmar::CtfKind::struct_ ? mmar::BtfKind::struct_ : mmar::BtfKind::union_;
      auto found = btf->find_all(t->name, kind);
      if (!found.ok()) std::abort();
      bool sized = false;
      for (const auto& b : *found) sized = sized || b.size() == t->size;
      if (!sized) std::abort();
    }
  }
  return 0;
}
