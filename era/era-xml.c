/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "era-xml.h"

#include <errno.h>
#include <expat.h>
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
	XML_Parser xp;
	const struct era_visitor *v;
	struct pd_err *verr;
	struct pd_err *err;
	int error;
	bool in_sb, seen_sb, in_ws;
};

static void fail(struct parser *p, int code, const char *msg)
{
	if (p->error)
		return;
	p->error = pd_err_set(p->err, code, "line %lu: %s",
			      (unsigned long)XML_GetCurrentLineNumber(p->xp), msg);
	XML_StopParser(p->xp, XML_FALSE);
}

static void check(struct parser *p, int r)
{
	if (!r || p->error)
		return;
	p->error = pd_err_set(p->err, r, "line %lu: %s",
			      (unsigned long)XML_GetCurrentLineNumber(p->xp),
			      p->verr->code ? p->verr->msg : strerror(-r));
	XML_StopParser(p->xp, XML_FALSE);
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
				char msg[128];

				snprintf(msg, sizeof(msg), "bad value for attribute '%s'", name);
				fail(p, -EINVAL, msg);
				return false;
			}
			*v = (uint32_t)x;
			return true;
		}
	{
		char msg[128];

		snprintf(msg, sizeof(msg), "missing attribute '%s'", name);
		fail(p, -EINVAL, msg);
	}
	return false;
}

static const char *str(struct parser *p, const char **a, const char *name)
{
	for (; a[0]; a += 2)
		if (!strcmp(a[0], name))
			return a[1];
	{
		char msg[128];

		snprintf(msg, sizeof(msg), "missing attribute '%s'", name);
		fail(p, -EINVAL, msg);
	}
	return NULL;
}

static void start(void *data, const char *el, const char **a)
{
	struct parser *p = data;
	uint32_t x, y;

	if (p->error)
		return;
	if (!strcmp(el, "superblock")) {
		struct era_sb sb;
		const char *uuid;

		if (p->seen_sb)
			return fail(p, -EINVAL, "more than one superblock");
		memset(&sb, 0, sizeof(sb));
		if (!(uuid = str(p, a, "uuid")) || !num(p, a, "block_size", &sb.data_block_size) ||
		    !num(p, a, "nr_blocks", &sb.nr_blocks) || !num(p, a, "current_era", &sb.current_era))
			return;
		if (strlen(uuid) > 16)
			return fail(p, -EINVAL, "uuid too long");
		memcpy(sb.uuid, uuid, strlen(uuid));
		p->seen_sb = p->in_sb = true;
		return check(p, p->v->begin(p->v->ctx, &sb));
	}
	if (!p->in_sb)
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

	if (p->error)
		return;
	if (!strcmp(el, "superblock"))
		p->in_sb = false;
	else if (!strcmp(el, "writeset")) {
		p->in_ws = false;
		check(p, p->v->writeset_end(p->v->ctx));
	} else if (!strcmp(el, "era_array"))
		check(p, p->v->era_array_end(p->v->ctx));
}

int era_xml_parse(FILE *in, const struct era_visitor *v, struct pd_err *verr,
		  struct pd_err *err)
{
	struct parser p = { .v = v, .verr = verr, .err = err };
	char *buf = malloc(1 << 20);
	bool first = true;
	int r = 0;

	p.xp = XML_ParserCreate(NULL);
	if (!buf || !p.xp) {
		free(buf);
		if (p.xp)
			XML_ParserFree(p.xp);
		return pd_err_set(err, -ENOMEM, "out of memory");
	}
	XML_SetUserData(p.xp, &p);
	XML_SetElementHandler(p.xp, start, end);
	for (;;) {
		size_t n = fread(buf, 1, 1 << 20, in);
		bool done = n < (1 << 20);

		if (ferror(in)) {
			r = pd_err_set(err, -EIO, "cannot read the input");
			break;
		}
		if (first && n) {
			size_t i = 0;

			while (i < n && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\t' || buf[i] == '\r'))
				i++;
			if (i < n && buf[i] != '<') {
				r = pd_err_set(err, -EINVAL, "the input is not XML");
				break;
			}
		}
		first = false;
		if (!XML_Parse(p.xp, buf, (int)n, done)) {
			r = p.error ? p.error :
			    pd_err_set(err, -EINVAL, "line %lu: %s",
				       (unsigned long)XML_GetCurrentLineNumber(p.xp),
				       XML_ErrorString(XML_GetErrorCode(p.xp)));
			break;
		}
		if (done)
			break;
	}
	if (!r && !p.seen_sb)
		r = pd_err_set(err, -EINVAL, "missing superblock");
	if (!r) {
		r = v->end(v->ctx);
		if (r)
			pd_err_set(err, r, "%s", verr->code ? verr->msg : strerror(-r));
	}
	XML_ParserFree(p.xp);
	free(buf);
	return r;
}
