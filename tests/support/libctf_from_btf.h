// SPDX-License-Identifier: BSD-2-Clause
// BTF -> CTF through libctf's own ctf_add_* API: a second, independent
// writer of CTF beside mmar's, for the benches (libctf's serialisation time)
// and the tests (dicts and archives libctf itself wrote, as oracles' input).
//
// The same kinds as mmar's conversion, bitfields as slices, symbols with
// ctf_add_func_sym / ctf_add_objt_sym; for simplicity types and symbols in
// one dict, and without mmar's libctf workarounds (no enum slices, arrays
// nested as in BTF; no `void` type unless asked for).
#pragma once

#include <ctf-api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "mmar/btf.h"

namespace mmar::test {

// Every kept BTF type added once to `fp` (structs and unions before their
// members, so pointers back to them resolve), then the symbols. Types libctf
// refuses as root (a second root type of a name) are added non-root; BTF
// void is 0, or with `void_type` an integer of no encoding and no bits named
// "void", as gcc -gctf writes it and mmar's conversion does: libctf cannot
// name type 0, so without it every type that refers to void (`void *`, a
// function returning void, a struct with such a member) is one libctf's
// dump reports as unnameable. `btf` and `fp` outlive the converter.
class LibctfFromBtf {
 public:
  LibctfFromBtf(const Btf& btf, ctf_dict_t* fp, bool void_type = false) : btf_(btf), fp_(fp), void_type_(void_type) {}

  void run();
  // How many types, members, enumerators and symbols libctf refused.
  size_t refused = 0;

 private:
  static constexpr ctf_id_t kUnset = -2;

  template <class F>
  ctf_id_t rooted(F&& add_with_flag);
  ctf_id_t add(uint32_t id);

  const Btf& btf_;
  ctf_dict_t* fp_;
  bool void_type_;
  ctf_id_t void_ = 0;           // what BTF's type 0 becomes
  std::vector<ctf_id_t> memo_;  // BTF ID -> libctf ID, kUnset before added
};

}  // namespace mmar::test
