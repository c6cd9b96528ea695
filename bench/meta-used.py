#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which metadata blocks of a thin pool's metadata are in use.

    meta-used.py META

Reads the superblock (block 0) and the metadata space map (its index
block and bitmaps) of the dm-thin metadata in META and prints one line of
key=value pairs:

    nr_blocks=N allocated=A used=U highest=H prefix=P extents=E

  nr_blocks  the metadata space map's size in 4 KiB blocks;
  allocated  nr_allocated as the space map root records it;
  used       blocks whose reference count is not zero, counted from the
             bitmaps (0.9.0's thin_restore leaves one block free that its
             nr_allocated counts: used = allocated - 1 there);
  highest    the highest used block; prefix = highest + 1 blocks, the
             contiguous stretch 0 .. highest that holds every used block;
  extents    runs of consecutive used blocks (1: the used blocks are
             exactly the prefix).

run-bench.sh uses it for the I/O floor of thin_merge: dd of the prefix.
Python 3 standard library only; no checksums are verified (run thin_check
for that).  Exit 1 if META is not thin metadata or cannot be read, 2 on bad
usage.
"""

import struct
import sys

BLOCK = 4096
SB_MAGIC = 27022010
SM_ROOT_OFFSET = 192       # metadata_space_map_root in the superblock
ENTRIES_PER_BITMAP = (BLOCK - 16) * 4
MAX_BITMAPS = 255

# per byte of a bitmap (4 entries of 2 bits): are all 4 counts non-zero
FULL = [all((b >> (2 * i)) & 3 for i in range(4)) for b in range(256)]


def read_block(f, nr):
    f.seek(nr * BLOCK)
    data = f.read(BLOCK)
    if len(data) != BLOCK:
        raise ValueError('block %d beyond the end of the file' % nr)
    return data


def main(argv):
    if len(argv) != 1:
        sys.stderr.write(__doc__.split('\n\n')[1] + '\n')
        return 2
    with open(argv[0], 'rb') as f:
        sb = read_block(f, 0)
        magic, = struct.unpack_from('<Q', sb, 32)
        if magic != SB_MAGIC:
            raise ValueError('bad superblock magic %d' % magic)
        nr_blocks, allocated, index_root, _ = struct.unpack_from(
            '<QQQQ', sb, SM_ROOT_OFFSET)
        index = read_block(f, index_root)
        nbitmaps = (nr_blocks + ENTRIES_PER_BITMAP - 1) // ENTRIES_PER_BITMAP
        if nbitmaps > MAX_BITMAPS:
            raise ValueError('%d metadata blocks: too many bitmaps'
                             % nr_blocks)
        used = 0
        highest = -1
        extents = 0
        last = -2          # the last used block seen
        for i in range(nbitmaps):
            blocknr, = struct.unpack_from('<Q', index, 16 + 16 * i)
            bitmap = read_block(f, blocknr)
            base = i * ENTRIES_PER_BITMAP
            limit = min(ENTRIES_PER_BITMAP, nr_blocks - base)
            body = bitmap[16:16 + (limit + 3) // 4]
            for j, byte in enumerate(body):
                if not byte:
                    continue
                if FULL[byte]:
                    first = base + 4 * j
                    if first != last + 1:
                        extents += 1
                    last = first + 3
                    used += 4
                    continue
                for k in range(4):
                    if (byte >> (2 * k)) & 3:
                        b = base + 4 * j + k
                        if b != last + 1:
                            extents += 1
                        last = b
                        used += 1
            highest = max(highest, last)
        if highest >= nr_blocks:
            raise ValueError('used block %d beyond the space map (%d blocks)'
                             % (highest, nr_blocks))
    print('nr_blocks=%d allocated=%d used=%d highest=%d prefix=%d extents=%d'
          % (nr_blocks, allocated, used, highest, highest + 1, extents))
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv[1:]))
    except (OSError, ValueError, struct.error) as e:
        sys.stderr.write('meta-used.py: %s\n' % e)
        sys.exit(1)
