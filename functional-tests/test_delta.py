# SPDX-License-Identifier: GPL-3.0-or-later
"""thin_delta: the differences between two devices' mappings.

Inputs: generated pools of lib/pools.py (separate trees per device), pools
of lib/mergepools.py whose devices share leaves or a whole tree as the
kernel's snapshots do, lib/sharedpool.py's shared-section pool restored by
our thin_restore, and held metadata snapshots (-m).

For each input and pair of devices, plain and --verbose:
  * our output equals 0.9.0's byte for byte;
  * our output equals the model below, computed from the pool model (so two
    identical wrong outputs cannot pass);
  * plain output equals 1.x's but for the final newline 1.x leaves out
    (the other differences, written down in thin_delta.8, are checked in
    TestDeltaOnex).

The model (model_steps) works one virtual block at a time: the kind of a
block is same / different / left_only / right_only; a step goes on while
the kind stays, the blocks follow each other, and each device involved
maps the next block to the next data block.  Plain output merges steps of
one kind that follow each other; verbose prints every step.
"""

import os
import re
import unittest

from lib import heldroot, mergepools, pools, sharedpool, tools
from lib import metadata as md
from lib.testing import ToolTestCase

OURS = tools.ours('thin_delta')
DEBIAN = tools.DEBIAN['thin_delta']
TIMEOUT = tools.scaled(120)


# ----------------------------------------------------------------
# The model

def block_map(dev):
    return {o: d for o, d, _ in dev.mappings()}


def model_steps(left, right):
    """[(kind, begin, len, left_data, right_data)] for two {vblock: data}."""
    steps = []
    for k in sorted(set(left) | set(right)):
        ld, rd = left.get(k), right.get(k)
        if ld is not None and rd is not None:
            kind = 'same' if ld == rd else 'different'
        elif ld is not None:
            kind = 'left_only'
        else:
            kind = 'right_only'
        if steps:
            pk, pb, pn, pl, pr = steps[-1]
            if (pk == kind and pb + pn == k
                    and (ld is None or ld == pl + pn)
                    and (rd is None or rd == pr + pn)):
                steps[-1] = (pk, pb, pn + 1, pl, pr)
                continue
        steps.append((kind, k, 1, ld, rd))
    return steps


def model_xml(header, diff_attrs, steps, verbose):
    out = [header, '  <diff %s>\n' % diff_attrs]
    if verbose:
        cur = None
        for kind, b, n, ld, rd in steps:
            if kind != cur:
                if cur:
                    out.append('    </%s>\n' % cur)
                out.append('    <%s>\n' % kind)
                cur = kind
            if kind == 'different':
                out.append('      <range begin="%d" left_data_begin="%d" '
                           'right_data_begin="%d" length="%d"/>\n'
                           % (b, ld, rd, n))
            else:
                out.append('      <range begin="%d" data_begin="%d" '
                           'length="%d"/>\n'
                           % (b, ld if kind != 'right_only' else rd, n))
        if cur:
            out.append('    </%s>\n' % cur)
    else:
        merged = []
        for kind, b, n, _, _ in steps:
            if merged and merged[-1][0] == kind and sum(merged[-1][1:]) == b:
                merged[-1] = (kind, merged[-1][1], merged[-1][2] + n)
            else:
                merged.append((kind, b, n))
        for kind, b, n in merged:
            out.append('    <%s begin="%d" length="%d"/>\n' % (kind, b, n))
    out.append('  </diff>\n</superblock>\n')
    return ''.join(out)


def header(pool, nr_data_blocks=None, metadata_snap=0, transaction=None):
    s = ('<superblock uuid="" time="%d" transaction="%d" '
         'data_block_size="%d" nr_data_blocks="%d"' % (
             pool.time, pool.transaction if transaction is None else transaction,
             pool.data_block_size,
             pool.nr_data_blocks if nr_data_blocks is None else nr_data_blocks))
    if metadata_snap:
        s += ' metadata_snap="%d"' % metadata_snap
    return s + '>\n'


# ----------------------------------------------------------------
# Inputs: (name, pool model, metadata path, device pairs)

def _pairs(ids, limit=12):
    pairs = [(a, b) for a in ids for b in ids]
    step = max(1, len(pairs) // limit)
    return pairs[::step] + [(ids[0], ids[-1]), (ids[-1], ids[0])]


def _pool_input(name):
    fx = pools.get(name)
    return fx.model, fx.meta, None


def _merge_input(name):
    fx = mergepools.get(name)
    return fx.pool, fx.meta, None


_shared_cache = {}


def _shared_input(_name):
    if 'x' not in _shared_cache:
        sp = sharedpool.shared_snapshots(seed=pools.SEED)
        d = tools.temp_dir('delta-shared-')
        xml = os.path.join(d, 'shared.xml')
        meta = os.path.join(d, 'shared.meta')
        sp.write_xml(xml)
        mergepools.restore_with_ours(xml, meta, 16 << 20)
        _shared_cache['x'] = (sp.expanded(), meta, None)
    return _shared_cache['x']


INPUTS = {
    'snapshots': _pool_input,
    'random_sparse': _pool_input,
    'mixed': _pool_input,
    'extremes': _pool_input,
    'many_devices': _pool_input,
    'partially_shared': _merge_input,
    'shared_root': _merge_input,
    'internal_snapshots_shared': _merge_input,
    'shared_sections': _shared_input,
}


def _metadata_snap_of(meta):
    with md.Metadata(meta) as img:
        return img.superblock().metadata_snap


class TestDelta(ToolTestCase):
    """Generated: test_<input> (all checks on every pair of the input)."""

    def check_input(self, name):
        pool, meta, _ = INPUTS[name](name)
        ids = pool.dev_ids()
        hdr = header(pool, metadata_snap=_metadata_snap_of(meta))
        for a, b in _pairs(ids):
            steps = model_steps(block_map(pool.device(a)),
                                block_map(pool.device(b)))
            for verbose in (False, True):
                extra = ['--verbose'] if verbose else []
                argv = extra + ['--thin1', str(a), '--thin2', str(b), meta]
                what = '%s %s' % (name, ' '.join(argv[:-1]))
                ours = self.run_tool([OURS] + argv, timeout=TIMEOUT)
                self.assertExit(ours, 0, what)
                expected = model_xml(hdr, 'left="%d" right="%d"' % (a, b),
                                     steps, verbose)
                self.assertSameBytes(ours.stdout, expected.encode(),
                                     'our output vs the model (%s)' % what)
                deb = pools.oracle([DEBIAN] + argv)
                self.assertExit(deb, 0, what)
                self.assertSameBytes(ours.stdout, deb.stdout,
                                     'our output vs 0.9.0 (%s)' % what)
                if not verbose and not _metadata_snap_of(meta):
                    onex = pools.oracle(tools.onex('thin_delta') + argv)
                    self.assertExit(onex, 0, what)
                    # 1.x: flags="1" with needs_check (thin_delta.8)
                    onex_out = re.sub(rb'^(<superblock [^>]*?) flags="1"',
                                      rb'\1', onex.stdout)
                    self.assertSameBytes(ours.stdout, onex_out + b'\n',
                                         'our output vs 1.x (%s)' % what)


def _add_input_test(name):
    def fn(self):
        self.check_input(name)
    fn.__name__ = 'test_%s' % name
    setattr(TestDelta, fn.__name__, fn)


for _name in INPUTS:
    _add_input_test(_name)


class TestDeltaHeld(ToolTestCase):
    """-m reads the held root: nr_data_blocks 0, the held transaction."""

    def test_held_diverged(self):
        fx = pools.get('held_snapshot_diverged')
        view = fx.held_model()
        ids = view.dev_ids()
        hdr = header(view, nr_data_blocks=0,
                     transaction=fx.held['transaction'])
        for a, b in _pairs(ids, 6):
            argv = ['-m', '--thin1', str(a), '--thin2', str(b), fx.meta]
            ours = self.run_tool([OURS] + argv, timeout=TIMEOUT)
            self.assertExit(ours, 0)
            expected = model_xml(hdr, 'left="%d" right="%d"' % (a, b),
                                 model_steps(block_map(view.device(a)),
                                             block_map(view.device(b))),
                                 False)
            self.assertSameBytes(ours.stdout, expected.encode())
            deb = pools.oracle([DEBIAN] + argv)
            self.assertSameBytes(ours.stdout, deb.stdout, 'vs 0.9.0')

    def test_dropped_device_not_in_held_view(self):
        fx = pools.get('held_snapshot_diverged')
        gone = fx.held['dropped'][0]
        keep = fx.held_model().dev_ids()[0]
        r = self.run_tool([OURS, '-m', '--thin1', str(keep), '--thin2',
                           str(gone), fx.meta])
        self.assertExit(r, 1)
        self.assertEqual(r.stdout, b'')
        self.assertIn('Unable to find mapping tree for snap2 (%d)' % gone,
                      r.err)
        self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
        # the live view has it
        r = self.run_tool([OURS, '--thin1', str(keep), '--thin2', str(gone),
                           fx.meta])
        self.assertExit(r, 0)


class TestDeltaOnex(ToolTestCase):
    """--root1/--root2 (1.x only) and the documented differences."""

    def test_roots_as_1x(self):
        fx = mergepools.get('partially_shared')
        with md.Metadata(fx.meta) as img:
            roots = img.device_roots()
        r1, r2 = roots[0], roots[1]
        argv = ['--root1', str(r1), '--root2', str(r2), fx.meta]
        ours = self.run_tool([OURS] + argv)
        self.assertExit(ours, 0)
        onex = self.run_tool(tools.onex('thin_delta') + argv)
        self.assertExit(onex, 0)
        self.assertSameBytes(ours.stdout, onex.stdout + b'\n')
        self.assertIn(b'<diff left_root="%d" right_root="%d">' % (r1, r2),
                      ours.stdout)
        # and the same ranges as by device id
        by_id = self.run_tool([OURS, '--thin1', '0', '--thin2', '1', fx.meta])
        strip = lambda b: b.split(b'\n', 2)[2]
        self.assertEqual(strip(ours.stdout), strip(by_id.stdout))

    def test_mixed_root_and_id(self):
        fx = mergepools.get('partially_shared')
        with md.Metadata(fx.meta) as img:
            r2 = img.device_roots()[1]
        a = self.run_tool([OURS, '--thin1', '0', '--root2', str(r2), fx.meta])
        b = self.run_tool([OURS, '--thin1', '0', '--thin2', '1', fx.meta])
        self.assertExit(a, 0)
        self.assertEqual(a.stdout.split(b'\n')[2:], b.stdout.split(b'\n')[2:])


class TestDeltaErrors(ToolTestCase):
    def _one_line(self, r):
        self.assertExit(r, 1)
        self.assertEqual(r.stdout, b'', 'nothing on stdout on error')
        lines = r.err.strip().splitlines()
        self.assertEqual(len(lines), 1, r.err)
        return lines[0]

    def test_unknown_device(self):
        meta = pools.get('snapshots').meta
        line = self._one_line(self.run_tool([OURS, '--thin1', '0',
                                             '--thin2', '77', meta]))
        self.assertIn('snap2 (77)', line)
        line = self._one_line(self.run_tool([OURS, '--thin1', '1234567',
                                             '--thin2', '0', meta]))
        self.assertIn('snap1 (1234567)', line)

    def test_missing_device_option(self):
        meta = pools.get('snapshots').meta
        for argv in (['--thin1', '0', meta], ['--thin2', '0', meta],
                     ['--root1', '5', meta]):
            r = self.run_tool([OURS] + argv)
            self.assertExit(r, 1)
            self.assertMentions(r.err, [r'not specified'])
            self.assertEqual(r.stdout, b'')

    def test_bad_numbers(self):
        meta = pools.get('snapshots').meta
        for argv in (['--thin1', 'x', '--thin2', '0', meta],
                     ['--thin1', '0', '--thin2', '-1', meta],
                     ['--thin1', '0', '--root2', '99999999999999999999', meta],
                     ['-m12x', '--thin1', '0', '--thin2', '0', meta]):
            line = self._one_line(self.run_tool([OURS] + argv))
            self.assertMentions(line, [r"couldn't parse"])

    def test_root_beyond_device(self):
        meta = pools.get('snapshots').meta
        line = self._one_line(self.run_tool(
            [OURS, '--root1', str(1 << 40), '--thin2', '0', meta]))
        self.assertMentions(line, [r'beyond'])

    def test_root_not_a_node(self):
        """A root that is the superblock: a validation error, no crash."""
        meta = pools.get('snapshots').meta
        self._one_line(self.run_tool([OURS, '--root1', '0', '--thin2', '0',
                                      meta]))

    def test_damaged_leaf(self):
        """A leaf of the right device with a bad checksum: exit 1, one line."""
        fx = pools.get('snapshots')
        d = tools.temp_dir()
        meta = tools.sparse_copy(fx.meta, os.path.join(d, 'damaged.meta'))
        with md.Metadata(meta, writable=True) as img:
            root = img.device_roots()[1]
            leaf = img.leaves(root)[-1][0].location
            data = bytearray(img.read(leaf))
            data[100] ^= 0xff
            img.write(leaf, bytes(data))
        digest = tools.file_digest(meta)
        line = self._one_line(self.run_tool([OURS, '--thin1', '0',
                                             '--thin2', '1', meta]))
        self.assertMentions(line, [r'checksum', r'csum'])
        self.assertUnchanged(meta, digest)
        # a device that does not reach the leaf is fine
        r = self.run_tool([OURS, '--thin1', '0', '--thin2', '2', meta])
        self.assertExit(r, 0)

    def test_damage_with_stdout_a_regular_file(self):
        """Standard output a regular file (written straight to it): a walk
        that fails after more than the 1 MiB output buffer leaves the file
        as it was; a good walk writes what a pipe gets."""
        d = tools.temp_dir()
        xml = os.path.join(d, 'holes.xml')
        n = 40000      # every other block mapped: one line each, ~1.8 MB
        with open(xml, 'w') as f:
            f.write('<superblock uuid="" time="1" transaction="1" '
                    'data_block_size="128" nr_data_blocks="%d">\n' % (4 * n))
            f.write('  <device dev_id="0" mapped_blocks="%d" transaction="0" '
                    'creation_time="0" snap_time="0">\n' % n)
            for i in range(n):
                f.write('    <single_mapping origin_block="%d" '
                        'data_block="%d" time="0"/>\n' % (2 * i, 3 * i))
            f.write('  </device>\n')
            f.write('  <device dev_id="1" mapped_blocks="0" transaction="0" '
                    'creation_time="0" snap_time="0">\n  </device>\n')
            f.write('</superblock>\n')
        meta = os.path.join(d, 'holes.meta')
        with open(meta, 'wb') as f:
            f.truncate(16 << 20)
        r = self.run_tool([tools.ours('thin_restore'), '-i', xml, '-o', meta])
        self.assertExit(r, 0, 'thin_restore')
        argv = [OURS, '--thin1', '0', '--thin2', '1', meta]
        piped = self.run_tool(argv)
        self.assertExit(piped, 0)
        self.assertGreater(len(piped.stdout), 1 << 20)
        out = os.path.join(d, 'out.xml')
        # sh: "prefix" then the tool, both into the file (> : not O_APPEND)
        script = '{ printf prefix; exec "$@"; } > "$0"'
        r = self.run_tool(['sh', '-c', script, out] + argv)
        self.assertExit(r, 0)
        with open(out, 'rb') as f:
            self.assertSameBytes(f.read(), b'prefix' + piped.stdout)
        with md.Metadata(meta, writable=True) as img:
            root = img.device_roots()[0]
            leaf = img.leaves(root)[-1][0].location
            data = bytearray(img.read(leaf))
            data[100] ^= 0xff
            img.write(leaf, bytes(data))
        r = self.run_tool(['sh', '-c', script, out] + argv)
        self.assertExit(r, 1)
        self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
        with open(out, 'rb') as f:
            self.assertEqual(f.read(), b'prefix', 'the partial XML is cut off')

    def test_no_metadata_snap(self):
        meta = pools.get('snapshots').meta
        line = self._one_line(self.run_tool([OURS, '-m', '--thin1', '0',
                                             '--thin2', '1', meta]))
        self.assertMentions(line, [r'no current metadata snap'])


if __name__ == '__main__':
    unittest.main()
