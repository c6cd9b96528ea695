# SPDX-License-Identifier: GPL-3.0-or-later
"""Build a held metadata snapshot (metadata_snap) on a restored pool.

thin_restore 0.9 copies the XML metadata_snap attribute but writes no held
root, so we make one the way the kernel's reserve_metadata_snap does
(format doc sections 8 and 12.5): copy block 0 to a free block H, set its
blocknr to H, zero both space-map root blobs, re-checksum; point the live
superblock's metadata_snap at H; count the new references in the metadata
space map (bitmap entries, index entry nr_free / none_free_before, and the
SM root's nr_allocated).

Two flavours:
  * shared (the kernel's state right after reserve_metadata_snap): the held
    superblock uses the live top-level mapping root and details root, whose
    counts go from 1 to 2;
  * diverged (the live pool went on after the snapshot): the held roots are
    copies of the live top-level and details leaves lacking the last device,
    so the held view has one device less than the live one and every bottom
    root it references is shared by two top-level leaves (count 2).
"""

from . import metadata as md

HELD_TRANSACTION_DELTA = 1   # the held copy records an older transaction


def _inc(img, sb, block, expect_old):
    old = img.sm_count('md', block, sb)
    if old != expect_old:
        raise RuntimeError('block %d has count %s, expected %d' % (
            block, old, expect_old))
    img.set_sm_count('md', block, old + 1, sb)


def build_held_root(path, diverged=False):
    """Create the held root in the metadata file at path.

    Returns a dict: {'block': H, 'dropped': [dev ids missing from the held
    view], 'transaction': the held superblock's trans_id}."""
    with md.Metadata(path, writable=True) as img:
        sb = img.superblock()
        if sb.metadata_snap:
            raise RuntimeError('pool already has a metadata snapshot')
        top = img.node(sb.data_mapping_root)
        det = img.node(sb.device_details_root)
        h = img.find_free_metadata_block(sb)
        held = md.Superblock(img.read(0))
        held.blocknr = h
        held.metadata_snap = 0
        held.trans_id = max(0, sb.trans_id - HELD_TRANSACTION_DELTA)
        held.raw[md.DATA_SM_ROOT_OFFSET:md.SM_ROOT_BLOB_SIZE * 2 +
                 md.DATA_SM_ROOT_OFFSET] = bytes(2 * md.SM_ROOT_BLOB_SIZE)
        held.data_sm = md.SmRoot(0, 0, 0, 0)
        held.metadata_sm = md.SmRoot(0, 0, 0, 0)
        dropped = []

        _inc(img, sb, h, 0)
        if not diverged:
            _inc(img, sb, sb.data_mapping_root, 1)
            _inc(img, sb, sb.device_details_root, 1)
        else:
            if not (top.is_leaf and det.is_leaf) or top.nr_entries < 2:
                raise RuntimeError('diverged held root needs leaf roots')
            if top.keys != det.keys:
                raise RuntimeError('details and mapping keys differ')
            t2 = img.find_free_metadata_block(sb, start=h + 1)
            _inc(img, sb, t2, 0)
            d2 = img.find_free_metadata_block(sb, start=t2 + 1)
            _inc(img, sb, d2, 0)
            dropped.append(top.keys[-1])
            for node, loc in ((top, t2), (det, d2)):
                node.remove_entry(node.nr_entries - 1)
                node.blocknr = node.location = loc
                img.write_node(node)
            for bottom in top.u64_values():
                _inc(img, sb, bottom, 1)
            held.data_mapping_root = t2
            held.device_details_root = d2

        img.write(h, held.pack())
        sb.metadata_snap = h
        img.write_superblock(sb)
        return {'block': h, 'dropped': dropped, 'transaction': held.trans_id}
