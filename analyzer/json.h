/*
 * A small streaming JSON writer: values go straight to a FILE, commas and
 * indentation are handled here, strings are escaped so that any byte string
 * (paths, command lines, symbol names from foreign files) yields valid JSON.
 *
 * Misuse (a value without a key inside an object, unbalanced ends, nesting
 * deeper than PFS_JSON_MAX_DEPTH) is recorded, not fatal: pfs_json_finish()
 * returns -EINVAL, or -EIO when the stream had a write error.
 */
#ifndef PFSHIM_JSON_H
#define PFSHIM_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PFS_JSON_MAX_DEPTH 32

struct pfs_json {
	FILE *out;
	unsigned indent;	/* spaces per level; 0 = compact, one line */
	unsigned depth;
	bool after_key;		/* a key was written, its value comes next */
	bool done;		/* the top-level value is complete */
	int err;		/* first error: -EINVAL for misuse */
	char open[PFS_JSON_MAX_DEPTH];	 /* '{' or '[' per level */
	bool items[PFS_JSON_MAX_DEPTH];	 /* the level has an element already */
};

void pfs_json_init(struct pfs_json *w, FILE *out, unsigned indent);
void pfs_json_begin_object(struct pfs_json *w);
void pfs_json_end_object(struct pfs_json *w);
void pfs_json_begin_array(struct pfs_json *w);
void pfs_json_end_array(struct pfs_json *w);
void pfs_json_key(struct pfs_json *w, const char *key);
/* NULL gives null. */
void pfs_json_string(struct pfs_json *w, const char *s);
void pfs_json_string_len(struct pfs_json *w, const char *s, size_t len);
void pfs_json_uint(struct pfs_json *w, uint64_t v);
void pfs_json_int(struct pfs_json *w, int64_t v);
void pfs_json_bool(struct pfs_json *w, bool v);
void pfs_json_null(struct pfs_json *w);
/* NaN and infinities have no JSON form: they give null. */
void pfs_json_double(struct pfs_json *w, double v);
/* A key and its value in one call. */
void pfs_json_kv_uint(struct pfs_json *w, const char *key, uint64_t v);
void pfs_json_kv_string(struct pfs_json *w, const char *key, const char *s);
void pfs_json_kv_double(struct pfs_json *w, const char *key, double v);
/* key: v where `known`, else key: null. */
void pfs_json_kv_uint_or_null(struct pfs_json *w, const char *key, bool known, uint64_t v);
/* Ends the document with a newline; 0, -EINVAL (misuse, unbalanced) or -EIO. */
int pfs_json_finish(struct pfs_json *w);

/* The escaped form of s[0..len) with its quotes, to `out`; for tests and reuse. */
void pfs_json_write_escaped(FILE *out, const char *s, size_t len);

#endif
