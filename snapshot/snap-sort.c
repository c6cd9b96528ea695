/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "snap-sort.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct run_cursor {
	uint64_t next, end;		/* entry positions in the file */
	struct snap_sorted *buf;
	uint32_t pos, len, cap;
};

struct snap_sorter {
	uint64_t run_max;
	struct snap_sorted *run;	/* the run being filled, or the only run */
	uint64_t run_len;
	uint64_t count;

	int fd;				/* temporary file, -1 until a run spills */
	uint64_t *run_starts;		/* entry position of each spilled run, and the end */
	uint64_t nr_runs, runs_cap;

	/* reading */
	bool finished;
	uint64_t mem_pos;		/* one run in memory */
	struct run_cursor *cursors;
	uint32_t *heap;			/* cursor indexes, a binary min-heap */
	uint64_t heap_len;
};

static int cmp_sorted(const void *a, const void *b)
{
	const struct snap_sorted *x = a, *y = b;

	if (x->old_chunk != y->old_chunk)
		return x->old_chunk < y->old_chunk ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int snap_sorter_create(uint64_t run_entries, struct snap_sorter **out, struct pd_err *err)
{
	struct snap_sorter *s = calloc(1, sizeof(*s));

	if (!s)
		return pd_err_set(err, -ENOMEM, "out of memory");
	s->run_max = run_entries ? run_entries : SNAP_SORT_RUN_DEFAULT;
	s->fd = -1;
	*out = s;
	return 0;
}

void snap_sorter_destroy(struct snap_sorter *s)
{
	if (!s)
		return;
	if (s->cursors)
		for (uint64_t i = 0; i < s->nr_runs; i++)
			free(s->cursors[i].buf);
	free(s->cursors);
	free(s->heap);
	free(s->run);
	free(s->run_starts);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}

static int open_temp(struct pd_err *err)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	int fd;

	if (!dir || !*dir)
		dir = "/tmp";
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	snprintf(path, sizeof(path), "%s/snapshot-sort-XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0)
		return pd_err_set(err, -errno, "cannot create a temporary file in %s for sorting: %s",
				  dir, strerror(errno));
	unlink(path);
	return fd;
}

static int write_all(int fd, const void *p, size_t len, off_t off)
{
	while (len) {
		ssize_t k = pwrite(fd, p, len, off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EIO;
		p = (const char *)p + k;
		len -= (size_t)k;
		off += k;
	}
	return 0;
}

static int spill(struct snap_sorter *s, struct pd_err *err)
{
	uint64_t start = s->nr_runs ? s->run_starts[s->nr_runs] : 0;
	int r;

	qsort(s->run, s->run_len, sizeof(*s->run), cmp_sorted);
	if (s->fd < 0) {
		s->fd = open_temp(err);
		if (s->fd < 0)
			return s->fd;
	}
	if (s->nr_runs + 2 > s->runs_cap) {
		uint64_t cap = s->runs_cap ? s->runs_cap * 2 : 16;
		uint64_t *p = realloc(s->run_starts, cap * sizeof(*p));

		if (!p)
			return pd_err_set(err, -ENOMEM, "out of memory");
		s->run_starts = p;
		s->runs_cap = cap;
	}
	r = write_all(s->fd, s->run, s->run_len * sizeof(*s->run),
		      (off_t)(start * sizeof(*s->run)));
	if (r)
		return pd_err_set(err, r, "cannot write the sort's temporary file: %s", strerror(-r));
	s->run_starts[s->nr_runs] = start;
	s->run_starts[++s->nr_runs] = start + s->run_len;
	s->run_len = 0;
	return 0;
}

int snap_sorter_add(struct snap_sorter *s, const struct snap_sorted *e, struct pd_err *err)
{
	if (!s->run) {
		s->run = malloc(s->run_max * sizeof(*s->run));
		if (!s->run)
			return pd_err_set(err, -ENOMEM, "out of memory");
	}
	if (s->run_len == s->run_max) {
		int r = spill(s, err);

		if (r)
			return r;
	}
	s->run[s->run_len++] = *e;
	s->count++;
	return 0;
}

int snap_sorter_finish(struct snap_sorter *s, struct pd_err *err)
{
	s->finished = true;
	if (!s->nr_runs) {
		if (s->run_len)
			qsort(s->run, s->run_len, sizeof(*s->run), cmp_sorted);
		return 0;
	}
	if (s->run_len) {
		int r = spill(s, err);

		if (r)
			return r;
	}
	free(s->run);
	s->run = NULL;

	s->cursors = calloc(s->nr_runs, sizeof(*s->cursors));
	s->heap = calloc(s->nr_runs, sizeof(*s->heap));
	if (!s->cursors || !s->heap)
		return pd_err_set(err, -ENOMEM, "out of memory");
	{
		uint64_t per = SNAP_SORT_MERGE_BYTES / sizeof(struct snap_sorted) / s->nr_runs;

		if (per < 64)
			per = 64;
		if (per > UINT32_MAX)
			per = UINT32_MAX;
		for (uint64_t i = 0; i < s->nr_runs; i++) {
			s->cursors[i].cap = (uint32_t)per;
			s->cursors[i].buf = malloc(per * sizeof(struct snap_sorted));
			if (!s->cursors[i].buf)
				return pd_err_set(err, -ENOMEM, "out of memory");
		}
	}
	return 0;
}

/*----------------------------------------------------------------
 * Reading
 *--------------------------------------------------------------*/

static int refill(struct snap_sorter *s, struct run_cursor *c, struct pd_err *err)
{
	uint64_t n = c->end - c->next;
	size_t want, got = 0;

	if (n > c->cap)
		n = c->cap;
	want = n * sizeof(struct snap_sorted);
	while (got < want) {
		ssize_t k = pread(s->fd, (char *)c->buf + got, want - got,
				  (off_t)(c->next * sizeof(struct snap_sorted) + got));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return pd_err_set(err, k < 0 ? -errno : -EIO,
					  "cannot read the sort's temporary file");
		got += (size_t)k;
	}
	c->next += n;
	c->pos = 0;
	c->len = (uint32_t)n;
	return 0;
}

static const struct snap_sorted *head(const struct snap_sorter *s, uint32_t i)
{
	return &s->cursors[i].buf[s->cursors[i].pos];
}

static bool heap_less(const struct snap_sorter *s, uint32_t a, uint32_t b)
{
	return cmp_sorted(head(s, a), head(s, b)) < 0;
}

static void sift_down(struct snap_sorter *s, uint64_t i)
{
	for (;;) {
		uint64_t l = 2 * i + 1, m = i;

		if (l < s->heap_len && heap_less(s, s->heap[l], s->heap[m]))
			m = l;
		if (l + 1 < s->heap_len && heap_less(s, s->heap[l + 1], s->heap[m]))
			m = l + 1;
		if (m == i)
			return;
		uint32_t t = s->heap[i];
		s->heap[i] = s->heap[m];
		s->heap[m] = t;
		i = m;
	}
}

int snap_sorter_rewind(struct snap_sorter *s, struct pd_err *err)
{
	if (!s->finished)
		return pd_err_set(err, -EINVAL, "the sort is not finished");
	s->mem_pos = 0;
	if (!s->nr_runs)
		return 0;
	s->heap_len = 0;
	for (uint64_t i = 0; i < s->nr_runs; i++) {
		struct run_cursor *c = &s->cursors[i];
		int r;

		c->next = s->run_starts[i];
		c->end = s->run_starts[i + 1];
		r = refill(s, c, err);
		if (r)
			return r;
		if (c->len)
			s->heap[s->heap_len++] = (uint32_t)i;
	}
	for (uint64_t i = s->heap_len / 2; i-- > 0;)
		sift_down(s, i);
	return 0;
}

int snap_sorter_next(struct snap_sorter *s, struct snap_sorted *e, struct pd_err *err)
{
	struct run_cursor *c;
	uint32_t top;

	if (!s->nr_runs) {
		if (s->mem_pos >= s->run_len)
			return 0;
		*e = s->run[s->mem_pos++];
		return 1;
	}
	if (!s->heap_len)
		return 0;
	top = s->heap[0];
	c = &s->cursors[top];
	*e = c->buf[c->pos++];
	if (c->pos == c->len) {
		if (c->next < c->end) {
			int r = refill(s, c, err);

			if (r)
				return r;
		} else {
			s->heap[0] = s->heap[--s->heap_len];
		}
	}
	sift_down(s, 0);
	return 1;
}

uint64_t snap_sorter_count(const struct snap_sorter *s)
{
	return s->count;
}

uint64_t snap_sorter_spilled_runs(const struct snap_sorter *s)
{
	return s->nr_runs;
}
