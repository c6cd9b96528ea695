/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_TRANSACTION_MANAGER_H
#define PD_TRANSACTION_MANAGER_H

/*
 * The transaction manager: copy-on-write access to metadata blocks
 * (format doc section 9).
 *
 * - A block reachable from the committed superblock is never written.
 *   tm_shadow() returns a writable copy: in place if the block was
 *   allocated (or already shadowed) in this transaction and its count is
 *   1; otherwise a new block holding a copy, with the old block's count
 *   decremented.  *inc_children is set when the old block was shared
 *   (count > 1): the caller must then increment every child of the copy
 *   (btree code does this through its value type).
 * - tm_new_block() allocates from the metadata space map and returns a
 *   zeroed write-locked block.
 * - tm_pre_commit() writes every dirty block and flushes, then the caller
 *   writes the superblock with tm_commit_superblock(), which flushes again.
 *
 * The tm does not own the block manager or the space map.
 */

#include "block-manager.h"
#include "error.h"
#include "space-map.h"

#include <stdbool.h>
#include <stdint.h>

struct tm;

int tm_create(struct bm *bm, struct space_map *md_sm, struct tm **out,
	      struct pd_err *err);
void tm_destroy(struct tm *tm);		/* accepts NULL */

struct bm *tm_bm(struct tm *tm);
struct space_map *tm_sm(struct tm *tm);

int tm_read_lock(struct tm *tm, uint64_t b, const struct bm_validator *v,
		 struct bm_block **out, struct pd_err *err);
int tm_new_block(struct tm *tm, const struct bm_validator *v,
		 struct bm_block **out, struct pd_err *err);
int tm_shadow(struct tm *tm, uint64_t b, const struct bm_validator *v,
	      struct bm_block **out, bool *inc_children, struct pd_err *err);
void tm_unlock(struct tm *tm, struct bm_block *blk);

/* Reference counts of metadata blocks. */
int tm_inc(struct tm *tm, uint64_t b);
int tm_dec(struct tm *tm, uint64_t b);
int tm_ref(struct tm *tm, uint64_t b, uint32_t *count);

/*
 * Writes all dirty blocks and flushes.  After this, and once the
 * superblock is written, blocks freed in the transaction may be reused.
 */
int tm_pre_commit(struct tm *tm, struct pd_err *err);
/* Writes the superblock block (already encoded, at location 0), flushes. */
int tm_commit_superblock(struct tm *tm, const void *sb_block, struct pd_err *err);

/* Was b allocated or shadowed in this transaction? */
bool tm_is_new(struct tm *tm, uint64_t b);

#endif
