# SPDX-License-Identifier: GPL-3.0-or-later
"""snapshot_merge, dm-merge, snapshot_check and snapshot_dump against an
independent model: lib/snapstore.py lays out dm-snapshot stores as the
kernel does and applies a store to an origin by hand, entry by entry in
table order (the last entry for a chunk wins)."""

import os
import random
import shutil
import signal
import struct
import subprocess
import time
import unittest

from lib import snapstore, tools
from lib.testing import ToolTestCase


def cmd(name):
    return tools.ours(name)


class SnapBase(ToolTestCase):
    def setUp(self):
        self.d = tools.temp_dir('snap-')

    def path(self, name):
        return os.path.join(self.d, name)

    def store(self, n=600, cs=8, origin_chunks=2048, seed=1, dups=True,
              **kw):
        rnd = random.Random(seed)
        if dups:
            olds = [rnd.randrange(origin_chunks) for _ in range(n)]
        else:
            olds = rnd.sample(range(origin_chunks), n)
        return snapstore.Store(cs, **kw).add_many(olds)

    def origin(self, size, seed=2, name='origin'):
        return snapstore.random_origin(self.path(name), size, seed)

    def assertOneLine(self, r, patterns):
        self.assertExit(r, 1)
        lines = r.err.strip().splitlines()
        self.assertEqual(len(lines), 1, 'one line on stderr:\n' + r.err)
        self.assertMentions(r.err, patterns)

    def assertFileEquals(self, path, data, what='origin'):
        with open(path, 'rb') as f:
            got = f.read()
        self.assertEqual(len(got), len(data), what + ' size')
        if got != data:
            for i in range(0, len(data), 4096):
                if got[i:i + 4096] != data[i:i + 4096]:
                    self.fail('%s differs from the model at byte %d (block %d)'
                              % (what, i, i // 4096))


# ----------------------------------------------------------------

class TestSnapshotMerge(SnapBase):
    def merge_and_compare(self, st, origin_size, args=(), name='snapshot_merge',
                          commit=('--commit',)):
        cow = st.write(self.path('cow'))
        origin = self.origin(origin_size)
        expect = snapstore.model_merge(cow, origin)
        cow_digest = tools.file_digest(cow)
        r = self.run_tool([cmd(name), '-i', cow, '-o', origin] +
                          list(commit) + list(args))
        self.assertExit(r, 0)
        self.assertFileEquals(origin, expect)
        self.assertUnchanged(cow, cow_digest, 'COW')
        return r

    def test_merge_equals_the_model(self):
        for cs in (8, 16, 128):
            for engine in ('sync', 'async'):
                with self.subTest(chunk_sectors=cs, engine=engine):
                    chunks = (8 << 20) // (cs * 512)
                    st = self.store(n=min(700, chunks), cs=cs,
                                    origin_chunks=chunks, seed=cs)
                    self.merge_and_compare(st, 8 << 20,
                                           ['--io-engine', engine])

    def test_duplicates_last_entry_wins_and_is_reported(self):
        st = snapstore.Store(8)
        st.add_many([5, 6, 7, 5, 9, 5])
        r = self.merge_and_compare(st, 1 << 20)
        self.assertMentions(r.err, [r'\b2 duplicate entries for 1 origin chunk\b',
                                    r'last entry of each wins', r'-v lists'],
                            'stderr')
        self.assertNotIn('duplicate', r.out)
        # the model agrees on which entry won: the last 5 (entry 5)
        with open(self.path('origin'), 'rb') as f:
            f.seek(5 * 4096)
            self.assertEqual(f.read(4096), st.data[st.table[5][1]])

    @staticmethod
    def model_duplicates(table):
        """{old: [new, ...]} for origin chunks listed more than once, the
        COW chunks in table order: the model of what -v lists."""
        groups = {}
        for old, new in table:
            groups.setdefault(old, []).append(new)
        return {o: n for o, n in groups.items() if len(n) > 1}

    @staticmethod
    def listed(news):
        """The COW chunks as -v prints them: all up to 8, else the first
        7, the number left out and the last."""
        if len(news) <= 8:
            return ', '.join(map(str, news))
        return '%s, ... (%d more), %d' % (', '.join(map(str, news[:7])),
                                          len(news) - 8, news[-1])

    def test_verbose_lists_each_duplicated_chunk_with_its_cow_chunks(self):
        rnd = random.Random(40)
        olds = [rnd.randrange(300) for _ in range(500)] + [17] * 11
        rnd.shuffle(olds)
        st = snapstore.Store(8).add_many(olds)
        r = self.merge_and_compare(st, 2 << 20, ['-v'])
        dups = self.model_duplicates(st.table)
        self.assertGreater(len(dups), 100)      # more than the list holds
        lines = [l for l in r.err.splitlines() if ': origin chunk ' in l]
        expect = ['origin chunk %d has %d entries, COW chunks %s in table '
                  'order: the last wins' % (o, len(n), self.listed(n))
                  for o, n in sorted(dups.items())][:100]
        self.assertEqual([l.split(': ', 2)[2] for l in lines], expect)
        extra = sum(len(n) - 1 for n in dups.values())
        self.assertMentions(r.err, [r'\.\.\. and %d more duplicated origin chunks'
                                    % (len(dups) - 100),
                                    r'\b%d duplicate entries for %d origin chunks\b'
                                    % (extra, len(dups))], 'stderr')
        self.assertNotIn('-v lists', r.err)
        # -q: silent
        r = self.run_tool([cmd('snapshot_merge'), '-i', self.path('cow'), '-o',
                           self.path('origin'), '-q'])
        self.assertEqual((r.rc, r.out, r.err), (0, '', ''))

    def test_duplicates_across_copy_windows(self):
        """The copy reads 8 MiB of chunks at a time: with 4 MiB and 16 MiB
        chunks (two per window, and one chunk over two passes) the last
        entry still wins when the duplicates are in different windows."""
        for cs, olds in ((8192, [0, 1, 2, 0, 3, 1, 0, 2]), (32768, [1, 0, 1, 2, 1])):
            with self.subTest(chunk_sectors=cs):
                st = snapstore.Store(cs).add_many(olds)
                r = self.merge_and_compare(st, (max(olds) + 1) * cs * 512, ['-v'])
                self.assertMentions(r.err, [r'origin chunk 1 has %d entries'
                                            % olds.count(1)], 'stderr')

    def test_end_marker_at_an_area_boundary(self):
        st = self.store(n=512, seed=3, dups=False)   # 2 full areas of 256
        self.merge_and_compare(st, 8 << 20)

    def test_partly_merged_store(self):
        """The kernel merged the last k entries (copied them, then zeroed
        them); merging the rest gives the full result."""
        for k in (1, 100, 256, 344, 600):
            with self.subTest(merged_by_kernel=k):
                st = self.store(n=600, seed=4, dups=False)
                cow = st.write(self.path('cow'))
                origin = self.origin(8 << 20)
                full = snapstore.model_merge(cow, origin)
                # the kernel's part: the last k entries reach the origin
                with open(origin, 'r+b') as f:
                    for old, new in st.table[-k:]:
                        f.seek(old * 4096)
                        f.write(st.data[new])
                st.clear_tail(cow, k)
                r = self.run_tool([cmd('snapshot_merge'), '-i', cow, '-o',
                                   origin, '--commit'])
                self.assertExit(r, 0)
                self.assertFileEquals(origin, full)

    def test_dry_run_is_the_default_and_writes_nothing(self):
        st = self.store()
        cow = st.write(self.path('cow'))
        origin = self.origin(8 << 20)
        digest = tools.file_digest(origin)
        for extra in ([], ['--dry-run']):
            r = self.run_tool([cmd('snapshot_merge'), '-i', cow, '-o', origin]
                              + extra)
            self.assertExit(r, 0)
            self.assertMentions(r.out, [r'--commit'], 'stdout')
            self.assertMentions(r.out, [r'nothing written'], 'stdout')
            self.assertUnchanged(origin, digest, 'origin')

    def test_commit_and_dry_run_contradict(self):
        st = self.store()
        cow = st.write(self.path('cow'))
        origin = self.origin(8 << 20)
        digest = tools.file_digest(origin)
        r = self.run_tool([cmd('snapshot_merge'), '-i', cow, '-o', origin,
                           '--commit', '--dry-run'])
        self.assertExit(r, 1)
        self.assertUnchanged(origin, digest, 'origin')

    def test_verify(self):
        st = self.store(seed=5)
        r = self.merge_and_compare(st, 8 << 20, ['--verify'])
        self.assertMentions(r.out, [r'verified'], 'stdout')

    def test_quiet(self):
        st = self.store(seed=6)
        r = self.merge_and_compare(st, 8 << 20, ['-q'])
        self.assertEqual((r.out, r.err), ('', ''))

    def test_dd_lines_are_a_script_doing_the_same(self):
        st = self.store(seed=7)
        cow = st.write(self.path('cow'))
        origin = self.origin(8 << 20)
        expect = snapstore.model_merge(cow, origin)
        r = self.run_tool([cmd('snapshot_merge'), '-i', cow, '-o', origin,
                           '--dd'])
        self.assertExit(r, 0)
        lines = r.out.splitlines()
        self.assertTrue(all(l.startswith('dd ') or l.startswith('# ')
                            for l in lines), r.out[:500])
        # coalesced, in origin order
        dd = [l for l in lines if l.startswith('dd ')]
        seeks = [int(l.split('seek=')[1].split()[0]) for l in dd]
        self.assertEqual(seeks, sorted(seeks))
        sh = tools.run(['sh', '-e', '-c', r.out], timeout=120)
        self.assertExit(sh, 0)
        self.assertFileEquals(origin, expect)

    def test_coalesced_extents(self):
        st = snapstore.Store(8)
        st.add_many(list(range(100, 164)) + [10, 11, 12])
        r = self.merge_and_compare(st, 1 << 20, ['--dd'])
        dd = [l for l in r.out.splitlines() if l.startswith('dd ')]
        self.assertEqual(len(dd), 2, r.out)
        self.assertIn('count=3', dd[0])
        self.assertIn('count=64', dd[1])

    def test_an_interrupted_merge_finishes_when_run_again(self):
        """Killed at many points, then run again: the origin ends as the
        model says."""
        st = self.store(n=3000, cs=32, origin_chunks=4096, seed=8)
        cow = st.write(self.path('cow'))
        pristine = self.origin(64 << 20, name='pristine')
        expect = snapstore.model_merge(cow, pristine)
        killed = 0
        for i, delay in enumerate([0, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08,
                                   0.15, 0.3]):
            origin = self.path('origin')
            shutil.copyfile(pristine, origin)
            p = subprocess.Popen([cmd('snapshot_merge'), '-i', cow, '-o',
                                  origin, '--commit', '-q',
                                  '--io-engine', 'sync' if i % 2 else 'async'],
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            time.sleep(delay)
            p.send_signal(signal.SIGKILL)
            if p.wait() == -signal.SIGKILL:
                killed += 1
            r = self.run_tool([cmd('snapshot_merge'), '-i', cow, '-o', origin,
                               '--commit', '--verify'])
            self.assertExit(r, 0)
            self.assertFileEquals(origin, expect)
        self.assertGreater(killed, 0, 'no run was interrupted')

    # -- dm-merge

    def test_dm_merge_options(self):
        st = self.store(seed=9)
        cow = st.write(self.path('cow'))
        origin = self.origin(8 << 20)
        expect = snapstore.model_merge(cow, origin)
        digest = tools.file_digest(origin)
        # without -f: a dry run, whatever else is given
        for opts in ([], ['-v'], ['-v', '-v'], ['-x'], ['-D'], ['-d']):
            r = self.run_tool([cmd('dm-merge')] + opts + ['-i', cow, '-o',
                                                          origin])
            self.assertExit(r, 0, opts)
            self.assertMentions(r.out, [r'-f'], 'stdout')
            self.assertUnchanged(origin, digest, 'origin')
        r = self.run_tool([cmd('dm-merge'), '-d', '-i', cow, '-o', origin])
        self.assertTrue(any(l.startswith('dd if=') for l in r.out.splitlines()))
        # without -o: the table only
        r = self.run_tool([cmd('dm-merge'), '-d', '-i', cow])
        self.assertExit(r, 0)
        self.assertIn('of=ORIGIN', r.out)
        r = self.run_tool([cmd('dm-merge'), '-f', '-i', cow])
        self.assertExit(r, 1)
        # dm-merge's options only
        r = self.run_tool([cmd('dm-merge'), '--commit', '-i', cow, '-o',
                           origin])
        self.assertExit(r, 1)
        self.assertUnchanged(origin, digest, 'origin')
        r = self.run_tool([cmd('dm-merge'), '-f', '-x', '-D', '-v', '-i', cow,
                           '-o', origin])
        self.assertExit(r, 0)
        self.assertFileEquals(origin, expect)

    # -- refusals: one line, exit 1, nothing written

    def refused(self, st, patterns, origin_size=8 << 20, args=(), cow=None,
                name='snapshot_merge', write=True):
        cow = cow or st.write(self.path('cow'))
        origin = self.origin(origin_size)
        digest = tools.file_digest(origin)
        r = self.run_tool([cmd(name), '-i', cow, '-o', origin] +
                          (['--commit'] if name == 'snapshot_merge' else ['-f'])
                          + list(args))
        self.assertOneLine(r, patterns)
        self.assertUnchanged(origin, digest, 'origin')
        return r

    def test_refuses_an_invalid_store_unless_forced(self):
        st = self.store(seed=10, valid=0)
        self.refused(st, [r'invalid.*--force-invalid'])
        r = self.merge_and_compare(st, 8 << 20, ['--force-invalid'])
        self.assertMentions(r.err, [r'warning.*missing'])

    def test_refuses_a_never_used_store(self):
        self.refused(self.store(magic=0), [r'magic 0'])

    def test_refuses_a_transient_store(self):
        # a transient store keeps data from chunk 0: no header
        cow = self.path('cow')
        snapstore.random_origin(cow, 1 << 20, seed=3)
        self.refused(None, [r'not a persistent snapshot store'], cow=cow)

    def test_refuses_bad_headers(self):
        self.refused(self.store(magic=0x12345678), [r'bad magic'])
        self.refused(self.store(version=2), [r'version 2'])
        for cs in (0, 4, 12, 1 << 22):
            with self.subTest(chunk=cs):
                self.refused(self.store(header_chunk_sectors=cs),
                             [r'bad chunk size'])

    def test_refuses_a_too_small_cow(self):
        cow = self.path('cow')
        with open(cow, 'wb') as f:
            f.write(struct.pack('<IIII', snapstore.MAGIC, 1, 1, 8))
            f.truncate(4096)
        self.refused(None, [r'too small'], cow=cow)

    def test_refuses_an_origin_smaller_than_the_highest_chunk(self):
        st = snapstore.Store(8).add_many([1, 2, 300])
        r = self.refused(st, [r'origin too small'], origin_size=300 * 4096)
        self.assertIn('300', r.err)
        # 301 chunks are enough
        self.merge_and_compare(st, 301 * 4096)

    def test_a_last_chunk_past_the_origin_end_is_clipped(self):
        # 8 KiB chunks, a 12 KiB origin: chunk 1 is half inside
        st = snapstore.Store(16).add_many([1, 0])
        self.merge_and_compare(st, 12 * 1024)

    def test_refuses_a_partial_last_block_it_cannot_write(self):
        st = snapstore.Store(8).add_many([1, 256])
        self.refused(st, [r'not a multiple of 4 KiB'],
                     origin_size=(1 << 20) + 512)
        # a chunk before the partial block is fine
        st = snapstore.Store(8).add_many([1, 255])
        self.merge_and_compare(st, (1 << 20) + 512)

    def test_refuses_cow_equal_to_origin(self):
        st = self.store(seed=11)
        cow = st.write(self.path('cow'))
        link = self.path('hardlink')
        os.link(cow, link)
        sym = self.path('symlink')
        os.symlink(cow, sym)
        digest = tools.file_digest(cow)
        for other in (cow, link, sym):
            with self.subTest(origin=other):
                r = self.run_tool([cmd('snapshot_merge'), '-i', cow, '-o',
                                   other, '--commit'])
                self.assertOneLine(r, [r'same storage'])
                self.assertUnchanged(cow, digest, 'COW')

    def test_refuses_cow_equal_to_origin_through_a_loop_device(self):
        if os.geteuid() != 0 or not shutil.which('losetup'):
            self.skipTest('needs root and losetup')
        st = self.store(seed=12)
        cow = st.write(self.path('cow'))
        p = tools.run(['losetup', '--find', '--show', cow])
        if p.rc:
            self.skipTest('no loop device: ' + p.err.strip())
        dev = p.out.strip()
        try:
            digest = tools.file_digest(cow)
            r = self.run_tool([cmd('snapshot_merge'), '-i', cow, '-o', dev,
                               '--commit'])
            self.assertOneLine(r, [r'same storage'])
            self.assertUnchanged(cow, digest, 'COW')
        finally:
            tools.run(['losetup', '-d', dev])

    def test_refuses_a_busy_block_device(self):
        if os.geteuid() != 0 or not shutil.which('losetup'):
            self.skipTest('needs root and losetup')
        st = self.store(seed=13)
        cow = st.write(self.path('cow'))
        origin = self.origin(8 << 20)
        p = tools.run(['losetup', '--find', '--show', origin])
        if p.rc:
            self.skipTest('no loop device: ' + p.err.strip())
        dev = p.out.strip()
        try:
            fd = os.open(dev, os.O_RDONLY | os.O_EXCL)    # another holder
            try:
                r = self.run_tool([cmd('snapshot_merge'), '-i', cow, '-o', dev,
                                   '--commit'])
                self.assertOneLine(r, [r'in use.*--no-exclusive'])
                r = self.run_tool([cmd('dm-merge'), '-f', '-i', cow, '-o',
                                   dev])
                self.assertOneLine(r, [r'in use.*-x'])
            finally:
                os.close(fd)
        finally:
            tools.run(['losetup', '-d', dev])

    def test_refuses_a_damaged_table_before_writing(self):
        st = self.store(n=20, seed=14, dups=False)
        table = list(st.table)
        table[7] = (table[7][0], table[3][1])       # two entries, one COW chunk
        cow = st.write(self.path('cow'), table=table)
        origin = self.origin(8 << 20)
        digest = tools.file_digest(origin)
        r = self.run_tool([cmd('snapshot_merge'), '-i', cow, '-o', origin,
                           '--commit'])
        self.assertExit(r, 1)
        self.assertMentions(r.err, [r'entry 7: COW chunk \d+ is already used'])
        self.assertMentions(r.err, [r'nothing written'])
        self.assertUnchanged(origin, digest, 'origin')


# ----------------------------------------------------------------

class TestSnapshotCheck(SnapBase):
    def check(self, cow, *args):
        return self.run_tool([cmd('snapshot_check'), cow] + list(args))

    def test_clean_store(self):
        st = self.store(n=700, seed=20)
        cow = st.write(self.path('cow'))
        r = self.check(cow)
        self.assertExit(r, 0)
        self.assertEqual(r.err, '')
        distinct = len({o for o, _ in st.table})
        self.assertIn('700 exceptions in 3 metadata areas', r.out)
        self.assertIn('%d origin chunks changed' % distinct, r.out)
        self.assertIn('%d duplicate' % (700 - distinct), r.out)
        r = self.check(cow, '-q')
        self.assertEqual((r.rc, r.out, r.err), (0, '', ''))

    def problems(self, cow, *args):
        r = self.check(cow, *args)
        self.assertExit(r, 1)
        return r.err.strip().splitlines()

    def test_each_damage_is_one_line(self):
        st = self.store(n=20, seed=21, dups=False)
        size_chunks = st.nr_chunks()
        t = list(st.table)
        t[2] = (t[2][0], size_chunks + 5)          # past the COW's end
        t[4] = (t[4][0], 1)                        # area 0 itself
        t[6] = (t[6][0], t[5][1])                  # shared
        cow = st.write(self.path('cow'), table=t)
        lines = self.problems(cow)
        self.assertEqual(len(lines), 3, lines)
        self.assertMentions(lines[0], [r'entry 2: .*past the COW'])
        self.assertMentions(lines[1], [r'entry 4: .*metadata area'])
        self.assertMentions(lines[2], [r'entry 6: .*already used'])

    def test_origin_size(self):
        st = snapstore.Store(8).add_many([1, 50, 99])
        cow = st.write(self.path('cow'))
        self.assertExit(self.check(cow, '--origin-size', str(100 * 4096)), 0)
        lines = self.problems(cow, '--origin-size', str(99 * 4096))
        self.assertEqual(len(lines), 1, lines)
        self.assertMentions(lines[0], [r'entry 2: origin chunk 99 .*origin'])
        r = self.check(cow, '--origin-size', 'lots')
        self.assertExit(r, 1)

    def test_many_damaged_entries_are_summed_up(self):
        st = self.store(n=40, seed=22, dups=False)
        t = [(o, 1) for o, _ in st.table]          # all point at area 0
        cow = st.write(self.path('cow'), table=t)
        lines = self.problems(cow)
        self.assertEqual(len(lines), 11, lines)
        self.assertMentions(lines[-1], [r'30 more'])

    def test_table_without_end(self):
        st = self.store(n=256, seed=23, dups=False)
        cow = st.write(self.path('cow'))
        with open(cow, 'r+b') as f:                 # drop the zeroed area 1
            f.truncate(258 * 4096)
        lines = self.problems(cow)
        self.assertEqual(len(lines), 1, lines)
        self.assertMentions(lines[0], [r'no end'])

    def test_invalid_store(self):
        st = self.store(seed=24, valid=0)
        lines = self.problems(st.write(self.path('cow')))
        self.assertEqual(len(lines), 1, lines)
        self.assertMentions(lines[0], [r'invalid'])

    def test_entries_after_the_end_are_a_warning(self):
        st = self.store(n=20, seed=25)
        cow = st.write(self.path('cow'), garbage_after=True)
        r = self.check(cow)
        self.assertExit(r, 0)
        self.assertMentions(r.err, [r'warning.*follow the table'])

    def test_partly_merged_store_is_clean(self):
        st = self.store(n=600, seed=26)
        cow = st.write(self.path('cow'))
        st.clear_tail(cow, 344)
        r = self.check(cow)
        self.assertExit(r, 0)
        self.assertIn('256 exceptions in 2 metadata areas', r.out)

    def test_bad_headers(self):
        for kw, pat in (({'magic': 0}, r'magic 0'),
                        ({'magic': 1}, r'bad magic'),
                        ({'version': 3}, r'version 3'),
                        ({'header_chunk_sectors': 7}, r'bad chunk size')):
            with self.subTest(**kw):
                cow = self.store(**kw).write(self.path('cow'))
                r = self.check(cow)
                self.assertOneLine(r, [pat])


# ----------------------------------------------------------------

class TestSnapshotDump(SnapBase):
    def test_table_order_with_runs_coalesced(self):
        st = snapstore.Store(8)
        st.add_many(list(range(10, 20)) + [3, 3, 500] + list(range(40, 300)))
        cow = st.write(self.path('cow'))
        r = self.run_tool([cmd('snapshot_dump'), cow])
        self.assertExit(r, 0)
        got = [tuple(map(int, l.split())) for l in r.out.splitlines()
               if not l.startswith('#')]
        _, table = snapstore.read_table(cow)
        self.assertEqual(got, snapstore.coalesced(table))
        # a run is cut where the area's chunk is skipped
        self.assertGreater(len(got), 4)

    def test_dd_lines_in_table_order_apply_the_store(self):
        st = self.store(n=300, seed=30)             # with duplicates
        cow = st.write(self.path('cow'))
        origin = self.origin(8 << 20)
        expect = snapstore.model_merge(cow, origin)
        r = self.run_tool([cmd('snapshot_dump'), '--dd', '--origin', origin,
                           cow])
        self.assertExit(r, 0)
        sh = tools.run(['sh', '-e', '-c', r.out], timeout=120)
        self.assertExit(sh, 0)
        self.assertFileEquals(origin, expect)

    def test_paths_are_quoted_for_the_shell(self):
        st = snapstore.Store(8).add_many([1])
        cow = st.write(self.path("it's a cow"))
        r = self.run_tool([cmd('snapshot_dump'), '--dd', '--origin',
                           self.path('an origin'), cow])
        self.assertExit(r, 0)
        dd = [l for l in r.out.splitlines() if l.startswith('dd')][0]
        self.assertIn("if='", dd)
        origin = self.origin(1 << 20, name='an origin')
        expect = snapstore.model_merge(cow, origin)
        sh = tools.run(['sh', '-e', '-c', dd])
        self.assertExit(sh, 0)
        self.assertFileEquals(origin, expect)


if __name__ == '__main__':
    unittest.main()
