/*
 * edge_router.c - what each request means: routing, CORS, the ingest path
 * (parse, find the site, privacy at the door, rate limits, encode, append)
 * and the answers once the log says the events are durable.
 *
 * The client address is read here into a stack variable, used for the geo
 * lookup, the visitor hash and the per-client rate limit key, and dropped
 * when this function returns. It is never logged or stored.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alog_common.h"
#include "alog_event.h"
#include "edge_event.h"
#include "edge_server.h"

#define EDGE_SITES_PER_REQUEST 16

struct route_def {
	const char *path;
	enum edge_route route;
	int endpoint; /* enum edge_endpoint, or -1: not an ingest route */
};

static const struct route_def routes[] = {
	{ "/track/view", EDGE_R_VIEW, EDGE_EP_VIEW },
	{ "/track/event", EDGE_R_EVENT, EDGE_EP_EVENT },
	{ "/track/batch", EDGE_R_BATCH, EDGE_EP_BATCH },
	{ "/track/conversion", EDGE_R_CONVERSION, EDGE_EP_CONVERSION },
	{ "/track/funnel", EDGE_R_FUNNEL, EDGE_EP_FUNNEL },
	{ "/track/engagement", EDGE_R_ENGAGEMENT, EDGE_EP_ENGAGEMENT },
	{ "/track/interaction", EDGE_R_INTERACTION, EDGE_EP_INTERACTION },
	{ "/api/event", EDGE_R_PLAUSIBLE, EDGE_EP_PLAUSIBLE },
	{ "/api/send", EDGE_R_UMAMI, EDGE_EP_UMAMI },
	{ "/script.js", EDGE_R_SCRIPT, -1 },
	{ "/health", EDGE_R_HEALTH, -1 },
	{ "/ready", EDGE_R_READY, -1 },
	{ "/metrics", EDGE_R_METRICS, -1 },
};

/* ---- Small helpers ------------------------------------------------------ */

static void uuid_str(const uint8_t id[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	int k = 0;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[k++] = '-';
		out[k++] = hex[id[i] >> 4];
		out[k++] = hex[id[i] & 15];
	}
	out[k] = 0;
}

/* Copy s into out as JSON string content (no quotes), bounded. */
static void json_escape(const char *s, size_t len, char *out, size_t cap)
{
	size_t k = 0;

	for (size_t i = 0; i < len && k + 7 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\') {
			out[k++] = '\\';
			out[k++] = (char)ch;
		} else if (ch < 0x20) {
			k += (size_t)snprintf(out + k, cap - k, "\\u%04x", ch);
		} else {
			out[k++] = (char)ch;
		}
	}
	out[k] = 0;
}

/* The CORS headers for c's Origin, if the router allowed it. */
static const char *cors_headers(struct edge_conn *c, char *buf, size_t cap)
{
	size_t olen;
	const char *origin = edge_req_header(c, EDGE_H_ORIGIN, &olen);

	if (!c->cors_ok || !origin || olen > 300)
		return "";
	snprintf(buf, cap,
		 "Access-Control-Allow-Origin: %.*s\r\nVary: Origin\r\n",
		 (int)olen, origin);
	return buf;
}

static void respond_json(struct edge_conn *c, int status, const char *extra,
			 const char *body)
{
	char cors[512], hdrs[768];

	snprintf(hdrs, sizeof(hdrs), "%s%s",
		 cors_headers(c, cors, sizeof(cors)), extra ? extra : "");
	edge_metrics_request(c->route, status);
	edge_conn_respond(c, status, "application/json", hdrs, body,
			  strlen(body));
}

static void respond_error(struct edge_conn *c, int status, const char *extra,
			  const char *field, const char *message)
{
	char f[160], m[400], body[700];

	json_escape(field, strlen(field), f, sizeof(f));
	json_escape(message, strlen(message), m, sizeof(m));
	snprintf(body, sizeof(body),
		 "{\"success\":false,\"error\":{\"field\":\"%s\","
		 "\"message\":\"%s\"}}\n",
		 f, m);
	respond_json(c, status, extra, body);
}

static bool ctype_ok(const char *ct, size_t len)
{
	static const char *const ok[] = { "application/json", "text/plain" };

	if (!ct)
		return false;
	while (len > 0 && (*ct == ' ' || *ct == '\t')) {
		ct++;
		len--;
	}
	for (size_t i = 0; i < ALOG_ARRAY_LEN(ok); i++) {
		size_t n = strlen(ok[i]);

		if (len >= n && strncasecmp(ct, ok[i], n) == 0 &&
		    (len == n || ct[n] == ';' || ct[n] == ' '))
			return true;
	}
	return false;
}

/* Header values are views into the arena: copy to a NUL-terminated
 * bounded buffer when a C string is needed. */
static void hdr_copy(struct edge_conn *c, enum edge_hdr h, char *out,
		     size_t cap)
{
	size_t len;
	const char *v = edge_req_header(c, h, &len);

	if (!v || len >= cap)
		len = v ? cap - 1 : 0;
	if (v)
		memcpy(out, v, len);
	out[len] = 0;
}

/* ---- Non-ingest routes -------------------------------------------------- */

static bool log_ready(const struct alog_log_stats *st,
		      const struct edge_config *cfg)
{
	if (st->failed)
		return false;
	/* Room for the next segment: in the budget, or already made
	 * (prepare_segments; it counts in disk_bytes). */
	return st->disk_budget_bytes == 0 ||
	       st->disk_bytes + cfg->log.segment_bytes_max <=
		       st->disk_budget_bytes ||
	       st->segment_prepared || st->active_free_bytes >= 64 * 1024;
}

static void route_health(struct edge_conn *c, bool ready_only)
{
	struct edge_server *srv = c->w->srv;
	struct alog_log_stats st;
	char body[1024], budget[64];
	bool ready;

	alog_log_stats(srv->log, &st);
	pthread_rwlock_rdlock(&srv->cfg_lock);
	ready = log_ready(&st, srv->cfg);
	pthread_rwlock_unlock(&srv->cfg_lock);
	if (ready_only) {
		respond_json(c, ready ? 200 : 503,
			     ready ? NULL : "Retry-After: 5\r\n",
			     ready ? "{\"ready\":true}\n" :
				     "{\"ready\":false}\n");
		return;
	}
	if (st.disk_budget_bytes)
		snprintf(budget, sizeof(budget), "%" PRIu64,
			 st.disk_budget_bytes > st.disk_bytes ?
				 st.disk_budget_bytes - st.disk_bytes :
				 0);
	else
		snprintf(budget, sizeof(budget), "null");
	snprintf(
		body, sizeof(body),
		"{\"status\":\"%s\",\"ready\":%s,\"log\":{\"next_offset\":%" PRIu64
		",\"durable_offset\":%" PRIu64 ",\"segments\":%" PRIu64
		",\"disk_bytes\":%" PRIu64 ",\"disk_budget_left_bytes\":%s,"
		"\"error\":%s%s%s},\"connections\":%lld%s}\n",
		st.failed ? "failed" : "ok", ready ? "true" : "false",
		st.next_offset, st.durable_offset, st.segments, st.disk_bytes,
		budget, st.failed ? "\"" : "",
		st.failed ? alog_strerror(st.failed) : "null",
		st.failed ? "\"" : "", (long long)edge_metrics_conns(),
		srv->shipper_json ? srv->shipper_json(srv) : "");
	respond_json(c, 200, NULL, body);
}

static void route_metrics(struct edge_conn *c)
{
	struct alog_log_stats st;
	size_t cap = 64 * 1024, n;
	char *buf = malloc(cap);

	if (!buf) {
		respond_error(c, 503, NULL, "", "out of memory");
		return;
	}
	alog_log_stats(c->w->srv->log, &st);
	n = edge_metrics_render(buf, cap, &st);
	if (n >= cap)
		n = cap - 1;
	edge_metrics_request(c->route, 200);
	edge_conn_respond(c, 200, "text/plain; version=0.0.4", NULL, buf, n);
	free(buf);
}

static void route_preflight(struct edge_conn *c)
{
	struct edge_server *srv = c->w->srv;
	size_t olen, alen;
	const char *origin = edge_req_header(c, EDGE_H_ORIGIN, &olen);
	const char *acrh = edge_req_header(c, EDGE_H_ACR_HEADERS, &alen);
	char hdrs[1024], allow[256] = "Content-Type, Authorization";
	bool ok;

	pthread_rwlock_rdlock(&srv->cfg_lock);
	ok = origin && olen <= 300 &&
	     edge_config_site_by_origin(srv->cfg, origin, olen) != NULL;
	pthread_rwlock_unlock(&srv->cfg_lock);
	c->route = EDGE_R_PREFLIGHT;
	if (!ok) {
		edge_metrics_request(c->route, 403);
		edge_conn_respond(c, 403, NULL, NULL, NULL, 0);
		return;
	}
	/* Echo requested headers only if they are plain tokens. */
	if (acrh && alen > 0 && alen < sizeof(allow)) {
		bool tok = true;

		for (size_t i = 0; i < alen; i++) {
			char ch = acrh[i];

			tok &= (ch >= 'a' && ch <= 'z') ||
			       (ch >= 'A' && ch <= 'Z') ||
			       (ch >= '0' && ch <= '9') || ch == '-' ||
			       ch == ',' || ch == ' ';
		}
		if (tok) {
			memcpy(allow, acrh, alen);
			allow[alen] = 0;
		}
	}
	snprintf(hdrs, sizeof(hdrs),
		 "Access-Control-Allow-Origin: %.*s\r\nVary: Origin\r\n"
		 "Access-Control-Allow-Methods: POST, OPTIONS\r\n"
		 "Access-Control-Allow-Headers: %s\r\n"
		 "Access-Control-Max-Age: 86400\r\n",
		 (int)olen, origin, allow);
	edge_metrics_request(c->route, 204);
	edge_conn_respond(c, 204, NULL, hdrs, NULL, 0);
}

/* ---- Ingest ------------------------------------------------------------- */

static const char *site_field(enum edge_endpoint ep)
{
	return ep == EDGE_EP_PLAUSIBLE ? "domain" :
	       ep == EDGE_EP_UMAMI     ? "payload.website" :
					 "siteId";
}

/* Answer a request whose events are not stored on purpose (DNT/GPC, bot),
 * the same way as a stored one, so a client cannot tell. */
static void respond_stored(struct edge_conn *c)
{
	char body[128], id[37];

	if (c->route == EDGE_R_PLAUSIBLE) {
		char cors[512];

		edge_metrics_request(c->route, 202);
		edge_conn_respond(c, 202, "text/plain",
				  cors_headers(c, cors, sizeof(cors)), "ok", 2);
		return;
	}
	if (c->route == EDGE_R_UMAMI) {
		respond_json(c, 200, NULL, "{}\n");
		return;
	}
	if (c->route == EDGE_R_BATCH || c->route == EDGE_R_INTERACTION) {
		snprintf(body, sizeof(body),
			 "{\"success\":true,\"count\":%u}\n", c->nevents);
	} else {
		uuid_str(c->first_id, id);
		snprintf(body, sizeof(body),
			 "{\"success\":true,\"eventId\":\"%s\"}\n", id);
	}
	respond_json(c, 200, NULL, body);
}

struct ingest_site {
	const struct edge_site *site;
	bool store;
	uint16_t flags;
	uint64_t visitor;
};

/* Resolve the sites the body or the Origin names. Returns the count, or
 * 0 after answering with an error. */
static size_t resolve_sites(struct edge_conn *c, const struct edge_config *cfg,
			    enum edge_endpoint ep,
			    const struct edge_parse_result *pr,
			    struct ingest_site *out)
{
	size_t olen, n = 0;
	const char *origin = edge_req_header(c, EDGE_H_ORIGIN, &olen);
	const char *p = pr->site_hint.p, *end = p + pr->site_hint.len;

	if (pr->site_hint.len == 0) {
		const struct edge_site *s =
			origin ? edge_config_site_by_origin(cfg, origin, olen) :
				 NULL;

		if (!s) {
			respond_error(c, 400, NULL, site_field(ep),
				      "no site: name it in the body, or send "
				      "from a configured domain");
			return 0;
		}
		out[0].site = s;
		return 1;
	}
	while (p < end) {
		const char *q = p;
		const struct edge_site *s;

		while (q < end && *q != ',')
			q++;
		{
			const char *a = p, *b = q;

			while (a < b && (*a == ' ' || *a == '\t'))
				a++;
			while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
				b--;
			if (b > a) {
				if (n == EDGE_SITES_PER_REQUEST) {
					respond_error(c, 400, NULL,
						      site_field(ep),
						      "too many sites");
					return 0;
				}
				s = edge_config_site(cfg, a, (size_t)(b - a));
				if (!s) {
					respond_error(c, 400, NULL,
						      site_field(ep),
						      "unknown site");
					return 0;
				}
				out[n++].site = s;
			}
		}
		p = q + 1;
	}
	if (n == 0)
		respond_error(c, 400, NULL, site_field(ep), "empty site");
	return n;
}

static bool bearer_ok(struct edge_conn *c, const char *key)
{
	size_t len, klen = strlen(key);
	const char *v = edge_req_header(c, EDGE_H_AUTHORIZATION, &len);

	return v && len == 7 + klen && strncasecmp(v, "Bearer ", 7) == 0 &&
	       memcmp(v + 7, key, klen) == 0;
}

static void ingest(struct edge_conn *c, enum edge_endpoint ep)
{
	struct edge_server *srv = c->w->srv;
	const struct edge_config *cfg;
	struct edge_event_limits lim = { .batch_events_max =
						 srv->limits.batch_events,
					 .body_depth_max = 32 };
	struct edge_parse_result pr;
	struct edge_parse_error perr;
	struct ingest_site sites[EDGE_SITES_PER_REQUEST];
	struct edge_addr client;
	struct edge_geo_result geo;
	struct iovec *iov = NULL;
	uint8_t *buf = NULL;
	size_t nsites, olen, ctlen, ualen, total = 0, used = 0, cap = 0;
	const char *origin, *ct, *ua;
	char xff[1024], xri[64], dnt[8], gpc[8];
	uint64_t now_ms = alog_now_ms(), now_ns = alog_mono_ns();
	unsigned nstore = 0;
	bool opt_out, bot;
	int rc;

	ct = edge_req_header(c, EDGE_H_CONTENT_TYPE, &ctlen);
	if (!ctype_ok(ct, ctlen)) {
		edge_metrics_rejected(EDGE_REJ_INVALID, 1);
		respond_error(c, 415, NULL, "Content-Type",
			      "use application/json or text/plain");
		return;
	}
	rc = edge_event_parse(ep, c->req.body ? c->req.body : "",
			      c->req.body_len, &lim, &pr, &perr);
	if (rc == -E2BIG) {
		edge_metrics_rejected(EDGE_REJ_TOO_LARGE, 1);
		respond_error(c, 413, NULL, perr.field, perr.message);
		return;
	}
	if (rc < 0) {
		edge_metrics_rejected(EDGE_REJ_INVALID, 1);
		if (rc == -ENOMEM)
			respond_error(c, 503, "Retry-After: 1\r\n", "",
				      "out of memory");
		else
			respond_error(c, 400, NULL, perr.field, perr.message);
		return;
	}
	if (pr.n == 0) { /* e.g. Umami "identify": nothing to store */
		edge_parse_result_free(&pr);
		respond_stored(c);
		return;
	}

	pthread_rwlock_rdlock(&srv->cfg_lock);
	cfg = srv->cfg;
	origin = edge_req_header(c, EDGE_H_ORIGIN, &olen);
	if (origin && olen > 300)
		origin = NULL;
	nsites = resolve_sites(c, cfg, ep, &pr, sites);
	if (nsites == 0)
		goto out_unlock;
	for (size_t i = 0; i < nsites; i++) {
		const struct edge_site *s = sites[i].site;
		bool from_domain = origin &&
				   edge_site_allows_origin(s, origin, olen);

		if (origin && s->ndomains > 0 && !from_domain) {
			edge_metrics_rejected(EDGE_REJ_FORBIDDEN, pr.n);
			respond_error(c, 403, NULL, "Origin",
				      "origin not allowed for this site");
			goto out_unlock;
		}
		if (from_domain)
			c->cors_ok = true;
		if (s->write_key && !from_domain &&
		    !bearer_ok(c, s->write_key)) {
			edge_metrics_rejected(EDGE_REJ_FORBIDDEN, pr.n);
			respond_error(c, 401, "WWW-Authenticate: Bearer\r\n",
				      "Authorization",
				      "this site needs its write key");
			goto out_unlock;
		}
	}

	/* Privacy at the door. */
	ua = edge_req_header(c, EDGE_H_USER_AGENT, &ualen);
	hdr_copy(c, EDGE_H_DNT, dnt, sizeof(dnt));
	hdr_copy(c, EDGE_H_SEC_GPC, gpc, sizeof(gpc));
	opt_out = edge_privacy_opt_out(dnt, strlen(dnt), gpc, strlen(gpc));
	bot = edge_ua_is_bot(ua ? ua : "", ua ? ualen : 0);
	hdr_copy(c, EDGE_H_XFF, xff, sizeof(xff));
	hdr_copy(c, EDGE_H_X_REAL_IP, xri, sizeof(xri));
	edge_client_addr(&c->peer, xff[0] ? xff : NULL, strlen(xff),
			 xri[0] ? xri : NULL, strlen(xri), cfg->trusted,
			 cfg->ntrusted, &client);
	for (size_t i = 0; i < nsites; i++) {
		struct ingest_site *is = &sites[i];

		is->store = true;
		is->flags = 0;
		if (opt_out) {
			if (!is->site->keep_dnt) {
				is->store = false;
				edge_metrics_rejected(EDGE_REJ_DNT, pr.n);
			}
			is->flags |= ALOG_EVENT_F_DNT;
		}
		if (bot) {
			if (is->site->bots == EDGE_BOTS_DROP) {
				if (is->store)
					edge_metrics_rejected(EDGE_REJ_BOT,
							      pr.n);
				is->store = false;
			}
			is->flags |= ALOG_EVENT_F_BOT;
		}
		if (!is->store)
			continue;
		nstore += (unsigned)pr.n;
		if (srv->rl_site &&
		    !edge_ratelimit_take(srv->rl_site, is->site->key, now_ns,
					 (unsigned)pr.n)) {
			edge_metrics_rejected(EDGE_REJ_RATE_LIMITED, pr.n);
			respond_error(c, 429, "Retry-After: 1\r\n", "",
				      "too many events for this site");
			goto out_unlock;
		}
		rc = edge_visitor_hash(srv->salts, now_ms, is->site->id,
				       strlen(is->site->id), &client,
				       ua ? ua : "", ua ? ualen : 0,
				       &is->visitor);
		if (rc < 0) {
			respond_error(c, 503, "Retry-After: 5\r\n", "",
				      "visitor hash unavailable");
			goto out_unlock;
		}
	}
	c->nevents = (unsigned)pr.n;
	if (nstore == 0) {
		/* Acknowledged, not stored: DNT/GPC or a dropped bot. */
		edge_uuid7(c->first_id, now_ms);
		pthread_rwlock_unlock(&srv->cfg_lock);
		edge_parse_result_free(&pr);
		respond_stored(c);
		return;
	}
	if (srv->rl_client &&
	    !edge_ratelimit_take(srv->rl_client,
				 edge_client_key(srv->salts, now_ms, &client),
				 now_ns, nstore)) {
		edge_metrics_rejected(EDGE_REJ_RATE_LIMITED, nstore);
		respond_error(c, 429, "Retry-After: 1\r\n", "",
			      "too many events from this client");
		goto out_unlock;
	}
	edge_geo_lookup(srv->geo, &client, &geo);
	memset(&client, 0, sizeof(client)); /* done with the address */

	/* Encode every event of every stored site into one buffer. */
	iov = calloc(nstore, sizeof(*iov));
	if (!iov)
		goto out_nomem;
	for (size_t i = 0; i < nsites; i++) {
		if (!sites[i].store)
			continue;
		for (size_t k = 0; k < pr.n; k++) {
			struct alog_event e = pr.events[k];
			size_t len;

			if (cap - used < ALOG_EVENT_BYTES_MAX) {
				size_t ncap =
					cap ? cap * 2 :
					      (size_t)nstore * 1024 +
							ALOG_EVENT_BYTES_MAX;
				uint8_t *nb;

				while (ncap - used < ALOG_EVENT_BYTES_MAX)
					ncap *= 2;
				nb = realloc(buf, ncap);
				if (!nb)
					goto out_nomem;
				buf = nb;
				cap = ncap;
			}
			e.site.p = sites[i].site->id;
			e.site.len = strlen(sites[i].site->id);
			e.flags |= sites[i].flags;
			edge_uuid7(e.id, now_ms);
			e.received_ms = now_ms;
			e.visitor = sites[i].visitor;
			memcpy(e.country, geo.country, 2);
			e.region.p = geo.region;
			e.region.len = strlen(geo.region);
			e.city.p = geo.city;
			e.city.len = strlen(geo.city);
			if (ua) {
				e.user_agent.p = ua;
				e.user_agent.len = alog_event_utf8_prefix(
					ua, ualen, ALOG_EVENT_UA_MAX);
			}
			rc = alog_event_encode(&e, buf + used, cap - used,
					       &len);
			if (rc < 0) {
				edge_metrics_rejected(EDGE_REJ_TOO_LARGE, pr.n);
				respond_error(
					c, 413, NULL, "",
					"an event is over the 16 KiB limit");
				goto out_unlock;
			}
			if (total == 0)
				memcpy(c->first_id, e.id, 16);
			/* Offsets, not pointers: buf may move. */
			iov[total].iov_base = (void *)(uintptr_t)used;
			iov[total].iov_len = len;
			used += len;
			total++;
		}
	}
	pthread_rwlock_unlock(&srv->cfg_lock);
	edge_parse_result_free(&pr);
	for (size_t i = 0; i < total; i++)
		iov[i].iov_base = buf + (uintptr_t)iov[i].iov_base;

	/* Durable before we answer: the commit thread calls us back. */
	c->append_ns = alog_mono_ns();
	c->ops++;
	rc = alog_log_append(srv->log, iov, (unsigned)total, NULL,
			     edge_conn_durable_cb, c);
	free(iov);
	free(buf);
	if (rc < 0) {
		c->ops--;
		edge_metrics_rejected(rc == -EMSGSIZE ?
					      EDGE_REJ_TOO_LARGE :
					      EDGE_REJ_LOG_UNAVAILABLE,
				      total);
		if (rc == -EMSGSIZE)
			respond_error(c, 413, NULL, "",
				      "request over the log's batch limit");
		else
			respond_error(c, 503, "Retry-After: 5\r\n", "",
				      alog_strerror(rc));
	}
	return;

out_nomem:
	respond_error(c, 503, "Retry-After: 1\r\n", "", "out of memory");
out_unlock:
	pthread_rwlock_unlock(&srv->cfg_lock);
	edge_parse_result_free(&pr);
	free(iov);
	free(buf);
}

void edge_route_durable(struct edge_conn *c)
{
	edge_metrics_append_latency(alog_mono_ns() - c->append_ns);
	if (c->done_status < 0) {
		edge_metrics_rejected(EDGE_REJ_LOG_UNAVAILABLE, c->nevents);
		respond_error(c, 503, "Retry-After: 5\r\n", "",
			      alog_strerror(c->done_status));
		return;
	}
	edge_metrics_accepted(c->nevents);
	respond_stored(c);
}

void edge_route_request(struct edge_conn *c)
{
	char path[256];
	struct http_parser_url u;
	const char *url = c->req.arena + c->req.url_off;
	size_t plen = 0;
	int method = c->parser.method;

	c->cors_ok = false;
	c->route = EDGE_R_OTHER;
	http_parser_url_init(&u);
	if (http_parser_parse_url(url, c->req.url_len, 0, &u) == 0 &&
	    (u.field_set & (1 << UF_PATH))) {
		plen = u.field_data[UF_PATH].len;
		if (plen >= sizeof(path))
			plen = 0;
		else
			memcpy(path, url + u.field_data[UF_PATH].off, plen);
	}
	path[plen] = 0;
	for (size_t i = 0; i < ALOG_ARRAY_LEN(routes); i++) {
		if (strcmp(path, routes[i].path) != 0)
			continue;
		c->route = routes[i].route;
		if (routes[i].endpoint >= 0) {
			if (method == HTTP_OPTIONS) {
				route_preflight(c);
			} else if (method == HTTP_POST) {
				ingest(c,
				       (enum edge_endpoint)routes[i].endpoint);
			} else {
				respond_error(c, 405,
					      "Allow: POST, OPTIONS\r\n", "",
					      "use POST");
			}
			return;
		}
		if (method != HTTP_GET) {
			respond_error(c, 405, "Allow: GET\r\n", "", "use GET");
			return;
		}
		switch (routes[i].route) {
		case EDGE_R_SCRIPT:
			edge_metrics_request(c->route, 200);
			edge_conn_respond(
				c, 200, "application/javascript; charset=utf-8",
				"Cache-Control: public, max-age=3600\r\n"
				"Access-Control-Allow-Origin: *\r\n",
				edge_script_js, edge_script_js_len);
			return;
		case EDGE_R_HEALTH:
			route_health(c, false);
			return;
		case EDGE_R_READY:
			route_health(c, true);
			return;
		default:
			route_metrics(c);
			return;
		}
	}
	respond_error(c, 404, NULL, "", "no such endpoint");
}
