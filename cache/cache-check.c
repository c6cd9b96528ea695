/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cache_check: validates cache metadata - the superblock, the mapping
 * and hint arrays, the discard and dirty bitsets - and the metadata space
 * map's reference counts against the references found.  Quiet when all
 * is well; the first problem is one line on stderr and the exit status
 * is 1.  Leaked blocks are a non-fatal error (exit 0 with
 * --ignore-non-fatal-errors); --clear-needs-check-flag and
 * --auto-repair free them and clear needs_check when nothing fatal was
 * found, as LVM expects on activation.  --skip-mappings (the mapping
 * array and, in version 2, the dirty bitset), --skip-hints and
 * --skip-discards leave those structures unread; the space map is then
 * not compared and nothing is written, as upstream 1.x does.
 */
#include "cli.h"
#include "cache/md-cli.h"
#include "cache/cache-md.h"
#include "cache/commands.h"
#include "persistent-data/array.h"
#include "persistent-data/bitset.h"
#include "persistent-data/ref-check.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
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
		"  {--clear-needs-check-flag}\n"
		"  {--super-block-only}\n"
		"  {--skip-mappings}\n"
		"  {--skip-hints}\n"
		"  {--skip-discards}\n"
		"  {--ignore-non-fatal-errors}\n"
		"  {--auto-repair}\n", prog_name);
}

struct checker {
	struct cache_md *md;
	struct ref_check rc;
	uint32_t version;
};

struct what {
	struct checker *c;
	const char *name;
};

static void damage(void *ctx, uint64_t lo, uint64_t hi, const char *msg)
{
	struct what *w = ctx;

	if (hi == UINT64_MAX)
		ref_check_problem(&w->c->rc, "%s damaged from entry %" PRIu64 ": %s", w->name, lo, msg);
	else
		ref_check_problem(&w->c->rc, "%s damaged (entries %" PRIu64 "-%" PRIu64 "): %s",
				  w->name, lo, hi, msg);
}

static int w_node(void *ctx, const struct btree_node_info *n)
{
	return ref_check_node(&((struct what *)ctx)->c->rc, n);
}

static int w_ablock(void *ctx, uint64_t index, uint64_t block)
{
	(void)index;
	return ref_check_ref(&((struct what *)ctx)->c->rc, block);
}

static int mapping_values(void *ctx, uint64_t first, uint32_t nr, const void *values)
{
	struct what *w = ctx;
	uint32_t allowed = CACHE_M_VALID | (w->c->version == 1 ? CACHE_M_DIRTY : 0);

	for (uint32_t i = 0; i < nr; i++) {
		uint64_t v = load_le64((const uint8_t *)values + 8u * i);
		uint32_t f = cache_mapping_flags(v);

		if (f & ~allowed)
			ref_check_problem(&w->c->rc, "invalid flags %#x in the mapping of cache block %" PRIu64,
					  f, first + i);
		else if (!(f & CACHE_M_VALID) && v)
			ref_check_problem(&w->c->rc, "unmapped cache block %" PRIu64 " has an origin block",
					  first + i);
	}
	return 0;
}

static int walk_array(struct checker *c, const char *name, uint64_t root, uint32_t vs,
		      uint64_t nr, int (*values)(void *, uint64_t, uint32_t, const void *))
{
	struct what w = { c, name };
	struct array_walk_ops o = {
		.node = w_node, .ablock = w_ablock, .values = values, .damage = damage,
	};
	struct pd_err err;
	int r;

	r = ref_check_ref(&c->rc, root);
	if (!r)
		r = array_walk(c->md->bm, root, vs, nr, &o, &w, &err);
	if (r == -ENOMEM)
		return r;
	if (r)
		ref_check_problem(&c->rc, "%s: %s", name, err.msg);
	return 0;
}

static void fix_encode(void *ctx, void *block, const void *blob)
{
	struct cache_sb *sb = ctx;

	memcpy(sb->metadata_sm_root, blob, SM_ROOT_BLOB_SIZE);
	cache_sb_encode(sb, block);
}

/* Frees leaked blocks and clears needs_check in one transaction. */
static int repair(struct checker *c, struct pd_err *err)
{
	struct cache_sb sb = c->md->sb;
	struct pd_store *s;
	int r;

	r = pd_store_open(c->md->io, sb.metadata_sm_root, 0, &s, err);
	if (r)
		return r;
	for (uint64_t i = 0; !r && i < c->rc.nr_leaked; i++)
		r = sm_set_count(s->md_sm, c->rc.leaked[i], 0);
	if (r)
		pd_err_set(err, r, "cannot free the leaked blocks");
	sb.flags &= ~CACHE_SB_NEEDS_CHECK;
	if (!r)
		r = pd_store_commit(s, fix_encode, &sb, err);
	pd_store_destroy(s);
	return r;
}

enum {
	OPT_SB_ONLY = 256, OPT_SKIP_MAPPINGS, OPT_SKIP_HINTS, OPT_SKIP_DISCARDS,
	OPT_CLEAR_NEEDS_CHECK, OPT_IGNORE_NON_FATAL, OPT_AUTO_REPAIR,
};

int cache_check_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "super-block-only", no_argument, NULL, OPT_SB_ONLY },
		{ "skip-mappings", no_argument, NULL, OPT_SKIP_MAPPINGS },
		{ "skip-hints", no_argument, NULL, OPT_SKIP_HINTS },
		{ "skip-discards", no_argument, NULL, OPT_SKIP_DISCARDS },
		{ "clear-needs-check-flag", no_argument, NULL, OPT_CLEAR_NEEDS_CHECK },
		{ "ignore-non-fatal-errors", no_argument, NULL, OPT_IGNORE_NON_FATAL },
		{ "auto-repair", no_argument, NULL, OPT_AUTO_REPAIR },
		{ NULL, 0, NULL, 0 },
	};
	bool sb_only = false, skip_maps = false, skip_hints = false, skip_discards = false;
	bool clear = false, ignore_nf = false, auto_repair = false, partial = false;
	struct checker c = { 0 };
	struct pd_err err = { 0 };
	struct sm_root smr;
	bool quiet = false;
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
		case OPT_SKIP_MAPPINGS:
			skip_maps = true;
			break;
		case OPT_SKIP_HINTS:
			skip_hints = true;
			break;
		case OPT_SKIP_DISCARDS:
			skip_discards = true;
			break;
		case OPT_CLEAR_NEEDS_CHECK:
			clear = true;
			break;
		case OPT_IGNORE_NON_FATAL:
			ignore_nf = true;
			break;
		case OPT_AUTO_REPAIR:
			auto_repair = true;
			break;
		default:
			return cli_bad_usage(usage);
		}
	}
	if (md_cli_one_input(argc, argv, usage))
		return 1;
	r = cache_md_open(argv[optind], clear || auto_repair, &c.md, &err);
	if (r) {
		if (!quiet)
			cli_error("%s", err.msg);
		return 1;
	}
	c.version = c.md->sb.version;
	sm_root_decode(c.md->sb.metadata_sm_root, &smr);
	if (ref_check_init(&c.rc, smr.nr_blocks)) {
		cli_error("out of memory");
		goto out;
	}
	if (sb_only)
		goto verdict;

	r = ref_check_ref(&c.rc, 0);
	if (!r && !skip_maps)
		r = walk_array(&c, "mapping array", c.md->sb.mapping_root, 8, c.md->sb.cache_blocks,
			       mapping_values);
	if (!r && !skip_hints && c.md->sb.hint_root)
		r = walk_array(&c, "hint array", c.md->sb.hint_root,
			       c.md->sb.policy_hint_size ? c.md->sb.policy_hint_size : 4,
			       c.md->sb.cache_blocks, NULL);
	if (!r && !skip_discards && c.md->sb.discard_root)
		r = walk_array(&c, "discard bitset", c.md->sb.discard_root, 8,
			       bitset_nr_words(c.md->sb.discard_nr_blocks), NULL);
	if (!r && !skip_maps && c.version >= 2)
		r = walk_array(&c, "dirty bitset", c.md->sb.dirty_root, 8,
			       bitset_nr_words(c.md->sb.cache_blocks), NULL);
	/*
	 * A structure left unwalked leaves its blocks uncounted: the space
	 * map cannot be compared, and so nothing is repaired (as 1.x).
	 */
	partial = skip_maps || skip_hints || skip_discards;
	if (!r && !partial)
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
	if (c.rc.nr_leaked && !quiet && !clear && !auto_repair)
		cli_error("%" PRIu64 " metadata blocks have leaked", c.rc.nr_leaked);
	if (partial)
		goto done;
	if ((clear && (c.rc.nr_leaked || (c.md->sb.flags & CACHE_SB_NEEDS_CHECK))) ||
	    (auto_repair && c.rc.nr_leaked)) {
		if (repair(&c, &err)) {
			if (!quiet)
				cli_error("%s", err.msg);
			goto out;
		}
		c.rc.nr_leaked = 0;
	}
done:
	ret = c.rc.nr_leaked && !ignore_nf ? 1 : 0;
out:
	ref_check_exit(&c.rc);
	cache_md_close(c.md);
	return ret;
}
