// SPDX-License-Identifier: BSD-2-Clause
// libFuzzer target: CTF dicts, archives and ELF objects with a .ctf section
// (ctf_open_bytes: the same entry `mmar ctf dump` uses). Invariants, not
// just "no crash":
//  - a dict opens lazily (the header only): lookups by name and ID on it
//    never crash, whatever its records hold (errors are values);
//  - whatever validates dumps (objdump-exact text), unless the dump is over
//    its size limit; what does not validate does not dump;
//  - every type of every dict answers type(), and its name, size, alignment
//    and kind never crash; a type's ID resolves back to a record of the same
//    kind; a named root struct/union/enum/typedef is found by name at a type
//    of that name;
//  - the dump is deterministic (a second open of the same bytes dumps the
//    same text);
//  - the same bytes as an Archive (a CTF archive, a plain dict or ELF, an
//    mmar archive of dicts) iterate as dicts (CtfArchive) without crashing,
//    and a dict found by names() opens by that name.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "mmar/ctf.h"

namespace {

mmar::Bytes copy(const uint8_t* data, size_t size) {
  std::vector<std::byte> v(size);
  if (size != 0) std::memcpy(v.data(), data, size);
  return mmar::Bytes::from_vector(std::move(v));
}

}  // namespace

static void typed_iteration(const uint8_t* data, size_t size) {
  mmar::OpenOptions o;
  o.plain_data = true;
  auto archive =
      mmar::Archive::open(mmar::Source::take(std::vector<std::byte>(reinterpret_cast<const std::byte*>(data),
                                                                    reinterpret_cast<const std::byte*>(data) + size),
                                             "fuzz"),
                          o);
  if (!archive.ok()) return;
  auto dicts = mmar::CtfArchive::open(*archive);
  if (!dicts.ok()) return;
  auto names = dicts->names();
  if (names.ok()) {
    for (const auto& n : *names) {
      auto d = dicts->dict(n);
      if (!d.ok()) continue;
      (void)d->find("int");
      (void)d->type(1);
    }
  }
  (void)dicts->for_each([](std::string_view, const mmar::CtfDict& d) -> mmar::Result<void> {
    (void)d.find("struct s");
    return mmar::success();
  });
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  typed_iteration(data, size);
  auto file = mmar::ctf_open_bytes(copy(data, size), "fuzz");
  if (!file.ok()) return 0;
  // Lazily opened: lookups before any validation.
  for (const auto& e : file->dicts) {
    for (const char* name : {"int", "struct s", "union u", "enum e", "char", "x"}) {
      auto id = e.dict.find(name);
      if (id.ok()) {
        (void)e.dict.type_name(*id);
        (void)e.dict.type_size(*id);
      }
    }
    for (uint32_t id : {1u, 2u, 3u, 0x80000001u}) {
      (void)e.dict.type(id);
      (void)e.dict.type_align(id);
      (void)e.dict.members(id);
    }
  }
  bool valid = true;
  for (const auto& e : file->dicts) valid = valid && e.dict.validate().ok();
  std::string out;
  auto dumped = mmar::ctf_dump(*file, out);
  if (valid && !dumped.ok() && dumped.error().code() != mmar::Errc::limit) std::abort();
  if (!valid) {
    if (dumped.ok()) std::abort();
    return 0;
  }
  for (const auto& e : file->dicts) {
    const mmar::CtfDict& d = e.dict;
    for (uint32_t index = 1; index <= d.type_count() && index <= 512; ++index) {
      const uint32_t id = d.id_of_index(index);
      auto t = d.type(id);
      if (!t.ok() || t->id != id) std::abort();
      (void)d.type_name(id);
      (void)d.type_size(id);
      (void)d.type_align(id);
      (void)d.type_kind(id);
      if (t->kind == mmar::CtfKind::struct_ || t->kind == mmar::CtfKind::union_ || t->kind == mmar::CtfKind::enum_) {
        if (!d.members(id).ok()) std::abort();
      }
      if (!t->root || t->name.empty() || t->name == "(?)") continue;
      std::string key;
      switch (t->kind) {
        case mmar::CtfKind::struct_: key = "struct "; break;
        case mmar::CtfKind::union_: key = "union "; break;
        case mmar::CtfKind::enum_: key = "enum "; break;
        case mmar::CtfKind::typedef_: break;
        default: continue;
      }
      if (t->name.find(' ') != std::string_view::npos || t->name.front() == ' ') continue;
      key += t->name;
      auto found = d.find(key);
      if (!found.ok()) std::abort();
      auto ft = d.type(*found);
      if (!ft.ok() || ft->name != t->name) std::abort();
    }
  }
  if (dumped.ok()) {
    auto again = mmar::ctf_open_bytes(copy(data, size), "fuzz");
    std::string out2;
    if (!again.ok() || !mmar::ctf_dump(*again, out2).ok() || out2 != out) std::abort();
  }
  return 0;
}
