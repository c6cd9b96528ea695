/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef THIN_POOL_H
#define THIN_POOL_H

/*
 * A transaction on a pool's thin metadata: the writable counterpart of
 * metadata.h, used by restore, repair, merge and thin_check's fixes.
 *
 * pool_open() starts a transaction on existing metadata (the live
 * superblock's trees and space maps); pool_create() starts one that
 * formats fresh metadata on a device whose old contents are ignored.
 * Nothing reachable from the committed superblock is ever written;
 * pool_commit() writes the new blocks, flushes, then writes block 0 and
 * flushes again (format doc 9.2), so a crash leaves the old state or the
 * new one.  pool_abort() (or destroying without commit) leaves the
 * device as it was committed.
 */

#include "persistent-data/block-manager.h"
#include "persistent-data/btree-write.h"
#include "persistent-data/io-engine.h"
#include "persistent-data/space-map.h"
#include "persistent-data/transaction-manager.h"
#include "metadata.h"
#include "superblock.h"

struct pool {
	struct io_engine *io;
	struct bm *bm;
	struct tm *tm;
	struct space_map *md_sm;
	struct space_map *data_sm;
	struct thin_sb sb;		/* roots are updated as the trees change */
	struct btree_info details_info;	/* details tree */
	struct btree_info top_info;	/* top level: values are bottom roots */
	struct btree_info bottom_info;	/* bottom level: values are block_time */
	bool own_io;
};

struct pool_create_opts {
	uint64_t nr_data_blocks;
	uint32_t data_block_size;
	uint64_t trans_id;
	uint32_t time;
	uint32_t flags;
	uint32_t version;		/* 0: 2 */
	uint64_t nr_metadata_blocks;	/* 0: the whole device (capped) */
};

/*
 * Opens a transaction on the metadata behind an open engine.  The pool
 * does not own io.  cache_blocks 0: default.
 */
int pool_open(struct io_engine *io, unsigned cache_blocks, struct pool **out,
	      struct pd_err *err);
/*
 * pool_open() for metadata copied to another device: the metadata space
 * map is resized to that device (grown, or shrunk when no block past the
 * new end is in use) instead of being refused for not matching it.
 */
int pool_open_resized(struct io_engine *io, unsigned cache_blocks, struct pool **out,
		      struct pd_err *err);
int pool_create(struct io_engine *io, const struct pool_create_opts *o,
		unsigned cache_blocks, struct pool **out, struct pd_err *err);
void pool_destroy(struct pool *p);	/* aborts an uncommitted transaction */

/*
 * Fresh space maps over trees that are already on the device: every
 * metadata block with a count in md_counts and every data block with a
 * count in data_counts is taken as used with that count; the superblock
 * fields (roots included) come from sb.  For metadata assembled from
 * another device's trees (thin_merge -m).
 */
struct count_map;
int pool_create_from_counts(struct io_engine *io, const struct thin_sb *sb,
			    struct count_map *md_counts, struct count_map *data_counts,
			    unsigned cache_blocks, struct pool **out, struct pd_err *err);

/*
 * For thin_check's repairs: every block whose count in ondisk (the
 * counts read from the committed space map) is above its count in
 * expected gets the expected count, in the metadata space map (metadata)
 * or the data one; *fixed grows by the number of blocks changed.  Only
 * for blocks this transaction has not touched: leaked blocks, or data
 * blocks.  Commit with pool_commit().
 */
int pool_lower_counts(struct pool *p, bool metadata, const struct count_map *expected,
		      const struct count_map *ondisk, uint64_t *fixed, struct pd_err *err);

/* Sets the metadata space map's size (grow or shrink) to nr_blocks. */
int pool_resize_metadata(struct pool *p, uint64_t nr_blocks, struct pd_err *err);

int pool_commit(struct pool *p, struct pd_err *err);

/* Device details. */
int pool_get_device(struct pool *p, uint64_t dev_id, struct thin_device *dev,
		    struct pd_err *err);
/* Inserts or replaces the details of dev->dev_id (root is not stored here). */
int pool_set_details(struct pool *p, const struct thin_device *dev, struct pd_err *err);
/*
 * Sets the bottom root of dev_id in the top level.  The pool takes over
 * one reference to root; an old root is released (its tree deleted if
 * nothing else shares it).
 */
int pool_set_root(struct pool *p, uint64_t dev_id, uint64_t root, struct pd_err *err);

/*
 * Changing a device's tree in place takes three steps, top-down as the
 * kernel does it: pool_touch_root() shadows the top level's path to the
 * device's entry first (so that a bottom root shared through a shared
 * top-level leaf is seen as shared), then the bottom tree is changed
 * with btree_insert/remove on pool_bottom_info(), and pool_update_root()
 * stores the new root: the entry's reference moved to it by shadowing,
 * so nothing is released.
 */
int pool_touch_root(struct pool *p, uint64_t dev_id, struct pd_err *err);
int pool_update_root(struct pool *p, uint64_t dev_id, uint64_t root, struct pd_err *err);

/* Removes dev_id's details only (its tree goes with pool_take_root). */
int pool_remove_details(struct pool *p, uint64_t dev_id, struct pd_err *err);
/* Removes a device entirely (details, top-level entry, its tree). */
int pool_delete_device(struct pool *p, uint64_t dev_id, struct pd_err *err);
/*
 * Removes dev_id's top-level entry without releasing its tree: the caller
 * now owns that reference (to give it to another id).
 */
int pool_take_root(struct pool *p, uint64_t dev_id, uint64_t *root, struct pd_err *err);

/* The value types of the mapping tree's two levels, for btree builders. */
static inline struct btree_info *pool_bottom_info(struct pool *p)
{
	return &p->bottom_info;
}

#endif
