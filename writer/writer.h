/*
 * writer.h - alog-writer internals shared by its files (docs/writer.md).
 *
 *   writer_pg.c     libpq: connect, run statements, classify errors, COPY,
 *                   migrations and the schema check
 *   writer_batch.c  one batch of records -> one transaction: decode,
 *                   enrich, sessions, rollups, offsets
 *   writer_main.c   command line, the logs, the main loop, status
 *
 * The main thread reads and prepares batches in log order (decode, enrich,
 * sessions: the engine is only ever touched there); up to --connections
 * worker threads each commit one prepared batch on a connection of their
 * own (wr_commit), ordered by the offsets' compare-and-set.
 */
#ifndef ALOG_WRITER_H
#define ALOG_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "alog_log.h"

#define WR_LOG_NAME_MAX ALOG_CONSUMER_NAME_MAX
#define WR_LOGS_MAX 256
#define WR_BATCH_MAX 100000
#define WR_SESSION_GAP_MS (30ull * 60 * 1000)
#define WR_CHECKPOINT_NAME "writer"

void wr_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void wr_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- A growing byte buffer (COPY data, SQL text) ------------------------ */

struct wr_buf {
	char *p;
	size_t len, cap;
};

void wr_buf_reserve(struct wr_buf *b, size_t more); /* aborts on OOM */
void wr_buf_put(struct wr_buf *b, const void *p, size_t len);
void wr_buf_printf(struct wr_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void wr_buf_free(struct wr_buf *b);
/* Decimal integers, without printf. */
void wr_buf_u64(struct wr_buf *b, uint64_t v);
void wr_buf_i64(struct wr_buf *b, int64_t v);

/* COPY text format fields: a string (escaped), NULL (\N), separators. */
void wr_copy_str(struct wr_buf *b, const char *p, size_t len);
void wr_copy_cstr_or_null(struct wr_buf *b, const char *s); /* "" -> \N */
void wr_copy_null(struct wr_buf *b);
/* "YYYY-MM-DD HH:MM:SS.mmm+00" for ms since the epoch. */
void wr_copy_time(struct wr_buf *b, uint64_t ms);
void wr_copy_uuid(struct wr_buf *b, const uint8_t id[16]);
/* An amount in millionths as a numeric literal ("-12.345600"). */
void wr_copy_micros(struct wr_buf *b, int64_t micros);

/* ---- PostgreSQL -------------------------------------------------------- */

/* What went wrong with a statement, which decides what the writer does. */
enum wr_err {
	WR_OK = 0,
	WR_ERR_CONN,  /* connection lost or server going away: reconnect */
	WR_ERR_DATA,  /* SQLSTATE 22xxx/23xxx: a record's data; isolate it */
	WR_ERR_RETRY, /* serialization failure, deadlock: run the batch again */
	WR_ERR_FATAL, /* anything else (schema, permissions): stop */
	WR_ERR_ORDER, /* the log's offset in the database is not the batch's
		       * start: the batch before failed, or another writer */
	WR_NEED_PARTITIONS, /* wr_engine_prepare: new days; see there */
};

struct wr_db {
	PGconn *conn;
	const char *conninfo;
	char errmsg[512]; /* the last error, one line */
	bool temp_ready;  /* this connection has the temp tables */
};

/* Connect (once). WR_OK or WR_ERR_CONN with db->errmsg. */
enum wr_err wr_db_connect(struct wr_db *db);
void wr_db_close(struct wr_db *db);

/*
 * Run sql (no parameters, or nparams text parameters). Returns WR_OK and,
 * when res is not NULL, the result (caller PQclear()s); otherwise the error
 * class with db->errmsg set.
 */
enum wr_err wr_exec(struct wr_db *db, const char *sql, PGresult **res);
enum wr_err wr_exec_params(struct wr_db *db, const char *sql, int nparams,
			   const char *const *values, const int *lengths,
			   const int *formats, PGresult **res);

/* COPY ... FROM STDIN with data (text format). */
enum wr_err wr_copy_in(struct wr_db *db, const char *copy_sql,
		       const char *data, size_t len);

/* The migrations compiled into the binary (writer_migrations.c). */
struct wr_migration {
	const char *name; /* "001_events" */
	const char *sql;
	size_t len;
};
extern const struct wr_migration wr_migrations[];
extern const size_t wr_migrations_count;

/* The tables and columns the writer writes (writer_batch.c), for the
 * schema check: each columns list ends with NULL, the list with name NULL. */
struct wr_table {
	const char *name;
	const char *const *columns;
};
extern const struct wr_table wr_tables[];

/* Apply missing migrations under the advisory lock. 0 or -1 (message
 * printed). */
int wr_migrate(struct wr_db *db);

/*
 * Check that the database has exactly the code's migrations and every
 * table and column the writer writes. 0, or -1 with the first problem in
 * db->errmsg.
 */
int wr_schema_check(struct wr_db *db);

/* ---- Batches ----------------------------------------------------------- */

struct wr_config {
	const char *conninfo;
	const char *uap_path;
	unsigned batch;
	unsigned connections; /* transactions in flight */
	unsigned retention_days;
	unsigned partitions_ahead;
	size_t ua_cache_entries;
	size_t session_cache_entries;
	bool idle_exit;
};

/* One record read from a log, its bytes copied into the batch arena. */
struct wr_record {
	uint64_t offset;
	uint64_t time_ms;
	uint32_t len;
	size_t at; /* the record's bytes: wr_batch.arena.p + at */
	bool lost; /* a damaged range: offsets [offset, lost_to), no bytes */
	uint64_t lost_to;
	const char *lost_reason;
};

struct wr_batch {
	const char *log_name;
	struct wr_record *recs;
	size_t n, cap;
	struct wr_buf arena;
	uint64_t first_offset; /* the log's offset in the database before it */
	uint64_t next_offset;  /* offset after the batch: the new checkpoint */
};

struct wr_stats {
	uint64_t batches, events, dead_letters, careful_batches;
	uint64_t ua_hits, ua_misses;
	uint64_t session_lookups; /* visitors looked up in PostgreSQL */
	/* time per stage, ns (ns_sessions includes ns_lookup) */
	uint64_t ns_decode, ns_lookup, ns_sessions, ns_copy, ns_sessions_sql,
		ns_rollups, ns_commit;
};

struct wr_engine;

/* A record the batch dead-letters (bytes in wr_prepared.dead_bytes). */
struct wr_dead {
	uint64_t offset, lost_to;
	bool lost;
	const char *reason; /* static string */
	size_t at;
	uint32_t len;
};

/*
 * One batch made ready by wr_engine_prepare(): the COPY data of its
 * events, session and rollup deltas, its dead letters and its offsets.
 * wr_commit() writes it in one transaction, on any connection, without
 * touching the engine: several can be in flight on several connections
 * (their COPYs overlap; their upserts and commits are ordered by gate).
 */
struct wr_prepared {
	char log_name[WR_LOG_NAME_MAX + 1];
	uint64_t first_offset, next_offset;
	struct wr_buf rows, sdrows, rdrows, dead_bytes;
	struct wr_dead *dead;
	size_t ndead, deadcap;
	uint64_t events;
	/* Called by wr_commit after the events rows are in and before the
	 * session and rollup upserts (NULL: none): waits until every batch
	 * started before this one has finished, so that upserts and commits
	 * go in order and only the COPYs overlap. false: it waited too long
	 * (the transaction is rolled back and retried). */
	bool (*gate)(void *arg);
	void *gate_arg;
	/* set by wr_commit */
	enum wr_err rc;
	char errmsg[512];
	uint64_t ns_copy, ns_sessions_sql, ns_rollups, ns_commit;
};

void wr_prepared_free(struct wr_prepared *p);

struct wr_engine *wr_engine_new(const struct wr_config *cfg, char *err,
				size_t errlen);
void wr_engine_free(struct wr_engine *e);

/* Forget every cached session (after a rollback or a reconnect). */
void wr_engine_reset(struct wr_engine *e);

/*
 * Make sure daily partitions exist from yesterday to partitions_ahead days
 * ahead and drop the ones older than the retention window (and old
 * sessions). Runs in its own transaction.
 */
enum wr_err wr_engine_housekeeping(struct wr_engine *e, struct wr_db *db);

/*
 * True when preparing b would empty the session cache: the caller must
 * first let every batch in flight commit (their sessions are in it).
 */
bool wr_engine_cache_full(const struct wr_engine *e, const struct wr_batch *b);

/*
 * Decode and enrich b, assign sessions (looking up unknown visitors on db,
 * outside any transaction) and fill p. Batches must be prepared in log
 * order: each builds on the sessions of the ones before. Returns
 * WR_NEED_PARTITIONS when b has days without a partition: let everything
 * in flight finish, call wr_engine_add_partitions(), prepare again.
 */
enum wr_err wr_engine_prepare(struct wr_engine *e, struct wr_db *db,
			      const struct wr_batch *b, struct wr_prepared *p);
enum wr_err wr_engine_add_partitions(struct wr_engine *e, struct wr_db *db);

/*
 * Write p in one transaction with its log's offset (compare and set from
 * p->first_offset). Sets p->rc and p->errmsg. Thread-safe for distinct db
 * and p. WR_ERR_DATA: PostgreSQL refused a record's data, nothing written.
 */
enum wr_err wr_commit(struct wr_db *db, struct wr_prepared *p);

/* Count a committed batch in the engine's statistics. */
void wr_engine_account(struct wr_engine *e, const struct wr_prepared *p);

/* Prepare and commit b on db, without a pipeline (the careful path). */
enum wr_err wr_engine_write(struct wr_engine *e, struct wr_db *db,
			    const struct wr_batch *b);

/* Write one record as a dead letter (with its offset) in one transaction. */
enum wr_err wr_engine_dead_letter(struct wr_engine *e, struct wr_db *db,
				  const struct wr_batch *b,
				  const struct wr_record *r,
				  const char *reason);

struct wr_stats *wr_engine_stats(struct wr_engine *e);

#endif /* ALOG_WRITER_H */
