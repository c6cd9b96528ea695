/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The fault engine (io-engine-fault.h): a power cut after N block writes,
 * in front of any other engine.
 */
#include "io-engine-fault.h"
#include "container-of.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A block written since the last flush and what it held before. */
struct undo_entry {
	uint64_t block;
	void *old;		/* MD_BLOCK_SIZE bytes, aligned */
};

struct fault_engine {
	struct io_engine e;
	struct io_engine *inner;
	unsigned flags;
	uint64_t limit;		/* writes that go through, counted from the start */
	struct io_fault_stats st;

	/* IO_FAULT_REORDER only */
	struct undo_entry *undo;
	size_t nr_undo, undo_cap;
};

#define to_fault(x) container_of(x, struct fault_engine, e)

static const struct io_engine_ops fault_ops;

/*----------------------------------------------------------------
 * The undo log (IO_FAULT_REORDER)
 *--------------------------------------------------------------*/

static void undo_clear(struct fault_engine *f)
{
	for (size_t i = 0; i < f->nr_undo; i++)
		free(f->undo[i].old);
	f->nr_undo = 0;
}

/* Keeps what the blocks of reqs hold now, before they are overwritten. */
static int undo_record(struct fault_engine *f, const struct io_req *reqs, unsigned n)
{
	struct io_req rd[IO_MAX_BATCH];
	unsigned k = 0;
	int r = 0;

	if (f->nr_undo + n > f->undo_cap) {
		size_t cap = f->undo_cap ? f->undo_cap : 64;
		struct undo_entry *u;

		while (cap < f->nr_undo + n)
			cap *= 2;
		u = realloc(f->undo, cap * sizeof(*u));
		if (!u)
			return -ENOMEM;
		f->undo = u;
		f->undo_cap = cap;
	}
	for (k = 0; k < n; k++) {
		rd[k].block = reqs[k].block;
		rd[k].result = 0;
		rd[k].nr_blocks = 0;
		rd[k].buf = io_alloc_block();
		if (!rd[k].buf) {
			r = -ENOMEM;
			break;
		}
	}
	if (!r && k)
		r = io_read_many(f->inner, rd, k);
	if (r) {
		for (unsigned i = 0; i < k; i++)
			free(rd[i].buf);
		return r;
	}
	for (unsigned i = 0; i < k; i++) {
		f->undo[f->nr_undo].block = rd[i].block;
		f->undo[f->nr_undo].old = rd[i].buf;
		f->nr_undo++;
	}
	return 0;
}

/*
 * The cut under IO_FAULT_REORDER: every write since the last flush is
 * lost except the most recent one.  Undone newest first, so a block
 * written twice gets back what it held at the flush; the surviving
 * block is left alone (a write-back cache holds one copy of a block).
 */
static int undo_apply(struct fault_engine *f)
{
	uint64_t keep;
	int r = 0;

	if (!f->nr_undo)
		return 0;
	keep = f->undo[f->nr_undo - 1].block;
	for (size_t i = f->nr_undo - 1; i-- > 0;) {
		int k;

		if (f->undo[i].block == keep)
			continue;
		k = io_write_block(f->inner, f->undo[i].block, f->undo[i].old);
		if (k && !r)
			r = k;
		if (!k)
			f->st.writes_undone++;
	}
	undo_clear(f);
	return r;
}

/*----------------------------------------------------------------
 * The cut
 *--------------------------------------------------------------*/

/* The first of the writes past the limit: it may tear, cached ones are lost. */
static void cut(struct fault_engine *f, const struct io_req *req)
{
	void *blk;

	f->st.cut = true;
	f->st.cut_block = req->block;
	if (f->flags & IO_FAULT_REORDER)
		(void)undo_apply(f);
	if (!(f->flags & IO_FAULT_TEAR))
		return;
	/* the first sector is new, the rest of the block keeps its old bytes */
	blk = io_alloc_block();
	if (!blk)
		return;
	if (!io_read_block(f->inner, req->block, blk)) {
		memcpy(blk, req->buf, IO_FAULT_TEAR_BYTES);
		if (!io_write_block(f->inner, req->block, blk))
			f->st.writes_torn++;
	}
	free(blk);
}

/*----------------------------------------------------------------
 * Ops
 *--------------------------------------------------------------*/

static int fault_read_many(struct io_engine *e, struct io_req *reqs, unsigned n)
{
	return io_read_many(to_fault(e)->inner, reqs, n);
}

/* The writes before the limit, gathered in one batch for the inner engine. */
static int pass_through(struct fault_engine *f, struct io_req *reqs,
			const unsigned *idx, unsigned k)
{
	struct io_req batch[IO_MAX_BATCH];
	int r;

	for (unsigned j = 0; j < k; j++)
		batch[j] = reqs[idx[j]];
	if (f->flags & IO_FAULT_REORDER) {
		r = undo_record(f, batch, k);
		if (r) {
			for (unsigned j = 0; j < k; j++)
				reqs[idx[j]].result = r;
			return r;
		}
	}
	r = io_write_many(f->inner, batch, k);
	for (unsigned j = 0; j < k; j++) {
		reqs[idx[j]].result = batch[j].result;
		f->st.writes_seen++;
		if (!batch[j].result)
			f->st.writes_done++;
	}
	return r;
}

/* Single-block requests (runs are split by fault_write_many). */
static int write_blocks(struct io_engine *e, struct io_req *reqs, unsigned n)
{
	struct fault_engine *f = to_fault(e);
	unsigned idx[IO_MAX_BATCH];
	unsigned i = 0;
	int ret = 0;

	while (i < n) {
		unsigned k = 0;

		/* a run of writes that go through */
		while (i < n && k < IO_MAX_BATCH) {
			struct io_req *r = reqs + i;

			if (r->block >= e->nr_blocks) {
				/* never reaches a device, so it does not count */
				r->result = -EINVAL;
				if (!ret)
					ret = -EINVAL;
				i++;
				continue;
			}
			if (f->st.cut || f->st.writes_seen + k >= f->limit)
				break;
			idx[k++] = i++;
		}
		if (k) {
			int r = pass_through(f, reqs, idx, k);

			if (r && !ret)
				ret = r;
		}
		if (i == n || k == IO_MAX_BATCH)
			continue;

		/* the cut, or a write after it */
		f->st.writes_seen++;
		if (!f->st.cut)
			cut(f, reqs + i);
		if (f->flags & IO_FAULT_FAIL) {
			reqs[i].result = -EIO;
			f->st.writes_failed++;
			if (!ret)
				ret = -EIO;
		} else {
			reqs[i].result = 0;
			f->st.writes_dropped++;
		}
		i++;
	}
	return ret;
}

static int fault_flush(struct io_engine *e)
{
	struct fault_engine *f = to_fault(e);
	int r;

	f->st.flushes_seen++;
	if (f->st.cut)
		return (f->flags & IO_FAULT_FAIL) ? -EIO : 0;
	r = io_flush(f->inner);
	if (r)
		return r;
	f->st.flushes_done++;
	undo_clear(f);		/* what was written is durable now */
	return 0;
}

static void fault_destroy(struct io_engine *e)
{
	struct fault_engine *f = to_fault(e);

	undo_clear(f);
	free(f->undo);
	if (f->flags & IO_FAULT_OWN_INNER)
		io_engine_destroy(f->inner);
	free(f);
}

/*
 * A run of blocks is split into its blocks, each a write that counts
 * towards the cut (a device may complete a large write partly).
 */
static int fault_write_many(struct io_engine *e, struct io_req *reqs, unsigned n)
{
	struct io_req piece[IO_MAX_BATCH];
	int ret = 0;

	for (unsigned i = 0; i < n; i++)
		if (io_req_blocks(reqs + i) > 1)
			goto split;
	return write_blocks(e, reqs, n);
split:
	for (unsigned i = 0; i < n; i++) {
		struct io_req *q = reqs + i;
		uint32_t nb = io_req_blocks(q);

		q->result = 0;
		if (!io_req_fits(q, e->nr_blocks)) {
			q->result = -EINVAL;
		} else {
			for (uint32_t done = 0; done < nb && !q->result;) {
				unsigned k = nb - done < IO_MAX_BATCH ? nb - done : IO_MAX_BATCH;

				for (unsigned j = 0; j < k; j++)
					piece[j] = (struct io_req) {
						.block = q->block + done + j,
						.buf = (char *)q->buf + (size_t)(done + j) * MD_BLOCK_SIZE };
				write_blocks(e, piece, k);
				for (unsigned j = 0; j < k && !q->result; j++)
					q->result = piece[j].result;
				done += k;
			}
		}
		if (q->result && !ret)
			ret = q->result;
	}
	return ret;
}

static const struct io_engine_ops fault_ops = {
	.read_many = fault_read_many,
	.write_many = fault_write_many,
	.flush = fault_flush,
	.destroy = fault_destroy,
};

/*----------------------------------------------------------------
 * Construction and control
 *--------------------------------------------------------------*/

int io_engine_fault_create(struct io_engine *inner, uint64_t fail_after_writes,
			   struct io_engine **out)
{
	struct fault_engine *f;

	if (!inner)
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->e = *inner;		/* fd, sizes, writable, direct: the inner engine's */
	f->e.ops = &fault_ops;
	f->e.name = "fault";
	f->inner = inner;
	f->limit = fail_after_writes;
	*out = &f->e;
	return 0;
}

bool io_engine_is_fault(const struct io_engine *e)
{
	return e && e->ops == &fault_ops;
}

int io_engine_fault_set_flags(struct io_engine *e, unsigned flags)
{
	const unsigned known = IO_FAULT_FAIL | IO_FAULT_TEAR | IO_FAULT_REORDER |
			       IO_FAULT_OWN_INNER;

	if (!io_engine_is_fault(e) || (flags & ~known))
		return -EINVAL;
	to_fault(e)->flags = flags;
	return 0;
}

int io_engine_fault_set_limit(struct io_engine *e, uint64_t fail_after_writes)
{
	struct fault_engine *f;

	if (!io_engine_is_fault(e))
		return -EINVAL;
	f = to_fault(e);
	if (f->st.cut)
		return -EINVAL;
	f->limit = fail_after_writes > UINT64_MAX - f->st.writes_seen ?
		   UINT64_MAX : f->st.writes_seen + fail_after_writes;
	return 0;
}

int io_engine_fault_get_stats(struct io_engine *e, struct io_fault_stats *st)
{
	if (!io_engine_is_fault(e))
		return -EINVAL;
	*st = to_fault(e)->st;
	return 0;
}
