// SPDX-License-Identifier: BSD-2-Clause
// mmar archives: open, look up, read, iterate; and write.
//
// An Archive is a cheap-to-copy handle (shared ownership of the mapping and
// the decompression cache). Member names and uncompressed member bytes are
// views into the mapping and stay valid while any copy of the Archive, or any
// Bytes returned by it, is alive. Archives are safe to use from several
// threads at once.
#pragma once

#include "mmar/export.h"

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mmar/result.h"
#include "mmar/source.h"
#include "mmar/unique_fd.h"

namespace mmar {

// How a member's bytes are stored. `extents` (an extent map: pieces of raw
// data anywhere in the file, holes between) is written by in-place updates
// only; compaction turns it back into `none`.
enum class Codec : uint8_t { none = 0, zstd = 1, xz = 2, extents = 3 };

// What a member's bytes are (detected when writing).
enum class Kind : uint8_t {
  data = 0,       // anything else
  elf = 1,        // an ELF object
  btf = 2,        // raw BTF (base or split)
  ctf = 3,        // a CTF dictionary
  btf_index = 4,  // a stored index for the BTF member it links to (src/btf/index.cpp)
};

// The container format an Archive was opened from.
enum class Format : uint8_t {
  mmar,   // this project's format (docs/FORMAT.md)
  ctf,    // binutils libctf's CTF archive
  plain,  // not an archive: the file itself, as a one-member archive
};

// The format an archive starting with `head` (its first 128 bytes, or all
// of it when shorter) is in, from the magic numbers alone: mmar (either
// superblock slot's magic), ctf, or plain for anything else; nullopt when
// `head` is too short to tell.
MMAR_API std::optional<Format> archive_format_of(std::span<const std::byte> head);

// Formats mmar does not open but a user may hand it where an archive is
// expected: "a tar archive", "a zip archive", "a squashfs image", "a
// zstd-compressed stream", ... from magic numbers in `head` (the file's
// first bytes; tar's magic is at 257, so give at least 512) and, for ISO
// 9660, `iso_magic` (the 5 bytes at offset 0x8001; empty when the file is
// shorter). nullptr when none matches.
MMAR_API const char* foreign_format_of(std::span<const std::byte> head, std::span<const std::byte> iso_magic = {});
// How to make an mmar archive of `file`, which foreign_format_of() named
// `foreign`: a command line that works for that format ("mmar create -f
// OUT.mmar --from FILE" for what libarchive reads; for a squashfs or EROFS
// image, which it does not, the image unpacked by its own tool first).
MMAR_API std::string conversion_hint(std::string_view foreign, std::string_view file);

MMAR_API const char* codec_name(Codec codec);
MMAR_API const char* kind_name(Kind kind);
MMAR_API const char* format_name(Format format);
MMAR_API std::optional<Codec> parse_codec(std::string_view name);

// What a file has beyond its bytes, mode and time (docs/FORMAT.md
// "Attributes"): owner, extended attributes (security.capability and POSIX
// ACLs included), the device number of a device node, and which names are
// hard links of one file. A member without attributes is owned by uid 0,
// gid 0 (a mount shows the mounting user instead), has no xattrs and is no
// hard link.
struct MMAR_API Attributes {
  // The owner is recorded (uid and gid below are the file's, root
  // included); false: unknown, extract leaves files to whoever extracts.
  // Writers record it for files not owned by root and for setuid/setgid
  // files, so that extract restores those bits only with their owner.
  bool has_owner = false;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string uname;  // owner's name when recorded (tar keeps them), else empty
  std::string gname;
  uint32_t rdev_major = 0;  // character and block devices
  uint32_t rdev_minor = 0;
  // Members with the same non-zero link_id are names of one file (hard
  // links); extract makes them hard links again.
  uint64_t link_id = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;  // (name, value), sorted by name, names unique

  bool empty() const {
    return !has_owner && uid == 0 && gid == 0 && uname.empty() && gname.empty() && rdev_major == 0 && rdev_minor == 0 &&
           link_id == 0 && xattrs.empty();
  }
};

// One member's metadata, decoded and validated. `name` views the archive.
struct MMAR_API Member {
  uint32_t index = 0;        // position in the sorted member table
  std::string_view name;     // relative path, '/'-separated, never empty
  uint64_t data_offset = 0;  // file offset of the stored bytes
  uint64_t stored_size = 0;  // bytes in the archive
  uint64_t size = 0;         // original bytes
  uint64_t xxh3 = 0;         // XXH3-64 of the original bytes (0 if !has_checksum)
  int64_t mtime_ns = 0;
  uint32_t mode = 0;             // st_mode (S_IFREG/S_IFDIR/S_IFLNK | permissions)
  std::optional<uint32_t> link;  // a related member's index (split BTF -> its base)
  Codec codec = Codec::none;
  Kind kind = Kind::data;
  bool page_aligned = false;  // data_offset is a multiple of Archive::alignment()
  bool has_btf = false;       // an ELF member with a .BTF section
  bool has_checksum = true;   // false for formats without checksums (CTF, plain)
  // A compressed member stored as a frame stream (docs/FORMAT.md "Frame
  // streams"): any byte range is read by inflating only the frames that
  // hold it. Members smaller than a frame share streams with their
  // neighbours: the member is bytes [stream_offset, stream_offset + size)
  // of the stream at data_offset (stored_size bytes, shared).
  bool framed = false;
  uint32_t stream_offset = 0;
  // A raw member with a checksum per chunk (docs/FORMAT.md "Chunk
  // checksums"): a range read checks the chunks it touches, not the whole
  // member.
  bool chunk_sums = false;
  // Attributes (docs/FORMAT.md "Attributes"), the fixed-size ones decoded;
  // names and xattrs through Archive::attributes(). `attr_bytes` views the
  // archive's record (empty when the member has none).
  bool has_owner = false;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t rdev_major = 0;
  uint32_t rdev_minor = 0;
  uint64_t link_id = 0;
  std::span<const std::byte> attr_bytes;

  bool is_dir() const;
  bool is_symlink() const;
  bool is_regular() const;
  bool has_data() const;  // a regular file or a symlink (the rest store nothing)
};

struct MMAR_API OpenOptions {
  bool force_pread = false;                      // never mmap; see SourceOptions
  bool verify_index = false;                     // hash the whole index at open (verify() always does)
  uint64_t cache_bytes = 64u << 20;              // bound on decompressed members kept in memory
  uint64_t frame_cache_bytes = 32u << 20;        // bound on inflated frames kept (frame streams)
  uint64_t max_member_size = uint64_t{1} << 40;  // refuse to inflate larger members
  // read() checks each member's XXH3 before it returns the bytes: a raw
  // member the first time it is read (the outcome is remembered for the
  // Archive's lifetime, so later reads cost nothing), a compressed one as it
  // is inflated. false is the escape hatch for getting bytes out of a
  // damaged archive (mmar cat/extract --no-verify); verify() always checks.
  bool verify_checksums = true;
  // A file that is neither an mmar nor a CTF archive opens as a one-member
  // archive when it is a recognised object (ELF, BTF, CTF); any other file
  // only with plain_data (`mmar --plain`). Without it, another archive format
  // (tar, zip, cpio, squashfs, a compressed stream, ...) is refused, named,
  // with the conversion to use (Errc::unsupported).
  bool plain_data = false;
};

// Problems found by Archive::verify(), one per bad member or structure.
struct MMAR_API VerifyProblem {
  std::optional<uint32_t> member;  // nullopt: the archive structure itself
  std::string message;
};

class MMAR_API Archive {
 public:
  static Result<Archive> open(const std::string& path, const OpenOptions& options = {});
  static Result<Archive> open(Source source, const OpenOptions& options = {});

  Format format() const;
  const Source& source() const;
  const std::string& name() const;  // the path or the name given to the Source
  uint32_t size() const;            // number of members
  uint64_t alignment() const;       // page alignment of raw members (mmar), else 1
  uint64_t generation() const;      // superblock generation (mmar), else 0
  uint64_t ctf_model() const;       // CTF archives: ctfa_model (1 ILP32, 2 LP64), else 0
  // Opened without a mapping (pread, a remote source), the index is read on
  // demand; true when lookups are narrowed by the archive's name fence
  // (docs/FORMAT.md "Name fence"): three reads per cold lookup.
  bool has_name_fence() const;

  // The i-th member in name order; validated (bounds, codec, mode, name).
  Result<Member> at(uint32_t index) const;
  // Binary search by exact name. Errc::not_found when absent.
  Result<Member> find(std::string_view name) const;
  // The index of the first member whose name is not less than `name`
  // (size() if none): with sorted names, the members below a directory
  // "d/" are the range [lower_bound("d/"), lower_bound("d0")).
  Result<uint32_t> lower_bound(std::string_view name) const;

  // The member's original bytes: a view into the mapping for raw members,
  // the cached inflated buffer for compressed ones. Size and XXH3 are checked
  // (unless OpenOptions::verify_checksums is off): a mismatch is an
  // Errc::checksum error naming the member and its offset. `member` must come
  // from this Archive (at/find/for_each).
  Result<Bytes> read(const Member& member) const;
  Result<Bytes> read(std::string_view name) const;
  // Bytes [offset, offset + length) of the member (cut at its end) copied
  // to `out`; returns how many. Raw and extent-mapped members are read in
  // place (their checksum checked once per Archive, as read() does);
  // compressed ones through the inflated, cached whole.
  Result<size_t> read(const Member& member, uint64_t offset, size_t length, void* out) const;
  // The same range (cut at the member's end) as Bytes: a view of the
  // inflated frame when it lies in one frame, of the mapping for a raw
  // member; a fresh buffer otherwise.
  Result<Bytes> read_bytes(const Member& member, uint64_t offset, size_t length) const;
  // A hint that [offset, offset + length) of a frame stream member will be
  // read soon: its frames are inflated and checked into the frame cache
  // now, on the calling thread (a sequential reader's read-ahead), so the
  // read finds them ready; a reader that asks for a frame while it is being
  // inflated waits for it rather than inflating it twice. Errors are left
  // for the read to report; other members are not touched.
  void prefetch(const Member& member, uint64_t offset, uint64_t length) const noexcept;

  // The member's attributes in full (owner names, xattrs); checked as the
  // entry was. Empty Attributes for a member without any.
  Result<Attributes> attributes(const Member& member) const;

  // Raw iteration in name order; stops at the first error or when fn fails.
  Result<void> for_each(const std::function<Result<void>(const Member&)>& fn) const;
  // Typed iteration: only members of one kind.
  Result<void> for_each(Kind kind, const std::function<Result<void>(const Member&)>& fn) const;

  // Check everything: superblocks, index checksum, name order, every entry,
  // every member's size and checksum. Returns the list of problems (empty
  // when the archive is sound); an Error only if it cannot be read at all.
  // `progress`, if given, is called with (members checked, members) as it goes.
  Result<std::vector<VerifyProblem>> verify(const std::function<void(uint64_t done, uint64_t total)>& progress = {}) const;

  struct MMAR_LOCAL Impl;  // internal: not exported

 private:
  friend class MemberReader;
  explicit Archive(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// One member as a stream, with read and seek: memory is one frame (frame
// streams) or a bounded buffer, whatever the member's size -- what cat,
// extract and the mount use. Frames are checked as they are inflated; a
// read through the whole member from offset 0 without seeking also checks
// the member's XXH3 when it reaches the end (Errc::checksum, after the
// bytes were handed out: a streaming consumer learns it at the end, as with
// `zstd -dc`). OpenOptions::verify_checksums off turns both checks off.
class MMAR_API MemberReader {
 public:
  MemberReader(Archive archive, Member member);
  ~MemberReader();
  MemberReader(MemberReader&&) noexcept;
  MemberReader& operator=(MemberReader&&) noexcept;

  // Up to `n` bytes at the current position into `out`; 0 at the end.
  Result<size_t> read(void* out, size_t n);
  void seek(uint64_t offset);
  uint64_t tell() const;
  const Member& member() const;

 private:
  struct MMAR_LOCAL State;  // internal: not exported
  std::unique_ptr<State> s_;
};

// Write the member's bytes to `fd` at its current position, streamed through
// a MemberReader (memory one frame or 1 MiB, whatever the member's size).
MMAR_API Result<void> copy_member_to_fd(const Archive& archive, const Member& member, int fd);

// ---------------------------------------------------------------------------
// One writer at a time (docs/FORMAT.md, "Writers"). Every writer of an
// archive -- a writable mount, compaction, commit_generation and Writer::write
// replacing an existing file -- holds an exclusive OFD lock (fcntl
// F_OFD_SETLK) on the archive file while it writes. A second writer fails at
// once with Errc::busy: "PATH: in use by another writer (pid N)". Readers
// take no lock: writers never overwrite data a reader may be using.
class MMAR_API WriterLock {
 public:
  // Open `path` read-write and lock it; also checks that `path` still names
  // the locked file afterwards (it may have been replaced meanwhile).
  static Result<WriterLock> acquire(const std::string& path);
  // Lock an fd the caller keeps open (the lock lives with its open file
  // description). `path` is for messages.
  static Result<void> lock_fd(int fd, const std::string& path);
  // Own an fd already locked with lock_fd.
  static Result<WriterLock> adopt(UniqueFd fd, const std::string& path) { return WriterLock(std::move(fd), path); }

  WriterLock(WriterLock&&) noexcept = default;
  WriterLock& operator=(WriterLock&&) noexcept = default;
  ~WriterLock() = default;

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  // Errc::io (EIO) when `path` no longer names the locked file: it was
  // replaced (rename over it) or removed. A writer must not commit then.
  Result<void> still_named() const;
  // Give up the lock and the fd.
  void release() { fd_.reset(); }
  // Name this process as the holder (after a fork: a daemon that detached).
  void refresh_pid() const;

 private:
  WriterLock(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  UniqueFd fd_;
  std::string path_;
};

// ---------------------------------------------------------------------------
// Updating in place (the writable mount): a new generation appended to an
// existing mmar archive (see docs/FORMAT.md, "Updating in place").

// Bytes that an updater appended for a member: raw (codec none), or an
// extent map (Codec::extents) naming pieces of raw data in the file.
struct MMAR_API StoredExtent {
  uint64_t offset = 0;       // file offset of the stored bytes (0 when there are none)
  uint64_t stored_size = 0;  // bytes stored there (the map's size for an extent map)
  uint64_t size = 0;         // the member's bytes
  uint64_t xxh3 = 0;         // of the member's bytes
  bool extent_map = false;
  Kind kind = Kind::data;
  bool page_aligned = false;
  bool has_btf = false;
};

// How a writer stores an archive's index (WriteOptions::index).
enum class IndexStorage : uint8_t { automatic, plain, compressed };
// "auto", "plain" or "compressed".
MMAR_API std::optional<IndexStorage> parse_index_storage(std::string_view name);

// One member put by a commit (added, or replacing the member of that name).
// Its bytes come from, in this order: `keep`, `extent`, `data_fd`, or the
// symlink target; a directory has none. With `incremental`, a regular
// file's bytes are those of its base (`keep` or `extent`) cut or
// zero-extended to `size`, with the `dirty` ranges taken from `data_fd`:
// the commit appends only those ranges (an extent map) while they are at
// most half the file, else the whole file once more.
struct MMAR_API UpdateMember {
  std::string name;         // a normalised member name (normalize_member_name)
  uint32_t mode = 0100644;  // S_IFREG/S_IFDIR/S_IFLNK | permissions
  int64_t mtime_ns = 0;
  std::optional<uint32_t> keep;        // reuse member `keep`'s stored bytes (of the updater's base())
  std::optional<StoredExtent> extent;  // reuse bytes an earlier commit of the same updater appended
  int data_fd = -1;                    // regular files: the new bytes, [0, size) of this fd (holes stay holes)
  uint64_t size = 0;
  bool incremental = false;
  std::vector<std::pair<uint64_t, uint64_t>> dirty;  // [begin, end) ranges, sorted and disjoint
  std::string symlink_target;
  // Owner, xattrs, device number, hard link id: stored with the entry as
  // given (a member whose stored bytes are kept still takes these).
  Attributes attrs;
};

struct MMAR_API UpdaterOptions {
  // Rewrite the archive with only its live data (atomically, under the lock)
  // once the file is larger than compact_ratio x the live bytes and at least
  // compact_min_bytes. 0 disables automatic compaction.
  double compact_ratio = 2.0;
  uint64_t compact_min_bytes = uint64_t{1} << 20;
};

struct MMAR_API CommitResult {
  // Per put member, in the order given: where bytes written from data_fd or
  // a symlink target now are (nullopt for the others).
  std::vector<std::optional<StoredExtent>> extents;
  bool full_index = false;  // wrote a whole member table (else an index delta)
  bool compacted = false;   // the archive was rewritten: base() changed, and every
                            // `keep` index and extent from before is stale
  uint64_t appended = 0;    // bytes this commit appended (before any compaction)
};

// The writer of in-place updates (the writable mount): holds the archive's
// WriterLock, appends each commit's data and an index delta (or, when the
// chain of deltas grows, a whole member table), switches the superblock
// slot not in use, with fdatasync between; a crash at any moment leaves the
// old or the new generation. A commit that fails truncates the file back to
// its last committed length, so the file is left as it was. Cost per commit
// is proportional to what it changes (amortised: a delta merges with the
// ones before it as a binary counter would, so at most log2 of the changes
// deep); superseded data is reclaimed by automatic compaction.
class MMAR_API ArchiveUpdater {
 public:
  static Result<ArchiveUpdater> open(const std::string& path, UpdaterOptions options = {});
  ArchiveUpdater(ArchiveUpdater&&) noexcept;
  ArchiveUpdater& operator=(ArchiveUpdater&&) noexcept;
  ~ArchiveUpdater();

  // The archive as opened or as last compacted (what `keep` indexes name).
  const Archive& base() const;
  const WriterLock& lock() const;
  uint64_t generation() const;  // of the last commit
  uint64_t file_size() const;   // committed length of the file
  uint64_t live_bytes() const;  // stored bytes the current generation uses, index included
  uint32_t size() const;        // members in the current generation
  // Whether member `name` exists now, and is a directory.
  std::optional<bool> is_dir(std::string_view name) const;

  // Put and remove members (names in `remove` must exist and not be put);
  // nothing is written if a name breaks the rules of normalize_member_name
  // or a file would have members below it.
  Result<CommitResult> commit(std::vector<UpdateMember> put, const std::vector<std::string>& remove);
  // Rewrite now (see UpdaterOptions).
  // `progress` (optional): (done, total) in bytes: the copy, then reading
  // the copy back. `index`: how the new index is stored (as WriteOptions).
  Result<void> compact(const std::function<void(uint64_t done, uint64_t total)>& progress = {},
                       IndexStorage index = IndexStorage::automatic);
  // Bytes [offset, offset + length) of what a commit stored (raw or an
  // extent map); zeros where nothing is stored.
  Result<void> read_stored(const StoredExtent& x, uint64_t offset, size_t length, void* out) const;

 private:
  struct MMAR_LOCAL Impl;  // internal: not exported
  explicit ArchiveUpdater(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One generation replacing the whole member list: `members` is every member
// of the new generation (`keep` indexes name members of `current`). Takes the
// archive's lock for the commit; fails if the archive changed since `current`
// was opened.
MMAR_API Result<void> commit_generation(const std::string& path, const Archive& current, std::vector<UpdateMember> members);

// ---------------------------------------------------------------------------
// Writing

// What WriteOptions::link_for is asked about: a member whose bytes are BTF,
// or an ELF object with a .BTF section.
struct MMAR_API LinkQuery {
  std::string_view member;           // its name in the archive
  std::string_view path;             // the file it comes from ("" for buffers)
  std::span<const std::byte> bytes;  // its bytes, for buffers (empty for files)
  Kind kind = Kind::data;
  bool has_btf = false;
};


struct MMAR_API WriteOptions {
  Format format = Format::mmar;  // mmar or ctf
  Codec codec = Codec::zstd;
  int level = 0;              // 0: the codec's default (zstd 3, xz 6)
  uint64_t threshold = 16;    // compress members larger than this; 0 = never
  // Compressed members are frame streams of this many bytes per frame (a
  // power of two, 4 KiB .. 4 MiB): a random read inflates one frame.
  uint32_t frame_size = 128 << 10;
  // Members smaller than both a frame and a pack are packed together, in
  // name order, into shared one-frame streams of up to this many bytes (a
  // power of two, 4 KiB .. 4 MiB; 0: twice the frame size, at most 4 MiB,
  // so 256 KiB by default). Larger packs compress better; a read of one
  // small member inflates its whole pack (bench/RESULTS.md "Pack size").
  uint32_t pack_size = 0;
  // Raw members larger than this carry a checksum per chunk of this size
  // (docs/FORMAT.md "Chunk checksums"): a power of two, 4 KiB ... 4 MiB;
  // 0 writes none.
  uint32_t chunk_size = 64 << 10;
  uint32_t alignment = 4096;  // 4096, 16384 or 65536
  // CTF archives: the data model libctf gives every dict (CTF dicts do not
  // record it): 1 ILP32 (32-bit objects), 2 LP64. 0: the inputs' own (an
  // ELF object's class, a CTF archive's model; inputs that disagree are
  // Errc::invalid_argument), LP64 when only raw dicts imply none.
  // Format::ctf stores dicts: an ELF input gives its .ctf section's dict,
  // a CTF archive input (or .ctf section) its dicts under their names there.
  uint32_t ctf_model = 0;
  unsigned threads = 0;       // 0: one per online CPU
  // What add_path/add_tree record of each file besides bytes, mode and
  // time: its owner (uid, gid; and their names unless numeric_owner, as
  // tar), its extended attributes, and which names are hard links of one
  // file. Device numbers are always kept.
  bool owners = true;
  bool numeric_owner = false;
  bool xattrs = true;
  // Reproducible archives: every member's mtime set to this (tar --mtime),
  // or, without it, clamped to at most this (SOURCE_DATE_EPOCH's rule);
  // nanoseconds since the epoch. The same inputs then give the same bytes.
  std::optional<int64_t> mtime_ns;
  std::optional<int64_t> clamp_mtime_ns;
  // add_tree and ArchiveImport::read skip a name (and, for a directory,
  // everything below it) for which this returns true (tar --exclude).
  std::function<bool(std::string_view name)> exclude;
  // Called with each member's name as it is added (tar -v).
  std::function<void(std::string_view name)> on_add;
  // Called from the writing thread with bytes of member data written so far.
  std::function<void(uint64_t done, uint64_t total)> progress;
  // Called (from the writing thread) for BTF-bearing members
  // without an explicit link; returning a member name links the member to it
  // (how split BTF names its base). Must be thread-safe.
  std::function<std::optional<std::string>(const LinkQuery&)> link_for;
  // Frame table version of new frame streams (docs/FORMAT.md "Frame
  // streams"): 3, or 2 / 1 for readers that predate v3 / v2 (and tests).
  uint8_t frame_table = 3;
  // How the index (member table and names) is stored (docs/FORMAT.md
  // "Compressed index"): plain is mapped and searched in place; compressed
  // is zstd in 64 KiB frames, inflated a frame at a time by lookups
  // (smaller, and unreadable by mmar before it). automatic: compressed when
  // any member is and the index is at most 16 MiB (some 200,000 members);
  // plain when all are raw (zero-copy archives: BTF packs) or it is larger.
  IndexStorage index = IndexStorage::automatic;
};

struct MMAR_API WriteStats {
  uint32_t members = 0;
  uint64_t input_bytes = 0;
  uint64_t archive_bytes = 0;
  uint32_t compressed_members = 0;
  uint32_t deduplicated = 0;        // members sharing an earlier member's data (same bytes, not hard links)
  uint64_t deduplicated_bytes = 0;  // their bytes, not stored again
};

// Collects members, then writes them in one pass. Input files are only
// opened while writing; memory stays bounded by a window of members in
// flight, independent of the total input size. Output is deterministic: the
// same inputs give the same bytes, whatever the number of threads.
class MMAR_API Writer {
 public:
  explicit Writer(WriteOptions options = {});
  ~Writer();
  Writer(Writer&&) noexcept;
  Writer& operator=(Writer&&) noexcept;

  // A file, directory or symlink from disk (lstat; symlinks are kept).
  Result<void> add_path(std::string name, const std::string& path);
  // A directory and everything below it, names prefixed with `name/`
  // (or at the top level when name is empty).
  Result<void> add_tree(const std::string& name, const std::string& dir);
  Result<void> add_bytes(std::string name, std::vector<std::byte> data, uint32_t mode = 0100644, int64_t mtime_ns = 0);
  // A member of another archive (kept open by the writer until write()):
  // its mode and time kept; a frame stream of its own in this writer's
  // codec and frame size copied as stored (no inflate, no recompress);
  // anything else streamed through a MemberReader and stored as options say.
  Result<void> add_member(std::string name, const Archive& from, const Member& member);
  Result<void> add_directory(std::string name, uint32_t mode = 040755, int64_t mtime_ns = 0);
  Result<void> add_symlink(std::string name, std::string target, int64_t mtime_ns = 0);
  // Record that member `name` relates to member `target` (split BTF -> base).
  Result<void> set_link(const std::string& name, const std::string& target);
  // Give member `name` these attributes instead of those its file has
  // (add_path/add_tree take owner, xattrs and device numbers from the file,
  // as WriteOptions says; hard links are found by the writer).
  Result<void> set_attributes(const std::string& name, Attributes attrs);
  // A FIFO, socket, or character or block device (mode's type says which;
  // `attrs` carries the device number).
  Result<void> add_special(std::string name, uint32_t mode, int64_t mtime_ns = 0, Attributes attrs = {});

  size_t pending() const;
  // Whether WriteOptions::exclude leaves `name` out, or a directory above
  // it (every way in skips what it does: add_tree, ArchiveImport::read).
  bool excludes(std::string_view name) const;

  // Write atomically: a temporary file beside `path`, fsync, rename, fsync
  // of the directory. On failure the temporary is removed and any existing
  // file at `path` is untouched.
  // Takes the WriterLock of an existing archive at `path` (Errc::busy if
  // another writer has it) and locks the temporary before renaming it.
  Result<WriteStats> write(const std::string& path);
  // The same over the archive whose lock the caller already holds.
  Result<WriteStats> write(const WriterLock& held);

 private:
  Result<WriteStats> write_to(const std::string& path, int like = -1);
  struct MMAR_LOCAL Impl;  // internal: not exported
  std::unique_ptr<Impl> impl_;
};

// The checksum the writer records for a member's bytes (XXH3-64, seed 0).
MMAR_API uint64_t member_checksum(std::span<const std::byte> bytes);

// Normalise an archive member name: strips leading "/" and "./", collapses
// "//", refuses "..", empty names and NUL. Returns the error message if bad.
MMAR_API Result<std::string> normalize_member_name(std::string_view name);

// The one rule for stored member names, used by every path that writes or
// reads one (Writer, ArchiveUpdater, the writable mount, the reader):
// nullptr if `name` is valid -- relative, '/'-separated, no empty, "." or
// ".." components, no NUL, at most 4096 bytes -- otherwise a short
// description of the problem.
MMAR_API const char* name_problem(std::string_view name);

// Rewrite an mmar archive with only its current generation's data (what
// updates in place left behind is dropped), atomically, as a generation-1
// archive. options.alignment 0 keeps the archive's alignment.
MMAR_API Result<WriteStats> compact_archive(const std::string& path, WriteOptions options = {.alignment = 0});

}  // namespace mmar
