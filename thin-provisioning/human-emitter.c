/* SPDX-License-Identifier: GPL-3.0-or-later */
/* thin_dump --format human_readable, as v0.9 prints it. */
#include "emitter.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

struct human_emitter {
	struct emitter e;
	FILE *out;
};

#define to_human(x) ((struct human_emitter *)(x))

static int status(FILE *f)
{
	return ferror(f) ? -EIO : 0;
}

static int h_begin_superblock(struct emitter *e, const struct emit_superblock *sb)
{
	FILE *f = to_human(e)->out;

	fputs("begin superblock: \"", f);
	for (unsigned i = 0; i < 16 && sb->uuid[i]; i++)
		putc(sb->uuid[i], f);
	fprintf(f, "\", %" PRIu32 ", %" PRIu64 ", %" PRIu32 ", %" PRIu32 ", %" PRIu32
		", %" PRIu64, sb->time, sb->trans_id, sb->flags, sb->version,
		sb->data_block_size, sb->nr_data_blocks);
	if (sb->has_metadata_snap)
		fprintf(f, ", %" PRIu64, sb->metadata_snap);
	putc('\n', f);
	return status(f);
}

static int h_end_superblock(struct emitter *e)
{
	FILE *f = to_human(e)->out;

	fputs("end superblock\n", f);
	return status(f);
}

static int h_begin_device(struct emitter *e, const struct emit_device *d)
{
	FILE *f = to_human(e)->out;

	fprintf(f, "device: %" PRIu64 "\nmapped_blocks: %" PRIu64
		"\ntransaction: %" PRIu64 "\ncreation time: %" PRIu32
		"\nsnap time: %" PRIu32 "\n", d->dev_id, d->mapped_blocks,
		d->transaction_id, d->creation_time, d->snap_time);
	return status(f);
}

static int h_end_device(struct emitter *e)
{
	FILE *f = to_human(e)->out;

	putc('\n', f);
	return status(f);
}

static int h_map_run(struct emitter *e, uint64_t origin, uint64_t data,
		     uint64_t len, uint32_t time)
{
	FILE *f = to_human(e)->out;

	if (len == 1)
		fprintf(f, "    %" PRIu64 " -> %" PRIu64 ", %" PRIu32 "\n",
			origin, data, time);
	else
		fprintf(f, "    (%" PRIu64 "..%" PRIu64 ") -> (%" PRIu64 "..%" PRIu64
			"), %" PRIu32 "\n", origin, origin + len - 1, data,
			data + len - 1, time);
	return status(f);
}

static void h_destroy(struct emitter *e)
{
	free(to_human(e));
}

static const struct emitter_ops human_ops = {
	.begin_superblock = h_begin_superblock,
	.end_superblock = h_end_superblock,
	.begin_device = h_begin_device,
	.end_device = h_end_device,
	.map_run = h_map_run,
	.destroy = h_destroy,
};

int emitter_human_create(FILE *out, struct emitter **e)
{
	struct human_emitter *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->e.ops = &human_ops;
	h->out = out;
	*e = &h->e;
	return 0;
}
