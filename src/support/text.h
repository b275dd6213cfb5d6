// SPDX-License-Identifier: BSD-2-Clause
// Text that carries any bytes: UTF-8 validation and JSON string literals,
// one implementation for the command's JSON writer (tools/mmar/json.h) and
// the library's JSON dumps (btf_dump_raw with json).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mmar::text {

// The length of the valid UTF-8 sequence at s[i] (i < s.size()), 0 if none
// (a stray continuation byte, an overlong form, a surrogate, beyond
// U+10FFFF, or a sequence cut short).
size_t utf8_sequence(std::string_view s, size_t i);
bool is_utf8(std::string_view s);

// `s` as a JSON string literal, appended to `out`: '"', '\\' and control
// bytes escaped; valid UTF-8 passes as it is; each byte that is not part of
// valid UTF-8 becomes \u00XX (the byte read as Latin-1), so the output is
// valid JSON whatever the bytes (docs/JSON.md "Strings").
void append_json_string(std::string& out, std::string_view s);

}  // namespace mmar::text
