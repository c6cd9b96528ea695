# SPDX-License-Identifier: GPL-3.0-or-later
"""Minimal reader/writer of thin-pool binary metadata, for tests only.

Follows docs/thin-metadata-format.md: checksums (section 2), superblock
(3), btree nodes (4), thin trees (5) and space maps (6).  Nothing here is
clever or fast; it is just enough to locate a block of a given kind, change
it and re-checksum it, so that the damage generator and the held-root
builder can produce precise, known faults.
"""

import os
import struct

BLOCK_SIZE = 4096

CSUM_SUPERBLOCK = 160774
CSUM_NODE = 121107
CSUM_BITMAP = 240779
CSUM_INDEX = 160478

SB_MAGIC = 27022010
FLAG_NEEDS_CHECK = 1
NODE_INTERNAL = 1
NODE_LEAF = 2

ENTRIES_PER_BITMAP = 16320
MD_INDEX_ENTRIES = 255

# ----------------------------------------------------------------
# CRC-32C, raw register (init ~0, no final inversion), table driven.

def _make_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


_TABLE = _make_table()


def crc32c_raw(data, crc=0xFFFFFFFF):
    """Raw CRC-32C register after processing data (no final inversion)."""
    table = _TABLE
    for c in data:
        crc = table[(crc ^ c) & 0xFF] ^ (crc >> 8)
    return crc


def block_checksum(block, xor):
    """The checksum a block should carry (bytes 4..4095, xor constant)."""
    return crc32c_raw(memoryview(block)[4:BLOCK_SIZE]) ^ xor


def stored_checksum(block):
    return struct.unpack_from('<I', block, 0)[0]


def checksum_ok(block, xor):
    return stored_checksum(block) == block_checksum(block, xor)


def rechecksum(block, xor):
    """Recompute and store the checksum of a bytearray block in place."""
    struct.pack_into('<I', block, 0, block_checksum(block, xor))
    return block


# ----------------------------------------------------------------
# Superblock

_SB_FIELDS = [
    # name, offset, struct format
    ('csum', 0, '<I'),
    ('flags', 4, '<I'),
    ('blocknr', 8, '<Q'),
    ('magic', 32, '<Q'),
    ('version', 40, '<I'),
    ('time', 44, '<I'),
    ('trans_id', 48, '<Q'),
    ('metadata_snap', 56, '<Q'),
    ('data_mapping_root', 320, '<Q'),
    ('device_details_root', 328, '<Q'),
    ('data_block_size', 336, '<I'),
    ('metadata_block_size', 340, '<I'),
    ('metadata_nr_blocks', 344, '<Q'),
    ('compat_flags', 352, '<I'),
    ('compat_ro_flags', 356, '<I'),
    ('incompat_flags', 360, '<I'),
]
SB_FIELD = {name: (off, fmt) for name, off, fmt in _SB_FIELDS}

DATA_SM_ROOT_OFFSET = 64
METADATA_SM_ROOT_OFFSET = 192
SM_ROOT_BLOB_SIZE = 128


class SmRoot:
    """First 32 bytes of a space-map root blob."""

    def __init__(self, nr_blocks, nr_allocated, bitmap_root, ref_count_root):
        self.nr_blocks = nr_blocks
        self.nr_allocated = nr_allocated
        self.bitmap_root = bitmap_root
        self.ref_count_root = ref_count_root

    @classmethod
    def unpack(cls, block, offset):
        return cls(*struct.unpack_from('<QQQQ', block, offset))

    def pack_into(self, block, offset):
        struct.pack_into('<QQQQ', block, offset, self.nr_blocks,
                         self.nr_allocated, self.bitmap_root,
                         self.ref_count_root)

    def __repr__(self):
        return ('SmRoot(nr_blocks=%d, nr_allocated=%d, bitmap_root=%d, '
                'ref_count_root=%d)' % (self.nr_blocks, self.nr_allocated,
                                        self.bitmap_root, self.ref_count_root))


class Superblock:
    """Decoded view of a superblock; pack() writes the fields back."""

    def __init__(self, block):
        self.raw = bytearray(block)
        for name, off, fmt in _SB_FIELDS:
            setattr(self, name, struct.unpack_from(fmt, self.raw, off)[0])
        self.data_sm = SmRoot.unpack(self.raw, DATA_SM_ROOT_OFFSET)
        self.metadata_sm = SmRoot.unpack(self.raw, METADATA_SM_ROOT_OFFSET)

    def pack(self, checksum=True):
        """Return the block with every field written back (and re-checksummed)."""
        for name, off, fmt in _SB_FIELDS:
            if name != 'csum':
                struct.pack_into(fmt, self.raw, off, getattr(self, name))
        self.data_sm.pack_into(self.raw, DATA_SM_ROOT_OFFSET)
        self.metadata_sm.pack_into(self.raw, METADATA_SM_ROOT_OFFSET)
        if checksum:
            rechecksum(self.raw, CSUM_SUPERBLOCK)
        self.csum = stored_checksum(self.raw)
        return self.raw


# ----------------------------------------------------------------
# Btree nodes

def max_entries_for(value_size):
    return (BLOCK_SIZE - 32) // (8 + value_size) // 3 * 3


class Node:
    """Decoded btree node.  keys/values are lists; values are raw bytes."""

    HEADER = '<IIQIIII'

    def __init__(self, block, blocknr=None):
        self.raw = bytearray(block)
        (self.csum, self.flags, self.blocknr, self.nr_entries,
         self.max_entries, self.value_size,
         self.padding) = struct.unpack_from(self.HEADER, self.raw, 0)
        self.location = blocknr
        n = self.nr_entries
        if (n > self.max_entries or
                32 + (8 + self.value_size) * self.max_entries > BLOCK_SIZE):
            raise ValueError('node %s: bad header (nr_entries %d, max %d, '
                             'value_size %d)' % (blocknr, n, self.max_entries,
                                                 self.value_size))
        self.keys = list(struct.unpack_from('<%dQ' % n, self.raw, 32))
        vs = self.value_size
        base = self.values_offset()
        self.values = [bytes(self.raw[base + i * vs: base + (i + 1) * vs])
                       for i in range(n)]

    def values_offset(self):
        return 32 + 8 * self.max_entries

    def key_offset(self, i):
        return 32 + 8 * i

    def value_offset(self, i):
        return self.values_offset() + i * self.value_size

    @property
    def is_leaf(self):
        return self.flags == NODE_LEAF

    @property
    def is_internal(self):
        return self.flags == NODE_INTERNAL

    def u64_values(self):
        return [struct.unpack('<Q', v)[0] for v in self.values]

    def pack(self, checksum=True):
        """Write header, keys and values back (slots beyond nr_entries kept)."""
        struct.pack_into(self.HEADER, self.raw, 0, self.csum, self.flags,
                         self.blocknr, self.nr_entries, self.max_entries,
                         self.value_size, self.padding)
        for i, k in enumerate(self.keys):
            struct.pack_into('<Q', self.raw, self.key_offset(i), k)
        for i, v in enumerate(self.values):
            off = self.value_offset(i)
            self.raw[off:off + self.value_size] = v
        if checksum:
            rechecksum(self.raw, CSUM_NODE)
        self.csum = stored_checksum(self.raw)
        return self.raw

    def remove_entry(self, i):
        """Remove entry i, keeping the layout as the kernel would."""
        del self.keys[i]
        del self.values[i]
        self.nr_entries -= 1
        # zero the now unused last slots so no stale entry remains visible
        n = self.nr_entries
        struct.pack_into('<Q', self.raw, self.key_offset(n), 0)
        off = self.value_offset(n)
        self.raw[off:off + self.value_size] = bytes(self.value_size)


# ----------------------------------------------------------------
# Device details and block_time

def unpack_details(value):
    """(mapped_blocks, transaction_id, creation_time, snapshotted_time)"""
    return struct.unpack('<QQII', value)


def pack_details(mapped, trans, ctime, stime):
    return struct.pack('<QQII', mapped, trans, ctime, stime)


def unpack_block_time(value):
    bt = struct.unpack('<Q', value)[0] if isinstance(value, (bytes, bytearray)) else value
    return bt >> 24, bt & 0xFFFFFF


# ----------------------------------------------------------------
# Space maps

def bitmap_get(block, entry):
    """Count stored for entry of a bitmap block (3 = see ref-count tree)."""
    word = struct.unpack_from('<Q', block, 16 + (entry // 32) * 8)[0]
    p = (entry % 32) * 2
    return (((word >> p) & 1) << 1) | ((word >> (p + 1)) & 1)


def bitmap_set(block, entry, value):
    off = 16 + (entry // 32) * 8
    word = struct.unpack_from('<Q', block, off)[0]
    p = (entry % 32) * 2
    word &= ~(3 << p)
    word |= ((value >> 1) & 1) << p
    word |= (value & 1) << (p + 1)
    struct.pack_into('<Q', block, off, word)


def pack_index_entry(blocknr, nr_free, none_free_before):
    return struct.pack('<QII', blocknr, nr_free, none_free_before)


def unpack_index_entry(value):
    return struct.unpack('<QII', value)


class IndexEntryRef:
    """Where a space-map index entry lives, so that it can be rewritten.

    kind is 'md' (the metadata SM index block) or 'data' (a leaf of the data
    SM index tree); container is the block holding the entry; slot is the
    entry number in it."""

    def __init__(self, kind, container, slot, bitmap, nr_free,
                 none_free_before, first_block):
        self.kind = kind
        self.container = container
        self.slot = slot
        self.bitmap = bitmap
        self.nr_free = nr_free
        self.none_free_before = none_free_before
        self.first_block = first_block

    def __repr__(self):
        return ('IndexEntryRef(%s, container=%d, slot=%d, bitmap=%d, '
                'nr_free=%d, nfb=%d)' % (self.kind, self.container, self.slot,
                                         self.bitmap, self.nr_free,
                                         self.none_free_before))


# ----------------------------------------------------------------
# The image

class Metadata:
    """A metadata file opened for reading (and optionally writing)."""

    def __init__(self, path, writable=False):
        self.path = path
        self.writable = writable
        self.fd = os.open(path, os.O_RDWR if writable else os.O_RDONLY)
        self.nr_blocks_file = os.fstat(self.fd).st_size // BLOCK_SIZE

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- raw blocks
    def read(self, b):
        data = os.pread(self.fd, BLOCK_SIZE, b * BLOCK_SIZE)
        if len(data) != BLOCK_SIZE:
            raise IOError('short read of block %d' % b)
        return bytearray(data)

    def write(self, b, data):
        assert self.writable, 'image opened read-only'
        assert len(data) == BLOCK_SIZE
        os.pwrite(self.fd, bytes(data), b * BLOCK_SIZE)

    # -- typed access
    def superblock(self, b=0):
        return Superblock(self.read(b))

    def write_superblock(self, sb, b=0):
        self.write(b, sb.pack())

    def node(self, b):
        return Node(self.read(b), b)

    def write_node(self, node, checksum=True):
        self.write(node.location, node.pack(checksum))

    # -- btrees
    def walk(self, root):
        """Yield (node, depth, path) for every node, pre-order, each once.

        path is a list of (parent_block, index) from the root."""
        seen = set()
        stack = [(root, 0, [])]
        while stack:
            b, depth, path = stack.pop()
            if b in seen:
                continue
            seen.add(b)
            n = self.node(b)
            yield n, depth, path
            if n.is_internal:
                children = n.u64_values()
                for i in reversed(range(len(children))):
                    stack.append((children[i], depth + 1, path + [(b, i)]))

    def leaves(self, root):
        """(node, path) of every leaf of a tree, in key order."""
        return [(n, p) for n, _, p in self.walk(root) if n.is_leaf]

    def internal_nodes(self, root):
        return [(n, p) for n, _, p in self.walk(root) if n.is_internal]

    def tree_items(self, root):
        """All (key, value bytes) of a tree in key order."""
        out = []
        for n, _ in self.leaves(root):
            out.extend(zip(n.keys, n.values))
        return out

    def tree_blocks(self, root):
        return [n.location for n, _, _ in self.walk(root)]

    def lookup(self, root, key):
        """Value bytes for key, or None."""
        b = root
        while True:
            n = self.node(b)
            i = None
            for j, k in enumerate(n.keys):
                if k <= key:
                    i = j
                else:
                    break
            if i is None:
                return None
            if n.is_internal:
                b = n.u64_values()[i]
            else:
                return n.values[i] if n.keys[i] == key else None

    # -- thin trees
    def device_roots(self, sb=None):
        """{dev_id: bottom-level root block} from the top-level mapping tree."""
        sb = sb or self.superblock()
        return {k: struct.unpack('<Q', v)[0]
                for k, v in self.tree_items(sb.data_mapping_root)}

    def device_details(self, sb=None):
        sb = sb or self.superblock()
        return {k: unpack_details(v)
                for k, v in self.tree_items(sb.device_details_root)}

    def mappings(self, dev, sb=None):
        """[(virtual block, data block, time)] of one device."""
        root = self.device_roots(sb)[dev]
        out = []
        for k, v in self.tree_items(root):
            d, t = unpack_block_time(v)
            out.append((k, d, t))
        return out

    # -- space maps
    def metadata_index_entries(self, sb=None):
        """IndexEntryRef for every bitmap of the metadata space map."""
        sb = sb or self.superblock()
        sm = sb.metadata_sm
        idx = self.read(sm.bitmap_root)
        nr_bitmaps = -(-sm.nr_blocks // ENTRIES_PER_BITMAP)
        out = []
        for j in range(min(nr_bitmaps, MD_INDEX_ENTRIES)):
            bnr, nf, nfb = unpack_index_entry(idx[16 + 16 * j: 32 + 16 * j])
            if bnr == 0:
                break
            out.append(IndexEntryRef('md', sm.bitmap_root, j, bnr, nf, nfb,
                                     j * ENTRIES_PER_BITMAP))
        return out

    def data_index_entries(self, sb=None):
        """IndexEntryRef for every bitmap of the data space map."""
        sb = sb or self.superblock()
        out = []
        for leaf, _ in self.leaves(sb.data_sm.bitmap_root):
            for slot, (k, v) in enumerate(zip(leaf.keys, leaf.values)):
                bnr, nf, nfb = unpack_index_entry(v)
                out.append(IndexEntryRef('data', leaf.location, slot, bnr, nf,
                                         nfb, k * ENTRIES_PER_BITMAP))
        return out

    def _entry_for(self, entries, block):
        j = block // ENTRIES_PER_BITMAP
        e = entries[j]
        assert e.first_block == j * ENTRIES_PER_BITMAP
        return e

    def sm_count(self, kind, block, sb=None):
        """Reference count of a metadata ('md') or data ('data') block."""
        sb = sb or self.superblock()
        entries = (self.metadata_index_entries(sb) if kind == 'md'
                   else self.data_index_entries(sb))
        e = self._entry_for(entries, block)
        v = bitmap_get(self.read(e.bitmap), block - e.first_block)
        if v < 3:
            return v
        root = (sb.metadata_sm if kind == 'md' else sb.data_sm).ref_count_root
        val = self.lookup(root, block)
        return struct.unpack('<I', val)[0] if val is not None else None

    def sm_counts_range(self, kind, sb=None):
        """Yield (block, bitmap value 0..3) for every managed block."""
        sb = sb or self.superblock()
        sm = sb.metadata_sm if kind == 'md' else sb.data_sm
        entries = (self.metadata_index_entries(sb) if kind == 'md'
                   else self.data_index_entries(sb))
        for e in entries:
            bm = self.read(e.bitmap)
            last = min(ENTRIES_PER_BITMAP, sm.nr_blocks - e.first_block)
            for i in range(last):
                yield e.first_block + i, bitmap_get(bm, i)

    def set_sm_count(self, kind, block, value, sb=None, fix_summary=True):
        """Set the bitmap count (0..2) of block, re-checksum the bitmap.

        With fix_summary the index entry (nr_free, none_free_before) and the
        superblock's nr_allocated follow the change, so that the only
        inconsistency introduced is the count itself.  Returns the old
        bitmap value."""
        assert 0 <= value <= 2
        sb = sb or self.superblock()
        entries = (self.metadata_index_entries(sb) if kind == 'md'
                   else self.data_index_entries(sb))
        e = self._entry_for(entries, block)
        bm = self.read(e.bitmap)
        i = block - e.first_block
        old = bitmap_get(bm, i)
        assert old < 3, 'count held in the ref-count tree: not supported'
        bitmap_set(bm, i, value)
        rechecksum(bm, CSUM_BITMAP)
        self.write(e.bitmap, bm)
        if fix_summary and (old == 0) != (value == 0):
            delta = 1 if old == 0 else -1
            nr_free = e.nr_free - delta
            nfb = e.none_free_before
            if delta > 0 and i == nfb:
                nfb = i + 1
                while nfb < ENTRIES_PER_BITMAP and bitmap_get(bm, nfb) != 0:
                    nfb += 1
            elif delta < 0 and i < nfb:
                nfb = i
            self._write_index_entry(e, e.bitmap, nr_free, nfb)
            sm = sb.metadata_sm if kind == 'md' else sb.data_sm
            sm.nr_allocated += delta
            self.write_superblock(sb)
        return old

    def _write_index_entry(self, e, bitmap, nr_free, nfb):
        if e.kind == 'md':
            idx = self.read(e.container)
            off = 16 + 16 * e.slot
            idx[off:off + 16] = pack_index_entry(bitmap, nr_free, nfb)
            rechecksum(idx, CSUM_INDEX)
            self.write(e.container, idx)
        else:
            leaf = self.node(e.container)
            leaf.values[e.slot] = pack_index_entry(bitmap, nr_free, nfb)
            self.write_node(leaf)

    def find_free_metadata_block(self, sb=None, start=1):
        """First block with count 0 in the metadata space map."""
        sb = sb or self.superblock()
        for b, v in self.sm_counts_range('md', sb):
            if b >= start and v == 0:
                return b
        raise RuntimeError('no free metadata block')


# ----------------------------------------------------------------
# Helpers on whole files

def read_flags(path):
    with Metadata(path) as md:
        return md.superblock().flags


def set_needs_check(path, value=True):
    """Set or clear the NEEDS_CHECK bit of block 0 and re-checksum."""
    with Metadata(path, writable=True) as md:
        sb = md.superblock()
        if value:
            sb.flags |= FLAG_NEEDS_CHECK
        else:
            sb.flags &= ~FLAG_NEEDS_CHECK
        md.write_superblock(sb)
