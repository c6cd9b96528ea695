/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * pdata_tools: one binary, many commands.  The command is the name the
 * binary was called by (a symlink such as thin_dump), or the first
 * argument of "pdata_tools CMD ...".
 */
#include "cli.h"
#include "snapshot/commands.h"
#include "cache/commands.h"
#include "thin-provisioning/commands.h"
#include "thincmds/commands.h"

#include <libgen.h>
#include <stdio.h>
#include <string.h>

struct command {
	const char *name;
	int (*main)(int argc, char **argv);
};

static const struct command commands[] = {
	{ "cache_check", cache_check_main },
	{ "cache_dump", cache_dump_main },
	{ "cache_metadata_size", cache_metadata_size_main },
	{ "cache_repair", cache_repair_main },
	{ "cache_restore", cache_restore_main },
	{ "era_check", era_check_main },
	{ "era_dump", era_dump_main },
	{ "era_invalidate", era_invalidate_main },
	{ "era_restore", era_restore_main },
	{ "thin_check", thin_check_main },
	{ "thin_delta", thin_delta_main },
	{ "thin_dump", thin_dump_main },
	{ "thin_ls", thin_ls_main },
	{ "thin_merge", thin_merge_main },
	{ "thin_metadata_pack", thin_metadata_pack_main },
	{ "thin_metadata_size", thin_metadata_size_main },
	{ "thin_metadata_unpack", thin_metadata_unpack_main },
	{ "thin_repair", thin_repair_main },
	{ "thin_restore", thin_restore_main },
	{ "thin_rmap", thin_rmap_main },
	{ "snapshot_check", snapshot_check_main },
	{ "snapshot_dump", snapshot_dump_main },
	{ "snapshot_merge", snapshot_merge_main },
	{ "dm-merge", dm_merge_main },
};

#define NR_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void list_commands(FILE *f)
{
	fprintf(f, "Usage: pdata_tools <command> [options]\nCommands:\n");
	for (unsigned i = 0; i < NR_COMMANDS; i++)
		fprintf(f, "  %s\n", commands[i].name);
}

static int run(const char *name, int argc, char **argv)
{
	for (unsigned i = 0; i < NR_COMMANDS; i++)
		if (!strcmp(commands[i].name, name)) {
			int r;

			prog_name = commands[i].name;
			r = commands[i].main(argc, argv);
			if (cli_close_stdout())
				r = 1;
			return r;
		}
	return -1;
}

int main(int argc, char **argv)
{
	char *base = basename(argv[0]);
	int r;

	if (strcmp(base, "pdata_tools")) {
		r = run(base, argc, argv);
		if (r >= 0)
			return r;
	}
	if (argc < 2) {
		list_commands(stderr);
		return 1;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		list_commands(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		cli_version();
		return 0;
	}
	r = run(argv[1], argc - 1, argv + 1);
	if (r >= 0)
		return r;
	fprintf(stderr, "pdata_tools: unknown command '%s'\n", argv[1]);
	list_commands(stderr);
	return 1;
}
