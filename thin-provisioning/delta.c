/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "thin-provisioning/delta.h"
#include "persistent-data/btree.h"
#include "persistent-data/walk-cap.h"
#include "thin-provisioning/thin-disk.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

/*----------------------------------------------------------------
 * One tree, as a stack of locked nodes
 *--------------------------------------------------------------*/

struct frame {
	struct bm_block *blk;
	const uint8_t *node;
	uint32_t idx, nr;
	unsigned level;		/* 0 = root */
	bool leaf;
};

struct side {
	struct bm *bm;
	struct frame fr[BTREE_MAX_DEPTH];
	int top;		/* -1: nothing left */
	unsigned depth;		/* levels down the leftmost path */
	struct walk_cap *cap;	/* shared by every side of one delta */
	uint64_t last_key;
	bool has_last;
	struct delta_stats *st;
};

/* A checked-node mark in the block's aux word, so a cached node is checked once. */
#define NODE_CHECKED 0x64656c74u

static int lock_node(struct side *s, uint64_t b, struct bm_block **out, struct pd_err *err)
{
	static const struct btree_shape_opts shape = { .value_size = THIN_MAPPING_VALUE_SIZE };
	struct bm_block *blk;
	uint32_t *aux;
	int r;

	if (b >= bm_nr_blocks(s->bm))
		return pd_err_set(err, -EILSEQ, "mapping tree node %" PRIu64 " is beyond the metadata device",
				  b);
	r = bm_read_lock(s->bm, b, &btree_node_validator, &blk, err);
	if (r)
		return r;
	aux = bm_block_aux(blk);
	if (*aux != NODE_CHECKED) {
		r = btree_node_check_shape(bm_block_data(blk), b, &shape, err);
		if (r) {
			bm_unlock(blk);
			return r;
		}
		*aux = NODE_CHECKED;
	}
	if (s->st)
		s->st->nodes_read++;
	*out = blk;
	return 0;
}

/* The leaves under a node about to be walked: read them in one batch. */
static void prefetch_children(struct side *s, const struct frame *f)
{
	uint64_t blocks[256];
	const uint8_t *vals = node_values_c(f->node);
	unsigned n = f->nr < 256 ? f->nr : 256;

	for (unsigned i = 0; i < n; i++)
		blocks[i] = load_le64(vals + 8u * i);
	bm_prefetch(s->bm, blocks, n);
}

static int side_push(struct side *s, uint64_t b, unsigned level, struct pd_err *err)
{
	struct frame *f;
	int r;

	if (s->top + 1 >= BTREE_MAX_DEPTH)
		return pd_err_set(err, -ELOOP, "mapping tree too deep (a cycle?) at block %" PRIu64,
				  b);
	f = &s->fr[s->top + 1];
	r = lock_node(s, b, &f->blk, err);
	if (r)
		return r;
	f->node = bm_block_data(f->blk);
	f->idx = 0;
	f->nr = node_nr_entries(f->node);
	f->leaf = node_is_leaf(f->node);
	f->level = level;
	s->top++;
	if (!f->leaf && s->depth && level + 1 == s->depth)
		prefetch_children(s, f);
	return 0;
}

static void side_release(struct side *s)
{
	while (s->top >= 0)
		bm_unlock(s->fr[s->top--].blk);
}

/*
 * Nodes are counted against the cap as the walk opens them (the root
 * here, the others in side_expand); the probe of the leftmost path below
 * is not counted, it is at most BTREE_MAX_DEPTH reads.
 */
static int side_init(struct side *s, struct bm *bm, uint64_t root, struct walk_cap *cap,
		     struct delta_stats *st, struct pd_err *err)
{
	int r;

	memset(s, 0, sizeof(*s));
	s->bm = bm;
	s->top = -1;
	s->st = st;
	s->cap = cap;
	r = walk_cap_visit(cap, "mapping tree", root, err);
	if (r)
		return r;
	r = side_push(s, root, 0, err);
	if (r)
		return r;
	/* the depth, down the leftmost path (a hint only: which side to open first) */
	while (!s->fr[s->top].leaf && s->fr[s->top].nr) {
		const struct frame *f = &s->fr[s->top];

		r = side_push(s, load_le64(node_values_c(f->node)), f->level + 1, err);
		if (r)
			return r;
	}
	s->depth = s->fr[s->top].level;
	while (s->top > 0)
		bm_unlock(s->fr[s->top--].blk);
	if (s->depth == 1)
		prefetch_children(s, &s->fr[0]);
	return 0;
}

enum front_kind { FRONT_END, FRONT_ENTRY, FRONT_SUBTREE };

struct front {
	enum front_kind kind;
	uint64_t key;		/* entry: its key; subtree: its parent's key for it */
	uint64_t value;		/* entry: block_time; subtree: its block */
	unsigned height;	/* subtree: levels above the leaves */
};

/* Pops finished nodes and says what comes next. */
static void side_front(struct side *s, struct front *fr)
{
	const struct frame *f;

	while (s->top >= 0 && s->fr[s->top].idx >= s->fr[s->top].nr)
		bm_unlock(s->fr[s->top--].blk);
	if (s->top < 0) {
		fr->kind = FRONT_END;
		return;
	}
	f = &s->fr[s->top];
	fr->value = load_le64((const uint8_t *)node_values_c(f->node) + 8u * f->idx);
	if (f->leaf) {
		fr->kind = FRONT_ENTRY;
		fr->key = node_key(f->node, f->idx);
	} else {
		fr->kind = FRONT_SUBTREE;
		fr->key = node_key(f->node, f->idx);	/* a lower bound of its keys */
		fr->height = s->depth > f->level + 1 ? s->depth - f->level - 1 : 0;
	}
}

/* Opens the subtree in front. */
static int side_expand(struct side *s, uint64_t block, struct pd_err *err)
{
	struct frame *f = &s->fr[s->top];
	int r = walk_cap_visit(s->cap, "mapping tree", block, err);

	if (r)
		return r;
	f->idx++;
	return side_push(s, block, f->level + 1, err);
}

static inline int side_take_key(struct side *s, uint64_t key, struct pd_err *err)
{
	if (s->has_last && key <= s->last_key)
		return pd_err_set(err, -EILSEQ, "mapping tree keys out of order at block %" PRIu64,
				  bm_block_location(s->fr[s->top].blk));
	s->last_key = key;
	s->has_last = true;
	return 0;
}

/*----------------------------------------------------------------
 * Steps, one virtual block at a time
 *--------------------------------------------------------------*/

struct steps {
	delta_step_fn fn;
	void *ctx;
	bool have;
	struct delta_step cur;
};

static int steps_flush(struct steps *st)
{
	if (!st->have)
		return 0;
	st->have = false;
	return st->fn(st->ctx, &st->cur);
}

static inline int steps_add(struct steps *st, enum delta_kind kind, uint64_t key,
		     uint64_t ld, uint64_t rd)
{
	struct delta_step *c = &st->cur;
	int r;

	if (st->have && c->kind == kind && key == c->begin + c->len &&
	    (kind == DELTA_RIGHT_ONLY || ld == c->left_data + c->len) &&
	    (kind == DELTA_LEFT_ONLY || rd == c->right_data + c->len)) {
		c->len++;
		return 0;
	}
	r = steps_flush(st);
	if (r)
		return r;
	st->have = true;
	c->kind = kind;
	c->begin = key;
	c->len = 1;
	c->left_data = ld;
	c->right_data = rd;
	return 0;
}

/*
 * A subtree both trees share: every mapping in it is the same.  It is read
 * once, with a side of its own; keys continue the order of both trees.
 */
static int shared_subtree(struct bm *bm, struct side *l, struct side *r, uint64_t block,
			  struct steps *st, struct delta_stats *stats, struct pd_err *err)
{
	struct side s;
	struct front f;
	int ret;

	ret = side_init(&s, bm, block, l->cap, stats, err);
	s.last_key = l->last_key > r->last_key ? l->last_key : r->last_key;
	s.has_last = l->has_last || r->has_last;
	if (stats)
		stats->shared_subtrees++;
	while (!ret) {
		side_front(&s, &f);
		if (f.kind == FRONT_END)
			break;
		if (f.kind == FRONT_SUBTREE) {
			ret = side_expand(&s, f.value, err);
			continue;
		}
		/* a whole leaf at a time; its keys ascend, only the first is checked */
		struct frame *fr = &s.fr[s.top];
		const uint8_t *vals = node_values_c(fr->node);

		if (stats)
			stats->shared_mappings += fr->nr - fr->idx;
		ret = side_take_key(&s, node_key(fr->node, fr->idx), err);
		for (; fr->idx < fr->nr && !ret; fr->idx++) {
			uint64_t k = node_key(fr->node, fr->idx);
			uint64_t d = block_time_block(load_le64(vals + 8u * fr->idx));

			ret = steps_add(st, DELTA_SAME, k, d, d);
		}
		if (!ret)
			s.last_key = node_key(fr->node, fr->nr - 1);
	}
	side_release(&s);
	if (!ret && s.has_last) {
		l->last_key = r->last_key = s.last_key;
		l->has_last = r->has_last = true;
	}
	return ret;
}

/*
 * Leaves a whole run at a time.  A node's keys ascend (checked when it is
 * locked), so of a run taken from one leaf only its first key is checked
 * against what the side took before; the rest follow.
 */

/* The first index from i on whose key is limit or above (nr if none). */
static inline uint32_t run_end(const struct frame *f, uint32_t i, uint64_t limit)
{
	uint32_t hi = f->nr;

	if (node_key(f->node, hi - 1) < limit)
		return hi;
	while (i < hi) {
		uint32_t mid = i + (hi - i) / 2;

		if (node_key(f->node, mid) < limit)
			i = mid + 1;
		else
			hi = mid;
	}
	return i;
}

/* Entries [f->idx, end) of one tree's current leaf, which the other tree lacks. */
static inline int take_alone(struct side *s, struct frame *f, uint32_t end, enum delta_kind kind,
			     struct steps *st, struct pd_err *err)
{
	const uint8_t *vals = node_values_c(f->node);
	struct delta_step *c = &st->cur;
	uint32_t i = f->idx;
	int ret;

	if (i >= end)
		return 0;
	ret = side_take_key(s, node_key(f->node, i), err);
	while (!ret && i < end) {
		/* a run of consecutive keys and data blocks, in registers */
		uint64_t k = node_key(f->node, i);
		uint64_t d = block_time_block(load_le64(vals + 8u * i));
		uint32_t j = i + 1;

		while (j < end && node_key(f->node, j) == k + (j - i) &&
		       block_time_block(load_le64(vals + 8u * j)) == d + (j - i))
			j++;
		if (st->have && c->kind == kind && k == c->begin + c->len &&
		    d == (kind == DELTA_LEFT_ONLY ? c->left_data : c->right_data) + c->len) {
			c->len += j - i;
		} else {
			ret = kind == DELTA_LEFT_ONLY ? steps_add(st, kind, k, d, 0) :
							steps_add(st, kind, k, 0, d);
			c->len += j - i - 1;
		}
		i = j;
	}
	if (!ret) {
		s->last_key = node_key(f->node, end - 1);
		f->idx = end;
	}
	return ret;
}

/* Entries with the same keys at the current positions of both leaves. */
static inline int take_pairs(struct side *l, struct frame *a, struct side *r, struct frame *b,
			     struct steps *st, struct pd_err *err)
{
	const uint8_t *av = node_values_c(a->node), *bv = node_values_c(b->node);
	uint32_t i = a->idx, j = b->idx;
	uint64_t k = node_key(a->node, i);
	int ret;

	ret = side_take_key(l, k, err);
	if (!ret)
		ret = side_take_key(r, k, err);
	while (!ret) {
		uint64_t ld = block_time_block(load_le64(av + 8u * i));
		uint64_t rd = block_time_block(load_le64(bv + 8u * j));

		ret = steps_add(st, ld == rd ? DELTA_SAME : DELTA_DIFFERENT, k, ld, rd);
		i++;
		j++;
		if (i >= a->nr || j >= b->nr || node_key(a->node, i) != node_key(b->node, j))
			break;
		k = node_key(a->node, i);
	}
	if (!ret) {
		l->last_key = r->last_key = k;
		a->idx = i;
		b->idx = j;
	}
	return ret;
}

/*
 * The entries of the current leaves of l and r, merged by key, until one
 * of the leaves ends.  Either may be NULL: that tree has ended, or what
 * comes next in it starts at key limit or above; the other's entries
 * below limit are then taken alone.
 */
static int merge_leaves(struct side *l, struct side *r, uint64_t limit, struct steps *st,
			struct pd_err *err)
{
	struct frame *a = l ? &l->fr[l->top] : NULL;
	struct frame *b = r ? &r->fr[r->top] : NULL;
	int ret = 0;

	if (!b)
		return take_alone(l, a, run_end(a, a->idx, limit), DELTA_LEFT_ONLY, st, err);
	if (!a)
		return take_alone(r, b, run_end(b, b->idx, limit), DELTA_RIGHT_ONLY, st, err);
	while (!ret && a->idx < a->nr && b->idx < b->nr) {
		uint64_t ak = node_key(a->node, a->idx);
		uint64_t bk = node_key(b->node, b->idx);

		if (ak < bk)
			ret = take_alone(l, a, run_end(a, a->idx, bk), DELTA_LEFT_ONLY, st, err);
		else if (bk < ak)
			ret = take_alone(r, b, run_end(b, b->idx, ak), DELTA_RIGHT_ONLY, st, err);
		else
			ret = take_pairs(l, a, r, b, st, err);
	}
	return ret;
}

int thin_delta_walk(struct bm *bm, uint64_t root1, uint64_t root2,
		    delta_step_fn fn, void *ctx, struct delta_stats *stats,
		    struct pd_err *err)
{
	struct side l, r;
	struct steps st = { .fn = fn, .ctx = ctx };
	struct front fl, fr;
	struct walk_cap cap;
	int ret;

	/* two trees of at most as many nodes as the device has blocks */
	walk_cap_init(&cap, 2 * bm_nr_blocks(bm));
	if (stats)
		memset(stats, 0, sizeof(*stats));
	l.top = r.top = -1;
	if (root1 == root2) {
		/* one tree: the same as itself, read once */
		memset(&l, 0, sizeof(l));
		memset(&r, 0, sizeof(r));
		l.cap = &cap;
		ret = shared_subtree(bm, &l, &r, root1, &st, stats, err);
		return ret ? ret : steps_flush(&st);
	}
	ret = side_init(&l, bm, root1, &cap, stats, err);
	if (!ret)
		ret = side_init(&r, bm, root2, &cap, stats, err);
	while (!ret) {
		side_front(&l, &fl);
		side_front(&r, &fr);
		if (fl.kind == FRONT_END && fr.kind == FRONT_END)
			break;
		if (fl.kind == FRONT_SUBTREE && fr.kind == FRONT_SUBTREE && fl.value == fr.value) {
			l.fr[l.top].idx++;
			r.fr[r.top].idx++;
			ret = shared_subtree(bm, &l, &r, fl.value, &st, stats, err);
			continue;
		}
		/*
		 * Entries that come before the other tree's next subtree are
		 * taken alone; otherwise the subtree further behind is opened
		 * (the taller one on a tie): its children may be the other
		 * tree's next subtree.
		 */
		if (fl.kind == FRONT_ENTRY && fr.kind == FRONT_SUBTREE && fl.key < fr.key) {
			ret = merge_leaves(&l, NULL, fr.key, &st, err);
			continue;
		}
		if (fr.kind == FRONT_ENTRY && fl.kind == FRONT_SUBTREE && fr.key < fl.key) {
			ret = merge_leaves(NULL, &r, fl.key, &st, err);
			continue;
		}
		if (fl.kind == FRONT_SUBTREE &&
		    (fr.kind != FRONT_SUBTREE || fl.key < fr.key ||
		     (fl.key == fr.key && fl.height >= fr.height))) {
			ret = side_expand(&l, fl.value, err);
			continue;
		}
		if (fr.kind == FRONT_SUBTREE) {
			ret = side_expand(&r, fr.value, err);
			continue;
		}
		/* entries (or the end) on both sides: whole leaves at a time */
		ret = merge_leaves(fl.kind == FRONT_END ? NULL : &l, fr.kind == FRONT_END ? NULL : &r,
				   UINT64_MAX, &st, err);
	}
	if (!ret)
		ret = steps_flush(&st);
	side_release(&l);
	side_release(&r);
	return ret;
}
