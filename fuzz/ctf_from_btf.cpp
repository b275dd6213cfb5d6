// SPDX-License-Identifier: BSD-2-Clause
// libFuzzer target: BTF -> CTF (ctf_convert_btf, and under it CtfBuilder).
// The input is base BTF; whatever validates must convert. Invariants:
//  - the converter writes nothing its own reader refuses: every dict it
//    produces opens (the children on the parent), with the type count the
//    conversion reports;
//  - every BTF type the map names is a type of the parent, and every type
//    of every dict answers name, size, alignment and kind without crashing.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
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
  auto btf = mmar::Btf::parse(copy(data, size), "fuzz", mmar::BtfOpenOptions{.validate = true});
  if (!btf.ok() || btf->is_split()) return 0;
  auto r = mmar::ctf_convert_btf(*btf, {});
  if (!r.ok()) {
    // Only limits of the CTF format (or a type tag chain past 64) refuse a
    // valid BTF.
    if (r.error().code() != mmar::Errc::invalid_argument && r.error().code() != mmar::Errc::malformed) std::abort();
    return 0;
  }
  if (r->dicts.size() != 2) std::abort();
  std::optional<mmar::CtfDict> parent;
  uint32_t types = 0;
  for (auto& d : r->dicts) {
    mmar::CtfOpenOptions o;
    if (parent) o.parent = &*parent;
    auto dict = mmar::CtfDict::open(copy(reinterpret_cast<const uint8_t*>(d.bytes.data()), d.bytes.size()), d.name, o);
    if (!dict.ok()) std::abort();
    types += dict->type_count();
    for (uint32_t index = 1; index <= dict->type_count() && index <= 4096; ++index) {
      const uint32_t id = dict->id_of_index(index);
      if (!dict->type(id).ok()) std::abort();
      (void)dict->type_name(id);
      (void)dict->type_size(id);
      (void)dict->type_align(id);
      (void)dict->type_kind(id);
    }
    if (!parent) parent = *dict;
  }
  if (types != r->types) std::abort();
  for (uint32_t id : r->base_type_map) {
    if (id != 0 && !parent->type(id).ok()) std::abort();
  }
  return 0;
}
