/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "salvage.h"
#include "metadata.h"
#include "persistent-data/checksum.h"
#include "persistent-data/space-map-disk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct salvager {
	struct bm *bm;
	const struct salvage_opts *o;
	struct salvage_stats *st;
	struct emitter *e;
	struct pd_err *err;
	uint64_t nr_data_blocks;

	/* the device being walked */
	uint64_t dev;
	uint64_t count;
	uint32_t max_time;		/* latest mapping time seen */
	uint64_t max_data;		/* highest data block mapped + 1 */
	struct emit_run run;
	bool emitting;
	int error;

	/* device ids found in either tree */
	uint64_t *ids;
	uint64_t nr_ids, max_ids;

	/* mapping trees no top-level entry names (found by scanning) */
	struct orphan {
		uint64_t root, count;
		bool claimed;
	} *orphans;
	unsigned nr_orphans;

	/*
	 * Leaves that several devices reach (a snapshot and its origin):
	 * for an emitter that takes shared sections, each is written once,
	 * as a section of its own, and every device refers to it.  A bit a
	 * metadata block in each map.
	 */
	uint8_t *seen, *shared, *defined;
	uint64_t nr_md_blocks;
};

#define MAX_ORPHANS 4096

static void report(struct salvager *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void report(struct salvager *s, const char *fmt, ...)
{
	char msg[PD_ERR_MSG_MAX];
	va_list ap;

	if (!s->o->report)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s->o->report(s->o->ctx, msg);
}

/*
 * Damage is tolerated, but a node is only trusted when its layout is
 * exactly the format's: better a range reported lost than values read
 * from the wrong place.
 */
static const struct btree_walk_opts lax_walk = {
	.shape = { .exact_max = true },
	.prefetch = true,
};

/*----------------------------------------------------------------
 * Finding roots
 *--------------------------------------------------------------*/

/* Is block b a readable node whose leaves hold values of vs bytes? */
static bool tree_kind(struct bm *bm, uint64_t b, uint32_t vs)
{
	for (unsigned depth = 0; depth < BTREE_MAX_DEPTH; depth++) {
		struct bm_block *blk;
		struct pd_err e;
		const void *n;
		bool leaf;
		uint64_t child = 0;

		if (b >= bm_nr_blocks(bm) || bm_read_lock(bm, b, &btree_node_validator, &blk, &e))
			return false;
		n = bm_block_data(blk);
		leaf = node_is_leaf(n);
		if (leaf) {
			bool ok = le32_to_cpu(node_header_c(n)->value_size) == vs;

			bm_unlock(blk);
			return ok;
		}
		if (le32_to_cpu(node_header_c(n)->value_size) != 8 || !node_nr_entries(n)) {
			bm_unlock(blk);
			return false;
		}
		child = load_le64(node_value_c(n, 0, 8));
		bm_unlock(blk);
		b = child;
	}
	return false;
}

/* A top-level leaf: its values are roots of trees, its keys device ids. */
static bool looks_like_top_level(struct bm *bm, uint64_t b)
{
	struct bm_block *blk;
	struct pd_err e;
	const void *n;
	bool ok = true;

	/* descend to the first leaf */
	for (unsigned depth = 0; depth < BTREE_MAX_DEPTH; depth++) {
		if (bm_read_lock(bm, b, &btree_node_validator, &blk, &e))
			return false;
		n = bm_block_data(blk);
		if (node_is_leaf(n))
			break;
		if (!node_nr_entries(n)) {
			bm_unlock(blk);
			return false;
		}
		b = load_le64(node_value_c(n, 0, 8));
		bm_unlock(blk);
	}
	n = bm_block_data(blk);
	if (le32_to_cpu(node_header_c(n)->value_size) != 8 || !node_nr_entries(n)) {
		bm_unlock(blk);
		return false;
	}
	for (uint32_t i = 0; i < node_nr_entries(n) && i < 4 && ok; i++) {
		uint64_t root = load_le64(node_value_c(n, i, 8));

		ok = node_key(n, i) <= THIN_MAX_DEV_ID && root && root < bm_nr_blocks(bm);
	}
	bm_unlock(blk);
	/*
	 * The values must themselves be mapping trees: one of the first few
	 * reading as one will do (a device's damaged tree does not make the
	 * top level any less of one).
	 */
	if (!ok)
		return false;
	{
		struct btree_cursor *c;
		bool found = false;

		if (btree_cursor_create(bm, b, 8, &c, &e))
			return false;
		if (!btree_cursor_next_leaf(c, &e)) {
			const void *leaf = btree_cursor_leaf(c);

			for (uint32_t i = 0; i < node_nr_entries(leaf) && i < 8 && !found; i++)
				found = tree_kind(bm, load_le64(node_value_c(leaf, i, 8)), 8);
		}
		btree_cursor_destroy(c);
		return found;
	}
}

struct key_counter {
	uint64_t n;
};

static int count_leaf(void *ctx, const struct btree_node_info *n)
{
	((struct key_counter *)ctx)->n += n->nr_entries;
	return 0;
}

static uint64_t count_keys(struct bm *bm, uint64_t root, uint32_t vs)
{
	struct btree_walk_opts wo = lax_walk;
	struct btree_walk_ops ops = { .leaf = count_leaf };
	struct key_counter kc = { 0 };
	struct pd_err e;

	wo.shape.value_size = vs;
	btree_walk(bm, root, &wo, &ops, &kc, &e);
	return kc.n;
}

/*
 * Candidate roots: every valid node that no internal node points at is
 * the root of something.  The largest trees of each kind are kept.
 */
#define MAX_CANDIDATES 16

struct candidates {
	uint64_t block[MAX_CANDIDATES];
	uint64_t keys[MAX_CANDIDATES];
	unsigned n;
};

static void add_candidate(struct candidates *c, uint64_t b, uint64_t keys)
{
	unsigned i, worst = 0;

	for (i = 0; i < c->n; i++)
		if (c->block[i] == b)
			return;
	if (c->n < MAX_CANDIDATES) {
		c->block[c->n] = b;
		c->keys[c->n++] = keys;
		return;
	}
	for (i = 1; i < c->n; i++)
		if (c->keys[i] < c->keys[worst])
			worst = i;
	if (keys > c->keys[worst]) {
		c->block[worst] = b;
		c->keys[worst] = keys;
	}
}

static int scan_for_roots(struct salvager *s, struct candidates *details,
			  struct candidates *tops)
{
	uint64_t nr = bm_nr_blocks(s->bm);
	uint8_t *node = calloc(nr / 8 + 1, 1), *child = calloc(nr / 8 + 1, 1);

	if (!s->orphans)
		s->orphans = calloc(MAX_ORPHANS, sizeof(*s->orphans));
	if (!node || !child || !s->orphans) {
		free(node);
		free(child);
		return pd_err_set(s->err, -ENOMEM, "out of memory");
	}
	for (uint64_t b = 1; b < nr; b++) {
		struct bm_block *blk;
		struct pd_err e;
		const void *n;

		if (bm_read_lock(s->bm, b, &btree_node_validator, &blk, &e))
			continue;
		n = bm_block_data(blk);
		node[b >> 3] |= (uint8_t)(1u << (b & 7));
		if (!node_is_leaf(n))
			for (uint32_t i = 0; i < node_nr_entries(n); i++) {
				uint64_t c = load_le64(node_value_c(n, i, 8));

				if (c < nr)
					child[c >> 3] |= (uint8_t)(1u << (c & 7));
			}
		bm_unlock(blk);
	}
	for (uint64_t b = 1; b < nr; b++) {
		if (!(node[b >> 3] & (1u << (b & 7))) || (child[b >> 3] & (1u << (b & 7))))
			continue;
		if (tree_kind(s->bm, b, THIN_DETAILS_VALUE_SIZE)) {
			add_candidate(details, b, count_keys(s->bm, b, THIN_DETAILS_VALUE_SIZE));
		} else if (looks_like_top_level(s->bm, b)) {
			add_candidate(tops, b, count_keys(s->bm, b, THIN_MAPPING_VALUE_SIZE));
		} else if (tree_kind(s->bm, b, THIN_MAPPING_VALUE_SIZE) &&
			   s->nr_orphans < MAX_ORPHANS) {
			/* a device's mapping tree, maybe named by no top level */
			s->orphans[s->nr_orphans].root = b;
			s->orphans[s->nr_orphans].count =
				count_keys(s->bm, b, THIN_MAPPING_VALUE_SIZE);
			s->orphans[s->nr_orphans++].claimed = false;
		}
	}
	free(node);
	free(child);
	s->st->used_scan = true;
	return 0;
}

/* The sorted keys of a tree (device ids), what can be read of them. */
struct key_list {
	uint64_t *keys;
	uint64_t n, max;
};

static int key_list_leaf(void *ctx, const struct btree_node_info *n)
{
	struct key_list *l = ctx;

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		if (l->n == l->max) {
			uint64_t m = l->max ? l->max * 2 : 64;
			uint64_t *v = realloc(l->keys, m * sizeof(*v));

			if (!v)
				return -ENOMEM;
			l->keys = v;
			l->max = m;
		}
		l->keys[l->n++] = node_key(n->data, i);
	}
	return 0;
}

static int tree_keys(struct bm *bm, uint64_t root, uint32_t vs, struct key_list *l)
{
	struct btree_walk_opts wo = lax_walk;
	struct btree_walk_ops ops = { .leaf = key_list_leaf };
	struct pd_err e;
	int r;

	l->n = 0;
	if (!root)
		return 0;
	wo.shape.value_size = vs;
	r = btree_walk(bm, root, &wo, &ops, l, &e);
	return r == -ENOMEM ? r : 0;
}

/* Keys found in both (each list is in walk order: ascending). */
static uint64_t common_keys(const struct key_list *a, const struct key_list *b)
{
	uint64_t i = 0, j = 0, n = 0;

	while (i < a->n && j < b->n) {
		if (a->keys[i] < b->keys[j]) {
			i++;
		} else if (a->keys[i] > b->keys[j]) {
			j++;
		} else {
			n++;
			i++;
			j++;
		}
	}
	return n;
}

/*
 * Picks the details tree and the top level of the mapping tree that
 * belong together: the pair naming the most devices in common; then the
 * pair holding more of the superblock's own roots; then the larger
 * trees.  A root of the superblock that reads as a tree of the wrong
 * kind is not a candidate at all (a mapping root pointing at a device's
 * own mapping tree, say), and a stale root loses to the consistent one.
 */
static int choose_roots(struct salvager *s, const struct candidates *details,
			const struct candidates *tops, uint64_t sb_details, uint64_t sb_top,
			uint64_t *details_root, uint64_t *mapping_root)
{
	struct key_list dk[MAX_CANDIDATES + 1] = { 0 }, tk = { 0 };
	uint64_t dblk[MAX_CANDIDATES + 1], tblk[MAX_CANDIDATES + 1];
	unsigned nd = 0, nt = 0;
	uint64_t best_common = 0, best_sb = 0, best_size = 0;
	bool have = false;
	int r = 0;

	dblk[nd++] = 0;			/* "no details tree" */
	for (unsigned i = 0; i < details->n; i++)
		dblk[nd++] = details->block[i];
	tblk[nt++] = 0;
	for (unsigned i = 0; i < tops->n; i++)
		tblk[nt++] = tops->block[i];
	for (unsigned i = 0; i < nd && !r; i++)
		r = tree_keys(s->bm, dblk[i], THIN_DETAILS_VALUE_SIZE, &dk[i]);
	*details_root = *mapping_root = 0;
	for (unsigned j = 0; j < nt && !r; j++) {
		r = tree_keys(s->bm, tblk[j], THIN_MAPPING_VALUE_SIZE, &tk);
		for (unsigned i = 0; i < nd && !r; i++) {
			uint64_t common = common_keys(&dk[i], &tk);
			uint64_t from_sb = (dblk[i] && dblk[i] == sb_details) +
					   (tblk[j] && tblk[j] == sb_top);
			uint64_t size = dk[i].n + tk.n;

			if (!have || common > best_common ||
			    (common == best_common && (from_sb > best_sb ||
			     (from_sb == best_sb && size > best_size)))) {
				have = true;
				best_common = common;
				best_sb = from_sb;
				best_size = size;
				*details_root = dblk[i];
				*mapping_root = tblk[j];
			}
		}
	}
	for (unsigned i = 0; i < nd; i++)
		free(dk[i].keys);
	free(tk.keys);
	if (r)
		return pd_err_set(s->err, r, "out of memory");
	return 0;
}

static int claim_leaf(void *ctx, const struct btree_node_info *n)
{
	struct salvager *s = ctx;

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		uint64_t root = load_le64(node_value_c(n->data, i, 8));

		for (unsigned j = 0; j < s->nr_orphans; j++)
			if (s->orphans[j].root == root)
				s->orphans[j].claimed = true;
	}
	return 0;
}

/* Mapping trees the chosen top level names are not orphans. */
static int claim_named_orphans(struct salvager *s, uint64_t top)
{
	struct btree_walk_opts wo = lax_walk;
	struct btree_walk_ops ops = { .leaf = claim_leaf };
	struct pd_err e;

	if (!top || !s->nr_orphans)
		return 0;
	wo.shape.value_size = THIN_MAPPING_VALUE_SIZE;
	return btree_walk(s->bm, top, &wo, &ops, s, &e) == -ENOMEM ?
		pd_err_set(s->err, -ENOMEM, "out of memory") : 0;
}

/*
 * A device whose entry in the top level is lost, but whose details say
 * how many mappings it has: the one mapping tree found by scanning that
 * no top-level entry names and that holds exactly that many mappings is
 * its tree.  Several such trees (or none): the device stays empty.
 */
static bool find_orphan(struct salvager *s, uint64_t mapped, uint64_t *root)
{
	unsigned match = 0, found = 0;

	if (!mapped)
		return false;
	for (unsigned j = 0; j < s->nr_orphans; j++)
		if (s->orphans[j].count == mapped) {
			match++;
			found = j;
		}
	if (match != 1 || s->orphans[found].claimed)
		return false;
	s->orphans[found].claimed = true;
	*root = s->orphans[found].root;
	return true;
}

/*
 * The superblock's roots are used as they are when each reads as a tree
 * of its kind and both name the same devices, also when only the
 * superblock's checksum is damaged (its fields still readable: the
 * device holds stale trees of earlier transactions that scanning alone
 * could prefer); otherwise the device is
 * scanned and the consistent pair is chosen from the candidates found
 * there and the superblock's roots (choose_roots).
 */
static int find_roots(struct salvager *s, bool sb_fields_ok, const struct thin_sb *sb,
		      uint64_t *details_root, uint64_t *mapping_root)
{
	struct candidates details = { .n = 0 }, tops = { .n = 0 };
	uint64_t sb_details = 0, sb_top = 0;
	int r;

	if (sb_fields_ok) {
		if (tree_kind(s->bm, sb->device_details_root, THIN_DETAILS_VALUE_SIZE))
			sb_details = sb->device_details_root;
		if (looks_like_top_level(s->bm, sb->data_mapping_root) ||
		    (tree_kind(s->bm, sb->data_mapping_root, THIN_MAPPING_VALUE_SIZE) &&
		     !count_keys(s->bm, sb->data_mapping_root, THIN_MAPPING_VALUE_SIZE)))
			sb_top = sb->data_mapping_root;	/* or a pool without devices */
		if (sb->data_mapping_root && !sb_top)
			report(s, "the superblock's mapping root %" PRIu64
			       " does not read as the top level of a mapping tree",
			       sb->data_mapping_root);
		if (sb->device_details_root && !sb_details)
			report(s, "the superblock's details root %" PRIu64
			       " does not read as a device details tree",
			       sb->device_details_root);
	}
	if (sb_details && sb_top) {
		struct key_list a = { 0 }, b = { 0 };
		bool same;

		r = tree_keys(s->bm, sb_details, THIN_DETAILS_VALUE_SIZE, &a);
		if (!r)
			r = tree_keys(s->bm, sb_top, THIN_MAPPING_VALUE_SIZE, &b);
		same = !r && a.n == b.n && common_keys(&a, &b) == a.n;
		free(a.keys);
		free(b.keys);
		if (r)
			return pd_err_set(s->err, r, "out of memory");
		if (same) {
			*details_root = sb_details;
			*mapping_root = sb_top;
			return 0;
		}
		report(s, "the superblock's details tree and mapping tree name different devices");
	}
	if (sb_details)
		add_candidate(&details, sb_details, UINT64_MAX);
	if (sb_top)
		add_candidate(&tops, sb_top, UINT64_MAX);
	r = scan_for_roots(s, &details, &tops);
	if (r)
		return r;
	r = choose_roots(s, &details, &tops, sb_details, sb_top, details_root, mapping_root);
	if (!r)
		r = claim_named_orphans(s, *mapping_root);
	if (r)
		return r;
	report(s, "roots chosen after scanning the device: details tree %" PRIu64
	       "%s, mapping tree %" PRIu64 "%s", *details_root,
	       *details_root && *details_root == sb_details ? " (the superblock's)" : "",
	       *mapping_root,
	       *mapping_root && *mapping_root == sb_top ? " (the superblock's)" : "");
	return 0;
}

/*
 * A copy of the superblock elsewhere on the device (the root of a held
 * metadata snapshot is one): its data block size is the pool's.
 */
static uint32_t find_superblock_copy(struct salvager *s, uint64_t *where)
{
	for (uint64_t b = 1; b < bm_nr_blocks(s->bm); b++) {
		struct bm_block *blk;
		struct thin_sb copy;
		struct pd_err e;
		bool ok;

		if (bm_read_lock(s->bm, b, NULL, &blk, &e))
			continue;
		ok = thin_sb_csum_ok(bm_block_data(blk), NULL);
		if (ok)
			thin_sb_decode(bm_block_data(blk), b, &copy);
		bm_unlock(blk);
		if (ok && copy.magic == THIN_SB_MAGIC && copy.location == b &&
		    copy.data_block_size >= THIN_MIN_DATA_BLOCK_SIZE &&
		    copy.data_block_size <= THIN_MAX_DATA_BLOCK_SIZE &&
		    !(copy.data_block_size % 128)) {
			*where = b;
			return copy.data_block_size;
		}
	}
	return 0;
}

/*----------------------------------------------------------------
 * Device ids
 *--------------------------------------------------------------*/

static int add_id(struct salvager *s, uint64_t id)
{
	if (s->nr_ids == s->max_ids) {
		uint64_t n = s->max_ids ? s->max_ids * 2 : 64;
		uint64_t *v = realloc(s->ids, n * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->ids = v;
		s->max_ids = n;
	}
	s->ids[s->nr_ids++] = id;
	return 0;
}

static int ids_leaf(void *ctx, const struct btree_node_info *n)
{
	struct salvager *s = ctx;

	for (uint32_t i = 0; i < n->nr_entries; i++)
		if (add_id(s, node_key(n->data, i)))
			return -ENOMEM;
	return 0;
}

static void tree_damage(void *ctx, const struct btree_damage *d)
{
	struct salvager *s = ctx;

	s->st->lost_ranges++;
	if (d->has_hi)
		report(s, "devices [%" PRIu64 ", %" PRIu64 ") lost from a damaged tree: %s",
		       d->lo, d->hi, d->msg);
	else
		report(s, "devices [%" PRIu64 ", -] lost from a damaged tree: %s", d->lo, d->msg);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int collect_ids(struct salvager *s, uint64_t details_root, uint64_t mapping_root)
{
	struct btree_walk_ops ops = { .leaf = ids_leaf, .damage = tree_damage };
	struct btree_walk_opts wo = lax_walk;
	uint64_t n = 0;
	int r = 0;

	if (details_root) {
		wo.shape.value_size = THIN_DETAILS_VALUE_SIZE;
		r = btree_walk(s->bm, details_root, &wo, &ops, s, s->err);
	}
	if (!r && mapping_root) {
		wo.shape.value_size = THIN_MAPPING_VALUE_SIZE;
		r = btree_walk(s->bm, mapping_root, &wo, &ops, s, s->err);
	}
	if (r)
		return r;
	if (s->nr_ids)
		qsort(s->ids, s->nr_ids, sizeof(*s->ids), cmp_u64);
	for (uint64_t i = 0; i < s->nr_ids; i++)
		if (!n || s->ids[n - 1] != s->ids[i])
			s->ids[n++] = s->ids[i];
	s->nr_ids = n;
	return 0;
}

/*----------------------------------------------------------------
 * Mappings
 *--------------------------------------------------------------*/

static bool bit_get(const uint8_t *map, uint64_t b)
{
	return (map[b >> 3] >> (b & 7)) & 1;
}

static void bit_set(uint8_t *map, uint64_t b)
{
	map[b >> 3] |= (uint8_t)(1u << (b & 7));
}

static bool is_defined(const struct salvager *s, uint64_t b)
{
	return s->defined && b < s->nr_md_blocks && bit_get(s->defined, b);
}

static void section_name(char *buf, size_t size, uint64_t leaf)
{
	snprintf(buf, size, "%" PRIu64, leaf);
}

static int mappings_leaf(void *ctx, const struct btree_node_info *n)
{
	struct salvager *s = ctx;
	const uint8_t *vals = node_values_c(n->data);
	/* a clean leaf written once as a shared section: referred to, not emitted */
	bool section = s->emitting && is_defined(s, n->block);

	if (section) {
		char name[24];
		int r = emit_run_flush(&s->run);

		section_name(name, sizeof(name), n->block);
		if (!r)
			r = s->e->ops->ref(s->e, name);
		if (r)
			return r;
	}
	for (uint32_t i = 0; i < n->nr_entries; i++) {
		uint64_t bt = load_le64(vals + 8u * i), d = block_time_block(bt);
		int r;

		if (d >= s->nr_data_blocks) {
			/* once, on the emitting walk (a device is walked twice) */
			if (s->emitting) {
				s->st->dropped_mappings++;
				report(s, "device %" PRIu64 ": mapping %" PRIu64 " -> %" PRIu64
				       " dropped: beyond the data device (%" PRIu64 " blocks)",
				       s->dev, node_key(n->data, i), d, s->nr_data_blocks);
			}
			continue;
		}
		s->count++;
		if (d + 1 > s->max_data)
			s->max_data = d + 1;
		if (block_time_time(bt) > s->max_time)
			s->max_time = block_time_time(bt);
		if (!s->emitting || section)
			continue;
		r = emit_run_add(&s->run, node_key(n->data, i), d, block_time_time(bt));
		if (r)
			return r;
	}
	return 0;
}

static void mappings_damage(void *ctx, const struct btree_damage *d)
{
	struct salvager *s = ctx;

	if (!s->emitting || !d->lost)
		return;
	s->st->lost_ranges++;
	if (d->has_hi)
		report(s, "device %" PRIu64 ": mappings [%" PRIu64 ", %" PRIu64 ") lost: %s",
		       s->dev, d->lo, d->hi, d->msg);
	else
		report(s, "device %" PRIu64 ": mappings [%" PRIu64 ", -] lost: %s",
		       s->dev, d->lo, d->msg);
}

static int walk_mappings(struct salvager *s, uint64_t root, bool emit)
{
	struct btree_walk_opts wo = lax_walk;
	struct btree_walk_ops ops = { .leaf = mappings_leaf, .damage = mappings_damage };
	int r;

	wo.shape.value_size = THIN_MAPPING_VALUE_SIZE;
	s->count = 0;
	s->emitting = emit;
	emit_run_init(&s->run, s->e);
	r = btree_walk(s->bm, root, &wo, &ops, s, s->err);
	if (!r && emit)
		r = emit_run_flush(&s->run);
	return r;
}

static int salvage_device(struct salvager *s, uint64_t id, uint64_t details_root,
			  uint64_t mapping_root, uint32_t pool_time)
{
	uint8_t details[THIN_DETAILS_VALUE_SIZE], rootv[8];
	struct thin_device dev = { .dev_id = id };
	struct emit_device ed;
	bool have_root = false, have_details = false;
	uint64_t orphan;
	struct pd_err e;
	int r;

	s->dev = id;
	if (details_root &&
	    !btree_lookup(s->bm, details_root, THIN_DETAILS_VALUE_SIZE, id, details, &e)) {
		thin_details_decode(details, &dev);
		have_details = true;
	} else {
		/*
		 * Times of the pool's "now": every mapping made before counts as
		 * possibly shared, so the kernel copies before writing rather
		 * than changing a block another device may still read.
		 */
		dev.creation_time = dev.snapshotted_time = pool_time;
		report(s, "device %" PRIu64 ": details lost; transaction set to 0, times to the pool's time %" PRIu32,
		       id, pool_time);
	}
	if (mapping_root &&
	    !btree_lookup(s->bm, mapping_root, THIN_MAPPING_VALUE_SIZE, id, rootv, &e)) {
		have_root = true;
	} else if (have_details && find_orphan(s, dev.mapped_blocks, &orphan)) {
		have_root = true;
		store_le64(rootv, orphan);
		report(s, "device %" PRIu64 ": its entry in the mapping tree is lost; its mapping tree"
		       " is the one found at block %" PRIu64 " with %" PRIu64
		       " mappings, as many as its details say", id, orphan, dev.mapped_blocks);
	} else {
		report(s, "device %" PRIu64 ": mapping tree lost; the device is kept empty", id);
	}

	if (have_root) {
		/* count first: the details say how many mappings follow */
		r = walk_mappings(s, load_le64(rootv), false);
		if (r)
			return r;
	} else {
		s->count = 0;
	}
	ed = (struct emit_device) {
		.dev_id = id, .mapped_blocks = s->count, .transaction_id = dev.transaction_id,
		.creation_time = dev.creation_time, .snap_time = dev.snapshotted_time,
	};
	r = s->e->ops->begin_device(s->e, &ed);
	if (!r && have_root)
		r = walk_mappings(s, load_le64(rootv), true);
	if (!r)
		r = s->e->ops->end_device(s->e);
	if (!r && have_root && dev.mapped_blocks != ed.mapped_blocks)
		report(s, "device %" PRIu64 ": %" PRIu64 " mappings recovered, its details said %" PRIu64,
		       id, ed.mapped_blocks, dev.mapped_blocks);
	s->st->devices++;
	s->st->mappings += s->count;
	return r;
}

/*
 * For a superblock that is lost: the latest time of any mapping or
 * device, the highest data block mapped + 1 and the highest device
 * transaction.
 */
static int rebuild_values(struct salvager *s, uint64_t details_root, uint64_t mapping_root,
			  uint32_t *time, uint64_t *data_end, uint64_t *max_trans)
{
	uint64_t saved = s->nr_data_blocks;
	uint32_t t = 0;
	int r = 0;

	*max_trans = 0;
	s->max_data = 0;
	s->nr_data_blocks = UINT64_MAX;		/* keep every mapping */
	for (uint64_t i = 0; !r && i < s->nr_ids; i++) {
		uint8_t details[THIN_DETAILS_VALUE_SIZE], rootv[8];
		struct thin_device dev;
		struct pd_err e;

		if (details_root &&
		    !btree_lookup(s->bm, details_root, THIN_DETAILS_VALUE_SIZE, s->ids[i],
				  details, &e)) {
			thin_details_decode(details, &dev);
			if (dev.creation_time > t)
				t = dev.creation_time;
			if (dev.snapshotted_time > t)
				t = dev.snapshotted_time;
			if (dev.transaction_id > *max_trans)
				*max_trans = dev.transaction_id;
		}
		if (mapping_root &&
		    !btree_lookup(s->bm, mapping_root, THIN_MAPPING_VALUE_SIZE, s->ids[i],
				  rootv, &e)) {
			s->max_time = 0;
			r = walk_mappings(s, load_le64(rootv), false);
			if (!r && s->max_time > t)
				t = s->max_time;
		}
	}
	s->nr_data_blocks = saved;
	*time = t;
	*data_end = s->max_data;
	return r;
}

/*----------------------------------------------------------------
 * Shared leaves
 *
 * The kernel's snapshots share subtrees with their origin until one of
 * them writes there; written out device by device, a pool with a few
 * snapshots would need several times its own room.  So, for an emitter
 * that takes shared sections (thin_repair's), the leaves that two or
 * more devices reach through the top-level tree are found first, and
 * each clean one (every mapping inside the data device, full enough
 * for the tree builder to keep it whole) is written once as a section
 * named after its block; each device then refers to it where its walk
 * reaches it.  Only the mapping tree's internal nodes are rebuilt per
 * device, as upstream 1.x's repair does.  Memory: three bits a
 * metadata block, and the emitter's table of sections.
 *--------------------------------------------------------------*/

static int mark_leaf(void *ctx, const struct btree_node_info *n)
{
	struct salvager *s = ctx;

	if (n->block >= s->nr_md_blocks)
		return 0;
	if (bit_get(s->seen, n->block))
		bit_set(s->shared, n->block);
	bit_set(s->seen, n->block);
	return 0;
}

static bool clean_leaf(const struct salvager *s, const struct btree_node_info *n)
{
	const uint8_t *vals = node_values_c(n->data);

	if (n->nr_entries < btree_max_entries(THIN_MAPPING_VALUE_SIZE) / 3)
		return false;
	for (uint32_t i = 0; i < n->nr_entries; i++)
		if (block_time_block(load_le64(vals + 8u * i)) >= s->nr_data_blocks)
			return false;
	return true;
}

static int define_leaf(void *ctx, const struct btree_node_info *n)
{
	struct salvager *s = ctx;
	const uint8_t *vals = node_values_c(n->data);
	char name[24];
	int r;

	if (n->block >= s->nr_md_blocks || !bit_get(s->shared, n->block) ||
	    bit_get(s->defined, n->block) || !clean_leaf(s, n))
		return 0;
	section_name(name, sizeof(name), n->block);
	r = s->e->ops->begin_def(s->e, name);
	emit_run_init(&s->run, s->e);
	for (uint32_t i = 0; !r && i < n->nr_entries; i++) {
		uint64_t bt = load_le64(vals + 8u * i);

		r = emit_run_add(&s->run, node_key(n->data, i), block_time_block(bt),
				 block_time_time(bt));
	}
	if (!r)
		r = emit_run_flush(&s->run);
	if (!r)
		r = s->e->ops->end_def(s->e);
	if (!r)
		bit_set(s->defined, n->block);
	return r;
}

/* Every device's mapping tree named by the top level, its leaves to fn. */
static int walk_named_trees(struct salvager *s, uint64_t mapping_root,
			    int (*fn)(void *, const struct btree_node_info *))
{
	struct btree_walk_opts wo = lax_walk;
	struct btree_walk_ops ops = { .leaf = fn };
	int r = 0;

	wo.shape.value_size = THIN_MAPPING_VALUE_SIZE;
	for (uint64_t i = 0; !r && i < s->nr_ids; i++) {
		uint8_t rootv[8];
		struct pd_err e;

		if (!btree_lookup(s->bm, mapping_root, THIN_MAPPING_VALUE_SIZE, s->ids[i], rootv, &e))
			r = btree_walk(s->bm, load_le64(rootv), &wo, &ops, s, s->err);
	}
	return r;
}

static int define_shared_leaves(struct salvager *s, uint64_t mapping_root)
{
	size_t bytes;
	int r;

	s->nr_md_blocks = bm_nr_blocks(s->bm);
	bytes = (size_t)((s->nr_md_blocks + 7) / 8);
	s->seen = calloc(bytes ? bytes : 1, 1);
	s->shared = calloc(bytes ? bytes : 1, 1);
	s->defined = calloc(bytes ? bytes : 1, 1);
	if (!s->seen || !s->shared || !s->defined)
		return pd_err_set(s->err, -ENOMEM, "out of memory");
	r = walk_named_trees(s, mapping_root, mark_leaf);
	if (!r)
		r = walk_named_trees(s, mapping_root, define_leaf);
	free(s->seen);
	free(s->shared);
	s->seen = s->shared = NULL;
	return r;
}

/*----------------------------------------------------------------
 * Entry point
 *--------------------------------------------------------------*/

static bool sane_dbs(uint32_t v)
{
	return v >= THIN_MIN_DATA_BLOCK_SIZE && v <= THIN_MAX_DATA_BLOCK_SIZE && !(v % 128);
}

int thin_salvage(struct bm *bm, const struct salvage_opts *o, struct emitter *e,
		 struct salvage_stats *st, struct pd_err *err)
{
	struct salvager s = { .bm = bm, .o = o, .st = st, .err = err };
	struct emit_superblock esb = { .version = THIN_SB_VERSION };
	struct sb_override_emitter ov_em;
	uint64_t details_root = 0, mapping_root = 0;
	struct bm_block *blk;
	struct thin_sb sb;
	bool sb_ok = false, fields_ok = false;
	int r;

	memset(st, 0, sizeof(*st));
	if (!bm_read_lock(bm, 0, NULL, &blk, err)) {
		thin_sb_decode(bm_block_data(blk), 0, &sb);
		sb_ok = thin_sb_csum_ok(bm_block_data(blk), NULL) && sb.magic == THIN_SB_MAGIC;
		/* a damaged checksum may still leave readable fields */
		fields_ok = sb.magic == THIN_SB_MAGIC && sane_dbs(sb.data_block_size);
		bm_unlock(blk);
	}
	if (fields_ok) {
		struct sm_root data;

		sm_root_decode(sb.data_sm_root, &data);
		esb.time = sb.time;
		esb.trans_id = sb.trans_id;
		esb.data_block_size = sb.data_block_size;
		esb.nr_data_blocks = data.nr_blocks;
	}
	if (!sb_ok)
		report(&s, "the superblock is damaged%s",
		       fields_ok ? "; using the values it still holds" : "");
	/* the values as the emitter will get them (options win) */
	s.e = sb_override_emitter_init(&ov_em, e, &o->ov);
	sb_override_emitter_apply(&ov_em, &esb);
	if (!sane_dbs(esb.data_block_size)) {
		uint64_t where = 0;

		esb.data_block_size = find_superblock_copy(&s, &where);
		if (!esb.data_block_size)
			return pd_err_set(err, -EINVAL,
					  "the superblock is unreadable and the data block size cannot be inferred: give --data-block-size");
		report(&s, "data block size inferred as %" PRIu32
		       " sectors from the superblock copy at block %" PRIu64
		       " (a metadata snapshot)", esb.data_block_size, where);
	}
	s.nr_data_blocks = esb.nr_data_blocks ? esb.nr_data_blocks : UINT64_MAX;

	r = find_roots(&s, fields_ok, &sb, &details_root, &mapping_root);
	if (!r && !details_root && !mapping_root)
		r = pd_err_set(err, -ENODATA, "no device or mapping tree could be found");
	if (r)
		goto out;

	r = collect_ids(&s, details_root, mapping_root);
	if (r)
		goto out;
	if (!fields_ok || !esb.nr_data_blocks) {
		uint64_t data_end, max_trans;
		uint32_t time;

		/*
		 * The pool's time is lost with the superblock: it must be at
		 * least every time in use, or new snapshots would not mark
		 * today's blocks as shared.  The data device is at least as
		 * large as its highest mapped block, and the next transaction
		 * follows every device's.
		 */
		r = rebuild_values(&s, details_root, mapping_root, &time, &data_end,
				   &max_trans);
		if (r)
			goto out;
		if (!fields_ok) {
			esb.time = time;
			report(&s, "the pool's time is rebuilt as %" PRIu32
			       " from the mappings and devices", esb.time);
			if (!o->ov.set_trans_id) {
				esb.trans_id = max_trans + 1;
				report(&s, "transaction id inferred as %" PRIu64
				       " (the highest device transaction + 1)", esb.trans_id);
			}
		}
		if (!esb.nr_data_blocks) {
			if (!data_end) {
				r = pd_err_set(err, -EINVAL,
					       "no mapping tells the data device's size: give --nr-data-blocks");
				goto out;
			}
			esb.nr_data_blocks = data_end;
			report(&s, "number of data blocks inferred as %" PRIu64
			       " (the highest mapped data block + 1)", esb.nr_data_blocks);
		}
		s.nr_data_blocks = esb.nr_data_blocks;
	}
	r = s.e->ops->begin_superblock(s.e, &esb);
	if (!r && mapping_root && s.e->ops->begin_def)
		r = define_shared_leaves(&s, mapping_root);
	for (uint64_t i = 0; !r && i < s.nr_ids; i++)
		r = salvage_device(&s, s.ids[i], details_root, mapping_root, esb.time);
	if (!r)
		r = s.e->ops->end_superblock(s.e);
out:
	free(s.seen);
	free(s.shared);
	free(s.defined);
	free(s.ids);
	free(s.orphans);
	if (r && !err->msg[0])
		pd_err_set(err, r, "%s", strerror(-r));
	return r;
}
