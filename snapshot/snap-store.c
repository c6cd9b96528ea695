/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "snap-store.h"
#include "snap-disk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/*----------------------------------------------------------------*/

void snap_header_decode(const void *block, struct snap_header *h)
{
	struct snap_disk_header d;

	memcpy(&d, block, sizeof(d));
	h->magic = le32_to_cpu(d.magic);
	h->valid = le32_to_cpu(d.valid);
	h->version = le32_to_cpu(d.version);
	h->chunk_sectors = le32_to_cpu(d.chunk_size);
}

void snap_geometry_init(struct snap_geometry *g, uint32_t chunk_sectors, uint64_t cow_bytes)
{
	g->chunk_sectors = chunk_sectors;
	g->chunk_bytes = (uint64_t)chunk_sectors << SNAP_SECTOR_SHIFT;
	g->blocks_per_chunk = (uint32_t)(g->chunk_bytes / MD_BLOCK_SIZE);
	g->exceptions_per_area = g->chunk_bytes / sizeof(struct snap_disk_exception);
	g->cow_bytes = cow_bytes;
	g->cow_chunks = g->chunk_bytes ? cow_bytes / g->chunk_bytes : 0;
}

int snap_store_open(const char *path, enum io_engine_kind kind, unsigned flags,
		    struct snap_store **out, struct pd_err *err)
{
	struct snap_store *s;
	void *block;
	int r;

	if (flags & IO_OPEN_WRITE)
		return pd_err_set(err, -EINVAL, "%s: the COW store is only ever read", path);
	s = calloc(1, sizeof(*s));
	block = io_alloc_block();
	if (!s || !block) {
		free(s);
		free(block);
		return pd_err_set(err, -ENOMEM, "out of memory");
	}
	s->path = path;
	r = io_engine_open(path, kind, flags, &s->io, err);
	if (r)
		goto bad;
	if (s->io->nr_blocks < 1) {
		r = pd_err_set(err, -ENOSPC,
			       "%s: too small to be a snapshot store (%" PRIu64
			       " bytes; the header alone takes 4096)", path, s->io->size_bytes);
		goto bad;
	}
	r = io_read_block(s->io, 0, block);
	if (r) {
		pd_err_set(err, r, "%s: cannot read the header: %s", path, strerror(-r));
		goto bad;
	}
	snap_header_decode(block, &s->hdr);
	free(block);
	*out = s;
	return 0;

bad:
	free(block);
	snap_store_close(s);
	return r;
}

void snap_store_close(struct snap_store *s)
{
	if (!s)
		return;
	io_engine_destroy(s->io);
	free(s);
}

int snap_header_check(struct snap_store *s, struct pd_err *err)
{
	const struct snap_header *h = &s->hdr;
	uint32_t cs = h->chunk_sectors;

	if (h->magic == 0)
		return pd_err_set(err, -ENODATA,
				  "%s: no snapshot store here (magic 0): a store never activated, a transient (N) store, or not a COW device",
				  s->path);
	if (h->magic != SNAP_MAGIC)
		return pd_err_set(err, -EILSEQ,
				  "%s: not a persistent snapshot store (bad magic 0x%08" PRIx32
				  ", expected 0x%08x)", s->path, h->magic, SNAP_MAGIC);
	if (h->version != SNAP_VERSION)
		return pd_err_set(err, -EPROTO,
				  "%s: unsupported snapshot store version %" PRIu32 " (only %u is known)",
				  s->path, h->version, SNAP_VERSION);
	if (cs < SNAP_MIN_CHUNK_SECTORS || cs > SNAP_MAX_CHUNK_SECTORS || (cs & (cs - 1)))
		return pd_err_set(err, -EINVAL,
				  "%s: bad chunk size %" PRIu32
				  " sectors (a power of two from %u to %u is required)",
				  s->path, cs, SNAP_MIN_CHUNK_SECTORS, SNAP_MAX_CHUNK_SECTORS);
	snap_geometry_init(&s->geo, cs, s->io->size_bytes);
	if (s->geo.cow_chunks < 2)
		return pd_err_set(err, -ENOSPC,
				  "%s: too small for its header and first metadata area (%" PRIu64
				  " bytes, chunk size %" PRIu64 " bytes)",
				  s->path, s->geo.cow_bytes, s->geo.chunk_bytes);
	return 0;
}

/*----------------------------------------------------------------
 * The table
 *--------------------------------------------------------------*/

/* Reads len bytes (a multiple of 4 KiB, at most SNAP_IO_BYTES) at byte offset off. */
static int read_piece(struct snap_store *s, uint64_t off, uint64_t len, char *buf,
		      struct io_req *reqs, struct pd_err *err)
{
	unsigned n = (unsigned)(len / MD_BLOCK_SIZE);
	int r;

	for (unsigned i = 0; i < n; i++) {
		reqs[i].block = (off >> MD_BLOCK_SHIFT) + i;
		reqs[i].buf = buf + (size_t)i * MD_BLOCK_SIZE;
		reqs[i].result = 0;
		reqs[i].nr_blocks = 0;
	}
	r = io_read_many(s->io, reqs, n);
	if (r)
		return pd_err_set(err, r, "%s: cannot read the exception table at byte %" PRIu64
				  ": %s", s->path, off, strerror(-r));
	return 0;
}

int snap_walk(struct snap_store *s, snap_visit_fn visit, void *ctx,
	      struct snap_table_info *info, struct pd_err *err)
{
	const struct snap_geometry *g = &s->geo;
	uint64_t piece_max = g->chunk_bytes < SNAP_IO_BYTES ? g->chunk_bytes : SNAP_IO_BYTES;
	struct io_req *reqs = calloc(IO_MAX_BATCH, sizeof(*reqs));
	char *buf = NULL;
	uint64_t index = 0;
	int r = 0;

	memset(info, 0, sizeof(*info));
	if (!reqs || posix_memalign((void **)&buf, MD_BLOCK_SIZE, piece_max)) {
		free(reqs);
		return pd_err_set(err, -ENOMEM, "out of memory");
	}

	for (uint64_t area = 0;; area++) {
		uint64_t chunk = snap_area_chunk(g, area);
		uint64_t base, i = 0;
		bool ended = false;

		if (chunk >= g->cow_chunks) {
			info->end = SNAP_END_DEVICE;
			info->end_area = area;
			info->end_index = 0;
			break;
		}
		info->nr_areas++;
		base = chunk * g->chunk_bytes;
		for (uint64_t off = 0; off < g->chunk_bytes; off += piece_max) {
			uint64_t n = piece_max / sizeof(struct snap_disk_exception);

			r = read_piece(s, base + off, piece_max, buf, reqs, err);
			if (r)
				goto out;
			for (uint64_t k = 0; k < n; k++, i++) {
				const struct snap_disk_exception *de =
					(const struct snap_disk_exception *)(buf + k * sizeof(*de));
				struct snap_entry e = {
					.old_chunk = le64_to_cpu(de->old_chunk),
					.new_chunk = le64_to_cpu(de->new_chunk),
				};

				if (ended) {
					if (e.old_chunk || e.new_chunk)
						info->after_end++;
					continue;
				}
				if (!e.new_chunk) {
					ended = true;
					info->end = SNAP_END_MARKER;
					info->end_area = area;
					info->end_index = i;
					continue;
				}
				info->nr_entries++;
				r = visit ? visit(ctx, index, &e) : 0;
				index++;
				if (r)
					goto out;
			}
		}
		if (ended)
			break;
	}
out:
	free(buf);
	free(reqs);
	return r;
}
