// SPDX-License-Identifier: BSD-2-Clause
// Kernel BTF -> CTF archive: mmar's ctf_convert_btf / ctf_from_btf beside
// libctf 2.40 serialising the same types.
//
//   ctf_from_btf_bench [VMLINUX] [RUNS]   (default /sys/kernel/btf/vmlinux, 5)
//
// libctf has no BTF reader: its side is the same conversion written with
// libctf's ctf_add_* API (mmar::test::LibctfFromBtf in
// tests/support/libctf_from_btf.h, shared with the tests), timed building,
// then ctf_write_mem and ctf_arc_write, each on a freshly built dict (libctf
// caches a serialised dict). Best of RUNS.
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
#include "support/libctf_from_btf.h"

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

  // libctf: the same types added with its ctf_add_* API, then serialised.
  // Each run builds a fresh dict (libctf caches a serialised dict: only the
  // first write after a change does the work).
  size_t refused = 0, mem_size = 0;
  auto build = [&] {
    int e = 0;
    ctf_dict_t* fp = ctf_create(&e);
    if (fp == nullptr) die("ctf_create");
    mmar::test::LibctfFromBtf conv(*btf, fp);
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
