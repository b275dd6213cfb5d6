// SPDX-License-Identifier: BSD-2-Clause
// One function per verb; each parses its own options (argv excludes the verb).
#pragma once

namespace mmar::cli {

int run_create(int argc, char** argv);
int run_list(int argc, char** argv);
int run_extract(int argc, char** argv);
int run_cat(int argc, char** argv);
int run_info(int argc, char** argv);
int run_verify(int argc, char** argv);
int run_btf(int argc, char** argv);
int run_ctf(int argc, char** argv);
int run_map(int argc, char** argv);
int run_exec(int argc, char** argv);
int run_mount(int argc, char** argv);
int run_umount(int argc, char** argv);
int run_compact(int argc, char** argv);
int run_export(int argc, char** argv);

}  // namespace mmar::cli
