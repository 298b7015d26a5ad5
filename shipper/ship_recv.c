/*
 * ship_recv.c - the `receive` role, on the canonical host: accept edges
 * (TLS 1.3, client certificate CN = edge name, name in the allowed list),
 * answer each HELLO with what the edge's canonical log holds durably, and
 * append every DATA record with its original offset and time, so the
 * canonical log is byte-identical to the edge's. Cumulative ACKs go out
 * only from the log's durable callbacks (after fdatasync).
 *
 * One thread per connection (bounded by connections_max); one slot per
 * allowed edge holds its canonical log, open for the life of the process,
 * and at most one connection owns a slot at a time: a newer connection of
 * the same edge takes over from a stale one.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "alog_common.h"
#include "alog_log.h"
#include "ship.h"
#include "ship_conn.h"

#define RECV_RING_MAX 65536 /* appends waiting for their durable callback */
#define RECV_TAKEOVER_MS 5000
#define SOURCE_BYTES 40

struct edge_slot {
	char name[SHIP_NAME_MAX + 1];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct recv_conn *owner;
	struct alog_log *log; /* canonical log, NULL until it exists; set
			       * under mu, then only closed at exit */
	/* metrics, under mu */
	bool connected;
	uint64_t durable_next;
	bool has_log;
	uint64_t edge_head;
	uint64_t last_ack_ms;
	uint64_t records, raw_bytes, wire_bytes, dup_records;
	uint64_t storage_full;
	uint64_t connects;
	/* throughput over the scrapes at least 1 s apart (metrics thread) */
	uint64_t rate_ns, rate_records, rate_wire;
	uint64_t records_per_s, wire_per_s;
};

struct receiver {
	const struct ship_config *cfg;
	SSL_CTX *tls;
	struct edge_slot *slots;
	size_t nslots;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint32_t nconns;
	uint64_t refused;
};

struct pending {
	uint64_t first, end;
};

struct recv_conn {
	struct receiver *r;
	struct ship_conn conn;
	struct edge_slot *slot;
	int efd; /* eventfd: a durable callback has run */
	bool superseded;

	pthread_mutex_t mu; /* guards the ring and the fields below */
	pthread_cond_t cv;
	struct pending *ring;
	size_t ring_head, ring_n;
	uint64_t durable_next;
	int failed; /* a durable callback reported this error */

	uint64_t hello_start; /* the HELLO's start offset: where a new
			       * canonical log must begin */
	uint64_t expect; /* offset the canonical log takes next */
	uint64_t hb_sent_ns; /* last HEARTBEAT queued */
	uint64_t acked;  /* last ACK sent */
	ZSTD_DCtx *dctx;
	uint8_t *raw;
	struct iovec *iov;
	uint64_t *times; /* each record's original time, for the append */
	char edge[SHIP_NAME_MAX + 1];
};

static char *slot_dir(const struct receiver *r, const char *edge,
		      const char *leaf)
{
	char *p = malloc(SHIP_PATH_MAX + 128);

	if (p)
		snprintf(p, SHIP_PATH_MAX + 128, "%s/%s%s%s", r->cfg->data_dir,
			 edge, leaf ? "/" : "", leaf ? leaf : "");
	return p;
}

static void send_error(struct recv_conn *rc, uint16_t code, const char *fmt,
		       ...) __attribute__((format(printf, 3, 4)));
static void send_error(struct recv_conn *rc, uint16_t code, const char *fmt,
		       ...)
{
	uint8_t body[4 + SHIP_REASON_MAX];
	char msg[SHIP_REASON_MAX];
	uint64_t end = alog_mono_ns() + 1000000000ull;
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ship_warn("edge %s from %s: %s: %s", rc->edge[0] ? rc->edge : "?",
		  rc->conn.peer, ship_err_name(code), msg);
	n = ship_error_encode(body, sizeof(body), code, msg);
	if (ship_conn_send(&rc->conn, SHIP_ERROR, body, (uint32_t)n) < 0)
		return;
	/* Best effort, at most a second: the peer may be gone. */
	while (ship_conn_flush(&rc->conn) == -EAGAIN && alog_mono_ns() < end) {
		struct pollfd pfd = { .fd = rc->conn.fd, .events = POLLOUT };

		poll(&pfd, 1, 100);
	}
}

/* The log's commit thread: records up to the next pending end are durable
 * (status 0) or the log has failed. */
static void recv_durable(void *arg, int status, uint64_t first_offset)
{
	struct recv_conn *rc = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&rc->mu);
	if (rc->ring_n > 0) {
		struct pending *p = &rc->ring[rc->ring_head];

		/* Callbacks arrive in offset order; this is the oldest. */
		if (p->first != first_offset && status == 0)
			status = -EILSEQ;
		if (status == 0 && p->end > rc->durable_next)
			rc->durable_next = p->end;
		rc->ring_head = (rc->ring_head + 1) % RECV_RING_MAX;
		rc->ring_n--;
	}
	if (status < 0 && !rc->failed)
		rc->failed = status;
	/* Wake the connection while still holding the mutex: once it is
	 * released, drain_appends() may see an empty ring and free rc. */
	if (write(rc->efd, &one, sizeof(one)) < 0) {
		/* EAGAIN only at a counter of 2^64 - 2: cannot happen. */
	}
	pthread_cond_broadcast(&rc->cv);
	pthread_mutex_unlock(&rc->mu);
}

/* Wait until every append of this connection has had its callback. */
static void drain_appends(struct recv_conn *rc)
{
	pthread_mutex_lock(&rc->mu);
	while (rc->ring_n > 0)
		pthread_cond_wait(&rc->cv, &rc->mu);
	pthread_mutex_unlock(&rc->mu);
}

/* Fail-stop: a canonical log write or fdatasync failed. */
static void storage_failed(struct recv_conn *rc, int err)
{
	ship_error("edge %s: canonical log failed: %s; the receiver stops "
		   "(fail-stop: nothing after the last ACK is acknowledged; "
		   "restart runs recovery)",
		   rc->edge, alog_strerror(err));
	send_error(rc, SHIP_ERR_STORAGE_FAILED, "canonical log failed: %s",
		   alog_strerror(err));
	_exit(SHIP_EXIT_STORAGE);
}

static int send_ack_if_due(struct recv_conn *rc)
{
	uint8_t body[SHIP_ACK_BYTES];
	uint64_t next;
	int failed;

	pthread_mutex_lock(&rc->mu);
	next = rc->durable_next;
	failed = rc->failed;
	pthread_mutex_unlock(&rc->mu);
	if (failed)
		storage_failed(rc, failed);
	if (next <= rc->acked)
		return 0;
	ship_ack_encode(body, sizeof(body), next, alog_now_ms());
	if (ship_conn_send(&rc->conn, SHIP_ACK, body, sizeof(body)) < 0)
		return 0; /* buffer full: the next round sends it */
	rc->acked = next;
	pthread_mutex_lock(&rc->slot->mu);
	rc->slot->durable_next = next;
	rc->slot->last_ack_ms = alog_now_ms();
	pthread_mutex_unlock(&rc->slot->mu);
	return 0;
}

/* SOURCE binds the canonical log to the edge log's identity. */
static int source_check(struct recv_conn *rc, const uint8_t identity[16])
{
	char *dir = slot_dir(rc->r, rc->edge, NULL);
	char path[SHIP_PATH_MAX + 160];
	uint8_t b[SOURCE_BYTES + 1];
	ssize_t n;
	int fd, rc2 = 0;

	if (!dir)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/SOURCE", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = pread(fd, b, sizeof(b), 0);
		close(fd);
		if (n != SOURCE_BYTES || memcmp(b, "ASHPSRC\0", 8) != 0 ||
		    alog_get_u64(b + 32) != XXH3_64bits(b, 32)) {
			ship_error("edge %s: %s is damaged", rc->edge, path);
			rc2 = -EBADMSG;
		} else if (memcmp(b + 8, identity, 16) != 0) {
			rc2 = -EEXIST;
		}
		goto out;
	}
	if (errno != ENOENT) {
		rc2 = -errno;
		goto out;
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		rc2 = -errno;
		goto out;
	}
	(void)alog_dir_sync(rc->r->cfg->data_dir);
	memset(b, 0, sizeof(b));
	memcpy(b, "ASHPSRC\0", 8);
	memcpy(b + 8, identity, 16);
	alog_put_u64(b + 24, alog_now_ms());
	alog_put_u64(b + 32, XXH3_64bits(b, 32));
	rc2 = alog_file_replace(dir, "SOURCE", b, SOURCE_BYTES);
out:
	free(dir);
	return rc2;
}

static void log_options(const struct receiver *r, struct alog_log_options *o)
{
	alog_log_options_init(o);
	o->record_bytes_max = r->cfg->record_bytes_max;
	o->segment_bytes_max = r->cfg->segment_bytes_max;
	o->disk_budget_bytes = r->cfg->disk_budget_bytes;
	o->batch_bytes_max = 16u << 20;
	o->commits_in_flight = r->cfg->commits_in_flight;
	if (o->segment_bytes_max < 64 + 32 + (uint64_t)o->record_bytes_max)
		o->segment_bytes_max = 64 + 32 + (uint64_t)o->record_bytes_max;
}

/* Open the canonical log if it exists (create: with first_offset). */
static int open_log(struct recv_conn *rc, bool create, uint64_t first_offset)
{
	struct alog_log_options o;
	struct alog_log *log;
	char *dir;
	int err = 0;

	if (rc->slot->log)
		return 0;
	dir = slot_dir(rc->r, rc->edge, "log");
	if (!dir)
		return -ENOMEM;
	log_options(rc->r, &o);
	o.create = create;
	o.first_offset = first_offset;
	if (!create) {
		struct stat st;

		if (stat(dir, &st) < 0) {
			err = errno == ENOENT ? 0 : -errno;
			free(dir);
			return err;
		}
	}
	log = alog_log_open(dir, &o, &err);
	/* Under mu: the metrics thread reads it. */
	pthread_mutex_lock(&rc->slot->mu);
	rc->slot->log = log;
	pthread_mutex_unlock(&rc->slot->mu);
	if (log) {
		const struct alog_recovery_report *rep =
			alog_log_recovery(rc->slot->log);

		if (rep->bytes_dropped)
			ship_warn("edge %s: recovery cut %" PRIu64
				  " torn bytes from the canonical log",
				  rc->edge, rep->bytes_dropped);
		err = 0;
	} else {
		ship_error("edge %s: opening canonical log %s: %s", rc->edge,
			   dir, alog_strerror(err));
	}
	free(dir);
	return err;
}

/* Claim the edge's slot, taking over from a stale connection. */
static int claim_slot(struct recv_conn *rc)
{
	struct edge_slot *s = NULL;
	uint64_t deadline = alog_mono_ns() + RECV_TAKEOVER_MS * 1000000ull;

	for (size_t i = 0; i < rc->r->nslots; i++)
		if (strcmp(rc->r->slots[i].name, rc->edge) == 0)
			s = &rc->r->slots[i];
	if (!s)
		return -EPERM;
	pthread_mutex_lock(&s->mu);
	while (s->owner) {
		struct timespec ts;

		if (!__atomic_load_n(&s->owner->superseded, __ATOMIC_ACQUIRE)) {
			ship_info("edge %s: new connection from %s replaces "
				  "the one from %s",
				  rc->edge, rc->conn.peer, s->owner->conn.peer);
			__atomic_store_n(&s->owner->superseded, true,
					 __ATOMIC_RELEASE);
			shutdown(s->owner->conn.fd, SHUT_RDWR);
		}
		if (alog_mono_ns() >= deadline) {
			pthread_mutex_unlock(&s->mu);
			return -EBUSY;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&s->cv, &s->mu, &ts);
	}
	s->owner = rc;
	s->connected = true;
	s->connects++;
	pthread_mutex_unlock(&s->mu);
	rc->slot = s;
	return 0;
}

static void release_slot(struct recv_conn *rc)
{
	struct edge_slot *s = rc->slot;

	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->owner = NULL;
	s->connected = false;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	rc->slot = NULL;
}

/* Read one frame within the deadline. 1, or <0. */
static int read_frame_until(struct recv_conn *rc, uint64_t deadline_ns,
			    uint32_t body_max, struct ship_frame *f,
			    const char **why)
{
	for (;;) {
		struct pollfd pfd = { .fd = rc->conn.fd };
		uint64_t now = alog_mono_ns();
		int n = ship_conn_next_frame(&rc->conn, body_max, f, why);

		if (n != 0)
			return n;
		if (now >= deadline_ns || ship_stop) {
			*why = "handshake timed out";
			return -ETIMEDOUT;
		}
		pfd.events = ship_conn_events(&rc->conn);
		if (!ship_conn_has_buffered(&rc->conn))
			poll(&pfd, 1, (int)((deadline_ns - now) / 1000000 + 1));
		n = ship_conn_fill(&rc->conn);
		if (n < 0) {
			*why = "connection closed during handshake";
			return n;
		}
	}
}

/* Append a frame's new records, each with its own original time, as
 * one unit. 0 or -errno. */
/* Append n records (rc->iov, rc->times) starting at offset first, in as
 * many appends as the canonical log's limits need: a frame may carry more
 * than one append takes (4 MiB raw against a segment of 1 MiB, the
 * smallest allowed), which once failed the whole log ("record too large",
 * fail-stop). */
static int append_run(struct recv_conn *rc, unsigned n, uint64_t first)
{
	struct alog_log_options o;
	uint64_t room;
	unsigned done = 0;
	int err;

	log_options(rc->r, &o);
	room = o.segment_bytes_max - 64 < o.batch_bytes_max ?
		       o.segment_bytes_max - 64 :
		       o.batch_bytes_max;
	while (done < n) {
		struct alog_append_opts opts = {
			.expect_offset = first + done,
			.times_ms = rc->times + done
		};
		uint64_t bytes = 0;
		unsigned k = 0;

		while (done + k < n && k < o.batch_records_max &&
		       bytes + 32 + rc->iov[done + k].iov_len <= room) {
			bytes += 32 + rc->iov[done + k].iov_len;
			k++;
		}
		if (k == 0)
			k = 1; /* over the limits alone: the log says why */
		pthread_mutex_lock(&rc->mu);
		while (rc->ring_n == RECV_RING_MAX)
			pthread_cond_wait(&rc->cv, &rc->mu);
		rc->ring[(rc->ring_head + rc->ring_n) % RECV_RING_MAX] =
			(struct pending){ first + done, first + done + k };
		rc->ring_n++;
		pthread_mutex_unlock(&rc->mu);
		err = alog_log_append(rc->slot->log, rc->iov + done, k, &opts,
				      recv_durable, rc);
		if (err < 0) {
			/* No callback will come for it: take it back (the
			 * newest). */
			pthread_mutex_lock(&rc->mu);
			rc->ring_n--;
			pthread_mutex_unlock(&rc->mu);
			return err;
		}
		done += k;
		rc->expect = first + done;
	}
	return 0;
}

/* Process one DATA frame. 0, or -errno after an ERROR was sent. */
static int handle_data(struct recv_conn *rc, const struct ship_frame *f)
{
	const struct ship_config *cfg = rc->r->cfg;
	struct ship_data d;
	struct ship_record rec;
	const char *why = NULL;
	size_t pos = 0;
	unsigned n = 0;
	uint64_t run_first = 0, skipped = 0;
	int err;

	if (ship_data_decode(f->body, f->body_len, cfg->records_max,
			     SHIP_RAW_BYTES_MAX, &d, &why) < 0 ||
	    ship_data_unpack(&d, rc->dctx, rc->raw, SHIP_RAW_BYTES_MAX,
			     cfg->record_bytes_max, &why) < 0) {
		send_error(rc, SHIP_ERR_PROTOCOL, "bad DATA frame: %s", why);
		return -EPROTO;
	}
	if (!rc->slot->log) {
		/* First records ever for this edge: the canonical log starts
		 * at the edge log's start, which the HELLO named (a sender
		 * that starts anywhere else would leave a hole below). */
		if (d.first_offset != rc->hello_start) {
			send_error(rc, SHIP_ERR_PROTOCOL,
				   "first DATA at %" PRIu64
				   " but the edge log starts at %" PRIu64,
				   d.first_offset, rc->hello_start);
			return -EPROTO;
		}
		err = open_log(rc, true, d.first_offset);
		if (err < 0) {
			send_error(rc,
				   err == -EDQUOT || err == -ENOSPC ?
					   SHIP_ERR_STORAGE_FULL :
					   SHIP_ERR_STORAGE_FAILED,
				   "creating the canonical log: %s",
				   alog_strerror(err));
			return err;
		}
		rc->expect = d.first_offset;
		pthread_mutex_lock(&rc->mu);
		rc->durable_next = d.first_offset;
		pthread_mutex_unlock(&rc->mu);
		rc->acked = d.first_offset;
	}
	if (d.first_offset > rc->expect) {
		send_error(rc, SHIP_ERR_PROTOCOL,
			   "hole: DATA starts at %" PRIu64
			   " but the canonical log needs %" PRIu64,
			   d.first_offset, rc->expect);
		return -EPROTO;
	}
	while (ship_block_next(rc->raw, d.raw_len, &pos, &rec)) {
		if (rec.offset < rc->expect) {
			skipped++; /* already held: a resend */
			continue;
		}
		if (n == 0)
			run_first = rec.offset;
		rc->times[n] = rec.time_ms;
		rc->iov[n].iov_base = (void *)rec.data;
		rc->iov[n].iov_len = rec.len;
		n++;
	}
	if (n > 0) {
		err = append_run(rc, n, run_first);
		if (err < 0)
			goto out_append_failed;
	}
	pthread_mutex_lock(&rc->slot->mu);
	rc->slot->records += d.count - skipped;
	rc->slot->dup_records += skipped;
	rc->slot->raw_bytes += d.raw_len;
	rc->slot->wire_bytes += SHIP_FRAME_HEADER_BYTES + f->body_len;
	pthread_mutex_unlock(&rc->slot->mu);
	return 0;

out_append_failed:
	/* Let what was accepted become durable and acknowledged first. */
	drain_appends(rc);
	send_ack_if_due(rc);
	(void)ship_conn_flush(&rc->conn);
	if (err == -EDQUOT || err == -ENOSPC) {
		pthread_mutex_lock(&rc->slot->mu);
		rc->slot->storage_full++;
		pthread_mutex_unlock(&rc->slot->mu);
		send_error(rc, SHIP_ERR_STORAGE_FULL,
			   "canonical log for %s: %s at offset %" PRIu64
			   "; everything below %" PRIu64 " is durable",
			   rc->edge, alog_strerror(err), rc->expect, rc->acked);
		return err;
	}
	if (err == -ESPIPE) {
		send_error(rc, SHIP_ERR_PROTOCOL,
			   "canonical log does not continue at %" PRIu64,
			   rc->expect);
		return err;
	}
	storage_failed(rc, err);
	return err;
}

/* After the handshake: stream until the connection ends. */
static void recv_stream(struct recv_conn *rc, uint64_t hb_ns)
{
	const struct ship_config *cfg = rc->r->cfg;
	uint32_t body_max = cfg->frame_bytes_max;

	rc->hb_sent_ns = alog_mono_ns(); /* the WELCOME just went out */
	for (;;) {
		struct pollfd pfd[2];
		struct ship_frame f;
		const char *why = NULL;
		uint64_t now = alog_mono_ns();
		int n, fr;

		if (ship_stop) {
			drain_appends(rc);
			send_ack_if_due(rc);
			send_error(rc, SHIP_ERR_SHUTDOWN, "receiver stopping");
			return;
		}
		if (__atomic_load_n(&rc->superseded, __ATOMIC_ACQUIRE)) {
			ship_info("edge %s: connection from %s replaced",
				  rc->edge, rc->conn.peer);
			return;
		}
		send_ack_if_due(rc);
		/* Every interval, busy or not (docs/ship-protocol.md). */
		if (now - rc->hb_sent_ns >= hb_ns) {
			uint8_t body[SHIP_HEARTBEAT_BYTES];

			ship_heartbeat_encode(body, sizeof(body), rc->acked,
					      alog_now_ms());
			if (ship_conn_send(&rc->conn, SHIP_HEARTBEAT, body,
					   sizeof(body)) == 0)
				rc->hb_sent_ns = now;
		}
		n = ship_conn_flush(&rc->conn);
		if (n < 0 && n != -EAGAIN) {
			ship_warn("edge %s: write to %s failed", rc->edge,
				  rc->conn.peer);
			return;
		}
		if (ship_conn_silent(&rc->conn,
				     (uint64_t)cfg->timeout_ms * 1000000)) {
			send_error(rc, SHIP_ERR_TIMEOUT, "no frame for %u ms",
				   cfg->timeout_ms);
			return;
		}
		pfd[0].fd = rc->conn.fd;
		pfd[0].events = ship_conn_events(&rc->conn);
		pfd[0].revents = 0;
		pfd[1].fd = rc->efd;
		pfd[1].events = POLLIN;
		pfd[1].revents = 0;
		n = poll(pfd, 2,
			 ship_conn_has_buffered(&rc->conn) ?
				 0 :
				 (int)(hb_ns / 2000000) + 1);
		rc->conn.polled_ns = alog_mono_ns();
		if (n < 0 && errno != EINTR)
			return;
		if (pfd[1].revents & POLLIN) {
			uint64_t v;

			if (read(rc->efd, &v, sizeof(v)) < 0) {
				/* nothing to do: EAGAIN */
			}
		}
		if (!(pfd[0].revents & (POLLIN | POLLERR | POLLHUP)) &&
		    !ship_conn_has_buffered(&rc->conn) &&
		    !(rc->conn.tls_want_write && (pfd[0].revents & POLLOUT)))
			continue;
		fr = ship_conn_fill(&rc->conn);
		while ((n = ship_conn_next_frame(&rc->conn, body_max, &f,
						 &why)) == 1) {
			if (f.type == SHIP_DATA) {
				if (handle_data(rc, &f) < 0)
					return;
				/* Acks as soon as they are due. */
				send_ack_if_due(rc);
				(void)ship_conn_flush(&rc->conn);
			} else if (f.type == SHIP_HEARTBEAT) {
				uint64_t head, t;

				if (ship_heartbeat_decode(f.body, f.body_len,
							  &head, &t,
							  &why) < 0) {
					send_error(rc, SHIP_ERR_PROTOCOL,
						   "bad HEARTBEAT: %s", why);
					return;
				}
				pthread_mutex_lock(&rc->slot->mu);
				rc->slot->edge_head = head;
				pthread_mutex_unlock(&rc->slot->mu);
			} else if (f.type == SHIP_ERROR) {
				struct ship_error e;

				if (ship_error_decode(f.body, f.body_len, &e,
						      &why) == 0)
					ship_warn("edge %s: sender says %s: %s",
						  rc->edge,
						  ship_err_name(e.code),
						  e.reason);
				return;
			} else {
				send_error(rc, SHIP_ERR_PROTOCOL,
					   "unexpected %s frame",
					   ship_type_name(f.type));
				return;
			}
		}
		if (n < 0) {
			send_error(rc, SHIP_ERR_PROTOCOL, "bad frame: %s", why);
			return;
		}
		if (fr < 0) {
			if (!__atomic_load_n(&rc->superseded, __ATOMIC_ACQUIRE))
				ship_info("edge %s: %s closed the connection",
					  rc->edge, rc->conn.peer);
			return;
		}
	}
}

/* Handshake; on success the slot is claimed and streaming begins. */
static void recv_session(struct recv_conn *rc)
{
	struct receiver *r = rc->r;
	const struct ship_config *cfg = r->cfg;
	uint64_t deadline =
		alog_mono_ns() + (uint64_t)cfg->handshake_timeout_ms * 1000000;
	struct ship_hello h;
	struct ship_welcome w = { 0 };
	struct ship_frame f;
	uint8_t body[SHIP_WELCOME_BYTES];
	char cn[256], why[512];
	const char *pwhy = NULL;
	int err;

	if (rc->conn.ssl) {
		err = ship_conn_handshake(&rc->conn, deadline, why,
					  sizeof(why));
		if (err < 0) {
			ship_warn("refused %s: %s", rc->conn.peer, why);
			return;
		}
		if (ship_tls_peer_cn(rc->conn.ssl, cn, sizeof(cn)) < 0) {
			send_error(rc, SHIP_ERR_AUTH,
				   "client certificate has no usable CN");
			return;
		}
	}
	err = read_frame_until(rc, deadline, SHIP_HANDSHAKE_BYTES_MAX, &f,
			       &pwhy);
	if (err < 0) {
		if (err == -EPROTO)
			send_error(rc, SHIP_ERR_PROTOCOL, "bad frame: %s",
				   pwhy);
		else
			ship_warn("refused %s: %s", rc->conn.peer, pwhy);
		return;
	}
	if (f.type != SHIP_HELLO ||
	    ship_hello_decode(f.body, f.body_len, &h, &pwhy) < 0) {
		send_error(rc, SHIP_ERR_PROTOCOL, "expected HELLO: %s",
			   f.type == SHIP_HELLO ? pwhy : "another frame");
		return;
	}
	snprintf(rc->edge, sizeof(rc->edge), "%s", h.name);
	rc->hello_start = h.start_offset;
	if (!ship_config_edge_allowed(cfg, h.name)) {
		send_error(rc, SHIP_ERR_AUTH, "unknown edge '%s'", h.name);
		return;
	}
	if (rc->conn.ssl && strcmp(cn, h.name) != 0) {
		send_error(rc, SHIP_ERR_AUTH,
			   "edge '%s' presented a certificate for '%s'", h.name,
			   cn);
		return;
	}
	if (h.version_max < SHIP_VERSION_MIN ||
	    h.version_min > SHIP_VERSION_MAX) {
		send_error(rc, SHIP_ERR_VERSION,
			   "sender speaks %u..%u, receiver %u..%u",
			   h.version_min, h.version_max, SHIP_VERSION_MIN,
			   SHIP_VERSION_MAX);
		return;
	}
	err = claim_slot(rc);
	if (err < 0) {
		send_error(rc, SHIP_ERR_BUSY,
			   "edge %s is still connected elsewhere", h.name);
		return;
	}
	err = source_check(rc, h.identity);
	if (err == -EEXIST) {
		send_error(rc, SHIP_ERR_IDENTITY,
			   "edge %s's log identity changed: the canonical log "
			   "belongs to another edge log",
			   h.name);
		goto out_release;
	}
	if (err < 0) {
		send_error(rc, SHIP_ERR_STORAGE_FAILED, "SOURCE: %s",
			   strerror(-err));
		goto out_release;
	}
	err = open_log(rc, false, 0);
	if (err < 0) {
		send_error(rc, SHIP_ERR_STORAGE_FAILED,
			   "opening the canonical log: %s", alog_strerror(err));
		goto out_release;
	}
	if (rc->slot->log) {
		struct alog_log_stats st;

		err = alog_log_sync(rc->slot->log);
		if (err < 0)
			storage_failed(rc, err);
		alog_log_stats(rc->slot->log, &st);
		w.has_log = true;
		w.next_offset = st.durable_offset;
		rc->expect = st.next_offset;
		if (st.next_offset != st.durable_offset)
			storage_failed(rc, -EIO);
		rc->durable_next = rc->acked = st.durable_offset;
	}
	w.version = h.version_max < SHIP_VERSION_MAX ? h.version_max :
						       SHIP_VERSION_MAX;
	w.window_bytes = cfg->window_bytes;
	w.frame_bytes_max = cfg->frame_bytes_max;
	w.records_max = cfg->records_max;
	w.heartbeat_ms = cfg->heartbeat_ms;
	ship_welcome_encode(body, sizeof(body), &w);
	if (ship_conn_send(&rc->conn, SHIP_WELCOME, body, sizeof(body)) < 0)
		goto out_release;
	pthread_mutex_lock(&rc->slot->mu);
	rc->slot->has_log = w.has_log;
	rc->slot->durable_next = w.next_offset;
	rc->slot->edge_head = h.head_offset;
	pthread_mutex_unlock(&rc->slot->mu);
	ship_info("edge %s connected from %s%s: holds %s%" PRIu64
		  ", edge log %" PRIu64 "..%" PRIu64,
		  h.name, rc->conn.peer,
		  rc->conn.ssl ? " (TLS, cert CN ok)" : "",
		  w.has_log ? "up to " : "nothing, ", w.next_offset,
		  h.start_offset, h.head_offset);
	recv_stream(rc, (uint64_t)cfg->heartbeat_ms * 1000000);
	drain_appends(rc);
	send_ack_if_due(rc);
	(void)ship_conn_flush(&rc->conn);
out_release:
	release_slot(rc);
}

/* Free what recv_conn_start allocated for rc (any part may be missing). */
static void recv_conn_free(struct recv_conn *rc)
{
	if (rc->efd >= 0)
		close(rc->efd);
	ZSTD_freeDCtx(rc->dctx);
	free(rc->raw);
	free(rc->iov);
	free(rc->times);
	free(rc->ring);
	pthread_mutex_destroy(&rc->mu);
	pthread_cond_destroy(&rc->cv);
	free(rc);
}

static void *recv_conn_main(void *arg)
{
	struct recv_conn *rc = arg;
	struct receiver *r = rc->r;

	recv_session(rc);
	ship_conn_close(&rc->conn);
	recv_conn_free(rc);
	pthread_mutex_lock(&r->mu);
	r->nconns--;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static void recv_accept(struct receiver *r, int fd)
{
	const struct ship_config *cfg = r->cfg;
	struct recv_conn *rc;
	pthread_attr_t attr;
	pthread_t tid;
	SSL *ssl = NULL;
	char why[256], peer[80];
	int err;

	ship_fd_peer(fd, peer, sizeof(peer));
	pthread_mutex_lock(&r->mu);
	if (r->nconns >= cfg->connections_max) {
		r->refused++;
		pthread_mutex_unlock(&r->mu);
		ship_warn("refused %s: connections_max (%u) reached", peer,
			  cfg->connections_max);
		close(fd);
		return;
	}
	pthread_mutex_unlock(&r->mu);
	if (cfg->transport == SHIP_PLAIN_LOOPBACK &&
	    !ship_fd_is_loopback(fd, true)) {
		ship_warn("refused %s: not loopback and transport is "
			  "plain-loopback-only",
			  peer);
		close(fd);
		return;
	}
	rc = calloc(1, sizeof(*rc));
	if (!rc)
		goto out_close;
	rc->r = r;
	rc->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	rc->dctx = ZSTD_createDCtx();
	rc->raw = malloc(SHIP_RAW_BYTES_MAX);
	rc->iov = malloc(sizeof(*rc->iov) * cfg->records_max);
	rc->times = malloc(sizeof(*rc->times) * cfg->records_max);
	rc->ring = malloc(sizeof(*rc->ring) * RECV_RING_MAX);
	pthread_mutex_init(&rc->mu, NULL);
	pthread_cond_init(&rc->cv, NULL);
	if (cfg->transport == SHIP_TLS) {
		ssl = ship_tls_server(r->tls, fd, why, sizeof(why));
		if (!ssl)
			goto out_free;
	}
	if (rc->efd < 0 || !rc->dctx || !rc->raw || !rc->iov || !rc->times ||
	    !rc->ring ||
	    ship_conn_init(&rc->conn, fd, ssl,
			   SHIP_FRAME_HEADER_BYTES + cfg->frame_bytes_max,
			   256 * 1024) < 0)
		goto out_free;
	pthread_mutex_lock(&r->mu);
	r->nconns++;
	pthread_mutex_unlock(&r->mu);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	err = pthread_create(&tid, &attr, recv_conn_main, rc);
	pthread_attr_destroy(&attr);
	if (err == 0)
		return;
	pthread_mutex_lock(&r->mu);
	r->nconns--;
	pthread_mutex_unlock(&r->mu);
	ship_conn_close(&rc->conn); /* closes fd and ssl */
	fd = -1;
	ssl = NULL;
out_free:
	ship_warn("refused %s: out of resources", peer);
	SSL_free(ssl);
	if (rc)
		recv_conn_free(rc);
out_close:
	if (fd >= 0)
		close(fd);
}

/* Indexes into slot_snap.v, in the order the families are printed. */
enum {
	SN_STATE,
	SN_ACKED,
	SN_HEAD,
	SN_LAG,
	SN_LAG_BYTES,
	SN_RPS,
	SN_WPS,
	SN_LAST_ACK_MS,
	SN_RECORDS,
	SN_DUPS,
	SN_RAW,
	SN_WIRE,
	SN_STORAGE_FULL,
	SN_CONNECTS,
	SN_LOG_SEGMENTS, /* first of the log_* families */
	SN_LOG_DISK,
	SN_LOG_BYTES,
	SN_LOG_COMMITS,
	SN_LOG_FSYNCS,
	SN_LOG_FSYNC_NS,
	SN_LOG_INFLIGHT_MAX,
	SN_COUNT
};

/* One edge's numbers, read under its lock, printed after. */
struct slot_snap {
	const char *name;
	uint64_t v[SN_COUNT];
	bool has_log; /* the log_* families: nothing until the log exists */
};

static const struct {
	const char *name, *type;
	enum { V_U64, V_MS_AS_S, V_NS_AS_S } form;
} recv_families[SN_COUNT] = {
	[SN_STATE] = { "alog_ship_connection_state", "gauge", V_U64 },
	[SN_ACKED] = { "alog_ship_acked_offset", "gauge", V_U64 },
	[SN_HEAD] = { "alog_ship_head_offset", "gauge", V_U64 },
	[SN_LAG] = { "alog_ship_lag_records", "gauge", V_U64 },
	[SN_LAG_BYTES] = { "alog_ship_lag_bytes", "gauge", V_U64 },
	[SN_RPS] = { "alog_ship_records_per_second", "gauge", V_U64 },
	[SN_WPS] = { "alog_ship_wire_bytes_per_second", "gauge", V_U64 },
	[SN_LAST_ACK_MS] = { "alog_ship_last_ack_time_seconds", "gauge",
			     V_MS_AS_S },
	[SN_RECORDS] = { "alog_ship_records_received_total", "counter",
			 V_U64 },
	[SN_DUPS] = { "alog_ship_duplicate_records_total", "counter", V_U64 },
	[SN_RAW] = { "alog_ship_raw_bytes_received_total", "counter", V_U64 },
	[SN_WIRE] = { "alog_ship_wire_bytes_received_total", "counter",
		      V_U64 },
	[SN_STORAGE_FULL] = { "alog_ship_storage_full_total", "counter",
			      V_U64 },
	[SN_CONNECTS] = { "alog_ship_connects_total", "counter", V_U64 },
	[SN_LOG_SEGMENTS] = { "alog_ship_log_segments", "gauge", V_U64 },
	[SN_LOG_DISK] = { "alog_ship_log_disk_bytes", "gauge", V_U64 },
	[SN_LOG_BYTES] = { "alog_ship_log_bytes_written_total", "counter",
			   V_U64 },
	[SN_LOG_COMMITS] = { "alog_ship_log_commits_total", "counter",
			     V_U64 },
	[SN_LOG_FSYNCS] = { "alog_ship_log_fsyncs_total", "counter", V_U64 },
	[SN_LOG_FSYNC_NS] = { "alog_ship_log_fsync_seconds_sum", "counter",
			      V_NS_AS_S },
	[SN_LOG_INFLIGHT_MAX] = { "alog_ship_log_commits_in_flight_max",
				  "gauge", V_U64 },
};

static void slot_snapshot(struct edge_slot *s, struct slot_snap *o)
{
	uint64_t now = alog_mono_ns(), lag;
	struct alog_log_stats st;
	struct alog_log *log;

	memset(o, 0, sizeof(*o));
	o->name = s->name;
	pthread_mutex_lock(&s->mu);
	lag = s->edge_head > s->durable_next ? s->edge_head - s->durable_next :
					       0;
	if (now - s->rate_ns >= 1000000000ull) {
		uint64_t dt = now - s->rate_ns;

		if (s->rate_ns) { /* double: scrapes may be hours apart */
			s->records_per_s = (uint64_t)(
				(double)(s->records - s->rate_records) * 1e9 /
				(double)dt);
			s->wire_per_s =
				(uint64_t)((double)(s->wire_bytes -
						    s->rate_wire) *
					   1e9 / (double)dt);
		}
		s->rate_ns = now;
		s->rate_records = s->records;
		s->rate_wire = s->wire_bytes;
	}
	o->v[SN_STATE] = s->connected ? 1 : 0;
	o->v[SN_ACKED] = s->durable_next;
	o->v[SN_HEAD] = s->edge_head;
	o->v[SN_LAG] = lag;
	o->v[SN_LAG_BYTES] = lag * (s->records ? s->raw_bytes / s->records : 0);
	o->v[SN_RPS] = s->records_per_s;
	o->v[SN_WPS] = s->wire_per_s;
	o->v[SN_LAST_ACK_MS] = s->last_ack_ms;
	o->v[SN_RECORDS] = s->records;
	o->v[SN_DUPS] = s->dup_records;
	o->v[SN_RAW] = s->raw_bytes;
	o->v[SN_WIRE] = s->wire_bytes;
	o->v[SN_STORAGE_FULL] = s->storage_full;
	o->v[SN_CONNECTS] = s->connects;
	log = s->log;
	pthread_mutex_unlock(&s->mu);
	/* The canonical log's own counters: how the disk keeps up (a commit
	 * is one write + fdatasync; the fsync time is submission to
	 * completion). */
	if (!log)
		return;
	alog_log_stats(log, &st);
	o->has_log = true;
	o->v[SN_LOG_SEGMENTS] = st.segments;
	o->v[SN_LOG_DISK] = st.disk_bytes;
	o->v[SN_LOG_BYTES] = st.bytes;
	o->v[SN_LOG_COMMITS] = st.commits;
	o->v[SN_LOG_FSYNCS] = st.fsyncs;
	o->v[SN_LOG_FSYNC_NS] = st.commit_ns_sum;
	o->v[SN_LOG_INFLIGHT_MAX] = st.inflight_max;
}

/*
 * The text format wants each family's samples together, after its one
 * TYPE line: so every edge is read first, then printed family by family.
 * A body that does not fit ends after the last whole line that did.
 */
static size_t recv_metrics(void *arg, char *buf, size_t cap)
{
	struct receiver *r = arg;
	struct slot_snap *snap;
	size_t len = 0, done;
	uint32_t nconns;
	int n;

	pthread_mutex_lock(&r->mu);
	nconns = r->nconns;
	pthread_mutex_unlock(&r->mu);
	n = snprintf(buf, cap,
		     "# TYPE alog_ship_connections gauge\n"
		     "alog_ship_connections{role=\"receive\"} %u\n",
		     nconns);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	len = (size_t)n;
	snap = calloc(r->nslots ? r->nslots : 1, sizeof(*snap));
	if (!snap)
		return len;
	for (size_t i = 0; i < r->nslots; i++)
		slot_snapshot(&r->slots[i], &snap[i]);
	for (size_t f = 0; f < SN_COUNT; f++) {
		done = len;
		n = snprintf(buf + len, cap - len, "# TYPE %s %s\n",
			     recv_families[f].name, recv_families[f].type);
		if (n < 0 || (size_t)n >= cap - len)
			break;
		len += (size_t)n;
		for (size_t i = 0; i < r->nslots; i++) {
			uint64_t v = snap[i].v[f];

			if (f >= SN_LOG_SEGMENTS && !snap[i].has_log)
				continue;
			if (recv_families[f].form == V_MS_AS_S)
				n = snprintf(buf + len, cap - len,
					     "%s{role=\"receive\",edge=\"%s\"} "
					     "%" PRIu64 ".%03" PRIu64 "\n",
					     recv_families[f].name,
					     snap[i].name, v / 1000, v % 1000);
			else if (recv_families[f].form == V_NS_AS_S)
				n = snprintf(buf + len, cap - len,
					     "%s{role=\"receive\",edge=\"%s\"} "
					     "%.6f\n",
					     recv_families[f].name,
					     snap[i].name, (double)v / 1e9);
			else
				n = snprintf(buf + len, cap - len,
					     "%s{role=\"receive\",edge=\"%s\"} "
					     "%" PRIu64 "\n",
					     recv_families[f].name,
					     snap[i].name, v);
			if (n < 0 || (size_t)n >= cap - len) {
				len = done; /* no family cut in half */
				goto out;
			}
			len += (size_t)n;
		}
	}
out:
	buf[len] = '\0';
	free(snap);
	return len;
}

int ship_recv_run(const struct ship_config *cfg)
{
	struct receiver r = { .cfg = cfg };
	struct ship_metrics *metrics = NULL;
	char why[512];
	int lfd = -1, status = SHIP_EXIT_OK, err;
	uint64_t deadline;

	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	if (mkdir(cfg->data_dir, 0755) < 0 && errno != EEXIST) {
		ship_error("data_dir %s: %s", cfg->data_dir, strerror(errno));
		return SHIP_EXIT_USAGE;
	}
	r.slots = calloc(cfg->nedges, sizeof(*r.slots));
	if (!r.slots)
		return SHIP_EXIT_FAILED;
	r.nslots = cfg->nedges;
	for (size_t i = 0; i < r.nslots; i++) {
		snprintf(r.slots[i].name, sizeof(r.slots[i].name), "%s",
			 cfg->edges[i]);
		pthread_mutex_init(&r.slots[i].mu, NULL);
		pthread_cond_init(&r.slots[i].cv, NULL);
	}
	if (cfg->transport == SHIP_TLS) {
		r.tls = ship_tls_ctx(cfg, true, why, sizeof(why));
		if (!r.tls) {
			ship_error("%s", why);
			status = SHIP_EXIT_USAGE;
			goto out_free;
		}
	}
	lfd = ship_listen(cfg->listen, cfg->transport == SHIP_PLAIN_LOOPBACK,
			  why, sizeof(why));
	if (lfd < 0) {
		ship_error("%s", why);
		status = SHIP_EXIT_USAGE;
		goto out_free;
	}
	if (cfg->metrics_listen[0]) {
		metrics = ship_metrics_start(cfg->metrics_listen, recv_metrics,
					     &r, &err);
		if (!metrics) {
			ship_error("metrics on %s: %s", cfg->metrics_listen,
				   strerror(-err));
			status = SHIP_EXIT_USAGE;
			goto out_free;
		}
	}
	ship_info("receiving on %s (%s) into %s for %zu edges", cfg->listen,
		  cfg->transport == SHIP_TLS ? "TLS 1.3, client certificates" :
					       "PLAIN, loopback only",
		  cfg->data_dir, cfg->nedges);
	while (!ship_stop) {
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };
		int fd;

		if (poll(&pfd, 1, 200) <= 0)
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		recv_accept(&r, fd);
	}
	close(lfd);
	lfd = -1;
	/* Connections see ship_stop, drain and ack; wait for them. */
	deadline = alog_mono_ns() + 10000000000ull;
	pthread_mutex_lock(&r.mu);
	while (r.nconns > 0 && alog_mono_ns() < deadline) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&r.cv, &r.mu, &ts);
	}
	if (r.nconns > 0) {
		pthread_mutex_unlock(&r.mu);
		ship_warn("%u connections still busy; exiting without closing "
			  "their logs (recovery will run on the next start)",
			  r.nconns);
		_exit(SHIP_EXIT_FAILED);
	}
	pthread_mutex_unlock(&r.mu);
	ship_info("receiver stopped");

out_free:
	ship_metrics_stop(metrics);
	if (lfd >= 0)
		close(lfd);
	for (size_t i = 0; i < r.nslots; i++) {
		alog_log_close(r.slots[i].log);
		pthread_mutex_destroy(&r.slots[i].mu);
		pthread_cond_destroy(&r.slots[i].cv);
	}
	free(r.slots);
	ship_tls_ctx_free(r.tls);
	return status;
}
