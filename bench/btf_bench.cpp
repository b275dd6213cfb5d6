// SPDX-License-Identifier: BSD-2-Clause
// BTF benchmarks against libbpf (libbpf-dev), same run, real kernel BTF from
// scripts/kernel-btf.sh ($MMAR_KERNEL_BTF, default build/kernel-btf):
//   - open vmlinux BTF and find task_struct: raw file, and from an archive;
//   - open base + every module split and find one name in each;
//   - memory an open vmlinux costs beyond its mapping.
#include <benchmark/benchmark.h>
#include <bpf/btf.h>
#include <dirent.h>
#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mmar/archive.h"
#include "mmar/btf.h"

namespace {

std::string corpus() {
  const char* d = std::getenv("MMAR_KERNEL_BTF");
  return d != nullptr ? d : "build/kernel-btf";
}

void die(const std::string& m) {
  std::fprintf(stderr, "btf_bench: %s\n", m.c_str());
  std::exit(1);
}

struct Module {
  std::string member;  // "modules/<rel>"
  std::string path;
  std::string name;  // a type name defined only in this module
};

// Every module, with the name of its last named type (found without timing).
const std::vector<Module>& modules() {
  static std::vector<Module> mods;
  if (!mods.empty()) return mods;
  auto base = mmar::Btf::open(corpus() + "/vmlinux.btf");
  if (!base.ok()) die(base.error().message());
  std::vector<std::string> stack = {""};
  while (!stack.empty()) {
    std::string rel = stack.back();
    stack.pop_back();
    std::string dir = corpus() + "/modules" + (rel.empty() ? "" : "/" + rel);
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) die("no " + dir + " (run scripts/kernel-btf.sh)");
    while (auto* e = readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      std::string child = rel.empty() ? n : rel + "/" + n;
      if (e->d_type == DT_DIR) {
        stack.push_back(child);
        continue;
      }
      auto split = mmar::Btf::open(corpus() + "/modules/" + child, &*base);
      if (!split.ok()) die(split.error().message());
      std::string last;
      for (uint32_t id = *split->type_count() - 1; id >= split->start_id(); --id) {
        auto t = split->type(id);
        std::string_view nm = split->name_of(*t);
        if (!nm.empty() && t->kind() != mmar::BtfKind::decl_tag) {
          // Must be unique to the module: not also a base type name.
          if (!base->find(nm, t->kind()).ok()) {
            last = std::string(nm);
            break;
          }
        }
      }
      if (!last.empty()) mods.push_back({"modules/" + child, corpus() + "/modules/" + child, last});
    }
    closedir(d);
  }
  std::sort(mods.begin(), mods.end(), [](const Module& a, const Module& b) { return a.member < b.member; });
  return mods;
}

const std::string& packed() {
  static std::string path;
  if (!path.empty()) return path;
  path = corpus() + "/kernel.mmar";
  // As `mmar btf pack` writes it: members raw, each with a stored index.
  std::string cmd = std::string(MMAR_BIN) + " btf pack -f '" + path + "' '" + corpus() + "/vmlinux.btf' '" + corpus() +
                    "/modules' >/dev/null";
  if (std::system(cmd.c_str()) != 0) die("mmar btf pack failed: " + cmd);
  return path;
}

void BM_LibbpfParseFind(benchmark::State& state) {
  const std::string path = corpus() + "/vmlinux.btf";
  for (auto _ : state) {
    struct btf* b = btf__parse(path.c_str(), nullptr);
    int id = btf__find_by_name_kind(b, "task_struct", BTF_KIND_STRUCT);
    if (id <= 0) die("libbpf: no task_struct");
    benchmark::DoNotOptimize(id);
    btf__free(b);
  }
}

void BM_MmarOpenFind(benchmark::State& state) {
  const std::string path = corpus() + "/vmlinux.btf";
  for (auto _ : state) {
    auto b = mmar::Btf::open(path);
    auto t = b->find("task_struct", mmar::BtfKind::struct_);
    if (!t.ok()) die("mmar: no task_struct");
    benchmark::DoNotOptimize(t->id());
  }
}

// The one-shot lookup: no mapping, pread in 64 KiB blocks.
void BM_MmarFindInFile(benchmark::State& state) {
  const std::string path = corpus() + "/vmlinux.btf";
  for (auto _ : state) {
    auto t = mmar::btf_find_in_file(path, "task_struct", mmar::BtfKind::struct_);
    if (!t.ok()) die("mmar: no task_struct");
    benchmark::DoNotOptimize(t->id);
  }
}

void BM_MmarArchiveOpenFind(benchmark::State& state) {
  const std::string& path = packed();
  for (auto _ : state) {
    auto a = mmar::Archive::open(path);
    mmar::BtfSet set(std::move(a).value());
    auto b = set.open("vmlinux");
    auto t = b->find("task_struct", mmar::BtfKind::struct_);
    if (!t.ok()) die("mmar: no task_struct");
    benchmark::DoNotOptimize(t->id());
  }
}

// The one-shot lookup from the packed archive: no mapping, the name fence
// and the stored name table (btf_find_in_archive). Checked against libbpf's
// answer once before timing.
void BM_MmarArchiveFindOneShot(benchmark::State& state) {
  const std::string& path = packed();
  struct btf* b = btf__parse((corpus() + "/vmlinux.btf").c_str(), nullptr);
  const int want = btf__find_by_name_kind(b, "task_struct", BTF_KIND_STRUCT);
  btf__free(b);
  auto first = mmar::btf_find_in_archive(path, "vmlinux", "task_struct", mmar::BtfKind::struct_);
  if (!first.ok() || static_cast<int>(first->id) != want) die("mmar: task_struct differs from libbpf's");
  for (auto _ : state) {
    auto t = mmar::btf_find_in_archive(path, "vmlinux", "task_struct", mmar::BtfKind::struct_);
    if (!t.ok()) die("mmar: no task_struct");
    benchmark::DoNotOptimize(t->id);
  }
}

// A name at the end of vmlinux: what a lookup costs when the scan is long.
void BM_LibbpfParseFindLast(benchmark::State& state) {
  const std::string path = corpus() + "/vmlinux.btf";
  for (auto _ : state) {
    struct btf* b = btf__parse(path.c_str(), nullptr);
    int id = btf__find_by_name_kind(b, "bpf_kfunc_call_test_mem_len_pass1", BTF_KIND_FUNC);
    benchmark::DoNotOptimize(id);
    btf__free(b);
  }
}

void BM_MmarOpenFindLast(benchmark::State& state) {
  const std::string path = corpus() + "/vmlinux.btf";
  for (auto _ : state) {
    auto b = mmar::Btf::open(path);
    auto t = b->find("bpf_kfunc_call_test_mem_len_pass1", mmar::BtfKind::func);
    benchmark::DoNotOptimize(t.ok());
  }
}

// libbpf's btf__find_by_name (any kind), for the same "find one name".
void BM_LibbpfAllModulesByName(benchmark::State& state) {
  const auto& mods = modules();
  const std::string base_path = corpus() + "/vmlinux.btf";
  for (auto _ : state) {
    struct btf* base = btf__parse(base_path.c_str(), nullptr);
    for (const auto& m : mods) {
      struct btf* s = btf__parse_split(m.path.c_str(), base);
      int id = btf__find_by_name(s, m.name.c_str());
      if (id <= 0) die("libbpf: no " + m.name + " in " + m.path);
      benchmark::DoNotOptimize(id);
      btf__free(s);
    }
    btf__free(base);
  }
  state.counters["modules"] = static_cast<double>(mods.size());
}

void BM_MmarAllModulesFiles(benchmark::State& state) {
  const auto& mods = modules();
  const std::string base_path = corpus() + "/vmlinux.btf";
  for (auto _ : state) {
    auto base = mmar::Btf::open(base_path);
    for (const auto& m : mods) {
      auto s = mmar::Btf::open(m.path, &*base);
      auto t = s->find(m.name);
      if (!t.ok()) die("mmar: no " + m.name + " in " + m.path);
      benchmark::DoNotOptimize(t->id());
    }
  }
  state.counters["modules"] = static_cast<double>(mods.size());
}

void BM_MmarAllModulesArchive(benchmark::State& state) {
  const auto& mods = modules();
  const std::string& path = packed();
  for (auto _ : state) {
    auto a = mmar::Archive::open(path);
    mmar::BtfSet set(std::move(a).value());
    for (const auto& m : mods) {
      auto s = set.open(m.member);
      auto t = s->find(m.name);
      if (!t.ok()) die("mmar: no " + m.name);
      benchmark::DoNotOptimize(t->id());
    }
  }
  state.counters["modules"] = static_cast<double>(mods.size());
}

struct Rss {
  long anon = 0;
};
Rss rss_now() {
  Rss r;
  FILE* f = std::fopen("/proc/self/status", "r");
  char line[256];
  while (f != nullptr && std::fgets(line, sizeof line, f) != nullptr) std::sscanf(line, "RssAnon: %ld", &r.anon);
  if (f != nullptr) std::fclose(f);
  return r;
}

// Private memory of an open vmlinux, fully indexed (type_count walks it all),
// against libbpf's parse.
void BM_OpenMemory(benchmark::State& state) {
  const std::string path = corpus() + "/vmlinux.btf";
  double mmar_kib = 0, libbpf_kib = 0, index_kib = 0;
  for (auto _ : state) {
    Rss r0 = rss_now();
    auto b = mmar::Btf::open(path);
    auto n = b->type_count();
    Rss r1 = rss_now();
    mmar_kib = static_cast<double>(r1.anon - r0.anon);
    index_kib = static_cast<double>(*n) * 4 / 1024;
    Rss r2 = rss_now();
    struct btf* lb = btf__parse(path.c_str(), nullptr);
    Rss r3 = rss_now();
    libbpf_kib = static_cast<double>(r3.anon - r2.anon);
    btf__free(lb);
  }
  state.counters["mmar_anon_kib"] = mmar_kib;
  state.counters["mmar_index_kib"] = index_kib;
  state.counters["libbpf_anon_kib"] = libbpf_kib;
}

}  // namespace

BENCHMARK(BM_LibbpfParseFind)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MmarOpenFind)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MmarFindInFile)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MmarArchiveOpenFind)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MmarArchiveFindOneShot)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_LibbpfParseFindLast)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MmarOpenFindLast)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_LibbpfAllModulesByName)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MmarAllModulesFiles)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MmarAllModulesArchive)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_OpenMemory)->Iterations(1);

BENCHMARK_MAIN();
