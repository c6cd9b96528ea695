/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef THIN_SUPERBLOCK_H
#define THIN_SUPERBLOCK_H

/*
 * The thin superblock in CPU form, its validator and encoder.  The live
 * superblock is block 0; a metadata snapshot (held root) is a copy at
 * another block with zero space map roots.
 */

#include "persistent-data/block-manager.h"
#include "persistent-data/space-map-disk.h"
#include "thin-disk.h"

#include <stdbool.h>
#include <stdint.h>

/*
 * Superblock values given on the command line in place of those read
 * (--transaction-id, --data-block-size, --nr-data-blocks of thin_dump,
 * thin_restore and thin_repair).  emitter.h's sb_override_emitter
 * applies them.
 */
struct sb_overrides {
	bool set_trans_id, set_data_block_size, set_nr_data_blocks;
	uint64_t trans_id;
	uint32_t data_block_size;
	uint64_t nr_data_blocks;
};

struct thin_sb {
	uint64_t location;	/* block it was read from */
	uint32_t flags;
	uint8_t uuid[16];
	uint64_t magic;
	uint32_t version;
	uint32_t time;
	uint64_t trans_id;
	uint64_t metadata_snap;
	uint8_t data_sm_root[SM_ROOT_BLOB_SIZE];
	uint8_t metadata_sm_root[SM_ROOT_BLOB_SIZE];
	uint64_t data_mapping_root;
	uint64_t device_details_root;
	uint32_t data_block_size;
	uint32_t metadata_block_size;
	uint64_t metadata_nr_blocks;
	uint32_t compat_flags;
	uint32_t compat_ro_flags;
	uint32_t incompat_flags;
};

/*
 * Validates blocknr == location, the checksum and the magic (messages in
 * v0.9's words where it has them).
 */
extern const struct bm_validator thin_sb_validator;

/* Only the checksum, as v0.9 thin_check does. */
bool thin_sb_csum_ok(const void *block, uint32_t *wanted);

void thin_sb_decode(const void *block, uint64_t location, struct thin_sb *sb);
/* Encodes into a zeroed 4096-byte block and stamps the checksum. */
void thin_sb_encode(const struct thin_sb *sb, void *block);

/*
 * Sanity of the fields a reader trusts: roots inside the device, data
 * block size in range.  nr_md_blocks: size of the metadata device.
 */
int thin_sb_check_fields(const struct thin_sb *sb, uint64_t nr_md_blocks,
			 bool held_root, struct pd_err *err);

/* Does the block look like XML rather than metadata? */
bool block_looks_like_xml(const void *block, size_t len);

#endif
