/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_ENDIAN_H
#define PD_ENDIAN_H

/*
 * Little-endian wrapper types for on-disk fields.  A le32 is a struct so
 * that assigning a CPU value to a disk field (or the reverse) does not
 * compile: every access goes through le32_to_cpu()/cpu_to_le32().
 * The structs are packed, so they may sit at any offset of a packed
 * on-disk structure.
 */

#include <stdint.h>
#include <string.h>

/* Layout checks that compile as C11 and as C++ (the unit tests). */
#ifdef __cplusplus
#define PD_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define PD_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

typedef struct { uint8_t b[2]; } __attribute__((packed)) le16;
typedef struct { uint8_t b[4]; } __attribute__((packed)) le32;
typedef struct { uint8_t b[8]; } __attribute__((packed)) le64;

PD_STATIC_ASSERT(sizeof(le16) == 2, "le16");
PD_STATIC_ASSERT(sizeof(le32) == 4, "le32");
PD_STATIC_ASSERT(sizeof(le64) == 8, "le64");

static inline uint16_t le16_to_cpu(le16 v)
{
	return (uint16_t)(v.b[0] | (v.b[1] << 8));
}

static inline uint32_t le32_to_cpu(le32 v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	uint32_t r;
	memcpy(&r, v.b, 4);
	return r;
#else
	return (uint32_t)v.b[0] | (uint32_t)v.b[1] << 8 |
	       (uint32_t)v.b[2] << 16 | (uint32_t)v.b[3] << 24;
#endif
}

static inline uint64_t le64_to_cpu(le64 v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	uint64_t r;
	memcpy(&r, v.b, 8);
	return r;
#else
	uint64_t r = 0;
	for (int i = 7; i >= 0; i--)
		r = r << 8 | v.b[i];
	return r;
#endif
}

static inline le16 cpu_to_le16(uint16_t x)
{
	le16 v = {{ (uint8_t)x, (uint8_t)(x >> 8) }};
	return v;
}

static inline le32 cpu_to_le32(uint32_t x)
{
	le32 v;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(v.b, &x, 4);
#else
	for (int i = 0; i < 4; i++)
		v.b[i] = (uint8_t)(x >> (8 * i));
#endif
	return v;
}

static inline le64 cpu_to_le64(uint64_t x)
{
	le64 v;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(v.b, &x, 8);
#else
	for (int i = 0; i < 8; i++)
		v.b[i] = (uint8_t)(x >> (8 * i));
#endif
	return v;
}

/* Raw little-endian loads from a byte buffer, for arrays of keys/values. */
static inline uint64_t load_le64(const void *p)
{
	le64 v;
	memcpy(&v, p, 8);
	return le64_to_cpu(v);
}

static inline uint32_t load_le32(const void *p)
{
	le32 v;
	memcpy(&v, p, 4);
	return le32_to_cpu(v);
}

static inline void store_le64(void *p, uint64_t x)
{
	le64 v = cpu_to_le64(x);
	memcpy(p, &v, 8);
}

static inline void store_le32(void *p, uint32_t x)
{
	le32 v = cpu_to_le32(x);
	memcpy(p, &v, 4);
}

#endif
