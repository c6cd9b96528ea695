/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef THINCMDS_DELTA_H
#define THINCMDS_DELTA_H

/*
 * The differences between two bottom-level mapping trees (thin_delta).
 *
 * Both trees are walked in step, in key order.  A subtree that both trees
 * point at (the same block number: a snapshot shares it with its origin)
 * is not compared: its leaves are read once and every mapping in it is
 * "same".  Memory is a stack of locked nodes per tree, whatever their size.
 *
 * What comes out are the steps of the reference algorithm: each device's
 * mappings form runs (consecutive virtual and data blocks, times ignored);
 * a step is a maximal range of virtual blocks of one kind that does not
 * cross the end or the start of a run of either device involved.
 */

#include "persistent-data/block-manager.h"
#include "persistent-data/error.h"

#include <stdint.h>

enum delta_kind {
	DELTA_LEFT_ONLY,
	DELTA_RIGHT_ONLY,
	DELTA_DIFFERENT,
	DELTA_SAME,
};

struct delta_step {
	enum delta_kind kind;
	uint64_t begin;		/* first virtual block */
	uint64_t len;
	uint64_t left_data;	/* LEFT_ONLY, DIFFERENT, SAME */
	uint64_t right_data;	/* RIGHT_ONLY, DIFFERENT, SAME */
};

/* Called for each step in order; non-zero stops the walk with that code. */
typedef int (*delta_step_fn)(void *ctx, const struct delta_step *s);

struct delta_stats {
	uint64_t shared_subtrees;	/* subtrees both trees share, not compared */
	uint64_t shared_mappings;	/* the mappings under them */
	uint64_t nodes_read;		/* nodes locked by the in-step walk */
};

/*
 * Walks the trees rooted at root1 (left) and root2 (right).  Damage (a
 * node that fails validation, keys out of order, a tree too deep) is an
 * error with a message.  stats may be NULL.
 */
int thin_delta_walk(struct bm *bm, uint64_t root1, uint64_t root2,
		    delta_step_fn fn, void *ctx, struct delta_stats *stats,
		    struct pd_err *err);

#endif
