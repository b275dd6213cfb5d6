// SPDX-License-Identifier: BSD-2-Clause
#include "support/libctf_from_btf.h"

#include <string>

namespace mmar::test {

void LibctfFromBtf::run() {
  const uint32_t end = *btf_.type_count();
  memo_.assign(end, kUnset);
  if (void_type_) {
    const ctf_encoding_t none{0, 0, 0};
    void_ = rooted([&](uint32_t f) { return ctf_add_integer(fp_, f, "void", &none); });
  }
  for (uint32_t id = 1; id < end; ++id) (void)add(id);
  for (uint32_t id = 1; id < end; ++id) {
    auto t = *btf_.type(id);
    const std::string name(btf_.name_of(t));
    if (t.kind() == BtfKind::func) {
      if (ctf_add_func_sym(fp_, name.c_str(), add(t.type())) != 0) ++refused;
    } else if (t.kind() == BtfKind::var) {
      if (ctf_add_objt_sym(fp_, name.c_str(), add(t.type())) != 0) ++refused;
    }
  }
}

template <class F>
ctf_id_t LibctfFromBtf::rooted(F&& add_with_flag) {
  ctf_id_t r = add_with_flag(CTF_ADD_ROOT);
  if (r == CTF_ERR) r = add_with_flag(CTF_ADD_NONROOT);
  if (r == CTF_ERR) ++refused;
  return r == CTF_ERR ? 0 : r;
}

ctf_id_t LibctfFromBtf::add(uint32_t id) {
  if (id == 0) return void_;
  if (memo_[id] != kUnset) return memo_[id];
  auto t = *btf_.type(id);
  const std::string name(btf_.name_of(t));
  const char* n = name.empty() ? nullptr : name.c_str();
  using K = BtfKind;
  ctf_id_t r = 0;
  switch (t.kind()) {
    case K::int_: {
      const uint32_t enc = t.extra_u32(0);
      ctf_encoding_t e{(enc >> 24) & 0xf, (enc >> 16) & 0xff, enc & 0xff};
      r = rooted([&](uint32_t f) { return ctf_add_integer(fp_, f, n, &e); });
      break;
    }
    case K::float_: {
      const uint32_t format = t.size() == 8 ? CTF_FP_DOUBLE : t.size() > 8 ? CTF_FP_LDOUBLE : CTF_FP_SINGLE;
      ctf_encoding_t e{format, 0, t.size() * 8};
      r = rooted([&](uint32_t f) { return ctf_add_float(fp_, f, n, &e); });
      break;
    }
    case K::ptr: {
      const ctf_id_t to = add(t.type());
      r = rooted([&](uint32_t f) { return ctf_add_pointer(fp_, f, to); });
      break;
    }
    case K::typedef_: {
      const ctf_id_t to = add(t.type());
      r = rooted([&](uint32_t f) { return ctf_add_typedef(fp_, f, n, to); });
      break;
    }
    case K::volatile_:
    case K::const_:
    case K::restrict_: {
      const ctf_id_t to = add(t.type());
      const K k = t.kind();
      r = rooted([&](uint32_t f) {
        return k == K::volatile_ ? ctf_add_volatile(fp_, f, to)
               : k == K::const_  ? ctf_add_const(fp_, f, to)
                                 : ctf_add_restrict(fp_, f, to);
      });
      break;
    }
    case K::type_tag: r = add(t.type()); break;
    case K::array: {
      ctf_arinfo_t a{add(t.extra_u32(0)), add(t.extra_u32(1)), t.extra_u32(2)};
      r = rooted([&](uint32_t f) { return ctf_add_array(fp_, f, &a); });
      break;
    }
    case K::struct_:
    case K::union_: {
      const bool is_struct = t.kind() == K::struct_;
      r = rooted([&](uint32_t f) {
        return is_struct ? ctf_add_struct_sized(fp_, f, n, t.size()) : ctf_add_union_sized(fp_, f, n, t.size());
      });
      memo_[id] = r;  // before the members: they may point back
      for (uint32_t m = 0; m < t.vlen(); ++m) {
        auto mname = btf_.str(t.extra_u32(m * 3));
        const std::string mn(mname ? *mname : "");
        const uint32_t off = t.extra_u32(m * 3 + 2);
        const uint32_t bits = t.kflag() ? off >> 24 : 0;
        ctf_id_t mt = add(t.extra_u32(m * 3 + 1));
        if (bits != 0) {
          ctf_encoding_t e{0, 0, bits};
          const ctf_id_t slice = ctf_add_slice(fp_, CTF_ADD_NONROOT, mt, &e);
          if (slice != CTF_ERR) mt = slice;
        }
        if (r != 0 && ctf_add_member_offset(fp_, r, mn.empty() ? nullptr : mn.c_str(), mt,
                                            t.kflag() ? off & 0xffffff : off) != 0) {
          ++refused;
        }
      }
      return r;
    }
    case K::enum_:
    case K::enum64: {
      r = rooted([&](uint32_t f) { return ctf_add_enum(fp_, f, n); });
      const bool wide = t.kind() == K::enum64;
      for (uint32_t m = 0; r != 0 && m < t.vlen(); ++m) {
        auto vname = btf_.str(t.extra_u32(m * (wide ? 3 : 2)));
        const int value = static_cast<int>(t.extra_u32(m * (wide ? 3 : 2) + 1));
        if (ctf_add_enumerator(fp_, r, std::string(vname ? *vname : "").c_str(), value) != 0) ++refused;
      }
      break;
    }
    case K::fwd: {
      const uint32_t kind = t.kflag() ? CTF_K_UNION : CTF_K_STRUCT;
      r = rooted([&](uint32_t f) { return ctf_add_forward(fp_, f, n, kind); });
      break;
    }
    case K::func_proto: {
      std::vector<ctf_id_t> args;
      ctf_funcinfo_t fi{add(t.type()), 0, 0};
      for (uint32_t m = 0; m < t.vlen(); ++m) {
        const uint32_t a = t.extra_u32(m * 2 + 1);
        if (a == 0 && m + 1 == t.vlen()) {
          fi.ctc_flags |= CTF_FUNC_VARARG;
        } else {
          args.push_back(add(a));
        }
      }
      fi.ctc_argc = static_cast<uint32_t>(args.size());
      r = rooted([&](uint32_t f) { return ctf_add_function(fp_, f, &fi, args.data()); });
      break;
    }
    default: r = 0; break;  // FUNC, VAR (symbols), DATASEC, DECL_TAG
  }
  memo_[id] = r;
  return r;
}

}  // namespace mmar::test
