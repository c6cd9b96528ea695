# SPDX-License-Identifier: GPL-3.0-or-later
"""thin_merge: the merged pool against an independent model.

Inputs: the scenarios of lib/mergepools.py (random and clustered writes,
empty S, empty O, S covering O, S beyond O's end, O with holes, O and S
sharing their root or some leaves, internal snapshots with and without
shared leaves, unrelated devices, held metadata snapshots, a larger pool).
Expectations: lib/mergemodel.py.

For every scenario and mode (test_<mode>__<scenario>): exit 0, the input
unchanged (except --in-place), our thin_dump and /usr/sbin/thin_dump of the
output agree and match the model for every device, thin_check (ours, 0.9.0,
1.x) exit 0, and the output's data space map has exactly the model's data
blocks in use (and, when no two devices share a leaf, the exact counts).
The merges of one scenario run first, then the dumps and checks of all its
outputs in parallel (the 1.x checker sleeps half a second per run).

test_dry_run__*: the printed counts against the model, nothing written.
TestMergeNothingToMerge, TestMergeOutput, TestMergeFailures: no --snapshot,
-q, the -m warning, "output too small" sizes, and every failure (exit 1,
one line naming the problem, the input byte-identical, the output either
untouched or with block 0 zeroed).
"""

import concurrent.futures
import os
import re
import threading
import unittest

from lib import mergemodel, mergepools, tools
from lib import metadata as md
from lib.mergemodel import MergeOptions
from lib.testing import ToolTestCase

MERGE = tools.ours('thin_merge')
OUR_DUMP = tools.ours('thin_dump')
OUR_CHECK = tools.ours('thin_check')
DEBIAN_DUMP = tools.DEBIAN['thin_dump']
DEBIAN_CHECK = tools.DEBIAN['thin_check']
TIMEOUT = tools.scaled(60)

NOT_FOUND = [r'no such file', r'not found', r'does not exist']
DAMAGE = [r'checksum', r'damaged', r'corrupt', r'thin_check', r'invalid',
          r'bad']


class Mode:
    """One way of calling thin_merge on a scenario."""

    def __init__(self, name, args=(), rebase=False, merged_only=False,
                 in_place=False, held=False, extension=False):
        self.name = name
        self.args = list(args)
        self.rebase = rebase
        self.merged_only = merged_only
        self.in_place = in_place
        self.held = held
        self.extension = extension      # an option of ours (io-engine)

    def options(self, sc):
        return MergeOptions(sc.origin, sc.snapshot, rebase=self.rebase,
                            merged_only=self.merged_only)

    def flags(self):
        out = list(self.args)
        if self.rebase:
            out.append('--rebase')
        if self.merged_only:
            out.append('--merged-only')
        if self.held:
            out.append('-m')
        return out


MODES = {m.name: m for m in [
    Mode('default'),
    Mode('rebase', rebase=True),
    Mode('merged_only', merged_only=True),
    Mode('merged_only_rebase', rebase=True, merged_only=True),
    Mode('in_place', in_place=True),
    Mode('in_place_rebase', rebase=True, in_place=True),
    Mode('io_engine_sync', ['--io-engine', 'sync'], extension=True),
    Mode('io_engine_async', ['--io-engine', 'async'], extension=True),
    Mode('held', held=True),
    Mode('held_rebase', rebase=True, held=True),
    Mode('held_merged_only', merged_only=True, held=True),
]}
STANDARD = ['default', 'rebase', 'merged_only', 'merged_only_rebase',
            'in_place', 'in_place_rebase', 'io_engine_sync',
            'io_engine_async']
HELD = ['held', 'held_rebase', 'held_merged_only']
# the in-place result must dump like the copy
IN_PLACE_TWIN = {'in_place': 'default', 'in_place_rebase': 'rebase'}

SCENARIO_MODES = {name: list(STANDARD) for name in mergepools.SCENARIOS}
SCENARIO_MODES['held_shared'] += HELD
SCENARIO_MODES['held_diverged'] += HELD
SCENARIO_MODES['large'] = ['default', 'merged_only', 'in_place']


# ----------------------------------------------------------------
# Helpers

def output_file(path, size, fill=None):
    """A pre-allocated output: sparse, or the first bytes of fill (a valid
    metadata image, so that a half-written output would be visible)."""
    if fill:
        with open(fill, 'rb') as f:
            head = f.read(min(size, 1 << 20))
        with open(path, 'wb') as f:
            f.write(head)
            f.truncate(size)
    else:
        with open(path, 'wb') as f:
            f.truncate(size)
    return path


def file_size(path):
    return os.stat(path).st_size


def data_sm(path):
    """(superblock, {data block: bitmap count 0..3}) of a metadata file."""
    with md.Metadata(path) as img:
        sb = img.superblock()
        return sb, dict(img.sm_counts_range('data', sb))


def sb_uuid(sb):
    return bytes(sb.raw[16:32])


def data_sm_problems(path, expected_pool, exact, held_pool=None):
    """Differences between the output's data space map and the model:
    blocks in use that no device maps (leaks), mapped blocks marked free,
    and with exact, wrong counts.  held_pool: the model of a held view the
    output still holds (its trees keep their data blocks in use)."""
    sb, counts = data_sm(path)
    problems = []
    if sb.data_sm.nr_blocks != expected_pool.nr_data_blocks:
        problems.append('data SM nr_blocks %d, expected %d' % (
            sb.data_sm.nr_blocks, expected_pool.nr_data_blocks))
    used = mergemodel.used_data_blocks(expected_pool)
    if held_pool is not None:
        used |= mergemodel.used_data_blocks(held_pool)
        exact = False
    on_disk = {b for b, v in counts.items() if v}
    leaked = sorted(on_disk - used)
    lost = sorted(used - on_disk)
    if leaked:
        problems.append('%d data blocks in use that no device maps '
                        '(leaked), e.g. %s' % (len(leaked), leaked[:10]))
    if lost:
        problems.append('%d mapped data blocks marked free, e.g. %s' % (
            len(lost), lost[:10]))
    if exact and not problems:
        refs = mergemodel.data_block_devices(expected_pool)
        wrong = [(b, counts.get(b), min(n, 3)) for b, n in sorted(refs.items())
                 if counts.get(b) != min(n, 3)]
        if wrong:
            problems.append('%d data blocks with a wrong count (block, '
                            'got, expected), e.g. %s' % (len(wrong),
                                                         wrong[:10]))
    if sb.data_sm.nr_allocated != len(used):
        problems.append('data SM nr_allocated %d, expected %d' % (
            sb.data_sm.nr_allocated, len(used)))
    return problems


def merge_argv(fx, mode, out, snapshot=True):
    sc = fx.scenario
    argv = [MERGE]
    if mode.in_place:
        argv += ['-i', out, '--in-place']
    else:
        argv += ['-i', fx.meta, '-o', out]
    argv += ['--origin', str(sc.origin)]
    if snapshot:
        argv += ['--snapshot', str(sc.snapshot)]
    return argv + mode.flags()


_executor = None
_executor_lock = threading.Lock()


def executor():
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(max_workers=12)
        return _executor


def _safe_run(argv, timeout=TIMEOUT):
    try:
        return tools.run(argv, timeout=timeout)
    except Exception as e:          # CommandFailure, OSError: re-raised later
        return e


class Outcome:
    """A merge of one scenario in one mode and what was run on its output."""

    def __init__(self, fx, mode):
        self.fx = fx
        self.mode = mode
        self.merge = None           # Result or exception
        self.out = None
        self.input_digest_before = None
        self.input_digest_after = None
        self.runs = {}              # name -> future (Result or exception)

    def result(self, name):
        r = self.runs[name].result()
        if isinstance(r, BaseException):
            raise r
        return r


_outcomes = {}
_outcomes_lock = threading.Lock()


def outcomes(name):
    """Every mode of a scenario: merges first (one at a time), then the
    dumps and checks of all outputs in parallel.  Cached for the session."""
    with _outcomes_lock:
        got = _outcomes.get(name)
        if got is not None:
            return got
        fx = mergepools.get(name)
        d = tools.temp_dir('merge-%s-' % name)
        got = {}
        for mname in SCENARIO_MODES[name]:
            mode = MODES[mname]
            oc = Outcome(fx, mode)
            got[mname] = oc
            if mode.extension and tools.build_is_debian():
                continue
            if mode.in_place:
                oc.out = tools.sparse_copy(fx.meta, os.path.join(
                    d, mname + '.meta'))
            else:
                oc.out = output_file(os.path.join(d, mname + '.meta'),
                                     file_size(fx.meta))
            oc.input_digest_before = tools.file_digest(fx.meta)
            oc.merge = _safe_run(merge_argv(fx, mode, oc.out))
            oc.input_digest_after = tools.file_digest(fx.meta)
        ex = executor()
        for oc in got.values():
            if not isinstance(oc.merge, tools.Result) or oc.merge.rc != 0:
                continue
            argvs = {
                'our_dump': [OUR_DUMP, oc.out],
                'debian_dump': [DEBIAN_DUMP, oc.out],
                'our_check': [OUR_CHECK, oc.out],
                'debian_check': [DEBIAN_CHECK, oc.out],
                'onex_check': tools.onex('thin_check') + [oc.out],
            }
            if fx.held and not oc.mode.held and not oc.mode.merged_only:
                argvs['our_dump_held'] = [OUR_DUMP, '-m', oc.out]
                argvs['debian_dump_held'] = [DEBIAN_DUMP, '-m', oc.out]
            for key, argv in argvs.items():
                oc.runs[key] = ex.submit(_safe_run, argv)
        _outcomes[name] = got
        return got


# ----------------------------------------------------------------
# Generated tests: every scenario in every mode

class MergeTestBase(ToolTestCase):
    maxDiff = 4000

    def setUp(self):
        for cmd in ('thin_merge', 'thin_restore', 'thin_dump', 'thin_check'):
            if not os.path.exists(tools.ours(cmd)):
                self.skipTest('no %s in %s' % (cmd, tools.BUILD_DIR))

    def assertCommandOk(self, r, what='thin_merge'):
        if isinstance(r, BaseException):
            raise r
        if r.rc != 0:
            self.fail('%s: expected exit 0, got %d\n%s' % (what, r.rc,
                                                           r.describe()))

    def assertNoCrashText(self, r):
        for marker in ('Traceback', 'Segmentation', 'Assertion',
                       'core dumped', 'Aborted'):
            self.assertNotIn(marker, r.err, r.describe())

    def assertChecksClean(self, results, path):
        for name, r in results:
            if r.rc != 0:
                self.fail('%s on the output %s: exit %d\n%s' % (
                    name, path, r.rc, r.describe()))

    def assertModelDump(self, dump, expected, what):
        if dump != expected:
            self.fail('%s differs from the model:\n%s' % (
                what, tools.first_difference(dump, expected)))


class TestMergeModes(MergeTestBase):
    """test_<mode>__<scenario>, generated below."""

    def failed_output_state(self, oc):
        """After a failed merge: is what it wrote safe?  --in-place: the
        input must still be the pool as it was (a transaction that did not
        commit); otherwise the output must be untouched (sparse, zero) or
        have block 0 zeroed."""
        if oc.mode.in_place:
            d = tools.run([DEBIAN_DUMP, oc.out])
            same = d.rc == 0 and d.stdout == oc.fx.pool.expected_xml()
            return ('--in-place input after the failure: %s' % (
                'still the original pool (safe)' if same else
                'CHANGED (dump exit %d): not the original pool any more'
                % d.rc))
        zero = tools.read_block(oc.out, 0) == bytes(4096)
        return 'output after the failure: block 0 %s' % (
            'zeroed (safe)' if zero else 'NOT zeroed (half-valid output)')

    def check_outcome(self, scenario, mode_name):
        oc = outcomes(scenario)[mode_name]
        mode = oc.mode
        fx = oc.fx
        if mode.extension and tools.build_is_debian():
            self.skipTest('--io-engine is our extension')
        r = oc.merge
        if isinstance(r, BaseException):
            raise r
        if (r.rc != 0 and mode.name == 'io_engine_async'
                and re.search(r'no async I/O engine', r.err)):
            self.skipTest('no async engine in this build')
        if r.rc != 0:
            self.fail('thin_merge: expected exit 0, got %d\n%s\n%s' % (
                r.rc, r.describe(), self.failed_output_state(oc)))
        self.assertNoCrashText(r)
        if not mode.in_place:
            self.assertEqual(oc.input_digest_before, oc.input_digest_after,
                             'the input %s was modified' % fx.meta)

        view = fx.input_view(held=mode.held)
        expected_pool = mergemodel.expected_output(view, mode.options(
            fx.scenario))
        expected = expected_pool.expected_xml()
        ours = oc.result('our_dump')
        debian = oc.result('debian_dump')
        self.assertCommandOk(debian, '/usr/sbin/thin_dump of the output')
        self.assertCommandOk(ours, 'our thin_dump of the output')
        self.assertSameBytes(ours.stdout, debian.stdout,
                             'our thin_dump of the output vs Debian\'s')
        self.assertModelDump(debian.stdout, expected,
                             '/usr/sbin/thin_dump of the output')

        self.assertChecksClean([('our thin_check', oc.result('our_check')),
                                ('thin_check 0.9.0',
                                 oc.result('debian_check')),
                                ('thin_check 1.x', oc.result('onex_check'))],
                               oc.out)

        with md.Metadata(oc.out) as img:
            sb = img.superblock()
        exact = fx.scenario.exact_counts or mode.merged_only
        problems = data_sm_problems(
            oc.out, expected_pool, exact,
            fx.held_view() if sb.metadata_snap else None)
        if problems:
            self.fail('data space map of the output:\n  ' +
                      '\n  '.join(problems))
        if mode.merged_only:
            self.assertEqual(sb.flags, 0, 'flags of --merged-only output')
            self.assertEqual(sb_uuid(sb), bytes(16),
                             'uuid of --merged-only output must be empty')
            self.assertEqual(sb.metadata_snap, 0,
                             '--merged-only output holds no metadata snapshot')
        if mode.held:
            self.assertEqual(sb.metadata_snap, 0,
                             '-m output holds no metadata snapshot')
        if fx.held and not mode.held and not mode.merged_only:
            # the frozen view must survive a merge that keeps the pool
            if mode.in_place:
                self.assertNotEqual(sb.metadata_snap, 0,
                                    '--in-place dropped the held root')
            if sb.metadata_snap:
                held_exp = fx.held_view().expected_xml(nr_data_blocks=0)
                for key, who in (('our_dump_held', 'our thin_dump -m'),
                                 ('debian_dump_held',
                                  '/usr/sbin/thin_dump -m')):
                    h = oc.result(key)
                    self.assertCommandOk(h, who)
                    self.assertModelDump(
                        h.stdout, held_exp,
                        '%s of the output (the held view must not change)'
                        % who)

        twin = IN_PLACE_TWIN.get(mode.name)
        if twin and twin in outcomes(scenario):
            other = outcomes(scenario)[twin]
            if isinstance(other.merge, tools.Result) and other.merge.rc == 0:
                self.assertSameBytes(ours.stdout,
                                     other.result('our_dump').stdout,
                                     '--in-place result vs the %s output'
                                     % twin)


def _make_mode_test(scenario, mode_name):
    def test(self):
        self.check_outcome(scenario, mode_name)
    test.__doc__ = '%s: %s' % (mode_name, mergepools.SCENARIOS[scenario]
                               .__doc__ or scenario)
    return test


for _sc, _modes in SCENARIO_MODES.items():
    for _m in _modes:
        setattr(TestMergeModes, 'test_%s__%s' % (_m, _sc),
                _make_mode_test(_sc, _m))


# ----------------------------------------------------------------
# Inputs: the generator itself

class TestMergeInputs(MergeTestBase):
    """Each scenario's input is what its model says, and clean."""


def _make_input_test(scenario):
    def test(self):
        fx = mergepools.get(scenario)
        ex = executor()
        futs = {k: ex.submit(_safe_run, argv) for k, argv in {
            'dump': [DEBIAN_DUMP, fx.meta],
            'our_check': [OUR_CHECK, fx.meta],
            'debian_check': [DEBIAN_CHECK, fx.meta],
            'onex_check': tools.onex('thin_check') + [fx.meta]}.items()}
        res = {}
        for k, f in futs.items():
            res[k] = f.result()
            if isinstance(res[k], BaseException):
                raise res[k]
        self.assertCommandOk(res['dump'])
        self.assertModelDump(res['dump'].stdout, fx.pool.expected_xml(),
                             'input pool %s' % scenario)
        self.assertChecksClean([(k, res[k]) for k in
                                ('our_check', 'debian_check', 'onex_check')],
                               fx.meta)
    return test


for _sc in mergepools.SCENARIOS:
    setattr(TestMergeInputs, 'test_input__%s' % _sc, _make_input_test(_sc))


# ----------------------------------------------------------------
# Dry run

STAT_PATTERNS = {
    'taken': r'taken from the snapshot\D*(\d+)',
    'kept': r'kept from the origin\D*(\d+)',
    'hidden': r'hidden\D*(\d+)',
    'merged': r'mapped_blocks\D*(\d+)',
}


def parse_stats(text):
    out = {}
    for key, pat in STAT_PATTERNS.items():
        m = re.search(pat, text, re.I)
        out[key] = int(m.group(1)) if m else None
    m = re.search(r'merged device\D*(\d+)', text, re.I)
    out['kept_id'] = int(m.group(1)) if m else None
    return out


class TestMergeDryRun(MergeTestBase):

    def dry_run(self, scenario, extra=(), held=False, rebase=False,
                merged_only=False, snapshot=True, with_output=True):
        fx = mergepools.get(scenario)
        sc = fx.scenario
        d = tools.temp_dir('dry-')
        inp = tools.sparse_copy(fx.meta, os.path.join(d, 'in.meta'))
        argv = [MERGE, '-i', inp, '--origin', str(sc.origin), '--dry-run']
        out = None
        if with_output:
            # an output holding a valid pool: it must stay as it is
            out = output_file(os.path.join(d, 'out.meta'),
                              file_size(fx.meta),
                              fill=mergepools.get('snapshot_empty').meta)
            argv += ['-o', out]
        if snapshot:
            argv += ['--snapshot', str(sc.snapshot)]
        if held:
            argv.append('-m')
        if rebase:
            argv.append('--rebase')
        if merged_only:
            argv.append('--merged-only')
        argv += list(extra)
        before_in = tools.file_digest(inp)
        before_out = tools.file_digest(out) if out else None
        r = self.run_tool(argv)
        self.assertCommandOk(r)
        self.assertNoCrashText(r)
        self.assertUnchanged(inp, before_in)
        if out:
            self.assertUnchanged(out, before_out, 'output file')
        opts = MergeOptions(sc.origin, sc.snapshot if snapshot else None,
                            rebase=rebase, merged_only=merged_only)
        exp = mergemodel.expected_stats(fx.input_view(held), opts)
        got = parse_stats(r.out)
        for key in ('taken', 'kept', 'hidden', 'merged'):
            self.assertIsNotNone(got[key], 'dry run does not print the %s '
                                 'count:\n%s' % (key, r.out))
        self.assertEqual({k: got[k] for k in STAT_PATTERNS},
                         {k: exp[k] for k in STAT_PATTERNS},
                         'dry-run counts (got vs model):\n%s' % r.out)
        if got['kept_id'] is not None:
            self.assertEqual(got['kept_id'], exp['kept_id'],
                             'merged device id:\n%s' % r.out)
        return r

    def test_dry_run_rebase(self):
        self.dry_run('random_writes', rebase=True)

    def test_dry_run_merged_only(self):
        self.dry_run('clustered_writes', merged_only=True)

    def test_dry_run_without_output(self):
        self.dry_run('random_writes', with_output=False)

    def test_dry_run_held(self):
        self.dry_run('held_diverged', held=True)

    def test_dry_run_nothing_to_merge(self):
        self.dry_run('random_writes', snapshot=False)

    def test_dry_run_quiet_still_prints_counts(self):
        self.dry_run('origin_holes', extra=['-q'])


def _make_dry_test(scenario):
    def test(self):
        self.dry_run(scenario)
    return test


for _sc in mergepools.SCENARIOS:
    setattr(TestMergeDryRun, 'test_dry_run__%s' % _sc, _make_dry_test(_sc))


# ----------------------------------------------------------------
# Nothing to merge, quiet, warnings, sizes

class TestMergeOutput(MergeTestBase):

    def merge_to(self, scenario, args, size=None, expect_rc=0):
        fx = mergepools.get(scenario)
        d = tools.temp_dir('out-')
        out = output_file(os.path.join(d, 'out.meta'),
                          size or file_size(fx.meta))
        r = self.run_tool([MERGE, '-i', fx.meta, '-o', out] + list(args))
        self.assertExit(r, expect_rc)
        self.assertNoCrashText(r)
        return r, out

    def assertOutputIs(self, out, expected_pool, exact=True):
        ours = self.run_tool([OUR_DUMP, out])
        debian = self.run_tool([DEBIAN_DUMP, out])
        self.assertCommandOk(debian, '/usr/sbin/thin_dump of the output')
        self.assertSameBytes(ours.stdout, debian.stdout,
                             'our dump vs Debian\'s')
        self.assertModelDump(debian.stdout, expected_pool.expected_xml(),
                             'dump of the output')
        ex = executor()
        futs = [(n, ex.submit(_safe_run, a)) for n, a in (
            ('our thin_check', [OUR_CHECK, out]),
            ('thin_check 0.9.0', [DEBIAN_CHECK, out]),
            ('thin_check 1.x', tools.onex('thin_check') + [out]))]
        res = []
        for n, f in futs:
            r = f.result()
            if isinstance(r, BaseException):
                raise r
            res.append((n, r))
        self.assertChecksClean(res, out)
        # exact per-device counts only where no two devices share a leaf:
        # counts are per distinct leaf (format doc section 7)
        problems = data_sm_problems(out, expected_pool, exact)
        if problems:
            self.fail('data space map of the output:\n  ' +
                      '\n  '.join(problems))

    # -- nothing to merge
    def test_snapshot_omitted(self):
        """No --snapshot: the output is the pool unchanged."""
        _, out = self.merge_to('random_writes', ['--origin', '0'])
        self.assertOutputIs(out, mergepools.get('random_writes').pool)

    def test_snapshot_equals_origin(self):
        _, out = self.merge_to('random_writes', ['--origin', '1',
                                                 '--snapshot', '1'])
        self.assertOutputIs(out, mergepools.get('random_writes').pool)

    def test_snapshot_equals_origin_rebase(self):
        _, out = self.merge_to('unrelated_devices', [
            '--origin', '100', '--snapshot', '100', '--rebase'])
        self.assertOutputIs(out, mergepools.get('unrelated_devices').pool)

    def test_merged_only_snapshot_omitted(self):
        """--merged-only without --snapshot: the origin alone."""
        fx = mergepools.get('internal_snapshots')
        _, out = self.merge_to('internal_snapshots',
                               ['--origin', '11', '--merged-only'])
        self.assertOutputIs(out, mergemodel.expected_output(
            fx.pool, MergeOptions(11, None, merged_only=True)))

    def test_merged_only_snapshot_equals_origin(self):
        fx = mergepools.get('shared_root')
        _, out = self.merge_to('shared_root', [
            '--origin', '1', '--snapshot', '1', '--merged-only'])
        self.assertOutputIs(out, mergemodel.expected_output(
            fx.pool, MergeOptions(1, 1, merged_only=True)))

    def test_in_place_snapshot_equals_origin(self):
        fx = mergepools.get('clustered_writes')
        d = tools.temp_dir('inplace-')
        p = tools.sparse_copy(fx.meta, os.path.join(d, 'in.meta'))
        r = self.run_tool([MERGE, '-i', p, '--in-place', '--origin', '5',
                           '--snapshot', '5'])
        self.assertCommandOk(r)
        self.assertOutputIs(p, fx.pool)

    def test_held_snapshot_omitted(self):
        """-m without --snapshot: the held view, unchanged."""
        fx = mergepools.get('held_diverged')
        _, out = self.merge_to('held_diverged', ['--origin', '1', '-m', '-q'])
        self.assertOutputIs(out, fx.held_view())

    # -- other merges of the same pools
    def test_merge_into_internal_snapshot(self):
        """O2 (sharing leaves with O) as origin, S2 as snapshot."""
        fx = mergepools.get('internal_snapshots_shared')
        _, out = self.merge_to('internal_snapshots_shared', [
            '--origin', '11', '--snapshot', '21'])
        self.assertOutputIs(out, mergemodel.expected_output(
            fx.pool, MergeOptions(11, 21)), exact=fx.scenario.exact_counts)

    def test_merge_snapshot_sharing_root_of_origin(self):
        """O3 (a kernel snapshot of O sharing its root) merged into O."""
        fx = mergepools.get('internal_snapshots_shared')
        _, out = self.merge_to('internal_snapshots_shared', [
            '--origin', '10', '--snapshot', '12', '--rebase'])
        self.assertOutputIs(out, mergemodel.expected_output(
            fx.pool, MergeOptions(10, 12, rebase=True)), exact=fx.scenario.exact_counts)

    def test_merge_reversed_roles(self):
        """O and S swapped (S as origin)."""
        fx = mergepools.get('random_writes')
        _, out = self.merge_to('random_writes', ['--origin', '1',
                                                 '--snapshot', '0'])
        self.assertOutputIs(out, mergemodel.expected_output(
            fx.pool, MergeOptions(1, 0)))

    def test_two_merges_in_a_row(self):
        """Merging the output again (the unrelated device into M)."""
        fx = mergepools.get('random_writes')
        _, out = self.merge_to('random_writes', ['--origin', '0',
                                                 '--snapshot', '1'])
        first = mergemodel.expected_output(fx.pool, MergeOptions(0, 1))
        d = tools.temp_dir('twice-')
        out2 = output_file(os.path.join(d, 'out2.meta'), file_size(out))
        r = self.run_tool([MERGE, '-i', out, '-o', out2, '--origin', '2',
                           '--snapshot', '0'])
        self.assertCommandOk(r)
        self.assertOutputIs(out2, mergemodel.expected_output(
            first, MergeOptions(2, 0)))

    # -- quiet and warnings
    def test_quiet_default(self):
        r, _ = self.merge_to('clustered_writes', [
            '--origin', '5', '--snapshot', '9', '-q'])
        self.assertEqual((r.out, r.err), ('', ''), '-q must be silent')

    def test_quiet_merged_only(self):
        r, _ = self.merge_to('clustered_writes', [
            '--origin', '5', '--snapshot', '9', '--merged-only', '--quiet'])
        self.assertEqual((r.out, r.err), ('', ''), '-q must be silent')

    def test_quiet_in_place(self):
        fx = mergepools.get('origin_holes')
        d = tools.temp_dir('inplace-')
        p = tools.sparse_copy(fx.meta, os.path.join(d, 'in.meta'))
        r = self.run_tool([MERGE, '-i', p, '--in-place', '--origin', '2',
                           '--snapshot', '1', '-q'])
        self.assertCommandOk(r)
        self.assertEqual((r.out, r.err), ('', ''), '-q must be silent')

    def test_quiet_held(self):
        r, _ = self.merge_to('held_shared', [
            '--origin', '1', '--snapshot', '3', '-m', '-q'])
        self.assertEqual((r.out, r.err), ('', ''),
                         '-q must silence the -m warning too')

    def test_held_warning(self):
        """-m without -q: a warning that the snapshot may be stale."""
        r, _ = self.merge_to('held_shared', [
            '--origin', '1', '--snapshot', '3', '-m'])
        self.assertMentions(r.err, [r'warning'])
        self.assertMentions(r.err, [r'snap'])
        self.assertEqual(r.out, '')

    def test_held_dropped_device_not_found(self):
        """-m reads the held view: the live-only device is not in it."""
        fx = mergepools.get('held_diverged')
        dropped = fx.held['dropped'][0]
        d = tools.temp_dir('held-')
        out = output_file(os.path.join(d, 'out.meta'), file_size(fx.meta))
        before = tools.file_digest(out)
        r = self.run_tool([MERGE, '-i', fx.meta, '-o', out, '--origin', '1',
                           '--snapshot', str(dropped), '-m', '-q'])
        self.assertExit(r, 1)
        self.assertMentions(r.err, [r'device %d not found' % dropped])
        self.assertOutputSafe(out, before)

    def assertOutputSafe(self, out, before):
        if tools.file_digest(out) != before:
            self.assertEqual(tools.read_block(out, 0), bytes(4096),
                             'a failed merge changed the output without '
                             'zeroing its block 0')

    # -- sizes
    def _needed(self, text):
        m = re.search(r'(\d+)\s*blocks', text)
        if m:
            return int(m.group(1)) * md.BLOCK_SIZE
        m = re.search(r'(\d+)\s*KiB', text)
        if m:
            return int(m.group(1)) * 1024
        m = re.search(r'(\d+)\s*bytes', text)
        if m:
            return int(m.group(1))
        return None

    def _too_small_then_enough(self, scenario, args, held=False):
        fx = mergepools.get(scenario)
        sc = fx.scenario
        argv = ['--origin', str(sc.origin), '--snapshot', str(sc.snapshot),
                '-q'] + list(args)
        r, out = self.merge_to(scenario, argv, size=16 * md.BLOCK_SIZE,
                               expect_rc=1)
        self.assertMentions(r.err, [r'too small', r'not large enough'])
        self.assertEqual(len(r.err.strip().splitlines()), 1,
                         'one line on stderr:\n' + r.err)
        need = self._needed(r.err)
        self.assertIsNotNone(need, 'the message must say how much is '
                             'needed: %r' % r.err)
        self.assertGreater(need, 16 * md.BLOCK_SIZE, r.err)
        self.assertEqual(tools.read_block(out, 0), bytes(4096),
                         'nothing valid in a too small output')
        # what it says is enough
        r2, out2 = self.merge_to(scenario, argv, size=need)
        opts = MergeOptions(sc.origin, sc.snapshot,
                            merged_only='--merged-only' in args)
        self.assertOutputIs(out2, mergemodel.expected_output(
            fx.input_view(held), opts))

    def test_output_too_small_default(self):
        self._too_small_then_enough('random_writes', [])

    def test_output_too_small_merged_only(self):
        self._too_small_then_enough('clustered_writes', ['--merged-only'])

    def test_output_too_small_held(self):
        self._too_small_then_enough('held_diverged', ['-m'], held=True)


# ----------------------------------------------------------------
# Failures

class TestMergeFailures(MergeTestBase):
    """Each failure: exit 1, one line on stderr naming the problem, the
    input byte-identical, the output untouched or with block 0 zeroed."""

    BASE = 'random_writes'          # O = 0, S = 1, other = 2

    def setUp(self):
        super().setUp()
        self.fx = mergepools.get(self.BASE)
        self.dir = tools.temp_dir('fail-')
        self.inp = tools.sparse_copy(self.fx.meta,
                                     os.path.join(self.dir, 'in.meta'))
        # the output holds a valid pool beforehand
        self.out = output_file(os.path.join(self.dir, 'out.meta'),
                               file_size(self.fx.meta),
                               fill=mergepools.get('snapshot_empty').meta)

    def fail_with(self, args, keywords, inp=None, out='default',
                  one_line=True, check_input=True):
        """Run thin_merge -i INP [-o OUT] ARGS and check the failure."""
        inp = self.inp if inp is None else inp
        if out == 'default':
            out = self.out
        argv = [MERGE]
        if inp is not False:
            argv += ['-i', inp]
        if out:
            argv += ['-o', out]
        argv += list(args)
        in_digest = (tools.file_digest(inp) if check_input and inp
                     and os.path.isfile(inp) else None)
        out_digest = (tools.file_digest(out) if out and os.path.isfile(out)
                      and not os.path.islink(out) else None)
        r = self.run_tool(argv)
        self.assertExit(r, 1)
        self.assertNoCrashText(r)
        self.assertEqual(r.out, '', 'errors go to stderr:\n' + r.describe())
        lines = [l for l in r.err.splitlines() if l.strip()]
        self.assertTrue(lines, 'no message on stderr')
        self.assertMentions(lines[0], keywords, 'first line of stderr')
        if one_line:
            self.assertEqual(len(lines), 1, 'one line on stderr:\n' + r.err)
        if in_digest:
            self.assertUnchanged(inp, in_digest)
        if out_digest and tools.file_digest(out) != out_digest:
            self.assertEqual(tools.read_block(out, 0), bytes(4096),
                             'a failed merge changed the output without '
                             'zeroing its block 0')
        return r

    # -- devices
    def test_origin_not_found(self):
        self.fail_with(['--origin', '77', '--snapshot', '1'],
                       [r'device 77 not found'])

    def test_snapshot_not_found(self):
        self.fail_with(['--origin', '0', '--snapshot', '78'],
                       [r'device 78 not found'])

    def test_origin_not_found_without_snapshot(self):
        self.fail_with(['--origin', '79'], [r'device 79 not found'])

    def test_snapshot_not_found_merged_only(self):
        self.fail_with(['--origin', '0', '--snapshot', '78',
                        '--merged-only'], [r'device 78 not found'])

    def test_snapshot_not_found_in_place(self):
        self.fail_with(['--origin', '0', '--snapshot', '78', '--in-place'],
                       [r'device 78 not found'], out=None)

    def test_snapshot_not_found_dry_run(self):
        self.fail_with(['--origin', '0', '--snapshot', '78', '--dry-run'],
                       [r'device 78 not found'])

    # -- damaged input
    def _flip_leaf(self, dev):
        with md.Metadata(self.inp, writable=True) as img:
            root = img.device_roots()[dev]
            leaves = img.leaves(root)
            self.assertGreaterEqual(len(leaves), 2, 'need several leaves')
            n = leaves[len(leaves) // 2][0]
            data = img.read(n.location)
            data[n.key_offset(0)] ^= 1 << 3
            img.write(n.location, data)
        return n.location

    def test_damaged_snapshot_leaf(self):
        self._flip_leaf(1)
        self.fail_with(['--origin', '0', '--snapshot', '1'], DAMAGE)

    def test_damaged_snapshot_leaf_in_place(self):
        self._flip_leaf(1)
        self.fail_with(['--origin', '0', '--snapshot', '1', '--in-place'],
                       DAMAGE, out=None)

    def test_damaged_snapshot_leaf_merged_only(self):
        self._flip_leaf(1)
        self.fail_with(['--origin', '0', '--snapshot', '1',
                        '--merged-only'], DAMAGE)

    def test_damaged_origin_leaf(self):
        self._flip_leaf(0)
        self.fail_with(['--origin', '0', '--snapshot', '1'], DAMAGE)

    def test_damaged_superblock(self):
        with open(self.inp, 'r+b') as f:
            f.seek(44)
            b = f.read(1)
            f.seek(44)
            f.write(bytes([b[0] ^ 1]))
        self.fail_with(['--origin', '0', '--snapshot', '1'],
                       DAMAGE + [r'superblock'])

    def test_damaged_superblock_in_place(self):
        with open(self.inp, 'r+b') as f:
            f.seek(44)
            b = f.read(1)
            f.seek(44)
            f.write(bytes([b[0] ^ 1]))
        self.fail_with(['--origin', '0', '--snapshot', '1', '--in-place'],
                       DAMAGE + [r'superblock'], out=None)

    def test_needs_check(self):
        md.set_needs_check(self.inp)
        self.fail_with(['--origin', '0', '--snapshot', '1'],
                       [r'needs.?check'])

    def test_needs_check_in_place(self):
        md.set_needs_check(self.inp)
        self.fail_with(['--origin', '0', '--snapshot', '1', '--in-place'],
                       [r'needs.?check'], out=None)

    # -- output
    def test_output_missing(self):
        missing = os.path.join(self.dir, 'no-such-output')
        self.fail_with(['--origin', '0', '--snapshot', '1'], NOT_FOUND,
                       out=missing)
        self.assertFalse(os.path.exists(missing), 'output created')

    def test_output_directory(self):
        self.fail_with(['--origin', '0', '--snapshot', '1'],
                       [r'directory'], out=tools.temp_dir())

    def test_output_is_input(self):
        self.fail_with(['--origin', '0', '--snapshot', '1'],
                       [r'same', r'input'], out=self.inp)

    def test_output_hard_link_to_input(self):
        link = os.path.join(self.dir, 'hardlink.meta')
        os.link(self.inp, link)
        self.fail_with(['--origin', '0', '--snapshot', '1'],
                       [r'same', r'input'], out=link)

    def test_output_symlink_to_input(self):
        link = os.path.join(self.dir, 'symlink.meta')
        os.symlink(self.inp, link)
        self.fail_with(['--origin', '0', '--snapshot', '1'],
                       [r'same', r'input'], out=link)

    def test_output_missing_argument(self):
        self.fail_with(['--origin', '0', '--snapshot', '1'],
                       [r'output'], out=None, one_line=False)

    def test_output_too_small(self):
        small = output_file(os.path.join(self.dir, 'small.meta'),
                            8 * md.BLOCK_SIZE)
        r = self.fail_with(['--origin', '0', '--snapshot', '1'],
                           [r'too small', r'not large enough'], out=small)
        self.assertRegex(r.err, r'\d+\s*(blocks|KiB|bytes)',
                         'the message says how much is needed')

    # -- input
    def test_input_missing(self):
        self.fail_with(['--origin', '0', '--snapshot', '1'], NOT_FOUND,
                       inp=os.path.join(self.dir, 'no-such-input'))

    def test_input_directory(self):
        self.fail_with(['--origin', '0', '--snapshot', '1'], [r'directory'],
                       inp=tools.temp_dir())

    def test_input_too_small(self):
        p = os.path.join(self.dir, 'small')
        with open(p, 'wb') as f:
            f.write(b'\x01' * 4095)
        self.fail_with(['--origin', '0', '--snapshot', '1'],
                       [r'too small', r'not large enough'], inp=p)

    def test_input_xml(self):
        p = os.path.join(self.dir, 'pool.xml')
        with open(self.fx.xml, 'rb') as f:
            data = f.read()
        with open(p, 'wb') as f:
            f.write(data.ljust(64 << 10, b'\n'))
        self.fail_with(['--origin', '0', '--snapshot', '1'],
                       [r'xml', r'superblock', r'checksum', r'magic',
                        r'not .*metadata'], inp=p)

    def test_input_missing_argument(self):
        self.fail_with(['--origin', '0', '--snapshot', '1'], [r'input'],
                       inp=False, one_line=False)

    # -- option combinations
    def test_in_place_with_output(self):
        self.fail_with(['--origin', '0', '--snapshot', '1', '--in-place'],
                       [r'in-place'])

    def test_in_place_with_metadata_snap(self):
        self.fail_with(['--origin', '0', '--snapshot', '1', '--in-place',
                        '-m'], [r'in-place'], out=None)

    def test_metadata_snap_absent(self):
        self.fail_with(['--origin', '0', '--snapshot', '1', '-m'],
                       [r'no .*snapshot', r'no .*metadata snap'])

    def test_origin_missing_argument(self):
        self.fail_with(['--snapshot', '1'], [r'origin'], one_line=False)

    # -- bad ids and options
    def _bad_id(self, opt, value):
        args = ['--origin', '0', '--snapshot', '1']
        args[args.index(opt) + 1] = value
        self.fail_with(args, [r'invalid .*id', r'device id'])

    def test_bad_origin_not_numeric(self):
        self._bad_id('--origin', 'abc')

    def test_bad_origin_trailing_garbage(self):
        self._bad_id('--origin', '12x')

    def test_bad_origin_too_large(self):
        self._bad_id('--origin', str(1 << 24))

    def test_bad_origin_negative(self):
        self._bad_id('--origin', '-1')

    def test_bad_origin_huge(self):
        self._bad_id('--origin', '99999999999999999999999')

    def test_bad_snapshot_not_numeric(self):
        self._bad_id('--snapshot', 'one')

    def test_bad_snapshot_too_large(self):
        self._bad_id('--snapshot', str((1 << 24) + 5))

    def test_bad_snapshot_empty(self):
        self._bad_id('--snapshot', '')

    def test_largest_id_accepted(self):
        """2^24-1 is a valid id: the failure is 'not found', not a parse
        error."""
        self.fail_with(['--origin', str((1 << 24) - 1), '--snapshot', '1'],
                       [r'device %d not found' % ((1 << 24) - 1)])

    def test_unknown_option(self):
        self.fail_with(['--origin', '0', '--snapshot', '1', '--frobnicate'],
                       [r'unrecognized', r'unknown', r'invalid option',
                        r'frobnicate'], one_line=False)

    def test_bad_io_engine(self):
        if tools.build_is_debian():
            self.skipTest('--io-engine is our extension')
        self.fail_with(['--origin', '0', '--snapshot', '1', '--io-engine',
                        'warp'], [r'engine', r'warp'])


# ----------------------------------------------------------------
# The CLI matrix of test_cli.py for thin_merge and thin_restore, when the
# commands are built but not named in $THINP_COMMANDS (its default lists
# only thin_check and thin_dump).

def _cli_classes():
    import test_cli
    out = {}
    listed = tools.commands_under_test()
    for cmd in ('thin_merge', 'thin_restore'):
        if cmd in listed or cmd not in test_cli.COMMAND_SPECS:
            continue
        if not os.path.exists(tools.ours(cmd)):
            continue
        cls = test_cli._make_class(cmd)
        out[cls.__name__] = cls
    return out


def load_tests(loader, standard_tests, pattern):
    suite = unittest.TestSuite()
    for cls in (TestMergeInputs, TestMergeModes, TestMergeDryRun,
                TestMergeOutput, TestMergeFailures):
        suite.addTests(loader.loadTestsFromTestCase(cls))
    for _, cls in sorted(_cli_classes().items()):
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite


if __name__ == '__main__':
    unittest.main()
