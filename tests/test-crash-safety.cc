/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Crash safety of pool transactions (format doc section 9): a workload is
 * run once to learn its writes and the state after each commit, then
 * again for EVERY cut point N (0 .. its number of block writes) through
 * the fault engine, which lets the first N writes reach the file and
 * loses the rest.  After each run the file is opened with the normal
 * engine and must hold exactly the state of the last commit whose
 * superblock write landed (old-or-new, never a mixture), and thin_check
 * must find nothing wrong with it.
 *
 * Variants: silent drop (the process goes on, as after a power cut it
 * does not see), -EIO (the error path: the failure must be reported), a
 * torn write (only the first 512 bytes of the cut write land; a torn
 * superblock is the new one), a reordering cache (at the cut, writes
 * since the last flush are lost except the newest), formatting fresh
 * metadata, a further transaction on whatever a crash left, and a
 * second session (the pool closed and reopened between commits).  Then
 * the same for merge_in_pool + pool_commit, merge and rebase.
 *
 * Regression guard: before 2b7626d the disk space maps' allocator
 * (find_free() in persistent-data/space-map-persistent.c) could return
 * the first entry of the next bitmap word without looking at its counts,
 * so a reopened pool handed out data blocks in use and metadata blocks
 * the committed state still used, overwriting them before its superblock
 * write.  a_crashed_pool_takes_a_further_transaction,
 * reopened_space_maps_hand_out_only_free_blocks and
 * every_cut_of_a_second_session_leaves_old_or_new fail on that code.
 *
 * The consistency check is the built thin_check ($THINP_BUILD_DIR, else
 * /tmp/build), run as a separate process: its exit status must be 0.
 */
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <spawn.h>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern "C" {
#include "merge/merge.h"
#include "persistent-data/count-map.h"
#include "persistent-data/btree-write.h"
#include "persistent-data/endian.h"
#include "persistent-data/io-engine-fault.h"
#include "persistent-data/io-engine.h"
#include "persistent-data/space-map.h"
#include "persistent-data/transaction-manager.h"
#include "thin-provisioning/dumper.h"
#include "thin-provisioning/metadata.h"
#include "thin-provisioning/pool.h"
#include "thin-provisioning/thin-disk.h"
}

extern char **environ;

using namespace std;

namespace {

constexpr uint64_t file_blocks = 4096;		/* 16 MiB of metadata */
constexpr uint64_t nr_data_blocks = 1u << 15;
constexpr uint32_t data_block_size = 128;
constexpr unsigned small_cache = 64;		/* evictions write back early */

//----------------------------------------------------------------
// Files, thin_check

string temp_dir()
{
	const char *t = getenv("TMPDIR");
	struct stat st;

	if (t && *t)
		return t;
	/* fdatasync is free on tmpfs: thousands of runs stay fast */
	if (!stat("/dev/shm", &st) && S_ISDIR(st.st_mode) && !access("/dev/shm", W_OK))
		return "/dev/shm";
	return "/tmp";
}

struct temp_file {
	string path;

	temp_file()
	{
		path = temp_dir() + "/thinp-crash-XXXXXX";
		int fd = mkstemp(path.data());

		if (fd < 0)
			throw runtime_error("mkstemp: " + string(strerror(errno)));
		close(fd);
	}
	~temp_file() { unlink(path.c_str()); }
	temp_file(const temp_file &) = delete;
	temp_file &operator=(const temp_file &) = delete;
};

/* The blocks of a file that are not all zero: a cheap snapshot of it. */
struct image {
	vector<pair<uint64_t, vector<uint8_t>>> blocks;

	static image capture(const string &path)
	{
		image im;
		vector<uint8_t> buf(MD_BLOCK_SIZE), zero(MD_BLOCK_SIZE, 0);
		int fd = open(path.c_str(), O_RDONLY);

		if (fd < 0)
			throw runtime_error("open " + path);
		for (uint64_t b = 0; b < file_blocks; b++) {
			ssize_t k = pread(fd, buf.data(), MD_BLOCK_SIZE, (off_t)(b * MD_BLOCK_SIZE));

			if (k != (ssize_t)MD_BLOCK_SIZE) {
				close(fd);
				throw runtime_error("short read of " + path);
			}
			if (buf != zero)
				im.blocks.emplace_back(b, buf);
		}
		close(fd);
		return im;
	}

	void restore(const string &path) const
	{
		int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
		bool ok = fd >= 0 && ftruncate(fd, (off_t)(file_blocks * MD_BLOCK_SIZE)) == 0;

		for (size_t i = 0; ok && i < blocks.size(); i++)
			ok = pwrite(fd, blocks[i].second.data(), MD_BLOCK_SIZE,
				    (off_t)(blocks[i].first * MD_BLOCK_SIZE)) == (ssize_t)MD_BLOCK_SIZE;
		if (fd >= 0)
			close(fd);
		if (!ok)
			throw runtime_error("cannot recreate " + path);
	}
};

string thin_check_path()
{
	const char *d = getenv("THINP_BUILD_DIR");

	return string(d && *d ? d : "/tmp/build") + "/thin_check";
}

/* Runs thin_check on path; its exit status, with its output in *out. */
int run_thin_check(const string &path, bool quiet, string *out)
{
	string exe = thin_check_path();
	vector<string> args = { exe };
	vector<char *> argv;
	posix_spawn_file_actions_t fa;
	int pipefd[2], status;
	pid_t pid;

	if (quiet)
		args.push_back("-q");
	args.push_back(path);
	for (auto &a : args)
		argv.push_back(a.data());
	argv.push_back(nullptr);
	if (pipe(pipefd) < 0)
		throw runtime_error("pipe");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	posix_spawn_file_actions_addclose(&fa, pipefd[0]);
	posix_spawn_file_actions_addclose(&fa, pipefd[1]);
	int r = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv.data(), environ);

	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (r) {
		close(pipefd[0]);
		throw runtime_error("cannot run " + exe + ": " + strerror(r));
	}
	char buf[4096];
	ssize_t k;

	while ((k = read(pipefd[0], buf, sizeof(buf))) > 0 || (k < 0 && errno == EINTR))
		if (k > 0 && out)
			out->append(buf, (size_t)k);
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* thin_check's verdict: "" when clean, else its exit status and messages. */
string thin_check_problems(const string &path)
{
	string out;

	if (!run_thin_check(path, true, nullptr))
		return "";
	int st = run_thin_check(path, false, &out);

	return "thin_check exits " + to_string(st) + ":\n" + out;
}

//----------------------------------------------------------------
// Dumps: one line per mapping, so that any difference shows

struct rec_emitter {
	struct emitter e;		/* first: the ops get &e */
	string *out;
};

rec_emitter *rec(struct emitter *e)
{
	return reinterpret_cast<rec_emitter *>(e);
}

void appendf(string *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void appendf(string *s, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	s->append(buf);
}

void dump_superblock(string *s, uint32_t time, uint64_t trans_id, uint32_t flags,
		     uint32_t version, uint32_t dbs, uint64_t nr_data)
{
	appendf(s, "superblock time=%u trans_id=%" PRIu64 " flags=%u version=%u"
		   " data_block_size=%u nr_data_blocks=%" PRIu64 "\n",
		time, trans_id, flags, version, dbs, nr_data);
}

void dump_device(string *s, uint64_t id, uint64_t mapped, uint64_t trans, uint32_t ctime,
		 uint32_t stime)
{
	appendf(s, "device %" PRIu64 " mapped=%" PRIu64 " trans=%" PRIu64
		   " ctime=%u stime=%u\n", id, mapped, trans, ctime, stime);
}

void dump_mapping(string *s, uint64_t origin, uint64_t data, uint32_t time)
{
	appendf(s, "  %" PRIu64 " -> %" PRIu64 " @%u\n", origin, data, time);
}

int rec_begin_superblock(struct emitter *e, const struct emit_superblock *sb)
{
	dump_superblock(rec(e)->out, sb->time, sb->trans_id, sb->flags, sb->version,
			sb->data_block_size, sb->nr_data_blocks);
	return 0;
}

int rec_end_superblock(struct emitter *e)
{
	rec(e)->out->append("end\n");
	return 0;
}

int rec_begin_device(struct emitter *e, const struct emit_device *d)
{
	dump_device(rec(e)->out, d->dev_id, d->mapped_blocks, d->transaction_id,
		    d->creation_time, d->snap_time);
	return 0;
}

int rec_end_device(struct emitter *)
{
	return 0;
}

int rec_map_run(struct emitter *e, uint64_t origin, uint64_t data, uint64_t len,
		uint32_t time)
{
	for (uint64_t i = 0; i < len; i++)
		dump_mapping(rec(e)->out, origin + i, data + i, time);
	return 0;
}

void rec_destroy(struct emitter *)
{
}

const struct emitter_ops rec_ops = {
	rec_begin_superblock, rec_end_superblock, rec_begin_device, rec_end_device,
	rec_map_run, rec_destroy, nullptr, nullptr, nullptr,
};

/* The state of the metadata in path as a dump; false (and *err) if unreadable. */
bool dump_file(const string &path, string *dump, string *err)
{
	struct thin_open_opts o = {};
	struct thin_metadata *md = nullptr;
	struct thin_emit_opts eo = {};
	struct pd_err e = {};
	rec_emitter re = { { &rec_ops }, dump };

	o.engine = IO_ENGINE_SYNC;
	o.io_flags = IO_OPEN_NO_DIRECT;
	dump->clear();
	int r = thin_metadata_open(path.c_str(), &o, &md, &e);

	if (!r)
		r = thin_emit_metadata(md, &eo, &re.e, &e);
	thin_metadata_close(md);
	if (r)
		*err = string("cannot read the metadata: ") + e.msg + " (" + strerror(-r) + ")";
	return !r;
}

//----------------------------------------------------------------
// A model of the pool's contents, dumped in the same format

struct dev_model {
	struct thin_device d = {};
	map<uint64_t, uint64_t> maps;	/* origin -> block_time */
};

struct model {
	uint32_t time = 0;
	uint64_t trans_id = 0;
	map<uint64_t, dev_model> devs;

	string dump() const
	{
		string s;

		dump_superblock(&s, time, trans_id, 0, THIN_SB_VERSION, data_block_size,
				nr_data_blocks);
		for (auto &[id, dm] : devs) {
			dump_device(&s, id, dm.d.mapped_blocks, dm.d.transaction_id,
				    dm.d.creation_time, dm.d.snapshotted_time);
			for (auto &[k, bt] : dm.maps)
				dump_mapping(&s, k, block_time_block(bt), block_time_time(bt));
		}
		s.append("end\n");
		return s;
	}
};

//----------------------------------------------------------------
// A logging engine: where each write goes, and where the flushes are

struct log_engine {
	struct io_engine e;		/* first: the ops get &e */
	struct io_engine *inner;
	vector<uint64_t> writes;	/* block of each write, in order */
	vector<size_t> flushes;		/* writes done before each flush */
};

log_engine *lg(struct io_engine *e)
{
	return reinterpret_cast<log_engine *>(e);
}

int log_read_many(struct io_engine *e, struct io_req *r, unsigned n)
{
	return io_read_many(lg(e)->inner, r, n);
}

int log_write_many(struct io_engine *e, struct io_req *r, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		lg(e)->writes.push_back(r[i].block);
	return io_write_many(lg(e)->inner, r, n);
}

int log_flush(struct io_engine *e)
{
	lg(e)->flushes.push_back(lg(e)->writes.size());
	return io_flush(lg(e)->inner);
}

void log_destroy(struct io_engine *)
{
}

const struct io_engine_ops log_ops = { log_read_many, log_write_many, log_flush, log_destroy };

//----------------------------------------------------------------
// Engines and pools

struct engine_deleter {
	void operator()(io_engine *e) const { io_engine_destroy(e); }
};
using engine_ptr = unique_ptr<io_engine, engine_deleter>;

struct pool_deleter {
	void operator()(pool *p) const { pool_destroy(p); }
};
using pool_ptr = unique_ptr<pool, pool_deleter>;

engine_ptr open_engine(const string &path)
{
	struct io_engine *e = nullptr;
	struct pd_err err = {};

	if (io_engine_open(path.c_str(), IO_ENGINE_SYNC, IO_OPEN_WRITE | IO_OPEN_NO_DIRECT,
			   &e, &err))
		throw runtime_error("cannot open " + path + ": " + err.msg);
	return engine_ptr(e);
}

/* A fault engine over a fresh sync engine on path, which it owns. */
engine_ptr open_fault_engine(const string &path, uint64_t limit, unsigned flags)
{
	engine_ptr inner = open_engine(path);
	struct io_engine *f = nullptr;

	if (io_engine_fault_create(inner.get(), limit, &f))
		throw runtime_error("io_engine_fault_create");
	inner.release();
	if (io_engine_fault_set_flags(f, flags | IO_FAULT_OWN_INNER)) {
		io_engine_destroy(f);
		throw runtime_error("io_engine_fault_set_flags");
	}
	return engine_ptr(f);
}

io_fault_stats fault_stats(io_engine *e)
{
	io_fault_stats st = {};

	io_engine_fault_get_stats(e, &st);
	return st;
}

/* Fresh metadata, committed: trans_id 0, no devices. */
void format_pool(const string &path)
{
	image().restore(path);		/* 16 MiB of zeros */
	engine_ptr io = open_engine(path);
	struct pool_create_opts o = {};
	struct pool *p = nullptr;
	struct pd_err err = {};

	o.nr_data_blocks = nr_data_blocks;
	o.data_block_size = data_block_size;
	if (pool_create(io.get(), &o, 0, &p, &err))
		throw runtime_error(string("pool_create: ") + err.msg);
	pool_ptr pp(p);
	if (pool_commit(p, &err))
		throw runtime_error(string("pool_commit: ") + err.msg);
}

//----------------------------------------------------------------
// The workload: device operations on a pool, mirrored in a model

struct workload {
	pool *p;
	model m;
	mt19937_64 rng{ 20260101 };
	struct pd_err err = {};

	explicit workload(pool *p_) : p(p_) {}

	/* a new data block with its reference, as a mapping value */
	int new_mapping(uint64_t *bt)
	{
		uint64_t b;
		int r = sm_new_block(p->data_sm, &b);

		if (r)
			return pd_err_set(&err, r, "data space map: no block");
		*bt = block_time_pack(b, m.time);
		return 0;
	}

	int set_details(uint64_t id)
	{
		dev_model &dm = m.devs.at(id);

		dm.d.dev_id = id;
		dm.d.mapped_blocks = dm.maps.size();
		return pool_set_details(p, &dm.d, &err);
	}

	/* a device from a sorted list of keys, with the bulk loader */
	int create(uint64_t id, const vector<uint64_t> &keys)
	{
		struct btree_builder *b = nullptr;
		dev_model dm;
		uint64_t root;
		int r;

		r = btree_builder_create(pool_bottom_info(p), &b, &err);
		for (size_t i = 0; !r && i < keys.size(); i++) {
			uint64_t bt = 0;
			uint8_t v[8];

			r = new_mapping(&bt);
			if (!r) {
				store_le64(v, bt);
				r = btree_builder_push(b, keys[i], v, &err);
				dm.maps[keys[i]] = bt;
			}
		}
		if (!r)
			r = btree_builder_finish(b, &root, &err);
		btree_builder_destroy(b);
		if (!r)
			r = pool_set_root(p, id, root, &err);
		if (r)
			return r;
		dm.d.transaction_id = m.trans_id;
		dm.d.creation_time = m.time;
		dm.d.snapshotted_time = m.time;
		m.devs[id] = dm;
		return set_details(id);
	}

	/*
	 * Top-down: touch the top level's path, change the bottom tree, store
	 * its new root.  inserts: new keys or overwrites (a fresh data block
	 * each); removes: keys the device maps.
	 */
	int modify(uint64_t id, const vector<uint64_t> &inserts, const vector<uint64_t> &removes)
	{
		struct thin_device d;
		dev_model &dm = m.devs.at(id);
		uint64_t root;
		int r;

		r = pool_touch_root(p, id, &err);
		if (!r)
			r = pool_get_device(p, id, &d, &err);
		if (r)
			return r;
		root = d.root;
		for (uint64_t k : inserts) {
			uint64_t bt = 0;
			uint8_t v[8];
			bool inserted;

			r = new_mapping(&bt);
			if (r)
				return r;
			store_le64(v, bt);
			r = btree_insert(pool_bottom_info(p), root, k, v, &root, &inserted, &err);
			if (r)
				return r;
			if (inserted != !dm.maps.count(k))
				return pd_err_set(&err, -EILSEQ, "insert of %" PRIu64
						  " into device %" PRIu64 ": inserted=%d, model disagrees",
						  k, id, inserted);
			dm.maps[k] = bt;
		}
		for (uint64_t k : removes) {
			r = btree_remove(pool_bottom_info(p), root, k, &root, &err);
			if (r)
				return r;
			dm.maps.erase(k);
		}
		r = pool_update_root(p, id, root, &err);
		return r ? r : set_details(id);
	}

	int snapshot(uint64_t origin, uint64_t snap)
	{
		struct thin_device d;
		int r;

		r = pool_get_device(p, origin, &d, &err);
		if (!r)
			r = tm_inc(p->tm, d.root);
		if (!r)
			r = pool_set_root(p, snap, d.root, &err);
		if (r)
			return r;
		dev_model s = m.devs.at(origin);

		s.d.transaction_id = m.trans_id;
		s.d.creation_time = m.time;
		s.d.snapshotted_time = m.time;
		m.devs[snap] = s;
		m.devs.at(origin).d.snapshotted_time = m.time;
		m.time++;		/* later writes to either break sharing */
		r = set_details(snap);
		return r ? r : set_details(origin);
	}

	int remove_device(uint64_t id)
	{
		m.devs.erase(id);
		return pool_delete_device(p, id, &err);
	}

	int commit()
	{
		m.trans_id++;
		p->sb.trans_id = m.trans_id;
		p->sb.time = m.time;
		return pool_commit(p, &err);
	}

	/* helpers to pick keys */
	vector<uint64_t> random_keys(size_t n, uint64_t lo, uint64_t hi)
	{
		vector<uint64_t> v;

		uniform_int_distribution<uint64_t> d(lo, hi - 1);
		for (size_t i = 0; i < n; i++)
			v.push_back(d(rng));
		return v;
	}

	/* n distinct keys the device maps now */
	vector<uint64_t> mapped_keys(uint64_t id, size_t n)
	{
		vector<uint64_t> all;

		for (auto &kv : m.devs.at(id).maps)
			all.push_back(kv.first);
		shuffle(all.begin(), all.end(), rng);
		all.resize(min(n, all.size()));
		return all;
	}
};

vector<uint64_t> key_range(uint64_t first, uint64_t n, uint64_t step = 1)
{
	vector<uint64_t> v;

	for (uint64_t i = 0; i < n; i++)
		v.push_back(first + i * step);
	return v;
}

/*
 * K transactions over devices, snapshots and deletions.  after_commit(k)
 * is called after commit k (1-based) succeeds and may stop the run by
 * returning false.  Returns 0 or the first error.
 */
int run_pool_workload(workload &w, const function<bool(unsigned)> &after_commit)
{
	int r;
	unsigned k = 0;

#define STEP(x) do { if ((r = (x))) return r; } while (0)
#define COMMIT() do { STEP(w.commit()); if (!after_commit(++k)) return 0; } while (0)

	/* 1: two devices from the bulk loader */
	STEP(w.create(1, key_range(0, 2500)));
	STEP(w.create(2, key_range(5000, 500, 3)));
	COMMIT();

	/* 2: inserts, overwrites and removals */
	STEP(w.modify(1, w.random_keys(300, 0, 6000), w.mapped_keys(1, 150)));
	STEP(w.modify(2, {}, w.mapped_keys(2, 120)));
	COMMIT();

	/* 3: a snapshot, then its origin diverges */
	STEP(w.snapshot(1, 3));
	STEP(w.modify(1, w.random_keys(80, 0, 3000), {}));
	COMMIT();

	/* 4: both sides change; a device goes */
	STEP(w.modify(3, w.random_keys(200, 0, 4000), w.mapped_keys(3, 200)));
	STEP(w.modify(1, {}, w.mapped_keys(1, 200)));
	STEP(w.remove_device(2));
	COMMIT();

	/* 5: a new device and two snapshots */
	{
		vector<uint64_t> keys = w.random_keys(1200, 10000, 40000);

		sort(keys.begin(), keys.end());
		keys.erase(unique(keys.begin(), keys.end()), keys.end());
		STEP(w.create(4, keys));
	}
	STEP(w.snapshot(4, 5));
	STEP(w.snapshot(3, 6));
	COMMIT();

	/* 6: the first origin goes (shared nodes stay); many removals merge nodes */
	STEP(w.remove_device(1));
	STEP(w.modify(6, {}, w.mapped_keys(6, 600)));
	STEP(w.modify(5, w.random_keys(400, 10000, 40000), {}));
	COMMIT();

	/* 7: more deletions and overwrites */
	STEP(w.remove_device(4));
	STEP(w.modify(3, w.mapped_keys(3, 100), {}));
	STEP(w.modify(5, {}, w.mapped_keys(5, 200)));
	COMMIT();

	/* 8: down to one device */
	STEP(w.remove_device(3));
	STEP(w.remove_device(5));
	STEP(w.modify(6, w.random_keys(30, 0, 100), {}));
	COMMIT();

#undef COMMIT
#undef STEP
	return 0;
}

//----------------------------------------------------------------
// The reference run and the per-N runs

struct reference {
	image base;			/* the file before the workload */
	vector<string> states;		/* [0] before, [k] after commit k */
	vector<uint64_t> sb_write;	/* [k] index of commit k's superblock write */
	vector<uint64_t> writes;	/* block of each write */
	vector<size_t> flushes;		/* writes before each flush */
	uint64_t total_writes = 0;

	/* the commit whose state must be on disk when only n writes landed */
	unsigned expected(uint64_t n) const
	{
		unsigned k = 0;

		while (k + 1 < sb_write.size() && sb_write[k + 1] < n)
			k++;
		return k;
	}

	/* which state a dump is, or -1 */
	int which(const string &dump) const
	{
		for (size_t k = 0; k < states.size(); k++)
			if (states[k] == dump)
				return (int)k;
		return -1;
	}

	/* "write #i (block b, commit k, after flush f)" */
	string describe_write(uint64_t i) const
	{
		if (i >= writes.size())
			return "no write (the run completed)";
		unsigned k = 1;

		while (k < sb_write.size() && sb_write[k] < i)
			k++;
		size_t f = (size_t)(upper_bound(flushes.begin(), flushes.end(), (size_t)i) -
				    flushes.begin());
		string s = "write #" + to_string(i) + " (block " + to_string(writes[i]) +
			   ", during commit " + to_string(k) + ", after " + to_string(f) +
			   " flushes";

		if (k < sb_write.size() && sb_write[k] == i)
			s += ", the superblock write";
		return s + ")";
	}
};

/* Runs a workload function on path through a logging engine, recording states. */
reference record(const string &path, const function<int(pool *, const function<bool(unsigned)> &, string *)> &run)
{
	reference ref;

	ref.base = image::capture(path);
	ref.states.push_back("");
	ref.sb_write.push_back(0);
	{
		string err;

		if (!dump_file(path, &ref.states[0], &err))
			throw runtime_error("the starting state is unreadable: " + err);
	}

	engine_ptr inner = open_engine(path);
	log_engine le;

	le.e = *inner;
	le.e.ops = &log_ops;
	le.e.name = "log";
	le.inner = inner.get();

	struct pool *p = nullptr;
	struct pd_err err = {};

	if (pool_open(&le.e, small_cache, &p, &err))
		throw runtime_error(string("pool_open: ") + err.msg);
	pool_ptr pp(p);
	string msg;
	int r = run(p, [&](unsigned k) {
		string s, e;

		if (k != ref.states.size())
			throw runtime_error("commits out of order");
		ref.sb_write.push_back(le.writes.size() - 1);
		if (le.writes.back() != 0)
			throw runtime_error("the last write of a commit is not block 0");
		if (!dump_file(path, &s, &e))
			throw runtime_error("after commit " + to_string(k) + ": " + e);
		ref.states.push_back(s);
		return true;
	}, &msg);

	if (r)
		throw runtime_error("the reference run failed: " + msg);
	pp.reset();
	ref.writes = le.writes;
	ref.flushes = le.flushes;
	ref.total_writes = le.writes.size();
	return ref;
}

/* After a crash run: a further transaction must work and leave clean metadata. */
string recover_and_check(const string &path)
{
	engine_ptr io = open_engine(path);
	struct pool *p = nullptr;
	struct pd_err err = {};
	int r;

	r = pool_open(io.get(), small_cache, &p, &err);
	if (r)
		return string("pool_open after the crash: ") + err.msg;
	pool_ptr pp(p);
	workload w(p);

	w.m.trans_id = p->sb.trans_id;
	w.m.time = p->sb.time;
	r = w.create(900, key_range(0, 300, 7));
	if (!r)
		r = w.commit();
	if (r)
		return string("a transaction after the crash failed: ") + w.err.msg;
	pp.reset();
	io.reset();
	string problems = thin_check_problems(path);

	return problems.empty() ? "" : "after a further transaction: " + problems;
}

struct sweep_opts {
	unsigned flags = 0;		/* IO_FAULT_* */
	uint64_t first = 0, last = 0;	/* cut points, inclusive */
	uint64_t stride = 1;
	bool recover = false;		/* a further transaction after each */
	const char *what = "";
};

struct sweep_result {
	uint64_t runs = 0;
	uint64_t unreadable = 0;	/* thin_metadata_open or the walk failed */
	uint64_t wrong_state = 0;	/* readable, but not the expected commit's */
	uint64_t check_failed = 0;	/* thin_check exit status != 0 */
	uint64_t recover_failed = 0;	/* a further transaction went wrong */
	uint64_t error_hidden = 0;	/* IO_FAULT_FAIL: a failed write reported as success */
	vector<string> details;		/* the first few, in full */

	uint64_t failed() const
	{
		return unreadable + wrong_state + check_failed + recover_failed + error_hidden;
	}

	void note(const string &s)
	{
		if (details.size() < 4)
			details.push_back(s);
	}

	string summary(const char *what) const
	{
		string s = string(what) + ": " + to_string(failed()) + " failures over " +
			   to_string(runs) + " cut points (unreadable " + to_string(unreadable) +
			   ", wrong state " + to_string(wrong_state) + ", thin_check " +
			   to_string(check_failed) + ", further transaction " +
			   to_string(recover_failed) + ", I/O error not reported " +
			   to_string(error_hidden) + "); the first:\n";

		for (auto &d : details)
			s += "--- " + d + "\n";
		return s;
	}
};

/*
 * For every cut point n: restore the base image, run through a fault
 * engine that lets n writes land, then check the file.  Failures are
 * summed up and reported once, with the first few in full.
 */
sweep_result sweep(const string &path, const reference &ref, const sweep_opts &so,
		   const function<int(pool *, const function<bool(unsigned)> &, string *)> &run)
{
	sweep_result res;

	for (uint64_t n = so.first; n <= so.last; n += so.stride) {
		string where = string(so.what) + ": cut at n=" + to_string(n) + ", " +
			       ref.describe_write(n);

		ref.base.restore(path);
		res.runs++;
		{
			engine_ptr io = open_fault_engine(path, n, so.flags);
			struct pool *p = nullptr;
			struct pd_err err = {};
			int r;

			r = pool_open(io.get(), small_cache, &p, &err);
			if (!r) {
				pool_ptr pp(p);
				string msg;

				/* the transaction in which the cut falls completes, then stop */
				r = run(p, [&](unsigned) { return !fault_stats(io.get()).cut; }, &msg);
			}
			io_fault_stats st = fault_stats(io.get());

			if (n < ref.total_writes && !(so.flags & IO_FAULT_FAIL)) {
				/* silent drop: the run is the reference run up to the cut */
				EXPECT_TRUE(st.cut) << where;
				EXPECT_EQ(st.cut_block, ref.writes[n]) << where;
			}
			if ((so.flags & IO_FAULT_TEAR) && st.cut) {
				EXPECT_EQ(st.writes_torn, 1u) << where;
			}
			if ((so.flags & IO_FAULT_FAIL) && (st.writes_failed || st.flushes_done < st.flushes_seen) && !r) {
				res.error_hidden++;
				res.note(where + ": a write or flush failed with -EIO, yet the run succeeded");
			}
		}

		unsigned want = ref.expected(n);
		string dump, err;

		/*
		 * A torn superblock write is the new superblock: everything
		 * that changes is in its first 364 bytes (format doc 9.2).
		 */
		if ((so.flags & IO_FAULT_TEAR) && n < ref.total_writes && ref.writes[n] == 0)
			want = ref.expected(n + 1);
		if (!dump_file(path, &dump, &err)) {
			res.unreadable++;
			res.note(where + ": " + err);
		} else if (dump != ref.states[want]) {
			int got = ref.which(dump);

			res.wrong_state++;
			res.note(where + ": expected the state after commit " + to_string(want) +
				 (got < 0 ? ", found a state that is no commit's (neither old nor new)"
					  : ", found the state after commit " + to_string(got)));
		}
		string problems = thin_check_problems(path);

		if (!problems.empty()) {
			res.check_failed++;
			res.note(where + ": " + problems);
		}
		if (so.recover && problems.empty()) {
			string rec = recover_and_check(path);

			if (!rec.empty()) {
				res.recover_failed++;
				res.note(where + ": " + rec);
			}
		}
	}
	EXPECT_EQ(res.failed(), 0u) << res.summary(so.what);
	return res;
}

//----------------------------------------------------------------
// The workloads as functions of a pool

int pool_workload(pool *p, const function<bool(unsigned)> &after, string *msg)
{
	workload w(p);
	int r = run_pool_workload(w, after);

	if (r)
		*msg = w.err.msg;
	return r;
}

/*
 * Two sessions: the first runs the pool workload's first two commits and
 * closes the pool; the second reopens it (allocation starts again from
 * the bottom of the space maps, among blocks in use) and goes on.
 */
struct session {
	model m;
	mt19937_64 rng;
};

session first_session(const string &path)
{
	format_pool(path);
	engine_ptr io = open_engine(path);
	struct pool *p = nullptr;
	struct pd_err err = {};

	if (pool_open(io.get(), small_cache, &p, &err))
		throw runtime_error(string("pool_open: ") + err.msg);
	pool_ptr pp(p);
	workload w(p);

	if (run_pool_workload(w, [](unsigned k) { return k < 2; }))
		throw runtime_error(string("the first session failed: ") + w.err.msg);
	return { w.m, w.rng };
}

int second_session(pool *p, const session &s, const function<bool(unsigned)> &after,
		   string *msg, vector<string> *model_states = nullptr)
{
	workload w(p);
	int r;
	unsigned k = 0;

	w.m = s.m;
	w.rng = s.rng;
#define STEP(x) do { if ((r = (x))) goto out; } while (0)
#define COMMIT() do { \
		STEP(w.commit()); \
		if (model_states) \
			model_states->push_back(w.m.dump()); \
		if (!after(++k)) \
			goto out; \
	} while (0)

	/*
	 * No data block is allocated here (removals, a snapshot, a deletion):
	 * only the metadata space map hands out blocks.
	 */
	STEP(w.modify(1, {}, w.mapped_keys(1, 400)));
	STEP(w.snapshot(2, 8));
	STEP(w.modify(8, {}, w.mapped_keys(8, 50)));
	COMMIT();

	STEP(w.remove_device(2));
	STEP(w.modify(1, {}, w.mapped_keys(1, 200)));
	COMMIT();
#undef COMMIT
#undef STEP
out:
	if (r)
		*msg = w.err.msg;
	return r;
}

/* The merge scenario's starting pool: O, S, an unrelated device, a snapshot of O. */
constexpr uint64_t dev_o = 10, dev_s = 11, dev_u = 12, dev_osnap = 13;

model build_merge_pool(const string &path)
{
	format_pool(path);
	engine_ptr io = open_engine(path);
	struct pool *p = nullptr;
	struct pd_err err = {};

	if (pool_open(io.get(), 0, &p, &err))
		throw runtime_error(string("pool_open: ") + err.msg);
	pool_ptr pp(p);
	workload w(p);
	int r;

	/* O: 3000 mappings over 0..3599 with gaps */
	{
		vector<uint64_t> keys;

		for (uint64_t k = 0; k < 3600; k++)
			if (k % 6 != 5)
				keys.push_back(k);
		r = w.create(dev_o, keys);
	}
	if (!r)
		r = w.create(dev_u, key_range(100, 500, 2));
	if (!r)
		r = w.commit();
	/* a snapshot of O, then O diverges a little */
	if (!r)
		r = w.snapshot(dev_o, dev_osnap);
	if (!r)
		r = w.modify(dev_o, key_range(1000, 40), {});
	/* S: 300 mappings, over O's blocks, O's gaps, and beyond O */
	if (!r) {
		set<uint64_t> keys;

		for (uint64_t k : w.random_keys(220, 0, 3600))
			keys.insert(k);
		for (uint64_t k : key_range(5000, 100, 5))
			keys.insert(k);
		r = w.create(dev_s, vector<uint64_t>(keys.begin(), keys.end()));
	}
	if (!r)
		r = w.commit();
	if (r)
		throw runtime_error(string("building the merge pool: ") + w.err.msg);
	return w.m;
}

/* What merging S into O must give (merge.h), from the model. */
string merged_dump(model m, bool rebase)
{
	dev_model o = m.devs.at(dev_o), s = m.devs.at(dev_s), mm = rebase ? s : o;

	mm.maps = o.maps;
	for (auto &kv : s.maps)
		mm.maps[kv.first] = kv.second;
	mm.d.mapped_blocks = mm.maps.size();
	mm.d.snapshotted_time = max(o.d.snapshotted_time, s.d.snapshotted_time);
	m.devs.erase(dev_o);
	m.devs.erase(dev_s);
	m.devs[rebase ? dev_s : dev_o] = mm;
	m.trans_id++;
	return m.dump();
}

function<int(pool *, const function<bool(unsigned)> &, string *)> merge_workload(bool rebase)
{
	return [rebase](pool *p, const function<bool(unsigned)> &after, string *msg) {
		struct merge_opts o = {};
		struct merge_stats st;
		struct pd_err err = {};
		int r;

		o.origin = dev_o;
		o.snapshot = dev_s;
		o.rebase = rebase;
		r = merge_in_pool(p, &o, &st, &err);
		if (!r) {
			p->sb.trans_id++;
			r = pool_commit(p, &err);
		}
		if (r) {
			*msg = err.msg;
			return r;
		}
		after(1);
		return 0;
	};
}

//----------------------------------------------------------------
// The fault engine itself

TEST(fault_engine, passes_n_writes_then_drops_silently)
{
	temp_file f;
	image blank;

	blank.restore(f.path);
	engine_ptr io = open_fault_engine(f.path, 2, 0);
	void *buf = io_alloc_block();
	ASSERT_TRUE(buf);
	unique_ptr<void, void (*)(void *)> hold(buf, free);

	for (uint64_t b = 1; b <= 4; b++) {
		memset(buf, (int)b, MD_BLOCK_SIZE);
		EXPECT_EQ(io_write_block(io.get(), b, buf), 0);
	}
	EXPECT_EQ(io_flush(io.get()), 0);
	io_fault_stats st = fault_stats(io.get());
	EXPECT_EQ(st.writes_seen, 4u);
	EXPECT_EQ(st.writes_done, 2u);
	EXPECT_EQ(st.writes_dropped, 2u);
	EXPECT_TRUE(st.cut);
	EXPECT_EQ(st.cut_block, 3u);
	EXPECT_EQ(st.flushes_seen, 1u);
	EXPECT_EQ(st.flushes_done, 0u);
	for (uint64_t b = 1; b <= 4; b++) {
		ASSERT_EQ(io_read_block(io.get(), b, buf), 0);
		EXPECT_EQ(((uint8_t *)buf)[100], b <= 2 ? b : 0) << "block " << b;
	}
}

TEST(fault_engine, fails_with_eio_after_the_limit_and_batches_straddle_it)
{
	temp_file f;
	image blank;

	blank.restore(f.path);
	engine_ptr io = open_fault_engine(f.path, 3, IO_FAULT_FAIL);
	vector<unique_ptr<void, void (*)(void *)>> bufs;
	io_req reqs[5];

	for (unsigned i = 0; i < 5; i++) {
		bufs.emplace_back(io_alloc_block(), free);
		memset(bufs[i].get(), 0x40 + (int)i, MD_BLOCK_SIZE);
		reqs[i] = { 10 + i, bufs[i].get(), 0, 0 };
	}
	reqs[1].block = file_blocks + 5;	/* refused, and not counted */
	EXPECT_EQ(io_write_many(io.get(), reqs, 5), -EINVAL);
	EXPECT_EQ(reqs[0].result, 0);
	EXPECT_EQ(reqs[1].result, -EINVAL);
	EXPECT_EQ(reqs[2].result, 0);
	EXPECT_EQ(reqs[3].result, 0);
	EXPECT_EQ(reqs[4].result, -EIO);
	EXPECT_EQ(io_flush(io.get()), -EIO);
	io_fault_stats st = fault_stats(io.get());
	EXPECT_EQ(st.writes_seen, 4u);
	EXPECT_EQ(st.writes_done, 3u);
	EXPECT_EQ(st.writes_failed, 1u);
	EXPECT_EQ(st.cut_block, 14u);
}

TEST(fault_engine, tears_the_cut_write_after_its_first_sector)
{
	temp_file f;
	image blank;

	blank.restore(f.path);
	engine_ptr io = open_fault_engine(f.path, 1, IO_FAULT_TEAR);
	unique_ptr<void, void (*)(void *)> buf(io_alloc_block(), free);
	uint8_t *b = (uint8_t *)buf.get();

	memset(b, 0x11, MD_BLOCK_SIZE);
	EXPECT_EQ(io_write_block(io.get(), 7, b), 0);	/* lands */
	memset(b, 0x22, MD_BLOCK_SIZE);
	EXPECT_EQ(io_write_block(io.get(), 7, b), 0);	/* torn */
	memset(b, 0x33, MD_BLOCK_SIZE);
	EXPECT_EQ(io_write_block(io.get(), 7, b), 0);	/* dropped */
	ASSERT_EQ(io_read_block(io.get(), 7, b), 0);
	EXPECT_EQ(b[0], 0x22);
	EXPECT_EQ(b[IO_FAULT_TEAR_BYTES - 1], 0x22);
	EXPECT_EQ(b[IO_FAULT_TEAR_BYTES], 0x11);
	EXPECT_EQ(b[MD_BLOCK_SIZE - 1], 0x11);
	EXPECT_EQ(fault_stats(io.get()).writes_torn, 1u);
}

TEST(fault_engine, reorder_loses_unflushed_writes_but_the_newest)
{
	temp_file f;
	image blank;

	blank.restore(f.path);
	engine_ptr io = open_fault_engine(f.path, 4, IO_FAULT_REORDER);
	unique_ptr<void, void (*)(void *)> buf(io_alloc_block(), free);
	uint8_t *b = (uint8_t *)buf.get();
	auto put = [&](uint64_t blk, int v) {
		memset(b, v, MD_BLOCK_SIZE);
		EXPECT_EQ(io_write_block(io.get(), blk, b), 0);
	};

	put(1, 1);
	EXPECT_EQ(io_flush(io.get()), 0);	/* block 1 is durable */
	put(2, 2);
	put(1, 3);
	put(3, 4);				/* newest that lands */
	put(4, 5);				/* the cut */
	auto get = [&](uint64_t blk) {
		EXPECT_EQ(io_read_block(io.get(), blk, b), 0);
		return b[0];
	};
	EXPECT_EQ(get(1), 1);
	EXPECT_EQ(get(2), 0);
	EXPECT_EQ(get(3), 4);
	EXPECT_EQ(get(4), 0);
	EXPECT_EQ(fault_stats(io.get()).writes_undone, 2u);
}

TEST(fault_engine, does_not_own_the_inner_engine_unless_told)
{
	temp_file f;
	image blank;

	blank.restore(f.path);
	engine_ptr inner = open_engine(f.path);
	struct io_engine *e = nullptr;

	ASSERT_EQ(io_engine_fault_create(inner.get(), UINT64_MAX, &e), 0);
	EXPECT_TRUE(io_engine_is_fault(e));
	EXPECT_FALSE(io_engine_is_fault(inner.get()));
	EXPECT_EQ(io_engine_fault_set_flags(e, 0x100), -EINVAL);
	EXPECT_EQ(e->nr_blocks, inner->nr_blocks);
	io_engine_destroy(e);
	/* still usable */
	unique_ptr<void, void (*)(void *)> buf(io_alloc_block(), free);
	EXPECT_EQ(io_read_block(inner.get(), 0, buf.get()), 0);
	EXPECT_EQ(io_engine_fault_create(nullptr, 0, &e), -EINVAL);
}

//----------------------------------------------------------------
// Crash safety

class crash_safety : public ::testing::Test {
protected:
	void SetUp() override
	{
		struct stat st;

		if (stat(thin_check_path().c_str(), &st))
			GTEST_SKIP() << thin_check_path() << " not built (set THINP_BUILD_DIR)";
	}
	temp_file f;
};

TEST_F(crash_safety, reference_workload_matches_its_model)
{
	format_pool(f.path);
	engine_ptr io = open_engine(f.path);
	struct pool *p = nullptr;
	struct pd_err err = {};

	ASSERT_EQ(pool_open(io.get(), small_cache, &p, &err), 0) << err.msg;
	pool_ptr pp(p);
	workload w(p);
	unsigned commits = 0;
	int r = run_pool_workload(w, [&](unsigned k) {
		string dump, e;

		commits = k;
		EXPECT_TRUE(dump_file(f.path, &dump, &e)) << e;
		EXPECT_EQ(dump, w.m.dump()) << "after commit " << k;
		EXPECT_EQ(thin_check_problems(f.path), "") << "after commit " << k;
		return true;
	});
	EXPECT_EQ(r, 0) << w.err.msg;
	EXPECT_EQ(commits, 8u);
}

TEST_F(crash_safety, every_cut_of_a_pool_workload_leaves_old_or_new)
{
	format_pool(f.path);
	reference ref = record(f.path, pool_workload);
	sweep_opts so;

	ASSERT_EQ(ref.states.size(), 9u);
	so.what = "pool workload, writes dropped";
	so.last = ref.total_writes;
	sweep_result res = sweep(f.path, ref, so, pool_workload);

	printf("[          ] pool workload: %" PRIu64 " writes, %zu flushes, %zu commits,"
	       " %" PRIu64 " cut points\n", ref.total_writes, ref.flushes.size(),
	       ref.states.size() - 1, res.runs);
}

TEST_F(crash_safety, pool_workload_with_failing_writes)
{
	format_pool(f.path);
	reference ref = record(f.path, pool_workload);
	sweep_opts so;

	so.flags = IO_FAULT_FAIL;
	so.what = "pool workload, writes fail with -EIO";
	so.last = ref.total_writes;
	sweep(f.path, ref, so, pool_workload);
}

TEST_F(crash_safety, pool_workload_with_a_reordering_cache)
{
	format_pool(f.path);
	reference ref = record(f.path, pool_workload);
	sweep_opts so;

	so.flags = IO_FAULT_REORDER;
	so.what = "pool workload, unflushed writes lost but the newest";
	so.last = ref.total_writes;
	sweep(f.path, ref, so, pool_workload);
}

TEST_F(crash_safety, pool_workload_with_torn_writes)
{
	format_pool(f.path);
	reference ref = record(f.path, pool_workload);

	/* the superblock write of every commit, torn after its first sector */
	for (size_t k = 1; k < ref.sb_write.size(); k++) {
		sweep_opts so;

		so.flags = IO_FAULT_TEAR;
		so.what = "pool workload, torn superblock write";
		so.first = so.last = ref.sb_write[k];
		sweep(f.path, ref, so, pool_workload);
	}
	/* and every other write */
	sweep_opts so;

	so.flags = IO_FAULT_TEAR;
	so.what = "pool workload, torn write";
	so.last = ref.total_writes;
	sweep(f.path, ref, so, pool_workload);
}

/*
 * After any cut, the pool must take a further transaction (a new device
 * of 300 mappings) and still pass thin_check: what a crash leaves behind
 * (blocks written but never committed) must not mislead the next writer.
 */
TEST_F(crash_safety, a_crashed_pool_takes_a_further_transaction)
{
	format_pool(f.path);
	reference ref = record(f.path, pool_workload);
	sweep_opts so;

	so.what = "pool workload, then a further transaction";
	so.last = ref.total_writes;
	so.recover = true;
	sweep(f.path, ref, so, pool_workload);
}

/*
 * What a_crashed_pool_takes_a_further_transaction runs into, pinned down
 * without a crash: a space map opened from disk must hand out only
 * blocks whose count is 0, each once.
 */
void check_allocations(space_map *sm, const char *what, unsigned nr)
{
	uint64_t n = sm_nr_blocks(sm);
	vector<uint32_t> before(n);
	set<uint64_t> given;
	unsigned bad = 0;
	string first;

	for (uint64_t b = 0; b < n; b++)
		ASSERT_EQ(sm_get_count(sm, b, &before[b]), 0) << what << " block " << b;
	for (unsigned i = 0; i < nr; i++) {
		uint64_t b;

		ASSERT_EQ(sm_new_block(sm, &b), 0) << what;
		ASSERT_LT(b, n);
		if (before[b] || !given.insert(b).second) {
			if (!bad++)
				first = "allocation #" + to_string(i) + " handed out block " +
					to_string(b) + ", whose count was " + to_string(before[b]);
		}
	}
	EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << nr
			   << " allocations handed out a block in use; the first: " << first;
}

TEST_F(crash_safety, reopened_space_maps_hand_out_only_free_blocks)
{
	for (unsigned stop : { 2u, 8u }) {
		{
			format_pool(f.path);
			engine_ptr io = open_engine(f.path);
			struct pool *p = nullptr;
			struct pd_err err = {};

			ASSERT_EQ(pool_open(io.get(), small_cache, &p, &err), 0) << err.msg;
			pool_ptr pp(p);
			string msg;

			ASSERT_EQ(pool_workload(p, [&](unsigned k) { return k < stop; }, &msg), 0) << msg;
		}
		engine_ptr io = open_engine(f.path);
		struct pool *p = nullptr;
		struct pd_err err = {};

		ASSERT_EQ(pool_open(io.get(), small_cache, &p, &err), 0) << err.msg;
		pool_ptr pp(p);
		string what = "after commit " + to_string(stop) + ", reopened: ";

		check_allocations(p->data_sm, (what + "data space map").c_str(), 300);
		check_allocations(p->md_sm, (what + "metadata space map").c_str(), 300);
	}
}

TEST_F(crash_safety, a_second_session_matches_its_model)
{
	session s = first_session(f.path);
	engine_ptr io = open_engine(f.path);
	struct pool *p = nullptr;
	struct pd_err err = {};
	vector<string> model_states;
	string msg;

	ASSERT_EQ(pool_open(io.get(), small_cache, &p, &err), 0) << err.msg;
	pool_ptr pp(p);
	int r = second_session(p, s, [&](unsigned k) {
		string dump, e;

		EXPECT_TRUE(dump_file(f.path, &dump, &e)) << e;
		EXPECT_EQ(dump, model_states.back()) << "after commit " << k;
		EXPECT_EQ(thin_check_problems(f.path), "") << "after commit " << k;
		return true;
	}, &msg, &model_states);
	EXPECT_EQ(r, 0) << msg;
	EXPECT_EQ(model_states.size(), 2u);
}

TEST_F(crash_safety, every_cut_of_a_second_session_leaves_old_or_new)
{
	session s = first_session(f.path);
	auto run = [&s](pool *p, const function<bool(unsigned)> &after, string *msg) {
		return second_session(p, s, after, msg);
	};
	reference ref = record(f.path, run);
	sweep_opts so;

	ASSERT_EQ(ref.states.size(), 3u);
	so.what = "second session, writes dropped";
	so.last = ref.total_writes;
	sweep_result res = sweep(f.path, ref, so, run);

	printf("[          ] second session: %" PRIu64 " writes, %zu flushes, %" PRIu64
	       " cut points\n", ref.total_writes, ref.flushes.size(), res.runs);
}

TEST_F(crash_safety, formatting_is_all_or_nothing)
{
	image blank;

	blank.restore(f.path);
	uint64_t total;
	string formatted, err;
	{
		engine_ptr io = open_fault_engine(f.path, UINT64_MAX, 0);

		{
			struct pool_create_opts o = {};
			struct pool *p = nullptr;
			struct pd_err e = {};

			o.nr_data_blocks = nr_data_blocks;
			o.data_block_size = data_block_size;
			ASSERT_EQ(pool_create(io.get(), &o, 0, &p, &e), 0) << e.msg;
			pool_ptr pp(p);
			ASSERT_EQ(pool_commit(p, &e), 0) << e.msg;
		}
		total = fault_stats(io.get()).writes_seen;
	}
	ASSERT_TRUE(dump_file(f.path, &formatted, &err)) << err;
	for (uint64_t n = 0; n <= total; n++) {
		blank.restore(f.path);
		{
			engine_ptr io = open_fault_engine(f.path, n, 0);
			struct pool_create_opts o = {};
			struct pool *p = nullptr;
			struct pd_err e = {};

			o.nr_data_blocks = nr_data_blocks;
			o.data_block_size = data_block_size;
			if (!pool_create(io.get(), &o, 0, &p, &e)) {
				pool_commit(p, &e);
				pool_destroy(p);
			}
		}
		string dump;

		if (n < total) {
			/* block 0 untouched: all zero, which asks for fresh metadata */
			image im = image::capture(f.path);

			for (auto &[b, data] : im.blocks)
				EXPECT_NE(b, 0u) << "n=" << n << ": block 0 written before the end";
			EXPECT_FALSE(dump_file(f.path, &dump, &err)) << "n=" << n;
		} else {
			EXPECT_TRUE(dump_file(f.path, &dump, &err)) << err;
			EXPECT_EQ(dump, formatted);
			EXPECT_EQ(thin_check_problems(f.path), "");
		}
	}
}

void merge_case(const string &path, bool rebase)
{
	model before = build_merge_pool(path);
	string old_dump, err;

	ASSERT_TRUE(dump_file(path, &old_dump, &err)) << err;
	ASSERT_EQ(old_dump, before.dump());
	ASSERT_EQ(thin_check_problems(path), "");

	auto run = merge_workload(rebase);
	reference ref = record(path, run);

	ASSERT_EQ(ref.states.size(), 2u);
	EXPECT_EQ(ref.states[1], merged_dump(before, rebase)) << "the merge itself is wrong";
	ASSERT_EQ(thin_check_problems(path), "");

	sweep_opts so;

	so.what = rebase ? "merge_in_pool (rebase), writes dropped" :
			   "merge_in_pool, writes dropped";
	so.last = ref.total_writes;
	sweep_result res = sweep(path, ref, so, run);

	printf("[          ] %s: %" PRIu64 " writes, %zu flushes, %" PRIu64 " cut points\n",
	       so.what, ref.total_writes, ref.flushes.size(), res.runs);

	so.flags = IO_FAULT_FAIL;
	so.what = rebase ? "merge_in_pool (rebase), writes fail with -EIO" :
			   "merge_in_pool, writes fail with -EIO";
	sweep(path, ref, so, run);

	so.flags = IO_FAULT_REORDER;
	so.what = rebase ? "merge_in_pool (rebase), unflushed writes lost but the newest" :
			   "merge_in_pool, unflushed writes lost but the newest";
	sweep(path, ref, so, run);

	so.flags = IO_FAULT_TEAR;
	so.what = rebase ? "merge_in_pool (rebase), torn writes" : "merge_in_pool, torn writes";
	sweep(path, ref, so, run);
}

TEST_F(crash_safety, every_cut_of_an_in_place_merge_leaves_old_or_merged)
{
	merge_case(f.path, false);
}

TEST_F(crash_safety, every_cut_of_an_in_place_rebase_leaves_old_or_merged)
{
	merge_case(f.path, true);
}

//----------------------------------------------------------------
// thin_check's leak repair (pool_lower_counts + pool_commit)

/*
 * Counts of the leaked blocks after a cut: all as leaked (1), all
 * repaired (0), or "mixed".
 */
string leak_state(const string &path, const vector<uint64_t> &md_leaks,
		  const vector<uint64_t> &data_leaks)
{
	engine_ptr io = open_engine(path);
	struct pool *p = nullptr;
	struct pd_err err = {};
	unsigned ones = 0, zeros = 0;

	if (pool_open(io.get(), 0, &p, &err))
		return string("unreadable: ") + err.msg;
	pool_ptr pp(p);
	for (int kind = 0; kind < 2; kind++)
		for (uint64_t b : kind ? data_leaks : md_leaks) {
			uint32_t c = 0;

			sm_get_count(kind ? p->data_sm : p->md_sm, b, &c);
			(c ? ones : zeros)++;
		}
	if (!zeros)
		return "leaked";
	if (!ones)
		return "repaired";
	return "mixed";
}

/* Lowers the leaked blocks' counts to 0 in one transaction on io. */
int repair_leaks(io_engine *io, const vector<uint64_t> &md_leaks,
		 const vector<uint64_t> &data_leaks, string *msg)
{
	struct pool *p = nullptr;
	struct pd_err err = {};
	struct count_map *exp_md = nullptr, *on_md = nullptr;
	struct count_map *exp_data = nullptr, *on_data = nullptr;
	uint64_t fixed = 0;
	int r = pool_open(io, small_cache, &p, &err);

	if (r) {
		*msg = err.msg;
		return r;
	}
	pool_ptr pp(p);
	/* expected: 0 everywhere; on disk: 1 on the leaked blocks only */
	r = cm_create(sm_nr_blocks(p->md_sm), &exp_md);
	if (!r)
		r = cm_create(sm_nr_blocks(p->md_sm), &on_md);
	if (!r)
		r = cm_create(sm_nr_blocks(p->data_sm), &exp_data);
	if (!r)
		r = cm_create(sm_nr_blocks(p->data_sm), &on_data);
	for (uint64_t b : md_leaks)
		if (!r)
			r = cm_set(on_md, b, 1);
	for (uint64_t b : data_leaks)
		if (!r)
			r = cm_set(on_data, b, 1);
	if (!r)
		r = pool_lower_counts(p, false, exp_data, on_data, &fixed, &err);
	if (!r)
		r = pool_lower_counts(p, true, exp_md, on_md, &fixed, &err);
	if (!r && fixed != md_leaks.size() + data_leaks.size())
		r = -EINVAL;
	if (!r)
		r = pool_commit(p, &err);
	if (r)
		*msg = err.msg;
	cm_destroy(exp_md);
	cm_destroy(on_md);
	cm_destroy(exp_data);
	cm_destroy(on_data);
	return r;
}

TEST_F(crash_safety, every_cut_of_a_leak_repair_leaves_leaked_or_repaired)
{
	vector<uint64_t> md_leaks, data_leaks;

	/* a pool with devices, then leaks: free blocks counted as used */
	{
		format_pool(f.path);
		engine_ptr io = open_engine(f.path);
		struct pool *p = nullptr;
		struct pd_err err = {};

		ASSERT_EQ(pool_open(io.get(), small_cache, &p, &err), 0) << err.msg;
		pool_ptr pp(p);
		string msg;

		ASSERT_EQ(pool_workload(p, [](unsigned k) { return k < 2; }, &msg), 0) << msg;
	}
	{
		engine_ptr io = open_engine(f.path);
		struct pool *p = nullptr;
		struct pd_err err = {};

		ASSERT_EQ(pool_open(io.get(), small_cache, &p, &err), 0) << err.msg;
		pool_ptr pp(p);
		/* spread over bitmaps: the repair shadows several */
		for (uint64_t b = 3000; b < file_blocks && md_leaks.size() < 4; b += 300) {
			uint32_t c = 1;

			sm_get_count(p->md_sm, b, &c);
			if (!c)
				md_leaks.push_back(b);
		}
		for (uint64_t b = 17; b < nr_data_blocks && data_leaks.size() < 6; b += 5000) {
			uint32_t c = 1;

			sm_get_count(p->data_sm, b, &c);
			if (!c)
				data_leaks.push_back(b);
		}
		ASSERT_EQ(md_leaks.size(), 4u);
		ASSERT_EQ(data_leaks.size(), 6u);
		for (uint64_t b : md_leaks)
			ASSERT_EQ(sm_set_count(p->md_sm, b, 1), 0);
		for (uint64_t b : data_leaks)
			ASSERT_EQ(sm_set_count(p->data_sm, b, 1), 0);
		ASSERT_EQ(pool_commit(p, &err), 0) << err.msg;
	}
	ASSERT_EQ(leak_state(f.path, md_leaks, data_leaks), "leaked");
	ASSERT_NE(thin_check_problems(f.path), "") << "thin_check must see the leaks";
	string before;
	string derr;

	ASSERT_TRUE(dump_file(f.path, &before, &derr)) << derr;
	image leaked = image::capture(f.path);

	/* the writes of a whole repair */
	uint64_t nr_writes;
	{
		engine_ptr io = open_fault_engine(f.path, UINT64_MAX, 0);
		string msg;

		ASSERT_EQ(repair_leaks(io.get(), md_leaks, data_leaks, &msg), 0) << msg;
		nr_writes = fault_stats(io.get()).writes_seen;
	}
	ASSERT_EQ(leak_state(f.path, md_leaks, data_leaks), "repaired");
	ASSERT_EQ(thin_check_problems(f.path), "");
	ASSERT_GT(nr_writes, 2u);

	unsigned nr_leaked = 0, nr_repaired = 0;

	for (uint64_t cut = 0; cut <= nr_writes; cut++) {
		for (unsigned flags : { 0u, (unsigned)IO_FAULT_TEAR }) {
			leaked.restore(f.path);
			{
				engine_ptr io = open_fault_engine(f.path, cut, flags);
				string msg;

				repair_leaks(io.get(), md_leaks, data_leaks, &msg);
			}
			string state = leak_state(f.path, md_leaks, data_leaks);
			string what = "cut " + to_string(cut) + "/" + to_string(nr_writes) +
				      (flags ? " (torn)" : "") + ": ";
			string after;

			ASSERT_TRUE(state == "leaked" || state == "repaired") << what << state;
			ASSERT_TRUE(dump_file(f.path, &after, &derr)) << what << derr;
			ASSERT_EQ(after, before) << what << "the trees changed";
			if (state == "repaired") {
				nr_repaired++;
				ASSERT_EQ(thin_check_problems(f.path), "") << what;
				continue;
			}
			nr_leaked++;
			/* what a crash left is repaired by a second run */
			{
				engine_ptr io = open_engine(f.path);
				string msg;

				ASSERT_EQ(repair_leaks(io.get(), md_leaks, data_leaks, &msg), 0)
					<< what << msg;
			}
			ASSERT_EQ(thin_check_problems(f.path), "") << what << "after a second run";
		}
	}
	EXPECT_GT(nr_leaked, 0u);
	EXPECT_GT(nr_repaired, 0u);
}

} // namespace
