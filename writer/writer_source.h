/*
 * writer_source.h - where a visit came from, and URLs in one canonical form.
 *
 * The writer turns each event's page URL, referrer and utm_* fields into
 * the columns the dashboards group by: host, path and query of the page
 * (tracking noise removed, so one page is one row), referrer host and path,
 * a channel (organic, social, paid, ...) and a human source label
 * ("Google", "Hacker News", a utm_source, a referring host). The rules and
 * the lists of known hosts and tracking parameters are docs/enrichment.md;
 * change them there and here together.
 *
 * Everything here is pure: no allocation, no I/O, no global state, so every
 * function is thread-safe. Inputs are untrusted bytes (pointer + length, no
 * NUL needed); outputs are caller-owned fixed buffers, always NUL-terminated
 * and never overrun. Every output string is valid UTF-8 without NUL, ready
 * for a PostgreSQL text column.
 */
#ifndef WRITER_SOURCE_H
#define WRITER_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include "alog_event.h" /* ALOG_UTM_SOURCE .. ALOG_UTM_TERM, ALOG_UTM_COUNT */

enum src_channel {
	SRC_DIRECT,
	SRC_ORGANIC,
	SRC_PAID,
	SRC_SOCIAL,
	SRC_EMAIL,
	SRC_AFFILIATE,
	SRC_REFERRAL,
};

/*
 * "direct", "organic", "paid", "social", "email", "affiliate", "referral";
 * "unknown" for a value outside the enum. Static string.
 */
const char *src_channel_name(enum src_channel c);

#define SRC_URL_MAX 2048   /* longest URL accepted, as the event record's */
#define SRC_HOST_MAX 256   /* host[:port] + NUL */
#define SRC_PATH_MAX 2048  /* path, or query, + NUL */
#define SRC_UTM_MAX 256    /* one utm value + NUL */
#define SRC_SOURCE_MAX 256 /* source label + NUL */

struct src_url {
	/* lowercase, no trailing dot, ":port" only when not the default */
	char host[SRC_HOST_MAX];
	/* "/" at least; percent-escapes with uppercase hex */
	char path[SRC_PATH_MAX];
	/*
	 * without '?', tracking parameters removed, "" when none is left;
	 * when the rest would not fit, it ends after the last whole
	 * parameter that does and query_cut is true
	 */
	char query[SRC_PATH_MAX];
	bool query_cut;
	/*
	 * utm_* of the query, indexed by ALOG_UTM_*: percent-decoded, '+' as
	 * space, trimmed, at most SRC_UTM_MAX - 1 bytes (cut on a character);
	 * "" when absent or empty.
	 */
	char utm[ALOG_UTM_COUNT][SRC_UTM_MAX];
};

/*
 * Parse and normalize an absolute http(s) URL of len bytes. Returns 0 and
 * fills *out, or -EINVAL when url is not an absolute http or https URL
 * with a valid host (relative, another scheme, empty or bad host or port,
 * longer than SRC_URL_MAX) or when the host or path would not fit its
 * buffer; then every field of *out is "" (query_cut false). The caller
 * keeps the raw string in that case. A query that would not fit does not
 * refuse the URL: it is cut on a parameter (see query_cut).
 */
int src_url_parse(const char *url, size_t len, struct src_url *out);

struct src_traffic {
	enum src_channel channel;
	char source[SRC_SOURCE_MAX];
	/* the referrer's host and path, "" when it counts as no referrer */
	char referrer_host[SRC_HOST_MAX];
	char referrer_path[SRC_PATH_MAX];
};

/*
 * Classify one event's traffic source. utm_medium and utm_source (the
 * event's own, or those src_url_parse() found in the page URL) and
 * referrer may be NULL with length 0 when absent. page_host is the page's
 * own host, NUL-terminated, NULL or "" when unknown: a referrer on the same
 * host (ignoring case, port, a trailing dot and a leading "www.") is
 * internal navigation and counts as no referrer; so does a referrer that
 * src_url_parse() refuses. Always fills *out.
 */
void src_classify(const char *utm_medium, size_t mlen, const char *utm_source,
		  size_t slen, const char *referrer, size_t rlen,
		  const char *page_host, struct src_traffic *out);

#endif
