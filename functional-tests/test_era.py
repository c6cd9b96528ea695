# SPDX-License-Identifier: GPL-3.0-or-later
"""era_check, era_dump, era_restore and era_invalidate against Debian's
0.9.0 and upstream 1.x, with models from lib/cacheera.py.

Round trips: our restore passes every checker, our dump (plain and
--logical) equals 0.9's byte for byte and the model; 0.9's and 1.x's
restores pass our check and dump identically.  era_invalidate's list is
the model's (blocks whose era, or an archived writeset's era, is at
least the threshold) and 0.9's output byte for byte.  The damage
catalogue flips bytes in every used block and superblock fields.
"""

import os
import re
import struct
import unittest

from lib import cacheera, tools
from lib.testing import ToolTestCase

DEB = tools.DEBIAN
ONEX = tools.ONEX_PDATA_TOOLS

need_debian = tools.needs_oracle(DEB['era_check'])
need_onex = tools.needs_oracle(ONEX)

MODELS = {
    'no_writesets': lambda: cacheera.EraModel(100, nr_writesets=0, seed=1),
    'one_writeset': lambda: cacheera.EraModel(2000, nr_writesets=1, seed=2),
    'three_writesets': lambda: cacheera.EraModel(5000, nr_writesets=3, seed=3),
    'block_boundary': lambda: cacheera.EraModel(1019, nr_writesets=2, seed=4),
    'disjoint_writesets': lambda: _disjoint(cacheera.EraModel(3000, nr_writesets=3, seed=6)),
}


def _disjoint(model):
    seen = set()
    for era in sorted(model.writesets):
        model.writesets[era] -= seen
        seen |= model.writesets[era]
    return model


class EraBase(ToolTestCase):
    def setUp(self):
        self.d = tools.temp_dir()

    def restore(self, argv, model, name='m'):
        x = cacheera.write(os.path.join(self.d, name + '.xml'), model.xml())
        return cacheera.restore_cache(argv, x, os.path.join(self.d, name + '.meta'))


class EraRoundTrip(EraBase):
    pass


def _add(cls, name, fn):
    fn.__name__ = name
    setattr(cls, name, fn)


def _round_trip(make):
    @need_debian
    @need_onex
    def test(self):
        model = make()
        meta = self.restore([tools.ours('era_restore')], model)
        for argv in ([tools.ours('era_check')], [DEB['era_check']], tools.onex('era_check')):
            self.assertExit(self.run_tool(argv + [meta]), 0, argv[-1])
        ours = self.run_tool([tools.ours('era_dump'), meta])
        self.assertSameBytes(ours.stdout, model.xml(), 'our dump')
        deb = self.run_tool([DEB['era_dump'], meta])
        self.assertSameBytes(ours.stdout, deb.stdout, '0.9 dump')
        ours = self.run_tool([tools.ours('era_dump'), '--logical', meta])
        if _no_block_in_two_writesets(model):
            # 0.9 keeps the OLDEST writeset's era for a block several mark
            deb = self.run_tool([DEB['era_dump'], '--logical', meta])
            self.assertSameBytes(ours.stdout, deb.stdout, '0.9 logical dump')
        eras = [int(l.split('"')[3]) for l in ours.out.splitlines() if '<era ' in l]
        self.assertEqual(eras, model.logical_eras())
        for since in (0, 1, model.current_era - 2, model.current_era - 1, model.current_era + 5):
            ours = self.run_tool([tools.ours('era_invalidate'), '--written-since', str(since), meta])
            self.assertExit(ours, 0)
            self.assertSameBytes(ours.stdout,
                                 cacheera.invalidate_xml(model.written_since(since)),
                                 'invalidate since %d (model)' % since)
            deb = self.run_tool([DEB['era_invalidate'], '--written-since', str(since), meta])
            self.assertSameBytes(ours.stdout, deb.stdout, 'invalidate since %d (0.9)' % since)
    return test


def _no_block_in_two_writesets(model):
    seen = set()
    for blocks in model.writesets.values():
        if seen & blocks:
            return False
        seen |= blocks
    return True


def _theirs(make):
    @need_debian
    @need_onex
    def test(self):
        model = make()
        for name, argv in (('deb', [DEB['era_restore']]),
                           ('onex', tools.onex('era_restore'))):
            meta = self.restore(argv, model, name)
            self.assertExit(self.run_tool([tools.ours('era_check'), meta]), 0, name)
            ours = self.run_tool([tools.ours('era_dump'), meta])
            deb = self.run_tool([DEB['era_dump'], meta])
            self.assertSameBytes(ours.stdout, deb.stdout, 'dump of %s' % name)
            self.assertSameBytes(ours.stdout, model.xml(), 'model, %s' % name)
    return test


for _n, _m in MODELS.items():
    _add(EraRoundTrip, 'test_round_trip__' + _n, _round_trip(_m))
    _add(EraRoundTrip, 'test_theirs__' + _n, _theirs(_m))


class EraSnapshot(EraBase):
    def test_no_snapshot_is_one_line_error(self):
        meta = self.restore([tools.ours('era_restore')], MODELS['one_writeset']())
        r = self.run_tool([tools.ours('era_invalidate'), '--written-since', '1',
                           '--metadata-snapshot', meta])
        self.assertExit(r, 1)
        self.assertEqual(len(r.err.strip().splitlines()), 1)
        self.assertMentions(r.err, [r'no metadata snapshot'])

    def test_snapshot_of_the_same_trees(self):
        """A snapshot block sharing the live trees (as the kernel takes
        it: a copy of the superblock, each root's count raised)."""
        model = MODELS['three_writesets']()
        meta = self.restore([tools.ours('era_restore')], model)
        snap = _add_snapshot(meta)
        r = self.run_tool([tools.ours('era_check'), meta])
        self.assertExit(r, 0)
        for since in (0, model.current_era - 2):
            r = self.run_tool([tools.ours('era_invalidate'), '--metadata-snapshot',
                               '--written-since', str(since), meta])
            self.assertExit(r, 0)
            self.assertSameBytes(r.stdout, cacheera.invalidate_xml(model.written_since(since)))
            if os.access(DEB['era_invalidate'], os.X_OK):
                d = self.run_tool([DEB['era_invalidate'], '--metadata-snapshot',
                                   '--written-since', str(since), meta])
                self.assertSameBytes(r.stdout, d.stdout, '0.9 with snapshot')
        self.assertTrue(snap)


def _add_snapshot(meta):
    """Takes a metadata snapshot by hand: copies block 0 to a free block,
    points the superblock at it and adds the references to the space map
    (ref-count tree untouched: counts 1 -> 2 are bitmap values)."""
    sb = bytearray(tools.read_block(meta, 0))
    ws_root, era_root = struct.unpack_from('<QQ', sb, 200)
    nr_blocks, = struct.unpack_from('<Q', sb, 44)
    idx_root, = struct.unpack_from('<Q', sb, 44 + 16)
    size = os.path.getsize(meta) // 4096
    free = next(b for b in range(size - 1, 0, -1) if not any(tools.read_block(meta, b)))
    snap = bytearray(sb)
    struct.pack_into('<Q', snap, 8, free)
    with open(meta, 'r+b') as f:
        f.seek(free * 4096)
        f.write(snap)
    cacheera.restamp(meta, cacheera.ERA_SB_XOR, free)
    struct.pack_into('<Q', sb, 216, free)
    with open(meta, 'r+b') as f:
        f.write(sb)
    cacheera.restamp(meta, cacheera.ERA_SB_XOR)
    _sm_add(meta, idx_root, [free, ws_root, era_root])
    return free


def _sm_add(meta, index_block, blocks):
    """+1 to each block's count in the metadata space map's bitmaps
    (counts below 3 only), fixing the bitmaps' checksums and the index's
    nr_free."""
    idx = bytearray(tools.read_block(meta, index_block))
    for b in blocks:
        entry = b // 16320
        bm_block, = struct.unpack_from('<Q', idx, 16 + 16 * entry)
        bm = bytearray(tools.read_block(meta, bm_block))
        e = b % 16320
        word_off = 16 + 8 * (e // 32)
        w, = struct.unpack_from('<Q', bm, word_off)
        shift = (e % 32) * 2
        pair = (w >> shift) & 3
        count = ((pair & 1) << 1) | ((pair >> 1) & 1)
        assert count < 2, count
        if count == 0:
            nr_free, = struct.unpack_from('<I', idx, 16 + 16 * entry + 8)
            struct.pack_into('<I', idx, 16 + 16 * entry + 8, nr_free - 1)
        count += 1
        pair = ((count >> 1) & 1) | ((count & 1) << 1)
        w = (w & ~(3 << shift)) | (pair << shift)
        struct.pack_into('<Q', bm, word_off, w)
        with open(meta, 'r+b') as f:
            f.seek(bm_block * 4096)
            f.write(bm)
        cacheera.restamp(meta, 240779, bm_block)
    with open(meta, 'r+b') as f:
        f.seek(index_block * 4096)
        f.write(idx)
    cacheera.restamp(meta, 160478, index_block)
    # the allocated count in the superblock's space map root
    sb = bytearray(tools.read_block(meta, 0))
    nr_alloc, = struct.unpack_from('<Q', sb, 52)
    struct.pack_into('<Q', sb, 52, nr_alloc + 1)
    with open(meta, 'r+b') as f:
        f.write(sb)
    cacheera.restamp(meta, cacheera.ERA_SB_XOR)


def _flip(path, block, offset):
    with open(path, 'r+b') as f:
        f.seek(block * 4096 + offset)
        b = f.read(1)
        f.seek(block * 4096 + offset)
        f.write(bytes([b[0] ^ 0xff]))


class _Crashed:
    rc = 134


def _oracle(argv):
    """An oracle's verdict; one that crashes (0.9's era_check aborts on
    some damage) rejects the input."""
    try:
        return tools.run(argv)
    except tools.CommandFailure:
        return _Crashed()


SB_DAMAGE = {
    'bad_checksum': (4, '<I', 7, False),
    'bad_magic': (32, '<Q', 1, True),
    'version_2': (40, '<I', 2, True),
    'writeset_root_past_end': (200, '<Q', 1 << 40, True),
    'era_root_past_end': (208, '<Q', 1 << 40, True),
    'era_root_zero': (208, '<Q', 0, True),
    'snapshot_past_end': (216, '<Q', 1 << 40, True),
    'current_writeset_past_end': (192, '<Q', 1 << 40, True),
}
# The oracles do not read the metadata snapshot or the current writeset
# of the superblock; a pointer past the end is damage all the same.
STRICTER = {'snapshot_past_end', 'current_writeset_past_end'}


class EraDamage(EraBase):
    def _judge(self, meta, what, stricter=False):
        ours = self.run_tool([tools.ours('era_check'), meta])
        deb = _oracle([DEB['era_check'], meta])
        onex = _oracle(tools.onex('era_check') + [meta])
        # 0.9's and 1.x's era_check do not read the metadata space map
        stricter = stricter or 'metadata space map' in ours.err
        if ours.rc != 0:
            self.assertExit(ours, 1, what)
            self.assertEqual(len(ours.err.strip().splitlines()), 1, '%s\n%s' % (what, ours.err))
        if (deb.rc == 0) == (onex.rc == 0) and not stricter:
            self.assertEqual(ours.rc == 0, deb.rc == 0,
                             '%s: 0.9 and 1.x agree, we do not\n%s' % (what, ours.describe()))
        for extra in ([], ['--logical'], ['--repair']):
            self.run_tool([tools.ours('era_dump')] + extra + [meta])
        self.run_tool([tools.ours('era_invalidate'), '--written-since', '1', meta])
        return ours.rc

    @need_debian
    @need_onex
    def test_superblock_damage(self):
        src = self.restore([tools.ours('era_restore')], MODELS['three_writesets']())
        for name, (off, fmt, val, stamp) in SB_DAMAGE.items():
            meta = tools.sparse_copy(src, os.path.join(self.d, name))
            with open(meta, 'r+b') as f:
                f.seek(off)
                f.write(struct.pack(fmt, val))
            if stamp:
                cacheera.restamp(meta, cacheera.ERA_SB_XOR)
            self.assertEqual(self._judge(meta, name, name in STRICTER), 1, name)

    @need_debian
    @need_onex
    def test_every_block_damaged(self):
        src = self.restore([tools.ours('era_restore')], MODELS['three_writesets']())
        used = [b for b in range(os.path.getsize(src) // 4096) if any(tools.read_block(src, b))]
        self.assertGreater(len(used), 8)
        for b in used:
            for off in (0, 20, 2000):
                meta = tools.sparse_copy(src, os.path.join(self.d, 'blk'))
                _flip(meta, b, off)
                self.assertEqual(self._judge(meta, 'block %d offset %d' % (b, off)), 1,
                                 'block %d offset %d' % (b, off))


# Found by fuzz/fuzz-era-xml.c (minimized): 0.9's and 1.x's era_restore
# write these, and our era_check rejects what they wrote.
FUTURE_WRITESET = b'''<superblock uuid="" block_size="128" nr_blocks="8" current_era="3">
  <writeset era="4" nr_bits="8">
    <bit block="6" value="true"/>
  </writeset>
  <era_array>
    <era block="0" era="1"/>
  </era_array>
</superblock>
'''

FUTURE_ERA = b'''<superblock uuid="" block_size="128" nr_blocks="8" current_era="3">
  <writeset era="2" nr_bits="8">
  </writeset>
  <era_array>
    <era block="0" era="1"/>
    <era block="5" era="4"/>
  </era_array>
</superblock>
'''


class EraRestoreFutureEras(EraBase):
    """era_restore never exits 0 having written metadata era_check rejects:
    an era past the superblock's current era is refused in one line."""

    def _refused(self, xml, words):
        x = cacheera.write(os.path.join(self.d, 'f.xml'), xml)
        meta = cacheera.blank(os.path.join(self.d, 'f.meta'))
        r = self.run_tool([tools.ours('era_restore'), '-i', x, '-o', meta])
        self.assertExit(r, 1, 'era_restore')
        self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
        self.assertIn(words, r.err)

    def test_writeset_past_the_current_era(self):
        self._refused(FUTURE_WRITESET, 'writeset of era 4 is past the current era 3')

    def test_era_array_value_past_the_current_era(self):
        self._refused(FUTURE_ERA, 'block 5 has era 4, past the current era 3')

    def test_the_current_era_itself_restores_and_checks(self):
        xml = FUTURE_ERA.replace(b'era="4"', b'era="3"')
        x = cacheera.write(os.path.join(self.d, 'c.xml'), xml)
        meta = cacheera.restore_cache([tools.ours('era_restore')], x,
                                      os.path.join(self.d, 'c.meta'))
        self.assertExit(self.run_tool([tools.ours('era_check'), meta]), 0, 'era_check')


class EraRestoreReaders(EraBase):
    def test_any_xml_layout_restores_the_same(self):
        """The fast reader takes era_dump's layout; anything else goes to
        expat: both give the same metadata content."""
        model = MODELS['three_writesets']()
        text = model.xml()
        odd = b'\n'.join(l.strip().replace(b'/>', b' />')
                         for l in text.splitlines()) + b'\n'
        for xml in (text, odd):
            x = cacheera.write(os.path.join(self.d, 'x.xml'), xml)
            meta = cacheera.restore_cache([tools.ours('era_restore')], x,
                                          os.path.join(self.d, 'x.meta'))
            d = self.run_tool([tools.ours('era_dump'), meta])
            self.assertSameBytes(d.stdout, text)


BTREE_NODE_XOR = 121107


def _share_one_bitset(meta, nr_writesets):
    """Rewrites the writeset tree's single leaf so that nr_writesets
    writesets (eras 1..nr_writesets) all name the first one's bitset, with
    the leaf's checksum restamped: every structure passes its own checks,
    and only the count of blocks reached is out of bounds."""
    with open(meta, 'r+b') as f:
        f.seek(200)
        root = struct.unpack('<Q', f.read(8))[0]
        f.seek(root * 4096)
        leaf = bytearray(f.read(4096))
        flags, nr, max_entries, value_size = struct.unpack_from('<I8xIII', leaf, 4)
        assert flags == 2 and value_size == 12 and nr >= 1 and max_entries >= nr_writesets
        values = 32 + 8 * max_entries
        first = bytes(leaf[values:values + 12])
        struct.pack_into('<I', leaf, 16, nr_writesets)
        for i in range(nr_writesets):
            struct.pack_into('<Q', leaf, 32 + 8 * i, i + 1)
            leaf[values + 12 * i:values + 12 * (i + 1)] = first
        f.seek(root * 4096)
        f.write(leaf)
    cacheera.restamp(meta, BTREE_NODE_XOR, block=root)


class EraWalkBudget(EraBase):
    """A command's walks together reach at most the device's blocks
    (issue #10): 150 writesets naming one 10-block bitset on a 512-block
    device end every reader with one line and nothing written, before any
    output, instead of dumping 39 million bits or combining 150 writesets
    with 260,608 era entries."""

    NR_BITS = 260608        # 4072 words: 8 array blocks and a root

    def _meta(self, nr_writesets):
        model = cacheera.EraModel(self.NR_BITS, current_era=200, nr_writesets=1, seed=9)
        x = cacheera.write(os.path.join(self.d, 'w.xml'), model.xml())
        meta = cacheera.blank(os.path.join(self.d, 'w.meta'), mib=2)
        r = self.run_tool([tools.ours('era_restore'), '-i', x, '-o', meta])
        self.assertExit(r, 0, 'era_restore')
        if nr_writesets > 1:
            _share_one_bitset(meta, nr_writesets)
        return meta, model

    def _readers(self, meta):
        return [[tools.ours('era_dump'), meta],
                [tools.ours('era_dump'), '--logical', meta],
                [tools.ours('era_dump'), '--repair', meta],
                [tools.ours('era_invalidate'), '--written-since', '1', meta]]

    def test_one_bitset_named_150_times_is_refused_before_output(self):
        meta, _ = self._meta(150)
        for argv in self._readers(meta):
            r = self.run_tool(argv)
            self.assertExit(r, 1, ' '.join(argv[:-1]))
            self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
            self.assertIn('more blocks than the metadata device holds', r.err)
            self.assertNotIn(b'<writeset', r.stdout)
            self.assertNotIn(b'<era ', r.stdout)
            self.assertNotIn(b'<block', r.stdout)
        self.assertExit(self.run_tool([tools.ours('era_check'), meta]), 1, 'era_check')

    def test_a_few_writesets_naming_one_bitset_stay_within_the_budget(self):
        # 20 x 10 blocks: under 512, so the dump goes on (the sharing is
        # era_check's to find), and every writeset carries the same bits.
        meta, model = self._meta(20)
        r = self.run_tool([tools.ours('era_dump'), meta])
        self.assertExit(r, 0, 'era_dump')
        self.assertEqual(r.stdout.count(b'<writeset '), 20)
        (only,) = model.writesets.values()
        self.assertEqual(r.stdout.count(b'value="true"'), 20 * len(only))
        self.assertExit(self.run_tool([tools.ours('era_check'), meta]), 1, 'era_check')

    def test_the_unshared_original_dumps_as_the_model(self):
        meta, model = self._meta(1)
        r = self.run_tool([tools.ours('era_dump'), '--logical', meta])
        self.assertExit(r, 0, 'era_dump --logical')
        eras = [int(e) for e in re.findall(rb'<era block="\d+" era="(\d+)"', r.stdout)]
        self.assertEqual(eras, model.logical_eras())
