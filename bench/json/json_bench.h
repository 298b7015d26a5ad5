/*
 * json_bench.h - what the C driver (json_bench.c) and the simdjson shim
 * (simd.cpp) share: the tally a parser's walk fills in, and the shim's
 * extern "C" entry points.
 *
 * Every parser must produce the same tally for the same body; that is how
 * the benchmark checks that each one parsed and visited all of it.
 */
#ifndef JSON_BENCH_H
#define JSON_BENCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Bytes readable past the end of every body buffer (simdjson reads up to
 * SIMDJSON_PADDING = 64 bytes past the end; the shim asserts it fits).
 * The byte right after the body is a NUL for yajl_tree_parse().
 */
#define JSON_BENCH_PADDING 64

/* What a walk saw; compared field by field across parsers. */
struct json_tally {
	uint64_t values;    /* every value: objects, arrays and scalars */
	uint64_t keys;      /* object members */
	uint64_t str_bytes; /* decoded bytes of every string and key */
	uint64_t str_touch; /* sum of first bytes: the strings were read */
	uint64_t ints;      /* integers */
	uint64_t int_sum;   /* their sum, wrapping */
	uint64_t reals;     /* non-integral numbers */
	double real_sum;
	uint64_t bools;
	uint64_t nulls;
};

/* A string or key of len bytes at s (len 0: s may be anything). */
static inline void json_tally_string(struct json_tally *t, const char *s,
				     size_t len)
{
	t->str_bytes += len;
	if (len > 0)
		t->str_touch += (unsigned char)s[0];
}

/*
 * The json-c walk (json_c.c), apart because json-c's header and jansson's
 * declare the same names. jc_create() returns a reusable tokener set to
 * JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8 (NULL when out of
 * memory); jc_destroy() accepts NULL. jc_parse_visit() parses len bytes at
 * p, walks the tree into *t, frees it and returns 0, or -1 with a message
 * in err. A tokener is for one thread at a time.
 */
void *jc_create(void);
void jc_destroy(void *tokener);
int jc_parse_visit(void *tokener, const char *p, size_t len,
		   struct json_tally *t, char *err, size_t err_len);
const char *jc_version(void);

/*
 * The simdjson DOM shim (simd.cpp). simd_create() returns a reusable
 * parser (NULL when out of memory); simd_destroy() accepts NULL.
 * simd_parse_visit() parses len bytes at p, which must be followed by
 * JSON_BENCH_PADDING readable bytes, walks the document into *t and returns
 * 0, or -1 with a message in err. With strict it also refuses what jansson
 * refuses for the edge and simdjson accepts: duplicate keys, "\u0000" in
 * strings and keys, integers above INT64_MAX. A parser is for one thread
 * at a time.
 */
void *simd_create(void);
void simd_destroy(void *state);
int simd_parse_visit(void *state, const char *p, size_t len, int strict,
		     struct json_tally *t, char *err, size_t err_len);
const char *simd_version(void);
const char *simd_implementation(void); /* the kernel picked at run time */

#ifdef __cplusplus
}
#endif

#endif
