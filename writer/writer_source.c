/*
 * writer_source.c - traffic channel, source label, referrer and page URL
 * normalization for the writer (docs/enrichment.md is the rule book).
 *
 * URLs arrive as the browser or a server-side sender wrote them, so they may
 * be anything: the parser looks only at what it needs (scheme, authority,
 * path, query), refuses what is not an absolute http(s) URL, and writes
 * printable ASCII so that the columns are valid UTF-8 whatever came in.
 * The known sites are one table: a site's host patterns classify referrers,
 * and its name and aliases classify utm_source values, so a referrer from
 * m.facebook.com and "utm_source=fb" both end up as "Facebook" / social.
 */
#include "writer_source.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "alog_common.h"

/*
 * The tracking parameters dropped from the query besides every utm_*: click
 * ids of ad networks (Google, Microsoft, Meta, X, TikTok, LinkedIn, Yandex,
 * Snapchat, Pinterest, Adobe, Impact), mailing-tool and marketing-automation
 * ids (Mailchimp, HubSpot, Marketo, Vero, Omeda), Google Analytics' cross-
 * domain linkers and a few share ids. Compared case-insensitively and
 * exactly: a name only these tools use, never a word a site could use
 * for itself ("ref", "source", "id" stay).
 */
static const char *const tracking_params[] = {
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

/*
 * Known sites. A host pattern "a.b" matches a.b and any host ending in
 * ".a.b"; "a.*" matches a followed by a public suffix (see tld_tail()),
 * with anything before it on a label boundary: google.* is google.com,
 * www.google.co.uk and google.de but not google.evil.com. A utm_source
 * matches a site when, folded (lowercase without ' ', '-', '_'), it equals
 * the folded name or an alias, or when it contains a dot and matches a
 * host pattern. The first matching site wins. Patterns overlap only where
 * a named service lives on a search engine's domain: it comes first, so
 * mail.google.com is Gmail (a referral), not Google search.
 */
#define SITE_HOSTS 4
#define SITE_ALIASES 4

struct src_site {
	const char *name;
	enum src_channel channel;
	const char *hosts[SITE_HOSTS];
	const char *aliases[SITE_ALIASES];
};

static const struct src_site sites[] = {
	/* not search, though on a search engine's domain: before it */
	{ "Gmail", SRC_REFERRAL, { "mail.google.*" }, { 0 } },
	{ "Google Docs",
	  SRC_REFERRAL,
	  { "docs.google.*", "drive.google.*" },
	  { 0 } },
	{ "Yandex Mail", SRC_REFERRAL, { "mail.yandex.*" }, { 0 } },
	/* search engines */
	{ "Google", SRC_ORGANIC, { "google.*" }, { 0 } },
	{ "Bing", SRC_ORGANIC, { "bing.com" }, { 0 } },
	{ "Yahoo", SRC_ORGANIC, { "search.yahoo.*" }, { 0 } },
	{ "Yandex", SRC_ORGANIC, { "yandex.*", "ya.ru" }, { 0 } },
	{ "Baidu", SRC_ORGANIC, { "baidu.com" }, { 0 } },
	{ "DuckDuckGo", SRC_ORGANIC, { "duckduckgo.com" }, { "ddg" } },
	{ "Ecosia", SRC_ORGANIC, { "ecosia.org" }, { 0 } },
	{ "Qwant", SRC_ORGANIC, { "qwant.com" }, { 0 } },
	{ "Startpage", SRC_ORGANIC, { "startpage.com" }, { 0 } },
	{ "Naver", SRC_ORGANIC, { "naver.com" }, { 0 } },
	{ "Seznam", SRC_ORGANIC, { "seznam.cz" }, { 0 } },
	{ "Brave", SRC_ORGANIC, { "search.brave.com" }, { "bravesearch" } },
	{ "Ask", SRC_ORGANIC, { "ask.com" }, { 0 } },
	{ "AOL", SRC_ORGANIC, { "search.aol.*" }, { 0 } },
	{ "Sogou", SRC_ORGANIC, { "sogou.com" }, { 0 } },
	{ "360 Search", SRC_ORGANIC, { "so.com" }, { 0 } },
	{ "Daum", SRC_ORGANIC, { "search.daum.net" }, { 0 } },
	{ "Kagi", SRC_ORGANIC, { "kagi.com" }, { 0 } },
	{ "Mojeek", SRC_ORGANIC, { "mojeek.com" }, { 0 } },
	{ "Petal Search", SRC_ORGANIC, { "petalsearch.com" }, { 0 } },
	/* social networks */
	{ "Facebook",
	  SRC_SOCIAL,
	  { "facebook.com", "fb.com", "fb.me", "messenger.com" },
	  { "fb" } },
	{ "Twitter", SRC_SOCIAL, { "twitter.com", "t.co", "x.com" }, { "x" } },
	{ "LinkedIn", SRC_SOCIAL, { "linkedin.com", "lnkd.in" }, { 0 } },
	{ "Reddit", SRC_SOCIAL, { "reddit.com", "redd.it" }, { 0 } },
	{ "Instagram", SRC_SOCIAL, { "instagram.com" }, { "ig" } },
	{ "Pinterest", SRC_SOCIAL, { "pinterest.*", "pin.it" }, { 0 } },
	{ "TikTok", SRC_SOCIAL, { "tiktok.com" }, { 0 } },
	{ "YouTube", SRC_SOCIAL, { "youtube.com", "youtu.be" }, { "yt" } },
	{ "Hacker News",
	  SRC_SOCIAL,
	  { "news.ycombinator.com" },
	  { "hn", "ycombinator" } },
	{ "VK", SRC_SOCIAL, { "vk.com" }, { "vkontakte" } },
	{ "WhatsApp", SRC_SOCIAL, { "whatsapp.com", "wa.me" }, { 0 } },
	{ "Telegram",
	  SRC_SOCIAL,
	  { "t.me", "telegram.org", "telegram.me" },
	  { 0 } },
	{ "Threads", SRC_SOCIAL, { "threads.net", "threads.com" }, { 0 } },
	{ "Bluesky", SRC_SOCIAL, { "bsky.app" }, { "bsky" } },
	{ "Quora", SRC_SOCIAL, { "quora.com" }, { 0 } },
	{ "Discord",
	  SRC_SOCIAL,
	  { "discord.com", "discord.gg", "discordapp.com" },
	  { 0 } },
	{ "Snapchat", SRC_SOCIAL, { "snapchat.com" }, { 0 } },
	{ "Tumblr", SRC_SOCIAL, { "tumblr.com" }, { 0 } },
	{ "Weibo", SRC_SOCIAL, { "weibo.com", "weibo.cn" }, { 0 } },
	/* named, but a referral like any other site */
	{ "GitHub", SRC_REFERRAL, { "github.com" }, { 0 } },
	{ "Stack Overflow", SRC_REFERRAL, { "stackoverflow.com" }, { 0 } },
	{ "Wikipedia", SRC_REFERRAL, { "wikipedia.org" }, { 0 } },
};

/* utm_medium values, folded like utm_source aliases. */
static const struct {
	const char *folded;
	enum src_channel channel;
} mediums[] = {
	{ "cpc", SRC_PAID },
	{ "ppc", SRC_PAID },
	{ "paid", SRC_PAID },
	{ "paidsearch", SRC_PAID },
	{ "email", SRC_EMAIL },
	{ "newsletter", SRC_EMAIL },
	{ "social", SRC_SOCIAL },
	{ "socialmedia", SRC_SOCIAL },
	{ "affiliate", SRC_AFFILIATE },
	{ "partner", SRC_AFFILIATE },
	{ "organic", SRC_ORGANIC },
	{ "referral", SRC_REFERRAL },
};

const char *src_channel_name(enum src_channel c)
{
	switch (c) {
	case SRC_DIRECT:
		return "direct";
	case SRC_ORGANIC:
		return "organic";
	case SRC_PAID:
		return "paid";
	case SRC_SOCIAL:
		return "social";
	case SRC_EMAIL:
		return "email";
	case SRC_AFFILIATE:
		return "affiliate";
	case SRC_REFERRAL:
		return "referral";
	}
	return "unknown";
}

/* ---- bytes ---- */

/* ASCII only: the C library's versions follow the locale. */
static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool is_alpha(char c)
{
	return lower(c) >= 'a' && lower(c) <= 'z';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_space(char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

static int hexval(char c)
{
	if (is_digit(c))
		return c - '0';
	c = lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static bool eq_nocase(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (lower(a[i]) != lower(b[i]))
			return false;
	return true;
}

static void trim(const char **p, size_t *len)
{
	while (*len > 0 && is_space((*p)[0])) {
		(*p)++;
		(*len)--;
	}
	while (*len > 0 && is_space((*p)[*len - 1]))
		(*len)--;
}

/*
 * Copy a label for a text column: p trimmed, then its longest valid-UTF-8,
 * NUL-free prefix that fits cap - 1 bytes (cut on a character).
 */
static void copy_text(char *dst, size_t cap, const char *p, size_t len)
{
	size_t n;

	if (!p)
		len = 0;
	trim(&p, &len);
	n = alog_event_utf8_prefix(p, len, cap - 1);
	trim(&p, &n);
	if (n > 0)
		memcpy(dst, p, n);
	dst[n] = '\0';
}

/*
 * Lowercase without ' ', '-' and '_' into buf (cap bytes), so "Social-Media",
 * "social_media" and "socialmedia" compare equal. Returns false when it does
 * not fit (nothing that long is in a table).
 */
static bool fold(const char *p, size_t len, char *buf, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (p[i] == ' ' || p[i] == '-' || p[i] == '_')
			continue;
		if (n + 1 >= cap)
			return false;
		buf[n++] = lower(p[i]);
	}
	buf[n] = '\0';
	return true;
}

/* ---- hosts ---- */

/*
 * Whether t is a public suffix as far as "name.*" patterns go: one label
 * (com, de, ru, an IDN's xn--...) or a second-level registry under a
 * two-letter country (co.uk, com.br, co.jp). Not the Public Suffix List:
 * enough to tell google.co.uk (Google) from google.evil.com (not Google).
 */
static bool tld_tail(const char *t, size_t len)
{
	static const char *const slds[] = {
		"co",  "com", "net", "org", "ac",
		"edu", "gov", "gob", "ne",  "or",
	};
	const char *dot = memchr(t, '.', len);
	bool alpha = false;

	if (!dot) {
		if (len < 2 || len > 63)
			return false;
		for (size_t i = 0; i < len; i++) {
			if (!is_alpha(t[i]) && !is_digit(t[i]) && t[i] != '-')
				return false;
			alpha = alpha || is_alpha(t[i]);
		}
		return alpha;
	}
	if (len - (size_t)(dot - t) - 1 != 2 || !is_alpha(dot[1]) ||
	    !is_alpha(dot[2]))
		return false;
	for (size_t i = 0; i < ALOG_ARRAY_LEN(slds); i++)
		if (eq_nocase(t, (size_t)(dot - t), slds[i], strlen(slds[i])))
			return true;
	return false;
}

/* h (a bare host: no port, no trailing dot) against one host pattern. */
static bool host_matches(const char *h, size_t hlen, const char *pat)
{
	size_t plen = strlen(pat);

	if (plen > 2 && pat[plen - 1] == '*') {
		plen -= 2; /* the name before ".*" */
		for (size_t s = 0; s + plen + 1 < hlen; s++) {
			if (s > 0 && h[s - 1] != '.')
				continue;
			if (h[s + plen] == '.' &&
			    eq_nocase(h + s, plen, pat, plen) &&
			    tld_tail(h + s + plen + 1, hlen - s - plen - 1))
				return true;
		}
		return false;
	}
	if (hlen == plen)
		return eq_nocase(h, hlen, pat, plen);
	return hlen > plen && h[hlen - plen - 1] == '.' &&
	       eq_nocase(h + hlen - plen, plen, pat, plen);
}

/*
 * The host without port and trailing dot, and optionally without a
 * leading "www.": what site matching and the self-referral rule compare.
 */
static void host_bare(const char **h, size_t *len, bool strip_www)
{
	const char *p = *h;
	size_t n = *len;

	if (n > 0 && p[0] == '[') {
		const char *rb = memchr(p, ']', n);

		if (rb)
			n = (size_t)(rb - p) + 1;
	} else {
		const char *colon = memchr(p, ':', n);

		if (colon)
			n = (size_t)(colon - p);
	}
	if (n > 0 && p[n - 1] == '.')
		n--;
	if (strip_www && n > 4 && eq_nocase(p, 4, "www.", 4)) {
		p += 4;
		n -= 4;
	}
	*h = p;
	*len = n;
}

static const struct src_site *site_by_host(const char *h, size_t len)
{
	host_bare(&h, &len, false);
	if (len == 0)
		return NULL;
	for (size_t i = 0; i < ALOG_ARRAY_LEN(sites); i++)
		for (int k = 0; k < SITE_HOSTS && sites[i].hosts[k]; k++)
			if (host_matches(h, len, sites[i].hosts[k]))
				return &sites[i];
	return NULL;
}

/*
 * A utm_source with a dot is looked up as a host. Senders put whole URLs
 * there too ("https://www.google.com/", "google.com/search"), so a scheme
 * and everything from the first '/', '?' or '#' are skipped.
 */
static const struct src_site *site_by_utm(const char *v, size_t len)
{
	char f[64], g[64];

	if (len == 0)
		return NULL;
	if (memchr(v, '.', len)) {
		const struct src_site *s;
		const char *h = v;
		size_t n = len;

		for (size_t i = 0; i + 3 <= len; i++) {
			if (memcmp(v + i, "://", 3) == 0) {
				h = v + i + 3;
				n = len - i - 3;
				break;
			}
		}
		for (size_t i = 0; i < n; i++) {
			if (h[i] == '/' || h[i] == '?' || h[i] == '#') {
				n = i;
				break;
			}
		}
		s = site_by_host(h, n);
		if (s)
			return s;
	}
	if (!fold(v, len, f, sizeof(f)))
		return NULL;
	for (size_t i = 0; i < ALOG_ARRAY_LEN(sites); i++) {
		const struct src_site *s = &sites[i];

		if (fold(s->name, strlen(s->name), g, sizeof(g)) &&
		    strcmp(f, g) == 0)
			return s;
		for (int k = 0; k < SITE_ALIASES && s->aliases[k]; k++)
			if (strcmp(f, s->aliases[k]) == 0)
				return s;
	}
	return NULL;
}

/*
 * Normalize a reg-name or IPv6 literal host and its port from [s, e) into
 * out: lowercase, one trailing dot dropped, the scheme's default port
 * dropped. Hosts are ASCII as browsers send them (IDNs in punycode); a
 * percent-escape, any other byte, an empty label or a bad port is refused.
 */
static int host_norm(const char *s, const char *e, unsigned default_port,
		     char *out, size_t cap)
{
	const char *name_end, *port;
	unsigned long pv = 0;
	size_t n = 0, nlen;

	if (s < e && *s == '[') {
		const char *rb = memchr(s, ']', (size_t)(e - s));
		bool colon = false;

		if (!rb || rb == s + 1)
			return -EINVAL;
		for (const char *q = s + 1; q < rb; q++) {
			if (hexval(*q) < 0 && *q != ':' && *q != '.')
				return -EINVAL;
			colon = colon || *q == ':';
		}
		if (!colon)
			return -EINVAL;
		name_end = port = rb + 1;
	} else {
		port = memchr(s, ':', (size_t)(e - s));
		if (!port)
			port = e;
		name_end = port;
		if (name_end > s && name_end[-1] == '.')
			name_end--;
		if (name_end == s || *s == '.' || name_end[-1] == '.')
			return -EINVAL;
		for (const char *q = s; q < name_end; q++) {
			if (!is_alpha(*q) && !is_digit(*q) && *q != '-' &&
			    *q != '_' && *q != '.')
				return -EINVAL;
			if (*q == '.' && q + 1 < name_end && q[1] == '.')
				return -EINVAL;
		}
	}
	if (port < e) {
		if (*port != ':' || e - port > 6)
			return -EINVAL;
		for (const char *q = port + 1; q < e; q++) {
			if (!is_digit(*q))
				return -EINVAL;
			pv = pv * 10 + (unsigned long)(*q - '0');
		}
		if (pv > 65535)
			return -EINVAL;
		/* "host:" is no port, as WHATWG has it. */
		if (e - port == 1 || pv == default_port)
			port = e;
	}

	nlen = (size_t)(name_end - s);
	if (nlen + 1 > cap)
		return -EINVAL;
	for (size_t i = 0; i < nlen; i++)
		out[n++] = lower(s[i]);
	if (port < e) {
		char digits[8];
		int d = 0;

		do {
			digits[d++] = (char)('0' + pv % 10);
			pv /= 10;
		} while (pv);
		if (n + 1 + (size_t)d + 1 > cap)
			return -EINVAL;
		out[n++] = ':';
		while (d > 0)
			out[n++] = digits[--d];
	}
	out[n] = '\0';
	return 0;
}

/* ---- paths and queries ---- */

static const char hex_upper[] = "0123456789ABCDEF";

/*
 * Append [s, e) to out (at *n, cap bytes with the NUL) in canonical form:
 * percent-escapes get uppercase hex (RFC 3986 6.2.2.1: %c3 and %C3 are the
 * same byte, so one page is one row), controls, space, DEL and non-ASCII
 * bytes are escaped as a browser would, a '%' that starts no escape is left
 * alone. Nothing is decoded: %2F in a path is not '/'. In a path '\' is '/'
 * (WHATWG, for http). Returns -EINVAL when it does not fit; out then
 * holds what did, cut before an escape, not inside one.
 */
static int append_norm(char *out, size_t *n, size_t cap, const char *s,
		       const char *e, bool path)
{
	size_t k = *n;
	int rc = 0;

	for (; s < e; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '%' && e - s >= 3 && hexval(s[1]) >= 0 &&
		    hexval(s[2]) >= 0) {
			if (k + 3 >= cap) {
				rc = -EINVAL;
				break;
			}
			out[k++] = '%';
			out[k++] = hex_upper[hexval(s[1])];
			out[k++] = hex_upper[hexval(s[2])];
			s += 2;
		} else if (c <= 0x20 || c >= 0x7f) {
			if (k + 3 >= cap) {
				rc = -EINVAL;
				break;
			}
			out[k++] = '%';
			out[k++] = hex_upper[c >> 4];
			out[k++] = hex_upper[c & 15];
		} else {
			if (k + 1 >= cap) {
				rc = -EINVAL;
				break;
			}
			out[k++] = path && c == '\\' ? '/' : (char)c;
		}
	}
	out[k] = '\0';
	*n = k;
	return rc;
}

/* Percent-decode, '+' to space; out has room for len bytes. */
static size_t decode_value(const char *p, size_t len, char *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (p[i] == '+') {
			out[n++] = ' ';
		} else if (p[i] == '%' && len - i >= 3 &&
			   hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0) {
			out[n++] = (char)(hexval(p[i + 1]) << 4 |
					  hexval(p[i + 2]));
			i += 2;
		} else {
			out[n++] = p[i];
		}
	}
	return n;
}

static bool is_tracking(const char *name, size_t len)
{
	if (len >= 4 && eq_nocase(name, 4, "utm_", 4))
		return true;
	for (size_t i = 0; i < ALOG_ARRAY_LEN(tracking_params); i++)
		if (eq_nocase(name, len, tracking_params[i],
			      strlen(tracking_params[i])))
			return true;
	return false;
}

/*
 * A utm_* value into its slot, if it is one of the five and the slot is
 * still empty (the first non-empty one wins, as at the edge). The value is
 * decoded; when that is not UTF-8 without NUL (a Latin-1 %E9, a %00) it is
 * kept escaped as in the query, which is still what the URL said.
 */
static void take_utm(struct src_url *out, const char *name, size_t nlen,
		     const char *v, size_t vlen)
{
	static const char *const keys[ALOG_UTM_COUNT] = {
		[ALOG_UTM_SOURCE] = "utm_source",
		[ALOG_UTM_MEDIUM] = "utm_medium",
		[ALOG_UTM_CAMPAIGN] = "utm_campaign",
		[ALOG_UTM_CONTENT] = "utm_content",
		[ALOG_UTM_TERM] = "utm_term",
	};
	char dec[SRC_URL_MAX];

	for (int k = 0; k < ALOG_UTM_COUNT; k++) {
		size_t n = 0;

		if (!eq_nocase(name, nlen, keys[k], strlen(keys[k])))
			continue;
		if (out->utm[k][0] != '\0' || vlen > sizeof(dec))
			return;
		n = decode_value(v, vlen, dec);
		if (alog_event_utf8_prefix(dec, n, n) == n) {
			copy_text(out->utm[k], SRC_UTM_MAX, dec, n);
		} else {
			/* What fits, cut before an escape, never inside. */
			n = 0;
			append_norm(dec, &n, SRC_UTM_MAX, v, v + vlen, false);
			copy_text(out->utm[k], SRC_UTM_MAX, dec, n);
		}
		return;
	}
}

/*
 * The query [s, e) without tracking parameters into out->query, the others
 * in their order, each normalized by append_norm(); empty pieces
 * ("a=1&&b=2") go too. Names are compared decoded (utm%5Fsource is
 * utm_source). A tracking parameter is looked at only for its name (and a
 * utm value), so however long it is it cannot make the query not fit.
 * When the next kept piece would not fit (escaping can triple raw bytes),
 * the query ends after the last whole piece that did and query_cut is set;
 * utm values after that point are still taken.
 */
static void query_norm(struct src_url *out, const char *s, const char *e)
{
	size_t qn = 0;

	while (s < e) {
		const char *amp = memchr(s, '&', (size_t)(e - s));
		const char *pe = amp ? amp : e;
		const char *eq = memchr(s, '=', (size_t)(pe - s));
		size_t nlen = (size_t)((eq ? eq : pe) - s), dn = 0, mark = qn;
		char name[SRC_URL_MAX]; /* a decoded name is never longer */

		if (nlen <= sizeof(name))
			dn = decode_value(s, nlen, name);
		if (pe == s) {
			/* an empty piece */
		} else if (nlen <= sizeof(name) && is_tracking(name, dn)) {
			if (eq)
				take_utm(out, name, dn, eq + 1,
					 (size_t)(pe - eq - 1));
		} else if (!out->query_cut) {
			bool fits = qn == 0 || qn + 1 < sizeof(out->query);

			if (fits && qn > 0)
				out->query[qn++] = '&';
			if (!fits ||
			    append_norm(out->query, &qn, sizeof(out->query), s,
					pe, false)) {
				out->query_cut = true;
				qn = mark;
				out->query[qn] = '\0';
			}
		}
		s = pe + 1;
	}
}

static void url_clear(struct src_url *out)
{
	out->host[0] = out->path[0] = out->query[0] = '\0';
	out->query_cut = false;
	for (int k = 0; k < ALOG_UTM_COUNT; k++)
		out->utm[k][0] = '\0';
}

int src_url_parse(const char *url, size_t len, struct src_url *out)
{
	const char *s = url, *e, *auth, *auth_end, *hs, *q, *path_end;
	unsigned default_port;
	size_t pn = 0;

	url_clear(out);
	if (!url || len > SRC_URL_MAX)
		return -EINVAL;
	trim(&s, &len);
	e = s + len;
	if (len >= 7 && eq_nocase(s, 7, "http://", 7)) {
		auth = s + 7;
		default_port = 80;
	} else if (len >= 8 && eq_nocase(s, 8, "https://", 8)) {
		auth = s + 8;
		default_port = 443;
	} else {
		return -EINVAL;
	}

	for (auth_end = auth; auth_end < e; auth_end++)
		if (*auth_end == '/' || *auth_end == '?' || *auth_end == '#' ||
		    *auth_end == '\\')
			break;
	/* Userinfo is dropped, never kept: the last '@' ends it (WHATWG). */
	hs = auth;
	for (const char *a = auth; a < auth_end; a++)
		if (*a == '@')
			hs = a + 1;
	if (host_norm(hs, auth_end, default_port, out->host, sizeof(out->host)))
		goto out_invalid;

	for (path_end = auth_end; path_end < e; path_end++)
		if (*path_end == '?' || *path_end == '#')
			break;
	if (path_end == auth_end) {
		out->path[pn++] = '/';
		out->path[pn] = '\0';
	} else if (append_norm(out->path, &pn, sizeof(out->path), auth_end,
			       path_end, true)) {
		goto out_invalid;
	}

	/* The fragment is dropped, hash-router paths too (enrichment.md). */
	if (path_end < e && *path_end == '?') {
		q = memchr(path_end, '#', (size_t)(e - path_end));
		query_norm(out, path_end + 1, q ? q : e);
	}
	return 0;

out_invalid:
	url_clear(out);
	return -EINVAL;
}

/* ---- classification ---- */

static bool same_site(const char *ref_host, const char *page_host)
{
	const char *a = ref_host, *b = page_host;
	size_t alen = strlen(ref_host), blen;

	if (!page_host)
		return false;
	blen = strlen(page_host);
	trim(&b, &blen);
	host_bare(&a, &alen, true);
	host_bare(&b, &blen, true);
	return blen > 0 && eq_nocase(a, alen, b, blen);
}

static enum src_channel channel_by_medium(const char *m, size_t len, bool *hit)
{
	char f[32];

	*hit = false;
	if (len == 0 || !fold(m, len, f, sizeof(f)))
		return SRC_DIRECT;
	for (size_t i = 0; i < ALOG_ARRAY_LEN(mediums); i++) {
		if (strcmp(f, mediums[i].folded) == 0) {
			*hit = true;
			return mediums[i].channel;
		}
	}
	return SRC_DIRECT;
}

void src_classify(const char *utm_medium, size_t mlen, const char *utm_source,
		  size_t slen, const char *referrer, size_t rlen,
		  const char *page_host, struct src_traffic *out)
{
	const struct src_site *ref_site = NULL, *utm_site;
	char med[SRC_UTM_MAX], src[SRC_SOURCE_MAX];
	struct src_url ref;
	bool have_ref = false, by_medium;
	enum src_channel ch;

	out->channel = SRC_DIRECT;
	out->source[0] = out->referrer_host[0] = out->referrer_path[0] = '\0';

	copy_text(med, sizeof(med), utm_medium, mlen);
	copy_text(src, sizeof(src), utm_source, slen);

	if (referrer && rlen > 0 && src_url_parse(referrer, rlen, &ref) == 0 &&
	    !same_site(ref.host, page_host)) {
		have_ref = true;
		/* The referrer's query is not kept: it holds search terms. */
		memcpy(out->referrer_host, ref.host,
		       sizeof(out->referrer_host));
		memcpy(out->referrer_path, ref.path,
		       sizeof(out->referrer_path));
		ref_site = site_by_host(ref.host, strlen(ref.host));
	}
	utm_site = site_by_utm(src, strlen(src));

	ch = channel_by_medium(med, strlen(med), &by_medium);
	if (by_medium)
		out->channel = ch;
	else if (src[0] != '\0')
		out->channel = utm_site ? utm_site->channel : SRC_REFERRAL;
	else if (have_ref)
		out->channel = ref_site ? ref_site->channel : SRC_REFERRAL;

	/*
	 * The label follows the same order as the channel, utm_source before
	 * the referrer, so "utm_source=newsletter" from a Google click reads
	 * "newsletter" / referral rather than "Google" / referral.
	 */
	if (utm_site) {
		copy_text(out->source, sizeof(out->source), utm_site->name,
			  strlen(utm_site->name));
	} else if (src[0] != '\0') {
		memcpy(out->source, src, sizeof(out->source));
	} else if (ref_site) {
		copy_text(out->source, sizeof(out->source), ref_site->name,
			  strlen(ref_site->name));
	} else if (have_ref) {
		const char *h = ref.host;
		size_t n = strlen(h);

		if (n > 4 && eq_nocase(h, 4, "www.", 4)) {
			h += 4;
			n -= 4;
		}
		copy_text(out->source, sizeof(out->source), h, n);
	}
}
