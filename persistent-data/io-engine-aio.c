/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The libaio engine (Linux native AIO).
 *
 * A batch (at most IO_MAX_BATCH requests, larger ones are split) is handed
 * to the kernel with io_submit() and its completions collected with
 * io_getevents().  Completions that need more work (the rest of a short
 * transfer, an interrupted or refused transfer) are submitted again in
 * another round, until every request has its result.
 *
 * Native AIO is only asynchronous with O_DIRECT; without it io_submit()
 * does the transfer itself, which is slower but gives the same results.
 * The engine is not thread-safe: one context, one batch at a time.
 */
#include "io-engine.h"

#include <errno.h>
#include <libaio.h>
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
 * error (-EAGAIN, -EINTR) before we give up.
 */
#define AIO_RETRY_MAX 1000u

/*----------------------------------------------------------------*/

struct aio_slot {
	struct iocb cb;
	struct io_req *req;
	uint32_t done;		/* bytes transferred so far */
	unsigned retries;
	bool was_direct;	/* last submitted while the fd had O_DIRECT */
	bool in_flight;		/* submitted, completion not reaped yet */
};

struct aio_engine {
	struct io_engine e;
	io_context_t ctx;
	/*
	 * Set when the context itself failed (not a transfer): requests
	 * may still be in it, so it is never used again and every later
	 * request fails with -EIO.
	 */
	bool broken;

	struct aio_slot slots[IO_MAX_BATCH];
	struct aio_slot *todo[IO_MAX_BATCH];	/* to submit this round */
	struct aio_slot *again[IO_MAX_BATCH];	/* to submit next round */
	struct iocb *cbs[IO_MAX_BATCH];
	struct io_event events[IO_MAX_BATCH];
	unsigned nr_again;
};

static inline struct aio_engine *to_aio(struct io_engine *e)
{
	return container_of(e, struct aio_engine, e);
}

static bool transient(long r)
{
	return r == -EAGAIN || r == -EINTR;
}

/*
 * Accounts a completion of res bytes (or -errno) for slot s.
 * Returns true when the slot must be submitted again.
 */
static bool slot_complete(struct io_engine *e, struct aio_slot *s, long res)
{
	s->in_flight = false;
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

	if (transient(res) && ++s->retries <= AIO_RETRY_MAX)
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

	s->req->result = (int)res;
	return false;
}

static void slot_fail(struct aio_slot *s, int r)
{
	s->in_flight = false;
	s->req->result = r;
}

static void aio_prep(struct aio_engine *a, struct aio_slot *s, bool write)
{
	char *buf = (char *)s->req->buf + s->done;
	size_t len = MD_BLOCK_SIZE - s->done;
	long long off = (long long)((s->req->block << MD_BLOCK_SHIFT) + s->done);

	if (write)
		io_prep_pwrite(&s->cb, a->e.fd, buf, len, off);
	else
		io_prep_pread(&s->cb, a->e.fd, buf, len, off);
	s->cb.data = s;
	s->was_direct = a->e.direct;
}

static void aio_round_complete(struct aio_engine *a, struct aio_slot *s,
			       long res)
{
	if (slot_complete(&a->e, s, res))
		a->again[a->nr_again++] = s;
}

/*
 * One round: submit the nr slots of a->todo and reap every completion.
 * Slots that need another round end up in a->again.
 */
static void aio_round(struct aio_engine *a, bool write, unsigned nr)
{
	unsigned pos = 0, inflight = 0, tries = 0;

	a->nr_again = 0;
	if (a->broken) {
		for (unsigned i = 0; i < nr; i++)
			slot_fail(a->todo[i], -EIO);
		return;
	}

	for (unsigned i = 0; i < nr; i++) {
		aio_prep(a, a->todo[i], write);
		a->cbs[i] = &a->todo[i]->cb;
	}

	/*
	 * io_submit() takes iocbs in order and stops at the first it
	 * refuses; called with that one first, it returns its error, which
	 * belongs to that request alone.
	 */
	while (pos < nr) {
		int r = io_submit(a->ctx, (long)(nr - pos), a->cbs + pos);

		if (r > 0) {
			for (int i = 0; i < r; i++)
				a->todo[pos + (unsigned)i]->in_flight = true;
			pos += (unsigned)r;
			inflight += (unsigned)r;
			continue;
		}
		if ((r == 0 || transient(r)) && ++tries <= AIO_RETRY_MAX)
			continue;
		aio_round_complete(a, a->todo[pos++], r ? r : -EAGAIN);
	}

	tries = 0;
	while (inflight) {
		int k = io_getevents(a->ctx, 1, (long)inflight, a->events, NULL);

		if (k <= 0) {
			if ((k == 0 || transient(k)) && ++tries <= AIO_RETRY_MAX)
				continue;
			/*
			 * Cannot happen short of a kernel or libaio bug.
			 * The kernel may still own some buffers: never use
			 * this context again.
			 */
			a->broken = true;
			for (unsigned i = 0; i < nr; i++)
				if (a->todo[i]->in_flight)
					slot_fail(a->todo[i], -EIO);
			return;
		}
		for (int i = 0; i < k; i++) {
			struct aio_slot *s = a->events[i].data;

			/* res is the transfer's ssize_t result in a long */
			aio_round_complete(a, s, (long)a->events[i].res);
		}
		inflight -= (unsigned)k;
	}
}

static int first_error(const struct io_req *reqs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (reqs[i].result)
			return reqs[i].result;
	return 0;
}

static int aio_xfer(struct io_engine *e, struct io_req *reqs, unsigned n,
		    bool write)
{
	struct aio_engine *a = to_aio(e);

	for (unsigned base = 0; base < n; base += IO_MAX_BATCH) {
		unsigned chunk = n - base < IO_MAX_BATCH ? n - base : IO_MAX_BATCH;
		unsigned nr = 0;

		for (unsigned i = 0; i < chunk; i++) {
			struct io_req *r = reqs + base + i;
			struct aio_slot *s;

			r->result = 0;
			if (r->block >= e->nr_blocks) {
				r->result = -EINVAL;
				continue;
			}
			s = a->slots + nr;
			memset(s, 0, sizeof(*s));
			s->req = r;
			a->todo[nr++] = s;
		}

		while (nr) {
			aio_round(a, write, nr);
			nr = a->nr_again;
			memcpy(a->todo, a->again, nr * sizeof(*a->todo));
		}
	}
	return first_error(reqs, n);
}

static int aio_read_many(struct io_engine *e, struct io_req *reqs, unsigned n)
{
	if (n == 1)
		return io_engine_xfer_sync(e, reqs, n, false);	/* no gain from the ring */
	return aio_xfer(e, reqs, n, false);
}

static int aio_write_many(struct io_engine *e, struct io_req *reqs, unsigned n)
{
	if (n == 1)
		return io_engine_xfer_sync(e, reqs, n, true);	/* no gain from the ring */
	return aio_xfer(e, reqs, n, true);
}

/* Every write has completed before write_many() returned. */
static int aio_flush(struct io_engine *e)
{
	return fdatasync(e->fd) < 0 ? -errno : 0;
}

static void aio_destroy(struct io_engine *e)
{
	struct aio_engine *a = to_aio(e);

	io_destroy(a->ctx);
	close(e->fd);
	free(a);
}

static const struct io_engine_ops aio_ops = {
	.read_many = aio_read_many,
	.write_many = aio_write_many,
	.flush = aio_flush,
	.destroy = aio_destroy,
};

/*----------------------------------------------------------------*/

bool io_engine_aio_available(void)
{
	return true;
}

int io_engine_aio_create(const struct io_engine *base, struct io_engine **out,
			 struct pd_err *err)
{
	struct aio_engine *a = calloc(1, sizeof(*a));
	int r;

	if (!a)
		return pd_err_set(err, -ENOMEM, "out of memory");

	/*
	 * A kernel without AIO (ENOSYS), seccomp (EPERM), or the system
	 * wide fs.aio-max-nr exhausted (EAGAIN): all mean "use another
	 * engine".
	 */
	r = io_setup(IO_MAX_BATCH, &a->ctx);
	if (r < 0) {
		free(a);
		return pd_err_set(err, -ENOTSUP, "Linux native AIO is not usable: %s",
				  strerror(-r));
	}

	a->e = *base;
	a->e.ops = &aio_ops;
	a->e.name = "libaio";
	*out = &a->e;
	return 0;
}
