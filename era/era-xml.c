/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "era-xml.h"
#include "persistent-data/xml-read.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int e_begin(void *ctx, const struct era_sb *sb)
{
	char uuid[17];

	memcpy(uuid, sb->uuid, 16);
	uuid[16] = 0;
	fprintf(ctx, "<superblock uuid=\"%s\" block_size=\"%u\" nr_blocks=\"%u\" current_era=\"%u\">\n",
		uuid, sb->data_block_size, sb->nr_blocks, sb->current_era);
	return 0;
}

static int e_ws_begin(void *ctx, uint32_t era, uint32_t nr_bits)
{
	fprintf(ctx, "  <writeset era=\"%u\" nr_bits=\"%u\">\n", era, nr_bits);
	return 0;
}

static int e_bit(void *ctx, uint32_t bit, bool value)
{
	fprintf(ctx, "    <bit block=\"%u\" value=\"%s\"/>\n", bit, value ? "true" : "false");
	return 0;
}

static int e_ws_end(void *ctx)
{
	fputs("  </writeset>\n", ctx);
	return 0;
}

static int e_array_begin(void *ctx)
{
	fputs("  <era_array>\n", ctx);
	return 0;
}

static int e_era(void *ctx, uint32_t block, uint32_t era)
{
	fprintf(ctx, "    <era block=\"%u\" era=\"%u\"/>\n", block, era);
	return 0;
}

static int e_array_end(void *ctx)
{
	fputs("  </era_array>\n", ctx);
	return 0;
}

static int e_end(void *ctx)
{
	fputs("</superblock>\n", ctx);
	return ferror((FILE *)ctx) ? -EIO : 0;
}

void era_xml_emitter_init(FILE *out, struct era_visitor *v)
{
	v->ctx = out;
	v->begin = e_begin;
	v->writeset_begin = e_ws_begin;
	v->writeset_bit = e_bit;
	v->writeset_end = e_ws_end;
	v->era_array_begin = e_array_begin;
	v->era = e_era;
	v->era_array_end = e_array_end;
	v->end = e_end;
}

/*----------------------------------------------------------------
 * Parser
 *--------------------------------------------------------------*/

struct parser {
	struct xml_read x;	/* first: expat's user data */
	const struct era_visitor *v;
	bool in_ws;
};

static void fail(struct parser *p, int code, const char *msg)
{
	xml_read_fail(&p->x, code, "%s", msg);
}

static void check(struct parser *p, int r)
{
	xml_read_visitor_failed(&p->x, r);
}

static bool num(struct parser *p, const char **a, const char *name, uint32_t *v)
{
	for (; a[0]; a += 2)
		if (!strcmp(a[0], name)) {
			char *end;
			unsigned long long x;

			errno = 0;
			x = strtoull(a[1], &end, 10);
			if (!a[1][0] || *end || errno || a[1][0] == '-' || a[1][0] == '+' ||
			    a[1][0] == ' ' || x > UINT32_MAX) {
				xml_read_fail(&p->x, -EINVAL, "bad value for attribute '%s'", name);
				return false;
			}
			*v = (uint32_t)x;
			return true;
		}
	xml_read_fail(&p->x, -EINVAL, "missing attribute '%s'", name);
	return false;
}

static const char *str(struct parser *p, const char **a, const char *name)
{
	for (; a[0]; a += 2)
		if (!strcmp(a[0], name))
			return a[1];
	xml_read_fail(&p->x, -EINVAL, "missing attribute '%s'", name);
	return NULL;
}

static void start(void *data, const char *el, const char **a)
{
	struct parser *p = data;
	uint32_t x, y;

	if (p->x.error)
		return;
	if (!strcmp(el, "superblock")) {
		struct era_sb sb;
		const char *uuid;

		if (p->x.seen_sb)
			return fail(p, -EINVAL, "more than one superblock");
		memset(&sb, 0, sizeof(sb));
		if (!(uuid = str(p, a, "uuid")) || !num(p, a, "block_size", &sb.data_block_size) ||
		    !num(p, a, "nr_blocks", &sb.nr_blocks) || !num(p, a, "current_era", &sb.current_era))
			return;
		if (strlen(uuid) > 16)
			return fail(p, -EINVAL, "uuid too long");
		memcpy(sb.uuid, uuid, strlen(uuid));
		p->x.seen_sb = p->x.in_sb = true;
		return check(p, p->v->begin(p->v->ctx, &sb));
	}
	if (!p->x.in_sb)
		return fail(p, -EINVAL, "missing superblock");
	if (!strcmp(el, "writeset")) {
		if (!num(p, a, "era", &x) || !num(p, a, "nr_bits", &y))
			return;
		p->in_ws = true;
		return check(p, p->v->writeset_begin(p->v->ctx, x, y));
	}
	if (!strcmp(el, "bit")) {
		const char *v;

		if (!p->in_ws)
			return fail(p, -EINVAL, "bit outside a writeset");
		if (!num(p, a, "block", &x) || !(v = str(p, a, "value")))
			return;
		if (strcmp(v, "true") && strcmp(v, "false"))
			return fail(p, -EINVAL, "bad boolean value");
		return check(p, p->v->writeset_bit(p->v->ctx, x, !strcmp(v, "true")));
	}
	if (!strcmp(el, "era_array"))
		return check(p, p->v->era_array_begin(p->v->ctx));
	if (!strcmp(el, "era")) {
		if (!num(p, a, "block", &x) || !num(p, a, "era", &y))
			return;
		return check(p, p->v->era(p->v->ctx, x, y));
	}
	fail(p, -EINVAL, "unknown tag type");
}

static void end(void *data, const char *el)
{
	struct parser *p = data;

	if (p->x.error)
		return;
	if (!strcmp(el, "superblock"))
		p->x.in_sb = false;
	else if (!strcmp(el, "writeset")) {
		p->in_ws = false;
		check(p, p->v->writeset_end(p->v->ctx));
	} else if (!strcmp(el, "era_array"))
		check(p, p->v->era_array_end(p->v->ctx));
}

static int finish(void *ctx)
{
	const struct era_visitor *v = ctx;

	return v->end(v->ctx);
}

int era_xml_parse(FILE *in, const struct era_visitor *v, struct pd_err *verr,
		  struct pd_err *err)
{
	struct parser p = { .x = { .verr = verr, .err = err }, .v = v };

	return xml_read_run(&p.x, in, start, end, finish, (void *)v);
}

/*----------------------------------------------------------------
 * Fast reader: the lines era_dump writes, nothing else
 *--------------------------------------------------------------*/

static bool fnum(const char **p, const char *name, uint32_t *v)
{
	uint64_t x;

	if (!xml_fast_num(p, name, &x) || x > UINT32_MAX)
		return false;
	*v = (uint32_t)x;
	return true;
}

int era_xml_parse_fast(FILE *in, const struct era_visitor *v, struct pd_err *verr,
		       struct pd_err *err)
{
	enum { S_START, S_SB, S_WS, S_ARRAY, S_AFTER_ARRAY, S_END } st = S_START;
	char line[512];
	unsigned long nr = 0;
	int r;

	while (fgets(line, sizeof(line), in)) {
		const char *p = line;
		size_t len = strlen(line);
		uint32_t a, b;

		nr++;
		if (!len || line[len - 1] != '\n')
			return ERA_XML_DECLINED;
		line[--len] = 0;
		while (*p == ' ')
			p++;
		r = 0;
		if (st == S_ARRAY && xml_fast_lit(&p, "<era ")) {
			if (!fnum(&p, "block", &a) || !xml_fast_lit(&p, " ") || !fnum(&p, "era", &b) ||
			    !xml_fast_lit(&p, "/>") || *p)
				return ERA_XML_DECLINED;
			r = v->era(v->ctx, a, b);
		} else if (st == S_WS && xml_fast_lit(&p, "<bit ")) {
			bool val;

			if (!fnum(&p, "block", &a) || !xml_fast_lit(&p, " value=\""))
				return ERA_XML_DECLINED;
			if (xml_fast_lit(&p, "true\"/>"))
				val = true;
			else if (xml_fast_lit(&p, "false\"/>"))
				val = false;
			else
				return ERA_XML_DECLINED;
			if (*p)
				return ERA_XML_DECLINED;
			r = v->writeset_bit(v->ctx, a, val);
		} else if (st == S_SB && xml_fast_lit(&p, "<writeset ")) {
			if (!fnum(&p, "era", &a) || !xml_fast_lit(&p, " ") || !fnum(&p, "nr_bits", &b) ||
			    !xml_fast_lit(&p, ">") || *p)
				return ERA_XML_DECLINED;
			r = v->writeset_begin(v->ctx, a, b);
			st = S_WS;
		} else if (st == S_WS && !strcmp(p, "</writeset>")) {
			r = v->writeset_end(v->ctx);
			st = S_SB;
		} else if (st == S_SB && !strcmp(p, "<era_array>")) {
			r = v->era_array_begin(v->ctx);
			st = S_ARRAY;
		} else if (st == S_ARRAY && !strcmp(p, "</era_array>")) {
			r = v->era_array_end(v->ctx);
			st = S_AFTER_ARRAY;
		} else if (st == S_START && xml_fast_lit(&p, "<superblock uuid=\"\" ")) {
			struct era_sb sb;

			memset(&sb, 0, sizeof(sb));
			if (!fnum(&p, "block_size", &sb.data_block_size) || !xml_fast_lit(&p, " ") ||
			    !fnum(&p, "nr_blocks", &sb.nr_blocks) || !xml_fast_lit(&p, " ") ||
			    !fnum(&p, "current_era", &sb.current_era) || !xml_fast_lit(&p, ">") || *p)
				return ERA_XML_DECLINED;
			r = v->begin(v->ctx, &sb);
			st = S_SB;
		} else if (st == S_AFTER_ARRAY && !strcmp(p, "</superblock>")) {
			st = S_END;
		} else {
			return ERA_XML_DECLINED;
		}
		if (r)
			return xml_fast_visitor_failed(nr, r, verr, err);
	}
	return xml_fast_end(in, st == S_END, finish, (void *)v, verr, err);
}
