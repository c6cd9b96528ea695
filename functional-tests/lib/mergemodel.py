# SPDX-License-Identifier: GPL-3.0-or-later
"""An independent model of thin_merge over the pool model of lib/poolgen.

Given the model of the input pool (poolgen.Pool; for -m, the model of the
held view) and the options, expected_output() says what the whole output
pool must dump as, expected_stats() what --dry-run must count, and
used_data_blocks() / data_block_devices() which data blocks the output's
data space map must show in use (and, when no two devices share a leaf, the
exact counts).

The rule (the spec of the tests, written from the command's description,
not from its code):

  * merged device M: for every virtual block S maps, S's mapping (data block
    and time); else O's; else unmapped.
  * M keeps O's id and details (transaction, creation_time); with --rebase
    S's id and details.  mapped_blocks is recomputed.  snapshotted_time is
    max(O's, S's) when M stays in the pool (default, --in-place, -m); with
    --merged-only it is the kept device's own.
  * the other of O and S disappears; every other device is unchanged;
    superblock time, transaction, version, data_block_size and
    nr_data_blocks are unchanged.
  * --merged-only: M alone, flags 0, no uuid, no metadata snapshot.
  * no --snapshot, or --snapshot == --origin: nothing to merge (the pool
    unchanged; with --merged-only the origin alone).
"""

from . import poolgen


# ----------------------------------------------------------------
# Blocks and runs

def block_map(dev):
    """{virtual block: (data block, time)} of a device."""
    return {o: (d, t) for o, d, t in dev.mappings()}


def runs_from_blocks(blocks):
    """Maximal runs (origin, data, length, time) of a {virtual: (data, time)}
    map, in key order."""
    runs = []
    for o in sorted(blocks):
        d, t = blocks[o]
        if runs:
            po, pd, pn, pt = runs[-1]
            if o == po + pn and d == pd + pn and t == pt:
                runs[-1] = (po, pd, pn + 1, pt)
                continue
        runs.append((o, d, 1, t))
    return runs


def copy_device(dev, **changes):
    d = poolgen.Device(dev.dev_id, dev.transaction, dev.creation_time,
                       dev.snap_time, list(dev.runs))
    for k, v in changes.items():
        setattr(d, k, v)
    return d


def copy_pool(pool, devices=None, **changes):
    p = poolgen.Pool(pool.name, pool.time, pool.transaction, pool.flags,
                     pool.version, pool.data_block_size, pool.nr_data_blocks,
                     pool.uuid,
                     [copy_device(d) for d in pool.devices]
                     if devices is None else devices, pool.seed)
    for k, v in changes.items():
        setattr(p, k, v)
    return p


# ----------------------------------------------------------------
# Options

class MergeOptions:
    """origin: id; snapshot: id or None (omitted); rebase; merged_only."""

    def __init__(self, origin, snapshot=None, rebase=False,
                 merged_only=False):
        self.origin = origin
        self.snapshot = snapshot
        self.rebase = rebase
        self.merged_only = merged_only

    @property
    def nothing_to_merge(self):
        return self.snapshot is None or self.snapshot == self.origin

    def __repr__(self):
        return ('MergeOptions(origin=%r, snapshot=%r, rebase=%r, '
                'merged_only=%r)' % (self.origin, self.snapshot, self.rebase,
                                     self.merged_only))


class DeviceMissing(KeyError):
    """The merge must fail: "device N not found"."""


def _device(pool, dev_id):
    try:
        return pool.device(dev_id)
    except KeyError:
        raise DeviceMissing(dev_id)


# ----------------------------------------------------------------
# The merge

def merged_blocks(o, s):
    """M's {virtual: (data, time)}: S's mappings laid over O's."""
    blocks = block_map(o)
    blocks.update(block_map(s))
    return blocks


def merged_device(o, s, rebase=False, merged_only=False):
    """M from O and S (Device objects)."""
    kept = s if rebase else o
    snap_time = kept.snap_time if merged_only else max(o.snap_time,
                                                       s.snap_time)
    return poolgen.Device(kept.dev_id, transaction=kept.transaction,
                          creation_time=kept.creation_time,
                          snap_time=snap_time,
                          runs=runs_from_blocks(merged_blocks(o, s)))


def expected_output(pool, opts):
    """The model of the output pool (every device).  Raises DeviceMissing
    when the merge must fail because O or S does not exist."""
    o = _device(pool, opts.origin)
    if opts.nothing_to_merge:
        if opts.merged_only:
            return copy_pool(pool, devices=[copy_device(o)], flags=0, uuid='')
        return copy_pool(pool)
    s = _device(pool, opts.snapshot)
    m = merged_device(o, s, opts.rebase, opts.merged_only)
    if opts.merged_only:
        return copy_pool(pool, devices=[m], flags=0, uuid='')
    others = [copy_device(d) for d in pool.devices
              if d.dev_id not in (o.dev_id, s.dev_id)]
    devices = sorted(others + [m], key=lambda d: d.dev_id)
    return copy_pool(pool, devices=devices)


def expected_stats(pool, opts):
    """What a dry run counts: {'taken': S's mappings (all in M), 'kept': O's
    mappings S does not hide, 'hidden': O's mappings S hides, 'merged': M's
    mapped_blocks, 'kept_id', 'dropped_id', 'snap_time'}."""
    o = _device(pool, opts.origin)
    if opts.nothing_to_merge:
        return {'taken': 0, 'kept': o.mapped_blocks, 'hidden': 0,
                'merged': o.mapped_blocks, 'kept_id': o.dev_id,
                'dropped_id': o.dev_id,
                'snap_time': o.snap_time}
    s = _device(pool, opts.snapshot)
    ob = block_map(o)
    sb = block_map(s)
    hidden = sum(1 for k in sb if k in ob)
    m = merged_device(o, s, opts.rebase, opts.merged_only)
    return {'taken': len(sb), 'kept': len(ob) - hidden, 'hidden': hidden,
            'merged': m.mapped_blocks, 'kept_id': m.dev_id,
            'dropped_id': o.dev_id if opts.rebase else s.dev_id,
            'snap_time': m.snap_time}


def freed_data_blocks(pool, opts):
    """Data blocks in use before the merge and free after it."""
    return used_data_blocks(pool) - used_data_blocks(expected_output(pool,
                                                                     opts))


# ----------------------------------------------------------------
# Data space map

def used_data_blocks(pool):
    """Data blocks some device maps: exactly those must have a non-zero
    count in the data space map (nothing leaked, nothing lost)."""
    used = set()
    for dev in pool.devices:
        for _, d, _ in dev.mappings():
            used.add(d)
    return used


def data_block_devices(pool):
    """{data block: number of devices mapping it}.  When no two devices
    share a bottom-level leaf (every device restored with its own tree, as
    /usr/sbin/thin_restore does, and a merge that copies what it changes),
    this is the exact reference count of each data block."""
    return pool.data_block_refs()
