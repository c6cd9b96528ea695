/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef SNAP_MERGE_H
#define SNAP_MERGE_H

/*
 * Checking a snapshot store's table and merging it into its origin
 * (snapshot_check, snapshot_dump, snapshot_merge and dm-merge share it).
 *
 * The scan reads the whole table once (snap_walk) and checks every entry
 * before anything is written: each new_chunk lies inside the COW, is a
 * data chunk (not the header, not a metadata area) and is used by one
 * entry only; each old_chunk is addressable (and inside the origin when
 * its size is given); the table ends with an end marker (or, only when
 * the caller accepts it, at the COW's end).  Problems go to a report
 * callback, one line each, at most SNAP_REPORT_MAX per kind followed by
 * one line counting the rest.  Entries after the end marker in its area
 * are a warning (the kernel ignores them, so does the merge).
 *
 * The scan also sorts the entries by destination (old_chunk) in bounded
 * memory (snap-sort.h).  The plan is that order with duplicates removed
 * (the last entry of the table for an old_chunk wins, as in the kernel,
 * which keeps the last one it reads) and runs of consecutive old_chunks
 * held at consecutive new_chunks coalesced into extents.
 *
 * The copy reads the table again in table order, a window of entries
 * at a time (SNAP_WINDOW_BYTES of chunk data): the window's COW chunks
 * are read in runs of consecutive chunks (the kernel allocates them in
 * table order, so these are long sequential reads), then its entries
 * are sorted by origin chunk and written, consecutive origin chunks as
 * one request.  The last entry for an old_chunk wins: inside a window
 * only it is written, and windows go in table order.  Then the origin
 * is flushed.  The COW is never written, and the result depends only on
 * the COW, so a copy that was interrupted can simply be run again.
 * Verify walks the plan in origin order, reads every written range of
 * both back and compares them.
 *
 * Memory: the sorter's bound, one bit per COW chunk (duplicate
 * new_chunks: 1/128 of the table's own size), the copy's window buffer
 * and its entries (verify: two SNAP_IO_BYTES buffers).  Library code: never prints; errors are negative errno
 * with a message in *err.
 */

#include "snap-sort.h"
#include "snap-store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_REPORT_MAX 10

/* The copy's buffer: COW data read per window (snap_copy). */
#define SNAP_WINDOW_BYTES (8u << 20)

struct snap_scan_opts {
	uint64_t origin_bytes;		/* 0: unknown, not checked */
	bool accept_no_end;		/* a table running into the COW's end is not a problem */
	uint64_t sort_run;		/* entries per sort run, 0: default */
	/* fatal: a problem (counted in nr_problems); else a warning */
	void (*report)(void *ctx, bool fatal, const char *msg);
	/*
	 * Each origin chunk with more than one entry, in origin order:
	 * its COW chunks in table order (the last one wins), at most
	 * SNAP_DUP_LIST of them: the first SNAP_DUP_LIST - 1 and the last
	 * when there are more (nr_entries says how many).  May be NULL.
	 */
	void (*duplicate)(void *ctx, uint64_t old_chunk, const uint64_t *cow_chunks,
			  unsigned nr_listed, uint64_t nr_entries);
	void *ctx;
};

/* COW chunks listed per duplicated origin chunk (snap_scan_opts.duplicate). */
#define SNAP_DUP_LIST 8

struct snap_scan {
	struct snap_table_info table;
	uint64_t nr_problems;
	uint64_t nr_warnings;
	uint64_t max_old_chunk;		/* when table.nr_entries > 0 */
	/* from the sorted order */
	uint64_t distinct_chunks;	/* origin chunks to write */
	uint64_t duplicates;		/* entries overridden by a later one */
	uint64_t duplicated_chunks;	/* origin chunks with more than one entry */
	uint64_t nr_extents;		/* coalesced runs */
	uint64_t spilled_runs;		/* sort runs that went to a temporary file */
	struct snap_sorter *sorter;	/* owned; snap_scan_release() */
};

/* Needs s's header checked.  0 even when problems were found (see nr_problems). */
int snap_scan_table(struct snap_store *s, const struct snap_scan_opts *o,
		    struct snap_scan *out, struct pd_err *err);
void snap_scan_release(struct snap_scan *sc);

/*
 * Can an origin of origin_bytes take every chunk of the table?  0, or
 * -ENOSPC "origin too small", or -EINVAL when the table reaches into a
 * last partial 4 KiB block of the origin (not written by whole blocks).
 */
int snap_check_origin(const struct snap_store *s, const struct snap_scan *sc,
		      const char *origin, uint64_t origin_bytes, struct pd_err *err);

/* The plan: extents in ascending old_chunk order. */
struct snap_extent {
	uint64_t old_chunk, new_chunk, nr_chunks;
};

struct snap_plan {
	struct snap_sorter *sorter;
	bool have_peek, done, have_pending;
	struct snap_sorted peek;	/* the sorter's next entry, read ahead */
	struct snap_sorted pending;	/* a resolved entry that starts the next extent */
	uint64_t duplicates;
	uint64_t duplicated_chunks;
	/* optional: called for each duplicated origin chunk (as snap_scan_opts) */
	void (*duplicate)(void *ctx, uint64_t old_chunk, const uint64_t *cow_chunks,
			  unsigned nr_listed, uint64_t nr_entries);
	void *ctx;
};

int snap_plan_begin(struct snap_plan *p, struct snap_sorter *sorter, struct pd_err *err);
/* 1 with *x filled, 0 at the end, or a negative errno. */
int snap_plan_next(struct snap_plan *p, struct snap_extent *x, struct pd_err *err);

struct snap_copy_opts {
	bool verify_only;	/* read back and compare, write nothing */
	void (*progress)(void *ctx, uint64_t bytes_done);
	void *ctx;
};

struct snap_copy_stats {
	uint64_t bytes;		/* written (or compared) */
	uint64_t extents;	/* of the plan */
	uint64_t ios;		/* write requests (verify: batches) issued */
	uint64_t mismatches;	/* verify: 4 KiB blocks that differ */
	uint64_t first_mismatch_block;	/* origin block */
};

/*
 * Copies (or verifies) the plan of sc from s's COW into origin, which
 * must be open for writing unless verify_only.  The copy ends with a
 * flush of the origin.  Verify: -EILSEQ when any block differs.
 */
int snap_copy(struct snap_store *s, struct snap_scan *sc, struct io_engine *origin,
	      const struct snap_copy_opts *o, struct snap_copy_stats *st, struct pd_err *err);

/*
 * One shell line copying extent x from cow to origin with dd(1), paths
 * quoted for the shell.  Returns the length (as snprintf).
 */
int snap_format_dd(char *buf, size_t len, const char *cow, const char *origin,
		   uint64_t chunk_bytes, const struct snap_extent *x);

/*
 * Who holds a block device open exclusively: "dm-3 (vg-lv_snap)" style
 * names of its sysfs holders, comma separated; "" when none is listed
 * (a mount or another program's O_EXCL) or path is not a block device.
 */
void snap_device_holders(const char *path, char *buf, size_t len);

#endif
