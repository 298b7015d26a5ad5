/*
 * edge_metrics.c - the edge's Prometheus metrics.
 */
#include "edge_metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const int statuses[] = { 200, 202, 204, 400, 401, 403, 404, 405,
				408, 413, 415, 429, 431, 500, 503 };
#define NSTATUS (sizeof(statuses) / sizeof(statuses[0]))

static uint64_t requests[EDGE_R_COUNT][NSTATUS + 1];
static uint64_t accepted;
static uint64_t rejected[EDGE_REJ_COUNT];
static struct edge_hist append_hist;
static int64_t conns;

static const char *const route_names[EDGE_R_COUNT] = {
	"/track/view",        "/track/event",  "/track/batch",
	"/track/conversion",  "/track/funnel", "/track/engagement",
	"/track/interaction", "/api/event",    "/api/send",
	"/script.js",         "/health",       "/ready",
	"/metrics",           "preflight",     "other",
};

static const char *const reject_names[EDGE_REJ_COUNT] = {
	"invalid",         "dnt_gpc",   "bot",       "rate_limited",
	"log_unavailable", "forbidden", "too_large",
};

const char *edge_route_name(enum edge_route r)
{
	return r < EDGE_R_COUNT ? route_names[r] : "other";
}

static void add(uint64_t *p, uint64_t v)
{
	__atomic_add_fetch(p, v, __ATOMIC_RELAXED);
}

void edge_metrics_request(enum edge_route r, int status)
{
	size_t i;

	for (i = 0; i < NSTATUS && statuses[i] != status; i++)
		;
	add(&requests[r < EDGE_R_COUNT ? r : EDGE_R_OTHER][i], 1);
}

void edge_metrics_accepted(uint64_t events)
{
	add(&accepted, events);
}

void edge_metrics_rejected(enum edge_reject why, uint64_t events)
{
	add(&rejected[why], events);
}

/* Buckets: 50 us * 2^i, i = 0..15 (50 us .. 1.6 s), then +Inf. */
static uint64_t bucket_le_ns(int i)
{
	return 50000ull << i;
}

void edge_metrics_append_latency(uint64_t ns)
{
	int i;

	for (i = 0; i < EDGE_HIST_BUCKETS && ns > bucket_le_ns(i); i++)
		;
	add(&append_hist.bucket[i], 1);
	add(&append_hist.count, 1);
	add(&append_hist.sum_ns, ns);
}

void edge_metrics_conn(int delta)
{
	__atomic_add_fetch(&conns, delta, __ATOMIC_RELAXED);
}

int64_t edge_metrics_conns(void)
{
	return __atomic_load_n(&conns, __ATOMIC_RELAXED);
}

struct out {
	char *buf;
	size_t cap, len;
};

static void emit(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void emit(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->len < o->cap ? o->buf + o->len : NULL,
		      o->len < o->cap ? o->cap - o->len : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n;
}

static uint64_t get(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

size_t edge_metrics_render(char *buf, size_t cap,
			   const struct alog_log_stats *st)
{
	struct out o = { buf, cap, 0 };
	uint64_t cum = 0;

	emit(&o, "# HELP alog_edge_requests_total HTTP requests by endpoint "
		 "and status.\n# TYPE alog_edge_requests_total counter\n");
	for (int r = 0; r < EDGE_R_COUNT; r++)
		for (size_t s = 0; s <= NSTATUS; s++)
			if (get(&requests[r][s]))
				emit(&o,
				     "alog_edge_requests_total{endpoint=\"%s\","
				     "status=\"%s%d\"} %llu\n",
				     route_names[r], s < NSTATUS ? "" : "other",
				     s < NSTATUS ? statuses[s] : 0,
				     (unsigned long long)get(&requests[r][s]));
	emit(&o,
	     "# HELP alog_edge_events_accepted_total Events made durable "
	     "and acknowledged.\n# TYPE alog_edge_events_accepted_total "
	     "counter\nalog_edge_events_accepted_total %llu\n",
	     (unsigned long long)get(&accepted));
	emit(&o,
	     "# HELP alog_edge_events_rejected_total Events not stored, "
	     "by reason.\n# TYPE alog_edge_events_rejected_total counter\n");
	for (int i = 0; i < EDGE_REJ_COUNT; i++)
		emit(&o,
		     "alog_edge_events_rejected_total{reason=\"%s\"} %llu\n",
		     reject_names[i], (unsigned long long)get(&rejected[i]));
	emit(&o, "# HELP alog_edge_append_seconds From request complete to "
		 "durable in the log.\n# TYPE alog_edge_append_seconds "
		 "histogram\n");
	for (int i = 0; i < EDGE_HIST_BUCKETS; i++) {
		cum += get(&append_hist.bucket[i]);
		emit(&o, "alog_edge_append_seconds_bucket{le=\"%g\"} %llu\n",
		     (double)bucket_le_ns(i) / 1e9, (unsigned long long)cum);
	}
	emit(&o,
	     "alog_edge_append_seconds_bucket{le=\"+Inf\"} %llu\n"
	     "alog_edge_append_seconds_sum %.6f\n"
	     "alog_edge_append_seconds_count %llu\n",
	     (unsigned long long)get(&append_hist.count),
	     (double)get(&append_hist.sum_ns) / 1e9,
	     (unsigned long long)get(&append_hist.count));
	emit(&o,
	     "# TYPE alog_edge_connections gauge\nalog_edge_connections %lld\n",
	     (long long)edge_metrics_conns());
	if (st) {
		emit(&o,
		     "# TYPE alog_log_next_offset gauge\nalog_log_next_offset %llu\n"
		     "# TYPE alog_log_durable_offset gauge\n"
		     "alog_log_durable_offset %llu\n"
		     "# TYPE alog_log_segments gauge\nalog_log_segments %llu\n"
		     "# TYPE alog_log_disk_bytes gauge\nalog_log_disk_bytes %llu\n"
		     "# TYPE alog_log_disk_budget_bytes gauge\n"
		     "alog_log_disk_budget_bytes %llu\n"
		     "# TYPE alog_log_commits_total counter\n"
		     "alog_log_commits_total %llu\n"
		     "# TYPE alog_log_fsyncs_total counter\n"
		     "alog_log_fsyncs_total %llu\n"
		     "# HELP alog_log_commits_in_flight_max Most group commits "
		     "in flight at once since start.\n"
		     "# TYPE alog_log_commits_in_flight_max gauge\n"
		     "alog_log_commits_in_flight_max %u\n"
		     "# HELP alog_log_fsync_seconds Time of each commit's write "
		     "and fdatasync, from submission to completion.\n"
		     "# TYPE alog_log_fsync_seconds histogram\n",
		     (unsigned long long)st->next_offset,
		     (unsigned long long)st->durable_offset,
		     (unsigned long long)st->segments,
		     (unsigned long long)st->disk_bytes,
		     (unsigned long long)st->disk_budget_bytes,
		     (unsigned long long)st->commits,
		     (unsigned long long)st->fsyncs, st->inflight_max);
		cum = 0;
		for (int i = 0; i < ALOG_LOG_HIST_BUCKETS; i++) {
			cum += st->commit_hist[i];
			emit(&o,
			     "alog_log_fsync_seconds_bucket{le=\"%g\"} %llu\n",
			     (double)(ALOG_LOG_HIST_BASE_NS << i) / 1e9,
			     (unsigned long long)cum);
		}
		cum += st->commit_hist[ALOG_LOG_HIST_BUCKETS];
		emit(&o,
		     "alog_log_fsync_seconds_bucket{le=\"+Inf\"} %llu\n"
		     "alog_log_fsync_seconds_sum %.6f\n"
		     "alog_log_fsync_seconds_count %llu\n",
		     (unsigned long long)cum, (double)st->commit_ns_sum / 1e9,
		     (unsigned long long)cum);
		emit(&o,
		     "# HELP alog_log_rolls_total Segment rolls, by whether the "
		     "new segment was prepared (zeroed) ahead.\n"
		     "# TYPE alog_log_rolls_total counter\n"
		     "alog_log_rolls_total{segment=\"prepared\"} %llu\n"
		     "alog_log_rolls_total{segment=\"plain\"} %llu\n"
		     "# TYPE alog_log_prepare_errors_total counter\n"
		     "alog_log_prepare_errors_total %llu\n",
		     (unsigned long long)st->rolls_prepared,
		     (unsigned long long)st->rolls_plain,
		     (unsigned long long)st->prepare_errors);
	}
	return o.len;
}
