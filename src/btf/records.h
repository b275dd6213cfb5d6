// What every BTF reader needs to walk the type section.
#pragma once

#include <cstdint>

#include "mmar/btf.h"

namespace mmar {

// Bytes of trailing data after a type record's 12-byte common header, by
// kind; -1 for an unknown kind.
inline int64_t btf_extra_size(uint8_t kind, uint32_t vlen) {
  switch (static_cast<BtfKind>(kind)) {
    case BtfKind::int_: return 4;
    case BtfKind::ptr:
    case BtfKind::fwd:
    case BtfKind::typedef_:
    case BtfKind::volatile_:
    case BtfKind::const_:
    case BtfKind::restrict_:
    case BtfKind::func:
    case BtfKind::float_:
    case BtfKind::type_tag: return 0;
    case BtfKind::array: return 12;
    case BtfKind::struct_:
    case BtfKind::union_: return int64_t{12} * vlen;
    case BtfKind::enum_: return int64_t{8} * vlen;
    case BtfKind::func_proto: return int64_t{8} * vlen;
    case BtfKind::var: return 4;
    case BtfKind::datasec: return int64_t{12} * vlen;
    case BtfKind::decl_tag: return 4;
    case BtfKind::enum64: return int64_t{12} * vlen;
    case BtfKind::unknown: return -1;
  }
  return -1;
}

}  // namespace mmar
