/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef SNAP_SORT_H
#define SNAP_SORT_H

/*
 * Sorting exception entries by origin chunk in bounded memory.
 *
 * Entries are added in table order with their table index (seq).  Up to
 * run_entries of them are kept in memory; when more come, each full run
 * is sorted and appended to an unnamed temporary file ($TMPDIR, else
 * /tmp), and reading merges the runs.  A table that fits in one run never
 * touches a file.
 *
 * Order: by old_chunk, then by seq, so that the last entry of a group of
 * equal old_chunks is the one that was last in the table (the one that
 * wins, as in the kernel).  The sorter does not drop duplicates: its
 * reader sees them all.
 *
 * Reading may be repeated: snap_sorter_rewind() starts again from the
 * smallest entry (a merge reads the order once to copy and once more to
 * verify).
 *
 * Memory: one run (run_entries * 24 bytes; SNAP_SORT_RUN_DEFAULT gives
 * 6 MiB) while adding; while reading a spilled sort, one buffer per run
 * sharing SNAP_SORT_MERGE_BYTES (at least 64 entries per run).  The
 * temporary file holds 24 bytes per entry.
 *
 * Errors: negative errno with a message in *err.
 */

#include "persistent-data/error.h"

#include <stdint.h>

#define SNAP_SORT_RUN_DEFAULT	(256u * 1024u)
#define SNAP_SORT_MERGE_BYTES	(8u << 20)

struct snap_sorted {
	uint64_t old_chunk, new_chunk, seq;
};

struct snap_sorter;

/* run_entries 0: SNAP_SORT_RUN_DEFAULT. */
int snap_sorter_create(uint64_t run_entries, struct snap_sorter **out, struct pd_err *err);
void snap_sorter_destroy(struct snap_sorter *s);

int snap_sorter_add(struct snap_sorter *s, const struct snap_sorted *e, struct pd_err *err);

/* After the last add: sorts the last run.  Then rewind and read. */
int snap_sorter_finish(struct snap_sorter *s, struct pd_err *err);
int snap_sorter_rewind(struct snap_sorter *s, struct pd_err *err);
/* 1 with *e filled, 0 at the end, or a negative errno. */
int snap_sorter_next(struct snap_sorter *s, struct snap_sorted *e, struct pd_err *err);

uint64_t snap_sorter_count(const struct snap_sorter *s);
/* Runs written to the temporary file (0 when the table fit in memory). */
uint64_t snap_sorter_spilled_runs(const struct snap_sorter *s);

#endif
