/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef THIN_TREE_COPY_H
#define THIN_TREE_COPY_H

/*
 * Copying metadata from one device to another at the same block
 * numbers, for thin_merge's output:
 * - tree_copy_thin(): the blocks of a pair of thin trees (details tree,
 *   two-level mapping tree), each shared node once, counting the
 *   references to every metadata block and every data block on the way
 *   (format doc section 7), so fresh space maps can be written for them;
 * - copy_used_blocks(): every block a metadata space map counts as used.
 * Reading is strict: damage stops the copy with a message.
 */

#include "persistent-data/block-manager.h"
#include "persistent-data/count-map.h"
#include "persistent-data/io-engine.h"

struct tree_copy_progress {
	void (*fn)(void *ctx, uint64_t done);
	void *ctx;
};

/*
 * md_counts and data_counts must be zeroed maps big enough for the trees.
 * out may be NULL: count only (to size the output before writing).
 */
int tree_copy_thin(struct bm *in, struct io_engine *out, uint64_t details_root,
		   uint64_t mapping_root, struct count_map *md_counts,
		   struct count_map *data_counts, struct pd_err *err);

/* Copies the blocks whose count in used is non-zero; then flushes out. */
int copy_used_blocks(struct io_engine *in, struct io_engine *out,
		     struct count_map *used, const struct tree_copy_progress *prog,
		     struct pd_err *err);

#endif
