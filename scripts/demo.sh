#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# The demo `./x demo` runs: pack a real default set (the running kernel's BTF
# when present, a handful of system executables and every shared library they
# need), then list it, look members up, verify it, extract it and compare;
# run a program straight from it, print the kernel's types as a C header,
# and mount it with FUSE to run a program and its libraries from there.
set -euo pipefail
MMAR=${1:?usage: demo.sh PATH-TO-mmar}
work=$(mktemp -d "${TMPDIR:-/tmp}/mmar-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT

files=()
[ -r /sys/kernel/btf/vmlinux ] && files+=(/sys/kernel/btf/vmlinux)
progs=()
for p in ls env tar bash sort cat python3 perl; do
  path=$(command -v "$p" 2>/dev/null) || continue
  progs+=("$(readlink -f "$path")")
done
files+=("${progs[@]}")
# Shared libraries, as ld.so resolves them (and ld.so itself).
while read -r lib; do files+=("$lib"); done < <(
  ldd "${progs[@]}" 2>/dev/null | awk '/=> \//{print $3} /^\t\/.*ld-linux/{print $1}' | xargs -r readlink -f | sort -u)
mapfile -t files < <(printf '%s\n' "${files[@]}" | awk '!seen[$0]++')

input=0
for f in "${files[@]}"; do input=$((input + $(wc -c < "$f"))); done
echo "== packing ${#files[@]} files ($((input / 1024)) KiB): kernel BTF, ${#progs[@]} programs and their libraries"
"$MMAR" create -f "$work/demo.mmar" --stats "${files[@]}"
echo
echo "== mmar info"
lookups="usr/bin/ls,$(printf '%s\n' "${files[@]}" | grep -m1 'libc.so' | sed 's|^/||')"
[ -r /sys/kernel/btf/vmlinux ] && lookups="sys/kernel/btf/vmlinux,$lookups"
"$MMAR" info -f "$work/demo.mmar" --lookup "$lookups"
echo
echo "== mmar list -l (size, stored size, codec, kind, data alignment)"
"$MMAR" list -l -f "$work/demo.mmar"
echo
echo "== mmar verify"
"$MMAR" verify -f "$work/demo.mmar"
echo
echo "== extract and compare with the originals"
t0=$(date +%s%N)
"$MMAR" extract -f "$work/demo.mmar" -C "$work/out"
t1=$(date +%s%N)
for f in "${files[@]}"; do cmp -s "$f" "$work/out/${f#/}" || { echo "MISMATCH: $f"; exit 1; }; done
echo "extracted ${#files[@]} files in $(( (t1 - t0) / 1000000 )) ms; all identical to the originals"
echo
echo "== the same set with tar, for scale"
t0=$(date +%s%N)
tar -cf "$work/demo.tar" "${files[@]}" 2>/dev/null || true  # sysfs files make tar exit 1
t1=$(date +%s%N)
tar -I "zstd -3 -T0" -cf "$work/demo.tar.zst" "${files[@]}" 2>/dev/null || true
t2=$(date +%s%N)
printf "%-22s %10s bytes\n" "mmar (zstd, indexed)" "$(stat -c %s "$work/demo.mmar")"
printf "%-22s %10s bytes  (%d ms)\n" "tar" "$(stat -c %s "$work/demo.tar")" $(( (t1 - t0) / 1000000 ))
printf "%-22s %10s bytes  (%d ms; no random access)\n" "tar.zst -3" "$(stat -c %s "$work/demo.tar.zst")" $(( (t2 - t1) / 1000000 ))

echo
echo "== run programs straight from the archive (mmar exec: mapped, not extracted)"
ls_member=$("$MMAR" list -f "$work/demo.mmar" | grep -m1 '/ls$' || true)
if [ -n "$ls_member" ]; then
  "$MMAR" exec --argv0 ls "$work/demo.mmar:$ls_member" -la /etc/hostname /etc/os-release
  "$MMAR" map --interpret "$work/demo.mmar:$ls_member"
fi

if [ -r /sys/kernel/btf/vmlinux ]; then
  echo
  echo "== this kernel's types as a C header (mmar btf dump --format c), compiled by gcc"
  btf_member=$("$MMAR" list -f "$work/demo.mmar" | grep -m1 'btf/vmlinux$')
  "$MMAR" btf dump --format c "$work/demo.mmar:$btf_member" > "$work/vmlinux.h"
  echo "$(wc -l < "$work/vmlinux.h") lines; struct task_struct at line $(grep -n '^struct task_struct {' "$work/vmlinux.h" | cut -d: -f1)"
  if command -v gcc >/dev/null; then gcc -fsyntax-only -w -x c "$work/vmlinux.h" && echo "gcc -fsyntax-only: OK"; fi

  echo
  echo "== this kernel's BTF and its loaded modules' in one archive (mmar btf pack), one lookup each (mmar btf find)"
  mods=()
  for m in /sys/kernel/btf/*; do [ "$m" != /sys/kernel/btf/vmlinux ] && mods+=("$m"); done
  "$MMAR" btf pack -f "$work/kernel.mmar" /sys/kernel/btf/vmlinux "${mods[@]}"
  "$MMAR" btf find "$work/kernel.mmar:vmlinux" task_struct sk_buff
  if ((${#mods[@]})); then
    "$MMAR" btf find "$work/kernel.mmar:modules/$(basename "${mods[0]}")" task_struct
  fi
fi

if [ -w /dev/fuse ] && command -v fusermount3 >/dev/null; then
  echo
  echo "== mount it (mmar mount, FUSE) and run a program and its libraries from the mount"
  mkdir -p "$work/mnt"
  "$MMAR" mount "$work/demo.mmar" "$work/mnt"
  # Only if the demo stops before its own umount; under `set -e` a failing
  # command here would become the script's exit status.
  trap 'if mountpoint -q "$work/mnt"; then "$MMAR" umount --lazy "$work/mnt" || true; fi; rm -rf "$work"' EXIT
  if [ -n "$ls_member" ]; then
    libdir=$(dirname "$("$MMAR" list -f "$work/demo.mmar" | grep -m1 '/libc.so.6$')")
    # Through a file, not `| head`: an early head would SIGPIPE ls (pipefail).
    LD_LIBRARY_PATH="$work/mnt/$libdir" "$work/mnt/$ls_member" -l "$work/mnt/$(dirname "$ls_member")" > "$work/ls.out"
    head -5 "$work/ls.out"
  fi
  "$MMAR" umount "$work/mnt"
  echo "unmounted"
else
  echo "(no /dev/fuse or fusermount3 here: skipping the mount demo)"
fi
