/*
 * ship_metrics.c - the Prometheus endpoint both roles expose (GET /metrics,
 * text format 0.0.4) from a small thread of its own, and the `status`
 * command that fetches it. Requests are bounded: 4 KiB, 1 s to arrive.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ship.h"
#include "ship_conn.h"

#define METRICS_BODY_MAX (4u << 20) /* ~1.8 KB per edge, 1,024 edges */
#define METRICS_REQUEST_MAX 4096

struct ship_metrics {
	int fd;
	int stop_pipe[2];
	pthread_t tid;
	ship_metrics_fill_fn fill;
	void *arg;
	char *body;
};

static void write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };

			if (poll(&pfd, 1, 1000) <= 0)
				return;
			continue;
		}
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

static void serve_one(struct ship_metrics *m, int fd)
{
	char req[METRICS_REQUEST_MAX + 1], hdr[256];
	size_t got = 0, len;
	bool ok;

	/* Read the request line and headers, bounded in size and time. */
	while (got < METRICS_REQUEST_MAX) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, 1000) <= 0)
			return;
		n = recv(fd, req + got, METRICS_REQUEST_MAX - got, 0);
		if (n <= 0)
			return;
		got += (size_t)n;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	req[got] = '\0';
	ok = strncmp(req, "GET /metrics ", 13) == 0 ||
	     strncmp(req, "GET / ", 6) == 0;
	if (!ok) {
		static const char nf[] = "HTTP/1.0 404 Not Found\r\n"
					 "Content-Length: 0\r\n\r\n";

		write_all(fd, nf, sizeof(nf) - 1);
		return;
	}
	len = m->fill(m->arg, m->body, METRICS_BODY_MAX);
	snprintf(hdr, sizeof(hdr),
		 "HTTP/1.0 200 OK\r\nContent-Type: text/plain; "
		 "version=0.0.4\r\nContent-Length: %zu\r\n\r\n",
		 len);
	write_all(fd, hdr, strlen(hdr));
	write_all(fd, m->body, len);
}

static void *metrics_main(void *arg)
{
	struct ship_metrics *m = arg;

	for (;;) {
		struct pollfd pfd[2] = { { .fd = m->fd, .events = POLLIN },
					 { .fd = m->stop_pipe[0],
					   .events = POLLIN } };
		int fd;

		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		fd = accept4(m->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve_one(m, fd);
		close(fd);
	}
	return NULL;
}

struct ship_metrics *ship_metrics_start(const char *addr,
					ship_metrics_fill_fn fill, void *arg,
					int *err)
{
	struct ship_metrics *m = calloc(1, sizeof(*m));
	char why[256];

	if (!m) {
		*err = -ENOMEM;
		return NULL;
	}
	m->fill = fill;
	m->arg = arg;
	m->stop_pipe[0] = m->stop_pipe[1] = -1;
	m->body = malloc(METRICS_BODY_MAX);
	m->fd = ship_listen(addr, false, why, sizeof(why));
	if (m->fd < 0) {
		*err = m->fd;
		goto out_free;
	}
	if (!m->body || pipe2(m->stop_pipe, O_CLOEXEC) < 0) {
		*err = -ENOMEM;
		goto out_free;
	}
	*err = -pthread_create(&m->tid, NULL, metrics_main, m);
	if (*err == 0)
		return m;
out_free:
	if (m->fd >= 0)
		close(m->fd);
	if (m->stop_pipe[0] >= 0) {
		close(m->stop_pipe[0]);
		close(m->stop_pipe[1]);
	}
	free(m->body);
	free(m);
	return NULL;
}

void ship_metrics_stop(struct ship_metrics *m)
{
	if (!m)
		return;
	if (write(m->stop_pipe[1], "x", 1) == 1)
		pthread_join(m->tid, NULL);
	close(m->stop_pipe[0]);
	close(m->stop_pipe[1]);
	close(m->fd);
	free(m->body);
	free(m);
}

int ship_status_run(const char *addr)
{
	static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
	char why[256], *buf, *body, *line;
	size_t got = 0, cap = METRICS_BODY_MAX + 1024;
	int fd;

	fd = ship_connect(addr, false, 2000, why, sizeof(why));
	if (fd < 0) {
		fprintf(stderr, "alog-shipper status: %s\n", why);
		return SHIP_EXIT_FAILED;
	}
	buf = malloc(cap + 1);
	if (!buf) {
		close(fd);
		return SHIP_EXIT_FAILED;
	}
	write_all(fd, req, sizeof(req) - 1);
	while (got < cap) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, 2000) <= 0)
			break;
		n = recv(fd, buf + got, cap - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	body = strstr(buf, "\r\n\r\n");
	if (strncmp(buf, "HTTP/1.0 200", 12) != 0 || !body) {
		fprintf(stderr, "alog-shipper status: no metrics from %s\n",
			addr);
		free(buf);
		return SHIP_EXIT_FAILED;
	}
	/* The samples, without the HELP/TYPE comments. */
	for (line = strtok(body + 4, "\n"); line; line = strtok(NULL, "\n"))
		if (line[0] != '#')
			printf("%s\n", line);
	free(buf);
	return SHIP_EXIT_OK;
}
