// SPDX-License-Identifier: BSD-2-Clause
// The streamed dumps (btf_dump_raw / btf_dump_c to a TextSink) against the
// in-memory ones: the same bytes, in bounded chunks, and a sink's error
// stops the dump and is its result. The in-memory dumps are checked against
// bpftool by btf_test.cpp and dump_c_test.cpp.
#include <gtest/gtest.h>

#include <string>

#include "mmar/btf.h"
#include "support/test_support.h"

namespace mmar {
namespace {

// A BTF whose dumps are a few megabytes: many structs of many members,
// enums, typedefs and prototypes, with duplicate names (for the C header's
// ___N suffixes).
Btf many_types() {
  BtfBuilder b;
  const uint32_t i32 = *b.add_int("int", 4, 1);
  const uint32_t u8 = *b.add_int("unsigned char", 1, 0);
  for (int s = 0; s < 4000; ++s) {
    const std::string n = std::to_string(s);
    const uint32_t e = *b.add_enum("color_" + std::to_string(s % 1000), 4);
    EXPECT_TRUE(b.add_enum_value("RED_" + n, -s).ok());
    EXPECT_TRUE(b.add_enum_value("BLUE_" + n, s).ok());
    const uint32_t st = *b.add_struct("thing_" + std::to_string(s % 3000), 48);
    for (int m = 0; m < 8; ++m) {
      EXPECT_TRUE(b.add_field("member_" + n + "_" + std::to_string(m), m % 3 == 0 ? u8 : i32,
                              static_cast<uint32_t>(m) * 32, m % 3 == 0 ? 5 : 0)
                      .ok());
    }
    EXPECT_TRUE(b.add_field("e", e, 256).ok());
    const uint32_t td = *b.add_typedef("thing_t_" + n, st);
    const uint32_t ptr = *b.add_ptr(td);
    const uint32_t proto = *b.add_func_proto(i32);
    EXPECT_TRUE(b.add_param("arg", ptr).ok());
    EXPECT_TRUE(b.add_func("use_" + n, 1, proto).ok());
  }
  auto btf = Btf::parse(Bytes::from_vector(b.write()), "many");
  EXPECT_TRUE(btf.ok()) << btf.error().message();
  return std::move(btf).value();
}

struct Chunks {
  std::string text;
  size_t calls = 0;
  size_t largest = 0;
  TextSink sink() {
    return [this](std::string_view chunk) -> Result<void> {
      ++calls;
      largest = std::max(largest, chunk.size());
      text.append(chunk);
      return success();
    };
  }
};

// Each form of dump, to a string and to a sink.
Result<void> dump(const Btf& btf, int form, std::string& out) {
  switch (form) {
    case 0: return btf_dump_raw(btf, out);
    case 1: return btf_dump_raw(btf, out, true);
    case 2: return btf_dump_c(btf, out);
    default: return btf_dump_c(btf, out, CHeaderOptions{.bpftool_compat = true});
  }
}
Result<void> dump(const Btf& btf, int form, const TextSink& sink) {
  switch (form) {
    case 0: return btf_dump_raw(btf, sink);
    case 1: return btf_dump_raw(btf, sink, true);
    case 2: return btf_dump_c(btf, sink);
    default: return btf_dump_c(btf, sink, CHeaderOptions{.bpftool_compat = true});
  }
}

TEST(BtfDumpStream, SameBytesInBoundedChunks) {
  const Btf btf = many_types();
  for (int form = 0; form < 4; ++form) {
    SCOPED_TRACE(form);
    std::string whole = "kept: ";  // the string overloads append
    ASSERT_TRUE(dump(btf, form, whole).ok());
    ASSERT_GT(whole.size(), size_t{1} << 20);
    Chunks chunks;
    ASSERT_TRUE(dump(btf, form, chunks.sink()).ok());
    EXPECT_TRUE("kept: " + chunks.text == whole) << chunks.text.size() << " vs " << whole.size() << " bytes";
    // About 256 KiB each: several for a few megabytes, none much larger.
    EXPECT_GE(chunks.calls, whole.size() / (320 << 10));
    EXPECT_LE(chunks.largest, size_t{320} << 10);
  }
}

TEST(BtfDumpStream, ASinkErrorStopsTheDumpAndIsItsResult) {
  const Btf btf = many_types();
  for (int form = 0; form < 4; ++form) {
    SCOPED_TRACE(form);
    size_t calls = 0;
    const TextSink refuse_second = [&](std::string_view) -> Result<void> {
      if (++calls == 2) return Error(Errc::io, "disk full");
      return success();
    };
    auto r = dump(btf, form, refuse_second);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(), "disk full");
    EXPECT_EQ(calls, 2u);  // nothing more after the error
  }
}

TEST(BtfDumpStream, SmallDumpIsOneChunkAndEmptyBtfNone) {
  BtfBuilder b;
  ASSERT_TRUE(b.add_int("int", 4, 1).ok());
  auto one = Btf::parse(Bytes::from_vector(b.write()), "one");
  ASSERT_TRUE(one.ok());
  Chunks chunks;
  ASSERT_TRUE(btf_dump_raw(*one, chunks.sink()).ok());
  EXPECT_EQ(chunks.calls, 1u);
  EXPECT_EQ(chunks.text, "[1] INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED\n");
  auto empty = Btf::parse(Bytes::from_vector(BtfBuilder().write()), "empty");
  ASSERT_TRUE(empty.ok());
  Chunks none;
  ASSERT_TRUE(btf_dump_raw(*empty, none.sink()).ok());
  EXPECT_EQ(none.calls, 0u);
}

// The CLI streams: a full disk stops it at the first chunk, exit 1.
TEST(BtfDumpStream, CliReportsAFullOutput) {
  MMAR_SKIP_WITHOUT_CLI();
  test::TempDir tmp;
  BtfBuilder b;
  const uint32_t i32 = *b.add_int("int", 4, 1);
  for (int s = 0; s < 20000; ++s) ASSERT_TRUE(b.add_typedef("type_number_" + std::to_string(s), i32).ok());
  const std::string file = tmp / "many.btf";
  const auto bytes = b.write();
  test::write_file(file, bytes);
  for (const char* format : {"", " --format c"}) {
    std::string out;
    EXPECT_EQ(test::run(std::string(MMAR_BIN) + " btf dump" + format + " '" + file + "' 2>&1 >/dev/full", &out), 1)
        << format;
    EXPECT_EQ(out, "mmar: write to standard output: No space left on device\n") << format;
  }
}

}  // namespace
}  // namespace mmar

namespace mmar {
namespace {

// The JSON dump is JSON whatever the names' bytes: one that is not UTF-8
// comes out as \u00XX (bpftool passes such bytes through raw), one that is
// UTF-8 as it is, quotes and controls escaped (docs/JSON.md "Strings").
TEST(BtfDumpJson, NamesThatAreNotUtf8StayValidJson) {
  BtfBuilder b;
  ASSERT_TRUE(b.add_int("bad\xff" "name", 4, 1).ok());
  ASSERT_TRUE(b.add_int("caf\xc3\xa9", 4, 1).ok());
  ASSERT_TRUE(b.add_int("q\"uote", 4, 1).ok());
  auto btf = Btf::parse(Bytes::from_vector(b.write()), "names");
  ASSERT_TRUE(btf.ok()) << btf.error().message();
  std::string out;
  ASSERT_TRUE(btf_dump_raw(*btf, out, /*json=*/true).ok());
  EXPECT_NE(out.find("\"bad\\u00ffname\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"caf\xc3\xa9\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"q\\\"uote\""), std::string::npos) << out;
}

}  // namespace
}  // namespace mmar
