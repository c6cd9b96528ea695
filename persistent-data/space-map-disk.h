/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_SPACE_MAP_DISK_H
#define PD_SPACE_MAP_DISK_H

/*
 * The on-disk space maps (format doc section 6): their structures, the
 * writable maps (space-map-persistent.c) and the read-only loader of their
 * counts (space-map-disk.c).
 */

#include "block-manager.h"
#include "endian.h"
#include "error.h"

#include <stdbool.h>
#include <string.h>

#define SM_ROOT_BLOB_SIZE	128u
#define SM_ENTRIES_PER_BITMAP	16320u	/* (4096 - 16) * 4 */
#define SM_MD_MAX_BITMAPS	255u
#define SM_MD_MAX_BLOCKS	(SM_MD_MAX_BITMAPS * SM_ENTRIES_PER_BITMAP)
#define SM_BITMAP_HEADER_SIZE	16u
#define SM_INDEX_ENTRY_SIZE	16u
#define SM_REF_COUNT_VALUE_SIZE	4u

struct sm_root_disk {			/* first 32 bytes of a 128-byte blob */
	le64 nr_blocks;
	le64 nr_allocated;
	le64 bitmap_root;		/* data: index btree; metadata: index block */
	le64 ref_count_root;
} __attribute__((packed));
PD_STATIC_ASSERT(sizeof(struct sm_root_disk) == 32, "sm root");

struct sm_index_entry_disk {
	le64 blocknr;
	le32 nr_free;
	le32 none_free_before;
} __attribute__((packed));
PD_STATIC_ASSERT(sizeof(struct sm_index_entry_disk) == 16, "index entry");

struct sm_bitmap_header_disk {
	le32 csum;
	le32 not_used;
	le64 blocknr;
} __attribute__((packed));
PD_STATIC_ASSERT(sizeof(struct sm_bitmap_header_disk) == 16, "bitmap header");

struct sm_metadata_index_disk {
	le32 csum;
	le32 padding;
	le64 blocknr;
	struct sm_index_entry_disk entry[SM_MD_MAX_BITMAPS];
} __attribute__((packed));
PD_STATIC_ASSERT(sizeof(struct sm_metadata_index_disk) == 4096, "index block");

/* Decoded root blob. */
struct sm_root {
	uint64_t nr_blocks;
	uint64_t nr_allocated;
	uint64_t bitmap_root;
	uint64_t ref_count_root;
};

static inline void sm_root_decode(const void *blob, struct sm_root *r)
{
	const struct sm_root_disk *d = (const struct sm_root_disk *)blob;

	r->nr_blocks = le64_to_cpu(d->nr_blocks);
	r->nr_allocated = le64_to_cpu(d->nr_allocated);
	r->bitmap_root = le64_to_cpu(d->bitmap_root);
	r->ref_count_root = le64_to_cpu(d->ref_count_root);
}

/*
 * Whether a space map of nr_blocks blocks fits beside a metadata device
 * of nr_md_blocks blocks: each of its bitmaps takes a metadata block, so
 * a map needing more bitmaps than the device has blocks cannot be real.
 * Every size read from disk or XML is checked with this before anything
 * is allocated from it.
 */
static inline bool sm_size_fits(uint64_t nr_blocks, uint64_t nr_md_blocks)
{
	/* ceil(nr_blocks / E) <= nr_md_blocks, without overflow */
	return nr_blocks / SM_ENTRIES_PER_BITMAP +
	       (nr_blocks % SM_ENTRIES_PER_BITMAP ? 1u : 0u) <= nr_md_blocks;
}

static inline void sm_root_encode(const struct sm_root *r, void *blob)
{
	struct sm_root_disk *d = (struct sm_root_disk *)blob;

	memset(blob, 0, SM_ROOT_BLOB_SIZE);
	d->nr_blocks = cpu_to_le64(r->nr_blocks);
	d->nr_allocated = cpu_to_le64(r->nr_allocated);
	d->bitmap_root = cpu_to_le64(r->bitmap_root);
	d->ref_count_root = cpu_to_le64(r->ref_count_root);
}

/*
 * Entry e of a bitmap (data after the 16-byte header).  The two bits of a
 * pair are swapped: the lower bit holds the high bit of the count.
 */
static inline unsigned sm_bitmap_get(const void *bitmap_block, unsigned e)
{
	const uint8_t *p = (const uint8_t *)bitmap_block + SM_BITMAP_HEADER_SIZE;
	uint64_t w = load_le64(p + 8u * (e / 32u)) >> ((e % 32u) * 2u);

	return (unsigned)(((w & 1u) << 1) | ((w >> 1) & 1u));
}

extern const struct bm_validator sm_bitmap_validator;
extern const struct bm_validator sm_index_validator;

/*----------------------------------------------------------------
 * The writable maps (space-map.h's interface)
 *
 * Data: a fresh map of nr_blocks free blocks, or one opened from the
 * 128-byte root blob of a superblock; its structures are metadata blocks
 * allocated through tm.  Metadata: created or opened on a block manager;
 * sm_metadata_attach_tm() then gives it the transaction manager built on
 * top of it (a fresh map gets its empty ref-count tree there).  A fresh
 * metadata map counts block 0 (the superblock) as used.
 *--------------------------------------------------------------*/

struct space_map;
struct tm;
int sm_disk_create(struct tm *tm, uint64_t nr_blocks, struct space_map **out,
		   struct pd_err *err);
int sm_disk_open(struct tm *tm, const void *root_blob, struct space_map **out,
		 struct pd_err *err);
int sm_metadata_create(struct bm *bm, uint64_t nr_blocks, struct space_map **out,
		       struct pd_err *err);
int sm_metadata_open(struct bm *bm, const void *root_blob, struct space_map **out,
		     struct pd_err *err);
int sm_metadata_attach_tm(struct space_map *sm, struct tm *tm, struct pd_err *err);
/* Makes the metadata map smaller; -ENOSPC if a block past the end is in use. */
int sm_metadata_shrink(struct space_map *sm, uint64_t nr_blocks, struct pd_err *err);

/*----------------------------------------------------------------
 * Loading a disk space map's counts into memory
 *--------------------------------------------------------------*/

#include "btree.h"
#include "count-map.h"

struct sm_load_hooks {
	void *ctx;
	/*
	 * Called for every node of the space map's btrees (data index tree,
	 * ref-count tree) before it is read further; may return
	 * BTREE_WALK_SKIP.  May be NULL.
	 */
	int (*node)(void *ctx, const struct btree_node_info *n);
	/* A reference from the space map to a metadata block (may be NULL). */
	int (*ref)(void *ctx, uint64_t block);
	/* Damage found; fatal ones mean counts may be wrong. */
	void (*damage)(void *ctx, const char *msg);
};

/*
 * Reads the counts recorded by the space map described by root into
 * counts (which must have root->nr_blocks blocks).  metadata: the root is
 * a metadata space map (index block) rather than a data one (index
 * btree).  Every structure is validated; damage goes to hooks->damage and
 * loading goes on where it can.  Returns the number of damage reports
 * (>= 0) or a negative error (out of memory, callback error).
 */
int sm_disk_load(struct bm *bm, const struct sm_root *root, bool metadata,
		 struct count_map *counts, const struct sm_load_hooks *hooks,
		 struct pd_err *err);

#endif
