// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * Block validators, called directly on blocks built in memory (no I/O):
 * btree nodes (the kernel's rules, then the tools' shape rules), the thin
 * superblock, space map bitmaps and the metadata space map index block.
 * Messages are v0.9's (format doc 10.3) as btree.c and its neighbours
 * word them.
 */

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "persistent-data/block-manager.h"
#include "persistent-data/btree.h"
#include "persistent-data/checksum.h"
#include "persistent-data/endian.h"
#include "persistent-data/space-map-disk.h"
#include "thin-provisioning/superblock.h"
}

using namespace std;

namespace {

//----------------------------------------------------------------
// Helpers

constexpr uint64_t loc = 5;	// where the node under test "was read from"

// Layout of format doc 4.1 / Appendix A.
constexpr uint32_t FLAG_INTERNAL = 1, FLAG_LEAF = 2;
constexpr unsigned HDR = 32;

// As many entries as fit, rounded down to a multiple of 3 (format doc 4.2).
uint32_t max_entries_for(uint32_t vs)
{
	return (MD_BLOCK_SIZE - HDR) / (8 + vs) / 3 * 3;
}

struct node_buf {
	alignas(8) uint8_t b[MD_BLOCK_SIZE] = {};
};

void set_key(node_buf &n, unsigned i, uint64_t k)
{
	store_le64(n.b + HDR + 8 * i, k);
}

// A node with keys 10, 20, 30 ... (nr of them), values key * 100.
node_buf make_node(uint32_t flags, uint32_t nr, uint32_t max, uint32_t vs,
		   uint64_t blocknr = loc)
{
	node_buf n;

	store_le32(n.b + 4, flags);
	store_le64(n.b + 8, blocknr);
	store_le32(n.b + 16, nr);
	store_le32(n.b + 20, max);
	store_le32(n.b + 24, vs);
	if ((uint64_t)HDR + (8ull + vs) * max <= MD_BLOCK_SIZE) {
		for (uint32_t i = 0; i < nr && i < max; i++) {
			set_key(n, i, 10ull * (i + 1));
			if (vs >= 8)
				store_le64(n.b + HDR + 8 * max + (size_t)i * vs, 1000ull * (i + 1));
		}
	}
	block_set_csum(n.b, CSUM_XOR_BTREE_NODE);
	return n;
}

node_buf leaf(uint32_t nr = 3, uint32_t vs = 8)
{
	return make_node(FLAG_LEAF, nr, max_entries_for(vs), vs);
}

node_buf internal(uint32_t nr = 3)
{
	return make_node(FLAG_INTERNAL, nr, max_entries_for(8), 8);
}

void restamp(node_buf &n, uint32_t xor_const = CSUM_XOR_BTREE_NODE)
{
	block_set_csum(n.b, xor_const);
}

struct check_result {
	int r;
	string msg;
};

check_result run_check(const bm_validator *v, const void *data, uint64_t location)
{
	pd_err err{};
	int r = v->check(v, data, location, &err);

	if (r) {
		EXPECT_EQ(r, err.code) << "err.code must carry the returned error";
	}
	return { r, r ? string(err.msg) : string() };
}

check_result node_check(const node_buf &n, uint64_t location = loc)
{
	return run_check(&btree_node_validator, n.b, location);
}

check_result shape(const node_buf &n, uint32_t leaf_vs = 8, bool lax = false)
{
	btree_shape_opts o{};
	pd_err err{};

	o.value_size = leaf_vs;
	o.allow_max_not_div3 = lax;
	int r = btree_node_check_shape(n.b, loc, &o, &err);

	if (r) {
		EXPECT_EQ(r, err.code);
	}
	return { r, r ? string(err.msg) : string() };
}

//----------------------------------------------------------------
// btree_node_validator: the kernel's rules

TEST(btree_node_validator, accepts_valid_leaves_of_every_value_size)
{
	for (uint32_t vs : { 4u, 8u, 16u, 24u }) {
		SCOPED_TRACE("value_size " + to_string(vs));
		EXPECT_EQ(0, node_check(leaf(3, vs)).r);
		EXPECT_EQ(0, node_check(leaf(0, vs)).r);
		EXPECT_EQ(0, node_check(leaf(max_entries_for(vs), vs)).r);
	}
}

TEST(btree_node_validator, accepts_valid_internal_node)
{
	EXPECT_EQ(0, node_check(internal()).r);
	EXPECT_EQ(0, node_check(internal(252)).r);
}

TEST(btree_node_validator, accepts_the_largest_max_entries_that_fits)
{
	// 32 + 16 * 254 = 4096: the kernel's rule 3 holds (the tools' shape
	// rules reject it, see below)
	EXPECT_EQ(0, node_check(make_node(FLAG_LEAF, 1, 254, 8)).r);
}

TEST(btree_node_validator, rejects_wrong_blocknr)
{
	node_buf n = make_node(FLAG_LEAF, 3, 252, 8, 6);
	check_result c = node_check(n, 5);

	EXPECT_EQ(-EILSEQ, c.r);
	EXPECT_EQ("block number mismatch: actually 5, claims 6", c.msg);
}

TEST(btree_node_validator, rejects_bad_checksum)
{
	node_buf n = leaf();

	n.b[100] ^= 1;
	check_result c = node_check(n);
	EXPECT_EQ(-EILSEQ, c.r);
	EXPECT_EQ("bad checksum in btree node (block 5)", c.msg);
}

TEST(btree_node_validator, rejects_a_changed_stored_checksum)
{
	node_buf n = leaf();

	n.b[0] ^= 0x80;
	check_result c = node_check(n);
	EXPECT_EQ(-EILSEQ, c.r);
	EXPECT_EQ("bad checksum in btree node (block 5)", c.msg);
}

TEST(btree_node_validator, rejects_blocks_of_other_types_as_not_a_btree_node)
{
	for (uint32_t t : { CSUM_XOR_SUPERBLOCK, CSUM_XOR_SM_BITMAP, CSUM_XOR_SM_INDEX }) {
		SCOPED_TRACE("constant " + to_string(t));
		node_buf n = leaf();

		restamp(n, t);
		check_result c = node_check(n);
		EXPECT_EQ(-EILSEQ, c.r);
		EXPECT_EQ("not a btree node (block 5)", c.msg);
	}
}

TEST(btree_node_validator, blocknr_is_checked_before_checksum)
{
	node_buf n = make_node(FLAG_LEAF, 3, 252, 8, 9);

	n.b[100] ^= 1;
	EXPECT_EQ("block number mismatch: actually 5, claims 9", node_check(n).msg);
}

TEST(btree_node_validator, checksum_is_checked_before_structure)
{
	node_buf n = make_node(FLAG_LEAF, 300, 252, 8);

	n.b[100] ^= 1;
	EXPECT_EQ("bad checksum in btree node (block 5)", node_check(n).msg);
}

TEST(btree_node_validator, rejects_max_entries_too_large)
{
	// 32 + 16 * 255 = 4112 > 4096
	check_result c = node_check(make_node(FLAG_LEAF, 3, 255, 8));
	EXPECT_EQ(-EILSEQ, c.r);
	EXPECT_EQ("max entries too large: 255 (block 5)", c.msg);

	// the same max_entries fits a smaller value
	EXPECT_EQ(0, node_check(make_node(FLAG_LEAF, 3, 255, 4)).r);

	// 32 + 32 * 127 = 4096 fits, 128 does not
	EXPECT_EQ(0, node_check(make_node(FLAG_LEAF, 3, 127, 24)).r);
	EXPECT_EQ("max entries too large: 128 (block 5)",
		  node_check(make_node(FLAG_LEAF, 3, 128, 24)).msg);
}

TEST(btree_node_validator, rejects_huge_value_size_without_overflow)
{
	// (8 + vs) * max would wrap in 32 bits
	check_result c = node_check(make_node(FLAG_LEAF, 1, 0x10000, 0xFFFFFFF8u));
	EXPECT_EQ(-EILSEQ, c.r);
	EXPECT_EQ("max entries too large: 65536 (block 5)", c.msg);

	c = node_check(make_node(FLAG_LEAF, 0, 1, 0xFFFFFFFFu));
	EXPECT_EQ(-EILSEQ, c.r);
	EXPECT_EQ("max entries too large: 1 (block 5)", c.msg);

	c = node_check(make_node(FLAG_LEAF, 0, 0x80000000u, 8));
	EXPECT_EQ("max entries too large: 2147483648 (block 5)", c.msg);
}

TEST(btree_node_validator, rejects_nr_entries_above_max_entries)
{
	check_result c = node_check(make_node(FLAG_LEAF, 253, 252, 8));
	EXPECT_EQ(-EILSEQ, c.r);
	// v0.9's wording, "<" included (format doc 10.3: sic)
	EXPECT_EQ("bad nr_entries: 253 < 252 (block 5)", c.msg);

	c = node_check(make_node(FLAG_INTERNAL, 1, 0, 8));
	EXPECT_EQ("bad nr_entries: 1 < 0 (block 5)", c.msg);
}

TEST(btree_node_validator, rejects_both_flags)
{
	check_result c = node_check(make_node(FLAG_LEAF | FLAG_INTERNAL, 3, 252, 8));
	EXPECT_EQ(-EILSEQ, c.r);
	EXPECT_EQ("btree node is both internal and leaf (block 5)", c.msg);
}

TEST(btree_node_validator, rejects_no_flag)
{
	check_result c = node_check(make_node(0, 3, 252, 8));
	EXPECT_EQ(-EILSEQ, c.r);
	EXPECT_EQ("unknown node type (block 5)", c.msg);

	c = node_check(make_node(4, 3, 252, 8));
	EXPECT_EQ("unknown node type (block 5)", c.msg);
}

TEST(btree_node_validator, prepare_for_write_stamps_blocknr_and_checksum)
{
	node_buf n = make_node(FLAG_LEAF, 3, 252, 8, 0);

	n.b[0] = n.b[1] = 0;
	btree_node_validator.prepare_for_write(&btree_node_validator, n.b, 77);
	EXPECT_EQ(77u, load_le64(n.b + 8));
	EXPECT_EQ(block_csum(n.b, CSUM_XOR_BTREE_NODE), block_stored_csum(n.b));
	EXPECT_EQ(0, node_check(n, 77).r);

	node_buf m = make_node(FLAG_LEAF, 3, 252, 8, 0);
	btree_node_prepare(m.b, 78);
	EXPECT_EQ(0, node_check(m, 78).r);
}

//----------------------------------------------------------------
// btree_node_check_shape: the tools' rules

TEST(btree_node_shape, accepts_valid_nodes)
{
	EXPECT_EQ(0, shape(leaf(3, 8), 8).r);
	EXPECT_EQ(0, shape(leaf(3, 24), 24).r);
	EXPECT_EQ(0, shape(leaf(3, 16), 16).r);
	EXPECT_EQ(0, shape(leaf(3, 4), 4).r);
	EXPECT_EQ(0, shape(leaf(0, 4), 4).r);
	// internal nodes always hold block numbers, whatever the leaves hold
	EXPECT_EQ(0, shape(internal(), 24).r);
	EXPECT_EQ(0, shape(internal(), 4).r);
}

TEST(btree_node_shape, rejects_leaf_value_size_mismatch)
{
	check_result c = shape(leaf(3, 24), 8);
	EXPECT_EQ(-EILSEQ, c.r);
	EXPECT_EQ("value size mismatch: expected 8, but got 24 (block 5).", c.msg);

	c = shape(leaf(3, 8), 16);
	EXPECT_EQ("value size mismatch: expected 16, but got 8 (block 5).", c.msg);
}

TEST(btree_node_shape, rejects_internal_value_size_other_than_8)
{
	// an internal node with the leaves' value size is still wrong
	check_result c = shape(make_node(FLAG_INTERNAL, 3, 168, 16), 16);
	EXPECT_EQ(-EILSEQ, c.r);
	EXPECT_EQ("value size mismatch: expected 8, but got 16 (block 5).", c.msg);

	c = shape(make_node(FLAG_INTERNAL, 3, 336, 4), 4);
	EXPECT_EQ("value size mismatch: expected 8, but got 4 (block 5).", c.msg);
}

TEST(btree_node_shape, rejects_max_entries_not_divisible_by_3)
{
	check_result c = shape(make_node(FLAG_LEAF, 3, 250, 8));
	EXPECT_EQ(-EILSEQ, c.r);
	EXPECT_EQ("max entries is not divisible by 3: 250 (block 5)", c.msg);

	c = shape(make_node(FLAG_INTERNAL, 3, 251, 8));
	EXPECT_EQ("max entries is not divisible by 3: 251 (block 5)", c.msg);

	c = shape(make_node(FLAG_LEAF, 3, 125, 24), 24);
	EXPECT_EQ("max entries is not divisible by 3: 125 (block 5)", c.msg);
}

TEST(btree_node_shape, accepts_max_entries_not_divisible_by_3_when_lax)
{
	EXPECT_EQ(0, shape(make_node(FLAG_LEAF, 3, 250, 8), 8, true).r);
	EXPECT_EQ(0, shape(make_node(FLAG_INTERNAL, 3, 251, 8), 8, true).r);
	EXPECT_EQ(0, shape(make_node(FLAG_LEAF, 3, 100, 24), 24, true).r);
	// lax does not mean anything goes
	EXPECT_EQ("value size mismatch: expected 8, but got 24 (block 5).",
		  shape(make_node(FLAG_LEAF, 3, 100, 24), 8, true).msg);
}

TEST(btree_node_shape, lax_accepts_every_max_entries_that_fits)
{
	/*
	 * KNOWN BUG (persistent-data/btree.c, btree_node_check_shape, the
	 * "max > btree_max_entries(vs)" test): allow_max_not_div3 models
	 * 1.x --ignore-non-fatal-errors, where a max_entries is "too
	 * large" only when the keys and values do not fit in the block
	 * (1.x unpack_node: elt_size * max_entries + 32 > 4096).  253 and
	 * 254 entries of 8 bytes fit (4080 and 4096 bytes; the kernel's
	 * own check, btree_node_validator above, accepts them), but
	 * check_shape compares with the rounded-down 252 and reports
	 * "max entries too large: 253 (block 5)" even when lax.
	 * Expected: 0 when lax; actual: -EILSEQ.
	 */
	EXPECT_EQ(0, shape(make_node(FLAG_LEAF, 3, 253, 8), 8, true).r);
	EXPECT_EQ(0, shape(make_node(FLAG_LEAF, 3, 254, 8), 8, true).r);
}

TEST(btree_node_shape, rejects_max_entries_above_the_rounded_capacity)
{
	// 255 is a multiple of 3 but more than the 252 writers use
	check_result c = shape(make_node(FLAG_LEAF, 3, 255, 8));
	EXPECT_EQ(-EILSEQ, c.r);
	EXPECT_EQ("max entries too large: 255 (block 5)", c.msg);

	c = shape(make_node(FLAG_LEAF, 3, 129, 24), 24);
	EXPECT_EQ("max entries too large: 129 (block 5)", c.msg);

	// not a multiple of 3 either: the strict check names that first
	c = shape(make_node(FLAG_LEAF, 3, 254, 8));
	EXPECT_EQ("max entries is not divisible by 3: 254 (block 5)", c.msg);
}

TEST(btree_node_shape, rejects_keys_out_of_order)
{
	node_buf n = leaf(4);

	set_key(n, 0, 1);
	set_key(n, 1, 3);
	set_key(n, 2, 2);
	set_key(n, 3, 4);
	check_result c = shape(n);
	EXPECT_EQ(-EILSEQ, c.r);
	EXPECT_EQ("keys are out of order, 2 <= 3 (block 5)", c.msg);
}

TEST(btree_node_shape, rejects_duplicate_keys)
{
	node_buf n = internal(3);

	set_key(n, 0, 7);
	set_key(n, 1, 9);
	set_key(n, 2, 9);
	check_result c = shape(n);
	EXPECT_EQ(-EILSEQ, c.r);
	EXPECT_EQ("keys are out of order, 9 <= 9 (block 5)", c.msg);
}

TEST(btree_node_shape, keys_beyond_nr_entries_are_ignored)
{
	node_buf n = leaf(3);

	set_key(n, 3, 0);	// stale slot after a deletion
	set_key(n, 4, 0);
	EXPECT_EQ(0, shape(n).r);
}

TEST(btree_node_shape, extreme_keys_in_order)
{
	node_buf n = leaf(2);

	set_key(n, 0, 0);
	set_key(n, 1, UINT64_MAX);
	EXPECT_EQ(0, shape(n).r);
	set_key(n, 0, UINT64_MAX);
	EXPECT_EQ("keys are out of order, 18446744073709551615 <= 18446744073709551615 (block 5)",
		  shape(n).msg);
}

TEST(btree_node_shape, rejects_unknown_flag_bits)
{
	check_result c = shape(make_node(FLAG_LEAF | 4, 3, 252, 8));
	EXPECT_EQ(-EILSEQ, c.r);
	EXPECT_EQ("unknown node type (block 5)", c.msg);
}

TEST(btree_node_shape, rejects_both_flags_and_no_flag)
{
	/*
	 * KNOWN BUG (persistent-data/btree.c, btree_node_check_shape: only
	 * "flags & ~3" is tested): btree.h says the shape rules include
	 * "exactly one flag", but flags == 3 (both) and flags == 0 (none)
	 * pass check_shape (expected -EILSEQ with "btree node is both
	 * internal and leaf (block 5)" / "unknown node type (block 5)";
	 * actual 0).  Harmless while every caller runs btree_node_validator
	 * first, which does reject them.
	 */
	EXPECT_EQ(-EILSEQ, shape(make_node(FLAG_LEAF | FLAG_INTERNAL, 3, 252, 8)).r);
	EXPECT_EQ(-EILSEQ, shape(make_node(0, 3, 252, 8)).r);
}

//----------------------------------------------------------------
// thin_sb_validator

struct sb_buf {
	alignas(8) uint8_t b[MD_BLOCK_SIZE] = {};
};

// An SM root blob (format doc 6.1).
void sm_root_blob(uint8_t *blob, uint64_t nr_blocks, uint64_t nr_allocated,
		  uint64_t bitmap_root, uint64_t ref_count_root)
{
	memset(blob, 0, SM_ROOT_BLOB_SIZE);
	store_le64(blob, nr_blocks);
	store_le64(blob + 8, nr_allocated);
	store_le64(blob + 16, bitmap_root);
	store_le64(blob + 24, ref_count_root);
}

// The superblock of the worked example (format doc 12.1), at location.
sb_buf make_sb(uint64_t location = 0)
{
	thin_sb sb{};
	sb_buf s;

	sb.location = location;
	sb.version = 2;
	sb.time = 1;
	sb.trans_id = 1;
	sm_root_blob(sb.data_sm_root, 1024, 5, 4, 6);
	sm_root_blob(sb.metadata_sm_root, 64, 10, 1, 3);
	sb.data_mapping_root = 8;
	sb.device_details_root = 7;
	sb.data_block_size = 128;
	sb.metadata_block_size = 8;
	sb.metadata_nr_blocks = 64;
	thin_sb_encode(&sb, s.b);
	return s;
}

TEST(thin_sb_validator, accepts_a_valid_superblock)
{
	sb_buf s = make_sb();

	EXPECT_EQ(0, run_check(&thin_sb_validator, s.b, 0).r);
	// thin_sb_encode reproduces the worked example's superblock (12.1)
	EXPECT_EQ(0xEA288261u, block_stored_csum(s.b));
}

TEST(thin_sb_validator, accepts_a_held_root_copy_at_its_own_location)
{
	sb_buf s = make_sb(10);

	EXPECT_EQ(0, run_check(&thin_sb_validator, s.b, 10).r);
}

TEST(thin_sb_validator, rejects_wrong_blocknr)
{
	sb_buf s = make_sb(3);
	check_result c = run_check(&thin_sb_validator, s.b, 0);

	// the kernel's code for this case (format doc 2)
	EXPECT_EQ(-ENOTBLK, c.r);
	EXPECT_EQ("superblock is corrupt: bad block nr in superblock (block 0 claims 3)", c.msg);
}

TEST(thin_sb_validator, rejects_bad_checksum)
{
	sb_buf s = make_sb();

	s.b[0x30] ^= 1;		// trans_id
	uint32_t want = block_csum(s.b, CSUM_XOR_SUPERBLOCK);
	check_result c = run_check(&thin_sb_validator, s.b, 0);
	EXPECT_EQ(-EILSEQ, c.r);
	EXPECT_EQ("superblock is corrupt: bad checksum in superblock, wanted " + to_string(want),
		  c.msg);

	uint32_t w = 0;
	EXPECT_FALSE(thin_sb_csum_ok(s.b, &w));
	EXPECT_EQ(want, w);
}

TEST(thin_sb_validator, rejects_a_btree_node_checksum)
{
	sb_buf s = make_sb();

	block_set_csum(s.b, CSUM_XOR_BTREE_NODE);
	check_result c = run_check(&thin_sb_validator, s.b, 0);
	EXPECT_EQ(-EILSEQ, c.r);
	EXPECT_EQ(0u, c.msg.find("superblock is corrupt: bad checksum in superblock, wanted "));
}

TEST(thin_sb_validator, rejects_bad_magic)
{
	sb_buf s = make_sb();

	store_le64(s.b + 32, 12345);
	block_set_csum(s.b, CSUM_XOR_SUPERBLOCK);
	check_result c = run_check(&thin_sb_validator, s.b, 0);
	EXPECT_EQ(-EILSEQ, c.r);
	EXPECT_EQ("superblock is corrupt: bad magic number 12345", c.msg);
	// v0.9 checks the checksum only
	EXPECT_TRUE(thin_sb_csum_ok(s.b, nullptr));
}

TEST(thin_sb_validator, prepare_for_write_stamps_blocknr_and_checksum)
{
	sb_buf s = make_sb(0);

	s.b[0x2c] = 9;		// time, checksum now stale
	thin_sb_validator.prepare_for_write(&thin_sb_validator, s.b, 12);
	EXPECT_EQ(0, run_check(&thin_sb_validator, s.b, 12).r);
	EXPECT_EQ(-ENOTBLK, run_check(&thin_sb_validator, s.b, 0).r);
}

//----------------------------------------------------------------
// Space map bitmap and metadata index block validators

struct sm_buf {
	alignas(8) uint8_t b[MD_BLOCK_SIZE] = {};
};

sm_buf make_sm_block(uint64_t blocknr, uint32_t xor_const)
{
	sm_buf s;

	store_le64(s.b + 8, blocknr);
	for (size_t i = 16; i < 64; i++)
		s.b[i] = (uint8_t)(i * 37);
	block_set_csum(s.b, xor_const);
	return s;
}

TEST(sm_bitmap_validator, accepts_a_valid_bitmap)
{
	sm_buf s = make_sm_block(2, CSUM_XOR_SM_BITMAP);

	EXPECT_EQ(0, run_check(&sm_bitmap_validator, s.b, 2).r);
}

TEST(sm_bitmap_validator, rejects_wrong_blocknr)
{
	sm_buf s = make_sm_block(3, CSUM_XOR_SM_BITMAP);
	check_result c = run_check(&sm_bitmap_validator, s.b, 2);

	EXPECT_EQ(-EILSEQ, c.r);
	EXPECT_EQ("bad block nr in space map bitmap (block 2)", c.msg);
}

TEST(sm_bitmap_validator, rejects_bad_checksum)
{
	sm_buf s = make_sm_block(2, CSUM_XOR_SM_BITMAP);

	s.b[4000] ^= 0x10;
	check_result c = run_check(&sm_bitmap_validator, s.b, 2);
	EXPECT_EQ(-EILSEQ, c.r);
	EXPECT_EQ("bad checksum in space map bitmap (block 2)", c.msg);
}

TEST(sm_bitmap_validator, rejects_other_block_types)
{
	for (uint32_t t : { CSUM_XOR_SUPERBLOCK, CSUM_XOR_BTREE_NODE, CSUM_XOR_SM_INDEX }) {
		sm_buf s = make_sm_block(2, t);

		EXPECT_EQ("bad checksum in space map bitmap (block 2)",
			  run_check(&sm_bitmap_validator, s.b, 2).msg);
	}
}

TEST(sm_bitmap_validator, prepare_for_write_stamps_blocknr_and_checksum)
{
	sm_buf s = make_sm_block(0, 0);

	sm_bitmap_validator.prepare_for_write(&sm_bitmap_validator, s.b, 40);
	EXPECT_EQ(40u, load_le64(s.b + 8));
	EXPECT_EQ(CSUM_XOR_SM_BITMAP, block_csum_type(s.b));
	EXPECT_EQ(0, run_check(&sm_bitmap_validator, s.b, 40).r);
}

TEST(sm_index_validator, accepts_a_valid_index_block)
{
	sm_buf s = make_sm_block(1, CSUM_XOR_SM_INDEX);

	EXPECT_EQ(0, run_check(&sm_index_validator, s.b, 1).r);
}

TEST(sm_index_validator, rejects_wrong_blocknr)
{
	sm_buf s = make_sm_block(0, CSUM_XOR_SM_INDEX);
	check_result c = run_check(&sm_index_validator, s.b, 1);

	EXPECT_EQ(-EILSEQ, c.r);
	EXPECT_EQ("bad block nr in metadata index block (block 1)", c.msg);
}

TEST(sm_index_validator, rejects_bad_checksum)
{
	sm_buf s = make_sm_block(1, CSUM_XOR_SM_INDEX);

	s.b[17] ^= 0x01;
	check_result c = run_check(&sm_index_validator, s.b, 1);
	EXPECT_EQ(-EILSEQ, c.r);
	EXPECT_EQ("bad checksum in metadata index block (block 1)", c.msg);

	// a bitmap where the index block should be
	sm_buf b = make_sm_block(1, CSUM_XOR_SM_BITMAP);
	EXPECT_EQ("bad checksum in metadata index block (block 1)",
		  run_check(&sm_index_validator, b.b, 1).msg);
}

TEST(sm_index_validator, prepare_for_write_stamps_blocknr_and_checksum)
{
	sm_buf s = make_sm_block(0, 0);

	sm_index_validator.prepare_for_write(&sm_index_validator, s.b, 1);
	EXPECT_EQ(1u, load_le64(s.b + 8));
	EXPECT_EQ(CSUM_XOR_SM_INDEX, block_csum_type(s.b));
	EXPECT_EQ(0, run_check(&sm_index_validator, s.b, 1).r);
}

}
