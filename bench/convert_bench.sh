#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# mmar create --from of a large .tar.zst against the two-step way (tar -x,
# then mmar create) and against squashfs-tools-ng's tar2sqfs (a tar stream
# straight into a squashfs image), all zstd level 3, same run. Wall time
# (best of RUNS), peak RSS and output size.
#   bench/convert_bench.sh [MMAR] [TREE]     (default TREE: /usr/lib/x86_64-linux-gnu)
set -euo pipefail
MMAR=${1:-$(dirname "$0")/../build/release/tools/mmar/mmar}
TREE=${2:-/usr/lib/x86_64-linux-gnu}
RUNS=${RUNS:-3}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/mmar-convert.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -C "$TREE" -cf - . 2>/dev/null | zstd -q -T2 -3 -o "$work/in.tar.zst"
echo "input: $TREE as .tar.zst, $(du -h "$work/in.tar.zst" | cut -f1) ($(tar -C "$TREE" -cf - . 2>/dev/null | wc -c) bytes of tar)"
measure() { # NAME OUTPUT COMMAND...
  local name=$1 out=$2 best="" rss=""
  shift 2
  for _ in $(seq "$RUNS"); do
    rm -rf "$work/x" "$out"
    sync
    local t0 t1
    t0=$(date +%s.%N)
    /usr/bin/time -f %M -o "$work/rss" bash -c "$*" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
    t1=$(date +%s.%N)
    local t
    t=$(echo "$t1 - $t0" | bc)
    if [ -z "$best" ] || (($(echo "$t < $best" | bc))); then best=$t; rss=$(cat "$work/rss"); fi
  done
  printf '%-34s %8.2f s  %6d MiB RSS  %s\n' "$name" "$best" $((rss / 1024)) "$(du -b "$out" | cut -f1) bytes"
}
measure "mmar create --from in.tar.zst" "$work/a.mmar" "$MMAR create -f $work/a.mmar --from $work/in.tar.zst"
measure "tar -x, then mmar create" "$work/b.mmar" \
  "mkdir -p $work/x && tar -I zstd -C $work/x -xf $work/in.tar.zst && $MMAR create -f $work/b.mmar -C $work/x . && rm -rf $work/x"
if command -v tar2sqfs >/dev/null; then
  measure "tar2sqfs (zstd 3, 2 jobs)" "$work/c.sqfs" \
    "zstd -dc $work/in.tar.zst | tar2sqfs -q -f -c zstd -X level=3 -j 2 $work/c.sqfs"
fi
