/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef THIN_EMITTER_H
#define THIN_EMITTER_H

/*
 * The emitter interface decouples walking metadata from what is made of
 * it: thin_dump walks metadata into an XML or human-readable emitter;
 * thin_restore parses XML into an emitter that writes metadata.
 *
 * Calls come in this order: begin_superblock, then for each device
 * begin_device, its mapping runs in ascending origin order, end_device;
 * then end_superblock.  Each returns 0 or a negative errno.
 *
 * Shared sections (the <def>/<ref> of 1.x XML): between devices (never
 * inside one) may come begin_def(name), the section's runs in ascending
 * origin order, end_def.  Inside a device, ref(name) stands for all the
 * runs of a section already defined, at that point: the device's origins
 * keep ascending across it.  A def's runs carry their own (absolute)
 * origins; several devices may ref the same def.  An emitter that leaves
 * begin_def NULL never sees any of this: whoever drives it (the XML
 * parser) expands each ref into the def's runs.  An emitter sets all three
 * of begin_def, end_def and ref, or none.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct emit_superblock {
	uint8_t uuid[16];		/* printable bytes, NUL padded */
	uint32_t time;
	uint64_t trans_id;
	uint32_t flags;
	uint32_t version;
	uint32_t data_block_size;
	uint64_t nr_data_blocks;
	bool has_metadata_snap;
	uint64_t metadata_snap;
	/*
	 * Set by the XML parser when the input has the attribute (absent:
	 * the field is 0).  thin_dump leaves them false; it knows both.
	 */
	bool has_flags;
	bool has_version;
};

struct emit_device {
	uint64_t dev_id;
	uint64_t mapped_blocks;
	uint64_t transaction_id;
	uint32_t creation_time;
	uint32_t snap_time;
};

struct emitter;

struct emitter_ops {
	int (*begin_superblock)(struct emitter *e, const struct emit_superblock *sb);
	int (*end_superblock)(struct emitter *e);
	int (*begin_device)(struct emitter *e, const struct emit_device *dev);
	int (*end_device)(struct emitter *e);
	/* len consecutive mappings origin+i -> data+i, all at time; len >= 1 */
	int (*map_run)(struct emitter *e, uint64_t origin, uint64_t data,
		       uint64_t len, uint32_t time);
	void (*destroy)(struct emitter *e);

	/* Shared sections; NULL: not supported, refs arrive expanded. */
	int (*begin_def)(struct emitter *e, const char *name);
	int (*end_def)(struct emitter *e);
	int (*ref)(struct emitter *e, const char *name);
};

struct emitter {
	const struct emitter_ops *ops;
};

/* XML of v0.9 thin_dump, and its human-readable format, to out. */
int emitter_xml_create(FILE *out, struct emitter **e);
int emitter_human_create(FILE *out, struct emitter **e);
void emitter_destroy(struct emitter *e);	/* accepts NULL */

/*
 * Coalesces single mappings into runs the way thin_dump does: a mapping
 * extends the run iff origin and data both follow on and the time is the
 * same.
 */
struct emit_run {
	struct emitter *e;
	bool have;
	uint64_t origin, data, len;
	uint32_t time;
};

static inline void emit_run_init(struct emit_run *r, struct emitter *e)
{
	r->e = e;
	r->have = false;
	r->origin = r->data = r->len = 0;
	r->time = 0;
}

int emit_run_flush(struct emit_run *r);

static inline int emit_run_add(struct emit_run *r, uint64_t origin, uint64_t data,
			       uint32_t time)
{
	if (r->have && origin == r->origin + r->len && data == r->data + r->len &&
	    time == r->time) {
		r->len++;
		return 0;
	}
	if (r->have) {
		int ret = emit_run_flush(r);

		if (ret)
			return ret;
	}
	r->have = true;
	r->origin = origin;
	r->data = data;
	r->len = 1;
	r->time = time;
	return 0;
}

/*
 * Superblock overrides (superblock.h) as a decorator: an emitter that
 * passes every call on to inner, begin_superblock with the values ov sets
 * in place of those given.  It takes shared sections if inner does.  The
 * caller provides the storage and keeps inner and ov alive; destroying
 * the decorator does not destroy inner.
 */
struct sb_overrides;
struct sb_override_emitter {
	struct emitter e;
	struct emitter *inner;
	const struct sb_overrides *ov;
};

/* Returns the decorator's emitter (&d->e). */
struct emitter *sb_override_emitter_init(struct sb_override_emitter *d, struct emitter *inner,
					 const struct sb_overrides *ov);

/*
 * sb as the decorator will pass it on: for a driver that checks the
 * superblock before it begins (thin_restore's parser, salvage).
 */
void sb_override_emitter_apply(const struct sb_override_emitter *d,
			       struct emit_superblock *sb);

#endif
