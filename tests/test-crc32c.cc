// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * CRC-32C and block checksums (format doc section 2): the documented test
 * vectors, blocks of the section 12 worked example rebuilt byte for byte,
 * and the table and SSE4.2 code paths against each other and against the
 * doc's bit-at-a-time form.
 */
#include <gtest/gtest.h>

extern "C" {
#include "persistent-data/checksum.h"
#include "persistent-data/crc32c.h"
#include "persistent-data/io-engine.h"
}

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

using namespace std;

namespace {

//----------------------------------------------------------------
// Helpers

// The doc's byte-loop form: no table, no hardware.
uint32_t crc32c_bitwise(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
	}
	return crc;
}

// Blocks are laid out here from the doc, independently of the code under test.
struct block {
	alignas(8) uint8_t b[MD_BLOCK_SIZE] = {};

	void put32(size_t off, uint32_t v)
	{
		for (int i = 0; i < 4; i++)
			b[off + i] = (uint8_t)(v >> (8 * i));
	}
	void put64(size_t off, uint64_t v)
	{
		for (int i = 0; i < 8; i++)
			b[off + i] = (uint8_t)(v >> (8 * i));
	}
	void bytes(size_t off, initializer_list<uint8_t> v)
	{
		for (uint8_t x : v)
			b[off++] = x;
	}
};

uint32_t raw_crc(const block &blk)
{
	return crc32c(0xFFFFFFFFu, blk.b + 4, MD_BLOCK_SIZE - 4);
}

// A btree node header (format doc 4.1).
void node_header(block &blk, uint32_t flags, uint64_t blocknr, uint32_t nr,
		 uint32_t max, uint32_t vs)
{
	blk.put32(4, flags);
	blk.put64(8, blocknr);
	blk.put32(16, nr);
	blk.put32(20, max);
	blk.put32(24, vs);
}

//----------------------------------------------------------------
// The blocks of the worked example (format doc 12.1 - 12.3)

block example_superblock()
{
	block s;

	// transcription of the hex dump of 12.1
	s.bytes(0x000, { 0x61, 0x82, 0x28, 0xea });
	s.bytes(0x020, { 0xba, 0x52, 0x9c, 0x01, 0x00, 0x00, 0x00, 0x00,
			 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00 });
	s.bytes(0x030, { 0x01 });
	s.bytes(0x040, { 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0x05, 0, 0, 0, 0, 0, 0, 0 });
	s.bytes(0x050, { 0x04, 0, 0, 0, 0, 0, 0, 0, 0x06, 0, 0, 0, 0, 0, 0, 0 });
	s.bytes(0x0c0, { 0x40, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0, 0, 0 });
	s.bytes(0x0d0, { 0x01, 0, 0, 0, 0, 0, 0, 0, 0x03, 0, 0, 0, 0, 0, 0, 0 });
	s.bytes(0x140, { 0x08, 0, 0, 0, 0, 0, 0, 0, 0x07, 0, 0, 0, 0, 0, 0, 0 });
	s.bytes(0x150, { 0x80, 0, 0, 0, 0x08, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0 });
	return s;
}

block example_md_index()		// block 1
{
	block b;

	b.put64(8, 1);
	b.bytes(0x10, { 0x02, 0, 0, 0, 0, 0, 0, 0, 0xb6, 0x3f, 0, 0, 0x0a, 0, 0, 0 });
	return b;
}

block example_md_bitmap()		// block 2
{
	block b;

	b.put64(8, 2);
	b.bytes(0x10, { 0xaa, 0xaa, 0x06 });
	return b;
}

block example_empty_refcount(uint64_t loc)	// blocks 3 and 6
{
	block b;

	node_header(b, 2, loc, 0, 336, 4);
	return b;
}

block example_data_index()		// block 4
{
	block b;

	node_header(b, 2, 4, 1, 168, 16);
	b.put64(0x20, 0);
	b.bytes(0x560, { 0x05, 0, 0, 0, 0, 0, 0, 0, 0xbb, 0x3f, 0, 0, 0x04, 0, 0, 0 });
	return b;
}

block example_data_bitmap()		// block 5
{
	block b;

	b.put64(8, 5);
	b.bytes(0x10, { 0xaa, 0x80 });
	return b;
}

block example_details()			// block 7
{
	block b;

	node_header(b, 2, 7, 2, 126, 24);
	b.put64(0x20, 0);
	b.put64(0x28, 1);
	b.bytes(0x410, { 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 });
	b.bytes(0x420, { 0, 0, 0, 0, 0x01, 0, 0, 0, 0x05, 0, 0, 0, 0, 0, 0, 0 });
	b.bytes(0x430, { 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0x01, 0, 0, 0 });
	return b;
}

block example_top_level()		// block 8
{
	block b;

	node_header(b, 2, 8, 2, 252, 8);
	b.put64(0x20, 0);
	b.put64(0x28, 1);
	b.put64(0x800, 9);
	b.put64(0x808, 9);
	return b;
}

block example_bottom_leaf()		// block 9, from the hex dump of 12.2
{
	block b;

	b.bytes(0x00, { 0xb5, 0xc2, 0x05, 0x1e, 0x02, 0, 0, 0, 0x09, 0, 0, 0, 0, 0, 0, 0 });
	b.bytes(0x10, { 0x05, 0, 0, 0, 0xfc, 0, 0, 0, 0x08, 0, 0, 0, 0, 0, 0, 0 });
	b.bytes(0x20, { 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0, 0, 0, 0 });
	b.bytes(0x30, { 0x02, 0, 0, 0, 0, 0, 0, 0, 0x03, 0, 0, 0, 0, 0, 0, 0 });
	b.bytes(0x40, { 0x0a });
	b.bytes(0x800, { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0 });
	b.bytes(0x810, { 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0, 0x03, 0, 0, 0, 0 });
	b.bytes(0x820, { 0, 0, 0, 0x07, 0, 0, 0, 0 });
	return b;
}

//----------------------------------------------------------------
// Known vectors

TEST(crc32c_vectors, raw_register_of_123456789)
{
	const char *s = "123456789";

	EXPECT_EQ(0x1CF96D7Cu, crc32c(0xFFFFFFFFu, s, 9));
	EXPECT_EQ(0x1CF96D7Cu, crc32c_table(0xFFFFFFFFu, s, 9));
	EXPECT_EQ(0x1CF96D7Cu, crc32c_bitwise(0xFFFFFFFFu, (const uint8_t *)s, 9));
	if (crc32c_have_hw()) {
		EXPECT_EQ(0x1CF96D7Cu, crc32c_hw(0xFFFFFFFFu, s, 9));
	}
}

TEST(crc32c_vectors, standard_crc_is_the_inverted_register)
{
	EXPECT_EQ(0xE3069283u, crc32c(0xFFFFFFFFu, "123456789", 9) ^ 0xFFFFFFFFu);
}

TEST(crc32c_vectors, empty_input_returns_the_initial_register)
{
	EXPECT_EQ(0xFFFFFFFFu, crc32c(0xFFFFFFFFu, "", 0));
	EXPECT_EQ(0x12345678u, crc32c_table(0x12345678u, nullptr, 0));
	if (crc32c_have_hw()) {
		EXPECT_EQ(0x12345678u, crc32c_hw(0x12345678u, nullptr, 0));
	}
}

TEST(crc32c_vectors, raw_register_of_4092_zero_bytes)
{
	vector<uint8_t> z(4092, 0);

	EXPECT_EQ(0x58CDA791u, crc32c(0xFFFFFFFFu, z.data(), z.size()));
	EXPECT_EQ(0x58CDA791u, crc32c_table(0xFFFFFFFFu, z.data(), z.size()));
	if (crc32c_have_hw()) {
		EXPECT_EQ(0x58CDA791u, crc32c_hw(0xFFFFFFFFu, z.data(), z.size()));
	}
}

TEST(block_checksum, zero_block_for_each_type)
{
	block z;

	EXPECT_EQ(0x58CFD397u, block_csum(z.b, CSUM_XOR_SUPERBLOCK));
	EXPECT_EQ(0x58CC7E82u, block_csum(z.b, CSUM_XOR_BTREE_NODE));
	EXPECT_EQ(0x58CE0B1Au, block_csum(z.b, CSUM_XOR_SM_BITMAP));
	EXPECT_EQ(0x58CFD54Fu, block_csum(z.b, CSUM_XOR_SM_INDEX));
}

TEST(block_checksum, the_checksum_field_is_not_covered)
{
	block a, b;

	b.put32(0, 0xDEADBEEF);
	EXPECT_EQ(block_csum(a.b, CSUM_XOR_BTREE_NODE), block_csum(b.b, CSUM_XOR_BTREE_NODE));
	b.b[4] = 1;
	EXPECT_NE(block_csum(a.b, CSUM_XOR_BTREE_NODE), block_csum(b.b, CSUM_XOR_BTREE_NODE));
	a.b[4095] = 1;
	EXPECT_NE(block_csum(a.b, CSUM_XOR_BTREE_NODE), 0x58CC7E82u);
}

TEST(block_checksum, set_csum_stores_little_endian_at_offset_0)
{
	block z;

	block_set_csum(z.b, CSUM_XOR_SUPERBLOCK);
	EXPECT_EQ(0x97, z.b[0]);
	EXPECT_EQ(0xD3, z.b[1]);
	EXPECT_EQ(0xCF, z.b[2]);
	EXPECT_EQ(0x58, z.b[3]);
	EXPECT_EQ(0x58CFD397u, block_stored_csum(z.b));
	for (size_t i = 4; i < MD_BLOCK_SIZE; i++)
		ASSERT_EQ(0, z.b[i]) << "byte " << i;
}

TEST(block_checksum, csum_type_identifies_each_type)
{
	const uint32_t types[] = { CSUM_XOR_SUPERBLOCK, CSUM_XOR_BTREE_NODE,
				   CSUM_XOR_SM_BITMAP, CSUM_XOR_SM_INDEX };
	mt19937 rng(7);

	for (uint32_t t : types) {
		block z, r;

		block_set_csum(z.b, t);
		EXPECT_EQ(t, block_csum_type(z.b));

		for (size_t i = 4; i < MD_BLOCK_SIZE; i++)
			r.b[i] = (uint8_t)rng();
		block_set_csum(r.b, t);
		EXPECT_EQ(t, block_csum_type(r.b));

		// the same block damaged: no type matches
		r.b[100] ^= 0x40;
		EXPECT_EQ(0u, block_csum_type(r.b));
	}
}

TEST(block_checksum, csum_type_of_unstamped_block_is_zero)
{
	block z;

	EXPECT_EQ(0u, block_csum_type(z.b));
	z.put32(0, 0x58CDA791u);	// the raw register, without any constant
	EXPECT_EQ(0u, block_csum_type(z.b));
}

//----------------------------------------------------------------
// The worked example of section 12

TEST(worked_example, superblock_checksum)
{
	block s = example_superblock();

	EXPECT_EQ(0xEA2AF667u, raw_crc(s));
	EXPECT_EQ(0xEA288261u, block_csum(s.b, CSUM_XOR_SUPERBLOCK));
	EXPECT_EQ(0xEA288261u, block_stored_csum(s.b));
	EXPECT_EQ(CSUM_XOR_SUPERBLOCK, block_csum_type(s.b));
}

TEST(worked_example, bottom_leaf_checksum)
{
	block l = example_bottom_leaf();

	EXPECT_EQ(0x1E041BA6u, raw_crc(l));
	EXPECT_EQ(0x1E05C2B5u, block_csum(l.b, CSUM_XOR_BTREE_NODE));
	EXPECT_EQ(0x1E05C2B5u, block_stored_csum(l.b));
	EXPECT_EQ(CSUM_XOR_BTREE_NODE, block_csum_type(l.b));
}

TEST(worked_example, all_ten_block_checksums)
{
	struct {
		block b;
		uint32_t type, stored, raw;
	} blocks[] = {
		{ example_superblock(), CSUM_XOR_SUPERBLOCK, 0xEA288261u, 0xEA2AF667u },
		{ example_md_index(), CSUM_XOR_SM_INDEX, 0x2B648512u, 0x2B66F7CCu },
		{ example_md_bitmap(), CSUM_XOR_SM_BITMAP, 0x8AE30545u, 0x8AE0A9CEu },
		{ example_empty_refcount(3), CSUM_XOR_BTREE_NODE, 0x41987825u, 0x4199A136u },
		{ example_data_index(), CSUM_XOR_BTREE_NODE, 0x94A6BDE2u, 0x94A764F1u },
		{ example_data_bitmap(), CSUM_XOR_SM_BITMAP, 0xCED9E59Au, 0xCEDA4911u },
		{ example_empty_refcount(6), CSUM_XOR_BTREE_NODE, 0xC35A786Cu, 0xC35BA17Fu },
		{ example_details(), CSUM_XOR_BTREE_NODE, 0x846A08F1u, 0x846BD1E2u },
		{ example_top_level(), CSUM_XOR_BTREE_NODE, 0xB2F8BF2Eu, 0xB2F9663Du },
		{ example_bottom_leaf(), CSUM_XOR_BTREE_NODE, 0x1E05C2B5u, 0x1E041BA6u },
	};

	for (unsigned i = 0; i < 10; i++) {
		SCOPED_TRACE("block " + to_string(i));
		EXPECT_EQ(blocks[i].raw, raw_crc(blocks[i].b));
		EXPECT_EQ(blocks[i].stored, block_csum(blocks[i].b.b, blocks[i].type));
		block_set_csum(blocks[i].b.b, blocks[i].type);
		EXPECT_EQ(blocks[i].stored, block_stored_csum(blocks[i].b.b));
		EXPECT_EQ(blocks[i].type, block_csum_type(blocks[i].b.b));
	}
}

//----------------------------------------------------------------
// Code paths agree

class crc32c_paths : public ::testing::Test {
protected:
	mt19937_64 rng{12345};
	vector<uint8_t> buf = vector<uint8_t>(4096 + 64);

	void fill()
	{
		for (auto &c : buf)
			c = (uint8_t)rng();
	}
};

TEST_F(crc32c_paths, table_matches_bitwise_for_every_length_and_alignment)
{
	fill();
	for (size_t len = 0; len <= 300; len++)
		for (size_t align = 0; align < 16; align++) {
			const uint8_t *p = buf.data() + align;
			uint32_t init = (uint32_t)rng();
			uint32_t want = crc32c_bitwise(init, p, len);

			ASSERT_EQ(want, crc32c_table(init, p, len))
				<< "len " << len << " align " << align;
			ASSERT_EQ(want, crc32c(init, p, len))
				<< "len " << len << " align " << align;
		}
}

TEST_F(crc32c_paths, hw_matches_table_for_every_length_and_alignment)
{
	if (!crc32c_have_hw())
		GTEST_SKIP() << "no SSE4.2 on this CPU";
	for (int round = 0; round < 4; round++) {
		fill();
		for (size_t len = 0; len <= 300; len++)
			for (size_t align = 0; align < 16; align++) {
				const uint8_t *p = buf.data() + align;
				uint32_t init = round ? (uint32_t)rng() : 0xFFFFFFFFu;

				ASSERT_EQ(crc32c_table(init, p, len), crc32c_hw(init, p, len))
					<< "len " << len << " align " << align;
			}
	}
}

TEST_F(crc32c_paths, random_alignments_and_lengths)
{
	for (int i = 0; i < 2000; i++) {
		fill();
		size_t align = rng() % 64;
		size_t len = rng() % (buf.size() - align + 1);
		const uint8_t *p = buf.data() + align;
		uint32_t init = (uint32_t)rng();
		uint32_t t = crc32c_table(init, p, len);

		ASSERT_EQ(crc32c_bitwise(init, p, len), t) << "len " << len << " align " << align;
		if (crc32c_have_hw()) {
			ASSERT_EQ(t, crc32c_hw(init, p, len)) << "len " << len << " align " << align;
		}
	}
}

TEST_F(crc32c_paths, whole_blocks)
{
	for (int i = 0; i < 200; i++) {
		fill();
		for (size_t align : { (size_t)0, (size_t)1, (size_t)4, (size_t)7, (size_t)8 }) {
			const uint8_t *p = buf.data() + align;
			uint32_t t = crc32c_table(0xFFFFFFFFu, p, 4092);

			ASSERT_EQ(crc32c_bitwise(0xFFFFFFFFu, p, 4092), t);
			if (crc32c_have_hw()) {
				ASSERT_EQ(t, crc32c_hw(0xFFFFFFFFu, p, 4092));
			}
			ASSERT_EQ(t, crc32c(0xFFFFFFFFu, p, 4092));
		}
	}
}

// The hardware path runs three interleaved streams over 4080-byte runs:
// lengths around one and two runs, at every alignment mod 8.
TEST_F(crc32c_paths, hw_interleaved_runs_match_bitwise)
{
	if (!crc32c_have_hw())
		GTEST_SKIP() << "no SSE4.2 on this CPU";
	vector<uint8_t> big(3 * 4096);

	for (auto &c : big)
		c = (uint8_t)rng();
	for (size_t base : { (size_t)4080, (size_t)8160 })
		for (size_t len = base - 20; len <= base + 20; len++)
			for (size_t align = 0; align < 8; align++) {
				const uint8_t *p = big.data() + align;
				uint32_t init = (uint32_t)rng();

				ASSERT_EQ(crc32c_bitwise(init, p, len), crc32c_hw(init, p, len))
					<< "len " << len << " align " << align;
			}
}

TEST_F(crc32c_paths, chaining_equals_one_pass)
{
	fill();
	for (int i = 0; i < 500; i++) {
		size_t len = rng() % 1000, cut = len ? rng() % (len + 1) : 0;
		const uint8_t *p = buf.data() + rng() % 16;
		uint32_t whole = crc32c(0xFFFFFFFFu, p, len);

		ASSERT_EQ(whole, crc32c(crc32c(0xFFFFFFFFu, p, cut), p + cut, len - cut));
		ASSERT_EQ(whole, crc32c_table(crc32c_table(0xFFFFFFFFu, p, cut), p + cut, len - cut));
		if (crc32c_have_hw()) {
			ASSERT_EQ(whole, crc32c_hw(crc32c_hw(0xFFFFFFFFu, p, cut), p + cut, len - cut));
		}
	}
}

TEST_F(crc32c_paths, block_csum_matches_bitwise_form)
{
	alignas(8) uint8_t b[MD_BLOCK_SIZE];

	for (int i = 0; i < 50; i++) {
		for (auto &c : b)
			c = (uint8_t)rng();
		uint32_t raw = crc32c_bitwise(0xFFFFFFFFu, b + 4, MD_BLOCK_SIZE - 4);

		ASSERT_EQ(raw ^ CSUM_XOR_BTREE_NODE, block_csum(b, CSUM_XOR_BTREE_NODE));
		ASSERT_EQ(raw ^ CSUM_XOR_SM_INDEX, block_csum(b, CSUM_XOR_SM_INDEX));
	}
}

}
