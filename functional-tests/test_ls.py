# SPDX-License-Identifier: GPL-3.0-or-later
"""thin_ls: byte-for-byte equality with Debian's thin_ls 0.9.0.

Inputs:
  * every generated pool of lib/pools.py (the held-snapshot pools also with
    -m, the 1M-mapping pool included);
  * pools made here (LS_SCENARIOS) whose device sizes sit on the edges of
    the unit formatting of MAPPED, EXCLUSIVE and SHARED (data block sizes
    from 1 sector to 2097152 sectors, so that plain bytes, KiB, MiB, GiB
    and TiB all appear), and pools whose devices share data blocks in
    known ways (so that EXCLUSIVE and SHARED are not trivial), two of them
    with a held metadata snapshot whose view differs from the live one;
  * some pools of lib/mergepools.py where devices share whole bottom trees
    or leaves, as the kernel's snapshots do.

For every input and option set (test_<variant>__<pool>), our thin_ls and
/usr/sbin/thin_ls must exit 0 and print the same bytes.  The oracle's
output is also compared with a model of thin_ls 0.9.0 computed from the
pool model (test_model_<variant>__<pool>), so a pool that does not hold
what it is meant to hold cannot hide behind two identical outputs.

The unit rule of v0.9 (measured on /usr/sbin/thin_ls; see v09_size()):
the size in bytes is divided by 1024, truncating, while it exceeds
1048576; then, if it exceeds 8192, divided once more, rounding half up.
So 8192.5 KiB prints "8192KiB", 1024.5 KiB "1024KiB", 8192.125 MiB
"8192MiB", but 8.5 KiB "9KiB" and 12.5 MiB "13MiB".

TestLsErrors: bad field lists, -m without a held snapshot, missing,
directory, too small, XML and empty inputs: exit 1 and a message, as v0.9
(whose wording is not required where it is unhelpful).
"""

import os
import random
import threading
import unittest

from lib import heldroot, mergepools, pools, poolgen, tools
from lib.poolgen import Device, Pool
from lib.testing import ToolTestCase

OUR_LS = tools.ours('thin_ls')
DEBIAN_LS = tools.DEBIAN['thin_ls']
BIG_TIMEOUT = tools.scaled(120)      # the 1M-mapping pool

FIELDS = ['DEV', 'MAPPED_BLOCKS', 'EXCLUSIVE_BLOCKS', 'SHARED_BLOCKS',
          'MAPPED_SECTORS', 'EXCLUSIVE_SECTORS', 'SHARED_SECTORS',
          'MAPPED_BYTES', 'EXCLUSIVE_BYTES', 'SHARED_BYTES',
          'MAPPED', 'EXCLUSIVE', 'SHARED',
          'TRANSACTION', 'CREATE_TIME', 'SNAP_TIME']
DEFAULT_FIELDS = ['DEV', 'MAPPED', 'CREATE_TIME', 'SNAP_TIME']
ALL = ','.join(FIELDS)
REPEATED = ['DEV', 'SHARED', 'DEV', 'EXCLUSIVE_BLOCKS', 'SHARED',
            'EXCLUSIVE_BLOCKS', 'DEV']


def _add(cls, name, fn):
    assert not hasattr(cls, name), name
    fn.__name__ = name
    setattr(cls, name, fn)


# ----------------------------------------------------------------
# A model of thin_ls 0.9.0

UNITS = ['', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB']


def v09_size(sectors):
    """MAPPED/EXCLUSIVE/SHARED as thin_ls 0.9.0 prints a size in sectors:
    truncating divisions by 1024 while the value exceeds 2^20, then one
    rounded division (half up) if it still exceeds 8192; no suffix for
    bytes."""
    n = sectors * 512
    i = 0
    while n > 1 << 20:
        n //= 1024
        i += 1
    if n > 8192:
        n = (n + 512) // 1024
        i += 1
    return '%d%s' % (n, UNITS[i])


class ViewFacts:
    """Per-device numbers of one view of a pool (the live one or the held
    one): mapped blocks and exclusive blocks, a data block being exclusive
    when exactly one mapping of the whole view points at it (a device
    mapping a block twice shares it with itself)."""

    def __init__(self, view):
        self.view = view
        refs = view.data_block_refs()
        self.exclusive = {}
        for dev in view.devices:
            self.exclusive[dev.dev_id] = sum(
                1 for _, d, _ in dev.mappings() if refs[d] == 1)

    def cell(self, dev, field):
        dbs = self.view.data_block_size
        mapped = dev.mapped_blocks
        excl = self.exclusive[dev.dev_id]
        blocks = {'MAPPED': mapped, 'EXCLUSIVE': excl,
                  'SHARED': mapped - excl}
        if field == 'DEV':
            return str(dev.dev_id)
        if field == 'TRANSACTION':
            return str(dev.transaction)
        if field == 'CREATE_TIME':
            return str(dev.creation_time)
        if field == 'SNAP_TIME':
            return str(dev.snap_time)
        if field in blocks:
            return v09_size(blocks[field] * dbs)
        kind, unit = field.split('_')
        n = blocks[kind]
        return str({'BLOCKS': n, 'SECTORS': n * dbs,
                    'BYTES': n * dbs * 512}[unit])

    def expected(self, fields, headers=True):
        """The bytes thin_ls 0.9.0 prints: one row per device in id order,
        preceded by the field names unless --no-headers; every cell right
        aligned to its column's widest and followed by one space."""
        rows = [list(fields)] if headers else []
        for dev in sorted(self.view.devices, key=lambda d: d.dev_id):
            rows.append([self.cell(dev, f) for f in fields])
        if not rows:
            return b''
        widths = [max(len(r[i]) for r in rows) for i in range(len(fields))]
        return ''.join(''.join(c.rjust(w) + ' ' for c, w in zip(r, widths))
                       + '\n' for r in rows).encode()


# ----------------------------------------------------------------
# Pools made for thin_ls

def segment_pool(name, data_block_size, devices, segments, time=5,
                 transaction=50):
    """A pool built from segments of data blocks.

    devices: [(dev_id, transaction, creation_time, snap_time)];
    segments: [(length, [dev_id, ...])]: `length` consecutive data blocks,
    mapped (as one range, after a hole of one block) by each listed device,
    twice if it is listed twice.  A segment listed by one device is
    exclusive to it; the others are shared by their devices."""
    runs = {d[0]: [] for d in devices}
    cursor = {d[0]: 0 for d in devices}
    data = 0
    for i, (length, owners) in enumerate(segments):
        for dev_id in owners:
            runs[dev_id].append((cursor[dev_id], data, length, i % (time + 1)))
            cursor[dev_id] += length + 1
        data += length
    devs = [Device(dev_id, transaction=t, creation_time=c, snap_time=s,
                   runs=runs[dev_id]) for dev_id, t, c, s in devices]
    return Pool(name, time=time, transaction=transaction,
                data_block_size=data_block_size, nr_data_blocks=data + 17,
                devices=devs)


def _exclusive_devices(counts, first_id=0):
    """One device per count, mapping that many blocks of its own."""
    devices = [(first_id + i, i * 3, i % 5, i % 5 + 1)
               for i in range(len(counts))]
    segments = [(n, [first_id + i]) for i, n in enumerate(counts) if n]
    return devices, segments


def _units_pool(name, data_block_size, counts, shared_devices=(),
                shared_segments=()):
    devices, segments = _exclusive_devices(counts)
    devices += [(dev_id, 1000 + dev_id, 2, 3) for dev_id in shared_devices]
    return segment_pool(name, data_block_size, devices,
                        segments + list(shared_segments))


def ls_units_bytes(rng):
    """512-byte blocks: plain bytes up to 8192, then KiB (8704 bytes is
    8.5 KiB: "9KiB"), the 1 MiB step (1023.5 KiB rounds up, 1024.5 KiB is
    truncated), 8191.5, 8192, 8192.5 and 8193 KiB, 8.5 MiB, 12.5 MiB.
    Devices 30-32 share blocks: EXCLUSIVE and SHARED on the same edges."""
    return _units_pool(
        'ls_units_bytes', 1,
        [0, 1, 2, 15, 16, 17, 18, 19, 2047, 2048, 2049, 16383, 16384, 16385,
         16386, 17407, 17408, 25599, 25600],
        shared_devices=(30, 31, 32),
        shared_segments=[(17, [30, 31]), (16385, [30, 31, 32]),
                         (16386, [30]), (2049, [31])])


def ls_units_64k(rng):
    """64 KiB blocks (the usual size): 8192 KiB (128 blocks), 8256 KiB,
    8.5 MiB, 12.4375 and 12.5 MiB, 1 GiB and 1 GiB + 64 KiB; shared blocks
    giving SHARED/EXCLUSIVE of 12.5 MiB, 8192 KiB, 8.5 MiB."""
    return _units_pool(
        'ls_units_64k', 128,
        [0, 1, 16, 17, 127, 128, 129, 136, 199, 200, 16384, 16385],
        shared_devices=(20, 21, 22, 23, 24),
        shared_segments=[(200, [20, 21]), (128, [20]), (129, [21]),
                         (136, [22, 23, 24]), (1, [22]), (127, [23, 24])])


def ls_units_mib(rng):
    """128 KiB blocks: 8 MiB to 8.625 MiB by eighths, 12.5 MiB, the 1 GiB
    step (1023.875 MiB rounds to 1024, 1024.5 and 1024.875 MiB are
    truncated), 2047.875 MiB, 8192 MiB and 8192.125 MiB (still MiB)."""
    return _units_pool(
        'ls_units_mib', 256,
        [64, 65, 67, 68, 69, 100, 8191, 8196, 8199, 16383, 65536, 65537],
        shared_devices=(20, 21),
        shared_segments=[(8196, [20, 21]), (68, [20])])


def ls_units_1m(rng):
    """1 MiB blocks: 1 MiB, 8 MiB, 8191 to 8193 MiB (8 GiB), 8.5 GiB,
    12.499 and 12.5 GiB, 1024 and 1025 MiB."""
    return _units_pool(
        'ls_units_1m', 2048,
        [1, 8, 8191, 8192, 8193, 8704, 12799, 12800, 1024, 1025],
        shared_devices=(20, 21),
        shared_segments=[(8193, [20, 21]), (8704, [21])])


def ls_units_gib(rng):
    """128 MiB blocks: 1 GiB (1024 MiB), 1152 MiB, 8.5 GiB, 12.5 GiB,
    1024.875 GiB (truncated), 8192.125 GiB (still GiB)."""
    return _units_pool(
        'ls_units_gib', 262144, [8, 9, 68, 100, 8199, 65537])


def ls_units_tib(rng):
    """1 GiB blocks (the largest data block size, 2097152 sectors): 1 GiB,
    8 and 9 GiB, 1024 GiB, 8192 GiB, 8193 GiB (8 TiB), 8.5 TiB, 12.499
    and 12.5 TiB; a shared 8193 GiB."""
    return _units_pool(
        'ls_units_tib', 2097152,
        [0, 1, 8, 9, 1024, 8192, 8193, 8704, 12799, 12800],
        shared_devices=(20, 21),
        shared_segments=[(8193, [20, 21]), (1, [21])])


def ls_shared(rng):
    """Ten devices; 80 segments each mapped by 1 to 5 of them; device 50
    maps nothing, device 51 shares everything it maps with 52, device 53
    shares nothing."""
    ids = list(range(10))
    devices = [(i, rng.randint(0, 1 << 40), i, i + rng.randint(0, 3))
               for i in ids]
    devices += [(50, 1, 1, 1), (51, 2, 2, 2), (52, 3, 2, 3), (53, 4, 3, 3)]
    segments = []
    for _ in range(80):
        k = rng.choice([1, 1, 2, 2, 3, 4, 5])
        segments.append((rng.randint(1, 300), sorted(rng.sample(ids, k))))
    segments += [(700, [51, 52]), (5, [51, 52]), (900, [53])]
    return segment_pool('ls_shared', 128, devices, segments, time=9,
                        transaction=1 << 41)


def ls_self_shared(rng):
    """Device 0 maps some data blocks at two virtual blocks each (shared
    with itself for v0.9), device 1 too, and with device 2."""
    devices = [(0, 0, 0, 0), (1, 1, 1, 1), (2, 2, 2, 2)]
    segments = [(100, [0]), (50, [0, 0]), (30, [0, 1]), (20, [1]),
                (10, [1, 1, 2]), (3, [2])]
    return segment_pool('ls_self_shared', 128, devices, segments)


def _held_family(name, rng):
    """Four devices sharing blocks in every combination that matters for a
    held view lacking device 3 (diverged): blocks shared only with 3 turn
    exclusive there."""
    devices = [(0, 0, 0, 1), (1, 1, 1, 2), (2, 2, 2, 3), (3, 3, 3, 3)]
    segments = [(500, [0, 1, 2, 3]), (100, [0]), (200, [1, 2]),
                (150, [2, 3]), (80, [3]), (60, [0, 3]), (129, [1])]
    return segment_pool(name, 128, devices, segments, time=3, transaction=9)


LS_SCENARIOS = {
    'ls_units_bytes': ls_units_bytes,
    'ls_units_64k': ls_units_64k,
    'ls_units_mib': ls_units_mib,
    'ls_units_1m': ls_units_1m,
    'ls_units_gib': ls_units_gib,
    'ls_units_tib': ls_units_tib,
    'ls_shared': ls_shared,
    'ls_self_shared': ls_self_shared,
    'ls_held_shared': lambda rng: _held_family('ls_held_shared', rng),
    'ls_held_diverged': lambda rng: _held_family('ls_held_diverged', rng),
}
LS_HELD = {'ls_held_shared': False, 'ls_held_diverged': True}

# lib/mergepools.py scenarios with shared trees: a bottom tree shared by
# two devices (shared_root), shared leaves (partially_shared, restored by
# our thin_restore), both (internal_snapshots_shared), data blocks only
# (internal_snapshots).
MERGE_POOLS = ['shared_root', 'partially_shared', 'internal_snapshots',
               'internal_snapshots_shared']


# ----------------------------------------------------------------
# Inputs

class LsInput:
    """A restored pool: meta (path), model (the live view), held (the model
    of the held view, or None without a metadata snapshot)."""

    def __init__(self, name, meta, model, held=None):
        self.name = name
        self.meta = meta
        self.model = model
        self.held = held
        self._facts = {}

    def facts(self, held=False):
        f = self._facts.get(held)
        if f is None:
            f = ViewFacts(self.held if held else self.model)
            self._facts[held] = f
        return f


INPUT_NAMES = (list(pools.POOL_NAMES) + list(LS_SCENARIOS) +
               ['merge_' + n for n in MERGE_POOLS])
HELD_INPUTS = ({n for n in pools.HELD_POOLS} | set(LS_HELD))

_inputs = {}
_lock = threading.Lock()


def _make_ls_pool(name):
    rng = random.Random('ls/%s/%d' % (name, pools.SEED))
    model = LS_SCENARIOS[name](rng)
    model.name = name
    model.check()
    d = os.path.join(tools.session_dir(), 'ls-pools')
    os.makedirs(d, exist_ok=True)
    _, meta = poolgen.restore_pool(model, d)
    held = None
    if name in LS_HELD:
        info = heldroot.build_held_root(meta, diverged=LS_HELD[name])
        held = model.without_devices(info['dropped'],
                                     transaction=info['transaction'])
    return LsInput(name, meta, model, held)


def get_input(name):
    with _lock:
        inp = _inputs.get(name)
        if inp is not None:
            return inp
    # pools.get() and mergepools.get() take their own locks
    if name in LS_SCENARIOS:
        with _lock:
            inp = _inputs.get(name) or _make_ls_pool(name)
    elif name.startswith('merge_'):
        scenario = name[len('merge_'):]
        if (tools.build_is_debian() and
                mergepools.generate(scenario).uses_our_restore):
            raise unittest.SkipTest('restored by our thin_restore (1.x XML '
                                    'dialect): not in a Debian build dir')
        fx = mergepools.get(scenario)
        inp = LsInput(name, fx.meta, fx.pool,
                      fx.held_view() if fx.held else None)
    else:
        fx = pools.get(name)
        inp = LsInput(name, fx.meta, fx.model,
                      fx.held_model() if fx.held else None)
    with _lock:
        return _inputs.setdefault(name, inp)


# ----------------------------------------------------------------
# Variants

class Variant:
    """args: the options; fields and headers: what they ask for (for the
    model); held: reads the metadata snapshot (only on held inputs)."""

    def __init__(self, name, args, fields, headers=True, held=False):
        self.name = name
        self.args = args
        self.fields = fields
        self.headers = headers
        self.held = held

    def applies(self, input_name):
        return not self.held or input_name in HELD_INPUTS


VARIANTS = [
    Variant('default', [], DEFAULT_FIELDS),
    Variant('all_fields', ['-o', ALL], FIELDS),
    Variant('all_fields_long', ['--format', ALL], FIELDS),
    Variant('all_fields_reversed', ['-o', ','.join(reversed(FIELDS))],
            list(reversed(FIELDS))),
    Variant('no_headers', ['--no-headers'], DEFAULT_FIELDS, headers=False),
    Variant('no_headers_all', ['--no-headers', '-o', ALL], FIELDS,
            headers=False),
    Variant('repeated', ['-o', ','.join(REPEATED)], REPEATED),
    Variant('trailing_comma', ['-o', 'DEV,EXCLUSIVE,'], ['DEV', 'EXCLUSIVE']),
    Variant('metadata_snap', ['-m'], DEFAULT_FIELDS, held=True),
    Variant('metadata_snap_all', ['-m', '-o', ALL], FIELDS, held=True),
    Variant('metadata_snap_long', ['--metadata-snap', '--format', ALL],
            FIELDS, held=True),
    Variant('metadata_snap_no_headers', ['--no-headers', '-m', '-o', ALL],
            FIELDS, headers=False, held=True),
]
FIELD_VARIANTS = [Variant('field_' + f.lower(), ['-o', f], [f])
                  for f in FIELDS]


def oracle_ls(inp, args):
    return pools.oracle([DEBIAN_LS] + list(args) + [inp.meta])


class TestLs(ToolTestCase):
    """Tests are added below: test_<variant>__<input> (ours vs v0.9),
    test_model_<variant>__<input> (v0.9 vs the model),
    test_each_field__<input> and test_model_each_field__<input> (every
    field alone), test_io_engine_*__<input>."""

    def check_same_as_oracle(self, inp, args, ours_args=None):
        expected = oracle_ls(inp, args)
        self.assertExit(expected, 0, 'oracle')
        r = self.run_tool([OUR_LS] + list(ours_args or args) + [inp.meta],
                          timeout=BIG_TIMEOUT)
        self.assertExit(r, 0)
        self.assertSameBytes(r.stdout, expected.stdout, 'thin_ls %s stdout'
                             % (' '.join(ours_args or args) or
                                '(no options)'))
        self.assertEqual(r.err, '', 'a successful thin_ls prints nothing on '
                         'stderr')
        return r

    def check_oracle_model(self, inp, variant):
        r = oracle_ls(inp, variant.args)
        self.assertExit(r, 0, 'oracle')
        model = inp.facts(variant.held).expected(variant.fields,
                                                 variant.headers)
        self.assertSameBytes(r.stdout, model,
                             'Debian thin_ls %s vs the pool model'
                             % ' '.join(variant.args))


def _variant_test(variant, input_name):
    def test(self):
        self.check_same_as_oracle(get_input(input_name), variant.args)
    return test


def _model_test(variant, input_name):
    def test(self):
        self.check_oracle_model(get_input(input_name), variant)
    return test


def _each_field_test(input_name):
    def test(self):
        inp = get_input(input_name)
        bad = []
        for v in FIELD_VARIANTS:
            expected = oracle_ls(inp, v.args)
            self.assertExit(expected, 0, 'oracle, -o %s' % v.fields[0])
            r = self.run_tool([OUR_LS] + v.args + [inp.meta],
                              timeout=BIG_TIMEOUT)
            diff = tools.first_difference(r.stdout, expected.stdout)
            if r.rc != 0 or diff or r.stderr:
                bad.append('-o %s: exit %d, stderr %r\n%s' % (
                    v.fields[0], r.rc, r.err[:300], diff or ''))
        if bad:
            self.fail('%d of %d fields differ from v0.9:\n%s' % (
                len(bad), len(FIELD_VARIANTS), '\n'.join(bad)))
    return test


def _model_each_field_test(input_name):
    def test(self):
        inp = get_input(input_name)
        for v in FIELD_VARIANTS:
            with self.subTest(field=v.fields[0]):
                self.check_oracle_model(inp, v)
    return test


def _io_engine_test(input_name, engine):
    def test(self):
        if tools.build_is_debian():
            self.skipTest('--io-engine is our extension (build dir holds '
                          'Debian 0.9.0 tools)')
        inp = get_input(input_name)
        for held in ([[], ['-m']] if input_name in HELD_INPUTS else [[]]):
            args = held + ['-o', ALL]
            r = self.check_same_as_oracle(inp, args,
                                          ['--io-engine', engine] + args)
            other = self.run_tool([OUR_LS, '--io-engine',
                                   'sync' if engine == 'async' else 'async']
                                  + args + [inp.meta], timeout=BIG_TIMEOUT)
            self.assertExit(other, 0)
            self.assertSameBytes(r.stdout, other.stdout,
                                 'thin_ls --io-engine %s vs the other engine'
                                 % engine)
    return test


for _name in INPUT_NAMES:
    for _v in VARIANTS:
        if _v.applies(_name):
            _add(TestLs, 'test_%s__%s' % (_v.name, _name),
                 _variant_test(_v, _name))
            _add(TestLs, 'test_model_%s__%s' % (_v.name, _name),
                 _model_test(_v, _name))
    _add(TestLs, 'test_each_field__%s' % _name, _each_field_test(_name))
    _add(TestLs, 'test_model_each_field__%s' % _name,
         _model_each_field_test(_name))
    _add(TestLs, 'test_io_engine_sync__%s' % _name,
         _io_engine_test(_name, 'sync'))
    _add(TestLs, 'test_io_engine_async__%s' % _name,
         _io_engine_test(_name, 'async'))


class TestLsUnitModel(unittest.TestCase):
    """The unit rule of the model, on values measured on /usr/sbin/thin_ls
    (each also appears in a LS_SCENARIOS pool, where the model is checked
    against the oracle)."""

    def test_v09_size(self):
        for sectors, text in ((0, '0'), (1, '512'), (16, '8192'),
                              (17, '9KiB'), (19, '10KiB'), (2047, '1024KiB'),
                              (2049, '1024KiB'), (16383, '8191KiB'),
                              (16384, '8192KiB'), (16385, '8192KiB'),
                              (16386, '8MiB'), (17407, '8MiB'),
                              (17408, '9MiB'), (25599, '12MiB'),
                              (25600, '13MiB'), (8196 * 256, '1024MiB'),
                              (65537 * 256, '8192MiB'),
                              (65544 * 256, '8GiB'),
                              (8193 * 2097152, '8TiB'),
                              (12800 * 2097152, '13TiB')):
            self.assertEqual(v09_size(sectors), text, sectors)


# ----------------------------------------------------------------
# Errors

NOT_FOUND = [r'no such file', r'not found', r'stat']


class TestLsErrors(ToolTestCase):
    """Exit 1, a message on stderr, nothing on stdout; test_oracle_* check
    that v0.9 fails the same way (exit code only)."""

    def expect_failure(self, args, patterns=None):
        r = self.run_tool([OUR_LS] + list(args))
        self.assertExit(r, 1)
        self.assertNonEmpty(r.err)
        self.assertEqual(r.stdout, b'', 'nothing on stdout on a failure')
        if patterns:
            self.assertMentions(r.err, patterns)
        return r

    def oracle_fails(self, args):
        r = tools.run([DEBIAN_LS] + list(args))
        self.assertExit(r, 1, 'oracle')
        self.assertNonEmpty(r.err, 'oracle stderr')

    # -- field lists
    BAD_FIELD_LISTS = {
        'unknown': 'NO_SUCH_FIELD',
        'lower_case': 'dev',
        'one_unknown_of_several': 'DEV,MAPPED,BOGUS,SNAP_TIME',
        'v0_8_name': 'DEV_ID',
        'space_after_comma': 'DEV, MAPPED',
        'empty_item': 'DEV,,MAPPED',
        'leading_comma': ',DEV',
        'only_comma': ',',
    }

    def test_format_missing_argument(self):
        self.expect_failure([pools.get('snapshots').meta, '-o'])

    # -- metadata snapshot
    def test_metadata_snap_absent(self):
        self.expect_failure(['-m', pools.get('snapshots').meta],
                            [r'metadata snap'])

    def test_oracle_metadata_snap_absent(self):
        self.oracle_fails(['-m', pools.get('snapshots').meta])

    def test_metadata_snap_absent_long(self):
        self.expect_failure(['--metadata-snap', '-o', ALL,
                             pools.get('many_devices').meta])

    # -- inputs
    def _small(self, size, byte=b'\x01'):
        p = os.path.join(tools.temp_dir(), 'small')
        with open(p, 'wb') as f:
            f.write(byte * size)
        return p

    def _xml(self):
        p = os.path.join(tools.temp_dir(), 'pool.xml')
        with open(pools.get('empty_devices').xml, 'rb') as f:
            data = f.read()
        with open(p, 'wb') as f:
            f.write(data.ljust(16384, b'\n'))
        return p

    def _inputs(self):
        return {
            'missing': os.path.join(tools.temp_dir(), 'no-such-file'),
            'directory': tools.temp_dir(),
            'too_small': self._small(4095),
            'empty': self._small(0),
            'xml': self._xml(),
        }

    def test_input_missing(self):
        self.expect_failure([self._inputs()['missing']], NOT_FOUND)

    def test_input_directory(self):
        self.expect_failure([self._inputs()['directory']])

    def test_input_too_small(self):
        self.expect_failure([self._inputs()['too_small']])

    def test_input_empty(self):
        self.expect_failure([self._inputs()['empty']])

    def test_input_xml(self):
        self.expect_failure([self._inputs()['xml']])

    def test_input_xml_all_fields(self):
        self.expect_failure(['-o', ALL, self._inputs()['xml']])

    def test_input_zeroed_superblock(self):
        d = tools.temp_dir()
        p = tools.sparse_copy(pools.get('snapshots').meta,
                              os.path.join(d, 'zeroed.meta'))
        with open(p, 'r+b') as f:
            f.write(bytes(4096))
        self.expect_failure([p])

    def test_no_input(self):
        self.expect_failure(['-o', 'DEV'])

    def test_oracle_inputs(self):
        for what, path in self._inputs().items():
            with self.subTest(input=what):
                self.oracle_fails([path])
        self.oracle_fails(['-o', 'DEV'])

    # -- our extension
    def test_io_engine_bad_value(self):
        if tools.build_is_debian():
            self.skipTest('--io-engine is our extension')
        self.expect_failure(['--io-engine', 'carrier-pigeon',
                             pools.get('snapshots').meta])

    def test_input_unchanged(self):
        """thin_ls only reads its input, -m included."""
        fx = pools.get('held_snapshot')
        digest = tools.file_digest(fx.meta)
        for args in ([], ['-m'], ['-o', ALL], ['-m', '-o', ALL]):
            r = self.run_tool([OUR_LS] + args + [fx.meta])
            self.assertExit(r, 0)
        self.assertUnchanged(fx.meta, digest)


def _bad_field_test(value):
    def test(self):
        self.expect_failure(['-o', value, pools.get('snapshots').meta],
                            [r'unknown field', r'field'])
    return test


def _bad_field_oracle_test(value):
    def test(self):
        self.oracle_fails(['-o', value, pools.get('snapshots').meta])
    return test


for _k, _value in TestLsErrors.BAD_FIELD_LISTS.items():
    _add(TestLsErrors, 'test_bad_fields_%s' % _k, _bad_field_test(_value))
    _add(TestLsErrors, 'test_oracle_bad_fields_%s' % _k,
         _bad_field_oracle_test(_value))


if __name__ == '__main__':
    unittest.main()
