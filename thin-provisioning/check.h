/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef THIN_CHECK_H
#define THIN_CHECK_H

/*
 * The thin metadata checker (format doc section 10): the superblock, the
 * device details tree, both levels of the mapping tree (each shared node
 * once), mapped_blocks per device, the keys of the details and mapping
 * trees, and the data and metadata space maps against reference counts
 * computed from the trees; with clear_needs_check or auto_repair, the
 * fixes thin_check makes.
 *
 * It never prints: every line goes to the caller's report callback, and
 * the caller decides where (thin_check prints them; thin_merge keeps
 * them for its own message).
 *
 * Memory: a 2-bit count per metadata and per data block, a bit per
 * metadata block (nodes already walked), and the subtree sizes of shared
 * nodes; never a whole tree.
 */

#include "persistent-data/io-engine.h"

#include <stdbool.h>
#include <stdint.h>

struct thin_check_opts {
	enum io_engine_kind engine;
	bool metadata_snap;		/* check the held root (opened without O_EXCL) */
	bool skip_mappings;		/* the top level of the mapping tree only */
	bool super_block_only;
	bool ignore_non_fatal;		/* leaks and underfull nodes pass */
	bool clear_needs_check;		/* writes: clear NEEDS_CHECK, fix leaks */
	bool auto_repair;		/* writes: as clear_needs_check, after a full check */
	bool override_root;
	uint64_t override_root_block;	/* with override_root: the top-level root */
};

enum thin_check_severity {
	/*
	 * The examination: indent 0 names a part being examined
	 * ("examining mapping tree") or a fix made, deeper lines the damage
	 * found in it.
	 */
	THIN_CHECK_LINE,
	/* Why nothing was examined (too small, XML, no metadata snapshot). */
	THIN_CHECK_NOTICE,
	/* The check itself failed: open, I/O, out of memory, a fix's write. */
	THIN_CHECK_ERROR,
	/* A KEY=value line from the superblock (TRANSACTION_ID, METADATA_FREE_BLOCKS). */
	THIN_CHECK_SUMMARY,
};

typedef void (*thin_check_report_fn)(void *ctx, enum thin_check_severity sev, int indent,
				     const char *line);

/*
 * Checks the metadata at path.  Returns 0 when it passes (and the fixes
 * asked for are made), else 1.  report may be NULL.
 */
int thin_check(const char *path, const struct thin_check_opts *o,
	       thin_check_report_fn report, void *ctx);

#endif
