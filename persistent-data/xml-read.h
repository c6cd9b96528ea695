/* SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef PD_XML_READ_H
#define PD_XML_READ_H

/*
 * What the cache and era XML readers share: the expat driver (the input
 * read a MiB at a time, "the input is not XML", expat's errors and
 * "missing superblock" as "line N: ..." messages) and the field parsers
 * of the fast readers, which take only the lines the dump commands write.
 */

#include "error.h"

#include <expat.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* The first member of a reader's parser state (expat's user data). */
struct xml_read {
	XML_Parser xp;
	struct pd_err *verr;	/* the visitor's message */
	struct pd_err *err;
	int error;
	bool in_sb, seen_sb;
};

/* "line N: " fmt (with what), then stops the parse; the first error wins. */
void xml_read_fail(struct xml_read *x, int code, const char *fmt, const char *what);
/* The visitor returned r: "line N: " its message, then stops. */
void xml_read_visitor_failed(struct xml_read *x, int r);

/*
 * Parses in with the handlers (their user data is x), then, unless an
 * error came first or no superblock was seen, calls finish(ctx).
 */
int xml_read_run(struct xml_read *x, FILE *in, XML_StartElementHandler start,
		 XML_EndElementHandler end, int (*finish)(void *ctx), void *ctx);

/* Fast readers: name="digits" at *p (advancing past the quote). */
bool xml_fast_num(const char **p, const char *name, uint64_t *v);
/* name="text" (no '&' or '<', shorter than max) into out. */
bool xml_fast_str(const char **p, const char *name, char *out, size_t max);
/* The literal s at *p, skipped. */
bool xml_fast_lit(const char **p, const char *s);

/* The visitor failed with r at line nr: "line N: " its message; r. */
int xml_fast_visitor_failed(unsigned long nr, int r, struct pd_err *verr, struct pd_err *err);

/*
 * At the end of the input: a read error, or 1 (declined) unless the
 * reader saw the whole document (complete), else finish(ctx) with the
 * visitor's message on error.
 */
int xml_fast_end(FILE *in, bool complete, int (*finish)(void *ctx), void *ctx,
		 struct pd_err *verr, struct pd_err *err);

#endif
