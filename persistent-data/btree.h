/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_BTREE_H
#define PD_BTREE_H

/*
 * Btrees of 64-bit keys and fixed-size values, one node per metadata
 * block (format doc section 4).  This header is the read side: node
 * validation, lookup, a damage-tolerant walk with a visitor, and a cursor
 * over leaves.  None of them recurse: they keep an explicit stack of at
 * most BTREE_MAX_DEPTH nodes, so memory does not grow with the tree and a
 * cycle (a node reachable from itself) ends as "too deep" damage.
 */

#include "block-manager.h"
#include "btree-disk.h"
#include "error.h"

#include <stdbool.h>
#include <stdint.h>

/*
 * Non-root nodes hold at least max_entries/3 >= 84 entries, so a tree of
 * 2^64 keys is at most 11 levels deep; anything deeper is a cycle.
 */
#define BTREE_MAX_DEPTH 16

/*
 * Checks the kernel's rules (blocknr, checksum, value area fits,
 * nr_entries <= max_entries, one of the two flags) with v0.9's messages.
 */
extern const struct bm_validator btree_node_validator;

/*
 * The tools' extra per-node rules: value_size as expected (8 for internal
 * nodes), max_entries exact (multiple of 3 unless lax), exactly one flag,
 * keys strictly increasing.  Returns 0 or -EILSEQ with a message.
 */
struct btree_shape_opts {
	uint32_t value_size;		/* expected leaf value size */
	bool allow_max_not_div3;	/* 1.x --ignore-non-fatal-errors */
	/*
	 * max_entries exactly the format's value: where the values lie
	 * depends on it, so salvage trusts no other (a changed max_entries
	 * would shift every value by a slot).
	 */
	bool exact_max;
};
int btree_node_check_shape(const void *node, uint64_t location,
			   const struct btree_shape_opts *o, struct pd_err *err);

/* Stamps blocknr and checksum on a node about to be written. */
void btree_node_prepare(void *node, uint64_t location);

/*
 * Looks key up in the tree rooted at root whose leaves hold values of
 * value_size bytes; copies the value to value_out (may be NULL).
 * Returns 0, -ENODATA when absent, or another error with a message.
 */
int btree_lookup(struct bm *bm, uint64_t root, uint32_t value_size,
		 uint64_t key, void *value_out, struct pd_err *err);

/*
 * Reads ahead, in batches, the nodes on the paths to the given keys
 * (sorted ascending): level by level down to the leaves, at most
 * IO_MAX_BATCH nodes a level.  Only a hint: errors are left for the locks
 * that follow.
 */
void btree_prefetch_keys(struct bm *bm, uint64_t root, const uint64_t *keys, unsigned nr_keys);

/*----------------------------------------------------------------
 * Walk with a visitor
 *--------------------------------------------------------------*/

/* What the visitor sees of a node. */
struct btree_node_info {
	uint64_t block;
	const void *data;	/* the node, valid during the callback only */
	unsigned depth;		/* 0 = root */
	bool leaf;
	uint32_t nr_entries;
	uint64_t lo;		/* keys are >= lo ... */
	uint64_t hi;		/* ... and < hi when has_hi */
	bool has_hi;
};

/* A node that could not be read or trusted. */
struct btree_damage {
	uint64_t block;		/* the damaged node */
	uint64_t lo;		/* keys lost: [lo, hi), or [lo, -] */
	uint64_t hi;
	bool has_hi;
	bool lost;		/* the keys below were not visited */
	const char *msg;	/* v0.9-style reason */
};

enum {
	BTREE_WALK_CONTINUE = 0,
	BTREE_WALK_SKIP = 1,	/* node(): do not look inside this node */
	BTREE_WALK_STOP = 2,	/* end the walk now (not an error) */
};

struct btree_walk_ops {
	/*
	 * Every node reached, leaves included, before its entries (may be
	 * NULL).  A node shared by several parents is reached once per
	 * parent; return BTREE_WALK_SKIP to avoid walking it again.
	 */
	int (*node)(void *ctx, const struct btree_node_info *n);
	/* Every leaf, after node() allowed it; keys and values are raw LE. */
	int (*leaf)(void *ctx, const struct btree_node_info *n);
	/*
	 * An internal node whose children have all been walked (may be
	 * NULL).  Not called for leaves or for nodes node() skipped.
	 */
	int (*node_exit)(void *ctx, uint64_t block);
	/* Damage; the walk goes on with the next sibling. */
	void (*damage)(void *ctx, const struct btree_damage *d);
};

struct btree_walk_opts {
	struct btree_shape_opts shape;
	bool check_fill;	/* report non-root nodes under max/3 full */
	bool prefetch;		/* read an internal node's children in a batch */
};

/*
 * Walks the tree in key order.  Returns 0 when the walk completed or was
 * stopped, a negative error returned by a callback, or -ENOMEM.  Damage
 * is not an error here: it goes to ops->damage and the walk goes on.
 */
int btree_walk(struct bm *bm, uint64_t root, const struct btree_walk_opts *o,
	       const struct btree_walk_ops *ops, void *ctx, struct pd_err *err);

/*----------------------------------------------------------------
 * Cursor over leaves (strict: any damage ends it with an error)
 *--------------------------------------------------------------*/

struct btree_cursor;

int btree_cursor_create(struct bm *bm, uint64_t root, uint32_t value_size,
			struct btree_cursor **out, struct pd_err *err);
void btree_cursor_destroy(struct btree_cursor *c);

/*
 * Moves to the next non-empty leaf (the first one on the first call).
 * Returns 0, -ENODATA past the last leaf, or an error.
 */
int btree_cursor_next_leaf(struct btree_cursor *c, struct pd_err *err);

/* The current leaf (a copy, valid until the next move). */
const void *btree_cursor_leaf(const struct btree_cursor *c);
uint64_t btree_cursor_leaf_block(const struct btree_cursor *c);
uint32_t btree_cursor_nr(const struct btree_cursor *c);
static inline uint64_t btree_cursor_key(const struct btree_cursor *c, unsigned i)
{
	return node_key(btree_cursor_leaf(c), i);
}

/*
 * Entry at a time, for merging two trees' key streams.  peek gives the
 * current entry: its key, and (value may be NULL) its value, value_size
 * raw LE bytes valid until the cursor moves to another leaf.  When the
 * current leaf has no entry left (at the start, after next_entry stepped
 * past its last one) it moves to the next non-empty leaf first, so
 * repeated peeks see the same entry.  Returns 0, -ENODATA past the last
 * entry (and on every later call), or an error after which only
 * btree_cursor_destroy() may follow.  next_entry steps past the entry the
 * last peek returned (only after a peek that returned 0).  The leaf
 * calls above still work: btree_cursor_next_leaf() makes the new leaf's
 * first entry the current one.
 */
int btree_cursor_peek_entry(struct btree_cursor *c, uint64_t *key, const void **value,
			    struct pd_err *err);
void btree_cursor_next_entry(struct btree_cursor *c);

#endif
