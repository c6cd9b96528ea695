# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the commands are, and how to run them.

Our commands: symlinks in $THINP_BUILD_DIR (default: the source dir).
Oracles, unpacked by scripts/fetch-oracles.sh into $THINP_ORACLE_DIR
(default /var/cache/thinp-tools/oracles) and always called by absolute path:
Debian 12's thin-provisioning-tools 0.9.0 (0.9/usr/sbin) and Debian 13's
upstream 1.x (1x/usr/sbin/pdata_tools).  A test that runs a missing oracle
is skipped, with the reason (see oracle_skip()).
"""

import atexit
import functools
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

SRC_DIR = os.environ.get('THINP_SRC_DIR') or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.environ.get('THINP_BUILD_DIR') or SRC_DIR

ORACLE_DIR = os.path.abspath(os.environ.get('THINP_ORACLE_DIR') or
                             '/var/cache/thinp-tools/oracles')
DEBIAN_SBIN = os.path.join(ORACLE_DIR, '0.9', 'usr', 'sbin')
DEBIAN = {name: os.path.join(DEBIAN_SBIN, name) for name in (
    'thin_check', 'thin_dump', 'thin_restore', 'thin_repair', 'thin_ls',
    'thin_delta', 'thin_rmap', 'thin_trim', 'thin_metadata_size',
    'cache_check', 'cache_dump', 'cache_restore', 'cache_repair',
    'cache_metadata_size', 'cache_writeback', 'era_check', 'era_dump',
    'era_restore', 'era_invalidate', 'pdata_tools')}
ONEX_PDATA_TOOLS = os.path.join(ORACLE_DIR, '1x', 'usr', 'sbin', 'pdata_tools')

# The reason of every skip caused by a missing oracle starts with this;
# under CI=true the runner counts such skips as failures.
ORACLE_SKIP = 'oracle missing: '

DEFAULT_TIMEOUT = 30.0


def scaled(seconds):
    """A timeout scaled by $THINP_TIMEOUT_SCALE (for sanitizer builds)."""
    try:
        factor = float(os.environ.get('THINP_TIMEOUT_SCALE', '1'))
    except ValueError:
        factor = 1.0
    return seconds * max(factor, 0.1)


def ours(command):
    """Path of one of our commands (a symlink in the build dir)."""
    return os.path.join(BUILD_DIR, command)


def onex(command):
    """argv prefix running a command of the 1.x tools."""
    return [ONEX_PDATA_TOOLS, command]


def oracle_available(path):
    """True when the oracle executable path (DEBIAN[...] or
    ONEX_PDATA_TOOLS) has been fetched."""
    return os.access(path, os.X_OK)


def oracle_skip(path):
    """The unittest.SkipTest for a missing oracle, with the reason that
    scripts/fetch-oracles.sh left behind."""
    try:
        with open(os.path.join(ORACLE_DIR, 'REASON')) as f:
            why = f.read().strip()
    except OSError:
        why = ''
    return unittest.SkipTest('%s%s (%s)' % (
        ORACLE_SKIP, path, why or 'run scripts/fetch-oracles.sh'))


def require_oracle(path):
    """Skip the calling test unless the oracle path is there."""
    if not oracle_available(path):
        raise oracle_skip(path)


def needs_oracle(path):
    """Decorator: the test is skipped (an oracle skip, which fails under
    CI=true) unless the oracle path is there."""
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kw):
            require_oracle(path)
            return fn(*args, **kw)
        return wrapper
    return decorate


# Commands the CLI matrix knows; by default those whose symlink exists in
# the build dir are tested.
MATRIX_COMMANDS = ('thin_check', 'thin_dump', 'thin_ls', 'thin_restore',
                   'thin_repair', 'thin_merge', 'snapshot_check',
                   'snapshot_dump', 'snapshot_merge', 'dm-merge', 'thin_delta',
                   'thin_rmap', 'thin_metadata_pack', 'thin_metadata_unpack',
                   'thin_trim',
                   'cache_check', 'cache_dump', 'cache_restore', 'cache_repair',
                   'cache_metadata_size', 'cache_writeback',
                   'era_check', 'era_dump', 'era_restore', 'era_invalidate')


def commands_under_test():
    """$THINP_COMMANDS (space separated) when set, else every command of
    MATRIX_COMMANDS present in the build dir."""
    explicit = os.environ.get('THINP_COMMANDS')
    if explicit is not None:
        return explicit.split()
    return [c for c in MATRIX_COMMANDS if os.path.lexists(ours(c))]


# ----------------------------------------------------------------
# Running commands

class CommandFailure(AssertionError):
    """A command hung or died by a signal: a test failure, never an error."""


class Result:
    def __init__(self, argv, rc, stdout, stderr, elapsed):
        self.argv = argv
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.elapsed = elapsed

    @property
    def out(self):
        return self.stdout.decode(errors='replace')

    @property
    def err(self):
        return self.stderr.decode(errors='replace')

    def describe(self):
        def cut(s):
            return s if len(s) < 2000 else s[:2000] + '...[cut]'
        return ('command: %s\nexit: %s\nstdout:\n%s\nstderr:\n%s' % (
            ' '.join(self.argv), self.rc, cut(self.out), cut(self.err)))

    def __repr__(self):
        return 'Result(%r, rc=%r)' % (self.argv, self.rc)


SANITIZER_MARKERS = ('AddressSanitizer', 'LeakSanitizer',
                     'UndefinedBehaviorSanitizer', 'runtime error:',
                     'ThreadSanitizer', 'MemorySanitizer')


def run(argv, timeout=None, stdin=None, cwd=None, env=None, preexec_fn=None,
        check_crash=True):
    """Run argv, capturing stdout/stderr (bytes).

    A timeout (default 30 s, scaled) or death by a signal raises
    CommandFailure, which unittest reports as a failure.  With check_crash,
    sanitizer reports in stderr are failures too."""
    timeout = scaled(DEFAULT_TIMEOUT) if timeout is None else timeout
    argv = [str(a) for a in argv]
    if argv and argv[0].startswith(ORACLE_DIR + os.sep):
        require_oracle(argv[0])
    start = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None
                         else subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=cwd, env=env,
                         preexec_fn=preexec_fn, start_new_session=True)
    try:
        out, err = p.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        out, err = p.communicate()
        raise CommandFailure('timed out after %.0f s (hang?): %s\nstderr:\n%s'
                             % (timeout, ' '.join(argv),
                                err.decode(errors='replace')[:2000]))
    r = Result(argv, p.returncode, out, err, time.monotonic() - start)
    if p.returncode < 0:
        raise CommandFailure('killed by signal %s (crash): %s' % (
            signal.Signals(-p.returncode).name, r.describe()))
    if check_crash:
        for marker in SANITIZER_MARKERS:
            if marker in r.err:
                raise CommandFailure('sanitizer report (%s): %s' % (
                    marker, r.describe()))
    return r


@functools.lru_cache(maxsize=None)
def build_version():
    """Version printed by our thin_dump -V (or None)."""
    try:
        r = run([ours('thin_dump'), '-V'], timeout=scaled(10))
    except (OSError, CommandFailure):
        return None
    return r.out.strip() or r.err.strip()


def build_is_debian():
    """True when THINP_BUILD_DIR points at Debian's 0.9.0 tools (used to
    skip tests of our extensions, e.g. --io-engine)."""
    return build_version() == '0.9.0'


# ----------------------------------------------------------------
# Temporary files

_session_dir = None


def session_dir():
    """A temp dir shared by every test module of this run, removed at exit
    unless $THINP_TEST_KEEP is set."""
    global _session_dir
    if _session_dir is None:
        base = os.environ.get('THINP_TEST_TMPDIR') or None
        _session_dir = tempfile.mkdtemp(prefix='thinp-ft-', dir=base)
        # traversable, so that a test may run a command as another user
        os.chmod(_session_dir, 0o755)
        if not os.environ.get('THINP_TEST_KEEP'):
            atexit.register(shutil.rmtree, _session_dir, True)
    return _session_dir


def temp_dir(prefix='t-'):
    """A fresh directory inside the session dir."""
    return tempfile.mkdtemp(prefix=prefix, dir=session_dir())


def sparse_copy(src, dst):
    """Copy a (sparse) file without filling its holes."""
    chunk = 1 << 16
    zero = bytes(chunk)
    with open(src, 'rb') as fi, open(dst, 'wb') as fo:
        size = os.fstat(fi.fileno()).st_size
        off = 0
        while off < size:
            try:
                data_off = os.lseek(fi.fileno(), off, os.SEEK_DATA)
            except OSError:
                break
            off = data_off - data_off % chunk
            fi.seek(off)
            buf = fi.read(chunk)
            if not buf:
                break
            if buf != zero[:len(buf)]:
                fo.seek(off)
                fo.write(buf)
            off += len(buf)
        fo.truncate(size)
    return dst


def file_digest(path):
    """Digest of a file's size and contents, cheap on sparse files: holes
    and zero-filled chunks hash alike, any other byte change is seen."""
    h = hashlib.sha256()
    chunk = 1 << 20
    with open(path, 'rb') as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        h.update(b'size %d\n' % size)
        off = 0
        while off < size:
            try:
                off = os.lseek(fd, off, os.SEEK_DATA)
                end = os.lseek(fd, off, os.SEEK_HOLE)
            except OSError:         # ENXIO: no data after off
                break
            while off < end:
                f.seek(off)
                buf = f.read(min(chunk, end - off))
                if not buf:
                    break
                if buf.count(0) != len(buf):
                    h.update(b'@%d:%d\n' % (off, len(buf)))
                    h.update(buf)
                off += len(buf)
    return h.hexdigest()


def read_block(path, b, size=4096):
    with open(path, 'rb') as f:
        f.seek(b * size)
        return f.read(size)


# ----------------------------------------------------------------
# Comparing outputs

def first_difference(a, b, context=3):
    """Human-readable description of where two byte strings first differ
    (line based; cheap even for 50 MB outputs)."""
    if a == b:
        return None
    la = a.split(b'\n')
    lb = b.split(b'\n')
    n = min(len(la), len(lb))
    i = 0
    while i < n and la[i] == lb[i]:
        i += 1
    lo = max(0, i - context)
    lines = ['outputs differ at line %d (sizes %d vs %d bytes, %d vs %d lines)'
             % (i + 1, len(a), len(b), len(la), len(lb))]
    for j in range(lo, min(i + context + 1, max(len(la), len(lb)))):
        x = la[j].decode(errors='replace') if j < len(la) else '<EOF>'
        y = lb[j].decode(errors='replace') if j < len(lb) else '<EOF>'
        mark = '!' if x != y else ' '
        lines.append('%s %6d got:      %s' % (mark, j + 1, x))
        if x != y:
            lines.append('%s %6d expected: %s' % (mark, j + 1, y))
    return '\n'.join(lines)


def matches_any(text, patterns):
    """True if text matches one of the regexes (case-insensitive)."""
    return any(re.search(p, text, re.I) for p in patterns)
