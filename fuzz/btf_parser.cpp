// SPDX-License-Identifier: BSD-2-Clause
// libFuzzer target: the BTF parser, raw and split. Input: one mode byte;
// mode 0: raw BTF; mode 1: a u32 base length (little-endian), the base BTF, then a split BTF
// on it. Invariants, not just "no crash":
//  - validate() succeeding implies the whole raw dump succeeds;
//  - the C dump (cycles, deep chains, anonymous loops) never crashes, and
//    succeeds only on BTF that validates;
//  - every type's ID resolves back to the same record; a named type is
//    found by name at an ID that has that name;
//  - raw mode: btf_find_in_file (pread, no mapping) on the same bytes
//    refuses exactly the headers and records Btf refuses, with the same
//    error (one checker, src/btf/records.h), and on BTF that indexes
//    completely finds the same IDs;
//  - raw mode, valid BTF: its stored index (NAME.mmidx + NAME.mmnames) read
//    back validates and finds the same IDs; with one byte of it changed,
//    lookups and validate() never crash.
#include <sys/mman.h>
#include <unistd.h>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <string>

#include "mmar/btf.h"

namespace {

// A name no seed has (a control byte first): a lookup of it passes every record.
constexpr const char* kAbsent = "\001absent";

void exercise(const mmar::Btf& btf) {
  auto count = btf.type_count();
  bool valid = btf.validate().ok();
  std::string out;
  auto dumped = mmar::btf_dump_raw(btf, out);
  if (valid && !dumped.ok()) std::abort();
  std::string header;
  if (mmar::btf_dump_c(btf, header).ok() && !valid) std::abort();
  if (!count.ok()) return;
  for (uint32_t id = btf.start_id(); id < *count && id < btf.start_id() + 64; ++id) {
    auto t = btf.type(id);
    if (!t.ok()) std::abort();  // indexed once, a record must stay reachable
    if (t->id() != id) std::abort();
    std::string_view name = btf.name_of(*t);
    if (name.empty()) continue;
    auto found = btf.find(name, t->kind());
    if (!found.ok() || btf.name_of(*found) != name || found->kind() != t->kind()) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] & 1;
  ++data;
  --size;
  if (mode == 0) {
    // The bytes as a file too, for btf_find_in_file; Btf is named by the
    // same path so that both readers' errors read the same.
    int fd = memfd_create("fuzz-btf", MFD_CLOEXEC);
    const bool have_file = fd >= 0 && write(fd, data, size) == static_cast<ssize_t>(size);
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(data),
                                 reinterpret_cast<const std::byte*>(data) + size);
    auto btf = mmar::Btf::parse(mmar::Bytes::from_vector(std::move(bytes)), path);
    if (btf.ok()) exercise(*btf);
    if (have_file) {
      // One record checker: a lookup of an absent name passes every record,
      // so btf_find_in_file refuses exactly what Btf's full index refuses,
      // with the same error, and a header only one of them accepts is a bug.
      auto absent = mmar::btf_find_in_file(path, kAbsent);
      if (!btf.ok()) {
        if (absent.ok() || absent.error().message() != btf.error().message()) std::abort();
      } else {
        // A fresh Btf: its first lookup scans as far as the first match, as
        // btf_find_in_file does (a later lookup indexes everything).
        std::vector<std::byte> again(reinterpret_cast<const std::byte*>(data),
                                     reinterpret_cast<const std::byte*>(data) + size);
        auto fresh = mmar::Btf::parse(mmar::Bytes::from_vector(std::move(again)), path);
        if (!fresh.ok()) std::abort();
        auto want = fresh->find(kAbsent);
        if (want.ok() != absent.ok()) std::abort();
        if (want.ok() && want->id() != absent->id) std::abort();
        if (!want.ok() && want.error().message() != absent.error().message()) std::abort();
        auto count = btf->type_count();
        if (!want.ok() && want.error().code() == mmar::Errc::not_found && !count.ok()) std::abort();
        if (!count.ok() && !want.ok() && want.error().message() != count.error().message()) std::abort();
      }
      const bool indexed = btf.ok() && btf->type_count().ok();
      for (uint32_t id = 1; indexed && id < *btf->type_count() && id < 16; ++id) {
        auto t = btf->type(id);
        std::string_view name = btf->name_of(*t);
        if (name.empty()) continue;
        auto want = btf->find(name, t->kind());
        auto got = mmar::btf_find_in_file(path, name, t->kind());
        if (!want.ok() || !got.ok() || got->id != want->id()) std::abort();
      }
    }
    if (btf.ok() && btf->validate().ok()) {
      auto index = btf->build_index(42);
      if (!index.ok()) std::abort();
      for (int damaged = 0; damaged < 2; ++damaged) {
        auto offsets = index->offsets;
        auto names = index->names;
        if (damaged == 1 && size > 0) {
          auto& target = data[0] & 1 ? names : offsets;
          if (!target.empty()) target[(data[size - 1] * 131u) % target.size()] ^= std::byte{0x5a};
        }
        std::vector<std::byte> copy(reinterpret_cast<const std::byte*>(data),
                                    reinterpret_cast<const std::byte*>(data) + size);
        auto stored = mmar::Btf::parse_indexed(mmar::Bytes::from_vector(std::move(copy)), "fuzz-indexed",
                                               mmar::Bytes::from_vector(std::move(offsets)),
                                               mmar::Bytes::from_vector(std::move(names)), 42, nullptr);
        if (!stored.ok()) std::abort();  // the BTF parsed before; a bad index is ignored or reported on use
        const bool ok = stored->validate().ok();
        if (damaged == 0 && (!ok || !stored->has_stored_index())) std::abort();
        for (uint32_t id = 1; id < *btf->type_count() && id < 32; ++id) {
          auto t = btf->type(id);
          std::string_view name = btf->name_of(*t);
          if (name.empty()) continue;
          auto want = btf->find(name, t->kind());
          auto got = stored->find(name, t->kind());
          if (damaged == 0 && (!got.ok() || got->id() != want->id())) std::abort();
        }
      }
    }
    if (fd >= 0) close(fd);
    return 0;
  }
  if (size < 4) return 0;
  // Little-endian like the format, so a seed reads the same on every host.
  const uint32_t base_len = uint32_t{data[0]} | uint32_t{data[1]} << 8 | uint32_t{data[2]} << 16 | uint32_t{data[3]} << 24;
  data += 4;
  size -= 4;
  if (base_len > size) return 0;
  std::vector<std::byte> base_bytes(reinterpret_cast<const std::byte*>(data),
                                    reinterpret_cast<const std::byte*>(data) + base_len);
  std::vector<std::byte> split_bytes(reinterpret_cast<const std::byte*>(data) + base_len,
                                     reinterpret_cast<const std::byte*>(data) + size);
  auto base = mmar::Btf::parse(mmar::Bytes::from_vector(std::move(base_bytes)), "fuzz-base");
  if (!base.ok()) return 0;
  auto split = mmar::Btf::parse_split(mmar::Bytes::from_vector(std::move(split_bytes)), "fuzz-split", *base);
  if (split.ok()) exercise(*split);
  return 0;
}
