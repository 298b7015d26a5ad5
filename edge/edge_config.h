/*
 * edge_config.h - the edge's configuration file (docs/edge-config.md):
 * parse, validate, apply environment overrides, and look sites up.
 */
#ifndef EDGE_CONFIG_H
#define EDGE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "alog_log.h"
#include "edge_privacy.h"

#define EDGE_SITE_ID_MAX 64
#define EDGE_DOMAIN_MAX 253
#define EDGE_SITES_MAX 10000
#define EDGE_DOMAINS_MAX 64 /* per site */
#define EDGE_TRUSTED_MAX 64

enum edge_bots {
	EDGE_BOTS_DROP,
	EDGE_BOTS_FLAG
};

struct edge_site {
	char id[EDGE_SITE_ID_MAX + 1];
	char **domains; /* lower-case hosts */
	size_t ndomains;
	char *write_key; /* NULL: none */
	bool keep_dnt;
	enum edge_bots bots;
	uint64_t key; /* hash of id, for the rate limiter */
};

struct edge_limits {
	uint32_t header_bytes;
	uint32_t headers;
	uint32_t body_bytes;
	uint32_t batch_events;
	uint32_t connections;
	uint32_t idle_timeout_ms;
	uint32_t request_timeout_ms;
};

struct edge_config {
	char listen_host[256];
	uint16_t listen_port;
	unsigned workers;
	bool worker_ring_plain; /* "worker_ring": "plain" (default "defer") */
	int log_prepare; /* "log.prepare_segments": 1, 0, -1 = not given */
	char log_dir[1024];
	struct alog_log_options log;
	uint32_t retain_interval_ms; /* how often consumer-driven retention runs */
	struct edge_limits limits;
	struct edge_cidr trusted[EDGE_TRUSTED_MAX];
	size_t ntrusted;
	char salt_file[1024];
	char geoip_db[1024];
	double site_per_s, client_per_s, burst_s;
	struct edge_site *sites;
	size_t nsites;
};

/*
 * Load path (NULL: defaults only), then apply ALOG_EDGE_* environment
 * overrides, then validate. Returns NULL with a message in err (errlen
 * bytes) on any problem. Caller frees with edge_config_free().
 */
struct edge_config *edge_config_load(const char *path, char *err,
				     size_t errlen);
void edge_config_free(struct edge_config *c);

/* The site with this id, or whose domains include host (case-insensitive);
 * NULL if none. Borrowed from c. */
const struct edge_site *edge_config_site(const struct edge_config *c,
					 const char *name, size_t len);

/* True if the host of origin ("https://host[:port]") is one of s's
 * domains. */
bool edge_site_allows_origin(const struct edge_site *s, const char *origin,
			     size_t len);

/* The site whose domains include origin's host, or NULL. */
const struct edge_site *edge_config_site_by_origin(const struct edge_config *c,
						   const char *origin,
						   size_t len);

/* Print the effective configuration as JSON (for --check-config). */
void edge_config_print(const struct edge_config *c, FILE *out);

#endif /* EDGE_CONFIG_H */
