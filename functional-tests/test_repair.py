# SPDX-License-Identifier: GPL-3.0-or-later
"""thin_repair: damaged metadata salvaged to fresh metadata.

Every case of the damage catalogue (lib/damage.py) is repaired into a
fresh output (test_damage_<case>), which must then pass our thin_check,
Debian's 0.9.0 and the 1.x one (test_damage_<case>_checks), and which must
hold every mapping still readable in the damaged input and nothing that
was not in the undamaged pool.  What is readable is not asked of the tool:
it is the pool model (lib/poolgen.py) minus the key ranges of the node each
case damages, located in the undamaged pool with lib/metadata.py
(expectation()).  The repaired output is read back with Debian's thin_dump,
an independent reader.

test_damage_<case>_dump_repair: thin_dump --repair on the damaged input
prints what the repaired output holds.

The input must be byte-identical after every run.
"""

import os
import random
import re
import unittest
import xml.etree.ElementTree as ET

from lib import damage, pools, tools
from lib import metadata as md
from lib.testing import ToolTestCase

OUR_REPAIR = tools.ours('thin_repair')
OUR_DUMP = tools.ours('thin_dump')
OUR_CHECK = tools.ours('thin_check')
DEBIAN_DUMP = tools.DEBIAN['thin_dump']
DEBIAN_CHECK = tools.DEBIAN['thin_check']
ONEX_CHECK = tools.onex('thin_check')
ONEX_DUMP = tools.onex('thin_dump')

BASE = damage.BASE_POOL


def _add(cls, name, fn):
    assert not hasattr(cls, name), name
    fn.__name__ = name
    setattr(cls, name, fn)


# ----------------------------------------------------------------
# Pools as plain data: {'sb': {...}, 'devices': {id: Dev}}

class Dev:
    def __init__(self, mapped_blocks, transaction, creation_time, snap_time,
                 mappings):
        self.mapped_blocks = mapped_blocks
        self.details = (transaction, creation_time, snap_time)
        self.mappings = mappings          # {virtual block: (data, time)}

    def __repr__(self):
        return 'Dev(mapped=%d, details=%r, %d mappings)' % (
            self.mapped_blocks, self.details, len(self.mappings))


def parse_dump(text):
    """Superblock fields and devices of a thin_dump XML output."""
    root = ET.fromstring(text)
    assert root.tag == 'superblock', root.tag
    sb = {k: int(v) for k, v in root.attrib.items()
          if k in ('time', 'transaction', 'data_block_size',
                   'nr_data_blocks')}
    devices = {}
    for d in root.findall('device'):
        a = {k: int(v) for k, v in d.attrib.items()}
        maps = {}
        for m in d:
            x = {k: int(v) for k, v in m.attrib.items()}
            if m.tag == 'single_mapping':
                maps[x['origin_block']] = (x['data_block'], x['time'])
            elif m.tag == 'range_mapping':
                for i in range(x['length']):
                    maps[x['origin_begin'] + i] = (x['data_begin'] + i,
                                                   x['time'])
            else:
                raise AssertionError('unexpected element %s' % m.tag)
        devices[a['dev_id']] = Dev(a['mapped_blocks'], a['transaction'],
                                   a['creation_time'], a['snap_time'], maps)
    return {'sb': sb, 'devices': devices}


def model_view(model):
    devices = {}
    for dev in model.devices:
        maps = {o: (d, t) for o, d, t in dev.mappings()}
        devices[dev.dev_id] = Dev(dev.mapped_blocks, dev.transaction,
                                  dev.creation_time, dev.snap_time, maps)
    return {'sb': {'time': model.time, 'transaction': model.transaction,
                   'data_block_size': model.data_block_size,
                   'nr_data_blocks': model.nr_data_blocks},
            'devices': devices}


def _in_range(key, lo, hi):
    return key >= lo and (hi is None or key < hi)


# ----------------------------------------------------------------
# What each damage case leaves readable

class Expectation:
    """lost: {dev: [(lo, hi)]} key ranges whose mappings may be gone (hi
    None: unbounded); details_lost: devices whose details cannot be read;
    reports: [(what, predicate on stderr lines)], each must hold;
    identical: the repair must give back the undamaged pool exactly;
    silent: nothing may be reported."""

    def __init__(self, lost=None, details_lost=(), reports=(),
                 identical=False, silent=False, rc=0):
        self.lost = lost or {}
        self.details_lost = set(details_lost)
        self.reports = list(reports)
        self.identical = identical
        self.silent = silent
        self.rc = rc


def report_names(dev, numbers=(), words=(r'lost',)):
    """A stderr line naming device dev, then each of numbers, and one of
    words."""
    def pred(lines):
        for line in lines:
            m = re.search(r'\bdevice %d\b(.*)' % dev, line)
            if not m:
                continue
            rest = m.group(1)
            if (all(re.search(r'(?<![\d])%d(?![\d])' % n, rest)
                    for n in numbers)
                    and any(re.search(w, line, re.I) for w in words)):
                return True
        return False
    what = 'a line naming device %d%s and one of %s' % (
        dev, ''.join(', %d' % n for n in numbers), list(words))
    return what, pred


def report_mentions(pattern):
    def pred(lines):
        return any(re.search(pattern, line, re.I) for line in lines)
    return 'a line matching %r' % pattern, pred


LEAF_CASES = ['bottom_leaf_bitflip', 'zeroed_node', 'nr_entries_too_large',
              'keys_out_of_order', 'value_size_wrong',
              'max_entries_not_multiple_of_3', 'blocknr_mismatch',
              'node_flags_zero']
SPACE_MAP_CASES = ['metadata_bitmap_bitflip', 'metadata_index_bitflip',
                   'data_bitmap_bitflip', 'data_index_leaf_bitflip',
                   'metadata_count_leak', 'metadata_count_plus_one',
                   'metadata_count_minus_one', 'data_count_leak',
                   'data_count_plus_one', 'data_count_minus_one']


def _leaf_and_range(img, dev=0):
    """The leaf every leaf case damages, and the key range its parent
    gives it."""
    leaf = damage.bottom_leaf(img, dev)
    for n, path in img.leaves(damage.bottom_root(img, dev)):
        if n.location == leaf.location:
            parent, i = path[-1]
            p = img.node(parent)
            hi = p.keys[i + 1] if i + 1 < len(p.keys) else None
            assert hi is not None, 'the middle leaf has a right neighbour'
            return leaf, p.keys[i], hi
    raise AssertionError('leaf %d not found' % leaf.location)


_expectations = {}


def expectation(name):
    """What repairing case name must give, from the undamaged pool."""
    e = _expectations.get(name)
    if e is not None:
        return e
    fx = pools.get(BASE)
    all_devs = fx.model.dev_ids()
    with md.Metadata(fx.meta) as img:
        if name in LEAF_CASES:
            _, lo, hi = _leaf_and_range(img)
            e = Expectation(lost={0: [(lo, hi)]},
                            reports=[report_names(0, (lo, hi))])
        elif name == 'too_few_entries':
            # entries 10.. of the leaf are gone from the file: not a
            # damaged node, but device 0's count no longer matches
            leaf, _, hi = _leaf_and_range(img)
            e = Expectation(lost={0: [(leaf.keys[10], hi)]},
                            reports=[report_names(0, words=[r'.'])])
        elif name == 'internal_node_bitflip':
            assert damage.bottom_internal(img).location == \
                damage.bottom_root(img), 'the root is the damaged node'
            e = Expectation(lost={0: [(0, None)]},
                            reports=[report_names(0, (0,))])
        elif name == 'internal_node_cycle':
            # child 1 of the root points at the root: that child's range
            # is unreachable (the orphaned leaf is referenced by nothing)
            root = damage.bottom_internal(img)
            lo, hi = root.keys[1], root.keys[2]
            e = Expectation(lost={0: [(lo, hi)]},
                            reports=[report_names(0, (lo, hi))])
        elif name == 'top_level_leaf_bitflip':
            # the only top-level node is unreadable: no mapping tree can be
            # attached to a device (the details still name them all)
            e = Expectation(lost={d: [(0, None)] for d in all_devs},
                            reports=[report_names(d) for d in all_devs])
        elif name == 'details_leaf_bitflip':
            e = Expectation(details_lost=all_devs,
                            reports=[report_names(d, words=[r'details'])
                                     for d in all_devs])
        elif name == 'device_missing_from_details':
            e = Expectation(details_lost=[damage.MISSING_DEV],
                            reports=[report_names(damage.MISSING_DEV,
                                                  words=[r'details'])])
        elif name == 'mapped_blocks_wrong':
            e = Expectation(identical=True,
                            reports=[report_names(damage.MISSING_DEV,
                                                  words=[r'.'])])
        elif name == 'superblock_bitflip':
            e = Expectation(reports=[report_mentions(r'superblock')])
        elif name in SPACE_MAP_CASES:
            e = Expectation(identical=True, silent=True)
        else:
            raise AssertionError('no expectation for damage case %s' % name)
    _expectations[name] = e
    return e


def expected_readable(view, exp):
    """{dev: {vblock: (data, time)}} of what must survive."""
    out = {}
    for dev_id, dev in view['devices'].items():
        ranges = exp.lost.get(dev_id, [])
        out[dev_id] = {k: v for k, v in dev.mappings.items()
                       if not any(_in_range(k, lo, hi) for lo, hi in ranges)}
    return out


# ----------------------------------------------------------------
# Running thin_repair

def new_output(directory, name='out.meta', blocks=None):
    """A sparse output file, as large as the base pool by default."""
    path = os.path.join(directory, name)
    if blocks is None:
        blocks = os.path.getsize(pools.get(BASE).meta) // md.BLOCK_SIZE
    with open(path, 'wb') as f:
        f.truncate(blocks * md.BLOCK_SIZE)
    return path


def private_copy(src, name='in.meta'):
    return tools.sparse_copy(src, os.path.join(tools.temp_dir(), name))


class RepairMixin:
    def repair(self, inp, out, args=(), expect_rc=0, out_unchanged=False):
        """thin_repair -i inp -o out args; the input must stay
        byte-identical (and the output when out_unchanged)."""
        digest = tools.file_digest(inp) if os.path.isfile(inp) else None
        out_digest = (tools.file_digest(out) if out_unchanged and
                      os.path.isfile(out) else None)
        r = self.run_tool([OUR_REPAIR, '-i', inp, '-o', out] + list(args))
        if digest is not None:
            self.assertUnchanged(inp, digest)
        if out_digest is not None:
            self.assertUnchanged(out, out_digest, 'output file')
        self.assertExit(r, expect_rc)
        return r

    def debian_dump(self, meta):
        r = self.run_tool([DEBIAN_DUMP, meta])
        self.assertExit(r, 0, 'Debian thin_dump of the repaired output')
        return r

    def read_pool(self, meta):
        return parse_dump(self.debian_dump(meta).stdout)

    def assertChecksClean(self, meta):
        for argv in ([OUR_CHECK], [DEBIAN_CHECK], ONEX_CHECK):
            r = self.run_tool(argv + [meta])
            self.assertExit(r, 0, 'repaired metadata must check clean')

    def assertSameDevices(self, got, expected, details=True):
        """Same device ids and mappings (and details), mapped_blocks equal
        to the mappings held."""
        self.assertEqual(sorted(got['devices']), sorted(expected['devices']),
                         'device ids')
        for dev_id, e in expected['devices'].items():
            g = got['devices'][dev_id]
            self.assertEqual(g.mapped_blocks, len(g.mappings),
                             'device %d: mapped_blocks' % dev_id)
            self.assertMappingsEqual(dev_id, g.mappings, e.mappings)
            if details:
                self.assertEqual(g.details, e.details,
                                 'device %d: transaction, creation and '
                                 'snapshot times' % dev_id)

    def assertMappingsEqual(self, dev_id, got, expected):
        if got == expected:
            return
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        wrong = sorted(k for k in set(got) & set(expected)
                       if got[k] != expected[k])
        self.fail('device %d: mappings differ: %d missing %s, %d extra %s, '
                  '%d with other values %s' % (
                      dev_id, len(missing), missing[:5], len(extra),
                      extra[:5], len(wrong),
                      [(k, got[k], expected[k]) for k in wrong[:5]]))

    def assertTimesSafe(self, pool):
        """The kernel treats a mapping as shared with a snapshot when its
        time is below the device's snap_time, and gives new snapshots the
        pool time + 1: the pool time must not be below any time in use."""
        times = [t for d in pool['devices'].values()
                 for _, t in d.mappings.values()]
        times += [max(d.details[1:]) for d in pool['devices'].values()]
        if times:
            self.assertGreaterEqual(
                pool['sb']['time'], max(times),
                'superblock time below a mapping or device time: the '
                'next snapshot would not see those blocks as shared')


_repaired = {}


def repaired(case_name):
    """(damaged input, repaired output, Result) of thin_repair on a case,
    run once per session.  The input's digest is compared by the tests."""
    hit = _repaired.get(case_name)
    if hit is None:
        inp = damage.make(case_name)
        digest = tools.file_digest(inp)
        out = new_output(tools.temp_dir('repair-'), case_name + '.out')
        r = tools.run([OUR_REPAIR, '-i', inp, '-o', out])
        hit = (inp, out, r, digest)
        _repaired[case_name] = hit
    return hit


# ----------------------------------------------------------------
# The damage catalogue

class TestRepairDamage(RepairMixin, ToolTestCase):
    """test_damage_<case>[_checks|_dump_repair] for every damage case."""


def _damage_test(case):
    def test(self):
        exp = expectation(case.name)
        inp, out, r, digest = repaired(case.name)
        self.assertUnchanged(inp, digest)
        self.assertExit(r, exp.rc)
        base = model_view(pools.get(BASE).model)
        got = self.read_pool(out)

        # superblock values the damage left readable
        for k in ('transaction', 'data_block_size', 'nr_data_blocks'):
            self.assertEqual(got['sb'][k], base['sb'][k], 'superblock ' + k)

        # every device, every readable mapping, nothing invented
        self.assertEqual(sorted(got['devices']), sorted(base['devices']),
                         'device ids')
        must = expected_readable(base, exp)
        for dev_id, g in sorted(got['devices'].items()):
            orig = base['devices'][dev_id]
            invented = sorted(k for k, v in g.mappings.items()
                              if orig.mappings.get(k) != v)
            if invented:
                self.fail('device %d: %d mappings not in the original pool, '
                          'e.g. %s (original: %s)' % (
                              dev_id, len(invented),
                              [(k, g.mappings[k]) for k in invented[:5]],
                              [(k, orig.mappings.get(k))
                               for k in invented[:5]]))
            lost = sorted(set(must[dev_id]) - set(g.mappings))
            if lost:
                self.fail('device %d: %d readable mappings lost, e.g. %s '
                          '(damaged ranges: %s)' % (
                              dev_id, len(lost), lost[:5],
                              exp.lost.get(dev_id)))
            self.assertEqual(g.mapped_blocks, len(g.mappings),
                             'device %d: mapped_blocks' % dev_id)
            if dev_id not in exp.details_lost:
                self.assertEqual(g.details, orig.details,
                                 'device %d: transaction and times' % dev_id)
        self.assertTimesSafe(got)

        # losses reported, and only those
        lines = r.err.splitlines()
        if exp.silent:
            self.assertEqual(r.err, '', 'space-map damage loses nothing: '
                             'nothing to report')
        for what, pred in exp.reports:
            if not pred(lines):
                self.fail('stderr lacks %s:\n%s' % (what, r.err[:3000]))
        self.assertEqual(r.out, '', 'stdout')

        if exp.identical:
            want = pools.oracle([DEBIAN_DUMP, pools.get(BASE).meta])
            self.assertSameBytes(self.debian_dump(out).stdout, want.stdout,
                                 'dump of the repaired pool vs the '
                                 'undamaged one')
    return test


def _damage_checks_test(case):
    def test(self):
        _, out, r, _ = repaired(case.name)
        self.assertExit(r, expectation(case.name).rc)
        self.assertChecksClean(out)
    return test


def _damage_dump_repair_test(case):
    def test(self):
        inp, out, r, _ = repaired(case.name)
        self.assertExit(r, 0)
        digest = tools.file_digest(inp)
        d = self.run_tool([OUR_DUMP, '--repair', inp])
        self.assertUnchanged(inp, digest)
        self.assertExit(d, 0)
        printed = parse_dump(d.stdout)
        written = self.read_pool(out)
        self.assertEqual(printed['sb'], written['sb'], 'superblock')
        self.assertSameDevices(printed, written)
    return test


for _c in damage.CASES:
    _add(TestRepairDamage, 'test_damage_%s' % _c.name, _damage_test(_c))
    _add(TestRepairDamage, 'test_damage_%s_checks' % _c.name,
         _damage_checks_test(_c))
    _add(TestRepairDamage, 'test_damage_%s_dump_repair' % _c.name,
         _damage_dump_repair_test(_c))


class TestRepairDetailsLost(RepairMixin, ToolTestCase):
    def test_details_lost_snap_time_keeps_sharing(self):
        """Devices 0 and 1 share data blocks, which the kernel sees as
        shared because their time is below the device's snap_time.  When
        the details are lost, the snap_time written must keep them shared
        (e.g. pool time + 1, as 1.x does), or a write to one device
        overwrites the other's data in place."""
        _, out, r, _ = repaired('details_leaf_bitflip')
        self.assertExit(r, 0)
        got = self.read_pool(out)
        orig = model_view(pools.get(BASE).model)
        owners = {}
        for dev_id, d in orig['devices'].items():
            for data, t in d.mappings.values():
                owners.setdefault(data, []).append(dev_id)
        unsafe = []
        shared = 0
        for dev_id, d in sorted(orig['devices'].items()):
            snap = got['devices'][dev_id].details[2]
            for k, (data, t) in sorted(d.mappings.items()):
                if len(owners[data]) < 2 or not d.details[2] > t:
                    continue
                shared += 1
                if not snap > t:
                    unsafe.append((dev_id, k, data, t, d.details[2], snap))
        self.assertGreater(shared, 0, 'the base pool shares data blocks')
        if unsafe:
            self.fail('%d of %d shared mappings no longer look shared '
                      '(device, block, data block, time, snap_time before, '
                      'after), e.g. %s' % (len(unsafe), shared, unsafe[:3]))


# ----------------------------------------------------------------
# Good pools: nothing to repair

class TestRepairGoodPools(RepairMixin, ToolTestCase):
    pass


def _good_test(pool_name):
    def test(self):
        fx = pools.get(pool_name)
        blocks = os.path.getsize(fx.meta) // md.BLOCK_SIZE
        out = new_output(tools.temp_dir(), blocks=blocks)
        r = self.repair(fx.meta, out)
        self.assertEqual(r.err, '', 'nothing lost, nothing to report')
        want = pools.oracle([DEBIAN_DUMP, fx.meta])
        self.assertSameBytes(self.debian_dump(out).stdout, want.stdout,
                             'dump of the repaired pool')
        self.assertExit(self.run_tool([OUR_CHECK, out]), 0)
    return test


for _p in (BASE, 'snapshots', 'many_devices', 'mixed'):
    _add(TestRepairGoodPools, 'test_good__%s' % _p, _good_test(_p))


# ----------------------------------------------------------------
# The superblock

def _zeroed_superblock():
    meta = private_copy(pools.get(BASE).meta, 'nosb.meta')
    with md.Metadata(meta, writable=True) as img:
        img.write(0, bytearray(md.BLOCK_SIZE))
    return meta


class TestRepairSuperblock(RepairMixin, ToolTestCase):
    def sb_options(self, model, transaction=None):
        return ['--data-block-size', str(model.data_block_size),
                '--nr-data-blocks', str(model.nr_data_blocks),
                '--transaction-id', str(model.transaction
                                        if transaction is None
                                        else transaction)]

    def test_zeroed_superblock_needs_options(self):
        meta = _zeroed_superblock()
        out = new_output(tools.temp_dir())
        r = self.repair(meta, out, expect_rc=1, out_unchanged=True)
        self.assertMentions(r.err, [r'--data-block-size'])

    def test_zeroed_superblock_infers_the_rest(self):
        """Only the data block size given: nr_data_blocks is the highest
        mapped block + 1 and the transaction the highest device
        transaction + 1, as 1.x infers them, and each is reported."""
        model = pools.get(BASE).model
        meta = _zeroed_superblock()
        out = new_output(tools.temp_dir())
        r = self.repair(meta, out, ['--data-block-size',
                                    str(model.data_block_size)])
        got = self.read_pool(out)
        data_end = 1 + max(d for dev in model_view(model)['devices'].values()
                           for d, _ in dev.mappings.values())
        trans = 1 + max(dev.transaction for dev in model.devices)
        self.assertEqual(got['sb']['nr_data_blocks'], data_end)
        self.assertEqual(got['sb']['transaction'], trans)
        self.assertMentions(r.err, [r'data blocks inferred as %d' % data_end])
        self.assertMentions(r.err, [r'transaction id inferred as %d' % trans])
        self.assertSameDevices(got, model_view(model))
        self.assertChecksClean(out)
        onex = parse_dump(self.run_tool(ONEX_DUMP + [
            '--repair', '--data-block-size', str(model.data_block_size),
            meta]).stdout)
        self.assertEqual(got['sb'], onex['sb'], 'the superblock 1.x infers')
        self.assertSameDevices(got, onex)

    def test_zeroed_superblock_with_options(self):
        """Every device, detail and mapping found by scanning."""
        model = pools.get(BASE).model
        meta = _zeroed_superblock()
        out = new_output(tools.temp_dir())
        r = self.repair(meta, out, self.sb_options(model, 77))
        self.assertMentions(r.err, [r'superblock'])
        got = self.read_pool(out)
        self.assertEqual(got['sb']['transaction'], 77)
        self.assertEqual(got['sb']['data_block_size'], model.data_block_size)
        self.assertEqual(got['sb']['nr_data_blocks'], model.nr_data_blocks)
        self.assertSameDevices(got, model_view(model))
        self.assertChecksClean(out)

    def test_zeroed_superblock_time_covers_mappings(self):
        """The lost time field must be rebuilt at least as high as every
        time in use (1.x does); time 0 breaks the kernel's sharing test."""
        model = pools.get(BASE).model
        meta = _zeroed_superblock()
        out = new_output(tools.temp_dir())
        self.repair(meta, out, self.sb_options(model))
        self.assertTimesSafe(self.read_pool(out))

    def test_bad_checksum_intact_fields(self):
        """Only the checksum is wrong: repaired without options, to exactly
        the original pool."""
        fx = pools.get(BASE)
        meta = private_copy(fx.meta)
        with md.Metadata(meta, writable=True) as img:
            b = img.read(0)
            b[300] ^= 0x10          # the unused tail of an SM root blob
            img.write(0, b)
        out = new_output(tools.temp_dir())
        r = self.repair(meta, out)
        self.assertMentions(r.err, [r'superblock'])
        want = pools.oracle([DEBIAN_DUMP, fx.meta])
        self.assertSameBytes(self.debian_dump(out).stdout, want.stdout,
                             'dump of the repaired pool')
        self.assertChecksClean(out)

    def test_options_override_good_superblock(self):
        fx = pools.get(BASE)
        model = fx.model
        out = new_output(tools.temp_dir())
        self.repair(fx.meta, out, ['--transaction-id', '99',
                                   '--nr-data-blocks',
                                   str(model.nr_data_blocks + 1000)])
        got = self.read_pool(out)
        self.assertEqual(got['sb']['transaction'], 99)
        self.assertEqual(got['sb']['nr_data_blocks'],
                         model.nr_data_blocks + 1000)
        self.assertEqual(got['sb']['time'], model.time)
        self.assertSameDevices(got, model_view(model))
        self.assertExit(self.run_tool([OUR_CHECK, out]), 0)


# ----------------------------------------------------------------
# Failures and options

# ----------------------------------------------------------------
# Roots (issue #12): a superblock whose roots are wrong, stale or gone,
# and damaged details or top-level trees; each compared with 1.x's
# thin_dump --repair on the same input.  Where ours recovers less than
# 1.x, that is a defect.

def _edited(name, edit):
    """A private copy of the base pool with edit(img) applied."""
    meta = private_copy(pools.get(BASE).meta, name + '.meta')
    with md.Metadata(meta, writable=True) as img:
        edit(img)
    return meta


def _point_mapping_root_at_bottom_tree(img):
    sb = img.superblock()
    sb.data_mapping_root = img.device_roots()[0]
    img.write_superblock(sb)


def _point_details_root_at_leaf(img):
    sb = img.superblock()
    sb.device_details_root = img.leaves(img.device_roots()[0])[0][0].location
    img.write_superblock(sb)


def _stale_mapping_root(img):
    """The superblock names an older top level: a copy of the real one
    without the last device, in a free block (as a previous transaction's
    top level would be)."""
    sb = img.superblock()
    top = img.node(sb.data_mapping_root)
    assert top.is_leaf
    free = img.find_free_metadata_block(sb)
    top.remove_entry(len(top.keys) - 1)
    top.location = top.blocknr = free
    img.write_node(top)
    sb.data_mapping_root = free
    img.write_superblock(sb)


def _zero_details_root(img):
    img.write(img.superblock().device_details_root, bytearray(md.BLOCK_SIZE))


def _zero_top_level(img):
    img.write(img.superblock().data_mapping_root, bytearray(md.BLOCK_SIZE))


class TestRepairRoots(RepairMixin, ToolTestCase):
    def both(self, meta, args=()):
        """(ours repaired and read back, 1.x's thin_dump --repair or None
        when 1.x gives up, our thin_repair Result)."""
        out = new_output(tools.temp_dir())
        r = self.repair(meta, out, args)
        self.assertChecksClean(out)
        r1 = self.run_tool(ONEX_DUMP + ['--repair'] + list(args) + [meta])
        onex = parse_dump(r1.stdout) if r1.rc == 0 else None
        got = self.read_pool(out)
        # 0.9.0 recovers nothing in these cases; never more than we do
        rd = self.run_tool([DEBIAN_DUMP, '--repair'] + list(args) + [meta])
        self.assertAtLeast1x(got, parse_dump(rd.stdout) if rd.rc == 0
                             else None)
        return got, onex, r

    def assertAtLeast1x(self, got, onex):
        """Every device and mapping 1.x recovers, we recover too."""
        if onex is None:
            return
        for dev_id, d in onex['devices'].items():
            self.assertIn(dev_id, got['devices'], '1.x recovers device %d'
                          % dev_id)
            g = got['devices'][dev_id].mappings
            missing = [k for k in d.mappings if g.get(k) != d.mappings[k]]
            self.assertFalse(missing, 'device %d: %d mappings 1.x recovers '
                             'are missing or differ, e.g. %s' % (
                                 dev_id, len(missing), missing[:5]))

    def assertWhole(self, got):
        self.assertSameDevices(got, model_view(pools.get(BASE).model))

    def test_mapping_root_pointing_at_a_device_tree(self):
        got, onex, r = self.both(_edited('wrongtop',
                                         _point_mapping_root_at_bottom_tree))
        self.assertWhole(got)
        self.assertEqual(got['sb'], onex['sb'])
        self.assertSameDevices(got, onex)
        self.assertMentions(r.err, [r'mapping root \d+ does not read as'])

    def test_details_root_pointing_at_a_mapping_leaf(self):
        got, onex, r = self.both(_edited('wrongdetails',
                                         _point_details_root_at_leaf))
        self.assertWhole(got)
        self.assertSameDevices(got, onex)

    def test_stale_mapping_root(self):
        """The superblock's top level names one device less than its
        details tree: the consistent top level found by scanning wins."""
        got, onex, r = self.both(_edited('stale', _stale_mapping_root))
        self.assertWhole(got)
        self.assertAtLeast1x(got, onex)
        self.assertMentions(r.err, [r'name different devices'])

    def test_details_tree_lost_keeps_mappings(self):
        """Devices whose mapping trees exist keep every mapping (1.x
        too); their details are rebuilt."""
        got, onex, r = self.both(_edited('nodetails', _zero_details_root))
        model = model_view(pools.get(BASE).model)
        self.assertSameDevices(got, model, details=False)
        self.assertAtLeast1x(got, onex)
        self.assertSameDevices(got, onex, details=False)
        self.assertTimesSafe(got)

    def test_top_level_lost_finds_device_trees(self):
        """The top level is gone (1.x gives up): a device whose details
        name a mapping count met by exactly one unnamed mapping tree gets
        that tree back; the others stay empty, and nothing recovered
        differs from the undamaged pool."""
        meta = _edited('notop', _zero_top_level)
        got, onex, r = self.both(meta)
        self.assertAtLeast1x(got, onex)
        model = model_view(pools.get(BASE).model)
        counts = [d.mapped_blocks for d in model['devices'].values()]
        recovered = 0
        for dev_id, e in model['devices'].items():
            g = got['devices'][dev_id]
            if g.mappings:
                self.assertMappingsEqual(dev_id, g.mappings, e.mappings)
                recovered += 1
            elif e.mappings and counts.count(e.mapped_blocks) == 1:
                self.fail('device %d: its tree is the only one with %d '
                          'mappings, yet it was not recovered'
                          % (dev_id, e.mapped_blocks))
        self.assertGreater(recovered, 0)
        self.assertMentions(r.err, [r'found at block \d+ with \d+ mappings'])

    def test_good_pools_need_no_scan(self):
        """Consistent roots are taken as they are: thin_dump --repair on a
        good pool (an empty one too) reports nothing and prints what
        thin_dump prints."""
        for name in ('empty_pool', 'empty_devices', 'many_devices',
                     'snapshots', 'held_snapshot', 'extremes'):
            meta = pools.get(name).meta
            r = self.run_tool([OUR_DUMP, '--repair', meta])
            self.assertExit(r, 0)
            self.assertEqual(r.err, '', '%s: nothing to report' % name)
            plain = self.run_tool([OUR_DUMP, meta])
            # (the superblock line differs in flags and version: repaired
            # metadata is fresh metadata)
            self.assertEqual(parse_dump(r.stdout)['sb'],
                             parse_dump(plain.stdout)['sb'])
            self.assertSameBytes(r.stdout.split(b'\n', 1)[1],
                                 plain.stdout.split(b'\n', 1)[1], name)

    def test_zeroed_superblock_data_block_size_from_snapshot_copy(self):
        """A zeroed superblock in a pool holding a metadata snapshot: the
        data block size is read from the snapshot's copy of the
        superblock, nothing has to be given (1.x asks for it); with it
        given, 1.x recovers the same."""
        fx = pools.get('held_snapshot')
        meta = private_copy(fx.meta, 'heldnosb.meta')
        with md.Metadata(meta, writable=True) as img:
            dbs = img.superblock().data_block_size
            img.write(0, bytearray(md.BLOCK_SIZE))
        out = new_output(tools.temp_dir())
        r = self.repair(meta, out)
        self.assertMentions(r.err, [r'data block size inferred as %d' % dbs])
        got = self.read_pool(out)
        self.assertEqual(got['sb']['data_block_size'], dbs)
        self.assertChecksClean(out)
        self.assertTimesSafe(got)
        r1 = self.run_tool(ONEX_DUMP + ['--repair', '--data-block-size',
                                        str(dbs), meta])
        self.assertExit(r1, 0)
        onex = parse_dump(r1.stdout)
        self.assertEqual(got['sb'], onex['sb'])
        self.assertSameDevices(got, onex)


class TestRepairFailures(RepairMixin, ToolTestCase):
    def setUp(self):
        self.dir = tools.temp_dir()
        self.inp = private_copy(pools.get(BASE).meta)

    def test_output_missing(self):
        out = os.path.join(self.dir, 'absent.meta')
        r = self.repair(self.inp, out, expect_rc=1)
        self.assertMentions(r.err, [r'does not exist', r'no such file'])
        self.assertFalse(os.path.exists(out), 'output created')

    def test_output_directory(self):
        r = self.repair(self.inp, self.dir, expect_rc=1)
        self.assertMentions(r.err, [r'directory'])

    def test_output_is_input(self):
        r = self.repair(self.inp, self.inp, expect_rc=1)
        self.assertMentions(r.err, [r'input', r'same'])

    def test_output_is_input_by_other_names(self):
        sym = os.path.join(self.dir, 'sym.meta')
        os.symlink(self.inp, sym)
        hard = os.path.join(self.dir, 'hard.meta')
        os.link(self.inp, hard)
        for other in (sym, hard):
            with self.subTest(output=other):
                r = self.repair(self.inp, other, expect_rc=1)
                self.assertMentions(r.err, [r'input', r'same'])

    def test_output_too_small(self):
        """The message gives the size needed; that size works, one block
        less does not."""
        out = new_output(self.dir, blocks=4)
        r = self.repair(self.inp, out, expect_rc=1, out_unchanged=True)
        self.assertMentions(r.err, [r'too small'])
        m = re.search(r'(\d+) blocks', r.err)
        self.assertIsNotNone(m, 'no size in blocks given:\n' + r.err)
        need = int(m.group(1))
        self.assertGreater(need, 4)
        out = new_output(self.dir, 'smaller.meta', blocks=need - 1)
        self.repair(self.inp, out, expect_rc=1, out_unchanged=True)
        out = new_output(self.dir, 'exact.meta', blocks=need)
        r = self.repair(self.inp, out)
        want = pools.oracle([DEBIAN_DUMP, pools.get(BASE).meta])
        self.assertSameBytes(self.debian_dump(out).stdout, want.stdout,
                             'dump of the repaired pool')
        self.assertExit(self.run_tool([OUR_CHECK, out]), 0)

    def test_input_missing(self):
        out = new_output(self.dir)
        r = self.repair(os.path.join(self.dir, 'absent.meta'), out,
                        expect_rc=1, out_unchanged=True)
        self.assertMentions(r.err, [r'no such file', r'does not exist'])

    def test_input_directory(self):
        out = new_output(self.dir)
        r = self.repair(self.dir, out, expect_rc=1, out_unchanged=True)
        self.assertMentions(r.err, [r'directory'])

    def test_input_too_small(self):
        out = new_output(self.dir)
        for size in (0, 100, md.BLOCK_SIZE - 1):
            with self.subTest(size=size):
                inp = os.path.join(self.dir, 'small%d.meta' % size)
                with open(inp, 'wb') as f:
                    f.write(b'\x55' * size)
                r = self.repair(inp, out, expect_rc=1, out_unchanged=True)
                self.assertMentions(r.err, [r'too small', r'metadata'])

    def test_garbage_input(self):
        rng = random.Random('thin_repair garbage')
        inp = os.path.join(self.dir, 'garbage.meta')
        with open(inp, 'wb') as f:
            f.write(bytes(rng.getrandbits(8) for _ in range(256 * 4096)))
        out = new_output(self.dir)
        r = self.repair(inp, out, expect_rc=1, out_unchanged=True)
        self.assertMentions(r.err, [r'superblock', r'--data-block-size'])
        r = self.repair(inp, out, ['--data-block-size', '128',
                                   '--nr-data-blocks', '1000'],
                        expect_rc=1, out_unchanged=True)
        self.assertMentions(r.err, [r'no device', r'no .*tree',
                                    r'nothing'])

    def test_quiet(self):
        """-q silences the loss reports, and the result is the same."""
        inp = damage.make('bottom_leaf_bitflip')
        _, loud, lr, _ = repaired('bottom_leaf_bitflip')
        self.assertNonEmpty(lr.err)
        want = self.debian_dump(loud).stdout
        for opt in ('-q', '--quiet'):
            with self.subTest(option=opt):
                out = new_output(self.dir, 'quiet%s.meta' % opt)
                r = self.repair(inp, out, [opt])
                self.assertEqual(r.stdout + r.stderr, b'',
                                 '%s must silence the loss reports' % opt)
                self.assertSameBytes(self.debian_dump(out).stdout, want,
                                     'dump of the quiet repair')

    def test_unknown_option(self):
        out = new_output(self.dir)
        r = self.repair(self.inp, out, ['--no-such-option'], expect_rc=1,
                        out_unchanged=True)
        self.assertNonEmpty(r.err)
        self.assertMentions(r.err, [r'usage', r'unrecognized',
                                    r'unknown'])

    def test_no_output_option(self):
        digest = tools.file_digest(self.inp)
        r = self.run_tool([OUR_REPAIR, '-i', self.inp])
        self.assertUnchanged(self.inp, digest)
        self.assertExit(r, 1)
        self.assertMentions(r.err, [r'output'])

    def test_no_input_option(self):
        out = new_output(self.dir)
        digest = tools.file_digest(out)
        r = self.run_tool([OUR_REPAIR, '-o', out])
        self.assertUnchanged(out, digest, 'output file')
        self.assertExit(r, 1)
        self.assertMentions(r.err, [r'input'])

    def test_io_engine_async(self):
        if tools.build_is_debian():
            self.skipTest('--io-engine is our extension')
        inp = damage.make('bottom_leaf_bitflip')
        _, sync_out, _, _ = repaired('bottom_leaf_bitflip')
        out = new_output(self.dir)
        r = self.repair(inp, out, ['--io-engine', 'async'])
        self.assertNonEmpty(r.err)
        self.assertSameBytes(self.debian_dump(out).stdout,
                             self.debian_dump(sync_out).stdout,
                             'async vs sync repair')


if __name__ == '__main__':
    unittest.main()


# ----------------------------------------------------------------
# A superblock whose checksum alone is damaged, on metadata that also holds
# stale trees of earlier transactions (as every pool the kernel used does;
# here, the trees an in-place merge shadowed).  The superblock's roots
# are still readable and consistent, so repair must use them, not the
# stale trees scanning finds (which lost the latest writes when LVM's
# lvconvert --repair ran our thin_repair on such a pool).

def _stale_trees_test(scenario):
    def test(self):
        from lib import mergepools
        fx = mergepools.get(scenario)
        sc = fx.scenario
        meta = os.path.join(tools.temp_dir(), 'meta')
        tools.sparse_copy(fx.meta, meta)
        r = tools.run([tools.ours('thin_merge'), '-i', meta, '--in-place',
                       '--origin', str(sc.origin),
                       '--snapshot', str(sc.snapshot)])
        self.assertExit(r, 0, 'the in-place merge that leaves stale trees')
        want = tools.run([DEBIAN_DUMP, meta])
        self.assertExit(want, 0, 'Debian thin_dump before the damage')
        with open(meta, 'r+b') as f:
            csum = bytearray(f.read(4))
            csum[0] ^= 0xff
            f.seek(0)
            f.write(csum)
        got = tools.run([tools.ours('thin_dump'), '--repair', meta])
        self.assertExit(got, 0, 'thin_dump --repair')
        # the superblock line may differ in its version: the devices not
        body = lambda out: out.split(b'\n', 1)[1]
        self.assertSameBytes(body(got.stdout), body(want.stdout),
                             'repair of a superblock with a bad checksum')
    return test


class TestRepairSuperblockChecksumOnly(ToolTestCase):
    pass


for _sc in ('random_writes', 'clustered_writes', 'unrelated_devices'):
    _t = _stale_trees_test(_sc)
    _t.__name__ = 'test_stale_trees__%s' % _sc
    setattr(TestRepairSuperblockChecksumOnly, _t.__name__, _t)


# ----------------------------------------------------------------
# Shared leaves: snapshots keep sharing after a repair

SHARED_HEAD = ('<superblock uuid="" time="1" transaction="1" version="2" '
               'data_block_size="128" nr_data_blocks="%d">\n')
SHARED_DEV = ('  <device dev_id="%d" mapped_blocks="0" transaction="0" '
              'creation_time="0" snap_time="1">\n')


def _singles(first, count, data, step=2, time=0):
    return ''.join('    <single_mapping origin_block="%d" data_block="%d" '
                   'time="%d"/>\n' % (first + step * i, data + i, time)
                   for i in range(count))


def _shared_xml(nr_devices):
    """Sections a (40,000 mappings) and b (20,000) that every device
    refers to, as a snapshot and its origin share leaves; odd devices
    also hold mappings of their own between the two (their writes).
    Returns (xml, nr_data_blocks)."""
    body = ['  <def name="a">\n', _singles(0, 40000, 0), '  </def>\n',
            '  <def name="b">\n', _singles(200000, 20000, 40000), '  </def>\n']
    data = 60000
    for dev in range(nr_devices):
        body.append(SHARED_DEV % dev)
        body.append('    <ref name="a"/>\n')
        if dev % 2:
            body.append(_singles(100000 + dev, 300, data, step=97, time=1))
            data += 300
        body.append('    <ref name="b"/>\n  </device>\n')
    return (SHARED_HEAD % (data + 10)) + ''.join(body) + '</superblock>\n', data + 10


class TestRepairKeepsSharing(RepairMixin, ToolTestCase):
    """A pool whose devices share most of their leaves (as the kernel's
    snapshots do) repairs into an output no larger than its own, as
    1.x's thin_repair does: the shared leaves are written once.  Written
    device by device instead, 12 devices would need about 12 times the
    room (the repair of 0.9.0 and of this suite before it fails there).
    The result dumps as the input (0.9.0's thin_dump), passes the three
    checkers, and uses no more blocks than the input."""

    NR_DEVICES = 12

    @classmethod
    def setUpClass(cls):
        cls.d = tools.temp_dir('repair-shared-')
        xml, _ = _shared_xml(cls.NR_DEVICES)
        path = os.path.join(cls.d, 'shared.xml')
        with open(path, 'w') as f:
            f.write(xml)
        cls.meta = new_output(cls.d, 'shared.meta', blocks=2048)
        r = tools.run([tools.ours('thin_restore'), '-i', path, '-o', cls.meta])
        assert r.rc == 0, r.describe()
        cls.used = _allocated(cls.meta)

    def test_repairs_into_an_output_of_the_input_size(self):
        out = new_output(tools.temp_dir(), blocks=2048)
        r = self.repair(self.meta, out)
        self.assertEqual(r.err, '', 'nothing lost, nothing to report')
        self.assertSameBytes(self.debian_dump(out).stdout,
                             self.debian_dump(self.meta).stdout, 'dump of the repaired pool')
        self.assertChecksClean(out)
        self.assertLessEqual(_allocated(out), self.used,
                             'the repair uses more blocks than the pool it repairs')

    def test_the_announced_size_follows_the_sharing(self):
        small = new_output(tools.temp_dir(), blocks=64)
        r = self.repair(self.meta, small, expect_rc=1)
        need = int(re.search(r'needs (\d+) blocks', r.err).group(1))
        # an upper bound of what the repair uses, but not the unshared size
        self.assertGreaterEqual(need, self.used)
        self.assertLess(need, 2 * self.used + 64, r.err)
        exact = new_output(tools.temp_dir(), blocks=need)
        self.repair(self.meta, exact)
        self.assertChecksClean(exact)

    @tools.needs_oracle(tools.ONEX_PDATA_TOOLS)
    def test_upstream_1x_repairs_it_into_the_same_room(self):
        # the oracle's verdict: the input-sized output is enough
        out = new_output(tools.temp_dir(), blocks=2048)
        r = self.run_tool(tools.onex('thin_repair') + ['-i', self.meta, '-o', out])
        self.assertExit(r, 0, '1.x thin_repair')
        self.assertSameBytes(self.debian_dump(out).stdout,
                             self.debian_dump(self.meta).stdout, "1.x's repair")

    def test_a_damaged_shared_leaf_is_lost_for_every_device_that_shares_it(self):
        inp = private_copy(self.meta, 'damaged.meta')
        with md.Metadata(inp, writable=True) as img:
            leaf, lo, hi = _leaf_and_range(img, dev=0)
            damage.flip_in_node(img, leaf)         # its checksum now fails
        out = new_output(tools.temp_dir(), blocks=2048)
        self.repair(inp, out)
        self.assertChecksClean(out)
        got = self.read_pool(out)
        want = self.read_pool(self.meta)
        for dev_id, dev in want['devices'].items():
            expected = {k: v for k, v in dev.mappings.items() if not _in_range(k, lo, hi)}
            self.assertLess(len(expected), len(dev.mappings), 'device %d shares the leaf' % dev_id)
            self.assertMappingsEqual(dev_id, got['devices'][dev_id].mappings, expected)


def _allocated(meta):
    with md.Metadata(meta) as m:
        return m.superblock().metadata_sm.nr_allocated
