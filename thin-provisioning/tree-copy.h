/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef THIN_TREE_COPY_H
#define THIN_TREE_COPY_H

/*
 * Copying metadata from one device to another at the same block
 * numbers, for thin_merge's output:
 * - tree_copy_thin(): the blocks of a pair of thin trees (details tree,
 *   two-level mapping tree), each shared node once, counting the
 *   references to every metadata block and every data block on the way
 *   (format doc section 7), so fresh space maps can be written for them
 *   (thin_merge -m).
 * A whole pool is copied through an overlay engine instead
 * (persistent-data/io-engine-overlay.h).  Reading is strict: damage stops
 * the copy with a message.
 */

#include "persistent-data/block-manager.h"
#include "persistent-data/count-map.h"
#include "persistent-data/io-engine.h"

/*
 * md_counts and data_counts must be zeroed maps big enough for the trees.
 * out may be NULL: count only (to size the output before writing).
 */
int tree_copy_thin(struct bm *in, struct io_engine *out, uint64_t details_root,
		   uint64_t mapping_root, struct count_map *md_counts,
		   struct count_map *data_counts, struct pd_err *err);

#endif
