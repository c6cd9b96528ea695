// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * The block manager over a temporary file: the cache bound and LRU
 * eviction, locking rules, write-back with prepare_for_write, prefetch,
 * and validation (once per entry into the cache, again after a failure
 * or for another validator).  Run against the sync and the async engine.
 */
#include <gtest/gtest.h>

extern "C" {
#include "persistent-data/block-manager.h"
#include "persistent-data/checksum.h"
#include "persistent-data/io-engine.h"
}

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace std;

namespace {

//----------------------------------------------------------------
// Helpers

constexpr uint64_t nr_file_blocks = 128;

void put64(void *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		((uint8_t *)p)[i] = (uint8_t)(v >> (8 * i));
}

uint64_t get64(const void *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | ((const uint8_t *)p)[i];
	return v;
}

// The initial content of block b: its number at offset 8, a pattern after.
uint8_t pattern(uint64_t b, size_t i)
{
	return (uint8_t)(b * 31 + i * 7 + 1);
}

bool has_pattern(const void *data, uint64_t b)
{
	const uint8_t *p = (const uint8_t *)data;

	if (get64(p + 8) != b)
		return false;
	for (size_t i = 16; i < MD_BLOCK_SIZE; i++)
		if (p[i] != pattern(b, i))
			return false;
	return true;
}

/*
 * A validator that counts its calls.  check() fails with fail_code when
 * that is set; prepare_for_write() stamps the location at offset 8 and
 * a bitmap checksum, as the space map validators do.
 */
struct test_validator {
	bm_validator v;
	unsigned checks = 0, prepares = 0;
	int fail_code = 0;

	test_validator()
	{
		v.name = "test";
		v.check = check;
		v.prepare_for_write = prepare;
	}

	static test_validator *self(const bm_validator *v)
	{
		return reinterpret_cast<test_validator *>(const_cast<bm_validator *>(v));
	}

	static int check(const bm_validator *v, const void *, uint64_t location, pd_err *err)
	{
		test_validator *t = self(v);

		t->checks++;
		if (t->fail_code)
			return pd_err_set(err, t->fail_code, "test validator rejects block %llu",
					  (unsigned long long)location);
		return 0;
	}

	static void prepare(const bm_validator *v, void *data, uint64_t location)
	{
		self(v)->prepares++;
		put64((uint8_t *)data + 8, location);
		block_set_csum(data, CSUM_XOR_SM_BITMAP);
	}
};
static_assert(offsetof(test_validator, v) == 0, "bm_validator first");

/*
 * Runs fn in a child process; returns its result as the exit status, or
 * 128 + the signal that killed it.  For tests whose failure corrupts the
 * cache: a crash must not take the rest of the suite with it.
 */
int in_child(const function<int()> &fn)
{
	fflush(nullptr);
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (!pid)
		_exit(fn());
	int status = 0;
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

struct free_deleter {
	void operator()(void *p) const { free(p); }
};

class bm_test : public ::testing::TestWithParam<io_engine_kind> {
protected:
	void SetUp() override
	{
		const char *t = getenv("TMPDIR");
		string tmpl = string(t && *t ? t : "/tmp") + "/test-block-manager.XXXXXX";
		vector<char> name(tmpl.begin(), tmpl.end());
		pd_err err{};

		name.push_back('\0');
		int fd = mkstemp(name.data());
		ASSERT_GE(fd, 0);
		path_ = name.data();
		close(fd);

		buf_.reset(io_alloc_block());
		ASSERT_TRUE(buf_);

		// write the pattern with the sync engine
		io_engine *w = nullptr;
		ASSERT_EQ(0, ftruncate_path(nr_file_blocks * MD_BLOCK_SIZE));
		ASSERT_EQ(0, io_engine_open(path_.c_str(), IO_ENGINE_SYNC, IO_OPEN_WRITE, &w, &err))
			<< err.msg;
		for (uint64_t b = 0; b < nr_file_blocks; b++) {
			uint8_t *p = (uint8_t *)buf_.get();

			memset(p, 0, 16);
			put64(p + 8, b);
			for (size_t i = 16; i < MD_BLOCK_SIZE; i++)
				p[i] = pattern(b, i);
			ASSERT_EQ(0, io_write_block(w, b, p));
		}
		io_engine_destroy(w);

		int r = io_engine_open(path_.c_str(), GetParam(), IO_OPEN_WRITE, &io_, &err);
		if (r == -ENOTSUP || (r && GetParam() != IO_ENGINE_SYNC))
			GTEST_SKIP() << "engine not available here: " << err.msg;
		ASSERT_EQ(0, r) << err.msg;
	}

	void TearDown() override
	{
		bm_destroy(bm_);
		io_engine_destroy(io_);
		if (!path_.empty())
			unlink(path_.c_str());
	}

	int ftruncate_path(uint64_t size)
	{
		return truncate(path_.c_str(), (off_t)size);
	}

	struct bm *make_bm(unsigned cache = 16)
	{
		pd_err err{};

		bm_destroy(bm_);
		bm_ = nullptr;
		EXPECT_EQ(0, bm_create(io_, cache, &bm_, &err)) << err.msg;
		return bm_;
	}

	bm_stats stats()
	{
		bm_stats st;

		bm_get_stats(bm_, &st);
		return st;
	}

	// The block as it is in the file.
	const uint8_t *raw(uint64_t b)
	{
		EXPECT_EQ(0, io_read_block(io_, b, buf_.get()));
		return (const uint8_t *)buf_.get();
	}

	bm_block *rlock(uint64_t b, const bm_validator *v = nullptr)
	{
		bm_block *blk = nullptr;
		pd_err err{};

		EXPECT_EQ(0, bm_read_lock(bm_, b, v, &blk, &err)) << "block " << b << ": " << err.msg;
		return blk;
	}

	bm_block *wlock(uint64_t b, const bm_validator *v = nullptr)
	{
		bm_block *blk = nullptr;
		pd_err err{};

		EXPECT_EQ(0, bm_write_lock(bm_, b, v, &blk, &err)) << "block " << b << ": " << err.msg;
		return blk;
	}

	void touch(uint64_t b)
	{
		bm_block *blk = rlock(b);

		if (blk) {
			EXPECT_TRUE(has_pattern(bm_block_data(blk), b)) << "block " << b;
			bm_unlock(blk);
		}
	}

	string path_;
	io_engine *io_ = nullptr;
	struct bm *bm_ = nullptr;
	unique_ptr<void, free_deleter> buf_;
};

//----------------------------------------------------------------
// Cache bound

TEST_P(bm_test, reads_each_block_once_while_it_stays_cached)
{
	make_bm(16);
	for (uint64_t b = 0; b < 16; b++)
		touch(b);
	for (uint64_t b = 0; b < 16; b++)
		touch(b);
	bm_stats st = stats();
	EXPECT_EQ(16u, st.reads);
	EXPECT_EQ(16u, st.hits);
	EXPECT_EQ(0u, st.writes);
}

TEST_P(bm_test, more_distinct_blocks_than_capacity_are_read_again)
{
	make_bm(16);
	// LRU: cycling through 32 blocks with room for 16 never hits
	for (int round = 0; round < 3; round++)
		for (uint64_t b = 0; b < 32; b++)
			touch(b);
	bm_stats st = stats();
	EXPECT_EQ(96u, st.reads);
	EXPECT_EQ(0u, st.hits);

	// the 16 most recent are cached
	for (uint64_t b = 16; b < 32; b++)
		touch(b);
	st = stats();
	EXPECT_EQ(96u, st.reads);
	EXPECT_EQ(16u, st.hits);
}

TEST_P(bm_test, least_recently_used_is_evicted_first)
{
	make_bm(16);
	for (uint64_t b = 0; b < 16; b++)
		touch(b);
	touch(0);		// 0 is now the newest, 1 the oldest
	touch(100);		// evicts 1
	bm_stats before = stats();
	touch(0);
	EXPECT_EQ(before.hits + 1, stats().hits);
	touch(1);
	EXPECT_EQ(before.reads + 1, stats().reads);
}

TEST_P(bm_test, never_more_than_capacity_buffers)
{
	vector<bm_block *> held;
	bm_block *extra = nullptr;
	pd_err err{};

	make_bm(16);
	for (uint64_t b = 0; b < 16; b++)
		held.push_back(rlock(b));
	EXPECT_EQ(-ENOMEM, bm_read_lock(bm_, 16, nullptr, &extra, &err));
	EXPECT_STREQ("block cache exhausted: 16 blocks locked at once", err.msg);
	EXPECT_EQ(-ENOMEM, bm_write_lock_zero(bm_, 17, nullptr, &extra, &err));

	// what is locked is untouched
	for (uint64_t b = 0; b < 16; b++)
		EXPECT_TRUE(has_pattern(bm_block_data(held[b]), b));

	bm_unlock(held[3]);
	extra = rlock(16);
	ASSERT_NE(nullptr, extra);
	EXPECT_TRUE(has_pattern(bm_block_data(extra), 16));
	bm_unlock(extra);
	for (uint64_t b = 0; b < 16; b++)
		if (b != 3) {
			EXPECT_TRUE(has_pattern(bm_block_data(held[b]), b));
			bm_unlock(held[b]);
		}
}

TEST_P(bm_test, tiny_capacity_is_raised_to_16)
{
	vector<bm_block *> held;
	bm_block *extra = nullptr;
	pd_err err{};

	make_bm(2);
	for (uint64_t b = 0; b < 16; b++)
		held.push_back(rlock(b));
	EXPECT_EQ(-ENOMEM, bm_read_lock(bm_, 16, nullptr, &extra, &err));
	for (bm_block *blk : held)
		bm_unlock(blk);
}

TEST_P(bm_test, several_read_locks_share_one_buffer)
{
	make_bm(16);
	bm_block *a = rlock(7), *b = rlock(7);

	ASSERT_TRUE(a && b);
	EXPECT_EQ(bm_block_data(a), bm_block_data(b));
	EXPECT_EQ(7u, bm_block_location(a));
	EXPECT_EQ(1u, stats().reads);
	EXPECT_EQ(1u, stats().hits);
	bm_unlock(a);
	bm_unlock(b);
}

TEST_P(bm_test, beyond_the_end_is_einval)
{
	bm_block *blk = nullptr;
	pd_err err{};

	make_bm(16);
	EXPECT_EQ(nr_file_blocks, bm_nr_blocks(bm_));
	EXPECT_EQ(io_, bm_io(bm_));
	EXPECT_EQ(-EINVAL, bm_read_lock(bm_, nr_file_blocks, nullptr, &blk, &err));
	EXPECT_EQ(-EINVAL, bm_write_lock(bm_, nr_file_blocks + 5, nullptr, &blk, &err));
	EXPECT_EQ(-EINVAL, bm_write_lock_zero(bm_, UINT64_MAX, nullptr, &blk, &err));
	EXPECT_EQ(0u, stats().reads);
	// the failures left the cache usable
	for (uint64_t b = 0; b < 40; b++)
		touch(b);
}

//----------------------------------------------------------------
// Locking rules

TEST_P(bm_test, double_write_lock_is_ebusy)
{
	bm_block *blk = nullptr, *other = nullptr;
	pd_err err{};

	make_bm(16);
	blk = wlock(2);
	ASSERT_NE(nullptr, blk);
	EXPECT_EQ(-EBUSY, bm_write_lock(bm_, 2, nullptr, &other, &err));
	EXPECT_EQ(-EBUSY, err.code);
	EXPECT_EQ(-EBUSY, bm_read_lock(bm_, 2, nullptr, &other, &err));
	EXPECT_EQ(-EBUSY, bm_write_lock_zero(bm_, 2, nullptr, &other, &err));
	bm_unlock(blk);

	bm_block *r1 = rlock(2), *r2 = rlock(2);
	EXPECT_EQ(-EBUSY, bm_write_lock(bm_, 2, nullptr, &other, &err));
	bm_unlock(r1);
	EXPECT_EQ(-EBUSY, bm_write_lock(bm_, 2, nullptr, &other, &err));
	bm_unlock(r2);
	blk = wlock(2);
	ASSERT_NE(nullptr, blk);
	bm_unlock(blk);
}

TEST_P(bm_test, read_after_write_lock_sees_the_data)
{
	make_bm(16);
	bm_block *w = wlock(9);

	ASSERT_NE(nullptr, w);
	memcpy((uint8_t *)bm_block_data_rw(w) + 100, "hello", 5);
	bm_unlock(w);

	bm_block *r = rlock(9);
	ASSERT_NE(nullptr, r);
	EXPECT_EQ(0, memcmp((const uint8_t *)bm_block_data(r) + 100, "hello", 5));
	bm_unlock(r);
	EXPECT_EQ(1u, stats().reads);
	EXPECT_EQ(1u, stats().hits);
	// not written yet
	EXPECT_EQ(0u, stats().writes);
	EXPECT_TRUE(has_pattern(raw(9), 9));
}

TEST_P(bm_test, write_lock_zero_reads_nothing)
{
	bm_block *w = nullptr;
	pd_err err{};

	make_bm(16);
	ASSERT_EQ(0, bm_write_lock_zero(bm_, 12, nullptr, &w, &err));
	const uint8_t *p = (const uint8_t *)bm_block_data(w);
	for (size_t i = 0; i < MD_BLOCK_SIZE; i++)
		ASSERT_EQ(0, p[i]) << "byte " << i;
	bm_unlock(w);
	EXPECT_EQ(0u, stats().reads);

	// also over a cached copy
	touch(13);
	ASSERT_EQ(0, bm_write_lock_zero(bm_, 13, nullptr, &w, &err));
	EXPECT_EQ(0, ((const uint8_t *)bm_block_data(w))[100]);
	bm_unlock(w);
}

//----------------------------------------------------------------
// Writing back

TEST_P(bm_test, flush_writes_dirty_blocks_with_prepare_for_write)
{
	test_validator v;
	pd_err err{};

	make_bm(16);
	bm_block *w = wlock(5, &v.v);
	ASSERT_NE(nullptr, w);
	EXPECT_EQ(1u, v.checks);
	memcpy((uint8_t *)bm_block_data_rw(w) + 200, "dirty", 5);
	put64((uint8_t *)bm_block_data_rw(w) + 8, 0);	// prepare restores it
	bm_unlock(w);
	EXPECT_EQ(0u, v.prepares);
	EXPECT_TRUE(has_pattern(raw(5), 5)) << "written before the flush";

	ASSERT_EQ(0, bm_flush(bm_, &err)) << err.msg;
	EXPECT_EQ(1u, v.prepares);
	EXPECT_EQ(1u, stats().writes);
	const uint8_t *p = raw(5);
	EXPECT_EQ(0, memcmp(p + 200, "dirty", 5));
	EXPECT_EQ(5u, get64(p + 8));
	EXPECT_EQ(block_csum(p, CSUM_XOR_SM_BITMAP), block_stored_csum(p));

	// clean now: a second flush writes nothing
	ASSERT_EQ(0, bm_flush(bm_, &err));
	EXPECT_EQ(1u, stats().writes);
	EXPECT_EQ(1u, v.prepares);
}

TEST_P(bm_test, flush_writes_only_dirty_blocks)
{
	test_validator v;
	pd_err err{};

	make_bm(32);
	for (uint64_t b = 0; b < 10; b++)
		touch(b);
	for (uint64_t b : { 3u, 20u, 7u }) {
		bm_block *w = wlock(b, &v.v);

		ASSERT_NE(nullptr, w);
		((uint8_t *)bm_block_data_rw(w))[300] = 0xEE;
		bm_unlock(w);
	}
	ASSERT_EQ(0, bm_flush(bm_, &err)) << err.msg;
	EXPECT_EQ(3u, stats().writes);
	EXPECT_EQ(3u, v.prepares);
	for (uint64_t b = 0; b < 24; b++) {
		const uint8_t *p = raw(b);

		if (b == 3 || b == 20 || b == 7) {
			EXPECT_EQ(0xEE, p[300]) << "block " << b;
		} else {
			EXPECT_TRUE(has_pattern(p, b)) << "block " << b;
		}
	}
}

TEST_P(bm_test, write_lock_zero_with_validator_is_prepared_on_flush)
{
	test_validator v;
	bm_block *w = nullptr;
	pd_err err{};

	make_bm(16);
	ASSERT_EQ(0, bm_write_lock_zero(bm_, 30, &v.v, &w, &err));
	EXPECT_EQ(0u, v.checks) << "nothing read, nothing to check";
	bm_unlock(w);
	ASSERT_EQ(0, bm_flush(bm_, &err));
	const uint8_t *p = raw(30);
	EXPECT_EQ(30u, get64(p + 8));
	EXPECT_EQ(CSUM_XOR_SM_BITMAP, block_csum_type(p));

	// and it is valid in the cache without a re-check
	bm_block *r = rlock(30, &v.v);
	EXPECT_EQ(0u, v.checks);
	bm_unlock(r);
}

TEST_P(bm_test, dirty_block_is_written_back_when_evicted)
{
	test_validator v;

	make_bm(16);
	bm_block *w = wlock(3, &v.v);
	ASSERT_NE(nullptr, w);
	((uint8_t *)bm_block_data_rw(w))[500] = 0x77;
	bm_unlock(w);
	for (uint64_t b = 40; b < 56; b++)
		touch(b);
	EXPECT_EQ(1u, stats().writes);
	EXPECT_EQ(1u, v.prepares);
	const uint8_t *p = raw(3);
	EXPECT_EQ(0x77, p[500]);
	EXPECT_EQ(CSUM_XOR_SM_BITMAP, block_csum_type(p));

	// read back through the cache: the written copy, checked again
	bm_block *r = rlock(3, &v.v);
	ASSERT_NE(nullptr, r);
	EXPECT_EQ(0x77, ((const uint8_t *)bm_block_data(r))[500]);
	bm_unlock(r);
}

TEST_P(bm_test, forget_drops_the_cached_copy)
{
	make_bm(16);
	touch(4);
	uint8_t *p = (uint8_t *)buf_.get();
	memset(p, 0xAB, MD_BLOCK_SIZE);
	ASSERT_EQ(0, io_write_block(io_, 4, p));

	bm_block *r = rlock(4);
	EXPECT_TRUE(has_pattern(bm_block_data(r), 4)) << "still the cached copy";
	bm_unlock(r);
	bm_forget(bm_, 4);
	r = rlock(4);
	EXPECT_EQ(0xAB, ((const uint8_t *)bm_block_data(r))[123]);
	bm_unlock(r);
	EXPECT_EQ(2u, stats().reads);
}

//----------------------------------------------------------------
// Prefetch

TEST_P(bm_test, prefetch_then_lock_counts_as_hits)
{
	const uint64_t blocks[] = { 0, 1, 2, 3, 4, 5, 6, 7 };

	make_bm(16);
	bm_prefetch(bm_, blocks, 8);
	EXPECT_EQ(8u, stats().reads);
	for (uint64_t b : blocks)
		touch(b);
	bm_stats st = stats();
	EXPECT_EQ(8u, st.reads);
	EXPECT_EQ(8u, st.hits);
}

TEST_P(bm_test, prefetch_skips_cached_duplicate_and_out_of_range_blocks)
{
	const uint64_t blocks[] = { 3, 3, 9, nr_file_blocks, 9, UINT64_MAX, 4 };

	make_bm(16);
	touch(4);
	bm_prefetch(bm_, blocks, 7);
	EXPECT_EQ(3u, stats().reads);	// 4, then 3 and 9
	touch(3);
	touch(9);
	EXPECT_EQ(3u, stats().reads);
}

TEST_P(bm_test, prefetch_reads_at_most_half_the_cache)
{
	vector<uint64_t> blocks;

	for (uint64_t b = 0; b < 64; b++)
		blocks.push_back(b);
	make_bm(16);
	bm_prefetch(bm_, blocks.data(), (unsigned)blocks.size());
	EXPECT_EQ(8u, stats().reads);
	for (uint64_t b = 0; b < 8; b++)
		touch(b);
	EXPECT_EQ(8u, stats().hits);
}

TEST_P(bm_test, prefetched_blocks_are_validated_when_locked)
{
	const uint64_t blocks[] = { 10, 11 };
	test_validator v;

	make_bm(16);
	bm_prefetch(bm_, blocks, 2);
	EXPECT_EQ(0u, v.checks);
	bm_block *r = rlock(10, &v.v);
	EXPECT_EQ(1u, v.checks);
	bm_unlock(r);
}

TEST_P(bm_test, prefetch_does_not_evict_locked_blocks)
{
	vector<bm_block *> held;
	vector<uint64_t> blocks;

	make_bm(16);
	for (uint64_t b = 0; b < 12; b++)
		held.push_back(rlock(b));
	for (uint64_t b = 50; b < 80; b++)
		blocks.push_back(b);
	bm_prefetch(bm_, blocks.data(), (unsigned)blocks.size());
	for (uint64_t b = 0; b < 12; b++) {
		EXPECT_TRUE(has_pattern(bm_block_data(held[b]), b));
		bm_unlock(held[b]);
	}
}

//----------------------------------------------------------------
// Validation

TEST_P(bm_test, validator_runs_once_while_cached)
{
	test_validator v;

	make_bm(16);
	for (int i = 0; i < 3; i++) {
		bm_block *r = rlock(6, &v.v);

		bm_unlock(r);
	}
	EXPECT_EQ(1u, v.checks);
	// no validator: no check, the block stays validated
	bm_unlock(rlock(6));
	bm_unlock(rlock(6, &v.v));
	EXPECT_EQ(1u, v.checks);
}

TEST_P(bm_test, another_validator_checks_again)
{
	test_validator a, b;

	make_bm(16);
	bm_unlock(rlock(6, &a.v));
	bm_unlock(rlock(6, &b.v));
	EXPECT_EQ(1u, a.checks);
	EXPECT_EQ(1u, b.checks);
	bm_unlock(rlock(6, &a.v));
	EXPECT_EQ(2u, a.checks);
}

TEST_P(bm_test, revalidated_after_eviction)
{
	test_validator v;

	make_bm(16);
	bm_unlock(rlock(6, &v.v));
	for (uint64_t b = 40; b < 60; b++)
		touch(b);
	bm_unlock(rlock(6, &v.v));
	EXPECT_EQ(2u, v.checks);
}

TEST_P(bm_test, validator_failure_returns_its_error_and_is_checked_again)
{
	test_validator v;
	bm_block *blk = nullptr;
	pd_err err{};

	v.fail_code = -EILSEQ;
	make_bm(16);
	EXPECT_EQ(-EILSEQ, bm_read_lock(bm_, 4, &v.v, &blk, &err));
	EXPECT_EQ(-EILSEQ, err.code);
	EXPECT_STREQ("test validator rejects block 4", err.msg);
	EXPECT_EQ(1u, v.checks);

	// a later lock with the same validator checks again (from the cache)
	pd_err err2{};
	EXPECT_EQ(-EILSEQ, bm_read_lock(bm_, 4, &v.v, &blk, &err2));
	EXPECT_STREQ("test validator rejects block 4", err2.msg);
	EXPECT_EQ(2u, v.checks);
	EXPECT_EQ(1u, stats().reads);

	// the block is fine once the validator is
	v.fail_code = 0;
	blk = rlock(4, &v.v);
	ASSERT_NE(nullptr, blk);
	EXPECT_EQ(3u, v.checks);
	bm_unlock(blk);

	// other codes pass through unchanged
	test_validator w;
	w.fail_code = -ENOTBLK;
	EXPECT_EQ(-ENOTBLK, bm_read_lock(bm_, 5, &w.v, &blk, &err));
	EXPECT_EQ(-ENOTBLK, bm_write_lock(bm_, 5, &w.v, &blk, &err));
	EXPECT_EQ(2u, w.checks);
}

TEST_P(bm_test, failed_write_lock_leaves_nothing_dirty)
{
	test_validator v;
	bm_block *blk = nullptr;
	pd_err err{};

	v.fail_code = -EILSEQ;
	make_bm(16);
	EXPECT_EQ(-EILSEQ, bm_write_lock(bm_, 8, &v.v, &blk, &err));
	ASSERT_EQ(0, bm_flush(bm_, &err));
	EXPECT_EQ(0u, stats().writes);
	EXPECT_EQ(0u, v.prepares);
	// and the block is not left write-locked
	blk = rlock(8);
	ASSERT_NE(nullptr, blk);
	bm_unlock(blk);
}

TEST_P(bm_test, failed_validation_of_a_locked_block_keeps_it_locked)
{
	/*
	 * KNOWN BUG (persistent-data/block-manager.c, lock(), the branch
	 * "r = v->check(...); if (r) { e->validated = NULL;
	 * lru_add_tail(bm, e); return r; }"): when the block is already
	 * read-locked (a cache hit with read_locks > 0) and the new lock's
	 * validator fails, the entry is put on the LRU list although it is
	 * still locked; the holder's bm_unlock() then adds it a second time
	 * (lru_add_tail does not check), which makes the list point at the
	 * entry from itself.  Afterwards the cache hands out the buffer of a
	 * locked block for another block: below, with 16 blocks locked in a
	 * 16-block cache, locking a 17th must fail with -ENOMEM, but it
	 * succeeds and overwrites the locked block 16's buffer with block
	 * 17.  Realistic trigger: sm_disk_load holds the metadata index block
	 * read-locked while it reads the bitmaps; a corrupt index entry that
	 * points at the index block itself fails sm_bitmap_validator on that
	 * locked block.  Fix: only lru_add_tail when the entry is unlocked
	 * (!e->read_locks && !e->write_locked).
	 */
	test_validator bad;
	bm_block *blk = nullptr, *again = nullptr;
	pd_err err{};

	bad.fail_code = -EILSEQ;
	make_bm(16);
	blk = rlock(0);
	ASSERT_NE(nullptr, blk);
	EXPECT_EQ(-EILSEQ, bm_read_lock(bm_, 0, &bad.v, &again, &err));
	EXPECT_TRUE(has_pattern(bm_block_data(blk), 0));
	bm_unlock(blk);

	// Exit status: 0 fine, 1 a 17th lock was granted, 2 a locked
	// block's buffer was reused, 3 a lock failed, >= 128 crashed.
	int status = in_child([&] {
		vector<bm_block *> held;
		pd_err e{};

		for (uint64_t b = 1; b <= 16; b++) {
			bm_block *h = nullptr;

			if (bm_read_lock(bm_, b, nullptr, &h, &e))
				return 3;
			held.push_back(h);
		}
		bm_block *extra = nullptr;
		if (bm_read_lock(bm_, 17, nullptr, &extra, &e) != -ENOMEM)
			return 1;
		for (uint64_t b = 1; b <= 16; b++)
			if (!has_pattern(bm_block_data(held[b - 1]), b))
				return 2;
		return 0;
	});
	EXPECT_EQ(0, status) << "0 = cache sane; 1 = a 17th block was granted in a full "
				"16-block cache, 2 = a locked block's buffer was reused, "
				"3 = a lock failed, >= 128 = killed by signal (status - 128)";
}

TEST_P(bm_test, failed_validation_of_a_locked_block_keeps_the_lru_sane)
{
	// KNOWN BUG: same as above, observed through eviction order only.
	test_validator bad;
	bm_block *blk = nullptr, *again = nullptr;
	pd_err err{};

	bad.fail_code = -EILSEQ;
	make_bm(16);
	blk = rlock(0);
	ASSERT_NE(nullptr, blk);
	EXPECT_EQ(-EILSEQ, bm_read_lock(bm_, 0, &bad.v, &again, &err));
	bm_unlock(blk);
	// 0 is cached; 15 more fill the cache; the next 16 evict everything;
	// then every one of 20..35 must still be cached.  Exit status: 0
	// fine, 1 re-reads, >= 128 crashed.
	int status = in_child([&] {
		pd_err e{};

		for (uint64_t b = 1; b < 16; b++) {
			bm_block *h = nullptr;

			if (bm_read_lock(bm_, b, nullptr, &h, &e))
				return 3;
			bm_unlock(h);
		}
		for (uint64_t b = 20; b < 36; b++) {
			bm_block *h = nullptr;

			if (bm_read_lock(bm_, b, nullptr, &h, &e))
				return 3;
			bm_unlock(h);
		}
		bm_stats before, after;
		bm_get_stats(bm_, &before);
		for (uint64_t b = 20; b < 36; b++) {
			bm_block *h = nullptr;

			if (bm_read_lock(bm_, b, nullptr, &h, &e))
				return 3;
			bm_unlock(h);
		}
		bm_get_stats(bm_, &after);
		return after.reads == before.reads && after.hits == before.hits + 16 ? 0 : 1;
	});
	EXPECT_EQ(0, status) << "0 = LRU sane; 1 = recently used blocks were evicted, "
				"3 = a lock failed, >= 128 = killed by signal (status - 128)";
}

INSTANTIATE_TEST_SUITE_P(engines, bm_test,
			 ::testing::Values(IO_ENGINE_SYNC, IO_ENGINE_ASYNC),
			 [](const ::testing::TestParamInfo<io_engine_kind> &i) {
				 return string(i.param == IO_ENGINE_SYNC ? "sync" : "async");
			 });

}
