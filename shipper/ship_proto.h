/*
 * ship_proto.h - the ship protocol's frames (docs/ship-protocol.md): pure
 * encode and decode functions over caller buffers, no I/O and no
 * allocation beyond a caller's zstd context, so they can be fuzzed alone
 * (tests/fuzz/fuzz_ship_frame.c).
 *
 * Decoders distrust every byte: magic, then lengths against what is there
 * and against the caller's limits, then the checksum, then the layout. A
 * decoder that fails says why through a static string. Everything borrows
 * the caller's buffers; all functions are thread-safe on distinct buffers.
 */
#ifndef SHIP_PROTO_H
#define SHIP_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHIP_VERSION_MIN 1
#define SHIP_VERSION_MAX 1

#define SHIP_FRAME_HEADER_BYTES 24
#define SHIP_FRAME_BYTES_HARD_MAX (32u << 20) /* body bytes */
#define SHIP_FRAME_BYTES_MIN 1024
#define SHIP_HANDSHAKE_BYTES_MAX 1024
#define SHIP_RAW_BYTES_MAX (4u << 20) /* record block after decompression */
#define SHIP_RECORDS_HARD_MAX 65536
#define SHIP_RECORD_BYTES_HARD_MAX (16u << 20)
#define SHIP_NAME_MAX 64
#define SHIP_REASON_MAX 512
#define SHIP_HELLO_FIXED_BYTES 44
#define SHIP_WELCOME_BYTES 32
#define SHIP_DATA_HEADER_BYTES 24
#define SHIP_ACK_BYTES 16
#define SHIP_HEARTBEAT_BYTES 16
#define SHIP_RECORD_HEADER_BYTES 20

enum ship_type {
	SHIP_HELLO = 1,
	SHIP_WELCOME = 2,
	SHIP_DATA = 3,
	SHIP_ACK = 4,
	SHIP_HEARTBEAT = 5,
	SHIP_ERROR = 6,
};

enum ship_err {
	SHIP_ERR_VERSION = 1,
	SHIP_ERR_AUTH = 2,
	SHIP_ERR_PROTOCOL = 3,
	SHIP_ERR_BUSY = 4,
	SHIP_ERR_STORAGE_FULL = 5,
	SHIP_ERR_STORAGE_FAILED = 6,
	SHIP_ERR_GAP = 7,
	SHIP_ERR_IDENTITY = 8,
	SHIP_ERR_SHUTDOWN = 9,
	SHIP_ERR_TIMEOUT = 10,
};

enum ship_codec {
	SHIP_CODEC_NONE = 0,
	SHIP_CODEC_ZSTD = 1,
};

enum ship_parse {
	SHIP_PARSE_OK = 0,
	SHIP_PARSE_INCOMPLETE = 1, /* need more bytes */
	SHIP_PARSE_INVALID = 2,    /* *why says what */
};

/* A frame found in a buffer; body borrowed from it. */
struct ship_frame {
	uint8_t type;
	uint32_t body_len;
	const uint8_t *body;
};

struct ship_hello {
	uint16_t version_min, version_max;
	uint32_t frame_bytes_max;
	uint8_t identity[16];
	uint64_t start_offset;
	uint64_t head_offset;
	char name[SHIP_NAME_MAX + 1]; /* NUL-terminated, validated */
};

struct ship_welcome {
	uint16_t version;
	bool has_log;
	uint32_t window_bytes;
	uint32_t frame_bytes_max;
	uint32_t records_max;
	uint64_t next_offset;
	uint32_t heartbeat_ms;
};

struct ship_data {
	uint64_t first_offset;
	uint32_t count;
	uint32_t raw_len;
	uint8_t codec;
	const uint8_t *packed; /* borrowed from the frame body */
	uint32_t packed_len;
};

struct ship_record {
	uint64_t offset;
	uint64_t time_ms;
	const uint8_t *data; /* borrowed from the record block */
	uint32_t len;
};

struct ship_error {
	uint16_t code;
	char reason[SHIP_REASON_MAX + 1]; /* NUL-terminated, printable */
};

/*
 * Find one frame at the start of buf[0..len). body_max is the largest body
 * the caller accepts. OK: *f is filled and *consumed is the frame's size.
 * INCOMPLETE: a valid prefix, more bytes needed. INVALID: *why says why.
 */
enum ship_parse ship_frame_parse(const uint8_t *buf, size_t len,
				 uint32_t body_max, struct ship_frame *f,
				 size_t *consumed, const char **why);

/*
 * Write the header of a frame whose body_len bytes are already at
 * frame + SHIP_FRAME_HEADER_BYTES, checksum included. Returns the frame's
 * total size.
 */
size_t ship_frame_seal(uint8_t *frame, uint8_t type, uint32_t body_len);

/* Body encoders: write into body (cap bytes), return the body length, or
 * 0 if it does not fit or an argument is out of range. */
size_t ship_hello_encode(uint8_t *body, size_t cap, const struct ship_hello *h);
size_t ship_welcome_encode(uint8_t *body, size_t cap,
			   const struct ship_welcome *w);
size_t ship_ack_encode(uint8_t *body, size_t cap, uint64_t next_offset,
		       uint64_t time_ms);
size_t ship_heartbeat_encode(uint8_t *body, size_t cap, uint64_t offset,
			     uint64_t time_ms);
size_t ship_error_encode(uint8_t *body, size_t cap, uint16_t code,
			 const char *reason);
/* DATA header only; the packed record block follows at
 * body + SHIP_DATA_HEADER_BYTES. */
void ship_data_header_encode(uint8_t *body, uint64_t first_offset,
			     uint32_t count, uint32_t raw_len, uint8_t codec);

/* Body decoders: 0, or -EPROTO and *why. */
int ship_hello_decode(const uint8_t *body, size_t len, struct ship_hello *h,
		      const char **why);
int ship_welcome_decode(const uint8_t *body, size_t len, struct ship_welcome *w,
			const char **why);
int ship_ack_decode(const uint8_t *body, size_t len, uint64_t *next_offset,
		    uint64_t *time_ms, const char **why);
int ship_heartbeat_decode(const uint8_t *body, size_t len, uint64_t *offset,
			  uint64_t *time_ms, const char **why);
int ship_error_decode(const uint8_t *body, size_t len, struct ship_error *e,
		      const char **why);
/* Checks count against records_max and raw_len against raw_max. */
int ship_data_decode(const uint8_t *body, size_t len, uint32_t records_max,
		     uint32_t raw_max, struct ship_data *d, const char **why);

/*
 * Unpack d's record block into out (cap >= d->raw_len) with dctx (a
 * ZSTD_DCtx *, borrowed; may be NULL for codec none) and check it with
 * ship_block_check(). Returns 0 or -EPROTO and *why.
 */
int ship_data_unpack(const struct ship_data *d, void *dctx, uint8_t *out,
		     size_t cap, uint32_t record_max, const char **why);

/*
 * Check a whole record block: exactly count records filling exactly len
 * bytes, dense offsets from first_offset, every payload 1..record_max
 * bytes. Returns 0 or -EPROTO and *why.
 */
int ship_block_check(const uint8_t *block, size_t len, uint64_t first_offset,
		     uint32_t count, uint32_t record_max, const char **why);

/* Record at *pos of a block already passed by ship_block_check(); advances
 * *pos. Returns false at the end. */
bool ship_block_next(const uint8_t *block, size_t len, size_t *pos,
		     struct ship_record *r);

/* Append one record to a block being built at block + *pos (cap bytes in
 * all). Returns false if it does not fit. */
bool ship_block_put(uint8_t *block, size_t cap, size_t *pos, uint64_t offset,
		    uint64_t time_ms, const uint8_t *data, uint32_t len);

/* True for a valid edge name: 1..64 of [A-Za-z0-9._-], no leading '.'. */
bool ship_name_ok(const char *name, size_t len);

const char *ship_type_name(uint8_t type);
const char *ship_err_name(uint16_t code);

#endif /* SHIP_PROTO_H */
