/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * era_check: validates era metadata - the superblock, the writeset tree
 * and each writeset's bitset, the current writeset, the era array, the
 * metadata snapshot - and the space map's counts against the references
 * found.  Quiet when all is well; the first problem is one line on
 * stderr, exit 1.  Leaked blocks are non-fatal.
 */
#include "cli.h"
#include "cache/md-cli.h"
#include "cache/commands.h"
#include "era/era-md.h"
#include "persistent-data/array.h"
#include "persistent-data/bitset.h"
#include "persistent-data/ref-check.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options] {device|file}\n"
		"Options:\n"
		"  {-q|--quiet}\n"
		"  {-h|--help}\n"
		"  {-V|--version}\n"
		"  {--super-block-only}\n"
		"  {--ignore-non-fatal-errors}\n", prog_name);
}

struct checker {
	struct era_md *md;
	struct ref_check rc;
	const char *what;
	uint32_t max_era;
};

static void damage(void *ctx, uint64_t lo, uint64_t hi, const char *msg)
{
	struct checker *c = ctx;

	(void)hi;
	ref_check_problem(&c->rc, "%s damaged at entry %" PRIu64 ": %s", c->what, lo, msg);
}

static int node(void *ctx, const struct btree_node_info *n)
{
	return ref_check_node(&((struct checker *)ctx)->rc, n);
}

static int ablock(void *ctx, uint64_t index, uint64_t block)
{
	(void)index;
	return ref_check_ref(&((struct checker *)ctx)->rc, block);
}

static int eras(void *ctx, uint64_t first, uint32_t nr, const void *values)
{
	struct checker *c = ctx;

	for (uint32_t i = 0; i < nr; i++) {
		uint32_t era = load_le32((const uint8_t *)values + 4u * i);

		if (era > c->max_era)
			ref_check_problem(&c->rc, "era array: block %" PRIu64 " has era %u, past the current era %u",
					  first + i, era, c->max_era);
	}
	return 0;
}

static int walk_bitset(struct checker *c, const char *what, uint64_t root, uint64_t nr_bits)
{
	struct bitset_walk_ops o = { .node = node, .ablock = ablock, .damage = damage };
	struct pd_err err;
	int r;

	c->what = what;
	r = ref_check_ref(&c->rc, root);
	if (!r)
		r = bitset_walk(c->md->bm, root, nr_bits, &o, c, &err);
	if (r && r != -ENOMEM) {
		ref_check_problem(&c->rc, "%s: %s", what, err.msg);
		r = 0;
	}
	return r;
}

/* Leaves of the writeset tree reached for the first time: their writesets. */
static int ws_leaf(void *ctx, const struct btree_node_info *n)
{
	struct checker *c = ctx;
	int r = 0;

	for (uint32_t i = 0; !r && i < n->nr_entries; i++) {
		const struct era_writeset_disk *d = node_value_c(n->data, i, 12);
		uint64_t era = node_key(n->data, i);
		uint32_t nr_bits = le32_to_cpu(d->nr_bits);

		if (era > c->max_era)
			ref_check_problem(&c->rc, "writeset of era %" PRIu64 " is past the current era %u",
					  era, c->max_era);
		if (nr_bits > c->md->sb.nr_blocks)
			ref_check_problem(&c->rc, "writeset of era %" PRIu64 " has %u bits, more than the %u blocks",
					  era, nr_bits, c->md->sb.nr_blocks);
		r = walk_bitset(c, "writeset", le64_to_cpu(d->root), nr_bits);
	}
	return r;
}

static void ws_damage(void *ctx, const struct btree_damage *d)
{
	struct checker *c = ctx;

	ref_check_problem(&c->rc, "writeset tree: %s", d->msg);
}

static int ws_node(void *ctx, const struct btree_node_info *n)
{
	return ref_check_node(&((struct checker *)ctx)->rc, n);
}

static int walk_trees(struct checker *c, uint64_t ws_root, uint64_t era_root)
{
	struct btree_walk_opts o = { .shape = { .value_size = 12 } };
	struct btree_walk_ops bo = { .node = ws_node, .leaf = ws_leaf, .damage = ws_damage };
	struct array_walk_ops ao = { .node = node, .ablock = ablock, .values = eras, .damage = damage };
	struct pd_err err;
	int r;

	r = ref_check_ref(&c->rc, ws_root);
	if (!r)
		r = btree_walk(c->md->bm, ws_root, &o, &bo, c, &err);
	if (r)
		return r == -ENOMEM ? r : 0;
	c->what = "era array";
	r = ref_check_ref(&c->rc, era_root);
	if (!r)
		r = array_walk(c->md->bm, era_root, 4, c->md->sb.nr_blocks, &ao, c, &err);
	if (r && r != -ENOMEM) {
		ref_check_problem(&c->rc, "era array: %s", err.msg);
		r = 0;
	}
	return r;
}

enum { OPT_SB_ONLY = 256, OPT_IGNORE_NON_FATAL };

int era_check_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "super-block-only", no_argument, NULL, OPT_SB_ONLY },
		{ "ignore-non-fatal-errors", no_argument, NULL, OPT_IGNORE_NON_FATAL },
		{ NULL, 0, NULL, 0 },
	};
	bool quiet = false, sb_only = false, ignore_nf = false;
	struct checker c = { 0 };
	struct pd_err err = { 0 };
	int ch, r, ret = 1;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "hVq", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h':
		case 'V':
			return cli_help_or_version(ch, usage);
		case 'q':
			quiet = true;
			break;
		case OPT_SB_ONLY:
			sb_only = true;
			break;
		case OPT_IGNORE_NON_FATAL:
			ignore_nf = true;
			break;
		default:
			return cli_bad_usage(usage);
		}
	}
	if (md_cli_one_input(argc, argv, usage))
		return 1;
	r = era_md_open(argv[optind], &c.md, &err);
	if (r) {
		if (!quiet)
			cli_error("%s", err.msg);
		return 1;
	}
	if (ref_check_init(&c.rc, c.md->nr_md_blocks)) {
		cli_error("out of memory");
		goto out;
	}
	if (sb_only)
		goto verdict;
	c.max_era = c.md->sb.current_era;
	r = ref_check_ref(&c.rc, 0);
	if (!r)
		r = walk_trees(&c, c.md->sb.writeset_tree_root, c.md->sb.era_array_root);
	if (!r && c.md->sb.current_root)
		r = walk_bitset(&c, "current writeset", c.md->sb.current_root,
				c.md->sb.current_nr_bits);
	if (!r && c.md->sb.metadata_snap) {
		r = ref_check_ref(&c.rc, c.md->sb.metadata_snap);
		if (!r && era_md_use_snapshot(c.md, &err))
			ref_check_problem(&c.rc, "metadata snapshot: %s", err.msg);
		else if (!r)
			r = walk_trees(&c, c.md->sb.writeset_tree_root, c.md->sb.era_array_root);
	}
	if (!r)
		r = ref_check_compare(&c.rc, c.md->bm, c.md->sb.metadata_sm_root);
	if (r) {
		cli_error("out of memory");
		goto out;
	}
verdict:
	if (c.rc.problems) {
		if (!quiet)
			cli_error("%s", c.rc.first);
		goto out;
	}
	if (c.rc.nr_leaked && !quiet)
		cli_error("%" PRIu64 " metadata blocks have leaked", c.rc.nr_leaked);
	ret = c.rc.nr_leaked && !ignore_nf ? 1 : 0;
out:
	ref_check_exit(&c.rc);
	era_md_close(c.md);
	return ret;
}
