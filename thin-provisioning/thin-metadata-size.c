/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * thin_metadata_size: estimates the metadata device size of a pool from
 * its data block size, its size and the number of thin devices (format
 * doc section 13.1), with the options, output layout and messages of
 * thin-provisioning-tools 0.9, and 1.x's estimate, block size rules and
 * number format:
 *  - the block sizes the kernel accepts (a multiple of 128 sectors, from
 *    64 KiB to 1 GiB), not 0.9's powers of two;
 *  - the leaves rounded up, capped at the largest metadata device the
 *    kernel can use: never below what 1.x asks for (0.9 is one block
 *    short whenever the mappings do not fill whole leaves);
 *  - whole numbers as they are, others with two decimals from 1 up and
 *    in full below 1 (0.9 switches to exponent notation).
 *
 * Where 0.9 wraps around (units above exa, numbers beyond 2^63) we use
 * 128-bit arithmetic and refuse what still does not fit ("size too
 * large"); a size that is not a number is refused too.  Everything else,
 * including the order in which options are checked and 0.9's quirks
 * (a bare size takes the name of the output unit chosen so far, a zero
 * size may be given twice), is kept so that scripts see the same output.
 */
#include "cli.h"
#include "commands.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__extension__ typedef unsigned __int128 u128;

#define U128_MAX (~(u128)0)
/*
 * The largest block size, pool size or thin count accepted: with it,
 * 2 * pool size and the block count of the estimate still fit in 128 bits.
 */
#define SIZE_LIMIT (U128_MAX >> 1)

#define SECTOR_SIZE 512u
#define METADATA_BLOCK_SIZE 4096u
/* Entries of a btree leaf: (block size - node header) / (key + value). */
#define MAPPINGS_PER_BLOCK ((4096u - 64u) / 16u)
/* The kernel's data block sizes, in sectors (dm-thin's pool_ctr). */
#define MIN_DATA_BLOCK_SECTORS 128u		/* 64 KiB, and the step */
#define MAX_DATA_BLOCK_SECTORS 2097152u		/* 1 GiB */
/* The largest metadata space map: 255 bitmaps of 16320 blocks. */
#define MAX_METADATA_BLOCKS (255u * 16320u)

/*----------------------------------------------------------------
 * Units
 *--------------------------------------------------------------*/

/* Even index: binary (1024^n), odd index: decimal (1000^n), from k/K on. */
static const char unit_chars[] = "bskKmMgGtTpPeEzZyY";
static const char *const unit_names[] = {
	"bytes", "sectors",
	"kibibytes", "kilobytes", "mebibytes", "megabytes",
	"gibibytes", "gigabytes", "tebibytes", "terabytes",
	"pebibytes", "petabytes", "ebibytes", "exabytes",
	"zebibytes", "zetabytes", "yobibytes", "yottabytes",
};

#define NR_UNITS (sizeof(unit_names) / sizeof(unit_names[0]))
#define UNIT_BYTES 0
#define UNIT_SECTORS 1

_Static_assert(sizeof(unit_chars) - 1 == NR_UNITS, "one character per unit");

static u128 unit_factor(unsigned u)
{
	u128 f;

	if (u == UNIT_BYTES)
		return 1;
	if (u == UNIT_SECTORS)
		return SECTOR_SIZE;
	/* 1024^n or 1000^n, n = u / 2; yotta (2^80) fits easily. */
	f = 1;
	for (unsigned n = 0; n < u / 2; n++)
		f *= (u % 2) ? 1000u : 1024u;
	return f;
}

/*
 * A one-character unit, or a prefix of a unit's name ("k", "kib",
 * "kilo", "sec").  As in 0.9, the empty string is a prefix of "bytes".
 */
static int unit_index(const char *s)
{
	size_t len = strlen(s);

	if (len == 1) {
		const char *p = strchr(unit_chars, *s);

		return p ? (int)(p - unit_chars) : -1;
	}
	for (unsigned u = 0; u < NR_UNITS; u++)
		if (!strncmp(unit_names[u], s, len))
			return (int)u;
	return -1;
}

/*----------------------------------------------------------------
 * Options
 *--------------------------------------------------------------*/

enum numeric { NUMERIC_NONE, NUMERIC_PLAIN, NUMERIC_SHORT, NUMERIC_LONG };

/* -b, -s or -m. */
struct size_opt {
	const char *long_name;
	bool is_count;		/* -m: a count, not a size in sectors */
	u128 value;		/* sectors, or the count; 0 = not given */
	/* How the output line names it: the digits, then a unit name. */
	const char *digits;
	int nr_digits;
	const char *unit_name;	/* "" for a bare count */
};

struct settings {
	struct size_opt block, pool, thins;
	unsigned out_unit;
	enum numeric numeric;
};

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* 0.9's message layout: "prog - message". */
static int fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s - ", prog_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* 0.9's help text, byte for byte. */
static void usage(FILE *f)
{
	static const struct {
		const char *opt, *arg;
		const char *units;	/* brackets around the unit list, or none */
		const char *text;
	} lines[] = {
		{ "-b", "--block-size BLOCKSIZE", "[]",
		  "Block size of thin provisioned devices." },
		{ "-s", "--pool-size SIZE", "[]", "Size of pool device." },
		{ "-m", "--max-thins #MAXTHINS", "[]",
		  "Maximum sum of all thin devices and snapshots." },
		{ "-u", "--unit ", "{}", "Output unit specifier." },
		{ "-n", "--numeric-only [short|long]", NULL,
		  "Output numeric value only (optionally with short/long unit identifier)." },
		{ "-h", "--help", NULL, "This help." },
		{ "-V", "--version", NULL, "Print thin provisioning tools version." },
	};

	fprintf(f, "Thin Provisioning Metadata Device Size Calculator.\n"
		"Usage: %s [options]\n", prog_name);
	for (unsigned i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		char arg[80];

		if (lines[i].units)
			snprintf(arg, sizeof(arg), "%s%c%s%c", lines[i].arg,
				 lines[i].units[0], unit_chars, lines[i].units[1]);
		else
			snprintf(arg, sizeof(arg), "%s", lines[i].arg);
		fprintf(f, "\t%-4s%-44s%s\n", lines[i].opt, arg, lines[i].text);
	}
}

/*
 * A size: digits with an optional unit suffix.  With a suffix, -b and -s
 * are converted to sectors (rounding down) and -m is multiplied by the
 * unit; a bare number is in sectors (-b, -s) or a count (-m).
 */
static int parse_size(struct size_opt *o, const char *arg, unsigned out_unit)
{
	size_t nr_digits = strspn(arg, "0123456789");
	const char *suffix = arg + nr_digits;
	u128 n = 0;
	int u = -1;

	/* 0.9 lets a size of 0 be given again. */
	if (o->value)
		return fail("option already given!");
	if (!nr_digits)
		return fail("not a number: --%s=%s", o->long_name, arg);
	if (*suffix) {
		u = unit_index(suffix);
		if (u < 0)
			return fail("Invalid unit specifier!");
	}

	for (size_t i = 0; i < nr_digits; i++) {
		unsigned d = (unsigned)(arg[i] - '0');

		if (n > (U128_MAX - d) / 10)
			return fail("size too large: --%s=%s", o->long_name, arg);
		n = n * 10 + d;
	}
	if (u >= 0) {
		u128 f = unit_factor((unsigned)u);

		if (n > U128_MAX / f)
			return fail("size too large: --%s=%s", o->long_name, arg);
		n *= f;
		if (!o->is_count)
			n /= SECTOR_SIZE;
	}
	if (n > SIZE_LIMIT)
		return fail("size too large: --%s=%s", o->long_name, arg);

	o->value = n;
	o->digits = arg;
	o->nr_digits = (int)nr_digits;
	if (u >= 0)
		o->unit_name = unit_names[u];
	else
		o->unit_name = o->is_count ? "" : unit_names[out_unit];
	return 0;
}

/* -n[short|long]: any prefix of either word. */
static int parse_numeric(struct settings *s, const char *arg)
{
	bool is_long, is_short;

	if (s->numeric != NUMERIC_NONE)
		return fail("-n already given!");
	s->numeric = NUMERIC_PLAIN;
	if (!arg)
		return 0;
	is_long = !strncmp("long", arg, strlen(arg));
	is_short = !strncmp("short", arg, strlen(arg));
	if (!*arg || (!is_short && !is_long))
		return fail("-n invalid option argument");
	s->numeric = is_long ? NUMERIC_LONG : NUMERIC_SHORT;
	return 0;
}

static int check_settings(const struct settings *s)
{
	u128 b = s->block.value;

	if (!b)
		return fail("block size required!");
	if (!s->pool.value)
		return fail("pool size required!");
	if (!s->thins.value)
		return fail("max thins required!");
	if (b % MIN_DATA_BLOCK_SECTORS)
		return fail("block size must be a multiple of 64 KiB");
	if (b > MAX_DATA_BLOCK_SECTORS)
		return fail("maximum block size is 1 GiB");
	if (s->pool.value <= b)
		return fail("pool size must be larger than block size");
	return 0;
}

/*----------------------------------------------------------------
 * The estimate
 *--------------------------------------------------------------*/

static double u128_to_double(u128 x)
{
	/* Below 2^64, round exactly as 0.9's unsigned long long did. */
	return x <= UINT64_MAX ? (double)(uint64_t)x : (double)x;
}

/* floor() for r >= 0 without libm: from 2^53 on every double is whole. */
static double whole_part(double r)
{
	return r >= 0x1p53 ? r : (double)(uint64_t)r;
}

/*
 * 0 < r < 1 in positional notation with the fewest significant digits
 * that read back as r, the last one rounded half up as 1.x does
 * (0.0004960633814334869, where 0.9 prints 4.96e-04).
 */
static void print_below_one(double r)
{
	char exact[80], digits[24], buf[48];
	unsigned nd = 0, len;
	int exp;
	char *e;

	/* r's leading digits, truncated (glibc prints exact digits) */
	snprintf(exact, sizeof(exact), "%.60e", r);
	e = strchr(exact, 'e');
	exp = atoi(e + 1);
	for (char *p = exact; p < e && nd < 18; p++)
		if (*p >= '0' && *p <= '9')
			digits[nd++] = *p;

	for (len = 1; len <= 17; len++) {
		char d[24];
		int x = exp;

		memcpy(d, digits, len);
		if (digits[len] >= '5') {		/* half up */
			int i = (int)len - 1;

			while (i >= 0 && d[i] == '9')
				d[i--] = '0';
			if (i >= 0) {
				d[i]++;
			} else {			/* 9.99 -> 10.0 */
				memmove(d + 1, d, len - 1);
				d[0] = '1';
				x++;
			}
		}
		d[len] = '\0';
		snprintf(buf, sizeof(buf), "%c.%se%d", d[0], d + 1, x);
		if (strtod(buf, NULL) == r) {
			memcpy(digits, d, len + 1);
			exp = x;
			break;
		}
	}
	nd = (unsigned)strlen(digits);
	while (nd > 1 && digits[nd - 1] == '0')
		digits[--nd] = '\0';
	fputs("0.", stdout);
	for (int z = exp + 1; z < 0; z++)
		putchar('0');
	fputs(digits, stdout);
}

static void print_number(double r)
{
	if (r == whole_part(r))
		printf("%.0f", r);
	else if (r >= 1.0)
		printf("%.2f", r);
	else
		print_below_one(r);
}

/*
 * One superblock, a leaf per 126 mappings (leaves are about half full;
 * rounded up) and a block per thin device, at most the largest metadata
 * device; then the conversion to the output unit in double.
 */
static void print_estimate(const struct settings *s)
{
	/* Cannot overflow: every value is at most SIZE_LIMIT = 2^127 - 1. */
	u128 nr_data = s->pool.value / s->block.value;
	u128 leaves = (nr_data + MAPPINGS_PER_BLOCK / 2 - 1) / (MAPPINGS_PER_BLOCK / 2);
	u128 n = 1 + leaves + s->thins.value;
	bool full = s->numeric == NUMERIC_NONE;
	double r;

	if (n > MAX_METADATA_BLOCKS || s->thins.value > MAX_METADATA_BLOCKS)
		n = MAX_METADATA_BLOCKS;
	r = u128_to_double(n) * (double)METADATA_BLOCK_SIZE;
	r /= u128_to_double(unit_factor(s->out_unit));

	if (full)
		printf("%s - ", prog_name);
	print_number(r);

	if (full)
		printf(" %s", unit_names[s->out_unit]);
	else if (s->numeric == NUMERIC_SHORT)
		putchar(unit_chars[s->out_unit]);
	else if (s->numeric == NUMERIC_LONG)
		fputs(unit_names[s->out_unit], stdout);

	if (full)
		printf(" estimated metadata area size for "
		       "\"--block-size=%.*s%s --pool-size=%.*s%s --max-thins=%.*s%s\"",
		       s->block.nr_digits, s->block.digits, s->block.unit_name,
		       s->pool.nr_digits, s->pool.digits, s->pool.unit_name,
		       s->thins.nr_digits, s->thins.digits, s->thins.unit_name);
	putchar('\n');
}

/*----------------------------------------------------------------
 * The command
 *--------------------------------------------------------------*/

int thin_metadata_size_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "block-size", required_argument, NULL, 'b' },
		{ "pool-size", required_argument, NULL, 's' },
		{ "max-thins", required_argument, NULL, 'm' },
		{ "unit", required_argument, NULL, 'u' },
		{ "numeric-only", optional_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct settings s = {
		.block = { .long_name = "block-size" },
		.pool = { .long_name = "pool-size" },
		.thins = { .long_name = "max-thins", .is_count = true },
		.out_unit = UNIT_SECTORS,
		.numeric = NUMERIC_NONE,
	};
	int c, u;

	/*
	 * Each option is checked when it is met, as 0.9 does: "-b x -h"
	 * fails, "-h -b x" prints the help.  Operands are ignored, as in 0.9.
	 */
	optind = 1;
	while ((c = getopt_long(argc, argv, "b:s:m:u:n::hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (parse_size(&s.block, optarg, s.out_unit))
				return 1;
			break;
		case 's':
			if (parse_size(&s.pool, optarg, s.out_unit))
				return 1;
			break;
		case 'm':
			if (parse_size(&s.thins, optarg, s.out_unit))
				return 1;
			break;
		case 'u':
			u = unit_index(optarg);
			if (u < 0)
				return fail("output unit specifier invalid!");
			s.out_unit = (unsigned)u;
			break;
		case 'n':
			if (parse_numeric(&s, optarg))
				return 1;
			break;
		case 'h':
		case 'V':
			return cli_help_or_version(c, usage);
		default:
			return cli_bad_usage(usage);
		}
	}
	argc = cli_drop_empty_operands(argc, argv);

	if (check_settings(&s))
		return 1;
	print_estimate(&s);
	return 0;
}
