// SPDX-License-Identifier: BSD-2-Clause
#include "support/c_header_check.h"

#include <unordered_map>

#include "support/test_support.h"

namespace mmar::test {

std::string c_layout_asserts(const Btf& btf) {
  auto count = btf.type_count();
  if (!count.ok()) return "#error " + count.error().message() + "\n";
  std::unordered_map<std::string_view, int> seen;
  for (uint32_t id = 1; id < *count; ++id) {
    auto t = btf.type(id);
    // struct, union and enum tags share one namespace; a second use is
    // printed with a suffix
    if (!t.ok() || t->name_off() == 0) continue;
    BtfKind k = t->kind();
    if (k == BtfKind::struct_ || k == BtfKind::union_ || k == BtfKind::enum_ || k == BtfKind::enum64) {
      ++seen[btf.name_of(*t)];
    }
  }
  std::string out = "\n";
  for (uint32_t id = 1; id < *count; ++id) {
    auto t = btf.type(id);
    if (!t.ok() || (t->kind() != BtfKind::struct_ && t->kind() != BtfKind::union_) || t->name_off() == 0) continue;
    std::string_view name = btf.name_of(*t);
    if (seen[name] != 1) continue;
    std::string type = std::string(t->kind() == BtfKind::struct_ ? "struct " : "union ") + std::string(name);
    out += "_Static_assert(sizeof(" + type + ") == " + std::to_string(t->size()) + ", \"size of " + type + "\");\n";
    for (uint32_t i = 0; i < t->vlen(); ++i) {
      uint32_t name_off = t->extra_u32(i * 3), off = t->extra_u32(i * 3 + 2);
      uint32_t bit_size = t->kflag() ? off >> 24 : 0, bit_off = t->kflag() ? off & 0xffffff : off;
      if (name_off == 0 || bit_size != 0 || bit_off % 8 != 0) continue;
      auto member = btf.str(name_off);
      if (!member) continue;
      // A non-bitfield member of an integer type can still be a bitfield
      // when the producer lacks kind_flag; offsetof would not compile then.
      auto mt = btf.type(t->extra_u32(i * 3 + 1));
      if (!t->kflag() && mt.ok() && mt->kind() == BtfKind::int_ && (mt->extra_u32(0) & 0xff) != mt->size() * 8)
        continue;
      out += "_Static_assert(__builtin_offsetof(" + type + ", " + std::string(*member) +
             ") == " + std::to_string(bit_off / 8) + ", \"offset of " + type + "." + std::string(*member) + "\");\n";
    }
  }
  return out;
}

std::string compile_c_header(const std::string& header, const Btf& btf) {
  TempDir tmp;
  std::string src = tmp / "check.c";
  write_file(src, to_bytes(header + c_layout_asserts(btf)));
  std::string out;
  if (run("gcc -fsyntax-only -w -x c '" + src + "' 2>&1", &out) == 0) return "";
  return out.empty() ? "gcc failed" : out.substr(0, 4000);
}

}  // namespace mmar::test
