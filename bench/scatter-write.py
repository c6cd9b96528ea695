#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The scattered-write floor of snapshot-bench.sh: writes, in the order
given, the destination ranges of snapshot_merge's --dd lines (seek=,
count=, bs=) to the origin, data from memory (nothing is read), one
pwrite per line, then fdatasync.  What a merge of that store cannot go
below whatever it does on the read side: the same writes, at the same
places, made durable.  Python adds about a microsecond per pwrite.

    scatter-write.py ORIGIN DD_LINES_FILE
"""
import os
import re
import sys


def main():
    origin, lines = sys.argv[1:3]
    ext = []
    bs = None
    pat = re.compile(r'\bbs=(\d+) .*\bseek=(\d+) count=(\d+)')
    with open(lines) as f:
        for line in f:
            m = pat.search(line)
            if m:
                bs = int(m.group(1))
                ext.append((int(m.group(2)), int(m.group(3))))
    if not ext:
        sys.exit('scatter-write: no dd lines in ' + lines)
    longest = max(n for _, n in ext) * bs
    buf = memoryview(bytes(range(256)) * (longest // 256 + 1))
    fd = os.open(origin, os.O_WRONLY)
    try:
        for seek, n in ext:
            os.pwrite(fd, buf[:n * bs], seek * bs)
        os.fdatasync(fd)
    finally:
        os.close(fd)


if __name__ == '__main__':
    main()
