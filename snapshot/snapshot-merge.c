/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * snapshot_merge (and its dm-merge name): applies a dm-snapshot
 * persistent exception store to its origin offline.  The whole table is
 * read and checked first; then, only with --commit (dm-merge: -f), every
 * changed chunk is copied from the COW to the origin, a window of the
 * table at a time (snap-merge.h: large sequential COW reads, writes in
 * origin order coalesced), and the origin is flushed.  Without it,
 * nothing is written: a dry run reports what would be.
 */
#include "cli.h"
#include "commands.h"
#include "snap-cli.h"
#include "snap-merge.h"
#include "persistent-data/output-file.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct opts {
	const char *cow, *origin;
	bool commit, dry_run, dd, verify, quiet, force_invalid, no_excl, direct;
	unsigned verbose;
	enum io_engine_kind engine;
	bool engine_given;
	bool dm_merge;			/* called as dm-merge: its words in hints */
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] -i <COW> -o <origin>\n"
		"Options:\n"
		"  {-h|--help}\n"
		"  {-i|--input} <COW device or file (the snapshot's exception store)>\n"
		"  {-o|--output} <origin device or file>\n"
		"  {--commit}           really write (default: a dry run)\n"
		"  {--dry-run}          only report (the default)\n"
		"  {--dd}               print the equivalent dd(1) lines\n"
		"  {--verify}           read every written range back and compare\n"
		"  {--force-invalid}    merge an invalidated (overflowed) store\n"
		"  {--no-exclusive}     open block devices without O_EXCL\n"
		"  {--direct}           O_DIRECT on regular files too\n"
		"  {--io-engine} {sync|async} (default: async on block devices, sync on files)\n"
		"  {-q|--quiet}\n"
		"  {-v|--verbose}\n"
		"  {-V|--version}\n", prog_name);
}

static void dm_merge_usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [-f] [-x] [-d] [-D] [-v] -i <COW> [-o <origin>]\n"
		"Options:\n"
		"  -f  really write (default: a dry run)\n"
		"  -x  relaxed: open block devices without O_EXCL\n"
		"  -d  print the equivalent dd(1) lines\n"
		"  -D  O_DIRECT on regular files too\n"
		"  -v  verbose (repeat for more)\n"
		"  -h  this help;  -V  version\n"
		"The same as snapshot_merge; see snapshot_merge(8).\n", prog_name);
}

/* Duplicated origin chunks listed with -v, then counted. */
#define DUP_LINES_MAX 100

struct report_ctx {
	const char *path;
	unsigned verbose;
	uint64_t dup_lines;
};

static void report_cb(void *ctx, bool fatal, const char *msg)
{
	snap_cli_report((void *)((struct report_ctx *)ctx)->path, fatal, msg);
}

/* -v: one line per duplicated origin chunk, at most DUP_LINES_MAX. */
static void duplicate_cb(void *ctx, uint64_t old_chunk, const uint64_t *cow,
			 unsigned nr_listed, uint64_t nr_entries)
{
	struct report_ctx *c = ctx;
	char list[SNAP_DUP_LIST * 24 + 64];
	size_t used = 0;

	if (!c->verbose || ++c->dup_lines > DUP_LINES_MAX)
		return;
	for (unsigned i = 0; i < nr_listed && used < sizeof(list); i++) {
		int k;

		if (i + 1 == nr_listed && nr_entries > nr_listed)
			k = snprintf(list + used, sizeof(list) - used, ", ... (%" PRIu64 " more), %" PRIu64,
				     nr_entries - nr_listed, cow[i]);
		else
			k = snprintf(list + used, sizeof(list) - used, "%s%" PRIu64,
				     i ? ", " : "", cow[i]);
		if (k < 0)
			break;
		used += (size_t)k;
	}
	cli_error("%s: origin chunk %" PRIu64 " has %" PRIu64
		  " entries, COW chunks %s in table order: the last wins",
		  c->path, old_chunk, nr_entries, list);
}

static void progress_cb(void *ctx, uint64_t done)
{
	progress_update(ctx, done);
}

/* Summary lines: on stdout, as shell comments when stdout carries dd lines. */
static void say(const struct opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(const struct opts *o, const char *fmt, ...)
{
	va_list ap;

	if (o->quiet)
		return;
	if (o->dd)
		fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
}

static int print_dd(const struct opts *o, struct snap_store *s, struct snap_scan *sc)
{
	struct pd_err err = { 0 };
	struct snap_plan p;
	struct snap_extent x;
	char line[2560];
	int r;

	r = snap_plan_begin(&p, sc->sorter, &err);
	while (!r) {
		r = snap_plan_next(&p, &x, &err);
		if (r <= 0)
			break;
		r = 0;
		snap_format_dd(line, sizeof(line), s->path, o->origin ? o->origin : "ORIGIN",
			       s->geo.chunk_bytes, &x);
		puts(line);
		if (ferror(stdout))
			return 1;
	}
	if (r < 0) {
		cli_error("%s", err.msg);
		return 1;
	}
	return 0;
}

static int open_origin(const struct opts *o, bool write, struct io_engine **out)
{
	struct pd_err err = { 0 };
	unsigned flags = (write ? IO_OPEN_WRITE : 0) | (o->no_excl ? 0 : IO_OPEN_EXCL) |
			 (o->direct ? IO_OPEN_DIRECT : 0);
	int r = io_engine_open(o->origin, snap_cli_engine(o->origin, o->engine_given, o->engine),
			       flags, out, &err);

	if (r == -EBUSY) {
		snap_cli_busy(o->origin, o->dm_merge ? "-x overrides" : "--no-exclusive overrides");
		return 1;
	}
	if (r) {
		cli_error("%s", err.msg);
		return 1;
	}
	return 0;
}

static int run(const struct opts *o)
{
	struct snap_scan_opts so = { .report = report_cb, .duplicate = duplicate_cb };
	struct report_ctx rc = { .verbose = o->verbose };
	struct snap_copy_opts co = { 0 };
	struct snap_copy_stats st;
	struct io_engine *origin = NULL;
	struct snap_store *s = NULL;
	struct pd_err err = { 0 };
	struct snap_scan sc = { 0 };
	struct progress prog;
	char a[32], b[32];
	bool write = o->commit;
	unsigned cow_flags = (o->no_excl ? 0 : IO_OPEN_EXCL) | (o->direct ? IO_OPEN_DIRECT : 0);
	int ret = 1, r;

	if (snap_cli_open(o->cow, snap_cli_engine(o->cow, o->engine_given, o->engine), cow_flags,
			  o->dm_merge ? "-x overrides" : "--no-exclusive overrides", &s))
		return 1;
	if (!s->hdr.valid) {
		if (!o->force_invalid) {
			cli_error("%s: the snapshot is invalid (valid = 0: it overflowed or was dropped), so its table may lack its last changes; refusing (--force-invalid merges what it holds)",
				  s->path);
			goto out;
		}
		cli_error("%s: warning: merging an invalid snapshot store: changes it could not record (after it overflowed or was dropped) are missing",
			  s->path);
		so.accept_no_end = true;
	}

	if (o->origin) {
		if (open_origin(o, write, &origin))
			goto out;
		if (same_file(o->cow, o->origin)) {
			cli_error("%s and %s are the same storage: the COW cannot be merged into itself",
				  o->cow, o->origin);
			goto out;
		}
	}

	rc.path = s->path;
	so.ctx = &rc;
	r = snap_scan_table(s, &so, &sc, &err);
	if (r) {
		cli_error("%s", err.msg);
		goto out;
	}
	if (sc.nr_problems) {
		cli_error("%s: the exception table has %" PRIu64 " problem%s (see snapshot_check); nothing written",
			  s->path, sc.nr_problems, sc.nr_problems == 1 ? "" : "s");
		goto out;
	}
	if (origin && snap_check_origin(s, &sc, o->origin, origin->size_bytes, &err)) {
		cli_error("%s", err.msg);
		goto out;
	}

	say(o, "%s: chunk size %s, %" PRIu64 " exceptions in %" PRIu64 " metadata area%s",
	    s->path, snap_cli_size(s->geo.chunk_bytes, a, sizeof(a)), sc.table.nr_entries,
	    sc.table.nr_areas, sc.table.nr_areas == 1 ? "" : "s");
	if (sc.duplicates && !o->quiet) {
		if (rc.dup_lines > DUP_LINES_MAX)
			cli_error("%s: ... and %" PRIu64 " more duplicated origin chunks",
				  s->path, rc.dup_lines - DUP_LINES_MAX);
		cli_error("%s: warning: %" PRIu64 " duplicate entr%s for %" PRIu64
			  " origin chunk%s: the last entry of each wins, as in the kernel%s",
			  s->path, sc.duplicates, sc.duplicates == 1 ? "y" : "ies",
			  sc.duplicated_chunks, sc.duplicated_chunks == 1 ? "" : "s",
			  o->verbose ? "" : " (-v lists them)");
	}
	if (o->verbose)
		say(o, "%s: highest origin chunk %" PRIu64 ", sort runs spilled to a temporary file: %" PRIu64,
		    s->path, sc.max_old_chunk, sc.spilled_runs);
	if (o->dd && print_dd(o, s, &sc))
		goto out;
	say(o, "%s %" PRIu64 " origin chunks (%s) in %" PRIu64 " extents",
	    write ? "writing" : "would write", sc.distinct_chunks,
	    snap_cli_size(sc.distinct_chunks * s->geo.chunk_bytes, b, sizeof(b)), sc.nr_extents);

	if (!write) {
		say(o, "dry run: nothing written; %s",
		    o->dm_merge ? "run again with -f to merge" :
				  "run again with --commit to merge (dm-merge: -f)");
		ret = 0;
		goto out;
	}

	progress_init(&prog, "merging", sc.distinct_chunks * s->geo.chunk_bytes, o->quiet);
	co.progress = progress_cb;
	co.ctx = &prog;
	r = snap_copy(s, &sc, origin, &co, &st, &err);
	progress_done(&prog);
	if (r) {
		cli_error("%s (the merge can be run again: it writes the same data)", err.msg);
		goto out;
	}
	say(o, "merged %" PRIu64 " chunks (%s) in %" PRIu64 " extents (engine %s)",
	    sc.distinct_chunks, snap_cli_size(st.bytes, b, sizeof(b)), st.extents, origin->name);
	if (o->verify) {
		co.verify_only = true;
		progress_init(&prog, "verifying", sc.distinct_chunks * s->geo.chunk_bytes, o->quiet);
		r = snap_copy(s, &sc, origin, &co, &st, &err);
		progress_done(&prog);
		if (r) {
			cli_error("%s: %s", o->origin, err.msg);
			goto out;
		}
		say(o, "verified %s: the origin holds every chunk of the store", b);
	}
	ret = 0;
out:
	snap_scan_release(&sc);
	io_engine_destroy(origin);
	snap_store_close(s);
	return ret;
}

enum {
	OPT_COMMIT = 0x300, OPT_DRY_RUN, OPT_DD, OPT_VERIFY, OPT_FORCE_INVALID,
	OPT_NO_EXCL, OPT_DIRECT, OPT_IO_ENGINE,
};

int snapshot_merge_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "input", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' },
		{ "commit", no_argument, NULL, OPT_COMMIT },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "dd", no_argument, NULL, OPT_DD },
		{ "verify", no_argument, NULL, OPT_VERIFY },
		{ "force-invalid", no_argument, NULL, OPT_FORCE_INVALID },
		{ "no-exclusive", no_argument, NULL, OPT_NO_EXCL },
		{ "direct", no_argument, NULL, OPT_DIRECT },
		{ "io-engine", required_argument, NULL, OPT_IO_ENGINE },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 }
	};
	struct opts o = { .engine = IO_ENGINE_ASYNC };
	int c;

	while ((c = getopt_long(argc, argv, "hVi:o:qv", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
		case 'V':
			return cli_help_or_version(c, usage);
		case 'i':
			o.cow = optarg;
			break;
		case 'o':
			o.origin = optarg;
			break;
		case OPT_COMMIT:
			o.commit = true;
			break;
		case OPT_DRY_RUN:
			o.dry_run = true;
			break;
		case OPT_DD:
			o.dd = true;
			break;
		case OPT_VERIFY:
			o.verify = true;
			break;
		case OPT_FORCE_INVALID:
			o.force_invalid = true;
			break;
		case OPT_NO_EXCL:
			o.no_excl = true;
			break;
		case OPT_DIRECT:
			o.direct = true;
			break;
		case OPT_IO_ENGINE:
			if (cli_parse_engine(optarg, &o.engine))
				return 1;
			o.engine_given = true;
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'v':
			o.verbose++;
			break;
		default:
			return cli_bad_usage(usage);
		}
	}
	argc = cli_drop_empty_operands(argc, argv);
	if (optind < argc) {
		cli_error("unexpected argument '%s'", argv[optind]);
		return cli_bad_usage(usage);
	}
	if (!o.cow) {
		cli_error("no input file provided (-i COW)");
		return cli_bad_usage(usage);
	}
	if (!o.origin) {
		cli_error("no output file provided (-o ORIGIN)");
		return cli_bad_usage(usage);
	}
	if (o.commit && o.dry_run) {
		cli_error("--commit and --dry-run contradict each other");
		return cli_bad_usage(usage);
	}
	if (o.verify && !o.commit) {
		cli_error("--verify needs --commit (a dry run writes nothing to verify)");
		return 1;
	}
	return run(&o);
}

int dm_merge_main(int argc, char **argv)
{
	/* dm-merge's own options, plus the suite's --help and --version */
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct opts o = { .engine = IO_ENGINE_ASYNC, .dm_merge = true };
	int c;

	while ((c = getopt_long(argc, argv, "fxdDvi:o:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o.commit = true;
			break;
		case 'x':
			o.no_excl = true;
			break;
		case 'd':
			o.dd = true;
			break;
		case 'D':
			o.direct = true;
			break;
		case 'v':
			o.verbose++;
			break;
		case 'i':
			o.cow = optarg;
			break;
		case 'o':
			o.origin = optarg;
			break;
		case 'h':
		case 'V':
			return cli_help_or_version(c, dm_merge_usage);
		default:
			return cli_bad_usage(dm_merge_usage);
		}
	}
	argc = cli_drop_empty_operands(argc, argv);
	if (optind < argc) {
		cli_error("unexpected argument '%s'", argv[optind]);
		return cli_bad_usage(dm_merge_usage);
	}
	if (!o.cow) {
		cli_error("no input file provided (-i COW)");
		return cli_bad_usage(dm_merge_usage);
	}
	if (o.commit && !o.origin) {
		cli_error("-f needs the origin (-o): without it only the table is listed");
		return cli_bad_usage(dm_merge_usage);
	}
	return run(&o);
}
