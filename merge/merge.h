/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef MERGE_H
#define MERGE_H

/*
 * Merging an external snapshot S with the copy of its origin O: the
 * merged device M maps every virtual block S maps to S's mapping, every
 * other block O maps to O's mapping; the rest stays unmapped.
 *
 * Two ways to do it, over the same trees:
 * - merge_in_pool(): a transaction on a pool: S's mappings are written
 *   into O's tree (copy-on-write: O's nodes shared with O's snapshots
 *   are copied, not changed), O's hidden data blocks lose a reference,
 *   S is deleted, and M takes O's id (or S's with rebase).  The cost
 *   follows S's size: S's leaves and the O leaves they land in.
 * - merge_walk(): a read-only visitor over both trees in key order,
 *   reporting every mapping of M (and every O mapping S hides); used to
 *   write M alone into fresh metadata.
 *
 * M's details: O's (or S's), mapped_blocks recomputed, and
 * snapshotted_time = max(O's, S's): dm-thin treats a mapping as shared
 * when the device's snapshotted_time is later than the mapping's time,
 * so every block M shares with a snapshot of O or of S stays shared.
 */

#include "persistent-data/error.h"
#include "thin-provisioning/metadata.h"
#include "thin-provisioning/pool.h"

#include <stdbool.h>
#include <stdint.h>

struct merge_opts {
	uint64_t origin;
	uint64_t snapshot;
	bool rebase;			/* M keeps S's id and details */
	/* progress: done out of total S mappings (may be NULL) */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *progress_ctx;
};

struct merge_stats {
	uint64_t from_snapshot;		/* S's mappings, all in M */
	uint64_t kept_from_origin;	/* O's mappings S does not hide */
	uint64_t hidden;		/* O's mappings S hides */
	uint64_t merged_mapped;		/* M's mapped_blocks */
	uint64_t kept_id;		/* M's id */
	uint64_t dropped_id;		/* the id that disappears */
	uint32_t snap_time;		/* M's snapshotted_time */
};

/* M's details from O's and S's (merge or rebase), mapped_blocks unset. */
void merge_details(const struct thin_device *o, const struct thin_device *s,
		   bool rebase, struct thin_device *m);

/*
 * In a pool transaction.  Both devices must exist ("device N not found").
 * origin == snapshot: nothing to merge (stats say so, nothing changes).
 * O's mapped_blocks is trusted from its details (the caller validates
 * O's tree when its cost allows).  The caller commits.
 */
int merge_in_pool(struct pool *p, const struct merge_opts *o,
		  struct merge_stats *st, struct pd_err *err);

/*
 * The in-place merge's check, run before merge_in_pool() on an inactive
 * pool: the details and top-level paths of O and S, S's whole tree
 * (every node read once, its mapping count as its details say), and for
 * each of S's keys the path down O's tree, every node's keys within the
 * range its parent gives it, with the leaves beside each O leaf it
 * changes; the metadata space map must count every node read, and the
 * data space map every data block S maps and every O block S hides.
 * The cost follows S.  -EILSEQ (or -ENODATA: no such device) with a
 * message naming what is wrong.
 */
int merge_validate_in_place(struct pool *p, const struct merge_opts *o, struct pd_err *err);

enum merge_source {
	MERGE_FROM_SNAPSHOT,	/* in M, from S */
	MERGE_FROM_ORIGIN,	/* in M, from O */
	MERGE_HIDDEN,		/* O's mapping under one of S's: not in M */
};

struct merge_visitor {
	int (*mapping)(void *ctx, uint64_t key, uint64_t block_time,
		       enum merge_source src);
	void *ctx;
};

/*
 * Walks O and S (bottom roots) in key order.  A visitor returning
 * non-zero stops the walk with that value.
 */
int merge_walk(struct bm *bm, uint64_t origin_root, uint64_t snapshot_root,
	       const struct merge_visitor *v, struct pd_err *err);

/*
 * Counts what merging would do without changing anything: S's mappings,
 * and how many of them hide one of O's (looked up in O: the cost follows
 * S).  kept_from_origin uses o_mapped (O's mapped_blocks).
 */
int merge_count(struct bm *bm, const struct thin_device *o, const struct thin_device *s,
		bool rebase, struct merge_stats *st, struct pd_err *err);

#endif
