/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "snap-merge.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/*----------------------------------------------------------------
 * The scan
 *--------------------------------------------------------------*/

enum problem_kind {
	P_NEW_PAST_END,
	P_NEW_METADATA,
	P_NEW_SHARED,
	P_OLD_PAST_ORIGIN,
	P_OLD_IMPOSSIBLE,
	NR_KINDS
};

static const char *const kind_names[NR_KINDS] = {
	"entries whose COW chunk lies past the COW's end",
	"entries pointing at a metadata chunk",
	"entries sharing a COW chunk",
	"entries past the origin's end",
	"entries with an impossible origin chunk",
};

struct scan_ctx {
	struct snap_store *s;
	const struct snap_scan_opts *o;
	struct snap_scan *sc;
	uint8_t *used;			/* one bit per COW chunk */
	uint64_t counts[NR_KINDS];
	bool have_old;
	struct pd_err *err;
};

static void report(struct scan_ctx *c, bool fatal, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(struct scan_ctx *c, bool fatal, const char *fmt, ...)
{
	char msg[PD_ERR_MSG_MAX];
	va_list ap;

	if (fatal)
		c->sc->nr_problems++;
	else
		c->sc->nr_warnings++;
	if (!c->o->report)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->o->report(c->o->ctx, fatal, msg);
}

/* Counts a problem of a kind; true when it is still to be printed. */
static bool note(struct scan_ctx *c, enum problem_kind k)
{
	return ++c->counts[k] <= SNAP_REPORT_MAX;
}

static int visit(void *ctx, uint64_t index, const struct snap_entry *e)
{
	struct scan_ctx *c = ctx;
	const struct snap_geometry *g = &c->s->geo;
	struct snap_sorted se = { e->old_chunk, e->new_chunk, index };
	bool ok = true;

	if (e->new_chunk >= g->cow_chunks) {
		ok = false;
		if (note(c, P_NEW_PAST_END))
			report(c, true, "entry %" PRIu64 ": COW chunk %" PRIu64
			       " lies past the COW's end (%" PRIu64 " chunks)",
			       index, e->new_chunk, g->cow_chunks);
		else
			c->sc->nr_problems++;
	} else if (snap_is_metadata_chunk(g, e->new_chunk)) {
		ok = false;
		if (note(c, P_NEW_METADATA))
			report(c, true, "entry %" PRIu64 ": COW chunk %" PRIu64
			       " is a metadata area, not a data chunk", index, e->new_chunk);
		else
			c->sc->nr_problems++;
	} else {
		uint64_t n = e->new_chunk;

		if (c->used[n >> 3] & (1u << (n & 7))) {
			ok = false;
			if (note(c, P_NEW_SHARED))
				report(c, true, "entry %" PRIu64 ": COW chunk %" PRIu64
				       " is already used by an earlier entry", index, n);
			else
				c->sc->nr_problems++;
		}
		c->used[n >> 3] |= (uint8_t)(1u << (n & 7));
	}

	if (e->old_chunk > (UINT64_MAX - g->chunk_bytes) / g->chunk_bytes) {
		ok = false;
		if (note(c, P_OLD_IMPOSSIBLE))
			report(c, true, "entry %" PRIu64 ": origin chunk %" PRIu64
			       " lies beyond any device's end", index, e->old_chunk);
		else
			c->sc->nr_problems++;
	} else if (c->o->origin_bytes && e->old_chunk * g->chunk_bytes >= c->o->origin_bytes) {
		ok = false;
		if (note(c, P_OLD_PAST_ORIGIN))
			report(c, true, "entry %" PRIu64 ": origin chunk %" PRIu64
			       " lies past the origin's end (%" PRIu64 " bytes)",
			       index, e->old_chunk, c->o->origin_bytes);
		else
			c->sc->nr_problems++;
	}

	if (!c->have_old || e->old_chunk > c->sc->max_old_chunk)
		c->sc->max_old_chunk = e->old_chunk;
	c->have_old = true;
	if (!ok)
		return 0;
	return snap_sorter_add(c->sc->sorter, &se, c->err);
}

int snap_scan_table(struct snap_store *s, const struct snap_scan_opts *o,
		    struct snap_scan *sc, struct pd_err *err)
{
	struct scan_ctx c = { .s = s, .o = o, .sc = sc, .err = err };
	struct snap_plan p;
	struct snap_extent x;
	int r;

	memset(sc, 0, sizeof(*sc));
	c.used = calloc(s->geo.cow_chunks / 8 + 1, 1);
	if (!c.used)
		return pd_err_set(err, -ENOMEM, "out of memory (a bitmap of %" PRIu64
				  " COW chunks)", s->geo.cow_chunks);
	r = snap_sorter_create(o->sort_run, &sc->sorter, err);
	if (r)
		goto out;
	r = snap_walk(s, visit, &c, &sc->table, err);
	if (r)
		goto out;

	for (int k = 0; k < NR_KINDS; k++)
		if (c.counts[k] > SNAP_REPORT_MAX && o->report) {
			char msg[160];

			snprintf(msg, sizeof(msg), "... and %" PRIu64 " more %s",
				 c.counts[k] - SNAP_REPORT_MAX, kind_names[k]);
			o->report(o->ctx, true, msg);
		}

	if (sc->table.end == SNAP_END_DEVICE && !o->accept_no_end)
		report(&c, true, "the table has no end: area %" PRIu64
		       " is full and area %" PRIu64 " (chunk %" PRIu64
		       ") would lie past the COW's end",
		       sc->table.end_area - 1, sc->table.end_area,
		       snap_area_chunk(&s->geo, sc->table.end_area));
	if (sc->table.after_end)
		report(&c, false, "%" PRIu64 " non-zero entries follow the table's end in area %"
		       PRIu64 " (ignored, as the kernel ignores them)",
		       sc->table.after_end, sc->table.end_area);

	r = snap_sorter_finish(sc->sorter, err);
	if (r)
		goto out;
	sc->spilled_runs = snap_sorter_spilled_runs(sc->sorter);
	r = snap_plan_begin(&p, sc->sorter, err);
	p.duplicate = o->duplicate;
	p.ctx = o->ctx;
	while (!r) {
		r = snap_plan_next(&p, &x, err);
		if (r <= 0)
			break;
		r = 0;
		sc->nr_extents++;
		sc->distinct_chunks += x.nr_chunks;
	}
	if (r >= 0) {
		r = 0;
		sc->duplicates = p.duplicates;
		sc->duplicated_chunks = p.duplicated_chunks;
	}
out:
	free(c.used);
	return r;
}

void snap_scan_release(struct snap_scan *sc)
{
	snap_sorter_destroy(sc->sorter);
	sc->sorter = NULL;
}

int snap_check_origin(const struct snap_store *s, const struct snap_scan *sc,
		      const char *origin, uint64_t origin_bytes, struct pd_err *err)
{
	const struct snap_geometry *g = &s->geo;
	uint64_t start, end;

	if (!sc->distinct_chunks)
		return 0;
	start = sc->max_old_chunk * g->chunk_bytes;
	end = start + g->chunk_bytes;
	if (start >= origin_bytes)
		return pd_err_set(err, -ENOSPC,
				  "%s: origin too small: the store holds origin chunk %" PRIu64
				  " (bytes %" PRIu64 "-%" PRIu64 ") but the origin has %" PRIu64
				  " bytes (a wrong origin?)", origin, sc->max_old_chunk, start,
				  end - 1, origin_bytes);
	if (end > origin_bytes && origin_bytes % MD_BLOCK_SIZE)
		return pd_err_set(err, -EINVAL,
				  "%s: the origin's size (%" PRIu64
				  " bytes) is not a multiple of 4 KiB and its last chunk is in the store",
				  origin, origin_bytes);
	return 0;
}

/*----------------------------------------------------------------
 * The plan
 *--------------------------------------------------------------*/

int snap_plan_begin(struct snap_plan *p, struct snap_sorter *sorter, struct pd_err *err)
{
	memset(p, 0, sizeof(*p));
	p->sorter = sorter;
	return snap_sorter_rewind(sorter, err);
}

/* The next entry with duplicates resolved: the last of equal old_chunks. */
static int next_unique(struct snap_plan *p, struct snap_sorted *e, struct pd_err *err)
{
	int r;

	if (p->have_peek) {
		*e = p->peek;
		p->have_peek = false;
	} else {
		if (p->done)
			return 0;
		r = snap_sorter_next(p->sorter, e, err);
		if (r <= 0) {
			p->done = true;
			return r;
		}
	}
	uint64_t list[SNAP_DUP_LIST], count = 1;

	list[0] = e->new_chunk;
	for (;;) {
		struct snap_sorted n;

		r = snap_sorter_next(p->sorter, &n, err);
		if (r < 0)
			return r;
		if (!r)
			p->done = true;
		else if (n.old_chunk == e->old_chunk) {
			/* the sorter keeps equal old_chunks in table order */
			p->duplicates++;
			list[count < SNAP_DUP_LIST ? count : SNAP_DUP_LIST - 1] = n.new_chunk;
			count++;
			*e = n;
			continue;
		} else {
			p->peek = n;
			p->have_peek = true;
		}
		if (count > 1) {
			p->duplicated_chunks++;
			if (p->duplicate)
				p->duplicate(p->ctx, e->old_chunk, list,
					     count < SNAP_DUP_LIST ? (unsigned)count : SNAP_DUP_LIST,
					     count);
		}
		return 1;
	}
}

int snap_plan_next(struct snap_plan *p, struct snap_extent *x, struct pd_err *err)
{
	struct snap_sorted e;
	int r;

	if (p->have_pending) {
		e = p->pending;
		p->have_pending = false;
	} else {
		r = next_unique(p, &e, err);
		if (r <= 0)
			return r;
	}
	x->old_chunk = e.old_chunk;
	x->new_chunk = e.new_chunk;
	x->nr_chunks = 1;
	for (;;) {
		struct snap_sorted n;

		r = next_unique(p, &n, err);
		if (r < 0)
			return r;
		if (!r)
			return 1;
		if (n.old_chunk != x->old_chunk + x->nr_chunks ||
		    n.new_chunk != x->new_chunk + x->nr_chunks) {
			p->pending = n;
			p->have_pending = true;
			return 1;
		}
		x->nr_chunks++;
	}
}

/*----------------------------------------------------------------
 * The copy
 *--------------------------------------------------------------*/

struct batch {
	struct snap_store *s;
	struct io_engine *origin;
	const struct snap_copy_opts *o;
	struct snap_copy_stats *st;
	struct io_req rd[IO_MAX_BATCH], wr[IO_MAX_BATCH];
	char *buf, *back;
	unsigned n;
	struct pd_err *err;
};

static int flush_batch(struct batch *b)
{
	int r;

	if (!b->n)
		return 0;
	r = io_read_many(b->s->io, b->rd, b->n);
	if (r)
		return pd_err_set(b->err, r, "%s: cannot read COW block %" PRIu64 ": %s",
				  b->s->path, b->rd[0].block, strerror(-r));
	if (b->o->verify_only) {
		for (unsigned i = 0; i < b->n; i++)
			b->wr[i].buf = b->back + (size_t)i * MD_BLOCK_SIZE;
		r = io_read_many(b->origin, b->wr, b->n);
		if (r)
			return pd_err_set(b->err, r, "cannot read back origin block %" PRIu64 ": %s",
					  b->wr[0].block, strerror(-r));
		for (unsigned i = 0; i < b->n; i++)
			if (memcmp(b->rd[i].buf, b->wr[i].buf, MD_BLOCK_SIZE)) {
				if (!b->st->mismatches++)
					b->st->first_mismatch_block = b->wr[i].block;
			}
	} else {
		r = io_write_many(b->origin, b->wr, b->n);
		if (r)
			return pd_err_set(b->err, r, "cannot write origin block %" PRIu64 ": %s",
					  b->wr[0].block, strerror(-r));
	}
	b->st->ios++;
	b->st->bytes += (uint64_t)b->n * MD_BLOCK_SIZE;
	b->n = 0;
	if (b->o->progress)
		b->o->progress(b->o->ctx, b->st->bytes);
	return 0;
}

/* Verify: the plan in origin order, compared 4 KiB block by block. */
static int verify_plan(struct snap_store *s, struct snap_scan *sc, struct io_engine *origin,
		       const struct snap_copy_opts *o, struct snap_copy_stats *st, struct pd_err *err)
{
	const struct snap_geometry *g = &s->geo;
	struct batch *b = calloc(1, sizeof(*b));
	struct snap_plan p;
	struct snap_extent x;
	int r;

	memset(st, 0, sizeof(*st));
	if (!b)
		return pd_err_set(err, -ENOMEM, "out of memory");
	b->s = s;
	b->origin = origin;
	b->o = o;
	b->st = st;
	b->err = err;
	if (posix_memalign((void **)&b->buf, MD_BLOCK_SIZE, SNAP_IO_BYTES) ||
	    posix_memalign((void **)&b->back, MD_BLOCK_SIZE, SNAP_IO_BYTES)) {
		r = pd_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}

	r = snap_plan_begin(&p, sc->sorter, err);
	while (!r) {
		r = snap_plan_next(&p, &x, err);
		if (r <= 0)
			break;
		r = 0;
		uint64_t ob = x.old_chunk * g->blocks_per_chunk;
		uint64_t cb = x.new_chunk * g->blocks_per_chunk;
		uint64_t nb = x.nr_chunks * g->blocks_per_chunk;

		/* a last chunk reaching past the origin's end is written up to the end */
		if (ob + nb > origin->nr_blocks)
			nb = ob < origin->nr_blocks ? origin->nr_blocks - ob : 0;
		st->extents++;
		r = 0;
		for (uint64_t i = 0; i < nb && !r; i++) {
			b->rd[b->n] = (struct io_req) {
				.block = cb + i, .buf = b->buf + (size_t)b->n * MD_BLOCK_SIZE };
			b->wr[b->n] = (struct io_req) { .block = ob + i, .buf = b->rd[b->n].buf };
			if (++b->n == IO_MAX_BATCH)
				r = flush_batch(b);
		}
	}
	if (!r)
		r = flush_batch(b);
	if (!r && st->mismatches)
		r = pd_err_set(err, -EILSEQ,
			       "verify failed: %" PRIu64 " blocks of 4 KiB differ from the COW, the first at origin byte %" PRIu64,
			       st->mismatches, st->first_mismatch_block * MD_BLOCK_SIZE);
out:
	free(b->buf);
	free(b->back);
	free(b);
	return r;
}


/*
 * The copy proper: the table in table order, a window at a time.  A
 * window holds the next entries whose chunks fit in SNAP_WINDOW_BYTES.
 * Its COW chunks are read in runs (the kernel allocates them in table
 * order, so a window is a few long runs: large sequential reads), then
 * its entries are sorted by origin chunk and written, a run of
 * consecutive origin chunks whose data lies back to back in the buffer
 * as one request (the sync engine also merges adjacent requests into one
 * pwritev).  Windows go in table order and, inside a window, an
 * old_chunk's last entry is the one written, so the last entry wins
 * across windows too (an overridden entry of an earlier window is
 * written first and overwritten).
 */
struct win_entry {
	uint64_t old_chunk, new_chunk, index;
	uint64_t pos;		/* block offset of its data in the window buffer */
};

struct window {
	struct snap_store *s;
	struct io_engine *origin;
	const struct snap_copy_opts *o;
	struct snap_copy_stats *st;
	uint64_t bpc;			/* blocks per chunk */
	uint64_t cap;			/* entries per window */
	uint64_t piece;			/* blocks of a chunk per pass (< bpc: huge chunks) */
	struct win_entry *e;
	unsigned n;
	struct io_req *req;		/* cap * ceil(piece / IO_MAX_REQ_BLOCKS) + 1 */
	char *buf;
	struct pd_err *err;
};

static int cmp_new(const void *a, const void *b)
{
	const struct win_entry *x = a, *y = b;

	return x->new_chunk < y->new_chunk ? -1 : x->new_chunk > y->new_chunk;
}

static int cmp_old(const void *a, const void *b)
{
	const struct win_entry *x = a, *y = b;

	if (x->old_chunk != y->old_chunk)
		return x->old_chunk < y->old_chunk ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * Appends a request for nb blocks at block with data at buffer block pos,
 * extending the last one when it continues it on disk and in the buffer.
 */
static void add_req(struct window *w, unsigned *nr, uint64_t block, uint64_t pos, uint64_t nb)
{
	while (nb) {
		struct io_req *l = *nr ? w->req + *nr - 1 : NULL;
		uint64_t k;

		if (l && l->block + io_req_blocks(l) == block &&
		    (char *)l->buf + io_req_bytes(l) == w->buf + pos * MD_BLOCK_SIZE &&
		    io_req_blocks(l) < IO_MAX_REQ_BLOCKS) {
			k = IO_MAX_REQ_BLOCKS - io_req_blocks(l);
			if (k > nb)
				k = nb;
			l->nr_blocks = io_req_blocks(l) + (uint32_t)k;
		} else {
			k = nb < IO_MAX_REQ_BLOCKS ? nb : IO_MAX_REQ_BLOCKS;
			w->req[(*nr)++] = (struct io_req) {
				.block = block, .buf = w->buf + pos * MD_BLOCK_SIZE,
				.nr_blocks = (uint32_t)k };
		}
		block += k;
		pos += k;
		nb -= k;
	}
}

static int first_failed(struct io_req *req, unsigned n, uint64_t *block)
{
	for (unsigned i = 0; i < n; i++)
		if (req[i].result) {
			*block = req[i].block;
			return req[i].result;
		}
	*block = n ? req[0].block : 0;
	return -EIO;
}

/* Copies blocks [from, from + len) of every chunk of the window. */
static int window_pass(struct window *w, uint64_t from, uint64_t len)
{
	uint64_t onb = w->origin->nr_blocks, at, bytes = 0;
	unsigned nr = 0;
	int r;

	/* read: in COW order */
	qsort(w->e, w->n, sizeof(*w->e), cmp_new);
	for (unsigned i = 0; i < w->n; i++) {
		w->e[i].pos = (uint64_t)i * len;
		add_req(w, &nr, w->e[i].new_chunk * w->bpc + from, w->e[i].pos, len);
	}
	r = io_read_many(w->s->io, w->req, nr);
	if (r) {
		r = first_failed(w->req, nr, &at);
		return pd_err_set(w->err, r, "%s: cannot read COW block %" PRIu64 ": %s",
				  w->s->path, at, strerror(-r));
	}
	/*
	 * A buffered COW: ask for the next window's chunks (those after the
	 * last read, where the kernel puts them) while this one is written.
	 */
	if (!w->s->io->direct && w->n)
		(void)posix_fadvise(w->s->io->fd,
				    (off_t)((w->e[w->n - 1].new_chunk + 1) * w->bpc * MD_BLOCK_SIZE),
				    (off_t)SNAP_WINDOW_BYTES, POSIX_FADV_WILLNEED);

	/* write: in origin order, an old_chunk's last entry only */
	qsort(w->e, w->n, sizeof(*w->e), cmp_old);
	nr = 0;
	for (unsigned i = 0; i < w->n; i++) {
		uint64_t ob = w->e[i].old_chunk * w->bpc + from, nb = len;

		if (i + 1 < w->n && w->e[i + 1].old_chunk == w->e[i].old_chunk)
			continue;	/* a later entry of the window overrides it */
		/* a last chunk reaching past the origin's end is written up to the end */
		if (ob >= onb)
			continue;
		if (ob + nb > onb)
			nb = onb - ob;
		add_req(w, &nr, ob, w->e[i].pos, nb);
		bytes += nb * MD_BLOCK_SIZE;
	}
	r = io_write_many(w->origin, w->req, nr);
	if (r) {
		r = first_failed(w->req, nr, &at);
		return pd_err_set(w->err, r, "cannot write origin block %" PRIu64 ": %s",
				  at, strerror(-r));
	}
	w->st->ios += nr;
	w->st->bytes += bytes;
	if (w->o->progress)
		w->o->progress(w->o->ctx, w->st->bytes);
	return 0;
}

static int window_flush(struct window *w)
{
	int r = 0;

	for (uint64_t from = 0; from < w->bpc && w->n && !r; from += w->piece)
		r = window_pass(w, from, w->bpc - from < w->piece ? w->bpc - from : w->piece);
	w->n = 0;
	return r;
}

static int window_visit(void *ctx, uint64_t index, const struct snap_entry *e)
{
	struct window *w = ctx;

	w->e[w->n++] = (struct win_entry) { e->old_chunk, e->new_chunk, index, 0 };
	return w->n == w->cap ? window_flush(w) : 0;
}

int snap_copy(struct snap_store *s, struct snap_scan *sc, struct io_engine *origin,
	      const struct snap_copy_opts *o, struct snap_copy_stats *st, struct pd_err *err)
{
	const struct snap_geometry *g = &s->geo;
	uint64_t window_blocks = SNAP_WINDOW_BYTES / MD_BLOCK_SIZE;
	struct window w = { .s = s, .origin = origin, .o = o, .st = st, .err = err };
	struct snap_table_info info;
	int r;

	memset(st, 0, sizeof(*st));
	if (o->verify_only)
		return verify_plan(s, sc, origin, o, st, err);
	if (!origin->writable)
		return pd_err_set(err, -EINVAL, "the origin is not open for writing");
	if (sc->nr_problems)
		return pd_err_set(err, -EINVAL, "the exception table has problems: nothing copied");

	w.bpc = g->blocks_per_chunk;
	w.piece = w.bpc < window_blocks ? w.bpc : window_blocks;
	w.cap = window_blocks / w.piece;
	w.e = calloc(w.cap, sizeof(*w.e));
	w.req = calloc(w.cap * ((w.piece + IO_MAX_REQ_BLOCKS - 1) / IO_MAX_REQ_BLOCKS) + 1,
		       sizeof(*w.req));
	if (!w.e || !w.req || posix_memalign((void **)&w.buf, MD_BLOCK_SIZE, SNAP_WINDOW_BYTES)) {
		r = pd_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	r = snap_walk(s, window_visit, &w, &info, err);
	if (!r)
		r = window_flush(&w);
	st->extents = sc->nr_extents;
	if (!r) {
		r = io_flush(origin);
		if (r)
			pd_err_set(err, r, "cannot flush the origin: %s", strerror(-r));
	}
out:
	free(w.e);
	free(w.req);
	free(w.buf);
	return r;
}

/*----------------------------------------------------------------
 * dd lines and holders
 *--------------------------------------------------------------*/

/* path quoted for a POSIX shell when it holds anything unusual */
static void shell_quote(char *out, size_t len, const char *s)
{
	size_t n = 0;
	bool plain = *s;

	for (const char *c = s; *c; c++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+:,@%", *c))
			plain = false;
	if (plain) {
		snprintf(out, len, "%s", s);
		return;
	}
#define PUT(ch) do { if (n + 1 < len) out[n++] = (ch); } while (0)
	PUT('\'');
	for (const char *c = s; *c; c++) {
		if (*c == '\'') {
			PUT('\'');
			PUT('\\');
			PUT('\'');
			PUT('\'');
		} else {
			PUT(*c);
		}
	}
	PUT('\'');
#undef PUT
	out[n < len ? n : len - 1] = '\0';
}

int snap_format_dd(char *buf, size_t len, const char *cow, const char *origin,
		   uint64_t chunk_bytes, const struct snap_extent *x)
{
	char qi[1024], qo[1024];

	shell_quote(qi, sizeof(qi), cow);
	shell_quote(qo, sizeof(qo), origin);
	return snprintf(buf, len,
			"dd if=%s of=%s bs=%" PRIu64 " skip=%" PRIu64 " seek=%" PRIu64
			" count=%" PRIu64 " conv=notrunc status=none",
			qi, qo, chunk_bytes, x->new_chunk, x->old_chunk, x->nr_chunks);
}

static void read_line(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = -1;

	buf[0] = '\0';
	if (fd >= 0) {
		n = read(fd, buf, len - 1);
		close(fd);
	}
	if (n <= 0)
		return;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

void snap_device_holders(const char *path, char *buf, size_t len)
{
	char dir[128], p[512], name[256];
	struct stat st;
	struct dirent *de;
	size_t used = 0;
	DIR *d;

	buf[0] = '\0';
	if (stat(path, &st) || !S_ISBLK(st.st_mode))
		return;
	snprintf(dir, sizeof(dir), "/sys/dev/block/%u:%u/holders",
		 major(st.st_rdev), minor(st.st_rdev));
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		int k;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/sys/block/%s/dm/name", de->d_name);
		read_line(p, name, sizeof(name));
		k = snprintf(buf + used, len - used, "%s%s%s%s%s", used ? ", " : "",
			     de->d_name, *name ? " (" : "", name, *name ? ")" : "");
		if (k < 0 || (size_t)k >= len - used)
			break;
		used += (size_t)k;
	}
	closedir(d);
}
