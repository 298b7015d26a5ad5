/*
 * json_bench.c - parse + walk of the edge's request bodies with jansson (as
 * the edge calls it) and the JSON parsers Debian ships as alternatives,
 * side by side in one run.
 *
 * Each parser parses a whole body and then visits every value in it: each
 * member's key, each string's bytes, each number's value. That is the least
 * any event builder must do, so no parser gets credit for work it skips.
 * The parsers:
 *   jansson        json_loadb(p, len, JSON_REJECT_DUPLICATES, &err), walk,
 *                  json_decref, with jansson allocating from the edge's
 *                  per-thread arena (edge_json_use_arena()): exactly what
 *                  the edge does (the baseline)
 *   jansson-malloc the same with jansson's default allocator, malloc
 *                  (for reference: what the arena saves)
 *   yajl-tree      yajl_tree_parse (NUL-terminated input), walk,
 *                  yajl_tree_free
 *   yajl-sax       yajl_alloc, yajl_parse, yajl_complete_parse, yajl_free
 *                  (yajl 2 cannot reset a handle); the callbacks copy every
 *                  string and key into a per-body arena, as the edge would
 *                  have to: yajl's pointers live only during the callback
 *   json-c         one json_tokener reused (json_tokener_reset), flags
 *                  STRICT | VALIDATE_UTF8, walk, json_object_put; in
 *                  json_c.c (its header clashes with jansson's)
 *   simdjson-dom   one dom::parser reused, via the extern "C" shim in
 *                  simd.cpp
 *   simdjson-strict  the same, and the walk also refuses duplicate keys,
 *                  "\u0000" and integers above INT64_MAX as jansson does:
 *                  what a drop-in replacement for the edge would cost
 * Every walk fills a struct json_tally; before timing, every parser must
 * accept every body and produce jansson's tally, and every timed iteration
 * must produce it again. A mismatch fails the run.
 *
 * Timing: after a calibration pass (which is also the warm-up) each
 * (body, parser) gets an iteration count filling about one slice of CPU
 * time. Then ROUNDS rounds each time one slice of every parser on every
 * body, the parsers' order rotated by one each round, so that noise from
 * the shared machine falls on all of them alike. Time is the thread's CPU
 * time (CLOCK_THREAD_CPUTIME_ID; wall time is kept in the JSON too). Per
 * parser the table shows the median over rounds of us/body, MB/s from that
 * median (MB = 10^6 bytes of body) and the median over rounds of the ratio
 * to jansson's time in the same round.
 *
 * Then, not timed: which parser accepts a few inputs on which parsers are
 * known to differ (duplicate keys, "\u0000", bad UTF-8, comments, ...), so
 * a reader sees what a switch would change beyond speed.
 *
 * Usage: json_bench [--rounds N] [--slice-ms MS] [--json FILE] NAME=FILE...
 * Exit status: 0, 1 when a parser refused a body or its tally differed or
 * the JSON could not be written, 2 on bad usage.
 */
#include "json_bench.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>
#include <yajl/yajl_version.h>

#define BODIES_MAX 8
#define BODY_BYTES_MAX (64u << 20)
#define ROUNDS_MAX 1000
#define ERR_MAX 160

struct body {
	const char *name;
	char *p; /* len bytes, a NUL, then padding: JSON_BENCH_PADDING + 1 */
	size_t len;
	struct json_tally want; /* jansson's */
};

struct parser {
	const char *name;
	void *(*create)(size_t body_bytes_max);
	void (*destroy)(void *state);
	/* 0, or -1 with a message in err */
	int (*run)(void *state, const struct body *b, struct json_tally *t,
		   char *err);
	void *state;
};

static bool tally_equal(const struct json_tally *a, const struct json_tally *b)
{
	return a->values == b->values && a->keys == b->keys &&
	       a->str_bytes == b->str_bytes && a->str_touch == b->str_touch &&
	       a->ints == b->ints && a->int_sum == b->int_sum &&
	       a->reals == b->reals && a->real_sum == b->real_sum &&
	       a->bools == b->bools && a->nulls == b->nulls;
}

static void tally_print(FILE *f, const struct json_tally *t)
{
	fprintf(f,
		"values %" PRIu64 ", keys %" PRIu64 ", string bytes %" PRIu64
		", ints %" PRIu64 " (sum %" PRIu64 "), reals %" PRIu64
		" (sum %.17g), bools %" PRIu64 ", nulls %" PRIu64,
		t->values, t->keys, t->str_bytes, t->ints, t->int_sum, t->reals,
		t->real_sum, t->bools, t->nulls);
}

static void *no_state(size_t body_bytes_max)
{
	(void)body_bytes_max;
	return (void *)1; /* not NULL: created */
}

static void no_destroy(void *state)
{
	(void)state;
}

/* ---- jansson ----------------------------------------------------------- */

static void jansson_visit(json_t *j, struct json_tally *t)
{
	t->values++;
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *k;
		size_t klen;
		json_t *v;

		json_object_keylen_foreach(j, k, klen, v)
		{
			t->keys++;
			json_tally_string(t, k, klen);
			jansson_visit(v, t);
		}
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *v;

		json_array_foreach(j, i, v)
		{
			jansson_visit(v, t);
		}
		break;
	}
	case JSON_STRING:
		json_tally_string(t, json_string_value(j),
				  json_string_length(j));
		break;
	case JSON_INTEGER:
		t->ints++;
		t->int_sum += (uint64_t)json_integer_value(j);
		break;
	case JSON_REAL:
		t->reals++;
		t->real_sum += json_real_value(j);
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		t->bools++;
		break;
	case JSON_NULL:
		t->nulls++;
		break;
	}
}

/*
 * The edge's allocator for jansson (edge_json_use_arena() in
 * edge/edge_event.c): a thread bump-allocates from its own 1 MiB block,
 * reset between bodies; frees of block memory are no-ops; what does not
 * fit goes to malloc. Copied here because the edge keeps it private.
 */
#define JSON_ARENA_BYTES (1u << 20)

static struct {
	char *base;
	size_t used;
} arena;

static void *arena_malloc(size_t n)
{
	size_t a = (n + 15) & ~(size_t)15;

	if (arena.base && a >= n && a <= JSON_ARENA_BYTES - arena.used) {
		void *p = arena.base + arena.used;

		arena.used += a;
		return p;
	}
	return malloc(n);
}

static void arena_free(void *p)
{
	char *c = p;

	if (arena.base && c >= arena.base && c < arena.base + JSON_ARENA_BYTES)
		return;
	free(p);
}

static void *jansson_arena_create(size_t body_bytes_max)
{
	(void)body_bytes_max;
	arena.base = malloc(JSON_ARENA_BYTES);
	return arena.base;
}

static void jansson_arena_destroy(void *state)
{
	(void)state;
	free(arena.base);
	arena.base = NULL;
}

static int jansson_run_with(const struct body *b, bool use_arena,
			    struct json_tally *t, char *err)
{
	json_error_t jerr;
	json_t *root;

	/* two stores; no jansson value is alive between runs */
	if (use_arena)
		json_set_alloc_funcs(arena_malloc, arena_free);
	else
		json_set_alloc_funcs(malloc, free);
	arena.used = 0;
	root = json_loadb(b->p, b->len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, ERR_MAX, "%.100s (line %d, column %d)", jerr.text,
			 jerr.line, jerr.column);
		return -1;
	}
	jansson_visit(root, t);
	json_decref(root);
	return 0;
}

static int jansson_run(void *state, const struct body *b, struct json_tally *t,
		       char *err)
{
	(void)state;
	return jansson_run_with(b, true, t, err);
}

static int jansson_malloc_run(void *state, const struct body *b,
			      struct json_tally *t, char *err)
{
	(void)state;
	return jansson_run_with(b, false, t, err);
}

/* ---- yajl tree --------------------------------------------------------- */

static void yajl_tree_visit(yajl_val v, struct json_tally *t)
{
	size_t i;

	t->values++;
	switch (v->type) {
	case yajl_t_object:
		for (i = 0; i < v->u.object.len; i++) {
			const char *k = v->u.object.keys[i];

			t->keys++;
			json_tally_string(t, k, strlen(k));
			yajl_tree_visit(v->u.object.values[i], t);
		}
		break;
	case yajl_t_array:
		for (i = 0; i < v->u.array.len; i++)
			yajl_tree_visit(v->u.array.values[i], t);
		break;
	case yajl_t_string:
		/* NUL-terminated: a "\u0000" in the text cuts the string */
		json_tally_string(t, v->u.string, strlen(v->u.string));
		break;
	case yajl_t_number:
		if (v->u.number.flags & YAJL_NUMBER_INT_VALID) {
			t->ints++;
			t->int_sum += (uint64_t)v->u.number.i;
		} else {
			t->reals++;
			t->real_sum += v->u.number.d;
		}
		break;
	case yajl_t_true:
	case yajl_t_false:
		t->bools++;
		break;
	case yajl_t_null:
		t->nulls++;
		break;
	case yajl_t_any:
		break;
	}
}

static int yajl_tree_run(void *state, const struct body *b,
			 struct json_tally *t, char *err)
{
	yajl_val root;

	(void)state;
	err[0] = '\0';
	root = yajl_tree_parse(b->p, err, ERR_MAX); /* reads up to the NUL */
	if (!root) {
		if (!err[0])
			snprintf(err, ERR_MAX, "yajl_tree_parse failed");
		err[strcspn(err, "\n")] = '\0';
		return -1;
	}
	yajl_tree_visit(root, t);
	yajl_tree_free(root);
	return 0;
}

/* ---- yajl SAX ---------------------------------------------------------- */

struct sax {
	struct json_tally *t;
	char *arena; /* the body's strings, as an event builder keeps them */
	size_t used, size;
};

static int sax_keep(struct sax *s, const unsigned char *p, size_t len)
{
	char *copy;

	if (len > s->size - s->used)
		return 0; /* cannot happen: decoded <= raw bytes */
	copy = s->arena + s->used;
	memcpy(copy, p, len);
	s->used += len;
	json_tally_string(s->t, copy, len);
	return 1;
}

static int sax_null(void *ctx)
{
	struct sax *s = ctx;

	s->t->values++;
	s->t->nulls++;
	return 1;
}

static int sax_boolean(void *ctx, int v)
{
	struct sax *s = ctx;

	(void)v;
	s->t->values++;
	s->t->bools++;
	return 1;
}

static int sax_integer(void *ctx, long long v)
{
	struct sax *s = ctx;

	s->t->values++;
	s->t->ints++;
	s->t->int_sum += (uint64_t)v;
	return 1;
}

static int sax_double(void *ctx, double v)
{
	struct sax *s = ctx;

	s->t->values++;
	s->t->reals++;
	s->t->real_sum += v;
	return 1;
}

static int sax_string(void *ctx, const unsigned char *p, size_t len)
{
	struct sax *s = ctx;

	s->t->values++;
	return sax_keep(s, p, len);
}

static int sax_map_key(void *ctx, const unsigned char *p, size_t len)
{
	struct sax *s = ctx;

	s->t->keys++;
	return sax_keep(s, p, len);
}

static int sax_container(void *ctx)
{
	struct sax *s = ctx;

	s->t->values++;
	return 1;
}

static int sax_end(void *ctx)
{
	(void)ctx;
	return 1;
}

static const yajl_callbacks sax_callbacks = {
	.yajl_null = sax_null,
	.yajl_boolean = sax_boolean,
	.yajl_integer = sax_integer,
	.yajl_double = sax_double,
	.yajl_string = sax_string,
	.yajl_start_map = sax_container,
	.yajl_map_key = sax_map_key,
	.yajl_end_map = sax_end,
	.yajl_start_array = sax_container,
	.yajl_end_array = sax_end,
};

static void *yajl_sax_create(size_t body_bytes_max)
{
	struct sax *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->size = body_bytes_max;
	s->arena = malloc(s->size ? s->size : 1);
	if (!s->arena) {
		free(s);
		return NULL;
	}
	return s;
}

static void yajl_sax_destroy(void *state)
{
	struct sax *s = state;

	if (!s)
		return;
	free(s->arena);
	free(s);
}

static int yajl_sax_run(void *state, const struct body *b, struct json_tally *t,
			char *err)
{
	struct sax *s = state;
	yajl_handle h;
	yajl_status st;

	s->t = t;
	s->used = 0;
	h = yajl_alloc(&sax_callbacks, NULL, s);
	if (!h) {
		snprintf(err, ERR_MAX, "yajl_alloc failed");
		return -1;
	}
	st = yajl_parse(h, (const unsigned char *)b->p, b->len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	if (st != yajl_status_ok) {
		unsigned char *msg = yajl_get_error(
			h, 0, (const unsigned char *)b->p, b->len);

		snprintf(err, ERR_MAX, "%s", msg ? (char *)msg : "error");
		err[strcspn(err, "\n")] = '\0';
		yajl_free_error(h, msg);
		yajl_free(h);
		return -1;
	}
	yajl_free(h);
	return 0;
}

/* ---- json-c (json_c.c) ------------------------------------------------ */

static void *jc_state(size_t body_bytes_max)
{
	(void)body_bytes_max;
	return jc_create();
}

static int jc_run(void *state, const struct body *b, struct json_tally *t,
		  char *err)
{
	return jc_parse_visit(state, b->p, b->len, t, err, ERR_MAX);
}

/* ---- simdjson (simd.cpp) ----------------------------------------------- */

static void *simd_state(size_t body_bytes_max)
{
	(void)body_bytes_max;
	return simd_create();
}

static int simd_run(void *state, const struct body *b, struct json_tally *t,
		    char *err)
{
	return simd_parse_visit(state, b->p, b->len, 0, t, err, ERR_MAX);
}

static int simd_strict_run(void *state, const struct body *b,
			   struct json_tally *t, char *err)
{
	return simd_parse_visit(state, b->p, b->len, 1, t, err, ERR_MAX);
}

/* ---- the harness ------------------------------------------------------- */

static struct parser parsers[] = {
	/* the baseline: as the edge runs it */
	{ "jansson", jansson_arena_create, jansson_arena_destroy, jansson_run,
	  NULL },
	{ "jansson-malloc", no_state, no_destroy, jansson_malloc_run, NULL },
	{ "yajl-tree", no_state, no_destroy, yajl_tree_run, NULL },
	{ "yajl-sax", yajl_sax_create, yajl_sax_destroy, yajl_sax_run, NULL },
	{ "json-c", jc_state, jc_destroy, jc_run, NULL },
	{ "simdjson-dom", simd_state, simd_destroy, simd_run, NULL },
	{ "simdjson-strict", simd_state, simd_destroy, simd_strict_run, NULL },
};
#define N_PARSERS (sizeof(parsers) / sizeof(parsers[0]))
#define BASELINE 0

struct cell {
	uint64_t iters; /* per slice */
	double *cpu_ns; /* per round, per body */
	double *wall_ns;
	double *ratio; /* cpu_ns / the baseline's in the same round */
	double cpu_med, cpu_min, cpu_max, wall_med;
	double ratio_med, ratio_min, ratio_max;
};

static struct body bodies[BODIES_MAX];
static size_t n_bodies;
static struct cell cells[BODIES_MAX][N_PARSERS];

/*
 * Inputs on which parsers are known to differ; which ones each accepts is
 * printed, not judged (jansson's answers are what the edge does today).
 */
#define KEYS_20                                                                  \
	"\"k00\":0,\"k01\":0,\"k02\":0,\"k03\":0,\"k04\":0,\"k05\":0,\"k06\":0," \
	"\"k07\":0,\"k08\":0,\"k09\":0,\"k10\":0,\"k11\":0,\"k12\":0,\"k13\":0," \
	"\"k14\":0,\"k15\":0,\"k16\":0,\"k17\":0,\"k18\":0,\"k19\":0"

static const struct {
	const char *name, *text;
} quirks[] = {
	{ "duplicate key", "{\"a\":1,\"a\":2}" },
	{ "21 keys, all different", "{" KEYS_20 ",\"k20\":1}" },
	{ "21 keys, one twice", "{" KEYS_20 ",\"k05\":1}" },
	{ "\\u0000 in a string", "{\"a\":\"x\\u0000y\"}" },
	{ "lone surrogate \\ud800", "{\"a\":\"\\ud800\"}" },
	{ "invalid UTF-8 (0xff)", "{\"a\":\"\xff\"}" },
	{ "overlong UTF-8 (c0 af)", "{\"a\":\"\xc0\xaf\"}" },
	{ "comment", "{\"a\":1 /* c */}" },
	{ "trailing comma", "{\"a\":1,}" },
	{ "number 1e400", "{\"a\":1e400}" },
	{ "integer 2^64-1", "{\"a\":18446744073709551615}" },
	{ "text after the value", "{\"a\":1} x" },
};
#define N_QUIRKS (sizeof(quirks) / sizeof(quirks[0]))
static bool quirk_ok[N_QUIRKS][N_PARSERS];

/* Run every parser on every quirk; 0, or -1 when out of memory. */
static int run_quirks(void)
{
	size_t qi, pi;

	printf("\nwhich parser accepts what (not timed, not judged; jansson "
	       "is what the edge does today):\n%-24s",
	       "input");
	for (pi = 0; pi < N_PARSERS; pi++)
		printf(" %-*s", pi + 1 < N_PARSERS ? 15 : 0, parsers[pi].name);
	printf("\n");
	for (qi = 0; qi < N_QUIRKS; qi++) {
		struct body b = { .name = quirks[qi].name };

		b.len = strlen(quirks[qi].text);
		b.p = calloc(1, b.len + 1 + JSON_BENCH_PADDING);
		if (!b.p)
			return -1;
		memcpy(b.p, quirks[qi].text, b.len);
		printf("%-24s", b.name);
		for (pi = 0; pi < N_PARSERS; pi++) {
			struct json_tally t = { 0 };
			char err[ERR_MAX];

			quirk_ok[qi][pi] = parsers[pi].run(parsers[pi].state,
							   &b, &t, err) == 0;
			printf(" %-*s", pi + 1 < N_PARSERS ? 15 : 0,
			       quirk_ok[qi][pi] ? "accepts" : "-");
		}
		printf("\n");
		free(b.p);
	}
	return 0;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median, min and max of n values (n > 0); v is left sorted. */
static void stats(double *v, size_t n, double *med, double *min, double *max)
{
	qsort(v, n, sizeof(*v), cmp_double);
	*med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	*min = v[0];
	*max = v[n - 1];
}

/*
 * Run parser p on body b iters times; every tally must be the body's.
 * Returns 0 with the CPU and wall time, or -1 after saying what failed.
 */
static int slice(struct parser *p, const struct body *b, uint64_t iters,
		 uint64_t *cpu_ns, uint64_t *wall_ns)
{
	char err[ERR_MAX];
	uint64_t c0, w0, i;

	w0 = clock_ns(CLOCK_MONOTONIC);
	c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	for (i = 0; i < iters; i++) {
		struct json_tally t = { 0 };

		if (p->run(p->state, b, &t, err) < 0) {
			fprintf(stderr, "json_bench: %s refused %s: %s\n",
				p->name, b->name, err);
			return -1;
		}
		if (!tally_equal(&t, &b->want)) {
			fprintf(stderr, "json_bench: %s on %s: tally differs\n",
				p->name, b->name);
			return -1;
		}
	}
	*cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
	*wall_ns = clock_ns(CLOCK_MONOTONIC) - w0;
	return 0;
}

/* Iterations for about slice_ns of CPU; also the warm-up. */
static int calibrate(struct parser *p, const struct body *b, uint64_t slice_ns,
		     uint64_t *iters)
{
	uint64_t n = 1, cpu, wall;

	for (;;) {
		if (slice(p, b, n, &cpu, &wall) < 0)
			return -1;
		if (cpu >= slice_ns / 8 || n >= (UINT64_C(1) << 40))
			break;
		n *= 2;
	}
	n = (uint64_t)((double)n * (double)slice_ns / (double)(cpu ? cpu : 1));
	*iters = n ? n : 1;
	return 0;
}

static int load_body(struct body *b, const char *arg)
{
	const char *eq = strchr(arg, '=');
	FILE *f;
	long size;
	int saved;

	if (!eq || eq == arg || !eq[1]) {
		fprintf(stderr, "json_bench: want NAME=FILE, got %s\n", arg);
		return -1;
	}
	b->name = strndup(arg, (size_t)(eq - arg));
	f = fopen(eq + 1, "rb");
	if (!b->name || !f)
		goto out_errno;
	if (fseek(f, 0, SEEK_END) < 0 || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) < 0)
		goto out_close;
	if ((unsigned long)size > BODY_BYTES_MAX) {
		errno = EFBIG;
		goto out_close;
	}
	b->len = (size_t)size;
	b->p = calloc(1, b->len + 1 + JSON_BENCH_PADDING);
	if (!b->p)
		goto out_close;
	if (fread(b->p, 1, b->len, f) != b->len) {
		errno = EIO;
		goto out_close;
	}
	fclose(f);
	return 0;

out_close:
	saved = errno;
	fclose(f);
	errno = saved;
out_errno:
	fprintf(stderr, "json_bench: %s: %s\n", eq + 1, strerror(errno));
	return -1;
}

/* The machine's busy seconds, all CPUs (/proc/stat); -1 if unknown. */
static double machine_busy_s(void)
{
	unsigned long long u, n, s, idle, iow, irq, sirq, steal = 0;
	FILE *f = fopen("/proc/stat", "r");
	int k;

	if (!f)
		return -1;
	k = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &u, &n, &s,
		   &idle, &iow, &irq, &sirq, &steal);
	fclose(f);
	if (k < 7)
		return -1;
	return (double)(u + n + s + irq + sirq + steal) /
	       (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void cpu_model(char *out, size_t len)
{
	char line[256];
	FILE *f = fopen("/proc/cpuinfo", "r");

	snprintf(out, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');

		if (strncmp(line, "model name", 10) == 0 && c) {
			c += 1 + strspn(c + 1, " \t");
			c[strcspn(c, "\n")] = '\0';
			snprintf(out, len, "%s", c);
			break;
		}
	}
	fclose(f);
}

/* s as a JSON string's contents (these are names and versions). */
static void json_str(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s >= 0x20)
			fputc(*s, f);
	}
}

static void json_doubles(FILE *f, const double *v, size_t n, double scale)
{
	size_t i;

	fputc('[', f);
	for (i = 0; i < n; i++)
		fprintf(f, "%s%.4f", i ? ", " : "", v[i] * scale);
	fputc(']', f);
}

static void json_tally(FILE *f, const struct json_tally *t)
{
	fprintf(f,
		"{\"values\": %" PRIu64 ", \"keys\": %" PRIu64
		", \"string_bytes\": %" PRIu64 ", \"ints\": %" PRIu64
		", \"int_sum\": %" PRIu64 ", \"reals\": %" PRIu64
		", \"real_sum\": %.17g, \"bools\": %" PRIu64
		", \"nulls\": %" PRIu64 "}",
		t->values, t->keys, t->str_bytes, t->ints, t->int_sum, t->reals,
		t->real_sum, t->bools, t->nulls);
}

struct run_info {
	char date[32], kernel[128], machine[72], cpu[128], yajl_v[16];
	unsigned rounds;
	double slice_ms, wall_s, other_pct;
	long cpus;
};

static int write_json(const char *path, const struct run_info *ri)
{
	FILE *f = fopen(path, "w");
	size_t bi, pi, qi;
	int rc;

	if (!f) {
		fprintf(stderr, "json_bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(f, "{\n \"benchmark\": \"json\",\n \"format\": 1,\n");
	fprintf(f, " \"date\": \"%s\",\n \"kernel\": \"", ri->date);
	json_str(f, ri->kernel);
	fprintf(f, "\",\n \"machine\": \"%s\",\n \"cpus\": %ld,\n", ri->machine,
		ri->cpus);
	fprintf(f, " \"cpu_model\": \"");
	json_str(f, ri->cpu);
	fprintf(f, "\",\n \"compiler_flags\": \"-O2\",\n");
	fprintf(f,
		" \"libraries\": {\"jansson\": \"%s\", \"yajl\": \"%s\", "
		"\"json-c\": \"%s\", \"simdjson\": \"%s\", "
		"\"simdjson_implementation\": \"%s\"},\n",
		JANSSON_VERSION, ri->yajl_v, jc_version(), simd_version(),
		simd_implementation());
	fprintf(f, " \"baseline\": \"%s\",\n", parsers[BASELINE].name);
	fprintf(f, " \"rounds\": %u,\n \"slice_ms\": %.1f,\n", ri->rounds,
		ri->slice_ms);
	fprintf(f, " \"clock\": \"CLOCK_THREAD_CPUTIME_ID\",\n");
	fprintf(f, " \"order\": \"parsers rotated by one each round\",\n");
	fprintf(f, " \"wall_s\": %.3f,\n \"other_busy_pct\": %.1f,\n",
		ri->wall_s, ri->other_pct);
	fprintf(f, " \"accepts\": [\n");
	for (qi = 0; qi < N_QUIRKS; qi++) {
		fprintf(f, "  {\"input\": \"");
		json_str(f, quirks[qi].name);
		fprintf(f, "\"");
		for (pi = 0; pi < N_PARSERS; pi++)
			fprintf(f, ", \"%s\": %s", parsers[pi].name,
				quirk_ok[qi][pi] ? "true" : "false");
		fprintf(f, "}%s\n", qi + 1 < N_QUIRKS ? "," : "");
	}
	fprintf(f, " ],\n");
	fprintf(f, " \"bodies\": [\n");
	for (bi = 0; bi < n_bodies; bi++) {
		const struct body *b = &bodies[bi];

		fprintf(f, "  {\"name\": \"");
		json_str(f, b->name);
		fprintf(f, "\", \"bytes\": %zu,\n   \"tally\": ", b->len);
		json_tally(f, &b->want);
		fprintf(f, ",\n   \"parsers\": [\n");
		for (pi = 0; pi < N_PARSERS; pi++) {
			const struct cell *c = &cells[bi][pi];
			double mb_s = (double)b->len / c->cpu_med * 1e3;

			fprintf(f,
				"    {\"name\": \"%s\", \"iters_per_slice\": "
				"%" PRIu64 ", \"us_median\": %.4f, "
				"\"us_min\": %.4f, \"us_max\": %.4f, "
				"\"wall_us_median\": %.4f, \"mb_s\": %.2f,\n"
				"     \"ratio_median\": %.4f, "
				"\"ratio_min\": %.4f, \"ratio_max\": %.4f,\n"
				"     \"us_rounds\": ",
				parsers[pi].name, c->iters, c->cpu_med / 1e3,
				c->cpu_min / 1e3, c->cpu_max / 1e3,
				c->wall_med / 1e3, mb_s, c->ratio_med,
				c->ratio_min, c->ratio_max);
			json_doubles(f, c->cpu_ns, ri->rounds, 1e-3);
			fprintf(f, ",\n     \"ratio_rounds\": ");
			json_doubles(f, c->ratio, ri->rounds, 1);
			fprintf(f, "}%s\n", pi + 1 < N_PARSERS ? "," : "");
		}
		fprintf(f, "   ]}%s\n", bi + 1 < n_bodies ? "," : "");
	}
	fprintf(f, " ]\n}\n");
	rc = ferror(f);
	if (fclose(f) != 0 || rc) {
		fprintf(stderr, "json_bench: writing %s failed\n", path);
		return -1;
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: json_bench [--rounds N] [--slice-ms MS] "
		   "[--json FILE] NAME=FILE...\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rounds", required_argument, NULL, 'r' },
		{ "slice-ms", required_argument, NULL, 's' },
		{ "json", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct run_info ri = { .rounds = 15, .slice_ms = 20 };
	const char *json_path = NULL;
	size_t bi, pi, max_len = 0;
	uint64_t slice_ns, w0, w1;
	double busy0, busy1, self0, self1, *ratios, *sorted;
	struct utsname un;
	time_t now;
	unsigned r;
	int c, status = 0, yv;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char *end;

		switch (c) {
		case 'r':
			ri.rounds = (unsigned)strtoul(optarg, &end, 10);
			if (*end || ri.rounds < 1 || ri.rounds > ROUNDS_MAX) {
				usage(stderr);
				return 2;
			}
			break;
		case 's':
			ri.slice_ms = strtod(optarg, &end);
			if (*end ||
			    !(ri.slice_ms >= 0.1 && ri.slice_ms <= 1e4)) {
				usage(stderr);
				return 2;
			}
			break;
		case 'j':
			json_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc || argc - optind > BODIES_MAX) {
		usage(stderr);
		return 2;
	}
	for (; optind < argc; optind++) {
		if (load_body(&bodies[n_bodies], argv[optind]) < 0)
			return 2;
		if (bodies[n_bodies].len > max_len)
			max_len = bodies[n_bodies].len;
		n_bodies++;
	}
	for (pi = 0; pi < N_PARSERS; pi++) {
		parsers[pi].state = parsers[pi].create(max_len);
		if (!parsers[pi].state) {
			fprintf(stderr, "json_bench: %s: out of memory\n",
				parsers[pi].name);
			return 1;
		}
	}

	now = time(NULL);
	strftime(ri.date, sizeof(ri.date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	if (uname(&un) == 0) {
		snprintf(ri.kernel, sizeof(ri.kernel), "%s", un.release);
		snprintf(ri.machine, sizeof(ri.machine), "%s", un.machine);
	}
	cpu_model(ri.cpu, sizeof(ri.cpu));
	ri.cpus = sysconf(_SC_NPROCESSORS_ONLN);
	yv = yajl_version();
	snprintf(ri.yajl_v, sizeof(ri.yajl_v), "%d.%d.%d", yv / 10000,
		 yv / 100 % 100, yv % 100);

	printf("alog json parsers: parse + visit every value of the edge's "
	       "request bodies; %u rounds, %.0f ms slices, thread CPU time, "
	       "parser order rotated each round; gcc/g++ -O2\n",
	       ri.rounds, ri.slice_ms);
	printf("jansson %s (baseline: json_loadb, JSON_REJECT_DUPLICATES, the "
	       "edge's arena allocator), "
	       "yajl %s, json-c %s, simdjson %s (%s kernel); %s, %ld CPUs, "
	       "kernel %s\n",
	       JANSSON_VERSION, ri.yajl_v, jc_version(), simd_version(),
	       simd_implementation(), ri.cpu, ri.cpus, ri.kernel);

	/* every parser accepts every body and sees what jansson sees */
	for (bi = 0; bi < n_bodies; bi++) {
		struct body *b = &bodies[bi];
		bool ok = true, have_want = false;

		for (pi = 0; pi < N_PARSERS; pi++) {
			struct json_tally t = { 0 };
			char err[ERR_MAX];

			if (parsers[pi].run(parsers[pi].state, b, &t, err) <
			    0) {
				fprintf(stderr,
					"json_bench: %s refused %s: "
					"%s\n",
					parsers[pi].name, b->name, err);
				ok = false;
				continue;
			}
			if (pi == BASELINE) {
				b->want = t;
				have_want = true;
			} else if (have_want && !tally_equal(&t, &b->want)) {
				fprintf(stderr, "json_bench: %s on %s: ",
					parsers[pi].name, b->name);
				tally_print(stderr, &t);
				fprintf(stderr,
					"\n  but %s: ", parsers[BASELINE].name);
				tally_print(stderr, &b->want);
				fputc('\n', stderr);
				ok = false;
			}
		}
		if (!ok) {
			printf("FAIL: body %s: the parsers disagree or refused "
			       "it (see stderr)\n",
			       b->name);
			return 1;
		}
		printf("body %-7s %6zu B: ", b->name, b->len);
		tally_print(stdout, &b->want);
		printf(": all %zu parsers agree\n", N_PARSERS);
	}
	fflush(stdout);

	slice_ns = (uint64_t)(ri.slice_ms * 1e6);
	for (bi = 0; bi < n_bodies; bi++) {
		for (pi = 0; pi < N_PARSERS; pi++) {
			struct cell *ce = &cells[bi][pi];

			if (calibrate(&parsers[pi], &bodies[bi], slice_ns,
				      &ce->iters) < 0)
				return 1;
			ce->cpu_ns = calloc(ri.rounds, sizeof(double));
			ce->wall_ns = calloc(ri.rounds, sizeof(double));
			ce->ratio = calloc(ri.rounds, sizeof(double));
			if (!ce->cpu_ns || !ce->wall_ns || !ce->ratio) {
				fprintf(stderr, "json_bench: out of memory\n");
				return 1;
			}
		}
	}

	busy0 = machine_busy_s();
	self0 = self_cpu_s();
	w0 = clock_ns(CLOCK_MONOTONIC);
	for (r = 0; r < ri.rounds; r++) {
		for (bi = 0; bi < n_bodies; bi++) {
			for (size_t k = 0; k < N_PARSERS; k++) {
				struct cell *ce;
				uint64_t cpu, wall;

				pi = (k + r) % N_PARSERS;
				ce = &cells[bi][pi];
				if (slice(&parsers[pi], &bodies[bi], ce->iters,
					  &cpu, &wall) < 0)
					return 1;
				ce->cpu_ns[r] = (double)cpu / (double)ce->iters;
				ce->wall_ns[r] =
					(double)wall / (double)ce->iters;
			}
			for (pi = 0; pi < N_PARSERS; pi++)
				cells[bi][pi].ratio[r] =
					cells[bi][pi].cpu_ns[r] /
					cells[bi][BASELINE].cpu_ns[r];
		}
	}
	w1 = clock_ns(CLOCK_MONOTONIC);
	self1 = self_cpu_s();
	busy1 = machine_busy_s();
	ri.wall_s = (double)(w1 - w0) / 1e9;
	ri.other_pct = busy0 < 0 || busy1 < 0 ?
			       -1 :
			       ((busy1 - busy0) - (self1 - self0)) / ri.wall_s /
				       (double)ri.cpus * 100;
	if (ri.other_pct < 0 && busy0 >= 0)
		ri.other_pct = 0;

	ratios = calloc(ri.rounds, sizeof(double));
	sorted = calloc(ri.rounds, sizeof(double));
	if (!ratios || !sorted) {
		fprintf(stderr, "json_bench: out of memory\n");
		return 1;
	}
	printf("\nus/body = median over rounds of CPU time per parse + walk; "
	       "MB/s = body bytes / that median (MB = 10^6 B);\n"
	       "x jansson = median over rounds of (time / jansson's time in "
	       "the same round), with its min-max; speedup = 1 / x jansson\n"
	       "other load on the machine during the rounds: %.0f%% of %ld "
	       "CPUs (%.1f s)\n\n",
	       ri.other_pct, ri.cpus, ri.wall_s);
	printf("%-7s %6s  %-15s %9s %8s %9s  %-15s %7s\n", "body", "bytes",
	       "parser", "us/body", "MB/s", "x jansson", "(min-max)",
	       "speedup");
	for (bi = 0; bi < n_bodies; bi++) {
		const struct body *b = &bodies[bi];

		for (pi = 0; pi < N_PARSERS; pi++) {
			struct cell *ce = &cells[bi][pi];
			double dummy;
			char range[32];

			memcpy(sorted, ce->cpu_ns, ri.rounds * sizeof(double));
			stats(sorted, ri.rounds, &ce->cpu_med, &ce->cpu_min,
			      &ce->cpu_max);
			memcpy(sorted, ce->wall_ns, ri.rounds * sizeof(double));
			stats(sorted, ri.rounds, &ce->wall_med, &dummy, &dummy);
			memcpy(ratios, ce->ratio, ri.rounds * sizeof(double));
			stats(ratios, ri.rounds, &ce->ratio_med, &ce->ratio_min,
			      &ce->ratio_max);
			snprintf(range, sizeof(range), "(%.3f-%.3f)",
				 ce->ratio_min, ce->ratio_max);
			printf("%-7s %6zu  %-15s %9.2f %8.1f %9.3f  %-15s "
			       "%6.2fx\n",
			       b->name, b->len, parsers[pi].name,
			       ce->cpu_med / 1e3,
			       (double)b->len / ce->cpu_med * 1e3,
			       ce->ratio_med, range, 1 / ce->ratio_med);
		}
		printf("\n");
	}
	printf("ok: every parser accepted every body and visited the same "
	       "values in every iteration\n");
	if (run_quirks() < 0) {
		fprintf(stderr, "json_bench: out of memory\n");
		return 1;
	}

	if (json_path) {
		if (write_json(json_path, &ri) < 0)
			status = 1;
		else
			printf("wrote %s\n", json_path);
	}
	for (pi = 0; pi < N_PARSERS; pi++)
		parsers[pi].destroy(parsers[pi].state);
	for (bi = 0; bi < n_bodies; bi++) {
		for (pi = 0; pi < N_PARSERS; pi++) {
			free(cells[bi][pi].cpu_ns);
			free(cells[bi][pi].wall_ns);
			free(cells[bi][pi].ratio);
		}
		free(bodies[bi].p);
		free((char *)bodies[bi].name);
	}
	free(ratios);
	free(sorted);
	return status;
}
