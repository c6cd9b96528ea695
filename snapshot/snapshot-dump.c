/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * snapshot_dump: prints a dm-snapshot persistent exception store's table
 * in table order, runs of consecutive entries coalesced: as
 * "old_chunk new_chunk nr_chunks" lines, or with --dd as dd(1) lines
 * that, run in order, apply the store to its origin (a later entry for a
 * chunk overwrites an earlier one, as the kernel's last entry wins).
 */
#include "cli.h"
#include "commands.h"
#include "snap-cli.h"
#include "snap-merge.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] {device|file}\n"
		"Options:\n"
		"  {-h|--help}\n"
		"  {-V|--version}\n"
		"  {--dd}\n"
		"  {--origin} <origin path named in dd lines>\n"
		"  {--io-engine} {sync|async}\n", prog_name);
}

enum { OPT_DD = 0x300, OPT_ORIGIN, OPT_IO_ENGINE };

struct dumper {
	const struct snap_store *s;
	const char *origin;
	bool dd;
	struct snap_extent run;
	bool have_run;
};

static int emit(struct dumper *d)
{
	char line[2560];

	if (!d->have_run)
		return 0;
	if (d->dd) {
		snap_format_dd(line, sizeof(line), d->s->path, d->origin,
			       d->s->geo.chunk_bytes, &d->run);
		puts(line);
	} else {
		printf("%" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
		       d->run.old_chunk, d->run.new_chunk, d->run.nr_chunks);
	}
	/* stop early on a full or closed stdout */
	return ferror(stdout) ? -EIO : 0;
}

static int visit(void *ctx, uint64_t index, const struct snap_entry *e)
{
	struct dumper *d = ctx;

	(void)index;
	if (d->have_run && e->old_chunk == d->run.old_chunk + d->run.nr_chunks &&
	    e->new_chunk == d->run.new_chunk + d->run.nr_chunks) {
		d->run.nr_chunks++;
		return 0;
	}
	if (emit(d))
		return -EIO;
	d->run = (struct snap_extent) { e->old_chunk, e->new_chunk, 1 };
	d->have_run = true;
	return 0;
}

int snapshot_dump_main(int argc, char **argv)
{
	const char *path;
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "dd", no_argument, NULL, OPT_DD },
		{ "origin", required_argument, NULL, OPT_ORIGIN },
		{ "io-engine", required_argument, NULL, OPT_IO_ENGINE },
		{ NULL, 0, NULL, 0 }
	};
	enum io_engine_kind engine = IO_ENGINE_ASYNC;
	bool engine_given = false;
	struct dumper d = { .origin = "ORIGIN" };
	struct snap_table_info info;
	struct snap_store *s = NULL;
	struct pd_err err = { 0 };
	char size[32];
	int c, r;

	while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
		case 'V':
			return cli_help_or_version(c, usage);
		case OPT_DD:
			d.dd = true;
			break;
		case OPT_ORIGIN:
			d.origin = optarg;
			break;
		case OPT_IO_ENGINE:
			if (cli_parse_engine(optarg, &engine))
				return 1;
			engine_given = true;
			break;
		default:
			return cli_bad_usage(usage);
		}
	}
	path = snap_cli_one_input(argc, argv, usage);
	if (!path)
		return 1;
	if (snap_cli_open(path, snap_cli_engine(path, engine_given, engine), 0, NULL, &s))
		return 1;
	d.s = s;

	printf("# %s: snapshot store version %" PRIu32 ", valid %" PRIu32
	       ", chunk size %" PRIu32 " sectors (%s)\n", s->path, s->hdr.version,
	       s->hdr.valid, s->geo.chunk_sectors,
	       snap_cli_size(s->geo.chunk_bytes, size, sizeof(size)));
	if (!d.dd)
		printf("# old_chunk new_chunk nr_chunks (table order, runs coalesced)\n");
	r = snap_walk(s, visit, &d, &info, &err);
	if (!r)
		r = emit(&d);
	if (r == -EIO && ferror(stdout)) {
		snap_store_close(s);
		return 1;	/* main reports the write error */
	}
	if (r) {
		cli_error("%s", err.msg);
		snap_store_close(s);
		return 1;
	}
	printf("# %" PRIu64 " exceptions in %" PRIu64 " metadata area%s\n",
	       info.nr_entries, info.nr_areas, info.nr_areas == 1 ? "" : "s");
	if (info.end == SNAP_END_DEVICE)
		printf("# the table has no end marker: its last area is full and the next would lie past the COW's end\n");
	if (!s->hdr.valid)
		cli_error("%s: warning: the snapshot is marked invalid (valid = 0); its table may lack changes",
			  s->path);
	snap_store_close(s);
	return 0;
}
