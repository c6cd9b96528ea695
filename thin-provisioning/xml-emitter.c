/* SPDX-License-Identifier: GPL-3.0-or-later */
/* thin_dump's XML, byte for byte as v0.9 writes it. */
#include "emitter.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct xml_emitter {
	struct emitter e;
	FILE *out;
};

#define to_xml(x) ((struct xml_emitter *)(x))

/* Decimal digits of v at the end of buf; returns the start. */
static char *utoa(uint64_t v, char *end)
{
	*--end = '\0';
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return end;
}

static void put_attr(FILE *f, const char *name, uint64_t v)
{
	char buf[24];

	fputs_unlocked(name, f);
	fputs_unlocked(utoa(v, buf + sizeof(buf)), f);
	putc_unlocked('"', f);
}

static int status(FILE *f)
{
	return ferror(f) ? -EIO : 0;
}

static void put_uuid(FILE *f, const uint8_t *uuid)
{
	for (unsigned i = 0; i < 16 && uuid[i]; i++) {
		char c = (char)uuid[i];

		if (c == '"')
			fputs_unlocked("&quot;", f);
		else if (c == '&')
			fputs_unlocked("&amp;", f);
		else if (c == '<')
			fputs_unlocked("&lt;", f);
		else
			putc_unlocked(c, f);
	}
}

static int xml_begin_superblock(struct emitter *e, const struct emit_superblock *sb)
{
	FILE *f = to_xml(e)->out;

	fputs_unlocked("<superblock uuid=\"", f);
	put_uuid(f, sb->uuid);
	putc_unlocked('"', f);
	put_attr(f, " time=\"", sb->time);
	put_attr(f, " transaction=\"", sb->trans_id);
	put_attr(f, " flags=\"", sb->flags);
	put_attr(f, " version=\"", sb->version);
	put_attr(f, " data_block_size=\"", sb->data_block_size);
	put_attr(f, " nr_data_blocks=\"", sb->nr_data_blocks);
	if (sb->has_metadata_snap)
		put_attr(f, " metadata_snap=\"", sb->metadata_snap);
	fputs_unlocked(">\n", f);
	return status(f);
}

static int xml_end_superblock(struct emitter *e)
{
	FILE *f = to_xml(e)->out;

	fputs_unlocked("</superblock>\n", f);
	return status(f);
}

static int xml_begin_device(struct emitter *e, const struct emit_device *d)
{
	FILE *f = to_xml(e)->out;

	put_attr(f, "  <device dev_id=\"", d->dev_id);
	put_attr(f, " mapped_blocks=\"", d->mapped_blocks);
	put_attr(f, " transaction=\"", d->transaction_id);
	put_attr(f, " creation_time=\"", d->creation_time);
	put_attr(f, " snap_time=\"", d->snap_time);
	fputs_unlocked(">\n", f);
	return status(f);
}

static int xml_end_device(struct emitter *e)
{
	FILE *f = to_xml(e)->out;

	fputs_unlocked("  </device>\n", f);
	return status(f);
}

static int xml_map_run(struct emitter *e, uint64_t origin, uint64_t data,
		       uint64_t len, uint32_t time)
{
	FILE *f = to_xml(e)->out;

	if (len == 1) {
		put_attr(f, "    <single_mapping origin_block=\"", origin);
		put_attr(f, " data_block=\"", data);
	} else {
		put_attr(f, "    <range_mapping origin_begin=\"", origin);
		put_attr(f, " data_begin=\"", data);
		put_attr(f, " length=\"", len);
	}
	put_attr(f, " time=\"", time);
	fputs_unlocked("/>\n", f);
	return status(f);
}

static void xml_destroy(struct emitter *e)
{
	free(to_xml(e));
}

static const struct emitter_ops xml_ops = {
	.begin_superblock = xml_begin_superblock,
	.end_superblock = xml_end_superblock,
	.begin_device = xml_begin_device,
	.end_device = xml_end_device,
	.map_run = xml_map_run,
	.destroy = xml_destroy,
};

int emitter_xml_create(FILE *out, struct emitter **e)
{
	struct xml_emitter *x = calloc(1, sizeof(*x));

	if (!x)
		return -ENOMEM;
	x->e.ops = &xml_ops;
	x->out = out;
	*e = &x->e;
	return 0;
}
