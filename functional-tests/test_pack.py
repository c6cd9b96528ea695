# SPDX-License-Identifier: GPL-3.0-or-later
"""thin_metadata_pack / thin_metadata_unpack: 1.x's pack format both ways.

Expectation (model_unpacked): the input with every block that is not
metadata zeroed, a block being metadata when its stored checksum is the
CRC-32C of the rest xor one of the block-type constants (computed here in
Python with lib/metadata.py's CRC, independently of the C code).

For each input pool:
  * ours pack -> 1.x unpack == model (1.x reads what we write);
  * 1.x pack -> ours unpack == model (we read what 1.x writes, every
    instruction of its encoding);
  * ours pack -> ours unpack == model.
Plus: damaged packs, -f, the output checks.
"""

import os
import struct
import unittest

from lib import mergepools, pools, sharedpool, tools
from lib import metadata as md
from lib.testing import ToolTestCase

PACK = tools.ours('thin_metadata_pack')
UNPACK = tools.ours('thin_metadata_unpack')
TIMEOUT = tools.scaled(120)

KINDS = (160774, 9031977, 146538381, 121107, 240779, 160478, 595846735)


def is_metadata(block):
    stored = struct.unpack_from('<I', block)[0]
    raw = md.crc32c_raw(block[4:])
    return any(raw ^ k == stored for k in KINDS)


def model_unpacked(path):
    """bytes of the expected unpacked image (read block by block, holes skipped)."""
    size = os.path.getsize(path)
    out = bytearray(size - size % 4096)
    with open(path, 'rb') as f:
        off = 0
        while off < len(out):
            try:
                off = os.lseek(f.fileno(), off, os.SEEK_DATA)
            except OSError:
                break
            off -= off % 4096
            if off >= len(out):
                break
            f.seek(off)
            blk = f.read(4096)
            if blk.count(0) != 4096 and is_metadata(blk):
                out[off:off + 4096] = blk
            off += 4096
    return bytes(out)


_shared = {}


def shared_meta():
    if 'x' not in _shared:
        sp = sharedpool.shared_snapshots(seed=pools.SEED)
        d = tools.temp_dir('pack-shared-')
        xml, meta = os.path.join(d, 's.xml'), os.path.join(d, 's.meta')
        sp.write_xml(xml)
        mergepools.restore_with_ours(xml, meta, 16 << 20)
        _shared['x'] = meta
    return _shared['x']


INPUTS = {
    'snapshots': lambda: pools.get('snapshots').meta,
    'held_snapshot_diverged': lambda: pools.get('held_snapshot_diverged').meta,
    'extremes': lambda: pools.get('extremes').meta,
    'one_million': lambda: pools.get('one_million').meta,
    'shared_sections': shared_meta,
}


class TestPack(ToolTestCase):
    def check_input(self, name):
        meta = INPUTS[name]()
        expected = model_unpacked(meta)
        self.assertTrue(any(expected), 'the model found no metadata')
        d = tools.temp_dir()
        ours_pack = os.path.join(d, 'ours.pack')
        onex_pack = os.path.join(d, 'onex.pack')
        digest = tools.file_digest(meta)
        r = self.run_tool([PACK, '-i', meta, '-o', ours_pack], timeout=TIMEOUT)
        self.assertExit(r, 0)
        self.assertUnchanged(meta, digest)
        r = self.run_tool(tools.onex('thin_metadata_pack') + ['-i', meta, '-o', onex_pack],
                          timeout=TIMEOUT)
        self.assertExit(r, 0)
        # 1.x's pack now and then leaves out a run of metadata blocks (seen:
        # 628 blocks of one_million, 1 run in ~10).  What we must read from
        # its pack is what 1.x itself unpacks from it; that in turn must be
        # the model with at most some blocks zeroed.
        onex_unpacked = self.unpack(tools.onex('thin_metadata_unpack'), onex_pack,
                                    d, '1.x -> 1.x')
        self.assertEqual(len(onex_unpacked), len(expected))
        for b in range(0, len(expected), 4096):
            blk = onex_unpacked[b:b + 4096]
            if blk != expected[b:b + 4096]:
                self.assertEqual(blk.count(0), 4096, '1.x -> 1.x: block %d is '
                                 'neither the model nor zero' % (b // 4096))
        for what, tool, pack, want in (
                ('ours -> 1.x', tools.onex('thin_metadata_unpack'), ours_pack, expected),
                ('1.x -> ours', [UNPACK], onex_pack, onex_unpacked),
                ('ours -> ours', [UNPACK], ours_pack, expected)):
            got = self.unpack(tool, pack, d, what)
            self.assertEqual(len(got), len(want), what)
            self.assertTrue(got == want, '%s: unpacked metadata differs '
                            'from the expectation' % what)
        # the pack is about as small as 1.x's
        self.assertLess(os.path.getsize(ours_pack),
                        2 * os.path.getsize(onex_pack) + 4096)

    def unpack(self, tool, pack, d, what):
        out = os.path.join(d, 'out.meta')
        if os.path.exists(out):
            os.unlink(out)
        r = self.run_tool(tool + ['-i', pack, '-o', out], timeout=TIMEOUT)
        self.assertExit(r, 0, what)
        with open(out, 'rb') as f:
            return f.read()


def _add(name):
    def fn(self):
        self.check_input(name)
    fn.__name__ = 'test_%s' % name
    setattr(TestPack, fn.__name__, fn)


for _n in INPUTS:
    _add(_n)


class TestPackErrors(ToolTestCase):
    def setUp(self):
        self.d = tools.temp_dir()
        self.meta = pools.get('snapshots').meta
        self.pack = os.path.join(self.d, 'good.pack')
        r = self.run_tool([PACK, '-q', '-i', self.meta, '-o', self.pack])
        self.assertExit(r, 0)

    def one_line(self, argv, patterns):
        r = self.run_tool(argv)
        self.assertExit(r, 1)
        self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
        self.assertMentions(r.err, patterns)
        return r

    def damaged(self, name, fn):
        with open(self.pack, 'rb') as f:
            data = bytearray(f.read())
        data = fn(data)
        p = os.path.join(self.d, name)
        with open(p, 'wb') as f:
            f.write(data)
        return p

    def test_not_a_pack(self):
        out = os.path.join(self.d, 'o.meta')
        self.one_line([UNPACK, '-i', self.meta, '-o', out], [r'not a pack file'])
        self.assertFalse(os.path.exists(out), 'output created for a bad pack')

    def test_bad_version(self):
        p = self.damaged('v.pack', lambda b: b[:8] + struct.pack('<Q', 2) + b[16:])
        self.one_line([UNPACK, '-i', p, '-o', os.path.join(self.d, 'o')],
                      [r'version'])

    def test_truncated_and_corrupt(self):
        cases = {
            'truncated': lambda b: b[:len(b) - 100],
            'half_length': lambda b: b[:32 + 4],
            'flipped': lambda b: b[:200] + bytes([b[200] ^ 0xff]) + b[201:],
            'huge_length': lambda b: b[:32] + struct.pack('<Q', 1 << 40) + b[40:],
        }
        for name, fn in cases.items():
            p = self.damaged(name + '.pack', fn)
            out = os.path.join(self.d, name + '.meta')
            self.one_line([UNPACK, '-i', p, '-o', out], [r'corrupt pack'])
            with open(out, 'rb') as f:
                self.assertEqual(f.read(4096), bytes(4096),
                                 '%s: block 0 of the output not invalidated' % name)

    def test_force(self):
        out = os.path.join(self.d, 'o.meta')
        r = self.run_tool([UNPACK, '-i', self.pack, '-o', out])
        self.assertExit(r, 0)
        digest = tools.file_digest(out)
        self.one_line([UNPACK, '-i', self.pack, '-o', out], [r'-f'])
        self.assertUnchanged(out, digest, 'output without -f')
        r = self.run_tool([UNPACK, '-f', '-i', self.pack, '-o', out])
        self.assertExit(r, 0)
        # pack refuses to overwrite metadata too
        self.one_line([PACK, '-i', self.meta, '-o', out], [r'-f'])
        r = self.run_tool([PACK, '-f', '-i', self.meta, '-o', out])
        self.assertExit(r, 0)

    def test_output_is_input(self):
        digest = tools.file_digest(self.meta)
        self.one_line([PACK, '-i', self.meta, '-o', self.meta, '-f'], [r'is the input'])
        self.assertUnchanged(self.meta, digest)
        self.one_line([UNPACK, '-i', self.pack, '-o', self.pack, '-f'], [r'is the input'])

    def test_output_directory(self):
        self.one_line([PACK, '-i', self.meta, '-o', self.d], [r'directory'])
        self.one_line([UNPACK, '-i', self.pack, '-o', self.d], [r'directory'])

    def test_xml_input(self):
        out = os.path.join(self.d, 'x.pack')
        self.one_line([PACK, '-i', pools.get('snapshots').xml, '-o', out],
                      [r'looks like XML', r'too small'])
        self.assertFalse(os.path.exists(out))

    def test_missing_options(self):
        for argv in ([PACK, '-i', self.meta], [PACK, '-o', 'x'],
                     [UNPACK, '-i', self.pack]):
            r = self.run_tool(argv)
            self.assertExit(r, 1)
            self.assertMentions(r.err, [r'usage'])


if __name__ == '__main__':
    unittest.main()
