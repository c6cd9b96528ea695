/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_WALK_CAP_H
#define PD_WALK_CAP_H

/*
 * The bound on one walk of an on-disk structure (a btree, an array's
 * blocks): a structure on a device of N blocks is made of at most N
 * distinct blocks, so a walk that has visited more than N blocks has
 * reached some block twice (a cycle, or a block shared where the format
 * allows no sharing: two children of one tree, two array indices).  Key
 * ranges and the depth limit already end most such walks; this cap ends
 * every other one, after at most N visits, whatever the shape, so the
 * cost of any one walk is bounded by the device size.  Shared by
 * btree_walk(), the btree cursor and array_walk() (so bitset_walk()).
 * Walks of different structures may share blocks legitimately (thin
 * snapshots share subtrees), so the cap is per walk.
 */

#include "error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>

struct walk_cap {
	uint64_t visits;
	uint64_t max;		/* the device's number of blocks */
};

static inline void walk_cap_init(struct walk_cap *c, uint64_t nr_blocks)
{
	c->visits = 0;
	c->max = nr_blocks;
}

/*
 * One more block (block) visited by the walk of `what`: 0, or -ELOOP
 * with a message when the walk has now visited more blocks than the
 * device holds.
 */
static inline int walk_cap_visit(struct walk_cap *c, const char *what, uint64_t block,
				 struct pd_err *err)
{
	if (++c->visits <= c->max)
		return 0;
	return pd_err_set(err, -ELOOP,
			  "%s walk reached more blocks than the metadata device holds (%" PRIu64
			  ") at block %" PRIu64 ": a block reached twice (cycle?)",
			  what, c->max, block);
}

#endif
