/*
 * ship_tool.c - helpers for the shipper's integration tests and benchmark
 * (tests/ship_test.py, bench/ship/run.sh), standing in for the edge
 * process until it exists:
 *
 *   ship_tool produce DIR [--count N] [--rate R] [--size S] [--seconds T]
 *                         [--segment-bytes B] [--retain-ms M]
 *       own the edge log DIR (create it), append N records (0: until
 *       SIGTERM or T seconds) at R records/s (0: as fast as possible) with
 *       payloads derived from the offset, apply consumer-driven retention
 *       every M ms; print the next offset when done.
 *   ship_tool compare EDGE CANON [--first N]
 *       every record the edge log still has must be in the canonical log
 *       with the same offset, time and bytes; the canonical log must start
 *       at N (default: the edge's first offset) and end where the edge
 *       ends. Exit 0 when equal, 1 with the first difference.
 *   ship_tool corpus DIR
 *       write the fuzz seed corpus for fuzz_ship_frame.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "alog_common.h"
#include "alog_log.h"
#include "ship_proto.h"

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/* Deterministic, compressible-ish payload for offset off. */
static size_t payload_for(uint64_t off, uint8_t *buf, size_t size)
{
	size_t len = size ? size : 60 + (off * 7919) % 200;
	int n = snprintf((char *)buf, len,
			 "{\"o\":%" PRIu64 ",\"p\":\"/page/%" PRIu64
			 "\",\"c\":\"DE\",\"v\":\"",
			 off, off % 977);
	size_t pos = n > 0 && (size_t)n < len ? (size_t)n : 0;

	for (; pos < len; pos++)
		buf[pos] = (uint8_t)('a' + (off * 31 + pos * 7) % 26);
	return len;
}

struct waiter {
	uint64_t outstanding;
	int failed;
};

static void on_durable(void *arg, int status, uint64_t first)
{
	struct waiter *w = arg;

	(void)first;
	if (status < 0)
		__atomic_store_n(&w->failed, status, __ATOMIC_SEQ_CST);
	__atomic_sub_fetch(&w->outstanding, 1, __ATOMIC_SEQ_CST);
}

static int cmd_produce(int argc, char **argv)
{
	struct alog_log_options o;
	struct alog_log *log;
	struct alog_log_stats st;
	struct waiter w = { 0 };
	uint64_t count = 0, rate = 0, size = 0, seg = 64u << 20;
	uint64_t retain_ms = 0, seconds = 0, sent = 0, t0, last_retain;
	const char *dir = argv[2];
	static uint8_t bufs[256][4096];
	struct iovec iov[256];
	int err = 0;

	for (int i = 3; i + 1 < argc; i += 2) {
		uint64_t v = strtoull(argv[i + 1], NULL, 10);

		if (!strcmp(argv[i], "--count"))
			count = v;
		else if (!strcmp(argv[i], "--rate"))
			rate = v;
		else if (!strcmp(argv[i], "--size"))
			size = v > 4096 ? 4096 : v;
		else if (!strcmp(argv[i], "--segment-bytes"))
			seg = v;
		else if (!strcmp(argv[i], "--retain-ms"))
			retain_ms = v;
		else if (!strcmp(argv[i], "--seconds"))
			seconds = v;
		else
			return 2;
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	alog_log_options_init(&o);
	o.create = true;
	o.segment_bytes_max = seg;
	o.record_bytes_max = 64 * 1024;
	log = alog_log_open(dir, &o, &err);
	if (!log) {
		fprintf(stderr, "produce: %s: %s\n", dir, alog_strerror(err));
		return 2;
	}
	alog_log_stats(log, &st);
	sent = 0;
	t0 = alog_mono_ns();
	last_retain = t0;
	while (!stop && (count == 0 || sent < count)) {
		uint64_t now = alog_mono_ns();
		unsigned n = 256;

		if (seconds && now - t0 >= seconds * 1000000000ull)
			break;
		if (count && count - sent < n)
			n = (unsigned)(count - sent);
		if (rate) {
			uint64_t due = (now - t0) * rate / 1000000000ull;

			if (due <= sent) {
				struct timespec ts = { 0, 1000000 };

				nanosleep(&ts, NULL);
				continue;
			}
			if (due - sent < n)
				n = (unsigned)(due - sent);
		}
		for (unsigned i = 0; i < n; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = payload_for(st.next_offset + sent + i,
						     bufs[i], size);
		}
		/* Bound what is in flight so payload buffers stay valid
		 * (append copies them before returning anyway). */
		while (__atomic_load_n(&w.outstanding, __ATOMIC_SEQ_CST) > 64)
			usleep(100);
		__atomic_add_fetch(&w.outstanding, 1, __ATOMIC_SEQ_CST);
		err = alog_log_append(log, iov, n, NULL, on_durable, &w);
		if (err < 0) {
			__atomic_sub_fetch(&w.outstanding, 1, __ATOMIC_SEQ_CST);
			fprintf(stderr, "produce: append: %s\n",
				alog_strerror(err));
			break;
		}
		sent += n;
		if (retain_ms && now - last_retain >= retain_ms * 1000000ull) {
			int rc = alog_log_retain_consumers(log, dir,
							   alog_now_ms(), NULL);

			if (rc < 0)
				fprintf(stderr, "produce: retain: %s\n",
					alog_strerror(rc));
			last_retain = now;
		}
	}
	err = alog_log_sync(log);
	while (__atomic_load_n(&w.outstanding, __ATOMIC_SEQ_CST) > 0)
		usleep(100);
	if (retain_ms && err == 0) {
		/* Once more at the end: a roll by the last append sealed a
		 * segment the loop's passes could not delete yet. */
		int rc = alog_log_retain_consumers(log, dir, alog_now_ms(),
						   NULL);

		if (rc < 0)
			fprintf(stderr, "produce: retain: %s\n",
				alog_strerror(rc));
	}
	alog_log_stats(log, &st);
	printf("%" PRIu64 "\n", st.next_offset);
	alog_log_close(log);
	return err < 0 || w.failed ? 2 : 0;
}

static int cmd_compare(int argc, char **argv)
{
	struct alog_log_info ei, ci;
	struct alog_cursor *e, *c;
	uint64_t first, n = 0, below = 0;
	int err = 0, rc;

	if (alog_log_inspect(argv[2], &ei) < 0 ||
	    alog_log_inspect(argv[3], &ci) < 0) {
		fprintf(stderr, "compare: cannot inspect the logs\n");
		return 1;
	}
	free(ei.segments);
	free(ci.segments);
	first = ei.start_offset;
	if (argc >= 6 && !strcmp(argv[4], "--first"))
		first = strtoull(argv[5], NULL, 10);
	if (ci.start_offset != first) {
		fprintf(stderr,
			"compare: canonical starts at %" PRIu64
			", expected %" PRIu64 "\n",
			ci.start_offset, first);
		return 1;
	}
	if (ci.head_offset != ei.head_offset) {
		fprintf(stderr,
			"compare: canonical ends at %" PRIu64
			", edge at %" PRIu64 "\n",
			ci.head_offset, ei.head_offset);
		return 1;
	}
	e = alog_cursor_open(argv[2], ei.start_offset, &err);
	c = alog_cursor_open(argv[3], first < ei.start_offset ? first :
						ei.start_offset,
			     &err);
	if (!e || !c) {
		fprintf(stderr, "compare: cursor: %s\n", alog_strerror(err));
		return 1;
	}
	/* Below the edge's start retention deleted the edge's copies: the
	 * producer's payloads are a function of the offset, so check the
	 * canonical records against that (default --size only). */
	for (uint64_t off = first; off < ei.start_offset; off++) {
		struct alog_record b;
		uint8_t want[300];
		size_t len = payload_for(off, want, 0);

		rc = alog_cursor_next(c, &b);
		if (rc <= 0 || b.offset != off || b.len != len ||
		    memcmp(b.data, want, len) != 0) {
			fprintf(stderr,
				"compare: canonical record %" PRIu64
				" (below the edge's start %" PRIu64
				") missing or not the produced payload (%d)\n",
				off, ei.start_offset, rc);
			return 1;
		}
		below++;
	}
	for (;;) {
		struct alog_record a, b;
		uint8_t *copy;
		int ra = alog_cursor_next(e, &a);

		if (ra < 0) {
			fprintf(stderr, "compare: edge read: %s\n",
				alog_strerror(ra));
			return 1;
		}
		copy = ra ? malloc(a.len) : NULL;
		if (ra)
			memcpy(copy, a.data, a.len);
		rc = alog_cursor_next(c, &b);
		if (ra == 0 || rc <= 0) {
			free(copy);
			if (ra != 0 || rc != 0) {
				fprintf(stderr,
					"compare: at %" PRIu64
					": edge %s, canonical %s (%d)\n",
					alog_cursor_offset(e),
					ra ? "has a record" : "ends",
					rc > 0 ? "has a record" : "ends", rc);
				return 1;
			}
			break;
		}
		if (a.offset != b.offset || a.time_ms != b.time_ms ||
		    a.len != b.len || memcmp(copy, b.data, a.len) != 0) {
			fprintf(stderr,
				"compare: record differs: edge %" PRIu64
				"/%" PRIu64 "/%u, canonical %" PRIu64
				"/%" PRIu64 "/%u\n",
				a.offset, a.time_ms, a.len, b.offset, b.time_ms,
				b.len);
			free(copy);
			return 1;
		}
		free(copy);
		n++;
	}
	alog_cursor_close(e);
	alog_cursor_close(c);
	printf("compare: %" PRIu64 " records identical (%" PRIu64 "..%" PRIu64
	       "), %" PRIu64 " below the edge's start as produced\n",
	       n, ei.start_offset, ei.head_offset, below);
	return 0;
}

static void write_seed(const char *dir, const char *name, const uint8_t *p,
		       size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f)
		return;
	fwrite(p, 1, len, f);
	fclose(f);
}

static int cmd_corpus(const char *dir)
{
	static uint8_t buf[1 << 16], block[1 << 15];
	struct ship_hello h = { .version_min = 1,
				.version_max = 1,
				.frame_bytes_max = 1 << 20,
				.start_offset = 5,
				.head_offset = 9 };
	struct ship_welcome w = { .version = 1,
				  .has_log = true,
				  .window_bytes = 1 << 20,
				  .frame_bytes_max = 1 << 20,
				  .records_max = 100,
				  .next_offset = 7,
				  .heartbeat_ms = 1000 };
	size_t pos = 0, n, bl = 0;
	uint8_t pl[300];

	strcpy(h.name, "edge-1");
	n = ship_hello_encode(buf + 24, sizeof(buf) - 24, &h);
	pos = ship_frame_seal(buf, SHIP_HELLO, (uint32_t)n);
	write_seed(dir, "hello", buf, pos);
	n = ship_welcome_encode(buf + pos + 24, sizeof(buf), &w);
	pos += ship_frame_seal(buf + pos, SHIP_WELCOME, (uint32_t)n);
	n = ship_ack_encode(buf + pos + 24, 16, 12, 1700000000000ull);
	pos += ship_frame_seal(buf + pos, SHIP_ACK, (uint32_t)n);
	n = ship_heartbeat_encode(buf + pos + 24, 16, 12, 1700000000000ull);
	pos += ship_frame_seal(buf + pos, SHIP_HEARTBEAT, (uint32_t)n);
	n = ship_error_encode(buf + pos + 24, 600, SHIP_ERR_GAP, "gap");
	pos += ship_frame_seal(buf + pos, SHIP_ERROR, (uint32_t)n);
	write_seed(dir, "control", buf, pos);
	for (uint64_t off = 100; off < 140; off++) {
		size_t len = payload_for(off, pl, 0);

		ship_block_put(block, sizeof(block), &bl, off,
			       1700000000000ull + off / 8, pl, (uint32_t)len);
	}
	ship_data_header_encode(buf + 24, 100, 40, (uint32_t)bl,
				SHIP_CODEC_NONE);
	memcpy(buf + 48, block, bl);
	pos = ship_frame_seal(buf, SHIP_DATA, (uint32_t)(24 + bl));
	write_seed(dir, "data-plain", buf, pos);
	n = ZSTD_compress(buf + 48, sizeof(buf) - 48, block, bl, 1);
	if (ZSTD_isError(n))
		return 1;
	ship_data_header_encode(buf + 24, 100, 40, (uint32_t)bl,
				SHIP_CODEC_ZSTD);
	pos = ship_frame_seal(buf, SHIP_DATA, (uint32_t)(24 + n));
	write_seed(dir, "data-zstd", buf, pos);
	return 0;
}

/*
 * hello PORT NAME VMIN VMAX: a plain HELLO to 127.0.0.1:PORT offering
 * versions VMIN..VMAX (identity zeros, empty log); prints the answer's
 * frame type, and for an ERROR its code name and reason. For the tests of
 * refusals a real sender never provokes (VERSION).
 */
static int cmd_hello(char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct ship_hello h = { 0 };
	struct ship_frame f;
	uint8_t out[1024], in[4096];
	const char *why = NULL;
	size_t n, have = 0, used = 0;
	int fd;

	a.sin_port = htons((uint16_t)atoi(argv[2]));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	h.version_min = (uint16_t)atoi(argv[4]);
	h.version_max = (uint16_t)atoi(argv[5]);
	h.frame_bytes_max = 8u << 20;
	snprintf(h.name, sizeof(h.name), "%s", argv[3]);
	n = ship_hello_encode(out + SHIP_FRAME_HEADER_BYTES,
			      sizeof(out) - SHIP_FRAME_HEADER_BYTES, &h);
	if (n == 0)
		return 2;
	n = ship_frame_seal(out, SHIP_HELLO, (uint32_t)n);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    write(fd, out, n) != (ssize_t)n) {
		perror("hello");
		return 1;
	}
	for (;;) {
		ssize_t r = read(fd, in + have, sizeof(in) - have);

		if (r <= 0) {
			fprintf(stderr, "hello: connection closed\n");
			return 1;
		}
		have += (size_t)r;
		switch (ship_frame_parse(in, have, sizeof(in), &f, &used,
					 &why)) {
		case SHIP_PARSE_INCOMPLETE:
			if (have == sizeof(in))
				return 1;
			continue;
		case SHIP_PARSE_INVALID:
			fprintf(stderr, "hello: bad answer: %s\n", why);
			return 1;
		case SHIP_PARSE_OK:
			break;
		}
		break;
	}
	close(fd);
	if (f.type == SHIP_ERROR) {
		struct ship_error e;

		if (ship_error_decode(f.body, f.body_len, &e, &why) < 0)
			return 1;
		printf("ERROR %s %s\n", ship_err_name(e.code), e.reason);
	} else {
		printf("%s\n", ship_type_name(f.type));
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "hello"))
		return cmd_hello(argv);
	if (argc >= 3 && !strcmp(argv[1], "produce"))
		return cmd_produce(argc, argv);
	if (argc >= 4 && !strcmp(argv[1], "compare"))
		return cmd_compare(argc, argv);
	if (argc == 3 && !strcmp(argv[1], "corpus"))
		return cmd_corpus(argv[2]);
	fprintf(stderr, "usage: ship_tool produce|compare|corpus|hello ...\n");
	return 2;
}
