/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_IO_ENGINE_FAULT_H
#define PD_IO_ENGINE_FAULT_H

/*
 * A fault-injecting engine over another engine, for crash-safety tests:
 * it simulates losing power after a given number of block writes.
 *
 * Writes are counted one block at a time, in the order the requests of
 * each batch are given (a batch may straddle the cut).  The first
 * fail_after_writes writes reach the inner engine; the write that would
 * be number fail_after_writes + 1 (index fail_after_writes, from 0) is
 * "the cut", and it and every later write and flush do not reach the
 * device.  Reads always go to the inner engine, so after a silent cut
 * they may return what the device held before (the process goes on as if
 * its writes had landed; a real power cut would have stopped it).
 *
 * Behaviour at and after the cut (flags, io_engine_fault_set_flags()):
 *   default (0)          - dropped silently: writes and flushes report
 *                          success (a power cut the process does not see);
 *   IO_FAULT_FAIL        - writes and flushes fail with -EIO (an error
 *                          path: the caller sees the failure);
 *   IO_FAULT_TEAR        - the cut write itself lands partly: only its
 *                          first IO_FAULT_TEAR_BYTES bytes reach the
 *                          device, the rest of the block keeps its old
 *                          contents (a torn 4 KiB write; the first sector
 *                          made it);
 *   IO_FAULT_REORDER     - at the cut, the writes made since the last
 *                          flush that went through are undone, except
 *                          the most recent one: the device's volatile
 *                          cache wrote that one first and lost the rest.
 *                          Costs a read of each block before it is
 *                          written, and a copy of it until the next flush;
 *   IO_FAULT_OWN_INNER   - destroying this engine destroys the inner one
 *                          (by default the inner engine stays the
 *                          caller's).
 * Without the cut (fewer writes than the limit) the engine is a plain
 * pass-through that counts.  UINT64_MAX as the limit: never cut.
 *
 * The wrapper copies the inner engine's description (fd, sizes, writable)
 * and calls nothing but the inner engine's ops, so it can wrap any
 * implementation, another fault engine included.
 */

#include "io-engine.h"

#include <stdbool.h>
#include <stdint.h>

#define IO_FAULT_FAIL		0x1u
#define IO_FAULT_TEAR		0x2u
#define IO_FAULT_REORDER	0x4u
#define IO_FAULT_OWN_INNER	0x8u

#define IO_FAULT_TEAR_BYTES	512u

struct io_fault_stats {
	uint64_t writes_seen;		/* block writes asked for */
	uint64_t writes_done;		/* reached the device in full */
	uint64_t writes_dropped;	/* at or after the cut, reported as done */
	uint64_t writes_failed;		/* at or after the cut, failed with -EIO */
	uint64_t writes_torn;		/* 0 or 1 */
	uint64_t writes_undone;		/* lost at the cut (IO_FAULT_REORDER) */
	uint64_t flushes_seen;
	uint64_t flushes_done;		/* reached the device */
	bool cut;			/* the limit has been reached */
	uint64_t cut_block;		/* block of the cut write (if cut) */
};

/*
 * A fault engine over inner, cutting after fail_after_writes writes,
 * flags 0 (silent drop, inner not owned).  -ENOMEM, or -EINVAL for a NULL
 * inner.
 */
int io_engine_fault_create(struct io_engine *inner, uint64_t fail_after_writes,
			   struct io_engine **out);

/*
 * IO_FAULT_* flags.  Takes effect for the writes that follow; set them
 * before the first write (IO_FAULT_REORDER needs to see every write since
 * the last flush).  -EINVAL for an unknown flag or an engine that is not
 * a fault engine.
 */
int io_engine_fault_set_flags(struct io_engine *e, unsigned flags);

/*
 * Re-arms the engine: a new limit counted from the writes seen so far
 * (fail_after_writes more writes go through), counters kept.  -EINVAL if
 * not a fault engine or already cut.
 */
int io_engine_fault_set_limit(struct io_engine *e, uint64_t fail_after_writes);

/* Counters so far.  -EINVAL if e is not a fault engine. */
int io_engine_fault_get_stats(struct io_engine *e, struct io_fault_stats *st);

/* Is e a fault engine? */
bool io_engine_is_fault(const struct io_engine *e);

#endif
