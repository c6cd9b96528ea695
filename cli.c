/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
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

void cli_version(void)
{
	/* upstream's numbering, for LVM's version gates (configure.ac) */
	printf("%s\n", UPSTREAM_VERSION);
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
