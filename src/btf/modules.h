// SPDX-License-Identifier: BSD-2-Clause
// Kernel module BTF files named on a command line (btf_pack, ctf_from_btf).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "mmar/result.h"

namespace mmar {

// Files as given (member "modules/LEAF"), directories searched recursively
// (member "modules/RELATIVE/PATH"); (member name, path) pairs.
Result<std::vector<std::pair<std::string, std::string>>> btf_module_files(const std::vector<std::string>& args);

}  // namespace mmar
