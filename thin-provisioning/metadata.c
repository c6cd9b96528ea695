/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "metadata.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/*----------------------------------------------------------------
 * Opening
 *--------------------------------------------------------------*/

static int read_sb(struct thin_metadata *md, uint64_t location, struct thin_sb *sb,
		   struct pd_err *err)
{
	struct bm_block *blk;
	int r;

	r = bm_read_lock(md->bm, location, &thin_sb_validator, &blk, err);
	if (r)
		return r;
	thin_sb_decode(bm_block_data(blk), location, sb);
	bm_unlock(blk);
	return 0;
}

static int first_block_checks(struct thin_metadata *md, struct pd_err *err)
{
	struct bm_block *blk;
	bool xml, zero = true;
	const uint8_t *p;
	int r;

	r = bm_read_lock(md->bm, 0, NULL, &blk, err);
	if (r)
		return r;
	p = bm_block_data(blk);
	xml = block_looks_like_xml(p, MD_BLOCK_SIZE);
	for (unsigned i = 0; i < MD_BLOCK_SIZE && zero; i++)
		zero = !p[i];
	bm_unlock(blk);
	bm_forget(md->bm, 0);
	if (xml)
		return pd_err_set(err, -EPROTO,
				  "This looks like XML.  This tool only supports the binary metadata format.");
	if (zero)
		return pd_err_set(err, -EILSEQ,
				  "superblock is corrupt: the superblock is all zeroes (no metadata here?)");
	return 0;
}

int thin_metadata_open_device(const char *path, const struct thin_open_opts *o,
			      struct thin_metadata **out, struct pd_err *err)
{
	struct thin_metadata *md;
	int r;

	md = calloc(1, sizeof(*md));
	if (!md)
		return pd_err_set(err, -ENOMEM, "out of memory");
	r = io_engine_open(path, o->engine, o->io_flags, &md->io, err);
	if (r)
		goto bad;
	if (md->io->nr_blocks < 1) {
		r = pd_err_set(err, -EFBIG,
			       "Metadata device/file too small.  Is this binary metadata?");
		goto bad;
	}
	r = bm_create(md->io, o->cache_blocks ? o->cache_blocks : BM_DEFAULT_CACHE_BLOCKS,
		      &md->bm, err);
	if (r)
		goto bad;
	*out = md;
	return 0;

bad:
	thin_metadata_close(md);
	return r;
}

int thin_metadata_open(const char *path, const struct thin_open_opts *o,
		       struct thin_metadata **out, struct pd_err *err)
{
	struct thin_metadata *md;
	int r;

	r = thin_metadata_open_device(path, o, &md, err);
	if (r)
		return r;
	r = first_block_checks(md, err);
	if (r)
		goto bad;
	r = read_sb(md, 0, &md->live, err);
	if (r)
		goto bad;
	r = thin_sb_check_fields(&md->live, md->io->nr_blocks, false, err);
	if (r)
		goto bad;
	sm_root_decode(md->live.data_sm_root, &md->data_sm);
	sm_root_decode(md->live.metadata_sm_root, &md->metadata_sm);
	md->sb = md->live;

	if (o->metadata_snap) {
		uint64_t b = o->snap_block ? o->snap_block : md->live.metadata_snap;

		if (!md->live.metadata_snap) {
			r = pd_err_set(err, -ENODATA, "no current metadata snap");
			goto bad;
		}
		if (b != md->live.metadata_snap) {
			r = pd_err_set(err, -EINVAL,
				       "metadata snapshot does not match that in superblock");
			goto bad;
		}
		if (b >= md->io->nr_blocks) {
			r = pd_err_set(err, -EILSEQ,
				       "metadata snapshot block %" PRIu64 " is outside the metadata device",
				       b);
			goto bad;
		}
		r = read_sb(md, b, &md->sb, err);
		if (r) {
			pd_err_prefix(err, "metadata snapshot");
			goto bad;
		}
		r = thin_sb_check_fields(&md->sb, md->io->nr_blocks, true, err);
		if (r)
			goto bad;
		/* the held copy's space map roots are zero: use the live ones */
		memcpy(md->sb.data_sm_root, md->live.data_sm_root, SM_ROOT_BLOB_SIZE);
		md->held = true;
	}
	*out = md;
	return 0;

bad:
	thin_metadata_close(md);
	return r;
}

void thin_metadata_close(struct thin_metadata *md)
{
	if (!md)
		return;
	bm_destroy(md->bm);
	io_engine_destroy(md->io);
	free(md);
}

/*----------------------------------------------------------------
 * Devices
 *--------------------------------------------------------------*/

void thin_details_decode(const void *value, struct thin_device *dev)
{
	const struct thin_details_disk *d = value;

	dev->mapped_blocks = le64_to_cpu(d->mapped_blocks);
	dev->transaction_id = le64_to_cpu(d->transaction_id);
	dev->creation_time = le32_to_cpu(d->creation_time);
	dev->snapshotted_time = le32_to_cpu(d->snapshotted_time);
}

void thin_details_encode(const struct thin_device *dev, void *value)
{
	struct thin_details_disk d = {
		.mapped_blocks = cpu_to_le64(dev->mapped_blocks),
		.transaction_id = cpu_to_le64(dev->transaction_id),
		.creation_time = cpu_to_le32(dev->creation_time),
		.snapshotted_time = cpu_to_le32(dev->snapshotted_time),
	};

	memcpy(value, &d, sizeof(d));
}

struct thin_dev_iter {
	struct thin_metadata *md;
	struct btree_cursor *details, *top;
};

/* The cursor's current entry; *end past its last one. */
static int peek(struct btree_cursor *c, uint64_t *key, const void **value, bool *end,
		const char *tree, struct pd_err *err)
{
	int r = btree_cursor_peek_entry(c, key, value, err);

	*end = r == -ENODATA;
	if (*end)
		return 0;
	if (r)
		pd_err_prefix(err, "%s", tree);
	return r;
}

int thin_dev_iter_create(struct thin_metadata *md, struct thin_dev_iter **out,
			 struct pd_err *err)
{
	struct thin_dev_iter *it = calloc(1, sizeof(*it));
	int r;

	if (!it)
		return pd_err_set(err, -ENOMEM, "out of memory");
	it->md = md;
	r = btree_cursor_create(md->bm, md->sb.device_details_root,
				THIN_DETAILS_VALUE_SIZE, &it->details, err);
	if (!r)
		r = btree_cursor_create(md->bm, md->sb.data_mapping_root,
					THIN_MAPPING_VALUE_SIZE, &it->top, err);
	if (r) {
		thin_dev_iter_destroy(it);
		return r;
	}
	*out = it;
	return 0;
}

int thin_dev_iter_next(struct thin_dev_iter *it, struct thin_device *dev,
		       struct pd_err *err)
{
	const void *details, *root;
	uint64_t dk = 0, tk = 0;
	bool dend, tend;
	int r;

	r = peek(it->details, &dk, &details, &dend, "device details tree", err);
	if (!r)
		r = peek(it->top, &tk, &root, &tend, "mapping tree", err);
	if (r)
		return r;
	if (dend && tend)
		return -ENODATA;
	if (dend || (!tend && tk < dk))
		return pd_err_set(err, -EILSEQ,
				  "mappings present for device %" PRIu64 ", but it isn't present in device tree",
				  tk);
	if (tend || dk < tk)
		return pd_err_set(err, -EILSEQ,
				  "no mappings for device %" PRIu64,
				  dk);

	memset(dev, 0, sizeof(*dev));
	dev->dev_id = dk;
	thin_details_decode(details, dev);
	dev->root = load_le64(root);
	btree_cursor_next_entry(it->details);
	btree_cursor_next_entry(it->top);
	return 0;
}

void thin_dev_iter_destroy(struct thin_dev_iter *it)
{
	if (!it)
		return;
	btree_cursor_destroy(it->details);
	btree_cursor_destroy(it->top);
	free(it);
}

int thin_lookup_device(struct bm *bm, uint64_t details_root, uint64_t mapping_root,
		       uint64_t dev_id, struct thin_device *dev, struct pd_err *err)
{
	uint8_t details[THIN_DETAILS_VALUE_SIZE];
	uint8_t root[8];
	int r;

	memset(dev, 0, sizeof(*dev));
	r = btree_lookup(bm, details_root, THIN_DETAILS_VALUE_SIZE, dev_id, details, err);
	if (r == -ENODATA)
		return pd_err_set(err, r, "device %" PRIu64 " not found",
				  dev_id);
	if (r)
		return r;
	r = btree_lookup(bm, mapping_root, THIN_MAPPING_VALUE_SIZE, dev_id, root, err);
	if (r == -ENODATA)
		return pd_err_set(err, -EILSEQ,
				  "device %" PRIu64 " is in the details tree but has no mapping tree",
				  dev_id);
	if (r)
		return r;
	dev->dev_id = dev_id;
	thin_details_decode(details, dev);
	dev->root = load_le64(root);
	return 0;
}

int thin_find_device(struct thin_metadata *md, uint64_t dev_id,
		     struct thin_device *dev, struct pd_err *err)
{
	return thin_lookup_device(md->bm, md->sb.device_details_root,
				  md->sb.data_mapping_root, dev_id, dev, err);
}

int thin_count_mappings(struct thin_metadata *md, uint64_t root, uint64_t *count,
			struct pd_err *err)
{
	struct btree_cursor *c;
	uint64_t n = 0;
	int r;

	r = btree_cursor_create(md->bm, root, THIN_MAPPING_VALUE_SIZE, &c, err);
	if (r)
		return r;
	while (!(r = btree_cursor_next_leaf(c, err)))
		n += btree_cursor_nr(c);
	btree_cursor_destroy(c);
	if (r != -ENODATA)
		return r;
	*count = n;
	return 0;
}
