/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "cache-xml.h"
#include "persistent-data/xml-read.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*----------------------------------------------------------------
 * Base64
 *--------------------------------------------------------------*/

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void base64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		*out++ = b64[v >> 18];
		*out++ = b64[(v >> 12) & 63];
		*out++ = b64[(v >> 6) & 63];
		*out++ = b64[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);

		*out++ = b64[v >> 18];
		*out++ = b64[(v >> 12) & 63];
		*out++ = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		*out++ = '=';
	}
	*out = 0;
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64, c) : NULL;

	return p ? (int)(p - b64) : -1;
}

int base64_decode(const char *in, uint8_t *out, size_t max)
{
	size_t len = strlen(in), n = 0;

	if (len % 4)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;

		for (int j = 0; j < 4; j++) {
			if (in[i + j] == '=' && i + 4 == len && j >= 2) {
				v[j] = 0;
				pad++;
			} else if (pad || (v[j] = b64_value(in[i + j])) < 0) {
				return -1;
			}
		}
		uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
		for (int j = 0; j < 3 - pad; j++) {
			if (n >= max)
				return -1;
			out[n++] = (uint8_t)(x >> (16 - 8 * j));
		}
	}
	return (int)n;
}

/*----------------------------------------------------------------
 * Emitter
 *--------------------------------------------------------------*/

static int e_begin(void *ctx, const struct cache_sb *sb, uint32_t hint_width)
{
	struct cache_xml_emitter *e = ctx;
	char uuid[17];

	memcpy(uuid, sb->uuid, 16);
	uuid[16] = 0;
	fprintf(e->out, "<superblock uuid=\"%s\" block_size=\"%u\" nr_cache_blocks=\"%u\" "
		"policy=\"%s\" hint_width=\"%u\">\n  <mappings>\n",
		uuid, sb->data_block_size, sb->cache_blocks, sb->policy_name, hint_width);
	return 0;
}

static int e_mapping(void *ctx, uint64_t cblock, uint64_t oblock, bool dirty)
{
	struct cache_xml_emitter *e = ctx;

	fprintf(e->out, "    <mapping cache_block=\"%" PRIu64 "\" origin_block=\"%" PRIu64
		"\" dirty=\"%s\"/>\n", cblock, oblock, dirty ? "true" : "false");
	return 0;
}

static void begin_hints(struct cache_xml_emitter *e)
{
	if (!e->in_hints)
		fputs("  </mappings>\n  <hints>\n", e->out);
	e->in_hints = true;
}

static int e_hint(void *ctx, uint64_t cblock, const uint8_t *data, uint32_t len)
{
	struct cache_xml_emitter *e = ctx;
	char buf[4 * (128 + 2) / 3 + 8];

	begin_hints(e);
	if (len > 128)
		len = 128;
	base64_encode(data, len, buf);
	fprintf(e->out, "    <hint cache_block=\"%" PRIu64 "\" data=\"%s\"/>\n", cblock, buf);
	return 0;
}

static int e_end(void *ctx)
{
	struct cache_xml_emitter *e = ctx;

	begin_hints(e);
	fputs("  </hints>\n</superblock>\n", e->out);
	return ferror(e->out) ? -EIO : 0;
}

void cache_xml_emitter_init(struct cache_xml_emitter *e, FILE *out, struct cache_visitor *v)
{
	e->out = out;
	e->in_hints = false;
	v->ctx = e;
	v->begin = e_begin;
	v->mapping = e_mapping;
	v->hint = e_hint;
	v->end = e_end;
}

/*----------------------------------------------------------------
 * Parser
 *--------------------------------------------------------------*/

struct parser {
	struct xml_read x;	/* first: expat's user data */
	const struct cache_visitor *v;
};

static void fail(struct parser *p, int code, const char *fmt, const char *what)
{
	xml_read_fail(&p->x, code, fmt, what);
}

static const char *attr(struct parser *p, const char **a, const char *name)
{
	for (; a[0]; a += 2)
		if (!strcmp(a[0], name))
			return a[1];
	fail(p, -EINVAL, "missing attribute '%s'", name);
	return NULL;
}

static bool num(struct parser *p, const char **a, const char *name, uint64_t max, uint64_t *v)
{
	const char *s = attr(p, a, name);
	char *end;

	if (!s)
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	if (!*s || *end || errno || *s == '-' || *s == '+' || *s == ' ' || *v > max) {
		fail(p, -EINVAL, "bad value for attribute '%s'", name);
		return false;
	}
	return true;
}

static void start(void *data, const char *el, const char **a)
{
	struct parser *p = data;
	uint64_t x, y;
	int r;

	if (p->x.error)
		return;
	if (!strcmp(el, "superblock")) {
		struct cache_sb sb;
		uint64_t bs, nr, hw;
		const char *uuid, *policy;

		if (p->x.seen_sb)
			return fail(p, -EINVAL, "%s", "more than one superblock");
		memset(&sb, 0, sizeof(sb));
		if (!(uuid = attr(p, a, "uuid")) || !num(p, a, "block_size", UINT32_MAX, &bs) ||
		    !num(p, a, "nr_cache_blocks", UINT32_MAX, &nr) ||
		    !(policy = attr(p, a, "policy")) || !num(p, a, "hint_width", 128, &hw))
			return;
		if (strlen(uuid) > 16)
			return fail(p, -EINVAL, "%s", "uuid too long");
		if (strlen(policy) >= CACHE_POLICY_NAME_SIZE)
			return fail(p, -EINVAL, "%s", "policy name too long");
		memcpy(sb.uuid, uuid, strlen(uuid));
		strcpy(sb.policy_name, policy);
		sb.data_block_size = (uint32_t)bs;
		sb.cache_blocks = (uint32_t)nr;
		p->x.seen_sb = p->x.in_sb = true;
		r = p->v->begin(p->v->ctx, &sb, (uint32_t)hw);
		if (r)
			xml_read_visitor_failed(&p->x, r);
		return;
	}
	if (!p->x.in_sb)
		return fail(p, -EINVAL, "%s", "missing superblock");
	if (!strcmp(el, "mappings") || !strcmp(el, "hints"))
		return;
	if (!strcmp(el, "mapping")) {
		const char *d;

		if (!num(p, a, "cache_block", UINT32_MAX, &x) ||
		    !num(p, a, "origin_block", UINT64_MAX, &y) || !(d = attr(p, a, "dirty")))
			return;
		if (strcmp(d, "true") && strcmp(d, "false"))
			return fail(p, -EINVAL, "%s", "bad boolean value");
		r = p->v->mapping(p->v->ctx, x, y, !strcmp(d, "true"));
		if (r)
			xml_read_visitor_failed(&p->x, r);
		return;
	}
	if (!strcmp(el, "hint")) {
		uint8_t buf[128];
		const char *d;
		int n;

		if (!num(p, a, "cache_block", UINT32_MAX, &x) || !(d = attr(p, a, "data")))
			return;
		n = base64_decode(d, buf, sizeof(buf));
		if (n < 0)
			return fail(p, -EINVAL, "%s", "invalid base64 encoding of hint");
		r = p->v->hint(p->v->ctx, x, buf, (uint32_t)n);
		if (r)
			xml_read_visitor_failed(&p->x, r);
		return;
	}
	/*
	 * The restored discard bitset has no blocks (the kernel sizes it on
	 * activation), so, as 0.9, only empty ranges fit; 1.x's and 0.9's
	 * dumps write no discards.
	 */
	if (!strcmp(el, "discards"))
		return;
	if (!strcmp(el, "discard")) {
		if (!num(p, a, "dbegin", UINT64_MAX, &x) || !num(p, a, "dend", UINT64_MAX, &y))
			return;
		if (x != y) {
			char what[64];

			snprintf(what, sizeof(what), "%" PRIu64 "-%" PRIu64, x, y);
			fail(p, -EINVAL, "discard of blocks %s beyond the discard bitset (0 blocks)",
			     what);
		}
		return;
	}
	fail(p, -EINVAL, "unknown tag type '%s'", el);
}

static void end(void *data, const char *el)
{
	struct parser *p = data;

	if (!p->x.error && !strcmp(el, "superblock"))
		p->x.in_sb = false;
}

static int finish(void *ctx)
{
	const struct cache_visitor *v = ctx;

	return v->end(v->ctx);
}

int cache_xml_parse(FILE *in, const struct cache_visitor *v, struct pd_err *verr,
		    struct pd_err *err)
{
	struct parser p = { .x = { .verr = verr, .err = err }, .v = v };

	return xml_read_run(&p.x, in, start, end, finish, (void *)v);
}

/*----------------------------------------------------------------
 * Fast reader: the lines cache_dump writes, nothing else
 *--------------------------------------------------------------*/

int cache_xml_parse_fast(FILE *in, const struct cache_visitor *v, struct pd_err *verr,
			 struct pd_err *err)
{
	enum { S_START, S_SB, S_MAPS, S_AFTER_MAPS, S_HINTS, S_AFTER_HINTS, S_END } st = S_START;
	char line[512];
	unsigned long nr = 0;
	int r;

	while (fgets(line, sizeof(line), in)) {
		const char *p = line;
		size_t len = strlen(line);
		uint64_t a, b;

		nr++;
		if (!len || line[len - 1] != '\n')
			return XML_PARSE_DECLINED;
		line[--len] = 0;
		while (*p == ' ')
			p++;
		r = 0;
		if (st == S_MAPS && xml_fast_lit(&p, "<mapping ")) {
			bool dirty;

			if (!xml_fast_num(&p, "cache_block", &a) || !xml_fast_lit(&p, " ") ||
			    !xml_fast_num(&p, "origin_block", &b) || !xml_fast_lit(&p, " dirty=\""))
				return XML_PARSE_DECLINED;
			if (xml_fast_lit(&p, "true\"/>"))
				dirty = true;
			else if (xml_fast_lit(&p, "false\"/>"))
				dirty = false;
			else
				return XML_PARSE_DECLINED;
			if (*p || a > UINT32_MAX)
				return XML_PARSE_DECLINED;
			r = v->mapping(v->ctx, a, b, dirty);
		} else if (st == S_HINTS && xml_fast_lit(&p, "<hint ")) {
			char data[256];
			uint8_t buf[128];
			int n;

			if (!xml_fast_num(&p, "cache_block", &a) || !xml_fast_lit(&p, " ") ||
			    !xml_fast_str(&p, "data", data, sizeof(data)) || !xml_fast_lit(&p, "/>") || *p ||
			    a > UINT32_MAX)
				return XML_PARSE_DECLINED;
			n = base64_decode(data, buf, sizeof(buf));
			if (n < 0)
				return XML_PARSE_DECLINED;
			r = v->hint(v->ctx, a, buf, (uint32_t)n);
		} else if (st == S_START && xml_fast_lit(&p, "<superblock ")) {
			struct cache_sb sb;
			char uuid[64], policy[64];
			uint64_t bs, nrb, hw;

			memset(&sb, 0, sizeof(sb));
			if (!xml_fast_str(&p, "uuid", uuid, sizeof(uuid)) || !xml_fast_lit(&p, " ") ||
			    !xml_fast_num(&p, "block_size", &bs) || !xml_fast_lit(&p, " ") ||
			    !xml_fast_num(&p, "nr_cache_blocks", &nrb) || !xml_fast_lit(&p, " ") ||
			    !xml_fast_str(&p, "policy", policy, sizeof(policy)) || !xml_fast_lit(&p, " ") ||
			    !xml_fast_num(&p, "hint_width", &hw) || !xml_fast_lit(&p, ">") || *p ||
			    strlen(uuid) > 16 || strlen(policy) >= CACHE_POLICY_NAME_SIZE ||
			    bs > UINT32_MAX || nrb > UINT32_MAX || hw > 128)
				return XML_PARSE_DECLINED;
			memcpy(sb.uuid, uuid, strlen(uuid));
			strcpy(sb.policy_name, policy);
			sb.data_block_size = (uint32_t)bs;
			sb.cache_blocks = (uint32_t)nrb;
			r = v->begin(v->ctx, &sb, (uint32_t)hw);
			st = S_SB;
		} else if (st == S_SB && !strcmp(p, "<mappings>")) {
			st = S_MAPS;
		} else if (st == S_MAPS && !strcmp(p, "</mappings>")) {
			st = S_AFTER_MAPS;
		} else if (st == S_AFTER_MAPS && !strcmp(p, "<hints>")) {
			st = S_HINTS;
		} else if (st == S_HINTS && !strcmp(p, "</hints>")) {
			st = S_AFTER_HINTS;
		} else if ((st == S_AFTER_HINTS || st == S_AFTER_MAPS) && !strcmp(p, "</superblock>")) {
			st = S_END;
		} else {
			return XML_PARSE_DECLINED;
		}
		if (r)
			return xml_fast_visitor_failed(nr, r, verr, err);
	}
	return xml_fast_end(in, st == S_END, finish, (void *)v, verr, err);
}
