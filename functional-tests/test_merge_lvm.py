# SPDX-License-Identifier: GPL-3.0-or-later
"""thin_merge_lvm (lvm/thin_merge_lvm): its command line, without LVM.

What needs LVM (the refusals on real volume groups: active LVs, a SNAP
without external origin, a COPY in another pool or of the wrong size, an
unknown VG, no space for the temporary LV; the merge itself, a failure and
a kill at each step) runs in the kernel tests (functional-tests/kernel,
scenarios lvm_merge*), with Debian's lvm2 in the guest.  Here a stub
stands for the lvm command where one is needed: it records how it was
called and knows no volume group.
"""

import os
import stat
import subprocess
import tempfile
import unittest

from lib import tools

SCRIPT = os.path.join(tools.SRC_DIR, 'lvm', 'thin_merge_lvm')


class TestMergeLvmCli(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='thin_merge_lvm.')
        self.addCleanup(lambda: subprocess.call(['rm', '-rf', self.dir]))
        self.lvm_log = os.path.join(self.dir, 'lvm.log')
        stub = os.path.join(self.dir, 'lvm')
        with open(stub, 'w') as f:
            f.write('#!/bin/sh\n'
                    '# records its arguments; knows no VG\n'
                    'echo "$*" >>%s\n'
                    'echo "  Volume group \\"$2\\" not found" >&2\n'
                    'exit 5\n' % self.lvm_log)
        os.chmod(stub, stat.S_IRWXU)
        self.env = dict(os.environ, LVM_BINARY=stub, THIN_MERGE_LVM_TOOLS=tools.BUILD_DIR,
                        THIN_MERGE_LVM_STATE_DIR=os.path.join(self.dir, 'state'),
                        TMPDIR=self.dir)

    def run_script(self, *args):
        return subprocess.run(['sh', SCRIPT] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True,
                              env=self.env, stdin=subprocess.DEVNULL,
                              timeout=tools.scaled(30))

    def lvm_calls(self):
        try:
            with open(self.lvm_log) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def assert_refused(self, r, text):
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        self.assertIn(text, r.stderr)
        self.assertTrue(r.stderr.startswith('thin_merge_lvm: '), r.stderr)

    def test_help(self):
        for opt in ('-h', '--help'):
            r = self.run_script(opt)
            self.assertEqual(r.returncode, 0)
            self.assertIn('Usage: thin_merge_lvm VG/SNAP VG/COPY', r.stdout)
            self.assertIn('--yes', r.stdout)
            self.assertEqual(r.stderr, '')
        self.assertEqual(self.lvm_calls(), [])

    def test_version_is_thin_merges(self):
        want = subprocess.run([tools.ours('thin_merge'), '-V'], stdout=subprocess.PIPE,
                              universal_newlines=True).stdout
        for opt in ('-V', '--version'):
            r = self.run_script(opt)
            self.assertEqual(r.returncode, 0)
            self.assertEqual(r.stdout, want)

    def test_unknown_option(self):
        r = self.run_script('vg/a', 'vg/b', '--frobnicate')
        self.assertEqual(r.returncode, 1)
        self.assertIn('unknown option --frobnicate', r.stderr)
        self.assertIn('Usage:', r.stderr)
        self.assertEqual(r.stdout, '')
        self.assertEqual(self.lvm_calls(), [])

    def test_argument_count(self):
        for args in ([], ['vg/a'], ['vg/a', 'vg/b', 'vg/c']):
            r = self.run_script(*args)
            self.assertEqual(r.returncode, 1, args)
            self.assertIn('two LVs are needed', r.stderr)
        self.assertEqual(self.lvm_calls(), [])

    def test_not_vg_lv(self):
        self.assert_refused(self.run_script('snap', 'vg/copy'), 'snap: not VG/LV')
        self.assert_refused(self.run_script('vg/snap', 'copy'), 'copy: not VG/LV')
        self.assert_refused(self.run_script('vg/', 'vg/copy'), 'empty VG or LV name')
        self.assertEqual(self.lvm_calls(), [])

    def test_different_vgs(self):
        self.assert_refused(self.run_script('vg1/snap', 'vg2/copy', '--yes'),
                            'in different volume groups')
        self.assertEqual(self.lvm_calls(), [])

    def test_same_lv(self):
        self.assert_refused(self.run_script('vg/snap', 'vg/snap'), 'the same LV')

    def test_unknown_vg(self):
        r = self.run_script('novg/snap', 'novg/copy', '--yes')
        self.assert_refused(r, 'volume group novg not found')
        # one question to LVM, and nothing written
        self.assertEqual(self.lvm_calls(), ['vgs novg'])
        self.assertFalse(os.path.exists(os.path.join(self.dir, 'state')))

    def test_empty_arguments_ignored(self):
        r = self.run_script('', 'novg/snap', '', 'novg/copy', '')
        self.assert_refused(r, 'volume group novg not found')
        self.assertEqual(self.lvm_calls(), ['vgs novg'])

    def test_posix_sh(self):
        # no bashisms: it runs under whatever /bin/sh is
        if not os.access('/usr/bin/checkbashisms', os.X_OK):
            self.skipTest('no checkbashisms')
        r = subprocess.run(['/usr/bin/checkbashisms', SCRIPT], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True)
        self.assertEqual(r.returncode, 0, r.stdout)


if __name__ == '__main__':
    unittest.main()
