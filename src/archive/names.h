// SPDX-License-Identifier: BSD-2-Clause
// Member name rules shared by the reader, the writer and extraction.
#pragma once

#include <cstddef>
#include <string_view>

#include "mmar/archive.h"

namespace mmar {

inline constexpr size_t kMaxNameLength = 4096;

// nullptr if `name` is a valid stored member name: relative, '/'-separated,
// no empty, "." or ".." components, no NUL, at most kMaxNameLength bytes.
// Otherwise a short description of the problem.
const char* name_problem(std::string_view name);

}  // namespace mmar
