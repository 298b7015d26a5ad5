/*
 * test_source.c - the writer's traffic-source and URL rules
 * (writer/writer_source.c, docs/enrichment.md) as tables of cases.
 *
 * Every rule of the document has rows here, so changing a rule without
 * changing its table fails. Each input is copied into a buffer of exactly
 * its length first, so that under ASan a read past the given length (the
 * inputs are not NUL-terminated) is an error, not luck. A seeded random
 * pass at the end checks the invariants on garbage: bounded, NUL-terminated,
 * printable-ASCII URL parts, UTF-8 labels, and normalization idempotent.
 */
#include "writer_source.h"

#include <stdbool.h>
#include <stdint.h>

#include "test_util.h"

/* A malloc'd copy of exactly len bytes (NULL stays NULL); caller frees. */
static char *exact(const char *s, size_t len)
{
	char *p;

	if (!s)
		return NULL;
	p = malloc(len ? len : 1);
	REQUIRE(p);
	memcpy(p, s, len);
	return p;
}

static size_t slen(const char *s)
{
	return s ? strlen(s) : 0;
}

static int parse(const char *s, size_t len, struct src_url *u)
{
	char *p = exact(s, len);
	int rc = src_url_parse(p, len, u);

	free(p);
	return rc;
}

static bool str_is(const char *file, int line, const char *what,
		   const char *got, const char *want)
{
	if (strcmp(got, want) == 0)
		return true;
	fprintf(stderr, "%s:%d: %s: got \"%s\", want \"%s\"\n", file, line,
		what, got, want);
	return false;
}

#define CHECK_STR(what, got, want) \
	CHECK(str_is(__FILE__, __LINE__, (what), (got), (want)))

static bool all_empty(const struct src_url *u)
{
	bool e = !u->host[0] && !u->path[0] && !u->query[0];

	for (int k = 0; k < ALOG_UTM_COUNT; k++)
		e = e && !u->utm[k][0];
	return e;
}

/* ---- URL normalization ---- */

struct url_case {
	const char *in;
	int rc;
	const char *host, *path, *query;
};

/* clang-format off */
#define BAD(s) { s, -EINVAL, "", "", "" }
/* clang-format on */

static const struct url_case url_cases[] = {
	/* host: case, trailing dot, default ports, userinfo */
	{ "http://Example.COM/", 0, "example.com", "/", "" },
	{ "HTTPS://WWW.Example.com/Path/To", 0, "www.example.com", "/Path/To",
	  "" },
	{ "hTtP://example.com", 0, "example.com", "/", "" },
	{ "http://example.com.", 0, "example.com", "/", "" },
	{ "http://example.com./a", 0, "example.com", "/a", "" },
	{ "http://example.com.:8080/a", 0, "example.com:8080", "/a", "" },
	{ "http://example.com:80/a", 0, "example.com", "/a", "" },
	{ "https://example.com:443/a", 0, "example.com", "/a", "" },
	{ "http://example.com:443/a", 0, "example.com:443", "/a", "" },
	{ "https://example.com:80/", 0, "example.com:80", "/", "" },
	{ "http://example.com:8080", 0, "example.com:8080", "/", "" },
	{ "http://example.com:080/", 0, "example.com", "/", "" },
	{ "http://example.com:08080/", 0, "example.com:8080", "/", "" },
	{ "http://example.com:/x", 0, "example.com", "/x", "" },
	{ "http://example.com:0/", 0, "example.com:0", "/", "" },
	{ "http://example.com:65535/", 0, "example.com:65535", "/", "" },
	BAD("http://example.com:65536/"),
	BAD("http://example.com:123456/"),
	BAD("http://example.com:8a/"),
	BAD("http://example.com:-1/"),
	BAD("http://example.com:80:80/"),
	{ "http://user:pass@example.com/", 0, "example.com", "/", "" },
	{ "https://user:pass@Example.com:8443/p?q=1", 0, "example.com:8443",
	  "/p", "q=1" },
	{ "http://user@example.com/", 0, "example.com", "/", "" },
	{ "http://a@b@example.com/", 0, "example.com", "/", "" },
	{ "http://:@example.com/", 0, "example.com", "/", "" },
	{ "http://example.com/@evil.com", 0, "example.com", "/@evil.com", "" },
	{ "http://example.com?@evil.com", 0, "example.com", "/", "@evil.com" },
	BAD("http://user:pass@/"),
	BAD("http://user:pass@:80/"),
	/* IP literals */
	{ "http://[::1]:8080/x", 0, "[::1]:8080", "/x", "" },
	{ "http://[::1]/", 0, "[::1]", "/", "" },
	{ "http://[2001:DB8::1]:80/", 0, "[2001:db8::1]", "/", "" },
	{ "https://[::ffff:192.0.2.1]:443/", 0, "[::ffff:192.0.2.1]", "/", "" },
	{ "http://127.0.0.1:3000/a", 0, "127.0.0.1:3000", "/a", "" },
	{ "http://localhost/", 0, "localhost", "/", "" },
	{ "http://my_host.local/", 0, "my_host.local", "/", "" },
	{ "http://xn--mnchen-3ya.de/", 0, "xn--mnchen-3ya.de", "/", "" },
	{ "http://[::1]", 0, "[::1]", "/", "" },
	{ "https://[2001:db8::A:B]:8443/p?q", 0, "[2001:db8::a:b]:8443", "/p",
	  "q" },
	{ "https://u:p@[::1]:443/", 0, "[::1]", "/", "" },
	{ "http://XN--MNCHEN-3YA.DE/", 0, "xn--mnchen-3ya.de", "/", "" },
	{ "http://xn--80aswg.xn--p1ai/", 0, "xn--80aswg.xn--p1ai", "/", "" },
	{ "http://u:p%40ss@example.com/", 0, "example.com", "/", "" },
	{ "http://user:p@ss@example.com:8080/", 0, "example.com:8080", "/",
	  "" },
	{ "http://www.google.com@evil.com/", 0, "evil.com", "/", "" },
	{ "http://evil.com#@www.google.com/", 0, "evil.com", "/", "" },
	BAD("http://[fe80::1%25eth0]/"),
	BAD("http://b\xc3\xbc"
	    "cher.de/"),
	BAD("http://b%C3%BCcher.de/"),
	BAD("http://[::1/"),
	BAD("http://[]/"),
	BAD("http://[::1]x/"),
	BAD("http://[zz::1]/"),
	BAD("http://[1234]/"),
	BAD("http://[::1]:99999/"),
	/* bad hosts */
	BAD("http://exa mple.com/"),
	BAD("http://exa%41mple.com/"),
	BAD("http://ex..ample.com/"),
	BAD("http://.example.com/"),
	BAD("http://./"),
	BAD("http://../"),
	BAD("http://example.com../"),
	BAD("http://m\xc3\xbcnchen.de/"),
	BAD("http://exa<mple.com/"),
	BAD("http:///path"),
	BAD("http://:8080/"),
	BAD("http://?q=1"),
	BAD("http://#x"),
	/* not absolute http(s) */
	BAD("http://"),
	BAD("https://"),
	BAD("http:"),
	BAD("http:/example.com"),
	BAD("http:\\\\example.com"),
	BAD("//example.com/"),
	BAD("/relative/path"),
	BAD("relative/path"),
	BAD("example.com"),
	BAD("www.example.com/x"),
	BAD("ftp://example.com/"),
	BAD("ws://example.com/"),
	BAD("httpx://example.com/"),
	BAD("javascript:alert(1)"),
	BAD("data:text/html,hi"),
	BAD("android-app://com.google.android.gm/"),
	BAD("about:blank"),
	BAD("not a url"),
	BAD(""),
	BAD(" "),
	BAD("\xff\xfe\xfd"),
	/* surrounding whitespace is trimmed */
	{ "  http://example.com/a  \r\n", 0, "example.com", "/a", "" },
	{ "\thttps://example.com", 0, "example.com", "/", "" },
	/* fragments are dropped, hash-router paths too */
	{ "http://e.com/a#frag", 0, "e.com", "/a", "" },
	{ "http://e.com/#/settings/profile", 0, "e.com", "/", "" },
	{ "http://e.com#/x", 0, "e.com", "/", "" },
	{ "http://e.com/a?x=1#y?z=2", 0, "e.com", "/a", "x=1" },
	{ "http://e.com/a#x?y=1", 0, "e.com", "/a", "" },
	{ "http://e.com/a?#", 0, "e.com", "/a", "" },
	/* tracking parameters go, the others stay in order */
	{ "http://e.com/p?a=1&utm_source=x&b=2&UTM_Medium=y&gclid=abc&c=3", 0,
	  "e.com", "/p", "a=1&b=2&c=3" },
	{ "http://e.com/?fbclid=IwAR0abc", 0, "e.com", "/", "" },
	{ "http://e.com/?gclid=1&gbraid=1&wbraid=1&dclid=1&fbclid=1&msclkid=1"
	  "&yclid=1&twclid=1&ttclid=1&li_fat_id=1&igshid=1&mc_cid=1&mc_eid=1"
	  "&_ga=1&_gl=1&ref_src=1&keep=1",
	  0, "e.com", "/", "keep=1" },
	{ "http://e.com/?a=1&gclsrc=aw.ds&gad_source=1&gad_campaignid=2"
	  "&srsltid=x&ysclid=y&sccid=z&epik=e&s_kwcid=k&ef_id=f&irclickid=i"
	  "&rb_clid=r&_hsenc=h&_hsmi=m&__hssc=1&__hstc=2&__hsfp=3"
	  "&hsCtaTracking=4&mkt_tok=t&vero_id=v&vero_conv=c&oly_anon_id=o"
	  "&oly_enc_id=p&wickedid=w&_openstat=s&_kx=k&b=2",
	  0, "e.com", "/", "a=1&b=2" },
	/* the kept ones keep their order wherever the tracking ones were */
	{ "http://e.com/?z=1&utm_source=a&y=2&fbclid=b&x=3&_ga=c", 0, "e.com",
	  "/", "z=1&y=2&x=3" },
	{ "http://e.com/?fbclid=1&z=1&y=2&gclid=2", 0, "e.com", "/",
	  "z=1&y=2" },
	{ "http://e.com/?a=1&b=1&a=2", 0, "e.com", "/", "a=1&b=1&a=2" },
	/* names any case, percent-encoded anywhere; values never matter */
	{ "http://e.com/?FBCLID=1&Gad_Source=2&_HSENC=3&MKT_TOK=4&k", 0,
	  "e.com", "/", "k" },
	{ "http://e.com/?%5Fga=1&%66%62%63%6c%69%64=2&%55TM_term=3&fb%43lid=4"
	  "&k=%5Fga",
	  0, "e.com", "/", "k=%5Fga" },
	{ "http://e.com/?utm%5fsource%3dx=1&k", 0, "e.com", "/", "k" },
	{ "http://e.com/?gclid%3D1=2&k", 0, "e.com", "/", "gclid%3D1=2&k" },
	{ "http://e.com/?utm%255Fsource=1", 0, "e.com", "/",
	  "utm%255Fsource=1" },
	{ "http://e.com/?gcl%69d", 0, "e.com", "/", "" },
	/* near misses stay */
	{ "http://e.com/?gclsrcx=1&_gax=2&ref=3&id=4&si=5&_hs=6&ga=7", 0,
	  "e.com", "/", "gclsrcx=1&_gax=2&ref=3&id=4&si=5&_hs=6&ga=7" },
	/* tracking noise in the fragment goes with the fragment */
	{ "http://e.com/p?a=1&gclid=2#x&fbclid=3", 0, "e.com", "/p", "a=1" },
	{ "http://e.com/p#?gclid=2&a=1", 0, "e.com", "/p", "" },
	{ "http://e.com/?utm_source=a&utm_medium=b&utm_campaign=c&utm_content=d"
	  "&utm_term=e&utm_id=f&utm_source_platform=g&Utm_Whatever=h&UTM_=i",
	  0, "e.com", "/", "" },
	{ "http://e.com/?GCLID=1&FbClid=2&MSCLKID=3&x", 0, "e.com", "/", "x" },
	{ "http://e.com/?b=2&a=1&c", 0, "e.com", "/", "b=2&a=1&c" },
	{ "http://e.com/?a=1&&b=2&", 0, "e.com", "/", "a=1&b=2" },
	{ "http://e.com/?&&&", 0, "e.com", "/", "" },
	{ "http://e.com/?", 0, "e.com", "/", "" },
	{ "http://e.com?x=1", 0, "e.com", "/", "x=1" },
	{ "http://e.com/?utm_source", 0, "e.com", "/", "" },
	{ "http://e.com/?gclid", 0, "e.com", "/", "" },
	{ "http://e.com/?gclidx=1&xgclid=2&utm=3&utmsource=4&ga=5", 0, "e.com",
	  "/", "gclidx=1&xgclid=2&utm=3&utmsource=4&ga=5" },
	{ "http://e.com/?utm%5Fsource=a&x=1&%67clid=2", 0, "e.com", "/",
	  "x=1" },
	{ "http://e.com/?ref=hn&source=x", 0, "e.com", "/", "ref=hn&source=x" },
	/* long and fully escaped names are decoded too (found by fuzz_source) */
	{ "https://a.t/?utm_aaaaaaaaaaaaaaaaaaaaaaaaaaaaa=1&k=2", 0, "a.t", "/",
	  "k=2" },
	{ "https://a.t/?%75%74%6D%5F%63%61%6D%70%61%69%67%6E=spring&k=2", 0,
	  "a.t", "/", "k=2" },
	{ "http://e.com/?=1&a==2", 0, "e.com", "/", "=1&a==2" },
	{ "http://e.com/?x=gclid&y=utm_source", 0, "e.com", "/",
	  "x=gclid&y=utm_source" },
	/* percent-escapes: uppercase hex, nothing decoded */
	{ "http://e.com/caf%c3%a9?q=%e2%82%ac", 0, "e.com", "/caf%C3%A9",
	  "q=%E2%82%AC" },
	{ "http://e.com/100%/x%2", 0, "e.com", "/100%/x%2", "" },
	{ "http://e.com/%zz%4g%", 0, "e.com", "/%zz%4g%", "" },
	{ "http://e.com/a%2fb", 0, "e.com", "/a%2Fb", "" },
	{ "http://e.com/a%2Fb%3f", 0, "e.com", "/a%2Fb%3F", "" },
	/* bytes a browser would escape are escaped */
	{ "http://e.com/a b", 0, "e.com", "/a%20b", "" },
	{ "http://e.com/caf\xc3\xa9", 0, "e.com", "/caf%C3%A9", "" },
	{ "http://e.com/\x01\x7f\xff", 0, "e.com", "/%01%7F%FF", "" },
	{ "http://e.com/?q=a b&r=\xc3\xa9", 0, "e.com", "/",
	  "q=a%20b&r=%C3%A9" },
	/* everything else is left alone */
	{ "http://e.com/a+b?q=a+b", 0, "e.com", "/a+b", "q=a+b" },
	{ "http://e.com/./a/../b", 0, "e.com", "/./a/../b", "" },
	{ "http://e.com//a//", 0, "e.com", "//a//", "" },
	{ "http://e.com/A/B.html", 0, "e.com", "/A/B.html", "" },
	{ "http://e.com/a;b=c,d!$'()*", 0, "e.com", "/a;b=c,d!$'()*", "" },
	/* '\' is '/' in an http path (WHATWG) and ends the authority */
	{ "http://e.com\\a\\b", 0, "e.com", "/a/b", "" },
	{ "http://evil.com\\@google.com/", 0, "evil.com", "/@google.com/", "" },
};

static void test_url_table(void)
{
	for (size_t i = 0; i < sizeof(url_cases) / sizeof(url_cases[0]); i++) {
		const struct url_case *c = &url_cases[i];
		struct src_url u;
		int rc;

		memset(&u, 'x', sizeof(u)); /* stale bytes must not show */
		rc = parse(c->in, strlen(c->in), &u);
		if (rc != c->rc)
			fprintf(stderr, "url case %zu \"%s\": rc %d\n", i,
				c->in, rc);
		CHECK_EQ(rc, c->rc);
		CHECK_STR(c->in, u.host, c->host);
		CHECK_STR(c->in, u.path, c->path);
		CHECK_STR(c->in, u.query, c->query);
		if (rc != 0)
			CHECK(all_empty(&u));
	}
}

struct utm_case {
	const char *in;
	const char *utm[ALOG_UTM_COUNT]; /* source medium campaign content term */
};

static const struct utm_case utm_cases[] = {
	{ "http://e.com/?utm_source=News+Letter&utm_medium=e%2Dmail"
	  "&utm_campaign=spring%20sale&utm_content=%C3%A9t%C3%A9&utm_term=a%2Bb",
	  { "News Letter", "e-mail", "spring sale", "\xc3\xa9t\xc3\xa9",
	    "a+b" } },
	{ "http://e.com/?utm_term=t&utm_content=c&utm_campaign=x&utm_medium=m"
	  "&utm_source=s",
	  { "s", "m", "x", "c", "t" } },
	{ "http://e.com/?utm_source=a&utm_source=b", { "a" } },
	{ "http://e.com/?utm_source=&utm_source=b", { "b" } },
	{ "http://e.com/?utm_source=+%20&utm_source=b", { "b" } },
	{ "http://e.com/?utm_source&utm_source=b", { "b" } },
	{ "http://e.com/?UTM_SOURCE=Google&Utm_Medium=CPC",
	  { "Google", "CPC" } },
	{ "http://e.com/?utm%5fsource=x", { "x" } },
	{ "http://e.com/?utm_source=+%20x%20y+", { "x y" } },
	{ "http://e.com/?utm_source=a=b", { "a=b" } },
	{ "http://e.com/?utm_source=100%", { "100%" } },
	{ "http://e.com/?utm_source=%e2%82%ac", { "\xe2\x82\xac" } },
	/* raw bytes are escaped first, then decoded back */
	{ "http://e.com/?utm_source=\xc3\xa9", { "\xc3\xa9" } },
	/* not UTF-8 without NUL when decoded: kept escaped */
	{ "http://e.com/?utm_source=caf%E9", { "caf%E9" } },
	{ "http://e.com/?utm_source=caf%e9", { "caf%E9" } },
	{ "http://e.com/?utm_source=a%00b", { "a%00b" } },
	{ "http://e.com/?utm_source=\xff", { "%FF" } },
	/* the fragment is not the query */
	{ "http://e.com/#?utm_source=x", { "" } },
	{ "http://e.com/?a=1#utm_source=x", { "" } },
	{ "http://e.com/?utm_id=1&utm_source_platform=x", { "" } },
	{ "http://e.com/", { "" } },
};

static void test_utm_table(void)
{
	for (size_t i = 0; i < sizeof(utm_cases) / sizeof(utm_cases[0]); i++) {
		const struct utm_case *c = &utm_cases[i];
		struct src_url u;

		CHECK_EQ(parse(c->in, strlen(c->in), &u), 0);
		for (int k = 0; k < ALOG_UTM_COUNT; k++)
			CHECK_STR(c->in, u.utm[k], c->utm[k] ? c->utm[k] : "");
		CHECK(strstr(u.query, "utm") == NULL);
	}
}

static char big[8192];

/* "prefix" + n copies of fill + "suffix" in big; returns the length. */
static size_t build(const char *prefix, const char *fill, size_t n,
		    const char *suffix)
{
	size_t len = strlen(prefix), fl = strlen(fill);

	memcpy(big, prefix, len);
	for (size_t i = 0; i < n; i++, len += fl)
		memcpy(big + len, fill, fl);
	memcpy(big + len, suffix, strlen(suffix));
	len += strlen(suffix);
	REQUIRE(len < sizeof(big));
	big[len] = '\0';
	return len;
}

static void test_url_limits(void)
{
	struct src_url u;
	size_t len;

	/* SRC_URL_MAX bytes are accepted, one more is not */
	len = build("http://e.com/", "a", SRC_URL_MAX - 13, "");
	CHECK_EQ(len, SRC_URL_MAX);
	CHECK_EQ(parse(big, len, &u), 0);
	CHECK_EQ(strlen(u.path), SRC_URL_MAX - 12);
	len = build("http://e.com/", "a", SRC_URL_MAX - 12, "");
	CHECK_EQ(parse(big, len, &u), -EINVAL);
	CHECK(all_empty(&u));
	len = build("http://e.com/?q=", "a", SRC_URL_MAX - 16, "");
	CHECK_EQ(parse(big, len, &u), 0);
	CHECK_EQ(strlen(u.query), SRC_URL_MAX - 14);

	/* a path that grows by escaping: 2047 bytes fit, 2050 do not */
	len = build("http://e.com/", "\x7f", 682, "");
	CHECK_EQ(parse(big, len, &u), 0);
	CHECK_EQ(strlen(u.path), SRC_PATH_MAX - 1);
	len = build("http://e.com/", "\x7f", 683, "");
	CHECK_EQ(parse(big, len, &u), -EINVAL);
	CHECK(all_empty(&u));
	len = build("http://e.com/", "\xc3\xa9", 400, "");
	CHECK_EQ(parse(big, len, &u), -EINVAL);

	/*
	 * A query that grows past its buffer is cut after its last whole
	 * parameter; the URL, its host and path stay (query_cut says so).
	 */
	len = build("http://e.com/p?q=", "\x7f", 681, "");
	CHECK_EQ(parse(big, len, &u), 0);
	CHECK_EQ(strlen(u.query), SRC_PATH_MAX - 3);
	CHECK(!u.query_cut);
	len = build("http://e.com/p?q=", "\x7f", 682, "");
	CHECK_EQ(parse(big, len, &u), 0);
	CHECK_STR("cut", u.host, "e.com");
	CHECK_STR("cut", u.path, "/p");
	CHECK_STR("cut", u.query, "");
	CHECK(u.query_cut);
	len = build("http://e.com/p?a=1&b=2&q=", "\x7f", 680, "&c=3");
	CHECK_EQ(parse(big, len, &u), 0);
	CHECK_STR("cut", u.query, "a=1&b=2");
	CHECK(u.query_cut);
	/* what follows the cut is dropped, but its utm values are taken */
	len = build("http://e.com/?a=1&q=", "\x7f", 681,
		    "&utm_source=fb&c=3&utm_medium=social");
	CHECK_EQ(parse(big, len, &u), 0);
	CHECK_STR("cut", u.query, "a=1");
	CHECK_STR("cut utm", u.utm[ALOG_UTM_SOURCE], "fb");
	CHECK_STR("cut utm", u.utm[ALOG_UTM_MEDIUM], "social");
	/* the piece that ends exactly at the buffer fits */
	len = build("http://e.com/?a=12&q=", "\x7f", 680, "");
	CHECK_EQ(parse(big, len, &u), 0);
	CHECK_EQ(strlen(u.query), SRC_PATH_MAX - 1);
	CHECK(!u.query_cut);
	/* ... and then nothing more, not even the '&' (found by mutation) */
	len = build("http://e.com/?a=12&q=", "\x7f", 680, "&b&gclid=1");
	CHECK_EQ(parse(big, len, &u), 0);
	CHECK_EQ(strlen(u.query), SRC_PATH_MAX - 1);
	CHECK(u.query[strlen(u.query) - 1] == 'F');
	CHECK(u.query_cut);
	/* a tracking parameter never counts against the query's size */
	len = build("http://e.com/?gclid=", "\x7f", 682, "&a=1");
	CHECK_EQ(parse(big, len, &u), 0);
	CHECK_STR("gclid", u.query, "a=1");
	CHECK(!u.query_cut);
	len = build("http://e.com/?a=1&b=", "%", 2000, "");
	CHECK_EQ(parse(big, len, &u), 0);
	CHECK_EQ(strlen(u.query), 2006);
	/* a failure after a cut clears the flag */
	CHECK_EQ(parse("http://e.com:0x/", 16, &u), -EINVAL);
	CHECK(!u.query_cut);

	/* many parameters: every kept one, in order; every tracking one goes */
	len = build("http://e.com/?", "k=v&", 500, "z=1");
	CHECK_EQ(parse(big, len, &u), 0);
	CHECK_EQ(strlen(u.query), 500 * 4 + 3);
	CHECK(!u.query_cut);
	len = build("http://e.com/?", "gclid=1&utm_x=2&_ga=3&", 90, "z=1");
	CHECK_EQ(parse(big, len, &u), 0);
	CHECK_STR("many tracking", u.query, "z=1");
	len = build("http://e.com/?a=1", "&utm_source=&fbclid=", 100, "&b=2");
	CHECK_EQ(parse(big, len, &u), 0);
	CHECK_STR("many tracking", u.query, "a=1&b=2");
	CHECK_STR("many empty", u.utm[ALOG_UTM_SOURCE], "");
	len = build("http://e.com/?", "&", 2000, "x=1");
	CHECK_EQ(parse(big, len, &u), 0);
	CHECK_STR("many empty", u.query, "x=1");

	/* host: 255 bytes fit, 256 and 255 + port do not */
	len = build("http://", "a.", 127, "a/");
	CHECK_EQ(parse(big, len, &u), 0);
	CHECK_EQ(strlen(u.host), SRC_HOST_MAX - 1);
	len = build("http://", "a.", 127, "aa/");
	CHECK_EQ(parse(big, len, &u), -EINVAL);
	len = build("http://", "a.", 127, "a:8080/");
	CHECK_EQ(parse(big, len, &u), -EINVAL);
	len = build("http://", "a.", 127, "a:80/"); /* default port goes */
	CHECK_EQ(parse(big, len, &u), 0);
	len = build("http://", "a.", 126, "a.:8/");
	CHECK_EQ(parse(big, len, &u), 0);
	CHECK_EQ(strlen(u.host), 255);
	len = build("http://", "a", 3000, "/"); /* over SRC_URL_MAX too */
	CHECK_EQ(parse(big, len, &u), -EINVAL);
	len = build("http://", "a", 1000, "/");
	CHECK_EQ(parse(big, len, &u), -EINVAL);
	len = build("http://u:", "p", 1500, "@e.com/"); /* long userinfo */
	CHECK_EQ(parse(big, len, &u), 0);
	CHECK_STR("userinfo", u.host, "e.com");

	/* utm values are cut at 255 bytes, on a character */
	len = build("http://e.com/?utm_content=", "a", 300, "");
	CHECK_EQ(parse(big, len, &u), 0);
	CHECK_EQ(strlen(u.utm[ALOG_UTM_CONTENT]), SRC_UTM_MAX - 1);
	len = build("http://e.com/?utm_term=", "%C3%A9", 200, "");
	CHECK_EQ(parse(big, len, &u), 0);
	CHECK_EQ(strlen(u.utm[ALOG_UTM_TERM]), 254);
	CHECK_EQ(alog_event_utf8_prefix(u.utm[ALOG_UTM_TERM], 254, 254), 254);
	len = build("http://e.com/?utm_source=", "%20", 300, "x");
	CHECK_EQ(parse(big, len, &u), 0);
	CHECK_STR("leading spaces", u.utm[ALOG_UTM_SOURCE], "x");

	/* len is the end, whatever follows it */
	CHECK_EQ(parse("http://e.com/abc?x=1", 14, &u), 0);
	CHECK_STR("prefix", u.path, "/a");
	CHECK_EQ(parse("http://e.com:8080", 14, &u), 0);
	CHECK_STR("prefix", u.host, "e.com:8");
	CHECK_EQ(parse("http://e.com/?utm_source=abc", 26, &u), 0);
	CHECK_STR("prefix", u.utm[ALOG_UTM_SOURCE], "a");
	CHECK_EQ(parse("http://[::1]", 11, &u), -EINVAL);
	CHECK_EQ(parse("http://e.com/\0x", 15, &u), 0);
	CHECK_STR("NUL", u.path, "/%00x");
	CHECK_EQ(src_url_parse(NULL, 0, &u), -EINVAL);
	CHECK_EQ(src_url_parse(NULL, 10, &u), -EINVAL);

	/* a failure clears what an earlier success left */
	CHECK_EQ(parse("http://e.com/a?b=1&utm_source=s", 31, &u), 0);
	CHECK_EQ(parse("http://e.com:99999/", 19, &u), -EINVAL);
	CHECK(all_empty(&u));
}

/* ---- classification ---- */

struct cls_case {
	const char *medium, *source, *referrer, *page_host;
	enum src_channel channel;
	const char *label, *ref_host, *ref_path;
};

#define G "https://www.google.com/"

static const struct cls_case cls_cases[] = {
	/* nothing at all */
	{ NULL, NULL, NULL, NULL, SRC_DIRECT, "", "", "" },
	{ "", "", "", "", SRC_DIRECT, "", "", "" },

	/* utm_medium, each value and case variants */
	{ "cpc", NULL, NULL, NULL, SRC_PAID, "", "", "" },
	{ "CPC", NULL, NULL, NULL, SRC_PAID, "", "", "" },
	{ " cpc\t", NULL, NULL, NULL, SRC_PAID, "", "", "" },
	{ "ppc", NULL, NULL, NULL, SRC_PAID, "", "", "" },
	{ "PPC", NULL, NULL, NULL, SRC_PAID, "", "", "" },
	{ "paid", NULL, NULL, NULL, SRC_PAID, "", "", "" },
	{ "Paid", NULL, NULL, NULL, SRC_PAID, "", "", "" },
	{ "paidsearch", NULL, NULL, NULL, SRC_PAID, "", "", "" },
	{ "PaidSearch", NULL, NULL, NULL, SRC_PAID, "", "", "" },
	{ "paid-search", NULL, NULL, NULL, SRC_PAID, "", "", "" },
	{ "paid_search", NULL, NULL, NULL, SRC_PAID, "", "", "" },
	{ "Paid Search", NULL, NULL, NULL, SRC_PAID, "", "", "" },
	{ "email", NULL, NULL, NULL, SRC_EMAIL, "", "", "" },
	{ "EMAIL", NULL, NULL, NULL, SRC_EMAIL, "", "", "" },
	{ "e-mail", NULL, NULL, NULL, SRC_EMAIL, "", "", "" },
	{ "E_Mail", NULL, NULL, NULL, SRC_EMAIL, "", "", "" },
	{ "newsletter", NULL, NULL, NULL, SRC_EMAIL, "", "", "" },
	{ "Newsletter", NULL, NULL, NULL, SRC_EMAIL, "", "", "" },
	{ "social", NULL, NULL, NULL, SRC_SOCIAL, "", "", "" },
	{ "SOCIAL", NULL, NULL, NULL, SRC_SOCIAL, "", "", "" },
	{ "social-media", NULL, NULL, NULL, SRC_SOCIAL, "", "", "" },
	{ "Social-Media", NULL, NULL, NULL, SRC_SOCIAL, "", "", "" },
	{ "social_media", NULL, NULL, NULL, SRC_SOCIAL, "", "", "" },
	{ "socialmedia", NULL, NULL, NULL, SRC_SOCIAL, "", "", "" },
	{ "affiliate", NULL, NULL, NULL, SRC_AFFILIATE, "", "", "" },
	{ "Affiliate", NULL, NULL, NULL, SRC_AFFILIATE, "", "", "" },
	{ "partner", NULL, NULL, NULL, SRC_AFFILIATE, "", "", "" },
	{ "PARTNER", NULL, NULL, NULL, SRC_AFFILIATE, "", "", "" },
	{ "organic", NULL, NULL, NULL, SRC_ORGANIC, "", "", "" },
	{ "Organic", NULL, NULL, NULL, SRC_ORGANIC, "", "", "" },
	{ "referral", NULL, NULL, NULL, SRC_REFERRAL, "", "", "" },
	{ "REFERRAL", NULL, NULL, NULL, SRC_REFERRAL, "", "", "" },
	/* unknown mediums fall through */
	{ "banner", NULL, NULL, NULL, SRC_DIRECT, "", "", "" },
	{ "(none)", NULL, NULL, NULL, SRC_DIRECT, "", "", "" },
	{ "cpcx", NULL, NULL, NULL, SRC_DIRECT, "", "", "" },
	{ "c pc", NULL, NULL, NULL, SRC_PAID, "", "", "" },
	{ "emails", NULL, NULL, NULL, SRC_DIRECT, "", "", "" },
	{ "banner", "google", NULL, NULL, SRC_ORGANIC, "Google", "", "" },
	{ "banner", NULL, G, NULL, SRC_ORGANIC, "Google", "www.google.com",
	  "/" },
	{ "display", "newsletter", G, NULL, SRC_REFERRAL, "newsletter",
	  "www.google.com", "/" },
	{ "   ", NULL, "https://t.co/x", NULL, SRC_SOCIAL, "Twitter", "t.co",
	  "/x" },
	{ "banner", "FACEBOOK", NULL, NULL, SRC_SOCIAL, "Facebook", "", "" },
	{ "display", "t.co", NULL, NULL, SRC_SOCIAL, "Twitter", "", "" },
	{ "(none)", "newsletter", NULL, NULL, SRC_REFERRAL, "newsletter", "",
	  "" },
	{ "unknown", "Bing", "https://www.facebook.com/", NULL, SRC_ORGANIC,
	  "Bing", "www.facebook.com", "/" },
	{ "paid_social", "instagram", NULL, NULL, SRC_SOCIAL, "Instagram", "",
	  "" },
	{ "paid_social", NULL, NULL, NULL, SRC_DIRECT, "", "", "" },
	{ "cpc2", "Spring Promo", NULL, NULL, SRC_REFERRAL, "Spring Promo", "",
	  "" },
	/* utm fields present but empty, or blank, are absent */
	{ "", "", G, NULL, SRC_ORGANIC, "Google", "www.google.com", "/" },
	{ " ", "\t", NULL, NULL, SRC_DIRECT, "", "", "" },
	{ "", "", "https://lnkd.in/x", NULL, SRC_SOCIAL, "LinkedIn", "lnkd.in",
	  "/x" },
	{ "", "newsletter", G, NULL, SRC_REFERRAL, "newsletter",
	  "www.google.com", "/" },
	{ "email", "", NULL, NULL, SRC_EMAIL, "", "", "" },
	/* uppercase mediums */
	{ "NEWSLETTER", NULL, NULL, NULL, SRC_EMAIL, "", "", "" },
	{ "AFFILIATE", NULL, NULL, NULL, SRC_AFFILIATE, "", "", "" },
	{ "SOCIAL-MEDIA", NULL, NULL, NULL, SRC_SOCIAL, "", "", "" },
	{ "PAIDSEARCH", NULL, NULL, NULL, SRC_PAID, "", "", "" },
	{ "ORGANIC", NULL, NULL, NULL, SRC_ORGANIC, "", "", "" },
	{ "Partner", "Acme", NULL, NULL, SRC_AFFILIATE, "Acme", "", "" },

	/* precedence: medium beats source beats referrer */
	{ "email", "google", G, NULL, SRC_EMAIL, "Google", "www.google.com",
	  "/" },
	{ "referral", NULL, "https://m.facebook.com/", NULL, SRC_REFERRAL,
	  "Facebook", "m.facebook.com", "/" },
	{ "cpc", "google", NULL, NULL, SRC_PAID, "Google", "", "" },
	{ "cpc", NULL, G, NULL, SRC_PAID, "Google", "www.google.com", "/" },
	{ "cpc", "bing", G, NULL, SRC_PAID, "Bing", "www.google.com", "/" },
	{ "paid", "Spring Promo", G, NULL, SRC_PAID, "Spring Promo",
	  "www.google.com", "/" },
	{ "social", "newsletter", NULL, NULL, SRC_SOCIAL, "newsletter", "",
	  "" },
	{ "organic", NULL, "https://www.facebook.com/", NULL, SRC_ORGANIC,
	  "Facebook", "www.facebook.com", "/" },
	{ NULL, "newsletter", G, NULL, SRC_REFERRAL, "newsletter",
	  "www.google.com", "/" },
	{ NULL, "facebook", "https://www.bing.com/", NULL, SRC_SOCIAL,
	  "Facebook", "www.bing.com", "/" },
	{ NULL, "google", "https://t.co/abc", NULL, SRC_ORGANIC, "Google",
	  "t.co", "/abc" },
	{ NULL, "github", "https://t.co/abc", NULL, SRC_REFERRAL, "GitHub",
	  "t.co", "/abc" },

	/* utm_source: known names, aliases, hosts; the rest is a referral */
	{ NULL, "google", NULL, NULL, SRC_ORGANIC, "Google", "", "" },
	{ NULL, "Google", NULL, NULL, SRC_ORGANIC, "Google", "", "" },
	{ NULL, " GOOGLE ", NULL, NULL, SRC_ORGANIC, "Google", "", "" },
	{ NULL, "bing", NULL, NULL, SRC_ORGANIC, "Bing", "", "" },
	{ NULL, "yahoo", NULL, NULL, SRC_ORGANIC, "Yahoo", "", "" },
	{ NULL, "yandex", NULL, NULL, SRC_ORGANIC, "Yandex", "", "" },
	{ NULL, "baidu", NULL, NULL, SRC_ORGANIC, "Baidu", "", "" },
	{ NULL, "duckduckgo", NULL, NULL, SRC_ORGANIC, "DuckDuckGo", "", "" },
	{ NULL, "DDG", NULL, NULL, SRC_ORGANIC, "DuckDuckGo", "", "" },
	{ NULL, "ecosia", NULL, NULL, SRC_ORGANIC, "Ecosia", "", "" },
	{ NULL, "qwant", NULL, NULL, SRC_ORGANIC, "Qwant", "", "" },
	{ NULL, "startpage", NULL, NULL, SRC_ORGANIC, "Startpage", "", "" },
	{ NULL, "naver", NULL, NULL, SRC_ORGANIC, "Naver", "", "" },
	{ NULL, "seznam", NULL, NULL, SRC_ORGANIC, "Seznam", "", "" },
	{ NULL, "brave", NULL, NULL, SRC_ORGANIC, "Brave", "", "" },
	{ NULL, "ask", NULL, NULL, SRC_ORGANIC, "Ask", "", "" },
	{ NULL, "aol", NULL, NULL, SRC_ORGANIC, "AOL", "", "" },
	{ NULL, "facebook", NULL, NULL, SRC_SOCIAL, "Facebook", "", "" },
	{ NULL, "fb", NULL, NULL, SRC_SOCIAL, "Facebook", "", "" },
	{ NULL, "FB", NULL, NULL, SRC_SOCIAL, "Facebook", "", "" },
	{ NULL, "twitter", NULL, NULL, SRC_SOCIAL, "Twitter", "", "" },
	{ NULL, "x", NULL, NULL, SRC_SOCIAL, "Twitter", "", "" },
	{ NULL, "X", NULL, NULL, SRC_SOCIAL, "Twitter", "", "" },
	{ NULL, "linkedin", NULL, NULL, SRC_SOCIAL, "LinkedIn", "", "" },
	{ NULL, "LinkedIn", NULL, NULL, SRC_SOCIAL, "LinkedIn", "", "" },
	{ NULL, "reddit", NULL, NULL, SRC_SOCIAL, "Reddit", "", "" },
	{ NULL, "instagram", NULL, NULL, SRC_SOCIAL, "Instagram", "", "" },
	{ NULL, "ig", NULL, NULL, SRC_SOCIAL, "Instagram", "", "" },
	{ NULL, "pinterest", NULL, NULL, SRC_SOCIAL, "Pinterest", "", "" },
	{ NULL, "tiktok", NULL, NULL, SRC_SOCIAL, "TikTok", "", "" },
	{ NULL, "TikTok", NULL, NULL, SRC_SOCIAL, "TikTok", "", "" },
	{ NULL, "youtube", NULL, NULL, SRC_SOCIAL, "YouTube", "", "" },
	{ NULL, "yt", NULL, NULL, SRC_SOCIAL, "YouTube", "", "" },
	{ NULL, "hn", NULL, NULL, SRC_SOCIAL, "Hacker News", "", "" },
	{ NULL, "Hacker News", NULL, NULL, SRC_SOCIAL, "Hacker News", "", "" },
	{ NULL, "hacker-news", NULL, NULL, SRC_SOCIAL, "Hacker News", "", "" },
	{ NULL, "hackernews", NULL, NULL, SRC_SOCIAL, "Hacker News", "", "" },
	{ NULL, "ycombinator", NULL, NULL, SRC_SOCIAL, "Hacker News", "", "" },
	{ NULL, "vk", NULL, NULL, SRC_SOCIAL, "VK", "", "" },
	{ NULL, "whatsapp", NULL, NULL, SRC_SOCIAL, "WhatsApp", "", "" },
	{ NULL, "telegram", NULL, NULL, SRC_SOCIAL, "Telegram", "", "" },
	{ NULL, "threads", NULL, NULL, SRC_SOCIAL, "Threads", "", "" },
	{ NULL, "bluesky", NULL, NULL, SRC_SOCIAL, "Bluesky", "", "" },
	{ NULL, "bsky", NULL, NULL, SRC_SOCIAL, "Bluesky", "", "" },
	{ NULL, "quora", NULL, NULL, SRC_SOCIAL, "Quora", "", "" },
	{ NULL, "discord", NULL, NULL, SRC_SOCIAL, "Discord", "", "" },
	{ NULL, "github", NULL, NULL, SRC_REFERRAL, "GitHub", "", "" },
	{ NULL, "GitHub", NULL, NULL, SRC_REFERRAL, "GitHub", "", "" },
	{ NULL, "wikipedia", NULL, NULL, SRC_REFERRAL, "Wikipedia", "", "" },
	{ NULL, "stackoverflow", NULL, NULL, SRC_REFERRAL, "Stack Overflow", "",
	  "" },
	{ NULL, "google.com", NULL, NULL, SRC_ORGANIC, "Google", "", "" },
	{ NULL, "www.google.co.uk", NULL, NULL, SRC_ORGANIC, "Google", "", "" },
	{ NULL, "m.facebook.com", NULL, NULL, SRC_SOCIAL, "Facebook", "", "" },
	{ NULL, "news.ycombinator.com", NULL, NULL, SRC_SOCIAL, "Hacker News",
	  "", "" },
	{ NULL, "t.co", NULL, NULL, SRC_SOCIAL, "Twitter", "", "" },
	{ NULL, "YANDEX.RU", NULL, NULL, SRC_ORGANIC, "Yandex", "", "" },
	{ NULL, "google.com.br", NULL, NULL, SRC_ORGANIC, "Google", "", "" },
	{ NULL, "L.Facebook.Com", NULL, NULL, SRC_SOCIAL, "Facebook", "", "" },
	{ NULL, "lnkd.in", NULL, NULL, SRC_SOCIAL, "LinkedIn", "", "" },
	{ NULL, "YOUTUBE", NULL, NULL, SRC_SOCIAL, "YouTube", "", "" },
	{ NULL, "REDDIT", NULL, NULL, SRC_SOCIAL, "Reddit", "", "" },
	{ NULL, "INSTAGRAM", NULL, NULL, SRC_SOCIAL, "Instagram", "", "" },
	{ NULL, "DuckDuckGo", NULL, NULL, SRC_ORGANIC, "DuckDuckGo", "", "" },
	{ NULL, "BAIDU", NULL, NULL, SRC_ORGANIC, "Baidu", "", "" },
	{ NULL, "gmail", NULL, NULL, SRC_REFERRAL, "Gmail", "", "" },
	/* a URL as utm_source: its host decides, the label is the site's */
	{ NULL, "https://www.google.com/", NULL, NULL, SRC_ORGANIC, "Google",
	  "", "" },
	{ NULL, "HTTPS://M.FACEBOOK.COM/story?id=1", NULL, NULL, SRC_SOCIAL,
	  "Facebook", "", "" },
	{ NULL, "google.co.uk/search", NULL, NULL, SRC_ORGANIC, "Google", "",
	  "" },
	{ NULL, "android-app://com.reddit.frontpage", NULL, NULL, SRC_REFERRAL,
	  "android-app://com.reddit.frontpage", "", "" },
	{ NULL, "https://example.com/x", NULL, NULL, SRC_REFERRAL,
	  "https://example.com/x", "", "" },
	{ NULL, "https://notgoogle.com/", NULL, NULL, SRC_REFERRAL,
	  "https://notgoogle.com/", "", "" },
	{ NULL, "newsletter", NULL, NULL, SRC_REFERRAL, "newsletter", "", "" },
	{ NULL, "  Spring Promo  ", NULL, NULL, SRC_REFERRAL, "Spring Promo",
	  "", "" },
	{ NULL, "notgoogle", NULL, NULL, SRC_REFERRAL, "notgoogle", "", "" },
	{ NULL, "googleads", NULL, NULL, SRC_REFERRAL, "googleads", "", "" },
	{ NULL, "google.evil.com", NULL, NULL, SRC_REFERRAL, "google.evil.com",
	  "", "" },
	{ NULL, "notfacebook.com", NULL, NULL, SRC_REFERRAL, "notfacebook.com",
	  "", "" },
	{ NULL, "example.com", NULL, NULL, SRC_REFERRAL, "example.com", "",
	  "" },
	{ NULL, "Caf\xc3\xa9", NULL, NULL, SRC_REFERRAL, "Caf\xc3\xa9", "",
	  "" },
	{ NULL, "abc\xff\xfe", NULL, NULL, SRC_REFERRAL, "abc", "", "" },
	{ NULL, "\xff", NULL, NULL, SRC_DIRECT, "", "", "" },
	{ NULL, "   ", G, NULL, SRC_ORGANIC, "Google", "www.google.com", "/" },

	/* search engine referrers, country domains included */
	{ NULL, NULL, "https://www.google.com/", NULL, SRC_ORGANIC, "Google",
	  "www.google.com", "/" },
	{ NULL, NULL, "https://www.google.co.uk/search?q=private", NULL,
	  SRC_ORGANIC, "Google", "www.google.co.uk", "/search" },
	{ NULL, NULL, "https://google.de/", NULL, SRC_ORGANIC, "Google",
	  "google.de", "/" },
	{ NULL, NULL, "https://www.google.com.br/", NULL, SRC_ORGANIC, "Google",
	  "www.google.com.br", "/" },
	{ NULL, NULL, "https://www.google.co.jp/url?q=x", NULL, SRC_ORGANIC,
	  "Google", "www.google.co.jp", "/url" },
	{ NULL, NULL, "https://www.google.com.au", NULL, SRC_ORGANIC, "Google",
	  "www.google.com.au", "/" },
	{ NULL, NULL, "https://images.google.fr/", NULL, SRC_ORGANIC, "Google",
	  "images.google.fr", "/" },
	{ NULL, NULL, "HTTPS://WWW.GOOGLE.COM/", NULL, SRC_ORGANIC, "Google",
	  "www.google.com", "/" },
	{ NULL, NULL, "https://www.google.com./", NULL, SRC_ORGANIC, "Google",
	  "www.google.com", "/" },
	{ NULL, NULL, "https://www.google.com:443/", NULL, SRC_ORGANIC,
	  "Google", "www.google.com", "/" },
	{ NULL, NULL, "https://www.google.com:8443/", NULL, SRC_ORGANIC,
	  "Google", "www.google.com:8443", "/" },
	{ NULL, NULL, "https://user:pw@www.google.com/", NULL, SRC_ORGANIC,
	  "Google", "www.google.com", "/" },
	{ NULL, NULL, "https://yandex.ru/search/?text=x", NULL, SRC_ORGANIC,
	  "Yandex", "yandex.ru", "/search/" },
	{ NULL, NULL, "https://yandex.com.tr/", NULL, SRC_ORGANIC, "Yandex",
	  "yandex.com.tr", "/" },
	{ NULL, NULL, "https://ya.ru/", NULL, SRC_ORGANIC, "Yandex", "ya.ru",
	  "/" },
	{ NULL, NULL, "https://www.bing.com/search?q=x", NULL, SRC_ORGANIC,
	  "Bing", "www.bing.com", "/search" },
	{ NULL, NULL, "https://cn.bing.com/", NULL, SRC_ORGANIC, "Bing",
	  "cn.bing.com", "/" },
	{ NULL, NULL, "https://duckduckgo.com/", NULL, SRC_ORGANIC,
	  "DuckDuckGo", "duckduckgo.com", "/" },
	{ NULL, NULL, "https://html.duckduckgo.com/html/", NULL, SRC_ORGANIC,
	  "DuckDuckGo", "html.duckduckgo.com", "/html/" },
	{ NULL, NULL, "https://www.baidu.com/link?url=x", NULL, SRC_ORGANIC,
	  "Baidu", "www.baidu.com", "/link" },
	{ NULL, NULL, "https://www.ecosia.org/", NULL, SRC_ORGANIC, "Ecosia",
	  "www.ecosia.org", "/" },
	{ NULL, NULL, "https://search.yahoo.com/", NULL, SRC_ORGANIC, "Yahoo",
	  "search.yahoo.com", "/" },
	{ NULL, NULL, "https://uk.search.yahoo.com/search", NULL, SRC_ORGANIC,
	  "Yahoo", "uk.search.yahoo.com", "/search" },
	{ NULL, NULL, "https://search.yahoo.co.jp/", NULL, SRC_ORGANIC, "Yahoo",
	  "search.yahoo.co.jp", "/" },
	{ NULL, NULL, "https://www.qwant.com/", NULL, SRC_ORGANIC, "Qwant",
	  "www.qwant.com", "/" },
	{ NULL, NULL, "https://www.startpage.com/", NULL, SRC_ORGANIC,
	  "Startpage", "www.startpage.com", "/" },
	{ NULL, NULL, "https://search.naver.com/", NULL, SRC_ORGANIC, "Naver",
	  "search.naver.com", "/" },
	{ NULL, NULL, "https://search.seznam.cz/", NULL, SRC_ORGANIC, "Seznam",
	  "search.seznam.cz", "/" },
	{ NULL, NULL, "https://search.brave.com/search?q=x", NULL, SRC_ORGANIC,
	  "Brave", "search.brave.com", "/search" },
	{ NULL, NULL, "https://www.ask.com/", NULL, SRC_ORGANIC, "Ask",
	  "www.ask.com", "/" },
	{ NULL, NULL, "https://search.aol.com/", NULL, SRC_ORGANIC, "AOL",
	  "search.aol.com", "/" },
	{ NULL, NULL, "https://search.aol.co.uk/", NULL, SRC_ORGANIC, "AOL",
	  "search.aol.co.uk", "/" },
	{ NULL, NULL, "https://www.google.ru/", NULL, SRC_ORGANIC, "Google",
	  "www.google.ru", "/" },
	{ NULL, NULL, "https://www.google.com.mx/", NULL, SRC_ORGANIC, "Google",
	  "www.google.com.mx", "/" },
	{ NULL, NULL, "https://www.google.co.in/", NULL, SRC_ORGANIC, "Google",
	  "www.google.co.in", "/" },
	{ NULL, NULL, "https://WWW.GOOGLE.COM.BR:8443/Search", NULL,
	  SRC_ORGANIC, "Google", "www.google.com.br:8443", "/Search" },
	{ NULL, NULL, "https://news.google.com/", NULL, SRC_ORGANIC, "Google",
	  "news.google.com", "/" },
	{ NULL, NULL, "https://Yandex.RU/", NULL, SRC_ORGANIC, "Yandex",
	  "yandex.ru", "/" },
	{ NULL, NULL, "https://yandex.kz/", NULL, SRC_ORGANIC, "Yandex",
	  "yandex.kz", "/" },
	{ NULL, NULL, "https://WWW.BING.COM:443/", NULL, SRC_ORGANIC, "Bing",
	  "www.bing.com", "/" },
	{ NULL, NULL, "https://bing.com/", NULL, SRC_ORGANIC, "Bing",
	  "bing.com", "/" },
	{ NULL, NULL, "https://www.baidu.com./s?wd=x", NULL, SRC_ORGANIC,
	  "Baidu", "www.baidu.com", "/s" },
	{ NULL, NULL, "https://m.baidu.com/", NULL, SRC_ORGANIC, "Baidu",
	  "m.baidu.com", "/" },
	{ NULL, NULL, "https://DuckDuckGo.com/", NULL, SRC_ORGANIC,
	  "DuckDuckGo", "duckduckgo.com", "/" },
	{ NULL, NULL, "https://www.sogou.com/", NULL, SRC_ORGANIC, "Sogou",
	  "www.sogou.com", "/" },
	{ NULL, NULL, "https://www.so.com/s", NULL, SRC_ORGANIC, "360 Search",
	  "www.so.com", "/s" },
	{ NULL, NULL, "https://search.daum.net/", NULL, SRC_ORGANIC, "Daum",
	  "search.daum.net", "/" },
	{ NULL, NULL, "https://kagi.com/search", NULL, SRC_ORGANIC, "Kagi",
	  "kagi.com", "/search" },
	{ NULL, NULL, "https://www.mojeek.com/", NULL, SRC_ORGANIC, "Mojeek",
	  "www.mojeek.com", "/" },
	{ NULL, NULL, "https://www.petalsearch.com/", NULL, SRC_ORGANIC,
	  "Petal Search", "www.petalsearch.com", "/" },
	/* services on a search engine's domain that are not search */
	{ NULL, NULL, "https://mail.google.com/mail/u/0/", NULL, SRC_REFERRAL,
	  "Gmail", "mail.google.com", "/mail/u/0/" },
	{ NULL, NULL, "https://docs.google.com/document/d/1", NULL,
	  SRC_REFERRAL, "Google Docs", "docs.google.com", "/document/d/1" },
	{ NULL, NULL, "https://drive.google.com/", NULL, SRC_REFERRAL,
	  "Google Docs", "drive.google.com", "/" },
	{ NULL, NULL, "https://mail.yandex.ru/", NULL, SRC_REFERRAL,
	  "Yandex Mail", "mail.yandex.ru", "/" },
	{ NULL, NULL, "https://mail.google.evil.com/", NULL, SRC_REFERRAL,
	  "mail.google.evil.com", "mail.google.evil.com", "/" },
	{ NULL, NULL, "https://gmail.com/", NULL, SRC_REFERRAL, "gmail.com",
	  "gmail.com", "/" },
	/* look-alikes are referrals under their own name */
	{ NULL, NULL, "https://yandex.ru.evil.com/", NULL, SRC_REFERRAL,
	  "yandex.ru.evil.com", "yandex.ru.evil.com", "/" },
	{ NULL, NULL, "https://duckduckgo.com.evil.com/", NULL, SRC_REFERRAL,
	  "duckduckgo.com.evil.com", "duckduckgo.com.evil.com", "/" },
	{ NULL, NULL, "https://baidu.co/", NULL, SRC_REFERRAL, "baidu.co",
	  "baidu.co", "/" },
	{ NULL, NULL, "https://www.google.com@evil.com/", NULL, SRC_REFERRAL,
	  "evil.com", "evil.com", "/" },
	{ NULL, NULL, "https://notgoogle.com/", NULL, SRC_REFERRAL,
	  "notgoogle.com", "notgoogle.com", "/" },
	{ NULL, NULL, "https://google.evil.com/", NULL, SRC_REFERRAL,
	  "google.evil.com", "google.evil.com", "/" },
	{ NULL, NULL, "https://www.google.com.evil.io/", NULL, SRC_REFERRAL,
	  "google.com.evil.io", "www.google.com.evil.io", "/" },
	{ NULL, NULL, "https://google.co.evil/", NULL, SRC_REFERRAL,
	  "google.co.evil", "google.co.evil", "/" },
	{ NULL, NULL, "https://google.evil.co.uk/", NULL, SRC_REFERRAL,
	  "google.evil.co.uk", "google.evil.co.uk", "/" },
	{ NULL, NULL, "https://google/", NULL, SRC_REFERRAL, "google", "google",
	  "/" },
	{ NULL, NULL, "https://google.123/", NULL, SRC_REFERRAL, "google.123",
	  "google.123", "/" },
	{ NULL, NULL, "https://my-google.com/", NULL, SRC_REFERRAL,
	  "my-google.com", "my-google.com", "/" },
	{ NULL, NULL, "https://notbing.com/", NULL, SRC_REFERRAL, "notbing.com",
	  "notbing.com", "/" },
	{ NULL, NULL, "https://bing.com.evil.org/", NULL, SRC_REFERRAL,
	  "bing.com.evil.org", "bing.com.evil.org", "/" },
	{ NULL, NULL, "https://www.yahoo.com/", NULL, SRC_REFERRAL, "yahoo.com",
	  "www.yahoo.com", "/" },
	{ NULL, NULL, "https://brave.com/", NULL, SRC_REFERRAL, "brave.com",
	  "brave.com", "/" },
	{ NULL, NULL, "https://search.example.com/", NULL, SRC_REFERRAL,
	  "search.example.com", "search.example.com", "/" },

	/* social networks */
	{ NULL, NULL, "https://www.facebook.com/", NULL, SRC_SOCIAL, "Facebook",
	  "www.facebook.com", "/" },
	{ NULL, NULL, "https://m.facebook.com/story.php?id=1", NULL, SRC_SOCIAL,
	  "Facebook", "m.facebook.com", "/story.php" },
	{ NULL, NULL, "https://l.facebook.com/l.php?u=x", NULL, SRC_SOCIAL,
	  "Facebook", "l.facebook.com", "/l.php" },
	{ NULL, NULL, "https://lm.facebook.com/", NULL, SRC_SOCIAL, "Facebook",
	  "lm.facebook.com", "/" },
	{ NULL, NULL, "https://fb.com/", NULL, SRC_SOCIAL, "Facebook", "fb.com",
	  "/" },
	{ NULL, NULL, "https://t.co/abc", NULL, SRC_SOCIAL, "Twitter", "t.co",
	  "/abc" },
	{ NULL, NULL, "https://twitter.com/u", NULL, SRC_SOCIAL, "Twitter",
	  "twitter.com", "/u" },
	{ NULL, NULL, "https://mobile.twitter.com/", NULL, SRC_SOCIAL,
	  "Twitter", "mobile.twitter.com", "/" },
	{ NULL, NULL, "https://x.com/user", NULL, SRC_SOCIAL, "Twitter",
	  "x.com", "/user" },
	{ NULL, NULL, "https://www.linkedin.com/feed/", NULL, SRC_SOCIAL,
	  "LinkedIn", "www.linkedin.com", "/feed/" },
	{ NULL, NULL, "https://lnkd.in/abc", NULL, SRC_SOCIAL, "LinkedIn",
	  "lnkd.in", "/abc" },
	{ NULL, NULL, "https://www.reddit.com/r/c/", NULL, SRC_SOCIAL, "Reddit",
	  "www.reddit.com", "/r/c/" },
	{ NULL, NULL, "https://old.reddit.com/", NULL, SRC_SOCIAL, "Reddit",
	  "old.reddit.com", "/" },
	{ NULL, NULL, "https://www.instagram.com/", NULL, SRC_SOCIAL,
	  "Instagram", "www.instagram.com", "/" },
	{ NULL, NULL, "https://l.instagram.com/", NULL, SRC_SOCIAL, "Instagram",
	  "l.instagram.com", "/" },
	{ NULL, NULL, "https://www.pinterest.com/", NULL, SRC_SOCIAL,
	  "Pinterest", "www.pinterest.com", "/" },
	{ NULL, NULL, "https://www.pinterest.co.uk/pin/1/", NULL, SRC_SOCIAL,
	  "Pinterest", "www.pinterest.co.uk", "/pin/1/" },
	{ NULL, NULL, "https://pinterest.de/", NULL, SRC_SOCIAL, "Pinterest",
	  "pinterest.de", "/" },
	{ NULL, NULL, "https://www.tiktok.com/", NULL, SRC_SOCIAL, "TikTok",
	  "www.tiktok.com", "/" },
	{ NULL, NULL, "https://www.youtube.com/watch?v=x", NULL, SRC_SOCIAL,
	  "YouTube", "www.youtube.com", "/watch" },
	{ NULL, NULL, "https://m.youtube.com/", NULL, SRC_SOCIAL, "YouTube",
	  "m.youtube.com", "/" },
	{ NULL, NULL, "https://youtu.be/x", NULL, SRC_SOCIAL, "YouTube",
	  "youtu.be", "/x" },
	{ NULL, NULL, "https://news.ycombinator.com/item?id=1", NULL,
	  SRC_SOCIAL, "Hacker News", "news.ycombinator.com", "/item" },
	{ NULL, NULL, "https://vk.com/", NULL, SRC_SOCIAL, "VK", "vk.com",
	  "/" },
	{ NULL, NULL, "https://web.whatsapp.com/", NULL, SRC_SOCIAL, "WhatsApp",
	  "web.whatsapp.com", "/" },
	{ NULL, NULL, "https://t.me/chan", NULL, SRC_SOCIAL, "Telegram", "t.me",
	  "/chan" },
	{ NULL, NULL, "https://web.telegram.org/", NULL, SRC_SOCIAL, "Telegram",
	  "web.telegram.org", "/" },
	{ NULL, NULL, "https://www.threads.net/", NULL, SRC_SOCIAL, "Threads",
	  "www.threads.net", "/" },
	{ NULL, NULL, "https://bsky.app/profile/x", NULL, SRC_SOCIAL, "Bluesky",
	  "bsky.app", "/profile/x" },
	{ NULL, NULL, "https://www.quora.com/", NULL, SRC_SOCIAL, "Quora",
	  "www.quora.com", "/" },
	{ NULL, NULL, "https://discord.com/channels/1", NULL, SRC_SOCIAL,
	  "Discord", "discord.com", "/channels/1" },
	{ NULL, NULL, "HTTPS://L.FACEBOOK.COM/L.PHP?u=x", NULL, SRC_SOCIAL,
	  "Facebook", "l.facebook.com", "/L.PHP" },
	{ NULL, NULL, "https://l.messenger.com/l.php", NULL, SRC_SOCIAL,
	  "Facebook", "l.messenger.com", "/l.php" },
	{ NULL, NULL, "https://M.YOUTUBE.COM/watch", NULL, SRC_SOCIAL,
	  "YouTube", "m.youtube.com", "/watch" },
	{ NULL, NULL, "https://T.CO/abc", NULL, SRC_SOCIAL, "Twitter", "t.co",
	  "/abc" },
	{ NULL, NULL, "https://LNKD.IN/x", NULL, SRC_SOCIAL, "LinkedIn",
	  "lnkd.in", "/x" },
	{ NULL, NULL, "https://m.reddit.com/", NULL, SRC_SOCIAL, "Reddit",
	  "m.reddit.com", "/" },
	{ NULL, NULL, "https://out.reddit.com/t3_x", NULL, SRC_SOCIAL, "Reddit",
	  "out.reddit.com", "/t3_x" },
	{ NULL, NULL, "https://a:b@t.co:443/x", NULL, SRC_SOCIAL, "Twitter",
	  "t.co", "/x" },
	{ NULL, NULL, "https://www.snapchat.com/", NULL, SRC_SOCIAL, "Snapchat",
	  "www.snapchat.com", "/" },
	{ NULL, NULL, "https://www.tumblr.com/x", NULL, SRC_SOCIAL, "Tumblr",
	  "www.tumblr.com", "/x" },
	{ NULL, NULL, "https://m.weibo.cn/", NULL, SRC_SOCIAL, "Weibo",
	  "m.weibo.cn", "/" },
	/* not social: suffixes only match on a label boundary */
	{ NULL, NULL, "https://t.co.evil.com/", NULL, SRC_REFERRAL,
	  "t.co.evil.com", "t.co.evil.com", "/" },
	{ NULL, NULL, "https://lnkd.in.evil.com/", NULL, SRC_REFERRAL,
	  "lnkd.in.evil.com", "lnkd.in.evil.com", "/" },
	{ NULL, NULL, "https://myyoutube.com/", NULL, SRC_REFERRAL,
	  "myyoutube.com", "myyoutube.com", "/" },
	{ NULL, NULL, "https://notfacebook.com/", NULL, SRC_REFERRAL,
	  "notfacebook.com", "notfacebook.com", "/" },
	{ NULL, NULL, "https://facebook.com.evil.com/", NULL, SRC_REFERRAL,
	  "facebook.com.evil.com", "facebook.com.evil.com", "/" },
	{ NULL, NULL, "https://box.com/", NULL, SRC_REFERRAL, "box.com",
	  "box.com", "/" },
	{ NULL, NULL, "https://at.co/", NULL, SRC_REFERRAL, "at.co", "at.co",
	  "/" },
	{ NULL, NULL, "https://reddit.co/", NULL, SRC_REFERRAL, "reddit.co",
	  "reddit.co", "/" },
	{ NULL, NULL, "https://ycombinator.com/", NULL, SRC_REFERRAL,
	  "ycombinator.com", "ycombinator.com", "/" },
	{ NULL, NULL, "https://pinterest.evil.com/", NULL, SRC_REFERRAL,
	  "pinterest.evil.com", "pinterest.evil.com", "/" },

	/* known, but referrals; and everyone else */
	{ NULL, NULL, "https://github.com/owner/repo", NULL, SRC_REFERRAL,
	  "GitHub", "github.com", "/owner/repo" },
	{ NULL, NULL, "https://en.wikipedia.org/wiki/X", NULL, SRC_REFERRAL,
	  "Wikipedia", "en.wikipedia.org", "/wiki/X" },
	{ NULL, NULL, "https://stackoverflow.com/q/1", NULL, SRC_REFERRAL,
	  "Stack Overflow", "stackoverflow.com", "/q/1" },
	{ NULL, NULL, "https://blog.example.org/post?id=1#c", NULL,
	  SRC_REFERRAL, "blog.example.org", "blog.example.org", "/post" },
	{ NULL, NULL, "https://www.example.org/", NULL, SRC_REFERRAL,
	  "example.org", "www.example.org", "/" },
	{ NULL, NULL, "https://WWW.Example.ORG./", NULL, SRC_REFERRAL,
	  "example.org", "www.example.org", "/" },
	{ NULL, NULL, "https://www2.example.org/", NULL, SRC_REFERRAL,
	  "www2.example.org", "www2.example.org", "/" },
	{ NULL, NULL, "http://localhost:3000/", NULL, SRC_REFERRAL,
	  "localhost:3000", "localhost:3000", "/" },
	{ NULL, NULL, "http://[::1]:8080/x", NULL, SRC_REFERRAL, "[::1]:8080",
	  "[::1]:8080", "/x" },
	{ NULL, NULL, "https://e.com/caf\xc3\xa9", NULL, SRC_REFERRAL, "e.com",
	  "e.com", "/caf%C3%A9" },
	{ NULL, NULL, "http://[2001:DB8::1]/x", NULL, SRC_REFERRAL,
	  "[2001:db8::1]", "[2001:db8::1]", "/x" },
	{ NULL, NULL, "http://192.0.2.1:8080/", NULL, SRC_REFERRAL,
	  "192.0.2.1:8080", "192.0.2.1:8080", "/" },
	{ NULL, NULL, "https://XN--80ASWG.xn--p1ai/", NULL, SRC_REFERRAL,
	  "xn--80aswg.xn--p1ai", "xn--80aswg.xn--p1ai", "/" },
	{ NULL, NULL, "https://user:secret@blog.example.org:8443/p?q=1#f", NULL,
	  SRC_REFERRAL, "blog.example.org:8443", "blog.example.org:8443",
	  "/p" },
	/* the referrer's query is dropped, long or short */
	{ NULL, NULL, "https://www.google.com/search?q=a&gclid=1", NULL,
	  SRC_ORGANIC, "Google", "www.google.com", "/search" },

	/* an unparseable referrer is no referrer */
	{ NULL, NULL, "not a url", NULL, SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "ftp://x", NULL, SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "ftp://www.google.com/", NULL, SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "http://", NULL, SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "", NULL, SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "\xff\xfe\x80", NULL, SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "https://goo gle.com/", NULL, SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "https://g\xc3\xb6ogle.com/", NULL, SRC_DIRECT, "", "",
	  "" },
	{ NULL, NULL, "android-app://com.google.android.gm/", NULL, SRC_DIRECT,
	  "", "", "" },
	{ NULL, NULL, "//www.google.com/", NULL, SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "/path", NULL, SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "www.google.com", NULL, SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "about:blank", NULL, SRC_DIRECT, "", "", "" },
	{ NULL, NULL,
	  "android-app://com.google.android.googlequicksearchbox/"
	  "https/www.google.com",
	  NULL, SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "android-app://com.facebook.katana", NULL, SRC_DIRECT, "",
	  "", "" },
	{ NULL, NULL, "ios-app://123/x", NULL, SRC_DIRECT, "", "", "" },
	/* no scheme, or a broken one */
	{ NULL, NULL, "www.facebook.com/x", NULL, SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "t.co/abc", NULL, SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "google.co.uk", NULL, SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "https:/www.google.com/", NULL, SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "https:www.google.com", NULL, SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "htps://www.google.com/", NULL, SRC_DIRECT, "", "", "" },
	/* garbage */
	{ NULL, NULL, "https://@/", NULL, SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "https://[", NULL, SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "https://www.google.com:99999/", NULL, SRC_DIRECT, "", "",
	  "" },
	{ NULL, NULL, "https://www..google.com/", NULL, SRC_DIRECT, "", "",
	  "" },
	{ NULL, NULL, "https://b%C3%BCcher.de/", NULL, SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "javascript:alert(1)", NULL, SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "null", NULL, SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "undefined", NULL, SRC_DIRECT, "", "", "" },
	{ "cpc", NULL, "not a url", NULL, SRC_PAID, "", "", "" },
	{ NULL, "fb", "ftp://x", NULL, SRC_SOCIAL, "Facebook", "", "" },

	/* self-referral is internal navigation: no referrer */
	{ NULL, NULL, "https://example.com/a", "example.com", SRC_DIRECT, "",
	  "", "" },
	{ NULL, NULL, "https://www.example.com/a", "example.com", SRC_DIRECT,
	  "", "", "" },
	{ NULL, NULL, "https://example.com/a", "www.example.com", SRC_DIRECT,
	  "", "", "" },
	{ NULL, NULL, "https://www.example.com/a", "www.example.com",
	  SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "https://EXAMPLE.com/", "Example.COM", SRC_DIRECT, "", "",
	  "" },
	{ NULL, NULL, "https://example.com/", "WWW.EXAMPLE.COM.", SRC_DIRECT,
	  "", "", "" },
	{ NULL, NULL, "https://example.com:8443/", "example.com", SRC_DIRECT,
	  "", "", "" },
	{ NULL, NULL, "https://example.com/", "example.com:8080", SRC_DIRECT,
	  "", "", "" },
	{ NULL, NULL, "http://[::1]:8080/", "[::1]", SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "https://u:p@example.com/", " example.com ", SRC_DIRECT,
	  "", "", "" },
	{ NULL, NULL, "https://www.google.com/", "www.google.com", SRC_DIRECT,
	  "", "", "" },
	{ NULL, NULL, "https://shop.example.com/", "example.com", SRC_REFERRAL,
	  "shop.example.com", "shop.example.com", "/" },
	{ NULL, NULL, "https://example.com/", "shop.example.com", SRC_REFERRAL,
	  "example.com", "example.com", "/" },
	{ NULL, NULL, "https://example.com.au/", "example.com", SRC_REFERRAL,
	  "example.com.au", "example.com.au", "/" },
	{ NULL, NULL, "https://wwwexample.com/", "example.com", SRC_REFERRAL,
	  "wwwexample.com", "wwwexample.com", "/" },
	{ NULL, NULL, "https://example.com/", "", SRC_REFERRAL, "example.com",
	  "example.com", "/" },
	{ NULL, NULL, "https://example.com/", NULL, SRC_REFERRAL, "example.com",
	  "example.com", "/" },
	{ NULL, "newsletter", "https://example.com/", "example.com",
	  SRC_REFERRAL, "newsletter", "", "" },
	{ "cpc", NULL, "https://www.example.com/", "example.com", SRC_PAID, "",
	  "", "" },
	{ NULL, "Google", "https://example.com/", "example.com", SRC_ORGANIC,
	  "Google", "", "" },
	{ "email", NULL, "https://example.com/", "example.com", SRC_EMAIL, "",
	  "", "" },
	{ NULL, NULL, "https://WWW.EXAMPLE.COM./a?b=1#c", "example.com",
	  SRC_DIRECT, "", "", "" },
	{ NULL, NULL, "http://example.com:80/", "example.com:3000", SRC_DIRECT,
	  "", "", "" },
	/* only "www." is the same site: other subdomains are referrals */
	{ NULL, NULL, "https://m.example.com/", "example.com", SRC_REFERRAL,
	  "m.example.com", "m.example.com", "/" },
	{ NULL, NULL, "https://example.com/", "m.example.com", SRC_REFERRAL,
	  "example.com", "example.com", "/" },
	{ NULL, NULL, "https://www.www.example.com/", "example.com",
	  SRC_REFERRAL, "www.example.com", "www.www.example.com", "/" },
	{ NULL, NULL, "https://xn--mnchen-3ya.de/", "XN--MNCHEN-3YA.DE",
	  SRC_DIRECT, "", "", "" },
};

static void test_classify_table(void)
{
	for (size_t i = 0; i < sizeof(cls_cases) / sizeof(cls_cases[0]); i++) {
		const struct cls_case *c = &cls_cases[i];
		size_t ml = slen(c->medium), sl = slen(c->source),
		       rl = slen(c->referrer);
		char *m = exact(c->medium, ml), *s = exact(c->source, sl),
		     *r = exact(c->referrer, rl);
		struct src_traffic t;

		memset(&t, 'x', sizeof(t));
		src_classify(m, ml, s, sl, r, rl, c->page_host, &t);
		if (t.channel != c->channel)
			fprintf(stderr,
				"classify case %zu (%s, %s, %s, %s): %s, want %s\n",
				i, c->medium ? c->medium : "-",
				c->source ? c->source : "-",
				c->referrer ? c->referrer : "-",
				c->page_host ? c->page_host : "-",
				src_channel_name(t.channel),
				src_channel_name(c->channel));
		CHECK_EQ(t.channel, c->channel);
		CHECK_STR("source", t.source, c->label);
		CHECK_STR("referrer_host", t.referrer_host, c->ref_host);
		CHECK_STR("referrer_path", t.referrer_path, c->ref_path);
		free(m);
		free(s);
		free(r);
	}
}

/*
 * Whole visits as the writer sees them (writer_batch.c's enrich_one): the
 * page URL parsed, its utm_medium and utm_source classified with the
 * referrer, the page URL's host as page_host.
 */
struct visit_case {
	const char *url, *referrer;
	enum src_channel channel;
	const char *label, *query, *ref_host;
};

static const struct visit_case visit_cases[] = {
	{ "https://shop.com/?utm_source=Facebook&utm_medium=Social-Media"
	  "&fbclid=IwAR1",
	  "https://l.facebook.com/", SRC_SOCIAL, "Facebook", "",
	  "l.facebook.com" },
	{ "https://shop.com/p?id=7&UTM_MEDIUM=CPC&UTM_SOURCE=GOOGLE&gclid=x", G,
	  SRC_PAID, "Google", "id=7", "www.google.com" },
	{ "https://shop.com/p?utm_source=&utm_medium=&a=1", NULL, SRC_DIRECT,
	  "", "a=1", "" },
	{ "https://shop.com/p?utm_source=&utm_medium=", G, SRC_ORGANIC,
	  "Google", "", "www.google.com" },
	{ "https://shop.com/?utm_medium=banner&utm_source=newsletter", NULL,
	  SRC_REFERRAL, "newsletter", "", "" },
	{ "https://shop.com/?utm_medium=NEWSLETTER&utm_source=mailchimp"
	  "&mc_cid=1&mc_eid=2",
	  "https://mail.google.com/", SRC_EMAIL, "mailchimp", "",
	  "mail.google.com" },
	{ "https://shop.com/?utm%5Fsource=fb", NULL, SRC_SOCIAL, "Facebook", "",
	  "" },
	{ "https://shop.com/?utm_source=fb&utm_source=google", NULL, SRC_SOCIAL,
	  "Facebook", "", "" },
	{ "https://shop.com/#?utm_source=fb", NULL, SRC_DIRECT, "", "", "" },
	{ "https://shop.com/?utm_medium=affiliate&utm_source=acme", G,
	  SRC_AFFILIATE, "acme", "", "www.google.com" },
	/* internal navigation, www. or not, any port */
	{ "https://www.shop.com/b", "https://shop.com/a", SRC_DIRECT, "", "",
	  "" },
	{ "http://localhost:3000/b", "http://localhost:3000/a", SRC_DIRECT, "",
	  "", "" },
	{ "https://shop.com/b?utm_source=hn", "https://shop.com/a", SRC_SOCIAL,
	  "Hacker News", "", "" },
	{ "https://shop.com/", "https://blog.shop.com/", SRC_REFERRAL,
	  "blog.shop.com", "", "blog.shop.com" },
	/* a page URL the parser refuses: no page host, no utm from it */
	{ "/relative?utm_source=fb", "https://shop.com/", SRC_REFERRAL,
	  "shop.com", "", "shop.com" },
	{ "android-app://x", "android-app://com.google.android.gm/", SRC_DIRECT,
	  "", "", "" },
};

static void test_visit_table(void)
{
	for (size_t i = 0; i < sizeof(visit_cases) / sizeof(visit_cases[0]);
	     i++) {
		const struct visit_case *c = &visit_cases[i];
		size_t rl = slen(c->referrer);
		char *r = exact(c->referrer, rl);
		struct src_url u;
		struct src_traffic t;
		bool ok = parse(c->url, strlen(c->url), &u) == 0;
		const char *m = ok ? u.utm[ALOG_UTM_MEDIUM] : "",
			   *s = ok ? u.utm[ALOG_UTM_SOURCE] : "";

		src_classify(m, strlen(m), s, strlen(s), r, rl,
			     ok ? u.host : "", &t);
		if (t.channel != c->channel)
			fprintf(stderr,
				"visit case %zu (%s, %s): %s, want %s\n", i,
				c->url, c->referrer ? c->referrer : "-",
				src_channel_name(t.channel),
				src_channel_name(c->channel));
		CHECK_EQ(t.channel, c->channel);
		CHECK_STR("visit source", t.source, c->label);
		CHECK_STR("visit query", u.query, c->query);
		CHECK_STR("visit referrer_host", t.referrer_host, c->ref_host);
		free(r);
	}
}

static void test_classify_limits(void)
{
	struct src_traffic t;
	size_t len;

	/* lengths bound the inputs: "cpcx" of length 3 is "cpc" */
	src_classify("cpcx", 3, "googlex", 6, "https://t.cox", 12, NULL, &t);
	CHECK_EQ(t.channel, SRC_PAID);
	CHECK_STR("len", t.source, "Google");
	CHECK_STR("len", t.referrer_host, "t.co");

	/* a very long referrer is refused, so direct */
	len = build("https://www.google.com/", "a", 3000, "");
	src_classify(NULL, 0, NULL, 0, big, len, NULL, &t);
	CHECK_EQ(t.channel, SRC_DIRECT);
	CHECK_STR("long referrer", t.referrer_host, "");
	len = build("https://www.google.com/", "a", SRC_URL_MAX - 23, "");
	src_classify(NULL, 0, NULL, 0, big, len, NULL, &t);
	CHECK_EQ(t.channel, SRC_ORGANIC);
	CHECK_EQ(strlen(t.referrer_path), SRC_URL_MAX - 22);

	/*
	 * A referrer whose query grows past its buffer when escaped is still
	 * its host (the query is not kept anyway).
	 */
	len = build("https://www.google.com/search?q=", "\xc3\xa9", 500, "");
	src_classify(NULL, 0, NULL, 0, big, len, NULL, &t);
	CHECK_EQ(t.channel, SRC_ORGANIC);
	CHECK_STR("long query", t.referrer_host, "www.google.com");
	CHECK_STR("long query", t.referrer_path, "/search");
	/* one that is too long as it stands is refused, self or not */
	len = build("https://example.com/?q=", "a", 3000, "");
	src_classify(NULL, 0, NULL, 0, big, len, "example.com", &t);
	CHECK_EQ(t.channel, SRC_DIRECT);
	/* a long page_host is compared, not copied */
	len = build("", "a", 5000, "");
	src_classify(NULL, 0, NULL, 0, G, strlen(G), big, &t);
	CHECK_EQ(t.channel, SRC_ORGANIC);
	/*
	 * utm_source is cut at 255 bytes before it is looked up: a URL with
	 * a longer host is a referral under its first 255 bytes
	 */
	len = build("https://", "a", 400, ".google.com/");
	src_classify(NULL, 0, big, len, NULL, 0, NULL, &t);
	CHECK_EQ(t.channel, SRC_REFERRAL);
	CHECK_EQ(strlen(t.source), SRC_SOURCE_MAX - 1);
	len = build("https://", "a", 200, ".google.com/");
	src_classify(NULL, 0, big, len, NULL, 0, NULL, &t);
	CHECK_EQ(t.channel, SRC_ORGANIC);
	CHECK_STR("utm host", t.source, "Google");

	/* a long utm_source is cut at 255 bytes, on a character */
	len = build("", "\xc3\xa9", 200, "");
	src_classify(NULL, 0, big, len, NULL, 0, NULL, &t);
	CHECK_EQ(t.channel, SRC_REFERRAL);
	CHECK_EQ(strlen(t.source), 254);
	len = build("", "a", 5000, "");
	src_classify(big, len, big, len, NULL, 0, NULL, &t);
	CHECK_EQ(t.channel, SRC_REFERRAL);
	CHECK_EQ(strlen(t.source), SRC_SOURCE_MAX - 1);
	/* a NUL ends the label: columns cannot hold one */
	src_classify(NULL, 0, "ab\0cd", 5, NULL, 0, NULL, &t);
	CHECK_STR("NUL", t.source, "ab");

	CHECK_STR("name", src_channel_name(SRC_DIRECT), "direct");
	CHECK_STR("name", src_channel_name(SRC_ORGANIC), "organic");
	CHECK_STR("name", src_channel_name(SRC_PAID), "paid");
	CHECK_STR("name", src_channel_name(SRC_SOCIAL), "social");
	CHECK_STR("name", src_channel_name(SRC_EMAIL), "email");
	CHECK_STR("name", src_channel_name(SRC_AFFILIATE), "affiliate");
	CHECK_STR("name", src_channel_name(SRC_REFERRAL), "referral");
	CHECK_STR("name", src_channel_name((enum src_channel)99), "unknown");
}

/* ---- garbage ---- */

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static bool utf8(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	return n < cap && alog_event_utf8_prefix(s, n, n) == n;
}

static void test_garbage(void)
{
	static const char *const bits[] = {
		"http://", "https://", "HTTP://", "a",           "Z",
		".",       ":",        "@",       "[",           "]",
		"/",       "?",        "#",       "&",           "=",
		"%",       "%4",       "%e9",     "utm_source=", "UTM_MEDIUM=",
		"gclid=",  "+",        " ",       "\xc3",        "\xa9",
		"\\",      "8080",     "www.",    "google",      "com",
		"::1",     "co.uk",    "\x00",    "\xff",        "%00",
		"%C3%A9",  "t.co",     "\t",      ":443",        ":80",
	};
	static char in[4096], re[SRC_HOST_MAX + 2 * SRC_PATH_MAX + 16];
	int ok = 0, rep_fail = 0;

	for (int iter = 0; iter < 30000; iter++) {
		size_t len = 0, rl, n = 1 + rnd(48);
		struct src_url u, v;
		struct src_traffic t;
		const char *s = in;
		bool https;
		int rc;

		if (rnd(2))
			len = (size_t)sprintf(in, "%s",
					      rnd(2) ? "http://" : "https://");
		for (size_t i = 0; i < n; i++) {
			const char *b =
				bits[rnd(sizeof(bits) / sizeof(bits[0]))];
			size_t bl = b[0] ? strlen(b) : 1;

			memcpy(in + len, b, bl);
			len += bl;
		}
		memset(&u, 'x', sizeof(u));
		rc = parse(in, len, &u);
		CHECK(rc == 0 || rc == -EINVAL);
		CHECK(utf8(u.host, sizeof(u.host)) && printable(u.host));
		CHECK(utf8(u.path, sizeof(u.path)) && printable(u.path));
		CHECK(utf8(u.query, sizeof(u.query)) && printable(u.query));
		for (int k = 0; k < ALOG_UTM_COUNT; k++)
			CHECK(utf8(u.utm[k], sizeof(u.utm[k])));
		if (rc != 0) {
			CHECK(all_empty(&u));
		} else {
			CHECK(u.host[0] != '\0' && u.path[0] == '/');
			/* normalizing twice changes nothing */
			while ((unsigned char)*s <= 0x20)
				s++;
			https = s[4] == 's' || s[4] == 'S';
			rl = (size_t)snprintf(re, sizeof(re), "%s%s%s%s%s",
					      https ? "https://" : "http://",
					      u.host, u.path,
					      u.query[0] ? "?" : "", u.query);
			if (parse(re, rl, &v) != 0 || strcmp(u.host, v.host) ||
			    strcmp(u.path, v.path) ||
			    strcmp(u.query, v.query)) {
				if (rep_fail++ < 5)
					fprintf(stderr, "not idempotent: %s\n",
						re);
			}
			ok++;
		}

		memset(&t, 'x', sizeof(t));
		src_classify(in, len % 64, in, len / 2, in, len, "a.com", &t);
		CHECK(t.channel >= SRC_DIRECT && t.channel <= SRC_REFERRAL);
		CHECK(utf8(t.source, sizeof(t.source)));
		CHECK(utf8(t.referrer_host, sizeof(t.referrer_host)) &&
		      printable(t.referrer_host));
		CHECK(utf8(t.referrer_path, sizeof(t.referrer_path)) &&
		      printable(t.referrer_path));
	}
	CHECK_EQ(rep_fail, 0);
	CHECK(ok > 1000); /* the generator does reach valid URLs */
	printf("garbage: %d of 30000 parsed\n", ok);
}

int main(void)
{
	test_url_table();
	test_utm_table();
	test_url_limits();
	test_classify_table();
	test_visit_table();
	test_classify_limits();
	test_garbage();
	return t_summary("test_source");
}
