// SPDX-License-Identifier: BSD-2-Clause
// Member name rules shared by the reader, the writer and extraction.
#pragma once

#include <cstddef>
#include <string_view>

#include "mmar/archive.h"

namespace mmar {

// The longest stored member name (name_problem, include/mmar/archive.h).
inline constexpr size_t kMaxNameLength = 4096;

}  // namespace mmar
