// SPDX-License-Identifier: BSD-2-Clause
// Test-only: check that a C header made from BTF compiles and lays out every
// struct and union exactly as the BTF says.
#pragma once

#include <string>

#include "mmar/btf.h"

namespace mmar::test {

// `_Static_assert`s on sizeof(struct X) and offsetof(struct X, member) for
// every struct and union whose tag occurs once in `btf` (a duplicated tag
// is printed with a ___N suffix, so it is skipped), for its named,
// non-bitfield members.
std::string c_layout_asserts(const Btf& btf);

// Compile `header` followed by c_layout_asserts(btf) with
// `gcc -fsyntax-only`. Returns "" when it compiles, else gcc's messages.
std::string compile_c_header(const std::string& header, const Btf& btf);

}  // namespace mmar::test
