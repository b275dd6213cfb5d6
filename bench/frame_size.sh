#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# The frame size, chosen by measurement (bench/RESULTS.md "Frame size"):
# archive size, create time, and 4 KiB random reads / a sequential read
# through the mount, for 64, 128 and 256 KiB frames, on the 300 MB file of
# bench/frames_bench.sh (run that first: it makes $WORK/big and the random
# read helper). Squashfs's own 128 KiB blocks, zstd -3, are the reference.
#   bench/frame_size.sh            (as root: drops caches between runs)
set -euo pipefail
WORK=${WORK:-/tmp/mmar-frames-bench}
MMAR=${MMAR:-$(cd "$(dirname "$0")/.." && pwd)/build/release/tools/mmar/mmar}
READS=${READS:-20000}
MNT=$WORK/fsmnt
BIG=$(ls "$WORK/big")
[ -x "$WORK/random_read" ] && [ -n "$BIG" ] || { echo "frame_size: run bench/frames_bench.sh first" >&2; exit 1; }
mkdir -p "$MNT"
cleanup() { fusermount3 -u "$MNT" 2>/dev/null || true; }
trap cleanup EXIT
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
echo "| frame | archive bytes | create | random 4 KiB reads/s (fresh mount) | sequential read (fresh mount) |"
echo "|---:|---:|---:|---:|---:|"
for f in 64K 128K 256K; do
  out=$WORK/img/frames-$f.mmar
  t0=$(date +%s%N)
  "$MMAR" create -f "$out" --frame-size "$f" -C "$WORK/big" "$BIG" > /dev/null
  t1=$(date +%s%N)
  size=$(stat -c %s "$out")
  drop
  "$MMAR" mount "$out" "$MNT"
  rate=$("$WORK/random_read" "$MNT/$BIG" "$READS" 30 | awk '{print $1}')
  fusermount3 -u "$MNT"
  drop
  "$MMAR" mount "$out" "$MNT"
  s0=$(date +%s%N)
  cat "$MNT/$BIG" > /dev/null
  s1=$(date +%s%N)
  fusermount3 -u "$MNT"
  printf '| %s | %s | %d ms | %s | %d ms |\n' "$f" "$size" $(((t1 - t0) / 1000000)) "$rate" $(((s1 - s0) / 1000000))
done
