// SPDX-License-Identifier: BSD-2-Clause
// CTF dicts: the reader and the objdump --ctf dumper against binutils 2.40
// (objdump and libctf as oracles), on objects and shared objects gcc -gctf
// builds at test time, on dicts libctf rewrites (compressed), on dicts
// libctf writes through its ctf_add_* API (both byte orders, compressed, in
// archives), on dicts a test-only builder writes (both byte orders, v2
// headers, large structs, external strings), and on malformed bytes. The
// kernel-sized archives are tests/ctf/kernel_ctf_test.cpp's.
#include <ctf-api.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <thread>

#include "mmar/ctf.h"
#include "support/endian.h"
#include "support/test_support.h"

// libctf 2.40's ctf_dump and ctf_type_aname leak a few strings per call (the
// oracle's allocations, not ours; the library never calls vasprintf): keep
// LeakSanitizer on for everything else.
extern "C" const char* __lsan_default_suppressions() { return "leak:libctf.so\nleak:__vasprintf_internal\n"; }

namespace mmar {
namespace {

void spit(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

Bytes bytes_of(const std::string& s) {
  std::vector<std::byte> v(s.size());
  std::memcpy(v.data(), s.data(), s.size());
  return Bytes::from_vector(std::move(v));
}

// What objdump prints from "Contents of CTF section" on.
std::string objdump_ctf(const std::string& path) {
  std::string out;
  EXPECT_EQ(test::run("objdump --ctf=.ctf '" + path + "' 2>/dev/null", &out), 0) << path;
  const size_t at = out.find("Contents of CTF section");
  return at == std::string::npos ? std::string() : out.substr(at);
}

std::string our_dump(const std::string& path) {
  auto f = ctf_open_file(path);
  EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message());
  if (!f.ok()) return {};
  std::string out;
  auto r = ctf_dump(*f, out);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  return out;
}

// libctf's own dump of one dict, decorated as objdump decorates it.
char* indent_line(ctf_sect_names_t, char* line, void*) {
  char* s = nullptr;
  if (asprintf(&s, "    %s", line) < 0) return line;
  return s;
}
std::string libctf_dump(ctf_dict_t* fp) {
  static const char* const kThings[] = {"Header",    "Labels", "Data objects", "Function objects",
                                        "Variables", "Types",  "Strings"};
  std::string out;
  for (int i = 0; i < 7; ++i) {
    out += std::string("\n  ") + kThings[i] + ":\n";
    ctf_dump_state_t* s = nullptr;
    while (char* item = ctf_dump(fp, &s, static_cast<ctf_sect_names_t>(i), indent_line, nullptr)) {
      out += item;
      out += '\n';
      free(item);
    }
  }
  return out;
}

ctf_dict_t* libctf_open_raw(const std::string& bytes) {
  int err = 0;
  ctf_dict_t* fp = ctf_simple_open(bytes.data(), bytes.size(), nullptr, 0, 0, nullptr, 0, &err);
  EXPECT_NE(fp, nullptr) << ctf_errmsg(err);
  return fp;
}

// Open options that run the full check at open, as libctf's open does.
CtfOpenOptions validating(CtfOpenOptions o = {}) {
  o.validate = true;
  return o;
}

std::string our_dict_dump(const std::string& bytes, std::string* error = nullptr) {
  auto d = CtfDict::open(bytes_of(bytes), "dict", validating());
  if (!d.ok()) {
    if (error) *error = d.error().message();
    return "(open failed: " + d.error().message() + ")";
  }
  std::string out;
  auto r = ctf_dump_dict(*d, out);
  if (!r.ok()) return "(dump failed: " + r.error().message() + ")";
  return out;
}

// Every type of `d` has the name, size, alignment and kind libctf gives the
// same type in `fp` (ctf_type_aname, ctf_type_size, ctf_type_align,
// ctf_type_kind); returns how many types were compared.
uint32_t expect_types_equal(const CtfDict& d, ctf_dict_t* fp, const std::string& what) {
  uint32_t checked = 0;
  for (uint32_t index = 1; index <= d.type_count(); ++index) {
    const uint32_t id = d.id_of_index(index);
    char* name = ctf_type_aname(fp, id);
    auto ours = d.type_name(id);
    EXPECT_EQ(name != nullptr, ours.ok()) << what << " " << id;
    if (name != nullptr && ours.ok()) {
      EXPECT_EQ(*ours, name) << what << " " << id;
    }
    free(name);
    EXPECT_EQ(d.type_size(id).ok() ? *d.type_size(id) : -1, ctf_type_size(fp, id)) << what << " " << id;
    EXPECT_EQ(d.type_align(id).ok() ? *d.type_align(id) : -1, ctf_type_align(fp, id)) << what << " " << id;
    EXPECT_EQ(d.type_kind(id).ok() ? static_cast<int>(*d.type_kind(id)) : -1, ctf_type_kind(fp, id))
        << what << " " << id;
    ++checked;
  }
  return checked;
}

// ---------------------------------------------------------------------------
// A test-only dict builder: types as words, strings deduplicated, every
// header field overridable, either byte order, optional compression.

struct DictBuilder {
  std::string strtab = std::string(1, '\0');
  std::vector<uint32_t> types, vars, labels, objts, funcs;
  std::vector<uint32_t> objt_names, func_names;  // index sections (names of objts/funcs), when not empty
  uint32_t count = 0;
  uint8_t version = 4;
  uint8_t flags = 0x2;  // CTF_F_NEWFUNCINFO
  uint32_t parname = 0, cuname = 0;
  bool child = false;

  uint32_t str(std::string_view s) {
    if (s.empty()) return 0;
    std::string needle(s);
    needle.push_back('\0');
    for (size_t at = 1; (at = strtab.find(needle, at)) != std::string::npos; ++at) {
      if (strtab[at - 1] == '\0') return static_cast<uint32_t>(at);
    }
    const uint32_t off = static_cast<uint32_t>(strtab.size());
    strtab += needle;
    return off;
  }
  uint32_t id(uint32_t index) const { return child ? (index | 0x80000000u) : index; }
  static uint32_t info(uint32_t kind, bool root, uint32_t vlen) { return kind << 26 | (root ? 1u : 0u) << 25 | vlen; }
  std::vector<size_t> pair_words;  // words holding two u16 (slices): swapped per half
  uint32_t slice(uint32_t type, uint16_t offset, uint16_t bits) {
    const uint32_t id_ = add(0, 14, 0, 1, {type, 0});
    types.back() = uint32_t{bits} << 16 | offset;  // as little-endian memory: offset first
    pair_words.push_back(types.size() - 1);
    return id_;
  }
  uint32_t add(uint32_t name, uint32_t kind, uint32_t vlen, uint32_t size_or_type, std::vector<uint32_t> extra = {},
               bool root = true) {
    types.insert(types.end(), {name, info(kind, root, vlen), size_or_type});
    types.insert(types.end(), extra.begin(), extra.end());
    return id(++count);
  }
  uint32_t integer(std::string_view name, uint32_t bytes, uint32_t enc = 1) {
    return add(str(name), 1, 0, bytes, {enc << 24 | bytes * 8});
  }
  uint32_t pointer(uint32_t to) { return add(0, 3, 0, to); }
  uint32_t typedef_(std::string_view name, uint32_t to) { return add(str(name), 10, 0, to); }
  uint32_t array(uint32_t elem, uint32_t index, uint32_t n) { return add(0, 4, 0, 0, {elem, index, n}); }
  uint32_t function(uint32_t ret, std::vector<uint32_t> args) {
    const uint32_t n = static_cast<uint32_t>(args.size());
    if (n & 1) args.push_back(0);
    return add(0, 5, n, ret, args);
  }
  struct M {
    std::string name;
    uint32_t type;
    uint64_t bit_offset;
  };
  uint32_t record(uint32_t kind, std::string_view name, uint64_t size, const std::vector<M>& members) {
    std::vector<uint32_t> extra;
    uint32_t stored = static_cast<uint32_t>(size);
    if (size > 0xfffffffeull) {
      stored = 0xffffffffu;
      extra = {static_cast<uint32_t>(size >> 32), static_cast<uint32_t>(size)};
    }
    for (const auto& m : members) {
      if (size >= 536870912) {
        extra.insert(extra.end(), {str(m.name), static_cast<uint32_t>(m.bit_offset >> 32), m.type,
                                   static_cast<uint32_t>(m.bit_offset)});
      } else {
        extra.insert(extra.end(), {str(m.name), static_cast<uint32_t>(m.bit_offset), m.type});
      }
    }
    return add(str(name), kind, static_cast<uint32_t>(members.size()), stored, extra);
  }
  uint32_t enumeration(std::string_view name, const std::vector<std::pair<std::string, int32_t>>& values) {
    std::vector<uint32_t> extra;
    for (const auto& [n, v] : values) extra.insert(extra.end(), {str(n), static_cast<uint32_t>(v)});
    return add(str(name), 8, static_cast<uint32_t>(values.size()), 4, extra);
  }
  void var(std::string_view name, uint32_t type) { vars.insert(vars.end(), {str(name), type}); }

  // Header field overrides (by v3 field index 0..11), applied last.
  std::map<int, uint32_t> override_field;

  std::string build(bool little = true, bool compress = false) {
    auto w32 = [&](std::string& out, uint32_t v) {
      if (!little) v = __builtin_bswap32(v);
      out.append(reinterpret_cast<const char*>(&v), 4);
    };
    std::string body;
    uint32_t lbloff = 0;
    for (uint32_t v : labels) w32(body, v);
    const uint32_t objtoff = static_cast<uint32_t>(body.size());
    for (uint32_t v : objts) w32(body, v);
    const uint32_t funcoff = static_cast<uint32_t>(body.size());
    for (uint32_t v : funcs) w32(body, v);
    const uint32_t idxoff = static_cast<uint32_t>(body.size());
    for (uint32_t v : objt_names) w32(body, v);
    const uint32_t funcidxoff = static_cast<uint32_t>(body.size());
    for (uint32_t v : func_names) w32(body, v);
    const uint32_t varoff = static_cast<uint32_t>(body.size());
    for (uint32_t v : vars) w32(body, v);
    const uint32_t typeoff = static_cast<uint32_t>(body.size());
    for (size_t k = 0; k < types.size(); ++k) {
      const bool pair = std::find(pair_words.begin(), pair_words.end(), k) != pair_words.end();
      w32(body, pair && !little ? (types[k] << 16 | types[k] >> 16) : types[k]);
    }
    const uint32_t stroff = static_cast<uint32_t>(body.size());
    body += strtab;
    uint32_t fields[12] = {0,      parname,    cuname, lbloff,  objtoff, funcoff,
                           idxoff, funcidxoff, varoff, typeoff, stroff,  static_cast<uint32_t>(strtab.size())};
    for (const auto& [i, v] : override_field) fields[i] = v;
    std::string out;
    const uint16_t magic = little ? 0xdff2 : 0xf2df;
    out.append(reinterpret_cast<const char*>(&magic), 2);
    out.push_back(static_cast<char>(version));
    out.push_back(static_cast<char>(flags | (compress ? 1 : 0)));
    if (version == 4) {
      for (uint32_t f : fields) w32(out, f);
    } else {  // v2: no CU name, no index sections
      for (int i : {0, 1, 3, 4, 5, 8, 9, 10, 11}) w32(out, fields[i]);
    }
    if (compress) {
      uLongf len = compressBound(body.size());
      std::string z(len, '\0');
      EXPECT_EQ(::compress(reinterpret_cast<Bytef*>(z.data()), &len, reinterpret_cast<const Bytef*>(body.data()),
                           body.size()),
                Z_OK);
      z.resize(len);
      body = z;
    }
    return out + body;
  }
};

// A builder dict with every kind: the one the good-input tests share.
DictBuilder every_kind() {
  DictBuilder b;
  const uint32_t i = b.integer("int", 4);
  const uint32_t c = b.integer("char", 1, 3);
  const uint32_t l = b.integer("long int", 8);
  const uint32_t f = b.add(b.str("float"), 2, 0, 4, {1u << 24 | 32});
  const uint32_t pc = b.pointer(c);
  const uint32_t td = b.typedef_("myint", i);
  const uint32_t cv = b.add(0, 12, 0, td);
  const uint32_t vol = b.add(0, 11, 0, cv);
  const uint32_t rs = b.add(0, 13, 0, pc);
  const uint32_t arr = b.array(i, l, 7);
  const uint32_t fn = b.function(i, {pc, l, 0});
  const uint32_t fwd = b.add(b.str("later"), 9, 0, 6);
  const uint32_t sl = b.slice(i, 3, 5);
  const uint32_t en = b.enumeration("colour", {{"RED", 0}, {"GREEN", 1}, {"BLUE", -7}});
  const uint32_t un = b.record(7, "u", 8, {{"a", i, 0}, {"b", f, 0}, {"p", pc, 0}});
  const uint32_t st =
      b.record(6, "s", 64,
               {{"x", i, 0}, {"y", sl, 32}, {"z", arr, 64}, {"", un, 320}, {"e", en, 384}, {"fp", b.pointer(fn), 448}});
  b.add(b.str("odd"), 0, 0, 0);  // CTF_K_UNKNOWN
  // A struct over CTF_LSTRUCT_THRESH: large members; and one over 4 GiB:
  // the large size form.
  b.record(6, "big", 0x30000010, {{"head", i, 0}, {"tail", l, 0x30000008ull * 8}});
  b.record(6, "huge", 0x100000010ull, {{"first", c, 0}, {"last", i, 0x100000008ull * 8}});
  b.pointer(fwd);
  b.add(0, 3, 0, vol);
  b.add(0, 3, 0, rs);
  // Indexed data-object and function sections (a zero entry and a pad
  // skipped).
  b.objts = {i, 0, en, 0xffffffffu};
  b.objt_names = {b.str("an_int"), b.str("zero"), b.str("colours"), b.str("pad")};
  b.funcs = {fn};
  b.func_names = {b.str("main_fn")};
  b.var("an_int", i);
  b.var("colours", en);
  b.var("thing", st);
  b.var("typed", td);
  b.cuname = b.str("builder.c");
  return b;
}

// ---------------------------------------------------------------------------
// The gcc corpus, built once per test binary.

const char* const kStress = R"(
#include <stddef.h>
#include <stdint.h>
struct bits { unsigned a:1, b:3, :0, c:7; signed d:5; _Bool e:1; uint64_t f:40; int g; };
struct md { int m[2][3][4]; char *names[8][2]; struct bits b[3]; };
typedef int (*cmp_fn)(const void *, const void *);
typedef void (*handler)(int, void (*)(int), ...);
struct fps { cmp_fn cmp; handler h; int (*(*table)[4])(char); void (*arr[3])(void); };
struct anon { union { int i; float f; struct { short lo, hi; }; }; struct { char tag; union { long l; double d; } v; } inner; };
struct fwd_only; union fwd_u; enum fwd_e;
struct uses_fwd { struct fwd_only *p; union fwd_u *u; enum fwd_e *e; };
enum big_enum { B0, B1, B2, B3, B4, B5, B6, B7, B8, B9, B10, B11, B12, B13, B14, B15, BMAX = 0x7fffffff, BMIN = -0x7fffffff };
enum tiny { T0 };
struct large { char a[100000]; int tail[1000]; struct md m[10]; };
typedef struct large large_t;
typedef const volatile large_t *cvl_ptr;
union un { struct bits b; struct md m; large_t *l; };
struct self { struct self *next, *prev; struct self **pp; };
typedef int arr_t[5];
arr_t *parr;
const arr_t carr;
struct flex { int n; char data[]; };
struct bits gbits; struct md gmd; struct fps gfps; struct anon ganon; struct uses_fwd guf;
enum big_enum gbe; enum tiny gt; struct large gl; cvl_ptr gcvl; union un gun; struct self gself;
struct flex *gflex; _Complex float gcf; long double gld; __int128 g128; unsigned __int128 gu128;
volatile int *restrict gvr;
int f_bits(struct bits b, ...) { return b.a; }
static int f_static(int x) { return x; }
int (*pf_static)(int) = f_static;
void f_void(void) {}
char **f_ptr(const char *const *p, size_t n) { (void)n; return (char **)p; }
)";

class CtfCorpus : public ::testing::Test {
 protected:
  // The corpus lives in the build tree and is built once per test binary:
  // ctest runs each test in its own process, so the first process builds it
  // (under a lock: ctest -j runs several) and stamps it with the binary's
  // identity; the others, and later runs of the same binary, reuse it.
  static void SetUpTestSuite() {
    std::string out;
    if (test::run("gcc -gctf -x c -c -o /dev/null - </dev/null 2>&1", &out) != 0) {
      skip_reason = new std::string("gcc has no -gctf: " + out);
      return;
    }
    corpus = new std::string(MMAR_CTF_CORPUS_DIR);
    std::filesystem::create_directories(*corpus);
    const int lock = ::open((*corpus + "/.lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    ASSERT_GE(lock, 0);
    ASSERT_EQ(flock(lock, LOCK_EX), 0);
    struct stat self {};
    ASSERT_EQ(stat("/proc/self/exe", &self), 0);
    const std::string key = std::to_string(self.st_size) + ":" + std::to_string(self.st_mtim.tv_sec) + "." +
                            std::to_string(self.st_mtim.tv_nsec);
    std::ifstream stamp(*corpus + "/stamp");
    std::string line;
    if (std::getline(stamp, line) && line == key) {
      while (std::getline(stamp, line)) files->push_back(line);
    } else {
      std::filesystem::remove(*corpus + "/stamp");
      build_corpus(*corpus);
      if (build_error->empty()) {
        std::ofstream out_stamp(*corpus + "/stamp");
        out_stamp << key << "\n";
        for (const auto& f : *files) out_stamp << f << "\n";
      }
    }
    flock(lock, LOCK_UN);
    ::close(lock);
  }

  static void build_corpus(const std::string& d) {
    spit(d + "/sys.c", R"(#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <pthread.h>
#include <time.h>
#include <math.h>
#include <complex.h>
#include <wchar.h>
#include <locale.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/ioctl.h>
#include <sys/user.h>
#include <sys/ucontext.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <termios.h>
#include <regex.h>
#include <glob.h>
#include <elf.h>
#include <link.h>
#include <linux/perf_event.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/input.h>
#include <linux/fs.h>
int sys_main(void) { return 0; }
FILE *sys_file; struct stat sys_st; pthread_mutex_t sys_mu; struct sockaddr_in6 sys_sa;
)");
    spit(d + "/stress.c", kStress);
    spit(d + "/a.c",
         "struct s { int x; long y; };\nstruct s sa; int ia = 3;\nstatic int sta = 5;\n"
         "int fa(struct s *p) { return p->x + sta; }\nstruct only_a { char c; } oa;\n");
    spit(d + "/b.c",
         "struct s { int x; char y; };\nunion u { int a; float b; };\nunion u ub; double db[4];\n"
         "int fb(union u *p, ...) { return p->a; }\nint ia2;\n");
    const std::string cc = "cd '" + d + "' && gcc -gctf -fno-eliminate-unused-debug-types ";
    const std::vector<std::pair<std::string, std::string>> builds = {
        {"sys.o", "-c sys.c -o sys.o"},
        {"stress.o", "-c stress.c -o stress.o"},
        {"a.o", "-c a.c -o a.o"},
        {"stress32.o", "-m32 -c stress.c -o stress32.o"},
        {"multi.so", "-fPIC -shared a.c b.c stress.c -o multi.so"},
        {"shared.so", "-fPIC -shared -Wl,--ctf-share-types=share-duplicated a.c b.c stress.c sys.c -o shared.so"},
        {"exe", "a.c b.c stress.c -Dsys_main=main sys.c -o exe"},
        {"b.o", "-c b.c -o b.o"},
        // Relocatable links: one merged dict, and (sharing duplicated types)
        // an archive whose dicts libctf writes compressed when large.
        {"relocatable.o", "ld -r a.o b.o stress.o -o relocatable.o"},
        {"relocatable_shared.o",
         "ld -r --ctf-share-types=share-duplicated a.o b.o stress.o sys.o -o relocatable_shared.o"},
    };
    // Many CUs, one header each (glibc's and the kernel's views of the same
    // types disagree across CUs): a CTF archive of many children.
    std::string cus;
    int n = 0;
    for (const char* h : {"linux/types.h",   "linux/if.h",        "sys/socket.h",    "netinet/in.h",
                          "linux/tcp.h",     "linux/ip.h",        "linux/ipv6.h",    "linux/if_ether.h",
                          "linux/netlink.h", "linux/rtnetlink.h", "linux/ethtool.h", "linux/perf_event.h",
                          "linux/bpf.h",     "linux/input.h",     "linux/fs.h",      "linux/stat.h",
                          "linux/time.h",    "sys/stat.h",        "stdio.h",         "signal.h",
                          "linux/signal.h",  "sys/time.h",        "time.h",          "linux/sched.h",
                          "sched.h",         "linux/fcntl.h",     "fcntl.h"}) {
      const std::string c = d + "/cu" + std::to_string(n) + ".c";
      spit(c, std::string("#include <") + h + ">\nint cu" + std::to_string(n) + "(void) { return " + std::to_string(n) +
                  "; }\n");
      std::string cu_log;
      if (test::run(cc + "-fPIC -c " + c + " -o " + c + ".o 2>&1", &cu_log) == 0) cus += " " + c + ".o";
      ++n;
    }
    std::string link_log;
    if (test::run(cc + "-shared -Wl,--ctf-share-types=share-duplicated" + cus + " -o many_cus.so 2>&1", &link_log) ==
            0 &&
        test::run(cc + "-shared" + cus + " -o many_cus_unshared.so 2>&1", &link_log) == 0) {
      files->push_back(d + "/many_cus.so");
      files->push_back(d + "/many_cus_unshared.so");
    } else {
      *build_error += "many_cus: " + link_log;
    }
    for (const auto& [name, args] : builds) {
      std::string log;
      const std::string cmd = args.rfind("ld ", 0) == 0 ? "cd '" + d + "' && " + args : cc + args;
      if (test::run(cmd + " 2>&1", &log) == 0) {
        files->push_back(d + "/" + name);
      } else if (name != "stress32.o") {  // -m32 needs multilib, optional
        *build_error += name + ": " + log;
      }
    }
  }
  void SetUp() override {
    if (skip_reason) GTEST_SKIP() << *skip_reason;
    ASSERT_TRUE(build_error->empty()) << *build_error;
  }
  static const std::string& dir() { return *corpus; }
  static std::string* corpus;
  static std::string* skip_reason;
  static std::vector<std::string>* files;
  static std::string* build_error;
};
std::string* CtfCorpus::corpus = nullptr;
std::string* CtfCorpus::skip_reason = nullptr;
std::vector<std::string>* CtfCorpus::files = new std::vector<std::string>;
std::string* CtfCorpus::build_error = new std::string;

TEST_F(CtfCorpus, DumpEqualsObjdump) {
  ASSERT_GE(files->size(), 10u);
  for (const auto& f : *files) {
    const std::string want = objdump_ctf(f);
    ASSERT_FALSE(want.empty()) << f;
    const std::string got = our_dump(f);
    EXPECT_EQ(got, want) << f;
    if (got != want) {
      spit(f + ".want", want);
      spit(f + ".got", got);
    }
  }
}

// The streamed dump (to a TextSink, as `mmar ctf dump` writes) is the
// in-memory one in chunks of about 256 KiB, and a sink's error stops it.
TEST_F(CtfCorpus, StreamedDumpEqualsTheStringOne) {
  const std::string f = *corpus + "/many_cus.so";
  auto file = ctf_open_file(f);
  ASSERT_TRUE(file.ok()) << file.error().message();
  std::string whole;
  ASSERT_TRUE(ctf_dump(*file, whole).ok());
  ASSERT_GT(whole.size(), size_t{600} << 10);  // several chunks
  std::string streamed;
  size_t calls = 0, largest = 0;
  const TextSink sink = [&](std::string_view chunk) -> Result<void> {
    ++calls;
    largest = std::max(largest, chunk.size());
    streamed.append(chunk);
    return success();
  };
  ASSERT_TRUE(ctf_dump(*file, sink).ok());
  EXPECT_EQ(streamed, whole);
  EXPECT_GE(calls, 2u);
  EXPECT_LE(largest, size_t{320} << 10);  // a chunk, not the whole text

  size_t after_error = 0;
  const TextSink failing = [&](std::string_view) -> Result<void> {
    ++after_error;
    return Error(Errc::io, "sink full");
  };
  auto r = ctf_dump(*file, failing);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("sink full"), std::string::npos);
  EXPECT_EQ(after_error, 1u);  // nothing more is handed to a failed sink
}

TEST_F(CtfCorpus, LinkedArchivesHaveParentAndChildren) {
  auto f = ctf_open_file(dir() + "/shared.so");
  ASSERT_TRUE(f.ok()) << f.error().message();
  ASSERT_GE(f->dicts.size(), 3u);
  EXPECT_EQ(f->dicts[0].name, ".ctf");
  EXPECT_FALSE(f->dicts[0].dict.is_child());
  for (size_t i = 1; i < f->dicts.size(); ++i) {
    const CtfDict& d = f->dicts[i].dict;
    EXPECT_TRUE(d.is_child()) << f->dicts[i].name;
    EXPECT_EQ(d.parent_name(), ".ctf");
    EXPECT_EQ(d.first_id(), 0x80000001u);
    ASSERT_TRUE(d.parent().has_value());
  }
  // --ctf-parent: the default named, and a name no member has (objdump
  // refuses the file).
  CtfFileOptions o;
  o.parent_member = ".ctf";
  std::string a, b;
  ASSERT_TRUE(ctf_dump(*ctf_open_file(dir() + "/shared.so", o), a).ok());
  ASSERT_TRUE(ctf_dump(*f, b).ok());
  EXPECT_EQ(a, b);
  o.parent_member = "nonexistent";
  auto missing = ctf_open_file(dir() + "/shared.so", o);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), Errc::not_found);
  // A child's "struct s" is its own (the CUs disagree), "int" the parent's.
  bool saw_child_s = false;
  for (const auto& e : f->dicts) {
    if (e.name.find("a.c") == std::string::npos) continue;
    auto s = e.dict.find("struct s");
    ASSERT_TRUE(s.ok()) << s.error().message();
    EXPECT_GT(*s, 0x80000000u);
    EXPECT_EQ(*e.dict.type_size(*s), 16);
    auto i = e.dict.find("int");
    ASSERT_TRUE(i.ok());
    EXPECT_LT(*i, 0x80000000u);
    saw_child_s = true;
  }
  EXPECT_TRUE(saw_child_s);
}

// Typed iteration (CtfArchive) against libctf's ctf_archive_next: the same
// dicts in the same order, each with libctf's type count, and every child
// with its parent imported (a parent type's size through the child equals
// libctf's). Over the ELF files themselves, and over an mmar archive holding
// them (dicts named MEMBER or MEMBER:DICT), and over an mmar archive of the
// raw dicts extracted from a libctf archive (children find their parent by
// its name among the members).
TEST_F(CtfCorpus, TypedIterationEqualsLibctf) {
  const std::string work = dir() + "/iter";
  std::filesystem::create_directories(work + "/tree");
  std::vector<std::string> elves;
  for (const auto& path : *files) {
    const std::string base = std::filesystem::path(path).filename();
    if (base == "stress32.o") continue;  // optional (multilib)
    std::filesystem::copy_file(path, work + "/tree/" + base, std::filesystem::copy_options::overwrite_existing);
    elves.push_back(base);
  }
  std::string log;
  ASSERT_EQ(test::run(std::string(MMAR_BIN) + " create -f '" + work + "/elves.mmar' -C '" + work + "/tree' . 2>&1", &log),
            0)
      << log;
  auto in_mmar = CtfArchive::open(work + "/elves.mmar");
  ASSERT_TRUE(in_mmar.ok()) << in_mmar.error().message();
  auto mmar_names = in_mmar->names();
  ASSERT_TRUE(mmar_names.ok()) << mmar_names.error().message();
  size_t dicts_seen = 0;
  for (const auto& base : elves) {
    const std::string path = work + "/tree/" + base;
    auto ours = CtfArchive::open(path);
    ASSERT_TRUE(ours.ok()) << ours.error().message();
    int err = 0;
    ctf_archive_t* arc = ctf_open(path.c_str(), nullptr, &err);
    ASSERT_NE(arc, nullptr) << ctf_errmsg(err);
    std::vector<std::string> theirs;
    ctf_next_t* it = nullptr;
    const char* member = nullptr;
    while (ctf_dict_t* fp = ctf_archive_next(arc, &it, &member, 0, &err)) {
      theirs.push_back(member);
      uint32_t count = 0;
      ctf_type_iter_all(
          fp,
          [](ctf_id_t, int, void* n) {
            ++*static_cast<uint32_t*>(n);
            return 0;
          },
          &count);
      // The same dict through the file, and through the mmar archive.
      const bool lone = ctf_archive_count(arc) == 1 && std::string(member) == ".ctf";
      for (const auto& [a, name] :
           {std::pair<const CtfArchive*, std::string>{&*ours, member},
            {&*in_mmar, lone ? base : base + ":" + member}}) {
        auto d = a->dict(name);
        ASSERT_TRUE(d.ok()) << path << " " << name << ": " << d.error().message();
        EXPECT_EQ(d->type_count(), count) << path << " " << name;
        EXPECT_EQ(d->is_child(), ctf_parent_name(fp) != nullptr) << name;
        if (d->is_child()) {
          ASSERT_TRUE(d->parent().has_value()) << name;
          auto i = d->find("int");
          ASSERT_TRUE(i.ok()) << name;
          EXPECT_EQ(*d->type_size(*i), ctf_type_size(fp, *i)) << name;
        }
        EXPECT_TRUE(d->validate().ok()) << name;
      }
      ++dicts_seen;
      ctf_dict_close(fp);
    }
    ctf_close(arc);
    auto names = ours->names();
    ASSERT_TRUE(names.ok());
    EXPECT_EQ(*names, theirs) << path;
    std::vector<std::string> visited;
    ASSERT_TRUE(ours->for_each([&](std::string_view n, const CtfDict&) -> Result<void> {
                      visited.emplace_back(n);
                      return success();
                    })
                    .ok());
    EXPECT_EQ(visited, theirs) << path;
    for (const auto& n : theirs) {
      const bool lone = theirs.size() == 1 && n == ".ctf";
      EXPECT_NE(std::find(mmar_names->begin(), mmar_names->end(), lone ? base : base + ":" + n), mmar_names->end())
          << base << " " << n;
    }
  }
  EXPECT_GT(dicts_seen, 10u);

  // The raw dicts of a libctf archive (the .ctf section of shared.so, written
  // out by objcopy) as members of an mmar archive: every child imports the
  // member named by its parent name.
  ASSERT_EQ(test::run("cd '" + work + "' && objcopy --dump-section .ctf=shared.ctfa tree/shared.so shared.tmp 2>&1", &log),
            0)
      << log;
  std::filesystem::create_directories(work + "/raw");
  ASSERT_EQ(test::run(std::string(MMAR_BIN) + " extract -C '" + work + "/raw' '" + work + "/shared.ctfa' 2>&1", &log), 0)
      << log;
  ASSERT_EQ(test::run(std::string(MMAR_BIN) + " create -f '" + work + "/raw.mmar' -C '" + work + "/raw' . 2>&1", &log), 0)
      << log;
  auto ctfa = CtfArchive::open(work + "/shared.ctfa");
  auto raw = CtfArchive::open(work + "/raw.mmar");
  ASSERT_TRUE(ctfa.ok() && raw.ok());
  auto ctfa_names = ctfa->names();
  auto raw_names = raw->names();
  ASSERT_TRUE(ctfa_names.ok() && raw_names.ok());
  // extract strips the leading '/' of ld's absolute CU names.
  auto stripped = [](std::string n) { return n.empty() || n[0] != '/' ? n : n.substr(1); };
  std::vector<std::string> sorted;
  for (const auto& n : *ctfa_names) sorted.push_back(stripped(n));
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(*raw_names, sorted);  // an mmar archive's members are in name order
  // ld's dicts name strings in the object's ELF string table, which the raw
  // dicts left behind: compare what needs no strings (validating them, or
  // dumping, would fail here as in libctf).
  size_t children = 0;
  for (const auto& n : *ctfa_names) {
    auto a = ctfa->dict(n);
    auto b = raw->dict(stripped(n));
    ASSERT_TRUE(a.ok()) << n << ": " << a.error().message();
    ASSERT_TRUE(b.ok()) << n << ": " << b.error().message();
    EXPECT_EQ(a->type_count(), b->type_count()) << n;
    EXPECT_EQ(a->is_child(), b->is_child()) << n;
    if (b->is_child()) {
      ASSERT_TRUE(b->parent().has_value()) << n;
      EXPECT_EQ(b->parent()->type_count(), (*ctfa->dict(".ctf")).type_count());
      ++children;
    }
  }
  EXPECT_GE(children, 2u);
  // A child whose parent is not in the archive: an error naming both.
  std::filesystem::remove(work + "/raw/.ctf");
  ASSERT_EQ(test::run(std::string(MMAR_BIN) + " create -f '" + work + "/orphans.mmar' -C '" + work + "/raw' . 2>&1", &log),
            0)
      << log;
  auto orphans = CtfArchive::open(work + "/orphans.mmar");
  ASSERT_TRUE(orphans.ok());
  auto first = orphans->names();
  ASSERT_TRUE(first.ok() && !first->empty());
  auto orphan = orphans->dict(first->front());
  ASSERT_FALSE(orphan.ok());
  EXPECT_NE(orphan.error().message().find("its parent dict '.ctf' is not in the archive"), std::string::npos)
      << orphan.error().message();
  EXPECT_FALSE(orphans->for_each([](std::string_view, const CtfDict&) { return success(); }).ok());
  EXPECT_EQ(orphans->dict("no such dict").error().code(), Errc::not_found);

  // The command: ARCHIVE:MEMBER dumps one dict with its parent imported,
  // as objdump prints that member of the archive (here a dict of the .ctf
  // of an ELF member, whose string table comes with it).
  std::string whole, one;
  ASSERT_EQ(test::run(std::string(MMAR_BIN) + " ctf dump '" + work + "/tree/shared.so'", &whole), 0);
  const std::string child = (*ctfa_names)[1];
  ASSERT_EQ(test::run(std::string(MMAR_BIN) + " ctf dump '" + work + "/elves.mmar:shared.so:" + child + "'", &one), 0);
  const std::string section = "CTF archive member: " + child + ":\n";
  const size_t at = whole.find(section);
  ASSERT_NE(at, std::string::npos);
  const size_t end = whole.find("\nCTF archive member: ", at + section.size());
  EXPECT_EQ("Contents of CTF section .ctf:\n" + whole.substr(at + section.size(), end == std::string::npos
                                                                                      ? std::string::npos
                                                                                      : end - at - section.size()),
            one);
}

// Lazy open: the header only. A dict whose later records are damaged opens,
// finds a type before the damage (the scan stops there), and reports the
// damage as an error on any access past it and from validate().
TEST(CtfBuilt, LazyOpenReadsOnlyWhatIsAsked) {
  DictBuilder b;
  const uint32_t i = b.integer("int", 4);
  b.record(6, "early", 4, {{"a", i, 0}});
  b.record(6, "late", 4, {{"b", i, 0}});
  b.types[b.types.size() - 5] = DictBuilder::info(6, true, 1000);  // late's vlen runs past the section
  const std::string bytes = b.build();
  auto d = CtfDict::open(bytes_of(bytes), "lazy.ctf");
  ASSERT_TRUE(d.ok()) << d.error().message();
  auto early = d->find("struct early");
  ASSERT_TRUE(early.ok()) << early.error().message();
  EXPECT_EQ(*early, 2u);
  auto late = d->find("struct late");
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code(), Errc::malformed);
  EXPECT_NE(late.error().message().find("lazy.ctf: type 0x3: vlen 1000 runs past the type section"), std::string::npos)
      << late.error().message();
  auto t = d->type(1);
  ASSERT_FALSE(t.ok());  // the offset index needs every record
  EXPECT_EQ(t.error().message(), late.error().message());
  auto v = d->validate();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().message(), late.error().message());
  std::string out;
  EXPECT_FALSE(ctf_dump_dict(*d, out).ok());
  // Validating at open refuses it, as libctf does.
  EXPECT_FALSE(CtfDict::open(bytes_of(bytes), "lazy.ctf", validating()).ok());
  // Many lookups switch to the name index, with the same answers.
  DictBuilder g;
  const uint32_t gi = g.integer("int", 4);
  const uint32_t fwd = g.add(g.str("s"), 9, 0, 6);  // struct s; (a forward, before the definition)
  const uint32_t def = g.record(6, "s", 4, {{"x", gi, 0}});
  g.typedef_("s", gi);
  const std::string gb = g.build();
  auto gd = CtfDict::open(bytes_of(gb), "good.ctf");
  ASSERT_TRUE(gd.ok());
  EXPECT_EQ(fwd, 2u);
  for (int k = 0; k < 12; ++k) {
    EXPECT_EQ(*gd->find("struct s"), def) << k;  // the definition, not the forward before it
    EXPECT_EQ(*gd->find("s"), def + 1) << k;     // the typedef
    EXPECT_EQ(*gd->find("int"), gi) << k;
    EXPECT_EQ(gd->find("struct nope").error().code(), Errc::not_found) << k;
    EXPECT_EQ(gd->find("").error().code(), Errc::not_found) << k;
  }
}

// Every type of every dict: name, size, alignment and kind as libctf
// computes them (ctf_type_aname, ctf_type_size, ctf_type_align,
// ctf_type_kind), and lookups by name as ctf_lookup_by_name finds them.
TEST_F(CtfCorpus, TypesEqualLibctf) {
  for (const auto& path : *files) {
    auto ours = ctf_open_file(path);
    ASSERT_TRUE(ours.ok()) << ours.error().message();
    int err = 0;
    ctf_archive_t* arc = ctf_open(path.c_str(), nullptr, &err);
    ASSERT_NE(arc, nullptr) << ctf_errmsg(err);
    ctf_next_t* it = nullptr;
    const char* member = nullptr;
    size_t checked = 0, looked_up = 0;
    while (ctf_dict_t* fp = ctf_archive_next(arc, &it, &member, 0, &err)) {
      const CtfDict* d = nullptr;
      for (const auto& e : ours->dicts) {
        if (e.name == member) d = &e.dict;
      }
      ASSERT_NE(d, nullptr) << path << ": " << member;
      uint32_t theirs = 0;
      ctf_type_iter_all(
          fp,
          [](ctf_id_t, int, void* n) {
            ++*static_cast<uint32_t*>(n);
            return 0;
          },
          &theirs);
      ASSERT_EQ(d->type_count(), theirs) << path << " " << member;
      checked += expect_types_equal(*d, fp, path + " " + member);
      for (uint32_t index = 1; index <= d->type_count(); ++index) {
        const uint32_t id = d->id_of_index(index);
        // Lookups: root struct/union/enum tags and typedef names.
        auto t = d->type(id);
        ASSERT_TRUE(t.ok());
        if (!t->root || t->name.empty()) continue;
        std::string key;
        switch (t->kind) {
          case CtfKind::struct_: key = "struct " + std::string(t->name); break;
          case CtfKind::union_: key = "union " + std::string(t->name); break;
          case CtfKind::enum_: key = "enum " + std::string(t->name); break;
          case CtfKind::typedef_: key = std::string(t->name); break;
          default: continue;
        }
        const ctf_id_t want = ctf_lookup_by_name(fp, key.c_str());
        auto got = d->find(key);
        ASSERT_TRUE(got.ok()) << key;
        EXPECT_EQ(static_cast<ctf_id_t>(*got), want) << path << " " << member << " " << key;
        ++looked_up;
      }
      ctf_dict_close(fp);
    }
    ctf_close(arc);
    EXPECT_GT(checked, 3u) << path;
    EXPECT_GT(looked_up, 0u) << path;
  }
}

// A dict's bytes with its sections zlib-compressed (CTF_F_COMPRESS), as
// libctf writes dicts over its compression threshold.
std::string compress_dict(const std::string& raw) {
  const size_t hsize = raw[2] == 4 ? 52 : 40;
  uLongf len = compressBound(raw.size() - hsize);
  std::string z(len, '\0');
  EXPECT_EQ(::compress(reinterpret_cast<Bytef*>(z.data()), &len, reinterpret_cast<const Bytef*>(raw.data() + hsize),
                       raw.size() - hsize),
            Z_OK);
  z.resize(len);
  std::string out = raw.substr(0, hsize) + z;
  out[3] = static_cast<char>(out[3] | 1);
  return out;
}

TEST_F(CtfCorpus, CompressedDictsEqualLibctf) {
  // Each parent dict of the corpus, compressed: libctf inflates and dumps
  // it; we must inflate it to the same dump.
  size_t done = 0;
  for (const auto& path : *files) {
    int err = 0;
    ctf_archive_t* arc = ctf_open(path.c_str(), nullptr, &err);
    ASSERT_NE(arc, nullptr);
    ctf_next_t* it = nullptr;
    const char* member = nullptr;
    while (ctf_dict_t* fp = ctf_archive_next(arc, &it, &member, 0, &err)) {
      const ctf_sect_t data = ctf_getdatasect(fp);
      // Children need their parent, linked dicts (CTF_F_DYNSTR) their ELF
      // string table: both are dumped from their files above.
      if (ctf_parent_name(fp) == nullptr && (static_cast<const uint8_t*>(data.cts_data)[3] & 0x8) == 0) {
        const std::string bytes = compress_dict(std::string(static_cast<const char*>(data.cts_data), data.cts_size));
        ctf_dict_t* back = libctf_open_raw(bytes);
        ASSERT_NE(back, nullptr) << path << " " << member << " " << data.cts_size;
        auto d = CtfDict::open(bytes_of(bytes), "compressed");
        ASSERT_TRUE(d.ok()) << d.error().message();
        EXPECT_TRUE(d->compressed());
        std::string ours;
        ASSERT_TRUE(ctf_dump_dict(*d, ours).ok());
        EXPECT_EQ(ours, libctf_dump(back)) << path << " " << member;
        ctf_dict_close(back);
        ++done;
      }
      ctf_dict_close(fp);
    }
    ctf_close(arc);
  }
  EXPECT_GE(done, 3u);  // the three objects (stress32.o only where gcc has multilib)
}

// Differential: corpus dicts with random bytes changed (fixed seeds). Every
// mutant we open, libctf opens too and dumps as we do (libctf refusing one
// we accept fails the test); what we refuse is not compared.
TEST_F(CtfCorpus, MutatedDictsDumpAsLibctf) {
  size_t compared = 0;
  uint32_t seed = 1;
  std::vector<std::pair<std::string, std::string>> inputs;
  for (const char* name : {"stress.o", "a.o", "b.o"}) {
    int err = 0;
    ctf_archive_t* arc = ctf_open((dir() + "/" + name).c_str(), nullptr, &err);
    ASSERT_NE(arc, nullptr);
    ctf_dict_t* fp = ctf_dict_open(arc, nullptr, &err);
    ASSERT_NE(fp, nullptr);
    const ctf_sect_t data = ctf_getdatasect(fp);
    inputs.emplace_back(name, std::string(static_cast<const char*>(data.cts_data), data.cts_size));
    ctf_dict_close(fp);
    ctf_close(arc);
  }
  // And the builder's dict of every kind, big-endian (swapped in place).
  inputs.emplace_back("every_kind big-endian", every_kind().build(false));
  for (const auto& [name, orig] : inputs) {
    std::mt19937 rng(seed++);
    for (int k = 0; k < 800; ++k) {
      std::string m = orig;
      ASSERT_GT(m.size(), 52u);
      for (int f = 1 + static_cast<int>(rng() % 4); f > 0; --f) {
        const size_t at = 52 + rng() % (m.size() - 52);  // past the header: sections and records
        switch (rng() % 3) {
          case 0: m[at] = static_cast<char>(m[at] ^ (1 << (rng() % 8))); break;
          case 1: m[at] = static_cast<char>(rng()); break;
          default: m[at] = 0;
        }
      }
      auto d = CtfDict::open(bytes_of(m), "mutant", validating());
      if (!d.ok()) continue;
      std::string ours;
      ASSERT_TRUE(ctf_dump_dict(*d, ours).ok()) << name << " mutant " << k;
      ctf_dict_t* lp = libctf_open_raw(m);
      ASSERT_NE(lp, nullptr) << name << " mutant " << k;
      EXPECT_EQ(ours, libctf_dump(lp)) << name << " mutant " << k;
      ctf_dict_close(lp);
      ++compared;
    }
  }
  EXPECT_GT(compared, 800u);
}

// The header promises thread safety: threads sharing one fresh dict race to
// build the lazy name index and query types (run under ThreadSanitizer by
// ./x tsan).
TEST_F(CtfCorpus, ThreadsShareADict) {
  auto f = ctf_open_file(dir() + "/sys.o");
  ASSERT_TRUE(f.ok());
  const CtfDict d = f->dicts[0].dict;
  std::vector<std::thread> threads;
  std::atomic<int> found{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (const char* name : {"struct stat", "FILE", "pthread_mutex_t", "struct sockaddr_in6", "struct bpf_insn"}) {
        auto id = d.find(name);
        if (id.ok() && d.type_name(*id).ok() && d.type_size(*id).ok()) ++found;
      }
      for (uint32_t id = 1 + t; id <= d.type_count(); id += 8) (void)d.type_align(id);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(found.load(), 8 * 5);
}

TEST_F(CtfCorpus, ElfSectionZeroIsNeverRead) {
  // The symbol table's string table link pointing at section 0, whose
  // offset is out of the file (found by the fuzzer: a span past the end).
  auto elf = test::read_file(dir() + "/a.o");
  ASSERT_GT(elf.size(), 64u);
  const uint64_t shoff = read_int<uint64_t>(elf.data() + 40, true);
  const uint16_t shnum = read_int<uint16_t>(elf.data() + 60, true);
  for (uint16_t i = 0; i < shnum; ++i) {
    std::byte* h = elf.data() + shoff + uint64_t{i} * 64;
    if (read_int<uint32_t>(h + 4, true) == 2) {  // SHT_SYMTAB: sh_link = 0
      const uint32_t zero = 0;
      std::memcpy(h + 40, &zero, 4);
    }
  }
  const uint64_t far = 0xffffffff00ull, size = 64;
  std::memcpy(elf.data() + shoff + 24, &far, 8);  // section 0's sh_offset
  std::memcpy(elf.data() + shoff + 32, &size, 8);
  auto f = ctf_open_bytes(Bytes::from_vector(elf), "patched.o");
  ASSERT_TRUE(f.ok()) << f.error().message();  // indexed sections: the string table is not needed
  std::string out;
  EXPECT_TRUE(ctf_dump(*f, out).ok());
}

TEST_F(CtfCorpus, CliDumpAndFind) {
  const std::string f = dir() + "/stress.o";
  std::string out;
  ASSERT_EQ(test::run(std::string(MMAR_BIN) + " ctf dump '" + f + "'", &out), 0);
  EXPECT_EQ(out, objdump_ctf(f));
  ASSERT_EQ(test::run(std::string(MMAR_BIN) + " ctf find '" + f + "' 'struct bits' cmp_fn", &out), 0);
  EXPECT_NE(out.find("struct bits"), std::string::npos) << out;
  EXPECT_NE(out.find("typedef"), std::string::npos) << out;
  ASSERT_EQ(test::run(std::string(MMAR_BIN) + " ctf find --json '" + f + "' 'enum big_enum'", &out), 0);
  EXPECT_NE(out.find("\"kind\":\"enum\""), std::string::npos) << out;
  ASSERT_EQ(test::run(std::string(MMAR_BIN) + " ctf dump --json '" + f + "'", &out), 0);
  EXPECT_EQ(out.rfind("{\"section\":\".ctf\",\"dicts\":[{\"name\":\".ctf\",\"version\":4,", 0), 0u)
      << out.substr(0, 200);
  EXPECT_NE(out.find("\"decl\":\"struct bits\""), std::string::npos);
  EXPECT_NE(out.find("{\"name\":\"BMAX\",\"value\":2147483647}"), std::string::npos);
  ASSERT_EQ(test::run(std::string(MMAR_BIN) + " ctf --help", &out), 0);
  EXPECT_NE(out.find("objdump --ctf"), std::string::npos);
  EXPECT_EQ(test::run(std::string(MMAR_BIN) + " ctf find '" + f + "' 'struct nope' 2>/dev/null", &out), 1);
  EXPECT_EQ(test::run(std::string(MMAR_BIN) + " ctf 2>/dev/null", &out), 2);
  std::string err;
  EXPECT_EQ(test::run(std::string(MMAR_BIN) + " ctf dump /etc/hostname 2>&1", &err), 1);
  EXPECT_EQ(err.rfind("mmar: ", 0), 0u) << err;
  // An ELF object without CTF: find says there is nothing to search.
  EXPECT_EQ(test::run(std::string(MMAR_BIN) + " ctf find " + MMAR_BIN + " int 2>&1", &err), 1);
  EXPECT_NE(err.find(": no CTF dicts (no .ctf section"), std::string::npos) << err;
}

// ---------------------------------------------------------------------------
// Builder dicts against libctf.

TEST(CtfBuilt, EveryKindEqualsLibctfBothByteOrders) {
  for (bool compress : {false, true}) {
    DictBuilder b = every_kind();
    const std::string little = b.build(true, compress);
    ctf_dict_t* fp = libctf_open_raw(little);
    ASSERT_NE(fp, nullptr);
    const std::string want = libctf_dump(fp);
    EXPECT_EQ(our_dict_dump(little), want);
    // Foreign byte order: libctf swaps it to the same dump; so do we, in place.
    const std::string big = b.build(false, compress);
    ctf_dict_t* fpb = libctf_open_raw(big);
    ASSERT_NE(fpb, nullptr);
    EXPECT_EQ(libctf_dump(fpb), want);
    EXPECT_EQ(our_dict_dump(big), want);
    auto d = CtfDict::open(bytes_of(big), "big");
    ASSERT_TRUE(d.ok());
    EXPECT_FALSE(d->little_endian());
    EXPECT_EQ(expect_types_equal(*d, fpb, "big"), d->type_count());
    ctf_dict_close(fp);
    ctf_dict_close(fpb);
  }
}

TEST(CtfBuilt, LabelsAsLibctf) {
  // The second label names no type: left out, as libctf leaves it out.
  // (Native v3 dicts only: libctf 2.40 takes the label section's bounds
  // from the header as stored, unswapped and not upgraded, so it lists no
  // labels, or garbage, for foreign-endian and v2 dicts; we list them.)
  for (bool compress : {false, true}) {
    DictBuilder b = every_kind();
    b.labels = {b.str("first"), 0x11, b.str("nowhere"), 0x999, b.str("last"), 3};
    const std::string bytes = b.build(true, compress);
    ctf_dict_t* fp = libctf_open_raw(bytes);
    ASSERT_NE(fp, nullptr);
    const std::string want = libctf_dump(fp);
    EXPECT_NE(want.find("    first -> 0x11: (kind 6) struct s"), std::string::npos);
    EXPECT_EQ(our_dict_dump(bytes), want);
    ctf_dict_close(fp);
  }
}

TEST(CtfBuilt, HeaderFlagsPrintAsLibctf) {
  // Every combination of the four flags (COMPRESS by compressing).
  for (uint8_t flags = 0; flags < 16; ++flags) {
    DictBuilder b = every_kind();
    b.flags = flags & 0xe;
    const std::string bytes = b.build(true, (flags & 1) != 0);
    ctf_dict_t* fp = libctf_open_raw(bytes);
    ASSERT_NE(fp, nullptr) << int{flags};
    EXPECT_EQ(our_dict_dump(bytes), libctf_dump(fp)) << "flags " << int{flags};
    ctf_dict_close(fp);
  }
}

TEST(CtfBuilt, HugeSizesPrintAsLibctf) {
  // Sizes whose bit counts overflow 64 bits (found by the fuzzer: UBSan).
  DictBuilder b;
  const uint32_t i = b.add(b.str("wide"), 1, 0, 0xffffffffu, {0x1e000000u, 0, 1u << 24 | 32});
  b.add(b.str("wider"), 2, 0, 0xffffffffu, {0xffffffffu, 0xfffffff0u, 2u << 24 | 64});
  b.array(i, i, 0x10000);
  b.var("w", i);
  const std::string bytes = b.build();
  ctf_dict_t* fp = libctf_open_raw(bytes);
  ASSERT_NE(fp, nullptr);
  EXPECT_EQ(our_dict_dump(bytes), libctf_dump(fp));
  ctf_dict_close(fp);
}

TEST(CtfBuilt, EmptyStringTable) {
  DictBuilder b;
  b.strtab.clear();
  b.add(0, 3, 0, 0);                   // an unnamed pointer to void
  b.add(0, 6, 0, 0);                   // an unnamed empty struct
  b.add(0, 1, 0, 4, {1u << 24 | 32});  // an integer without a name: no C name, left out of the dump
  const std::string bytes = b.build();
  ctf_dict_t* fp = libctf_open_raw(bytes);
  ASSERT_NE(fp, nullptr);
  EXPECT_EQ(our_dict_dump(bytes), libctf_dump(fp));
  ctf_dict_close(fp);
}

TEST(CtfBuilt, Version2Header) {
  DictBuilder b = every_kind();
  b.version = 3;
  b.flags = 0;
  b.cuname = 0;
  // No data objects: libctf 2.40 reads a v2 header's label bounds as if it
  // were v3 (its data-object section would be listed as labels).
  b.objts.clear();
  b.objt_names.clear();
  b.func_names.clear();  // no index sections in v2; the function section stays (another format: ignored)
  const std::string v2 = b.build();
  ctf_dict_t* fp = libctf_open_raw(v2);
  ASSERT_NE(fp, nullptr);
  EXPECT_EQ(our_dict_dump(v2), libctf_dump(fp));
  ctf_dict_close(fp);
}

TEST(CtfBuilt, ParentAndChild) {
  DictBuilder p;
  const uint32_t pi = p.integer("int", 4);
  p.record(6, "shared", 4, {{"v", pi, 0}});
  DictBuilder c;
  c.child = true;
  c.parname = c.str(".ctf");
  const uint32_t own = c.pointer(pi);
  c.record(6, "mine", 16, {{"p", own, 0}, {"i", pi, 64}});
  c.var("v", own);
  const std::string pb = p.build(), cb = c.build(false);  // the child big-endian: orders are per dict
  auto parent = CtfDict::open(bytes_of(pb), "parent");
  ASSERT_TRUE(parent.ok()) << parent.error().message();
  CtfOpenOptions o;
  o.parent = &*parent;
  auto child = CtfDict::open(bytes_of(cb), "child", o);
  ASSERT_TRUE(child.ok()) << child.error().message();
  EXPECT_EQ(*child->type_name(own), "int *");
  EXPECT_EQ(*child->find("struct shared"), 2u);
  EXPECT_EQ(*child->find("struct mine"), 0x80000002u);
  // Against libctf with ctf_import.
  ctf_dict_t* lp = libctf_open_raw(pb);
  ctf_dict_t* lc = libctf_open_raw(cb);
  ASSERT_EQ(ctf_import(lc, lp), 0);
  EXPECT_EQ(our_dict_dump(cb).substr(0, 0), "");  // opens alone too
  std::string ours;
  ASSERT_TRUE(ctf_dump_dict(*child, ours).ok());
  EXPECT_EQ(ours, libctf_dump(lc));
  // Without its parent, a child still opens; its parent's types are not found.
  auto alone = CtfDict::open(bytes_of(cb), "alone");
  ASSERT_TRUE(alone.ok());
  EXPECT_EQ(alone->type_name(own).error().code(), Errc::not_found);
  // A reference past the parent's types is refused when the parent is known.
  DictBuilder bad = c;
  bad.pointer(7);
  EXPECT_FALSE(CtfDict::open(bytes_of(bad.build()), "bad", validating(o)).ok());
  ctf_dict_close(lc);
  ctf_dict_close(lp);
}

TEST(CtfBuilt, ExternalStringsFromTheElfStrtab) {
  DictBuilder b;
  const uint32_t i = b.add(0x80000000u | 5, 1, 0, 4, {1u << 24 | 32});  // name "elfint" in the ELF strtab
  b.var("x", i);
  const std::string dict = b.build();
  const std::string strtab = std::string("\0abc\0elfint\0", 12);
  CtfOpenOptions o;
  o.symbols.strtab = std::span(reinterpret_cast<const std::byte*>(strtab.data()), strtab.size());
  auto d = CtfDict::open(bytes_of(dict), "ext", o);
  ASSERT_TRUE(d.ok()) << d.error().message();
  EXPECT_EQ(*d->type_name(i), "elfint");
  EXPECT_EQ(*d->find("elfint"), i);
  // No ELF string table given: refused, as libctf refuses it.
  auto none = CtfDict::open(bytes_of(dict), "ext", validating());
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message().find("in the ELF string table, and none was given"), std::string::npos)
      << none.error().message();
  // Past the ELF string table: refused.
  const std::string short_tab("\0ab\0", 4);
  o.symbols.strtab = std::span(reinterpret_cast<const std::byte*>(short_tab.data()), short_tab.size());
  auto bad = CtfDict::open(bytes_of(dict), "ext", validating(o));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("past the ELF string table"), std::string::npos) << bad.error().message();
}

// ---------------------------------------------------------------------------
// Malformed input: one builder change per case, the error named.

std::string open_error(const std::string& bytes, const CtfOpenOptions& o = {}) {
  auto d = CtfDict::open(bytes_of(bytes), "bad.ctf", validating(o));
  if (d.ok()) {
    // Whatever opens must dump.
    std::string out;
    EXPECT_TRUE(ctf_dump_dict(*d, out).ok());
    return "";
  }
  EXPECT_EQ(d.error().message().rfind("bad.ctf: ", 0), 0u) << d.error().message();
  return d.error().message();
}

TEST(CtfBad, TruncatedHeader) {
  const std::string good = every_kind().build();
  EXPECT_NE(open_error(good.substr(0, 3)).find("no CTF preamble"), std::string::npos);
  EXPECT_NE(open_error(good.substr(0, 30)).find("truncated header"), std::string::npos);
  EXPECT_NE(open_error(good.substr(0, good.size() - 1)).find("past the end of the dict"), std::string::npos);
  EXPECT_NE(open_error("\x12\x34\x04\x00" + good.substr(4)).find("bad magic"), std::string::npos);
  auto v1 = good;
  v1[2] = 1;
  EXPECT_EQ(CtfDict::open(bytes_of(v1), "v1").error().code(), Errc::unsupported);
}

TEST(CtfBad, SectionOffsetsOutOfRangeOrOrder) {
  DictBuilder b = every_kind();
  b.override_field[10] = 0x100000;  // cth_stroff far past the end
  EXPECT_NE(open_error(b.build()).find("past the end of the dict"), std::string::npos);
  b = every_kind();
  b.override_field[9] = 0x7ffffff0;  // cth_typeoff after cth_stroff
  EXPECT_NE(open_error(b.build()).find("string section offset"), std::string::npos);
  b = every_kind();
  b.override_field[4] = 2;  // cth_objtoff unaligned
  EXPECT_NE(open_error(b.build()).find("not 4-aligned"), std::string::npos);
  b = every_kind();
  b.override_field[11] = 0xfffffff0;  // cth_strlen huge: stroff + strlen overflows u32, not u64
  EXPECT_NE(open_error(b.build()).find("past the end"), std::string::npos);
}

TEST(CtfBad, VlenPastTheTypeSection) {
  DictBuilder b;
  const uint32_t i = b.integer("int", 4);
  b.record(6, "s", 8, {{"a", i, 0}});
  b.types[b.types.size() - 5] = DictBuilder::info(6, true, 1000);  // the struct's vlen
  const std::string e = open_error(b.build());
  EXPECT_NE(e.find("type 0x2: vlen 1000 runs past the type section"), std::string::npos) << e;
  DictBuilder u;
  u.add(0, 40, 0, 0);  // kind 40
  EXPECT_NE(open_error(u.build()).find("unknown kind 40"), std::string::npos);
  DictBuilder t;
  t.integer("int", 4);
  t.types.resize(t.types.size() - 2);  // a record cut short
  EXPECT_NE(open_error(t.build()).find("truncated by the end of the type section"), std::string::npos);
}

TEST(CtfBad, StringOffsetPastStrtab) {
  DictBuilder b = every_kind();
  b.types[0] = static_cast<uint32_t>(b.strtab.size()) + 3;  // type 1's name
  const std::string e = open_error(b.build());
  EXPECT_NE(e.find("type 0x1 name: string offset"), std::string::npos) << e;
  EXPECT_NE(e.find("past the string table"), std::string::npos) << e;
  DictBuilder v = every_kind();
  v.vars[0] = 0x7fff0000;
  EXPECT_NE(open_error(v.build()).find("variable 0 name"), std::string::npos);
  DictBuilder t = every_kind();
  t.strtab.back() = 'x';  // unterminated table
  EXPECT_NE(open_error(t.build()).find("NUL"), std::string::npos);
}

TEST(CtfBad, CompressedDictInflatesToAnotherLength) {
  DictBuilder b = every_kind();
  b.override_field[11] = static_cast<uint32_t>(b.strtab.size()) + 8;  // claims 8 more bytes
  EXPECT_NE(open_error(b.build(true, true)).find("inflates to"), std::string::npos);
  b = every_kind();
  b.override_field[11] = static_cast<uint32_t>(b.strtab.size()) - 4;  // claims fewer
  EXPECT_NE(open_error(b.build(true, true)).find("inflates to more than"), std::string::npos);
  // A claim over the limit is refused before anything is allocated.
  b = every_kind();
  CtfOpenOptions o;
  o.max_inflated = 64;
  auto d = CtfDict::open(bytes_of(b.build(true, true)), "bad.ctf", o);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code(), Errc::limit);
  // Garbage instead of a zlib stream.
  std::string junk = every_kind().build(true, false);
  junk[3] = static_cast<char>(junk[3] | 1);
  EXPECT_NE(open_error(junk).find("does not inflate"), std::string::npos);
}

TEST(CtfBad, ReferenceCycles) {
  {
    DictBuilder b;
    b.typedef_("loop", 2);  // typedef 1 -> const 2 -> typedef 1
    b.add(0, 12, 0, 1);
    const std::string e = open_error(b.build());
    EXPECT_NE(e.find("reference cycle"), std::string::npos) << e;
    EXPECT_NE(e.find("type 0x"), std::string::npos) << e;
  }
  {
    DictBuilder b;  // a pointer to itself: no name can be printed
    b.pointer(1);
    EXPECT_NE(open_error(b.build()).find("type 0x1 is part of a reference cycle"), std::string::npos);
  }
  {
    DictBuilder b;  // a struct containing itself by value (through an array)
    const uint32_t i = b.integer("int", 4);
    b.record(6, "s", 8, {{"a", i, 0}, {"self", 3, 32}});
    b.array(2, i, 2);
    EXPECT_NE(open_error(b.build()).find("contains itself"), std::string::npos);
  }
  {
    DictBuilder b;  // a function taking a pointer to itself
    b.function(0, {2});
    b.pointer(1);
    EXPECT_NE(open_error(b.build()).find("reference cycle"), std::string::npos);
  }
  {
    DictBuilder b;  // but a struct pointing at itself is fine
    b.record(6, "node", 8, {{"next", 2, 0}});
    b.pointer(1);
    EXPECT_EQ(open_error(b.build()), "");
  }
}

TEST(CtfBad, ReferencesOutOfRange) {
  DictBuilder b;
  b.pointer(9);
  EXPECT_NE(open_error(b.build()).find("refers to type 0x9, past the last type 0x1"), std::string::npos);
  DictBuilder c;
  c.integer("int", 4);
  c.var("v", 0x80000001u);  // a child's ID in a parent dict
  EXPECT_NE(open_error(c.build()).find("in a parent dict"), std::string::npos);
  DictBuilder z;  // a child's ID with index 0 (fuzz: regress_crash_1)
  z.child = true;
  z.parname = z.str(".ctf");
  z.pointer(0x80000000u);
  EXPECT_NE(open_error(z.build()).find("refers to type 0x80000000"), std::string::npos);
  DictBuilder f;
  f.add(f.str("x"), 9, 0, 3);  // a forward to a pointer
  EXPECT_NE(open_error(f.build()).find("forward to kind 3"), std::string::npos);
}

// ---------------------------------------------------------------------------
// CtfBuilder: what it writes, libctf and our reader open alike.

// libctf 2.40 looks symbols up by name only with an ELF symbol table; it
// iterates an indexed dict's symbols without one ("name=type ").
std::string libctf_symbols(ctf_dict_t* fp, bool functions) {
  std::string out;
  ctf_next_t* it = nullptr;
  const char* name = nullptr;
  ctf_id_t type;
  while ((type = ctf_symbol_next(fp, &it, &name, functions)) != CTF_ERR) {
    out += std::string(name) + "=" + std::to_string(type) + " ";
  }
  return out;
}

std::string str_of(const std::vector<std::byte>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size());
}

TEST(CtfWriter, EveryKindOpensInLibctfAndOurs) {
  CtfBuilder b;
  const uint32_t i = *b.add_integer("int", kCtfIntSigned, 32, 4);
  const uint32_t u = *b.add_integer("unsigned int", 0, 32, 4);
  const uint32_t c = *b.add_integer("char", kCtfIntSigned | kCtfIntChar, 8, 1);
  const uint32_t d = *b.add_float("double", kCtfFpDouble, 64, 8);
  const uint32_t p = *b.add_pointer(c);
  const uint32_t cc = *b.add_cv(CtfKind::const_, c);
  const uint32_t a = *b.add_array(i, u, 5);
  const uint32_t e = *b.add_enum("color", 4);
  ASSERT_TRUE(b.add_enumerator("RED", 0).ok());
  ASSERT_TRUE(b.add_enumerator("BLUE", -7).ok());
  const uint32_t bits = *b.add_slice(u, 0, 3, 4);
  const uint32_t s = *b.add_struct("s", 40);
  ASSERT_TRUE(b.add_member("x", i, 0).ok());
  ASSERT_TRUE(b.add_member("flag", bits, 32).ok());
  ASSERT_TRUE(b.add_member("arr", a, 64).ok());
  ASSERT_TRUE(b.add_member("d", d, 256).ok());
  const uint32_t un = *b.add_union("", 8);
  ASSERT_TRUE(b.add_member("p", p, 0).ok());
  ASSERT_TRUE(b.add_member("d", d, 0).ok());
  const uint32_t fw = *b.add_forward("later", CtfKind::union_);
  const uint32_t td = *b.add_typedef("s_t", s);
  const uint32_t args[] = {i, cc};
  const uint32_t fn = *b.add_function(i, args, true);
  const uint32_t fp = *b.add_pointer(fn);
  EXPECT_FALSE(b.add_member("late", i, 0).ok());  // the last type is no struct
  ASSERT_TRUE(b.add_variable("global_s", td).ok());
  ASSERT_TRUE(b.add_variable("a_var", i).ok());
  ASSERT_TRUE(b.add_object_symbol("obj", s).ok());
  ASSERT_TRUE(b.add_function_symbol("main", fn).ok());
  ASSERT_TRUE(b.add_function_symbol("abort", fn).ok());
  auto bytes = b.write();
  ASSERT_TRUE(bytes.ok()) << bytes.error().message();
  const std::string raw = str_of(*bytes);

  ctf_dict_t* l = libctf_open_raw(raw);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(ctf_type_size(l, s), 40);
  EXPECT_EQ(ctf_type_size(l, a), 20);
  EXPECT_EQ(ctf_type_size(l, un), 8);
  EXPECT_EQ(ctf_type_align(l, un), 8);
  EXPECT_EQ(ctf_type_kind(l, fw), CTF_K_FORWARD);
  EXPECT_EQ(ctf_lookup_by_name(l, "struct s"), static_cast<ctf_id_t>(s));
  EXPECT_EQ(ctf_lookup_by_name(l, "s_t"), static_cast<ctf_id_t>(td));
  EXPECT_EQ(ctf_lookup_by_name(l, "enum color"), static_cast<ctf_id_t>(e));
  ctf_membinfo_t mi{};
  ASSERT_EQ(ctf_member_info(l, s, "d", &mi), 0);
  EXPECT_EQ(mi.ctm_offset, 256u);
  ASSERT_EQ(ctf_member_info(l, s, "flag", &mi), 0);
  ctf_encoding_t enc{};
  ASSERT_EQ(ctf_type_encoding(l, mi.ctm_type, &enc), 0);
  EXPECT_EQ(enc.cte_bits, 3u);
  int value = 0;
  ASSERT_EQ(ctf_enum_value(l, e, "BLUE", &value), 0);
  EXPECT_EQ(value, -7);
  ctf_funcinfo_t fi{};
  ASSERT_EQ(ctf_func_type_info(l, fn, &fi), 0);
  EXPECT_EQ(fi.ctc_argc, 2u);
  EXPECT_TRUE(fi.ctc_flags & CTF_FUNC_VARARG);
  char* name = ctf_type_aname(l, fn);
  EXPECT_STREQ(name, "int (*) (int, const char, ...)");
  free(name);
  (void)fp;
  EXPECT_EQ(ctf_lookup_variable(l, "global_s"), static_cast<ctf_id_t>(td));
  EXPECT_EQ(libctf_symbols(l, true), "abort=" + std::to_string(fn) + " main=" + std::to_string(fn) + " ");
  EXPECT_EQ(libctf_symbols(l, false), "obj=" + std::to_string(s) + " ");
  // Our reader: the same dump as libctf's, byte for byte.
  EXPECT_EQ(our_dict_dump(raw), libctf_dump(l));
  ctf_dict_close(l);
}

TEST(CtfWriter, RefusesWhatLibctfWouldNotRead) {
  CtfBuilder b;
  ASSERT_TRUE(b.add_pointer(5).ok());  // refers ahead...
  EXPECT_FALSE(b.write().ok());        // ...to a type never added
  CtfBuilder v;
  const uint32_t i = *v.add_integer("int", kCtfIntSigned, 32, 4);
  ASSERT_TRUE(v.add_variable("x", i).ok());
  ASSERT_TRUE(v.add_variable("x", i).ok());
  auto w = v.write();
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.error().message().find("'x' repeats"), std::string::npos);
  EXPECT_FALSE(v.add_enumerator("E", 1).ok());
  EXPECT_FALSE(v.add_forward("f", CtfKind::integer).ok());
}

TEST(CtfWriter, LargeStructsAsLibctfReadsThem) {
  // 512 MiB .. 4 GiB: lmembers, which libctf 2.40 reads only under the
  // large size form; beyond 4 GiB: the large size form anyway.
  for (uint64_t size : {uint64_t{0x30000000}, uint64_t{0x123456789}}) {
    CtfBuilder b;
    const uint32_t i = *b.add_integer("int", kCtfIntSigned, 32, 4);
    const uint32_t s = *b.add_struct("big", size);
    ASSERT_TRUE(b.add_member("a", i, 0).ok());
    ASSERT_TRUE(b.add_member("z", i, (size - 4) * 8).ok());
    const std::string raw = str_of(*b.write());
    ctf_dict_t* l = libctf_open_raw(raw);
    ASSERT_NE(l, nullptr);
    EXPECT_EQ(static_cast<uint64_t>(ctf_type_size(l, s)), size);
    ctf_membinfo_t mi{};
    ASSERT_EQ(ctf_member_info(l, s, "z", &mi), 0);
    EXPECT_EQ(mi.ctm_offset, (size - 4) * 8);
    EXPECT_EQ(mi.ctm_type, static_cast<ctf_id_t>(i));
    EXPECT_EQ(our_dict_dump(raw), libctf_dump(l));
    ctf_dict_close(l);
  }
}

TEST(CtfWriter, ParentAndChildInAnArchive) {
  test::TempDir dir;
  CtfBuilder parent;
  const uint32_t i = *parent.add_integer("int", kCtfIntSigned, 32, 4);
  const uint32_t s = *parent.add_struct("shared", 4);
  ASSERT_TRUE(parent.add_member("v", i, 0).ok());
  CtfBuilder child("shared_ctf");
  const uint32_t own = *child.add_pointer(s);
  EXPECT_EQ(own, 0x80000001u);
  const uint32_t mine = *child.add_struct("mine", 16);
  ASSERT_TRUE(child.add_member("p", own, 0).ok());
  ASSERT_TRUE(child.add_member("i", i, 64).ok());
  ASSERT_TRUE(child.add_function_symbol("f", *child.add_function(own, {}, false)).ok());
  WriteOptions o;
  o.format = Format::ctf;
  Writer w(o);
  ASSERT_TRUE(w.add_bytes("shared_ctf", *parent.write()).ok());
  ASSERT_TRUE(w.add_bytes("kid", *child.write()).ok());
  const std::string path = dir / "a.ctfa";
  ASSERT_TRUE(w.write(path).ok());
  int err = 0;
  ctf_archive_t* arc = ctf_arc_open(path.c_str(), &err);
  ASSERT_NE(arc, nullptr) << ctf_errmsg(err);
  ctf_dict_t* kid = ctf_dict_open(arc, "kid", &err);  // imports shared_ctf by its name
  ASSERT_NE(kid, nullptr) << ctf_errmsg(err);
  EXPECT_EQ(ctf_type_size(kid, mine), 16);
  char* n = ctf_type_aname(kid, own);
  EXPECT_STREQ(n, "struct shared *");
  free(n);
  EXPECT_EQ(ctf_lookup_by_name(kid, "struct shared"), static_cast<ctf_id_t>(s));
  ctf_dict_close(kid);
  ctf_arc_close(arc);
  CtfFileOptions fo;
  fo.parent_member = "shared_ctf";
  auto f = ctf_open_file(path, fo);
  ASSERT_TRUE(f.ok()) << f.error().message();
  ASSERT_EQ(f->dicts.size(), 2u);
  EXPECT_EQ(*f->dicts[0].dict.type_name(own), "struct shared *");
}

// Typed iteration over a CTF archive whose parents are wrong: a child that
// names itself, two children naming each other, a parent that is absent
// (each an error naming the dict), beside a good pair that still opens; and
// CtfArchiveOptions::parent overriding the name (objdump's --ctf-parent).
TEST(CtfWriter, TypedIterationRefusesBadParents) {
  test::TempDir dir;
  CtfBuilder parent;
  const uint32_t i = *parent.add_integer("int", kCtfIntSigned, 32, 4);
  auto child_of = [&](const std::string& p) {
    CtfBuilder c(p);
    EXPECT_TRUE(c.add_pointer(i).ok());
    return *c.write();
  };
  WriteOptions o;
  o.format = Format::ctf;
  Writer w(o);
  ASSERT_TRUE(w.add_bytes("base", *parent.write()).ok());
  ASSERT_TRUE(w.add_bytes("good", child_of("base")).ok());
  ASSERT_TRUE(w.add_bytes("self", child_of("self")).ok());
  ASSERT_TRUE(w.add_bytes("ping", child_of("pong")).ok());
  ASSERT_TRUE(w.add_bytes("pong", child_of("ping")).ok());
  ASSERT_TRUE(w.add_bytes("orphan", child_of("gone")).ok());
  const std::string path = dir / "bad.ctfa";
  ASSERT_TRUE(w.write(path).ok());
  auto a = CtfArchive::open(path);
  ASSERT_TRUE(a.ok()) << a.error().message();
  auto good = a->dict("good");
  ASSERT_TRUE(good.ok()) << good.error().message();
  EXPECT_EQ(*good->type_name(0x80000001u), "int *");
  auto message = [&](const char* name) {
    auto d = a->dict(name);
    EXPECT_FALSE(d.ok()) << name;
    return d.ok() ? std::string() : d.error().message();
  };
  EXPECT_NE(message("self").find("self: names itself as its parent"), std::string::npos) << message("self");
  EXPECT_NE(message("ping").find("pong: is a child dict (of 'ping'), so it cannot be the parent of another"),
            std::string::npos)
      << message("ping");
  EXPECT_NE(message("orphan").find("orphan: its parent dict 'gone' is not in the archive"), std::string::npos)
      << message("orphan");
  EXPECT_FALSE(a->for_each([](std::string_view, const CtfDict&) { return success(); }).ok());
  // Every child given "base" as its parent: all open.
  CtfArchiveOptions ao;
  ao.parent = "base";
  auto forced = CtfArchive::open(path, ao);
  ASSERT_TRUE(forced.ok());
  size_t opened = 0;
  ASSERT_TRUE(forced
                  ->for_each([&](std::string_view, const CtfDict& d) -> Result<void> {
                    if (d.is_child()) {
                      EXPECT_EQ(*d.type_name(0x80000001u), "int *");
                    }
                    ++opened;
                    return success();
                  })
                  .ok());
  EXPECT_EQ(opened, 6u);
}

// ---------------------------------------------------------------------------
// ctf_from_btf: kernel BTF to a CTF archive libctf answers from as BTF does.

// libctf 2.40's answers computed over the BTF: sizes through typedefs,
// qualifiers and tags; alignment as ctf_type_align defines it (an integer or
// float its size, a pointer 8, an enum (referred to through its slice) its
// size, an array its element's, a struct its first member's, a union its largest member's;
// a bitfield member, a slice, its type's size).
struct BtfOracle {
  const Btf& btf;
  uint32_t resolve(uint32_t id) const {
    for (int depth = 0; depth < 64 && id != 0; ++depth) {
      auto t = btf.type(id);
      if (!t.ok()) return 0;
      const BtfKind k = t->kind();
      if (k != BtfKind::typedef_ && k != BtfKind::volatile_ && k != BtfKind::const_ && k != BtfKind::restrict_ &&
          k != BtfKind::type_tag) {
        return id;
      }
      id = t->type();
    }
    return 0;
  }
  std::optional<int64_t> size(uint32_t id) const {
    id = resolve(id);
    if (id == 0) return 0;  // void: the integer "void" of size 0
    auto t = *btf.type(id);
    switch (t.kind()) {
      case BtfKind::ptr: return 8;
      case BtfKind::array: {
        auto e = size(t.extra_u32(0));
        return e ? std::optional<int64_t>(*e * t.extra_u32(2)) : std::nullopt;
      }
      case BtfKind::func_proto: return 0;
      case BtfKind::fwd: return std::nullopt;
      default: return t.size();
    }
  }
  std::optional<int64_t> align(uint32_t id) const {
    id = resolve(id);
    if (id == 0) return 0;
    auto t = *btf.type(id);
    switch (t.kind()) {
      case BtfKind::ptr: return 8;
      case BtfKind::array: return align(t.extra_u32(0));
      case BtfKind::struct_:
      case BtfKind::union_: {
        int64_t a = 0;
        const uint32_t n = t.kind() == BtfKind::struct_ ? std::min<uint32_t>(t.vlen(), 1) : t.vlen();
        for (uint32_t m = 0; m < n; ++m) {
          const bool bitfield = t.kflag() && (t.extra_u32(m * 3 + 2) >> 24) != 0;
          auto am = bitfield ? size(t.extra_u32(m * 3 + 1)) : align(t.extra_u32(m * 3 + 1));
          if (!am) return std::nullopt;
          a = std::max(a, *am);
        }
        return a;
      }
      case BtfKind::func_proto:
      case BtfKind::fwd: return std::nullopt;
      default: return t.size();
    }
  }
};

struct LibctfMember {
  std::string name;
  ctf_id_t type;
  unsigned long offset;
};
int collect_member(const char* name, ctf_id_t type, unsigned long offset, void* arg) {
  static_cast<std::vector<LibctfMember>*>(arg)->push_back({name, type, offset});
  return 0;
}

// Compare every named struct/union/enum/typedef of `btf` (stepping
// `stride`) with the CTF dict `fp`; returns the number of types compared.
// Stops reporting after 20 differences.
size_t compare_with_btf(const Btf& btf, ctf_dict_t* fp, const std::vector<uint32_t>& map, uint32_t stride) {
  BtfOracle o{btf};
  const uint32_t end = *btf.type_count();
  size_t compared = 0;
  int failures = 0;
  auto differ = [&](uint32_t id, const std::string& what, auto want, auto got) {
    if (want == got) return false;
    ADD_FAILURE() << "BTF type " << id << " " << btf.name_of(*btf.type(id)) << ": " << what << ": BTF " << want
                  << ", libctf " << got;
    return ++failures > 20;
  };
  for (uint32_t id = btf.start_id(); id < end; id += stride) {
    auto t = *btf.type(id);
    const BtfKind k = t.kind();
    if (k != BtfKind::struct_ && k != BtfKind::union_ && k != BtfKind::enum_ && k != BtfKind::enum64 &&
        k != BtfKind::typedef_) {
      continue;
    }
    if (btf.name_of(t).empty()) continue;
    const ctf_id_t c = map[id];
    if (differ(id, "mapped", true, c != 0)) return compared;
    if (c == 0) continue;
    ++compared;
    const char* name = ctf_type_name_raw(fp, c);
    if (differ(id, "name", std::string(btf.name_of(t)), std::string(name ? name : "(null)"))) return compared;
    auto size = o.size(id);
    // libctf 2.40 gives an enum type the data model's int size and alignment
    // whatever its ctt_size (references to one of another size go through a
    // full-width slice, which has the BTF's size: see members below).
    if (k == BtfKind::enum_ || k == BtfKind::enum64) size = 4;
    if (differ(id, "size", size ? *size : -1, static_cast<int64_t>(ctf_type_size(fp, c)))) return compared;
    if (k == BtfKind::enum_ || k == BtfKind::enum64) {
      if (differ(id, "align", int64_t{4}, static_cast<int64_t>(ctf_type_align(fp, c)))) return compared;
    } else if (auto align = o.align(id)) {
      if (differ(id, "align", *align, static_cast<int64_t>(ctf_type_align(fp, c)))) return compared;
    }
    if (k == BtfKind::struct_ || k == BtfKind::union_) {
      std::vector<LibctfMember> members;
      if (differ(id, "member_iter", 0, ctf_member_iter(fp, c, collect_member, &members))) return compared;
      if (differ(id, "members", size_t{t.vlen()}, members.size())) return compared;
      for (uint32_t m = 0; m < t.vlen() && m < members.size(); ++m) {
        const std::string at = "member " + std::to_string(m) + " ";
        auto mname = btf.str(t.extra_u32(m * 3));
        if (differ(id, at + "name", std::string(mname ? *mname : ""), members[m].name)) return compared;
        const uint32_t off = t.extra_u32(m * 3 + 2);
        if (differ(id, at + "offset", uint64_t{t.kflag() ? off & 0xffffff : off}, uint64_t{members[m].offset})) {
          return compared;
        }
        if (auto msize = o.size(t.extra_u32(m * 3 + 1))) {
          if (differ(id, at + "size", *msize, static_cast<int64_t>(ctf_type_size(fp, members[m].type)))) {
            return compared;
          }
        }
        if (t.kflag() && (off >> 24) != 0) {
          ctf_encoding_t enc{};
          if (differ(id, at + "encoding", 0, ctf_type_encoding(fp, members[m].type, &enc))) return compared;
          if (differ(id, at + "bits", off >> 24, enc.cte_bits)) return compared;
        }
      }
    } else if (k == BtfKind::enum_ && t.vlen() > 0) {
      int value = 0;
      auto vname = btf.str(t.extra_u32(0));
      if (differ(id, "enum_value", 0, ctf_enum_value(fp, c, std::string(*vname).c_str(), &value))) return compared;
      if (differ(id, "value", t.extra_u32(1), static_cast<uint32_t>(value))) return compared;
    }
  }
  return compared;
}

// `objdump --ctf --ctf-parent=shared_ctf` of an ELF object whose .ctf
// section is the archive equals `mmar ctf dump --ctf-parent shared_ctf`
// (libctf's dump: every type's name, size and alignment as libctf computes
// them). Skipped (returns false) without a C compiler.
bool dump_equals_objdump(const std::string& archive, const std::string& dir) {
  const std::string obj = dir + "/wrapped.o";
  if (test::run("printf 'int x;\\n' | cc -x c -c - -o '" + dir +
                "/plain.o' 2>/dev/null && objcopy --add-section .ctf='" + archive +
                "' --set-section-flags .ctf=noload,readonly '" + dir + "/plain.o' '" + obj + "'") != 0) {
    return false;
  }
  std::string theirs;
  EXPECT_EQ(test::run("objdump --ctf=.ctf --ctf-parent=shared_ctf '" + obj + "' 2>/dev/null", &theirs), 0);
  theirs = theirs.substr(std::min(theirs.size(), theirs.find("Contents of CTF section")));
  CtfFileOptions fo;
  fo.parent_member = "shared_ctf";
  auto f = ctf_open_file(obj, fo);
  EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message());
  if (!f.ok()) return true;
  std::string ours;
  EXPECT_TRUE(ctf_dump(*f, ours).ok());
  EXPECT_GT(theirs.size(), 100u);
  EXPECT_TRUE(ours == theirs) << "dumps differ: " << ours.size() << " vs " << theirs.size() << " bytes";
  return true;
}

TEST(CtfFromBtf, BuiltBtfEveryKind) {
  BtfBuilder bb;
  const uint32_t i = *bb.add_int("int", 4, 1);
  const uint32_t u = *bb.add_int("unsigned int", 4, 0);
  const uint32_t inner = *bb.add_array(u, i, 3);
  const uint32_t outer = *bb.add_array(u, inner, 2);   // int [2][3]
  const uint32_t outer3 = *bb.add_array(u, outer, 4);  // int [4][2][3]
  const uint32_t e = *bb.add_enum("small", 1);
  ASSERT_TRUE(bb.add_enum_value("S0", 0).ok());
  const uint32_t e64 = *bb.add_enum64("wide", 8, false);
  ASSERT_TRUE(bb.add_enum64_value("W0", 1).ok());
  ASSERT_TRUE(bb.add_enum64_value("WBIG", uint64_t{1} << 40).ok());
  const uint32_t tagged = *bb.add_type_tag("user", i);
  const uint32_t ptr = *bb.add_ptr(tagged);
  const uint32_t s = *bb.add_struct("s", 40);
  ASSERT_TRUE(bb.add_field("a", outer, 0).ok());
  ASSERT_TRUE(bb.add_field("f1", u, 192, 3).ok());
  ASSERT_TRUE(bb.add_field("f2", e, 195, 2).ok());
  ASSERT_TRUE(bb.add_field("p", ptr, 256).ok());
  ASSERT_TRUE(bb.add_decl_tag("noted", s, 0).ok());
  const uint32_t vp = *bb.add_ptr(0);
  const uint32_t fwd = *bb.add_fwd("opaque", true);
  const uint32_t td = *bb.add_typedef("s_t", s);
  const uint32_t fl = *bb.add_float("double", 8);
  const uint32_t proto = *bb.add_func_proto(i);
  ASSERT_TRUE(bb.add_param("x", td).ok());
  ASSERT_TRUE(bb.add_param("", 0).ok());  // varargs
  ASSERT_TRUE(bb.add_func("printk_like", 1, proto).ok());
  ASSERT_TRUE(bb.add_var("counter", 1, fl).ok());
  (void)e64;
  (void)fwd;
  auto btf = Btf::parse(Bytes::from_vector(bb.write()), "built", BtfOpenOptions{.validate = true});
  ASSERT_TRUE(btf.ok()) << btf.error().message();
  auto r = ctf_convert_btf(*btf, {});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->functions, 1u);
  EXPECT_EQ(r->objects, 1u);
  EXPECT_EQ(r->enum64_truncated, 1u);
  EXPECT_EQ(r->base_type_map[tagged], r->base_type_map[i]);  // skipped through
  test::TempDir dir;
  WriteOptions wo;
  wo.format = Format::ctf;
  Writer w(wo);
  for (auto& d : r->dicts) ASSERT_TRUE(w.add_bytes(d.name, d.bytes).ok());
  ASSERT_TRUE(w.write(dir / "k.ctfa").ok());
  int err = 0;
  ctf_archive_t* arc = ctf_arc_open((dir / "k.ctfa").c_str(), &err);
  ASSERT_NE(arc, nullptr) << ctf_errmsg(err);
  ctf_dict_t* shared = ctf_dict_open(arc, "shared_ctf", &err);
  ASSERT_NE(shared, nullptr) << ctf_errmsg(err);
  EXPECT_EQ(compare_with_btf(*btf, shared, r->base_type_map, 1), 4u);
  char* n = ctf_type_aname(shared, r->base_type_map[outer]);
  EXPECT_STREQ(n, "int [2][3]");  // not [3][2]
  free(n);
  EXPECT_EQ(ctf_type_size(shared, r->base_type_map[outer]), 24);
  n = ctf_type_aname(shared, r->base_type_map[outer3]);
  EXPECT_STREQ(n, "int [4][2][3]");
  free(n);
  EXPECT_EQ(ctf_type_size(shared, r->base_type_map[outer3]), 96);
  n = ctf_type_aname(shared, r->base_type_map[inner]);
  EXPECT_STREQ(n, "int [3]");
  free(n);
  n = ctf_type_aname(shared, r->base_type_map[ptr]);
  EXPECT_STREQ(n, "int *");
  free(n);
  n = ctf_type_aname(shared, r->base_type_map[vp]);
  EXPECT_STREQ(n, "void *");
  free(n);
  ctf_dict_t* core = ctf_dict_open(arc, "vmlinux", &err);
  ASSERT_NE(core, nullptr) << ctf_errmsg(err);
  EXPECT_EQ(libctf_symbols(core, true), "printk_like=" + std::to_string(r->base_type_map[proto]) + " ");
  EXPECT_EQ(libctf_symbols(core, false), "counter=" + std::to_string(r->base_type_map[fl]) + " ");
  n = ctf_type_aname(core, r->base_type_map[proto]);
  EXPECT_STREQ(n, "int (*) (s_t, ...)");
  free(n);
  ctf_dict_close(core);
  ctf_dict_close(shared);
  ctf_arc_close(arc);
  // Our reader agrees with libctf's dump of every dict.
  CtfFileOptions fo;
  fo.parent_member = "shared_ctf";
  auto f = ctf_open_file(dir / "k.ctfa", fo);
  ASSERT_TRUE(f.ok()) << f.error().message();
  EXPECT_EQ(f->dicts.size(), 2u);
  if (!dump_equals_objdump(dir / "k.ctfa", dir.path())) GTEST_SKIP() << "no cc to wrap the archive in an ELF object";
}

TEST(CtfFromBtf, ModuleIsAChildOnSharedCtf) {
  BtfBuilder bb;
  const uint32_t i = *bb.add_int("int", 4, 1);
  auto base = Btf::parse(Bytes::from_vector(bb.write()), "base");
  ASSERT_TRUE(base.ok());
  BtfBuilder mb(*base);
  const uint32_t ms = *mb.add_struct("mod_s", 8);
  ASSERT_TRUE(mb.add_field("x", i, 0).ok());
  ASSERT_TRUE(mb.add_field("y", i, 32).ok());
  const uint32_t proto = *mb.add_func_proto(i);
  ASSERT_TRUE(mb.add_func("mod_init", 1, proto).ok());
  auto mod = Btf::parse_split(Bytes::from_vector(mb.write()), "ext9", *base);
  ASSERT_TRUE(mod.ok());
  test::TempDir dir;
  test::write_file(dir / "vmlinux", bb.write());
  ASSERT_EQ(::mkdir((dir / "btf").c_str(), 0755), 0);
  test::write_file(dir / "btf/ext9", mb.write());
  test::write_file(dir / "btf/vmlinux", bb.write());  // as /sys/kernel/btf: skipped
  auto st = ctf_from_btf(dir / "out.ctfa", dir / "vmlinux", {dir / "btf"});
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(st->modules, 1u);
  int err = 0;
  ctf_archive_t* arc = ctf_arc_open((dir / "out.ctfa").c_str(), &err);
  ASSERT_NE(arc, nullptr) << ctf_errmsg(err);
  ctf_dict_t* m = ctf_dict_open(arc, "ext9", &err);
  ASSERT_NE(m, nullptr) << ctf_errmsg(err);
  const ctf_id_t s = ctf_lookup_by_name(m, "struct mod_s");
  ASSERT_NE(s, CTF_ERR);
  EXPECT_EQ(s, static_cast<ctf_id_t>(0x80000001u));
  EXPECT_EQ(ctf_type_size(m, s), 8);
  ctf_membinfo_t mi{};
  ASSERT_EQ(ctf_member_info(m, s, "y", &mi), 0);
  EXPECT_EQ(mi.ctm_offset, 32u);
  EXPECT_EQ(libctf_symbols(m, true), "mod_init=" + std::to_string(0x80000002u) + " ");
  ctf_dict_close(m);
  ctf_arc_close(arc);
  (void)ms;
  // The CLI: the same archive; usage errors exit 2, bad input 1.
  EXPECT_EQ(test::run(std::string(MMAR_BIN) + " ctf from-btf -o '" + (dir / "cli.ctfa") + "' '" + (dir / "vmlinux") +
                      "' '" + (dir / "btf/ext9") + "' 2>/dev/null"),
            0);
  EXPECT_EQ(test::read_file(dir / "cli.ctfa"), test::read_file(dir / "out.ctfa"));
  std::string out;
  EXPECT_EQ(
      test::run(std::string(MMAR_BIN) + " ctf find --ctf-parent shared_ctf '" + (dir / "cli.ctfa") + "' 'struct mod_s'",
                &out),
      0);
  EXPECT_NE(out.find("ext9: [0x80000001] struct 'struct mod_s' size 8"), std::string::npos) << out;
  EXPECT_EQ(test::run(std::string(MMAR_BIN) + " ctf from-btf '" + (dir / "vmlinux") + "' 2>/dev/null"), 2);
  EXPECT_EQ(test::run(std::string(MMAR_BIN) + " ctf from-btf -o '" + (dir / "x.ctfa") + "' '" + (dir / "btf") +
                      "/nothing' 2>/dev/null"),
            1);
}

TEST(CtfFromBtf, KernelTypesEqualBtfThroughLibctf) {
  const std::string path = "/sys/kernel/btf/vmlinux";
  if (::access(path.c_str(), R_OK) != 0) GTEST_SKIP() << "no " << path;
  auto btf = Btf::open(path, nullptr, BtfOpenOptions{.validate = true});
  ASSERT_TRUE(btf.ok()) << btf.error().message();
  auto r = ctf_convert_btf(*btf, {});
  ASSERT_TRUE(r.ok()) << r.error().message();
  test::TempDir dir;
  WriteOptions wo;
  wo.format = Format::ctf;
  Writer w(wo);
  for (auto& d : r->dicts) ASSERT_TRUE(w.add_bytes(d.name, d.bytes).ok());
  ASSERT_TRUE(w.write(dir / "vmlinux.ctfa").ok());
  int err = 0;
  ctf_archive_t* arc = ctf_arc_open((dir / "vmlinux.ctfa").c_str(), &err);
  ASSERT_NE(arc, nullptr) << ctf_errmsg(err);
  ctf_dict_t* shared = ctf_dict_open(arc, "shared_ctf", &err);
  ASSERT_NE(shared, nullptr) << ctf_errmsg(err);
#if defined(__SANITIZE_ADDRESS__)
  const uint32_t stride = 7;  // sanitized builds sample the types
#else
  const uint32_t stride = 1;
#endif
  EXPECT_GT(compare_with_btf(*btf, shared, r->base_type_map, stride), 1000u / stride);
  ctf_dict_t* core = ctf_dict_open(arc, "vmlinux", &err);
  ASSERT_NE(core, nullptr) << ctf_errmsg(err);
  auto start = btf->find("start_kernel", BtfKind::func);
  if (start.ok()) {
    const std::string all = libctf_symbols(core, true);
    EXPECT_NE(all.find(" start_kernel=" + std::to_string(r->base_type_map[start->type()]) + " "), std::string::npos);
  }
  ctf_dict_close(core);
  ctf_dict_close(shared);
  ctf_arc_close(arc);
  // Our own reader opens it too, and agrees on sizes.
  CtfFileOptions fo;
  fo.parent_member = "shared_ctf";
  auto f = ctf_open_file(dir / "vmlinux.ctfa", fo);
  ASSERT_TRUE(f.ok()) << f.error().message();
  ASSERT_EQ(f->dicts.size(), 2u);
  // Every type has a name libctf can print (void included).
  const CtfDict& d = f->dicts[0].name == "shared_ctf" ? f->dicts[0].dict : f->dicts[1].dict;
  uint32_t unnamed = 0;
  for (uint32_t index = 1; index <= d.type_count(); ++index) unnamed += d.type_name(d.id_of_index(index)).ok() ? 0 : 1;
  EXPECT_EQ(unnamed, 0u);
#if !defined(__SANITIZE_ADDRESS__)  // ~1 s of objdump and dump: release builds only
  EXPECT_TRUE(dump_equals_objdump(dir / "vmlinux.ctfa", dir.path()));
#endif
}

// ---------------------------------------------------------------------------
// Dicts libctf itself writes (ctf_add_* and ctf_write_mem, ctf_arc_write_fd):
// in its own byte order, byte-swapped (LIBCTF_WRITE_FOREIGN_ENDIAN, which
// binutils 2.40's ctf_write_mem honours), and compressed over its threshold.

// Every kind through libctf's API: integers (signed, char, bool, a
// non-root duplicate), floats (complex too), pointers, the three
// qualifiers, arrays of arrays, enums (encoded too), slices (with a bit
// offset), structs with members placed by libctf and at given offsets, a
// self-referencing struct, an anonymous union, forwards of all three tag
// kinds, typedefs, a variadic function and a pointer to it, an unknown
// type, variables and (indexed) function and object symbols.
constexpr uint32_t kLibctfEveryKindTypes = 33;  // the slices of enum and member included
void libctf_add_every_kind(ctf_dict_t* fp) {
  auto ok = [&](ctf_id_t id) {
    EXPECT_NE(id, CTF_ERR) << ctf_errmsg(ctf_errno(fp));
    return id;
  };
  auto ok0 = [&](int r) { EXPECT_EQ(r, 0) << ctf_errmsg(ctf_errno(fp)); };
  const ctf_encoding_t e_int{CTF_INT_SIGNED, 0, 32}, e_uint{0, 0, 32}, e_char{CTF_INT_SIGNED | CTF_INT_CHAR, 0, 8},
      e_bool{CTF_INT_BOOL, 0, 8}, e_long{CTF_INT_SIGNED, 0, 64}, e_double{CTF_FP_DOUBLE, 0, 64},
      e_cplx{CTF_FP_CPLX, 0, 64}, e_bits3{0, 0, 3}, e_bits5{0, 2, 5};
  const ctf_id_t i = ok(ctf_add_integer(fp, CTF_ADD_ROOT, "int", &e_int));
  const ctf_id_t u = ok(ctf_add_integer(fp, CTF_ADD_ROOT, "unsigned int", &e_uint));
  const ctf_id_t c = ok(ctf_add_integer(fp, CTF_ADD_ROOT, "char", &e_char));
  ok(ctf_add_integer(fp, CTF_ADD_ROOT, "_Bool", &e_bool));
  ok(ctf_add_integer(fp, CTF_ADD_NONROOT, "int", &e_long));  // a second, hidden "int"
  const ctf_id_t d = ok(ctf_add_float(fp, CTF_ADD_ROOT, "double", &e_double));
  ok(ctf_add_float(fp, CTF_ADD_ROOT, "float _Complex", &e_cplx));
  const ctf_id_t pc = ok(ctf_add_pointer(fp, CTF_ADD_ROOT, c));
  const ctf_id_t cc = ok(ctf_add_const(fp, CTF_ADD_ROOT, c));
  const ctf_id_t vi = ok(ctf_add_volatile(fp, CTF_ADD_ROOT, i));
  ok(ctf_add_restrict(fp, CTF_ADD_ROOT, ok(ctf_add_pointer(fp, CTF_ADD_ROOT, vi))));
  ctf_arinfo_t ai{i, u, 5};
  const ctf_id_t a5 = ok(ctf_add_array(fp, CTF_ADD_ROOT, &ai));
  ctf_arinfo_t ai2{a5, u, 3};
  const ctf_id_t a35 = ok(ctf_add_array(fp, CTF_ADD_ROOT, &ai2));
  const ctf_id_t color = ok(ctf_add_enum(fp, CTF_ADD_ROOT, "color"));
  ok0(ctf_add_enumerator(fp, color, "RED", 0));
  ok0(ctf_add_enumerator(fp, color, "GREEN", 1));
  ok0(ctf_add_enumerator(fp, color, "BLUE", -7));
  // An encoded enum is a slice of the enum of that name (added first).
  ok0(ctf_add_enumerator(fp, ok(ctf_add_enum(fp, CTF_ADD_ROOT, "small")), "S0", 0));
  ok(ctf_add_enum_encoded(fp, CTF_ADD_NONROOT, "small", &e_bits5));
  const ctf_id_t bits = ok(ctf_add_slice(fp, CTF_ADD_NONROOT, u, &e_bits3));
  const ctf_id_t s = ok(ctf_add_struct(fp, CTF_ADD_ROOT, "s"));
  ok0(ctf_add_member(fp, s, "x", i));
  ok0(ctf_add_member_offset(fp, s, "flag", bits, 32));
  ok0(ctf_add_member_encoded(fp, s, "more", u, 35, e_bits5));
  ok0(ctf_add_member(fp, s, "arr", a35));
  ok0(ctf_add_member(fp, s, "d", d));
  ok0(ctf_add_member(fp, s, "next", ok(ctf_add_pointer(fp, CTF_ADD_ROOT, s))));
  ok0(ctf_add_member(fp, s, "hue", color));
  const ctf_id_t un = ok(ctf_add_union(fp, CTF_ADD_ROOT, nullptr));
  ok0(ctf_add_member(fp, un, "p", pc));
  ok0(ctf_add_member(fp, un, "d", d));
  ok0(ctf_add_member(fp, s, nullptr, un));  // an anonymous member
  const ctf_id_t sized = ok(ctf_add_struct_sized(fp, CTF_ADD_ROOT, "padded", 64));
  ok0(ctf_add_member_offset(fp, sized, "tail", i, 480));
  ok(ctf_add_union_sized(fp, CTF_ADD_ROOT, "empty_u", 16));
  ok(ctf_add_forward(fp, CTF_ADD_ROOT, "later", CTF_K_UNION));
  ok(ctf_add_forward(fp, CTF_ADD_ROOT, "opaque", CTF_K_STRUCT));
  ok(ctf_add_forward(fp, CTF_ADD_ROOT, "efwd", CTF_K_ENUM));
  const ctf_id_t td = ok(ctf_add_typedef(fp, CTF_ADD_ROOT, "s_t", s));
  const ctf_id_t args[] = {i, cc, td};
  ctf_funcinfo_t fi{i, 3, CTF_FUNC_VARARG};
  const ctf_id_t fn = ok(ctf_add_function(fp, CTF_ADD_ROOT, &fi, args));
  ok(ctf_add_typedef(fp, CTF_ADD_ROOT, "handler", ok(ctf_add_pointer(fp, CTF_ADD_ROOT, fn))));
  ctf_funcinfo_t fv{0, 0, 0};
  const ctf_id_t fvoid = ok(ctf_add_function(fp, CTF_ADD_ROOT, &fv, nullptr));
  ok(ctf_add_unknown(fp, CTF_ADD_ROOT, "mystery"));
  ok0(ctf_add_variable(fp, "global_s", td));
  ok0(ctf_add_variable(fp, "a_var", a5));
  ok0(ctf_add_objt_sym(fp, "obj", s));
  ok0(ctf_add_func_sym(fp, "main", fn));
  ok0(ctf_add_func_sym(fp, "abort", fvoid));
}

// libctf's ctf_write_mem of `fp`: compressed when the dict is at least
// `threshold` bytes, byte-swapped when `foreign`.
std::string libctf_write_mem(ctf_dict_t* fp, size_t threshold, bool foreign) {
  if (foreign) setenv("LIBCTF_WRITE_FOREIGN_ENDIAN", "1", 1);
  size_t size = 0;
  unsigned char* buf = ctf_write_mem(fp, &size, threshold);
  if (foreign) unsetenv("LIBCTF_WRITE_FOREIGN_ENDIAN");
  EXPECT_NE(buf, nullptr) << ctf_errmsg(ctf_errno(fp));
  std::string out(reinterpret_cast<const char*>(buf), buf ? size : 0);
  free(buf);
  return out;
}

TEST(CtfLibctfWritten, EveryKindBothByteOrdersAndCompressed) {
  for (bool foreign : {false, true}) {
    for (size_t threshold : {static_cast<size_t>(-1), size_t{0}}) {
      const std::string what =
          std::string(foreign ? "foreign-endian" : "native") + (threshold == 0 ? " compressed" : "");
      int err = 0;
      ctf_dict_t* w = ctf_create(&err);
      ASSERT_NE(w, nullptr) << ctf_errmsg(err);
      libctf_add_every_kind(w);
      const std::string bytes = libctf_write_mem(w, threshold, foreign);
      ctf_dict_close(w);
      ASSERT_GT(bytes.size(), 40u) << what;
      ctf_dict_t* fp = libctf_open_raw(bytes);
      ASSERT_NE(fp, nullptr) << what;
      EXPECT_EQ(our_dict_dump(bytes), libctf_dump(fp)) << what;
      auto d = CtfDict::open(bytes_of(bytes), "libctf", validating());
      ASSERT_TRUE(d.ok()) << what << ": " << d.error().message();
      EXPECT_EQ(d->little_endian(), !foreign) << what;
      EXPECT_EQ(d->compressed(), threshold == 0) << what;
      EXPECT_EQ(expect_types_equal(*d, fp, what), kLibctfEveryKindTypes) << what;
      ctf_dict_close(fp);
    }
  }
}

TEST(CtfLibctfWritten, ArchiveWithParentAndChildBothByteOrders) {
  for (bool foreign : {false, true}) {
    const std::string what = foreign ? "foreign-endian" : "native";
    int err = 0;
    ctf_dict_t* parent = ctf_create(&err);
    ASSERT_NE(parent, nullptr) << ctf_errmsg(err);
    libctf_add_every_kind(parent);
    ctf_dict_t* child = ctf_create(&err);
    ASSERT_NE(child, nullptr) << ctf_errmsg(err);
    ASSERT_EQ(ctf_import(child, parent), 0) << ctf_errmsg(ctf_errno(child));
    ASSERT_EQ(ctf_parent_name_set(child, "shared_ctf"), 0);
    const ctf_id_t s = ctf_lookup_by_name(child, "struct s");
    ASSERT_NE(s, CTF_ERR);
    const ctf_id_t own = ctf_add_pointer(child, CTF_ADD_ROOT, s);
    ASSERT_NE(own, CTF_ERR) << ctf_errmsg(ctf_errno(child));
    EXPECT_EQ(own, static_cast<ctf_id_t>(0x80000001u));
    const ctf_id_t mine = ctf_add_struct(child, CTF_ADD_ROOT, "mine");
    ASSERT_EQ(ctf_add_member(child, mine, "p", own), 0) << ctf_errmsg(ctf_errno(child));
    ASSERT_EQ(ctf_add_member(child, mine, "i", ctf_lookup_by_name(child, "int")), 0);
    ASSERT_EQ(ctf_add_variable(child, "the_mine", mine), 0);
    test::TempDir dir;
    const std::string path = dir / "libctf.ctfa";
    const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_RDWR, 0644);
    ASSERT_GE(fd, 0);
    ctf_dict_t* dicts[] = {parent, child};
    const char* names[] = {"shared_ctf", "kid"};
    if (foreign) setenv("LIBCTF_WRITE_FOREIGN_ENDIAN", "1", 1);
    const int written = ctf_arc_write_fd(fd, dicts, 2, names, static_cast<size_t>(-1));
    if (foreign) unsetenv("LIBCTF_WRITE_FOREIGN_ENDIAN");
    ::close(fd);
    ASSERT_EQ(written, 0) << ctf_errmsg(ctf_errno(parent));
    ctf_dict_close(child);
    ctf_dict_close(parent);

    // Each member dumps and types as libctf's archive reader has it.
    CtfFileOptions fo;
    fo.parent_member = "shared_ctf";
    auto f = ctf_open_file(path, fo);
    ASSERT_TRUE(f.ok()) << what << ": " << f.error().message();
    ASSERT_EQ(f->dicts.size(), 2u);
    ctf_archive_t* arc = ctf_arc_open(path.c_str(), &err);
    ASSERT_NE(arc, nullptr) << ctf_errmsg(err);
    for (const auto& e : f->dicts) {
      ctf_dict_t* fp = ctf_dict_open(arc, e.name.c_str(), &err);  // the kid imports shared_ctf
      ASSERT_NE(fp, nullptr) << what << " " << e.name << ": " << ctf_errmsg(err);
      std::string ours;
      ASSERT_TRUE(ctf_dump_dict(e.dict, ours).ok());
      EXPECT_EQ(ours, libctf_dump(fp)) << what << " " << e.name;
      EXPECT_EQ(e.dict.little_endian(), !foreign) << what << " " << e.name;
      EXPECT_EQ(e.dict.is_child(), e.name == "kid");
      EXPECT_EQ(expect_types_equal(e.dict, fp, what + " " + e.name), e.name == "kid" ? 2u : kLibctfEveryKindTypes);
      ctf_dict_close(fp);
    }
    ctf_arc_close(arc);
    // And objdump's dump of it in an ELF object's .ctf section.
    if (!dump_equals_objdump(path, dir.path())) GTEST_SKIP() << "no cc to wrap the archive in an ELF object";
  }
}

}  // namespace
}  // namespace mmar
