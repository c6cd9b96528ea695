/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_STORE_H
#define PD_STORE_H

/*
 * A transaction on metadata that is a superblock at block 0 plus
 * structures counted by a metadata space map (the cache and era formats,
 * and the array/bitset tests): the block manager, the metadata space map
 * and the transaction manager, set up together.
 *
 * pd_store_create() formats: a fresh metadata space map over the first
 * nr_blocks blocks (block 0 counted as used).  pd_store_open() takes the
 * space map root blob of a committed superblock.  pd_store_commit()
 * writes every new block, flushes, has the caller encode the superblock
 * (with the space map root to put in it, checksum included) and writes it
 * at block 0, flushing again: a crash leaves the old state or the new.
 * Destroying without commit abandons the transaction.  The store does not
 * own io.
 */

#include "block-manager.h"
#include "error.h"
#include "io-engine.h"
#include "space-map.h"
#include "transaction-manager.h"

#include <stdbool.h>

struct pd_store {
	struct io_engine *io;
	struct bm *bm;
	struct space_map *md_sm;
	struct tm *tm;
};

int pd_store_create(struct io_engine *io, uint64_t nr_blocks, unsigned cache_blocks,
		    struct pd_store **out, struct pd_err *err);
int pd_store_open(struct io_engine *io, const void *sm_root_blob, unsigned cache_blocks,
		  struct pd_store **out, struct pd_err *err);
/* encode(ctx, block, sm_root_blob): fill the 4 KiB superblock block. */
int pd_store_commit(struct pd_store *s,
		    void (*encode)(void *ctx, void *block, const void *sm_root_blob),
		    void *ctx, struct pd_err *err);
void pd_store_destroy(struct pd_store *s);	/* accepts NULL */

/*
 * The reading side of such metadata (cache, era): opens path with the
 * async engine, else the sync one (write: read-write and exclusive),
 * creates a block manager over it, and reads block 0, which must exist
 * ("Metadata device/file too small..."), must not be XML (it starts with
 * "<superblock", or also "<?xml" when xml_decl) and must pass sb_v's
 * check.  Copies block 0 into sb_block (MD_BLOCK_SIZE bytes).  On error
 * nothing stays open.
 */
int pd_store_read_sb(const char *path, bool write, bool xml_decl,
		     const struct bm_validator *sb_v, struct io_engine **io, struct bm **bm,
		     void *sb_block, struct pd_err *err);

#endif
