/*
 * writer_batch.c - one batch of log records becomes one transaction.
 *
 * Two passes over the batch. The first decodes every record and collects
 * the visitors whose open session is not in memory, which one query then
 * fetches. The second enriches each event (user agent, URL, traffic
 * source), assigns its session, appends its COPY row and adds it to the
 * batch's session and rollup deltas. Then, in one transaction: partitions
 * the batch needs, COPY events, dead letters, the session upsert, the
 * rollup upsert, the log's offset, COMMIT (docs/writer.md).
 *
 * In-memory state that outlives a batch (the session cache, the known
 * partitions) is only ever a cache of what is committed: anything that
 * goes wrong before COMMIT returns throws the session cache away.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "alog_common.h"
#include "alog_event.h"
#include "writer.h"
#include "writer_source.h"
#include "writer_ua.h"

#define DAY_MS (24ull * 3600 * 1000)
#define HOUR_MS (3600ull * 1000)
#define SITES_MAX 100000
#define PARTITIONS_MAX 8192 /* days: more than 20 years of retention */

/* ---- Tables and columns (the schema check uses the same lists) ----------- */

static const char *const event_cols[] = {
	"received_at", "event_id", "site", "kind", "api", "name", "flags",
	"bot", "client_at", "visitor", "session_id", "client_session",
	"user_id", "url", "host", "path", "query", "referrer",
	"referrer_host", "referrer_path", "channel", "source", "utm_source",
	"utm_medium", "utm_campaign", "utm_content", "utm_term", "country",
	"region", "city", "user_agent", "browser", "browser_version", "os",
	"os_version", "device", "device_brand", "device_model", "language",
	"timezone", "screen_width", "screen_height", "viewport_width",
	"viewport_height", "touch_points", "title", "hostname", "content_id",
	"content_type", "props", "device_extra", "revenue", "currency",
	"funnel_id", "step_id", "step_order", "target_id", "target_type",
	"log_name", "log_offset", NULL
};

static const char *const session_cols[] = {
	"session_id", "site", "visitor", "started_at", "last_seen_at",
	"entry_page", "exit_page", "exit_at", "pageviews", "events",
	"interactive", "channel", "source", "referrer_host", "utm_source",
	"utm_medium", "utm_campaign", "country", "device", "browser", "os",
	"duration_ms", "bounce", NULL
};

static const char *const rollup_cols[] = {
	"site", "bucket", "dim", "value", "pageviews", "events", "revenue",
	"visitors", NULL
};

static const char *const offset_cols[] = { "log_name", "next_offset",
					   "updated_at", NULL };
static const char *const dead_cols[] = { "log_name", "log_offset", "reason",
					 "record", NULL };

const struct wr_table wr_tables[] = {
	{ "events", event_cols },
	{ "sessions", session_cols },
	{ "rollup_hourly", rollup_cols },
	{ "rollup_daily", rollup_cols },
	{ "consumer_offsets", offset_cols },
	{ "dead_letters", dead_cols },
	{ NULL, NULL },
};

/* The session delta's columns, in COPY order (a temp table). */
#define SESSION_DELTA_COLS                                                    \
	"session_id, site, visitor, started_at, last_seen_at, entry_page, "  \
	"exit_page, exit_at, pageviews, events, interactive, channel, "      \
	"source, referrer_host, utm_source, utm_medium, utm_campaign, "      \
	"country, device, browser, os"

static const char temp_tables_sql[] =
	"CREATE TEMP TABLE IF NOT EXISTS session_delta ("
	" session_id uuid, site text, visitor bigint, started_at timestamptz,"
	" last_seen_at timestamptz, entry_page text, exit_page text,"
	" exit_at timestamptz, pageviews integer, events integer,"
	" interactive integer, channel text, source text, referrer_host text,"
	" utm_source text, utm_medium text, utm_campaign text,"
	" country char(2), device text, browser text, os text)"
	" ON COMMIT DELETE ROWS;"
	"CREATE TEMP TABLE IF NOT EXISTS rollup_delta ("
	" site text, bucket timestamptz, dim text, value text,"
	" pageviews bigint, events bigint, revenue numeric(26, 6),"
	" visitors bigint[]) ON COMMIT DELETE ROWS";

static const char session_upsert_sql[] =
	"INSERT INTO sessions AS s (" SESSION_DELTA_COLS ") "
	"SELECT " SESSION_DELTA_COLS " FROM session_delta ORDER BY session_id "
	"ON CONFLICT (session_id) DO UPDATE SET"
	" started_at = least(s.started_at, excluded.started_at),"
	" last_seen_at = greatest(s.last_seen_at, excluded.last_seen_at),"
	" entry_page = coalesce(s.entry_page, excluded.entry_page),"
	" exit_page = CASE WHEN excluded.exit_at IS NOT NULL AND"
	"  (s.exit_at IS NULL OR excluded.exit_at >= s.exit_at)"
	"  THEN excluded.exit_page ELSE s.exit_page END,"
	" exit_at = greatest(s.exit_at, excluded.exit_at),"
	" pageviews = s.pageviews + excluded.pageviews,"
	" events = s.events + excluded.events,"
	" interactive = s.interactive + excluded.interactive";

/* Hourly rows as they are; daily rows are the hourly deltas by day. The
 * visitor hashes are uniform already, so they are the hll's hash values. */
static const char rollup_upsert_sql[] =
	"WITH d AS (SELECT site, bucket, dim, value, pageviews, events,"
	"  revenue, (SELECT hll_add_agg(v::hll_hashval) FROM unnest(visitors) v)"
	"  AS h FROM rollup_delta),"
	" hourly AS (INSERT INTO rollup_hourly AS r SELECT site, bucket, dim,"
	"  value, pageviews, events, revenue, h FROM d ORDER BY 1, 2, 3, 4"
	"  ON CONFLICT (site, bucket, dim, value) DO UPDATE SET"
	"  pageviews = r.pageviews + excluded.pageviews,"
	"  events = r.events + excluded.events,"
	"  revenue = r.revenue + excluded.revenue,"
	"  visitors = hll_union(r.visitors, excluded.visitors))"
	"INSERT INTO rollup_daily AS r SELECT site,"
	"  (bucket AT TIME ZONE 'UTC')::date, dim, value, sum(pageviews),"
	"  sum(events), sum(revenue), hll_union_agg(h) FROM d"
	"  GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
	"  ON CONFLICT (site, bucket, dim, value) DO UPDATE SET"
	"  pageviews = r.pageviews + excluded.pageviews,"
	"  events = r.events + excluded.events,"
	"  revenue = r.revenue + excluded.revenue,"
	"  visitors = hll_union(r.visitors, excluded.visitors)";

/* Rollup dimensions (docs/writer.md, "Rollups"). */
enum {
	DIM_ALL,
	DIM_PAGE,
	DIM_SOURCE,
	DIM_CHANNEL,
	DIM_REFERRER,
	DIM_UTM_SOURCE,
	DIM_UTM_MEDIUM,
	DIM_UTM_CAMPAIGN,
	DIM_COUNTRY,
	DIM_DEVICE,
	DIM_BROWSER,
	DIM_OS,
	DIM_EVENT,
	DIM_COUNT
};

static const char *const dim_names[DIM_COUNT] = {
	"all", "page", "source", "channel", "referrer", "utm_source",
	"utm_medium", "utm_campaign", "country", "device", "browser", "os",
	"event",
};

/* ---- Sites: interned so that caches key on a small integer --------------- */

struct site_tab {
	char **names;   /* by id */
	uint32_t n;
	uint32_t *slots; /* id + 1, 0 empty; open addressing */
	uint32_t mask;
};

static uint32_t site_intern(struct site_tab *t, const char *p, size_t len)
{
	uint64_t h = XXH3_64bits(p, len);
	uint32_t i, id;

	if (!t->slots || (t->n + 1) * 2 > t->mask + 1) {
		uint32_t cap = t->slots ? (t->mask + 1) * 2 : 256;
		uint32_t *slots = calloc(cap, sizeof(*slots));
		char **names = realloc(t->names, cap / 2 * sizeof(*names));

		if (!slots || !names)
			abort();
		t->names = names;
		for (id = 0; id < t->n; id++) {
			const char *s = t->names[id];

			i = (uint32_t)XXH3_64bits(s, strlen(s)) & (cap - 1);
			while (slots[i])
				i = (i + 1) & (cap - 1);
			slots[i] = id + 1;
		}
		free(t->slots);
		t->slots = slots;
		t->mask = cap - 1;
	}
	for (i = (uint32_t)h & t->mask; t->slots[i]; i = (i + 1) & t->mask) {
		const char *s = t->names[t->slots[i] - 1];

		if (strlen(s) == len && !memcmp(s, p, len))
			return t->slots[i] - 1;
	}
	id = t->n++;
	t->names[id] = strndup(p, len);
	if (!t->names[id])
		abort();
	t->slots[i] = id + 1;
	return id;
}

static void site_tab_free(struct site_tab *t)
{
	uint32_t i;

	for (i = 0; i < t->n; i++)
		free(t->names[i]);
	free(t->names);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/* ---- The session cache: each visitor's open session ------------------------ */

struct sess {
	uint64_t visitor;
	uint32_t site; /* site id + 1; 0: empty slot */
	bool open;     /* id, started_ms, last_ms hold the open session */
	bool none;     /* looked up: no open session in the database */
	uint8_t id[16];
	uint64_t started_ms, last_ms;
	int32_t delta; /* index into this batch's deltas, -1 */
	uint32_t batch_gen;
};

struct sess_tab {
	struct sess *slots;
	size_t mask, n, max;
};

static uint64_t sess_hash(uint32_t site, uint64_t visitor)
{
	return XXH3_64bits_withSeed(&visitor, sizeof(visitor), site);
}

static struct sess *sess_find(struct sess_tab *t, uint32_t site,
			      uint64_t visitor, bool insert)
{
	size_t i = sess_hash(site, visitor) & t->mask;

	for (; t->slots[i].site; i = (i + 1) & t->mask)
		if (t->slots[i].site == site + 1 &&
		    t->slots[i].visitor == visitor)
			return &t->slots[i];
	if (!insert)
		return NULL;
	t->n++;
	memset(&t->slots[i], 0, sizeof(t->slots[i]));
	t->slots[i].site = site + 1;
	t->slots[i].visitor = visitor;
	t->slots[i].delta = -1;
	return &t->slots[i];
}

static void sess_clear(struct sess_tab *t)
{
	memset(t->slots, 0, (t->mask + 1) * sizeof(*t->slots));
	t->n = 0;
}

/*
 * Drop the sessions that ended before horizon (their last event 30 minutes
 * or more before any event still to come) and the negative entries.
 * Returns the number kept.
 */
static size_t sess_sweep(struct sess_tab *t, uint64_t horizon)
{
	struct sess *keep;
	size_t i, n = 0;

	keep = malloc((t->n ? t->n : 1) * sizeof(*keep));
	if (!keep) {
		sess_clear(t);
		return 0;
	}
	for (i = 0; i <= t->mask; i++)
		if (t->slots[i].site && t->slots[i].open &&
		    t->slots[i].last_ms >= horizon)
			keep[n++] = t->slots[i];
	sess_clear(t);
	for (i = 0; i < n; i++) {
		struct sess *s = sess_find(t, keep[i].site - 1, keep[i].visitor,
					   true);

		*s = keep[i];
		s->delta = -1;
		s->batch_gen = 0;
	}
	free(keep);
	return n;
}

/*
 * An open-addressing index over an array: slots hold element index + 1
 * (0: empty), kept at most half full. The caller probes it; it grows here,
 * rehashing elements 0..n-1 with hash(ctx, k).
 */
struct idx_tab {
	uint32_t *slots;
	size_t mask;
};

static void idx_reserve(struct idx_tab *t, size_t n, size_t first_cap,
			uint64_t (*hash)(const void *ctx, size_t k),
			const void *ctx)
{
	size_t cap, k, i;
	uint32_t *slots;

	if (t->slots && (n + 1) * 2 <= t->mask + 1)
		return;
	cap = t->slots ? (t->mask + 1) * 2 : first_cap;
	slots = calloc(cap, sizeof(*slots));
	if (!slots)
		abort();
	for (k = 0; k < n; k++) {
		for (i = hash(ctx, k) & (cap - 1); slots[i]; i = (i + 1) & (cap - 1))
			;
		slots[i] = (uint32_t)k + 1;
	}
	free(t->slots);
	t->slots = slots;
	t->mask = cap - 1;
}

static void idx_clear(struct idx_tab *t)
{
	if (t->slots)
		memset(t->slots, 0, (t->mask + 1) * sizeof(*t->slots));
}

/* ---- Per-batch deltas ------------------------------------------------------ */

/* Strings of a batch's deltas live in one buffer, referred to by offset. */
struct sref {
	uint32_t at, len;
};

struct sdelta {
	uint8_t id[16];
	uint32_t site;
	uint64_t visitor;
	uint64_t started_ms, last_ms, exit_ms; /* exit_ms 0: no page view */
	struct sref entry, exit, channel, source, referrer_host, utm[3],
		device, browser, os;
	char country[2];
	uint32_t pageviews, events, interactive;
};

struct rdelta {
	uint64_t hash;
	uint32_t site;
	uint8_t dim;
	uint64_t hour_ms;
	struct sref value;
	uint64_t pageviews, events;
	int64_t revenue;
	uint32_t first_visitor; /* index into rvis + 1: a chain by next */
};

/* A delta's distinct visitors: a chain through rvis, deduplicated by a
 * hash set of (delta, visitor) (rv_idx). */
struct rvis {
	uint64_t visitor;
	uint32_t delta;
	uint32_t next; /* index + 1, 0 ends the chain */
};

/* A row's enrichment, the parts its session and rollups need. */
struct enriched {
	const char *path, *channel, *source, *referrer_host, *utm[5],
		*device, *browser, *os;
	bool bot;
};

struct wr_engine {
	struct wr_config cfg;
	struct ua_parser *ua;
	struct ua_cache *ua_cache;
	struct site_tab sites;
	struct sess_tab sess;
	uint32_t gen;
	/*
	 * Complete: the cache holds every session whose last event is at or
	 * after complete_since (loaded from the database after a reset, then
	 * kept), so a visitor it does not know, at an event time t >=
	 * complete_since + 30 min, has no open session: no lookup needed.
	 */
	bool complete, load_refused;
	uint64_t complete_since;

	/* known partitions, by day number (days since the epoch) */
	int64_t *days;
	size_t ndays;

	/* per batch */
	struct alog_event *ev;
	int *ev_state; /* 0 ok, else a dead-letter reason index */
	const char **ev_reason;
	size_t ev_cap;
	struct wr_buf strs, sql;
	struct wr_buf *out_rows;  /* the batch's events rows */
	struct wr_prepared own;   /* wr_engine_write's */
	struct sdelta *sd;
	size_t nsd, sdcap;
	struct rdelta *rd;
	size_t nrd, rdcap;
	struct idx_tab rd_idx; /* rd by key */
	struct rvis *rv;
	size_t nrv, rvcap;
	struct idx_tab rv_idx; /* rv by (delta, visitor) */
	int64_t new_days[64];
	size_t nnew_days;

	struct src_url url;
	struct src_traffic traffic;
	/* NUL-terminated copies of an event's UTM fields and page host */
	char utm_tmp[5][ALOG_EVENT_STRING_MAX + 1];
	char host_tmp[ALOG_EVENT_STRING_MAX + 1];
	char url_tmp[SRC_URL_MAX]; /* https://hostname/path of Umami's */
	struct wr_stats stats;
};

static struct sref sref_put(struct wr_engine *e, const char *s)
{
	struct sref r = { (uint32_t)e->strs.len, 0 };

	if (s && *s) {
		r.len = (uint32_t)strlen(s);
		wr_buf_put(&e->strs, s, r.len);
	}
	return r;
}

static const char *sref_ptr(const struct wr_engine *e, struct sref r)
{
	return e->strs.p + r.at;
}

/* ---- Engine ----------------------------------------------------------------- */

struct wr_engine *wr_engine_new(const struct wr_config *cfg, char *err,
				size_t errlen)
{
	struct wr_engine *e = calloc(1, sizeof(*e));
	size_t cap = 1024;

	if (!e) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->cfg = *cfg;
	e->ua = ua_parser_open(cfg->uap_path, err, errlen);
	if (!e->ua)
		goto fail;
	{
		size_t nre, njit;

		ua_parser_info(e->ua, &nre, &njit);
		if (njit < nre)
			wr_log_info("warning: %zu of %zu user-agent regexes run "
				    "in PCRE2's interpreter, not JIT code "
				    "(slower)", nre - njit, nre);
	}
	e->ua_cache = ua_cache_new(e->ua, cfg->ua_cache_entries);
	while (cap < cfg->session_cache_entries * 2)
		cap *= 2;
	e->sess.slots = calloc(cap, sizeof(*e->sess.slots));
	e->sess.mask = cap - 1;
	e->sess.max = cfg->session_cache_entries;
	e->days = calloc(PARTITIONS_MAX, sizeof(*e->days));
	if (!e->ua_cache || !e->sess.slots || !e->days) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	return e;
fail:
	wr_engine_free(e);
	return NULL;
}

void wr_engine_free(struct wr_engine *e)
{
	if (!e)
		return;
	ua_cache_free(e->ua_cache);
	ua_parser_close(e->ua);
	site_tab_free(&e->sites);
	free(e->sess.slots);
	free(e->days);
	free(e->ev);
	free(e->ev_state);
	free(e->ev_reason);
	wr_prepared_free(&e->own);
	wr_buf_free(&e->strs);
	wr_buf_free(&e->sql);
	free(e->sd);
	free(e->rd);
	free(e->rd_idx.slots);
	free(e->rv);
	free(e->rv_idx.slots);
	free(e);
}

void wr_engine_reset(struct wr_engine *e)
{
	sess_clear(&e->sess);
	e->complete = e->load_refused = false;
	/* The partition list is re-read too: a rolled-back CREATE must not
	 * be remembered, and someone may have dropped one by hand. */
	e->ndays = 0;
}

struct wr_stats *wr_engine_stats(struct wr_engine *e)
{
	uint64_t hits = 0, misses = 0;

	ua_cache_stats(e->ua_cache, &hits, &misses);
	e->stats.ua_hits = hits;
	e->stats.ua_misses = misses;
	return &e->stats;
}

/* ---- Partitions -------------------------------------------------------------- */

static int64_t day_of(uint64_t ms)
{
	return (int64_t)(ms / DAY_MS);
}

static void day_name(int64_t day, char *out, size_t cap, bool dashed)
{
	time_t t = (time_t)(day * 86400);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, cap, dashed ? "%Y-%m-%d" : "%Y%m%d", &tm);
}

static bool day_known(const struct wr_engine *e, int64_t day)
{
	size_t i;

	for (i = 0; i < e->ndays; i++)
		if (e->days[i] == day)
			return true;
	return false;
}

static enum wr_err load_partitions(struct wr_engine *e, struct wr_db *db)
{
	PGresult *res;
	enum wr_err rc;
	int i;

	rc = wr_exec(db,
		     "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON"
		     " c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass",
		     &res);
	if (rc != WR_OK)
		return rc;
	e->ndays = 0;
	for (i = 0; i < PQntuples(res) && e->ndays < PARTITIONS_MAX; i++) {
		const char *n = PQgetvalue(res, i, 0);
		struct tm tm = { 0 };

		/* events_YYYYMMDD; other partitions (made by hand) are left
		 * alone. */
		if (strlen(n) != 15 || strncmp(n, "events_", 7) ||
		    !strptime(n + 7, "%Y%m%d", &tm))
			continue;
		e->days[e->ndays++] = (int64_t)timegm(&tm) / 86400;
	}
	PQclear(res);
	return WR_OK;
}

static void partition_sql(struct wr_buf *b, int64_t day)
{
	char name[16], from[16], to[16];

	day_name(day, name, sizeof(name), false);
	day_name(day, from, sizeof(from), true);
	day_name(day + 1, to, sizeof(to), true);
	wr_buf_printf(b,
		      "CREATE TABLE IF NOT EXISTS events_%s PARTITION OF events"
		      " FOR VALUES FROM ('%s 00:00:00+00') TO "
		      "('%s 00:00:00+00');",
		      name, from, to);
}

enum wr_err wr_engine_housekeeping(struct wr_engine *e, struct wr_db *db)
{
	int64_t today = day_of(alog_now_ms()), d;
	int64_t oldest = today - (int64_t)e->cfg.retention_days;
	enum wr_err rc;
	size_t i;
	char cutoff[16];
	unsigned dropped = 0;

	if ((rc = load_partitions(e, db)) != WR_OK)
		return rc;
	e->sql.len = 0;
	wr_buf_printf(&e->sql, "BEGIN;");
	for (d = today - 1; d <= today + (int64_t)e->cfg.partitions_ahead; d++)
		if (!day_known(e, d))
			partition_sql(&e->sql, d);
	for (i = 0; i < e->ndays; i++) {
		char name[16];

		if (e->days[i] >= oldest)
			continue;
		day_name(e->days[i], name, sizeof(name), false);
		wr_buf_printf(&e->sql, "DROP TABLE IF EXISTS events_%s;", name);
		dropped++;
	}
	day_name(oldest, cutoff, sizeof(cutoff), true);
	/* Dead letters keep a record's bytes: they go with the events. */
	wr_buf_printf(&e->sql,
		      "DELETE FROM sessions WHERE last_seen_at < "
		      "'%s 00:00:00+00';DELETE FROM dead_letters WHERE "
		      "created_at < '%s 00:00:00+00';COMMIT",
		      cutoff, cutoff);
	wr_buf_put(&e->sql, "", 1);
	rc = wr_exec(db, e->sql.p, NULL);
	if (rc != WR_OK) {
		wr_exec(db, "ROLLBACK", NULL);
		return rc;
	}
	if (dropped)
		wr_log_info("retention: dropped %u daily partitions before %s",
			    dropped, cutoff);
	return load_partitions(e, db);
}

/* ---- Pass 1: decode, find the visitors to look up --------------------------- */

static void grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t n = *cap ? *cap : 64;
	void *q;

	if (need <= *cap)
		return;
	while (n < need)
		n *= 2;
	q = realloc(*p, n * size);
	if (!q)
		abort();
	*p = q;
	*cap = n;
}

static const char *window_reason(const struct wr_engine *e, uint64_t ms)
{
	int64_t today = day_of(alog_now_ms()), d = day_of(ms);

	if (d < today - (int64_t)e->cfg.retention_days)
		return "received time older than the retention window";
	if (d > today + 1)
		return "received time more than a day in the future";
	return NULL;
}

static void decode_all(struct wr_engine *e, const struct wr_batch *b)
{
	size_t i;

	if (b->n > e->ev_cap) {
		size_t cap = e->ev_cap;

		grow((void **)&e->ev, &cap, b->n, sizeof(*e->ev));
		cap = e->ev_cap;
		grow((void **)&e->ev_state, &cap, b->n, sizeof(*e->ev_state));
		cap = e->ev_cap;
		grow((void **)&e->ev_reason, &cap, b->n,
		     sizeof(*e->ev_reason));
		e->ev_cap = cap;
	}
	for (i = 0; i < b->n; i++) {
		const struct wr_record *r = &b->recs[i];
		int rc;

		e->ev_state[i] = 1;
		if (r->lost) {
			e->ev_reason[i] = r->lost_reason;
			continue;
		}
		rc = alog_event_decode((const uint8_t *)b->arena.p + r->at,
				       r->len, &e->ev[i]);
		if (rc == -EPROTONOSUPPORT) {
			e->ev_reason[i] = "event record of an unknown version";
		} else if (rc < 0) {
			e->ev_reason[i] = "event record does not decode";
		} else if ((e->ev_reason[i] =
				    window_reason(e, e->ev[i].received_ms))) {
		} else {
			e->ev_state[i] = 0;
		}
	}
}

static uint64_t parse_u64(const char *s)
{
	return strtoull(s, NULL, 10);
}

static bool parse_uuid(const char *s, uint8_t out[16])
{
	int i = 0;

	while (*s && i < 32) {
		int v;

		if (*s == '-') {
			s++;
			continue;
		}
		if (*s >= '0' && *s <= '9')
			v = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			v = *s - 'a' + 10;
		else
			return false;
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)(v << 4);
		else
			out[i / 2] |= (uint8_t)v;
		i++;
		s++;
	}
	return i == 32;
}

/* Append s as an element of a PostgreSQL array literal, quoted. */
static void array_elem(struct wr_buf *b, const char *p, size_t len)
{
	size_t i;

	wr_buf_put(b, b->p[b->len - 1] == '{' ? "\"" : ",\"", 
		   b->p[b->len - 1] == '{' ? 1 : 2);
	for (i = 0; i < len; i++) {
		if (p[i] == '"' || p[i] == '\\')
			wr_buf_put(b, "\\", 1);
		wr_buf_put(b, p + i, 1);
	}
	wr_buf_put(b, "\"", 1);
}

/* Put the sessions of a query's rows (site, visitor, session id, started
 * ms, last seen ms) in the cache as open. */
static void cache_sessions(struct wr_engine *e, const PGresult *res)
{
	int row;

	for (row = 0; row < PQntuples(res); row++) {
		const char *site = PQgetvalue(res, row, 0);
		uint32_t sid = site_intern(&e->sites, site, strlen(site));
		struct sess *s = sess_find(
			&e->sess, sid,
			(uint64_t)strtoll(PQgetvalue(res, row, 1), NULL, 10),
			true);

		if (!parse_uuid(PQgetvalue(res, row, 2), s->id))
			continue;
		s->open = true;
		s->none = false;
		s->started_ms = parse_u64(PQgetvalue(res, row, 3));
		s->last_ms = parse_u64(PQgetvalue(res, row, 4));
	}
}

/*
 * After a reset: load every session that may still be open at since into
 * the cache and mark it complete, unless there are more than half the
 * cache's size (then lookups go on per batch).
 */
static enum wr_err load_open_sessions(struct wr_engine *e, struct wr_db *db,
				      uint64_t since)
{
	struct wr_buf t = { 0 };
	char ts[64], limit[24];
	const char *params[2] = { ts, limit };
	PGresult *res;
	enum wr_err rc;
	size_t max = e->sess.max / 2;
	int n;

	wr_copy_time(&t, since);
	snprintf(ts, sizeof(ts), "%.*s", (int)t.len, t.p);
	wr_buf_free(&t);
	snprintf(limit, sizeof(limit), "%zu", max + 1);
	rc = wr_exec_params(
		db,
		"SELECT DISTINCT ON (site, visitor) site, visitor,"
		" session_id::text,"
		" (extract(epoch FROM started_at) * 1000)::bigint,"
		" (extract(epoch FROM last_seen_at) * 1000)::bigint"
		" FROM sessions WHERE last_seen_at >= $1::timestamptz"
		" ORDER BY site, visitor, last_seen_at DESC LIMIT $2",
		2, params, NULL, NULL, &res);
	if (rc != WR_OK)
		return rc;
	n = PQntuples(res);
	if ((size_t)n > max) {
		e->load_refused = true;
		PQclear(res);
		return WR_OK;
	}
	cache_sessions(e, res);
	PQclear(res);
	e->complete = true;
	e->complete_since = since;
	e->stats.session_lookups += (uint64_t)n;
	return WR_OK;
}

/*
 * The visitors of this batch whose session is not in memory: one query
 * for all of them, for sessions that could still be open at the batch's
 * earliest event.
 */
static enum wr_err lookup_sessions(struct wr_engine *e, struct wr_db *db,
				   const struct wr_batch *b)
{
	struct wr_buf sites = { 0 }, visitors = { 0 };
	uint64_t tmin = UINT64_MAX;
	size_t i, want = 0;
	enum wr_err rc = WR_OK;
	PGresult *res = NULL;
	char since[64];

	wr_buf_put(&sites, "{", 1);
	wr_buf_put(&visitors, "{", 1);
	e->gen++;
	for (i = 0; i < b->n; i++) {
		const struct alog_event *ev = &e->ev[i];
		uint32_t site;
		struct sess *s;

		if (e->ev_state[i])
			continue;
		site = site_intern(&e->sites, ev->site.p, ev->site.len);
		s = sess_find(&e->sess, site, ev->visitor, true);
		if (ev->received_ms < tmin)
			tmin = ev->received_ms;
		if (s->open || s->none || s->batch_gen == e->gen)
			continue;
		/* Mark it as asked for; filled in below if found. */
		s->none = true;
		s->batch_gen = e->gen;
		if (e->complete &&
		    ev->received_ms >= e->complete_since + WR_SESSION_GAP_MS)
			continue; /* the cache would have it */
		array_elem(&sites, ev->site.p, ev->site.len);
		wr_buf_printf(&visitors, "%s%" PRId64, visitors.len > 1 ? "," : "",
			      (int64_t)ev->visitor);
		want++;
	}
	if (!want)
		goto out;
	wr_buf_put(&sites, "}", 2);
	wr_buf_put(&visitors, "}", 2);
	{
		struct wr_buf t = { 0 };

		wr_copy_time(&t, tmin > WR_SESSION_GAP_MS
					 ? tmin - WR_SESSION_GAP_MS
					 : 0);
		snprintf(since, sizeof(since), "%.*s", (int)t.len, t.p);
		wr_buf_free(&t);
	}
	const char *params[3] = { sites.p, visitors.p, since };

	rc = wr_exec_params(
		db,
		"SELECT DISTINCT ON (s.site, s.visitor) s.site, s.visitor,"
		" s.session_id::text,"
		" (extract(epoch FROM s.started_at) * 1000)::bigint,"
		" (extract(epoch FROM s.last_seen_at) * 1000)::bigint"
		" FROM sessions s JOIN unnest($1::text[], $2::bigint[]) AS"
		" k(site, visitor) ON s.site = k.site AND s.visitor = k.visitor"
		" WHERE s.last_seen_at >= $3::timestamptz"
		" ORDER BY s.site, s.visitor, s.last_seen_at DESC",
		3, params, NULL, NULL, &res);
	if (rc != WR_OK)
		goto out;
	e->stats.session_lookups += want;
	cache_sessions(e, res);
	PQclear(res);
out:
	wr_buf_free(&sites);
	wr_buf_free(&visitors);
	return rc;
}

/* ---- Pass 2: enrich, sessions, rows, rollups ------------------------------- */

static void ver(char *out, size_t cap, const struct ua_agent *a)
{
	if (!a->major[0])
		out[0] = '\0';
	else if (!a->minor[0])
		snprintf(out, cap, "%s", a->major);
	else
		snprintf(out, cap, "%s.%s", a->major, a->minor);
}

static void copy_opt(struct wr_buf *b, struct alog_str s)
{
	if (s.len)
		wr_copy_str(b, s.p, s.len);
	else
		wr_copy_null(b);
	wr_buf_put(b, "\t", 1);
}

static void copy_cs(struct wr_buf *b, const char *s)
{
	wr_copy_cstr_or_null(b, s);
	wr_buf_put(b, "\t", 1);
}

static void copy_u64(struct wr_buf *b, uint64_t v, bool present)
{
	if (present) {
		wr_buf_u64(b, v);
		wr_buf_put(b, "\t", 1);
	} else {
		wr_buf_put(b, "\\N\t", 3);
	}
}

static uint64_t rv_hash(const void *ctx, size_t k)
{
	const struct rvis *v = &((const struct wr_engine *)ctx)->rv[k];

	return XXH3_64bits_withSeed(&v->visitor, sizeof(v->visitor), v->delta);
}

static uint64_t rd_hash(const void *ctx, size_t k)
{
	return ((const struct wr_engine *)ctx)->rd[k].hash;
}

static void visitor_add(struct wr_engine *e, uint32_t delta, uint64_t visitor)
{
	uint64_t h = XXH3_64bits_withSeed(&visitor, sizeof(visitor), delta);
	struct idx_tab *t = &e->rv_idx;
	size_t i;
	struct rvis *v;

	idx_reserve(t, e->nrv, 1 << 16, rv_hash, e);
	for (i = h & t->mask; t->slots[i]; i = (i + 1) & t->mask) {
		v = &e->rv[t->slots[i] - 1];
		if (v->visitor == visitor && v->delta == delta)
			return;
	}
	grow((void **)&e->rv, &e->rvcap, e->nrv + 1, sizeof(*e->rv));
	v = &e->rv[e->nrv];
	v->visitor = visitor;
	v->delta = delta;
	v->next = e->rd[delta].first_visitor;
	e->rd[delta].first_visitor = (uint32_t)++e->nrv;
	t->slots[i] = (uint32_t)e->nrv;
}

static void rollup_add(struct wr_engine *e, uint32_t site, uint64_t hour,
		       int dim, const char *value, uint64_t visitor, bool pv,
		       int64_t revenue)
{
	size_t vlen = value ? strlen(value) : 0;
	uint64_t h = XXH3_64bits_withSeed(value ? value : "", vlen,
					  ((uint64_t)site << 40) ^
						  ((uint64_t)dim << 32) ^ hour);
	size_t i;
	struct rdelta *d;

	idx_reserve(&e->rd_idx, e->nrd, 4096, rd_hash, e);
	for (i = h & e->rd_idx.mask; e->rd_idx.slots[i];
	     i = (i + 1) & e->rd_idx.mask) {
		d = &e->rd[e->rd_idx.slots[i] - 1];
		if (d->hash == h && d->site == site && d->dim == dim &&
		    d->hour_ms == hour && d->value.len == vlen &&
		    !memcmp(sref_ptr(e, d->value), value ? value : "", vlen))
			goto found;
	}
	grow((void **)&e->rd, &e->rdcap, e->nrd + 1, sizeof(*e->rd));
	d = &e->rd[e->nrd];
	memset(d, 0, sizeof(*d));
	d->hash = h;
	d->site = site;
	d->dim = (uint8_t)dim;
	d->hour_ms = hour;
	d->value = sref_put(e, value);
	e->rd_idx.slots[i] = (uint32_t)++e->nrd;
found:
	if (pv)
		d->pageviews++;
	else
		d->events++;
	d->revenue += revenue;
	visitor_add(e, (uint32_t)(d - e->rd), visitor);
}

/* The session an event belongs to, opening one when needed. */
static struct sdelta *session_for(struct wr_engine *e, uint32_t site,
				  const struct alog_event *ev,
				  const struct enriched *x, bool *opened)
{
	struct sess *s = sess_find(&e->sess, site, ev->visitor, true);
	uint64_t t = ev->received_ms;
	struct sdelta *d;

	*opened = false;
	if (!s->open || t >= s->last_ms + WR_SESSION_GAP_MS ||
	    t + WR_SESSION_GAP_MS <= s->started_ms) {
		/* A new session; its id is this event's id. */
		memcpy(s->id, ev->id, 16);
		s->none = false;
		s->open = true;
		s->started_ms = s->last_ms = t;
		s->delta = -1;
		*opened = true;
	}
	if (t > s->last_ms)
		s->last_ms = t;
	if (t < s->started_ms)
		s->started_ms = t;
	if (s->delta >= 0 && s->batch_gen == e->gen &&
	    !memcmp(e->sd[s->delta].id, s->id, 16))
		return &e->sd[s->delta];

	grow((void **)&e->sd, &e->sdcap, e->nsd + 1, sizeof(*e->sd));
	d = &e->sd[e->nsd];
	memset(d, 0, sizeof(*d));
	memcpy(d->id, s->id, 16);
	d->site = site;
	d->visitor = ev->visitor;
	d->started_ms = d->last_ms = t;
	/* First-hit attributes; only used when the session is new. */
	d->channel = sref_put(e, x->channel);
	d->source = sref_put(e, x->source);
	d->referrer_host = sref_put(e, x->referrer_host);
	d->utm[0] = sref_put(e, x->utm[0]);
	d->utm[1] = sref_put(e, x->utm[1]);
	d->utm[2] = sref_put(e, x->utm[2]);
	d->device = sref_put(e, x->device);
	d->browser = sref_put(e, x->browser);
	d->os = sref_put(e, x->os);
	memcpy(d->country, ev->country, 2);
	s->delta = (int32_t)e->nsd++;
	s->batch_gen = e->gen;
	return d;
}

/*
 * The event's page URL into e->url. Umami's tracker sends the path and
 * query ("/docs?utm_source=gh") and the host apart (hostname): such a URL
 * is read as https://hostname/path. False when there is no URL that
 * parses.
 */
static bool parse_page_url(struct wr_engine *e, const struct alog_event *ev)
{
	const char *h = ev->hostname.p;
	size_t hn = ev->hostname.len, n = ev->url.len, k;

	if (n == 0)
		return false;
	if (src_url_parse(ev->url.p, n, &e->url) == 0)
		return true;
	if (ev->url.p[0] != '/' || (n > 1 && ev->url.p[1] == '/') || hn == 0 ||
	    8 + hn + n > SRC_URL_MAX)
		return false;
	for (k = 0; k < hn; k++)
		if (memchr("/\\?#@", h[k], 5))
			return false;
	memcpy(e->url_tmp, "https://", 8);
	memcpy(e->url_tmp + 8, h, hn);
	memcpy(e->url_tmp + 8 + hn, ev->url.p, n);
	return src_url_parse(e->url_tmp, 8 + hn + n, &e->url) == 0;
}

static void enrich_one(struct wr_engine *e, const struct wr_batch *b,
		       size_t i)
{
	const struct alog_event *ev = &e->ev[i];
	const struct ua_result *ua;
	struct enriched x = { 0 };
	struct sdelta *sd;
	struct wr_buf *r = e->out_rows;
	char bver[UA_FIELD_MAX * 2 + 2], over[UA_FIELD_MAX * 2 + 2];
	uint32_t site = site_intern(&e->sites, ev->site.p, ev->site.len);
	bool url_ok, opened, pv = ev->kind == ALOG_KIND_PAGEVIEW;
	const char *utm[5], *page_host;
	int k;

	ua = ua_cache_get(e->ua_cache, ev->user_agent.p, ev->user_agent.len);
	url_ok = parse_page_url(e, ev);
	/* UTM: the event's own fields, else the page URL's query. */
	for (k = 0; k < 5; k++) {
		if (ev->utm[k].len) {
			memcpy(e->utm_tmp[k], ev->utm[k].p, ev->utm[k].len);
			e->utm_tmp[k][ev->utm[k].len] = '\0';
			utm[k] = e->utm_tmp[k];
		} else {
			utm[k] = url_ok ? e->url.utm[k] : "";
		}
	}
	/* The page's host tells a self-referral: the URL's, else the host
	 * the tracker sent (Umami's hostname) when the URL does not parse. */
	page_host = url_ok ? e->url.host : "";
	if (!url_ok && ev->hostname.len) {
		memcpy(e->host_tmp, ev->hostname.p, ev->hostname.len);
		e->host_tmp[ev->hostname.len] = '\0';
		page_host = e->host_tmp;
	}
	src_classify(utm[1], strlen(utm[1]), utm[0], strlen(utm[0]),
		     ev->referrer.p, ev->referrer.len, page_host, &e->traffic);

	ver(bver, sizeof(bver), &ua->browser);
	ver(over, sizeof(over), &ua->os);
	x.path = url_ok ? e->url.path : "";
	x.channel = src_channel_name(e->traffic.channel);
	x.source = e->traffic.source;
	x.referrer_host = e->traffic.referrer_host;
	for (k = 0; k < 5; k++)
		x.utm[k] = utm[k];
	x.device = ua_device_type_name(ua->type);
	x.browser = ua->browser.family;
	x.os = ua->os.family;
	x.bot = (ev->flags & ALOG_EVENT_F_BOT) || ua->bot;

	sd = session_for(e, site, ev, &x, &opened);
	if (ev->received_ms < sd->started_ms)
		sd->started_ms = ev->received_ms;
	if (ev->received_ms > sd->last_ms)
		sd->last_ms = ev->received_ms;
	if (pv) {
		sd->pageviews++;
		if (!sd->entry.len && x.path[0])
			sd->entry = sref_put(e, x.path);
		if (ev->received_ms >= sd->exit_ms && x.path[0]) {
			sd->exit = sref_put(e, x.path);
			sd->exit_ms = ev->received_ms;
		}
	} else {
		sd->events++;
		if (!(ev->flags & ALOG_EVENT_F_NONINTERACTIVE))
			sd->interactive++;
	}

	/* The events row, in event_cols order. */
	wr_copy_time(r, ev->received_ms);
	wr_buf_put(r, "\t", 1);
	wr_copy_uuid(r, ev->id);
	wr_buf_put(r, "\t", 1);
	copy_opt(r, ev->site);
	{
		char ks[4] = { (char)('0' + ev->kind % 10), '\t',
			       (char)('0' + ev->source % 10), '\t' };

		wr_buf_put(r, ks, 4);
	}
	copy_opt(r, ev->name);
	wr_buf_u64(r, ev->flags);
	wr_buf_put(r, x.bot ? "\tt\t" : "\tf\t", 3);
	if (ev->client_ms)
		wr_copy_time(r, ev->client_ms);
	else
		wr_copy_null(r);
	wr_buf_put(r, "\t", 1);
	wr_buf_i64(r, (int64_t)ev->visitor);
	wr_buf_put(r, "\t", 1);
	wr_copy_uuid(r, sd->id);
	wr_buf_put(r, "\t", 1);
	copy_opt(r, ev->session_id);
	copy_opt(r, ev->user_id);
	copy_opt(r, ev->url);
	copy_cs(r, url_ok ? e->url.host : NULL);
	copy_cs(r, url_ok ? e->url.path : NULL);
	copy_cs(r, url_ok ? e->url.query : NULL);
	copy_opt(r, ev->referrer);
	copy_cs(r, e->traffic.referrer_host);
	copy_cs(r, e->traffic.referrer_path);
	wr_copy_str(r, x.channel, strlen(x.channel));
	wr_buf_put(r, "\t", 1);
	wr_copy_str(r, x.source, strlen(x.source));
	wr_buf_put(r, "\t", 1);
	for (k = 0; k < 5; k++)
		copy_cs(r, utm[k]);
	if (ev->country[0])
		wr_buf_put(r, (const char[3]){ ev->country[0], ev->country[1],
					       '\t' }, 3);
	else
		wr_buf_put(r, "\\N\t", 3);
	copy_opt(r, ev->region);
	copy_opt(r, ev->city);
	copy_opt(r, ev->user_agent);
	copy_cs(r, x.browser);
	copy_cs(r, bver);
	copy_cs(r, x.os);
	copy_cs(r, over);
	copy_cs(r, x.device);
	copy_cs(r, ua->device.brand);
	copy_cs(r, ua->device.model);
	copy_opt(r, ev->language);
	copy_opt(r, ev->timezone);
	copy_u64(r, ev->screen_w, ev->has_screen);
	copy_u64(r, ev->screen_h, ev->has_screen);
	copy_u64(r, ev->viewport_w, ev->has_viewport);
	copy_u64(r, ev->viewport_h, ev->has_viewport);
	copy_u64(r, ev->touch_points, ev->has_touch_points);
	copy_opt(r, ev->title);
	copy_opt(r, ev->hostname);
	copy_opt(r, ev->content_id);
	copy_opt(r, ev->content_type);
	copy_opt(r, ev->props);
	copy_opt(r, ev->device_extra);
	if (ev->has_value) {
		wr_copy_micros(r, ev->value_micros);
		wr_buf_put(r, "\t", 1);
		if (ev->currency[0] != ' ')
			wr_buf_printf(r, "%.3s\t", ev->currency);
		else
			wr_buf_put(r, "\\N\t", 3);
	} else {
		wr_buf_put(r, "\\N\t\\N\t", 6);
	}
	copy_opt(r, ev->funnel_id);
	copy_opt(r, ev->step_id);
	copy_u64(r, ev->step_order, ev->has_step_order);
	copy_opt(r, ev->target_id);
	copy_opt(r, ev->target_type);
	wr_copy_str(r, b->log_name, strlen(b->log_name));
	wr_buf_put(r, "\t", 1);
	wr_buf_u64(r, b->recs[i].offset);
	wr_buf_put(r, "\n", 1);

	/* Rollups: people, not bots. */
	if (!x.bot) {
		uint64_t hour = ev->received_ms / HOUR_MS * HOUR_MS;
		int64_t rev = ev->has_value ? ev->value_micros : 0;
		char cc[3] = { ev->country[0], ev->country[1], 0 };
		char name[ALOG_EVENT_STRING_MAX + 1];
		const char *vals[DIM_COUNT] = {
			"", x.path, x.source, x.channel, x.referrer_host,
			x.utm[0], x.utm[1], x.utm[2], cc, x.device, x.browser,
			x.os, NULL,
		};

		if (!pv) {
			memcpy(name, ev->name.p, ev->name.len);
			name[ev->name.len] = '\0';
			vals[DIM_EVENT] = name;
		}
		for (k = 0; k < DIM_COUNT; k++)
			if (vals[k])
				rollup_add(e, site, hour, k, vals[k],
					   ev->visitor, pv, rev);
	}
}

static void copy_sref(struct wr_engine *e, struct wr_buf *b, struct sref s)
{
	if (s.len)
		wr_copy_str(b, sref_ptr(e, s), s.len);
	else
		wr_copy_null(b);
	wr_buf_put(b, "\t", 1);
}

static void build_deltas(struct wr_engine *e, struct wr_buf *b,
			 struct wr_buf *rb)
{
	size_t i;

	for (i = 0; i < e->nsd; i++) {
		const struct sdelta *d = &e->sd[i];
		const char *site = e->sites.names[d->site];

		wr_copy_uuid(b, d->id);
		wr_buf_put(b, "\t", 1);
		wr_copy_str(b, site, strlen(site));
		wr_buf_printf(b, "\t%" PRId64 "\t", (int64_t)d->visitor);
		wr_copy_time(b, d->started_ms);
		wr_buf_put(b, "\t", 1);
		wr_copy_time(b, d->last_ms);
		wr_buf_put(b, "\t", 1);
		copy_sref(e, b, d->entry);
		copy_sref(e, b, d->exit);
		if (d->exit_ms)
			wr_copy_time(b, d->exit_ms);
		else
			wr_copy_null(b);
		wr_buf_printf(b, "\t%u\t%u\t%u\t", d->pageviews, d->events,
			      d->interactive);
		wr_copy_str(b, sref_ptr(e, d->channel), d->channel.len);
		wr_buf_put(b, "\t", 1);
		wr_copy_str(b, sref_ptr(e, d->source), d->source.len);
		wr_buf_put(b, "\t", 1);
		copy_sref(e, b, d->referrer_host);
		copy_sref(e, b, d->utm[0]);
		copy_sref(e, b, d->utm[1]);
		copy_sref(e, b, d->utm[2]);
		if (d->country[0])
			wr_buf_printf(b, "%c%c\t", d->country[0],
				      d->country[1]);
		else
			wr_buf_put(b, "\\N\t", 3);
		copy_sref(e, b, d->device);
		copy_sref(e, b, d->browser);
		if (d->os.len)
			wr_copy_str(b, sref_ptr(e, d->os), d->os.len);
		else
			wr_copy_null(b);
		wr_buf_put(b, "\n", 1);
	}

	/* Rollup deltas with each one's distinct visitors. */
	b = rb;
	for (i = 0; i < e->nrd; i++) {
		const struct rdelta *d = &e->rd[i];
		const char *site = e->sites.names[d->site];
		uint32_t v;

		wr_copy_str(b, site, strlen(site));
		wr_buf_put(b, "\t", 1);
		wr_copy_time(b, d->hour_ms);
		wr_buf_put(b, "\t", 1);
		wr_buf_put(b, dim_names[d->dim], strlen(dim_names[d->dim]));
		wr_buf_put(b, "\t", 1);
		wr_copy_str(b, sref_ptr(e, d->value), d->value.len);
		wr_buf_put(b, "\t", 1);
		wr_buf_u64(b, d->pageviews);
		wr_buf_put(b, "\t", 1);
		wr_buf_u64(b, d->events);
		wr_buf_put(b, "\t", 1);
		wr_copy_micros(b, d->revenue);
		wr_buf_put(b, "\t{", 2);
		for (v = d->first_visitor; v; v = e->rv[v - 1].next) {
			wr_buf_i64(b, (int64_t)e->rv[v - 1].visitor);
			if (e->rv[v - 1].next)
				wr_buf_put(b, ",", 1);
		}
		wr_buf_put(b, "}\n", 2);
	}
}

/* ---- The transaction -------------------------------------------------------- */

void wr_prepared_free(struct wr_prepared *p)
{
	wr_buf_free(&p->rows);
	wr_buf_free(&p->sdrows);
	wr_buf_free(&p->rdrows);
	wr_buf_free(&p->dead_bytes);
	free(p->dead);
	memset(p, 0, sizeof(*p));
}

static enum wr_err insert_dead(struct wr_db *db, const char *log_name,
			       const struct wr_dead *d, const char *bytes)
{
	char off[24], why[600];
	const char *params[4] = { log_name, off, why, d->lost ? NULL : bytes };
	int lens[4] = { 0, 0, 0, d->lost ? 0 : (int)d->len };
	int fmts[4] = { 0, 0, 0, 1 };

	snprintf(off, sizeof(off), "%" PRIu64, d->offset);
	if (d->lost)
		snprintf(why, sizeof(why),
			 "offsets %" PRIu64 "..%" PRIu64 " lost: %s",
			 d->offset, d->lost_to - 1, d->reason);
	else
		snprintf(why, sizeof(why), "%s", d->reason);
	return wr_exec_params(db,
			      "INSERT INTO dead_letters (log_name, log_offset,"
			      " reason, record) VALUES ($1, $2, $3, $4)",
			      4, params, lens, fmts, NULL);
}

static enum wr_err set_offset(struct wr_db *db, const char *log_name,
			      uint64_t first, uint64_t next)
{
	char from[24], to[24];
	const char *params[3] = { log_name, to, from };
	PGresult *res;
	enum wr_err rc;

	snprintf(from, sizeof(from), "%" PRIu64, first);
	snprintf(to, sizeof(to), "%" PRIu64, next);
	/*
	 * Compare and set: only from where this writer believes the log
	 * stands. A batch in flight behind another one waits here on the
	 * row lock until that one commits, and finds 0 rows if it rolled
	 * back; a second writer on the same log finds 0 rows too, rather
	 * than both writing the same records.
	 */
	rc = wr_exec_params(db,
			    "UPDATE consumer_offsets SET next_offset = $2,"
			    " updated_at = now() WHERE log_name = $1 AND"
			    " next_offset = $3",
			    3, params, NULL, NULL, &res);
	if (rc != WR_OK)
		return rc;
	if (strcmp(PQcmdTuples(res), "1")) {
		snprintf(db->errmsg, sizeof(db->errmsg),
			 "log %s is not at offset %s in the database (another "
			 "writer is consuming it, or the batch before failed)",
			 log_name, from);
		rc = WR_ERR_ORDER;
	}
	PQclear(res);
	return rc;
}

static enum wr_err ensure_temp(struct wr_db *db)
{
	enum wr_err rc;

	if (db->temp_ready)
		return WR_OK;
	rc = wr_exec(db, temp_tables_sql, NULL);
	if (rc == WR_OK)
		db->temp_ready = true;
	return rc;
}

static void copy_sql(char *p, size_t cap, const char *table,
		     const char *const *cols)
{
	size_t n = (size_t)snprintf(p, cap, "COPY %s (", table);
	int i;

	for (i = 0; cols[i] && n < cap; i++)
		n += (size_t)snprintf(p + n, cap - n, "%s%s", i ? ", " : "",
				      cols[i]);
	if (n < cap)
		snprintf(p + n, cap - n, ") FROM STDIN");
}

bool wr_engine_cache_full(const struct wr_engine *e, const struct wr_batch *b)
{
	return e->sess.n + b->n > e->sess.max || e->sites.n > SITES_MAX;
}

static void add_dead(struct wr_prepared *p, const struct wr_batch *b,
		     const struct wr_record *r, const char *reason)
{
	struct wr_dead *d;

	grow((void **)&p->dead, &p->deadcap, p->ndead + 1, sizeof(*p->dead));
	d = &p->dead[p->ndead++];
	d->offset = r->offset;
	d->lost = r->lost;
	d->lost_to = r->lost_to;
	d->reason = reason;
	d->len = r->lost ? 0 : r->len;
	d->at = p->dead_bytes.len;
	if (!r->lost)
		wr_buf_put(&p->dead_bytes, b->arena.p + r->at, r->len);
}

enum wr_err wr_engine_prepare(struct wr_engine *e, struct wr_db *db,
			      const struct wr_batch *b, struct wr_prepared *p)
{
	uint64_t t0 = alog_mono_ns(), t1;
	enum wr_err rc;
	size_t i;

	snprintf(p->log_name, sizeof(p->log_name), "%s", b->log_name);
	p->first_offset = b->first_offset;
	p->next_offset = b->next_offset;
	p->rows.len = p->sdrows.len = p->rdrows.len = p->dead_bytes.len = 0;
	p->ndead = 0;
	p->events = 0;
	p->gate = NULL;
	p->rc = WR_OK;
	e->strs.len = 0;
	e->nsd = e->nrd = e->nrv = 0;
	e->nnew_days = 0;
	idx_clear(&e->rd_idx);
	idx_clear(&e->rv_idx);
	decode_all(e, b);
	uint64_t tmin = UINT64_MAX;

	for (i = 0; i < b->n; i++)
		if (!e->ev_state[i] && e->ev[i].received_ms < tmin)
			tmin = e->ev[i].received_ms;
	if (tmin == UINT64_MAX)
		tmin = alog_now_ms();
	uint64_t horizon = tmin > WR_SESSION_GAP_MS ? tmin - WR_SESSION_GAP_MS
						    : 0;
	/*
	 * The cache is bounded. When full, the sessions that ended before
	 * this batch go (still complete above the new horizon); if that is
	 * not enough it is emptied and re-read as needed. The caller has
	 * drained its pipeline first (wr_engine_cache_full): nothing in
	 * flight depends on what goes.
	 */
	if (e->sess.n + b->n > e->sess.max) {
		sess_sweep(&e->sess, horizon);
		if (e->complete && horizon > e->complete_since)
			e->complete_since = horizon;
		if (e->sess.n + b->n > e->sess.max)
			wr_engine_reset(e);
	}
	if (e->sites.n > SITES_MAX) {
		wr_engine_reset(e);
		site_tab_free(&e->sites);
	}
	if (!e->complete && !e->load_refused && e->sess.n == 0 &&
	    (rc = load_open_sessions(e, db, horizon)) != WR_OK)
		return rc;
	if (!e->ndays && (rc = load_partitions(e, db)) != WR_OK)
		return rc;
	for (i = 0; i < b->n; i++) {
		int64_t d;
		size_t k;

		if (e->ev_state[i])
			continue;
		d = day_of(e->ev[i].received_ms);
		if (day_known(e, d))
			continue;
		for (k = 0; k < e->nnew_days && e->new_days[k] != d; k++)
			;
		if (k == e->nnew_days && k < 64)
			e->new_days[e->nnew_days++] = d;
	}
	if (e->nnew_days)
		return WR_NEED_PARTITIONS;
	t1 = alog_mono_ns();
	rc = lookup_sessions(e, db, b);
	if (rc != WR_OK) {
		wr_engine_reset(e);
		return rc;
	}
	e->stats.ns_lookup += alog_mono_ns() - t1;
	e->out_rows = &p->rows;
	for (i = 0; i < b->n; i++) {
		if (e->ev_state[i]) {
			add_dead(p, b, &b->recs[i], e->ev_reason[i]);
			continue;
		}
		enrich_one(e, b, i);
		p->events++;
	}
	build_deltas(e, &p->sdrows, &p->rdrows);
	e->stats.ns_decode += t1 - t0;
	e->stats.ns_sessions += alog_mono_ns() - t1;
	return WR_OK;
}

enum wr_err wr_engine_add_partitions(struct wr_engine *e, struct wr_db *db)
{
	enum wr_err rc;
	size_t i;

	e->sql.len = 0;
	wr_buf_printf(&e->sql, "BEGIN;");
	for (i = 0; i < e->nnew_days; i++)
		partition_sql(&e->sql, e->new_days[i]);
	wr_buf_printf(&e->sql, "COMMIT");
	wr_buf_put(&e->sql, "", 1);
	if ((rc = wr_exec(db, e->sql.p, NULL)) != WR_OK) {
		if (rc != WR_ERR_CONN)
			wr_exec(db, "ROLLBACK", NULL);
		return rc;
	}
	for (i = 0; i < e->nnew_days && e->ndays < PARTITIONS_MAX; i++)
		e->days[e->ndays++] = e->new_days[i];
	e->nnew_days = 0;
	return WR_OK;
}

enum wr_err wr_commit(struct wr_db *db, struct wr_prepared *p)
{
	char copy[2048];
	enum wr_err rc;
	uint64_t t1 = alog_mono_ns();
	size_t i;

	if ((rc = ensure_temp(db)) != WR_OK ||
	    (rc = wr_exec(db, "BEGIN", NULL)) != WR_OK)
		goto fail;
	copy_sql(copy, sizeof(copy), "events", event_cols);
	if (p->rows.len &&
	    (rc = wr_copy_in(db, copy, p->rows.p, p->rows.len)) != WR_OK)
		goto fail;
	for (i = 0; i < p->ndead; i++)
		if ((rc = insert_dead(db, p->log_name, &p->dead[i],
				      p->dead_bytes.p + p->dead[i].at)) !=
		    WR_OK)
			goto fail;
	p->ns_copy = alog_mono_ns() - t1;
	if (p->gate && !p->gate(p->gate_arg)) {
		snprintf(db->errmsg, sizeof(db->errmsg),
			 "waited too long for the batch before this one");
		rc = WR_ERR_RETRY;
		goto fail;
	}

	t1 = alog_mono_ns();
	if (p->sdrows.len &&
	    ((rc = wr_copy_in(db,
			      "COPY session_delta (" SESSION_DELTA_COLS
			      ") FROM STDIN",
			      p->sdrows.p, p->sdrows.len)) != WR_OK ||
	     (rc = wr_exec(db, session_upsert_sql, NULL)) != WR_OK))
		goto fail;
	p->ns_sessions_sql = alog_mono_ns() - t1;

	t1 = alog_mono_ns();
	if (p->rdrows.len &&
	    ((rc = wr_copy_in(db, "COPY rollup_delta FROM STDIN", p->rdrows.p,
			      p->rdrows.len)) != WR_OK ||
	     (rc = wr_exec(db, rollup_upsert_sql, NULL)) != WR_OK))
		goto fail;
	p->ns_rollups = alog_mono_ns() - t1;

	t1 = alog_mono_ns();
	if ((rc = set_offset(db, p->log_name, p->first_offset,
			     p->next_offset)) != WR_OK ||
	    (rc = wr_exec(db, "COMMIT", NULL)) != WR_OK)
		goto fail;
	p->ns_commit = alog_mono_ns() - t1;
	p->rc = WR_OK;
	return WR_OK;
fail:
	if (rc != WR_ERR_CONN) {
		char keep[sizeof(db->errmsg)];

		memcpy(keep, db->errmsg, sizeof(keep));
		wr_exec(db, "ROLLBACK", NULL);
		memcpy(db->errmsg, keep, sizeof(keep));
	}
	p->rc = rc;
	snprintf(p->errmsg, sizeof(p->errmsg), "%s", db->errmsg);
	return rc;
}

void wr_engine_account(struct wr_engine *e, const struct wr_prepared *p)
{
	e->stats.batches++;
	e->stats.events += p->events;
	e->stats.dead_letters += p->ndead;
	e->stats.ns_copy += p->ns_copy;
	e->stats.ns_sessions_sql += p->ns_sessions_sql;
	e->stats.ns_rollups += p->ns_rollups;
	e->stats.ns_commit += p->ns_commit;
}

enum wr_err wr_engine_write(struct wr_engine *e, struct wr_db *db,
			    const struct wr_batch *b)
{
	struct wr_prepared *p = &e->own;
	enum wr_err rc;

	rc = wr_engine_prepare(e, db, b, p);
	if (rc == WR_NEED_PARTITIONS) {
		if ((rc = wr_engine_add_partitions(e, db)) != WR_OK)
			goto fail;
		rc = wr_engine_prepare(e, db, b, p);
	}
	if (rc != WR_OK || (rc = wr_commit(db, p)) != WR_OK)
		goto fail;
	wr_engine_account(e, p);
	return WR_OK;
fail:
	wr_engine_reset(e);
	return rc;
}

enum wr_err wr_engine_dead_letter(struct wr_engine *e, struct wr_db *db,
				  const struct wr_batch *b,
				  const struct wr_record *r,
				  const char *reason)
{
	struct wr_dead d = { r->offset, r->lost_to, r->lost, reason, 0,
			     r->lost ? 0 : r->len };
	enum wr_err rc;

	if ((rc = wr_exec(db, "BEGIN", NULL)) != WR_OK ||
	    (rc = insert_dead(db, b->log_name, &d,
			      r->lost ? NULL : b->arena.p + r->at)) != WR_OK ||
	    (rc = set_offset(db, b->log_name, b->first_offset,
			     b->next_offset)) != WR_OK ||
	    (rc = wr_exec(db, "COMMIT", NULL)) != WR_OK) {
		if (rc != WR_ERR_CONN) {
			char keep[sizeof(db->errmsg)];

			memcpy(keep, db->errmsg, sizeof(keep));
			wr_exec(db, "ROLLBACK", NULL);
			memcpy(db->errmsg, keep, sizeof(keep));
		}
		wr_engine_reset(e);
		return rc;
	}
	e->stats.dead_letters++;
	return WR_OK;
}
