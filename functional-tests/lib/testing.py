# SPDX-License-Identifier: GPL-3.0-or-later
"""A TestCase base with the assertions every functional test uses."""

import unittest

from . import tools


class ToolTestCase(unittest.TestCase):
    maxDiff = 4000

    def run_tool(self, argv, **kw):
        """tools.run(); hang, signal and sanitizer reports fail the test."""
        return tools.run(argv, **kw)

    def assertExit(self, r, code, msg=None):
        if r.rc != code:
            self.fail('expected exit %d, got %d%s\n%s' % (
                code, r.rc, ' (%s)' % msg if msg else '', r.describe()))

    def assertExitNonZero(self, r, msg=None):
        if r.rc == 0:
            self.fail('expected a failure exit, got 0%s\n%s' % (
                ' (%s)' % msg if msg else '', r.describe()))

    def assertSameBytes(self, got, expected, what='output'):
        diff = tools.first_difference(got, expected)
        if diff:
            self.fail('%s differs from the expectation:\n%s' % (what, diff))

    def assertMentions(self, text, patterns, what='stderr'):
        """One of the regexes must match text (case-insensitive)."""
        if not tools.matches_any(text, patterns):
            self.fail('%s does not mention any of %s:\n%s' % (
                what, patterns, text[:3000]))

    def assertNonEmpty(self, text, what='stderr'):
        if not text.strip():
            self.fail('%s is empty: the command must say what is wrong' % what)

    def assertUnchanged(self, path, digest, what='input file'):
        now = tools.file_digest(path)
        if now != digest:
            self.fail('%s %s was modified by the command' % (what, path))
