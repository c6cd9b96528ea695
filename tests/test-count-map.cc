// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * The in-memory count map against a std::map model: random set / inc /
 * dec that move counts across the 2-bit / overflow boundary both ways,
 * cm_nr_allocated, and cm_find for 0, 1, 2 and counts of 3 and more.
 */
#include <gtest/gtest.h>

extern "C" {
#include "persistent-data/count-map.h"
}

#include <cerrno>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <vector>

using namespace std;

namespace {

//----------------------------------------------------------------
// Model

struct cm_deleter {
	void operator()(count_map *cm) const { cm_destroy(cm); }
};
using cm_ptr = unique_ptr<count_map, cm_deleter>;

cm_ptr make_cm(uint64_t nr_blocks)
{
	count_map *cm = nullptr;

	EXPECT_EQ(0, cm_create(nr_blocks, &cm));
	return cm_ptr(cm);
}

class model {
public:
	explicit model(uint64_t nr_blocks) : nr_(nr_blocks), cm_(make_cm(nr_blocks)) {}

	count_map *cm() { return cm_.get(); }

	uint32_t get(uint64_t b) const
	{
		auto it = counts_.find(b);

		return it == counts_.end() ? 0 : it->second;
	}

	void set(uint64_t b, uint32_t c)
	{
		ASSERT_EQ(0, cm_set(cm(), b, c));
		put(b, c);
	}

	void inc(uint64_t b)
	{
		ASSERT_EQ(0, cm_inc(cm(), b));
		uint32_t c = get(b);
		put(b, c == UINT32_MAX ? c : c + 1);
	}

	void dec(uint64_t b)
	{
		uint32_t c = get(b);

		if (!c) {
			ASSERT_EQ(-EINVAL, cm_dec(cm(), b));
			return;
		}
		ASSERT_EQ(0, cm_dec(cm(), b));
		put(b, c - 1);
	}

	uint64_t nr_allocated() const { return counts_.size(); }

	// the next block >= b whose count is c
	uint64_t find(uint64_t b, uint32_t c) const
	{
		if (c == 0) {
			for (; b < nr_; b++)
				if (!counts_.count(b))
					return b;
			return UINT64_MAX;
		}
		for (auto it = counts_.lower_bound(b); it != counts_.end(); ++it)
			if (it->second == c)
				return it->first;
		return UINT64_MAX;
	}

	void check_all() const
	{
		for (uint64_t b = 0; b < nr_; b++)
			ASSERT_EQ(get(b), cm_get(cm_.get(), b)) << "block " << b;
		ASSERT_EQ(nr_allocated(), cm_nr_allocated(cm_.get()));
	}

private:
	void put(uint64_t b, uint32_t c)
	{
		if (c)
			counts_[b] = c;
		else
			counts_.erase(b);
	}

	uint64_t nr_;
	cm_ptr cm_;
	map<uint64_t, uint32_t> counts_;
};

//----------------------------------------------------------------
// Basics

TEST(count_map, starts_empty)
{
	cm_ptr cm = make_cm(1000);

	EXPECT_EQ(1000u, cm_nr_blocks(cm.get()));
	EXPECT_EQ(0u, cm_nr_allocated(cm.get()));
	for (uint64_t b = 0; b < 1000; b++)
		ASSERT_EQ(0u, cm_get(cm.get(), b));
	EXPECT_EQ(0u, cm_find(cm.get(), 0, 0));
	EXPECT_EQ(999u, cm_find(cm.get(), 999, 0));
	EXPECT_EQ(UINT64_MAX, cm_find(cm.get(), 0, 1));
	EXPECT_EQ(UINT64_MAX, cm_find(cm.get(), 0, 3));
}

TEST(count_map, zero_blocks)
{
	cm_ptr cm = make_cm(0);

	EXPECT_EQ(0u, cm_nr_blocks(cm.get()));
	EXPECT_EQ(UINT64_MAX, cm_find(cm.get(), 0, 0));
	EXPECT_EQ(UINT64_MAX, cm_find(cm.get(), 0, 1));
}

TEST(count_map, destroy_accepts_null)
{
	cm_destroy(nullptr);
}

TEST(count_map, counts_across_the_overflow_boundary_and_back)
{
	model m(100);

	for (int i = 0; i < 10; i++)
		m.inc(42);
	EXPECT_EQ(10u, cm_get(m.cm(), 42));
	EXPECT_EQ(1u, cm_nr_allocated(m.cm()));
	for (uint32_t want = 9; want != UINT32_MAX; want--) {
		m.dec(42);
		ASSERT_EQ(want, cm_get(m.cm(), 42));
	}
	EXPECT_EQ(0u, cm_nr_allocated(m.cm()));
	m.dec(42);		// at 0: -EINVAL, nothing changes
	EXPECT_EQ(0u, cm_get(m.cm(), 42));

	// back above 3 after a stale overflow entry was left behind
	m.set(42, 7);
	m.set(42, 1);
	EXPECT_EQ(1u, cm_get(m.cm(), 42));
	m.set(42, 3);
	EXPECT_EQ(3u, cm_get(m.cm(), 42));
	m.set(42, 2);
	m.inc(42);
	EXPECT_EQ(3u, cm_get(m.cm(), 42));
	m.inc(42);
	EXPECT_EQ(4u, cm_get(m.cm(), 42));
	m.check_all();
}

TEST(count_map, neighbours_are_independent)
{
	model m(70);

	m.set(31, 5);
	m.set(32, 2);
	m.set(33, 1);
	m.set(0, 1000000);
	m.set(69, 3);
	m.check_all();
	m.set(31, 0);
	m.check_all();
}

TEST(count_map, saturates_at_uint32_max)
{
	model m(10);

	m.set(3, UINT32_MAX - 1);
	m.inc(3);
	EXPECT_EQ(UINT32_MAX, cm_get(m.cm(), 3));
	m.inc(3);
	EXPECT_EQ(UINT32_MAX, cm_get(m.cm(), 3));
	m.dec(3);
	EXPECT_EQ(UINT32_MAX - 1, cm_get(m.cm(), 3));
}

TEST(count_map, nr_allocated_follows_zero_transitions)
{
	model m(64);

	m.set(1, 5);
	m.set(2, 1);
	EXPECT_EQ(2u, cm_nr_allocated(m.cm()));
	m.set(1, 9);		// non-zero to non-zero
	m.set(2, 2);
	EXPECT_EQ(2u, cm_nr_allocated(m.cm()));
	m.set(1, 0);
	EXPECT_EQ(1u, cm_nr_allocated(m.cm()));
	m.set(1, 0);		// zero to zero
	EXPECT_EQ(1u, cm_nr_allocated(m.cm()));
	m.dec(2);
	m.dec(2);
	EXPECT_EQ(0u, cm_nr_allocated(m.cm()));
}

//----------------------------------------------------------------
// Random operations against the model

class count_map_random : public ::testing::TestWithParam<uint64_t> {};

TEST_P(count_map_random, matches_the_model)
{
	const uint64_t nr = GetParam();
	model m(nr);
	mt19937_64 rng(nr * 7919 + 1);
	vector<uint64_t> hot;

	// a few hot blocks get high counts; the edges of words are included
	for (uint64_t b : { (uint64_t)0, (uint64_t)31, (uint64_t)32, nr - 1, nr / 2 })
		if (b < nr)
			hot.push_back(b);
	for (int i = 0; i < 20; i++)
		hot.push_back(rng() % nr);

	for (int step = 0; step < 40000; step++) {
		uint64_t b = rng() % 3 ? hot[rng() % hot.size()] : rng() % nr;
		unsigned op = rng() % 10;

		if (op < 4)
			m.inc(b);
		else if (op < 8)
			m.dec(b);
		else if (op < 9)
			m.set(b, (uint32_t)(rng() % 6));
		else
			m.set(b, (uint32_t)(rng() % 100000));
		if (::testing::Test::HasFatalFailure())
			return;
		ASSERT_EQ(m.get(b), cm_get(m.cm(), b)) << "step " << step << " block " << b;
		ASSERT_EQ(m.nr_allocated(), cm_nr_allocated(m.cm())) << "step " << step;
		if (step % 4000 == 0)
			m.check_all();
	}
	m.check_all();

	// cm_find from random starts, for 0, 1, 2 and exact counts >= 3
	vector<uint32_t> wanted = { 0, 1, 2, 3, 4, 5 };
	for (uint64_t b : hot)
		if (m.get(b) >= 3)
			wanted.push_back(m.get(b));
	for (uint32_t c : wanted)
		for (int i = 0; i < 200; i++) {
			uint64_t from = i < 3 ? (uint64_t)i * 31 : rng() % (nr + 10);

			ASSERT_EQ(m.find(from, c), cm_find(m.cm(), from, c))
				<< "count " << c << " from " << from;
		}
}

// sizes: less than a word, a word, not a multiple of 32, several words
INSTANTIATE_TEST_SUITE_P(sizes, count_map_random, ::testing::Values(20, 32, 1001, 4096));

TEST(count_map, many_blocks_above_two)
{
	// enough counts >= 3 to make the overflow table grow several times
	const uint64_t nr = 20000;
	model m(nr);

	for (uint64_t b = 0; b < nr; b += 3)
		m.set(b, (uint32_t)(3 + b % 50));
	m.check_all();
	for (uint64_t b = 0; b < nr; b += 6)
		m.set(b, (uint32_t)(b % 3));
	m.check_all();
	for (uint64_t b = 0; b < nr; b += 6)
		m.set(b, 1000 + (uint32_t)b);
	m.check_all();
	EXPECT_EQ(m.find(0, 1003), cm_find(m.cm(), 0, 1003));
	EXPECT_EQ(m.find(7, 3), cm_find(m.cm(), 7, 3));
}

//----------------------------------------------------------------
// cm_find in detail

TEST(count_map_find, finds_each_small_count)
{
	model m(200);

	m.set(5, 1);
	m.set(70, 2);
	m.set(71, 1);
	m.set(150, 7);
	m.set(151, 3);
	EXPECT_EQ(5u, cm_find(m.cm(), 0, 1));
	EXPECT_EQ(5u, cm_find(m.cm(), 5, 1));
	EXPECT_EQ(71u, cm_find(m.cm(), 6, 1));
	EXPECT_EQ(UINT64_MAX, cm_find(m.cm(), 72, 1));
	EXPECT_EQ(70u, cm_find(m.cm(), 0, 2));
	EXPECT_EQ(UINT64_MAX, cm_find(m.cm(), 71, 2));
	EXPECT_EQ(0u, cm_find(m.cm(), 0, 0));
	EXPECT_EQ(6u, cm_find(m.cm(), 5, 0));
	EXPECT_EQ(72u, cm_find(m.cm(), 70, 0));
	// counts >= 3: exact
	EXPECT_EQ(151u, cm_find(m.cm(), 0, 3));
	EXPECT_EQ(150u, cm_find(m.cm(), 0, 7));
	EXPECT_EQ(UINT64_MAX, cm_find(m.cm(), 0, 4));
	EXPECT_EQ(UINT64_MAX, cm_find(m.cm(), 151, 7));
}

TEST(count_map_find, zero_past_full_words)
{
	model m(100);

	for (uint64_t b = 0; b < 96; b++)
		m.set(b, 1 + b % 4);
	EXPECT_EQ(96u, cm_find(m.cm(), 0, 0));
	m.set(40, 0);
	EXPECT_EQ(40u, cm_find(m.cm(), 0, 0));
	EXPECT_EQ(96u, cm_find(m.cm(), 41, 0));
	for (uint64_t b = 96; b < 100; b++)
		m.set(b, 2);
	EXPECT_EQ(UINT64_MAX, cm_find(m.cm(), 41, 0));
}

TEST(count_map_find, from_beyond_the_end)
{
	cm_ptr cm = make_cm(64);

	EXPECT_EQ(UINT64_MAX, cm_find(cm.get(), 64, 0));
	EXPECT_EQ(UINT64_MAX, cm_find(cm.get(), 1000, 0));
	EXPECT_EQ(UINT64_MAX, cm_find(cm.get(), UINT64_MAX - 1, 1));
}

TEST(count_map_find, zero_in_the_tail_of_a_partial_word)
{
	model m(40);

	for (uint64_t b = 0; b < 40; b++)
		m.set(b, 1);
	EXPECT_EQ(UINT64_MAX, cm_find(m.cm(), 0, 0));
	m.set(39, 0);
	EXPECT_EQ(39u, cm_find(m.cm(), 0, 0));
	EXPECT_EQ(39u, cm_find(m.cm(), 32, 0));
}

}
