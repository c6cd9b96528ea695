/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_REF_CHECK_H
#define PD_REF_CHECK_H

/*
 * Checking a metadata space map against the references found, for the
 * cache and era checkers: every reference to a metadata block is counted
 * (a superblock's roots, internal btree nodes' children, array blocks,
 * the space map's own blocks), each node's children once however many
 * parents reach it, and the totals are compared with the counts the
 * space map records.  The first problem found is kept as one line.
 * Memory: the count map (2 bits a block) plus a bit a block.
 */

#include "block-manager.h"
#include "btree.h"
#include "error.h"

#include <stdbool.h>
#include <stdint.h>

struct ref_check {
	uint64_t nr_blocks;
	struct count_map *expected;
	uint8_t *seen;
	unsigned problems;
	char first[PD_ERR_MSG_MAX + 64];
	uint64_t *leaked;	/* after ref_check_compare */
	uint64_t nr_leaked;
	uint64_t nr_bad;
};

int ref_check_init(struct ref_check *rc, uint64_t nr_blocks);
void ref_check_exit(struct ref_check *rc);

void ref_check_problem(struct ref_check *rc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* One reference to b (a problem if b is past the end).  0 or -ENOMEM. */
int ref_check_ref(struct ref_check *rc, uint64_t b);

/*
 * A btree_walk / array_walk node() hook: counts an internal node's
 * children the first time the node is reached; BTREE_WALK_SKIP after.
 */
int ref_check_node(struct ref_check *rc, const struct btree_node_info *n);

/*
 * Loads the metadata space map of root_blob (its blocks counted as
 * references), compares: blocks counted but recorded 0 or with another
 * count are a problem ("bad reference counts"); blocks recorded but not
 * referenced go to leaked[] (non-fatal).  0 or -ENOMEM.
 */
int ref_check_compare(struct ref_check *rc, struct bm *bm, const void *root_blob);

#endif
