#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# The pack size, chosen by measurement (bench/RESULTS.md "Pack size"): for
# packs of 128, 256 and 512 KiB, archive size, create time, whole-file reads
# of random small files through a fresh mount (page cache dropped), and
# `tar -cf - .` through a fresh mount, on small-file trees; squashfuse_ll on
# mksquashfs's image of the same tree (zstd -3, 128 KiB blocks) is the
# reference. Run bench/frames_bench.sh first (it makes the squashfs images).
#   bench/pack_size.sh            (as root: drops caches between runs)
set -euo pipefail
WORK=${WORK:-/tmp/mmar-frames-bench}
MMAR=${MMAR:-$(cd "$(dirname "$0")/.." && pwd)/build/release/tools/mmar/mmar}
FILES=${FILES:-2000}
TREES=${TREES:-"/usr/lib/python3 /usr/share/doc"}
MNT=$WORK/packmnt
mkdir -p "$MNT" "$WORK/img"
cc -O2 -o "$WORK/random_files" "$(dirname "$0")/random_files.c"
cleanup() { fusermount3 -u "$MNT" 2>/dev/null || true; }
trap cleanup EXIT
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
ms() { echo $((($2 - $1) / 1000000)); }
# fresh MOUNT-COMMAND...: random small files, then tar, each on a fresh mount.
fresh() {
  drop; "$@" "$MNT"
  local r; r=$("$WORK/random_files" "$MNT" "$LIST" "$FILES" | awk '{print $1}')
  fusermount3 -u "$MNT"
  drop; "$@" "$MNT"
  local t0 t1
  t0=$(date +%s%N)
  (cd "$MNT" && tar -cf - .) | cat > /dev/null  # through cat: tar reads nothing for /dev/null
  t1=$(date +%s%N)
  fusermount3 -u "$MNT"
  echo "$r $(ms "$t0" "$t1")"
}
for tree in $TREES; do
  tag=$(echo "${tree#/}" | tr / -)
  LIST=$WORK/$tag.small
  (cd "$tree" && find . -type f -size -128k -printf '%P\n' | LC_ALL=C sort) > "$LIST"
  sqfs=$WORK/img/$tag.sqfs
  [ -f "$sqfs" ] || { echo "pack_size: $sqfs missing: run bench/frames_bench.sh first" >&2; exit 1; }
  echo "$tree ($(wc -l < "$LIST") files under 128 KiB; $FILES random whole-file reads)"
  echo
  echo "| pack | archive bytes | vs squashfs | create | random small files/s (fresh mount) | tar -cf - . (fresh mount) |"
  echo "|---:|---:|---:|---:|---:|---:|"
  sq_size=$(stat -c %s "$sqfs")
  for p in 128K 256K 512K; do
    out=$WORK/img/$tag-pack$p.mmar
    t0=$(date +%s%N)
    "$MMAR" create -f "$out" --pack-size "$p" -C "$tree" . > /dev/null
    t1=$(date +%s%N)
    size=$(stat -c %s "$out")
    read -r rate tar < <(fresh "$MMAR" mount "$out")
    printf '| %s | %s | %.4f | %d ms | %s | %d ms |\n' "$p" "$size" "$(awk -v a="$size" -v b="$sq_size" 'BEGIN{print a/b}')" \
      "$(ms "$t0" "$t1")" "$rate" "$tar"
  done
  read -r rate tar < <(fresh squashfuse_ll "$sqfs")
  printf '| squashfuse_ll | %s | 1 | — | %s | %d ms |\n' "$sq_size" "$rate" "$tar"
  echo
done
