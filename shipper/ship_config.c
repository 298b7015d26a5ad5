/*
 * ship_config.c - the shipper's configuration: `key = value` lines, `#`
 * comments, then ALOG_SHIP_<KEY> environment overrides, then validation
 * with a limit on every number. Format and defaults: docs/shipper-config.md.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ship.h"
#include "ship_proto.h"

#define CONFIG_LINE_MAX 4096
#define CONFIG_FILE_BYTES_MAX (1u << 20)

enum key_kind {
	K_STR,
	K_U32,
	K_U64,
	K_INT,
	K_TRANSPORT,
	K_EDGES
};

struct key {
	const char *name;
	enum key_kind kind;
	size_t off;
	size_t size; /* K_STR: buffer size */
	uint64_t min, max;
	unsigned roles; /* bit 0 send, bit 1 receive */
};

#define F(field)                             \
	offsetof(struct ship_config, field), \
		sizeof(((struct ship_config *)0)->field)
#define BOTH 3u
#define SEND 1u
#define RECV 2u

static const struct key keys[] = {
	{ "transport", K_TRANSPORT, F(transport), 0, 0, BOTH },
	{ "tls_cert", K_STR, F(tls_cert), 0, 0, BOTH },
	{ "tls_key", K_STR, F(tls_key), 0, 0, BOTH },
	{ "tls_ca", K_STR, F(tls_ca), 0, 0, BOTH },
	{ "metrics_listen", K_STR, F(metrics_listen), 0, 0, BOTH },
	{ "frame_bytes_max", K_U32, F(frame_bytes_max), SHIP_FRAME_BYTES_MIN,
	  SHIP_FRAME_BYTES_HARD_MAX, BOTH },
	{ "window_bytes", K_U32, F(window_bytes), SHIP_FRAME_BYTES_MIN,
	  1u << 30, BOTH },
	{ "heartbeat_ms", K_U32, F(heartbeat_ms), 10, 600000, BOTH },
	{ "timeout_ms", K_U32, F(timeout_ms), 50, 3600000, BOTH },
	{ "handshake_timeout_ms", K_U32, F(handshake_timeout_ms), 50, 600000,
	  BOTH },
	{ "receiver", K_STR, F(receiver), 0, 0, SEND },
	{ "tls_server_name", K_STR, F(tls_server_name), 0, 0, SEND },
	{ "edge", K_STR, F(edge), 0, 0, SEND },
	{ "log_dir", K_STR, F(log_dir), 0, 0, SEND },
	{ "consumer", K_STR, F(consumer), 0, 0, SEND },
	{ "batch_bytes", K_U32, F(batch_bytes), 1024, SHIP_RAW_BYTES_MAX,
	  SEND },
	{ "batch_records", K_U32, F(batch_records), 1, SHIP_RECORDS_HARD_MAX,
	  SEND },
	{ "zstd_level", K_INT, F(zstd_level), 0, 19, SEND },
	{ "backoff_min_ms", K_U32, F(backoff_min_ms), 1, 600000, SEND },
	{ "backoff_max_ms", K_U32, F(backoff_max_ms), 1, 3600000, SEND },
	{ "checkpoint_interval_ms", K_U32, F(checkpoint_interval_ms), 0, 600000,
	  SEND },
	{ "listen", K_STR, F(listen), 0, 0, RECV },
	{ "data_dir", K_STR, F(data_dir), 0, 0, RECV },
	{ "edges", K_EDGES, 0, 0, 0, 0, RECV },
	{ "connections_max", K_U32, F(connections_max), 1, 4096, RECV },
	{ "records_max", K_U32, F(records_max), 1, SHIP_RECORDS_HARD_MAX,
	  RECV },
	{ "record_bytes_max", K_U32, F(record_bytes_max), 1,
	  SHIP_RECORD_BYTES_HARD_MAX, RECV },
	{ "disk_budget_bytes", K_U64, F(disk_budget_bytes), 0, UINT64_MAX,
	  RECV },
	{ "segment_bytes_max", K_U64, F(segment_bytes_max), 1u << 20, 1u << 30,
	  RECV },
	{ "commits_in_flight", K_U32, F(commits_in_flight), 1, 8, RECV },
};

static void errf(char *err, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, cap, fmt, ap);
	va_end(ap);
}

static void config_defaults(struct ship_config *c, enum ship_role role)
{
	memset(c, 0, sizeof(*c));
	c->role = role;
	c->transport = SHIP_TLS;
	c->frame_bytes_max = 8u << 20;
	c->window_bytes = 32u << 20;
	c->heartbeat_ms = 1000;
	c->timeout_ms = 10000;
	c->handshake_timeout_ms = 5000;
	snprintf(c->consumer, sizeof(c->consumer), "shipper");
	c->batch_bytes = 1u << 20;
	c->batch_records = 16384;
	c->zstd_level = 1;
	c->backoff_min_ms = 100;
	c->backoff_max_ms = 10000;
	c->checkpoint_interval_ms = 200;
	c->connections_max = 64;
	c->records_max = 16384;
	c->record_bytes_max = 1u << 20;
	c->segment_bytes_max = 64u << 20;
	c->commits_in_flight = 2; /* docs/shipper-config.md */
}

static int set_edges(struct ship_config *c, const char *v, char *err,
		     size_t cap)
{
	const char *p = v;

	for (size_t i = 0; i < c->nedges; i++)
		free(c->edges[i]);
	c->nedges = 0;
	while (*p) {
		const char *e;
		size_t n;

		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		e = p;
		while (*e && *e != ',' && *e != ' ' && *e != '\t')
			e++;
		n = (size_t)(e - p);
		if (!ship_name_ok(p, n)) {
			errf(err, cap, "edges: invalid edge name '%.*s'",
			     (int)(n > 80 ? 80 : n), p);
			return -EINVAL;
		}
		if (c->nedges == SHIP_EDGES_MAX) {
			errf(err, cap, "edges: more than %d", SHIP_EDGES_MAX);
			return -EINVAL;
		}
		c->edges[c->nedges] = strndup(p, n);
		if (!c->edges[c->nedges])
			return -ENOMEM;
		c->nedges++;
		p = e;
	}
	return 0;
}

static int set_key(struct ship_config *c, const struct key *k, const char *v,
		   char *err, size_t cap)
{
	char *end;
	uint8_t *base = (uint8_t *)c;

	switch (k->kind) {
	case K_STR:
		if (strlen(v) >= k->size) {
			errf(err, cap, "%s: value longer than %zu bytes",
			     k->name, k->size - 1);
			return -EINVAL;
		}
		memcpy(base + k->off, v, strlen(v) + 1);
		return 0;
	case K_TRANSPORT:
		if (strcmp(v, "tls") == 0)
			c->transport = SHIP_TLS;
		else if (strcmp(v, "plain-loopback-only") == 0)
			c->transport = SHIP_PLAIN_LOOPBACK;
		else {
			errf(err, cap,
			     "transport: '%s' is neither tls nor "
			     "plain-loopback-only",
			     v);
			return -EINVAL;
		}
		return 0;
	case K_EDGES:
		return set_edges(c, v, err, cap);
	case K_U32:
	case K_U64:
	case K_INT: {
		unsigned long long n;

		if (!isdigit((unsigned char)v[0])) {
			errf(err, cap, "%s: '%s' is not a number", k->name, v);
			return -EINVAL;
		}
		errno = 0;
		n = strtoull(v, &end, 10);
		if (errno || *end || n < k->min || n > k->max) {
			errf(err, cap, "%s: '%s' is not in %llu..%llu", k->name,
			     v, (unsigned long long)k->min,
			     (unsigned long long)k->max);
			return -EINVAL;
		}
		if (k->kind == K_U32)
			*(uint32_t *)(base + k->off) = (uint32_t)n;
		else if (k->kind == K_U64)
			*(uint64_t *)(base + k->off) = (uint64_t)n;
		else
			*(int *)(base + k->off) = (int)n;
		return 0;
	}
	}
	return -EINVAL;
}

static const struct key *find_key(const char *name)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
			 e[-1] == '\n'))
		*--e = '\0';
	return s;
}

static int load_file(struct ship_config *c, const char *path, char *err,
		     size_t cap)
{
	char line[CONFIG_LINE_MAX];
	unsigned lineno = 0;
	size_t total = 0;
	FILE *f = fopen(path, "r");
	int rc = 0;

	if (!f) {
		errf(err, cap, "%s: %s", path, strerror(errno));
		return -EINVAL;
	}
	while (fgets(line, sizeof(line), f)) {
		const struct key *k;
		char *eq, *key, *val;

		lineno++;
		total += strlen(line);
		if (total > CONFIG_FILE_BYTES_MAX) {
			errf(err, cap, "%s: larger than %u bytes", path,
			     CONFIG_FILE_BYTES_MAX);
			rc = -EINVAL;
			break;
		}
		if (!strchr(line, '\n') && !feof(f)) {
			errf(err, cap, "%s:%u: line longer than %d bytes", path,
			     lineno, CONFIG_LINE_MAX - 2);
			rc = -EINVAL;
			break;
		}
		key = trim(line);
		if (*key == '#' || *key == '\0')
			continue;
		eq = strchr(key, '=');
		if (!eq) {
			errf(err, cap, "%s:%u: expected key = value", path,
			     lineno);
			rc = -EINVAL;
			break;
		}
		*eq = '\0';
		val = trim(eq + 1);
		key = trim(key);
		k = find_key(key);
		if (!k ||
		    !(k->roles & (c->role == SHIP_ROLE_SEND ? SEND : RECV))) {
			errf(err, cap, "%s:%u: unknown key '%s' for this role",
			     path, lineno, key);
			rc = -EINVAL;
			break;
		}
		rc = set_key(c, k, val, err, cap);
		if (rc < 0) {
			size_t l = strlen(err);

			snprintf(err + l, cap - l, " (%s:%u)", path, lineno);
			break;
		}
	}
	if (rc == 0 && ferror(f)) {
		errf(err, cap, "%s: read error", path);
		rc = -EINVAL;
	}
	fclose(f);
	return rc;
}

static int load_env(struct ship_config *c, char *err, size_t cap)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char name[64] = "ALOG_SHIP_";
		size_t l = strlen(name);
		const char *v;
		int rc;

		if (!(keys[i].roles &
		      (c->role == SHIP_ROLE_SEND ? SEND : RECV)))
			continue;
		for (const char *p = keys[i].name; *p && l < sizeof(name) - 1;
		     p++)
			name[l++] = (char)toupper((unsigned char)*p);
		name[l] = '\0';
		v = getenv(name);
		if (!v)
			continue;
		rc = set_key(c, &keys[i], v, err, cap);
		if (rc < 0) {
			size_t el = strlen(err);

			snprintf(err + el, cap - el, " (environment %s)", name);
			return rc;
		}
	}
	return 0;
}

int ship_split_hostport(const char *s, char *host, size_t hostcap, char *port,
			size_t portcap)
{
	const char *colon;
	size_t hl;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return -EINVAL;
		hl = (size_t)(rb - s - 1);
		s++;
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= hostcap || strlen(colon + 1) == 0 ||
	    strlen(colon + 1) >= portcap)
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = '\0';
	snprintf(port, portcap, "%s", colon + 1);
	for (const char *p = port; *p; p++)
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
	return 0;
}

static int validate(struct ship_config *c, char *err, size_t cap)
{
	char host[256], port[16];

	if (c->transport == SHIP_TLS &&
	    (!c->tls_cert[0] || !c->tls_key[0] || !c->tls_ca[0])) {
		errf(err, cap,
		     "transport tls needs tls_cert, tls_key and tls_ca");
		return -EINVAL;
	}
	if (c->heartbeat_ms * 2 > c->timeout_ms) {
		errf(err, cap, "timeout_ms must be at least 2 x heartbeat_ms");
		return -EINVAL;
	}
	if (c->window_bytes < c->frame_bytes_max / 2) {
		errf(err, cap, "window_bytes must be >= frame_bytes_max / 2");
		return -EINVAL;
	}
	if (c->metrics_listen[0] &&
	    ship_split_hostport(c->metrics_listen, host, sizeof(host), port,
				sizeof(port)) < 0) {
		errf(err, cap, "metrics_listen: expected host:port");
		return -EINVAL;
	}
	if (c->role == SHIP_ROLE_SEND) {
		if (!c->receiver[0] ||
		    ship_split_hostport(c->receiver, host, sizeof(host), port,
					sizeof(port)) < 0) {
			errf(err, cap, "receiver: expected host:port");
			return -EINVAL;
		}
		if (!ship_name_ok(c->edge, strlen(c->edge))) {
			errf(err, cap, "edge: 1..64 of [A-Za-z0-9._-] needed");
			return -EINVAL;
		}
		if (!c->log_dir[0]) {
			errf(err, cap, "log_dir is required");
			return -EINVAL;
		}
		if (!ship_name_ok(c->consumer, strlen(c->consumer))) {
			errf(err, cap, "consumer: invalid name");
			return -EINVAL;
		}
		if (c->backoff_min_ms > c->backoff_max_ms) {
			errf(err, cap, "backoff_min_ms > backoff_max_ms");
			return -EINVAL;
		}
		/* A DATA frame must hold a full batch, even incompressible. */
		if ((uint64_t)c->batch_bytes + 4096 > c->frame_bytes_max) {
			errf(err, cap,
			     "batch_bytes + 4096 must fit frame_bytes_max");
			return -EINVAL;
		}
		if (!c->tls_server_name[0])
			snprintf(c->tls_server_name, sizeof(c->tls_server_name),
				 "%s", host);
	} else {
		if (!c->listen[0] ||
		    ship_split_hostport(c->listen, host, sizeof(host), port,
					sizeof(port)) < 0) {
			errf(err, cap, "listen: expected host:port");
			return -EINVAL;
		}
		if (!c->data_dir[0]) {
			errf(err, cap, "data_dir is required");
			return -EINVAL;
		}
		if (c->nedges == 0) {
			errf(err, cap, "edges: list the allowed edge names");
			return -EINVAL;
		}
		if ((uint64_t)SHIP_RAW_BYTES_MAX + 4096 > c->frame_bytes_max) {
			errf(err, cap,
			     "frame_bytes_max must be >= 4 MiB + 4096 on the "
			     "receiver");
			return -EINVAL;
		}
	}
	return 0;
}

int ship_config_load(struct ship_config *cfg, enum ship_role role,
		     const char *path, char *err, size_t errcap)
{
	int rc;

	config_defaults(cfg, role);
	err[0] = '\0';
	if (path) {
		rc = load_file(cfg, path, err, errcap);
		if (rc < 0)
			goto out_free;
	}
	rc = load_env(cfg, err, errcap);
	if (rc < 0)
		goto out_free;
	rc = validate(cfg, err, errcap);
	if (rc < 0)
		goto out_free;
	return 0;

out_free:
	ship_config_free(cfg);
	return rc;
}

void ship_config_free(struct ship_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->nedges; i++)
		free(cfg->edges[i]);
	cfg->nedges = 0;
}

bool ship_config_edge_allowed(const struct ship_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nedges; i++)
		if (strcmp(cfg->edges[i], name) == 0)
			return true;
	return false;
}
