# SPDX-License-Identifier: GPL-3.0-or-later
"""Session-wide fixtures: each generated pool is restored once per run.

get(name) returns a PoolFixture (model, XML path, metadata path, and for
the held-snapshot scenarios the held root's block and the model of what the
held view contains).  Files live in the session temp dir shared by every
test module, so the 1M-mapping pool is generated and restored only once.
Oracle outputs are cached the same way (oracle()).
"""

import os
import threading

from . import heldroot, poolgen, tools

# Pools every dump/check test runs on.
POOL_NAMES = [
    'empty_pool',
    'empty_devices',
    'many_devices',
    'snapshots',
    'mixed',
    'random_sparse',
    'extremes',
    'one_million',
    'held_snapshot',
    'held_snapshot_diverged',
]
HELD_POOLS = {'held_snapshot': False, 'held_snapshot_diverged': True}
# Pools with no device at all (tests that pick device ids do not apply).
DEVICELESS_POOLS = {'empty_pool'}
SEED = int(os.environ.get('THINP_TEST_SEED', '1'))


class PoolFixture:
    def __init__(self, name, model, xml, meta, held=None):
        self.name = name
        self.model = model
        self.xml = xml
        self.meta = meta
        self.held = held            # None, or heldroot.build_held_root() info

    @property
    def held_block(self):
        return self.held['block'] if self.held else None

    def held_model(self):
        """Model of the held view: thin_dump -m prints nr_data_blocks 0."""
        return self.model.without_devices(self.held['dropped'],
                                          transaction=self.held['transaction'])

    def __repr__(self):
        return 'PoolFixture(%s)' % self.name


_cache = {}
_lock = threading.Lock()


def get(name):
    with _lock:
        fx = _cache.get(name)
        if fx is None:
            model = poolgen.generate(name, seed=SEED)
            d = os.path.join(tools.session_dir(), 'pools')
            os.makedirs(d, exist_ok=True)
            xml, meta = poolgen.restore_pool(model, d)
            held = None
            if name in HELD_POOLS:
                held = heldroot.build_held_root(meta, diverged=HELD_POOLS[name])
            fx = PoolFixture(name, model, xml, meta, held)
            _cache[name] = fx
        return fx


_oracle_cache = {}


def oracle(argv):
    """Run an oracle command once per session; argv must be a tuple-able
    list naming only files that do not change (the pools)."""
    key = tuple(argv)
    r = _oracle_cache.get(key)
    if r is None:
        r = tools.run(list(argv), timeout=tools.scaled(120))
        _oracle_cache[key] = r
    return r
