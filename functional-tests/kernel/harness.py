# SPDX-License-Identifier: GPL-3.0-or-later
"""Kernel end-to-end tests: the real dm-thin target reads what we write.

    harness.py [--list] [FILTER...]
    harness.py --shell SCENARIO      (a shell in that scenario's guest)

Builds a guest image (an initramfs) from Debian packages and our freshly
built pdata_tools, boots a Debian kernel with it once per scenario (user-
mode-linux: the kernel runs as an ordinary process), runs the scenario
script inside (guest/scenarios/*.sh) on disks that are sparse files here,
and reads the result back from the guest's console.  One line per scenario
("PASS name", "FAIL name: reason", "SKIP name: reason"), then
"N passed, N failed[, N skipped]"; exit 0 iff nothing failed.

A FILTER is a substring of scenario names; without one, all run.  See
README.md for the environment variables.
"""

import concurrent.futures
import fcntl
import glob
import hashlib
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.environ.get('THINP_SRC_DIR') or os.path.dirname(os.path.dirname(HERE)))
BUILD = os.path.abspath(os.environ.get('THINP_BUILD_DIR') or SRC)
CACHE = os.environ.get('THINP_KERNEL_CACHE') or '/var/tmp/thinp-kernel'
# The oracles scripts/fetch-oracles.sh unpacks (Debian's 0.9.0 and 1.x).
ORACLE_DIR = os.path.abspath(os.environ.get('THINP_ORACLE_DIR') or '/var/cache/thinp-tools/oracles')
DEBIAN_DIR = os.path.join(ORACLE_DIR, '0.9', 'usr', 'sbin')
UPSTREAM_DIR = os.path.join(ORACLE_DIR, '1x', 'usr', 'sbin')
CI = os.environ.get('CI', '').lower() in ('1', 'true', 'yes')
TIMEOUT = 180 * float(os.environ.get('THINP_TIMEOUT_SCALE') or 1)
KEEP = bool(os.environ.get('THINP_KERNEL_KEEP'))
ORIGIN_MIB = int(os.environ.get('THINP_KERNEL_ORIGIN_MIB') or 128)
SEED = int(os.environ.get('THINP_TEST_SEED') or 1)
GUEST_MEM = os.environ.get('THINP_KERNEL_MEM') or '384M'
ROUTE = os.environ.get('THINP_KERNEL_ROUTE') or 'auto'
PAT_MIB = 8
MIB = 1 << 20

# Our commands that may be in the build dir; each becomes a link to
# pdata_tools in the guest.
OUR_COMMANDS = ('thin_check', 'thin_dump', 'thin_restore', 'thin_merge', 'thin_repair', 'thin_migrate',
                'snapshot_check', 'snapshot_dump', 'snapshot_merge', 'dm-merge',
                'cache_check', 'cache_dump', 'cache_restore', 'cache_repair', 'cache_writeback',
                'era_check', 'era_dump', 'era_restore', 'era_invalidate')
# Our scripts that may be in the source dir: (guest name, path under SRC).
OUR_SCRIPTS = (('thin_merge_lvm', 'lvm/thin_merge_lvm'),)
# Debian packages of the LVM scenarios: lvm2 and the libraries its
# programs need that a host may lack (the others come from the host).
LVM_DEBS = ('lvm2', 'libdevmapper-event1.02.1', 'libdevmapper1.02.1', 'libaio1', 'libedit2')
# The modules dm-thin, dm-snapshot, dm-delay, dm-cache (smq) and dm-era
# need, and what they need (from modules.dep).
WANTED_MODULES = ('dm-thin-pool', 'dm-snapshot', 'dm-delay', 'dm-cache-smq', 'dm-era')


def log_dir():
    d = os.environ.get('THINP_KERNEL_LOGDIR')
    if not d:
        d = (os.path.join(BUILD, 'kernel-tests.logs') if BUILD != SRC
             else os.path.join(tempfile.gettempdir(), 'thinp-kernel-tests.logs'))
    os.makedirs(d, exist_ok=True)
    return d


def oracle_reason():
    """Why scripts/fetch-oracles.sh could not fetch the oracles."""
    try:
        with open(os.path.join(ORACLE_DIR, 'REASON')) as f:
            return f.read().strip() or 'run scripts/fetch-oracles.sh'
    except OSError:
        return 'run scripts/fetch-oracles.sh'


class Skip(Exception):
    """Scenarios cannot run here (e.g. Debian packages not to be had)."""


class SetupError(Exception):
    """Something the harness needs is broken: every scenario fails."""


# ---------------------------------------------------------------------------
# Scenarios

class Scenario:
    def __init__(self, name, script, params, disks, needs=(), expect_fail=None,
                 debs=(), modules=(), timeout=1):
        self.name = name
        # a multiple of the per-guest timeout (scenarios running many commands)
        self.timeout = TIMEOUT * timeout
        # Debian packages unpacked into the guest (with the libraries their
        # programs need) and kernel modules loaded, beyond the base image:
        # the image holds the union over the scenarios that run.
        self.debs = tuple(debs)
        self.modules = tuple(modules)
        self.script = script
        self.params = params
        # (name, MiB) for blank sparse disks, or (name, 'origin'|'pat')
        self.disks = disks
        self.needs = needs
        # the check at which the scenario must fail (negative control)
        self.expect_fail = expect_fail


def merge_disks(data_mib):
    return [('meta', 16), ('meta2', 16), ('data', data_mib),
            ('origin', 'origin'), ('pat', 'pat')]


def snapshot_disks():
    return [('sorig', 32), ('sorig2', 32), ('cow', 16), ('cow2', 16),
            ('origin', 'origin'), ('pat', 'pat')]


def scenarios(tools):
    """The scenario table.  tools: what the build dir has (see Tools)."""
    writer = 'ours' if tools.has('thin_restore') else 'debian'
    data = ORIGIN_MIB + ORIGIN_MIB // 2      # O's copy, S's and U's writes, the fill
    merge = dict(script='merge', disks=merge_disks(data))

    def m(name, needs=('thin_merge',), **p):
        params = dict(merge='tool', inplace='0', rebase='0', shared='0', merged_only='0',
                      writer=writer)
        params.update({k: str(v) for k, v in p.items()})
        return Scenario(name, params=params, needs=needs, **merge)

    # Debian's lvm2 as the client of our tools (guest/lvm.sh): its
    # packages in the guest, dm-snapshot loaded (lvcreate -s wants it).
    lvm = dict(debs=LVM_DEBS, modules=('dm-snapshot',),
               needs=('thin_check', 'thin_dump', 'thin_repair'))

    def lv(name, script, disks=(('pv', 256),), needs=(), timeout=1, **p):
        return Scenario(name, script, {k: str(v) for k, v in p.items()},
                        list(disks) + [('pat', 'pat')], needs=lvm['needs'] + tuple(needs),
                        debs=lvm['debs'], modules=lvm['modules'], timeout=timeout)

    return [
        lv('lvm_activate', 'lvm_activate'),
        lv('lvm_repair', 'lvm_repair'),
        # 31 snapshots sharing t1's leaves, a 4 MiB spare: the repair must share
        lv('lvm_repair_shared', 'lvm_repair_shared', disks=(('pv', 640),), timeout=2),
        # a cached LV (cache pool, smq): LVM runs our cache_check on activation
        lv('lvm_cache', 'lvm_cache', disks=(('pv', 96),),
           needs=('cache_check', 'cache_dump', 'cache_repair')),
        # thin_merge_lvm (lvm/thin_merge_lvm) on LVM's external-origin workflow
        lv('lvm_merge', 'lvm_merge', disks=(('pv', 96),), needs=('thin_merge', 'thin_merge_lvm'),
           mode='plain'),
        lv('lvm_merge_refusals', 'lvm_merge', disks=(('pv', 96),),
           needs=('thin_merge', 'thin_merge_lvm'), mode='refuse', timeout=2),
        # killed at each step, then run again; a saved copy of the PV resets it
        lv('lvm_merge_killed_early', 'lvm_merge', disks=(('pv', 96), ('pvsave', 96)),
           needs=('thin_merge', 'thin_merge_lvm'), mode='kill', points='backup,create,merge', timeout=2),
        lv('lvm_merge_killed_late', 'lvm_merge', disks=(('pv', 96), ('pvsave', 96)),
           needs=('thin_merge', 'thin_merge_lvm'), mode='kill', points='swap,commit,cleanup', timeout=2),
        # a step fails: rolled back to the old state
        lv('lvm_merge_rollback', 'lvm_merge', disks=(('pv', 96), ('pvsave', 96)),
           needs=('thin_merge', 'thin_merge_lvm'), mode='fail', points='backup,create,merge,swap,commit', timeout=2),
        # The writer is Debian's thin_restore until ours is built: the name says so.
        Scenario('restore' if writer == 'ours' else 'restore_debian_writer', 'restore',
                 dict(writer=writer), [('meta', 16), ('meta2', 16), ('data', 64), ('pat', 'pat')]),
        Scenario('migrate', 'migrate', {}, [('meta', 16), ('data', 64), ('dest', 32), ('pat', 'pat')],
                 needs=('thin_migrate',)),
        m('merge'),
        m('merge_rebase', rebase=1),
        m('merge_in_place', needs=('thin_merge', '--in-place'), inplace=1),
        m('merge_shared', needs=('thin_merge', '--in-place'), inplace=1, shared=1),
        m('merge_shared_rebase', needs=('thin_merge', '--in-place'), inplace=1, shared=1, rebase=1),
        m('merge_shared_out', shared=1),
        m('merge_merged_only', needs=('thin_merge', '--merged-only'), shared=1, merged_only=1),
        # A deliberately wrong merge (S dropped, not laid over O): the
        # scenario must fail, at the merged device's hash.
        Scenario('negative_control', params=dict(merge='wrong', inplace='0', rebase='0',
                                                 shared='0', merged_only='0', writer=writer),
                 expect_fail='merged_hash', **merge),
        # dm-cache (smq) and dm-era on metadata our tools wrote.
        Scenario('cache', 'cache', {}, [('cmeta', 16), ('cmeta2', 16), ('fast', 16),
                                        ('slow', 32), ('pat', 'pat')],
                 needs=('cache_restore', 'cache_writeback')),
        # The dirty mappings dropped from the XML before the restore: the
        # cache must then read differently.
        Scenario('negative_control_cache', 'cache', dict(sabotage='drop_dirty'),
                 [('cmeta', 16), ('cmeta2', 16), ('fast', 16), ('slow', 32), ('pat', 'pat')],
                 needs=('cache_restore', 'cache_writeback'), expect_fail='cache_hash'),
        Scenario('era', 'era', {}, [('emeta', 16), ('emeta2', 16), ('edata', 32), ('pat', 'pat')],
                 needs=('era_restore', 'era_invalidate')),
        # Our merge, then M's snapshotted_time zeroed: the kernel writes
        # over blocks M shares with T, which the scenario must notice.
        Scenario('negative_control_sharing', params=dict(
            merge='tool', inplace='0', rebase='0', shared='1', merged_only='0',
            sabotage='snap_time', writer=writer),
            needs=('thin_merge',), expect_fail='sharing_safe', **merge),
        # dm-snapshot stores merged offline by snapshot_merge (snapshot.sh)
        Scenario('snapshot_commit', 'snapshot', dict(mode='commit'), snapshot_disks(),
                 needs=('snapshot_merge',)),
        Scenario('snapshot_revert', 'snapshot', dict(mode='revert'), snapshot_disks(),
                 needs=('snapshot_merge',)),
        Scenario('snapshot_kernel_diff', 'snapshot', dict(mode='kernel'), snapshot_disks(),
                 needs=('snapshot_merge',)),
        # A merge that misses the table's last entry: must fail at merged_hash.
        Scenario('snapshot_negative_control', 'snapshot', dict(mode='wrong'), snapshot_disks(),
                 needs=('snapshot_merge',), expect_fail='merged_hash'),
    ]


# ---------------------------------------------------------------------------
# Host helpers

def sh(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, **kw)


class CacheLock:
    """Serialises fetching and unpacking between concurrent runs."""

    def __enter__(self):
        os.makedirs(CACHE, exist_ok=True)
        self.f = open(os.path.join(CACHE, '.lock'), 'w')
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


_apt_updated = False


def fetch_deb(pkg):
    """The unpacked tree of Debian package pkg, fetched with apt-get
    download into the cache on first use.  Raises Skip when it cannot be
    had (no network, no apt)."""
    deb = download_deb(pkg)
    tree = os.path.join(CACHE, pkg)
    stamp = os.path.join(tree, '.unpacked')
    if not (os.path.exists(stamp) and open(stamp).read() == os.path.basename(deb)):
        shutil.rmtree(tree, ignore_errors=True)
        unpack_deb(deb, tree)
        with open(stamp, 'w') as f:
            f.write(os.path.basename(deb))
    return tree, os.path.basename(deb)


def unpack_deb(deb, tree):
    r = sh(['dpkg-deb', '-x', deb, tree])
    if r.returncode != 0:
        raise Skip('cannot unpack %s: %s' % (deb, r.stdout.strip()))


def download_deb(pkg):
    """The .deb of pkg in the cache, fetched on first use."""
    global _apt_updated
    debs = os.path.join(CACHE, 'debs')
    os.makedirs(debs, exist_ok=True)
    found = sorted(glob.glob(os.path.join(debs, pkg + '_*.deb')))
    if not found:
        if not shutil.which('apt-get'):
            raise Skip('no apt-get to fetch Debian package %s' % pkg)
        r = sh(['apt-get', 'download', '-q', pkg], cwd=debs)
        if r.returncode != 0 and os.geteuid() == 0 and not _apt_updated:
            _apt_updated = True
            sh(['apt-get', 'update', '-q'])
            r = sh(['apt-get', 'download', '-q', pkg], cwd=debs)
        found = sorted(glob.glob(os.path.join(debs, pkg + '_*.deb')))
        if r.returncode != 0 or not found:
            last = (r.stdout.strip().splitlines() or ['?'])[-1]
            raise Skip('Debian package %s cannot be had (apt-get download: %s)' % (pkg, last))
    return found[-1]


def ldd(path, extra_libdirs=()):
    """The shared libraries path needs: [(path on the host, path in the guest)]."""
    env = dict(os.environ)
    if extra_libdirs:
        env['LD_LIBRARY_PATH'] = ':'.join(list(extra_libdirs) + [env.get('LD_LIBRARY_PATH', '')])
    r = subprocess.run(['ldd', path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, env=env)
    if 'not a dynamic executable' in r.stdout:
        return []
    if r.returncode != 0:
        raise SetupError('ldd %s: %s' % (path, r.stdout.strip()))
    libs = []
    for line in r.stdout.splitlines():
        line = line.strip()
        if 'not found' in line:
            raise SetupError('ldd %s: %s' % (path, line))
        m = re.match(r'(\S+) => (/\S+) \(', line)
        if m:
            host = m.group(2)
            guest = host if host.startswith(('/lib', '/usr/lib')) else \
                '/lib/x86_64-linux-gnu/' + os.path.basename(host)
            libs.append((host, guest))
            continue
        m = re.match(r'(/\S+) \(', line)     # the dynamic loader
        if m:
            libs.append((m.group(1), m.group(1)))
    return libs


def modinfo_depends(path):
    """The depends= field of a kernel module's .modinfo ELF section."""
    import struct
    with open(path, 'rb') as f:
        elf = f.read()
    if elf[:4] != b'\x7fELF' or elf[4] != 2:
        raise SetupError('%s: not a 64-bit ELF module' % path)
    shoff, = struct.unpack_from('<Q', elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from('<HHH', elf, 0x3a)

    def section(i):
        name, _, _, _, off, size = struct.unpack_from('<IIQQQQ', elf, shoff + i * shentsize)
        return name, off, size

    _, stroff, _ = section(shstrndx)
    for i in range(shnum):
        name, off, size = section(i)
        end = elf.index(b'\0', stroff + name)
        if elf[stroff + name:end] == b'.modinfo':
            for field in elf[off:off + size].split(b'\0'):
                if field.startswith(b'depends='):
                    return [d for d in field[8:].decode().split(',') if d]
    return []


def module_name(path):
    return re.sub(r'\.ko(\.[a-z]+)?$', '', os.path.basename(path)).replace('-', '_')


def module_order(moddir, wanted):
    """Module files (relative to moddir) to insmod, dependencies first:
    from modules.dep where the package has one (user-mode-linux), else
    from each module's .modinfo (linux-image: no modules.dep, no depmod
    needed).  wanted lists names; a softdep is listed before its user
    (e.g. crc32c_generic before dm-persistent-data's libcrc32c)."""
    deps = {}
    dep_file = os.path.join(moddir, 'modules.dep')
    if os.path.exists(dep_file):
        with open(dep_file) as f:
            for line in f:
                k, _, v = line.partition(':')
                deps[k.strip()] = v.split()
        byname = {module_name(k): k for k in deps}
    else:
        byname = {}
        for root, _, names in os.walk(os.path.join(moddir, 'kernel')):
            for n in names:
                if re.search(r'\.ko(\.[a-z]+)?$', n):
                    byname[module_name(n)] = os.path.relpath(os.path.join(root, n), moddir)
    order = []

    def visit(k):
        if k in order:
            return
        if k not in deps:
            deps[k] = [byname[d.replace('-', '_')] for d in modinfo_depends(os.path.join(moddir, k))]
        for d in deps[k]:
            visit(d)
        order.append(k)

    builtin = open(os.path.join(moddir, 'modules.builtin')).read()
    for w in wanted:
        k = byname.get(w.replace('-', '_'))
        if k is None:
            if re.search(r'/%s\.ko' % w.replace('-', '[-_]').replace('_', '[-_]'), builtin):
                continue
            raise SetupError('module %s neither in %s nor built in' % (w, moddir))
        visit(k)
    return order


# ---------------------------------------------------------------------------
# What runs in the guest

class Tools:
    """Our commands, Debian's 0.9.0 and upstream 1.x, and busybox/dmsetup."""

    def __init__(self):
        self.ours = os.path.join(BUILD, 'pdata_tools')
        if not os.access(self.ours, os.X_OK):
            raise SetupError('%s not built' % self.ours)
        self.commands = [c for c in OUR_COMMANDS if os.path.lexists(os.path.join(BUILD, c))]
        self.scripts = {n: os.path.join(SRC, rel) for n, rel in OUR_SCRIPTS
                        if os.path.exists(os.path.join(SRC, rel))}
        self.merge_help = ''
        if 'thin_merge' in self.commands:
            r = sh([os.path.join(BUILD, 'thin_merge'), '--help'], timeout=30)
            self.merge_help = r.stdout

    def has(self, need):
        if need.startswith('--'):
            return need in self.merge_help
        return need in self.commands or need in self.scripts

    def missing_reason(self, need):
        if need.startswith('--'):
            return 'our thin_merge has no %s option (thin_merge --help does not list it)' % need
        if need in dict(OUR_SCRIPTS):
            return 'our %s is not written yet (no %s)' % (need, os.path.join(SRC, dict(OUR_SCRIPTS)[need]))
        return 'our %s is not built yet (no %s)' % (need, os.path.join(BUILD, need))


class Guest:
    """The kernel and the initramfs, built once per run.  route: 'uml'
    (user-mode-linux, the kernel as a process) or 'qemu' (Debian's
    linux-image under qemu in software emulation)."""

    def __init__(self, workdir, tools, route, debs=(), modules=()):
        self.workdir = workdir
        self.tools = tools
        self.route = route
        self.describe = []
        with CacheLock():
            if route == 'uml':
                self._fetch_uml()
            else:
                self._fetch_qemu()
            self._fetch_userland()
            self._fetch_extra_debs(debs)
        self.modules = tuple(self.modules) + tuple(m for m in modules if m not in self.modules)
        self.initrd = os.path.join(workdir, 'initrd-%s.cpio' % route)
        self._build_initrd()

    def _fetch_uml(self):
        tree, deb = fetch_deb('user-mode-linux')
        self.kernel = os.path.join(tree, 'usr/bin/linux.uml')
        mods = glob.glob(os.path.join(tree, 'usr/lib/uml/modules/*/modules.dep'))
        if not os.access(self.kernel, os.X_OK) or not mods:
            raise SetupError('%s: no linux.uml or no modules' % deb)
        self.moddir = os.path.dirname(mods[0])
        self.modules = WANTED_MODULES
        self.describe.append('kernel: user-mode-linux %s (%s)' % (os.path.basename(self.moddir), deb))

    def _fetch_qemu(self):
        # linux-image-amd64 is a metapackage: the image is what it depends on
        pkg = None
        r = sh(['apt-cache', 'depends', 'linux-image-amd64']) if shutil.which('apt-cache') else None
        if r is not None and r.returncode == 0:
            m = re.search(r'Depends: (linux-image-\S+)', r.stdout)
            pkg = m and m.group(1)
        if not pkg:
            cached = sorted(glob.glob(os.path.join(CACHE, 'debs', 'linux-image-*-amd64_*.deb')))
            if not cached:
                raise Skip('cannot tell which package linux-image-amd64 names (apt-cache depends)')
            pkg = os.path.basename(cached[-1]).split('_')[0]
        tree, deb = fetch_deb(pkg)
        images = glob.glob(os.path.join(tree, 'boot/vmlinuz-*'))
        mods = glob.glob(os.path.join(tree, 'lib/modules/*/kernel'))
        if not images or not mods:
            raise SetupError('%s: no vmlinuz or no modules' % deb)
        self.kernel = images[0]
        self.moddir = os.path.dirname(mods[0])
        # libcrc32c wants a crc32c implementation that no dependency names
        self.modules = ('crc32c_generic',) + WANTED_MODULES + ('virtio_pci', 'virtio_blk')
        self.describe.append('kernel: %s under qemu (TCG) (%s)' % (os.path.basename(self.kernel), deb))
        self.qemu_env = dict(os.environ)
        self.qemu_data = []
        q = os.environ.get('THINP_QEMU') or shutil.which('qemu-system-x86_64')
        if not q:
            # qemu-system-x86 and what it needs that the host lacks, unpacked
            # into one tree (nothing installed)
            r = sh(['apt-get', 'install', '--simulate', '--no-install-recommends', 'qemu-system-x86'])
            pkgs = re.findall(r'^Inst (\S+)', r.stdout, re.M)
            if r.returncode != 0 or not pkgs:
                raise Skip('cannot list the packages qemu-system-x86 needs: %s' % r.stdout.strip()[-200:])
            qroot = os.path.join(CACHE, 'qemu-root')
            stamp = os.path.join(qroot, '.unpacked')
            want = ' '.join(sorted(pkgs))
            if not (os.path.exists(stamp) and open(stamp).read() == want):
                shutil.rmtree(qroot, ignore_errors=True)
                for p in pkgs:
                    unpack_deb(download_deb(p), qroot)
                with open(stamp, 'w') as f:
                    f.write(want)
            q = os.path.join(qroot, 'usr/bin/qemu-system-x86_64')
            self.qemu_env['LD_LIBRARY_PATH'] = ':'.join(
                os.path.join(qroot, d) for d in ('usr/lib/x86_64-linux-gnu', 'lib/x86_64-linux-gnu'))
            self.qemu_data = [os.path.join(qroot, 'usr/share/qemu'), os.path.join(qroot, 'usr/share/seabios')]
            self.describe.append('qemu: unpacked from Debian packages in %s' % qroot)
        self.qemu = q

    def _fetch_userland(self):
        tree, deb = fetch_deb('busybox-static')
        self.busybox = os.path.join(tree, 'bin/busybox')
        self.describe.append('guest userland: %s' % deb)
        self.dm_libdirs = []
        if os.access('/sbin/dmsetup', os.X_OK):
            self.dmsetup = '/sbin/dmsetup'
        else:
            tree, deb = fetch_deb('dmsetup')
            lib, deb2 = fetch_deb('libdevmapper1.02.1')
            self.dmsetup = os.path.join(tree, 'sbin/dmsetup')
            self.dm_libdirs = [os.path.join(lib, 'lib/x86_64-linux-gnu')]
            self.describe.append('dmsetup: %s, %s' % (deb, deb2))
        self.debian = os.path.join(DEBIAN_DIR, 'pdata_tools')
        self.upstream = os.path.join(UPSTREAM_DIR, 'pdata_tools')
        for path in (self.debian, self.upstream):
            if not os.access(path, os.X_OK):
                raise Skip('oracle missing: %s (%s)' % (path, oracle_reason()))
        if not self._is_debian_tools(self.debian):
            raise SetupError('%s is not thin-provisioning-tools 0.9' % self.debian)
        self.describe.append('oracles in the guest: Debian %s, upstream 1.x %s' % (
            self.debian, self.upstream))

    # Parts of a package that a guest never needs.
    EXTRA_DEB_SKIP = ('usr/share/doc', 'usr/share/man', 'usr/share/lintian', 'usr/share/bug',
                      'usr/share/initramfs-tools', 'lib/systemd', 'lib/udev', 'usr/lib/tmpfiles.d')

    def _fetch_extra_debs(self, debs):
        """Packages some scenarios need (e.g. lvm2), unpacked: every file
        goes to the guest at its path, and the programs' libraries come
        from these packages first, then from the host."""
        self.extra_trees = []
        got = []
        for pkg in debs:
            tree, deb = fetch_deb(pkg)
            self.extra_trees.append(tree)
            got.append(deb)
        if got:
            self.describe.append('extra packages: %s' % ', '.join(got))

    def _extra_files(self, files, links):
        """Adds the extra packages' files and links; returns their programs."""
        programs = []
        for tree in self.extra_trees:
            for root, dnames, fnames in os.walk(tree):
                rel_root = os.path.relpath(root, tree)
                if rel_root.startswith(self.EXTRA_DEB_SKIP):
                    dnames[:] = []
                    continue
                for n in fnames + [d for d in dnames if os.path.islink(os.path.join(root, d))]:
                    host = os.path.join(root, n)
                    guest = '/' + os.path.normpath(os.path.join(rel_root, n))
                    if n == '.unpacked':
                        continue
                    if os.path.islink(host):
                        links[guest] = os.readlink(host)
                    elif os.path.isfile(host):
                        files[guest] = host
                        if os.access(host, os.X_OK) and re.search(r'/s?bin/', guest):
                            programs.append(host)
        return programs

    def _extra_libdirs(self):
        return [os.path.join(t, d) for t in self.extra_trees
                for d in ('lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu')
                if os.path.isdir(os.path.join(t, d))]

    @staticmethod
    def _is_debian_tools(path):
        if not os.access(path, os.X_OK):
            return False
        r = sh([path, 'thin_check', '-V'])
        return r.stdout.strip().startswith('0.9')

    def _build_initrd(self):
        root = os.path.join(self.workdir, 'root')
        shutil.rmtree(root, ignore_errors=True)
        files = {}          # guest path -> host path (regular files)
        links = {}          # guest path -> link target
        dirs = {'/bin', '/sbin', '/usr', '/usr/bin', '/usr/sbin', '/lib', '/lib64',
                '/lib/x86_64-linux-gnu', '/proc', '/sys', '/dev', '/tmp', '/run',
                '/thinp', '/thinp/bin', '/thinp/ours', '/thinp/debian',
                '/thinp/upstream', '/thinp/modules', '/thinp/scenarios'}

        files['/bin/busybox'] = self.busybox
        applets = sh([self.busybox, '--list']).stdout.split()
        for a in applets:
            if a != 'busybox':
                links['/bin/' + a] = 'busybox'
        files['/sbin/dmsetup'] = self.dmsetup
        files['/thinp/ours/pdata_tools'] = self.tools.ours
        for c in self.tools.commands:
            links['/thinp/ours/' + c] = 'pdata_tools'
        files['/thinp/debian/pdata_tools'] = self.debian
        for c in ('thin_check', 'thin_dump', 'thin_restore'):
            links['/thinp/debian/' + c] = 'pdata_tools'
        for n, host in self.tools.scripts.items():
            files['/thinp/ours/' + n] = host
        binaries = [(self.dmsetup, self.dm_libdirs), (self.tools.ours, []), (self.debian, [])]
        for prog in self._extra_files(files, links):
            with open(prog, 'rb') as f:
                if f.read(4) == b'\x7fELF':
                    binaries.append((prog, self._extra_libdirs() + self.dm_libdirs))
        if self.upstream:
            files['/thinp/upstream/pdata_tools'] = self.upstream
            for c in ('thin_check', 'thin_dump'):
                links['/thinp/upstream/' + c] = 'pdata_tools'
            binaries.append((self.upstream, []))
        for b, extra in binaries:
            for host, guest in ldd(b, extra):
                files[guest] = host
        order = module_order(self.moddir, self.modules)
        names = []
        for k in order:
            n = os.path.basename(k)
            files['/thinp/modules/' + n] = os.path.join(self.moddir, k)
            names.append(n)
        files['/init'] = os.path.join(HERE, 'guest/init')
        for h in glob.glob(os.path.join(HERE, 'guest/*.sh')):
            files['/thinp/' + os.path.basename(h)] = h
        for s in glob.glob(os.path.join(HERE, 'guest/scenarios/*.sh')):
            files['/thinp/scenarios/' + os.path.basename(s)] = s
        extra = {'/thinp/modules/order': ('\n'.join(names) + '\n').encode()}
        self.describe.append('modules: %s' % ' '.join(names))
        write_newc(self.initrd, dirs, files, links, extra)

    def command(self, disks, params, interactive=False):
        """(argv, env) booting the guest on disks [(name, path, read-only)]."""
        words = ['thinp_disks=' + ','.join(d[0] for d in disks)]
        words += ['thinp_%s=%s' % (k, v) for k, v in params.items()]
        if self.route == 'uml':
            args = [self.kernel, 'mem=' + GUEST_MEM, 'initrd=' + self.initrd,
                    'con=null', 'con0=%s,fd:1' % ('fd:0' if interactive else 'null'),
                    'loglevel=4']
            for i, (name, path, ro) in enumerate(disks):
                args.append('ubd%d%s=%s' % (i, 'r' if ro else '', path))
            return args + words, dict(os.environ)
        args = [self.qemu, '-accel', 'tcg', '-m', GUEST_MEM, '-smp', '1',
                '-nodefaults', '-display', 'none', '-no-reboot', '-serial', 'stdio',
                '-kernel', self.kernel, '-initrd', self.initrd,
                '-append', ' '.join(['console=ttyS0', 'loglevel=4', 'panic=-1'] + words)]
        for d in self.qemu_data:
            args += ['-L', d]
        for i, (name, path, ro) in enumerate(disks):
            args += ['-drive', 'file=%s,format=raw,if=none,id=d%d,cache=unsafe%s' % (
                path, i, ',readonly=on' if ro else ''),
                '-device', 'virtio-blk-pci,drive=d%d,serial=%s' % (i, name)]
        return args, self.qemu_env


def write_newc(path, dirs, files, links, extra):
    """An uncompressed initramfs (cpio newc) from directories, host files,
    symbolic links and in-memory files, all owned by root."""
    out = open(path, 'wb')
    ino = [1000]

    def entry(name, mode, data=b''):
        ino[0] += 1
        name_b = name.lstrip('/').encode() + b'\0'
        hdr = '070701' + ''.join('%08X' % v for v in (
            ino[0], mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0))
        out.write(hdr.encode() + name_b)
        out.write(b'\0' * (-(110 + len(name_b)) % 4))
        out.write(data)
        out.write(b'\0' * (-len(data) % 4))

    every = set(dirs)
    for p in list(files) + list(links) + list(extra):
        d = os.path.dirname(p)
        while d not in ('/', ''):
            every.add(d)
            d = os.path.dirname(d)
    for d in sorted(every):
        entry(d, stat.S_IFDIR | 0o755)
    for p, host in sorted(files.items()):
        with open(host, 'rb') as f:
            data = f.read()
        mode = 0o755 if os.access(host, os.X_OK) else 0o644
        entry(p, stat.S_IFREG | mode, data)
    for p, data in sorted(extra.items()):
        entry(p, stat.S_IFREG | 0o644, data)
    for p, target in sorted(links.items()):
        entry(p, stat.S_IFLNK | 0o777, target.encode())
    entry('TRAILER!!!', 0)
    out.close()


def pattern_file(path, mib, seed):
    """mib MiB of seeded pseudo-random bytes (the same for every run);
    returns their md5."""
    rng = random.Random(seed)
    h = hashlib.md5()
    with open(path, 'wb') as f:
        for _ in range(mib):
            b = rng.randbytes(MIB)
            h.update(b)
            f.write(b)
    return h.hexdigest()


def uml_tmpdir(fallback):
    """Where user-mode-linux keeps the guest's memory: a tmpfs that allows
    PROT_EXEC mappings is fastest."""
    d = os.environ.get('THINP_KERNEL_TMPDIR')
    if d:
        return d
    try:
        with open('/proc/mounts') as f:
            for line in f:
                dev, mnt, fstype, opts = line.split()[:4]
                if mnt == '/dev/shm' and fstype == 'tmpfs' and 'noexec' not in opts.split(',') \
                        and os.access(mnt, os.W_OK):
                    return mnt
    except OSError:
        pass
    return fallback


# ---------------------------------------------------------------------------
# Running one scenario

class Result:
    def __init__(self, name):
        self.name = name
        self.status = None          # PASS / FAIL / SKIP
        self.reason = ''
        self.seconds = 0.0
        self.steps = []
        self.cpu = 0.0
        self.log = None


def run_guest(guest, sc, shared_disks, workdir, logpath, interactive=False):
    """Boots the guest for scenario sc; returns (fail_check, reason, steps)
    as the guest reported them ((None, None, ..) when it passed)."""
    d = tempfile.mkdtemp(prefix=sc.name + '.', dir=workdir)
    disks = []
    for name, size in sc.disks:
        if size in ('origin', 'pat'):
            disks.append((name, shared_disks[size], True))
        else:
            p = os.path.join(d, name + '.img')
            with open(p, 'wb') as f:
                f.truncate(size * MIB)
            disks.append((name, p, False))
    params = dict(script=sc.script)
    params.update(sc.params)
    if any(size == 'origin' for _, size in sc.disks):
        params['origin_md5'] = shared_disks['origin_md5']
    if interactive:
        params['script'] = 'shell'
    cmd, env = guest.command(disks, params, interactive)
    env = dict(env, TMPDIR=uml_tmpdir(d))
    if interactive:
        print('# %s' % ' '.join(cmd))
        subprocess.call(cmd, env=env, cwd=d)
        print('# the disks are in %s' % d)
        return None, None, []
    start = time.monotonic()
    steps = []
    cpu = [0.0]
    seen = {'booted': False, 'end': False, 'pass': False, 'fail': None, 'step': None}
    with open(logpath, 'w', errors='replace') as log:
        log.write('# %s\n' % ' '.join(cmd))
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, cwd=d, env=env,
                             start_new_session=True)
        timed_out = []

        def kill():
            timed_out.append(True)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(sc.timeout, kill)
        timer.start()
        try:
            for raw in p.stdout:
                line = raw.decode('utf-8', 'replace').rstrip('\r\n')
                t = time.monotonic() - start
                log.write('[%7.2f] %s\n' % (t, line))
                if not line.startswith('@@THINP '):
                    continue
                words = line.split(' ', 2)
                tag = words[1]
                if tag == 'BOOTED':
                    seen['booted'] = True
                    steps.append(('boot', t))
                elif tag == 'STEP':
                    seen['step'] = words[2] if len(words) > 2 else '?'
                    steps.append((seen['step'], t))
                elif tag == 'FAIL' and seen['fail'] is None:
                    seen['fail'] = words[2] if len(words) > 2 else '?'
                elif tag == 'PASS':
                    seen['pass'] = True
                elif tag == 'END':
                    seen['end'] = True
            # wait4: the guest's CPU time, a cost figure that does not
            # depend on the host's load
            _, wstatus, ru = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(wstatus)
            cpu[0] = ru.ru_utime + ru.ru_stime
        finally:
            timer.cancel()
            # UML leaves helper processes behind when it dies abnormally
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        steps.append(('end', time.monotonic() - start))
        log.write('# exit status %s\n' % p.returncode)
    if not KEEP:
        shutil.rmtree(d, ignore_errors=True)
    steps.append(('cpu', cpu[0]))
    if seen['fail']:
        check, _, why = seen['fail'].partition(': ')
        return check, why, steps
    if seen['pass'] and seen['end']:
        return None, None, steps
    if timed_out:
        return 'timeout', 'guest killed after %d s (last step: %s)' % (sc.timeout, seen['step']), steps
    if not seen['booted']:
        return 'boot', 'the guest did not boot (exit status %s)' % p.returncode, steps
    return 'crash', 'the guest stopped without a result (last step: %s, exit status %s)' % (
        seen['step'], p.returncode), steps


def run_scenario(guest, sc, shared_disks, workdir, logs):
    r = Result(sc.name)
    r.log = os.path.join(logs, sc.name + '.console.log')
    start = time.monotonic()
    check, why, r.steps = run_guest(guest, sc, shared_disks, workdir, r.log)
    r.seconds = time.monotonic() - start
    r.cpu = dict(r.steps).get('cpu', 0.0)
    if sc.expect_fail:
        if check == sc.expect_fail:
            r.status = 'PASS'
            r.reason = 'failed as it must, at %s: %s' % (check, why)
        elif check is None:
            r.status = 'FAIL'
            r.reason = 'the deliberately wrong merge passed every check'
        else:
            r.status = 'FAIL'
            r.reason = 'failed at %s, not at %s: %s' % (check, sc.expect_fail, why)
    elif check is None:
        r.status = 'PASS'
    else:
        r.status = 'FAIL'
        r.reason = '%s: %s' % (check, why)
    return r


def make_guest(workdir, tools, logs, table=()):
    """A guest whose kernel boots and has dm-thin: user-mode-linux, or
    qemu when user-mode-linux cannot run here (THINP_KERNEL_ROUTE=auto),
    or the route asked for.  Raises Skip when no route's packages can be
    had, SetupError when a kernel was had but does not work."""
    routes = ['uml', 'qemu'] if ROUTE == 'auto' else [ROUTE]
    skips, failures = [], []
    for route in routes:
        if route not in ('uml', 'qemu'):
            raise SetupError('THINP_KERNEL_ROUTE=%s: not uml, qemu or auto' % route)
        try:
            g = Guest(workdir, tools, route,
                      debs=sorted(set(d for s in table for d in s.debs)),
                      modules=list(dict.fromkeys(m for s in table for m in s.modules)))
        except Skip as e:
            skips.append(str(e))
            continue
        probe = Scenario('probe-' + route, 'probe', {}, [('probe', 1)])
        log = os.path.join(logs, probe.name + '.console.log')
        check, why, steps = run_guest(g, probe, {}, workdir, log)
        if check is None:
            g.describe.append('boot probe: %.1f s' % dict(steps).get('end', 0))
            return g
        failures.append('%s: %s: %s (see %s)' % (route, check, why, log))
    if failures:
        raise SetupError('no kernel works: ' + '; '.join(failures + skips))
    raise Skip(skips[0])


def tail(path, n=25):
    try:
        with open(path, errors='replace') as f:
            return f.read().splitlines()[-n:]
    except OSError:
        return []


# ---------------------------------------------------------------------------

def main(argv):
    filters = [a for a in argv[1:] if a and not a.startswith('-')]
    listing = '--list' in argv
    shell = '--shell' in argv
    start = time.monotonic()
    results = []

    def summary():
        if CI:
            # CI must never go green by skipping: a scenario that could not
            # run (packages, oracles or a kernel not to be had) fails there.
            for r in results:
                if r.status == 'SKIP':
                    print('FAIL %s: skipped under CI=true: %s' % (r.name, r.reason))
                    r.status = 'FAIL'
        n = {s: sum(1 for r in results if r.status == s) for s in ('PASS', 'FAIL', 'SKIP')}
        print('%d passed, %d failed%s' % (n['PASS'], n['FAIL'],
                                         ', %d skipped' % n['SKIP'] if n['SKIP'] else ''))
        return 1 if n['FAIL'] else 0

    try:
        tools = Tools()
    except SetupError as e:
        print('FAIL setup: %s' % e)
        results.append(Result('setup'))
        results[-1].status = 'FAIL'
        return summary()
    table = [s for s in scenarios(tools) if not filters or any(f in s.name for f in filters)]
    if listing:
        for s in table:
            print(s.name)
        return 0
    if shell:
        table = [s for s in table if s.name == filters[0]] if len(filters) == 1 else []
        if not table:
            print('--shell takes one scenario name (see --list)')
            return 1
        workdir = tempfile.mkdtemp(prefix='thinp-kernel.')
        guest = make_guest(workdir, tools, log_dir(), table)
        shared = {'origin': os.path.join(workdir, 'origin.img'),
                  'pat': os.path.join(workdir, 'pat.img')}
        shared['origin_md5'] = pattern_file(shared['origin'], ORIGIN_MIB, SEED)
        pattern_file(shared['pat'], PAT_MIB, SEED + 1000)
        global KEEP
        KEEP = True
        run_guest(guest, table[0], shared, workdir, None, interactive=True)
        print('# work dir (initramfs, shared disks): %s' % workdir)
        return 0
    if filters and not table:
        print('warning: no scenario matches %s' % ' '.join(filters))

    runnable = []
    for s in table:
        missing = [n for n in s.needs if not tools.has(n)]
        if missing:
            r = Result(s.name)
            r.status, r.reason = 'SKIP', tools.missing_reason(missing[0])
            results.append(r)
        else:
            runnable.append(s)

    logs = log_dir()
    workdir = tempfile.mkdtemp(prefix='thinp-kernel.')
    try:
        if runnable:
            try:
                guest = make_guest(workdir, tools, logs, runnable)
            except Skip as e:
                for s in runnable:
                    r = Result(s.name)
                    r.status, r.reason = 'SKIP', str(e)
                    results.append(r)
                runnable = []
            except SetupError as e:
                for s in runnable:
                    r = Result(s.name)
                    r.status, r.reason = 'FAIL', 'setup: %s' % e
                    results.append(r)
                runnable = []
        if runnable:
            for line in guest.describe:
                print(line)
            print('our build: %s (%s)' % (BUILD, ' '.join(tools.commands)))
            sys.stdout.flush()
            shared = {'origin': os.path.join(workdir, 'origin.img'),
                      'pat': os.path.join(workdir, 'pat.img')}
            shared['origin_md5'] = pattern_file(shared['origin'], ORIGIN_MIB, SEED)
            pattern_file(shared['pat'], PAT_MIB, SEED + 1000)
            jobs = int(os.environ.get('THINP_KERNEL_JOBS') or min(os.cpu_count() or 1, 4))
            with concurrent.futures.ThreadPoolExecutor(max_workers=max(jobs, 1)) as ex:
                futs = [ex.submit(run_scenario, guest, s, shared, workdir, logs) for s in runnable]
                results.extend(f.result() for f in futs)
    finally:
        if not KEEP:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print('kept the work dir %s' % workdir)

    order = {s.name: i for i, s in enumerate(table)}
    results.sort(key=lambda r: order.get(r.name, -1))
    with open(os.path.join(logs, 'summary.log'), 'w') as f:
        for r in results:
            steps = ' '.join('%s@%.1f' % (n, t) for n, t in r.steps)
            f.write('%s %s %.1f s (CPU %.1f s) %s%s\n' % (
                r.status, r.name, r.seconds, r.cpu, r.reason and r.reason + ' ' or '', steps))
    for r in results:
        if r.status == 'PASS':
            print('PASS %s' % r.name)
        else:
            print('%s %s: %s' % (r.status, r.name, r.reason))
        if r.status == 'FAIL' and r.log:
            print('  console log: %s; its tail:' % r.log)
            for line in tail(r.log):
                print('  | ' + line)
    timed = ', '.join('%s %.0f s' % (r.name, r.seconds) for r in results if r.seconds)
    print('kernel tests took %.0f s%s, guest CPU %.0f s; logs in %s' % (
        time.monotonic() - start, ' (%s)' % timed if timed else '',
        sum(r.cpu for r in results), logs))
    return summary()


if __name__ == '__main__':
    sys.exit(main(sys.argv))
