# SPDX-License-Identifier: GPL-3.0-or-later
"""Damage generator: precise faults in a copy of a good restored pool.

Every case is a DamageCase: a function that edits a metadata image
(lib.metadata.Metadata, opened writable) and returns a description of what
it did, plus what the tools must do with the result:

  keywords        regexes, one of which must match thin_check's stderr
                  (case-insensitive; v0.9 and 1.x wordings of sections
                  10.2/10.3 of the format doc are both accepted);
  fatal           True: still exit 1 with --ignore-non-fatal-errors;
                  False: exit 0 with it (a leak); None: not asserted;
  debian_detects  whether thin_check 0.9.0 finds it at all (some checks
                  exist only in 1.x and in ours);
  dump            'fails': thin_dump must exit 1 (a tree is damaged);
                  'same': thin_dump must print what Debian's prints (the
                  damage is in parts a dump does not read); None: only "no
                  crash, no hang" is asserted.

make(case_name) returns the path of the damaged copy of the damage_base
pool, created once per session.
"""

import os
import struct

from . import metadata as md
from . import pools, tools

BASE_POOL = 'damage_base'

CHECKSUM = [r'checksum']
BLOCKNR = [r'block ?nr', r'block number', r'blocknr']


class DamageCase:
    def __init__(self, name, apply, keywords, fatal=True, debian_detects=True,
                 dump='fails', doc=''):
        self.name = name
        self.apply = apply
        self.keywords = keywords
        self.fatal = fatal
        self.debian_detects = debian_detects
        self.dump = dump
        self.doc = doc or (apply.__doc__ or '').strip()

    def __repr__(self):
        return 'DamageCase(%s)' % self.name


# ----------------------------------------------------------------
# Locating things in the base pool

def bottom_root(img, dev=0):
    return img.device_roots()[dev]


def bottom_leaf(img, dev=0):
    """A leaf in the middle of device dev's tree (not the first, not the
    root): has both neighbours and a parent."""
    leaves = img.leaves(bottom_root(img, dev))
    assert len(leaves) >= 3, 'damage_base: device %d needs >= 3 leaves' % dev
    return leaves[len(leaves) // 2][0]


def bottom_internal(img, dev=0):
    nodes = img.internal_nodes(bottom_root(img, dev))
    assert nodes, 'damage_base: device %d needs an internal node' % dev
    return nodes[0][0]


def flip_bit(img, block, offset, bit=0):
    data = img.read(block)
    data[offset] ^= 1 << bit
    img.write(block, data)


def flip_in_node(img, node):
    # a bit of the first key: in use, and not covered by anything but the
    # checksum
    flip_bit(img, node.location, node.key_offset(0), 3)


# ----------------------------------------------------------------
# Checksum faults (no checksum fix-up)

def superblock_bitflip(img):
    """Flip a bit of the superblock's time field."""
    flip_bit(img, 0, 44, 0)
    return 'block 0, offset 44'


def bottom_leaf_bitflip(img):
    """Flip a bit in a bottom-level (mapping) leaf."""
    n = bottom_leaf(img)
    flip_in_node(img, n)
    return 'leaf %d' % n.location


def internal_node_bitflip(img):
    """Flip a bit in an internal node of a device's mapping tree."""
    n = bottom_internal(img)
    flip_in_node(img, n)
    return 'internal %d' % n.location


def details_leaf_bitflip(img):
    """Flip a bit in the device-details leaf."""
    sb = img.superblock()
    n = img.node(sb.device_details_root)
    flip_in_node(img, n)
    return 'details %d' % n.location


def top_level_leaf_bitflip(img):
    """Flip a bit in the top-level mapping leaf."""
    sb = img.superblock()
    n = img.node(sb.data_mapping_root)
    flip_bit(img, n.location, n.value_offset(0), 2)
    return 'top level %d' % n.location


def zeroed_node(img):
    """Zero a whole bottom-level leaf block."""
    n = bottom_leaf(img)
    img.write(n.location, bytearray(md.BLOCK_SIZE))
    return 'leaf %d zeroed' % n.location


def metadata_bitmap_bitflip(img):
    """Flip a bit in the metadata space map's first bitmap."""
    e = img.metadata_index_entries()[0]
    flip_bit(img, e.bitmap, 16, 1)
    return 'md bitmap %d' % e.bitmap


def metadata_index_bitflip(img):
    """Flip a bit of entry 0's nr_free in the metadata SM index block."""
    b = img.superblock().metadata_sm.bitmap_root
    flip_bit(img, b, 16 + 8, 4)
    return 'md index %d' % b


def data_bitmap_bitflip(img):
    """Flip a bit in the data space map's first bitmap."""
    e = img.data_index_entries()[0]
    flip_bit(img, e.bitmap, 16, 1)
    return 'data bitmap %d' % e.bitmap


def data_index_leaf_bitflip(img):
    """Flip a bit in the data space map's index-tree leaf."""
    b = img.superblock().data_sm.bitmap_root
    n = img.node(b)
    flip_bit(img, b, n.value_offset(0) + 8, 4)
    return 'data index leaf %d' % b


# ----------------------------------------------------------------
# Structural faults (checksum recomputed)

def _edit_leaf(img, edit):
    n = bottom_leaf(img)
    desc = edit(n)
    img.write_node(n)
    return 'leaf %d: %s' % (n.location, desc)


def nr_entries_too_large(img):
    """nr_entries = max_entries + 1 in a bottom leaf."""
    def edit(n):
        n.nr_entries = n.max_entries + 1
        return 'nr_entries %d' % n.nr_entries
    return _edit_leaf(img, edit)


def keys_out_of_order(img):
    """Swap two keys of a bottom leaf."""
    def edit(n):
        n.keys[1], n.keys[2] = n.keys[2], n.keys[1]
        return 'keys 1 and 2 swapped'
    return _edit_leaf(img, edit)


def value_size_wrong(img):
    """value_size 4 instead of 8 in a bottom leaf."""
    def edit(n):
        n.value_size = 4
        n.values = []           # do not rewrite values at the new offsets
        return 'value_size 4'
    return _edit_leaf(img, edit)


def max_entries_not_multiple_of_3(img):
    """max_entries 251 in a bottom leaf (nr_entries stays below it)."""
    def edit(n):
        assert n.nr_entries < 251
        n.max_entries = 251
        n.values = []           # keep the value bytes where they are
        return 'max_entries 251'
    return _edit_leaf(img, edit)


def blocknr_mismatch(img):
    """A bottom leaf claiming to be at another block."""
    def edit(n):
        n.blocknr = n.location + 1
        return 'blocknr %d' % n.blocknr
    return _edit_leaf(img, edit)


def node_flags_zero(img):
    """A bottom leaf with flags 0 (neither internal nor leaf)."""
    def edit(n):
        n.flags = 0
        return 'flags 0'
    return _edit_leaf(img, edit)


def too_few_entries(img):
    """A non-root bottom leaf holding 10 entries (minimum is 84)."""
    def edit(n):
        n.nr_entries = 10
        n.keys = n.keys[:10]
        n.values = n.values[:10]
        return 'nr_entries 10'
    return _edit_leaf(img, edit)


def internal_node_cycle(img):
    """An internal node whose second child pointer is the node itself."""
    n = bottom_internal(img)
    n.values[1] = struct.pack('<Q', n.location)
    img.write_node(n)
    return 'internal %d points at itself' % n.location


# ----------------------------------------------------------------
# Reference counts (bitmaps re-checksummed, summaries kept consistent)

def metadata_count_leak(img):
    """A free metadata block marked as used (count 0 -> 1)."""
    sb = img.superblock()
    b = img.find_free_metadata_block(sb)
    img.set_sm_count('md', b, 1, sb)
    return 'md block %d: 0 -> 1' % b


def metadata_count_plus_one(img):
    """A bottom leaf's metadata count 1 -> 2."""
    sb = img.superblock()
    b = bottom_leaf(img).location
    assert img.sm_count('md', b, sb) == 1
    img.set_sm_count('md', b, 2, sb)
    return 'md block %d: 1 -> 2' % b


def metadata_count_minus_one(img):
    """A bottom leaf's metadata count 1 -> 0."""
    sb = img.superblock()
    b = bottom_leaf(img).location
    assert img.sm_count('md', b, sb) == 1
    img.set_sm_count('md', b, 0, sb)
    return 'md block %d: 1 -> 0' % b


def _data_block_with_count(img, sb, count):
    for b, v in img.sm_counts_range('data', sb):
        if v == count:
            return b
    raise RuntimeError('no data block with count %d' % count)


def data_count_leak(img):
    """A free data block marked as used (count 0 -> 1)."""
    sb = img.superblock()
    b = _data_block_with_count(img, sb, 0)
    img.set_sm_count('data', b, 1, sb)
    return 'data block %d: 0 -> 1' % b


def data_count_plus_one(img):
    """A data block mapped once with count 2."""
    sb = img.superblock()
    b = _data_block_with_count(img, sb, 1)
    img.set_sm_count('data', b, 2, sb)
    return 'data block %d: 1 -> 2' % b


def data_count_minus_one(img):
    """A data block mapped once with count 0."""
    sb = img.superblock()
    b = _data_block_with_count(img, sb, 1)
    img.set_sm_count('data', b, 0, sb)
    return 'data block %d: 1 -> 0' % b


# ----------------------------------------------------------------
# Thin-level inconsistencies (checksums fixed)

MISSING_DEV = 3


def device_missing_from_details(img):
    """Device 3 removed from the details tree, still in the mapping tree."""
    sb = img.superblock()
    n = img.node(sb.device_details_root)
    assert n.is_leaf
    n.remove_entry(n.keys.index(MISSING_DEV))
    img.write_node(n)
    return 'details entry of device %d removed' % MISSING_DEV


def mapped_blocks_wrong(img):
    """Device 3's mapped_blocks one too high."""
    sb = img.superblock()
    n = img.node(sb.device_details_root)
    i = n.keys.index(MISSING_DEV)
    mapped, trans, ctime, stime = md.unpack_details(n.values[i])
    n.values[i] = md.pack_details(mapped + 1, trans, ctime, stime)
    img.write_node(n)
    return 'device %d mapped_blocks %d -> %d' % (MISSING_DEV, mapped,
                                                 mapped + 1)


# ----------------------------------------------------------------
# The catalogue

REFCOUNT = [r'reference count', r'ref count', r'refcount']

NOT_A_BITMAP = [r'not a bitmap', r"isn't a bitmap"]

CASES = [
    # checksum faults
    DamageCase('superblock_bitflip', superblock_bitflip, CHECKSUM),
    DamageCase('bottom_leaf_bitflip', bottom_leaf_bitflip, CHECKSUM),
    DamageCase('internal_node_bitflip', internal_node_bitflip, CHECKSUM),
    DamageCase('details_leaf_bitflip', details_leaf_bitflip, CHECKSUM),
    DamageCase('top_level_leaf_bitflip', top_level_leaf_bitflip, CHECKSUM),
    DamageCase('zeroed_node', zeroed_node,
               CHECKSUM + BLOCKNR + [r'not a btree node']),
    DamageCase('metadata_bitmap_bitflip', metadata_bitmap_bitflip,
               CHECKSUM + NOT_A_BITMAP, dump='same'),
    DamageCase('metadata_index_bitflip', metadata_index_bitflip, CHECKSUM,
               dump='same'),
    DamageCase('data_bitmap_bitflip', data_bitmap_bitflip,
               CHECKSUM + NOT_A_BITMAP, dump='same'),
    DamageCase('data_index_leaf_bitflip', data_index_leaf_bitflip, CHECKSUM,
               dump='same'),
    # structural faults, checksum fixed
    DamageCase('nr_entries_too_large', nr_entries_too_large,
               [r'nr_entries', r'max.entries']),
    DamageCase('keys_out_of_order', keys_out_of_order, [r'out of order']),
    DamageCase('value_size_wrong', value_size_wrong, [r'value.size']),
    DamageCase('max_entries_not_multiple_of_3', max_entries_not_multiple_of_3,
               [r'divisible by 3', r'multiple of 3']),
    DamageCase('blocknr_mismatch', blocknr_mismatch, BLOCKNR),
    DamageCase('node_flags_zero', node_flags_zero,
               [r'node type', r'not a btree node', r'flags',
                r'not a leaf', r'not an internal']),
    # the truncated leaf also loses mappings (mapped_blocks, data counts):
    # whether that is fatal differs between v0.9 and 1.x
    DamageCase('too_few_entries', too_few_entries,
               [r'too few entries', r'nr_entries < max_entries'],
               fatal=None, dump=None),
    # v0.9 only sees the orphaned child (a metadata leak); 1.x and ours must
    # see the bad pointer
    DamageCase('internal_node_cycle', internal_node_cycle,
               [r'cycle', r'loop', r'more than once', r'twice', r'already',
                r'parent key', r'key mismatch', r'missing', r'not a leaf'],
               dump=None),
    # metadata reference counts
    DamageCase('metadata_count_leak', metadata_count_leak,
               [r'leak'] + REFCOUNT, fatal=False, dump='same'),
    DamageCase('metadata_count_plus_one', metadata_count_plus_one,
               [r'leak'] + REFCOUNT, fatal=None, dump='same'),
    DamageCase('metadata_count_minus_one', metadata_count_minus_one,
               REFCOUNT, dump='same'),
    # data reference counts: not checked by v0.9
    DamageCase('data_count_leak', data_count_leak, [r'leak'] + REFCOUNT,
               fatal=False, debian_detects=False, dump='same'),
    DamageCase('data_count_plus_one', data_count_plus_one,
               [r'leak'] + REFCOUNT, fatal=None, debian_detects=False,
               dump='same'),
    DamageCase('data_count_minus_one', data_count_minus_one, REFCOUNT,
               debian_detects=False, dump='same'),
    # thin-level consistency: not checked by v0.9's thin_check
    DamageCase('device_missing_from_details', device_missing_from_details,
               [r'missing', r'inconsisten', r'not present'],
               debian_detects=False),
    DamageCase('mapped_blocks_wrong', mapped_blocks_wrong,
               [r'mapped', r'number of mappings'], debian_detects=False,
               dump='same'),
]
CASE = {c.name: c for c in CASES}

_made = {}


def make(name):
    """Path of a damaged copy of the base pool for case name (cached)."""
    path = _made.get(name)
    if path is None:
        case = CASE[name]
        base = pools.get(BASE_POOL)
        d = os.path.join(tools.session_dir(), 'damaged')
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, name + '.meta')
        tools.sparse_copy(base.meta, path)
        with md.Metadata(path, writable=True) as img:
            case.description = case.apply(img)
        _made[name] = path
    return path


def fresh_copy(name, directory):
    """A private damaged copy (for tests that may write to it)."""
    dst = os.path.join(directory, name + '.meta')
    return tools.sparse_copy(make(name), dst)
