/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_IO_ENGINE_OVERLAY_H
#define PD_IO_ENGINE_OVERLAY_H

/*
 * A copy-on-write overlay of two engines, for writing a changed copy of
 * metadata without copying all of it first (thin_merge to a new output):
 * a block reads from `lower` (the input, never written) until it has been
 * written through the overlay, then from `upper` (the output); writes go
 * to `upper`.  Blocks the change frees are then never copied at all.
 *
 * Block 0 (the superblock) is held in memory when written, so that upper
 * holds nothing that passes for metadata before it is complete:
 * io_overlay_finish() copies from lower every block the caller still
 * needs that was never written, flushes upper, writes block 0 and flushes
 * again.  Without finish, upper's block 0 is never written.
 *
 * The overlay has upper's size; reads past lower's end fail (-EINVAL) as
 * reads past any engine's end do.  It owns neither engine: destroy it
 * before them.  Memory: one bit per block of upper, and one block (finish
 * borrows IO_MAX_BATCH more while it copies).
 */

#include "count-map.h"
#include "io-engine.h"

int io_overlay_create(struct io_engine *lower, struct io_engine *upper,
		      struct io_engine **out, struct pd_err *err);

/*
 * Completes upper: every block b < nr with a count in `needed` that was
 * not written through the overlay is copied from lower (block 0 aside),
 * then flush, block 0, flush.  progress (may be NULL) is called with the
 * number of blocks copied so far.  A needed block that lower cannot give
 * (past its end, I/O error) fails the finish: upper's block 0 is then
 * never written.
 */
int io_overlay_finish(struct io_engine *overlay, const struct count_map *needed,
		      void (*progress)(void *ctx, uint64_t done), void *ctx,
		      struct pd_err *err);

/* Blocks written through the overlay so far (block 0 included). */
uint64_t io_overlay_nr_written(struct io_engine *overlay);

#endif
