// SPDX-License-Identifier: BSD-2-Clause
// In-process benchmarks for the archive, each beside its peer in the same run:
//   - open + look up one member among N (10k, 100k, 1M): mmar vs libctf
//     (ctf_arc_open + ctf_dict_open) on CTF archives holding real CTF dicts;
//   - warm lookup: one open, many finds;
//   - heap and RSS cost of an open, as counters (should not grow with N);
//   - reading a large raw member through the library vs memcpy / pread of
//     the same bytes from the page cache.
// Datasets are generated once under $MMAR_BENCH_DATA (bench/run.sh sets it).
#include <benchmark/benchmark.h>
#include <ctf-api.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "mmar/archive.h"

namespace {

std::string data_dir() {
  const char* d = std::getenv("MMAR_BENCH_DATA");
  return d != nullptr ? d : "bench/out/data";
}

std::string member_name(uint32_t i) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "dir%03u/member%07u.o", i % 997, i);
  return buf;
}

bool exists(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0;
}

void die(const std::string& m) {
  std::fprintf(stderr, "archive_bench: %s\n", m.c_str());
  std::exit(1);
}

// A small real CTF dict (libctf-serialised), used as every CTF member.
std::vector<std::byte> ctf_dict_bytes() {
  int err = 0;
  ctf_dict_t* d = ctf_create(&err);
  ctf_encoding_t enc{CTF_INT_SIGNED, 0, 32};
  ctf_add_integer(d, CTF_ADD_ROOT, "int", &enc);
  ctf_update(d);
  size_t size = 0;
  unsigned char* buf = ctf_write_mem(d, &size, static_cast<size_t>(-1));
  std::vector<std::byte> out(reinterpret_cast<std::byte*>(buf), reinterpret_cast<std::byte*>(buf) + size);
  free(buf);
  ctf_dict_close(d);
  return out;
}

// mmar archive of N small members and a CTF archive of N dicts, same names.
// mmar archives come with the index as the writer stores it by default
// (compressed: the members are) or, with `plain_index`, plain (mapped and
// searched in place): the benchmarks' second argument (0 default, 1 plain).
const std::string& dataset(uint32_t n, bool ctf, bool plain_index = false) {
  static std::string paths[3][3];
  int slot = n == 10000 ? 0 : n == 100000 ? 1 : 2;
  std::string& p = paths[ctf ? 2 : plain_index ? 1 : 0][slot];
  if (!p.empty()) return p;
  p = data_dir() + "/n" + std::to_string(n) + (ctf ? ".ctfa" : plain_index ? ".plain.mmar" : ".cidx.mmar");
  if (exists(p)) return p;
  mmar::WriteOptions o;
  if (ctf) o.format = mmar::Format::ctf;
  o.index = plain_index ? mmar::IndexStorage::plain : mmar::IndexStorage::automatic;
  mmar::Writer w(o);
  auto dict = ctf_dict_bytes();
  for (uint32_t i = 0; i < n; ++i) {
    std::vector<std::byte> bytes;
    if (ctf) {
      bytes = dict;
    } else {
      std::string s = "contents of member " + std::to_string(i) + "\n";
      bytes.assign(reinterpret_cast<const std::byte*>(s.data()),
                   reinterpret_cast<const std::byte*>(s.data()) + s.size());
    }
    if (!w.add_bytes(member_name(i), std::move(bytes)).ok()) die("add");
  }
  auto r = w.write(p);
  if (!r.ok()) die(r.error().message());
  return p;
}

// ---------------------------------------------------------------------------

void mmar_open_lookup(benchmark::State& state, bool ctf_format) {
  const uint32_t n = static_cast<uint32_t>(state.range(0));
  const std::string& path = dataset(n, ctf_format, state.range(1) != 0);
  std::mt19937 rng(1);
  for (auto _ : state) {
    auto a = mmar::Archive::open(path);
    auto m = a->find(member_name(rng() % n));
    auto b = a->read(*m);
    benchmark::DoNotOptimize(b->data());
  }
}

// Open alone: the handle is destroyed (munmap, close) outside the timing.
void BM_MmarOpen(benchmark::State& state) {
  const std::string& path = dataset(static_cast<uint32_t>(state.range(0)), false, state.range(1) != 0);
  for (auto _ : state) {
    auto a = mmar::Archive::open(path);
    benchmark::DoNotOptimize(a->size());
    state.PauseTiming();
    { auto gone = std::move(a); }
    state.ResumeTiming();
  }
}

void BM_CtfOpen(benchmark::State& state) {
  const std::string& path = dataset(static_cast<uint32_t>(state.range(0)), true);
  for (auto _ : state) {
    int err = 0;
    ctf_archive_t* arc = ctf_arc_open(path.c_str(), &err);
    benchmark::DoNotOptimize(arc);
    state.PauseTiming();
    ctf_arc_close(arc);
    state.ResumeTiming();
  }
}

void BM_CtfOpenLookup(benchmark::State& state) {
  const uint32_t n = static_cast<uint32_t>(state.range(0));
  const std::string& path = dataset(n, true);
  std::mt19937 rng(1);
  for (auto _ : state) {
    int err = 0;
    ctf_archive_t* arc = ctf_arc_open(path.c_str(), &err);
    ctf_dict_t* d = ctf_dict_open(arc, member_name(rng() % n).c_str(), &err);
    if (d == nullptr) die("ctf_dict_open");
    benchmark::DoNotOptimize(d);
    ctf_dict_close(d);
    ctf_arc_close(arc);
  }
}

void BM_MmarOpenLookup(benchmark::State& state) { mmar_open_lookup(state, false); }

// mmar's own lookup on the CTF archive: the format costs the same, the
// difference is the implementation.
void BM_MmarOpenLookupCtfFormat(benchmark::State& state) { mmar_open_lookup(state, true); }

void BM_MmarLookupWarm(benchmark::State& state) {
  const uint32_t n = static_cast<uint32_t>(state.range(0));
  auto a = mmar::Archive::open(dataset(n, false, state.range(1) != 0));
  std::vector<std::string> names;
  std::mt19937 rng(2);
  for (int i = 0; i < 4096; ++i) names.push_back(member_name(rng() % n));
  size_t k = 0;
  for (auto _ : state) {
    auto m = a->find(names[k++ & 4095]);
    benchmark::DoNotOptimize(m->data_offset);
  }
}

void BM_CtfLookupWarm(benchmark::State& state) {
  const uint32_t n = static_cast<uint32_t>(state.range(0));
  int err = 0;
  ctf_archive_t* arc = ctf_arc_open(dataset(n, true).c_str(), &err);
  std::vector<std::string> names;
  std::mt19937 rng(2);
  for (int i = 0; i < 4096; ++i) names.push_back(member_name(rng() % n));
  size_t k = 0;
  for (auto _ : state) {
    ctf_dict_t* d = ctf_dict_open(arc, names[k++ & 4095].c_str(), &err);
    benchmark::DoNotOptimize(d);
    ctf_dict_close(d);
  }
  ctf_arc_close(arc);
}

// Resident anonymous (private) and file-backed (shared page cache) KiB.
struct Rss {
  long anon = 0;
  long file = 0;
};
Rss rss_now() {
  Rss r;
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return r;
  char line[256];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    std::sscanf(line, "RssAnon: %ld", &r.anon);
    std::sscanf(line, "RssFile: %ld", &r.file);
  }
  std::fclose(f);
  return r;
}

// Heap bytes and resident KiB that `open()` costs; what it returns is kept
// alive (still open) while measured, then destroyed.
template <class Open>
void open_memory(benchmark::State& state, Open open) {
  double heap = 0, anon = 0, file = 0;
  for (auto _ : state) {
    size_t h0 = mallinfo2().uordblks;
    Rss r0 = rss_now();
    auto held = open();
    benchmark::DoNotOptimize(held);
    heap = static_cast<double>(mallinfo2().uordblks) - static_cast<double>(h0);
    Rss r1 = rss_now();
    anon = static_cast<double>(r1.anon - r0.anon);
    file = static_cast<double>(r1.file - r0.file);
  }
  state.counters["heap_bytes"] = heap;
  state.counters["anon_kib"] = anon;
  state.counters["file_kib"] = file;
}

void BM_MmarOpenMemory(benchmark::State& state) {
  const uint32_t n = static_cast<uint32_t>(state.range(0));
  const std::string& path = dataset(n, false, state.range(1) != 0);
  open_memory(state, [&] {
    auto a = mmar::Archive::open(path);
    auto m = a->find(member_name(n / 2));
    benchmark::DoNotOptimize(m->size);
    return a;
  });
}

void BM_CtfOpenMemory(benchmark::State& state) {
  const uint32_t n = static_cast<uint32_t>(state.range(0));
  const std::string& path = dataset(n, true);
  struct Held {
    ctf_archive_t* arc = nullptr;
    ctf_dict_t* dict = nullptr;
    ~Held() {
      if (dict != nullptr) ctf_dict_close(dict);
      if (arc != nullptr) ctf_arc_close(arc);
    }
  };
  open_memory(state, [&] {
    auto h = std::make_unique<Held>();
    int err = 0;
    h->arc = ctf_arc_open(path.c_str(), &err);
    h->dict = ctf_dict_open(h->arc, member_name(n / 2).c_str(), &err);
    return h;
  });
}

// ---------------------------------------------------------------------------
// Read throughput of one large raw member, page cache warm.

constexpr size_t kBig = size_t{256} << 20;

const std::string& big_archive() {
  static std::string p;
  if (!p.empty()) return p;
  p = data_dir() + "/big-raw.mmar";
  std::string plain = data_dir() + "/big.bin";
  if (!exists(p)) {
    std::vector<std::byte> data(kBig);
    std::mt19937_64 rng(3);
    for (size_t i = 0; i < kBig; i += 8) {
      uint64_t v = rng();
      std::memcpy(data.data() + i, &v, 8);
    }
    int fd = ::open(plain.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ::write(fd, data.data(), kBig) != static_cast<ssize_t>(kBig)) die("write big.bin");
    ::close(fd);
    mmar::WriteOptions o;
    o.codec = mmar::Codec::none;
    mmar::Writer w(o);
    if (!w.add_path("big.bin", plain).ok() || !w.write(p).ok()) die("write big-raw.mmar");
  }
  return p;
}

void BM_ReadRawMemberViaLibrary(benchmark::State& state) {
  auto a = mmar::Archive::open(big_archive());
  std::vector<std::byte> dst(kBig);
  for (auto _ : state) {
    auto m = a->find("big.bin");
    auto b = a->read(*m);  // a view: the copy below is the read
    std::memcpy(dst.data(), b->data(), b->size());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(kBig));
}

void BM_ReadPlainFileMemcpy(benchmark::State& state) {
  big_archive();
  int fd = ::open((data_dir() + "/big.bin").c_str(), O_RDONLY);
  void* p = mmap(nullptr, kBig, PROT_READ, MAP_PRIVATE, fd, 0);
  std::vector<std::byte> dst(kBig);
  for (auto _ : state) {
    std::memcpy(dst.data(), p, kBig);
    benchmark::ClobberMemory();
  }
  munmap(p, kBig);
  ::close(fd);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(kBig));
}

void BM_ReadPlainFilePread(benchmark::State& state) {
  big_archive();
  int fd = ::open((data_dir() + "/big.bin").c_str(), O_RDONLY);
  std::vector<std::byte> dst(kBig);
  for (auto _ : state) {
    size_t done = 0;
    while (done < kBig) {
      ssize_t n = ::pread(fd, dst.data() + done, kBig - done, static_cast<off_t>(done));
      if (n <= 0) die("pread");
      done += static_cast<size_t>(n);
    }
    benchmark::ClobberMemory();
  }
  ::close(fd);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(kBig));
}

// Cold mapping: open the archive each time (page faults included).
void BM_ReadRawMemberFreshOpen(benchmark::State& state) {
  std::vector<std::byte> dst(kBig);
  for (auto _ : state) {
    auto a = mmar::Archive::open(big_archive());
    auto b = a->read("big.bin");
    std::memcpy(dst.data(), b->data(), b->size());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(kBig));
}

}  // namespace

BENCHMARK(BM_MmarOpen)->ArgsProduct({{10000, 100000, 1000000}, {0, 1}})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CtfOpen)->Arg(10000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MmarOpenLookup)->ArgsProduct({{10000, 100000, 1000000}, {0, 1}})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MmarOpenLookupCtfFormat)->ArgsProduct({{10000, 100000, 1000000}, {0}})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CtfOpenLookup)->Arg(10000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MmarLookupWarm)->ArgsProduct({{10000, 100000, 1000000}, {0, 1}})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CtfLookupWarm)->Arg(10000)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MmarOpenMemory)->ArgsProduct({{10000, 100000, 1000000}, {0, 1}})->Iterations(1);
BENCHMARK(BM_CtfOpenMemory)->Arg(10000)->Arg(100000)->Arg(1000000)->Iterations(1);
BENCHMARK(BM_ReadPlainFileMemcpy)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ReadRawMemberViaLibrary)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ReadPlainFilePread)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ReadRawMemberFreshOpen)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
