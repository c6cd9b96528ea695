/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef THINCMDS_RMAP_H
#define THINCMDS_RMAP_H

/*
 * The reverse map of data blocks (thin_rmap): which device and virtual
 * blocks map each data block of some regions.  Every device's mappings
 * are walked once; the runs found (consecutive data blocks mapped by
 * consecutive virtual blocks of one device) come out sorted by data
 * block, then end, device and virtual block.  Runs are sorted in memory
 * in chunks of a bounded size; more than one chunk is spilled to
 * temporary files and merged, so memory does not grow with the output.
 */

#include "persistent-data/error.h"
#include "thin-provisioning/metadata.h"

#include <stdint.h>

struct rmap_region {
	uint64_t begin, end;	/* data blocks [begin, end) */
};

struct rmap_run {
	uint64_t data_begin, data_end;
	uint64_t dev_id;
	uint64_t thin_begin;
};

typedef int (*rmap_fn)(void *ctx, const struct rmap_run *run);

/*
 * regions: any order, may overlap.  chunk_runs: runs sorted in memory at
 * a time (0: default, 1M runs = 32 MiB).  Errors come with a message.
 */
int thin_rmap_walk(struct thin_metadata *md, const struct rmap_region *regions,
		   unsigned nr_regions, size_t chunk_runs, rmap_fn fn, void *ctx,
		   struct pd_err *err);

#endif
