# SPDX-License-Identifier: GPL-3.0-or-later
"""Input pools of the thin_merge tests.

Each scenario is a MergeScenario: the poolgen model of the whole pool, the
origin O and snapshot S to merge, and how the pool is laid out on disk:

  * plain: written as v0.9 XML and restored by /usr/sbin/thin_restore
    (every device gets its own tree: no shared nodes);
  * with shared sections (defs): written as 1.x-dialect XML with
    <def>/<ref> and restored by OUR thin_restore, which shares the leaves of
    a def between the devices that ref it;
  * shared_roots (origin, snap): after the restore, S's top-level entry is
    pointed at O's bottom root, as the kernel's create_snap does (O's root
    count +1, S's empty leaf freed, S's details say O's mapped_blocks), so O
    and S share their whole tree;
  * held: a metadata snapshot built with lib/heldroot.py ('shared' or
    'diverged', see there); held_view() is the model of what it holds.

Everything is deterministic from the seed.
"""

import os
import random
import struct
import threading

from . import heldroot, mergemodel, poolgen, tools
from . import metadata as md
from .poolgen import DataAllocator, Device, Pool, random_runs

UUID = 'merge-test-uuid'    # v0.9 restore keeps it; --merged-only drops it


class MergeScenario:
    """pool: the model of the live pool (shared_roots devices included
    with their full mappings).  defs: {name: runs}; layout: {dev_id:
    [('ref', name) | ('runs', runs), ...]} for the devices built from
    shared sections (they must add up to the model's runs)."""

    def __init__(self, name, pool, origin, snapshot, doc='', defs=None,
                 layout=None, shared_roots=(), held=None, exact_counts=None):
        self.name = name
        self.pool = pool
        self.origin = origin
        self.snapshot = snapshot
        self.doc = doc
        self.defs = defs or {}
        self.layout = layout or {}
        self.shared_roots = list(shared_roots)
        self.held = held                # None, 'shared' or 'diverged'
        if exact_counts is None:
            exact_counts = not self.defs and not self.shared_roots
        # data SM counts == number of devices mapping the block
        self.exact_counts = exact_counts

    @property
    def uses_our_restore(self):
        return bool(self.defs)

    def __repr__(self):
        return 'MergeScenario(%s)' % self.name


# ----------------------------------------------------------------
# Helpers

def blocks(dev):
    return mergemodel.block_map(dev)


def device_from_blocks(dev_id, blocks_, transaction, creation_time,
                       snap_time):
    return Device(dev_id, transaction=transaction,
                  creation_time=creation_time, snap_time=snap_time,
                  runs=mergemodel.runs_from_blocks(blocks_))


def fresh_writes(rng, alloc, keys, time_choices):
    """{key: (new data block, time)} for keys in order; consecutive keys get
    consecutive data blocks (so some of them form ranges)."""
    out = {}
    for k in sorted(keys):
        out[k] = (alloc.take(1), rng.choice(time_choices))
    return out


def make_pool(name, devices, alloc, time, transaction, slack=300, **kw):
    devices = sorted(devices, key=lambda d: d.dev_id)
    kw.setdefault('uuid', UUID)
    return Pool(name, time=time, transaction=transaction,
                data_block_size=kw.pop('data_block_size', 128),
                nr_data_blocks=alloc.next + slack, devices=devices, **kw)


def unrelated(rng, alloc, dev_id, n, time):
    ctime = rng.randint(0, time)
    return Device(dev_id, transaction=rng.randint(0, 5), creation_time=ctime,
                  snap_time=rng.randint(ctime, time),
                  runs=random_runs(rng, alloc, n, time, max_run=30,
                                   time_min=ctime))


def origin_device(rng, alloc, dev_id, n, max_hole=6, max_run=40, time=0,
                  snap_time=1):
    return Device(dev_id, transaction=1, creation_time=0, snap_time=snap_time,
                  runs=random_runs(rng, alloc, n, time, max_run=max_run,
                                   max_hole=max_hole))


def last_key(dev):
    o, _, n, _ = dev.runs[-1]
    return o + n - 1


# ----------------------------------------------------------------
# Scenarios

def scenario_random_writes(rng):
    """S: scattered single writes over O's span (on O's blocks and in its
    holes), fresh data blocks, several times."""
    alloc = DataAllocator(rng)
    o = origin_device(rng, alloc, 0, 4000)
    keys = rng.sample(range(last_key(o) + 1), 500)
    s = device_from_blocks(1, fresh_writes(rng, alloc, keys, [1, 2, 3]),
                           2, 1, 1)
    other = unrelated(rng, alloc, 2, 300, 3)
    return MergeScenario('random_writes', make_pool(
        'random_writes', [o, s, other], alloc, 3, 5), 0, 1,
        'scattered snapshot writes')


def scenario_clustered_writes(rng):
    """S: a few long clusters of contiguous writes (ranges), overlapping
    O's runs and holes and O's start."""
    alloc = DataAllocator(rng, max_gap=3)
    o = origin_device(rng, alloc, 5, 6000, max_hole=3, max_run=120)
    top = last_key(o)
    keys = set(range(0, 200))
    for _ in range(6):
        start = rng.randrange(top)
        keys.update(range(start, start + rng.randint(50, 400)))
    s = device_from_blocks(9, fresh_writes(rng, alloc, keys, [2]), 3, 2, 2)
    others = [unrelated(rng, alloc, 1, 200, 2),
              unrelated(rng, alloc, 7, 50, 2)]
    return MergeScenario('clustered_writes', make_pool(
        'clustered_writes', [o, s] + others, alloc, 2, 4), 5, 9,
        'clustered snapshot writes')


def scenario_snapshot_empty(rng):
    alloc = DataAllocator(rng)
    o = origin_device(rng, alloc, 3, 2500)
    s = Device(4, transaction=2, creation_time=1, snap_time=2)
    other = unrelated(rng, alloc, 6, 100, 2)
    return MergeScenario('snapshot_empty', make_pool(
        'snapshot_empty', [o, s, other], alloc, 2, 3), 3, 4,
        'S has no mappings: M = O')


def scenario_origin_empty(rng):
    alloc = DataAllocator(rng)
    o = Device(1, transaction=0, creation_time=0, snap_time=1)
    s = Device(2, transaction=1, creation_time=1, snap_time=1,
               runs=random_runs(rng, alloc, 1500, 1, max_run=50))
    other = unrelated(rng, alloc, 0, 200, 1)
    return MergeScenario('origin_empty', make_pool(
        'origin_empty', [o, s, other], alloc, 1, 2), 1, 2,
        'O has no mappings: M = S')


def scenario_snapshot_covers_origin(rng):
    """S maps every block O maps (new data) and some of O's holes: every
    data block of O is freed."""
    alloc = DataAllocator(rng)
    o = origin_device(rng, alloc, 0, 2000, max_hole=4)
    keys = set(blocks(o))
    keys.update(rng.sample(range(last_key(o) + 300), 300))
    s = device_from_blocks(1, fresh_writes(rng, alloc, keys, [1, 2]), 1, 1, 2)
    other = unrelated(rng, alloc, 2, 100, 2)
    return MergeScenario('snapshot_covers_origin', make_pool(
        'snapshot_covers_origin', [o, s, other], alloc, 2, 3), 0, 1,
        'S covers all of O')


def scenario_snapshot_beyond_end(rng):
    """S writes past O's last block (far past: keys over 2^32) and a few
    blocks inside O."""
    alloc = DataAllocator(rng)
    o = origin_device(rng, alloc, 0, 1500)
    top = last_key(o)
    keys = set(rng.sample(range(top + 1), 40))
    keys.update(range(top + 1, top + 700))
    keys.update(range((1 << 32) + 5, (1 << 32) + 300))
    keys.add((1 << 40) + 1)
    s = device_from_blocks(1, fresh_writes(rng, alloc, keys, [1]), 1, 1, 1)
    return MergeScenario('snapshot_beyond_end', make_pool(
        'snapshot_beyond_end', [o, s], alloc, 1, 2), 0, 1,
        'S maps blocks beyond O\'s end')


def scenario_origin_holes(rng):
    """O: ranges separated by large holes; S fills holes, overlaps the
    edges of O's ranges (splitting them) and overwrites whole ranges."""
    alloc = DataAllocator(rng)
    o = Device(2, transaction=0, creation_time=0, snap_time=0,
               runs=random_runs(rng, alloc, 3000, 0, max_run=100,
                                single_ratio=0.1, max_hole=500))
    keys = set()
    for ob, _, n, _ in o.runs[::3]:
        keys.update(range(max(0, ob - 5), ob + 3))          # left edge
        keys.update(range(ob + n - 2, ob + n + 7))          # right edge
    for ob, _, n, _ in o.runs[1::7]:
        keys.update(range(ob, ob + n))                       # whole range
    s = device_from_blocks(1, fresh_writes(rng, alloc, keys, [0, 1]), 1, 0, 1)
    return MergeScenario('origin_holes', make_pool(
        'origin_holes', [o, s], alloc, 1, 2), 2, 1,
        'O with large holes, S id below O\'s')


def scenario_shared_root(rng):
    """S is a snapshot of O taken as the kernel does it (S's top-level entry
    holds O's bottom root), no divergence: M = O; nothing is freed."""
    alloc = DataAllocator(rng)
    o = origin_device(rng, alloc, 0, 3000, snap_time=2)
    s = Device(1, transaction=3, creation_time=2, snap_time=2,
               runs=list(o.runs))
    other = unrelated(rng, alloc, 2, 150, 1)
    return MergeScenario('shared_root', make_pool(
        'shared_root', [o, s, other], alloc, 2, 4), 0, 1,
        'O and S share their bottom root', shared_roots=[(0, 1)])


def scenario_partially_shared(rng):
    """S is a snapshot of O and both diverged: they still share the leaves
    of two sections (defs A and C); in between O overwrote some blocks and
    wrote new ones, S overwrote others (restored by our thin_restore)."""
    alloc = DataAllocator(rng)
    sec_a = random_runs(rng, alloc, 1200, 0, max_run=30, max_hole=3)
    mid_start = sec_a[-1][0] + sec_a[-1][2] + 10
    mid = random_runs(rng, alloc, 1500, 0, origin_start=mid_start,
                      max_run=30, max_hole=4)
    c_start = mid[-1][0] + mid[-1][2] + 10
    sec_c = random_runs(rng, alloc, 1200, 0, origin_start=c_start,
                        max_run=30, max_hole=3)
    mid_blocks = mergemodel.block_map(Device(0, runs=mid))
    keys = sorted(mid_blocks)
    # after the snapshot (time 1): O overwrites some blocks and fills holes
    o_mid = dict(mid_blocks)
    for k in rng.sample(keys, 150):
        o_mid[k] = (alloc.take(1), 2)
    holes = [k for k in range(mid_start, c_start - 10) if k not in mid_blocks]
    for k in rng.sample(holes, min(80, len(holes))):
        o_mid[k] = (alloc.take(1), 2)
    s_mid = dict(mid_blocks)
    for k in rng.sample(keys, 200):
        s_mid[k] = (alloc.take(1), 3)
    o_runs_mid = mergemodel.runs_from_blocks(o_mid)
    s_runs_mid = mergemodel.runs_from_blocks(s_mid)
    o = Device(0, transaction=0, creation_time=0, snap_time=1,
               runs=sec_a + o_runs_mid + sec_c)
    s = Device(1, transaction=1, creation_time=1, snap_time=1,
               runs=sec_a + s_runs_mid + sec_c)
    other = unrelated(rng, alloc, 4, 200, 3)
    defs = {'A': sec_a, 'C': sec_c}
    layout = {0: [('ref', 'A'), ('runs', o_runs_mid), ('ref', 'C')],
              1: [('ref', 'A'), ('runs', s_runs_mid), ('ref', 'C')]}
    return MergeScenario('partially_shared', make_pool(
        'partially_shared', [o, s, other], alloc, 3, 3), 0, 1,
        'O and S share some leaves', defs=defs, layout=layout)


def _snapshot_family(rng, alloc, base_id, n, own_snap_id, base_time,
                     external_keys=None):
    """A device and an internal snapshot of it taken at base_time + 1: the
    snapshot starts with the device's mappings, then each overwrites some
    blocks.  Returns (device, snapshot, shared base runs, device's own runs
    after the base, snapshot's own runs)."""
    if external_keys is None:
        base = random_runs(rng, alloc, n, base_time, max_run=25, max_hole=3)
    else:
        base = mergemodel.runs_from_blocks(
            fresh_writes(rng, alloc, external_keys, [base_time]))
    b = mergemodel.block_map(Device(0, runs=base))
    keys = sorted(b)
    t = base_time + 1
    dev_blocks = dict(b)
    for k in rng.sample(keys, len(keys) // 10):
        dev_blocks[k] = (alloc.take(1), t + 1)
    snap_blocks = dict(b)
    for k in rng.sample(keys, len(keys) // 12):
        snap_blocks[k] = (alloc.take(1), t + 1)
    dev = device_from_blocks(base_id, dev_blocks, base_time, base_time, t)
    snap = device_from_blocks(own_snap_id, snap_blocks, t, t, t)
    return dev, snap, base


def scenario_internal_snapshots(rng):
    """O has a snapshot O2 and S a snapshot S2 (v0.9 restore: each device
    its own tree, shared data blocks have count 2): O's blocks hidden by S
    that O2 still maps stay in use, S's blocks stay in use via S2."""
    alloc = DataAllocator(rng)
    o, o2, _ = _snapshot_family(rng, alloc, 10, 3000, 11, 0)
    top = last_key(o)
    s_keys = set(rng.sample(range(top + 1), 600)) | set(range(top, top + 50))
    s, s2, _ = _snapshot_family(rng, alloc, 20, 0, 21, 2,
                                external_keys=s_keys)
    other = unrelated(rng, alloc, 30, 100, 3)
    return MergeScenario('internal_snapshots', make_pool(
        'internal_snapshots', [o, o2, s, s2, other], alloc, 4, 6), 10, 20,
        'O and S each with a snapshot of their own')


def scenario_internal_snapshots_shared(rng):
    """Like internal_snapshots, but O and O2 share the leaves of their
    common part, S and S2 too (1.x-dialect <def>/<ref> restored by our
    thin_restore), and O3 is a kernel-style snapshot of O sharing its whole
    tree: merging into O must copy what it changes, O2 and O3 keep their
    mappings."""
    alloc = DataAllocator(rng)
    # O and O2 share the first part; each has its own tail
    base = random_runs(rng, alloc, 2000, 0, max_run=25, max_hole=3)
    tail_start = base[-1][0] + base[-1][2] + 5
    o_tail = random_runs(rng, alloc, 800, 1, origin_start=tail_start,
                         max_run=25, max_hole=3)
    o2_tail = random_runs(rng, alloc, 500, 2, origin_start=tail_start,
                          max_run=10, max_hole=6)
    o = Device(10, transaction=0, creation_time=0, snap_time=3,
               runs=base + o_tail)
    o2 = Device(11, transaction=1, creation_time=1, snap_time=1,
                runs=base + o2_tail)
    o3 = Device(12, transaction=2, creation_time=3, snap_time=3,
                runs=list(o.runs))
    # S and S2 share S's first writes
    top = tail_start + 2000
    s_keys = sorted(rng.sample(range(top), 900))
    s_base = mergemodel.runs_from_blocks(
        fresh_writes(rng, alloc, s_keys[:600], [2]))
    s_tail = mergemodel.runs_from_blocks(
        fresh_writes(rng, alloc, s_keys[600:], [3]))
    s2_tail = mergemodel.runs_from_blocks(
        fresh_writes(rng, alloc, rng.sample(range(s_keys[599] + 1, top), 200),
                     [3]))
    s = Device(20, transaction=2, creation_time=2, snap_time=3,
               runs=s_base + s_tail)
    s2 = Device(21, transaction=3, creation_time=3, snap_time=3,
                runs=s_base + s2_tail)
    defs = {'obase': base, 'sbase': s_base}
    layout = {10: [('ref', 'obase'), ('runs', o_tail)],
              11: [('ref', 'obase'), ('runs', o2_tail)],
              20: [('ref', 'sbase'), ('runs', s_tail)],
              21: [('ref', 'sbase'), ('runs', s2_tail)]}
    return MergeScenario('internal_snapshots_shared', make_pool(
        'internal_snapshots_shared', [o, o2, o3, s, s2], alloc, 3, 5), 10, 20,
        'shared leaves inside the O and S families, O3 shares O\'s root',
        defs=defs, layout=layout, shared_roots=[(10, 12)])


def scenario_unrelated_devices(rng):
    """Several unrelated devices with sparse ids (the largest id too); O and
    S in the middle, S's id below O's; no version attribute (v0.9 restore
    writes version 1)."""
    alloc = DataAllocator(rng, max_gap=5)
    devs = []
    for dev_id in (3, 7, 20, 21, 1000, (1 << 24) - 1):
        devs.append(unrelated(rng, alloc, dev_id, rng.randint(0, 400), 7))
    o = Device(100, transaction=4, creation_time=4, snap_time=6,
               runs=random_runs(rng, alloc, 2500, 5, max_run=20,
                                time_min=4))
    keys = rng.sample(range(last_key(o) + 100), 400)
    s = device_from_blocks(8, fresh_writes(rng, alloc, keys, [6, 7]),
                           6, 6, 5)
    return MergeScenario('unrelated_devices', make_pool(
        'unrelated_devices', devs + [o, s], alloc, 7, 9, version=None), 100, 8,
        'several unrelated devices')


def scenario_held(rng, name, flavour):
    """Devices 0..4 (O = 1, S = 3), with a metadata snapshot: 'shared' (the
    held roots are the live ones) or 'diverged' (the held view lacks the
    last device, 4)."""
    alloc = DataAllocator(rng)
    o = origin_device(rng, alloc, 1, 1500, snap_time=2)
    keys = rng.sample(range(last_key(o) + 50), 300)
    s = device_from_blocks(3, fresh_writes(rng, alloc, keys, [2, 3]), 3, 2, 3)
    others = [unrelated(rng, alloc, i, 200, 3) for i in (0, 2, 4)]
    return MergeScenario(name, make_pool(name, [o, s] + others, alloc, 3, 7),
                         1, 3, 'metadata snapshot (%s)' % flavour,
                         held=flavour)


def scenario_large(rng):
    """O with 40,000 mappings in long ranges, S with 4,000 scattered and
    clustered writes."""
    alloc = DataAllocator(rng, max_gap=2)
    o = Device(0, transaction=0, creation_time=0, snap_time=1,
               runs=random_runs(rng, alloc, 40000, 0, max_run=500,
                                single_ratio=0.05, max_hole=20))
    top = last_key(o)
    keys = set(rng.sample(range(top + 1), 3000))
    start = rng.randrange(top)
    keys.update(range(start, start + 1000))
    s = device_from_blocks(1, fresh_writes(rng, alloc, keys, [1]), 1, 1, 1)
    return MergeScenario('large', make_pool('large', [o, s], alloc, 1, 2),
                         0, 1, '40,000 + 4,000 mappings')


SCENARIOS = {
    'random_writes': scenario_random_writes,
    'clustered_writes': scenario_clustered_writes,
    'snapshot_empty': scenario_snapshot_empty,
    'origin_empty': scenario_origin_empty,
    'snapshot_covers_origin': scenario_snapshot_covers_origin,
    'snapshot_beyond_end': scenario_snapshot_beyond_end,
    'origin_holes': scenario_origin_holes,
    'shared_root': scenario_shared_root,
    'partially_shared': scenario_partially_shared,
    'internal_snapshots': scenario_internal_snapshots,
    'internal_snapshots_shared': scenario_internal_snapshots_shared,
    'unrelated_devices': scenario_unrelated_devices,
    'held_shared': lambda rng: scenario_held(rng, 'held_shared', 'shared'),
    'held_diverged': lambda rng: scenario_held(rng, 'held_diverged',
                                               'diverged'),
    'large': scenario_large,
}


def generate(name, seed=1):
    rng = random.Random('merge/%s/%d' % (name, seed))
    sc = SCENARIOS[name](rng)
    sc.pool.name = name
    sc.pool.seed = seed
    sc.pool.check()
    for dev_id, segs in sc.layout.items():
        runs = []
        for kind, x in segs:
            runs.extend(sc.defs[x] if kind == 'ref' else x)
        assert runs == sc.pool.device(dev_id).runs, (name, dev_id)
    return sc


# ----------------------------------------------------------------
# Writing and restoring

def _mapping_lines(runs, indent):
    for o, d, n, t in runs:
        if n == 1:
            yield ('%s<single_mapping origin_block="%d" data_block="%d" '
                   'time="%d"/>\n' % (indent, o, d, t))
        else:
            yield ('%s<range_mapping origin_begin="%d" data_begin="%d" '
                   'length="%d" time="%d"/>\n' % (indent, o, d, n, t))


def restore_pool(sc):
    """The pool as XML for the restore: devices of shared_roots written
    empty (their tree is attached afterwards)."""
    empty = {snap for _, snap in sc.shared_roots}
    devs = [Device(d.dev_id, d.transaction, d.creation_time, d.snap_time,
                   [] if d.dev_id in empty else list(d.runs))
            for d in sc.pool.devices]
    return mergemodel.copy_pool(sc.pool, devices=devs)


def xml_1x_lines(pool, defs, layout):
    """1.x dialect: <def> sections first, devices <ref> them."""
    attrs = 'uuid="%s" time="%d" transaction="%d" flags="%d"' % (
        pool.uuid, pool.time, pool.transaction, pool.flags)
    if pool.version is not None:
        attrs += ' version="%d"' % pool.version
    yield '<superblock %s data_block_size="%d" nr_data_blocks="%d">\n' % (
        attrs, pool.data_block_size, pool.nr_data_blocks)
    for name in sorted(defs):
        yield '  <def name="%s">\n' % name
        yield from _mapping_lines(defs[name], '    ')
        yield '  </def>\n'
    for dev in pool.devices:
        yield ('  <device dev_id="%d" mapped_blocks="%d" transaction="%d" '
               'creation_time="%d" snap_time="%d">\n' % (
                   dev.dev_id, dev.mapped_blocks, dev.transaction,
                   dev.creation_time, dev.snap_time))
        segs = layout.get(dev.dev_id, [('runs', dev.runs)])
        for kind, x in segs:
            if kind == 'ref':
                yield '    <ref name="%s"/>\n' % x
            else:
                yield from _mapping_lines(x, '    ')
        yield '  </device>\n'
    yield '</superblock>\n'


def restore_with_ours(xml, meta, size):
    poolgen.make_sparse_file(meta, size)
    r = tools.run([tools.ours('thin_restore'), '-i', xml, '-o', meta],
                  timeout=tools.scaled(120))
    if r.rc != 0:
        raise RuntimeError('our thin_restore failed (%d): %s' % (r.rc, r.err))


def share_root(path, origin, snap, pool):
    """Make snap's top-level entry hold origin's bottom root, as create_snap
    does: origin's root gains a reference, snap's (empty) leaf is freed,
    snap's details get origin's mapped_blocks."""
    with md.Metadata(path, writable=True) as img:
        sb = img.superblock()
        top = img.node(sb.data_mapping_root)
        det = img.node(sb.device_details_root)
        if not (top.is_leaf and det.is_leaf):
            raise RuntimeError('share_root needs leaf top-level trees')
        roots = dict(zip(top.keys, top.u64_values()))
        o_root, s_root = roots[origin], roots[snap]
        old = img.node(s_root)
        if not old.is_leaf or old.nr_entries:
            raise RuntimeError('share_root: device %d is not empty' % snap)
        i = top.keys.index(snap)
        top.values[i] = struct.pack('<Q', o_root)
        img.write_node(top)
        j = det.keys.index(snap)
        _, trans, ctime, stime = md.unpack_details(det.values[j])
        det.values[j] = md.pack_details(pool.device(origin).mapped_blocks,
                                        trans, ctime, stime)
        img.write_node(det)
        img.set_sm_count('md', o_root, img.sm_count('md', o_root, sb) + 1, sb)
        img.set_sm_count('md', s_root, 0, sb)


class MergeFixture:
    def __init__(self, scenario, xml, meta, held=None):
        self.scenario = scenario
        self.xml = xml
        self.meta = meta
        self.held = held            # heldroot.build_held_root() info

    @property
    def name(self):
        return self.scenario.name

    @property
    def pool(self):
        return self.scenario.pool

    def held_view(self):
        """The model of the held view: the devices the held trees hold, the
        held superblock's transaction; nr_data_blocks: the live one."""
        return self.pool.without_devices(self.held['dropped'],
                                         transaction=self.held['transaction'])

    def input_view(self, held=False):
        return self.held_view() if held else self.pool


_cache = {}
_lock = threading.Lock()


def get(name, seed=None):
    """The restored input of a scenario (built once per session)."""
    from . import pools
    seed = pools.SEED if seed is None else seed
    with _lock:
        fx = _cache.get(name)
        if fx is not None:
            return fx
        sc = generate(name, seed)
        d = os.path.join(tools.session_dir(), 'merge-pools')
        os.makedirs(d, exist_ok=True)
        xml = os.path.join(d, name + '.xml')
        meta = os.path.join(d, name + '.meta')
        rp = restore_pool(sc)
        size = max(sc.pool.metadata_blocks_needed(), 4096) * md.BLOCK_SIZE
        if sc.uses_our_restore:
            with open(xml, 'w') as f:
                f.writelines(xml_1x_lines(rp, sc.defs, sc.layout))
            restore_with_ours(xml, meta, size)
        else:
            rp.write_xml(xml)
            poolgen.restore_with_debian(xml, meta, size)
        for origin, snap in sc.shared_roots:
            share_root(meta, origin, snap, sc.pool)
        held = None
        if sc.held:
            held = heldroot.build_held_root(meta,
                                            diverged=sc.held == 'diverged')
        fx = MergeFixture(sc, xml, meta, held)
        _cache[name] = fx
        return fx
