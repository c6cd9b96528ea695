#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Stream the v0.9 XML description of a benchmark pool to stdout.

    gen-pool.py --mappings N [--snap-percent P [--shared] | --clustered K:M]
                [--other-devices D] [--seed S] > pool.xml

The pool is the one thin_merge is for: device 1 is the full copy of an
external origin (N mappings, time 0), device 2 the external snapshot that
took writes after the copy (time 1), optionally followed by D small
unrelated devices (ids 3 ...).  Superblock time 2, data_block_size 128
(64 KiB) unless told otherwise, nr_data_blocks exactly what the mappings
use.

Layout of the data blocks:
  * origin: virtual blocks 0 .. N-1 all mapped, data laid out as a copy
    made by the pool allocator: sequential runs of a few hundred blocks
    (--run-length, default 64:512) each followed by a forward jump of 1 to
    --max-gap blocks (blocks some other writer took, left free here);
  * snapshot, --snap-percent P: round(N * P / 100) random single-block
    writes spread uniformly over 0 .. N-1, each to a fresh data block
    beyond the origin's data, allocated in write order (which is not
    virtual order, so the dump shows single_mappings);
  * snapshot, --clustered K:M: M writes in K hot spots (windows about twice
    as wide as their write count, one per N/K stretch), fresh data blocks
    allocated in a random order inside each hot spot;
  * snapshot, --snap-percent P --shared: the same writes, but device 2 is
    a snapshot as the kernel makes one: it maps all N blocks, the origin's
    data where it was not written, and shares with the origin every
    mapping-tree leaf it has not written.  The virtual blocks are cut into
    leaf-sized sections (LEAF_ENTRIES, what one full leaf holds); each
    stretch of sections without a write is a <def> (1.x's dialect, which
    0.9.0's thin_restore rejects) that both devices <ref>; a section with
    a write is the origin's own mappings in device 1 and a private copy
    with the writes in device 2;
  * other devices: a few hundred to a few thousand blocks in a few ranges
    each, fresh data after the snapshot's.

Nothing proportional to N is held in memory: the origin's runs are
generated twice from the same seed (once to size the data device, once to
write them), the snapshot's blocks chunk by chunk, and its data blocks come
from an affine permutation of the write indices.  Output is written in
large buffered chunks: 16M origin mappings (1% snapshot) take about a
second, 16M + 16M single mappings (--snap-percent 100) about 35 s.

On success a JSON summary goes to stderr (device ids, mapped_blocks per
device, nr_data_blocks), for scripts that need the ids (e.g. --origin 1
--snapshot 2 for a merge).  Exit 0 on success, 2 on bad arguments
(argparse), 1 if the pool would exceed 2^40 data blocks.
"""

import argparse
import json
import math
import random
import sys

# Bump when the same arguments produce a different pool: run-bench.sh keys
# its cache of generated pools on it.
POOL_FORMAT = 1

ORIGIN_ID = 1
SNAPSHOT_ID = 2
FIRST_OTHER_ID = 3
ORIGIN_TIME = 0
SNAPSHOT_TIME = 1
POOL_TIME = 2
POOL_TRANSACTION = 2
LEAF_ENTRIES = 252     # mappings in a full leaf: (4096 - 32) / 16, a multiple of 3
CHUNK = 65536          # virtual blocks sampled at a time for the snapshot
FLUSH_LINES = 16384    # lines per write to stdout
MAX_DATA_BLOCKS = 1 << 40


# ----------------------------------------------------------------
# Argument parsing

def positive_int(s):
    try:
        v = int(s, 10)
    except ValueError:
        raise argparse.ArgumentTypeError('not a number: %r' % s)
    if v < 1:
        raise argparse.ArgumentTypeError('must be at least 1: %r' % s)
    return v


def natural(s):
    try:
        v = int(s, 10)
    except ValueError:
        raise argparse.ArgumentTypeError('not a number: %r' % s)
    if v < 0:
        raise argparse.ArgumentTypeError('must not be negative: %r' % s)
    return v


def percent(s):
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError('not a number: %r' % s)
    if not 0.0 <= v <= 100.0:
        raise argparse.ArgumentTypeError('must be 0 .. 100: %r' % s)
    return v


def pair(s):
    parts = s.split(':')
    if len(parts) != 2:
        raise argparse.ArgumentTypeError('expected A:B, got %r' % s)
    return positive_int(parts[0]), positive_int(parts[1])


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog='gen-pool.py',
        description='Stream a benchmark pool as v0.9 thin_dump XML.')
    p.add_argument('--mappings', type=positive_int, required=True,
                   help='mappings of the origin copy (device 1)')
    g = p.add_mutually_exclusive_group()
    g.add_argument('--snap-percent', type=percent, default=None,
                   help='random single-block writes to the snapshot '
                   '(device 2), in %% of --mappings (default 1)')
    g.add_argument('--clustered', type=pair, metavar='K:M',
                   help='instead: M snapshot writes in K hot spots')
    p.add_argument('--shared', action='store_true',
                   help='with --snap-percent: device 2 is a kernel-style '
                   'snapshot sharing its unwritten leaves with device 1')
    p.add_argument('--other-devices', type=natural, default=0, metavar='D',
                   help='extra small devices (ids 3 ...)')
    p.add_argument('--run-length', type=pair, default=(64, 512),
                   metavar='MIN:MAX',
                   help='origin run lengths in blocks (default 64:512)')
    p.add_argument('--max-gap', type=positive_int, default=32,
                   help='largest forward jump between origin runs '
                   '(default 32)')
    p.add_argument('--data-block-size', type=positive_int, default=128,
                   help='in 512-byte sectors (default 128)')
    p.add_argument('--seed', type=natural, default=1)
    a = p.parse_args(argv)
    if a.snap_percent is None and a.clustered is None:
        a.snap_percent = 1.0
    if a.shared and a.clustered is not None:
        p.error('--shared goes with --snap-percent only')
    lo, hi = a.run_length
    if lo > hi:
        p.error('--run-length: MIN > MAX')
    if a.clustered is not None:
        k, m = a.clustered
        if m > a.mappings or (m + k - 1) // k > a.mappings // k:
            p.error('--clustered %d:%d: hot spots do not fit in %d blocks'
                    % (k, m, a.mappings))
    return a


# ----------------------------------------------------------------
# Buffered output

class Out:
    def __init__(self, stream):
        self.stream = stream
        self.buf = []

    def add(self, line):
        self.buf.append(line)
        if len(self.buf) >= FLUSH_LINES:
            self.flush()

    def flush(self):
        if self.buf:
            self.stream.write(''.join(self.buf))
            self.buf = []


def device_open(out, dev_id, mapped, ctime, stime):
    out.add('  <device dev_id="%d" mapped_blocks="%d" transaction="0" '
            'creation_time="%d" snap_time="%d">\n'
            % (dev_id, mapped, ctime, stime))


def device_close(out):
    out.add('  </device>\n')


def emit_run(out, o, d, n, t):
    if n == 1:
        out.add('    <single_mapping origin_block="%d" data_block="%d" '
                'time="%d"/>\n' % (o, d, t))
    else:
        out.add('    <range_mapping origin_begin="%d" data_begin="%d" '
                'length="%d" time="%d"/>\n' % (o, d, n, t))


# ----------------------------------------------------------------
# The origin copy

def origin_runs(a):
    """Yield (origin_begin, data_begin, length); deterministic per seed."""
    rng = random.Random('%d-origin' % a.seed)
    lo, hi = a.run_length
    o = d = 0
    n = a.mappings
    while o < n:
        length = min(rng.randint(lo, hi), n - o)
        yield o, d, length
        o += length
        d += length + rng.randint(1, a.max_gap)


def origin_data_end(a):
    end = 0
    for _, d, n in origin_runs(a):
        end = d + n
    return end


# ----------------------------------------------------------------
# The snapshot

def coprime_multiplier(k, rng):
    """A multiplier a with gcd(a, k) == 1 and a != 1, k - 1 (so that writes
    adjacent in virtual order never get adjacent data blocks), near the
    golden section of k so that successive writes land far apart."""
    if k <= 3:
        return 1
    a = int(k * 0.6180339887) + rng.randrange(max(1, k // 100))
    while True:
        a %= k
        if a not in (0, 1, k - 1) and math.gcd(a, k) == 1:
            return a
        a += 1


def percent_writes(a):
    """(count, generator of sorted virtual blocks) for --snap-percent."""
    n = a.mappings
    k = int(round(n * a.snap_percent / 100.0))
    rng = random.Random('%d-snapshot' % a.seed)
    nchunks = (n + CHUNK - 1) // CHUNK
    sizes = [min(CHUNK, n - i * CHUNK) for i in range(nchunks)]
    counts = [size * k // n for size in sizes]
    # floor() loses less than one per chunk: hand the rest to random chunks
    for i in rng.sample(range(nchunks), k - sum(counts)):
        counts[i] += 1

    def blocks():
        for i, (size, c) in enumerate(zip(sizes, counts)):
            base = i * CHUNK
            for v in sorted(rng.sample(range(size), c)):
                yield base + v
    return k, blocks()


def snapshot_runs_percent(a, data_base):
    k, blocks = percent_writes(a)
    rng = random.Random('%d-snapshot-data' % a.seed)
    mul = coprime_multiplier(k, rng)
    off = rng.randrange(k) if k else 0

    def runs():
        for i, v in enumerate(blocks):
            yield v, data_base + (mul * i + off) % k, 1
    return k, runs()


def snapshot_runs_clustered(a, data_base):
    nspots, m = a.clustered
    per, extra = divmod(m, nspots)
    seg = a.mappings // nspots

    def runs():
        rng = random.Random('%d-clustered' % a.seed)
        d = data_base
        for h in range(nspots):
            c = per + (1 if h < extra else 0)
            if c == 0:
                continue
            width = min(seg, 2 * c)
            start = h * seg + rng.randrange(seg - width + 1)
            where = sorted(rng.sample(range(width), c))
            order = list(range(c))
            rng.shuffle(order)
            # merge neighbours that happen to get consecutive data blocks,
            # as thin_dump would
            run = None
            for v, j in zip(where, order):
                o, db = start + v, d + j
                if run and o == run[0] + run[2] and db == run[1] + run[2]:
                    run[2] += 1
                    continue
                if run:
                    yield tuple(run)
                run = [o, db, 1]
            if run:
                yield tuple(run)
            d += c
    return m, runs()


# ----------------------------------------------------------------
# The snapshot, --shared

def section_pieces(a):
    """Yield (section, [(o, d, n) ...]): the origin's runs cut at leaf
    section boundaries (every virtual block is mapped, so every section
    comes, in order)."""
    cur, pieces = 0, []
    for o, d, n in origin_runs(a):
        while n:
            s = o // LEAF_ENTRIES
            if s != cur:
                yield cur, pieces
                cur, pieces = s, []
            take = min(n, (s + 1) * LEAF_ENTRIES - o)
            pieces.append((o, d, take))
            o, d, n = o + take, d + take, n - take
    if pieces:
        yield cur, pieces


def shared_segments(a, data_base):
    """Yield ('shared', name, pieces) for each maximal stretch of sections
    without a write, ('written', pieces, writes) for each section with
    some; writes are (virtual, data) in virtual order.  Deterministic:
    each pass over the pool calls it again."""
    _, snap = snapshot_runs_percent(a, data_base)
    writes = ((v, d) for v, d, _ in snap)
    nxt = next(writes, None)
    stretch, first = [], None
    for sec, pieces in section_pieces(a):
        mine = []
        while nxt is not None and nxt[0] // LEAF_ENTRIES == sec:
            mine.append(nxt)
            nxt = next(writes, None)
        if not mine:
            if first is None:
                first = sec
            stretch.extend(pieces)
            continue
        if stretch:
            yield 'shared', 's%d' % first, stretch
            stretch, first = [], None
        yield 'written', pieces, mine
    if stretch:
        yield 'shared', 's%d' % first, stretch


def overwrite(pieces, writes):
    """The origin's pieces of one section with single-block writes
    replacing some of their blocks: (o, d, n, time) runs."""
    i = 0
    for o, d, n in pieces:
        end = o + n
        while o < end:
            if i < len(writes) and writes[i][0] == o:
                yield o, writes[i][1], 1, SNAPSHOT_TIME
                i += 1
                o, d = o + 1, d + 1
                continue
            stop = writes[i][0] if i < len(writes) and writes[i][0] < end else end
            yield o, d, stop - o, ORIGIN_TIME
            o, d = stop, d + stop - o


# ----------------------------------------------------------------
# Other devices

def other_devices(a, data_base):
    """List of (dev_id, runs); small, so built in memory."""
    rng = random.Random('%d-others' % a.seed)
    devs = []
    d = data_base
    for i in range(a.other_devices):
        runs = []
        o = 0
        for _ in range(rng.randint(1, 8)):
            o += rng.randint(0, 1024)
            n = rng.randint(32, 512)
            runs.append((o, d, n))
            o += n
            d += n
        devs.append((FIRST_OTHER_ID + i, runs))
    return devs, d


# ----------------------------------------------------------------

def emit_shared(out, a, data_base):
    """The <def>s, then devices 1 and 2 (--shared); returns the number of
    leaves the two share."""
    shared = 0
    for kind, what, pieces in shared_segments(a, data_base):
        if kind == 'shared':
            shared += (sum(n for _, _, n in pieces) + LEAF_ENTRIES - 1) // LEAF_ENTRIES
            out.add('  <def name="%s">\n' % what)
            for o, d, n in pieces:
                emit_run(out, o, d, n, ORIGIN_TIME)
            out.add('  </def>\n')
    device_open(out, ORIGIN_ID, a.mappings, ORIGIN_TIME, ORIGIN_TIME)
    for kind, what, pieces in shared_segments(a, data_base):
        if kind == 'shared':
            out.add('    <ref name="%s"/>\n' % what)
        else:
            for o, d, n in what:
                emit_run(out, o, d, n, ORIGIN_TIME)
    device_close(out)
    device_open(out, SNAPSHOT_ID, a.mappings, SNAPSHOT_TIME, SNAPSHOT_TIME)
    for kind, what, pieces in shared_segments(a, data_base):
        if kind == 'shared':
            out.add('    <ref name="%s"/>\n' % what)
        else:
            for o, d, n, t in overwrite(what, pieces):
                emit_run(out, o, d, n, t)
    device_close(out)
    return shared


def main(argv):
    a = parse_args(argv)
    origin_end = origin_data_end(a)
    if a.clustered is not None:
        snap_count, snap_runs = snapshot_runs_clustered(a, origin_end)
    else:
        snap_count, snap_runs = snapshot_runs_percent(a, origin_end)
    others, data_end = other_devices(a, origin_end + snap_count)
    if data_end > MAX_DATA_BLOCKS:
        sys.stderr.write('gen-pool.py: pool too large (%d data blocks)\n'
                         % data_end)
        return 1

    stream = open(sys.stdout.fileno(), 'w', buffering=1 << 20,
                  encoding='ascii', closefd=False)
    out = Out(stream)
    out.add('<superblock uuid="" time="%d" transaction="%d" flags="0" '
            'version="2" data_block_size="%d" nr_data_blocks="%d">\n'
            % (POOL_TIME, POOL_TRANSACTION, a.data_block_size, data_end))

    if a.shared:
        shared_leaves = emit_shared(out, a, origin_end)
        snap_mapped = a.mappings
    else:
        device_open(out, ORIGIN_ID, a.mappings, ORIGIN_TIME, ORIGIN_TIME)
        for o, d, n in origin_runs(a):
            emit_run(out, o, d, n, ORIGIN_TIME)
        device_close(out)

        device_open(out, SNAPSHOT_ID, snap_count, SNAPSHOT_TIME, SNAPSHOT_TIME)
        for o, d, n in snap_runs:
            emit_run(out, o, d, n, SNAPSHOT_TIME)
        device_close(out)
        snap_mapped = snap_count

    mapped = {str(ORIGIN_ID): a.mappings, str(SNAPSHOT_ID): snap_mapped}
    for dev_id, runs in others:
        count = sum(n for _, _, n in runs)
        mapped[str(dev_id)] = count
        device_open(out, dev_id, count, ORIGIN_TIME, ORIGIN_TIME)
        for o, d, n in runs:
            emit_run(out, o, d, n, ORIGIN_TIME)
        device_close(out)

    out.add('</superblock>\n')
    out.flush()
    stream.flush()

    json.dump({'origin': ORIGIN_ID, 'snapshot': SNAPSHOT_ID,
               'others': [dev_id for dev_id, _ in others],
               'mapped_blocks': mapped,
               'nr_data_blocks': data_end,
               'data_block_size': a.data_block_size,
               'time': POOL_TIME, 'transaction': POOL_TRANSACTION,
               'seed': a.seed,
               'shared_leaves': shared_leaves if a.shared else 0},
              sys.stderr, sort_keys=True)
    sys.stderr.write('\n')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv[1:]))
    except BrokenPipeError:
        sys.exit(1)
