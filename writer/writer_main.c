/*
 * writer_main.c - alog-writer: migrate, check, run, status.
 *
 * `run` is a loop over the logs: read up to a batch of records from each
 * log's cursor, write them in one transaction with the log's offset
 * (writer_batch.c), repeat; when no log has anything, wait on the cursors'
 * inotify descriptors. The database, not this process, says where each log
 * resumes: after a start or any reconnect the cursors are reopened at the
 * offsets in consumer_offsets, so whatever happened to the last COMMIT the
 * next record written is the right one (docs/writer.md).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alog_common.h"
#include "writer.h"

#define BATCH_BYTES_MAX (32u << 20)
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define RESCAN_MS 10000
#define HOUSEKEEPING_MS (3600ull * 1000)
#define CHECKPOINT_MS 1000
#define PROGRESS_MS 30000
#define CONNECTIONS_MAX 8
#define GATE_WAIT_S 60

/*
 * A connection that commits prepared batches. The main thread prepares
 * batch k+1 (and looks up sessions on its own connection) while workers
 * commit batches k, k-1, ...: PostgreSQL's work for consecutive batches
 * overlaps, and consumer_offsets' compare-and-set keeps their commits in
 * log order (docs/writer.md, "Pipeline").
 */
struct worker {
	pthread_t thread;
	struct wr_db db;
	struct wr_prepared prep;
	size_t log;    /* index of the batch's log */
	bool busy;     /* holds a batch main has not collected yet */
	bool started;  /* the worker has taken it */
	bool done;     /* prep.rc is the outcome */
	uint64_t seq;  /* submission order */
	bool quit;
	pthread_cond_t cv;
};

struct wr_log {
	char name[WR_LOG_NAME_MAX + 1];
	char dir[PATH_MAX];
	struct alog_cursor *cur;
	uint64_t next;      /* the database's next_offset for this log */
	uint64_t read_next; /* where the next batch starts (batches in
			     * flight lie between next and read_next) */
	uint64_t careful_until; /* a batch up to here was refused for its
				 * data: write it piecewise */
	uint64_t checkpointed, checkpoint_ms;
};

static struct {
	struct wr_config cfg;
	struct wr_log logs[WR_LOGS_MAX];
	size_t nlogs;
	const char *logs_root;
	struct wr_db db;
	struct wr_engine *engine;
	struct wr_batch batch;
	struct worker workers[CONNECTIONS_MAX];
	unsigned nworkers;
	unsigned inflight;
	uint64_t seq;
	unsigned gate_wait_s;
	pthread_mutex_t mu;
	pthread_cond_t done_cv, gate_cv;
} W = { .mu = PTHREAD_MUTEX_INITIALIZER,
	.done_cv = PTHREAD_COND_INITIALIZER,
	.gate_cv = PTHREAD_COND_INITIALIZER };

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: alog-writer migrate --db CONNINFO\n"
		"       alog-writer check   --db CONNINFO\n"
		"       alog-writer run     --db CONNINFO (--log NAME=DIR ... | "
		"--logs-root DIR) [options]\n"
		"       alog-writer status  --db CONNINFO [--log NAME=DIR ...]\n"
		"\n"
		"run options:\n"
		"  --batch N             records per transaction (20000)\n"
		"  --retention-days N    days of events kept (90)\n"
		"  --partitions-ahead N  daily partitions made ahead (7)\n"
		"  --uap FILE            uap-core regexes.yaml\n"
		"  --ua-cache N          user-agent cache entries (65536)\n"
		"  --session-cache N     visitors kept in memory (1000000)\n"
		"  --connections N       transactions in flight, 1..8 (2)\n"
		"  --idle-exit           exit once every log is consumed\n"
		"CONNINFO defaults to $ALOG_WRITER_DB. See docs/writer.md.\n");
}

static bool name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > WR_LOG_NAME_MAX || s[0] == '.')
		return false;
	for (i = 0; i < n; i++)
		if (!(s[i] == '.' || s[i] == '_' || s[i] == '-' ||
		      (s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z')))
			return false;
	return true;
}

static struct wr_log *find_log(const char *name)
{
	size_t i;

	for (i = 0; i < W.nlogs; i++)
		if (!strcmp(W.logs[i].name, name))
			return &W.logs[i];
	return NULL;
}

static int add_log(const char *name, size_t nlen, const char *dir)
{
	struct wr_log *l;

	if (!name_ok(name, nlen)) {
		wr_log_error("log name '%.*s': 1..%d of [A-Za-z0-9._-], not "
			     "starting with '.'",
			     (int)nlen, name, WR_LOG_NAME_MAX);
		return -1;
	}
	if (strlen(dir) >= PATH_MAX) {
		wr_log_error("log %.*s: directory path too long", (int)nlen,
			     name);
		return -1;
	}
	if (W.nlogs == WR_LOGS_MAX) {
		wr_log_error("more than %d logs", WR_LOGS_MAX);
		return -1;
	}
	l = &W.logs[W.nlogs];
	memset(l, 0, sizeof(*l));
	memcpy(l->name, name, nlen);
	if (find_log(l->name)) {
		wr_log_error("log %s given twice", l->name);
		return -1;
	}
	snprintf(l->dir, sizeof(l->dir), "%s", dir);
	W.nlogs++;
	return 0;
}

static bool is_log_dir(const char *dir)
{
	char p[PATH_MAX + 8];
	struct stat st;

	snprintf(p, sizeof(p), "%s/LOG", dir);
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * The receiver's data_dir: <root>/<edge>/log/ per edge (docs/shipper-
 * config.md); a log directly at <root>/<name>/ works too. Returns the
 * number of logs added.
 */
static int scan_root(void)
{
	DIR *d = opendir(W.logs_root);
	struct dirent *de;
	int added = 0;

	if (!d) {
		wr_log_error("logs root %s: %s", W.logs_root, strerror(errno));
		return 0;
	}
	while ((de = readdir(d))) {
		char dir[PATH_MAX];
		size_t n = strlen(de->d_name);

		if (de->d_name[0] == '.' || !name_ok(de->d_name, n) ||
		    find_log(de->d_name))
			continue;
		if (snprintf(dir, sizeof(dir), "%s/%s/log", W.logs_root,
			     de->d_name) >= (int)sizeof(dir))
			continue;
		if (!is_log_dir(dir)) {
			snprintf(dir, sizeof(dir), "%s/%s", W.logs_root,
				 de->d_name);
			if (!is_log_dir(dir))
				continue;
		}
		if (add_log(de->d_name, n, dir) == 0) {
			wr_log_info("found log %s in %s", de->d_name, dir);
			added++;
		}
	}
	closedir(d);
	return added;
}

/* ---- Connection and positions --------------------------------------------- */

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 };

	while (!stopping && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Place one log: its row in consumer_offsets (new logs start at their
 * first retained record) and a cursor at the database's offset. Returns 0,
 * -1 on a database error, -2 on a gap (or the database ahead of the log),
 * -3 when the log cannot be read at all. */
static int place_log(struct wr_log *l)
{
	struct alog_log_info info;
	char start[24];
	const char *params[2] = { l->name, start };
	PGresult *res;
	int err = 0;

	alog_cursor_close(l->cur);
	l->cur = NULL;
	err = alog_log_inspect(l->dir, &info);
	if (err < 0) {
		wr_log_error("log %s (%s): %s", l->name, l->dir,
			     alog_strerror(err));
		return -3;
	}
	free(info.segments);
	snprintf(start, sizeof(start), "%" PRIu64, info.start_offset);
	if (wr_exec_params(&W.db,
			   "INSERT INTO consumer_offsets (log_name, next_offset)"
			   " VALUES ($1, $2) ON CONFLICT (log_name) DO NOTHING",
			   2, params, NULL, NULL, NULL) != WR_OK ||
	    wr_exec_params(&W.db,
			   "SELECT next_offset FROM consumer_offsets WHERE"
			   " log_name = $1",
			   1, params, NULL, NULL, &res) != WR_OK)
		return -1;
	l->next = l->read_next = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (l->next < info.start_offset) {
		wr_log_error("log %s: gap: the database needs offset %" PRIu64
			     " but the log starts at %" PRIu64
			     " (records deleted before they were written)",
			     l->name, l->next, info.start_offset);
		return -2;
	}
	l->cur = alog_cursor_open(l->dir, l->next, &err);
	if (!l->cur) {
		wr_log_error("log %s: cursor at %" PRIu64 ": %s", l->name,
			     l->next, alog_strerror(err));
		return err == -ERANGE ? -2 : -3;
	}
	return 0;
}

/* The exit status for a place_log() result that is not a database error. */
static int place_status(int rc)
{
	return rc == -2 ? 2 : 1;
}

/*
 * (Re)connect until it works or we are stopping: check the schema, run
 * housekeeping, place every log. Returns 0, or an exit status.
 */
static int connect_all(void)
{
	uint64_t backoff = BACKOFF_MIN_MS;
	size_t i;

	wr_engine_reset(W.engine);
	while (!stopping) {
		int rc = 0;

		if (wr_db_connect(&W.db) == WR_OK) {
			if (wr_schema_check(&W.db) < 0) {
				if (!W.db.conn ||
				    PQstatus(W.db.conn) != CONNECTION_OK)
					goto retry;
				wr_log_error("schema: %s", W.db.errmsg);
				return 1;
			}
			enum wr_err hk = wr_engine_housekeeping(W.engine, &W.db);

			if (hk == WR_ERR_FATAL) {
				wr_log_error("housekeeping: %s", W.db.errmsg);
				return 1;
			}
			if (hk != WR_OK)
				goto retry;
			for (i = 0; i < W.nlogs && rc == 0; i++)
				rc = place_log(&W.logs[i]);
			if (rc == -2 || rc == -3)
				return place_status(rc);
			if (rc == 0)
				return 0;
		}
retry:
		{
			uint64_t r = 0, wait;

			alog_random_bytes(&r, sizeof(r));
			wait = backoff / 2 + r % (backoff / 2 + 1);
			wr_log_error("PostgreSQL: %s; retrying in %" PRIu64
				     " ms",
				     W.db.errmsg, wait);
			wr_db_close(&W.db);
			sleep_ms(wait);
			backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
							       : backoff * 2;
		}
	}
	return 0;
}

/* ---- Batches --------------------------------------------------------------- */

static struct wr_record *batch_add(struct wr_batch *b)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		struct wr_record *r = realloc(b->recs, cap * sizeof(*r));

		if (!r)
			abort();
		b->recs = r;
		b->cap = cap;
	}
	memset(&b->recs[b->n], 0, sizeof(b->recs[0]));
	return &b->recs[b->n++];
}

/* Read up to a batch from l. Returns records read, or -2 on a gap. */
static int fill_batch(struct wr_log *l, uint64_t limit)
{
	struct wr_batch *b = &W.batch;
	struct alog_record rec;
	int rc;

	b->n = 0;
	b->arena.len = 0;
	b->log_name = l->name;
	b->first_offset = b->next_offset = l->read_next;
	while (b->n < limit && b->arena.len < BATCH_BYTES_MAX) {
		rc = alog_cursor_next(l->cur, &rec);
		if (rc == 0)
			break;
		if (rc == -EBADMSG) {
			const struct alog_damage *dmg = alog_cursor_damage(l->cur);
			uint64_t from, to;
			struct wr_record *r;

			if (alog_cursor_skip_damage(l->cur, &from, &to) < 0) {
				wr_log_error("log %s: damage at offset %" PRIu64
					     " (%s) cannot be skipped",
					     l->name, dmg->offset, dmg->reason);
				return -2;
			}
			wr_log_error("log %s: damaged records %" PRIu64
				     "..%" PRIu64 " (%s): dead-lettered",
				     l->name, from, to - 1, dmg->reason);
			r = batch_add(b);
			r->offset = from;
			r->lost = true;
			r->lost_to = to;
			r->lost_reason = "damaged in the log";
			b->next_offset = to;
			continue;
		}
		if (rc < 0) {
			wr_log_error("log %s: reading at %" PRIu64 ": %s",
				     l->name, alog_cursor_offset(l->cur),
				     alog_strerror(rc));
			return -2;
		}
		struct wr_record *r = batch_add(b);

		r->offset = rec.offset;
		r->time_ms = rec.time_ms;
		r->len = rec.len;
		r->at = b->arena.len;
		wr_buf_put(&b->arena, rec.data, rec.len);
		b->next_offset = rec.offset + 1;
	}
	return (int)b->n;
}

static void checkpoint(struct wr_log *l, bool force)
{
	uint64_t now = alog_now_ms();
	int rc;

	if (l->next == l->checkpointed ||
	    (!force && now - l->checkpoint_ms < CHECKPOINT_MS))
		return;
	/* Advisory: PostgreSQL has the offset; this lets the canonical
	 * host's retention delete what is already written. */
	rc = alog_consumer_commit(l->dir, WR_CHECKPOINT_NAME, l->next);
	if (rc < 0)
		wr_log_error("log %s: consumer checkpoint: %s", l->name,
			     alog_strerror(rc));
	l->checkpointed = l->next;
	l->checkpoint_ms = now;
}

/*
 * PostgreSQL refused records [lo, hi) of the batch for some record's data:
 * write each half in its own transaction, splitting again where refused,
 * down to single records, which are dead-lettered. A bad record costs
 * about 2 log2(batch) transactions, not one per record.
 */
static enum wr_err write_split(struct wr_log *l, size_t lo, size_t hi,
			       bool known_bad)
{
	struct wr_batch part = W.batch;
	const struct wr_record *last = &W.batch.recs[hi - 1];
	enum wr_err rc;

	part.recs = &W.batch.recs[lo];
	part.n = hi - lo;
	part.first_offset = l->next;
	l->read_next = l->next;
	part.next_offset = last->lost ? last->lost_to : last->offset + 1;
	if (!known_bad) {
		do
			rc = wr_engine_write(W.engine, &W.db, &part);
		while (rc == WR_ERR_RETRY);
		if (rc == WR_OK)
			l->next = part.next_offset;
		if (rc != WR_ERR_DATA)
			return rc;
	}
	if (hi - lo == 1) {
		char why[sizeof(W.db.errmsg) + 32];

		snprintf(why, sizeof(why), "PostgreSQL refused it: %s",
			 W.db.errmsg);
		wr_log_error("log %s offset %" PRIu64 ": %s", l->name,
			     part.recs[0].offset, why);
		rc = wr_engine_dead_letter(W.engine, &W.db, &part,
					   &part.recs[0], why);
		if (rc == WR_OK)
			l->next = part.next_offset;
		return rc;
	}
	size_t mid = lo + (hi - lo) / 2;

	rc = write_split(l, lo, mid, false);
	if (rc == WR_OK)
		rc = write_split(l, mid, hi, false);
	return rc;
}

static void progress(bool force)
{
	static uint64_t last_ms, last_events;
	const struct wr_stats *s = wr_engine_stats(W.engine);
	uint64_t now = alog_now_ms();

	if (s->events == last_events && (last_ms || !force))
		return; /* nothing new to say */
	if (!force && now - last_ms < PROGRESS_MS)
		return;
	wr_log_info("%" PRIu64 " events in %" PRIu64 " batches, %" PRIu64
		    " dead letters, %" PRIu64 " careful batches; user agents"
		    " cached %" PRIu64 " / parsed %" PRIu64
		    "; ms decode %" PRIu64 " lookup %" PRIu64
		    " enrich+sessions %" PRIu64
		    " copy %" PRIu64 " sessions-sql %" PRIu64
		    " rollups %" PRIu64 " commit %" PRIu64,
		    s->events, s->batches, s->dead_letters, s->careful_batches,
		    s->ua_hits, s->ua_misses, s->ns_decode / 1000000,
		    s->ns_lookup / 1000000,
		    s->ns_sessions / 1000000, s->ns_copy / 1000000,
		    s->ns_sessions_sql / 1000000, s->ns_rollups / 1000000,
		    s->ns_commit / 1000000);
	last_ms = now;
	last_events = s->events;
}

/* ---- The pipeline ------------------------------------------------------------ */

/*
 * wr_prepared.gate: a batch's upserts and commit wait until every batch
 * submitted before it has finished. Its COPY of events rows (new rows
 * nobody else touches) has already overlapped theirs. Without this, batch
 * k+1 could reach its offset compare-and-set before batch k took the row,
 * and see k's start; and waiting for k's commit after taking row locks
 * that k needs would deadlock where PostgreSQL cannot see it.
 */
static bool gate(void *arg)
{
	struct worker *self = arg;
	struct timespec until;
	bool ok = true;
	unsigned i;

	/*
	 * Bounded: this transaction holds its new events rows while it
	 * waits, and a batch before it that needs one of them (the same
	 * event id twice in the log) would wait for us where PostgreSQL's
	 * deadlock detector cannot see it. Giving up rolls this one back.
	 */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += W.gate_wait_s;
	pthread_mutex_lock(&W.mu);
	for (;;) {
		bool wait = false;

		for (i = 0; i < W.nworkers; i++) {
			const struct worker *o = &W.workers[i];

			if (o != self && o->busy && !o->done && o->seq < self->seq)
				wait = true;
		}
		if (!wait)
			break;
		if (pthread_cond_timedwait(&W.gate_cv, &W.mu, &until) ==
		    ETIMEDOUT) {
			ok = false;
			break;
		}
	}
	pthread_mutex_unlock(&W.mu);
	return ok;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	pthread_mutex_lock(&W.mu);
	for (;;) {
		while (!w->quit && !(w->busy && !w->started))
			pthread_cond_wait(&w->cv, &W.mu);
		if (w->quit)
			break;
		w->started = true;
		pthread_mutex_unlock(&W.mu);

		if (!w->db.conn && wr_db_connect(&w->db) != WR_OK) {
			w->prep.rc = WR_ERR_CONN;
			snprintf(w->prep.errmsg, sizeof(w->prep.errmsg), "%s",
				 w->db.errmsg);
		} else {
			wr_commit(&w->db, &w->prep);
			if (w->prep.rc == WR_ERR_CONN)
				wr_db_close(&w->db);
		}

		pthread_mutex_lock(&W.mu);
		w->done = true;
		pthread_cond_signal(&W.done_cv);
		pthread_cond_broadcast(&W.gate_cv);
	}
	pthread_mutex_unlock(&W.mu);
	return NULL;
}

static int workers_start(unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		struct worker *w = &W.workers[i];

		w->db.conninfo = W.cfg.conninfo;
		pthread_cond_init(&w->cv, NULL);
		if (pthread_create(&w->thread, NULL, worker_main, w)) {
			wr_log_error("cannot start a writer thread");
			return -1;
		}
		W.nworkers++;
	}
	return 0;
}

static void workers_stop(void)
{
	unsigned i;

	pthread_mutex_lock(&W.mu);
	for (i = 0; i < W.nworkers; i++) {
		W.workers[i].quit = true;
		pthread_cond_signal(&W.workers[i].cv);
	}
	pthread_mutex_unlock(&W.mu);
	for (i = 0; i < W.nworkers; i++) {
		pthread_join(W.workers[i].thread, NULL);
		wr_db_close(&W.workers[i].db);
		wr_prepared_free(&W.workers[i].prep);
		pthread_cond_destroy(&W.workers[i].cv);
	}
	W.nworkers = 0;
}

/* The outcome of the batches collected since the pipeline was last
 * clean: the worst error and whether any batch failed for itself (not
 * merely because the one before it failed: WR_ERR_ORDER). */
static struct {
	enum wr_err worst;
	bool failed_self;
	size_t data_log;       /* WR_ERR_DATA: which log, up to where */
	uint64_t data_until;
	char errmsg[512];
} F;

static int err_rank(enum wr_err e)
{
	switch (e) {
	case WR_ERR_FATAL: return 5;
	case WR_ERR_CONN: return 4;
	case WR_ERR_DATA: return 3;
	case WR_ERR_RETRY: return 2;
	case WR_ERR_ORDER: return 1;
	default: return 0;
	}
}

/* Take the outcome of a finished worker (called with W.mu held). */
static void collect(struct worker *w)
{
	struct wr_prepared *p = &w->prep;
	struct wr_log *l = &W.logs[w->log];

	w->busy = w->started = w->done = false;
	W.inflight--;
	if (p->rc == WR_OK) {
		if (p->next_offset > l->next)
			l->next = p->next_offset;
		wr_engine_account(W.engine, p);
		return;
	}
	if (p->rc != WR_ERR_ORDER)
		F.failed_self = true;
	if (p->rc == WR_ERR_DATA &&
	    (F.worst != WR_ERR_DATA || p->first_offset < F.data_until)) {
		F.data_log = w->log;
		F.data_until = p->next_offset;
	}
	if (err_rank(p->rc) > err_rank(F.worst)) {
		F.worst = p->rc;
		snprintf(F.errmsg, sizeof(F.errmsg), "%s", p->errmsg);
	}
}

/* Wait for one batch in flight to finish (W.mu not held). */
static void collect_one(void)
{
	unsigned i;

	pthread_mutex_lock(&W.mu);
	for (;;) {
		for (i = 0; i < W.nworkers; i++)
			if (W.workers[i].busy && W.workers[i].done) {
				collect(&W.workers[i]);
				pthread_mutex_unlock(&W.mu);
				return;
			}
		pthread_cond_wait(&W.done_cv, &W.mu);
	}
}

static void drain(void)
{
	while (W.inflight)
		collect_one();
}

/* Collect whatever has finished, without waiting. */
static void collect_ready(void)
{
	unsigned i;

	pthread_mutex_lock(&W.mu);
	for (i = 0; i < W.nworkers; i++)
		if (W.workers[i].busy && W.workers[i].done)
			collect(&W.workers[i]);
	pthread_mutex_unlock(&W.mu);
}

static struct worker *idle_worker(void)
{
	unsigned i;

	for (;;) {
		for (i = 0; i < W.nworkers; i++)
			if (!W.workers[i].busy)
				return &W.workers[i];
		collect_one();
	}
}

static void submit(struct worker *w, size_t log)
{
	pthread_mutex_lock(&W.mu);
	w->prep.gate = gate;
	w->prep.gate_arg = w;
	w->seq = ++W.seq;
	w->log = log;
	w->busy = true;
	w->started = w->done = false;
	W.inflight++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&W.mu);
}

/*
 * After a failure: everything in flight has finished (drain). Start over
 * from the database's offsets. Returns 0 to go on, or an exit status.
 */
static int recover(void)
{
	enum wr_err worst = F.worst;
	size_t i;
	int rc = 0;

	F.worst = WR_OK;
	if (worst == WR_ERR_ORDER && !F.failed_self) {
		/* Nothing of ours failed, yet the offset moved under us. */
		wr_log_error("%s", F.errmsg);
		return 1;
	}
	F.failed_self = false;
	if (worst == WR_ERR_FATAL) {
		wr_log_error("%s", F.errmsg);
		return 1;
	}
	wr_engine_reset(W.engine);
	if (worst == WR_ERR_CONN) {
		wr_log_error("PostgreSQL: %s", F.errmsg);
		for (i = 0; i < W.nworkers; i++)
			wr_db_close(&W.workers[i].db);
		return connect_all();
	}
	if (worst == WR_ERR_DATA) {
		W.logs[F.data_log].careful_until = F.data_until;
		wr_log_error("log %s: a batch up to offset %" PRIu64
			     " was refused (%s): splitting it to find the "
			     "record",
			     W.logs[F.data_log].name, F.data_until - 1,
			     F.errmsg);
	}
	for (i = 0; i < W.nlogs && rc == 0; i++)
		rc = place_log(&W.logs[i]);
	if (rc == -1) {
		wr_log_error("PostgreSQL: %s", W.db.errmsg);
		return connect_all();
	}
	return rc ? place_status(rc) : 0;
}

/* The careful path for a log whose batch PostgreSQL refused: nothing in
 * flight, one synchronous transaction per part. */
static int write_careful(struct wr_log *l)
{
	enum wr_err er = WR_OK;
	int n;

	while (l->next < l->careful_until && er == WR_OK) {
		l->read_next = l->next;
		n = fill_batch(l, l->careful_until - l->next < W.cfg.batch
					  ? l->careful_until - l->next
					  : W.cfg.batch);
		if (n < 0)
			return 2;
		if (n == 0)
			break;
		wr_engine_stats(W.engine)->careful_batches++;
		er = write_split(l, 0, W.batch.n, false);
	}
	l->read_next = l->next;
	l->careful_until = 0;
	if (er == WR_OK)
		return 0;
	F.worst = er;
	F.failed_self = true;
	snprintf(F.errmsg, sizeof(F.errmsg), "%s", W.db.errmsg);
	return recover();
}

/* Read, prepare and submit one batch of l. Returns 1 if it did, 0 if l
 * had nothing, -1 if the pipeline must recover first, or an exit status
 * as 100 + status. */
static int step_log(size_t li)
{
	struct wr_log *l = &W.logs[li];
	struct worker *w;
	enum wr_err er;
	int n;

	if (!l->cur && (n = place_log(l)) < 0) {
		if (n != -1)
			return 100 + place_status(n);
		if (err_rank(WR_ERR_CONN) > err_rank(F.worst)) {
			F.worst = WR_ERR_CONN;
			snprintf(F.errmsg, sizeof(F.errmsg), "%s",
				 W.db.errmsg);
		}
		F.failed_self = true;
		return -1;
	}
	if (l->careful_until > l->next) {
		drain();
		if (F.worst != WR_OK)
			return -1;
		n = write_careful(l);
		return n ? 100 + n : 1;
	}
	n = fill_batch(l, W.cfg.batch);
	if (n < 0)
		return 102;
	if (n == 0)
		return 0;
	if (wr_engine_cache_full(W.engine, &W.batch))
		drain();
	w = idle_worker();
	if (F.worst != WR_OK)
		return -1; /* a batch before this one failed: start over */
	er = wr_engine_prepare(W.engine, &W.db, &W.batch, &w->prep);
	if (er == WR_NEED_PARTITIONS) {
		drain();
		if (F.worst != WR_OK)
			return -1;
		er = wr_engine_add_partitions(W.engine, &W.db);
		if (er == WR_OK)
			er = wr_engine_prepare(W.engine, &W.db, &W.batch,
					       &w->prep);
	}
	if (er != WR_OK) {
		drain();
		if (err_rank(er) > err_rank(F.worst)) {
			F.worst = er;
			snprintf(F.errmsg, sizeof(F.errmsg), "%s", W.db.errmsg);
		}
		F.failed_self = true;
		return -1;
	}
	l->read_next = W.batch.next_offset;
	submit(w, li);
	return 1;
}

static int cmd_run(void)
{
	uint64_t last_scan = alog_now_ms(), last_hk = alog_now_ms();
	char err[512];
	int rc;
	size_t i;

	W.engine = wr_engine_new(&W.cfg, err, sizeof(err));
	if (!W.engine) {
		wr_log_error("%s", err);
		return 1;
	}
	if (W.logs_root)
		scan_root();
	if (W.nlogs == 0 && !W.logs_root) {
		wr_log_error("no logs: give --log NAME=DIR or --logs-root DIR");
		return 1;
	}
	if ((rc = connect_all()) != 0)
		return rc;
	/* ALOG_WRITER_GATE_WAIT_S: tests shorten the gate's bound. */
	W.gate_wait_s = GATE_WAIT_S;
	if (getenv("ALOG_WRITER_GATE_WAIT_S"))
		W.gate_wait_s = (unsigned)strtoul(
			getenv("ALOG_WRITER_GATE_WAIT_S"), NULL, 10);
	if (W.gate_wait_s == 0 || W.gate_wait_s > 3600)
		W.gate_wait_s = GATE_WAIT_S;
	if (workers_start(W.cfg.connections) < 0)
		return 1;
	wr_log_info("writing %zu logs into PostgreSQL over %u connections",
		    W.nlogs, W.cfg.connections);
	while (!stopping) {
		bool any = false;

		for (i = 0; i < W.nlogs && !stopping; i++) {
			int st = step_log(i);

			if (st == 1)
				any = true;
			if (st >= 100) {
				rc = st - 100;
				goto out;
			}
			if (st == -1) {
				drain();
				if ((rc = recover()) != 0)
					goto out;
				any = true;
				break;
			}
		}
		collect_ready();
		if (F.worst != WR_OK) {
			drain();
			if ((rc = recover()) != 0)
				goto out;
			continue;
		}
		for (i = 0; i < W.nlogs; i++)
			checkpoint(&W.logs[i], false);
		progress(false);
		if (alog_now_ms() - last_hk > HOUSEKEEPING_MS) {
			enum wr_err hk;

			drain();
			hk = wr_engine_housekeeping(W.engine, &W.db);
			last_hk = alog_now_ms();
			if (hk == WR_ERR_CONN && (rc = connect_all()) != 0)
				goto out;
			if (hk == WR_ERR_FATAL)
				wr_log_error("housekeeping: %s", W.db.errmsg);
		}
		if (W.logs_root && alog_now_ms() - last_scan > RESCAN_MS) {
			last_scan = alog_now_ms();
			scan_root();
		}
		if (any)
			continue;
		if (W.inflight) {
			collect_one();
			continue;
		}
		if (W.cfg.idle_exit)
			break;
		/* Nothing anywhere: wait for any log to change. */
		struct pollfd pfd[WR_LOGS_MAX];
		nfds_t np = 0;

		for (i = 0; i < W.nlogs; i++)
			if (W.logs[i].cur &&
			    alog_cursor_fd(W.logs[i].cur) >= 0) {
				pfd[np].fd = alog_cursor_fd(W.logs[i].cur);
				pfd[np++].events = POLLIN;
			}
		if (poll(pfd, np, 1000) > 0)
			for (i = 0; i < W.nlogs; i++)
				if (W.logs[i].cur)
					alog_cursor_wait(W.logs[i].cur, 0);
	}
	drain();
	rc = 0;
	if (F.worst != WR_OK && F.worst != WR_ERR_ORDER) {
		wr_log_error("stopping with a failed batch: %s", F.errmsg);
		rc = F.worst == WR_ERR_FATAL ? 1 : 0;
	}
out:
	drain();
	workers_stop();
	for (i = 0; i < W.nlogs; i++) {
		checkpoint(&W.logs[i], true);
		alog_cursor_close(W.logs[i].cur);
	}
	progress(true);
	wr_engine_free(W.engine);
	wr_db_close(&W.db);
	wr_buf_free(&W.batch.arena);
	free(W.batch.recs);
	return rc;
}

/* ---- status ------------------------------------------------------------------ */

static int cmd_status(void)
{
	PGresult *res;
	int row;

	if (W.logs_root)
		scan_root();
	if (wr_db_connect(&W.db) != WR_OK) {
		wr_log_error("PostgreSQL: %s", W.db.errmsg);
		return 1;
	}
	if (wr_schema_check(&W.db) < 0)
		printf("schema: %s\n", W.db.errmsg);
	else
		printf("schema: current (%zu migrations)\n",
		       wr_migrations_count);
	if (wr_exec(&W.db,
		    "SELECT o.log_name, o.next_offset, o.updated_at,"
		    " (SELECT count(*) FROM dead_letters d WHERE"
		    "  d.log_name = o.log_name)"
		    " FROM consumer_offsets o ORDER BY 1",
		    &res) != WR_OK) {
		wr_log_error("%s", W.db.errmsg);
		return 1;
	}
	printf("%-24s %14s %14s %10s %s\n", "log", "next_offset", "lag",
	       "dead", "updated_at");
	for (row = 0; row < PQntuples(res); row++) {
		const char *name = PQgetvalue(res, row, 0);
		uint64_t next = strtoull(PQgetvalue(res, row, 1), NULL, 10);
		struct wr_log *l = find_log(name);
		char lag[32] = "?";
		struct alog_log_info info;

		if (l && alog_log_inspect(l->dir, &info) == 0) {
			if (info.head_offset != UINT64_MAX)
				snprintf(lag, sizeof(lag), "%" PRIu64,
					 info.head_offset > next
						 ? info.head_offset - next
						 : 0);
			free(info.segments);
		}
		printf("%-24s %14" PRIu64 " %14s %10s %s\n", name, next, lag,
		       PQgetvalue(res, row, 3), PQgetvalue(res, row, 2));
	}
	PQclear(res);
	wr_db_close(&W.db);
	return 0;
}

/* ---- main -------------------------------------------------------------------- */

static int parse_uint(const char *opt, const char *s, unsigned long lo,
		      unsigned long hi, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi || s[0] == '-') {
		wr_log_error("--%s: '%s' is not a number in %lu..%lu", opt, s,
			     lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "log", required_argument, NULL, 'l' },
		{ "logs-root", required_argument, NULL, 'r' },
		{ "batch", required_argument, NULL, 'b' },
		{ "retention-days", required_argument, NULL, 'R' },
		{ "partitions-ahead", required_argument, NULL, 'A' },
		{ "uap", required_argument, NULL, 'u' },
		{ "ua-cache", required_argument, NULL, 'U' },
		{ "session-cache", required_argument, NULL, 'S' },
		{ "idle-exit", no_argument, NULL, 'x' },
		{ "connections", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd;
	unsigned long v;
	int c;
	struct sigaction sa;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 1 : 0;
	}
	cmd = argv[1];
	W.cfg.conninfo = getenv("ALOG_WRITER_DB");
	W.cfg.uap_path = "/usr/share/uap-core/regexes.yaml";
	W.cfg.batch = 20000;
	W.cfg.connections = 2;
	W.cfg.retention_days = 90;
	W.cfg.partitions_ahead = 7;
	W.cfg.ua_cache_entries = 65536;
	W.cfg.session_cache_entries = 1000000;
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': W.cfg.conninfo = optarg; break;
		case 'l': {
			const char *eq = strchr(optarg, '=');

			if (!eq || !eq[1]) {
				wr_log_error("--log wants NAME=DIR, not '%s'",
					     optarg);
				return 1;
			}
			if (add_log(optarg, (size_t)(eq - optarg), eq + 1) < 0)
				return 1;
			break;
		}
		case 'r': W.logs_root = optarg; break;
		case 'b':
			if (parse_uint("batch", optarg, 1, WR_BATCH_MAX, &v))
				return 1;
			W.cfg.batch = (unsigned)v;
			break;
		case 'R':
			if (parse_uint("retention-days", optarg, 1, 3650, &v))
				return 1;
			W.cfg.retention_days = (unsigned)v;
			break;
		case 'A':
			if (parse_uint("partitions-ahead", optarg, 1, 60, &v))
				return 1;
			W.cfg.partitions_ahead = (unsigned)v;
			break;
		case 'u': W.cfg.uap_path = optarg; break;
		case 'U':
			if (parse_uint("ua-cache", optarg, 16, 1u << 24, &v))
				return 1;
			W.cfg.ua_cache_entries = v;
			break;
		case 'S':
			if (parse_uint("session-cache", optarg, 1024, 1u << 26,
				       &v))
				return 1;
			W.cfg.session_cache_entries = v;
			break;
		case 'x': W.cfg.idle_exit = true; break;
		case 'c':
			if (parse_uint("connections", optarg, 1, CONNECTIONS_MAX,
				       &v))
				return 1;
			W.cfg.connections = (unsigned)v;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind != argc) {
		wr_log_error("unexpected argument '%s'", argv[optind]);
		return 1;
	}
	if (!W.cfg.conninfo) {
		wr_log_error("no database: give --db CONNINFO or set "
			     "ALOG_WRITER_DB");
		return 1;
	}
	W.db.conninfo = W.cfg.conninfo;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (!strcmp(cmd, "migrate") || !strcmp(cmd, "check")) {
		int rc;

		if (wr_db_connect(&W.db) != WR_OK) {
			wr_log_error("PostgreSQL: %s", W.db.errmsg);
			return 1;
		}
		if (!strcmp(cmd, "migrate")) {
			rc = wr_migrate(&W.db) < 0 ? 1 : 0;
		} else {
			rc = wr_schema_check(&W.db) < 0 ? 1 : 0;
			if (rc)
				wr_log_error("schema: %s", W.db.errmsg);
			else
				printf("schema is current (%zu migrations)\n",
				       wr_migrations_count);
		}
		wr_db_close(&W.db);
		return rc;
	}
	if (!strcmp(cmd, "run"))
		return cmd_run();
	if (!strcmp(cmd, "status"))
		return cmd_status();
	wr_log_error("unknown command '%s'", cmd);
	usage(stderr);
	return 1;
}
