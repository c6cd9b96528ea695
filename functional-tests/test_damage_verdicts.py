# SPDX-License-Identifier: GPL-3.0-or-later
"""Every kind of damage of the catalogue (lib/damage.py): our thin_check's
verdict against upstream 1.x's on the same damaged pool.

Both must reject it (exit non-zero), with and without
--ignore-non-fatal-errors alike; where they differ, the case must be
named in the "DIFFERENCES FROM 1.x" section of man8/thin_check.8, which
says why.  The section may name no case that does not differ.

Mutations: random bit flips (a fixed seed) in the used blocks of the
catalogue's base pool, the checksum fixed so that the damage is
structural, as in the hardening campaign.  Whatever 1.x rejects, ours
must reject; whatever ours rejects, 1.x or 0.9.0 must reject too (or we
report damage no reference tool sees).
"""

import random
import shutil

import concurrent.futures
import os
import re
import unittest

from lib import damage, pools, tools
from lib import metadata as md
from lib.testing import ToolTestCase

OUR_CHECK = tools.ours('thin_check')


def man_section_cases():
    """Case names listed in thin_check.8's DIFFERENCES FROM 1.x section."""
    path = os.path.join(tools.SRC_DIR, 'man8', 'thin_check.8')
    with open(path) as f:
        text = f.read()
    m = re.search(r'^\.SH "?DIFFERENCES FROM 1\.x"?\n(.*?)(?=^\.SH )', text,
                  re.M | re.S)
    if not m:
        return set()
    return set(re.findall(r'^\.B (\w+)$', m.group(1), re.M))


class Crashed:
    """A reference tool that died (1.x aborts on some hostile sizes): it
    rejected the input, in its way."""

    def __init__(self, why):
        self.rc = 'crash'
        self.why = str(why)

    def describe(self):
        return self.why


def run_reference(argv):
    try:
        return tools.run(argv, tools.scaled(60))
    except tools.CommandFailure as e:
        return Crashed(e)


def verdicts(path, extra):
    argv_ours = [OUR_CHECK] + extra + [path]
    argv_onex = tools.onex('thin_check') + extra + [path]
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        a = ex.submit(tools.run, argv_ours, tools.scaled(60))
        b = ex.submit(run_reference, argv_onex)
        return a.result(), b.result()


class TestDamageVerdicts(ToolTestCase):
    def test_every_case_against_1x(self):
        documented = man_section_cases()
        differ = set()
        for case in damage.CASES:
            path = damage.make(case.name)
            for extra in ([], ['--ignore-non-fatal-errors']):
                with self.subTest(case=case.name, options=extra):
                    ours, onex = verdicts(path, extra)
                    if (ours.rc != 0) == (onex.rc != 0):
                        if not extra:
                            self.assertNotEqual(ours.rc, 0, 'ours accepts '
                                                'damage:\n' + ours.describe())
                        continue
                    differ.add(case.name)
                    self.assertIn(case.name, documented,
                                  'verdicts differ (ours %s, 1.x %s) and '
                                  'thin_check.8 does not say why\n%s\n%s' % (
                                      ours.rc, onex.rc, ours.describe(),
                                      onex.describe()))
        self.assertEqual(documented - differ, set(),
                         'thin_check.8 lists cases whose verdicts agree')


# Checks only ours makes, each named (by its first words) in thin_check.8's
# DIFFERENCES FROM 1.x section: (regex of our message, the man page's term)
OURS_ONLY = [
    (r'data space map index entr', 'data space map index keys'),
    (r'needs more bitmaps than the metadata device', 'space map sizes'),
]


def man_section_text():
    path = os.path.join(tools.SRC_DIR, 'man8', 'thin_check.8')
    with open(path) as f:
        text = f.read()
    m = re.search(r'^\.SH "?DIFFERENCES FROM 1\.x"?\n(.*?)(?=^\.SH )', text,
                  re.M | re.S)
    return m.group(1) if m else ''


NR_MUTATIONS = int(os.environ.get('THINP_DAMAGE_MUTATIONS', '40'))
CSUMS = (md.CSUM_SUPERBLOCK, md.CSUM_NODE, md.CSUM_BITMAP, md.CSUM_INDEX)


def mutations(base, rng, n):
    """(block, offset, bit, mutated image) with the block re-checksummed."""
    data = open(base, 'rb').read()
    with md.Metadata(base) as img:
        used = [b for b, c in img.sm_counts_range('md') if c]
    made = 0
    while made < n:
        b = rng.choice(used)
        blk = bytearray(data[b * md.BLOCK_SIZE:(b + 1) * md.BLOCK_SIZE])
        kinds = [x for x in CSUMS if md.checksum_ok(bytes(blk), x)]
        if not kinds:
            continue
        # mostly the headers, keys and first values; sometimes anywhere
        off = rng.randrange(4, md.BLOCK_SIZE if rng.random() < 0.3 else 600)
        bit = rng.randrange(8)
        blk[off] ^= 1 << bit
        md.rechecksum(blk, kinds[0])
        out = bytearray(data)
        out[b * md.BLOCK_SIZE:(b + 1) * md.BLOCK_SIZE] = blk
        made += 1
        yield b, off, bit, bytes(out)


class TestMutationVerdicts(ToolTestCase):
    def test_random_structural_mutations(self):
        base = pools.get(damage.BASE_POOL).meta
        d = tools.temp_dir('mutations-')
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, 'mutated.meta')
        rng = random.Random(10)
        for b, off, bit, image in mutations(base, rng, NR_MUTATIONS):
            with open(path, 'wb') as f:
                f.write(image)
            ours, onex = verdicts(path, [])
            with self.subTest(block=b, offset=off, bit=bit):
                if onex.rc != 0:
                    self.assertNotEqual(ours.rc, 0, '1.x rejects, ours '
                                        'accepts:\n' + onex.describe())
                elif ours.rc != 0:
                    debian = run_reference([tools.DEBIAN['thin_check'], path])
                    if debian.rc != 0:
                        continue
                    why = [term for rx, term in OURS_ONLY
                           if re.search(rx, ours.err)]
                    self.assertTrue(why, 'only ours rejects, and '
                                    'thin_check.8 does not say why:\n' +
                                    ours.describe())
                    self.assertIn(why[0], man_section_text())


if __name__ == '__main__':
    unittest.main()
