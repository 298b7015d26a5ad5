/*
 * fuzz_event_decode.c - libFuzzer target for the event record decoder and
 * the edge's body parser. The input is decoded as a record: a record that
 * decodes must encode again, to the same bytes unless it held unknown tags
 * (the format has one encoding, and re-encoding drops what it does not
 * know). The same bytes are then parsed as every endpoint's body: nothing may
 * crash or leak, and every event that parses must encode and decode (the
 * parser's limits leave room for what the HTTP layer adds).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alog_event.h"
#include "edge_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t buf[ALOG_EVENT_BYTES_MAX];

static void check_record(const uint8_t *data, size_t size)
{
	struct alog_event e;
	size_t len;
	int rc = alog_event_decode(data, size, &e);

	if (rc != 0) {
		if (rc != -EBADMSG && rc != -EPROTONOSUPPORT)
			abort();
		return;
	}
	/* Unknown tags are dropped on re-encoding; otherwise identical. */
	if (alog_event_encode(&e, buf, sizeof(buf), &len) != 0)
		abort();
	if (len > size || alog_event_encoded_bytes(&e) != len)
		abort();
	if (len == size && memcmp(buf, data, size) != 0)
		abort();
}

static void check_body(enum edge_endpoint ep, const uint8_t *data, size_t size)
{
	static const struct edge_event_limits lim = { 16, 16 };
	struct edge_parse_result r;
	struct edge_parse_error err;
	int rc = edge_event_parse(ep, (const char *)data, size, &lim, &r, &err);

	if (rc != 0) {
		if ((rc != -EINVAL && rc != -E2BIG && rc != -ENOMEM) ||
		    !memchr(err.field, 0, sizeof(err.field)) ||
		    !memchr(err.message, 0, sizeof(err.message)) || r.priv ||
		    r.events || r.n)
			abort();
		return;
	}
	for (size_t i = 0; i < r.n; i++) {
		struct alog_event e = r.events[i], d;
		size_t len;

		e.site.p = "site";
		e.site.len = 4;
		if (alog_event_encode(&e, buf, sizeof(buf), &len) != 0 ||
		    alog_event_decode(buf, len, &d) != 0)
			abort();
	}
	edge_parse_result_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_record(data, size);
	for (int ep = EDGE_EP_VIEW; ep <= EDGE_EP_UMAMI; ep++)
		check_body((enum edge_endpoint)ep, data, size);
	return 0;
}
