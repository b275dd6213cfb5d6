// SPDX-License-Identifier: BSD-2-Clause
// Offsets in messages are printed one way: hex, "0x...".
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace mmar {

inline std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace mmar
