// SPDX-License-Identifier: BSD-2-Clause
// The read-only FUSE filesystem over an Archive (see include/mmar/fs.h).
// Errors go back to the kernel as errno values through fuse_reply_err; no
// request handler throws (bad_alloc becomes ENOMEM at the boundary).
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "fs/rw.h"
#include "support/io.h"

#include <algorithm>
#include <compare>
#include <vector>
#include <atomic>
#include <mutex>
#include <unordered_map>
#include <thread>
#include <deque>
#include <condition_variable>
#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <new>
#include <optional>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

namespace mmar::fs {

namespace {

constexpr fuse_ino_t kRoot = FUSE_ROOT_ID;  // 1
constexpr double kTimeout = 86400.0;        // a read-only archive never changes under the kernel
constexpr uint32_t kMaxSynthDepth = 255;

class ArchiveFs {
 public:
  ArchiveFs(Archive a, const MountOptions& o)
      : archive_(std::move(a)), n_(archive_.size()), uid_(getuid()), gid_(getgid()), force_uid_(o.uid),
        force_gid_(o.gid), umask_(o.umask & 07777) {
    struct stat st {};
    if (archive_.source().fd() >= 0 && fstat(archive_.source().fd(), &st) == 0) root_time_ = st.st_mtim;
  }

  // What an inode is: the root, member `index`, or a directory that exists
  // only as the prefix (depth components) of member `index`'s name.
  struct Node {
    enum Kind { root, member, synth } kind = root;
    uint32_t index = 0;
    uint32_t depth = 0;
  };

  std::optional<Node> node_of(fuse_ino_t ino) const {
    if (ino == kRoot) return Node{};
    if (ino < 2) return std::nullopt;
    const uint64_t v = ino - 2;
    if (v < n_) return Node{Node::member, static_cast<uint32_t>(v), 0};
    const uint64_t s = v - n_;
    const uint64_t k = s / 256, depth = s % 256;
    if (k >= n_ || depth == 0) return std::nullopt;
    return Node{Node::synth, static_cast<uint32_t>(k), static_cast<uint32_t>(depth)};
  }
  fuse_ino_t ino_of(const Node& n) const {
    switch (n.kind) {
      case Node::root: return kRoot;
      case Node::member: return n.index + 2;
      case Node::synth: return 2 + n_ + uint64_t{n.index} * 256 + n.depth;
    }
    return kRoot;
  }

  // The path of a directory node ("" for the root).
  Result<std::string> path_of(const Node& n) const {
    if (n.kind == Node::root) return std::string();
    MMAR_ASSIGN(Member m, archive_.at(n.index));
    if (n.kind == Node::member) return std::string(m.name);
    size_t at = 0;
    for (uint32_t d = 0; d < n.depth; ++d) {
      at = m.name.find('/', d == 0 ? 0 : at + 1);
      if (at == std::string_view::npos) return Error(Errc::not_found, "stale synthesized directory");
    }
    return std::string(m.name.substr(0, at));
  }

  static uint32_t depth_of(std::string_view path) {
    return static_cast<uint32_t>(std::count(path.begin(), path.end(), '/') + 1);
  }

  // The child called `name` of directory `dir_path`.
  Result<Node> lookup(const std::string& dir_path, std::string_view name) const {
    std::string child = dir_path.empty() ? std::string(name) : dir_path + "/" + std::string(name);
    auto m = archive_.find(child);
    if (m.ok()) return Node{Node::member, inode_member(*m), 0};
    if (m.error().code() != Errc::not_found) return std::move(m).error();
    child += '/';
    MMAR_ASSIGN(uint32_t k, archive_.lower_bound(child));
    if (k < n_) {
      MMAR_ASSIGN(Member below, archive_.at(k));
      if (below.name.substr(0, child.size()) == child) {
        uint32_t depth = depth_of(std::string_view(child).substr(0, child.size() - 1));
        if (depth > kMaxSynthDepth) return Error(Errc::limit, "directory too deep");
        return Node{Node::synth, k, depth};
      }
    }
    return Error(Errc::not_found, "no such entry");
  }

  void fill_stat(const Node& n, struct stat* st) const {
    std::memset(st, 0, sizeof *st);
    st->st_ino = ino_of(n);
    st->st_uid = uid_;
    st->st_gid = gid_;
    st->st_blksize = 4096;
    if (force_uid_) st->st_uid = *force_uid_;
    if (force_gid_) st->st_gid = *force_gid_;
    if (n.kind != Node::member) {
      // Directories without a member of their own: the archive's time.
      st->st_mode = S_IFDIR | (0755 & ~umask_);
      st->st_nlink = 2;
      st->st_mtim = st->st_atim = st->st_ctim = root_time_;
      return;
    }
    auto m = archive_.at(n.index);
    if (!m.ok()) return;
    st->st_mode = m->mode & ~umask_;
    if (m->has_owner) {
      st->st_uid = m->uid;
      st->st_gid = m->gid;
    }
    if (force_uid_) st->st_uid = *force_uid_;
    if (force_gid_) st->st_gid = *force_gid_;
    st->st_rdev = makedev(m->rdev_major, m->rdev_minor);
    st->st_nlink = m->is_dir() ? 2 : link_group(*m).count;
    st->st_size = static_cast<off_t>(m->is_dir() ? 0 : m->size);
    st->st_blocks = static_cast<blkcnt_t>((m->size + 511) / 512);
    st->st_mtim = to_timespec(m->mtime_ns);
    st->st_atim = st->st_mtim;
    st->st_ctim = st->st_mtim;
  }

  // The kernel may skip OPEN/RELEASE (and OPENDIR/RELEASEDIR) for good once
  // one returns ENOSYS: files then open in the kernel with keep_cache and
  // directories with their readdir cache, as this filesystem asks anyway,
  // and a warm tree walk costs no round trip per file (set in op_init).
  std::atomic<bool> no_open{false};
  std::atomic<bool> no_opendir{false};
  // Started by op_init; stopped by mount_archive before the filesystem goes.
  std::unique_ptr<class Readahead> readahead;

  bool is_dir(const Node& n) const {
    if (n.kind != Node::member) return true;
    auto m = archive_.at(n.index);
    return m.ok() && m->is_dir();
  }

  // The directory's children from `cookie` on: each call yields the next
  // child (its node and name) and the cookie after it; children are found
  // by jumping over each child's subtree in the sorted member table.
  struct Child {
    Node node;
    std::string name;
    uint32_t next;  // member index to continue from
  };
  Result<std::optional<Child>> next_child(const std::string& dir_path, uint32_t from) const {
    const std::string prefix = dir_path.empty() ? "" : dir_path + "/";
    for (uint32_t i = from; i < n_;) {
      MMAR_ASSIGN(Member m, archive_.at(i));
      if (m.name.substr(0, prefix.size()) != prefix) return std::optional<Child>();  // past the directory
      std::string_view rest = m.name.substr(prefix.size());
      const size_t slash = rest.find('/');
      std::string name(rest.substr(0, slash));
      if (slash == std::string_view::npos) {
        // A member of its own ("d", "d-x", "d.txt" sort before "d/..."): next is
        // simply the following member.
        return std::optional<Child>(Child{Node{Node::member, inode_member(m), 0}, name, i + 1});
      }
      // The first member below child directory `name`: skip its subtree. If
      // the directory has a member of its own it sorted earlier and was
      // listed then; otherwise it is synthesized here.
      std::string sub = prefix + name;
      std::string past = sub;
      past += static_cast<char>('/' + 1);
      MMAR_ASSIGN(uint32_t next, archive_.lower_bound(past));
      if (next <= i) next = i + 1;  // never go backwards, whatever the bytes say
      auto own = archive_.find(sub);
      if (own.ok()) {
        i = next;
        continue;
      }
      uint32_t depth = depth_of(sub);
      if (depth > kMaxSynthDepth) {
        i = next;
        continue;
      }
      return std::optional<Child>(Child{Node{Node::synth, i, depth}, name, next});
    }
    return std::optional<Child>();
  }

  Result<uint32_t> first_child_index(const std::string& dir_path) const {
    if (dir_path.empty()) return uint32_t{0};
    return archive_.lower_bound(dir_path + "/");
  }

  const Archive& archive() const { return archive_; }
  uint32_t count() const { return n_; }

  // Hard links: the names of one file (members of one type with the same
  // link_id, docs/FORMAT.md "Attributes") are one inode, numbered after the
  // group's first member in name order, with st_nlink the group's size, so
  // `stat`, `find -samefile` and `rsync -H`/`tar` over the mount see one
  // file. The groups are found by one scan of the entries at the first
  // hard-linked member met: archives without hard links never pay for it.
  struct LinkGroup {
    uint32_t first;
    uint32_t count;
  };
  LinkGroup link_group(const Member& m) const {
    if (m.link_id == 0 || m.is_dir()) return {m.index, 1};
    std::call_once(links_once_, [this] {
      for (uint32_t i = 0; i < n_; ++i) {
        auto e = archive_.at(i);
        if (e.ok() && e->link_id != 0 && !e->is_dir()) links_.push_back({e->link_id, e->mode & S_IFMT, i});
      }
      std::sort(links_.begin(), links_.end());
    });
    const LinkKey key{m.link_id, m.mode & S_IFMT, 0};
    auto lo = std::lower_bound(links_.begin(), links_.end(), key);
    auto hi = std::upper_bound(lo, links_.end(), LinkKey{key.id, key.type, UINT32_MAX});
    if (lo == hi) return {m.index, 1};
    return {lo->index, static_cast<uint32_t>(std::min<size_t>(hi - lo, UINT32_MAX))};
  }
  uint32_t inode_member(const Member& m) const { return link_group(m).first; }

  bool damaged() const { return damaged_.load(std::memory_order_acquire); }
  void mark_damaged() {
    if (!damaged_.exchange(true)) {
      std::fprintf(stderr, "mmar: %s: the archive shrank under the mount; every request now fails with EIO\n",
                   archive_.name().c_str());
    }
  }

 private:
  std::atomic<bool> damaged_{false};
  Archive archive_;
  uint32_t n_;
  uid_t uid_;
  gid_t gid_;
  std::optional<uint32_t> force_uid_, force_gid_;
  uint32_t umask_ = 0;
  timespec root_time_{};
  struct LinkKey {
    uint64_t id;
    uint32_t type;
    uint32_t index;
    auto operator<=>(const LinkKey&) const = default;
  };
  mutable std::once_flag links_once_;
  mutable std::vector<LinkKey> links_;  // sorted; written once under links_once_
};

ArchiveFs& fs_of(fuse_req_t req) { return *static_cast<ArchiveFs*>(fuse_req_userdata(req)); }

// ---------------------------------------------------------------------------
// The archive shrinking under the mount. Pages of the mapping past the
// file's new end raise SIGBUS when touched (the index is at the end, so any
// truncation hits it). Each request runs with a thread-local jump buffer
// armed; the SIGBUS handler jumps back to it when the fault is inside the
// archive's mapping, and the request gets EIO instead of the daemon dying.
// From then on the mount is marked damaged and every request gets EIO at
// once, without touching the mapping: what a jump skipped (destructors of
// the request's locals) leaks at most once per worker thread. No lock is
// held while the mapping is read (the inflate cache's mutex guards only the
// cache's own list), so none is left held by a jump.
//
// The kernel's own copies from the mapping (replying a raw member's bytes
// straight from it) fault in the kernel, which fails that reply with EIO
// and raises no signal.

thread_local sigjmp_buf* t_request_guard = nullptr;
std::atomic<uintptr_t> g_mapping_begin{0};
std::atomic<uintptr_t> g_mapping_end{0};

void on_sigbus(int sig, siginfo_t* info, void*) {
  const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  sigjmp_buf* guard = t_request_guard;
  if (guard != nullptr && addr >= g_mapping_begin.load(std::memory_order_relaxed) &&
      addr < g_mapping_end.load(std::memory_order_relaxed)) {
    t_request_guard = nullptr;
    siglongjmp(*guard, 1);
  }
  // Not a fault of ours: the default action, as if there were no handler.
  signal(sig, SIG_DFL);
  raise(sig);
}

// Serve one request: bad_alloc becomes ENOMEM (guarded), a SIGBUS from the
// archive's mapping becomes EIO, and a damaged mount answers EIO at once.
template <class F>
void serve(fuse_req_t req, F body) {
  ArchiveFs& fs = fs_of(req);
  if (fs.damaged()) return (void)fuse_reply_err(req, EIO);
  sigjmp_buf guard;
  if (sigsetjmp(guard, 0) != 0) {  // no mask to restore (SA_NODEFER): no syscall per request
    fs.mark_damaged();
    fuse_reply_err(req, EIO);
    return;
  }
  t_request_guard = &guard;
  guarded(req, body);
  t_request_guard = nullptr;
}

// Read-ahead for sequential readers of compressed members: when a read
// continues where the previous one of the same file ended, the frames of
// the next two reads' stretch are inflated into the archive's frame cache
// on this thread while the request thread replies, so the next requests
// find them ready (and one that comes while its frame is being inflated
// waits for it instead of inflating it a second time: Archive::prefetch).
// Requests are dropped when the queue is full (read-ahead is a hint); the
// thread touches the mapping under the same SIGBUS guard as requests.
class Readahead {
 public:
  explicit Readahead(ArchiveFs& fs) : fs_(fs), thread_([this] { run(); }) {}
  ~Readahead() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  Readahead(const Readahead&) = delete;
  Readahead& operator=(const Readahead&) = delete;

  // A read of [off, off + len) of member `index` (inode `ino`) was served.
  void note(fuse_ino_t ino, uint32_t index, uint64_t off, uint64_t len, uint64_t size) {
    std::lock_guard lock(mu_);
    auto [it, fresh] = last_end_.try_emplace(ino, 0);
    const bool sequential = !fresh && it->second == off;
    it->second = off + len;
    if (last_end_.size() > 4096) last_end_.clear();
    if (!sequential || off + len >= size || queue_.size() >= 4) return;
    queue_.push_back({index, off + len, 2 * len});
    cv_.notify_one();
  }

 private:
  struct Ask {
    uint32_t index;
    uint64_t off, len;
  };
  void run() {
    for (;;) {
      Ask a{};
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (stop_) return;
        a = queue_.front();
        queue_.pop_front();
      }
      if (fs_.damaged()) continue;
      sigjmp_buf guard;
      if (sigsetjmp(guard, 0) != 0) {
        fs_.mark_damaged();
        continue;
      }
      t_request_guard = &guard;
      try {
        auto m = fs_.archive().at(a.index);
        if (m.ok()) fs_.archive().prefetch(*m, a.off, a.len);
      } catch (const std::bad_alloc&) {
      }
      t_request_guard = nullptr;
    }
  }
  ArchiveFs& fs_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Ask> queue_;
  std::unordered_map<fuse_ino_t, uint64_t> last_end_;
  bool stop_ = false;
  std::thread thread_;
};

int errno_of(const Error& e) {
  if (e.sys_errno() != 0) return e.sys_errno();
  switch (e.code()) {
    case Errc::not_found: return ENOENT;
    case Errc::limit: return ENAMETOOLONG;
    case Errc::invalid_argument: return EINVAL;
    default: return EIO;
  }
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  serve(req, [&] {
    ArchiveFs& fs = fs_of(req);
    auto p = fs.node_of(parent);
    if (!p || !fs.is_dir(*p)) return (void)fuse_reply_err(req, ENOTDIR);
    auto dir = fs.path_of(*p);
    if (!dir.ok()) return (void)fuse_reply_err(req, errno_of(dir.error()));
    auto n = fs.lookup(*dir, name);
    if (!n.ok()) return (void)fuse_reply_err(req, errno_of(n.error()));
    fuse_entry_param e{};
    e.ino = fs.ino_of(*n);
    e.attr_timeout = kTimeout;
    e.entry_timeout = kTimeout;
    fs.fill_stat(*n, &e.attr);
    fuse_reply_entry(req, &e);
  });
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  serve(req, [&] {
    ArchiveFs& fs = fs_of(req);
    auto n = fs.node_of(ino);
    if (!n) return (void)fuse_reply_err(req, ENOENT);
    struct stat st;
    fs.fill_stat(*n, &st);
    fuse_reply_attr(req, &st, kTimeout);
  });
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  serve(req, [&] {
    ArchiveFs& fs = fs_of(req);
    auto n = fs.node_of(ino);
    if (!n || n->kind != ArchiveFs::Node::member) return (void)fuse_reply_err(req, EINVAL);
    auto m = fs.archive().at(n->index);
    if (!m.ok() || !m->is_symlink()) return (void)fuse_reply_err(req, EINVAL);
    auto bytes = fs.archive().read(*m);
    if (!bytes.ok()) return (void)fuse_reply_err(req, EIO);
    std::string target(reinterpret_cast<const char*>(bytes->data()), bytes->size());
    fuse_reply_readlink(req, target.c_str());
  });
}

// Extended attributes as recorded (docs/FORMAT.md "Attributes"): the
// size query (size 0) and the copy, ERANGE when the buffer is too small.
void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  serve(req, [&] {
    ArchiveFs& fs = fs_of(req);
    auto n = fs.node_of(ino);
    if (!n) return (void)fuse_reply_err(req, ENOENT);
    if (n->kind != ArchiveFs::Node::member) return (void)fuse_reply_err(req, ENODATA);
    auto m = fs.archive().at(n->index);
    if (!m.ok()) return (void)fuse_reply_err(req, EIO);
    auto at = fs.archive().attributes(*m);
    if (!at.ok()) return (void)fuse_reply_err(req, EIO);
    for (const auto& [xn, xv] : at->xattrs) {
      if (xn != name) continue;
      if (size == 0) return (void)fuse_reply_xattr(req, xv.size());
      if (size < xv.size()) return (void)fuse_reply_err(req, ERANGE);
      return (void)fuse_reply_buf(req, xv.data(), xv.size());
    }
    fuse_reply_err(req, ENODATA);
  });
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  serve(req, [&] {
    ArchiveFs& fs = fs_of(req);
    auto n = fs.node_of(ino);
    if (!n) return (void)fuse_reply_err(req, ENOENT);
    std::string list;
    if (n->kind == ArchiveFs::Node::member) {
      auto m = fs.archive().at(n->index);
      if (!m.ok()) return (void)fuse_reply_err(req, EIO);
      auto at = fs.archive().attributes(*m);
      if (!at.ok()) return (void)fuse_reply_err(req, EIO);
      for (const auto& x : at->xattrs) list.append(x.first).push_back('\0');
    }
    if (size == 0) return (void)fuse_reply_xattr(req, list.size());
    if (size < list.size()) return (void)fuse_reply_err(req, ERANGE);
    fuse_reply_buf(req, list.data(), list.size());
  });
}

void op_init(void* userdata, fuse_conn_info* conn) {
  auto* fs = static_cast<ArchiveFs*>(userdata);
  // Started here, in the process that serves (after a daemonizing fork,
  // which threads do not survive).
  if (!fs->readahead) fs->readahead = std::make_unique<Readahead>(*fs);
  if ((conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) != 0) {
    conn->want |= FUSE_CAP_NO_OPEN_SUPPORT;
    fs->no_open = true;
  }
  if ((conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0) {
    conn->want |= FUSE_CAP_NO_OPENDIR_SUPPORT;
    fs->no_opendir = true;
  }
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  serve(req, [&] {
    ArchiveFs& fs = fs_of(req);
    auto n = fs.node_of(ino);
    // Opening needs nothing of ours (a raw member's checksum is checked at
    // its first read): let the kernel open by itself from now on. The mount
    // is read-only, so the kernel refuses writers before they get here.
    if (n && !fs.is_dir(*n) && fs.no_open) return (void)fuse_reply_err(req, ENOSYS);
    if (!n) return (void)fuse_reply_err(req, ENOENT);
    if (fs.is_dir(*n)) return (void)fuse_reply_err(req, EISDIR);
    if ((fi->flags & O_ACCMODE) != O_RDONLY) return (void)fuse_reply_err(req, EROFS);
    // A raw member's XXH3 is checked here, once per mount (the Archive
    // remembers the outcome, so every later read() of it is free); a
    // compressed member is checked as it is inflated, on first read.
    if (n->kind == ArchiveFs::Node::member) {
      auto m = fs.archive().at(n->index);
      if (!m.ok()) return (void)fuse_reply_err(req, EIO);
      char probe[1];
      if ((m->codec == Codec::none || m->codec == Codec::extents) && !fs.archive().read(*m, 0, 0, probe).ok()) {
        return (void)fuse_reply_err(req, EIO);
      }
    }
    fi->keep_cache = 1;  // the page cache stays valid: the archive never changes
    fuse_reply_open(req, fi);
  });
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  serve(req, [&] {
    ArchiveFs& fs = fs_of(req);
    auto n = fs.node_of(ino);
    if (!n || n->kind != ArchiveFs::Node::member) return (void)fuse_reply_err(req, EISDIR);
    auto m = fs.archive().at(n->index);
    if (!m.ok()) return (void)fuse_reply_err(req, EIO);
    if (off < 0 || static_cast<uint64_t>(off) >= m->size) return (void)fuse_reply_buf(req, nullptr, 0);
    const uint64_t len = std::min<uint64_t>(size, m->size - static_cast<uint64_t>(off));
    // Raw members: a view into the archive's mapping, handed to the kernel
    // without a copy of ours. The pages are populated in one call first:
    // faulting them in one by one costs more than the data on machines
    // where page-table updates are slow (virtualised ones). Compressed
    // members: the inflated buffer from the archive's cache.
    if (m->framed) {
      // A frame stream: only the frames this read needs, from the archive's
      // bounded frame cache; a read inside one frame is answered from it.
      auto got = fs.archive().read_bytes(*m, static_cast<uint64_t>(off), len);
      if (!got.ok()) return (void)fuse_reply_err(req, EIO);
      if (fs.readahead) fs.readahead->note(ino, n->index, static_cast<uint64_t>(off), len, m->size);
      return (void)fuse_reply_buf(req, reinterpret_cast<const char*>(got->data()), got->size());
    }
    if (m->codec == Codec::extents) {
      // An extent map: only the pieces this read needs.
      thread_local std::vector<char> buf;
      buf.resize(len);
      auto got = fs.archive().read(*m, static_cast<uint64_t>(off), len, buf.data());
      if (!got.ok()) return (void)fuse_reply_err(req, EIO);
      return (void)fuse_reply_buf(req, buf.data(), *got);
    }
    if (m->codec == Codec::none && m->chunk_sums && fs.archive().source().contiguous()) {
      // Raw with chunk checksums: a view of the mapping, only the chunks
      // under this read checked (once each). The chunks' pages are
      // populated in one call first, for the hash and then the reply.
      if (fs.archive().source().mapped()) {
        auto whole = fs.archive().source().read(m->data_offset, m->size);  // a view: nothing read or checked
        if (whole.ok()) {
          constexpr uint64_t kChunk = uint64_t{1} << 16;
          const uint64_t from = static_cast<uint64_t>(off) & ~(kChunk - 1);
          const uint64_t to = std::min<uint64_t>(m->size, (static_cast<uint64_t>(off) + len + kChunk - 1) & ~(kChunk - 1));
          const auto start = reinterpret_cast<uint64_t>(whole->data()) + from;
          const uint64_t first = start & ~uint64_t{4095};
          madvise(reinterpret_cast<void*>(first), start + (to - from) - first, MADV_POPULATE_READ);
        }
      }
      auto got = fs.archive().read_bytes(*m, static_cast<uint64_t>(off), len);
      if (!got.ok()) return (void)fuse_reply_err(req, EIO);
      return (void)fuse_reply_buf(req, reinterpret_cast<const char*>(got->data()), got->size());
    }
    auto bytes = fs.archive().read(*m);
    if (bytes.ok() && m->codec == Codec::none && fs.archive().source().mapped() && len >= 65536) {
      const uint64_t page = 4096;
      const auto start = reinterpret_cast<uint64_t>(bytes->data()) + static_cast<uint64_t>(off);
      const uint64_t first = start & ~(page - 1);
      madvise(reinterpret_cast<void*>(first), start + len - first, MADV_POPULATE_READ);
    }
    if (!bytes.ok()) return (void)fuse_reply_err(req, EIO);
    fuse_reply_buf(req, reinterpret_cast<const char*>(bytes->data()) + off, len);
  });
}

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  serve(req, [&] {
    ArchiveFs& fs = fs_of(req);
    auto n = fs.node_of(ino);
    if (n && fs.is_dir(*n) && fs.no_opendir) return (void)fuse_reply_err(req, ENOSYS);
    if (!n) return (void)fuse_reply_err(req, ENOENT);
    if (!fs.is_dir(*n)) return (void)fuse_reply_err(req, ENOTDIR);
    fi->keep_cache = 1;
    fi->cache_readdir = 1;
    fuse_reply_open(req, fi);
  });
}

// Offsets: 0 start; 1 after "."; 2 after ".."; then 3 + member index of the
// next child to list. With `plus` (READDIRPLUS) every entry carries its
// attributes, so `ls -l` and `find -printf %s` need no LOOKUP per entry.
template <bool plus>
void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off) {
  serve(req, [&] {
    ArchiveFs& fs = fs_of(req);
    auto n = fs.node_of(ino);
    if (!n) return (void)fuse_reply_err(req, ENOENT);
    auto dir = fs.path_of(*n);
    if (!dir.ok()) return (void)fuse_reply_err(req, EIO);
    std::vector<char> buf(size);
    size_t used = 0;
    auto add = [&](const char* name, fuse_ino_t child_ino, const struct stat& st, off_t next) {
      size_t need;
      if constexpr (plus) {
        fuse_entry_param e{};
        e.ino = child_ino;  // 0 for "." and "..": no dentry is made for them
        e.attr = st;
        e.attr_timeout = kTimeout;
        e.entry_timeout = kTimeout;
        need = fuse_add_direntry_plus(req, buf.data() + used, size - used, name, &e, next);
      } else {
        need = fuse_add_direntry(req, buf.data() + used, size - used, name, &st, next);
      }
      if (need > size - used) return false;
      used += need;
      return true;
    };
    struct stat st {};
    if (off < 1) {
      st.st_ino = ino;
      st.st_mode = S_IFDIR;
      if (!add(".", 0, st, 1)) return (void)fuse_reply_buf(req, buf.data(), used);
      off = 1;
    }
    if (off < 2) {
      st.st_ino = kRoot;
      st.st_mode = S_IFDIR;
      if (!add("..", 0, st, 2)) return (void)fuse_reply_buf(req, buf.data(), used);
      off = 2;
    }
    uint32_t next;
    if (off == 2) {
      auto first = fs.first_child_index(*dir);
      if (!first.ok()) return (void)fuse_reply_err(req, EIO);
      next = *first;
    } else {
      next = static_cast<uint32_t>(off - 3);
    }
    for (;;) {
      auto child = fs.next_child(*dir, next);
      if (!child.ok()) return (void)fuse_reply_err(req, EIO);
      if (!*child) break;
      const auto& c = **child;
      std::memset(&st, 0, sizeof st);
      fs.fill_stat(c.node, &st);
      if (!add(c.name.c_str(), fs.ino_of(c.node), st, static_cast<off_t>(c.next) + 3)) break;
      next = c.next;
    }
    fuse_reply_buf(req, buf.data(), used);
  });
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  do_readdir<false>(req, ino, size, off);
}
void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  do_readdir<true>(req, ino, size, off);
}

void op_statfs(fuse_req_t req, fuse_ino_t) {
  guarded(req, [&] {  // touches no mapping: answers even on a damaged mount
    ArchiveFs& fs = fs_of(req);
    struct statvfs s {};
    s.f_bsize = 4096;
    s.f_frsize = 4096;
    s.f_blocks = (fs.archive().source().size() + 4095) / 4096;
    s.f_files = fs.count() + 1;
    s.f_namemax = 4096;
    s.f_flag = ST_RDONLY;
    fuse_reply_statfs(req, &s);
  });
}

void op_write_denied(fuse_req_t req) { fuse_reply_err(req, EROFS); }

}  // namespace

namespace {

// fuse_daemonize's job (detach: fork, new session, cwd "/", standard
// streams on /dev/null), with the parent let go only after `ready` ran in
// the child: the parent's exit status then means "mounted and ready".
// Returns in the child; the parent exits here (0 once the child is ready,
// 1 if it died first).
void daemonize(void (*ready)(void*), void* userdata) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    fuse_daemonize(0);  // cannot wait for the child: fall back to libfuse's
    if (ready != nullptr) ready(userdata);
    return;
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    fuse_daemonize(0);
    if (ready != nullptr) ready(userdata);
    return;
  }
  if (pid > 0) {
    ::close(pipe_fds[1]);
    char done = 0;
    ssize_t n;
    do {
      n = ::read(pipe_fds[0], &done, 1);
    } while (n < 0 && errno == EINTR);
    ::_exit(n == 1 && done == 1 ? 0 : 1);
  }
  ::close(pipe_fds[0]);
  ::setsid();
  if (::chdir("/") != 0) {
    // "/" always exists; nothing to do if it cannot be entered
  }
  const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd >= 0) {
    ::dup2(null_fd, 0);
    ::dup2(null_fd, 1);
    ::dup2(null_fd, 2);
    if (null_fd > 2) ::close(null_fd);
  }
  if (ready != nullptr) ready(userdata);
  const char done = 1;
  while (::write(pipe_fds[1], &done, 1) < 0 && errno == EINTR) {
  }
  ::close(pipe_fds[1]);
}

}  // namespace

Result<void> run_session(const fuse_lowlevel_ops& ops, void* userdata, const std::string& dir,
                         const MountOptions& options, const std::string& base_options,
                         void (*in_daemon)(void* userdata)) {
  MMAR_ASSIGN(std::vector<std::string> user_options, checked_user_options(options.fuse_options));
  std::vector<std::string> argv_s = {"mmar", "-o", base_options};
  for (const auto& o : user_options) {
    argv_s.push_back("-o");
    argv_s.push_back(o);
  }
  if (options.debug) argv_s.push_back("-d");
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, userdata);
  if (se == nullptr) {
    fuse_opt_free_args(&args);
    return Error(Errc::invalid_argument, "cannot start the FUSE session (bad -o option?)");
  }
  Result<void> result = success();
  if (fuse_set_signal_handlers(se) != 0) {
    result = Error(Errc::io, "cannot install signal handlers");
  } else {
    if (fuse_session_mount(se, dir.c_str()) != 0) {
      result = Error(Errc::io, "cannot mount on " + dir + " (see the message above)");
    } else {
      if (options.foreground) {
        if (in_daemon != nullptr) in_daemon(userdata);
      } else {
        daemonize(in_daemon, userdata);
      }
      fuse_loop_config* cfg = fuse_loop_cfg_create();
      // Default: half the CPUs (at least one) serve requests. Measured on 2
      // CPUs: a second worker slows a sequential read by 30% (requests bounce
      // between threads while the reader needs the other CPU) and helps
      // nothing else there; more CPUs give concurrent readers their threads.
      unsigned threads = options.max_threads;
      if (threads == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        threads = static_cast<unsigned>(std::max(1L, cpus / 2));
      }
      fuse_loop_cfg_set_max_threads(cfg, threads);
      fuse_loop_cfg_set_clone_fd(cfg, 1);
      int rc = fuse_session_loop_mt(se, cfg);
      fuse_loop_cfg_destroy(cfg);
      fuse_session_unmount(se);
      if (rc != 0 && rc != SIGINT && rc != SIGTERM && rc != SIGHUP) {
        result = Error(Errc::io, "FUSE session ended with an error (" + std::to_string(rc) + ")");
      }
    }
    fuse_remove_signal_handlers(se);
  }
  fuse_session_destroy(se);
  fuse_opt_free_args(&args);
  return result;
}

Result<void> mount_archive(Archive archive, const std::string& dir, const MountOptions& options) {
  if (access("/dev/fuse", R_OK | W_OK) != 0) {
    return Error(Errc::io, "cannot mount: /dev/fuse: " + std::string(std::strerror(errno)), Error::kNoOffset, errno);
  }
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) return sys_error(dir, errno);
  if (!S_ISDIR(st.st_mode)) return Error(Errc::invalid_argument, dir + ": not a directory");
  if (options.writable) {
    const std::string path = archive.name();
    return serve_writable(std::move(archive), path, dir, options);
  }

  ArchiveFs fs(std::move(archive), options);
  struct StopReadahead {
    ArchiveFs& fs;
    ~StopReadahead() { fs.readahead.reset(); }
  } stop_readahead{fs};
  if (fs.archive().source().mapped()) {
    const auto all = fs.archive().source().all();
    g_mapping_begin.store(reinterpret_cast<uintptr_t>(all.data()));
    g_mapping_end.store(reinterpret_cast<uintptr_t>(all.data()) + all.size());
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;  // not blocked in the handler: the jump keeps the mask as it is
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, nullptr) != 0) return sys_error("sigaction SIGBUS", errno);
  }
  fuse_lowlevel_ops ops{};
  ops.init = op_init;
  ops.lookup = op_lookup;
  ops.getattr = op_getattr;
  ops.readlink = op_readlink;
  ops.open = op_open;
  ops.read = op_read;
  ops.opendir = op_opendir;
  ops.readdir = op_readdir;
  ops.readdirplus = op_readdirplus;
  ops.statfs = op_statfs;
  ops.getxattr = op_getxattr;
  ops.listxattr = op_listxattr;
  ops.mkdir = [](fuse_req_t req, fuse_ino_t, const char*, mode_t) { op_write_denied(req); };
  ops.unlink = [](fuse_req_t req, fuse_ino_t, const char*) { op_write_denied(req); };
  return run_session(ops, &fs, dir, options, base_mount_options(false, fs.archive().name()));
}

}  // namespace mmar::fs
