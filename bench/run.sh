#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# Benchmarks, each against its peer in the same run. Writes bench/out/.
#   bench/run.sh BUILD_DIR [quick]
# Sections:
#   1. in-process: open + lookup among 10k/100k/1M members (mmar vs libctf),
#      warm lookups, memory at open, raw-member read throughput vs memcpy/pread
#   2. one member out of N through the command line: mmar cat vs tar -xOf vs unzip -p
#   3. creating an archive of a real tree: mmar vs tar -cf vs mksquashfs -comp zstd
#   4. BTF on a real kernel: open+find and all-modules loops vs libbpf, dump vs bpftool
#   5. ELF mapping and exec; 6. mounted archives vs squashfuse
#   7. CTF: the running kernel's BTF as a CTF archive (ctf from-btf) vs libctf's
#      serialisation; open + find in it vs ctf_arc_open + ctf_dict_open +
#      ctf_lookup_by_name; ctf dump vs objdump --ctf
set -euo pipefail
BUILD=${1:?usage: bench/run.sh BUILD_DIR [quick]}
MODE=${2:-full}
cd "$(dirname "$0")/.."
OUT=$PWD/bench/out
DATA=$OUT/data
mkdir -p "$DATA"
export MMAR_BENCH_DATA=$DATA
MMAR=$BUILD/tools/mmar/mmar
SIZES=(10000 100000 1000000)
[ "$MODE" = quick ] && SIZES=(10000)

echo "== 1. in-process (Google Benchmark)"
filter='.*'
[ "$MODE" = quick ] && filter='/10000$|Read'
"$BUILD/bench/archive_bench" --benchmark_filter="$filter" --benchmark_out="$OUT/archive_bench.json" \
  --benchmark_out_format=json --benchmark_min_time=0.2 | tee "$OUT/archive_bench.txt"
# The throughput pair is sensitive to neighbours on a shared machine: medians of 5.
"$BUILD/bench/archive_bench" --benchmark_filter='Read(PlainFileMemcpy|RawMemberViaLibrary|PlainFilePread)' \
  --benchmark_repetitions=5 --benchmark_report_aggregates_only=true | tee "$OUT/read_throughput.txt"

echo "== 2. one member out of N: mmar cat vs tar -xOf vs unzip -p"
for n in "${SIZES[@]}"; do
  # The same names and contents as archive_bench's mmar dataset.
  if [ ! -f "$DATA/n$n.tar" ] || [ ! -f "$DATA/n$n.zip" ]; then
    python3 - "$n" "$DATA" <<'EOF'
import io, sys, tarfile, zipfile
n, data = int(sys.argv[1]), sys.argv[2]
names = ["dir%03d/member%07d.o" % (i % 997, i) for i in range(n)]
with tarfile.open(f"{data}/n{n}.tar", "w", format=tarfile.GNU_FORMAT) as t:
    for i, name in enumerate(names):
        body = f"contents of member {i}\n".encode()
        info = tarfile.TarInfo(name); info.size = len(body); info.mtime = 0
        t.addfile(info, io.BytesIO(body))
with zipfile.ZipFile(f"{data}/n{n}.zip", "w", zipfile.ZIP_STORED) as z:
    for i, name in enumerate(names):
        z.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), f"contents of member {i}\n")
EOF
  fi
  name=$(printf 'dir%03d/member%07d.o' $(( (n / 3) % 997 )) $(( n / 3 )))
  # Check all three give the same bytes before timing them.
  a=$("$MMAR" cat -f "$DATA/n$n.mmar" "$name"); b=$(tar -xOf "$DATA/n$n.tar" "$name"); c=$(unzip -p "$DATA/n$n.zip" "$name")
  [ "$a" = "$b" ] && [ "$b" = "$c" ] || { echo "outputs differ for $name"; exit 1; }
  hyperfine -N --warmup 3 --runs 20 --export-json "$OUT/member_of_$n.json" \
    -n "mmar cat ($n)" "$MMAR cat -f $DATA/n$n.mmar $name" \
    -n "tar -xOf ($n)" "tar -xOf $DATA/n$n.tar $name" \
    -n "unzip -p ($n)" "unzip -p $DATA/n$n.zip $name" | tee "$OUT/member_of_$n.txt"
done

echo "== 3. create from a real tree"
TREE=${MMAR_BENCH_TREE:-/usr/lib/x86_64-linux-gnu}
[ "$MODE" = quick ] && TREE=${MMAR_BENCH_TREE:-/usr/lib/x86_64-linux-gnu/perl-base}
W=$DATA/create
mkdir -p "$W"
du -sb "$TREE" | tee "$OUT/create_tree.txt"
find "$TREE" | wc -l | sed 's/^/entries: /' | tee -a "$OUT/create_tree.txt"
cat "$(find "$TREE" -type f | head -n 2000)" >/dev/null 2>&1 || true  # warm the page cache
tar -cf /dev/null -C "$TREE" . 2>/dev/null || true
# One hyperfine call per command so each keeps its output for the size table.
timed() { # NAME RUNS OUTPUT COMMAND
  local name=$1 runs=$2 output=$3 cmd=$4
  hyperfine --runs "$runs" --prepare "rm -f $output" --export-json "$OUT/create_$(echo "$name" | tr -c 'a-z0-9' '_').json" \
    -n "$name" "$cmd" | grep -E "Time|Range" | sed "s|^|$name: |" | tee -a "$OUT/create_times.txt"
}
: > "$OUT/create_times.txt"
RAW_RUNS=5; Z3_RUNS=3; Z15_RUNS=1
[ "$MODE" = quick ] && { RAW_RUNS=2; Z3_RUNS=1; }
timed "tar -cf" $RAW_RUNS "$W/t.tar" "tar -cf $W/t.tar -C $TREE ."
timed "mmar create --compress none" $RAW_RUNS "$W/raw.mmar" "$MMAR create --compress none -f $W/raw.mmar -C $TREE ."
# mmar always fsyncs before its rename; tar does not. The same durability for tar:
timed "tar -cf + sync FILE" $RAW_RUNS "$W/t2.tar" "sh -c 'tar -cf $W/t2.tar -C $TREE . && sync $W/t2.tar'"
timed "mmar create (zstd 3)" $Z3_RUNS "$W/z3.mmar" "$MMAR create -f $W/z3.mmar -C $TREE ."
timed "mksquashfs -comp zstd -Xcompression-level 3" $Z3_RUNS "$W/sq3.sqfs" \
  "mksquashfs $TREE $W/sq3.sqfs -comp zstd -Xcompression-level 3 -noappend -quiet -no-progress -processors 2"
timed "mmar create --level 15" $Z15_RUNS "$W/z15.mmar" "$MMAR create --level 15 -f $W/z15.mmar -C $TREE ."
timed "mksquashfs -comp zstd (level 15)" $Z15_RUNS "$W/sq15.sqfs" \
  "mksquashfs $TREE $W/sq15.sqfs -comp zstd -noappend -quiet -no-progress -processors 2"
{
  echo "sizes (bytes):"
  for f in t.tar raw.mmar z3.mmar sq3.sqfs z15.mmar sq15.sqfs; do printf '  %-10s %12s\n' "$f" "$(stat -c %s "$W/$f")"; done
  awk -v a="$(stat -c %s "$W/z3.mmar")" -v b="$(stat -c %s "$W/sq3.sqfs")" \
    'BEGIN { printf "  mmar zstd-3  / squashfs zstd-3  = %.4f\n", a / b }'
  awk -v a="$(stat -c %s "$W/z15.mmar")" -v b="$(stat -c %s "$W/sq15.sqfs")" \
    'BEGIN { printf "  mmar zstd-15 / squashfs zstd-15 = %.4f\n", a / b }'
} | tee "$OUT/create_sizes.txt"
"$MMAR" verify -q -f "$W/z15.mmar" && echo "z15.mmar verifies"

echo "== 4. BTF: real kernel (scripts/kernel-btf.sh) vs libbpf and bpftool"
KB=$PWD/build/kernel-btf
if scripts/kernel-btf.sh "$KB"; then
  MMAR_KERNEL_BTF=$KB "$BUILD/bench/btf_bench" --benchmark_min_time=0.5 --benchmark_out="$OUT/btf_bench.json" \
    --benchmark_out_format=json | tee "$OUT/btf_bench.txt"
  hyperfine -N --warmup 2 --runs 10 --output=pipe --export-json "$OUT/btf_dump.json" \
    -n "mmar btf dump vmlinux" "$MMAR btf dump $KB/vmlinux.btf" \
    -n "bpftool btf dump file vmlinux" "bpftool btf dump file $KB/vmlinux.btf" | tee "$OUT/btf_dump.txt"
  hyperfine -N --warmup 2 --runs 10 --output=pipe --export-json "$OUT/btf_dump_c.json" \
    -n "mmar btf dump --format c vmlinux" "$MMAR btf dump --format c $KB/vmlinux.btf" \
    -n "bpftool btf dump file vmlinux format c" "bpftool btf dump file $KB/vmlinux.btf format c" | tee "$OUT/btf_dump_c.txt"
else
  echo "skipped: no kernel package BTF (see scripts/kernel-btf.sh)"
fi
"$BUILD/bench/mmap_floor" "$PWD/build/kernel-btf/vmlinux.btf" 3000 2>/dev/null | tee "$OUT/mmap_floor.txt" || true

echo "== 5. ELF mapping (issue 4): map_object vs ld.so (dlmopen), system calls, exec latency"
LIBC=$(gcc -print-file-name=libc.so.6 2>/dev/null); LIBC=$(readlink -f "$LIBC")
[ -f "$LIBC" ] || LIBC=/lib/x86_64-linux-gnu/libc.so.6
E=$W/elf; rm -rf "$E"; mkdir -p "$E/tree/lib" "$E/tree/bin"
cp "$LIBC" "$E/tree/lib/libc.so.6"; cp /usr/bin/ls /bin/busybox "$E/tree/bin/" 2>/dev/null || cp /usr/bin/ls "$E/tree/bin/"
"$MMAR" create -f "$E/raw.mmar" --compress none -C "$E/tree" lib bin
"$BUILD/bench/elf_map_probe" time "$LIBC" "$E/raw.mmar" lib/libc.so.6 | tee "$OUT/elf_map_time.txt"
count_calls() { awk '/getppid/{n++; next} n==1' "$1" | sed 's/^[0-9]* *//; s/(.*//' | sort | uniq -c; }
{
  strace -f -o "$E/st.map" "$BUILD/bench/elf_map_probe" once map "$LIBC"
  echo "map_object(libc.so.6 file, interpret):"; count_calls "$E/st.map"
  strace -f -o "$E/st.member" "$BUILD/bench/elf_map_probe" once member "$LIBC" "$E/raw.mmar" lib/libc.so.6
  echo "map_member(archive:lib/libc.so.6, interpret):"; count_calls "$E/st.member"
  strace -f -o "$E/st.dl" "$BUILD/bench/elf_map_probe" once dlmopen "$LIBC"
  echo "ld.so: dlmopen(LM_ID_NEWLM, libc.so.6):"; count_calls "$E/st.dl"
} | tee "$OUT/elf_map_syscalls.txt"
hyperfine -N --warmup 5 --runs 40 --export-json "$OUT/exec.json" \
  -n "ls (direct)" "/usr/bin/ls $PWD/docs" \
  -n "mmar exec archive:bin/ls" "$MMAR exec $E/raw.mmar:bin/ls $PWD/docs" \
  -n "mmar extract + ls" --prepare "rm -rf $E/x" "sh -c '$MMAR extract -f $E/raw.mmar -C $E/x bin/ls && $E/x/bin/ls $PWD/docs'" \
  -n "busybox true (direct)" "/bin/busybox true" \
  -n "mmar exec archive:bin/busybox true" "$MMAR exec $E/raw.mmar:bin/busybox true" | tee "$OUT/exec.txt"

echo "== 6. Mounted archives (issue 5): mmar mount vs squashfuse, squashfuse_ll"
bench/fs_bench.sh "$BUILD" "$OUT" "$DATA/fs" "$([ "${2:-}" = quick ] && echo 10000 || echo 100000)"

echo "== 7. CTF: from-btf, open + find and dump vs libctf and objdump"
if [ -r /sys/kernel/btf/vmlinux ]; then
  C=$DATA/ctf
  mkdir -p "$C"
  "$BUILD/bench/ctf_from_btf_bench" /sys/kernel/btf/vmlinux 3 | tee "$OUT/ctf_from_btf.txt"
  "$MMAR" ctf from-btf -o "$C/vmlinux.ctfa" /sys/kernel/btf/vmlinux
  "$BUILD/bench/ctf_bench" "$C/vmlinux.ctfa" shared_ctf "struct task_struct" 200 | tee "$OUT/ctf_open_find.txt"
  # objdump reads CTF from an ELF section: the archive as .ctf of an object.
  echo 'int x;' > "$C/t.c" && gcc -c "$C/t.c" -o "$C/t.o"
  objcopy --add-section .ctf="$C/vmlinux.ctfa" "$C/t.o" "$C/vmlinux_ctf.o"
  hyperfine --warmup 1 --runs 5 --export-json "$OUT/ctf_dump.json" \
    -n "objdump --ctf (kernel)" "objdump --ctf=.ctf --ctf-parent=shared_ctf $C/vmlinux_ctf.o > /dev/null" \
    -n "mmar ctf dump (kernel)" "$MMAR ctf dump --ctf-parent shared_ctf $C/vmlinux_ctf.o > /dev/null" | tee "$OUT/ctf_dump.txt"
else
  echo "no /sys/kernel/btf/vmlinux: skipped"
fi

echo "results in $OUT"
