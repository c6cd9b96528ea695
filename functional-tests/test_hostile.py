# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile metadata (issue 10): regression tests from minimized inputs.

Each class holds the smallest input we found for one fault class of the
hardening campaign: a size field that wraps or claims far more blocks
than the metadata device can describe, a repair that finds no device, a
held superblock with feature flags.  Every command must give one clear
line and exit 1 (or succeed with output our own checker accepts); never
crash, hang or allocate memory in proportion to a size read from disk.

Memory is bounded with RLIMIT_AS (256 MiB): a command that sized an
allocation from the hostile field would fail with "out of memory" (or be
killed) rather than name the damaged field.
"""

import os
import resource
import shutil
import unittest

from lib import heldroot, tools
from lib import metadata as md
from lib.testing import ToolTestCase

RESTORE = tools.ours('thin_restore')
CHECK = tools.ours('thin_check')
DUMP = tools.ours('thin_dump')
LS = tools.ours('thin_ls')
MERGE = tools.ours('thin_merge')
REPAIR = tools.ours('thin_repair')

MD_SIZE = 8 << 20
MEM_LIMIT = 256 << 20
TIMEOUT = tools.scaled(20)

SMALL_POOL = '''<superblock uuid="" time="1" transaction="1" flags="0" version="2" data_block_size="128" nr_data_blocks="%s">
  <device dev_id="1" mapped_blocks="3" transaction="0" creation_time="0" snap_time="0">
    <range_mapping origin_begin="0" data_begin="5" length="3" time="0"/>
  </device>
  <device dev_id="2" mapped_blocks="3" transaction="0" creation_time="0" snap_time="1">
    <range_mapping origin_begin="0" data_begin="5" length="2" time="0"/>
    <single_mapping origin_block="2" data_block="9" time="1"/>
  </device>
</superblock>
'''

NO_MAPPINGS = '''<superblock uuid="" time="0" transaction="1" flags="0" version="2" data_block_size="128" nr_data_blocks="%s">
  <device dev_id="1" mapped_blocks="0" transaction="0" creation_time="0" snap_time="0">
  </device>
</superblock>
'''

U64_MAX = (1 << 64) - 1
HUGE_SIZES = [1 << 32, 1 << 40, U64_MAX]


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEM_LIMIT, MEM_LIMIT))


def sanitized():
    """ASan reserves terabytes of address space: no RLIMIT_AS under it."""
    try:
        with open(tools.ours('pdata_tools'), 'rb') as f:
            return b'__asan_init' in f.read()
    except OSError:
        return False


class HostileCase(ToolTestCase):
    def setUp(self):
        self.dir = tools.temp_dir('hostile-')
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.preexec = None if sanitized() else limit_memory

    def path(self, name):
        return os.path.join(self.dir, name)

    def blank(self, name, size=MD_SIZE):
        p = self.path(name)
        with open(p, 'wb') as f:
            f.truncate(size)
        return p

    def run_bounded(self, argv):
        return self.run_tool(argv, timeout=TIMEOUT, preexec_fn=self.preexec)

    def restore(self, xml_text, name='pool'):
        x = self.path(name + '.xml')
        with open(x, 'w') as f:
            f.write(xml_text)
        out = self.blank(name)
        r = self.run_tool([RESTORE, '-i', x, '-o', out])
        self.assertExit(r, 0)
        return out

    def assertOneLineRefusal(self, r, patterns):
        self.assertExit(r, 1)
        lines = [l for l in r.err.splitlines() if l.strip()]
        self.assertTrue(lines, 'no message:\n' + r.describe())
        self.assertMentions(r.err, patterns)
        self.assertNotIn('out of memory', r.err)


class TestRestoreHugeDataSize(HostileCase):
    """nr_data_blocks of 2^64-1 wrapped the bitmap count to 0."""

    def check_refused(self, template):
        for n in HUGE_SIZES:
            x = self.path('h.xml')
            with open(x, 'w') as f:
                f.write(template % n)
            out = self.blank('out')
            r = self.run_bounded([RESTORE, '-i', x, '-o', out])
            self.assertOneLineRefusal(r, [r'data blocks', r'space map',
                                               r'too small'])
            self.assertEqual(len(r.err.strip().splitlines()), 1, r.describe())

    def test_with_mappings(self):
        self.check_refused(SMALL_POOL)

    def test_without_mappings(self):
        self.check_refused(NO_MAPPINGS)

    def test_largest_size_the_device_describes_restores(self):
        # 2048 blocks of metadata: at most 2048 bitmaps; a few less fit
        n = 1900 * 16320
        out = self.restore(NO_MAPPINGS % n)
        r = self.run_tool([CHECK, out])
        self.assertExit(r, 0)


class TestHugeDataSpaceMap(HostileCase):
    """A superblock whose data space map claims 2^32, 2^40, 2^64-1 blocks."""

    def hostile(self, n):
        p = self.restore(SMALL_POOL % 1000, 'pool-%x' % n)
        with md.Metadata(p, writable=True) as img:
            sb = img.superblock()
            sb.data_sm.nr_blocks = n
            img.write_superblock(sb)
        return p

    def test_every_command_refuses_at_once(self):
        for n in HUGE_SIZES:
            p = self.hostile(n)
            out = self.blank('out')
            for argv in ([CHECK, p], [CHECK, '--super-block-only', p],
                         [DUMP, p], [LS, p],
                         [MERGE, '-i', p, '-o', out, '--origin', '1',
                          '--snapshot', '2'],
                         [MERGE, '-i', p, '-o', out, '--origin', '1',
                          '--snapshot', '2', '--merged-only'],
                         [MERGE, '-i', p, '--in-place', '--origin', '1',
                          '--snapshot', '2']):
                with self.subTest(size=n, argv=argv[0]):
                    digest = tools.file_digest(p)
                    r = self.run_bounded(argv)
                    self.assertOneLineRefusal(r, [r'data space map'])
                    self.assertUnchanged(p, digest)

    def test_repair_is_bounded(self):
        for n in HUGE_SIZES:
            p = self.hostile(n)
            out = self.blank('out')
            r = self.run_bounded([REPAIR, '-i', p, '-o', out])
            self.assertExit(r, 1)
            self.assertNotIn('out of memory', r.err)


class TestRepairFindsNoDevice(HostileCase):
    """No device id survives: the id list is empty (qsort of NULL)."""

    def test_no_device_survives(self):
        p = self.restore(SMALL_POOL % 1000)
        with md.Metadata(p, writable=True) as img:
            sb = img.superblock()
            for b in (sb.device_details_root, sb.data_mapping_root):
                img.write(b, bytes(md.BLOCK_SIZE))
        out = self.blank('out')
        r = self.run_bounded([REPAIR, '-i', p, '-o', out])
        # nothing to salvage is a refusal or an empty pool; never a crash
        self.assertIn(r.rc, (0, 1), r.describe())
        if r.rc == 0:
            self.assertExit(self.run_tool([CHECK, out]), 0)


class TestMergeHeldFeatureFlags(HostileCase):
    """-m wrote the held superblock's feature flags into its output."""

    def test_output_passes_our_check(self):
        p = self.restore(SMALL_POOL % 1000)
        info = heldroot.build_held_root(p)
        with md.Metadata(p, writable=True) as img:
            held = img.superblock(info['block'])
            held.compat_ro_flags = 1
            held.incompat_flags = 1
            img.write(info['block'], held.pack())
        out = self.blank('out')
        argv = [MERGE, '-m', '-i', p, '-o', out, '--origin', '1',
                '--snapshot', '2', '-q']
        # our thin_check -m refuses the held superblock's flags ...
        r = self.run_tool(argv)
        self.assertExit(r, 1)
        self.assertMentions(r.err, [r'feature flags'])
        # ... and --force merges: the output has none, and passes
        r = self.run_tool(argv + ['--force'])
        self.assertExit(r, 0)
        self.assertExit(self.run_tool([CHECK, out]), 0)
        with md.Metadata(out) as img:
            sb = img.superblock()
            self.assertEqual((sb.compat_ro_flags, sb.incompat_flags), (0, 0))


IN_PLACE_POOL = '''<superblock uuid="" time="1" transaction="1" flags="0" version="2" data_block_size="128" nr_data_blocks="100000">
  <device dev_id="1" mapped_blocks="2000" transaction="0" creation_time="0" snap_time="0">
    <range_mapping origin_begin="0" data_begin="0" length="1000" time="0"/>
    <range_mapping origin_begin="2000" data_begin="1000" length="1000" time="0"/>
  </device>
  <device dev_id="2" mapped_blocks="3" transaction="0" creation_time="0" snap_time="1">
    <single_mapping origin_block="1" data_block="5000" time="1"/>
    <single_mapping origin_block="1500" data_block="5001" time="1"/>
    <single_mapping origin_block="2500" data_block="5002" time="1"/>
  </device>
  <device dev_id="3" mapped_blocks="2" transaction="0" creation_time="0" snap_time="1">
    <range_mapping origin_begin="0" data_begin="6000" length="2" time="0"/>
  </device>
</superblock>
'''

IN_PLACE = ['--in-place', '--origin', '1', '--snapshot', '2']


class TestMergeRefusesDamagedInput(HostileCase):
    """Damage outside O and S went on into the output (exit 0)."""

    def damaged(self):
        p = self.restore(IN_PLACE_POOL)
        with md.Metadata(p, writable=True) as img:
            n = img.node(img.device_roots()[3])
            n.keys[0], n.keys[1] = n.keys[1], n.keys[0]
            img.write_node(n)
        return p

    def test_full_output_modes_refuse(self):
        p = self.damaged()
        for extra in ([], ['--merged-only'], ['--rebase']):
            with self.subTest(extra=extra):
                out = self.blank('out')
                digest = tools.file_digest(p)
                r = self.run_tool([MERGE, '-i', p, '-o', out, '--origin', '1',
                                   '--snapshot', '2'] + extra)
                self.assertExit(r, 1)
                self.assertEqual(len(r.err.strip().splitlines()), 1,
                                 r.describe())
                self.assertMentions(r.err, [r'fails thin_check'])
                self.assertMentions(r.err, [r'mapping tree'])
                self.assertUnchanged(p, digest)
                self.assertEqual(tools.read_block(out, 0), bytes(4096))

    def test_force_merges_and_names_the_damage(self):
        p = self.damaged()
        out = self.blank('out')
        r = self.run_tool([MERGE, '-i', p, '-o', out, '--origin', '1',
                           '--snapshot', '2', '--force'])
        # the damage is carried over: the output fails the check, exit 1
        self.assertExit(r, 1)
        self.assertMentions(r.err, [r'warning.*--force.*mapping tree'])
        self.assertMentions(r.err, [r'output .*fails thin_check'])
        self.assertExit(self.run_tool([CHECK, out]), 1)
        # M alone carries no damage: exit 0 and a clean output
        out2 = self.blank('out2')
        r = self.run_tool([MERGE, '-i', p, '-o', out2, '--origin', '1',
                           '--snapshot', '2', '--force', '--merged-only'])
        self.assertExit(r, 0)
        self.assertMentions(r.err, [r'warning'])
        self.assertExit(self.run_tool([CHECK, out2]), 0)

    def test_force_is_not_for_in_place(self):
        p = self.restore(IN_PLACE_POOL)
        r = self.run_tool([MERGE, '-i', p, '--force'] + IN_PLACE)
        self.assertExit(r, 1)


class TestInPlaceChecksWhatItChanges(HostileCase):
    """--in-place merged an O tree with a lowered inner key (exit 0)."""

    def edit_origin_root(self, p, index, key):
        with md.Metadata(p, writable=True) as img:
            n = img.node(img.device_roots()[1])
            self.assertFalse(n.is_leaf)
            n.keys[index] = key
            img.write_node(n)

    def assertRefused(self, p, patterns):
        digest = tools.file_digest(p)
        r = self.run_tool([MERGE, '-i', p] + IN_PLACE)
        self.assertExit(r, 1)
        self.assertMentions(r.err, patterns)
        self.assertUnchanged(p, digest)

    def test_good_pool_merges(self):
        p = self.restore(IN_PLACE_POOL)
        r = self.run_tool([MERGE, '-i', p] + IN_PLACE)
        self.assertExit(r, 0)
        self.assertExit(self.run_tool([CHECK, p]), 0)
        self.assertExit(self.run_tool([tools.DEBIAN['thin_check'], p]), 0)

    def test_lowered_inner_key(self):
        # the leaf before S's key 1500 holds keys up to 2007: they stray
        # into the range [1400, ...) the lowered key gives the next leaf
        p = self.restore(IN_PLACE_POOL)
        self.edit_origin_root(p, 4, 1400)
        self.assertRefused(p, [r'outside the range'])

    def test_raised_inner_key(self):
        # the leaf after S's key 1 starts below the raised key
        p = self.restore(IN_PLACE_POOL)
        self.edit_origin_root(p, 1, 300)
        self.assertRefused(p, [r'outside the range'])

    def test_snapshot_block_counted_free(self):
        p = self.restore(IN_PLACE_POOL)
        with md.Metadata(p, writable=True) as img:
            img.set_sm_count('data', 5001, 0)
        self.assertRefused(p, [r'counts (it )?free'])

    def test_hidden_origin_block_counted_free(self):
        p = self.restore(IN_PLACE_POOL)
        with md.Metadata(p, writable=True) as img:
            img.set_sm_count('data', 1, 0)
        self.assertRefused(p, [r'counts (it )?free'])

    def test_origin_leaf_counted_free(self):
        p = self.restore(IN_PLACE_POOL)
        with md.Metadata(p, writable=True) as img:
            leaf = img.leaves(img.device_roots()[1])[0][0].location
            img.set_sm_count('md', leaf, 0)
        self.assertRefused(p, [r'counts (it )?free'])

    def test_snapshot_mapped_blocks_wrong(self):
        p = self.restore(IN_PLACE_POOL)
        with md.Metadata(p, writable=True) as img:
            sb = img.superblock()
            det = img.node(sb.device_details_root)
            i = det.keys.index(2)
            v = bytearray(det.values[i])
            v[0] = 7
            det.values[i] = bytes(v)
            img.write_node(det)
        self.assertRefused(p, [r'details say'])


if __name__ == '__main__':
    unittest.main()
