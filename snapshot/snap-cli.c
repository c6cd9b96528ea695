/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "snap-cli.h"
#include "snap-merge.h"
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

enum io_engine_kind snap_cli_engine(const char *path, bool given, enum io_engine_kind kind)
{
	struct stat st;

	if (given)
		return kind;
	return !stat(path, &st) && S_ISBLK(st.st_mode) ? IO_ENGINE_ASYNC : IO_ENGINE_SYNC;
}

void snap_cli_busy(const char *path, const char *busy_hint)
{
	char holders[512];

	snap_device_holders(path, holders, sizeof(holders));
	if (*holders)
		cli_error("%s: in use, held by %s (device-mapper still uses it: remove that device first%s%s)",
			  path, holders, busy_hint ? "; " : "", busy_hint ? busy_hint : "");
	else
		cli_error("%s: in use (mounted, or opened exclusively by another program%s%s)",
			  path, busy_hint ? "; " : "", busy_hint ? busy_hint : "");
}

int snap_cli_open(const char *path, enum io_engine_kind kind, unsigned flags,
		  const char *busy_hint, struct snap_store **out)
{
	struct pd_err err = { 0 };
	int r = snap_store_open(path, kind, flags, out, &err);

	if (r == -EBUSY) {
		snap_cli_busy(path, busy_hint);
		return 1;
	}
	if (r) {
		cli_error("%s", err.msg);
		return 1;
	}
	r = snap_header_check(*out, &err);
	if (r) {
		cli_error("%s", err.msg);
		snap_store_close(*out);
		*out = NULL;
		return 1;
	}
	return 0;
}

const char *snap_cli_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "bytes", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	unsigned u = 0;

	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (!u)
		snprintf(buf, len, "%" PRIu64 " bytes", bytes);
	else
		snprintf(buf, len, "%.*f %s", v == (double)(uint64_t)v ? 0 : 1, v, units[u]);
	return buf;
}

void snap_cli_report(void *ctx, bool fatal, const char *msg)
{
	const char *path = ctx;

	if (fatal)
		cli_error("%s: %s", path, msg);
	else
		cli_error("%s: warning: %s", path, msg);
}

const char *snap_cli_one_input(int argc, char **argv, void (*usage)(FILE *))
{
	argc = cli_drop_empty_operands(argc, argv);
	if (optind >= argc) {
		cli_error("no input file provided");
		usage(stderr);
		return NULL;
	}
	if (optind + 1 < argc) {
		cli_error("unexpected argument '%s'", argv[optind + 1]);
		cli_bad_usage(usage);
		return NULL;
	}
	return argv[optind];
}
