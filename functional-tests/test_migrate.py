# SPDX-License-Identifier: GPL-3.0-or-later
"""thin_migrate outside a kernel: the command line and the refusals that
need no device-mapper.  The copy itself is tested in the kernel harness
(functional-tests/kernel, scenario "migrate"); thin_migrate is not in the
CLI matrix because every valid call needs an active pool."""

import os
import re
import unittest

from lib import pools, tools
from lib.testing import ToolTestCase

MIGRATE = tools.ours('thin_migrate')


class TestMigrateCli(ToolTestCase):
    def test_help_and_version(self):
        for opt in ('-h', '--help'):
            r = self.run_tool([MIGRATE, opt])
            self.assertExit(r, 0)
            for o in ('--source-dev', '--dest-dev', '--dest-file', '--buffer-size-meg', '-q'):
                self.assertIn(o, r.out)
        r = self.run_tool([MIGRATE, '-V'])
        self.assertExit(r, 0)
        self.assertTrue(re.match(r'^\d+\.\d+\.\d+\n$', r.out), r.out)

    def test_bad_usage(self):
        d = tools.temp_dir()
        f = os.path.join(d, 'f')
        for argv in ([], ['--source-dev', '/dev/null'],
                     ['--source-dev', '/dev/null', '--dest-dev', f, '--dest-file', f],
                     ['--dest-file', f], ['--no-such-option'],
                     ['--source-dev', '/dev/null', '--dest-file', f, '--buffer-size-meg', '0']):
            r = self.run_tool([MIGRATE] + argv)
            self.assertExit(r, 1, str(argv))
            self.assertNonEmpty(r.err)
            self.assertEqual(r.stdout, b'')
        self.assertFalse(os.path.exists(f))

    def test_source_not_a_thin_device(self):
        d = tools.temp_dir()
        out = os.path.join(d, 'out')
        for src, pattern in ((pools.get('snapshots').meta, r'not a block device'),
                             (os.path.join(d, 'missing'), r'no such file'),
                             (d, r'not a block device')):
            r = self.run_tool([MIGRATE, '--source-dev', src, '--dest-file', out])
            self.assertExit(r, 1)
            self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
            self.assertMentions(r.err, [pattern])
            self.assertFalse(os.path.exists(out))


if __name__ == '__main__':
    unittest.main()
