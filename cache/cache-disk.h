/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef CACHE_DISK_H
#define CACHE_DISK_H

/* dm-cache superblock and mapping layout (doc/cache-era-format.md section 4). */

#include "persistent-data/endian.h"
#include "persistent-data/space-map-disk.h"

#include <stdint.h>

#define CACHE_SB_MAGIC		06142003u
#define CACHE_SB_CSUM_XOR	9031977u
#define CACHE_POLICY_NAME_SIZE	16u
#define CACHE_METADATA_BLOCK_SECTORS 8u

#define CACHE_SB_CLEAN_SHUTDOWN	0x1u
#define CACHE_SB_NEEDS_CHECK	0x2u

/*
 * Every hint array value is 4 bytes: the kernel reads hints as le32 and
 * uses them only when policy_hint_size matches the policy's (smq: 4);
 * policy_hint_size 0 means the hints were never written.
 */
#define CACHE_HINT_BYTES	4u

#define CACHE_M_VALID		0x1u
#define CACHE_M_DIRTY		0x2u	/* version 1 only */
#define CACHE_M_FLAGS_MASK	0xffffu

struct cache_sb_disk {
	le32 csum;
	le32 flags;
	le64 blocknr;
	uint8_t uuid[16];
	le64 magic;
	le32 version;
	uint8_t policy_name[CACHE_POLICY_NAME_SIZE];
	le32 policy_hint_size;
	uint8_t metadata_sm_root[SM_ROOT_BLOB_SIZE];
	le64 mapping_root;
	le64 hint_root;
	le64 discard_root;
	le64 discard_block_size;
	le64 discard_nr_blocks;
	le32 data_block_size;
	le32 metadata_block_size;
	le32 cache_blocks;
	le32 compat_flags;
	le32 compat_ro_flags;
	le32 incompat_flags;
	le32 read_hits;
	le32 read_misses;
	le32 write_hits;
	le32 write_misses;
	le32 policy_version[3];
	le64 dirty_root;		/* version 2 */
} __attribute__((packed));
PD_STATIC_ASSERT(sizeof(struct cache_sb_disk) == 292, "cache superblock");

#endif
