/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef ERA_DISK_H
#define ERA_DISK_H

/* dm-era superblock and writeset layout (doc/cache-era-format.md section 5). */

#include "persistent-data/endian.h"
#include "persistent-data/space-map-disk.h"

#include <stdint.h>

#define ERA_SB_MAGIC		2126579579u
#define ERA_SB_CSUM_XOR		146538381u
#define ERA_METADATA_BLOCK_SECTORS 8u

struct era_writeset_disk {
	le32 nr_bits;
	le64 root;
} __attribute__((packed));
PD_STATIC_ASSERT(sizeof(struct era_writeset_disk) == 12, "era writeset");

struct era_sb_disk {
	le32 csum;
	le32 flags;
	le64 blocknr;
	uint8_t uuid[16];
	le64 magic;
	le32 version;
	uint8_t metadata_sm_root[SM_ROOT_BLOB_SIZE];
	le32 data_block_size;
	le32 metadata_block_size;
	le32 nr_blocks;
	le32 current_era;
	struct era_writeset_disk current_writeset;
	le64 writeset_tree_root;	/* valid in a metadata snapshot too */
	le64 era_array_root;		/* valid in a metadata snapshot too */
	le64 metadata_snap;
} __attribute__((packed));
PD_STATIC_ASSERT(sizeof(struct era_sb_disk) == 224, "era superblock");

#endif
