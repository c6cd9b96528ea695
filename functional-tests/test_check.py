# SPDX-License-Identifier: GPL-3.0-or-later
"""thin_check on good pools, on the damage catalogue, and its options.

Good pools (lib/poolgen.py) must pass; every damage case (lib/damage.py)
must give exit 1 with a message naming the problem, without a crash or a
hang.  The input must never change unless --clear-needs-check-flag asks
for it.  test_oracle_* tests check the generators themselves against the
Debian 0.9.0 and 1.x checkers.
"""

import os
import unittest

from lib import damage, metadata, pools, tools
from lib.testing import ToolTestCase

OUR_CHECK = tools.ours('thin_check')
DEBIAN_CHECK = tools.DEBIAN['thin_check']
ONEX_CHECK = tools.onex('thin_check')
BIG_TIMEOUT = tools.scaled(120)


def _add(cls, name, fn):
    assert not hasattr(cls, name), name
    fn.__name__ = name
    setattr(cls, name, fn)


class CheckMixin:
    def check(self, args, meta, expect_rc, quiet=False, timeout=BIG_TIMEOUT):
        """Run our thin_check; assert the exit code and that the input is
        left byte-identical."""
        digest = tools.file_digest(meta)
        r = self.run_tool([OUR_CHECK] + args + [meta], timeout=timeout)
        self.assertUnchanged(meta, digest)
        self.assertExit(r, expect_rc)
        if quiet:
            self.assertEqual(r.stdout + r.stderr, b'',
                             '-q must silence all output')
        return r


# ----------------------------------------------------------------
# Good pools

class TestCheckGoodPools(CheckMixin, ToolTestCase):
    """test_<options>__<pool>: exit 0 and the input unchanged."""


GOOD_VARIANTS = [
    ('plain', []),
    ('quiet', ['-q']),
    ('quiet_long', ['--quiet']),
    ('super_block_only', ['--super-block-only']),
    ('skip_mappings', ['--skip-mappings']),
    ('ignore_non_fatal_errors', ['--ignore-non-fatal-errors']),
]


def _good_test(pool_name, args):
    def test(self):
        fx = pools.get(pool_name)
        self.check(args, fx.meta, 0, quiet=('-q' in args or
                                           '--quiet' in args))
    return test


def _good_snap_test(pool_name, args):
    def test(self):
        fx = pools.get(pool_name)
        self.check(args, fx.meta, 0)
    return test


def _good_oracle_test(pool_name, argv_prefix, args):
    def test(self):
        fx = pools.get(pool_name)
        r = pools.oracle(argv_prefix + args + [fx.meta])
        self.assertExit(r, 0, 'oracle on a generated pool')
    return test


for _pool in pools.POOL_NAMES:
    for _name, _args in GOOD_VARIANTS:
        _add(TestCheckGoodPools, 'test_%s__%s' % (_name, _pool),
             _good_test(_pool, _args))
    _add(TestCheckGoodPools, 'test_oracle_debian__%s' % _pool,
         _good_oracle_test(_pool, [DEBIAN_CHECK], []))
    _add(TestCheckGoodPools, 'test_oracle_1x__%s' % _pool,
         _good_oracle_test(_pool, ONEX_CHECK, []))
    if _pool in pools.HELD_POOLS:
        for _name, _args in (('metadata_snap', ['-m']),
                             ('metadata_snap_long', ['--metadata-snap'])):
            _add(TestCheckGoodPools, 'test_%s__%s' % (_name, _pool),
                 _good_snap_test(_pool, _args))
        _add(TestCheckGoodPools, 'test_oracle_debian_metadata_snap__%s'
             % _pool, _good_oracle_test(_pool, [DEBIAN_CHECK], ['-m']))
        _add(TestCheckGoodPools, 'test_oracle_1x_metadata_snap__%s' % _pool,
             _good_oracle_test(_pool, ONEX_CHECK, ['-m']))


class TestCheckOptions(CheckMixin, ToolTestCase):
    def test_metadata_snap_absent(self):
        """-m on a pool without a metadata snapshot: exit 1, says so."""
        fx = pools.get('many_devices')
        r = self.check(['-m'], fx.meta, 1)
        self.assertMentions(r.err, [r'snapshot', r'metadata.snap'])

    def test_override_mapping_root_real_root(self):
        fx = pools.get('snapshots')
        with metadata.Metadata(fx.meta) as img:
            root = img.superblock().data_mapping_root
        self.check(['--override-mapping-root', str(root)], fx.meta, 0)

    def test_override_mapping_root_wrong_root(self):
        """The details root given as mapping root: wrong value size."""
        fx = pools.get('snapshots')
        with metadata.Metadata(fx.meta) as img:
            root = img.superblock().device_details_root
        r = self.check(['--override-mapping-root', str(root)], fx.meta, 1)
        self.assertMentions(r.err, [r'value.size'])

    def test_needs_check_flag_alone_passes(self):
        """A clean pool with NEEDS_CHECK set passes (the flag is not an
        error by itself) and is not modified without the clear option."""
        d = tools.temp_dir()
        meta = tools.sparse_copy(pools.get('mixed').meta,
                                 os.path.join(d, 'flagged.meta'))
        metadata.set_needs_check(meta)
        self.check([], meta, 0)
        self.assertEqual(metadata.read_flags(meta), 1)


# ----------------------------------------------------------------
# --clear-needs-check-flag

def _block0_with_flags(path, flags):
    with metadata.Metadata(path) as img:
        sb = img.superblock()
    sb.flags = flags
    return bytes(sb.pack())


def _rest_of_file(path):
    with open(path, 'rb') as f:
        f.seek(metadata.BLOCK_SIZE)
        return f.read()


class TestClearNeedsCheckFlag(CheckMixin, ToolTestCase):
    def flagged_copy(self, src, name='flagged.meta'):
        d = tools.temp_dir()
        meta = tools.sparse_copy(src, os.path.join(d, name))
        metadata.set_needs_check(meta)
        self.assertEqual(metadata.read_flags(meta), 1)
        return meta

    def test_clears_flag_on_clean_pool(self):
        meta = self.flagged_copy(pools.get('snapshots').meta)
        rest = _rest_of_file(meta)
        expected_sb = _block0_with_flags(meta, 0)
        r = self.run_tool([OUR_CHECK, '--clear-needs-check-flag', meta])
        self.assertExit(r, 0)
        self.assertEqual(metadata.read_flags(meta), 0,
                         'NEEDS_CHECK still set after a clean check')
        got_sb = tools.read_block(meta, 0)
        self.assertEqual(got_sb[4:8], b'\0\0\0\0', 'flags word')
        self.assertTrue(metadata.checksum_ok(got_sb,
                                             metadata.CSUM_SUPERBLOCK),
                        'superblock checksum not updated')
        self.assertEqual(got_sb, expected_sb,
                         'block 0 must change only in flags and checksum')
        self.assertTrue(_rest_of_file(meta) == rest,
                        'blocks other than 0 were modified')
        # the result is still good metadata for the reference checker
        self.assertExit(self.run_tool([DEBIAN_CHECK, meta]), 0,
                        'Debian thin_check after clearing')
        self.check([], meta, 0)

    def test_leaves_clean_unflagged_pool_unchanged(self):
        d = tools.temp_dir()
        meta = tools.sparse_copy(pools.get('many_devices').meta,
                                 os.path.join(d, 'clean.meta'))
        digest = tools.file_digest(meta)
        r = self.run_tool([OUR_CHECK, '--clear-needs-check-flag', meta])
        self.assertExit(r, 0)
        self.assertUnchanged(meta, digest)

    def _damaged_keeps_flag(self, case_name):
        meta = self.flagged_copy(damage.make(case_name), case_name + '.meta')
        digest = tools.file_digest(meta)
        r = self.run_tool([OUR_CHECK, '--clear-needs-check-flag', meta])
        self.assertExit(r, 1)
        self.assertEqual(metadata.read_flags(meta), 1,
                         'NEEDS_CHECK cleared on damaged metadata')
        self.assertUnchanged(meta, digest)

    def test_keeps_flag_on_damaged_leaf(self):
        self._damaged_keeps_flag('bottom_leaf_bitflip')

    def test_keeps_flag_on_bad_reference_count(self):
        self._damaged_keeps_flag('metadata_count_minus_one')

    def test_keeps_flag_on_bad_superblock_checksum(self):
        meta = self.flagged_copy(pools.get('many_devices').meta)
        with metadata.Metadata(meta, writable=True) as img:
            b = img.read(0)
            b[300] ^= 0x10          # inside the unused SM blob tail
            img.write(0, b)
        digest = tools.file_digest(meta)
        r = self.run_tool([OUR_CHECK, '--clear-needs-check-flag', meta])
        self.assertExit(r, 1)
        self.assertUnchanged(meta, digest)

    def _rejected_combination(self, extra):
        meta = self.flagged_copy(pools.get('held_snapshot').meta)
        digest = tools.file_digest(meta)
        r = self.run_tool([OUR_CHECK, '--clear-needs-check-flag'] + extra +
                          [meta])
        self.assertExit(r, 1)
        self.assertNonEmpty(r.err)
        self.assertUnchanged(meta, digest)

    def test_rejected_with_metadata_snap(self):
        self._rejected_combination(['-m'])


    def test_rejected_with_override_mapping_root(self):
        with metadata.Metadata(pools.get('held_snapshot').meta) as img:
            root = img.superblock().data_mapping_root
        self._rejected_combination(['--override-mapping-root', str(root)])


# ----------------------------------------------------------------
# Repairs: --clear-needs-check-flag and --auto-repair (issue #12), each
# against 1.x on a copy of the same input

LEAK_CASES = ('metadata_count_leak', 'data_count_leak')
REPAIR_OPTIONS = {
    'clear': ['--clear-needs-check-flag'],
    'quiet_clear': ['-q', '--clear-needs-check-flag'],     # LVM's default
    'auto_repair': ['--auto-repair'],
    'clear_ignore': ['--clear-needs-check-flag', '--ignore-non-fatal-errors'],
}
# faults no repair may touch: the input stays as it was, exit 1 (1.x: non-0)
UNREPAIRABLE = ('metadata_count_plus_one', 'metadata_count_minus_one',
                'data_count_minus_one', 'bottom_leaf_bitflip',
                'device_missing_from_details', 'mapped_blocks_wrong')


def _flagged(src, name):
    d = tools.temp_dir()
    meta = tools.sparse_copy(src, os.path.join(d, name))
    metadata.set_needs_check(meta)
    return meta


class RepairCheckMixin(CheckMixin):
    def assertAllCheckersPass(self, meta):
        for argv in ([OUR_CHECK], ONEX_CHECK, [DEBIAN_CHECK]):
            self.assertExit(self.run_tool(argv + [meta]), 0,
                            '%s on the repaired metadata' % argv[-1])

    def assertSameDump(self, meta, base):
        """Repairs touch space maps only: Debian's dump is unchanged."""
        dump = tools.DEBIAN['thin_dump']
        got = self.run_tool([dump, meta])
        self.assertExit(got, 0)
        expected = pools.oracle([dump, base])
        self.assertSameBytes(got.stdout, expected.stdout, 'thin_dump')

    def repair_both(self, case, args):
        """Ours and 1.x on two flagged copies of the same damaged input."""
        ours = _flagged(damage.make(case), case + '.meta')
        onex = _flagged(damage.make(case), case + '.1x.meta')
        r = self.run_tool([OUR_CHECK] + args + [ours])
        r1 = self.run_tool(ONEX_CHECK + args + [onex])
        return ours, r, onex, r1


class TestCheckRepair(RepairCheckMixin, ToolTestCase):
    """test_<options>_repairs|refuses_<case>, test_clear_with_*,
    test_auto_repair_rejected_with_*: each compared with 1.x."""


def _repair_leak_test(case, args):
    def test(self):
        ours, r, onex, r1 = self.repair_both(case, args)
        self.assertExit(r1, 0, '1.x repairs a leak with %s' % args)
        self.assertExit(r, 0)
        if '-q' in args:
            self.assertEqual(r.stdout + r.stderr, b'')
        else:
            self.assertMentions(r.err, [r'1 (data|metadata) blocks have leaked'])
            self.assertMentions(r.err, [r'(?m)^fixed (data|metadata) leaks$'])
        self.assertEqual(metadata.read_flags(ours), 0, 'NEEDS_CHECK kept')
        self.assertEqual(metadata.read_flags(onex), 0)
        self.assertAllCheckersPass(ours)
        self.assertSameDump(ours, pools.get(damage.BASE_POOL).meta)
        # a second run finds nothing to do and writes nothing
        digest = tools.file_digest(ours)
        self.assertExit(self.run_tool([OUR_CHECK] + args + [ours]), 0)
        self.assertUnchanged(ours, digest)
    return test


def _unrepairable_test(case, args):
    def test(self):
        ours, r, onex, r1 = self.repair_both(case, args)
        self.assertExitNonZero(r1, '1.x must refuse %s' % case)
        self.assertExit(r, 1)
        self.assertEqual(metadata.read_flags(ours), 1, 'NEEDS_CHECK cleared')
        self.assertTrue(_rest_of_file(ours) == _rest_of_file(damage.make(case)),
                        'blocks other than 0 were modified')
    return test


for _c in LEAK_CASES:
    for _n, _a in REPAIR_OPTIONS.items():
        _add(TestCheckRepair, 'test_%s_repairs_%s' % (_n, _c),
             _repair_leak_test(_c, _a))
for _c in UNREPAIRABLE:
    for _n in ('clear', 'auto_repair'):
        _add(TestCheckRepair, 'test_%s_refuses_%s' % (_n, _c),
             _unrepairable_test(_c, REPAIR_OPTIONS[_n]))


class TestCheckRepairVsDebian(RepairCheckMixin, ToolTestCase):
    """0.9.0 has --auto-repair too, for metadata leaks: ours does what
    it does there, with its messages."""

    def test_auto_repair_metadata_leak_as_debian(self):
        case = 'metadata_count_leak'
        ours = _flagged(damage.make(case), 'ours.meta')
        deb = _flagged(damage.make(case), 'deb.meta')
        r = self.run_tool([OUR_CHECK, '--auto-repair', ours])
        rd = self.run_tool([DEBIAN_CHECK, '--auto-repair', deb])
        self.assertExit(rd, 0)
        self.assertExit(r, 0)
        for line in ('fixed metadata leaks', 'cleared needs_check flag'):
            self.assertIn(line, rd.err.splitlines())
            self.assertIn(line, r.err.splitlines())
        self.assertEqual(metadata.read_flags(ours), metadata.read_flags(deb))
        self.assertAllCheckersPass(ours)
        self.assertAllCheckersPass(deb)

    def test_auto_repair_rejections_as_debian(self):
        meta = _flagged(pools.get('snapshots').meta, 'r.meta')
        digest = tools.file_digest(meta)
        for extra in (['-m'], ['--super-block-only'], ['--skip-mappings'],
                      ['--ignore-non-fatal-errors']):
            r = self.run_tool([OUR_CHECK, '--auto-repair'] + extra + [meta])
            rd = self.run_tool([DEBIAN_CHECK, '--auto-repair'] + extra +
                               [meta])
            self.assertExit(r, rd.rc, ' '.join(extra))
            self.assertEqual(r.err.splitlines()[0], rd.err.splitlines()[0])
        self.assertUnchanged(meta, digest)


class TestCheckRepairExtensions(RepairCheckMixin, ToolTestCase):
    def test_auto_repair_fixes_data_over_count(self):
        """Beyond 1.x: a data block counted above its references is set to
        its references (1.x leaves it, exit non-0); every checker passes
        afterwards."""
        case = 'data_count_plus_one'
        ours, r, onex, r1 = self.repair_both(case, ['--auto-repair'])
        self.assertExitNonZero(r1, '1.x does not fix over-counts')
        self.assertExit(r, 0)
        self.assertMentions(r.err, [r'(?m)^fixed data leaks$'])
        self.assertAllCheckersPass(ours)
        self.assertSameDump(ours, pools.get(damage.BASE_POOL).meta)

    def test_leak_repair_keeps_held_snapshot(self):
        """A leak in a pool holding a metadata snapshot: repaired, and the
        snapshot still dumps as before."""
        fx = pools.get('held_snapshot')
        d = tools.temp_dir()
        meta = tools.sparse_copy(fx.meta, os.path.join(d, 'held.meta'))
        with metadata.Metadata(meta, writable=True) as img:
            sb = img.superblock()
            img.set_sm_count('md', img.find_free_metadata_block(sb), 1, sb)
        held_before = self.run_tool([tools.DEBIAN['thin_dump'], '-m', meta])
        self.assertExit(self.run_tool([OUR_CHECK, meta]), 1)
        self.assertExit(self.run_tool([OUR_CHECK, '--auto-repair', meta]), 0)
        self.assertAllCheckersPass(meta)
        held_after = self.run_tool([tools.DEBIAN['thin_dump'], '-m', meta])
        self.assertExit(held_after, 0)
        self.assertSameBytes(held_after.stdout, held_before.stdout,
                             'held snapshot dump')


def _partial_clear_test(case, extra, expect_rc):
    """--clear-needs-check-flag with a partial examination: the flag is
    cleared when what was examined is clean, as 1.x does; nothing else is
    written."""
    def test(self):
        src = damage.make(case) if case else pools.get('snapshots').meta
        ours = _flagged(src, 'ours.meta')
        onex = _flagged(src, 'onex.meta')
        rest = _rest_of_file(ours)
        args = ['--clear-needs-check-flag'] + extra
        r = self.run_tool([OUR_CHECK] + args + [ours])
        r1 = self.run_tool(ONEX_CHECK + args + [onex])
        self.assertExit(r, expect_rc)
        self.assertEqual(r1.rc != 0, expect_rc != 0, '1.x: ' + r1.describe())
        self.assertEqual(metadata.read_flags(ours), 1 if expect_rc else 0)
        self.assertEqual(metadata.read_flags(onex), 1 if expect_rc else 0)
        self.assertTrue(_rest_of_file(ours) == rest,
                        'blocks other than 0 were modified')
    return test


for _c, _x, _rc in (
        (None, ['--super-block-only'], 0),
        (None, ['--skip-mappings'], 0),
        ('metadata_count_leak', ['--super-block-only'], 0),
        ('metadata_count_leak', ['--skip-mappings'], 0),
        ('bottom_leaf_bitflip', ['--skip-mappings'], 0),
        ('bottom_leaf_bitflip', ['--super-block-only'], 0),
        ('details_leaf_bitflip', ['--skip-mappings'], 1)):
    _add(TestCheckRepair, 'test_clear_with_%s_on_%s' % (
        _x[0].lstrip('-').replace('-', '_'), _c or 'clean'), _partial_clear_test(_c, _x, _rc))


def _auto_repair_rejected_test(extra):
    def test(self):
        meta = _flagged(pools.get('held_snapshot').meta, 'r.meta')
        digest = tools.file_digest(meta)
        r = self.run_tool([OUR_CHECK, '--auto-repair'] + extra + [meta])
        r1 = self.run_tool(ONEX_CHECK + ['--auto-repair'] + extra + [meta])
        self.assertExitNonZero(r1, '1.x rejects the combination')
        self.assertExit(r, 1)
        self.assertNonEmpty(r.err)
        self.assertUnchanged(meta, digest)
    return test


for _x in (['-m'], ['--super-block-only'], ['--skip-mappings'],
           ['--ignore-non-fatal-errors']):
    _add(TestCheckRepair, 'test_auto_repair_rejected_with_%s' % (
        _x[0].lstrip('-').replace('-', '_')), _auto_repair_rejected_test(_x))


class TestCheckSuperblockOnlyOutput(CheckMixin, ToolTestCase):
    def test_prints_transaction_and_free_blocks_as_1x(self):
        for name in ('snapshots', 'held_snapshot', 'empty_pool'):
            meta = pools.get(name).meta
            r = self.check(['--super-block-only'], meta, 0)
            r1 = pools.oracle(ONEX_CHECK + ['--super-block-only', meta])
            full = self.check([], meta, 0)
            self.assertRegex(r.out, r'^TRANSACTION_ID=[0-9]+\n'
                             r'METADATA_FREE_BLOCKS=[0-9]+\n$')
            self.assertEqual(r.out, r1.out, '1.x --super-block-only')
            self.assertEqual(r.out, full.out, 'the full check')

    def test_quiet_prints_nothing(self):
        self.check(['-q', '--super-block-only'], pools.get('snapshots').meta,
                   0, quiet=True)


# ----------------------------------------------------------------
# Damage catalogue

class TestCheckDamage(CheckMixin, ToolTestCase):
    """test_damage_<case>[_<variant>] for every case of lib/damage.py."""


def _damage_test(case):
    def test(self):
        meta = damage.make(case.name)
        r = self.check([], meta, 1)
        self.assertNonEmpty(r.err)
        self.assertMentions(r.err, case.keywords)
    return test


def _damage_quiet_test(case):
    def test(self):
        self.check(['-q'], damage.make(case.name), 1, quiet=True)
    return test


def _damage_ignore_test(case):
    def test(self):
        self.check(['--ignore-non-fatal-errors'], damage.make(case.name),
                   1 if case.fatal else 0)
    return test


def _damage_oracle_1x_test(case):
    def test(self):
        r = pools.oracle(ONEX_CHECK + [damage.make(case.name)])
        self.assertExitNonZero(r, '1.x thin_check must detect %s'
                               % case.name)
    return test


def _damage_oracle_debian_test(case):
    def test(self):
        r = pools.oracle([DEBIAN_CHECK, damage.make(case.name)])
        self.assertExit(r, 1 if case.debian_detects else 0,
                        'catalogue says Debian detects: %s'
                        % case.debian_detects)
    return test


for _c in damage.CASES:
    _add(TestCheckDamage, 'test_damage_%s' % _c.name, _damage_test(_c))
    _add(TestCheckDamage, 'test_damage_%s_quiet' % _c.name,
         _damage_quiet_test(_c))
    if _c.fatal is not None:
        _add(TestCheckDamage, 'test_damage_%s_ignore_non_fatal' % _c.name,
             _damage_ignore_test(_c))
    _add(TestCheckDamage, 'test_oracle_1x_damage_%s' % _c.name,
         _damage_oracle_1x_test(_c))
    _add(TestCheckDamage, 'test_oracle_debian_damage_%s' % _c.name,
         _damage_oracle_debian_test(_c))


class TestCheckSuperblockOnly(CheckMixin, ToolTestCase):
    def test_super_block_only_sees_superblock_damage(self):
        self.check(['--super-block-only'],
                   damage.make('superblock_bitflip'), 1)

    def test_super_block_only_ignores_tree_damage(self):
        """Only the superblock is examined: a damaged leaf goes unseen."""
        self.check(['--super-block-only'],
                   damage.make('bottom_leaf_bitflip'), 0)

    def test_skip_mappings_ignores_bottom_level_damage(self):
        self.check(['--skip-mappings'], damage.make('bottom_leaf_bitflip'), 0)

    def test_skip_mappings_sees_top_level_damage(self):
        self.check(['--skip-mappings'],
                   damage.make('top_level_leaf_bitflip'), 1)

    def test_skip_mappings_sees_details_damage(self):
        self.check(['--skip-mappings'], damage.make('details_leaf_bitflip'),
                   1)


if __name__ == '__main__':
    unittest.main()
