# SPDX-License-Identifier: GPL-3.0-or-later
"""thin_dump: byte-for-byte equality with Debian's thin_dump 0.9.0.

Every generated pool (lib/poolgen.py, restored once by Debian's
thin_restore) is dumped by our thin_dump and by /usr/sbin/thin_dump with
the same options, and the outputs must be identical.  The oracle's output
is itself compared with what the pool model predicts (test_model_*), so a
generator bug cannot hide behind two identical wrong dumps.

Test names: test_<variant>__<pool>, e.g. test_human_short__one_million.
"""

import os
import unittest

from lib import damage, pools, poolgen, tools
from lib.testing import ToolTestCase

OUR_DUMP = tools.ours('thin_dump')
DEBIAN_DUMP = tools.DEBIAN['thin_dump']
BIG_TIMEOUT = tools.scaled(120)      # the 1M-mapping pool


def _ids(fx):
    return fx.model.dev_ids()


class Variant:
    """One way of calling thin_dump.

    args(fx): the options (None: not applicable to this pool);
    model(fx): what the pool model says the output must be."""

    def __init__(self, name, args, model, held_only=False, picks_ids=False):
        self.name = name
        self.args = args
        self.model = model
        self.held_only = held_only
        self.picks_ids = picks_ids

    def applies(self, fx_name):
        if self.picks_ids and fx_name in pools.DEVICELESS_POOLS:
            return False
        return not self.held_only or fx_name in pools.HELD_POOLS


def _one_id(fx):
    ids = _ids(fx)
    return ids[len(ids) // 2] if ids else None


def _several_ids(fx):
    ids = _ids(fx)
    if len(ids) < 2:
        return None
    picked = sorted({ids[0], ids[-1], ids[len(ids) // 2]})
    return list(reversed(picked))      # given in descending order


def _absent_id(fx):
    return (max(_ids(fx)) + 1) if _ids(fx) else 0


def _dev_args(ids):
    out = []
    for i in ids:
        out += ['--dev-id', str(i)]
    return out


HUMAN = ['-f', 'human_readable']

VARIANTS = [
    Variant('xml', lambda fx: [], lambda fx: fx.model.expected_xml()),
    Variant('format_xml', lambda fx: ['--format', 'xml'],
            lambda fx: fx.model.expected_xml()),
    Variant('human_long', lambda fx: ['--format', 'human_readable'],
            lambda fx: fx.model.expected_human()),
    Variant('human_short', lambda fx: HUMAN,
            lambda fx: fx.model.expected_human()),
    Variant('skip_mappings', lambda fx: ['--skip-mappings'],
            lambda fx: fx.model.expected_xml(skip_mappings=True)),
    Variant('skip_mappings_human', lambda fx: HUMAN + ['--skip-mappings'],
            lambda fx: fx.model.expected_human(skip_mappings=True)),
    Variant('dev_id_one',
            lambda fx: _dev_args([_one_id(fx)]) if _ids(fx) else None,
            lambda fx: fx.model.expected_xml(dev_ids=[_one_id(fx)]),
            picks_ids=True),
    Variant('dev_id_several',
            lambda fx: _dev_args(_several_ids(fx)) if _several_ids(fx)
            else None,
            lambda fx: fx.model.expected_xml(dev_ids=_several_ids(fx)),
            picks_ids=True),
    Variant('dev_id_several_human',
            lambda fx: HUMAN + _dev_args(_several_ids(fx))
            if _several_ids(fx) else None,
            lambda fx: fx.model.expected_human(dev_ids=_several_ids(fx)),
            picks_ids=True),
    Variant('dev_id_absent', lambda fx: _dev_args([_absent_id(fx)]),
            lambda fx: fx.model.expected_xml(dev_ids=[])),
    Variant('dev_id_skip_mappings',
            lambda fx: _dev_args([_one_id(fx)]) + ['--skip-mappings']
            if _ids(fx) else None,
            lambda fx: fx.model.expected_xml(dev_ids=[_one_id(fx)],
                                             skip_mappings=True),
            picks_ids=True),
    # held metadata snapshot
    Variant('metadata_snap', lambda fx: ['-m'],
            lambda fx: fx.held_model().expected_xml(nr_data_blocks=0),
            held_only=True),
    Variant('metadata_snap_attached', lambda fx: ['-m%d' % fx.held_block],
            lambda fx: fx.held_model().expected_xml(nr_data_blocks=0),
            held_only=True),
    Variant('metadata_snap_long', lambda fx: ['--metadata-snap'],
            lambda fx: fx.held_model().expected_xml(nr_data_blocks=0),
            held_only=True),
    Variant('metadata_snap_long_block',
            lambda fx: ['--metadata-snap=%d' % fx.held_block],
            lambda fx: fx.held_model().expected_xml(nr_data_blocks=0),
            held_only=True),
    Variant('metadata_snap_human', lambda fx: ['-m'] + HUMAN,
            lambda fx: fx.held_model().expected_human(nr_data_blocks=0),
            held_only=True),
    Variant('metadata_snap_dev_id',
            lambda fx: ['-m'] + _dev_args([_ids(fx)[0]]),
            lambda fx: fx.held_model().expected_xml(
                dev_ids=[_ids(fx)[0]], nr_data_blocks=0),
            held_only=True),
]


def oracle_dump(fx, args):
    return pools.oracle([DEBIAN_DUMP] + args + [fx.meta])


class TestDump(ToolTestCase):
    """Tests are added below, one per (variant, pool)."""

    def check_same_as_oracle(self, fx, args, ours_args=None):
        expected = oracle_dump(fx, args)
        self.assertExit(expected, 0, 'oracle')
        r = self.run_tool([OUR_DUMP] + (ours_args or args) + [fx.meta],
                          timeout=BIG_TIMEOUT)
        self.assertExit(r, 0)
        self.assertSameBytes(r.stdout, expected.stdout, 'thin_dump stdout')
        self.assertEqual(r.err, '', 'a successful dump prints nothing on '
                         'stderr')
        return r


def _add(cls, name, fn):
    assert not hasattr(cls, name), name
    fn.__name__ = name
    setattr(cls, name, fn)


def _variant_test(variant, pool_name):
    def test(self):
        fx = pools.get(pool_name)
        args = variant.args(fx)
        self.assertIsNotNone(args, 'variant %s picks device ids, but pool %s '
                             'has too few: list it in pools.DEVICELESS_POOLS'
                             % (variant.name, pool_name))
        self.check_same_as_oracle(fx, args)
    return test


def _model_test(variant, pool_name):
    def test(self):
        fx = pools.get(pool_name)
        args = variant.args(fx)
        self.assertIsNotNone(args, 'variant %s picks device ids, but pool %s '
                             'has too few: list it in pools.DEVICELESS_POOLS'
                             % (variant.name, pool_name))
        r = oracle_dump(fx, args)
        self.assertExit(r, 0, 'oracle')
        self.assertSameBytes(r.stdout, variant.model(fx),
                             'Debian thin_dump output vs the pool model')
    return test


for _pool in pools.POOL_NAMES:
    for _v in VARIANTS:
        if _v.applies(_pool):
            _add(TestDump, 'test_%s__%s' % (_v.name, _pool),
                 _variant_test(_v, _pool))
            _add(TestDump, 'test_model_%s__%s' % (_v.name, _pool),
                 _model_test(_v, _pool))


# ----------------------------------------------------------------
# Output file, io engines, round trip: one test per pool each

def _output_file_test(pool_name, fmt_args):
    def test(self):
        fx = pools.get(pool_name)
        out = os.path.join(tools.temp_dir(), 'dump.out')
        r = self.run_tool([OUR_DUMP] + fmt_args + ['-o', out, fx.meta],
                          timeout=BIG_TIMEOUT)
        self.assertExit(r, 0)
        self.assertEqual(r.stdout, b'', 'with -o nothing goes to stdout')
        with open(out, 'rb') as f:
            got = f.read()
        self.assertSameBytes(got, oracle_dump(fx, fmt_args).stdout,
                             'thin_dump -o file contents')
    return test


def _io_engine_test(pool_name, engine):
    def test(self):
        if tools.build_is_debian():
            self.skipTest('--io-engine is our extension (build dir holds '
                          'Debian 0.9.0 tools)')
        fx = pools.get(pool_name)
        self.check_same_as_oracle(fx, [], ['--io-engine', engine])
        if fx.held:
            self.check_same_as_oracle(fx, ['-m'], ['--io-engine', engine,
                                                   '-m'])
    return test


def _round_trip_test(pool_name):
    def test(self):
        fx = pools.get(pool_name)
        r = self.run_tool([OUR_DUMP, fx.meta], timeout=BIG_TIMEOUT)
        self.assertExit(r, 0)
        d = tools.temp_dir()
        xml = os.path.join(d, 'dump.xml')
        with open(xml, 'wb') as f:
            f.write(r.stdout)
        meta = os.path.join(d, 'again.meta')
        poolgen.restore_with_debian(xml, meta, os.path.getsize(fx.meta))
        again = self.run_tool([DEBIAN_DUMP, meta], timeout=BIG_TIMEOUT)
        self.assertExit(again, 0, 'Debian thin_dump of the restored dump')
        self.assertSameBytes(again.stdout, r.stdout,
                             'dump of the restored dump')
        ours_again = self.run_tool([OUR_DUMP, meta], timeout=BIG_TIMEOUT)
        self.assertExit(ours_again, 0)
        self.assertSameBytes(ours_again.stdout, r.stdout,
                             'our dump of the restored dump')
    return test


for _pool in pools.POOL_NAMES:
    _add(TestDump, 'test_output_file__%s' % _pool,
         _output_file_test(_pool, []))
    _add(TestDump, 'test_output_file_human__%s' % _pool,
         _output_file_test(_pool, HUMAN))
    _add(TestDump, 'test_io_engine_sync__%s' % _pool,
         _io_engine_test(_pool, 'sync'))
    _add(TestDump, 'test_io_engine_async__%s' % _pool,
         _io_engine_test(_pool, 'async'))
    _add(TestDump, 'test_round_trip__%s' % _pool, _round_trip_test(_pool))


# ----------------------------------------------------------------
# Metadata snapshot errors

class TestDumpMetadataSnapErrors(ToolTestCase):
    def test_metadata_snap_absent(self):
        """-m on a pool without a held root: exit 1 with a message."""
        fx = pools.get('many_devices')
        self.assertExit(oracle_dump(fx, ['-m']), 1, 'oracle')
        r = self.run_tool([OUR_DUMP, '-m', fx.meta])
        self.assertExit(r, 1)
        self.assertNonEmpty(r.err)
        self.assertEqual(r.stdout, b'')

    def test_metadata_snap_wrong_block(self):
        """-mBLOCK naming another block than the live metadata_snap."""
        fx = pools.get('held_snapshot')
        args = ['-m%d' % (fx.held_block + 1)]
        self.assertExit(oracle_dump(fx, args), 1, 'oracle')
        r = self.run_tool([OUR_DUMP] + args + [fx.meta])
        self.assertExit(r, 1)
        self.assertNonEmpty(r.err)


# ----------------------------------------------------------------
# Damaged metadata

class TestDumpDamaged(ToolTestCase):
    """thin_dump on the damage catalogue (lib/damage.py): fails cleanly
    where a tree is damaged, dumps like Debian where only space maps or
    counts are wrong, never crashes or hangs."""


def _damaged_dump_test(case):
    def test(self):
        meta = damage.make(case.name)
        digest = tools.file_digest(meta)
        r = self.run_tool([OUR_DUMP, meta])
        self.assertUnchanged(meta, digest)
        if case.dump == 'fails':
            self.assertExit(r, 1)
            self.assertNonEmpty(r.err)
        elif case.dump == 'same':
            expected = pools.oracle([DEBIAN_DUMP, meta])
            self.assertExit(r, expected.rc)
            self.assertSameBytes(r.stdout, expected.stdout)
    return test


def _damaged_dump_oracle_test(case):
    def test(self):
        r = pools.oracle([DEBIAN_DUMP, damage.make(case.name)])
        self.assertExit(r, 1 if case.dump == 'fails' else 0,
                        'Debian thin_dump (catalogue says %r)' % case.dump)
    return test


for _c in damage.CASES:
    _add(TestDumpDamaged, 'test_damaged_%s' % _c.name, _damaged_dump_test(_c))
    if _c.dump is not None:
        _add(TestDumpDamaged, 'test_oracle_damaged_%s' % _c.name,
             _damaged_dump_oracle_test(_c))


if __name__ == '__main__':
    unittest.main()
