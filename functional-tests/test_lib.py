# SPDX-License-Identifier: GPL-3.0-or-later
"""Self-tests of the test helpers (lib/), against the format doc's test
vectors and the pool models: a wrong helper would make the other tests
meaningless."""

import unittest

from lib import metadata, pools, poolgen


class TestChecksum(unittest.TestCase):
    def test_crc32c_vector(self):
        self.assertEqual(metadata.crc32c_raw(b'123456789'), 0x1CF96D7C)

    def test_zero_block_checksums(self):
        zero = bytes(metadata.BLOCK_SIZE)
        for xor, want in ((metadata.CSUM_SUPERBLOCK, 0x58CFD397),
                          (metadata.CSUM_NODE, 0x58CC7E82),
                          (metadata.CSUM_BITMAP, 0x58CE0B1A),
                          (metadata.CSUM_INDEX, 0x58CFD54F)):
            self.assertEqual(metadata.block_checksum(zero, xor), want)


class TestBitmapEncoding(unittest.TestCase):
    def test_swapped_bit_pairs(self):
        b = bytearray(metadata.BLOCK_SIZE)
        for e, v in ((0, 1), (1, 1), (2, 1), (3, 1), (4, 2), (5, 3)):
            metadata.bitmap_set(b, e, v)
        self.assertEqual(b[16], 0xAA, 'four entries of count 1')
        self.assertEqual(b[17] & 0x0F, 0x01 | 0x0C)
        for e, v in ((0, 1), (4, 2), (5, 3), (6, 0)):
            self.assertEqual(metadata.bitmap_get(b, e), v)

    def test_max_entries(self):
        self.assertEqual([metadata.max_entries_for(v) for v in (8, 24, 16, 4)],
                         [252, 126, 168, 336])


class TestGenerator(unittest.TestCase):
    def test_deterministic(self):
        a = ''.join(poolgen.generate('mixed', seed=3).xml_lines())
        b = ''.join(poolgen.generate('mixed', seed=3).xml_lines())
        c = ''.join(poolgen.generate('mixed', seed=4).xml_lines())
        self.assertEqual(a, b)
        self.assertNotEqual(a, c)

    def test_scenario_shapes(self):
        self.assertEqual(len(poolgen.generate('many_devices').devices), 50)
        self.assertEqual(
            pools.get('one_million').model.device(1).mapped_blocks, 1000000)
        refs = poolgen.generate('snapshots').data_block_refs()
        self.assertGreaterEqual(max(refs.values()), 3,
                                'snapshots share data blocks 3+ ways')

    def test_reader_agrees_with_model(self):
        """lib.metadata reads back what the model says was restored."""
        fx = pools.get('snapshots')
        with metadata.Metadata(fx.meta) as img:
            sb = img.superblock()
            self.assertEqual(sb.trans_id, fx.model.transaction)
            self.assertEqual(sb.data_sm.nr_blocks, fx.model.nr_data_blocks)
            details = img.device_details()
            self.assertEqual(sorted(details), fx.model.dev_ids())
            for dev in fx.model.devices:
                self.assertEqual(details[dev.dev_id][0], dev.mapped_blocks)
                self.assertEqual(img.mappings(dev.dev_id),
                                 list(dev.mappings()))
            refs = fx.model.data_block_refs()
            some = sorted(refs)[:50] + sorted(refs)[-50:]
            for b in some:
                self.assertEqual(img.sm_count('data', b, sb), refs[b])


if __name__ == '__main__':
    unittest.main()
