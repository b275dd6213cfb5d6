// SPDX-License-Identifier: BSD-2-Clause
// The text of `objdump --ctf` (binutils 2.40): libctf's ctf_dump items, each
// line indented by four spaces as objdump's decorator does.
//
// Where libctf swallows an error (an item that cannot be formatted is left
// out, a member list that cannot be visited drops its type), this does the
// same, so the dump of any dict this reader opens matches objdump's.
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <string>
#include <unordered_map>

#include "ctf/dict_impl.h"
#include "support/text_out.h"

namespace mmar {

namespace {

// binutils 2.40 prints non-root types as root ones (no braces): the root
// flag is passed along but changes nothing.
constexpr int kFlagRoot = 0x1;      // CTF_ADD_ROOT
constexpr int kFlagRefs = 0x2;      // CTF_FT_REFS
constexpr int kFlagBitfield = 0x4;  // CTF_FT_BITFIELD
constexpr int kFlagId = 0x8;        // CTF_FT_ID

// A dump that grows past this is refused (crafted dicts can nest struct
// members exponentially; libctf would print them all).
constexpr size_t kMaxDumpBytes = size_t{1} << 30;

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char small[256];
  va_list ap;
  va_start(ap, f);
  int n = std::vsnprintf(small, sizeof small, f, ap);
  va_end(ap);
  if (n < 0) return {};
  if (static_cast<size_t>(n) < sizeof small) return std::string(small, static_cast<size_t>(n));
  std::string big(static_cast<size_t>(n) + 1, '\0');
  va_start(ap, f);
  std::vsnprintf(big.data(), big.size(), f, ap);
  va_end(ap);
  big.resize(static_cast<size_t>(n));
  return big;
}

// printf's "0x%lx" and "%i", appended (the dump's hot path: vsnprintf was
// a third of its instructions).
template <class Out>
void hex(Out& s, uint64_t v) {
  char buf[18];
  char* p = buf + sizeof buf;
  do {
    *--p = "0123456789abcdef"[v & 0xf];
    v >>= 4;
  } while (v != 0);
  s += "0x";
  s += std::string_view(p, static_cast<size_t>(buf + sizeof buf - p));
}
template <class Out>
void dec(Out& s, int64_t v) {
  char buf[24];
  char* p = buf + sizeof buf;
  uint64_t u = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  do {
    *--p = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (v < 0) *--p = '-';
  s += std::string_view(p, static_cast<size_t>(buf + sizeof buf - p));
}

// One ctf_dump item as objdump prints it: every line but a trailing empty
// one, prefixed with four spaces, each ending in a newline.
void emit(TextOut& out, std::string_view item) {
  while (!item.empty()) {
    const size_t nl = item.find('\n');
    out += "    ";
    out += item.substr(0, nl);
    out += '\n';
    if (nl == std::string_view::npos) break;
    item.remove_prefix(nl + 1);
  }
}

struct Dumper {
  const CtfDict::Impl& d;
  TextOut& out;
  // format_type's answers: struct members name the same few types over and
  // over (in a kernel's dict, most of the dump's time went to formatting
  // them again). Bounded: past kMaxCacheBytes of text nothing more is kept.
  mutable std::unordered_map<uint64_t, std::string> cache{};
  mutable size_t cache_bytes = 0;
  static constexpr size_t kMaxCacheBytes = size_t{64} << 20;

  // The text is valid until the next call (callers append it at once).
  Q<const std::string*> format_type(uint32_t id, int flag) const {
    const uint64_t key = uint64_t{id} << 8 | static_cast<uint8_t>(flag);
    if (auto it = cache.find(key); it != cache.end()) return {&it->second};
    auto q = format_type_uncached(id, flag);
    if (!q.ok()) return Q<const std::string*>::fail(q.err);
    if (cache_bytes < kMaxCacheBytes) {
      cache_bytes += q.v.size() + 48;
      return {&cache.emplace(key, std::move(q.v)).first->second};
    }
    scratch = std::move(q.v);
    return {&scratch};
  }
  mutable std::string scratch{};  // format_type's answer when the cache is full
  mutable std::string item_{};    // type()'s and named()'s text, reused
  mutable std::string indent_{};  // type()'s indent, reused

  // ctf_dump_format_type.
  Q<std::string> format_type_uncached(uint32_t id, int flag) const {
    std::string str;
    uint32_t new_id = id;
    for (int steps = 0;; ++steps) {
      if (steps > kCtfMaxDepth) return Q<std::string>::fail(CtfErr::corrupt);
      id = new_id;
      auto buf = d.aname(id);
      if (!buf.ok()) {
        if (id == 0 || buf.err == CtfErr::nonrepresentable) {
          str += " (type not represented in CTF)";
          return {std::move(str)};
        }
        return Q<std::string>::fail(buf.err);
      }
      auto k = d.kind(id);
      const int kind = k.ok() ? k.v : -1;
      if (flag & kFlagId) str += "ID ";
      hex(str, id);
      str += ": (kind ";
      dec(str, kind);
      str += ") ";
      str += buf.v;
      auto ku = d.kind_unsliced(id);
      const int unsliced = ku.ok() ? ku.v : -1;
      if (unsliced != static_cast<int>(CtfKind::enum_)) {
        auto e = d.encoding(id);
        if (e.ok()) {
          auto sz = d.size(id);
          // ssize_t * CHAR_BIT in libctf: wraps (as unsigned) on huge sizes.
          const int64_t bits_of_size = static_cast<int64_t>(static_cast<uint64_t>(sz.ok() ? sz.v : -1) * 8);
          if (static_cast<int64_t>(e.v.bits) != bits_of_size && (flag & kFlagBitfield)) {
            str += ':';
            dec(str, static_cast<int>(e.v.bits));
          }
          if (static_cast<int64_t>(e.v.bits) != bits_of_size || e.v.offset != 0) {
            str += unsliced == static_cast<int>(CtfKind::slice) ? " [slice " : " [";
            hex(str, e.v.offset);
            str += ':';
            hex(str, e.v.bits);
            str += ']';
          }
          str += " (format ";
          hex(str, e.v.format);
          str += ')';
        }
      }
      auto size = d.size(id);
      if (kind != static_cast<int>(CtfKind::function) && size.ok() && size.v >= 0) {
        str += " (size ";
        hex(str, static_cast<uint64_t>(size.v));
        str += ')';
      }
      auto align = d.align(id);
      if (align.ok() && align.v >= 0) {
        str += " (aligned at ";
        hex(str, static_cast<uint64_t>(align.v));
        str += ')';
      }
      if (!(flag & kFlagRefs)) return {std::move(str)};
      if (kind == static_cast<int>(CtfKind::array)) {
        auto loc = d.locate(id);
        if (!loc.ok()) return Q<std::string>::fail(loc.err);
        const CtfRec r = loc.v.d->rec(loc.v.index);
        if (r.kind != static_cast<uint8_t>(CtfKind::array)) return Q<std::string>::fail(CtfErr::wrong_kind);
        new_id = loc.v.d->u32(r.vdata());
      } else {
        auto ref = d.reference(id);
        if (!ref.ok()) {
          if (ref.err == CtfErr::not_ref) return {std::move(str)};
          return Q<std::string>::fail(ref.err);
        }
        new_id = ref.v;
      }
      str += " -> ";
    }
  }

  // ctf_type_rvisit with ctf_dump_member as the callback, evaluated in
  // `at` (the dict that owns the type being visited, as libctf's fp moves
  // to the parent for a parent's type).
  Q<bool> visit(const CtfDict::Impl& at, uint32_t type, std::string_view name, uint64_t offset, int depth,
                const std::string& indent, std::string& str) const {
    if (depth > kCtfMaxDepth || str.size() > kMaxDumpBytes) return Q<bool>::fail(CtfErr::corrupt);
    const uint32_t otype = type;
    bool nonrep = false;
    auto t = at.resolve(type);
    CtfDict::Impl::Loc loc;
    if (!t.ok()) {
      if (t.err != CtfErr::nonrepresentable) return Q<bool>::fail(t.err);
      nonrep = true;
    } else {
      auto l = at.locate(t.v);
      if (!l.ok()) return Q<bool>::fail(l.err);
      loc = l.v;
    }
    if (depth > 0) {
      str += indent;
      str.append(static_cast<size_t>(depth - 1) * 4, ' ');
      auto ts = format_type(otype, kFlagRoot | kFlagBitfield | kFlagId);
      if (!ts.ok()) return Q<bool>::fail(ts.err);
      str += '[';
      hex(str, offset);
      str += "] ";
      str += name;
      str += ": ";
      str += *ts.v;
      str += '\n';
    }
    if (nonrep) return {true};
    const CtfRec r = loc.d->rec(loc.index);
    if (r.kind != static_cast<uint8_t>(CtfKind::struct_) && r.kind != static_cast<uint8_t>(CtfKind::union_)) {
      return {true};
    }
    for (uint32_t i = 0; i < r.vlen; ++i) {
      uint32_t mname, mtype;
      uint64_t moff;
      loc.d->member(loc, r, i, mname, mtype, moff);
      auto v = visit(*loc.d, mtype, loc.d->strptr(mname), offset + moff, depth + 1, indent, str);
      if (!v.ok()) return v;
    }
    return {true};
  }

  static int hex_digits(uint32_t id) {
    if (id == 0) return 1;
    int i = 0;
    for (; id > 0; id >>= 4) ++i;
    return i;
  }

  // ctf_dump_type: the type, its members or enumerators; nothing if it
  // cannot be formatted.
  void type(uint32_t index) const {
    const uint32_t id = d.id_of(index);
    const int flag = d.rec(index).root ? kFlagRoot : 0;
    indent_.assign(4 + static_cast<size_t>(hex_digits(id)), ' ');
    const std::string& indent = indent_;
    auto s = format_type(id, flag | kFlagRefs);
    if (!s.ok()) return;
    std::string& str = item_;
    str.assign(*s.v);
    str += '\n';
    auto k = d.kind(id);
    const int kind = k.ok() ? k.v : -1;
    if (kind == static_cast<int>(CtfKind::struct_) || kind == static_cast<int>(CtfKind::union_)) {
      auto v = visit(d, id, "", 0, 0, indent, str);
      if (!v.ok()) {
        if (v.err == CtfErr::nonrepresentable) emit(out, str);
        return;
      }
    }
    if (kind == static_cast<int>(CtfKind::enum_)) {
      // ctf_enum_next resolves through typedefs and slices; ctf_member_count
      // only through typedefs (a slice of an enum counts -1: nothing elided).
      auto t = d.resolve(id);
      int64_t count = -1;
      uint32_t target = 0;
      if (t.ok()) {
        auto l = d.locate(t.v);
        if (l.ok()) {
          const CtfRec r = l.v.d->rec(l.v.index);
          if (r.kind == static_cast<uint8_t>(CtfKind::enum_)) count = r.vlen;
          target = t.v;
          if (r.kind == static_cast<uint8_t>(CtfKind::slice)) {
            auto ref = d.reference(t.v);
            target = ref.ok() ? ref.v : 0;
          }
        }
      }
      auto l = d.locate(target);
      if (!l.ok()) return;
      const CtfRec r = l.v.d->rec(l.v.index);
      if (r.kind != static_cast<uint8_t>(CtfKind::enum_)) return;
      for (uint32_t i = 1; i <= r.vlen; ++i) {
        if (i > 5 && static_cast<int64_t>(i) < count - 4) continue;
        const uint64_t at = uint64_t{r.vdata()} + uint64_t{i - 1} * 8;
        str += indent;
        str += l.v.d->strptr(l.v.d->u32(at));
        str += ": ";
        dec(str, static_cast<int32_t>(l.v.d->u32(at + 4)));
        str += '\n';
        if (i == 5 && count > 10) {
          str += indent;
          str += "...\n";
        }
      }
    }
    emit(out, str);
  }

  void header() const {
    const CtfHeader& h = d.hdr;
    emit(out, fmt("Magic number: 0x%x\n", h.magic));
    static const char* const kVersions[] = {nullptr, "CTF_VERSION_1",
                                            "CTF_VERSION_1_UPGRADED_3 (latest format, version 1 type boundaries)",
                                            "CTF_VERSION_2", "CTF_VERSION_3"};
    const char* v = h.version <= 4 ? kVersions[h.version] : nullptr;
    emit(out, fmt("Version: %i (%s)\n", h.version, v ? v : "(not a valid version)"));
    const uint8_t f = d.open_flags;
    if (f > 0) {
      const uint8_t c = ctf::kFlagCompress, nf = ctf::kFlagNewFuncInfo, is = ctf::kFlagIdxSorted, ds = ctf::kFlagDynStr;
      // binutils 2.40 puts a separator after each flag's slot when any flag
      // up to that slot and any flag after it are set, whether or not the
      // slot's own flag is: 0xa prints "CTF_F_NEWFUNCINFO, , CTF_F_DYNSTR",
      // 0x5 "CTF_F_COMPRESS, , CTF_F_IDXSORTED" (checked against libctf for
      // all 16 combinations in the tests).
      auto sep = [f](uint8_t upto) { return (f & upto) && (f & ~upto) ? ", " : ""; };
      std::string flags;
      flags += (f & c) ? "CTF_F_COMPRESS" : "";
      flags += sep(c);
      flags += (f & nf) ? "CTF_F_NEWFUNCINFO" : "";
      flags += sep(c | nf);
      flags += (f & is) ? "CTF_F_IDXSORTED" : "";
      flags += sep(c | nf | is);
      flags += (f & ds) ? "CTF_F_DYNSTR" : "";
      emit(out, fmt("Flags: 0x%x (%s)", f, flags.c_str()));
    }
    auto strfield = [&](const char* what, uint32_t ref) {
      if (ref != 0) emit(out, std::string(what) + ": " + std::string(d.strptr(ref)) + "\n");
    };
    strfield("Parent label", h.parlabel);
    strfield("Parent name", h.parname);
    strfield("Compilation unit name", h.cuname);
    auto sect = [&](const char* what, uint32_t off, uint32_t next) {
      if (next - off != 0) {
        emit(out, fmt("%s:\t0x%lx -- 0x%lx (0x%lx bytes)\n", what, static_cast<unsigned long>(off),
                      static_cast<unsigned long>(static_cast<uint32_t>(next - 1)),
                      static_cast<unsigned long>(static_cast<uint32_t>(next - off))));
      }
    };
    sect("Label section", h.lbloff, h.objtoff);
    sect("Data object section", h.objtoff, h.funcoff);
    sect("Function info section", h.funcoff, h.objtidxoff);
    sect("Object index section", h.objtidxoff, h.funcidxoff);
    sect("Function index section", h.funcidxoff, h.varoff);
    sect("Variable section", h.varoff, h.typeoff);
    sect("Type section", h.typeoff, h.stroff);
    sect("String section", h.stroff, h.stroff + h.strlen + 1);
  }

  void named(std::string_view name, uint32_t type, bool keep_on_failure) const {
    std::string& str = item_;
    str.assign(name);
    str += " -> ";
    auto t = format_type(type, kFlagRoot | kFlagRefs);
    if (!t.ok()) {
      if (keep_on_failure) emit(out, str);
      return;
    }
    str += *t.v;
    emit(out, str);
  }

  Result<void> all() const {
    static const char* const kThings[] = {"Header",    "Labels", "Data objects", "Function objects",
                                          "Variables", "Types",  "Strings"};
    const CtfHeader& h = d.hdr;
    for (int i = 0; i < 7; ++i) {
      out += "\n  ";
      out += kThings[i];
      out += ":\n";
      switch (i) {
        case 0: header(); break;
        case 1:
          for (uint32_t o = h.lbloff; o + ctf::kLabelSize <= h.objtoff; o += ctf::kLabelSize) {
            named(d.strptr(d.u32(o)), d.u32(o + 4), false);
          }
          break;
        case 2:
        case 3:
          for (const auto& s : d.symbols(i == 3)) named(s.name, s.type, true);
          break;
        case 4:
          if (d.child && !d.parent) break;  // ECTF_NOPARENT: libctf lists none
          for (uint32_t o = h.varoff; o + ctf::kVarSize <= h.typeoff; o += ctf::kVarSize) {
            named(d.strptr(d.u32(o)), d.u32(o + 4), false);
          }
          break;
        case 5:
          for (uint32_t index = 1; index <= d.count(); ++index) {
            type(index);
            out.item_done();
            if (out.failed()) return success();  // the sink's error is finish()'s
            if (out.size() > kMaxDumpBytes) {
              return Error(Errc::limit, d.name + ": dump larger than " + std::to_string(kMaxDumpBytes) + " bytes");
            }
          }
          break;
        case 6:
          for (uint32_t s = 0; s < d.strs_len;) {
            const std::string_view v(d.strs + s);
            if (v.find('\n') == std::string_view::npos) {  // one line: no temporary
              out += "    ";
              hex(out, s);
              out += ": ";
              out += v;
              out += '\n';
            } else {
              std::string item;
              hex(item, s);
              item += ": ";
              item += v;
              emit(out, item);
            }
            s += static_cast<uint32_t>(v.size()) + 1;
            out.item_done();
          }
          break;
      }
    }
    return success();
  }
};

// objdump's sanitize_string: control characters as ^X.
std::string sanitize(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += '^';
      out += static_cast<char>(c == 0x7f ? '?' : c + 0x40);
    } else {
      out += c;
    }
  }
  return out;
}

// The dump of one dict into `out` (validated by the caller).
Result<void> dump_dict(const CtfDict& dict, TextOut& out) {
  Dumper dumper{dict.impl(), out};
  return dumper.all();
}

Result<void> dump_file(const CtfFile& file, TextOut& out) {
  // objdump prints nothing of a file libctf cannot open: every dict is
  // checked before the first line.
  for (const auto& e : file.dicts) MMAR_TRY(e.dict.validate());
  out += "Contents of CTF section ";
  out += sanitize(file.section);
  out += ":\n";
  for (size_t i = 0; i < file.dicts.size(); ++i) {
    const auto& e = file.dicts[i];
    if (e.name != ".ctf" || i != 0) {
      out += "\nCTF archive member: ";
      out += sanitize(e.name);
      out += ":\n";
    }
    MMAR_TRY(dump_dict(e.dict, out));
    if (out.failed()) break;
  }
  return out.finish();
}

}  // namespace

Result<void> ctf_dump_dict(const CtfDict& dict, std::string& out) {
  MMAR_TRY(dict.validate());  // as libctf checks at open, before anything is printed
  TextOut o(out);
  MMAR_TRY(dump_dict(dict, o));
  return o.finish();
}

Result<void> ctf_dump(const CtfFile& file, std::string& out) {
  TextOut o(out);
  return dump_file(file, o);
}

Result<void> ctf_dump(const CtfFile& file, const TextSink& sink) {
  TextOut o(sink);
  return dump_file(file, o);
}

}  // namespace mmar
