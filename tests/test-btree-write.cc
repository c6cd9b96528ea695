/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The btree write side (insert, remove, delete, bulk loader) against a
 * model, with an independent checker: after each transaction every live
 * tree is walked (btree_walk) and checked for shape, fill, order and
 * contents, every reachable node is re-read from the file and validated,
 * and the metadata (and data) reference counts are recomputed from the
 * distinct nodes reachable from all live roots and compared with the
 * space maps, block by block - so sharing, shadowing and leaks all show.
 */
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <unordered_set>
#include <vector>

extern "C" {
#include "persistent-data/block-manager.h"
#include "persistent-data/btree.h"
#include "persistent-data/btree-write.h"
#include "persistent-data/count-map.h"
#include "persistent-data/endian.h"
#include "persistent-data/io-engine.h"
#include "persistent-data/space-map.h"
#include "persistent-data/transaction-manager.h"
}

using namespace std;

namespace {

//----------------------------------------------------------------
// Node layout (format doc 4.1, 4.2)

constexpr uint32_t FLAG_INTERNAL = 1, FLAG_LEAF = 2;

uint32_t hdr_flags(const void *n) { return load_le32((const uint8_t *)n + 4); }
uint32_t hdr_max(const void *n) { return load_le32((const uint8_t *)n + 20); }
uint32_t hdr_vs(const void *n) { return load_le32((const uint8_t *)n + 24); }
uint32_t hdr_padding(const void *n) { return load_le32((const uint8_t *)n + 28); }

/* (4096 - 32) / (8 + value size), rounded down to a multiple of 3 */
uint32_t max_entries_for(uint32_t vs)
{
	return (4064 / (8 + vs)) / 3 * 3;
}

const void *value_ptr(const void *n, unsigned i, uint32_t vs)
{
	return (const uint8_t *)n + 32 + 8 * hdr_max(n) + (size_t)i * vs;
}

using model_t = map<uint64_t, string>;

//----------------------------------------------------------------
// Environment: a metadata file, bm, core space map, tm

struct env {
	string dir;
	io_engine *io = nullptr;
	bm *bmgr = nullptr;
	space_map *sm = nullptr;
	tm *tmgr = nullptr;
	uint64_t nr_blocks;

	/*
	 * io_flags: IO_OPEN_NO_DIRECT where a test re-reads thousands of
	 * nodes, to keep it fast; the others go through O_DIRECT.
	 */
	explicit env(uint64_t blocks = 16384, unsigned cache = BM_DEFAULT_CACHE_BLOCKS,
		     unsigned io_flags = 0)
		: nr_blocks(blocks)
	{
		const char *tmp = getenv("TMPDIR");
		string templ = string(tmp && *tmp ? tmp : "/tmp") + "/btree-write-XXXXXX";
		vector<char> buf(templ.begin(), templ.end());
		pd_err err = {};

		buf.push_back('\0');
		if (!mkdtemp(buf.data()))
			throw runtime_error("mkdtemp");
		dir = buf.data();
		string path = dir + "/metadata";
		int fd = open(path.c_str(), O_CREAT | O_RDWR, 0600);
		if (fd < 0 || ftruncate(fd, (off_t)(blocks * MD_BLOCK_SIZE)))
			throw runtime_error("create metadata file");
		close(fd);
		if (io_engine_open(path.c_str(), IO_ENGINE_SYNC, IO_OPEN_WRITE | io_flags,
				   &io, &err))
			throw runtime_error(err.msg);
		if (bm_create(io, cache, &bmgr, &err))
			throw runtime_error(err.msg);
		if (sm_core_create(blocks, &sm) || sm_set_count(sm, 0, 1))
			throw runtime_error("sm_core_create");
		if (tm_create(bmgr, sm, &tmgr, &err))
			throw runtime_error(err.msg);
	}

	~env()
	{
		tm_destroy(tmgr);
		bm_destroy(bmgr);
		sm_destroy(sm);
		io_engine_destroy(io);
		filesystem::remove_all(dir);
	}

	/* sm commit, flush everything, then a dummy superblock at block 0 */
	void commit()
	{
		pd_err err = {};
		void *sb = io_alloc_block();

		ASSERT_NE(sb, nullptr);
		memset(sb, 0, MD_BLOCK_SIZE);
		ASSERT_EQ(sm_commit(sm, &err), 0) << err.msg;
		ASSERT_EQ(tm_pre_commit(tmgr, &err), 0) << err.msg;
		ASSERT_EQ(tm_commit_superblock(tmgr, sb, &err), 0) << err.msg;
		free(sb);
	}

	uint32_t count(uint64_t b)
	{
		uint32_t c = 0;

		EXPECT_EQ(sm_get_count(sm, b, &c), 0);
		return c;
	}
};

//----------------------------------------------------------------
// Value types

/* Values that are data block numbers, counted in a second core space map. */
struct data_counts {
	space_map *sm = nullptr;
	uint64_t nr;

	explicit data_counts(uint64_t n) : nr(n)
	{
		if (sm_core_create(n, &sm))
			throw runtime_error("sm_core_create");
	}
	~data_counts() { sm_destroy(sm); }

	static int inc(void *ctx, const void *v)
	{
		return sm_inc(static_cast<data_counts *>(ctx)->sm, load_le64(v));
	}
	static int dec(void *ctx, const void *v)
	{
		return sm_dec(static_cast<data_counts *>(ctx)->sm, load_le64(v));
	}
	static bool equal(void *, const void *a, const void *b)
	{
		return load_le64(a) == load_le64(b);
	}

	uint64_t alloc()
	{
		uint64_t b = 0;

		EXPECT_EQ(sm_new_block(sm, &b), 0);
		return b;
	}
	uint32_t count(uint64_t b)
	{
		uint32_t c = 0;

		EXPECT_EQ(sm_get_count(sm, b, &c), 0);
		return c;
	}
};

btree_info plain_info(env &e, uint32_t vs)
{
	btree_info info = {};

	info.tm = e.tmgr;
	info.vt.size = vs;
	return info;
}

btree_info counted_info(env &e, data_counts &d)
{
	btree_info info = {};

	info.tm = e.tmgr;
	info.vt.context = &d;
	info.vt.size = 8;
	info.vt.inc = data_counts::inc;
	info.vt.dec = data_counts::dec;
	info.vt.equal = data_counts::equal;
	return info;
}

string le64_value(uint64_t x)
{
	string s(8, '\0');

	store_le64(&s[0], x);
	return s;
}

//----------------------------------------------------------------
// The independent checker

struct node_stat {
	uint64_t block;
	unsigned depth;
	bool leaf;
	uint32_t nr;
	uint32_t max;
};

struct walk_ctx {
	uint32_t vs;
	vector<string> errors;
	/* content mode */
	vector<pair<uint64_t, string>> entries;
	vector<node_stat> nodes;
	/* count mode */
	bool count_mode = false;
	vector<uint32_t> *expected = nullptr;
	unordered_set<uint64_t> *visited = nullptr;
	vector<uint64_t> *distinct = nullptr;
	map<uint64_t, uint32_t> *data_expected = nullptr;
};

int node_cb(void *p, const btree_node_info *n)
{
	auto *c = static_cast<walk_ctx *>(p);
	uint32_t flags = hdr_flags(n->data);
	uint32_t vs = hdr_vs(n->data), max = hdr_max(n->data);
	uint32_t want_vs = n->leaf ? c->vs : 8;
	string where = " (block " + to_string(n->block) + ")";

	if (flags != FLAG_LEAF && flags != FLAG_INTERNAL)
		c->errors.push_back("flags " + to_string(flags) + where);
	if (vs != want_vs)
		c->errors.push_back("value size " + to_string(vs) + where);
	if (max != max_entries_for(want_vs))
		c->errors.push_back("max entries " + to_string(max) + where);
	if (!n->depth && !n->leaf && n->nr_entries < 2)
		c->errors.push_back("internal root with " + to_string(n->nr_entries) +
				    " entries" + where);
	if (hdr_padding(n->data))
		c->errors.push_back("padding" + where);
	if (c->count_mode) {
		if (n->depth)
			(*c->expected)[n->block]++;
		if (!c->visited->insert(n->block).second)
			return BTREE_WALK_SKIP;
		c->distinct->push_back(n->block);
	} else {
		c->nodes.push_back({n->block, n->depth, n->leaf, n->nr_entries, max});
	}
	return BTREE_WALK_CONTINUE;
}

int leaf_cb(void *p, const btree_node_info *n)
{
	auto *c = static_cast<walk_ctx *>(p);

	for (uint32_t i = 0; i < n->nr_entries; i++) {
		const char *v = static_cast<const char *>(value_ptr(n->data, i, c->vs));

		if (c->count_mode) {
			if (c->data_expected)
				(*c->data_expected)[load_le64(v)]++;
		} else {
			c->entries.emplace_back(node_key(n->data, i), string(v, c->vs));
		}
	}
	return BTREE_WALK_CONTINUE;
}

void damage_cb(void *p, const btree_damage *d)
{
	static_cast<walk_ctx *>(p)->errors.push_back(d->msg);
}

const btree_walk_ops walk_ops = { node_cb, leaf_cb, nullptr, damage_cb };

btree_walk_opts walk_opts(uint32_t vs)
{
	btree_walk_opts o = {};

	o.shape.value_size = vs;
	o.check_fill = true;
	return o;
}

/* Shape, fill, order, depth and contents of one tree; returns its nodes. */
vector<node_stat> check_tree(env &e, uint32_t vs, uint64_t root, const model_t &model,
			     const string &name)
{
	walk_ctx c;
	pd_err err = {};
	btree_walk_opts o = walk_opts(vs);

	c.vs = vs;
	EXPECT_EQ(btree_walk(e.bmgr, root, &o, &walk_ops, &c, &err), 0) << err.msg;
	for (auto &m : c.errors)
		ADD_FAILURE() << name << ": " << m;
	EXPECT_EQ(c.entries.size(), model.size()) << name;
	auto it = model.begin();
	for (size_t i = 0; i < c.entries.size() && it != model.end(); i++, ++it) {
		if (c.entries[i].first != it->first || c.entries[i].second != it->second) {
			ADD_FAILURE() << name << ": entry " << i << " is key "
				      << c.entries[i].first << ", model has " << it->first;
			break;
		}
	}
	return c.nodes;
}

/*
 * Reference counts: every live root holds one reference; every distinct
 * internal node one per entry (section 7).  Metadata counts must match
 * the space map for every block (so nothing leaked), data counts (when
 * given) every data block.  Nodes are re-read from the file when the
 * transaction has been committed, so checksums and blocknr are checked.
 */
void check_counts(env &e, uint32_t vs, const vector<uint64_t> &roots,
		  data_counts *data, bool on_disk)
{
	vector<uint32_t> expected(e.nr_blocks, 0);
	unordered_set<uint64_t> visited;
	vector<uint64_t> distinct;
	map<uint64_t, uint32_t> data_expected;
	btree_walk_opts o = walk_opts(vs);

	expected[0] = 1;
	for (uint64_t r : roots) {
		walk_ctx c;
		pd_err err = {};

		c.vs = vs;
		c.count_mode = true;
		c.expected = &expected;
		c.visited = &visited;
		c.distinct = &distinct;
		c.data_expected = data ? &data_expected : nullptr;
		expected[r]++;
		EXPECT_EQ(btree_walk(e.bmgr, r, &o, &walk_ops, &c, &err), 0) << err.msg;
		for (auto &m : c.errors)
			ADD_FAILURE() << "root " << r << ": " << m;
	}
	const count_map *md = sm_core_counts(e.sm);

	for (uint64_t b = 0; b < e.nr_blocks; b++) {
		uint32_t got = cm_get(md, b);

		if (got != expected[b]) {
			ADD_FAILURE() << "metadata block " << b << ": count " << got
				      << ", expected " << expected[b]
				      << (expected[b] ? "" : " (leaked)");
			break;
		}
	}
	if (data) {
		const count_map *dc = sm_core_counts(data->sm);

		for (uint64_t b = 0; b < data->nr; b++) {
			auto it = data_expected.find(b);
			uint32_t want = it == data_expected.end() ? 0 : it->second;

			if (cm_get(dc, b) != want) {
				ADD_FAILURE() << "data block " << b << ": count "
					      << cm_get(dc, b) << ", expected " << want;
				break;
			}
		}
	}
	if (on_disk) {
		void *buf = io_alloc_block();

		ASSERT_NE(buf, nullptr);
		for (uint64_t b : distinct) {
			pd_err err = {};

			ASSERT_EQ(io_read_block(e.io, b, buf), 0);
			EXPECT_EQ(btree_node_validator.check(&btree_node_validator, buf, b, &err), 0)
				<< "block " << b << ": " << err.msg;
		}
		free(buf);
	}
}

//----------------------------------------------------------------
// Small helpers

uint64_t empty_tree(btree_info &info)
{
	pd_err err = {};
	uint64_t root = 0;

	EXPECT_EQ(btree_empty(&info, &root, &err), 0) << err.msg;
	return root;
}

void insert(btree_info &info, uint64_t &root, uint64_t key, const string &v,
	    bool *inserted = nullptr)
{
	pd_err err = {};
	bool ins = false;

	ASSERT_EQ(btree_insert(&info, root, key, v.data(), &root, &ins, &err), 0) << err.msg;
	if (inserted)
		*inserted = ins;
}

void remove_key(btree_info &info, uint64_t &root, uint64_t key)
{
	pd_err err = {};

	ASSERT_EQ(btree_remove(&info, root, key, &root, &err), 0) << err.msg;
}

/* After every remove: a root internal node never keeps a single child. */
void check_root_shape(env &e, uint64_t root)
{
	bm_block *blk;
	pd_err err = {};

	ASSERT_EQ(bm_read_lock(e.bmgr, root, &btree_node_validator, &blk, &err), 0) << err.msg;
	const void *n = bm_block_data(blk);
	uint32_t flags = hdr_flags(n), nr = load_le32((const uint8_t *)n + 16);
	bm_unlock(blk);
	if (flags == FLAG_INTERNAL) {
		ASSERT_GE(nr, 2u) << "root " << root;
	}
}

void delete_tree(btree_info &info, uint64_t root)
{
	pd_err err = {};

	ASSERT_EQ(btree_delete(&info, root, &err), 0) << err.msg;
}

unsigned tree_height(const vector<node_stat> &nodes)
{
	unsigned h = 0;

	for (auto &n : nodes)
		h = max(h, n.depth + 1);
	return h;
}

string random_value(mt19937_64 &rng, uint32_t vs)
{
	string s(vs, '\0');

	for (auto &ch : s)
		ch = (char)(rng() & 0xff);
	return s;
}

//----------------------------------------------------------------
// 1 and 3. Property test: random operations against a model

struct snapshot {
	uint64_t root;
	model_t model;
};

struct property_params {
	uint32_t vs = 8;
	unsigned ops = 100000;
	unsigned ops_per_txn = 1000;
	uint64_t seed = 1;
	bool counted = false;	/* values are data blocks counted in a second map */
	unsigned cache = BM_DEFAULT_CACHE_BLOCKS;
	unsigned max_snapshots = 3;
	size_t high = 45000;	/* grow to this many keys, then shrink to almost none */
	bool batched = false;	/* half the inserts go in sorted batches (btree_insert_many) */
};

struct property_stats {
	unsigned inserts = 0, overwrites = 0, removes = 0, absent_removes = 0, lookups = 0;
	unsigned batches = 0;
	unsigned snapshots = 0, max_height = 0, checks = 0, cycles = 0, height_drops = 0;
	size_t max_keys = 0;
};

void run_property(const property_params &pp, property_stats &st)
{
	env e(16384, pp.cache, IO_OPEN_NO_DIRECT);
	unique_ptr<data_counts> data;
	btree_info info;
	mt19937_64 rng(pp.seed);
	model_t model;
	vector<snapshot> snaps;
	uint64_t root;
	uint64_t key_space = 1u << 20;

	if (pp.counted) {
		data = make_unique<data_counts>(100000);
		info = counted_info(e, *data);
	} else {
		info = plain_info(e, pp.vs);
	}
	root = empty_tree(info);
	unsigned last_height = 1;

	auto new_value = [&](uint64_t key) -> string {
		if (!pp.counted)
			return random_value(rng, pp.vs);
		/* sometimes remap to the block already mapped: the "equal" case */
		auto it = model.find(key);
		if (it != model.end() && rng() % 8 == 0) {
			EXPECT_EQ(sm_inc(data->sm, load_le64(it->second.data())), 0);
			return it->second;
		}
		return le64_value(data->alloc());
	};
	auto check_all = [&](bool on_disk) {
		vector<uint64_t> roots{root};
		auto nodes = check_tree(e, info.vt.size, root, model, "live");

		unsigned h = tree_height(nodes);

		st.max_height = max(st.max_height, h);
		if (h < last_height)
			st.height_drops++;
		last_height = h;
		for (size_t i = 0; i < snaps.size(); i++) {
			check_tree(e, info.vt.size, snaps[i].root, snaps[i].model,
				   "snapshot " + to_string(i));
			roots.push_back(snaps[i].root);
		}
		check_counts(e, info.vt.size, roots, data.get(), on_disk);
		st.checks++;
	};

	uint64_t seq_next = 0;
	int seq_left = 0, seq_dir = 1;
	/* cycles of growth and shrinkage: roots split beneath and collapse */
	bool growing = true;
	size_t high = pp.high;

	for (unsigned op = 0; op < pp.ops; op++) {
		if (growing && model.size() >= high) {
			growing = false;
		} else if (!growing && model.size() <= 20) {
			growing = true;
			high = max<size_t>(high * 2 / 3, 1000);
			st.cycles++;
		}
		unsigned roll = rng() % 100;
		unsigned p_insert = growing ? 88 : 6;
		unsigned p_remove = growing ? 5 : 87;

		if (roll < p_insert && pp.batched && rng() % 2) {
			/*
			 * A sorted batch: keys around one point (many land in
			 * one leaf, overflow it and split it) and some spread
			 * over the whole key space, with overwrites among them.
			 */
			std::map<uint64_t, string> batch;
			uint64_t centre = rng() % key_space;
			unsigned n = 1 + rng() % 300;

			for (unsigned i = 0; i < n; i++) {
				uint64_t key = rng() % 4 ? (centre + rng() % 700) % key_space :
							   rng() % key_space;
				auto it = model.lower_bound(key);

				if (rng() % 5 == 0 && it != model.end())
					key = it->first;
				if (!batch.count(key))
					batch[key] = new_value(key);
			}
			vector<uint64_t> keys;
			string values;
			unsigned expect_added = 0;

			for (auto &kv : batch) {
				keys.push_back(kv.first);
				values += kv.second;
				expect_added += !model.count(kv.first);
			}
			pd_err err = {};
			uint64_t added = 0;

			ASSERT_EQ(btree_insert_many(&info, root, keys.data(), values.data(),
						    (unsigned)keys.size(), &root, &added, &err), 0)
				<< err.msg;
			ASSERT_EQ(added, expect_added);
			for (auto &kv : batch)
				model[kv.first] = kv.second;
			st.inserts += (unsigned)added;
			st.overwrites += (unsigned)(keys.size() - added);
			st.batches++;
		} else if (roll < p_insert) {
			uint64_t key;

			if (seq_left > 0) {
				/* runs of ascending / descending keys: half-full splits, key[0] lowering */
				key = seq_next;
				seq_next += seq_dir;
				seq_left--;
			} else {
				key = rng() % key_space;
				if (rng() % 1000 == 0) {
					seq_left = 300 + rng() % 2000;
					seq_dir = rng() % 2 ? 1 : -1;
					seq_next = key;
					if (seq_dir < 0 && seq_next < (uint64_t)seq_left)
						seq_dir = 1;
				}
			}
			string v = new_value(key);
			auto old = model.find(key);
			bool was = old != model.end(), ins = false;
			bool equal_remap = pp.counted && was && old->second == v;

			insert(info, root, key, v, &ins);
			if (::testing::Test::HasFatalFailure())
				return;
			ASSERT_EQ(ins, !was) << "key " << key;
			if (equal_remap) {
				/* the entry kept its reference: ours is surplus */
				ASSERT_EQ(sm_dec(data->sm, load_le64(v.data())), 0);
			}
			model[key] = v;
			(was ? st.overwrites : st.inserts)++;
		} else if (roll < p_insert + p_remove) {
			uint64_t k = rng() % key_space;
			auto it = model.lower_bound(k);
			pd_err err = {};

			if (it == model.end())
				it = model.begin();
			if (it == model.end() || rng() % 20 == 0) {
				/* absent key: -ENODATA, tree untouched */
				k |= 1ull << 40;
				uint64_t nr = root;
				ASSERT_EQ(btree_remove(&info, root, k, &nr, &err), -ENODATA);
				ASSERT_EQ(nr, root);
				st.absent_removes++;
			} else {
				remove_key(info, root, it->first);
				check_root_shape(e, root);
				if (::testing::Test::HasFatalFailure())
					return;
				model.erase(it);
				st.removes++;
			}
		} else {
			uint64_t k = rng() % key_space;
			auto it = model.lower_bound(k);
			vector<char> v(info.vt.size);
			pd_err err = {};

			if (it != model.end() && rng() % 2)
				k = it->first;
			int r = btree_lookup(e.bmgr, root, info.vt.size, k, v.data(), &err);
			auto m = model.find(k);
			if (m == model.end()) {
				ASSERT_EQ(r, -ENODATA) << "key " << k;
			} else {
				ASSERT_EQ(r, 0) << "key " << k << ": " << err.msg;
				ASSERT_EQ(string(v.data(), v.size()), m->second) << "key " << k;
			}
			st.lookups++;
		}
		st.max_keys = max(st.max_keys, model.size());

		/* snapshots: taken and dropped at random points, also mid-transaction */
		if (rng() % (pp.ops_per_txn * 2) == 0 && pp.max_snapshots) {
			ASSERT_EQ(tm_inc(e.tmgr, root), 0);
			snaps.push_back({root, model});
			st.snapshots++;
		}
		if (snaps.size() > pp.max_snapshots ||
		    (!snaps.empty() && rng() % (pp.ops_per_txn * 4) == 0)) {
			size_t i = rng() % snaps.size();

			delete_tree(info, snaps[i].root);
			snaps.erase(snaps.begin() + (long)i);
		}

		if ((op + 1) % pp.ops_per_txn == 0) {
			/* check the in-flight state too, now and then */
			if ((op / pp.ops_per_txn) % 10 == 3)
				check_all(false);
			e.commit();
			check_all(true);
			if (::testing::Test::HasFailure())
				return;
		}
	}

	/* dropping every tree frees everything but the superblock */
	delete_tree(info, root);
	for (auto &s : snaps)
		delete_tree(info, s.root);
	for (uint64_t b = 1; b < e.nr_blocks; b++)
		ASSERT_EQ(e.count(b), 0u) << "block " << b;
	if (data) {
		for (uint64_t b = 0; b < data->nr; b++)
			ASSERT_EQ(data->count(b), 0u) << "data block " << b;
	}
}

void report(const char *name, const property_stats &st)
{
	printf("[   info   ] %s: %u inserts (%u batches), %u overwrites, %u removes (+%u absent), "
	       "%u lookups, %u snapshots, %u checks, max %zu keys, max height %u, "
	       "%u grow/shrink cycles, %u height drops seen\n",
	       name, st.inserts, st.batches, st.overwrites, st.removes, st.absent_removes, st.lookups,
	       st.snapshots, st.checks, st.max_keys, st.max_height, st.cycles,
	       st.height_drops);
}

TEST(btree_write_property, random_ops_value_size_8)
{
	property_params pp;
	property_stats st;

	pp.ops = 130000;
	run_property(pp, st);
	report("value size 8", st);
	EXPECT_EQ(st.inserts + st.overwrites + st.removes + st.absent_removes + st.lookups,
		  pp.ops);
	EXPECT_EQ(st.batches, 0u);
	EXPECT_GE(st.max_height, 3u);
	EXPECT_GE(st.cycles, 1u);
	EXPECT_GE(st.height_drops, 2u);
	EXPECT_GT(st.snapshots, 10u);
}

TEST(btree_write_property, random_ops_value_sizes_4_16_24)
{
	for (uint32_t vs : {4u, 16u, 24u}) {
		property_params pp;
		property_stats st;

		pp.vs = vs;
		pp.ops = 30000;
		pp.ops_per_txn = 500;
		pp.seed = vs;
		pp.high = 10000;
		run_property(pp, st);
		report(("value size " + to_string(vs)).c_str(), st);
		if (::testing::Test::HasFailure())
			return;
		EXPECT_GE(st.max_height, 2u);
		EXPECT_GE(st.cycles, 1u);
	}
}

TEST(btree_write_property, counted_values_match_distinct_leaves)
{
	property_params pp;
	property_stats st;

	pp.counted = true;
	pp.ops = 40000;
	pp.high = 12000;
	pp.ops_per_txn = 800;
	pp.seed = 7;
	run_property(pp, st);
	report("counted values", st);
	EXPECT_GE(st.cycles, 1u);
}

// btree_insert_many against the same model: batches that fill, overflow
// and split leaves, under snapshots, with counted values (the equal-value
// overwrite drops the caller's surplus reference itself).
TEST(btree_write_property, batched_inserts_counted_values)
{
	property_params pp;
	property_stats st;

	pp.counted = true;
	pp.batched = true;
	pp.ops = 8000;
	pp.high = 60000;
	pp.ops_per_txn = 200;
	pp.seed = 11;
	run_property(pp, st);
	report("batched, counted values", st);
	EXPECT_GT(st.batches, 500u);
	EXPECT_GE(st.max_height, 3u);
}

TEST(btree_write_property, batched_inserts_value_size_24)
{
	property_params pp;
	property_stats st;

	pp.vs = 24;
	pp.batched = true;
	pp.ops = 6000;
	pp.high = 30000;
	pp.ops_per_txn = 150;
	pp.seed = 12;
	run_property(pp, st);
	report("batched, value size 24", st);
	EXPECT_GT(st.batches, 300u);
	EXPECT_GE(st.max_height, 3u);
}

TEST(btree_write_property, tiny_block_cache_writes_back_and_rereads)
{
	property_params pp;
	property_stats st;

	pp.ops = 15000;
	pp.ops_per_txn = 1500;
	pp.high = 5000;
	pp.cache = 16;
	pp.seed = 99;
	run_property(pp, st);
	report("16-block cache", st);
}

//----------------------------------------------------------------
// 2. Snapshot sharing

TEST(btree_write, snapshot_owner_keeps_old_contents)
{
	env e;
	btree_info info = plain_info(e, 8);
	uint64_t a = empty_tree(info);
	model_t model;

	for (uint64_t k = 0; k < 20000; k++) {
		insert(info, a, k * 3, le64_value(k));
		model[k * 3] = le64_value(k);
	}
	e.commit();

	/* two owners of one root */
	ASSERT_EQ(tm_inc(e.tmgr, a), 0);
	uint64_t b = a;
	model_t old = model;
	check_counts(e, 8, {a, b}, nullptr, true);
	ASSERT_EQ(e.count(a), 2u);

	/* modify through owner a: inserts, overwrites and removes in the lower half */
	for (uint64_t k = 0; k < 10000; k += 97) {
		insert(info, a, k * 3 + 1, le64_value(~k));
		model[k * 3 + 1] = le64_value(~k);
		insert(info, a, k * 3, le64_value(k + 1));
		model[k * 3] = le64_value(k + 1);
	}
	for (uint64_t k = 5000; k < 9000; k++) {
		remove_key(info, a, k * 3);
		model.erase(k * 3);
	}
	ASSERT_NE(a, b);
	check_tree(e, 8, a, model, "owner a");
	check_tree(e, 8, b, old, "owner b");
	check_counts(e, 8, {a, b}, nullptr, false);
	e.commit();
	check_counts(e, 8, {a, b}, nullptr, true);

	/* dropping b frees exactly the nodes a does not reach */
	vector<node_stat> na = check_tree(e, 8, a, model, "owner a");
	vector<node_stat> nb = check_tree(e, 8, b, old, "owner b");
	set<uint64_t> in_a, only_b;
	for (auto &n : na)
		in_a.insert(n.block);
	for (auto &n : nb)
		if (!in_a.count(n.block))
			only_b.insert(n.block);
	ASSERT_FALSE(only_b.empty());
	ASSERT_LT(only_b.size(), nb.size());	/* and they did share */
	uint64_t free_before = sm_nr_free(e.sm);

	delete_tree(info, b);
	EXPECT_EQ(sm_nr_free(e.sm) - free_before, only_b.size());
	for (uint64_t blk : only_b)
		EXPECT_EQ(e.count(blk), 0u) << blk;
	check_tree(e, 8, a, model, "owner a after b dropped");
	check_counts(e, 8, {a}, nullptr, false);

	delete_tree(info, a);
	EXPECT_EQ(sm_nr_free(e.sm), e.nr_blocks - 1);
}

TEST(btree_write, snapshot_within_one_transaction_is_not_modified)
{
	env e;
	btree_info info = plain_info(e, 8);
	uint64_t a = empty_tree(info);
	model_t model;

	/* no commit: the nodes are new in this transaction, yet shared */
	for (uint64_t k = 0; k < 3000; k++) {
		insert(info, a, k, le64_value(k));
		model[k] = le64_value(k);
	}
	ASSERT_EQ(tm_inc(e.tmgr, a), 0);
	uint64_t b = a;
	model_t old = model;

	for (uint64_t k = 0; k < 3000; k += 2) {
		remove_key(info, a, k);
		model.erase(k);
	}
	check_tree(e, 8, a, model, "a");
	check_tree(e, 8, b, old, "b");
	check_counts(e, 8, {a, b}, nullptr, false);
	e.commit();
	check_counts(e, 8, {a, b}, nullptr, true);
}

//----------------------------------------------------------------
// 3. Value type inc/dec

TEST(btree_write, shadowing_a_shared_leaf_increments_its_values)
{
	env e;
	data_counts d(10000);
	btree_info info = counted_info(e, d);
	uint64_t a = empty_tree(info);
	model_t model;

	for (uint64_t k = 0; k < 1000; k++) {
		uint64_t db = d.alloc();

		insert(info, a, k, le64_value(db));
		model[k] = le64_value(db);
	}
	e.commit();
	ASSERT_EQ(tm_inc(e.tmgr, a), 0);
	uint64_t b = a;
	model_t old = model;

	/* right after the snapshot only the root is shared: data counts are 1 */
	for (auto &kv : model)
		ASSERT_EQ(d.count(load_le64(kv.second.data())), 1u);

	/* touching key 0 copies the first leaf: its values gain a leaf */
	uint64_t db0 = load_le64(model[0].data());
	uint64_t nb = d.alloc();
	insert(info, a, 0, le64_value(nb));
	model[0] = le64_value(nb);
	EXPECT_EQ(d.count(db0), 1u);	/* only b's leaf now */
	EXPECT_EQ(d.count(nb), 1u);
	EXPECT_EQ(d.count(load_le64(model[1].data())), 2u);	/* both leaves */
	EXPECT_EQ(d.count(load_le64(model[999].data())), 1u);	/* untouched leaf */

	/* remove in a: the value is dropped by a's leaf only */
	uint64_t db1 = load_le64(model[1].data());
	remove_key(info, a, 1);
	model.erase(1);
	EXPECT_EQ(d.count(db1), 1u);

	check_counts(e, 8, {a, b}, &d, false);
	e.commit();
	check_counts(e, 8, {a, b}, &d, true);

	/* overwrite with an equal value: nothing dec'd, our extra ref is ours */
	uint64_t db5 = load_le64(model[5].data());
	ASSERT_EQ(sm_inc(d.sm, db5), 0);
	bool ins = true;
	insert(info, a, 5, le64_value(db5), &ins);
	EXPECT_FALSE(ins);
	EXPECT_EQ(d.count(db5), 3u);
	ASSERT_EQ(sm_dec(d.sm, db5), 0);
	check_counts(e, 8, {a, b}, &d, false);

	delete_tree(info, b);
	check_counts(e, 8, {a}, &d, false);
	delete_tree(info, a);
	check_counts(e, 8, {}, &d, false);
	EXPECT_EQ(sm_nr_free(d.sm), d.nr);
}

//----------------------------------------------------------------
// 4. Bulk loader

struct built {
	uint64_t root;
	model_t model;
};

built build_keys(env &e, btree_info &info, uint64_t n, uint64_t first = 0,
		 data_counts *d = nullptr)
{
	btree_builder *b = nullptr;
	pd_err err = {};
	built out;

	EXPECT_EQ(btree_builder_create(&info, &b, &err), 0) << err.msg;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t k = first + i * 2;
		string v = d ? le64_value(d->alloc()) : le64_value(k * 7);

		v.resize(info.vt.size, 'x');
		EXPECT_EQ(btree_builder_push(b, k, v.data(), &err), 0) << err.msg;
		out.model[k] = v;
	}
	EXPECT_EQ(btree_builder_finish(b, &out.root, &err), 0) << err.msg;
	btree_builder_destroy(b);
	(void)e;
	return out;
}

/* Per level, left to right: the entry counts of the nodes. */
map<unsigned, vector<uint32_t>> level_fill(const vector<node_stat> &nodes)
{
	map<unsigned, vector<uint32_t>> lv;

	for (auto &n : nodes)
		lv[n.depth].push_back(n.nr);
	return lv;
}

TEST(btree_builder, sizes_fill_and_counts)
{
	for (uint32_t vs : {8u, 24u, 4u}) {
		for (uint64_t n : {0ull, 1ull, 251ull, 252ull, 253ull, 505ull, 1000ull, 100000ull}) {
			env e;
			btree_info info = plain_info(e, vs);
			built t = build_keys(e, info, n);
			uint32_t max_leaf = max_entries_for(vs);
			string name = "vs " + to_string(vs) + ", " + to_string(n) + " keys";

			auto nodes = check_tree(e, vs, t.root, t.model, name);
			check_counts(e, vs, {t.root}, nullptr, false);
			e.commit();
			check_counts(e, vs, {t.root}, nullptr, true);

			/* full nodes, the last two of a level split evenly */
			auto lv = level_fill(nodes);
			for (auto &[depth, fills] : lv) {
				uint32_t cap = depth == lv.rbegin()->first ? max_leaf : 252;
				size_t m = fills.size();

				if (m == 1)
					continue;	/* the root */
				for (size_t i = 0; i + 2 < m; i++)
					EXPECT_EQ(fills[i], cap) << name << " depth " << depth;
				EXPECT_LE(max(fills[m - 2], fills[m - 1]) -
					  min(fills[m - 2], fills[m - 1]), 1u) << name;
				EXPECT_GE(min(fills[m - 2], fills[m - 1]), cap / 2) << name;
			}
			if (n <= max_leaf) {
				EXPECT_EQ(nodes.size(), 1u) << name;
			} else if (n <= 2 * (uint64_t)max_leaf) {
				EXPECT_EQ(nodes.size(), 3u) << name;
			}
			if (::testing::Test::HasFailure())
				return;
		}
	}
}

TEST(btree_builder, rejects_keys_out_of_order)
{
	env e;
	btree_info info = plain_info(e, 8);
	btree_builder *b = nullptr;
	pd_err err = {};
	string v = le64_value(1);

	ASSERT_EQ(btree_builder_create(&info, &b, &err), 0);
	ASSERT_EQ(btree_builder_push(b, 10, v.data(), &err), 0);
	EXPECT_EQ(btree_builder_push(b, 10, v.data(), &err), -EINVAL);
	EXPECT_EQ(btree_builder_push(b, 9, v.data(), &err), -EINVAL);
	ASSERT_EQ(btree_builder_push(b, 11, v.data(), &err), 0);
	uint64_t root;
	ASSERT_EQ(btree_builder_finish(b, &root, &err), 0);
	btree_builder_destroy(b);
	check_tree(e, 8, root, {{10, v}, {11, v}}, "two keys");
}

/* The leaves of a tree, in key order. */
vector<node_stat> leaves_of(env &e, uint32_t vs, uint64_t root, const model_t &m)
{
	vector<node_stat> out;

	for (auto &n : check_tree(e, vs, root, m, "source"))
		if (n.leaf)
			out.push_back(n);
	return out;
}

struct splice_case {
	const char *name;
	unsigned loose_before;		/* loose keys pushed before the leaf */
	unsigned leaves;		/* source leaves spliced in a row */
	unsigned loose_after;
	bool expect_shared;		/* the first spliced leaf is in the new tree */
	bool inserted_source = false;	/* source built by inserts: half-full leaves */
};

/* Like build_keys, through btree_insert: ascending keys leave leaves half full. */
built insert_keys(env &e, btree_info &info, uint64_t n, uint64_t first, data_counts *d)
{
	built out;

	out.root = empty_tree(info);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t k = first + i * 2;
		string v = d ? le64_value(d->alloc()) : le64_value(k * 7);

		insert(info, out.root, k, v);
		out.model[k] = v;
	}
	(void)e;
	return out;
}

TEST(btree_builder, push_leaf_shares_or_copies)
{
	const splice_case cases[] = {
		{ "loose, leaf, loose", 100, 1, 100, true },
		{ "leaf alone", 0, 1, 0, true },
		{ "several leaves", 0, 5, 0, true },
		{ "full leaves around", 600, 3, 600, true },
		{ "few loose before", 10, 1, 300, false },
		{ "few loose after", 300, 2, 10, true },	/* the last leaf is copied */
		{ "leaf then few loose", 0, 1, 10, false },
		{ "half-full leaf then few loose: one node", 0, 1, 10, false, true },
		{ "half-full leaves in a row", 0, 3, 0, true, true },
		{ "loose, half-full leaves, loose", 90, 4, 90, true, true },
	};

	for (auto &c : cases) {
		env e;
		data_counts d(100000);
		btree_info info = counted_info(e, d);
		/* source tree: keys 1,000,000 + 2i, leaves spread evenly */
		built src = c.inserted_source ? insert_keys(e, info, 3000, 1000000, &d)
					      : build_keys(e, info, 3000, 1000000, &d);
		vector<node_stat> sl = leaves_of(e, 8, src.root, src.model);
		e.commit();

		btree_builder *b = nullptr;
		pd_err err = {};
		model_t model;
		ASSERT_EQ(btree_builder_create(&info, &b, &err), 0);
		for (unsigned i = 0; i < c.loose_before; i++) {
			string v = le64_value(d.alloc());
			ASSERT_EQ(btree_builder_push(b, i, v.data(), &err), 0) << err.msg;
			model[i] = v;
		}
		/* splice leaves 2.. of the source; we give each one reference */
		uint64_t last = 0;
		for (unsigned l = 0; l < c.leaves; l++) {
			const node_stat &leaf = sl[2 + l];

			ASSERT_EQ(tm_inc(e.tmgr, leaf.block), 0);
			ASSERT_EQ(btree_builder_push_leaf(b, leaf.block, &err), 0)
				<< c.name << ": " << err.msg;
		}
		/* the model: keys of the spliced leaves, read back from the source */
		{
			unsigned li = 0;
			size_t seen = 0;
			vector<size_t> starts;
			for (auto &l : sl) {
				starts.push_back(seen);
				seen += l.nr;
			}
			auto it = src.model.begin();
			advance(it, (long)starts[2]);
			for (li = 0; li < c.leaves; li++)
				for (uint32_t i = 0; i < sl[2 + li].nr; i++, ++it) {
					model[it->first] = it->second;
					last = it->first;
				}
		}
		for (unsigned i = 0; i < c.loose_after; i++) {
			string v = le64_value(d.alloc());
			uint64_t k = last + 1 + i;

			ASSERT_EQ(btree_builder_push(b, k, v.data(), &err), 0) << err.msg;
			model[k] = v;
		}
		uint64_t root;
		ASSERT_EQ(btree_builder_finish(b, &root, &err), 0) << c.name << ": " << err.msg;
		btree_builder_destroy(b);

		auto nodes = check_tree(e, 8, root, model, c.name);
		bool shared = false;
		for (auto &n : nodes)
			if (n.block == sl[2].block)
				shared = true;
		EXPECT_EQ(shared, c.expect_shared) << c.name;
		if (shared) {
			EXPECT_EQ(e.count(sl[2].block), 2u) << c.name;
		}
		if (!strcmp(c.name, "leaf alone")) {
			EXPECT_EQ(root, sl[2].block);
		}
		check_counts(e, 8, {src.root, root}, &d, false);
		e.commit();
		check_counts(e, 8, {src.root, root}, &d, true);

		/* both trees stay independent afterwards */
		delete_tree(info, src.root);
		check_tree(e, 8, root, model, c.name);
		check_counts(e, 8, {root}, &d, false);
		delete_tree(info, root);
		check_counts(e, 8, {}, &d, false);
		if (::testing::Test::HasFailure())
			return;
	}
}

TEST(btree_builder, push_leaf_rejects_bad_input_without_taking_the_reference)
{
	env e;
	btree_info info = plain_info(e, 8);
	built src = build_keys(e, info, 1000);
	vector<node_stat> sl = leaves_of(e, 8, src.root, src.model);
	btree_builder *b = nullptr;
	pd_err err = {};
	string v = le64_value(0);

	ASSERT_EQ(btree_builder_create(&info, &b, &err), 0);
	ASSERT_EQ(btree_builder_push(b, 1u << 30, v.data(), &err), 0);
	/* keys not after the last one */
	EXPECT_EQ(btree_builder_push_leaf(b, sl[1].block, &err), -EINVAL);
	EXPECT_EQ(e.count(sl[1].block), 1u);
	/* an internal node */
	EXPECT_EQ(btree_builder_push_leaf(b, src.root, &err), -EINVAL);
	EXPECT_EQ(e.count(src.root), 1u);
	btree_builder_destroy(b);

	/* a leaf of another value size */
	btree_info other = plain_info(e, 24);
	ASSERT_EQ(btree_builder_create(&other, &b, &err), 0);
	EXPECT_EQ(btree_builder_push_leaf(b, sl[0].block, &err), -EINVAL);
	btree_builder_destroy(b);
	check_counts(e, 8, {src.root}, nullptr, false);
}

TEST(btree_builder, output_accepts_inserts_and_removes)
{
	env e;
	btree_info info = plain_info(e, 8);
	built t = build_keys(e, info, 30000);
	e.commit();

	for (uint64_t k = 1; k < 60000; k += 6) {
		insert(info, t.root, k, le64_value(k));
		t.model[k] = le64_value(k);
	}
	for (uint64_t k = 0; k < 60000; k += 4) {
		remove_key(info, t.root, k);
		t.model.erase(k);
	}
	check_tree(e, 8, t.root, t.model, "modified");
	e.commit();
	check_counts(e, 8, {t.root}, nullptr, true);
}

//----------------------------------------------------------------
// 5. Split beneath, and other edges

TEST(btree_write, root_split_keeps_the_root_block)
{
	env e;
	btree_info info = plain_info(e, 8);
	uint64_t root = empty_tree(info);
	model_t model;

	e.commit();
	insert(info, root, 0, le64_value(0));	/* first change shadows the committed root */
	model[0] = le64_value(0);
	const uint64_t r1 = root;

	for (uint64_t k = 1; k < 252; k++) {
		insert(info, root, k, le64_value(k));
		model[k] = le64_value(k);
		ASSERT_EQ(root, r1);
	}
	auto nodes = check_tree(e, 8, root, model, "full leaf root");
	ASSERT_EQ(nodes.size(), 1u);
	ASSERT_EQ(nodes[0].nr, 252u);

	insert(info, root, 252, le64_value(252));
	model[252] = le64_value(252);
	EXPECT_EQ(root, r1);
	nodes = check_tree(e, 8, root, model, "after the leaf root split");
	ASSERT_EQ(nodes.size(), 3u);
	EXPECT_FALSE(nodes[0].leaf);
	EXPECT_EQ(nodes[0].nr, 2u);
	EXPECT_EQ(nodes[1].nr, 126u);
	EXPECT_EQ(nodes[2].nr, 127u);

	/* fill until the internal root splits beneath too */
	uint64_t k = 253;
	while (tree_height(nodes) < 3) {
		for (unsigned i = 0; i < 1000; i++, k++) {
			insert(info, root, k, le64_value(k));
			model[k] = le64_value(k);
			ASSERT_EQ(root, r1);
		}
		nodes = check_tree(e, 8, root, model, "growing");
	}
	EXPECT_EQ(nodes[0].nr, 2u);
	check_counts(e, 8, {root}, nullptr, false);
	e.commit();
	check_counts(e, 8, {root}, nullptr, true);
}

/*
 * A root internal node with a single child is not something we write,
 * but a tree may come with one (older writers, hand-made metadata).
 * Collapsing it when the child is shared must give the child's children
 * a reference from the root (the kernel's memcpy collapse does not).
 */
TEST(btree_write, collapsing_a_one_child_root_over_a_shared_leaf)
{
	env e;
	data_counts d(10000);
	btree_info info = counted_info(e, d);
	built src = build_keys(e, info, 1000, 0, &d);
	vector<node_stat> sl = leaves_of(e, 8, src.root, src.model);
	bm_block *blk;
	pd_err err = {};

	ASSERT_GE(sl.size(), 3u);
	e.commit();

	/* root R: internal, one entry -> leaf 1 of the source, which it shares */
	ASSERT_EQ(tm_new_block(e.tmgr, &btree_node_validator, &blk, &err), 0) << err.msg;
	uint8_t *n = static_cast<uint8_t *>(bm_block_data_rw(blk));
	auto put32 = [&](unsigned off, uint32_t v) {
		for (int k = 0; k < 4; k++)
			n[off + k] = (uint8_t)(v >> (8 * k));
	};
	model_t model;
	auto it = src.model.begin();
	advance(it, (long)sl[0].nr);
	uint64_t first = it->first;
	for (uint32_t i = 0; i < sl[1].nr; i++, ++it)
		model[it->first] = it->second;
	put32(4, FLAG_INTERNAL);
	put32(16, 1);
	put32(20, 252);
	put32(24, 8);
	store_le64(n + 32, first);
	store_le64(n + 32 + 8 * 252, sl[1].block);
	uint64_t r = bm_block_location(blk);
	tm_unlock(e.tmgr, blk);
	ASSERT_EQ(tm_inc(e.tmgr, sl[1].block), 0);
	e.commit();

	/* removing from R collapses it into a copy of the leaf */
	remove_key(info, r, first + 2);
	model.erase(first + 2);
	EXPECT_EQ(e.count(sl[1].block), 1u);	/* back to the source only */
	auto nodes = check_tree(e, 8, r, model, "collapsed");
	ASSERT_EQ(nodes.size(), 1u);
	EXPECT_TRUE(nodes[0].leaf);
	check_counts(e, 8, {src.root, r}, &d, false);
	e.commit();
	check_counts(e, 8, {src.root, r}, &d, true);

	delete_tree(info, r);
	delete_tree(info, src.root);
	check_counts(e, 8, {}, &d, false);
}

/*
 * A snapshot before every removal: each remove meets a shared path, so
 * every rebalance or merge, at the leaf and the internal levels, works
 * with shared siblings whose entries must gain a reference when copied.
 */
TEST(btree_write, removes_under_a_snapshot_taken_each_time)
{
	env e(32768, BM_DEFAULT_CACHE_BLOCKS, IO_OPEN_NO_DIRECT);
	data_counts d(100000);
	btree_info info = counted_info(e, d);
	built t = insert_keys(e, info, 36000, 0, &d);	/* half-full nodes: height 3 */
	unsigned step = 0;

	ASSERT_EQ(tree_height(check_tree(e, 8, t.root, t.model, "start")), 3u);
	e.commit();
	/* from both ends and the middle, so both kinds of sibling are used */
	vector<uint64_t> order;
	for (uint64_t i = 0; i < 12000; i++) {
		order.push_back(2 * i);
		order.push_back(2 * (35999 - i));
		order.push_back(2 * (12000 + i));
	}
	for (uint64_t k : order) {
		uint64_t snap = t.root;

		ASSERT_EQ(tm_inc(e.tmgr, snap), 0);
		remove_key(info, t.root, k);
		check_root_shape(e, t.root);
		t.model.erase(k);
		if (++step % 3000 == 0) {
			check_tree(e, 8, t.root, t.model, "after " + to_string(step));
			check_counts(e, 8, {t.root, snap}, &d, false);
			e.commit();
		}
		delete_tree(info, snap);
		if (::testing::Test::HasFailure())
			return;
	}
	auto nodes = check_tree(e, 8, t.root, t.model, "empty");
	EXPECT_EQ(nodes.size(), 1u);
	check_counts(e, 8, {t.root}, &d, false);
}

TEST(btree_write, descending_inserts_lower_key_zero)
{
	env e;
	btree_info info = plain_info(e, 8);
	uint64_t root = empty_tree(info);
	model_t model;

	for (uint64_t k = 100000; k > 50000; k--) {
		insert(info, root, k, le64_value(k));
		model[k] = le64_value(k);
	}
	EXPECT_EQ(tree_height(check_tree(e, 8, root, model, "descending")), 3u);
	for (uint64_t k = 50001; k <= 100000; k++) {
		remove_key(info, root, k);
		check_root_shape(e, root);
		model.erase(k);
		if (k % 5000 == 0)
			check_tree(e, 8, root, model, "shrinking");
	}
	auto nodes = check_tree(e, 8, root, model, "empty again");
	ASSERT_EQ(nodes.size(), 1u);
	EXPECT_TRUE(nodes[0].leaf);
	EXPECT_EQ(nodes[0].nr, 0u);
	check_counts(e, 8, {root}, nullptr, false);
}

TEST(btree_write, remove_absent_key_changes_nothing)
{
	env e;
	btree_info info = plain_info(e, 8);
	uint64_t root = empty_tree(info);
	pd_err err = {};
	uint64_t nr = 1;

	ASSERT_EQ(btree_remove(&info, root, 5, &nr, &err), -ENODATA);
	EXPECT_EQ(nr, root);
	for (uint64_t k = 0; k < 5000; k += 2)
		insert(info, root, k, le64_value(k));
	e.commit();
	uint64_t free_before = sm_nr_free(e.sm);
	ASSERT_EQ(btree_remove(&info, root, 7, &nr, &err), -ENODATA);
	EXPECT_EQ(nr, root);
	EXPECT_EQ(sm_nr_free(e.sm), free_before);
	EXPECT_FALSE(tm_is_new(e.tmgr, root));
}

TEST(btree_write, delete_of_a_shared_tree_only_drops_the_root)
{
	env e;
	data_counts d(10000);
	btree_info info = counted_info(e, d);
	uint64_t root = empty_tree(info);

	for (uint64_t k = 0; k < 2000; k++)
		insert(info, root, k, le64_value(d.alloc()));
	ASSERT_EQ(tm_inc(e.tmgr, root), 0);
	delete_tree(info, root);
	EXPECT_EQ(e.count(root), 1u);
	EXPECT_EQ(sm_nr_free(d.sm), d.nr - 2000);
	delete_tree(info, root);
	EXPECT_EQ(sm_nr_free(d.sm), d.nr);
	EXPECT_EQ(sm_nr_free(e.sm), e.nr_blocks - 1);
}

TEST(btree_write, bad_value_size_is_rejected)
{
	env e;
	btree_info info = plain_info(e, 0);
	pd_err err = {};
	uint64_t root;

	EXPECT_EQ(btree_empty(&info, &root, &err), -EINVAL);
	info.vt.size = 2000;
	EXPECT_EQ(btree_empty(&info, &root, &err), -EINVAL);
}

} // namespace
