/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef TESTS_THIN_MODEL_H
#define TESTS_THIN_MODEL_H
/*
 * A model of a thin pool for unit tests (devices, their details and
 * mappings, in std::map), written to a metadata file through the restore
 * emitter, and read back two ways that do not share the code under test:
 * a recording emitter (what a walker emitted) and a raw node reader
 * that decodes btree nodes from the file's bytes by the format doc's
 * layout (section 4: 32-byte header, keys, then values).
 */

extern "C" {
#include "persistent-data/endian.h"
#include "persistent-data/io-engine.h"
#include "thin-provisioning/emitter.h"
#include "thin-provisioning/metadata.h"
#include "thin-provisioning/restore.h"
}

#include "test-files.h"

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace thin_model {

using std::map;
using std::runtime_error;
using std::string;
using std::vector;

struct mapping {
	uint64_t data;
	uint32_t time;
	bool operator==(const mapping &o) const { return data == o.data && time == o.time; }
};

struct device {
	uint64_t transaction_id = 0;
	uint32_t creation_time = 0, snap_time = 0;
	map<uint64_t, mapping> maps;
	bool operator==(const device &o) const
	{
		return transaction_id == o.transaction_id && creation_time == o.creation_time &&
		       snap_time == o.snap_time && maps == o.maps;
	}
};

struct pool_model {
	uint64_t nr_data_blocks = 1u << 16;
	uint32_t data_block_size = 128;
	uint64_t trans_id = 7;
	uint32_t time = 9;
	map<uint64_t, device> devs;
};

/* n random mappings over origins [0, span), data blocks from a fresh pool. */
inline void random_mappings(device &d, std::mt19937_64 &rng, uint64_t n, uint64_t span,
			    uint64_t nr_data_blocks)
{
	while (d.maps.size() < n)
		d.maps[rng() % span] = mapping{ rng() % nr_data_blocks, uint32_t(rng() % 4) };
}

inline emit_superblock sb_of(const pool_model &m)
{
	emit_superblock sb{};

	sb.nr_data_blocks = m.nr_data_blocks;
	sb.data_block_size = m.data_block_size;
	sb.trans_id = m.trans_id;
	sb.time = m.time;
	sb.version = 2;
	return sb;
}

inline emit_device dev_of(uint64_t id, const device &d)
{
	emit_device e{};

	e.dev_id = id;
	e.mapped_blocks = d.maps.size();
	e.transaction_id = d.transaction_id;
	e.creation_time = d.creation_time;
	e.snap_time = d.snap_time;
	return e;
}

inline void check(int r, const pd_err &err, const char *what)
{
	if (r)
		throw runtime_error(string(what) + ": " + err.msg);
}

/* The device's mappings as emitter calls, in runs as thin_dump makes them. */
inline void emit_mappings(emitter *e, const device &d)
{
	emit_run run;

	emit_run_init(&run, e);
	for (auto &[k, v] : d.maps)
		if (emit_run_add(&run, k, v.data, v.time))
			throw runtime_error("map_run");
	if (emit_run_flush(&run))
		throw runtime_error("map_run");
}

/* A run of n mappings: origins and data blocks both consecutive. */
inline void add_run(device &d, uint64_t origin, uint64_t data, uint64_t n, uint32_t time)
{
	for (uint64_t i = 0; i < n; i++)
		d.maps[origin + i] = mapping{ data + i, time };
}

/*
 * A restore emitter writing to a zeroed metadata file of nr_blocks; io
 * owns the file's engine (destroy the emitter first); errors go to err.
 */
inline emitter *restore_to(const string &path, uint64_t nr_blocks, test_files::engine_ptr &io,
			   pd_err &err)
{
	io_engine *e_io = nullptr;
	emitter *e = nullptr;

	test_files::write_file(path, vector<uint8_t>(nr_blocks * MD_BLOCK_SIZE));
	check(io_engine_open(path.c_str(), IO_ENGINE_SYNC, IO_OPEN_WRITE | IO_OPEN_NO_DIRECT,
			     &e_io, &err), err, "open");
	io.reset(e_io);
	check(restore_emitter_create(e_io, nullptr, &err, &e), err, "restore emitter");
	return e;
}

/* A zeroed metadata file of nr_blocks, then m through the restore emitter. */
inline void write_pool(const string &path, const pool_model &m, uint64_t nr_blocks = 4096)
{
	test_files::engine_ptr owner;
	pd_err err{};
	emitter *e = restore_to(path, nr_blocks, owner, err);
	emit_superblock sb = sb_of(m);
	int r = e->ops->begin_superblock(e, &sb);
	for (auto it = m.devs.begin(); !r && it != m.devs.end(); ++it) {
		emit_device ed = dev_of(it->first, it->second);

		r = e->ops->begin_device(e, &ed);
		if (!r)
			emit_mappings(e, it->second);
		if (!r)
			r = e->ops->end_device(e);
	}
	if (!r)
		r = e->ops->end_superblock(e);
	emitter_destroy(e);
	check(r, err, "restore");
}

struct md_closer {
	void operator()(thin_metadata *md) const { thin_metadata_close(md); }
};
using md_ptr = std::unique_ptr<thin_metadata, md_closer>;

/* The metadata in path, opened read-only by the library's reader. */
inline md_ptr open_md(const string &path)
{
	thin_open_opts o{};
	thin_metadata *md = nullptr;
	pd_err err{};

	o.engine = IO_ENGINE_SYNC;
	check(thin_metadata_open(path.c_str(), &o, &md, &err), err, "thin_metadata_open");
	return md_ptr(md);
}

/*
 * An emitter that records what it is given into a pool_model (runs are
 * expanded).  Shared sections are not taken: a driver expands them.
 */
struct recording {
	pool_model m;
	device *cur = nullptr;
	bool ended = false;
	vector<uint64_t> order;		/* device ids as begun */
};

struct recorder {
	emitter e;
	recording *r;
};

inline recording *to_rec(emitter *e) { return reinterpret_cast<recorder *>(e)->r; }

extern "C" {
static int rec_begin_sb(emitter *e, const emit_superblock *sb)
{
	recording *r = to_rec(e);

	r->m.nr_data_blocks = sb->nr_data_blocks;
	r->m.data_block_size = sb->data_block_size;
	r->m.trans_id = sb->trans_id;
	r->m.time = sb->time;
	return 0;
}
static int rec_end_sb(emitter *e) { to_rec(e)->ended = true; return 0; }
static int rec_begin_dev(emitter *e, const emit_device *d)
{
	recording *r = to_rec(e);
	device &dv = r->m.devs[d->dev_id];

	dv.transaction_id = d->transaction_id;
	dv.creation_time = d->creation_time;
	dv.snap_time = d->snap_time;
	r->cur = &dv;
	r->order.push_back(d->dev_id);
	return 0;
}
static int rec_end_dev(emitter *e) { to_rec(e)->cur = nullptr; return 0; }
static int rec_map_run(emitter *e, uint64_t origin, uint64_t data, uint64_t len, uint32_t time)
{
	recording *r = to_rec(e);

	if (!r->cur)
		return -EINVAL;
	for (uint64_t i = 0; i < len; i++)
		r->cur->maps[origin + i] = mapping{ data + i, time };
	return 0;
}
static void rec_destroy(emitter *) {}
}

inline const emitter_ops recorder_ops = {
	rec_begin_sb, rec_end_sb, rec_begin_dev, rec_end_dev, rec_map_run, rec_destroy,
	nullptr, nullptr, nullptr,
};

inline emitter *recorder_init(recorder &r, recording &into)
{
	static_assert(std::is_standard_layout<recorder>::value, "emitter first");
	r.e.ops = &recorder_ops;
	r.r = &into;
	return &r.e;
}

/*----------------------------------------------------------------
 * Raw nodes, decoded from the file's bytes
 *--------------------------------------------------------------*/

struct raw_node {
	bool leaf = false;
	uint32_t value_size = 0;
	vector<uint64_t> keys;
	vector<vector<uint8_t>> values;
};

inline uint64_t le64_at(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

inline uint32_t le32_at(const uint8_t *p)
{
	return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

inline raw_node read_raw(const vector<uint8_t> &file, uint64_t b)
{
	const uint8_t *blk = file.data() + b * MD_BLOCK_SIZE;
	raw_node n;
	uint32_t flags = le32_at(blk + 4), nr = le32_at(blk + 16), max = le32_at(blk + 20);

	if ((b + 1) * MD_BLOCK_SIZE > file.size())
		throw runtime_error("node beyond the file");
	n.leaf = flags & 2;
	n.value_size = le32_at(blk + 24);
	for (uint32_t i = 0; i < nr; i++) {
		const uint8_t *v = blk + 32 + 8 * max + size_t(n.value_size) * i;

		n.keys.push_back(le64_at(blk + 32 + 8 * i));
		n.values.emplace_back(v, v + n.value_size);
	}
	return n;
}

/* Superblock fields by the format doc's offsets. */
inline uint64_t sb_mapping_root(const vector<uint8_t> &file) { return le64_at(file.data() + 320); }
inline uint64_t sb_details_root(const vector<uint8_t> &file) { return le64_at(file.data() + 328); }

} // namespace thin_model

#endif
