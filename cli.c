/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"
#include "cli.h"
#include "persistent-data/output-file.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *prog_name = "pdata_tools";

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: ", prog_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void cli_report(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "%s: %s\n", prog_name, msg);
}

void cli_version(void)
{
	/* upstream's numbering, for LVM's version gates (configure.ac) */
	printf("%s\n", UPSTREAM_VERSION);
}

int cli_help_or_version(int opt, void (*usage)(FILE *))
{
	if (opt == 'V')
		cli_version();
	else
		usage(stdout);
	return 0;
}

int cli_parse_u64(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long x;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*v = x;
	return 0;
}

int cli_parse_u32(const char *s, uint32_t *v)
{
	uint64_t x;

	if (cli_parse_u64(s, &x) || x > UINT32_MAX)
		return -EINVAL;
	*v = (uint32_t)x;
	return 0;
}

int cli_parse_engine(const char *s, enum io_engine_kind *kind)
{
	if (io_engine_parse_kind(s, kind)) {
		cli_error("unknown I/O engine '%s' (use sync or async)", s);
		return -EINVAL;
	}
	return 0;
}

/*----------------------------------------------------------------
 * Input and output
 *--------------------------------------------------------------*/

static int missing(const char *what, void (*usage)(FILE *), unsigned flags)
{
	if (flags & CLI_IO_NAMED_MISSING)
		cli_error("No %s file provided.", what);
	else
		fprintf(stderr, "No %s file provided.\n", what);
	usage(stderr);
	return 1;
}

int cli_parse_io(int argc, char **argv, const struct cli_io_spec *spec,
		 struct cli_io_args *a)
{
	const char *shortopts = spec->shortopts ? spec->shortopts : "hVi:o:q";
	void (*usage)(FILE *) = spec->usage;
	unsigned flags = spec->flags;
	int c, r;

	memset(a, 0, sizeof(*a));
	a->engine = IO_ENGINE_SYNC;
	optind = 1;
	while ((c = getopt_long(argc, argv, shortopts, spec->longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
		case 'V':
			return cli_help_or_version(c, usage);
		case 'i':
			a->input = optarg;
			break;
		case 'o':
			a->output = optarg;
			break;
		case 'q':
			a->quiet = true;
			break;
		case CLI_OPT_IO_ENGINE:
			if (cli_parse_engine(optarg, &a->engine))
				return 1;
			a->engine_given = true;
			break;
		default:
			if (c == '?' || c == ':' || !spec->extra)
				return cli_bad_usage(usage);
			r = spec->extra(spec->ctx, c, optarg);
			if (r)
				return r;
		}
	}
	argc = cli_drop_empty_operands(argc, argv);
	if ((flags & CLI_IO_INPUT_OPERAND) && !a->input && optind < argc)
		a->input = argv[optind++];
	if (optind < argc) {
		cli_error("unexpected argument '%s'", argv[optind]);
		usage(stderr);
		return 1;
	}
	if (!a->input)
		return missing("input", usage, flags);
	if (!a->output && !(flags & CLI_IO_OUTPUT_OPTIONAL))
		return missing("output", usage, flags);
	return -1;
}

const char *cli_one_input(int argc, char **argv, void (*usage)(FILE *), unsigned flags)
{
	argc = cli_drop_empty_operands(argc, argv);
	if (optind >= argc) {
		missing("input", usage, flags);
		return NULL;
	}
	if (optind + 1 < argc) {
		cli_error("too many arguments");
		usage(stderr);
		return NULL;
	}
	return argv[optind];
}

int cli_check_input(const char *input, struct stat *st)
{
	struct stat buf;

	if (!st)
		st = &buf;
	if (stat(input, st)) {
		cli_error("%s: %s", input, strerror(errno));
		return 1;
	}
	if (S_ISDIR(st->st_mode)) {
		cli_error("%s: Is a directory", input);
		return 1;
	}
	return 0;
}

int cli_check_output(const char *output, const char *input)
{
	struct pd_err err = { 0 };

	if (output_check(output, input, &err)) {
		cli_error("%s", err.msg);
		return 1;
	}
	return 0;
}

int cli_open_output(const char *output, enum io_engine_kind engine, struct io_engine **io)
{
	struct pd_err err = { 0 };

	if (io_engine_open(output, engine, IO_OPEN_WRITE | IO_OPEN_EXCL, io, &err)) {
		cli_error("%s", err.msg);
		return 1;
	}
	return 0;
}

int cli_output_too_small(struct pd_err *err, const char *output, uint64_t need,
			 uint64_t have)
{
	return pd_err_set(err, -ENOSPC,
			  "%s: output too small: the metadata needs %" PRIu64
			  " blocks of 4 KiB (%" PRIu64 " KiB), but the output holds %" PRIu64,
			  output, need, need * 4, have);
}

int cli_bad_usage(void (*usage)(FILE *))
{
	usage(stderr);
	return 1;
}

int cli_close_stdout(void)
{
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "%s: write error on standard output: %s\n", prog_name,
			strerror(errno ? errno : EIO));
		return 1;
	}
	return 0;
}

/*----------------------------------------------------------------
 * Progress
 *--------------------------------------------------------------*/

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void progress_init(struct progress *p, const char *label, uint64_t total, bool quiet)
{
	memset(p, 0, sizeof(*p));
	p->enabled = !quiet && isatty(STDERR_FILENO) && total;
	p->label = label;
	p->total = total;
	p->last_pct = -1;
}

void progress_update(struct progress *p, uint64_t done)
{
	enum { WIDTH = 40 };
	char bar[WIDTH + 1];
	uint64_t t;
	int pct, fill;

	if (!p->enabled)
		return;
	if (done > p->total)
		done = p->total;
	pct = (int)(done * 100 / p->total);
	t = now_ms();
	if (pct == p->last_pct || (t - p->last_ms < 100 && pct != 100))
		return;
	p->last_ms = t;
	p->last_pct = pct;
	fill = pct * WIDTH / 100;
	memset(bar, '=', (size_t)fill);
	memset(bar + fill, ' ', (size_t)(WIDTH - fill));
	bar[WIDTH] = '\0';
	fprintf(stderr, "\r%s [%s] %3d%%", p->label, bar, pct);
	fflush(stderr);
}

void progress_done(struct progress *p)
{
	if (!p->enabled || p->last_pct < 0)
		return;
	fprintf(stderr, "\r%*s\r", 60 + (int)strlen(p->label), "");
	fflush(stderr);
}

int cli_drop_empty_operands(int argc, char **argv)
{
	int n = optind;

	for (int i = optind; i < argc; i++)
		if (argv[i][0])
			argv[n++] = argv[i];
	if (n < argc)
		argv[n] = NULL;
	return n;
}
