// SPDX-License-Identifier: BSD-2-Clause
// mmar btf: dump, find and stats over BTF files, ELF objects with .BTF, and
// archive members (ARCHIVE:MEMBER), split BTF on a base included.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cinttypes>
#include <functional>
#include <map>
#include <set>
#include <cstring>

#include "cli.h"
#include "json.h"
#include "mmar/btf.h"
#include "mmar/ctf.h"
#include "verbs.h"

namespace mmar::cli {

namespace {

constexpr const char* kKernelBtfDir = "/sys/kernel/btf/";
constexpr const char* kKernelBtf = "/sys/kernel/btf/vmlinux";

const Verb kBtf{"btf",
                "dump|find|stats FILE|ARCHIVE:MEMBER [--base-btf BASE] [options] [NAME...]\n"
                "       mmar btf dump [file] [FILE] [format raw|c]   (bpftool's syntax; no FILE: the running kernel)\n"
                "       mmar btf pack -f ARCHIVE VMLINUX [MODULE|DIR...]\n"
                "       mmar btf from-ctf -o OUT.btf FILE[:MEMBER]",
                "Read BTF (raw, or the .BTF section of an ELF object, or an archive member).\n"
                "  dump   print every type as `bpftool btf dump file` does (split BTF: its own types);\n"
                "         --format c prints a C header as `bpftool ... format c` does\n"
                "  find   print every type named NAME (--kind to restrict), with its ID\n"
                "  stats  count types by kind, strings and sizes\n"
                "  pack   one kernel's base BTF and all its modules' split BTF in one archive:\n"
                "         VMLINUX becomes member 'vmlinux', each module 'modules/PATH' linked to it,\n"
                "         so ARCHIVE:modules/PATH opens on its base without --base-btf\n"
                "  from-ctf  BTF from a CTF dict (gcc -gctf): FILE is an ELF object with .ctf, a dict or a\n"
                "         CTF archive (MEMBER: which dict; a child brings its parent's types)",
                {
                    {"base-btf", 'B', true, "BASE", "base BTF (FILE or ARCHIVE:MEMBER) for a split BTF"},
                    {"json", 'j', false, "", "print JSON"},
                    {"format", 0, true, "FORMAT", "with dump: raw (default) or c (a compilable C header)"},
                    {"bpftool-compat", 0, false, "",
                     "with --format c: bpftool 7.1's header byte for byte, its wrong enum sizes and packed padding "
                     "included"},
                    {"kind", 0, true, "KIND", "with find: only types of this kind (struct, union, func, ...)"},
                    {"validate", 0, false, "", "check every record and reference first"},
                    {"file", 'f', true, "ARCHIVE", "with pack: the archive to write"},
                    {"compress", 0, true, "CODEC", "with pack: none (default: members stay zero-copy), zstd or xz"},
                    {"output", 'o', true, "OUT", "with from-ctf: the BTF file to write"},
                }};

// FILE, or ARCHIVE:MEMBER; an archive member that links to its base opens
// on it, unless a base is given explicitly.
Result<Btf> open_spec(const std::string& spec, const std::optional<Btf>& base, const BtfOpenOptions& options) {
  std::string archive, member;
  if (split_member_spec(spec, archive, member)) {
    MMAR_ASSIGN(Archive a, Archive::open(archive));
    MMAR_ASSIGN(Member m, a.find(member));
    if (base) {
      MMAR_ASSIGN(Bytes bytes, a.read(m));
      return Btf::parse_split(std::move(bytes), spec, *base, options);
    }
    BtfSet set(std::move(a));
    MMAR_ASSIGN(Btf btf, set.open(m));
    if (options.validate) MMAR_TRY(btf.validate());
    return btf;
  }
  return Btf::open(spec, base ? &*base : nullptr, options);
}

int run_pack(const Parsed& p) {
  if (!p.has("file")) return usage_error("btf", "pack needs -f ARCHIVE");
  if (p.positional.size() < 2) return usage_error("btf", "pack needs VMLINUX and modules");
  BtfPackOptions o;
  if (p.has("compress")) {
    auto c = parse_codec(p.get("compress"));
    if (!c) return usage_error("btf", "unknown codec '" + p.get("compress") + "'");
    o.codec = *c;
  }
  // Modules checked and added, counted as modules (not bytes).
  Progress progress("btf pack", Progress::Unit::modules);
  o.progress = [&](size_t done, size_t total) { progress.update(done, total); };
  std::vector<std::string> modules(p.positional.begin() + 2, p.positional.end());
  auto stats = btf_pack(p.get("file"), p.positional[1], modules, o);
  progress.finish();
  if (!stats.ok()) return fail(stats.error());
  std::printf("%s: vmlinux and %zu modules, %s\n", p.get("file").c_str(), stats->modules,
              human_size(stats->archive_bytes).c_str());
  return kExitOk;
}

std::optional<BtfKind> parse_kind(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (uint8_t k = 1; k <= kBtfMaxKind; ++k) {
    if (s == btf_kind_name(static_cast<BtfKind>(k))) return static_cast<BtfKind>(k);
  }
  return std::nullopt;
}


// find: every type named NAME (with --kind: of that kind), one line each,
// in ID order, base first; a NAME with no match is an error (exit 1) after
// the others are printed.
int run_find(const Parsed& p, const Btf& btf) {
  if (p.positional.size() < 3) return usage_error("btf", "find needs at least one NAME");
  std::optional<BtfKind> kind;
  if (p.has("kind")) {
    kind = parse_kind(p.get("kind"));
    if (!kind) return usage_error("btf", "unknown kind '" + p.get("kind") + "'");
  }
  int rc = kExitOk;
  Json j;  // JSON Lines: one object per match
  for (size_t i = 2; i < p.positional.size(); ++i) {
    const std::string& name = p.positional[i];
    auto found = btf.find_all(name, kind);
    if (!found.ok()) {
      rc = fail(found.error());
      continue;
    }
    if (found->empty()) {
      rc = fail(Error(Errc::not_found, btf.name() + ": no type named '" + name + "'" +
                                           (kind ? std::string(" of kind ") + btf_kind_name(*kind) : "")));
      continue;
    }
    for (const BtfType& t : *found) {
      if (p.has("json")) {
        j.object().field("name", name).field("id", t.id()).field("kind", btf_kind_name(t.kind())).end().newline();
      } else {
        std::printf("[%u] %s '%s'\n", t.id(), btf_kind_name(t.kind()), escape_text(name).c_str());
      }
    }
  }
  const int written = j.finish();
  return rc != kExitOk ? rc : written;
}

// from-ctf: FILE, or FILE:MEMBER when FILE itself does not exist (a
// path with a colon stays a path).
int run_from_ctf(const Parsed& p) {
  if (!p.has("output")) return usage_error("btf", "from-ctf needs -o OUT");
  if (p.positional.size() != 2) return usage_error("btf", "from-ctf needs one FILE[:MEMBER]");
  std::string path = p.positional[1], member;
  struct stat st {};
  if (const size_t colon = path.rfind(':'); colon != std::string::npos && stat(path.c_str(), &st) != 0) {
    member = path.substr(colon + 1);
    path.resize(colon);
  }
  auto r = btf_from_ctf(p.get("output"), path, member);
  if (!r.ok()) return fail(r.error());
  std::printf("%s: %u BTF types (%u functions, %u objects)\n", p.get("output").c_str(), r->types, r->functions,
              r->objects);
  return kExitOk;
}

}  // namespace

int run_btf(int argc, char** argv) {
  Parsed p = parse(kBtf, argc, argv);
  auto& pos = p.positional;
  if (pos.empty()) return usage_error("btf", "expected a subcommand: dump, find, stats, pack or from-ctf");
  const std::string sub = pos[0];
  // An option another subcommand takes is a usage error here, not ignored.
  {
    static const std::map<std::string, std::set<std::string>> kApplies = {
        {"dump", {"base-btf", "json", "format", "bpftool-compat", "validate"}},
        {"find", {"base-btf", "json", "kind", "validate"}},
        {"stats", {"base-btf", "json", "validate"}},
        {"pack", {"file", "compress"}},
        {"from-ctf", {"output"}},
    };
    auto it = kApplies.find(sub);
    if (it != kApplies.end()) {
      for (const auto& [name, value] : p.values) {
        if (it->second.count(name) == 0) return usage_error("btf", "--" + name + " does not apply to btf " + sub);
      }
    }
  }
  if (sub == "pack") return run_pack(p);
  if (sub == "from-ctf") return run_from_ctf(p);
  if (sub != "dump" && sub != "find" && sub != "stats") return usage_error("btf", "unknown subcommand '" + sub + "'");
  if (sub == "dump") {
    // bpftool's own syntax: `btf dump file FILE [format raw|c]`.
    if (pos.size() >= 3 && pos[1] == "file") pos.erase(pos.begin() + 1);
    if (pos.size() >= 3 && pos[2] == "format") {
      if (pos.size() < 4) return usage_error("btf", "format needs raw or c");
      if (p.has("format") && p.get("format") != pos[3]) return usage_error("btf", "two different formats given");
      p.values["format"] = pos[3];
      pos.erase(pos.begin() + 2, pos.begin() + 4);
    }
  }
  // No FILE: the running kernel's BTF, as bpftool's `btf dump` habits go.
  if (pos.size() == 1 && sub != "find") pos.push_back(kKernelBtf);
  if (pos.size() < 2) return usage_error("btf", "expected a FILE (or ARCHIVE:MEMBER)");
  if (sub != "find" && pos.size() > 2) return usage_error("btf", "unexpected argument '" + pos[2] + "'");
  const std::string spec = pos[1];
  BtfOpenOptions options;
  options.validate = p.has("validate");
  // A kernel module's BTF under /sys/kernel/btf is split BTF on the running
  // kernel's: found by itself, as bpftool does.
  if (!p.has("base-btf") && spec.rfind(kKernelBtfDir, 0) == 0 && spec != kKernelBtf) {
    p.values["base-btf"] = kKernelBtf;
  }

  std::optional<Btf> base;
  if (p.has("base-btf")) {
    auto b = open_spec(p.get("base-btf"), std::nullopt, options);
    if (!b.ok()) return fail(b.error());
    base = std::move(b).value();
  }
  const std::string& name = spec;
  auto btf = open_spec(spec, base, options);
  if (!btf.ok()) {
    // Split BTF opened alone: say how to give its base.
    static constexpr std::string_view kNeedsBase = "it needs its base BTF";
    const std::string& m = btf.error().message();
    if (!base && btf.error().code() == Errc::invalid_argument && m.size() >= kNeedsBase.size() &&
        m.compare(m.size() - kNeedsBase.size(), kNeedsBase.size(), kNeedsBase) == 0) {
      return fail(Error(Errc::invalid_argument, m.substr(0, m.size() - kNeedsBase.size()) +
                                                    "give the base with --base-btf BASE (a module's base is usually " +
                                                    kKernelBtf + ")"));
    }
    return fail(btf.error());
  }

  if (sub == "dump") {
    std::string format = p.has("format") ? p.get("format") : "raw";
    if (format != "raw" && format != "c") return usage_error("btf", "unknown format '" + format + "' (raw or c)");
    if (format == "c" && p.has("json")) return usage_error("btf", "--json prints the raw format; not with --format c");
    // Streamed: each chunk is written as soon as it is formatted.
    const TextSink to_stdout = stdout_text_sink();
    auto r = format == "c" ? btf_dump_c(*btf, to_stdout, CHeaderOptions{.bpftool_compat = p.has("bpftool-compat")})
                           : btf_dump_raw(*btf, to_stdout, p.has("json"));
    if (!r.ok()) return fail(r.error());
    return kExitOk;
  }
  if (sub == "find") return run_find(p, *btf);
  // stats
  auto count = btf->type_count();
  if (!count.ok()) return fail(count.error());
  uint64_t by_kind[kBtfMaxKind + 1] = {};
  for (uint32_t id = btf->start_id(); id < *count; ++id) {
    auto t = btf->type(id);
    if (!t.ok()) return fail(t.error());
    ++by_kind[static_cast<int>(t->kind())];
  }
  const uint32_t own = *count - btf->start_id();
  if (p.has("json")) {
    Json j;
    j.object().field("name", name).field("split", btf->is_split()).field("start_id", btf->start_id());
    j.field("types", own).field("strings_bytes", btf->str_size()).field("bytes", btf->raw().size());
    j.key("kinds").object();
    for (uint8_t k = 1; k <= kBtfMaxKind; ++k) {
      if (by_kind[k] != 0) j.field(btf_kind_name(static_cast<BtfKind>(k)), by_kind[k]);
    }
    j.end().end().newline();
    return j.finish();
  }
  std::printf("%s: %s BTF, %s-endian, %u types (IDs %u..%u), %u bytes of strings, %zu bytes\n", name.c_str(),
              btf->is_split() ? "split" : "base", btf->little_endian() ? "little" : "big", own, btf->start_id(),
              *count - 1, btf->str_size(), btf->raw().size());
  for (uint8_t k = 1; k <= kBtfMaxKind; ++k) {
    if (by_kind[k] != 0) std::printf("  %-10s %" PRIu64 "\n", btf_kind_name(static_cast<BtfKind>(k)), by_kind[k]);
  }
  return kExitOk;
}

}  // namespace mmar::cli
