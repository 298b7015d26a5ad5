/*
 * edge_metrics.h - counters and histograms behind GET /metrics, rendered
 * in the Prometheus text exposition format. Lock-free (relaxed atomics);
 * bounded: endpoints, statuses and reasons are fixed sets.
 */
#ifndef EDGE_METRICS_H
#define EDGE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "alog_log.h"

enum edge_route {
	EDGE_R_VIEW,
	EDGE_R_EVENT,
	EDGE_R_BATCH,
	EDGE_R_CONVERSION,
	EDGE_R_FUNNEL,
	EDGE_R_ENGAGEMENT,
	EDGE_R_INTERACTION,
	EDGE_R_PLAUSIBLE,
	EDGE_R_UMAMI,
	EDGE_R_SCRIPT,
	EDGE_R_HEALTH,
	EDGE_R_READY,
	EDGE_R_METRICS,
	EDGE_R_PREFLIGHT,
	EDGE_R_OTHER,
	EDGE_R_COUNT
};

enum edge_reject {
	EDGE_REJ_INVALID,
	EDGE_REJ_DNT,
	EDGE_REJ_BOT,
	EDGE_REJ_RATE_LIMITED,
	EDGE_REJ_LOG_UNAVAILABLE,
	EDGE_REJ_FORBIDDEN,
	EDGE_REJ_TOO_LARGE,
	EDGE_REJ_COUNT
};

#define EDGE_HIST_BUCKETS 16

struct edge_hist {
	uint64_t bucket[EDGE_HIST_BUCKETS + 1]; /* last: +Inf */
	uint64_t count;
	uint64_t sum_ns;
};

void edge_metrics_request(enum edge_route r, int status);
void edge_metrics_accepted(uint64_t events);
void edge_metrics_rejected(enum edge_reject why, uint64_t events);
void edge_metrics_append_latency(uint64_t ns);
void edge_metrics_conn(int delta);
int64_t edge_metrics_conns(void);

/* Render everything (plus the log's stats) into buf. Returns bytes
 * written, or the size needed if cap is too small. */
size_t edge_metrics_render(char *buf, size_t cap,
			   const struct alog_log_stats *st);

const char *edge_route_name(enum edge_route r);

#endif /* EDGE_METRICS_H */
