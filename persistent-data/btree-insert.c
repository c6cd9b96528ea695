/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "btree-internal.h"
#include "btree-write.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

/*
 * The full root's entries go to two new children and the root block,
 * already ours, becomes an internal node over them: the root does not
 * move, which callers that store the root elsewhere count on.
 */
static int split_beneath(const struct btree_info *info, struct bm_block *root,
			 struct pd_err *err)
{
	struct bm_block *left = NULL, *right = NULL;
	void *n = bm_block_data_rw(root), *ln, *rn;
	uint32_t nr = node_nr_entries(n), nl = nr / 2;
	int r;

	r = bw_new_node_like(info, n, &left, err);
	if (r)
		return r;
	r = bw_new_node_like(info, n, &right, err);
	if (r) {
		tm_unlock(info->tm, left);
		tm_dec(info->tm, bm_block_location(left));
		return r;
	}
	ln = bm_block_data_rw(left);
	rn = bm_block_data_rw(right);
	node_move_entries(ln, 0, n, 0, nl);
	node_set_nr_entries(ln, nl);
	node_move_entries(rn, 0, n, nl, nr - nl);
	node_set_nr_entries(rn, nr - nl);

	/* the root may have been a leaf with another layout: start afresh */
	memset(n, 0, MD_BLOCK_SIZE);
	node_init(n, false, 8);
	node_set_key(n, 0, node_key(ln, 0));
	node_set_child(n, 0, bm_block_location(left));
	node_set_key(n, 1, node_key(rn, 0));
	node_set_child(n, 1, bm_block_location(right));
	node_set_nr_entries(n, 2);

	tm_unlock(info->tm, left);
	tm_unlock(info->tm, right);
	return 0;
}

/*
 * The full node *cur (child *pidx of parent) keeps its lower half; a new
 * right sibling takes the upper half.  *cur and *pidx end on the node
 * that key belongs to; the other one is unlocked.
 */
static int split_one_into_two(const struct btree_info *info, struct bm_block *parent,
			      unsigned *pidx, struct bm_block **cur, uint64_t key,
			      struct pd_err *err)
{
	void *p = bm_block_data_rw(parent), *ln = bm_block_data_rw(*cur), *rn;
	uint32_t nr = node_nr_entries(ln), nl = nr / 2;
	struct bm_block *right;
	uint8_t loc_le[8];
	int r;

	/* the parent was split on the way down if it was full */
	if (node_nr_entries(p) >= node_max_entries(p))
		return pd_err_set(err, -EILSEQ, "btree insert: full parent node %" PRIu64,
				  bm_block_location(parent));
	r = bw_new_node_like(info, ln, &right, err);
	if (r)
		return r;
	rn = bm_block_data_rw(right);
	node_move_entries(rn, 0, ln, nl, nr - nl);
	node_set_nr_entries(rn, nr - nl);
	node_set_nr_entries(ln, nl);

	store_le64(loc_le, bm_block_location(right));
	node_insert_at(p, *pidx + 1, node_key(rn, 0), loc_le);

	if (key >= node_key(rn, 0)) {
		tm_unlock(info->tm, *cur);
		*cur = right;
		(*pidx)++;
	} else {
		tm_unlock(info->tm, right);
	}
	return 0;
}

static int leaf_insert(const struct btree_info *info, void *n, int i, uint64_t key,
		       const void *value, bool *inserted, struct pd_err *err)
{
	if (i >= 0 && node_key(n, (unsigned)i) == key) {
		void *old = node_value(n, (unsigned)i);

		if (!bw_values_equal(info, old, value)) {
			int r = bw_value_dec(info, old, err);

			if (r)
				return r;
		}
		memcpy(old, value, info->vt.size);
		*inserted = false;
		return 0;
	}
	node_insert_at(n, (unsigned)(i + 1), key, value);
	*inserted = true;
	return 0;
}

/*
 * Top-down: every node on the path is shadowed, and split before we step
 * into it if it is full (unless key already exists: then no entry is
 * added), so a parent always has room for the entry of a split child.
 * At most three locks: parent, current node, new sibling.
 *
 * Returns the leaf key belongs in, write-locked, and the exclusive upper
 * bound of the keys it may hold (UINT64_MAX on the right edge): a key
 * below *hi that is not below the leaf's range could only go here.
 */
static int descend_for_insert(struct btree_info *info, uint64_t root, uint64_t key,
			      bool exists, uint64_t *new_root, struct bm_block **leaf,
			      uint64_t *hi, struct pd_err *err)
{
	struct bm_block *parent = NULL, *cur = NULL;
	uint64_t b = root, nroot = 0, bound = UINT64_MAX;
	unsigned pidx = 0;
	int r;

	for (unsigned depth = 0;; depth++) {
		void *n;
		int i;

		if (depth >= BTREE_MAX_DEPTH) {
			r = btree_too_deep(root, err);
			goto out;
		}
		r = bw_shadow_node(info, b, &cur, err);
		if (r)
			goto out;
		if (parent)
			node_set_child(bm_block_data_rw(parent), pidx, bm_block_location(cur));
		else
			nroot = bm_block_location(cur);

		n = bm_block_data_rw(cur);
		if (node_nr_entries(n) == node_max_entries(n) && !exists) {
			if (parent)
				r = split_one_into_two(info, parent, &pidx, &cur, key, err);
			else
				r = split_beneath(info, cur, err);
			if (r)
				goto out;
			n = bm_block_data_rw(cur);
		}
		if (parent) {
			const void *pn = bm_block_data(parent);

			/* a split may have put a new sibling right after us */
			if (pidx + 1 < node_nr_entries(pn) && node_key(pn, pidx + 1) < bound)
				bound = node_key(pn, pidx + 1);
			tm_unlock(info->tm, parent);
			parent = NULL;
		}

		if (node_is_leaf(n)) {
			*leaf = cur;
			*new_root = nroot;
			*hi = bound;
			return 0;
		}
		i = node_lower_bound(n, key);
		if (i < 0) {
			/* key[0] is a lower bound for child 0: lower it */
			node_set_key(n, 0, key);
			i = 0;
		}
		b = node_child(n, (unsigned)i);
		parent = cur;
		cur = NULL;
		pidx = (unsigned)i;
	}

out:
	bw_unlock(info, cur);
	bw_unlock(info, parent);
	return r;
}

/*
 * Overwriting a key adds no entry: no node on the path needs room, so
 * none is split (the kernel splits anyway; a merge overwriting many keys
 * would almost double the leaves).  The look-up reads the path the insert
 * then shadows.
 */
static int key_exists(struct btree_info *info, uint64_t root, uint64_t key, bool *exists,
		      struct pd_err *err)
{
	int r = btree_lookup(tm_bm(info->tm), root, info->vt.size, key, NULL, err);

	if (r && r != -ENODATA)
		return r;
	*exists = !r;
	return 0;
}

int btree_insert(struct btree_info *info, uint64_t root, uint64_t key,
		 const void *value_le, uint64_t *new_root, bool *inserted,
		 struct pd_err *err)
{
	struct bm_block *leaf;
	uint64_t hi;
	bool dummy, exists;
	void *n;
	int r;

	r = bw_check_value_size(info, err);
	if (!r)
		r = key_exists(info, root, key, &exists, err);
	if (!r)
		r = descend_for_insert(info, root, key, exists, new_root, &leaf, &hi, err);
	if (r)
		return r;
	n = bm_block_data_rw(leaf);
	r = leaf_insert(info, n, node_lower_bound(n, key), key, value_le,
			inserted ? inserted : &dummy, err);
	tm_unlock(info->tm, leaf);
	return r;
}

/*
 * keys[0 .. nr) (sorted, all below hi) into leaf n, as many as fit: all
 * of them but those new keys that would overflow it.  Merged from the
 * back, so each entry moves once.
 */
static int leaf_merge(const struct btree_info *info, void *n, const uint64_t *keys,
		      const uint8_t *values, unsigned nr, unsigned *taken,
		      uint64_t *added, struct pd_err *err)
{
	uint32_t have = node_nr_entries(n), room = node_max_entries(n) - have, vs = info->vt.size;
	uint8_t *vals = node_values(n);
	unsigned take = 0, add = 0;
	int a, w, k;

	/* how many keys go in, and how many of them are new */
	for (uint32_t i = 0; take < nr; take++) {
		while (i < have && node_key(n, i) < keys[take])
			i++;
		if (i < have && node_key(n, i) == keys[take])
			continue;
		if (add == room)
			break;
		add++;
	}

	a = (int)have - 1;
	w = (int)(have + add) - 1;
	for (k = (int)take - 1; k >= 0; w--) {
		uint64_t key = keys[k];
		const uint8_t *v = values + (size_t)k * vs;

		if (a >= 0 && node_key(n, (unsigned)a) > key) {
			if (w != a) {
				node_set_key(n, (unsigned)w, node_key(n, (unsigned)a));
				memcpy(vals + (size_t)w * vs, vals + (size_t)a * vs, vs);
			}
			a--;
			continue;
		}
		if (a >= 0 && node_key(n, (unsigned)a) == key) {
			void *old = vals + (size_t)a * vs;
			/* an equal value keeps its one reference: the new one is surplus */
			int r = bw_value_dec(info, bw_values_equal(info, old, v) ? v : old, err);

			if (r)
				return r;
			a--;
		}
		node_set_key(n, (unsigned)w, key);
		memcpy(vals + (size_t)w * vs, v, vs);
		k--;
	}
	node_set_nr_entries(n, have + add);
	*taken = take;
	*added += add;
	return 0;
}

int btree_insert_many(struct btree_info *info, uint64_t root, const uint64_t *keys,
		      const void *values_le, unsigned nr, uint64_t *new_root,
		      uint64_t *added, struct pd_err *err)
{
	const uint8_t *values = values_le;
	int r;

	r = bw_check_value_size(info, err);
	if (r)
		return r;
	for (unsigned i = 1; i < nr; i++)
		if (keys[i] <= keys[i - 1])
			return pd_err_set(err, -EINVAL,
					  "btree_insert_many: keys not strictly increasing at %u", i);
	*added = 0;
	*new_root = root;
	for (unsigned done = 0; done < nr;) {
		struct bm_block *leaf;
		unsigned run = 0, taken;
		uint64_t hi;
		bool exists;

		r = key_exists(info, *new_root, keys[done], &exists, err);
		if (!r)
			r = descend_for_insert(info, *new_root, keys[done], exists, new_root,
					       &leaf, &hi, err);
		if (r)
			return r;
		while (done + run < nr && keys[done + run] < hi)
			run++;
		r = leaf_merge(info, bm_block_data_rw(leaf), keys + done,
			       values + (size_t)done * info->vt.size, run, &taken, added, err);
		tm_unlock(info->tm, leaf);
		if (r)
			return r;
		if (!taken)	/* the look-up and the descent disagree */
			return pd_err_set(err, -EILSEQ,
					  "btree insert: no room for key %" PRIu64 " in leaf",
					  keys[done]);
		done += taken;
	}
	return 0;
}
