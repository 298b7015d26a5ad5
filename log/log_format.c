/*
 * log_format.c - the byte layouts of docs/log-format.md, and nothing else.
 *
 * Decoders trust nothing: magic, then lengths against what is available,
 * then the checksum, and only then the fields.
 */
#include "log_format.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
/* Inline xxHash (the Debian header): XXH3 on short records is then a few
 * dozen instructions with no call, and XXH3_state_t is a complete type. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "alog_common.h"
#include "alog_log.h"

static const uint8_t meta_magic[8] = { 'A', 'L', 'O', 'G', 'L', 'O', 'G', 0 };
static const uint8_t head_magic[8] = { 'A', 'L', 'O', 'G', 'H', 'E', 'A', 'D' };
static const uint8_t seg_magic[8] = { 'A', 'L', 'O', 'G', 'S', 'E', 'G', 0 };
static const uint8_t idx_magic[8] = { 'A', 'L', 'O', 'G', 'I', 'D', 'X', 0 };

_Static_assert(LOG_META_BYTES == 64, "LOG is 64 bytes");
_Static_assert(LOG_SEG_HEADER_BYTES == 64, "segment header is 64 bytes");
_Static_assert(LOG_REC_HEADER_BYTES == 32, "record header is 32 bytes");

void log_meta_encode(uint8_t out[LOG_META_BYTES], const struct log_meta *m)
{
	memset(out, 0, LOG_META_BYTES);
	memcpy(out, meta_magic, 8);
	alog_put_u16(out + 8, LOG_VERSION);
	alog_put_u16(out + 10, LOG_META_BYTES);
	memcpy(out + 16, m->identity, 16);
	alog_put_u64(out + 32, m->created_ms);
	alog_put_u64(out + 40, m->start_offset);
	alog_put_u64(out + 56, XXH3_64bits(out, 56));
}

int log_meta_decode(const uint8_t *buf, size_t len, struct log_meta *m)
{
	if (len < LOG_META_BYTES || memcmp(buf, meta_magic, 8) != 0)
		return -ENOTRECOVERABLE;
	if (alog_get_u64(buf + 56) != XXH3_64bits(buf, 56))
		return -EBADMSG;
	if (alog_get_u16(buf + 8) != LOG_VERSION ||
	    alog_get_u16(buf + 10) != LOG_META_BYTES)
		return -EPROTONOSUPPORT;
	memcpy(m->identity, buf + 16, 16);
	m->created_ms = alog_get_u64(buf + 32);
	m->start_offset = alog_get_u64(buf + 40);
	return 0;
}

void log_head_encode(uint8_t out[LOG_HEAD_BYTES], uint64_t next_offset,
		     uint64_t now_ms)
{
	memcpy(out, head_magic, 8);
	alog_put_u64(out + 8, next_offset);
	alog_put_u64(out + 16, now_ms);
	alog_put_u64(out + 24, XXH3_64bits(out, 24));
}

int log_head_decode(const uint8_t *buf, size_t len, uint64_t *next_offset)
{
	if (len < LOG_HEAD_BYTES || memcmp(buf, head_magic, 8) != 0 ||
	    alog_get_u64(buf + 24) != XXH3_64bits(buf, 24))
		return -EBADMSG;
	*next_offset = alog_get_u64(buf + 8);
	return 0;
}

void log_seg_header_encode(uint8_t out[LOG_SEG_HEADER_BYTES],
			   const struct log_seg_header *h)
{
	memset(out, 0, LOG_SEG_HEADER_BYTES);
	memcpy(out, seg_magic, 8);
	alog_put_u16(out + 8, LOG_VERSION);
	alog_put_u16(out + 10, LOG_SEG_HEADER_BYTES);
	alog_put_u64(out + 16, h->base_offset);
	alog_put_u64(out + 24, h->created_ms);
	memcpy(out + 32, h->identity, 16);
	alog_put_u64(out + 48, h->segment_bytes_max);
	alog_put_u64(out + 56, XXH3_64bits(out, 56));
}

int log_seg_header_decode(const uint8_t *buf, size_t len,
			  struct log_seg_header *h)
{
	if (len < LOG_SEG_HEADER_BYTES || memcmp(buf, seg_magic, 8) != 0 ||
	    alog_get_u64(buf + 56) != XXH3_64bits(buf, 56))
		return -EBADMSG;
	if (alog_get_u16(buf + 8) != LOG_VERSION ||
	    alog_get_u16(buf + 10) != LOG_SEG_HEADER_BYTES ||
	    alog_get_u32(buf + 12) != 0)
		return -EPROTONOSUPPORT;
	h->base_offset = alog_get_u64(buf + 16);
	h->created_ms = alog_get_u64(buf + 24);
	memcpy(h->identity, buf + 32, 16);
	h->segment_bytes_max = alog_get_u64(buf + 48);
	return 0;
}

void log_rec_encode(uint8_t *out, uint32_t len, uint64_t offset,
		    uint64_t time_ms)
{
	alog_put_u32(out + 8, len);
	alog_put_u32(out + 12, 0);
	alog_put_u64(out + 16, offset);
	alog_put_u64(out + 24, time_ms);
	alog_put_u64(out, XXH3_64bits(out + 8, 24 + (size_t)len));
}

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n > 0 && *p == 0) {
		p++;
		n--;
	}
	return n == 0;
}

enum log_rec_status log_rec_decode(const uint8_t *buf, size_t avail,
				   uint64_t expect_offset,
				   uint32_t record_bytes_max,
				   struct log_rec_header *h, const char **why)
{
	if (avail == 0)
		return LOG_REC_END;
	if (avail < LOG_REC_HEADER_BYTES) {
		if (all_zero(buf, avail))
			return LOG_REC_END;
		*why = "header runs past the end of the data";
		return LOG_REC_INCOMPLETE;
	}
	if (all_zero(buf, LOG_REC_HEADER_BYTES))
		return LOG_REC_END;
	h->checksum = alog_get_u64(buf);
	h->len = alog_get_u32(buf + 8);
	h->flags = alog_get_u32(buf + 12);
	h->offset = alog_get_u64(buf + 16);
	h->time_ms = alog_get_u64(buf + 24);
	if (h->len == 0 || h->len > record_bytes_max ||
	    h->len > ALOG_RECORD_BYTES_HARD_MAX) {
		*why = "record length out of range";
		return LOG_REC_INVALID;
	}
	if (h->len > avail - LOG_REC_HEADER_BYTES) {
		*why = "payload runs past the end of the data";
		return LOG_REC_INCOMPLETE;
	}
	if (XXH3_64bits(buf + 8, 24 + (size_t)h->len) != h->checksum) {
		*why = "checksum mismatch";
		return LOG_REC_INVALID;
	}
	if (h->flags != 0) {
		*why = "unknown record flags";
		return LOG_REC_INVALID;
	}
	if (expect_offset != UINT64_MAX && h->offset != expect_offset) {
		*why = "offset out of sequence";
		return LOG_REC_INVALID;
	}
	return LOG_REC_OK;
}

void log_idx_encode(uint8_t *out, const struct log_idx_header *h,
		    const struct log_idx_entry *entries)
{
	XXH3_state_t st;
	uint8_t *e = out + LOG_IDX_HEADER_BYTES;
	size_t bytes = (size_t)h->count * LOG_IDX_ENTRY_BYTES;

	memset(out, 0, LOG_IDX_HEADER_BYTES);
	memcpy(out, idx_magic, 8);
	alog_put_u16(out + 8, LOG_VERSION);
	alog_put_u16(out + 10, LOG_IDX_ENTRY_BYTES);
	alog_put_u32(out + 12, h->count);
	alog_put_u64(out + 16, h->base_offset);
	alog_put_u64(out + 24, h->next_offset);
	alog_put_u64(out + 32, h->data_end);
	alog_put_u64(out + 40, h->sealed_ms);
	alog_put_u64(out + 48, h->last_time_ms);
	for (uint32_t i = 0; i < h->count; i++) {
		alog_put_u32(e + (size_t)i * 8, entries[i].rel_offset);
		alog_put_u32(e + (size_t)i * 8 + 4, entries[i].position);
	}
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, out, 56);
	XXH3_64bits_update(&st, e, bytes);
	alog_put_u64(out + 56, XXH3_64bits_digest(&st));
}

int log_idx_decode(const uint8_t *buf, size_t len, struct log_idx_header *h)
{
	XXH3_state_t st;
	uint32_t prev_rel = 0, prev_pos = 0;

	if (len < LOG_IDX_HEADER_BYTES || memcmp(buf, idx_magic, 8) != 0 ||
	    alog_get_u16(buf + 8) != LOG_VERSION ||
	    alog_get_u16(buf + 10) != LOG_IDX_ENTRY_BYTES)
		return -EBADMSG;
	h->count = alog_get_u32(buf + 12);
	if ((len - LOG_IDX_HEADER_BYTES) / LOG_IDX_ENTRY_BYTES != h->count ||
	    (len - LOG_IDX_HEADER_BYTES) % LOG_IDX_ENTRY_BYTES != 0)
		return -EBADMSG;
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, buf, 56);
	XXH3_64bits_update(&st, buf + LOG_IDX_HEADER_BYTES,
			   len - LOG_IDX_HEADER_BYTES);
	if (XXH3_64bits_digest(&st) != alog_get_u64(buf + 56))
		return -EBADMSG;
	h->base_offset = alog_get_u64(buf + 16);
	h->next_offset = alog_get_u64(buf + 24);
	h->data_end = alog_get_u64(buf + 32);
	h->sealed_ms = alog_get_u64(buf + 40);
	h->last_time_ms = alog_get_u64(buf + 48);
	if (h->next_offset < h->base_offset ||
	    h->data_end < LOG_SEG_HEADER_BYTES || h->data_end > UINT32_MAX)
		return -EBADMSG;
	/* Entries must be strictly increasing and inside the data. */
	for (uint32_t i = 0; i < h->count; i++) {
		struct log_idx_entry e;

		log_idx_entry_get(buf, i, &e);
		if ((i > 0 &&
		     (e.rel_offset <= prev_rel || e.position <= prev_pos)) ||
		    e.position < LOG_SEG_HEADER_BYTES ||
		    e.position >= h->data_end ||
		    h->base_offset + e.rel_offset >= h->next_offset)
			return -EBADMSG;
		prev_rel = e.rel_offset;
		prev_pos = e.position;
	}
	return 0;
}

void log_idx_entry_get(const uint8_t *buf, uint32_t i, struct log_idx_entry *e)
{
	const uint8_t *p =
		buf + LOG_IDX_HEADER_BYTES + (size_t)i * LOG_IDX_ENTRY_BYTES;

	e->rel_offset = alog_get_u32(p);
	e->position = alog_get_u32(p + 4);
}

void log_seg_name(char out[LOG_NAME_BYTES], uint64_t base, const char *ext)
{
	snprintf(out, LOG_NAME_BYTES, "%020" PRIu64 ".%s", base, ext);
}

bool log_seg_name_parse(const char *name, const char *ext, uint64_t *base)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < 20; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		if (v > (UINT64_MAX - (uint64_t)(name[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	if (name[20] != '.' || strcmp(name + 21, ext) != 0)
		return false;
	*base = v;
	return true;
}
