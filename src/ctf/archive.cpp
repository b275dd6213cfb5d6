// SPDX-License-Identifier: BSD-2-Clause
// Typed iteration: the CTF dicts an Archive holds, opened on demand with
// their parents (see CtfArchive in include/mmar/ctf.h).
//
// A dict lives in a scope, where its parent is looked up by name: the
// archive's own members (a libctf CTF archive; an mmar archive's dict
// members), or one container (the .ctf section of an ELF member, or the
// plain file). Containers are read once and kept; dicts are opened once
// and kept.
#include <map>
#include <mutex>

#include "ctf/dict_impl.h"

namespace mmar {

namespace {

constexpr int64_t kArchiveScope = -1;

struct Where {
  int64_t scope = kArchiveScope;  // kArchiveScope or a member index (the container's)
  std::string local;              // the dict's name in its scope
};

}  // namespace

struct CtfArchive::Impl {
  explicit Impl(Archive a) : archive(std::move(a)) {}
  Archive archive;
  CtfArchiveOptions options;
  std::mutex mu;  // guards the two caches
  std::map<int64_t, CtfContainer> containers;
  std::map<std::string, CtfDict, std::less<>> dicts;  // by full name

  std::string full_name(const Where& w) const {
    if (w.scope == kArchiveScope || archive.format() == Format::plain) return w.local;
    const CtfContainer& c = containers.at(w.scope);
    auto m = archive.at(static_cast<uint32_t>(w.scope));
    const std::string member = m.ok() ? std::string(m->name) : std::to_string(w.scope);
    return c.archive ? member + ":" + w.local : member;
  }

  // The container of member `index`; nullopt for an ELF without .ctf.
  Result<const CtfContainer*> container(int64_t index) {
    if (auto it = containers.find(index); it != containers.end()) return &it->second;
    MMAR_ASSIGN(Member m, archive.at(static_cast<uint32_t>(index)));
    MMAR_ASSIGN(Bytes bytes, archive.read(m));
    const std::string name =
        archive.format() == Format::plain ? archive.name() : archive.name() + ":" + std::string(m.name);
    auto c = ctf_open_container(std::move(bytes), name);
    if (!c.ok()) {
      if (c.error().code() == Errc::not_found) return static_cast<const CtfContainer*>(nullptr);  // no .ctf
      return std::move(c).error();
    }
    return &containers.emplace(index, std::move(*c)).first->second;
  }

  // Where a dict of this full name would be; nullopt when nowhere.
  Result<std::optional<Where>> locate(std::string_view name) {
    switch (archive.format()) {
      case Format::ctf:
        if (archive.find(name).ok()) return std::optional<Where>(Where{kArchiveScope, std::string(name)});
        return std::optional<Where>();
      case Format::plain: {
        MMAR_ASSIGN(const CtfContainer* c, container(0));
        if (c == nullptr) return std::optional<Where>();
        for (const auto& d : c->dicts) {
          if (d.name == name) return std::optional<Where>(Where{0, d.name});
        }
        return std::optional<Where>();
      }
      case Format::mmar: break;
    }
    if (auto m = archive.find(name); m.ok()) {
      if (m->kind == Kind::ctf) return std::optional<Where>(Where{kArchiveScope, std::string(name)});
      if (m->kind == Kind::elf) {
        MMAR_ASSIGN(const CtfContainer* c, container(m->index));
        if (c != nullptr && !c->archive) return std::optional<Where>(Where{m->index, ".ctf"});
      }
    }
    const size_t colon = name.rfind(':');
    if (colon == std::string_view::npos) return std::optional<Where>();
    auto m = archive.find(name.substr(0, colon));
    if (!m.ok() || m->kind != Kind::elf) return std::optional<Where>();
    MMAR_ASSIGN(const CtfContainer* c, container(m->index));
    if (c == nullptr || !c->archive) return std::optional<Where>();
    const std::string_view local = name.substr(colon + 1);
    for (const auto& d : c->dicts) {
      if (d.name == local) return std::optional<Where>(Where{m->index, d.name});
    }
    return std::optional<Where>();
  }

  // The dict at `w`; `as_parent`: it is being imported, so it must not be a
  // child itself (its own parent is not looked up: no chains, no cycles).
  Result<CtfDict> get(const Where& w, bool as_parent) {
    const std::string full = full_name(w);
    if (auto it = dicts.find(full); it != dicts.end()) return it->second;
    CtfOpenOptions o;
    Bytes bytes;
    std::string display = archive.name() + ": " + full;
    if (w.scope == kArchiveScope) {
      MMAR_ASSIGN(Member m, archive.find(w.local));
      MMAR_ASSIGN(bytes, archive.read(m));
      o.pointer_size = archive.ctf_model() == 1 ? 4 : 8;
    } else {
      MMAR_ASSIGN(const CtfContainer* c, container(w.scope));
      if (c == nullptr) return Error(Errc::not_found, display + ": no .ctf section");
      for (const auto& d : c->dicts) {
        if (d.name == w.local) bytes = d.bytes;
      }
      o.symbols = c->symbols;
      o.pointer_size = c->pointer_size;
      if (archive.format() == Format::plain && !c->archive) display = archive.name();
    }
    MMAR_ASSIGN(CtfDict d, CtfDict::open(std::move(bytes), display, o));
    if (d.is_child()) {
      if (as_parent) {
        return Error(Errc::malformed, display + ": is a child dict (of '" + std::string(d.parent_name()) +
                                          "'), so it cannot be the parent of another");
      }
      const std::string pname = options.parent.empty() ? std::string(d.parent_name()) : options.parent;
      if (pname == w.local) return Error(Errc::malformed, display + ": names itself as its parent");
      Where pw{w.scope, pname};
      bool there = false;
      if (w.scope == kArchiveScope) {
        auto pm = archive.find(pname);
        there = pm.ok() && (archive.format() == Format::ctf || pm->kind == Kind::ctf);
      } else {
        MMAR_ASSIGN(const CtfContainer* c, container(w.scope));
        for (const auto& cd : c->dicts) there = there || cd.name == pname;
      }
      if (!there) {
        return Error(Errc::not_found, display + ": its parent dict '" + pname + "' is not in " +
                                          (w.scope == kArchiveScope ? "the archive" : "the same .ctf section"));
      }
      MMAR_ASSIGN(CtfDict parent, get(pw, true));
      MMAR_TRY(ctf_import_parent(d, parent));
    }
    if (options.validate) MMAR_TRY(d.validate());
    dicts.emplace(full, d);
    return d;
  }

  Result<std::vector<Where>> all() {
    std::vector<Where> out;
    switch (archive.format()) {
      case Format::ctf:
        for (uint32_t i = 0; i < archive.size(); ++i) {
          MMAR_ASSIGN(Member m, archive.at(i));
          out.push_back({kArchiveScope, std::string(m.name)});
        }
        return out;
      case Format::plain: {
        MMAR_ASSIGN(const CtfContainer* c, container(0));
        if (c != nullptr) {
          for (const auto& d : c->dicts) out.push_back({0, d.name});
        }
        return out;
      }
      case Format::mmar: break;
    }
    for (uint32_t i = 0; i < archive.size(); ++i) {
      MMAR_ASSIGN(Member m, archive.at(i));
      if (m.kind == Kind::ctf) {
        out.push_back({kArchiveScope, std::string(m.name)});
      } else if (m.kind == Kind::elf) {
        MMAR_ASSIGN(const CtfContainer* c, container(i));
        if (c == nullptr) continue;
        for (const auto& d : c->dicts) out.push_back({i, d.name});
      }
    }
    return out;
  }
};

Result<CtfArchive> CtfArchive::open(Archive archive, const CtfArchiveOptions& options) {
  auto impl = std::make_shared<Impl>(std::move(archive));
  impl->options = options;
  return CtfArchive(std::move(impl));
}

Result<CtfArchive> CtfArchive::open(const std::string& path, const CtfArchiveOptions& options) {
  MMAR_ASSIGN(Archive a, Archive::open(path));
  return open(std::move(a), options);
}

const Archive& CtfArchive::archive() const { return impl_->archive; }

Result<std::vector<std::string>> CtfArchive::names() const {
  std::lock_guard lock(impl_->mu);
  MMAR_ASSIGN(auto all, impl_->all());
  std::vector<std::string> out;
  out.reserve(all.size());
  for (const auto& w : all) out.push_back(impl_->full_name(w));
  return out;
}

Result<CtfDict> CtfArchive::dict(std::string_view name) const {
  std::lock_guard lock(impl_->mu);
  if (auto it = impl_->dicts.find(name); it != impl_->dicts.end()) return it->second;
  MMAR_ASSIGN(auto w, impl_->locate(name));
  if (!w) return Error(Errc::not_found, impl_->archive.name() + ": no CTF dict named '" + std::string(name) + "'");
  return impl_->get(*w, false);
}

Result<void> CtfArchive::for_each(
    const std::function<Result<void>(std::string_view name, const CtfDict& dict)>& fn) const {
  std::vector<std::pair<std::string, CtfDict>> todo;
  {
    std::lock_guard lock(impl_->mu);
    MMAR_ASSIGN(auto all, impl_->all());
    for (const auto& w : all) {
      MMAR_ASSIGN(CtfDict d, impl_->get(w, false));
      todo.emplace_back(impl_->full_name(w), std::move(d));
    }
  }
  for (const auto& [name, d] : todo) MMAR_TRY(fn(name, d));
  return success();
}

}  // namespace mmar
