// SPDX-License-Identifier: BSD-2-Clause
// CTF data models: a 32-bit corpus (i686 cross gcc -gctf) and a 64-bit one,
// with binutils 2.40 as the oracle. `mmar ctf dump` of an ILP32 object is
// `objdump --ctf`'s, its types' sizes and alignments libctf's (4-byte
// pointers and longs); `mmar create --format ctf` stores the objects'
// dicts (not the objects) under the model the inputs imply, which libctf
// (`ctf_arc_open`) then applies; inputs of two models are a usage error.
#include <ctf-api.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "ctf/container.h"
#include "mmar/archive.h"
#include "mmar/ctf.h"
#include "support/test_support.h"

// (libctf's own leaks are suppressed for the whole binary in ctf_test.cpp.)

namespace mmar {
namespace {

const char* const kA =
    "struct s { int x; long y; };\nstruct s sa; long la; void *pa;\nint fa(struct s *p) { return p->x; }\n";
const char* const kB = "struct s { int x; char y; };\nstruct s sb; long *lpb;\nint fb(struct s *p) { return p->y; }\n";

// The corpus: many_types.c for i686 (m32.o) and for the host (m64.o), an
// i686 `ld -r --ctf-share-types` link whose .ctf is a CTF archive
// (linked32.o), an object without CTF (noctf.o) and m32.o's raw dict
// (m32.ctf). Built once per test binary, in the build tree, as ctf_test.cpp
// builds its corpus (ctest runs each test in its own process).
class CtfModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string out;
    if (test::run("i686-linux-gnu-gcc -gctf -x c -c -o /dev/null - </dev/null 2>&1", &out) != 0) {
      skip_reason = new std::string("no i686-linux-gnu-gcc with -gctf (Debian gcc-i686-linux-gnu): " + out);
      return;
    }
    corpus = new std::string(std::string(MMAR_CTF_CORPUS_DIR) + "-model");
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
    if (!std::getline(stamp, line) || line != key) {
      std::filesystem::remove(*corpus + "/stamp");
      build(*corpus);
      if (build_error->empty()) std::ofstream(*corpus + "/stamp") << key << "\n";
    }
    flock(lock, LOCK_UN);
    ::close(lock);
  }

  static void build(const std::string& d) {
    std::ofstream(d + "/a.c") << kA;
    std::ofstream(d + "/b.c") << kB;
    const std::string src = std::string(MMAR_SOURCE_DIR) + "/tests/inputs/ctf/many_types.c";
    const std::string flags = " -gctf -fno-eliminate-unused-debug-types -c ";
    for (const std::string& cmd : {
             "i686-linux-gnu-gcc" + flags + src + " -o m32.o",
             "gcc" + flags + src + " -o m64.o",
             "i686-linux-gnu-gcc" + flags + "a.c -o a32.o",
             "i686-linux-gnu-gcc" + flags + "b.c -o b32.o",
             std::string("i686-linux-gnu-ld -r --ctf-share-types=share-duplicated a32.o b32.o -o linked32.o"),
             std::string("gcc -c a.c -o noctf.o"),
         }) {
      std::string log;
      if (test::run("cd '" + d + "' && " + cmd + " 2>&1", &log) != 0) *build_error += cmd + ": " + log;
    }
    // m32.o's .ctf section alone: a raw dict.
    auto elf = Source::open(d + "/m32.o");
    if (!elf.ok()) return void(*build_error += elf.error().message());
    auto bytes = elf->read(0, elf->size());
    if (!bytes.ok()) return void(*build_error += bytes.error().message());
    auto in = ctf_container::archive_input(bytes->span(), "m32.o");
    if (!in.ok() || in->dicts.size() != 1) return void(*build_error += "m32.o: no lone dict");
    std::ofstream(d + "/m32.ctf", std::ios::binary)
        .write(reinterpret_cast<const char*>(in->dicts[0].dict.data()),
               static_cast<std::streamsize>(in->dicts[0].dict.size()));
  }

  void SetUp() override {
    if (skip_reason) GTEST_SKIP() << *skip_reason;
    ASSERT_TRUE(build_error->empty()) << *build_error;
  }

  static std::string at(const std::string& name) { return *corpus + "/" + name; }

  // `mmar create --format ctf` in the corpus directory (member names are
  // the file names); the exit status, with stdout and stderr in `out`.
  static int create(const std::string& archive, const std::string& args, std::string* out) {
    return test::run(
        std::string(MMAR_BIN) + " create --format ctf -C '" + *corpus + "' -f '" + archive + "' " + args + " 2>&1",
        out);
  }

  static std::string* corpus;
  static std::string* skip_reason;
  static std::string* build_error;
};
std::string* CtfModel::corpus = nullptr;
std::string* CtfModel::skip_reason = nullptr;
std::string* CtfModel::build_error = new std::string;

std::string objdump_ctf(const std::string& path) {
  std::string out;
  EXPECT_EQ(test::run("objdump --ctf=.ctf '" + path + "' 2>/dev/null", &out), 0) << path;
  const size_t at = out.find("Contents of CTF section");
  return at == std::string::npos ? std::string() : out.substr(at);
}

// Every pointer type of a libctf dict has this size; returns how many.
int pointers_of_size(ctf_dict_t* fp, ssize_t want) {
  struct State {
    ctf_dict_t* fp;
    ssize_t want;
    int n = 0;
  } st{fp, want};
  ctf_type_iter_all(
      fp,
      [](ctf_id_t id, int, void* arg) {
        auto* s = static_cast<State*>(arg);
        if (ctf_type_kind(s->fp, id) != CTF_K_POINTER) return 0;
        EXPECT_EQ(ctf_type_size(s->fp, id), s->want) << "type " << id;
        ++s->n;
        return 0;
      },
      &st);
  return st.n;
}

// What libctf sees of a CTF archive: its dicts' pointer size and `long`'s
// size per member name.
std::map<std::string, std::pair<ssize_t, ssize_t>> libctf_sizes(const std::string& path) {
  std::map<std::string, std::pair<ssize_t, ssize_t>> out;
  int err = 0;
  ctf_archive_t* arc = ctf_arc_open(path.c_str(), &err);
  EXPECT_NE(arc, nullptr) << path << ": " << ctf_errmsg(err);
  if (arc == nullptr) return out;
  ctf_next_t* it = nullptr;
  const char* name = nullptr;
  while (ctf_dict_t* fp = ctf_archive_next(arc, &it, &name, 0, &err)) {
    std::pair<ctf_dict_t*, ctf_id_t> found{fp, CTF_ERR};
    ctf_type_iter_all(
        fp,
        [](ctf_id_t id, int, void* arg) {
          auto* p = static_cast<std::pair<ctf_dict_t*, ctf_id_t>*>(arg);
          if (p->second == CTF_ERR && ctf_type_kind(p->first, id) == CTF_K_POINTER) p->second = id;
          return 0;
        },
        &found);
    const ctf_id_t lng = ctf_lookup_by_name(fp, "long int");
    out[name] = {found.second == CTF_ERR ? -1 : ctf_type_size(fp, found.second),
                 lng == CTF_ERR ? -1 : ctf_type_size(fp, lng)};
    ctf_dict_close(fp);
  }
  ctf_close(arc);
  return out;
}

TEST_F(CtfModel, DumpOf32BitObjectsEqualsObjdump) {
  for (const char* f : {"m32.o", "linked32.o", "m64.o"}) {
    const std::string want = objdump_ctf(at(f));
    ASSERT_FALSE(want.empty()) << f;
    auto file = ctf_open_file(at(f));
    ASSERT_TRUE(file.ok()) << file.error().message();
    std::string got;
    ASSERT_TRUE(ctf_dump(*file, got).ok());
    EXPECT_EQ(got, want) << f;
  }
  // The point of the corpus: objdump gives an i686 object 4-byte pointers.
  EXPECT_NE(objdump_ctf(at("m32.o")).find("(kind 3) void * (size 0x4)"), std::string::npos);
}

// Every type's size and alignment as libctf computes them, and the ILP32
// sizes themselves.
TEST_F(CtfModel, TypesOf32BitObjectEqualLibctf) {
  auto ours = ctf_open_file(at("m32.o"));
  ASSERT_TRUE(ours.ok()) << ours.error().message();
  ASSERT_EQ(ours->dicts.size(), 1u);
  const CtfDict& d = ours->dicts[0].dict;
  int err = 0;
  ctf_archive_t* arc = ctf_open(at("m32.o").c_str(), nullptr, &err);
  ASSERT_NE(arc, nullptr) << ctf_errmsg(err);
  ctf_dict_t* fp = ctf_dict_open(arc, nullptr, &err);
  ASSERT_NE(fp, nullptr) << ctf_errmsg(err);
  uint32_t pointers = 0;
  for (uint32_t index = 1; index <= d.type_count(); ++index) {
    const uint32_t id = d.id_of_index(index);
    auto size = d.type_size(id);
    auto align = d.type_align(id);
    EXPECT_EQ(size.ok() ? *size : -1, ctf_type_size(fp, id)) << id;
    EXPECT_EQ(align.ok() ? *align : -1, ctf_type_align(fp, id)) << id;
    if (*d.type_kind(id) == CtfKind::pointer) {
      EXPECT_EQ(*size, 4) << id;
      EXPECT_EQ(*align, 4) << id;
      ++pointers;
    }
  }
  EXPECT_GT(pointers, 3u);
  auto lng = d.find("long int");
  ASSERT_TRUE(lng.ok());
  EXPECT_EQ(*d.type_size(*lng), 4);
  EXPECT_EQ(ctf_type_size(fp, ctf_lookup_by_name(fp, "long int")), 4);
  EXPECT_EQ(pointers_of_size(fp, 4), static_cast<int>(pointers));
  ctf_dict_close(fp);
  ctf_close(arc);
}

TEST_F(CtfModel, ArchiveOf32BitObjectIsIlp32) {
  test::TempDir tmp;
  std::string out;
  ASSERT_EQ(create(tmp / "m32.ctfa", "m32.o", &out), 0) << out;
  auto a = Archive::open(tmp / "m32.ctfa");
  ASSERT_TRUE(a.ok()) << a.error().message();
  EXPECT_EQ(a->ctf_model(), 1u);
  // The member is the object's .ctf dict, not the object.
  auto m = a->find("m32.o");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->size, std::filesystem::file_size(at("m32.ctf")));
  auto sizes = libctf_sizes(tmp / "m32.ctfa");
  ASSERT_EQ(sizes.size(), 1u);
  EXPECT_EQ(sizes["m32.o"], std::make_pair(ssize_t{4}, ssize_t{4}));
  // Every pointer, through libctf.
  int err = 0;
  ctf_archive_t* arc = ctf_arc_open((tmp / "m32.ctfa").c_str(), &err);
  ASSERT_NE(arc, nullptr) << ctf_errmsg(err);
  ctf_dict_t* fp = ctf_dict_open(arc, "m32.o", &err);
  ASSERT_NE(fp, nullptr) << ctf_errmsg(err);
  EXPECT_GT(pointers_of_size(fp, 4), 3);
  ctf_dict_close(fp);
  ctf_arc_close(arc);
  // Repacked, the archive keeps its model and its member names.
  ASSERT_EQ(test::run(std::string(MMAR_BIN) + " create --format ctf -f '" + tmp / "again.ctfa" + "' '" +
                          tmp / "m32.ctfa" + "' 2>&1",
                      &out),
            0)
      << out;
  auto again = Archive::open(tmp / "again.ctfa");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->ctf_model(), 1u);
  EXPECT_TRUE(again->find("m32.o").ok());
}

TEST_F(CtfModel, ArchivesOf64BitObjectsAndRawDictsAreLp64) {
  test::TempDir tmp;
  std::string out;
  ASSERT_EQ(create(tmp / "m64.ctfa", "m64.o", &out), 0) << out;
  auto a = Archive::open(tmp / "m64.ctfa");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->ctf_model(), 2u);
  EXPECT_EQ((libctf_sizes(tmp / "m64.ctfa")["m64.o"]), std::make_pair(ssize_t{8}, ssize_t{8}));
  // A raw dict records no model: libctf's default, LP64, unless told.
  ASSERT_EQ(create(tmp / "raw.ctfa", "m32.ctf", &out), 0) << out;
  EXPECT_EQ(Archive::open(tmp / "raw.ctfa")->ctf_model(), 2u);
  ASSERT_EQ(create(tmp / "raw32.ctfa", "--ctf-model ilp32 m32.ctf", &out), 0) << out;
  EXPECT_EQ(Archive::open(tmp / "raw32.ctfa")->ctf_model(), 1u);
  EXPECT_EQ((libctf_sizes(tmp / "raw32.ctfa")["m32.ctf"]), std::make_pair(ssize_t{4}, ssize_t{4}));
  // A raw dict beside an object takes the object's model.
  ASSERT_EQ(create(tmp / "mixed.ctfa", "m32.ctf m32.o", &out), 0) << out;
  EXPECT_EQ(Archive::open(tmp / "mixed.ctfa")->ctf_model(), 1u);
}

// ld's .ctf archive (a parent ".ctf" and a child per conflicting CU): its
// dicts become the members, named as there, so libctf finds the parent;
// the model is the object's class (ld wrote its host's LP64 inside).
TEST_F(CtfModel, ArchiveOfLinkedObjectKeepsItsDicts) {
  test::TempDir tmp;
  std::string out;
  ASSERT_EQ(create(tmp / "linked.ctfa", "linked32.o", &out), 0) << out;
  auto a = Archive::open(tmp / "linked.ctfa");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->ctf_model(), 1u);
  auto theirs = ctf_open_file(at("linked32.o"));
  ASSERT_TRUE(theirs.ok()) << theirs.error().message();
  ASSERT_GE(theirs->dicts.size(), 2u);
  EXPECT_EQ(a->size(), theirs->dicts.size());
  for (const auto& d : theirs->dicts) EXPECT_TRUE(a->find(d.name).ok()) << d.name;
  auto sizes = libctf_sizes(tmp / "linked.ctfa");
  ASSERT_EQ(sizes.size(), theirs->dicts.size());
  for (const auto& [name, s] : sizes) {
    if (s.first != -1) {
      EXPECT_EQ(s.first, 4) << name;
    }
    EXPECT_EQ(s.second, 4) << name;  // children find "long int" in the parent
  }
  // Its ".ctf" beside another archive's ".ctf": refused, naming both inputs.
  EXPECT_EQ(create(tmp / "twice.ctfa", "linked32.o " + tmp / "linked.ctfa", &out), 2) << out;
  EXPECT_NE(out.find("duplicate member name '.ctf'"), std::string::npos) << out;
}

TEST_F(CtfModel, InputsOfTwoModelsAreAUsageError) {
  test::TempDir tmp;
  std::string out;
  EXPECT_EQ(create(tmp / "both.ctfa", "m32.o m64.o", &out), 2) << out;
  EXPECT_NE(out.find("'m32.o' is ILP32 but 'm64.o' is LP64"), std::string::npos) << out;
  EXPECT_NE(out.find("--ctf-model"), std::string::npos) << out;
  EXPECT_NE(::access((tmp / "both.ctfa").c_str(), F_OK), 0);
  // An explicit model wins.
  ASSERT_EQ(create(tmp / "both.ctfa", "--ctf-model lp64 m32.o m64.o", &out), 0) << out;
  EXPECT_EQ(Archive::open(tmp / "both.ctfa")->ctf_model(), 2u);
}

TEST_F(CtfModel, ObjectWithoutCtfIsAnError) {
  test::TempDir tmp;
  std::string out;
  EXPECT_EQ(create(tmp / "none.ctfa", "m32.o noctf.o", &out), 1) << out;
  EXPECT_NE(out.find("noctf.o: an ELF object without a .ctf section"), std::string::npos) << out;
}

}  // namespace
}  // namespace mmar
