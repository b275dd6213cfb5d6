// SPDX-License-Identifier: BSD-2-Clause
// The writable FUSE filesystem (mmar mount --rw). The tree is held in
// memory; each regular file's bytes are where they were last committed (a
// member of the archive as opened, or what a commit of this mount stored),
// overlaid by the ranges written since: those live in a sparse unnamed file
// beside the archive (the spill), at their own offsets, and only they are
// appended by the next commit (an extent map), so a commit costs what
// changed, not the file's size.
//
// Commits go through ArchiveUpdater, which holds the archive's writer lock
// for the life of the mount (a second writer is refused), writes through
// the locked fd (never by path: the path may lead through this mount), and
// appends only what changed: the dirty files' data and an index delta. A
// commit runs on fsync/fsyncdir (mmar umount asks for one before it
// unmounts, so a failure reaches its exit status), on close once too many
// files wait to be committed, and at unmount. A failed commit leaves the
// archive as it was and the changes pending; the error goes to the caller.
//
// Coherence between write() and mmap comes from the kernel's page cache,
// which this filesystem never invalidates (files open with keep_cache; the
// archive changes only through this mount): a write() lands in the cached
// pages that shared mappings map, and stores into a MAP_SHARED mapping are
// in the pages read() reads, and written back here as WRITE requests.
//
// One mutex guards the tree (lock order: only it). Handlers never throw
// into libfuse: bad_alloc becomes ENOMEM.
#define FUSE_USE_VERSION 312
#include <fcntl.h>
#include <fuse3/fuse_lowlevel.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <unordered_map>

#include "archive/names.h"
#include "fs/rw.h"
#include "support/fd.h"
#include "support/io.h"

namespace mmar::fs {

namespace {

constexpr double kTimeout = 1.0;
// Files whose new contents wait in temporary files for a commit: past
// either bound, the next close commits, so file descriptors and disk space
// used stay bounded however many files are written between fsyncs.
constexpr size_t kMaxPendingFiles = 256;
constexpr uint64_t kMaxPendingBytes = uint64_t{256} << 20;
constexpr size_t kMaxComponent = NAME_MAX;  // 255

int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

struct Node {
  fuse_ino_t ino = 0;
  fuse_ino_t parent = 0;
  std::string name;  // in its parent ("" for the root)
  uint32_t mode = 0;
  int64_t mtime_ns = 0;
  // Where the committed contents are: a member of the updater's base(), or
  // bytes a commit of this mount appended; neither for a new empty file.
  std::optional<uint32_t> member;
  std::optional<StoredExtent> extent;
  UniqueFd data;  // the spill: bytes written since the last commit, at their offsets
  // Ranges [begin, end) whose bytes are the spill's (zeros past its end), not
  // the committed ones: what was written, and what growth exposed.
  std::map<uint64_t, uint64_t> dirty;
  bool data_dirty = false;  // the bytes differ from what is committed (ranges or size)
  uint64_t size = 0;
  std::string link;                                     // symlink target
  Attributes attrs;                                     // as committed (owner, xattrs, ...), kept on rewrite
  std::map<std::string, fuse_ino_t, std::less<>> kids;  // directories
  uint64_t lookups = 0;
  unsigned opens = 0;
  bool unlinked = false;
  bool is_dir() const { return S_ISDIR(mode); }
};

int errno_of(const Error& e) { return e.sys_errno() != 0 ? e.sys_errno() : EIO; }

class RwFs {
 public:
  RwFs(ArchiveUpdater u, UniqueFd spill_dir) : updater_(std::move(u)), spill_dir_(std::move(spill_dir)) {}

  Result<void> build() {
    auto root = std::make_unique<Node>();
    root->ino = FUSE_ROOT_ID;
    root->parent = FUSE_ROOT_ID;
    root->mode = S_IFDIR | 0755;
    root->mtime_ns = now_ns();
    nodes_[FUSE_ROOT_ID] = std::move(root);
    const Archive& a = updater_.base();
    return a.for_each([&](const Member& m) -> Result<void> {
      const size_t slash = m.name.rfind('/');
      MMAR_ASSIGN(Node * dir, ensure_dirs(slash == std::string_view::npos ? std::string_view() : m.name.substr(0, slash)));
      std::string base(m.name.substr(slash == std::string_view::npos ? 0 : slash + 1));
      Node* n;
      auto it = dir->kids.find(base);
      if (it != dir->kids.end()) {
        n = nodes_[it->second].get();  // a directory made for a deeper member first
        if (!m.is_dir()) {
          return Error(Errc::malformed, a.name() + ": member '" + std::string(m.name) +
                                            "' has members below it but is not a directory");
        }
      } else {
        n = add_node(*dir, base);
      }
      n->mode = m.mode;
      n->mtime_ns = m.mtime_ns;
      MMAR_ASSIGN(n->attrs, a.attributes(m));
      if (!m.is_dir()) {
        n->member = m.index;
        n->size = m.size;
      }
      if (m.is_symlink()) {
        MMAR_ASSIGN(Bytes b, a.read(m));
        n->link.assign(reinterpret_cast<const char*>(b.data()), b.size());
      }
      return success();
    });
  }

  std::mutex mu;

  Node* get(fuse_ino_t ino) {
    auto it = nodes_.find(ino);
    return it == nodes_.end() ? nullptr : it->second.get();
  }

  Node* add_node(Node& dir, const std::string& name) {
    auto n = std::make_unique<Node>();
    n->ino = next_ino_++;
    n->parent = dir.ino;
    n->name = name;
    Node* raw = n.get();
    dir.kids[name] = n->ino;
    nodes_[n->ino] = std::move(n);
    return raw;
  }

  void fill(const Node& n, struct stat* st) const {
    std::memset(st, 0, sizeof *st);
    st->st_ino = n.ino;
    st->st_mode = n.mode;
    st->st_nlink = n.is_dir() ? 2 : 1;
    // The recorded owner; the mounting user's for what has none.
    st->st_uid = n.attrs.has_owner ? n.attrs.uid : getuid();
    st->st_gid = n.attrs.has_owner ? n.attrs.gid : getgid();
    st->st_rdev = makedev(n.attrs.rdev_major, n.attrs.rdev_minor);
    st->st_size = static_cast<off_t>(S_ISLNK(n.mode) ? n.link.size() : n.is_dir() ? 0 : n.size);
    st->st_blocks = static_cast<blkcnt_t>((st->st_size + 511) / 512);
    st->st_blksize = 4096;
    st->st_mtim = to_timespec(n.mtime_ns);
    st->st_atim = st->st_ctim = st->st_mtim;
  }

  // The member name of a node ("" for the root).
  std::string path_of(const Node& n) const {
    std::vector<const std::string*> parts;
    for (const Node* cur = &n; cur->ino != FUSE_ROOT_ID; cur = nodes_.at(cur->parent).get()) parts.push_back(&cur->name);
    std::string p;
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
      if (!p.empty()) p.push_back('/');
      p += **it;
    }
    return p;
  }

  // A new name `name` in directory `dir`, checked as the archive's writer
  // checks names: a name the tools would later refuse is refused now.
  int check_new_name(const Node& dir, std::string_view name, size_t deepest_below = 0) const {
    if (name.size() > kMaxComponent) return ENAMETOOLONG;
    std::string full = path_of(dir);
    if (!full.empty()) full.push_back('/');
    full.append(name);
    if (full.size() + deepest_below > kMaxNameLength) return ENAMETOOLONG;
    if (name_problem(full) != nullptr) return EINVAL;
    return 0;
  }

  // The longest "/rest" below a directory (for renames).
  size_t deepest_below(const Node& n) const {
    size_t best = 0;
    for (const auto& [name, ino] : n.kids) best = std::max(best, 1 + name.size() + deepest_below(*nodes_.at(ino)));
    return best;
  }

  // The contents of a node changed since the last commit: as the kernel
  // does on a write (file_remove_privs), the file's capabilities go, and it
  // is no longer a hard link of its other names (the mount shows each name
  // as its own file).
  void set_data_dirty(Node& n) {
    if (!n.data_dirty) ++pending_files_;
    n.data_dirty = true;
    drop_privileges(n);
    n.attrs.link_id = 0;
    touch(n);
  }
  static void drop_privileges(Node& n) {
    std::erase_if(n.attrs.xattrs, [](const auto& x) { return x.first == "security.capability"; });
  }

  // The change of a node must reach the next commit.
  void touch(Node& n) {
    if (n.ino != FUSE_ROOT_ID) dirty_.insert(n.ino);
  }
  // Every committed name in `n`'s subtree goes away at the next commit
  // (unlink, rename away); the names it gets instead are put.
  void forget_names(Node& n, const std::string& path) {
    removed_.insert(path);
    for (const auto& [name, ino] : n.kids) {
      Node& kid = *nodes_.at(ino);
      forget_names(kid, path + "/" + name);
    }
  }
  void touch_subtree(Node& n) {
    touch(n);
    for (const auto& [name, ino] : n.kids) touch_subtree(*nodes_.at(ino));
  }

  // A temporary file for new contents: beside the archive, unnamed, so its
  // pages are the kernel's to write back (memory stays bounded) and space
  // problems show at write() time.
  int make_spill() {
    int fd = openat(spill_dir_.get(), ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) fd = memfd_create("mmar-rw", MFD_CLOEXEC);  // no O_TMPFILE there
    return fd < 0 ? -errno : fd;
  }

  // The spill of a file, made on its first change.
  int ensure_spill(Node& n) {
    if (n.data) return 0;
    int fd = make_spill();
    if (fd < 0) return -fd;
    n.data.reset(fd);
    return 0;
  }

  static void add_dirty(Node& n, uint64_t b, uint64_t e) {
    if (b >= e) return;
    auto it = n.dirty.upper_bound(b);
    if (it != n.dirty.begin() && std::prev(it)->second >= b) --it;
    while (it != n.dirty.end() && it->first <= e) {
      b = std::min(b, it->first);
      e = std::max(e, it->second);
      it = n.dirty.erase(it);
    }
    n.dirty.emplace(b, e);
  }

  // New bytes [off, off + len) of a file (already in its spill).
  void wrote(Node& n, uint64_t off, uint64_t len) {
    if (off > n.size) add_dirty(n, n.size, off);  // the gap reads as zeros
    add_dirty(n, off, off + len);
    n.size = std::max(n.size, off + len);
    set_data_dirty(n);
    count_written(len);
  }

  // Cut or extend a file to `size`.
  int truncate_to(Node& n, uint64_t size) {
    if (int err = ensure_spill(n)) return err;
    if (size < n.size) {
      // The spill keeps no bytes past the size, so growth later reads zeros.
      if (ftruncate(n.data.get(), static_cast<off_t>(size)) != 0) return errno;
      for (auto it = n.dirty.lower_bound(size); it != n.dirty.end();) it = n.dirty.erase(it);
      if (!n.dirty.empty() && n.dirty.rbegin()->second > size) n.dirty.rbegin()->second = size;
    } else {
      add_dirty(n, n.size, size);
    }
    n.size = size;
    set_data_dirty(n);
    return 0;
  }

  // Every byte into the spill (an unlinked open file must not depend on
  // committed bytes that a compaction may move).
  int materialize(Node& n) {
    if (int err = ensure_spill(n)) return err;
    std::vector<char> buf;
    for (uint64_t off = 0; off < n.size;) {
      const size_t len = static_cast<size_t>(std::min<uint64_t>(1 << 20, n.size - off));
      if (int err = read(n, off, len, buf)) return err;
      if (!pwrite_full(n.data.get(), buf.data(), buf.size(), off, "spill").ok()) return errno != 0 ? errno : EIO;
      off += len;
    }
    n.dirty.clear();
    add_dirty(n, 0, n.size);
    n.member.reset();
    n.extent.reset();
    set_data_dirty(n);
    return 0;
  }

  // [off, off + len) of the committed contents; zeros past them.
  int read_committed(const Node& n, uint64_t off, size_t len, char* out) {
    if (n.extent) return updater_.read_stored(*n.extent, off, len, out).ok() ? 0 : EIO;
    std::memset(out, 0, len);
    if (n.member) {
      auto m = updater_.base().at(*n.member);
      if (!m.ok()) return EIO;
      if (!updater_.base().read(*m, off, len, out).ok()) return EIO;
    }
    return 0;
  }

  // Read [off, off + len) of a regular file: the spill's ranges over the
  // committed bytes.
  int read(Node& n, uint64_t off, size_t len, std::vector<char>& out) {
    out.clear();
    if (off >= n.size) return 0;
    len = static_cast<size_t>(std::min<uint64_t>(len, n.size - off));
    out.resize(len);
    const uint64_t end = off + len;
    uint64_t pos = off;
    auto it = n.dirty.upper_bound(pos);
    if (it != n.dirty.begin() && std::prev(it)->second > pos) --it;
    while (pos < end) {
      char* to = out.data() + (pos - off);
      if (it != n.dirty.end() && it->first <= pos) {
        const uint64_t stop = std::min(end, it->second);
        const size_t want = static_cast<size_t>(stop - pos);
        ssize_t r = pread(n.data.get(), to, want, static_cast<off_t>(pos));
        if (r < 0) return errno;
        std::memset(to + r, 0, want - static_cast<size_t>(r));  // past the spill's end: zeros
        pos = stop;
        ++it;
      } else {
        const uint64_t stop = std::min(end, it != n.dirty.end() ? it->first : end);
        if (int err = read_committed(n, pos, static_cast<size_t>(stop - pos), to)) return err;
        pos = stop;
      }
    }
    return 0;
  }

  // Drop a node the kernel no longer knows and no directory holds.
  void maybe_drop(Node& n) {
    if (!n.unlinked) return;
    if (n.lookups == 0 && n.opens == 0) {
      if (n.data_dirty && pending_files_ > 0) --pending_files_;
      dirty_.erase(n.ino);
      orphans_.erase(n.ino);
      nodes_.erase(n.ino);
    } else {
      orphans_.insert(n.ino);
    }
  }

  bool over_pending_bounds() const {
    // Metadata-only changes count too: they bound the size of one commit.
    return pending_files_ >= max_pending_files_ || pending_bytes_ >= kMaxPendingBytes ||
           dirty_.size() > 64 * kMaxPendingFiles;
  }
  // A quarter of the descriptors may wait for a commit (at most 256).
  void set_fd_budget(uint64_t limit) {
    max_pending_files_ = static_cast<size_t>(std::clamp<uint64_t>(limit / 4, 8, kMaxPendingFiles));
  }
  void count_written(uint64_t bytes) { pending_bytes_ += bytes; }

  // Persist every pending change as one new generation.
  Result<void> commit() {
    if (dirty_.empty() && removed_.empty()) return success();
    // An open file whose name is gone keeps reading committed bytes that a
    // compaction may move: give it its own copy first.
    for (fuse_ino_t ino : orphans_) {
      Node* n = get(ino);
      if (n != nullptr && S_ISREG(n->mode) && (n->member || n->extent)) {
        if (int err = materialize(*n)) return Error(Errc::io, "copy of an unlinked open file", Error::kNoOffset, err);
        dirty_.erase(ino);
      }
    }
    std::vector<UpdateMember> put;
    std::vector<Node*> put_nodes;
    std::set<std::string, std::less<>> put_names;
    for (fuse_ino_t ino : dirty_) {
      Node* n = get(ino);
      if (n == nullptr || n->unlinked) continue;
      UpdateMember u;
      u.name = path_of(*n);
      u.mode = n->mode;
      u.mtime_ns = n->mtime_ns;
      // New bytes make it a file of its own: no longer a hard link of others.
      if (n->data_dirty) n->attrs.link_id = 0;
      u.attrs = n->attrs;
      if (S_ISLNK(n->mode)) {
        if (n->member) {
          u.keep = n->member;
        } else if (n->extent) {
          u.extent = n->extent;
        } else {
          u.symlink_target = n->link;
        }
      } else if (!n->is_dir()) {
        if (n->data_dirty) {
          u.data_fd = n->data ? n->data.get() : -1;
          u.size = n->size;
          if (n->member || n->extent) {
            // Only what changed: the committed bytes with the dirty ranges over them.
            u.incremental = true;
            u.keep = n->member;
            u.extent = n->extent;
            u.dirty.assign(n->dirty.begin(), n->dirty.end());
          }
        } else if (n->extent) {
          u.extent = n->extent;
        } else if (n->member) {
          u.keep = n->member;
        }
      }
      put_names.insert(u.name);
      put.push_back(std::move(u));
      put_nodes.push_back(n);
    }
    std::vector<std::string> remove;
    for (const auto& name : removed_) {
      if (put_names.count(name) == 0 && updater_.is_dir(name).has_value()) remove.push_back(name);
    }
    // Parents before children would not matter to the updater, but a
    // directory that became a file (or the reverse) needs both in one commit.
    MMAR_ASSIGN(CommitResult r, updater_.commit(std::move(put), remove));
    for (size_t i = 0; i < put_nodes.size(); ++i) {
      Node& n = *put_nodes[i];
      if (r.extents[i]) {
        n.extent = r.extents[i];
        n.member.reset();
      }
      if (n.data_dirty) {
        n.data_dirty = false;
        if (pending_files_ > 0) --pending_files_;
        n.dirty.clear();
        // Committed: the spill starts empty again, and goes once nobody has it open.
        if (n.data && ftruncate(n.data.get(), 0) != 0) n.data.reset();
      }
      if (n.opens == 0) n.data.reset();
    }
    dirty_.clear();
    removed_.clear();
    pending_bytes_ = 0;
    if (r.compacted) rebase();
    return success();
  }

  // After a compaction every committed byte moved: find each file again.
  void rebase() {
    for (auto& [ino, n] : nodes_) {
      if (n->is_dir() || n->unlinked || ino == FUSE_ROOT_ID) continue;
      n->extent.reset();
      n->member.reset();
      auto m = updater_.base().find(path_of(*n));
      if (m.ok()) n->member = m->index;
    }
  }

  // Where the archive lives: statfs reports its filesystem's space.
  int archive_fd() const { return updater_.lock().fd(); }
  // Called in the serving process (after it detached, before `mmar mount`
  // returns): name it as the holder.
  void serving() const { updater_.lock().refresh_pid(); }

 private:
  Result<Node*> ensure_dirs(std::string_view dir_path) {
    Node* cur = nodes_.at(FUSE_ROOT_ID).get();
    size_t start = 0;
    while (start < dir_path.size()) {
      size_t slash = dir_path.find('/', start);
      if (slash == std::string_view::npos) slash = dir_path.size();
      std::string part(dir_path.substr(start, slash - start));
      auto it = cur->kids.find(part);
      if (it == cur->kids.end()) {
        Node* d = add_node(*cur, part);
        d->mode = S_IFDIR | 0755;
        d->mtime_ns = cur->mtime_ns;
        cur = d;
      } else {
        cur = nodes_.at(it->second).get();
        if (!cur->is_dir()) {
          return Error(Errc::malformed, updater_.base().name() + ": member '" + std::string(dir_path) +
                                            "' has members below it but is not a directory");
        }
      }
      start = slash + 1;
    }
    return cur;
  }

  ArchiveUpdater updater_;
  UniqueFd spill_dir_;
  std::unordered_map<fuse_ino_t, std::unique_ptr<Node>> nodes_;
  fuse_ino_t next_ino_ = 2;
  std::set<fuse_ino_t> dirty_;                      // nodes whose entries the next commit puts
  std::set<std::string, std::less<>> removed_;      // names the next commit removes (if committed)
  std::set<fuse_ino_t> orphans_;                    // unlinked, still open or known to the kernel
  size_t pending_files_ = 0;                        // files with data_dirty
  size_t max_pending_files_ = kMaxPendingFiles;
  uint64_t pending_bytes_ = 0;                      // written or copied up since the last commit
};

RwFs& fs_of(fuse_req_t req) { return *static_cast<RwFs*>(fuse_req_userdata(req)); }

void reply_entry(fuse_req_t req, RwFs& fs, Node& n) {
  fuse_entry_param e{};
  e.ino = n.ino;
  e.attr_timeout = kTimeout;
  e.entry_timeout = kTimeout;
  fs.fill(n, &e.attr);
  ++n.lookups;
  fuse_reply_entry(req, &e);
}

Node* dir_of(RwFs& fs, fuse_ino_t ino) {
  Node* d = fs.get(ino);
  return d != nullptr && d->is_dir() ? d : nullptr;
}

// Commit now; the errno for the caller (0 on success), the reason logged.
int commit_now(RwFs& fs) {
  auto r = fs.commit();
  if (r.ok()) return 0;
  fuse_log(FUSE_LOG_ERR, "mmar: commit failed, changes kept pending: %s\n", r.error().message().c_str());
  return errno_of(r.error());
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  guarded(req, [&] {
    RwFs& fs = fs_of(req);
    std::lock_guard lock(fs.mu);
    Node* d = dir_of(fs, parent);
    if (d == nullptr) return (void)fuse_reply_err(req, ENOTDIR);
    if (std::strlen(name) > kMaxComponent) return (void)fuse_reply_err(req, ENAMETOOLONG);
    auto it = d->kids.find(std::string_view(name));
    if (it == d->kids.end()) return (void)fuse_reply_err(req, ENOENT);
    reply_entry(req, fs, *fs.get(it->second));
  });
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
  RwFs& fs = fs_of(req);
  {
    std::lock_guard lock(fs.mu);
    if (Node* node = fs.get(ino)) {
      node->lookups = node->lookups > n ? node->lookups - n : 0;
      fs.maybe_drop(*node);
    }
  }
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  guarded(req, [&] {
    RwFs& fs = fs_of(req);
    std::lock_guard lock(fs.mu);
    Node* n = fs.get(ino);
    if (n == nullptr) return (void)fuse_reply_err(req, ENOENT);
    struct stat st;
    fs.fill(*n, &st);
    fuse_reply_attr(req, &st, kTimeout);
  });
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  guarded(req, [&] {
    RwFs& fs = fs_of(req);
    std::lock_guard lock(fs.mu);
    Node* n = fs.get(ino);
    if (n == nullptr) return (void)fuse_reply_err(req, ENOENT);
    // A change of owner is recorded (the kernel checked who may make it:
    // the mount has default_permissions); the names recorded no longer
    // apply. A new owner clears setuid and setgid, as chown(2) does.
    if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
      struct stat now;
      fs.fill(*n, &now);
      n->attrs.has_owner = true;
      n->attrs.uid = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : now.st_uid;
      n->attrs.gid = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : now.st_gid;
      n->attrs.uname.clear();
      n->attrs.gname.clear();
      if (!n->is_dir() && !(to_set & FUSE_SET_ATTR_MODE)) n->mode &= ~mode_t{06000};
      RwFs::drop_privileges(*n);  // chown(2) clears file capabilities too
      n->attrs.link_id = 0;      // its other names keep their owner: no longer one file
      fs.touch(*n);
    }
    if (to_set & FUSE_SET_ATTR_SIZE) {
      if (!S_ISREG(n->mode)) return (void)fuse_reply_err(req, EINVAL);
      if (attr->st_size < 0) return (void)fuse_reply_err(req, EINVAL);
      if (int err = fs.truncate_to(*n, static_cast<uint64_t>(attr->st_size))) return (void)fuse_reply_err(req, err);
      n->mtime_ns = now_ns();
    }
    if (to_set & FUSE_SET_ATTR_MODE) {
      n->mode = (n->mode & S_IFMT) | (attr->st_mode & 07777);
      // A setuid/setgid bit is kept with the owner it is set for (FORMAT.md
      // "Attributes"); and the other names of a hard link keep their mode.
      if ((n->mode & 06000) != 0 && !n->attrs.has_owner) {
        struct stat now;
        fs.fill(*n, &now);
        n->attrs.has_owner = true;
        n->attrs.uid = now.st_uid;
        n->attrs.gid = now.st_gid;
      }
      n->attrs.link_id = 0;
      fs.touch(*n);
    }
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
      n->mtime_ns = now_ns();
      fs.touch(*n);
    } else if (to_set & FUSE_SET_ATTR_MTIME) {
      n->mtime_ns = int64_t{attr->st_mtim.tv_sec} * 1000000000 + attr->st_mtim.tv_nsec;
      fs.touch(*n);
    }
    struct stat st;
    fs.fill(*n, &st);
    fuse_reply_attr(req, &st, kTimeout);
  });
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  guarded(req, [&] {
    RwFs& fs = fs_of(req);
    std::lock_guard lock(fs.mu);
    Node* n = fs.get(ino);
    if (n == nullptr || !S_ISLNK(n->mode)) return (void)fuse_reply_err(req, EINVAL);
    fuse_reply_readlink(req, n->link.c_str());
  });
}

// Create an entry `name` in `parent`; EEXIST if taken.
Node* make(RwFs& fs, fuse_req_t req, fuse_ino_t parent, const char* name, uint32_t mode) {
  Node* d = dir_of(fs, parent);
  if (d == nullptr) return fuse_reply_err(req, ENOTDIR), nullptr;
  if (int err = fs.check_new_name(*d, name)) return fuse_reply_err(req, err), nullptr;
  if (d->kids.count(std::string_view(name)) != 0) return fuse_reply_err(req, EEXIST), nullptr;
  Node* n = fs.add_node(*d, name);
  n->mode = mode;
  n->mtime_ns = now_ns();
  d->mtime_ns = n->mtime_ns;
  fs.touch(*n);
  fs.touch(*d);
  return n;
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  guarded(req, [&] {
    RwFs& fs = fs_of(req);
    std::lock_guard lock(fs.mu);
    if (Node* n = make(fs, req, parent, name, S_IFDIR | (mode & 07777))) reply_entry(req, fs, *n);
  });
}

void op_symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  guarded(req, [&] {
    RwFs& fs = fs_of(req);
    std::lock_guard lock(fs.mu);
    if (std::strlen(target) >= PATH_MAX) return (void)fuse_reply_err(req, ENAMETOOLONG);
    if (Node* n = make(fs, req, parent, name, S_IFLNK | 0777)) {
      n->link = target;
      reply_entry(req, fs, *n);
    }
  });
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  guarded(req, [&] {
    RwFs& fs = fs_of(req);
    std::lock_guard lock(fs.mu);
    Node* n = make(fs, req, parent, name, S_IFREG | (mode & 07777));
    if (n == nullptr) return;
    if (int err = fs.ensure_spill(*n)) {
      // Undo the entry: nothing was created.
      Node* d = fs.get(parent);
      d->kids.erase(std::string(name));
      n->unlinked = true;
      fs.maybe_drop(*n);
      return (void)fuse_reply_err(req, err);
    }
    fs.set_data_dirty(*n);
    fuse_entry_param e{};
    e.ino = n->ino;
    e.attr_timeout = kTimeout;
    e.entry_timeout = kTimeout;
    fs.fill(*n, &e.attr);
    ++n->lookups;
    ++n->opens;
    fi->keep_cache = 1;
    fuse_reply_create(req, &e, fi);
  });
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  guarded(req, [&] {
    RwFs& fs = fs_of(req);
    std::lock_guard lock(fs.mu);
    Node* n = fs.get(ino);
    if (n == nullptr) return (void)fuse_reply_err(req, ENOENT);
    if (n->is_dir()) return (void)fuse_reply_err(req, EISDIR);
    if ((fi->flags & O_TRUNC) != 0) {
      if (int err = fs.truncate_to(*n, 0)) return (void)fuse_reply_err(req, err);
      n->mtime_ns = now_ns();
    }
    ++n->opens;
    fi->keep_cache = 1;  // the page cache is the truth while mounted: never dropped
    fuse_reply_open(req, fi);
  });
}

// close(): commits when too many files wait, so the error reaches close().
void op_flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
  RwFs& fs = fs_of(req);
  int err = 0;
  try {
    std::lock_guard lock(fs.mu);
    if (fs.over_pending_bounds()) err = commit_now(fs);
  } catch (const std::bad_alloc&) {
    err = ENOMEM;
  }
  fuse_reply_err(req, err);
}

void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  RwFs& fs = fs_of(req);
  {
    std::lock_guard lock(fs.mu);
    if (Node* n = fs.get(ino)) {
      if (n->opens > 0) --n->opens;
      // Committed and closed: the copy goes (reads come from the archive).
      if (n->opens == 0 && !n->data_dirty && !n->unlinked) n->data.reset();
      fs.maybe_drop(*n);
    }
  }
  fuse_reply_err(req, 0);
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  guarded(req, [&] {
    RwFs& fs = fs_of(req);
    thread_local std::vector<char> buf;
    std::lock_guard lock(fs.mu);
    Node* n = fs.get(ino);
    if (n == nullptr) return (void)fuse_reply_err(req, ENOENT);
    if (int err = fs.read(*n, static_cast<uint64_t>(off), size, buf)) return (void)fuse_reply_err(req, err);
    fuse_reply_buf(req, buf.data(), buf.size());
  });
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t off, fuse_file_info*) {
  guarded(req, [&] {
    RwFs& fs = fs_of(req);
    std::lock_guard lock(fs.mu);
    Node* n = fs.get(ino);
    if (n == nullptr) return (void)fuse_reply_err(req, ENOENT);
    if (!S_ISREG(n->mode)) return (void)fuse_reply_err(req, EINVAL);
    if (int err = fs.ensure_spill(*n)) return (void)fuse_reply_err(req, err);
    ssize_t w = pwrite(n->data.get(), data, size, off);
    if (w < 0) return (void)fuse_reply_err(req, errno);
    fs.wrote(*n, static_cast<uint64_t>(off), static_cast<uint64_t>(w));
    n->mtime_ns = now_ns();
    fuse_reply_write(req, static_cast<size_t>(w));
  });
}

void remove(fuse_req_t req, fuse_ino_t parent, const char* name, bool dir) {
  guarded(req, [&] {
    RwFs& fs = fs_of(req);
    std::lock_guard lock(fs.mu);
    Node* d = dir_of(fs, parent);
    if (d == nullptr) return (void)fuse_reply_err(req, ENOTDIR);
    auto it = d->kids.find(std::string_view(name));
    if (it == d->kids.end()) return (void)fuse_reply_err(req, ENOENT);
    Node* n = fs.get(it->second);
    if (dir && !n->is_dir()) return (void)fuse_reply_err(req, ENOTDIR);
    if (!dir && n->is_dir()) return (void)fuse_reply_err(req, EISDIR);
    if (dir && !n->kids.empty()) return (void)fuse_reply_err(req, ENOTEMPTY);
    fs.forget_names(*n, fs.path_of(*n));
    d->kids.erase(it);
    d->mtime_ns = now_ns();
    fs.touch(*d);
    n->unlinked = true;
    fs.maybe_drop(*n);
    fuse_reply_err(req, 0);
  });
}
void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) { remove(req, parent, name, false); }
void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) { remove(req, parent, name, true); }

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
               unsigned int flags) {
  guarded(req, [&] {
    RwFs& fs = fs_of(req);
    std::lock_guard lock(fs.mu);
    if (flags & ~RENAME_NOREPLACE) return (void)fuse_reply_err(req, EINVAL);
    Node* from = dir_of(fs, parent);
    Node* to = dir_of(fs, newparent);
    if (from == nullptr || to == nullptr) return (void)fuse_reply_err(req, ENOTDIR);
    auto it = from->kids.find(std::string_view(name));
    if (it == from->kids.end()) return (void)fuse_reply_err(req, ENOENT);
    const fuse_ino_t moving = it->second;
    Node* mov = fs.get(moving);
    // A directory cannot move below itself.
    for (Node* p = to; p->ino != FUSE_ROOT_ID; p = fs.get(p->parent)) {
      if (p->ino == moving) return (void)fuse_reply_err(req, EINVAL);
    }
    if (int err = fs.check_new_name(*to, newname, fs.deepest_below(*mov))) return (void)fuse_reply_err(req, err);
    auto target = to->kids.find(std::string_view(newname));
    if (target != to->kids.end()) {
      if (target->second == moving) return (void)fuse_reply_err(req, 0);
      if (flags & RENAME_NOREPLACE) return (void)fuse_reply_err(req, EEXIST);
      Node* old = fs.get(target->second);
      if (old->is_dir() != mov->is_dir()) return (void)fuse_reply_err(req, old->is_dir() ? EISDIR : ENOTDIR);
      if (old->is_dir() && !old->kids.empty()) return (void)fuse_reply_err(req, ENOTEMPTY);
      fs.forget_names(*old, fs.path_of(*old));
      to->kids.erase(target);
      old->unlinked = true;
      fs.maybe_drop(*old);
    }
    // The old names go, the whole subtree is put under its new names.
    fs.forget_names(*mov, fs.path_of(*mov));
    from->kids.erase(std::string(name));
    to->kids[newname] = moving;
    mov->parent = to->ino;
    mov->name = newname;
    fs.touch_subtree(*mov);
    from->mtime_ns = to->mtime_ns = now_ns();
    fs.touch(*from);
    fs.touch(*to);
    fuse_reply_err(req, 0);
  });
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  guarded(req, [&] {
    RwFs& fs = fs_of(req);
    std::lock_guard lock(fs.mu);
    Node* d = dir_of(fs, ino);
    if (d == nullptr) return (void)fuse_reply_err(req, ENOTDIR);
    std::vector<char> buf(size);
    size_t used = 0;
    off_t i = 0;
    auto add = [&](const char* name, fuse_ino_t child, uint32_t mode) {
      ++i;
      if (i <= off) return true;
      struct stat st {};
      st.st_ino = child;
      st.st_mode = mode;
      size_t need = fuse_add_direntry(req, buf.data() + used, size - used, name, &st, i);
      if (need > size - used) return false;
      used += need;
      return true;
    };
    if (add(".", d->ino, S_IFDIR) && add("..", d->parent, S_IFDIR)) {
      for (const auto& [name, child] : d->kids) {
        if (!add(name.c_str(), child, fs.get(child)->mode)) break;
      }
    }
    fuse_reply_buf(req, buf.data(), used);
  });
}

void op_fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  RwFs& fs = fs_of(req);
  int err = 0;
  try {
    std::lock_guard lock(fs.mu);
    err = commit_now(fs);
  } catch (const std::bad_alloc&) {
    err = ENOMEM;
  }
  fuse_reply_err(req, err);
}

// The space of the filesystem the archive is on (what a commit can use).
void op_statfs(fuse_req_t req, fuse_ino_t) {
  RwFs& fs = fs_of(req);
  struct statvfs s {};
  if (fstatvfs(fs.archive_fd(), &s) != 0) return (void)fuse_reply_err(req, errno);
  s.f_namemax = kMaxComponent;
  fuse_reply_statfs(req, &s);
}

// The directory that contains `path` (as given), opened.
Result<UniqueFd> open_parent(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return sys_error(dir, errno);
  return UniqueFd(fd);
}

}  // namespace

Result<void> serve_writable(Archive archive, const std::string& archive_path, const std::string& dir,
                            const MountOptions& options) {
  // An archive below its own mount point would be written through this very
  // filesystem (and be hidden by it): refused.
  char real_dir[PATH_MAX], real_archive[PATH_MAX];
  if (realpath(dir.c_str(), real_dir) == nullptr) return sys_error(dir, errno);
  if (realpath(archive_path.c_str(), real_archive) == nullptr) return sys_error(archive_path, errno);
  const std::string d = std::string(real_dir) == "/" ? "/" : std::string(real_dir) + "/";
  if (std::string(real_archive).compare(0, d.size(), d) == 0) {
    return Error(Errc::invalid_argument,
                 archive_path + ": the archive lies inside the mount point " + dir + "; mount it elsewhere");
  }
  (void)archive;  // the updater reads through its own locked fd
  // The writer lock is taken here, before mounting: a second writer fails
  // at once, in the foreground, with the holder's pid.
  MMAR_ASSIGN(ArchiveUpdater updater, ArchiveUpdater::open(real_archive));
  MMAR_ASSIGN(UniqueFd spill_dir, open_parent(real_archive));
  // One fd per file open for writing is the bound, not the soft limit.
  struct rlimit rl {};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  RwFs fs(std::move(updater), std::move(spill_dir));
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) fs.set_fd_budget(rl.rlim_cur);
  MMAR_TRY(fs.build());
  fuse_lowlevel_ops ops{};
  ops.lookup = op_lookup;
  ops.forget = op_forget;
  ops.getattr = op_getattr;
  ops.setattr = op_setattr;
  ops.readlink = op_readlink;
  ops.mkdir = op_mkdir;
  ops.symlink = op_symlink;
  ops.create = op_create;
  ops.open = op_open;
  ops.flush = op_flush;
  ops.release = op_release;
  ops.read = op_read;
  ops.write = op_write;
  ops.unlink = op_unlink;
  ops.rmdir = op_rmdir;
  ops.rename = op_rename;
  ops.readdir = op_readdir;
  ops.fsync = op_fsync;
  ops.fsyncdir = op_fsync;
  ops.statfs = op_statfs;
  // Unmounting persists what fsync has not yet (mmar umount commits first
  // with fsyncdir, so this one normally finds nothing to do).
  ops.destroy = [](void* userdata) {
    auto& self = *static_cast<RwFs*>(userdata);
    std::lock_guard lock(self.mu);
    auto r = self.commit();
    if (!r.ok()) fuse_log(FUSE_LOG_ERR, "mmar: changes lost at unmount: %s\n", r.error().message().c_str());
  };
  return run_session(ops, &fs, dir, options, base_mount_options(true, archive_path),
                     [](void* userdata) { static_cast<RwFs*>(userdata)->serving(); });
}

}  // namespace mmar::fs
