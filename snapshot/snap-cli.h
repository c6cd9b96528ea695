/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef SNAP_CLI_H
#define SNAP_CLI_H

/* What the snapshot commands share on top of cli.h. */

#include "snap-store.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * Opens a COW store read-only and checks its header.  Prints one line on
 * failure (naming the holder of a busy block device, with hint as the
 * way round it when given) and returns 1; else 0.
 */
int snap_cli_open(const char *path, enum io_engine_kind kind, unsigned flags,
		  const char *busy_hint, struct snap_store **out);

/* Prints a busy block device's error with its holders and the hint. */
void snap_cli_busy(const char *path, const char *busy_hint);

/* "4 KiB", "1.5 GiB": human sizes for summaries. */
const char *snap_cli_size(uint64_t bytes, char *buf, size_t len);

/* Reports of a table scan: problems as lines on stderr, warnings prefixed. */
void snap_cli_report(void *ctx, bool fatal, const char *msg);

#endif
