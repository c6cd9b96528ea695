/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "io-engine-async.h"
#include "container-of.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void io_async_fail(struct io_async_slot *s, int r)
{
	s->in_flight = false;
	s->req->result = r;
}

void io_async_break(struct io_async *a, unsigned n)
{
	a->broken = true;
	for (unsigned i = 0; i < n; i++)
		if (a->todo[i]->in_flight)
			io_async_fail(a->todo[i], -EIO);
}

/* Does slot s need another round after a completion of res? */
static bool needs_more(struct io_async *a, struct io_async_slot *s, long res)
{
	if (res > 0) {
		s->done += (uint32_t)res;
		if (s->done >= io_req_bytes(s->req)) {
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

	if (a->transient(res) && ++s->retries <= IO_ASYNC_RETRY_MAX)
		return true;

	/*
	 * The file system accepted O_DIRECT at open but refuses the
	 * transfer: go on without it.  Another request of the batch may
	 * have dropped it already; either way the retry is buffered, so a
	 * second -EINVAL is final.
	 */
	if (res == -EINVAL && s->was_direct &&
	    (!a->e.direct || !io_engine_drop_direct(&a->e)))
		return true;

	s->req->result = (int)res;
	return false;
}

void io_async_complete(struct io_async *a, struct io_async_slot *s, long res)
{
	s->in_flight = false;
	if (needs_more(a, s, res))
		a->again[a->nr_again++] = s;
}

static int first_error(const struct io_req *reqs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (reqs[i].result)
			return reqs[i].result;
	return 0;
}

static int xfer(struct io_engine *e, struct io_req *reqs, unsigned n, bool write)
{
	struct io_async *a = container_of(e, struct io_async, e);

	if (n == 1)
		return io_engine_xfer_sync(e, reqs, n, write);	/* no gain from the ring */
	for (unsigned base = 0; base < n; base += IO_MAX_BATCH) {
		unsigned chunk = n - base < IO_MAX_BATCH ? n - base : IO_MAX_BATCH;
		unsigned nr = 0;

		for (unsigned i = 0; i < chunk; i++) {
			struct io_req *r = reqs + base + i;
			struct io_async_slot *s;

			r->result = 0;
			if (!io_req_fits(r, e->nr_blocks)) {
				r->result = -EINVAL;
				continue;
			}
			s = a->slots + nr;
			memset(s, 0, sizeof(*s));
			s->req = r;
			a->todo[nr++] = s;
		}

		while (nr) {
			a->nr_again = 0;
			a->round(a, write, nr);
			nr = a->nr_again;
			memcpy(a->todo, a->again, nr * sizeof(*a->todo));
		}
	}
	return first_error(reqs, n);
}

static int async_read_many(struct io_engine *e, struct io_req *reqs, unsigned n)
{
	return xfer(e, reqs, n, false);
}

static int async_write_many(struct io_engine *e, struct io_req *reqs, unsigned n)
{
	return xfer(e, reqs, n, true);
}

static int async_flush(struct io_engine *e)
{
	return fdatasync(e->fd) < 0 ? -errno : 0;
}

static void async_destroy(struct io_engine *e)
{
	struct io_async *a = container_of(e, struct io_async, e);

	a->teardown(a);
	close(e->fd);
	free(a);
}

static const struct io_engine_ops io_async_ops = {
	.read_many = async_read_many,
	.write_many = async_write_many,
	.flush = async_flush,
	.destroy = async_destroy,
};

struct io_engine *io_async_init(struct io_async *a, const struct io_engine *base,
				const char *name,
				void (*round)(struct io_async *a, bool write, unsigned nr),
				bool (*transient)(long r),
				void (*teardown)(struct io_async *a))
{
	a->e = *base;
	a->e.ops = &io_async_ops;
	a->e.name = name;
	a->round = round;
	a->transient = transient;
	a->teardown = teardown;
	return &a->e;
}
