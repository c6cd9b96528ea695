/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The libaio engine (Linux native AIO).
 *
 * A round (io-engine-async.h has the batching and retries) is handed to
 * the kernel with io_submit() and its completions collected with
 * io_getevents().
 *
 * Native AIO is only asynchronous with O_DIRECT; without it io_submit()
 * does the transfer itself, which is slower but gives the same results.
 * The engine is not thread-safe: one context, one batch at a time.
 */
#include "io-engine-async.h"
#include "container-of.h"

#include <errno.h>
#include <libaio.h>
#include <stdlib.h>
#include <string.h>

struct aio_engine {
	struct io_async a;
	io_context_t ctx;
	struct iocb iocbs[IO_MAX_BATCH];	/* iocbs[i] belongs to slots[i] */
	struct iocb *cbs[IO_MAX_BATCH];
	struct io_event events[IO_MAX_BATCH];
};

static inline struct aio_engine *to_aio(struct io_async *a)
{
	return container_of(a, struct aio_engine, a);
}

static bool transient(long r)
{
	return r == -EAGAIN || r == -EINTR;
}

static struct iocb *aio_prep(struct aio_engine *ae, struct io_async_slot *s, bool write)
{
	struct iocb *cb = ae->iocbs + (s - ae->a.slots);
	uint64_t off;
	uint32_t len;
	char *buf;

	io_async_slot_span(s, &buf, &len, &off);
	if (write)
		io_prep_pwrite(cb, ae->a.e.fd, buf, len, (long long)off);
	else
		io_prep_pread(cb, ae->a.e.fd, buf, len, (long long)off);
	cb->data = s;
	s->was_direct = ae->a.e.direct;
	return cb;
}

/* One round (io-engine-async.h). */
static void aio_round(struct io_async *a, bool write, unsigned nr)
{
	struct aio_engine *ae = to_aio(a);
	unsigned pos = 0, inflight = 0, tries = 0;

	if (a->broken) {
		for (unsigned i = 0; i < nr; i++)
			io_async_fail(a->todo[i], -EIO);
		return;
	}

	for (unsigned i = 0; i < nr; i++)
		ae->cbs[i] = aio_prep(ae, a->todo[i], write);

	/*
	 * io_submit() takes iocbs in order and stops at the first it
	 * refuses; called with that one first, it returns its error, which
	 * belongs to that request alone.
	 */
	while (pos < nr) {
		int r = io_submit(ae->ctx, (long)(nr - pos), ae->cbs + pos);

		if (r > 0) {
			for (int i = 0; i < r; i++)
				a->todo[pos + (unsigned)i]->in_flight = true;
			pos += (unsigned)r;
			inflight += (unsigned)r;
			continue;
		}
		if ((r == 0 || transient(r)) && ++tries <= IO_ASYNC_RETRY_MAX)
			continue;
		io_async_complete(a, a->todo[pos++], r ? r : -EAGAIN);
	}

	tries = 0;
	while (inflight) {
		int k = io_getevents(ae->ctx, 1, (long)inflight, ae->events, NULL);

		if (k <= 0) {
			if ((k == 0 || transient(k)) && ++tries <= IO_ASYNC_RETRY_MAX)
				continue;
			io_async_break(a, nr);	/* a libaio or kernel bug */
			return;
		}
		for (int i = 0; i < k; i++) {
			struct io_async_slot *s = ae->events[i].data;

			/* res is the transfer's ssize_t result in a long */
			io_async_complete(a, s, (long)ae->events[i].res);
		}
		inflight -= (unsigned)k;
	}
}

static void aio_teardown(struct io_async *a)
{
	io_destroy(to_aio(a)->ctx);
}

/*----------------------------------------------------------------*/

bool io_engine_aio_available(void)
{
	return true;
}

int io_engine_aio_create(const struct io_engine *base, struct io_engine **out,
			 struct pd_err *err)
{
	struct aio_engine *ae = calloc(1, sizeof(*ae));
	int r;

	if (!ae)
		return pd_err_set(err, -ENOMEM, "out of memory");

	/*
	 * A kernel without AIO (ENOSYS), seccomp (EPERM), or the system
	 * wide fs.aio-max-nr exhausted (EAGAIN): all mean "use another
	 * engine".
	 */
	r = io_setup(IO_MAX_BATCH, &ae->ctx);
	if (r < 0) {
		free(ae);
		return pd_err_set(err, -ENOTSUP, "Linux native AIO is not usable: %s",
				  strerror(-r));
	}

	*out = io_async_init(&ae->a, base, "libaio", aio_round, transient, aio_teardown);
	return 0;
}
