# SPDX-License-Identifier: GPL-3.0-or-later
"""Generator of test pools, written as v0.9-dialect XML.

A pool is kept as plain Python data (Pool / Device / runs) so that tests can
compute what a correct tool must print: Pool.expected_xml() and
Pool.expected_human() render exactly what thin_dump 0.9.0 prints for the pool
once it has been restored (section 11 of the format doc), and the counts
needed by checks are available from the model.

Everything is deterministic from the seed given to generate().
"""

import os
import random

from . import tools

MAX_TIME = (1 << 24) - 1          # mapping times are 24-bit
METADATA_BLOCK = 4096
MAX_METADATA_BLOCKS = 4161600


# ----------------------------------------------------------------
# The model

class Device:
    """A thin device.  runs: sorted, non-overlapping list of
    (origin_begin, data_begin, length, time); length >= 1."""

    def __init__(self, dev_id, transaction=0, creation_time=0, snap_time=0,
                 runs=None):
        self.dev_id = dev_id
        self.transaction = transaction
        self.creation_time = creation_time
        self.snap_time = snap_time
        self.runs = runs if runs is not None else []

    @property
    def mapped_blocks(self):
        return sum(r[2] for r in self.runs)

    def mappings(self):
        """Yield (origin, data, time) one block at a time."""
        for o, d, n, t in self.runs:
            for i in range(n):
                yield o + i, d + i, t

    def normalised_runs(self):
        """Runs as thin_dump forms them: maximal runs of consecutive origin
        and data blocks with one time."""
        out = []
        for o, d, n, t in self.runs:
            if out:
                po, pd, pn, pt = out[-1]
                if o == po + pn and d == pd + pn and t == pt:
                    out[-1] = (po, pd, pn + n, pt)
                    continue
            out.append((o, d, n, t))
        return out

    def check(self, nr_data_blocks):
        last = -1
        for o, d, n, t in self.runs:
            assert n >= 1 and o > last, (self.dev_id, o, last)
            assert d + n <= nr_data_blocks, (self.dev_id, d, n)
            assert 0 <= t <= MAX_TIME
            last = o + n - 1


class Pool:
    def __init__(self, name, time=0, transaction=0, flags=0, version=2,
                 data_block_size=128, nr_data_blocks=0, uuid='',
                 devices=None, seed=0):
        self.name = name
        self.time = time
        self.transaction = transaction
        self.flags = flags
        self.version = version          # None: attribute left out (v0.9 writes 1)
        self.data_block_size = data_block_size
        self.nr_data_blocks = nr_data_blocks
        self.uuid = uuid
        self.devices = devices if devices is not None else []
        self.seed = seed

    # -- facts
    @property
    def dumped_version(self):
        return 1 if self.version is None else self.version

    @property
    def nr_mappings(self):
        return sum(d.mapped_blocks for d in self.devices)

    def device(self, dev_id):
        for d in self.devices:
            if d.dev_id == dev_id:
                return d
        raise KeyError(dev_id)

    def dev_ids(self):
        return [d.dev_id for d in self.devices]

    def data_block_refs(self):
        """{data block: number of devices mapping it} (v0.9 restore gives
        every device its own tree, so this is also the data SM count)."""
        refs = {}
        for dev in self.devices:
            for _, d, _ in dev.mappings():
                refs[d] = refs.get(d, 0) + 1
        return refs

    def check(self):
        ids = self.dev_ids()
        assert ids == sorted(set(ids)), 'device ids must be unique, ascending'
        for dev in self.devices:
            dev.check(self.nr_data_blocks)

    def metadata_blocks_needed(self):
        """A generous metadata size (in 4 KiB blocks) for thin_restore."""
        leaves = sum(dev.mapped_blocks // 100 + 2 for dev in self.devices)
        shared = sum(1 for c in self.data_block_refs().values() if c >= 3) \
            if self.nr_mappings < 200000 else self.nr_mappings
        need = (64 + 2 * leaves + 2 * len(self.devices)
                + 2 * (self.nr_data_blocks // 16320 + 1) + 2 * (shared // 100))
        return min(max(2 * need, 2048), MAX_METADATA_BLOCKS)

    # -- XML input (v0.9 dialect, section 11.1)
    def xml_lines(self):
        attrs = 'uuid="%s" time="%d" transaction="%d" flags="%d"' % (
            self.uuid, self.time, self.transaction, self.flags)
        if self.version is not None:
            attrs += ' version="%d"' % self.version
        yield '<superblock %s data_block_size="%d" nr_data_blocks="%d">\n' % (
            attrs, self.data_block_size, self.nr_data_blocks)
        for dev in self.devices:
            yield ('  <device dev_id="%d" mapped_blocks="%d" transaction="%d" '
                   'creation_time="%d" snap_time="%d">\n' % (
                       dev.dev_id, dev.mapped_blocks, dev.transaction,
                       dev.creation_time, dev.snap_time))
            for o, d, n, t in dev.runs:
                if n == 1:
                    yield ('    <single_mapping origin_block="%d" '
                           'data_block="%d" time="%d"/>\n' % (o, d, t))
                else:
                    yield ('    <range_mapping origin_begin="%d" '
                           'data_begin="%d" length="%d" time="%d"/>\n'
                           % (o, d, n, t))
            yield '  </device>\n'
        yield '</superblock>\n'

    def write_xml(self, path):
        with open(path, 'w') as f:
            f.writelines(self.xml_lines())

    # -- expected thin_dump 0.9.0 output
    def _selected(self, dev_ids):
        if dev_ids is None:
            return self.devices
        wanted = set(dev_ids)
        return [d for d in self.devices if d.dev_id in wanted]

    def expected_xml(self, dev_ids=None, skip_mappings=False,
                     nr_data_blocks=None, transaction=None):
        nr = self.nr_data_blocks if nr_data_blocks is None else nr_data_blocks
        trans = self.transaction if transaction is None else transaction
        out = ['<superblock uuid="" time="%d" transaction="%d" flags="%d" '
               'version="%d" data_block_size="%d" nr_data_blocks="%d">\n' % (
                   self.time, trans, self.flags, self.dumped_version,
                   self.data_block_size, nr)]
        for dev in self._selected(dev_ids):
            out.append('  <device dev_id="%d" mapped_blocks="%d" '
                       'transaction="%d" creation_time="%d" snap_time="%d">\n'
                       % (dev.dev_id, dev.mapped_blocks, dev.transaction,
                          dev.creation_time, dev.snap_time))
            if not skip_mappings:
                for o, d, n, t in dev.normalised_runs():
                    if n == 1:
                        out.append('    <single_mapping origin_block="%d" '
                                   'data_block="%d" time="%d"/>\n' % (o, d, t))
                    else:
                        out.append('    <range_mapping origin_begin="%d" '
                                   'data_begin="%d" length="%d" time="%d"/>\n'
                                   % (o, d, n, t))
            out.append('  </device>\n')
        out.append('</superblock>\n')
        return ''.join(out).encode()

    def expected_human(self, dev_ids=None, skip_mappings=False,
                       nr_data_blocks=None, transaction=None):
        nr = self.nr_data_blocks if nr_data_blocks is None else nr_data_blocks
        trans = self.transaction if transaction is None else transaction
        out = ['begin superblock: "", %d, %d, %d, %d, %d, %d\n' % (
            self.time, trans, self.flags, self.dumped_version,
            self.data_block_size, nr)]
        for dev in self._selected(dev_ids):
            out.append('device: %d\nmapped_blocks: %d\ntransaction: %d\n'
                       'creation time: %d\nsnap time: %d\n' % (
                           dev.dev_id, dev.mapped_blocks, dev.transaction,
                           dev.creation_time, dev.snap_time))
            if not skip_mappings:
                for o, d, n, t in dev.normalised_runs():
                    if n == 1:
                        out.append('    %d -> %d, %d\n' % (o, d, t))
                    else:
                        out.append('    (%d..%d) -> (%d..%d), %d\n' % (
                            o, o + n - 1, d, d + n - 1, t))
            out.append('\n')
        out.append('end superblock\n')
        return ''.join(out).encode()

    def without_devices(self, dev_ids, transaction=None):
        """A copy of the model lacking some devices (held-root views)."""
        drop = set(dev_ids)
        p = Pool(self.name, self.time,
                 self.transaction if transaction is None else transaction,
                 self.flags, self.version, self.data_block_size,
                 self.nr_data_blocks, self.uuid,
                 [d for d in self.devices if d.dev_id not in drop], self.seed)
        return p


# ----------------------------------------------------------------
# Building blocks

class DataAllocator:
    """Hands out data blocks: contiguous runs, optionally with random gaps."""

    def __init__(self, rng, start=0, max_gap=0):
        self.rng = rng
        self.next = start
        self.max_gap = max_gap

    def take(self, n):
        if self.max_gap:
            self.next += self.rng.randint(0, self.max_gap)
        d = self.next
        self.next += n
        return d


def random_runs(rng, alloc, nr_mappings, max_time, origin_start=0,
                max_run=64, single_ratio=0.5, max_hole=16, time_min=0):
    """Runs of a device: a mix of singles and ranges with holes between."""
    runs = []
    o = origin_start
    left = nr_mappings
    while left > 0:
        o += rng.randint(0, max_hole)
        if rng.random() < single_ratio:
            n = 1
        else:
            n = min(left, rng.randint(2, max_run))
        t = rng.randint(time_min, max_time)
        runs.append((o, alloc.take(n), n, t))
        o += n
        left -= n
    return runs


def split_some_runs(rng, runs, ratio=0.1):
    """Split some ranges in two adjacent runs with the same time: thin_dump
    must join them again (one range in the dump)."""
    out = []
    for o, d, n, t in runs:
        if n >= 4 and rng.random() < ratio:
            k = rng.randint(1, n - 1)
            out.append((o, d, k, t))
            out.append((o + k, d + k, n - k, t))
        else:
            out.append((o, d, n, t))
    return out


def data_size(alloc, slack):
    return alloc.next + slack


# ----------------------------------------------------------------
# Scenarios

def scenario_many_devices(rng, nr_devices=50, max_mappings=60,
                          data_block_size=128, time=9, **_):
    alloc = DataAllocator(rng, max_gap=4)
    devs = []
    dev_id = 0
    for i in range(nr_devices):
        dev_id += rng.randint(1, 3) if i else 0
        ctime = rng.randint(0, time)
        runs = random_runs(rng, alloc, rng.randint(1, max_mappings), time,
                           max_run=12, max_hole=rng.choice([0, 3, 100]),
                           time_min=ctime)
        devs.append(Device(dev_id, transaction=rng.randint(0, 20),
                           creation_time=ctime,
                           snap_time=rng.randint(ctime, time), runs=runs))
    return Pool('many_devices', time=time, transaction=21,
                data_block_size=data_block_size,
                nr_data_blocks=data_size(alloc, 1000), devices=devs)


def scenario_snapshots(rng, origin_mappings=3000, nr_snaps=4,
                       data_block_size=128, **_):
    """An origin and a chain of snapshots.  Each snapshot starts as a copy of
    its origin's mappings (same data blocks, same times) and then overwrites
    a few blocks (new data blocks at the snapshot's time).  Data blocks end
    up mapped by 1 to nr_snaps+1 devices."""
    alloc = DataAllocator(rng)
    origin_runs = random_runs(rng, alloc, origin_mappings, 0, max_run=200,
                              single_ratio=0.2, max_hole=8)
    devs = [Device(0, transaction=1, creation_time=0, snap_time=0,
                   runs=origin_runs)]
    current = origin_runs
    for s in range(1, nr_snaps + 1):
        # pool time s: snapshot s of device s-1 taken
        devs[-1].snap_time = s
        blocks = {}
        for o, d, n, t in current:
            for i in range(n):
                blocks[o + i] = (d + i, t)
        # overwrite ~5% of the blocks, and write a few brand new ones
        keys = sorted(blocks)
        for o in rng.sample(keys, len(keys) // 20):
            blocks[o] = (alloc.take(1), s)
        top = keys[-1] + 1
        for o in range(top, top + rng.randint(1, 50)):
            blocks[o] = (alloc.take(1), s)
        runs = []
        for o in sorted(blocks):
            d, t = blocks[o]
            if runs:
                po, pd, pn, pt = runs[-1]
                if o == po + pn and d == pd + pn and t == pt:
                    runs[-1] = (po, pd, pn + 1, pt)
                    continue
            runs.append((o, d, 1, t))
        devs.append(Device(s, transaction=1 + s, creation_time=s,
                           snap_time=s, runs=runs))
        current = runs
    return Pool('snapshots', time=nr_snaps, transaction=nr_snaps + 1,
                data_block_size=data_block_size,
                nr_data_blocks=data_size(alloc, 77), devices=devs)


def scenario_empty_devices(rng, data_block_size=128, **_):
    devs = [Device(i, transaction=i, creation_time=i, snap_time=i)
            for i in (0, 1, 2, 7, 100)]
    alloc = DataAllocator(rng)
    devs.insert(3, Device(5, transaction=3, creation_time=3, snap_time=3,
                          runs=random_runs(rng, alloc, 20, 3)))
    return Pool('empty_devices', time=100, transaction=100,
                data_block_size=data_block_size,
                nr_data_blocks=data_size(alloc, 10), devices=devs)


def scenario_empty_pool(rng, **_):
    return Pool('empty_pool', time=0, transaction=0, data_block_size=128,
                nr_data_blocks=1024)


def scenario_one_million(rng, nr_mappings=1000000, data_block_size=128,
                         singles=150000, short=250000, **_):
    """Device 1: nr_mappings mappings, long ranges (1000..20000 blocks),
    short ranges (2..40) and singles shuffled together; device 2: a small
    neighbour, so the big tree is not alone."""
    lengths = [1] * singles
    left = short
    while left > 0:
        n = min(left, rng.randint(2, 40))
        lengths.append(n)
        left -= n
    left = nr_mappings - singles - short
    while left > 0:
        n = min(left, rng.randint(1000, 20000))
        lengths.append(n)
        left -= n
    rng.shuffle(lengths)
    alloc = DataAllocator(rng, max_gap=3)
    runs = []
    o = 0
    for n in lengths:
        o += rng.choice([0, 0, 1, 2, 50])
        runs.append((o, alloc.take(n), n, rng.randint(0, 3)))
        o += n
    small = random_runs(rng, alloc, 300, 3)
    devs = [Device(1, transaction=0, creation_time=0, snap_time=0, runs=runs),
            Device(2, transaction=5, creation_time=3, snap_time=3,
                   runs=small)]
    return Pool('one_million', time=3, transaction=6,
                data_block_size=data_block_size,
                nr_data_blocks=data_size(alloc, 4096), devices=devs)


def scenario_mixed(rng, nr_devices=6, data_block_size=1024, **_):
    """Ranges and singles mixed; some ranges split in adjacent runs."""
    alloc = DataAllocator(rng, max_gap=2)
    devs = []
    for i in range(nr_devices):
        runs = random_runs(rng, alloc, rng.randint(500, 6000), 12,
                           max_run=rng.choice([4, 30, 300]),
                           single_ratio=rng.choice([0.2, 0.5, 0.8]),
                           max_hole=rng.choice([0, 1, 5]))
        devs.append(Device(i * 10, transaction=i, creation_time=i,
                           snap_time=i + 1, runs=split_some_runs(rng, runs)))
    return Pool('mixed', time=12, transaction=40,
                data_block_size=data_block_size,
                nr_data_blocks=data_size(alloc, 500), devices=devs)


def scenario_random_sparse(rng, nr_devices=4, per_device=3000,
                           data_block_size=256, **_):
    """Virtual blocks scattered over a 2^32 range, data blocks scattered over
    a large data device (several data space-map bitmaps)."""
    nr_data = 200000
    time = 1000
    devs = []
    used = set()
    for i in range(nr_devices):
        origins = sorted(rng.sample(range(1 << 32), per_device))
        runs = []
        for o in origins:
            d = rng.randrange(nr_data)
            while d in used:
                d = rng.randrange(nr_data)
            used.add(d)
            runs.append((o, d, 1, rng.randint(0, time)))
        devs.append(Device(1000 + i * 777, transaction=i,
                           creation_time=i, snap_time=i, runs=runs))
    return Pool('random_sparse', time=time, transaction=77,
                data_block_size=data_block_size, nr_data_blocks=nr_data,
                devices=devs)


def scenario_extremes(rng, **_):
    """Option corners: largest data block size, times near 2^24, large
    transaction ids, version attribute absent (v0.9 restore writes 1),
    NEEDS_CHECK set (flags 1: a clean pool still passes), a uuid (stored
    by v0.9 restore, never printed by thin_dump), data device spanning
    several bitmaps with the last one partial, the largest device id."""
    alloc = DataAllocator(rng, start=16300, max_gap=5000)
    devs = []
    for i, dev_id in enumerate((0, 1, (1 << 24) - 1)):
        runs = random_runs(rng, alloc, 400, MAX_TIME, max_run=50,
                           time_min=MAX_TIME - 20)
        devs.append(Device(dev_id, transaction=(1 << 63) + i,
                           creation_time=MAX_TIME - 10 + i,
                           snap_time=MAX_TIME, runs=runs))
    return Pool('extremes', time=MAX_TIME, transaction=(1 << 64) - 1,
                version=None, flags=1, uuid='not-printed-back',
                data_block_size=2097152,
                nr_data_blocks=data_size(alloc, 12345), devices=devs)


def scenario_held_base(rng, name='held_snapshot', **_):
    """A small pool on which a metadata snapshot is built (held_root)."""
    alloc = DataAllocator(rng)
    devs = []
    for i in range(4):
        devs.append(Device(i, transaction=i, creation_time=i, snap_time=i,
                           runs=random_runs(rng, alloc, 700, 3, max_run=20)))
    return Pool(name, time=3, transaction=9, data_block_size=128,
                nr_data_blocks=data_size(alloc, 100), devices=devs)


def scenario_damage_base(rng, **_):
    """Pool the damage generator works on: bottom trees with internal nodes,
    a snapshot sharing data blocks (count 2), an empty device, and metadata
    small enough to copy quickly."""
    alloc = DataAllocator(rng)
    big = random_runs(rng, alloc, 2500, 2, max_run=10, single_ratio=0.6)
    devs = [Device(0, transaction=0, creation_time=0, snap_time=1, runs=big)]
    # device 1 = snapshot of 0 that overwrote a few blocks
    snap = []
    for o, d, n, t in big[:len(big) // 2]:
        snap.append((o, d, n, t))
    snap.append((10 ** 6, alloc.take(30), 30, 1))
    devs.append(Device(1, transaction=1, creation_time=1, snap_time=1,
                       runs=snap))
    devs.append(Device(2, transaction=2, creation_time=2, snap_time=2))
    devs.append(Device(3, transaction=2, creation_time=2, snap_time=2,
                       runs=random_runs(rng, alloc, 40, 2)))
    return Pool('damage_base', time=2, transaction=3, data_block_size=128,
                nr_data_blocks=data_size(alloc, 200), devices=devs)


SCENARIOS = {
    'many_devices': scenario_many_devices,
    'snapshots': scenario_snapshots,
    'empty_devices': scenario_empty_devices,
    'empty_pool': scenario_empty_pool,
    'one_million': scenario_one_million,
    'mixed': scenario_mixed,
    'random_sparse': scenario_random_sparse,
    'extremes': scenario_extremes,
    'held_snapshot': scenario_held_base,
    'held_snapshot_diverged': lambda rng, **kw: scenario_held_base(
        rng, name='held_snapshot_diverged', **kw),
    'damage_base': scenario_damage_base,
}


def generate(scenario, seed=1, **options):
    """Build the model of a named scenario.  options go to the scenario
    (e.g. nr_devices=, data_block_size=, nr_mappings=)."""
    rng = random.Random('%s/%d' % (scenario, seed))
    pool = SCENARIOS[scenario](rng, **options)
    pool.name = scenario
    pool.seed = seed
    pool.check()
    return pool


# ----------------------------------------------------------------
# Restoring

def make_sparse_file(path, size):
    with open(path, 'wb') as f:
        f.truncate(size)


def restore_with_debian(xml_path, meta_path, size):
    """Create a sparse metadata file of size bytes and fill it with
    /usr/sbin/thin_restore -i XML -o META.  Raises on failure."""
    make_sparse_file(meta_path, size)
    r = tools.run([tools.DEBIAN['thin_restore'], '-i', xml_path, '-o',
                   meta_path], timeout=tools.scaled(120))
    if r.rc != 0:
        raise RuntimeError('thin_restore failed (%d): %s' % (
            r.rc, r.stderr.decode(errors='replace')))
    return meta_path


def restore_pool(pool, directory):
    """Write pool's XML and restore it; returns (xml_path, meta_path)."""
    xml = os.path.join(directory, pool.name + '.xml')
    meta = os.path.join(directory, pool.name + '.meta')
    pool.write_xml(xml)
    restore_with_debian(xml, meta, pool.metadata_blocks_needed() * METADATA_BLOCK)
    return xml, meta
