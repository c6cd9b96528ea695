/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef THIN_DISK_H
#define THIN_DISK_H

/* On-disk thin metadata structures (format doc sections 3 and 5). */

#include "persistent-data/endian.h"
#include "persistent-data/space-map-disk.h"

#define THIN_SB_MAGIC		27022010ull
#define THIN_SB_VERSION		2u
#define THIN_SB_FLAG_NEEDS_CHECK 0x1u
#define THIN_SB_LOCATION	0u
#define THIN_METADATA_BLOCK_SECTORS 8u
#define THIN_MAX_DEV_ID		((1u << 24) - 1)
#define BLOCK_TIME_TIME_BITS	24
#define BLOCK_TIME_TIME_MASK	((1u << BLOCK_TIME_TIME_BITS) - 1)
#define THIN_MIN_DATA_BLOCK_SIZE 128u
#define THIN_MAX_DATA_BLOCK_SIZE 2097152u

/* Values of the thin trees. */
#define THIN_MAPPING_VALUE_SIZE	8u	/* block_time, or a bottom root */
#define THIN_DETAILS_VALUE_SIZE	24u

struct thin_sb_disk {
	le32 csum;
	le32 flags;
	le64 blocknr;
	uint8_t uuid[16];
	le64 magic;
	le32 version;
	le32 time;
	le64 trans_id;
	le64 metadata_snap;
	uint8_t data_sm_root[SM_ROOT_BLOB_SIZE];
	uint8_t metadata_sm_root[SM_ROOT_BLOB_SIZE];
	le64 data_mapping_root;
	le64 device_details_root;
	le32 data_block_size;
	le32 metadata_block_size;
	le64 metadata_nr_blocks;
	le32 compat_flags;
	le32 compat_ro_flags;
	le32 incompat_flags;
} __attribute__((packed));
PD_STATIC_ASSERT(sizeof(struct thin_sb_disk) == 364, "superblock size");

struct thin_details_disk {
	le64 mapped_blocks;
	le64 transaction_id;
	le32 creation_time;
	le32 snapshotted_time;
} __attribute__((packed));
PD_STATIC_ASSERT(sizeof(struct thin_details_disk) == 24, "details");

static inline uint64_t block_time_pack(uint64_t data_block, uint32_t time)
{
	return (data_block << BLOCK_TIME_TIME_BITS) | (time & BLOCK_TIME_TIME_MASK);
}

static inline uint64_t block_time_block(uint64_t bt)
{
	return bt >> BLOCK_TIME_TIME_BITS;
}

static inline uint32_t block_time_time(uint64_t bt)
{
	return (uint32_t)(bt & BLOCK_TIME_TIME_MASK);
}

#endif
