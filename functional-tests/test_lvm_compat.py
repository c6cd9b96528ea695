# SPDX-License-Identifier: GPL-3.0-or-later
"""-V as LVM reads it (issue #12, point 7).

LVM runs `TOOL -V` and parses the first line with sscanf("%u.%u.%u")
(lib/activate/dev_manager.c, _check_tool_version), wanting 0.7.0 or later
for cache metadata 2; its configure script takes the text after the last
space, splits it on dots and passes --clear-needs-check-flag only from
0.3 on.  Our -V must pass all of these and print the number of the
upstream release the suite matches: the same as 1.x's -V.
"""

import re
import unittest

from lib import tools
from lib.testing import ToolTestCase

COMMANDS = sorted(set(tools.commands_under_test()) |
                  {'thin_metadata_size', 'pdata_tools'})


def lvm_runtime_parse(first_line):
    """sscanf(buf, "%u.%u.%u") == 3, as a tuple, or None."""
    m = re.match(r'\s*(\d+)\.\s*(\d+)\.\s*(\d+)', first_line)
    return tuple(int(x) for x in m.groups()) if m else None


def lvm_configure_parse(output):
    """configure.ac: VSN=${VSN##* }; major/minor = awk -F. $1/$2."""
    vsn = output.rstrip('\n').split(' ')[-1]
    fields = vsn.split('.')
    if len(fields) < 2 or not fields[0].isdigit() or not fields[1].isdigit():
        return None
    return int(fields[0]), int(fields[1])


class TestVersionForLvm(ToolTestCase):
    def version_of(self, command):
        r = self.run_tool([tools.ours(command), '-V'])
        self.assertExit(r, 0)
        return r.out


def _version_test(command):
    def test(self):
        out = self.version_of(command)
        v = lvm_runtime_parse(out.split('\n')[0])
        self.assertIsNotNone(v, 'LVM cannot parse %r' % out)
        self.assertGreaterEqual(v, (0, 7, 0), 'below the cache gate')
        self.assertGreaterEqual(v, (0, 3, 2), 'below the thin_check gate')
        conf = lvm_configure_parse(out)
        self.assertIsNotNone(conf, 'LVM configure cannot parse %r' % out)
        self.assertFalse(conf[0] == 0 and conf[1] < 3,
                         'LVM configure would drop --clear-needs-check-flag')
        # 1.x's release number (thin_merge is ours only: ask thin_check)
        onex = tools.run(tools.onex('thin_check') + ['-V'])
        self.assertExit(onex, 0)
        self.assertEqual(out, onex.out, 'the release the suite matches')
    return test


for _c in COMMANDS:
    setattr(TestVersionForLvm, 'test_version_%s' % _c, _version_test(_c))


if __name__ == '__main__':
    unittest.main()
