/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "crc32c.h"

#include <string.h>

#define CRC32C_POLY 0x82F63B78u

static uint32_t table[8][256];
static int table_ready;

static void init_table(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1u)));
		table[0][i] = c;
	}
	for (unsigned i = 0; i < 256; i++)
		for (unsigned t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
	__atomic_store_n(&table_ready, 1, __ATOMIC_RELEASE);
}

uint32_t crc32c_table(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;

	if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE))
		init_table();

	while (len && ((uintptr_t)p & 7)) {
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
		len--;
	}
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		w = __builtin_bswap64(w);
#endif
		w ^= crc;
		crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^
		      table[5][(w >> 16) & 0xff] ^ table[4][(w >> 24) & 0xff] ^
		      table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
		      table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	return crc;
}

#if defined(__x86_64__)
/*
 * Three interleaved streams: the crc32 instruction has a latency of three
 * cycles but issues one per cycle, so one dependent chain runs at a third
 * of its speed.  The buffer is cut into three runs of STRIDE bytes; the
 * registers of the first two are then carried over the bytes after them,
 * which is linear: shifting a register over STRIDE zero bytes is a fixed
 * GF(2) matrix, applied a byte at a time from shift_tab.
 */
#define STRIDE 1360u			/* 3 * 1360 = 4080 of a 4092-byte block */

static uint32_t shift_tab[4][256];
static int shift_ready;

static void init_shift(void)
{
	static const uint8_t zeros[STRIDE];
	uint32_t basis[32];

	/* a register followed by STRIDE zero bytes, for each single bit */
	for (unsigned b = 0; b < 32; b++)
		basis[b] = crc32c_table(1u << b, zeros, STRIDE);
	for (unsigned t = 0; t < 4; t++)
		for (unsigned v = 0; v < 256; v++) {
			uint32_t r = 0;

			for (unsigned b = 0; b < 8; b++)
				if (v & (1u << b))
					r ^= basis[8 * t + b];
			shift_tab[t][v] = r;
		}
	__atomic_store_n(&shift_ready, 1, __ATOMIC_RELEASE);
}

static uint32_t shift(uint32_t c)
{
	return shift_tab[0][c & 0xff] ^ shift_tab[1][(c >> 8) & 0xff] ^
	       shift_tab[2][(c >> 16) & 0xff] ^ shift_tab[3][c >> 24];
}

__attribute__((target("sse4.2")))
uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t c = crc;

	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	if (len >= 3 * STRIDE && !__atomic_load_n(&shift_ready, __ATOMIC_ACQUIRE))
		init_shift();
	while (len >= 3 * STRIDE) {
		uint64_t c1 = 0, c2 = 0;

		for (size_t i = 0; i < STRIDE; i += 8) {
			uint64_t w0, w1, w2;

			memcpy(&w0, p + i, 8);
			memcpy(&w1, p + STRIDE + i, 8);
			memcpy(&w2, p + 2 * STRIDE + i, 8);
			c = __builtin_ia32_crc32di(c, w0);
			c1 = __builtin_ia32_crc32di(c1, w1);
			c2 = __builtin_ia32_crc32di(c2, w2);
		}
		c = shift(shift((uint32_t)c) ^ (uint32_t)c1) ^ (uint32_t)c2;
		p += 3 * STRIDE;
		len -= 3 * STRIDE;
	}
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}

bool crc32c_have_hw(void)
{
	return __builtin_cpu_supports("sse4.2");
}
#else
uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len)
{
	return crc32c_table(crc, data, len);
}

bool crc32c_have_hw(void)
{
	return false;
}
#endif

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
	static int hw = -1;

	if (hw < 0)
		hw = crc32c_have_hw();
	return hw ? crc32c_hw(crc, data, len) : crc32c_table(crc, data, len);
}
