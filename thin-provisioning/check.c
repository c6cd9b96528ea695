/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The thin metadata checker (check.h). */
#include "check.h"
#include "metadata.h"
#include "pool.h"
#include "persistent-data/checksum.h"
#include "persistent-data/count-map.h"
#include "persistent-data/u64-map.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPORTED 20		/* per kind of count mismatch */

struct shared_frame {
	uint64_t block;
	uint64_t start;
};

struct checker {
	const struct thin_check_opts *o;
	struct thin_metadata *md;
	int fatal, non_fatal;
	uint64_t nr_md_blocks;		/* blocks of the metadata device */

	struct count_map *md_expected;
	struct count_map *md_ondisk;	/* NULL if not loaded */
	struct count_map *data_expected;
	struct count_map *data_ondisk;	/* NULL if not loaded */
	bool repair;			/* fix leaks and data over-counts */
	uint64_t fixable;		/* space map counts that repair fixes */
	uint8_t *seen;			/* a bit per metadata block */

	/* space map damage, printed under "checking space map counts" */
	char **sm_msgs;
	unsigned nr_sm_msgs;

	/* the device being walked */
	uint64_t dev_id;
	uint64_t dev_count;
	uint64_t dev_data_errors;
	struct u64_map memo;	/* shared node -> mappings below it */
	struct shared_frame shared[BTREE_MAX_DEPTH];
	unsigned nr_shared;
	int error;			/* out of memory etc. */

	/* which tree is walked, for damage messages */
	enum { T_DETAILS, T_TOP, T_BOTTOM, T_OTHER } tree;

	thin_check_report_fn report;
	void *report_ctx;
};

static void tell(struct checker *c, enum thin_check_severity sev, int indent,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void tell(struct checker *c, enum thin_check_severity sev, int indent,
		 const char *fmt, ...)
{
	char line[2 * PD_ERR_MSG_MAX];
	va_list ap;

	if (!c->report)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->report(c->report_ctx, sev, indent, line);
}

#define say(c, indent, ...) tell((c), THIN_CHECK_LINE, (indent), __VA_ARGS__)
#define fail(c, ...) tell((c), THIN_CHECK_ERROR, 0, __VA_ARGS__)

static bool seen_test_and_set(struct checker *c, uint64_t b)
{
	uint8_t bit = (uint8_t)(1u << (b & 7));
	bool was;

	if (b >= c->nr_md_blocks)
		return false;
	was = c->seen[b >> 3] & bit;
	c->seen[b >> 3] |= bit;
	return was;
}

/* A reference to metadata block b from a superblock, node or space map. */
static int md_ref(struct checker *c, uint64_t b)
{
	if (b >= cm_nr_blocks(c->md_expected)) {
		say(c, 1, "reference to metadata block %" PRIu64
		    " beyond the end of the metadata space map (%" PRIu64 " blocks)",
		    b, cm_nr_blocks(c->md_expected));
		c->fatal++;
		return 0;
	}
	if (cm_inc(c->md_expected, b))
		return -ENOMEM;
	return 0;
}

static void print_range(char *buf, size_t n, uint64_t lo, uint64_t hi, bool has_hi)
{
	if (has_hi)
		snprintf(buf, n, "[%" PRIu64 ", %" PRIu64 "]", lo, hi);
	else
		snprintf(buf, n, "[%" PRIu64 ", -]", lo);
}

static void tree_damage(void *ctx, const struct btree_damage *d)
{
	struct checker *c = ctx;
	char range[64];

	print_range(range, sizeof(range), d->lo, d->hi, d->has_hi);
	if (!d->lost) {
		/* readable but not as it should be: an underfull node */
		if (!c->o->ignore_non_fatal) {
			say(c, 1, "%s", d->msg);
			c->non_fatal++;
		}
		return;
	}
	switch (c->tree) {
	case T_DETAILS:
		say(c, 1, "missing devices: %s", range);
		break;
	case T_TOP:
		say(c, 1, "missing all mappings for devices: %s", range);
		break;
	case T_BOTTOM:
		say(c, 1, "thin device %" PRIu64 " is missing mappings %s", c->dev_id, range);
		break;
	default:
		break;
	}
	say(c, 2, "%s", d->msg);
	c->fatal++;
}

/*
 * Every node of every tree: count its references to children once, the
 * first time the node is reached.  Nodes reached again are shared (or
 * cross-linked: then the counts will not match the space map).
 */
static int count_node(void *ctx, const struct btree_node_info *n)
{
	struct checker *c = ctx;

	if (seen_test_and_set(c, n->block))
		return BTREE_WALK_SKIP;
	if (!n->leaf)
		for (uint32_t i = 0; i < n->nr_entries; i++) {
			int r = md_ref(c, load_le64(node_value_c(n->data, i, 8)));

			if (r)
				return r;
		}
	return BTREE_WALK_CONTINUE;
}

static bool is_shared(struct checker *c, uint64_t b)
{
	return c->md_ondisk && b < cm_nr_blocks(c->md_ondisk) &&
	       cm_get(c->md_ondisk, b) > 1;
}

/* Underfull nodes are damage unless non-fatal errors are ignored. */
static struct btree_walk_opts walk_opts(const struct checker *c, uint32_t value_size,
					bool prefetch)
{
	return (struct btree_walk_opts) {
		.shape = { .value_size = value_size },
		.check_fill = !c->o->ignore_non_fatal,
		.prefetch = prefetch,
	};
}

/* Walks a tree counting references only (details tree, SM trees, held trees). */
static int walk_counting(struct checker *c, uint64_t root, uint32_t value_size,
			 const struct btree_walk_ops *extra)
{
	struct btree_walk_opts wo = walk_opts(c, value_size, true);
	struct btree_walk_ops ops = {
		.node = count_node,
		.damage = tree_damage,
	};
	struct pd_err err;
	int r;

	if (extra && extra->leaf)
		ops.leaf = extra->leaf;
	r = btree_walk(c->md->bm, root, &wo, &ops, c, &err);
	if (r)
		c->error = r;
	return r;
}

/*----------------------------------------------------------------
 * Device details tree
 *--------------------------------------------------------------*/

static int details_leaf(void *ctx, const struct btree_node_info *n)
{
	struct checker *c = ctx;
	struct pd_err err;

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		uint64_t dev = node_key(n->data, i);
		int r;

		if (c->o->override_root)
			continue;
		r = btree_lookup(c->md->bm, c->md->sb.data_mapping_root,
				 THIN_MAPPING_VALUE_SIZE, dev, NULL, &err);
		if (r == -ENODATA) {
			say(c, 1, "Inconsistency between the details tree and the mapping tree: device %" PRIu64 " has details but no mapping tree", dev);
			c->fatal++;
		}
		/* other errors show when the mapping tree is examined */
	}
	return 0;
}

/*----------------------------------------------------------------
 * Mapping tree
 *--------------------------------------------------------------*/

static int bottom_node(void *ctx, const struct btree_node_info *n)
{
	struct checker *c = ctx;
	uint64_t count;

	if (seen_test_and_set(c, n->block)) {
		/* shared with a device already walked: add its size */
		if (u64_map_get(&c->memo, n->block, &count)) {
			c->dev_count += count;
		} else {
			struct pd_err err;

			if (!thin_count_mappings(c->md, n->block, &count, &err))
				c->dev_count += count;
		}
		return BTREE_WALK_SKIP;
	}
	if (!n->leaf) {
		for (uint32_t i = 0; i < n->nr_entries; i++) {
			int r = md_ref(c, load_le64(node_value_c(n->data, i, 8)));

			if (r)
				return r;
		}
		if (is_shared(c, n->block) && c->nr_shared < BTREE_MAX_DEPTH) {
			c->shared[c->nr_shared].block = n->block;
			c->shared[c->nr_shared].start = c->dev_count;
			c->nr_shared++;
		}
	}
	return BTREE_WALK_CONTINUE;
}

static int bottom_exit(void *ctx, uint64_t block)
{
	struct checker *c = ctx;

	if (c->nr_shared && c->shared[c->nr_shared - 1].block == block) {
		c->nr_shared--;
		return u64_map_put(&c->memo, block,
				c->dev_count - c->shared[c->nr_shared].start);
	}
	return 0;
}

static int bottom_leaf(void *ctx, const struct btree_node_info *n)
{
	struct checker *c = ctx;
	uint64_t nr_data = cm_nr_blocks(c->data_expected);
	const uint8_t *vals = node_values_c(n->data);

	c->dev_count += n->nr_entries;
	if (is_shared(c, n->block) && u64_map_put(&c->memo, n->block, n->nr_entries))
		return -ENOMEM;
	for (uint32_t i = 0; i < n->nr_entries; i++) {
		uint64_t d = block_time_block(load_le64(vals + 8u * i));

		if (d >= nr_data) {
			if (c->dev_data_errors++ < 5)
				say(c, 1, "thin device %" PRIu64 ": mapping %" PRIu64
				    " -> data block %" PRIu64
				    " is beyond the end of the data device (%" PRIu64 " blocks)",
				    c->dev_id, node_key(n->data, i), d, nr_data);
			c->fatal++;
			continue;
		}
		if (cm_inc(c->data_expected, d))
			return -ENOMEM;
	}
	return 0;
}

static void check_device(struct checker *c, uint64_t dev, uint64_t root,
			 uint64_t details_root)
{
	struct btree_walk_opts wo = walk_opts(c, THIN_MAPPING_VALUE_SIZE, true);
	struct btree_walk_ops ops = {
		.node = bottom_node,
		.node_exit = bottom_exit,
		.leaf = bottom_leaf,
		.damage = tree_damage,
	};
	uint8_t details[THIN_DETAILS_VALUE_SIZE];
	struct thin_device td;
	struct pd_err err;
	int fatal_before = c->fatal;
	int r;

	r = md_ref(c, root);
	if (r) {
		c->error = r;
		return;
	}
	c->dev_id = dev;
	c->dev_count = 0;
	c->dev_data_errors = 0;
	c->nr_shared = 0;
	c->tree = T_BOTTOM;
	r = btree_walk(c->md->bm, root, &wo, &ops, c, &err);
	c->tree = T_OTHER;
	if (r) {
		c->error = r;
		return;
	}

	r = btree_lookup(c->md->bm, details_root, THIN_DETAILS_VALUE_SIZE, dev,
			 details, &err);
	if (r == -ENODATA) {
		if (!c->o->override_root) {
			say(c, 1, "Inconsistency between the details tree and the mapping tree: device %" PRIu64 " has mappings but no details", dev);
			c->fatal++;
		}
		return;
	}
	if (r)
		return;		/* reported with the details tree */
	thin_details_decode(details, &td);
	if (c->fatal == fatal_before && td.mapped_blocks != c->dev_count) {
		say(c, 1, "Thin device %" PRIu64 " has unexpected number of mappings, expected %"
		    PRIu64 ", actual %" PRIu64, dev, td.mapped_blocks, c->dev_count);
		c->fatal++;
	}
}

struct top_walk {
	struct checker *c;
	uint64_t details_root;
	bool descend;
};

static int top_leaf(void *ctx, const struct btree_node_info *n)
{
	struct top_walk *t = ctx;
	struct checker *c = t->c;

	/* copy: walking the devices reuses the cache this node lives in */
	uint8_t node[MD_BLOCK_SIZE];
	uint32_t nr = n->nr_entries;

	memcpy(node, n->data, MD_BLOCK_SIZE);
	for (uint32_t i = 0; i < nr && !c->error; i++) {
		uint64_t dev = node_key(node, i);
		uint64_t root = load_le64(node_value_c(node, i, 8));

		if (t->descend) {
			check_device(c, dev, root, t->details_root);
		} else {
			int r = md_ref(c, root);

			if (r)
				return r;
		}
	}
	return c->error;
}

static int top_node(void *ctx, const struct btree_node_info *n)
{
	struct top_walk *t = ctx;

	return count_node(t->c, n);
}

static void top_damage(void *ctx, const struct btree_damage *d)
{
	struct top_walk *t = ctx;

	t->c->tree = T_TOP;
	tree_damage(t->c, d);
}

static void check_mapping_tree(struct checker *c, uint64_t top_root,
			       uint64_t details_root, bool descend)
{
	/* no prefetch: the devices' walks share the cache with this one */
	struct btree_walk_opts wo = walk_opts(c, THIN_MAPPING_VALUE_SIZE, false);
	struct btree_walk_ops ops = {
		.node = top_node,
		.leaf = top_leaf,
		.damage = top_damage,
	};
	struct top_walk t = { .c = c, .details_root = details_root, .descend = descend };
	struct pd_err err;
	int r;

	r = md_ref(c, top_root);
	if (!r)
		r = btree_walk(c->md->bm, top_root, &wo, &ops, &t, &err);
	if (r && !c->error)
		c->error = r;
}

/*----------------------------------------------------------------
 * Space maps
 *--------------------------------------------------------------*/

static void sm_damage(void *ctx, const char *msg)
{
	struct checker *c = ctx;
	char **n;

	c->fatal++;
	n = realloc(c->sm_msgs, sizeof(*n) * (c->nr_sm_msgs + 1));
	if (!n)
		return;
	c->sm_msgs = n;
	c->sm_msgs[c->nr_sm_msgs] = strdup(msg);
	if (c->sm_msgs[c->nr_sm_msgs])
		c->nr_sm_msgs++;
}

static int sm_ref(void *ctx, uint64_t b)
{
	return md_ref(ctx, b);
}

static int sm_node(void *ctx, const struct btree_node_info *n)
{
	return count_node(ctx, n);
}

/* Loads a space map's counts; its own blocks count as references. */
static int load_sm(struct checker *c, const struct sm_root *root, bool metadata,
		   struct count_map **out)
{
	struct sm_load_hooks h = {
		.ctx = c, .node = sm_node, .ref = sm_ref, .damage = sm_damage,
	};
	struct pd_err err;
	int r;

	r = cm_create(root->nr_blocks, out);
	if (r)
		return r;
	r = sm_disk_load(c->md->bm, root, metadata, *out, &h, &err);
	return r < 0 ? r : 0;
}

/*
 * Compares computed and on-disk counts.  A leak (on disk but referenced
 * by nothing) is non-fatal; any other difference is fatal, except that a
 * repair fixes leaks and, in the data space map, counts above the
 * computed ones.  Metadata over-counts stay fatal: the blocks concerned
 * may be the space map's own, which the repair itself rewrites.
 */
static void compare_counts(struct checker *c, const char *what, bool data,
			   struct count_map *expected, struct count_map *ondisk)
{
	uint64_t n = cm_nr_blocks(ondisk), leaked = 0, bad = 0, over = 0;

	if (cm_nr_blocks(expected) < n)
		n = cm_nr_blocks(expected);
	for (uint64_t b = 0; b < n; b++) {
		uint32_t e = cm_get(expected, b), a = cm_get(ondisk, b);

		if (e == a)
			continue;
		if (!e) {
			if (leaked++ < MAX_REPORTED)
				say(c, 1, "%s block %" PRIu64 " has leaked: expected 0, but got %u",
				    what, b, a);
			continue;
		}
		if (data && c->repair && a > e)
			over++;
		else
			bad++;
		if (over + bad <= MAX_REPORTED)
			say(c, 1, "%s reference counts differ for block %" PRIu64
			    ", expected %u, but got %u", what, b, e, a);
	}
	if (leaked) {
		say(c, 1, "%" PRIu64 " %s blocks have leaked", leaked, what);
		if (c->repair)
			c->fixable += leaked;
		else if (!c->o->ignore_non_fatal)
			c->non_fatal++;
	}
	if (over) {
		say(c, 1, "%" PRIu64 " %s blocks have reference counts above their references",
		    over, what);
		c->fixable += over;
	}
	if (bad) {
		say(c, 1, "%" PRIu64 " %s blocks have bad reference counts", bad, what);
		c->fatal++;
	}
}

/*
 * Sets every count that is above the computed one to the computed one,
 * in one transaction on the live metadata (new bitmaps, index and
 * ref-count nodes, then the superblock: a crash leaves the old metadata
 * or the repaired one), clearing NEEDS_CHECK in the same superblock.
 */
static int repair_space_maps(struct checker *c)
{
	struct pd_err err = { 0 };
	struct pool *p;
	uint64_t data_fixed = 0, md_fixed = 0;
	int r = 0;

	/* the checker's cached blocks are not used again */
	bm_destroy(c->md->bm);
	c->md->bm = NULL;
	r = pool_open(c->md->io, 0, &p, &err);
	if (r) {
		fail(c, "cannot repair: %s", err.msg);
		return r;
	}
	if (c->data_ondisk)
		r = pool_lower_counts(p, false, c->data_expected, c->data_ondisk,
				      &data_fixed, &err);
	if (!r && c->md_ondisk)
		r = pool_lower_counts(p, true, c->md_expected, c->md_ondisk, &md_fixed, &err);
	if (r) {
		pool_destroy(p);
		fail(c, "cannot repair: %s", err.msg);
		return r;
	}
	p->sb.flags &= ~THIN_SB_FLAG_NEEDS_CHECK;
	r = pool_commit(p, &err);
	pool_destroy(p);
	if (r) {
		fail(c, "writing the repaired space maps failed: %s", err.msg);
		return r;
	}
	/* 0.9's words (its --auto-repair fixes metadata leaks only) */
	if (data_fixed)
		say(c, 0, "fixed data leaks");
	if (md_fixed)
		say(c, 0, "fixed metadata leaks");
	if (c->md->live.flags & THIN_SB_FLAG_NEEDS_CHECK)
		say(c, 0, "cleared needs_check flag");
	return 0;
}

/*----------------------------------------------------------------
 * Opening
 *--------------------------------------------------------------*/

/* Beyond v0.9: everything the kernel checks in the superblock, and sane roots. */
static int check_sb_fields(struct checker *c)
{
	const struct thin_sb *sb = &c->md->sb;
	struct pd_err err;
	int bad = 0;

	if (sb->magic != THIN_SB_MAGIC) {
		say(c, 1, "superblock is corrupt");
		say(c, 2, "bad magic number %" PRIu64 " (expected %llu)", sb->magic,
		    (unsigned long long)THIN_SB_MAGIC);
		bad++;
	}
	if (thin_sb_check_fields(sb, c->nr_md_blocks, c->o->metadata_snap, &err)) {
		say(c, 1, "%s", err.msg);
		bad++;
	}
	if (sb->incompat_flags || sb->compat_ro_flags) {
		say(c, 1, "superblock is corrupt");
		say(c, 2, "unsupported feature flags: incompat %#x, compat_ro %#x",
		    sb->incompat_flags, sb->compat_ro_flags);
		bad++;
	}
	if (bad)
		return -EILSEQ;
	if (sb->version != 1 && sb->version != 2)
		say(c, 1, "warning: unexpected metadata version %u", sb->version);
	return 0;
}

/*
 * Opens path and checks the superblock in use (block 0, or the held root
 * with metadata_snap): its checksum as v0.9 does, then everything the
 * kernel checks and sane roots.
 */
static int examine_superblock(struct checker *c, const char *path)
{
	struct thin_open_opts oo = {
		.engine = c->o->engine,
		.io_flags = (c->o->clear_needs_check || c->o->auto_repair ? IO_OPEN_WRITE : 0) |
			    (c->o->metadata_snap ? 0 : IO_OPEN_EXCL),
	};
	struct pd_err err;
	struct bm_block *blk;
	uint64_t loc = 0;
	uint32_t wanted;
	bool live_ok;
	int r;

	r = thin_metadata_open_device(path, &oo, &c->md, &err);
	if (r) {
		tell(c, r == -EFBIG ? THIN_CHECK_NOTICE : THIN_CHECK_ERROR, 0, "%s", err.msg);
		return r;
	}
	c->nr_md_blocks = c->md->io->nr_blocks;

	r = bm_read_lock(c->md->bm, 0, NULL, &blk, &err);
	if (r) {
		say(c, 0, "examining superblock");
		say(c, 1, "superblock is corrupt");
		say(c, 2, "%s", err.msg);
		return r;
	}
	if (block_looks_like_xml(bm_block_data(blk), MD_BLOCK_SIZE)) {
		bm_unlock(blk);
		tell(c, THIN_CHECK_NOTICE, 0,
		     "This looks like XML.  thin_check only checks the binary metadata format.");
		return -EPROTO;
	}
	thin_sb_decode(bm_block_data(blk), 0, &c->md->live);
	live_ok = thin_sb_csum_ok(bm_block_data(blk), NULL);
	bm_unlock(blk);

	if (c->o->metadata_snap) {
		if (!live_ok || !c->md->live.metadata_snap) {
			tell(c, THIN_CHECK_NOTICE, 0, "No metadata snapshot found.");
			return -ENODATA;
		}
		loc = c->md->live.metadata_snap;
	}

	say(c, 0, "examining superblock");
	if (loc >= c->nr_md_blocks) {
		say(c, 1, "superblock is corrupt");
		say(c, 2, "metadata snapshot block %" PRIu64 " is beyond the end of the device", loc);
		return -EILSEQ;
	}
	r = bm_read_lock(c->md->bm, loc, NULL, &blk, &err);
	if (r) {
		say(c, 1, "superblock is corrupt");
		say(c, 2, "%s", err.msg);
		return r;
	}
	if (!thin_sb_csum_ok(bm_block_data(blk), &wanted)) {
		bm_unlock(blk);
		say(c, 1, "superblock is corrupt");
		say(c, 2, "bad checksum in superblock, wanted %u", wanted);
		return -EILSEQ;
	}
	thin_sb_decode(bm_block_data(blk), loc, &c->md->sb);
	bm_unlock(blk);

	r = check_sb_fields(c);
	if (r)
		return r;
	sm_root_decode(c->md->live.data_sm_root, &c->md->data_sm);
	sm_root_decode(c->md->live.metadata_sm_root, &c->md->metadata_sm);
	if (c->o->metadata_snap) {
		memcpy(c->md->sb.data_sm_root, c->md->live.data_sm_root, SM_ROOT_BLOB_SIZE);
		c->md->held = true;
	}
	return 0;
}

static int clear_needs_check(struct checker *c)
{
	struct pd_err err;
	struct bm_block *blk;
	struct thin_sb sb;
	uint8_t *buf;
	int r;

	if (!(c->md->live.flags & THIN_SB_FLAG_NEEDS_CHECK))
		return 0;
	if (!c->md->bm) {
		fail(c, "internal error: no block manager to clear the flag");
		return -EINVAL;
	}
	buf = io_alloc_block();
	if (!buf)
		return -ENOMEM;
	r = bm_read_lock(c->md->bm, 0, &thin_sb_validator, &blk, &err);
	if (r) {
		free(buf);
		fail(c, "%s", err.msg);
		return r;
	}
	thin_sb_decode(bm_block_data(blk), 0, &sb);
	memcpy(buf, bm_block_data(blk), MD_BLOCK_SIZE);
	bm_unlock(blk);
	bm_forget(c->md->bm, 0);
	/* only the flags word and the checksum change */
	store_le32(buf + 4, sb.flags & ~THIN_SB_FLAG_NEEDS_CHECK);
	block_set_csum(buf, CSUM_XOR_SUPERBLOCK);
	r = io_write_block(c->md->io, 0, buf);
	if (!r)
		r = io_flush(c->md->io);
	free(buf);
	if (r) {
		fail(c, "writing the superblock failed: %s", strerror(-r));
		return r;
	}
	say(c, 0, "cleared needs_check flag");
	return 0;
}

/* The trees of the held metadata snapshot: their blocks are referenced too. */
static void count_held_trees(struct checker *c)
{
	struct thin_sb held;
	struct bm_block *blk;
	struct pd_err err;
	uint64_t h = c->md->live.metadata_snap;
	int r;

	md_ref(c, h);
	r = h < c->nr_md_blocks ?
		bm_read_lock(c->md->bm, h, &thin_sb_validator, &blk, &err) :
		pd_err_set(&err, -EINVAL, "block %" PRIu64 " is beyond the end of the device", h);
	if (r) {
		say(c, 1, "metadata snapshot is corrupt");
		say(c, 2, "%s", err.msg);
		c->fatal++;
		return;
	}
	thin_sb_decode(bm_block_data(blk), h, &held);
	bm_unlock(blk);
	md_ref(c, held.device_details_root);
	c->tree = T_DETAILS;
	walk_counting(c, held.device_details_root, THIN_DETAILS_VALUE_SIZE, NULL);
	/* the held devices' data blocks are already counted if shared */
	check_mapping_tree(c, held.data_mapping_root, held.device_details_root, true);
	c->tree = T_OTHER;
}

static int run_check(struct checker *c, const char *path)
{
	const struct thin_sb *sb;
	uint64_t top_root;
	bool sm_checks;
	int r;

	r = examine_superblock(c, path);
	if (r)
		return 1;
	sb = &c->md->sb;

	tell(c, THIN_CHECK_SUMMARY, 0, "TRANSACTION_ID=%" PRIu64, c->md->live.trans_id);
	tell(c, THIN_CHECK_SUMMARY, 0, "METADATA_FREE_BLOCKS=%" PRIu64,
	     c->md->metadata_sm.nr_blocks > c->md->metadata_sm.nr_allocated ?
	     c->md->metadata_sm.nr_blocks - c->md->metadata_sm.nr_allocated : 0);
	if (c->o->super_block_only)
		return c->o->clear_needs_check && clear_needs_check(c) ? 1 : 0;

	sm_checks = !c->o->metadata_snap && !c->o->skip_mappings;
	/* sizes come from disk: bound them by the device before allocating */
	if (!sm_size_fits(c->md->data_sm.nr_blocks, c->nr_md_blocks) ||
	    (c->o->metadata_snap && c->md->metadata_sm.nr_blocks > c->nr_md_blocks)) {
		say(c, 1, "superblock is corrupt: a space map is larger than the metadata device can describe");
		return 1;
	}
	if (cm_create(c->md->metadata_sm.nr_blocks > c->nr_md_blocks ?
		      c->md->metadata_sm.nr_blocks : c->nr_md_blocks, &c->md_expected) ||
	    cm_create(c->md->data_sm.nr_blocks, &c->data_expected) ||
	    !(c->seen = calloc(c->nr_md_blocks / 8 + 1, 1))) {
		fail(c, "out of memory");
		return 1;
	}

	/* the metadata space map first: its counts tell which nodes are shared */
	if (sm_checks) {
		r = md_ref(c, 0);
		if (!r)
			r = load_sm(c, &c->md->metadata_sm, true, &c->md_ondisk);
		if (r) {
			fail(c, "%s", strerror(-r));
			return 1;
		}
	}

	say(c, 0, "examining devices tree");
	c->tree = T_DETAILS;
	if (sm_checks || c->o->metadata_snap)
		md_ref(c, sb->device_details_root);
	{
		struct btree_walk_ops ops = { .leaf = details_leaf };

		walk_counting(c, sb->device_details_root, THIN_DETAILS_VALUE_SIZE, &ops);
	}
	c->tree = T_OTHER;
	if (c->error)
		goto out_error;

	top_root = c->o->override_root ? c->o->override_root_block : sb->data_mapping_root;
	if (c->o->skip_mappings) {
		say(c, 0, "examining top level of mapping tree");
		check_mapping_tree(c, top_root, sb->device_details_root, false);
	} else {
		say(c, 0, "examining mapping tree");
		check_mapping_tree(c, top_root, sb->device_details_root, true);
	}
	if (c->error)
		goto out_error;

	/* the held metadata snapshot's trees are referenced too */
	if (sm_checks && c->md->live.metadata_snap) {
		count_held_trees(c);
		if (c->error)
			goto out_error;
	}

	if (sm_checks) {
		say(c, 0, "checking space map counts");
		r = load_sm(c, &c->md->data_sm, false, &c->data_ondisk);
		if (r) {
			fail(c, "%s", strerror(-r));
			return 1;
		}
		for (unsigned i = 0; i < c->nr_sm_msgs; i++)
			say(c, 1, "%s", c->sm_msgs[i]);
		compare_counts(c, "data", true, c->data_expected, c->data_ondisk);
		compare_counts(c, "metadata", false, c->md_expected, c->md_ondisk);
		if (c->md->metadata_sm.nr_blocks > c->nr_md_blocks) {
			say(c, 1, "metadata space map has %" PRIu64 " blocks but the device only %" PRIu64,
			    c->md->metadata_sm.nr_blocks, c->nr_md_blocks);
			c->fatal++;
		}
	}

	if (c->fatal || (c->non_fatal && !c->o->ignore_non_fatal))
		return 1;
	if (c->fixable)
		return repair_space_maps(c) ? 1 : 0;
	if ((c->o->clear_needs_check || c->o->auto_repair) && clear_needs_check(c))
		return 1;
	return 0;

out_error:
	fail(c, "check stopped: %s", strerror(-c->error));
	return 1;
}

static void checker_destroy(struct checker *c)
{
	for (unsigned i = 0; i < c->nr_sm_msgs; i++)
		free(c->sm_msgs[i]);
	free(c->sm_msgs);
	u64_map_exit(&c->memo);
	free(c->seen);
	cm_destroy(c->md_expected);
	cm_destroy(c->md_ondisk);
	cm_destroy(c->data_expected);
	cm_destroy(c->data_ondisk);
	thin_metadata_close(c->md);
}

int thin_check(const char *path, const struct thin_check_opts *o,
	       thin_check_report_fn report, void *ctx)
{
	struct checker c;
	int ret;

	memset(&c, 0, sizeof(c));
	c.o = o;
	c.report = report;
	c.report_ctx = ctx;
	c.repair = (o->clear_needs_check || o->auto_repair) &&
		   !o->super_block_only && !o->skip_mappings;
	ret = run_check(&c, path);
	checker_destroy(&c);
	return ret;
}
