/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "ref-check.h"
#include "count-map.h"
#include "space-map-disk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ref_check_init(struct ref_check *rc, uint64_t nr_blocks)
{
	memset(rc, 0, sizeof(*rc));
	rc->nr_blocks = nr_blocks;
	if (cm_create(nr_blocks, &rc->expected))
		return -ENOMEM;
	rc->seen = calloc(nr_blocks / 8 + 1, 1);
	if (!rc->seen) {
		cm_destroy(rc->expected);
		return -ENOMEM;
	}
	return 0;
}

void ref_check_exit(struct ref_check *rc)
{
	cm_destroy(rc->expected);
	free(rc->seen);
	free(rc->leaked);
	memset(rc, 0, sizeof(*rc));
}

void ref_check_problem(struct ref_check *rc, const char *fmt, ...)
{
	va_list ap;

	if (rc->problems++)
		return;
	va_start(ap, fmt);
	vsnprintf(rc->first, sizeof(rc->first), fmt, ap);
	va_end(ap);
}

int ref_check_ref(struct ref_check *rc, uint64_t b)
{
	if (b >= rc->nr_blocks) {
		ref_check_problem(rc, "reference to metadata block %" PRIu64
				  " beyond the end of the metadata (%" PRIu64 " blocks)",
				  b, rc->nr_blocks);
		return 0;
	}
	return cm_inc(rc->expected, b);
}

int ref_check_node(struct ref_check *rc, const struct btree_node_info *n)
{
	uint8_t bit = (uint8_t)(1u << (n->block & 7));

	if (n->block < rc->nr_blocks) {
		if (rc->seen[n->block >> 3] & bit)
			return BTREE_WALK_SKIP;
		rc->seen[n->block >> 3] |= bit;
	}
	if (!n->leaf)
		for (uint32_t i = 0; i < n->nr_entries; i++) {
			int r = ref_check_ref(rc, load_le64(node_value_c(n->data, i, 8)));

			if (r)
				return r;
		}
	return 0;
}

static void sm_damage(void *ctx, const char *msg)
{
	ref_check_problem(ctx, "metadata space map: %s", msg);
}

static int sm_ref(void *ctx, uint64_t b)
{
	return ref_check_ref(ctx, b);
}

static int sm_node(void *ctx, const struct btree_node_info *n)
{
	return ref_check_node(ctx, n);
}

int ref_check_compare(struct ref_check *rc, struct bm *bm, const void *root_blob)
{
	struct sm_load_hooks h = { .ctx = rc, .node = sm_node, .ref = sm_ref, .damage = sm_damage };
	struct count_map *ondisk;
	struct sm_root smr;
	struct pd_err err;
	uint64_t first_bad = 0;
	int r;

	sm_root_decode(root_blob, &smr);
	if (cm_create(smr.nr_blocks, &ondisk))
		return -ENOMEM;
	r = sm_disk_load(bm, &smr, true, ondisk, &h, &err);
	if (r < 0) {
		cm_destroy(ondisk);
		if (r == -ENOMEM)
			return r;
		ref_check_problem(rc, "metadata space map: %s", err.msg);
		return 0;
	}
	if (rc->problems) {
		/* counts are not worth comparing after damage */
		cm_destroy(ondisk);
		return 0;
	}
	for (uint64_t b = 0; b < rc->nr_blocks && b < smr.nr_blocks; b++) {
		uint32_t e = cm_get(rc->expected, b), a = cm_get(ondisk, b);

		if (e == a)
			continue;
		if (!e) {
			uint64_t *n = realloc(rc->leaked, sizeof(*n) * (rc->nr_leaked + 1));

			if (!n) {
				cm_destroy(ondisk);
				return -ENOMEM;
			}
			rc->leaked = n;
			rc->leaked[rc->nr_leaked++] = b;
		} else if (!rc->nr_bad++) {
			first_bad = b;
		}
	}
	cm_destroy(ondisk);
	if (rc->nr_bad)
		ref_check_problem(rc, "%" PRIu64 " metadata blocks have bad reference counts (first: block %" PRIu64 ")",
				  rc->nr_bad, first_bad);
	return 0;
}
