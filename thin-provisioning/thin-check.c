/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * thin_check: the command over the checker (check.h): its options, and
 * where each line of the check's report goes.
 */
#include "cli.h"
#include "check.h"
#include "commands.h"

#include <getopt.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] {device|file}\n"
		"Options:\n"
		"  {-q|--quiet}\n"
		"  {-h|--help}\n"
		"  {-V|--version}\n"
		"  {-m|--metadata-snap}\n"
		"  {--override-mapping-root} <block>\n"
		"  {--clear-needs-check-flag}\n"
		"  {--auto-repair}\n"
		"  {--ignore-non-fatal-errors}\n"
		"  {--skip-mappings}\n"
		"  {--super-block-only}\n"
		"  {--io-engine} {sync|async}\n", prog_name);
}

enum {
	OPT_SUPER_BLOCK_ONLY = 256,
	OPT_SKIP_MAPPINGS,
	OPT_IGNORE_NON_FATAL,
	OPT_CLEAR_NEEDS_CHECK,
	OPT_AUTO_REPAIR,
	OPT_OVERRIDE_MAPPING_ROOT,
	OPT_IO_ENGINE,
};

/* thin_check: the examination on stderr unless quiet, the summary on stdout. */
static void print_report(void *ctx, enum thin_check_severity sev, int indent, const char *line)
{
	bool quiet = *(const bool *)ctx;

	switch (sev) {
	case THIN_CHECK_ERROR:
		cli_error("%s", line);
		return;
	case THIN_CHECK_SUMMARY:
		if (!quiet) {
			fflush(stderr);
			printf("%s\n", line);
			fflush(stdout);
		}
		return;
	case THIN_CHECK_LINE:
	case THIN_CHECK_NOTICE:
		if (!quiet)
			fprintf(stderr, "%*s%s\n", indent * 2, "", line);
		return;
	}
}

int thin_check_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "metadata-snap", no_argument, NULL, 'm' },
		{ "super-block-only", no_argument, NULL, OPT_SUPER_BLOCK_ONLY },
		{ "skip-mappings", no_argument, NULL, OPT_SKIP_MAPPINGS },
		{ "ignore-non-fatal-errors", no_argument, NULL, OPT_IGNORE_NON_FATAL },
		{ "clear-needs-check-flag", no_argument, NULL, OPT_CLEAR_NEEDS_CHECK },
		{ "auto-repair", no_argument, NULL, OPT_AUTO_REPAIR },
		{ "override-mapping-root", required_argument, NULL, OPT_OVERRIDE_MAPPING_ROOT },
		{ "io-engine", required_argument, NULL, OPT_IO_ENGINE },
		{ NULL, 0, NULL, 0 },
	};
	struct thin_check_opts o = { .engine = IO_ENGINE_SYNC };
	const char *path;
	bool quiet = false;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "qhVm", longopts, NULL)) != -1) {
		switch (ch) {
		case 'q':
			quiet = true;
			break;
		case 'h':
		case 'V':
			return cli_help_or_version(ch, usage);
		case 'm':
			o.metadata_snap = true;
			break;
		case OPT_SUPER_BLOCK_ONLY:
			o.super_block_only = true;
			break;
		case OPT_SKIP_MAPPINGS:
			o.skip_mappings = true;
			break;
		case OPT_IGNORE_NON_FATAL:
			o.ignore_non_fatal = true;
			break;
		case OPT_CLEAR_NEEDS_CHECK:
			o.clear_needs_check = true;
			break;
		case OPT_AUTO_REPAIR:
			o.auto_repair = true;
			break;
		case OPT_OVERRIDE_MAPPING_ROOT:
			o.override_root = true;
			if (cli_parse_u64(optarg, &o.override_root_block)) {
				cli_error("bad block number '%s'", optarg);
				return 1;
			}
			break;
		case OPT_IO_ENGINE:
			if (cli_parse_engine(optarg, &o.engine))
				return 1;
			break;
		default:
			return cli_bad_usage(usage);
		}
	}
	argc = cli_drop_empty_operands(argc, argv);

	/*
	 * As 1.x: the flag may be cleared after any examination that writes
	 * nothing else (after a full one, leaks are repaired as well);
	 * --auto-repair needs the full examination of the live metadata.
	 */
	if (o.clear_needs_check || o.auto_repair) {
		const char *why = NULL;

		if (o.metadata_snap)
			why = "cannot perform fix within metadata snap";
		else if (o.override_root)
			why = "cannot perform fix with an overridden mapping root";
		else if (o.auto_repair && o.ignore_non_fatal)
			why = "cannot perform fix by ignoring non-fatal errors";
		else if (o.auto_repair && (o.super_block_only || o.skip_mappings))
			why = "cannot perform fix without a full examination";
		if (why) {
			fprintf(stderr, "%s\n", why);
			usage(stderr);
			return 1;
		}
	}

	path = cli_one_input(argc, argv, usage, 0);
	if (!path)
		return 1;

	return thin_check(path, &o, print_report, &quiet);
}
