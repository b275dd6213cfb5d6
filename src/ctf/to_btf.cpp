// SPDX-License-Identifier: BSD-2-Clause
// One CTF dict (with its parent's types, for a child) to BTF: the inverse of
// from_btf.cpp, for userspace programs built with gcc -gctf (the kind
// mapping is documented at btf_convert_ctf in include/mmar/ctf.h).
//
// Two passes, as from_btf.cpp: the first gives every CTF type its BTF ID
// (CTF order, the parent's first; a slice takes its target's, the `void`
// integer BTF's void), so references forward and backward are known before
// any record is written; the second writes the records through BtfBuilder.
// BTF types that are no CTF record of their own come after the dict's: the
// inner arrays of a multi-dimensional array, whose dimensions gcc 12 stores
// innermost first and BTF (as C) outermost first.
#include <string>
#include <unordered_map>
#include <vector>

#include "mmar/btf.h"
#include "mmar/ctf.h"
#include "support/atomic_file.h"
#include "support/io.h"

namespace mmar {

namespace {

constexpr uint32_t kChildBit = 0x80000000u;
constexpr int kMaxChain = 64;  // slices of slices, arrays of arrays: real dicts nest a few

// An ID in the BTF being built, or a marker that a CTF type takes another's.
constexpr uint32_t kUnmapped = 0xffffffffu;
constexpr uint32_t kFollowSlice = 0xfffffffeu;

class Converter {
 public:
  explicit Converter(const CtfDict& dict) : dict_(dict) {}

  Result<BtfFromCtfResult> run() {
    if (dict_.is_child()) {
      auto parent = dict_.parent();
      if (!parent) return Error(Errc::invalid_argument, dict_.name() + ": a child dict needs its parent");
      parent_count_ = parent->type_count();
    }
    own_count_ = dict_.type_count();
    parent_map_.assign(parent_count_ + 1, kUnmapped);
    own_map_.assign(own_count_ + 1, kUnmapped);

    // Pass 1: IDs.
    uint32_t next = 1;
    for (uint32_t id : ids()) {
      MMAR_ASSIGN(CtfTypeInfo t, dict_.type(id));
      uint32_t& slot = map_slot(id);
      if (t.kind == CtfKind::slice) {
        slot = kFollowSlice;
      } else if (t.kind == CtfKind::integer && t.name == "void" && t.size == 0) {
        slot = 0;
      } else {
        slot = next++;
      }
    }
    for (uint32_t id : ids()) {  // multi-dimensional arrays: their inner levels after the dict's types
      MMAR_ASSIGN(CtfTypeInfo t, dict_.type(id));
      if (t.kind != CtfKind::array) continue;
      MMAR_ASSIGN(std::vector<CtfDict::ArrayInfo> chain, array_chain(id));
      if (chain.size() < 2) continue;
      chain_of_.emplace(id, chains_.size());
      chains_.push_back({id, next, chain});
      next += static_cast<uint32_t>(chain.size()) - 1;
    }

    // Pass 2: records, in the order of pass 1.
    for (uint32_t id : ids()) MMAR_TRY(convert(id));
    for (const Chain& c : chains_) MMAR_TRY(emit_inner_arrays(c));
    if (b_.next_id() != next) {
      return Error(Errc::invalid_argument, dict_.name() + ": BTF IDs of the conversion differ from its plan");
    }
    result_.types = next - 1;
    for (const auto& s : dict_.symbols(true)) {
      MMAR_ASSIGN(CtfKind kind, dict_.type_kind(s.type));
      if (kind != CtfKind::function) continue;  // not a function type: nothing BTF can say
      MMAR_ASSIGN(uint32_t proto, ref(s.type));
      MMAR_TRY(b_.add_func(s.name, 1, proto));
      ++result_.functions;
    }
    for (const auto& s : dict_.symbols(false)) {
      MMAR_ASSIGN(uint32_t type, ref(s.type));
      MMAR_TRY(b_.add_var(s.name, 1, type));
      ++result_.objects;
    }
    result_.types += result_.functions + result_.objects;
    result_.btf = b_.write();
    // Never hand out what our own reader refuses.
    auto check =
        Btf::parse(Bytes::from_vector(result_.btf), dict_.name() + " (as BTF)", BtfOpenOptions{.validate = true});
    if (!check.ok())
      return Error(Errc::invalid_argument, dict_.name() + ": converts to invalid BTF: " + check.error().message());
    return std::move(result_);
  }

 private:
  struct Chain {
    uint32_t head;                           // the CTF array record heading it
    uint32_t first_inner;                    // BTF ID of its first inner level
    std::vector<CtfDict::ArrayInfo> levels;  // as stored, head first
  };

  // Every CTF type ID of the conversion, the parent's first.
  std::vector<uint32_t> ids() const {
    std::vector<uint32_t> out;
    out.reserve(parent_count_ + own_count_);
    for (uint32_t i = 1; i <= parent_count_; ++i) out.push_back(i);
    for (uint32_t i = 1; i <= own_count_; ++i) out.push_back(dict_.id_of_index(i));
    return out;
  }

  uint32_t& map_slot(uint32_t id) {
    if (!dict_.is_child()) return own_map_[id];
    if ((id & kChildBit) != 0) return own_map_[id & ~kChildBit];
    return parent_map_[id];
  }
  Result<uint32_t> mapped(uint32_t id) const {
    uint32_t index = id;
    const std::vector<uint32_t>* map = &own_map_;
    if (dict_.is_child()) {
      if ((id & kChildBit) != 0) {
        index = id & ~kChildBit;
      } else {
        map = &parent_map_;
      }
    }
    if (index >= map->size() || (*map)[index] == kUnmapped) {
      return Error(Errc::malformed, dict_.name() + ": reference to type " + std::to_string(id) + ", which is none");
    }
    return (*map)[index];
  }

  // The BTF type a reference to CTF type `id` names: 0 for 0, a slice's
  // target for a slice.
  Result<uint32_t> ref(uint32_t id) const {
    for (int depth = 0; id != 0; ++depth) {
      MMAR_ASSIGN(uint32_t m, mapped(id));
      if (m != kFollowSlice) return m;
      if (depth > kMaxChain) return Error(Errc::malformed, dict_.name() + ": slice chain too long");
      MMAR_ASSIGN(id, dict_.slice_target(id));
    }
    return 0u;
  }

  // The arrays nested directly in array `id`, `id` first.
  Result<std::vector<CtfDict::ArrayInfo>> array_chain(uint32_t id) const {
    std::vector<CtfDict::ArrayInfo> chain;
    for (;;) {
      MMAR_ASSIGN(CtfDict::ArrayInfo a, dict_.array(id));
      chain.push_back(a);
      if (chain.size() > kMaxChain) return Error(Errc::malformed, dict_.name() + ": array nesting too deep");
      if (a.contents == 0) break;
      MMAR_ASSIGN(CtfTypeInfo c, dict_.type(a.contents));
      if (c.kind != CtfKind::array) break;
      id = a.contents;
    }
    return chain;
  }

  Error unsupported(uint32_t id, const std::string& what) const {
    return Error(Errc::unsupported, dict_.name() + ": type " + std::to_string(id & ~kChildBit) +
                                        (dict_.is_child() && (id & kChildBit) != 0 ? " (child)" : "") + ": " + what);
  }

  static uint8_t int_encoding(uint32_t format) {
    if ((format & kCtfIntBool) != 0) return 4;    // BTF_INT_BOOL
    if ((format & kCtfIntSigned) != 0) return 1;  // BTF_INT_SIGNED
    if ((format & kCtfIntChar) != 0) return 2;    // BTF_INT_CHAR
    return 0;
  }

  Result<void> convert(uint32_t id) {
    MMAR_ASSIGN(CtfTypeInfo t, dict_.type(id));
    MMAR_ASSIGN(uint32_t self, mapped(id));
    if (self == 0 || self == kFollowSlice) return success();
    auto added = [&](Result<uint32_t> r) -> Result<void> {
      if (!r.ok()) return unsupported(id, r.error().message());
      if (*r != self) return Error(Errc::invalid_argument, dict_.name() + ": BTF ID out of step with the plan");
      return success();
    };
    switch (t.kind) {
      case CtfKind::integer: {
        MMAR_ASSIGN(CtfDict::Encoding e, dict_.encoding(id));
        if (e.offset != 0 || e.bits != t.size * 8) {
          return unsupported(id, "an integer of " + std::to_string(e.bits) + " bits at bit " +
                                     std::to_string(e.offset) + " of " + std::to_string(t.size) + " bytes");
        }
        return added(b_.add_int(t.name, static_cast<uint32_t>(t.size), int_encoding(e.format)));
      }
      case CtfKind::float_:
        // Complex floats too: BTF has no kind for them, and gcc -gbtf writes
        // them as FLOATs of their name and size; so does this.
        return added(b_.add_float(t.name, static_cast<uint32_t>(t.size)));
      case CtfKind::pointer: {
        MMAR_ASSIGN(uint32_t to, ref(t.ref));
        return added(b_.add_ptr(to));
      }
      case CtfKind::typedef_: {
        MMAR_ASSIGN(uint32_t to, ref(t.ref));
        return added(b_.add_typedef(t.name, to));
      }
      case CtfKind::volatile_:
      case CtfKind::const_:
      case CtfKind::restrict_: {
        MMAR_ASSIGN(uint32_t to, ref(t.ref));
        return added(t.kind == CtfKind::volatile_ ? b_.add_volatile(to)
                     : t.kind == CtfKind::const_  ? b_.add_const(to)
                                                  : b_.add_restrict(to));
      }
      case CtfKind::array: {
        MMAR_ASSIGN(CtfDict::ArrayInfo a, dict_.array(id));
        MMAR_ASSIGN(uint32_t index, ref(a.index));
        if (auto it = chain_of_.find(id); it != chain_of_.end()) {
          // C order: the innermost stored level's count is the outermost dimension.
          const Chain& c = chains_[it->second];
          return added(b_.add_array(index, c.first_inner, c.levels.back().nelems));
        }
        MMAR_ASSIGN(uint32_t contents, ref(a.contents));
        return added(b_.add_array(index, contents, a.nelems));
      }
      case CtfKind::struct_:
      case CtfKind::union_: {
        if (t.size > UINT32_MAX) return unsupported(id, "a struct larger than BTF's 4 GiB");
        MMAR_TRY(added(t.kind == CtfKind::struct_ ? b_.add_struct(t.name, static_cast<uint32_t>(t.size))
                                                  : b_.add_union(t.name, static_cast<uint32_t>(t.size))));
        MMAR_ASSIGN(std::vector<CtfMember> members, dict_.members(id));
        for (const CtfMember& m : members) {
          MMAR_ASSIGN(CtfTypeInfo mt, dict_.type(m.type));
          uint64_t offset = m.offset;
          uint32_t bits = 0;
          if (mt.kind == CtfKind::slice) {
            MMAR_ASSIGN(CtfDict::Encoding e, dict_.encoding(m.type));
            offset += e.offset;
            bits = e.bits;
          }
          if (offset > UINT32_MAX) return unsupported(id, "member '" + std::string(m.name) + "' beyond 4 GiB");
          MMAR_ASSIGN(uint32_t type, ref(m.type));
          auto r = b_.add_field(m.name, type, static_cast<uint32_t>(offset), bits);
          if (!r.ok()) return unsupported(id, "member '" + std::string(m.name) + "': " + r.error().message());
        }
        return success();
      }
      case CtfKind::enum_: {
        auto r = b_.add_enum(t.name, static_cast<uint32_t>(t.size));
        if (!r.ok()) return unsupported(id, r.error().message() + " (this one has " + std::to_string(t.size) + ")");
        MMAR_TRY(added(r));
        MMAR_ASSIGN(std::vector<CtfMember> values, dict_.members(id));
        for (const CtfMember& v : values) MMAR_TRY(b_.add_enum_value(v.name, v.value));
        return success();
      }
      case CtfKind::forward:
        if (t.ref == static_cast<uint32_t>(CtfKind::enum_)) return added(b_.add_enum(t.name, 4));
        return added(b_.add_fwd(t.name, t.ref == static_cast<uint32_t>(CtfKind::union_)));
      case CtfKind::function: {
        MMAR_ASSIGN(CtfDict::FunctionInfo f, dict_.function(id));
        MMAR_ASSIGN(uint32_t ret, ref(f.return_type));
        MMAR_TRY(added(b_.add_func_proto(ret)));
        for (uint32_t arg : f.args) {
          MMAR_ASSIGN(uint32_t a, ref(arg));
          MMAR_TRY(b_.add_param("", a));
        }
        if (f.varargs) MMAR_TRY(b_.add_param("", 0));
        return success();
      }
      default: return unsupported(id, std::string("kind ") + ctf_kind_name(t.kind) + " has no BTF equivalent");
    }
  }

  // The levels below a chain's head, outermost first in C order: stored
  // levels[k-2] .. levels[0] as dimensions, the last one holding the
  // element type of the innermost stored level.
  Result<void> emit_inner_arrays(const Chain& c) {
    const size_t k = c.levels.size();
    MMAR_ASSIGN(uint32_t index, ref(c.levels.front().index));
    MMAR_ASSIGN(uint32_t elem, ref(c.levels.back().contents));
    for (size_t j = 1; j < k; ++j) {
      const uint32_t nelems = c.levels[k - 1 - j].nelems;
      const uint32_t contents = j + 1 < k ? c.first_inner + static_cast<uint32_t>(j) : elem;
      MMAR_ASSIGN(uint32_t got, b_.add_array(index, contents, nelems));
      if (got != c.first_inner + j - 1) {
        return Error(Errc::invalid_argument, dict_.name() + ": BTF ID out of step with the plan");
      }
    }
    return success();
  }

  const CtfDict& dict_;
  BtfBuilder b_;
  uint32_t parent_count_ = 0, own_count_ = 0;
  std::vector<uint32_t> parent_map_, own_map_;  // by index (1-based)
  std::vector<Chain> chains_;
  std::unordered_map<uint32_t, size_t> chain_of_;  // head's CTF ID -> chains_ index
  BtfFromCtfResult result_;
};

}  // namespace

Result<BtfFromCtfResult> btf_convert_ctf(const CtfDict& dict) {
  MMAR_TRY(dict.validate());  // every record is read: check them all first
  return Converter(dict).run();
}

Result<BtfFromCtfResult> btf_from_ctf(const std::string& out, const std::string& path, const std::string& member) {
  MMAR_ASSIGN(CtfFile file, ctf_open_file(path));
  const CtfDict* dict = nullptr;
  for (const auto& e : file.dicts) {
    if (member.empty() ? (file.dicts.size() == 1 || e.name == ".ctf") : e.name == member) {
      dict = &e.dict;
      break;
    }
  }
  if (dict == nullptr) {
    std::string names;
    for (const auto& e : file.dicts) names += (names.empty() ? "" : ", ") + e.name;
    return Error(Errc::not_found, path + ": no CTF dict " + (member.empty() ? "to pick" : "named '" + member + "'") +
                                      " (it has: " + names + ")");
  }
  MMAR_ASSIGN(BtfFromCtfResult r, btf_convert_ctf(*dict));
  MMAR_ASSIGN(AtomicFile f, AtomicFile::create(out));
  MMAR_TRY(pwrite_full(f.fd(), r.btf.data(), r.btf.size(), 0, out));
  MMAR_TRY(f.commit());
  return r;
}

}  // namespace mmar
