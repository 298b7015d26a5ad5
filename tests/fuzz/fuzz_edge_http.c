/*
 * fuzz_edge_http.c - libFuzzer target for the edge's request path: HTTP
 * bytes in, status out. A real alog-edge server (one worker, its io_uring,
 * a log in write mode under /tmp) runs inside the fuzzer process; each
 * input is sent on a fresh loopback connection whose write side is then
 * closed, and the answer is read until the server closes. A crash or
 * sanitizer report in the server is the fuzzer's finding; so is an answer
 * that is not an HTTP/1.1 status line, or a connection the server never
 * closes (a hang).
 *
 * libFuzzer's -timeout arms a periodic SIGALRM (every timeout/2 + 1 s)
 * whose handler is installed without SA_RESTART, so it interrupts the
 * blocking connect, send and recv of this thread with EINTR: each call
 * is retried, against a deadline for recv, and only a timeout counts as
 * a hang.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "alog_common.h"
#include "edge_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct edge_server srv;
static char dir[64];

/* The server's log and config go with the process (the log stays open in
 * the worker threads until then; unlinked files are fine). */
static void remove_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0) {
		/* nothing more to do on the way out */
	}
}
static uint16_t port;

static void start_server(void)
{
	static const char cfgjson[] =
		"{\"listen\":\"127.0.0.1:1\",\"workers\":1,"
		"\"limits\":{\"body_bytes\":65536,\"batch_events\":50,"
		"\"request_timeout_ms\":2000},"
		"\"sites\":[{\"id\":\"example\",\"domains\":[\"example.com\"]},"
		"{\"id\":\"k\",\"write_key\":\"w\",\"keep_dnt\":true,"
		"\"bots\":\"flag\"}]}";
	char path[256], err[256];
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	FILE *f;
	int e;

	snprintf(dir, sizeof(dir), "/tmp/alog-fuzz-edge-%d", (int)getpid());
	snprintf(path, sizeof(path), "rm -rf %s && mkdir -p %s", dir, dir);
	if (system(path) != 0)
		abort();
	atexit(remove_dir); /* libFuzzer and the replay both exit() */
	snprintf(path, sizeof(path), "%s/edge.json", dir);
	f = fopen(path, "w");
	if (!f || fputs(cfgjson, f) < 0 || fclose(f) != 0)
		abort();
	srv.cfg = edge_config_load(path, err, sizeof(err));
	if (!srv.cfg) {
		fprintf(stderr, "config: %s\n", err);
		abort();
	}
	srv.cfg->listen_port = 0; /* ephemeral */
	snprintf(srv.cfg->log_dir, sizeof(srv.cfg->log_dir), "%s/log", dir);
	srv.cfg->log.durability = ALOG_DURABLE_WRITE;
	srv.cfg->log.segment_bytes_max = 64ull << 20;
	pthread_rwlock_init(&srv.cfg_lock, NULL);
	srv.limits = srv.cfg->limits;
	srv.nworkers = 1;
	srv.log = alog_log_open(srv.cfg->log_dir, &srv.cfg->log, &e);
	srv.salts = edge_salts_open(NULL, alog_now_ms(), &e);
	if (!srv.log || !srv.salts || edge_server_start(&srv) != 0)
		abort();
	if (getsockname(srv.workers[0].listen_fd, (struct sockaddr *)&sa, &sl))
		abort();
	port = ntohs(sa.sin_port);
}

static void set_recv_timeout(int fd, uint64_t ns)
{
	uint64_t us = ns / 1000 + 1; /* zero would mean no timeout */
	struct timeval tv = { .tv_sec = (time_t)(us / 1000000),
			      .tv_usec = (suseconds_t)(us % 1000000) };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* Send all of data; false if the server closed the connection first. */
static bool send_all(int fd, const uint8_t *data, size_t size)
{
	while (size) {
		ssize_t n = send(fd, data, size, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return false;
		data += n;
		size -= (size_t)n;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	/* Generous: a loaded CI machine (fdatasyncs of other tests) can stall
	 * a worker for seconds; a real hang is still caught. */
	const uint64_t answer_timeout_ns = 30ull * 1000000000u;
	char buf[4096], sink[4096];
	size_t got = 0;
	uint64_t deadline_ns;
	int fd;

	if (!port)
		start_server();
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* A loaded machine can refuse a connection now and then (ephemeral
	 * ports, a full accept queue): retry for up to 10 s, then it is real.
	 * An interrupted connect goes on in the background; a fresh socket
	 * is simpler than waiting for it. */
	for (int tries = 0;; tries++) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd >= 0 &&
		    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if (tries == 1000) {
			fprintf(stderr, "cannot connect to the edge: %s\n",
				strerror(errno));
			abort();
		}
		if (fd >= 0)
			close(fd);
		usleep(10000);
	}
	if (!send_all(fd, data, size)) {
		close(fd);
		return 0; /* the server closed early (e.g. on a bad request) */
	}
	shutdown(fd, SHUT_WR);
	deadline_ns = alog_mono_ns() + answer_timeout_ns;
	set_recv_timeout(fd, answer_timeout_ns);
	for (;;) {
		/* Keep the start of the answer; drain the rest. */
		ssize_t n = got < sizeof(buf) ?
				    recv(fd, buf + got, sizeof(buf) - got, 0) :
				    recv(fd, sink, sizeof(sink), 0);

		if (n == 0)
			break;
		if (n < 0 && errno == EINTR) {
			uint64_t now_ns = alog_mono_ns();

			if (now_ns < deadline_ns) {
				set_recv_timeout(fd, deadline_ns - now_ns);
				continue;
			}
			errno = ETIMEDOUT;
		}
		if (n < 0) {
			if (errno == ECONNRESET)
				break;
			fprintf(stderr,
				"the edge never closed the connection: %s\n",
				strerror(errno));
			abort();
		}
		if (got < sizeof(buf))
			got += (size_t)n;
	}
	close(fd);
	if (got > 0 && (got < 12 || memcmp(buf, "HTTP/1.1 ", 9) != 0 ||
			buf[9] < '1' || buf[9] > '5')) {
		fprintf(stderr, "not an HTTP answer: %.*s\n", (int)got, buf);
		abort();
	}
	return 0;
}
