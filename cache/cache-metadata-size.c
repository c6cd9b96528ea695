/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cache_metadata_size: the metadata device a cache of N blocks needs,
 * with the options and output of thin-provisioning-tools 1.x: 4 MiB for
 * transactions, 16 bytes a block for the mapping array and (8 + hint
 * width) for the hints, at most the largest metadata device
 * (255 * 16320 blocks of 4 KiB).
 */
#include "cli.h"
#include "cache/commands.h"
#include "persistent-data/space-map-disk.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] <--device-size <SIZE> --block-size <SIZE> | --nr-blocks <NUM>>\n"
		"Options:\n"
		"  {-h|--help}\n"
		"  {-V|--version}\n"
		"  {--block-size <SIZE[bskmg]>}\n"
		"  {--device-size <SIZE[bskmgtp]>}\n"
		"  {--nr-blocks <NUM>}\n"
		"  {--max-hint-width <BYTES>} (default 4)\n"
		"  {-u|--unit} {bskKmMgGtTpP} (default: sectors)\n"
		"  {-n|--numeric-only[=short|long]}\n"
		"\nThese all relate to the size of the fast device (eg, SSD), rather\n"
		"than the whole cached device.\n", prog_name);
}

static const char unit_chars[] = "bskKmMgGtTpP";
static const char *const unit_names[] = {
	"bytes", "sectors", "kibibytes", "kilobytes", "mebibytes", "megabytes",
	"gibibytes", "gigabytes", "tebibytes", "terabytes", "pebibytes", "petabytes",
};

static double unit_factor(unsigned u)
{
	double f = u == 1 ? 512 : 1;

	for (unsigned n = 0; u > 1 && n < u / 2; n++)
		f *= (u % 2) ? 1000 : 1024;
	return f;
}

static int unit_of(char c)
{
	const char *p = c ? strchr(unit_chars, c) : NULL;

	return p ? (int)(p - unit_chars) : -1;
}

/* A size in sectors: digits, then an optional unit (b, s, k, m, g, t, p). */
static int parse_sectors(const char *s, const char *allowed, uint64_t *out)
{
	size_t n = strspn(s, "0123456789");
	char digits[32];
	uint64_t v;
	int u = 1;

	if (!n || n >= sizeof(digits))
		return -1;
	memcpy(digits, s, n);
	digits[n] = 0;
	if (cli_parse_u64(digits, &v))
		return -1;
	if (s[n]) {
		if (s[n + 1] || !strchr(allowed, s[n]) || (u = unit_of(s[n])) < 0)
			return -1;
	}
	double bytes = (double)v * unit_factor((unsigned)u);
	if (bytes / 512 > (double)UINT64_MAX / 2)
		return -1;
	*out = (uint64_t)(bytes / 512);
	if (u == 0)
		*out = v / 512;
	return 0;
}

static void print_number(double v)
{
	char buf[64];

	if (v == (double)(uint64_t)v && v < 1e19) {
		printf("%llu", (unsigned long long)v);
		return;
	}
	if (v >= 1) {
		printf("%.2f", v);
		return;
	}
	for (int p = 1; p <= 17; p++) {
		snprintf(buf, sizeof(buf), "%.*g", p, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	fputs(buf, stdout);
}

enum { OPT_BLOCK = 256, OPT_DEVICE, OPT_NR, OPT_HINT };
enum { NUM_NONE, NUM_PLAIN, NUM_SHORT, NUM_LONG };

int cache_metadata_size_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "block-size", required_argument, NULL, OPT_BLOCK },
		{ "device-size", required_argument, NULL, OPT_DEVICE },
		{ "nr-blocks", required_argument, NULL, OPT_NR },
		{ "max-hint-width", required_argument, NULL, OPT_HINT },
		{ "unit", required_argument, NULL, 'u' },
		{ "numeric-only", optional_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t block = 0, device = 0, nr = 0;
	bool have_block = false, have_device = false, have_nr = false;
	uint32_t hint = 4;
	int unit = 1, numeric = NUM_NONE, c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "hVu:n", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
		case 'V':
			return cli_help_or_version(c, usage);
		case OPT_BLOCK:
			if (parse_sectors(optarg, "bskmg", &block)) {
				cli_error("invalid value '%s' for '--block-size'", optarg);
				return 1;
			}
			have_block = true;
			break;
		case OPT_DEVICE:
			if (parse_sectors(optarg, "bskmgtp", &device)) {
				cli_error("invalid value '%s' for '--device-size'", optarg);
				return 1;
			}
			have_device = true;
			break;
		case OPT_NR:
			if (cli_parse_u64(optarg, &nr)) {
				cli_error("invalid value '%s' for '--nr-blocks'", optarg);
				return 1;
			}
			have_nr = true;
			break;
		case OPT_HINT:
			if (cli_parse_u32(optarg, &hint)) {
				cli_error("invalid value '%s' for '--max-hint-width'", optarg);
				return 1;
			}
			break;
		case 'u':
			if (strlen(optarg) != 1 || (unit = unit_of(optarg[0])) < 0) {
				cli_error("invalid value '%s' for '--unit': Invalid unit specifier", optarg);
				return 1;
			}
			break;
		case 'n':
			if (!optarg)
				numeric = NUM_PLAIN;
			else if (!strcmp(optarg, "short"))
				numeric = NUM_SHORT;
			else if (!strcmp(optarg, "long"))
				numeric = NUM_LONG;
			else {
				cli_error("invalid value '%s' for '--numeric-only'", optarg);
				return 1;
			}
			break;
		default:
			return cli_bad_usage(usage);
		}
	}
	argc = cli_drop_empty_operands(argc, argv);
	if (optind < argc) {
		cli_error("unexpected argument '%s'", argv[optind]);
		usage(stderr);
		return 1;
	}
	if (have_nr && (have_block || have_device)) {
		cli_error("--nr-blocks cannot be used with --block-size or --device-size");
		return 1;
	}
	if (!have_nr) {
		if (!have_block || !have_device) {
			cli_error("Please specify either --device-size and --block-size, or --nr-blocks.");
			return 1;
		}
		if (!block || block % 64) {
			cli_error("block size must be a multiple of 32 KiB");
			return 1;
		}
		if (block > 2097152) {
			cli_error("maximum block size is 1 GiB");
			return 1;
		}
		if (device <= block) {
			cli_error("pool size must be larger than block size");
			return 1;
		}
		nr = device / block + (device % block ? 1 : 0);
	}

	/* bytes, as 1.x computes them, capped at the largest metadata device */
	double bytes = 4194304.0 + (double)nr * 16 + (double)nr * ((double)hint + 8);
	double max = (double)SM_MD_MAX_BLOCKS * 4096;

	if (bytes > max)
		bytes = max;
	print_number(bytes / unit_factor((unsigned)unit));
	if (numeric == NUM_NONE)
		printf(" %s", unit_names[unit]);
	else if (numeric == NUM_SHORT)
		putchar(unit_chars[unit]);
	else if (numeric == NUM_LONG)
		fputs(unit_names[unit], stdout);
	putchar('\n');
	return 0;
}
