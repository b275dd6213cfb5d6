#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# The writable mount under load (issue "Data safety first", item 9): time and
# archive size for 20,000 create+fsync and two fsx-style runs, beside the same
# runs on tmpfs and directly on the archive's disk.   bench/rw_bench.sh MMAR [WORKDIR]
# WORKDIR (default: a fresh directory under /var/tmp, a disk) holds the archive.
set -euo pipefail
mmar=$1
work=${2:-$(mktemp -d /var/tmp/mmar-rwbench-XXXXXX)}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"
tm=$(mktemp -d)
mount -t tmpfs -o size=2g tmpfs "$tm"
cleanup() { umount -l "$work/m" 2>/dev/null || true; umount -l "$tm" 2>/dev/null || true; }
trap cleanup EXIT

secs() { local s e; s=$(date +%s.%N); "$@"; e=$(date +%s.%N); awk -v s="$s" -v e="$e" 'BEGIN{print e-s}'; }
size() { stat -c %s "$1"; }

fresh_mount() {
  rm -rf "$work/src" "$work/m" "$work/a.mmar"
  mkdir -p "$work/src" "$work/m"
  echo seed > "$work/src/seed"
  "$mmar" create --compress none -f "$work/a.mmar" -C "$work/src" . >/dev/null
  "$mmar" mount --rw "$work/a.mmar" "$work/m"
}

run() { # NAME COMMAND-WITH-@DIR@
  local name=$1 cmd=$2 t_mnt t_tmp
  fresh_mount
  t_mnt=$(secs bash -c "${cmd//@DIR@/$work/m}")
  "$mmar" umount "$work/m"
  local asize live
  asize=$(size "$work/a.mmar")
  live=$("$mmar" list -l "$work/a.mmar" | awk '{s+=$2} END {print s+0}')  # the members' bytes
  rm -rf "${tm:?}"/*
  t_tmp=$(secs bash -c "${cmd//@DIR@/$tm}")
  # The same on the disk the archive is on: what its fsyncs cost by themselves.
  rm -rf "$work/plain" && mkdir -p "$work/plain"
  t_disk=$(secs bash -c "${cmd//@DIR@/$work/plain}")
  rm -rf "$work/plain"
  printf '%-34s mount %7.2f s  tmpfs %7.2f s  disk %7.2f s  archive %12d B  live %12d B\n' \
    "$name" "$t_mnt" "$t_tmp" "$t_disk" "$asize" "$live"
  "$mmar" verify -q "$work/a.mmar"
}

run "20,000 create+fsync (100 B)" "python3 $here/creates.py @DIR@ 20000"
run "fsx 5,000 ops, fsync each, 4 MiB" "python3 $here/fsx.py @DIR@/f 5000 4194304 --fsync-every 1 --seed 1"
run "fsx 3,000 ops, reopen /50, 64 MiB" "python3 $here/fsx.py @DIR@/f 3000 67108864 --reopen-every 50 --seed 2"
rm -rf "$work"
