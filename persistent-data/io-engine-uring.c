/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The io_uring engine.
 *
 * A batch (at most IO_MAX_BATCH requests, larger ones are split) is queued
 * on the submission ring and handed to the kernel with one io_uring_enter()
 * that also waits for all of its completions.  Completions that need more
 * work (the rest of a short transfer, an interrupted or refused transfer)
 * are queued again for another round, until every request has its result.
 *
 * The engine is not thread-safe: one ring, one batch at a time.
 */
#include "io-engine.h"

#include <errno.h>
#include <liburing.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))
#endif

/*
 * How often one request (or one submission) may fail with a transient
 * error (-EAGAIN, -EINTR, -ENOMEM) before we give up; a bound rather than
 * a loop forever against a kernel that keeps refusing.
 */
#define URING_RETRY_MAX 1000u

/*----------------------------------------------------------------*/

struct uring_slot {
	struct io_req *req;
	uint32_t done;		/* bytes transferred so far */
	unsigned retries;
	bool was_direct;	/* last submitted while the fd had O_DIRECT */
	bool in_flight;		/* submitted, completion not reaped yet */
};

struct uring_engine {
	struct io_engine e;
	struct io_uring ring;
	/*
	 * Set when the ring itself failed (not a transfer): requests may
	 * still sit in it, so it is never used again and every later
	 * request fails with -EIO.
	 */
	bool broken;

	struct uring_slot slots[IO_MAX_BATCH];
	struct uring_slot *todo[IO_MAX_BATCH];	/* to submit this round */
	struct uring_slot *again[IO_MAX_BATCH];	/* to submit next round */
	unsigned nr_again;
};

static inline struct uring_engine *to_uring(struct io_engine *e)
{
	return container_of(e, struct uring_engine, e);
}

static bool transient(int r)
{
	return r == -EAGAIN || r == -EINTR || r == -ENOMEM;
}

/*
 * Accounts a completion of res bytes (or -errno) for slot s.
 * Returns true when the slot must be submitted again.
 */
static bool slot_complete(struct io_engine *e, struct uring_slot *s, int res)
{
	if (res > 0) {
		s->done += (uint32_t)res;
		if (s->done >= MD_BLOCK_SIZE) {
			s->req->result = 0;
			return false;
		}
		return true;	/* short transfer: ask for the rest */
	}

	/* End of file inside a block below nr_blocks: the file shrank. */
	if (res == 0) {
		s->req->result = -EIO;
		return false;
	}

	if (transient(res) && ++s->retries <= URING_RETRY_MAX)
		return true;

	/*
	 * The file system accepted O_DIRECT at open but refuses the
	 * transfer: go on without it.  Another request of the batch may
	 * have dropped it already; either way the retry is buffered, so a
	 * second -EINVAL is final.
	 */
	if (res == -EINVAL && s->was_direct &&
	    (!e->direct || !io_engine_drop_direct(e)))
		return true;

	s->req->result = res;
	return false;
}

static void slot_fail(struct uring_slot *s, int r)
{
	s->in_flight = false;
	s->req->result = r;
}

static bool uring_prep(struct uring_engine *u, struct uring_slot *s, bool write)
{
	/* The ring has IO_MAX_BATCH entries and is empty between rounds. */
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	char *buf = (char *)s->req->buf + s->done;
	unsigned len = MD_BLOCK_SIZE - s->done;
	uint64_t off = (s->req->block << MD_BLOCK_SHIFT) + s->done;

	if (!sqe)
		return false;
	if (write)
		io_uring_prep_write(sqe, u->e.fd, buf, len, off);
	else
		io_uring_prep_read(sqe, u->e.fd, buf, len, off);
	io_uring_sqe_set_data(sqe, s);
	s->was_direct = u->e.direct;
	s->in_flight = true;
	return true;
}

/*
 * One round: submit the nr slots of u->todo and reap every completion.
 * Slots that need another round end up in u->again.
 */
static void uring_round(struct uring_engine *u, bool write, unsigned nr)
{
	unsigned sent = 0, reaped, tries = 0, left;
	int r = 0;

	u->nr_again = 0;
	for (unsigned i = 0; i < nr; i++) {
		struct uring_slot *s = u->todo[i];

		if (u->broken || !uring_prep(u, s, write)) {
			u->broken = true;
			slot_fail(s, -EIO);
			continue;
		}
		/* keep todo[] in submission-queue order */
		u->todo[sent++] = s;
	}

	/*
	 * Submit and wait for all completions in one call.  The kernel
	 * takes SQEs in order and stops at one it cannot take (leaving the
	 * rest queued, and then skipping the wait), so loop until none is
	 * left.
	 */
	while ((left = io_uring_sq_ready(&u->ring)) > 0) {
		r = io_uring_submit_and_wait(&u->ring, sent);
		if ((r >= 0 || transient(r) || r == -EBUSY) &&
		    ++tries <= URING_RETRY_MAX)
			continue;

		/* The ring refuses work: fail what it did not take. */
		u->broken = true;
		for (unsigned i = sent - left; i < sent; i++)
			slot_fail(u->todo[i], r < 0 ? r : -EIO);
		sent -= left;
		break;
	}

	tries = 0;
	for (reaped = 0; reaped < sent; reaped++) {
		struct io_uring_cqe *cqe;
		struct uring_slot *s;
		int res;

		r = io_uring_wait_cqe(&u->ring, &cqe);
		if (r < 0) {
			if (transient(r) && ++tries <= URING_RETRY_MAX) {
				reaped--;
				continue;
			}
			/*
			 * Cannot happen short of a kernel or liburing bug.
			 * The kernel may still own some buffers: never use
			 * this ring again.
			 */
			u->broken = true;
			for (unsigned i = 0; i < sent; i++)
				if (u->todo[i]->in_flight)
					slot_fail(u->todo[i], -EIO);
			return;
		}
		s = io_uring_cqe_get_data(cqe);
		res = cqe->res;
		io_uring_cqe_seen(&u->ring, cqe);

		s->in_flight = false;
		if (slot_complete(&u->e, s, res))
			u->again[u->nr_again++] = s;
	}
}

static int first_error(const struct io_req *reqs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (reqs[i].result)
			return reqs[i].result;
	return 0;
}

static int uring_xfer(struct io_engine *e, struct io_req *reqs, unsigned n,
		      bool write)
{
	struct uring_engine *u = to_uring(e);

	for (unsigned base = 0; base < n; base += IO_MAX_BATCH) {
		unsigned chunk = n - base < IO_MAX_BATCH ? n - base : IO_MAX_BATCH;
		unsigned nr = 0;

		for (unsigned i = 0; i < chunk; i++) {
			struct io_req *r = reqs + base + i;
			struct uring_slot *s;

			r->result = 0;
			if (r->block >= e->nr_blocks) {
				r->result = -EINVAL;
				continue;
			}
			s = u->slots + nr;
			memset(s, 0, sizeof(*s));
			s->req = r;
			u->todo[nr++] = s;
		}

		while (nr) {
			uring_round(u, write, nr);
			nr = u->nr_again;
			memcpy(u->todo, u->again, nr * sizeof(*u->todo));
		}
	}
	return first_error(reqs, n);
}

static int uring_read_many(struct io_engine *e, struct io_req *reqs, unsigned n)
{
	if (n == 1)
		return io_engine_xfer_sync(e, reqs, n, false);	/* no gain from the ring */
	return uring_xfer(e, reqs, n, false);
}

static int uring_write_many(struct io_engine *e, struct io_req *reqs, unsigned n)
{
	if (n == 1)
		return io_engine_xfer_sync(e, reqs, n, true);	/* no gain from the ring */
	return uring_xfer(e, reqs, n, true);
}

/*
 * Every write of ours has completed before write_many() returned, so a
 * plain fdatasync() covers them; no need to go through the ring.
 */
static int uring_flush(struct io_engine *e)
{
	return fdatasync(e->fd) < 0 ? -errno : 0;
}

static void uring_destroy(struct io_engine *e)
{
	struct uring_engine *u = to_uring(e);

	io_uring_queue_exit(&u->ring);
	close(e->fd);
	free(u);
}

static const struct io_engine_ops uring_ops = {
	.read_many = uring_read_many,
	.write_many = uring_write_many,
	.flush = uring_flush,
	.destroy = uring_destroy,
};

/*----------------------------------------------------------------*/

bool io_engine_uring_available(void)
{
	return true;
}

/* IORING_OP_READ/WRITE arrived in Linux 5.6, after io_uring itself. */
static bool ring_has_read_write(struct io_uring *ring)
{
	struct io_uring_probe *p = io_uring_get_probe_ring(ring);
	bool ok;

	if (!p)
		return false;
	ok = io_uring_opcode_supported(p, IORING_OP_READ) &&
	     io_uring_opcode_supported(p, IORING_OP_WRITE);
	io_uring_free_probe(p);
	return ok;
}

int io_engine_uring_create(const struct io_engine *base, struct io_engine **out,
			   struct pd_err *err)
{
	struct uring_engine *u = calloc(1, sizeof(*u));
	int r;

	if (!u)
		return pd_err_set(err, -ENOMEM, "out of memory");

	/*
	 * A kernel without io_uring (ENOSYS), one where it is disabled or
	 * filtered by seccomp (EPERM), or a small RLIMIT_MEMLOCK on older
	 * kernels (ENOMEM): all mean "use another engine".
	 */
	r = io_uring_queue_init(IO_MAX_BATCH, &u->ring, 0);
	if (r < 0) {
		free(u);
		return pd_err_set(err, -ENOTSUP, "io_uring is not usable: %s",
				  strerror(-r));
	}
	if (!ring_has_read_write(&u->ring)) {
		io_uring_queue_exit(&u->ring);
		free(u);
		return pd_err_set(err, -ENOTSUP,
				  "io_uring is not usable: the kernel lacks IORING_OP_READ/WRITE (Linux 5.6)");
	}

	u->e = *base;
	u->e.ops = &uring_ops;
	u->e.name = "io_uring";
	*out = &u->e;
	return 0;
}
