/*
 * log_format.h - encode and decode the byte layouts of docs/log-format.md.
 *
 * Private to log/. Every function here is pure: bytes in, fields out, with
 * every length checked against what the caller says is available, so the
 * same code serves the writer, the readers, recovery and the fuzzer.
 */
#ifndef ALOG_LOG_FORMAT_H
#define ALOG_LOG_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOG_VERSION 1
#define LOG_META_BYTES 64
#define LOG_HEAD_BYTES 32
#define LOG_SEG_HEADER_BYTES 64
#define LOG_REC_HEADER_BYTES 32
#define LOG_IDX_HEADER_BYTES 64
#define LOG_IDX_ENTRY_BYTES 8
#define LOG_SEGMENTS_MAX 1000000u
#define LOG_NAME_BYTES 32 /* "%020llu.seg" + NUL, with room */

struct log_meta {
	uint8_t identity[16];
	uint64_t created_ms;
	uint64_t start_offset;
};

struct log_seg_header {
	uint64_t base_offset;
	uint64_t created_ms;
	uint8_t identity[16];
	uint64_t segment_bytes_max;
};

struct log_rec_header {
	uint32_t len;
	uint32_t flags;
	uint64_t offset;
	uint64_t time_ms;
	uint64_t checksum;
};

struct log_idx_entry {
	uint32_t rel_offset;
	uint32_t position;
};

struct log_idx_header {
	uint32_t count;
	uint64_t base_offset;
	uint64_t next_offset;
	uint64_t data_end;
	uint64_t sealed_ms;
	uint64_t last_time_ms;
};

/* Outcome of decoding one record at a position. */
enum log_rec_status {
	LOG_REC_OK = 0,
	LOG_REC_END, /* 32 zero bytes, or the end of the data: clean end */
	LOG_REC_INCOMPLETE, /* header or payload runs past what is available */
	LOG_REC_INVALID,    /* bad length, flags, offset or checksum */
};

void log_meta_encode(uint8_t out[LOG_META_BYTES], const struct log_meta *m);
int log_meta_decode(const uint8_t *buf, size_t len, struct log_meta *m);

void log_head_encode(uint8_t out[LOG_HEAD_BYTES], uint64_t next_offset,
		     uint64_t now_ms);
int log_head_decode(const uint8_t *buf, size_t len, uint64_t *next_offset);

void log_seg_header_encode(uint8_t out[LOG_SEG_HEADER_BYTES],
			   const struct log_seg_header *h);
int log_seg_header_decode(const uint8_t *buf, size_t len,
			  struct log_seg_header *h);

/* Write the 32-byte header at out for the len-byte payload that must
 * already be in place right after it (the checksum covers both). */
void log_rec_encode(uint8_t *out, uint32_t len, uint64_t offset,
		    uint64_t time_ms);

/*
 * Decode the record at buf (avail bytes from there to the end of what is
 * readable). expect_offset is the offset that must be there (UINT64_MAX:
 * any). record_bytes_max bounds the length. On LOG_REC_OK fills *h; the
 * payload is buf + LOG_REC_HEADER_BYTES. *why is set to a static reason on
 * LOG_REC_INVALID / LOG_REC_INCOMPLETE.
 */
enum log_rec_status log_rec_decode(const uint8_t *buf, size_t avail,
				   uint64_t expect_offset,
				   uint32_t record_bytes_max,
				   struct log_rec_header *h, const char **why);

/* Encode an index (header + entries) into out, which must hold
 * LOG_IDX_HEADER_BYTES + count * LOG_IDX_ENTRY_BYTES. */
void log_idx_encode(uint8_t *out, const struct log_idx_header *h,
		    const struct log_idx_entry *entries);

/* Decode and check an index. *entries points into buf (unaligned reads go
 * through log_idx_entry_get). Returns 0 or -EBADMSG. */
int log_idx_decode(const uint8_t *buf, size_t len, struct log_idx_header *h);
void log_idx_entry_get(const uint8_t *buf, uint32_t i, struct log_idx_entry *e);

/* "%020llu.seg" / ".idx" names; parse returns false for other names. */
void log_seg_name(char out[LOG_NAME_BYTES], uint64_t base, const char *ext);
bool log_seg_name_parse(const char *name, const char *ext, uint64_t *base);

#endif /* ALOG_LOG_FORMAT_H */
