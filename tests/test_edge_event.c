/*
 * test_edge_event.c - unit tests for the event record codec
 * (common/alog_event.c) and the endpoint mapping (edge/edge_event.c).
 *
 * Mapping cases are a table: a body, and what every field of the event
 * must be. Each case is checked on the parsed event and again after an
 * encode/decode round trip, so the table also covers the codec for every
 * field an endpoint can produce. Refusals are a second table: a body and
 * the return code, field and message the client gets.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alog_common.h"
#include "alog_event.h"
#include "edge_event.h"
#include "test_util.h"

#define NO -1 /* a fixed-size field that must be absent */

struct want {
	enum edge_endpoint ep;
	const char *body;
	size_t n;         /* events in the result */
	size_t idx;       /* which one this row checks */
	const char *hint; /* site_hint, NULL: empty */
	uint8_t kind, source;
	uint16_t flags;
	uint64_t client_ms;
	const char *name, *url, *referrer, *session, *user, *content_id,
		*content_type, *title, *hostname, *language, *timezone, *props,
		*funnel_id, *step_id, *target_id, *target_type, *extra;
	const char *utm[ALOG_UTM_COUNT];
	long sw, sh, vw, vh, tp; /* NO when absent */
	bool has_value;
	int64_t micros;
	const char *currency;
	long long step; /* NO when absent */
};

/* Fixed-size fields absent unless a row says otherwise. */
#define ABSENT .sw = NO, .sh = NO, .vw = NO, .vh = NO, .tp = NO, .step = NO

static const struct want wants[] = {
	/* /track/view: every field. */
	{ EDGE_EP_VIEW,
	  "{\"sessionId\":\"s1\",\"userId\":\"u1\","
	  "\"pageUrl\":\"https://ex.com/a?b=1\",\"referrer\":\"https://r.io/\","
	  "\"attribution\":{\"utmSource\":\"news\",\"utmMedium\":\"mail\","
	  "\"utmCampaign\":\"spring\",\"utmContent\":\"top\","
	  "\"utmTerm\":\"shoes\",\"referrer\":\"https://ignored/\"},"
	  "\"clientDevice\":{\"screenWidth\":1920,\"screenHeight\":1080,"
	  "\"viewportWidth\":1280,\"viewportHeight\":720,\"language\":\"de-DE\","
	  "\"timezone\":\"Europe/Berlin\",\"touchPoints\":5,"
	  "\"platform\":\"Linux\",\"dpr\":2},"
	  "\"metadata\":{\"z\":1,\"a\":{\"b\":[1,2]}},\"siteId\":\"shop\","
	  "\"timestamp\":1700000000123,\"unknownKey\":[1]}",
	  1,
	  0,
	  "shop",
	  ALOG_KIND_PAGEVIEW,
	  ALOG_SOURCE_TRACK,
	  0,
	  1700000000123,
	  "pageview",
	  "https://ex.com/a?b=1",
	  "https://r.io/",
	  "s1",
	  "u1",
	  NULL,
	  NULL,
	  NULL,
	  NULL,
	  "de-DE",
	  "Europe/Berlin",
	  "{\"a\":{\"b\":[1,2]},\"z\":1}",
	  NULL,
	  NULL,
	  NULL,
	  NULL,
	  "{\"dpr\":2,\"platform\":\"Linux\"}",
	  { "news", "mail", "spring", "top", "shoes" },
	  1920,
	  1080,
	  1280,
	  720,
	  5,
	  false,
	  0,
	  NULL,
	  NO },
	/* view: content form, attribution.referrer used, nulls absent. */
	{ EDGE_EP_VIEW,
	  "{\"sessionId\":\"s\",\"contentId\":\"c9\",\"contentType\":\"post\","
	  "\"userId\":null,\"referrer\":\"\",\"metadata\":{},"
	  "\"attribution\":{\"referrer\":\"https://fb.com/\",\"utmTerm\":null},"
	  "\"clientDevice\":{\"language\":\"en\"}}",
	  1,
	  0,
	  NULL,
	  ALOG_KIND_PAGEVIEW,
	  ALOG_SOURCE_TRACK,
	  0,
	  0,
	  "pageview",
	  NULL,
	  "https://fb.com/",
	  "s",
	  NULL,
	  "c9",
	  "post",
	  NULL,
	  NULL,
	  "en",
	  .utm = { NULL },
	  ABSENT },
	/* /track/event */
	{ EDGE_EP_EVENT,
	  "{\"eventType\":\"signup\",\"sessionId\":\"s2\",\"userId\":\"u2\","
	  "\"pageUrl\":\"/join\",\"metadata\":{\"plan\":\"pro\"},"
	  "\"timestamp\":5,\"siteId\":\"blog\"}",
	  1, 0, "blog", ALOG_KIND_EVENT, ALOG_SOURCE_TRACK, 0, 5, "signup",
	  "/join", NULL, "s2", "u2", .props = "{\"plan\":\"pro\"}", ABSENT },
	/* /track/batch: each element, the shared siteId. */
	{ EDGE_EP_BATCH,
	  "{\"siteId\":\"b\",\"events\":[{\"eventType\":\"e0\",\"sessionId\":"
	  "\"s0\"},{\"eventType\":\"e1\",\"sessionId\":\"s1\",\"siteId\":\"b\","
	  "\"metadata\":{\"k\":\"v\"},\"timestamp\":7}]}",
	  2, 0, "b", ALOG_KIND_EVENT, ALOG_SOURCE_TRACK, 0, 0, "e0", NULL, NULL,
	  "s0", ABSENT },
	{ EDGE_EP_BATCH,
	  "{\"siteId\":\"b\",\"events\":[{\"eventType\":\"e0\",\"sessionId\":"
	  "\"s0\"},{\"eventType\":\"e1\",\"sessionId\":\"s1\",\"siteId\":\"b\","
	  "\"metadata\":{\"k\":\"v\"},\"timestamp\":7}]}",
	  2, 1, "b", ALOG_KIND_EVENT, ALOG_SOURCE_TRACK, 0, 7, "e1", NULL, NULL,
	  "s1", .props = "{\"k\":\"v\"}", ABSENT },
	/* batch: siteId only on an element. */
	{ EDGE_EP_BATCH,
	  "{\"events\":[{\"eventType\":\"e\",\"sessionId\":\"s\",\"siteId\":"
	  "\"x\"}]}",
	  1, 0, "x", ALOG_KIND_EVENT, ALOG_SOURCE_TRACK, 0, 0, "e", NULL, NULL,
	  "s", ABSENT },
	/* /track/conversion: value to micros, currency upper-cased. */
	{ EDGE_EP_CONVERSION,
	  "{\"conversionType\":\"purchase\",\"sessionId\":\"s\",\"userId\":\"u\","
	  "\"value\":19.99,\"currency\":\"eur\",\"metadata\":{\"sku\":\"A1\"}}",
	  1, 0, NULL, ALOG_KIND_CONVERSION, ALOG_SOURCE_TRACK, 0, 0, "purchase",
	  NULL, NULL, "s", "u", .props = "{\"sku\":\"A1\"}", ABSENT,
	  .has_value = true, .micros = 19990000, .currency = "EUR" },
	{ EDGE_EP_CONVERSION,
	  "{\"conversionType\":\"refund\",\"sessionId\":\"s\",\"value\":-9000000000000}",
	  1, 0, NULL, ALOG_KIND_CONVERSION, ALOG_SOURCE_TRACK, 0, 0, "refund",
	  NULL, NULL, "s", ABSENT, .has_value = true,
	  .micros = -9000000000000000000LL, .currency = "   " },
	{ EDGE_EP_CONVERSION,
	  "{\"conversionType\":\"lead\",\"sessionId\":\"s\"}", 1, 0, NULL,
	  ALOG_KIND_CONVERSION, ALOG_SOURCE_TRACK, 0, 0, "lead", NULL, NULL,
	  "s", ABSENT },
	/* /track/funnel */
	{ EDGE_EP_FUNNEL,
	  "{\"funnelId\":\"f\",\"stepId\":\"cart\",\"stepOrder\":4294967295,"
	  "\"sessionId\":\"s\",\"userId\":\"u\",\"metadata\":{\"m\":true}}",
	  1,
	  0,
	  NULL,
	  ALOG_KIND_FUNNEL,
	  ALOG_SOURCE_TRACK,
	  0,
	  0,
	  "funnel_step",
	  NULL,
	  NULL,
	  "s",
	  "u",
	  .props = "{\"m\":true}",
	  .funnel_id = "f",
	  .step_id = "cart",
	  .sw = NO,
	  .sh = NO,
	  .vw = NO,
	  .vh = NO,
	  .tp = NO,
	  .step = 4294967295LL },
	{ EDGE_EP_FUNNEL,
	  "{\"funnelId\":\"f\",\"stepId\":\"a\",\"stepOrder\":0,\"sessionId\":\"s\"}",
	  1,
	  0,
	  NULL,
	  ALOG_KIND_FUNNEL,
	  ALOG_SOURCE_TRACK,
	  0,
	  0,
	  "funnel_step",
	  NULL,
	  NULL,
	  "s",
	  .funnel_id = "f",
	  .step_id = "a",
	  .sw = NO,
	  .sh = NO,
	  .vw = NO,
	  .vh = NO,
	  .tp = NO,
	  .step = 0 },
	/* /track/engagement */
	{ EDGE_EP_ENGAGEMENT,
	  "{\"metricType\":\"like\",\"userId\":\"u\",\"targetId\":\"p1\","
	  "\"targetType\":\"post\",\"metadata\":{\"x\":1}}",
	  1, 0, NULL, ALOG_KIND_ENGAGEMENT, ALOG_SOURCE_TRACK, 0, 0, "like",
	  NULL, NULL, NULL, "u", .props = "{\"x\":1}", .target_id = "p1",
	  .target_type = "post", ABSENT },
	/* /track/interaction */
	{ EDGE_EP_INTERACTION,
	  "{\"siteId\":\"i\",\"events\":[{\"type\":\"click\",\"sessionId\":\"s\","
	  "\"userId\":\"u\",\"data\":{\"x\":10,\"y\":20},\"timestamp\":99},"
	  "{\"type\":\"scroll\",\"sessionId\":\"s\"}]}",
	  2, 0, "i", ALOG_KIND_INTERACTION, ALOG_SOURCE_TRACK, 0, 99, "click",
	  NULL, NULL, "s", "u", .props = "{\"x\":10,\"y\":20}", ABSENT },
	{ EDGE_EP_INTERACTION,
	  "{\"siteId\":\"i\",\"events\":[{\"type\":\"click\",\"sessionId\":\"s\","
	  "\"userId\":\"u\",\"data\":{\"x\":10,\"y\":20},\"timestamp\":99},"
	  "{\"type\":\"scroll\",\"sessionId\":\"s\"}]}",
	  2, 1, "i", ALOG_KIND_INTERACTION, ALOG_SOURCE_TRACK, 0, 0, "scroll",
	  NULL, NULL, "s", ABSENT },
	/* Plausible, long keys: pageview, utm from the URL, host. */
	{ EDGE_EP_PLAUSIBLE,
	  "{\"name\":\"pageview\",\"url\":\"https://user@Ex.com:8443/p?"
	  "utm_source=news%20letter&utm_medium=e+mail&utm_campaign=%E2%82%AC"
	  "&utm_content=&utm_term=a%ZZ&utm_source=second#utm_term=no\","
	  "\"domain\":\"ex.com\",\"referrer\":\"https://g.co/\","
	  "\"props\":{\"a\":\"b\"},\"interactive\":true}",
	  1, 0, "ex.com", ALOG_KIND_PAGEVIEW, ALOG_SOURCE_PLAUSIBLE, 0, 0,
	  "pageview",
	  "https://user@Ex.com:8443/p?utm_source=news%20letter&utm_medium=e+"
	  "mail&utm_campaign=%E2%82%AC&utm_content=&utm_term=a%ZZ&utm_source="
	  "second#utm_term=no",
	  "https://g.co/", .hostname = "Ex.com", .props = "{\"a\":\"b\"}",
	  .utm = { "news letter", "e mail", "\xE2\x82\xAC", NULL, "a%ZZ" },
	  ABSENT },
	/* Plausible, tracker short keys: props as a string, $, i, h. */
	{ EDGE_EP_PLAUSIBLE,
	  "{\"n\":\"Signup\",\"u\":\"http://[::1]:3000/x?utm_source=%E9\","
	  "\"d\":\"ex.com,ex.org\",\"r\":null,"
	  "\"p\":\"{\\\"plan\\\":\\\"pro\\\",\\\"seats\\\":3,\\\"ok\\\":true,"
	  "\\\"r\\\":0.1,\\\"gone\\\":null}\","
	  "\"$\":{\"currency\":\"usd\",\"amount\":\"12.5\"},\"i\":false,\"h\":1}",
	  1, 0, "ex.com,ex.org", ALOG_KIND_EVENT, ALOG_SOURCE_PLAUSIBLE,
	  ALOG_EVENT_F_NONINTERACTIVE, 0, "Signup",
	  "http://[::1]:3000/x?utm_source=%E9", .hostname = "::1",
	  .props =
		  "{\"ok\":\"true\",\"plan\":\"pro\",\"r\":\"0.1\",\"seats\":\"3\"}",
	  .utm = { "%E9" }, ABSENT, .has_value = true, .micros = 12500000,
	  .currency = "USD" },
	/* Plausible Events API revenue with a numeric amount; path URL. */
	{ EDGE_EP_PLAUSIBLE,
	  "{\"name\":\"buy\",\"url\":\"/only/path\",\"domain\":\"d\","
	  "\"revenue\":{\"currency\":\"JPY\",\"amount\":1500}}",
	  1, 0, "d", ALOG_KIND_EVENT, ALOG_SOURCE_PLAUSIBLE, 0, 0, "buy",
	  "/only/path", ABSENT, .has_value = true, .micros = 1500000000,
	  .currency = "JPY" },
	/* Umami pageview: screen, url kept as a path, utm from its query. */
	{ EDGE_EP_UMAMI,
	  "{\"type\":\"event\",\"payload\":{\"website\":\"3f1e-uuid\","
	  "\"hostname\":\"ex.com\",\"url\":\"/p?utm_medium=cpc\","
	  "\"referrer\":\"https://r/\",\"title\":\"Home\",\"screen\":\"1920x1080\","
	  "\"language\":\"fr\",\"id\":\"ignored\"}}",
	  1,
	  0,
	  "3f1e-uuid",
	  ALOG_KIND_PAGEVIEW,
	  ALOG_SOURCE_UMAMI,
	  0,
	  0,
	  "pageview",
	  "/p?utm_medium=cpc",
	  "https://r/",
	  .title = "Home",
	  .hostname = "ex.com",
	  .language = "fr",
	  .utm = { NULL, "cpc" },
	  .sw = 1920,
	  .sh = 1080,
	  .vw = NO,
	  .vh = NO,
	  .tp = NO,
	  .step = NO },
	/* Umami custom event: name, data; hostname from an absolute url. */
	{ EDGE_EP_UMAMI,
	  "{\"type\":\"event\",\"payload\":{\"website\":\"w\",\"url\":"
	  "\"https://h.io/z\",\"name\":\"play\",\"data\":{\"v\":[1,{\"w\":2}]},"
	  "\"screen\":\"0x65535\"}}",
	  1, 0, "w", ALOG_KIND_EVENT, ALOG_SOURCE_UMAMI, 0, 0, "play",
	  "https://h.io/z", .hostname = "h.io",
	  .props = "{\"v\":[1,{\"w\":2}]}", .sw = 0, .sh = 65535, .vw = NO,
	  .vh = NO, .tp = NO, .step = NO },
};

static bool str_is(struct alog_str s, const char *want)
{
	if (!want)
		return s.len == 0;
	return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

#define CHECK_STR(s, w)                                                      \
	do {                                                                 \
		t_checks++;                                                  \
		if (!str_is(s, w)) {                                         \
			t_failed++;                                          \
			fprintf(stderr,                                      \
				"%s:%d: row %zu (%s): %s is \"%.*s\", want " \
				"\"%s\"\n",                                  \
				__FILE__, __LINE__, row, what, #s,           \
				(int)(s).len, (s).p ? (s).p : "",            \
				(w) ? (w) : "(absent)");                     \
		}                                                            \
	} while (0)

#define CHECK_FIXED(has, v, w)            \
	do {                              \
		CHECK_EQ(has, (w) != NO); \
		if ((w) != NO)            \
			CHECK_EQ(v, w);   \
	} while (0)

static void check_event(size_t row, const char *what, const struct want *w,
			const struct alog_event *e)
{
	static const char *const none = "   ";

	CHECK_EQ(e->kind, w->kind);
	CHECK_EQ(e->source, w->source);
	CHECK_EQ(e->flags, w->flags);
	CHECK_EQ(e->client_ms, w->client_ms);
	CHECK_STR(e->name, w->name);
	CHECK_STR(e->url, w->url);
	CHECK_STR(e->referrer, w->referrer);
	CHECK_STR(e->session_id, w->session);
	CHECK_STR(e->user_id, w->user);
	CHECK_STR(e->content_id, w->content_id);
	CHECK_STR(e->content_type, w->content_type);
	CHECK_STR(e->title, w->title);
	CHECK_STR(e->hostname, w->hostname);
	CHECK_STR(e->language, w->language);
	CHECK_STR(e->timezone, w->timezone);
	CHECK_STR(e->props, w->props);
	CHECK_STR(e->funnel_id, w->funnel_id);
	CHECK_STR(e->step_id, w->step_id);
	CHECK_STR(e->target_id, w->target_id);
	CHECK_STR(e->target_type, w->target_type);
	CHECK_STR(e->device_extra, w->extra);
	for (int k = 0; k < ALOG_UTM_COUNT; k++)
		CHECK_STR(e->utm[k], w->utm[k]);
	CHECK_FIXED(e->has_screen, e->screen_w, w->sw);
	CHECK_FIXED(e->has_screen, e->screen_h, w->sh);
	CHECK_FIXED(e->has_viewport, e->viewport_w, w->vw);
	CHECK_FIXED(e->has_viewport, e->viewport_h, w->vh);
	CHECK_FIXED(e->has_touch_points, e->touch_points, w->tp);
	CHECK_FIXED(e->has_step_order, e->step_order, w->step);
	CHECK_EQ(e->has_value, w->has_value);
	if (w->has_value) {
		CHECK_EQ(e->value_micros, w->micros);
		CHECK(memcmp(e->currency, w->currency ? w->currency : none,
			     3) == 0);
	}
	/* The caller fills these. */
	CHECK(e->user_agent.len == 0 && e->region.len == 0 && e->city.len == 0);
	CHECK(e->received_ms == 0 && e->visitor == 0);
}

static void test_mappings(void)
{
	for (size_t row = 0; row < ALOG_ARRAY_LEN(wants); row++) {
		const struct want *w = &wants[row];
		struct edge_parse_result r;
		struct edge_parse_error err;
		struct alog_event e, d;
		static uint8_t buf[ALOG_EVENT_BYTES_MAX];
		size_t len;
		const char *what = "parsed";
		int rc;

		rc = edge_event_parse(w->ep, w->body, strlen(w->body), NULL, &r,
				      &err);
		if (rc != 0) {
			fprintf(stderr, "row %zu: rc %d: %s %s\n", row, rc,
				err.field, err.message);
			CHECK_EQ(rc, 0);
			continue;
		}
		CHECK_EQ(r.n, w->n);
		CHECK_STR(r.site_hint, w->hint);
		if (r.n <= w->idx) {
			edge_parse_result_free(&r);
			continue;
		}
		e = r.events[w->idx];
		check_event(row, what, w, &e);
		CHECK(e.site.len == 0);

		/* Round trip through the record, with what the caller adds. */
		e.site = (struct alog_str){ "site-1", 6 };
		e.user_agent = (struct alog_str){ "Mozilla/5.0", 11 };
		e.received_ms = 1234;
		e.visitor = 0x0102030405060708ull;
		memcpy(e.country, "DE", 2);
		CHECK_EQ(alog_event_encode(&e, buf, sizeof(buf), &len), 0);
		CHECK_EQ(len, alog_event_encoded_bytes(&e));
		CHECK_EQ(alog_event_decode(buf, len, &d), 0);
		what = "decoded";
		CHECK_STR(d.site, "site-1");
		CHECK_STR(d.user_agent, "Mozilla/5.0");
		CHECK(d.received_ms == 1234 && d.visitor == e.visitor);
		CHECK(memcmp(d.country, "DE", 2) == 0);
		d.user_agent.len = 0;
		d.received_ms = 0;
		d.visitor = 0;
		check_event(row, what, w, &d);
		edge_parse_result_free(&r);
	}
}

struct refusal {
	enum edge_endpoint ep;
	const char *body;
	int rc;
	const char *field;
	const char *message; /* a substring of it */
};

static const struct refusal refusals[] = {
	/* Malformed bodies. */
	{ EDGE_EP_EVENT, "", -EINVAL, "", "invalid JSON" },
	{ EDGE_EP_EVENT, "{\"eventType\":", -EINVAL, "", "invalid JSON" },
	{ EDGE_EP_EVENT, "{} x", -EINVAL, "", "invalid JSON" },
	{ EDGE_EP_EVENT, "[1]", -EINVAL, "", "must be a JSON object" },
	{ EDGE_EP_EVENT, "\"s\"", -EINVAL, "", "invalid JSON" },
	{ EDGE_EP_EVENT, "{\"eventType\":\"a\",\"eventType\":\"b\"}", -EINVAL,
	  "", "duplicate" },
	{ EDGE_EP_EVENT, "{\"eventType\":\"a\\u0000b\",\"sessionId\":\"s\"}",
	  -EINVAL, "", "invalid JSON" },
	{ EDGE_EP_EVENT, "{\"eventType\":\"\xC3\x28\",\"sessionId\":\"s\"}",
	  -EINVAL, "", "invalid JSON" },
	{ EDGE_EP_EVENT,
	  "{\"eventType\":\"e\",\"sessionId\":\"s\",\"n\":1e999}", -EINVAL, "",
	  "invalid JSON" },
	/* view */
	{ EDGE_EP_VIEW, "{\"pageUrl\":\"/\"}", -EINVAL, "sessionId",
	  "is required" },
	{ EDGE_EP_VIEW, "{\"sessionId\":\"\",\"pageUrl\":\"/\"}", -EINVAL,
	  "sessionId", "must not be empty" },
	{ EDGE_EP_VIEW, "{\"sessionId\":7,\"pageUrl\":\"/\"}", -EINVAL,
	  "sessionId", "must be a string" },
	{ EDGE_EP_VIEW, "{\"sessionId\":\"s\"}", -EINVAL, "pageUrl",
	  "is required" },
	{ EDGE_EP_VIEW, "{\"sessionId\":\"s\",\"contentId\":\"c\"}", -EINVAL,
	  "contentType", "is required with contentId" },
	{ EDGE_EP_VIEW, "{\"sessionId\":\"s\",\"contentType\":\"c\"}", -EINVAL,
	  "contentId", "is required with contentType" },
	{ EDGE_EP_VIEW, "{\"sessionId\":\"s\",\"pageUrl\":[]}", -EINVAL,
	  "pageUrl", "must be a string" },
	{ EDGE_EP_VIEW, "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"userId\":1}",
	  -EINVAL, "userId", "must be a string" },
	{ EDGE_EP_VIEW,
	  "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"referrer\":false}", -EINVAL,
	  "referrer", "must be a string" },
	{ EDGE_EP_VIEW,
	  "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"metadata\":[1]}", -EINVAL,
	  "metadata", "must be an object" },
	{ EDGE_EP_VIEW,
	  "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"metadata\":\"{}\"}",
	  -EINVAL, "metadata", "must be an object" },
	{ EDGE_EP_VIEW, "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"siteId\":1}",
	  -EINVAL, "siteId", "must be a string" },
	{ EDGE_EP_VIEW,
	  "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"timestamp\":\"2024\"}",
	  -EINVAL, "timestamp", "non-negative integer" },
	{ EDGE_EP_VIEW,
	  "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"timestamp\":-1}", -EINVAL,
	  "timestamp", "non-negative integer" },
	{ EDGE_EP_VIEW,
	  "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"timestamp\":1.5}", -EINVAL,
	  "timestamp", "non-negative integer" },
	{ EDGE_EP_VIEW,
	  "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"attribution\":\"x\"}",
	  -EINVAL, "attribution", "must be an object" },
	{ EDGE_EP_VIEW,
	  "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"attribution\":{\"utmSource\":1}}",
	  -EINVAL, "attribution.utmSource", "must be a string" },
	{ EDGE_EP_VIEW,
	  "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"attribution\":{\"referrer\":{}}}",
	  -EINVAL, "attribution.referrer", "must be a string" },
	{ EDGE_EP_VIEW,
	  "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"clientDevice\":[]}",
	  -EINVAL, "clientDevice", "must be an object" },
	{ EDGE_EP_VIEW,
	  "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"clientDevice\":"
	  "{\"screenWidth\":\"1920\",\"screenHeight\":1080}}",
	  -EINVAL, "clientDevice.screenWidth",
	  "must be an integer from 0 to 65535" },
	{ EDGE_EP_VIEW,
	  "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"clientDevice\":"
	  "{\"screenWidth\":1,\"screenHeight\":65536}}",
	  -EINVAL, "clientDevice.screenHeight", "0 to 65535" },
	{ EDGE_EP_VIEW,
	  "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"clientDevice\":"
	  "{\"viewportWidth\":-1,\"viewportHeight\":1}}",
	  -EINVAL, "clientDevice.viewportWidth", "0 to 65535" },
	{ EDGE_EP_VIEW,
	  "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"clientDevice\":"
	  "{\"viewportWidth\":1.5,\"viewportHeight\":1}}",
	  -EINVAL, "clientDevice.viewportWidth", "0 to 65535" },
	{ EDGE_EP_VIEW,
	  "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"clientDevice\":"
	  "{\"screenWidth\":1}}",
	  -EINVAL, "clientDevice.screenHeight",
	  "is required with screenWidth" },
	{ EDGE_EP_VIEW,
	  "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"clientDevice\":"
	  "{\"viewportHeight\":1}}",
	  -EINVAL, "clientDevice.viewportWidth", "is required with" },
	{ EDGE_EP_VIEW,
	  "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"clientDevice\":"
	  "{\"touchPoints\":256}}",
	  -EINVAL, "clientDevice.touchPoints", "0 to 255" },
	{ EDGE_EP_VIEW,
	  "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"clientDevice\":"
	  "{\"language\":[\"en\"]}}",
	  -EINVAL, "clientDevice.language", "must be a string" },
	{ EDGE_EP_VIEW,
	  "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"clientDevice\":"
	  "{\"timezone\":0}}",
	  -EINVAL, "clientDevice.timezone", "must be a string" },
	/* event */
	{ EDGE_EP_EVENT, "{\"sessionId\":\"s\"}", -EINVAL, "eventType",
	  "is required" },
	{ EDGE_EP_EVENT, "{\"eventType\":null,\"sessionId\":\"s\"}", -EINVAL,
	  "eventType", "is required" },
	{ EDGE_EP_EVENT, "{\"eventType\":\"e\"}", -EINVAL, "sessionId",
	  "is required" },
	{ EDGE_EP_EVENT, "{\"eventType\":1,\"sessionId\":\"s\"}", -EINVAL,
	  "eventType", "must be a string" },
	{ EDGE_EP_EVENT,
	  "{\"eventType\":\"e\",\"sessionId\":\"s\",\"pageUrl\":true}", -EINVAL,
	  "pageUrl", "must be a string" },
	/* batch: all or nothing, element paths. */
	{ EDGE_EP_BATCH, "{}", -EINVAL, "events", "is required" },
	{ EDGE_EP_BATCH, "{\"events\":{}}", -EINVAL, "events",
	  "must be an array" },
	{ EDGE_EP_BATCH,
	  "{\"events\":[{\"eventType\":\"a\",\"sessionId\":\"s\"},"
	  "{\"eventType\":\"b\",\"sessionId\":\"s\"},{\"eventType\":\"c\","
	  "\"sessionId\":\"s\"},{\"sessionId\":\"s\"}]}",
	  -EINVAL, "events[3].eventType", "is required" },
	{ EDGE_EP_BATCH,
	  "{\"events\":[{\"eventType\":\"a\",\"sessionId\":\"s\"},"
	  "{\"eventType\":\"b\",\"sessionId\":\"s\"},{\"eventType\":\"c\"}]}",
	  -EINVAL, "events[2].sessionId", "is required" },
	{ EDGE_EP_BATCH,
	  "{\"events\":[{\"eventType\":\"a\",\"sessionId\":\"s\"},7]}", -EINVAL,
	  "events[1]", "must be an object" },
	{ EDGE_EP_BATCH,
	  "{\"siteId\":\"a\",\"events\":[{\"eventType\":\"a\",\"sessionId\":"
	  "\"s\",\"siteId\":\"b\"}]}",
	  -EINVAL, "events[0].siteId", "differs" },
	{ EDGE_EP_BATCH,
	  "{\"events\":[{\"eventType\":\"a\",\"sessionId\":\"s\","
	  "\"metadata\":5}]}",
	  -EINVAL, "events[0].metadata", "must be an object" },
	/* conversion */
	{ EDGE_EP_CONVERSION, "{\"sessionId\":\"s\"}", -EINVAL,
	  "conversionType", "is required" },
	{ EDGE_EP_CONVERSION, "{\"conversionType\":\"c\"}", -EINVAL,
	  "sessionId", "is required" },
	{ EDGE_EP_CONVERSION,
	  "{\"conversionType\":\"c\",\"sessionId\":\"s\",\"value\":\"10\"}",
	  -EINVAL, "value", "must be a number" },
	{ EDGE_EP_CONVERSION,
	  "{\"conversionType\":\"c\",\"sessionId\":\"s\",\"value\":9.1e12}",
	  -EINVAL, "value", "9e12" },
	{ EDGE_EP_CONVERSION,
	  "{\"conversionType\":\"c\",\"sessionId\":\"s\",\"value\":-9000000000001}",
	  -EINVAL, "value", "9e12" },
	{ EDGE_EP_CONVERSION,
	  "{\"conversionType\":\"c\",\"sessionId\":\"s\",\"value\":1,"
	  "\"currency\":\"EURO\"}",
	  -EINVAL, "currency", "3-letter" },
	{ EDGE_EP_CONVERSION,
	  "{\"conversionType\":\"c\",\"sessionId\":\"s\",\"value\":1,"
	  "\"currency\":\"E1R\"}",
	  -EINVAL, "currency", "3-letter" },
	{ EDGE_EP_CONVERSION,
	  "{\"conversionType\":\"c\",\"sessionId\":\"s\",\"value\":1,"
	  "\"currency\":978}",
	  -EINVAL, "currency", "must be a string" },
	{ EDGE_EP_CONVERSION,
	  "{\"conversionType\":\"c\",\"sessionId\":\"s\",\"currency\":\"EUR\"}",
	  -EINVAL, "currency", "requires value" },
	/* funnel */
	{ EDGE_EP_FUNNEL,
	  "{\"stepId\":\"a\",\"stepOrder\":1,\"sessionId\":\"s\"}", -EINVAL,
	  "funnelId", "is required" },
	{ EDGE_EP_FUNNEL,
	  "{\"funnelId\":\"f\",\"stepOrder\":1,\"sessionId\":\"s\"}", -EINVAL,
	  "stepId", "is required" },
	{ EDGE_EP_FUNNEL,
	  "{\"funnelId\":\"f\",\"stepId\":\"a\",\"sessionId\":\"s\"}", -EINVAL,
	  "stepOrder", "is required" },
	{ EDGE_EP_FUNNEL,
	  "{\"funnelId\":\"f\",\"stepId\":\"a\",\"stepOrder\":1}", -EINVAL,
	  "sessionId", "is required" },
	{ EDGE_EP_FUNNEL,
	  "{\"funnelId\":\"f\",\"stepId\":\"a\",\"stepOrder\":-1,\"sessionId\":\"s\"}",
	  -EINVAL, "stepOrder", "0 to 4294967295" },
	{ EDGE_EP_FUNNEL,
	  "{\"funnelId\":\"f\",\"stepId\":\"a\",\"stepOrder\":4294967296,"
	  "\"sessionId\":\"s\"}",
	  -EINVAL, "stepOrder", "0 to 4294967295" },
	{ EDGE_EP_FUNNEL,
	  "{\"funnelId\":\"f\",\"stepId\":\"a\",\"stepOrder\":\"1\",\"sessionId\":\"s\"}",
	  -EINVAL, "stepOrder", "integer" },
	/* engagement */
	{ EDGE_EP_ENGAGEMENT, "{\"userId\":\"u\"}", -EINVAL, "metricType",
	  "is required" },
	{ EDGE_EP_ENGAGEMENT, "{\"metricType\":\"m\"}", -EINVAL, "userId",
	  "is required" },
	{ EDGE_EP_ENGAGEMENT,
	  "{\"metricType\":\"m\",\"userId\":\"u\",\"targetId\":1}", -EINVAL,
	  "targetId", "must be a string" },
	{ EDGE_EP_ENGAGEMENT,
	  "{\"metricType\":\"m\",\"userId\":\"u\",\"targetType\":[]}", -EINVAL,
	  "targetType", "must be a string" },
	/* interaction */
	{ EDGE_EP_INTERACTION, "{\"events\":[{\"sessionId\":\"s\"}]}", -EINVAL,
	  "events[0].type", "is required" },
	{ EDGE_EP_INTERACTION, "{\"events\":[{\"type\":\"t\"}]}", -EINVAL,
	  "events[0].sessionId", "is required" },
	{ EDGE_EP_INTERACTION,
	  "{\"events\":[{\"type\":\"t\",\"sessionId\":\"s\",\"data\":[1]}]}",
	  -EINVAL, "events[0].data", "must be an object" },
	{ EDGE_EP_INTERACTION,
	  "{\"events\":[{\"type\":\"t\",\"sessionId\":\"s\",\"timestamp\":\"x\"}]}",
	  -EINVAL, "events[0].timestamp", "non-negative integer" },
	/* Plausible */
	{ EDGE_EP_PLAUSIBLE, "{\"u\":\"/\",\"d\":\"d\"}", -EINVAL, "name",
	  "is required" },
	{ EDGE_EP_PLAUSIBLE, "{\"n\":\"pageview\",\"d\":\"d\"}", -EINVAL, "url",
	  "is required" },
	{ EDGE_EP_PLAUSIBLE, "{\"n\":\"pageview\",\"u\":\"/\"}", -EINVAL,
	  "domain", "is required" },
	{ EDGE_EP_PLAUSIBLE, "{\"n\":1,\"u\":\"/\",\"d\":\"d\"}", -EINVAL, "n",
	  "must be a string" },
	{ EDGE_EP_PLAUSIBLE, "{\"n\":\"p\",\"u\":\"/\",\"d\":[\"d\"]}", -EINVAL,
	  "d", "must be a string" },
	{ EDGE_EP_PLAUSIBLE,
	  "{\"name\":\"a\",\"n\":\"b\",\"u\":\"/\",\"d\":\"d\"}", -EINVAL, "n",
	  "must not be given with name" },
	{ EDGE_EP_PLAUSIBLE, "{\"n\":\"p\",\"u\":\"/\",\"d\":\"d\",\"r\":1}",
	  -EINVAL, "r", "must be a string" },
	{ EDGE_EP_PLAUSIBLE, "{\"n\":\"p\",\"u\":\"/\",\"d\":\"d\",\"p\":[]}",
	  -EINVAL, "p", "must be an object" },
	{ EDGE_EP_PLAUSIBLE,
	  "{\"n\":\"p\",\"u\":\"/\",\"d\":\"d\",\"p\":\"[]\"}", -EINVAL, "p",
	  "must be an object" },
	{ EDGE_EP_PLAUSIBLE,
	  "{\"n\":\"p\",\"u\":\"/\",\"d\":\"d\",\"p\":\"{\"}", -EINVAL, "p",
	  "invalid JSON" },
	{ EDGE_EP_PLAUSIBLE,
	  "{\"n\":\"p\",\"u\":\"/\",\"d\":\"d\",\"p\":\"{\\\"a\\\":1,\\\"a\\\":2}\"}",
	  -EINVAL, "p", "duplicate" },
	{ EDGE_EP_PLAUSIBLE,
	  "{\"n\":\"p\",\"u\":\"/\",\"d\":\"d\",\"props\":{\"a\":{\"b\":1}}}",
	  -EINVAL, "props.a", "must be a string, number or boolean" },
	{ EDGE_EP_PLAUSIBLE,
	  "{\"n\":\"p\",\"u\":\"/\",\"d\":\"d\",\"p\":\"{\\\"a\\\":[1]}\"}",
	  -EINVAL, "p.a", "must be a string, number or boolean" },
	{ EDGE_EP_PLAUSIBLE,
	  "{\"n\":\"p\",\"u\":\"/\",\"d\":\"d\",\"revenue\":5}", -EINVAL,
	  "revenue", "must be an object" },
	{ EDGE_EP_PLAUSIBLE,
	  "{\"n\":\"p\",\"u\":\"/\",\"d\":\"d\",\"revenue\":{\"amount\":5}}",
	  -EINVAL, "revenue.currency", "is required" },
	{ EDGE_EP_PLAUSIBLE,
	  "{\"n\":\"p\",\"u\":\"/\",\"d\":\"d\",\"$\":{\"currency\":\"EUR\"}}",
	  -EINVAL, "$.amount", "is required" },
	{ EDGE_EP_PLAUSIBLE,
	  "{\"n\":\"p\",\"u\":\"/\",\"d\":\"d\",\"revenue\":{\"currency\":"
	  "\"EUR\",\"amount\":\"1e3\"}}",
	  -EINVAL, "revenue.amount", "decimal number" },
	{ EDGE_EP_PLAUSIBLE,
	  "{\"n\":\"p\",\"u\":\"/\",\"d\":\"d\",\"revenue\":{\"currency\":"
	  "\"EUR\",\"amount\":\"nan\"}}",
	  -EINVAL, "revenue.amount", "decimal number" },
	{ EDGE_EP_PLAUSIBLE,
	  "{\"n\":\"p\",\"u\":\"/\",\"d\":\"d\",\"revenue\":{\"currency\":"
	  "\"EUR\",\"amount\":\"99999999999999\"}}",
	  -EINVAL, "revenue.amount", "9e12" },
	{ EDGE_EP_PLAUSIBLE,
	  "{\"n\":\"p\",\"u\":\"/\",\"d\":\"d\",\"revenue\":{\"currency\":"
	  "\"EUR\",\"amount\":true}}",
	  -EINVAL, "revenue.amount", "number or numeric string" },
	{ EDGE_EP_PLAUSIBLE,
	  "{\"n\":\"p\",\"u\":\"/\",\"d\":\"d\",\"revenue\":{\"currency\":"
	  "\"EU\",\"amount\":1}}",
	  -EINVAL, "revenue.currency", "3-letter" },
	{ EDGE_EP_PLAUSIBLE,
	  "{\"n\":\"p\",\"u\":\"/\",\"d\":\"d\",\"interactive\":\"no\"}",
	  -EINVAL, "interactive", "must be a boolean" },
	{ EDGE_EP_PLAUSIBLE, "{\"n\":\"p\",\"u\":\"/\",\"d\":\"d\",\"i\":0}",
	  -EINVAL, "i", "must be a boolean" },
	/* Umami */
	{ EDGE_EP_UMAMI, "{\"payload\":{\"website\":\"w\"}}", -EINVAL, "type",
	  "is required" },
	{ EDGE_EP_UMAMI, "{\"type\":\"pageview\",\"payload\":{}}", -EINVAL,
	  "type", "\"event\" or \"identify\"" },
	{ EDGE_EP_UMAMI, "{\"type\":\"event\"}", -EINVAL, "payload",
	  "is required" },
	{ EDGE_EP_UMAMI, "{\"type\":\"event\",\"payload\":[]}", -EINVAL,
	  "payload", "must be an object" },
	{ EDGE_EP_UMAMI, "{\"type\":\"event\",\"payload\":{\"url\":\"/\"}}",
	  -EINVAL, "payload.website", "is required" },
	{ EDGE_EP_UMAMI, "{\"type\":\"event\",\"payload\":{\"website\":5}}",
	  -EINVAL, "payload.website", "must be a string" },
	{ EDGE_EP_UMAMI,
	  "{\"type\":\"event\",\"payload\":{\"website\":\"w\",\"screen\":\"1920\"}}",
	  -EINVAL, "payload.screen", "WIDTHxHEIGHT" },
	{ EDGE_EP_UMAMI,
	  "{\"type\":\"event\",\"payload\":{\"website\":\"w\",\"screen\":\"1x65536\"}}",
	  -EINVAL, "payload.screen", "WIDTHxHEIGHT" },
	{ EDGE_EP_UMAMI,
	  "{\"type\":\"event\",\"payload\":{\"website\":\"w\",\"screen\":\"x1\"}}",
	  -EINVAL, "payload.screen", "WIDTHxHEIGHT" },
	{ EDGE_EP_UMAMI,
	  "{\"type\":\"event\",\"payload\":{\"website\":\"w\",\"screen\":\"1x2 \"}}",
	  -EINVAL, "payload.screen", "WIDTHxHEIGHT" },
	{ EDGE_EP_UMAMI,
	  "{\"type\":\"event\",\"payload\":{\"website\":\"w\",\"screen\":1920}}",
	  -EINVAL, "payload.screen", "must be a string" },
	{ EDGE_EP_UMAMI,
	  "{\"type\":\"event\",\"payload\":{\"website\":\"w\",\"data\":\"x\"}}",
	  -EINVAL, "payload.data", "must be an object" },
	{ EDGE_EP_UMAMI,
	  "{\"type\":\"event\",\"payload\":{\"website\":\"w\",\"name\":1}}",
	  -EINVAL, "payload.name", "must be a string" },
	{ EDGE_EP_UMAMI,
	  "{\"type\":\"event\",\"payload\":{\"website\":\"w\",\"title\":{}}}",
	  -EINVAL, "payload.title", "must be a string" },
};

static void expect_refusal(const char *what, enum edge_endpoint ep,
			   const char *body, size_t len,
			   const struct edge_event_limits *lim, int want_rc,
			   const char *field, const char *msg)
{
	struct edge_parse_result r;
	struct edge_parse_error err;
	int rc = edge_event_parse(ep, body, len, lim, &r, &err);

	CHECK_EQ(rc, want_rc);
	CHECK(r.n == 0 && r.events == NULL && r.priv == NULL &&
	      r.site_hint.len == 0);
	if (strcmp(err.field, field) != 0 || !strstr(err.message, msg)) {
		t_failed++;
		fprintf(stderr,
			"%s: got field \"%s\" message \"%s\", want \"%s\" "
			"with \"%s\"\n",
			what, err.field, err.message, field, msg);
	}
	t_checks++;
	edge_parse_result_free(&r); /* must cope with the zeroed result */
}

static void test_refusals(void)
{
	for (size_t i = 0; i < ALOG_ARRAY_LEN(refusals); i++) {
		const struct refusal *f = &refusals[i];
		char what[32];

		snprintf(what, sizeof(what), "refusal row %zu", i);
		expect_refusal(what, f->ep, f->body, strlen(f->body), NULL,
			       f->rc, f->field, f->message);
	}
}

/* Accepted bodies that give no event. */
static void test_empty_results(void)
{
	static const char identify[] =
		"{\"type\":\"identify\",\"payload\":{\"website\":\"w\","
		"\"data\":{\"plan\":\"pro\"}}}";
	static const char batch[] = "{\"siteId\":\"s\",\"events\":[]}";
	struct edge_parse_result r;
	struct edge_parse_error err;

	CHECK_EQ(edge_event_parse(EDGE_EP_UMAMI, identify, strlen(identify),
				  NULL, &r, &err),
		 0);
	CHECK(r.n == 0 && r.events == NULL);
	CHECK(str_is(r.site_hint, "w"));
	edge_parse_result_free(&r);
	CHECK(r.priv == NULL);

	CHECK_EQ(edge_event_parse(EDGE_EP_BATCH, batch, strlen(batch), NULL, &r,
				  &err),
		 0);
	CHECK(r.n == 0 && str_is(r.site_hint, "s"));
	edge_parse_result_free(&r);
	edge_parse_result_free(NULL);
}

/* A body of n events built at run time. */
static char *batch_body(size_t n, const char *elem)
{
	size_t cap = 32 + n * (strlen(elem) + 1);
	char *b = malloc(cap), *p = b;

	REQUIRE(b);
	p += sprintf(p, "{\"events\":[");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s%s", i ? "," : "", elem);
	sprintf(p, "]}");
	return b;
}

static void test_batch_limits(void)
{
	const char *ev = "{\"eventType\":\"e\",\"sessionId\":\"s\"}";
	const char *ia = "{\"type\":\"t\",\"sessionId\":\"s\"}";
	struct edge_event_limits lim = { .batch_events_max = 3 };
	struct edge_parse_result r;
	struct edge_parse_error err;
	char *b;

	b = batch_body(3, ev);
	CHECK_EQ(edge_event_parse(EDGE_EP_BATCH, b, strlen(b), &lim, &r, &err),
		 0);
	CHECK_EQ(r.n, 3);
	edge_parse_result_free(&r);
	free(b);

	b = batch_body(4, ev);
	expect_refusal("batch over limit", EDGE_EP_BATCH, b, strlen(b), &lim,
		       -E2BIG, "events", "too many events (max 3)");
	free(b);
	b = batch_body(4, ia);
	expect_refusal("interaction over limit", EDGE_EP_INTERACTION, b,
		       strlen(b), &lim, -E2BIG, "events", "max 3");
	free(b);

	/* The default is 1000. */
	b = batch_body(1000, ev);
	CHECK_EQ(edge_event_parse(EDGE_EP_BATCH, b, strlen(b), NULL, &r, &err),
		 0);
	CHECK_EQ(r.n, 1000);
	CHECK(str_is(r.events[999].name, "e"));
	edge_parse_result_free(&r);
	free(b);
	b = batch_body(1001, ev);
	expect_refusal("batch over default", EDGE_EP_BATCH, b, strlen(b), NULL,
		       -E2BIG, "events", "max 1000");
	free(b);
}

/* Nesting: the limit, the default, and a body far past jansson's own. */
static void test_depth(void)
{
	struct edge_event_limits lim = { .body_depth_max = 4 };
	struct edge_parse_result r;
	struct edge_parse_error err;
	const char *ok =
		"{\"eventType\":\"e\",\"sessionId\":\"s\",\"metadata\":"
		"{\"a\":{\"b\":[1,\"]]]]]\"]}}}";
	const char *deep = "{\"eventType\":\"e\",\"sessionId\":\"s\","
			   "\"metadata\":{\"a\":{\"b\":[[1]]}}}";
	size_t n = 100000;
	char *b = malloc(2 * n + 64), *p = b;

	CHECK_EQ(edge_event_parse(EDGE_EP_EVENT, ok, strlen(ok), &lim, &r,
				  &err),
		 0);
	edge_parse_result_free(&r);
	expect_refusal("depth 5 over 4", EDGE_EP_EVENT, deep, strlen(deep),
		       &lim, -EINVAL, "", "nested deeper than 4");
	/* The prescan's strings: brackets after an escaped quote are still
	 * inside the string; a quote after an even run of backslashes ends
	 * it, so the nesting after it counts. */
	{
		const char *esc_ok =
			"{\"eventType\":\"e\",\"sessionId\":\"s\",\"metadata\":"
			"{\"a\":\"x\\\"[[[[[[{{{\",\"b\":{\"c\":[1]}}}";
		const char *esc_deep =
			"{\"eventType\":\"e\",\"sessionId\":\"s\",\"metadata\":"
			"{\"a\":\"x\\\\\",\"b\":{\"c\":[[1]]}}}";

		CHECK_EQ(edge_event_parse(EDGE_EP_EVENT, esc_ok,
					  strlen(esc_ok), &lim, &r, &err),
			 0);
		edge_parse_result_free(&r);
		expect_refusal("depth 5 after a backslash pair",
			       EDGE_EP_EVENT, esc_deep, strlen(esc_deep), &lim,
			       -EINVAL, "", "nested deeper than 4");
	}

	REQUIRE(b);
	p += sprintf(p, "{\"eventType\":\"e\",\"sessionId\":\"s\",\"m\":");
	for (size_t i = 0; i < n; i++)
		*p++ = '[';
	for (size_t i = 0; i < n; i++)
		*p++ = ']';
	*p++ = '}';
	expect_refusal("depth 100001", EDGE_EP_EVENT, b, (size_t)(p - b), NULL,
		       -EINVAL, "", "nested deeper than 32");
	free(b);

	/* Plausible's props string is checked the same way. */
	expect_refusal(
		"props string depth", EDGE_EP_PLAUSIBLE,
		"{\"n\":\"e\",\"u\":\"/\",\"d\":\"d\",\"p\":\"{\\\"a\\\":"
		"[[[[1]]]]}\"}",
		strlen("{\"n\":\"e\",\"u\":\"/\",\"d\":\"d\",\"p\":\"{\\\"a\\\":"
		       "[[[[1]]]]}\"}"),
		&lim, -EINVAL, "p", "nested deeper than 4");
}

/* A string of n copies of c, as a JSON string body member. */
static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	REQUIRE(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void test_field_limits(void)
{
	char *at = repeat('a', ALOG_EVENT_STRING_MAX);
	char *over = repeat('a', ALOG_EVENT_STRING_MAX + 1);
	char *big = malloc(64 * 1024);
	struct edge_parse_result r;
	struct edge_parse_error err;
	int n;

	REQUIRE(big);
	/* A string at the limit passes, one byte over is refused. */
	n = snprintf(big, 64 * 1024,
		     "{\"eventType\":\"%s\",\"sessionId\":\"s\"}", at);
	CHECK_EQ(edge_event_parse(EDGE_EP_EVENT, big, (size_t)n, NULL, &r,
				  &err),
		 0);
	CHECK_EQ(r.events[0].name.len, ALOG_EVENT_STRING_MAX);
	edge_parse_result_free(&r);
	n = snprintf(big, 64 * 1024,
		     "{\"eventType\":\"e\",\"sessionId\":\"%s\"}", over);
	expect_refusal("sessionId too long", EDGE_EP_EVENT, big, (size_t)n,
		       NULL, -EINVAL, "sessionId", "too long (max 2048 bytes)");
	n = snprintf(big, 64 * 1024,
		     "{\"type\":\"event\",\"payload\":{\"website\":\"%s\"}}",
		     over);
	expect_refusal("website too long", EDGE_EP_UMAMI, big, (size_t)n, NULL,
		       -EINVAL, "payload.website", "too long");
	n = snprintf(big, 64 * 1024,
		     "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"clientDevice\":"
		     "{\"language\":\"%s\"}}",
		     over);
	expect_refusal("language too long", EDGE_EP_VIEW, big, (size_t)n, NULL,
		       -EINVAL, "clientDevice.language", "too long");

	/* Properties: 8 KiB of compact JSON. {"k":"..."} is 8 + len. */
	free(over);
	over = repeat('x', ALOG_EVENT_JSON_MAX - 8);
	n = snprintf(big, 64 * 1024,
		     "{\"eventType\":\"e\",\"sessionId\":\"s\",\"metadata\":"
		     "{ \"k\" : \"%s\" }}",
		     over);
	CHECK_EQ(edge_event_parse(EDGE_EP_EVENT, big, (size_t)n, NULL, &r,
				  &err),
		 0);
	CHECK_EQ(r.events[0].props.len, ALOG_EVENT_JSON_MAX);
	edge_parse_result_free(&r);
	free(over);
	over = repeat('x', ALOG_EVENT_JSON_MAX - 7);
	n = snprintf(big, 64 * 1024,
		     "{\"eventType\":\"e\",\"sessionId\":\"s\",\"metadata\":"
		     "{\"k\":\"%s\"}}",
		     over);
	expect_refusal("metadata too long", EDGE_EP_EVENT, big, (size_t)n, NULL,
		       -EINVAL, "metadata", "too long (max 8192 bytes");
	n = snprintf(big, 64 * 1024,
		     "{\"sessionId\":\"s\",\"pageUrl\":\"/\",\"clientDevice\":"
		     "{\"k\":\"%s\"}}",
		     over);
	expect_refusal("device extra too long", EDGE_EP_VIEW, big, (size_t)n,
		       NULL, -EINVAL, "clientDevice", "too long");

	/* Fields each within limits, together over the record. */
	free(over);
	over = repeat('x', ALOG_EVENT_JSON_MAX - 8);
	n = snprintf(
		big, 64 * 1024,
		"{\"sessionId\":\"%s\",\"pageUrl\":\"%s\",\"userId\":\"%s\","
		"\"referrer\":\"%s\",\"metadata\":{\"k\":\"%s\"}}",
		at, at, at, at, over);
	expect_refusal("record too large", EDGE_EP_VIEW, big, (size_t)n, NULL,
		       -EINVAL, "", "event too large");
	n = snprintf(big, 64 * 1024,
		     "{\"events\":[{\"eventType\":\"e\",\"sessionId\":\"s\"},"
		     "{\"eventType\":\"%s\",\"sessionId\":\"%s\",\"userId\":"
		     "\"%s\",\"pageUrl\":\"%s\",\"metadata\":{\"k\":\"%s\"}}]}",
		     at, at, at, at, over);
	expect_refusal("batch element too large", EDGE_EP_BATCH, big, (size_t)n,
		       NULL, -EINVAL, "events[1]", "event too large");
	free(at);
	free(over);
	free(big);
}

/*
 * Whatever parses must still encode with the largest additions the
 * header's reserve promises room for (site 64, user agent 512, region and
 * city 215 each): grow the metadata until the body is refused.
 */
static void test_reserve(void)
{
	char *at = repeat('a', ALOG_EVENT_STRING_MAX);
	char *big = malloc(64 * 1024), *ua = repeat('u', ALOG_EVENT_UA_MAX);
	char *site = repeat('s', 64), *geo = repeat('g', 215);
	static uint8_t buf[ALOG_EVENT_BYTES_MAX];
	struct edge_parse_result r;
	struct edge_parse_error err;
	struct alog_event e;
	size_t len, meta, accepted = 0;
	int n, rc = 0;

	REQUIRE(big);
	for (meta = 0; meta <= ALOG_EVENT_JSON_MAX - 8 && rc == 0; meta += 64) {
		char *m = repeat('m', meta);

		n = snprintf(big, 64 * 1024,
			     "{\"eventType\":\"%s\",\"sessionId\":\"%s\","
			     "\"userId\":\"%s\",\"pageUrl\":\"%s\","
			     "\"metadata\":{\"k\":\"%s\"}}",
			     at, at, at, at, m);
		free(m);
		rc = edge_event_parse(EDGE_EP_EVENT, big, (size_t)n, NULL, &r,
				      &err);
		if (rc != 0)
			break;
		accepted++;
		e = r.events[0];
		e.site = (struct alog_str){ site, 64 };
		e.user_agent = (struct alog_str){ ua, ALOG_EVENT_UA_MAX };
		e.region = (struct alog_str){ geo, 215 };
		e.city = (struct alog_str){ geo, 215 };
		CHECK_EQ(alog_event_encode(&e, buf, sizeof(buf), &len), 0);
		edge_parse_result_free(&r);
	}
	CHECK(accepted > 10);
	CHECK_EQ(rc, -EINVAL); /* the loop ended on "event too large" */
	CHECK(strstr(err.message, "event too large") != NULL);
	free(at);
	free(big);
	free(ua);
	free(site);
	free(geo);
}

/* ---- codec ---- */

static void fill_all(struct alog_event *e)
{
	static const char *const s[] = {
		"site", "name",    "https://u/", "https://ref/",  "sess",
		"user", "Mozilla", "Bavaria",    "M\xC3\xBCnchen"
	};

	memset(e, 0, sizeof(*e));
	e->kind = ALOG_KIND_CONVERSION;
	e->source = ALOG_SOURCE_UMAMI;
	e->flags = ALOG_EVENT_F_BOT | ALOG_EVENT_F_DNT |
		   ALOG_EVENT_F_NONINTERACTIVE;
	for (int i = 0; i < 16; i++)
		e->id[i] = (uint8_t)(0xF0 + i);
	e->received_ms = 0x0123456789ABCDEFull;
	e->client_ms = 0xFEDCBA9876543210ull;
	e->visitor = 0x1122334455667788ull;
	memcpy(e->country, "NZ", 2);
#define SET(f, v) e->f = (struct alog_str){ v, strlen(v) }
	SET(site, s[0]);
	SET(name, s[1]);
	SET(url, s[2]);
	SET(referrer, s[3]);
	SET(session_id, s[4]);
	SET(user_id, s[5]);
	SET(user_agent, s[6]);
	SET(region, s[7]);
	SET(city, s[8]);
	SET(utm[0], "u0");
	SET(utm[1], "u1");
	SET(utm[2], "u2");
	SET(utm[3], "u3");
	SET(utm[4], "u4");
	SET(content_id, "cid");
	SET(content_type, "ctype");
	SET(title, "T\xE2\x82\xAC");
	SET(hostname, "h.io");
	SET(language, "en");
	SET(timezone, "UTC");
	SET(props, "{\"a\":1}");
	SET(funnel_id, "fid");
	SET(step_id, "sid");
	SET(target_id, "tid");
	SET(target_type, "ttype");
	SET(device_extra, "{\"b\":2}");
#undef SET
	e->has_screen = e->has_viewport = e->has_touch_points = true;
	e->has_value = e->has_step_order = true;
	e->screen_w = 65535;
	e->screen_h = 1;
	e->viewport_w = 2;
	e->viewport_h = 40000;
	e->touch_points = 255;
	e->value_micros = INT64_MIN;
	memcpy(e->currency, "CHF", 3);
	e->step_order = UINT32_MAX;
}

/* Every string field of the struct, for comparing two events. */
#define NSTR (25 + ALOG_UTM_COUNT - 1)
static const struct alog_str *strs(const struct alog_event *e, int i)
{
	const struct alog_str *all[] = {
		&e->site,         &e->name,         &e->url,
		&e->referrer,     &e->session_id,   &e->user_id,
		&e->user_agent,   &e->region,       &e->city,
		&e->utm[0],       &e->utm[1],       &e->utm[2],
		&e->utm[3],       &e->utm[4],       &e->content_id,
		&e->content_type, &e->title,        &e->hostname,
		&e->language,     &e->timezone,     &e->props,
		&e->funnel_id,    &e->step_id,      &e->target_id,
		&e->target_type,  &e->device_extra,
	};
	_Static_assert(ALOG_ARRAY_LEN(all) == 26, "all string fields");
	return all[i];
}

static bool same_event(const struct alog_event *a, const struct alog_event *b)
{
	for (int i = 0; i < 26; i++) {
		const struct alog_str *x = strs(a, i), *y = strs(b, i);

		if (x->len != y->len || (x->len && memcmp(x->p, y->p, x->len)))
			return false;
	}
	return a->kind == b->kind && a->source == b->source &&
	       a->flags == b->flags && !memcmp(a->id, b->id, 16) &&
	       a->received_ms == b->received_ms &&
	       a->client_ms == b->client_ms && a->visitor == b->visitor &&
	       !memcmp(a->country, b->country, 2) &&
	       a->has_screen == b->has_screen &&
	       a->has_viewport == b->has_viewport &&
	       a->has_touch_points == b->has_touch_points &&
	       a->has_value == b->has_value &&
	       a->has_step_order == b->has_step_order &&
	       (!a->has_screen ||
		(a->screen_w == b->screen_w && a->screen_h == b->screen_h)) &&
	       (!a->has_viewport || (a->viewport_w == b->viewport_w &&
				     a->viewport_h == b->viewport_h)) &&
	       (!a->has_touch_points || a->touch_points == b->touch_points) &&
	       (!a->has_value || (a->value_micros == b->value_micros &&
				  !memcmp(a->currency, b->currency, 3))) &&
	       (!a->has_step_order || a->step_order == b->step_order);
}

static void test_codec_round_trip(void)
{
	static uint8_t buf[ALOG_EVENT_BYTES_MAX];
	struct alog_event e, d;
	size_t len, last = 0;

	fill_all(&e);
	CHECK_EQ(alog_event_encode(&e, buf, sizeof(buf), &len), 0);
	CHECK_EQ(len, alog_event_encoded_bytes(&e));
	CHECK_EQ(alog_event_decode(buf, len, &d), 0);
	CHECK(same_event(&e, &d));
	/* The header at its documented offsets. */
	CHECK(buf[0] == 0xA1 && buf[1] == 1 && buf[2] == 3 && buf[3] == 3);
	CHECK_EQ(alog_get_u16(buf + 4), 7);
	CHECK(buf[6] == 0xF0 && buf[21] == 0xFF);
	CHECK(alog_get_u64(buf + 22) == e.received_ms);
	CHECK(alog_get_u64(buf + 30) == e.client_ms);
	CHECK(alog_get_u64(buf + 38) == e.visitor);
	CHECK(buf[46] == 'N' && buf[47] == 'Z');
	/* Every tag 1..31 once, ascending; the fixed ones at their sizes. */
	for (size_t pos = 48, tag = 1; pos < len; tag++) {
		size_t vlen = alog_get_u16(buf + pos + 1);

		CHECK_EQ(buf[pos], tag);
		if (tag == 21 || tag == 22 || tag == 28)
			CHECK_EQ(vlen, 4);
		if (tag == 23)
			CHECK_EQ(vlen, 1);
		if (tag == 25) {
			CHECK_EQ(vlen, 11);
			CHECK(alog_get_u64(buf + pos + 3) ==
			      (uint64_t)INT64_MIN);
			CHECK(memcmp(buf + pos + 11, "CHF", 3) == 0);
		}
		pos += 3 + vlen;
		last = tag;
	}
	CHECK_EQ(last, 31);

	/* Each field alone (with the required ones) round trips too. */
	for (int i = 2; i < 26; i++) {
		struct alog_event one;

		memset(&one, 0, sizeof(one));
		one.kind = ALOG_KIND_EVENT;
		one.source = ALOG_SOURCE_TRACK;
		one.site = e.site;
		one.name = e.name;
		*(struct alog_str *)strs(&one, i) = *strs(&e, i);
		CHECK_EQ(alog_event_encode(&one, buf, sizeof(buf), &len), 0);
		CHECK_EQ(len, 48 + 3 + 4 + 3 + 4 + 3 + strs(&e, i)->len);
		CHECK_EQ(alog_event_decode(buf, len, &d), 0);
		CHECK(same_event(&one, &d));
	}

	/* Minimal record: currency decodes to spaces when absent. */
	memset(&e, 0, sizeof(e));
	e.kind = ALOG_KIND_PAGEVIEW;
	e.source = ALOG_SOURCE_PLAUSIBLE;
	e.site = (struct alog_str){ "s", 1 };
	e.name = (struct alog_str){ "pageview", 8 };
	e.has_value = true;
	memcpy(e.currency, "   ", 3);
	CHECK_EQ(alog_event_encode(&e, buf, sizeof(buf), &len), 0);
	CHECK_EQ(alog_event_decode(buf, len, &d), 0);
	CHECK(same_event(&e, &d));
	CHECK_EQ(alog_event_encode(&e, buf, len, &len), 0); /* exact cap */
	CHECK_EQ(alog_event_encode(&e, buf, len - 1, &len), -EMSGSIZE);

	CHECK(strcmp(alog_event_kind_name(ALOG_KIND_PAGEVIEW), "pageview") ==
	      0);
	CHECK(strcmp(alog_event_kind_name(ALOG_KIND_INTERACTION),
		     "interaction") == 0);
	CHECK(strcmp(alog_event_kind_name(0), "unknown") == 0);
	CHECK(strcmp(alog_event_kind_name(7), "unknown") == 0);
}

static void test_codec_encode_refusals(void)
{
	static uint8_t buf[2 * ALOG_EVENT_BYTES_MAX];
	char *big = repeat('a', ALOG_EVENT_JSON_MAX + 1);
	struct alog_event e;
	size_t len;

#define TRY(change, want)                                                      \
	do {                                                                   \
		fill_all(&e);                                                  \
		change;                                                        \
		CHECK_EQ(alog_event_encode(&e, buf, sizeof(buf), &len), want); \
	} while (0)

	TRY((void)0, 0);
	TRY(e.kind = 0, -EINVAL);
	TRY(e.kind = 7, -EINVAL);
	TRY(e.source = 0, -EINVAL);
	TRY(e.source = 4, -EINVAL);
	TRY(e.flags = 8, -EINVAL);
	TRY(e.site.len = 0, -EINVAL);
	TRY(e.name.len = 0, -EINVAL);
	TRY(memcpy(e.country, "de", 2), -EINVAL);
	TRY(memcpy(e.country, "D\0", 2), -EINVAL);
	TRY(memcpy(e.country, "\0\0", 2), 0);
	TRY(memcpy(e.currency, "eur", 3), -EINVAL);
	TRY(memcpy(e.currency, "  X", 3), -EINVAL);
	TRY((e.has_value = false, memcpy(e.currency, "???", 3)), 0);
	TRY(e.url = ((struct alog_str){ "a\0b", 3 }), -EINVAL);
	TRY(e.title = ((struct alog_str){ "\xC3", 1 }), -EINVAL);
	TRY(e.title = ((struct alog_str){ "\xC0\xAF", 2 }), -EINVAL);
	TRY(e.title = ((struct alog_str){ "\xED\xA0\x80", 3 }), -EINVAL);
	TRY(e.title = ((struct alog_str){ "\xF4\x90\x80\x80", 4 }), -EINVAL);
	TRY(e.title = ((struct alog_str){ "\xF0\x9F\x98\x80", 4 }), 0);
	TRY(e.props = ((struct alog_str){ "{\"\xFF\"}", 5 }), -EINVAL);
	TRY(e.url = ((struct alog_str){ big, ALOG_EVENT_STRING_MAX }), 0);
	TRY(e.url = ((struct alog_str){ big, ALOG_EVENT_STRING_MAX + 1 }),
	    -EMSGSIZE);
	TRY(e.user_agent = ((struct alog_str){ big, ALOG_EVENT_UA_MAX }), 0);
	TRY(e.user_agent = ((struct alog_str){ big, ALOG_EVENT_UA_MAX + 1 }),
	    -EMSGSIZE);
	TRY(e.props = ((struct alog_str){ big, ALOG_EVENT_JSON_MAX }), 0);
	TRY(e.props = ((struct alog_str){ big, ALOG_EVENT_JSON_MAX + 1 }),
	    -EMSGSIZE);
	TRY(e.device_extra =
		    ((struct alog_str){ big, ALOG_EVENT_JSON_MAX + 1 }),
	    -EMSGSIZE);
	/* Every field within its limit, the record over 16 KiB. */
	TRY((e.props = ((struct alog_str){ big, ALOG_EVENT_JSON_MAX }),
	     e.device_extra = ((struct alog_str){ big, ALOG_EVENT_JSON_MAX })),
	    -EMSGSIZE);
#undef TRY
	fill_all(&e);
	CHECK_EQ(alog_event_encode(&e, buf, alog_event_encoded_bytes(&e) - 1,
				   &len),
		 -EMSGSIZE);
	free(big);
}

/* A record assembled by hand, to break in every way. */
struct rec {
	uint8_t b[ALOG_EVENT_BYTES_MAX + 64];
	size_t len;
};

static void rec_header(struct rec *r)
{
	memset(r->b, 0, ALOG_EVENT_HEADER_BYTES);
	r->b[0] = 0xA1;
	r->b[1] = 1;
	r->b[2] = 1;
	r->b[3] = 1;
	r->len = ALOG_EVENT_HEADER_BYTES;
}

static void rec_tlv(struct rec *r, unsigned tag, const void *v, size_t len)
{
	r->b[r->len] = (uint8_t)tag;
	alog_put_u16(r->b + r->len + 1, (uint16_t)len);
	memcpy(r->b + r->len + 3, v, len);
	r->len += 3 + len;
}

/* A valid record: site and name, then one more tag. */
static void rec_min(struct rec *r)
{
	rec_header(r);
	rec_tlv(r, 1, "s", 1);
	rec_tlv(r, 2, "n", 1);
}

static void test_codec_decode_refusals(void)
{
	static struct rec r;
	static const uint8_t four[4] = { 1, 2, 3, 4 };
	static const uint8_t value_bad[11] = { 0, 0, 0,   0,   0,  0,
					       0, 0, 'e', 'u', 'r' };
	static const uint8_t value_ok[11] = { 1, 0, 0,   0,   0,  0,
					      0, 0, 'E', 'U', 'R' };
	struct alog_event e;
	char *big = repeat('a', ALOG_EVENT_JSON_MAX + 1);

	rec_min(&r);
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), 0);
	CHECK(str_is(e.site, "s") && str_is(e.name, "n"));
	CHECK(memcmp(e.currency, "   ", 3) == 0);

	/* Header. */
	CHECK_EQ(alog_event_decode(r.b, 0, &e), -EBADMSG);
	CHECK_EQ(alog_event_decode(r.b, 1, &e), -EBADMSG);
	CHECK_EQ(alog_event_decode(r.b, 47, &e), -EBADMSG);
	r.b[0] = 0xA2;
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);
	rec_min(&r);
	r.b[1] = 2;
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EPROTONOSUPPORT);
	r.b[1] = 0;
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EPROTONOSUPPORT);
	rec_min(&r);
	r.b[2] = 0;
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);
	r.b[2] = 7;
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);
	rec_min(&r);
	r.b[3] = 4;
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);
	rec_min(&r);
	r.b[5] = 1; /* flag bit 8 */
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);
	rec_min(&r);
	r.b[46] = 'D';
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);
	r.b[47] = 'E';
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), 0);

	/* Required fields. */
	rec_header(&r);
	rec_tlv(&r, 1, "s", 1);
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);
	rec_header(&r);
	rec_tlv(&r, 2, "n", 1);
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);
	rec_header(&r);
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);

	/* Overruns: every cut of a record that is not at a field edge. */
	rec_min(&r);
	rec_tlv(&r, 3, "/url", 4);
	for (size_t cut = 48; cut < r.len; cut++) /* 56: site, name */
		CHECK_EQ(alog_event_decode(r.b, cut, &e),
			 cut == 56 ? 0 : -EBADMSG);
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), 0);
	alog_put_u16(r.b + 57, 5); /* url claims one byte more */
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);
	alog_put_u16(r.b + 57, 0xFFFF);
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);

	/* Order and repeats. */
	rec_min(&r);
	rec_tlv(&r, 2, "n", 1);
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);
	rec_header(&r);
	rec_tlv(&r, 2, "n", 1);
	rec_tlv(&r, 1, "s", 1);
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);
	rec_min(&r);
	rec_tlv(&r, 40, "?", 1);
	rec_tlv(&r, 3, "/", 1);
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);

	/* Unknown tags are skipped, in order, empty or not. */
	rec_header(&r);
	rec_tlv(&r, 0, "zero", 4);
	rec_tlv(&r, 1, "s", 1);
	rec_tlv(&r, 2, "n", 1);
	rec_tlv(&r, 32, "", 0);
	rec_tlv(&r, 200, "\xFF\xFF", 2);
	rec_tlv(&r, 255, "x", 1);
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), 0);
	CHECK(str_is(e.site, "s") && str_is(e.name, "n"));

	/* Known fields: empty, over the limit, not UTF-8. */
	rec_min(&r);
	rec_tlv(&r, 3, "", 0);
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);
	rec_min(&r);
	rec_tlv(&r, 7, big, ALOG_EVENT_UA_MAX);
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), 0);
	rec_min(&r);
	rec_tlv(&r, 7, big, ALOG_EVENT_UA_MAX + 1);
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);
	rec_min(&r);
	rec_tlv(&r, 3, big, ALOG_EVENT_STRING_MAX + 1);
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);
	rec_min(&r);
	rec_tlv(&r, 24, big, ALOG_EVENT_JSON_MAX + 1);
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);
	rec_min(&r);
	rec_tlv(&r, 9, "M\xFCnchen", 7);
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);
	rec_min(&r);
	rec_tlv(&r, 31, "{\0}", 3);
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);

	/* Fixed-size fields: wrong lengths, bad currency. */
	static const struct {
		unsigned tag;
		size_t good;
	} fixed[] = { { 21, 4 }, { 22, 4 }, { 23, 1 }, { 25, 11 }, { 28, 4 } };
	for (size_t i = 0; i < ALOG_ARRAY_LEN(fixed); i++) {
		const uint8_t *v = fixed[i].tag == 25 ? value_ok : four;

		rec_min(&r);
		rec_tlv(&r, fixed[i].tag, v, fixed[i].good);
		CHECK_EQ(alog_event_decode(r.b, r.len, &e), 0);
		rec_min(&r);
		rec_tlv(&r, fixed[i].tag, v, fixed[i].good - 1);
		CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);
		rec_min(&r);
		rec_tlv(&r, fixed[i].tag, big, fixed[i].good + 1);
		CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);
	}
	rec_min(&r);
	rec_tlv(&r, 21, four, 4);
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), 0);
	CHECK(e.has_screen && e.screen_w == 0x0201 && e.screen_h == 0x0403);
	rec_min(&r);
	rec_tlv(&r, 25, value_bad, 11);
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);

	/* Over the record limit, even with valid fields. */
	rec_min(&r);
	rec_tlv(&r, 24, big, ALOG_EVENT_JSON_MAX);
	rec_tlv(&r, 31, big, ALOG_EVENT_JSON_MAX);
	CHECK(r.len > ALOG_EVENT_BYTES_MAX);
	CHECK_EQ(alog_event_decode(r.b, r.len, &e), -EBADMSG);
	free(big);
}

static void test_utf8_prefix(void)
{
	const char *ua = "Mozilla \xE2\x82\xAC\xFFrest";

	CHECK_EQ(alog_event_utf8_prefix("abc", 3, 512), 3);
	CHECK_EQ(alog_event_utf8_prefix("abc", 3, 2), 2);
	CHECK_EQ(alog_event_utf8_prefix(ua, strlen(ua), 512), 11);
	CHECK_EQ(alog_event_utf8_prefix(ua, strlen(ua), 10), 8); /* no half € */
	CHECK_EQ(alog_event_utf8_prefix(ua, strlen(ua), 9), 8);
	CHECK_EQ(alog_event_utf8_prefix("a\0b", 3, 512), 1);
	CHECK_EQ(alog_event_utf8_prefix("\xE2\x82", 2, 512), 0);
	CHECK_EQ(alog_event_utf8_prefix("", 0, 512), 0);
}

/*
 * The per-thread arena behind jansson: results stay intact while another
 * body is parsed (the arena only restarts when none is alive), and a
 * body bigger than the arena falls back to malloc.
 */
static void test_json_arena(void)
{
	static const char a[] =
		"{\"n\":\"pageview\",\"u\":\"https://a.test/x\","
		"\"d\":\"a.test\",\"p\":{\"k\":\"v1\"}}";
	static const char b[] = "{\"n\":\"Signup\",\"u\":\"https://b.test/y\","
				"\"d\":\"b.test\",\"p\":{\"k\":\"v2\"}}";
	struct edge_parse_result ra, rb;
	struct edge_parse_error err;
	char *big;
	size_t n = 0;

	edge_json_use_arena();
	for (int round = 0; round < 1000; round++) {
		REQUIRE(edge_event_parse(EDGE_EP_PLAUSIBLE, a, strlen(a), NULL,
					 &ra, &err) == 0);
		REQUIRE(edge_event_parse(EDGE_EP_PLAUSIBLE, b, strlen(b), NULL,
					 &rb, &err) == 0);
		CHECK(ra.events[0].props.len == 10 &&
		      memcmp(ra.events[0].props.p, "{\"k\":\"v1\"}", 10) == 0);
		CHECK(rb.events[0].props.len == 10 &&
		      memcmp(rb.events[0].props.p, "{\"k\":\"v2\"}", 10) == 0);
		CHECK(ra.site_hint.len == 6 &&
		      !memcmp(ra.site_hint.p, "a.test", 6));
		edge_parse_result_free(&ra);
		edge_parse_result_free(&rb);
	}
	/* ~2 MiB of events: more than one arena block. */
	big = malloc(3u << 20);
	REQUIRE(big);
	n += (size_t)sprintf(big, "{\"siteId\":\"s\",\"events\":[");
	for (int i = 0; i < 20000; i++)
		n += (size_t)sprintf(big + n,
				     "%s{\"eventType\":\"e%d\",\"sessionId\":"
				     "\"session-%d\",\"metadata\":{\"i\":%d}}",
				     i ? "," : "", i, i, i);
	n += (size_t)sprintf(big + n, "]}");
	{
		struct edge_event_limits lim = { .batch_events_max = 20000 };

		REQUIRE(edge_event_parse(EDGE_EP_BATCH, big, n, &lim, &ra,
					 &err) == 0);
		CHECK_EQ(ra.n, 20000);
		CHECK(ra.events[19999].session_id.len == 13 &&
		      !memcmp(ra.events[19999].session_id.p, "session-19999",
			      13));
		edge_parse_result_free(&ra);
	}
	free(big);
}

int main(void)
{
	test_mappings();
	test_refusals();
	test_empty_results();
	test_batch_limits();
	test_depth();
	test_field_limits();
	test_reserve();
	test_codec_round_trip();
	test_codec_encode_refusals();
	test_codec_decode_refusals();
	test_utf8_prefix();
	test_json_arena(); /* last: installs the arena for the process */
	return t_summary("test_edge_event");
}
