#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Mounted archives (issue 5): mmar mount against squashfuse and squashfuse_ll
# on the same tree, packed uncompressed by both (mmar --compress none,
# mksquashfs -noI -noD -noF -noX), in the same run.
#   bench/fs_bench.sh BUILD_DIR OUT_DIR WORK_DIR [FILES]
set -euo pipefail
BUILD=$1 OUT=$2 W=$3 FILES=${4:-100000}
MMAR=$BUILD/tools/mmar/mmar
RR=$BUILD/bench/random_read
mkdir -p "$OUT" "$W"
T=$W/tree
if [ ! -f "$W/tree.done.$FILES" ]; then
  rm -rf "$T"; mkdir -p "$T/bin" "$T/small"
  python3 - "$T/small" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%03d" % (i % 1000))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%06d" % i), "wb") as f:
        f.write(os.urandom(64 + (i * 37) % 2000))
PY
  head -c $((256 << 20)) /dev/urandom > "$T/big.bin"
  cp /usr/bin/ls /bin/busybox "$T/bin/"
  touch "$W/tree.done.$FILES"
fi
rm -f "$W/t.mmar" "$W/t.sqfs"
"$MMAR" create -f "$W/t.mmar" --compress none -C "$T" . >/dev/null
mksquashfs "$T" "$W/t.sqfs" -noI -noD -noF -noX -no-progress -quiet >/dev/null
M=$W/mnt; mkdir -p "$M"
mount_cmd() {
  case $1 in
    mmar) echo "$MMAR mount $W/t.mmar $M" ;;
    squashfuse) echo "squashfuse $W/t.sqfs $M" ;;
    squashfuse_ll) echo "squashfuse_ll $W/t.sqfs $M" ;;
  esac
}
umount_q() { fusermount3 -u "$M" 2>/dev/null || true; }
umount_q
FS="mmar squashfuse_ll squashfuse"

echo "== mount time (mount until ready, then unmount)"
args=()
for fs in $FS; do args+=(-n "$fs" "$(mount_cmd $fs)"); done
hyperfine --warmup 3 --runs 20 --prepare "fusermount3 -u $M 2>/dev/null; true" --cleanup "fusermount3 -u $M" --export-json "$OUT/fs_mount.json" "${args[@]}" | tee "$OUT/fs_mount.txt"

echo "== memory after mount, and after stat of every file (private = RssAnon; file = mapped page cache)"
mem() { awk '/^RssAnon|^RssFile/ {printf "%s %s KiB  ", $1, $2}' "/proc/$1/status"; }
for fs in $FS; do
  umount_q; $(mount_cmd $fs); sleep 0.2
  pid=$(pgrep -n -f "$(mount_cmd $fs | cut -d' ' -f1) .*$M" || true)
  printf '%-14s after mount: %s' "$fs" "$(mem "$pid")"
  find "$M" -printf '%s\n' > /dev/null
  printf '| after find+stat of everything: %s\n' "$(mem "$pid")"
done | tee "$OUT/fs_memory.txt"
umount_q

echo "== find + stat over $FILES files (fresh mount each run: no cached dentries)"
args=()
for fs in $FS; do args+=(-n "$fs" "find $M -printf '%s %m %T@\\n' > /dev/null"); done
hyperfine --warmup 1 --runs 5 --export-json "$OUT/fs_find.json" \
  -n mmar --prepare "fusermount3 -u $M 2>/dev/null; $(mount_cmd mmar)" "find $M -printf '%s %m %T@\\n' > /dev/null" \
  -n squashfuse_ll --prepare "fusermount3 -u $M 2>/dev/null; $(mount_cmd squashfuse_ll)" "find $M -printf '%s %m %T@\\n' > /dev/null" \
  -n squashfuse --prepare "fusermount3 -u $M 2>/dev/null; $(mount_cmd squashfuse)" "find $M -printf '%s %m %T@\\n' > /dev/null" \
  | tee "$OUT/fs_find.txt"
umount_q

echo "== sequential read of a 256 MiB file (fresh mount each run: FUSE page cache empty)"
hyperfine --warmup 1 --runs 5 --export-json "$OUT/fs_seq.json" \
  -n mmar --prepare "fusermount3 -u $M 2>/dev/null; $(mount_cmd mmar)" "cat $M/big.bin > /dev/null" \
  -n squashfuse_ll --prepare "fusermount3 -u $M 2>/dev/null; $(mount_cmd squashfuse_ll)" "cat $M/big.bin > /dev/null" \
  -n squashfuse --prepare "fusermount3 -u $M 2>/dev/null; $(mount_cmd squashfuse)" "cat $M/big.bin > /dev/null" \
  | tee "$OUT/fs_seq.txt"
umount_q

echo "== 4 KiB random reads of the 256 MiB file (20000, same offsets, fresh mount)"
for fs in $FS; do
  umount_q; $(mount_cmd $fs); sleep 0.2
  printf '%-14s ' "$fs"; "$RR" "$M/big.bin" 20000
done | tee "$OUT/fs_random.txt"
umount_q

echo "== running a program from the mount (warm)"
for fs in $FS; do
  umount_q; $(mount_cmd $fs); sleep 0.2
  hyperfine -N --warmup 5 --runs 30 --export-json "$OUT/fs_exec_$fs.json" -n "$fs: ls from the mount" "$M/bin/ls $M/bin" \
    -n "$fs: static busybox from the mount" "$M/bin/busybox true"
done | tee "$OUT/fs_exec.txt"
umount_q
