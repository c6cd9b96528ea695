/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_CRC32C_H
#define PD_CRC32C_H

/*
 * CRC-32C (Castagnoli), reflected, as the kernel's crc32c(): the caller
 * passes the initial register and gets the raw register back, with no
 * final inversion.  crc32c(~0, "123456789", 9) == 0x1CF96D7C.
 *
 * crc32c() uses the SSE4.2 instruction when the CPU has it and a
 * slicing-by-8 table otherwise; both paths are exported for tests.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(uint32_t crc, const void *data, size_t len);
uint32_t crc32c_table(uint32_t crc, const void *data, size_t len);
/* Only valid when crc32c_have_hw() is true. */
uint32_t crc32c_hw(uint32_t crc, const void *data, size_t len);
bool crc32c_have_hw(void);

#endif
