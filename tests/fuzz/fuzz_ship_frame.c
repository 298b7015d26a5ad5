/*
 * fuzz_ship_frame.c - libFuzzer target for the ship protocol's decoders
 * (shipper/ship_proto.c). Two modes, by the first byte:
 *   'A' (a frame's magic): a byte stream as it would arrive on a
 *       connection. Every frame found is decoded by type.
 *   'B': data[1] picks a frame type (1 + data[1] % 6), the rest is that
 *       frame's body, decoded directly. The frame checksum (XXH3) lets
 *       almost no mutated frame through in the first mode, which left the
 *       body decoders (DATA's header, zstd, the record block) fuzzed only
 *       by the seeds; this mode reaches them.
 * DATA bodies are unpacked (zstd included) and their records walked.
 * Nothing may crash, read out of bounds, or hand back a record outside the
 * block.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "ship_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t raw[SHIP_RAW_BYTES_MAX];

static void decode_body(const struct ship_frame *f, ZSTD_DCtx *dctx)
{
	const char *why = NULL;

	switch (f->type) {
	case SHIP_HELLO: {
		struct ship_hello h;

		if (ship_hello_decode(f->body, f->body_len, &h, &why) == 0 &&
		    !ship_name_ok(h.name, strlen(h.name)))
			abort();
		break;
	}
	case SHIP_WELCOME: {
		struct ship_welcome w;

		(void)ship_welcome_decode(f->body, f->body_len, &w, &why);
		break;
	}
	case SHIP_ACK:
	case SHIP_HEARTBEAT: {
		uint64_t a, b;

		(void)ship_ack_decode(f->body, f->body_len, &a, &b, &why);
		(void)ship_heartbeat_decode(f->body, f->body_len, &a, &b, &why);
		break;
	}
	case SHIP_ERROR: {
		struct ship_error e;

		(void)ship_error_decode(f->body, f->body_len, &e, &why);
		break;
	}
	case SHIP_DATA: {
		struct ship_data d;
		struct ship_record r;
		size_t pos = 0;
		uint32_t n = 0;

		if (ship_data_decode(f->body, f->body_len, 1024, 1u << 20, &d,
				     &why) != 0)
			break;
		if (ship_data_unpack(&d, dctx, raw, sizeof(raw), 65536, &why) !=
		    0)
			break;
		while (ship_block_next(raw, d.raw_len, &pos, &r)) {
			if (r.offset != d.first_offset + n || r.len == 0 ||
			    r.data + r.len > raw + d.raw_len)
				abort();
			n++;
		}
		if (n != d.count || pos != d.raw_len)
			abort();
		break;
	}
	default:
		abort(); /* the frame parser promised a known type */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static ZSTD_DCtx *dctx;
	size_t pos = 0;

	if (!dctx)
		dctx = ZSTD_createDCtx();
	if (size >= 2 && data[0] == 'B') {
		struct ship_frame f = { .type = (uint8_t)(1 + data[1] % 6),
					.body = data + 2,
					.body_len = (uint32_t)(size - 2) };

		decode_body(&f, dctx);
		return 0;
	}
	while (pos < size) {
		struct ship_frame f;
		size_t used = 0;
		const char *why = NULL;
		enum ship_parse st;

		st = ship_frame_parse(data + pos, size - pos, 1u << 20, &f,
				      &used, &why);
		if (st != SHIP_PARSE_OK)
			break;
		if (used < SHIP_FRAME_HEADER_BYTES || used > size - pos)
			abort();
		decode_body(&f, dctx);
		pos += used;
	}
	return 0;
}
