// btf_find_in_file: one name lookup in a BTF file without mapping it.
//
// Mapping a file costs page-table work per touched page (and its unmapping
// a TLB flush); on machines where that is slow (virtualised page tables) a
// single question costs more than the answer. This reads the header, then
// the type section and the names it compares, in 64 KiB blocks with pread,
// through a small cache; each record is checked as Btf's lazy index checks
// it (known kind, size inside the section, name inside the strings).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "btf/records.h"
#include "elf/sections.h"
#include "mmar/btf.h"
#include "support/checked.h"
#include "support/endian.h"
#include "support/block_reader.h"
#include "support/fd.h"

namespace mmar {

namespace {

constexpr uint32_t kHeaderSize = 24;
constexpr uint32_t kTypeHeaderSize = 12;

bool reader_read_at(void* ctx, uint64_t offset, size_t length, void* out) {
  return static_cast<BlockReader*>(ctx)->read(offset, length, out);
}

}  // namespace

Result<BtfFoundType> btf_find_in_file(const std::string& path, std::string_view name, std::optional<BtfKind> kind) {
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) return sys_error(path, errno);
  UniqueFd fd(raw);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return sys_error("stat " + path, errno);
  if (!S_ISREG(st.st_mode)) return Error(Errc::invalid_argument, path + ": not a regular file");
  auto reader = std::make_unique<BlockReader>(fd.get(), static_cast<uint64_t>(st.st_size));
  auto malformed = [&](uint64_t at, const std::string& what) {
    return Error(Errc::malformed, path + ": " + what + " (at offset " + std::to_string(at) + ")", at);
  };

  // An ELF object: its .BTF section.
  uint64_t base = 0, limit = reader->size();
  unsigned char head[64] = {};
  const size_t head_len = static_cast<size_t>(std::min<uint64_t>(sizeof head, limit));
  if (!reader->read(0, head_len, head)) return sys_error("read " + path, errno ? errno : EIO);
  if (head_len >= 4 && std::memcmp(head,
                                   "\x7f"
                                   "ELF",
                                   4) == 0) {
    auto sec = elf::find_section({reinterpret_cast<const std::byte*>(head), head_len}, limit, reader_read_at,
                                 reader.get(), ".BTF");
    if (!sec) return Error(Errc::not_found, path + ": ELF object without a .BTF section");
    base = sec->offset;
    limit = sec->size;
  }
  unsigned char h[kHeaderSize];
  if (limit < kHeaderSize || !reader->read(base, kHeaderSize, h)) return malformed(base, "truncated BTF header");
  bool little;
  if (h[0] == 0x9f && h[1] == 0xeb) {
    little = true;
  } else if (h[0] == 0xeb && h[1] == 0x9f) {
    little = false;
  } else {
    return malformed(base, "not BTF");
  }
  if (h[2] != 1) return Error(Errc::unsupported, path + ": BTF version " + std::to_string(h[2]));
  const uint32_t hdr_len = read_int<uint32_t>(h + 4, little);
  const uint32_t type_off = read_int<uint32_t>(h + 8, little);
  const uint32_t type_len = read_int<uint32_t>(h + 12, little);
  const uint32_t str_off = read_int<uint32_t>(h + 16, little);
  const uint32_t str_len = read_int<uint32_t>(h + 20, little);
  if (hdr_len < kHeaderSize || hdr_len > limit) return malformed(base + 4, "header length out of range");
  const uint64_t data = limit - hdr_len;
  if (type_off % 4 != 0 || !in_bounds(type_off, type_len, data))
    return malformed(base + 8, "type section out of range");
  if (!in_bounds(str_off, str_len, data)) return malformed(base + 16, "string section out of range");
  const uint64_t types = base + hdr_len + type_off;
  const uint64_t strs = base + hdr_len + str_off;

  // The scan: stop at the first record with this name (and kind).
  std::string want(name);
  want.push_back('\0');
  std::string probe(want.size(), '\0');
  uint32_t id = 1;
  for (uint64_t off = 0; off < type_len; ++id) {
    unsigned char rec[kTypeHeaderSize];
    if (type_len - off < kTypeHeaderSize || !reader->read(types + off, kTypeHeaderSize, rec)) {
      return malformed(types + off, "type " + std::to_string(id) + ": truncated record");
    }
    const uint32_t name_off = read_int<uint32_t>(rec, little);
    const uint32_t info = read_int<uint32_t>(rec + 4, little);
    const uint32_t size_or_type = read_int<uint32_t>(rec + 8, little);
    const uint8_t k = (info >> 24) & 0x1f;
    const uint16_t vlen = info & 0xffff;
    const int64_t extra = btf_extra_size(k, vlen);
    if (extra < 0 || k > kBtfMaxKind) return malformed(types + off, "type " + std::to_string(id) + ": unknown kind");
    if (static_cast<uint64_t>(extra) > type_len - off - kTypeHeaderSize) {
      return malformed(types + off, "type " + std::to_string(id) + ": record runs past the type section");
    }
    if (name_off != 0 && name_off >= str_len) {
      return malformed(types + off, "type " + std::to_string(id) + ": name offset outside the strings");
    }
    if (name_off != 0 && (!kind || static_cast<BtfKind>(k) == *kind)) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(want.size(), str_len - name_off));
      if (n == want.size() && reader->read(strs + name_off, n, probe.data()) && probe == want) {
        return BtfFoundType{id, static_cast<BtfKind>(k), size_or_type, vlen, std::string(name)};
      }
    }
    off += kTypeHeaderSize + static_cast<uint64_t>(extra);
  }
  return Error(Errc::not_found, path + ": no type named '" + std::string(name) + "'");
}

}  // namespace mmar
