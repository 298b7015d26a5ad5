/*
 * ship_main.c - `alog-shipper`: the command line, signals and log lines.
 *
 *   alog-shipper send --config FILE      on each edge host
 *   alog-shipper receive --config FILE   on the canonical host
 *   alog-shipper status HOST:PORT        a running role's metrics
 *
 * Exit status: 0 stopped by SIGTERM/SIGINT, 1 usage or configuration,
 * 2 failure, 3 canonical log failed (fail-stop), 4 GAP or IDENTITY stop.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alog_common.h"
#include "ship.h"

atomic_int ship_stop;
const char *ship_log_role = "shipper";

void ship_logf(const char *level, const char *fmt, ...)
{
	char msg[1024];
	uint64_t now = alog_now_ms();
	time_t sec = (time_t)(now / 1000);
	struct tm tm;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	gmtime_r(&sec, &tm);
	/* One write per line so concurrent threads do not interleave. */
	fprintf(stderr,
		"%04d-%02d-%02dT%02d:%02d:%02d.%03uZ alog-shipper %s %s: %s\n",
		tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		tm.tm_min, tm.tm_sec, (unsigned)(now % 1000), ship_log_role,
		level, msg);
}

static void on_signal(int sig)
{
	(void)sig;
	ship_stop = 1;
}

static int usage(FILE *out)
{
	fprintf(out,
		"usage: alog-shipper send --config FILE\n"
		"       alog-shipper receive --config FILE\n"
		"       alog-shipper status HOST:PORT\n"
		"Configuration: docs/shipper-config.md (keys may also be set "
		"as ALOG_SHIP_<KEY> in the environment).\n");
	return out == stdout ? SHIP_EXIT_OK : SHIP_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	struct ship_config cfg;
	struct sigaction sa = { .sa_handler = on_signal };
	enum ship_role role;
	char err[512];
	const char *path = NULL;
	int status;

	if (argc < 2)
		return usage(stderr);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
		return usage(stdout);
	if (strcmp(argv[1], "status") == 0) {
		if (argc != 3)
			return usage(stderr);
		return ship_status_run(argv[2]);
	}
	if (strcmp(argv[1], "send") == 0)
		role = SHIP_ROLE_SEND;
	else if (strcmp(argv[1], "receive") == 0)
		role = SHIP_ROLE_RECEIVE;
	else
		return usage(stderr);
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			path = argv[++i];
		else
			return usage(stderr);
	}
	ship_log_role = role == SHIP_ROLE_SEND ? "send" : "receive";
	if (ship_config_load(&cfg, role, path, err, sizeof(err)) < 0) {
		ship_error("configuration: %s", err);
		return SHIP_EXIT_USAGE;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	status = role == SHIP_ROLE_SEND ? ship_send_run(&cfg) :
					  ship_recv_run(&cfg);
	ship_config_free(&cfg);
	return status;
}
