// SPDX-License-Identifier: BSD-2-Clause
// btf_find_in_file: one name lookup in a BTF file without mapping it.
//
// Mapping a file costs page-table work per touched page (and its unmapping
// a TLB flush); on machines where that is slow (virtualised page tables) a
// single question costs more than the answer. This reads the header, then
// the type section and the names it compares, in 64 KiB blocks with pread,
// through a small cache; the header and each record passed are checked by
// records.h, the checks Btf's index makes.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "btf/records.h"
#include "elf/sections.h"
#include "mmar/btf.h"
#include "support/block_reader.h"
#include "support/checked.h"
#include "support/endian.h"
#include "support/fd.h"

namespace mmar {

namespace {

bool reader_read_at(void* ctx, uint64_t offset, size_t length, void* out) {
  return static_cast<BlockReader*>(ctx)->read(offset, length, out);
}

}  // namespace

Result<BtfFoundType> btf_find_in_file(const std::string& path, std::string_view name, std::optional<BtfKind> kind) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return sys_error(path, errno);
  if (!S_ISREG(st.st_mode)) return Error(Errc::invalid_argument, path + ": not a regular file");
  // Through the one byte-range layer, without a mapping.
  MMAR_ASSIGN(Source source, Source::open(path, {.force_pread = true}));
  auto reader = std::make_unique<BlockReader>(std::move(source));

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
  auto read_btf = [&](uint64_t at, size_t n, void* out) { return reader->read(base + at, n, out); };
  MMAR_ASSIGN(BtfHeader h, btf_check_header(path, base, limit, true, read_btf));
  const uint64_t types = base + h.types_at();
  const uint64_t strs = base + h.strs_at();
  const uint32_t type_len = h.type_len, str_len = h.str_len;

  // The scan: stop at the first record with this name (and kind), each
  // record before it checked by the checker Btf's index uses.
  std::string want(name);
  want.push_back('\0');
  std::string probe(want.size(), '\0');
  auto str_valid = [str_len](uint32_t off) { return off < str_len; };
  uint32_t id = 1;
  for (uint64_t off = 0; off < type_len; ++id) {
    auto read_rec = [&](uint64_t at, size_t n, void* out) { return reader->read(types + off + at, n, out); };
    MMAR_ASSIGN(uint32_t size, btf_check_record(path, types + off, id, type_len - off, h.little, read_rec, str_valid));
    unsigned char rec[kBtfTypeHeaderSize];
    if (!reader->read(types + off, sizeof rec, rec)) return sys_error("read " + path, errno ? errno : EIO);
    const uint32_t name_off = read_int<uint32_t>(rec, h.little);
    const uint32_t info = read_int<uint32_t>(rec + 4, h.little);
    const uint32_t size_or_type = read_int<uint32_t>(rec + 8, h.little);
    const auto k = static_cast<BtfKind>((info >> 24) & 0x1f);
    const uint16_t vlen = info & 0xffff;
    if (name_off != 0 && (!kind || k == *kind)) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(want.size(), str_len - name_off));
      if (n == want.size() && reader->read(strs + name_off, n, probe.data()) && probe == want) {
        return BtfFoundType{id, k, size_or_type, vlen, std::string(name)};
      }
    }
    off += size;
  }
  return Error(Errc::not_found, path + ": no type named '" + std::string(name) + "'" +
                                    (kind ? std::string(" of kind ") + btf_kind_name(*kind) : ""));
}

}  // namespace mmar
