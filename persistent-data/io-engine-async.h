/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_IO_ENGINE_ASYNC_H
#define PD_IO_ENGINE_ASYNC_H

/*
 * What the async engines (io_uring, libaio) share: batching and retries.
 *
 * A batch (at most IO_MAX_BATCH requests, larger ones are split) goes to
 * the engine's round() as slots; the round submits them and reaps every
 * completion through io_async_complete().  Completions that need more
 * work (the rest of a short transfer, an interrupted or refused transfer)
 * are handed to another round, until every request has its result.  A
 * single request is done synchronously: there is nothing to overlap.
 *
 * Not thread-safe: one batch at a time.
 */

#include "io-engine.h"

#include <stdbool.h>
#include <stdint.h>

/*
 * How often one request (or one submission) may fail with a transient
 * error before we give up; a bound rather than a loop forever against a
 * kernel that keeps refusing.
 */
#define IO_ASYNC_RETRY_MAX 1000u

struct io_async_slot {
	struct io_req *req;
	uint32_t done;		/* bytes transferred so far */
	unsigned retries;
	bool was_direct;	/* last submitted while the fd had O_DIRECT */
	bool in_flight;		/* submitted, completion not reaped yet */
};

/* The first member of an async engine's struct (destroy frees it). */
struct io_async {
	struct io_engine e;
	/*
	 * One round: submit the nr slots of todo[] and reap every
	 * completion (io_async_complete), or fail them (io_async_fail).
	 */
	void (*round)(struct io_async *a, bool write, unsigned nr);
	/* Errors worth another try (-EAGAIN, -EINTR, ...). */
	bool (*transient)(long r);
	/* Frees the ring or context (the fd and the engine are freed after). */
	void (*teardown)(struct io_async *a);
	/*
	 * Set when the ring or context itself failed (not a transfer):
	 * requests may still be in it, so it is never used again and every
	 * later request fails with -EIO.
	 */
	bool broken;

	struct io_async_slot slots[IO_MAX_BATCH];
	struct io_async_slot *todo[IO_MAX_BATCH];	/* to submit this round */
	struct io_async_slot *again[IO_MAX_BATCH];	/* to submit next round */
	unsigned nr_again;
};

/* Where the next transfer of slot s starts: buffer, length, file offset. */
static inline void io_async_slot_span(const struct io_async_slot *s, char **buf,
				      uint32_t *len, uint64_t *off)
{
	*buf = (char *)s->req->buf + s->done;
	*len = io_req_bytes(s->req) - s->done;
	*off = (s->req->block << MD_BLOCK_SHIFT) + s->done;
}

/*
 * A completion of res bytes (or -errno) for slot s: the request's result,
 * or s queued for the next round.
 */
void io_async_complete(struct io_async *a, struct io_async_slot *s, long res);

/* Slot s ends with error r. */
void io_async_fail(struct io_async_slot *s, int r);

/*
 * The ring or context failed while the first n slots of todo[] were
 * submitted (short of a kernel or library bug this cannot happen).  The
 * kernel may still own some buffers: the engine is broken for good, and
 * the slots still in flight fail with -EIO.
 */
void io_async_break(struct io_async *a, unsigned n);

/*
 * Fills in a's engine: a copy of base (the open descriptor), name, the
 * engine's three functions and the ops every async engine shares (flush
 * is a plain fdatasync(), as every write has completed before
 * write_many() returned; destroy calls teardown, closes the fd and frees
 * the engine).  Returns &a->e.
 */
struct io_engine *io_async_init(struct io_async *a, const struct io_engine *base,
				const char *name,
				void (*round)(struct io_async *a, bool write, unsigned nr),
				bool (*transient)(long r),
				void (*teardown)(struct io_async *a));

#endif
