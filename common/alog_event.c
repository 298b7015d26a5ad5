/*
 * alog_event.c - the event record codec (docs/event-format.md, version 1).
 *
 * One table maps each tag to its field; encode walks it in tag order so
 * tags come out ascending, decode checks order, length and content of
 * every field before it exposes a byte of it. Records are small (16 KiB at
 * most), so both sides are a single pass without allocation.
 */
#include "alog_event.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "alog_common.h"

#define TLV_HEADER_BYTES 3 /* tag u8, length u16 */
#define TAG_MAX 31         /* highest tag this version knows */

enum field_type {
	FT_NONE, /* unknown tag: skipped */
	FT_STR,
	FT_JSON,
	FT_SCREEN,
	FT_VIEWPORT,
	FT_TOUCH,
	FT_VALUE,
	FT_STEP_ORDER,
};

struct field_spec {
	enum field_type type;
	size_t str_off; /* FT_STR, FT_JSON: offset of the struct alog_str */
	size_t max;     /* FT_STR, FT_JSON: byte limit */
};

/* Kept as written: clang-format spreads each initializer over four lines. */
/* clang-format off */
#define STR(member, lim) { FT_STR, offsetof(struct alog_event, member), lim }
#define JSON(member) \
	{ FT_JSON, offsetof(struct alog_event, member), ALOG_EVENT_JSON_MAX }
#define FIX(t) { t, 0, 0 }
/* clang-format on */

static const struct field_spec fields[TAG_MAX + 1] = {
	[1] = STR(site, ALOG_EVENT_STRING_MAX),
	[2] = STR(name, ALOG_EVENT_STRING_MAX),
	[3] = STR(url, ALOG_EVENT_STRING_MAX),
	[4] = STR(referrer, ALOG_EVENT_STRING_MAX),
	[5] = STR(session_id, ALOG_EVENT_STRING_MAX),
	[6] = STR(user_id, ALOG_EVENT_STRING_MAX),
	[7] = STR(user_agent, ALOG_EVENT_UA_MAX),
	[8] = STR(region, ALOG_EVENT_STRING_MAX),
	[9] = STR(city, ALOG_EVENT_STRING_MAX),
	[10] = STR(utm[ALOG_UTM_SOURCE], ALOG_EVENT_STRING_MAX),
	[11] = STR(utm[ALOG_UTM_MEDIUM], ALOG_EVENT_STRING_MAX),
	[12] = STR(utm[ALOG_UTM_CAMPAIGN], ALOG_EVENT_STRING_MAX),
	[13] = STR(utm[ALOG_UTM_CONTENT], ALOG_EVENT_STRING_MAX),
	[14] = STR(utm[ALOG_UTM_TERM], ALOG_EVENT_STRING_MAX),
	[15] = STR(content_id, ALOG_EVENT_STRING_MAX),
	[16] = STR(content_type, ALOG_EVENT_STRING_MAX),
	[17] = STR(title, ALOG_EVENT_STRING_MAX),
	[18] = STR(hostname, ALOG_EVENT_STRING_MAX),
	[19] = STR(language, ALOG_EVENT_STRING_MAX),
	[20] = STR(timezone, ALOG_EVENT_STRING_MAX),
	[21] = FIX(FT_SCREEN),
	[22] = FIX(FT_VIEWPORT),
	[23] = FIX(FT_TOUCH),
	[24] = JSON(props),
	[25] = FIX(FT_VALUE),
	[26] = STR(funnel_id, ALOG_EVENT_STRING_MAX),
	[27] = STR(step_id, ALOG_EVENT_STRING_MAX),
	[28] = FIX(FT_STEP_ORDER),
	[29] = STR(target_id, ALOG_EVENT_STRING_MAX),
	[30] = STR(target_type, ALOG_EVENT_STRING_MAX),
	[31] = JSON(device_extra),
};

#define TAG_SITE 1
#define TAG_NAME 2

_Static_assert(ALOG_EVENT_HEADER_BYTES == 48, "header is 48 bytes");
_Static_assert(ALOG_EVENT_BYTES_MAX <= UINT16_MAX + 1u,
	       "a record fits the log's limits");
_Static_assert(ALOG_EVENT_JSON_MAX <= UINT16_MAX, "TLV length is u16");

#define VALUE_BYTES 11 /* i64 micros + 3 bytes currency */

static size_t fixed_bytes(enum field_type t)
{
	switch (t) {
	case FT_SCREEN:
	case FT_VIEWPORT:
	case FT_STEP_ORDER:
		return 4;
	case FT_TOUCH:
		return 1;
	case FT_VALUE:
		return VALUE_BYTES;
	default:
		return 0;
	}
}

static struct alog_str *str_at(struct alog_event *e, size_t off)
{
	return (struct alog_str *)((char *)e + off);
}

static const struct alog_str *cstr_at(const struct alog_event *e, size_t off)
{
	return (const struct alog_str *)((const char *)e + off);
}

static bool fixed_present(const struct alog_event *e, enum field_type t)
{
	switch (t) {
	case FT_SCREEN:
		return e->has_screen;
	case FT_VIEWPORT:
		return e->has_viewport;
	case FT_TOUCH:
		return e->has_touch_points;
	case FT_VALUE:
		return e->has_value;
	case FT_STEP_ORDER:
		return e->has_step_order;
	default:
		return false;
	}
}

/*
 * Bytes of the longest valid UTF-8 prefix of p[0..len) without NUL
 * (RFC 3629: no overlong forms, no surrogates, nothing over U+10FFFF).
 */
static size_t utf8_valid_bytes(const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = p[i];
		size_t n;
		uint8_t lo = 0x80, hi = 0xBF; /* range of the 2nd byte */

		if (c >= 0x01 && c <= 0x7F) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			n = 2;
		} else if (c >= 0xE0 && c <= 0xEF) {
			n = 3;
			if (c == 0xE0)
				lo = 0xA0; /* overlong */
			else if (c == 0xED)
				hi = 0x9F; /* surrogates */
		} else if (c >= 0xF0 && c <= 0xF4) {
			n = 4;
			if (c == 0xF0)
				lo = 0x90; /* overlong */
			else if (c == 0xF4)
				hi = 0x8F; /* over U+10FFFF */
		} else {
			break; /* NUL, continuation byte, C0/C1, F5..FF */
		}
		if (len - i < n || p[i + 1] < lo || p[i + 1] > hi)
			break;
		for (size_t k = 2; k < n; k++)
			if (p[i + k] < 0x80 || p[i + k] > 0xBF)
				return i;
		i += n;
	}
	return i;
}

static bool utf8_valid(const char *p, size_t len)
{
	return utf8_valid_bytes((const uint8_t *)p, len) == len;
}

size_t alog_event_utf8_prefix(const char *p, size_t len, size_t max)
{
	size_t n = utf8_valid_bytes((const uint8_t *)p, len);

	if (n <= max)
		return n;
	/* Back up to the start of a character at or before max. */
	n = max;
	while (n > 0 && ((uint8_t)p[n] & 0xC0) == 0x80)
		n--;
	return n;
}

static bool country_valid(const char c[2])
{
	if (c[0] == 0 && c[1] == 0)
		return true;
	return c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z';
}

static bool currency_valid(const char c[3])
{
	bool letters = true, spaces = true;

	for (int i = 0; i < 3; i++) {
		letters = letters && c[i] >= 'A' && c[i] <= 'Z';
		spaces = spaces && c[i] == ' ';
	}
	return letters || spaces;
}

static bool kind_valid(unsigned k)
{
	return k >= ALOG_KIND_PAGEVIEW && k <= ALOG_KIND_INTERACTION;
}

static bool source_valid(unsigned s)
{
	return s >= ALOG_SOURCE_TRACK && s <= ALOG_SOURCE_UMAMI;
}

#define FLAGS_KNOWN \
	(ALOG_EVENT_F_BOT | ALOG_EVENT_F_DNT | ALOG_EVENT_F_NONINTERACTIVE)

size_t alog_event_encoded_bytes(const struct alog_event *e)
{
	size_t n = ALOG_EVENT_HEADER_BYTES;

	for (unsigned tag = 1; tag <= TAG_MAX; tag++) {
		const struct field_spec *f = &fields[tag];

		if (f->type == FT_STR || f->type == FT_JSON) {
			size_t len = cstr_at(e, f->str_off)->len;

			if (len > 0)
				n += TLV_HEADER_BYTES + len;
		} else if (fixed_present(e, f->type)) {
			n += TLV_HEADER_BYTES + fixed_bytes(f->type);
		}
	}
	return n;
}

int alog_event_encode(const struct alog_event *e, uint8_t *out, size_t cap,
		      size_t *len)
{
	size_t need = ALOG_EVENT_HEADER_BYTES, pos;

	if (!kind_valid(e->kind) || !source_valid(e->source) ||
	    (e->flags & ~FLAGS_KNOWN) || e->site.len == 0 || e->name.len == 0 ||
	    !country_valid(e->country))
		return -EINVAL;
	if (e->has_value && !currency_valid(e->currency))
		return -EINVAL;
	/* Check every field before writing a byte. */
	for (unsigned tag = 1; tag <= TAG_MAX; tag++) {
		const struct field_spec *f = &fields[tag];
		const struct alog_str *s;

		if (f->type != FT_STR && f->type != FT_JSON) {
			if (fixed_present(e, f->type))
				need += TLV_HEADER_BYTES + fixed_bytes(f->type);
			continue;
		}
		s = cstr_at(e, f->str_off);
		if (s->len == 0)
			continue;
		if (s->len > f->max)
			return -EMSGSIZE;
		if (!s->p || !utf8_valid(s->p, s->len))
			return -EINVAL;
		need += TLV_HEADER_BYTES + s->len;
	}
	if (need > ALOG_EVENT_BYTES_MAX || need > cap)
		return -EMSGSIZE;

	out[0] = ALOG_EVENT_MAGIC;
	out[1] = ALOG_EVENT_VERSION;
	out[2] = e->kind;
	out[3] = e->source;
	alog_put_u16(out + 4, e->flags);
	memcpy(out + 6, e->id, 16);
	alog_put_u64(out + 22, e->received_ms);
	alog_put_u64(out + 30, e->client_ms);
	alog_put_u64(out + 38, e->visitor);
	memcpy(out + 46, e->country, 2);
	pos = ALOG_EVENT_HEADER_BYTES;

	for (unsigned tag = 1; tag <= TAG_MAX; tag++) {
		const struct field_spec *f = &fields[tag];
		const struct alog_str *s;
		uint8_t *v = out + pos + TLV_HEADER_BYTES;
		size_t vlen;

		if (f->type == FT_STR || f->type == FT_JSON) {
			s = cstr_at(e, f->str_off);
			if (s->len == 0)
				continue;
			vlen = s->len;
			memcpy(v, s->p, vlen);
		} else {
			if (!fixed_present(e, f->type))
				continue;
			vlen = fixed_bytes(f->type);
			switch (f->type) {
			case FT_SCREEN:
				alog_put_u16(v, e->screen_w);
				alog_put_u16(v + 2, e->screen_h);
				break;
			case FT_VIEWPORT:
				alog_put_u16(v, e->viewport_w);
				alog_put_u16(v + 2, e->viewport_h);
				break;
			case FT_TOUCH:
				v[0] = e->touch_points;
				break;
			case FT_VALUE:
				alog_put_u64(v, (uint64_t)e->value_micros);
				memcpy(v + 8, e->currency, 3);
				break;
			case FT_STEP_ORDER:
				alog_put_u32(v, e->step_order);
				break;
			default:
				assert(0);
			}
		}
		out[pos] = (uint8_t)tag;
		alog_put_u16(out + pos + 1, (uint16_t)vlen);
		pos += TLV_HEADER_BYTES + vlen;
	}
	assert(pos == need);
	*len = pos;
	return 0;
}

static int decode_fixed(struct alog_event *e, enum field_type t,
			const uint8_t *v, size_t vlen)
{
	if (vlen != fixed_bytes(t))
		return -EBADMSG;
	switch (t) {
	case FT_SCREEN:
		e->has_screen = true;
		e->screen_w = alog_get_u16(v);
		e->screen_h = alog_get_u16(v + 2);
		break;
	case FT_VIEWPORT:
		e->has_viewport = true;
		e->viewport_w = alog_get_u16(v);
		e->viewport_h = alog_get_u16(v + 2);
		break;
	case FT_TOUCH:
		e->has_touch_points = true;
		e->touch_points = v[0];
		break;
	case FT_VALUE:
		memcpy(e->currency, v + 8, 3);
		if (!currency_valid(e->currency))
			return -EBADMSG;
		e->has_value = true;
		e->value_micros = (int64_t)alog_get_u64(v);
		break;
	case FT_STEP_ORDER:
		e->has_step_order = true;
		e->step_order = alog_get_u32(v);
		break;
	default:
		return -EBADMSG;
	}
	return 0;
}

int alog_event_decode(const uint8_t *buf, size_t len, struct alog_event *e)
{
	size_t pos = ALOG_EVENT_HEADER_BYTES;
	int last_tag = -1;
	int rc;

	memset(e, 0, sizeof(*e));
	memset(e->currency, ' ', sizeof(e->currency));
	if (len < 2 || buf[0] != ALOG_EVENT_MAGIC)
		return -EBADMSG;
	if (buf[1] != ALOG_EVENT_VERSION)
		return -EPROTONOSUPPORT;
	if (len < ALOG_EVENT_HEADER_BYTES || len > ALOG_EVENT_BYTES_MAX)
		return -EBADMSG;
	e->kind = buf[2];
	e->source = buf[3];
	e->flags = alog_get_u16(buf + 4);
	if (!kind_valid(e->kind) || !source_valid(e->source) ||
	    (e->flags & ~FLAGS_KNOWN))
		return -EBADMSG;
	memcpy(e->id, buf + 6, 16);
	e->received_ms = alog_get_u64(buf + 22);
	e->client_ms = alog_get_u64(buf + 30);
	e->visitor = alog_get_u64(buf + 38);
	memcpy(e->country, buf + 46, 2);
	if (!country_valid(e->country))
		return -EBADMSG;

	while (pos < len) {
		unsigned tag;
		size_t vlen;
		const uint8_t *v;
		const struct field_spec *f;

		if (len - pos < TLV_HEADER_BYTES)
			return -EBADMSG;
		tag = buf[pos];
		vlen = alog_get_u16(buf + pos + 1);
		pos += TLV_HEADER_BYTES;
		if (vlen > len - pos)
			return -EBADMSG;
		/* Strictly ascending, which also refuses repeats. */
		if ((int)tag <= last_tag)
			return -EBADMSG;
		last_tag = (int)tag;
		v = buf + pos;
		pos += vlen;
		f = tag <= TAG_MAX ? &fields[tag] : NULL;
		if (!f || f->type == FT_NONE)
			continue;
		if (f->type == FT_STR || f->type == FT_JSON) {
			struct alog_str *s = str_at(e, f->str_off);

			if (vlen == 0 || vlen > f->max ||
			    !utf8_valid((const char *)v, vlen))
				return -EBADMSG;
			s->p = (const char *)v;
			s->len = vlen;
			continue;
		}
		rc = decode_fixed(e, f->type, v, vlen);
		if (rc < 0)
			return rc;
	}
	if (e->site.len == 0 || e->name.len == 0)
		return -EBADMSG;
	return 0;
}

const char *alog_event_kind_name(unsigned kind)
{
	static const char *const names[] = {
		[ALOG_KIND_PAGEVIEW] = "pageview",
		[ALOG_KIND_EVENT] = "event",
		[ALOG_KIND_CONVERSION] = "conversion",
		[ALOG_KIND_FUNNEL] = "funnel",
		[ALOG_KIND_ENGAGEMENT] = "engagement",
		[ALOG_KIND_INTERACTION] = "interaction",
	};

	return kind_valid(kind) ? names[kind] : "unknown";
}
