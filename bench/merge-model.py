#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""thin_merge done with the XML tools: a streaming filter of thin_dump XML.

    thin_dump IN | merge-model.py --origin O --snapshot S [--spool-dir D] \\
        | thin_restore -i /dev/stdin -o OUT

What a user of thin-provisioning-tools 1.x, which has no thin_merge, would
run: the whole pool's XML goes through, except that devices O and S are
replaced by one device M with O's id and details, holding S's mappings
where S maps a block and O's elsewhere (the semantics of our thin_merge,
see man8/thin_merge.8): mapped_blocks recomputed, snap_time the later of
O's and S's, mapping times kept.  thin_restore then recounts the space
maps, so O's blocks hidden by S become free.

Streaming, line by line, in one pass over stdin; memory holds S's
mappings only:
  * O's mapping lines are spooled, as they come, to a temporary file
    (--spool-dir, default $TMPDIR): M's header carries mapped_blocks, which
    is known only once both devices have been read;
  * S's mappings are kept in memory (sorted, as thin_dump prints them);
  * at the end of the later of the two devices, M is written: one pass over
    the spool counts M's blocks, a second one writes the header and the
    mappings of O and S interleaved in block order.
Every other line passes through unchanged, so M takes the place of the
later of O and S in the output (for the benchmark pool: S's place, right
after where O was, so the devices stay in id order).

Shared sections (<def>/<ref>, printed by 1.x thin_dump when devices share
leaves) cannot be streamed this way: the filter stops with an error if O or
S uses one.  Exit 0 on success, 1 on a malformed or unsupported input or a
missing device, 2 on bad arguments.
"""

import argparse
import re
import sys
import tempfile

ATTR = re.compile(r'(\w+)="([^"]*)"')


def attrs(line):
    return dict(ATTR.findall(line))


def parse_mapping(line):
    """(begin, data_begin, length, time) of a mapping line, or None."""
    s = line.lstrip()
    if s.startswith('<range_mapping'):
        a = attrs(s)
        return (int(a['origin_begin']), int(a['data_begin']),
                int(a['length']), int(a['time']))
    if s.startswith('<single_mapping'):
        a = attrs(s)
        return (int(a['origin_block']), int(a['data_block']), 1,
                int(a['time']))
    return None


def mapping_line(b, d, n, t):
    if n == 1:
        return ('    <single_mapping origin_block="%d" data_block="%d" '
                'time="%d"/>\n' % (b, d, t))
    return ('    <range_mapping origin_begin="%d" data_begin="%d" '
            'length="%d" time="%d"/>\n' % (b, d, n, t))


class Fail(Exception):
    pass


def overlay(o_runs, s_runs, emit):
    """Calls emit(b, d, n, t) for M's runs in block order: S's runs where
    S maps, O's (clipped) elsewhere.  Returns the number of blocks."""
    total = 0
    si = 0
    ns = len(s_runs)
    cover_end = -1            # end of the last S run written
    last_end = -1             # to check that O is sorted
    for ob, od, on, ot in o_runs:
        if ob < last_end:
            raise Fail('origin mappings not in block order at block %d' % ob)
        last_end = end = ob + on
        pos = ob
        while pos < end:
            if pos < cover_end:             # hidden by S
                pos = min(cover_end, end)
                continue
            if si < ns and s_runs[si][0] <= pos:
                sb, sd, sn, st = s_runs[si]
                emit(sb, sd, sn, st)
                total += sn
                cover_end = sb + sn
                si += 1
                continue
            stop = min(end, s_runs[si][0]) if si < ns else end
            emit(pos, od + (pos - ob), stop - pos, ot)
            total += stop - pos
            pos = stop
    for sb, sd, sn, st in s_runs[si:]:
        emit(sb, sd, sn, st)
        total += sn
    return total


def spooled_runs(spool):
    spool.seek(0)
    for line in spool:
        b, d, n, t = line.split()
        yield int(b), int(d), int(n), int(t)


def main(argv):
    p = argparse.ArgumentParser(
        prog='merge-model.py',
        description='Merge an external snapshot with its origin in thin_dump '
        'XML, streaming (stdin to stdout).')
    p.add_argument('--origin', type=int, required=True)
    p.add_argument('--snapshot', type=int, required=True)
    p.add_argument('--spool-dir', default=None,
                   help='where the temporary copy of the origin\'s mappings '
                   'goes (default: $TMPDIR)')
    a = p.parse_args(argv)
    if a.origin == a.snapshot:
        p.error('--origin and --snapshot must differ')

    out = open(sys.stdout.fileno(), 'w', buffering=1 << 20, encoding='ascii',
               closefd=False)
    inp = open(sys.stdin.fileno(), 'r', buffering=1 << 20, encoding='ascii',
               closefd=False)
    spool = tempfile.TemporaryFile('w+', dir=a.spool_dir, encoding='ascii',
                                   buffering=1 << 20)
    o_head = s_head = None      # device attributes
    s_runs = []
    seen = 0                    # of O and S, how many were read
    current = None              # 'O', 'S' or None (another device / none)
    for line in inp:
        s = line.lstrip()
        if current is None:
            if s.startswith('<device '):
                dev = attrs(s)
                dev_id = int(dev['dev_id'])
                if dev_id == a.origin:
                    current, o_head = 'O', dev
                    continue
                if dev_id == a.snapshot:
                    current, s_head = 'S', dev
                    continue
            out.write(line)
            continue
        if s.startswith('</device>'):
            seen += 1
            current = None
            if seen == 2:
                write_merged(out, o_head, s_head, spool, s_runs)
            continue
        m = parse_mapping(s)
        if m is None:
            raise Fail('unsupported line in device %s: %s'
                       % (current, s.strip()[:80]))
        if current == 'O':
            spool.write('%d %d %d %d\n' % m)
        else:
            if s_runs and m[0] < s_runs[-1][0] + s_runs[-1][2]:
                raise Fail('snapshot mappings not in block order at block %d'
                           % m[0])
            s_runs.append(m)
    if current is not None:
        raise Fail('input ends inside device %s' % current)
    if o_head is None or s_head is None:
        raise Fail('device %d not found' % (a.snapshot if o_head else a.origin))
    out.flush()
    return 0


def write_merged(out, o_head, s_head, spool, s_runs):
    spool.flush()
    mapped = overlay(spooled_runs(spool), s_runs, lambda b, d, n, t: None)
    snap_time = max(int(o_head['snap_time']), int(s_head['snap_time']))
    out.write('  <device dev_id="%s" mapped_blocks="%d" transaction="%s" '
              'creation_time="%s" snap_time="%d">\n'
              % (o_head['dev_id'], mapped, o_head['transaction'],
                 o_head['creation_time'], snap_time))
    buf = []

    def emit(b, d, n, t):
        buf.append(mapping_line(b, d, n, t))
        if len(buf) >= 16384:
            out.write(''.join(buf))
            buf.clear()
    overlay(spooled_runs(spool), s_runs, emit)
    out.write(''.join(buf))
    out.write('  </device>\n')
    spool.close()


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv[1:]))
    except Fail as e:
        sys.stderr.write('merge-model.py: %s\n' % e)
        sys.exit(1)
    except (KeyError, ValueError) as e:
        sys.stderr.write('merge-model.py: malformed input: %r\n' % (e,))
        sys.exit(1)
    except BrokenPipeError:
        sys.exit(1)
