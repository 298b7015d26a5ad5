/*
 * edge_config.c - load and validate the edge's JSON configuration.
 *
 * Everything from the file and the environment is untrusted: every key is
 * type-checked and range-checked, unknown keys are refused (a typo must not
 * silently fall back to a default), and every list is bounded.
 */
#include "edge_config.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void config_defaults(struct edge_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->listen_host, sizeof(c->listen_host), "127.0.0.1");
	c->listen_port = 8080;
	c->workers = 2;
	snprintf(c->log_dir, sizeof(c->log_dir), "var/edge-log");
	alog_log_options_init(&c->log);
	c->log.create = true;
	c->log_prepare = -1;
	c->retain_interval_ms = 10000;
	c->limits.header_bytes = 8192;
	c->limits.headers = 64;
	c->limits.body_bytes = 1u << 20;
	c->limits.batch_events = 1000;
	c->limits.connections = 4096;
	c->limits.idle_timeout_ms = 60000;
	c->limits.request_timeout_ms = 10000;
	edge_cidr_parse("127.0.0.1/32", &c->trusted[0]);
	edge_cidr_parse("::1/128", &c->trusted[1]);
	c->ntrusted = 2;
	snprintf(c->salt_file, sizeof(c->salt_file), "/run/alog/edge-salt");
	c->burst_s = 2;
}

void edge_config_free(struct edge_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nsites; i++) {
		for (size_t k = 0; k < c->sites[i].ndomains; k++)
			free(c->sites[i].domains[k]);
		free(c->sites[i].domains);
		free(c->sites[i].write_key);
	}
	free(c->sites);
	free(c);
}

/* "host:port", "[v6]:port". */
static int parse_listen(struct edge_config *c, const char *s, char *err,
			size_t errlen)
{
	const char *colon, *host = s;
	size_t hostlen;
	char *end;
	unsigned long port;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			goto bad;
		host = s + 1;
		hostlen = (size_t)(rb - host);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			goto bad;
		hostlen = (size_t)(colon - s);
	}
	if (hostlen == 0 || hostlen >= sizeof(c->listen_host))
		goto bad;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port == 0 || port > 65535)
		goto bad;
	memcpy(c->listen_host, host, hostlen);
	c->listen_host[hostlen] = 0;
	c->listen_port = (uint16_t)port;
	return 0;
bad:
	set_err(err, errlen, "listen: expected host:port, got \"%s\"", s);
	return -EINVAL;
}

static int get_uint(json_t *obj, const char *key, const char *path,
		    uint64_t min, uint64_t max, uint64_t *out, char *err,
		    size_t errlen)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) < min ||
	    (uint64_t)json_integer_value(v) > max) {
		set_err(err, errlen,
			"%s%s: must be an integer from %llu to %llu", path, key,
			(unsigned long long)min, (unsigned long long)max);
		return -EINVAL;
	}
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int get_str(json_t *obj, const char *key, const char *path, char *dst,
		   size_t dstlen, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return 0;
	if (!json_is_string(v) || json_string_length(v) >= dstlen) {
		set_err(err, errlen, "%s%s: must be a string under %zu bytes",
			path, key, dstlen);
		return -EINVAL;
	}
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int check_keys(json_t *obj, const char *path, const char *const *allowed,
		      char *err, size_t errlen)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj)) {
		set_err(err, errlen, "%s: must be an object", path);
		return -EINVAL;
	}
	json_object_foreach(obj, key, v)
	{
		bool ok = false;

		for (size_t i = 0; allowed[i]; i++)
			ok |= strcmp(key, allowed[i]) == 0;
		if (!ok) {
			set_err(err, errlen, "%s%s: unknown key", path, key);
			return -EINVAL;
		}
	}
	return 0;
}

static bool valid_site_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > EDGE_SITE_ID_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' &&
		    *s != '-')
			return false;
	return true;
}

static bool valid_domain(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > EDGE_DOMAIN_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '-' &&
		    *s != ':')
			return false;
	return true;
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static int parse_sites(struct edge_config *c, json_t *arr, char *err,
		       size_t errlen)
{
	static const char *const keys[] = { "id",       "domains", "write_key",
					    "keep_dnt", "bots",    NULL };
	size_t i;
	json_t *s;

	if (!json_is_array(arr) || json_array_size(arr) > EDGE_SITES_MAX) {
		set_err(err, errlen, "sites: must be an array of at most %d",
			EDGE_SITES_MAX);
		return -EINVAL;
	}
	c->sites = calloc(json_array_size(arr) + 1, sizeof(*c->sites));
	if (!c->sites)
		return -ENOMEM;
	json_array_foreach(arr, i, s)
	{
		struct edge_site *site = &c->sites[c->nsites];
		char path[64];
		json_t *v;

		snprintf(path, sizeof(path), "sites[%zu].", i);
		if (check_keys(s, path, keys, err, errlen))
			return -EINVAL;
		c->nsites++;
		v = json_object_get(s, "id");
		if (!json_is_string(v) ||
		    !valid_site_id(json_string_value(v))) {
			set_err(err, errlen,
				"%sid: required, 1..64 of [A-Za-z0-9._-]",
				path);
			return -EINVAL;
		}
		snprintf(site->id, sizeof(site->id), "%s",
			 json_string_value(v));
		for (size_t k = 0; k + 1 < c->nsites; k++) {
			if (strcmp(c->sites[k].id, site->id) == 0) {
				set_err(err, errlen, "%sid: duplicate \"%s\"",
					path, site->id);
				return -EINVAL;
			}
		}
		site->key = fnv1a(site->id);
		v = json_object_get(s, "domains");
		if (v) {
			size_t k;
			json_t *d;

			if (!json_is_array(v) ||
			    json_array_size(v) > EDGE_DOMAINS_MAX) {
				set_err(err, errlen,
					"%sdomains: an array of at most %d hosts",
					path, EDGE_DOMAINS_MAX);
				return -EINVAL;
			}
			site->domains =
				calloc(json_array_size(v) + 1, sizeof(char *));
			if (!site->domains)
				return -ENOMEM;
			json_array_foreach(v, k, d)
			{
				char *h;

				if (!json_is_string(d) ||
				    !valid_domain(json_string_value(d))) {
					set_err(err, errlen,
						"%sdomains[%zu]: not a host name",
						path, k);
					return -EINVAL;
				}
				h = strdup(json_string_value(d));
				if (!h)
					return -ENOMEM;
				for (char *p = h; *p; p++)
					*p = (char)tolower((unsigned char)*p);
				site->domains[site->ndomains++] = h;
			}
		}
		v = json_object_get(s, "write_key");
		if (v && (!json_is_string(v) || json_string_length(v) > 256)) {
			set_err(err, errlen, "%swrite_key: a string", path);
			return -EINVAL;
		}
		if (v && json_string_length(v) > 0) {
			site->write_key = strdup(json_string_value(v));
			if (!site->write_key)
				return -ENOMEM;
		}
		v = json_object_get(s, "keep_dnt");
		if (v && !json_is_boolean(v)) {
			set_err(err, errlen, "%skeep_dnt: true or false", path);
			return -EINVAL;
		}
		site->keep_dnt = v && json_is_true(v);
		v = json_object_get(s, "bots");
		site->bots = EDGE_BOTS_DROP;
		if (v) {
			if (json_is_string(v) &&
			    !strcmp(json_string_value(v), "flag"))
				site->bots = EDGE_BOTS_FLAG;
			else if (!json_is_string(v) ||
				 strcmp(json_string_value(v), "drop")) {
				set_err(err, errlen,
					"%sbots: \"drop\" or \"flag\"", path);
				return -EINVAL;
			}
		}
	}
	return 0;
}

static int parse_file(struct edge_config *c, json_t *root, char *err,
		      size_t errlen)
{
	static const char *const top[] = {
		"listen",          "workers",   "log",      "limits",
		"trusted_proxies", "salt_file", "geoip_db", "rate_limit",
		"sites",           "worker_ring", NULL
	};
	static const char *const logk[] = { "dir",
					    "durability",
					    "fsync_interval_ms",
					    "segment_bytes",
					    "segment_age_ms",
					    "disk_budget_bytes",
					    "retention_age_min_ms",
					    "retain_interval_ms",
					    "commits_in_flight",
					    "prepare_segments",
					    NULL };
	static const char *const limk[] = {
		"header_bytes",       "headers",     "body_bytes",
		"batch_events",       "connections", "idle_timeout_ms",
		"request_timeout_ms", NULL
	};
	static const char *const rlk[] = { "site_per_s", "client_per_s",
					   "burst_s", NULL };
	char listen[300] = "";
	uint64_t u;
	json_t *o;

	if (check_keys(root, "", top, err, errlen))
		return -EINVAL;
	if (get_str(root, "listen", "", listen, sizeof(listen), err, errlen))
		return -EINVAL;
	if (listen[0] && parse_listen(c, listen, err, errlen))
		return -EINVAL;
	u = c->workers;
	if (get_uint(root, "workers", "", 1, 64, &u, err, errlen))
		return -EINVAL;
	c->workers = (unsigned)u;
	{
		char ring[16] = "";

		if (get_str(root, "worker_ring", "", ring, sizeof(ring), err,
			    errlen))
			return -EINVAL;
		if (ring[0] && strcmp(ring, "defer") && strcmp(ring, "plain")) {
			set_err(err, errlen,
				"worker_ring: must be \"defer\" or \"plain\"");
			return -EINVAL;
		}
		if (ring[0])
			c->worker_ring_plain = !strcmp(ring, "plain");
	}
	if ((o = json_object_get(root, "log")) != NULL) {
		char dur[16] = "";

		if (check_keys(o, "log.", logk, err, errlen) ||
		    get_str(o, "dir", "log.", c->log_dir, sizeof(c->log_dir),
			    err, errlen) ||
		    get_str(o, "durability", "log.", dur, sizeof(dur), err,
			    errlen))
			return -EINVAL;
		if (dur[0] && !strcmp(dur, "write"))
			c->log.durability = ALOG_DURABLE_WRITE;
		else if (dur[0] && strcmp(dur, "fsync")) {
			set_err(err, errlen,
				"log.durability: \"fsync\" or \"write\"");
			return -EINVAL;
		}
		u = c->log.fsync_interval_ms;
		if (get_uint(o, "fsync_interval_ms", "log.", 1, 60000, &u, err,
			     errlen))
			return -EINVAL;
		c->log.fsync_interval_ms = (uint32_t)u;
		u = c->log.commits_in_flight;
		if (get_uint(o, "commits_in_flight", "log.", 1, 8, &u, err,
			     errlen))
			return -EINVAL;
		c->log.commits_in_flight = (uint32_t)u;
		{
			json_t *v = json_object_get(o, "prepare_segments");

			if (v && !json_is_boolean(v)) {
				set_err(err, errlen,
					"log.prepare_segments: true or false");
				return -EINVAL;
			}
			if (v)
				c->log_prepare = json_is_true(v);
		}
		u = c->retain_interval_ms;
		if (get_uint(o, "retain_interval_ms", "log.", 100, 86400000, &u,
			     err, errlen))
			return -EINVAL;
		c->retain_interval_ms = (uint32_t)u;
		if (get_uint(o, "segment_bytes", "log.", 1u << 20, 1u << 30,
			     &c->log.segment_bytes_max, err, errlen) ||
		    get_uint(o, "segment_age_ms", "log.", 0, UINT32_MAX,
			     &c->log.segment_age_max_ms, err, errlen) ||
		    get_uint(o, "disk_budget_bytes", "log.", 0, INT64_MAX,
			     &c->log.disk_budget_bytes, err, errlen) ||
		    get_uint(o, "retention_age_min_ms", "log.", 0, INT64_MAX,
			     &c->log.retention_age_min_ms, err, errlen))
			return -EINVAL;
	}
	if ((o = json_object_get(root, "limits")) != NULL) {
		struct {
			const char *k;
			uint32_t *p;
			uint32_t min, max;
		} lims[] = {
			{ "header_bytes", &c->limits.header_bytes, 1024,
			  1 << 20 },
			{ "headers", &c->limits.headers, 8, 1024 },
			{ "body_bytes", &c->limits.body_bytes, 1024, 16 << 20 },
			{ "batch_events", &c->limits.batch_events, 1, 100000 },
			{ "connections", &c->limits.connections, 1, 1000000 },
			{ "idle_timeout_ms", &c->limits.idle_timeout_ms, 100,
			  3600000 },
			{ "request_timeout_ms", &c->limits.request_timeout_ms,
			  100, 3600000 },
		};

		if (check_keys(o, "limits.", limk, err, errlen))
			return -EINVAL;
		for (size_t i = 0; i < sizeof(lims) / sizeof(lims[0]); i++) {
			u = *lims[i].p;
			if (get_uint(o, lims[i].k, "limits.", lims[i].min,
				     lims[i].max, &u, err, errlen))
				return -EINVAL;
			*lims[i].p = (uint32_t)u;
		}
	}
	if ((o = json_object_get(root, "trusted_proxies")) != NULL) {
		size_t i;
		json_t *v;

		if (!json_is_array(o) ||
		    json_array_size(o) > EDGE_TRUSTED_MAX) {
			set_err(err, errlen,
				"trusted_proxies: an array of at most %d CIDRs",
				EDGE_TRUSTED_MAX);
			return -EINVAL;
		}
		c->ntrusted = 0;
		json_array_foreach(o, i, v)
		{
			if (!json_is_string(v) ||
			    edge_cidr_parse(json_string_value(v),
					    &c->trusted[c->ntrusted]) != 0) {
				set_err(err, errlen,
					"trusted_proxies[%zu]: not a CIDR", i);
				return -EINVAL;
			}
			c->ntrusted++;
		}
	}
	if (get_str(root, "salt_file", "", c->salt_file, sizeof(c->salt_file),
		    err, errlen) ||
	    get_str(root, "geoip_db", "", c->geoip_db, sizeof(c->geoip_db), err,
		    errlen))
		return -EINVAL;
	if ((o = json_object_get(root, "rate_limit")) != NULL) {
		const char *k[] = { "site_per_s", "client_per_s", "burst_s" };
		double *p[] = { &c->site_per_s, &c->client_per_s, &c->burst_s };

		if (check_keys(o, "rate_limit.", rlk, err, errlen))
			return -EINVAL;
		for (int i = 0; i < 3; i++) {
			json_t *v = json_object_get(o, k[i]);

			if (!v)
				continue;
			if (!json_is_number(v) || json_number_value(v) < 0 ||
			    json_number_value(v) > 1e9) {
				set_err(err, errlen,
					"rate_limit.%s: a number from 0 to 1e9",
					k[i]);
				return -EINVAL;
			}
			*p[i] = json_number_value(v);
		}
	}
	if ((o = json_object_get(root, "sites")) != NULL)
		return parse_sites(c, o, err, errlen);
	return 0;
}

static int apply_env(struct edge_config *c, char *err, size_t errlen)
{
	const char *v;
	char *end;

	if ((v = getenv("ALOG_EDGE_LISTEN")) && parse_listen(c, v, err, errlen))
		return -EINVAL;
	if ((v = getenv("ALOG_EDGE_WORKERS"))) {
		unsigned long n = strtoul(v, &end, 10);

		if (*end || end == v || n < 1 || n > 64) {
			set_err(err, errlen, "ALOG_EDGE_WORKERS: 1..64");
			return -EINVAL;
		}
		c->workers = (unsigned)n;
	}
	if ((v = getenv("ALOG_EDGE_LOG_DIR")))
		snprintf(c->log_dir, sizeof(c->log_dir), "%s", v);
	if ((v = getenv("ALOG_EDGE_DURABILITY"))) {
		if (!strcmp(v, "fsync"))
			c->log.durability = ALOG_DURABLE_FSYNC;
		else if (!strcmp(v, "write"))
			c->log.durability = ALOG_DURABLE_WRITE;
		else {
			set_err(err, errlen,
				"ALOG_EDGE_DURABILITY: fsync or write");
			return -EINVAL;
		}
	}
	if ((v = getenv("ALOG_EDGE_DISK_BUDGET_BYTES"))) {
		unsigned long long n = strtoull(v, &end, 10);

		if (*end || end == v || v[0] == '-') {
			set_err(err, errlen,
				"ALOG_EDGE_DISK_BUDGET_BYTES: a byte count");
			return -EINVAL;
		}
		c->log.disk_budget_bytes = n;
	}
	if ((v = getenv("ALOG_EDGE_SALT_FILE")))
		snprintf(c->salt_file, sizeof(c->salt_file), "%s", v);
	if ((v = getenv("ALOG_EDGE_GEOIP_DB")))
		snprintf(c->geoip_db, sizeof(c->geoip_db), "%s", v);
	return 0;
}

struct edge_config *edge_config_load(const char *path, char *err, size_t errlen)
{
	struct edge_config *c = calloc(1, sizeof(*c));
	json_error_t jerr;
	json_t *root;
	int rc;

	if (!c) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	config_defaults(c);
	if (path) {
		root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
		if (!root) {
			set_err(err, errlen, "%s:%d:%d: %s", path, jerr.line,
				jerr.column, jerr.text);
			goto fail;
		}
		rc = parse_file(c, root, err, errlen);
		json_decref(root);
		if (rc == -ENOMEM)
			set_err(err, errlen, "out of memory");
		if (rc)
			goto fail;
	}
	if (apply_env(c, err, errlen))
		goto fail;
	{
		/* Padded commits need one batch in flight (log-format.md):
		 * on by default where that holds. */
		bool serial = c->log.durability == ALOG_DURABLE_WRITE ||
			      c->log.commits_in_flight <= 1;

		if (c->log_prepare == 1 && !serial) {
			set_err(err, errlen,
				"log.prepare_segments: needs "
				"log.commits_in_flight 1 in fsync mode");
			goto fail;
		}
		c->log.prepare_segments =
			c->log_prepare < 0 ? serial : c->log_prepare == 1;
	}
	if (c->log.segment_bytes_max <
	    64 + 32 + (uint64_t)c->log.record_bytes_max) {
		c->log.record_bytes_max = 64 * 1024;
	}
	if (c->log.batch_bytes_max < 32 + c->log.record_bytes_max)
		c->log.batch_bytes_max = 32 + c->log.record_bytes_max;
	return c;
fail:
	edge_config_free(c);
	return NULL;
}

static bool host_eq(const char *a, const char *b, size_t blen)
{
	return strlen(a) == blen && strncasecmp(a, b, blen) == 0;
}

const struct edge_site *edge_config_site(const struct edge_config *c,
					 const char *name, size_t len)
{
	for (size_t i = 0; i < c->nsites; i++)
		if (strlen(c->sites[i].id) == len &&
		    memcmp(c->sites[i].id, name, len) == 0)
			return &c->sites[i];
	for (size_t i = 0; i < c->nsites; i++)
		for (size_t k = 0; k < c->sites[i].ndomains; k++)
			if (host_eq(c->sites[i].domains[k], name, len))
				return &c->sites[i];
	return NULL;
}

/* The host part of "scheme://host[:port][/...]". */
static bool origin_host(const char *origin, size_t len, const char **host,
			size_t *hlen)
{
	const char *p = memmem(origin, len, "://", 3), *end;

	if (!p)
		return false;
	p += 3;
	end = p;
	while (end < origin + len && *end != ':' && *end != '/')
		end++;
	if (*p == '[') /* IPv6 literal: up to ']' */
		for (end = p; end < origin + len && *end != ']'; end++)
			;
	*host = p;
	*hlen = (size_t)(end - p);
	return *hlen > 0;
}

bool edge_site_allows_origin(const struct edge_site *s, const char *origin,
			     size_t len)
{
	const char *h;
	size_t hl;

	if (!origin_host(origin, len, &h, &hl))
		return false;
	for (size_t k = 0; k < s->ndomains; k++)
		if (host_eq(s->domains[k], h, hl))
			return true;
	return false;
}

const struct edge_site *edge_config_site_by_origin(const struct edge_config *c,
						   const char *origin,
						   size_t len)
{
	for (size_t i = 0; i < c->nsites; i++)
		if (edge_site_allows_origin(&c->sites[i], origin, len))
			return &c->sites[i];
	return NULL;
}

void edge_config_print(const struct edge_config *c, FILE *out)
{
	fprintf(out,
		"{\n  \"listen\": \"%s:%u\",\n  \"workers\": %u,\n"
		"  \"worker_ring\": \"%s\",\n"
		"  \"log\": {\"dir\": \"%s\", \"durability\": \"%s\", "
		"\"segment_bytes\": %llu, \"disk_budget_bytes\": %llu, "
		"\"prepare_segments\": %s},\n"
		"  \"limits\": {\"header_bytes\": %u, \"headers\": %u, "
		"\"body_bytes\": %u, \"batch_events\": %u, \"connections\": %u, "
		"\"idle_timeout_ms\": %u, \"request_timeout_ms\": %u},\n"
		"  \"trusted_proxies\": %zu,\n  \"salt_file\": \"%s\",\n"
		"  \"geoip_db\": \"%s\",\n  \"sites\": [",
		c->listen_host, c->listen_port, c->workers,
		c->worker_ring_plain ? "plain" : "defer", c->log_dir,
		c->log.durability == ALOG_DURABLE_FSYNC ? "fsync" : "write",
		(unsigned long long)c->log.segment_bytes_max,
		(unsigned long long)c->log.disk_budget_bytes,
		c->log.prepare_segments ? "true" : "false",
		c->limits.header_bytes, c->limits.headers, c->limits.body_bytes,
		c->limits.batch_events, c->limits.connections,
		c->limits.idle_timeout_ms, c->limits.request_timeout_ms,
		c->ntrusted, c->salt_file, c->geoip_db);
	for (size_t i = 0; i < c->nsites; i++)
		fprintf(out, "%s\"%s\"", i ? ", " : "", c->sites[i].id);
	fprintf(out, "]\n}\n");
}
