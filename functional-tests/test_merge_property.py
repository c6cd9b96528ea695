# SPDX-License-Identifier: GPL-3.0-or-later
"""thin_merge's safety rule as a property over random pools of unusual shapes.

For every seed a pool is made with an origin O, two snapshots S1 and S2,
a snapshot X of O that shares O's whole tree, and an unrelated device.
O's size is picked to give full leaves (our restore packs leaves full),
one key past a full leaf, or a three-level tree; S1 and S2 write at the
first and the last key of O's leaves (read from the restored image),
next to them, in O's holes, beyond O's end, and some map O's own data
block (shared, as a snapshot's do).  S1 is first merged into O in place,
which splits full leaves into nodes near minimum fill; then S2 is merged
into the result in every mode (default, --rebase, --merged-only, -m,
--in-place, --in-place --rebase).

Property: whenever the input passes our thin_check, every merge exits 0
and its result passes our thin_check, Debian's 0.9.0 and upstream 1.x.
"""

import concurrent.futures
import os
import random
import shutil
import unittest

from lib import heldroot, mergepools, tools
from lib import metadata as md
from lib.poolgen import DataAllocator, Device, Pool
from lib.testing import ToolTestCase

MERGE = tools.ours('thin_merge')
RESTORE = tools.ours('thin_restore')
OUR_CHECK = tools.ours('thin_check')
MD_SIZE = 16 << 20
SEEDS = range(int(os.environ.get('THINP_MERGE_PROPERTY_SEEDS', '6')))
LEAF = 252                     # entries of a full bottom-level leaf

O, S1, S2, X, OTHER = 1, 2, 3, 4, 5


def checkers():
    return [('ours', [OUR_CHECK]), ('0.9.0', [tools.DEBIAN['thin_check']]),
            ('1.x', tools.onex('thin_check'))]


def origin_size(rng, seed):
    shapes = [lambda: LEAF * rng.randint(2, 6),          # full leaves
              lambda: LEAF * rng.randint(2, 6) + 1,      # one past a leaf
              lambda: LEAF * rng.randint(1, 4) - 1,
              lambda: LEAF * LEAF + rng.randint(1, 600)]  # three levels
    return shapes[seed % len(shapes)]()


def runs_of(mappings):
    """[(origin, data, 1, time)] from {origin: (data, time)}, merged into runs."""
    out = []
    for k in sorted(mappings):
        d, t = mappings[k]
        if out:
            po, pd, pn, pt = out[-1]
            if k == po + pn and d == pd + pn and t == pt:
                out[-1] = (po, pd, pn + 1, pt)
                continue
        out.append((k, d, 1, t))
    return out


class TestMergeProperty(ToolTestCase):
    def setUp(self):
        self.dir = tools.temp_dir('merge-prop-')
        self.addCleanup(shutil.rmtree, self.dir, True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def restore(self, pool, name):
        xml = self.path(name + '.xml')
        pool.write_xml(xml)
        meta = self.path(name)
        with open(meta, 'wb') as f:
            f.truncate(MD_SIZE)
        self.assertExit(self.run_tool([RESTORE, '-i', xml, '-o', meta]), 0)
        return meta

    def leaf_bounds(self, meta, dev):
        with md.Metadata(meta) as img:
            return [(n.keys[0], n.keys[-1])
                    for n, _ in img.leaves(img.device_roots()[dev])
                    if n.nr_entries]

    def snapshot_writes(self, rng, alloc, o_dev, bounds, end, n_extra):
        o_map = {o: (d, t) for o, d, t in o_dev.mappings()}
        keys = set()
        for lo, hi in bounds:
            for k in (lo, hi, lo - 1, hi + 1):
                if k >= 0 and rng.random() < 0.5:
                    keys.add(k)
        for _ in range(n_extra):
            keys.add(rng.randint(0, end + 50))
        keys.add(end + rng.randint(1, 40))       # beyond O's end
        out = {}
        for k in sorted(keys):
            if k in o_map and rng.random() < 0.2:
                out[k] = o_map[k]                # still shared with O
            else:
                out[k] = (alloc.take(1), rng.choice([1, 2]))
        return out

    def make_input(self, seed):
        rng = random.Random(1000 + seed)
        alloc = DataAllocator(rng)
        n = origin_size(rng, seed)
        holes = set(rng.sample(range(n), n // 20)) if seed % 2 else set()
        o_map = {}
        for k in range(n + len(holes)):
            if k not in holes:
                o_map[k] = (alloc.take(1), 0)
        o_dev = Device(O, transaction=1, creation_time=0, snap_time=1,
                       runs=runs_of(o_map))
        other = Device(OTHER, transaction=2, creation_time=0, snap_time=0,
                       runs=runs_of({k: (alloc.take(1), 0)
                                     for k in range(rng.randint(0, 300))}))
        base = Pool('p', time=2, transaction=3, data_block_size=128,
                    nr_data_blocks=alloc.next + 10000, uuid='',
                    devices=[o_dev, other])
        bounds = self.leaf_bounds(self.restore(base, 'layout'), O)
        end = max(o_map)
        s1 = self.snapshot_writes(rng, alloc, o_dev, bounds, end, 20)
        s2 = self.snapshot_writes(rng, alloc, o_dev, bounds, end, 40)
        devs = [o_dev,
                Device(S1, 1, 1, 1, runs_of(s1)),
                Device(S2, 1, 1, 2, runs_of(s2)),
                Device(X, 1, 1, 1, []),
                other]
        pool = Pool('p', time=2, transaction=3, data_block_size=128,
                    nr_data_blocks=alloc.next + 10000, uuid='',
                    devices=sorted(devs, key=lambda d: d.dev_id))
        meta = self.restore(pool, 'input')
        mergepools.share_root(meta, O, X, pool)    # X shares O's whole tree
        # S1 into O in place: full leaves split, near minimum fill
        r = self.run_tool([MERGE, '-i', meta, '--in-place', '--origin',
                           str(O), '--snapshot', str(S1), '-q'])
        self.assertExit(r, 0)
        return meta

    def check_all(self, path, what):
        with concurrent.futures.ThreadPoolExecutor(3) as ex:
            futs = [(name, ex.submit(tools.run, argv + [path],
                                     tools.scaled(60)))
                    for name, argv in checkers()]
            for name, fut in futs:
                r = fut.result()
                self.assertExit(r, 0, '%s thin_check of %s' % (name, what))

    def test_merge_results_pass_every_checker(self):
        for seed in SEEDS:
            with self.subTest(seed=seed):
                meta = self.make_input(seed)
                # restored and merged in place: the input must be good
                r = self.run_tool([OUR_CHECK, '-q', meta])
                self.assertExit(r, 0, 'the input (S1 merged in place)')
                held = self.path('held')
                shutil.copyfile(meta, held)
                heldroot.build_held_root(held)
                ids = ['--origin', str(O), '--snapshot', str(S2), '-q']
                modes = [('default', []), ('rebase', ['--rebase']),
                         ('merged-only', ['--merged-only']),
                         ('held', ['-m'])]
                for name, extra in modes:
                    out = self.path('out-' + name)
                    with open(out, 'wb') as f:
                        f.truncate(MD_SIZE)
                    src = held if name == 'held' else meta
                    r = self.run_tool([MERGE, '-i', src, '-o', out] + ids +
                                      extra)
                    self.assertExit(r, 0, name)
                    self.check_all(out, '%s output (seed %d)' % (name, seed))
                for name, extra in (('in-place', []),
                                    ('in-place-rebase', ['--rebase'])):
                    copy = self.path(name)
                    shutil.copyfile(meta, copy)
                    r = self.run_tool([MERGE, '-i', copy, '--in-place'] +
                                      ids + extra)
                    self.assertExit(r, 0, name)
                    self.check_all(copy, '%s result (seed %d)' % (name, seed))


if __name__ == '__main__':
    unittest.main()
