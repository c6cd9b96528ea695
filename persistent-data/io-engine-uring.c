/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The io_uring engine.
 *
 * A round (io-engine-async.h has the batching and retries) is queued on
 * the submission ring and handed to the kernel with one io_uring_enter()
 * that also waits for all of its completions.
 *
 * The engine is not thread-safe: one ring, one batch at a time.
 */
#include "io-engine-async.h"
#include "container-of.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>

struct uring_engine {
	struct io_async a;
	struct io_uring ring;
};

static inline struct uring_engine *to_uring(struct io_async *a)
{
	return container_of(a, struct uring_engine, a);
}

static bool transient(long r)
{
	return r == -EAGAIN || r == -EINTR || r == -ENOMEM;
}

static bool uring_prep(struct uring_engine *u, struct io_async_slot *s, bool write)
{
	/* The ring has IO_MAX_BATCH entries and is empty between rounds. */
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	uint64_t off;
	uint32_t len;
	char *buf;

	if (!sqe)
		return false;
	io_async_slot_span(s, &buf, &len, &off);
	if (write)
		io_uring_prep_write(sqe, u->a.e.fd, buf, len, off);
	else
		io_uring_prep_read(sqe, u->a.e.fd, buf, len, off);
	io_uring_sqe_set_data(sqe, s);
	s->was_direct = u->a.e.direct;
	s->in_flight = true;
	return true;
}

/* One round (io-engine-async.h). */
static void uring_round(struct io_async *a, bool write, unsigned nr)
{
	struct uring_engine *u = to_uring(a);
	unsigned sent = 0, reaped, tries = 0, left;
	int r = 0;

	for (unsigned i = 0; i < nr; i++) {
		struct io_async_slot *s = a->todo[i];

		if (a->broken || !uring_prep(u, s, write)) {
			a->broken = true;
			io_async_fail(s, -EIO);
			continue;
		}
		/* keep todo[] in submission-queue order */
		a->todo[sent++] = s;
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
		    ++tries <= IO_ASYNC_RETRY_MAX)
			continue;

		/* The ring refuses work: fail what it did not take. */
		a->broken = true;
		for (unsigned i = sent - left; i < sent; i++)
			io_async_fail(a->todo[i], r < 0 ? r : -EIO);
		sent -= left;
		break;
	}

	tries = 0;
	for (reaped = 0; reaped < sent; reaped++) {
		struct io_uring_cqe *cqe;
		struct io_async_slot *s;
		int res;

		r = io_uring_wait_cqe(&u->ring, &cqe);
		if (r < 0) {
			if (transient(r) && ++tries <= IO_ASYNC_RETRY_MAX) {
				reaped--;
				continue;
			}
			io_async_break(a, sent);	/* a liburing or kernel bug */
			return;
		}
		s = io_uring_cqe_get_data(cqe);
		res = cqe->res;
		io_uring_cqe_seen(&u->ring, cqe);

		io_async_complete(a, s, res);
	}
}

static void uring_teardown(struct io_async *a)
{
	io_uring_queue_exit(&to_uring(a)->ring);
}

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

	*out = io_async_init(&u->a, base, "io_uring", uring_round, transient, uring_teardown);
	return 0;
}
