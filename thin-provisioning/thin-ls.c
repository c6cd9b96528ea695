/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * thin_ls: a table of the pool's devices, as v0.9 prints it.  EXCLUSIVE
 * and SHARED count a device's mappings whose data block is mapped once,
 * or more than once, across the whole pool; they take a second walk.
 */
#include "cli.h"
#include "commands.h"
#include "metadata.h"
#include "persistent-data/count-map.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum field {
	F_DEV, F_MAPPED_BLOCKS, F_EXCLUSIVE_BLOCKS, F_SHARED_BLOCKS,
	F_MAPPED_SECTORS, F_EXCLUSIVE_SECTORS, F_SHARED_SECTORS,
	F_MAPPED_BYTES, F_EXCLUSIVE_BYTES, F_SHARED_BYTES,
	F_MAPPED, F_EXCLUSIVE, F_SHARED,
	F_TRANSACTION, F_CREATE_TIME, F_SNAP_TIME,
	NR_FIELDS
};

static const char *const field_names[NR_FIELDS] = {
	"DEV", "MAPPED_BLOCKS", "EXCLUSIVE_BLOCKS", "SHARED_BLOCKS",
	"MAPPED_SECTORS", "EXCLUSIVE_SECTORS", "SHARED_SECTORS",
	"MAPPED_BYTES", "EXCLUSIVE_BYTES", "SHARED_BYTES",
	"MAPPED", "EXCLUSIVE", "SHARED",
	"TRANSACTION", "CREATE_TIME", "SNAP_TIME",
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] {metadata device}\n"
		"Options:\n"
		"  {-h|--help}\n"
		"  {-m|--metadata-snap}\n"
		"  {--no-headers}\n"
		"  {-o|--format <fields>}\n"
		"  {--io-engine} {sync|async}\n"
		"  {-V|--version}\n"
		"\n"
		"where <fields> is a comma separated list from:\n", prog_name);
	for (unsigned i = 0; i < NR_FIELDS; i++)
		fprintf(f, "  %s\n", field_names[i]);
}

/*
 * As v0.9: names separated by commas; an empty name is an error except
 * after a final comma; an empty list prints nothing.
 */
static int parse_fields(const char *s, enum field *fields, unsigned *nr)
{
	*nr = 0;
	while (*s) {
		const char *end = strchr(s, ',');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		unsigned i;

		for (i = 0; i < NR_FIELDS; i++)
			if (strlen(field_names[i]) == len && !strncmp(s, field_names[i], len))
				break;
		if (i == NR_FIELDS || *nr == 64)
			return -EINVAL;
		fields[(*nr)++] = (enum field)i;
		if (!end)
			break;
		s = end + 1;
	}
	return 0;
}

/*
 * v0.9's sizes: whole units of 1024 (remainder dropped) while the value
 * is above 1048576, then one more unit, rounded half up, if it is still
 * above 8192.
 */
static void format_size(char *buf, size_t n, uint64_t bytes)
{
	static const char *const units[] = { "", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	uint64_t x = bytes;
	unsigned u = 0;

	while (x > 1048576u && u + 2 < sizeof(units) / sizeof(units[0])) {
		x /= 1024u;
		u++;
	}
	if (x > 8192u) {
		x = (x + 512u) / 1024u;
		u++;
	}
	snprintf(buf, n, "%" PRIu64 "%s", x, units[u]);
}

struct row {
	struct thin_device dev;
	uint64_t exclusive, shared;
};

/*----------------------------------------------------------------
 * Walking mappings
 *--------------------------------------------------------------*/

typedef int (*mapping_fn)(void *ctx, uint64_t data_block);

static int for_each_data_block(struct thin_metadata *md, uint64_t root, mapping_fn fn,
			       void *ctx, struct pd_err *err)
{
	struct btree_cursor *c;
	int r;

	r = btree_cursor_create(md->bm, root, THIN_MAPPING_VALUE_SIZE, &c, err);
	if (r)
		return r;
	while (!(r = btree_cursor_next_leaf(c, err))) {
		const uint8_t *vals = node_values_c(btree_cursor_leaf(c));

		for (uint32_t i = 0; i < btree_cursor_nr(c) && !r; i++)
			r = fn(ctx, block_time_block(load_le64(vals + 8u * i)));
		if (r)
			break;
	}
	btree_cursor_destroy(c);
	return r == -ENODATA ? 0 : r;
}

struct usage_ctx {
	struct count_map *cm;
	struct row *row;
};

static int count_use(void *ctx, uint64_t d)
{
	struct usage_ctx *u = ctx;

	if (d >= cm_nr_blocks(u->cm))
		return -ERANGE;
	return cm_get(u->cm, d) < 2 ? cm_inc(u->cm, d) : 0;
}

static int classify(void *ctx, uint64_t d)
{
	struct usage_ctx *u = ctx;

	if (d < cm_nr_blocks(u->cm) && cm_get(u->cm, d) > 1)
		u->row->shared++;
	else
		u->row->exclusive++;
	return 0;
}

/*----------------------------------------------------------------
 * Printing
 *--------------------------------------------------------------*/

static void cell(char *buf, size_t n, const struct row *r, enum field f, uint32_t dbs)
{
	uint64_t sectors = dbs;

	switch (f) {
	case F_DEV: snprintf(buf, n, "%" PRIu64, r->dev.dev_id); break;
	case F_MAPPED_BLOCKS: snprintf(buf, n, "%" PRIu64, r->dev.mapped_blocks); break;
	case F_EXCLUSIVE_BLOCKS: snprintf(buf, n, "%" PRIu64, r->exclusive); break;
	case F_SHARED_BLOCKS: snprintf(buf, n, "%" PRIu64, r->shared); break;
	case F_MAPPED_SECTORS: snprintf(buf, n, "%" PRIu64, r->dev.mapped_blocks * sectors); break;
	case F_EXCLUSIVE_SECTORS: snprintf(buf, n, "%" PRIu64, r->exclusive * sectors); break;
	case F_SHARED_SECTORS: snprintf(buf, n, "%" PRIu64, r->shared * sectors); break;
	case F_MAPPED_BYTES: snprintf(buf, n, "%" PRIu64, r->dev.mapped_blocks * sectors * 512); break;
	case F_EXCLUSIVE_BYTES: snprintf(buf, n, "%" PRIu64, r->exclusive * sectors * 512); break;
	case F_SHARED_BYTES: snprintf(buf, n, "%" PRIu64, r->shared * sectors * 512); break;
	case F_MAPPED: format_size(buf, n, r->dev.mapped_blocks * sectors * 512); break;
	case F_EXCLUSIVE: format_size(buf, n, r->exclusive * sectors * 512); break;
	case F_SHARED: format_size(buf, n, r->shared * sectors * 512); break;
	case F_TRANSACTION: snprintf(buf, n, "%" PRIu64, r->dev.transaction_id); break;
	case F_CREATE_TIME: snprintf(buf, n, "%" PRIu32, r->dev.creation_time); break;
	case F_SNAP_TIME: snprintf(buf, n, "%" PRIu32, r->dev.snapshotted_time); break;
	default: buf[0] = '\0';
	}
}

static void print_table(const struct row *rows, size_t nr, const enum field *fields,
			unsigned nf, bool headers, uint32_t dbs)
{
	size_t width[64];
	char buf[64];

	for (unsigned f = 0; f < nf; f++) {
		width[f] = headers ? strlen(field_names[fields[f]]) : 0;
		for (size_t i = 0; i < nr; i++) {
			cell(buf, sizeof(buf), rows + i, fields[f], dbs);
			if (strlen(buf) > width[f])
				width[f] = strlen(buf);
		}
	}
	if (!nf)
		return;		/* an empty field list prints nothing */
	if (headers) {
		for (unsigned f = 0; f < nf; f++)
			printf("%*s ", (int)width[f], field_names[fields[f]]);
		putchar('\n');
	}
	for (size_t i = 0; i < nr; i++) {
		for (unsigned f = 0; f < nf; f++) {
			cell(buf, sizeof(buf), rows + i, fields[f], dbs);
			printf("%*s ", (int)width[f], buf);
		}
		putchar('\n');
	}
}

enum { OPT_NO_HEADERS = 256, OPT_IO_ENGINE };

int thin_ls_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "metadata-snap", optional_argument, NULL, 'm' },
		{ "format", required_argument, NULL, 'o' },
		{ "no-headers", no_argument, NULL, OPT_NO_HEADERS },
		{ "io-engine", required_argument, NULL, OPT_IO_ENGINE },
		{ NULL, 0, NULL, 0 },
	};
	enum field fields[64] = { F_DEV, F_MAPPED, F_CREATE_TIME, F_SNAP_TIME };
	unsigned nf = 4;
	struct thin_open_opts oo = { .engine = IO_ENGINE_SYNC };
	struct thin_metadata *md = NULL;
	struct thin_dev_iter *it = NULL;
	struct count_map *cm = NULL;
	struct row *rows = NULL;
	size_t nr = 0, max = 0;
	bool headers = true, need_usage = false;
	struct pd_err err = { 0 };
	int c, r, ret = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "hVm::o:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
		case 'V':
			return cli_help_or_version(c, usage);
		case 'm':
			oo.metadata_snap = true;
			break;
		case 'o':
			if (parse_fields(optarg, fields, &nf)) {
				fprintf(stderr, "unknown field\n");
				usage(stderr);
				return 1;
			}
			break;
		case OPT_NO_HEADERS:
			headers = false;
			break;
		case OPT_IO_ENGINE:
			if (cli_parse_engine(optarg, &oo.engine))
				return 1;
			break;
		default:
			return cli_bad_usage(usage);
		}
	}
	if (!cli_one_input(argc, argv, usage, 0))
		return 1;
	for (unsigned f = 0; f < nf; f++)
		if (fields[f] >= F_EXCLUSIVE_BLOCKS && fields[f] <= F_SHARED &&
		    fields[f] != F_MAPPED_SECTORS && fields[f] != F_MAPPED_BYTES &&
		    fields[f] != F_MAPPED)
			need_usage = true;

	r = thin_metadata_open(argv[optind], &oo, &md, &err);
	if (r) {
		cli_error("%s", err.msg);
		return 1;
	}
	r = thin_dev_iter_create(md, &it, &err);
	while (!r) {
		struct thin_device dev;

		r = thin_dev_iter_next(it, &dev, &err);
		if (r)
			break;
		if (nr == max) {
			struct row *n = realloc(rows, (max = max ? max * 2 : 64) * sizeof(*n));

			if (!n) {
				r = pd_err_set(&err, -ENOMEM, "out of memory");
				break;
			}
			rows = n;
		}
		memset(rows + nr, 0, sizeof(*rows));
		rows[nr++].dev = dev;
	}
	if (r != -ENODATA) {
		cli_error("%s", err.msg);
		goto out;
	}

	if (need_usage) {
		struct usage_ctx u;

		if (cm_create(md->data_sm.nr_blocks, &cm)) {
			cli_error("out of memory");
			goto out;
		}
		u.cm = cm;
		for (size_t i = 0; i < nr; i++) {
			r = for_each_data_block(md, rows[i].dev.root, count_use, &u, &err);
			if (r == -ERANGE)
				r = pd_err_set(&err, r, "device %" PRIu64 " maps a block beyond the data device",
					       rows[i].dev.dev_id);
			if (r) {
				cli_error("%s", err.msg);
				goto out;
			}
		}
		for (size_t i = 0; i < nr; i++) {
			u.row = rows + i;
			r = for_each_data_block(md, rows[i].dev.root, classify, &u, &err);
			if (r) {
				cli_error("%s", err.msg);
				goto out;
			}
		}
	}
	print_table(rows, nr, fields, nf, headers, md->sb.data_block_size);
	ret = 0;
out:
	cm_destroy(cm);
	free(rows);
	thin_dev_iter_destroy(it);
	thin_metadata_close(md);
	return ret;
}
