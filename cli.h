/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef CLI_H
#define CLI_H

/*
 * What every command shares: its name for messages, version, number
 * parsing, --io-engine, checked stdout, and the progress bar.
 */

#include "persistent-data/io-engine.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

extern const char *prog_name;	/* the command name, for messages */

/* "prog: message\n" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same as a library's report callback (ctx unused), stdout not flushed. */
void cli_report(void *ctx, const char *msg);
/* Prints the bare version on stdout. */
void cli_version(void);
/*
 * Every command's -h (usage on stdout) and -V (the bare version), for
 * "case 'h': case 'V': return cli_help_or_version(opt, usage);".
 * Returns 0, the exit code.
 */
int cli_help_or_version(int opt, void (*usage)(FILE *));

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

/* their usage lines */
#define CLI_SB_OVERRIDE_USAGE \
	"  {--transaction-id} <natural>\n" \
	"  {--data-block-size} <natural>\n" \
	"  {--nr-data-blocks} <natural>\n"

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

/*----------------------------------------------------------------
 * Commands that read -i and write -o (thin_restore, thin_repair,
 * cache_restore, cache_repair, era_restore)
 *--------------------------------------------------------------*/

/* -h, -V, -i, -o, -q; and --io-engine's getopt id and long option. */
#define CLI_IO_OPTIONS \
	{ "help", no_argument, NULL, 'h' }, \
	{ "version", no_argument, NULL, 'V' }, \
	{ "input", required_argument, NULL, 'i' }, \
	{ "output", required_argument, NULL, 'o' }, \
	{ "quiet", no_argument, NULL, 'q' }

enum { CLI_OPT_IO_ENGINE = 0x1ff };
#define CLI_IO_ENGINE_OPTION { "io-engine", required_argument, NULL, CLI_OPT_IO_ENGINE }

struct cli_io_args {
	const char *input;
	const char *output;
	bool quiet;
	enum io_engine_kind engine;	/* IO_ENGINE_SYNC unless --io-engine */
	bool engine_given;
};

enum {
	CLI_IO_INPUT_OPERAND = 1,	/* the input may be the one operand (thin_repair) */
	CLI_IO_NAMED_MISSING = 2,	/* "prog: No input file provided." (cache, era) */
	CLI_IO_OUTPUT_OPTIONAL = 4,	/* the command checks -o itself (thin_merge) */
};

struct cli_io_spec {
	const struct option *longopts;	/* CLI_IO_OPTIONS and the command's own */
	const char *shortopts;		/* NULL: "hVi:o:q" */
	void (*usage)(FILE *);
	unsigned flags;			/* CLI_IO_* */
	/* the command's own options: 0, or the exit code after its message */
	int (*extra)(void *ctx, int opt, const char *arg);
	void *ctx;
};

/*
 * The command line: -h, -V, -i, -o, -q, --io-engine (when longopts has
 * it), and the command's own options, passed to extra.  Empty operands
 * are dropped, no other operand is taken (but see CLI_IO_INPUT_OPERAND),
 * and both -i and -o must be given (but see CLI_IO_OUTPUT_OPTIONAL); a missing one is said as the
 * upstream thin tools do ("No input file provided." and usage, on
 * stderr), or after the command's name with CLI_IO_NAMED_MISSING.
 * Returns -1 to go on with *a set, or the exit code.
 */
int cli_parse_io(int argc, char **argv, const struct cli_io_spec *spec,
		 struct cli_io_args *a);

/*
 * thin_restore's and thin_repair's command line: cli_parse_io() with the
 * superblock overrides and --io-engine (thin-provisioning/cli-overrides.c).
 */
int cli_parse_sb_io(int argc, char **argv, void (*usage)(FILE *), unsigned flags,
		    struct sb_overrides *ov, struct cli_io_args *a);

/*
 * cli_open_output(), then the output must hold what est counted
 * (restore.h), else cli_output_too_small()'s line.  0, or 1 with *io
 * NULL.
 */
struct restore_estimate;
int cli_open_restore_output(const char *output, enum io_engine_kind engine,
			    const struct restore_estimate *est, struct io_engine **io);

/*
 * The one operand of a command that reads one input (checks, dumps):
 * empty operands dropped, then exactly one.  Returns it, or NULL after
 * the message ("No input file provided." as cli_parse_io says it, with
 * flags CLI_IO_NAMED_MISSING or 0; "prog: too many arguments") and
 * usage on stderr.
 */
const char *cli_one_input(int argc, char **argv, void (*usage)(FILE *), unsigned flags);

/*
 * The checks every command makes before it reads or writes, each
 * returning 0, or 1 after one line "prog: path: why" on stderr.
 */
struct stat;
/* The input exists and is not a directory; st (may be NULL) gets its stat. */
int cli_check_input(const char *input, struct stat *st);
/* The output is usable and is not the input (output-file.h's output_check). */
int cli_check_output(const char *output, const char *input);
/* Opens the output to write, exclusively (O_EXCL: a block device in use is refused). */
int cli_open_output(const char *output, enum io_engine_kind engine, struct io_engine **io);

/*
 * The one wording of a too small output: "OUTPUT: output too small: the
 * metadata needs N blocks of 4 KiB (K KiB), but the output holds M", in
 * err.  Returns -ENOSPC.
 */
int cli_output_too_small(struct pd_err *err, const char *output, uint64_t need,
			 uint64_t have);

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
