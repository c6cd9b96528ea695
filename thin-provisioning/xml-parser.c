/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * thin_restore's XML reader: expat callbacks that check each element and
 * feed the emitter as they go.  Nothing of the input is kept but the def
 * index; the runs of a def go to a spill file when the emitter cannot
 * take shared sections itself.
 */
#include "xml-parser.h"
#include "thin-disk.h"

#include <errno.h>
#include <expat.h>
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
	XML_Parser xp;
	struct emitter *e;
	struct xml_parse_opts o;
	struct pd_err *err;
	int r;				/* first error; stops everything */
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
};

/*----------------------------------------------------------------*/
/* Errors */

static unsigned long long cur_line(struct parser *p)
{
	return (unsigned long long)XML_GetCurrentLineNumber(p->xp);
}

static unsigned long long cur_column(struct parser *p)
{
	/* expat counts columns from 0, editors from 1 */
	return (unsigned long long)XML_GetCurrentColumnNumber(p->xp) + 1;
}

static void vreport(struct parser *p, int code, const char *fmt, va_list ap)
{
	char msg[PD_ERR_MSG_MAX];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	p->r = pd_err_set(p->err, code, "line %llu, column %llu: %s",
			  cur_line(p), cur_column(p), msg);
}

/* Records the first error at the current position and stops expat. */
static void fail(struct parser *p, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct parser *p, int code, const char *fmt, ...)
{
	va_list ap;

	if (p->r)
		return;
	va_start(ap, fmt);
	vreport(p, code, fmt, ap);
	va_end(ap);
	XML_StopParser(p->xp, XML_FALSE);
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
		XML_StopParser(p->xp, XML_FALSE);
	} else {
		fail(p, r, "%s: %s", what, strerror(-r));
	}
	return true;
}

/*----------------------------------------------------------------*/
/* Attributes */

static const char *attr(const XML_Char **attrs, const char *name)
{
	for (; *attrs; attrs += 2)
		if (!strcmp(attrs[0], name))
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
		if (n > (max - d) / 10) {
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
		fail(p, -errno, "temporary file for <def>: %s", strerror(errno));
		return;
	}
	while (left) {
		size_t n = left < SPILL_BATCH ? (size_t)left : SPILL_BATCH;

		if (fread(p->batch, sizeof(p->batch[0]), n, p->spill) != n) {
			fail(p, -EIO, "reading def '%s' back from the temporary file failed",
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
	struct emit_superblock sb = { 0 };
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

	sb_overrides_apply(&p->o.ov, &sb);

	if (sb.data_block_size < THIN_MIN_DATA_BLOCK_SIZE ||
	    sb.data_block_size > THIN_MAX_DATA_BLOCK_SIZE ||
	    sb.data_block_size % THIN_MIN_DATA_BLOCK_SIZE) {
		fail(p, -EINVAL, "invalid data block size %u%s: it must be a multiple of %u sectors from %u to %u",
		     sb.data_block_size, p->o.ov.set_data_block_size ? " (from the option)" : "",
		     THIN_MIN_DATA_BLOCK_SIZE, THIN_MIN_DATA_BLOCK_SIZE,
		     THIN_MAX_DATA_BLOCK_SIZE);
		return;
	}
	p->nr_data_blocks = sb.nr_data_blocks;
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
		fail(p, -EINVAL, "device %llu: Device already exists",
		     (unsigned long long)dev.dev_id);
		return;
	}
	if (p->have_dev && dev.dev_id < p->last_dev) {
		fail(p, -EINVAL, "device %llu comes after device %llu: devices must be in ascending dev_id order (as thin_dump writes them)",
		     (unsigned long long)dev.dev_id, (unsigned long long)p->last_dev);
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
		fail(p, -ENOMEM, "out of memory");
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
		fail(p, r, "temporary file for <def>: %s", strerror(-r));
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
		fail(p, -EINVAL, "<%s> length %llu runs past the largest block number",
		     tag_names[t], (unsigned long long)len);
		return;
	}
	last = origin + (len - 1);
	data_last = data + (len - 1);
	if (p->have_origin && origin <= p->last_origin) {
		fail(p, -EINVAL, "mapping of origin %llu is not after the previous one, which ends at origin %llu: mappings must be in ascending origin order, without overlap",
		     (unsigned long long)origin, (unsigned long long)p->last_origin);
		return;
	}
	if (data_last >= p->nr_data_blocks) {
		fail(p, -EINVAL, "mapping beyond end of data device (%llu >= %llu)",
		     (unsigned long long)data_last,
		     (unsigned long long)p->nr_data_blocks);
		return;
	}
	if (data_last >= DATA_BLOCK_LIMIT) {
		fail(p, -EINVAL, "data block %llu is beyond the 40-bit limit of a mapping",
		     (unsigned long long)data_last);
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
				fail(p, r, "writing the temporary file for <def> failed");
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
			fail(p, -EINVAL, "ref '%.64s' (origins %llu..%llu) is not after the previous mapping, which ends at origin %llu: mappings must be in ascending origin order, without overlap",
			     name, (unsigned long long)d->first,
			     (unsigned long long)d->last,
			     (unsigned long long)p->last_origin);
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

static void XMLCALL on_start(void *data, const XML_Char *name, const XML_Char **attrs)
{
	static const enum ctx opens[] = {
		[T_SUPERBLOCK] = CTX_SUPERBLOCK,
		[T_DEVICE] = CTX_DEVICE,
		[T_DEF] = CTX_DEF,
		[T_SINGLE] = CTX_LEAF,
		[T_RANGE] = CTX_LEAF,
		[T_REF] = CTX_LEAF,
	};
	struct parser *p = data;
	enum ctx cur = p->depth ? p->stack[p->depth - 1] : CTX_TOP;
	enum tag t;

	if (p->r)
		return;
	t = lookup_tag(name);
	if (t == T_UNKNOWN) {
		fail(p, -EINVAL, "unknown tag type '%.64s'", name);
		return;
	}
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
/* Driving expat */

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

static void report_xml_error(struct parser *p)
{
	p->r = pd_err_set(p->err, -EINVAL, "line %llu, column %llu: XML error: %s",
			  cur_line(p), cur_column(p),
			  XML_ErrorString(XML_GetErrorCode(p->xp)));
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
	p->e = e;
	if (o)
		p->o = *o;
	p->err = err;
	p->def_aware = nr_def_ops == 3;
	p->xp = XML_ParserCreate(NULL);
	if (!p->xp) {
		free(p);
		return pd_err_set(err, -ENOMEM, "out of memory");
	}
	XML_SetUserData(p->xp, p);
	XML_SetElementHandler(p->xp, on_start, on_end);

	r = parse_stream(p, in);

	XML_ParserFree(p->xp);
	if (p->spill)
		fclose(p->spill);
	free_defs(p);
	free(p);
	return r;
}
