/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "btree-write.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * Invariants kept by every function here (and relied upon by them):
 *  - a parent's key[i] is a lower bound of child i's keys, and child i's
 *    keys are below key[i+1];
 *  - every non-root node holds at least max_entries / 3 entries;
 *  - a node we hold write-locked after shadow_node() is ours alone
 *    (count 1), so entries may move between such nodes without touching
 *    any reference count.
 */

/*----------------------------------------------------------------
 * Node helpers
 *--------------------------------------------------------------*/

static uint32_t nr_of(const void *n)
{
	return node_nr_entries(n);
}

static void set_nr(void *n, uint32_t nr)
{
	node_header(n)->nr_entries = cpu_to_le32(nr);
}

static uint32_t max_of(const void *n)
{
	return le32_to_cpu(node_header_c(n)->max_entries);
}

static uint32_t vsize_of(const void *n)
{
	return le32_to_cpu(node_header_c(n)->value_size);
}

static uint32_t min_entries(const void *n)
{
	return max_of(n) / 3u;
}

static void *value_at(void *n, unsigned i)
{
	return (uint8_t *)node_values(n) + (size_t)i * vsize_of(n);
}

static uint64_t child_at(const void *n, unsigned i)
{
	return load_le64(node_value_c(n, i, 8));
}

static void set_child(void *n, unsigned i, uint64_t b)
{
	store_le64(value_at(n, i), b);
}

static void node_init(void *n, bool leaf, uint32_t value_size)
{
	struct btree_node_header_disk *h = node_header(n);

	h->flags = cpu_to_le32(leaf ? BTREE_FLAG_LEAF : BTREE_FLAG_INTERNAL);
	h->nr_entries = cpu_to_le32(0);
	h->max_entries = cpu_to_le32(btree_max_entries(value_size));
	h->value_size = cpu_to_le32(value_size);
	h->padding = cpu_to_le32(0);
}

/* Copies count entries; src and dst may be the same node (overlap is fine). */
static void move_entries(void *dst, unsigned di, void *src, unsigned si,
			 unsigned count)
{
	uint32_t vs = vsize_of(dst);

	memmove((uint8_t *)dst + BTREE_NODE_HEADER_SIZE + 8u * di,
		(uint8_t *)src + BTREE_NODE_HEADER_SIZE + 8u * si, 8u * (size_t)count);
	memmove(value_at(dst, di), value_at(src, si), (size_t)vs * count);
}

/* The caller makes sure there is room. */
static void insert_at(void *n, unsigned i, uint64_t key, const void *value)
{
	uint32_t nr = nr_of(n);

	move_entries(n, i + 1, n, i, nr - i);
	node_set_key(n, i, key);
	memcpy(value_at(n, i), value, vsize_of(n));
	set_nr(n, nr + 1);
}

static void delete_at(void *n, unsigned i)
{
	uint32_t nr = nr_of(n);

	move_entries(n, i, n, i + 1, nr - i - 1);
	set_nr(n, nr - 1);
}

/* Largest i with key[i] <= k, or -1. */
static int lower_bound(const void *n, uint64_t k)
{
	int lo = -1, hi = (int)nr_of(n);

	while (hi - lo > 1) {
		int mid = lo + (hi - lo) / 2;

		if (node_key(n, (unsigned)mid) <= k)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static bool values_equal(const struct btree_info *info, const void *a, const void *b)
{
	if (info->vt.equal)
		return info->vt.equal(info->vt.context, a, b);
	return !memcmp(a, b, info->vt.size);
}

static int check_value_size(const struct btree_info *info, struct pd_err *err)
{
	if (!info->vt.size || btree_max_entries(info->vt.size) < 3)
		return pd_err_set(err, -EINVAL, "btree value size %u is not supported",
				  info->vt.size);
	return 0;
}

/*
 * The write side moves entries by max_entries slots and mixes nodes of
 * one tree, so it needs the exact layout of section 4, not just one the
 * validator tolerates.
 */
static int check_node(const struct btree_info *info, const void *n, uint64_t b,
		      struct pd_err *err)
{
	uint32_t flags = le32_to_cpu(node_header_c(n)->flags);
	uint32_t vs = flags == BTREE_FLAG_LEAF ? info->vt.size : 8u;

	if (flags != BTREE_FLAG_LEAF && flags != BTREE_FLAG_INTERNAL)
		return pd_err_set(err, -EILSEQ, "unknown node type (block %llu)",
				  (unsigned long long)b);
	if (vsize_of(n) != vs || max_of(n) != btree_max_entries(vs))
		return pd_err_set(err, -EILSEQ,
				  "btree node %llu has value size %u and max entries %u, expected %u and %u",
				  (unsigned long long)b, vsize_of(n), max_of(n), vs,
				  btree_max_entries(vs));
	if (flags == BTREE_FLAG_INTERNAL && !nr_of(n))
		return pd_err_set(err, -EILSEQ, "internal node with no entries (block %llu)",
				  (unsigned long long)b);
	return 0;
}

static int too_deep(uint64_t root, struct pd_err *err)
{
	return pd_err_set(err, -EILSEQ,
			  "btree rooted at block %llu is deeper than %u levels (cycle?)",
			  (unsigned long long)root, BTREE_MAX_DEPTH);
}

/*----------------------------------------------------------------
 * Reference counting
 *--------------------------------------------------------------*/

static int value_dec(const struct btree_info *info, const void *v, struct pd_err *err)
{
	int r;

	if (!info->vt.dec)
		return 0;
	r = info->vt.dec(info->vt.context, v);
	if (r)
		return pd_err_set(err, r, "btree value type: dropping a reference failed");
	return 0;
}

static int block_inc(const struct btree_info *info, uint64_t b, struct pd_err *err)
{
	int r = tm_inc(info->tm, b);

	if (r)
		return pd_err_set(err, r, "metadata space map: cannot increment block %llu",
				  (unsigned long long)b);
	return 0;
}

static int block_dec(const struct btree_info *info, uint64_t b, struct pd_err *err)
{
	int r = tm_dec(info->tm, b);

	if (r)
		return pd_err_set(err, r, "metadata space map: cannot decrement block %llu",
				  (unsigned long long)b);
	return 0;
}

static int block_count(const struct btree_info *info, uint64_t b, uint32_t *count,
		       struct pd_err *err)
{
	int r = tm_ref(info->tm, b, count);

	if (r)
		return pd_err_set(err, r, "metadata space map: no count for block %llu",
				  (unsigned long long)b);
	if (!*count)
		return pd_err_set(err, -EILSEQ,
				  "metadata block %llu is in use but has a reference count of 0",
				  (unsigned long long)b);
	return 0;
}

/*
 * Entries [first, first + count) of n gained a referrer: n itself, next
 * to the node they were copied from.
 */
static int inc_entries(const struct btree_info *info, void *n, unsigned first,
		       unsigned count, struct pd_err *err)
{
	int r;

	for (unsigned i = first; i < first + count; i++) {
		if (node_is_leaf(n)) {
			if (!info->vt.inc)
				return 0;
			r = info->vt.inc(info->vt.context, value_at(n, i));
			if (r)
				return pd_err_set(err, r,
						  "btree value type: taking a reference failed");
		} else {
			r = block_inc(info, child_at(n, i), err);
			if (r)
				return r;
		}
	}
	return 0;
}

/*----------------------------------------------------------------
 * Locking nodes
 *--------------------------------------------------------------*/

static int read_node(const struct btree_info *info, uint64_t b,
		     struct bm_block **out, struct pd_err *err)
{
	int r = tm_read_lock(info->tm, b, &btree_node_validator, out, err);

	if (r)
		return r;
	r = check_node(info, bm_block_data(*out), b, err);
	if (r) {
		tm_unlock(info->tm, *out);
		return r;
	}
	return 0;
}

/* A writable node that is ours alone; a shared original keeps its children. */
static int shadow_node(const struct btree_info *info, uint64_t b,
		       struct bm_block **out, struct pd_err *err)
{
	bool inc;
	void *n;
	int r;

	r = tm_shadow(info->tm, b, &btree_node_validator, out, &inc, err);
	if (r)
		return r;
	n = bm_block_data_rw(*out);
	r = check_node(info, n, b, err);
	if (!r && inc)
		r = inc_entries(info, n, 0, nr_of(n), err);
	if (r)
		tm_unlock(info->tm, *out);
	return r;
}

/*
 * A new node of the same kind as like (a leaf of this tree, or internal).
 * Its count is 1 and it is new in this transaction, so it is ours.
 */
static int new_node_like(const struct btree_info *info, const void *like,
			 struct bm_block **out, struct pd_err *err)
{
	int r = tm_new_block(info->tm, &btree_node_validator, out, err);

	if (r)
		return r;
	node_init(bm_block_data_rw(*out), node_is_leaf(like), vsize_of(like));
	return 0;
}

/*----------------------------------------------------------------
 * Empty tree
 *--------------------------------------------------------------*/

int btree_empty(struct btree_info *info, uint64_t *root, struct pd_err *err)
{
	struct bm_block *blk;
	int r;

	r = check_value_size(info, err);
	if (r)
		return r;
	r = tm_new_block(info->tm, &btree_node_validator, &blk, err);
	if (r)
		return r;
	node_init(bm_block_data_rw(blk), true, info->vt.size);
	*root = bm_block_location(blk);
	tm_unlock(info->tm, blk);
	return 0;
}

/*----------------------------------------------------------------
 * Insert
 *--------------------------------------------------------------*/

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
	uint32_t nr = nr_of(n), nl = nr / 2;
	int r;

	r = new_node_like(info, n, &left, err);
	if (r)
		return r;
	r = new_node_like(info, n, &right, err);
	if (r) {
		tm_unlock(info->tm, left);
		tm_dec(info->tm, bm_block_location(left));
		return r;
	}
	ln = bm_block_data_rw(left);
	rn = bm_block_data_rw(right);
	move_entries(ln, 0, n, 0, nl);
	set_nr(ln, nl);
	move_entries(rn, 0, n, nl, nr - nl);
	set_nr(rn, nr - nl);

	/* the root may have been a leaf with another layout: start afresh */
	memset(n, 0, MD_BLOCK_SIZE);
	node_init(n, false, 8);
	node_set_key(n, 0, node_key(ln, 0));
	set_child(n, 0, bm_block_location(left));
	node_set_key(n, 1, node_key(rn, 0));
	set_child(n, 1, bm_block_location(right));
	set_nr(n, 2);

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
	uint32_t nr = nr_of(ln), nl = nr / 2;
	struct bm_block *right;
	uint8_t loc_le[8];
	int r;

	/* the parent was split on the way down if it was full */
	if (nr_of(p) >= max_of(p))
		return pd_err_set(err, -EILSEQ, "btree insert: full parent node %llu",
				  (unsigned long long)bm_block_location(parent));
	r = new_node_like(info, ln, &right, err);
	if (r)
		return r;
	rn = bm_block_data_rw(right);
	move_entries(rn, 0, ln, nl, nr - nl);
	set_nr(rn, nr - nl);
	set_nr(ln, nl);

	store_le64(loc_le, bm_block_location(right));
	insert_at(p, *pidx + 1, node_key(rn, 0), loc_le);

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
		void *old = value_at(n, (unsigned)i);

		if (!values_equal(info, old, value)) {
			int r = value_dec(info, old, err);

			if (r)
				return r;
		}
		memcpy(old, value, info->vt.size);
		*inserted = false;
		return 0;
	}
	insert_at(n, (unsigned)(i + 1), key, value);
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
			r = too_deep(root, err);
			goto out;
		}
		r = shadow_node(info, b, &cur, err);
		if (r)
			goto out;
		if (parent)
			set_child(bm_block_data_rw(parent), pidx, bm_block_location(cur));
		else
			nroot = bm_block_location(cur);

		n = bm_block_data_rw(cur);
		if (nr_of(n) == max_of(n) && !exists) {
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
			if (pidx + 1 < nr_of(pn) && node_key(pn, pidx + 1) < bound)
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
		i = lower_bound(n, key);
		if (i < 0) {
			/* key[0] is a lower bound for child 0: lower it */
			node_set_key(n, 0, key);
			i = 0;
		}
		b = child_at(n, (unsigned)i);
		parent = cur;
		cur = NULL;
		pidx = (unsigned)i;
	}

out:
	if (cur)
		tm_unlock(info->tm, cur);
	if (parent)
		tm_unlock(info->tm, parent);
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

	r = check_value_size(info, err);
	if (!r)
		r = key_exists(info, root, key, &exists, err);
	if (!r)
		r = descend_for_insert(info, root, key, exists, new_root, &leaf, &hi, err);
	if (r)
		return r;
	n = bm_block_data_rw(leaf);
	r = leaf_insert(info, n, lower_bound(n, key), key, value_le,
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
	uint32_t have = nr_of(n), room = max_of(n) - have, vs = info->vt.size;
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
			int r = value_dec(info, values_equal(info, old, v) ? v : old, err);

			if (r)
				return r;
			a--;
		}
		node_set_key(n, (unsigned)w, key);
		memcpy(vals + (size_t)w * vs, v, vs);
		k--;
	}
	set_nr(n, have + add);
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

	r = check_value_size(info, err);
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
					  "btree insert: no room for key %llu in leaf",
					  (unsigned long long)keys[done]);
		done += taken;
	}
	return 0;
}

/*----------------------------------------------------------------
 * Remove
 *--------------------------------------------------------------*/

/*
 * The root (ours) has a single child: it takes the child's contents and
 * the child loses the root's reference.  If the child stays alive (it is
 * shared) its children now have one more referrer, the root.
 */
static int collapse_root(const struct btree_info *info, struct bm_block *root,
			 struct pd_err *err)
{
	void *n = bm_block_data_rw(root);
	uint64_t cb = child_at(n, 0);
	struct bm_block *child;
	uint32_t count;
	int r;

	r = block_count(info, cb, &count, err);
	if (r)
		return r;
	r = read_node(info, cb, &child, err);
	if (r)
		return r;
	memcpy(n, bm_block_data(child), MD_BLOCK_SIZE);
	tm_unlock(info->tm, child);
	if (count > 1) {
		r = inc_entries(info, n, 0, nr_of(n), err);
		if (r)
			return r;
	}
	return block_dec(info, cb, err);
}

static int peek_nr(const struct btree_info *info, uint64_t b, uint32_t *nr,
		   struct pd_err *err)
{
	struct bm_block *blk;
	int r = read_node(info, b, &blk, err);

	if (r)
		return r;
	*nr = nr_of(bm_block_data(blk));
	tm_unlock(info->tm, blk);
	return 0;
}

/*
 * Child i of p (ours) is about to lose an entry.  Shadows it and, if it
 * holds only the minimum, merges a sibling into it or takes entries from
 * one so that it holds more.  Returns the child write-locked; p may have
 * lost an entry (merge).
 *
 * Merge when both hold at most 2 * min together (the kernel's
 * threshold), so the merged node has room left.  Otherwise the child
 * takes the larger half, so it stays at or above the minimum after the
 * removal below it, and the sibling keeps at least the minimum.  A merge
 * only reads the sibling: its entries are copied and the sibling loses
 * p's reference, so a shared sibling is not copied first.
 */
static int prepare_child(const struct btree_info *info, struct bm_block *parent,
			 unsigned i, struct bm_block **out, struct pd_err *err)
{
	void *p = bm_block_data_rw(parent), *cn, *sn;
	struct bm_block *c = NULL, *s = NULL;
	uint32_t pnr = nr_of(p), nc, ns, t, total, count;
	uint64_t sb;
	unsigned j;
	int r;

	r = shadow_node(info, child_at(p, i), &c, err);
	if (r)
		return r;
	set_child(p, i, bm_block_location(c));
	cn = bm_block_data_rw(c);
	nc = nr_of(cn);
	t = min_entries(cn);
	if (nc > t || pnr < 2) {
		*out = c;
		return 0;
	}

	/* the sibling with more entries makes a merge less likely */
	if (i == 0) {
		j = 1;
	} else if (i + 1 == pnr) {
		j = i - 1;
	} else {
		uint32_t nl, nrt;

		r = peek_nr(info, child_at(p, i - 1), &nl, err);
		if (!r)
			r = peek_nr(info, child_at(p, i + 1), &nrt, err);
		if (r)
			goto out;
		j = nrt > nl ? i + 1 : i - 1;
	}
	sb = child_at(p, j);

	r = read_node(info, sb, &s, err);
	if (r)
		goto out;
	sn = bm_block_data_rw(s);
	if (node_is_leaf(sn) != node_is_leaf(cn)) {
		r = pd_err_set(err, -EILSEQ,
			       "btree siblings %llu and %llu are at different depths",
			       (unsigned long long)sb,
			       (unsigned long long)bm_block_location(c));
		goto out;
	}
	ns = nr_of(sn);
	total = nc + ns;

	if (total <= 2 * t) {
		r = block_count(info, sb, &count, err);
		if (r)
			goto out;
		if (j > i) {
			move_entries(cn, nc, sn, 0, ns);
		} else {
			move_entries(cn, ns, cn, 0, nc);
			move_entries(cn, 0, sn, 0, ns);
		}
		set_nr(cn, total);
		tm_unlock(info->tm, s);
		s = NULL;
		if (count > 1) {
			r = inc_entries(info, cn, j > i ? nc : 0, ns, err);
			if (r)
				goto out;
		}
		r = block_dec(info, sb, err);
		if (r)
			goto out;
		if (j < i)	/* c now starts where the left sibling did */
			node_set_key(p, i, node_key(p, j));
		delete_at(p, j);
	} else {
		uint32_t k = (total + 1) / 2 - nc;

		tm_unlock(info->tm, s);
		s = NULL;
		r = shadow_node(info, sb, &s, err);
		if (r)
			goto out;
		set_child(p, j, bm_block_location(s));
		sn = bm_block_data_rw(s);
		if (j > i) {
			move_entries(cn, nc, sn, 0, k);
			move_entries(sn, 0, sn, k, ns - k);
			node_set_key(p, j, node_key(sn, 0));
		} else {
			move_entries(cn, k, cn, 0, nc);
			move_entries(cn, 0, sn, ns - k, k);
			node_set_key(p, i, node_key(cn, 0));
		}
		set_nr(cn, nc + k);
		set_nr(sn, ns - k);
		tm_unlock(info->tm, s);
		s = NULL;
	}
out:
	if (s)
		tm_unlock(info->tm, s);
	if (r)
		tm_unlock(info->tm, c);
	else
		*out = c;
	return r;
}

int btree_remove(struct btree_info *info, uint64_t root, uint64_t key,
		 uint64_t *new_root, struct pd_err *err)
{
	struct bm_block *cur = NULL, *child = NULL;
	bool at_root = true;
	uint64_t nroot;
	int r;

	r = check_value_size(info, err);
	if (r)
		return r;
	*new_root = root;

	/* absent keys must not cost a shadowed path or a rebalanced tree */
	r = btree_lookup(tm_bm(info->tm), root, info->vt.size, key, NULL, err);
	if (r == -ENODATA)
		return pd_err_set(err, r, "key %llu is not in the btree",
				  (unsigned long long)key);
	if (r)
		return r;

	r = shadow_node(info, root, &cur, err);
	if (r)
		return r;
	nroot = bm_block_location(cur);

	/* each step descends a level or removes one (collapse): bounded */
	for (unsigned steps = 0;; steps++) {
		void *n = bm_block_data_rw(cur);
		int i;

		if (steps >= 3 * BTREE_MAX_DEPTH) {
			r = too_deep(root, err);
			goto out;
		}
		i = lower_bound(n, key);
		if (node_is_leaf(n)) {
			if (i < 0 || node_key(n, (unsigned)i) != key) {
				r = pd_err_set(err, -EILSEQ,
					       "btree rooted at %llu: key %llu found by lookup but not on the write path",
					       (unsigned long long)root,
					       (unsigned long long)key);
				goto out;
			}
			r = value_dec(info, value_at(n, (unsigned)i), err);
			if (r)
				goto out;
			delete_at(n, (unsigned)i);
			break;
		}
		if (at_root && nr_of(n) == 1) {
			r = collapse_root(info, cur, err);
			if (r)
				goto out;
			continue;
		}
		if (i < 0) {
			r = pd_err_set(err, -EILSEQ,
				       "btree node %llu: key %llu below its first key",
				       (unsigned long long)bm_block_location(cur),
				       (unsigned long long)key);
			goto out;
		}
		r = prepare_child(info, cur, (unsigned)i, &child, err);
		if (r)
			goto out;
		if (at_root && nr_of(n) == 1) {
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
	if (child)
		tm_unlock(info->tm, child);
	if (cur)
		tm_unlock(info->tm, cur);
	return r;
}

/*----------------------------------------------------------------
 * Delete
 *--------------------------------------------------------------*/

struct del_frame {
	uint8_t *node;		/* copy of an internal node being freed */
	uint32_t nr;
	uint32_t idx;		/* next child to drop */
};

struct deleter {
	const struct btree_info *info;
	struct del_frame frames[BTREE_MAX_DEPTH];
	unsigned sp;
	int leaf_depth;		/* -1 until a leaf is seen: all leaves share it */
	uint64_t root;
};

/*
 * Drops one reference to node b at depth sp.  A node that stays alive
 * keeps its children; a freed internal node is pushed so that its
 * children lose its reference in turn.
 */
static int drop_node(struct deleter *d, uint64_t b, struct pd_err *err)
{
	const struct btree_info *info = d->info;
	struct bm_block *blk;
	const void *n;
	uint32_t count;
	int r;

	r = block_count(info, b, &count, err);
	if (r)
		return r;
	if (count > 1 || (!info->vt.dec && (int)d->sp == d->leaf_depth))
		return block_dec(info, b, err);	/* nothing to do inside */

	if (d->sp >= BTREE_MAX_DEPTH)
		return too_deep(d->root, err);
	r = read_node(info, b, &blk, err);
	if (r)
		return r;
	n = bm_block_data(blk);
	if (node_is_leaf(n)) {
		d->leaf_depth = (int)d->sp;
		for (unsigned i = 0; i < nr_of(n) && !r; i++)
			r = value_dec(info, node_value_c(n, i, info->vt.size), err);
	} else {
		struct del_frame *f = d->frames + d->sp;

		if (!f->node)
			f->node = malloc(MD_BLOCK_SIZE);
		if (!f->node) {
			r = pd_err_set(err, -ENOMEM, "out of memory");
		} else {
			memcpy(f->node, n, MD_BLOCK_SIZE);
			f->nr = nr_of(n);
			f->idx = 0;
			d->sp++;
		}
	}
	tm_unlock(info->tm, blk);
	if (r)
		return r;
	return block_dec(info, b, err);
}

int btree_delete(struct btree_info *info, uint64_t root, struct pd_err *err)
{
	struct deleter d = { .info = info, .leaf_depth = -1, .root = root };
	int r;

	r = drop_node(&d, root, err);
	while (!r && d.sp) {
		struct del_frame *f = d.frames + d.sp - 1;

		if (f->idx == f->nr) {
			d.sp--;
			continue;
		}
		r = drop_node(&d, child_at(f->node, f->idx++), err);
	}
	for (unsigned i = 0; i < BTREE_MAX_DEPTH; i++)
		free(d.frames[i].node);
	return r;
}

/*----------------------------------------------------------------
 * Bulk loader
 *--------------------------------------------------------------*/

/*
 * Each level has the node being filled (cur) and the node before it
 * (pending), which is held back until the level ends or moves on, so
 * that an underfull last node can share entries with it.  A pending node
 * is either a full node in memory or a spliced leaf we hold a reference
 * to.  When cur fills up and another entry comes, the old pending node is
 * written and its (first key, block) goes up one level.
 */
enum pending_kind { PEND_NONE, PEND_MEM, PEND_BLOCK };

struct bl_level {
	uint8_t *cur;
	uint8_t *pend;
	enum pending_kind kind;
	uint64_t pend_block;	/* PEND_BLOCK */
	uint64_t pend_key;	/* PEND_BLOCK: its first key */
};

struct btree_builder {
	struct btree_info info;
	struct bl_level levels[BTREE_MAX_DEPTH];
	unsigned nr_levels;	/* levels that have received entries */
	bool have_last;
	uint64_t last_key;
	uint8_t *scratch;	/* a spliced leaf being copied */
};

/* A node produced by finishing a level: written, or a spliced leaf. */
struct bl_out {
	uint64_t key;
	uint64_t block;
};

static int level_get(struct btree_builder *b, unsigned l, struct bl_level **out,
		     struct pd_err *err)
{
	struct bl_level *lv;

	if (l >= BTREE_MAX_DEPTH)
		return pd_err_set(err, -EOVERFLOW, "btree builder: more than %u levels",
				  BTREE_MAX_DEPTH);
	lv = b->levels + l;
	if (!lv->cur) {
		lv->cur = calloc(1, MD_BLOCK_SIZE);
		lv->pend = calloc(1, MD_BLOCK_SIZE);
		if (!lv->cur || !lv->pend)
			return pd_err_set(err, -ENOMEM, "out of memory");
		node_init(lv->cur, l == 0, l == 0 ? b->info.vt.size : 8);
	}
	if (l >= b->nr_levels)
		b->nr_levels = l + 1;
	*out = lv;
	return 0;
}

static int write_node(struct btree_builder *b, const void *node, uint64_t *block,
		      struct pd_err *err)
{
	struct bm_block *blk;
	int r;

	r = tm_new_block(b->info.tm, &btree_node_validator, &blk, err);
	if (r)
		return r;
	memcpy(bm_block_data_rw(blk), node, MD_BLOCK_SIZE);
	*block = bm_block_location(blk);
	tm_unlock(b->info.tm, blk);
	return 0;
}

static void swap_buffers(struct bl_level *lv)
{
	uint8_t *t = lv->cur;

	lv->cur = lv->pend;
	lv->pend = t;
	memcpy(lv->cur, lv->pend, BTREE_NODE_HEADER_SIZE);
	set_nr(lv->cur, 0);
}

/* Appends an entry at level l, pushing completed nodes upwards (a loop, not recursion). */
static int add_entry(struct btree_builder *b, unsigned l, uint64_t key,
		     const void *value, struct pd_err *err)
{
	uint8_t up_value[8];

	for (;; l++) {
		struct bl_level *lv;
		uint64_t up_key, up_block;
		int r;

		r = level_get(b, l, &lv, err);
		if (r)
			return r;
		if (nr_of(lv->cur) < max_of(lv->cur)) {
			/* appending: no entries to move */
			uint32_t nr = nr_of(lv->cur);

			node_set_key(lv->cur, nr, key);
			memcpy(value_at(lv->cur, nr), value, vsize_of(lv->cur));
			set_nr(lv->cur, nr + 1);
			return 0;
		}
		if (lv->kind == PEND_NONE) {
			swap_buffers(lv);
			lv->kind = PEND_MEM;
			insert_at(lv->cur, 0, key, value);
			return 0;
		}
		if (lv->kind == PEND_MEM) {
			r = write_node(b, lv->pend, &up_block, err);
			if (r)
				return r;
			up_key = node_key(lv->pend, 0);
		} else {
			up_block = lv->pend_block;
			up_key = lv->pend_key;
		}
		swap_buffers(lv);
		lv->kind = PEND_MEM;
		insert_at(lv->cur, 0, key, value);

		key = up_key;
		store_le64(up_value, up_block);
		value = up_value;
	}
}

/*
 * Entries of a leaf we hold one reference to are about to live in a node
 * of ours: if the leaf stays alive they gain a referrer; either way the
 * leaf loses our reference.  Copies the leaf to dst.
 */
static int take_leaf_entries(struct btree_builder *b, uint64_t block, void *dst,
			     struct pd_err *err)
{
	struct bm_block *blk;
	uint32_t count;
	int r;

	r = block_count(&b->info, block, &count, err);
	if (r)
		return r;
	r = read_node(&b->info, block, &blk, err);
	if (r)
		return r;
	memcpy(dst, bm_block_data(blk), MD_BLOCK_SIZE);
	tm_unlock(b->info.tm, blk);
	if (count > 1) {
		r = inc_entries(&b->info, dst, 0, nr_of(dst), err);
		if (r)
			return r;
	}
	return block_dec(&b->info, block, err);
}

/*
 * Closes level l: produces its remaining nodes (at most two, in order) and
 * leaves the level empty.  The caller has made sure that a cur without a
 * pending node before it is at least min full or is the root.
 */
static int close_level(struct btree_builder *b, unsigned l, struct bl_out *outs,
		       unsigned *nr_out, struct pd_err *err)
{
	struct bl_level *lv = b->levels + l;
	uint32_t nc = nr_of(lv->cur), t = min_entries(lv->cur);
	int r;

	*nr_out = 0;
	if (lv->kind == PEND_BLOCK && nc && nc < t) {
		/* too few to stand next to the spliced leaf: share its entries */
		r = take_leaf_entries(b, lv->pend_block, lv->pend, err);
		if (r)
			return r;
		lv->kind = PEND_MEM;
	}

	if (lv->kind == PEND_MEM && nc) {
		uint32_t np = nr_of(lv->pend), total = np + nc;

		if (total <= max_of(lv->cur)) {
			/* (a spliced leaf copied above) one node holds both */
			move_entries(lv->pend, np, lv->cur, 0, nc);
			set_nr(lv->pend, total);
			set_nr(lv->cur, 0);
			nc = 0;
		} else {
			/* 1.x: the remainder spread evenly over the last two */
			uint32_t k = np - total / 2;

			move_entries(lv->cur, k, lv->cur, 0, nc);
			move_entries(lv->cur, 0, lv->pend, np - k, k);
			set_nr(lv->cur, nc + k);
			set_nr(lv->pend, np - k);
			nc += k;
		}
	}

	if (lv->kind == PEND_MEM) {
		r = write_node(b, lv->pend, &outs[*nr_out].block, err);
		if (r)
			return r;
		outs[(*nr_out)++].key = node_key(lv->pend, 0);
	} else if (lv->kind == PEND_BLOCK) {
		outs[*nr_out].block = lv->pend_block;
		outs[(*nr_out)++].key = lv->pend_key;
	}
	lv->kind = PEND_NONE;

	if (nc) {
		r = write_node(b, lv->cur, &outs[*nr_out].block, err);
		if (r)
			return r;
		outs[(*nr_out)++].key = node_key(lv->cur, 0);
		set_nr(lv->cur, 0);
	}
	return 0;
}

static int push_outs(struct btree_builder *b, unsigned l, const struct bl_out *outs,
		     unsigned n, struct pd_err *err)
{
	for (unsigned i = 0; i < n; i++) {
		uint8_t v[8];
		int r;

		store_le64(v, outs[i].block);
		r = add_entry(b, l, outs[i].key, v, err);
		if (r)
			return r;
	}
	return 0;
}

int btree_builder_create(struct btree_info *info, struct btree_builder **out,
			 struct pd_err *err)
{
	struct btree_builder *b;
	struct bl_level *lv;
	int r;

	r = check_value_size(info, err);
	if (r)
		return r;
	b = calloc(1, sizeof(*b));
	if (!b)
		return pd_err_set(err, -ENOMEM, "out of memory");
	b->info = *info;
	b->scratch = malloc(MD_BLOCK_SIZE);
	if (!b->scratch) {
		btree_builder_destroy(b);
		return pd_err_set(err, -ENOMEM, "out of memory");
	}
	r = level_get(b, 0, &lv, err);
	if (r) {
		btree_builder_destroy(b);
		return r;
	}
	*out = b;
	return 0;
}

void btree_builder_destroy(struct btree_builder *b)
{
	if (!b)
		return;
	for (unsigned i = 0; i < BTREE_MAX_DEPTH; i++) {
		free(b->levels[i].cur);
		free(b->levels[i].pend);
	}
	free(b->scratch);
	free(b);
}

int btree_builder_push(struct btree_builder *b, uint64_t key, const void *value_le,
		       struct pd_err *err)
{
	struct bl_level *lv = b->levels;
	int r;

	if (b->have_last && key <= b->last_key)
		return pd_err_set(err, -EINVAL,
				  "btree builder: key %llu does not follow %llu",
				  (unsigned long long)key,
				  (unsigned long long)b->last_key);
	/* the common case, a leaf with room: append in place */
	if (lv->cur && nr_of(lv->cur) < max_of(lv->cur)) {
		uint8_t *n = lv->cur;
		uint32_t nr = nr_of(n);
		void *v = value_at(n, nr);

		b->have_last = true;
		b->last_key = key;
		node_set_key(n, nr, key);
		/* a constant size is a move, not a call (the mapping trees' 8) */
		if (b->info.vt.size == 8)
			memcpy(v, value_le, 8);
		else
			memcpy(v, value_le, b->info.vt.size);
		set_nr(n, nr + 1);
		return 0;
	}
	r = add_entry(b, 0, key, value_le, err);
	if (r)
		return r;
	b->have_last = true;
	b->last_key = key;
	return 0;
}

int btree_builder_push_leaf(struct btree_builder *b, uint64_t leaf_block,
			    struct pd_err *err)
{
	struct btree_shape_opts so = { .value_size = b->info.vt.size };
	struct bl_level *lv = b->levels;
	struct bl_out outs[2];
	struct bm_block *blk;
	uint32_t nr, nc, t;
	uint64_t first = 0, last = 0;
	unsigned n;
	const void *leaf;
	int r;

	r = tm_read_lock(b->info.tm, leaf_block, &btree_node_validator, &blk, err);
	if (r)
		return r;
	leaf = bm_block_data(blk);
	if (le32_to_cpu(node_header_c(leaf)->flags) != BTREE_FLAG_LEAF ||
	    vsize_of(leaf) != b->info.vt.size ||
	    max_of(leaf) != btree_max_entries(b->info.vt.size)) {
		tm_unlock(b->info.tm, blk);
		return pd_err_set(err, -EINVAL,
				  "btree builder: block %llu is not a leaf of values of %u bytes",
				  (unsigned long long)leaf_block, b->info.vt.size);
	}
	r = btree_node_check_shape(leaf, leaf_block, &so, err);
	nr = nr_of(leaf);
	if (nr) {
		first = node_key(leaf, 0);
		last = node_key(leaf, nr - 1);
	}
	tm_unlock(b->info.tm, blk);
	if (r)
		return r;
	if (nr && b->have_last && first <= b->last_key)
		return pd_err_set(err, -EINVAL,
				  "btree builder: spliced leaf %llu starts at key %llu, not after %llu",
				  (unsigned long long)leaf_block,
				  (unsigned long long)first,
				  (unsigned long long)b->last_key);

	nc = nr_of(lv->cur);
	t = min_entries(lv->cur);
	if (nr < t || (nc && nc < t && lv->kind == PEND_NONE)) {
		/* sharing it would leave a node under the minimum: copy it */
		r = take_leaf_entries(b, leaf_block, b->scratch, err);
		for (uint32_t i = 0; !r && i < nr; i++)
			r = add_entry(b, 0, node_key(b->scratch, i),
				      value_at(b->scratch, i), err);
	} else {
		r = close_level(b, 0, outs, &n, err);
		if (!r)
			r = push_outs(b, 1, outs, n, err);
		if (!r) {
			lv->kind = PEND_BLOCK;
			lv->pend_block = leaf_block;
			lv->pend_key = first;
		}
	}
	if (r)
		return r;
	if (nr) {
		b->have_last = true;
		b->last_key = last;
	}
	return 0;
}

int btree_builder_finish(struct btree_builder *b, uint64_t *root, struct pd_err *err)
{
	for (unsigned l = 0; l < b->nr_levels; l++) {
		struct bl_level *lv = b->levels + l;
		bool top = l + 1 == b->nr_levels;
		struct bl_out outs[2];
		unsigned n;
		int r;

		if (!top && lv->kind == PEND_NONE && nr_of(lv->cur) < min_entries(lv->cur))
			return pd_err_set(err, -EILSEQ,
					  "btree builder: underfull node at level %u", l);
		if (top && (lv->kind == PEND_NONE || !nr_of(lv->cur))) {
			/* the level's only node is the root (an empty leaf at worst) */
			if (lv->kind == PEND_BLOCK) {
				*root = lv->pend_block;
			} else {
				r = write_node(b, lv->kind == PEND_MEM ? lv->pend : lv->cur,
					       root, err);
				if (r)
					return r;
			}
			lv->kind = PEND_NONE;
			set_nr(lv->cur, 0);
			return 0;
		}
		r = close_level(b, l, outs, &n, err);
		if (r)
			return r;
		if (top && n == 1) {
			*root = outs[0].block;
			return 0;
		}
		r = push_outs(b, l + 1, outs, n, err);
		if (r)
			return r;
	}
	return pd_err_set(err, -EILSEQ, "btree builder: no root");
}
