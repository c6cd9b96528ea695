/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The full merge on an in-memory pool: the input is a metadata image
 * (checksums fixed); the superblock's last (unused) byte picks the
 * devices and the options.
 * Every mode runs: the default (to a copy), --merged-only, -m when the
 * pool holds a metadata snapshot, and --in-place on a copy of the input.
 * Oracle (the merge safety rule): thin_merge never exits 0 having written
 * metadata that thin_check rejects; in place, whenever the input passes
 * thin_check.
 */
#include "fuzz-common.h"
#include "thin-provisioning/check.h"
#include "thin-provisioning/commands.h"

/* thin_check's default: the full check of the live metadata */
static const struct thin_check_opts check_opts = { .engine = IO_ENGINE_SYNC };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool passes(const char *path)
{
	return !thin_check(path, &check_opts, NULL, NULL);
}

static void fail(const char *what)
{
	fprintf(stderr, "thin_merge %s exited 0 but thin_check rejects what it wrote\n", what);
	abort();
}

static int merge(char **args, unsigned nr)
{
	char *argv[16];
	unsigned n = 0;

	argv[n++] = (char *)"thin_merge";
	for (unsigned i = 0; i < nr && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	getopt_forget();
	return thin_merge_main((int)n, argv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mem_file in = { .fd = -1 }, out = { .fd = -1 }, copy = { .fd = -1 };
	/* the superblock's unused last byte: ids 1 to 4, options */
	uint8_t ctl = size >= FUZZ_BLOCK ? data[FUZZ_BLOCK - 1] : 0;
	char origin[8], snap[8];
	char o_origin[] = "--origin", o_snap[] = "--snapshot", o_i[] = "-i", o_o[] = "-o";
	char o_q[] = "-q", o_rebase[] = "--rebase", o_mo[] = "--merged-only";
	char o_m[] = "-m", o_ip[] = "--in-place", o_force[] = "--force";
	bool input_ok;
	size_t nr;
	uint8_t *img = image_from_input(data, size, 2, &nr);

	if (!img)
		return 0;
	snprintf(origin, sizeof(origin), "%u", 1u + (ctl & 3u));
	snprintf(snap, sizeof(snap), "%u", 1u + (((ctl >> 2) + 1u) & 3u));
	if (mem_file_create(&in, img, nr * FUZZ_BLOCK, nr * FUZZ_BLOCK) ||
	    mem_file_create(&out, NULL, 0, 1024u * FUZZ_BLOCK))
		goto out;
	input_ok = passes(in.path);
	{
		char *base[12];
		unsigned nb = 0;

		base[nb++] = o_i;
		base[nb++] = in.path;
		base[nb++] = o_o;
		base[nb++] = out.path;
		base[nb++] = o_origin;
		base[nb++] = origin;
		base[nb++] = o_snap;
		base[nb++] = snap;
		base[nb++] = o_q;
		if (ctl & 0x10)
			base[nb++] = o_rebase;
		if (ctl & 0x40)
			base[nb++] = o_force;
		if (!merge(base, nb) && !passes(out.path))
			fail("(to a copy)");
		base[nb] = o_mo;
		if (!merge(base, nb + 1) && !passes(out.path))
			fail("--merged-only");
		if (load_le64(img + 56)) {	/* a metadata snapshot is held */
			base[nb] = o_m;
			if (!merge(base, nb + 1) && !passes(out.path))
				fail("-m");
		}
	}
	if (!mem_file_copy(&copy, &in)) {
		char *args[] = { o_i, copy.path, o_ip, o_origin, origin, o_snap, snap, o_q,
				 o_rebase };
		unsigned na = 8 + ((ctl & 0x10) ? 1 : 0);

		if (!merge(args, na) && input_ok && !passes(copy.path))
			fail("--in-place");
	}
out:
	mem_file_destroy(&in);
	mem_file_destroy(&out);
	mem_file_destroy(&copy);
	free(img);
	return 0;
}
