/*
 * fuzz_ua.c - libFuzzer target for the writer's user-agent parser and its
 * cache (writer/writer_ua.c). The input, any bytes of any length, is the
 * agent. It is parsed uncached, then looked up twice in a 64-entry cache
 * and once in an 8-entry cache whose hash makes every agent collide (the
 * agent bytes, not the hash, must tell entries apart). Checked, as
 * writer_ua.h promises: every field NUL-terminated within UA_FIELD_MAX,
 * valid UTF-8 without control bytes, families never empty, a type inside
 * the enum with bot set exactly for bots; every cached answer equal to the
 * uncached one, the second lookup a hit; and an agent longer than
 * UA_LEN_MAX parsed as its first UA_LEN_MAX bytes.
 *
 * The caches outlive single inputs so that eviction is exercised too. The
 * parser's match limits keep one input to milliseconds even for agents
 * built to make a regex backtrack.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "writer_ua.h"
#include "fuzz_utf8.h"

#define REGEXES_YAML "/usr/share/uap-core/regexes.yaml"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ua_parser *parser;
static struct ua_cache *cache, *collide;

static uint64_t same_hash(const void *data, size_t len)
{
	(void)data;
	(void)len;
	return 42;
}

/* Opened on the first input: replay_main.c calls no initializer. */
static void setup(void)
{
	char err[512];
	size_t regexes, jit;

	parser = ua_parser_open(REGEXES_YAML, err, sizeof(err));
	if (!parser) {
		fprintf(stderr, "fuzz_ua: %s\n", err);
		abort();
	}
	ua_parser_info(parser, &regexes, &jit);
	/* The log should show the JIT at work: the interpreter is a
	 * fallback, and fuzzing it alone would miss the JIT's code paths. */
	fprintf(stderr, "fuzz_ua: %zu regexes, %zu as JIT code\n", regexes,
		jit);
	cache = ua_cache_new(parser, 64);
	collide = ua_cache_new(parser, 8);
	if (!cache || !collide)
		abort();
	ua_cache_set_hash(collide, same_hash);
}

static void check_field(const char *f, bool nonempty)
{
	const char *end = memchr(f, '\0', UA_FIELD_MAX);

	if (!end || (nonempty && end == f) ||
	    !utf8_ok((const unsigned char *)f, (size_t)(end - f)))
		abort();
	for (const char *p = f; p < end; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			abort();
}

static void check_result(const struct ua_result *r)
{
	check_field(r->browser.family, true);
	check_field(r->browser.major, false);
	check_field(r->browser.minor, false);
	check_field(r->browser.patch, false);
	check_field(r->browser.patch_minor, false);
	check_field(r->os.family, true);
	check_field(r->os.major, false);
	check_field(r->os.minor, false);
	check_field(r->os.patch, false);
	check_field(r->os.patch_minor, false);
	check_field(r->device.family, true);
	check_field(r->device.brand, false);
	check_field(r->device.model, false);
	if (r->type < UA_DEVICE_DESKTOP || r->type > UA_DEVICE_OTHER ||
	    r->bot != (r->type == UA_DEVICE_BOT))
		abort();
}

/* Fields compared up to their NUL: what follows it is not part of the
 * answer (a cache hit unpacks into a reused struct). Both are checked. */
static bool same_field(const char *a, const char *b)
{
	return memcmp(a, b, strlen(a) + 1) == 0;
}

static bool same_result(const struct ua_result *a, const struct ua_result *b)
{
	return same_field(a->browser.family, b->browser.family) &&
	       same_field(a->browser.major, b->browser.major) &&
	       same_field(a->browser.minor, b->browser.minor) &&
	       same_field(a->browser.patch, b->browser.patch) &&
	       same_field(a->browser.patch_minor, b->browser.patch_minor) &&
	       same_field(a->os.family, b->os.family) &&
	       same_field(a->os.major, b->os.major) &&
	       same_field(a->os.minor, b->os.minor) &&
	       same_field(a->os.patch, b->os.patch) &&
	       same_field(a->os.patch_minor, b->os.patch_minor) &&
	       same_field(a->device.family, b->device.family) &&
	       same_field(a->device.brand, b->device.brand) &&
	       same_field(a->device.model, b->device.model) &&
	       a->type == b->type && a->bot == b->bot;
}

/* A cached lookup: checked, equal to the uncached answer. */
static void check_cached(struct ua_cache *c, const char *ua, size_t len,
			 const struct ua_result *want)
{
	const struct ua_result *got = ua_cache_get(c, ua, len);

	check_result(got);
	if (!same_result(got, want))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ua_result r, cut;
	const char *ua = (const char *)data;
	uint64_t hits, misses, hits2, misses2;

	if (!parser)
		setup();

	/* Fresh garbage each time, so an unwritten field cannot pass on
	 * what an earlier input left. */
	memset(&r, 0xa5, sizeof(r));
	ua_parse(parser, ua, size, &r);
	check_result(&r);

	if (size > UA_LEN_MAX) {
		memset(&cut, 0x5a, sizeof(cut));
		ua_parse(parser, ua, UA_LEN_MAX, &cut);
		if (!same_result(&r, &cut))
			abort();
	}

	check_cached(cache, ua, size, &r);
	ua_cache_stats(cache, &hits, &misses);
	check_cached(cache, ua, size, &r);
	ua_cache_stats(cache, &hits2, &misses2);
	if (hits2 != hits + 1 || misses2 != misses)
		abort();

	check_cached(collide, ua, size, &r);
	return 0;
}
