#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small hostile-input campaign (issue 10, part 3) over a normal build.

    scripts/hostile-campaign.py BUILD_DIR [-n N] [--seed S] [--keep DIR]

Builds three good 8 MiB metadata images with the build's own restores
(a thin pool with snapshots, a cache, an era device), then makes N mutated
copies, a third of each kind.  A mutation edits one to four metadata
blocks (bit flips, a field set to an interesting value, a pointer aimed
at another metadata block or at the block itself, a block copied over
another, a node's entry count or key range stretched) and restamps each
edited block's checksum for its type, so the tools get past the
checksums to the structure behind them.

Every command that reads that kind of metadata then runs on the copy
(thin_check, thin_dump [--repair], thin_ls, thin_rmap, thin_delta,
thin_metadata_pack, thin_repair, thin_merge; cache_check, cache_dump,
cache_repair; era_check, era_dump, era_invalidate) under
/usr/bin/time -f %M with a 5 s limit.  Reported as failures:

  crash   killed by a signal (or exit status > 2)
  hang    still running after 5 s
  rss     peak RSS of 64 MB or more
  unsafe  thin_repair, thin_merge or cache_repair exited 0 having written
          metadata our own checker rejects

With --sanitized (a build configured with --enable-sanitizers), a run
may take 60 s and any RSS (ASan's shadow), and an AddressSanitizer,
LeakSanitizer or UndefinedBehaviorSanitizer report is a crash whatever
the exit status.

The failing inputs are kept (--keep, default ./hostile-findings) with a
line per finding in findings.txt.  Last line: N passed, N failed (one
per input).  Exit 1 on any failure.
"""

import argparse
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

BLOCK = 4096
MD_SIZE = 8 << 20
LIMITS = {'normal': (5.0, 64 * 1024), 'sanitized': (60.0, None)}
SANITIZER_REPORT = ('ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:')

SB_XOR = {'thin': 160774, 'cache': 9031977, 'era': 146538381}
NODE_XOR, BITMAP_XOR, INDEX_XOR, ARRAY_XOR = 121107, 240779, 160478, 595846735
# where the metadata space map root sits in each superblock
SM_ROOT_AT = {'thin': 160, 'cache': 64, 'era': 44}


def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC_TABLE = _crc_table()


def crc32c(data):
    c = 0xffffffff
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >> 8)
    return c ^ 0xffffffff


def stamp(block, xor):
    """The block with its checksum (bytes 0..3) restamped."""
    return struct.pack('<I', crc32c(block[4:]) ^ xor) + block[4:]


def block_kind(img, b, kind):
    """Which checksum a metadata block takes, as the fuzz harnesses guess
    it: None for a block that is not metadata (zero, or not naming its
    own location)."""
    p = img[b * BLOCK:(b + 1) * BLOCK]
    if b == 0:
        return SB_XOR[kind]
    vs = struct.unpack_from('<I', p, 12)[0]
    if (struct.unpack_from('<Q', p, 16)[0] == b and vs and
            struct.unpack_from('<I', p, 4)[0] == (BLOCK - 24) // vs):
        return ARRAY_XOR
    if struct.unpack_from('<Q', p, 8)[0] != b:
        return None
    off = SM_ROOT_AT[kind]
    md_index = struct.unpack_from('<Q', img, off + 24)[0]
    if kind == 'thin' and b == struct.unpack_from('<Q', img, 56)[0]:
        return SB_XOR['thin']        # a held metadata snapshot
    if b == md_index:
        return INDEX_XOR
    if struct.unpack_from('<I', p, 4)[0] & 3:
        return NODE_XOR
    return BITMAP_XOR


# ----------------------------------------------------------------
# Good images, restored by the build under test

def thin_xml(rng):
    """Four devices of random runs; devices 1 and 2 share their first
    part as a snapshot and its origin do, leaves and all (a 1.x <def>
    section both refer to), so repairs and merges meet shared leaves."""
    nr_data = 100000

    def runs(first, count):
        maps, ob, last = [], first, first - 1
        for _ in range(count):
            ob += rng.randrange(1, 6)
            length = rng.choice([1, 1, 1, 3, 20])
            maps.append((ob, rng.randrange(0, nr_data - length), length))
            ob += length
        return maps

    def lines(maps):
        out = []
        for ob, db, length in maps:
            if length == 1:
                out.append('    <single_mapping origin_block="%d" data_block="%d" time="1"/>'
                           % (ob, db))
            else:
                out.append('    <range_mapping origin_begin="%d" data_begin="%d" '
                           'length="%d" time="0"/>' % (ob, db, length))
        return out

    shared = runs(0, rng.randrange(150, 400))
    shared_end = shared[-1][0] + shared[-1][2]
    out = ['<superblock uuid="" time="3" transaction="4" flags="0" version="2" '
           'data_block_size="128" nr_data_blocks="%d">' % nr_data,
           '  <def name="shared">'] + lines(shared) + ['  </def>']
    for dev in range(1, 5):
        own = runs(shared_end if dev <= 2 else 0, rng.randrange(50, 400))
        count = sum(m[2] for m in own) + (sum(m[2] for m in shared) if dev <= 2 else 0)
        out.append('  <device dev_id="%d" mapped_blocks="%d" transaction="1" '
                   'creation_time="0" snap_time="1">' % (dev, count))
        if dev <= 2:
            out.append('    <ref name="shared"/>')
        out += lines(own)
        out.append('  </device>')
    out.append('</superblock>')
    return '\n'.join(out) + '\n'



def cache_xml(rng):
    n = 4000
    out = ['<superblock uuid="" block_size="128" nr_cache_blocks="%d" policy="smq" '
           'hint_width="4">' % n, '  <mappings>']
    oblocks = rng.sample(range(n * 4), n)
    mapped = [cb for cb in range(n) if rng.random() < 0.6]
    for cb in mapped:
        out.append('    <mapping cache_block="%d" origin_block="%d" dirty="%s"/>'
                   % (cb, oblocks[cb], 'true' if rng.random() < 0.3 else 'false'))
    out += ['  </mappings>', '  <hints>']
    for cb in mapped:
        out.append('    <hint cache_block="%d" data="AAAAAA=="/>' % cb)
    out += ['  </hints>', '</superblock>']
    return '\n'.join(out) + '\n'


def era_xml(rng):
    n, era = 3000, 12
    out = ['<superblock uuid="" block_size="128" nr_blocks="%d" current_era="%d">' % (n, era)]
    for e in (era - 2, era - 1):
        out.append('  <writeset era="%d" nr_bits="%d">' % (e, n))
        for b in range(n):
            if rng.random() < 0.1:
                out.append('    <bit block="%d" value="true"/>' % b)
        out.append('  </writeset>')
    out.append('  <era_array>')
    for b in range(n):
        out.append('    <era block="%d" era="%d"/>' % (b, rng.randrange(0, era - 2)))
    out += ['  </era_array>', '</superblock>']
    return '\n'.join(out) + '\n'


def restore(build, kind, xml, path):
    with open(path + '.xml', 'w') as f:
        f.write(xml)
    with open(path, 'wb') as f:
        f.truncate(MD_SIZE)
    r = subprocess.run([os.path.join(build, kind + '_restore'), '-q', '-i', path + '.xml',
                        '-o', path], capture_output=True, text=True)
    if r.returncode:
        sys.exit('%s_restore failed on the base image: %s' % (kind, r.stderr.strip()))
    with open(path, 'rb') as f:
        return f.read()


# ----------------------------------------------------------------
# Mutations

INTERESTING = [0, 1, 2, 3, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff,
               MD_SIZE // BLOCK - 1, MD_SIZE // BLOCK, MD_SIZE // BLOCK + 1,
               1 << 32, (1 << 63) - 1, (1 << 64) - 1]


def mutate_block(rng, img, b, meta):
    p = bytearray(img[b * BLOCK:(b + 1) * BLOCK])
    what = rng.randrange(7)
    if what == 0:                                   # bit flips
        for _ in range(rng.randrange(1, 8)):
            i = rng.randrange(4, BLOCK)
            p[i] ^= 1 << rng.randrange(8)
        desc = 'bitflips'
    elif what == 1:                                 # a header field
        off = rng.choice([4, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64])
        if rng.random() < 0.5:
            struct.pack_into('<I', p, off, rng.choice(INTERESTING) & 0xffffffff)
        else:
            struct.pack_into('<Q', p, off, rng.choice(INTERESTING))
        desc = 'field@%d' % off
    elif what == 2:                                 # a pointer at another block / itself
        off = rng.randrange(32, BLOCK - 8) & ~7
        target = rng.choice(meta + [b])
        struct.pack_into('<Q', p, off, target)
        desc = 'pointer@%d->%d' % (off, target)
    elif what == 3:                                 # every value slot of a node aimed at one block
        nr = struct.unpack_from('<I', p, 16)[0]
        mx = struct.unpack_from('<I', p, 20)[0]
        target = rng.choice(meta + [b])
        if 0 < nr <= mx <= 252:
            for i in range(nr):
                struct.pack_into('<Q', p, 32 + 8 * mx + 8 * i, target)
        desc = 'all-values->%d' % target
    elif what == 4:                                 # another block's content, own location
        src = rng.choice(meta)
        p = bytearray(img[src * BLOCK:(src + 1) * BLOCK])
        struct.pack_into('<Q', p, 8, b)
        desc = 'copy-of-%d' % src
    elif what == 5:                                 # entry count stretched
        struct.pack_into('<I', p, 16, rng.choice([0, 1, 126, 252, 253, 255, 1000]))
        desc = 'nr_entries'
    else:                                           # keys scrambled
        nr = min(struct.unpack_from('<I', p, 16)[0], 252)
        for _ in range(rng.randrange(1, 4)):
            if nr:
                i = rng.randrange(nr)
                struct.pack_into('<Q', p, 32 + 8 * i, rng.choice(INTERESTING))
        desc = 'keys'
    img[b * BLOCK:(b + 1) * BLOCK] = p
    return desc


def mutate(rng, base, kind):
    img = bytearray(base)
    nr = len(img) // BLOCK
    meta = [b for b in range(nr) if any(img[b * BLOCK:(b + 1) * BLOCK])]
    descs = []
    touched = set()
    for _ in range(rng.choice([1, 1, 1, 2, 4])):
        b = rng.choice(meta)
        descs.append('%d:%s' % (b, mutate_block(rng, img, b, meta)))
        touched.add(b)
    for b in sorted(touched):
        xor = block_kind(img, b, kind)
        if xor is not None:
            img[b * BLOCK:(b + 1) * BLOCK] = stamp(bytes(img[b * BLOCK:(b + 1) * BLOCK]), xor)
    return bytes(img), ' '.join(descs)


# ----------------------------------------------------------------
# Running the commands

def commands(kind, md, out):
    """(name, argv, output the checker must accept on exit 0 or None)"""
    if kind == 'thin':
        return [
            ('thin_check', ['thin_check', md], None),
            ('thin_dump', ['thin_dump', md], None),
            ('thin_dump --repair', ['thin_dump', '--repair', md], None),
            ('thin_ls', ['thin_ls', md], None),
            ('thin_rmap', ['thin_rmap', '--region', '0..100000', md], None),
            ('thin_delta', ['thin_delta', '--snap1', '1', '--snap2', '2', md], None),
            ('thin_metadata_pack', ['thin_metadata_pack', '-i', md, '-o', out + '.pack'], None),
            ('thin_repair', ['thin_repair', '-i', md, '-o', out], ('thin_check', out)),
            ('thin_merge', ['thin_merge', '-i', md, '-o', out, '--origin', '1',
                            '--snapshot', '2'], ('thin_check', out)),
        ]
    if kind == 'cache':
        return [
            ('cache_check', ['cache_check', md], None),
            ('cache_dump', ['cache_dump', md], None),
            ('cache_dump --repair', ['cache_dump', '--repair', md], None),
            ('cache_repair', ['cache_repair', '-i', md, '-o', out], ('cache_check', out)),
        ]
    return [
        ('era_check', ['era_check', md], None),
        ('era_dump', ['era_dump', md], None),
        ('era_dump --logical', ['era_dump', '--logical', md], None),
        ('era_invalidate', ['era_invalidate', '--written-since', '5', md], None),
    ]


def run_one(build, argv, tmp, limits=LIMITS['normal']):
    time_limit, rss_limit_kb = limits
    timefile = os.path.join(tmp, 'time')
    full = ['/usr/bin/time', '-q', '-o', timefile, '-f', '%M',
            os.path.join(build, argv[0])] + argv[1:]
    try:
        r = subprocess.run(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=time_limit)
    except subprocess.TimeoutExpired:
        return 'hang', None, ''
    rss = None
    try:
        with open(timefile) as f:
            lines = [ln for ln in f.read().split('\n') if ln.strip()]
        rss = int(lines[-1])
    except (OSError, ValueError, IndexError):
        pass
    err = r.stderr.decode(errors='replace')
    # GNU time reports a signal as "Command terminated by signal N" and exits 128+N
    if r.returncode < 0 or r.returncode > 2 or 'terminated by signal' in err:
        return 'crash', rss, err
    if any(s in err for s in SANITIZER_REPORT):
        return 'crash', rss, '\n'.join(ln for ln in err.split('\n')
                                       if any(s in ln for s in SANITIZER_REPORT))
    if rss_limit_kb is not None and rss is not None and rss >= rss_limit_kb:
        return 'rss', rss, err
    return r.returncode, rss, err


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('build')
    ap.add_argument('-n', type=int, default=300)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--keep', default='hostile-findings')
    ap.add_argument('--kinds', default='thin,cache,era')
    ap.add_argument('--sanitized', action='store_true',
                    help='a sanitizer build: 60 s, no RSS limit, reports are crashes')
    a = ap.parse_args()
    limits = LIMITS['sanitized' if a.sanitized else 'normal']
    build = os.path.abspath(a.build)
    rng = random.Random(a.seed)
    tmp = tempfile.mkdtemp(prefix='hostile-')
    findings = []
    max_rss = 0
    try:
        kinds = a.kinds.split(',')
        base = {k: restore(build, k, {'thin': thin_xml, 'cache': cache_xml,
                                      'era': era_xml}[k](rng), os.path.join(tmp, 'base-' + k))
                for k in kinds}
        passed = failed = 0
        md = os.path.join(tmp, 'md')
        out = os.path.join(tmp, 'out')
        for i in range(a.n):
            kind = kinds[i % len(kinds)]
            img, desc = mutate(rng, base[kind], kind)
            with open(md, 'wb') as f:
                f.write(img)
            bad = []
            for name, argv, oracle in commands(kind, md, out):
                with open(out, 'wb') as f:
                    f.truncate(MD_SIZE)
                verdict, rss, err = run_one(build, argv, tmp, limits)
                max_rss = max(max_rss, rss or 0)
                if verdict == 0 and oracle:
                    v2, _, err2 = run_one(build, [oracle[0], '-q', oracle[1]], tmp, limits)
                    if v2 != 0:
                        bad.append('unsafe %s: exit 0, %s rejects its output (%s)'
                                   % (name, oracle[0], err2.strip().split('\n')[0]))
                elif verdict in ('crash', 'hang', 'rss'):
                    bad.append('%s %s (rss %s KB) %s' % (verdict, name, rss,
                                                          err.strip().split('\n')[-1][:200]))
            if bad:
                failed += 1
                os.makedirs(a.keep, exist_ok=True)
                keep = os.path.join(a.keep, '%s-%05d.md' % (kind, i))
                with open(keep, 'wb') as f:
                    f.write(img)
                for b in bad:
                    line = '%s [%s]: %s' % (keep, desc, b)
                    findings.append(line)
                    print(line, flush=True)
                with open(os.path.join(a.keep, 'findings.txt'), 'a') as f:
                    f.write('\n'.join('%s [%s]: %s' % (keep, desc, b) for b in bad) + '\n')
            else:
                passed += 1
            if (i + 1) % 100 == 0:
                print('hostile-campaign: %d/%d inputs, %d failed' % (i + 1, a.n, failed),
                      file=sys.stderr, flush=True)
        print('hostile-campaign: %d inputs (seed %d), peak RSS %d KB'
              % (a.n, a.seed, max_rss))
        print('%d passed, %d failed' % (passed, failed))
        return 1 if failed else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
