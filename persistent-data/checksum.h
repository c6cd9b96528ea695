/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_CHECKSUM_H
#define PD_CHECKSUM_H

/*
 * Block checksums (format doc section 2): CRC-32C of bytes 4..4095 with
 * the register initialised to ~0 and no final inversion, XORed with a
 * constant per block type, stored little-endian at offset 0.
 */

#include <stdint.h>

#define CSUM_XOR_SUPERBLOCK	160774u
#define CSUM_XOR_BTREE_NODE	121107u
#define CSUM_XOR_SM_BITMAP	240779u
#define CSUM_XOR_SM_INDEX	160478u

/* The checksum a 4096-byte block of the given type should carry. */
uint32_t block_csum(const void *block, uint32_t xor_const);

/* The checksum stored at offset 0. */
uint32_t block_stored_csum(const void *block);

/* Computes and stores the checksum. */
void block_set_csum(void *block, uint32_t xor_const);

/*
 * Which block type's constant makes the stored checksum match, or 0 if
 * none does: tells "not a btree node" from "checksum error".
 */
uint32_t block_csum_type(const void *block);

#endif
