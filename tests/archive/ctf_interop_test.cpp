// SPDX-License-Identifier: BSD-2-Clause
// binutils libctf as the oracle for the CTF archive format, both ways.
#include <ctf-api.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <map>
#include <vector>

#include "support/test_support.h"

namespace mmar {
namespace {

using test::TempDir;

// A real CTF dict holding one integer type of the given name.
ctf_dict_t* make_dict(const char* type_name, uint32_t bits) {
  int err = 0;
  ctf_dict_t* d = ctf_create(&err);
  EXPECT_NE(d, nullptr) << ctf_errmsg(err);
  ctf_encoding_t enc{CTF_INT_SIGNED, 0, bits};
  EXPECT_NE(ctf_add_integer(d, CTF_ADD_ROOT, type_name, &enc), CTF_ERR);
  EXPECT_EQ(ctf_update(d), 0);
  return d;
}

int collect(const char* name, const void* content, size_t len, void* arg) {
  auto* out = static_cast<std::map<std::string, std::string>*>(arg);
  (*out)[name] = std::string(static_cast<const char*>(content), len);
  return 0;
}

TEST(CtfInterop, ReadsArchivesLibctfWrites) {
  TempDir tmp;
  const char* names[] = {"zeta", "alpha", ".ctf", "mid/dle"};
  const char* types[] = {"int", "long", "short", "char"};
  ctf_dict_t* dicts[4];
  for (int i = 0; i < 4; ++i) dicts[i] = make_dict(types[i], 8u << (i % 3));
  std::string path = tmp / "libctf.ctfa";
  ASSERT_EQ(ctf_arc_write(path.c_str(), dicts, 4, names, 0), 0);
  for (auto* d : dicts) ctf_dict_close(d);

  // What libctf itself sees.
  int err = 0;
  ctf_archive_t* arc = ctf_arc_open(path.c_str(), &err);
  ASSERT_NE(arc, nullptr) << ctf_errmsg(err);
  std::map<std::string, std::string> theirs;
  ASSERT_EQ(ctf_archive_raw_iter(arc, collect, &theirs), 0);
  ctf_arc_close(arc);
  ASSERT_EQ(theirs.size(), 4u);

  for (bool pread : {false, true}) {
    OpenOptions o;
    o.force_pread = pread;
    auto a = Archive::open(path, o);
    ASSERT_TRUE(a.ok()) << a.error().message();
    EXPECT_EQ(a->format(), Format::ctf);
    std::map<std::string, std::string> ours;
    ASSERT_TRUE(a->for_each([&](const Member& m) -> Result<void> {
                   EXPECT_EQ(m.kind, Kind::ctf);
                   auto b = a->read(m);
                   EXPECT_TRUE(b.ok());
                   ours[std::string(m.name)] = std::string(b->str());
                   return success();
                 }).ok());
    // libctf's records run past each dict (see DictsAreBoundedByTheirHeader):
    // ours are the dicts, theirs those plus the tail.
    ASSERT_EQ(ours.size(), theirs.size());
    for (const auto& [name, dict] : ours) {
      EXPECT_LE(dict.size(), theirs[name].size()) << name;
      EXPECT_EQ(dict, theirs[name].substr(0, dict.size())) << name;
    }
    EXPECT_EQ(a->read("alpha")->str(), ours["alpha"]);
    EXPECT_TRUE(a->verify()->empty());
  }
}

TEST(CtfInterop, LibctfReadsArchivesWeWrite) {
  TempDir tmp;
  const std::map<std::string, std::pair<const char*, uint32_t>> want = {
      {"vmlinux", {"int", 32}}, {"ext4", {"long", 64}}, {"a/b", {"short", 16}}};
  WriteOptions o;
  o.format = Format::ctf;
  Writer w(o);
  for (const auto& [name, type] : want) {
    ctf_dict_t* d = make_dict(type.first, type.second);
    size_t size = 0;
    unsigned char* buf = ctf_write_mem(d, &size, static_cast<size_t>(-1));
    ASSERT_NE(buf, nullptr);
    std::vector<std::byte> bytes(reinterpret_cast<std::byte*>(buf), reinterpret_cast<std::byte*>(buf) + size);
    free(buf);
    ctf_dict_close(d);
    ASSERT_TRUE(w.add_bytes(name, std::move(bytes)).ok());
  }
  std::string path = tmp / "ours.ctfa";
  ASSERT_TRUE(w.write(path).ok());

  int err = 0;
  ctf_archive_t* arc = ctf_arc_open(path.c_str(), &err);
  ASSERT_NE(arc, nullptr) << ctf_errmsg(err);
  EXPECT_EQ(ctf_archive_count(arc), want.size());
  for (const auto& [name, type] : want) {
    ctf_dict_t* d = ctf_dict_open(arc, name.c_str(), &err);
    ASSERT_NE(d, nullptr) << name << ": " << ctf_errmsg(err);
    ctf_id_t id = ctf_lookup_by_name(d, type.first);
    ASSERT_NE(id, CTF_ERR) << name;
    ctf_encoding_t enc{};
    ASSERT_EQ(ctf_type_encoding(d, id, &enc), 0);
    EXPECT_EQ(enc.cte_bits, type.second);
    ctf_dict_close(d);
  }
  EXPECT_EQ(ctf_dict_open(arc, "missing", &err), nullptr);
  ctf_arc_close(arc);

  // And we read our own CTF archive back.
  auto a = Archive::open(path);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->size(), want.size());
}

TEST(CtfInterop, MalformedCtfArchives) {
  TempDir tmp;
  WriteOptions o;
  o.format = Format::ctf;
  Writer w(o);
  ASSERT_TRUE(w.add_bytes("one", test::to_bytes("\xf2\xdf\x04\x00 payload")).ok());
  ASSERT_TRUE(w.write(tmp / "x.ctfa").ok());
  const auto good = test::read_file(tmp / "x.ctfa");
  auto err_of = [](const std::vector<std::byte>& b) -> std::string {
    auto a = Archive::open(Source::borrow(b, "x.ctfa"));
    if (!a.ok()) return a.error().message();
    auto m = a->at(0);
    return m.ok() ? "" : m.error().message();
  };
  auto b = good;
  b[16] = std::byte{0xff};  // ndicts
  EXPECT_NE(err_of(b).find("x.ctfa: CTF archive claims"), std::string::npos) << err_of(b);
  b = good;
  b[40] = std::byte{0xf0};  // modent 0 name offset
  EXPECT_NE(err_of(b).find("member 0: name offset outside the file"), std::string::npos) << err_of(b);
  b = good;
  b[48] = std::byte{0xf0};  // modent 0 ctf offset
  EXPECT_NE(err_of(b).find("member 0: dict offset outside the file"), std::string::npos) << err_of(b);
  b = good;
  b.resize(b.size() - 3);
  EXPECT_NE(err_of(b).find("runs past the end of the file"), std::string::npos) << err_of(b);
}

// Each dict of a libctf archive is bounded by its own CTF header (it ends at
// the end of its string section), not by libctf's longer size word: what
// we read is exactly what ctf_write_mem gives for the dict, and libctf opens
// it. A header that claims more than its record is malformed.
TEST(CtfInterop, DictsAreBoundedByTheirHeader) {
  TempDir tmp;
  ctf_dict_t* d = make_dict("int", 32);
  size_t size = 0;
  unsigned char* buf = ctf_write_mem(d, &size, static_cast<size_t>(-1));
  ASSERT_NE(buf, nullptr);
  const std::string written(reinterpret_cast<const char*>(buf), size);
  free(buf);
  const char* names[] = {"only"};
  std::string path = tmp / "one.ctfa";
  ASSERT_EQ(ctf_arc_write(path.c_str(), &d, 1, names, static_cast<size_t>(-1)), 0);  // uncompressed
  ctf_dict_close(d);
  auto a = Archive::open(path);
  ASSERT_TRUE(a.ok()) << a.error().message();
  auto m = a->find("only");
  ASSERT_TRUE(m.ok()) << m.error().message();
  auto bytes = a->read(*m);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(std::string(bytes->str()), written);
  ctf_sect_t sect{".ctf", bytes->data(), bytes->size(), 0};
  int err = 0;
  ctf_dict_t* back = ctf_bufopen(&sect, nullptr, nullptr, &err);
  ASSERT_NE(back, nullptr) << ctf_errmsg(err);
  EXPECT_NE(ctf_lookup_by_name(back, "int"), CTF_ERR);
  ctf_dict_close(back);

  // cth_strlen (header offset 48) made larger than the record.
  auto raw = test::read_file(path);
  const uint64_t dict_at = m->data_offset;
  raw[dict_at + 50] = std::byte{0x10};
  auto bad = Archive::open(Source::borrow(raw, "bad.ctfa"));
  ASSERT_TRUE(bad.ok());
  auto bm = bad->at(0);
  ASSERT_FALSE(bm.ok());
  EXPECT_NE(bm.error().message().find("bad.ctfa: member 0"), std::string::npos) << bm.error().message();
  EXPECT_NE(bm.error().message().find("past its"), std::string::npos) << bm.error().message();
}

// ld names the dicts of a CTF archive by absolute paths: extract strips the
// leading '/', as tar does, and says so once.
TEST(CtfInterop, ExtractStripsLeadingSlashes) {
  TempDir tmp;
  ctf_dict_t* dicts[2] = {make_dict("int", 32), make_dict("long", 64)};
  const char* names[] = {"/usr/src/a.c", "/usr/src/b.c"};
  std::string path = tmp / "ld.ctfa";
  ASSERT_EQ(ctf_arc_write(path.c_str(), dicts, 2, names, 0), 0);
  for (auto* d : dicts) ctf_dict_close(d);
  std::string out;
  ASSERT_EQ(test::run(std::string(MMAR_BIN) + " extract -f '" + path + "' -C '" + (tmp / "x") + "' 2>&1", &out), 0)
      << out;
  EXPECT_EQ(out, "mmar: removing leading '/' from member names\n");
  auto a = Archive::open(path);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(test::read_file(tmp / "x/usr/src/a.c"), [&] {
    auto b = a->read("/usr/src/a.c");
    return std::vector<std::byte>(b->data(), b->data() + b->size());
  }());
  EXPECT_EQ(test::read_file(tmp / "x/usr/src/b.c").size(), a->find("/usr/src/b.c")->size);
  // A selected name is given without the '/'.
  ASSERT_EQ(test::run(std::string(MMAR_BIN) + " extract -f '" + path + "' -C '" + (tmp / "y") + "' usr/src/b.c 2>&1",
                      &out),
            0)
      << out;
  EXPECT_EQ(access((tmp / "y/usr/src/b.c").c_str(), F_OK), 0);
  EXPECT_NE(access((tmp / "y/usr/src/a.c").c_str(), F_OK), 0);
}

// The data model travels in the archive header: an ILP32 archive written
// by mmar gives libctf 4-byte pointers, as a 32-bit libctf archive does.
TEST(CtfInterop, TheDataModelIsKept) {
  TempDir tmp;
  int err = 0;
  ctf_dict_t* d = ctf_create(&err);
  ASSERT_NE(d, nullptr);
  ctf_encoding_t enc{CTF_INT_SIGNED, 0, 32};
  ctf_id_t i = ctf_add_integer(d, CTF_ADD_ROOT, "int", &enc);
  ASSERT_NE(i, CTF_ERR);
  ctf_id_t ptr = ctf_add_pointer(d, CTF_ADD_ROOT, i);
  ASSERT_NE(ptr, CTF_ERR);
  ASSERT_NE(ctf_add_typedef(d, CTF_ADD_ROOT, "intp", ptr), CTF_ERR);
  ASSERT_EQ(ctf_update(d), 0);
  size_t size = 0;
  unsigned char* raw = ctf_write_mem(d, &size, 0);
  ASSERT_NE(raw, nullptr);
  std::vector<std::byte> dict(reinterpret_cast<std::byte*>(raw), reinterpret_cast<std::byte*>(raw) + size);
  free(raw);
  ctf_dict_close(d);
  for (uint32_t model : {1u, 2u}) {
    Writer w({.format = Format::ctf, .ctf_model = model});
    ASSERT_TRUE(w.add_bytes("obj", dict).ok());
    const std::string path = tmp / ("m" + std::to_string(model) + ".ctfa");
    ASSERT_TRUE(w.write(path).ok());
    auto a = Archive::open(path);
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->ctf_model(), model);
    ctf_archive_t* arc = ctf_arc_open(path.c_str(), &err);
    ASSERT_NE(arc, nullptr) << ctf_errmsg(err);
    ctf_dict_t* fp = ctf_dict_open(arc, "obj", &err);
    ASSERT_NE(fp, nullptr) << ctf_errmsg(err);
    ctf_id_t t = ctf_lookup_by_name(fp, "intp");
    ASSERT_NE(t, CTF_ERR);
    EXPECT_EQ(ctf_type_size(fp, t), model == 1 ? 4 : 8) << "model " << model;
    ctf_dict_close(fp);
    ctf_arc_close(arc);
  }
  std::string out;
  EXPECT_EQ(test::run(std::string(MMAR_BIN) + " create --format ctf --ctf-model x86 -f " + tmp / "x.ctfa" + " " +
                          tmp / "m1.ctfa" + " 2>&1",
                      &out),
            2)
      << out;
}

}  // namespace
}  // namespace mmar
