/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_BTREE_WRITE_H
#define PD_BTREE_WRITE_H

/*
 * The btree write side: insert, remove, delete and a bulk loader, all
 * copy-on-write through the transaction manager (format doc sections 4,
 * 7 and 9).  Reading uses btree.h: btree_lookup(tm_bm(tm), ...) and the
 * walk see the uncommitted state, because changed blocks stay in (or are
 * written back from) the block manager's cache.
 *
 * Roots move.  Every modifying call takes the root it modifies and
 * returns the tree's new root; the old root number must not be used
 * again by the caller (it may now be free, or belong to another owner).
 *
 * References.  A tree root handed to these functions stands for one
 * reference held by the caller (a superblock field, a leaf of a parent
 * tree, a snapshot).  Nodes shared by several owners (count > 1) are
 * never changed in place: tm_shadow() copies them and the copy's
 * children gain a reference (internal node: tm_inc of each child; leaf:
 * vt.inc of each value).
 *
 * Values.  A value given to btree_insert() or btree_builder_push()
 * brings one reference with it, which the tree keeps: the tree never
 * calls vt.inc for a value it is handed.  vt.dec is called whenever an
 * entry stops being referenced from a leaf: removal, overwrite with an
 * unequal value, and leaves freed by btree_delete().
 *
 * Shape.  Nodes are written exactly as section 4 says: max_entries =
 * btree_max_entries(value_size) (internal nodes: value size 8, 252
 * entries), every non-root node at least max_entries / 3 full, all
 * leaves at one depth; a root internal node never keeps a single child
 * after btree_remove().  blocknr and checksum are stamped when the block
 * manager writes a node.
 *
 * Cost and memory: insert and remove hold at most three node locks at a
 * time and touch one path from the root (plus one sibling per level for
 * remove, only when the child on the path is at the minimum fill).
 * btree_delete() keeps at most BTREE_MAX_DEPTH node copies in memory, the
 * builder two per level plus one.  Nothing recurses.
 *
 * Value callbacks run while up to three nodes of this tree are locked.
 * They may use the same tm on other blocks (the thin top level's dec
 * deletes a bottom-level tree), never on this tree's nodes.
 *
 * Errors: negative errno with a message in *err.  -ENODATA (key absent,
 * btree_remove only) and -EINVAL (bad argument, checked first) leave the
 * tree untouched; any other error (I/O, -EILSEQ for a damaged node,
 * -ENOSPC) may leave the transaction half done: abandon it.
 */

#include "btree.h"
#include "error.h"
#include "transaction-manager.h"

#include <stdbool.h>
#include <stdint.h>

struct btree_value_type {
	void *context;
	/* bytes per value: 8 (mappings, top level), 24 (device details), 16 (index), 4 (ref counts) */
	uint32_t size;
	/*
	 * One more leaf refers to the value: the copy made when a shared
	 * leaf is shadowed, or leaf entries copied out of a shared leaf.
	 * May be NULL (values that are not references).
	 */
	int (*inc)(void *context, const void *value_le);
	/*
	 * A leaf no longer refers to the value: remove, overwrite by an
	 * unequal value, or a leaf freed by btree_delete().  May be NULL.
	 */
	int (*dec)(void *context, const void *value_le);
	/* May be NULL: memcmp of size bytes. */
	bool (*equal)(void *context, const void *a_le, const void *b_le);
};

struct btree_info {
	struct tm *tm;
	struct btree_value_type vt;
};

/* A new empty tree: one leaf root with no entries, count 1. */
int btree_empty(struct btree_info *info, uint64_t *root, struct pd_err *err);

/*
 * Inserts or overwrites key.  *inserted (may be NULL) is true for a new
 * key, false when an existing entry was overwritten.  On overwrite the old
 * value is dec'd unless it is equal to the new one (vt.equal, else
 * memcmp): then the entry keeps its single reference and the reference
 * the caller gave with value_le is surplus, the caller's to drop.
 *
 * Full nodes are split on the way down: a non-root node into two (the new
 * right sibling takes the upper half); a full root "beneath" - its
 * entries move into two new children and the root block, already
 * shadowed, becomes an internal node of two entries - so a root that is
 * new in this transaction keeps its block number.  Inserting a key below
 * every key lowers key[0] of the internal nodes on the path.
 */
int btree_insert(struct btree_info *info, uint64_t root, uint64_t key,
		 const void *value_le, uint64_t *new_root, bool *inserted,
		 struct pd_err *err);

/*
 * Inserts or overwrites nr keys, strictly increasing (else -EINVAL),
 * values_le holding nr values of vt.size bytes, with the result of nr
 * btree_insert() calls: the same entries, references and split rule,
 * though full internal nodes may be split at other moments.  *added
 * counts the new keys (nr - *added were overwritten).  One difference:
 * on an overwrite with an equal value the surplus reference the caller
 * gave is dropped here, with vt.dec on the new value.
 *
 * Cost: one path from the root per leaf the keys land in (plus one per
 * split), each entry of that leaf moved once; not one path per key.
 */
int btree_insert_many(struct btree_info *info, uint64_t root, const uint64_t *keys,
		      const void *values_le, unsigned nr, uint64_t *new_root,
		      uint64_t *added, struct pd_err *err);

/*
 * Removes key and dec's its value.  Returns -ENODATA when key is absent
 * (the tree is untouched and *new_root = root).
 *
 * Top-down, as the kernel: before descending into a child that holds only
 * max_entries / 3 entries, it is merged with a sibling (when both hold
 * at most 2 * (max_entries / 3) together) or takes entries from it (the
 * child gets the larger half), so removal never leaves a non-root node
 * under the minimum.  A root internal node left with one child is
 * replaced by that child's contents: the tree loses a level.
 */
int btree_remove(struct btree_info *info, uint64_t root, uint64_t key,
		 uint64_t *new_root, struct pd_err *err);

/*
 * Drops one reference to the tree: tm_dec of the root.  Only a node whose
 * count reaches 0 drops its children in turn (internal: child nodes;
 * leaf: vt.dec of each value), so the parts shared with other trees stay.
 */
int btree_delete(struct btree_info *info, uint64_t root, struct pd_err *err);

/*----------------------------------------------------------------
 * Bulk loader
 *--------------------------------------------------------------*/

/*
 * Builds a new tree from a sorted stream, for restore and merge output.
 * Leaves are filled completely and written as soon as the next one is
 * started; at the end the remainder is spread evenly over the last two
 * nodes of each level (1.x does this), so every non-root node is at least
 * half full, or max_entries / 3 full when a spliced leaf is involved.
 * Memory: two node buffers per level.  The builder allocates blocks with
 * tm_new_block, so the usual allocation rules of the transaction apply.
 */
struct btree_builder;

int btree_builder_create(struct btree_info *info, struct btree_builder **out,
			 struct pd_err *err);

/* Keys strictly increasing (across pushes and spliced leaves), else -EINVAL. */
int btree_builder_push(struct btree_builder *b, uint64_t key,
		       const void *value_le, struct pd_err *err);

/*
 * Splices an existing leaf in whole (1.x <def>/<ref> shared sections;
 * merge reusing untouched leaves).  Takes ownership of ONE reference to
 * leaf_block; every key in it must be greater than the last key pushed.
 *
 * Only leaves are supported: the block must be a leaf with this tree's
 * value size and max_entries, else -EINVAL (nothing taken).  The new tree
 * points at the leaf itself (it is shared, not copied) unless that would
 * break the fill rules - the leaf holds fewer than max_entries / 3
 * entries, follows fewer than max_entries / 3 loose entries, or ends the
 * stream next to them - in which case its entries are copied (vt.inc on
 * each value if the leaf is still shared) and the reference is dropped.
 * A stream made of a single spliced leaf yields that leaf as the root.
 */
int btree_builder_push_leaf(struct btree_builder *b, uint64_t leaf_block,
			    struct pd_err *err);

/*
 * Writes the remaining nodes and returns the root (count 1, or the
 * spliced leaf's reference).  An empty stream gives an empty leaf root.
 * The builder must still be destroyed afterwards; after an error from
 * any call, only btree_builder_destroy() may follow.
 */
int btree_builder_finish(struct btree_builder *b, uint64_t *root,
			 struct pd_err *err);

/*
 * Accepts NULL.  Frees memory only: references of a builder that did not
 * finish (loose values, nodes already written, a spliced leaf) are not
 * dropped - the transaction is being abandoned anyway.
 */
void btree_builder_destroy(struct btree_builder *b);

#endif
