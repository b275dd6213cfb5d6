// mmar btf: dump, find and stats over BTF files, ELF objects with .BTF, and
// archive members (ARCHIVE:MEMBER), split BTF on a base included.
#include <sys/stat.h>

#include <cinttypes>
#include <cstring>

#include "cli.h"
#include "mmar/btf.h"
#include "verbs.h"

namespace mmar::cli {

namespace {

const Verb kBtf{"btf",
                "dump|find|stats FILE|ARCHIVE:MEMBER [--base-btf BASE] [options] [NAME...]",
                "Read BTF (raw, or the .BTF section of an ELF object, or an archive member).\n"
                "  dump   print every type as `bpftool btf dump file` does (split BTF: its own types)\n"
                "  find   print the types named NAME (--kind to restrict), with their IDs\n"
                "  stats  count types by kind, strings and sizes",
                {
                    {"base-btf", 'B', true, "BASE", "base BTF (FILE or ARCHIVE:MEMBER) for a split BTF"},
                    {"json", 'j', false, "", "print JSON"},
                    {"kind", 0, true, "KIND", "with find: only types of this kind (struct, union, func, ...)"},
                    {"validate", 0, false, "", "check every record and reference first"},
                }};

// FILE, or ARCHIVE:MEMBER when ARCHIVE is an existing file.
Result<Bytes> load(const std::string& spec, std::string& name) {
  name = spec;
  size_t colon = spec.rfind(':');
  struct stat st {};
  if (colon != std::string::npos && colon > 0 && stat(spec.c_str(), &st) != 0) {
    std::string archive = spec.substr(0, colon);
    std::string member = spec.substr(colon + 1);
    MMAR_ASSIGN(Archive a, Archive::open(archive));
    MMAR_ASSIGN(Member m, a.find(member));
    return a.read(m);
  }
  MMAR_ASSIGN(Source src, Source::open(spec));
  return src.read(0, src.size());
}

std::optional<BtfKind> parse_kind(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (uint8_t k = 1; k <= kBtfMaxKind; ++k) {
    if (s == btf_kind_name(static_cast<BtfKind>(k))) return static_cast<BtfKind>(k);
  }
  return std::nullopt;
}

}  // namespace

int run_btf(int argc, char** argv) {
  Parsed p = parse(kBtf, argc, argv);
  if (p.positional.size() < 2) return usage_error("btf", "expected a subcommand and a FILE");
  const std::string sub = p.positional[0];
  const std::string spec = p.positional[1];
  if (sub != "dump" && sub != "find" && sub != "stats") return usage_error("btf", "unknown subcommand '" + sub + "'");
  BtfOpenOptions options;
  options.validate = p.has("validate");

  std::optional<Btf> base;
  if (p.has("base-btf")) {
    std::string base_name;
    auto bytes = load(p.get("base-btf"), base_name);
    if (!bytes.ok()) return fail(bytes.error());
    auto b = Btf::parse(std::move(bytes).value(), base_name, options);
    if (!b.ok()) return fail(b.error());
    base = std::move(b).value();
  }
  std::string name;
  auto bytes = load(spec, name);
  if (!bytes.ok()) return fail(bytes.error());
  auto btf = base ? Btf::parse_split(std::move(bytes).value(), name, *base, options)
                  : Btf::parse(std::move(bytes).value(), name, options);
  if (!btf.ok()) return fail(btf.error());

  if (sub == "dump") {
    std::string out;
    auto r = btf_dump_raw(*btf, out, p.has("json"));
    if (!r.ok()) return fail(r.error());
    if (!write_all(1, reinterpret_cast<const std::byte*>(out.data()), out.size())) {
      return fail(sys_error("write to standard output", errno));
    }
    return kExitOk;
  }
  if (sub == "find") {
    if (p.positional.size() < 3) return usage_error("btf", "find needs at least one NAME");
    std::optional<BtfKind> kind;
    if (p.has("kind")) {
      kind = parse_kind(p.get("kind"));
      if (!kind) return usage_error("btf", "unknown kind '" + p.get("kind") + "'");
    }
    int rc = kExitOk;
    for (size_t i = 2; i < p.positional.size(); ++i) {
      auto t = btf->find(p.positional[i], kind);
      if (!t.ok()) {
        rc = fail(t.error());
        continue;
      }
      if (p.has("json")) {
        std::printf("{\"name\":%s,\"id\":%u,\"kind\":\"%s\"}\n", json_string(p.positional[i]).c_str(), t->id(),
                    btf_kind_name(t->kind()));
      } else {
        std::printf("[%u] %s '%s'\n", t->id(), btf_kind_name(t->kind()), p.positional[i].c_str());
      }
    }
    return rc;
  }
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
    std::printf("{\"name\":%s,\"split\":%s,\"start_id\":%u,\"types\":%u,\"strings_bytes\":%u,\"bytes\":%zu,\"kinds\":{",
                json_string(name).c_str(), btf->is_split() ? "true" : "false", btf->start_id(), own, btf->str_size(),
                btf->raw().size());
    bool first = true;
    for (uint8_t k = 1; k <= kBtfMaxKind; ++k) {
      if (by_kind[k] == 0) continue;
      std::printf("%s\"%s\":%" PRIu64, first ? "" : ",", btf_kind_name(static_cast<BtfKind>(k)), by_kind[k]);
      first = false;
    }
    std::printf("}}\n");
    return kExitOk;
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
