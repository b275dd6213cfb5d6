// The writable FUSE filesystem (mmar mount --rw). The tree is held in
// memory: each file is either an unchanged archive member or, from its
// first write or truncate on, an anonymous memory file holding its new
// contents (copy-up). Changes persist on fsync and at unmount through
// commit_generation(): data appended, then a new index, then the atomic
// superblock switch; a crash leaves the old or the new generation.
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
#include <fuse3/fuse_lowlevel.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <unordered_map>

#include "fs/rw.h"
#include "support/fd.h"
#include "support/io.h"

namespace mmar::fs {

namespace {

constexpr double kTimeout = 1.0;

int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

struct Node {
  fuse_ino_t ino = 0;
  fuse_ino_t parent = 0;
  uint32_t mode = 0;
  int64_t mtime_ns = 0;
  std::optional<uint32_t> member;  // the contents last committed: this member of archive_
  UniqueFd data;                   // the contents, once copied up (then read and written here)
  bool modified = false;           // data differs from what `member` holds
  uint64_t size = 0;
  std::string link;                                     // symlink target
  std::map<std::string, fuse_ino_t, std::less<>> kids;  // directories
  uint64_t lookups = 0;
  unsigned opens = 0;
  bool unlinked = false;
  bool is_dir() const { return S_ISDIR(mode); }
};

class RwFs {
 public:
  RwFs(Archive a, std::string path) : archive_(std::move(a)), path_(std::move(path)) {}

  Result<void> build() {
    auto root = std::make_unique<Node>();
    root->ino = FUSE_ROOT_ID;
    root->parent = FUSE_ROOT_ID;
    root->mode = S_IFDIR | 0755;
    root->mtime_ns = now_ns();
    nodes_[FUSE_ROOT_ID] = std::move(root);
    return archive_.for_each([&](const Member& m) -> Result<void> {
      Node& dir = ensure_dirs(
          std::string(m.name.substr(0, m.name.rfind('/') == std::string_view::npos ? 0 : m.name.rfind('/'))));
      std::string base(m.name.substr(m.name.rfind('/') == std::string_view::npos ? 0 : m.name.rfind('/') + 1));
      Node* n;
      auto it = dir.kids.find(base);
      if (it != dir.kids.end()) {
        n = nodes_[it->second].get();  // a directory made for a deeper member first
      } else {
        n = add_node(dir, base);
      }
      n->mode = m.mode;
      n->mtime_ns = m.mtime_ns;
      if (!m.is_dir()) {
        n->member = m.index;
        n->size = m.size;
      }
      if (m.is_symlink()) {
        MMAR_ASSIGN(Bytes b, archive_.read(m));
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
    st->st_uid = getuid();
    st->st_gid = getgid();
    st->st_size = static_cast<off_t>(S_ISLNK(n.mode) ? n.link.size() : n.is_dir() ? 0 : n.size);
    st->st_blocks = static_cast<blkcnt_t>((st->st_size + 511) / 512);
    st->st_blksize = 4096;
    st->st_mtim = to_timespec(n.mtime_ns);
    st->st_atim = st->st_ctim = st->st_mtim;
  }

  // Give a regular file its own copy of its contents, before it changes.
  int copy_up(Node& n) {
    if (n.data) return 0;
    int fd = memfd_create("mmar-rw", MFD_CLOEXEC);
    if (fd < 0) return errno;
    UniqueFd mem(fd);
    if (n.member) {
      auto m = archive_.at(*n.member);
      if (!m.ok()) return EIO;
      auto b = archive_.read(*m);
      if (!b.ok()) return EIO;
      for (size_t w = 0; w < b->size();) {
        ssize_t r = pwrite(fd, b->data() + w, b->size() - w, static_cast<off_t>(w));
        if (r <= 0) return r < 0 ? errno : EIO;
        w += static_cast<size_t>(r);
      }
    }
    n.data = std::move(mem);
    n.modified = true;
    dirty_ = true;
    return 0;
  }

  // Read [off, off + len) of a regular file.
  int read(Node& n, uint64_t off, size_t len, std::vector<char>& out) {
    out.clear();
    if (off >= n.size) return 0;
    len = static_cast<size_t>(std::min<uint64_t>(len, n.size - off));
    out.resize(len);
    if (n.data) {
      ssize_t r = pread(n.data.get(), out.data(), len, static_cast<off_t>(off));
      if (r < 0) return errno;
      out.resize(static_cast<size_t>(r));
      return 0;
    }
    if (!n.member) {
      std::memset(out.data(), 0, len);
      return 0;
    }
    auto m = archive_.at(*n.member);
    if (!m.ok()) return EIO;
    auto b = archive_.read(*m);
    if (!b.ok()) return EIO;
    std::memcpy(out.data(), b->data() + off, len);
    return 0;
  }

  void mark_dirty() { dirty_ = true; }

  // Drop a node the kernel no longer knows and no directory holds.
  void maybe_drop(Node& n) {
    if (n.unlinked && n.lookups == 0 && n.opens == 0) nodes_.erase(n.ino);
  }

  std::string path_of(const Node& n) const {
    std::string p;
    const Node* cur = &n;
    while (cur->ino != FUSE_ROOT_ID) {
      const Node& parent = *nodes_.at(cur->parent);
      for (const auto& [name, ino] : parent.kids) {
        if (ino == cur->ino) {
          p = p.empty() ? name : name + "/" + p;
          break;
        }
      }
      cur = &parent;
    }
    return p;
  }

  // Persist: a new generation with every reachable node.
  Result<void> commit() {
    if (!dirty_) return success();
    std::vector<UpdateMember> members;
    std::vector<std::pair<std::string, Node*>> stack = {{"", nodes_.at(FUSE_ROOT_ID).get()}};
    while (!stack.empty()) {
      auto [prefix, dir] = stack.back();
      stack.pop_back();
      for (const auto& [name, ino] : dir->kids) {
        Node& n = *nodes_.at(ino);
        UpdateMember u;
        u.name = prefix.empty() ? name : prefix + "/" + name;
        u.mode = n.mode;
        u.mtime_ns = n.mtime_ns;
        if (n.is_dir()) {
          stack.push_back({u.name, &n});
        } else if (S_ISLNK(n.mode)) {
          u.symlink_target = n.link;
        } else if (n.member && !n.modified) {
          u.keep = n.member;  // written by an earlier commit, or never changed
        } else if (n.data) {
          u.data_fd = n.data.get();
          u.size = n.size;
        } else {
          u.size = 0;  // an empty new file
        }
        members.push_back(std::move(u));
      }
    }
    MMAR_TRY(commit_generation(path_, archive_, members));
    // Reopen the new generation: every file now has a member there, so the
    // next commit rewrites only what changes after this one.
    MMAR_ASSIGN(Archive fresh, Archive::open(path_));
    for (auto& [ino, n] : nodes_) {
      if (n->is_dir() || S_ISLNK(n->mode) || n->unlinked) continue;
      auto m = fresh.find(path_of(*n));
      if (m.ok()) {
        n->member = m->index;
        n->modified = false;
      }
    }
    archive_ = std::move(fresh);
    dirty_ = false;
    return success();
  }

  const Archive& archive() const { return archive_; }

 private:
  Node& ensure_dirs(const std::string& dir_path) {
    Node* cur = nodes_.at(FUSE_ROOT_ID).get();
    size_t start = 0;
    while (start < dir_path.size()) {
      size_t slash = dir_path.find('/', start);
      if (slash == std::string::npos) slash = dir_path.size();
      std::string part = dir_path.substr(start, slash - start);
      auto it = cur->kids.find(part);
      if (it == cur->kids.end()) {
        Node* d = add_node(*cur, part);
        d->mode = S_IFDIR | 0755;
        d->mtime_ns = cur->mtime_ns;
        cur = d;
      } else {
        cur = nodes_.at(it->second).get();
      }
      start = slash + 1;
    }
    return *cur;
  }

  Archive archive_;
  std::string path_;
  std::unordered_map<fuse_ino_t, std::unique_ptr<Node>> nodes_;
  fuse_ino_t next_ino_ = 2;
  bool dirty_ = false;
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

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  guarded(req, [&] {
    RwFs& fs = fs_of(req);
    std::lock_guard lock(fs.mu);
    Node* d = dir_of(fs, parent);
    if (d == nullptr) return (void)fuse_reply_err(req, ENOTDIR);
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
    if (to_set & FUSE_SET_ATTR_MODE) {
      n->mode = (n->mode & S_IFMT) | (attr->st_mode & 07777);
      fs.mark_dirty();
    }
    if (to_set & FUSE_SET_ATTR_SIZE) {
      if (!S_ISREG(n->mode)) return (void)fuse_reply_err(req, EINVAL);
      if (int err = fs.copy_up(*n)) return (void)fuse_reply_err(req, err);
      if (ftruncate(n->data.get(), attr->st_size) != 0) return (void)fuse_reply_err(req, errno);
      n->size = static_cast<uint64_t>(attr->st_size);
      n->modified = true;
      n->mtime_ns = now_ns();
      fs.mark_dirty();
    }
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
      n->mtime_ns = now_ns();
      fs.mark_dirty();
    } else if (to_set & FUSE_SET_ATTR_MTIME) {
      n->mtime_ns = int64_t{attr->st_mtim.tv_sec} * 1000000000 + attr->st_mtim.tv_nsec;
      fs.mark_dirty();
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
  if (std::strlen(name) > 255 || std::strchr(name, '/') != nullptr) return fuse_reply_err(req, EINVAL), nullptr;
  if (d->kids.count(std::string_view(name)) != 0) return fuse_reply_err(req, EEXIST), nullptr;
  Node* n = fs.add_node(*d, name);
  n->mode = mode;
  n->mtime_ns = now_ns();
  d->mtime_ns = n->mtime_ns;
  fs.mark_dirty();
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
    if (int err = fs.copy_up(*n)) return (void)fuse_reply_err(req, err);
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
    if ((fi->flags & O_ACCMODE) != O_RDONLY) {
      if (int err = fs.copy_up(*n)) return (void)fuse_reply_err(req, err);
    }
    if (fi->flags & O_TRUNC) {
      if (ftruncate(n->data.get(), 0) != 0) return (void)fuse_reply_err(req, errno);
      n->size = 0;
      n->modified = true;
      n->mtime_ns = now_ns();
      fs.mark_dirty();
    }
    ++n->opens;
    fi->keep_cache = 1;  // the page cache is the truth while mounted: never dropped
    fuse_reply_open(req, fi);
  });
}

void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  RwFs& fs = fs_of(req);
  {
    std::lock_guard lock(fs.mu);
    if (Node* n = fs.get(ino)) {
      if (n->opens > 0) --n->opens;
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
    if (int err = fs.copy_up(*n)) return (void)fuse_reply_err(req, err);
    ssize_t w = pwrite(n->data.get(), data, size, off);
    if (w < 0) return (void)fuse_reply_err(req, errno);
    n->modified = true;
    n->size = std::max<uint64_t>(n->size, static_cast<uint64_t>(off) + static_cast<uint64_t>(w));
    n->mtime_ns = now_ns();
    fs.mark_dirty();
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
    d->kids.erase(it);
    d->mtime_ns = now_ns();
    n->unlinked = true;
    fs.mark_dirty();
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
    // A directory cannot move below itself.
    for (Node* p = to; p->ino != FUSE_ROOT_ID; p = fs.get(p->parent)) {
      if (p->ino == moving) return (void)fuse_reply_err(req, EINVAL);
    }
    auto target = to->kids.find(std::string_view(newname));
    if (target != to->kids.end()) {
      if (target->second == moving) return (void)fuse_reply_err(req, 0);
      if (flags & RENAME_NOREPLACE) return (void)fuse_reply_err(req, EEXIST);
      Node* old = fs.get(target->second);
      Node* mov = fs.get(moving);
      if (old->is_dir() != mov->is_dir()) return (void)fuse_reply_err(req, old->is_dir() ? EISDIR : ENOTDIR);
      if (old->is_dir() && !old->kids.empty()) return (void)fuse_reply_err(req, ENOTEMPTY);
      to->kids.erase(target);
      old->unlinked = true;
      fs.maybe_drop(*old);
    }
    from->kids.erase(std::string(name));
    to->kids[newname] = moving;
    fs.get(moving)->parent = to->ino;
    from->mtime_ns = to->mtime_ns = now_ns();
    fs.mark_dirty();
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
    auto r = fs.commit();
    if (!r.ok()) {
      fuse_log(FUSE_LOG_ERR, "mmar: %s\n", r.error().message().c_str());
      err = r.error().sys_errno() != 0 ? r.error().sys_errno() : EIO;
    }
  } catch (const std::bad_alloc&) {
    err = ENOMEM;
  }
  fuse_reply_err(req, err);
}

void op_statfs(fuse_req_t req, fuse_ino_t) {
  struct statvfs s {};
  s.f_bsize = s.f_frsize = 4096;
  s.f_blocks = s.f_bfree = s.f_bavail = 1u << 30;
  s.f_files = s.f_ffree = 1u << 30;
  s.f_namemax = 255;
  fuse_reply_statfs(req, &s);
}

}  // namespace

Result<void> serve_writable(Archive archive, const std::string& archive_path, const std::string& dir,
                            const MountOptions& options) {
  RwFs fs(std::move(archive), archive_path);
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
  // Unmounting persists what fsync has not yet.
  ops.destroy = [](void* userdata) {
    auto& self = *static_cast<RwFs*>(userdata);
    std::lock_guard lock(self.mu);
    auto r = self.commit();
    if (!r.ok()) fuse_log(FUSE_LOG_ERR, "mmar: %s\n", r.error().message().c_str());
  };
  return run_session(ops, &fs, dir, options, base_mount_options(true, archive_path));
}

}  // namespace mmar::fs
