/*
 * ship_send.c - the `send` role, on each edge host: read the edge log as a
 * reader (a cursor that never passes HEAD, so nothing a crash could take
 * back is shipped), pack records into zstd-compressed DATA frames, keep at
 * most a window of unacknowledged bytes in flight, and persist the
 * receiver's cumulative ACK as this consumer's checkpoint so the edge's
 * writer may apply retention below it. One thread, one poll loop, and a
 * helper thread that commits the checkpoint: a commit is two fsyncs, and a
 * loop blocked on a slow disk for timeout_ms looks like a dead peer to the
 * receiver.
 *
 * Where to resume is always the receiver's answer (what it holds durably),
 * checked against our own log and checkpoint; any doubt is a loud GAP stop,
 * never a skip (docs/ship-protocol.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "alog_common.h"
#include "alog_log.h"
#include "ship.h"
#include "ship_conn.h"

#define SEND_CTRL_ROOM (64u << 10) /* write buffer room for control frames */
#define SEND_CKPT_RETRY_NS 1000000000ull /* after a failed checkpoint */

enum send_state {
	SEND_DISCONNECTED = 0,
	SEND_CONNECTING = 1,
	SEND_STREAMING = 2,
	SEND_STOPPED = 3, /* GAP or IDENTITY: needs the operator */
};

struct send_stats { /* written by the loop, read by the metrics thread */
	uint64_t state;
	uint64_t acked;
	uint64_t head;
	uint64_t inflight_bytes;
	uint64_t last_ack_ms;
	uint64_t records_sent, raw_bytes_sent, wire_bytes_sent;
	uint64_t records_acked;
	uint64_t connects, disconnects, gaps;
	uint64_t rate_records_x1000, rate_wire_bytes; /* per second */
	uint64_t log_record_bytes; /* mean record size in the edge log */
};

struct inflight {
	uint64_t end; /* offset after the frame's last record */
	uint32_t bytes;
};

/* The checkpoint thread's mailbox: the loop posts the newest acknowledged
 * offset, the thread commits it at most every checkpoint_interval_ms (at
 * once when forced). Fields under mu. */
struct ckpt_writer {
	pthread_t tid;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	uint64_t want;     /* newest acknowledged offset (UINT64_MAX none) */
	uint64_t done;     /* last committed (UINT64_MAX none) */
	bool force;        /* commit without waiting for the interval */
	bool stop;         /* commit what is wanted once more, then exit */
	bool started;
};

struct sender {
	const struct ship_config *cfg;
	SSL_CTX *tls;
	ZSTD_CCtx *cctx;
	struct alog_cursor *cur;
	struct ship_conn conn;
	bool connected;

	uint8_t *block; /* raw record block being built */
	size_t block_cap;
	uint8_t *carry; /* a record read that did not fit the last block */
	size_t carry_cap;
	uint32_t carry_len;
	uint64_t carry_offset, carry_time;
	bool has_carry;

	struct inflight *fl;
	size_t fl_head, fl_n, fl_cap;
	uint64_t inflight_bytes;
	uint64_t acked;  /* everything below is durable on the receiver */
	uint64_t next;   /* offset of the next record to read */
	uint32_t window; /* negotiated */
	uint32_t frame_max;
	uint32_t records_max;
	uint32_t batch_bytes; /* effective raw block limit */
	bool buffer_full; /* the last frame did not fit in the write buffer */
	/* The receiver of this connection holds s->acked durably: it had a
	 * log at the WELCOME, or it sent an ACK. Until then no checkpoint is
	 * written: one at the edge log's start would later read as "the
	 * receiver acknowledged up to here" (docs/ship-protocol.md, GAP). */
	bool receiver_holds;
	uint64_t bad_offset; /* the record fill_block found too large */
	struct ckpt_writer ckpt;
	uint64_t hb_ns; /* heartbeat interval */
	uint64_t hb_sent_ns; /* last HEARTBEAT queued */
	uint32_t backoff_ms;

	struct send_stats st;
	uint64_t rate_ns, rate_records, rate_wire;
};

#define STAT_SET(s, f, v) __atomic_store_n(&(s)->st.f, (v), __ATOMIC_RELAXED)
#define STAT_ADD(s, f, v) __atomic_add_fetch(&(s)->st.f, (v), __ATOMIC_RELAXED)
#define STAT_GET(s, f) __atomic_load_n(&(s)->st.f, __ATOMIC_RELAXED)

/* HEAD, read directly (docs/log-format.md): 32 bytes, checksummed. */
static int read_head(const char *dir, uint64_t *next)
{
	char path[SHIP_PATH_MAX + 8];
	uint8_t b[32];
	int fd;

	snprintf(path, sizeof(path), "%s/HEAD", dir);
	for (int attempt = 0; attempt < 3; attempt++) {
		ssize_t n;

		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		n = pread(fd, b, sizeof(b), 0);
		close(fd);
		if (n == (ssize_t)sizeof(b) && memcmp(b, "ALOGHEAD", 8) == 0 &&
		    alog_get_u64(b + 24) == XXH3_64bits(b, 24)) {
			*next = alog_get_u64(b + 8);
			return 0;
		}
		/* Raced a rewrite: read again. */
	}
	return -EBADMSG;
}

static size_t send_metrics(void *arg, char *buf, size_t cap)
{
	struct sender *s = arg;
	uint64_t acked = STAT_GET(s, acked), head = STAT_GET(s, head);
	uint64_t lag = head > acked ? head - acked : 0;
	uint64_t rs = STAT_GET(s, records_sent);
	uint64_t avg = rs ? STAT_GET(s, raw_bytes_sent) / rs :
			    STAT_GET(s, log_record_bytes);
	uint64_t last = STAT_GET(s, last_ack_ms);
	int n;

	n = snprintf(
		buf, cap,
		"# HELP alog_ship_connection_state 0 disconnected, 1 "
		"connecting, 2 streaming, 3 stopped (gap)\n"
		"# TYPE alog_ship_connection_state gauge\n"
		"alog_ship_connection_state{role=\"send\"} %" PRIu64 "\n"
		"# TYPE alog_ship_acked_offset gauge\n"
		"alog_ship_acked_offset{role=\"send\"} %" PRIu64 "\n"
		"# TYPE alog_ship_head_offset gauge\n"
		"alog_ship_head_offset{role=\"send\"} %" PRIu64 "\n"
		"# HELP alog_ship_lag_records records in the edge log not yet "
		"acknowledged\n"
		"# TYPE alog_ship_lag_records gauge\n"
		"alog_ship_lag_records{role=\"send\"} %" PRIu64 "\n"
		"# HELP alog_ship_lag_bytes estimate: lag_records x mean "
		"shipped record size (before anything is shipped: the edge "
		"log's)\n"
		"# TYPE alog_ship_lag_bytes gauge\n"
		"alog_ship_lag_bytes{role=\"send\"} %" PRIu64 "\n"
		"# TYPE alog_ship_inflight_bytes gauge\n"
		"alog_ship_inflight_bytes{role=\"send\"} %" PRIu64 "\n"
		"# TYPE alog_ship_last_ack_time_seconds gauge\n"
		"alog_ship_last_ack_time_seconds{role=\"send\"} %" PRIu64
		".%03" PRIu64 "\n"
		"# TYPE alog_ship_records_sent_total counter\n"
		"alog_ship_records_sent_total{role=\"send\"} %" PRIu64 "\n"
		"# TYPE alog_ship_records_acked_total counter\n"
		"alog_ship_records_acked_total{role=\"send\"} %" PRIu64 "\n"
		"# TYPE alog_ship_raw_bytes_sent_total counter\n"
		"alog_ship_raw_bytes_sent_total{role=\"send\"} %" PRIu64 "\n"
		"# TYPE alog_ship_wire_bytes_sent_total counter\n"
		"alog_ship_wire_bytes_sent_total{role=\"send\"} %" PRIu64 "\n"
		"# TYPE alog_ship_records_per_second gauge\n"
		"alog_ship_records_per_second{role=\"send\"} %" PRIu64 "\n"
		"# TYPE alog_ship_wire_bytes_per_second gauge\n"
		"alog_ship_wire_bytes_per_second{role=\"send\"} %" PRIu64 "\n"
		"# TYPE alog_ship_connects_total counter\n"
		"alog_ship_connects_total{role=\"send\"} %" PRIu64 "\n"
		"# TYPE alog_ship_disconnects_total counter\n"
		"alog_ship_disconnects_total{role=\"send\"} %" PRIu64 "\n"
		"# TYPE alog_ship_gaps_total counter\n"
		"alog_ship_gaps_total{role=\"send\"} %" PRIu64 "\n",
		STAT_GET(s, state), acked, head, lag, lag * avg,
		STAT_GET(s, inflight_bytes), last / 1000, last % 1000, rs,
		STAT_GET(s, records_acked), STAT_GET(s, raw_bytes_sent),
		STAT_GET(s, wire_bytes_sent),
		STAT_GET(s, rate_records_x1000) / 1000,
		STAT_GET(s, rate_wire_bytes), STAT_GET(s, connects),
		STAT_GET(s, disconnects), STAT_GET(s, gaps));
	return n < 0 ? 0 : ((size_t)n >= cap ? cap - 1 : (size_t)n);
}

static void send_error_frame(struct sender *s, uint16_t code,
			     const char *reason)
{
	uint8_t body[4 + SHIP_REASON_MAX];
	size_t n = ship_error_encode(body, sizeof(body), code, reason);

	if (ship_conn_send(&s->conn, SHIP_ERROR, body, (uint32_t)n) == 0)
		(void)ship_conn_flush(&s->conn);
}

static void *ckpt_main(void *arg)
{
	struct sender *s = arg;
	struct ckpt_writer *w = &s->ckpt;
	uint64_t interval_ns =
		(uint64_t)s->cfg->checkpoint_interval_ms * 1000000;
	uint64_t last_ns = 0, failed = UINT64_MAX, gap_ns;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		uint64_t want = w->want, now = alog_mono_ns();
		int rc;

		if (want == UINT64_MAX ||
		    (w->done != UINT64_MAX && want <= w->done) ||
		    (w->stop && want == failed)) {
			if (w->stop)
				break;
			pthread_cond_wait(&w->cv, &w->mu);
			continue;
		}
		/* The interval unless forced; a second after a failure. */
		gap_ns = w->force ? 0 : interval_ns;
		if (failed != UINT64_MAX && gap_ns < SEND_CKPT_RETRY_NS)
			gap_ns = SEND_CKPT_RETRY_NS;
		if (!w->stop && last_ns && now - last_ns < gap_ns) {
			struct timespec ts;
			uint64_t at = last_ns + gap_ns;

			ts.tv_sec = (time_t)(at / 1000000000);
			ts.tv_nsec = (long)(at % 1000000000);
			pthread_cond_timedwait(&w->cv, &w->mu, &ts);
			continue;
		}
		w->force = false;
		pthread_mutex_unlock(&w->mu);
		rc = alog_consumer_commit(s->cfg->log_dir, s->cfg->consumer,
					  want);
		if (rc < 0) /* only retention depends on it: keep shipping */
			ship_warn("checkpoint %s: %s", s->cfg->consumer,
				  strerror(-rc));
		pthread_mutex_lock(&w->mu);
		last_ns = alog_mono_ns();
		failed = rc < 0 ? want : UINT64_MAX;
		if (rc == 0)
			w->done = want;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static int ckpt_start(struct sender *s)
{
	struct ckpt_writer *w = &s->ckpt;
	pthread_condattr_t ca;
	sigset_t all, old;
	int err;

	w->want = w->done = UINT64_MAX;
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	/* SIGTERM and SIGINT are for the loop (they interrupt its poll). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&w->tid, NULL, ckpt_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return -err;
	w->started = true;
	return 0;
}

/* Commit what was posted last (once more if that failed) and join. */
static void ckpt_stop(struct sender *s)
{
	struct ckpt_writer *w = &s->ckpt;

	if (!w->started)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->tid, NULL);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	w->started = false;
}

/* Post the acknowledged offset for the checkpoint thread; never blocks on
 * the disk. force: commit it without waiting for the interval. */
static void checkpoint(struct sender *s, bool force)
{
	struct ckpt_writer *w = &s->ckpt;

	if (!s->receiver_holds)
		return;
	pthread_mutex_lock(&w->mu);
	if (w->want == UINT64_MAX || s->acked > w->want) {
		w->want = s->acked;
		w->force |= force;
		pthread_cond_signal(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
}

/* The newest acknowledged offset known, committed or not (UINT64_MAX
 * none). */
static uint64_t checkpoint_known(struct sender *s)
{
	uint64_t v;

	pthread_mutex_lock(&s->ckpt.mu);
	v = s->ckpt.want;
	pthread_mutex_unlock(&s->ckpt.mu);
	return v;
}

static void disconnect(struct sender *s, const char *why)
{
	if (!s->connected)
		return;
	ship_warn("disconnected from %s: %s (acked %" PRIu64 ", %" PRIu64
		  " bytes were in flight)",
		  s->cfg->receiver, why, s->acked, s->inflight_bytes);
	ship_conn_close(&s->conn);
	s->connected = false;
	alog_cursor_close(s->cur);
	s->cur = NULL;
	s->has_carry = false;
	s->fl_head = s->fl_n = 0;
	s->inflight_bytes = 0;
	STAT_SET(s, inflight_bytes, 0);
	STAT_SET(s, state, SEND_DISCONNECTED);
	STAT_ADD(s, disconnects, 1);
	checkpoint(s, true);
}

/* The loud stop: log, tell the receiver, exit status SHIP_EXIT_GAP. */
static int gap_stop(struct sender *s, uint16_t code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int gap_stop(struct sender *s, uint16_t code, const char *fmt, ...)
{
	char msg[SHIP_REASON_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ship_error("%s: %s; shipping stopped, operator action needed",
		   ship_err_name(code), msg);
	STAT_ADD(s, gaps, 1);
	if (s->connected)
		send_error_frame(s, code, msg);
	disconnect(s, ship_err_name(code));
	STAT_SET(s, state, SEND_STOPPED);
	return SHIP_EXIT_GAP;
}

/* Read one frame within the deadline (handshake). 1, or <0 with why. */
static int read_frame_until(struct sender *s, uint64_t deadline_ns,
			    uint32_t body_max, struct ship_frame *f, char *why,
			    size_t cap)
{
	for (;;) {
		struct pollfd pfd = { .fd = s->conn.fd };
		const char *pwhy = NULL;
		uint64_t now = alog_mono_ns();
		int rc = ship_conn_next_frame(&s->conn, body_max, f, &pwhy);

		if (rc == 1)
			return 1;
		if (rc < 0) {
			snprintf(why, cap, "bad frame from receiver: %s", pwhy);
			return rc;
		}
		if (ship_conn_flush(&s->conn) < -EAGAIN) {
			snprintf(why, cap, "write failed");
			return -EPIPE;
		}
		if (now >= deadline_ns || ship_stop) {
			snprintf(why, cap, "handshake timed out");
			return -ETIMEDOUT;
		}
		pfd.events = ship_conn_events(&s->conn);
		if (!ship_conn_has_buffered(&s->conn)) {
			rc = poll(&pfd, 1,
				  (int)((deadline_ns - now) / 1000000 + 1));
			if (rc < 0 && errno != EINTR) {
				snprintf(why, cap, "poll: %s", strerror(errno));
				return -errno;
			}
		}
		rc = ship_conn_fill(&s->conn);
		if (rc < 0) {
			snprintf(why, cap, "connection lost during handshake");
			return rc;
		}
	}
}

/*
 * Connect, authenticate, handshake, decide where to resume and open the
 * cursor there. 0 when streaming, -EAGAIN to retry later (why says
 * why), or SHIP_EXIT_GAP.
 */
static int send_connect(struct sender *s, char *why, size_t cap)
{
	const struct ship_config *cfg = s->cfg;
	uint64_t deadline =
		alog_mono_ns() + (uint64_t)cfg->handshake_timeout_ms * 1000000;
	struct alog_log_info info;
	struct ship_hello h = { .version_min = SHIP_VERSION_MIN,
				.version_max = SHIP_VERSION_MAX };
	struct ship_welcome w;
	struct ship_frame f;
	uint8_t body[SHIP_HANDSHAKE_BYTES_MAX];
	const char *pwhy = NULL;
	uint64_t head, ckpt = 0, known, resume;
	bool has_ckpt;
	SSL *ssl = NULL;
	size_t n;
	int fd, rc;

	STAT_SET(s, state, SEND_CONNECTING);
	rc = alog_log_inspect(cfg->log_dir, &info);
	if (rc < 0) {
		snprintf(why, cap, "edge log %.300s: %s", cfg->log_dir,
			 alog_strerror(rc));
		return -EAGAIN;
	}
	{
		uint64_t recs = 0, bytes = 0;

		for (size_t i = 0; i < info.nsegments; i++) {
			recs += info.segments[i].records;
			bytes += info.segments[i].data_bytes;
		}
		if (recs)
			STAT_SET(s, log_record_bytes, bytes / recs);
	}
	free(info.segments);
	head = info.head_offset;
	if (head == UINT64_MAX)
		head = info.start_offset; /* no HEAD yet: nothing visible */
	rc = alog_consumer_read(cfg->log_dir, cfg->consumer, &ckpt, NULL);
	if (rc < 0 && rc != -ENOENT) {
		snprintf(why, cap, "checkpoint %s: %s", cfg->consumer,
			 strerror(-rc));
		return -EAGAIN;
	}
	has_ckpt = rc == 0;
	/* What this process saw acknowledged may not be committed yet. */
	known = checkpoint_known(s);
	if (known != UINT64_MAX && (!has_ckpt || known > ckpt)) {
		ckpt = known;
		has_ckpt = true;
	}
	/* While the receiver is away the lag must still show: the head
	 * grows, and the checkpoint is what is known to be durable there. */
	STAT_SET(s, head, head);
	if (has_ckpt && STAT_GET(s, acked) < ckpt)
		STAT_SET(s, acked, ckpt);

	fd = ship_connect(cfg->receiver, cfg->transport == SHIP_PLAIN_LOOPBACK,
			  (int)cfg->handshake_timeout_ms, why, cap);
	if (fd < 0)
		return -EAGAIN;
	if (cfg->transport == SHIP_TLS) {
		ssl = ship_tls_client(s->tls, fd, cfg->tls_server_name, why,
				      cap);
		if (!ssl) {
			close(fd);
			return -EAGAIN;
		}
	}
	rc = ship_conn_init(
		&s->conn, fd, ssl,
		SHIP_FRAME_HEADER_BYTES + SHIP_HANDSHAKE_BYTES_MAX + 64 * 1024,
		SHIP_FRAME_HEADER_BYTES * 2 + SHIP_DATA_HEADER_BYTES +
			ZSTD_compressBound(s->block_cap) + SEND_CTRL_ROOM);
	if (rc < 0) {
		SSL_free(ssl);
		close(fd);
		snprintf(why, cap, "out of memory");
		return -EAGAIN;
	}
	s->connected = true;
	if (ssl) {
		rc = ship_conn_handshake(&s->conn, deadline, why, cap);
		if (rc < 0)
			goto out_close;
	}

	h.frame_bytes_max = cfg->frame_bytes_max;
	memcpy(h.identity, info.identity, 16);
	h.start_offset = info.start_offset;
	h.head_offset = head;
	snprintf(h.name, sizeof(h.name), "%s", cfg->edge);
	n = ship_hello_encode(body, sizeof(body), &h);
	if (n == 0 || ship_conn_send(&s->conn, SHIP_HELLO, body, (uint32_t)n)) {
		snprintf(why, cap, "cannot encode HELLO");
		goto out_close;
	}
	rc = read_frame_until(s, deadline, SHIP_HANDSHAKE_BYTES_MAX, &f, why,
			      cap);
	if (rc < 0)
		goto out_close;
	if (f.type == SHIP_ERROR) {
		struct ship_error e;

		if (ship_error_decode(f.body, f.body_len, &e, &pwhy) < 0) {
			snprintf(why, cap, "malformed ERROR: %s", pwhy);
			goto out_close;
		}
		snprintf(why, cap, "refused by receiver: %s: %s",
			 ship_err_name(e.code), e.reason);
		if (e.code == SHIP_ERR_IDENTITY)
			return gap_stop(s, SHIP_ERR_IDENTITY, "%s", why);
		goto out_close;
	}
	if (f.type != SHIP_WELCOME ||
	    ship_welcome_decode(f.body, f.body_len, &w, &pwhy) < 0) {
		snprintf(why, cap, "expected WELCOME, got %s (%s)",
			 ship_type_name(f.type),
			 pwhy ? pwhy : "wrong frame type");
		goto out_close;
	}

	/* Where to resume: the receiver's durable next, if it is sane. */
	if (!w.has_log) {
		/*
		 * The receiver holds nothing, yet we have a checkpoint: it
		 * lost what it acknowledged if the checkpoint is past the
		 * edge log's start, or if the start itself moved past 0
		 * (alog-edge creates its log at 0, and retention deletes
		 * only acknowledged segments, so a quiet, caught-up edge
		 * after a roll has checkpoint == start > 0). Deleting
		 * consumers/<name> is how an operator says "ship what is
		 * left to a new canonical host".
		 */
		if (has_ckpt && (ckpt > info.start_offset ||
				 info.start_offset > 0))
			return gap_stop(
				s, SHIP_ERR_GAP,
				"receiver has no log for edge %s but "
				"offsets below %" PRIu64
				" were acknowledged: the canonical host lost "
				"them (to ship from %" PRIu64
				" anyway, delete %s/consumers/%s)",
				cfg->edge, ckpt, info.start_offset,
				cfg->log_dir, cfg->consumer);
		resume = info.start_offset;
	} else {
		resume = w.next_offset;
		if (has_ckpt && resume < ckpt)
			return gap_stop(s, SHIP_ERR_GAP,
					"receiver holds up to %" PRIu64
					" but %" PRIu64
					" was acknowledged: the canonical host "
					"lost acknowledged records",
					resume, ckpt);
		if (resume < info.start_offset)
			return gap_stop(s, SHIP_ERR_GAP,
					"receiver needs offset %" PRIu64
					" but the edge log starts at %" PRIu64
					": records [%" PRIu64 ", %" PRIu64
					") are gone",
					resume, info.start_offset, resume,
					info.start_offset);
		if (resume > head)
			return gap_stop(s, SHIP_ERR_GAP,
					"receiver holds up to %" PRIu64
					" but the edge log ends at %" PRIu64
					": not the same log",
					resume, head);
	}
	s->cur = alog_cursor_open(cfg->log_dir, resume, &rc);
	if (!s->cur) {
		snprintf(why, cap, "cursor at %" PRIu64 ": %s", resume,
			 alog_strerror(rc));
		goto out_close;
	}
	s->acked = s->next = resume;
	s->window = w.window_bytes < cfg->window_bytes ? w.window_bytes :
							 cfg->window_bytes;
	s->frame_max = w.frame_bytes_max < cfg->frame_bytes_max ?
			       w.frame_bytes_max :
			       cfg->frame_bytes_max;
	s->records_max = w.records_max < cfg->batch_records ?
				 w.records_max :
				 cfg->batch_records;
	s->batch_bytes = cfg->batch_bytes;
	if (s->batch_bytes + SHIP_DATA_HEADER_BYTES > s->frame_max)
		s->batch_bytes = s->frame_max - SHIP_DATA_HEADER_BYTES;
	s->hb_ns = (uint64_t)(w.heartbeat_ms < cfg->heartbeat_ms ?
				      w.heartbeat_ms :
				      cfg->heartbeat_ms) *
		   1000000;
	s->hb_sent_ns = alog_mono_ns(); /* the HELLO just went out */
	s->receiver_holds = w.has_log;
	STAT_SET(s, acked, resume);
	STAT_SET(s, head, head);
	STAT_SET(s, state, SEND_STREAMING);
	STAT_ADD(s, connects, 1);
	checkpoint(s, true);
	ship_info("connected to %s (%s) as %s, version %u: resuming at "
		  "%" PRIu64 " (edge log %" PRIu64 "..%" PRIu64
		  "), window %u, frame %u",
		  cfg->receiver, s->conn.peer, cfg->edge, w.version, resume,
		  info.start_offset, head, s->window, s->frame_max);
	return 0;

out_close:
	ship_conn_close(&s->conn);
	s->connected = false;
	STAT_SET(s, state, SEND_DISCONNECTED);
	return -EAGAIN;
}

/*
 * Fill s->block from the cursor: up to batch_bytes raw and records_max
 * records. Returns records, 0 if none visible, -errno (GAP for -ERANGE).
 */
/* The largest record block one DATA frame carries, compressed or not. */
static size_t block_max(const struct sender *s)
{
	size_t f = s->frame_max - SHIP_DATA_HEADER_BYTES;

	return f < s->block_cap ? f : s->block_cap;
}

static int fill_block(struct sender *s, uint64_t *first, size_t *used)
{
	size_t big = block_max(s);
	uint32_t count = 0;

	*used = 0;
	*first = s->next;
	if (s->has_carry) {
		ship_block_put(s->block, s->block_cap, used, s->carry_offset,
			       s->carry_time, s->carry, s->carry_len);
		s->has_carry = false;
		count++;
	}
	while (count < s->records_max) {
		struct alog_record rec;
		int rc = alog_cursor_next(s->cur, &rec);

		if (rc == 0)
			break;
		if (rc < 0)
			return rc;
		if (rec.offset != s->next + count)
			return -EILSEQ; /* the cursor broke its promise */
		if (SHIP_RECORD_HEADER_BYTES + (size_t)rec.len > big) {
			s->bad_offset = rec.offset;
			return -EMSGSIZE;
		}
		if (count == 0 &&
		    SHIP_RECORD_HEADER_BYTES + (size_t)rec.len > s->batch_bytes) {
			/* Larger than a batch: it goes alone. */
			(void)ship_block_put(s->block, big, used, rec.offset,
					     rec.time_ms, rec.data, rec.len);
			count++;
			break;
		}
		if (!ship_block_put(s->block, s->batch_bytes, used, rec.offset,
				    rec.time_ms, rec.data, rec.len)) {
			/* Keep it for the next block (its bytes are only
			 * borrowed until the next cursor call). */
			if (s->carry_cap < rec.len) {
				uint8_t *p = realloc(s->carry, rec.len);

				if (!p)
					return -ENOMEM;
				s->carry = p;
				s->carry_cap = rec.len;
			}
			memcpy(s->carry, rec.data, rec.len);
			s->carry_len = rec.len;
			s->carry_offset = rec.offset;
			s->carry_time = rec.time_ms;
			s->has_carry = true;
			break;
		}
		count++;
	}
	return (int)count;
}

/* Build and queue one DATA frame. 1 queued, 0 nothing to send, <0 error
 * (SHIP_EXIT_GAP-worthy errors are reported through *fatal). */
static int send_one_frame(struct sender *s, int *fatal)
{
	uint8_t *body;
	uint64_t first;
	size_t used, packed;
	uint8_t codec = SHIP_CODEC_NONE;
	uint32_t wire;
	int count;

	body = ship_conn_frame_begin(
		&s->conn,
		SHIP_DATA_HEADER_BYTES + ZSTD_compressBound(s->block_cap));
	s->buffer_full = body == NULL;
	if (!body)
		return 0; /* write buffer full: flush first */
	count = fill_block(s, &first, &used);
	if (count == -ERANGE) {
		*fatal = gap_stop(s, SHIP_ERR_GAP,
				  "offset %" PRIu64
				  " is no longer in the edge log (deleted by "
				  "retention before it was acknowledged)",
				  s->next);
		return -ERANGE;
	}
	if (count == -EMSGSIZE) {
		ship_error("record at %" PRIu64
			   " is larger than one DATA frame carries (%u bytes "
			   "with its header: the smaller of 4 MiB and the "
			   "frame limit %u)",
			   s->bad_offset,
			   (unsigned)block_max(s),
			   s->frame_max);
		*fatal = SHIP_EXIT_FAILED;
		return count;
	}
	if (count < 0) {
		if (count == -EBADMSG) {
			const struct alog_damage *d =
				alog_cursor_damage(s->cur);

			ship_error("edge log damaged at segment %" PRIu64
				   " position %" PRIu64 " offset %" PRIu64
				   ": %s; not skipping it",
				   d->segment_base, d->position, d->offset,
				   d->reason);
			*fatal = SHIP_EXIT_FAILED;
		} else {
			ship_error("reading the edge log at %" PRIu64 ": %s",
				   s->next, alog_strerror(count));
		}
		return count;
	}
	if (count == 0)
		return 0;
	packed = used;
	if (s->cfg->zstd_level > 0 && s->cctx) {
		size_t z = ZSTD_compressCCtx(s->cctx,
					     body + SHIP_DATA_HEADER_BYTES,
					     ZSTD_compressBound(s->block_cap),
					     s->block, used,
					     s->cfg->zstd_level);

		if (!ZSTD_isError(z) && z < used &&
		    z + SHIP_DATA_HEADER_BYTES <= s->frame_max) {
			packed = z;
			codec = SHIP_CODEC_ZSTD;
		}
	}
	if (codec == SHIP_CODEC_NONE)
		memcpy(body + SHIP_DATA_HEADER_BYTES, s->block, used);
	ship_data_header_encode(body, first, (uint32_t)count, (uint32_t)used,
				codec);
	ship_conn_frame_end(&s->conn, SHIP_DATA,
			    (uint32_t)(SHIP_DATA_HEADER_BYTES + packed));
	wire = (uint32_t)(SHIP_FRAME_HEADER_BYTES + SHIP_DATA_HEADER_BYTES +
			  packed);
	if (s->fl_n == s->fl_cap) {
		size_t cap = s->fl_cap ? s->fl_cap * 2 : 256;
		struct inflight *p = malloc(cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		for (size_t i = 0; i < s->fl_n; i++)
			p[i] = s->fl[(s->fl_head + i) % s->fl_cap];
		free(s->fl);
		s->fl = p;
		s->fl_cap = cap;
		s->fl_head = 0;
	}
	s->fl[(s->fl_head + s->fl_n) % s->fl_cap] =
		(struct inflight){ first + (uint64_t)count, wire };
	s->fl_n++;
	s->inflight_bytes += wire;
	s->next = first + (uint64_t)count;
	if (STAT_GET(s, head) < s->next) /* the head metric is read 1/s */
		STAT_SET(s, head, s->next);
	STAT_SET(s, inflight_bytes, s->inflight_bytes);
	STAT_ADD(s, records_sent, (uint64_t)count);
	STAT_ADD(s, raw_bytes_sent, used);
	STAT_ADD(s, wire_bytes_sent, wire);
	s->rate_records += (uint64_t)count;
	s->rate_wire += wire;
	return 1;
}

/* Handle one frame from the receiver. 0, or -errno to disconnect (why). */
static int handle_frame(struct sender *s, const struct ship_frame *f, char *why,
			size_t cap)
{
	const char *pwhy = NULL;
	uint64_t a, b;

	switch (f->type) {
	case SHIP_ACK:
		if (ship_ack_decode(f->body, f->body_len, &a, &b, &pwhy) < 0)
			break;
		if (a < s->acked || a > s->next) {
			snprintf(why, cap,
				 "ACK %" PRIu64 " outside [%" PRIu64
				 ", %" PRIu64 "]",
				 a, s->acked, s->next);
			return -EPROTO;
		}
		STAT_ADD(s, records_acked, a - s->acked);
		s->acked = a;
		s->receiver_holds = true;
		while (s->fl_n > 0 && s->fl[s->fl_head].end <= a) {
			s->inflight_bytes -= s->fl[s->fl_head].bytes;
			s->fl_head = (s->fl_head + 1) % s->fl_cap;
			s->fl_n--;
		}
		STAT_SET(s, acked, a);
		STAT_SET(s, inflight_bytes, s->inflight_bytes);
		STAT_SET(s, last_ack_ms, alog_now_ms());
		return 0;
	case SHIP_HEARTBEAT:
		if (ship_heartbeat_decode(f->body, f->body_len, &a, &b, &pwhy) <
		    0)
			break;
		return 0;
	case SHIP_ERROR: {
		struct ship_error e;

		if (ship_error_decode(f->body, f->body_len, &e, &pwhy) < 0)
			break;
		snprintf(why, cap, "receiver error %s: %s",
			 ship_err_name(e.code), e.reason);
		return e.code == SHIP_ERR_GAP || e.code == SHIP_ERR_IDENTITY ?
			       -ENOTRECOVERABLE :
			       -ECONNRESET;
	}
	default:
		pwhy = "unexpected frame type";
		break;
	}
	snprintf(why, cap, "bad %s frame from receiver: %s",
		 ship_type_name(f->type), pwhy ? pwhy : "?");
	return -EPROTO;
}

static void update_rates(struct sender *s, uint64_t now)
{
	uint64_t dt = now - s->rate_ns;
	uint64_t head;

	if (dt < 1000000000ull)
		return;
	STAT_SET(s, rate_records_x1000,
		 s->rate_records * 1000000000000ull / dt);
	STAT_SET(s, rate_wire_bytes, s->rate_wire * 1000000000ull / dt);
	s->rate_records = s->rate_wire = 0;
	s->rate_ns = now;
	if (read_head(s->cfg->log_dir, &head) == 0)
		STAT_SET(s, head, head);
}

/* Stream until the connection ends. Returns 0 (reconnect) or an exit
 * status (stop). */
static int send_stream(struct sender *s)
{
	char why[600] = "";
	int fatal = 0;

	for (;;) {
		struct pollfd pfd[2];
		uint64_t now = alog_mono_ns();
		const char *pwhy = NULL;
		struct ship_frame f;
		int rc, timeout_ms;
		bool more;

		if (ship_stop) {
			send_error_frame(s, SHIP_ERR_SHUTDOWN,
					 "sender stopping");
			disconnect(s, "stopping");
			return SHIP_EXIT_OK;
		}
		/* Queue DATA while the window and the buffer allow. more:
		 * the buffer, not the window or the log, stopped it. */
		more = false;
		while (s->inflight_bytes < s->window) {
			rc = send_one_frame(s, &fatal);
			if (fatal)
				return fatal;
			if (rc < 0) {
				disconnect(s, "edge log read failed");
				return 0;
			}
			if (rc == 0) {
				more = s->buffer_full;
				break;
			}
			if (ship_conn_pending(&s->conn) > s->conn.wcap / 2) {
				more = true;
				break;
			}
		}
		/* Every interval, busy or not: the receiver learns the
		 * edge's head (its lag metric) only from heartbeats. */
		if (now - s->hb_sent_ns >= s->hb_ns) {
			uint8_t body[SHIP_HEARTBEAT_BYTES];
			uint64_t head;

			if (read_head(s->cfg->log_dir, &head) < 0 ||
			    head < s->next)
				head = s->next;
			ship_heartbeat_encode(body, sizeof(body), head,
					      alog_now_ms());
			if (ship_conn_send(&s->conn, SHIP_HEARTBEAT, body,
					   sizeof(body)) == 0)
				s->hb_sent_ns = now;
		}
		rc = ship_conn_flush(&s->conn);
		if (rc < 0 && rc != -EAGAIN) {
			disconnect(s, "write failed");
			return 0;
		}
		if (ship_conn_silent(&s->conn,
				     (uint64_t)s->cfg->timeout_ms * 1000000)) {
			send_error_frame(s, SHIP_ERR_TIMEOUT,
					 "no frame from receiver");
			disconnect(s, "receiver silent for timeout_ms");
			return 0;
		}
		/* A fresh clock: the flush just moved last_tx_ns past `now`
		 * when it sent part of the buffer, and `now - last_tx_ns`
		 * then wrapped to a huge value: under load the sender dropped
		 * healthy connections as "not reading" and sent the window
		 * again (two or three times per 10 M-record backlog run). */
		if (rc == -EAGAIN &&
		    alog_mono_ns() - s->conn.last_tx_ns >
			    (uint64_t)s->cfg->timeout_ms * 1000000) {
			disconnect(s, "receiver not reading for timeout_ms");
			return 0;
		}
		checkpoint(s, false);
		update_rates(s, now);

		pfd[0].fd = s->conn.fd;
		pfd[0].events = ship_conn_events(&s->conn);
		pfd[0].revents = 0;
		pfd[1].fd = alog_cursor_fd(s->cur);
		pfd[1].events = POLLIN;
		pfd[1].revents = 0;
		timeout_ms = (int)(s->hb_ns / 1000000 / 2) + 1;
		if (s->cfg->checkpoint_interval_ms &&
		    timeout_ms > (int)s->cfg->checkpoint_interval_ms)
			timeout_ms = (int)s->cfg->checkpoint_interval_ms;
		/* Data waits and the socket took all that was queued: only
		 * look at what came in, then queue more. Without this a
		 * backlog went out one frame per ACK (the buffer holds one
		 * frame at its worst case; nothing else wakes the poll). */
		if (ship_conn_has_buffered(&s->conn) ||
		    (more && ship_conn_pending(&s->conn) == 0))
			timeout_ms = 0;
		/* The window is open and the log has nothing: wait for it
		 * (inotify) as well as for the socket. */
		rc = poll(pfd, s->inflight_bytes < s->window ? 2 : 1,
			  timeout_ms);
		s->conn.polled_ns = alog_mono_ns();
		if (rc < 0 && errno != EINTR) {
			ship_error("poll: %s", strerror(errno));
			disconnect(s, "poll failed");
			return 0;
		}
		if (pfd[1].revents & POLLIN)
			(void)alog_cursor_wait(s->cur, 0);
		if ((pfd[0].revents & (POLLIN | POLLERR | POLLHUP)) ||
		    ship_conn_has_buffered(&s->conn) ||
		    (s->conn.tls_want_write && (pfd[0].revents & POLLOUT))) {
			int frc = ship_conn_fill(&s->conn);

			while ((rc = ship_conn_next_frame(
					&s->conn, SHIP_HANDSHAKE_BYTES_MAX, &f,
					&pwhy)) == 1) {
				rc = handle_frame(s, &f, why, sizeof(why));
				if (rc == -ENOTRECOVERABLE)
					return gap_stop(s, SHIP_ERR_GAP, "%s",
							why);
				if (rc < 0) {
					disconnect(s, why);
					return 0;
				}
			}
			if (rc < 0) {
				snprintf(why, sizeof(why),
					 "bad frame from receiver: %s", pwhy);
				send_error_frame(s, SHIP_ERR_PROTOCOL, why);
				disconnect(s, why);
				return 0;
			}
			if (frc < 0) {
				disconnect(s, frc == -EPIPE ?
						      "closed by receiver" :
						      "connection reset");
				return 0;
			}
		}
	}
}

/* Sleep up to ms, waking early on ship_stop. */
static void nap(uint32_t ms)
{
	uint64_t end = alog_mono_ns() + (uint64_t)ms * 1000000;

	while (!ship_stop && alog_mono_ns() < end)
		poll(NULL, 0, 20);
}

/* nap(), keeping the head metric current (lag grows during an outage). */
static void nap_watching_head(struct sender *s, uint32_t ms)
{
	while (ms > 0 && !ship_stop) {
		uint32_t d = ms > 1000 ? 1000 : ms;
		uint64_t head;

		nap(d);
		ms -= d;
		if (read_head(s->cfg->log_dir, &head) == 0)
			STAT_SET(s, head, head);
	}
}

static uint32_t backoff_next(struct sender *s)
{
	uint32_t d = s->backoff_ms, r = 0;

	(void)alog_random_bytes(&r, sizeof(r));
	s->backoff_ms = d >= s->cfg->backoff_max_ms / 2 ?
				s->cfg->backoff_max_ms :
				d * 2;
	/* Full jitter in [d/2, d]. */
	return d / 2 + (d / 2 ? r % (d / 2 + 1) : 0);
}

int ship_send_run(const struct ship_config *cfg)
{
	struct sender *s = calloc(1, sizeof(*s));
	struct ship_metrics *metrics = NULL;
	char why[600];
	uint64_t from, since;
	int rc, status = SHIP_EXIT_OK;

	if (!s)
		return SHIP_EXIT_FAILED;
	s->cfg = cfg;
	s->conn.fd = -1;
	s->backoff_ms = cfg->backoff_min_ms;
	/* Room for one record up to what a DATA frame may unpack to, sent
	 * alone when it is larger than batch_bytes. */
	s->block_cap = SHIP_RAW_BYTES_MAX;
	s->block = malloc(s->block_cap);
	s->cctx = ZSTD_createCCtx();
	s->rate_ns = alog_mono_ns();
	if (!s->block || !s->cctx) {
		ship_error("out of memory");
		status = SHIP_EXIT_FAILED;
		goto out_free;
	}
	rc = ckpt_start(s);
	if (rc < 0) {
		ship_error("checkpoint thread: %s", strerror(-rc));
		status = SHIP_EXIT_FAILED;
		goto out_free;
	}
	if (cfg->transport == SHIP_TLS) {
		s->tls = ship_tls_ctx(cfg, false, why, sizeof(why));
		if (!s->tls) {
			ship_error("%s", why);
			status = SHIP_EXIT_USAGE;
			goto out_free;
		}
	}
	if (cfg->metrics_listen[0]) {
		metrics = ship_metrics_start(cfg->metrics_listen, send_metrics,
					     s, &rc);
		if (!metrics) {
			ship_error("metrics on %s: %s", cfg->metrics_listen,
				   strerror(-rc));
			status = SHIP_EXIT_USAGE;
			goto out_free;
		}
	}
	ship_info("edge %s: shipping %s to %s (%s)", cfg->edge, cfg->log_dir,
		  cfg->receiver,
		  cfg->transport == SHIP_TLS ? "TLS 1.3" :
					       "PLAIN, loopback only");
	while (!ship_stop) {
		rc = send_connect(s, why, sizeof(why));
		if (rc == SHIP_EXIT_GAP) {
			status = rc;
			break;
		}
		if (rc < 0) {
			uint32_t d = backoff_next(s);

			STAT_SET(s, state, SEND_DISCONNECTED);
			ship_warn("%s; retrying in %u ms", why, d);
			nap_watching_head(s, d);
			continue;
		}
		from = s->acked;
		since = alog_mono_ns();
		rc = send_stream(s);
		if (rc != 0) {
			status = rc;
			break;
		}
		/* Back to backoff_min_ms only after a connection that got
		 * somewhere: an ACK moved, or it lasted backoff_max_ms. One
		 * that the receiver takes and then drops at once (its disk
		 * full, a middlebox, our own trouble) backs off like a refused
		 * one instead of reconnecting every backoff_min_ms. */
		if (s->acked > from ||
		    alog_mono_ns() - since >=
			    (uint64_t)cfg->backoff_max_ms * 1000000)
			s->backoff_ms = cfg->backoff_min_ms;
		{
			uint32_t d = backoff_next(s);

			ship_info("reconnecting in %u ms", d);
			nap_watching_head(s, d);
		}
	}
	checkpoint(s, true);
	ckpt_stop(s);
	ship_info("sender stopped (acked %" PRIu64 ")", s->acked);

out_free:
	ckpt_stop(s);
	ship_metrics_stop(metrics);
	alog_cursor_close(s->cur);
	ship_conn_close(&s->conn);
	ship_tls_ctx_free(s->tls);
	ZSTD_freeCCtx(s->cctx);
	free(s->block);
	free(s->carry);
	free(s->fl);
	free(s);
	return status;
}
