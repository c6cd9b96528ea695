# SPDX-License-Identifier: GPL-3.0-or-later
"""Run the functional tests: functional-tests/runner.py [FILTER...]

Discovers functional-tests/test_*.py with unittest, keeps the tests whose
id (module.Class.method) contains one of the FILTER substrings (all tests
when none is given), runs them with one line per test, and ends with the
summary line "N passed, N failed[, N skipped]".  Exit 0 iff nothing failed.
"""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


def main(argv):
    filters = [a for a in argv[1:] if a]
    sys.path.insert(0, HERE)
    os.chdir(HERE)
    loader = unittest.TestLoader()
    discovered = loader.discover(HERE, pattern='test_*.py', top_level_dir=HERE)
    tests = [t for t in iter_tests(discovered)
             if not filters or any(f in t.id() for f in filters)
             # import errors show up as _FailedTest: always keep them
             or type(t).__name__ == '_FailedTest']
    suite = unittest.TestSuite(tests)

    from lib import tools
    print('build dir: %s (thin_dump -V: %s)' % (tools.BUILD_DIR,
                                                 tools.build_version()))
    print('commands under test: %s' % ' '.join(tools.commands_under_test()))
    sys.stdout.flush()

    start = time.monotonic()
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2,
                                     descriptions=False)
    result = runner.run(suite)
    elapsed = time.monotonic() - start

    failed_ids = set()
    for t, _ in result.failures + result.errors:
        failed_ids.add(t.id())
    for t in result.unexpectedSuccesses:
        failed_ids.add(t.id())
    # A skip for a missing oracle is a failure in CI: CI must never go
    # green by skipping what it was meant to compare.
    ci = os.environ.get('CI', '').lower() in ('1', 'true', 'yes')
    oracle_skips = [(t, why) for t, why in result.skipped
                    if why.startswith(tools.ORACLE_SKIP)]
    if oracle_skips:
        print('%d test(s) skipped for a missing oracle, e.g. %s: %s' % (
            len(oracle_skips), oracle_skips[0][0].id(), oracle_skips[0][1]))
        if ci:
            print('CI=true: a missing oracle fails the run')
            for t, _ in oracle_skips:
                failed_ids.add(t.id())
    failed = len(failed_ids)
    skipped = len(result.skipped) - (len(oracle_skips) if ci else 0)
    passed = max(result.testsRun - skipped - failed, 0)
    if filters and not tests:
        print('warning: no test matches %s' % ' '.join(filters))
    print('functional tests took %.1f s' % elapsed)
    summary = '%d passed, %d failed' % (passed, failed)
    if skipped:
        summary += ', %d skipped' % skipped
    sys.stdout.flush()
    sys.stderr.flush()
    print(summary)
    sys.stdout.flush()
    return 0 if failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv))
