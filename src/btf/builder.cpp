// SPDX-License-Identifier: BSD-2-Clause
// Building and writing BTF, with libbpf's semantics for every add and for
// string deduplication, so the same calls produce the same bytes.
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "mmar/btf.h"
#include "support/endian.h"

namespace mmar {

namespace {

constexpr uint32_t kMaxVlen = 0xffff;

uint32_t info(BtfKind kind, uint32_t vlen, bool kflag) {
  return (kflag ? 1u << 31 : 0) | (static_cast<uint32_t>(kind) << 24) | (vlen & 0xffff);
}
BtfKind kind_of(uint32_t info_word) { return static_cast<BtfKind>((info_word >> 24) & 0x1f); }
uint32_t vlen_of(uint32_t info_word) { return info_word & 0xffff; }
bool kflag_of(uint32_t info_word) { return (info_word >> 31) != 0; }

}  // namespace

struct BtfBuilder::Impl {
  std::optional<Btf> base;
  bool little = true;
  uint32_t start_id = 1;
  uint32_t start_str_off = 0;
  std::vector<uint32_t> words;  // type records, native order
  uint32_t types = 0;
  size_t last = SIZE_MAX;                         // word index of the last type's header
  std::string strs;                               // own string section
  std::unordered_map<std::string, uint32_t> own;  // string -> offset (global)
  // Base strings -> offset, built on first use (split BTF only).
  std::unordered_map<std::string_view, uint32_t> base_strs;
  bool base_strs_ready = false;

  void index_base_strings() {
    if (base_strs_ready || !base) return;
    base_strs_ready = true;
    // Walk the chain's string sections: every NUL-terminated string.
    std::optional<Btf> b = base;
    while (b) {
      const uint32_t start = b->start_str_off();
      const uint32_t size = b->str_size();
      uint32_t off = 0;
      while (off < size) {
        auto s = b->str(start + off);
        if (!s) break;
        base_strs.emplace(*s, start + off);
        off += static_cast<uint32_t>(s->size()) + 1;
      }
      b = b->base();
    }
  }

  Result<uint32_t> add_str(std::string_view s) {
    if (base) {
      index_base_strings();
      auto it = base_strs.find(s);
      if (it != base_strs.end()) return it->second;
    }
    auto it = own.find(std::string(s));
    if (it != own.end()) return it->second;
    if (s.find('\0') != std::string_view::npos) return Error(Errc::invalid_argument, "BTF string with a NUL byte");
    uint64_t off = uint64_t{start_str_off} + strs.size();
    if (off + s.size() + 1 > 0x7fffffff) return Error(Errc::limit, "BTF string section full");
    strs.append(s);
    strs.push_back('\0');
    own.emplace(std::string(s), static_cast<uint32_t>(off));
    return static_cast<uint32_t>(off);
  }

  Result<uint32_t> name(std::string_view s) {
    if (s.empty()) return 0u;
    return add_str(s);
  }

  uint32_t push(std::initializer_list<uint32_t> record) {
    last = words.size();
    words.insert(words.end(), record);
    return start_id + types++;
  }

  Result<uint32_t*> last_of(std::initializer_list<BtfKind> kinds, const char* what) {
    if (last == SIZE_MAX) return Error(Errc::invalid_argument, std::string(what) + ": no type to add to");
    BtfKind k = kind_of(words[last + 1]);
    for (BtfKind want : kinds) {
      if (k == want) {
        if (vlen_of(words[last + 1]) == kMaxVlen) return Error(Errc::limit, std::string(what) + ": vlen full");
        return &words[last];
      }
    }
    return Error(Errc::invalid_argument, std::string(what) + ": the last type is a " + btf_kind_name(k));
  }
};

BtfBuilder::BtfBuilder() : impl_(std::make_unique<Impl>()) {
  impl_->strs.assign(1, '\0');
  impl_->own.emplace("", 0);
}

BtfBuilder::BtfBuilder(const Btf& base) : impl_(std::make_unique<Impl>()) {
  impl_->base = base;
  auto count = base.type_count();
  impl_->start_id = count.ok() ? *count : 1;
  impl_->start_str_off = base.start_str_off() + base.str_size();
  impl_->little = base.little_endian();
}

Result<BtfBuilder> BtfBuilder::from(const Btf& btf) {
  BtfBuilder b;
  Impl& m = *b.impl_;
  m.strs.clear();
  m.own.clear();
  if (auto base = btf.base()) {
    m.base = base;
    m.start_str_off = btf.start_str_off();
  }
  m.start_id = btf.start_id();
  m.little = btf.little_endian();
  MMAR_ASSIGN(uint32_t count, btf.type_count());
  for (uint32_t id = btf.start_id(); id < count; ++id) {
    MMAR_ASSIGN(BtfType t, btf.type(id));
    // Every field of a record is a u32: copy them in native order.
    m.last = m.words.size();
    m.words.push_back(t.name_off());
    m.words.push_back((static_cast<uint32_t>(t.kflag()) << 31) | (static_cast<uint32_t>(t.kind()) << 24) | t.vlen());
    m.words.push_back(t.size());
    uint32_t extra = 0;
    switch (t.kind()) {
      case BtfKind::int_:
      case BtfKind::var:
      case BtfKind::decl_tag: extra = 1; break;
      case BtfKind::array: extra = 3; break;
      case BtfKind::struct_:
      case BtfKind::union_:
      case BtfKind::datasec:
      case BtfKind::enum64: extra = 3u * t.vlen(); break;
      case BtfKind::enum_:
      case BtfKind::func_proto: extra = 2u * t.vlen(); break;
      default: break;
    }
    for (uint32_t i = 0; i < extra; ++i) m.words.push_back(t.extra_u32(i));
    ++m.types;
  }
  // The own string section, byte for byte, and its dedup map.
  const uint32_t start = btf.start_str_off();
  for (uint32_t off = 0; off < btf.str_size();) {
    auto s = btf.str(start + off);
    if (!s) break;
    m.strs.append(*s);
    m.strs.push_back('\0');
    m.own.emplace(std::string(*s), start + off);
    off += static_cast<uint32_t>(s->size()) + 1;
  }
  return b;
}

BtfBuilder::~BtfBuilder() = default;
BtfBuilder::BtfBuilder(BtfBuilder&&) noexcept = default;
BtfBuilder& BtfBuilder::operator=(BtfBuilder&&) noexcept = default;

uint32_t BtfBuilder::next_id() const { return impl_->start_id + impl_->types; }
Result<uint32_t> BtfBuilder::add_str(std::string_view s) { return impl_->add_str(s); }

Result<uint32_t> BtfBuilder::add_int(std::string_view name, uint32_t byte_size, uint8_t encoding) {
  if (name.empty()) return Error(Errc::invalid_argument, "INT needs a name");
  if (byte_size == 0 || byte_size > 16) return Error(Errc::invalid_argument, "INT size must be 1..16 bytes");
  if ((encoding & ~7u) != 0) return Error(Errc::invalid_argument, "bad INT encoding");
  MMAR_ASSIGN(uint32_t n, impl_->name(name));
  return impl_->push({n, info(BtfKind::int_, 0, false), byte_size, (uint32_t{encoding} << 24) | (byte_size * 8)});
}

Result<uint32_t> BtfBuilder::add_float(std::string_view name, uint32_t byte_size) {
  if (name.empty()) return Error(Errc::invalid_argument, "FLOAT needs a name");
  MMAR_ASSIGN(uint32_t n, impl_->name(name));
  return impl_->push({n, info(BtfKind::float_, 0, false), byte_size});
}

namespace {
Result<uint32_t> add_ref(BtfBuilder::Impl& m, BtfKind kind, std::string_view name, uint32_t type) {
  MMAR_ASSIGN(uint32_t n, m.name(name));
  return m.push({n, info(kind, 0, false), type});
}
}  // namespace

Result<uint32_t> BtfBuilder::add_ptr(uint32_t type) { return add_ref(*impl_, BtfKind::ptr, "", type); }
Result<uint32_t> BtfBuilder::add_volatile(uint32_t type) { return add_ref(*impl_, BtfKind::volatile_, "", type); }
Result<uint32_t> BtfBuilder::add_const(uint32_t type) { return add_ref(*impl_, BtfKind::const_, "", type); }
Result<uint32_t> BtfBuilder::add_restrict(uint32_t type) { return add_ref(*impl_, BtfKind::restrict_, "", type); }
Result<uint32_t> BtfBuilder::add_typedef(std::string_view name, uint32_t type) {
  if (name.empty()) return Error(Errc::invalid_argument, "TYPEDEF needs a name");
  return add_ref(*impl_, BtfKind::typedef_, name, type);
}
Result<uint32_t> BtfBuilder::add_type_tag(std::string_view value, uint32_t type) {
  if (value.empty()) return Error(Errc::invalid_argument, "TYPE_TAG needs a value");
  return add_ref(*impl_, BtfKind::type_tag, value, type);
}

Result<uint32_t> BtfBuilder::add_array(uint32_t index_type, uint32_t elem_type, uint32_t nr_elems) {
  return impl_->push({0, info(BtfKind::array, 0, false), 0, elem_type, index_type, nr_elems});
}

Result<uint32_t> BtfBuilder::add_struct(std::string_view name, uint32_t byte_size) {
  MMAR_ASSIGN(uint32_t n, impl_->name(name));
  return impl_->push({n, info(BtfKind::struct_, 0, false), byte_size});
}
Result<uint32_t> BtfBuilder::add_union(std::string_view name, uint32_t byte_size) {
  MMAR_ASSIGN(uint32_t n, impl_->name(name));
  return impl_->push({n, info(BtfKind::union_, 0, false), byte_size});
}

Result<void> BtfBuilder::add_field(std::string_view name, uint32_t type, uint32_t bit_offset, uint32_t bit_size) {
  MMAR_ASSIGN(uint32_t * t, impl_->last_of({BtfKind::struct_, BtfKind::union_}, "add_field"));
  if (bit_size > 255 || (bit_size != 0 && bit_offset > 0xffffff)) {
    return Error(Errc::invalid_argument, "bitfield size or offset out of range");
  }
  const size_t at = static_cast<size_t>(t - impl_->words.data());
  MMAR_ASSIGN(uint32_t n, impl_->name(name));
  uint32_t& info_word = impl_->words[at + 1];
  const bool kflag = bit_size != 0 || kflag_of(info_word);
  info_word = info(kind_of(info_word), vlen_of(info_word) + 1, kflag);
  impl_->words.insert(impl_->words.end(), {n, type, (bit_size << 24) | bit_offset});
  return success();
}

Result<uint32_t> BtfBuilder::add_enum(std::string_view name, uint32_t byte_size) {
  if (byte_size != 1 && byte_size != 2 && byte_size != 4 && byte_size != 8) {
    return Error(Errc::invalid_argument, "ENUM size must be 1, 2, 4 or 8");
  }
  MMAR_ASSIGN(uint32_t n, impl_->name(name));
  return impl_->push({n, info(BtfKind::enum_, 0, false), byte_size});
}

Result<void> BtfBuilder::add_enum_value(std::string_view name, int64_t value) {
  MMAR_ASSIGN(uint32_t * t, impl_->last_of({BtfKind::enum_}, "add_enum_value"));
  if (name.empty()) return Error(Errc::invalid_argument, "enumerator needs a name");
  if (value < INT32_MIN || value > UINT32_MAX) return Error(Errc::invalid_argument, "enumerator value out of range");
  const size_t at = static_cast<size_t>(t - impl_->words.data());
  MMAR_ASSIGN(uint32_t n, impl_->name(name));
  uint32_t& info_word = impl_->words[at + 1];
  info_word = info(BtfKind::enum_, vlen_of(info_word) + 1, value < 0 || kflag_of(info_word));
  impl_->words.insert(impl_->words.end(), {n, static_cast<uint32_t>(value)});
  return success();
}

Result<uint32_t> BtfBuilder::add_enum64(std::string_view name, uint32_t byte_size, bool is_signed) {
  MMAR_ASSIGN(uint32_t n, impl_->name(name));
  return impl_->push({n, info(BtfKind::enum64, 0, is_signed), byte_size});
}

Result<void> BtfBuilder::add_enum64_value(std::string_view name, uint64_t value) {
  MMAR_ASSIGN(uint32_t * t, impl_->last_of({BtfKind::enum64}, "add_enum64_value"));
  if (name.empty()) return Error(Errc::invalid_argument, "enumerator needs a name");
  const size_t at = static_cast<size_t>(t - impl_->words.data());
  MMAR_ASSIGN(uint32_t n, impl_->name(name));
  uint32_t& info_word = impl_->words[at + 1];
  info_word = info(BtfKind::enum64, vlen_of(info_word) + 1, kflag_of(info_word));
  impl_->words.insert(impl_->words.end(), {n, static_cast<uint32_t>(value), static_cast<uint32_t>(value >> 32)});
  return success();
}

Result<uint32_t> BtfBuilder::add_fwd(std::string_view name, bool is_union) {
  if (name.empty()) return Error(Errc::invalid_argument, "FWD needs a name");
  MMAR_ASSIGN(uint32_t n, impl_->name(name));
  return impl_->push({n, info(BtfKind::fwd, 0, is_union), 0});
}

Result<uint32_t> BtfBuilder::add_func(std::string_view name, uint32_t linkage, uint32_t proto) {
  if (name.empty()) return Error(Errc::invalid_argument, "FUNC needs a name");
  if (linkage > 2) return Error(Errc::invalid_argument, "bad FUNC linkage");
  MMAR_ASSIGN(uint32_t n, impl_->name(name));
  return impl_->push({n, info(BtfKind::func, linkage, false), proto});
}

Result<uint32_t> BtfBuilder::add_func_proto(uint32_t ret_type) {
  return impl_->push({0, info(BtfKind::func_proto, 0, false), ret_type});
}

Result<void> BtfBuilder::add_param(std::string_view name, uint32_t type) {
  MMAR_ASSIGN(uint32_t * t, impl_->last_of({BtfKind::func_proto}, "add_param"));
  const size_t at = static_cast<size_t>(t - impl_->words.data());
  MMAR_ASSIGN(uint32_t n, impl_->name(name));
  uint32_t& info_word = impl_->words[at + 1];
  info_word = info(BtfKind::func_proto, vlen_of(info_word) + 1, false);
  impl_->words.insert(impl_->words.end(), {n, type});
  return success();
}

Result<uint32_t> BtfBuilder::add_var(std::string_view name, uint32_t linkage, uint32_t type) {
  if (name.empty()) return Error(Errc::invalid_argument, "VAR needs a name");
  if (linkage > 2) return Error(Errc::invalid_argument, "bad VAR linkage");
  MMAR_ASSIGN(uint32_t n, impl_->name(name));
  return impl_->push({n, info(BtfKind::var, 0, false), type, linkage});
}

Result<uint32_t> BtfBuilder::add_datasec(std::string_view name, uint32_t byte_size) {
  if (name.empty()) return Error(Errc::invalid_argument, "DATASEC needs a name");
  MMAR_ASSIGN(uint32_t n, impl_->name(name));
  return impl_->push({n, info(BtfKind::datasec, 0, false), byte_size});
}

Result<void> BtfBuilder::add_datasec_var(uint32_t var_type, uint32_t offset, uint32_t byte_size) {
  MMAR_ASSIGN(uint32_t * t, impl_->last_of({BtfKind::datasec}, "add_datasec_var"));
  const size_t at = static_cast<size_t>(t - impl_->words.data());
  uint32_t& info_word = impl_->words[at + 1];
  info_word = info(BtfKind::datasec, vlen_of(info_word) + 1, false);
  impl_->words.insert(impl_->words.end(), {var_type, offset, byte_size});
  return success();
}

Result<uint32_t> BtfBuilder::add_decl_tag(std::string_view value, uint32_t type, int32_t component_idx) {
  if (value.empty()) return Error(Errc::invalid_argument, "DECL_TAG needs a value");
  if (component_idx < -1) return Error(Errc::invalid_argument, "bad DECL_TAG component index");
  MMAR_ASSIGN(uint32_t n, impl_->name(value));
  return impl_->push({n, info(BtfKind::decl_tag, 0, false), type, static_cast<uint32_t>(component_idx)});
}

std::vector<std::byte> BtfBuilder::write() const {
  const Impl& m = *impl_;
  const uint32_t type_len = static_cast<uint32_t>(m.words.size() * 4);
  const uint32_t str_len = static_cast<uint32_t>(m.strs.size());
  std::vector<std::byte> out(24 + type_len + str_len);
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  auto put32 = [&](size_t at, uint32_t v) {
    if (!m.little) v = byteswap_int(v);
    if (std::endian::native != std::endian::little) v = byteswap_int(v);
    std::memcpy(p + at, &v, 4);
  };
  p[0] = m.little ? 0x9f : 0xeb;
  p[1] = m.little ? 0xeb : 0x9f;
  p[2] = 1;
  p[3] = 0;
  put32(4, 24);
  put32(8, 0);
  put32(12, type_len);
  put32(16, type_len);
  put32(20, str_len);
  for (size_t i = 0; i < m.words.size(); ++i) put32(24 + i * 4, m.words[i]);
  if (str_len != 0) std::memcpy(p + 24 + type_len, m.strs.data(), str_len);
  return out;
}

}  // namespace mmar
