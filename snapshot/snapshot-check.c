/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * snapshot_check: checks a dm-snapshot persistent exception store (the
 * COW device): header, version, chunk size, every table entry, the
 * table's end, and, given the origin's size, that every changed chunk
 * lies inside it.  One line per problem on stderr, exit 1; exit 0 clean.
 */
#include "cli.h"
#include "commands.h"
#include "snap-cli.h"
#include "snap-merge.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] {device|file}\n"
		"Options:\n"
		"  {-q|--quiet}\n"
		"  {-h|--help}\n"
		"  {-V|--version}\n"
		"  {--origin-size} <bytes>\n"
		"  {--io-engine} {sync|async}\n", prog_name);
}

enum { OPT_ORIGIN_SIZE = 0x300, OPT_IO_ENGINE };

int snapshot_check_main(int argc, char **argv)
{
	const char *path;
	static const struct option longopts[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "origin-size", required_argument, NULL, OPT_ORIGIN_SIZE },
		{ "io-engine", required_argument, NULL, OPT_IO_ENGINE },
		{ NULL, 0, NULL, 0 }
	};
	enum io_engine_kind engine = IO_ENGINE_ASYNC;
	bool engine_given = false;
	struct snap_scan_opts so = { .report = snap_cli_report };
	struct snap_store *s = NULL;
	struct snap_scan sc;
	struct pd_err err = { 0 };
	bool quiet = false;
	uint64_t problems;
	char size[32];
	int c, r;

	while ((c = getopt_long(argc, argv, "qhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			quiet = true;
			break;
		case 'h':
		case 'V':
			return cli_help_or_version(c, usage);
		case OPT_ORIGIN_SIZE:
			if (cli_parse_u64(optarg, &so.origin_bytes) || !so.origin_bytes) {
				cli_error("bad origin size '%s' (a number of bytes)", optarg);
				return 1;
			}
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
	/* read-only and not exclusive: a live store may be inspected */
	if (snap_cli_open(path, snap_cli_engine(path, engine_given, engine), 0, NULL, &s))
		return 1;

	problems = 0;
	if (!s->hdr.valid) {
		cli_error("%s: the snapshot is marked invalid (valid = 0: it overflowed or was dropped); its table may lack changes",
			  s->path);
		problems++;
		so.accept_no_end = true;
	} else if (s->hdr.valid != 1) {
		cli_error("%s: warning: unusual valid field %" PRIu32 " (taken as valid)",
			  s->path, s->hdr.valid);
	}
	so.ctx = (void *)s->path;
	r = snap_scan_table(s, &so, &sc, &err);
	if (r) {
		cli_error("%s", err.msg);
		snap_scan_release(&sc);
		snap_store_close(s);
		return 1;
	}
	problems += sc.nr_problems;
	if (!quiet) {
		printf("%s: snapshot store version %" PRIu32 ", %s, chunk size %" PRIu32
		       " sectors (%s)\n", s->path, s->hdr.version,
		       s->hdr.valid ? "valid" : "INVALID", s->geo.chunk_sectors,
		       snap_cli_size(s->geo.chunk_bytes, size, sizeof(size)));
		printf("%s: %" PRIu64 " exceptions in %" PRIu64 " metadata area%s; %" PRIu64
		       " origin chunks changed (%" PRIu64 " duplicate entries, the last wins), %" PRIu64
		       " extents\n", s->path, sc.table.nr_entries, sc.table.nr_areas,
		       sc.table.nr_areas == 1 ? "" : "s", sc.distinct_chunks, sc.duplicates,
		       sc.nr_extents);
		if (sc.table.nr_entries)
			printf("%s: highest origin chunk %" PRIu64 ": the origin needs at least %" PRIu64
			       " bytes\n", s->path, sc.max_old_chunk,
			       (sc.max_old_chunk + 1) * s->geo.chunk_bytes);
	}
	snap_scan_release(&sc);
	snap_store_close(s);
	return problems ? 1 : 0;
}
