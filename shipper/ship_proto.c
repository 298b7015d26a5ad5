/*
 * ship_proto.c - encode and decode the ship protocol's frames, exactly as
 * docs/ship-protocol.md lays them out, through the little-endian helpers.
 * Pure functions: the sender and receiver do the I/O, the fuzzer calls
 * these directly.
 */
#include <errno.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>
#include <zstd.h>

#include "alog_common.h"
#include "ship_proto.h"

static const uint8_t ship_magic[4] = { 'A', 'S', 'F', '1' };

_Static_assert(SHIP_FRAME_HEADER_BYTES == 24, "frame header is 24 bytes");
_Static_assert(SHIP_RAW_BYTES_MAX <= SHIP_FRAME_BYTES_HARD_MAX,
	       "a raw block fits a frame");

static int fail(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return -EPROTO;
}

static uint64_t frame_sum(const uint8_t *hdr, const uint8_t *body,
			  uint32_t body_len)
{
	XXH3_state_t st;

	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, hdr, 16);
	XXH3_64bits_update(&st, body, body_len);
	return XXH3_64bits_digest(&st);
}

enum ship_parse ship_frame_parse(const uint8_t *buf, size_t len,
				 uint32_t body_max, struct ship_frame *f,
				 size_t *consumed, const char **why)
{
	uint32_t n;
	size_t have = len < 4 ? len : 4;

	*consumed = 0;
	/* Refuse a bad magic as early as its first byte. */
	if (memcmp(buf, ship_magic, have) != 0) {
		*why = "bad frame magic";
		return SHIP_PARSE_INVALID;
	}
	if (len < SHIP_FRAME_HEADER_BYTES)
		return SHIP_PARSE_INCOMPLETE;
	if (buf[5] != 0 || alog_get_u16(buf + 6) != 0 ||
	    alog_get_u32(buf + 12) != 0) {
		*why = "nonzero frame flags or reserved bytes";
		return SHIP_PARSE_INVALID;
	}
	if (buf[4] < SHIP_HELLO || buf[4] > SHIP_ERROR) {
		*why = "unknown frame type";
		return SHIP_PARSE_INVALID;
	}
	n = alog_get_u32(buf + 8);
	if (n > body_max || n > SHIP_FRAME_BYTES_HARD_MAX) {
		*why = "frame larger than the limit";
		return SHIP_PARSE_INVALID;
	}
	if (len - SHIP_FRAME_HEADER_BYTES < n)
		return SHIP_PARSE_INCOMPLETE;
	if (alog_get_u64(buf + 16) !=
	    frame_sum(buf, buf + SHIP_FRAME_HEADER_BYTES, n)) {
		*why = "frame checksum mismatch";
		return SHIP_PARSE_INVALID;
	}
	f->type = buf[4];
	f->body_len = n;
	f->body = buf + SHIP_FRAME_HEADER_BYTES;
	*consumed = SHIP_FRAME_HEADER_BYTES + (size_t)n;
	return SHIP_PARSE_OK;
}

size_t ship_frame_seal(uint8_t *frame, uint8_t type, uint32_t body_len)
{
	memcpy(frame, ship_magic, 4);
	frame[4] = type;
	frame[5] = 0;
	alog_put_u16(frame + 6, 0);
	alog_put_u32(frame + 8, body_len);
	alog_put_u32(frame + 12, 0);
	alog_put_u64(frame + 16,
		     frame_sum(frame, frame + SHIP_FRAME_HEADER_BYTES,
			       body_len));
	return SHIP_FRAME_HEADER_BYTES + (size_t)body_len;
}

bool ship_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > SHIP_NAME_MAX || name[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		      ch == '-'))
			return false;
	}
	return true;
}

size_t ship_hello_encode(uint8_t *body, size_t cap, const struct ship_hello *h)
{
	size_t k = strlen(h->name);

	if (!ship_name_ok(h->name, k) || cap < SHIP_HELLO_FIXED_BYTES + k)
		return 0;
	alog_put_u16(body, h->version_min);
	alog_put_u16(body + 2, h->version_max);
	alog_put_u32(body + 4, h->frame_bytes_max);
	memcpy(body + 8, h->identity, 16);
	alog_put_u64(body + 24, h->start_offset);
	alog_put_u64(body + 32, h->head_offset);
	alog_put_u16(body + 40, (uint16_t)k);
	alog_put_u16(body + 42, 0);
	memcpy(body + SHIP_HELLO_FIXED_BYTES, h->name, k);
	return SHIP_HELLO_FIXED_BYTES + k;
}

int ship_hello_decode(const uint8_t *body, size_t len, struct ship_hello *h,
		      const char **why)
{
	uint16_t k;

	if (len < SHIP_HELLO_FIXED_BYTES)
		return fail(why, "HELLO too short");
	k = alog_get_u16(body + 40);
	if (len != SHIP_HELLO_FIXED_BYTES + (size_t)k)
		return fail(why, "HELLO length does not match its name");
	if (alog_get_u16(body + 42) != 0)
		return fail(why, "HELLO reserved bytes not zero");
	if (!ship_name_ok((const char *)body + SHIP_HELLO_FIXED_BYTES, k))
		return fail(why, "HELLO edge name invalid");
	h->version_min = alog_get_u16(body);
	h->version_max = alog_get_u16(body + 2);
	if (h->version_min == 0 || h->version_min > h->version_max)
		return fail(why, "HELLO version range invalid");
	h->frame_bytes_max = alog_get_u32(body + 4);
	if (h->frame_bytes_max < SHIP_FRAME_BYTES_MIN)
		return fail(why, "HELLO frame limit too small");
	memcpy(h->identity, body + 8, 16);
	h->start_offset = alog_get_u64(body + 24);
	h->head_offset = alog_get_u64(body + 32);
	if (h->head_offset < h->start_offset)
		return fail(why, "HELLO head below start");
	memcpy(h->name, body + SHIP_HELLO_FIXED_BYTES, k);
	h->name[k] = '\0';
	return 0;
}

size_t ship_welcome_encode(uint8_t *body, size_t cap,
			   const struct ship_welcome *w)
{
	if (cap < SHIP_WELCOME_BYTES)
		return 0;
	alog_put_u16(body, w->version);
	alog_put_u16(body + 2, w->has_log ? 1 : 0);
	alog_put_u32(body + 4, w->window_bytes);
	alog_put_u32(body + 8, w->frame_bytes_max);
	alog_put_u32(body + 12, w->records_max);
	alog_put_u64(body + 16, w->has_log ? w->next_offset : 0);
	alog_put_u32(body + 24, w->heartbeat_ms);
	alog_put_u32(body + 28, 0);
	return SHIP_WELCOME_BYTES;
}

int ship_welcome_decode(const uint8_t *body, size_t len, struct ship_welcome *w,
			const char **why)
{
	uint16_t flags;

	if (len != SHIP_WELCOME_BYTES)
		return fail(why, "WELCOME has the wrong length");
	flags = alog_get_u16(body + 2);
	if ((flags & ~1u) != 0 || alog_get_u32(body + 28) != 0)
		return fail(why, "WELCOME unknown flags or reserved bytes");
	w->version = alog_get_u16(body);
	w->has_log = flags & 1;
	w->window_bytes = alog_get_u32(body + 4);
	w->frame_bytes_max = alog_get_u32(body + 8);
	w->records_max = alog_get_u32(body + 12);
	w->next_offset = alog_get_u64(body + 16);
	w->heartbeat_ms = alog_get_u32(body + 24);
	if (w->version < SHIP_VERSION_MIN || w->version > SHIP_VERSION_MAX)
		return fail(why, "WELCOME chose a version not offered");
	if (w->frame_bytes_max < SHIP_FRAME_BYTES_MIN ||
	    w->window_bytes < SHIP_FRAME_BYTES_MIN)
		return fail(why, "WELCOME frame limit or window too small");
	if (w->records_max == 0 || w->records_max > SHIP_RECORDS_HARD_MAX)
		return fail(why, "WELCOME records per frame out of range");
	if (w->heartbeat_ms == 0 || w->heartbeat_ms > 3600 * 1000)
		return fail(why, "WELCOME heartbeat out of range");
	if (!w->has_log && w->next_offset != 0)
		return fail(why, "WELCOME offset without a log");
	return 0;
}

static size_t two_u64_encode(uint8_t *body, size_t cap, uint64_t a, uint64_t b)
{
	if (cap < 16)
		return 0;
	alog_put_u64(body, a);
	alog_put_u64(body + 8, b);
	return 16;
}

size_t ship_ack_encode(uint8_t *body, size_t cap, uint64_t next_offset,
		       uint64_t time_ms)
{
	return two_u64_encode(body, cap, next_offset, time_ms);
}

size_t ship_heartbeat_encode(uint8_t *body, size_t cap, uint64_t offset,
			     uint64_t time_ms)
{
	return two_u64_encode(body, cap, offset, time_ms);
}

int ship_ack_decode(const uint8_t *body, size_t len, uint64_t *next_offset,
		    uint64_t *time_ms, const char **why)
{
	if (len != SHIP_ACK_BYTES)
		return fail(why, "ACK has the wrong length");
	*next_offset = alog_get_u64(body);
	*time_ms = alog_get_u64(body + 8);
	return 0;
}

int ship_heartbeat_decode(const uint8_t *body, size_t len, uint64_t *offset,
			  uint64_t *time_ms, const char **why)
{
	if (len != SHIP_HEARTBEAT_BYTES)
		return fail(why, "HEARTBEAT has the wrong length");
	*offset = alog_get_u64(body);
	*time_ms = alog_get_u64(body + 8);
	return 0;
}

size_t ship_error_encode(uint8_t *body, size_t cap, uint16_t code,
			 const char *reason)
{
	size_t m = reason ? strlen(reason) : 0;

	if (m > SHIP_REASON_MAX)
		m = SHIP_REASON_MAX;
	if (cap < 4 + m)
		return 0;
	alog_put_u16(body, code);
	alog_put_u16(body + 2, (uint16_t)m);
	if (m)
		memcpy(body + 4, reason, m);
	return 4 + m;
}

int ship_error_decode(const uint8_t *body, size_t len, struct ship_error *e,
		      const char **why)
{
	uint16_t m;

	if (len < 4)
		return fail(why, "ERROR too short");
	m = alog_get_u16(body + 2);
	if (m > SHIP_REASON_MAX || len != 4 + (size_t)m)
		return fail(why, "ERROR reason length invalid");
	e->code = alog_get_u16(body);
	/* The reason goes to our log: keep it printable. */
	for (uint16_t i = 0; i < m; i++) {
		uint8_t ch = body[4 + i];

		e->reason[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	e->reason[m] = '\0';
	return 0;
}

void ship_data_header_encode(uint8_t *body, uint64_t first_offset,
			     uint32_t count, uint32_t raw_len, uint8_t codec)
{
	alog_put_u64(body, first_offset);
	alog_put_u32(body + 8, count);
	alog_put_u32(body + 12, raw_len);
	memset(body + 16, 0, 8);
	body[16] = codec;
}

int ship_data_decode(const uint8_t *body, size_t len, uint32_t records_max,
		     uint32_t raw_max, struct ship_data *d, const char **why)
{
	if (len < SHIP_DATA_HEADER_BYTES)
		return fail(why, "DATA too short");
	for (int i = 17; i < 24; i++)
		if (body[i] != 0)
			return fail(why, "DATA reserved bytes not zero");
	d->first_offset = alog_get_u64(body);
	d->count = alog_get_u32(body + 8);
	d->raw_len = alog_get_u32(body + 12);
	d->codec = body[16];
	d->packed = body + SHIP_DATA_HEADER_BYTES;
	d->packed_len = (uint32_t)(len - SHIP_DATA_HEADER_BYTES);
	if (d->count == 0 || d->count > records_max ||
	    d->count > SHIP_RECORDS_HARD_MAX)
		return fail(why, "DATA record count out of range");
	if (d->raw_len > raw_max || d->raw_len > SHIP_RAW_BYTES_MAX)
		return fail(why, "DATA raw block larger than the limit");
	if ((uint64_t)d->count * (SHIP_RECORD_HEADER_BYTES + 1) > d->raw_len)
		return fail(why, "DATA raw block too small for its records");
	if (d->first_offset > UINT64_MAX - 1 - d->count)
		return fail(why, "DATA offsets overflow");
	if (d->codec != SHIP_CODEC_NONE && d->codec != SHIP_CODEC_ZSTD)
		return fail(why, "DATA unknown codec");
	if (d->codec == SHIP_CODEC_NONE && d->packed_len != d->raw_len)
		return fail(why, "DATA uncompressed length mismatch");
	return 0;
}

int ship_data_unpack(const struct ship_data *d, void *dctx, uint8_t *out,
		     size_t cap, uint32_t record_max, const char **why)
{
	if (cap < d->raw_len)
		return fail(why, "DATA raw block larger than the buffer");
	if (d->codec == SHIP_CODEC_NONE) {
		memcpy(out, d->packed, d->raw_len);
	} else {
		unsigned long long fsz;
		size_t n;

		if (!dctx)
			return fail(why, "DATA compressed, no context");
		/* A frame that declares its size must declare ours. */
		fsz = ZSTD_getFrameContentSize(d->packed, d->packed_len);
		if (fsz == ZSTD_CONTENTSIZE_ERROR)
			return fail(why, "DATA zstd frame invalid");
		if (fsz != ZSTD_CONTENTSIZE_UNKNOWN && fsz != d->raw_len)
			return fail(why, "DATA zstd size mismatch");
		/* Decompress into exactly raw_len bytes: a stream that
		 * would produce more fails with dstSize_tooSmall. */
		n = ZSTD_decompressDCtx(dctx, out, d->raw_len, d->packed,
					d->packed_len);
		if (ZSTD_isError(n))
			return fail(why, "DATA zstd decompression failed");
		if (n != d->raw_len)
			return fail(why, "DATA zstd size mismatch");
	}
	return ship_block_check(out, d->raw_len, d->first_offset, d->count,
				record_max, why);
}

int ship_block_check(const uint8_t *block, size_t len, uint64_t first_offset,
		     uint32_t count, uint32_t record_max, const char **why)
{
	size_t pos = 0;

	for (uint32_t i = 0; i < count; i++) {
		uint32_t n;

		if (len - pos < SHIP_RECORD_HEADER_BYTES)
			return fail(why, "record block truncated");
		if (alog_get_u64(block + pos) != first_offset + i)
			return fail(why, "record offsets not dense");
		n = alog_get_u32(block + pos + 16);
		if (n == 0 || n > record_max || n > SHIP_RECORD_BYTES_HARD_MAX)
			return fail(why, "record length out of range");
		if (len - pos - SHIP_RECORD_HEADER_BYTES < n)
			return fail(why, "record runs past the block");
		pos += SHIP_RECORD_HEADER_BYTES + n;
	}
	if (pos != len)
		return fail(why, "record block has trailing bytes");
	return 0;
}

bool ship_block_next(const uint8_t *block, size_t len, size_t *pos,
		     struct ship_record *r)
{
	if (*pos + SHIP_RECORD_HEADER_BYTES > len)
		return false;
	r->offset = alog_get_u64(block + *pos);
	r->time_ms = alog_get_u64(block + *pos + 8);
	r->len = alog_get_u32(block + *pos + 16);
	r->data = block + *pos + SHIP_RECORD_HEADER_BYTES;
	*pos += SHIP_RECORD_HEADER_BYTES + r->len;
	return true;
}

bool ship_block_put(uint8_t *block, size_t cap, size_t *pos, uint64_t offset,
		    uint64_t time_ms, const uint8_t *data, uint32_t len)
{
	if (cap - *pos < SHIP_RECORD_HEADER_BYTES + (size_t)len)
		return false;
	alog_put_u64(block + *pos, offset);
	alog_put_u64(block + *pos + 8, time_ms);
	alog_put_u32(block + *pos + 16, len);
	memcpy(block + *pos + SHIP_RECORD_HEADER_BYTES, data, len);
	*pos += SHIP_RECORD_HEADER_BYTES + len;
	return true;
}

const char *ship_type_name(uint8_t type)
{
	static const char *const names[] = { "?",    "HELLO", "WELCOME",
					     "DATA", "ACK",   "HEARTBEAT",
					     "ERROR" };

	return type < ALOG_ARRAY_LEN(names) ? names[type] : "?";
}

const char *ship_err_name(uint16_t code)
{
	static const char *const names[] = {
		"?",        "VERSION",      "AUTH",           "PROTOCOL",
		"BUSY",     "STORAGE_FULL", "STORAGE_FAILED", "GAP",
		"IDENTITY", "SHUTDOWN",     "TIMEOUT"
	};

	return code < ALOG_ARRAY_LEN(names) ? names[code] : "UNKNOWN";
}
