// SPDX-License-Identifier: BSD-2-Clause
// The kind-specific data of a CTF record (integer and slice encodings, array
// and function records) through the public CtfDict API, on the dict's own
// libctf-equivalent queries (dict_impl.h). Records were validated at open,
// so reading their data cannot run outside the dict.
#include <cinttypes>
#include <cstdio>

#include "ctf/dict_impl.h"

namespace mmar {

namespace {

Error kind_error(const CtfDict::Impl& d, uint32_t id, const char* want, CtfErr e) {
  char hex[16];
  std::snprintf(hex, sizeof hex, "0x%" PRIx32, id);
  const std::string who = d.name + ": type " + hex;
  switch (e) {
    case CtfErr::bad_id: return Error(id == 0 ? Errc::invalid_argument : Errc::not_found, who + ": no such type");
    case CtfErr::no_parent: return Error(Errc::not_found, who + " is the parent's, and no parent was given");
    case CtfErr::corrupt: return Error(Errc::malformed, who + ": type chain too deep");
    default: return Error(Errc::invalid_argument, who + ": not " + want);
  }
}

}  // namespace

Result<CtfDict::Encoding> CtfDict::encoding(uint32_t id) const {
  auto e = impl_->encoding(id);
  if (!e.ok()) return kind_error(*impl_, id, "an integer, float, enum or slice", e.err);
  return Encoding{e.v.format, e.v.offset, e.v.bits};
}

Result<CtfDict::ArrayInfo> CtfDict::array(uint32_t id) const {
  auto loc = impl_->locate(id);
  if (!loc.ok()) return kind_error(*impl_, id, "an array", loc.err);
  const Impl* d = loc.v.d;
  const CtfRec r = d->rec(loc.v.index);
  if (r.kind != static_cast<uint8_t>(CtfKind::array)) return kind_error(*impl_, id, "an array", CtfErr::wrong_kind);
  return ArrayInfo{d->u32(r.vdata()), d->u32(r.vdata() + 4), d->u32(r.vdata() + 8)};
}

Result<CtfDict::FunctionInfo> CtfDict::function(uint32_t id) const {
  auto t = impl_->resolve(id);
  if (!t.ok()) return kind_error(*impl_, id, "a function", t.err);
  auto loc = impl_->locate(t.v);
  if (!loc.ok()) return kind_error(*impl_, id, "a function", loc.err);
  const Impl* d = loc.v.d;  // the dict that owns the record (a child's parent, maybe)
  auto f = d->func_info(t.v);
  if (!f.ok()) return kind_error(*impl_, id, "a function", f.err);
  FunctionInfo out;
  out.return_type = f.v.ret;
  out.varargs = f.v.vararg;
  out.args.reserve(f.v.argc);
  for (uint32_t i = 0; i < f.v.argc; ++i) out.args.push_back(d->u32(f.v.args_off + uint64_t{i} * 4));
  return out;
}

Result<uint32_t> CtfDict::slice_target(uint32_t id) const {
  auto loc = impl_->locate(id);
  if (!loc.ok()) return kind_error(*impl_, id, "a slice", loc.err);
  const Impl* d = loc.v.d;
  const CtfRec r = d->rec(loc.v.index);
  if (r.kind != static_cast<uint8_t>(CtfKind::slice)) return kind_error(*impl_, id, "a slice", CtfErr::wrong_kind);
  return d->u32(r.vdata());
}

}  // namespace mmar
