// SPDX-License-Identifier: BSD-2-Clause
#include "archive/attrs.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "archive/format.h"
#include "support/endian.h"

namespace mmar::attrs {

namespace {

constexpr size_t kMaxName = 255;
constexpr size_t kMaxXattrValue = 65536;

void put_field(std::string& out, uint8_t tag, std::string_view payload) {
  out.push_back(static_cast<char>(tag));
  const uint32_t len = static_cast<uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  out.append(payload);
}

std::string le32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

bool is_device(uint32_t mode) { return (mode & S_IFMT) == S_IFCHR || (mode & S_IFMT) == S_IFBLK; }

}  // namespace

Result<std::string> encode(const Attributes& a) {
  if (a.empty()) return std::string();
  std::string body;
  if (a.has_owner || a.uid != 0 || a.gid != 0) put_field(body, format::kAttrOwner, le32(a.uid) + le32(a.gid));
  auto name_ok = [](const std::string& n) {
    return !n.empty() && n.size() <= kMaxName && n.find('\0') == std::string::npos;
  };
  if (!a.uname.empty()) {
    if (!name_ok(a.uname)) return Error(Errc::invalid_argument, "bad owner name '" + a.uname + "'");
    put_field(body, format::kAttrUname, a.uname);
  }
  if (!a.gname.empty()) {
    if (!name_ok(a.gname)) return Error(Errc::invalid_argument, "bad group name '" + a.gname + "'");
    put_field(body, format::kAttrGname, a.gname);
  }
  if (a.rdev_major != 0 || a.rdev_minor != 0) put_field(body, format::kAttrDevice, le32(a.rdev_major) + le32(a.rdev_minor));
  if (a.link_id != 0) put_field(body, format::kAttrLinkId, le32(static_cast<uint32_t>(a.link_id)) +
                                                               le32(static_cast<uint32_t>(a.link_id >> 32)));
  auto sorted = a.xattrs;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    const auto& [n, v] = sorted[i];
    if (!name_ok(n)) return Error(Errc::invalid_argument, "bad extended attribute name '" + n + "'");
    if (i > 0 && sorted[i - 1].first == n) {
      return Error(Errc::invalid_argument, "extended attribute '" + n + "' given twice");
    }
    if (v.size() > kMaxXattrValue) return Error(Errc::invalid_argument, "extended attribute '" + n + "' too large");
    put_field(body, format::kAttrXattr, n + std::string(1, '\0') + v);
  }
  if (body.size() > format::kMaxAttrSize) return Error(Errc::limit, "attributes larger than 1 MiB");
  return le32(static_cast<uint32_t>(body.size())) + body;
}

Result<Decoded> parse(std::span<const std::byte> bytes, uint32_t mode) {
  auto bad = [](const std::string& what) { return Error(Errc::malformed, "attribute record: " + what); };
  if (bytes.size() < 4) return bad("truncated size");
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const uint32_t size = read_int<uint32_t>(p, true);
  if (size == 0) return bad("empty");
  if (size > format::kMaxAttrSize) return bad("size " + std::to_string(size) + " over the 1 MiB limit");
  if (size > bytes.size() - 4) return bad("runs past the name table");
  Decoded d;
  d.record = bytes.subspan(0, 4 + size);
  size_t at = 4;
  const size_t end = 4 + size;
  int last_tag = 0;
  std::string_view last_xattr;
  bool has_device = false;
  while (at < end) {
    if (end - at < 5) return bad("truncated field at +" + std::to_string(at));
    const uint8_t tag = p[at];
    const uint32_t len = read_int<uint32_t>(p + at + 1, true);
    at += 5;
    if (len > end - at) return bad("field " + std::to_string(tag) + " runs past the record");
    const std::string_view v(reinterpret_cast<const char*>(p + at), len);
    at += len;
    if (tag < last_tag || (tag == last_tag && tag != format::kAttrXattr)) {
      return bad("field " + std::to_string(tag) + " out of order");
    }
    last_tag = tag;
    auto name_ok = [](std::string_view n) {
      return !n.empty() && n.size() <= kMaxName && n.find('\0') == std::string_view::npos;
    };
    switch (tag) {
      case format::kAttrOwner:
        if (len != 8) return bad("owner field of " + std::to_string(len) + " bytes");
        d.has_owner = true;
        d.uid = read_int<uint32_t>(p + at - 8, true);
        d.gid = read_int<uint32_t>(p + at - 4, true);
        break;
      case format::kAttrUname:
      case format::kAttrGname:
        if (!name_ok(v)) return bad(std::string(tag == format::kAttrUname ? "owner" : "group") + " name invalid");
        (tag == format::kAttrUname ? d.uname : d.gname) = v;
        break;
      case format::kAttrDevice:
        if (len != 8) return bad("device field of " + std::to_string(len) + " bytes");
        if (!is_device(mode)) return bad("a device number on a member that is no device");
        d.rdev_major = read_int<uint32_t>(p + at - 8, true);
        d.rdev_minor = read_int<uint32_t>(p + at - 4, true);
        has_device = true;
        break;
      case format::kAttrLinkId:
        if (len != 8) return bad("link id field of " + std::to_string(len) + " bytes");
        d.link_id = read_int<uint64_t>(p + at - 8, true);
        if (d.link_id == 0) return bad("link id 0");
        if ((mode & S_IFMT) == S_IFDIR) return bad("a hard link id on a directory");
        break;
      case format::kAttrXattr: {
        const size_t nul = v.find('\0');
        if (nul == std::string_view::npos) return bad("extended attribute without a NUL after its name");
        const std::string_view n = v.substr(0, nul);
        if (!name_ok(n)) return bad("extended attribute name invalid");
        if (v.size() - nul - 1 > kMaxXattrValue) return bad("extended attribute value over 64 KiB");
        if (!last_xattr.empty() && !(last_xattr < n)) return bad("extended attributes out of order or repeated");
        last_xattr = n;
        break;
      }
      default:
        return bad("unknown field " + std::to_string(tag));
    }
  }
  (void)has_device;
  return d;
}

Attributes to_attributes(const Decoded& d) {
  Attributes a;
  a.has_owner = d.has_owner;
  a.uid = d.uid;
  a.gid = d.gid;
  a.uname = std::string(d.uname);
  a.gname = std::string(d.gname);
  a.rdev_major = d.rdev_major;
  a.rdev_minor = d.rdev_minor;
  a.link_id = d.link_id;
  const auto* p = reinterpret_cast<const unsigned char*>(d.record.data());
  for (size_t at = 4; at < d.record.size();) {
    const uint8_t tag = p[at];
    const uint32_t len = read_int<uint32_t>(p + at + 1, true);
    at += 5;
    if (tag == format::kAttrXattr) {
      const std::string_view v(reinterpret_cast<const char*>(p + at), len);
      const size_t nul = v.find('\0');
      a.xattrs.emplace_back(std::string(v.substr(0, nul)), std::string(v.substr(nul + 1)));
    }
    at += len;
  }
  return a;
}

}  // namespace mmar::attrs
