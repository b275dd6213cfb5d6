#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""creates.py DIR N: create N files of 100 bytes in DIR, fsync each."""
import os
import sys

d, n = sys.argv[1], int(sys.argv[2])
body = b"x" * 99 + b"\n"
for i in range(n):
    fd = os.open(os.path.join(d, f"f{i:06d}"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, body)
    os.fsync(fd)
    os.close(fd)
