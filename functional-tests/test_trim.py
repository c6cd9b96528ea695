# SPDX-License-Identifier: GPL-3.0-or-later
"""thin_trim: discard the data blocks no device maps.

The data device is a fully allocated file (fallocate) of exactly the
pool's size; after the trim its allocated extents (SEEK_DATA/SEEK_HOLE)
must be exactly the data blocks the pool model maps, merged into ranges.
  * TestTrimFile: the data device is the file itself (punched holes);
  * TestTrimLoop: the data device is a loop device over the file
    (BLKDISCARD, which the loop driver turns into punched holes), and the
    refusals: a data or metadata device held open O_EXCL (an active pool),
    a data device smaller than the metadata says.
"""

import os
import unittest

from lib import pools, tools
from lib.testing import ToolTestCase
from test_blockdev import attach, detach, loop_unavailable

TRIM = tools.ours('thin_trim')


def mapped_ranges(pool):
    blocks = sorted({d for dev in pool.devices for _, d, _ in dev.mappings()})
    out = []
    for b in blocks:
        if out and out[-1][1] == b:
            out[-1][1] = b + 1
        else:
            out.append([b, b + 1])
    return [tuple(r) for r in out]


def allocated_ranges(path, unit):
    """Allocated extents of a file, in units of unit bytes."""
    out = []
    with open(path, 'rb') as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        off = 0
        while off < size:
            try:
                start = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            out.append((start, end))
            off = end
    for s, e in out:
        assert s % unit == 0 and e % unit == 0, (s, e, unit)
    return [(s // unit, e // unit) for s, e in out]


def full_file(path, size):
    """A file of size bytes, every byte written (not just fallocated:
    unwritten extents count as holes for SEEK_DATA)."""
    chunk = b'\x5a' * (1 << 20)
    with open(path, 'wb') as f:
        left = size
        while left > 0:
            f.write(chunk[:min(left, len(chunk))])
            left -= len(chunk)
    return path


class TrimBase(ToolTestCase):
    # data files are written in full: pools of a few hundred MiB at most
    POOLS = ('snapshots', 'many_devices', 'empty_devices')

    def data_file(self, fx, extra=0):
        pool = fx.model
        unit = pool.data_block_size * 512
        d = tools.temp_dir('trim-')
        return full_file(os.path.join(d, 'data.img'),
                         pool.nr_data_blocks * unit + extra), unit

    def check_extents(self, fx, data, unit):
        got = allocated_ranges(data, unit)
        self.assertEqual(got, mapped_ranges(fx.model),
                         'allocated extents after the trim are not the mapped blocks')


class TestTrimFile(TrimBase):
    def test_pools(self):
        for name in self.POOLS:
            fx = pools.get(name)
            data, unit = self.data_file(fx, extra=12345)
            digest = tools.file_digest(fx.meta)
            r = self.run_tool([TRIM, '--metadata-dev', fx.meta, '--data-dev', data])
            self.assertExit(r, 0, name)
            self.assertEqual(r.out, '')
            self.assertUnchanged(fx.meta, digest)
            # mapped blocks stay, and so does the tail beyond the pool's blocks
            pool_bytes = fx.model.nr_data_blocks * unit
            expect = [[s * unit, e * unit] for s, e in mapped_ranges(fx.model)]
            if expect and expect[-1][1] == pool_bytes:
                expect[-1][1] = os.path.getsize(data)
            else:
                expect.append([pool_bytes, os.path.getsize(data)])
            self.assertEqual(allocated_ranges(data, 1), [tuple(x) for x in expect], name)
            os.unlink(data)

    def test_exact_size(self):
        fx = pools.get('snapshots')
        data, unit = self.data_file(fx)
        r = self.run_tool([TRIM, '-q', '--metadata-dev', fx.meta, '--data-dev', data])
        self.assertExit(r, 0)
        self.check_extents(fx, data, unit)

    def test_data_too_small(self):
        fx = pools.get('snapshots')
        data, unit = self.data_file(fx, extra=-1)
        digest = tools.file_digest(data)
        r = self.run_tool([TRIM, '--metadata-dev', fx.meta, '--data-dev', data])
        self.assertExit(r, 1)
        self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
        self.assertMentions(r.err, [r'too small'])
        self.assertUnchanged(data, digest, 'data device')

    def test_damaged_metadata_discards_nothing(self):
        from lib import metadata as md
        fx = pools.get('snapshots')
        d = tools.temp_dir()
        meta = tools.sparse_copy(fx.meta, os.path.join(d, 'm'))
        with md.Metadata(meta, writable=True) as img:
            leaf = img.leaves(img.device_roots()[3])[-1][0].location
            blk = bytearray(img.read(leaf))
            blk[80] ^= 1
            img.write(leaf, bytes(blk))
        data, unit = self.data_file(fx)
        r = self.run_tool([TRIM, '--metadata-dev', meta, '--data-dev', data])
        self.assertExit(r, 1)
        self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
        self.assertEqual(allocated_ranges(data, unit),
                         [(0, fx.model.nr_data_blocks)], 'something was discarded')

    def test_usage(self):
        meta = pools.get('snapshots').meta
        for argv in ([TRIM, '--metadata-dev', meta], [TRIM, '--data-dev', meta]):
            r = self.run_tool(argv)
            self.assertExit(r, 1)
            self.assertMentions(r.err, [r'usage'])
        r = self.run_tool([TRIM, '--metadata-dev', meta, '--data-dev', meta])
        self.assertExit(r, 1)


class TestTrimLoop(TrimBase):
    def setUp(self):
        why = loop_unavailable()
        if why:
            self.skipTest(why)

    def loop(self, path):
        dev = attach(path)
        self.addCleanup(detach, dev)
        return dev

    def test_discard_on_loop_device(self):
        for name in ('snapshots', 'many_devices'):
            fx = pools.get(name)
            data, unit = self.data_file(fx)
            dev = self.loop(data)
            r = self.run_tool([TRIM, '--metadata-dev', fx.meta, '--data-dev', dev])
            self.assertExit(r, 0, name)
            self.check_extents(fx, data, unit)

    def test_metadata_on_loop_device(self):
        fx = pools.get('snapshots')
        d = tools.temp_dir()
        meta = self.loop(tools.sparse_copy(fx.meta, os.path.join(d, 'meta')))
        data, unit = self.data_file(fx)
        dev = self.loop(data)
        r = self.run_tool([TRIM, '--metadata-dev', meta, '--data-dev', dev])
        self.assertExit(r, 0)
        self.check_extents(fx, data, unit)

    def test_active_pool_refused(self):
        """A device held open O_EXCL (as by an active pool): refused, and
        nothing discarded."""
        fx = pools.get('snapshots')
        d = tools.temp_dir()
        meta = self.loop(tools.sparse_copy(fx.meta, os.path.join(d, 'meta')))
        data, unit = self.data_file(fx)
        dev = self.loop(data)
        for held in (meta, dev):
            fd = os.open(held, os.O_RDONLY | os.O_EXCL)
            try:
                r = self.run_tool([TRIM, '--metadata-dev', meta, '--data-dev', dev])
            finally:
                os.close(fd)
            self.assertExit(r, 1, 'with %s held' % held)
            self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
            self.assertMentions(r.err, [r'busy', r'in use'])
            self.assertEqual(allocated_ranges(data, unit),
                             [(0, fx.model.nr_data_blocks)])


if __name__ == '__main__':
    unittest.main()
