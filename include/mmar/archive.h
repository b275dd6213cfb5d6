// mmar archives: open, look up, read, iterate; and write.
//
// An Archive is a cheap-to-copy handle (shared ownership of the mapping and
// the decompression cache). Member names and uncompressed member bytes are
// views into the mapping and stay valid while any copy of the Archive, or any
// Bytes returned by it, is alive. Archives are safe to use from several
// threads at once.
#pragma once

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

namespace mmar {

enum class Codec : uint8_t { none = 0, zstd = 1, xz = 2 };

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
std::optional<Format> archive_format_of(std::span<const std::byte> head);

const char* codec_name(Codec codec);
const char* kind_name(Kind kind);
const char* format_name(Format format);
std::optional<Codec> parse_codec(std::string_view name);

// One member's metadata, decoded and validated. `name` views the archive.
struct Member {
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

  bool is_dir() const;
  bool is_symlink() const;
  bool is_regular() const;
};

struct OpenOptions {
  bool force_pread = false;                      // never mmap; see SourceOptions
  bool verify_index = false;                     // hash the whole index at open (verify() always does)
  uint64_t cache_bytes = 64u << 20;              // bound on decompressed members kept in memory
  uint64_t max_member_size = uint64_t{1} << 40;  // refuse to inflate larger members
  // read() checks each member's XXH3 before it returns the bytes: a raw
  // member the first time it is read (the outcome is remembered for the
  // Archive's lifetime, so later reads cost nothing), a compressed one as it
  // is inflated. false is the escape hatch for getting bytes out of a
  // damaged archive (mmar cat/extract --no-verify); verify() always checks.
  bool verify_checksums = true;
};

// Problems found by Archive::verify(), one per bad member or structure.
struct VerifyProblem {
  std::optional<uint32_t> member;  // nullopt: the archive structure itself
  std::string message;
};

class Archive {
 public:
  static Result<Archive> open(const std::string& path, const OpenOptions& options = {});
  static Result<Archive> open(Source source, const OpenOptions& options = {});

  Format format() const;
  const Source& source() const;
  const std::string& name() const;  // the path or the name given to the Source
  uint32_t size() const;            // number of members
  uint64_t alignment() const;       // page alignment of raw members (mmar), else 1
  uint64_t generation() const;      // superblock generation (mmar), else 0

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

  // Raw iteration in name order; stops at the first error or when fn fails.
  Result<void> for_each(const std::function<Result<void>(const Member&)>& fn) const;
  // Typed iteration: only members of one kind.
  Result<void> for_each(Kind kind, const std::function<Result<void>(const Member&)>& fn) const;

  // Check everything: superblocks, index checksum, name order, every entry,
  // every member's size and checksum. Returns the list of problems (empty
  // when the archive is sound); an Error only if it cannot be read at all.
  Result<std::vector<VerifyProblem>> verify() const;

  struct Impl;

 private:
  explicit Archive(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

// ---------------------------------------------------------------------------
// Updating in place (the writable mount): a new generation appended to an
// existing mmar archive (see docs/FORMAT.md, "Updating in place").

// One member of the new generation.
struct UpdateMember {
  std::string name;
  uint32_t mode = 0100644;  // S_IFREG/S_IFDIR/S_IFLNK | permissions
  int64_t mtime_ns = 0;
  std::optional<uint32_t> keep;  // reuse member `keep`'s stored bytes (of `current`)
  int data_fd = -1;              // else, regular files: the new bytes, [0, size) of this fd
  uint64_t size = 0;
  std::string symlink_target;  // symlinks without `keep`
};

// Append the new data and a new index to `path` (whose current generation
// `current` is), then switch the superblock slot not in use to it, with
// fsyncs in between: a crash at any moment leaves the old or the new
// generation readable. Fails if the archive changed since `current` opened.
Result<void> commit_generation(const std::string& path, const Archive& current, std::vector<UpdateMember> members);

// ---------------------------------------------------------------------------
// Writing

// What WriteOptions::link_for is asked about: a member whose bytes are BTF,
// or an ELF object with a .BTF section.
struct LinkQuery {
  std::string_view member;           // its name in the archive
  std::string_view path;             // the file it comes from ("" for buffers)
  std::span<const std::byte> bytes;  // its bytes, for buffers (empty for files)
  Kind kind = Kind::data;
  bool has_btf = false;
};

struct WriteOptions {
  Format format = Format::mmar;  // mmar or ctf
  Codec codec = Codec::zstd;
  int level = 0;              // 0: the codec's default (zstd 3, xz 6)
  uint64_t threshold = 4096;  // compress members larger than this; 0 = never
  uint32_t alignment = 4096;  // 4096, 16384 or 65536
  unsigned threads = 0;       // 0: one per online CPU
  // Called from the writing thread with bytes of member data written so far.
  std::function<void(uint64_t done, uint64_t total)> progress;
  // Called (from worker threads, concurrently) for BTF-bearing members
  // without an explicit link; returning a member name links the member to it
  // (how split BTF names its base). Must be thread-safe.
  std::function<std::optional<std::string>(const LinkQuery&)> link_for;
};

struct WriteStats {
  uint32_t members = 0;
  uint64_t input_bytes = 0;
  uint64_t archive_bytes = 0;
  uint32_t compressed_members = 0;
};

// Collects members, then writes them in one pass. Input files are only
// opened while writing; memory stays bounded by a window of members in
// flight, independent of the total input size. Output is deterministic: the
// same inputs give the same bytes, whatever the number of threads.
class Writer {
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
  Result<void> add_directory(std::string name, uint32_t mode = 040755, int64_t mtime_ns = 0);
  Result<void> add_symlink(std::string name, std::string target, int64_t mtime_ns = 0);
  // Record that member `name` relates to member `target` (split BTF -> base).
  Result<void> set_link(const std::string& name, const std::string& target);

  size_t pending() const;

  // Write atomically: a temporary file beside `path`, fsync, rename, fsync
  // of the directory. On failure the temporary is removed and any existing
  // file at `path` is untouched.
  Result<WriteStats> write(const std::string& path);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The checksum the writer records for a member's bytes (XXH3-64, seed 0).
uint64_t member_checksum(std::span<const std::byte> bytes);

// Normalise an archive member name: strips leading "/" and "./", collapses
// "//", refuses "..", empty names and NUL. Returns the error message if bad.
Result<std::string> normalize_member_name(std::string_view name);

// Rewrite an mmar archive with only its current generation's data (what
// updates in place left behind is dropped), atomically, as a generation-1
// archive. options.alignment 0 keeps the archive's alignment.
Result<WriteStats> compact_archive(const std::string& path, WriteOptions options = {.alignment = 0});

}  // namespace mmar
