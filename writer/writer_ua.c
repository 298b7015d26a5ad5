/*
 * writer_ua.c - user agents to browser, OS, device and device type, from
 * uap-core's regexes.yaml compiled with PCRE2, with a bounded cache.
 *
 * regexes.yaml holds three ordered lists (user_agent_parsers, os_parsers,
 * device_parsers). For each list the first regex that matches anywhere in
 * the agent wins, and its captures fill the fields, either by position
 * (family = $1, major = $2, ...) or through *_replacement templates with
 * $1..$9 (uap-core's specification.md). Nothing matching gives "Other".
 *
 * The agent is untrusted. It is cut to UA_LEN_MAX bytes and cleaned first
 * (invalid UTF-8 becomes '?', control bytes spaces), so every capture, and
 * so every field handed to PostgreSQL, is valid UTF-8. Because the subject
 * is then known to be valid, the regexes are compiled in UTF mode and
 * matched with PCRE2_NO_UTF_CHECK: '.' and [^;] never split a character.
 * A match limit and a fixed JIT stack bound the work one regex can do on a
 * hostile agent; hitting either counts as no match, and a few such hits
 * end the agent's parse.
 *
 * The device type is our own small rule table on top of uap-core's answer
 * (ua_classify below, docs/user-agents.md).
 */
#include "writer_ua.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <xxhash.h>
#include <yaml.h>

/*
 * Backtracking steps one regex may take on one agent (the limit applies
 * to JIT code too). uap-core bounds its repeats ({0,200} and the like),
 * yet its crawler catch-alls take between 30,000 and 60,000 steps on a few
 * of its own test agents, so the limit sits well above that; reaching it
 * costs a few milliseconds. After UA_MATCH_ERRORS_MAX regexes have hit a
 * limit on one agent, it gets no more tries: a hostile agent costs a few
 * limits' worth of time, not one per regex (over a thousand).
 */
#define UA_MATCH_LIMIT 1000000
#define UA_MATCH_ERRORS_MAX 4
#define UA_DEPTH_LIMIT 1000    /* interpreter only: nested backtrack frames */
#define UA_HEAP_LIMIT_KIB 1024 /* interpreter only */
#define UA_JIT_STACK_MIN (32 * 1024)
#define UA_JIT_STACK_MAX (512 * 1024)

/*
 * Shape limits checked on regexes.yaml's event stream before libyaml
 * builds the document. Nesting: uap-core's file is 3 deep, and libyaml
 * takes time quadratic in the depth of flow collections (a megabyte of
 * '[' kept it busy for over ten minutes). Events: uap-core 0.16 has
 * 9,605; each costs a node of about 100 bytes in the document.
 */
#define UA_YAML_DEPTH_MAX 16
#define UA_YAML_EVENTS_MAX 500000

/* ---- Loading regexes.yaml ---------------------------------------------------- */

enum ua_list {
	UA_LIST_AGENT,
	UA_LIST_OS,
	UA_LIST_DEVICE,
	UA_LIST_N
};

#define UA_SLOTS 5 /* result fields one list fills */

/*
 * Per list: the YAML key, the replacement keys in the order of the result
 * fields, and the capture each field takes when it has no replacement
 * (0: none, the field stays empty).
 */
static const struct ua_list_desc {
	const char *key;
	const char *repl_key[UA_SLOTS];
	int default_group[UA_SLOTS];
} ua_lists[UA_LIST_N] = {
	[UA_LIST_AGENT] = { "user_agent_parsers",
			    { "family_replacement", "v1_replacement",
			      "v2_replacement", "v3_replacement",
			      "v4_replacement" },
			    { 1, 2, 3, 4, 5 } },
	[UA_LIST_OS] = { "os_parsers",
			 { "os_replacement", "os_v1_replacement",
			   "os_v2_replacement", "os_v3_replacement",
			   "os_v4_replacement" },
			 { 1, 2, 3, 4, 5 } },
	/* Device fields: family, brand, model. */
	[UA_LIST_DEVICE] = { "device_parsers",
			     { "device_replacement", "brand_replacement",
			       "model_replacement", NULL, NULL },
			     { 1, 0, 1, 0, 0 } },
};

struct ua_rule {
	pcre2_code *re;
	char *repl[UA_SLOTS]; /* NULL: take default_group */
};

struct ua_parser {
	struct ua_rule *rules[UA_LIST_N];
	size_t nrules[UA_LIST_N];
	size_t jit_rules;
	uint32_t match_options; /* PCRE2_NO_JIT when tests ask for it */
	pcre2_match_data *md;
	pcre2_match_context *mctx;
	pcre2_jit_stack *jit_stack;
};

/* What the loader carries around to name the place of an error. */
struct ua_load {
	const char *path;
	char *err;
	size_t errlen;
	yaml_document_t *doc;
	uint32_t max_captures;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool scalar_is(const yaml_node_t *n, const char *s)
{
	size_t len = strlen(s);

	return n && n->type == YAML_SCALAR_NODE &&
	       n->data.scalar.length == len &&
	       memcmp(n->data.scalar.value, s, len) == 0;
}

static char *scalar_dup(const yaml_node_t *n)
{
	char *s = malloc(n->data.scalar.length + 1);

	if (!s)
		return NULL;
	memcpy(s, n->data.scalar.value, n->data.scalar.length);
	s[n->data.scalar.length] = '\0';
	return s;
}

static int load_rule(struct ua_load *ld, struct ua_parser *p, enum ua_list list,
		     const yaml_node_t *item, struct ua_rule *rule)
{
	const struct ua_list_desc *desc = &ua_lists[list];
	unsigned long line = (unsigned long)item->start_mark.line + 1;
	const yaml_node_t *regex = NULL;
	uint32_t options = PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C;
	uint32_t captures = 0;
	PCRE2_SIZE erroff;
	int errcode;

	if (item->type != YAML_MAPPING_NODE) {
		set_err(ld->err, ld->errlen,
			"%s:%lu: %s entry is not a mapping", ld->path, line,
			desc->key);
		return -EINVAL;
	}
	for (yaml_node_pair_t *pr = item->data.mapping.pairs.start;
	     pr < item->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(ld->doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(ld->doc, pr->value);
		unsigned long kline;
		int slot = -1;

		if (!k || !v || k->type != YAML_SCALAR_NODE ||
		    v->type != YAML_SCALAR_NODE) {
			set_err(ld->err, ld->errlen,
				"%s:%lu: %s entry holds a non-scalar key or value",
				ld->path, line, desc->key);
			return -EINVAL;
		}
		kline = (unsigned long)k->start_mark.line + 1;
		if (scalar_is(k, "regex")) {
			regex = v;
			continue;
		}
		if (scalar_is(k, "regex_flag")) {
			/* The only flag uap-core defines; anything else would
			 * silently change matching, so refuse it. */
			if (!scalar_is(v, "i")) {
				set_err(ld->err, ld->errlen,
					"%s:%lu: unknown regex_flag '%.*s'",
					ld->path, kline,
					(int)v->data.scalar.length,
					(const char *)v->data.scalar.value);
				return -EINVAL;
			}
			options |= PCRE2_CASELESS;
			continue;
		}
		for (int i = 0; i < UA_SLOTS; i++)
			if (desc->repl_key[i] &&
			    scalar_is(k, desc->repl_key[i]))
				slot = i;
		/* Keys for other lists or newer uap-core releases are ignored
		 * rather than refused: they only add information. */
		if (slot < 0 || rule->repl[slot])
			continue;
		/* A YAML escape ("\x01", "\0") could put a control byte into
		 * every field the rule fills; fields promise none. libyaml
		 * has already refused invalid UTF-8. */
		for (size_t i = 0; i < v->data.scalar.length; i++) {
			unsigned char b = v->data.scalar.value[i];

			if (b < 0x20 || b == 0x7f) {
				set_err(ld->err, ld->errlen,
					"%s:%lu: %s holds control byte 0x%02x",
					ld->path, kline, desc->repl_key[slot],
					b);
				return -EINVAL;
			}
		}
		rule->repl[slot] = scalar_dup(v);
		if (!rule->repl[slot]) {
			set_err(ld->err, ld->errlen, "%s: out of memory",
				ld->path);
			return -ENOMEM;
		}
	}
	if (!regex) {
		set_err(ld->err, ld->errlen, "%s:%lu: %s entry has no regex",
			ld->path, line, desc->key);
		return -EINVAL;
	}
	if (regex->data.scalar.length > UA_REGEX_BYTES_MAX) {
		set_err(ld->err, ld->errlen,
			"%s:%lu: regex of %zu bytes, over the limit of %d",
			ld->path, (unsigned long)regex->start_mark.line + 1,
			regex->data.scalar.length, UA_REGEX_BYTES_MAX);
		return -EINVAL;
	}

	rule->re = pcre2_compile(regex->data.scalar.value,
				 regex->data.scalar.length, options, &errcode,
				 &erroff, NULL);
	if (!rule->re) {
		PCRE2_UCHAR msg[256];

		pcre2_get_error_message(errcode, msg, sizeof(msg));
		set_err(ld->err, ld->errlen,
			"%s:%lu: regex '%.*s' does not compile at offset %zu: %s",
			ld->path, (unsigned long)regex->start_mark.line + 1,
			(int)regex->data.scalar.length,
			(const char *)regex->data.scalar.value, (size_t)erroff,
			(const char *)msg);
		return -EINVAL;
	}
	/* Without JIT (an unsupported CPU, or SELinux refusing executable
	 * memory) pcre2_match quietly uses the interpreter instead. */
	if (pcre2_jit_compile(rule->re, PCRE2_JIT_COMPLETE) == 0)
		p->jit_rules++;
	pcre2_pattern_info(rule->re, PCRE2_INFO_CAPTURECOUNT, &captures);
	if (captures > ld->max_captures)
		ld->max_captures = captures;
	return 0;
}

static int load_list(struct ua_load *ld, struct ua_parser *p, enum ua_list list,
		     const yaml_node_t *seq)
{
	size_t n;
	int rc;

	if (seq->type != YAML_SEQUENCE_NODE) {
		set_err(ld->err, ld->errlen, "%s:%lu: %s is not a list",
			ld->path, (unsigned long)seq->start_mark.line + 1,
			ua_lists[list].key);
		return -EINVAL;
	}
	n = (size_t)(seq->data.sequence.items.top -
		     seq->data.sequence.items.start);
	/* Aliases let a small file repeat one big entry many times: the
	 * file size alone does not bound the compiling. */
	if (n > UA_RULES_MAX) {
		set_err(ld->err, ld->errlen,
			"%s:%lu: %s has %zu entries, over the limit of %d",
			ld->path, (unsigned long)seq->start_mark.line + 1,
			ua_lists[list].key, n, UA_RULES_MAX);
		return -EINVAL;
	}
	p->rules[list] = calloc(n ? n : 1, sizeof(struct ua_rule));
	if (!p->rules[list]) {
		set_err(ld->err, ld->errlen, "%s: out of memory", ld->path);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = yaml_document_get_node(
			ld->doc, seq->data.sequence.items.start[i]);

		/* Counted before loading so that close frees a half-built
		 * rule too. */
		p->nrules[list]++;
		rc = load_rule(ld, p, list, item, &p->rules[list][i]);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int load_document(struct ua_load *ld, struct ua_parser *p)
{
	yaml_node_t *root = yaml_document_get_root_node(ld->doc);
	bool seen[UA_LIST_N] = { false };
	int rc;

	if (!root || root->type != YAML_MAPPING_NODE) {
		set_err(ld->err, ld->errlen,
			"%s:%lu: expected a mapping with user_agent_parsers, os_parsers and device_parsers",
			ld->path,
			root ? (unsigned long)root->start_mark.line + 1 : 1ul);
		return -EINVAL;
	}
	for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
	     pr < root->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(ld->doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(ld->doc, pr->value);

		for (int l = 0; l < UA_LIST_N; l++) {
			if (!scalar_is(k, ua_lists[l].key) || seen[l])
				continue;
			seen[l] = true;
			rc = load_list(ld, p, (enum ua_list)l, v);
			if (rc < 0)
				return rc;
		}
	}
	for (int l = 0; l < UA_LIST_N; l++) {
		if (!seen[l]) {
			set_err(ld->err, ld->errlen, "%s: no %s list", ld->path,
				ua_lists[l].key);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * The whole file in a malloc'ed buffer (*len bytes), or NULL with err set.
 * Read up to one byte past UA_REGEXES_BYTES_MAX whatever the file is (a
 * FIFO or /dev/zero has no size to check first), so an oversized one is
 * refused without being held in memory.
 */
static unsigned char *read_capped(const char *path, size_t *len, char *err,
				  size_t errlen)
{
	size_t cap = 256 * 1024, n = 0;
	unsigned char *buf = NULL, *nbuf;
	FILE *f;
	int saved;

	f = fopen(path, "rb");
	if (!f) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		size_t want, got;

		nbuf = realloc(buf, cap);
		if (!nbuf) {
			set_err(err, errlen, "%s: out of memory", path);
			goto out_free_buf;
		}
		buf = nbuf;
		want = cap - n;
		got = fread(buf + n, 1, want, f);
		n += got;
		if (n > UA_REGEXES_BYTES_MAX) {
			set_err(err, errlen,
				"%s: larger than the limit of %d bytes", path,
				UA_REGEXES_BYTES_MAX);
			goto out_free_buf;
		}
		if (got < want) {
			if (ferror(f)) {
				saved = errno;
				set_err(err, errlen, "%s: read: %s", path,
					strerror(saved));
				goto out_free_buf;
			}
			break; /* end of file */
		}
		cap = cap * 2 > UA_REGEXES_BYTES_MAX + 1 ?
			      (size_t)UA_REGEXES_BYTES_MAX + 1 :
			      cap * 2;
	}
	fclose(f);
	*len = n;
	return buf;

out_free_buf:
	free(buf);
	fclose(f);
	return NULL;
}

static void yaml_err(const yaml_parser_t *yp, const char *path, char *err,
		     size_t errlen)
{
	if (yp->error == YAML_MEMORY_ERROR) {
		set_err(err, errlen, "%s: out of memory", path);
		return;
	}
	/* The reader (encoding) sets an offset, not a mark. */
	if (yp->error == YAML_READER_ERROR) {
		set_err(err, errlen, "%s: byte %zu: YAML %s", path,
			yp->problem_offset,
			yp->problem ? yp->problem : "error");
		return;
	}
	set_err(err, errlen, "%s:%lu:%lu: YAML %s%s%s", path,
		(unsigned long)yp->problem_mark.line + 1,
		(unsigned long)yp->problem_mark.column + 1,
		yp->problem ? yp->problem : "error", yp->context ? " " : "",
		yp->context ? yp->context : "");
}

/*
 * Walk the file's events once, refusing syntax errors, nesting deeper
 * than UA_YAML_DEPTH_MAX and more than UA_YAML_EVENTS_MAX events. It stops
 * at the first problem, so a hostile file costs little.
 */
static int yaml_prescan(const unsigned char *text, size_t len, const char *path,
			char *err, size_t errlen)
{
	yaml_parser_t yp;
	yaml_event_t ev;
	size_t events = 0;
	int depth = 0, rc = 0;
	bool end = false;

	if (!yaml_parser_initialize(&yp)) {
		set_err(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&yp, text, len);
	while (!end) {
		if (!yaml_parser_parse(&yp, &ev)) {
			yaml_err(&yp, path, err, errlen);
			rc = yp.error == YAML_MEMORY_ERROR ? -ENOMEM : -EINVAL;
			break;
		}
		end = ev.type == YAML_STREAM_END_EVENT;
		if (ev.type == YAML_SEQUENCE_START_EVENT ||
		    ev.type == YAML_MAPPING_START_EVENT)
			depth++;
		else if (ev.type == YAML_SEQUENCE_END_EVENT ||
			 ev.type == YAML_MAPPING_END_EVENT)
			depth--;
		if (depth > UA_YAML_DEPTH_MAX) {
			set_err(err, errlen,
				"%s:%lu: YAML nested deeper than %d levels",
				path, (unsigned long)ev.start_mark.line + 1,
				UA_YAML_DEPTH_MAX);
			rc = -EINVAL;
		} else if (++events > UA_YAML_EVENTS_MAX) {
			set_err(err, errlen,
				"%s:%lu: YAML of more than %d nodes", path,
				(unsigned long)ev.start_mark.line + 1,
				UA_YAML_EVENTS_MAX);
			rc = -EINVAL;
		}
		yaml_event_delete(&ev);
		if (rc < 0)
			break;
	}
	yaml_parser_delete(&yp);
	return rc;
}

struct ua_parser *ua_parser_open(const char *regexes_yaml, char *err,
				 size_t errlen)
{
	struct ua_load ld = { .path = regexes_yaml,
			      .err = err,
			      .errlen = errlen };
	yaml_parser_t yp;
	yaml_document_t doc;
	struct ua_parser *p;
	unsigned char *text;
	size_t text_len;
	int rc;

	text = read_capped(regexes_yaml, &text_len, err, errlen);
	if (!text)
		return NULL;
	if (yaml_prescan(text, text_len, regexes_yaml, err, errlen) < 0)
		goto out_free_text;
	p = calloc(1, sizeof(*p));
	if (!p) {
		set_err(err, errlen, "%s: out of memory", regexes_yaml);
		goto out_free_text;
	}
	if (!yaml_parser_initialize(&yp)) {
		set_err(err, errlen, "%s: out of memory", regexes_yaml);
		goto out_free_parser;
	}
	yaml_parser_set_input_string(&yp, text, text_len);
	if (!yaml_parser_load(&yp, &doc)) {
		yaml_err(&yp, regexes_yaml, err, errlen);
		goto out_delete_yaml;
	}
	ld.doc = &doc;
	rc = load_document(&ld, p);
	yaml_document_delete(&doc);
	if (rc < 0)
		goto out_delete_yaml;

	/* One scratch area for every match, sized for the widest regex. */
	p->md = pcre2_match_data_create(ld.max_captures + 1, NULL);
	p->mctx = pcre2_match_context_create(NULL);
	p->jit_stack = pcre2_jit_stack_create(UA_JIT_STACK_MIN,
					      UA_JIT_STACK_MAX, NULL);
	if (!p->md || !p->mctx || !p->jit_stack) {
		set_err(err, errlen, "%s: out of memory", regexes_yaml);
		goto out_delete_yaml;
	}
	pcre2_set_match_limit(p->mctx, UA_MATCH_LIMIT);
	pcre2_set_depth_limit(p->mctx, UA_DEPTH_LIMIT);
	pcre2_set_heap_limit(p->mctx, UA_HEAP_LIMIT_KIB);
	pcre2_jit_stack_assign(p->mctx, NULL, p->jit_stack);

	yaml_parser_delete(&yp);
	free(text);
	return p;

out_delete_yaml:
	yaml_parser_delete(&yp);
out_free_parser:
	ua_parser_close(p);
out_free_text:
	free(text);
	return NULL;
}

void ua_parser_close(struct ua_parser *p)
{
	if (!p)
		return;
	for (int l = 0; l < UA_LIST_N; l++) {
		for (size_t i = 0; i < p->nrules[l]; i++) {
			pcre2_code_free(p->rules[l][i].re);
			for (int s = 0; s < UA_SLOTS; s++)
				free(p->rules[l][i].repl[s]);
		}
		free(p->rules[l]);
	}
	pcre2_match_data_free(p->md);
	pcre2_match_context_free(p->mctx);
	pcre2_jit_stack_free(p->jit_stack);
	free(p);
}

void ua_parser_info(const struct ua_parser *p, size_t *regexes,
		    size_t *jit_regexes)
{
	if (regexes)
		*regexes = p->nrules[UA_LIST_AGENT] + p->nrules[UA_LIST_OS] +
			   p->nrules[UA_LIST_DEVICE];
	if (jit_regexes)
		*jit_regexes = p->jit_rules;
}

void ua_parser_set_jit(struct ua_parser *p, bool use_jit)
{
	p->match_options = use_jit ? 0 : PCRE2_NO_JIT;
}

/* ---- Cleaning the agent ------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), 0 if there is none. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) ||
	    (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
		return 0;
	return n;
}

/*
 * Whether s[0..len) is the start of a valid character that the end of the
 * input cut short: a lead byte, then fewer continuation bytes than it
 * needs, within RFC 3629's ranges.
 */
static bool utf8_cut(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	size_t need;

	if (c >= 0xc2 && c <= 0xdf)
		need = 2;
	else if (c >= 0xe0 && c <= 0xef)
		need = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 4;
	else
		return false;
	if (len >= need)
		return false;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return false;
	if (len >= 2 &&
	    ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) ||
	     (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f)))
		return false;
	return true;
}

/*
 * Copy the first UA_LEN_MAX bytes of ua into out (UA_LEN_MAX + 1 bytes)
 * as valid UTF-8: a bad byte becomes '?', a control byte a space (HTTP
 * allows a tab; regexes expect spaces). A character cut short at the end
 * is dropped rather than replaced, whether our limit cut it or an earlier
 * one did (the edge keeps UA_LEN_MAX bytes too): so the answer for an
 * agent depends on its first UA_LEN_MAX bytes alone, which is what the
 * cache keys on. Returns the length.
 */
static size_t ua_clean(const char *ua, size_t len, char *out)
{
	const unsigned char *s = (const unsigned char *)ua;
	size_t i = 0, o = 0;

	if (len > UA_LEN_MAX)
		len = UA_LEN_MAX;
	while (i < len) {
		size_t n = utf8_seq(s + i, len - i);

		if (n == 0 && utf8_cut(s + i, len - i))
			break;
		if (n == 0) {
			out[o++] = '?';
			i++;
		} else if (n == 1) {
			out[o++] = (s[i] < 0x20 || s[i] == 0x7f) ? ' ' :
								   (char)s[i];
			i++;
		} else {
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
		}
	}
	out[o] = '\0';
	return o;
}

/* ---- Matching ---------------------------------------------------------------- */

static bool is_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/*
 * Append src to dst (cap bytes including the NUL, *o bytes used), stopping
 * short at a character boundary when it would not fit: src is valid UTF-8,
 * and so stays the result.
 */
static void append(char *dst, size_t cap, size_t *o, const char *src,
		   size_t len)
{
	if (*o + len >= cap) {
		len = cap - 1 - *o;
		while (len > 0 && ((unsigned char)src[len] & 0xc0) == 0x80)
			len--;
	}
	memcpy(dst + *o, src, len);
	*o += len;
	dst[*o] = '\0';
}

static void group(const char *subj, const PCRE2_SIZE *ov, int rc, int g,
		  const char **s, size_t *len)
{
	*s = "";
	*len = 0;
	/* \K in a lookaround can end a match before its start; uap-core has
	 * none, but an empty value is the safe reading. */
	if (g < 0 || g >= rc || ov[2 * g] == PCRE2_UNSET ||
	    ov[2 * g + 1] < ov[2 * g])
		return;
	*s = subj + ov[2 * g];
	*len = ov[2 * g + 1] - ov[2 * g];
}

/*
 * One result field: the replacement with $0..$9 expanded (a group that did
 * not take part expands to nothing), or the default capture; trimmed, as
 * the specification asks, so an empty capture leaves the field empty.
 */
static void fill(char *dst, const char *repl, int default_group,
		 const char *subj, const PCRE2_SIZE *ov, int rc)
{
	size_t o = 0, start = 0;
	const char *s;
	size_t len;

	dst[0] = '\0';
	if (!repl) {
		group(subj, ov, rc, default_group > 0 ? default_group : -1, &s,
		      &len);
		append(dst, UA_FIELD_MAX, &o, s, len);
	} else {
		for (const char *r = repl; *r;) {
			size_t lit = 0;

			if (r[0] == '$' && r[1] >= '0' && r[1] <= '9') {
				group(subj, ov, rc, r[1] - '0', &s, &len);
				append(dst, UA_FIELD_MAX, &o, s, len);
				r += 2;
				continue;
			}
			/* A literal run at once, so a cut keeps whole
			 * characters. */
			while (r[lit] && !(r[lit] == '$' && r[lit + 1] >= '0' &&
					   r[lit + 1] <= '9'))
				lit++;
			append(dst, UA_FIELD_MAX, &o, r, lit);
			r += lit;
		}
	}
	while (o > 0 && is_space((unsigned char)dst[o - 1]))
		dst[--o] = '\0';
	while (start < o && is_space((unsigned char)dst[start]))
		start++;
	if (start > 0)
		memmove(dst, dst + start, o - start + 1);
}

/*
 * The first rule of a list matching subj fills fields[] and is returned;
 * NULL when none does. A match error (limit reached, JIT stack exhausted)
 * is a non-match: the agent simply gets less information. Once
 * *errors_left such errors have happened for one agent, the agent is
 * hostile and nothing more is tried for it.
 */
static const struct ua_rule *match_list(struct ua_parser *p, enum ua_list list,
					const char *subj, size_t len,
					char *const fields[UA_SLOTS],
					int *errors_left)
{
	const struct ua_list_desc *desc = &ua_lists[list];
	const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(p->md);

	if (*errors_left <= 0)
		return NULL;
	for (size_t i = 0; i < p->nrules[list]; i++) {
		const struct ua_rule *r = &p->rules[list][i];
		int rc = pcre2_match(r->re, (PCRE2_SPTR)subj, len, 0,
				     PCRE2_NO_UTF_CHECK | p->match_options,
				     p->md, p->mctx);

		if (rc == PCRE2_ERROR_NOMATCH || rc == 0)
			continue;
		if (rc < 0) {
			if (--*errors_left <= 0)
				return NULL;
			continue;
		}
		for (int s = 0; s < UA_SLOTS; s++)
			if (fields[s])
				fill(fields[s], r->repl[s],
				     desc->default_group[s], subj, ov, rc);
		return r;
	}
	return NULL;
}

static bool has(const char *s, const char *needle)
{
	return strstr(s, needle) != NULL;
}

static bool starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool starts_any(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (starts(s, *list))
			return true;
	return false;
}

static bool has_any(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (has(s, *list))
			return true;
	return false;
}

/*
 * Lower-case words of agents that are not people, beyond uap-core's
 * "Spider" device rule, which misses HTTP libraries, headless browsers
 * and monitoring. "bot" needs care for Cubot phones (see ua_classify);
 * "java/" and "ruby" are left out: J2ME phones say "Java/ASVM/1.1" and
 * HTC sold a "Ruby".
 */
/* clang-format off */
static const char *const bot_words[] = {
	/* crawlers and previews */
	"bot", "crawl", "spider", "slurp", "scrap", "archiver",
	"facebookexternalhit", "link preview", "uripreview", "bingpreview",
	/* headless browsers and monitoring */
	"headless", "phantomjs", "lighthouse", "pagespeed", "pingdom",
	"uptime", "monitor",
	/* HTTP clients and scanners */
	"curl/", "wget/", "python", "go-http-client", "okhttp", "libwww",
	"httpclient", "http_request", "axios/", "node-fetch", "undici",
	"guzzlehttp", "postmanruntime", "scanner", "zgrab", "masscan",
	NULL
};

/* Television sets, consoles and watches: neither desktop nor handheld. */
static const char *const other_words[] = {
	"smart-tv", "smarttv", "smart tv", "googletv", "google tv",
	"android tv", "appletv", "apple tv", "tvos", "hbbtv", "crkey",
	"web0s", "netcast", "bravia", "roku", "playstation", "xbox",
	"nintendo", "; aft", "watchos", "watch os", NULL
};

static const char *const mobile_os[] = {
	"iOS", "Android", "Windows Phone", "Windows Mobile", "Windows CE",
	"BlackBerry OS", "Symbian", "Nokia Series", "KaiOS", "Firefox OS",
	"Sailfish", "Bada", "BREW", "Brew", "MeeGo", "Maemo", "Ubuntu Touch",
	"webOS", "Tizen", NULL
};

static const char *const desktop_os[] = {
	"Windows", "Mac OS", "Linux", "Ubuntu", "Kubuntu", "Xubuntu",
	"Lubuntu", "Debian", "Fedora", "Red Hat", "CentOS", "Gentoo",
	"Mandriva", "Slackware", "SUSE", "openSUSE", "Mint", "Chrome OS",
	"ChromeOS", "FreeBSD", "OpenBSD", "NetBSD", "BSD", "Solaris",
	"SerenityOS", "Haiku", NULL
};
/* clang-format on */

/*
 * The device type, first rule that applies (docs/user-agents.md): bot,
 * then television/console/watch (other), tablet, mobile, desktop, a
 * device uap-core named (mobile), other. low is the agent in lower case
 * (for the word lists), ua as cleaned.
 */
static enum ua_device_type ua_classify(const char *ua, const char *low,
				       size_t len, const struct ua_result *r)
{
	const char *dev = r->device.family, *os = r->os.family;
	bool mobi = has(ua, "Mobi");

	if (len == 0 || strcmp(dev, "Spider") == 0)
		return UA_DEVICE_BOT;
	for (size_t i = 0; bot_words[i]; i++) {
		const char *w = bot_words[i];

		for (const char *p = low; (p = strstr(p, w)) != NULL; p++)
			if (!(i == 0 && p - low >= 2 &&
			      memcmp(p - 2, "cubot", 5) == 0))
				return UA_DEVICE_BOT;
	}
	if (has_any(low, other_words))
		return UA_DEVICE_OTHER;
	if (starts(dev, "iPad") || has(dev, "Kindle") || has(ua, "Kindle") ||
	    has(ua, "Silk/") || strcmp(dev, "Generic Tablet") == 0 ||
	    strcmp(r->device.brand, "Generic_Android_Tablet") == 0 ||
	    (has(ua, "Tablet") && !has(ua, "Tablet PC")) ||
	    (strcmp(os, "Android") == 0 && !mobi && starts(ua, "Mozilla/")))
		return UA_DEVICE_TABLET;
	if (starts(dev, "iPhone") || starts(dev, "iPod") || mobi ||
	    starts(dev, "Generic Smartphone") ||
	    starts(dev, "Generic Feature Phone") || starts_any(os, mobile_os))
		return UA_DEVICE_MOBILE;
	/* A desktop OS on a device uap-core did not name (or on a Mac): a
	 * named one there is a Windows CE handheld ("HTC Touch", "i-mate"). */
	if (starts_any(os, desktop_os) &&
	    (strcmp(dev, "Other") == 0 ||
	     strcmp(r->device.brand, "Apple") == 0))
		return UA_DEVICE_DESKTOP;
	/* uap-core's device rules are about handsets: one it names that is
	 * none of the above is a phone whose agent gives no OS
	 * ("SAMSUNG-SGH-E250", "NOKIA-7373"), TV boxes aside. */
	if (strcmp(dev, "Other") != 0 && !has(dev, "Inettv") &&
	    strcmp(r->device.brand, "Generic_Inettv") != 0)
		return UA_DEVICE_MOBILE;
	return UA_DEVICE_OTHER;
}

void ua_parse(struct ua_parser *p, const char *ua, size_t len,
	      struct ua_result *out)
{
	char subj[UA_LEN_MAX + 1], low[UA_LEN_MAX + 1];
	char *agent[UA_SLOTS] = { out->browser.family, out->browser.major,
				  out->browser.minor, out->browser.patch,
				  out->browser.patch_minor };
	char *os[UA_SLOTS] = { out->os.family, out->os.major, out->os.minor,
			       out->os.patch, out->os.patch_minor };
	char *device[UA_SLOTS] = { out->device.family, out->device.brand,
				   out->device.model, NULL, NULL };
	size_t n = ua_clean(ua ? ua : "", ua ? len : 0, subj);
	int errors_left = UA_MATCH_ERRORS_MAX;

	memset(out, 0, sizeof(*out));
	if (!match_list(p, UA_LIST_AGENT, subj, n, agent, &errors_left) ||
	    !out->browser.family[0])
		strcpy(out->browser.family, "Other");
	if (!match_list(p, UA_LIST_OS, subj, n, os, &errors_left) ||
	    !out->os.family[0])
		strcpy(out->os.family, "Other");
	if (!match_list(p, UA_LIST_DEVICE, subj, n, device, &errors_left) ||
	    !out->device.family[0])
		strcpy(out->device.family, "Other");

	for (size_t i = 0; i <= n; i++)
		low[i] = (char)((unsigned)(subj[i] - 'A') < 26u ? subj[i] + 32 :
								  subj[i]);
	/* An agent of only spaces is as empty as no agent. */
	while (n > 0 && subj[n - 1] == ' ')
		n--;
	out->type = ua_classify(subj, low, n, out);
	out->bot = out->type == UA_DEVICE_BOT;
}

const char *ua_device_type_name(enum ua_device_type t)
{
	switch (t) {
	case UA_DEVICE_DESKTOP:
		return "desktop";
	case UA_DEVICE_MOBILE:
		return "mobile";
	case UA_DEVICE_TABLET:
		return "tablet";
	case UA_DEVICE_BOT:
		return "bot";
	case UA_DEVICE_OTHER:
		break;
	}
	return "other";
}

/* ---- Cache ------------------------------------------------------------------- */

/*
 * A struct ua_result is 1.7 KB of mostly empty fixed-size strings, and the
 * writer keeps tens of thousands of agents, so an entry holds its agent
 * and result packed in one block of exactly the size they need (about 300
 * bytes for a browser), allocated on a miss and freed on eviction. A hit
 * unpacks the block into the cache's one struct ua_result, which is why
 * the pointer handed out lives only until the next lookup.
 *
 * Entries live in one array; a power-of-two bucket table (twice as many
 * heads as entries) chains them by hash. The CLOCK hand sweeps the array:
 * an entry read since the hand last passed gets a second chance, so agents
 * seen once are evicted before the regulars.
 */
#define UA_FIELDS 13

struct ua_packed {
	uint16_t ua_len;
	uint8_t type;
	uint8_t field_len[UA_FIELDS]; /* each < UA_FIELD_MAX */
	char data[];                  /* agent bytes, then the fields */
};

struct ua_cache_entry {
	uint64_t hash;
	uint32_t next; /* next entry in the bucket, UA_NIL at the end */
	bool referenced;
	struct ua_packed *blob; /* NULL: entry free */
};

#define UA_NIL UINT32_MAX
#define UA_CACHE_ENTRIES_MAX (1u << 24)

struct ua_cache {
	struct ua_parser *p;
	uint64_t (*hash)(const void *data, size_t len);
	struct ua_cache_entry *e;
	uint32_t *bucket;
	size_t n, used, hand, mask;
	uint64_t hits, misses;
	struct ua_result out; /* what ua_cache_get hands out */
};

_Static_assert(UA_FIELD_MAX <= 256, "field lengths are packed in a byte");
_Static_assert(UA_LEN_MAX <= UINT16_MAX, "agent length is packed in 16 bits");

/* The result's strings in packing order. */
static void result_fields(struct ua_result *r, char *f[UA_FIELDS])
{
	char *all[UA_FIELDS] = {
		r->browser.family,
		r->browser.major,
		r->browser.minor,
		r->browser.patch,
		r->browser.patch_minor,
		r->os.family,
		r->os.major,
		r->os.minor,
		r->os.patch,
		r->os.patch_minor,
		r->device.family,
		r->device.brand,
		r->device.model,
	};

	memcpy(f, all, sizeof(all));
}

static struct ua_packed *pack(const char *ua, size_t len, struct ua_result *r)
{
	char *f[UA_FIELDS];
	size_t flen[UA_FIELDS], total = len, o = len;
	struct ua_packed *b;

	result_fields(r, f);
	for (int i = 0; i < UA_FIELDS; i++) {
		flen[i] = strlen(f[i]);
		total += flen[i];
	}
	b = malloc(sizeof(*b) + total);
	if (!b)
		return NULL;
	b->ua_len = (uint16_t)len;
	b->type = (uint8_t)r->type;
	memcpy(b->data, ua, len);
	for (int i = 0; i < UA_FIELDS; i++) {
		b->field_len[i] = (uint8_t)flen[i];
		memcpy(b->data + o, f[i], flen[i]);
		o += flen[i];
	}
	return b;
}

static void unpack(const struct ua_packed *b, struct ua_result *r)
{
	char *f[UA_FIELDS];
	size_t o = b->ua_len;

	result_fields(r, f);
	for (int i = 0; i < UA_FIELDS; i++) {
		memcpy(f[i], b->data + o, b->field_len[i]);
		f[i][b->field_len[i]] = '\0';
		o += b->field_len[i];
	}
	r->type = (enum ua_device_type)b->type;
	r->bot = r->type == UA_DEVICE_BOT;
}

static uint64_t ua_xxh3(const void *data, size_t len)
{
	return XXH3_64bits(data, len);
}

static void cache_reset(struct ua_cache *c)
{
	for (size_t i = 0; i <= c->mask; i++)
		c->bucket[i] = UA_NIL;
	for (size_t i = 0; i < c->n; i++) {
		free(c->e[i].blob);
		c->e[i].blob = NULL;
	}
	c->used = 0;
	c->hand = 0;
}

struct ua_cache *ua_cache_new(struct ua_parser *p, size_t entries)
{
	struct ua_cache *c = calloc(1, sizeof(*c));
	size_t nb = 1;

	if (!c)
		return NULL;
	if (entries == 0)
		entries = 1;
	if (entries > UA_CACHE_ENTRIES_MAX)
		entries = UA_CACHE_ENTRIES_MAX;
	while (nb < 2 * entries)
		nb <<= 1;
	c->p = p;
	c->hash = ua_xxh3;
	c->n = entries;
	c->mask = nb - 1;
	c->e = calloc(entries, sizeof(*c->e));
	c->bucket = malloc(nb * sizeof(*c->bucket));
	if (!c->e || !c->bucket) {
		ua_cache_free(c);
		return NULL;
	}
	cache_reset(c);
	return c;
}

void ua_cache_free(struct ua_cache *c)
{
	if (!c)
		return;
	if (c->e)
		for (size_t i = 0; i < c->n; i++)
			free(c->e[i].blob);
	free(c->e);
	free(c->bucket);
	free(c);
}

void ua_cache_set_hash(struct ua_cache *c,
		       uint64_t (*hash)(const void *data, size_t len))
{
	c->hash = hash ? hash : ua_xxh3;
	cache_reset(c);
}

static void cache_unlink(struct ua_cache *c, uint32_t idx)
{
	uint32_t *link = &c->bucket[c->e[idx].hash & c->mask];

	while (*link != idx) {
		/* Every used entry is on its bucket's chain. */
		if (*link == UA_NIL)
			abort();
		link = &c->e[*link].next;
	}
	*link = c->e[idx].next;
}

/*
 * The entry to fill next, emptied: a never-used one, else the first the
 * hand finds unreferenced (at most one full sweep clearing marks).
 */
static uint32_t cache_victim(struct ua_cache *c)
{
	struct ua_cache_entry *e;
	uint32_t idx;

	if (c->used < c->n)
		return (uint32_t)c->used++;
	for (;;) {
		idx = (uint32_t)c->hand;
		e = &c->e[idx];
		c->hand = c->hand + 1 == c->n ? 0 : c->hand + 1;
		/* An entry whose block could not be allocated is free. */
		if (!e->blob)
			return idx;
		if (!e->referenced)
			break;
		e->referenced = false;
	}
	cache_unlink(c, idx);
	free(e->blob);
	e->blob = NULL;
	return idx;
}

const struct ua_result *ua_cache_get(struct ua_cache *c, const char *ua,
				     size_t len)
{
	struct ua_cache_entry *e;
	uint64_t h;
	uint32_t idx;

	/* ua_parse reads no further, so neither does the key. */
	if (len > UA_LEN_MAX)
		len = UA_LEN_MAX;
	if (!ua || len == 0) {
		ua = "";
		len = 0;
	}
	h = c->hash(ua, len);
	for (idx = c->bucket[h & c->mask]; idx != UA_NIL; idx = e->next) {
		e = &c->e[idx];
		if (e->hash == h && e->blob->ua_len == len &&
		    memcmp(e->blob->data, ua, len) == 0) {
			e->referenced = true;
			c->hits++;
			unpack(e->blob, &c->out);
			return &c->out;
		}
	}
	c->misses++;
	ua_parse(c->p, ua, len, &c->out);
	idx = cache_victim(c);
	e = &c->e[idx];
	/* Out of memory: answer uncached, the entry stays free. */
	e->blob = pack(ua, len, &c->out);
	if (!e->blob)
		return &c->out;
	e->hash = h;
	e->referenced = false;
	e->next = c->bucket[h & c->mask];
	c->bucket[h & c->mask] = idx;
	return &c->out;
}

void ua_cache_stats(const struct ua_cache *c, uint64_t *hits, uint64_t *misses)
{
	if (hits)
		*hits = c->hits;
	if (misses)
		*misses = c->misses;
}
