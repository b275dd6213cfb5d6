// SPDX-License-Identifier: BSD-2-Clause
// Files written on another host read the same here. The inputs are checked
// in, written on x86-64 (little-endian, like the format): the fuzz seeds in
// fuzz/corpus (archives of every layout: raw, zstd, xz, frame streams, a
// name fence, an update chain with extents and tombstones, a libctf archive;
// raw and split BTF from pahole and gcc). What each one decodes to (every
// member's metadata and bytes; every BTF type, the C header, the stored
// index built from it) is a golden text in tests/inputs/host_written, also
// made on x86-64. The cross build (`./x cross`) runs this on s390x
// (big-endian) under qemu-user: a field decoded in host order, or an index
// written in it, changes the text.
//
// To remake the goldens after a deliberate change, on x86-64:
//   MMAR_WRITE_GOLDEN=1 build/release/tests/mmar_tests --gtest_filter='HostWritten*'
#include <elf.h>
#include <gtest/gtest.h>
#include <xxhash.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "elf/layout.h"
#include "mmar/archive.h"
#include "mmar/btf.h"
#include "support/hex.h"
#include "support/test_support.h"

namespace mmar {
namespace {

const std::string kSource = MMAR_SOURCE_DIR;
const std::string kArchives = kSource + "/fuzz/corpus/archive_reader/";
const std::string kBtf = kSource + "/fuzz/corpus/btf_parser/";
const std::string kGolden = kSource + "/tests/inputs/host_written/";

std::string hash_of(std::span<const std::byte> b) { return hex(XXH3_64bits(b.data(), b.size())); }

// Compare with the golden text, or write it (MMAR_WRITE_GOLDEN set).
void expect_golden(const std::string& name, const std::string& got) {
  const std::string path = kGolden + name + ".txt";
  if (std::getenv("MMAR_WRITE_GOLDEN") != nullptr) {
    test::write_file(path, test::to_bytes(got));
    return;
  }
  const auto want = test::read_file(path);
  ASSERT_FALSE(want.empty()) << path;
  const std::string want_text(reinterpret_cast<const char*>(want.data()), want.size());
  // Line by line, so a failure names the first line that differs.
  size_t a = 0, b = 0, line = 1;
  while (a < want_text.size() || b < got.size()) {
    const size_t ea = std::min(want_text.find('\n', a), want_text.size());
    const size_t eb = std::min(got.find('\n', b), got.size());
    ASSERT_EQ(want_text.substr(a, ea - a), got.substr(b, eb - b)) << path << ":" << line;
    a = ea + 1, b = eb + 1, ++line;
  }
}

// Every member in index order: metadata, then what reading it returns.
std::string archive_manifest(const std::string& file) {
  auto a = Archive::open(kArchives + file);
  if (!a.ok()) return "open: " + a.error().message() + "\n";
  std::string out = std::string(format_name(a->format())) + " members " + std::to_string(a->size()) + " alignment " +
                    std::to_string(a->alignment()) + " generation " + std::to_string(a->generation()) +
                    " ctf_model " + std::to_string(a->ctf_model()) + " fence " +
                    std::to_string(a->has_name_fence()) + "\n";
  for (uint32_t i = 0; i < a->size(); ++i) {
    auto m = a->at(i);
    if (!m.ok()) {
      out += "at " + std::to_string(i) + ": " + m.error().message() + "\n";
      continue;
    }
    // A plain file's mode and mtime are the checkout's, not the file's content.
    const bool plain = a->format() == Format::plain;
    const std::string mtime = plain ? "-" : std::to_string(m->mtime_ns);
    char mode[16] = "-";
    if (!plain) std::snprintf(mode, sizeof mode, "%06o", m->mode);
    out += std::to_string(i) + " " + std::string(m->name) + " " + kind_name(m->kind) + " mode " + mode + " size " +
           std::to_string(m->size) + " stored " + std::to_string(m->stored_size) + " at " + hex(m->data_offset) +
           " xxh3 " + hex(m->xxh3) + " mtime " + mtime + " link " +
           (m->link ? std::to_string(*m->link) : "-") + " framed " + std::to_string(m->framed) + "+" +
           std::to_string(m->stream_offset) + " aligned " + std::to_string(m->page_aligned) + " btf " +
           std::to_string(m->has_btf);
    if (m->chunk_sums) out += " chunk-sums";  // docs/FORMAT.md "Chunk checksums"
    auto found = a->find(m->name);
    if (!found.ok() || found->index != i) out += " FIND-MISMATCH";
    if (!m->attr_bytes.empty()) {  // docs/FORMAT.md "Attributes"
      auto at = a->attributes(*m);
      if (!at.ok()) {
        out += " attributes: " + at.error().message();
      } else {
        out += " owner " + std::string(at->has_owner ? "" : "(none) ") + std::to_string(at->uid) + ":" +
               std::to_string(at->gid) + " '" + at->uname + "':'" + at->gname + "' rdev " +
               std::to_string(at->rdev_major) + "," + std::to_string(at->rdev_minor) + " link_id " +
               std::to_string(at->link_id);
        for (const auto& [xn, xv] : at->xattrs) out += " xattr " + xn + "=" + xv;
      }
    }
    if (m->is_dir()) {
      out += "\n";
      continue;
    }
    auto bytes = a->read(*m);
    if (!bytes.ok()) {
      out += " read: " + bytes.error().message() + "\n";
      continue;
    }
    out += " read " + std::to_string(bytes->size()) + " " + hash_of(bytes->span());
    // A range from the middle, through the path that inflates only the frames it needs.
    if (bytes->size() > 10) {
      const uint64_t off = bytes->size() / 3;
      auto part = a->read_bytes(*m, off, 7);
      const bool same = part.ok() && part->size() == 7 &&
                        std::memcmp(part->data(), bytes->data() + off, 7) == 0;
      out += same ? " range-ok" : " RANGE-MISMATCH";
    }
    out += "\n";
  }
  auto problems = a->verify();
  if (!problems.ok()) {
    out += "verify: " + problems.error().message() + "\n";
  } else {
    for (const auto& p : *problems) out += "problem: " + p.message + "\n";
  }
  return out;
}

// Every type of a BTF as bpftool prints it, its C header, and its stored index.
std::string btf_manifest(const Btf& btf) {
  std::string out = std::string(btf.little_endian() ? "little" : "big") + "-endian start " +
                    std::to_string(btf.start_id()) + " str " + std::to_string(btf.str_size()) + "\n";
  if (auto v = btf.validate(); !v.ok()) out += "validate: " + v.error().message() + "\n";
  std::string dump;
  if (auto d = btf_dump_raw(btf, dump); !d.ok()) out += "dump: " + d.error().message() + "\n";
  out += dump;
  std::string header;
  if (auto c = btf_dump_c(btf, header); !c.ok()) out += "c: " + c.error().message() + "\n";
  out += "== C ==\n" + header;
  auto index = btf.build_index(XXH3_64bits(btf.raw().data(), btf.raw().size()));
  if (!index.ok()) {
    out += "index: " + index.error().message() + "\n";
  } else {
    out += "== index == offsets " + std::to_string(index->offsets.size()) + " " + hash_of(index->offsets) +
           " names " + std::to_string(index->names.size()) + " " + hash_of(index->names) + "\n";
  }
  if (auto b = BtfBuilder::from(btf); b.ok()) {
    out += "== rewritten == " + hash_of(b->write()) + "\n";
  } else {
    out += "rewrite: " + b.error().message() + "\n";
  }
  return out;
}

// The fuzz seeds' first byte is the mode (0 raw BTF, 1 split: u32 base
// length, little-endian, then base and split).
std::vector<std::byte> seed_body(const std::string& file) {
  auto bytes = test::read_file(kBtf + file);
  if (!bytes.empty()) bytes.erase(bytes.begin());
  return bytes;
}

class HostWrittenArchive : public ::testing::TestWithParam<const char*> {};

TEST_P(HostWrittenArchive, ReadsAsOnTheWritingHost) { expect_golden(GetParam(), archive_manifest(GetParam())); }

INSTANTIATE_TEST_SUITE_P(HostWritten, HostWrittenArchive,
                         ::testing::Values("mixed_zstd.mmar", "mixed_xz.mmar", "framed.mmar", "framed_xz.mmar",
                                           "fence_81.mmar", "rw_deltas.mmar", "btf_pack.mmar", "libctf_written.ctfa",
                                           "plain_btf", "attributes.mmar", "chunk_sums.mmar", "frames_v1.mmar",
                                           "framed_v2.mmar", "index_compressed.mmar", "index_predicted.mmar",
                                           "attributes_predicted.mmar", "framed_v3.mmar"),
                         [](const auto& param_info) {
                           std::string n = param_info.param;
                           for (char& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

class HostWrittenBtf : public ::testing::TestWithParam<const char*> {};

TEST_P(HostWrittenBtf, ParsesAsOnTheWritingHost) {
  auto btf = Btf::parse(Bytes::from_vector(seed_body(GetParam())), GetParam());
  ASSERT_TRUE(btf.ok()) << btf.error().message();
  expect_golden(GetParam(), btf_manifest(*btf));
}

INSTANTIATE_TEST_SUITE_P(HostWritten, HostWrittenBtf, ::testing::Values("raw_base", "raw_module", "raw_gcc_gbtf"));

TEST(HostWritten, SplitBtfOnItsBase) {
  const auto body = seed_body("split_module_on_base");
  ASSERT_GE(body.size(), 4u);
  const uint32_t base_len = static_cast<uint32_t>(body[0]) | static_cast<uint32_t>(body[1]) << 8 |
                            static_cast<uint32_t>(body[2]) << 16 | static_cast<uint32_t>(body[3]) << 24;
  ASSERT_LE(base_len, body.size() - 4);
  auto base = Btf::parse(Bytes::from_vector({body.begin() + 4, body.begin() + 4 + base_len}), "base");
  ASSERT_TRUE(base.ok()) << base.error().message();
  auto split = Btf::parse_split(Bytes::from_vector({body.begin() + 4 + base_len, body.end()}), "module", *base);
  ASSERT_TRUE(split.ok()) << split.error().message();
  expect_golden("split_module_on_base", btf_manifest(*split));
}

// The BTF members of a `mmar btf pack` archive, through their stored index.
TEST(HostWritten, PackedBtfThroughItsStoredIndex) {
  auto a = Archive::open(kArchives + "btf_pack.mmar");
  ASSERT_TRUE(a.ok()) << a.error().message();
  BtfSet set(std::move(*a));
  std::string out;
  for (const char* member : {"vmlinux", "modules/module"}) {
    auto btf = set.open(member);
    ASSERT_TRUE(btf.ok()) << btf.error().message();
    out += std::string("== ") + member + " stored index " + std::to_string(btf->has_stored_index()) + "\n";
    out += btf_manifest(*btf);
  }
  expect_golden("btf_pack_members", out);
}

// An x86-64 executable's headers decode the same on any host. Interpreting
// it to run is implemented on x86-64 and AArch64: elsewhere the library
// still builds and says Errc::unsupported.
TEST(HostWritten, ElfHeadersEverywhereLoaderWhereImplemented) {
  const auto exe = test::read_file(kSource + "/fuzz/corpus/elf_layout/pie");
  auto head = elf::plan(exe, exe.size(), 4096, /*interpret=*/false, "pie");
  ASSERT_TRUE(head.ok()) << head.error().message();
  EXPECT_EQ(head->type, ET_DYN);
  auto run = elf::plan(exe, exe.size(), 4096, /*interpret=*/true, "pie");
#if defined(__x86_64__)
  ASSERT_TRUE(run.ok()) << run.error().message();
  EXPECT_EQ(run->loads.size(), 4u);
  EXPECT_EQ(run->interp_size, sizeof "/lib64/ld-linux-x86-64.so.2");
#else
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.error().code(), Errc::unsupported) << run.error().message();
#endif
}

}  // namespace
}  // namespace mmar
