/*
 * ship_proto_test.c - unit test of the ship frame codec: round trips of
 * every frame type, and refusal of every single-byte corruption, of
 * truncation, of oversize frames and of malformed record blocks.
 */
#include <errno.h>
#include <string.h>
#include <zstd.h>

#include "ship_proto.h"
#include "test_util.h"

static uint8_t buf[1 << 20], raw[SHIP_RAW_BYTES_MAX], block[1 << 16];

static void test_control_round_trip(void)
{
	struct ship_hello h = { .version_min = 1,
				.version_max = 3,
				.frame_bytes_max = 1 << 20,
				.start_offset = 10,
				.head_offset = 20 },
			  h2;
	struct ship_welcome w = { .version = 1,
				  .has_log = true,
				  .window_bytes = 1 << 22,
				  .frame_bytes_max = 1 << 23,
				  .records_max = 5,
				  .next_offset = 15,
				  .heartbeat_ms = 1000 },
			    w2;
	struct ship_error e;
	struct ship_frame f;
	const char *why = NULL;
	size_t n, used;
	uint64_t a, b;

	memset(h.identity, 0xab, 16);
	strcpy(h.name, "edge.eu-1");
	n = ship_hello_encode(buf + 24, sizeof(buf) - 24, &h);
	CHECK(n > 0);
	n = ship_frame_seal(buf, SHIP_HELLO, (uint32_t)n);
	CHECK_EQ(ship_frame_parse(buf, n, 1024, &f, &used, &why),
		 SHIP_PARSE_OK);
	CHECK_EQ(used, n);
	CHECK_EQ(ship_hello_decode(f.body, f.body_len, &h2, &why), 0);
	CHECK(strcmp(h2.name, "edge.eu-1") == 0);
	CHECK_EQ(h2.version_max, 3);
	CHECK_EQ(h2.head_offset, 20);
	CHECK(memcmp(h2.identity, h.identity, 16) == 0);
	/* Every prefix is incomplete, every flipped byte is refused. */
	for (size_t k = 0; k < n; k++) {
		enum ship_parse st =
			ship_frame_parse(buf, k, 1024, &f, &used, &why);

		CHECK(st == SHIP_PARSE_INCOMPLETE);
	}
	for (size_t k = 0; k < n; k++) {
		buf[k] ^= 0x10;
		CHECK_EQ(ship_frame_parse(buf, n, 1024, &f, &used, &why),
			 SHIP_PARSE_INVALID);
		buf[k] ^= 0x10;
	}
	/* Oversize is refused from the header alone. */
	CHECK_EQ(ship_frame_parse(buf, 24, 8, &f, &used, &why),
		 SHIP_PARSE_INVALID);
	strcpy(h.name, "bad/name");
	CHECK_EQ(ship_hello_encode(buf, sizeof(buf), &h), 0);

	n = ship_welcome_encode(buf, sizeof(buf), &w);
	CHECK_EQ(ship_welcome_decode(buf, n, &w2, &why), 0);
	CHECK_EQ(w2.next_offset, 15);
	CHECK_EQ(w2.has_log, 1);
	buf[2] = 2; /* unknown flag */
	CHECK_EQ(ship_welcome_decode(buf, n, &w2, &why), -EPROTO);

	n = ship_ack_encode(buf, 16, 99, 7);
	CHECK_EQ(ship_ack_decode(buf, n, &a, &b, &why), 0);
	CHECK_EQ(a, 99);
	CHECK_EQ(ship_ack_decode(buf, 15, &a, &b, &why), -EPROTO);

	n = ship_error_encode(buf, sizeof(buf), SHIP_ERR_GAP, "gone\x01");
	CHECK_EQ(ship_error_decode(buf, n, &e, &why), 0);
	CHECK_EQ(e.code, SHIP_ERR_GAP);
	CHECK(strcmp(e.reason, "gone?") == 0);
	CHECK_EQ(ship_error_decode(buf, n - 1, &e, &why), -EPROTO);
}

static size_t make_block(uint64_t first, unsigned count)
{
	size_t pos = 0;
	uint8_t pl[100];

	for (unsigned i = 0; i < count; i++) {
		memset(pl, 'a' + i % 26, sizeof(pl));
		CHECK(ship_block_put(block, sizeof(block), &pos, first + i,
				     1000 + i, pl, 1 + i % 100));
	}
	return pos;
}

static void test_data(void)
{
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	struct ship_data d;
	struct ship_record r;
	const char *why = NULL;
	size_t bl = make_block(50, 200), n, pos = 0;
	unsigned seen = 0;

	n = ZSTD_compress(buf + 24, sizeof(buf) - 24, block, bl, 1);
	REQUIRE(!ZSTD_isError(n));
	ship_data_header_encode(buf, 50, 200, (uint32_t)bl, SHIP_CODEC_ZSTD);
	CHECK_EQ(ship_data_decode(buf, 24 + n, 1000, 1 << 20, &d, &why), 0);
	CHECK_EQ(ship_data_unpack(&d, dctx, raw, sizeof(raw), 1000, &why), 0);
	while (ship_block_next(raw, d.raw_len, &pos, &r)) {
		CHECK_EQ(r.offset, 50 + seen);
		CHECK_EQ(r.len, 1 + seen % 100);
		seen++;
	}
	CHECK_EQ(seen, 200);
	/* Limits. */
	CHECK_EQ(ship_data_decode(buf, 24 + n, 199, 1 << 20, &d, &why),
		 -EPROTO);
	CHECK_EQ(ship_data_decode(buf, 24 + n, 1000, (uint32_t)bl - 1, &d,
				  &why),
		 -EPROTO);
	/* A raw_len that disagrees with the zstd stream. */
	ship_data_header_encode(buf, 50, 200, (uint32_t)bl - 1,
				SHIP_CODEC_ZSTD);
	CHECK_EQ(ship_data_decode(buf, 24 + n, 1000, 1 << 20, &d, &why), 0);
	CHECK_EQ(ship_data_unpack(&d, dctx, raw, sizeof(raw), 1000, &why),
		 -EPROTO);
	/* Wrong count, wrong first offset, record above record_max. */
	ship_data_header_encode(buf, 50, 199, (uint32_t)bl, SHIP_CODEC_ZSTD);
	CHECK_EQ(ship_data_decode(buf, 24 + n, 1000, 1 << 20, &d, &why), 0);
	CHECK_EQ(ship_data_unpack(&d, dctx, raw, sizeof(raw), 1000, &why),
		 -EPROTO);
	CHECK_EQ(ship_block_check(block, bl, 51, 200, 1000, &why), -EPROTO);
	CHECK_EQ(ship_block_check(block, bl, 50, 200, 99, &why), -EPROTO);
	CHECK_EQ(ship_block_check(block, bl, 50, 200, 100, &why), 0);
	CHECK_EQ(ship_block_check(block, bl - 1, 50, 200, 100, &why), -EPROTO);
	/* Uncompressed: packed length must equal raw length. */
	ship_data_header_encode(buf, 50, 200, (uint32_t)bl, SHIP_CODEC_NONE);
	memcpy(buf + 24, block, bl);
	CHECK_EQ(ship_data_decode(buf, 24 + bl, 1000, 1 << 20, &d, &why), 0);
	CHECK_EQ(ship_data_unpack(&d, NULL, raw, sizeof(raw), 1000, &why), 0);
	CHECK_EQ(ship_data_decode(buf, 24 + bl - 1, 1000, 1 << 20, &d, &why),
		 -EPROTO);
	buf[16] = 7; /* unknown codec */
	CHECK_EQ(ship_data_decode(buf, 24 + bl, 1000, 1 << 20, &d, &why),
		 -EPROTO);
	ZSTD_freeDCtx(dctx);
}

int main(void)
{
	test_control_round_trip();
	test_data();
	return t_summary("test_ship_proto");
}
