/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "emitter.h"
#include "superblock.h"
#include "persistent-data/container-of.h"

void emitter_destroy(struct emitter *e)
{
	if (e)
		e->ops->destroy(e);
}

int emit_run_flush(struct emit_run *r)
{
	if (!r->have)
		return 0;
	r->have = false;
	return r->e->ops->map_run(r->e, r->origin, r->data, r->len, r->time);
}

/*----------------------------------------------------------------
 * Superblock overrides
 *--------------------------------------------------------------*/

void sb_override_emitter_apply(const struct sb_override_emitter *d,
			       struct emit_superblock *sb)
{
	const struct sb_overrides *ov = d->ov;

	if (ov->set_trans_id)
		sb->trans_id = ov->trans_id;
	if (ov->set_data_block_size)
		sb->data_block_size = ov->data_block_size;
	if (ov->set_nr_data_blocks)
		sb->nr_data_blocks = ov->nr_data_blocks;
}

static struct emitter *inner(struct emitter *e)
{
	return container_of(e, struct sb_override_emitter, e)->inner;
}

static int ov_begin_superblock(struct emitter *e, const struct emit_superblock *sb)
{
	struct emit_superblock s = *sb;

	sb_override_emitter_apply(container_of(e, struct sb_override_emitter, e), &s);
	return inner(e)->ops->begin_superblock(inner(e), &s);
}

static int ov_end_superblock(struct emitter *e)
{
	return inner(e)->ops->end_superblock(inner(e));
}

static int ov_begin_device(struct emitter *e, const struct emit_device *d)
{
	return inner(e)->ops->begin_device(inner(e), d);
}

static int ov_end_device(struct emitter *e)
{
	return inner(e)->ops->end_device(inner(e));
}

static int ov_map_run(struct emitter *e, uint64_t o, uint64_t d, uint64_t len, uint32_t t)
{
	return inner(e)->ops->map_run(inner(e), o, d, len, t);
}

static void ov_destroy(struct emitter *e)
{
	(void)e;
}

static int ov_begin_def(struct emitter *e, const char *name)
{
	return inner(e)->ops->begin_def(inner(e), name);
}

static int ov_end_def(struct emitter *e)
{
	return inner(e)->ops->end_def(inner(e));
}

static int ov_ref(struct emitter *e, const char *name)
{
	return inner(e)->ops->ref(inner(e), name);
}

#define OV_OPS \
	.begin_superblock = ov_begin_superblock, \
	.end_superblock = ov_end_superblock, \
	.begin_device = ov_begin_device, \
	.end_device = ov_end_device, \
	.map_run = ov_map_run, \
	.destroy = ov_destroy

static const struct emitter_ops ov_ops = { OV_OPS };

static const struct emitter_ops ov_ops_defs = {
	OV_OPS,
	.begin_def = ov_begin_def,
	.end_def = ov_end_def,
	.ref = ov_ref,
};

struct emitter *sb_override_emitter_init(struct sb_override_emitter *d, struct emitter *inner,
					 const struct sb_overrides *ov)
{
	d->e.ops = inner->ops->begin_def ? &ov_ops_defs : &ov_ops;
	d->inner = inner;
	d->ov = ov;
	return &d->e;
}
