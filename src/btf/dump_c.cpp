// SPDX-License-Identifier: BSD-2-Clause
// C header from BTF: what `bpftool btf dump file F format c` prints (bpftool
// 7.1 with its libbpf 1.1 BTF-to-C converter), with two deliberate
// differences, all where bpftool's header has the wrong layout: enums of 1
// or 8 bytes carry a mode attribute (as newer libbpf prints), gaps in packed
// structs are padded in exact bits, and packed unions are marked packed. With bpftool_compat the output is
// bpftool 7.1's byte for byte, those two bugs included.
//
// Two passes per root type, as the C rules need:
//  1. order: a depth-first walk that queues every named definition a type
//     needs, dependencies first. A link through a pointer to a *named* type
//     is weak (a forward declaration satisfies it); anything embedded, or an
//     anonymous type reached through a pointer, is strong (the full
//     definition must come first).
//  2. emit: each queued definition in C syntax, with forward declarations
//     where a weak link reaches a type that is not defined yet.
// Duplicate names (two `struct foo` in one BTF) get `___N` suffixes in the
// order they are first printed, as libbpf does, so the output is identical.
//
// Input is validated first (every reference in range); the walk also caps
// its depth, so a hostile cycle of modifiers is an error, not a stack
// overflow.
#include <charconv>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "mmar/btf.h"
#include "support/text_out.h"
#include "xxhash.h"

namespace mmar {

namespace {

constexpr int kMaxDepth = 2048;       // nesting of the walk; real kernels stay far below 100
constexpr int kMaxResolveDepth = 32;  // as libbpf's btf__resolve_size

enum : uint8_t { kNot = 0, kDoing = 1, kDone = 2 };

// Name -> occurrence count, open addressing over views into the BTF's
// string section (which outlives the dumper). No allocation per lookup;
// sized once from the number of names to come (reserve), so the table is
// written once: growing it by doubling was 40% of the C dump's page faults.
class NameCounts {
 public:
  void reserve(size_t names) {
    size_t want = 1024;
    while (want < names * 2) want *= 2;
    if (want > slots_.size()) rehash(want);
  }
  size_t bump(std::string_view name) {
    if ((used_ + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 1024 : slots_.size() * 2);
    Slot& s = probe(name);
    if (s.count == 0) {
      s.data = name.data();
      s.len = static_cast<uint32_t>(name.size());  // BTF strings are < 2 GiB
      ++used_;
    }
    return ++s.count;
  }

 private:
  struct Slot {  // 16 bytes: the table for vmlinux's 22k identifiers is 1 MiB
    const char* data = nullptr;
    uint32_t len = 0;
    uint32_t count = 0;
    std::string_view key() const { return {data, len}; }
  };
  Slot& probe(std::string_view name) {
    size_t mask = slots_.size() - 1;
    size_t i = XXH3_64bits(name.data(), name.size()) & mask;
    while (slots_[i].count != 0 && slots_[i].key() != name) i = (i + 1) & mask;
    return slots_[i];
  }
  void rehash(size_t size) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(size, Slot{});
    for (const Slot& s : old) {
      if (s.count != 0) probe(s.key()) = s;
    }
  }
  std::vector<Slot> slots_;
  size_t used_ = 0;
};

struct TypeState {
  uint8_t order = kNot;
  uint8_t emit = kNot;
  bool fwd_emitted = false;
  bool name_resolved = false;
  bool referenced = false;
};

// A member of a struct/union, a parameter, an array: decoded once.
struct Member {
  uint32_t name_off, type, bit_offset, bit_size, raw_offset;
};

class CDumper {
 public:
  CDumper(const Btf& btf, TextOut& out, const CHeaderOptions& options)
      : btf_(btf), out_(out), compat_(options.bpftool_compat) {}

  Result<void> run() {
    MMAR_TRY(btf_.validate());
    MMAR_ASSIGN(uint32_t count, btf_.type_count());
    types_.reserve(count);
    for (uint32_t id = 1; id < count; ++id) {
      MMAR_ASSIGN(BtfType t, btf_.type(id));
      types_.push_back(t);
    }
    state_.assign(count, TypeState{});
    renamed_.assign(count, 0);
    align_.assign(count, 0);
    state_[0].order = kDone;
    state_[0].emit = kDone;
    ptr_sz_ = pointer_size();
    // Bounds proportional to the input: a real header is smaller than its
    // BTF (vmlinux: 5 MiB of BTF, 3 MiB of C), and a real walk takes a few
    // steps per type. The floors are for tiny BTF; they were 1 Mi steps and
    // 4 MiB, which let a 300-byte input print 4 MiB of padding (and the
    // fuzzer run at 150 inputs/s).
    step_budget_ = (uint64_t{64} << 10) + uint64_t{64} * count;
    out_limit_ = out_.size() + (uint64_t{64} << 10) + uint64_t{64} * btf_.raw().size() +
                 (btf_.base() ? uint64_t{64} * btf_.base()->raw().size() : 0);
    size_t type_names = 0, ident_names = 0;  // upper bounds of what the tables will hold
    for (uint32_t id = 1; id < count; ++id) {
      const BtfType& ty = t(id);
      mark_referenced(ty);
      switch (ty.kind()) {
        case BtfKind::struct_:
        case BtfKind::union_: type_names += ty.name_off() != 0; break;
        case BtfKind::enum_:
        case BtfKind::enum64:
          type_names += ty.name_off() != 0;
          ident_names += ty.vlen();
          break;
        case BtfKind::typedef_: ++ident_names; break;
        default: break;
      }
    }
    type_names_.reserve(type_names);
    ident_names_.reserve(ident_names);

    out_ +=
        "#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n\n"
        "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n"
        "#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n"
        "#endif\n\n";
    for (uint32_t id = 1; id < count; ++id) {
      queue_.clear();
      if (order_type(id, false, 0) < 0) break;
      for (uint32_t q : queue_) emit_type(q, 0, 0);
      if (failed_) break;
      out_.item_done();
      if (out_.failed()) break;
    }
    if (failed_) {
      return Error(Errc::malformed, btf_.name() + ": type " + std::to_string(failed_id_) + ": " + failed_what_);
    }
    out_ +=
        "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute pop\n#endif\n\n"
        "#endif /* __VMLINUX_H__ */\n";
    return {};
  }

 private:
  // Type `id` (not 0: void has no record; callers check).
  const BtfType& t(uint32_t id) const { return types_[id - 1]; }
  std::string_view name_of(uint32_t off) const {
    auto s = btf_.str(off);
    return s ? *s : std::string_view();
  }
  static bool composite(BtfKind k) { return k == BtfKind::struct_ || k == BtfKind::union_; }
  static bool modifier(BtfKind k) {
    return k == BtfKind::volatile_ || k == BtfKind::const_ || k == BtfKind::restrict_ || k == BtfKind::type_tag;
  }

  Member member(const BtfType& s, uint32_t i) const {
    uint32_t off = s.extra_u32(i * 3 + 2);
    bool kflag = s.kflag();
    return {s.extra_u32(i * 3), s.extra_u32(i * 3 + 1), kflag ? off & 0xffffff : off, kflag ? off >> 24 : 0, off};
  }

  bool fail(uint32_t id, const char* what) {
    if (!failed_) {
      failed_ = true;
      failed_id_ = id;
      failed_what_ = what;
    }
    return false;
  }

  // libbpf's determine_ptr_size: the size of an INT named like `long`,
  // else 8. (libbpf falls back to the host's pointer size, so a header
  // would depend on who reads the BTF; here it reads the same on every
  // host, as libbpf and bpftool read it on a 64-bit one.)
  int pointer_size() const {
    static constexpr std::string_view kLong[] = {"long",
                                                 "long int",
                                                 "int long",
                                                 "unsigned long",
                                                 "long unsigned",
                                                 "unsigned long int",
                                                 "unsigned int long",
                                                 "long unsigned int",
                                                 "long int unsigned",
                                                 "int unsigned long",
                                                 "int long unsigned"};
    for (size_t id = 1; id <= types_.size(); ++id) {
      const BtfType& ty = t(static_cast<uint32_t>(id));
      if (ty.kind() != BtfKind::int_ || (ty.size() != 4 && ty.size() != 8)) continue;
      std::string_view n = name_of(ty.name_off());
      for (std::string_view l : kLong) {
        if (n == l) return static_cast<int>(ty.size());
      }
    }
    return 8;
  }

  void mark_referenced(const BtfType& ty) {
    uint16_t vlen = ty.vlen();
    switch (ty.kind()) {
      case BtfKind::volatile_:
      case BtfKind::const_:
      case BtfKind::restrict_:
      case BtfKind::ptr:
      case BtfKind::typedef_:
      case BtfKind::func:
      case BtfKind::var:
      case BtfKind::decl_tag:
      case BtfKind::type_tag: state_[ty.type()].referenced = true; break;
      case BtfKind::array:
        state_[ty.extra_u32(1)].referenced = true;
        state_[ty.extra_u32(0)].referenced = true;
        break;
      case BtfKind::struct_:
      case BtfKind::union_:
        for (uint32_t i = 0; i < vlen; ++i) state_[ty.extra_u32(i * 3 + 1)].referenced = true;
        break;
      case BtfKind::func_proto:
        for (uint32_t i = 0; i < vlen; ++i) state_[ty.extra_u32(i * 2 + 1)].referenced = true;
        break;
      case BtfKind::datasec:
        for (uint32_t i = 0; i < vlen; ++i) state_[ty.extra_u32(i * 3)].referenced = true;
        break;
      default: break;
    }
  }

  // ---- pass 1: order ------------------------------------------------------

  // 1: strong link (full definition needed first), 0: weak, <0: error.
  // Every step of the walks counts against a budget proportional to the
  // number of types: a DAG of function prototypes whose parameters are the
  // next prototype, twice, makes libbpf's walk (and a naive copy of it)
  // exponential. Real kernels use a few steps per type.
  bool over_budget(uint32_t id) {
    if (++steps_ <= step_budget_) return false;
    fail(id, "type graph too complex to print (step budget exceeded)");
    return true;
  }

  int order_type(uint32_t id, bool through_ptr, int depth) {
    if (depth > kMaxDepth) return fail(id, "type chain too deep or cyclic"), -1;
    if (over_budget(id)) return -1;
    TypeState& s = state_[id];
    if (s.order == kDone) return 1;
    const BtfType& ty = t(id);
    BtfKind kind = ty.kind();
    if (s.order == kDoing) {
      if (composite(kind) && through_ptr && ty.name_off() != 0) return 0;
      return fail(id, "unsatisfiable type cycle"), -1;
    }
    switch (kind) {
      case BtfKind::int_:
      case BtfKind::float_: s.order = kDone; return 0;
      case BtfKind::ptr: {
        int r = order_type(ty.type(), true, depth + 1);
        state_[id].order = kDone;
        return r;
      }
      case BtfKind::array: return order_type(ty.extra_u32(0), false, depth + 1);
      case BtfKind::struct_:
      case BtfKind::union_: {
        if (through_ptr && ty.name_off() != 0) return 0;
        s.order = kDoing;
        for (uint32_t i = 0, n = ty.vlen(); i < n; ++i) {
          if (order_type(ty.extra_u32(i * 3 + 1), false, depth + 1) < 0) return -1;
        }
        if (ty.name_off() != 0) queue_.push_back(id);
        state_[id].order = kDone;
        return 1;
      }
      case BtfKind::enum_:
      case BtfKind::enum64:
      case BtfKind::fwd:
        if (ty.name_off() != 0 || !s.referenced) queue_.push_back(id);
        s.order = kDone;
        return 1;
      case BtfKind::typedef_: {
        int strong = order_type(ty.type(), through_ptr, depth + 1);
        if (strong < 0) return strong;
        if (through_ptr && !strong) return 0;
        queue_.push_back(id);
        state_[id].order = kDone;
        return 1;
      }
      case BtfKind::volatile_:
      case BtfKind::const_:
      case BtfKind::restrict_:
      case BtfKind::type_tag: return order_type(ty.type(), through_ptr, depth + 1);
      case BtfKind::func_proto: {
        int r = order_type(ty.type(), through_ptr, depth + 1);
        if (r < 0) return r;
        bool strong = r > 0;
        for (uint32_t i = 0, n = ty.vlen(); i < n; ++i) {
          r = order_type(ty.extra_u32(i * 2 + 1), through_ptr, depth + 1);
          if (r < 0) return r;
          if (r > 0) strong = true;
        }
        return strong ? 1 : 0;
      }
      case BtfKind::func:
      case BtfKind::var:
      case BtfKind::datasec:
      case BtfKind::decl_tag: s.order = kDone; return 0;
      default: return fail(id, "unexpected kind"), -1;
    }
  }

  // ---- pass 2: emit -------------------------------------------------------

  bool blacklisted(uint32_t id) const {
    const BtfType& ty = t(id);
    return ty.name_off() != 0 && name_of(ty.name_off()) == "__builtin_va_list";
  }

  void emit_type(uint32_t id, uint32_t cont_id, int depth) {
    if (depth > kMaxDepth) return (void)fail(id, "type chain too deep or cyclic");
    if (failed_ || over_budget(id)) return;
    TypeState& s = state_[id];
    if (s.emit == kDone) return;
    const BtfType& ty = t(id);
    BtfKind kind = ty.kind();
    bool top_level = cont_id == 0;

    if (s.emit == kDoing) {
      if (s.fwd_emitted) return;
      if (composite(kind)) {
        if (id == cont_id) return;
        if (ty.name_off() == 0) return;  // anonymous loop: libbpf warns and goes on
        emit_struct_fwd(id, ty);
        out_ += ";\n\n";
        state_[id].fwd_emitted = true;
      } else if (kind == BtfKind::typedef_) {
        if (!blacklisted(id)) {
          emit_typedef_def(id, ty, 0);
          out_ += ";\n\n";
        }
        state_[id].fwd_emitted = true;
      }
      return;
    }

    switch (kind) {
      case BtfKind::int_:
        emit_missing_alias(id);
        state_[id].emit = kDone;
        break;
      case BtfKind::enum_:
      case BtfKind::enum64:
        if (top_level) {
          emit_enum_def(id, ty, 0);
          out_ += ";\n\n";
        }
        state_[id].emit = kDone;
        break;
      case BtfKind::ptr:
      case BtfKind::volatile_:
      case BtfKind::const_:
      case BtfKind::restrict_:
      case BtfKind::type_tag: emit_type(ty.type(), cont_id, depth + 1); break;
      case BtfKind::array: emit_type(ty.extra_u32(0), cont_id, depth + 1); break;
      case BtfKind::fwd:
        emit_fwd_def(id, ty);
        out_ += ";\n\n";
        state_[id].emit = kDone;
        break;
      case BtfKind::typedef_:
        s.emit = kDoing;
        emit_type(ty.type(), id, depth + 1);
        if (!state_[id].fwd_emitted && !blacklisted(id)) {
          emit_typedef_def(id, ty, 0);
          out_ += ";\n\n";
        }
        state_[id].emit = kDone;
        break;
      case BtfKind::struct_:
      case BtfKind::union_:
        s.emit = kDoing;
        if (top_level || ty.name_off() == 0) {
          uint32_t new_cont = ty.name_off() == 0 ? cont_id : id;
          for (uint32_t i = 0, n = ty.vlen(); i < n; ++i) emit_type(ty.extra_u32(i * 3 + 1), new_cont, depth + 1);
        } else if (!state_[id].fwd_emitted && id != cont_id) {
          emit_struct_fwd(id, ty);
          out_ += ";\n\n";
          state_[id].fwd_emitted = true;
        }
        if (top_level) {
          emit_struct_def(id, ty, 0);
          out_ += ";\n\n";
          state_[id].emit = kDone;
        } else {
          state_[id].emit = kNot;
        }
        break;
      case BtfKind::func_proto:
        emit_type(ty.type(), cont_id, depth + 1);
        for (uint32_t i = 0, n = ty.vlen(); i < n; ++i) emit_type(ty.extra_u32(i * 2 + 1), cont_id, depth + 1);
        break;
      default: break;
    }
  }

  // ---- layout -------------------------------------------------------------

  // Memoized: a struct's alignment is its members', asked for at every
  // use of the struct (align_[id] is the alignment + 1, 0 until known).
  int align_of(uint32_t id, int depth = 0) {
    if (id == 0) return 0;
    if (align_[id] != 0) return align_[id] - 1;
    int a = compute_align(id, depth);
    if (!failed_ && a >= 0 && a < 255) align_[id] = static_cast<uint8_t>(a + 1);
    return a;
  }

  int compute_align(uint32_t id, int depth) {
    if (depth > kMaxDepth) return fail(id, "type chain too deep or cyclic"), 0;
    const BtfType& ty = t(id);
    switch (ty.kind()) {
      case BtfKind::int_:
      case BtfKind::enum_:
      case BtfKind::enum64:
      case BtfKind::float_: return std::min(ptr_sz_, static_cast<int>(std::min<uint32_t>(ty.size(), 1u << 30)));
      case BtfKind::ptr: return ptr_sz_;
      case BtfKind::typedef_:
      case BtfKind::volatile_:
      case BtfKind::const_:
      case BtfKind::restrict_:
      case BtfKind::type_tag: return align_of(ty.type(), depth + 1);
      case BtfKind::array: return align_of(ty.extra_u32(0), depth + 1);
      case BtfKind::struct_:
      case BtfKind::union_: {
        int max_align = 1;
        for (uint32_t i = 0, n = ty.vlen(); i < n; ++i) {
          Member m = member(ty, i);
          int a = align_of(m.type, depth + 1);
          if (a <= 0) return 0;
          max_align = std::max(max_align, a);
          // a field off its type's alignment: the struct is packed
          if (m.bit_size == 0 && m.raw_offset % (8u * static_cast<uint32_t>(a)) != 0) return 1;
        }
        if (ty.size() % static_cast<uint32_t>(max_align) != 0) return 1;
        return max_align;
      }
      default: return 0;
    }
  }

  int64_t resolve_size(uint32_t id) {
    uint64_t nelems = 1;
    int64_t size = -1;
    for (int i = 0; i < kMaxResolveDepth && id != 0; ++i) {
      const BtfType& ty = t(id);
      switch (ty.kind()) {
        case BtfKind::int_:
        case BtfKind::struct_:
        case BtfKind::union_:
        case BtfKind::enum_:
        case BtfKind::enum64:
        case BtfKind::datasec:
        case BtfKind::float_: size = ty.size(); goto done;
        case BtfKind::ptr: size = ptr_sz_; goto done;
        case BtfKind::typedef_:
        case BtfKind::volatile_:
        case BtfKind::const_:
        case BtfKind::restrict_:
        case BtfKind::var:
        case BtfKind::decl_tag:
        case BtfKind::type_tag: id = ty.type(); break;
        case BtfKind::array: {
          uint32_t n = ty.extra_u32(2);
          if (nelems != 0 && n > UINT32_MAX / nelems) return -1;
          nelems *= n;
          id = ty.extra_u32(0);
          break;
        }
        default: return -1;
      }
    }
  done:
    if (size < 0) return -1;
    if (nelems != 0 && static_cast<uint64_t>(size) > UINT32_MAX / nelems) return -1;
    return static_cast<int64_t>(nelems) * size;
  }

  bool struct_packed(const BtfType& ty) {
    int max_align = 1;
    for (uint32_t i = 0, n = ty.vlen(); i < n; ++i) {
      Member m = member(ty, i);
      int a = align_of(m.type);
      if (a != 0 && m.bit_size == 0 && m.raw_offset % (8u * static_cast<uint32_t>(a)) != 0) return true;
      max_align = std::max(max_align, a);
    }
    return ty.size() % static_cast<uint32_t>(max_align) != 0;
  }

  // ---- printing -----------------------------------------------------------

  void pfx(int lvl) { out_.append(static_cast<size_t>(std::min(lvl, 13)), '\t'); }
  void num(int64_t v) { out_.i(v); }
  void unum(uint64_t v) { out_.u(v); }

  void emit_bit_padding(int64_t cur_off, int64_t next_off, int next_align, bool in_bitfield, int lvl) {
    struct Pad {
      const char* name;
      int bits;
    };
    const Pad pads[] = {{"long", ptr_sz_ * 8}, {"int", 32}, {"short", 16}, {"char", 8}};
    if (cur_off >= next_off) return;
    auto roundup = [](int64_t x, int64_t y) { return (x + y - 1) / y * y; };
    int64_t new_off = 0;
    int pad_bits = 0;
    const char* pad_type = nullptr;
    for (const Pad& p : pads) {
      pad_bits = p.bits;
      pad_type = p.name;
      new_off = roundup(cur_off, pad_bits);
      if (new_off <= next_off) break;
    }
    if (new_off > cur_off && new_off <= next_off) {
      // A member of no alignment (void, a function: only in broken BTF)
      // counts as byte-aligned; libbpf divides by zero there.
      const int64_t align_bits = int64_t{std::max(next_align, 1)} * 8;
      if (in_bitfield || (new_off == next_off && roundup(cur_off, align_bits) != new_off) ||
          (new_off != next_off && next_off - new_off <= new_off - cur_off)) {
        out_ += '\n';
        pfx(lvl);
        out_ += pad_type;
        out_ += ": ";
        num(in_bitfield ? new_off - cur_off : 0);
        out_ += ';';
      }
      cur_off = new_off;
    }
    // A struct claiming gigabytes of size asks for gigabytes of padding:
    // each full line below is at least 8 bytes, so refuse before printing
    // what the loop would refuse after printing megabytes.
    if (pad_bits > 0 && next_off > cur_off &&
        static_cast<uint64_t>((next_off - cur_off) / pad_bits) >
            (out_limit_ - std::min<uint64_t>(out_limit_, out_.size())) / 8 + 1) {
      return (void)fail(0, "the C header would be unreasonably large (padding)");
    }
    while (cur_off != next_off) {
      if (out_.size() > out_limit_) return (void)fail(0, "the C header would be unreasonably large (padding)");
      int64_t bits = std::min<int64_t>(next_off - cur_off, pad_bits);
      if (bits == pad_bits) {
        out_ += '\n';
        pfx(lvl);
        out_ += pad_type;
        out_ += ": ";
        num(pad_bits);
        out_ += ';';
        cur_off += bits;
        continue;
      }
      for (int i = 3; i >= 0; --i) {
        if (pads[i].bits < bits) continue;
        pad_type = pads[i].name;
        pad_bits = pads[i].bits;
        out_ += '\n';
        pfx(lvl);
        out_ += pad_type;
        out_ += ": ";
        num(bits);
        out_ += ';';
        cur_off += bits;
        break;
      }
    }
  }

  void emit_struct_fwd(uint32_t id, const BtfType& ty) {
    out_ += ty.kind() == BtfKind::struct_ ? "struct" : "union";
    if (ty.name_off() != 0) out_ += ' ';
    out_ += type_name(id);
  }

  void emit_struct_def(uint32_t id, const BtfType& ty, int lvl) {
    // Anonymous types are printed inline wherever used, so a small hostile
    // BTF (each anonymous struct embedding the next twice) can ask for an
    // exponentially large header; stop at a bound proportional to the input.
    if (out_.size() > out_limit_)
      return (void)fail(id, "the C header would be unreasonably large (nested anonymous types)");
    bool is_struct = ty.kind() == BtfKind::struct_;
    int align = align_of(id);
    // A union whose size is not a multiple of its members' alignment was
    // packed too (bpftool 7.1 only looks at structs, and pads it out).
    bool packed = (is_struct || !compat_) && struct_packed(ty);
    uint32_t vlen = ty.vlen();
    emit_struct_fwd(id, ty);
    out_ += " {";
    int64_t off = 0;
    bool prev_bitfield = false;
    for (uint32_t i = 0; i < vlen; ++i) {
      Member m = member(ty, i);
      int m_align = packed ? 1 : align_of(m.type);
      bool in_bitfield = prev_bitfield && m.bit_size != 0;
      // A packed struct does not align padding either: every gap is
      // spelled out in bits (bpftool 7.1 lets the compiler align it, and
      // gets such structs a few bytes short).
      emit_bit_padding(off, m.bit_offset, m_align, in_bitfield || (packed && !compat_), lvl + 1);
      out_ += '\n';
      pfx(lvl + 1);
      emit_type_decl(m.type, name_of(m.name_off), lvl + 1);
      if (m.bit_size != 0) {
        out_ += ": ";
        num(m.bit_size);
        off = int64_t{m.bit_offset} + m.bit_size;
        prev_bitfield = true;
      } else {
        int64_t sz = std::max<int64_t>(0, resolve_size(m.type));
        off = int64_t{m.bit_offset} + sz * 8;
        prev_bitfield = false;
      }
      out_ += ';';
    }
    if (is_struct) emit_bit_padding(off, int64_t{ty.size()} * 8, align, packed && !compat_, lvl + 1);
    if (vlen != 0 || ty.size() != 0) {
      out_ += '\n';
      pfx(lvl);
    }
    out_ += '}';
    if (packed) out_ += " __attribute__((packed))";
  }

  void emit_missing_alias(uint32_t id) {
    static constexpr std::string_view kAliases[][2] = {{"__Poly8_t", "unsigned char"},
                                                       {"__Poly16_t", "unsigned short"},
                                                       {"__Poly64_t", "unsigned long long"},
                                                       {"__Poly128_t", "unsigned __int128"}};
    std::string_view name = type_name(id);
    for (const auto& a : kAliases) {
      if (name == a[0]) {
        out_ += "typedef ";
        out_ += a[1];
        out_ += ' ';
        out_ += name;
        out_ += ";\n\n";
        break;
      }
    }
  }

  void emit_enum_def(uint32_t id, const BtfType& ty, int lvl) {
    uint32_t vlen = ty.vlen();
    out_ += "enum";
    if (ty.name_off() != 0) out_ += ' ';
    out_ += type_name(id);
    if (vlen == 0) return;
    out_ += " {";
    bool is_signed = ty.kflag();
    bool is64 = ty.kind() == BtfKind::enum64;
    for (uint32_t i = 0; i < vlen; ++i) {
      uint32_t stride = is64 ? 3 : 2;
      std::string_view name = name_of(ty.extra_u32(i * stride));
      size_t dups = ident_names_.bump(name);
      out_ += '\n';
      pfx(lvl + 1);
      out_ += name;
      if (dups > 1) {
        out_ += "___";
        unum(dups);
      }
      out_ += " = ";
      if (!is64) {
        uint32_t v = ty.extra_u32(i * 2 + 1);
        if (is_signed) {
          num(static_cast<int32_t>(v));
        } else {
          unum(v);
        }
      } else {
        uint64_t v = ty.extra_u32(i * 3 + 1) | uint64_t{ty.extra_u32(i * 3 + 2)} << 32;
        if (is_signed) {
          num(static_cast<int64_t>(v));
          out_ += "LL";
        } else {
          unum(v);
          out_ += "ULL";
        }
      }
      out_ += ',';
    }
    out_ += '\n';
    pfx(lvl);
    out_ += '}';
    // An enum's size is the compiler's choice; force the sizes C would not
    // pick by itself, so the header has the BTF's layout (libbpf >= 1.2
    // does the same; bpftool 7.1 prints these enums 4 bytes wide).
    if (compat_) return;
    if (ty.size() == 1) {
      out_ += " __attribute__((mode(byte)))";
    } else if (ty.size() == 8 && ptr_sz_ == 8) {
      bool needs_word = true;  // an ENUM64 with a value above 32 bits is 8 bytes anyway
      for (uint32_t i = 0; is64 && i < vlen; ++i) {
        if (ty.extra_u32(i * 3 + 2) != 0) needs_word = false;
      }
      if (needs_word) out_ += " __attribute__((mode(word)))";
    }
  }

  void emit_fwd_def(uint32_t id, const BtfType& ty) {
    out_ += ty.kflag() ? "union " : "struct ";
    out_ += type_name(id);
  }

  void emit_typedef_def(uint32_t id, const BtfType& ty, int lvl) {
    std::string_view name = ident_name(id);
    if (ty.type() == 0 && name == "__gnuc_va_list") {
      out_ += "typedef __builtin_va_list __gnuc_va_list";
      return;
    }
    out_ += "typedef ";
    emit_type_decl(ty.type(), name, lvl);
  }

  // A declaration of `fname` with type `id`: the chain of pointers,
  // modifiers, arrays and function prototypes down to a terminal type,
  // printed inside out as C wants it.
  void emit_type_decl(uint32_t id, std::string_view fname, int lvl) {
    size_t start = decl_stack_.size();
    for (int steps = 0;; ++steps) {
      if (steps > kMaxDepth) {
        fail(id, "type chain too deep or cyclic");
        decl_stack_.resize(start);
        return;
      }
      decl_stack_.push_back(id);
      if (id == 0) break;
      const BtfType& ty = t(id);
      switch (ty.kind()) {
        case BtfKind::ptr:
        case BtfKind::volatile_:
        case BtfKind::const_:
        case BtfKind::restrict_:
        case BtfKind::func_proto:
        case BtfKind::type_tag: id = ty.type(); continue;
        case BtfKind::array: id = ty.extra_u32(0); continue;
        default: break;
      }
      break;
    }
    size_t cnt = decl_stack_.size() - start;
    emit_type_chain(start, cnt, fname, lvl, 0);
    decl_stack_.resize(start);
  }

  // The stack frame is decl_stack_[base, base + cnt); `cnt` shrinks as
  // entries are consumed from the top.
  void emit_mods(size_t base, size_t& cnt) {
    while (cnt != 0) {
      const BtfType* ty = decl_stack_[base + cnt - 1] == 0 ? nullptr : &t(decl_stack_[base + cnt - 1]);
      if (ty == nullptr) return;
      switch (ty->kind()) {
        case BtfKind::volatile_: out_ += "volatile "; break;
        case BtfKind::const_: out_ += "const "; break;
        case BtfKind::restrict_: out_ += "restrict "; break;
        default: return;
      }
      --cnt;
    }
  }

  void drop_mods(size_t base, size_t& cnt) {
    while (cnt != 0) {
      uint32_t id = decl_stack_[base + cnt - 1];
      if (id == 0 || !modifier(t(id).kind())) return;
      --cnt;
    }
  }

  void emit_name(std::string_view name, bool last_was_ptr) {
    if (!name.empty() && !last_was_ptr) out_ += ' ';
    out_ += name;
  }

  void emit_type_chain(size_t base, size_t cnt, std::string_view fname, int lvl, int depth) {
    if (depth > kMaxDepth) return (void)fail(0, "type chain too deep or cyclic");
    if (failed_ || over_budget(0)) return;
    bool last_was_ptr = true;
    while (cnt != 0) {
      uint32_t id = decl_stack_[base + --cnt];
      if (id == 0) {
        emit_mods(base, cnt);
        out_ += "void";
        last_was_ptr = false;
        continue;
      }
      const BtfType& ty = t(id);
      BtfKind kind = ty.kind();
      switch (kind) {
        case BtfKind::int_:
        case BtfKind::float_:
          emit_mods(base, cnt);
          out_ += name_of(ty.name_off());
          break;
        case BtfKind::struct_:
        case BtfKind::union_:
          emit_mods(base, cnt);
          if (ty.name_off() == 0) {
            if (depth + lvl > kMaxDepth) return (void)fail(id, "type chain too deep or cyclic");
            emit_struct_def(id, ty, lvl);
          } else {
            emit_struct_fwd(id, ty);
          }
          break;
        case BtfKind::enum_:
        case BtfKind::enum64:
          emit_mods(base, cnt);
          if (ty.name_off() == 0) {
            emit_enum_def(id, ty, lvl);
          } else {
            out_ += "enum ";
            out_ += type_name(id);
          }
          break;
        case BtfKind::fwd:
          emit_mods(base, cnt);
          emit_fwd_def(id, ty);
          break;
        case BtfKind::typedef_:
          emit_mods(base, cnt);
          out_ += ident_name(id);
          break;
        case BtfKind::ptr: out_ += last_was_ptr ? "*" : " *"; break;
        case BtfKind::volatile_: out_ += " volatile"; break;
        case BtfKind::const_: out_ += " const"; break;
        case BtfKind::restrict_: out_ += " restrict"; break;
        case BtfKind::type_tag:
          emit_mods(base, cnt);
          out_ += " __attribute__((btf_type_tag(\"";
          out_ += name_of(ty.name_off());
          out_ += "\")))";
          break;
        case BtfKind::array: {
          drop_mods(base, cnt);
          uint32_t nelems = ty.extra_u32(2);
          if (cnt == 0) {
            emit_name(fname, last_was_ptr);
            out_ += '[';
            unum(nelems);
            out_ += ']';
            return;
          }
          uint32_t next = decl_stack_[base + cnt - 1];
          bool multidim = next != 0 && t(next).kind() == BtfKind::array;
          if (!fname.empty() && !last_was_ptr) out_ += ' ';
          if (!multidim) out_ += '(';
          emit_type_chain(base, cnt, fname, lvl, depth + 1);
          if (!multidim) out_ += ')';
          out_ += '[';
          unum(nelems);
          out_ += ']';
          return;
        }
        case BtfKind::func_proto: {
          drop_mods(base, cnt);
          if (cnt != 0) {
            out_ += " (";
            emit_type_chain(base, cnt, fname, lvl, depth + 1);
            out_ += ')';
          } else {
            emit_name(fname, last_was_ptr);
          }
          out_ += '(';
          uint32_t vlen = ty.vlen();
          if (vlen == 0 || (vlen == 1 && ty.extra_u32(1) == 0)) {
            out_ += "void)";
            return;
          }
          for (uint32_t i = 0; i < vlen; ++i) {
            if (i > 0) out_ += ", ";
            uint32_t ptype = ty.extra_u32(i * 2 + 1);
            if (i == vlen - 1 && ptype == 0) {
              out_ += "...";
              break;
            }
            emit_type_decl(ptype, name_of(ty.extra_u32(i * 2)), lvl);
          }
          out_ += ')';
          return;
        }
        default: return;  // libbpf warns "unexpected type in decl chain"
      }
      last_was_ptr = kind == BtfKind::ptr;
    }
    emit_name(fname, last_was_ptr);
  }

  // ---- names --------------------------------------------------------------

  std::string_view resolve_name(uint32_t id, NameCounts& names) {
    const BtfType& ty = t(id);
    if (ty.name_off() == 0) return {};
    TypeState& s = state_[id];
    std::string_view orig = name_of(ty.name_off());
    if (s.name_resolved) return renamed_[id] == 0 ? orig : std::string_view(renamed_names_[renamed_[id] - 1]);
    s.name_resolved = true;
    if (ty.kind() == BtfKind::fwd || (ty.kind() == BtfKind::enum_ && ty.vlen() == 0)) return orig;
    size_t dups = names.bump(orig);
    if (dups > 1) {
      renamed_names_.emplace_back();
      renamed_[id] = static_cast<uint32_t>(renamed_names_.size());
      std::string& n = renamed_names_.back();
      n.assign(orig);
      n += "___";
      n += std::to_string(dups);
      if (n.size() > 255) n.resize(255);  // libbpf formats into 256 bytes
      return n;
    }
    return orig;
  }
  std::string_view type_name(uint32_t id) { return resolve_name(id, type_names_); }
  std::string_view ident_name(uint32_t id) { return resolve_name(id, ident_names_); }

  const Btf& btf_;
  TextOut& out_;
  std::vector<BtfType> types_;  // types_[id - 1]: type `id`
  std::vector<TypeState> state_;
  // Names suffixed ___N: renamed_[id] is 1 + their index in renamed_names_
  // (0: the BTF's own name). A deque, so views handed out stay valid.
  std::vector<uint32_t> renamed_;
  std::deque<std::string> renamed_names_;
  std::vector<uint8_t> align_;
  std::vector<uint32_t> queue_;
  std::vector<uint32_t> decl_stack_;
  NameCounts type_names_, ident_names_;
  int ptr_sz_ = 8;
  uint64_t out_limit_ = 0;
  uint64_t steps_ = 0, step_budget_ = 0;
  bool compat_;
  bool failed_ = false;
  uint32_t failed_id_ = 0;
  std::string failed_what_;
};

}  // namespace

Result<void> btf_dump_c(const Btf& btf, std::string& out, const CHeaderOptions& options) {
  TextOut o(out);
  CDumper dumper(btf, o, options);
  auto r = dumper.run();
  auto written = o.finish();
  return r.ok() ? written : r;
}

Result<void> btf_dump_c(const Btf& btf, const TextSink& sink, const CHeaderOptions& options) {
  TextOut o(sink);
  CDumper dumper(btf, o, options);
  auto r = dumper.run();
  auto written = o.finish();
  // A sink's error stopped the dump; it is the reason, not what followed.
  return written.ok() ? r : written;
}

}  // namespace mmar
