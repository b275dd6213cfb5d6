// libFuzzer target: the BTF parser, raw and split. Input: one mode byte;
// mode 0: raw BTF; mode 1: a u32 base length, the base BTF, then a split BTF
// on it. Invariants, not just "no crash":
//  - validate() succeeding implies the whole raw dump succeeds;
//  - the C dump (cycles, deep chains, anonymous loops) never crashes, and
//    succeeds only on BTF that validates;
//  - every type's ID resolves back to the same record; a named type is
//    found by name at an ID that has that name;
//  - raw mode: btf_find_in_file (pread, no mapping) on the same bytes never
//    crashes, and on BTF that indexes completely finds the same IDs;
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
    std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(data),
                                 reinterpret_cast<const std::byte*>(data) + size);
    auto btf = mmar::Btf::parse(mmar::Bytes::from_vector(std::move(bytes)), "fuzz");
    if (btf.ok()) exercise(*btf);
    int fd = memfd_create("fuzz-btf", MFD_CLOEXEC);
    if (fd >= 0 && write(fd, data, size) == static_cast<ssize_t>(size)) {
      const std::string path = "/proc/self/fd/" + std::to_string(fd);
      const bool indexed = btf.ok() && btf->type_count().ok();
      for (uint32_t id = 1; indexed && id < *btf->type_count() && id < 16; ++id) {
        auto t = btf->type(id);
        std::string_view name = btf->name_of(*t);
        if (name.empty()) continue;
        auto want = btf->find(name, t->kind());
        auto got = mmar::btf_find_in_file(path, name, t->kind());
        if (want.ok() && (!got.ok() || got->id != want->id())) std::abort();
      }
      (void)mmar::btf_find_in_file(path, "task_struct");
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
  uint32_t base_len;
  std::memcpy(&base_len, data, 4);
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
