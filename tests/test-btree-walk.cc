// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * The btree read side over real I/O: small trees laid out by hand in a
 * temporary file (nodes written with the sync engine, checksums stamped
 * with block_set_csum), then read through a block manager by btree_walk,
 * the leaf cursor and btree_lookup.  Damage of every kind must be
 * reported with the keys it loses, and must never make a reader loop.
 */

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern "C" {
#include "persistent-data/array.h"
#include "persistent-data/array-disk.h"
#include "persistent-data/block-manager.h"
#include "persistent-data/btree.h"
#include "persistent-data/checksum.h"
#include "persistent-data/endian.h"
#include "persistent-data/io-engine.h"
}

using namespace std;

namespace {

//----------------------------------------------------------------
// Layout (format doc 4.1, 4.2)

constexpr uint32_t FLAG_INTERNAL = 1, FLAG_LEAF = 2;
constexpr unsigned HDR = 32;

uint32_t max_entries_for(uint32_t vs)
{
	return (MD_BLOCK_SIZE - HDR) / (8 + vs) / 3 * 3;
}

// The value every test leaf stores for key k.
uint64_t value_of(uint64_t k)
{
	return k * 10 + 7;
}

vector<uint64_t> range_keys(uint64_t first, unsigned n, uint64_t step = 1)
{
	vector<uint64_t> v;

	for (unsigned i = 0; i < n; i++)
		v.push_back(first + i * step);
	return v;
}

struct free_deleter {
	void operator()(void *p) const { free(p); }
};

//----------------------------------------------------------------
// A metadata file with hand-made nodes, and a block manager over it

class tree_file {
public:
	explicit tree_file(uint64_t nr_blocks = 64)
	{
		const char *t = getenv("TMPDIR");
		string tmpl = string(t && *t ? t : "/tmp") + "/test-btree-walk.XXXXXX";
		vector<char> name(tmpl.begin(), tmpl.end());
		pd_err err{};

		name.push_back('\0');
		int fd = mkstemp(name.data());
		if (fd < 0)
			throw runtime_error("mkstemp: " + string(strerror(errno)));
		path_ = name.data();
		if (ftruncate(fd, (off_t)(nr_blocks * MD_BLOCK_SIZE)) < 0) {
			close(fd);
			throw runtime_error("ftruncate failed");
		}
		close(fd);
		if (io_engine_open(path_.c_str(), IO_ENGINE_SYNC, IO_OPEN_WRITE, &io_, &err))
			throw runtime_error(string("io_engine_open: ") + err.msg);
		buf_.reset(io_alloc_block());
	}

	~tree_file()
	{
		bm_destroy(bm_);
		io_engine_destroy(io_);
		unlink(path_.c_str());
	}

	tree_file(const tree_file &) = delete;
	tree_file &operator=(const tree_file &) = delete;

	// A node with the given keys and 8-byte values (or raw value bytes).
	void node(uint64_t b, uint32_t flags, const vector<uint64_t> &keys,
		  const vector<uint64_t> &vals, uint32_t vs = 8, uint32_t max = 0,
		  uint64_t blocknr = UINT64_MAX)
	{
		uint8_t *p = (uint8_t *)buf_.get();

		if (!max)
			max = max_entries_for(vs);
		memset(p, 0, MD_BLOCK_SIZE);
		store_le32(p + 4, flags);
		store_le64(p + 8, blocknr == UINT64_MAX ? b : blocknr);
		store_le32(p + 16, (uint32_t)keys.size());
		store_le32(p + 20, max);
		store_le32(p + 24, vs);
		for (size_t i = 0; i < keys.size(); i++) {
			store_le64(p + HDR + 8 * i, keys[i]);
			if (i < vals.size() && vs >= 8)
				store_le64(p + HDR + 8 * max + i * vs, vals[i]);
		}
		block_set_csum(p, CSUM_XOR_BTREE_NODE);
		write(b);
	}

	void leaf(uint64_t b, const vector<uint64_t> &keys, uint32_t vs = 8)
	{
		vector<uint64_t> vals;

		for (uint64_t k : keys)
			vals.push_back(value_of(k));
		node(b, FLAG_LEAF, keys, vals, vs);
	}

	void internal(uint64_t b, const vector<uint64_t> &keys,
		      const vector<uint64_t> &children)
	{
		node(b, FLAG_INTERNAL, keys, children);
	}

	// Flips a byte without restamping the checksum.
	void corrupt(uint64_t b)
	{
		ASSERT_EQ(0, io_read_block(io_, b, buf_.get()));
		((uint8_t *)buf_.get())[100] ^= 0x5A;
		write(b);
	}

	struct bm *bm(unsigned cache = 64)
	{
		if (!bm_) {
			pd_err err{};

			if (bm_create(io_, cache, &bm_, &err))
				throw runtime_error(string("bm_create: ") + err.msg);
		}
		return bm_;
	}

	uint64_t nr_blocks() const { return io_->nr_blocks; }

	// An array block of 4-byte values, every one set to v, full.
	void array_block(uint64_t b, uint32_t v)
	{
		uint8_t *p = (uint8_t *)buf_.get();
		uint32_t max = array_max_entries(4);

		memset(p, 0, MD_BLOCK_SIZE);
		store_le32(p + 4, max);
		store_le32(p + 8, max);
		store_le32(p + 12, 4);
		store_le64(p + 16, b);
		for (uint32_t i = 0; i < max; i++)
			store_le32(p + ARRAY_BLOCK_HEADER_SIZE + 4 * i, v);
		block_set_csum(p, ARRAY_CSUM_XOR);
		write(b);
	}

private:
	void write(uint64_t b)
	{
		if (io_write_block(io_, b, buf_.get()))
			throw runtime_error("io_write_block failed");
		if (bm_)
			bm_forget(bm_, b);
	}

	string path_;
	io_engine *io_ = nullptr;
	struct bm *bm_ = nullptr;
	unique_ptr<void, free_deleter> buf_;
};

/*
 * Tree B, three levels:
 *
 *   1: internal [0, 1000]
 *      2: internal [0, 100, 200]     3: internal [1000, 1100]
 *         4: leaf 0..4                  7: leaf 1000, 1001
 *         5: leaf 100, 110, 120         8: leaf 1100, 1200, 1300
 *         6: leaf 200, 300
 */
void build_tree_b(tree_file &f)
{
	f.internal(1, { 0, 1000 }, { 2, 3 });
	f.internal(2, { 0, 100, 200 }, { 4, 5, 6 });
	f.internal(3, { 1000, 1100 }, { 7, 8 });
	f.leaf(4, { 0, 1, 2, 3, 4 });
	f.leaf(5, { 100, 110, 120 });
	f.leaf(6, { 200, 300 });
	f.leaf(7, { 1000, 1001 });
	f.leaf(8, { 1100, 1200, 1300 });
}

const vector<uint64_t> tree_b_keys = { 0, 1, 2, 3, 4, 100, 110, 120, 200, 300,
				       1000, 1001, 1100, 1200, 1300 };

//----------------------------------------------------------------
// Recording visitor

struct damage_rec {
	uint64_t block, lo, hi;
	bool has_hi, lost;
	string msg;
};

struct recorder {
	vector<string> events;		// "n4", "l4", "x2", "d5"
	vector<btree_node_info> nodes;	// data pointers not kept
	vector<uint64_t> keys;
	vector<damage_rec> damage;
	function<int(const btree_node_info &)> on_node, on_leaf;
	function<int(uint64_t)> on_exit;
	unsigned calls = 0;
	unsigned limit = 100000;	// guard: a looping walk is stopped
	bool limit_hit = false;

	int guard()
	{
		if (++calls > limit) {
			limit_hit = true;
			return BTREE_WALK_STOP;
		}
		return 0;
	}

	static int node_cb(void *ctx, const btree_node_info *n)
	{
		recorder *r = (recorder *)ctx;
		btree_node_info copy = *n;

		if (r->guard())
			return BTREE_WALK_STOP;
		r->events.push_back("n" + to_string(n->block));
		copy.data = nullptr;
		r->nodes.push_back(copy);
		return r->on_node ? r->on_node(*n) : BTREE_WALK_CONTINUE;
	}

	static int leaf_cb(void *ctx, const btree_node_info *n)
	{
		recorder *r = (recorder *)ctx;

		if (r->guard())
			return BTREE_WALK_STOP;
		r->events.push_back("l" + to_string(n->block));
		for (uint32_t i = 0; i < n->nr_entries; i++) {
			uint64_t k = node_key(n->data, i);
			uint32_t max = load_le32((const uint8_t *)n->data + 20);
			uint32_t vs = load_le32((const uint8_t *)n->data + 24);
			uint64_t v = load_le64((const uint8_t *)n->data + HDR + 8 * max + vs * i);

			r->keys.push_back(k);
			EXPECT_EQ(value_of(k), v) << "key " << k;
		}
		return r->on_leaf ? r->on_leaf(*n) : BTREE_WALK_CONTINUE;
	}

	static int exit_cb(void *ctx, uint64_t block)
	{
		recorder *r = (recorder *)ctx;

		if (r->guard())
			return BTREE_WALK_STOP;
		r->events.push_back("x" + to_string(block));
		return r->on_exit ? r->on_exit(block) : BTREE_WALK_CONTINUE;
	}

	static void damage_cb(void *ctx, const btree_damage *d)
	{
		recorder *r = (recorder *)ctx;

		r->guard();
		r->events.push_back("d" + to_string(d->block));
		r->damage.push_back({ d->block, d->lo, d->hi, d->has_hi, d->lost,
				      d->msg ? d->msg : "" });
	}
};

struct walk_result {
	int r;
	string msg;
};

walk_result walk(tree_file &f, uint64_t root, recorder &rec, uint32_t vs = 8,
		 bool check_fill = false, bool prefetch = false)
{
	btree_walk_opts o{};
	btree_walk_ops ops{};
	pd_err err{};

	o.shape.value_size = vs;
	o.check_fill = check_fill;
	o.prefetch = prefetch;
	ops.node = recorder::node_cb;
	ops.leaf = recorder::leaf_cb;
	ops.node_exit = recorder::exit_cb;
	ops.damage = recorder::damage_cb;
	int r = btree_walk(f.bm(), root, &o, &ops, &rec, &err);
	return { r, r ? string(err.msg) : string() };
}

vector<string> split(const string &s)
{
	vector<string> v;
	size_t p = 0;

	while (p < s.size()) {
		size_t q = s.find(' ', p);

		if (q == string::npos)
			q = s.size();
		v.push_back(s.substr(p, q - p));
		p = q + 1;
	}
	return v;
}

/*
 * Runs fn in a child process and reports whether it finished within the
 * time limit: a reader that loops forever fails the test instead of
 * hanging the suite.
 */
bool finishes_within(unsigned seconds, const function<void()> &fn)
{
	fflush(nullptr);
	pid_t pid = fork();

	if (pid < 0)
		return false;
	if (!pid) {
		alarm(seconds);
		fn();
		_exit(0);
	}
	int status = 0;
	if (waitpid(pid, &status, 0) != pid)
		return false;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

//----------------------------------------------------------------
// btree_walk

TEST(btree_walk, visits_leaves_in_key_order)
{
	for (bool prefetch : { false, true }) {
		SCOPED_TRACE(prefetch ? "prefetch" : "no prefetch");
		tree_file f;
		recorder rec;

		build_tree_b(f);
		walk_result w = walk(f, 1, rec, 8, false, prefetch);
		EXPECT_EQ(0, w.r) << w.msg;
		EXPECT_EQ(tree_b_keys, rec.keys);
		EXPECT_TRUE(rec.damage.empty());
	}
}

TEST(btree_walk, node_sees_every_node_with_depth_and_key_range)
{
	tree_file f;
	recorder rec;

	build_tree_b(f);
	ASSERT_EQ(0, walk(f, 1, rec).r);

	struct want {
		uint64_t block;
		unsigned depth;
		bool leaf;
		uint32_t nr;
		uint64_t lo, hi;
		bool has_hi;
	} want[] = {
		{ 1, 0, false, 2, 0, 0, false },
		{ 2, 1, false, 3, 0, 1000, true },
		{ 4, 2, true, 5, 0, 100, true },
		{ 5, 2, true, 3, 100, 200, true },
		{ 6, 2, true, 2, 200, 1000, true },
		{ 3, 1, false, 2, 1000, 0, false },
		{ 7, 2, true, 2, 1000, 1100, true },
		{ 8, 2, true, 3, 1100, 0, false },
	};

	ASSERT_EQ(size(want), rec.nodes.size());
	for (size_t i = 0; i < size(want); i++) {
		const btree_node_info &n = rec.nodes[i];

		SCOPED_TRACE("node " + to_string(want[i].block));
		EXPECT_EQ(want[i].block, n.block);
		EXPECT_EQ(want[i].depth, n.depth);
		EXPECT_EQ(want[i].leaf, n.leaf);
		EXPECT_EQ(want[i].nr, n.nr_entries);
		EXPECT_EQ(want[i].lo, n.lo);
		EXPECT_EQ(want[i].has_hi, n.has_hi);
		if (want[i].has_hi) {
			EXPECT_EQ(want[i].hi, n.hi);
		}
	}
}

TEST(btree_walk, node_exit_once_per_internal_node_after_its_children)
{
	tree_file f;
	recorder rec;

	build_tree_b(f);
	ASSERT_EQ(0, walk(f, 1, rec).r);
	EXPECT_EQ(split("n1 n2 n4 l4 n5 l5 n6 l6 x2 n3 n7 l7 n8 l8 x3 x1"), rec.events);
}

TEST(btree_walk, node_data_is_the_node)
{
	tree_file f;
	recorder rec;

	build_tree_b(f);
	rec.on_node = [](const btree_node_info &n) {
		EXPECT_EQ(n.block, load_le64((const uint8_t *)n.data + 8));
		EXPECT_EQ(CSUM_XOR_BTREE_NODE, block_csum_type(n.data));
		return BTREE_WALK_CONTINUE;
	};
	ASSERT_EQ(0, walk(f, 1, rec).r);
}

TEST(btree_walk, single_leaf_root_and_empty_tree)
{
	tree_file f;
	recorder rec, rec2;

	f.leaf(1, { 5, 6, 7 });
	f.leaf(2, {});
	ASSERT_EQ(0, walk(f, 1, rec, 8, true).r);
	EXPECT_EQ(split("n1 l1"), rec.events);
	EXPECT_EQ(vector<uint64_t>({ 5, 6, 7 }), rec.keys);
	EXPECT_EQ(0u, rec.nodes[0].depth);
	EXPECT_TRUE(rec.nodes[0].leaf);

	// an empty tree is an empty leaf root, not damage (even with check_fill)
	ASSERT_EQ(0, walk(f, 2, rec2, 8, true).r);
	EXPECT_EQ(split("n2 l2"), rec2.events);
	EXPECT_TRUE(rec2.damage.empty());
}

TEST(btree_walk, skip_skips_a_subtree)
{
	tree_file f;
	recorder rec;

	build_tree_b(f);
	rec.on_node = [](const btree_node_info &n) {
		return n.block == 2 ? BTREE_WALK_SKIP : BTREE_WALK_CONTINUE;
	};
	ASSERT_EQ(0, walk(f, 1, rec).r);
	EXPECT_EQ(split("n1 n2 n3 n7 l7 n8 l8 x3 x1"), rec.events);
	EXPECT_EQ(vector<uint64_t>({ 1000, 1001, 1100, 1200, 1300 }), rec.keys);
}

TEST(btree_walk, skip_on_a_leaf_skips_its_entries)
{
	tree_file f;
	recorder rec;

	build_tree_b(f);
	rec.on_node = [](const btree_node_info &n) {
		return n.block == 5 ? BTREE_WALK_SKIP : BTREE_WALK_CONTINUE;
	};
	ASSERT_EQ(0, walk(f, 1, rec).r);
	EXPECT_EQ(split("n1 n2 n4 l4 n5 n6 l6 x2 n3 n7 l7 n8 l8 x3 x1"), rec.events);
}

TEST(btree_walk, stop_from_node_stops_right_there)
{
	tree_file f;
	recorder rec;

	build_tree_b(f);
	rec.on_node = [](const btree_node_info &n) {
		return n.block == 5 ? BTREE_WALK_STOP : BTREE_WALK_CONTINUE;
	};
	walk_result w = walk(f, 1, rec);
	EXPECT_EQ(0, w.r) << "a stop is not an error";
	EXPECT_EQ(split("n1 n2 n4 l4 n5"), rec.events);
}

TEST(btree_walk, stop_from_an_internal_node_stops_right_there)
{
	tree_file f;
	recorder rec;

	build_tree_b(f);
	rec.on_node = [](const btree_node_info &n) {
		return n.block == 3 ? BTREE_WALK_STOP : BTREE_WALK_CONTINUE;
	};
	EXPECT_EQ(0, walk(f, 1, rec).r);
	EXPECT_EQ(split("n1 n2 n4 l4 n5 l5 n6 l6 x2 n3"), rec.events);
}

TEST(btree_walk, stop_from_leaf_stops_right_there)
{
	tree_file f;
	recorder rec;

	build_tree_b(f);
	rec.on_leaf = [](const btree_node_info &n) {
		return n.block == 4 ? BTREE_WALK_STOP : BTREE_WALK_CONTINUE;
	};
	EXPECT_EQ(0, walk(f, 1, rec).r);
	EXPECT_EQ(split("n1 n2 n4 l4"), rec.events);
}

TEST(btree_walk, stop_from_node_exit_stops_right_there)
{
	tree_file f;
	recorder rec;

	build_tree_b(f);
	rec.on_exit = [](uint64_t b) { return b == 2 ? BTREE_WALK_STOP : BTREE_WALK_CONTINUE; };
	EXPECT_EQ(0, walk(f, 1, rec).r);
	EXPECT_EQ(split("n1 n2 n4 l4 n5 l5 n6 l6 x2"), rec.events);
}

TEST(btree_walk, callback_error_ends_the_walk_with_that_error)
{
	tree_file f;
	recorder rec;

	build_tree_b(f);
	rec.on_leaf = [](const btree_node_info &n) { return n.block == 5 ? -EIO : 0; };
	walk_result w = walk(f, 1, rec);
	EXPECT_EQ(-EIO, w.r);
	EXPECT_FALSE(w.msg.empty());
	EXPECT_EQ(split("n1 n2 n4 l4 n5 l5"), rec.events);

	recorder rec2;
	rec2.on_node = [](const btree_node_info &n) { return n.block == 3 ? -ENOMEM : 0; };
	EXPECT_EQ(-ENOMEM, walk(f, 1, rec2).r);
	EXPECT_EQ(split("n1 n2 n4 l4 n5 l5 n6 l6 x2 n3"), rec2.events);
}

TEST(btree_walk, damaged_leaf_is_reported_with_its_key_range_and_the_walk_goes_on)
{
	tree_file f;
	recorder rec;

	build_tree_b(f);
	f.corrupt(5);
	ASSERT_EQ(0, walk(f, 1, rec).r);
	ASSERT_EQ(1u, rec.damage.size());
	const damage_rec &d = rec.damage[0];
	EXPECT_EQ(5u, d.block);
	EXPECT_EQ(100u, d.lo);
	EXPECT_TRUE(d.has_hi);
	EXPECT_EQ(200u, d.hi);
	EXPECT_TRUE(d.lost);
	EXPECT_EQ("bad checksum in btree node (block 5)", d.msg);
	EXPECT_EQ(split("n1 n2 n4 l4 d5 n6 l6 x2 n3 n7 l7 n8 l8 x3 x1"), rec.events);
	EXPECT_EQ(vector<uint64_t>({ 0, 1, 2, 3, 4, 200, 300, 1000, 1001, 1100, 1200, 1300 }),
		  rec.keys);
}

TEST(btree_walk, damaged_last_child_inherits_the_parent_range)
{
	tree_file f;
	recorder rec;

	build_tree_b(f);
	f.corrupt(6);		// last child of 2: [200, 1000)
	f.corrupt(8);		// last child of the last child: [1100, -]
	ASSERT_EQ(0, walk(f, 1, rec).r);
	ASSERT_EQ(2u, rec.damage.size());
	EXPECT_EQ(6u, rec.damage[0].block);
	EXPECT_EQ(200u, rec.damage[0].lo);
	EXPECT_TRUE(rec.damage[0].has_hi);
	EXPECT_EQ(1000u, rec.damage[0].hi);
	EXPECT_EQ(8u, rec.damage[1].block);
	EXPECT_EQ(1100u, rec.damage[1].lo);
	EXPECT_FALSE(rec.damage[1].has_hi);
	EXPECT_EQ(split("n1 n2 n4 l4 n5 l5 d6 x2 n3 n7 l7 d8 x3 x1"), rec.events);
}

TEST(btree_walk, damaged_internal_node_loses_its_subtree)
{
	tree_file f;
	recorder rec;

	build_tree_b(f);
	f.corrupt(2);
	ASSERT_EQ(0, walk(f, 1, rec).r);
	ASSERT_EQ(1u, rec.damage.size());
	EXPECT_EQ(2u, rec.damage[0].block);
	EXPECT_EQ(0u, rec.damage[0].lo);
	EXPECT_EQ(1000u, rec.damage[0].hi);
	EXPECT_TRUE(rec.damage[0].lost);
	EXPECT_EQ(split("n1 d2 n3 n7 l7 n8 l8 x3 x1"), rec.events);
}

TEST(btree_walk, damaged_root)
{
	tree_file f;
	recorder rec;

	build_tree_b(f);
	f.corrupt(1);
	ASSERT_EQ(0, walk(f, 1, rec).r);
	ASSERT_EQ(1u, rec.damage.size());
	EXPECT_EQ(1u, rec.damage[0].block);
	EXPECT_EQ(0u, rec.damage[0].lo);
	EXPECT_FALSE(rec.damage[0].has_hi);
	EXPECT_TRUE(rec.damage[0].lost);
	EXPECT_EQ(split("d1"), rec.events);
}

TEST(btree_walk, child_beyond_the_device_is_damage)
{
	tree_file f;
	recorder rec;

	f.internal(1, { 0, 100 }, { 2, 999 });
	f.leaf(2, { 0, 1 });
	ASSERT_EQ(0, walk(f, 1, rec).r);
	ASSERT_EQ(1u, rec.damage.size());
	EXPECT_EQ(999u, rec.damage[0].block);
	EXPECT_EQ(100u, rec.damage[0].lo);
	EXPECT_FALSE(rec.damage[0].has_hi);
	EXPECT_NE(string::npos, rec.damage[0].msg.find("999")) << rec.damage[0].msg;
	EXPECT_EQ(split("n1 n2 l2 d999 x1"), rec.events);
}

TEST(btree_walk, wrong_value_size_is_damage)
{
	tree_file f;
	recorder rec;

	f.internal(1, { 0, 100 }, { 2, 3 });
	f.leaf(2, { 0, 1 });
	f.leaf(3, { 100 }, 16);
	ASSERT_EQ(0, walk(f, 1, rec).r);
	ASSERT_EQ(1u, rec.damage.size());
	EXPECT_EQ("value size mismatch: expected 8, but got 16 (block 3).", rec.damage[0].msg);
	EXPECT_EQ(100u, rec.damage[0].lo);
}

TEST(btree_walk, underfull_non_root_node_is_reported_not_lost_when_check_fill)
{
	tree_file f;

	// root with 2 entries (a root may hold any number), a leaf with 84
	// entries (exactly max/3) and one with 83
	f.internal(1, { 0, 1000 }, { 2, 3 });
	f.leaf(2, range_keys(0, 84));
	f.leaf(3, range_keys(1000, 83));

	recorder rec;
	ASSERT_EQ(0, walk(f, 1, rec, 8, true).r);
	ASSERT_EQ(1u, rec.damage.size());
	const damage_rec &d = rec.damage[0];
	EXPECT_EQ(3u, d.block);
	EXPECT_FALSE(d.lost);
	EXPECT_EQ(1000u, d.lo);
	EXPECT_FALSE(d.has_hi);
	EXPECT_EQ("too few entries in btree_node: 83, expected at least 84 (block 3, max_entries = 252)",
		  d.msg);
	// not lost: its entries are still visited
	EXPECT_EQ(84u + 83u, rec.keys.size());
	EXPECT_EQ(split("n1 n2 l2 d3 n3 l3 x1"), rec.events);

	recorder quiet;
	ASSERT_EQ(0, walk(f, 1, quiet, 8, false).r);
	EXPECT_TRUE(quiet.damage.empty());
}

TEST(btree_walk, underfull_internal_node_uses_its_own_max_entries)
{
	tree_file f;

	f.internal(1, { 0 }, { 2 });
	f.internal(2, { 0, 100 }, { 3, 4 });	// 2 < 84
	f.leaf(3, range_keys(0, 100));
	f.leaf(4, range_keys(100, 100));
	recorder rec;
	ASSERT_EQ(0, walk(f, 1, rec, 8, true).r);
	ASSERT_EQ(1u, rec.damage.size());
	EXPECT_EQ(2u, rec.damage[0].block);
	EXPECT_FALSE(rec.damage[0].lost);
	EXPECT_EQ("too few entries in btree_node: 2, expected at least 84 (block 2, max_entries = 252)",
		  rec.damage[0].msg);
	EXPECT_EQ(200u, rec.keys.size());
}

TEST(btree_walk, underfull_leaf_of_other_value_size)
{
	tree_file f;

	f.internal(1, { 0, 100 }, { 2, 3 });
	f.leaf(2, range_keys(0, 42), 24);	// 126 / 3 = 42: full enough
	f.leaf(3, range_keys(100, 41), 24);
	recorder rec;
	ASSERT_EQ(0, walk(f, 1, rec, 24, true).r);
	ASSERT_EQ(1u, rec.damage.size());
	EXPECT_EQ("too few entries in btree_node: 41, expected at least 42 (block 3, max_entries = 126)",
		  rec.damage[0].msg);
}

TEST(btree_walk, node_pointing_at_itself_ends_with_damage)
{
	tree_file f;
	recorder rec;

	f.internal(1, { 0 }, { 1 });
	ASSERT_TRUE(finishes_within(20, [&] {
		recorder r;
		walk(f, 1, r);
	})) << "btree_walk loops on a cycle";

	rec.limit = 1000;
	ASSERT_EQ(0, walk(f, 1, rec).r);
	EXPECT_FALSE(rec.limit_hit);
	ASSERT_EQ(1u, rec.damage.size());
	EXPECT_EQ(1u, rec.damage[0].block);
	EXPECT_TRUE(rec.damage[0].lost);
	EXPECT_EQ("btree deeper than 16 levels at block 1 (cycle?)", rec.damage[0].msg);
	// each level seen once, each left once
	EXPECT_EQ((size_t)BTREE_MAX_DEPTH, rec.nodes.size());
	EXPECT_EQ((size_t)BTREE_MAX_DEPTH * 2 + 1, rec.events.size());
}

TEST(btree_walk, node_pointing_at_itself_with_two_keys_is_a_range_error)
{
	tree_file f;
	recorder rec;

	f.internal(1, { 0, 10 }, { 2, 1 });
	f.leaf(2, { 0, 1 });
	rec.limit = 1000;
	ASSERT_EQ(0, walk(f, 1, rec).r);
	EXPECT_FALSE(rec.limit_hit);
	ASSERT_EQ(1u, rec.damage.size());
	EXPECT_EQ(1u, rec.damage[0].block);
	EXPECT_EQ(10u, rec.damage[0].lo);
	EXPECT_EQ("parent key mismatch: parent was 10, but lowest in node was 0 (block 1)",
		  rec.damage[0].msg);
	EXPECT_EQ(split("n1 n2 l2 d1 x1"), rec.events);
}

TEST(btree_walk, two_node_cycle_ends_with_damage)
{
	tree_file f;
	recorder rec;

	f.internal(1, { 0 }, { 2 });
	f.internal(2, { 0 }, { 1 });
	ASSERT_TRUE(finishes_within(20, [&] {
		recorder r;
		walk(f, 1, r);
	}));
	rec.limit = 1000;
	ASSERT_EQ(0, walk(f, 1, rec).r);
	EXPECT_FALSE(rec.limit_hit);
	ASSERT_EQ(1u, rec.damage.size());
	EXPECT_NE(string::npos, rec.damage[0].msg.find("cycle")) << rec.damage[0].msg;
}

TEST(btree_walk, chain_deeper_than_max_depth_ends_with_damage)
{
	tree_file f;
	recorder rec;
	const unsigned chain = BTREE_MAX_DEPTH + 4;

	// blocks 1 .. chain: one-key internal nodes, each to the next; then a leaf
	for (unsigned b = 1; b <= chain; b++)
		f.internal(b, { 0 }, { b + 1 });
	f.leaf(chain + 1, { 0, 1, 2 });

	rec.limit = 1000;
	ASSERT_EQ(0, walk(f, 1, rec).r);
	EXPECT_FALSE(rec.limit_hit);
	ASSERT_EQ(1u, rec.damage.size());
	// the node at depth BTREE_MAX_DEPTH is block BTREE_MAX_DEPTH + 1
	EXPECT_EQ((uint64_t)BTREE_MAX_DEPTH + 1, rec.damage[0].block);
	EXPECT_TRUE(rec.damage[0].lost);
	EXPECT_EQ("btree deeper than 16 levels at block 17 (cycle?)", rec.damage[0].msg);
	EXPECT_TRUE(rec.keys.empty());
	size_t exits = 0;
	for (const string &e : rec.events)
		exits += e[0] == 'x';
	EXPECT_EQ((size_t)BTREE_MAX_DEPTH, exits);
}

TEST(btree_walk, chain_of_max_depth_is_fine)
{
	tree_file f;
	recorder rec;

	// depths 0 .. BTREE_MAX_DEPTH - 1: the leaf is at the last allowed depth
	for (unsigned b = 1; b < BTREE_MAX_DEPTH; b++)
		f.internal(b, { 0 }, { b + 1 });
	f.leaf(BTREE_MAX_DEPTH, { 0, 1, 2 });
	ASSERT_EQ(0, walk(f, 1, rec).r);
	EXPECT_TRUE(rec.damage.empty());
	EXPECT_EQ(vector<uint64_t>({ 0, 1, 2 }), rec.keys);
}

TEST(btree_walk, child_keys_above_the_parent_range_are_damage)
{
	tree_file f;
	recorder rec;

	f.internal(1, { 0, 100 }, { 2, 3 });
	f.leaf(2, { 0, 5, 120 });	// 120 belongs to the next child
	f.leaf(3, { 100, 150 });
	ASSERT_EQ(0, walk(f, 1, rec).r);
	ASSERT_EQ(1u, rec.damage.size());
	EXPECT_EQ(2u, rec.damage[0].block);
	EXPECT_EQ(0u, rec.damage[0].lo);
	EXPECT_EQ(100u, rec.damage[0].hi);
	EXPECT_TRUE(rec.damage[0].lost);
	EXPECT_EQ("parent key mismatch: next parent key was 100, but highest in node was 120 (block 2)",
		  rec.damage[0].msg);
	EXPECT_EQ(vector<uint64_t>({ 100, 150 }), rec.keys);
}

TEST(btree_walk, child_keys_below_the_parent_key_are_damage)
{
	tree_file f;
	recorder rec;

	f.internal(1, { 0, 100 }, { 2, 3 });
	f.leaf(2, { 0, 5 });
	f.leaf(3, { 50, 150 });
	ASSERT_EQ(0, walk(f, 1, rec).r);
	ASSERT_EQ(1u, rec.damage.size());
	EXPECT_EQ(3u, rec.damage[0].block);
	EXPECT_EQ(100u, rec.damage[0].lo);
	EXPECT_FALSE(rec.damage[0].has_hi);
	EXPECT_EQ("parent key mismatch: parent was 100, but lowest in node was 50 (block 3)",
		  rec.damage[0].msg);
	EXPECT_EQ(vector<uint64_t>({ 0, 5 }), rec.keys);
}

TEST(btree_walk, parent_key_lower_than_the_smallest_child_key_is_fine)
{
	tree_file f;
	recorder rec;

	// the kernel does not raise key[i] after deletions (format doc 4.3)
	f.internal(1, { 0, 100 }, { 2, 3 });
	f.leaf(2, { 5, 6 });
	f.leaf(3, { 150 });
	ASSERT_EQ(0, walk(f, 1, rec).r);
	EXPECT_TRUE(rec.damage.empty());
	EXPECT_EQ(vector<uint64_t>({ 5, 6, 150 }), rec.keys);
}

TEST(btree_walk, leaves_at_different_depths_are_damage)
{
	tree_file f;
	recorder rec;

	f.internal(1, { 0, 100 }, { 2, 3 });
	f.leaf(2, { 0, 1 });			// depth 1
	f.internal(3, { 100 }, { 4 });
	f.leaf(4, { 100, 101 });		// depth 2
	ASSERT_EQ(0, walk(f, 1, rec).r);
	ASSERT_EQ(1u, rec.damage.size());
	EXPECT_EQ(4u, rec.damage[0].block);
	EXPECT_TRUE(rec.damage[0].lost);
	EXPECT_EQ(100u, rec.damage[0].lo);
	EXPECT_EQ("leaf at depth 2, but other leaves are at depth 1 (block 4)", rec.damage[0].msg);
	EXPECT_EQ(vector<uint64_t>({ 0, 1 }), rec.keys);
}

TEST(btree_walk, leaves_at_different_depths_other_way_round)
{
	tree_file f;
	recorder rec;

	f.internal(1, { 0, 100 }, { 3, 2 });
	f.internal(3, { 0 }, { 4 });
	f.leaf(4, { 0, 1 });			// depth 2
	f.leaf(2, { 100, 101 });		// depth 1
	ASSERT_EQ(0, walk(f, 1, rec).r);
	ASSERT_EQ(1u, rec.damage.size());
	EXPECT_EQ(2u, rec.damage[0].block);
	EXPECT_EQ("leaf at depth 1, but other leaves are at depth 2 (block 2)", rec.damage[0].msg);
}

TEST(btree_walk, empty_internal_non_root_node_is_damage)
{
	tree_file f;
	recorder rec;

	f.internal(1, { 0, 100 }, { 2, 3 });
	f.internal(2, {}, {});
	f.internal(3, { 100 }, { 4 });
	f.leaf(4, { 100 });
	ASSERT_EQ(0, walk(f, 1, rec).r);
	ASSERT_EQ(1u, rec.damage.size());
	EXPECT_EQ(2u, rec.damage[0].block);
	EXPECT_EQ("internal node with no entries", rec.damage[0].msg);
	EXPECT_EQ(vector<uint64_t>({ 100 }), rec.keys);
}

TEST(btree_walk, memory_does_not_grow_with_the_tree)
{
	/*
	 * 252 * 3969 = 1,000,188 entries in full leaves, 16 internal nodes,
	 * one root: a 16 MiB tree.  The walk keeps at most BTREE_MAX_DEPTH
	 * node copies and the cache's 64 blocks.
	 */
	const unsigned per_leaf = 252, nr_leaves = 3969, per_internal = 252;
	const unsigned nr_internal = (nr_leaves + per_internal - 1) / per_internal;
	const uint64_t first_leaf = 2 + nr_internal;
	tree_file f(first_leaf + nr_leaves);
	vector<uint64_t> ikeys, ichildren;

	for (unsigned i = 0; i < nr_internal; i++) {
		vector<uint64_t> keys, children;

		for (unsigned j = i * per_internal; j < nr_leaves && j < (i + 1) * per_internal; j++) {
			keys.push_back((uint64_t)j * per_leaf);
			children.push_back(first_leaf + j);
		}
		if (i + 1 == nr_internal && keys.size() < per_internal / 3)
			GTEST_FAIL() << "test tree badly shaped";
		f.internal(2 + i, keys, children);
		ikeys.push_back(keys[0]);
		ichildren.push_back(2 + i);
	}
	f.internal(1, ikeys, ichildren);
	for (unsigned j = 0; j < nr_leaves; j++)
		f.leaf(first_leaf + j, range_keys((uint64_t)j * per_leaf, per_leaf));

	auto rss_kb = [] {
		ifstream st("/proc/self/status");
		string line;

		while (getline(st, line))
			if (line.rfind("VmRSS:", 0) == 0)
				return strtol(line.c_str() + 6, nullptr, 10);
		return 0L;
	};

	struct counter {
		uint64_t entries = 0, leaves = 0, last = 0;
		bool ordered = true;
		long max_rss = 0;
		function<long()> rss;
	} c;
	c.rss = rss_kb;

	btree_walk_opts o{};
	btree_walk_ops ops{};
	pd_err err{};

	o.shape.value_size = 8;
	o.check_fill = true;
	o.prefetch = true;
	ops.leaf = [](void *ctx, const btree_node_info *n) {
		counter *c = (counter *)ctx;

		for (uint32_t i = 0; i < n->nr_entries; i++) {
			uint64_t k = node_key(n->data, i);

			if (c->entries && k != c->last + 1)
				c->ordered = false;
			c->last = k;
			c->entries++;
		}
		if (++c->leaves % 256 == 0)
			c->max_rss = max(c->max_rss, c->rss());
		return 0;
	};
	ops.damage = [](void *, const btree_damage *d) {
		ADD_FAILURE() << "unexpected damage: " << d->msg;
	};

	struct bm *bm = f.bm(64);
	long before = rss_kb();
	ASSERT_EQ(0, btree_walk(bm, 1, &o, &ops, &c, &err)) << err.msg;
	long after = rss_kb();

	EXPECT_EQ((uint64_t)per_leaf * nr_leaves, c.entries);
	EXPECT_EQ(nr_leaves, c.leaves);
	EXPECT_TRUE(c.ordered);
	// 16 MiB of tree; allow 4 MiB of noise (allocator, sanitizers)
	EXPECT_LT(max(after, c.max_rss) - before, 4096L)
		<< "RSS before " << before << " kB, peak " << c.max_rss << " kB, after " << after;

	bm_stats st;
	bm_get_stats(bm, &st);
	EXPECT_GE(st.reads, (uint64_t)nr_leaves);
}

//----------------------------------------------------------------
// btree_cursor

struct cursor_deleter {
	void operator()(btree_cursor *c) const { btree_cursor_destroy(c); }
};
using cursor_ptr = unique_ptr<btree_cursor, cursor_deleter>;

cursor_ptr make_cursor(tree_file &f, uint64_t root, uint32_t vs = 8)
{
	btree_cursor *c = nullptr;
	pd_err err{};

	EXPECT_EQ(0, btree_cursor_create(f.bm(), root, vs, &c, &err)) << err.msg;
	return cursor_ptr(c);
}

// Every leaf the cursor yields, then the error that ended it.
struct cursor_run {
	vector<uint64_t> leaves, keys;
	int end;
	string msg;
};

cursor_run run_cursor(tree_file &f, uint64_t root, uint32_t vs = 8)
{
	cursor_ptr c = make_cursor(f, root, vs);
	cursor_run run;
	pd_err err{};
	int r;

	for (int guard = 0; guard < 10000; guard++) {
		r = btree_cursor_next_leaf(c.get(), &err);
		if (r)
			break;
		run.leaves.push_back(btree_cursor_leaf_block(c.get()));
		EXPECT_GT(btree_cursor_nr(c.get()), 0u);
		for (uint32_t i = 0; i < btree_cursor_nr(c.get()); i++)
			run.keys.push_back(btree_cursor_key(c.get(), i));
	}
	run.end = r;
	run.msg = r && r != -ENODATA ? err.msg : "";
	return run;
}

TEST(btree_cursor, iterates_leaves_in_order)
{
	tree_file f;

	build_tree_b(f);
	cursor_run run = run_cursor(f, 1);
	EXPECT_EQ(-ENODATA, run.end);
	EXPECT_EQ(vector<uint64_t>({ 4, 5, 6, 7, 8 }), run.leaves);
	EXPECT_EQ(tree_b_keys, run.keys);
}

TEST(btree_cursor, leaf_copy_holds_the_values)
{
	tree_file f;
	pd_err err{};

	build_tree_b(f);
	cursor_ptr c = make_cursor(f, 1);
	ASSERT_EQ(0, btree_cursor_next_leaf(c.get(), &err));
	const uint8_t *leaf = (const uint8_t *)btree_cursor_leaf(c.get());
	EXPECT_EQ(4u, load_le64(leaf + 8));
	for (uint32_t i = 0; i < btree_cursor_nr(c.get()); i++)
		EXPECT_EQ(value_of(btree_cursor_key(c.get(), i)), load_le64(leaf + HDR + 8 * 252 + 8 * i));
}

TEST(btree_cursor, stays_at_the_end)
{
	tree_file f;
	pd_err err{};

	f.leaf(1, { 1, 2 });
	cursor_ptr c = make_cursor(f, 1);
	ASSERT_EQ(0, btree_cursor_next_leaf(c.get(), &err));
	EXPECT_EQ(1u, btree_cursor_leaf_block(c.get()));
	EXPECT_EQ(2u, btree_cursor_nr(c.get()));
	EXPECT_EQ(-ENODATA, btree_cursor_next_leaf(c.get(), &err));
	EXPECT_EQ(-ENODATA, btree_cursor_next_leaf(c.get(), &err));
	EXPECT_EQ(0u, btree_cursor_nr(c.get()));
}

TEST(btree_cursor, empty_tree_has_no_leaf)
{
	tree_file f;

	f.leaf(1, {});
	cursor_run run = run_cursor(f, 1);
	EXPECT_EQ(-ENODATA, run.end);
	EXPECT_TRUE(run.leaves.empty());
}

TEST(btree_cursor, skips_empty_leaves)
{
	tree_file f;

	f.internal(1, { 0, 100, 200, 300 }, { 2, 3, 4, 5 });
	f.leaf(2, {});
	f.leaf(3, { 100, 101 });
	f.leaf(4, {});
	f.leaf(5, { 300 });
	cursor_run run = run_cursor(f, 1);
	EXPECT_EQ(-ENODATA, run.end);
	EXPECT_EQ(vector<uint64_t>({ 3, 5 }), run.leaves);
	EXPECT_EQ(vector<uint64_t>({ 100, 101, 300 }), run.keys);

	f.leaf(5, {});
	cursor_run run2 = run_cursor(f, 1);
	EXPECT_EQ(-ENODATA, run2.end);
	EXPECT_EQ(vector<uint64_t>({ 3 }), run2.leaves);
}

TEST(btree_cursor, reports_a_damaged_leaf)
{
	tree_file f;

	build_tree_b(f);
	f.corrupt(5);
	cursor_run run = run_cursor(f, 1);
	EXPECT_EQ(-EILSEQ, run.end);
	EXPECT_EQ("bad checksum in btree node (block 5)", run.msg);
	EXPECT_EQ(vector<uint64_t>({ 4 }), run.leaves);
}

TEST(btree_cursor, reports_a_damaged_root)
{
	tree_file f;

	build_tree_b(f);
	f.corrupt(1);
	cursor_run run = run_cursor(f, 1);
	EXPECT_EQ(-EILSEQ, run.end);
	EXPECT_EQ("bad checksum in btree node (block 1)", run.msg);
	EXPECT_TRUE(run.leaves.empty());
}

TEST(btree_cursor, reports_range_and_depth_errors)
{
	{
		tree_file f;

		f.internal(1, { 0, 100 }, { 2, 3 });
		f.leaf(2, { 0, 5, 120 });
		f.leaf(3, { 100 });
		cursor_run run = run_cursor(f, 1);
		EXPECT_EQ(-EILSEQ, run.end);
		EXPECT_EQ("parent key mismatch: next parent key was 100, but highest in node was 120 (block 2)",
			  run.msg);
	}
	{
		tree_file f;

		f.internal(1, { 0, 100 }, { 2, 3 });
		f.leaf(2, { 0, 1 });
		f.internal(3, { 100 }, { 4 });
		f.leaf(4, { 100 });
		cursor_run run = run_cursor(f, 1);
		EXPECT_EQ(-EILSEQ, run.end);
		EXPECT_EQ("leaves at different depths in the btree (block 4)", run.msg);
		EXPECT_EQ(vector<uint64_t>({ 2 }), run.leaves);
	}
	{
		tree_file f;

		f.leaf(1, { 0, 1 }, 16);
		cursor_run run = run_cursor(f, 1, 8);
		EXPECT_EQ(-EILSEQ, run.end);
		EXPECT_EQ("value size mismatch: expected 8, but got 16 (block 1).", run.msg);
	}
}

TEST(btree_cursor, cycle_ends_with_an_error)
{
	tree_file f;

	f.internal(1, { 0 }, { 1 });
	ASSERT_TRUE(finishes_within(20, [&] { run_cursor(f, 1); }))
		<< "the cursor loops on a cycle";
	cursor_run run = run_cursor(f, 1);
	EXPECT_EQ(-EILSEQ, run.end);
	EXPECT_EQ("btree deeper than 16 levels at block 1 (cycle?)", run.msg);
}

//----------------------------------------------------------------
// btree_cursor, an entry at a time

// Every entry peek/next_entry yield, then the error that ended them.
cursor_run run_entries(tree_file &f, uint64_t root)
{
	cursor_ptr c = make_cursor(f, root);
	cursor_run run;
	pd_err err{};
	int r;

	for (int guard = 0; guard < 100000; guard++) {
		uint64_t k, k2;
		const void *v;

		r = btree_cursor_peek_entry(c.get(), &k, &v, &err);
		if (r)
			break;
		// a second peek sees the same entry
		EXPECT_EQ(0, btree_cursor_peek_entry(c.get(), &k2, nullptr, &err));
		EXPECT_EQ(k, k2);
		EXPECT_EQ(value_of(k), load_le64(v)) << "key " << k;
		run.keys.push_back(k);
		btree_cursor_next_entry(c.get());
	}
	run.end = r;
	run.msg = r && r != -ENODATA ? err.msg : "";
	return run;
}

TEST(btree_cursor_entry, yields_every_key_in_order_with_its_value)
{
	tree_file f;

	build_tree_b(f);
	cursor_run run = run_entries(f, 1);
	EXPECT_EQ(-ENODATA, run.end);
	EXPECT_EQ(tree_b_keys, run.keys);
}

TEST(btree_cursor_entry, skips_empty_leaves_and_stays_at_the_end)
{
	tree_file f;
	pd_err err{};
	uint64_t k;

	f.internal(1, { 0, 100, 200, 300 }, { 2, 3, 4, 5 });
	f.leaf(2, {});
	f.leaf(3, { 100, 101 });
	f.leaf(4, {});
	f.leaf(5, { 300 });
	cursor_run run = run_entries(f, 1);
	EXPECT_EQ(-ENODATA, run.end);
	EXPECT_EQ(vector<uint64_t>({ 100, 101, 300 }), run.keys);

	f.leaf(6, {});
	cursor_ptr c = make_cursor(f, 6);
	EXPECT_EQ(-ENODATA, btree_cursor_peek_entry(c.get(), &k, nullptr, &err));
	EXPECT_EQ(-ENODATA, btree_cursor_peek_entry(c.get(), &k, nullptr, &err));
}

TEST(btree_cursor_entry, next_leaf_makes_its_first_entry_current)
{
	tree_file f;
	pd_err err{};
	uint64_t k;

	build_tree_b(f);
	cursor_ptr c = make_cursor(f, 1);
	ASSERT_EQ(0, btree_cursor_peek_entry(c.get(), &k, nullptr, &err));
	EXPECT_EQ(tree_b_keys[0], k);
	btree_cursor_next_entry(c.get());
	ASSERT_EQ(0, btree_cursor_next_leaf(c.get(), &err));
	ASSERT_EQ(0, btree_cursor_peek_entry(c.get(), &k, nullptr, &err));
	EXPECT_EQ(btree_cursor_key(c.get(), 0), k);
	EXPECT_EQ(5u, btree_cursor_leaf_block(c.get()));
}

TEST(btree_cursor_entry, reports_damage_after_the_entries_before_it)
{
	tree_file f;

	f.internal(1, { 0, 100 }, { 2, 3 });
	f.leaf(2, { 1, 2 });
	f.leaf(3, { 100 });
	f.corrupt(3);
	cursor_run run = run_entries(f, 1);
	EXPECT_EQ(vector<uint64_t>({ 1, 2 }), run.keys);
	EXPECT_EQ(-EILSEQ, run.end);
	EXPECT_NE("", run.msg);
}

//----------------------------------------------------------------
// btree_lookup

int lookup(tree_file &f, uint64_t root, uint64_t key, uint64_t *value,
	   string *msg = nullptr, uint32_t vs = 8)
{
	pd_err err{};
	uint8_t buf[16] = {};
	int r = btree_lookup(f.bm(), root, vs, key, value ? buf : nullptr, &err);

	if (!r && value)
		*value = load_le64(buf);
	if (msg)
		*msg = r && r != -ENODATA ? err.msg : "";
	return r;
}

TEST(btree_lookup, finds_every_key)
{
	tree_file f;

	build_tree_b(f);
	for (uint64_t k : tree_b_keys) {
		uint64_t v = 0;

		ASSERT_EQ(0, lookup(f, 1, k, &v)) << "key " << k;
		EXPECT_EQ(value_of(k), v);
		EXPECT_EQ(0, lookup(f, 1, k, nullptr)) << "key " << k;
	}
}

TEST(btree_lookup, misses_absent_keys)
{
	tree_file f;

	build_tree_b(f);
	for (uint64_t k : { 5ull, 99ull, 101ull, 199ull, 250ull, 999ull, 1002ull, 1099ull,
			    1101ull, 1301ull, ~0ull }) {
		uint64_t v = 12345;

		EXPECT_EQ(-ENODATA, lookup(f, 1, k, &v)) << "key " << k;
		EXPECT_EQ(12345u, v) << "value_out untouched on a miss";
	}
}

TEST(btree_lookup, below_the_first_key)
{
	tree_file f;

	f.internal(1, { 50, 100 }, { 2, 3 });
	f.leaf(2, { 50, 60 });
	f.leaf(3, { 100 });
	f.leaf(4, { 7, 8 });
	EXPECT_EQ(-ENODATA, lookup(f, 1, 0, nullptr));
	EXPECT_EQ(-ENODATA, lookup(f, 1, 49, nullptr));
	EXPECT_EQ(0, lookup(f, 1, 50, nullptr));
	// a leaf root
	EXPECT_EQ(-ENODATA, lookup(f, 4, 6, nullptr));
	EXPECT_EQ(0, lookup(f, 4, 8, nullptr));
}

TEST(btree_lookup, empty_tree)
{
	tree_file f;

	f.leaf(1, {});
	EXPECT_EQ(-ENODATA, lookup(f, 1, 0, nullptr));
	EXPECT_EQ(-ENODATA, lookup(f, 1, 12, nullptr));
}

TEST(btree_lookup, other_value_sizes)
{
	tree_file f;
	pd_err err{};
	uint8_t v[24];

	f.internal(1, { 0, 10 }, { 2, 3 });
	f.leaf(2, { 0, 5 }, 24);
	f.leaf(3, { 10, 11 }, 24);
	ASSERT_EQ(0, btree_lookup(f.bm(), 1, 24, 11, v, &err)) << err.msg;
	EXPECT_EQ(value_of(11), load_le64(v));
	EXPECT_EQ(-ENODATA, btree_lookup(f.bm(), 1, 24, 12, v, &err));
}

TEST(btree_lookup, reports_damage_on_the_path)
{
	tree_file f;
	string msg;
	uint64_t v;

	build_tree_b(f);
	f.corrupt(5);
	EXPECT_EQ(-EILSEQ, lookup(f, 1, 110, &v, &msg));
	EXPECT_EQ("bad checksum in btree node (block 5)", msg);
	// other paths still work
	EXPECT_EQ(0, lookup(f, 1, 300, &v));
	EXPECT_EQ(value_of(300), v);
	// wrong value size
	EXPECT_EQ(-EILSEQ, lookup(f, 1, 300, &v, &msg, 16));
	EXPECT_EQ("value size mismatch: expected 16, but got 8 (block 6).", msg);
}

TEST(btree_lookup, cycle_ends_with_an_error)
{
	tree_file f;
	string msg;

	f.internal(1, { 0 }, { 1 });
	ASSERT_TRUE(finishes_within(20, [&] { lookup(f, 1, 5, nullptr); }))
		<< "btree_lookup loops on a cycle";
	EXPECT_EQ(-EILSEQ, lookup(f, 1, 5, nullptr, &msg));
	EXPECT_EQ("btree rooted at block 1 is deeper than 16 levels (cycle?)", msg);
}


//----------------------------------------------------------------
// The walk cap (persistent-data/walk-cap.h): one walk visits at most as
// many blocks as the device holds.  Key ranges stop a node from being
// its own descendant, but an empty leaf satisfies every range: one
// internal node whose 40 children are all the same empty leaf makes 41
// visits on a 16-block device.

void build_overlong(tree_file &f)
{
	vector<uint64_t> keys = range_keys(0, 40, 10), children(40, 2);

	f.internal(1, keys, children);
	f.leaf(2, {});
}

TEST(walk_cap, btree_walk_stops_after_as_many_visits_as_blocks)
{
	tree_file f(16);
	recorder rec;

	build_overlong(f);
	ASSERT_EQ(0, walk(f, 1, rec).r);
	EXPECT_FALSE(rec.limit_hit);
	ASSERT_EQ(1u, rec.damage.size());
	EXPECT_TRUE(rec.damage[0].lost);
	EXPECT_EQ(2u, rec.damage[0].block);
	EXPECT_EQ("btree walk reached more blocks than the metadata device holds (16) at block 2: "
		  "a block reached twice (cycle?)", rec.damage[0].msg);
	// the root and 15 visits of the leaf, then nothing more
	EXPECT_EQ(16u, rec.nodes.size());
}

TEST(walk_cap, the_same_tree_on_a_larger_device_is_walked_to_the_end)
{
	tree_file f(64);
	recorder rec;

	build_overlong(f);
	ASSERT_EQ(0, walk(f, 1, rec).r);
	EXPECT_TRUE(rec.damage.empty());
	EXPECT_EQ(41u, rec.nodes.size());
}

TEST(walk_cap, cursor_ends_with_an_error)
{
	tree_file f(16);

	build_overlong(f);
	cursor_run run = run_cursor(f, 1);
	EXPECT_EQ(-ELOOP, run.end);
	EXPECT_EQ("btree walk reached more blocks than the metadata device holds (16) at block 2: "
		  "a block reached twice (cycle?)", run.msg);
}

struct array_count {
	uint64_t values = 0;
	unsigned damage = 0;
};

int count_values(void *ctx, uint64_t, uint32_t nr, const void *)
{
	((array_count *)ctx)->values += nr;
	return 0;
}

void count_damage(void *ctx, uint64_t, uint64_t, const char *)
{
	((array_count *)ctx)->damage++;
}

/*
 * An array of 40 blocks whose btree names the same array block 40 times:
 * well-formed everywhere else, it reads 40 blocks on a 16-block device.
 */
int walk_shared_array(tree_file &f, array_count &c, string &msg)
{
	uint32_t max = array_max_entries(4);
	vector<uint64_t> keys = range_keys(0, 40), blocks(40, 3);
	array_walk_ops ops{};
	pd_err err{};

	f.node(1, FLAG_LEAF, keys, blocks);
	f.array_block(3, 7);
	ops.values = count_values;
	ops.damage = count_damage;
	int r = array_walk(f.bm(), 1, 4, 40ull * max, &ops, &c, &err);
	msg = r ? err.msg : "";
	return r;
}

TEST(walk_cap, array_walk_of_one_block_shared_by_every_index_ends_with_an_error)
{
	tree_file f(16);
	array_count c;
	string msg;

	ASSERT_TRUE(finishes_within(20, [&] {
		array_count c2;
		string m;
		walk_shared_array(f, c2, m);
	}));
	EXPECT_EQ(-ELOOP, walk_shared_array(f, c, msg));
	EXPECT_EQ("array walk reached more blocks than the metadata device holds (16) at block 3: "
		  "a block reached twice (cycle?)", msg);
	EXPECT_EQ(16ull * array_max_entries(4), c.values);
}

TEST(walk_cap, the_same_array_on_a_larger_device_is_read_to_the_end)
{
	tree_file f(64);
	array_count c;
	string msg;

	EXPECT_EQ(0, walk_shared_array(f, c, msg)) << msg;
	EXPECT_EQ(40ull * array_max_entries(4), c.values);
	EXPECT_EQ(0u, c.damage);
}

}
