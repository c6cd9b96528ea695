/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef THIN_TRIM_H
#define THIN_TRIM_H

/*
 * The data blocks of a pool that no device maps (thin_trim): every
 * device's mappings are walked once, marking a bit per data block (the
 * memory is nr_data_blocks / 8 bytes, 2 MiB for a 1 TiB pool of 64 KiB
 * blocks); then the unmapped runs are reported in order.  Mappings, not
 * the data space map, decide: a block the space map leaks is still free,
 * and a block it wrongly calls free but some device maps is kept.
 */

#include "persistent-data/error.h"
#include "thin-provisioning/metadata.h"

#include <stdint.h>

/* [begin, end) data blocks that no device maps; non-zero stops. */
typedef int (*trim_range_fn)(void *ctx, uint64_t begin, uint64_t end);
typedef void (*trim_progress_fn)(void *ctx, uint64_t done, uint64_t total);

struct trim_stats {
	uint64_t nr_data_blocks;
	uint64_t mapped;	/* distinct data blocks mapped */
	uint64_t ranges;	/* unmapped ranges reported */
	uint64_t unmapped;	/* blocks in them */
};

int thin_trim_walk(struct thin_metadata *md, trim_range_fn fn, void *ctx,
		   trim_progress_fn progress, void *pctx, struct trim_stats *st,
		   struct pd_err *err);

#endif
