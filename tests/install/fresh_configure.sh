#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# A single configure of a fresh build directory (what CI does) must already
# generate the install rules of every subdirectory: the mmar command, its man
# pages and completion (tools/mmar) and the install.consumer test (tests).
# An option declared after the add_subdirectory that reads it is unset there
# on the first run and only takes effect on a second one. Configure only.
#   tests/install/fresh_configure.sh SOURCE_DIR CMAKE GENERATOR
set -euo pipefail
src=$1 cmake=$2 generator=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "fresh_configure: $*" >&2; exit 1; }
"$cmake" -S "$src" -B "$work/build" -G "$generator" -DMMAR_SANITIZE=OFF -DMMAR_SHARED=ON \
  >"$work/configure.log" 2>&1 || { cat "$work/configure.log" >&2; fail "configure failed"; }
grep -q 'file(INSTALL' "$work/build/tools/mmar/cmake_install.cmake" ||
  fail "one configure: tools/mmar installs nothing (MMAR_INSTALL read before it is declared?)"
grep -q 'install.consumer' "$work/build/tests/CTestTestfile.cmake" ||
  fail "one configure: the install.consumer test is not registered"
echo "fresh_configure: ok"
