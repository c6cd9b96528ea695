# SPDX-License-Identifier: GPL-3.0-or-later
"""The commands on real block devices (loop devices).

Every other test works on regular files; here the metadata lives on a loop
device (losetup -f --show FILE), which the commands open with O_DIRECT
(thin_merge reads an inactive pool's device, and writes its output,
through the page cache), and with O_EXCL where they must not share the
device.  Each test attaches its own devices and detaches them in its
cleanups, even on failure.  The whole module is skipped, with the reason,
when not run as root, when losetup is missing or when a loop device cannot
be attached.

Input: the random_writes merge scenario (lib/mergepools.py: O = 0, S = 1,
an unrelated device 2; a 16 MiB metadata file) and the mixed pool of
lib/poolgen.py.

TestBlockdevMerge: thin_merge from a loop device (default and --in-place)
  against the same merge on a file and the model of lib/mergemodel.py,
  checked by ours, 0.9.0 and 1.x thin_check; a stale page cache of the
  input device.
TestBlockdevOutput: thin_restore, thin_merge and thin_repair -o LOOP, read
  back through the device and through its backing file.
TestBlockdevBusy: the device held open with O_EXCL by the test: every
  command that opens it with IO_OPEN_EXCL refuses (exit 1, one line naming
  the device and saying it is busy, nothing written); the readers that do
  not (thin_dump, thin_ls) still read it.
TestBlockdevSameDevice: input and output the same device by two names (the
  device and a symlink to it: refused); the same storage by another name
  (the input device's backing file, a second loop device over it).
TestBlockdevTooSmall: an output device too small for the result.
"""

import atexit
import concurrent.futures
import functools
import hashlib
import os
import re
import shutil
import stat
import subprocess
import threading
import time
import unittest

from lib import mergemodel, mergepools, pools, tools
from lib import metadata as md
from lib.mergemodel import MergeOptions
from lib.testing import ToolTestCase

MERGE = tools.ours('thin_merge')
RESTORE = tools.ours('thin_restore')
REPAIR = tools.ours('thin_repair')
OUR_CHECK = tools.ours('thin_check')
OUR_DUMP = tools.ours('thin_dump')
OUR_LS = tools.ours('thin_ls')
DEBIAN_DUMP = tools.DEBIAN['thin_dump']
DEBIAN_CHECK = tools.DEBIAN['thin_check']
TIMEOUT = tools.scaled(60)

SCENARIO = 'random_writes'          # O = 0, S = 1, other = 2
MERGE_ARGS = ['--origin', '0', '--snapshot', '1']
RESTORE_POOL = 'mixed'              # a poolgen pool for thin_restore
STALE_POOL = 'snapshot_empty'       # another merge input (O = 3, S = 4)
# An output device smaller than every result written here: the merge needs
# ~490 blocks, restoring or repairing random_writes ~55.  (1 MiB would
# hold the restored or repaired pool.)
SMALL_DEVICE = 32 * md.BLOCK_SIZE

BUSY = [r'busy', r'in use']
SAME = [r'same', r'\binput\b']
TOO_SMALL = [r'too small', r'not large enough']

CHECKERS = (('our thin_check', [OUR_CHECK]),
            ('thin_check 0.9.0', [DEBIAN_CHECK]),
            ('thin_check 1.x', tools.onex('thin_check')))


# ----------------------------------------------------------------
# Loop devices

def _find_losetup():
    found = shutil.which('losetup')
    if found:
        return found
    for p in ('/usr/sbin/losetup', '/sbin/losetup', '/usr/bin/losetup'):
        if os.access(p, os.X_OK):
            return p
    return None


LOSETUP = _find_losetup()


class LoopError(Exception):
    pass


_attached = set()
_attached_lock = threading.Lock()
_atexit_registered = False


def _settle():
    """Let udev (where it runs) finish probing a new device, so that it
    holds no reference a test could trip over."""
    udevadm = shutil.which('udevadm')
    if udevadm and os.path.isdir('/run/udev'):
        subprocess.run([udevadm, 'settle', '--timeout=10'],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def attach(path):
    """losetup -f --show PATH: the loop device's path."""
    global _atexit_registered
    r = tools.run([LOSETUP, '-f', '--show', path], timeout=tools.scaled(30))
    dev = r.out.strip()
    if r.rc != 0 or not dev:
        raise LoopError('losetup -f --show %s: exit %d: %s' % (
            path, r.rc, r.err.strip() or r.out.strip() or '(no message)'))
    with _attached_lock:
        _attached.add(dev)
        if not _atexit_registered:
            # a safety net: registered after the session dir's removal,
            # so it runs before it
            atexit.register(_detach_all)
            _atexit_registered = True
    try:
        if not stat.S_ISBLK(os.stat(dev).st_mode):
            raise LoopError('%s is not a block device' % dev)
    except (OSError, LoopError) as e:
        detach(dev)
        raise LoopError('losetup attached %s, but: %s' % (dev, e))
    _settle()
    return dev


def detach(dev):
    """losetup -d DEV, retried while the device is still busy."""
    last = None
    for _ in range(50):
        r = tools.run([LOSETUP, '-d', dev], timeout=tools.scaled(30))
        if r.rc == 0:
            with _attached_lock:
                _attached.discard(dev)
            return
        last = r
        time.sleep(0.1)
    raise LoopError('losetup -d %s failed: exit %d: %s' % (
        dev, last.rc, last.err.strip()))


def _detach_all():
    for dev in sorted(_attached):
        try:
            detach(dev)
        except Exception:       # nothing more to do at exit
            pass


@functools.lru_cache(maxsize=None)
def loop_unavailable():
    """None when loop devices can be used here, else why not."""
    if os.geteuid() != 0:
        return 'loop devices need root (running as uid %d)' % os.geteuid()
    if not LOSETUP:
        return 'losetup not found'
    probe = os.path.join(tools.temp_dir('loop-probe-'), 'probe.img')
    with open(probe, 'wb') as f:
        f.truncate(1 << 20)
    try:
        dev = attach(probe)
    except (LoopError, OSError, tools.CommandFailure) as e:
        return 'cannot attach a loop device: %s' % e
    try:
        detach(dev)
    except (LoopError, tools.CommandFailure) as e:
        return 'cannot detach a loop device: %s' % e
    return None


# ----------------------------------------------------------------
# Files and digests

def flush(dev):
    """Write the device's dirty page-cache pages to its backing file (a
    command's close is not the device's last close while the test holds
    it open)."""
    fd = os.open(dev, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def device_digest(dev):
    """Digest of a block device's size and bytes, read through it."""
    h = hashlib.sha256()
    fd = os.open(dev, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        h.update(b'size %d\n' % size)
        off = 0
        while off < size:
            buf = os.pread(fd, min(1 << 20, size - off), off)
            if not buf:
                break
            h.update(buf)
            off += len(buf)
    finally:
        os.close(fd)
    return h.hexdigest()


def device_size(dev):
    fd = os.open(dev, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def overwrite(path, src, size=None):
    """Write src's bytes over path in place (the file is not truncated: a
    loop device may be attached to it), padded with zeros to size."""
    with open(src, 'rb') as f:
        data = f.read()
    with open(path, 'r+b') as f:
        f.write(data.ljust(size or 0, b'\0'))
        f.flush()
        os.fsync(f.fileno())


def needed_blocks(text):
    m = re.search(r'needs (\d+) blocks', text)
    return int(m.group(1)) if m else None


_reference = {}
_reference_lock = threading.Lock()


def reference_merge():
    """The default merge of SCENARIO on its metadata file (once per run):
    {'out': path, 'dump': /usr/sbin/thin_dump of it}."""
    with _reference_lock:
        if not _reference:
            fx = mergepools.get(SCENARIO)
            out = os.path.join(tools.temp_dir('blockdev-ref-'), 'merged.meta')
            with open(out, 'wb') as f:
                f.truncate(os.stat(fx.meta).st_size)
            r = tools.run([MERGE, '-i', fx.meta, '-o', out] + MERGE_ARGS,
                          timeout=TIMEOUT)
            if r.rc != 0:
                raise AssertionError('the merge on the file failed\n'
                                     + r.describe())
            d = tools.run([DEBIAN_DUMP, out], timeout=TIMEOUT)
            if d.rc != 0:
                raise AssertionError('dump of the merge on the file failed\n'
                                     + d.describe())
            _reference.update(out=out, dump=d.stdout)
        return dict(_reference)


def expected_merge_xml():
    """The model's dump of the merged pool."""
    fx = mergepools.get(SCENARIO)
    return mergemodel.expected_output(
        fx.pool, MergeOptions(fx.scenario.origin,
                              fx.scenario.snapshot)).expected_xml()


# ----------------------------------------------------------------
# The base

class LoopTestCase(ToolTestCase):
    maxDiff = 4000

    def setUp(self):
        why = loop_unavailable()
        if why:
            self.skipTest(why)
        for cmd in ('thin_merge', 'thin_restore', 'thin_repair',
                    'thin_check', 'thin_dump', 'thin_ls'):
            if not os.path.exists(tools.ours(cmd)):
                self.skipTest('no %s in %s' % (cmd, tools.BUILD_DIR))
        self.fx = mergepools.get(SCENARIO)
        self.dir = tools.temp_dir('blockdev-')

    # -- files and devices
    def path(self, name):
        return os.path.join(self.dir, name)

    def file(self, name, size=None, copy_of=None, pattern=None):
        """A file in the test's dir: a sparse copy of copy_of, or size bytes
        (sparse, or filled with pattern repeated)."""
        p = self.path(name)
        if copy_of:
            tools.sparse_copy(copy_of, p)
        elif pattern:
            with open(p, 'wb') as f:
                f.write((pattern * (size // len(pattern) + 1))[:size])
        else:
            with open(p, 'wb') as f:
                f.truncate(size)
        return p

    def loop(self, backing):
        """A loop device over backing, detached when the test ends."""
        try:
            dev = attach(backing)
        except LoopError as e:
            self.fail(str(e))
        self.addCleanup(detach, dev)
        return dev

    def hold(self, dev):
        """Hold dev open with O_EXCL until the test ends (or release())."""
        fd = os.open(dev, os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC)
        held = [fd]

        def release():
            if held:
                os.close(held.pop())
        self.addCleanup(release)
        return release

    def input_on_loop(self, name='in.img'):
        """A copy of the scenario's metadata on a loop device: (dev,
        backing file)."""
        backing = self.file(name, copy_of=self.fx.meta)
        return self.loop(backing), backing

    def state(self, dev, backing, *files):
        """What a command must not change: the device's bytes read
        through it, its backing file once the device is flushed, and the
        other files of the command."""
        flush(dev)
        out = {'device %s' % dev: device_digest(dev),
               'backing file %s' % backing: tools.file_digest(backing)}
        for f in files:
            out['file %s' % f] = tools.file_digest(f)
        return out

    def assertStateUnchanged(self, before, dev, backing, *files):
        after = self.state(dev, backing, *files)
        changed = [k for k in before if before[k] != after[k]]
        if changed:
            self.fail('changed by the command: %s' % ', '.join(changed))

    # -- outcomes
    def assertOk(self, r, what=None):
        if r.rc != 0:
            self.fail('%s: expected exit 0, got %d\n%s' % (
                what or os.path.basename(r.argv[0]), r.rc, r.describe()))

    def assertRefused(self, r, keywords, name=None):
        """Exit 1, nothing on stdout, exactly one line on stderr matching
        one of keywords (and naming name)."""
        self.assertExit(r, 1)
        for marker in ('Traceback', 'Segmentation', 'Assertion',
                       'core dumped', 'Aborted'):
            self.assertNotIn(marker, r.err, r.describe())
        self.assertEqual(r.out, '', 'nothing on stdout:\n' + r.describe())
        lines = r.err.splitlines()
        self.assertEqual(len(lines), 1,
                         'exactly one line on stderr:\n' + r.describe())
        self.assertTrue(lines[0].strip(), 'an empty line on stderr')
        self.assertMentions(lines[0], keywords)
        if name:
            self.assertIn(name, lines[0], 'the message names %s' % name)
        return lines[0]

    def assertChecksClean(self, *paths):
        """Ours, 0.9.0 and 1.x thin_check exit 0 on each path.  The checkers
        of one path run one after the other (each may open a device with
        O_EXCL), different paths in parallel."""
        def chain(path):
            return [(name, path, tools.run(argv + [path], timeout=TIMEOUT))
                    for name, argv in CHECKERS]
        with concurrent.futures.ThreadPoolExecutor(len(paths)) as ex:
            results = list(ex.map(chain, paths))
        for per_path in results:
            for name, path, r in per_path:
                if r.rc != 0:
                    self.fail('%s on %s: exit %d\n%s' % (name, path, r.rc,
                                                         r.describe()))

    def debian_dump(self, path, *args):
        r = self.run_tool([DEBIAN_DUMP] + list(args) + [path],
                          timeout=TIMEOUT)
        self.assertOk(r, '/usr/sbin/thin_dump %s' % path)
        return r.stdout


# ----------------------------------------------------------------
# 1, 2: thin_merge reading a loop device

class TestBlockdevMerge(LoopTestCase):

    def test_merge_from_device(self):
        """thin_merge -i LOOP -o FILE: as the same merge of the backing
        file, clean for the three checkers, the input unchanged."""
        dev, backing = self.input_on_loop()
        size = os.stat(backing).st_size
        out = self.file('out.meta', size)
        before = self.state(dev, backing)
        r = self.run_tool([MERGE, '-i', dev, '-o', out] + MERGE_ARGS,
                          timeout=TIMEOUT)
        self.assertOk(r)
        self.assertStateUnchanged(before, dev, backing)
        self.assertChecksClean(out)

        # the same merge run on the backing file directly
        out_file = self.file('out-from-file.meta', size)
        r = self.run_tool([MERGE, '-i', backing, '-o', out_file] + MERGE_ARGS,
                          timeout=TIMEOUT)
        self.assertOk(r)
        dump = self.debian_dump(out)
        self.assertSameBytes(dump, self.debian_dump(out_file),
                             'dump of the merge from %s vs from its backing '
                             'file' % dev)
        self.assertSameBytes(
            self.debian_dump(out, '--dev-id', '0'),
            self.debian_dump(out_file, '--dev-id', '0'),
            'dump of the merged device (--dev-id 0)')
        self.assertSameBytes(dump, expected_merge_xml(),
                             'dump of the merge from %s vs the model' % dev)

    def _in_place(self, extra):
        dev, backing = self.input_on_loop()
        r = self.run_tool([MERGE, '-i', dev, '--in-place'] + MERGE_ARGS
                          + list(extra), timeout=TIMEOUT)
        self.assertOk(r)
        flush(dev)
        self.assertChecksClean(dev, backing)
        ref = reference_merge()['dump']
        self.assertSameBytes(self.debian_dump(dev), ref,
                             '--in-place on %s vs the default merge of the '
                             'file' % dev)
        self.assertSameBytes(self.debian_dump(backing), ref,
                             '--in-place on %s, read through its backing '
                             'file, vs the default merge of the file' % dev)
        for dev_id in ('0', '2'):
            self.assertSameBytes(
                self.debian_dump(dev, '--dev-id', dev_id),
                self.debian_dump(reference_merge()['out'], '--dev-id',
                                 dev_id),
                'device %s after --in-place vs the default merge' % dev_id)

    def test_in_place_on_device(self):
        """thin_merge -i LOOP --in-place (default engine: async, O_DIRECT
        on the device)."""
        self._in_place([])

    def test_in_place_on_device_sync_engine(self):
        if tools.build_is_debian():
            self.skipTest('--io-engine is our extension')
        self._in_place(['--io-engine', 'sync'])

    def test_merge_from_device_with_stale_page_cache(self):
        """The device's page cache holds another pool (as when dm-thin
        wrote the metadata below it): the merge reads what the device
        holds now, not the cached pages."""
        stale = mergepools.get(STALE_POOL).meta
        size = max(os.stat(stale).st_size, os.stat(self.fx.meta).st_size)
        backing = self.file('in.img', size)
        overwrite(backing, stale, size)
        dev = self.loop(backing)
        # the device's last close drops its page cache: keep it open, as
        # the kernel keeps an active pool's metadata device
        fd = os.open(dev, os.O_RDONLY | os.O_CLOEXEC)
        self.addCleanup(os.close, fd)
        for off in range(0, size, 1 << 20):     # every page cached
            os.pread(fd, 1 << 20, off)
        overwrite(backing, self.fx.meta, size)  # below the page cache
        if os.pread(fd, md.BLOCK_SIZE, 0) != tools.read_block(stale, 0):
            self.skipTest('the device\'s page cache was not stale: nothing '
                          'to test')
        out = self.file('out.meta', size)
        r = self.run_tool([MERGE, '-i', dev, '-o', out] + MERGE_ARGS,
                          timeout=TIMEOUT)
        self.assertOk(r)
        self.assertSameBytes(self.debian_dump(out), reference_merge()['dump'],
                             'merge of %s after its backing file changed'
                             % dev)


# ----------------------------------------------------------------
# 3: outputs on a loop device

class TestBlockdevOutput(LoopTestCase):

    def output_on_loop(self, size):
        backing = self.file('out.img', size)
        return self.loop(backing), backing

    def test_restore_to_device(self):
        fx = pools.get(RESTORE_POOL)
        dev, backing = self.output_on_loop(os.stat(fx.meta).st_size)
        r = self.run_tool([RESTORE, '-i', fx.xml, '-o', dev],
                          timeout=TIMEOUT)
        self.assertOk(r)
        self.assertChecksClean(dev, backing)
        expected = fx.model.expected_xml()
        self.assertSameBytes(self.debian_dump(dev), expected,
                             'dump of %s after thin_restore' % dev)
        self.assertSameBytes(self.debian_dump(backing), expected,
                             'dump of the backing file after thin_restore')

    def test_merge_to_device(self):
        dev, backing = self.output_on_loop(os.stat(self.fx.meta).st_size)
        r = self.run_tool([MERGE, '-i', self.fx.meta, '-o', dev] + MERGE_ARGS,
                          timeout=TIMEOUT)
        self.assertOk(r)
        self.assertChecksClean(dev, backing)
        ref = reference_merge()['dump']
        self.assertSameBytes(self.debian_dump(dev), ref,
                             'merge to %s vs the merge to a file' % dev)
        self.assertSameBytes(self.debian_dump(backing), ref,
                             'merge to %s, read through its backing file, '
                             'vs the merge to a file' % dev)

    def test_repair_to_device(self):
        dev, backing = self.output_on_loop(os.stat(self.fx.meta).st_size)
        r = self.run_tool([REPAIR, '-i', self.fx.meta, '-o', dev],
                          timeout=TIMEOUT)
        self.assertOk(r)
        self.assertChecksClean(dev, backing)
        expected = self.fx.pool.expected_xml()
        self.assertSameBytes(self.debian_dump(dev), expected,
                             'dump of %s after thin_repair' % dev)
        self.assertSameBytes(self.debian_dump(backing), expected,
                             'dump of the backing file after thin_repair')


# ----------------------------------------------------------------
# 4: a device in use
#
# Commands that open a device with IO_OPEN_EXCL (and so must refuse one in
# use): thin_merge's input (merge/thin-merge.c open_input, unless -m) and
# output (open_output), and its input under --in-place (merge_in_place);
# thin_restore's output; thin_repair's input and output; thin_check's
# input unless -m (also with --clear-needs-check-flag).  Not tested here,
# because they open without O_EXCL by design (they read a live pool's
# metadata beside the kernel, usually its metadata snapshot): thin_dump,
# thin_ls, thin_check -m and thin_merge -m.  test_readers_share_the_device
# checks that thin_dump and thin_ls do read a held device.

class TestBlockdevBusy(LoopTestCase):

    def setUp(self):
        super().setUp()
        # the device holds a valid pool: a refusal can only be the hold's
        self.dev, self.backing = self.input_on_loop()
        self.release = self.hold(self.dev)
        # the other files: a valid input, an output holding a valid pool
        self.inp = self.file('other-in.meta', copy_of=self.fx.meta)
        self.out = self.file('other-out.meta',
                             copy_of=mergepools.get(STALE_POOL).meta)
        self.xml = self.fx.xml

    def refuse(self, argv):
        files = [p for p in (self.inp, self.out) if p in argv]
        before = self.state(self.dev, self.backing, *files)
        r = self.run_tool(argv, timeout=TIMEOUT)
        self.assertRefused(r, BUSY, self.dev)
        self.assertStateUnchanged(before, self.dev, self.backing, *files)
        return r

    def test_merge_input(self):
        self.refuse([MERGE, '-i', self.dev, '-o', self.out] + MERGE_ARGS)

    def test_merge_input_in_place(self):
        self.refuse([MERGE, '-i', self.dev, '--in-place'] + MERGE_ARGS)

    def test_merge_input_in_place_sync_engine(self):
        if tools.build_is_debian():
            self.skipTest('--io-engine is our extension')
        self.refuse([MERGE, '-i', self.dev, '--in-place', '--io-engine',
                     'sync'] + MERGE_ARGS)

    def test_merge_output(self):
        self.refuse([MERGE, '-i', self.inp, '-o', self.dev] + MERGE_ARGS)

    def test_merge_output_merged_only(self):
        self.refuse([MERGE, '-i', self.inp, '-o', self.dev, '--merged-only']
                    + MERGE_ARGS)

    def test_restore_output(self):
        self.refuse([RESTORE, '-i', self.xml, '-o', self.dev])

    def test_repair_input(self):
        self.refuse([REPAIR, '-i', self.dev, '-o', self.out])

    def test_repair_output(self):
        self.refuse([REPAIR, '-i', self.inp, '-o', self.dev])

    def test_check(self):
        self.refuse([OUR_CHECK, self.dev])

    def test_check_clear_needs_check_flag(self):
        self.refuse([OUR_CHECK, '--clear-needs-check-flag', self.dev])

    def test_check_after_release(self):
        """The refusal is the hold's: released, the device checks clean."""
        self.refuse([OUR_CHECK, self.dev])
        self.release()
        self.assertOk(self.run_tool([OUR_CHECK, self.dev], timeout=TIMEOUT))

    def test_readers_share_the_device(self):
        """thin_dump and thin_ls open without O_EXCL: a held device reads
        as its backing file."""
        for name, cmd in (('thin_dump', OUR_DUMP), ('thin_ls', OUR_LS)):
            with self.subTest(command=name):
                r = self.run_tool([cmd, self.dev], timeout=TIMEOUT)
                self.assertOk(r)
                f = self.run_tool([cmd, self.backing], timeout=TIMEOUT)
                self.assertOk(f)
                self.assertSameBytes(r.stdout, f.stdout,
                                     '%s of the held %s vs of its backing '
                                     'file' % (name, self.dev))


# ----------------------------------------------------------------
# 5: input and output the same device

class TestBlockdevSameDevice(LoopTestCase):

    def setUp(self):
        super().setUp()
        self.dev, self.backing = self.input_on_loop()
        self.link = self.path('link-to-dev')
        os.symlink(self.dev, self.link)

    def refuse(self, argv, name):
        before = self.state(self.dev, self.backing)
        r = self.run_tool(argv, timeout=TIMEOUT)
        self.assertRefused(r, SAME, name)
        self.assertStateUnchanged(before, self.dev, self.backing)

    def test_merge_device_to_symlink(self):
        self.refuse([MERGE, '-i', self.dev, '-o', self.link] + MERGE_ARGS,
                    self.link)

    def test_merge_symlink_to_device(self):
        self.refuse([MERGE, '-i', self.link, '-o', self.dev] + MERGE_ARGS,
                    self.dev)

    def test_merge_merged_only_device_to_symlink(self):
        self.refuse([MERGE, '-i', self.dev, '-o', self.link, '--merged-only']
                    + MERGE_ARGS, self.link)

    def test_repair_device_to_symlink(self):
        self.refuse([REPAIR, '-i', self.dev, '-o', self.link], self.link)

    # The same storage under a name that is not the device: its backing
    # file, or a second loop device over that file.  Nothing tells the
    # commands that they share the input's bytes but the loop device's
    # backing file (LOOP_GET_STATUS64: lo_device, lo_inode).
    def _shared_storage(self, tool_argv):
        second = self.loop(self.backing)
        for what, out in (('its backing file', self.backing),
                          ('a second loop device over its backing file',
                           second)):
            with self.subTest(output=what):
                # the input as it was, in case a previous case wrote it
                overwrite(self.backing, self.fx.meta)
                before = tools.file_digest(self.backing)
                r = self.run_tool(tool_argv(out), timeout=TIMEOUT)
                flush(self.dev)
                flush(second)
                written = tools.file_digest(self.backing) != before
                self.assertFalse(
                    r.rc == 0 or written,
                    'the output (%s) is the input %s: expected a refusal '
                    'and the input untouched; got exit %d, the input %s\n%s'
                    % (what, self.dev, r.rc,
                       'OVERWRITTEN' if written else 'unchanged',
                       r.describe()))
                self.assertRefused(r, SAME)

    def test_merge_output_shares_the_input_storage(self):
        self._shared_storage(lambda out: [MERGE, '-i', self.dev, '-o', out]
                             + MERGE_ARGS)

    def test_repair_output_shares_the_input_storage(self):
        self._shared_storage(lambda out: [REPAIR, '-i', self.dev, '-o', out])


# ----------------------------------------------------------------
# 6: an output device too small

class TestBlockdevTooSmall(LoopTestCase):

    def setUp(self):
        super().setUp()
        # recognisable bytes: nothing of them may change
        self.backing = self.file('small.img', SMALL_DEVICE,
                                 pattern=b'not metadata\n')
        self.dev = self.loop(self.backing)
        self.assertEqual(device_size(self.dev), SMALL_DEVICE)

    def refuse(self, argv):
        before = self.state(self.dev, self.backing)
        r = self.run_tool(argv, timeout=TIMEOUT)
        line = self.assertRefused(r, TOO_SMALL, self.dev)
        need = needed_blocks(line)
        self.assertIsNotNone(need, 'the message says how many blocks are '
                             'needed: %r' % line)
        self.assertGreater(need, SMALL_DEVICE // md.BLOCK_SIZE, line)
        self.assertStateUnchanged(before, self.dev, self.backing)
        return need

    def test_merge(self):
        self.refuse([MERGE, '-i', self.fx.meta, '-o', self.dev] + MERGE_ARGS)

    def test_merge_merged_only(self):
        # the merged device alone needs less: still more than 32 blocks
        self.refuse([MERGE, '-i', self.fx.meta, '-o', self.dev,
                     '--merged-only'] + MERGE_ARGS)

    def test_restore(self):
        self.refuse([RESTORE, '-i', self.fx.xml, '-o', self.dev])

    def test_repair(self):
        self.refuse([REPAIR, '-i', self.fx.meta, '-o', self.dev])


def load_tests(loader, standard_tests, pattern):
    suite = unittest.TestSuite()
    for cls in (TestBlockdevMerge, TestBlockdevOutput, TestBlockdevBusy,
                TestBlockdevSameDevice, TestBlockdevTooSmall):
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite


if __name__ == '__main__':
    unittest.main()
