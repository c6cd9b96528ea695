/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "btree-internal.h"
#include "btree-write.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

/*
 * The root (ours) has a single child: it takes the child's contents and
 * the child loses the root's reference.  If the child stays alive (it is
 * shared) its children now have one more referrer, the root.
 */
static int collapse_root(const struct btree_info *info, struct bm_block *root,
			 struct pd_err *err)
{
	void *n = bm_block_data_rw(root);

	return bw_take_node(info, node_child(n, 0), n, err);
}

static int peek_nr(const struct btree_info *info, uint64_t b, uint32_t *nr,
		   struct pd_err *err)
{
	struct bm_block *blk;
	int r = bw_read_node(info, b, &blk, err);

	if (r)
		return r;
	*nr = node_nr_entries(bm_block_data(blk));
	tm_unlock(info->tm, blk);
	return 0;
}

/* Of child i's siblings, the one with more entries: a merge is less likely. */
static int pick_sibling(const struct btree_info *info, const void *p, unsigned i,
			unsigned *j, struct pd_err *err)
{
	uint32_t nl, nrt;
	int r;

	if (i == 0) {
		*j = 1;
		return 0;
	}
	if (i + 1 == node_nr_entries(p)) {
		*j = i - 1;
		return 0;
	}
	r = peek_nr(info, node_child(p, i - 1), &nl, err);
	if (!r)
		r = peek_nr(info, node_child(p, i + 1), &nrt, err);
	if (!r)
		*j = nrt > nl ? i + 1 : i - 1;
	return r;
}

/*
 * Child i (cn, ours) takes all of sibling j's entries (sn, only read) and
 * j leaves p.  The sibling is not copied first: if it stays alive (it is
 * shared) its entries gain cn as a referrer, and it loses p's reference.
 * Unlocks the sibling.
 */
static int merge_sibling(const struct btree_info *info, void *p, unsigned i, unsigned j,
			 void *cn, struct bm_block *s, struct pd_err *err)
{
	const void *sn = bm_block_data(s);
	uint64_t sb = bm_block_location(s);
	uint32_t nc = node_nr_entries(cn), ns = node_nr_entries(sn), count;
	int r;

	r = bw_block_count(info, sb, &count, err);
	if (r) {
		tm_unlock(info->tm, s);
		return r;
	}
	if (j > i) {
		node_move_entries(cn, nc, sn, 0, ns);
	} else {
		node_move_entries(cn, ns, cn, 0, nc);
		node_move_entries(cn, 0, sn, 0, ns);
	}
	node_set_nr_entries(cn, nc + ns);
	tm_unlock(info->tm, s);
	if (count > 1) {
		r = bw_inc_entries(info, cn, j > i ? nc : 0, ns, err);
		if (r)
			return r;
	}
	r = bw_block_dec(info, sb, err);
	if (r)
		return r;
	if (j < i)	/* c now starts where the left sibling did */
		node_set_key(p, i, node_key(p, j));
	node_delete_at(p, j);
	return 0;
}

/*
 * Child i (cn, ours) takes entries from sibling j until it holds the
 * larger half of both; the sibling is shadowed first, and the key in p
 * of whichever node now starts elsewhere follows.
 */
static int borrow_from_sibling(const struct btree_info *info, void *p, unsigned i,
			       unsigned j, void *cn, struct pd_err *err)
{
	struct bm_block *s;
	uint32_t nc = node_nr_entries(cn), ns, k;
	void *sn;
	int r;

	r = bw_shadow_child(info, p, j, &s, err);
	if (r)
		return r;
	sn = bm_block_data_rw(s);
	ns = node_nr_entries(sn);
	k = (nc + ns + 1) / 2 - nc;
	if (j > i) {
		node_move_entries(cn, nc, sn, 0, k);
		node_move_entries(sn, 0, sn, k, ns - k);
		node_set_key(p, j, node_key(sn, 0));
	} else {
		node_move_entries(cn, k, cn, 0, nc);
		node_move_entries(cn, 0, sn, ns - k, k);
		node_set_key(p, i, node_key(cn, 0));
	}
	node_set_nr_entries(cn, nc + k);
	node_set_nr_entries(sn, ns - k);
	tm_unlock(info->tm, s);
	return 0;
}

/*
 * Child i of p (ours) is about to lose an entry: the child shadowed and,
 * if it holds only the minimum, rebalanced with a sibling so that it
 * holds more.
 *
 * Merge when both hold at most 2 * min together (the kernel's
 * threshold), so the merged node has room left.  Otherwise the child
 * takes the larger half, so it stays at or above the minimum after the
 * removal below it, and the sibling keeps at least the minimum.
 */
static int rebalance_child(const struct btree_info *info, void *p, unsigned i,
			   struct bm_block *c, struct pd_err *err)
{
	void *cn = bm_block_data_rw(c);
	struct bm_block *s;
	uint32_t t = node_min_entries(cn), ns;
	unsigned j;
	int r;

	r = pick_sibling(info, p, i, &j, err);
	if (!r)
		r = bw_read_node(info, node_child(p, j), &s, err);
	if (r)
		return r;
	if (node_is_leaf(bm_block_data(s)) != node_is_leaf(cn)) {
		r = pd_err_set(err, -EILSEQ,
			       "btree siblings %" PRIu64 " and %" PRIu64 " are at different depths",
			       bm_block_location(s), bm_block_location(c));
		tm_unlock(info->tm, s);
		return r;
	}
	ns = node_nr_entries(bm_block_data(s));
	if (node_nr_entries(cn) + ns <= 2 * t)
		return merge_sibling(info, p, i, j, cn, s, err);
	tm_unlock(info->tm, s);
	return borrow_from_sibling(info, p, i, j, cn, err);
}

/*
 * Returns child i of p (ours) write-locked and ready to lose an entry;
 * p may have lost an entry (a merge).
 */
static int prepare_child(const struct btree_info *info, struct bm_block *parent,
			 unsigned i, struct bm_block **out, struct pd_err *err)
{
	void *p = bm_block_data_rw(parent);
	struct bm_block *c;
	const void *cn;
	int r;

	r = bw_shadow_child(info, p, i, &c, err);
	if (r)
		return r;
	cn = bm_block_data(c);
	if (node_nr_entries(cn) > node_min_entries(cn) || node_nr_entries(p) < 2) {
		*out = c;
		return 0;
	}
	r = rebalance_child(info, p, i, c, err);
	if (r) {
		tm_unlock(info->tm, c);
		return r;
	}
	*out = c;
	return 0;
}

int btree_remove(struct btree_info *info, uint64_t root, uint64_t key,
		 uint64_t *new_root, struct pd_err *err)
{
	struct bm_block *cur = NULL, *child = NULL;
	bool at_root = true;
	uint64_t nroot;
	int r;

	r = bw_check_value_size(info, err);
	if (r)
		return r;
	*new_root = root;

	/* absent keys must not cost a shadowed path or a rebalanced tree */
	r = btree_lookup(tm_bm(info->tm), root, info->vt.size, key, NULL, err);
	if (r == -ENODATA)
		return pd_err_set(err, r, "key %" PRIu64 " is not in the btree",
				  key);
	if (r)
		return r;

	r = bw_shadow_node(info, root, &cur, err);
	if (r)
		return r;
	nroot = bm_block_location(cur);

	/* each step descends a level or removes one (collapse): bounded */
	for (unsigned steps = 0;; steps++) {
		void *n = bm_block_data_rw(cur);
		int i;

		if (steps >= 3 * BTREE_MAX_DEPTH) {
			r = btree_too_deep(root, err);
			goto out;
		}
		i = node_lower_bound(n, key);
		if (node_is_leaf(n)) {
			if (i < 0 || node_key(n, (unsigned)i) != key) {
				r = pd_err_set(err, -EILSEQ,
					       "btree rooted at %" PRIu64 ": key %" PRIu64 " found by lookup but not on the write path",
					       root, key);
				goto out;
			}
			r = bw_value_dec(info, node_value(n, (unsigned)i), err);
			if (r)
				goto out;
			node_delete_at(n, (unsigned)i);
			break;
		}
		if (at_root && node_nr_entries(n) == 1) {
			r = collapse_root(info, cur, err);
			if (r)
				goto out;
			continue;
		}
		if (i < 0) {
			r = pd_err_set(err, -EILSEQ,
				       "btree node %" PRIu64 ": key %" PRIu64 " below its first key",
				       bm_block_location(cur), key);
			goto out;
		}
		r = prepare_child(info, cur, (unsigned)i, &child, err);
		if (r)
			goto out;
		if (at_root && node_nr_entries(n) == 1) {
			/* the merge left the root one child: collapse it first */
			tm_unlock(info->tm, child);
			child = NULL;
			continue;
		}
		tm_unlock(info->tm, cur);
		cur = child;
		child = NULL;
		at_root = false;
	}
	*new_root = nroot;

out:
	bw_unlock(info, child);
	bw_unlock(info, cur);
	return r;
}
