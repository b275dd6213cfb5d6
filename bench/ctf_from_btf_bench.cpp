// SPDX-License-Identifier: BSD-2-Clause
// Kernel BTF -> CTF archive: mmar's ctf_convert_btf / ctf_from_btf beside
// libctf 2.40 serialising the same types.
//
//   ctf_from_btf_bench [VMLINUX] [RUNS]   (default /sys/kernel/btf/vmlinux, 5)
//
// libctf has no BTF reader: its side is the same conversion written with
// libctf's ctf_add_* API (LibctfFromBtf below: the same kinds, bitfields as
// slices, symbols with ctf_add_func_sym / ctf_add_objt_sym; for simplicity
// types and symbols in one dict, and without mmar's libctf workarounds:
// no `void` type, no enum slices, arrays nested as in BTF), timed building,
// then ctf_write_mem and ctf_arc_write, each on a freshly built dict (libctf
// caches a serialised dict). Best of RUNS.
#include <ctf-api.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mmar/archive.h"
#include "mmar/btf.h"
#include "mmar/ctf.h"

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

template <class F>
double best_of(int runs, F&& f) {
  double best = 1e30;
  for (int i = 0; i < runs; ++i) {
    const double t0 = now();
    f();
    best = std::min(best, now() - t0);
  }
  return best;
}

long file_size(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return -1;
  std::fseek(f, 0, SEEK_END);
  const long n = std::ftell(f);
  std::fclose(f);
  return n;
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "ctf_from_btf_bench: %s\n", what.c_str());
  std::exit(1);
}

}  // namespace

// The same conversion through libctf's ctf_add_* API, for its serialisation:
// every kept BTF type added once (structs and unions before their members,
// so pointers back to them resolve), then the symbols. Types libctf refuses
// as root (a second root type of a name) are added non-root; BTF void is 0.
class LibctfFromBtf {
 public:
  LibctfFromBtf(const mmar::Btf& btf, ctf_dict_t* fp) : btf_(btf), fp_(fp) {}
  size_t refused = 0;

  void run() {
    const uint32_t end = *btf_.type_count();
    memo_.assign(end, kUnset);
    for (uint32_t id = 1; id < end; ++id) (void)add(id);
    for (uint32_t id = 1; id < end; ++id) {
      auto t = *btf_.type(id);
      const std::string name(btf_.name_of(t));
      if (t.kind() == mmar::BtfKind::func) {
        if (ctf_add_func_sym(fp_, name.c_str(), add(t.type())) != 0) ++refused;
      } else if (t.kind() == mmar::BtfKind::var) {
        if (ctf_add_objt_sym(fp_, name.c_str(), add(t.type())) != 0) ++refused;
      }
    }
  }

 private:
  static constexpr ctf_id_t kUnset = -2;

  template <class F>
  ctf_id_t rooted(const std::string& /*name*/, F&& f) {
    ctf_id_t r = f(CTF_ADD_ROOT);
    if (r == CTF_ERR) r = f(CTF_ADD_NONROOT);
    if (r == CTF_ERR) ++refused;
    return r == CTF_ERR ? 0 : r;
  }

  ctf_id_t add(uint32_t id) {
    if (id == 0) return 0;
    if (memo_[id] != kUnset) return memo_[id];
    auto t = *btf_.type(id);
    const std::string name(btf_.name_of(t));
    const char* n = name.empty() ? nullptr : name.c_str();
    using K = mmar::BtfKind;
    ctf_id_t r = 0;
    switch (t.kind()) {
      case K::int_: {
        const uint32_t enc = t.extra_u32(0);
        ctf_encoding_t e{(enc >> 24) & 0xf, (enc >> 16) & 0xff, enc & 0xff};
        r = rooted(name, [&](uint32_t f) { return ctf_add_integer(fp_, f, n, &e); });
        break;
      }
      case K::float_: {
        const uint32_t format = t.size() == 8 ? CTF_FP_DOUBLE : t.size() > 8 ? CTF_FP_LDOUBLE : CTF_FP_SINGLE;
        ctf_encoding_t e{format, 0, t.size() * 8};
        r = rooted(name, [&](uint32_t f) { return ctf_add_float(fp_, f, n, &e); });
        break;
      }
      case K::ptr: {
        const ctf_id_t to = add(t.type());
        r = rooted(name, [&](uint32_t f) { return ctf_add_pointer(fp_, f, to); });
        break;
      }
      case K::typedef_: {
        const ctf_id_t to = add(t.type());
        r = rooted(name, [&](uint32_t f) { return ctf_add_typedef(fp_, f, n, to); });
        break;
      }
      case K::volatile_:
      case K::const_:
      case K::restrict_: {
        const ctf_id_t to = add(t.type());
        const K k = t.kind();
        r = rooted(name, [&](uint32_t f) {
          return k == K::volatile_ ? ctf_add_volatile(fp_, f, to)
                 : k == K::const_  ? ctf_add_const(fp_, f, to)
                                   : ctf_add_restrict(fp_, f, to);
        });
        break;
      }
      case K::type_tag: r = add(t.type()); break;
      case K::array: {
        ctf_arinfo_t a{add(t.extra_u32(0)), add(t.extra_u32(1)), t.extra_u32(2)};
        r = rooted(name, [&](uint32_t f) { return ctf_add_array(fp_, f, &a); });
        break;
      }
      case K::struct_:
      case K::union_: {
        const bool is_struct = t.kind() == K::struct_;
        r = rooted(name, [&](uint32_t f) {
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
        r = rooted(name, [&](uint32_t f) { return ctf_add_enum(fp_, f, n); });
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
        r = rooted(name, [&](uint32_t f) { return ctf_add_forward(fp_, f, n, kind); });
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
        r = rooted(name, [&](uint32_t f) { return ctf_add_function(fp_, f, &fi, args.data()); });
        break;
      }
      default: r = 0; break;  // FUNC, VAR (symbols), DATASEC, DECL_TAG
    }
    memo_[id] = r;
    return r;
  }

  const mmar::Btf& btf_;
  ctf_dict_t* fp_;
  std::vector<ctf_id_t> memo_;
};

int main(int argc, char** argv) {
  const std::string vmlinux = argc > 1 ? argv[1] : "/sys/kernel/btf/vmlinux";
  const int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  const std::string dir = "/tmp/ctf_from_btf_bench." + std::to_string(getpid());
  const std::string ours = dir + "-mmar.ctfa", theirs = dir + "-libctf.ctfa";

  auto btf = mmar::Btf::open(vmlinux, nullptr, mmar::BtfOpenOptions{.validate = true});
  if (!btf.ok()) die(btf.error().message());
  size_t ctf_types = 0;
  const double t_convert = best_of(runs, [&] {
    auto r = mmar::ctf_convert_btf(*btf, {});
    if (!r.ok()) die(r.error().message());
    ctf_types = r->types;
  });
  const double t_cli = best_of(runs, [&] {
    auto s = mmar::ctf_from_btf(ours, vmlinux, {});
    if (!s.ok()) die(s.error().message());
  });

  // libctf: the same types added with its ctf_add_* API, then serialised.
  // Each run builds a fresh dict (libctf caches a serialised dict: only the
  // first write after a change does the work).
  size_t refused = 0, mem_size = 0;
  auto build = [&] {
    int e = 0;
    ctf_dict_t* fp = ctf_create(&e);
    if (fp == nullptr) die("ctf_create");
    LibctfFromBtf conv(*btf, fp);
    conv.run();
    refused = conv.refused;
    return fp;
  };
  double t_add = 1e30, t_write_mem = 1e30, t_arc_write = 1e30;
  size_t libctf_types = 0;
  for (int run = 0; run < runs; ++run) {
    double t0 = now();
    ctf_dict_t* fp = build();
    t_add = std::min(t_add, now() - t0);
    t0 = now();
    unsigned char* buf = ctf_write_mem(fp, &mem_size, static_cast<size_t>(-1));  // never compressed
    t_write_mem = std::min(t_write_mem, now() - t0);
    if (buf == nullptr) die(std::string("ctf_write_mem: ") + ctf_errmsg(ctf_errno(fp)));
    std::free(buf);
    ctf_dict_close(fp);
    fp = build();
    const char* names[] = {"shared_ctf"};
    t0 = now();
    if (ctf_arc_write(theirs.c_str(), &fp, 1, names, static_cast<size_t>(-1)) != 0) {
      die(std::string("ctf_arc_write: ") + ctf_errmsg(ctf_errno(fp)));
    }
    t_arc_write = std::min(t_arc_write, now() - t0);
    ctf_next_t* it = nullptr;
    libctf_types = 0;
    while (ctf_type_next(fp, &it, nullptr, 1) != CTF_ERR) ++libctf_types;
    ctf_dict_close(fp);
  }

  std::printf("input: %s, %ld bytes of BTF\n", vmlinux.c_str(), file_size(vmlinux));
  std::printf("mmar   ctf_convert_btf (in memory)          %8.1f ms  %zu CTF types\n", t_convert * 1e3, ctf_types);
  std::printf("mmar   ctf_from_btf (open, convert, write)  %8.1f ms  %ld bytes archive\n", t_cli * 1e3,
              file_size(ours));
  std::printf("libctf ctf_add_* of every type + symbols      %8.1f ms  %zu types, %zu refused\n", t_add * 1e3,
              libctf_types, refused);
  std::printf("libctf ctf_write_mem (types and symbols)    %8.1f ms  %zu bytes\n", t_write_mem * 1e3, mem_size);
  std::printf("libctf ctf_arc_write (the same, one dict)   %8.1f ms  %ld bytes archive\n", t_arc_write * 1e3,
              file_size(theirs));
  if (getenv("BENCH_KEEP") == nullptr) {
    unlink(ours.c_str());
    unlink(theirs.c_str());
  } else {
    std::printf("kept %s and %s\n", ours.c_str(), theirs.c_str());
  }
  return 0;
}
