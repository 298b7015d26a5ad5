/*
 * edge_event.c - request bodies to events for every ingest endpoint.
 *
 * The body is parsed once by jansson (which validates UTF-8 and refuses
 * NUL in strings and duplicate keys); after a cheap nesting pre-scan so a
 * deep body never reaches the parser's recursion. Events borrow their
 * strings from the JSON tree, which the result owns; the only other
 * allocations are the compact JSON of properties and device extras, and
 * one block per request holding the state, the events and a scratch area
 * for percent-decoded utm_* values.
 */
#include "edge_event.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define BATCH_EVENTS_DEFAULT 1000
#define DEPTH_DEFAULT 32
#define DUMPS_PER_EVENT 2  /* props, device extra */
#define VALUE_ABS_MAX 9e12 /* x 1e6 still fits an int64 */

struct parse_state {
	json_t *root;
	char **dumps; /* compact JSON we own, freed with the result */
	size_t n_dumps, dumps_max;
	size_t n;                            /* events */
	char scratch[ALOG_EVENT_STRING_MAX]; /* decoded utm_* (one url) */
	size_t scratch_used;
	struct alog_event events[];
};

struct ctx {
	struct parse_state *st;
	struct edge_parse_error *err;
	const struct edge_event_limits *lim;
	struct alog_str *site_hint;
	char prefix[48]; /* client's path to the current object */
	size_t prefix_len;
};

static void prefix_push(struct ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void prefix_push(struct ctx *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(c->prefix + c->prefix_len,
		      sizeof(c->prefix) - c->prefix_len, fmt, ap);
	va_end(ap);
	if (n > 0)
		c->prefix_len += (size_t)n;
	if (c->prefix_len >= sizeof(c->prefix))
		c->prefix_len = sizeof(c->prefix) - 1;
}

/* prefix_push without printf, for the per-event prefixes: n bytes of p,
 * cut where the prefix is full as vsnprintf would. */
static void prefix_push_bytes(struct ctx *c, const char *p, size_t n)
{
	size_t room = sizeof(c->prefix) - 1 - c->prefix_len;

	if (n > room)
		n = room;
	memcpy(c->prefix + c->prefix_len, p, n);
	c->prefix_len += n;
	c->prefix[c->prefix_len] = '\0';
}

/* "key." */
static void prefix_push_key(struct ctx *c, const char *key)
{
	prefix_push_bytes(c, key, strlen(key));
	prefix_push_bytes(c, ".", 1);
}

/* "name[i]." */
static void prefix_push_index(struct ctx *c, const char *name, size_t i)
{
	char digits[24];
	size_t n = sizeof(digits);

	do
		digits[--n] = (char)('0' + i % 10);
	while ((i /= 10) > 0);
	prefix_push_bytes(c, name, strlen(name));
	prefix_push_bytes(c, "[", 1);
	prefix_push_bytes(c, digits + n, sizeof(digits) - n);
	prefix_push_bytes(c, "].", 2);
}

static void prefix_pop(struct ctx *c, size_t len)
{
	c->prefix_len = len;
	c->prefix[len] = '\0';
}

static int fail(struct ctx *c, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Fill the error for field (under the current prefix); returns -EINVAL. */
static int fail(struct ctx *c, const char *field, const char *fmt, ...)
{
	va_list ap;
	size_t plen = c->prefix_len;

	/* "events[3]." names "events[3]" when the whole object is meant. */
	if (!field[0] && plen > 0 && c->prefix[plen - 1] == '.')
		plen--;
	snprintf(c->err->field, sizeof(c->err->field), "%.*s%s", (int)plen,
		 c->prefix, field);
	va_start(ap, fmt);
	vsnprintf(c->err->message, sizeof(c->err->message), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/*
 * Deepest nesting of arrays and objects in p[0..len), by a scan that only
 * tracks strings: malformed input is the parser's to refuse afterwards.
 */
static size_t json_depth(const char *p, size_t len)
{
	const char *s = p, *end = p + len;
	size_t depth = 0, max = 0;

	while (s < end) {
		char ch = *s++;

		if (ch == '"') {
			/* To the next quote after an even run of
			 * backslashes (memchr: strings are most bytes). */
			for (;;) {
				const char *q = memchr(s, '"', (size_t)(end - s));
				const char *b;

				if (!q)
					return max;
				for (b = q; b > s && b[-1] == '\\'; b--)
					;
				s = q + 1;
				if ((q - b) % 2 == 0)
					break;
			}
		} else if (ch == '{' || ch == '[') {
			if (++depth > max)
				max = depth;
		} else if ((ch == '}' || ch == ']') && depth > 0) {
			depth--;
		}
	}
	return max;
}

/* Parse text into a tree; on error fill the error naming field. */
static int load_json(struct ctx *c, const char *field, const char *p,
		     size_t len, json_t **out)
{
	json_error_t jerr;
	size_t depth_max = c->lim->body_depth_max;

	if (json_depth(p, len) > depth_max)
		return fail(c, field, "JSON nested deeper than %zu levels",
			    depth_max);
	*out = json_loadb(p, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!*out)
		return fail(c, field,
			    "invalid JSON: %.100s (line %d, column %d)",
			    jerr.text, jerr.line, jerr.column);
	return 0;
}

/* An optional member is absent when missing or null. */
static json_t *member(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_null(v) ? NULL : v;
}

/*
 * A member that has a long and a short name (Plausible: "name" / "n").
 * Sets *key to the name the client used; both given is an error.
 */
static int member2(struct ctx *c, json_t *obj, const char *lkey,
		   const char *skey, json_t **v, const char **key)
{
	json_t *l = member(obj, lkey), *s = member(obj, skey);

	if (l && s)
		return fail(c, skey, "must not be given with %s", lkey);
	*v = l ? l : s;
	*key = s ? skey : lkey; /* a missing one is named by its long name */
	return 0;
}

/* A string value: empty counts as absent; required ones must be there. */
static int str_value(struct ctx *c, json_t *v, const char *field, bool required,
		     struct alog_str *out)
{
	size_t len;

	out->p = NULL;
	out->len = 0;
	if (!v)
		return required ? fail(c, field, "is required") : 0;
	if (!json_is_string(v))
		return fail(c, field, "must be a string");
	len = json_string_length(v);
	if (len > ALOG_EVENT_STRING_MAX)
		return fail(c, field, "too long (max %d bytes)",
			    ALOG_EVENT_STRING_MAX);
	if (len == 0)
		return required ? fail(c, field, "must not be empty") : 0;
	out->p = json_string_value(v);
	out->len = len;
	return 0;
}

static int get_str(struct ctx *c, json_t *obj, const char *key, bool required,
		   struct alog_str *out)
{
	return str_value(c, member(obj, key), key, required, out);
}

/* An integer in [0, max]; *present false when absent. */
static int get_uint(struct ctx *c, json_t *obj, const char *key, json_int_t max,
		    bool *present, json_int_t *out)
{
	json_t *v = member(obj, key);

	*present = false;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > max)
		return fail(c, key, "must be an integer from 0 to %lld",
			    (long long)max);
	*present = true;
	*out = json_integer_value(v);
	return 0;
}

static int get_timestamp(struct ctx *c, json_t *obj, struct alog_event *e)
{
	json_t *v = member(obj, "timestamp");

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return fail(
			c, "timestamp",
			"must be a non-negative integer (ms since the epoch)");
	e->client_ms = (uint64_t)json_integer_value(v);
	return 0;
}

/*
 * A per-thread arena for jansson (nginx's pools, STYLE.md "no hidden
 * allocation per event"): a JSON tree is a malloc per node, which was a
 * sixth of a batch request's CPU. Once edge_json_use_arena() installed the
 * allocator, a thread that parses bodies bump-allocates from its own 1 MiB
 * block, reset when no parse result of that thread is alive; frees of
 * arena memory are no-ops. What does not fit, and every other thread's
 * jansson use (the config), goes to malloc as before.
 */
#define JSON_ARENA_BYTES (1u << 20)

static __thread struct {
	char *base;
	size_t used;
	unsigned live; /* parse results not yet freed on this thread */
	bool failed;   /* could not get a block: malloc only */
} json_arena;
static bool json_arena_on;

static void *arena_malloc(size_t n)
{
	size_t a = (n + 15) & ~(size_t)15;

	if (json_arena_on && !json_arena.base && !json_arena.failed) {
		json_arena.base = malloc(JSON_ARENA_BYTES);
		json_arena.failed = json_arena.base == NULL;
	}
	if (json_arena.base && a >= n &&
	    a <= JSON_ARENA_BYTES - json_arena.used) {
		void *p = json_arena.base + json_arena.used;

		json_arena.used += a;
		return p;
	}
	return malloc(n);
}

static void arena_free(void *p)
{
	char *c = p;

	if (json_arena.base && c >= json_arena.base &&
	    c < json_arena.base + JSON_ARENA_BYTES)
		return;
	free(p);
}

void edge_json_use_arena(void)
{
#if defined(__SANITIZE_ADDRESS__)
	/* Keep every JSON node a real allocation where ASan can see a use
	 * after free; the arena would hide it. */
	return;
#endif
	json_arena_on = true;
	json_set_alloc_funcs(arena_malloc, arena_free);
}

/* Free what json_dumps returned, through whichever allocator made it. */
static void json_text_free(char *text)
{
	json_free_t f;

	json_get_alloc_funcs(NULL, &f);
	f(text);
}

/* Keep text (compact JSON from jansson) with the result; out borrows it. */
static int keep_dump(struct ctx *c, const char *field, char *text,
		     struct alog_str *out)
{
	size_t len;

	if (!text)
		return -ENOMEM;
	len = strlen(text);
	if (len > ALOG_EVENT_JSON_MAX) {
		json_text_free(text);
		return fail(c, field, "too long (max %u bytes as compact JSON)",
			    ALOG_EVENT_JSON_MAX);
	}
	if (c->st->n_dumps == c->st->dumps_max) { /* cannot happen */
		json_text_free(text);
		return -ENOMEM;
	}
	c->st->dumps[c->st->n_dumps++] = text;
	out->p = text;
	out->len = len;
	return 0;
}

/* An object member stored as compact JSON; {} counts as absent. */
static int get_object_json(struct ctx *c, json_t *obj, const char *key,
			   struct alog_str *out)
{
	json_t *v = member(obj, key);

	out->p = NULL;
	out->len = 0;
	if (!v)
		return 0;
	if (!json_is_object(v))
		return fail(c, key, "must be an object");
	if (json_object_size(v) == 0)
		return 0;
	return keep_dump(c, key, json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS),
			 out);
}

/* siteId of alog bodies: one per request; batch elements must agree. */
static int take_site_hint(struct ctx *c, json_t *obj, const char *key)
{
	struct alog_str s;
	int rc = get_str(c, obj, key, false, &s);

	if (rc < 0 || s.len == 0)
		return rc;
	if (c->site_hint->len == 0) {
		*c->site_hint = s;
		return 0;
	}
	if (s.len != c->site_hint->len || memcmp(s.p, c->site_hint->p, s.len))
		return fail(c, key, "differs from the request's siteId");
	return 0;
}

static void event_init(struct alog_event *e, enum alog_event_kind kind,
		       enum alog_event_source source)
{
	memset(e, 0, sizeof(*e));
	e->kind = (uint8_t)kind;
	e->source = (uint8_t)source;
	memset(e->currency, ' ', sizeof(e->currency));
}

static void set_name(struct alog_event *e, const char *name)
{
	e->name.p = name;
	e->name.len = strlen(name);
}

/* The fields the body gives must leave room for what the caller adds. */
static int check_size(struct ctx *c, const struct alog_event *e)
{
	size_t n = alog_event_encoded_bytes(e);

	if (n > ALOG_EVENT_BYTES_MAX - EDGE_EVENT_RESERVE_BYTES)
		return fail(c, "",
			    "event too large (%zu bytes encoded, max %u)", n,
			    ALOG_EVENT_BYTES_MAX - EDGE_EVENT_RESERVE_BYTES);
	return 0;
}

/* Value in millionths; amounts beyond +-9e12 or not finite are refused. */
static bool micros_from_double(double v, int64_t *out)
{
	double x;

	if (!(v >= -VALUE_ABS_MAX && v <= VALUE_ABS_MAX)) /* also NaN */
		return false;
	x = v * 1e6;
	*out = (int64_t)(x < 0 ? x - 0.5 : x + 0.5);
	return true;
}

static bool micros_from_json(json_t *v, int64_t *out)
{
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);

		if (i < -(json_int_t)VALUE_ABS_MAX ||
		    i > (json_int_t)VALUE_ABS_MAX)
			return false;
		*out = (int64_t)i * 1000000;
		return true;
	}
	return json_is_real(v) && micros_from_double(json_real_value(v), out);
}

/* A decimal number as a string ("12.50"): no hex, inf, nan or spaces. */
static bool micros_from_string(const char *s, size_t len, int64_t *out)
{
	char buf[64], *end;
	size_t i = 0, digits = 0;

	if (len == 0 || len >= sizeof(buf))
		return false;
	if (s[i] == '-' || s[i] == '+')
		i++;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
		digits++;
	if (i < len && s[i] == '.')
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
	if (i != len || digits == 0)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return micros_from_double(strtod(buf, &end), out) && end == buf + len;
}

/* A 3-letter ISO 4217 code, upper-cased into cur. */
static int currency_value(struct ctx *c, json_t *v, const char *field,
			  char cur[3])
{
	const char *s;

	if (!json_is_string(v))
		return fail(c, field, "must be a string");
	s = json_string_value(v);
	if (json_string_length(v) != 3)
		goto bad;
	for (int i = 0; i < 3; i++) {
		char ch = s[i];

		if (ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		if (ch < 'A' || ch > 'Z')
			goto bad;
		cur[i] = ch;
	}
	return 0;
bad:
	return fail(c, field, "must be a 3-letter ISO 4217 currency code");
}

/* Host of an absolute URL ("https://user@Host:8080/p" -> "Host"). */
static void host_from_url(struct alog_str url, struct alog_str *host)
{
	const char *p = url.p, *end, *h, *he;
	size_t i = 0;

	host->p = NULL;
	host->len = 0;
	if (url.len == 0)
		return;
	end = p + url.len;
	while (i < url.len &&
	       ((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
		(i > 0 && ((p[i] >= '0' && p[i] <= '9') || p[i] == '+' ||
			   p[i] == '-' || p[i] == '.'))))
		i++;
	if (i == 0 || url.len - i < 3 || memcmp(p + i, "://", 3) != 0)
		return;
	h = p + i + 3;
	he = h;
	while (he < end && *he != '/' && *he != '?' && *he != '#')
		he++;
	for (const char *q = he; q > h; q--) /* drop userinfo */
		if (q[-1] == '@') {
			h = q;
			break;
		}
	if (h < he && *h == '[') { /* IPv6 literal */
		const char *rb = memchr(h, ']', (size_t)(he - h));

		if (!rb)
			return;
		h++;
		he = rb;
	} else {
		const char *colon = memchr(h, ':', (size_t)(he - h));

		if (colon)
			he = colon;
	}
	if (he > h) {
		host->p = h;
		host->len = (size_t)(he - h);
	}
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/*
 * Percent-decode (and '+' to space) v into the scratch area. A value that
 * does not decode to UTF-8 without NUL (a Latin-1 %E9, a %00) is kept as
 * sent, which is valid: it is part of the URL.
 */
static struct alog_str decode_query_value(struct ctx *c, const char *v,
					  size_t len)
{
	char *out = c->st->scratch + c->st->scratch_used;
	size_t n = 0;
	struct alog_str r = { v, len };

	if (len > sizeof(c->st->scratch) - c->st->scratch_used)
		return r; /* cannot happen: values are parts of one URL */
	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (v[i] == '+') {
			out[n++] = ' ';
		} else if (v[i] == '%' && len - i >= 3 &&
			   (hi = hexval(v[i + 1])) >= 0 &&
			   (lo = hexval(v[i + 2])) >= 0) {
			out[n++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[n++] = v[i];
		}
	}
	if (alog_event_utf8_prefix(out, n, n) != n)
		return r;
	c->st->scratch_used += n;
	r.p = out;
	r.len = n;
	return r;
}

/* utm_* parameters of the URL's query string; the first of each wins. */
static void utm_from_url(struct ctx *c, struct alog_event *e)
{
	static const char *const keys[ALOG_UTM_COUNT] = {
		[ALOG_UTM_SOURCE] = "utm_source",
		[ALOG_UTM_MEDIUM] = "utm_medium",
		[ALOG_UTM_CAMPAIGN] = "utm_campaign",
		[ALOG_UTM_CONTENT] = "utm_content",
		[ALOG_UTM_TERM] = "utm_term",
	};
	const char *p, *end;

	if (e->url.len == 0)
		return;
	p = memchr(e->url.p, '?', e->url.len);
	if (!p)
		return;
	end = memchr(p, '#', (size_t)(e->url.p + e->url.len - p));
	if (!end)
		end = e->url.p + e->url.len;
	for (p++; p < end;) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pe = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(pe - p));

		if (eq && eq + 1 < pe) {
			size_t klen = (size_t)(eq - p);

			for (int k = 0; k < ALOG_UTM_COUNT; k++) {
				if (e->utm[k].len != 0 ||
				    strlen(keys[k]) != klen ||
				    memcmp(p, keys[k], klen) != 0)
					continue;
				e->utm[k] = decode_query_value(
					c, eq + 1, (size_t)(pe - eq - 1));
				break;
			}
		}
		p = pe + 1;
	}
}

/* clientDevice: known keys to fields, the rest to device_extra. */
static int parse_client_device(struct ctx *c, json_t *obj, struct alog_event *e)
{
	static const char *const known[] = {
		"screenWidth",    "screenHeight", "viewportWidth",
		"viewportHeight", "language",     "timezone",
		"touchPoints",
	};
	json_t *d = member(obj, "clientDevice"), *extra;
	size_t saved = c->prefix_len;
	bool sw, sh, vw, vh, tp;
	json_int_t v[5] = { 0 };
	int rc;

	if (!d)
		return 0;
	if (!json_is_object(d))
		return fail(c, "clientDevice", "must be an object");
	prefix_push(c, "clientDevice.");
	if ((rc = get_uint(c, d, "screenWidth", UINT16_MAX, &sw, &v[0])) ||
	    (rc = get_uint(c, d, "screenHeight", UINT16_MAX, &sh, &v[1])) ||
	    (rc = get_uint(c, d, "viewportWidth", UINT16_MAX, &vw, &v[2])) ||
	    (rc = get_uint(c, d, "viewportHeight", UINT16_MAX, &vh, &v[3])) ||
	    (rc = get_uint(c, d, "touchPoints", UINT8_MAX, &tp, &v[4])) ||
	    (rc = get_str(c, d, "language", false, &e->language)) ||
	    (rc = get_str(c, d, "timezone", false, &e->timezone)))
		return rc;
	if (sw != sh)
		return fail(c, sw ? "screenHeight" : "screenWidth",
			    "is required with %s",
			    sw ? "screenWidth" : "screenHeight");
	if (vw != vh)
		return fail(c, vw ? "viewportHeight" : "viewportWidth",
			    "is required with %s",
			    vw ? "viewportWidth" : "viewportHeight");
	e->has_screen = sw;
	e->screen_w = (uint16_t)v[0];
	e->screen_h = (uint16_t)v[1];
	e->has_viewport = vw;
	e->viewport_w = (uint16_t)v[2];
	e->viewport_h = (uint16_t)v[3];
	e->has_touch_points = tp;
	e->touch_points = (uint8_t)v[4];
	prefix_pop(c, saved);

	extra = json_copy(d); /* shallow: values stay shared with the tree */
	if (!extra)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		json_object_del(extra, known[i]);
	rc = 0;
	if (json_object_size(extra) > 0)
		rc = keep_dump(c, "clientDevice",
			       json_dumps(extra, JSON_COMPACT | JSON_SORT_KEYS),
			       &e->device_extra);
	json_decref(extra);
	return rc;
}

/* attribution: utm fields, and its referrer when the body has none. */
static int parse_attribution(struct ctx *c, json_t *obj, struct alog_event *e)
{
	static const char *const keys[ALOG_UTM_COUNT] = {
		[ALOG_UTM_SOURCE] = "utmSource",
		[ALOG_UTM_MEDIUM] = "utmMedium",
		[ALOG_UTM_CAMPAIGN] = "utmCampaign",
		[ALOG_UTM_CONTENT] = "utmContent",
		[ALOG_UTM_TERM] = "utmTerm",
	};
	json_t *a = member(obj, "attribution");
	size_t saved = c->prefix_len;
	struct alog_str ref;
	int rc;

	if (!a)
		return 0;
	if (!json_is_object(a))
		return fail(c, "attribution", "must be an object");
	prefix_push(c, "attribution.");
	for (int k = 0; k < ALOG_UTM_COUNT; k++)
		if ((rc = get_str(c, a, keys[k], false, &e->utm[k])))
			return rc;
	if ((rc = get_str(c, a, "referrer", false, &ref)))
		return rc;
	if (e->referrer.len == 0)
		e->referrer = ref;
	prefix_pop(c, saved);
	return 0;
}

/* Fields every alog body may carry: userId, metadata, timestamp, siteId. */
static int parse_common(struct ctx *c, json_t *obj, struct alog_event *e,
			bool user_required)
{
	int rc;

	if ((rc = get_str(c, obj, "userId", user_required, &e->user_id)) ||
	    (rc = get_object_json(c, obj, "metadata", &e->props)) ||
	    (rc = get_timestamp(c, obj, e)) ||
	    (rc = take_site_hint(c, obj, "siteId")))
		return rc;
	return 0;
}

static int parse_view(struct ctx *c, json_t *obj, struct alog_event *e)
{
	int rc;

	event_init(e, ALOG_KIND_PAGEVIEW, ALOG_SOURCE_TRACK);
	set_name(e, "pageview");
	if ((rc = get_str(c, obj, "sessionId", true, &e->session_id)) ||
	    (rc = get_str(c, obj, "pageUrl", false, &e->url)) ||
	    (rc = get_str(c, obj, "contentId", false, &e->content_id)) ||
	    (rc = get_str(c, obj, "contentType", false, &e->content_type)) ||
	    (rc = get_str(c, obj, "referrer", false, &e->referrer)) ||
	    (rc = parse_attribution(c, obj, e)) ||
	    (rc = parse_client_device(c, obj, e)) ||
	    (rc = parse_common(c, obj, e, false)))
		return rc;
	if (e->content_id.len != 0 && e->content_type.len == 0)
		return fail(c, "contentType", "is required with contentId");
	if (e->content_type.len != 0 && e->content_id.len == 0)
		return fail(c, "contentId", "is required with contentType");
	if (e->url.len == 0 && e->content_id.len == 0)
		return fail(c, "pageUrl",
			    "is required (or contentId and contentType)");
	return 0;
}

static int parse_event(struct ctx *c, json_t *obj, struct alog_event *e)
{
	int rc;

	event_init(e, ALOG_KIND_EVENT, ALOG_SOURCE_TRACK);
	if ((rc = get_str(c, obj, "eventType", true, &e->name)) ||
	    (rc = get_str(c, obj, "sessionId", true, &e->session_id)) ||
	    (rc = get_str(c, obj, "pageUrl", false, &e->url)) ||
	    (rc = parse_common(c, obj, e, false)))
		return rc;
	return 0;
}

static int parse_conversion(struct ctx *c, json_t *obj, struct alog_event *e)
{
	json_t *value, *cur;
	int rc;

	event_init(e, ALOG_KIND_CONVERSION, ALOG_SOURCE_TRACK);
	if ((rc = get_str(c, obj, "conversionType", true, &e->name)) ||
	    (rc = get_str(c, obj, "sessionId", true, &e->session_id)) ||
	    (rc = parse_common(c, obj, e, false)))
		return rc;
	value = member(obj, "value");
	cur = member(obj, "currency");
	if (value) {
		if (!json_is_number(value))
			return fail(c, "value", "must be a number");
		if (!micros_from_json(value, &e->value_micros))
			return fail(c, "value", "must be within +-9e12");
		e->has_value = true;
	}
	if (cur) {
		if (!value)
			return fail(c, "currency", "requires value");
		if ((rc = currency_value(c, cur, "currency", e->currency)))
			return rc;
	}
	return 0;
}

static int parse_funnel(struct ctx *c, json_t *obj, struct alog_event *e)
{
	json_int_t order = 0;
	json_t *v;
	int rc;

	event_init(e, ALOG_KIND_FUNNEL, ALOG_SOURCE_TRACK);
	set_name(e, "funnel_step");
	if ((rc = get_str(c, obj, "funnelId", true, &e->funnel_id)) ||
	    (rc = get_str(c, obj, "stepId", true, &e->step_id)))
		return rc;
	v = member(obj, "stepOrder");
	if (!v)
		return fail(c, "stepOrder", "is required");
	if ((rc = get_uint(c, obj, "stepOrder", UINT32_MAX, &e->has_step_order,
			   &order)))
		return rc;
	e->step_order = (uint32_t)order;
	if ((rc = get_str(c, obj, "sessionId", true, &e->session_id)) ||
	    (rc = parse_common(c, obj, e, false)))
		return rc;
	return 0;
}

static int parse_engagement(struct ctx *c, json_t *obj, struct alog_event *e)
{
	int rc;

	event_init(e, ALOG_KIND_ENGAGEMENT, ALOG_SOURCE_TRACK);
	if ((rc = get_str(c, obj, "metricType", true, &e->name)) ||
	    (rc = get_str(c, obj, "targetId", false, &e->target_id)) ||
	    (rc = get_str(c, obj, "targetType", false, &e->target_type)) ||
	    (rc = parse_common(c, obj, e, true)))
		return rc;
	return 0;
}

static int parse_interaction(struct ctx *c, json_t *obj, struct alog_event *e)
{
	int rc;

	event_init(e, ALOG_KIND_INTERACTION, ALOG_SOURCE_TRACK);
	if ((rc = get_str(c, obj, "type", true, &e->name)) ||
	    (rc = get_str(c, obj, "sessionId", true, &e->session_id)) ||
	    (rc = get_str(c, obj, "userId", false, &e->user_id)) ||
	    (rc = get_object_json(c, obj, "data", &e->props)) ||
	    (rc = get_timestamp(c, obj, e)) ||
	    (rc = take_site_hint(c, obj, "siteId")))
		return rc;
	return 0;
}

/*
 * Plausible props: an object, or a string holding one (the tracker's "p"),
 * with scalar values, stored with every value as a string as Plausible
 * does. null values are dropped.
 */
static int plausible_props(struct ctx *c, json_t *v, const char *key,
			   struct alog_str *out)
{
	json_t *parsed = NULL, *flat, *val;
	const char *k;
	size_t saved = c->prefix_len;
	int rc = 0;

	if (json_is_string(v)) {
		rc = load_json(c, key, json_string_value(v),
			       json_string_length(v), &parsed);
		if (rc < 0)
			return rc;
		v = parsed;
	}
	if (!json_is_object(v)) {
		json_decref(parsed);
		return fail(c, key, "must be an object");
	}
	flat = json_object();
	if (!flat) {
		json_decref(parsed);
		return -ENOMEM;
	}
	prefix_push_key(c, key);
	json_object_foreach(v, k, val)
	{
		char num[40];
		json_t *s;

		if (json_is_null(val))
			continue;
		if (json_is_string(val)) {
			s = json_incref(val);
		} else if (json_is_integer(val)) {
			snprintf(num, sizeof(num), "%lld",
				 (long long)json_integer_value(val));
			s = json_string(num);
		} else if (json_is_real(val)) {
			/* Shortest of 15 or 17 digits that reads back. */
			snprintf(num, sizeof(num), "%.15g",
				 json_real_value(val));
			if (strtod(num, NULL) != json_real_value(val))
				snprintf(num, sizeof(num), "%.17g",
					 json_real_value(val));
			s = json_string(num);
		} else if (json_is_boolean(val)) {
			s = json_string(json_is_true(val) ? "true" : "false");
		} else {
			rc = fail(c, k, "must be a string, number or boolean");
			goto out;
		}
		if (!s || json_object_set_new(flat, k, s) != 0) {
			rc = -ENOMEM;
			goto out;
		}
	}
	prefix_pop(c, saved);
	if (json_object_size(flat) > 0)
		rc = keep_dump(c, key,
			       json_dumps(flat, JSON_COMPACT | JSON_SORT_KEYS),
			       out);
out:
	prefix_pop(c, saved);
	json_decref(flat);
	json_decref(parsed);
	return rc;
}

static int plausible_revenue(struct ctx *c, json_t *v, const char *key,
			     struct alog_event *e)
{
	json_t *amount, *cur;
	size_t saved = c->prefix_len;
	bool ok;
	int rc;

	if (!json_is_object(v))
		return fail(c, key, "must be an object");
	prefix_push_key(c, key);
	cur = member(v, "currency");
	if (!cur)
		return fail(c, "currency", "is required");
	if ((rc = currency_value(c, cur, "currency", e->currency)))
		return rc;
	amount = member(v, "amount");
	if (!amount)
		return fail(c, "amount", "is required");
	if (json_is_string(amount))
		ok = micros_from_string(json_string_value(amount),
					json_string_length(amount),
					&e->value_micros);
	else if (json_is_number(amount))
		ok = micros_from_json(amount, &e->value_micros);
	else
		return fail(c, "amount", "must be a number or numeric string");
	if (!ok)
		return fail(c, "amount",
			    "must be a decimal number within +-9e12");
	e->has_value = true;
	prefix_pop(c, saved);
	return 0;
}

static int parse_plausible(struct ctx *c, json_t *obj, struct alog_event *e)
{
	json_t *v = NULL;
	const char *key = "";
	int rc;

	event_init(e, ALOG_KIND_EVENT, ALOG_SOURCE_PLAUSIBLE);
	if ((rc = member2(c, obj, "name", "n", &v, &key)) ||
	    (rc = str_value(c, v, key, true, &e->name)) ||
	    (rc = member2(c, obj, "url", "u", &v, &key)) ||
	    (rc = str_value(c, v, key, true, &e->url)) ||
	    (rc = member2(c, obj, "domain", "d", &v, &key)) ||
	    (rc = str_value(c, v, key, true, c->site_hint)) ||
	    (rc = member2(c, obj, "referrer", "r", &v, &key)) ||
	    (rc = str_value(c, v, key, false, &e->referrer)))
		return rc;
	if (e->name.len == 8 && memcmp(e->name.p, "pageview", 8) == 0)
		e->kind = ALOG_KIND_PAGEVIEW;
	if ((rc = member2(c, obj, "props", "p", &v, &key)))
		return rc;
	if (v && (rc = plausible_props(c, v, key, &e->props)))
		return rc;
	/* The tracker sends revenue as "$" and interactive:false as "i". */
	if ((rc = member2(c, obj, "revenue", "$", &v, &key)))
		return rc;
	if (v && (rc = plausible_revenue(c, v, key, e)))
		return rc;
	if ((rc = member2(c, obj, "interactive", "i", &v, &key)))
		return rc;
	if (v && !json_is_boolean(v))
		return fail(c, key, "must be a boolean");
	if (json_is_false(v))
		e->flags |= ALOG_EVENT_F_NONINTERACTIVE;
	/*
	 * Plausible's tracker reports engagement (on SPA navigation and when
	 * a page is hidden) as an event named "engagement" with the scroll
	 * depth in percent ("sd") and the engaged time in ms ("e"): keep it
	 * as an engagement, not a custom event, with those two as props.
	 */
	if (e->name.len == 10 && memcmp(e->name.p, "engagement", 10) == 0) {
		json_t *sd = json_object_get(obj, "sd");
		json_t *et = json_object_get(obj, "e");

		e->kind = ALOG_KIND_ENGAGEMENT;
		if (e->props.len == 0 &&
		    (json_is_integer(sd) || json_is_integer(et))) {
			json_t *o = json_object();

			if (!o)
				return -ENOMEM;
			if (json_is_integer(sd))
				json_object_set_new(
					o, "scroll_depth",
					json_integer(json_integer_value(sd)));
			if (json_is_integer(et))
				json_object_set_new(
					o, "engaged_ms",
					json_integer(json_integer_value(et)));
			rc = keep_dump(c, "e",
				       json_dumps(o, JSON_COMPACT |
							     JSON_SORT_KEYS),
				       &e->props);
			json_decref(o);
			if (rc)
				return rc;
		}
	}
	host_from_url(e->url, &e->hostname);
	utm_from_url(c, e);
	return 0;
}

/* Umami screen "1920x1080". */
static bool parse_screen(const char *s, size_t len, uint16_t *w, uint16_t *h)
{
	uint32_t v[2] = { 0, 0 };
	size_t i = 0;

	for (int k = 0; k < 2; k++) {
		size_t start = i;

		while (i < len && s[i] >= '0' && s[i] <= '9' && i - start < 5)
			v[k] = v[k] * 10 + (uint32_t)(s[i++] - '0');
		if (i == start || v[k] > UINT16_MAX)
			return false;
		if (k == 0 && (i >= len || s[i++] != 'x'))
			return false;
	}
	if (i != len)
		return false;
	*w = (uint16_t)v[0];
	*h = (uint16_t)v[1];
	return true;
}

static int parse_umami_payload(struct ctx *c, json_t *p, struct alog_event *e)
{
	struct alog_str screen;
	int rc;

	event_init(e, ALOG_KIND_PAGEVIEW, ALOG_SOURCE_UMAMI);
	if ((rc = get_str(c, p, "website", true, c->site_hint)) ||
	    (rc = get_str(c, p, "hostname", false, &e->hostname)) ||
	    (rc = get_str(c, p, "url", false, &e->url)) ||
	    (rc = get_str(c, p, "referrer", false, &e->referrer)) ||
	    (rc = get_str(c, p, "title", false, &e->title)) ||
	    (rc = get_str(c, p, "screen", false, &screen)) ||
	    (rc = get_str(c, p, "language", false, &e->language)) ||
	    (rc = get_str(c, p, "name", false, &e->name)) ||
	    (rc = get_object_json(c, p, "data", &e->props)))
		return rc;
	if (screen.len != 0) {
		if (!parse_screen(screen.p, screen.len, &e->screen_w,
				  &e->screen_h))
			return fail(c, "screen",
				    "must be WIDTHxHEIGHT, each 0..65535");
		e->has_screen = true;
	}
	if (e->name.len != 0)
		e->kind = ALOG_KIND_EVENT;
	else
		set_name(e, "pageview");
	if (e->hostname.len == 0)
		host_from_url(e->url, &e->hostname);
	utm_from_url(c, e);
	return 0;
}

/* The events array of batch/interaction bodies; n is checked already. */
static int parse_array(struct ctx *c, json_t *arr,
		       int (*one)(struct ctx *, json_t *, struct alog_event *))
{
	size_t saved = c->prefix_len, i;
	json_t *v;
	int rc;

	json_array_foreach(arr, i, v)
	{
		prefix_push_index(c, "events", i);
		if (!json_is_object(v))
			return fail(c, "", "must be an object");
		if ((rc = one(c, v, &c->st->events[i])) ||
		    (rc = check_size(c, &c->st->events[i])))
			return rc;
		prefix_pop(c, saved);
	}
	return 0;
}

static int alloc_state(struct ctx *c, json_t *root, size_t n)
{
	struct parse_state *st;
	size_t ev_bytes = n * sizeof(struct alog_event);
	size_t dumps = n * DUMPS_PER_EVENT;

	st = calloc(1, sizeof(*st) + ev_bytes + dumps * sizeof(char *));
	if (!st)
		return -ENOMEM;
	st->root = root;
	st->n = n;
	st->dumps = (char **)((char *)st->events + ev_bytes);
	st->dumps_max = dumps;
	c->st = st;
	return 0;
}

static void state_free(struct parse_state *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->n_dumps; i++)
		json_text_free(st->dumps[i]);
	json_decref(st->root);
	free(st);
	json_arena.live--;
}

/* Events in the body: 1, the events array's size, or 0 (Umami identify). */
static int count_events(struct ctx *c, enum edge_endpoint ep, json_t *root,
			size_t *n)
{
	json_t *v;

	*n = 1;
	if (ep == EDGE_EP_UMAMI) {
		struct alog_str type;
		int rc = get_str(c, root, "type", true, &type);

		if (rc < 0)
			return rc;
		if (type.len == 8 && memcmp(type.p, "identify", 8) == 0)
			*n = 0;
		else if (type.len != 5 || memcmp(type.p, "event", 5) != 0)
			return fail(c, "type",
				    "must be \"event\" or \"identify\"");
		return 0;
	}
	if (ep != EDGE_EP_BATCH && ep != EDGE_EP_INTERACTION)
		return 0;
	v = member(root, "events");
	if (!v)
		return fail(c, "events", "is required");
	if (!json_is_array(v))
		return fail(c, "events", "must be an array");
	*n = json_array_size(v);
	if (*n > c->lim->batch_events_max) {
		fail(c, "events", "too many events (max %zu)",
		     c->lim->batch_events_max);
		return -E2BIG;
	}
	return 0;
}

static int parse_body(struct ctx *c, enum edge_endpoint ep, json_t *root)
{
	struct alog_event *e = c->st->events;
	json_t *p;
	int rc;

	switch (ep) {
	case EDGE_EP_VIEW:
		rc = parse_view(c, root, e);
		break;
	case EDGE_EP_EVENT:
		rc = parse_event(c, root, e);
		break;
	case EDGE_EP_CONVERSION:
		rc = parse_conversion(c, root, e);
		break;
	case EDGE_EP_FUNNEL:
		rc = parse_funnel(c, root, e);
		break;
	case EDGE_EP_ENGAGEMENT:
		rc = parse_engagement(c, root, e);
		break;
	case EDGE_EP_BATCH:
	case EDGE_EP_INTERACTION:
		if ((rc = take_site_hint(c, root, "siteId")))
			return rc;
		return parse_array(c, member(root, "events"),
				   ep == EDGE_EP_BATCH ? parse_event :
							 parse_interaction);
	case EDGE_EP_PLAUSIBLE:
		rc = parse_plausible(c, root, e);
		break;
	case EDGE_EP_UMAMI:
		p = member(root, "payload");
		if (!p)
			return fail(c, "payload", "is required");
		if (!json_is_object(p))
			return fail(c, "payload", "must be an object");
		if (c->st->n == 0) { /* identify: nothing to store */
			struct alog_str site;

			if (get_str(c, p, "website", false, &site) == 0)
				*c->site_hint = site;
			return 0;
		}
		prefix_push(c, "payload.");
		rc = parse_umami_payload(c, p, e);
		break;
	default:
		return fail(c, "", "unknown endpoint");
	}
	if (rc < 0)
		return rc;
	return check_size(c, e);
}

int edge_event_parse(enum edge_endpoint ep, const char *body, size_t len,
		     const struct edge_event_limits *lim,
		     struct edge_parse_result *out,
		     struct edge_parse_error *err)
{
	struct edge_event_limits l = { BATCH_EVENTS_DEFAULT, DEPTH_DEFAULT };
	struct ctx c = { .err = err, .lim = &l, .site_hint = &out->site_hint };
	json_t *root = NULL;
	size_t n;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	if (lim && lim->batch_events_max)
		l.batch_events_max = lim->batch_events_max;
	if (lim && lim->body_depth_max)
		l.body_depth_max = lim->body_depth_max;

	/* Nothing from an earlier body lives on this thread: start the
	 * arena over. */
	if (json_arena.live == 0)
		json_arena.used = 0;
	rc = load_json(&c, "", body, len, &root);
	if (rc < 0)
		return rc;
	if (!json_is_object(root)) {
		json_decref(root);
		return fail(&c, "", "body must be a JSON object");
	}
	rc = count_events(&c, ep, root, &n);
	if (rc == 0)
		rc = alloc_state(&c, root, n);
	if (rc < 0) {
		json_decref(root);
		goto out_clear;
	}
	json_arena.live++; /* state_free() takes it back */
	rc = parse_body(&c, ep, root);
	if (rc < 0) {
		state_free(c.st);
		goto out_clear;
	}
	out->n = n;
	out->events = n ? c.st->events : NULL;
	out->priv = c.st;
	return 0;

out_clear:
	out->site_hint.p = NULL;
	out->site_hint.len = 0;
	if (rc == -ENOMEM) {
		err->field[0] = '\0';
		snprintf(err->message, sizeof(err->message), "out of memory");
	}
	return rc;
}

void edge_parse_result_free(struct edge_parse_result *r)
{
	if (!r)
		return;
	state_free(r->priv);
	memset(r, 0, sizeof(*r));
}
