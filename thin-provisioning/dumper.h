/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef THIN_DUMPER_H
#define THIN_DUMPER_H

/*
 * The metadata walker of thin_dump: the superblock, the devices and their
 * mappings of open metadata (live or held), in order, into an emitter.
 * Strict: damage ends the walk with an error (thin_dump --repair walks
 * with salvage.h instead).
 */

#include "emitter.h"
#include "metadata.h"
#include "persistent-data/error.h"

#include <stdbool.h>
#include <stdint.h>

/* What thin_dump walks. */
struct thin_emit_opts {
	bool skip_mappings;
	const uint64_t *dev_ids;	/* only these devices (NULL: all) */
	unsigned nr_dev_ids;
};

/* Walks the metadata in use (live or held) into the emitter. */
int thin_emit_metadata(struct thin_metadata *md, const struct thin_emit_opts *o,
		       struct emitter *e, struct pd_err *err);

/* Walks one device's mapping tree into runs. */
int thin_emit_mappings(struct thin_metadata *md, uint64_t root, struct emitter *e,
		       struct pd_err *err);

#endif
