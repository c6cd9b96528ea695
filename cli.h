/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef CLI_H
#define CLI_H

/*
 * What every command shares: its name for messages, version, number
 * parsing, --io-engine, checked stdout, and the progress bar.
 */

#include "persistent-data/io-engine.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

extern const char *prog_name;	/* the command name, for messages */

/* "prog: message\n" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the bare version on stdout. */
void cli_version(void);

/* Checked parsers: whole string, decimal, no sign, range. 0 or -EINVAL. */
int cli_parse_u64(const char *s, uint64_t *v);
int cli_parse_u32(const char *s, uint32_t *v);

/* --io-engine sync|async; prints the error itself. */
int cli_parse_engine(const char *s, enum io_engine_kind *kind);

/*
 * --transaction-id, --data-block-size, --nr-data-blocks (thin_dump,
 * thin_restore, thin_repair): their getopt ids, their long options, and
 * one parser.  cli_parse_sb_override() returns 0, or 1 after saying what
 * is wrong (thin-provisioning/cli-overrides.c: struct sb_overrides is
 * superblock.h's).
 */
enum {
	OPT_SB_TRANSACTION_ID = 0x200,
	OPT_SB_DATA_BLOCK_SIZE,
	OPT_SB_NR_DATA_BLOCKS,
};

#define CLI_SB_OVERRIDE_OPTIONS \
	{ "transaction-id", required_argument, NULL, OPT_SB_TRANSACTION_ID }, \
	{ "data-block-size", required_argument, NULL, OPT_SB_DATA_BLOCK_SIZE }, \
	{ "nr-data-blocks", required_argument, NULL, OPT_SB_NR_DATA_BLOCKS }

struct sb_overrides;
int cli_parse_sb_override(int opt, const char *arg, struct sb_overrides *ov);

/*
 * After a command's getopt loop: drops the empty strings among the
 * operands argv[optind..argc) and returns the new argc.  LVM before
 * 2.03.22 passes its configured options as they are, by default one empty
 * string ("thin_repair '' -i X -o Y"); like the upstream tools, every
 * command ignores it.  An empty option value ("--unit ''") is the
 * option's, and stays.
 */
int cli_drop_empty_operands(int argc, char **argv);

/* For getopt: prints usage to stderr and returns 1. */
int cli_bad_usage(void (*usage)(FILE *));

/* Flushes stdout; reports a write error (e.g. a full disk). 0 or 1. */
int cli_close_stdout(void);

/*
 * A progress bar on stderr, drawn only when stderr is a terminal and not
 * quiet.  Updates are rate-limited; done() clears the line.
 */
struct progress {
	bool enabled;
	const char *label;
	uint64_t total;
	uint64_t last_ms;
	int last_pct;
};
void progress_init(struct progress *p, const char *label, uint64_t total, bool quiet);
void progress_update(struct progress *p, uint64_t done);
void progress_done(struct progress *p);

#endif
