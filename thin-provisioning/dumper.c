/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "dumper.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

int thin_emit_mappings(struct thin_metadata *md, uint64_t root, struct emitter *e,
		       struct pd_err *err)
{
	struct btree_cursor *c;
	struct emit_run run;
	int r;

	r = btree_cursor_create(md->bm, root, THIN_MAPPING_VALUE_SIZE, &c, err);
	if (r)
		return r;
	emit_run_init(&run, e);
	while (!(r = btree_cursor_next_leaf(c, err))) {
		const void *leaf = btree_cursor_leaf(c);
		const uint8_t *vals = node_values_c(leaf);
		uint32_t nr = btree_cursor_nr(c);

		for (uint32_t i = 0; i < nr; i++) {
			uint64_t bt = load_le64(vals + 8u * i);

			r = emit_run_add(&run, node_key(leaf, i), block_time_block(bt),
					 block_time_time(bt));
			if (r) {
				btree_cursor_destroy(c);
				return pd_err_set(err, r, "write error: %s", strerror(-r));
			}
		}
	}
	btree_cursor_destroy(c);
	if (r != -ENODATA)
		return r;
	r = emit_run_flush(&run);
	if (r)
		return pd_err_set(err, r, "write error: %s", strerror(-r));
	return 0;
}

static bool wanted(const struct thin_emit_opts *o, uint64_t dev_id)
{
	if (!o->dev_ids)
		return true;
	for (unsigned i = 0; i < o->nr_dev_ids; i++)
		if (o->dev_ids[i] == dev_id)
			return true;
	return false;
}

int thin_emit_metadata(struct thin_metadata *md, const struct thin_emit_opts *o,
		       struct emitter *e, struct pd_err *err)
{
	struct emit_superblock sb = { 0 };
	struct thin_dev_iter *it;
	struct thin_device dev;
	int r;

	/* both reference generations print uuid="" whatever block 0 holds */
	sb.time = md->sb.time;
	sb.trans_id = md->sb.trans_id;
	sb.flags = md->sb.flags;
	sb.version = md->sb.version;
	sb.data_block_size = md->sb.data_block_size;
	/*
	 * A held root has no space maps: v0.9 and 1.x print 0 here, and so
	 * do we, byte for byte (thin_dump --nr-data-blocks overrides it).
	 */
	sb.nr_data_blocks = md->held ? 0 : md->data_sm.nr_blocks;

	r = e->ops->begin_superblock(e, &sb);
	if (r)
		return pd_err_set(err, r, "write error: %s", strerror(-r));

	r = thin_dev_iter_create(md, &it, err);
	if (r)
		return r;
	while (!(r = thin_dev_iter_next(it, &dev, err))) {
		struct emit_device ed = {
			.dev_id = dev.dev_id,
			.mapped_blocks = dev.mapped_blocks,
			.transaction_id = dev.transaction_id,
			.creation_time = dev.creation_time,
			.snap_time = dev.snapshotted_time,
		};

		if (!wanted(o, dev.dev_id))
			continue;
		r = e->ops->begin_device(e, &ed);
		if (r) {
			pd_err_set(err, r, "write error: %s", strerror(-r));
			break;
		}
		if (!o->skip_mappings) {
			r = thin_emit_mappings(md, dev.root, e, err);
			if (r) {
				pd_err_prefix(err, "device %" PRIu64, dev.dev_id);
				break;
			}
		}
		r = e->ops->end_device(e);
		if (r) {
			pd_err_set(err, r, "write error: %s", strerror(-r));
			break;
		}
	}
	thin_dev_iter_destroy(it);
	if (r != -ENODATA)
		return r;
	r = e->ops->end_superblock(e);
	if (r)
		return pd_err_set(err, r, "write error: %s", strerror(-r));
	return 0;
}
