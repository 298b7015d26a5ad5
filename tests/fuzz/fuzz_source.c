/*
 * fuzz_source.c - libFuzzer target for URL normalization and traffic source
 * classification (writer/writer_source.c). The input is split on 0xFF
 * bytes into url, referrer, utm_medium, utm_source and page_host (the last
 * takes the rest). As the writer does, a missing utm_medium or utm_source
 * is taken from the page URL's query and a missing page_host is the page
 * URL's host; an empty field is passed as NULL, length 0.
 *
 * Checked, as writer_source.h and docs/enrichment.md promise: every output
 * NUL-terminated inside its buffer; host, path and query printable ASCII,
 * the host lowercase, the path starting with '/', no empty query piece
 * and no tracking parameter left in the query (see check_no_tracking);
 * utm values and the source label valid UTF-8 and trimmed; a refused URL
 * leaves every field "" (query_cut false); normalizing a normalized URL again (when it still
 * fits SRC_URL_MAX) gives the same host, path and query and no utm value,
 * as every tracking parameter is gone; the channel inside the enum, and
 * direct only without a source or a referrer; the referrer's host and path
 * exactly those src_url_parse() gives, or "" when it refuses the referrer.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "writer_source.h"
#include "fuzz_utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
	F_URL,
	F_REFERRER,
	F_MEDIUM,
	F_SOURCE,
	F_PAGE_HOST,
	F_N
};

static bool is_space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Length of a string that must end inside its buffer; aborts if not. */
static size_t bounded(const char *s, size_t cap)
{
	const char *end = memchr(s, '\0', cap);

	if (!end)
		abort();
	return (size_t)(end - s);
}

/* A URL part: bounded, every byte printable ASCII without space. */
static void check_ascii(const char *s, size_t cap)
{
	size_t n = bounded(s, cap);

	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			abort();
}

/* A label: bounded, valid UTF-8, no leading or trailing whitespace. */
static void check_text(const char *s, size_t cap)
{
	size_t n = bounded(s, cap);

	if (!utf8_ok((const unsigned char *)s, n) ||
	    (n > 0 && (is_space(s[0]) || is_space(s[n - 1]))))
		abort();
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
		return (c | 0x20) - 'a' + 10;
	return -1;
}

/*
 * No tracking parameter is left in a normalized query: no piece whose
 * name, percent-decoded, starts with utm_ or is one of the names
 * docs/enrichment.md lists (any case), whatever its length.
 */
static void check_no_tracking(const char *q)
{
	static const char *const names[] = {
		"gclid",       "gclsrc",     "gbraid",
		"wbraid",      "gad_source", "gad_campaignid",
		"dclid",       "srsltid",    "fbclid",
		"msclkid",     "yclid",      "ysclid",
		"twclid",      "ttclid",     "li_fat_id",
		"igshid",      "sccid",      "epik",
		"s_kwcid",     "ef_id",      "irclickid",
		"rb_clid",     "mc_cid",     "mc_eid",
		"_hsenc",      "_hsmi",      "__hssc",
		"__hstc",      "__hsfp",     "hsctatracking",
		"mkt_tok",     "vero_id",    "vero_conv",
		"oly_anon_id", "oly_enc_id", "wickedid",
		"_openstat",   "_ga",        "_gl",
		"_kx",         "ref_src",
	};

	while (*q) {
		size_t plen = strcspn(q, "&"), nlen = strcspn(q, "&="), n = 0;
		char name[SRC_URL_MAX];

		if (nlen > plen)
			nlen = plen;
		for (size_t i = 0; i < nlen && nlen <= sizeof(name); i++) {
			if (q[i] == '%' && i + 2 < nlen &&
			    hexval(q[i + 1]) >= 0 && hexval(q[i + 2]) >= 0) {
				name[n++] = (char)(hexval(q[i + 1]) << 4 |
						   hexval(q[i + 2]));
				i += 2;
			} else {
				name[n++] = q[i] == '+' ? ' ' : q[i];
			}
		}
		if (nlen <= sizeof(name)) {
			if (n >= 4 && strncasecmp(name, "utm_", 4) == 0)
				abort();
			for (size_t k = 0; k < sizeof(names) / sizeof(names[0]);
			     k++)
				if (n == strlen(names[k]) &&
				    strncasecmp(name, names[k], n) == 0)
					abort();
		}
		q += plen + (q[plen] == '&');
	}
}

static void check_url(int rc, const struct src_url *u)
{
	check_ascii(u->host, sizeof(u->host));
	check_ascii(u->path, sizeof(u->path));
	check_ascii(u->query, sizeof(u->query));
	for (int k = 0; k < ALOG_UTM_COUNT; k++)
		check_text(u->utm[k], sizeof(u->utm[k]));
	if (rc != 0) {
		if (rc != -EINVAL || u->host[0] || u->path[0] || u->query[0] ||
		    u->query_cut)
			abort();
		for (int k = 0; k < ALOG_UTM_COUNT; k++)
			if (u->utm[k][0])
				abort();
		return;
	}
	if (!u->host[0] || u->path[0] != '/')
		abort();
	for (const char *p = u->host; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			abort();
	if (u->query[0] == '&' || strstr(u->query, "&&") ||
	    (u->query[0] && u->query[strlen(u->query) - 1] == '&'))
		abort();
	check_no_tracking(u->query);
}

/* src_url_parse on an untouched buffer, checked. */
static int parse(const char *url, size_t len, struct src_url *u)
{
	int rc;

	memset(u, 0xa5, sizeof(*u));
	rc = src_url_parse(url, len, u);
	check_url(rc, u);
	return rc;
}

/*
 * The normalized form again, with the scheme of the original (trimmed as
 * the parser trims): it must parse to itself.
 */
static void check_idempotent(const char *url, size_t len,
			     const struct src_url *u)
{
	static char re[SRC_HOST_MAX + 2 * SRC_PATH_MAX + 16];
	static struct src_url v;
	size_t i = 0, rl;
	bool https;

	while (i < len && is_space(url[i]))
		i++;
	https = url[i + 4] == 's' || url[i + 4] == 'S';
	rl = (size_t)snprintf(re, sizeof(re), "%s%s%s%s%s",
			      https ? "https://" : "http://", u->host, u->path,
			      u->query[0] ? "?" : "", u->query);
	if (rl > SRC_URL_MAX)
		return; /* escaping made it longer than a URL may be */
	if (parse(re, rl, &v) != 0 || strcmp(u->host, v.host) != 0 ||
	    strcmp(u->path, v.path) != 0 || strcmp(u->query, v.query) != 0)
		abort();
	for (int k = 0; k < ALOG_UTM_COUNT; k++)
		if (v.utm[k][0])
			abort();
}

static void check_traffic(const struct src_traffic *t, const char *ref,
			  size_t rlen)
{
	static struct src_url r;
	int rc;

	if (t->channel < SRC_DIRECT || t->channel > SRC_REFERRAL ||
	    strcmp(src_channel_name(t->channel), "unknown") == 0)
		abort();
	check_text(t->source, sizeof(t->source));
	check_ascii(t->referrer_host, sizeof(t->referrer_host));
	check_ascii(t->referrer_path, sizeof(t->referrer_path));
	if ((t->referrer_host[0] == '\0') != (t->referrer_path[0] == '\0'))
		abort();
	if (t->channel == SRC_DIRECT && (t->source[0] || t->referrer_host[0]))
		abort();

	/* The referrer as src_url_parse() sees it, or none. */
	rc = ref && rlen ? parse(ref, rlen, &r) : -EINVAL;
	if (rc != 0 && t->referrer_host[0])
		abort();
	if (t->referrer_host[0] && (strcmp(t->referrer_host, r.host) != 0 ||
				    strcmp(t->referrer_path, r.path) != 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char page_host[SRC_HOST_MAX * 4];
	static struct src_url u;
	static struct src_traffic t;
	const char *f[F_N] = { 0 }, *p = (const char *)data, *host;
	const char *medium, *source;
	size_t flen[F_N] = { 0 }, nf = 0, mlen, slen;
	int rc;

	/* Fields up to 0xFF; the last one takes the rest, 0xFF included. */
	while (nf < F_N) {
		const char *sep = nf + 1 < F_N ? memchr(p, 0xff, size) : NULL;
		size_t n = sep ? (size_t)(sep - p) : size;

		f[nf] = p;
		flen[nf++] = n;
		if (!sep)
			break;
		p = sep + 1;
		size -= n + 1;
	}

	rc = parse(f[F_URL], flen[F_URL], &u);
	if (rc == 0)
		check_idempotent(f[F_URL], flen[F_URL], &u);

	if (nf > F_MEDIUM) {
		medium = flen[F_MEDIUM] ? f[F_MEDIUM] : NULL;
		mlen = flen[F_MEDIUM];
	} else {
		medium = u.utm[ALOG_UTM_MEDIUM];
		mlen = strlen(medium);
	}
	if (nf > F_SOURCE) {
		source = flen[F_SOURCE] ? f[F_SOURCE] : NULL;
		slen = flen[F_SOURCE];
	} else {
		source = u.utm[ALOG_UTM_SOURCE];
		slen = strlen(source);
	}
	if (nf > F_PAGE_HOST) {
		size_t n = flen[F_PAGE_HOST] < sizeof(page_host) - 1 ?
				   flen[F_PAGE_HOST] :
				   sizeof(page_host) - 1;

		memcpy(page_host, f[F_PAGE_HOST], n);
		page_host[n] = '\0';
		host = n ? page_host : NULL;
	} else {
		host = u.host;
	}

	memset(&t, 0xa5, sizeof(t));
	src_classify(medium, mlen, source, slen,
		     flen[F_REFERRER] ? f[F_REFERRER] : NULL, flen[F_REFERRER],
		     host, &t);
	check_traffic(&t, flen[F_REFERRER] ? f[F_REFERRER] : NULL,
		      flen[F_REFERRER]);
	return 0;
}
