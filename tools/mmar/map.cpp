// SPDX-License-Identifier: BSD-2-Clause
// mmar map: map an ELF object (a file or an archive member) as the runtime
// linker would, and print every mapping made, like pmap.
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cinttypes>
#include <cstring>

#include "cli.h"
#include "json.h"
#include "mmar/elf_map.h"
#include "verbs.h"

namespace mmar::cli {

namespace {

const Verb kMap{"map",
                "FILE|ARCHIVE:MEMBER [--interpret] [--padding N] [--json]",
                "Map an ELF object into this process and print the mappings made: address range, size, bytes\n"
                "backed by the file, file offset, protections and flags. By default the whole object is one\n"
                "read-only mapping; --interpret maps its PT_LOAD segments as ld.so does (ET_EXEC at its\n"
                "addresses, ET_DYN anywhere, .bss zeroed). An uncompressed, page-aligned member is mapped\n"
                "straight from the archive.",
                {
                    {"interpret", 'i', false, "", "map the program headers' segments"},
                    {"padding", 'p', true, "N", "inaccessible padding before and after (K/M/G suffixes)"},
                    {"json", 'j', false, "", "print JSON"},
                }};

std::string prot_string(uint32_t prot) {
  std::string s = "---";
  if (prot & PROT_READ) s[0] = 'r';
  if (prot & PROT_WRITE) s[1] = 'w';
  if (prot & PROT_EXEC) s[2] = 'x';
  return s;
}

std::string flag_string(uint32_t flags) {
  std::string s;
  auto add = [&](uint32_t bit, const char* name) {
    if (flags & bit) s += (s.empty() ? "" : ",") + std::string(name);
  };
  add(MMAR_MAPPING_ELF_HEADER, "elf-header");
  add(MMAR_MAPPING_ANONYMOUS, "bss");
  add(MMAR_MAPPING_PADDING, "padding");
  add(MMAR_MAPPING_HOLE, "hole");
  return s.empty() ? "-" : s;
}

const char* type_name(uint16_t t) {
  switch (t) {
    case ET_EXEC: return "exec";
    case ET_DYN: return "dyn";
    case ET_REL: return "rel";
    case ET_CORE: return "core";
    default: return "object";
  }
}

}  // namespace

int run_map(int argc, char** argv) {
  Parsed p = parse(kMap, argc, argv);
  if (p.positional.size() != 1) return usage_error("map", "expected one FILE or ARCHIVE:MEMBER");
  const std::string spec = p.positional[0];
  uint32_t flags = p.has("interpret") ? kMapInterpret : 0;
  uint64_t padding = 0;
  if (p.has("padding")) {
    auto n = parse_size(p.get("padding"));
    if (!n || *n == 0) return usage_error("map", "bad --padding '" + p.get("padding") + "'");
    padding = *n;
    flags |= kMapPadding;
  }
  std::string archive_name, member_name;
  Result<MappedObject> mapped = Error(Errc::invalid_argument, "unreachable");
  if (split_member_spec(spec, archive_name, member_name)) {
    auto a = Archive::open(archive_name);
    if (!a.ok()) return fail(a.error());
    auto m = a->find(member_name);
    if (!m.ok()) return fail(m.error());
    mapped = map_member(*a, *m, flags, padding);
  } else {
    int fd = open(spec.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(sys_error(spec, errno));
    mapped = map_object(fd, 0, 0, flags, padding, spec);
    close(fd);  // the mappings stay
  }
  if (!mapped.ok()) return fail(mapped.error());
  const MappedObject& o = *mapped;
  std::string out;
  char line[256];
  if (p.has("json")) {
    Json j;
    j.object().field("object", spec).field("type", flags & kMapInterpret ? type_name(o.elf_type()) : "object");
    j.field("load_bias", o.load_bias()).field("entry", o.entry());
    if (o.interpreter()) j.field("interpreter", *o.interpreter());
    j.key("mappings").array(true);
    for (const auto& m : o.mappings()) {
      j.object().field("addr", m.addr).field("size", m.size).field("file_size", m.file_size);
      j.field("offset", m.offset).field("prot", prot_string(m.prot)).field("flags", flag_string(m.flags)).end();
    }
    j.end().end().newline();
    return j.finish();
  } else {
    std::snprintf(line, sizeof line, "%s: %s", spec.c_str(),
                  flags & kMapInterpret ? type_name(o.elf_type()) : "object");
    out += line;
    if (flags & kMapInterpret) {
      std::snprintf(line, sizeof line, ", load bias 0x%" PRIx64 ", entry 0x%" PRIx64, o.load_bias(), o.entry());
      out += line;
    }
    if (o.interpreter()) out += ", interpreter " + *o.interpreter();
    out += "\n";
    std::snprintf(line, sizeof line, "%-33s %10s %10s %10s %4s  %s\n", "ADDRESS", "SIZE", "FILE", "OFFSET", "PROT",
                  "FLAGS");
    out += line;
    for (const auto& m : o.mappings()) {
      std::snprintf(line, sizeof line,
                    "%016" PRIx64 "-%016" PRIx64 " %10" PRIu64 " %10" PRIu64 " %10" PRIx64 " %4s  %s\n", m.addr,
                    m.addr + m.size, m.size, m.file_size, m.offset, prot_string(m.prot).c_str(),
                    flag_string(m.flags).c_str());
      out += line;
    }
  }
  if (!write_all(1, reinterpret_cast<const std::byte*>(out.data()), out.size())) {
    return fail(sys_error("write to standard output", errno));
  }
  return kExitOk;
}

}  // namespace mmar::cli
