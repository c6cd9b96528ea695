/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "io-engine-overlay.h"
#include "container-of.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct overlay_engine {
	struct io_engine e;
	struct io_engine *lower, *upper;
	uint64_t *written;		/* a bit per block of upper */
	uint64_t nr_written;
	void *sb;			/* block 0, held back */
	bool sb_held;
};

#define to_overlay(x) container_of(x, struct overlay_engine, e)

static const struct io_engine_ops overlay_ops;

static bool is_written(const struct overlay_engine *o, uint64_t b)
{
	return o->written[b / 64] >> (b % 64) & 1;
}

static void mark_written(struct overlay_engine *o, uint64_t b)
{
	if (!is_written(o, b)) {
		o->written[b / 64] |= 1ull << (b % 64);
		o->nr_written++;
	}
}

/* Each request from where its block lives now, in at most two batches. */
static int overlay_read_many(struct io_engine *e, struct io_req *reqs, unsigned n)
{
	struct overlay_engine *o = to_overlay(e);
	struct io_req lo[IO_MAX_BATCH], up[IO_MAX_BATCH];
	unsigned idx_lo[IO_MAX_BATCH], idx_up[IO_MAX_BATCH];
	int r = 0;

	for (unsigned done = 0; done < n;) {
		unsigned batch = n - done < IO_MAX_BATCH ? n - done : IO_MAX_BATCH;
		unsigned nl = 0, nu = 0;

		for (unsigned i = done; i < done + batch; i++) {
			struct io_req *q = reqs + i;

			q->result = 0;
			if (q->block >= e->nr_blocks || io_req_blocks(q) > 1) {
				q->result = -EINVAL;
			} else if (q->block == 0 && o->sb_held) {
				memcpy(q->buf, o->sb, MD_BLOCK_SIZE);
			} else if (is_written(o, q->block)) {
				idx_up[nu] = i;
				up[nu++] = *q;
			} else {
				idx_lo[nl] = i;
				lo[nl++] = *q;
			}
		}
		if (nl)
			io_read_many(o->lower, lo, nl);
		if (nu)
			io_read_many(o->upper, up, nu);
		for (unsigned k = 0; k < nl; k++)
			reqs[idx_lo[k]].result = lo[k].result;
		for (unsigned k = 0; k < nu; k++)
			reqs[idx_up[k]].result = up[k].result;
		for (unsigned i = done; i < done + batch; i++)
			if (reqs[i].result && !r)
				r = reqs[i].result;
		done += batch;
	}
	return r ? -EIO : 0;
}

static int overlay_write_many(struct io_engine *e, struct io_req *reqs, unsigned n)
{
	struct overlay_engine *o = to_overlay(e);
	struct io_req up[IO_MAX_BATCH];
	unsigned idx[IO_MAX_BATCH];
	int r = 0;

	for (unsigned done = 0; done < n;) {
		unsigned batch = n - done < IO_MAX_BATCH ? n - done : IO_MAX_BATCH, nu = 0;

		for (unsigned i = done; i < done + batch; i++) {
			struct io_req *q = reqs + i;

			q->result = 0;
			if (q->block >= e->nr_blocks || io_req_blocks(q) > 1) {
				q->result = -EINVAL;
			} else if (q->block == 0) {
				memcpy(o->sb, q->buf, MD_BLOCK_SIZE);
				o->sb_held = true;
				mark_written(o, 0);
			} else {
				idx[nu] = i;
				up[nu++] = *q;
			}
		}
		if (nu)
			io_write_many(o->upper, up, nu);
		for (unsigned k = 0; k < nu; k++) {
			reqs[idx[k]].result = up[k].result;
			if (!up[k].result)
				mark_written(o, up[k].block);
		}
		for (unsigned i = done; i < done + batch; i++)
			if (reqs[i].result && !r)
				r = reqs[i].result;
		done += batch;
	}
	return r ? -EIO : 0;
}

static int overlay_flush(struct io_engine *e)
{
	return io_flush(to_overlay(e)->upper);
}

static void overlay_destroy(struct io_engine *e)
{
	struct overlay_engine *o = to_overlay(e);

	free(o->written);
	free(o->sb);
	free(o);
}

static const struct io_engine_ops overlay_ops = {
	.read_many = overlay_read_many,
	.write_many = overlay_write_many,
	.flush = overlay_flush,
	.destroy = overlay_destroy,
};

int io_overlay_create(struct io_engine *lower, struct io_engine *upper,
		      struct io_engine **out, struct pd_err *err)
{
	struct overlay_engine *o;

	if (!upper->writable)
		return pd_err_set(err, -EINVAL, "overlay: the upper engine is read-only");
	o = calloc(1, sizeof(*o));
	if (!o)
		return pd_err_set(err, -ENOMEM, "out of memory");
	o->written = calloc(upper->nr_blocks / 64 + 1, sizeof(*o->written));
	o->sb = io_alloc_block();
	if (!o->written || !o->sb) {
		free(o->written);
		free(o->sb);
		free(o);
		return pd_err_set(err, -ENOMEM, "out of memory");
	}
	o->e = *upper;
	o->e.ops = &overlay_ops;
	o->e.name = "overlay";
	o->lower = lower;
	o->upper = upper;
	*out = &o->e;
	return 0;
}

uint64_t io_overlay_nr_written(struct io_engine *overlay)
{
	return to_overlay(overlay)->nr_written;
}

/* Copies the batch reqs[0 .. n) from lower to upper. */
static int copy_batch(struct overlay_engine *o, struct io_req *reqs, unsigned n,
		      struct pd_err *err)
{
	if (io_read_many(o->lower, reqs, n))
		for (unsigned i = 0; i < n; i++)
			if (reqs[i].result)
				return pd_err_set(err, reqs[i].result,
						  "read error on input block %" PRIu64 ": %s",
						  reqs[i].block,
						  strerror(-reqs[i].result));
	if (io_write_many(o->upper, reqs, n))
		for (unsigned i = 0; i < n; i++)
			if (reqs[i].result)
				return pd_err_set(err, reqs[i].result,
						  "write error on output block %" PRIu64 ": %s",
						  reqs[i].block,
						  strerror(-reqs[i].result));
	return 0;
}

int io_overlay_finish(struct io_engine *overlay, const struct count_map *needed,
		      void (*progress)(void *ctx, uint64_t done), void *ctx,
		      struct pd_err *err)
{
	struct overlay_engine *o = to_overlay(overlay);
	struct io_req reqs[IO_MAX_BATCH];
	uint64_t nr = cm_nr_blocks(needed), done = 0;
	uint8_t *bufs;
	unsigned n = 0;
	int r = 0;

	if (nr > overlay->nr_blocks)
		nr = overlay->nr_blocks;
	bufs = aligned_alloc(MD_BLOCK_SIZE, (size_t)IO_MAX_BATCH * MD_BLOCK_SIZE);
	if (!bufs)
		return pd_err_set(err, -ENOMEM, "out of memory");
	for (uint64_t b = 1;; b++) {
		bool last = b >= nr;

		if (!last && cm_get(needed, b) && !is_written(o, b)) {
			reqs[n] = (struct io_req) {
				.block = b, .buf = bufs + (size_t)n * MD_BLOCK_SIZE,
			};
			n++;
		}
		if (n && (n == IO_MAX_BATCH || last)) {
			r = copy_batch(o, reqs, n, err);
			if (r)
				break;
			done += n;
			n = 0;
			if (progress)
				progress(ctx, done);
		}
		if (last)
			break;
	}
	free(bufs);
	if (r)
		return r;

	/* everything the superblock points at is in place before it is */
	if (io_flush(o->upper))
		return pd_err_set(err, -EIO, "flushing the output failed");
	if (o->sb_held) {
		r = io_write_block(o->upper, 0, o->sb);
		if (r)
			return pd_err_set(err, r, "write error on output block 0: %s",
					  strerror(-r));
	} else if (cm_get(needed, 0)) {
		reqs[0] = (struct io_req) { .block = 0, .buf = o->sb };
		r = copy_batch(o, reqs, 1, err);
		if (r)
			return r;
	}
	if (io_flush(o->upper))
		return pd_err_set(err, -EIO, "flushing the output failed");
	return 0;
}
