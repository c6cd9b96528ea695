# SPDX-License-Identifier: GPL-3.0-or-later
"""thin_restore: XML (v0.9 and 1.x dialects) to fresh metadata.

Expected results come from outside our tools: the pool models
(lib/poolgen.py, lib/sharedpool.py) say what thin_dump 0.9.0 must print
once the XML is restored (version 2, flags 0, mapped_blocks recomputed);
/usr/sbin/thin_check, the 1.x thin_check and ours must accept what we
write; Debian's thin_restore of the same XML must dump the same.

Test names: test_<what>__<pool> for the per-pool tests (every generated
pool, the 1M-mapping one included), then the 1.x dialect, the options,
inputs that must work, the failures and memory use.
"""

import copy
import os
import pty
import re
import resource
import select
import signal
import subprocess
import threading
import time
import unittest

from lib import metadata, pools, poolgen, sharedpool, tools
from lib.testing import ToolTestCase

OUR_RESTORE = tools.ours('thin_restore')
OUR_DUMP = tools.ours('thin_dump')
OUR_CHECK = tools.ours('thin_check')
DEBIAN_RESTORE = tools.DEBIAN['thin_restore']
DEBIAN_DUMP = tools.DEBIAN['thin_dump']
DEBIAN_CHECK = tools.DEBIAN['thin_check']
BIG_TIMEOUT = tools.scaled(120)      # the 1M-mapping pool
RSS_LIMIT_KIB = 64 * 1024

ROUND_TRIP_POOLS = pools.POOL_NAMES + ['damage_base']


def _add(cls, name, fn):
    assert not hasattr(cls, name), name
    fn.__name__ = name
    setattr(cls, name, fn)


def canonical(model):
    """The model as our restore writes it: version 2, flags 0."""
    m = copy.copy(model)
    m.flags = 0
    m.version = 2
    return m


def sparse_file(path, size):
    poolgen.make_sparse_file(path, size)
    return path


def restore(xml, out, extra=(), size=None, timeout=BIG_TIMEOUT, **kw):
    """Our thin_restore -i xml -o out (out created sparse when size)."""
    if size is not None:
        sparse_file(out, size)
    return tools.run([OUR_RESTORE, '-i', xml, '-o', out] + list(extra),
                     timeout=timeout, **kw)


def superblock(path):
    with metadata.Metadata(path) as md:
        return md.superblock()


def md_allocated(path):
    """Metadata blocks in use, from the metadata space map root."""
    return superblock(path).metadata_sm.nr_allocated


def header_and_body(dump):
    head, _, body = dump.partition(b'\n')
    return head, body


def without_flags_version(head):
    return re.sub(rb' (flags|version)="\d+"', b'', head)


# ----------------------------------------------------------------
# Session caches: each pool restored once by us, each dump run once

_memo = {}


def memo_run(argv, timeout=BIG_TIMEOUT):
    """tools.run() once per session for argv naming files that no longer
    change (our restored outputs, the pools)."""
    key = tuple(argv)
    r = _memo.get(key)
    if r is None:
        r = tools.run(list(argv), timeout=timeout)
        _memo[key] = r
    return r


_restored = {}


def restored(name):
    """(Result, output path) of our restore of pool name's XML into a
    file as large as the one Debian's restore got."""
    got = _restored.get(name)
    if got is None:
        fx = pools.get(name)
        d = os.path.join(tools.session_dir(), 'restore')
        os.makedirs(d, exist_ok=True)
        out = os.path.join(d, name + '.ours.meta')
        r = restore(fx.xml, out, size=os.path.getsize(fx.meta))
        got = (r, out)
        _restored[name] = got
    return got


_expected = {}


def expected_xml(name):
    e = _expected.get(name)
    if e is None:
        e = canonical(pools.get(name).model).expected_xml()
        _expected[name] = e
    return e


SMALL_BLOCKS = 10                   # 40 KiB: enough for the 1.x tools too
SMALL_FILL = b'\x5a' * (SMALL_BLOCKS * metadata.BLOCK_SIZE)
NEED_RE = re.compile(r'needs (\d+) blocks')


def small_digest():
    path = os.path.join(tools.session_dir(), 'small-reference')
    if not os.path.exists(path):
        with open(path, 'wb') as f:
            f.write(SMALL_FILL)
    return tools.file_digest(path)


def announced_need(xml, out):
    """Our restore of xml into a 10-block output filled with a pattern:
    (Result, the number of blocks the message says are needed, or None
    when the restore fit)."""
    with open(out, 'wb') as f:
        f.write(SMALL_FILL)
    r = restore(xml, out)
    m = NEED_RE.search(r.err)
    return r, int(m.group(1)) if m else None


def restore_exact(test, xml, need, directory):
    """Restore xml into an output of exactly need blocks: it must work,
    and need must be an upper bound of what is used but not a wild one
    (the estimate assumes half-full nodes: about twice the leaves).
    Returns (blocks used, the output)."""
    out = sparse_file(os.path.join(directory, 'exact.meta'),
                      need * metadata.BLOCK_SIZE)
    r = restore(xml, out)
    test.assertExit(r, 0, 'an output of the size the too-small message '
                    'announced (%d blocks) is refused' % need)
    used = md_allocated(out)
    test.assertLessEqual(used, need, 'more blocks used than announced')
    return used, out


def assert_need_sane(test, need, used):
    """The estimate assumes half-full nodes (about twice the leaves) plus
    the space maps: more than that refuses outputs that are big enough."""
    test.assertLessEqual(need, 3 * used + 64,
                         'the announced size (%d blocks) is far more than '
                         'the %d blocks used' % (need, used))


# ----------------------------------------------------------------
# Round trip on every generated pool

class TestRestorePools(ToolTestCase):
    """Tests are added below, one per (check, pool)."""

    def restored_ok(self, name):
        r, out = restored(name)
        self.assertExit(r, 0, 'our thin_restore')
        return out


def _restore_test(name):
    def test(self):
        """Our restore, then Debian's thin_dump prints the canonical XML."""
        r, out = restored(name)
        self.assertExit(r, 0)
        self.assertEqual(r.stdout, b'', 'thin_restore prints nothing')
        self.assertEqual(r.err, '', 'thin_restore prints nothing')
        d = memo_run([DEBIAN_DUMP, out])
        self.assertExit(d, 0, 'Debian thin_dump of our restore')
        self.assertSameBytes(d.stdout, expected_xml(name),
                             'Debian thin_dump of our restore vs the model')
    return test


def _superblock_test(name):
    def test(self):
        """version 2, flags 0, no held root, empty uuid, values copied."""
        out = self.restored_ok(name)
        model = pools.get(name).model
        sb = superblock(out)
        self.assertEqual(sb.magic, metadata.SB_MAGIC)
        self.assertEqual(sb.blocknr, 0)
        self.assertTrue(metadata.checksum_ok(sb.raw,
                                             metadata.CSUM_SUPERBLOCK))
        self.assertEqual(sb.version, 2, 'version')
        self.assertEqual(sb.flags, 0, 'flags (the XML had %d)' % model.flags)
        self.assertEqual(sb.metadata_snap, 0, 'metadata_snap')
        self.assertEqual(bytes(sb.raw[16:32]), bytes(16),
                         'uuid (the XML had %r)' % model.uuid)
        self.assertEqual(sb.time, model.time)
        self.assertEqual(sb.trans_id, model.transaction)
        self.assertEqual(sb.data_block_size, model.data_block_size)
        self.assertEqual(sb.metadata_block_size, 8)
        self.assertEqual(sb.data_sm.nr_blocks, model.nr_data_blocks)
        size = os.path.getsize(out) // metadata.BLOCK_SIZE
        self.assertEqual(sb.metadata_nr_blocks, size)
        self.assertEqual(sb.metadata_sm.nr_blocks, size)
        self.assertEqual(sb.data_sm.nr_allocated,
                         len(model.data_block_refs()),
                         'data blocks in use')
    return test


def _check_test(name, argv, what):
    def test(self):
        out = self.restored_ok(name)
        r = memo_run(argv + [out])
        self.assertExit(r, 0, '%s on our restore' % what)
    return test


def _our_dump_test(name):
    def test(self):
        """Our thin_dump of our restore: the same canonical XML."""
        out = self.restored_ok(name)
        r = memo_run([OUR_DUMP, out])
        self.assertExit(r, 0, 'our thin_dump of our restore')
        self.assertSameBytes(r.stdout, expected_xml(name),
                             'our thin_dump of our restore vs the model')
    return test


def _same_as_debian_test(name, dump, what):
    def test(self):
        """Our restore and Debian's of the same XML dump alike (Debian
        keeps the XML's flags and version: only they may differ)."""
        out = self.restored_ok(name)
        fx = pools.get(name)
        theirs = pools.oracle([dump, fx.meta])
        self.assertExit(theirs, 0, '%s of Debian restore' % what)
        mine = memo_run([dump, out])
        self.assertExit(mine, 0, '%s of our restore' % what)
        h1, b1 = header_and_body(mine.stdout)
        h2, b2 = header_and_body(theirs.stdout)
        self.assertEqual(without_flags_version(h1), without_flags_version(h2),
                         'superblock lines (flags, version left out)')
        self.assertSameBytes(b1, b2, '%s of our restore vs of Debian '
                             'restore (after the superblock line)' % what)
        if model_is_canonical(fx.model):
            self.assertEqual(h1, h2)
    return test


def model_is_canonical(model):
    return model.flags == 0 and model.dumped_version == 2


def _io_engine_test(name, engine):
    def test(self):
        """--io-engine ENGINE writes the same bytes as the default."""
        if tools.build_is_debian():
            self.skipTest('--io-engine is our extension')
        out = self.restored_ok(name)
        fx = pools.get(name)
        other = os.path.join(tools.temp_dir(), 'engine.meta')
        r = restore(fx.xml, other, ['--io-engine', engine],
                    size=os.path.getsize(out))
        self.assertExit(r, 0)
        self.assertEqual(r.stdout + r.stderr, b'')
        if tools.file_digest(other) != tools.file_digest(out):
            r = tools.run([DEBIAN_DUMP, other], timeout=BIG_TIMEOUT)
            self.assertSameBytes(r.stdout, expected_xml(name),
                                 'dump of the --io-engine %s output' % engine)
            self.fail('--io-engine %s output differs byte for byte from the '
                      'default (sync) output (the dump is right)' % engine)
        os.unlink(other)
    return test


def _exact_size_test(name):
    def test(self):
        """Too small an output is refused saying how much is needed (before
        writing anything); exactly that much is enough."""
        fx = pools.get(name)
        d = tools.temp_dir()
        out = os.path.join(d, 'small.meta')
        r, need = announced_need(fx.xml, out)
        if need is None:
            self.assertExit(r, 0, 'neither "needs N blocks" nor success')
        else:
            self.assertExit(r, 1)
            self.assertEqual(tools.file_digest(out), small_digest(),
                             'the too small output was written to')
            used, out = restore_exact(self, fx.xml, need, d)
        self.assertExit(self.run_tool([OUR_CHECK, out]), 0, 'our thin_check')
        r = self.run_tool([OUR_DUMP, out], timeout=BIG_TIMEOUT)
        self.assertSameBytes(r.stdout, expected_xml(name), 'our thin_dump')
        if need is not None:
            assert_need_sane(self, need, used)
    return test


for _pool in ROUND_TRIP_POOLS:
    _add(TestRestorePools, 'test_restore__%s' % _pool, _restore_test(_pool))
    _add(TestRestorePools, 'test_exact_size__%s' % _pool,
         _exact_size_test(_pool))
    _add(TestRestorePools, 'test_superblock__%s' % _pool,
         _superblock_test(_pool))
    _add(TestRestorePools, 'test_check_ours__%s' % _pool,
         _check_test(_pool, [OUR_CHECK], 'our thin_check'))
    _add(TestRestorePools, 'test_check_debian__%s' % _pool,
         _check_test(_pool, [DEBIAN_CHECK], 'Debian thin_check'))
    _add(TestRestorePools, 'test_check_1x__%s' % _pool,
         _check_test(_pool, tools.onex('thin_check'), '1.x thin_check'))
    _add(TestRestorePools, 'test_our_dump__%s' % _pool, _our_dump_test(_pool))
    _add(TestRestorePools, 'test_same_as_debian_restore__%s' % _pool,
         _same_as_debian_test(_pool, DEBIAN_DUMP, 'Debian thin_dump'))
    _add(TestRestorePools, 'test_same_as_debian_restore_our_dump__%s' % _pool,
         _same_as_debian_test(_pool, OUR_DUMP, 'our thin_dump'))
    _add(TestRestorePools, 'test_io_engine_async__%s' % _pool,
         _io_engine_test(_pool, 'async'))
    _add(TestRestorePools, 'test_io_engine_sync__%s' % _pool,
         _io_engine_test(_pool, 'sync'))


# ----------------------------------------------------------------
# 1.x dialect: <def> / <ref>

class Shared:
    """The shared-sections pool, written once per session: our XML, the
    1.x tools' rendering of it, and the restores the tests compare."""
    _state = None

    @classmethod
    def get(cls):
        if cls._state is None:
            cls._state = cls()
        return cls._state

    def __init__(self):
        self.dir = tools.temp_dir('shared-')
        self.pool = sharedpool.shared_snapshots(seed=pools.SEED)
        self.model = self.pool.expanded()
        self.size = 16 << 20
        self.xml = self.path('shared.xml')
        self.pool.write_xml(self.xml)
        self.expanded_xml = self.path('expanded.xml')
        self.model.write_xml(self.expanded_xml)
        self.expected = self.model.expected_xml()
        self._onex_xml = None

    def path(self, name):
        return os.path.join(self.dir, name)

    def onex_xml(self):
        """1.x thin_restore of our shared XML, dumped by 1.x thin_dump: XML
        written by the 1.x tools themselves, with their <def> names."""
        if self._onex_xml is None:
            meta = sparse_file(self.path('onex.meta'), self.size)
            r = tools.run(tools.onex('thin_restore') + ['-i', self.xml, '-o',
                                                       meta])
            if r.rc != 0:
                raise AssertionError('1.x thin_restore of the shared XML '
                                     'failed\n' + r.describe())
            r = tools.run(tools.onex('thin_dump') + [meta])
            if r.rc != 0:
                raise AssertionError('1.x thin_dump failed\n' + r.describe())
            path = self.path('onex.xml')
            with open(path, 'wb') as f:
                f.write(r.stdout)
            self._onex_xml = path
        return self._onex_xml

    def restored(self, key, xml, argv0=(OUR_RESTORE,)):
        """A restore of xml (cached under key); returns (Result, path)."""
        got = _memo.get(('shared', key))
        if got is None:
            out = sparse_file(self.path(key + '.meta'), self.size)
            r = tools.run(list(argv0) + ['-i', xml, '-o', out],
                          timeout=BIG_TIMEOUT)
            got = (r, out)
            _memo[('shared', key)] = got
        return got


CHECKERS = [([OUR_CHECK], 'our thin_check'),
            ([DEBIAN_CHECK], 'Debian thin_check'),
            (tools.onex('thin_check'), '1.x thin_check')]


class TestRestore1xDialect(ToolTestCase):
    def check_clean(self, meta):
        for argv, what in CHECKERS:
            r = self.run_tool(argv + [meta])
            self.assertExit(r, 0, '%s on %s' % (what, os.path.basename(meta)))

    def dumps_as(self, meta, expected, what):
        for dump in (DEBIAN_DUMP, OUR_DUMP):
            r = self.run_tool([dump, meta])
            self.assertExit(r, 0, dump)
            self.assertSameBytes(r.stdout, expected, '%s: %s' % (dump, what))

    def test_generator_sanity(self):
        """The shared XML is what the 1.x tools restore to the same pool,
        and their dump of it uses <def>/<ref>; Debian rejects <def>."""
        s = Shared.get()
        self.assertGreaterEqual(s.pool.nr_refs(), 15)
        r, meta = s.restored('onex_of_shared', s.xml,
                             tools.onex('thin_restore'))
        self.assertExit(r, 0, '1.x thin_restore')
        self.dumps_as(meta, s.expected, '1.x restore of the shared XML')
        with open(s.onex_xml(), 'rb') as f:
            text = f.read()
        self.assertIn(b'<def name=', text)
        self.assertIn(b'<ref name=', text)
        out = sparse_file(s.path('debian-def.meta'), s.size)
        r = self.run_tool([DEBIAN_RESTORE, '-i', s.xml, '-o', out])
        self.assertExitNonZero(r, 'Debian thin_restore rejects <def>')

    def test_shared_xml(self):
        """Our XML with shared sections: checks clean, dumps expanded."""
        s = Shared.get()
        r, meta = s.restored('ours_of_shared', s.xml)
        self.assertExit(r, 0)
        self.assertEqual(r.stdout + r.stderr, b'')
        self.dumps_as(meta, s.expected, 'our restore of the shared XML')
        self.check_clean(meta)

    def test_onex_xml(self):
        """XML written by 1.x thin_dump: checks clean, dumps as 1.x's own
        restore of it does, and as the model says."""
        s = Shared.get()
        xml = s.onex_xml()
        r, meta = s.restored('ours_of_onex', xml)
        self.assertExit(r, 0)
        self.assertEqual(r.stdout + r.stderr, b'')
        self.check_clean(meta)
        r2, theirs = s.restored('onex_of_onex', xml,
                                tools.onex('thin_restore'))
        self.assertExit(r2, 0, '1.x thin_restore of its own dump')
        d = self.run_tool([DEBIAN_DUMP, theirs])
        self.assertExit(d, 0)
        self.assertSameBytes(d.stdout, s.expected,
                             '1.x round trip of its dump vs the model')
        self.dumps_as(meta, d.stdout, 'our restore of the 1.x XML')

    def shared_vs_unshared(self, key, xml):
        s = Shared.get()
        r, shared = s.restored(key, xml)
        self.assertExit(r, 0)
        r, ours_flat = s.restored('ours_of_expanded', s.expanded_xml)
        self.assertExit(r, 0, 'our restore of the expanded XML')
        r, debian_flat = s.restored('debian_of_expanded', s.expanded_xml,
                                    (DEBIAN_RESTORE,))
        self.assertExit(r, 0, 'Debian restore of the expanded XML')
        self.dumps_as(ours_flat, s.expected, 'our restore, expanded XML')
        n_shared = md_allocated(shared)
        n_flat = md_allocated(ours_flat)
        n_debian = md_allocated(debian_flat)
        detail = ('metadata blocks in use: %d with shared leaves, %d for our '
                  'restore of the expanded XML, %d for Debian\'s' % (
                      n_shared, n_flat, n_debian))
        self.assertLess(n_shared * 2, n_flat, detail)
        self.assertLess(n_shared * 2, n_debian, detail)
        # thin_check (ours and 1.x) print the free count: nr_blocks - used
        nr = os.path.getsize(shared) // metadata.BLOCK_SIZE
        for argv, what in CHECKERS[::2]:
            c = self.run_tool(argv + [shared])
            self.assertExit(c, 0, what)
            self.assertIn('METADATA_FREE_BLOCKS=%d' % (nr - n_shared), c.out,
                          '%s: %s' % (what, detail))
        return shared

    def test_leaves_shared(self):
        """Shared sections are written once: far fewer metadata blocks
        than the same pool without sharing; 1.x sees the sharing (its dump
        has <def>s)."""
        s = Shared.get()
        shared = self.shared_vs_unshared('ours_of_shared', s.xml)
        r = self.run_tool(tools.onex('thin_dump') + [shared])
        self.assertExit(r, 0, '1.x thin_dump of our restore')
        self.assertIn(b'<ref name=', r.stdout,
                      '1.x thin_dump finds no shared leaves in our restore')

    def test_leaves_shared_onex_xml(self):
        s = Shared.get()
        self.shared_vs_unshared('ours_of_onex', s.onex_xml())

    def small_xml(self, body, name='x.xml'):
        path = os.path.join(tools.temp_dir(), name)
        with open(path, 'w') as f:
            f.write('<superblock uuid="" time="2" transaction="3" '
                    'data_block_size="128" nr_data_blocks="100000">\n')
            f.write(body)
            f.write('</superblock>\n')
        return path

    DEF_A = ('  <def name="a">\n'
             '    <range_mapping origin_begin="0" data_begin="0" '
             'length="1000" time="0"/>\n'
             '  </def>\n')

    def test_unreferenced_and_empty_defs(self):
        """A def no device refers to leaves nothing behind (no leaked
        metadata or data blocks); an empty def adds nothing."""
        xml = self.small_xml(
            self.DEF_A +
            '  <def name="unused">\n'
            '    <range_mapping origin_begin="0" data_begin="2000" '
            'length="3000" time="0"/>\n  </def>\n'
            '  <def name="empty">\n  </def>\n'
            '  <device dev_id="0" mapped_blocks="1000" transaction="0" '
            'creation_time="0" snap_time="1">\n'
            '    <ref name="empty"/>\n    <ref name="a"/>\n'
            '    <ref name="empty"/>\n  </device>\n'
            '  <device dev_id="1" mapped_blocks="0" transaction="0" '
            'creation_time="0" snap_time="1">\n'
            '    <ref name="empty"/>\n  </device>\n')
        out = os.path.join(tools.temp_dir(), 'o.meta')
        r = restore(xml, out, size=8 << 20)
        self.assertExit(r, 0)
        self.check_clean(out)
        model = poolgen.Pool('x', time=2, transaction=3, nr_data_blocks=100000,
                             devices=[poolgen.Device(0, 0, 0, 1,
                                                     [(0, 0, 1000, 0)]),
                                      poolgen.Device(1, 0, 0, 1)])
        self.dumps_as(out, model.expected_xml(), 'dump')
        self.assertEqual(superblock(out).data_sm.nr_allocated, 1000,
                         'data blocks of the unreferenced def are free')

    def test_def_contiguous_with_private_runs(self):
        """Private runs around a ref, contiguous with it: one range in the
        dump, leaves shared or not."""
        xml = self.small_xml(
            self.DEF_A +
            '  <device dev_id="4" mapped_blocks="1" transaction="0" '
            'creation_time="0" snap_time="1">\n'
            '    <ref name="a"/>\n'
            '    <range_mapping origin_begin="1000" data_begin="1000" '
            'length="24" time="0"/>\n  </device>\n'
            '  <device dev_id="6" mapped_blocks="1" transaction="0" '
            'creation_time="0" snap_time="1">\n'
            '    <ref name="a"/>\n  </device>\n')
        out = os.path.join(tools.temp_dir(), 'o.meta')
        r = restore(xml, out, size=8 << 20)
        self.assertExit(r, 0)
        self.check_clean(out)
        model = poolgen.Pool('x', time=2, transaction=3, nr_data_blocks=100000,
                             devices=[poolgen.Device(4, 0, 0, 1,
                                                     [(0, 0, 1024, 0)]),
                                      poolgen.Device(6, 0, 0, 1,
                                                     [(0, 0, 1000, 0)])])
        self.dumps_as(out, model.expected_xml(), 'dump')

    def test_exact_size_alternating_refs(self):
        """3 devices alternating a private mapping and a ref to a
        one-mapping def, 2,000 times each (under one metadata bitmap's
        worth): the size announced by the too-small message is enough,
        and not wildly more than used."""
        d = tools.temp_dir()
        n = 2000
        body = []
        for i in range(n):
            body.append('  <def name="d%d"><single_mapping origin_block="%d"'
                        ' data_block="%d" time="0"/></def>\n'
                        % (i, 2 * i + 1, 2 * i + 1))
        runs = {}
        for dev in range(3):
            body.append(DEV % dev)
            runs[dev] = []
            for i in range(n):
                body.append(single(2 * i, 50000 + 3 * i + dev, 1)
                            + '    <ref name="d%d"/>\n' % i)
                runs[dev] += [(2 * i, 50000 + 3 * i + dev, 1, 1),
                              (2 * i + 1, 2 * i + 1, 1, 0)]
            body.append(END_DEV)
        xml = self.small_xml(''.join(body))
        model = poolgen.Pool('x', time=2, transaction=3,
                             nr_data_blocks=100000, devices=[
                                 poolgen.Device(dev, runs=runs[dev])
                                 for dev in range(3)])
        r, need = announced_need(xml, os.path.join(d, 'small.meta'))
        self.assertExit(r, 1)
        self.assertIsNotNone(need, r.describe())
        used, out = restore_exact(self, xml, need, d)
        self.check_clean(out)
        self.dumps_as(out, model.expected_xml(), 'dump')
        # each def is built as a tree of its own, which lives until the
        # end of the transaction (its leaf is copied into the devices,
        # being under a third full): the peak is used + n def leaves
        assert_need_sane(self, need, used + n)

    def dialect_failure(self, body, patterns):
        xml = self.small_xml(body)
        out = os.path.join(tools.temp_dir(), 'o.meta')
        tools.sparse_copy(pools.get('empty_devices').meta, out)
        digest = tools.file_digest(out)
        r = self.run_tool([OUR_RESTORE, '-i', xml, '-o', out])
        self.assertExit(r, 1)
        self.assertMentions(r.err, patterns)
        self.assertEqual(len(r.err.strip().splitlines()), 1,
                         'one line on stderr')
        self.assertUnchanged(out, digest, 'output')

    def test_ref_to_undefined_def(self):
        self.dialect_failure(
            '  <device dev_id="0" mapped_blocks="0" transaction="0" '
            'creation_time="0" snap_time="0">\n    <ref name="nope"/>\n'
            '  </device>\n', [r"undefined def 'nope'"])

    def test_ref_inside_def(self):
        self.dialect_failure(self.DEF_A + '  <def name="b">\n'
                             '    <ref name="a"/>\n  </def>\n',
                             [r'<ref> inside <def>'])

    def test_def_defined_twice(self):
        self.dialect_failure(self.DEF_A + self.DEF_A,
                             [r"def 'a' is already defined"])

    def test_def_without_name(self):
        self.dialect_failure('  <def>\n  </def>\n',
                             [r"missing attribute 'name'"])

    def test_ref_overlapping_mappings(self):
        """A ref whose origins are not after the device's previous mapping."""
        self.dialect_failure(
            self.DEF_A +
            '  <device dev_id="0" mapped_blocks="0" transaction="0" '
            'creation_time="0" snap_time="0">\n'
            '    <single_mapping origin_block="500" data_block="5000" '
            'time="0"/>\n    <ref name="a"/>\n  </device>\n',
            [r"ref 'a'.*ascending origin order"])

    def test_same_ref_twice(self):
        self.dialect_failure(
            self.DEF_A +
            '  <device dev_id="0" mapped_blocks="0" transaction="0" '
            'creation_time="0" snap_time="0">\n'
            '    <ref name="a"/>\n    <ref name="a"/>\n  </device>\n',
            [r"ref 'a'.*ascending origin order"])

    def test_def_beyond_data_device(self):
        self.dialect_failure(
            '  <def name="a">\n    <single_mapping origin_block="0" '
            'data_block="100000" time="0"/>\n  </def>\n',
            [r'mapping beyond end of data device \(100000 >= 100000\)'])


# ----------------------------------------------------------------
# Options

def run_with_tty_stderr(argv, timeout=30.0):
    """Run argv with stderr on a pseudo-terminal; returns (rc, stdout,
    what the terminal received)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=slave,
                         start_new_session=True)
    os.close(slave)
    got = []
    deadline = time.monotonic() + tools.scaled(timeout)
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.killpg(p.pid, signal.SIGKILL)
                raise tools.CommandFailure('timed out: %s' % argv)
            ready, _, _ = select.select([master], [], [], min(left, 0.5))
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:         # EIO: the slave side is closed
                    break
                if not data:
                    break
                got.append(data)
            elif p.poll() is not None:
                break
        out = p.stdout.read()
        rc = p.wait(timeout=tools.scaled(timeout))
    finally:
        os.close(master)
        p.stdout.close()
    if rc < 0:
        raise tools.CommandFailure('killed by signal %d: %s' % (-rc, argv))
    return rc, out, b''.join(got)


class TestRestoreOptions(ToolTestCase):
    POOL = 'snapshots'

    def restore_with(self, extra, pool=None):
        fx = pools.get(pool or self.POOL)
        out = os.path.join(tools.temp_dir(), 'o.meta')
        r = restore(fx.xml, out, extra, size=os.path.getsize(fx.meta))
        return r, out

    def assertDumps(self, out, expected):
        for dump in (DEBIAN_DUMP, OUR_DUMP):
            r = self.run_tool([dump, out], timeout=BIG_TIMEOUT)
            self.assertExit(r, 0, dump)
            self.assertSameBytes(r.stdout, expected, '%s output' % dump)

    def assertChecksClean(self, out):
        for argv, what in CHECKERS:
            r = self.run_tool(argv + [out], timeout=BIG_TIMEOUT)
            self.assertExit(r, 0, what)

    def model(self, pool=None):
        return canonical(pools.get(pool or self.POOL).model)

    def test_transaction_id(self):
        r, out = self.restore_with(['--transaction-id', '123456789012'])
        self.assertExit(r, 0)
        self.assertDumps(out, self.model().expected_xml(
            transaction=123456789012))
        self.assertChecksClean(out)

    def test_transaction_id_largest(self):
        r, out = self.restore_with(['--transaction-id', str((1 << 64) - 1)])
        self.assertExit(r, 0)
        self.assertDumps(out, self.model().expected_xml(
            transaction=(1 << 64) - 1))

    def test_data_block_size(self):
        r, out = self.restore_with(['--data-block-size', '2048'])
        self.assertExit(r, 0)
        m = self.model()
        m.data_block_size = 2048
        self.assertDumps(out, m.expected_xml())
        self.assertChecksClean(out)

    def test_nr_data_blocks(self):
        m = self.model()
        n = m.nr_data_blocks + 100000
        r, out = self.restore_with(['--nr-data-blocks', str(n)])
        self.assertExit(r, 0)
        self.assertDumps(out, m.expected_xml(nr_data_blocks=n))
        self.assertChecksClean(out)

    def test_nr_data_blocks_just_enough(self):
        m = self.model()
        n = max(b for b in m.data_block_refs()) + 1
        r, out = self.restore_with(['--nr-data-blocks', str(n)])
        self.assertExit(r, 0)
        self.assertDumps(out, m.expected_xml(nr_data_blocks=n))
        self.assertChecksClean(out)

    def test_all_overrides(self):
        m = self.model()
        m.data_block_size = 256
        n = m.nr_data_blocks + 1
        r, out = self.restore_with(['--nr-data-blocks', str(n),
                                    '--data-block-size', '256',
                                    '--transaction-id', '7'])
        self.assertExit(r, 0)
        self.assertDumps(out, m.expected_xml(nr_data_blocks=n, transaction=7))

    def test_long_options(self):
        fx = pools.get(self.POOL)
        out = sparse_file(os.path.join(tools.temp_dir(), 'o.meta'),
                          os.path.getsize(fx.meta))
        r = self.run_tool([OUR_RESTORE, '--input', fx.xml, '--output', out,
                           '--quiet'])
        self.assertExit(r, 0)
        self.assertDumps(out, self.model().expected_xml())

    def test_quiet_silent(self):
        r, out = self.restore_with(['-q'])
        self.assertExit(r, 0)
        self.assertEqual(r.stdout + r.stderr, b'')
        self.assertDumps(out, self.model().expected_xml())

    def test_quiet_on_a_terminal(self):
        """On a terminal a progress bar is drawn; -q silences it."""
        fx = pools.get(self.POOL)
        out = sparse_file(os.path.join(tools.temp_dir(), 'o.meta'),
                          os.path.getsize(fx.meta))
        rc, stdout, tty = run_with_tty_stderr(
            [OUR_RESTORE, '-i', fx.xml, '-o', out])
        self.assertEqual(rc, 0, tty)
        self.assertEqual(stdout, b'')
        self.assertIn(b'100%', tty, 'progress on the terminal')
        rc, stdout, tty = run_with_tty_stderr(
            [OUR_RESTORE, '-q', '-i', fx.xml, '-o', out])
        self.assertEqual(rc, 0, tty)
        self.assertEqual(stdout + tty, b'', '-q prints nothing')
        self.assertDumps(out, self.model().expected_xml())

    def test_deterministic(self):
        """Two restores of one XML write the same bytes."""
        _, first = restored(self.POOL)
        r, out = self.restore_with([])
        self.assertExit(r, 0)
        self.assertEqual(tools.file_digest(out), tools.file_digest(first))

    def test_io_engine_bad(self):
        r, out = self.restore_with(['--io-engine', 'carrier-pigeon'])
        self.assertExit(r, 1)
        self.assertMentions(r.err, [r'carrier-pigeon'])

    def test_mapped_blocks_recomputed(self):
        """A wrong mapped_blocks attribute: the count of the mappings is
        written (the 1.x checker compares them)."""
        fx = pools.get('many_devices')
        with open(fx.xml) as f:
            text = f.read()
        text = re.sub(r'mapped_blocks="\d+"', 'mapped_blocks="7"', text)
        xml = os.path.join(tools.temp_dir(), 'wrong.xml')
        with open(xml, 'w') as f:
            f.write(text)
        out = os.path.join(tools.temp_dir(), 'o.meta')
        r = restore(xml, out, size=os.path.getsize(fx.meta))
        self.assertExit(r, 0)
        self.assertDumps(out, canonical(fx.model).expected_xml())
        self.assertChecksClean(out)

    def test_metadata_snap_attribute_dropped(self):
        fx = pools.get('mixed')
        with open(fx.xml) as f:
            text = f.read()
        text = text.replace('<superblock ', '<superblock metadata_snap="9" ',
                            1)
        xml = os.path.join(tools.temp_dir(), 'snap.xml')
        with open(xml, 'w') as f:
            f.write(text)
        out = os.path.join(tools.temp_dir(), 'o.meta')
        r = restore(xml, out, size=os.path.getsize(fx.meta))
        self.assertExit(r, 0)
        self.assertEqual(superblock(out).metadata_snap, 0)
        self.assertChecksClean(out)

    def test_previous_contents_ignored(self):
        """The output held other metadata (and garbage): all replaced."""
        fx = pools.get(self.POOL)
        out = os.path.join(tools.temp_dir(), 'o.meta')
        tools.sparse_copy(pools.get('mixed').meta, out)
        size = os.path.getsize(out)
        with open(out, 'r+b') as f:          # garbage in the second half
            f.seek(size // 2)
            f.write(b'\xa5' * (size // 2))
        r = restore(fx.xml, out)
        self.assertExit(r, 0)
        self.assertDumps(out, self.model().expected_xml())
        self.assertChecksClean(out)

    def test_help(self):
        r = self.run_tool([OUR_RESTORE, '-h'])
        self.assertExit(r, 0)
        self.assertIn('Usage', r.out)
        self.assertIn('--nr-data-blocks', r.out)

    def test_version(self):
        r = self.run_tool([OUR_RESTORE, '-V'])
        self.assertExit(r, 0)
        self.assertNonEmpty(r.out, 'stdout')


# ----------------------------------------------------------------
# Inputs and outputs that must work

class TestRestoreInputs(ToolTestCase):
    def restore_text(self, text, size=8 << 20):
        d = tools.temp_dir()
        xml = os.path.join(d, 'in.xml')
        with open(xml, 'wb' if isinstance(text, bytes) else 'w') as f:
            f.write(text)
        out = sparse_file(os.path.join(d, 'o.meta'), size)
        return restore(xml, out), out

    def assertRestoresAs(self, text, model):
        r, out = self.restore_text(text)
        self.assertExit(r, 0)
        for dump in (DEBIAN_DUMP, OUR_DUMP):
            d = self.run_tool([dump, out])
            self.assertExit(d, 0, dump)
            self.assertSameBytes(d.stdout, model.expected_xml(), dump)
        for argv, what in CHECKERS:
            self.assertExit(self.run_tool(argv + [out]), 0, what)
        return out

    SMALL = poolgen.Pool('small', time=4, transaction=1, nr_data_blocks=100,
                         devices=[poolgen.Device(0, 2, 1, 3,
                                                 [(0, 1, 1, 0),
                                                  (5, 10, 2, 3)])])

    SYNTAX = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!-- written by hand -->\n'
        "<superblock data_block_size='128' nr_data_blocks=\"100\" uuid=\"\" "
        'time="4" transaction="1" extra="ignored">\n'
        '  <!-- inside -->\n'
        '  <device snap_time="3" dev_id="0" mapped_blocks="99" '
        'transaction="2" creation_time="1" other="x">\n'
        '    <single_mapping time="0" data_block="1" origin_block="0"/>\n'
        '    <range_mapping origin_begin="5" data_begin="10" length="2" '
        'time="3"></range_mapping>\n'
        '  </device>\n'
        '</superblock>')

    def test_xml_syntax(self):
        """XML declaration, comments, single quotes, any attribute order,
        unknown attributes (ignored, as v0.9 does), explicit end tags, no
        final newline."""
        self.assertRestoresAs(self.SYNTAX, self.SMALL)

    def test_crlf_line_ends(self):
        self.assertRestoresAs(self.SYNTAX.replace('\n', '\r\n'), self.SMALL)

    def test_range_of_length_one(self):
        text = self.SMALL.expected_xml().decode().replace(
            '<single_mapping origin_block="0" data_block="1" time="0"/>',
            '<range_mapping origin_begin="0" data_begin="1" length="1" '
            'time="0"/>')
        self.assertRestoresAs(text, self.SMALL)

    def test_long_uuid(self):
        """A uuid longer than the 16 bytes of the superblock field (a
        textual UUID): Debian 0.9 and 1.x restore such XML; ours writes
        an empty uuid anyway, so it has no reason to refuse it."""
        text = self.SMALL.expected_xml().decode().replace(
            'uuid=""', 'uuid="2f1c8a9e-1b7d-4c3e-9a55-0123456789ab"')
        out = self.assertRestoresAs(text, self.SMALL)
        self.assertEqual(bytes(superblock(out).raw[16:32]), bytes(16))

    def test_no_data_blocks(self):
        """nr_data_blocks 0 and empty devices."""
        model = poolgen.Pool('none', time=0, transaction=1, nr_data_blocks=0,
                             devices=[poolgen.Device(3), poolgen.Device(9)])
        self.assertRestoresAs(model.expected_xml(), model)

    def test_output_larger_than_maximum(self):
        """A 17 GiB (sparse) output: the metadata space map stops at
        4,161,600 blocks, as the kernel's does."""
        fx = pools.get('snapshots')
        out = os.path.join(tools.temp_dir(), 'huge.meta')
        r = restore(fx.xml, out, size=17 << 30)
        self.assertExit(r, 0)
        sb = superblock(out)
        self.assertEqual(sb.metadata_nr_blocks, poolgen.MAX_METADATA_BLOCKS)
        self.assertEqual(sb.metadata_sm.nr_blocks,
                         poolgen.MAX_METADATA_BLOCKS)
        self.assertEqual(os.path.getsize(out), 17 << 30, 'output resized')
        for argv, what in CHECKERS:
            self.assertExit(self.run_tool(argv + [out]), 0, what)
        d = self.run_tool([DEBIAN_DUMP, out])
        self.assertSameBytes(d.stdout, expected_xml('snapshots'))


# ----------------------------------------------------------------
# Failures

HEADER = ('<superblock uuid="" time="0" transaction="1" data_block_size="128" '
          'nr_data_blocks="100">\n')
DEV = ('  <device dev_id="%d" mapped_blocks="0" transaction="0" '
       'creation_time="0" snap_time="0">\n')
END_DEV = '  </device>\n'
END = '</superblock>\n'


def single(o, d, t=0):
    return ('    <single_mapping origin_block="%d" data_block="%d" '
            'time="%d"/>\n' % (o, d, t))


class TestRestoreFailures(ToolTestCase):
    """exit 1, one line on stderr naming the problem, output untouched
    (the error is found before anything is written), stdout empty."""

    def setUp(self):
        self.dir = tools.temp_dir('fail-')
        # a valid pool in the output: any write would show
        self.out = os.path.join(self.dir, 'out.meta')
        tools.sparse_copy(pools.get('empty_devices').meta, self.out)
        self.digest = tools.file_digest(self.out)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, 'wb' if isinstance(text, bytes) else 'w') as f:
            f.write(text)
        return path

    def fails(self, argv, patterns, one_line=True, out=None):
        r = self.run_tool([OUR_RESTORE] + argv, timeout=BIG_TIMEOUT)
        self.assertExit(r, 1)
        self.assertEqual(r.stdout, b'', 'nothing on stdout')
        self.assertNonEmpty(r.err)
        lines = r.err.strip().splitlines()
        if one_line:
            self.assertEqual(len(lines), 1, 'one line on stderr:\n' + r.err)
        self.assertMentions(lines[0], patterns, 'first line of stderr')
        self.assertUnchanged(out or self.out, self.digest, 'output')
        return r

    def xml_fails(self, text, patterns):
        xml = self.write('in.xml', text)
        r = self.fails(['-i', xml, '-o', self.out], patterns)
        self.assertIn(xml, r.err, 'the message names the input')
        return r

    # -- files
    def test_input_missing(self):
        xml = os.path.join(self.dir, 'absent.xml')
        r = self.fails(['-i', xml, '-o', self.out], [r'No such file'])
        self.assertIn(xml, r.err)

    def test_input_directory(self):
        r = self.fails(['-i', self.dir, '-o', self.out], [r'directory'])
        self.assertIn(self.dir, r.err)

    def test_output_missing(self):
        fx = pools.get('snapshots')
        out = os.path.join(self.dir, 'absent.meta')
        r = self.fails(['-i', fx.xml, '-o', out], [r'does not exist'])
        self.assertIn(out, r.err)
        self.assertFalse(os.path.exists(out), 'the output was created')

    def test_output_directory(self):
        fx = pools.get('snapshots')
        r = self.fails(['-i', fx.xml, '-o', self.dir], [r'directory'])
        self.assertIn(self.dir, r.err)

    def test_output_is_input(self):
        xml = self.write('in.xml', pools.get('snapshots').model.expected_xml())
        digest = tools.file_digest(xml)
        self.fails(['-i', xml, '-o', xml], [r'output is the input'])
        self.assertUnchanged(xml, digest, 'input')

    def test_output_is_input_hard_link(self):
        xml = self.write('in.xml', pools.get('snapshots').model.expected_xml())
        link = os.path.join(self.dir, 'link.meta')
        os.link(xml, link)
        digest = tools.file_digest(xml)
        self.fails(['-i', xml, '-o', link], [r'output is the input'])
        self.assertUnchanged(xml, digest, 'input')

    def test_output_is_input_symlink(self):
        xml = self.write('in.xml', pools.get('snapshots').model.expected_xml())
        link = os.path.join(self.dir, 'link.meta')
        os.symlink(xml, link)
        digest = tools.file_digest(xml)
        self.fails(['-i', link, '-o', xml], [r'output is the input'])
        self.assertUnchanged(xml, digest, 'input')

    def test_output_empty(self):
        fx = pools.get('snapshots')
        out = sparse_file(os.path.join(self.dir, 'empty.meta'), 0)
        self.digest = tools.file_digest(out)
        self.fails(['-i', fx.xml, '-o', out], [r'too small', r'zero size'],
                   out=out)

    def too_small(self, xml):
        """Refused in a 10-block output (filled with a pattern), naming the
        size it needs; an output of that size is enough.  Returns (blocks
        needed, blocks used, output of that size)."""
        out = os.path.join(self.dir, 'small.meta')
        r, need = announced_need(xml, out)
        self.assertExit(r, 1)
        self.assertEqual(r.stdout, b'')
        self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
        self.assertMentions(r.err, [r'too small'])
        m = re.search(r'needs (\d+) blocks of 4 KiB \((\d+) KiB\)', r.err)
        self.assertTrue(m, 'the message says how much is needed:\n' + r.err)
        self.assertEqual(int(m.group(2)), need * 4, 'KiB = 4 * blocks')
        self.assertIn(out, r.err, 'the message names the output')
        self.assertEqual(tools.file_digest(out), small_digest(),
                         'the too small output was written to')
        used, ok = restore_exact(self, xml, need, self.dir)
        assert_need_sane(self, need, used)
        return need, used, ok

    def test_output_too_small(self):
        fx = pools.get('snapshots')
        need, used, ok = self.too_small(fx.xml)
        r = self.run_tool([DEBIAN_DUMP, ok])
        self.assertSameBytes(r.stdout, canonical(fx.model).expected_xml())
        for argv, what in CHECKERS:
            self.assertExit(self.run_tool(argv + [ok]), 0, what)

    def test_output_too_small_shared(self):
        s = Shared.get()
        need, used, ok = self.too_small(s.xml)
        for argv, what in CHECKERS:
            self.assertExit(self.run_tool(argv + [ok]), 0, what)

    def test_output_too_small_across_bitmap_boundary(self):
        """A pool needing more than one metadata bitmap's worth (16,320
        blocks): 17,000 devices of one mapping.  The announced size must
        itself be enough (it includes the bitmaps of an output that
        large)."""
        xml = os.path.join(self.dir, 'devices.xml')
        model = poolgen.Pool('devices', time=1, transaction=1,
                             nr_data_blocks=20000, devices=[
                                 poolgen.Device(i, runs=[(0, i, 1, 0)])
                                 for i in range(17000)])
        model.write_xml(xml)
        need, used, ok = self.too_small(xml)
        self.assertGreater(need, metadata.ENTRIES_PER_BITMAP)
        r = self.run_tool([OUR_DUMP, ok])
        self.assertSameBytes(r.stdout, canonical(model).expected_xml())

    def test_output_one_block_short(self):
        """One block less than announced is refused (the estimate is what
        is checked), and nothing is written."""
        fx = pools.get('snapshots')
        out = sparse_file(os.path.join(self.dir, 'small.meta'), 40960)
        r = restore(fx.xml, out)
        m = re.search(r'needs (\d+) blocks', r.err)
        self.assertTrue(m, r.describe())
        out = os.path.join(self.dir, 'short.meta')
        tools.sparse_copy(pools.get('empty_devices').meta, out)
        with open(out, 'r+b') as f:
            f.truncate((int(m.group(1)) - 1) * 4096)
        self.digest = tools.file_digest(out)
        self.fails(['-i', fx.xml, '-o', out], [r'too small'], out=out)

    # -- the XML
    def test_malformed_xml(self):
        r = self.xml_fails(HEADER + DEV % 0 + single(0, 1) + '  </devic>\n'
                           + END, [r'line \d+, column \d+'])
        self.assertIn('line 4, column', r.err)

    def test_malformed_xml_truncated(self):
        self.xml_fails(HEADER + DEV % 0 + single(0, 1),
                       [r'line \d+, column \d+'])

    def test_not_xml_text(self):
        self.xml_fails('hello, world\n', [r'line 1, column \d+'])

    def test_malformed_at_the_end_of_a_big_input(self):
        """The whole input is checked before the output is touched, even
        past the first megabytes."""
        fx = pools.get('one_million')
        xml = os.path.join(self.dir, 'big.xml')
        with open(fx.xml, 'rb') as fi, open(xml, 'wb') as fo:
            data = fi.read()
            fo.write(data.replace(b'</superblock>', b'</superblok>'))
        lines = data.count(b'\n')
        tools.sparse_copy(pools.get('one_million').meta, self.out)
        self.digest = tools.file_digest(self.out)
        r = self.fails(['-i', xml, '-o', self.out], [r'line \d+, column'])
        self.assertIn('line %d,' % lines, r.err)

    def test_mapping_beyond_data_device(self):
        self.xml_fails(HEADER + DEV % 0 + single(0, 99) + single(1, 100)
                       + END_DEV + END,
                       [r'mapping beyond end of data device \(100 >= 100\)'])

    def test_range_beyond_data_device(self):
        self.xml_fails(HEADER + DEV % 0 + '    <range_mapping origin_begin="0"'
                       ' data_begin="90" length="11" time="0"/>\n'
                       + END_DEV + END,
                       [r'mapping beyond end of data device \(100 >= 100\)'])

    def test_range_of_length_zero(self):
        self.xml_fails(HEADER + DEV % 0 + '    <range_mapping origin_begin="0"'
                       ' data_begin="9" length="0" time="0"/>\n'
                       + END_DEV + END, [r'length 0'])

    def test_number_too_large(self):
        self.xml_fails(HEADER.replace('transaction="1"',
                                      'transaction="%d"' % (1 << 64)) + END,
                       [r"transaction.*does not fit in 64 bits"])

    def test_input_pipe(self):
        """-i /dev/fd/N, a pipe (as with -i <(zcat dump.xml.gz)): either
        restored, or refused before the output is touched with a message
        that says what is wrong (Debian: "Not a regular file").  The
        input cannot be read twice."""
        fx = pools.get('snapshots')
        with open(fx.xml, 'rb') as f:
            data = f.read()
        rfd, wfd = os.pipe()

        def feed():
            try:
                with os.fdopen(wfd, 'wb') as w:
                    w.write(data)
            except OSError:             # the reader went away early
                pass

        path = '/dev/fd/%d' % rfd
        try:
            p = subprocess.Popen([OUR_RESTORE, '-i', path, '-o', self.out],
                                 stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, pass_fds=(rfd,),
                                 start_new_session=True)
        finally:
            os.close(rfd)
        t = threading.Thread(target=feed, daemon=True)
        t.start()
        try:
            stdout, stderr = p.communicate(timeout=tools.scaled(30))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            self.fail('thin_restore -i PIPE hangs')
        t.join(tools.scaled(10))
        err = stderr.decode(errors='replace')
        self.assertGreaterEqual(p.returncode, 0, 'killed by a signal')
        if p.returncode == 0:
            r = self.run_tool([DEBIAN_DUMP, self.out])
            self.assertSameBytes(r.stdout, expected_xml('snapshots'))
            return
        self.assertEqual(p.returncode, 1, err)
        if tools.file_digest(self.out) != self.digest:
            self.fail('the output was written to (block 0 zeroed) although '
                      'the pipe could be refused before writing; stderr: '
                      + err.strip())
        self.assertIn(path, err, 'the message names the input')
        self.assertNotIn('empty', err, 'the input was not empty')

    def test_unknown_element(self):
        self.xml_fails(HEADER + DEV % 0 + '    <mapping/>\n' + END_DEV + END,
                       [r"unknown tag type 'mapping'"])

    def test_missing_attribute(self):
        self.xml_fails(HEADER + DEV % 0 + '    <single_mapping '
                       'origin_block="0" time="0"/>\n' + END_DEV + END,
                       [r"missing attribute 'data_block'"])

    def test_missing_superblock_attribute(self):
        self.xml_fails('<superblock uuid="" time="0" transaction="1" '
                       'data_block_size="128">\n' + END,
                       [r"missing attribute 'nr_data_blocks'"])

    def test_bad_number(self):
        self.xml_fails(HEADER + DEV % 0 + single(0, 1).replace('"1"', '"1x"')
                       + END_DEV + END, [r"not an unsigned decimal"])

    def test_time_too_large(self):
        self.xml_fails(HEADER + DEV % 0 + single(0, 1, 1 << 24) + END_DEV
                       + END, [r"time.*does not fit in 24 bits"])

    def test_duplicate_dev_id(self):
        self.xml_fails(HEADER + DEV % 3 + END_DEV + DEV % 3 + END_DEV + END,
                       [r'Device already exists'])

    def test_devices_out_of_order(self):
        self.xml_fails(HEADER + DEV % 3 + END_DEV + DEV % 2 + END_DEV + END,
                       [r'ascending dev_id order'])

    def test_mappings_out_of_order(self):
        self.xml_fails(HEADER + DEV % 0 + single(5, 1) + single(4, 2)
                       + END_DEV + END, [r'ascending origin order'])

    def test_mapping_not_in_device(self):
        self.xml_fails(HEADER + single(0, 1) + END, [r'not in device'])

    def test_device_without_superblock(self):
        self.xml_fails(DEV % 0 + END_DEV, [r'missing superblock'])

    def test_invalid_data_block_size(self):
        self.xml_fails(HEADER.replace('"128"', '"100"') + END,
                       [r'invalid data block size'])

    def test_invalid_data_block_size_option(self):
        fx = pools.get('snapshots')
        self.fails(['-i', fx.xml, '-o', self.out, '--data-block-size', '64'],
                   [r'invalid data block size'])

    def test_nr_data_blocks_option_too_small(self):
        fx = pools.get('snapshots')
        self.fails(['-i', fx.xml, '-o', self.out, '--nr-data-blocks', '100'],
                   [r'mapping beyond end of data device \(\d+ >= 100\)'])

    def test_bad_transaction_id_option(self):
        fx = pools.get('snapshots')
        self.fails(['-i', fx.xml, '-o', self.out, '--transaction-id', 'x'],
                   [r'transaction'])

    def test_binary_metadata_as_input(self):
        meta = pools.get('mixed').meta
        self.fails(['-i', meta, '-o', self.out], [r'binary metadata'])

    def test_binary_garbage_as_input(self):
        path = self.write('garbage.xml', b'<superblock\0\x01\x02' * 100)
        self.fails(['-i', path, '-o', self.out], [r'not XML', r'binary'])

    def test_empty_input(self):
        path = self.write('empty.xml', '')
        r = self.fails(['-i', path, '-o', self.out], [r'empty'])
        self.assertIn(path, r.err)

    # -- the command line
    def test_no_input(self):
        self.fails(['-o', self.out], [r'No input file'], one_line=False)

    def test_no_output(self):
        fx = pools.get('snapshots')
        self.fails(['-i', fx.xml], [r'No output file'], one_line=False)

    def test_unknown_option(self):
        fx = pools.get('snapshots')
        self.fails(['--frobnicate', '-i', fx.xml, '-o', self.out],
                   [r'unrecognized option.*frobnicate',
                    r'unknown option.*frobnicate'], one_line=False)

    def test_extra_argument(self):
        fx = pools.get('snapshots')
        self.fails(['-i', fx.xml, '-o', self.out, 'stray'], [r'stray'],
                   one_line=False)

    # -- failure while writing
    def write_failure(self, engine):
        """Writes beyond 128 KiB fail (RLIMIT_FSIZE): exit 1 naming the
        write error, block 0 of the output zeroed."""
        fx = pools.get('mixed')

        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (128 << 10, 128 << 10))

        self.assertNotEqual(tools.read_block(self.out, 0), bytes(4096))
        r = self.run_tool([OUR_RESTORE, '-i', fx.xml, '-o', self.out,
                           '--io-engine', engine], preexec_fn=limit)
        self.assertExit(r, 1)
        self.assertEqual(len(r.err.strip().splitlines()), 1, r.err)
        self.assertMentions(r.err, [r'write', r'File too large'])
        self.assertEqual(tools.read_block(self.out, 0), bytes(4096),
                         'block 0 of the output is zeroed after a failed '
                         'write')

    def test_write_failure_sync(self):
        self.write_failure('sync')

    def test_write_failure_async(self):
        if tools.build_is_debian():
            self.skipTest('--io-engine is our extension')
        self.write_failure('async')


# ----------------------------------------------------------------
# Memory

def peak_rss_kib(argv, timeout=BIG_TIMEOUT):
    """(Result, peak RSS in KiB) measured by /usr/bin/time."""
    path = os.path.join(tools.temp_dir(), 'rss')
    r = tools.run(['/usr/bin/time', '-f', '%M', '-o', path] + list(argv),
                  timeout=timeout)
    with open(path) as f:
        return r, int(f.read().split()[-1])


class TestRestoreMemory(ToolTestCase):
    def setUp(self):
        if not os.access('/usr/bin/time', os.X_OK):
            self.skipTest('/usr/bin/time is not installed')

    def rss_of(self, xml, size):
        out = sparse_file(os.path.join(tools.temp_dir(), 'o.meta'), size)
        r, rss = peak_rss_kib([OUR_RESTORE, '-i', xml, '-o', out])
        self.assertExit(r, 0)
        return rss

    def test_streaming_one_million(self):
        """1M mappings (12 MB of XML) restore in modest memory: the input
        is streamed, never held whole (the peaks are in the message)."""
        big = pools.get('one_million')
        small = pools.get('empty_devices')
        rss_big = self.rss_of(big.xml, os.path.getsize(big.meta))
        rss_small = self.rss_of(small.xml, os.path.getsize(small.meta))
        detail = ('peak RSS: %d KiB for one_million, %d KiB for '
                  'empty_devices' % (rss_big, rss_small))
        self.assertLess(rss_big, RSS_LIMIT_KIB, detail)

    def test_streaming_shared(self):
        s = Shared.get()
        rss = self.rss_of(s.xml, s.size)
        self.assertLess(rss, RSS_LIMIT_KIB, 'peak RSS %d KiB' % rss)


if __name__ == '__main__':
    unittest.main()
