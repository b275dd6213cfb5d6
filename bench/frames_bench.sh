#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Issue 11 ("Compressed members that stream and seek"): every figure of its
# Targets section, each against its peer in the same run.
#
#   create   mmar create (zstd, default level) vs mksquashfs -comp zstd -Xcompression-level 3
#            -processors 2: wall time, peak RSS, output size; the big file and each tree
#   cat      mmar cat of the big member vs zstd -dc of a zstd -3 file of the same bytes
#   mount    mmar mount vs squashfuse_ll: 4 KiB random reads and a sequential read of the
#            big file; tar -cf - . of each tree (fresh mount, then warm) and find (warm),
#            also against the kernel's EROFS (mkfs.erofs -zlz4hc, loop-mounted read-only)
#   extract  mmar extract of each tree vs tar -I zstd -xf
#
# Usage (as root: it installs its peers, drops caches and loop-mounts):
#   bench/frames_bench.sh                      # everything, full size (300 MB file, 3 trees)
#   QUICK=1 bench/frames_bench.sh              # 30 MB file, /usr/lib/python3 only: a smoke test
#   SECTIONS="cat mount" bench/frames_bench.sh
# Environment:
#   MMAR               mmar binary (default /work/main/build/release/tools/mmar/mmar)
#   MMAR_CREATE_FLAGS  extra flags for every mmar create (e.g. "--frame-size 131072")
#   WORK               scratch directory (default /tmp/mmar-frames-bench); inputs and images are
#                      kept there and rebuilt only when missing (mmar archives also when the binary
#                      or MMAR_CREATE_FLAGS change)
#   RUNS               timed runs per figure, the median is reported (default 3; QUICK: 1)
#   LIMIT              seconds before one command is given up as a timeout (default 600; QUICK: 60)
#   READS, READ_SECONDS  random reads: at most READS reads, at most READ_SECONDS seconds
#                      (default 20000 and 30; QUICK: 2000 and 5)
#   DROP_CACHES        1 (default): drop the page cache before every cold/fresh-mount run
# The tables are printed and appended to $WORK/results.md.
set -euo pipefail
export LC_ALL=C

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MMAR=${MMAR:-/work/main/build/release/tools/mmar/mmar}
MMAR_CREATE_FLAGS=${MMAR_CREATE_FLAGS:-}
WORK=${WORK:-/tmp/mmar-frames-bench}
QUICK=${QUICK:-0}
SECTIONS=${SECTIONS:-create cat mount extract}
DROP_CACHES=${DROP_CACHES:-1}
if [ "$QUICK" = 1 ]; then
  BIG_BYTES=30000000
  TREES=(/usr/lib/python3)
  RUNS=${RUNS:-1} LIMIT=${LIMIT:-60} READS=${READS:-2000} READ_SECONDS=${READ_SECONDS:-5}
else
  BIG_BYTES=300000000
  TREES=(/usr/lib/x86_64-linux-gnu /usr/lib/python3 /usr/share/doc)
  RUNS=${RUNS:-3} LIMIT=${LIMIT:-600} READS=${READS:-20000} READ_SECONDS=${READ_SECONDS:-30}
fi
BIG_SOURCE=/usr/lib/x86_64-linux-gnu
BIG_MEMBER=big.bin

die() { echo "frames_bench: $*" >&2; exit 1; }
note() { echo "$*" | tee -a "$RESULTS"; }

for s in $SECTIONS; do
  case $s in create | cat | mount | extract) ;; *) echo "frames_bench: unknown section '$s' (create cat mount extract)" >&2; exit 2 ;; esac
done
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
[ "$(id -u)" = 0 ] || die "run as root (installs peers, drops caches, loop-mounts)"
[ -x "$MMAR" ] || die "$MMAR: no mmar binary (set MMAR=...)"
MMAR=$(realpath "$MMAR")
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
IMG=$WORK/img MNT=$WORK/mnt TMPF=$WORK/.timing RESULTS=$WORK/results.md
# From the mount table, not stat: a FUSE mount whose daemon died fails stat (ENOTCONN).
is_mounted() { awk -v d="$MNT" '$5 == d {f = 1} END {exit !f}' /proc/self/mountinfo; }
# A mount left behind by an interrupted run (its daemon perhaps dead) is detached first.
while is_mounted; do umount -l "$MNT"; done
mkdir -p "$IMG" "$MNT"

# ---------------------------------------------------------------- peers
install_peers() {
  local pkgs=() c
  for c in mksquashfs:squashfs-tools squashfuse_ll:squashfuse mkfs.erofs:erofs-utils zstd:zstd \
    fusermount3:fuse3 /usr/bin/time:time python3:python3 cc:gcc; do
    command -v "${c%%:*}" > /dev/null || pkgs+=("${c#*:}")
  done
  [ ${#pkgs[@]} -eq 0 ] && return 0
  echo "installing ${pkgs[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" > "$WORK/apt.log" 2>&1 ||
    { apt-get update > "$WORK/apt.log" 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" >> "$WORK/apt.log" 2>&1; } ||
    die "apt-get install ${pkgs[*]} failed (see $WORK/apt.log)"
}
install_peers

# The random-read helper: the offsets of bench/random_read.c (same seed, same
# xorshift), but bounded in time too, since a read may inflate a whole member.
build_random_read() {
  cat > "$WORK/random_read.c" <<'EOF'
/* random_read FILE COUNT SECONDS: up to COUNT 4 KiB preads at random 4 KiB-aligned
 * offsets of FILE (the seed and xorshift64 of bench/random_read.c), stopping once
 * SECONDS have passed; prints "READS_PER_SECOND READS SECONDS". */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  int fd = open(argv[1], O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < 4096) { perror(argv[1]); return 1; }
  long count = atol(argv[2]), done = 0;
  double limit = atof(argv[3]);
  unsigned long long blocks = (unsigned long long)st.st_size / 4096, x = 88172645463325252ULL;
  char buf[4096];
  double start = now(), elapsed = 0;
  while (done < count && elapsed < limit) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    if (pread(fd, buf, sizeof buf, (off_t)((x % blocks) * 4096)) != (ssize_t)sizeof buf) { perror("pread"); return 1; }
    ++done;
    elapsed = now() - start;
  }
  printf("%.1f %ld %.3f\n", (double)done / elapsed, done, elapsed);
  return 0;
}
EOF
  cc -O2 -o "$WORK/random_read" "$WORK/random_read.c"
}
build_random_read

# ---------------------------------------------------------------- helpers
q() { printf '%q' "$1"; }

drop_caches() {
  sync
  [ "$DROP_CACHES" = 1 ] && echo 3 > /proc/sys/vm/drop_caches
  return 0
}

# run_once CMD: run the shell command line CMD (pipefail on) under GNU time and
# timeout. Sets ONE_S (wall seconds, timed inside the shell so that bash, time
# and timeout start-up are not counted; "timeout" if it took over LIMIT) and
# ONE_KB (peak RSS of the largest process, KiB). Dies if CMD fails.
run_once() {
  local cmd=$1 rc=0
  rm -f "$TMPF.t" "$TMPF.rss"
  /usr/bin/time -f '%M' -o "$TMPF.rss" timeout -k 10 "$LIMIT" bash -c \
    'set -o pipefail; t0=$EPOCHREALTIME; eval "$1"; rc=$?; t1=$EPOCHREALTIME; echo "$t0 $t1" > "$2"; exit $rc' \
    _ "$cmd" "$TMPF.t" || rc=$?
  if [ $rc = 124 ] || [ $rc = 137 ]; then
    ONE_S=timeout ONE_KB=0
    echo "  (timed out after ${LIMIT} s: $cmd)" >&2
    return 0
  fi
  [ $rc = 0 ] || die "exit status $rc: $cmd"
  ONE_S=$(awk '{printf "%.6f", $2 - $1}' "$TMPF.t")
  ONE_KB=$(tail -n 1 "$TMPF.rss")
}

# measure CMD [PREP]: RUNS runs of CMD, each after the function PREP (if given).
# Sets T (median seconds, or "timeout") and KB (largest peak RSS, KiB).
measure() {
  local cmd=$1 prep=${2:-} i times=()
  KB=0
  for ((i = 0; i < RUNS; i++)); do
    [ -z "$prep" ] || $prep
    run_once "$cmd"
    if [ "$ONE_S" = timeout ]; then T=timeout; return 0; fi
    times+=("$ONE_S")
    [ "$ONE_KB" -gt "$KB" ] && KB=$ONE_KB
  done
  T=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
}

fmt_s() {
  [ "$1" = timeout ] && { echo "> ${LIMIT} s (timeout)"; return; }
  awk -v s="$1" 'BEGIN {if (s < 1) printf "%.1f ms", s * 1000; else printf "%.2f s", s}'
}
fmt_mib() {
  [ "$1" = timeout ] && { echo "— (timeout)"; return; }
  awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'
}
fmt_bytes() {
  [ "$1" = timeout ] && { echo "— (timeout)"; return; }
  echo "$1 B" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'
}
fmt_rate() {
  [ "$1" = timeout ] && { echo "> $((LIMIT + READ_SECONDS)) s for one read (timeout)"; return; }
  awk -v r="$1" 'BEGIN {printf "%.1f reads/s", r}'
}
ratio() {
  { [ "$1" = timeout ] || [ "$2" = timeout ]; } && { echo "—"; return; }
  # Four decimals near 1, so that a verdict is not decided by rounding.
  awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) {print "—"; exit}; r = a / b
    if (r > 0.99 && r < 1.01) printf "%.4f", r; else printf "%.2f", r}'
}
# verdict VALUE OP LIMIT: "met" or "not met" (VALUE "—" or "timeout": not met).
verdict() {
  case $1 in "—" | timeout) echo "not met"; return ;; esac
  awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
    ok = (op == "<=") ? v <= l : (op == ">=") ? v >= l : (op == "<") ? v < l : 0
    print ok ? "met" : "not met" }'
}

# Commands as shown: the scratch dir as $WORK, the binary as mmar; `|` escaped for markdown.
show() { local s=${1//"$MMAR"/mmar}; s=${s//"$WORK"/\$WORK}; echo "\`${s//|/\\|}\`"; }

table_head() {
  note ""
  note "### $1"
  note ""
  note "| figure | input | mmar | peer | mmar / peer | target | | mmar command | peer command |"
  note "|---|---|---:|---:|---:|---|---|---|---|"
}
# row FIGURE INPUT MMAR PEER RATIO TARGET VERDICT MMAR_CMD PEER_CMD
row() { note "| $1 | $2 | $3 | $4 | $5 | $6 | $7 | $(show "$8") | $(show "$9") |"; }

# A time pair where lower is better: row with ratio mmar/peer against "≤ LIMIT".
time_row() { # FIGURE INPUT MMAR_T PEER_T LIMIT MMAR_CMD PEER_CMD [PEER_NAME]
  local r; r=$(ratio "$3" "$4")
  local target="—" met=""
  if [ -n "$5" ]; then target="≤ $5×${8:+ $8}"; met=$(verdict "$r" "<=" "$5"); fi
  row "$1" "$2" "$(fmt_s "$3")" "$(fmt_s "$4")" "$r" "$target" "$met" "$6" "$7"
}

# ---------------------------------------------------------------- inputs and images
tree_name() { local n=${1#/}; echo "${n//\//-}"; }

warm_tree() { tar -cf - -C "$1" . | cat > /dev/null; }

make_big() {
  local f=$WORK/big/$BIG_MEMBER
  if [ -f "$f" ] && [ "$(stat -c %s "$f")" = "$BIG_BYTES" ]; then return 0; fi
  echo "building $f: the first $BIG_BYTES bytes of the regular files under $BIG_SOURCE (sorted)"
  mkdir -p "$WORK/big"
  rm -f "$WORK/big/"* "$IMG"/big.*
  # head stops reading early: the writers' SIGPIPE is expected, the size is checked instead.
  (set +o pipefail; find "$BIG_SOURCE" -type f -print0 | sort -z | xargs -0 cat 2> /dev/null | head -c "$BIG_BYTES") > "$f.tmp"
  [ "$(stat -c %s "$f.tmp")" = "$BIG_BYTES" ] || die "$BIG_SOURCE holds fewer than $BIG_BYTES bytes"
  mv "$f.tmp" "$f"
}

# The commands, one place each: the timed ones and the image builders run the same strings.
mmar_create_cmd() { echo "$(q "$MMAR") create -f $(q "$1")${MMAR_CREATE_FLAGS:+ $MMAR_CREATE_FLAGS} -C $(q "$2") $(q "$3") > /dev/null"; }
# The peer's output is synced, as mmar fsyncs its own before renaming it
# into place: both timings are of a durable archive.
sqfs_create_cmd() { echo "mksquashfs $(q "$1") $(q "$2") -comp zstd -Xcompression-level 3 -processors 2 -noappend -quiet > /dev/null && sync $(q "$2")"; }
# Inputs: big -> ($WORK/big, big.bin); a tree -> (TREE, .)
input_dir() { if [ "$1" = big ]; then echo "$WORK/big"; else echo "$1"; fi; }
input_path() { if [ "$1" = big ]; then echo "$BIG_MEMBER"; else echo .; fi; }
input_label() { if [ "$1" = big ]; then echo "$(fmt_bytes "$BIG_BYTES") file"; else echo "\`$1\`"; fi; }
image() { if [ "$1" = big ]; then echo "$IMG/big.$2"; else echo "$IMG/$(tree_name "$1").$2"; fi; }

# An mmar archive is reused only if it was written by this binary with these flags.
MMAR_ID=$(sha256sum "$MMAR" | cut -c1-16)-$(printf '%s' "$MMAR_CREATE_FLAGS" | sha256sum | cut -c1-8)
ensure_mmar() {
  local out; out=$(image "$1" mmar)
  if [ -f "$out" ] && [ "$(cat "$out.id" 2> /dev/null)" = "$MMAR_ID" ]; then return 0; fi
  rm -f "$out" "$out.id"
  bash -c "$(mmar_create_cmd "$out" "$(input_dir "$1")" "$(input_path "$1")")" || die "mmar create of $1 failed"
  echo "$MMAR_ID" > "$out.id"
}
ensure_sqfs() {
  local out; out=$(image "$1" sqfs)
  [ -f "$out" ] || bash -c "$(sqfs_create_cmd "$(input_dir "$1")" "$out")" || die "mksquashfs of $1 failed"
}
ensure_erofs() {
  local out; out=$(image "$1" erofs)
  [ -f "$out" ] && return 0
  mkfs.erofs -zlz4hc "$out.tmp" "$1" > "$WORK/mkfs.erofs.log" 2>&1 || die "mkfs.erofs of $1 failed (see $WORK/mkfs.erofs.log)"
  mv "$out.tmp" "$out"
}
ensure_tar_zst() {
  local out; out=$(image "$1" tar.zst)
  [ -f "$out" ] && return 0
  tar -I 'zstd -3' -cf "$out.tmp" -C "$1" . || die "tar -I zstd of $1 failed"
  mv "$out.tmp" "$out"
}
ensure_zst() {
  local out=$IMG/big.zst
  [ -f "$out" ] && return 0
  zstd -3 -q -f "$WORK/big/$BIG_MEMBER" -o "$out.tmp" || die "zstd -3 of the big file failed"
  mv "$out.tmp" "$out"
}

# ---------------------------------------------------------------- mounts
MOUNTED_KIND=""
unmount_all() {
  local n=0
  while is_mounted && [ $n -lt 5 ]; do
    case $MOUNTED_KIND in
      mmar) "$MMAR" umount "$MNT" 2> /dev/null || umount "$MNT" 2> /dev/null || umount -l "$MNT" || true ;;
      erofs) umount "$MNT" 2> /dev/null || umount -l "$MNT" || true ;;
      *) fusermount3 -u "$MNT" 2> /dev/null || umount "$MNT" 2> /dev/null || umount -l "$MNT" || true ;;
    esac
    n=$((n + 1))
  done
  is_mounted && die "cannot unmount $MNT"
  MOUNTED_KIND=""
}
trap 'unmount_all 2> /dev/null || true; rm -f "$TMPF".*' EXIT
trap 'exit 130' INT TERM

mount_cmd() { # KIND IMAGE
  case $1 in
    mmar) echo "$(q "$MMAR") mount $(q "$2") $(q "$MNT")" ;;
    squashfuse_ll) echo "squashfuse_ll $(q "$2") $(q "$MNT")" ;;
    erofs) echo "mount -t erofs -o loop,ro $(q "$2") $(q "$MNT")" ;;
  esac
}
mount_img() { # KIND IMAGE
  unmount_all
  bash -c "$(mount_cmd "$1" "$2")" < /dev/null > /dev/null 2>> "$WORK/mount.log" || die "mount failed (see $WORK/mount.log): $(mount_cmd "$1" "$2")"
  MOUNTED_KIND=$1
  is_mounted || die "$(mount_cmd "$1" "$2"): nothing mounted on $MNT"
}
# The prep of a fresh-mount run: caches dropped, then mounted afresh.
CUR_KIND="" CUR_IMAGE=""
fresh_mount() { unmount_all; drop_caches; mount_img "$CUR_KIND" "$CUR_IMAGE"; }

# Can this machine loop-mount EROFS? Sets EROFS_OK and EROFS_WHY.
EROFS_OK="" EROFS_WHY=""
probe_erofs() {
  [ -n "$EROFS_OK" ] && return 0
  grep -qw erofs /proc/filesystems || modprobe erofs 2> /dev/null || true
  local img=$1 err
  unmount_all
  if err=$(mount -t erofs -o loop,ro "$img" "$MNT" 2>&1); then
    MOUNTED_KIND=erofs EROFS_OK=1
    unmount_all
  else
    EROFS_OK=0 EROFS_WHY=$err
  fi
}

# ---------------------------------------------------------------- sections
section_create() {
  table_head "create: mmar create (zstd, default level) vs mksquashfs -comp zstd -Xcompression-level 3 -processors 2 (warm input, median of $RUNS)"
  local src dir path mo so mcmd scmd mt mk st sk ms ss r
  for src in big "${TREES[@]}"; do
    dir=$(input_dir "$src") path=$(input_path "$src")
    mo=$(image "$src" mmar) so=$(image "$src" sqfs)
    mcmd=$(mmar_create_cmd "$mo" "$dir" "$path") scmd=$(sqfs_create_cmd "$dir" "$so")
    warm_tree "$dir"
    CUR_OUT=$mo; measure "$mcmd" prep_create; mt=$T mk=$KB
    [ "$mt" = timeout ] || echo "$MMAR_ID" > "$mo.id"
    CUR_OUT=$so; measure "$scmd" prep_create; st=$T sk=$KB
    ms=$(stat -c %s "$mo" 2> /dev/null || echo 0) ss=$(stat -c %s "$so" 2> /dev/null || echo 0)
    # A timed-out run leaves no figure for its RSS or size.
    [ "$mt" = timeout ] && mk=timeout ms=timeout
    [ "$st" = timeout ] && sk=timeout ss=timeout
    time_row "create: time" "$(input_label "$src")" "$mt" "$st" 1.00 "$mcmd" "$scmd"
    r=$(ratio "$mk" "$sk")
    row "create: peak RSS" "$(input_label "$src")" "$(fmt_mib "$mk")" "$(fmt_mib "$sk")" "$r" "mmar < 160 MiB" \
      "$(verdict "$mk" "<" 163840)" "$mcmd" "$scmd"
    r=$(ratio "$ms" "$ss")
    row "create: size" "$(input_label "$src")" "$(fmt_bytes "$ms")" "$(fmt_bytes "$ss")" "$r" "≤ 1.00×" \
      "$(verdict "$r" "<=" 1)" "$mcmd" "$scmd"
  done
  note ""
  note "(mmar create fsyncs the archive before renaming it into place; the mksquashfs command syncs its output too.)"
}
CUR_OUT=""
prep_create() { rm -f "$CUR_OUT"; sync; }

section_cat() {
  ensure_mmar big
  ensure_zst
  local mo=$IMG/big.mmar zo=$IMG/big.zst mcmd zcmd mt mk zt zk r
  mcmd="$(q "$MMAR") cat $(q "$mo") $BIG_MEMBER > /dev/null"
  zcmd="zstd -dc $(q "$zo") > /dev/null"
  # Correct bytes first, then warm page cache for both.
  cmp <("$MMAR" cat "$mo" "$BIG_MEMBER") "$WORK/big/$BIG_MEMBER" || die "mmar cat of $mo: bytes differ from the input"
  cat "$zo" > /dev/null
  table_head "cat: the big member to /dev/null (archive in the page cache, median of $RUNS)"
  measure "$mcmd"; mt=$T mk=$KB
  measure "$zcmd"; zt=$T zk=$KB
  time_row "cat: time" "$(input_label big)" "$mt" "$zt" 1.25 "$mcmd" "$zcmd"
  r=$(ratio "$mk" "$zk")
  row "cat: peak RSS" "$(input_label big)" "$(fmt_mib "$mk")" "$(fmt_mib "$zk")" "$r" "mmar < 64 MiB" \
    "$(verdict "$mk" "<" 65536)" "$mcmd" "$zcmd"
}

section_mount() {
  ensure_mmar big
  ensure_sqfs big
  local kind rc rr_cmd rate=() seq=() r f cmd tcmd fcmd
  local -A img cmdof
  img[mmar]=$IMG/big.mmar img[squashfuse_ll]=$IMG/big.sqfs
  table_head "mount: mmar mount vs squashfuse_ll (caches dropped and a fresh mount before each cold run)"

  # 4 KiB random reads, same offsets for both.
  rr_cmd="$(q "$WORK/random_read") $(q "$MNT/$BIG_MEMBER") $READS $READ_SECONDS"
  for kind in mmar squashfuse_ll; do
    CUR_KIND=$kind CUR_IMAGE=${img[$kind]}
    fresh_mount
    rc=0
    r=$(timeout -k 10 $((LIMIT + READ_SECONDS)) "$WORK/random_read" "$MNT/$BIG_MEMBER" "$READS" "$READ_SECONDS") || rc=$?
    case $rc in
      0) ;;
      124 | 137) r=timeout ;;  # one read took longer than LIMIT
      *) die "random reads on $kind failed (exit status $rc)" ;;
    esac
    echo "  random reads, $kind: $r (reads/s, reads, seconds)" >&2
    rate+=("${r%% *}")
    cmdof[$kind]="$(mount_cmd "$kind" "${img[$kind]}") && $rr_cmd"
  done
  unmount_all
  r=$(ratio "${rate[0]}" "${rate[1]}")
  row "mount: 4 KiB random reads (≤ $READS reads, ≤ $READ_SECONDS s)" "$(input_label big)" "$(fmt_rate "${rate[0]}")" \
    "$(fmt_rate "${rate[1]}")" "$r" "≥ 1.00×" "$(verdict "$r" ">=" 1)" "${cmdof[mmar]}" "${cmdof[squashfuse_ll]}"

  # Sequential read, checked against the input once.
  for kind in mmar squashfuse_ll; do
    CUR_KIND=$kind CUR_IMAGE=${img[$kind]}
    cmd="cat $(q "$MNT/$BIG_MEMBER") > /dev/null"
    measure "$cmd" fresh_mount
    seq+=("$T")
    cmdof[$kind]="$(mount_cmd "$kind" "${img[$kind]}") && $cmd"
    if [ "$kind" = mmar ] && [ "$T" != timeout ]; then
      cmp "$MNT/$BIG_MEMBER" "$WORK/big/$BIG_MEMBER" || die "$MNT/$BIG_MEMBER (mmar mount) differs from the input"
    fi
  done
  unmount_all
  time_row "mount: sequential read (fresh mount, median of $RUNS)" "$(input_label big)" "${seq[0]}" "${seq[1]}" 1.00 \
    "${cmdof[mmar]}" "${cmdof[squashfuse_ll]}"

  # Trees: tar of everything on a fresh mount, then warm; find warm.
  local tree kinds=() label mm sq er
  local -A fresh=() warm=() found=()
  for tree in "${TREES[@]}"; do
    ensure_mmar "$tree"
    ensure_sqfs "$tree"
    ensure_erofs "$tree"
    probe_erofs "$(image "$tree" erofs)"
    kinds=(mmar squashfuse_ll)
    [ "$EROFS_OK" = 1 ] && kinds+=(erofs)
    fresh=() warm=() found=()
    img[mmar]=$(image "$tree" mmar) img[squashfuse_ll]=$(image "$tree" sqfs) img[erofs]=$(image "$tree" erofs)
    tcmd="cd $(q "$MNT") && tar -cf - . | cat > /dev/null"
    fcmd="cd $(q "$MNT") && find . -printf '%s\\n' > /dev/null"
    for kind in "${kinds[@]}"; do
      CUR_KIND=$kind CUR_IMAGE=${img[$kind]}
      measure "$tcmd" fresh_mount; fresh[$kind]=$T
      if [ "$kind" = mmar ] && [ "$T" != timeout ]; then
        diff <(cd "$tree" && find . | sort) <(cd "$MNT" && find . | sort) > /dev/null ||
          die "the names under $MNT (mmar mount of ${img[mmar]}) differ from $tree"
      fi
      run_once "$tcmd"  # warm-up (the last fresh run already read everything once)
      measure "$tcmd"; warm[$kind]=$T
      measure "$fcmd"; found[$kind]=$T
      unmount_all
    done
    label=$(input_label "$tree")
    mm=$(mount_cmd mmar "${img[mmar]}") sq=$(mount_cmd squashfuse_ll "${img[squashfuse_ll]}") er=$(mount_cmd erofs "${img[erofs]}")
    time_row "mount: tar -cf - . (fresh mount)" "$label" "${fresh[mmar]}" "${fresh[squashfuse_ll]}" 1.00 \
      "$mm && $tcmd" "$sq && $tcmd" "vs squashfuse_ll"
    time_row "mount: tar -cf - . (warm)" "$label" "${warm[mmar]}" "${warm[squashfuse_ll]}" "" \
      "$mm && $tcmd" "$sq && $tcmd"
    time_row "mount: find -printf (warm)" "$label" "${found[mmar]}" "${found[squashfuse_ll]}" "" \
      "$mm && $fcmd" "$sq && $fcmd"
    if [ "$EROFS_OK" = 1 ]; then
      time_row "mount: tar -cf - . (fresh mount) vs EROFS" "$label" "${fresh[mmar]}" "${fresh[erofs]}" "" \
        "$mm && $tcmd" "$er && $tcmd"
      time_row "mount: tar -cf - . (warm) vs EROFS" "$label" "${warm[mmar]}" "${warm[erofs]}" 1.50 \
        "$mm && $tcmd" "$er && $tcmd" "vs EROFS"
      time_row "mount: find -printf (warm) vs EROFS" "$label" "${found[mmar]}" "${found[erofs]}" 1.50 \
        "$mm && $fcmd" "$er && $fcmd" "vs EROFS"
    else
      row "mount: tar (warm), find (warm) vs EROFS" "$label" "—" "skipped" "—" "≤ 1.50×" "not measured" "$mm" "$er"
    fi
  done
  if [ "$EROFS_OK" = 0 ]; then
    note ""
    note "EROFS skipped: loop mount failed here: ${EROFS_WHY//$'\n'/ }"
  fi
  note ""
  note "(Random reads: the first field is reads/s of the helper $WORK/random_read, built from this script: bench/random_read.c's offsets, bounded by count and time.)"
}

section_extract() {
  table_head "extract: mmar extract vs tar -I zstd -xf, into an empty directory (archives in the page cache, median of $RUNS)"
  local tree mo to mcmd tcmd mt tt dest=$WORK/extract
  for tree in "${TREES[@]}"; do
    ensure_mmar "$tree"
    ensure_tar_zst "$tree"
    mo=$(image "$tree" mmar) to=$(image "$tree" tar.zst)
    cat "$mo" "$to" > /dev/null
    mcmd="$(q "$MMAR") extract -f $(q "$mo") -C $(q "$dest")"
    tcmd="tar -I zstd -xf $(q "$to") -C $(q "$dest")"
    measure "$mcmd" prep_extract; mt=$T
    if [ "$mt" != timeout ]; then
      # Same entries as the tree (names only: a cheap check that it extracted everything).
      diff <(cd "$tree" && find . | sort) <(cd "$dest" && find . | sort) > /dev/null ||
        die "mmar extract of $mo: the entries differ from $tree"
    fi
    measure "$tcmd" prep_extract; tt=$T
    time_row "extract: time" "$(input_label "$tree")" "$mt" "$tt" 1.00 "$mcmd" "$tcmd"
  done
  rm -rf "$dest"
}
prep_extract() { rm -rf "$WORK/extract"; mkdir -p "$WORK/extract"; sync; }

# ---------------------------------------------------------------- run
make_big
note ""
note "## frames_bench $(date -u '+%Y-%m-%d %H:%M UTC')$([ "$QUICK" = 1 ] && echo ' (QUICK=1: smoke test, not for RESULTS.md)')"
note ""
note "- machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), kernel $(uname -r)"
note "- mmar: \`$MMAR\` (sha256 ${MMAR_ID%%-*}…, repo $(git -C "$SCRIPT_DIR" rev-parse --short HEAD 2> /dev/null || echo '?')), MMAR_CREATE_FLAGS='$MMAR_CREATE_FLAGS'"
note "- peers: $(dpkg-query -W -f '${Package} ${Version}, ' squashfs-tools squashfuse erofs-utils zstd fuse3 tar 2> /dev/null | sed 's/, $//')"
note "- WORK=$WORK; big file: the first $(fmt_bytes "$BIG_BYTES") of the regular files under $BIG_SOURCE; trees: ${TREES[*]}"
note "- RUNS=$RUNS, LIMIT=${LIMIT} s, DROP_CACHES=$DROP_CACHES"
for s in create cat mount extract; do
  want "$s" || continue
  echo "== $s" >&2
  "section_$s"
done
unmount_all
note ""
echo "results appended to $RESULTS" >&2
