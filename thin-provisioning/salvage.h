/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef THIN_SALVAGE_H
#define THIN_SALVAGE_H

/*
 * Salvaging damaged metadata (thin_repair, thin_dump --repair): walk the
 * trees with damage tolerance and feed whatever can still be read to an
 * emitter, reporting each loss.
 *
 * Roots: the superblock's when it is valid and its roots read as the
 * right kind of tree; otherwise the metadata device is scanned for btree
 * nodes and the roots are chosen from the trees found there: for the
 * mapping tree, the top-level tree naming the most devices whose
 * subtrees are readable; for the details tree, the one sharing the most
 * device ids with it.
 */

#include "emitter.h"
#include "superblock.h"
#include "persistent-data/block-manager.h"

struct salvage_opts {
	struct sb_overrides ov;		/* needed when the superblock is lost */
	/* a line per loss (may be NULL) */
	void (*report)(void *ctx, const char *msg);
	void *ctx;
};

struct salvage_stats {
	uint64_t devices;
	uint64_t mappings;
	uint64_t lost_ranges;		/* damaged subtrees skipped */
	uint64_t dropped_mappings;	/* beyond the data device, or out of order */
	bool used_scan;			/* the roots came from a scan */
};

/*
 * Emits the salvaged pool.  Fails only when nothing usable is found (no
 * superblock values and no overrides, no trees), or on emitter/memory
 * errors.
 */
int thin_salvage(struct bm *bm, const struct salvage_opts *o, struct emitter *e,
		 struct salvage_stats *st, struct pd_err *err);

#endif
