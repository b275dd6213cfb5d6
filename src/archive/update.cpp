// In-place updates of an mmar archive: a new generation appended to the
// file (docs/FORMAT.md, "Updating in place"). The steps, each durable before
// the next:
//   1. new member data, appended after everything the file holds;
//   2. the new index after it; fdatasync;
//   3. the superblock slot *not* in use, rewritten with generation + 1 and
//      the new index; fdatasync.
// A crash before step 3 completes leaves the old superblock the valid one
// with the higher generation (a torn slot fails its checksum), so readers
// see the old generation; after it, the new one. Data of the old generation
// is never overwritten, so a process reading the old generation meanwhile
// keeps reading correct bytes. `mmar compact` drops superseded data later.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "archive/detect.h"
#include "archive/format.h"
#include "mmar/archive.h"
#include "support/checked.h"
#include "support/fd.h"
#include "support/io.h"
#include "xxhash.h"

namespace mmar {

namespace {

bool sb_valid(const format::Superblock& sb) {
  return std::memcmp(sb.sb_magic, format::kMagic, sizeof sb.sb_magic) == 0 &&
         XXH3_64bits(&sb, offsetof(format::Superblock, sb_xxh3)) == sb.sb_xxh3;
}

}  // namespace

Result<void> commit_generation(const std::string& path, const Archive& current, std::vector<UpdateMember> members) {
  if (current.format() != Format::mmar) {
    return Error(Errc::invalid_argument, path + ": only mmar archives can be updated in place");
  }
  std::sort(members.begin(), members.end(),
            [](const UpdateMember& a, const UpdateMember& b) { return a.name < b.name; });
  for (size_t i = 0; i < members.size(); ++i) {
    if (members[i].name.empty()) return Error(Errc::invalid_argument, path + ": a member without a name");
    if (i > 0 && members[i].name == members[i - 1].name) {
      return Error(Errc::invalid_argument, path + ": duplicate member name '" + members[i].name + "'");
    }
  }
  int raw = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (raw < 0) return sys_error(path, errno);
  UniqueFd fd(raw);

  // The slot in use now: the valid one with the higher generation.
  format::Superblock slots[2];
  if (!pread_full(fd.get(), slots, sizeof slots, 0)) return sys_error("read " + path, errno ? errno : EIO);
  int cur = -1;
  for (int s = 0; s < 2; ++s) {
    if (sb_valid(slots[s]) && (cur < 0 || slots[s].sb_generation > slots[cur].sb_generation)) cur = s;
  }
  if (cur < 0) return Error(Errc::malformed, path + ": both superblocks fail their checksum");
  if (slots[cur].sb_generation != current.generation()) {
    return Error(Errc::invalid_argument, path + ": changed since it was opened (generation " +
                                             std::to_string(static_cast<uint64_t>(slots[cur].sb_generation)) +
                                             ", expected " + std::to_string(current.generation()) + ")");
  }
  const uint64_t align = current.alignment();
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return sys_error("stat " + path, errno);
  uint64_t offset = static_cast<uint64_t>(st.st_size);

  // Step 1: data of new and changed members.
  std::vector<format::Entry> entries(members.size());
  std::string names;
  std::vector<char> buf(1 << 20);
  std::map<std::string, uint32_t, std::less<>> index_of;
  for (uint32_t i = 0; i < members.size(); ++i) index_of[members[i].name] = i;
  for (size_t i = 0; i < members.size(); ++i) {
    const UpdateMember& u = members[i];
    format::Entry& e = entries[i];
    e.me_name_offset = static_cast<uint32_t>(names.size());
    e.me_name_len = static_cast<uint32_t>(u.name.size());
    names += u.name;
    e.me_mode = u.mode;
    e.me_mtime_ns = static_cast<uint64_t>(u.mtime_ns);
    e.me_link = format::kNoLink;
    if (u.keep) {
      MMAR_ASSIGN(Member old, current.at(*u.keep));
      e.me_data_offset = old.data_offset;
      e.me_stored_size = old.stored_size;
      e.me_size = old.size;
      e.me_xxh3 = old.xxh3;
      e.me_codec = static_cast<uint8_t>(old.codec);
      e.me_kind = static_cast<uint8_t>(old.kind);
      e.me_flags = static_cast<uint16_t>((old.page_aligned ? format::kFlagPageAligned : 0) |
                                         (old.has_btf ? format::kFlagHasBtf : 0));
      if (old.link) {
        MMAR_ASSIGN(Member target, current.at(*old.link));
        auto it = index_of.find(target.name);
        if (it != index_of.end()) e.me_link = it->second;
      }
      continue;
    }
    // New bytes: from the fd, or the symlink target; stored raw.
    const bool is_link = (u.mode & S_IFMT) == S_IFLNK;
    const bool is_dir = (u.mode & S_IFMT) == S_IFDIR;
    const uint64_t size = is_dir ? 0 : is_link ? u.symlink_target.size() : u.size;
    std::vector<std::byte> head;
    if (size >= align) {
      offset = *align_up(offset, align);
      e.me_flags = format::kFlagPageAligned;
    } else {
      offset = *align_up(offset, format::kPackedAlign);
    }
    XXH3_state_t* h = XXH3_createState();
    XXH3_64bits_reset(h);
    uint64_t done = 0;
    while (done < size) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - done));
      if (is_link) {
        std::memcpy(buf.data(), u.symlink_target.data() + done, n);
      } else if (!pread_full(u.data_fd, buf.data(), n, done)) {
        XXH3_freeState(h);
        return sys_error(path + ": read new contents of '" + u.name + "'", errno ? errno : EIO);
      }
      if (head.size() < 65536) {
        head.insert(head.end(), reinterpret_cast<std::byte*>(buf.data()),
                    reinterpret_cast<std::byte*>(buf.data()) + std::min<size_t>(n, 65536 - head.size()));
      }
      XXH3_64bits_update(h, buf.data(), n);
      auto w = pwrite_full(fd.get(), buf.data(), n, offset + done, path);
      if (!w.ok()) {
        XXH3_freeState(h);
        return w;
      }
      done += n;
    }
    e.me_xxh3 = is_dir ? 0 : XXH3_64bits_digest(h);
    XXH3_freeState(h);
    e.me_data_offset = size == 0 ? 0 : offset;
    e.me_stored_size = size;
    e.me_size = size;
    e.me_codec = static_cast<uint8_t>(format::EntryCodec::none);
    if (!is_dir && !is_link) {
      Detected d = detect_kind(head);
      e.me_kind = static_cast<uint8_t>(d.kind);
      if (d.has_btf) e.me_flags = static_cast<uint16_t>(e.me_flags | format::kFlagHasBtf);
    } else {
      e.me_kind = static_cast<uint8_t>(Kind::data);
    }
    offset += size;
  }

  // Step 2: the index, then make everything so far durable.
  offset = *align_up(offset, 8);
  const uint64_t index_offset = offset;
  std::vector<std::byte> index(entries.size() * format::kEntrySize + names.size());
  if (!entries.empty()) std::memcpy(index.data(), entries.data(), entries.size() * format::kEntrySize);
  std::memcpy(index.data() + entries.size() * format::kEntrySize, names.data(), names.size());
  MMAR_TRY(pwrite_full(fd.get(), index.data(), index.size(), index_offset, path));
  if (fdatasync(fd.get()) != 0) return sys_error("fsync " + path, errno);

  // Step 3: the other slot, one generation up.
  format::Superblock sb = slots[cur];
  sb.sb_generation = slots[cur].sb_generation + 1;
  sb.sb_index_offset = index_offset;
  sb.sb_index_size = index.size();
  sb.sb_member_count = static_cast<uint32_t>(entries.size());
  sb.sb_index_xxh3 = XXH3_64bits(index.data(), index.size());
  sb.sb_xxh3 = XXH3_64bits(&sb, offsetof(format::Superblock, sb_xxh3));
  MMAR_TRY(pwrite_full(fd.get(), &sb, sizeof sb, static_cast<uint64_t>(1 - cur) * format::kSuperblockSize, path));
  if (fdatasync(fd.get()) != 0) return sys_error("fsync " + path, errno);
  return success();
}

}  // namespace mmar

namespace mmar {

Result<WriteStats> compact_archive(const std::string& path, WriteOptions options) {
  MMAR_ASSIGN(Archive a, Archive::open(path));
  if (a.format() != Format::mmar) return Error(Errc::invalid_argument, path + ": not an mmar archive");
  // Members go through files in a scratch directory beside the archive (the
  // writer reads files when it writes), so memory stays bounded.
  const size_t slash = path.rfind('/');
  std::string scratch =
      (slash == std::string::npos ? std::string(".") : path.substr(0, slash)) + "/.mmar-compact-XXXXXX";
  if (mkdtemp(scratch.data()) == nullptr) return sys_error("create " + scratch, errno);
  struct Cleanup {
    std::string dir;
    std::vector<std::string> files;
    ~Cleanup() {
      for (const auto& f : files) ::unlink(f.c_str());
      ::rmdir(dir.c_str());
    }
  } cleanup{scratch, {}};
  if (options.alignment == 0) options.alignment = static_cast<uint32_t>(a.alignment());
  Writer w(options);
  std::vector<std::pair<std::string, std::string>> links;
  auto copied = a.for_each([&](const Member& m) -> Result<void> {
    const std::string name(m.name);
    if (m.is_dir()) return w.add_directory(name, m.mode, m.mtime_ns);
    MMAR_ASSIGN(Bytes bytes, a.read(m));
    if (m.is_symlink()) {
      return w.add_symlink(name, std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()), m.mtime_ns);
    }
    const std::string file = scratch + "/" + std::to_string(m.index);
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return sys_error("create " + file, errno);
    UniqueFd out(fd);
    cleanup.files.push_back(file);
    MMAR_TRY(pwrite_full(fd, bytes.data(), bytes.size(), 0, file));
    if (fchmod(fd, m.mode & 07777) != 0) return sys_error("chmod " + file, errno);
    const timespec times[2] = {to_timespec(m.mtime_ns), to_timespec(m.mtime_ns)};
    if (futimens(fd, times) != 0) return sys_error("set times of " + file, errno);
    if (m.link) {
      MMAR_ASSIGN(Member target, a.at(*m.link));
      links.emplace_back(name, std::string(target.name));
    }
    return w.add_path(name, file);
  });
  if (!copied.ok()) return std::move(copied).error();
  for (const auto& [name, target] : links) MMAR_TRY(w.set_link(name, target));
  return w.write(path);
}

}  // namespace mmar
