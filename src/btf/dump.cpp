// SPDX-License-Identifier: BSD-2-Clause
// Raw text dump, byte for byte what bpftool's `btf dump file` prints in its
// default format (bpftool 7.1, tools/bpf/bpftool/btf.c dump_btf_type), and
// the same data as JSON. Built with appends into one string: no printf per
// field.
#include <charconv>
#include <cstdio>

#include "mmar/btf.h"
#include "support/text.h"
#include "support/text_out.h"

namespace mmar {

namespace {

using Out = TextOut;

// A JSON string for any bytes (support/text.h): bpftool passes bytes that
// are not UTF-8 through raw, which is not JSON; here they become \u00XX,
// as in every other JSON mmar prints (docs/JSON.md "Strings").
void json_str(Out& o, std::string_view v) {
  thread_local std::string literal;
  literal.clear();
  text::append_json_string(literal, v);
  o << std::string_view(literal);
}

// bpftool's btf_str(): "(anon)" for offset 0, "(invalid)" if out of range.
std::string_view str_or_anon(const Btf& btf, uint32_t off) {
  if (off == 0) return "(anon)";
  auto s = btf.str(off);
  return s ? *s : std::string_view("(invalid)");
}

const char* int_encoding(uint32_t enc) {
  switch (enc) {
    case 0: return "(none)";
    case 1: return "SIGNED";
    case 2: return "CHAR";
    case 4: return "BOOL";
    default: return "UNKN";
  }
}

const char* linkage(uint32_t l) {
  switch (l) {
    case 0: return "static";
    case 1: return "global";
    case 2: return "extern";
    default: return "(unknown)";
  }
}

void dump_text(const Btf& btf, const BtfType& t, uint32_t type_count, Out& o) {
  const BtfKind kind = t.kind();
  o << '[';
  o.u(t.id()) << "] " << btf_kind_name(kind) << " '" << str_or_anon(btf, t.name_off()) << '\'';
  const uint32_t vlen = t.vlen();
  switch (kind) {
    case BtfKind::int_: {
      uint32_t v = t.extra_u32(0);
      o << " size=";
      o.u(t.size()) << " bits_offset=";
      o.u((v >> 16) & 0xff) << " nr_bits=";
      o.u(v & 0xff) << " encoding=" << int_encoding((v >> 24) & 0x0f);
      break;
    }
    case BtfKind::ptr:
    case BtfKind::const_:
    case BtfKind::volatile_:
    case BtfKind::restrict_:
    case BtfKind::typedef_:
    case BtfKind::type_tag:
      o << " type_id=";
      o.u(t.type());
      break;
    case BtfKind::array:
      o << " type_id=";
      o.u(t.extra_u32(0)) << " index_type_id=";
      o.u(t.extra_u32(1)) << " nr_elems=";
      o.u(t.extra_u32(2));
      break;
    case BtfKind::struct_:
    case BtfKind::union_: {
      o << " size=";
      o.u(t.size()) << " vlen=";
      o.u(vlen);
      for (uint32_t i = 0; i < vlen; ++i) {
        uint32_t off = t.extra_u32(i * 3 + 2);
        uint32_t bit_off = t.kflag() ? off & 0xffffff : off;
        uint32_t bit_sz = t.kflag() ? off >> 24 : 0;
        o << "\n\t'" << str_or_anon(btf, t.extra_u32(i * 3)) << "' type_id=";
        o.u(t.extra_u32(i * 3 + 1)) << " bits_offset=";
        o.u(bit_off);
        if (bit_sz != 0) {
          o << " bitfield_size=";
          o.u(bit_sz);
        }
      }
      break;
    }
    case BtfKind::enum_:
    case BtfKind::enum64: {
      const bool is64 = kind == BtfKind::enum64;
      const uint32_t stride = is64 ? 3 : 2;
      o << " encoding=" << (t.kflag() ? "SIGNED" : "UNSIGNED") << " size=";
      o.u(t.size()) << " vlen=";
      o.u(vlen);
      for (uint32_t i = 0; i < vlen; ++i) {
        o << "\n\t'" << str_or_anon(btf, t.extra_u32(i * stride)) << "' val=";
        const uint64_t v =
            is64 ? (uint64_t{t.extra_u32(i * 3 + 2)} << 32) | t.extra_u32(i * 3 + 1) : t.extra_u32(i * 2 + 1);
        // bpftool: ENUM values print as %d / %u, ENUM64 as %lldLL / %lluULL.
        if (t.kflag()) {
          o.i(is64 ? static_cast<int64_t>(v) : static_cast<int32_t>(v)) << (is64 ? "LL" : "");
        } else {
          o.u(v) << (is64 ? "ULL" : "");
        }
      }
      break;
    }
    case BtfKind::fwd: o << " fwd_kind=" << (t.kflag() ? "union" : "struct"); break;
    case BtfKind::func:
      o << " type_id=";
      o.u(t.type()) << " linkage=" << linkage(vlen);
      break;
    case BtfKind::func_proto:
      o << " ret_type_id=";
      o.u(t.type()) << " vlen=";
      o.u(vlen);
      for (uint32_t i = 0; i < vlen; ++i) {
        o << "\n\t'" << str_or_anon(btf, t.extra_u32(i * 2)) << "' type_id=";
        o.u(t.extra_u32(i * 2 + 1));
      }
      break;
    case BtfKind::var:
      o << " type_id=";
      o.u(t.type()) << ", linkage=" << linkage(t.extra_u32(0));
      break;
    case BtfKind::datasec:
      o << " size=";
      o.u(t.size()) << " vlen=";
      o.u(vlen);
      for (uint32_t i = 0; i < vlen; ++i) {
        uint32_t var = t.extra_u32(i * 3);
        o << "\n\ttype_id=";
        o.u(var) << " offset=";
        o.u(t.extra_u32(i * 3 + 1)) << " size=";
        o.u(t.extra_u32(i * 3 + 2));
        if (var < type_count) {
          auto vt = btf.type(var);
          if (vt.ok()) o << " (" << btf_kind_name(vt->kind()) << " '" << str_or_anon(btf, vt->name_off()) << "')";
        }
      }
      break;
    case BtfKind::float_:
      o << " size=";
      o.u(t.size());
      break;
    case BtfKind::decl_tag:
      o << " type_id=";
      o.u(t.type()) << " component_idx=";
      o.i(static_cast<int32_t>(t.extra_u32(0)));
      break;
    case BtfKind::unknown: break;
  }
  o << '\n';
}

void dump_json(const Btf& btf, const BtfType& t, Out& o) {
  const BtfKind kind = t.kind();
  const uint32_t vlen = t.vlen();
  o << "{\"id\":";
  o.u(t.id()) << ",\"kind\":";
  json_str(o, btf_kind_name(kind));
  o << ",\"name\":";
  json_str(o, str_or_anon(btf, t.name_off()));
  auto field = [&](const char* name, uint64_t v) -> Out& { return (o << ",\"" << name << "\":").u(v); };
  switch (kind) {
    case BtfKind::int_: {
      uint32_t v = t.extra_u32(0);
      field("size", t.size());
      field("bits_offset", (v >> 16) & 0xff);
      field("nr_bits", v & 0xff);
      o << ",\"encoding\":";
      json_str(o, int_encoding((v >> 24) & 0x0f));
      break;
    }
    case BtfKind::ptr:
    case BtfKind::const_:
    case BtfKind::volatile_:
    case BtfKind::restrict_:
    case BtfKind::typedef_:
    case BtfKind::type_tag: field("type_id", t.type()); break;
    case BtfKind::array:
      field("type_id", t.extra_u32(0));
      field("index_type_id", t.extra_u32(1));
      field("nr_elems", t.extra_u32(2));
      break;
    case BtfKind::struct_:
    case BtfKind::union_:
      field("size", t.size());
      field("vlen", vlen);
      o << ",\"members\":[";
      for (uint32_t i = 0; i < vlen; ++i) {
        uint32_t off = t.extra_u32(i * 3 + 2);
        o << (i ? ",{\"name\":" : "{\"name\":");
        json_str(o, str_or_anon(btf, t.extra_u32(i * 3)));
        field("type_id", t.extra_u32(i * 3 + 1));
        field("bits_offset", t.kflag() ? off & 0xffffff : off);
        if (t.kflag() && (off >> 24) != 0) field("bitfield_size", off >> 24);
        o << '}';
      }
      o << ']';
      break;
    case BtfKind::enum_:
    case BtfKind::enum64: {
      const bool is64 = kind == BtfKind::enum64;
      o << ",\"encoding\":";
      json_str(o, t.kflag() ? "SIGNED" : "UNSIGNED");
      field("size", t.size());
      field("vlen", vlen);
      o << ",\"values\":[";
      for (uint32_t i = 0; i < vlen; ++i) {
        const uint32_t stride = is64 ? 3 : 2;
        uint64_t v = is64 ? (uint64_t{t.extra_u32(i * 3 + 2)} << 32) | t.extra_u32(i * 3 + 1) : t.extra_u32(i * 2 + 1);
        o << (i ? ",{\"name\":" : "{\"name\":");
        json_str(o, str_or_anon(btf, t.extra_u32(i * stride)));
        o << ",\"val\":";
        if (t.kflag()) {
          o.i(is64 ? static_cast<int64_t>(v) : static_cast<int32_t>(v));
        } else {
          o.u(v);
        }
        o << '}';
      }
      o << ']';
      break;
    }
    case BtfKind::fwd:
      o << ",\"fwd_kind\":";
      json_str(o, t.kflag() ? "union" : "struct");
      break;
    case BtfKind::func:
      field("type_id", t.type());
      o << ",\"linkage\":";
      json_str(o, linkage(vlen));
      break;
    case BtfKind::func_proto:
      field("ret_type_id", t.type());
      field("vlen", vlen);
      o << ",\"params\":[";
      for (uint32_t i = 0; i < vlen; ++i) {
        o << (i ? ",{\"name\":" : "{\"name\":");
        json_str(o, str_or_anon(btf, t.extra_u32(i * 2)));
        field("type_id", t.extra_u32(i * 2 + 1));
        o << '}';
      }
      o << ']';
      break;
    case BtfKind::var:
      field("type_id", t.type());
      o << ",\"linkage\":";
      json_str(o, linkage(t.extra_u32(0)));
      break;
    case BtfKind::datasec:
      field("size", t.size());
      field("vlen", vlen);
      o << ",\"vars\":[";
      for (uint32_t i = 0; i < vlen; ++i) {
        o << (i ? ",{" : "{");
        (o << "\"type_id\":").u(t.extra_u32(i * 3));
        field("offset", t.extra_u32(i * 3 + 1));
        field("size", t.extra_u32(i * 3 + 2));
        o << '}';
      }
      o << ']';
      break;
    case BtfKind::float_: field("size", t.size()); break;
    case BtfKind::decl_tag:
      field("type_id", t.type());
      o << ",\"component_idx\":";
      o.i(static_cast<int32_t>(t.extra_u32(0)));
      break;
    case BtfKind::unknown: break;
  }
  o << '}';
}

}  // namespace

namespace {

Result<void> dump_raw(const Btf& btf, Out& o, bool json) {
  MMAR_ASSIGN(uint32_t count, btf.type_count());
  if (json) o << "{\"types\":[";
  for (uint32_t id = btf.start_id(); id < count; ++id) {
    MMAR_ASSIGN(BtfType t, btf.type(id));
    if (json) {
      if (id != btf.start_id()) o << ',';
      dump_json(btf, t, o);
    } else {
      dump_text(btf, t, count, o);
    }
    o.item_done();
    if (o.failed()) break;
  }
  if (json) o << "]}\n";
  return o.finish();
}

}  // namespace

Result<void> btf_dump_raw(const Btf& btf, std::string& out, bool json) {
  Out o(out);
  return dump_raw(btf, o, json);
}

Result<void> btf_dump_raw(const Btf& btf, const TextSink& sink, bool json) {
  Out o(sink);
  return dump_raw(btf, o, json);
}

}  // namespace mmar
