// libFuzzer target: the archive reader (mmar, CTF archive, plain) on
// arbitrary bytes. Invariants, not just "no crash":
//  - every member handed out reads back as exactly `size` bytes, or errors;
//  - a name found by at() is found again by find() (when the index is
//    sorted) at a member with the same name;
//  - verify() never fails to run on an archive that opened.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "mmar/archive.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  mmar::OpenOptions options;
  options.max_member_size = 64u << 20;  // keep the fuzzer's memory bounded
  options.cache_bytes = 1u << 20;
  auto a = mmar::Archive::open(mmar::Source::borrow(bytes, "fuzz"), options);
  if (!a.ok()) return 0;
  const uint32_t n = a->size() < 256 ? a->size() : 256;
  for (uint32_t i = 0; i < n; ++i) {
    auto m = a->at(i);
    if (!m.ok()) continue;
    auto d = a->read(*m);
    if (d.ok() && !m->is_dir() && d->size() != m->size) std::abort();
    auto f = a->find(m->name);
    if (f.ok() && f->name != m->name) std::abort();
  }
  auto problems = a->verify();
  if (!problems.ok() && a->format() == mmar::Format::mmar) {
    // verify() reports problems as a list; an Error means the archive could
    // not be read at all, which open() should already have caught.
    if (problems.error().code() != mmar::Errc::limit) std::abort();
  }
  return 0;
}
