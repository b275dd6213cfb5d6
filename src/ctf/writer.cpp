// SPDX-License-Identifier: BSD-2-Clause
// CtfBuilder (include/mmar/ctf.h): one CTF_VERSION_3 dict, little-endian,
// uncompressed, laid out as libctf 2.40's ctf_serialize lays it out.
//
// Types are kept as the words of the type section in host order (a slice's
// two u16 are one word: cts_offset in the low half, as little-endian bytes
// put them) and converted to little-endian once, at write().
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "ctf/format.h"
#include "mmar/ctf.h"
#include "support/endian.h"

namespace mmar {

namespace {

constexpr uint32_t kMaxVlen = 0xffffff;    // CTF_MAX_VLEN
constexpr uint32_t kMaxSize = 0xfffffffe;  // CTF_MAX_SIZE: larger sizes use CTF_LSIZE_SENT

uint32_t info(CtfKind kind, bool root, uint32_t vlen) {
  return (uint32_t{static_cast<uint8_t>(kind)} << 26) | (root ? 1u << 25 : 0u) | vlen;
}

Error bad(const std::string& what) { return Error(Errc::invalid_argument, "CTF builder: " + what); }

}  // namespace

struct CtfBuilder::Impl {
  bool child = false;
  std::string parent_name;
  uint32_t parname = 0, cuname = 0;  // header strings
  std::vector<uint32_t> types;       // the type section, host order
  uint32_t count = 0;                // own types
  // The struct/union/enum that add_member/add_enumerator extend: its
  // record's offset in `types` (in words), its kind; npos when none.
  size_t open_at = SIZE_MAX;
  CtfKind open_kind = CtfKind::unknown;
  bool open_large = false;  // lmembers
  std::string strs = std::string(1, '\0');
  std::unordered_map<std::string, uint32_t> str_index;
  struct Named {
    uint32_t name = 0;
    uint32_t type = 0;
  };
  std::vector<Named> vars, objects, functions;
  uint32_t max_ref = 0;  // the highest own type index referred to

  uint32_t str(std::string_view s) {
    if (s.empty()) return 0;
    auto [it, added] = str_index.try_emplace(std::string(s), static_cast<uint32_t>(strs.size()));
    if (added) {
      strs.append(s);
      strs.push_back('\0');
    }
    return it->second;
  }
  uint32_t id_of(uint32_t index) const { return child ? (index | (ctf::kMaxParentType + 1)) : index; }
  Result<void> ref(uint32_t id) {
    // A child refers to its parent's IDs freely; its own (and a parent's)
    // must be added by write().
    const bool own = child ? id > ctf::kMaxParentType : true;
    if (!own) return success();
    const uint32_t index = child ? id & ctf::kMaxParentType : id;
    if (!child && id > ctf::kMaxParentType) return bad("type ID " + ctf_hex_id(id) + " is a child's, in a parent dict");
    max_ref = std::max(max_ref, index);
    return success();
  }
  static std::string ctf_hex_id(uint32_t id) {
    char b[16];
    std::snprintf(b, sizeof b, "0x%x", id);
    return b;
  }
  Result<uint32_t> begin(CtfKind kind, std::string_view name, bool root, uint32_t vlen) {
    if (count >= ctf::kMaxParentType - 1) return bad("too many types");
    open_at = SIZE_MAX;
    types.push_back(str(name));
    types.push_back(info(kind, root, vlen));
    ++count;
    return id_of(count);
  }
  void size_word(uint64_t size, bool large_form = false) {
    if (size > kMaxSize || large_form) {
      types.push_back(ctf::kLsizeSent);
      types.push_back(static_cast<uint32_t>(size >> 32));
      types.push_back(static_cast<uint32_t>(size));
    } else {
      types.push_back(static_cast<uint32_t>(size));
    }
  }
  Result<void> grow_open(CtfKind want_a, CtfKind want_b, const char* what) {
    if (open_at == SIZE_MAX || (open_kind != want_a && open_kind != want_b)) {
      return bad(std::string(what) + " without a preceding one to extend");
    }
    uint32_t& inf = types[open_at + 1];
    if (ctf::info_vlen(inf) >= kMaxVlen) return bad("too many members");
    ++inf;
    return success();
  }
};

CtfBuilder::CtfBuilder() : impl_(std::make_unique<Impl>()) {}
CtfBuilder::CtfBuilder(std::string parent_name) : impl_(std::make_unique<Impl>()) {
  impl_->child = true;
  impl_->parent_name = std::move(parent_name);
  impl_->parname = impl_->str(impl_->parent_name);
}
CtfBuilder::~CtfBuilder() = default;
CtfBuilder::CtfBuilder(CtfBuilder&&) noexcept = default;
CtfBuilder& CtfBuilder::operator=(CtfBuilder&&) noexcept = default;

bool CtfBuilder::is_child() const { return impl_->child; }
uint32_t CtfBuilder::type_count() const { return impl_->count; }
uint32_t CtfBuilder::next_id() const { return impl_->id_of(impl_->count + 1); }
void CtfBuilder::set_cu_name(std::string_view name) { impl_->cuname = impl_->str(name); }

Result<uint32_t> CtfBuilder::add_integer(std::string_view name, uint32_t format, uint32_t bits, uint32_t byte_size,
                                         uint32_t bit_offset, bool root) {
  if (format > 0xff || bit_offset > 0xff || bits > 0xffff) return bad("integer encoding out of range");
  MMAR_ASSIGN(uint32_t id, impl_->begin(CtfKind::integer, name, root, 0));
  impl_->size_word(byte_size);
  impl_->types.push_back((format << 24) | (bit_offset << 16) | bits);
  return id;
}

Result<uint32_t> CtfBuilder::add_float(std::string_view name, uint32_t format, uint32_t bits, uint32_t byte_size,
                                       bool root) {
  if (format > 0xff || bits > 0xffff) return bad("float encoding out of range");
  MMAR_ASSIGN(uint32_t id, impl_->begin(CtfKind::float_, name, root, 0));
  impl_->size_word(byte_size);
  impl_->types.push_back((format << 24) | bits);
  return id;
}

Result<uint32_t> CtfBuilder::add_pointer(uint32_t ref, bool root) { return add_cv(CtfKind::pointer, ref, root); }

Result<uint32_t> CtfBuilder::add_array(uint32_t contents, uint32_t index, uint32_t nelems, bool root) {
  MMAR_TRY(impl_->ref(contents));
  MMAR_TRY(impl_->ref(index));
  MMAR_ASSIGN(uint32_t id, impl_->begin(CtfKind::array, "", root, 0));
  impl_->types.push_back(0);  // ctt_size: libctf computes an array's size
  impl_->types.push_back(contents);
  impl_->types.push_back(index);
  impl_->types.push_back(nelems);
  return id;
}

Result<uint32_t> CtfBuilder::add_struct(std::string_view name, uint64_t byte_size, bool root) {
  MMAR_ASSIGN(uint32_t id, impl_->begin(CtfKind::struct_, name, root, 0));
  impl_->open_at = impl_->types.size() - 2;
  impl_->open_kind = CtfKind::struct_;
  impl_->open_large = byte_size >= ctf::kLstructThresh;
  // libctf 2.40 reads ctf_lmember_t only when the size has the large form
  // (CTF_LSIZE_SENT), although it lays lmembers out from CTF_LSTRUCT_THRESH
  // on: a struct of 512 MiB to 4 GiB gets the large form too.
  impl_->size_word(byte_size, impl_->open_large);
  return id;
}

Result<uint32_t> CtfBuilder::add_union(std::string_view name, uint64_t byte_size, bool root) {
  MMAR_ASSIGN(uint32_t id, add_struct(name, byte_size, root));
  impl_->types[impl_->open_at + 1] = info(CtfKind::union_, root, 0);
  impl_->open_kind = CtfKind::union_;
  return id;
}

Result<void> CtfBuilder::add_member(std::string_view name, uint32_t type, uint64_t bit_offset) {
  MMAR_TRY(impl_->grow_open(CtfKind::struct_, CtfKind::union_, "a member"));
  MMAR_TRY(impl_->ref(type));
  const uint32_t n = impl_->str(name);
  if (impl_->open_large) {  // ctf_lmember_t: name, offsethi, type, offsetlo
    impl_->types.insert(impl_->types.end(),
                        {n, static_cast<uint32_t>(bit_offset >> 32), type, static_cast<uint32_t>(bit_offset)});
  } else {  // ctf_member_t: name, offset, type
    if (bit_offset > UINT32_MAX) return bad("member offset beyond a small struct's range");
    impl_->types.insert(impl_->types.end(), {n, static_cast<uint32_t>(bit_offset), type});
  }
  return success();
}

Result<uint32_t> CtfBuilder::add_enum(std::string_view name, uint32_t byte_size, bool root) {
  MMAR_ASSIGN(uint32_t id, impl_->begin(CtfKind::enum_, name, root, 0));
  impl_->open_at = impl_->types.size() - 2;
  impl_->open_kind = CtfKind::enum_;
  impl_->size_word(byte_size);
  return id;
}

Result<void> CtfBuilder::add_enumerator(std::string_view name, int32_t value) {
  MMAR_TRY(impl_->grow_open(CtfKind::enum_, CtfKind::enum_, "an enumerator"));
  if (name.empty()) return bad("an enumerator needs a name");
  impl_->types.push_back(impl_->str(name));
  impl_->types.push_back(static_cast<uint32_t>(value));
  return success();
}

Result<uint32_t> CtfBuilder::add_forward(std::string_view name, CtfKind kind, bool root) {
  if (kind != CtfKind::struct_ && kind != CtfKind::union_ && kind != CtfKind::enum_) {
    return bad("a forward is to a struct, union or enum");
  }
  MMAR_ASSIGN(uint32_t id, impl_->begin(CtfKind::forward, name, root, 0));
  impl_->types.push_back(static_cast<uint8_t>(kind));
  return id;
}

Result<uint32_t> CtfBuilder::add_typedef(std::string_view name, uint32_t ref, bool root) {
  if (name.empty()) return bad("a typedef needs a name");
  MMAR_TRY(impl_->ref(ref));
  MMAR_ASSIGN(uint32_t id, impl_->begin(CtfKind::typedef_, name, root, 0));
  impl_->types.push_back(ref);
  return id;
}

Result<uint32_t> CtfBuilder::add_cv(CtfKind kind, uint32_t ref, bool root) {
  if (kind != CtfKind::pointer && kind != CtfKind::volatile_ && kind != CtfKind::const_ && kind != CtfKind::restrict_) {
    return bad("add_cv: not a pointer or qualifier kind");
  }
  MMAR_TRY(impl_->ref(ref));
  MMAR_ASSIGN(uint32_t id, impl_->begin(kind, "", root, 0));
  impl_->types.push_back(ref);
  return id;
}

Result<uint32_t> CtfBuilder::add_slice(uint32_t ref, uint32_t bit_offset, uint32_t bits, uint32_t byte_size,
                                       bool root) {
  if (bit_offset > 0xffff || bits > 0xffff) return bad("slice offset or width out of range");
  MMAR_TRY(impl_->ref(ref));
  MMAR_ASSIGN(uint32_t id, impl_->begin(CtfKind::slice, "", root, 0));
  impl_->size_word(byte_size);
  impl_->types.push_back(ref);
  impl_->types.push_back(bit_offset | (bits << 16));  // cts_offset, cts_bits (u16 each, LE)
  return id;
}

Result<uint32_t> CtfBuilder::add_function(uint32_t return_type, std::span<const uint32_t> args, bool varargs,
                                          bool root) {
  const uint64_t vlen = args.size() + (varargs ? 1 : 0);
  if (vlen > kMaxVlen) return bad("too many function arguments");
  MMAR_TRY(impl_->ref(return_type));
  for (uint32_t a : args) MMAR_TRY(impl_->ref(a));
  MMAR_ASSIGN(uint32_t id, impl_->begin(CtfKind::function, "", root, static_cast<uint32_t>(vlen)));
  impl_->types.push_back(return_type);
  impl_->types.insert(impl_->types.end(), args.begin(), args.end());
  if (varargs) impl_->types.push_back(0);        // a last 0 argument says "..."
  if (vlen % 2 != 0) impl_->types.push_back(0);  // argument words pad to an even count
  return id;
}

Result<void> CtfBuilder::add_variable(std::string_view name, uint32_t type) {
  if (name.empty()) return bad("a variable needs a name");
  MMAR_TRY(impl_->ref(type));
  impl_->vars.push_back({impl_->str(name), type});
  return success();
}

Result<void> CtfBuilder::add_object_symbol(std::string_view name, uint32_t type) {
  if (name.empty()) return bad("a symbol needs a name");
  MMAR_TRY(impl_->ref(type));
  impl_->objects.push_back({impl_->str(name), type});
  return success();
}

Result<void> CtfBuilder::add_function_symbol(std::string_view name, uint32_t type) {
  if (name.empty()) return bad("a symbol needs a name");
  MMAR_TRY(impl_->ref(type));
  impl_->functions.push_back({impl_->str(name), type});
  return success();
}

Result<std::vector<std::byte>> CtfBuilder::write() const {
  const Impl& d = *impl_;
  if (d.max_ref > d.count) return bad("type " + Impl::ctf_hex_id(d.id_of(d.max_ref)) + " referred to, never added");

  auto sorted = [&](std::vector<Impl::Named> v, const char* what) -> Result<std::vector<Impl::Named>> {
    auto name_of = [&](const Impl::Named& n) { return std::string_view(d.strs.data() + n.name); };
    std::sort(v.begin(), v.end(), [&](const auto& a, const auto& b) { return name_of(a) < name_of(b); });
    for (size_t i = 1; i < v.size(); ++i) {
      if (v[i].name == v[i - 1].name) return bad(std::string(what) + " '" + std::string(name_of(v[i])) + "' repeats");
    }
    return v;
  };
  MMAR_ASSIGN(auto objects, sorted(d.objects, "data-object symbol"));
  MMAR_ASSIGN(auto functions, sorted(d.functions, "function symbol"));
  MMAR_ASSIGN(auto vars, sorted(d.vars, "variable"));

  // Sections in file order, offsets relative to the header's end.
  const uint64_t objt = 0;
  const uint64_t func = objt + objects.size() * 4;
  const uint64_t objtidx = func + functions.size() * 4;
  const uint64_t funcidx = objtidx + objects.size() * 4;
  const uint64_t varoff = funcidx + functions.size() * 4;
  const uint64_t typeoff = varoff + vars.size() * 8;
  const uint64_t stroff = typeoff + d.types.size() * 4;
  const uint64_t total = stroff + d.strs.size();
  if (total > UINT32_MAX) return bad("dict larger than 4 GiB");

  std::vector<std::byte> out(ctf::kHeaderV3Size + total);
  std::byte* p = out.data();
  auto put16 = [&](uint16_t v) {
    ul16 w = v;
    std::memcpy(p, &w, 2);
    p += 2;
  };
  auto put32 = [&](uint64_t v) {
    ul32 w = static_cast<uint32_t>(v);
    std::memcpy(p, &w, 4);
    p += 4;
  };
  put16(ctf::kMagic);
  *p++ = std::byte{ctf::kVersion3};
  *p++ = std::byte{ctf::kFlagNewFuncInfo | ctf::kFlagIdxSorted};
  for (uint64_t v : {uint64_t{0}, uint64_t{d.parname}, uint64_t{d.cuname}, uint64_t{0}, objt, func, objtidx, funcidx,
                     varoff, typeoff, stroff, uint64_t{d.strs.size()}}) {
    put32(v);
  }
  for (const auto& s : objects) put32(s.type);
  for (const auto& s : functions) put32(s.type);
  for (const auto& s : objects) put32(s.name);
  for (const auto& s : functions) put32(s.name);
  for (const auto& v : vars) {
    put32(v.name);
    put32(v.type);
  }
  for (uint32_t w : d.types) put32(w);
  std::memcpy(p, d.strs.data(), d.strs.size());
  return out;
}

}  // namespace mmar
