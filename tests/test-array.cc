/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * dm-array and dm-bitset (persistent-data/array.h, bitset.h) against a
 * model: a std::vector of values and one of bits.  Arrays are built with
 * the builders, changed with array_set/bitset_set over several
 * transactions, committed, reopened, and read back with array_get,
 * bitset_test and both walks; the metadata space map's counts must equal
 * the references found (no leak, no bad count).  Then every cut point of
 * a workload through the fault engine: after each, the file must hold
 * exactly the last committed state, with consistent counts.
 */
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <unistd.h>
#include <cstring>
#include <random>
#include <string>
#include <vector>

extern "C" {
#include "persistent-data/array.h"
#include "persistent-data/bitset.h"
#include "persistent-data/checksum.h"
#include "persistent-data/count-map.h"
#include "persistent-data/io-engine-fault.h"
#include "persistent-data/pd-store.h"
#include "persistent-data/space-map-disk.h"
}

#include "test-files.h"

using namespace std;

namespace {

constexpr uint64_t file_blocks = 1024;
constexpr uint64_t test_magic = 0x7465737461727279ull;

/* The test's superblock: the sm root, an array of u32 and a bitset. */
struct state {
	vector<uint32_t> values;
	vector<bool> bits;
	bool operator==(const state &o) const { return values == o.values && bits == o.bits; }
};

struct roots {
	uint64_t array_root = 0, bitset_root = 0, nr_values = 0, nr_bits = 0;
};

struct sb_ctx {
	roots *r;
};

void encode_sb(void *ctx, void *block, const void *blob)
{
	roots *r = static_cast<sb_ctx *>(ctx)->r;
	uint8_t *b = static_cast<uint8_t *>(block);

	store_le64(b + 8, 0);
	store_le64(b + 16, test_magic);
	store_le64(b + 24, r->array_root);
	store_le64(b + 32, r->bitset_root);
	store_le64(b + 40, r->nr_values);
	store_le64(b + 48, r->nr_bits);
	memcpy(b + 64, blob, SM_ROOT_BLOB_SIZE);
	block_set_csum(block, CSUM_XOR_SUPERBLOCK);
}

struct engine_ptr {
	io_engine *e = nullptr;
	~engine_ptr() { io_engine_destroy(e); }
};

io_engine *open_file(const string &path)
{
	io_engine *e;
	pd_err err;

	if (io_engine_open(path.c_str(), IO_ENGINE_SYNC, IO_OPEN_WRITE | IO_OPEN_NO_DIRECT, &e, &err))
		throw runtime_error(err.msg);
	return e;
}

/* Reads block 0; false if it is not a committed test superblock. */
bool read_sb(io_engine *io, roots *r, vector<uint8_t> *blob)
{
	vector<uint8_t> buf(MD_BLOCK_SIZE);
	void *b = io_alloc_block();

	if (io_read_block(io, 0, b)) {
		free(b);
		return false;
	}
	memcpy(buf.data(), b, MD_BLOCK_SIZE);
	free(b);
	if (load_le64(buf.data() + 16) != test_magic ||
	    block_csum(buf.data(), CSUM_XOR_SUPERBLOCK) != block_stored_csum(buf.data()))
		return false;
	r->array_root = load_le64(buf.data() + 24);
	r->bitset_root = load_le64(buf.data() + 32);
	r->nr_values = load_le64(buf.data() + 40);
	r->nr_bits = load_le64(buf.data() + 48);
	blob->assign(buf.begin() + 64, buf.begin() + 64 + SM_ROOT_BLOB_SIZE);
	return true;
}

struct collector {
	count_map *cm;
	vector<uint32_t> values;
	vector<bool> bits;
	int damage = 0;
	string msg;
};

int c_ref(void *ctx, uint64_t b) { return cm_inc(static_cast<collector *>(ctx)->cm, b); }
int c_node(void *ctx, const btree_node_info *n)
{
	if (!n->leaf)
		for (uint32_t i = 0; i < n->nr_entries; i++)
			c_ref(ctx, load_le64(node_value_c(n->data, i, 8)));
	return 0;
}
int c_ablock(void *ctx, uint64_t, uint64_t b) { return cm_inc(static_cast<collector *>(ctx)->cm, b); }
int c_values(void *ctx, uint64_t first, uint32_t nr, const void *v)
{
	collector *c = static_cast<collector *>(ctx);

	EXPECT_EQ(first, c->values.size());
	for (uint32_t i = 0; i < nr; i++)
		c->values.push_back(load_le32(static_cast<const uint8_t *>(v) + 4 * i));
	return 0;
}
int c_bits(void *ctx, uint64_t first, uint64_t nr, const void *w)
{
	collector *c = static_cast<collector *>(ctx);

	EXPECT_EQ(first, c->bits.size());
	for (uint64_t i = 0; i < nr; i++)
		c->bits.push_back((load_le64(static_cast<const uint8_t *>(w) + 8 * (i / 64)) >> (i % 64)) & 1);
	return 0;
}
void c_damage(void *ctx, uint64_t, uint64_t, const char *msg)
{
	collector *c = static_cast<collector *>(ctx);

	c->damage++;
	c->msg = msg;
}
void sm_damage(void *ctx, const char *msg) { c_damage(ctx, 0, 0, msg); }
int sm_ref(void *ctx, uint64_t b) { return c_ref(ctx, b); }
int sm_node(void *ctx, const btree_node_info *n) { return c_node(ctx, n); }

/*
 * Everything the committed superblock says, read back with the walks and
 * checked against random lookups; the reference counts found must equal
 * the space map's.
 */
state read_back(const string &path, bool check_lookups = true)
{
	engine_ptr io;
	roots r;
	vector<uint8_t> blob;
	pd_err err;
	bm *bm;

	io.e = open_file(path);
	if (!read_sb(io.e, &r, &blob))
		throw runtime_error("no superblock");
	EXPECT_EQ(0, bm_create(io.e, 64, &bm, &err));
	collector c;
	EXPECT_EQ(0, cm_create(file_blocks, &c.cm));
	cm_inc(c.cm, 0);
	sm_root smr;
	sm_root_decode(blob.data(), &smr);
	count_map *ondisk;
	EXPECT_EQ(0, cm_create(smr.nr_blocks, &ondisk));
	sm_load_hooks h = {};
	h.ctx = &c;
	h.node = sm_node;
	h.ref = sm_ref;
	h.damage = sm_damage;
	EXPECT_EQ(0, sm_disk_load(bm, &smr, true, ondisk, &h, &err)) << err.msg;

	c_ref(&c, r.array_root);
	c_ref(&c, r.bitset_root);
	array_walk_ops ao = {};
	ao.node = c_node;
	ao.ablock = c_ablock;
	ao.values = c_values;
	ao.damage = c_damage;
	EXPECT_EQ(0, array_walk(bm, r.array_root, 4, r.nr_values, &ao, &c, &err));
	bitset_walk_ops bo = {};
	bo.node = c_node;
	bo.ablock = c_ablock;
	bo.bits = c_bits;
	bo.damage = c_damage;
	EXPECT_EQ(0, bitset_walk(bm, r.bitset_root, r.nr_bits, &bo, &c, &err));
	EXPECT_EQ(0, c.damage) << c.msg;
	for (uint64_t b = 0; b < smr.nr_blocks; b++)
		EXPECT_EQ(cm_get(c.cm, b), cm_get(ondisk, b)) << "block " << b;

	if (check_lookups) {
		mt19937_64 rng(7);
		for (int i = 0; i < 50 && !c.values.empty(); i++) {
			uint64_t k = rng() % c.values.size();
			uint8_t le[4];

			EXPECT_EQ(0, array_get(bm, r.array_root, 4, k, le, &err));
			EXPECT_EQ(c.values[k], load_le32(le));
		}
		for (int i = 0; i < 50 && !c.bits.empty(); i++) {
			uint64_t k = rng() % c.bits.size();
			bool bit;

			EXPECT_EQ(0, bitset_test(bm, r.bitset_root, k, &bit, &err));
			EXPECT_EQ(c.bits[k], bit);
		}
		uint8_t le[4];
		EXPECT_EQ(-ENODATA, array_get(bm, r.array_root, 4, r.nr_values, le, &err));
	}
	cm_destroy(ondisk);
	cm_destroy(c.cm);
	bm_destroy(bm);
	return state{c.values, c.bits};
}

/* A workload: transaction 0 builds, the next ones change random entries. */
struct workload {
	uint64_t nr_values, nr_bits;
	unsigned nr_txns, changes_per_txn;
	uint64_t seed;
	unsigned cache_blocks = 16;	/* small: evictions write back early */

	/* The model state after each commit. */
	vector<state> expected() const
	{
		vector<state> out;
		mt19937_64 rng(seed);
		state s;

		for (uint64_t i = 0; i < nr_values; i++)
			s.values.push_back((uint32_t)rng());
		for (uint64_t i = 0; i < nr_bits; i++)
			s.bits.push_back(rng() & 1);
		out.push_back(s);
		for (unsigned t = 1; t < nr_txns; t++) {
			for (unsigned i = 0; i < changes_per_txn; i++) {
				if (nr_values) {
					uint64_t k = rng() % nr_values;
					s.values[k] = (uint32_t)rng();
				}
				if (nr_bits) {
					uint64_t k = rng() % nr_bits;
					s.bits[k] = rng() & 1;
				}
			}
			out.push_back(s);
		}
		return out;
	}

	/* Runs it on io; returns 0 or the first error. */
	int run(io_engine *io, pd_err *err) const
	{
		mt19937_64 rng(seed);
		pd_store *s;
		roots r;
		sb_ctx ctx = { &r };
		int ret;

		ret = pd_store_create(io, file_blocks, cache_blocks, &s, err);
		if (ret)
			return ret;
		array_builder *ab;
		bitset_builder *bb;
		ret = array_builder_create(s->tm, 4, &ab, err);
		for (uint64_t i = 0; !ret && i < nr_values; i++) {
			uint8_t le[4];
			store_le32(le, (uint32_t)rng());
			ret = array_builder_push(ab, le, err);
		}
		if (!ret)
			ret = array_builder_finish(ab, &r.array_root, err);
		array_builder_destroy(ab);
		if (!ret)
			ret = bitset_builder_create(s->tm, &bb, err);
		for (uint64_t i = 0; !ret && i < nr_bits; i++)
			ret = bitset_builder_push(bb, rng() & 1, err);
		if (!ret) {
			ret = bitset_builder_finish(bb, &r.bitset_root, err);
			bitset_builder_destroy(bb);
		}
		r.nr_values = nr_values;
		r.nr_bits = nr_bits;
		if (!ret)
			ret = pd_store_commit(s, encode_sb, &ctx, err);
		for (unsigned t = 1; !ret && t < nr_txns; t++) {
			/* a new session for each transaction: reopen from disk */
			roots rr;
			vector<uint8_t> blob;

			pd_store_destroy(s);
			s = nullptr;
			if (!read_sb(io, &rr, &blob))
				return pd_err_set(err, -EIO, "superblock lost");
			ret = pd_store_open(io, blob.data(), cache_blocks, &s, err);
			if (ret)
				return ret;
			for (unsigned i = 0; !ret && i < changes_per_txn; i++) {
				if (nr_values) {
					uint64_t k = rng() % nr_values;
					uint8_t le[4];
					store_le32(le, (uint32_t)rng());
					ret = array_set(s->tm, r.array_root, 4, k, le, &r.array_root, err);
				}
				if (!ret && nr_bits) {
					uint64_t k = rng() % nr_bits;
					ret = bitset_set(s->tm, r.bitset_root, k, rng() & 1, &r.bitset_root, err);
				}
			}
			if (!ret)
				ret = pd_store_commit(s, encode_sb, &ctx, err);
		}
		pd_store_destroy(s);
		return ret;
	}
};

void zero_file(const string &path)
{
	FILE *f = fopen(path.c_str(), "w");

	if (!f || ftruncate(fileno(f), file_blocks * MD_BLOCK_SIZE))
		throw runtime_error("cannot create " + path);
	fclose(f);
}

class ArrayTest : public ::testing::Test {
protected:
	test_files::temp_dir dir{"/dev/shm"};
	string path = dir.file("md");

	void SetUp() override { zero_file(path); }
};

TEST_F(ArrayTest, builds_and_changes_arrays_of_every_size_as_the_model)
{
	/* sizes around the block boundaries: 1018 u32 values, 509 words a block */
	for (uint64_t n : {0ull, 1ull, 1017ull, 1018ull, 1019ull, 5000ull}) {
		workload w = { n, n * 9 + 3, 3, 40, n + 1 };
		pd_err err;
		engine_ptr io;

		zero_file(path);
		io.e = open_file(path);
		ASSERT_EQ(0, w.run(io.e, &err)) << err.msg;
		EXPECT_TRUE(read_back(path) == w.expected().back()) << "n=" << n;
	}
}

TEST_F(ArrayTest, set_past_the_end_changes_nothing)
{
	workload w = { 10, 10, 1, 0, 5 };
	pd_err err;
	engine_ptr io;

	io.e = open_file(path);
	ASSERT_EQ(0, w.run(io.e, &err)) << err.msg;
	roots r;
	vector<uint8_t> blob;
	ASSERT_TRUE(read_sb(io.e, &r, &blob));
	pd_store *s;
	ASSERT_EQ(0, pd_store_open(io.e, blob.data(), 0, &s, &err));
	uint8_t le[4] = {1, 2, 3, 4};
	uint64_t nr;
	EXPECT_EQ(-ENODATA, array_set(s->tm, r.array_root, 4, 10, le, &nr, &err));
	EXPECT_EQ(-ENODATA, array_set(s->tm, r.array_root, 4, 5000, le, &nr, &err));
	EXPECT_EQ(-EINVAL, array_set(s->tm, r.array_root, 0, 1, le, &nr, &err));
	pd_store_destroy(s);
	EXPECT_TRUE(read_back(path) == w.expected().back());
}

TEST_F(ArrayTest, damaged_array_block_is_reported_with_its_entries)
{
	workload w = { 3000, 0, 1, 0, 9 };
	pd_err err;
	engine_ptr io;

	io.e = open_file(path);
	ASSERT_EQ(0, w.run(io.e, &err)) << err.msg;
	roots r;
	vector<uint8_t> blob;
	ASSERT_TRUE(read_sb(io.e, &r, &blob));
	bm *bm;
	ASSERT_EQ(0, bm_create(io.e, 64, &bm, &err));
	uint8_t le[8];
	ASSERT_EQ(0, btree_lookup(bm, r.array_root, 8, 1, le, &err));
	bm_destroy(bm);
	/* flip a byte of array block 1 (entries 1018 ... 2035) */
	void *b = io_alloc_block();
	ASSERT_EQ(0, io_read_block(io.e, load_le64(le), b));
	static_cast<uint8_t *>(b)[100] ^= 1;
	ASSERT_EQ(0, io_write_block(io.e, load_le64(le), b));
	free(b);

	struct dmg {
		vector<pair<uint64_t, uint64_t>> ranges;
		uint64_t values = 0;
	} d;
	array_walk_ops ao = {};
	ao.values = [](void *ctx, uint64_t, uint32_t nr, const void *) {
		static_cast<dmg *>(ctx)->values += nr;
		return 0;
	};
	ao.damage = [](void *ctx, uint64_t lo, uint64_t hi, const char *) {
		static_cast<dmg *>(ctx)->ranges.push_back({lo, hi});
	};
	ASSERT_EQ(0, bm_create(io.e, 64, &bm, &err));
	EXPECT_EQ(0, array_walk(bm, r.array_root, 4, 3000, &ao, &d, &err));
	bm_destroy(bm);
	ASSERT_EQ(1u, d.ranges.size());
	EXPECT_EQ(1018u, d.ranges[0].first);
	EXPECT_EQ(2036u, d.ranges[0].second);
	EXPECT_EQ(3000u - 1018u, d.values);
}

TEST_F(ArrayTest, reader_reads_as_the_model_in_any_order)
{
	workload w = { 5000, 3000, 2, 100, 17 };
	pd_err err;
	engine_ptr io;

	io.e = open_file(path);
	ASSERT_EQ(0, w.run(io.e, &err)) << err.msg;
	state s = w.expected().back();
	roots r;
	vector<uint8_t> blob;
	ASSERT_TRUE(read_sb(io.e, &r, &blob));
	bm *bm;
	ASSERT_EQ(0, bm_create(io.e, 64, &bm, &err));
	array_reader *ar;
	ASSERT_EQ(0, array_reader_create(bm, r.array_root, 4, &ar, &err));
	mt19937_64 rng(3);
	for (int i = 0; i < 3000; i++) {
		uint64_t k = i < 1500 ? (uint64_t)i : rng() % s.values.size();
		uint8_t le[4];

		ASSERT_EQ(0, array_reader_get(ar, k, le, &err));
		EXPECT_EQ(s.values[k], load_le32(le)) << k;
	}
	uint8_t le[4];
	EXPECT_EQ(-ENODATA, array_reader_get(ar, 5000, le, &err));
	EXPECT_EQ(-ENODATA, array_reader_get(ar, 1u << 30, le, &err));

	/* reset drops the block held: the superblock is no array root */
	ASSERT_EQ(0, array_reader_get(ar, 7, le, &err));
	array_reader_reset(ar, 0);
	EXPECT_NE(0, array_reader_get(ar, 7, le, &err));
	array_reader_reset(ar, r.array_root);
	ASSERT_EQ(0, array_reader_get(ar, 7, le, &err)) << err.msg;
	EXPECT_EQ(s.values[7], load_le32(le));
	array_reader_destroy(ar);
	bm_destroy(bm);
}

TEST_F(ArrayTest, delete_frees_every_block)
{
	workload w = { 5000, 40000, 1, 0, 19 };
	pd_err err;
	engine_ptr io;

	io.e = open_file(path);
	ASSERT_EQ(0, w.run(io.e, &err)) << err.msg;
	roots r;
	vector<uint8_t> blob;
	ASSERT_TRUE(read_sb(io.e, &r, &blob));
	pd_store *s;
	ASSERT_EQ(0, pd_store_open(io.e, blob.data(), 0, &s, &err));
	ASSERT_EQ(0, array_delete(s->tm, r.array_root, &err)) << err.msg;
	ASSERT_EQ(0, bitset_delete(s->tm, r.bitset_root, &err)) << err.msg;
	ASSERT_EQ(0, array_empty(s->tm, &r.array_root, &err));
	ASSERT_EQ(0, bitset_empty(s->tm, &r.bitset_root, &err));
	r.nr_values = r.nr_bits = 0;
	sb_ctx ctx = { &r };
	ASSERT_EQ(0, pd_store_commit(s, encode_sb, &ctx, &err)) << err.msg;
	pd_store_destroy(s);
	/* the counts equal the references: nothing leaked */
	state got = read_back(path, false);
	EXPECT_TRUE(got.values.empty() && got.bits.empty());
}

/*
 * Every cut point: the file holds the state of the last commit whose
 * superblock landed, and its counts are consistent.
 */
void every_cut(const string &path, const workload &w, unsigned flags)
{
	vector<state> expect = w.expected();
	uint64_t total;
	{
		pd_err err;
		engine_ptr io;
		io_engine *f;

		zero_file(path);
		io.e = open_file(path);
		ASSERT_EQ(0, io_engine_fault_create(io.e, UINT64_MAX, &f));
		ASSERT_EQ(0, w.run(f, &err)) << err.msg;
		io_fault_stats st;
		io_engine_fault_get_stats(f, &st);
		total = st.writes_seen;
		io_engine_destroy(f);
	}
	unsigned step = total > 400 ? (unsigned)(total / 400) : 1;
	for (uint64_t cut = 0; cut <= total; cut += step) {
		pd_err err;
		engine_ptr io;
		io_engine *f;
		roots r;
		vector<uint8_t> blob;

		zero_file(path);
		io.e = open_file(path);
		ASSERT_EQ(0, io_engine_fault_create(io.e, cut, &f));
		io_engine_fault_set_flags(f, flags);
		(void)w.run(f, &err);
		io_engine_destroy(f);
		if (!read_sb(io.e, &r, &blob))
			continue;	/* nothing committed yet */
		state got = read_back(path, false);
		bool ok = false;
		for (const state &s : expect)
			ok = ok || s == got;
		/* the newest commit that landed: its sizes match */
		EXPECT_TRUE(ok) << "cut " << cut << " of " << total;
		if (::testing::Test::HasFailure())
			return;
	}
}

TEST_F(ArrayTest, every_cut_leaves_a_committed_state)
{
	workload w = { 2500, 40000, 4, 30, 11 };
	every_cut(path, w, 0);
}

TEST_F(ArrayTest, every_torn_cut_leaves_a_committed_state)
{
	workload w = { 2500, 40000, 3, 30, 12 };
	every_cut(path, w, IO_FAULT_TEAR);
}

TEST_F(ArrayTest, every_reordered_cut_leaves_a_committed_state)
{
	workload w = { 2500, 40000, 3, 30, 13 };
	every_cut(path, w, IO_FAULT_REORDER);
}

} // namespace
