// SPDX-License-Identifier: BSD-2-Clause
// mmar list: member names, or details with -l, or JSON.
#include <sys/stat.h>

#include <cinttypes>
#include <optional>

#include "cli.h"
#include "json.h"
#include "verbs.h"

namespace mmar::cli {

namespace {

const Verb kList{"list",
                 "[-f] ARCHIVE [-l] [--json] [NAME...]",
                 "List the members of ARCHIVE (all, or the NAMEs given), in name order.\n"
                 "-l columns: mode, size, stored size, codec, kind, alignment of the data, mtime (UTC), name.\n"
                 "(A compressed member's stored size is its frame stream's, shared by the small members\n"
                 "packed into it.)\n"
                 "Names are escaped as GNU tar does: \\\\ for a backslash, \\n, \\t and the like, \\ooo (octal) for\n"
                 "other control bytes and bytes that are not UTF-8. In --json, a name that is not valid UTF-8\n"
                 "has those bytes as \\u00XX (read as Latin-1) and its exact bytes in \"name_base64\".",
                 {
                     {"file", 'f', true, "ARCHIVE", "archive to read ('-' for standard input)"},
                     {"long", 'l', false, "", "show size, stored size, codec, kind and alignment"},
                     {"json", 0, false, "", "print a JSON array of members"},
                     {"pread", 0, false, "", "read with pread instead of mmap"},
                     {"plain", 0, false, "", "open any file as a one-member archive (else only ELF, BTF, CTF objects)"},
                 }};

// The alignment the data is guaranteed to have.
uint64_t data_alignment(const Archive& a, const Member& m) {
  if (m.stored_size == 0) return 0;
  if (m.page_aligned) return a.alignment();
  uint64_t off = m.data_offset;
  uint64_t al = 1;
  while (al < 4096 && (off & al) == 0) al <<= 1;
  return al;
}

const char* type_word(const Member& m) {
  switch (m.mode & S_IFMT) {
    case S_IFDIR: return "dir";
    case S_IFLNK: return "symlink";
    case S_IFCHR: return "chardev";
    case S_IFBLK: return "blockdev";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "socket";
    default: return "file";
  }
}

void print_json(const Archive& a, const Member& m, Json& j) {
  j.object();
  j.name_field("name", m.name).field("type", type_word(m)).field("mode", m.mode & 07777);
  j.field("size", m.size).field("stored_size", m.stored_size).field("codec", codec_name(m.codec));
  j.field("kind", kind_name(m.kind)).field("offset", m.data_offset).field("alignment", data_alignment(a, m));
  j.time_field("mtime", m.mtime_ns);
  if (m.has_checksum && m.has_data()) j.key("xxh3").hex64(m.xxh3);
  if (m.link) {
    auto target = a.at(*m.link);
    if (target.ok()) j.field("link", target->name);
  }
  if (m.has_btf) j.field("has_btf", true);
  // A frame stream, perhaps shared with other members (stored_size and
  // offset are the stream's): where the member starts in it.
  if (m.framed) j.field("framed", true).field("stream_offset", m.stream_offset);
  if (m.chunk_sums) j.field("chunk_sums", true);
  // Attributes: owner when recorded, device numbers, hard link group, xattrs.
  if (!m.attr_bytes.empty()) {
    auto at = a.attributes(m);
    if (at.ok()) {
      if (at->has_owner) j.field("uid", at->uid).field("gid", at->gid);
      if (!at->uname.empty()) j.field("uname", at->uname);
      if (!at->gname.empty()) j.field("gname", at->gname);
      if ((m.mode & S_IFMT) == S_IFCHR || (m.mode & S_IFMT) == S_IFBLK) {
        j.field("rdev_major", at->rdev_major).field("rdev_minor", at->rdev_minor);
      }
      if (at->link_id != 0) j.field("link_id", at->link_id);
      if (!at->xattrs.empty()) {
        j.key("xattrs").object();
        for (const auto& [xname, xvalue] : at->xattrs) j.key(xname).base64_value(xvalue);
        j.end();
      }
    }
  }
  j.end();
}

void print_member(const Archive& a, const Member& m, bool long_format) {
  const std::string name = escape_text(m.name);
  if (!long_format) {
    std::printf("%s\n", name.c_str());
    return;
  }
  std::string kind = kind_name(m.kind);
  if (m.has_btf) kind += "+btf";
  // Owner as tar -tv prints it: names where recorded, else numbers.
  std::string owner = "-";
  if (m.has_owner) {
    auto at = a.attributes(m);
    if (at.ok()) {
      owner = (at->uname.empty() ? std::to_string(at->uid) : escape_text(at->uname)) + "/" +
              (at->gname.empty() ? std::to_string(at->gid) : escape_text(at->gname));
    }
  }
  std::printf("%s %-12s %12" PRIu64 " %12" PRIu64 " %-4s %-8s %6" PRIu64 " %s %s", mode_string(m.mode).c_str(),
              owner.c_str(), m.size, m.stored_size, codec_name(m.codec), kind.c_str(), data_alignment(a, m),
              format_time(m.mtime_ns).c_str(), name.c_str());
  if (m.is_symlink()) {
    auto target = a.read(m);
    if (target.ok()) std::printf(" -> %s", escape_text(target->str()).c_str());
  }
  if (m.link) {
    auto target = a.at(*m.link);
    if (target.ok()) std::printf(" [link: %s]", escape_text(target->name).c_str());
  }
  std::printf("\n");
}

}  // namespace

int run_list(int argc, char** argv) {
  Parsed p = parse(kList, argc, argv);
  std::string path = archive_path(kList, p);
  auto a = open_archive(path, p);
  if (!a.ok()) return fail(a.error());
  const bool long_format = p.has("long");
  std::optional<Json> json;
  if (p.has("json")) json.emplace().array(true);
  auto print = [&](const Member& m) {
    if (json) {
      print_json(*a, m, *json);
    } else {
      print_member(*a, m, long_format);
    }
  };
  int rc = kExitOk;
  if (p.positional.empty()) {
    auto r = a->for_each([&](const Member& m) -> Result<void> {
      print(m);
      return success();
    });
    if (!r.ok()) rc = fail(r.error());
  } else {
    for (const auto& name : p.positional) {
      auto m = a->find(name);
      if (!m.ok()) {
        rc = fail(m.error());
        continue;
      }
      print(*m);
    }
  }
  if (json) {
    json->end().newline();
    const int w = json->finish();
    if (rc == kExitOk) rc = w;
  }
  return rc;
}

}  // namespace mmar::cli
