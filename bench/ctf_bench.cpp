// SPDX-License-Identifier: BSD-2-Clause
// Open a kernel-sized CTF archive and look one type up in its parent dict:
// mmar's CtfArchive (Archive + lazy CtfDict) beside libctf 2.40's
// ctf_arc_open + ctf_dict_open + ctf_lookup_by_name, in the same process,
// the archive in the page cache.
//
//   ctf_bench ARCHIVE [PARENT] [NAME] [RUNS]
//     (defaults: shared_ctf, "struct task_struct", 200)
//
// Each run is a whole cycle (open, look up, close) on a fresh handle: what a
// tool pays per invocation. Reported: the median and best cycle, the heap
// the open + lookup leaves allocated (mallinfo2: libctf builds hash tables
// of every type at ctf_dict_open; mmar allocates nothing per type until a
// caller walks them), and the same for a name that is absent (mmar walks
// every record; from the fifth lookup on a dict it uses a name index) and
// for 16 lookups on one handle.
#include <ctf-api.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mmar/ctf.h"

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

struct Stats {
  double median = 0, best = 0;
};

template <class F>
Stats time_runs(int runs, F&& f) {
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    const double t0 = now();
    f();
    t.push_back(now() - t0);
  }
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t[0]};
}

size_t heap_in_use() { return mallinfo2().uordblks; }

const char* const kMany[] = {"struct task_struct",
                             "struct mm_struct",
                             "struct file",
                             "struct inode",
                             "struct sk_buff",
                             "struct page",
                             "struct dentry",
                             "struct super_block",
                             "struct net_device",
                             "struct sock",
                             "struct bio",
                             "struct device",
                             "struct cred",
                             "struct pid",
                             "struct vm_area_struct",
                             "u64"};

// One cycle; `names` looked up on one handle. Returns the last ID (0 if the
// last name is absent), dies on an unexpected failure.
long mmar_cycle(const std::string& path, const std::string& parent, const std::vector<std::string>& names,
                size_t* heap = nullptr) {
  const size_t before = heap ? heap_in_use() : 0;
  auto a = mmar::CtfArchive::open(path);
  if (!a.ok()) {
    std::fprintf(stderr, "mmar: %s\n", a.error().message().c_str());
    std::exit(1);
  }
  auto d = a->dict(parent);
  if (!d.ok()) {
    std::fprintf(stderr, "mmar: %s\n", d.error().message().c_str());
    std::exit(1);
  }
  long id = 0;
  for (const auto& n : names) {
    auto r = d->find(n);
    id = r.ok() ? static_cast<long>(*r) : 0;
  }
  if (heap) *heap = heap_in_use() - before;
  return id;
}

long libctf_cycle(const std::string& path, const std::string& parent, const std::vector<std::string>& names,
                  size_t* heap = nullptr) {
  const size_t before = heap ? heap_in_use() : 0;
  int err = 0;
  ctf_archive_t* arc = ctf_arc_open(path.c_str(), &err);
  if (!arc) {
    std::fprintf(stderr, "libctf: %s\n", ctf_errmsg(err));
    std::exit(1);
  }
  ctf_dict_t* fp = ctf_dict_open(arc, parent.c_str(), &err);
  if (!fp) {
    std::fprintf(stderr, "libctf: %s: %s\n", parent.c_str(), ctf_errmsg(err));
    std::exit(1);
  }
  long id = 0;
  for (const auto& n : names) {
    const ctf_id_t r = ctf_lookup_by_name(fp, n.c_str());
    id = r == CTF_ERR ? 0 : r;
  }
  if (heap) *heap = heap_in_use() - before;
  ctf_dict_close(fp);
  ctf_close(arc);
  return id;
}

void row(const char* what, const std::string& path, const std::string& parent, const std::vector<std::string>& names,
         int runs) {
  const long ours = mmar_cycle(path, parent, names);
  const long theirs = libctf_cycle(path, parent, names);
  if (ours != theirs) {
    std::fprintf(stderr, "%s: mmar found %ld, libctf %ld\n", what, ours, theirs);
    std::exit(1);
  }
  size_t our_heap = 0, their_heap = 0;
  mmar_cycle(path, parent, names, &our_heap);
  const Stats m = time_runs(runs, [&] { mmar_cycle(path, parent, names); });
  // libctf's heap is measured with its handles still open (freed after).
  libctf_cycle(path, parent, names, &their_heap);
  const Stats l = time_runs(runs, [&] { libctf_cycle(path, parent, names); });
  std::printf(
      "%-34s mmar %9.1f us (best %9.1f, heap %8zu B)  libctf %9.1f us (best %9.1f, heap %9zu B)  ratio %6.1fx\n", what,
      m.median * 1e6, m.best * 1e6, our_heap, l.median * 1e6, l.best * 1e6, their_heap, l.median / m.median);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: ctf_bench ARCHIVE [PARENT] [NAME] [RUNS]\n");
    return 2;
  }
  const std::string path = argv[1];
  const std::string parent = argc > 2 ? argv[2] : "shared_ctf";
  const std::string name = argc > 3 ? argv[3] : "struct task_struct";
  const int runs = argc > 4 ? std::atoi(argv[4]) : 200;
  std::printf("%s, parent %s, %d runs per row (median, best; heap left allocated by open + lookups)\n", path.c_str(),
              parent.c_str(), runs);
  row(("open + find '" + name + "'").c_str(), path, parent, {name}, runs);
  row("open + find an absent name", path, parent, {"struct no_such_type_anywhere"}, runs);
  row("open + 16 finds", path, parent, std::vector<std::string>(std::begin(kMany), std::end(kMany)), runs);
  return 0;
}
