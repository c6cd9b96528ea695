# SPDX-License-Identifier: GPL-3.0-or-later
"""dm-snapshot persistent exception stores for tests: a builder that lays
out a store as the kernel's dm-snap-persistent.c does, and an independent
model of a merge (apply the table to the origin by hand, entry by entry,
in table order, so the last entry for a chunk wins).

Layout (doc/snapshot-format.md): chunk 0 header of four le32 (magic
0x70416e53, valid, version 1, chunk size in sectors); metadata area a at
chunk 1 + a * (epa + 1) with epa = chunk_bytes // 16 entries of two le64
(old_chunk, new_chunk); data chunks follow their area; new_chunk == 0 ends
the table.
"""

import os
import random
import struct

MAGIC = 0x70416e53
SECTOR = 512


def epa(chunk_sectors):
    return chunk_sectors * SECTOR // 16


def area_chunk(chunk_sectors, area):
    return 1 + area * (epa(chunk_sectors) + 1)


def is_metadata(chunk_sectors, c):
    return c == 0 or (c - 1) % (epa(chunk_sectors) + 1) == 0


def chunk_data(old, seq, size):
    """Recognisable content of the copy of origin chunk old made by entry seq."""
    rnd = random.Random(old * 1000003 + seq)
    return rnd.randbytes(size)


class Store:
    """Builds a store file.  entries: list of old_chunks, in commit order;
    new chunks are given out as the kernel gives them (next free chunk,
    skipping metadata areas) unless explicit (old, new) pairs are given
    with raw_entries."""

    def __init__(self, chunk_sectors=8, valid=1, version=1, magic=MAGIC,
                 header_chunk_sectors=None):
        self.cs = chunk_sectors
        self.cb = chunk_sectors * SECTOR
        self.valid = valid
        self.version = version
        self.magic = magic
        self.hdr_cs = chunk_sectors if header_chunk_sectors is None \
            else header_chunk_sectors
        self.table = []         # (old, new) in table order
        self.data = {}          # new -> bytes
        self.next_free = 2      # header and area 0

    def add(self, old, data=None):
        new = self.next_free
        self.next_free += 1
        if is_metadata(self.cs, self.next_free):
            self.next_free += 1
        seq = len(self.table)
        self.table.append((old, new))
        self.data[new] = data if data is not None else chunk_data(old, seq, self.cb)
        return new

    def add_many(self, olds):
        for o in olds:
            self.add(o)
        return self

    def nr_chunks(self):
        """Chunks the kernel would need: through the last data chunk, and the
        next area when the last one is full (it zeroes it)."""
        n = max(self.next_free, 2)
        e = epa(self.cs)
        if self.table and len(self.table) % e == 0:
            n = max(n, area_chunk(self.cs, len(self.table) // e) + 1)
        return n

    def write(self, path, spare_chunks=0, table=None, garbage_after=False):
        """Writes the store; table overrides the entries written (damage),
        data chunks are those of add()."""
        table = self.table if table is None else table
        e = epa(self.cs)
        size = (self.nr_chunks() + spare_chunks) * self.cb
        with open(path, 'wb') as f:
            f.truncate(size)
            f.seek(0)
            f.write(struct.pack('<IIII', self.magic, self.valid, self.version,
                                self.hdr_cs))
            for i, (old, new) in enumerate(table):
                a, k = divmod(i, e)
                f.seek(area_chunk(self.cs, a) * self.cb + k * 16)
                f.write(struct.pack('<QQ', old, new))
            if garbage_after:
                a, k = divmod(len(table) + 1, e)
                f.seek(area_chunk(self.cs, a) * self.cb + k * 16)
                f.write(struct.pack('<QQ', 7, 9))
            for new, d in self.data.items():
                if new * self.cb + len(d) <= size:
                    f.seek(new * self.cb)
                    f.write(d)
        return path

    def clear_tail(self, path, n):
        """What the kernel's snapshot-merge target does after merging the
        last n entries: zero them in place."""
        e = epa(self.cs)
        with open(path, 'r+b') as f:
            for i in range(len(self.table) - n, len(self.table)):
                a, k = divmod(i, e)
                f.seek(area_chunk(self.cs, a) * self.cb + k * 16)
                f.write(bytes(16))


# ----------------------------------------------------------------
# The model: read the COW by hand and apply it

def read_table(cow_path):
    """(chunk_sectors, [(old, new), ...]) of a store, table order."""
    with open(cow_path, 'rb') as f:
        magic, valid, version, cs = struct.unpack('<IIII', f.read(16))
        assert magic == MAGIC and version == 1
        cb = cs * SECTOR
        size = os.fstat(f.fileno()).st_size
        table = []
        area = 0
        while True:
            loc = area_chunk(cs, area)
            if (loc + 1) * cb > size:
                break
            f.seek(loc * cb)
            raw = f.read(cb)
            full = True
            for k in range(cb // 16):
                old, new = struct.unpack_from('<QQ', raw, k * 16)
                if new == 0:
                    full = False
                    break
                table.append((old, new))
            if not full:
                break
            area += 1
    return cs, table


def model_merge(cow_path, origin_path):
    """The origin's bytes after applying the store, entry by entry."""
    cs, table = read_table(cow_path)
    cb = cs * SECTOR
    with open(origin_path, 'rb') as f:
        origin = bytearray(f.read())
    with open(cow_path, 'rb') as f:
        for old, new in table:
            f.seek(new * cb)
            d = f.read(cb)
            start = old * cb
            end = min(start + cb, len(origin))
            origin[start:end] = d[:end - start]
    return bytes(origin)


def coalesced(table):
    """Runs of consecutive (old, new) in table order: (old, new, count)."""
    runs = []
    for old, new in table:
        if runs and old == runs[-1][0] + runs[-1][2] and \
                new == runs[-1][1] + runs[-1][2]:
            runs[-1][2] += 1
        else:
            runs.append([old, new, 1])
    return [tuple(r) for r in runs]


def random_origin(path, size, seed=1):
    rnd = random.Random(seed)
    with open(path, 'wb') as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(rnd.randbytes(n))
            left -= n
    return path


_cli_fixture = None


def cli_fixture():
    """A valid store (4 KiB chunks, 600 entries over 3 areas, origin chunks
    below 2048: it fits an 8 MiB origin), built once per test run."""
    global _cli_fixture
    if _cli_fixture is None:
        from . import tools
        rnd = random.Random(14)
        st = Store(8).add_many([rnd.randrange(2048) for _ in range(600)])
        _cli_fixture = st.write(os.path.join(tools.temp_dir('snap-'), 'cow'))
    return _cli_fixture
