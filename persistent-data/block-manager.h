/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_BLOCK_MANAGER_H
#define PD_BLOCK_MANAGER_H

/*
 * The block manager: locked access to 4 KiB metadata blocks through a
 * bounded cache over an I/O engine.
 *
 * - A block is read, checked by a validator once when it enters the cache
 *   (or when locked with a different validator), and stays cached while
 *   locked.  Unlocked blocks are evicted in LRU order; the cache never
 *   holds more than the number of blocks given at creation, so memory is
 *   bounded whatever the size of the metadata.
 * - Write locks mark a block dirty; prepare_for_write (e.g. stamp blocknr
 *   and checksum) runs just before it is written.  A dirty block may be
 *   written back early when it is evicted: the transaction manager only
 *   ever dirties blocks that the committed state does not use.
 * - Every lock has its unlock.  Locking a block that is already
 *   write-locked, or write-locking a block that is locked, is -EBUSY.
 */

#include "error.h"
#include "io-engine.h"

#include <stdbool.h>
#include <stdint.h>

struct bm;
struct bm_block;

struct bm_validator {
	const char *name;
	/* 0 if the block is valid at location, else -EILSEQ etc. + message */
	int (*check)(const struct bm_validator *v, const void *data,
		     uint64_t location, struct pd_err *err);
	/* stamps a block about to be written (may be NULL) */
	void (*prepare_for_write)(const struct bm_validator *v, void *data,
				  uint64_t location);
};

#define BM_DEFAULT_CACHE_BLOCKS 2048u

/* The bm does not own io; destroy the bm before the engine. */
int bm_create(struct io_engine *io, unsigned cache_blocks, struct bm **out,
	      struct pd_err *err);
/* Accepts NULL.  Dirty blocks are dropped unwritten: call bm_flush first. */
void bm_destroy(struct bm *bm);

struct io_engine *bm_io(struct bm *bm);
uint64_t bm_nr_blocks(struct bm *bm);

/* v may be NULL: no validation. */
int bm_read_lock(struct bm *bm, uint64_t b, const struct bm_validator *v,
		 struct bm_block **out, struct pd_err *err);
int bm_write_lock(struct bm *bm, uint64_t b, const struct bm_validator *v,
		  struct bm_block **out, struct pd_err *err);
/* A write lock on a zero-filled block; nothing is read. */
int bm_write_lock_zero(struct bm *bm, uint64_t b, const struct bm_validator *v,
		       struct bm_block **out, struct pd_err *err);
void bm_unlock(struct bm_block *blk);

const void *bm_block_data(const struct bm_block *blk);
void *bm_block_data_rw(struct bm_block *blk);	/* write locks only */
uint64_t bm_block_location(const struct bm_block *blk);

/*
 * A word the user may keep with a cached block's content (e.g. "checked
 * as a node of this kind"): reset to 0 whenever the content is read
 * again, zeroed or write-locked.
 */
uint32_t *bm_block_aux(struct bm_block *blk);

/*
 * Starts reading blocks that are not cached, in one batch per
 * IO_MAX_BATCH; never fails (a block that cannot be read is simply not
 * cached, and the lock that follows reports the error).  Reads at most
 * half the cache at a time.
 */
void bm_prefetch(struct bm *bm, const uint64_t *blocks, unsigned n);

/* Writes every dirty block, then flushes the device. */
int bm_flush(struct bm *bm, struct pd_err *err);

/* Forgets a cached copy (after a raw write of that block elsewhere). */
void bm_forget(struct bm *bm, uint64_t b);

/* Counters for tests and benchmarks. */
struct bm_stats {
	uint64_t reads;		/* blocks read from the engine */
	uint64_t writes;	/* blocks written */
	uint64_t hits;		/* locks served from the cache */
};
void bm_get_stats(struct bm *bm, struct bm_stats *st);

#endif
