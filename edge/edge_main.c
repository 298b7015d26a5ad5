/*
 * edge_main.c - alog-edge: load the configuration, open the log, start the
 * workers, and handle signals: SIGTERM/SIGINT stop gracefully (stop
 * accepting, finish in-flight requests, flush the log), SIGHUP reloads the
 * sites, trusted proxies and rate limits.
 *
 * Log lines go to stderr with a timestamp. None carries a client address.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "alog_common.h"
#include "edge_event.h"
#include "edge_server.h"

static void edge_log(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void edge_log(const char *fmt, ...)
{
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;
	va_list ap;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "%s alog-edge: ", ts);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* /health's "shipper" member: how far the shipper's acknowledged offset
 * (its consumer checkpoint in the log directory) trails the log. */
static const char *shipper_json(struct edge_server *srv)
{
	static __thread char buf[256];
	struct alog_log_stats st;
	uint64_t acked, when;

	if (alog_consumer_read(srv->cfg->log_dir, "shipper", &acked, &when) !=
	    0)
		return ",\"shipper\":null";
	alog_log_stats(srv->log, &st);
	snprintf(buf, sizeof(buf),
		 ",\"shipper\":{\"acked_offset\":%" PRIu64
		 ",\"lag_records\":%" PRIu64 ",\"last_ack_ms\":%" PRIu64 "}",
		 acked,
		 st.durable_offset > acked ? st.durable_offset - acked : 0,
		 when);
	return buf;
}

/* Edge-side retention: delete segments every consumer (the shipper) has
 * acknowledged and that are older than log.retention_age_min_ms. */
static void retain(struct edge_server *srv)
{
	uint64_t min;
	int rc = alog_log_retain_consumers(srv->log, srv->cfg->log_dir,
					   alog_now_ms(), &min);

	if (rc > 0)
		edge_log(
			"retention: deleted %d segment%s below offset %" PRIu64,
			rc, rc == 1 ? "" : "s", min);
	else if (rc < 0)
		edge_log("retention: %s", alog_strerror(rc));
}

static void usage(FILE *f)
{
	fprintf(f, "usage: alog-edge [--config FILE]\n"
		   "       alog-edge --check-config FILE\n"
		   "See docs/edge-config.md. Environment variables ALOG_EDGE_* "
		   "override the file.\n");
}

static void make_ratelimits(struct edge_server *srv)
{
	const struct edge_config *c = srv->cfg;

	srv->rl_site =
		c->site_per_s > 0 ?
			edge_ratelimit_create(65536, c->site_per_s,
					      c->site_per_s * c->burst_s) :
			NULL;
	srv->rl_client =
		c->client_per_s > 0 ?
			edge_ratelimit_create(1 << 20, c->client_per_s,
					      c->client_per_s * c->burst_s) :
			NULL;
}

static void reload(struct edge_server *srv, const char *path)
{
	char err[512];
	struct edge_config *n = edge_config_load(path, err, sizeof(err));
	struct edge_config *old;
	struct edge_ratelimit *rs, *rc;

	if (!n) {
		edge_log(
			"reload refused, keeping the running configuration: %s",
			err);
		return;
	}
	pthread_rwlock_wrlock(&srv->cfg_lock);
	old = srv->cfg;
	/* Only sites, trusted proxies and rate limits change on reload. */
	memcpy(n->listen_host, old->listen_host, sizeof(n->listen_host));
	n->listen_port = old->listen_port;
	n->workers = old->workers;
	memcpy(n->log_dir, old->log_dir, sizeof(n->log_dir));
	n->log = old->log;
	n->limits = old->limits;
	srv->cfg = n;
	rs = srv->rl_site;
	rc = srv->rl_client;
	make_ratelimits(srv);
	pthread_rwlock_unlock(&srv->cfg_lock);
	edge_ratelimit_destroy(rs);
	edge_ratelimit_destroy(rc);
	edge_config_free(old);
	edge_log("reloaded %s: %zu sites", path, n->nsites);
}

int main(int argc, char **argv)
{
	struct edge_server srv;
	const char *config = NULL;
	bool check = false;
	char err[512];
	sigset_t set;
	int sfd, rc, e;

	for (int i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], "--config") ||
		     !strcmp(argv[i], "--check-config")) &&
		    i + 1 < argc) {
			check |= !strcmp(argv[i], "--check-config");
			config = argv[++i];
		} else if (!strcmp(argv[i], "--help") ||
			   !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 1;
		}
	}
	memset(&srv, 0, sizeof(srv));
	edge_json_use_arena();
	srv.cfg = edge_config_load(config, err, sizeof(err));
	if (!srv.cfg) {
		fprintf(stderr, "alog-edge: %s\n", err);
		return 1;
	}
	if (check) {
		edge_config_print(srv.cfg, stdout);
		edge_config_free(srv.cfg);
		return 0;
	}
	pthread_rwlock_init(&srv.cfg_lock, NULL);
	srv.limits = srv.cfg->limits;
	srv.nworkers = srv.cfg->workers;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* workers inherit it */
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		edge_log("signalfd: %s", strerror(errno));
		return 1;
	}

	srv.log = alog_log_open(srv.cfg->log_dir, &srv.cfg->log, &e);
	if (!srv.log) {
		edge_log("cannot open the log at %s: %s", srv.cfg->log_dir,
			 alog_strerror(e));
		return 1;
	}
	{
		const struct alog_recovery_report *r =
			alog_log_recovery(srv.log);

		if (r->bytes_dropped)
			edge_log(
				"log recovery dropped a torn tail of %llu bytes "
				"in segment %llu%s",
				(unsigned long long)r->bytes_dropped,
				(unsigned long long)r->drop_segment_base,
				r->quarantined ? " (copied to quarantine/)" :
						 "");
	}
	srv.salts = edge_salts_open(srv.cfg->salt_file[0] ? srv.cfg->salt_file :
							    NULL,
				    alog_now_ms(), &e);
	if (!srv.salts) {
		edge_log("cannot open the salt file %s: %s", srv.cfg->salt_file,
			 strerror(-e));
		alog_log_close(srv.log);
		return 1;
	}
	if (srv.cfg->geoip_db[0]) {
		srv.geo = edge_geo_open(srv.cfg->geoip_db, &e);
		if (!srv.geo) {
			edge_log("cannot open the geo database %s: %s",
				 srv.cfg->geoip_db, strerror(-e));
			alog_log_close(srv.log);
			return 1;
		}
	}
	make_ratelimits(&srv);
	srv.shipper_json = shipper_json;
	rc = edge_server_start(&srv);
	if (rc < 0) {
		edge_log("cannot listen on %s:%u: %s", srv.cfg->listen_host,
			 srv.cfg->listen_port, strerror(-rc));
		alog_log_close(srv.log);
		edge_salts_close(srv.salts);
		edge_geo_close(srv.geo);
		edge_ratelimit_destroy(srv.rl_site);
		edge_ratelimit_destroy(srv.rl_client);
		edge_config_free(srv.cfg);
		pthread_rwlock_destroy(&srv.cfg_lock);
		close(sfd);
		return 1;
	}
	edge_log("listening on %s:%u, %u workers, log %s (%s), %zu sites",
		 srv.cfg->listen_host, srv.cfg->listen_port, srv.nworkers,
		 srv.cfg->log_dir,
		 srv.cfg->log.durability == ALOG_DURABLE_FSYNC ? "fsync" :
								 "write",
		 srv.cfg->nsites);

	for (;;) {
		struct signalfd_siginfo si;
		struct pollfd pfd = { .fd = sfd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, (int)srv.cfg->retain_interval_ms) == 0) {
			retain(&srv);
			continue;
		}
		n = read(sfd, &si, sizeof(si));

		if (n != sizeof(si)) {
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		if (si.ssi_signo == SIGHUP) {
			if (config)
				reload(&srv, config);
			continue;
		}
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			break;
	}
	edge_log("stopping: finishing in-flight requests");
	edge_server_stop(&srv);
	rc = alog_log_sync(srv.log);
	alog_log_close(srv.log);
	edge_salts_close(srv.salts);
	edge_geo_close(srv.geo);
	edge_ratelimit_destroy(srv.rl_site);
	edge_ratelimit_destroy(srv.rl_client);
	edge_config_free(srv.cfg);
	pthread_rwlock_destroy(&srv.cfg_lock);
	close(sfd);
	edge_log("stopped%s", rc ? " (the log had failed)" : "");
	return rc ? 1 : 0;
}
