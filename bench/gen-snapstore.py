#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writes a dm-snapshot persistent exception store for the snapshot
benchmark, laid out as the kernel's dm-snap-persistent.c does: chunk 0
the header, metadata areas at 1 + a * (epa + 1), new chunks handed out in
order skipping the areas, the area after a full last one zeroed.

  gen-snapstore.py COW ORIGIN_BYTES CHUNK_SECTORS PERCENT random|clustered SEED

random: PERCENT of the origin's chunks, chosen at random, written in a
random order (every entry its own extent).  clustered: runs of 256
chunks (1 MiB at 4 KiB chunks) at random places, in a random order.
Data chunks hold pseudo-random bytes.  Prints "entries N".
"""

import os
import random
import struct
import sys


def main():
    cow, origin_bytes, cs, percent, shape, seed = sys.argv[1:7]
    origin_bytes, cs, percent, seed = int(origin_bytes), int(cs), float(percent), int(seed)
    cb = cs * 512
    epa = cb // 16
    nr_origin = origin_bytes // cb
    want = int(nr_origin * percent / 100)
    rnd = random.Random(seed)
    if shape == 'random':
        olds = rnd.sample(range(nr_origin), want)
    else:
        run = 256
        starts = rnd.sample(range(nr_origin // run), want // run)
        olds = [s * run + i for s in starts for i in range(run)]
    n = len(olds)
    areas = n // epa + 1
    total = 1 + areas * (epa + 1)
    with open(cow, 'wb') as f:
        f.truncate(total * cb)
        # data: pseudo-random, written a few MiB at a time
        step = 64 << 20
        off = 0
        while off < total * cb:
            k = min(step, total * cb - off)
            f.seek(off)
            f.write(rnd.randbytes(k))
            off += k
        f.seek(0)
        f.write(struct.pack('<IIII', 0x70416e53, 1, 1, cs) + bytes(cb - 16))
        new = 2
        for a in range(areas):
            ents = olds[a * epa:(a + 1) * epa]
            buf = bytearray(cb)
            for i, old in enumerate(ents):
                struct.pack_into('<QQ', buf, i * 16, old, new)
                new += 1
                if (new - 1) % (epa + 1) == 0:
                    new += 1
            f.seek((1 + a * (epa + 1)) * cb)
            f.write(buf)
        f.truncate(max(new, 1 + (areas - 1) * (epa + 1) + 1) * cb)
    print('entries %d' % n)


main()
