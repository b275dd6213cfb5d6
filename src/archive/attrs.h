// SPDX-License-Identifier: BSD-2-Clause
// The one encoder and checker of attribute records (docs/FORMAT.md
// "Attributes"): the writer, the updater and every reader use it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "mmar/archive.h"

namespace mmar::attrs {

// Whether a file's owner is recorded (FORMAT.md "Attributes"): when it is
// not uid 0 and gid 0, or when a setuid/setgid bit needs its owner.
inline bool owner_needs_record(uint32_t uid, uint32_t gid, uint32_t mode) {
  return uid != 0 || gid != 0 || (mode & 06000) != 0;
}

// The record for `a` (size word included), or empty when `a` is empty.
// Xattrs are sorted and must have unique names (invalid_argument if not).
Result<std::string> encode(const Attributes& a);

// The fixed fields of a record, checked; the name and xattr fields are
// checked too, and viewed.
struct Decoded {
  bool has_owner = false;
  uint32_t uid = 0, gid = 0, rdev_major = 0, rdev_minor = 0;
  uint64_t link_id = 0;
  std::string_view uname, gname;
  std::span<const std::byte> record;  // size word included
};

// The record at the start of `bytes` (what follows a name in the name
// table; may run on past the record). `mode` is the member's (a device
// number only for devices). Errors say what is wrong; the caller adds where.
Result<Decoded> parse(std::span<const std::byte> bytes, uint32_t mode);

// Every field of a record parse() accepted, into Attributes.
Attributes to_attributes(const Decoded& d);

}  // namespace mmar::attrs
