// SPDX-License-Identifier: BSD-2-Clause
// The libarchive bridge: other archive formats into a Writer (spooled, so a
// pipe works and memory stays flat), and an Archive out as tar/zip/cpio.
#include "mmar/convert.h"

#include "archive/attrs.h"
#include "support/cleanup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <clocale>
#include <locale.h>
#include <cstring>
#include <map>
#include <optional>
#include <vector>

#include "mmar/unique_fd.h"
#include "support/atomic_file.h"
#include "support/endian.h"

#ifdef MMAR_HAVE_LIBARCHIVE
#include "archive/libarchive_dl.h"
#endif

namespace mmar {

struct ArchiveImport::State {
  std::string spool;  // the private directory; removed with its files
  TemporaryGuard spool_on_signal;
  std::vector<std::string> spooled;
  ImportStats stats;
  ~State() {
    for (const std::string& f : spooled) ::unlink(f.c_str());
    if (!spool.empty()) ::rmdir(spool.c_str());
  }
};

ArchiveImport::ArchiveImport(std::unique_ptr<State> s) : s_(std::move(s)) {}
ArchiveImport::~ArchiveImport() = default;
ArchiveImport::ArchiveImport(ArchiveImport&&) noexcept = default;
ArchiveImport& ArchiveImport::operator=(ArchiveImport&&) noexcept = default;
const ImportStats& ArchiveImport::stats() const { return s_->stats; }

#ifndef MMAR_HAVE_LIBARCHIVE

Result<ArchiveImport> ArchiveImport::read(const std::string& input, Writer&, const std::string&) {
  return Error(Errc::unsupported, input + ": this mmar was built without libarchive (reading other archive formats)");
}

Result<ExportStats> export_archive(const Archive&, const std::string& output, const ExportOptions&) {
  return Error(Errc::unsupported, output + ": this mmar was built without libarchive (writing other archive formats)");
}

#else

namespace {

// libarchive handles, freed on every path.
struct ReadHandle {
  struct archive* a = archive_read_new();
  ~ReadHandle() { archive_read_free(a); }
};
struct WriteHandle {
  struct archive* a = archive_write_new();
  ~WriteHandle() { archive_write_free(a); }
};

std::string archive_message(struct archive* a) {
  const char* s = archive_error_string(a);
  return s != nullptr ? s : "unknown libarchive error";
}

// Nanoseconds since the epoch as seconds and a non-negative remainder
// (times before 1970 included).
struct timespec split_ns(int64_t ns) {
  int64_t sec = ns / 1000000000, rem = ns % 1000000000;
  if (rem < 0) {
    sec -= 1;
    rem += 1000000000;
  }
  return {static_cast<time_t>(sec), static_cast<long>(rem)};
}

// Whether `s` is valid UTF-8 (no overlong forms, no surrogates, <= U+10FFFF).
bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      len = 2, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += len;
  }
  return true;
}

// The kernel's binary form of a POSIX ACL (the system.posix_acl_* xattr:
// a 4-byte version 2, then 8-byte entries of tag, permissions and id) as
// libarchive ACL entries. A malformed value adds nothing.
void add_acl_entries(struct archive_entry* e, const std::string& value, int type) {
  if (value.size() < 4 || (value.size() - 4) % 8 != 0 || read_int<uint32_t>(value.data(), true) != 2) return;
  for (size_t at = 4; at < value.size(); at += 8) {
    const uint16_t tag = read_int<uint16_t>(value.data() + at, true);
    const uint16_t perm = read_int<uint16_t>(value.data() + at + 2, true) & 07;
    const uint32_t id = read_int<uint32_t>(value.data() + at + 4, true);
    int la_tag = 0;
    switch (tag) {
      case 0x01: la_tag = ARCHIVE_ENTRY_ACL_USER_OBJ; break;
      case 0x02: la_tag = ARCHIVE_ENTRY_ACL_USER; break;
      case 0x04: la_tag = ARCHIVE_ENTRY_ACL_GROUP_OBJ; break;
      case 0x08: la_tag = ARCHIVE_ENTRY_ACL_GROUP; break;
      case 0x10: la_tag = ARCHIVE_ENTRY_ACL_MASK; break;
      case 0x20: la_tag = ARCHIVE_ENTRY_ACL_OTHER; break;
      default: continue;
    }
    const bool named = tag == 0x02 || tag == 0x08;
    archive_entry_acl_add_entry(e, type, perm, la_tag, named ? static_cast<int>(id) : -1, nullptr);
  }
}

int64_t entry_mtime_ns(struct archive_entry* e) {
  if (!archive_entry_mtime_is_set(e)) return 0;
  return static_cast<int64_t>(archive_entry_mtime(e)) * 1000000000 + archive_entry_mtime_nsec(e);
}

const char* type_name(mode_t type) {
  switch (type) {
    case AE_IFCHR: return "a character device";
    case AE_IFBLK: return "a block device";
    case AE_IFIFO: return "a FIFO";
    case AE_IFSOCK: return "a socket";
    default: return "an entry of an unknown type";
  }
}

// What the import adds to the Writer once the input is read: the last
// entry of each name wins (tar -x's rule), parents are implied.
struct Pending {
  enum Type { file, dir, symlink, special } type = file;
  std::string spool_path;  // file
  std::string target;      // symlink
  uint32_t mode = 0;       // permissions; with the type for special
  int64_t mtime_ns = 0;
  Attributes attrs;        // owner, names, xattrs, device number
  std::string link_group;  // file: the spool file of its hard-link group's first entry
};

// An entry's owner, names, extended attributes and device number, as the
// input recorded them (tar keeps them all; zip and ISO some).
Attributes entry_attributes(struct archive_entry* e) {
  Attributes a;
  const la_int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
  a.uid = uid >= 0 && uid <= 0xffffffff ? static_cast<uint32_t>(uid) : 0;
  a.gid = gid >= 0 && gid <= 0xffffffff ? static_cast<uint32_t>(gid) : 0;
  a.has_owner = true;  // the input says who owns it, root included
  const char* un = archive_entry_uname(e);
  const char* gn = archive_entry_gname(e);
  if (un != nullptr && *un != '\0' && std::strlen(un) <= 255) a.uname = un;
  if (gn != nullptr && *gn != '\0' && std::strlen(gn) <= 255) a.gname = gn;
  const mode_t type = archive_entry_filetype(e);
  if (type == AE_IFCHR || type == AE_IFBLK) {
    a.rdev_major = static_cast<uint32_t>(archive_entry_rdevmajor(e));
    a.rdev_minor = static_cast<uint32_t>(archive_entry_rdevminor(e));
  }
  archive_entry_xattr_reset(e);
  const char* xn = nullptr;
  const void* xv = nullptr;
  size_t xs = 0;
  while (archive_entry_xattr_next(e, &xn, &xv, &xs) == ARCHIVE_OK) {
    if (xn == nullptr || *xn == '\0') continue;
    a.xattrs.emplace_back(xn, std::string(static_cast<const char*>(xv), xs));
  }
  // POSIX ACLs, which tar keeps apart from xattrs (SCHILY.acl.*), back to
  // the kernel's xattr form, unless the input had that xattr itself.
  for (int acl_type : {ARCHIVE_ENTRY_ACL_TYPE_ACCESS, ARCHIVE_ENTRY_ACL_TYPE_DEFAULT}) {
    const char* xname =
        acl_type == ARCHIVE_ENTRY_ACL_TYPE_ACCESS ? "system.posix_acl_access" : "system.posix_acl_default";
    bool have = false;
    for (const auto& x : a.xattrs) have = have || x.first == xname;
    if (have || archive_entry_acl_reset(e, acl_type) <= 0) continue;
    struct Ace {
      uint16_t tag, perm;
      uint32_t id;
    };
    std::vector<Ace> aces;
    int t = 0, perm = 0, tag = 0, id = 0;
    const char* ace_name = nullptr;
    while (archive_entry_acl_next(e, acl_type, &t, &perm, &tag, &id, &ace_name) == ARCHIVE_OK) {
      uint16_t k = 0;
      switch (tag) {
        case ARCHIVE_ENTRY_ACL_USER_OBJ: k = 0x01; break;
        case ARCHIVE_ENTRY_ACL_USER: k = 0x02; break;
        case ARCHIVE_ENTRY_ACL_GROUP_OBJ: k = 0x04; break;
        case ARCHIVE_ENTRY_ACL_GROUP: k = 0x08; break;
        case ARCHIVE_ENTRY_ACL_MASK: k = 0x10; break;
        case ARCHIVE_ENTRY_ACL_OTHER: k = 0x20; break;
        default: continue;  // NFSv4 entries have no POSIX form
      }
      const bool named = k == 0x02 || k == 0x08;
      aces.push_back({k, static_cast<uint16_t>(perm & 07), named ? static_cast<uint32_t>(id) : 0xffffffffu});
    }
    if (aces.empty()) continue;
    std::sort(aces.begin(), aces.end(), [](const Ace& x, const Ace& y) { return x.tag != y.tag ? x.tag < y.tag : x.id < y.id; });
    std::string v;
    auto put = [&](uint32_t x, int bytes) {
      for (int i = 0; i < bytes; ++i) v.push_back(static_cast<char>((x >> (8 * i)) & 0xff));
    };
    put(2, 4);
    for (const Ace& x : aces) {
      put(x.tag, 2);
      put(x.perm, 2);
      put(x.id, 4);
    }
    a.xattrs.emplace_back(xname, std::move(v));
  }
  // A name given twice (a damaged input): the last one.
  std::stable_sort(a.xattrs.begin(), a.xattrs.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  for (size_t i = 1; i < a.xattrs.size();) {
    if (a.xattrs[i].first == a.xattrs[i - 1].first) {
      a.xattrs.erase(a.xattrs.begin() + static_cast<std::ptrdiff_t>(i) - 1);
    } else {
      ++i;
    }
  }
  return a;
}

}  // namespace

Result<ArchiveImport> ArchiveImport::read(const std::string& input, Writer& writer, const std::string& spool_parent) {
  MMAR_TRY(libarchive_load());
  auto state = std::make_unique<State>();
  State& st = *state;
  const std::string shown = input == "-" ? std::string("<stdin>") : input;
  std::string dir = (spool_parent.empty() ? std::string(".") : spool_parent) + "/.mmar-import.XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) return sys_error("create a spool directory " + dir, errno);
  st.spool = dir;
  st.spool_on_signal = TemporaryGuard(dir, true);

  // libarchive converts names between the archive's charset and the
  // locale's; in the C locale a UTF-8 name (every zip's, flagged or not)
  // has no conversion and comes back as no name. A UTF-8 locale for this
  // thread only (uselocale), for as long as the input is read.
  struct ThreadLocale {
    locale_t utf8 = ::newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
    locale_t previous = utf8 != static_cast<locale_t>(nullptr) ? ::uselocale(utf8) : static_cast<locale_t>(nullptr);
    ~ThreadLocale() {
      if (utf8 != static_cast<locale_t>(nullptr)) {
        ::uselocale(previous);
        ::freelocale(utf8);
      }
    }
  } locale;
  ReadHandle r;
  if (r.a == nullptr) return Error(Errc::io, shown + ": libarchive: out of memory");
  archive_read_support_filter_all(r.a);
  // Archive formats, not mtree (a text manifest: any text file parses as
  // one, describing files it does not contain) nor raw.
  archive_read_support_format_tar(r.a);
  archive_read_support_format_cpio(r.a);
  archive_read_support_format_zip(r.a);
  archive_read_support_format_iso9660(r.a);
  archive_read_support_format_7zip(r.a);
  archive_read_support_format_ar(r.a);
  archive_read_support_format_rar(r.a);
  archive_read_support_format_rar5(r.a);
  archive_read_support_format_xar(r.a);
  archive_read_support_format_cab(r.a);
  archive_read_support_format_lha(r.a);
  const int opened = input == "-" ? archive_read_open_fd(r.a, 0, 1 << 20)
                                  : archive_read_open_filename(r.a, input.c_str(), 1 << 20);
  if (opened != ARCHIVE_OK) {
    std::string message = shown + ": not an archive libarchive reads (" + archive_message(r.a) + ")";
    // A filesystem image (squashfs, EROFS) is named, with what converts it.
    if (input != "-") {
      std::byte head[4096];
      UniqueFd fd(::open(input.c_str(), O_RDONLY | O_CLOEXEC));
      const ssize_t got = fd ? ::pread(fd.get(), head, sizeof head, 0) : -1;
      const char* foreign = got > 0 ? foreign_format_of({head, static_cast<size_t>(got)}) : nullptr;
      if (foreign != nullptr) message += ": " + std::string(foreign) + " (" + conversion_hint(foreign, input) + ")";
    }
    return Error(Errc::unsupported, std::move(message));
  }

  std::map<std::string, Pending> pending;                // by normalised name
  std::map<std::string, std::string> spooled_by_name;    // file name -> its spool file (hard link targets)
  // A hard-link group (keyed by the spool file of its first entry, the one
  // that is not a link) -> that entry's attributes. Tar writes the
  // extended attributes (capabilities, ACLs) only on that entry, its link
  // entries carry none; yet each name is the same file, and a link's name
  // may sort first in the archive.
  std::map<std::string, std::string> group_of_spool;  // spool file -> its group
  std::map<std::string, Attributes> group_attrs;
  uint64_t serial = 0;
  std::string entry_name;
  // The entry's data blocks written at their offsets into `fd` (sparse
  // entries stay sparse); returns the end of the last block.
  auto spool_data = [&](int fd, const std::string& path) -> Result<int64_t> {
    int64_t end = 0;
    for (;;) {
      const void* buf = nullptr;
      size_t len = 0;
      la_int64_t off = 0;
      const int d = archive_read_data_block(r.a, &buf, &len, &off);
      if (d == ARCHIVE_EOF) break;
      // A warning while reading data is a damaged entry (a zip CRC
      // mismatch, say): never stored as if it were good.
      if (d != ARCHIVE_OK) {
        return Error(Errc::malformed, shown + ": entry '" + entry_name + "': " + archive_message(r.a));
      }
      if (off < 0) return Error(Errc::malformed, shown + ": entry '" + entry_name + "': negative data offset");
      const auto* b = static_cast<const std::byte*>(buf);
      for (size_t done = 0; done < len;) {
        const ssize_t n = ::pwrite(fd, b + done, len - done, static_cast<off_t>(off + static_cast<int64_t>(done)));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return sys_error("write " + path + " (spooling '" + entry_name + "')", errno);
        done += static_cast<size_t>(n);
      }
      end = std::max<int64_t>(end, off + static_cast<int64_t>(len));
      st.stats.bytes += len;
    }
    return end;
  };
  for (;;) {
    struct archive_entry* e = nullptr;
    const int rc = archive_read_next_header(r.a, &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc == ARCHIVE_FATAL || rc == ARCHIVE_RETRY) {
      return Error(Errc::malformed, shown + ": entry " + std::to_string(st.stats.entries + 1) + ": " +
                                        archive_message(r.a));
    }
    // ARCHIVE_WARN (an unknown extended header, say) still gives an entry.
    ++st.stats.entries;
    // In the C locale libarchive cannot convert UTF-8 names to the locale's
    // charset: take them as UTF-8 (names are bytes to mmar).
    const char* raw_name = archive_entry_pathname(e);
    if (raw_name == nullptr) raw_name = archive_entry_pathname_utf8(e);
    if (raw_name == nullptr) {
      return Error(Errc::malformed, shown + ": entry " + std::to_string(st.stats.entries) + " has no name");
    }
    entry_name = raw_name;
    std::string_view trimmed = entry_name;
    while (!trimmed.empty() && trimmed.back() == '/') trimmed.remove_suffix(1);
    if (trimmed.empty() || trimmed == "." || trimmed == "./") continue;  // the root itself
    auto normal = normalize_member_name(trimmed);
    if (!normal.ok()) return Error(Errc::malformed, shown + ": entry '" + entry_name + "': " + normal.error().message());
    const std::string name = *normal;
    // Left out, as add_tree leaves it out; a file is spooled all the same
    // (a later hard link may need its data), never added.
    const bool excluded = writer.excludes(name);
    if (!excluded && pending.count(name) != 0) ++st.stats.replaced;

    Pending p;
    p.mode = static_cast<uint32_t>(archive_entry_perm(e)) & 07777;
    p.mtime_ns = entry_mtime_ns(e);
    p.attrs = entry_attributes(e);
    const char* hard = archive_entry_hardlink(e);
    if (hard == nullptr) hard = archive_entry_hardlink_utf8(e);
    const mode_t type = archive_entry_filetype(e);
    if (hard != nullptr && *hard != '\0') {
      auto target = normalize_member_name(hard);
      if (!target.ok()) return Error(Errc::malformed, shown + ": entry '" + entry_name + "': hard link target: " +
                                                          target.error().message());
      auto it = spooled_by_name.find(*target);
      if (it == spooled_by_name.end()) {
        return Error(Errc::malformed, shown + ": entry '" + entry_name + "': hard link to '" + *target +
                                          "', which is not an earlier regular file");
      }
      const std::string path = st.spool + "/" + std::to_string(serial++);
      if (::link(it->second.c_str(), path.c_str()) != 0) return sys_error("link " + path, errno);
      st.spooled.push_back(path);
      p.type = Pending::file;
      p.spool_path = path;
      p.link_group = group_of_spool[it->second];
      group_of_spool[path] = p.link_group;
      // A link shares its target's inode: mode and time are the target's.
      struct stat ts {};
      if (::stat(path.c_str(), &ts) == 0) {
        p.mode = ts.st_mode & 07777;
        p.mtime_ns = static_cast<int64_t>(ts.st_mtim.tv_sec) * 1000000000 + ts.st_mtim.tv_nsec;
      }
      if (!excluded) ++st.stats.hard_links;
      spooled_by_name[name] = path;
      // A link that carries the data (cpio writes it with the last name of
      // a file, earlier names empty): into the shared inode.
      if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0) {
        UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
        if (!fd) return sys_error("open " + path, errno);
        MMAR_ASSIGN(int64_t end, spool_data(fd.get(), path));
        const int64_t size = std::max<int64_t>(archive_entry_size(e), end);
        if (::ftruncate(fd.get(), size) != 0) return sys_error("truncate " + path, errno);
        // Its mode and time are the file's (the earlier, empty names carry
        // them too, but this entry is the one with the data).
        if (::fchmod(fd.get(), p.mode) != 0) return sys_error("chmod " + path, errno);
        struct timespec times[2] = {{0, UTIME_OMIT}, split_ns(p.mtime_ns)};
        if (::futimens(fd.get(), times) != 0) return sys_error("set the time of " + path, errno);
      } else {
        archive_read_data_skip(r.a);
      }
    } else if (type == AE_IFREG) {
      const std::string path = st.spool + "/" + std::to_string(serial++);
      UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
      if (!fd) return sys_error("create " + path, errno);
      st.spooled.push_back(path);
      MMAR_ASSIGN(int64_t end, spool_data(fd.get(), path));
      const int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : end;
      // A size larger than the data is a hole only where the input says so
      // (a sparse entry); otherwise the input lies or is cut short.
      if (size > end && archive_entry_sparse_count(e) == 0) {
        return Error(Errc::malformed, shown + ": entry '" + entry_name + "': " + std::to_string(size) +
                                          " bytes declared, " + std::to_string(end) + " read");
      }
      if (::ftruncate(fd.get(), std::max(size, end)) != 0) return sys_error("truncate " + path, errno);
      // The spool file carries the entry's mode and time: the Writer takes
      // them from it (and a hard link to it shares them, as in the input).
      if (::fchmod(fd.get(), p.mode) != 0) return sys_error("chmod " + path, errno);
      struct timespec times[2] = {{0, UTIME_OMIT}, split_ns(p.mtime_ns)};
      if (::futimens(fd.get(), times) != 0) return sys_error("set the time of " + path, errno);
      p.type = Pending::file;
      p.spool_path = path;
      p.link_group = path;
      group_of_spool[path] = path;
      group_attrs[path] = p.attrs;
      spooled_by_name[name] = path;
      if (!excluded) ++st.stats.files;
    } else if (excluded) {
      archive_read_data_skip(r.a);
    } else if (type == AE_IFDIR) {
      p.type = Pending::dir;
    } else if (type == AE_IFLNK) {
      const char* target = archive_entry_symlink(e);
      if (target == nullptr) target = archive_entry_symlink_utf8(e);
      if (target == nullptr) return Error(Errc::malformed, shown + ": symlink '" + entry_name + "' has no target");
      p.type = Pending::symlink;
      p.target = target;
    } else if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFIFO || type == AE_IFSOCK) {
      p.type = Pending::special;
      p.mode |= static_cast<uint32_t>(type);
      archive_read_data_skip(r.a);
    } else {
      return Error(Errc::unsupported, shown + ": entry '" + entry_name + "' is " + type_name(type) +
                                          ", which an mmar archive cannot hold");
    }
    if (excluded) {
      ++st.stats.excluded;
      continue;
    }
    pending[name] = std::move(p);
  }

  // Parents a name implies but the input did not list.
  std::vector<std::string> implied;
  for (const auto& [name, p] : pending) {
    for (size_t slash = name.find('/'); slash != std::string::npos; slash = name.find('/', slash + 1)) {
      const std::string parent = name.substr(0, slash);
      if (pending.count(parent) == 0) implied.push_back(parent);
    }
  }
  for (const std::string& parent : implied) {
    Pending d;
    d.type = Pending::dir;
    d.mode = 0755;
    pending.emplace(parent, d);
  }
  for (auto& [name, p] : pending) {
    Result<void> added = success();
    switch (p.type) {
      case Pending::file:
        added = writer.add_path(name, p.spool_path);
        break;
      case Pending::dir:
        ++st.stats.directories;
        added = writer.add_directory(name, S_IFDIR | p.mode, p.mtime_ns);
        break;
      case Pending::symlink:
        ++st.stats.symlinks;
        added = writer.add_symlink(name, p.target, p.mtime_ns);
        break;
      case Pending::special:
        ++st.stats.specials;
        added = writer.add_special(name, p.mode, p.mtime_ns);
        break;
    }
    if (!added.ok()) return std::move(added).error().with_context(shown);
    // The input's attributes, never the spool file's (its owner is whoever
    // runs this; its xattrs the spool's filesystem's): given for every
    // entry, empty ones too. The writer finds the hard links among the
    // spooled files itself. Implied parents have none.
    {
      // A name of a hard-linked file: the file's attributes, from the entry
      // that has them (mode and time are the shared spool file's already).
      auto group = p.type == Pending::file ? group_attrs.find(p.link_group) : group_attrs.end();
      Attributes a = group != group_attrs.end() ? group->second : p.attrs;
      // Root's own ownership needs no record, unless setuid/setgid bits
      // need their owner (FORMAT.md "Attributes").
      if (!attrs::owner_needs_record(a.uid, a.gid, p.mode) && (a.uname.empty() || a.uname == "root") &&
          (a.gname.empty() || a.gname == "root")) {
        a.has_owner = false;
        a.uname.clear();
        a.gname.clear();
      }
      added = writer.set_attributes(name, std::move(a));
      if (!added.ok()) return std::move(added).error().with_context(shown + ": entry '" + name + "'");
    }
  }
  return ArchiveImport(std::move(state));
}

Result<ExportStats> export_archive(const Archive& archive, const std::string& output, const ExportOptions& options) {
  MMAR_TRY(libarchive_load());
  WriteHandle w;
  if (w.a == nullptr) return Error(Errc::io, output + ": libarchive: out of memory");
  const std::string shown = output == "-" ? std::string("<stdout>") : output;
  auto la_fail = [&](const std::string& what) {
    return Error(Errc::io, shown + ": " + what + ": " + archive_message(w.a));
  };
  // The format and the filter: named, or from the output's extension;
  // pax without compression otherwise.
  std::string format = options.format, filter = options.filter;
  if (output != "-") {
    static constexpr struct {
      const char* ext;
      const char* format;
      const char* filter;
    } kByExtension[] = {
        {".tar", "pax", "none"},       {".tar.gz", "pax", "gzip"},   {".tgz", "pax", "gzip"},
        {".tar.xz", "pax", "xz"},      {".txz", "pax", "xz"},        {".tar.zst", "pax", "zstd"},
        {".tzst", "pax", "zstd"},      {".tar.bz2", "pax", "bzip2"}, {".tbz2", "pax", "bzip2"},
        {".zip", "zip", "none"},       {".cpio", "cpio", "none"},    {".cpio.gz", "cpio", "gzip"},
        {".cpio.xz", "cpio", "xz"},    {".cpio.zst", "cpio", "zstd"},
    };
    for (const auto& x : kByExtension) {
      const std::string_view ext = x.ext;
      if (output.size() > ext.size() && output.compare(output.size() - ext.size(), ext.size(), ext) == 0) {
        if (format.empty()) format = x.format;
        if (filter.empty()) filter = x.filter;
      }
    }
  }
  if (format.empty()) format = "pax";
  if (filter.empty()) filter = "none";
  int rc = ARCHIVE_FATAL;
  if (format == "pax") rc = archive_write_set_format_pax(w.a);  // nanosecond times, always
  else if (format == "gnu") rc = archive_write_set_format_gnutar(w.a);
  else if (format == "ustar") rc = archive_write_set_format_ustar(w.a);
  else if (format == "zip") rc = archive_write_set_format_zip(w.a);
  else if (format == "cpio") rc = archive_write_set_format_cpio_newc(w.a);
  else return Error(Errc::invalid_argument, "unknown export format '" + format + "' (pax, gnu, ustar, zip, cpio)");
  if (rc != ARCHIVE_OK) return la_fail("format " + format);
  // Member names are bytes, mostly UTF-8: zip flags them as UTF-8 (bit 11)
  // so that readers do not take them for cp437.
  if (format == "zip" && archive_write_set_format_option(w.a, "zip", "hdrcharset", "UTF-8") < ARCHIVE_WARN) {
    return la_fail("zip names as UTF-8");
  }
  if (filter == "none") rc = archive_write_add_filter_none(w.a);
  else if (filter == "gzip") rc = archive_write_add_filter_gzip(w.a);
  else if (filter == "xz") rc = archive_write_add_filter_xz(w.a);
  else if (filter == "zstd") rc = archive_write_add_filter_zstd(w.a);
  else if (filter == "bzip2") rc = archive_write_add_filter_bzip2(w.a);
  else return Error(Errc::invalid_argument, "unknown compression '" + filter + "' (none, gzip, xz, zstd, bzip2)");
  if (rc != ARCHIVE_OK) return la_fail("compression " + filter);

  std::optional<AtomicFile> file;
  int fd = 1;
  if (output != "-") {
    MMAR_ASSIGN(AtomicFile f, AtomicFile::create(output));
    file.emplace(std::move(f));
    fd = file->fd();
  }
  if (archive_write_open_fd(w.a, fd) != ARCHIVE_OK) return la_fail("open");

  ExportStats stats;
  struct archive_entry* e = archive_entry_new();
  struct EntryFree {
    struct archive_entry* e;
    ~EntryFree() { archive_entry_free(e); }
  } free_entry{e};
  std::vector<std::byte> buf(size_t{1} << 20);
  std::map<uint64_t, std::string> first_of_link;  // link id -> first name written
  auto r = archive.for_each([&](const Member& m) -> Result<void> {
    archive_entry_clear(e);
    const std::string name(m.name);
    // zip: names that are UTF-8 are given as such (flagged in the header);
    // tar keeps any bytes as they are.
    const bool as_utf8 = format == "zip" && valid_utf8(name);
    if (as_utf8) {
      archive_entry_set_pathname_utf8(e, name.c_str());
    } else {
      archive_entry_set_pathname(e, name.c_str());
    }
    const struct timespec mtime = split_ns(m.mtime_ns);
    archive_entry_set_mtime(e, mtime.tv_sec, mtime.tv_nsec);
    archive_entry_set_perm(e, m.mode & 07777);
    archive_entry_set_size(e, 0);  // cpio wants a size on every entry
    MMAR_ASSIGN(Attributes at, archive.attributes(m));
    if (at.has_owner) {
      archive_entry_set_uid(e, at.uid);
      archive_entry_set_gid(e, at.gid);
      if (!at.uname.empty()) archive_entry_set_uname(e, at.uname.c_str());
      if (!at.gname.empty()) archive_entry_set_gname(e, at.gname.c_str());
    } else {
      archive_entry_set_uname(e, "root");
      archive_entry_set_gname(e, "root");
    }
    for (const auto& [xn, xv] : at.xattrs) {
      archive_entry_xattr_add_entry(e, xn.c_str(), xv.data(), xv.size());
      // POSIX ACLs also as ACL entries: tar readers (GNU tar --acls) take
      // them from SCHILY.acl.*, not from the xattr.
      if (xn == "system.posix_acl_access" || xn == "system.posix_acl_default") {
        add_acl_entries(e, xv, xn == "system.posix_acl_access" ? ARCHIVE_ENTRY_ACL_TYPE_ACCESS
                                                                : ARCHIVE_ENTRY_ACL_TYPE_DEFAULT);
      }
    }
    const uint32_t type = m.mode & S_IFMT;
    // Later names of a hard link: a tar link entry to the first (zip has
    // no hard links, and newc cpio would need inode numbers and the data
    // with the last name: there each name carries the bytes).
    const bool tar_links = format == "pax" || format == "gnu" || format == "ustar";
    if (at.link_id != 0 && m.is_regular() && tar_links) {
      auto [first, fresh] = first_of_link.try_emplace(at.link_id, name);
      if (!fresh) {
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, first->second.c_str());
        if (archive_write_header(w.a, e) < ARCHIVE_WARN) return la_fail("'" + name + "'");
        ++stats.members;
        return success();
      }
    }
    if (type == S_IFCHR || type == S_IFBLK || type == S_IFIFO || type == S_IFSOCK) {
      archive_entry_set_filetype(e, type == S_IFCHR   ? AE_IFCHR
                                    : type == S_IFBLK ? AE_IFBLK
                                    : type == S_IFIFO ? AE_IFIFO
                                                      : AE_IFSOCK);
      archive_entry_set_rdevmajor(e, at.rdev_major);
      archive_entry_set_rdevminor(e, at.rdev_minor);
    } else if (m.is_dir()) {
      archive_entry_set_filetype(e, AE_IFDIR);
    } else if (m.is_symlink()) {
      MMAR_ASSIGN(Bytes target, archive.read(m));
      const std::string t(reinterpret_cast<const char*>(target.data()), target.size());
      archive_entry_set_filetype(e, AE_IFLNK);
      if (format == "zip" && valid_utf8(t)) {
        archive_entry_set_symlink_utf8(e, t.c_str());
      } else {
        archive_entry_set_symlink(e, t.c_str());
      }
    } else {
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_size(e, static_cast<la_int64_t>(m.size));
    }
    (void)as_utf8;
    if (archive_write_header(w.a, e) < ARCHIVE_WARN) return la_fail("'" + name + "'");
    if (m.is_regular() && m.size > 0) {
      MemberReader reader(archive, m);
      for (;;) {
        MMAR_ASSIGN(size_t n, reader.read(buf.data(), buf.size()));
        if (n == 0) break;
        if (archive_write_data(w.a, buf.data(), n) < 0) return la_fail("'" + name + "'");
        stats.bytes += n;
      }
    }
    ++stats.members;
    return success();
  });
  if (!r.ok()) return std::move(r).error();
  if (archive_write_close(w.a) != ARCHIVE_OK) return la_fail("close");
  if (file) MMAR_TRY(file->commit());
  return stats;
}

#endif  // MMAR_HAVE_LIBARCHIVE

}  // namespace mmar
