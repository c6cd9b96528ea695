# SPDX-License-Identifier: GPL-3.0-or-later
"""Pools written in the 1.x XML dialect: shared sections.

The 1.x thin_dump writes mappings held by leaves that several devices
share once, in a <def name="N"> section directly inside <superblock>,
and splices them into each device with <ref name="N"/> (format doc,
section 11.1).  A SharedPool keeps such a pool as plain data: named
sections (runs, as in lib/poolgen.py) and, per device, a list of items,
each a reference to a section or a private run.

expanded() gives the poolgen.Pool the XML stands for (every ref replaced
by the section's runs): what thin_dump 0.9.0 prints once the XML is
restored is that pool's expected_xml().

Everything is deterministic from the seed.
"""

import random

from . import poolgen


class SharedPool:
    """sections: [(name, runs)]; devices: [(poolgen.Device without runs,
    items)], items being ('ref', name) or ('run', (origin, data, length,
    time))."""

    def __init__(self, name, time, transaction, data_block_size,
                 nr_data_blocks, sections, devices):
        self.name = name
        self.time = time
        self.transaction = transaction
        self.data_block_size = data_block_size
        self.nr_data_blocks = nr_data_blocks
        self.sections = sections
        self.devices = devices

    def section(self, name):
        for n, runs in self.sections:
            if n == name:
                return runs
        raise KeyError(name)

    def device_runs(self, items):
        runs = []
        for kind, what in items:
            if kind == 'ref':
                runs.extend(self.section(what))
            else:
                runs.append(what)
        return runs

    def expanded(self):
        """The equivalent pool without shared sections (version 2, flags 0:
        what a restore of this XML must write)."""
        devs = []
        for dev, items in self.devices:
            devs.append(poolgen.Device(dev.dev_id, dev.transaction,
                                       dev.creation_time, dev.snap_time,
                                       self.device_runs(items)))
        pool = poolgen.Pool(self.name, time=self.time,
                            transaction=self.transaction, flags=0, version=2,
                            data_block_size=self.data_block_size,
                            nr_data_blocks=self.nr_data_blocks, devices=devs)
        pool.check()
        return pool

    def nr_refs(self):
        return sum(1 for _, items in self.devices
                   for kind, _ in items if kind == 'ref')

    # -- XML (1.x dialect)
    @staticmethod
    def _run_line(indent, run):
        o, d, n, t = run
        if n == 1:
            return ('%s<single_mapping origin_block="%d" data_block="%d" '
                    'time="%d"/>\n' % (indent, o, d, t))
        return ('%s<range_mapping origin_begin="%d" data_begin="%d" '
                'length="%d" time="%d"/>\n' % (indent, o, d, n, t))

    def xml_lines(self):
        yield ('<superblock uuid="" time="%d" transaction="%d" version="2" '
               'data_block_size="%d" nr_data_blocks="%d">\n' % (
                   self.time, self.transaction, self.data_block_size,
                   self.nr_data_blocks))
        for name, runs in self.sections:
            yield '  <def name="%s">\n' % name
            for run in runs:
                yield self._run_line('    ', run)
            yield '  </def>\n'
        for dev, items in self.devices:
            mapped = sum(r[2] for r in self.device_runs(items))
            yield ('  <device dev_id="%d" mapped_blocks="%d" transaction="%d" '
                   'creation_time="%d" snap_time="%d">\n' % (
                       dev.dev_id, mapped, dev.transaction,
                       dev.creation_time, dev.snap_time))
            for kind, what in items:
                if kind == 'ref':
                    yield '    <ref name="%s"/>\n' % what
                else:
                    yield self._run_line('    ', what)
            yield '  </device>\n'
        yield '</superblock>\n'

    def write_xml(self, path):
        with open(path, 'w') as f:
            f.writelines(self.xml_lines())


def shared_snapshots(seed=1, nr_sections=6, per_section=8000):
    """An origin and snapshots sharing most of their leaves.

    Sections cover disjoint origin ranges with gaps between them.  Device
    0 refers to every section; the others refer to some, overwrite other
    sections' ranges with private runs (new data blocks), write in the
    gaps, extend a section with a private run contiguous with its last
    run (one range in the dump), or hold no mappings at all."""
    rng = random.Random('shared_snapshots/%d' % seed)
    alloc = poolgen.DataAllocator(rng, max_gap=2)
    gap = 500
    sections = []
    bounds = []             # (first origin, end origin) of each section
    origin = 0
    for i in range(nr_sections):
        runs = poolgen.random_runs(rng, alloc, per_section, 1,
                                   origin_start=origin, max_run=64,
                                   single_ratio=0.3, max_hole=4)
        # names as 1.x writes them (block numbers), one that is not
        name = 'section-%d' % i if i == 3 else str(1000 + 37 * i)
        sections.append((name, runs))
        end = runs[-1][0] + runs[-1][2]
        bounds.append((origin, end))
        origin = end + gap

    def ref(i):
        return ('ref', sections[i][0])

    def private(i, time, count=None):
        """Private runs over section i's origin range (an overwrite)."""
        lo, hi = bounds[i]
        n = count or (hi - lo) // 3
        return [('run', r) for r in poolgen.random_runs(
            rng, alloc, n, time, origin_start=lo, max_run=16, max_hole=2,
            time_min=time) if r[0] + r[2] <= hi]

    def in_gap(i, time):
        """Private runs in the gap after section i."""
        lo = bounds[i][1] + 10
        return [('run', r) for r in poolgen.random_runs(
            rng, alloc, 50, time, origin_start=lo, max_run=8, max_hole=1,
            time_min=time) if r[0] + r[2] <= lo + gap - 20]

    devices = []

    def device(dev_id, ctime, items):
        devices.append((poolgen.Device(dev_id, transaction=dev_id,
                                       creation_time=ctime,
                                       snap_time=min(ctime + 1, 5)), items))

    device(0, 0, [ref(i) for i in range(nr_sections)])
    device(1, 1, [ref(0), ref(1), ref(2)] + in_gap(2, 1)
           + [ref(i) for i in range(3, nr_sections)])
    device(2, 2, [ref(0)] + private(1, 2) + [ref(2), ref(3)] + private(4, 2)
           + [ref(5)] + in_gap(5, 2))
    device(3, 3, [ref(1), ref(4)])
    device(5, 3, [])
    device(7, 4, private(0, 4, 500) + private(2, 4, 300))
    # section 5 followed by a run contiguous with its last one, same time
    o, d, n, t = sections[5][1][-1]
    device(9, 5, [ref(4), ref(5), ('run', (o + n, d + n, 5, t))])
    nr_data = alloc.next + 300
    return SharedPool('shared_snapshots', time=5, transaction=10,
                      data_block_size=128, nr_data_blocks=nr_data,
                      sections=sections, devices=devices)
