// SPDX-License-Identifier: BSD-2-Clause
// Kernel BTF to a CTF archive shaped like DTrace's vmlinux.ctfa
// (include/mmar/ctf.h, ctf_convert_btf / ctf_from_btf; the kind mapping is
// documented there).
//
// One BTF (the base, or one module's split BTF) becomes one dict in two
// passes: the first gives every kept BTF type its CTF ID (in BTF order, so
// references forward and backward are known before any record is written),
// the second writes the records. Types the BTF does not have as records of
// their own come after the BTF's types: bitfield slices (one per type and
// width) and the inner arrays of a multi-dimensional array (stored with
// their dimensions swapped, see the header).
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "btf/modules.h"
#include "mmar/archive.h"
#include "mmar/ctf.h"

namespace mmar {

namespace {

constexpr uint32_t kChildBit = 0x80000000u;

// A type that the second pass appends after the BTF's own: an array or a slice.
struct Extra {
  bool slice = false;
  uint32_t a = 0, b = 0, c = 0;  // array: contents, index, nelems; slice: ref, bits, size
};

class Converter {
 public:
  Converter(const Btf& btf, CtfBuilder& out, CtfBuilder& symbols, const std::vector<uint32_t>* base_map,
            CtfFromBtfResult& stats)
      : btf_(btf), out_(out), symbols_(symbols), base_map_(base_map), stats_(stats) {}

  Result<void> run() {
    start_ = btf_.start_id();
    MMAR_ASSIGN(end_, btf_.type_count());
    map_.assign(end_ - start_, 0);
    // Pass 1: IDs. A base's dict starts with `void`, an integer of no size
    // and no bits named "void", as gcc's CTF has it: libctf names type 0
    // nowhere (ctf_type_aname of a function returning void, or of `void *`,
    // fails; ctf_add_type refuses them), so BTF's void (type 0) is this type
    // wherever a type refers to it (a module's, the parent's).
    uint32_t n = 0;
    if (base_map_ == nullptr) void_id_ = own_id(++n);
    for (uint32_t id = start_; id < end_; ++id) {
      MMAR_ASSIGN(BtfType t, btf_.type(id));
      if (kept(t.kind())) map_[id - start_] = own_id(++n);
    }
    direct_ = n;
    for (uint32_t id = start_; id < end_; ++id) {
      MMAR_ASSIGN(BtfType t, btf_.type(id));
      if (t.kind() != BtfKind::type_tag) continue;
      uint32_t target = t.type();
      for (int depth = 0; target >= start_; ++depth) {  // through chains of tags
        MMAR_ASSIGN(BtfType u, btf_.type(target));
        if (u.kind() != BtfKind::type_tag) break;
        if (depth > 64)
          return Error(Errc::malformed, btf_.name() + ": type tag chain too long at type " + std::to_string(id));
        target = u.type();
      }
      map_[id - start_] = target >= start_ ? map_[target - start_] : ctf_id(target);
    }
    // Pass 2: records.
    if (base_map_ == nullptr) {
      MMAR_ASSIGN(uint32_t id, out_.add_integer("void", 0, 0, 0));
      if (id != void_id_) return Error(Errc::invalid_argument, btf_.name() + ": CTF ID of void differs");
    }
    for (uint32_t id = start_; id < end_; ++id) {
      MMAR_ASSIGN(BtfType t, btf_.type(id));
      MMAR_TRY(convert(t));
    }
    for (const Extra& e : extras_) {
      if (e.slice) {
        MMAR_TRY(out_.add_slice(e.a, 0, e.b, e.c));
      } else {
        MMAR_TRY(out_.add_array(e.a, e.b, e.c));
      }
    }
    stats_.types += out_.type_count();
    return success();
  }

  const std::vector<uint32_t>& map() const { return map_; }
  uint32_t void_id() const { return void_id_; }

 private:
  static bool kept(BtfKind k) {
    switch (k) {
      case BtfKind::func:
      case BtfKind::var:
      case BtfKind::datasec:
      case BtfKind::decl_tag:
      case BtfKind::type_tag:
      case BtfKind::unknown: return false;
      default: return true;
    }
  }
  uint32_t own_id(uint32_t index) const { return out_.is_child() ? (index | kChildBit) : index; }
  uint32_t ctf_id(uint32_t btf_id) const {
    if (btf_id == 0) return base_map_ != nullptr && !base_map_->empty() ? (*base_map_)[0] : void_id_;
    if (btf_id < start_) return base_map_ != nullptr && btf_id < base_map_->size() ? (*base_map_)[btf_id] : 0;
    return btf_id - start_ < map_.size() ? map_[btf_id - start_] : 0;
  }
  // The CTF type a reference to BTF type `btf_id` names: its CTF ID, except
  // for an enum that is not int-sized (through type tags): libctf 2.40 gives
  // every enum type the data model's int size and alignment, so references
  // go to a slice of the enum with all its bits and its own size, which
  // libctf sizes and aligns by its ctt_size and still calls the enum.
  Result<uint32_t> ref(uint32_t btf_id) {
    uint32_t target = btf_id;
    for (int depth = 0; target != 0; ++depth) {
      MMAR_ASSIGN(BtfType t, btf_.type(target));
      if (t.kind() == BtfKind::type_tag && depth < 64) {
        target = t.type();
        continue;
      }
      if ((t.kind() == BtfKind::enum_ || t.kind() == BtfKind::enum64) && t.size() != 4 && t.size() <= 0x2000) {
        auto [it, added] = enum_slices_.try_emplace(target, 0);
        if (added) it->second = extra({true, ctf_id(target), t.size() * 8, t.size()});
        return it->second;
      }
      break;
    }
    return ctf_id(btf_id);
  }
  uint32_t extra(const Extra& e) {
    extras_.push_back(e);
    return own_id(direct_ + static_cast<uint32_t>(extras_.size()));
  }
  // A BTF type's size in bytes through typedefs, qualifiers and tags (for a
  // bitfield's slice); 0 when it has none.
  uint32_t btf_size(uint32_t id) const {
    for (int depth = 0; depth < 64 && id != 0; ++depth) {
      auto t = btf_.type(id);
      if (!t.ok()) return 0;
      switch (t->kind()) {
        case BtfKind::typedef_:
        case BtfKind::volatile_:
        case BtfKind::const_:
        case BtfKind::restrict_:
        case BtfKind::type_tag: id = t->type(); break;
        case BtfKind::int_:
        case BtfKind::enum_:
        case BtfKind::enum64:
        case BtfKind::struct_:
        case BtfKind::union_:
        case BtfKind::float_: return t->size();
        case BtfKind::ptr: return 8;
        default: return 0;
      }
    }
    return 0;
  }
  Result<void> check(uint32_t got, const BtfType& t) const {
    if (got != map_[t.id() - start_]) {
      return Error(Errc::invalid_argument, btf_.name() + ": CTF ID of BTF type " + std::to_string(t.id()) + " differs");
    }
    return success();
  }

  Result<void> convert(const BtfType& t) {
    const std::string_view name = btf_.name_of(t);
    switch (t.kind()) {
      case BtfKind::int_: {
        const uint32_t enc = t.extra_u32(0);
        MMAR_ASSIGN(uint32_t id, out_.add_integer(name, (enc >> 24) & 0xf, enc & 0xff, t.size(), (enc >> 16) & 0xff));
        return check(id, t);
      }
      case BtfKind::float_: {
        const uint32_t size = t.size();
        const uint32_t format = size == 8 ? kCtfFpDouble : size > 8 ? kCtfFpLDouble : kCtfFpSingle;
        MMAR_ASSIGN(uint32_t id, out_.add_float(name, format, size * 8, size));
        return check(id, t);
      }
      case BtfKind::ptr: {
        MMAR_ASSIGN(uint32_t target, ref(t.type()));
        MMAR_ASSIGN(uint32_t id, out_.add_pointer(target));
        return check(id, t);
      }
      case BtfKind::typedef_: {
        MMAR_ASSIGN(uint32_t target, ref(t.type()));
        MMAR_ASSIGN(uint32_t id, out_.add_typedef(name, target));
        return check(id, t);
      }
      case BtfKind::volatile_:
      case BtfKind::const_:
      case BtfKind::restrict_: {
        const CtfKind k = t.kind() == BtfKind::volatile_ ? CtfKind::volatile_
                          : t.kind() == BtfKind::const_  ? CtfKind::const_
                                                         : CtfKind::restrict_;
        MMAR_ASSIGN(uint32_t target, ref(t.type()));
        MMAR_ASSIGN(uint32_t id, out_.add_cv(k, target));
        return check(id, t);
      }
      case BtfKind::array: {
        // The dimensions of directly nested arrays, outermost (C order) first.
        const uint32_t index = ctf_id(t.extra_u32(1));
        std::vector<uint32_t> dims = {t.extra_u32(2)};
        uint32_t elem = t.extra_u32(0);
        for (int depth = 0; elem != 0 && depth < 64; ++depth) {
          MMAR_ASSIGN(BtfType e, btf_.type(elem));
          if (e.kind() != BtfKind::array) break;
          dims.push_back(e.extra_u32(2));
          elem = e.extra_u32(0);
        }
        // Stored innermost = the first dimension: libctf 2.40 prints the
        // innermost first, so it names this `E [d1][d2]...`.
        MMAR_ASSIGN(uint32_t contents, ref(elem));
        for (size_t k = 0; k + 1 < dims.size(); ++k) contents = extra({false, contents, index, dims[k]});
        MMAR_ASSIGN(uint32_t id, out_.add_array(contents, index, dims.back()));
        return check(id, t);
      }
      case BtfKind::struct_:
      case BtfKind::union_: {
        std::vector<std::pair<uint64_t, uint32_t>> members;  // (bit offset, CTF type)
        members.reserve(t.vlen());
        for (uint32_t i = 0; i < t.vlen(); ++i) {
          const uint32_t type = t.extra_u32(i * 3 + 1);
          const uint32_t off = t.extra_u32(i * 3 + 2);
          uint32_t bits = t.kflag() ? off >> 24 : 0;
          uint32_t ctf = 0;
          if (bits == 0) {
            MMAR_ASSIGN(ctf, ref(type));
          } else {  // a slice of the type itself (not of an enum's slice)
            ctf = ctf_id(type);
            const uint32_t size = btf_size(type);
            const uint64_t key = (uint64_t{ctf} << 16) | bits;
            auto [it, added] = slices_.try_emplace(key, 0);
            if (added) it->second = extra({true, ctf, bits, size != 0 ? size : (bits + 7) / 8});
            ctf = it->second;
          }
          members.emplace_back(t.kflag() ? off & 0xffffff : off, ctf);
        }
        MMAR_ASSIGN(uint32_t id,
                    t.kind() == BtfKind::struct_ ? out_.add_struct(name, t.size()) : out_.add_union(name, t.size()));
        for (uint32_t i = 0; i < t.vlen(); ++i) {
          auto mname = btf_.str(t.extra_u32(i * 3));
          MMAR_TRY(out_.add_member(mname ? *mname : "", members[i].second, members[i].first));
        }
        return check(id, t);
      }
      case BtfKind::enum_:
      case BtfKind::enum64: {
        MMAR_ASSIGN(uint32_t id, out_.add_enum(name, t.size()));
        const bool wide = t.kind() == BtfKind::enum64;
        for (uint32_t i = 0; i < t.vlen(); ++i) {
          const uint32_t stride = wide ? 3 : 2;
          auto vname = btf_.str(t.extra_u32(i * stride));
          const uint32_t lo = t.extra_u32(i * stride + 1);
          int32_t value = static_cast<int32_t>(lo);
          if (wide) {
            const uint64_t v = (uint64_t{t.extra_u32(i * stride + 2)} << 32) | lo;
            const bool fits = t.kflag() ? static_cast<int64_t>(v) == static_cast<int64_t>(value)
                                        : v <= static_cast<uint64_t>(INT32_MAX);
            if (!fits) ++stats_.enum64_truncated;
          }
          MMAR_TRY(out_.add_enumerator(vname && !vname->empty() ? *vname : "(anon)", value));
        }
        return check(id, t);
      }
      case BtfKind::fwd: {
        MMAR_ASSIGN(uint32_t id, out_.add_forward(name, t.kflag() ? CtfKind::union_ : CtfKind::struct_));
        return check(id, t);
      }
      case BtfKind::func_proto: {
        std::vector<uint32_t> args;
        bool varargs = false;
        for (uint32_t i = 0; i < t.vlen(); ++i) {
          const uint32_t type = t.extra_u32(i * 2 + 1);
          if (type == 0 && i + 1 == t.vlen()) {
            varargs = true;
          } else {
            MMAR_ASSIGN(uint32_t arg, ref(type));
            args.push_back(arg);
          }
        }
        MMAR_ASSIGN(uint32_t ret, ref(t.type()));
        MMAR_ASSIGN(uint32_t id, out_.add_function(ret, args, varargs));
        return check(id, t);
      }
      case BtfKind::func: {
        if (name.empty() || !symbol_names_.emplace(name).second) return success();
        ++stats_.functions;
        return symbols_.add_function_symbol(name, ctf_id(t.type()));
      }
      case BtfKind::var: {
        if (name.empty() || !object_names_.emplace(name).second) return success();
        ++stats_.objects;
        MMAR_ASSIGN(uint32_t type, ref(t.type()));
        return symbols_.add_object_symbol(name, type);
      }
      default: return success();  // DATASEC, DECL_TAG, TYPE_TAG (mapped in pass 1)
    }
  }

  const Btf& btf_;
  CtfBuilder& out_;      // the types
  CtfBuilder& symbols_;  // the function and data-object symbols
  const std::vector<uint32_t>* base_map_;
  CtfFromBtfResult& stats_;
  uint32_t start_ = 1, end_ = 1, direct_ = 0;
  uint32_t void_id_ = 0;       // the base dict's `void`
  std::vector<uint32_t> map_;  // [id - start_]: CTF ID
  std::vector<Extra> extras_;
  std::unordered_map<uint64_t, uint32_t> slices_;       // (type, bits) -> slice ID
  std::unordered_map<uint32_t, uint32_t> enum_slices_;  // BTF enum ID -> its full-width slice
  std::unordered_set<std::string_view> symbol_names_, object_names_;
};

constexpr const char* kParentName = "shared_ctf";

}  // namespace

Result<CtfFromBtfResult> ctf_convert_btf(const Btf& vmlinux, const std::vector<CtfFromBtfModule>& modules) {
  if (vmlinux.is_split()) return Error(Errc::invalid_argument, vmlinux.name() + ": not a base BTF");
  CtfFromBtfResult r;
  CtfBuilder shared;
  CtfBuilder core(kParentName);
  Converter base(vmlinux, shared, core, nullptr, r);
  MMAR_TRY(base.run());
  r.base_type_map.assign(vmlinux.start_id(), 0);
  r.base_type_map[0] = base.void_id();  // BTF's void
  r.base_type_map.insert(r.base_type_map.end(), base.map().begin(), base.map().end());
  MMAR_ASSIGN(auto shared_bytes, shared.write());
  MMAR_ASSIGN(auto core_bytes, core.write());
  r.dicts.push_back({kParentName, std::move(shared_bytes)});
  r.dicts.push_back({"vmlinux", std::move(core_bytes)});
  for (const auto& m : modules) {
    if (m.name == kParentName || m.name == "vmlinux") {
      return Error(Errc::invalid_argument, m.name + ": a module may not be named as the archive's own dicts");
    }
    CtfBuilder child(kParentName);
    child.set_cu_name(m.name);
    Converter c(m.btf, child, child, &r.base_type_map, r);
    MMAR_TRY(c.run());
    MMAR_ASSIGN(auto bytes, child.write());
    r.dicts.push_back({m.name, std::move(bytes)});
  }
  // Valid BTF may still be no valid CTF (a struct holding itself by value,
  // a pointer to itself: BTF's checks allow them, CTF's reader refuses
  // reference cycles): what the reader refuses is not written.
  std::optional<CtfDict> parent;
  for (const auto& d : r.dicts) {
    CtfOpenOptions o;
    o.validate = true;
    if (parent) o.parent = &*parent;
    auto dict = CtfDict::open(Bytes(d.bytes, nullptr), d.name, o);
    if (!dict.ok()) {
      return Error(Errc::invalid_argument, vmlinux.name() + ": no valid CTF: " + dict.error().message());
    }
    if (!parent) parent = std::move(*dict);
  }
  return r;
}

Result<CtfFromBtfStats> ctf_from_btf(const std::string& out, const std::string& vmlinux,
                                     const std::vector<std::string>& module_args) {
  MMAR_ASSIGN(Btf base, Btf::open(vmlinux, nullptr, BtfOpenOptions{.validate = true}));
  MMAR_ASSIGN(auto files, btf_module_files(module_args));
  std::vector<CtfFromBtfModule> modules;
  std::unordered_set<std::string> names;
  for (const auto& [member, path] : files) {
    std::string name = path.substr(path.find_last_of('/') + 1);
    if (name == "vmlinux") continue;  // /sys/kernel/btf holds the base too
    if (!names.insert(name).second)
      return Error(Errc::invalid_argument, path + ": a second module named '" + name + "'");
    MMAR_ASSIGN(Btf m, Btf::open(path, &base, BtfOpenOptions{.validate = true}));
    modules.push_back({std::move(name), std::move(m)});
  }
  MMAR_ASSIGN(CtfFromBtfResult r, ctf_convert_btf(base, modules));
  WriteOptions o;
  o.format = Format::ctf;
  o.codec = Codec::none;
  Writer w(o);
  for (auto& d : r.dicts) MMAR_TRY(w.add_bytes(d.name, std::move(d.bytes)));
  MMAR_ASSIGN(WriteStats ws, w.write(out));
  return CtfFromBtfStats{modules.size(), r.types, r.functions, r.objects, r.enum64_truncated, ws.archive_bytes};
}

}  // namespace mmar
