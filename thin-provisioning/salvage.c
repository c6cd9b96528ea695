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
	struct emit_run run;
	bool emitting;
	int error;

	/* device ids found in either tree */
	uint64_t *ids;
	uint64_t nr_ids, max_ids;
};

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
	/* the values must themselves be mapping trees */
	if (!ok)
		return false;
	{
		struct btree_cursor *c;
		bool found;

		if (btree_cursor_create(bm, b, 8, &c, &e))
			return false;
		found = !btree_cursor_next_leaf(c, &e) &&
			tree_kind(bm, load_le64(node_value_c(btree_cursor_leaf(c), 0, 8)), 8);
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
 * Every valid node that no internal node points at is a root of
 * something; the biggest top-level tree and the biggest details tree win.
 */
static int scan_for_roots(struct salvager *s, uint64_t *details_root, uint64_t *mapping_root)
{
	uint64_t nr = bm_nr_blocks(s->bm), best_top = 0, best_details = 0;
	uint8_t *node = calloc(nr / 8 + 1, 1), *child = calloc(nr / 8 + 1, 1);

	*details_root = *mapping_root = 0;
	if (!node || !child) {
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
		uint64_t k;

		if (!(node[b >> 3] & (1u << (b & 7))) || (child[b >> 3] & (1u << (b & 7))))
			continue;
		if (tree_kind(s->bm, b, THIN_DETAILS_VALUE_SIZE)) {
			k = count_keys(s->bm, b, THIN_DETAILS_VALUE_SIZE);
			if (k > best_details || !*details_root) {
				best_details = k;
				*details_root = b;
			}
		} else if (looks_like_top_level(s->bm, b)) {
			k = count_keys(s->bm, b, THIN_MAPPING_VALUE_SIZE);
			if (k > best_top || !*mapping_root) {
				best_top = k;
				*mapping_root = b;
			}
		}
	}
	free(node);
	free(child);
	s->st->used_scan = true;
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

static int mappings_leaf(void *ctx, const struct btree_node_info *n)
{
	struct salvager *s = ctx;
	const uint8_t *vals = node_values_c(n->data);

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		uint64_t bt = load_le64(vals + 8u * i), d = block_time_block(bt);
		int r;

		if (d >= s->nr_data_blocks) {
			s->st->dropped_mappings++;
			if (s->emitting)
				report(s, "device %" PRIu64 ": mapping %" PRIu64 " -> %" PRIu64
				       " dropped: beyond the data device (%" PRIu64 " blocks)",
				       s->dev, node_key(n->data, i), d, s->nr_data_blocks);
			continue;
		}
		s->count++;
		if (block_time_time(bt) > s->max_time)
			s->max_time = block_time_time(bt);
		if (!s->emitting)
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
	bool have_root = false;
	struct pd_err e;
	int r;

	s->dev = id;
	if (details_root &&
	    !btree_lookup(s->bm, details_root, THIN_DETAILS_VALUE_SIZE, id, details, &e)) {
		thin_details_decode(details, &dev);
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
	    !btree_lookup(s->bm, mapping_root, THIN_MAPPING_VALUE_SIZE, id, rootv, &e))
		have_root = true;
	else
		report(s, "device %" PRIu64 ": mapping tree lost; the device is kept empty", id);

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

/* The latest time of any mapping or device, for a superblock that is lost. */
static int rebuild_time(struct salvager *s, uint64_t details_root, uint64_t mapping_root,
			uint32_t *time)
{
	uint32_t t = 0;

	for (uint64_t i = 0; i < s->nr_ids; i++) {
		uint8_t details[THIN_DETAILS_VALUE_SIZE], rootv[8];
		struct thin_device dev;
		struct pd_err e;
		int r;

		if (details_root &&
		    !btree_lookup(s->bm, details_root, THIN_DETAILS_VALUE_SIZE, s->ids[i],
				  details, &e)) {
			thin_details_decode(details, &dev);
			if (dev.creation_time > t)
				t = dev.creation_time;
			if (dev.snapshotted_time > t)
				t = dev.snapshotted_time;
		}
		if (mapping_root &&
		    !btree_lookup(s->bm, mapping_root, THIN_MAPPING_VALUE_SIZE, s->ids[i],
				  rootv, &e)) {
			s->max_time = 0;
			r = walk_mappings(s, load_le64(rootv), false);
			if (r)
				return r;
			if (s->max_time > t)
				t = s->max_time;
		}
	}
	*time = t;
	return 0;
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
	struct emit_superblock esb = { .version = THIN_SB_VERSION }, eff;
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
	/* checked as the emitter will get it */
	s.e = sb_override_emitter_init(&ov_em, e, &o->ov);
	eff = esb;
	sb_override_emitter_apply(&ov_em, &eff);
	if (!sane_dbs(eff.data_block_size))
		return pd_err_set(err, -EINVAL,
				  "the superblock is unreadable: give --data-block-size (and --nr-data-blocks, --transaction-id)");
	if (!eff.nr_data_blocks && !o->ov.set_nr_data_blocks)
		return pd_err_set(err, -EINVAL,
				  "the number of data blocks is unknown: give --nr-data-blocks");
	s.nr_data_blocks = eff.nr_data_blocks;

	if (sb_ok) {
		if (tree_kind(bm, sb.device_details_root, THIN_DETAILS_VALUE_SIZE))
			details_root = sb.device_details_root;
		if (tree_kind(bm, sb.data_mapping_root, THIN_MAPPING_VALUE_SIZE))
			mapping_root = sb.data_mapping_root;
	}
	if (!details_root || !mapping_root) {
		uint64_t d, m;

		r = scan_for_roots(&s, &d, &m);
		if (r)
			return r;
		if (!details_root)
			details_root = d;
		if (!mapping_root)
			mapping_root = m;
		report(&s, "roots found by scanning the device: details tree %" PRIu64
		       ", mapping tree %" PRIu64, details_root, mapping_root);
	}
	if (!details_root && !mapping_root)
		return pd_err_set(err, -ENODATA, "no device or mapping tree could be found");

	r = collect_ids(&s, details_root, mapping_root);
	if (r)
		goto out;
	if (!fields_ok) {
		/*
		 * The pool's time is lost with the superblock: it must be at
		 * least every time in use, or new snapshots would not mark
		 * today's blocks as shared.
		 */
		r = rebuild_time(&s, details_root, mapping_root, &esb.time);
		if (r)
			goto out;
		report(&s, "the pool's time is rebuilt as %" PRIu32 " from the mappings and devices",
		       esb.time);
	}
	r = s.e->ops->begin_superblock(s.e, &esb);
	for (uint64_t i = 0; !r && i < s.nr_ids; i++)
		r = salvage_device(&s, s.ids[i], details_root, mapping_root, esb.time);
	if (!r)
		r = s.e->ops->end_superblock(s.e);
out:
	free(s.ids);
	if (r && !err->msg[0])
		pd_err_set(err, r, "%s", strerror(-r));
	return r;
}
