/*
 * writer.h - alog-writer internals shared by its files (docs/writer.md).
 *
 *   writer_pg.c     libpq: connect, run statements, classify errors, COPY,
 *                   migrations and the schema check
 *   writer_batch.c  one batch of records -> one transaction: decode,
 *                   enrich, sessions, rollups, offsets
 *   writer_main.c   command line, the logs, the main loop, status
 *
 * The writer is single-threaded: one connection, one batch at a time.
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
	/* time per stage, ns */
	uint64_t ns_decode, ns_sessions, ns_copy, ns_sessions_sql,
		ns_rollups, ns_commit;
};

struct wr_engine;

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
 * Write one batch in one transaction, with the log's offset. WR_ERR_DATA
 * means PostgreSQL refused the batch for a record's data and nothing was
 * written: the caller replays it one record at a time with careful set,
 * and a record that fails alone is dead-lettered by wr_engine_dead_letter.
 */
enum wr_err wr_engine_write(struct wr_engine *e, struct wr_db *db,
			    const struct wr_batch *b);

/* Write one record as a dead letter (with its offset) in one transaction. */
enum wr_err wr_engine_dead_letter(struct wr_engine *e, struct wr_db *db,
				  const struct wr_batch *b,
				  const struct wr_record *r,
				  const char *reason);

struct wr_stats *wr_engine_stats(struct wr_engine *e);

#endif /* ALOG_WRITER_H */
