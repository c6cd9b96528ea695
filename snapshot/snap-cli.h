/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef SNAP_CLI_H
#define SNAP_CLI_H

/* What the snapshot commands share on top of cli.h. */

#include <stdio.h>
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

/*
 * After getopt: the one operand (the COW store) of snapshot_check and
 * snapshot_dump, empty operands dropped.  NULL after saying what is
 * wrong (none given, or more than one) with usage.
 */
const char *snap_cli_one_input(int argc, char **argv, void (*usage)(FILE *));

/*
 * The engine for one device when --io-engine was not given: async
 * (io_uring, else libaio) for a block device, which is read and written
 * O_DIRECT, so that many requests are in flight; sync for a regular file
 * (the page cache), where runs of blocks go in one preadv/pwritev.
 * Measured on a 4 GiB origin with 20% of its 4 KiB chunks changed:
 * files, sync 1.8 s / async 11.4 s (clustered), 2.5 s / 14.4 s (random);
 * loop devices, async 9.5 s / sync 80 s (random).  See bench/README.md.
 */
enum io_engine_kind snap_cli_engine(const char *path, bool given, enum io_engine_kind kind);

/* "4 KiB", "1.5 GiB": human sizes for summaries. */
const char *snap_cli_size(uint64_t bytes, char *buf, size_t len);

/* Reports of a table scan: problems as lines on stderr, warnings prefixed. */
void snap_cli_report(void *ctx, bool fatal, const char *msg);

#endif
