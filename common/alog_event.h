/*
 * alog_event.h - the event record: encode at the edge, decode in the writer.
 *
 * The byte layout is docs/event-format.md, version 1. struct alog_event is
 * a view: its strings point into the caller's memory (encode) or into the
 * decoded buffer (decode); nothing here allocates.
 */
#ifndef ALOG_EVENT_H
#define ALOG_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ALOG_EVENT_MAGIC 0xA1
#define ALOG_EVENT_VERSION 1
#define ALOG_EVENT_HEADER_BYTES 48
#define ALOG_EVENT_BYTES_MAX (16u * 1024)
#define ALOG_EVENT_STRING_MAX 2048
#define ALOG_EVENT_UA_MAX 512
#define ALOG_EVENT_JSON_MAX (8u * 1024)

enum alog_event_kind {
	ALOG_KIND_PAGEVIEW = 1,
	ALOG_KIND_EVENT = 2,
	ALOG_KIND_CONVERSION = 3,
	ALOG_KIND_FUNNEL = 4,
	ALOG_KIND_ENGAGEMENT = 5,
	ALOG_KIND_INTERACTION = 6,
};

enum alog_event_source {
	ALOG_SOURCE_TRACK = 1,
	ALOG_SOURCE_PLAUSIBLE = 2,
	ALOG_SOURCE_UMAMI = 3,
};

#define ALOG_EVENT_F_BOT 0x0001
#define ALOG_EVENT_F_DNT 0x0002
#define ALOG_EVENT_F_NONINTERACTIVE 0x0004

/* A borrowed string: len 0 means the field is absent (p may be NULL). */
struct alog_str {
	const char *p;
	size_t len;
};

/* Indexes into alog_event.utm[]. */
enum {
	ALOG_UTM_SOURCE,
	ALOG_UTM_MEDIUM,
	ALOG_UTM_CAMPAIGN,
	ALOG_UTM_CONTENT,
	ALOG_UTM_TERM,
	ALOG_UTM_COUNT
};

struct alog_event {
	uint8_t kind;   /* enum alog_event_kind */
	uint8_t source; /* enum alog_event_source */
	uint16_t flags; /* ALOG_EVENT_F_* */
	uint8_t id[16]; /* UUIDv7 */
	uint64_t received_ms;
	uint64_t client_ms; /* 0: none */
	uint64_t visitor;
	char country[2]; /* zeros: unknown */

	struct alog_str site, name, url, referrer, session_id, user_id,
		user_agent, region, city, utm[ALOG_UTM_COUNT], content_id,
		content_type, title, hostname, language, timezone, props,
		funnel_id, step_id, target_id, target_type, device_extra;

	bool has_screen, has_viewport, has_touch_points, has_value,
		has_step_order;
	uint16_t screen_w, screen_h, viewport_w, viewport_h;
	uint8_t touch_points;
	int64_t value_micros; /* amount x 1,000,000 */
	char currency[3];     /* ISO 4217, or spaces */
	uint32_t step_order;
};

/*
 * Bytes alog_event_encode() would write for e (header plus every present
 * field), without checking any limit: lets the edge refuse an event that
 * cannot fit before it is queued. Pure; thread-safe.
 */
size_t alog_event_encoded_bytes(const struct alog_event *e);

/*
 * Encode e into out (cap bytes). A string or JSON field is present when
 * its len is non-zero, and must be valid UTF-8 without NUL bytes. Returns 0
 * and sets *len, -EMSGSIZE when a field or the record is over its limit
 * (docs/event-format.md; the caller cuts the user agent with
 * alog_event_utf8_prefix() first) or cap is too small, -EINVAL when a
 * required field (site, name) is missing or a value is out of range: kind,
 * source, unknown flag bits, a string that is not UTF-8 or holds NUL,
 * country not two zero bytes or two letters A-Z, currency not three
 * letters A-Z or three spaces. Pure; thread-safe.
 */
int alog_event_encode(const struct alog_event *e, uint8_t *out, size_t cap,
		      size_t *len);

/*
 * Decode a record. On 0, e's strings point into buf (borrowed for as long
 * as buf lives). Returns -EBADMSG for a malformed record: bad magic, record
 * shorter than the header or over ALOG_EVENT_BYTES_MAX, unknown kind or
 * source or flag bit, field overrun, repeated or unordered tag, a known
 * field over its limit, empty, not UTF-8 or holding NUL, a fixed-size
 * field of the wrong length or with a bad country/currency code, or no
 * site or name. -EPROTONOSUPPORT for another version. Unknown tags are
 * skipped. Pure; thread-safe.
 */
int alog_event_decode(const uint8_t *buf, size_t len, struct alog_event *e);

/*
 * Length of the longest prefix of p[0..len) that is at most max bytes,
 * valid UTF-8 and free of NUL: how the edge cuts the user agent (an HTTP
 * header, which may hold any byte) to ALOG_EVENT_UA_MAX. Pure.
 */
size_t alog_event_utf8_prefix(const char *p, size_t len, size_t max);

/* Name of a kind ("pageview", "event", ...), or "unknown". */
const char *alog_event_kind_name(unsigned kind);

#endif /* ALOG_EVENT_H */
