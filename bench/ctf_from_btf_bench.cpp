// SPDX-License-Identifier: BSD-2-Clause
// Kernel BTF -> CTF archive: mmar's ctf_convert_btf / ctf_from_btf beside
// libctf 2.40 serialising the same types.
//
//   ctf_from_btf_bench [VMLINUX] [RUNS]   (default /sys/kernel/btf/vmlinux, 5)
//
// libctf has no BTF reader, so its side starts from mmar's converted dicts
// opened with libctf: each type is copied into a new dict with libctf's own
// ctf_add_type (which builds it with the ctf_add_* machinery, types it
// already has by name are not added twice), the symbols with
// ctf_add_func_sym / ctf_add_objt_sym, then ctf_write_mem (one dict) and
// ctf_arc_write (the archive) are timed, each on freshly built dicts (libctf
// caches a serialised dict). Best of RUNS.
//
// libctf 2.40's ctf_add_type is lossy: function types lose their arguments
// (it adds them with argc 0) and unions come out as structs, and it refuses
// a second root type of a name (79 in a 6.18 vmlinux). Its bytes are
// therefore a lower bound for the same types: on a 6.18 kernel its type
// section is 1,896,504 bytes against mmar's 2,231,984, of which 391,176 are
// the function arguments it dropped (same record formats otherwise).
#include <ctf-api.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

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

  // libctf: the same types, added with its API, then serialised.
  int err = 0;
  ctf_archive_t* arc = ctf_arc_open(ours.c_str(), &err);
  if (arc == nullptr) die(std::string("ctf_arc_open: ") + ctf_errmsg(err));
  ctf_dict_t* src = ctf_dict_open(arc, "shared_ctf", &err);
  ctf_dict_t* src_core = ctf_dict_open(arc, "vmlinux", &err);
  if (src == nullptr || src_core == nullptr) die(std::string("ctf_dict_open: ") + ctf_errmsg(err));
  // Each run builds fresh dicts (libctf caches a serialised dict: only the
  // first write after a change does the work), then times ctf_write_mem of
  // the parent, and ctf_arc_write of parent and child on another fresh pair.
  size_t added = 0, refused = 0, syms = 0, mem_size = 0;
  auto build = [&](ctf_dict_t*& dst, ctf_dict_t*& dst_core) {
    int e = 0;
    dst = ctf_create(&e);
    dst_core = ctf_create(&e);
    if (dst == nullptr || dst_core == nullptr) die("ctf_create");
    ctf_parent_name_set(dst_core, "shared_ctf");
    added = refused = syms = 0;
    ctf_next_t* it = nullptr;
    ctf_id_t id;
    while ((id = ctf_type_next(src, &it, nullptr, 1)) != CTF_ERR) {
      if (ctf_add_type(dst, src, id) == CTF_ERR) {
        if (refused++ < 5 && getenv("BENCH_VERBOSE")) {
          std::fprintf(stderr, "refused %lx: %s\n", id, ctf_errmsg(ctf_errno(dst)));
        }
      } else {
        ++added;
      }
    }
    for (int functions = 0; functions < 2; ++functions) {
      const char* name = nullptr;
      ctf_next_t* si = nullptr;
      ctf_id_t type;
      while ((type = ctf_symbol_next(src_core, &si, &name, functions)) != CTF_ERR) {
        ctf_id_t t = ctf_add_type(dst, src, type);
        if (t == CTF_ERR) continue;
        // libctf 2.40 cannot make a symbol-only child of a dynamic parent
        // here; the symbols go into the parent (same bytes either way).
        const int rc = functions ? ctf_add_func_sym(dst, name, t) : ctf_add_objt_sym(dst, name, t);
        if (rc == 0) ++syms;
      }
    }
  };
  double t_add = 1e30, t_write_mem = 1e30, t_arc_write = 1e30;
  for (int run = 0; run < runs; ++run) {
    ctf_dict_t *dst = nullptr, *dst_core = nullptr;
    double t0 = now();
    build(dst, dst_core);
    t_add = std::min(t_add, now() - t0);
    t0 = now();
    unsigned char* buf = ctf_write_mem(dst, &mem_size, static_cast<size_t>(-1));  // never compressed
    t_write_mem = std::min(t_write_mem, now() - t0);
    if (buf == nullptr) die(std::string("ctf_write_mem: ") + ctf_errmsg(ctf_errno(dst)));
    std::free(buf);
    ctf_dict_close(dst_core);
    ctf_dict_close(dst);
    build(dst, dst_core);
    ctf_dict_t* dicts[] = {dst, dst_core};
    const char* names[] = {"shared_ctf", "vmlinux"};
    t0 = now();
    if (ctf_arc_write(theirs.c_str(), dicts, 2, names, static_cast<size_t>(-1)) != 0) {
      die(std::string("ctf_arc_write: ") + ctf_errmsg(ctf_errno(dst)));
    }
    t_arc_write = std::min(t_arc_write, now() - t0);
    ctf_dict_close(dst_core);
    ctf_dict_close(dst);
  }

  std::printf("input: %s, %ld bytes of BTF\n", vmlinux.c_str(), file_size(vmlinux));
  std::printf("mmar   ctf_convert_btf (in memory)          %8.1f ms  %zu CTF types\n", t_convert * 1e3, ctf_types);
  std::printf("mmar   ctf_from_btf (open, convert, write)  %8.1f ms  %ld bytes archive\n", t_cli * 1e3,
              file_size(ours));
  std::printf("libctf ctf_add_type of every type + syms    %8.1f ms  %zu added, %zu refused, %zu symbols\n",
              t_add * 1e3, added, refused, syms);
  std::printf("libctf ctf_write_mem (shared_ctf)           %8.1f ms  %zu bytes\n", t_write_mem * 1e3, mem_size);
  std::printf("libctf ctf_arc_write (shared_ctf, vmlinux)  %8.1f ms  %ld bytes archive\n", t_arc_write * 1e3,
              file_size(theirs));
  std::printf("(libctf's copy drops function arguments and union kinds: its sizes are a lower bound)\n");
  ctf_dict_close(src_core);
  ctf_dict_close(src);
  ctf_arc_close(arc);
  if (getenv("BENCH_KEEP") == nullptr) {
    unlink(ours.c_str());
    unlink(theirs.c_str());
  } else {
    std::printf("kept %s and %s\n", ours.c_str(), theirs.c_str());
  }
  return 0;
}
