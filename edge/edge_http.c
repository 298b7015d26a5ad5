/*
 * edge_http.c - connections: the io_uring loop of each worker, HTTP/1.1
 * parsing with libhttp-parser, limits and timeouts, and sending answers.
 *
 * The parser's callbacks copy the request line and headers into a bounded
 * arena and the de-chunked body into a bounded buffer, so the receive
 * buffer stays small whatever the body size. The parser is paused at the
 * end of each message: bytes of a pipelined next request stay in the
 * receive buffer until the current answer has been sent.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "alog_common.h"
#include "edge_server.h"

#define EDGE_IN_BYTES (16 * 1024)
#define EDGE_RING_ENTRIES 1024
#define EDGE_OUT_BYTES_MAX (4u << 20)

enum op_tag {
	OP_ACCEPT = 1,
	OP_RECV = 2,
	OP_SEND = 3,
	OP_EVENTFD = 4,
	OP_TICK = 5,
};

static inline uint64_t op_data(void *p, enum op_tag t)
{
	return (uint64_t)(uintptr_t)p | (uint64_t)t;
}

static struct io_uring_sqe *get_sqe(struct edge_worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	if (!sqe) {
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
	}
	return sqe;
}

static void arm_accept(struct edge_worker *w)
{
	struct io_uring_sqe *sqe = get_sqe(w);

	w->accept_addrlen = sizeof(w->accept_addr);
	io_uring_prep_accept(sqe, w->listen_fd,
			     (struct sockaddr *)&w->accept_addr,
			     &w->accept_addrlen, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, op_data(w, OP_ACCEPT));
}

static void arm_eventfd(struct edge_worker *w)
{
	struct io_uring_sqe *sqe = get_sqe(w);

	io_uring_prep_read(sqe, w->event_fd, &w->event_buf,
			   sizeof(w->event_buf), 0);
	io_uring_sqe_set_data64(sqe, op_data(w, OP_EVENTFD));
}

static void arm_tick(struct edge_worker *w)
{
	struct io_uring_sqe *sqe = get_sqe(w);

	w->tick.tv_sec = 0;
	w->tick.tv_nsec = 250 * 1000 * 1000;
	io_uring_prep_timeout(sqe, &w->tick, 0, 0);
	io_uring_sqe_set_data64(sqe, op_data(w, OP_TICK));
}

/*
 * poll_first: right after a response the client has usually not sent its
 * next request yet, so a receive tried at once would fail with EAGAIN
 * before the kernel arms its poll; IORING_RECVSEND_POLL_FIRST skips that
 * try.
 */
static void arm_recv(struct edge_conn *c, bool poll_first)
{
	struct io_uring_sqe *sqe;

	if (c->recv_armed || c->state != EDGE_CONN_READING ||
	    c->in_len >= c->in_cap)
		return;
	sqe = get_sqe(c->w);
	io_uring_prep_recv(sqe, c->fd, c->in + c->in_len, c->in_cap - c->in_len,
			   0);
	if (poll_first)
		sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
	io_uring_sqe_set_data64(sqe, op_data(c, OP_RECV));
	c->recv_armed = true;
	c->ops++;
}

static void arm_send(struct edge_conn *c)
{
	struct io_uring_sqe *sqe = get_sqe(c->w);

	io_uring_prep_send(sqe, c->fd, c->out + c->out_sent,
			   c->out_len - c->out_sent, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, op_data(c, OP_SEND));
	c->ops++;
}

/* ---- Connection lifetime --------------------------------------------- */

static void conn_free(struct edge_conn *c)
{
	struct edge_worker *w = c->w;

	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c->req.arena);
	free(c->req.body);
	free(c->records);
	free(c);
	edge_metrics_conn(-1);
}

static void conn_close(struct edge_conn *c)
{
	if (c->state == EDGE_CONN_CLOSING)
		return;
	c->state = EDGE_CONN_CLOSING;
	shutdown(c->fd, SHUT_RDWR); /* completes a pending recv */
	if (c->ops == 0)
		conn_free(c);
}

/* An operation of c finished; true if c is gone. */
static bool conn_op_done(struct edge_conn *c)
{
	c->ops--;
	if (c->state == EDGE_CONN_CLOSING && c->ops == 0) {
		conn_free(c);
		return true;
	}
	return false;
}

static void request_reset(struct edge_request *r)
{
	r->arena_len = 0;
	r->url_off = r->url_len = 0;
	memset(r->hdr_seen, 0, sizeof(r->hdr_seen));
	r->cur_hdr = -1;
	r->in_value = false;
	r->nheaders = 0;
	r->body_len = 0;
	r->complete = false;
	r->error_status = 0;
	r->start_ns = 0;
}

/* ---- Parser callbacks ------------------------------------------------- */

static const struct {
	const char *name;
	enum edge_hdr h;
} known_headers[] = {
	{ "host", EDGE_H_HOST },
	{ "origin", EDGE_H_ORIGIN },
	{ "content-type", EDGE_H_CONTENT_TYPE },
	{ "user-agent", EDGE_H_USER_AGENT },
	{ "x-forwarded-for", EDGE_H_XFF },
	{ "x-real-ip", EDGE_H_X_REAL_IP },
	{ "dnt", EDGE_H_DNT },
	{ "sec-gpc", EDGE_H_SEC_GPC },
	{ "authorization", EDGE_H_AUTHORIZATION },
	{ "access-control-request-headers", EDGE_H_ACR_HEADERS },
	{ "accept-encoding", EDGE_H_ACCEPT_ENCODING },
};

static struct edge_conn *conn_of(http_parser *p)
{
	return p->data;
}

static int arena_put(struct edge_conn *c, const char *at, size_t len)
{
	struct edge_request *r = &c->req;

	if (len > c->w->srv->limits.header_bytes - r->arena_len) {
		r->error_status = 431;
		return -1;
	}
	memcpy(r->arena + r->arena_len, at, len);
	r->arena_len += len;
	return 0;
}

static int on_message_begin(http_parser *p)
{
	struct edge_conn *c = conn_of(p);

	request_reset(&c->req);
	c->req.start_ns = alog_mono_ns();
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct edge_conn *c = conn_of(p);

	if (c->req.url_len == 0)
		c->req.url_off = c->req.arena_len;
	c->req.url_len += len;
	return arena_put(c, at, len);
}

static void header_finish(struct edge_conn *c)
{
	struct edge_request *r = &c->req;

	if (r->in_value && r->cur_hdr >= 0) {
		r->hdr_len[r->cur_hdr] = r->arena_len - r->hdr_off[r->cur_hdr];
		r->hdr_seen[r->cur_hdr] = true;
	}
	r->in_value = false;
	r->cur_hdr = -1;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct edge_conn *c = conn_of(p);
	struct edge_request *r = &c->req;

	if (r->in_value || r->nheaders == 0) {
		header_finish(c);
		if (++r->nheaders > c->w->srv->limits.headers) {
			r->error_status = 431;
			return -1;
		}
		r->field_off = r->arena_len;
	}
	return arena_put(c, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct edge_conn *c = conn_of(p);
	struct edge_request *r = &c->req;

	if (!r->in_value) {
		size_t flen = r->arena_len - r->field_off;

		r->cur_hdr = -1;
		for (size_t i = 0; i < ALOG_ARRAY_LEN(known_headers); i++) {
			if (strlen(known_headers[i].name) == flen &&
			    strncasecmp(known_headers[i].name,
					r->arena + r->field_off, flen) == 0) {
				r->cur_hdr = (int)known_headers[i].h;
				break;
			}
		}
		if (r->cur_hdr >= 0)
			r->hdr_off[r->cur_hdr] = r->arena_len;
		/* Interim answer for clients that wait for it. */
		if (flen == 6 &&
		    strncasecmp(r->arena + r->field_off, "expect", 6) == 0 &&
		    len >= 12 && strncasecmp(at, "100-continue", 12) == 0)
			(void)!send(c->fd, "HTTP/1.1 100 Continue\r\n\r\n", 25,
				    MSG_NOSIGNAL | MSG_DONTWAIT);
		r->in_value = true;
	}
	return arena_put(c, at, len);
}

static int on_headers_complete(http_parser *p)
{
	struct edge_conn *c = conn_of(p);

	header_finish(c);
	if ((p->flags & F_CONTENTLENGTH) &&
	    p->content_length > c->w->srv->limits.body_bytes) {
		c->req.error_status = 413;
		return -1;
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct edge_conn *c = conn_of(p);
	struct edge_request *r = &c->req;
	size_t max = c->w->srv->limits.body_bytes;

	if (len > max - r->body_len) {
		r->error_status = 413;
		return -1;
	}
	if (r->body_len + len > r->body_cap) {
		size_t cap = r->body_cap ? r->body_cap : 4096;
		char *nb;

		while (cap < r->body_len + len)
			cap *= 2;
		if (cap > max)
			cap = max;
		nb = realloc(r->body, cap);
		if (!nb) {
			r->error_status = 503;
			return -1;
		}
		r->body = nb;
		r->body_cap = cap;
	}
	memcpy(r->body + r->body_len, at, len);
	r->body_len += len;
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct edge_conn *c = conn_of(p);

	c->req.complete = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

const char *edge_req_header(const struct edge_conn *c, enum edge_hdr h,
			    size_t *len)
{
	if (!c->req.hdr_seen[h]) {
		*len = 0;
		return NULL;
	}
	*len = c->req.hdr_len[h];
	return c->req.arena + c->req.hdr_off[h];
}

/* ---- Responses -------------------------------------------------------- */

static const char *status_text(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	default:
		return "Internal Server Error";
	}
}

void edge_conn_respond(struct edge_conn *c, int status, const char *ctype,
		       const char *extra_headers, const char *body,
		       size_t body_len)
{
	char head[1024];
	int n;
	size_t need;

	if (c->state == EDGE_CONN_CLOSING)
		return;
	if (!c->req.complete || !http_should_keep_alive(&c->parser) ||
	    edge_server_stopping(c->w->srv))
		c->close_after = true;
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s%s%s%s"
		     "Connection: %s\r\n\r\n",
		     status, status_text(status), body_len,
		     ctype ? "Content-Type: " : "", ctype ? ctype : "",
		     ctype ? "\r\n" : "", extra_headers ? extra_headers : "",
		     c->close_after ? "close" : "keep-alive");
	if (n < 0 || (size_t)n >= sizeof(head))
		n = snprintf(head, sizeof(head),
			     "HTTP/1.1 500 Internal Server Error\r\n"
			     "Content-Length: 0\r\nConnection: close\r\n\r\n");
	need = (size_t)n + body_len;
	if (need > EDGE_OUT_BYTES_MAX) {
		conn_close(c);
		return;
	}
	if (need > c->out_cap) {
		char *nb = realloc(c->out, need);

		if (!nb) {
			conn_close(c);
			return;
		}
		c->out = nb;
		c->out_cap = need;
	}
	memcpy(c->out, head, (size_t)n);
	if (body_len)
		memcpy(c->out + n, body, body_len);
	c->out_len = need;
	c->out_sent = 0;
	c->state = EDGE_CONN_WRITING;
	arm_send(c);
}

/* ---- Reading and parsing ---------------------------------------------- */

static void conn_parse(struct edge_conn *c, bool after_response)
{
	struct edge_request *r = &c->req;
	size_t n;
	enum http_errno e;

	if (c->in_len == 0) {
		arm_recv(c, after_response);
		return;
	}
	n = http_parser_execute(&c->parser, &parser_settings, c->in, c->in_len);
	e = HTTP_PARSER_ERRNO(&c->parser);
	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= n;
	if (e == HPE_PAUSED) {
		http_parser_pause(&c->parser, 0);
		c->state = EDGE_CONN_WAITING; /* until the router answers */
		edge_route_request(c);
		return;
	}
	if (e != HPE_OK) {
		int status = r->error_status ? r->error_status : 400;
		char body[160];
		int bl =
			snprintf(body, sizeof(body),
				 "{\"success\":false,\"error\":{\"field\":\"\","
				 "\"message\":\"%s\"}}\n",
				 status == 400 ? http_errno_description(e) :
				 status == 413 ? "body too large" :
						 "headers too large");

		edge_metrics_request(EDGE_R_OTHER, status);
		c->close_after = true;
		edge_conn_respond(c, status, "application/json", NULL, body,
				  (size_t)bl);
		return;
	}
	arm_recv(c, false);
}

static void on_recv(struct edge_conn *c, int res)
{
	c->recv_armed = false;
	if (conn_op_done(c))
		return;
	if (c->state == EDGE_CONN_CLOSING)
		return;
	if (res <= 0) {
		conn_close(c);
		return;
	}
	c->in_len += (size_t)res;
	c->last_active_ns = alog_mono_ns();
	if (c->state == EDGE_CONN_READING)
		conn_parse(c, false);
}

static void on_send(struct edge_conn *c, int res)
{
	if (conn_op_done(c))
		return;
	if (c->state == EDGE_CONN_CLOSING)
		return;
	if (res < 0) {
		conn_close(c);
		return;
	}
	c->out_sent += (size_t)res;
	if (c->out_sent < c->out_len) {
		arm_send(c);
		return;
	}
	c->last_active_ns = alog_mono_ns();
	if (c->close_after) {
		conn_close(c);
		return;
	}
	/* Ready for the next request; shrink what a big one grew. */
	request_reset(&c->req);
	if (c->req.body_cap > 65536) {
		free(c->req.body);
		c->req.body = NULL;
		c->req.body_cap = 0;
	}
	if (c->out_cap > 65536) {
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
	c->state = EDGE_CONN_READING;
	conn_parse(c, true);
}

static void on_accept(struct edge_worker *w, int fd)
{
	struct edge_server *srv = w->srv;
	struct edge_conn *c;
	int one = 1;

	if (edge_server_stopping(srv) ||
	    edge_metrics_conns() >= (int64_t)srv->limits.connections) {
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->w = w;
	c->in_cap = EDGE_IN_BYTES;
	c->in = malloc(c->in_cap);
	c->req.arena = malloc(srv->limits.header_bytes);
	if (!c->in || !c->req.arena ||
	    edge_addr_from_sockaddr((struct sockaddr *)&w->accept_addr,
				    &c->peer) != 0) {
		free(c->in);
		free(c->req.arena);
		free(c);
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	request_reset(&c->req);
	c->state = EDGE_CONN_READING;
	c->last_active_ns = alog_mono_ns();
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	edge_metrics_conn(1);
	arm_recv(c, false);
}

/* Durable callbacks queued by the log's commit thread. */
static void drain_done(struct edge_worker *w)
{
	struct edge_conn *c, *next;

	pthread_mutex_lock(&w->done_mu);
	c = w->done_head;
	w->done_head = NULL;
	pthread_mutex_unlock(&w->done_mu);
	/* The list is newest first; answer in arrival order. */
	{
		struct edge_conn *rev = NULL;

		while (c) {
			next = c->done_next;
			c->done_next = rev;
			rev = c;
			c = next;
		}
		c = rev;
	}
	for (; c; c = next) {
		next = c->done_next;
		if (conn_op_done(c))
			continue;
		if (c->state == EDGE_CONN_CLOSING)
			continue;
		edge_route_durable(c);
	}
}

static void on_tick(struct edge_worker *w)
{
	const struct edge_limits *lim = &w->srv->limits;
	uint64_t now = alog_mono_ns();
	struct edge_conn *c, *next;

	for (c = w->conns; c; c = next) {
		next = c->next;
		if (c->state != EDGE_CONN_READING)
			continue;
		if (c->req.start_ns && !c->req.complete &&
		    now - c->req.start_ns >
			    (uint64_t)lim->request_timeout_ms * 1000000u) {
			static const char body[] =
				"{\"success\":false,\"error\":{\"field\":\"\","
				"\"message\":\"request not completed in time\"}}\n";

			edge_metrics_request(EDGE_R_OTHER, 408);
			c->close_after = true;
			c->state = EDGE_CONN_WAITING;
			edge_conn_respond(c, 408, "application/json", NULL,
					  body, sizeof(body) - 1);
			continue;
		}
		if (c->req.start_ns == 0 &&
		    (edge_server_stopping(w->srv) ||
		     now - c->last_active_ns >
			     (uint64_t)lim->idle_timeout_ms * 1000000u))
			conn_close(c);
	}
}

/*
 * A worker's ring has one issuer, its worker thread, and its completions
 * are run only when that thread waits for them (SINGLE_ISSUER |
 * DEFER_TASKRUN, Linux 6.1): no inter-processor interrupt per completion,
 * fewer wake-ups. bench/edge, single events, runs alternated defer, plain,
 * defer, plain: 81,197 and 90,352 requests/s against 77,827 and 78,919
 * (0.41/0.43 of nginx against 0.38/0.38), p99 1.3 ms against 2.1 ms, 12.4
 * and 10.5 us of CPU per request against 13.1 and 12.8; batches: the same
 * (bench/results/edge-2026-11-22-0817*..0821*). The ring is made disabled
 * and the worker thread enables it (IORING_REGISTER_ENABLE_RINGS, which
 * liburing 2.3 does not wrap), which makes that thread its issuer. A kernel
 * that refuses the flags gets a plain ring; so does "worker_ring": "plain"
 * in the config (bench/edge/run.sh --worker-ring plain measures the
 * difference).
 */
static int worker_ring_init(struct edge_worker *w)
{
	struct io_uring_params p = {
		.flags = IORING_SETUP_SINGLE_ISSUER |
			 IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED,
	};
	int rc;

	if (w->srv->cfg->worker_ring_plain)
		return io_uring_queue_init(EDGE_RING_ENTRIES, &w->ring, 0);
	rc = io_uring_queue_init_params(EDGE_RING_ENTRIES, &w->ring, &p);
	if (rc == -EINVAL)
		rc = io_uring_queue_init(EDGE_RING_ENTRIES, &w->ring, 0);
	return rc;
}

/* In the worker thread, before its first submission. */
static void worker_ring_enable(struct edge_worker *w)
{
	int rc;

	if (!(w->ring.flags & IORING_SETUP_R_DISABLED))
		return;
	if (syscall(__NR_io_uring_register, w->ring.ring_fd,
		    IORING_REGISTER_ENABLE_RINGS, NULL, 0) == 0)
		return;
	/* Nothing is armed yet: a plain ring instead. */
	io_uring_queue_exit(&w->ring);
	rc = io_uring_queue_init(EDGE_RING_ENTRIES, &w->ring, 0);
	if (rc < 0) {
		/* Memory for rings (RLIMIT_MEMLOCK) ran out between start
		 * and now: nothing sensible is left to do. */
		fprintf(stderr, "alog-edge: worker %d: no io_uring: %s\n",
			w->id, strerror(-rc));
		abort();
	}
}

static void *worker_main(void *arg)
{
	struct edge_worker *w = arg;
	struct io_uring_cqe *cqe;

	worker_ring_enable(w);
	arm_accept(w);
	arm_eventfd(w);
	arm_tick(w);
	for (;;) {
		unsigned head, seen = 0;

		if (edge_server_stopping(w->srv) && w->accepting) {
			/* Stop accepting: the pending accept is cancelled
			 * with the socket. */
			w->accepting = false;
			shutdown(w->listen_fd, SHUT_RDWR);
		}
		if (edge_server_stopping(w->srv) && w->conns == NULL)
			break;
		io_uring_submit_and_wait(&w->ring, 1);
		io_uring_for_each_cqe(&w->ring, head, cqe)
		{
			uint64_t d = io_uring_cqe_get_data64(cqe);
			void *p = (void *)(uintptr_t)(d & ~7ull);
			int res = cqe->res;

			seen++;
			switch ((enum op_tag)(d & 7)) {
			case OP_ACCEPT:
				if (res >= 0)
					on_accept(w, res);
				if (w->accepting)
					arm_accept(w);
				break;
			case OP_RECV:
				on_recv(p, res);
				break;
			case OP_SEND:
				on_send(p, res);
				break;
			case OP_EVENTFD:
				drain_done(w);
				arm_eventfd(w);
				break;
			case OP_TICK:
				on_tick(w);
				arm_tick(w);
				break;
			}
		}
		io_uring_cq_advance(&w->ring, seen);
	}
	return NULL;
}

/* ---- Start / stop ----------------------------------------------------- */

static int listen_socket(const struct edge_config *cfg, int *out)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, cfg->listen_host,
		      &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons(cfg->listen_port);
		sl = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, cfg->listen_host,
			     &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port =
			htons(cfg->listen_port);
		sl = sizeof(struct sockaddr_in6);
	} else {
		return -EINVAL;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* No SO_REUSEPORT: a second edge on the same address must fail to
	 * start, not silently split the traffic between two logs. The
	 * workers share this one socket instead. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0 ||
	    listen(fd, 1024) != 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

int edge_server_start(struct edge_server *srv)
{
	unsigned ready = 0, started = 0;
	int rc;

	srv->workers = calloc(srv->nworkers, sizeof(*srv->workers));
	if (!srv->workers)
		return -ENOMEM;
	rc = listen_socket(srv->cfg, &srv->listen_fd);
	if (rc < 0)
		goto out_free;
	for (; ready < srv->nworkers; ready++) {
		struct edge_worker *w = &srv->workers[ready];

		w->id = (int)ready;
		w->srv = srv;
		pthread_mutex_init(&w->done_mu, NULL);
		w->listen_fd = srv->listen_fd; /* shared; each worker accepts */
		w->event_fd = eventfd(0, EFD_CLOEXEC);
		if (w->event_fd < 0) {
			rc = -errno;
			goto out_undo;
		}
		rc = worker_ring_init(w);
		if (rc < 0) {
			close(w->event_fd);
			goto out_undo;
		}
		w->accepting = true;
	}
	for (; started < srv->nworkers; started++) {
		rc = -pthread_create(&srv->workers[started].thread, NULL,
				     worker_main, &srv->workers[started]);
		if (rc < 0)
			goto out_stop;
	}
	return 0;

out_stop:
	/* Undo the workers that did not start, stop those that did. */
	for (unsigned i = started; i < ready; i++) {
		io_uring_queue_exit(&srv->workers[i].ring);
		close(srv->workers[i].event_fd);
	}
	srv->nworkers = started;
	edge_server_stop(srv);
	return rc;
out_undo:
	for (unsigned i = 0; i < ready; i++) {
		io_uring_queue_exit(&srv->workers[i].ring);
		close(srv->workers[i].event_fd);
	}
	close(srv->listen_fd);
out_free:
	free(srv->workers);
	srv->workers = NULL;
	return rc;
}

void edge_server_stop(struct edge_server *srv)
{
	__atomic_store_n(&srv->stopping, 1, __ATOMIC_SEQ_CST);
	for (unsigned i = 0; i < srv->nworkers; i++) {
		uint64_t one = 1;

		(void)!write(srv->workers[i].event_fd, &one, sizeof(one));
	}
	for (unsigned i = 0; i < srv->nworkers; i++) {
		pthread_join(srv->workers[i].thread, NULL);
		io_uring_queue_exit(&srv->workers[i].ring);
		close(srv->workers[i].event_fd);
	}
	close(srv->listen_fd);
	free(srv->workers);
	srv->workers = NULL;
}

/* Called by the log's commit thread (see edge_router.c). */
void edge_conn_durable_cb(void *arg, int status, uint64_t first_offset);
void edge_conn_durable_cb(void *arg, int status, uint64_t first_offset)
{
	struct edge_conn *c = arg;
	struct edge_worker *w = c->w;
	bool wake;

	(void)first_offset;
	c->done_status = status;
	/*
	 * Wake the worker while holding done_mu: once it is released the
	 * worker may answer c, see no more connections, exit and be freed
	 * by edge_server_stop(), so w must not be touched after the unlock
	 * (ThreadSanitizer found the use after free). An eventfd write does
	 * not block here: the counter is far from its limit.
	 */
	pthread_mutex_lock(&w->done_mu);
	wake = w->done_head == NULL;
	c->done_next = w->done_head;
	w->done_head = c;
	if (wake) {
		uint64_t one = 1;

		(void)!write(w->event_fd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&w->done_mu);
}
