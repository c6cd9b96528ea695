# SPDX-License-Identifier: GPL-3.0-or-later
"""thin_rmap: the reverse map of data regions.

Expectation: model_rmap() below, from the pool model: per device, in
virtual block order, the mappings whose data block lies in a region, cut
into runs of consecutive data and virtual blocks; sorted by (data begin,
data end, device, virtual begin).

Oracles: on pools whose devices have separate trees, our output equals
1.x's byte for byte, and 0.9.0's once both are sorted (0.9.0 orders lines
with equal data begin arbitrarily).  On pools sharing leaves both upstream
versions walk a shared leaf for one device only (thin_rmap.8); there the
model alone is the expectation, and the test shows upstream reports less.
"""

import os
import unittest

from lib import mergepools, pools, sharedpool, tools
from lib.testing import ToolTestCase

OURS = tools.ours('thin_rmap')
DEBIAN = tools.DEBIAN['thin_rmap']


def model_rmap(pool, regions):
    def inside(d):
        return any(b <= d < e for b, e in regions)
    runs = []
    for dev in pool.devices:
        cur = None
        for o, d, _ in sorted(dev.mappings()):
            if not inside(d):
                continue
            if cur and d == cur[1] and o == cur[3] + (cur[1] - cur[0]):
                cur[1] += 1
                continue
            if cur:
                runs.append(tuple(cur))
            cur = [d, d + 1, dev.dev_id, o]
        if cur:
            runs.append(tuple(cur))
    runs.sort()
    return ''.join('data %d..%d -> thin(%d) %d..%d\n' % (
        b, e, dev, t, t + e - b) for b, e, dev, t in runs)


def region_sets(pool):
    n = pool.nr_data_blocks
    return [
        [(0, max(1, n))],                                   # everything
        [(0, 20), (n // 2, n // 2 + 40)],
        [(5, 6), (6, 7), (100, 200)],                       # touching
        [(0, 20), (10, 30)],                                # overlapping
        [(n // 3, n // 3 + 1)],                             # one block
        [(n + 10, n + 20)],                                 # beyond the pool
    ]


def argv_for(regions, meta):
    out = []
    for b, e in regions:
        out += ['--region', '%d..%d' % (b, e)]
    return out + [meta]


_shared = {}


def shared_sections():
    if 'x' not in _shared:
        sp = sharedpool.shared_snapshots(seed=pools.SEED)
        d = tools.temp_dir('rmap-shared-')
        xml, meta = os.path.join(d, 's.xml'), os.path.join(d, 's.meta')
        sp.write_xml(xml)
        mergepools.restore_with_ours(xml, meta, 16 << 20)
        _shared['x'] = (sp.expanded(), meta)
    return _shared['x']


class TestRmap(ToolTestCase):
    def check(self, pool, meta, upstream_exact):
        for regions in region_sets(pool):
            argv = argv_for(regions, meta)
            ours = self.run_tool([OURS] + argv)
            self.assertExit(ours, 0, str(regions))
            self.assertSameBytes(ours.stdout, model_rmap(pool, regions).encode(),
                                 'ours vs the model %s' % regions)
            onex = pools.oracle(tools.onex('thin_rmap') + argv)
            deb = pools.oracle([DEBIAN] + argv)
            self.assertExit(onex, 0)
            self.assertExit(deb, 0)
            if upstream_exact:
                self.assertSameBytes(ours.stdout, onex.stdout, 'ours vs 1.x')
                self.assertEqual(sorted(ours.out.splitlines()),
                                 sorted(deb.out.splitlines()), 'ours vs 0.9.0')
            else:
                self.assertLessEqual(len(deb.out.splitlines()),
                                     len(ours.out.splitlines()))

    def test_snapshots(self):
        fx = pools.get('snapshots')
        self.check(fx.model, fx.meta, True)

    def test_mixed(self):
        fx = pools.get('mixed')
        self.check(fx.model, fx.meta, True)

    def test_many_devices(self):
        fx = pools.get('many_devices')
        self.check(fx.model, fx.meta, True)

    def test_extremes(self):
        fx = pools.get('extremes')
        self.check(fx.model, fx.meta, True)

    def test_shared_leaves(self):
        pool, meta = shared_sections()
        self.check(pool, meta, False)
        # upstream misses devices there: ours must not
        n = pool.nr_data_blocks
        ours = self.run_tool([OURS, '--region', '0..%d' % n, meta])
        deb = pools.oracle([DEBIAN, '--region', '0..%d' % n, meta])
        self.assertGreater(len(ours.out.splitlines()), len(deb.out.splitlines()))

    def test_shared_root(self):
        fx = mergepools.get('shared_root')
        self.check(fx.pool, fx.meta, False)

    def test_spilled_sort(self):
        """A tiny in-memory chunk forces the spill-and-merge path."""
        fx = pools.get('snapshots')
        regions = [(0, fx.model.nr_data_blocks)]
        env = dict(os.environ, THINP_RMAP_CHUNK_RUNS='5')
        r = self.run_tool([OURS] + argv_for(regions, fx.meta), env=env)
        self.assertExit(r, 0)
        self.assertSameBytes(r.stdout, model_rmap(fx.model, regions).encode())


class TestRmapErrors(ToolTestCase):
    def one_line(self, argv, pattern):
        r = self.run_tool([OURS] + argv)
        self.assertExit(r, 1)
        self.assertEqual(r.stdout, b'')
        self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
        self.assertMentions(r.err, [pattern])

    def test_bad_regions(self):
        meta = pools.get('snapshots').meta
        for reg, pat in (('5', 'no dots'), ('5..3', r'end <= begin'),
                         ('5..5', r'end <= begin'), ('a..b', 'parse'),
                         ('1...4', 'parse'), ('1..2x', 'parse'),
                         ('-1..4', 'parse')):
            self.one_line(['--region', reg, meta], pat)

    def test_no_region(self):
        r = self.run_tool([OURS, pools.get('snapshots').meta])
        self.assertExit(r, 1)
        self.assertMentions(r.err, [r'no regions'])

    def test_damaged_leaf(self):
        from lib import metadata as md
        fx = pools.get('snapshots')
        d = tools.temp_dir()
        meta = tools.sparse_copy(fx.meta, os.path.join(d, 'damaged.meta'))
        with md.Metadata(meta, writable=True) as img:
            leaf = img.leaves(img.device_roots()[2])[0][0].location
            data = bytearray(img.read(leaf))
            data[64] ^= 0x55
            img.write(leaf, bytes(data))
        digest = tools.file_digest(meta)
        self.one_line(['--region', '0..10', meta], r'checksum|csum')
        self.assertUnchanged(meta, digest)


if __name__ == '__main__':
    unittest.main()
