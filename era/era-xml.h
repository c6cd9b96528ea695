/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef ERA_XML_H
#define ERA_XML_H

/*
 * The XML of era_dump and era_restore (doc/cache-era-format.md section
 * 6), as thin-provisioning-tools 0.9 writes it:
 *
 *   <superblock uuid="" block_size="128" nr_blocks="20" current_era="5">
 *     <writeset era="3" nr_bits="20">
 *       <bit block="0" value="false"/>
 *     </writeset>
 *     <era_array>
 *       <era block="0" era="1"/>
 *     </era_array>
 *   </superblock>
 */

#include "era-md.h"

#include <stdio.h>

void era_xml_emitter_init(FILE *out, struct era_visitor *v);

/* Parses in into v; see cache_xml_parse. */
int era_xml_parse(FILE *in, const struct era_visitor *v, struct pd_err *verr,
		  struct pd_err *err);

#endif
