#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Install mmar from a build tree into a scratch prefix and build the example
# consumer against it the ways a project outside the tree would: CMake's
# find_package (shared and static) and pkg-config (shared and static). Each
# build runs. Also checks what the install holds: SONAME, a shared library
# exporting only the public API, headers that compile alone without mmar's
# private include paths.
#   examples/check.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$prefix/lib
[ -d "$libdir" ] || libdir=$(dirname "$(find "$prefix" -name 'libmmar.so.0' | head -n1)")
fail() { echo "check: $*" >&2; exit 1; }

for f in "$prefix/bin/mmar" "$libdir/libmmar.a" "$libdir/libmmar.so.0" "$libdir/libmmar.so" \
         "$libdir/pkgconfig/mmar.pc" "$libdir/cmake/mmar/mmarConfig.cmake" \
         "$libdir/cmake/mmar/mmarConfigVersion.cmake" "$prefix/include/mmar/archive.h" \
         "$prefix/include/mmar/btf.h" "$prefix/share/doc/mmar/LICENSE"; do
  [ -e "$f" ] || fail "not installed: ${f#"$prefix"/}"
done
"$prefix/bin/mmar" --version >/dev/null || fail "the installed mmar does not run"
# Man pages (one per verb, from --help) and bash completion.
command -v help2man >/dev/null || echo "check: no help2man: man pages not built, not checked"
command -v help2man >/dev/null &&
for verb in "" $("$prefix/bin/mmar" --help | awk '/^Verbs:/{on=1; next} on && /^  [a-z]/{print $1}'); do
  page=$prefix/share/man/man1/mmar${verb:+-$verb}.1
  [ -s "$page" ] || fail "no man page ${page#"$prefix"/}"
  if [ -n "$verb" ]; then
    grep -q -- "^mmar-$verb " "$page" && grep -q -- "$verb" "$page" || fail "${page#"$prefix"/} does not describe mmar $verb"
  fi
done
completion=$prefix/share/bash-completion/completions/mmar
[ -s "$completion" ] || fail "no bash completion"
got=$(PATH=$prefix/bin:$PATH bash -c 'source "$1"; COMP_WORDS=(mmar create --exc); COMP_CWORD=2; _mmar; echo "${COMPREPLY[*]}"
  COMP_WORDS=(mmar ver); COMP_CWORD=1; _mmar; echo "${COMPREPLY[*]}"' _ "$completion")
[ "$got" = "$(printf -- '--exclude --exclude-from\nverify')" ] || fail "bash completion offers '$got'"
echo "check: man pages and bash completion installed"
soname=$(objdump -p "$libdir/libmmar.so.0" | awk '$1 == "SONAME" {print $2}')
[ "$soname" = libmmar.so.0 ] || fail "SONAME is '$soname', not libmmar.so.0"

# Only the public API is exported: every defined dynamic symbol is in
# namespace mmar (or the C interface mmar_*), and none belongs to the
# internal namespaces of src/ (elf::, format::, fence::, frames::, ...).
# Weak instantiations of the standard library's templates (std::, default
# visibility by the library's own pragma) are not ours and are left out.
syms=$(nm -D --defined-only "$libdir/libmmar.so.0" | awk '{print $3}' \
       | grep -Ev '^_Z(TI|TS|TV|TH|GV|Z)*N?K?St' | c++filt)
[ -n "$syms" ] || fail "libmmar.so.0 exports nothing"
bad=$(echo "$syms" | grep -Ev '^(mmar::|mmar_|(typeinfo|typeinfo name|vtable|guard variable) for mmar::)' \
      | grep -Ev '^(_init|_fini|_edata|_end|__bss_start)$' || true)
[ -z "$bad" ] || fail "libmmar.so.0 exports non-API symbols: $(echo "$bad" | head -n5 | tr '\n' ' ')"
internal=$(echo "$syms" | grep -E 'mmar::(elf|format|fence|frames|ctfa|btf_index|codec|names|detail)::|mmar::(detect_kind|checked_add)' || true)
[ -z "$internal" ] || fail "libmmar.so.0 exports internals: $(echo "$internal" | head -n5 | tr '\n' ' ')"
echo "check: libmmar.so.0 exports $(echo "$syms" | wc -l) symbols, all public API"

# Consumers get C++20 and none of mmar's own warning or sanitizer flags.
targets=$libdir/cmake/mmar/mmarTargets.cmake
grep -q 'INTERFACE_COMPILE_FEATURES "cxx_std_20"' "$targets" || fail "mmar::mmar does not ask for C++20"
if grep -Eq -- '-W|sanitize|mmar_flags|/work|'"$(dirname "$here")" "$targets"; then
  fail "the exported targets carry build-tree flags or paths: $(grep -E -- '-W|sanitize|mmar_flags' "$targets" | head -n3)"
fi

# Each public header compiles on its own with only the installed include dir.
for h in "$prefix"/include/mmar/*.h; do
  echo "#include <mmar/$(basename "$h")>" > "$work/h.cpp"
  g++ -std=c++20 -fsyntax-only -Wall -Wextra -Werror -I"$prefix/include" "$work/h.cpp" || fail "$(basename "$h") does not compile alone"
done

run() { # NAME BINARY
  mkdir -p "$work/run-$1"
  "$2" "$work/run-$1" || fail "$1: the consumer failed"
  echo "check: $1: ok"
}

# CMake, shared and static.
for kind in shared static; do
  static=OFF
  [ "$kind" = static ] && static=ON
  cmake -S "$here/consumer" -B "$work/cmake-$kind" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" -DMMAR_STATIC=$static >/dev/null
  cmake --build "$work/cmake-$kind" >/dev/null
  run "find_package ($kind)" "$work/cmake-$kind/consumer"
done
# (ldd's output is read whole before it is searched: `ldd | grep -q` under
# pipefail fails when grep stops reading first and ldd gets SIGPIPE.)
deps=$(ldd "$work/cmake-shared/consumer")
grep -q "libmmar.so.0 => $libdir" <<<"$deps" || fail "the CMake consumer does not use the installed libmmar.so.0: $deps"
if grep -q libmmar <<<"$(ldd "$work/cmake-static/consumer")"; then fail "the static consumer links libmmar.so"; fi

# The filesystem component, when built: libmmar_fs.so.0 over libmmar.so.0
# (its own SONAME, no copy of the core inside, only its API exported) and
# libmmar_fs.a over libmmar.a; a program using it has one libmmar.
if [ -e "$libdir/libmmar_fs.so.0" ]; then
  [ "$(objdump -p "$libdir/libmmar_fs.so.0" | awk '$1 == "SONAME" {print $2}')" = libmmar_fs.so.0 ] ||
    fail "libmmar_fs.so.0 has the wrong SONAME"
  grep -q 'NEEDED *libmmar.so.0' <<<"$(objdump -p "$libdir/libmmar_fs.so.0")" || fail "libmmar_fs.so.0 does not use libmmar.so.0"
  fs_syms=$(nm -D --defined-only "$libdir/libmmar_fs.so.0" | awk '{print $3}' | grep -Ev '^_Z(TI|TS|TV|TH|GV|Z)*N?K?St' |
            c++filt | grep -Ev '^(_init|_fini|_edata|_end|__bss_start)$')
  bad=$(echo "$fs_syms" | grep -Ev '^((typeinfo|typeinfo name|vtable) for )?mmar::fs::' || true)
  [ -z "$bad" ] || fail "libmmar_fs.so.0 exports what is not mmar::fs API: $(echo "$bad" | head -n3 | tr '\n' ' ')"
  for kind in shared static; do
    [ -x "$work/cmake-$kind/fs_consumer" ] || fail "fs_consumer ($kind) not built"
    run "mmar::fs ($kind)" "$work/cmake-$kind/fs_consumer"
  done
  [ "$(ldd "$work/cmake-shared/fs_consumer" | grep -c 'libmmar')" = 2 ] || fail "the fs consumer does not link libmmar_fs.so.0 and libmmar.so.0 once each"
  if grep -q libmmar <<<"$(ldd "$work/cmake-static/fs_consumer")"; then fail "the static fs consumer links a shared libmmar"; fi
fi

# pkg-config, shared and static; the .pc is relocatable: use it moved.
mv "$prefix" "$work/moved"
prefix=$work/moved
libdir=$prefix/${libdir#"$work/prefix/"}
export PKG_CONFIG_PATH=$libdir/pkgconfig
[ "$(pkg-config --variable=prefix mmar)" -ef "$prefix" ] || fail "mmar.pc's prefix is not where it lies"
# shellcheck disable=SC2046
g++ -std=c++20 "$here/consumer/consumer.cpp" -o "$work/pc-shared" $(pkg-config --cflags --libs mmar) -Wl,-rpath,"$libdir"
run "pkg-config (shared)" "$work/pc-shared"
# shellcheck disable=SC2046
# libmmar.a with its dependencies' shared libraries: the modules mmar.pc
# requires privately, linked as those modules say (--static would want
# every static library below them, e.g. libarchive's libacl.a).
g++ -std=c++20 "$here/consumer/consumer.cpp" -o "$work/pc-static" $(pkg-config --cflags mmar) \
  "$libdir/libmmar.a" $(pkg-config --libs $(pkg-config --print-requires-private mmar)) -pthread
run "pkg-config (static)" "$work/pc-static"
