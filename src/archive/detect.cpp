// SPDX-License-Identifier: BSD-2-Clause
#include "archive/detect.h"

#include "elf/sections.h"

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "support/checked.h"
#include "support/endian.h"

namespace mmar {

Detected detect_kind(std::span<const std::byte> bytes) {
  return detect_kind(bytes, bytes.size(), elf::span_read_at, &bytes);
}

Detected detect_kind(std::span<const std::byte> head, uint64_t size, elf::ReadAt read_at, void* ctx) {
  const auto* p = reinterpret_cast<const unsigned char*>(head.data());
  const size_t n = head.size();
  Detected d;
  if (n >= 16 && std::memcmp(p,
                             "\x7f"
                             "ELF",
                             4) == 0) {
    d.kind = Kind::elf;
    auto btf = elf::find_section(head, size, read_at, ctx, ".BTF");
    d.has_btf = btf.has_value() && btf->size > 0;
    return d;
  }
  // BTF header: magic 0xeB9F in the file's byte order, version 1, hdr_len >= 24.
  if (n >= 24 && p[2] == 1) {
    bool le = p[0] == 0x9f && p[1] == 0xeb;
    bool be = p[0] == 0xeb && p[1] == 0x9f;
    if ((le || be) && read_int<uint32_t>(p + 4, le) >= 24) {
      d.kind = Kind::btf;
      return d;
    }
  }
  // The stored BTF index (src/btf/stored_index.h): offsets or names.
  if (n >= 16 && (std::memcmp(p, "MMBTFIX2", 8) == 0 || std::memcmp(p, "MMBTFNM1", 8) == 0)) {
    d.kind = Kind::btf_index;
    return d;
  }
  // CTF preamble: magic 0xdff2 (either order), versions 1..5.
  if (n >= 4 && ((p[0] == 0xf2 && p[1] == 0xdf) || (p[0] == 0xdf && p[1] == 0xf2)) && p[2] >= 1 && p[2] <= 5) {
    d.kind = Kind::ctf;
    return d;
  }
  return d;
}

const char* foreign_format_of(std::span<const std::byte> head, std::span<const std::byte> iso_magic) {
  const auto* p = reinterpret_cast<const unsigned char*>(head.data());
  const size_t n = head.size();
  auto at = [&](size_t off, std::string_view magic) {
    return n >= off + magic.size() && std::memcmp(p + off, magic.data(), magic.size()) == 0;
  };
  using namespace std::literals;
  // Archives and images first: their magic is longer and more specific.
  if (at(257, "ustar"sv)) return "a tar archive";
  if (at(0, "PK\x03\x04"sv) || at(0, "PK\x05\x06"sv) || at(0, "PK\x07\x08"sv)) return "a zip archive";
  if (at(0, "070701"sv) || at(0, "070702"sv) || at(0, "070707"sv) || at(0, "\xc7\x71"sv) || at(0, "\x71\xc7"sv)) {
    return "a cpio archive";
  }
  if (at(0, "hsqs"sv) || at(0, "sqsh"sv)) return "a squashfs image";
  if (at(1024, "\xe2\xe1\xf5\xe0"sv)) return "an EROFS image";
  if (at(0, "!<arch>\n"sv)) return "an ar archive";
  if (at(0, "7z\xbc\xaf\x27\x1c"sv)) return "a 7-Zip archive";
  if (at(0, "Rar!\x1a\x07"sv)) return "a RAR archive";
  if (iso_magic.size() == 5 && std::memcmp(iso_magic.data(), "CD001", 5) == 0) return "an ISO 9660 image";
  // Compressed streams: what they hold is not known without inflating.
  if (at(0, "\x28\xb5\x2f\xfd"sv)) return "a zstd-compressed stream";
  if (at(0, "\xfd" "7zXZ\x00"sv)) return "an xz-compressed stream";
  if (at(0, "\x1f\x8b"sv)) return "a gzip-compressed stream";
  if (at(0, "BZh"sv) && n >= 4 && p[3] >= '1' && p[3] <= '9') return "a bzip2-compressed stream";
  if (at(0, "\x04\x22\x4d\x18"sv)) return "an lz4-compressed stream";
  return nullptr;
}

std::string conversion_hint(std::string_view foreign, std::string_view file) {
  const std::string f(file);
  // libarchive reads none of the filesystem images: their own tools unpack
  // them (squashfs-tools, erofs-utils), or mount them.
  if (foreign == "a squashfs image") {
    return "convert: unsquashfs -d DIR " + f + " && mmar create -f OUT.mmar -C DIR .";
  }
  if (foreign == "an EROFS image") {
    return "convert: fsck.erofs --extract=DIR " + f + " && mmar create -f OUT.mmar -C DIR .";
  }
  return "convert: mmar create -f OUT.mmar --from " + f;
}

}  // namespace mmar
