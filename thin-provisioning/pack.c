/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "thin-provisioning/pack.h"
#include "persistent-data/checksum.h"
#include "persistent-data/crc32c.h"
#include "persistent-data/endian.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/*----------------------------------------------------------------
 * Block types: the checksum's xor constant of each kind 1.x packs
 *--------------------------------------------------------------*/

bool pack_block_is_metadata(const void *block)
{
	static const uint32_t kinds[] = {
		160774u,	/* thin superblock */
		9031977u,	/* cache superblock */
		146538381u,	/* era superblock */
		121107u,	/* btree node */
		240779u,	/* space map bitmap */
		160478u,	/* space map index */
		595846735u,	/* array block */
	};
	uint32_t raw = crc32c(0xFFFFFFFFu, (const uint8_t *)block + 4, MD_BLOCK_SIZE - 4);
	uint32_t stored = block_stored_csum(block);

	for (unsigned i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if ((raw ^ kinds[i]) == stored)
			return true;
	return false;
}

/*----------------------------------------------------------------
 * The byte-code machine
 *
 * An instruction is a byte: the operation in the high nibble, a small
 * operand in the low one.  The machine holds one u64, the base; most
 * operations change it and emit it (8 bytes, little-endian).
 *--------------------------------------------------------------*/

enum vm_op {
	VM_SET,		/* base = operand of nibble bytes (1, 2, 4, 8); emit */
	VM_POS,		/* base += nibble; emit */
	VM_POS_W,	/* base += operand of nibble bytes; emit */
	VM_NEG,		/* base -= nibble; emit */
	VM_NEG_W,	/* base -= operand of nibble bytes; emit */
	VM_CONST,	/* emit base nibble times */
	VM_CONST8,	/* emit base (nibble << 8 | next byte) times */
	VM_COUNT,	/* do the next instruction nibble times */
	VM_COUNT8,	/* do the next instruction (nibble << 8 | next byte) times */
	VM_LIT,		/* copy nibble bytes */
	VM_LIT_W,	/* copy (operand of nibble bytes) bytes */
	VM_SHIFTED_RUN,	/* n = nibble << 8 | next byte; two streams of n u64s, hi << 24 | lo & 0xffffff */
	VM_NR_OPS
};

/* The most one instruction can emit beyond what was asked (4095 u64s). */
#define VM_SLACK (4096u * 8u)
#define VM_MAX_NESTING 4

struct vm_in {
	const uint8_t *p, *end;
};

struct vm_out {
	uint8_t *buf;
	size_t len, cap;
};

struct vm {
	uint64_t base;
	unsigned nesting;
	struct pd_err *err;
};

static int vm_bad(struct vm *vm, const char *what)
{
	return pd_err_set(vm->err, -EILSEQ, "corrupt pack: %s", what);
}

static int vm_byte(struct vm *vm, struct vm_in *in, unsigned *b)
{
	if (in->p >= in->end)
		return vm_bad(vm, "block encoding truncated");
	*b = *in->p++;
	return 0;
}

static int vm_operand(struct vm *vm, struct vm_in *in, unsigned width, uint64_t *v)
{
	if (width != 1 && width != 2 && width != 4 && width != 8)
		return vm_bad(vm, "bad operand width");
	if ((size_t)(in->end - in->p) < width)
		return vm_bad(vm, "block encoding truncated");
	*v = 0;
	for (unsigned i = 0; i < width; i++)
		*v |= (uint64_t)in->p[i] << (8 * i);
	in->p += width;
	return 0;
}

static int vm_emit(struct vm *vm, struct vm_out *out, const void *bytes, size_t n)
{
	if (out->len + n > out->cap)
		return vm_bad(vm, "block encoding too long");
	memcpy(out->buf + out->len, bytes, n);
	out->len += n;
	return 0;
}

static int vm_emit_u64(struct vm *vm, struct vm_out *out, uint64_t v)
{
	uint8_t b[8];

	store_le64(b, v);
	return vm_emit(vm, out, b, 8);
}

static int vm_exec(struct vm *vm, struct vm_in *in, struct vm_out *out, size_t want);

static int vm_shifted_run(struct vm *vm, struct vm_in *in, struct vm_out *out, unsigned n)
{
	size_t bytes = (size_t)n * 8u;
	struct vm_out hi = { .cap = bytes + VM_SLACK }, lo = { .cap = bytes + VM_SLACK };
	int r;

	if (vm->nesting >= VM_MAX_NESTING)
		return vm_bad(vm, "shifted runs nested too deep");
	hi.buf = malloc(hi.cap);
	lo.buf = malloc(lo.cap);
	if (!hi.buf || !lo.buf) {
		r = pd_err_set(vm->err, -ENOMEM, "out of memory");
		goto out;
	}
	vm->nesting++;
	r = vm_exec(vm, in, &hi, bytes);
	if (!r)
		r = vm_exec(vm, in, &lo, bytes);
	vm->nesting--;
	for (unsigned i = 0; i < n && !r; i++)
		r = vm_emit_u64(vm, out, (load_le64(hi.buf + 8u * i) << 24) |
				(load_le64(lo.buf + 8u * i) & 0xffffffu));
out:
	free(hi.buf);
	free(lo.buf);
	return r;
}

static int vm_instr(struct vm *vm, struct vm_in *in, struct vm_out *out, unsigned count)
{
	unsigned b = 0, op, nib, x;
	uint64_t v;
	int r;

	if ((r = vm_byte(vm, in, &b)))
		return r;
	op = b >> 4;
	nib = b & 0xf;
	switch (op) {
	case VM_SET:
		if ((r = vm_operand(vm, in, nib, &vm->base)))
			return r;
		for (unsigned i = 0; i < count && !r; i++)
			r = vm_emit_u64(vm, out, vm->base);
		return r;
	case VM_POS:
	case VM_NEG:
	case VM_POS_W:
	case VM_NEG_W:
		v = nib;
		if ((op == VM_POS_W || op == VM_NEG_W) && (r = vm_operand(vm, in, nib, &v)))
			return r;
		for (unsigned i = 0; i < count && !r; i++) {
			vm->base = op == VM_POS || op == VM_POS_W ? vm->base + v : vm->base - v;
			r = vm_emit_u64(vm, out, vm->base);
		}
		return r;
	case VM_CONST:
	case VM_CONST8:
		if (count != 1)
			return vm_bad(vm, "count before a constant run");
		x = nib;
		if (op == VM_CONST8) {
			if ((r = vm_byte(vm, in, &b)))
				return r;
			x = nib << 8 | b;
		}
		for (unsigned i = 0; i < x && !r; i++)
			r = vm_emit_u64(vm, out, vm->base);
		return r;
	case VM_COUNT:
		return vm_instr(vm, in, out, nib);
	case VM_COUNT8:
		if ((r = vm_byte(vm, in, &b)))
			return r;
		return vm_instr(vm, in, out, nib << 8 | b);
	case VM_LIT:
	case VM_LIT_W:
		if (count != 1)
			return vm_bad(vm, "count before a literal");
		v = nib;
		if (op == VM_LIT_W && (r = vm_operand(vm, in, nib, &v)))
			return r;
		if ((uint64_t)(in->end - in->p) < v)
			return vm_bad(vm, "block encoding truncated");
		r = vm_emit(vm, out, in->p, (size_t)v);
		in->p += v;
		return r;
	case VM_SHIFTED_RUN:
		if ((r = vm_byte(vm, in, &b)))
			return r;
		return vm_shifted_run(vm, in, out, nib << 8 | b);
	default:
		return vm_bad(vm, "unknown instruction");
	}
}

/* Runs instructions until at least want bytes have been emitted. */
static int vm_exec(struct vm *vm, struct vm_in *in, struct vm_out *out, size_t want)
{
	size_t begin = out->len;
	int r = 0;

	while (!r && out->len - begin < want)
		r = vm_instr(vm, in, out, 1);
	return r;
}

int pack_vm_decode(const uint8_t *in, size_t len, uint8_t out[MD_BLOCK_SIZE],
		   size_t *used, struct pd_err *err)
{
	uint8_t *buf = malloc(MD_BLOCK_SIZE + VM_SLACK);
	struct vm vm = { .err = err };
	struct vm_in vi = { in, in + len };
	struct vm_out vo = { .buf = buf, .cap = MD_BLOCK_SIZE + VM_SLACK };
	int r;

	if (!buf)
		return pd_err_set(err, -ENOMEM, "out of memory");
	r = vm_exec(&vm, &vi, &vo, MD_BLOCK_SIZE);
	if (!r && vo.len != MD_BLOCK_SIZE)
		r = vm_bad(&vm, "a block does not decode to 4096 bytes");
	if (!r) {
		memcpy(out, buf, MD_BLOCK_SIZE);
		*used = (size_t)(vi.p - in);
	}
	free(buf);
	return r;
}

/*----------------------------------------------------------------
 * Encoding: the block as 512 little-endian u64s, runs of equal steps
 * (btree keys and mapped data blocks go up by one; empty space is zero)
 * as one counted instruction each; a literal if that is no shorter.
 *--------------------------------------------------------------*/

#define WORDS (MD_BLOCK_SIZE / 8u)
#define MAX_RUN 4095u

static unsigned width_of(uint64_t v)
{
	return v <= 0xffu ? 1 : v <= 0xffffu ? 2 : v <= 0xffffffffu ? 4 : 8;
}

static uint8_t *put_operand(uint8_t *p, uint64_t v, unsigned w)
{
	for (unsigned i = 0; i < w; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static uint8_t *put_counted(uint8_t *p, unsigned op, unsigned op8, unsigned n)
{
	if (n < 16) {
		*p++ = (uint8_t)(op << 4 | n);
	} else {
		*p++ = (uint8_t)(op8 << 4 | n >> 8);
		*p++ = (uint8_t)(n & 0xff);
	}
	return p;
}

/* out: at least PACK_MAX_ENCODED bytes; returns the length used. */
static size_t vm_encode(const uint8_t *blk, uint8_t *out)
{
	uint8_t *p = out;
	uint64_t base = 0;

	for (unsigned i = 0; i < WORDS;) {
		uint64_t d = load_le64(blk + 8u * i) - base, neg = -d;
		unsigned n = 1;

		while (i + n < WORDS && n < MAX_RUN &&
		       load_le64(blk + 8u * (i + n)) - load_le64(blk + 8u * (i + n - 1)) == d)
			n++;
		if (!d) {
			p = put_counted(p, VM_CONST, VM_CONST8, n);
		} else {
			uint64_t v = base + d;

			if (n > 1)
				p = put_counted(p, VM_COUNT, VM_COUNT8, n);
			if (d < 16) {
				*p++ = (uint8_t)(VM_POS << 4 | d);
			} else if (neg < 16) {
				*p++ = (uint8_t)(VM_NEG << 4 | neg);
			} else if (n == 1 && width_of(v) <= width_of(d) && width_of(v) <= width_of(neg)) {
				*p++ = (uint8_t)(VM_SET << 4 | width_of(v));
				p = put_operand(p, v, width_of(v));
			} else if (width_of(d) <= width_of(neg)) {
				*p++ = (uint8_t)(VM_POS_W << 4 | width_of(d));
				p = put_operand(p, d, width_of(d));
			} else {
				*p++ = (uint8_t)(VM_NEG_W << 4 | width_of(neg));
				p = put_operand(p, neg, width_of(neg));
			}
		}
		base = load_le64(blk + 8u * (i + n - 1));
		i += n;
		if ((size_t)(p - out) >= MD_BLOCK_SIZE + 3u)
			break;	/* no shorter than a literal */
	}
	if ((size_t)(p - out) >= MD_BLOCK_SIZE + 3u) {
		p = out;
		*p++ = (uint8_t)(VM_LIT_W << 4 | 2);
		*p++ = (uint8_t)(MD_BLOCK_SIZE & 0xff);
		*p++ = (uint8_t)(MD_BLOCK_SIZE >> 8);
		memcpy(p, blk, MD_BLOCK_SIZE);
		p += MD_BLOCK_SIZE;
	}
	return (size_t)(p - out);
}

#define PACK_MAX_ENCODED (MD_BLOCK_SIZE + 3u + 16u)

/*----------------------------------------------------------------
 * Packing
 *--------------------------------------------------------------*/

#define READ_BATCH 64u

static int write_u64(FILE *f, uint64_t v)
{
	uint8_t b[8];

	store_le64(b, v);
	return fwrite(b, 1, 8, f) == 8 ? 0 : -EIO;
}

struct chunk {
	z_stream z;
	uint8_t *out;
	size_t cap;
	unsigned nr;
};

static int chunk_begin(struct chunk *c, struct pd_err *err)
{
	memset(&c->z, 0, sizeof(c->z));
	if (deflateInit(&c->z, Z_DEFAULT_COMPRESSION) != Z_OK)
		return pd_err_set(err, -ENOMEM, "zlib: cannot start a stream");
	c->z.next_out = c->out;
	c->z.avail_out = (uInt)c->cap;
	c->nr = 0;
	return 0;
}

static int chunk_feed(struct chunk *c, const void *p, size_t n, struct pd_err *err)
{
	c->z.next_in = (Bytef *)p;
	c->z.avail_in = (uInt)n;
	while (c->z.avail_in) {
		if (deflate(&c->z, Z_NO_FLUSH) != Z_OK || !c->z.avail_out)
			return pd_err_set(err, -EIO, "zlib: deflate failed");
	}
	return 0;
}

static int chunk_end(struct chunk *c, FILE *out, struct pd_err *err)
{
	int zr;
	size_t len;

	c->z.next_in = NULL;
	c->z.avail_in = 0;
	zr = deflate(&c->z, Z_FINISH);
	len = c->cap - c->z.avail_out;
	deflateEnd(&c->z);
	if (zr != Z_STREAM_END)
		return pd_err_set(err, -EIO, "zlib: deflate failed");
	if (write_u64(out, len) || fwrite(c->out, 1, len, out) != len)
		return pd_err_set(err, -EIO, "write error on the output: %s", strerror(errno ? errno : EIO));
	return 0;
}

int md_pack(struct io_engine *in, FILE *out, pack_progress_fn progress, void *ctx,
	    struct pack_stats *st, struct pd_err *err)
{
	struct io_req reqs[READ_BATCH];
	struct chunk c = { 0 };
	uint8_t enc[8 + PACK_MAX_ENCODED];
	uint64_t nr = in->nr_blocks, packed = 0;
	bool open = false, sparse;
	struct stat sb;
	int r = 0;

	sparse = !fstat(in->fd, &sb) && S_ISREG(sb.st_mode);
	memset(reqs, 0, sizeof(reqs));
	/* a chunk's worst case: every block incompressible */
	c.cap = deflateBound(NULL, PACK_BLOCKS_PER_CHUNK * (8u + PACK_MAX_ENCODED));
	c.out = malloc(c.cap);
	for (unsigned i = 0; i < READ_BATCH; i++)
		if (!(reqs[i].buf = io_alloc_block()))
			r = -ENOMEM;
	if (r || !c.out) {
		r = pd_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (write_u64(out, PACK_MAGIC) || write_u64(out, PACK_VERSION) ||
	    write_u64(out, MD_BLOCK_SIZE) || write_u64(out, nr)) {
		r = pd_err_set(err, -EIO, "write error on the output: %s", strerror(errno ? errno : EIO));
		goto out;
	}
	for (uint64_t b = 0; b < nr && !r; b += READ_BATCH) {
		unsigned n;

		/* holes of a sparse file read as zeroes, which are never metadata */
		if (sparse) {
			off_t off = lseek(in->fd, (off_t)(b * MD_BLOCK_SIZE), SEEK_DATA);

			if (off < 0 && errno == ENXIO)
				break;
			if (off > 0 && (uint64_t)off / MD_BLOCK_SIZE > b)
				b = (uint64_t)off / MD_BLOCK_SIZE;
			if (b >= nr)
				break;
		}
		n = nr - b < READ_BATCH ? (unsigned)(nr - b) : READ_BATCH;

		for (unsigned i = 0; i < n; i++)
			reqs[i].block = b + i;
		r = io_read_many(in, reqs, n);
		if (r) {
			r = pd_err_set(err, r, "read error on the input at block %" PRIu64,
				       b);
			break;
		}
		for (unsigned i = 0; i < n && !r; i++) {

			if (!pack_block_is_metadata(reqs[i].buf))
				continue;
			if (!open) {
				if ((r = chunk_begin(&c, err)))
					break;
				open = true;
			}
			/* the block number, then its encoding */
			store_le64(enc, b + i);
			r = chunk_feed(&c, enc, 8u + vm_encode(reqs[i].buf, enc + 8), err);
			packed++;
			if (!r && ++c.nr == PACK_BLOCKS_PER_CHUNK) {
				open = false;
				r = chunk_end(&c, out, err);
			}
		}
		if (progress)
			progress(ctx, b + n, nr);
	}
	if (progress)
		progress(ctx, nr, nr);
	if (!r && open) {
		open = false;
		r = chunk_end(&c, out, err);
	}
	if (!r && fflush(out))
		r = pd_err_set(err, -EIO, "write error on the output: %s", strerror(errno));
	if (st) {
		st->nr_blocks = nr;
		st->packed = packed;
	}
out:
	if (open)
		deflateEnd(&c.z);
	for (unsigned i = 0; i < READ_BATCH; i++)
		free(reqs[i].buf);
	free(c.out);
	return r;
}

/*----------------------------------------------------------------
 * Unpacking
 *--------------------------------------------------------------*/

/* A chunk inflates to at most this (1024 blocks of 1.x's worst encoding). */
#define MAX_CHUNK_IN (64u << 20)
#define MAX_CHUNK_OUT (PACK_BLOCKS_PER_CHUNK * (8u + 2u * MD_BLOCK_SIZE))

/* 0, 1 at the end of the file, -1 for a partial value. */
static int read_u64(FILE *f, uint64_t *v)
{
	uint8_t b[8];
	size_t n = fread(b, 1, 8, f);

	if (n != 8)
		return n ? -1 : 1;
	*v = load_le64(b);
	return 0;
}

int md_unpack_header(FILE *in, uint64_t *nr_blocks, struct pd_err *err)
{
	uint64_t magic = 0, version = 0, bs = 0;

	if (read_u64(in, &magic) || magic != PACK_MAGIC)
		return pd_err_set(err, -EILSEQ, "Not a pack file");
	if (read_u64(in, &version) || version != PACK_VERSION)
		return pd_err_set(err, -EILSEQ, "unsupported pack file version (%" PRIu64 ", expected %u)",
				  version, PACK_VERSION);
	if (read_u64(in, &bs) || bs != MD_BLOCK_SIZE)
		return pd_err_set(err, -EILSEQ, "pack block size is not %u", MD_BLOCK_SIZE);
	if (read_u64(in, nr_blocks) || !*nr_blocks || *nr_blocks > (UINT64_MAX >> MD_BLOCK_SHIFT))
		return pd_err_set(err, -EILSEQ, "corrupt pack: bad number of blocks");
	return 0;
}

static int inflate_chunk(const uint8_t *in, size_t len, uint8_t *out, size_t cap,
			 size_t *out_len, struct pd_err *err)
{
	z_stream z;
	int zr;

	memset(&z, 0, sizeof(z));
	if (inflateInit(&z) != Z_OK)
		return pd_err_set(err, -ENOMEM, "zlib: cannot start a stream");
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	zr = inflate(&z, Z_FINISH);
	*out_len = cap - z.avail_out;
	inflateEnd(&z);
	if (zr == Z_BUF_ERROR && !z.avail_out)
		return pd_err_set(err, -EILSEQ, "corrupt pack: a chunk inflates to too much");
	if (zr != Z_STREAM_END)
		return pd_err_set(err, -EILSEQ, "corrupt pack: bad compressed chunk (%s)",
				  z.msg ? z.msg : "truncated");
	return 0;
}

int md_unpack(FILE *in, struct io_engine *out, uint64_t nr_blocks,
	      pack_progress_fn progress, void *ctx, struct pack_stats *st,
	      struct pd_err *err)
{
	uint8_t *zbuf = NULL, *raw = malloc(MAX_CHUNK_OUT);
	void *blk = io_alloc_block();
	uint64_t len, unpacked = 0, total = 0;
	struct stat sb;
	int r = 0, eof = 0;

	if (!raw || !blk) {
		r = pd_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	if (!fstat(fileno(in), &sb))
		total = (uint64_t)sb.st_size;
	while (!r && !(eof = read_u64(in, &len))) {
		size_t raw_len = 0, pos = 0;
		uint8_t *nz;

		if (!len || len > MAX_CHUNK_IN) {
			r = pd_err_set(err, -EILSEQ, "corrupt pack: bad chunk length %" PRIu64,
				       len);
			break;
		}
		nz = realloc(zbuf, (size_t)len);
		if (!nz) {
			r = pd_err_set(err, -ENOMEM, "out of memory");
			break;
		}
		zbuf = nz;
		if (fread(zbuf, 1, (size_t)len, in) != len) {
			r = pd_err_set(err, -EILSEQ, "corrupt pack: truncated chunk");
			break;
		}
		r = inflate_chunk(zbuf, (size_t)len, raw, MAX_CHUNK_OUT, &raw_len, err);
		while (!r && pos < raw_len) {
			uint64_t b;
			size_t used;

			if (raw_len - pos < 8) {
				r = pd_err_set(err, -EILSEQ, "corrupt pack: truncated block number");
				break;
			}
			b = load_le64(raw + pos);
			pos += 8;
			if (b >= nr_blocks) {
				r = pd_err_set(err, -EILSEQ, "corrupt pack: block %" PRIu64 " beyond the %" PRIu64 " blocks of the metadata",
					       b, nr_blocks);
				break;
			}
			r = pack_vm_decode(raw + pos, raw_len - pos, blk, &used, err);
			if (r)
				break;
			pos += used;
			if (!pack_block_is_metadata(blk)) {
				r = pd_err_set(err, -EILSEQ, "corrupt pack: block %" PRIu64 " is not metadata",
					       b);
				break;
			}
			r = io_write_block(out, b, blk);
			if (r)
				r = pd_err_set(err, r, "write error on the output at block %" PRIu64 ": %s",
					       b, strerror(-r));
			unpacked++;
		}
		if (progress && total)
			progress(ctx, (uint64_t)ftello(in), total);
	}
	if (!r && ferror(in))
		r = pd_err_set(err, -EIO, "read error on the pack");
	if (!r && eof < 0)
		r = pd_err_set(err, -EILSEQ, "corrupt pack: truncated chunk length");
	if (!r) {
		r = io_flush(out);
		if (r)
			r = pd_err_set(err, r, "flushing the output: %s", strerror(-r));
	}
	if (st) {
		st->nr_blocks = nr_blocks;
		st->packed = unpacked;
	}
out:
	free(zbuf);
	free(raw);
	free(blk);
	return r;
}
