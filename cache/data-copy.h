/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef CACHE_DATA_COPY_H
#define CACHE_DATA_COPY_H

/*
 * Copying data blocks between two devices, asynchronously: each copy is
 * a read of one block from the source then a write of it to the
 * destination, with up to `depth` copies in flight (io_uring; without it,
 * one synchronous copy at a time).  Memory: depth block buffers.
 *
 * data_copier_copy() queues a copy and may first wait for earlier ones
 * to finish to free a buffer; each finished copy is reported to the
 * done() callback with its tag and result (0, or a negative errno: a
 * failed or short read or write).  data_copier_drain() waits for all.
 * Callbacks run inside copy() and drain(); they may queue more copies.
 */

#include "persistent-data/error.h"

#include <stdint.h>

struct data_copier;

typedef void (*data_copy_done_fn)(void *ctx, uint64_t tag, int result);

int data_copier_create(int src_fd, uint64_t src_offset, int dst_fd, uint64_t dst_offset,
		       uint32_t block_bytes, unsigned depth, data_copy_done_fn done, void *ctx,
		       struct data_copier **out, struct pd_err *err);
/* Copies source block src_block to destination block dst_block. */
int data_copier_copy(struct data_copier *c, uint64_t src_block, uint64_t dst_block,
		     uint64_t tag);
int data_copier_drain(struct data_copier *c);
/* "io_uring" or "sync" */
const char *data_copier_kind(const struct data_copier *c);
void data_copier_destroy(struct data_copier *c);	/* drains first; accepts NULL */

#endif
