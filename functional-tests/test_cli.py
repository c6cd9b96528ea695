# SPDX-License-Identifier: GPL-3.0-or-later
"""One CLI matrix for every command named in $THINP_COMMANDS.

Each command is described by one CommandSpec line in COMMAND_SPECS (how it
takes its input, which kind of input, a valid argument set); the checks of
the matrix are generated for every listed command whose spec allows them,
as tests named TestCli_<command>.test_<check>.  Adding thin_restore,
thin_repair or thin_merge to the matrix is one line here plus the command
name in THINP_COMMANDS.
"""

import os
import pwd
import re
import subprocess
import unittest

from lib import cacheera, pools, snapstore, tools
from lib.testing import ToolTestCase

VERSION_RE = re.compile(r'^\d+\.\d+\.\d+$')
NOT_FOUND = [r'no such file', r'not found']
TOO_SMALL = [r'too small', r'not large enough']


class CommandSpec:
    """input_flag: None when the input is the positional argument, else the
    option naming it ('-i').  input_kind: 'metadata' (binary) or 'xml'.
    input_kind 'snapshot': a dm-snapshot COW store (lib/snapstore.py).
    extra: the other arguments of a valid call; '{output}' becomes a fresh
    pre-allocated output file.  writes_stdout: the command's result goes to
    stdout (a write error there must be reported)."""

    def __init__(self, input_flag=None, input_kind='metadata', extra=(),
                 writes_stdout=False, valid_pool='snapshots',
                 reads_damaged=False):
        self.input_flag = input_flag
        # copies whatever metadata blocks there are (thin_metadata_pack,
        # as 1.x): a zeroed superblock is no error
        self.reads_damaged = reads_damaged
        self.input_kind = input_kind
        self.extra = list(extra)
        self.writes_stdout = writes_stdout
        self.valid_pool = valid_pool

    def argv(self, command_path, input_path, workdir):
        args = [command_path]
        for a in self.extra:
            if a == '{output}':
                a = os.path.join(workdir, 'output.meta')
                with open(a, 'wb') as f:
                    f.truncate(8 << 20)
                os.chmod(a, 0o666)
            elif a in ('{origin}', '{fast}'):
                # sparse data devices of 1 GiB for cache_writeback
                a = os.path.join(workdir, a[1:-1] + '.data')
                with open(a, 'wb') as f:
                    f.truncate(1 << 30)
                os.chmod(a, 0o666)
            args.append(a)
        if input_path is not None and self.input_kind != 'none':
            if self.input_flag:
                args += [self.input_flag, input_path]
            else:
                args.append(input_path)
        return args

    def valid_input(self):
        if self.input_kind == 'snapshot':
            return snapstore.cli_fixture()
        if self.input_kind == 'none':
            return None
        if self.valid_pool in ('cache', 'era'):
            meta, xml = (cacheera.cache_fixture() if self.valid_pool == 'cache'
                         else cacheera.era_fixture())
            return meta if self.input_kind == 'metadata' else xml
        fx = pools.get(self.valid_pool)
        if self.input_kind == 'pack':
            return _pack_of(fx.meta)
        return fx.meta if self.input_kind == 'metadata' else fx.xml


COMMAND_SPECS = {
    'thin_check': CommandSpec(),
    'thin_dump': CommandSpec(writes_stdout=True),
    'thin_ls': CommandSpec(writes_stdout=True),
    'thin_restore': CommandSpec('-i', 'xml', ['-o', '{output}']),
    'thin_repair': CommandSpec('-i', 'metadata', ['-o', '{output}']),
    'thin_merge': CommandSpec('-i', 'metadata',
                              ['-o', '{output}', '--origin', '0']),
    'snapshot_check': CommandSpec(None, 'snapshot'),
    'snapshot_dump': CommandSpec(None, 'snapshot', writes_stdout=True),
    'snapshot_merge': CommandSpec('-i', 'snapshot', ['-o', '{output}']),
    'dm-merge': CommandSpec('-i', 'snapshot', ['-o', '{output}']),
    'thin_delta': CommandSpec(extra=['--thin1', '0', '--thin2', '1'],
                              writes_stdout=True),
    'thin_rmap': CommandSpec(extra=['--region', '0..100'],
                             writes_stdout=True),
    'thin_metadata_pack': CommandSpec('-i', 'metadata', ['-o', '{output}'],
                                      reads_damaged=True),
    'thin_metadata_unpack': CommandSpec('-i', 'pack', ['-o', '{output}']),
    # a pool of 1 MiB of data: {output} (8 MiB) is a large enough data device
    'thin_trim': CommandSpec('--metadata-dev', 'metadata',
                             ['--data-dev', '{output}'],
                             valid_pool='empty_devices'),
    'cache_check': CommandSpec(valid_pool='cache'),
    'cache_dump': CommandSpec(writes_stdout=True, valid_pool='cache'),
    'cache_restore': CommandSpec('-i', 'xml', ['-o', '{output}'], valid_pool='cache'),
    'cache_repair': CommandSpec('-i', 'metadata', ['-o', '{output}'], valid_pool='cache'),
    'cache_metadata_size': CommandSpec(input_kind='none', extra=['--nr-blocks', '1000'],
                                       writes_stdout=True),
    'cache_writeback': CommandSpec('--metadata-device', 'metadata',
                                   ['--origin-device', '{origin}', '--fast-device',
                                    '{fast}', '--no-metadata-update'],
                                   valid_pool='cache'),
    'era_check': CommandSpec(valid_pool='era'),
    'era_dump': CommandSpec(writes_stdout=True, valid_pool='era'),
    'era_restore': CommandSpec('-i', 'xml', ['-o', '{output}'], valid_pool='era'),
    'era_invalidate': CommandSpec(extra=['--written-since', '1'], writes_stdout=True,
                                  valid_pool='era'),
}


_packs = {}


def _pack_of(meta):
    """A pack of meta, made once by 1.x's thin_metadata_pack."""
    if meta not in _packs:
        p = os.path.join(tools.temp_dir('cli-pack-'), 'valid.pack')
        r = tools.run(tools.onex('thin_metadata_pack') + ['-i', meta, '-o', p])
        if r.rc != 0:
            raise RuntimeError('1.x thin_metadata_pack failed: %s' % r.err)
        os.chmod(os.path.dirname(p), 0o755)
        os.chmod(p, 0o644)
        _packs[meta] = p
    return _packs[meta]


def _xml_file(path):
    """An XML pool padded past 4 KiB (so only its content is wrong)."""
    with open(pools.get('empty_devices').xml, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data.ljust(16384, b'\n'))
    return path


# ----------------------------------------------------------------
# Running as an unprivileged user

def _nobody():
    try:
        pw = pwd.getpwnam('nobody')
    except KeyError:
        return None
    return pw.pw_uid, pw.pw_gid


def _drop_to(uid, gid):
    def fn():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    return fn


class CliBase(ToolTestCase):
    command = None      # set by the generated subclasses
    spec = None

    @property
    def path(self):
        return tools.ours(self.command)

    def argv(self, input_path, workdir=None):
        return self.spec.argv(self.path, input_path,
                              workdir or tools.temp_dir())

    # -- help and version
    def _help(self, opt):
        r = self.run_tool([self.path, opt])
        self.assertExit(r, 0)
        self.assertMentions(r.out, [r'usage'], 'stdout')
        self.assertIn(self.command, r.out, 'usage names the command')
        self.assertEqual(r.err, '', 'help goes to stdout only')

    def test_help_short(self):
        self._help('-h')

    def test_help_long(self):
        self._help('--help')

    def _version(self, opt):
        r = self.run_tool([self.path, opt])
        self.assertExit(r, 0)
        self.assertTrue(r.out.endswith('\n') and
                        VERSION_RE.match(r.out[:-1]),
                        'expected a bare version line, got %r' % r.out)

    def test_version_short(self):
        self._version('-V')

    def test_version_long(self):
        self._version('--version')

    # -- bad usage
    def test_unknown_option(self):
        r = self.run_tool(self.argv(self.spec.valid_input()) +
                          ['--no-such-option'])
        self.assertExit(r, 1)
        self.assertMentions(r.err, [r'usage', r'try'])
        self.assertEqual(r.stdout, b'', 'usage errors go to stderr')

    def test_no_input(self):
        r = self.run_tool(self.argv(None))
        self.assertExit(r, 1)
        self.assertNonEmpty(r.err)

    def test_input_not_found(self):
        missing = os.path.join(tools.temp_dir(), 'no-such-file')
        r = self.run_tool(self.argv(missing))
        self.assertExit(r, 1)
        self.assertMentions(r.err, NOT_FOUND)

    def test_input_is_directory(self):
        r = self.run_tool(self.argv(tools.temp_dir()))
        self.assertExit(r, 1)
        self.assertNonEmpty(r.err)

    # -- valid input, read-only
    def test_read_only_input(self):
        """The input is only read: a 0444 file works, even for a user who
        cannot write it (we drop to 'nobody' when running as root)."""
        d = tools.temp_dir()
        os.chmod(d, 0o755)
        src = self.spec.valid_input()
        inp = os.path.join(d, 'input')
        tools.sparse_copy(src, inp)
        os.chmod(inp, 0o444)
        digest = tools.file_digest(inp)
        argv = self.argv(inp, d)
        preexec = None
        ids = _nobody()
        if os.geteuid() == 0 and ids:
            probe_fn = _drop_to(*ids)
            try:
                probe = tools.run([self.path, '-V'], preexec_fn=probe_fn)
                if probe.rc == 0:
                    preexec = probe_fn
            except OSError:
                pass            # build dir not reachable by nobody
        r = self.run_tool(argv, preexec_fn=preexec)
        self.assertExit(r, 0, 'as %s' % ('nobody' if preexec else
                                          'the current user'))
        self.assertUnchanged(inp, digest)
        if self.command == 'thin_dump':
            expected = tools.run([tools.DEBIAN['thin_dump'], src])
            self.assertSameBytes(r.stdout, expected.stdout)

    # -- empty arguments (LVM before 2.03.22 passes its options as "")
    def test_empty_arguments_ignored(self):
        """`CMD '' ARGS ''` behaves as `CMD ARGS`: same exit code and
        stdout, on a valid call and on a failing one; '' alone is no
        input."""
        valid = self.spec.valid_input()
        missing = os.path.join(tools.temp_dir(), 'no-such-file')
        for inp in (valid, missing):
            plain = self.run_tool(self.argv(inp))
            argv = self.argv(inp)
            padded = [argv[0], ''] + argv[1:] + ['']
            r = self.run_tool(padded)
            self.assertEqual((r.rc, r.stdout), (plain.rc, plain.stdout),
                             'empty arguments changed %s' % padded[1:])
            self.assertNotIn("''", r.err)
        r = self.run_tool([self.path, ''])
        self.assertExit(r, 1)
        self.assertNotIn('unexpected argument', r.err)
        r = self.run_tool([self.path, '', '-V', ''])
        self.assertExit(r, 0)
        self.assertTrue(VERSION_RE.match(r.out.strip()), r.out)

    # -- pdata_tools dispatch
    def test_pdata_tools_same_behaviour(self):
        """`pdata_tools CMD ARGS` == `CMD ARGS` (stdout and exit code)."""
        multi = tools.ours('pdata_tools')
        valid = self.spec.valid_input()
        missing = os.path.join(tools.temp_dir(), 'no-such-file')
        for args_fn in (lambda d: [self.path, '-V'],
                        lambda d: [self.path, '-h'],
                        lambda d: [self.path, '--no-such-option'],
                        lambda d: self.spec.argv(self.path, valid, d),
                        lambda d: self.spec.argv(self.path, missing, d)):
            direct = args_fn(tools.temp_dir())
            via = args_fn(tools.temp_dir())
            via = [multi, self.command] + via[1:]
            a = self.run_tool(direct)
            b = self.run_tool(via)
            self.assertEqual((a.rc, a.stdout), (b.rc, b.stdout),
                             'pdata_tools %s differs from %s for %s' % (
                                 self.command, self.command, direct[1:]))


class MetadataInputChecks:
    """Checks that only make sense for commands reading binary metadata."""

    def _small(self, size):
        p = os.path.join(tools.temp_dir(), 'small')
        with open(p, 'wb') as f:
            f.write(b'\x01' * size)
        return p

    def test_input_too_small(self):
        r = self.run_tool(self.argv(self._small(4095)))
        self.assertExit(r, 1)
        self.assertMentions(r.err, TOO_SMALL)

    def test_input_empty(self):
        r = self.run_tool(self.argv(self._small(0)))
        self.assertExit(r, 1)
        self.assertNonEmpty(r.err)

    def test_xml_as_binary_input(self):
        p = _xml_file(os.path.join(tools.temp_dir(), 'pool.xml'))
        r = self.run_tool(self.argv(p))
        self.assertExit(r, 1)
        self.assertNonEmpty(r.err)
        if self.command == 'thin_check':
            self.assertMentions(r.err, [r'This looks like XML'])

    def test_zeroed_superblock(self):
        d = tools.temp_dir()
        p = tools.sparse_copy(self.spec.valid_input(),
                              os.path.join(d, 'zeroed.meta'))
        with open(p, 'r+b') as f:
            f.write(bytes(4096))
        r = self.run_tool(self.argv(p, d))
        if self.spec.reads_damaged:
            onex = tools.run(tools.onex(self.command) +
                             self.spec.argv('', p, tools.temp_dir())[1:])
            self.assertExit(r, onex.rc, 'as 1.x')
            return
        self.assertExit(r, 1)
        self.assertNonEmpty(r.err)


class XmlInputChecks:
    """Checks for commands reading XML."""

    def test_binary_as_xml_input(self):
        r = self.run_tool(self.argv(pools.get('snapshots').meta))
        self.assertExit(r, 1)
        self.assertNonEmpty(r.err)

    def test_xml_empty(self):
        p = os.path.join(tools.temp_dir(), 'empty.xml')
        open(p, 'wb').close()
        r = self.run_tool(self.argv(p))
        self.assertExit(r, 1)
        self.assertNonEmpty(r.err)


class NoInputChecks:
    """Commands without an input (cache_metadata_size): the input checks
    do not apply, so they are not generated (None is not collected)."""

    test_no_input = test_input_not_found = test_input_is_directory = None
    test_read_only_input = None


class StdoutChecks:
    def test_stdout_write_error(self):
        """Output to a full device (/dev/full): the write error must be
        reported with exit 1, not lost."""
        if not os.path.exists('/dev/full'):
            self.skipTest('no /dev/full')
        argv = self.argv(self.spec.valid_input())
        with open('/dev/full', 'wb') as full:
            p = subprocess.run(argv, stdout=full, stderr=subprocess.PIPE,
                               timeout=tools.scaled(tools.DEFAULT_TIMEOUT))
        self.assertGreaterEqual(p.returncode, 0, 'killed by a signal')
        self.assertEqual(p.returncode, 1, 'stderr: %s' % p.stderr[:500])
        self.assertTrue(p.stderr.strip(), 'no message on stderr')


def _make_class(command):
    spec = COMMAND_SPECS.get(command)
    bases = [CliBase]
    if spec is None:
        # unknown command: only the spec-free checks would make sense;
        # fail loudly so that the table gets its line
        def test_spec_present(self):
            self.fail('no CommandSpec for %s in test_cli.COMMAND_SPECS'
                      % command)
        return type('TestCli_%s' % command.replace('-', '_'), (ToolTestCase,),
                    {'test_spec_present': test_spec_present})
    if spec.input_kind in ('metadata', 'snapshot'):
        bases.insert(0, MetadataInputChecks)
    elif spec.input_kind == 'none':
        bases.insert(0, NoInputChecks)
    else:
        bases.insert(0, XmlInputChecks)
    if spec.writes_stdout:
        bases.insert(0, StdoutChecks)
    return type('TestCli_%s' % command.replace('-', '_'), tuple(bases),
                {'command': command, 'spec': spec})


for _cmd in tools.commands_under_test():
    _cls = _make_class(_cmd)
    globals()[_cls.__name__] = _cls


class TestPdataTools(ToolTestCase):
    def test_unknown_command(self):
        r = self.run_tool([tools.ours('pdata_tools'), 'no_such_command'])
        self.assertExit(r, 1)
        text = r.out + r.err
        for cmd in tools.commands_under_test():
            self.assertIn(cmd, text, 'the command list names %s' % cmd)


def load_tests(loader, standard_tests, pattern):
    # CliBase itself is abstract: load only the generated classes
    suite = unittest.TestSuite()
    for name, obj in sorted(globals().items()):
        if (isinstance(obj, type) and issubclass(obj, unittest.TestCase)
                and name.startswith('Test')):
            suite.addTests(loader.loadTestsFromTestCase(obj))
    return suite


if __name__ == '__main__':
    unittest.main()
