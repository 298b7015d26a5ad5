/*
 * writer_ua.h - user agents to browser, OS, device and a device type, for
 * the writer's enrichment step.
 *
 * The rules are uap-core's regexes.yaml (Debian package uap-core), loaded
 * once with libyaml and compiled with PCRE2 (JIT where the platform has
 * it). Parsing walks three ordered lists of regexes, so it costs tens of
 * microseconds; real traffic repeats a few hundred agents, so the writer
 * asks through a bounded cache instead. docs/user-agents.md has the rules,
 * the device-type table and the conformance numbers.
 *
 * Neither a parser nor a cache is thread-safe: the writer owns one of each
 * per thread (matching reuses one scratch area held by the parser).
 */
#ifndef ALOG_WRITER_UA_H
#define ALOG_WRITER_UA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every result field is a NUL-terminated string of at most this minus one bytes. */
#define UA_FIELD_MAX 128

/*
 * Only the first UA_LEN_MAX bytes of an agent are parsed (and cached): the
 * edge stores no more than that, and it bounds the regex work per agent.
 */
#define UA_LEN_MAX 512

/*
 * Limits on regexes.yaml, which is outside input too: the file's size (it
 * is read whole before parsing; uap-core 0.16's is 200 KB), the entries in
 * one list (its longest has 625) and the bytes of one regex (its longest
 * has 2,454). Anything over a limit refuses the file with an error.
 */
#define UA_REGEXES_BYTES_MAX (4 * 1024 * 1024)
#define UA_RULES_MAX 10000
#define UA_REGEX_BYTES_MAX 16384

/* "" when absent; family is "Other" when nothing matched. */
struct ua_agent {
	char family[UA_FIELD_MAX];
	char major[UA_FIELD_MAX];
	char minor[UA_FIELD_MAX];
	char patch[UA_FIELD_MAX];
	char patch_minor[UA_FIELD_MAX];
};

/* family "Other", brand and model "" when nothing matched. */
struct ua_device {
	char family[UA_FIELD_MAX];
	char brand[UA_FIELD_MAX];
	char model[UA_FIELD_MAX];
};

enum ua_device_type {
	UA_DEVICE_DESKTOP = 1,
	UA_DEVICE_MOBILE,
	UA_DEVICE_TABLET,
	UA_DEVICE_BOT,
	UA_DEVICE_OTHER,
};

/*
 * Every string is valid UTF-8 without control bytes, whatever the input
 * was (the agent is cleaned first: invalid UTF-8 becomes '?', control
 * bytes spaces). bot is true exactly when type is UA_DEVICE_BOT.
 */
struct ua_result {
	struct ua_agent browser, os;
	struct ua_device device;
	enum ua_device_type type;
	bool bot;
};

struct ua_parser;
struct ua_cache;

/*
 * Load and compile regexes.yaml. Returns NULL on failure with a message in
 * err naming the file, the line and, for a bad regex, the regex and PCRE2's
 * reason; a file over the limits above, a regex_flag other than 'i' and a
 * replacement holding a control byte are refused too. Caller closes with
 * ua_parser_close.
 */
struct ua_parser *ua_parser_open(const char *regexes_yaml, char *err,
				 size_t errlen);

/* Accepts NULL. */
void ua_parser_close(struct ua_parser *p);

/*
 * How many regexes were loaded and how many of them run as JIT code (the
 * rest fall back to PCRE2's interpreter). Either pointer may be NULL.
 */
void ua_parser_info(const struct ua_parser *p, size_t *regexes,
		    size_t *jit_regexes);

/*
 * For tests only: with use_jit false every match runs in PCRE2's
 * interpreter (PCRE2_NO_JIT), as it does where JIT is unavailable, so the
 * fallback and its limits can be checked against the same cases.
 */
void ua_parser_set_jit(struct ua_parser *p, bool use_jit);

/*
 * Parse one agent, uncached, into *out. ua need not be NUL-terminated and
 * may hold any bytes; len 0 is the empty agent. Only the first UA_LEN_MAX
 * bytes are read, and the result depends on nothing else (a character cut
 * at the end is dropped, wherever the cut was made). Never fails: a regex
 * that hits its match limit (a pathological agent) counts as no match.
 */
void ua_parse(struct ua_parser *p, const char *ua, size_t len,
	      struct ua_result *out);

/* "desktop", "mobile", "tablet", "bot", "other"; "other" for unknown values. */
const char *ua_device_type_name(enum ua_device_type t);

/*
 * A cache of at most `entries` results (0 is taken as 1, more than 2^24
 * as 2^24) in front of parser p, which must outlive it. Keyed by the
 * XXH3-64 of the agent's first UA_LEN_MAX bytes, and those bytes are
 * compared too, so a hash collision cannot return another agent's result. Eviction is CLOCK
 * (second chance). The index is allocated here; a miss allocates one block
 * for the agent and its packed result (about 200 bytes for a browser,
 * freed on eviction), a hit allocates nothing. Returns NULL when out of
 * memory. Caller frees with ua_cache_free (accepts NULL).
 */
struct ua_cache *ua_cache_new(struct ua_parser *p, size_t entries);
void ua_cache_free(struct ua_cache *c);

/*
 * The result for ua, parsed on a miss (if the block for it cannot be
 * allocated, the answer is still right, just not kept). The pointer is
 * borrowed from the cache and valid until the next ua_cache_get,
 * ua_cache_set_hash or ua_cache_free.
 */
const struct ua_result *ua_cache_get(struct ua_cache *c, const char *ua,
				     size_t len);

/* Lookups answered from the cache and lookups that had to parse. */
void ua_cache_stats(const struct ua_cache *c, uint64_t *hits, uint64_t *misses);

/*
 * For tests only: replace the hash function (NULL restores XXH3-64), for
 * example with a constant one so that every agent collides. Empties the
 * cache, since stored hashes no longer mean anything.
 */
void ua_cache_set_hash(struct ua_cache *c,
		       uint64_t (*hash)(const void *data, size_t len));

#endif
