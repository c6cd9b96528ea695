/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "superblock.h"
#include "persistent-data/checksum.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

bool thin_sb_csum_ok(const void *block, uint32_t *wanted)
{
	uint32_t want = block_csum(block, CSUM_XOR_SUPERBLOCK);

	if (wanted)
		*wanted = want;
	return want == block_stored_csum(block);
}

static int sb_check(const struct bm_validator *v, const void *data,
		    uint64_t location, struct pd_err *err)
{
	const struct thin_sb_disk *d = data;
	uint32_t want;

	(void)v;
	if (le64_to_cpu(d->blocknr) != location)
		return pd_err_set(err, -ENOTBLK,
				  "superblock is corrupt: bad block nr in superblock (block %" PRIu64 " claims %" PRIu64 ")",
				  location, le64_to_cpu(d->blocknr));
	/* the kernel's order: location, magic, checksum */
	if (le64_to_cpu(d->magic) != THIN_SB_MAGIC)
		return pd_err_set(err, -EILSEQ,
				  "superblock is corrupt: bad magic number %" PRIu64,
				  le64_to_cpu(d->magic));
	if (!thin_sb_csum_ok(data, &want))
		return pd_err_set(err, -EILSEQ,
				  "superblock is corrupt: bad checksum in superblock, wanted %u",
				  want);
	return 0;
}

static void sb_prepare(const struct bm_validator *v, void *data, uint64_t location)
{
	struct thin_sb_disk *d = data;

	(void)v;
	d->blocknr = cpu_to_le64(location);
	block_set_csum(data, CSUM_XOR_SUPERBLOCK);
}

const struct bm_validator thin_sb_validator = {
	.name = "superblock",
	.check = sb_check,
	.prepare_for_write = sb_prepare,
};

void thin_sb_decode(const void *block, uint64_t location, struct thin_sb *sb)
{
	const struct thin_sb_disk *d = block;

	sb->location = location;
	sb->flags = le32_to_cpu(d->flags);
	memcpy(sb->uuid, d->uuid, sizeof(sb->uuid));
	sb->magic = le64_to_cpu(d->magic);
	sb->version = le32_to_cpu(d->version);
	sb->time = le32_to_cpu(d->time);
	sb->trans_id = le64_to_cpu(d->trans_id);
	sb->metadata_snap = le64_to_cpu(d->metadata_snap);
	memcpy(sb->data_sm_root, d->data_sm_root, SM_ROOT_BLOB_SIZE);
	memcpy(sb->metadata_sm_root, d->metadata_sm_root, SM_ROOT_BLOB_SIZE);
	sb->data_mapping_root = le64_to_cpu(d->data_mapping_root);
	sb->device_details_root = le64_to_cpu(d->device_details_root);
	sb->data_block_size = le32_to_cpu(d->data_block_size);
	sb->metadata_block_size = le32_to_cpu(d->metadata_block_size);
	sb->metadata_nr_blocks = le64_to_cpu(d->metadata_nr_blocks);
	sb->compat_flags = le32_to_cpu(d->compat_flags);
	sb->compat_ro_flags = le32_to_cpu(d->compat_ro_flags);
	sb->incompat_flags = le32_to_cpu(d->incompat_flags);
}

void thin_sb_encode(const struct thin_sb *sb, void *block)
{
	struct thin_sb_disk *d = block;

	memset(block, 0, MD_BLOCK_SIZE);
	d->flags = cpu_to_le32(sb->flags);
	d->blocknr = cpu_to_le64(sb->location);
	memcpy(d->uuid, sb->uuid, sizeof(d->uuid));
	d->magic = cpu_to_le64(THIN_SB_MAGIC);
	d->version = cpu_to_le32(sb->version);
	d->time = cpu_to_le32(sb->time);
	d->trans_id = cpu_to_le64(sb->trans_id);
	d->metadata_snap = cpu_to_le64(sb->metadata_snap);
	memcpy(d->data_sm_root, sb->data_sm_root, SM_ROOT_BLOB_SIZE);
	memcpy(d->metadata_sm_root, sb->metadata_sm_root, SM_ROOT_BLOB_SIZE);
	d->data_mapping_root = cpu_to_le64(sb->data_mapping_root);
	d->device_details_root = cpu_to_le64(sb->device_details_root);
	d->data_block_size = cpu_to_le32(sb->data_block_size);
	d->metadata_block_size = cpu_to_le32(sb->metadata_block_size);
	d->metadata_nr_blocks = cpu_to_le64(sb->metadata_nr_blocks);
	d->compat_flags = cpu_to_le32(sb->compat_flags);
	d->compat_ro_flags = cpu_to_le32(sb->compat_ro_flags);
	d->incompat_flags = cpu_to_le32(sb->incompat_flags);
	block_set_csum(block, CSUM_XOR_SUPERBLOCK);
}

int thin_sb_check_fields(const struct thin_sb *sb, uint64_t nr_md_blocks,
			 bool held_root, struct pd_err *err)
{
	if (!sb->data_mapping_root || sb->data_mapping_root >= nr_md_blocks)
		return pd_err_set(err, -EILSEQ,
				  "superblock is corrupt: data mapping root %" PRIu64 " is outside the metadata device (%" PRIu64 " blocks)",
				  sb->data_mapping_root, nr_md_blocks);
	if (!sb->device_details_root || sb->device_details_root >= nr_md_blocks)
		return pd_err_set(err, -EILSEQ,
				  "superblock is corrupt: device details root %" PRIu64 " is outside the metadata device (%" PRIu64 " blocks)",
				  sb->device_details_root, nr_md_blocks);
	if (!held_root) {
		struct sm_root md, data;

		sm_root_decode(sb->metadata_sm_root, &md);
		sm_root_decode(sb->data_sm_root, &data);
		if (!md.bitmap_root || md.bitmap_root >= nr_md_blocks ||
		    !md.ref_count_root || md.ref_count_root >= nr_md_blocks)
			return pd_err_set(err, -EILSEQ,
					  "superblock is corrupt: metadata space map root points outside the metadata device");
		if (!data.bitmap_root || data.bitmap_root >= nr_md_blocks ||
		    !data.ref_count_root || data.ref_count_root >= nr_md_blocks)
			return pd_err_set(err, -EILSEQ,
					  "superblock is corrupt: data space map root points outside the metadata device");
		if (md.nr_blocks > nr_md_blocks)
			return pd_err_set(err, -EILSEQ,
					  "metadata device (%" PRIu64 " blocks) too small: expected %" PRIu64,
					  nr_md_blocks,
					  md.nr_blocks);
		if (!sm_size_fits(data.nr_blocks, nr_md_blocks))
			return pd_err_set(err, -EILSEQ,
					  "superblock is corrupt: data space map of %" PRIu64 " blocks needs more bitmaps than the metadata device has blocks (%" PRIu64 ")",
					  data.nr_blocks,
					  nr_md_blocks);
	}
	return 0;
}

bool block_looks_like_xml(const void *block, size_t len)
{
	static const char *const starts[] = { "<superblock", "<?xml", "<!DOCTYPE" };
	const char *p = block;
	size_t i = 0;

	while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	for (unsigned k = 0; k < 3; k++) {
		size_t n = strlen(starts[k]);

		if (len - i >= n && !memcmp(p + i, starts[k], n))
			return true;
	}
	return false;
}
