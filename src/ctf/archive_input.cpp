// SPDX-License-Identifier: BSD-2-Clause
// What a CTF archive stores of one input (`mmar create --format ctf`): the
// dicts the input holds, and the data model it implies. The archive's
// readers (libctf's ctf_arc_open, `objdump --ctf`) expect dicts as members
// and one model for all of them.
#include "ctf/container.h"

namespace mmar::ctf_container {

Result<ArchiveInput> archive_input(std::span<const std::byte> bytes, const std::string& name) {
  ArchiveInput in;
  std::span<const std::byte> ctf = bytes;
  static constexpr char kElfMagic[4] = {'\x7f', 'E', 'L', 'F'};
  const bool elf = bytes.size() >= 4 && std::memcmp(bytes.data(), kElfMagic, 4) == 0;
  if (elf) {
    MMAR_ASSIGN(Elf e, Elf::parse(bytes, name));
    const ElfSection* sect = e.find(".ctf");
    if (sect == nullptr)
      return Error(Errc::not_found, name + ": an ELF object without a .ctf section (not built with -gctf?)");
    ctf = e.contents(bytes, *sect);
    if (ctf.empty()) return Error(Errc::not_found, name + ": the ELF object's .ctf section is empty");
    // The object's class, not its .ctf archive's ctfa_model: ld writes the
    // model of the libctf it runs on, whatever the target.
    in.model = e.is64 ? ctfa::kModelLP64 : ctfa::kModelILP32;
  }
  if (is_archive(ctf)) {
    uint64_t model = 0;
    MMAR_ASSIGN(in.dicts, archive_dicts(ctf, name, model));
    if (!elf) in.model = model;  // as stored: the writer checks it when it is the one that counts
    in.from_archive = true;
    return in;
  }
  in.dicts.push_back({"", ctf});
  return in;
}

}  // namespace mmar::ctf_container
