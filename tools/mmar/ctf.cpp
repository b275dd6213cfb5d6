// SPDX-License-Identifier: BSD-2-Clause
// mmar ctf: dump (objdump --ctf exact) and find over ELF objects with a .ctf
// section, raw CTF dicts and CTF archives; from-btf writes a CTF archive from
// kernel BTF.
#include <cerrno>
#include <cinttypes>
#include <cstdio>

#include "cli.h"
#include "json.h"
#include "mmar/ctf.h"
#include "verbs.h"

namespace mmar::cli {

namespace {

const Verb kCtf{"ctf",
                "dump|find FILE|ARCHIVE:MEMBER [--ctf-parent NAME] [--json] [NAME...]\n"
                "       mmar ctf from-btf -o OUT.ctfa VMLINUX [MODULE|DIR...]",
                "Read CTF (an ELF object's .ctf section, a raw dict, a CTF archive, or the dicts\n"
                "and ELF objects of an mmar archive), or write a CTF archive from kernel BTF.\n"
                "  dump   print every dict as `objdump --ctf=.ctf FILE` does, from its\n"
                "         'Contents of CTF section' line on; ARCHIVE:MEMBER prints one dict of\n"
                "         any archive, its parent imported from the same archive\n"
                "  find   print the types named NAME ('struct foo', 'union u', 'enum e' or a\n"
                "         plain name) in each dict of any archive (children import their\n"
                "         parents by name), with ID, kind, size and alignment\n"
                "  from-btf  write kernel BTF (VMLINUX, raw or ELF; MODULEs: split BTF files or\n"
                "         directories of them, e.g. /sys/kernel/btf) as a CTF archive shaped like\n"
                "         DTrace's vmlinux.ctfa: parent 'shared_ctf' with the kernel's types,\n"
                "         child 'vmlinux' with its function and data-object symbols, a child\n"
                "         per module (read it back with --ctf-parent shared_ctf)",
                {
                    {"ctf-parent", 0, true, "NAME", "the archive member other dicts import as parent (default: dump .ctf, find and ARCHIVE:MEMBER each child's own parent name)"},
                    {"output", 'o', true, "OUT", "from-btf: the CTF archive to write"},
                    {"json", 'j', false, "", "print JSON (dump: one document of dicts and types; find: one line per type)"},
                }};

std::string opt_int(const Result<int64_t>& r) { return r.ok() ? std::to_string(*r) : "-"; }
// A size or alignment: the number, or null where libctf has none (a forward).
void int_or_null(Json& j, std::string_view key, const Result<int64_t>& r) {
  j.key(key);
  if (r.ok()) {
    j.value(*r);
  } else {
    j.value(nullptr);
  }
}

// dump --json: per dict, its header facts and every type with its C name,
// size, alignment and members (one JSON document).
Result<void> dump_json(const CtfFile& file, Json& j) {
  for (const auto& e : file.dicts) MMAR_TRY(e.dict.validate());  // nothing printed of a damaged file
  j.object().field("section", file.section).key("dicts").array();
  for (const auto& e : file.dicts) {
    const CtfDict& d = e.dict;
    const CtfHeader& h = d.header();
    j.object().field("name", e.name).field("version", h.version).field("flags", h.flags);
    j.field("compressed", d.compressed()).field("little_endian", d.little_endian());
    j.field("parent", d.parent_name()).field("cu", d.cu_name()).key("types").array(true);
    for (uint32_t index = 1; index <= d.type_count(); ++index) {
      const uint32_t id = d.id_of_index(index);
      MMAR_ASSIGN(CtfTypeInfo t, d.type(id));
      auto decl = d.type_name(id);
      j.object().field("id", id).field("kind", ctf_kind_name(t.kind)).field("name", t.name).key("decl");
      if (decl.ok()) {
        j.value(*decl);
      } else {
        j.value(nullptr);
      }
      j.field("root", t.root);
      int_or_null(j, "size", d.type_size(id));
      int_or_null(j, "align", d.type_align(id));
      if (t.kind == CtfKind::struct_ || t.kind == CtfKind::union_ || t.kind == CtfKind::enum_) {
        MMAR_ASSIGN(auto members, d.members(id));
        j.key("members").array();
        for (const auto& m : members) {
          j.object().field("name", m.name);
          if (t.kind == CtfKind::enum_) {
            j.field("value", m.value);
          } else {
            j.field("type", m.type).field("bit_offset", m.offset);
          }
          j.end();
        }
        j.end();
      } else if (t.kind != CtfKind::integer && t.kind != CtfKind::float_ && t.kind != CtfKind::unknown &&
                 t.kind != CtfKind::array && t.kind != CtfKind::slice) {
        j.field("ref", t.ref);
      }
      j.end();
    }
    j.end().end();
  }
  j.end().end().newline();
  return success();
}

// `ctf find`: every dict of the archive, each type reported once, in the
// dict that owns it.
int find_types(const Parsed& p, const std::string& path, const CtfArchive& dicts) {
  auto names = dicts.names();
  if (!names.ok()) return fail(names.error());
  if (names->empty()) {
    return fail(Error(Errc::not_found, path + ": no CTF dicts (no .ctf section, no dict or ELF member holding one)"));
  }
  int rc = kExitOk;
  Json j;  // JSON Lines: one object per type found
  for (size_t i = 2; i < p.positional.size(); ++i) {
    const std::string& name = p.positional[i];
    bool found = false;
    auto walked = dicts.for_each([&](std::string_view dict_name, const CtfDict& dict) -> Result<void> {
      auto id = dict.find(name);
      if (!id.ok()) {
        if (id.error().code() == Errc::not_found) return success();
        return std::move(id).error();
      }
      // A child finds its parent's types too: report each type once, in the
      // dict that owns it.
      if (dict.is_child() && *id <= 0x7fffffffu) return success();
      found = true;
      auto t = dict.type(*id);
      auto decl = dict.type_name(*id);
      const char* kind = t.ok() ? ctf_kind_name(t->kind) : "?";
      if (p.has("json")) {
        j.object().field("dict", dict_name).field("name", name).field("id", *id).field("kind", kind);
        j.field("decl", decl.ok() ? *decl : std::string());
        int_or_null(j, "size", dict.type_size(*id));
        int_or_null(j, "align", dict.type_align(*id));
        j.end().newline();
      } else {
        std::printf("%.*s: [0x%x] %s '%s' size %s align %s\n", static_cast<int>(dict_name.size()), dict_name.data(),
                    *id, kind, decl.ok() ? decl->c_str() : name.c_str(), opt_int(dict.type_size(*id)).c_str(),
                    opt_int(dict.type_align(*id)).c_str());
      }
      return success();
    });
    if (!walked.ok()) return fail(walked.error());
    if (!found) rc = fail(Error(Errc::not_found, path + ": no type named '" + name + "'"));
  }
  const int written = j.finish();
  return rc != kExitOk ? rc : written;
}

}  // namespace

int run_ctf(int argc, char** argv) {
  Parsed p = parse(kCtf, argc, argv);
  if (p.positional.size() < 2) return usage_error("ctf", "expected a subcommand and a FILE");
  const std::string sub = p.positional[0];
  const std::string path = p.positional[1];
  if (sub == "from-btf") {
    if (!p.has("output")) return usage_error("ctf", "from-btf needs -o OUT");
    std::vector<std::string> modules(p.positional.begin() + 2, p.positional.end());
    auto stats = ctf_from_btf(p.get("output"), path, modules);
    if (!stats.ok()) return fail(stats.error());
    std::fprintf(stderr, "mmar: %s: %u types, %u functions, %u data objects, %zu modules, %" PRIu64 " bytes\n",
                 p.get("output").c_str(), stats->types, stats->functions, stats->objects, stats->modules,
                 stats->archive_bytes);
    if (stats->enum64_truncated != 0) {
      std::fprintf(stderr, "mmar: %u 64-bit enumerator values truncated to 32 bits\n", stats->enum64_truncated);
    }
    return kExitOk;
  }
  if (p.has("output")) return usage_error("ctf", "-o is for from-btf");
  if (sub != "dump" && sub != "find") return usage_error("ctf", "unknown subcommand '" + sub + "'");
  if (sub == "find" && p.positional.size() < 3) return usage_error("ctf", "find needs at least one NAME");
  if (sub == "dump" && p.positional.size() > 2) return usage_error("ctf", "dump takes one FILE");
  if (sub == "find") {
    CtfArchiveOptions ao;
    if (p.has("ctf-parent")) ao.parent = p.get("ctf-parent");
    auto opened = CtfArchive::open(path, ao);
    if (!opened.ok()) return fail(opened.error());
    return find_types(p, path, *opened);
  }
  CtfFileOptions options;
  if (p.has("ctf-parent")) options.parent_member = p.get("ctf-parent");
  Result<CtfFile> file = Error(Errc::not_found, path);
  if (std::string archive, member; split_member_spec(path, archive, member)) {
    // ARCHIVE:MEMBER: one dict of any archive, its parent imported from
    // the same archive (what objdump prints for it as an archive member).
    CtfArchiveOptions ao;
    if (p.has("ctf-parent")) ao.parent = p.get("ctf-parent");
    auto dicts = CtfArchive::open(archive, ao);
    if (!dicts.ok()) return fail(dicts.error());
    auto dict = dicts->dict(member);
    if (!dict.ok()) return fail(dict.error());
    file = CtfFile{".ctf", {{".ctf", *dict}}, {}};
  } else {
    file = ctf_open_file(path, options);
  }
  if (!file.ok()) return fail(file.error());
  if (sub == "dump" && p.has("json")) {
    Json j;
    auto r = dump_json(*file, j);
    if (!r.ok()) return fail(r.error());
    return j.finish();
  }
  if (sub == "dump") {
    // Streamed: each chunk is written as soon as it is formatted.
    const TextSink to_stdout = stdout_text_sink();
    auto r = ctf_dump(*file, to_stdout);
    if (!r.ok()) return fail(r.error());
    return kExitOk;
  }
  return kExitOk;
}

}  // namespace mmar::cli
