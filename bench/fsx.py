#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""fsx-style load on one file, checked against an in-memory model.

  fsx.py FILE OPS MAX_SIZE [--fsync-every N] [--reopen-every N] [--seed S]

Random writes, reads, mapped reads, mapped writes and truncates on FILE,
every read compared with the model; fsync after every N operations, close and
reopen every N. Exits 1 at the first mismatch. Used by bench/rw_bench.sh to
measure the writable mount against tmpfs.
"""
import argparse
import mmap
import os
import random
import sys

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("ops", type=int)
    ap.add_argument("max_size", type=int)
    ap.add_argument("--fsync-every", type=int, default=0)
    ap.add_argument("--reopen-every", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    model = bytearray()
    fd = os.open(a.file, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    for op in range(1, a.ops + 1):
        kind = rng.randrange(6)
        off = rng.randrange(a.max_size)
        length = 1 + rng.randrange(min(a.max_size, 65536))
        if kind <= 1:
            n = min(length, a.max_size - off)
            data = rng.randbytes(n)
            os.pwrite(fd, data, off)
            if len(model) < off + n:
                model.extend(bytes(off + n - len(model)))
            model[off:off + n] = data
        elif kind == 2:
            got = os.pread(fd, length, off)
            if got != bytes(model[off:off + length]):
                print(f"fsx: op {op}: read mismatch at {off}", file=sys.stderr)
                return 1
        elif kind == 3 and model:
            with mmap.mmap(fd, len(model), mmap.MAP_SHARED, mmap.PROT_READ) as m:
                if m[:] != bytes(model):
                    print(f"fsx: op {op}: mapped read mismatch", file=sys.stderr)
                    return 1
        elif kind == 4 and model:
            at = off % len(model)
            n = min(length, len(model) - at)
            data = rng.randbytes(n)
            with mmap.mmap(fd, len(model), mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as m:
                m[at:at + n] = data
                m.flush()
            model[at:at + n] = data
        elif kind == 5:
            size = rng.randrange(a.max_size)
            os.ftruncate(fd, size)
            if size < len(model):
                del model[size:]
            else:
                model.extend(bytes(size - len(model)))
        if a.fsync_every and op % a.fsync_every == 0:
            os.fsync(fd)
        if a.reopen_every and op % a.reopen_every == 0:
            os.close(fd)
            fd = os.open(a.file, os.O_RDWR)
    os.fsync(fd)
    os.close(fd)
    with open(a.file, "rb") as f:
        if f.read() != bytes(model):
            print("fsx: final contents differ from the model", file=sys.stderr)
            return 1
    return 0

if __name__ == "__main__":
    sys.exit(main())
