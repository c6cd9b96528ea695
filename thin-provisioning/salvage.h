/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef THIN_SALVAGE_H
#define THIN_SALVAGE_H

/*
 * Salvaging damaged metadata (thin_repair, thin_dump --repair): walk the
 * trees with damage tolerance and feed whatever can still be read to an
 * emitter, reporting each loss.
 *
 * Roots: the superblock's when it is valid, each root reads as a tree of
 * its kind (the mapping root as a top level whose values are mapping
 * trees) and both trees name the same devices.  Otherwise the metadata
 * device is scanned for btree nodes and the pair that names the most
 * devices in common is chosen among the trees found there and the
 * superblock's roots (a tie goes to the superblock's roots, then to the
 * larger trees): a wrong or stale root loses to the consistent one.
 *
 * A device whose top-level entry is lost gets back the one unnamed
 * mapping tree found by scanning that holds as many mappings as its
 * details say, when exactly one does.
 *
 * A lost superblock: the data block size comes from a copy of the
 * superblock (a held metadata snapshot's root) when one is found, else
 * it must be given; the number of data blocks is the highest mapped
 * block + 1, the transaction id the highest device transaction + 1 and
 * the time the latest in use, unless given.  Every inference is
 * reported.
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
