/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"
#include "data-copy.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_LIBURING
#include <liburing.h>
#endif

struct slot {
	void *buf;
	uint64_t src, dst, tag;
	bool writing;
	bool busy;
};

struct data_copier {
	int src_fd, dst_fd;
	uint64_t src_off, dst_off;
	uint32_t bytes;
	unsigned depth;
	struct slot *slots;
	unsigned in_flight;
	data_copy_done_fn done;
	void *ctx;
#ifdef HAVE_LIBURING
	bool uring;
	struct io_uring ring;
#endif
};

int data_copier_create(int src_fd, uint64_t src_offset, int dst_fd, uint64_t dst_offset,
		       uint32_t block_bytes, unsigned depth, data_copy_done_fn done, void *ctx,
		       struct data_copier **out, struct pd_err *err)
{
	struct data_copier *c = calloc(1, sizeof(*c));

	if (!c)
		return pd_err_set(err, -ENOMEM, "out of memory");
	if (!depth)
		depth = 1;
	if (depth > 256)
		depth = 256;
	c->src_fd = src_fd;
	c->dst_fd = dst_fd;
	c->src_off = src_offset;
	c->dst_off = dst_offset;
	c->bytes = block_bytes;
	c->depth = depth;
	c->done = done;
	c->ctx = ctx;
	c->slots = calloc(depth, sizeof(*c->slots));
	if (!c->slots)
		goto nomem;
	for (unsigned i = 0; i < depth; i++)
		if (posix_memalign(&c->slots[i].buf, 4096, block_bytes))
			goto nomem;
#ifdef HAVE_LIBURING
	c->uring = !io_uring_queue_init(depth * 2 < 8 ? 8 : depth * 2, &c->ring, 0);
#endif
	*out = c;
	return 0;
nomem:
	data_copier_destroy(c);
	return pd_err_set(err, -ENOMEM, "out of memory for %u buffers of %u bytes", depth,
			  block_bytes);
}

const char *data_copier_kind(const struct data_copier *c)
{
#ifdef HAVE_LIBURING
	if (c->uring)
		return "io_uring";
#endif
	(void)c;
	return "sync";
}

static int copy_sync(struct data_copier *c, struct slot *s)
{
	ssize_t n = pread(c->src_fd, s->buf, c->bytes, (off_t)(c->src_off + s->src * c->bytes));

	if (n != (ssize_t)c->bytes)
		return n < 0 ? -errno : -EIO;
	n = pwrite(c->dst_fd, s->buf, c->bytes, (off_t)(c->dst_off + s->dst * c->bytes));
	if (n != (ssize_t)c->bytes)
		return n < 0 ? -errno : -EIO;
	return 0;
}

#ifdef HAVE_LIBURING
static int submit(struct data_copier *c, struct slot *s)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring);

	if (!sqe)
		return -EAGAIN;
	if (s->writing)
		io_uring_prep_write(sqe, c->dst_fd, s->buf, c->bytes,
				    c->dst_off + s->dst * c->bytes);
	else
		io_uring_prep_read(sqe, c->src_fd, s->buf, c->bytes,
				   c->src_off + s->src * c->bytes);
	io_uring_sqe_set_data(sqe, s);
	return io_uring_submit(&c->ring) < 0 ? -EIO : 0;
}

static void finish(struct data_copier *c, struct slot *s, int result)
{
	s->busy = false;
	c->in_flight--;
	c->done(c->ctx, s->tag, result);
}

/* Waits for one completion and moves its copy on. */
static int reap_one(struct data_copier *c)
{
	struct io_uring_cqe *cqe;
	struct slot *s;
	int r, res;

	r = io_uring_wait_cqe(&c->ring, &cqe);
	if (r)
		return r;
	s = io_uring_cqe_get_data(cqe);
	res = cqe->res;
	io_uring_cqe_seen(&c->ring, cqe);
	if (res != (int)c->bytes) {
		finish(c, s, res < 0 ? res : -EIO);
		return 0;
	}
	if (s->writing) {
		finish(c, s, 0);
		return 0;
	}
	s->writing = true;
	r = submit(c, s);
	if (r)
		finish(c, s, r);
	return 0;
}
#endif

int data_copier_copy(struct data_copier *c, uint64_t src_block, uint64_t dst_block,
		     uint64_t tag)
{
	struct slot *s = NULL;

#ifdef HAVE_LIBURING
	if (c->uring) {
		int r;

		while (c->in_flight == c->depth)
			if ((r = reap_one(c)))
				return r;
		for (unsigned i = 0; i < c->depth && !s; i++)
			if (!c->slots[i].busy)
				s = &c->slots[i];
		s->busy = true;
		s->writing = false;
		s->src = src_block;
		s->dst = dst_block;
		s->tag = tag;
		c->in_flight++;
		r = submit(c, s);
		if (r)
			finish(c, s, r);
		return 0;
	}
#endif
	s = &c->slots[0];
	s->src = src_block;
	s->dst = dst_block;
	c->done(c->ctx, tag, copy_sync(c, s));
	return 0;
}

int data_copier_drain(struct data_copier *c)
{
#ifdef HAVE_LIBURING
	while (c->uring && c->in_flight) {
		int r = reap_one(c);

		if (r)
			return r;
	}
#endif
	(void)c;
	return 0;
}

void data_copier_destroy(struct data_copier *c)
{
	if (!c)
		return;
	if (c->slots) {
		data_copier_drain(c);
		for (unsigned i = 0; i < c->depth; i++)
			free(c->slots[i].buf);
	}
#ifdef HAVE_LIBURING
	if (c->uring)
		io_uring_queue_exit(&c->ring);
#endif
	free(c->slots);
	free(c);
}
