// SPDX-License-Identifier: BSD-2-Clause
#include "archive/names.h"

namespace mmar {

const char* name_problem(std::string_view name) {
  if (name.empty()) return "empty name";
  if (name.size() > kMaxNameLength) return "name longer than 4096 bytes";
  if (name.front() == '/') return "absolute name";
  if (name.back() == '/') return "name ends with '/'";
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view part = name.substr(start, end - start);
    if (part.empty()) return "empty path component";
    if (part == ".") return "'.' path component";
    if (part == "..") return "'..' path component";
    if (part.find('\0') != std::string_view::npos) return "NUL byte in name";
    start = end + 1;
  }
  return nullptr;
}

Result<std::string> normalize_member_name(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  size_t i = 0;
  while (i < name.size()) {
    size_t end = name.find('/', i);
    if (end == std::string_view::npos) end = name.size();
    std::string_view part = name.substr(i, end - i);
    i = end + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      return Error(Errc::invalid_argument, "member name '" + std::string(name) + "' contains '..'");
    }
    if (!out.empty()) out.push_back('/');
    out.append(part);
  }
  if (const char* why = name_problem(out)) {
    return Error(Errc::invalid_argument, "bad member name '" + std::string(name) + "': " + why);
  }
  return out;
}

}  // namespace mmar
