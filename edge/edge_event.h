/*
 * edge_event.h - request bodies to events: the mapping and validation of
 * every ingest endpoint (alog's /track/*, Plausible's /api/event, Umami's
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

struct edge_event_limits {
	size_t batch_events_max; /* events in one batch/interaction body */
	size_t body_depth_max;   /* JSON nesting */
};

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
 * times, visitor, country/region/city and site are left zero for the
 * caller. Returns 0, or -EINVAL with *err filled (malformed JSON, missing
 * or wrongly typed field, over a limit), or -ENOMEM. On 0 the caller frees
 * with edge_parse_result_free(). Thread-safe.
 */
int edge_event_parse(enum edge_endpoint ep, const char *body, size_t len,
		     const struct edge_event_limits *lim,
		     struct edge_parse_result *out,
		     struct edge_parse_error *err);

void edge_parse_result_free(struct edge_parse_result *r);

#endif /* EDGE_EVENT_H */
