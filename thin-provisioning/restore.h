/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef THIN_RESTORE_H
#define THIN_RESTORE_H

/*
 * Writing metadata from an emitter stream (thin_restore, thin_repair):
 * the restore emitter formats fresh metadata on an open engine and
 * builds each device's mapping tree with the bulk loader.  Shared
 * sections (1.x <def>) are written once and their leaves shared by every
 * device that refers to them.  end_superblock commits.
 *
 * The counting emitter takes the same stream and computes how many
 * metadata blocks the result needs, so a too-small output is refused
 * before anything is written.
 */

#include "emitter.h"
#include "persistent-data/io-engine.h"

struct restore_opts {
	unsigned cache_blocks;		/* 0: default */
	uint32_t version;		/* of the superblock; 0: THIN_SB_VERSION */
};

/* The emitter writes through io; errors carry their message in *err. */
int restore_emitter_create(struct io_engine *io, const struct restore_opts *o,
			   struct pd_err *err, struct emitter **out);

struct restore_estimate {
	uint64_t nr_devices;
	uint64_t nr_mappings;		/* as written, shared sections once */
	uint64_t nr_data_blocks;
	uint64_t tree_blocks;		/* mapping and details trees */
};

int counting_emitter_create(struct restore_estimate *est, struct emitter **out);

/*
 * Metadata blocks a pool needs for est on a device of nr_md_blocks
 * blocks (space maps included), with room to spare for the split
 * pattern of incremental inserts.
 */
uint64_t restore_blocks_needed(const struct restore_estimate *est, uint64_t nr_md_blocks);

#endif
