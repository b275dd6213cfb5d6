#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Real kernel BTF from a Debian kernel package: vmlinux's .BTF (the base) and
# every module's .BTF (splits on it).
#
#   scripts/kernel-btf.sh [OUTDIR]        (KVER=6.1.0-55-cloud-amd64 to pick one)
#
# Writes OUTDIR/vmlinux.btf, OUTDIR/modules/<path>.btf and OUTDIR/VERSION.
# Exits 3 (and says why) when no package can be had, so callers can skip.
set -euo pipefail
OUT=${1:-build/kernel-btf}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ -f "$OUT/VERSION" ] && [ -f "$OUT/vmlinux.btf" ]; then
  echo "kernel-btf: already built: $(cat "$OUT/VERSION") in $OUT" >&2
  exit 0
fi
for tool in dpkg-deb objcopy; do
  command -v "$tool" >/dev/null || { echo "kernel-btf: $tool is missing" >&2; exit 3; }
done

pkg=""
if [ -n "${KVER:-}" ]; then
  pkg="linux-image-$KVER-unsigned"
else
  [ -n "$(apt-cache search --names-only 'linux-image-.*-cloud-amd64-unsigned' 2>/dev/null)" ] || apt-get update -qq || true
  pkg=$(apt-cache search --names-only 'linux-image-.*-cloud-amd64-unsigned' 2>/dev/null | awk '{print $1}' | sort -V | tail -n1)
fi
[ -n "$pkg" ] || { echo "kernel-btf: no linux-image-*-cloud-amd64-unsigned package is known to apt" >&2; exit 3; }
ver=${pkg#linux-image-}
ver=${ver%-unsigned}

work=$(mktemp -d "${TMPDIR:-/tmp}/kernel-btf.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download "$pkg" >/dev/null 2>&1) || { echo "kernel-btf: cannot download $pkg" >&2; exit 3; }
dpkg-deb -x "$work"/*.deb "$work/root"

# vmlinuz is a bzImage whose payload is compressed; find the payload by its
# magic and inflate it until an ELF comes out (the idea of the kernel's
# scripts/extract-vmlinux).
vmlinuz=$(ls "$work/root/boot/vmlinuz-"* | head -n1)
try() { # MAGIC DECOMPRESSOR...
  local magic=$1; shift
  for pos in $(LC_ALL=C grep -obUaP "$magic" "$vmlinuz" | cut -d: -f1 | head -n 5); do
    tail -c +"$((pos + 1))" "$vmlinuz" | "$@" > "$work/vmlinux" 2>/dev/null || true
    if [ "$(head -c 4 "$work/vmlinux" | od -An -c | tr -d ' ')" = "177ELF" ]; then return 0; fi
  done
  return 1
}
try '\x28\xb5\x2f\xfd' zstd -dc || try '\xfd\x37\x7a\x58\x5a\x00' xz -dc || try '\x02\x21\x4c\x18' lz4 -dc ||
  try '\x1f\x8b\x08' gzip -dc || { echo "kernel-btf: cannot extract vmlinux from $vmlinuz" >&2; exit 1; }
objcopy --dump-section .BTF="$OUT/vmlinux.btf" "$work/vmlinux" /dev/null
[ -s "$OUT/vmlinux.btf" ] || { echo "kernel-btf: vmlinux has no .BTF section" >&2; exit 1; }

mkdir -p "$OUT/modules"
n=0
while IFS= read -r -d '' ko; do
  rel=${ko#"$work/root/lib/modules/$ver/kernel/"}
  case "$ko" in
    *.ko.xz) xz -dc "$ko" > "$work/m.ko"; src="$work/m.ko"; rel=${rel%.xz} ;;
    *.ko.zst) zstd -qdc "$ko" > "$work/m.ko"; src="$work/m.ko"; rel=${rel%.zst} ;;
    *) src=$ko ;;
  esac
  mkdir -p "$OUT/modules/$(dirname "$rel")"
  objcopy --dump-section .BTF="$OUT/modules/${rel%.ko}.btf" "$src" /dev/null 2>/dev/null || true
  [ -s "$OUT/modules/${rel%.ko}.btf" ] && n=$((n + 1)) || rm -f "$OUT/modules/${rel%.ko}.btf"
done < <(find "$work/root/lib/modules/$ver/kernel" \( -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' \) -print0)
echo "$ver" > "$OUT/VERSION"
echo "kernel-btf: $ver: vmlinux.btf ($(stat -c %s "$OUT/vmlinux.btf") bytes) and $n module BTFs in $OUT" >&2
