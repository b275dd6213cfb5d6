// SPDX-License-Identifier: BSD-2-Clause
// mmar btf pack (include/mmar/btf.h, btf_pack): a kernel's BTF and its
// modules' split BTF in one archive, each with its stored index.
#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>

#include "mmar/archive.h"
#include "mmar/btf.h"

#include "btf/modules.h"

namespace mmar {

// Module files named by `args`: files as given (member "modules/LEAF"),
// directories searched recursively (member "modules/RELATIVE/PATH").
Result<std::vector<std::pair<std::string, std::string>>> btf_module_files(const std::vector<std::string>& args) {
  std::vector<std::pair<std::string, std::string>> modules;  // (member name, path)
  for (const std::string& arg : args) {
    struct stat st {};
    if (stat(arg.c_str(), &st) != 0) return sys_error(arg, errno);
    if (!S_ISDIR(st.st_mode)) {
      modules.emplace_back("modules/" + arg.substr(arg.find_last_of('/') + 1), arg);
      continue;
    }
    std::vector<std::string> stack = {""};
    while (!stack.empty()) {
      std::string rel = stack.back();
      stack.pop_back();
      std::string dir = rel.empty() ? arg : arg + "/" + rel;
      DIR* d = opendir(dir.c_str());
      if (d == nullptr) return sys_error(dir, errno);
      while (auto* e = readdir(d)) {
        std::string n = e->d_name;
        if (n == "." || n == "..") continue;
        std::string child = rel.empty() ? n : rel + "/" + n;
        struct stat cst {};
        if (stat((arg + "/" + child).c_str(), &cst) != 0) continue;
        if (S_ISDIR(cst.st_mode)) {
          stack.push_back(child);
        } else if (S_ISREG(cst.st_mode)) {
          modules.emplace_back("modules/" + child, arg + "/" + child);
        }
      }
      closedir(d);
    }
  }
  return modules;
}

Result<BtfPackStats> btf_pack(const std::string& out, const std::string& vmlinux, const std::vector<std::string>& args,
                              const BtfPackOptions& options) {
  WriteOptions o;
  o.codec = options.codec;
  MMAR_ASSIGN(Btf base, Btf::open(vmlinux, nullptr, BtfOpenOptions{.validate = true}));
  Writer w(o);
  // Each BTF member gets its stored index, NAME.mmidx (type offsets) and
  // NAME.mmnames (names by hash), bound to its bytes, so that opening it from
  // the archive needs no scan and one lookup is a few reads.
  auto add_with_index = [&](const std::string& name, const std::string& path, const Btf& btf) -> Result<void> {
    MMAR_TRY(w.add_path(name, path));
    MMAR_ASSIGN(Source src, Source::open(path));
    MMAR_ASSIGN(Bytes all, src.read(0, src.size()));
    MMAR_ASSIGN(auto index, btf.build_index(member_checksum(all.span())));
    MMAR_TRY(w.add_bytes(name + ".mmidx", std::move(index.offsets), 0644));
    MMAR_TRY(w.add_bytes(name + ".mmnames", std::move(index.names), 0644));
    MMAR_TRY(w.set_link(name + ".mmidx", name));
    return w.set_link(name + ".mmnames", name);
  };
  MMAR_TRY(add_with_index("vmlinux", vmlinux, base));
  MMAR_ASSIGN(auto modules, btf_module_files(args));
  size_t checked = 0;
  for (const auto& [name, path] : modules) {
    // Every module must be valid split BTF on this base before it is packed.
    MMAR_ASSIGN(Btf m, Btf::open(path, &base, BtfOpenOptions{.validate = true}));
    MMAR_TRY(add_with_index(name, path, m));
    MMAR_TRY(w.set_link(name, "vmlinux"));
    if (options.progress) options.progress(++checked, modules.size());
  }
  MMAR_ASSIGN(WriteStats stats, w.write(out));
  return BtfPackStats{modules.size(), stats.archive_bytes};
}

}  // namespace mmar
