/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_ARRAY_H
#define PD_ARRAY_H

/*
 * The kernel's dm-array (doc/cache-era-format.md section 2): an array of
 * nr_entries values of value_size bytes, packed into array blocks, with
 * a btree (value size 8) mapping block index -> array block number.
 * Every array block but the last holds exactly array_max_entries()
 * values; the last holds the remainder; the btree holds keys 0 ... n-1
 * for n blocks, no gap.  The size of the array is not stored with it:
 * its owner (a cache or era superblock) records it.
 *
 * Values are plain bytes here (the cache and era arrays hold no
 * references), so an array block is never freed by anything but its
 * own reference count reaching 0.
 *
 * Write side: copy-on-write through the transaction manager, as
 * btree-write.h.  Roots move: every modifying call takes the root it
 * modifies and returns the array's new root; the old root must not be
 * used again.  An array root stands for one reference held by the
 * caller.
 *
 * Errors: negative errno with a message in *err.  -EINVAL (bad
 * argument) leaves the array untouched; any other error on the write
 * side may leave the transaction half done: abandon it.
 */

#include "block-manager.h"
#include "btree.h"
#include "array-disk.h"
#include "error.h"
#include "transaction-manager.h"

#include <stdbool.h>
#include <stdint.h>



/* blocknr and checksum (the kernel's rules); stamps them on write. */
extern const struct bm_validator array_block_validator;

/*
 * The tools' extra rules for array block number `index` of an array of
 * nr_entries values: value_size and max_entries as expected, nr_entries
 * full (or the remainder for the last block).  0 or -EILSEQ + message.
 */
int array_block_check_shape(const void *block, uint32_t value_size, uint64_t index,
			    uint64_t nr_entries, struct pd_err *err);

/*----------------------------------------------------------------
 * Read side
 *--------------------------------------------------------------*/

/* Copies value `index` to value_out.  -ENODATA past the end. */
int array_get(struct bm *bm, uint64_t root, uint32_t value_size, uint64_t index,
	      void *value_out, struct pd_err *err);

struct array_walk_ops {
	/*
	 * Every node of the array's btree, as btree_walk's node() (may be
	 * NULL; may return BTREE_WALK_SKIP).  Counting references: the
	 * root is the owner's, an internal node's values are its children,
	 * and ablock() below is the leaf's reference to an array block.
	 * The entries under a skipped node are neither visited nor
	 * reported missing.
	 */
	int (*node)(void *ctx, const struct btree_node_info *n);
	/*
	 * Every array block that passed its checks, in index order, before
	 * its values (may be NULL): block index, its location.
	 */
	int (*ablock)(void *ctx, uint64_t index, uint64_t block);
	/* nr values (raw LE, value_size each) starting at entry `first`. */
	int (*values)(void *ctx, uint64_t first, uint32_t nr, const void *values_le);
	/*
	 * Entries [lo, hi) that could not be read (hi = UINT64_MAX when the
	 * end is unknown), with a reason.  The walk goes on.
	 */
	void (*damage)(void *ctx, uint64_t lo, uint64_t hi, const char *msg);
};

/*
 * Walks an array of nr_entries values in index order.  Array blocks are
 * read ahead a btree leaf at a time.  Missing blocks, extra keys, bad
 * blocks and bad btree nodes go to ops->damage.  Returns 0 or a negative
 * error from a callback (or -ENOMEM).  Memory: that of btree_walk.
 */
int array_walk(struct bm *bm, uint64_t root, uint32_t value_size, uint64_t nr_entries,
	       const struct array_walk_ops *ops, void *ctx, struct pd_err *err);

/*
 * Random or sequential reads of one array: keeps a copy of the last
 * array block read, so a run of nearby indexes costs one lookup per
 * block.  Memory: one block.  Strict: damage is an error.
 */
struct array_reader;
int array_reader_create(struct bm *bm, uint64_t root, uint32_t value_size,
			struct array_reader **out, struct pd_err *err);
/* -ENODATA past the end. */
int array_reader_get(struct array_reader *r, uint64_t index, void *value_out,
		     struct pd_err *err);
/* Reads another array of the same value size from now on. */
void array_reader_reset(struct array_reader *r, uint64_t root);
void array_reader_destroy(struct array_reader *r);	/* accepts NULL */

/*----------------------------------------------------------------
 * Write side
 *--------------------------------------------------------------*/

/* An empty array (an empty btree leaf). */
int array_empty(struct tm *tm, uint64_t *root, struct pd_err *err);

/*
 * Overwrites value `index` (< the array's size, which the caller knows;
 * an index past the last block is -ENODATA).  Only the array block and
 * the btree path to it are shadowed.
 */
int array_set(struct tm *tm, uint64_t root, uint32_t value_size, uint64_t index,
	      const void *value_le, uint64_t *new_root, struct pd_err *err);

/*
 * Builds a new array from a stream of values: blocks are filled and
 * written as they fill, the btree with a btree builder.  Memory: one
 * array block plus the btree builder.
 */
struct array_builder;
int array_builder_create(struct tm *tm, uint32_t value_size, struct array_builder **out,
			 struct pd_err *err);
int array_builder_push(struct array_builder *b, const void *value_le, struct pd_err *err);
/* nr copies of one value (fast for long runs of a default). */
int array_builder_push_n(struct array_builder *b, const void *value_le, uint64_t nr,
			 struct pd_err *err);
uint64_t array_builder_size(const struct array_builder *b);
int array_builder_finish(struct array_builder *b, uint64_t *root, struct pd_err *err);
void array_builder_destroy(struct array_builder *b);	/* accepts NULL */

/*
 * Drops one reference to the array (its btree, and the array blocks
 * whose count reaches 0).
 */
int array_delete(struct tm *tm, uint64_t root, struct pd_err *err);

#endif
