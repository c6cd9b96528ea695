# SPDX-License-Identifier: GPL-3.0-or-later
"""Cache and era metadata for the functional tests: models written here
(independent of the C code), their XML in the layout 0.9's cache_dump and
era_dump write, binary fixtures restored by a chosen tool, and the
checksum to damage superblocks with."""

import base64
import os
import random

from . import tools


def crc32c(data):
    table = _crc_table()
    crc = 0xffffffff
    for b in data:
        crc = table[(crc ^ b) & 0xff] ^ (crc >> 8)
    return crc


_TABLE = []


def _crc_table():
    if not _TABLE:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            _TABLE.append(c)
    return _TABLE


CACHE_SB_XOR = 9031977
ERA_SB_XOR = 146538381


def restamp(path, xor, block=0):
    """Recomputes the checksum of a superblock after a field was changed."""
    with open(path, 'r+b') as f:
        f.seek(block * 4096)
        data = bytearray(f.read(4096))
        csum = crc32c(bytes(data[4:])) ^ xor
        data[0:4] = csum.to_bytes(4, 'little')
        f.seek(block * 4096)
        f.write(data)


# ----------------------------------------------------------------
# Cache

class CacheModel:
    def __init__(self, nr_blocks, block_size=128, policy='smq', seed=0,
                 fill=0.5, dirty=0.3):
        rng = random.Random(seed)
        self.nr_blocks = nr_blocks
        self.block_size = block_size
        self.policy = policy
        self.mappings = {}      # cblock -> (oblock, dirty)
        self.hints = {}         # cblock -> 4 bytes
        oblocks = rng.sample(range(nr_blocks * 4 + 10), nr_blocks) if nr_blocks else []
        for cb in range(nr_blocks):
            if rng.random() < fill:
                self.mappings[cb] = (oblocks[cb], rng.random() < dirty)
                self.hints[cb] = rng.getrandbits(32).to_bytes(4, 'little')

    def xml(self, with_dirty=True):
        out = ['<superblock uuid="" block_size="%d" nr_cache_blocks="%d" '
               'policy="%s" hint_width="4">' % (self.block_size, self.nr_blocks,
                                                 self.policy),
               '  <mappings>']
        for cb in sorted(self.mappings):
            ob, d = self.mappings[cb]
            out.append('    <mapping cache_block="%d" origin_block="%d" dirty="%s"/>'
                       % (cb, ob, 'true' if d and with_dirty else 'false'))
        out.append('  </mappings>')
        out.append('  <hints>')
        for cb in sorted(self.hints):
            out.append('    <hint cache_block="%d" data="%s"/>'
                       % (cb, base64.b64encode(self.hints[cb]).decode()))
        out.append('  </hints>')
        out.append('</superblock>')
        return ('\n'.join(out) + '\n').encode()


def write(path, data):
    with open(path, 'wb') as f:
        f.write(data)
    return path


def blank(path, mib=8):
    with open(path, 'wb') as f:
        f.truncate(mib << 20)
    return path


def restore_cache(argv_prefix, xml_path, meta_path, extra=()):
    blank(meta_path)
    r = tools.run(list(argv_prefix) + ['-i', xml_path, '-o', meta_path] + list(extra))
    if r.rc != 0:
        raise AssertionError('restore failed: %s' % r.describe())
    return meta_path


# ----------------------------------------------------------------
# Era

class EraModel:
    def __init__(self, nr_blocks, current_era=10, nr_writesets=2, seed=0,
                 block_size=128):
        rng = random.Random(seed)
        self.nr_blocks = nr_blocks
        self.block_size = block_size
        self.current_era = current_era
        self.eras = [rng.randrange(0, current_era - nr_writesets)
                     if rng.random() < 0.6 else 0 for _ in range(nr_blocks)]
        self.writesets = {}     # era -> set of blocks
        for k in range(nr_writesets):
            era = current_era - nr_writesets + k
            self.writesets[era] = set(b for b in range(nr_blocks)
                                      if rng.random() < 0.1)

    def xml(self):
        out = ['<superblock uuid="" block_size="%d" nr_blocks="%d" current_era="%d">'
               % (self.block_size, self.nr_blocks, self.current_era)]
        for era in sorted(self.writesets):
            out.append('  <writeset era="%d" nr_bits="%d">' % (era, self.nr_blocks))
            for b in range(self.nr_blocks):
                out.append('    <bit block="%d" value="%s"/>'
                           % (b, 'true' if b in self.writesets[era] else 'false'))
            out.append('  </writeset>')
        out.append('  <era_array>')
        for b, e in enumerate(self.eras):
            out.append('    <era block="%d" era="%d"/>' % (b, e))
        out.append('  </era_array>')
        out.append('</superblock>')
        return ('\n'.join(out) + '\n').encode()

    def logical_eras(self):
        eras = list(self.eras)
        for era in sorted(self.writesets):
            for b in self.writesets[era]:
                eras[b] = max(eras[b], era)
        return eras

    def written_since(self, threshold):
        return [b for b, e in enumerate(self.logical_eras()) if e >= threshold]


def invalidate_xml(blocks):
    """0.9's era_invalidate output for a sorted block list."""
    out = ['<blocks>']
    i = 0
    while i < len(blocks):
        j = i
        while j + 1 < len(blocks) and blocks[j + 1] == blocks[j] + 1:
            j += 1
        if i == j:
            out.append('  <block block="%d"/>' % blocks[i])
        else:
            out.append('  <range begin="%d" end = "%d"/>' % (blocks[i], blocks[j] + 1))
        i = j + 1
    out.append('</blocks>')
    return ('\n'.join(out) + '\n').encode()


# ----------------------------------------------------------------
# Fixtures for the CLI matrix (restored by our own tools)

_FIXTURES = {}


def cache_fixture():
    if 'cache' not in _FIXTURES:
        d = tools.session_dir()
        x = write(os.path.join(d, 'cache-fixture.xml'), CacheModel(3000, seed=5).xml())
        m = restore_cache([tools.ours('cache_restore')], x,
                          os.path.join(d, 'cache-fixture.meta'))
        _FIXTURES['cache'] = (m, x)
    return _FIXTURES['cache']


def era_fixture():
    if 'era' not in _FIXTURES:
        d = tools.session_dir()
        x = write(os.path.join(d, 'era-fixture.xml'), EraModel(3000, seed=5).xml())
        m = restore_cache([tools.ours('era_restore')], x,
                          os.path.join(d, 'era-fixture.meta'))
        _FIXTURES['era'] = (m, x)
    return _FIXTURES['era']
