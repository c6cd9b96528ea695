/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * thin_restore's XML reader: expat callbacks, or the fast reader's
 * scanner, hand each element to checks that feed the emitter as they go.
 * Nothing of the input is kept but the def index; the runs of a def go
 * to a spill file when the emitter cannot take shared sections itself.
 */
#include "xml-parser.h"
#include "thin-disk.h"

#include <errno.h>
#include <expat.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define CHUNK_SIZE		(1u << 20)
#define MAX_DEPTH		4	/* superblock > device|def > mapping|ref */
#define DATA_BLOCK_LIMIT	(1ull << 40)	/* block_time has 40 bits */
#define SPILL_BATCH		1024
#define BINARY_PROBE		4096

enum ctx { CTX_TOP, CTX_SUPERBLOCK, CTX_DEVICE, CTX_DEF, CTX_LEAF };

enum tag { T_SUPERBLOCK, T_DEVICE, T_DEF, T_SINGLE, T_RANGE, T_REF, T_UNKNOWN };

static const char *const tag_names[] = {
	[T_SUPERBLOCK] = "superblock",
	[T_DEVICE] = "device",
	[T_DEF] = "def",
	[T_SINGLE] = "single_mapping",
	[T_RANGE] = "range_mapping",
	[T_REF] = "ref",
};

/* A <def>: what a ref needs to check order and to replay it. */
struct def_rec {
	struct def_rec *next;		/* hash chain */
	char *name;
	bool empty;
	uint64_t first, last;		/* origins, inclusive */
	off_t spill_off;		/* its runs in the spill file */
	uint64_t nr_runs;
};

/* One run in the spill file: private, host order. */
struct spill_run {
	uint64_t origin;
	uint64_t data;
	uint64_t len;
	uint64_t time;
};

struct parser {
	XML_Parser xp;			/* NULL: the fast reader */
	struct emitter *e;		/* the caller's, behind the overrides */
	struct sb_override_emitter ov_em;
	struct xml_parse_opts o;
	struct pd_err *err;
	int r;				/* first error (or declined); stops everything */
	bool def_aware;			/* e takes begin_def/end_def/ref */
	bool done;			/* </superblock> seen */

	enum ctx stack[MAX_DEPTH];
	enum tag leaf;			/* the element when CTX_LEAF is on top */
	unsigned depth;

	uint64_t nr_data_blocks;	/* after the override */
	bool have_dev;
	uint64_t last_dev;
	bool have_origin;		/* in this device or def */
	uint64_t last_origin;		/* last origin mapped, inclusive */

	struct def_rec *cur_def;
	struct def_rec **buckets;
	size_t nr_buckets, nr_defs;

	FILE *spill;
	struct spill_run batch[SPILL_BATCH];

	/* the fast reader: where the element being handled starts */
	uint64_t fast_line;		/* from 1 */
	uint64_t fast_col;		/* from 0, as expat's */
};

/*----------------------------------------------------------------*/
/* Errors */

static unsigned long long cur_line(struct parser *p)
{
	if (!p->xp)
		return (unsigned long long)p->fast_line;
	return (unsigned long long)XML_GetCurrentLineNumber(p->xp);
}

static unsigned long long cur_column(struct parser *p)
{
	/* expat counts columns from 0, editors from 1 */
	if (!p->xp)
		return (unsigned long long)p->fast_col + 1;
	return (unsigned long long)XML_GetCurrentColumnNumber(p->xp) + 1;
}

static void stop(struct parser *p)
{
	if (p->xp)
		XML_StopParser(p->xp, XML_FALSE);
}

static void vreport(struct parser *p, int code, const char *fmt, va_list ap)
{
	char msg[PD_ERR_MSG_MAX];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	p->r = pd_err_set(p->err, code, "line %llu, column %llu: %s",
			  cur_line(p), cur_column(p), msg);
}

/* Records the first error at the current position and stops the reader. */
static void report(struct parser *p, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(struct parser *p, int code, const char *fmt, ...)
{
	va_list ap;

	if (p->r)
		return;
	va_start(ap, fmt);
	vreport(p, code, fmt, ap);
	va_end(ap);
	stop(p);
}

/* The same for an error in the input, which the fast reader may decline. */
static void fail(struct parser *p, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct parser *p, int code, const char *fmt, ...)
{
	va_list ap;

	if (p->r)
		return;
	if (p->o.reader == XML_READER_FAST_OR_DECLINE) {
		p->r = XML_PARSE_DECLINED;
		return;
	}
	va_start(ap, fmt);
	vreport(p, code, fmt, ap);
	va_end(ap);
	stop(p);
}

/* An emitter call returned r: keep the emitter's own message if it set one. */
static bool emit_failed(struct parser *p, int r, const char *what)
{
	if (!r)
		return false;
	if (p->r)
		return true;
	if (p->err && p->err->code) {
		pd_err_prefix(p->err, "line %llu, column %llu", cur_line(p), cur_column(p));
		p->r = r;
		stop(p);
	} else {
		report(p, r, "%s: %s", what, strerror(-r));
	}
	return true;
}

/*----------------------------------------------------------------*/
/* Attributes */

static const char *attr(const XML_Char **attrs, const char *name)
{
	/* thin_dump's names mostly differ in their first letter */
	for (; *attrs; attrs += 2)
		if (attrs[0][0] == name[0] && !strcmp(attrs[0], name))
			return attrs[1];
	return NULL;
}

/*
 * An unsigned decimal attribute of at most bits bits.  Returns 1 when
 * found, 0 when absent and optional, -1 after reporting an error.
 */
static int num_attr(struct parser *p, enum tag t, const XML_Char **attrs,
		    const char *name, unsigned bits, bool required, uint64_t *v)
{
	uint64_t max = bits == 64 ? UINT64_MAX : (1ull << bits) - 1;
	uint64_t max_10 = max / 10;
	unsigned max_d = (unsigned)(max % 10);
	const char *s = attr(attrs, name);
	uint64_t n = 0;

	if (!s) {
		if (!required)
			return 0;
		fail(p, -EINVAL, "missing attribute '%s' in <%s>", name, tag_names[t]);
		return -1;
	}
	if (!*s)
		goto not_number;
	for (const char *c = s; *c; c++) {
		unsigned d;

		if (*c < '0' || *c > '9')
			goto not_number;
		d = (unsigned)(*c - '0');
		if (n > max_10 || (n == max_10 && d > max_d)) {
			fail(p, -EINVAL, "attribute '%s' of <%s>: %.40s does not fit in %u bits",
			     name, tag_names[t], s, bits);
			return -1;
		}
		n = n * 10 + d;
	}
	*v = n;
	return 1;

not_number:
	fail(p, -EINVAL, "attribute '%s' of <%s>: '%.40s' is not an unsigned decimal number",
	     name, tag_names[t], s);
	return -1;
}

/* Shorthand for a required numeric attribute. */
#define REQ(t, name, bits, v) (num_attr(p, t, attrs, name, bits, true, v) < 0)

static const char *name_attr(struct parser *p, enum tag t, const XML_Char **attrs)
{
	const char *s = attr(attrs, "name");

	if (!s)
		fail(p, -EINVAL, "missing attribute 'name' in <%s>", tag_names[t]);
	return s;
}

/*----------------------------------------------------------------*/
/* The def index and the spill file */

static size_t hash_name(const char *s)
{
	uint64_t h = 14695981039346656037ull;	/* FNV-1a */

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return (size_t)h;
}

static struct def_rec *find_def(struct parser *p, const char *name)
{
	struct def_rec *d;

	if (!p->nr_buckets)
		return NULL;
	for (d = p->buckets[hash_name(name) % p->nr_buckets]; d; d = d->next)
		if (!strcmp(d->name, name))
			return d;
	return NULL;
}

static int grow_buckets(struct parser *p)
{
	size_t n = p->nr_buckets ? p->nr_buckets * 2 : 64;
	struct def_rec **b = calloc(n, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < p->nr_buckets; i++) {
		struct def_rec *d, *next;

		for (d = p->buckets[i]; d; d = next) {
			size_t h = hash_name(d->name) % n;

			next = d->next;
			d->next = b[h];
			b[h] = d;
		}
	}
	free(p->buckets);
	p->buckets = b;
	p->nr_buckets = n;
	return 0;
}

static struct def_rec *add_def(struct parser *p, const char *name)
{
	struct def_rec *d;
	size_t h;

	if (p->nr_defs >= p->nr_buckets && grow_buckets(p))
		return NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->name = strdup(name);
	if (!d->name) {
		free(d);
		return NULL;
	}
	d->empty = true;
	h = hash_name(name) % p->nr_buckets;
	d->next = p->buckets[h];
	p->buckets[h] = d;
	p->nr_defs++;
	return d;
}

static void free_defs(struct parser *p)
{
	for (size_t i = 0; i < p->nr_buckets; i++) {
		struct def_rec *d, *next;

		for (d = p->buckets[i]; d; d = next) {
			next = d->next;
			free(d->name);
			free(d);
		}
	}
	free(p->buckets);
}

/* Positions the spill file at its end for a new def. */
static int spill_begin(struct parser *p, struct def_rec *d)
{
	if (!p->spill) {
		p->spill = tmpfile();
		if (!p->spill)
			return -errno;
	}
	/* after replaying a ref the position is mid-file */
	if (fseeko(p->spill, 0, SEEK_END))
		return -errno;
	d->spill_off = ftello(p->spill);
	if (d->spill_off < 0)
		return -errno;
	return 0;
}

static int spill_run(struct parser *p, const struct spill_run *run)
{
	return fwrite(run, sizeof(*run), 1, p->spill) == 1 ? 0 : -EIO;
}

/* Expands a ref for an emitter without shared sections. */
static void replay(struct parser *p, const struct def_rec *d)
{
	uint64_t left = d->nr_runs;

	if (!left)
		return;
	if (fseeko(p->spill, d->spill_off, SEEK_SET)) {
		report(p, -errno, "temporary file for <def>: %s", strerror(errno));
		return;
	}
	while (left) {
		size_t n = left < SPILL_BATCH ? (size_t)left : SPILL_BATCH;

		if (fread(p->batch, sizeof(p->batch[0]), n, p->spill) != n) {
			report(p, -EIO, "reading def '%s' back from the temporary file failed",
			       d->name);
			return;
		}
		for (size_t i = 0; i < n; i++) {
			const struct spill_run *s = p->batch + i;

			if (emit_failed(p, p->e->ops->map_run(p->e, s->origin, s->data,
							      s->len, (uint32_t)s->time),
					"mapping"))
				return;
		}
		left -= n;
	}
}

/*----------------------------------------------------------------*/
/* Elements */

static void start_superblock(struct parser *p, const XML_Char **attrs)
{
	const enum tag t = T_SUPERBLOCK;
	struct emit_superblock sb = { 0 }, eff;
	const char *uuid = attr(attrs, "uuid");
	uint64_t v;
	size_t len;
	int r;

	if (!uuid) {
		fail(p, -EINVAL, "missing attribute 'uuid' in <superblock>");
		return;
	}
	/* v0.9 keeps the first 16 bytes (a textual UUID is longer); so do we */
	len = strlen(uuid);
	if (len > sizeof(sb.uuid))
		len = sizeof(sb.uuid);
	memcpy(sb.uuid, uuid, len);

	if (REQ(t, "time", 32, &v))
		return;
	sb.time = (uint32_t)v;
	if (REQ(t, "transaction", 64, &sb.trans_id))
		return;
	r = num_attr(p, t, attrs, "flags", 32, false, &v);
	if (r < 0)
		return;
	sb.has_flags = r;
	sb.flags = r ? (uint32_t)v : 0;
	r = num_attr(p, t, attrs, "version", 32, false, &v);
	if (r < 0)
		return;
	sb.has_version = r;
	sb.version = r ? (uint32_t)v : 0;
	if (REQ(t, "data_block_size", 32, &v))
		return;
	sb.data_block_size = (uint32_t)v;
	if (REQ(t, "nr_data_blocks", 64, &sb.nr_data_blocks))
		return;
	r = num_attr(p, t, attrs, "metadata_snap", 64, false, &sb.metadata_snap);
	if (r < 0)
		return;
	sb.has_metadata_snap = r;

	/* checked as the emitter will get it */
	eff = sb;
	sb_override_emitter_apply(&p->ov_em, &eff);
	if (eff.data_block_size < THIN_MIN_DATA_BLOCK_SIZE ||
	    eff.data_block_size > THIN_MAX_DATA_BLOCK_SIZE ||
	    eff.data_block_size % THIN_MIN_DATA_BLOCK_SIZE) {
		fail(p, -EINVAL, "invalid data block size %u%s: it must be a multiple of %u sectors from %u to %u",
		     eff.data_block_size, p->o.ov.set_data_block_size ? " (from the option)" : "",
		     THIN_MIN_DATA_BLOCK_SIZE, THIN_MIN_DATA_BLOCK_SIZE,
		     THIN_MAX_DATA_BLOCK_SIZE);
		return;
	}
	p->nr_data_blocks = eff.nr_data_blocks;
	emit_failed(p, p->e->ops->begin_superblock(p->e, &sb), "superblock");
}

static void start_device(struct parser *p, const XML_Char **attrs)
{
	const enum tag t = T_DEVICE;
	struct emit_device dev = { 0 };
	uint64_t v;

	if (REQ(t, "dev_id", 64, &dev.dev_id) ||
	    REQ(t, "mapped_blocks", 64, &dev.mapped_blocks) ||
	    REQ(t, "transaction", 64, &dev.transaction_id))
		return;
	if (REQ(t, "creation_time", 32, &v))
		return;
	dev.creation_time = (uint32_t)v;
	if (REQ(t, "snap_time", 32, &v))
		return;
	dev.snap_time = (uint32_t)v;

	if (p->have_dev && dev.dev_id == p->last_dev) {
		fail(p, -EINVAL, "device %" PRIu64 ": Device already exists",
		     dev.dev_id);
		return;
	}
	if (p->have_dev && dev.dev_id < p->last_dev) {
		fail(p, -EINVAL, "device %" PRIu64 " comes after device %" PRIu64 ": devices must be in ascending dev_id order (as thin_dump writes them)",
		     dev.dev_id, p->last_dev);
		return;
	}
	p->have_dev = true;
	p->last_dev = dev.dev_id;
	p->have_origin = false;
	emit_failed(p, p->e->ops->begin_device(p->e, &dev), "device");
}

static void start_def(struct parser *p, const XML_Char **attrs)
{
	const char *name = name_attr(p, T_DEF, attrs);
	struct def_rec *d;
	int r;

	if (!name)
		return;
	if (find_def(p, name)) {
		fail(p, -EINVAL, "def '%.64s' is already defined", name);
		return;
	}
	d = add_def(p, name);
	if (!d) {
		report(p, -ENOMEM, "out of memory");
		return;
	}
	p->cur_def = d;
	p->have_origin = false;
	if (p->def_aware) {
		emit_failed(p, p->e->ops->begin_def(p->e, name), "def");
		return;
	}
	r = spill_begin(p, d);
	if (r)
		report(p, r, "temporary file for <def>: %s", strerror(-r));
}

/* A mapping run in the current device or def: check it, then pass it on. */
static void add_run(struct parser *p, enum tag t, uint64_t origin, uint64_t data,
		    uint64_t len, uint32_t time)
{
	uint64_t last, data_last;

	if (!len) {
		fail(p, -EINVAL, "<%s> of length 0", tag_names[t]);
		return;
	}
	if (origin > UINT64_MAX - (len - 1) || data > UINT64_MAX - (len - 1)) {
		fail(p, -EINVAL, "<%s> length %" PRIu64 " runs past the largest block number",
		     tag_names[t], len);
		return;
	}
	last = origin + (len - 1);
	data_last = data + (len - 1);
	if (p->have_origin && origin <= p->last_origin) {
		fail(p, -EINVAL, "mapping of origin %" PRIu64 " is not after the previous one, which ends at origin %" PRIu64 ": mappings must be in ascending origin order, without overlap",
		     origin, p->last_origin);
		return;
	}
	if (data_last >= p->nr_data_blocks) {
		fail(p, -EINVAL, "mapping beyond end of data device (%" PRIu64 " >= %" PRIu64 ")",
		     data_last, p->nr_data_blocks);
		return;
	}
	if (data_last >= DATA_BLOCK_LIMIT) {
		fail(p, -EINVAL, "data block %" PRIu64 " is beyond the 40-bit limit of a mapping",
		     data_last);
		return;
	}
	p->have_origin = true;
	p->last_origin = last;

	if (p->cur_def) {
		struct def_rec *d = p->cur_def;

		if (d->empty)
			d->first = origin;
		d->empty = false;
		d->last = last;
		if (!p->def_aware) {
			struct spill_run s = { origin, data, len, time };
			int r = spill_run(p, &s);

			if (r)
				report(p, r, "writing the temporary file for <def> failed");
			else
				d->nr_runs++;
			return;
		}
	}
	emit_failed(p, p->e->ops->map_run(p->e, origin, data, len, time), "mapping");
}

static void start_single(struct parser *p, const XML_Char **attrs)
{
	const enum tag t = T_SINGLE;
	uint64_t origin, data, time;

	if (REQ(t, "origin_block", 64, &origin) || REQ(t, "data_block", 64, &data) ||
	    REQ(t, "time", BLOCK_TIME_TIME_BITS, &time))
		return;
	add_run(p, t, origin, data, 1, (uint32_t)time);
}

static void start_range(struct parser *p, const XML_Char **attrs)
{
	const enum tag t = T_RANGE;
	uint64_t origin, data, len, time;

	if (REQ(t, "origin_begin", 64, &origin) || REQ(t, "data_begin", 64, &data) ||
	    REQ(t, "length", 64, &len) || REQ(t, "time", BLOCK_TIME_TIME_BITS, &time))
		return;
	add_run(p, t, origin, data, len, (uint32_t)time);
}

static void start_ref(struct parser *p, const XML_Char **attrs)
{
	const char *name = name_attr(p, T_REF, attrs);
	struct def_rec *d;

	if (!name)
		return;
	d = find_def(p, name);
	if (!d) {
		fail(p, -EINVAL, "<ref> to undefined def '%.64s' (a def must come before the devices that ref it)",
		     name);
		return;
	}
	if (!d->empty) {
		if (p->have_origin && d->first <= p->last_origin) {
			fail(p, -EINVAL, "ref '%.64s' (origins %" PRIu64 "..%" PRIu64 ") is not after the previous mapping, which ends at origin %" PRIu64 ": mappings must be in ascending origin order, without overlap",
			     name, d->first, d->last, p->last_origin);
			return;
		}
		p->have_origin = true;
		p->last_origin = d->last;
	}
	if (p->def_aware)
		emit_failed(p, p->e->ops->ref(p->e, name), "ref");
	else
		replay(p, d);
}

static enum tag lookup_tag(const char *name)
{
	for (unsigned i = 0; i < T_UNKNOWN; i++)
		if (!strcmp(name, tag_names[i]))
			return (enum tag)i;
	return T_UNKNOWN;
}

/* Whether tag t may open inside cur; reports the error if not. */
static bool allowed(struct parser *p, enum ctx cur, enum tag t)
{
	const char *n = tag_names[t];

	if (cur == CTX_LEAF) {
		fail(p, -EINVAL, "unexpected <%s> inside <%s>", n, tag_names[p->leaf]);
		return false;
	}
	switch (t) {
	case T_SUPERBLOCK:
		if (cur == CTX_TOP)
			return true;
		fail(p, -EINVAL, "nested superblock");
		return false;
	case T_DEVICE:
	case T_DEF:
		if (cur == CTX_SUPERBLOCK)
			return true;
		if (cur == CTX_TOP)
			fail(p, -EINVAL, "<%s>: missing superblock", n);
		else
			fail(p, -EINVAL, "<%s> inside <%s>: it belongs directly inside <superblock>",
			     n, cur == CTX_DEVICE ? "device" : "def");
		return false;
	case T_SINGLE:
	case T_RANGE:
		if (cur == CTX_DEVICE || cur == CTX_DEF)
			return true;
		fail(p, -EINVAL, "<%s> not in device", n);
		return false;
	case T_REF:
		if (cur == CTX_DEVICE)
			return true;
		if (cur == CTX_DEF)
			fail(p, -EINVAL, "<ref> inside <def>: a def holds only mappings");
		else
			fail(p, -EINVAL, "<ref> not in device");
		return false;
	default:
		return false;
	}
}

/* Element t opens, with attrs (name, value, ..., NULL). */
static void start_element(struct parser *p, enum tag t, const XML_Char **attrs)
{
	static const enum ctx opens[] = {
		[T_SUPERBLOCK] = CTX_SUPERBLOCK,
		[T_DEVICE] = CTX_DEVICE,
		[T_DEF] = CTX_DEF,
		[T_SINGLE] = CTX_LEAF,
		[T_RANGE] = CTX_LEAF,
		[T_REF] = CTX_LEAF,
	};
	enum ctx cur = p->depth ? p->stack[p->depth - 1] : CTX_TOP;

	if (!allowed(p, cur, t))
		return;

	switch (t) {
	case T_SUPERBLOCK:
		start_superblock(p, attrs);
		break;
	case T_DEVICE:
		start_device(p, attrs);
		break;
	case T_DEF:
		start_def(p, attrs);
		break;
	case T_SINGLE:
		start_single(p, attrs);
		break;
	case T_RANGE:
		start_range(p, attrs);
		break;
	case T_REF:
		start_ref(p, attrs);
		break;
	default:
		break;
	}
	if (p->r)
		return;
	/* allowed() keeps the depth within MAX_DEPTH */
	p->stack[p->depth++] = opens[t];
	if (opens[t] == CTX_LEAF)
		p->leaf = t;
}

static void XMLCALL on_start(void *data, const XML_Char *name, const XML_Char **attrs)
{
	struct parser *p = data;
	enum tag t;

	if (p->r)
		return;
	t = lookup_tag(name);
	if (t == T_UNKNOWN) {
		fail(p, -EINVAL, "unknown tag type '%.64s'", name);
		return;
	}
	start_element(p, t, attrs);
}

static void XMLCALL on_end(void *data, const XML_Char *name)
{
	struct parser *p = data;
	struct emitter *e = p->e;

	(void)name;		/* expat matched it with its start tag */
	if (p->r || !p->depth)
		return;
	switch (p->stack[--p->depth]) {
	case CTX_SUPERBLOCK:
		if (!emit_failed(p, e->ops->end_superblock(e), "end of superblock"))
			p->done = true;
		break;
	case CTX_DEVICE:
		emit_failed(p, e->ops->end_device(e), "end of device");
		break;
	case CTX_DEF:
		p->cur_def = NULL;
		if (p->def_aware)
			emit_failed(p, e->ops->end_def(e), "end of def");
		break;
	default:
		break;
	}
}

/*----------------------------------------------------------------*/
/* Reading */

/* thin_restore -i given the metadata device, or some other binary file. */
static int check_not_binary(struct parser *p, const char *buf, size_t n)
{
	size_t magic_at = offsetof(struct thin_sb_disk, magic);

	if (n >= magic_at + 8 && load_le64(buf + magic_at) == THIN_SB_MAGIC)
		return pd_err_set(p->err, -EINVAL,
				  "input looks like binary metadata, not XML (it starts with a thin superblock): were input and output swapped?");
	if (memchr(buf, '\0', n < BINARY_PROBE ? n : BINARY_PROBE))
		return pd_err_set(p->err, -EINVAL,
				  "input looks like binary metadata, not XML (it holds NUL bytes)");
	return 0;
}

/*----------------------------------------------------------------*/
/* Driving expat */

static void report_xml_error(struct parser *p)
{
	p->r = pd_err_set(p->err, -EINVAL, "line %llu, column %llu: XML error: %s",
			  cur_line(p), cur_column(p),
			  XML_ErrorString(XML_GetErrorCode(p->xp)));
}

/*----------------------------------------------------------------*/
/* The fast reader */

/*
 * A scanner for the subset of XML that thin_dump writes (xml_reader in
 * the header says which).  The buffer holds the input from file offset
 * base, with a NUL after the data: no byte of the subset is NUL, so the
 * scanners run up to the end of the data without counting, and a NUL
 * right at the end means "read more".  An element cut by the end of the
 * buffer is scanned again from its '<' once more is read: nothing in the
 * buffer changes until an element is whole.
 */

#define FAST_MAX_ATTRS	16

enum scan { SCAN_OK, SCAN_MORE, SCAN_OUT };

struct fast {
	char *buf;			/* CHUNK_SIZE + 1 bytes */
	size_t len;			/* bytes of input in buf */
	uint64_t base;			/* file offset of buf[0] */
	bool eof;
	uint64_t line;			/* of the next byte to scan, from 1 */
	uint64_t line_start;		/* file offset of that line's first byte */
	uint64_t reported;		/* to the progress callback */
};

/* Newlines inside an element, counted once it is whole. */
struct lines {
	uint64_t n;
	const char *last;		/* the last newline seen, or NULL */
};

static inline bool is_space(char c)
{
	return c == ' ' || c == '\n' || c == '\t';
}

static inline bool is_name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static inline bool is_name_char(char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

/* In a quoted value: printable ASCII but for '<' and '&' (expat rewrites \t \n). */
static inline bool is_value_char(char c)
{
	return c >= 0x20 && c <= 0x7e && c != '<' && c != '&';
}

/* Names from "xml" on (any case) are XML's own, xmlns among them: expat's business. */
static bool reserved_name(const char *name, const char *end)
{
	return end - name >= 3 && (name[0] | 0x20) == 'x' && (name[1] | 0x20) == 'm' &&
	       (name[2] | 0x20) == 'l';
}

static char *skip_space(char *q, struct lines *l)
{
	for (; is_space(*q); q++)
		if (*q == '\n') {
			l->n++;
			l->last = q;
		}
	return q;
}

/* q stopped the scan: the end of what is read so far, or a byte outside the subset. */
static enum scan stopped_at(const struct fast *f, const char *q)
{
	return !*q && q == f->buf + f->len ? SCAN_MORE : SCAN_OUT;
}

static void count_lines(struct fast *f, const struct lines *l)
{
	f->line += l->n;
	if (l->last)
		f->line_start = f->base + (uint64_t)(l->last - f->buf) + 1;
}

static enum tag known_tag(const char *name, size_t len)
{
	for (unsigned i = 0; i < T_UNKNOWN; i++)
		if (strlen(tag_names[i]) == len && !memcmp(name, tag_names[i], len))
			return (enum tag)i;
	return T_UNKNOWN;
}

static enum tag open_tag(const struct parser *p)
{
	switch (p->stack[p->depth - 1]) {
	case CTX_SUPERBLOCK:
		return T_SUPERBLOCK;
	case CTX_DEVICE:
		return T_DEVICE;
	case CTX_DEF:
		return T_DEF;
	default:
		return p->leaf;
	}
}

/* "</name S? >" at s, name that of the innermost open element. */
static enum scan scan_end_tag(struct parser *p, struct fast *f, char *s, char **next)
{
	struct lines l = { 0, NULL };
	const char *want;
	char *q = s + 2;

	if (!p->depth)
		return SCAN_OUT;
	for (want = tag_names[open_tag(p)]; *want && *q == *want; want++)
		q++;
	if (*want)
		return stopped_at(f, q);
	if (is_name_char(*q))
		return SCAN_OUT;
	q = skip_space(q, &l);
	if (*q != '>')
		return stopped_at(f, q);
	on_end(p, NULL);
	count_lines(f, &l);
	*next = q + 1;
	return SCAN_OK;
}

/* The element whose '<' is at s: a start tag, an empty element or an end tag. */
static enum scan scan_element(struct parser *p, struct fast *f, char *s, char **next)
{
	const XML_Char *attrs[2 * FAST_MAX_ATTRS + 1];
	char *ends[2 * FAST_MAX_ATTRS];		/* where each name and value ends */
	struct lines l = { 0, NULL };
	unsigned n = 0;
	bool empty = false;
	enum tag t;
	char *q = s + 1;

	if (*q == '/')
		return scan_end_tag(p, f, s, next);
	while (is_name_char(*q))
		q++;
	if (!*q)
		return stopped_at(f, q);
	t = known_tag(s + 1, (size_t)(q - (s + 1)));
	if (t == T_UNKNOWN)
		return SCAN_OUT;

	for (;;) {
		char *spaced = q, quote;

		q = skip_space(q, &l);
		if (*q == '>') {
			q++;
			break;
		}
		if (*q == '/') {
			if (q[1] != '>')
				return stopped_at(f, q + 1);
			q += 2;
			empty = true;
			break;
		}
		/* attributes are apart from the name and from each other */
		if (q == spaced || !is_name_start(*q))
			return stopped_at(f, q);
		if (n == FAST_MAX_ATTRS)
			return SCAN_OUT;
		attrs[2 * n] = q;
		while (is_name_char(*q))
			q++;
		ends[2 * n] = q;
		if (reserved_name(attrs[2 * n], q))
			return SCAN_OUT;
		q = skip_space(q, &l);
		if (*q != '=')
			return stopped_at(f, q);
		q = skip_space(q + 1, &l);
		quote = *q;
		if (quote != '"' && quote != '\'')
			return stopped_at(f, q);
		attrs[2 * n + 1] = ++q;
		while (*q != quote && is_value_char(*q))
			q++;
		if (*q != quote)
			return stopped_at(f, q);
		ends[2 * n + 1] = q++;
		for (unsigned i = 0; i < n; i++) {
			size_t len = (size_t)(ends[2 * i] - attrs[2 * i]);

			/* a repeated attribute: not well-formed */
			if (len == (size_t)(ends[2 * n] - attrs[2 * n]) &&
			    !memcmp(attrs[2 * i], attrs[2 * n], len))
				return SCAN_OUT;
		}
		n++;
	}

	/* whole: the names and values become strings in place */
	for (unsigned i = 0; i < 2 * n; i++)
		*ends[i] = '\0';
	attrs[2 * n] = NULL;
	start_element(p, t, attrs);
	count_lines(f, &l);
	if (empty && !p->r) {
		/* expat places the end of an empty element after its "/>" */
		p->fast_line = f->line;
		p->fast_col = f->base + (uint64_t)(q - f->buf) - f->line_start;
		on_end(p, NULL);
	}
	*next = q;
	return SCAN_OK;
}

/* Keeps what is left from pos on and reads more after it. */
static int fast_read(struct parser *p, struct fast *f, FILE *in, size_t *pos)
{
	size_t keep = f->len - *pos, want = CHUNK_SIZE - keep, n;
	bool first = !f->base && !f->len;
	int r;

	memmove(f->buf, f->buf + *pos, keep);
	f->base += *pos;
	f->len = keep;
	*pos = 0;
	n = fread(f->buf + keep, 1, want, in);
	if (n < want) {
		if (ferror(in))
			return pd_err_set(p->err, -EIO, "reading the input failed");
		f->eof = true;
	}
	if (first) {
		if (!n)
			return pd_err_set(p->err, -EINVAL, "the input is empty, not XML");
		r = check_not_binary(p, f->buf, n);
		if (r)
			return r;
	}
	f->len += n;
	f->buf[f->len] = '\0';
	return 0;
}

/* What is read so far is parsed, but for a cut element: say how far. */
static void fast_progress(struct parser *p, struct fast *f)
{
	uint64_t total = f->base + f->len;

	if (p->o.progress && total > f->reported) {
		p->o.progress(p->o.progress_ctx, total);
		f->reported = total;
	}
}

/* Outside the subset at the element (or text) at file offset at. */
static int fast_out(struct parser *p, const struct fast *f, uint64_t at)
{
	if (p->o.reader == XML_READER_FAST_OR_DECLINE)
		return XML_PARSE_DECLINED;
	p->fast_line = f->line;
	p->fast_col = at - f->line_start;
	return pd_err_set(p->err, -EINVAL,
			  "line %llu, column %llu: XML error: not as thin_dump writes it (has the input changed since it was checked?)",
			  cur_line(p), cur_column(p));
}

static int fast_parse(struct parser *p, FILE *in)
{
	struct fast f = { .line = 1 };
	size_t pos = 0;
	int r;

	f.buf = malloc(CHUNK_SIZE + 1);
	if (!f.buf)
		return pd_err_set(p->err, -ENOMEM, "out of memory");
	r = fast_read(p, &f, in, &pos);
	while (!r) {
		char *s = f.buf + pos;
		enum scan sc = SCAN_MORE;

		/* only whitespace between elements */
		for (;; s++) {
			if (*s == ' ' || *s == '\t')
				continue;
			if (*s != '\n')
				break;
			f.line++;
			f.line_start = f.base + (uint64_t)(s - f.buf) + 1;
		}
		pos = (size_t)(s - f.buf);
		if (*s == '<' && !p->done) {
			p->fast_line = f.line;
			p->fast_col = f.base + pos - f.line_start;
			sc = scan_element(p, &f, s, &s);
			if (sc == SCAN_OK) {
				pos = (size_t)(s - f.buf);
				if (p->r)
					break;
				continue;
			}
		} else if (*s || pos != f.len) {
			sc = SCAN_OUT;
		}
		if (sc == SCAN_MORE && f.eof && pos == f.len && p->done) {
			/* the end, after the root element */
			fast_progress(p, &f);
			break;
		}
		/* cut off, or an element as long as the buffer */
		if (sc == SCAN_OUT || f.eof || (!pos && f.len == CHUNK_SIZE)) {
			r = fast_out(p, &f, f.base + pos);
			break;
		}
		fast_progress(p, &f);
		r = fast_read(p, &f, in, &pos);
	}
	free(f.buf);
	if (!r)
		r = p->r;
	if (!r && !p->done)
		r = pd_err_set(p->err, -EINVAL, "the input ended before </superblock>");
	return r;
}

static int parse_stream(struct parser *p, FILE *in)
{
	uint64_t total = 0;

	for (;;) {
		void *buf = XML_GetBuffer(p->xp, CHUNK_SIZE);
		size_t n;
		bool final;
		int r;

		if (!buf)
			return pd_err_set(p->err, -ENOMEM, "out of memory");
		n = fread(buf, 1, CHUNK_SIZE, in);
		if (n < CHUNK_SIZE && ferror(in))
			return pd_err_set(p->err, -EIO, "reading the input failed");
		final = n < CHUNK_SIZE;
		if (!total) {
			if (!n)
				return pd_err_set(p->err, -EINVAL, "the input is empty, not XML");
			r = check_not_binary(p, buf, n);
			if (r)
				return r;
		}
		total += n;
		if (XML_ParseBuffer(p->xp, (int)n, final) != XML_STATUS_OK) {
			if (!p->r)
				report_xml_error(p);
			return p->r;
		}
		if (p->o.progress)
			p->o.progress(p->o.progress_ctx, total);
		if (final)
			break;
	}
	if (!p->done)	/* expat reports unclosed elements; defensive */
		return pd_err_set(p->err, -EINVAL, "the input ended before </superblock>");
	return 0;
}

int thin_xml_parse(FILE *in, struct emitter *e, const struct xml_parse_opts *o,
		   struct pd_err *err)
{
	const struct emitter_ops *ops = e->ops;
	unsigned nr_def_ops = !!ops->begin_def + !!ops->end_def + !!ops->ref;
	struct parser *p;
	int r;

	pd_err_clear(err);
	if (nr_def_ops != 0 && nr_def_ops != 3)
		return pd_err_set(err, -EINVAL,
				  "emitter sets only some of begin_def, end_def and ref");
	p = calloc(1, sizeof(*p));
	if (!p)
		return pd_err_set(err, -ENOMEM, "out of memory");
	if (o)
		p->o = *o;
	p->e = sb_override_emitter_init(&p->ov_em, e, &p->o.ov);
	p->err = err;
	p->def_aware = nr_def_ops == 3;
	if (p->o.reader != XML_READER_EXPAT) {
		r = fast_parse(p, in);
		goto out;
	}
	p->xp = XML_ParserCreate(NULL);
	if (!p->xp) {
		free(p);
		return pd_err_set(err, -ENOMEM, "out of memory");
	}
	XML_SetUserData(p->xp, p);
	XML_SetElementHandler(p->xp, on_start, on_end);

	r = parse_stream(p, in);

	XML_ParserFree(p->xp);
out:
	if (p->spill)
		fclose(p->spill);
	free_defs(p);
	free(p);
	return r;
}
