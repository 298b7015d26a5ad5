/*
 * edge_server.h - the edge's HTTP/1.1 server: workers, connections,
 * requests. Private to edge/.
 *
 * Each worker thread owns an io_uring and the connections it accepted;
 * all workers accept on one listening socket. A connection handles one request at a time
 * (pipelined requests wait, already received, in its input buffer). A
 * request that stores events appends them to the log and parks until the
 * log's commit thread calls back; the callback queues the connection on its
 * worker's done list and wakes the worker through an eventfd that the ring
 * is reading. Only then is the answer (2xx, or 503) sent.
 */
#ifndef EDGE_SERVER_H
#define EDGE_SERVER_H

#include <http_parser.h>
#include <liburing.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "alog_log.h"
#include "edge_config.h"
#include "edge_metrics.h"
#include "edge_privacy.h"

struct edge_worker;

/* Header values the router uses; views into the request arena. */
enum edge_hdr {
	EDGE_H_HOST,
	EDGE_H_ORIGIN,
	EDGE_H_CONTENT_TYPE,
	EDGE_H_USER_AGENT,
	EDGE_H_XFF,
	EDGE_H_X_REAL_IP,
	EDGE_H_DNT,
	EDGE_H_SEC_GPC,
	EDGE_H_AUTHORIZATION,
	EDGE_H_ACR_HEADERS, /* Access-Control-Request-Headers */
	EDGE_H_ACCEPT_ENCODING,
	EDGE_H_COUNT
};

struct edge_request {
	/* Arena for the request line and headers: limits.header_bytes. */
	char *arena;
	size_t arena_len;
	size_t url_off, url_len;
	size_t hdr_off[EDGE_H_COUNT], hdr_len[EDGE_H_COUNT];
	bool hdr_seen[EDGE_H_COUNT];
	int cur_hdr;      /* header whose value is being read, or -1 */
	bool in_value;    /* last callback was a value */
	size_t field_off; /* current header name in the arena */
	uint32_t nheaders;
	/* Body after de-chunking: limits.body_bytes. */
	char *body;
	size_t body_len, body_cap;
	bool complete;
	int error_status; /* 431/413/400 found while parsing, or 0 */
	uint64_t start_ns;
};

enum edge_conn_state {
	EDGE_CONN_READING, /* receiving / parsing a request */
	EDGE_CONN_WAITING, /* events handed to the log, waiting for durable */
	EDGE_CONN_WRITING, /* sending a response */
	EDGE_CONN_CLOSING, /* waiting for in-flight operations to finish */
};

struct edge_conn {
	int fd;
	struct edge_worker *w;
	struct edge_addr peer;
	enum edge_conn_state state;
	http_parser parser;
	char *in;
	size_t in_len, in_cap;
	struct edge_request req;
	/* Response. */
	char *out;
	size_t out_len, out_sent, out_cap;
	bool close_after; /* Connection: close, or an error that ends it */
	/* Operations in flight on the ring (recv, send): freed at zero. */
	int ops;
	bool recv_armed;
	uint64_t last_active_ns;
	/* Durable callback. */
	struct edge_conn *done_next;
	int done_status;
	uint64_t append_ns;
	/* What to answer once durable. */
	enum edge_route route;
	bool cors_ok; /* Origin is an allowed domain of the site */
	unsigned nevents;
	uint8_t first_id[16];
	uint8_t *records; /* encoded events, freed after the append */
	struct edge_conn *prev, *next; /* worker's list */
};

struct edge_server;

struct edge_worker {
	int id;
	struct edge_server *srv;
	struct io_uring ring;
	int listen_fd;
	int event_fd;
	uint64_t event_buf;
	pthread_t thread;
	pthread_mutex_t done_mu;
	struct edge_conn *done_head;
	struct edge_conn *conns;
	size_t nconns;
	bool accepting;
	struct __kernel_timespec tick;
	struct sockaddr_storage accept_addr;
	socklen_t accept_addrlen;
};

struct edge_server {
	struct edge_config *cfg;   /* swapped on SIGHUP under cfg_lock */
	struct edge_limits limits; /* fixed at start; read without a lock */
	pthread_rwlock_t cfg_lock;
	struct alog_log *log;
	struct edge_salts *salts;
	struct edge_geo *geo;
	struct edge_ratelimit *rl_site, *rl_client;
	struct edge_worker *workers;
	unsigned nworkers;
	int listen_fd; /* one socket, accepted on by every worker */
	int stopping;  /* atomic: read with edge_server_stopping() */
	/* Extra JSON members for /health (shipper lag), or NULL. */
	const char *(*shipper_json)(struct edge_server *srv);
};

static inline bool edge_server_stopping(struct edge_server *srv)
{
	return __atomic_load_n(&srv->stopping, __ATOMIC_ACQUIRE);
}

/* Start nworkers threads listening on cfg's address. 0 or -errno. */
int edge_server_start(struct edge_server *srv);
/* Stop accepting, finish in-flight requests, join the workers. */
void edge_server_stop(struct edge_server *srv);

/* Router: handle a complete request on c (edge_router.c). Either queues a
 * response (edge_conn_respond) or hands events to the log and parks c. */
void edge_route_request(struct edge_conn *c);
/* Called by the worker when c's events became durable (or failed). */
void edge_route_durable(struct edge_conn *c);

/* Queue a response on c and start sending it. body may be NULL. */
void edge_conn_respond(struct edge_conn *c, int status, const char *ctype,
		       const char *extra_headers, const char *body,
		       size_t body_len);

/* A request header's value, or NULL (len 0) if absent. */
const char *edge_req_header(const struct edge_conn *c, enum edge_hdr h,
			    size_t *len);

/* The log's durable callback for a connection's append (edge_http.c). */
void edge_conn_durable_cb(void *arg, int status, uint64_t first_offset);

/* The ~1 KB of alog's tracker (edge_script.c, generated at build). */
extern const char edge_script_js[];
extern const size_t edge_script_js_len;

#endif /* EDGE_SERVER_H */
