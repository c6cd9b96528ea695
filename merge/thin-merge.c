/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * thin_merge: turns an external snapshot S and the copy of its origin O
 * into one ordinary thin device (see merge.h for the rule, man 8
 * thin_merge for the workflow).
 *
 * Outputs:
 *   default      OUT gets the whole pool: the used metadata blocks are
 *                copied, then the merge runs as a transaction on OUT, so
 *                every other device keeps its blocks and its sharing;
 *   -m           the same from the held metadata snapshot: its trees are
 *                copied and fresh space maps counted from them;
 *   --in-place   the merge is a transaction on IN itself (crash-safe);
 *   --merged-only  fresh metadata with the merged device alone (what the
 *                reference thin_merge writes).
 * --dry-run says what would happen and writes nothing.
 */
#include "cli.h"
#include "merge.h"
#include "persistent-data/btree-write.h"
#include "persistent-data/count-map.h"
#include "persistent-data/io-engine-overlay.h"
#include "persistent-data/space-map-disk.h"
#include "persistent-data/output-file.h"
#include "thin-provisioning/check.h"
#include "thin-provisioning/commands.h"
#include "thin-provisioning/pool.h"
#include "thin-provisioning/restore.h"
#include "thin-provisioning/tree-copy.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options]\n"
		"Options:\n"
		"  {-h|--help}\n"
		"  {-i|--input} <input metadata (binary format)>\n"
		"  {-o|--output} <output metadata (binary format)>\n"
		"  {--origin} <origin device id>\n"
		"  {--snapshot} <snapshot device id>\n"
		"  {--rebase}\n"
		"  {-m|--metadata-snap}\n"
		"  {--in-place}\n"
		"  {--merged-only}\n"
		"  {--dry-run}\n"
		"  {--force}\n"
		"  {--io-engine} {sync|async}\n"
		"  {-q|--quiet}\n"
		"  {-V|--version}\n", prog_name);
}

struct opts {
	const char *input, *output;
	struct merge_opts m;
	bool have_origin, have_snapshot;
	bool metadata_snap, in_place, merged_only, dry_run, quiet, force;
	enum io_engine_kind engine;
	bool engine_given;
};

/*
 * The merge's bar: its total (S's mappings) is known once the merge has
 * read S's details, so the bar starts at the first report.
 */
struct merge_bar {
	struct progress prog;
	bool started, quiet;
};

static void merge_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct merge_bar *b = ctx;

	if (!b->started) {
		progress_init(&b->prog, "Merging", total, b->quiet);
		b->started = true;
	}
	progress_update(&b->prog, done);
}

static void copy_progress(void *ctx, uint64_t done)
{
	progress_update(ctx, done);
}

/*----------------------------------------------------------------
 * Checks of the input
 *--------------------------------------------------------------*/

/* O and S exist, agree with their details, and S's tree (O's too if asked) reads cleanly. */
static int check_devices(struct thin_metadata *md, const struct opts *o, bool whole_origin,
			 struct thin_device *od, struct thin_device *sd, struct pd_err *err)
{
	uint64_t n;
	int r;

	r = thin_find_device(md, o->m.origin, od, err);
	if (r)
		return r;
	*sd = *od;
	if (o->m.snapshot != o->m.origin) {
		r = thin_find_device(md, o->m.snapshot, sd, err);
		if (r)
			return r;
		/*
		 * In place, the merge's own strict walk of S is the check (a
		 * mismatch aborts the transaction before anything is committed):
		 * walking S twice would double the cost that must follow S.
		 */
		if (o->in_place)
			return 0;
		r = thin_count_mappings(md, sd->root, &n, err);
		if (r) {
			pd_err_prefix(err, "device %" PRIu64, sd->dev_id);
			return r;
		}
		if (n != sd->mapped_blocks)
			return pd_err_set(err, -EILSEQ,
					  "device %" PRIu64 ": its details say %" PRIu64
					  " mappings but its tree holds %" PRIu64 " (run thin_check)",
					  sd->dev_id, sd->mapped_blocks, n);
	}
	if (whole_origin) {
		r = thin_count_mappings(md, od->root, &n, err);
		if (r) {
			pd_err_prefix(err, "device %" PRIu64, od->dev_id);
			return r;
		}
		if (n != od->mapped_blocks)
			return pd_err_set(err, -EILSEQ,
					  "device %" PRIu64 ": its details say %" PRIu64
					  " mappings but its tree holds %" PRIu64 " (run thin_check)",
					  od->dev_id, od->mapped_blocks, n);
	}
	return 0;
}

static int open_input(const struct opts *o, bool snap, struct thin_metadata **md,
		      struct pd_err *err)
{
	struct thin_open_opts oo = {
		.engine = o->engine,
		.metadata_snap = snap,
		/*
		 * A live pool's metadata is read beside it only under -m, and
		 * then directly (O_DIRECT), past a page cache the kernel does
		 * not keep.  An inactive pool's is read twice (checked, then
		 * copied): buffered, the second read is served from memory.
		 */
		.io_flags = snap ? 0 : IO_OPEN_EXCL | IO_OPEN_NO_DIRECT,
		/* read in order, mostly once: a small cache is enough */
		.cache_blocks = 1024,
	};
	int r;

	r = thin_metadata_open(o->input, &oo, md, err);
	if (r == -ENODATA && snap)
		return pd_err_set(err, r, "%s: no metadata snapshot found (reserve_metadata_snap first)",
				  o->input);
	if (r)
		return r;
	if ((*md)->live.flags & THIN_SB_FLAG_NEEDS_CHECK)
		return pd_err_set(err, -EUCLEAN,
				  "%s: the metadata has the NEEDS_CHECK flag set: run thin_check (and thin_repair) first",
				  o->input);
	return 0;
}

/*
 * The full check of the input (full-output modes) and, under --force, of
 * the output: the checker thin_check runs (check.h), with the damage it
 * finds gathered by part (superblock, devices tree, mapping tree, space
 * maps) and nothing printed but the errors of the check itself.
 */
#define MAX_PARTS 8

struct check_report {
	unsigned nr_parts;
	struct {
		char name[64];
		char first[PD_ERR_MSG_MAX];
		int first_indent;
		bool detailed;
		unsigned nr_lines;
	} part[MAX_PARTS];
};

static void collect_line(void *ctx, enum thin_check_severity sev, int indent,
			 const char *line)
{
	struct check_report *cr = ctx;

	if (sev == THIN_CHECK_ERROR) {
		cli_error("%s", line);
		return;
	}
	if (sev != THIN_CHECK_LINE)
		return;
	if (!indent) {
		const char *name = line;

		if (cr->nr_parts == MAX_PARTS)
			return;
		if (!strncmp(name, "examining ", 10))
			name += 10;
		else if (!strncmp(name, "checking ", 9))
			name += 9;
		snprintf(cr->part[cr->nr_parts].name, sizeof(cr->part[0].name), "%s", name);
		cr->part[cr->nr_parts].nr_lines = 0;
		cr->nr_parts++;
		return;
	}
	if (!cr->nr_parts)
		return;
	{
		__typeof__(cr->part[0]) *pt = cr->part + cr->nr_parts - 1;
		size_t len = strlen(pt->first);

		if (!pt->nr_lines++) {
			snprintf(pt->first, PD_ERR_MSG_MAX, "%s", line);
			pt->first_indent = indent;
		} else if (pt->nr_lines == 2 && !pt->detailed && indent > pt->first_indent) {
			/* "superblock is corrupt" says less than its detail line */
			snprintf(pt->first + len, PD_ERR_MSG_MAX - len, ": %s", line);
			pt->nr_lines = 1;
			pt->detailed = true;
		}
	}
}

/* Runs the check; 0: it passes. */
static int full_check(const char *path, const struct opts *o, bool snap,
		      struct check_report *cr)
{
	struct thin_check_opts co = { .engine = o->engine, .metadata_snap = snap };

	memset(cr, 0, sizeof(*cr));
	return thin_check(path, &co, collect_line, cr);
}

/* "mapping tree (device 3: ...), space map counts (...)" */
static void damaged_parts(const struct check_report *cr, char *buf, size_t n)
{
	size_t used = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < cr->nr_parts && used + 1 < n; i++) {
		int w;

		if (!cr->part[i].nr_lines)
			continue;
		w = snprintf(buf + used, n - used, "%s%s (%s%s)", used ? ", " : "",
			     cr->part[i].name, cr->part[i].first,
			     cr->part[i].nr_lines > 1 ? ", ..." : "");
		if (w < 0)
			break;
		used += (size_t)w < n - used ? (size_t)w : n - used - 1;
	}
	if (!used)
		snprintf(buf, n, "the metadata cannot be read as a whole");
}

/*----------------------------------------------------------------
 * Sizes
 *--------------------------------------------------------------*/

/*
 * Entries of a full mapping tree node (252), of a node of the data space
 * map's index tree (168), and of a mapping leaf at its least full (84:
 * every non-root node holds at least a third of its maximum).
 */
#define MAPPING_MAX btree_max_entries(THIN_MAPPING_VALUE_SIZE)
#define SM_INDEX_MAX btree_max_entries(SM_INDEX_ENTRY_SIZE)
#define MAPPING_MIN_FILL (MAPPING_MAX / 3)

/*
 * Blocks a merge transaction may add to a pool: the O leaves S's
 * mappings land in (each copied, and perhaps split), the paths above
 * them, the details and top-level paths, the changed bitmaps and the
 * space maps' trees.
 */
static uint64_t transaction_blocks(const struct thin_device *od, const struct thin_device *sd,
				   uint64_t nr_data_blocks)
{
	uint64_t o_leaves = od->mapped_blocks / MAPPING_MIN_FILL + 1;
	uint64_t touched = sd->mapped_blocks < o_leaves ? sd->mapped_blocks : o_leaves;
	uint64_t data_bitmaps = nr_data_blocks / SM_ENTRIES_PER_BITMAP + 1;
	uint64_t bitmaps = 2 * sd->mapped_blocks < data_bitmaps ? 2 * sd->mapped_blocks : data_bitmaps;

	return 2 * touched + 2 * (touched / MAPPING_MIN_FILL + 1) * 4 + 64 + bitmaps +
	       btree_blocks_for(bitmaps, SM_INDEX_MAX) + SM_MD_MAX_BITMAPS + 16;
}

/* Blocks of fresh metadata holding the merged device alone. */
static uint64_t merged_only_blocks(uint64_t merged, uint64_t nr_data_blocks, uint64_t nr_md)
{
	uint64_t data_bitmaps = nr_data_blocks / SM_ENTRIES_PER_BITMAP + 1;

	return 1 + btree_blocks_for(merged, MAPPING_MAX) + 1 + 1 + data_bitmaps +
	       btree_blocks_for(data_bitmaps, SM_INDEX_MAX) * 2 + 1 +
	       nr_md / SM_ENTRIES_PER_BITMAP + 1 + 2 + 8;
}

/*----------------------------------------------------------------
 * Outputs
 *--------------------------------------------------------------*/

static int open_output(const struct opts *o, struct io_engine **out, struct pd_err *err)
{
	int r = output_check(o->output, o->input, err);

	if (r)
		return r;
	/*
	 * Buffered: blocks the merge wrote and evicted from its cache, when it
	 * reads them again, come back from the page cache; the overlay's
	 * finish still flushes (fdatasync) before and after the superblock.
	 */
	return io_engine_open(o->output, o->engine,
			      IO_OPEN_WRITE | IO_OPEN_EXCL | IO_OPEN_NO_DIRECT, out, err);
}

/*
 * Closes the output; a failure after writing began zeroes its block 0, so
 * that the half-written result is not taken for metadata.
 */
static void close_output(const struct opts *o, struct pool *p, struct io_engine *out,
			 bool failed)
{
	pool_destroy(p);
	io_engine_destroy(out);
	if (failed)
		output_invalidate(o->output);
}

static int run_merge(struct pool *p, const struct opts *o, struct merge_stats *st,
		     struct pd_err *err)
{
	struct merge_opts mo = o->m;
	struct merge_bar bar = { .quiet = o->quiet };
	int r;

	mo.progress = merge_progress;
	mo.progress_ctx = &bar;
	r = merge_in_pool(p, &mo, st, err);
	if (bar.started)
		progress_done(&bar.prog);
	if (!r)
		r = pool_commit(p, err);
	return r;
}

/*
 * The blocks a metadata space map counts as used (IN's before the merge,
 * OUT's after its commit); damaged says whose map it is.
 */
static int used_blocks(struct bm *bm, const struct sm_root *root, const char *damaged,
		       struct count_map **out, struct pd_err *err)
{
	struct sm_load_hooks hooks = { 0 };
	int r;

	r = cm_create(root->nr_blocks, out);
	if (r)
		return pd_err_set(err, r, "out of memory");
	r = sm_disk_load(bm, root, true, *out, &hooks, err);
	if (r > 0)
		r = pd_err_set(err, -EILSEQ, "%s", damaged);
	if (r) {
		cm_destroy(*out);
		*out = NULL;
	}
	return r;
}

/*
 * Default: the merge as a transaction on a copy of the pool, without
 * copying it first.  OUT is seen through an overlay that reads from IN
 * what OUT does not hold yet; the merge writes its new blocks to OUT,
 * then the blocks still in use and never written are copied (the O
 * leaves S's mappings replaced are not), and the superblock goes last.
 */
static int merge_to_copy(const struct opts *o, struct thin_metadata *md,
			 const struct thin_device *od, const struct thin_device *sd,
			 struct merge_stats *st, struct pd_err *err)
{
	struct io_engine *out = NULL, *view = NULL;
	struct count_map *used = NULL, *keep = NULL;
	struct sm_root committed;
	struct pool *p = NULL;
	struct progress prog;
	uint64_t highest = 0, need;
	bool failed = false;
	int r;

	r = used_blocks(md->bm, &md->metadata_sm,
			"the input's metadata space map is damaged (run thin_check)", &used, err);
	if (r)
		goto out;
	for (uint64_t b = 0; b < cm_nr_blocks(used); b++)
		if (cm_get(used, b))
			highest = b;

	r = open_output(o, &out, err);
	if (r)
		goto out;
	need = cm_nr_allocated(used) + transaction_blocks(od, sd, md->data_sm.nr_blocks);
	if (need < highest + 1)
		need = highest + 1;
	if (out->nr_blocks < need) {
		r = cli_output_too_small(err, o->output, need, out->nr_blocks);
		goto out;
	}

	r = io_overlay_create(md->io, out, &view, err);
	if (r)
		goto out;
	r = pool_open_resized(view, 0, &p, err);
	if (!r)
		r = run_merge(p, o, st, err);
	if (r)
		goto fail;
	sm_root_decode(p->sb.metadata_sm_root, &committed);
	r = used_blocks(p->bm, &committed,
			"the output's metadata space map reads back damaged", &keep, err);
	if (r)
		goto fail;
	progress_init(&prog, "Copying", cm_nr_allocated(keep) > io_overlay_nr_written(view) ?
		      cm_nr_allocated(keep) - io_overlay_nr_written(view) : 0, o->quiet);
	r = io_overlay_finish(view, keep, copy_progress, &prog, err);
	progress_done(&prog);
	if (!r)
		goto out;
fail:
	failed = true;
out:
	pool_destroy(p);
	io_engine_destroy(view);
	close_output(o, NULL, out, failed);
	cm_destroy(used);
	cm_destroy(keep);
	return r;
}

/* -m: the held snapshot's trees to OUT with fresh space maps, then the merge. */
static int merge_from_snapshot(const struct opts *o, struct thin_metadata *md,
			       const struct thin_device *od, const struct thin_device *sd,
			       struct merge_stats *st, struct pd_err *err)
{
	struct count_map *md_counts = NULL, *data_counts = NULL;
	struct io_engine *out = NULL;
	struct pool *p = NULL;
	uint64_t need;
	bool failed = false;
	int r;

	uint64_t highest = 0;

	r = open_output(o, &out, err);
	if (r)
		return r;
	if (cm_create(md->io->nr_blocks, &md_counts) ||
	    cm_create(md->data_sm.nr_blocks, &data_counts)) {
		r = pd_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	/* a counting walk first: the size is known before anything is written */
	r = tree_copy_thin(md->bm, NULL, md->sb.device_details_root, md->sb.data_mapping_root,
			   md_counts, data_counts, err);
	if (r)
		goto out;
	for (uint64_t b = 0; b < cm_nr_blocks(md_counts); b++)
		if (cm_get(md_counts, b))
			highest = b;
	need = cm_nr_allocated(md_counts) + 1 + transaction_blocks(od, sd, md->data_sm.nr_blocks) +
	       md->data_sm.nr_blocks / SM_ENTRIES_PER_BITMAP * 2 + 8;
	if (need < highest + 1)
		need = highest + 1;
	if (out->nr_blocks < need) {
		r = cli_output_too_small(err, o->output, need, out->nr_blocks);
		goto out;
	}
	cm_destroy(md_counts);
	cm_destroy(data_counts);
	md_counts = data_counts = NULL;
	if (cm_create(md->io->nr_blocks, &md_counts) ||
	    cm_create(md->data_sm.nr_blocks, &data_counts)) {
		r = pd_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	r = tree_copy_thin(md->bm, out, md->sb.device_details_root, md->sb.data_mapping_root,
			   md_counts, data_counts, err);
	if (r)
		goto fail;
	r = pool_create_from_counts(out, &md->sb, md_counts, data_counts, 0, &p, err);
	if (!r)
		r = run_merge(p, o, st, err);
	if (!r)
		goto out;
fail:
	failed = true;
out:
	close_output(o, p, out, failed);
	cm_destroy(md_counts);
	cm_destroy(data_counts);
	return r;
}

/*
 * --merged-only: M alone in fresh metadata, written by restore's emitter
 * (the bulk loader) from M's mappings in key order.
 */
struct build_ctx {
	struct emit_run run;
	uint64_t nr_data_blocks;
	struct pd_err *err;
	uint64_t count;
	struct progress *prog;
};

static int build_mapping(void *ctx, uint64_t key, uint64_t block_time, enum merge_source src)
{
	struct build_ctx *c = ctx;
	uint64_t block = block_time_block(block_time);

	if (src == MERGE_HIDDEN)
		return 0;
	if (block >= c->nr_data_blocks)
		return pd_err_set(c->err, -EINVAL, "mapping to data block %" PRIu64
				  " beyond the data device", block);
	if (!(++c->count & 0xffff))
		progress_update(c->prog, c->count);
	return emit_run_add(&c->run, key, block, block_time_time(block_time));
}

static int merge_alone(const struct opts *o, struct thin_metadata *md,
		       const struct thin_device *od, const struct thin_device *sd,
		       struct merge_stats *st, struct pd_err *err)
{
	const struct thin_device *kept = o->m.rebase ? sd : od;
	const struct restore_opts ro = { .version = md->sb.version };
	const struct emit_superblock esb = {
		.nr_data_blocks = md->data_sm.nr_blocks,
		.data_block_size = md->sb.data_block_size,
		.trans_id = md->sb.trans_id,
		.time = md->sb.time,
	};
	const struct emit_device ed = {
		.dev_id = kept->dev_id,
		.transaction_id = kept->transaction_id,
		.creation_time = kept->creation_time,
		.snap_time = kept->snapshotted_time,
	};
	struct io_engine *out = NULL;
	struct emitter *e = NULL;
	struct build_ctx bc = { .nr_data_blocks = esb.nr_data_blocks, .err = err };
	struct merge_visitor v = { .mapping = build_mapping, .ctx = &bc };
	struct progress prog;
	uint64_t need;
	bool failed = false;
	int r;

	r = merge_count(md->bm, od, sd, o->m.rebase, st, err);
	if (r)
		return r;
	r = open_output(o, &out, err);
	if (r)
		return r;
	need = merged_only_blocks(st->merged_mapped, esb.nr_data_blocks, out->nr_blocks);
	if (out->nr_blocks < need) {
		r = cli_output_too_small(err, o->output, need, out->nr_blocks);
		goto out;
	}
	r = restore_emitter_create(out, &ro, err, &e);
	if (r)
		goto fail;
	r = e->ops->begin_superblock(e, &esb);
	if (!r)
		r = e->ops->begin_device(e, &ed);
	if (r)
		goto fail;
	emit_run_init(&bc.run, e);
	progress_init(&prog, "Merging", st->merged_mapped, o->quiet);
	bc.prog = &prog;
	if (od->dev_id == sd->dev_id || od->root == sd->root) {
		/* one tree: M is that tree's mappings */
		r = merge_walk(md->bm, kept->root, kept->root, &v, err);
	} else {
		r = merge_walk(md->bm, od->root, sd->root, &v, err);
	}
	progress_done(&prog);
	if (!r)
		r = emit_run_flush(&bc.run);
	/* end_device sets M's mapped_blocks to the mappings it was given */
	if (!r)
		r = e->ops->end_device(e);
	if (!r)
		r = e->ops->end_superblock(e);
	if (r)
		goto fail;
	st->merged_mapped = bc.count;
	goto out;
fail:
	failed = true;
out:
	emitter_destroy(e);
	close_output(o, NULL, out, failed);
	return r;
}

/* --in-place: a transaction on IN. */
static int merge_in_place(const struct opts *o, struct merge_stats *st, struct pd_err *err)
{
	struct io_engine *io = NULL;
	struct pool *p = NULL;
	int r;

	/*
	 * In place, the blocks read are scattered over the device: unless
	 * told otherwise, read them with an async engine, which overlaps them
	 * (several times faster than one pread after another on a disk with
	 * a queue), and fall back to sync where none can be set up.
	 */
	if (!o->engine_given) {
		r = io_engine_open(o->input, IO_ENGINE_ASYNC, IO_OPEN_WRITE | IO_OPEN_EXCL, &io, err);
		if (r == -ENOTSUP)
			r = io_engine_open(o->input, IO_ENGINE_SYNC, IO_OPEN_WRITE | IO_OPEN_EXCL,
					   &io, err);
	} else {
		r = io_engine_open(o->input, o->engine, IO_OPEN_WRITE | IO_OPEN_EXCL, &io, err);
	}
	if (r)
		return r;
	r = pool_open(io, 0, &p, err);
	if (!r && (p->sb.flags & THIN_SB_FLAG_NEEDS_CHECK))
		r = pd_err_set(err, -EUCLEAN,
			       "%s: the metadata has the NEEDS_CHECK flag set: run thin_check (and thin_repair) first",
			       o->input);
	/* everything the transaction reads or changes, before it writes */
	if (!r)
		r = merge_validate_in_place(p, &o->m, err);
	if (!r && o->m.snapshot != o->m.origin)
		r = run_merge(p, o, st, err);
	pool_destroy(p);
	io_engine_destroy(io);
	return r;
}

/*----------------------------------------------------------------
 * Dry run
 *--------------------------------------------------------------*/

static int dry_run(const struct opts *o, struct thin_metadata *md,
		   const struct thin_device *od, const struct thin_device *sd)
{
	struct merge_stats st;
	struct pd_err err;
	uint64_t need;
	int r;

	r = merge_count(md->bm, od, sd, o->m.rebase, &st, &err);
	if (r) {
		cli_error("%s", err.msg);
		return 1;
	}
	if (o->merged_only)
		need = merged_only_blocks(st.merged_mapped, md->data_sm.nr_blocks,
					  md->metadata_sm.nr_blocks);
	else
		need = md->metadata_sm.nr_allocated +
		       transaction_blocks(od, sd, md->data_sm.nr_blocks);

	printf("merge of device %" PRIu64 " (snapshot) over device %" PRIu64 " (origin)%s\n",
	       sd->dev_id, od->dev_id, o->dry_run && o->m.snapshot == o->m.origin ?
	       ": nothing to merge" : "");
	printf("blocks taken from the snapshot:    %" PRIu64 "\n", st.from_snapshot);
	printf("blocks kept from the origin:       %" PRIu64 "\n", st.kept_from_origin);
	printf("origin blocks hidden (to be freed): %" PRIu64 "\n", st.hidden);
	printf("merged device:                     %" PRIu64 " (mapped_blocks %" PRIu64
	       ", snap_time %" PRIu32 ")\n", st.kept_id, st.merged_mapped, st.snap_time);
	if (st.kept_id != st.dropped_id)
		printf("device removed:                    %" PRIu64 "\n", st.dropped_id);
	printf("metadata blocks the output needs:  %" PRIu64 " (%" PRIu64 " KiB)%s\n",
	       need, need * 4, o->in_place ? ", at most, in place" : "");
	return 0;
}

/*----------------------------------------------------------------
 * Command line
 *--------------------------------------------------------------*/

enum {
	OPT_ORIGIN = 256,
	OPT_SNAPSHOT,
	OPT_REBASE,
	OPT_IN_PLACE,
	OPT_MERGED_ONLY,
	OPT_DRY_RUN,
	OPT_FORCE,
};

static int parse_id(const char *s, uint64_t *id)
{
	if (cli_parse_u64(s, id) || *id > THIN_MAX_DEV_ID) {
		cli_error("invalid device id '%s' (0 to %u)", s, THIN_MAX_DEV_ID);
		return -EINVAL;
	}
	return 0;
}

static int merge_opt(void *ctx, int opt, const char *arg)
{
	struct opts *o = ctx;

	switch (opt) {
	case 'm':
		o->metadata_snap = true;
		break;
	case OPT_ORIGIN:
		o->have_origin = true;
		return parse_id(arg, &o->m.origin) ? 1 : 0;
	case OPT_SNAPSHOT:
		o->have_snapshot = true;
		return parse_id(arg, &o->m.snapshot) ? 1 : 0;
	case OPT_REBASE:
		o->m.rebase = true;
		break;
	case OPT_IN_PLACE:
		o->in_place = true;
		break;
	case OPT_MERGED_ONLY:
		o->merged_only = true;
		break;
	case OPT_DRY_RUN:
		o->dry_run = true;
		break;
	case OPT_FORCE:
		o->force = true;
		break;
	default:
		return cli_bad_usage(usage);
	}
	return 0;
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		CLI_IO_OPTIONS,
		{ "metadata-snap", no_argument, NULL, 'm' },
		{ "origin", required_argument, NULL, OPT_ORIGIN },
		{ "snapshot", required_argument, NULL, OPT_SNAPSHOT },
		{ "rebase", no_argument, NULL, OPT_REBASE },
		{ "in-place", no_argument, NULL, OPT_IN_PLACE },
		{ "merged-only", no_argument, NULL, OPT_MERGED_ONLY },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		CLI_IO_ENGINE_OPTION,
		{ "force", no_argument, NULL, OPT_FORCE },
		{ NULL, 0, NULL, 0 },
	};
	const struct cli_io_spec spec = {
		.longopts = longopts, .shortopts = "hVi:o:qm", .usage = usage,
		.flags = CLI_IO_OUTPUT_OPTIONAL, .extra = merge_opt, .ctx = o,
	};
	struct cli_io_args a;
	int r;

	r = cli_parse_io(argc, argv, &spec, &a);
	if (r >= 0)
		return r;
	o->input = a.input;
	o->output = a.output;
	o->quiet = a.quiet;
	o->engine = a.engine;
	o->engine_given = a.engine_given;
	if (!o->have_origin) {
		cli_error("no origin device given (--origin)");
		usage(stderr);
		return 1;
	}
	if (o->in_place) {
		const char *why = NULL;

		if (o->output)
			why = "--in-place writes the input: it takes no output (-o)";
		else if (o->metadata_snap)
			why = "--in-place needs the pool inactive: it cannot read a metadata snapshot (-m)";
		else if (o->merged_only)
			why = "--in-place keeps the pool: it cannot be combined with --merged-only";
		else if (!o->have_snapshot)
			why = "--in-place needs --snapshot";
		else if (o->force)
			why = "--in-place never merges damaged metadata: --force is for a merge to an output";
		if (why) {
			cli_error("%s", why);
			return 1;
		}
	} else if (!o->output && !o->dry_run) {
		fprintf(stderr, "No output file provided.\n");
		usage(stderr);
		return 1;
	}
	if (!o->have_snapshot)
		o->m.snapshot = o->m.origin;
	return -1;
}

int thin_merge_main(int argc, char **argv)
{
	struct opts o = { .engine = IO_ENGINE_SYNC };
	struct thin_metadata *md = NULL;
	struct thin_device od, sd;
	struct merge_stats st;
	struct pd_err err = { 0 };
	int r;

	r = parse(argc, argv, &o);
	if (r >= 0)
		return r;
	if (cli_check_input(o.input, NULL))
		return 1;

	/*
	 * Read and check everything involved before anything is written.  A
	 * full-output mode reads the whole input anyway: it refuses input
	 * that fails thin_check's full check (the held root's under -m), as
	 * its damage would go on into the output.  --in-place checks what it
	 * reads and changes instead (merge_validate_in_place()), at a cost
	 * that follows S.
	 */
	bool full = !o.in_place && !o.dry_run;
	struct check_report cr;
	int checked = 0;

	r = open_input(&o, o.metadata_snap, &md, &err);
	if (!r)
		r = check_devices(md, &o, !o.in_place, &od, &sd, &err);
	if (!r && full) {
		/* the check opens the input itself (exclusively, as thin_check does) */
		thin_metadata_close(md);
		md = NULL;
		checked = full_check(o.input, &o, o.metadata_snap, &cr);
		r = open_input(&o, o.metadata_snap, &md, &err);
	}
	if (r) {
		cli_error("%s", err.msg);
		thin_metadata_close(md);
		return 1;
	}
	if (checked) {
		char parts[1024];

		damaged_parts(&cr, parts, sizeof(parts));
		if (!o.force) {
			cli_error("%s: the input fails thin_check, and its damage would go into the output: %s (run thin_check; --force merges anyway)",
				  o.input, parts);
			thin_metadata_close(md);
			return 1;
		}
		fprintf(stderr, "%s: warning: --force: merging damaged input; damaged: %s\n",
			prog_name, parts);
	}
	if (o.metadata_snap && !o.quiet)
		fprintf(stderr, "%s: warning: reading the metadata snapshot: writes to the pool after it was taken are not in the output\n",
			prog_name);
	if (o.dry_run) {
		r = dry_run(&o, md, &od, &sd);
		thin_metadata_close(md);
		return r;
	}

	if (o.in_place) {
		/* the read-only view goes before the device is opened for writing */
		thin_metadata_close(md);
		md = NULL;
		r = merge_in_place(&o, &st, &err);
	} else if (o.merged_only) {
		r = merge_alone(&o, md, &od, &sd, &st, &err);
	} else if (o.metadata_snap) {
		r = merge_from_snapshot(&o, md, &od, &sd, &st, &err);
	} else {
		r = merge_to_copy(&o, md, &od, &sd, &st, &err);
	}
	thin_metadata_close(md);
	if (r) {
		cli_error("%s", err.msg);
		return 1;
	}
	/* never exit 0 having written metadata thin_check rejects */
	if (checked && full_check(o.output, &o, false, &cr)) {
		char parts[1024];

		damaged_parts(&cr, parts, sizeof(parts));
		cli_error("%s: the output was written but fails thin_check, as the input did: %s",
			  o.output, parts);
		return 1;
	}
	return 0;
}
