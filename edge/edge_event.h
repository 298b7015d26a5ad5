/*
 * edge_event.h - request bodies to events: the mapping and validation of
 * every ingest endpoint (alog's /track/..., Plausible's /api/event, Umami's
 * /api/send). Pure: no I/O, no clock, no privacy; the HTTP layer resolves
 * the site, then fills id, times, visitor hash and geo before encoding.
 */
#ifndef EDGE_EVENT_H
#define EDGE_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "alog_event.h"

enum edge_endpoint {
	EDGE_EP_VIEW,        /* POST /track/view */
	EDGE_EP_EVENT,       /* POST /track/event */
	EDGE_EP_BATCH,       /* POST /track/batch {events:[event...]} */
	EDGE_EP_CONVERSION,  /* POST /track/conversion */
	EDGE_EP_FUNNEL,      /* POST /track/funnel */
	EDGE_EP_ENGAGEMENT,  /* POST /track/engagement */
	EDGE_EP_INTERACTION, /* POST /track/interaction {events:[...]} */
	EDGE_EP_PLAUSIBLE,   /* POST /api/event */
	EDGE_EP_UMAMI,       /* POST /api/send */
};

/* 0 in a field (or a NULL limits pointer) takes the default. */
struct edge_event_limits {
	size_t batch_events_max; /* events in one batch/interaction body
				  * (default 1000) */
	size_t body_depth_max;   /* JSON nesting, the body's object being
				  * level 1 (default 32) */
};

/*
 * Bytes of a record kept free for what the caller adds after parsing
 * (site id, user agent cut to ALOG_EVENT_UA_MAX, region, city): the
 * fields a body gives must encode within ALOG_EVENT_BYTES_MAX minus this,
 * so an event that parsed always encodes when the added strings together
 * stay under it (site <= 64, user agent <= 512, region + city <= 430).
 */
#define EDGE_EVENT_RESERVE_BYTES 1024

/* Why a body was refused: the 400 answer names the field. */
struct edge_parse_error {
	char field[64];    /* e.g. "events[3].sessionId", "" if none */
	char message[160]; /* e.g. "must be a string" */
};

struct edge_parse_result {
	size_t n;                  /* events parsed */
	struct alog_event *events; /* n events; strings borrowed from the
				    * result (valid until _free) */
	/*
	 * The site as the body names it, for the HTTP layer to resolve:
	 * Plausible's `domain` (may list several, comma-separated: the
	 * layer then repeats each event per site), Umami's
	 * `payload.website`, or `siteId` in alog's bodies. Empty if none.
	 */
	struct alog_str site_hint;
	void *priv; /* owned parse state (the JSON tree, dumped strings) */
};

/*
 * Parse and validate body (len bytes, not NUL-terminated) for endpoint ep.
 * Each event gets kind, source, name and every field from the body; id,
 * times, visitor, country/region/city, user agent and site are left zero
 * for the caller (client_ms is the body's timestamp, 0 if none). Optional
 * members that are null, empty strings or empty objects count as absent;
 * unknown members are ignored. Batch and interaction bodies are all or
 * nothing. A Umami "identify" body gives n = 0 (answer 200, store nothing);
 * so may an empty events array.
 *
 * Returns 0, or a negative errno with *err filled (field in the client's
 * names, e.g. "events[3].eventType", "payload.website"):
 *   -EINVAL  malformed JSON, duplicate key, nesting over body_depth_max,
 *            missing or wrongly typed field, a field or the event over a
 *            limit;
 *   -E2BIG   more than batch_events_max events (field "events"): the HTTP
 *            layer answers 413 rather than 400;
 *   -ENOMEM.
 * On 0 the caller frees with edge_parse_result_free(); on error there is
 * nothing to free. Thread-safe (no shared state).
 */
int edge_event_parse(enum edge_endpoint ep, const char *body, size_t len,
		     const struct edge_event_limits *lim,
		     struct edge_parse_result *out,
		     struct edge_parse_error *err);

/* Free what a successful parse holds; accepts NULL and a zeroed result. */
void edge_parse_result_free(struct edge_parse_result *r);

/*
 * Route jansson's allocations through per-thread arenas (one 1 MiB block
 * per parsing thread, reset between bodies; other threads and what does
 * not fit use malloc). Call once at startup, before threads parse. The
 * JSON tree of a parse result must be freed on the thread that parsed it.
 */
void edge_json_use_arena(void);

#endif /* EDGE_EVENT_H */
