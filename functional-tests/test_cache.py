# SPDX-License-Identifier: GPL-3.0-or-later
"""cache_check, cache_dump, cache_restore, cache_repair and
cache_metadata_size against Debian's 0.9.0 and upstream 1.x.

Fixtures are models (lib/cacheera.py) written as XML and restored by each
tool.  Round trips: our restore -> every checker passes, and every dump
(ours, 0.9's, 1.x's) gives back the model; their restores -> our check
passes and our dump equals theirs byte for byte (0.9's layout; for
version 2, where 0.9 ignores the dirty bitset, 1.x's content).  The
damage catalogue damages each block of a fixture in turn and several
superblock fields: each damaged input is rejected with exit 1 and one
line, and the verdict agrees with 0.9 and 1.x where they agree.
cache_check's --skip-* flags are judged against 1.x with each structure
damaged in turn; cache_restore's handling of <discards> against 0.9's,
and of hint widths against 1.x's (with a round trip through 1.x's dump).
"""

import os
import struct
import unittest

from lib import cacheera, tools
from lib.testing import ToolTestCase

DEB = tools.DEBIAN
ONEX = tools.ONEX_PDATA_TOOLS

need_debian = tools.needs_oracle(DEB['cache_check'])
need_onex = tools.needs_oracle(ONEX)

MODELS = {
    'empty': lambda: cacheera.CacheModel(0),
    'one': lambda: cacheera.CacheModel(1, fill=1.0, dirty=1.0),
    'block_boundary': lambda: cacheera.CacheModel(1019, fill=0.9, seed=1),
    'several_blocks': lambda: cacheera.CacheModel(5000, seed=2),
    'all_mapped_dirty': lambda: cacheera.CacheModel(2100, fill=1.0, dirty=1.0, seed=3),
    'none_mapped': lambda: cacheera.CacheModel(700, fill=0.0, seed=4),
}


class CacheTests(ToolTestCase):
    def setUp(self):
        self.d = tools.temp_dir()

    def xml(self, name, model):
        return cacheera.write(os.path.join(self.d, name + '.xml'), model.xml())

    def ours_restore(self, xml, version):
        return cacheera.restore_cache(
            [tools.ours('cache_restore')], xml,
            os.path.join(self.d, 'ours-v%d.meta' % version),
            ['--metadata-version', str(version)])

    def assertChecks(self, argv, meta, what):
        r = self.run_tool(list(argv) + [meta])
        self.assertExit(r, 0, what)


def _add(cls, name, fn):
    assert not hasattr(cls, name), name
    fn.__name__ = name
    setattr(cls, name, fn)


def _round_trip(name, make):
    @need_debian
    @need_onex
    def test(self):
        model = make()
        xml = self.xml(name, model)
        for version in (1, 2):
            meta = self.ours_restore(xml, version)
            self.assertChecks([tools.ours('cache_check')], meta, 'ours v%d' % version)
            ours = self.run_tool([tools.ours('cache_dump'), meta])
            self.assertExit(ours, 0)
            self.assertSameBytes(ours.stdout, model.xml(), 'our dump of v%d' % version)
            if not model.nr_blocks:
                continue        # both oracles fail on arrays of 0 entries
            self.assertChecks(tools.onex('cache_check'), meta, '1.x on ours v%d' % version)
            self.assertChecks([DEB['cache_check']], meta, '0.9 on ours v%d' % version)
            onex = self.run_tool(tools.onex('cache_dump') + [meta])
            self.assertSameBytes(ours.stdout, onex.stdout + b'\n', '1.x dump v%d' % version)
            if model.nr_blocks:
                deb = self.run_tool([DEB['cache_dump'], meta])
                self.assertSameBytes(deb.stdout, model.xml(with_dirty=(version == 1)),
                                     '0.9 dump v%d' % version)
    return test


def _theirs(name, make):
    @need_debian
    @need_onex
    def test(self):
        model = make()
        self.assertTrue(model.nr_blocks, '1.x cannot restore a cache of 0 '
                        'blocks: this model is not generated')
        xml = self.xml(name, model)
        # 1.x, version 2 (its default) and 1
        for version in (1, 2):
            meta = cacheera.restore_cache(tools.onex('cache_restore'), xml,
                                          os.path.join(self.d, 'onex.meta'),
                                          ['--metadata-version', str(version)])
            self.assertChecks([tools.ours('cache_check')], meta, 'ours on 1.x v%d' % version)
            ours = self.run_tool([tools.ours('cache_dump'), meta])
            self.assertSameBytes(ours.stdout, model.xml(), 'our dump of 1.x v%d' % version)
            if version == 1 and model.nr_blocks:
                deb = self.run_tool([DEB['cache_dump'], meta])
                self.assertSameBytes(ours.stdout, deb.stdout, '0.9 dump of 1.x v1')
        # 0.9 (version 1; its hint size field is 0 and it leaks blocks,
        # which 1.x reports too: LVM's call frees them)
        meta = cacheera.restore_cache([DEB['cache_restore']], xml,
                                      os.path.join(self.d, 'deb.meta'))
        deb = self.run_tool([DEB['cache_dump'], meta])
        ours = self.run_tool([tools.ours('cache_dump'), meta])
        self.assertExit(ours, 0)
        self.assertSameBytes(ours.stdout, deb.stdout, 'dump of 0.9 restore')
        self.assertChecks([tools.ours('cache_check'), '--ignore-non-fatal-errors'],
                          meta, 'ours on 0.9')
        self.assertChecks([tools.ours('cache_check'), '-q', '--clear-needs-check-flag'],
                          meta, 'LVM call on 0.9')
        self.assertChecks([tools.ours('cache_check')], meta, 'after the fix')
        self.assertChecks([DEB['cache_check']], meta, '0.9 after our fix')
        ours2 = self.run_tool([tools.ours('cache_dump'), meta])
        self.assertSameBytes(ours2.stdout, deb.stdout, 'dump after the fix')
    return test


class CacheRoundTrip(CacheTests):
    pass


for _n, _m in MODELS.items():
    _add(CacheRoundTrip, 'test_round_trip__' + _n, _round_trip(_n, _m))
    if _n != 'empty':       # 1.x cannot restore a cache of 0 blocks
        _add(CacheRoundTrip, 'test_theirs__' + _n, _theirs(_n, _m))


class CacheRepairTests(CacheTests):
    def test_repair_of_clean_metadata_is_identical(self):
        model = MODELS['several_blocks']()
        for version in (1, 2):
            meta = self.ours_restore(self.xml('m', model), version)
            out = cacheera.blank(os.path.join(self.d, 'out.meta'))
            r = self.run_tool([tools.ours('cache_repair'), '-i', meta, '-o', out])
            self.assertExit(r, 0)
            self.assertChecks([tools.ours('cache_check')], out, 'repaired')
            d = self.run_tool([tools.ours('cache_dump'), out])
            self.assertSameBytes(d.stdout, model.xml(), 'dump of the repair')

    def test_dump_repair_skips_a_damaged_mapping_block(self):
        model = cacheera.CacheModel(3000, fill=1.0, seed=9)
        meta = self.ours_restore(self.xml('m', model), 2)
        blk = self._mapping_block(meta, 1)
        _flip(meta, blk, 100)
        r = self.run_tool([tools.ours('cache_dump'), meta])
        self.assertExit(r, 1)
        self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
        r = self.run_tool([tools.ours('cache_dump'), '--repair', meta])
        self.assertExit(r, 0)
        # entries 509 .. 1017 (the second block of 8-byte values) are gone
        got = [int(l.split('"')[1]) for l in r.out.splitlines() if '<mapping ' in l]
        self.assertEqual(got, [c for c in range(3000) if not 509 <= c < 1018])

    def _mapping_block(self, meta, index):
        """The block holding array block `index` of the mapping array."""
        root = struct.unpack_from('<Q', tools.read_block(meta, 0), 192)[0]
        node = tools.read_block(meta, root)
        flags, = struct.unpack_from('<I', node, 4)
        self.assertEqual(flags, 2, 'a leaf root (small array)')
        nr, maxe = struct.unpack_from('<II', node, 16)
        keys = struct.unpack_from('<%dQ' % nr, node, 32)
        vals = struct.unpack_from('<%dQ' % nr, node, 32 + 8 * maxe)
        return vals[keys.index(index)]


def _flip(path, block, offset):
    with open(path, 'r+b') as f:
        f.seek(block * 4096 + offset)
        b = f.read(1)
        f.seek(block * 4096 + offset)
        f.write(bytes([b[0] ^ 0xff]))


# ----------------------------------------------------------------
# The damage catalogue

SB_DAMAGE = {
    # name: (offset, struct format, value, restamp the checksum)
    'bad_checksum': (4, '<I', 0x7, False),
    'bad_magic': (32, '<Q', 12345, True),
    'version_3': (40, '<I', 3, True),
    'version_0': (40, '<I', 0, True),
    'mapping_root_past_end': (192, '<Q', 1 << 40, True),
    'hint_root_past_end': (200, '<Q', 1 << 40, True),
    'dirty_root_past_end': (284, '<Q', 1 << 40, True),
    'mapping_root_is_superblock': (192, '<Q', 0, True),
    'hint_width_odd': (60, '<I', 3, True),
    'sm_nr_blocks_huge': (64, '<Q', 1 << 40, True),
    'wrong_blocknr': (8, '<Q', 7, True),
    'incompat_flags': (252, '<I', 1, True),
}


# Damage the oracles miss, which we reject: a metadata space map larger
# than the device (the kernel would allocate past its end) and a
# superblock naming another block as its own (the kernel's validator
# refuses it, so the cache would not activate), and incompatible feature
# flags the kernel does not know (it refuses them too).
STRICTER = {'sm_nr_blocks_huge', 'wrong_blocknr', 'incompat_flags'}


class CacheDamage(CacheTests):
    def _fixture(self):
        model = cacheera.CacheModel(2500, fill=0.8, seed=11)
        return self.ours_restore(self.xml('d', model), 2)

    def _judge(self, meta, what, stricter=False):
        ours = self.run_tool([tools.ours('cache_check'), meta])
        deb = tools.run([DEB['cache_check'], meta])
        onex = tools.run(tools.onex('cache_check') + [meta])
        if ours.rc != 0:
            self.assertExit(ours, 1, what)
            self.assertEqual(len(ours.err.strip().splitlines()), 1,
                             '%s: one line expected\n%s' % (what, ours.err))
        if (deb.rc == 0) == (onex.rc == 0) and not stricter:
            self.assertEqual(ours.rc == 0, deb.rc == 0,
                             '%s: 0.9 and 1.x agree (%s), we do not\n%s'
                             % (what, 'clean' if deb.rc == 0 else 'damaged',
                                ours.describe()))
        d = self.run_tool([tools.ours('cache_dump'), meta])
        if ours.rc != 0 and d.rc != 0:
            self.assertEqual(len(d.err.strip().splitlines()), 1, d.err)
        self.run_tool([tools.ours('cache_dump'), '--repair', meta])
        return ours.rc

    @need_debian
    @need_onex
    def test_superblock_damage(self):
        src = self._fixture()
        for name, (off, fmt, val, stamp) in SB_DAMAGE.items():
            meta = tools.sparse_copy(src, os.path.join(self.d, name))
            with open(meta, 'r+b') as f:
                f.seek(off)
                f.write(struct.pack(fmt, val))
            if stamp:
                cacheera.restamp(meta, cacheera.CACHE_SB_XOR)
            rc = self._judge(meta, name, name in STRICTER)
            if name != 'mapping_root_is_superblock':
                self.assertEqual(rc, 1, name)

    @need_debian
    @need_onex
    def test_every_block_damaged(self):
        """A byte flipped in each used block in turn (block headers and
        payload): rejected, one line, no crash."""
        src = self._fixture()
        size = os.path.getsize(src)
        used = [b for b in range(size // 4096)
                if any(tools.read_block(src, b))]
        self.assertGreater(len(used), 8)
        for b in used:
            for off in (0, 20, 2000):
                meta = tools.sparse_copy(src, os.path.join(self.d, 'blk'))
                _flip(meta, b, off)
                rc = self._judge(meta, 'block %d offset %d' % (b, off))
                self.assertEqual(rc, 1, 'block %d offset %d' % (b, off))


# ----------------------------------------------------------------
# cache_metadata_size

SIZE_CASES = [
    ['--nr-blocks', '0'], ['--nr-blocks', '1000'], ['--nr-blocks', '1000000'],
    ['--nr-blocks', '12345678'], ['--nr-blocks', '4000000000'],
    ['--nr-blocks', '1000', '--max-hint-width', '8'],
    ['--nr-blocks', '1000', '--max-hint-width', '0'],
    ['--block-size', '128', '--device-size', '1048576'],
    ['--block-size', '64', '--device-size', '100'],
    ['--block-size', '64k', '--device-size', '1g'],
    ['--block-size', '1m', '--device-size', '1t'],
    ['--nr-blocks', '1000', '--unit', 'm'], ['--nr-blocks', '1000', '-u', 'k'],
    ['--nr-blocks', '1000', '-u', 'G'], ['--nr-blocks', '1000', '-u', 'b'],
    ['--nr-blocks', '1000', '-n'], ['--nr-blocks', '1000', '-u', 'G', '-n'],
    ['--nr-blocks', '1000', '--numeric-only=short'],
    ['--nr-blocks', '1000', '--numeric-only=long'],
]

SIZE_ERRORS = [
    [], ['--block-size', '64'], ['--device-size', '100'],
    ['--block-size', '100', '--device-size', '10000'],
    ['--block-size', '2g', '--device-size', '1t'],
    ['--block-size', '64', '--device-size', '32'],
    ['--nr-blocks', 'abc'], ['--nr-blocks', '10', '--block-size', '64'],
    ['--nr-blocks', '10', '-u', 'x'],
]


class CacheMetadataSize(ToolTestCase):
    @need_onex
    def test_same_as_1x(self):
        for args in SIZE_CASES:
            ours = self.run_tool([tools.ours('cache_metadata_size')] + args)
            onex = self.run_tool(tools.onex('cache_metadata_size') + args)
            self.assertExit(ours, 0, str(args))
            self.assertEqual(ours.out, onex.out, str(args))

    @need_debian
    def test_agrees_with_0_9(self):
        """0.9 prints whole sectors, each term rounded down: the same
        number where the size is whole, else at most 1 sector below ours."""
        for args in SIZE_CASES:
            if '-u' in args or '--unit' in args or any(a.startswith('-n') or
                                                       a.startswith('--numeric')
                                                       for a in args):
                continue
            ours = self.run_tool([tools.ours('cache_metadata_size')] + args)
            deb = self.run_tool([DEB['cache_metadata_size']] + args)
            if deb.rc != 0 or '4000000000' in args:
                continue        # 0.9 does not cap at the largest metadata device
            o = float(ours.out.split()[0])
            d = float(deb.out.split()[0])
            self.assertTrue(0 <= o - d < 2, '%s: ours %s, 0.9 %s' % (args, o, d))

    def test_errors(self):
        for args in SIZE_ERRORS:
            r = self.run_tool([tools.ours('cache_metadata_size')] + args)
            self.assertExit(r, 1, str(args))
            self.assertNonEmpty(r.err)
            if os.access(ONEX, os.X_OK):
                o = tools.run(tools.onex('cache_metadata_size') + args)
                self.assertNotEqual(o.rc, 0, '1.x accepts %s' % args)


# ----------------------------------------------------------------
# cache_writeback

class CacheWriteback(CacheTests):
    BS = 128 * 512

    def _devices(self, model, seed=1):
        import random
        rng = random.Random(seed)
        fast = os.path.join(self.d, 'fast')
        origin = os.path.join(self.d, 'origin')
        with open(fast, 'wb') as f:
            f.write(rng.randbytes(model.nr_blocks * self.BS))
        with open(origin, 'wb') as f:
            f.truncate(model.nr_blocks * 5 * self.BS)
        return fast, origin

    def _expected_origin(self, model, fast, copied):
        with open(fast, 'rb') as f:
            data = f.read()
        out = bytearray(model.nr_blocks * 5 * self.BS)
        for cb, (ob, dirty) in model.mappings.items():
            if dirty and cb in copied:
                out[ob * self.BS:(ob + 1) * self.BS] = data[cb * self.BS:(cb + 1) * self.BS]
        return bytes(out)

    def test_writeback_copies_dirty_blocks_and_marks_them_clean(self):
        model = cacheera.CacheModel(600, fill=0.7, dirty=0.5, seed=21)
        for version in (1, 2):
            meta = self.ours_restore(self.xml('w', model), version)
            fast, origin = self._devices(model)
            r = self.run_tool([tools.ours('cache_writeback'), '--metadata-device', meta,
                               '--origin-device', origin, '--fast-device', fast,
                               '--buffer-size-meg', '1'])
            self.assertExit(r, 0)
            with open(origin, 'rb') as f:
                got = f.read()
            self.assertTrue(got == self._expected_origin(model, fast, model.mappings),
                            'origin content v%d' % version)
            self.assertChecks([tools.ours('cache_check')], meta, 'after writeback')
            if os.access(ONEX, os.X_OK):
                self.assertChecks(tools.onex('cache_check'), meta, '1.x after writeback')
            d = self.run_tool([tools.ours('cache_dump'), meta])
            self.assertNotIn('dirty="true"', d.out)
            self.assertEqual(d.out.count('<mapping '), len(model.mappings))

    def test_no_metadata_update_leaves_the_metadata(self):
        model = cacheera.CacheModel(300, fill=0.7, dirty=0.5, seed=22)
        meta = self.ours_restore(self.xml('w', model), 2)
        digest = tools.file_digest(meta)
        fast, origin = self._devices(model)
        r = self.run_tool([tools.ours('cache_writeback'), '--metadata-device', meta,
                           '--origin-device', origin, '--fast-device', fast,
                           '--no-metadata-update'])
        self.assertExit(r, 0)
        self.assertUnchanged(meta, digest)
        with open(origin, 'rb') as f:
            self.assertTrue(f.read() == self._expected_origin(model, fast, model.mappings))

    def test_offsets(self):
        model = cacheera.CacheModel(100, fill=1.0, dirty=1.0, seed=23)
        meta = self.ours_restore(self.xml('w', model), 2)
        fast, origin = self._devices(model)
        r = self.run_tool([tools.ours('cache_writeback'), '--metadata-device', meta,
                           '--origin-device', origin, '--fast-device', fast,
                           '--origin-device-offset', '128', '--fast-device-offset', '128'])
        # the fast device is one block short with an offset of one block
        self.assertExit(r, 1)
        self.assertEqual(len(r.err.strip().splitlines()), 1)
        with open(fast, 'ab') as f:
            f.write(bytes(self.BS))
        meta = self.ours_restore(self.xml('w', model), 2)
        r = self.run_tool([tools.ours('cache_writeback'), '--metadata-device', meta,
                           '--origin-device', origin, '--fast-device', fast,
                           '--origin-device-offset', '128', '--fast-device-offset', '128'])
        self.assertExit(r, 0)
        with open(fast, 'rb') as f:
            data = f.read()
        with open(origin, 'rb') as f:
            got = f.read()
        for cb, (ob, _) in model.mappings.items():
            self.assertTrue(got[(ob + 1) * self.BS:(ob + 2) * self.BS] ==
                            data[(cb + 1) * self.BS:(cb + 2) * self.BS], 'block %d' % cb)

    def test_unwritable_origin_fails_in_one_line(self):
        model = cacheera.CacheModel(50, fill=1.0, dirty=1.0, seed=24)
        meta = self.ours_restore(self.xml('w', model), 2)
        digest = tools.file_digest(meta)
        fast, _ = self._devices(model)
        r = self.run_tool([tools.ours('cache_writeback'), '--metadata-device', meta,
                           '--origin-device', self.d, '--fast-device', fast])
        self.assertExit(r, 1)
        self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
        self.assertUnchanged(meta, digest)


class CacheRestoreReaders(CacheTests):
    def test_any_xml_layout_restores_the_same(self):
        """The fast reader takes cache_dump's layout; anything else goes
        to expat: both must give the same metadata content."""
        model = cacheera.CacheModel(3000, seed=31)
        text = model.xml()
        odd = b'<?xml version="1.0"?>\n' + b'\n'.join(
            l.strip().replace(b'/>', b' />') for l in text.splitlines()) + b'\n'
        for xml in (text, odd):
            x = cacheera.write(os.path.join(self.d, 'x.xml'), xml)
            meta = cacheera.restore_cache([tools.ours('cache_restore')], x,
                                          os.path.join(self.d, 'x.meta'))
            d = self.run_tool([tools.ours('cache_dump'), meta])
            self.assertSameBytes(d.stdout, text)
        bad = cacheera.write(os.path.join(self.d, 'bad.xml'),
                             text.replace(b'<hints>', b'<hints><bogus/>'))
        out = cacheera.blank(os.path.join(self.d, 'bad.meta'))
        r = self.run_tool([tools.ours('cache_restore'), '-i', bad, '-o', out])
        self.assertExit(r, 1)
        self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)


# ----------------------------------------------------------------
# cache_check --skip-hints / --skip-discards / --skip-mappings

SKIP_OPTS = ([], ['--skip-hints'], ['--skip-discards'], ['--skip-mappings'])


class CacheCheckSkips(CacheTests):
    """A damaged structure is rejected unless its --skip-* flag says not
    to read it; each verdict is 1.x's (1.x reads nothing it is told to
    skip, and then leaves the space map alone)."""

    def _roots(self, meta):
        sb = tools.read_block(meta, 0)
        mapping, hint, discard = struct.unpack_from('<QQQ', sb, 192)
        dirty, = struct.unpack_from('<Q', sb, 284)
        return {'mapping': mapping, 'hint': hint, 'discard': discard, 'dirty': dirty}

    def _verdicts(self, meta):
        got = {}
        for opts in SKIP_OPTS:
            ours = self.run_tool([tools.ours('cache_check')] + opts + [meta])
            onex = tools.run(tools.onex('cache_check') + opts + [meta])
            key = opts[0] if opts else 'none'
            self.assertEqual(ours.rc == 0, onex.rc == 0,
                             '%s: 1.x says %d, we say\n%s' % (key, onex.rc, ours.describe()))
            if ours.rc:
                self.assertExit(ours, 1, key)
                self.assertEqual(len(ours.err.strip().splitlines()), 1, ours.err)
            got[key] = ours.rc
        return got

    @need_onex
    def test_damaged_structure_and_its_skip_flag(self):
        model = cacheera.CacheModel(2500, fill=0.8, seed=11)
        xml = self.xml('s', model)
        for version in (1, 2):
            src = self.ours_restore(xml, version)
            self.assertEqual(self._verdicts(src), dict.fromkeys(
                ['none', '--skip-hints', '--skip-discards', '--skip-mappings'], 0))
            roots = self._roots(src)
            cases = [('hint', '--skip-hints'), ('discard', '--skip-discards'),
                     ('mapping', '--skip-mappings')]
            if version == 2:
                cases.append(('dirty', '--skip-mappings'))
            for what, flag in cases:
                meta = tools.sparse_copy(src, os.path.join(self.d, what))
                _flip(meta, roots[what], 100)
                got = self._verdicts(meta)
                want = {k: (0 if k == flag else 1) for k in got}
                self.assertEqual(got, want, 'v%d, %s root damaged' % (version, what))

    @need_onex
    def test_skips_write_nothing(self):
        """With a flag, the space map is not compared: leaks are not
        reported nor freed, and needs_check stays set (as 1.x)."""
        model = cacheera.CacheModel(700, fill=0.8, seed=12)
        src = self.ours_restore(self.xml('n', model), 2)
        with open(src, 'r+b') as f:
            f.seek(4)
            flags, = struct.unpack('<I', f.read(4))
            f.seek(4)
            f.write(struct.pack('<I', flags | 2))
        cacheera.restamp(src, cacheera.CACHE_SB_XOR)
        for opts in SKIP_OPTS[1:]:
            for checker in ([tools.ours('cache_check')], tools.onex('cache_check')):
                meta = tools.sparse_copy(src, os.path.join(self.d, 'nc'))
                digest = tools.file_digest(meta)
                r = tools.run(checker + ['-q', '--clear-needs-check-flag'] + opts + [meta])
                self.assertEqual(r.rc, 0, '%s %s: %s' % (checker, opts, r.describe()))
                self.assertUnchanged(meta, digest)
        # without a flag both clear it
        for checker in ([tools.ours('cache_check')], tools.onex('cache_check')):
            meta = tools.sparse_copy(src, os.path.join(self.d, 'nc'))
            digest = tools.file_digest(meta)
            r = tools.run(checker + ['-q', '--clear-needs-check-flag', meta])
            self.assertEqual(r.rc, 0)
            self.assertNotEqual(tools.file_digest(meta), digest, str(checker))
            flags, = struct.unpack_from('<I', tools.read_block(meta, 0), 4)
            self.assertEqual(flags & 2, 0, str(checker))


# ----------------------------------------------------------------
# cache_restore: <discards>, and the hint widths

# (name, what goes where): '@end' before </superblock>, '@start' before
# <mappings>.  0.9 accepts discard sections and empty ranges (its
# restored discard bitset has no blocks: any block is out of bounds);
# 1.x rejects the elements; neither dump writes them.
DISCARD_XML = [
    ('empty_section', '@end', '<discards>\n</discards>'),
    ('self_closed', '@end', '<discards/>'),
    ('empty_range', '@end', '<discards><discard dbegin="5" dend="5"/></discards>'),
    ('zero_range', '@end', '<discards><discard dbegin="0" dend="0"/></discards>'),
    ('bare_empty_range', '@end', '<discard dbegin="0" dend="0"/>'),
    ('before_mappings', '@start', '<discards>\n</discards>'),
    ('two_sections', '@end', '<discards></discards><discards></discards>'),
    ('one_block', '@end', '<discards><discard dbegin="0" dend="1"/></discards>'),
    ('range', '@end', '<discards><discard dbegin="3" dend="7"/></discards>'),
    ('backwards', '@end', '<discards><discard dbegin="5" dend="2"/></discards>'),
    ('bad_number', '@end', '<discards><discard dbegin="x" dend="1"/></discards>'),
    ('no_dend', '@end', '<discards><discard dbegin="1"/></discards>'),
]


class CacheRestoreDiscards(CacheTests):
    @need_debian
    def test_discards_accepted_as_0_9(self):
        model = cacheera.CacheModel(900, seed=41)
        plain = model.xml()
        for name, where, text in DISCARD_XML:
            if where == '@end':
                xml = plain.replace(b'</superblock>', text.encode() + b'\n</superblock>')
            else:
                xml = plain.replace(b'  <mappings>', text.encode() + b'\n  <mappings>')
            x = cacheera.write(os.path.join(self.d, name + '.xml'), xml)
            deb = tools.run([DEB['cache_restore'], '-i', x, '-o',
                             cacheera.blank(os.path.join(self.d, 'deb.meta'))])
            out = cacheera.blank(os.path.join(self.d, 'ours.meta'))
            ours = self.run_tool([tools.ours('cache_restore'), '-i', x, '-o', out])
            self.assertEqual(ours.rc == 0, deb.rc == 0,
                             '%s: 0.9 exits %d, we\n%s' % (name, deb.rc, ours.describe()))
            if ours.rc:
                self.assertExit(ours, 1, name)
                self.assertEqual(len(ours.err.strip().splitlines()), 1, ours.err)
                continue
            # nothing of the discards in the metadata: the same dump
            d = self.run_tool([tools.ours('cache_dump'), out])
            self.assertSameBytes(d.stdout, plain, name)
            self.assertChecks([tools.ours('cache_check')], out, name)
            self.assertChecks([DEB['cache_check']], out, name)


HINT_WIDTHS = (0, 4, 8, 12, 16, 128, 3, 5)


class CacheHintWidths(CacheTests):
    """Hint values are 4 bytes for the kernel (it reads them as le32 and
    uses them only when the policy hint size is its policy's: smq's is 4)
    and for 1.x (its restore takes 4-byte hints whatever hint_width says,
    its check accepts a policy hint size of 4 only).  hint_width 0 is
    what 1.x's dump shows of 0.9's restores (size field 0 over 4-byte
    hints): we take it as 4, as we read such metadata."""

    def _xml(self, model, width):
        return cacheera.write(os.path.join(self.d, 'w%d.xml' % width),
                              model.xml().replace(b'hint_width="4"',
                                                  b'hint_width="%d"' % width))

    @need_onex
    @need_debian
    def test_widths_as_1x(self):
        model = cacheera.CacheModel(1500, seed=42)
        ref = cacheera.restore_cache(tools.onex('cache_restore'), self._xml(model, 4),
                                     os.path.join(self.d, 'ref.meta'))
        ref_dump = self.run_tool(tools.onex('cache_dump') + [ref]).stdout
        for width in HINT_WIDTHS:
            x = self._xml(model, width)
            onex_meta = cacheera.blank(os.path.join(self.d, 'onex.meta'))
            r = tools.run(tools.onex('cache_restore') + ['-i', x, '-o', onex_meta])
            c = tools.run(tools.onex('cache_check') + [onex_meta])
            # the facts about 1.x this support follows
            if width == 4:
                self.assertEqual((r.rc, c.rc), (0, 0), '1.x, width 4')
            elif width == 0:
                self.assertEqual(r.rc, 0, '1.x restores width 0')
            else:
                self.assertTrue(r.rc != 0 or 'hint size' in c.err, '1.x, width %d: %s'
                                % (width, c.describe()))
            out = cacheera.blank(os.path.join(self.d, 'ours.meta'))
            ours = self.run_tool([tools.ours('cache_restore'), '-i', x, '-o', out])
            if width not in (0, 4):
                self.assertExit(ours, 1, 'width %d' % width)
                self.assertEqual(len(ours.err.strip().splitlines()), 1, ours.err)
                continue
            self.assertExit(ours, 0, 'width %d' % width)
            sb = tools.read_block(out, 0)
            self.assertEqual(struct.unpack_from('<I', sb, 60)[0], 4, 'policy_hint_size')
            self.assertChecks([tools.ours('cache_check')], out, 'ours, width %d' % width)
            self.assertChecks(tools.onex('cache_check'), out, '1.x, width %d' % width)
            self.assertChecks([DEB['cache_check']], out, '0.9, width %d' % width)
            # 1.x reads what we wrote as what it writes of width 4
            theirs = self.run_tool(tools.onex('cache_dump') + [out])
            self.assertExit(theirs, 0)
            self.assertSameBytes(theirs.stdout, ref_dump, '1.x dump, width %d' % width)
            self.assertSameBytes(self.run_tool([tools.ours('cache_dump'), out]).stdout,
                                 model.xml(), 'our dump, width %d' % width)
            # 1.x's dump of its own width-0 restore comes back as width 4
            if width == 0:
                d0 = self.run_tool(tools.onex('cache_dump') + [onex_meta])
                self.assertIn(b'hint_width="0"', d0.stdout)
                x2 = cacheera.write(os.path.join(self.d, 'again.xml'), d0.stdout)
                out2 = cacheera.restore_cache([tools.ours('cache_restore')], x2,
                                              os.path.join(self.d, 'again.meta'))
                self.assertSameBytes(self.run_tool(tools.onex('cache_dump') + [out2]).stdout,
                                     ref_dump, '1.x round trip of width 0')
                self.assertChecks(tools.onex('cache_check'), out2, '1.x on the round trip')

    def test_hint_of_other_size_rejected(self):
        model = cacheera.CacheModel(10, fill=1.0, seed=43)
        text = model.xml()
        cb = sorted(model.hints)[0]
        old = b'data="%s"' % __import__('base64').b64encode(model.hints[cb])
        for data in (b'AQIDBAUGBwg=', b'AQI='):
            x = cacheera.write(os.path.join(self.d, 'h.xml'),
                               text.replace(old, b'data="' + data + b'"', 1))
            out = cacheera.blank(os.path.join(self.d, 'h.meta'))
            r = self.run_tool([tools.ours('cache_restore'), '-i', x, '-o', out])
            self.assertExit(r, 1)
            self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
