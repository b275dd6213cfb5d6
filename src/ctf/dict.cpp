// SPDX-License-Identifier: BSD-2-Clause
// CTF dicts: open (header, sections, decompression, a validating walk of
// every record), and the libctf-equivalent queries over the records.
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <tuple>

#include "ctf/dict_impl.h"
#include "support/checked.h"

namespace mmar {

namespace {

std::string hex(uint64_t v) { return ctf_hex(v); }
Error malformed(const std::string& name, uint64_t offset, const std::string& what) {
  return ctf_malformed(name, offset, what);
}

const char* const kKindNames[] = {"unknown", "integer", "float",   "pointer",  "array", "function", "struct", "union",
                                  "enum",    "forward", "typedef", "volatile", "const", "restrict", "slice"};

// Bytes of variable data after a record of this kind; -1 for a kind this
// version does not define.
int64_t vbytes(uint8_t kind, uint64_t size, uint32_t vlen) {
  switch (static_cast<CtfKind>(kind)) {
    case CtfKind::integer:
    case CtfKind::float_: return 4;
    case CtfKind::unknown:
    case CtfKind::pointer:
    case CtfKind::forward:
    case CtfKind::typedef_:
    case CtfKind::volatile_:
    case CtfKind::const_:
    case CtfKind::restrict_: return 0;
    case CtfKind::array: return ctf::kArraySize;
    case CtfKind::slice: return ctf::kSliceSize;
    case CtfKind::function: return 4 * (int64_t{vlen} + (vlen & 1));
    case CtfKind::struct_:
    case CtfKind::union_: return int64_t{vlen} * (size >= ctf::kLstructThresh ? ctf::kLmemberSize : ctf::kMemberSize);
    case CtfKind::enum_: return int64_t{vlen} * ctf::kEnumSize;
  }
  return -1;
}

// Inflate a compressed dict's sections into exactly `want` bytes; any other
// length is an error (the size is checked before this allocates).
Result<std::vector<std::byte>> inflate_exact(const std::string& name, std::span<const std::byte> in, uint64_t want,
                                             uint32_t header_size) {
  std::vector<std::byte> out(want);
  z_stream zs{};
  if (inflateInit(&zs) != Z_OK) return Error(Errc::io, name + ": cannot initialise zlib");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
  zs.avail_in = static_cast<uInt>(std::min<size_t>(in.size(), UINT32_MAX));
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(want);
  int rc = inflate(&zs, Z_FINISH);
  uint64_t produced = want - zs.avail_out;
  bool more = false;
  if (rc == Z_BUF_ERROR && zs.avail_out == 0) {
    // Output full before the stream ended: find out whether it wanted more.
    unsigned char probe[1];
    zs.next_out = probe;
    zs.avail_out = 1;
    int rc2 = inflate(&zs, Z_FINISH);
    more = zs.avail_out == 0 || rc2 == Z_BUF_ERROR;
    if (rc2 == Z_STREAM_END && zs.avail_out == 1) more = false, rc = Z_STREAM_END;
  }
  inflateEnd(&zs);
  if (more) {
    return malformed(name, header_size,
                     "compressed dict inflates to more than the " + std::to_string(want) + " bytes its header claims");
  }
  if (rc != Z_STREAM_END) {
    if (rc == Z_BUF_ERROR || rc == Z_OK) {
      return malformed(name, header_size,
                       "compressed dict inflates to " + std::to_string(produced) + " bytes, its header claims " +
                           std::to_string(want));
    }
    return malformed(name, header_size,
                     std::string("compressed dict does not inflate: ") + (zs.msg ? zs.msg : "zlib error"));
  }
  if (produced != want) {
    return malformed(name, header_size,
                     "compressed dict inflates to " + std::to_string(produced) + " bytes, its header claims " +
                         std::to_string(want));
  }
  return out;
}

}  // namespace

const char* ctf_kind_name(CtfKind kind) {
  auto k = static_cast<uint8_t>(kind);
  return k <= kCtfMaxKind ? kKindNames[k] : "unknown";
}

// ---------------------------------------------------------------------------
// Records and queries.

std::optional<std::string_view> CtfDict::Impl::str(uint32_t ref) const {
  if (ref == 0) return std::string_view();  // "no name", even with an empty table (as libctf)
  const uint32_t off = ref & ctf::kNameOffsetMask;
  if (ctf::name_stid(ref) == 0) {
    if (off >= strs_len) return std::nullopt;
    return std::string_view(strs + off);  // the table ends in NUL (checked at open)
  }
  const auto& ext = syms.strtab;
  if (off >= ext.size()) return std::nullopt;
  const char* p = reinterpret_cast<const char*>(ext.data()) + off;
  const size_t len = strnlen(p, ext.size() - off);
  if (len == ext.size() - off) return std::nullopt;
  return std::string_view(p, len);
}

CtfRec CtfDict::Impl::rec(uint32_t index) const {
  CtfRec r;
  r.off = offs[index - 1];
  r.name = u32(r.off);
  r.info = u32(r.off + 4);
  r.st = u32(r.off + 8);
  if (r.st == ctf::kLsizeSent) {
    r.size = (uint64_t{u32(r.off + 12)} << 32) | u32(r.off + 16);
    r.incr = ctf::kTypeSize;
  } else {
    r.size = r.st;
    r.incr = ctf::kStypeSize;
  }
  r.kind = ctf::info_kind(r.info);
  r.root = ctf::info_isroot(r.info);
  r.vlen = ctf::info_vlen(r.info);
  return r;
}

Q<CtfDict::Impl::Loc> CtfDict::Impl::locate(uint32_t id) const {
  if (child && id <= ctf::kMaxParentType) {
    if (id == 0) return Q<Loc>::fail(CtfErr::bad_id);
    if (!parent) return Q<Loc>::fail(CtfErr::no_parent);
    return parent->locate(id);
  }
  if (!child && id > ctf::kMaxParentType) return Q<Loc>::fail(CtfErr::bad_id);
  const uint32_t index = id & ctf::kMaxParentType;
  if (index == 0) return Q<Loc>::fail(CtfErr::bad_id);
  if (index > count()) return Q<Loc>::fail(offs_error ? CtfErr::corrupt : CtfErr::bad_id);
  return {Loc{this, index}};
}

Q<int> CtfDict::Impl::kind_unsliced(uint32_t id) const {
  auto loc = locate(id);
  if (!loc.ok()) return Q<int>::fail(loc.err);
  return {loc.v.d->rec(loc.v.index).kind};
}

Q<uint32_t> CtfDict::Impl::reference(uint32_t id) const {
  auto loc = locate(id);
  if (!loc.ok()) return Q<uint32_t>::fail(loc.err);
  const CtfRec r = loc.v.d->rec(loc.v.index);
  switch (static_cast<CtfKind>(r.kind)) {
    case CtfKind::pointer:
    case CtfKind::typedef_:
    case CtfKind::volatile_:
    case CtfKind::const_:
    case CtfKind::restrict_: return {r.st};
    case CtfKind::slice: return {loc.v.d->u32(r.vdata())};
    default: return Q<uint32_t>::fail(CtfErr::not_ref);
  }
}

Q<int> CtfDict::Impl::kind(uint32_t id) const {
  auto k = kind_unsliced(id);
  if (!k.ok() || k.v != static_cast<int>(CtfKind::slice)) return k;
  auto ref = reference(id);
  if (!ref.ok()) return Q<int>::fail(ref.err);
  return kind_unsliced(ref.v);
}

Q<uint32_t> CtfDict::Impl::resolve(uint32_t id) const {
  const uint32_t otype = id;
  uint32_t prev = id;
  uint32_t type = id;
  if (type == 0) return Q<uint32_t>::fail(CtfErr::nonrepresentable);
  const Impl* cur = this;
  // Cycles were refused at open; the bound only guards the loop.
  for (uint64_t steps = 0; steps <= uint64_t{count()} + (parent ? parent->count() : 0) + 1; ++steps) {
    auto loc = cur->locate(type);
    if (!loc.ok()) return Q<uint32_t>::fail(loc.err);
    cur = loc.v.d;
    const CtfRec r = cur->rec(loc.v.index);
    switch (static_cast<CtfKind>(r.kind)) {
      case CtfKind::typedef_:
      case CtfKind::volatile_:
      case CtfKind::const_:
      case CtfKind::restrict_:
        if (r.st == type || r.st == otype || r.st == prev) return Q<uint32_t>::fail(CtfErr::corrupt);
        prev = type;
        type = r.st;
        break;
      case CtfKind::unknown: return Q<uint32_t>::fail(CtfErr::nonrepresentable);
      default: return {type};
    }
    if (type == 0) return Q<uint32_t>::fail(CtfErr::nonrepresentable);
  }
  return Q<uint32_t>::fail(CtfErr::corrupt);
}

void CtfDict::Impl::member(const Loc& at, const CtfRec& r, uint32_t i, uint32_t& name_ref, uint32_t& type,
                           uint64_t& offset) const {
  const Impl* d = at.d;
  // libctf 2.40 reads ctf_lmember_t only for records with the large size
  // form (ctt_size == CTF_LSIZE_SENT), although it sizes the member area by
  // CTF_LSTRUCT_THRESH: a struct between 512 MiB and 4 GiB has its
  // lmembers read as ctf_member_t. objdump prints that; so do we (the 12-byte
  // reads stay inside the 16-byte-per-member area).
  if (r.st == ctf::kLsizeSent && r.size >= ctf::kLstructThresh) {
    const uint64_t m = uint64_t{r.vdata()} + uint64_t{i} * ctf::kLmemberSize;
    name_ref = d->u32(m);
    offset = (uint64_t{d->u32(m + 4)} << 32) | d->u32(m + 12);
    type = d->u32(m + 8);
  } else {
    const uint64_t m = uint64_t{r.vdata()} + uint64_t{i} * ctf::kMemberSize;
    name_ref = d->u32(m);
    offset = d->u32(m + 4);
    type = d->u32(m + 8);
  }
}

Q<int64_t> CtfDict::Impl::size(uint32_t id, int depth) const {
  if (depth > kCtfMaxDepth) return Q<int64_t>::fail(CtfErr::corrupt);
  auto t = resolve(id);
  if (!t.ok()) return Q<int64_t>::fail(t.err);
  auto loc = locate(t.v);
  if (!loc.ok()) return Q<int64_t>::fail(loc.err);
  const Impl* d = loc.v.d;
  const CtfRec r = d->rec(loc.v.index);
  switch (static_cast<CtfKind>(r.kind)) {
    case CtfKind::pointer: return {ptr_size};
    case CtfKind::function: return {0};
    case CtfKind::enum_: return {int_size};
    case CtfKind::array: {
      if (static_cast<int64_t>(r.size) > 0) return {static_cast<int64_t>(r.size)};
      const uint32_t contents = d->u32(r.vdata());
      const uint32_t nelems = d->u32(r.vdata() + 8);
      auto s = d->size(contents, depth + 1);
      if (!s.ok()) return s;
      if (s.v < 0) return Q<int64_t>::fail(CtfErr::corrupt);
      return {static_cast<int64_t>(static_cast<uint64_t>(s.v) * nelems)};  // wraps as libctf's ssize_t would
    }
    case CtfKind::forward: return Q<int64_t>::fail(CtfErr::incomplete);
    default: return {static_cast<int64_t>(r.size)};
  }
}

Q<int64_t> CtfDict::Impl::align(uint32_t id, int depth) const {
  if (depth > kCtfMaxDepth) return Q<int64_t>::fail(CtfErr::corrupt);
  auto t = resolve(id);
  if (!t.ok()) return Q<int64_t>::fail(t.err);
  auto loc = locate(t.v);
  if (!loc.ok()) return Q<int64_t>::fail(loc.err);
  const Impl* d = loc.v.d;
  const CtfRec r = d->rec(loc.v.index);
  switch (static_cast<CtfKind>(r.kind)) {
    case CtfKind::pointer:
    case CtfKind::function: return {ptr_size};
    case CtfKind::array: return d->align(d->u32(r.vdata()), depth + 1);
    case CtfKind::struct_:
    case CtfKind::union_: {
      uint64_t a = 0;
      uint32_t n = r.vlen;
      if (r.kind == static_cast<uint8_t>(CtfKind::struct_)) n = std::min<uint32_t>(n, 1);
      for (uint32_t i = 0; i < n; ++i) {
        uint32_t mname, type;
        uint64_t off;
        member(loc.v, r, i, mname, type, off);
        auto am = d->align(type, depth + 1);
        // libctf adds a failed member's -1 as (size_t)-1: the struct's
        // alignment then reads as -1 (not printed).
        a = std::max(a, static_cast<uint64_t>(am.ok() ? am.v : -1));
      }
      return {static_cast<int64_t>(a)};
    }
    case CtfKind::enum_: return {int_size};
    case CtfKind::forward: return Q<int64_t>::fail(CtfErr::incomplete);
    default: return {static_cast<int64_t>(r.size)};
  }
}

Q<CtfEncoding> CtfDict::Impl::encoding(uint32_t id) const {
  auto loc = locate(id);
  if (!loc.ok()) return Q<CtfEncoding>::fail(loc.err);
  const Impl* d = loc.v.d;
  const CtfRec r = d->rec(loc.v.index);
  CtfEncoding e;
  switch (static_cast<CtfKind>(r.kind)) {
    case CtfKind::integer:
    case CtfKind::float_: {
      const uint32_t data = d->u32(r.vdata());
      e.format = ctf::enc_format(data);
      e.offset = ctf::enc_offset(data);
      e.bits = ctf::enc_bits(data);
      return {e};
    }
    case CtfKind::enum_: e.format = ctf::kIntSigned; return {e};
    case CtfKind::slice: {
      auto under = d->resolve(d->u32(r.vdata()));
      if (!under.ok()) return Q<CtfEncoding>::fail(under.err);
      if (under.v == id) return Q<CtfEncoding>::fail(CtfErr::corrupt);
      auto ue = d->encoding(under.v);
      if (!ue.ok()) return ue;
      e.format = ue.v.format;
      e.offset = d->u16(r.vdata() + 4);
      e.bits = d->u16(r.vdata() + 6);
      return {e};
    }
    default: return Q<CtfEncoding>::fail(CtfErr::wrong_kind);
  }
}

Q<CtfFuncInfo> CtfDict::Impl::func_info(uint32_t id) const {
  auto t = resolve(id);
  if (!t.ok()) return Q<CtfFuncInfo>::fail(t.err);
  auto loc = locate(t.v);
  if (!loc.ok()) return Q<CtfFuncInfo>::fail(loc.err);
  const Impl* d = loc.v.d;
  const CtfRec r = d->rec(loc.v.index);
  if (r.kind != static_cast<uint8_t>(CtfKind::function)) return Q<CtfFuncInfo>::fail(CtfErr::wrong_kind);
  CtfFuncInfo f;
  f.ret = r.st;
  f.argc = r.vlen;
  f.args_off = r.vdata();
  if (f.argc != 0 && d->u32(f.args_off + uint64_t{f.argc - 1} * 4) == 0) {
    f.vararg = true;
    --f.argc;
  }
  return {f};
}

// ctf_type_aname: the C declaration of a type, built from per-precedence
// lists of the type chain (ctf-decl.c's algorithm).
Q<std::string> CtfDict::Impl::aname(uint32_t id, int depth) const {
  if (depth > kCtfMaxDepth) return Q<std::string>::fail(CtfErr::corrupt);
  enum { kBase = 0, kPointer = 1, kArray = 2, kFunction = 3, kPrecs = 4 };
  struct Node {
    const Impl* d;
    uint32_t id;
    uint8_t kind;
    uint32_t n;
    CtfRec r;
  };
  std::vector<Node> nodes[kPrecs];
  int order[kPrecs] = {-1, -1, -1, -1};
  int qualp = kBase, ordp = kBase;
  CtfErr err = CtfErr::none;
  int steps = 0;

  // Iterative form of ctf_decl_push's tail recursion: each node pushes its
  // target first, so collect the chain, then place nodes from the far end.
  struct Pending {
    const Impl* d;
    uint32_t id;
    CtfRec r;
    uint32_t n;
    bool placed;  // false: a node with no print form (anonymous typedef, slice)
  };
  std::vector<Pending> chain;
  const Impl* cur = this;
  uint32_t type = id;
  for (;;) {
    if (++steps > kCtfMaxDepth) return Q<std::string>::fail(CtfErr::corrupt);
    auto loc = cur->locate(type);
    if (!loc.ok()) {
      err = loc.err;
      break;
    }
    cur = loc.v.d;
    const CtfRec r = cur->rec(loc.v.index);
    Pending p{cur, type, r, 1, true};
    bool more = true;
    uint32_t next = 0;
    switch (static_cast<CtfKind>(r.kind)) {
      case CtfKind::array:
        next = cur->u32(r.vdata());
        p.n = cur->u32(r.vdata() + 8);
        break;
      case CtfKind::typedef_:
        next = r.st;
        if (cur->strptr(r.name).empty()) {
          p.placed = false;
        } else {
          more = false;
        }
        break;
      case CtfKind::function:
      case CtfKind::pointer:
      case CtfKind::volatile_:
      case CtfKind::const_:
      case CtfKind::restrict_: next = r.st; break;
      case CtfKind::slice:
        next = cur->u32(r.vdata());
        p.placed = false;
        break;
      default: more = false;
    }
    chain.push_back(p);
    if (!more) break;
    type = next;
  }
  if (err != CtfErr::none) return Q<std::string>::fail(err);
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    if (!it->placed) continue;
    int prec;
    bool is_qual = false;
    switch (static_cast<CtfKind>(it->r.kind)) {
      case CtfKind::array: prec = kArray; break;
      case CtfKind::function: prec = kFunction; break;
      case CtfKind::pointer: prec = kPointer; break;
      case CtfKind::volatile_:
      case CtfKind::const_:
      case CtfKind::restrict_:
        prec = qualp;
        is_qual = true;
        break;
      default: prec = kBase;
    }
    Node node{it->d, it->id, it->r.kind, it->n, it->r};
    if (nodes[prec].empty()) order[prec] = ordp++;
    if (prec > qualp && prec < kArray) qualp = prec;
    if (is_qual && prec == kBase) {
      nodes[prec].insert(nodes[prec].begin(), node);
    } else {
      nodes[prec].push_back(node);
    }
  }

  const bool ptr = order[kPointer] > kPointer;
  const bool arr = order[kArray] > kArray;
  const int rp = arr ? kArray : ptr ? kPointer : -1;
  int lp = ptr ? kPointer : arr ? kArray : -1;
  uint8_t k = static_cast<uint8_t>(CtfKind::pointer);  // no leading space
  std::string out;
  for (int prec = kBase; prec < kPrecs; ++prec) {
    for (const Node& n : nodes[prec]) {
      const std::string_view nm = n.d->strptr(n.r.name);
      if (k != static_cast<uint8_t>(CtfKind::pointer) && k != static_cast<uint8_t>(CtfKind::array)) out += ' ';
      if (lp == prec) {
        out += '(';
        lp = -1;
      }
      switch (static_cast<CtfKind>(n.kind)) {
        case CtfKind::integer:
        case CtfKind::float_:
        case CtfKind::typedef_:
          if (nm.empty()) return Q<std::string>::fail(CtfErr::corrupt);
          out += nm;
          break;
        case CtfKind::pointer: out += '*'; break;
        case CtfKind::array:
          out += '[';
          out += std::to_string(n.n);
          out += ']';
          break;
        case CtfKind::function: {
          auto fi = n.d->func_info(n.id);
          if (!fi.ok()) return Q<std::string>::fail(fi.err);
          out += "(*) (";
          for (uint32_t i = 0; i < fi.v.argc; ++i) {
            auto a = n.d->aname(n.d->u32(fi.v.args_off + uint64_t{i} * 4), depth + 1);
            if (!a.ok()) return a;
            out += a.v;
            if (i + 1 < fi.v.argc || fi.v.vararg) out += ", ";
          }
          if (fi.v.vararg) out += "...";
          out += ')';
          break;
        }
        case CtfKind::struct_:
          out += "struct ";
          out += nm;
          break;
        case CtfKind::union_:
          out += "union ";
          out += nm;
          break;
        case CtfKind::enum_:
          out += "enum ";
          out += nm;
          break;
        case CtfKind::forward:
          switch (static_cast<CtfKind>(n.r.st)) {
            case CtfKind::struct_: out += "struct "; break;
            case CtfKind::union_: out += "union "; break;
            case CtfKind::enum_: out += "enum "; break;
            default: return Q<std::string>::fail(CtfErr::corrupt);
          }
          out += nm;
          break;
        case CtfKind::volatile_: out += "volatile"; break;
        case CtfKind::const_: out += "const"; break;
        case CtfKind::restrict_: out += "restrict"; break;
        case CtfKind::unknown:
          if (nm.empty()) {
            out += "(nonrepresentable type)";
          } else {
            out += "(nonrepresentable type ";
            out += nm;
            out += ')';
          }
          break;
        case CtfKind::slice: break;
      }
      k = n.kind;
    }
    if (rp == prec) out += ')';
  }
  return {std::move(out)};
}

std::vector<CtfDict::Symbol> CtfDict::Impl::symbols(bool functions) const {
  std::vector<CtfDict::Symbol> out;
  const bool skip_func_info = (hdr.flags & ctf::kFlagNewFuncInfo) == 0;
  const bool objt_indexed = hdr.objtidxoff < hdr.funcidxoff;
  const bool func_indexed = hdr.funcidxoff < hdr.varoff && !skip_func_info;
  if (functions ? func_indexed : objt_indexed) {
    const uint32_t idx = functions ? hdr.funcidxoff : hdr.objtidxoff;
    const uint32_t tab = functions ? hdr.funcoff : hdr.objtoff;
    const uint32_t len = functions ? (hdr.varoff - hdr.funcidxoff) / 4 : (hdr.funcidxoff - hdr.objtidxoff) / 4;
    for (uint32_t i = 0; i < len; ++i) {
      const uint32_t type = u32(tab + uint64_t{i} * 4);
      if (type == 0 || type == 0xffffffffu) continue;
      out.push_back({strptr(u32(idx + uint64_t{i} * 4)), type});
    }
    return out;
  }
  // Unindexed: the section follows the ELF symbol table's order, skipping
  // the symbols libctf skips (ctf_symtab_skippable: unnamed, undefined,
  // a few linker-defined names, absolute zero-valued objects).
  const auto& st = syms.symtab;
  const size_t entsize = syms.elf64 ? 24 : 16;
  if (st.empty() || (functions && skip_func_info)) return out;
  uint32_t objtoff = hdr.objtoff, funcoff = hdr.funcoff;
  const size_t nsyms = st.size() / entsize;
  for (size_t i = 0; i < nsyms; ++i) {
    const std::byte* s = st.data() + i * entsize;
    const uint32_t st_name = read_int<uint32_t>(s, syms.little);
    uint8_t info;
    uint16_t shndx;
    uint64_t value;
    if (syms.elf64) {
      info = static_cast<uint8_t>(s[4]);
      shndx = read_int<uint16_t>(s + 6, syms.little);
      value = read_int<uint64_t>(s + 8, syms.little);
    } else {
      value = read_int<uint32_t>(s + 4, syms.little);
      info = static_cast<uint8_t>(s[12]);
      shndx = read_int<uint16_t>(s + 14, syms.little);
    }
    const uint8_t type = info & 0xf;
    std::string_view sym_name;
    if (st_name < syms.strtab.size()) {
      const char* p = reinterpret_cast<const char*>(syms.strtab.data()) + st_name;
      sym_name = std::string_view(p, strnlen(p, syms.strtab.size() - st_name));
    }
    if (type != ctf::kSttFunc && type != ctf::kSttObject) continue;
    if (sym_name.empty() || shndx == ctf::kShnUndef || sym_name == "_START_" || sym_name == "_END_" ||
        (type == ctf::kSttObject && shndx == ctf::kShnAbs && value == 0)) {
      continue;
    }
    if (type == ctf::kSttObject) {
      if (objt_indexed || objtoff >= hdr.funcoff) continue;
      const uint32_t at = objtoff;
      objtoff += 4;
      if (functions) continue;
      const uint32_t t = u32(at);
      if (t != 0) out.push_back({sym_name, t});
    } else {
      if (func_indexed || funcoff >= hdr.objtidxoff || skip_func_info) continue;
      const uint32_t at = funcoff;
      funcoff += 4;
      if (!functions) continue;
      const uint32_t t = u32(at);
      if (t != 0) out.push_back({sym_name, t});
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Opening and validation.

namespace {

struct Opener {
  const CtfDict::Impl& d;
  uint64_t base;  // file offset of the sections (the header's size)

  Error bad(uint64_t sect_off, const std::string& what) const { return malformed(d.name, base + sect_off, what); }

  bool str_ok(uint32_t ref) const {
    if (ref == 0) return true;  // "no name", even with an empty string table
    if (ctf::name_stid(ref) == 0) return (ref & ctf::kNameOffsetMask) < d.strs_len;
    return d.str(ref).has_value();  // no table supplied: refused, as libctf refuses it
  }

  // `what` names the field; a callable, so its text is built only for an
  // error (validation runs over every record before a dump).
  template <class What>
  Result<void> check_str(uint32_t ref, uint64_t at, const What& what) const {
    if (!str_ok(ref)) {
      return bad(at, std::string(what()) + ": string offset " + hex(ref & ctf::kNameOffsetMask) +
                         (ctf::name_stid(ref) == 0 ? " past the string table (" + hex(d.strs_len) + " bytes)"
                          : d.syms.strtab.empty()  ? " in the ELF string table, and none was given"
                                                   : " past the ELF string table"));
    }
    return success();
  }

  // A referenced type ID: 0, one of this dict's, or (child) one of its
  // parent's when the parent is known.
  template <class What>
  Result<void> check_ref(uint32_t ref, uint64_t at, const What& what) const {
    if (ref == 0) return success();
    if (d.child && ref <= ctf::kMaxParentType) {
      if (d.parent && ref > d.parent->count()) {
        return bad(at,
                   std::string(what()) + " refers to type " + hex(ref) + ", past the parent's last type " + hex(d.parent->count()));
      }
      return success();
    }
    if (!d.child && ref > ctf::kMaxParentType) {
      return bad(at, std::string(what()) + " refers to child type " + hex(ref) + " in a parent dict");
    }
    const uint32_t index = ref & ctf::kMaxParentType;
    if (index == 0 || index > d.count()) {
      return bad(at, std::string(what()) + " refers to type " + hex(ref) + ", past the last type " + hex(d.id_of(d.count())));
    }
    return success();
  }

  Result<void> check_types() const {
    for (uint32_t index = 1; index <= d.count(); ++index) {
      const CtfRec r = d.rec(index);
      auto who = [&] { return "type " + hex(d.id_of(index)); };
      MMAR_TRY(check_str(r.name, r.off, [&] { return who() + " name"; }));
      const uint32_t v = r.vdata();
      switch (static_cast<CtfKind>(r.kind)) {
        case CtfKind::pointer:
        case CtfKind::typedef_:
        case CtfKind::volatile_:
        case CtfKind::const_:
        case CtfKind::restrict_: MMAR_TRY(check_ref(r.st, r.off + 8, who)); break;
        case CtfKind::function: {
          MMAR_TRY(check_ref(r.st, r.off + 8, [&] { return who() + " return type"; }));
          for (uint32_t i = 0; i < r.vlen; ++i)
            MMAR_TRY(check_ref(d.u32(v + uint64_t{i} * 4), v + uint64_t{i} * 4, [&] { return who() + " argument"; }));
          break;
        }
        case CtfKind::array:
          MMAR_TRY(check_ref(d.u32(v), v, [&] { return who() + " element type"; }));
          MMAR_TRY(check_ref(d.u32(v + 4), v + 4, [&] { return who() + " index type"; }));
          break;
        case CtfKind::slice: MMAR_TRY(check_ref(d.u32(v), v, [&] { return who() + " sliced type"; })); break;
        case CtfKind::struct_:
        case CtfKind::union_:
          for (uint32_t i = 0; i < r.vlen; ++i) {
            uint32_t name, type;
            uint64_t offset;
            d.member(CtfDict::Impl::Loc{&d, index}, r, i, name, type, offset);
            const uint64_t at =
                v + uint64_t{i} * (r.st == ctf::kLsizeSent && r.size >= ctf::kLstructThresh ? ctf::kLmemberSize
                                                                                            : ctf::kMemberSize);
            MMAR_TRY(check_str(name, at, [&] { return who() + " member " + std::to_string(i) + " name"; }));
            MMAR_TRY(check_ref(type, at + 8, [&] { return who() + " member " + std::to_string(i); }));
          }
          break;
        case CtfKind::enum_:
          for (uint32_t i = 0; i < r.vlen; ++i) {
            MMAR_TRY(check_str(d.u32(v + uint64_t{i} * 8), v + uint64_t{i} * 8,
                               [&] { return who() + " enumerator " + std::to_string(i) + " name"; }));
          }
          break;
        case CtfKind::forward:
          if (r.st != static_cast<uint32_t>(CtfKind::struct_) && r.st != static_cast<uint32_t>(CtfKind::union_) &&
              r.st != static_cast<uint32_t>(CtfKind::enum_)) {
            return bad(r.off + 8, who() + ": forward to kind " + std::to_string(r.st) + " (not struct, union or enum)");
          }
          break;
        default: break;
      }
    }
    return success();
  }

  // Own-dict edges of the naming graph (what ctf_type_aname follows) or the
  // layout graph (what sizes, alignments and member visits follow).
  void edges(uint32_t index, bool layout, std::vector<uint32_t>& out) const {
    out.clear();
    const CtfRec r = d.rec(index);
    auto add = [&](uint32_t ref) {
      if (ref == 0 || (d.child && ref <= ctf::kMaxParentType)) return;  // void, or the parent's
      const uint32_t to = ref & ctf::kMaxParentType;
      if (to != 0 && to <= d.count()) out.push_back(to);  // checked by check_ref already
    };
    const uint32_t v = r.vdata();
    switch (static_cast<CtfKind>(r.kind)) {
      case CtfKind::typedef_:
      case CtfKind::volatile_:
      case CtfKind::const_:
      case CtfKind::restrict_: add(r.st); break;
      case CtfKind::pointer:
        if (!layout) add(r.st);
        break;
      case CtfKind::slice: add(d.u32(v)); break;
      case CtfKind::array: add(d.u32(v)); break;
      case CtfKind::function:
        if (!layout) {
          add(r.st);
          for (uint32_t i = 0; i < r.vlen; ++i) add(d.u32(v + uint64_t{i} * 4));
        }
        break;
      case CtfKind::struct_:
      case CtfKind::union_:
        if (layout) {
          for (uint32_t i = 0; i < r.vlen; ++i) {
            uint32_t name, type;
            uint64_t offset;
            d.member(CtfDict::Impl::Loc{&d, index}, r, i, name, type, offset);
            add(type);
          }
        }
        break;
      default: break;
    }
  }

  Result<void> check_cycles(bool layout) const {
    const uint32_t n = d.count();
    std::vector<uint8_t> color(n + 1, 0);  // 0 new, 1 on the stack, 2 done
    // Depth-first, without recursion. The edges still to follow are one
    // pool used as a stack: the top frame's are [at, pool.size()), so
    // nothing is allocated per type.
    struct Frame {
      uint32_t index;
      size_t begin, at;
    };
    std::vector<Frame> stack;
    std::vector<uint32_t> pool, next;
    auto push = [&](uint32_t index) {
      color[index] = 1;
      edges(index, layout, next);
      stack.push_back({index, pool.size(), pool.size()});
      pool.insert(pool.end(), next.begin(), next.end());
    };
    for (uint32_t start = 1; start <= n; ++start) {
      if (color[start] != 0) continue;
      push(start);
      while (!stack.empty()) {
        Frame& f = stack.back();
        if (f.at == pool.size()) {
          color[f.index] = 2;
          pool.resize(f.begin);
          stack.pop_back();
          continue;
        }
        const uint32_t to = pool[f.at++];
        if (color[to] == 1) {
          return bad(d.rec(to).off, "type " + hex(d.id_of(to)) + " is part of a reference cycle" +
                                        (layout ? " (contains itself)" : ""));
        }
        if (color[to] == 0) push(to);
      }
    }
    return success();
  }

  Result<void> check_sections() const {
    const CtfHeader& h = d.hdr;
    for (uint32_t i = 0; i + ctf::kLabelSize <= h.objtoff - h.lbloff; i += ctf::kLabelSize) {
      MMAR_TRY(check_str(d.u32(h.lbloff + i), h.lbloff + i, [&] { return "label " + std::to_string(i / 8); }));
    }
    for (uint32_t i = 0; i + ctf::kVarSize <= h.typeoff - h.varoff; i += ctf::kVarSize) {
      auto who = [&] { return "variable " + std::to_string(i / 8); };
      MMAR_TRY(check_str(d.u32(h.varoff + i), h.varoff + i, [&] { return who() + " name"; }));
      MMAR_TRY(check_ref(d.u32(h.varoff + i + 4), h.varoff + i + 4, who));
    }
    auto symtypes = [&](uint32_t from, uint32_t to, const char* what) -> Result<void> {
      for (uint32_t o = from; o + 4 <= to; o += 4) {
        const uint32_t t = d.u32(o);
        if (t == 0xffffffffu) continue;  // pad
        MMAR_TRY(check_ref(t, o, [&] { return std::string(what) + " entry " + std::to_string((o - from) / 4); }));
      }
      return success();
    };
    MMAR_TRY(symtypes(h.objtoff, h.funcoff, "data object"));
    // Without CTF_F_NEWFUNCINFO (v2, old v3) the function section has
    // another format, which libctf (and so this reader) ignores.
    if (h.flags & ctf::kFlagNewFuncInfo) MMAR_TRY(symtypes(h.funcoff, h.objtidxoff, "function"));
    for (uint32_t o = h.objtidxoff; o + 4 <= h.varoff; o += 4) {
      MMAR_TRY(check_str(d.u32(o), o, [&] { return "symbol index entry " + std::to_string((o - h.objtidxoff) / 4); }));
    }
    return success();
  }
};

}  // namespace

Result<CtfDict> CtfDict::open(Bytes bytes, std::string name, const CtfOpenOptions& options) {
  auto impl = std::make_shared<Impl>();
  Impl& d = *impl;
  d.name = std::move(name);
  d.bytes = std::move(bytes);
  d.syms = options.symbols;
  d.ptr_size = options.pointer_size;
  if (options.parent) d.parent = std::shared_ptr<const Impl>(options.parent->impl_);
  const std::byte* p = d.bytes.data();
  const uint64_t n = d.bytes.size();
  if (n < ctf::kPreambleSize)
    return malformed(d.name, 0, "truncated: " + std::to_string(n) + " bytes, no CTF preamble");
  const uint16_t magic_le = read_int<uint16_t>(p, true);
  if (magic_le == ctf::kMagic) {
    d.little = true;
  } else if (magic_le == byteswap_int(ctf::kMagic)) {
    d.little = false;
  } else {
    return malformed(d.name, 0, "bad magic " + hex(magic_le) + " (not a CTF dict)");
  }
  CtfHeader& h = d.hdr;
  h.magic = ctf::kMagic;
  h.version = static_cast<uint8_t>(p[2]);
  h.flags = static_cast<uint8_t>(p[3]);
  d.open_flags = h.flags;
  if (h.version != ctf::kVersion2 && h.version != ctf::kVersion3) {
    return Error(Errc::unsupported,
                 d.name + ": CTF format version " + std::to_string(h.version) +
                     " (only 3, CTF_VERSION_2, and 4, CTF_VERSION_3, are read)",
                 2);
  }
  if (h.flags & ~ctf::kFlagsKnown) {
    return Error(Errc::unsupported, d.name + ": unknown CTF flags " + hex(h.flags) + " at 0x3", 3);
  }
  const uint32_t hsize = h.version == ctf::kVersion3 ? ctf::kHeaderV3Size : ctf::kHeaderV2Size;
  if (n < hsize) {
    return malformed(d.name, 0,
                     "truncated header: " + std::to_string(n) + " bytes, a version " + std::to_string(h.version) +
                         " header has " + std::to_string(hsize));
  }
  auto f = [&](uint32_t i) { return read_int<uint32_t>(p + 4 + i * 4, d.little); };
  if (h.version == ctf::kVersion3) {
    h.parlabel = f(0), h.parname = f(1), h.cuname = f(2), h.lbloff = f(3), h.objtoff = f(4), h.funcoff = f(5);
    h.objtidxoff = f(6), h.funcidxoff = f(7), h.varoff = f(8), h.typeoff = f(9), h.stroff = f(10), h.strlen = f(11);
  } else {
    h.parlabel = f(0), h.parname = f(1), h.lbloff = f(2), h.objtoff = f(3), h.funcoff = f(4), h.varoff = f(5);
    h.typeoff = f(6), h.stroff = f(7), h.strlen = f(8);
    h.objtidxoff = h.funcidxoff = h.varoff;  // v2 has no index sections
  }
  d.header_size = hsize;
  Opener o{d, hsize};  // for the header's string references

  // Sections: in order, 4-aligned where they hold words, inside the data.
  struct Field {
    uint32_t value;
    const char* name;
    uint32_t at;
  };
  const bool v3 = h.version == ctf::kVersion3;
  const Field order[] = {{h.lbloff, "label section", v3 ? 16u : 12u},
                         {h.objtoff, "data object section", v3 ? 20u : 16u},
                         {h.funcoff, "function info section", v3 ? 24u : 20u},
                         {h.objtidxoff, "object index section", v3 ? 28u : 24u},
                         {h.funcidxoff, "function index section", v3 ? 32u : 24u},
                         {h.varoff, "variable section", v3 ? 36u : 24u},
                         {h.typeoff, "type section", v3 ? 40u : 28u},
                         {h.stroff, "string section", v3 ? 44u : 32u}};
  for (size_t i = 0; i < std::size(order); ++i) {
    if (i + 1 < std::size(order) && order[i].value % 4 != 0) {
      return malformed(d.name, order[i].at,
                       std::string(order[i].name) + " offset " + hex(order[i].value) + " is not 4-aligned");
    }
    if (i > 0 && order[i].value < order[i - 1].value) {
      return malformed(d.name, order[i].at,
                       std::string(order[i].name) + " offset " + hex(order[i].value) + " is before the " +
                           order[i - 1].name + "'s " + hex(order[i - 1].value));
    }
  }
  const uint64_t data_len = uint64_t{h.stroff} + h.strlen;
  if ((h.objtoff - h.lbloff) % ctf::kLabelSize != 0 || (h.typeoff - h.varoff) % ctf::kVarSize != 0) {
    return malformed(d.name, hsize, "label or variable section is not a whole number of entries");
  }
  if (h.objtidxoff != h.funcidxoff && h.funcidxoff - h.objtidxoff != h.funcoff - h.objtoff) {
    return malformed(d.name, v3 ? 28 : 24, "object index section's length differs from the data object section's");
  }
  if (h.funcidxoff != h.varoff && h.varoff - h.funcidxoff != h.objtidxoff - h.funcoff) {
    return malformed(d.name, v3 ? 32 : 24, "function index section's length differs from the function info section's");
  }

  std::span<const std::byte> payload = d.bytes.span().subspan(hsize);
  if (h.flags & ctf::kFlagCompress) {
    d.compressed = true;
    // zlib's deflate expands at most ~1032:1: a larger claim cannot be met,
    // and is refused before the buffer for it is allocated.
    if (data_len > options.max_inflated || data_len > payload.size() * 1032 + 64) {
      return Error(Errc::limit,
                   d.name + ": compressed dict of " + std::to_string(payload.size()) + " bytes claims " +
                       std::to_string(data_len) + " inflated bytes (limit " + std::to_string(options.max_inflated) +
                       ", or 1032 times the compressed size)",
                   44);
    }
    MMAR_ASSIGN(d.inflated, inflate_exact(d.name, payload, data_len, hsize));
    d.buf = d.inflated.data();
    d.buf_len = d.inflated.size();
    d.hdr.flags &= static_cast<uint8_t>(~ctf::kFlagCompress);
  } else {
    if (data_len > payload.size()) {
      return malformed(
          d.name, v3 ? 44 : 32,
          "string section ends at " + hex(hsize + data_len) + ", past the end of the dict (" + hex(n) + ")");
    }
    d.buf = payload.data();
    d.buf_len = data_len;
  }
  d.strs = reinterpret_cast<const char*>(d.buf + h.stroff);
  d.strs_len = h.strlen;
  if (h.strlen > 0 && (d.strs[0] != '\0' || d.strs[h.strlen - 1] != '\0')) {
    return malformed(d.name, hsize + uint64_t{h.stroff}, "string section does not start and end with NUL");
  }
  d.child = h.parname != 0;
  if (d.parent && !d.child) {
    return Error(Errc::invalid_argument, d.name + ": a parent was given, but the dict has no parent name");
  }
  // Header string fields: offsets of the fields themselves.
  for (const auto& [ref, at, what] : {std::tuple<uint32_t, uint32_t, const char*>{h.parlabel, 4, "parent label"},
                                      {h.parname, 8, "parent name"},
                                      {h.cuname, 12, "compilation unit name"}}) {
    if (!o.str_ok(ref)) {
      return malformed(
          d.name, at,
          std::string(what) + ": string offset " + hex(ref & ctf::kNameOffsetMask) + " resolves in no string table");
    }
  }
  if (options.validate) MMAR_TRY(d.validate());
  return CtfDict(std::move(impl));
}

// ---------------------------------------------------------------------------
// Lazy structures: the offset index, validation, the name index.

Result<CtfRec> CtfDict::Impl::decode(uint32_t off, uint32_t index) const {
  const uint32_t end = hdr.stroff;
  auto bad = [&](uint64_t at, const std::string& what) {
    return malformed(name, header_size + at, "type " + hex(id_of(index)) + ": " + what);
  };
  if (off > end || end - off < ctf::kStypeSize) return bad(off, "record truncated by the end of the type section");
  CtfRec r;
  r.off = off;
  r.name = u32(off);
  r.info = u32(off + 4);
  r.st = u32(off + 8);
  r.size = r.st;
  r.incr = ctf::kStypeSize;
  if (r.st == ctf::kLsizeSent) {
    if (end - off < ctf::kTypeSize) return bad(off, "large record truncated by the end of the type section");
    r.incr = ctf::kTypeSize;
    r.size = (uint64_t{u32(off + 12)} << 32) | u32(off + 16);
  }
  r.kind = ctf::info_kind(r.info);
  r.root = ctf::info_isroot(r.info);
  r.vlen = ctf::info_vlen(r.info);
  const int64_t vb = vbytes(r.kind, r.size, r.vlen);
  if (vb < 0) return bad(off, "unknown kind " + std::to_string(r.kind));
  if (static_cast<uint64_t>(vb) > end - off - r.incr) {
    return bad(off, "vlen " + std::to_string(r.vlen) + " runs past the type section (" + std::to_string(vb) +
                        " bytes of members at " + hex(header_size + off + r.incr) + ", section ends at " +
                        hex(header_size + end) + ")");
  }
  r.end = static_cast<uint32_t>(off + r.incr + static_cast<uint64_t>(vb));
  return r;
}

const std::vector<uint32_t>& CtfDict::Impl::index() const {
  if (offs_ready.load(std::memory_order_acquire)) return offs;
  std::call_once(offs_once, [this] {
    std::vector<uint32_t> out;
    out.reserve((hdr.stroff - hdr.typeoff) / 32);  // a guess: records average more than 32 bytes
    uint32_t off = hdr.typeoff;
    while (off < hdr.stroff) {
      const uint64_t index = out.size() + 1;
      if (index > ctf::kMaxParentType) {
        offs_error = malformed(name, header_size + off, "more types than IDs");
        return;
      }
      auto r = decode(off, static_cast<uint32_t>(index));
      if (!r.ok()) {
        offs_error = std::move(r).error();
        return;
      }
      out.push_back(off);
      off = r->end;
    }
    offs = std::move(out);
  });
  offs_ready.store(true, std::memory_order_release);
  return offs;
}

Result<void> CtfDict::Impl::validate() const {
  std::call_once(valid_once, [this]() {
    auto r = [this]() -> Result<void> {
      index();
      if (offs_error) return *offs_error;
      if (parent) {
        MMAR_TRY(parent->validate());
      }
      Opener o{*this, header_size};
      MMAR_TRY(o.check_types());
      MMAR_TRY(o.check_sections());
      MMAR_TRY(o.check_cycles(false));
      MMAR_TRY(o.check_cycles(true));
      return success();
    }();
    if (!r.ok()) valid_error = std::move(r).error();
  });
  if (valid_error) return *valid_error;
  return success();
}

namespace {

constexpr uint8_t kNoSpace = 0xff;

// The namespace a root type's name lives in (ctf_lookup_by_name's): struct,
// union, enum (forwards by their tag), or the rest; pointers, slices and
// arrays are found by no name.
uint8_t space_of(const CtfRec& r) {
  switch (static_cast<CtfKind>(r.kind)) {
    case CtfKind::struct_: return 0;
    case CtfKind::union_: return 1;
    case CtfKind::enum_: return 2;
    case CtfKind::forward:
      return r.st == static_cast<uint32_t>(CtfKind::union_) ? 1 : r.st == static_cast<uint32_t>(CtfKind::enum_) ? 2 : 0;
    case CtfKind::pointer:
    case CtfKind::slice:
    case CtfKind::array: return kNoSpace;
    default: return 3;
  }
}

uint32_t name_hash(uint8_t space, std::string_view name) {
  const uint64_t h = std::hash<std::string_view>{}(name) ^ (uint64_t{space} * 0x9e3779b97f4a7c15ull);
  return static_cast<uint32_t>(h ^ (h >> 32));
}

// After this many scans, find() builds the name index: one lookup costs a
// walk up to the type (cheap for the first types, a full walk for a name
// that is absent); a program that asks several times gets hashed lookups.
constexpr uint32_t kScansBeforeIndex = 4;

}  // namespace

Result<uint32_t> CtfDict::Impl::scan(uint8_t space, std::string_view want) const {
  // A definition wins over a forward of its tag; otherwise the first type
  // of the name wins (as the name index, and libctf, answer).
  uint32_t forward = 0;
  uint32_t off = hdr.typeoff;
  for (uint32_t i = 1; off < hdr.stroff; ++i) {
    if (i > ctf::kMaxParentType) return malformed(name, header_size + off, "more types than IDs");
    MMAR_ASSIGN(CtfRec r, decode(off, i));
    off = r.end;
    if (!r.root || r.name == 0 || space_of(r) != space) continue;
    auto s = str(r.name);
    if (!s || *s != want) continue;
    if (r.kind != static_cast<uint8_t>(CtfKind::forward)) return i;
    if (forward == 0) forward = i;
  }
  return forward;
}

void CtfDict::Impl::build_names() const {
  std::call_once(names_once, [this] {
    const uint32_t n = count();
    size_t cap = 16;
    while (cap < size_t{n} * 2) cap <<= 1;
    std::vector<uint32_t> table(cap * 2, 0);  // (hash, index) pairs; index 0: empty
    const size_t mask = cap - 1;
    for (uint32_t i = 1; i <= n; ++i) {
      const CtfRec r = rec(i);
      if (!r.root || r.name == 0) continue;
      const uint8_t space = space_of(r);
      if (space == kNoSpace) continue;
      auto s = str(r.name);
      if (!s || s->empty()) continue;
      const uint32_t h = name_hash(space, *s);
      for (size_t slot = h & mask;; slot = (slot + 1) & mask) {
        uint32_t& at = table[slot * 2 + 1];
        if (at == 0) {
          table[slot * 2] = h;
          at = i;
          break;
        }
        if (table[slot * 2] != h) continue;
        const CtfRec o = rec(at);
        if (space_of(o) != space || str(o.name) != s) continue;
        // The same name: a definition displaces an earlier forward.
        if (o.kind == static_cast<uint8_t>(CtfKind::forward) && r.kind != static_cast<uint8_t>(CtfKind::forward)) {
          at = i;
        }
        break;
      }
    }
    names = std::move(table);
  });
}

uint32_t CtfDict::Impl::find_indexed(uint8_t space, std::string_view want) const {
  const size_t cap = names.size() / 2;
  if (cap == 0) return 0;
  const size_t mask = cap - 1;
  const uint32_t h = name_hash(space, want);
  for (size_t slot = h & mask;; slot = (slot + 1) & mask) {
    const uint32_t at = names[slot * 2 + 1];
    if (at == 0) return 0;
    if (names[slot * 2] != h) continue;
    const CtfRec o = rec(at);
    if (space_of(o) == space && str(o.name) == want) return at;
  }
}

// ---------------------------------------------------------------------------
// The public API over the queries.

namespace {

Error query_error(const CtfDict::Impl& d, uint32_t id, CtfErr e) {
  if (e == CtfErr::corrupt && d.offs_error) return *d.offs_error;
  const std::string who = d.name + ": type " + hex(id);
  switch (e) {
    case CtfErr::bad_id: return Error(id == 0 ? Errc::invalid_argument : Errc::not_found, who + ": no such type");
    case CtfErr::no_parent: return Error(Errc::not_found, who + " is the parent's, and no parent was given");
    case CtfErr::nonrepresentable: return Error(Errc::unsupported, who + ": not represented in CTF");
    case CtfErr::incomplete: return Error(Errc::unsupported, who + ": incomplete (a forward) has no size or alignment");
    case CtfErr::not_ref: return Error(Errc::invalid_argument, who + ": references no type");
    case CtfErr::wrong_kind: return Error(Errc::invalid_argument, who + ": not of the kind asked");
    case CtfErr::corrupt: return Error(Errc::malformed, who + ": type chain too deep");
    case CtfErr::none: break;
  }
  return Error(Errc::malformed, who);
}

template <class T>
Result<T> wrap(const CtfDict::Impl& d, uint32_t id, Q<T> q) {
  if (!q.ok()) return query_error(d, id, q.err);
  return std::move(q.v);
}

}  // namespace

const std::string& CtfDict::name() const { return impl_->name; }
const CtfHeader& CtfDict::header() const { return impl_->hdr; }
bool CtfDict::little_endian() const { return impl_->little; }
bool CtfDict::compressed() const { return impl_->compressed; }
bool CtfDict::is_child() const { return impl_->child; }
std::optional<CtfDict> CtfDict::parent() const {
  if (!impl_->parent) return std::nullopt;
  return CtfDict(impl_->parent);
}
std::string_view CtfDict::parent_name() const { return impl_->hdr.parname ? impl_->strptr(impl_->hdr.parname) : ""; }
std::string_view CtfDict::cu_name() const { return impl_->hdr.cuname ? impl_->strptr(impl_->hdr.cuname) : ""; }
Result<void> CtfDict::validate() const { return impl_->validate(); }

Result<void> ctf_import_parent(CtfDict& child, const CtfDict& parent) {
  auto& d = const_cast<CtfDict::Impl&>(child.impl());  // not shared yet: see dict_impl.h
  if (!d.child) return Error(Errc::invalid_argument, d.name + ": a parent was given, but the dict has no parent name");
  if (parent.is_child()) {
    return Error(Errc::invalid_argument,
                 d.name + ": its parent '" + parent.name() + "' is itself a child dict (libctf imports one level)");
  }
  d.parent = std::shared_ptr<const CtfDict::Impl>(parent.impl_ptr());
  return success();
}
uint32_t CtfDict::type_count() const { return impl_->count(); }
uint32_t CtfDict::first_id() const { return impl_->id_of(1); }
uint32_t CtfDict::id_of_index(uint32_t index) const { return impl_->id_of(index); }
std::optional<std::string_view> CtfDict::str(uint32_t ref) const { return impl_->str(ref); }

Result<CtfTypeInfo> CtfDict::type(uint32_t id) const {
  auto loc = impl_->locate(id);
  if (!loc.ok()) return query_error(*impl_, id, loc.err);
  const CtfRec r = loc.v.d->rec(loc.v.index);
  CtfTypeInfo t;
  t.id = id;
  t.kind = static_cast<CtfKind>(r.kind);
  t.root = r.root;
  t.name = r.name ? loc.v.d->strptr(r.name) : std::string_view();
  t.vlen = r.vlen;
  t.size = r.size;
  t.ref = r.st;
  return t;
}

Result<std::vector<CtfMember>> CtfDict::members(uint32_t id) const {
  auto loc = impl_->locate(id);
  if (!loc.ok()) return query_error(*impl_, id, loc.err);
  const Impl* d = loc.v.d;
  const CtfRec r = d->rec(loc.v.index);
  std::vector<CtfMember> out;
  if (r.kind == static_cast<uint8_t>(CtfKind::enum_)) {
    for (uint32_t i = 0; i < r.vlen; ++i) {
      const uint64_t at = uint64_t{r.vdata()} + uint64_t{i} * 8;
      out.push_back({d->strptr(d->u32(at)), 0, 0, static_cast<int32_t>(d->u32(at + 4))});
    }
    return out;
  }
  if (r.kind != static_cast<uint8_t>(CtfKind::struct_) && r.kind != static_cast<uint8_t>(CtfKind::union_)) {
    return query_error(*impl_, id, CtfErr::wrong_kind);
  }
  for (uint32_t i = 0; i < r.vlen; ++i) {
    CtfMember m;
    uint32_t name;
    d->member(loc.v, r, i, name, m.type, m.offset);
    m.name = d->strptr(name);
    out.push_back(m);
  }
  return out;
}

Result<std::string> CtfDict::type_name(uint32_t id) const { return wrap(*impl_, id, impl_->aname(id)); }
Result<int64_t> CtfDict::type_size(uint32_t id) const { return wrap(*impl_, id, impl_->size(id)); }
Result<int64_t> CtfDict::type_align(uint32_t id) const { return wrap(*impl_, id, impl_->align(id)); }
Result<CtfKind> CtfDict::type_kind(uint32_t id) const {
  auto k = impl_->kind(id);
  if (!k.ok()) return query_error(*impl_, id, k.err);
  return static_cast<CtfKind>(k.v);
}

std::vector<CtfDict::Symbol> CtfDict::symbols(bool functions) const { return impl_->symbols(functions); }

Result<uint32_t> CtfDict::find(std::string_view want) const {
  const Impl& d = *impl_;
  uint8_t ns = 3;
  std::string_view name = want;
  for (auto [prefix, space] : {std::pair<std::string_view, uint8_t>{"struct ", 0}, {"union ", 1}, {"enum ", 2}}) {
    if (name.substr(0, prefix.size()) == prefix) {
      ns = space;
      name.remove_prefix(prefix.size());
      while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
      break;
    }
  }
  if (name.empty()) return Error(Errc::not_found, d.name + ": no type named '" + std::string(want) + "'");
  uint32_t index = 0;
  if (d.scans.load(std::memory_order_relaxed) < kScansBeforeIndex) {
    d.scans.fetch_add(1, std::memory_order_relaxed);
    MMAR_ASSIGN(index, d.scan(ns, name));
  } else {
    d.index();
    if (d.offs_error) return *d.offs_error;
    d.build_names();
    index = d.find_indexed(ns, name);
  }
  if (index != 0) return d.id_of(index);
  if (d.parent) {
    auto found = parent()->find(want);
    if (found.ok()) return found;
  }
  return Error(Errc::not_found, d.name + ": no type named '" + std::string(want) + "'");
}

}  // namespace mmar
