// SPDX-License-Identifier: BSD-2-Clause
// Bridges to the archive formats of the rest of the world, through
// libarchive: read tar (plain, gzip, xz, zstd, bzip2, ...), zip, cpio, ISO
// 9660, 7-Zip ... into a Writer, and write an Archive's members out as tar,
// zip or cpio. Built only when libarchive was found (MMAR_LIBARCHIVE); else
// every call returns Errc::unsupported.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "mmar/archive.h"
#include "mmar/export.h"
#include "mmar/result.h"

namespace mmar {

struct ImportStats {
  uint64_t entries = 0;        // entries read from the input
  uint64_t files = 0;          // regular files
  uint64_t directories = 0;    // directories, those implied by deeper names included
  uint64_t symlinks = 0;
  uint64_t specials = 0;       // device nodes, FIFOs, sockets
  uint64_t hard_links = 0;     // names sharing an earlier file's data
  uint64_t replaced = 0;       // names given again later in the input (the last one wins, as tar -x)
  uint64_t bytes = 0;          // file contents read
  uint64_t excluded = 0;       // entries left out (WriteOptions::exclude)
};

// An input archive read to its end into a Writer. Entries are streamed: each
// regular file's contents are spooled to a file in a private directory
// created under `spool_parent` (the output's directory is a good choice:
// the space is needed there anyway), so memory does not grow with the input
// and a pipe works as input. The spool lives as long as this object: call
// Writer::write before destroying it.
//
// Names are normalised as the Writer does ("./a" is "a", a leading "/" is
// dropped); ".." is refused, naming the entry. Missing parent directories
// are added (mode 0755). Owners (numbers and names), extended attributes,
// device nodes, FIFOs and hard links are kept (docs/FORMAT.md "Attributes");
// every name of a hard-linked file carries the file's owner, mode, times and
// extended attributes, whichever of its entries the input recorded them on.
// Names the writer's WriteOptions::exclude matches (or below a directory it
// matches) are left out, as add_tree leaves them out.
class MMAR_API ArchiveImport {
 public:
  // `input`: a path, or "-" for standard input.
  static Result<ArchiveImport> read(const std::string& input, Writer& writer, const std::string& spool_parent);
  ~ArchiveImport();
  ArchiveImport(ArchiveImport&&) noexcept;
  ArchiveImport& operator=(ArchiveImport&&) noexcept;

  const ImportStats& stats() const;

  struct MMAR_LOCAL State;  // internal: not exported

 private:
  explicit ArchiveImport(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

struct ExportOptions {
  // "pax" (default; exact times, long names), "gnu", "ustar", "zip",
  // "cpio" (newc), or empty to choose from the output's extension
  // (".tar.zst", ".tgz", ".zip", ...; pax when none matches).
  std::string format;
  // A compression filter: "none", "gzip", "xz", "zstd", "bzip2"; empty:
  // from the extension (none for standard output).
  std::string filter;
};

struct ExportStats {
  uint64_t members = 0;
  uint64_t bytes = 0;  // member contents written
};

// Every member of `archive`, in name order, written to `output` ("-":
// standard output) as another archive format. Contents are streamed member
// by member (checked as read); a failure leaves no partial file at `output`
// (written beside it and renamed).
MMAR_API Result<ExportStats> export_archive(const Archive& archive, const std::string& output,
                                            const ExportOptions& options = {});

}  // namespace mmar
