/*
 * ship.h - what the shipper's files share: its configuration
 * (ship_config.c, format in docs/shipper-config.md), its log lines
 * (stderr), the two roles' entry points (ship_send.c, ship_recv.c) and the
 * metrics endpoint (ship_metrics.c). Private to shipper/.
 */
#ifndef SHIP_H
#define SHIP_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHIP_PATH_MAX 1024
#define SHIP_EDGES_MAX 1024

enum ship_role {
	SHIP_ROLE_SEND,
	SHIP_ROLE_RECEIVE
};

enum ship_transport {
	SHIP_TLS,
	SHIP_PLAIN_LOOPBACK
};

struct ship_config {
	enum ship_role role;
	enum ship_transport transport;
	char tls_cert[SHIP_PATH_MAX];
	char tls_key[SHIP_PATH_MAX];
	char tls_ca[SHIP_PATH_MAX];
	char metrics_listen[256]; /* host:port, "" = off */
	uint32_t frame_bytes_max;
	uint32_t window_bytes;
	uint32_t heartbeat_ms;
	uint32_t timeout_ms;
	uint32_t handshake_timeout_ms;

	/* send */
	char receiver[256]; /* host:port or [v6]:port */
	char tls_server_name[256];
	char edge[65]; /* SHIP_NAME_MAX + 1 */
	char log_dir[SHIP_PATH_MAX];
	char consumer[65];
	uint32_t batch_bytes;
	uint32_t batch_records;
	int zstd_level; /* 0 = no compression */
	uint32_t backoff_min_ms;
	uint32_t backoff_max_ms;
	uint32_t checkpoint_interval_ms;

	/* receive */
	char listen[256];
	char data_dir[SHIP_PATH_MAX];
	char *edges[SHIP_EDGES_MAX]; /* allowed edge names */
	size_t nedges;
	uint32_t connections_max;
	uint32_t records_max; /* per DATA frame */
	uint32_t record_bytes_max;
	uint64_t disk_budget_bytes; /* per edge canonical log, 0 = none */
	uint64_t segment_bytes_max;
	uint32_t commits_in_flight; /* canonical log: group commits in flight */
};

/*
 * Load path (may be NULL: defaults and environment only) for role, then
 * apply ALOG_SHIP_<KEY> environment overrides, then validate. Returns 0 or
 * -EINVAL with a message in err (errcap bytes). Free with
 * ship_config_free().
 */
int ship_config_load(struct ship_config *cfg, enum ship_role role,
		     const char *path, char *err, size_t errcap);
void ship_config_free(struct ship_config *cfg);
bool ship_config_edge_allowed(const struct ship_config *cfg, const char *name);

/* host:port (or [v6]:port) split into host and port; 0 or -EINVAL. */
int ship_split_hostport(const char *s, char *host, size_t hostcap, char *port,
			size_t portcap);

/* One log line to stderr: time, role, level, message. Never payloads. */
void ship_logf(const char *level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
#define ship_info(...) ship_logf("info", __VA_ARGS__)
#define ship_warn(...) ship_logf("warn", __VA_ARGS__)
#define ship_error(...) ship_logf("error", __VA_ARGS__)
extern const char *ship_log_role;

/* Set by SIGTERM/SIGINT: finish what is in flight and exit 0. Read by
 * every connection thread, so atomic (lock-free, safe in a handler). */
extern atomic_int ship_stop;

/* The roles: return the process exit status. */
int ship_send_run(const struct ship_config *cfg);
int ship_recv_run(const struct ship_config *cfg);

/*
 * Metrics endpoint: a thread serving GET /metrics (Prometheus text) on
 * addr, whose body fill() writes into buf (cap bytes) and returns the
 * length. fill is called from the metrics thread. Returns NULL and *err.
 */
typedef size_t (*ship_metrics_fill_fn)(void *arg, char *buf, size_t cap);
struct ship_metrics;
struct ship_metrics *ship_metrics_start(const char *addr,
					ship_metrics_fill_fn fill, void *arg,
					int *err);
void ship_metrics_stop(struct ship_metrics *m);

/* `alog-shipper status ADDR`: fetch and print the metrics. Exit status. */
int ship_status_run(const char *addr);

/* Exit statuses. */
#define SHIP_EXIT_OK 0
#define SHIP_EXIT_USAGE 1
#define SHIP_EXIT_FAILED 2
#define SHIP_EXIT_STORAGE 3 /* canonical log failed: fail-stop */
#define SHIP_EXIT_GAP 4     /* GAP or IDENTITY: operator needed */

#endif /* SHIP_H */
