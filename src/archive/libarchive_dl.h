// SPDX-License-Identifier: BSD-2-Clause
// libarchive, loaded on first use (dlopen) instead of linked: the bridge to
// tar, zip, cpio and ISO (src/archive/convert.cpp) is the only user, and
// linking it made every mmar process load libarchive and, through it,
// libxml2 and ICU (~2 ms of startup, measured in bench/RESULTS.md §5: a
// tenth of a BTF dump). The types and constants come from the headers as
// usual; each function used is a pointer filled by dlsym, and the names
// are redirected to them by the macros below, so convert.cpp reads as
// plain libarchive code. Call libarchive_load() (and check it) before the
// first use: it fails, as a value, when the library is not installed.
//
// The list is every libarchive function convert.cpp calls; a call to one
// not listed fails at link time (the library is not linked), so the list
// cannot silently fall behind.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include "mmar/result.h"

#define MMAR_LIBARCHIVE_FUNCTIONS(X) \
  X(archive_entry_acl_add_entry) \
  X(archive_entry_acl_next) \
  X(archive_entry_acl_reset) \
  X(archive_entry_clear) \
  X(archive_entry_filetype) \
  X(archive_entry_free) \
  X(archive_entry_gid) \
  X(archive_entry_gname) \
  X(archive_entry_hardlink) \
  X(archive_entry_hardlink_utf8) \
  X(archive_entry_mtime) \
  X(archive_entry_mtime_is_set) \
  X(archive_entry_mtime_nsec) \
  X(archive_entry_new) \
  X(archive_entry_pathname) \
  X(archive_entry_pathname_utf8) \
  X(archive_entry_perm) \
  X(archive_entry_rdevmajor) \
  X(archive_entry_rdevminor) \
  X(archive_entry_set_filetype) \
  X(archive_entry_set_gid) \
  X(archive_entry_set_gname) \
  X(archive_entry_set_hardlink) \
  X(archive_entry_set_mtime) \
  X(archive_entry_set_pathname) \
  X(archive_entry_set_pathname_utf8) \
  X(archive_entry_set_perm) \
  X(archive_entry_set_rdevmajor) \
  X(archive_entry_set_rdevminor) \
  X(archive_entry_set_size) \
  X(archive_entry_set_symlink) \
  X(archive_entry_set_symlink_utf8) \
  X(archive_entry_set_uid) \
  X(archive_entry_set_uname) \
  X(archive_entry_size) \
  X(archive_entry_size_is_set) \
  X(archive_entry_sparse_count) \
  X(archive_entry_symlink) \
  X(archive_entry_symlink_utf8) \
  X(archive_entry_uid) \
  X(archive_entry_uname) \
  X(archive_entry_xattr_add_entry) \
  X(archive_entry_xattr_next) \
  X(archive_entry_xattr_reset) \
  X(archive_error_string) \
  X(archive_read_data_block) \
  X(archive_read_data_skip) \
  X(archive_read_free) \
  X(archive_read_new) \
  X(archive_read_next_header) \
  X(archive_read_open_fd) \
  X(archive_read_open_filename) \
  X(archive_read_support_filter_all) \
  X(archive_read_support_format_7zip) \
  X(archive_read_support_format_ar) \
  X(archive_read_support_format_cab) \
  X(archive_read_support_format_cpio) \
  X(archive_read_support_format_iso9660) \
  X(archive_read_support_format_lha) \
  X(archive_read_support_format_rar) \
  X(archive_read_support_format_rar5) \
  X(archive_read_support_format_tar) \
  X(archive_read_support_format_xar) \
  X(archive_read_support_format_zip) \
  X(archive_write_add_filter_bzip2) \
  X(archive_write_add_filter_gzip) \
  X(archive_write_add_filter_none) \
  X(archive_write_add_filter_xz) \
  X(archive_write_add_filter_zstd) \
  X(archive_write_close) \
  X(archive_write_data) \
  X(archive_write_free) \
  X(archive_write_header) \
  X(archive_write_new) \
  X(archive_write_open_fd) \
  X(archive_write_set_format_cpio_newc) \
  X(archive_write_set_format_gnutar) \
  X(archive_write_set_format_option) \
  X(archive_write_set_format_pax) \
  X(archive_write_set_format_ustar) \
  X(archive_write_set_format_zip)

namespace mmar {

struct LibArchive {
#define MMAR_LA_MEMBER(name) decltype(&::name) name = nullptr;
  MMAR_LIBARCHIVE_FUNCTIONS(MMAR_LA_MEMBER)
#undef MMAR_LA_MEMBER
};

// The loaded library (set by a successful libarchive_load; never unloaded).
extern const LibArchive* g_libarchive;

// dlopen libarchive.so.13 and resolve every function, once (thread-safe).
// Errc::unsupported, naming the library and what needs it, when it is
// missing or lacks a function.
Result<void> libarchive_load();

}  // namespace mmar

#ifndef MMAR_LIBARCHIVE_NO_REDIRECT
#define archive_entry_acl_add_entry (::mmar::g_libarchive->archive_entry_acl_add_entry)
#define archive_entry_acl_next (::mmar::g_libarchive->archive_entry_acl_next)
#define archive_entry_acl_reset (::mmar::g_libarchive->archive_entry_acl_reset)
#define archive_entry_clear (::mmar::g_libarchive->archive_entry_clear)
#define archive_entry_filetype (::mmar::g_libarchive->archive_entry_filetype)
#define archive_entry_free (::mmar::g_libarchive->archive_entry_free)
#define archive_entry_gid (::mmar::g_libarchive->archive_entry_gid)
#define archive_entry_gname (::mmar::g_libarchive->archive_entry_gname)
#define archive_entry_hardlink (::mmar::g_libarchive->archive_entry_hardlink)
#define archive_entry_hardlink_utf8 (::mmar::g_libarchive->archive_entry_hardlink_utf8)
#define archive_entry_mtime (::mmar::g_libarchive->archive_entry_mtime)
#define archive_entry_mtime_is_set (::mmar::g_libarchive->archive_entry_mtime_is_set)
#define archive_entry_mtime_nsec (::mmar::g_libarchive->archive_entry_mtime_nsec)
#define archive_entry_new (::mmar::g_libarchive->archive_entry_new)
#define archive_entry_pathname (::mmar::g_libarchive->archive_entry_pathname)
#define archive_entry_pathname_utf8 (::mmar::g_libarchive->archive_entry_pathname_utf8)
#define archive_entry_perm (::mmar::g_libarchive->archive_entry_perm)
#define archive_entry_rdevmajor (::mmar::g_libarchive->archive_entry_rdevmajor)
#define archive_entry_rdevminor (::mmar::g_libarchive->archive_entry_rdevminor)
#define archive_entry_set_filetype (::mmar::g_libarchive->archive_entry_set_filetype)
#define archive_entry_set_gid (::mmar::g_libarchive->archive_entry_set_gid)
#define archive_entry_set_gname (::mmar::g_libarchive->archive_entry_set_gname)
#define archive_entry_set_hardlink (::mmar::g_libarchive->archive_entry_set_hardlink)
#define archive_entry_set_mtime (::mmar::g_libarchive->archive_entry_set_mtime)
#define archive_entry_set_pathname (::mmar::g_libarchive->archive_entry_set_pathname)
#define archive_entry_set_pathname_utf8 (::mmar::g_libarchive->archive_entry_set_pathname_utf8)
#define archive_entry_set_perm (::mmar::g_libarchive->archive_entry_set_perm)
#define archive_entry_set_rdevmajor (::mmar::g_libarchive->archive_entry_set_rdevmajor)
#define archive_entry_set_rdevminor (::mmar::g_libarchive->archive_entry_set_rdevminor)
#define archive_entry_set_size (::mmar::g_libarchive->archive_entry_set_size)
#define archive_entry_set_symlink (::mmar::g_libarchive->archive_entry_set_symlink)
#define archive_entry_set_symlink_utf8 (::mmar::g_libarchive->archive_entry_set_symlink_utf8)
#define archive_entry_set_uid (::mmar::g_libarchive->archive_entry_set_uid)
#define archive_entry_set_uname (::mmar::g_libarchive->archive_entry_set_uname)
#define archive_entry_size (::mmar::g_libarchive->archive_entry_size)
#define archive_entry_size_is_set (::mmar::g_libarchive->archive_entry_size_is_set)
#define archive_entry_sparse_count (::mmar::g_libarchive->archive_entry_sparse_count)
#define archive_entry_symlink (::mmar::g_libarchive->archive_entry_symlink)
#define archive_entry_symlink_utf8 (::mmar::g_libarchive->archive_entry_symlink_utf8)
#define archive_entry_uid (::mmar::g_libarchive->archive_entry_uid)
#define archive_entry_uname (::mmar::g_libarchive->archive_entry_uname)
#define archive_entry_xattr_add_entry (::mmar::g_libarchive->archive_entry_xattr_add_entry)
#define archive_entry_xattr_next (::mmar::g_libarchive->archive_entry_xattr_next)
#define archive_entry_xattr_reset (::mmar::g_libarchive->archive_entry_xattr_reset)
#define archive_error_string (::mmar::g_libarchive->archive_error_string)
#define archive_read_data_block (::mmar::g_libarchive->archive_read_data_block)
#define archive_read_data_skip (::mmar::g_libarchive->archive_read_data_skip)
#define archive_read_free (::mmar::g_libarchive->archive_read_free)
#define archive_read_new (::mmar::g_libarchive->archive_read_new)
#define archive_read_next_header (::mmar::g_libarchive->archive_read_next_header)
#define archive_read_open_fd (::mmar::g_libarchive->archive_read_open_fd)
#define archive_read_open_filename (::mmar::g_libarchive->archive_read_open_filename)
#define archive_read_support_filter_all (::mmar::g_libarchive->archive_read_support_filter_all)
#define archive_read_support_format_7zip (::mmar::g_libarchive->archive_read_support_format_7zip)
#define archive_read_support_format_ar (::mmar::g_libarchive->archive_read_support_format_ar)
#define archive_read_support_format_cab (::mmar::g_libarchive->archive_read_support_format_cab)
#define archive_read_support_format_cpio (::mmar::g_libarchive->archive_read_support_format_cpio)
#define archive_read_support_format_iso9660 (::mmar::g_libarchive->archive_read_support_format_iso9660)
#define archive_read_support_format_lha (::mmar::g_libarchive->archive_read_support_format_lha)
#define archive_read_support_format_rar (::mmar::g_libarchive->archive_read_support_format_rar)
#define archive_read_support_format_rar5 (::mmar::g_libarchive->archive_read_support_format_rar5)
#define archive_read_support_format_tar (::mmar::g_libarchive->archive_read_support_format_tar)
#define archive_read_support_format_xar (::mmar::g_libarchive->archive_read_support_format_xar)
#define archive_read_support_format_zip (::mmar::g_libarchive->archive_read_support_format_zip)
#define archive_write_add_filter_bzip2 (::mmar::g_libarchive->archive_write_add_filter_bzip2)
#define archive_write_add_filter_gzip (::mmar::g_libarchive->archive_write_add_filter_gzip)
#define archive_write_add_filter_none (::mmar::g_libarchive->archive_write_add_filter_none)
#define archive_write_add_filter_xz (::mmar::g_libarchive->archive_write_add_filter_xz)
#define archive_write_add_filter_zstd (::mmar::g_libarchive->archive_write_add_filter_zstd)
#define archive_write_close (::mmar::g_libarchive->archive_write_close)
#define archive_write_data (::mmar::g_libarchive->archive_write_data)
#define archive_write_free (::mmar::g_libarchive->archive_write_free)
#define archive_write_header (::mmar::g_libarchive->archive_write_header)
#define archive_write_new (::mmar::g_libarchive->archive_write_new)
#define archive_write_open_fd (::mmar::g_libarchive->archive_write_open_fd)
#define archive_write_set_format_cpio_newc (::mmar::g_libarchive->archive_write_set_format_cpio_newc)
#define archive_write_set_format_gnutar (::mmar::g_libarchive->archive_write_set_format_gnutar)
#define archive_write_set_format_option (::mmar::g_libarchive->archive_write_set_format_option)
#define archive_write_set_format_pax (::mmar::g_libarchive->archive_write_set_format_pax)
#define archive_write_set_format_ustar (::mmar::g_libarchive->archive_write_set_format_ustar)
#define archive_write_set_format_zip (::mmar::g_libarchive->archive_write_set_format_zip)
#endif
