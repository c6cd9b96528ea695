// SPDX-License-Identifier: GPL-3.0-or-later
// thin_delta_walk: the steps it reports, and that subtrees both trees
// share are read once and not descended into by the in-step walk.

extern "C" {
#include "persistent-data/block-manager.h"
#include "persistent-data/btree.h"
#include "persistent-data/io-engine.h"
#include "thin-provisioning/thin-disk.h"
#include "thin-provisioning/delta.h"
}

#include "test-files.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

using namespace std;

namespace {

struct step {
	int kind;
	uint64_t begin, len, ld, rd;
	bool operator==(const step &o) const
	{
		return kind == o.kind && begin == o.begin && len == o.len &&
		       ld == o.ld && rd == o.rd;
	}
};

int collect(void *ctx, const delta_step *s)
{
	auto *v = static_cast<vector<step> *>(ctx);

	v->push_back({ (int)s->kind, s->begin, s->len, s->left_data, s->right_data });
	return 0;
}

class delta_file {
public:
	delta_file() : dir_(test_files::regular_dir())
	{
		string p = dir_.file("meta");
		int fd = open(p.c_str(), O_CREAT | O_RDWR, 0600);
		pd_err err{};

		if (fd < 0 || ftruncate(fd, 4096 * 1024) < 0)
			throw runtime_error("cannot create " + p);
		close(fd);
		if (io_engine_open(p.c_str(), IO_ENGINE_SYNC, IO_OPEN_WRITE | IO_OPEN_NO_DIRECT, &io_, &err))
			throw runtime_error(err.msg);
	}

	~delta_file()
	{
		bm_destroy(bm_);
		io_engine_destroy(io_);
	}

	// A node at block b: a leaf of block_time values, or an internal node.
	void node(uint64_t b, bool leaf, const vector<uint64_t> &keys, const vector<uint64_t> &vals)
	{
		vector<uint8_t> buf(MD_BLOCK_SIZE, 0);
		auto *h = reinterpret_cast<btree_node_header_disk *>(buf.data());
		uint32_t max = btree_max_entries(8);

		h->flags = cpu_to_le32(leaf ? BTREE_FLAG_LEAF : BTREE_FLAG_INTERNAL);
		h->nr_entries = cpu_to_le32((uint32_t)keys.size());
		h->max_entries = cpu_to_le32(max);
		h->value_size = cpu_to_le32(8);
		for (size_t i = 0; i < keys.size(); i++) {
			store_le64(buf.data() + BTREE_NODE_HEADER_SIZE + 8 * i, keys[i]);
			store_le64(buf.data() + BTREE_NODE_HEADER_SIZE + 8 * max + 8 * i, vals[i]);
		}
		btree_node_prepare(buf.data(), b);
		void *blk = io_alloc_block();
		memcpy(blk, buf.data(), MD_BLOCK_SIZE);
		int r = io_write_block(io_, b, blk);
		free(blk);
		if (r)
			throw runtime_error("write failed");
		nodes_++;
	}

	// A leaf of n mappings from key k0 to data d0 on, block b.
	void leaf(uint64_t b, uint64_t k0, uint64_t d0, unsigned n, map<uint64_t, uint64_t> *m)
	{
		vector<uint64_t> keys, vals;

		for (unsigned i = 0; i < n; i++) {
			keys.push_back(k0 + i);
			vals.push_back(block_time_pack(d0 + i, 0));
			if (m)
				(*m)[k0 + i] = d0 + i;
		}
		node(b, true, keys, vals);
	}

	struct bm *bm()
	{
		pd_err err{};

		if (!bm_ && bm_create(io_, 64, &bm_, &err))
			throw runtime_error(err.msg);
		return bm_;
	}

	unsigned nodes_ = 0;

private:
	test_files::temp_dir dir_;
	struct io_engine *io_ = nullptr;
	struct bm *bm_ = nullptr;
};

// Steps by the definition, one block at a time.
vector<step> model(const map<uint64_t, uint64_t> &l, const map<uint64_t, uint64_t> &r)
{
	map<uint64_t, pair<int64_t, int64_t>> all;
	vector<step> out;

	for (auto &kv : l)
		all[kv.first] = { (int64_t)kv.second, -1 };
	for (auto &kv : r) {
		auto it = all.find(kv.first);
		if (it == all.end())
			all[kv.first] = { -1, (int64_t)kv.second };
		else
			it->second.second = (int64_t)kv.second;
	}
	for (auto &kv : all) {
		int64_t ld = kv.second.first, rd = kv.second.second;
		int kind = ld >= 0 && rd >= 0 ? (ld == rd ? DELTA_SAME : DELTA_DIFFERENT)
			 : ld >= 0 ? DELTA_LEFT_ONLY : DELTA_RIGHT_ONLY;
		uint64_t L = ld >= 0 ? (uint64_t)ld : 0, R = rd >= 0 ? (uint64_t)rd : 0;

		if (!out.empty()) {
			step &c = out.back();
			if (c.kind == kind && c.begin + c.len == kv.first &&
			    (ld < 0 || L == c.ld + c.len) && (rd < 0 || R == c.rd + c.len)) {
				c.len++;
				continue;
			}
		}
		out.push_back({ kind, kv.first, 1, L, R });
	}
	return out;
}

} // namespace

// Two two-level trees sharing three of four leaves.
TEST(thin_delta_walk, shared_leaves_are_read_once)
{
	delta_file f;
	map<uint64_t, uint64_t> a, b;

	f.leaf(10, 0, 1000, 100, nullptr);
	f.leaf(11, 100, 1100, 100, nullptr);
	f.leaf(12, 300, 5000, 100, nullptr);	// a's only
	f.leaf(13, 400, 1400, 100, nullptr);
	f.leaf(22, 300, 5000, 50, nullptr);	// b's: half of it, then others
	for (uint64_t k = 0; k < 100; k++) {
		a[k] = b[k] = 1000 + k;
		a[100 + k] = b[100 + k] = 1100 + k;
		a[300 + k] = 5000 + k;
		a[400 + k] = b[400 + k] = 1400 + k;
	}
	for (uint64_t k = 0; k < 50; k++)
		b[300 + k] = 5000 + k;
	{
		vector<uint64_t> keys, vals;
		for (uint64_t k = 0; k < 30; k++) {
			keys.push_back(360 + k);
			vals.push_back(block_time_pack(7000 + k, 1));
			b[360 + k] = 7000 + k;
		}
		f.node(23, true, keys, vals);
	}
	f.node(1, false, { 0, 100, 300, 400 }, { 10, 11, 12, 13 });
	f.node(2, false, { 0, 100, 300, 360, 400 }, { 10, 11, 22, 23, 13 });

	vector<step> got;
	delta_stats st{};
	pd_err err{};
	ASSERT_EQ(0, thin_delta_walk(f.bm(), 1, 2, collect, &got, &st, &err)) << err.msg;
	EXPECT_EQ(model(a, b), got);
	EXPECT_EQ(3u, st.shared_subtrees);
	EXPECT_EQ(300u, st.shared_mappings);
	// each node once, plus the leftmost path again while finding the depth
	EXPECT_LE(st.nodes_read, f.nodes_ + 3);
}

// Three levels: a whole internal subtree shared is one skip, not a
// comparison of its leaves.
TEST(thin_delta_walk, shared_internal_subtree_is_not_descended)
{
	delta_file f;
	map<uint64_t, uint64_t> a, b;
	vector<uint64_t> keys, vals;

	for (unsigned i = 0; i < 20; i++) {
		f.leaf(100 + i, i * 200, 10000 + i * 300, 150, &a);
		keys.push_back(i * 200);
		vals.push_back(100 + i);
	}
	b = a;
	f.node(50, false, keys, vals);		// shared internal node
	f.leaf(200, 4000, 90000, 10, &a);	// the rest differs
	f.leaf(201, 4005, 91000, 10, &b);
	f.node(51, false, { 4000 }, { 200 });
	f.node(52, false, { 4005 }, { 201 });
	f.node(1, false, { 0, 4000 }, { 50, 51 });
	f.node(2, false, { 0, 4005 }, { 50, 52 });

	vector<step> got;
	delta_stats st{};
	pd_err err{};
	ASSERT_EQ(0, thin_delta_walk(f.bm(), 1, 2, collect, &got, &st, &err)) << err.msg;
	EXPECT_EQ(model(a, b), got);
	EXPECT_EQ(1u, st.shared_subtrees);
	EXPECT_EQ(3000u, st.shared_mappings);
	EXPECT_LE(st.nodes_read, f.nodes_ + 6);

	// a tree against itself: one shared subtree, one step per run
	got.clear();
	ASSERT_EQ(0, thin_delta_walk(f.bm(), 1, 1, collect, &got, &st, &err)) << err.msg;
	EXPECT_EQ(model(a, a), got);
	EXPECT_EQ(1u, st.shared_subtrees);
	EXPECT_EQ(a.size(), st.shared_mappings);
}

TEST(thin_delta_walk, keys_out_of_order_are_an_error)
{
	delta_file f;

	f.leaf(10, 100, 0, 10, nullptr);
	f.leaf(11, 50, 0, 10, nullptr);		// keys below its left sibling's
	f.node(1, false, { 100, 150 }, { 10, 11 });
	f.leaf(12, 0, 0, 5, nullptr);
	f.node(2, false, { 0 }, { 12 });

	vector<step> got;
	pd_err err{};
	EXPECT_EQ(-EILSEQ, thin_delta_walk(f.bm(), 1, 2, collect, &got, nullptr, &err));
	EXPECT_NE(string::npos, string(err.msg).find("out of order")) << err.msg;
}


/*
 * The walk cap (persistent-data/walk-cap.h): thin_delta's own walker does
 * not check key ranges, so internal nodes that name one child in every
 * slot, over an empty leaf, multiply: 200^3 visits from four blocks.  The
 * walk ends with an error once both sides together have opened more nodes
 * than two trees on the device could hold.
 */
TEST(thin_delta_walk, a_node_shared_in_every_slot_ends_with_an_error)
{
	delta_file f;
	vector<uint64_t> keys, to2(200, 2), to3(200, 3), to4(200, 4);

	for (uint64_t k = 0; k < 200; k++)
		keys.push_back(k);
	f.node(1, false, keys, to2);
	f.node(2, false, keys, to3);
	f.node(3, false, keys, to4);
	f.node(4, true, {}, {});
	f.leaf(20, 0, 0, 5, nullptr);

	vector<step> got;
	pd_err err{};
	EXPECT_EQ(-ELOOP, thin_delta_walk(f.bm(), 1, 20, collect, &got, nullptr, &err));
	EXPECT_EQ("mapping tree walk reached more blocks than the metadata device holds (2048) at "
		  "block 4: a block reached twice (cycle?)", string(err.msg));
}
