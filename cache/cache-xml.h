/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef CACHE_XML_H
#define CACHE_XML_H

/*
 * The XML of cache_dump and cache_restore (doc/cache-era-format.md
 * section 6), as thin-provisioning-tools 0.9 writes it:
 *
 *   <superblock uuid="" block_size="128" nr_cache_blocks="300" policy="smq" hint_width="4">
 *     <mappings>
 *       <mapping cache_block="0" origin_block="5" dirty="true"/>
 *     </mappings>
 *     <hints>
 *       <hint cache_block="0" data="AQAAAA=="/>
 *     </hints>
 *   </superblock>
 */

#include "cache-md.h"

#include <stdio.h>

/* A visitor printing XML to out (mappings then hints, see cache_md_walk). */
struct cache_xml_emitter {
	FILE *out;
	bool in_hints;
};
void cache_xml_emitter_init(struct cache_xml_emitter *e, FILE *out, struct cache_visitor *v);

/*
 * Parses in into v (expat).  Errors: "line N: <what>" with -EINVAL for
 * input problems; a visitor's error is passed on with its message in
 * *verr (which the visitor fills), prefixed with the line.
 */
int cache_xml_parse(FILE *in, const struct cache_visitor *v, struct pd_err *verr,
		    struct pd_err *err);

/* Base64 (RFC 4648, padded). out: 4 * ((n + 2) / 3) + 1 bytes. */
void base64_encode(const uint8_t *in, size_t n, char *out);
/* Returns the decoded length, or -1 for bad input; out holds max bytes. */
int base64_decode(const char *in, uint8_t *out, size_t max);

#endif
