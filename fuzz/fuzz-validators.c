/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Node and superblock validators on one block: the input is the block
 * (zero-padded); its first byte chooses the location it is checked at
 * and whether its checksums are fixed first (to get past them).
 */
#include "fuzz-common.h"
#include "persistent-data/btree.h"
#include "thin-provisioning/superblock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t value_sizes[] = { 8, 24, 16, 4, 1, 0, 255 };
	uint8_t *blk = aligned_alloc(FUZZ_BLOCK, FUZZ_BLOCK);
	uint8_t ctl = size ? data[0] : 0;
	uint64_t loc = ctl & 0x3f;
	struct pd_err err;
	struct thin_sb sb;

	if (!blk)
		return 0;
	memset(blk, 0, FUZZ_BLOCK);
	if (size > 1)
		memcpy(blk, data + 1, size - 1 < FUZZ_BLOCK ? size - 1 : FUZZ_BLOCK);
	if (ctl & 0x40)
		store_le64(blk + 8, loc);

	/* btree nodes, every value size a tree uses and some it does not */
	if (ctl & 0x80)
		block_set_csum(blk, CSUM_XOR_BTREE_NODE);
	if (!btree_node_validator.check(&btree_node_validator, blk, loc, &err)) {
		for (unsigned i = 0; i < sizeof(value_sizes) / sizeof(value_sizes[0]); i++) {
			struct btree_shape_opts o = { .value_size = value_sizes[i] };

			btree_node_check_shape(blk, loc, &o, &err);
			o.exact_max = true;
			btree_node_check_shape(blk, loc, &o, &err);
			o.allow_max_not_div3 = true;
			o.exact_max = false;
			btree_node_check_shape(blk, loc, &o, &err);
		}
	}

	/* space map blocks */
	if (ctl & 0x80)
		block_set_csum(blk, CSUM_XOR_SM_BITMAP);
	if (!sm_bitmap_validator.check(&sm_bitmap_validator, blk, loc, &err)) {
		unsigned sum = 0;

		for (unsigned e = 0; e < SM_ENTRIES_PER_BITMAP; e += 97)
			sum += sm_bitmap_get(blk, e);
		(void)sum;
	}
	if (ctl & 0x80)
		block_set_csum(blk, CSUM_XOR_SM_INDEX);
	sm_index_validator.check(&sm_index_validator, blk, loc, &err);

	/* the superblock: validator, decoding, field checks for a few device sizes */
	if (ctl & 0x80)
		block_set_csum(blk, CSUM_XOR_SUPERBLOCK);
	if (!thin_sb_validator.check(&thin_sb_validator, blk, loc, &err)) {
		thin_sb_decode(blk, loc, &sb);
		thin_sb_check_fields(&sb, 2048, false, &err);
		thin_sb_check_fields(&sb, 2048, true, &err);
		thin_sb_check_fields(&sb, 1, false, &err);
		thin_sb_check_fields(&sb, UINT64_MAX, false, &err);
		thin_sb_encode(&sb, blk);
	}
	block_looks_like_xml(blk, FUZZ_BLOCK);
	free(blk);
	return 0;
}
