/*
 * writer_pg.c - the writer's side of libpq: connections, statements and
 * their error classes, COPY, migrations and the schema check.
 *
 * Every error is reduced to what the caller must do about it (enum wr_err):
 * reconnect, isolate a bad record, run again, or stop. The SQLSTATE decides,
 * not the message text.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "writer.h"

/* ---- Logging ------------------------------------------------------------ */

static void vlog(const char *level, const char *fmt, va_list ap)
{
	char ts[32];
	struct timespec now;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ alog-writer %s: ", ts,
		now.tv_nsec / 1000000, level);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void wr_log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("info", fmt, ap);
	va_end(ap);
}

void wr_log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("error", fmt, ap);
	va_end(ap);
}

/* ---- Buffers and COPY text ------------------------------------------------ */

void wr_buf_reserve(struct wr_buf *b, size_t more)
{
	size_t cap;
	char *p;

	if (b->len + more <= b->cap)
		return;
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		wr_log_error("out of memory (%zu bytes)", cap);
		abort();
	}
	b->p = p;
	b->cap = cap;
}

void wr_buf_put(struct wr_buf *b, const void *p, size_t len)
{
	wr_buf_reserve(b, len);
	memcpy(b->p + b->len, p, len);
	b->len += len;
}

void wr_buf_printf(struct wr_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	wr_buf_reserve(b, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void wr_buf_free(struct wr_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/*
 * COPY text format: backslash, newline, carriage return and tab are the
 * only bytes that need escaping (the strings are UTF-8 without NUL, which
 * the event decoder guarantees).
 */
void wr_copy_str(struct wr_buf *b, const char *p, size_t len)
{
	size_t i, run = 0;

	wr_buf_reserve(b, len + 16);
	for (i = 0; i < len; i++) {
		char c = p[i], esc;

		switch (c) {
		case '\\': esc = '\\'; break;
		case '\n': esc = 'n'; break;
		case '\r': esc = 'r'; break;
		case '\t': esc = 't'; break;
		default: continue;
		}
		wr_buf_put(b, p + run, i - run);
		wr_buf_put(b, "\\", 1);
		wr_buf_put(b, &esc, 1);
		run = i + 1;
	}
	wr_buf_put(b, p + run, len - run);
}

void wr_copy_null(struct wr_buf *b)
{
	wr_buf_put(b, "\\N", 2);
}

void wr_copy_cstr_or_null(struct wr_buf *b, const char *s)
{
	if (!s || !*s)
		wr_copy_null(b);
	else
		wr_copy_str(b, s, strlen(s));
}

void wr_buf_u64(struct wr_buf *b, uint64_t v)
{
	char tmp[20];
	int i = 20;

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	wr_buf_put(b, tmp + i, (size_t)(20 - i));
}

void wr_buf_i64(struct wr_buf *b, int64_t v)
{
	if (v < 0) {
		wr_buf_put(b, "-", 1);
		wr_buf_u64(b, 0 - (uint64_t)v);
	} else {
		wr_buf_u64(b, (uint64_t)v);
	}
}

/* Events of a batch fall in a few seconds: the date and time of the last
 * second formatted is kept (one writer thread). */
void wr_copy_time(struct wr_buf *b, uint64_t ms)
{
	static uint64_t last_sec = UINT64_MAX;
	static char head[32];
	static size_t head_len;
	uint64_t sec = ms / 1000;
	char tail[8] = { '.', 0, 0, 0, '+', '0', '0', 0 };
	unsigned frac = (unsigned)(ms % 1000);

	if (sec != last_sec) {
		time_t t = (time_t)sec;
		struct tm tm;

		gmtime_r(&t, &tm);
		head_len = strftime(head, sizeof(head), "%Y-%m-%d %H:%M:%S",
				    &tm);
		last_sec = sec;
	}
	wr_buf_put(b, head, head_len);
	tail[1] = (char)('0' + frac / 100);
	tail[2] = (char)('0' + frac / 10 % 10);
	tail[3] = (char)('0' + frac % 10);
	wr_buf_put(b, tail, 7);
}

void wr_copy_uuid(struct wr_buf *b, const uint8_t id[16])
{
	static const char hex[] = "0123456789abcdef";
	char s[36];
	int i, j = 0;

	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			s[j++] = '-';
		s[j++] = hex[id[i] >> 4];
		s[j++] = hex[id[i] & 15];
	}
	wr_buf_put(b, s, sizeof(s));
}

void wr_copy_micros(struct wr_buf *b, int64_t micros)
{
	uint64_t m = micros < 0 ? 0 - (uint64_t)micros : (uint64_t)micros;

	wr_buf_printf(b, "%s%" PRIu64 ".%06" PRIu64, micros < 0 ? "-" : "",
		      m / 1000000, m % 1000000);
}

/* ---- Connections and statements ----------------------------------------- */

static void set_errmsg(struct wr_db *db, const char *msg)
{
	size_t n;

	snprintf(db->errmsg, sizeof(db->errmsg), "%s", msg ? msg : "?");
	/* One line: libpq messages end with a newline, some hold several. */
	for (n = 0; db->errmsg[n]; n++)
		if (db->errmsg[n] == '\n')
			db->errmsg[n] = n + 1 < sizeof(db->errmsg) &&
						db->errmsg[n + 1] ? ' ' : '\0';
}

enum wr_err wr_db_connect(struct wr_db *db)
{
	PGresult *res;

	wr_db_close(db);
	db->conn = PQconnectdb(db->conninfo);
	if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
		set_errmsg(db, db->conn ? PQerrorMessage(db->conn)
					: "out of memory");
		wr_db_close(db);
		return WR_ERR_CONN;
	}
	/* Strings are UTF-8; times are given with +00. The timeout bounds a
	 * statement stuck behind a lock (e.g. a long-running report holding
	 * a partition we want to drop). */
	res = PQexec(db->conn, "SET client_encoding = 'UTF8';"
			       "SET TimeZone = 'UTC';"
			       "SET statement_timeout = '300s';"
			       "SET synchronous_commit = on");
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		set_errmsg(db, PQerrorMessage(db->conn));
		PQclear(res);
		wr_db_close(db);
		return WR_ERR_CONN;
	}
	PQclear(res);
	db->temp_ready = false;
	return WR_OK;
}

void wr_db_close(struct wr_db *db)
{
	if (db->conn)
		PQfinish(db->conn);
	db->conn = NULL;
	db->temp_ready = false;
}

static enum wr_err classify(struct wr_db *db, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
				: NULL;

	set_errmsg(db, res && *PQresultErrorMessage(res)
			       ? PQresultErrorMessage(res)
			       : PQerrorMessage(db->conn));
	if (!db->conn || PQstatus(db->conn) != CONNECTION_OK || !state)
		return WR_ERR_CONN;
	/* 08: connection exception; 57P01..57P03: admin/crash shutdown,
	 * cannot connect now; 53: insufficient resources (disk full: the
	 * log keeps the records until there is room). */
	if (!strncmp(state, "08", 2) || !strncmp(state, "57P", 3) ||
	    !strncmp(state, "53", 2))
		return WR_ERR_CONN;
	if (!strcmp(state, "40001") || !strcmp(state, "40P01") ||
	    !strcmp(state, "55P03"))
		return WR_ERR_RETRY;
	if (!strncmp(state, "22", 2) || !strncmp(state, "23", 2))
		return WR_ERR_DATA;
	return WR_ERR_FATAL;
}

static enum wr_err finish(struct wr_db *db, PGresult *r, PGresult **res)
{
	ExecStatusType st = PQresultStatus(r);

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		if (res)
			*res = r;
		else
			PQclear(r);
		return WR_OK;
	}
	enum wr_err e = classify(db, r);

	PQclear(r);
	return e;
}

enum wr_err wr_exec(struct wr_db *db, const char *sql, PGresult **res)
{
	if (!db->conn) {
		set_errmsg(db, "not connected");
		return WR_ERR_CONN;
	}
	return finish(db, PQexec(db->conn, sql), res);
}

enum wr_err wr_exec_params(struct wr_db *db, const char *sql, int nparams,
			   const char *const *values, const int *lengths,
			   const int *formats, PGresult **res)
{
	if (!db->conn) {
		set_errmsg(db, "not connected");
		return WR_ERR_CONN;
	}
	return finish(db, PQexecParams(db->conn, sql, nparams, NULL, values,
				       lengths, formats, 0),
		      res);
}

enum wr_err wr_copy_in(struct wr_db *db, const char *copy_sql,
		       const char *data, size_t len)
{
	enum { CHUNK = 1 << 20 };
	PGresult *r;
	size_t at = 0;

	if (!db->conn) {
		set_errmsg(db, "not connected");
		return WR_ERR_CONN;
	}
	r = PQexec(db->conn, copy_sql);
	if (PQresultStatus(r) != PGRES_COPY_IN)
		return finish(db, r, NULL);
	PQclear(r);
	while (at < len) {
		size_t n = len - at < CHUNK ? len - at : CHUNK;

		if (PQputCopyData(db->conn, data + at, (int)n) != 1)
			break;
		at += n;
	}
	if (PQputCopyEnd(db->conn, at < len ? "write failed" : NULL) != 1) {
		set_errmsg(db, PQerrorMessage(db->conn));
		return WR_ERR_CONN;
	}
	/* The COPY's own result, then nothing. */
	enum wr_err e = WR_OK;

	while ((r = PQgetResult(db->conn))) {
		if (e == WR_OK)
			e = finish(db, r, NULL);
		else
			PQclear(r);
	}
	return e;
}

/* ---- Migrations ------------------------------------------------------------ */

#define WR_MIGRATE_LOCK "1634496359" /* 'alog' */

static void sha256_hex(const char *p, size_t len, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned int mdlen = 0;
	int i;

	if (!EVP_Digest(p, len, md, &mdlen, EVP_sha256(), NULL) ||
	    mdlen != 32) {
		wr_log_error("SHA-256 failed");
		abort();
	}
	for (i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

static const char create_migrations_table[] =
	"CREATE TABLE IF NOT EXISTS alog_schema_migrations ("
	" version integer PRIMARY KEY,"
	" name text NOT NULL UNIQUE,"
	" checksum text NOT NULL,"
	" applied_at timestamptz NOT NULL DEFAULT now())";

static int migration_version(const char *name)
{
	return atoi(name); /* "003_rollups" -> 3; names are checked at build */
}

int wr_migrate(struct wr_db *db)
{
	PGresult *res = NULL;
	size_t i;
	int applied = 0;

	if (wr_exec(db, "SELECT pg_advisory_lock(" WR_MIGRATE_LOCK ")",
		    NULL) != WR_OK ||
	    wr_exec(db, create_migrations_table, NULL) != WR_OK)
		goto fail;
	for (i = 0; i < wr_migrations_count; i++) {
		const struct wr_migration *m = &wr_migrations[i];
		char sum[65], ver[16];
		const char *params[3] = { ver, m->name, sum };

		sha256_hex(m->sql, m->len, sum);
		snprintf(ver, sizeof(ver), "%d", migration_version(m->name));
		if (wr_exec_params(db,
				   "SELECT name, checksum FROM "
				   "alog_schema_migrations WHERE version = $1",
				   1, params, NULL, NULL, &res) != WR_OK)
			goto fail;
		if (PQntuples(res) == 1) {
			if (strcmp(PQgetvalue(res, 0, 0), m->name) ||
			    strcmp(PQgetvalue(res, 0, 1), sum)) {
				snprintf(db->errmsg, sizeof(db->errmsg),
					 "migration %d is recorded as %s "
					 "(checksum %.12s) but the code has %s "
					 "(checksum %.12s): the schema has "
					 "drifted",
					 migration_version(m->name),
					 PQgetvalue(res, 0, 0),
					 PQgetvalue(res, 0, 1), m->name, sum);
				PQclear(res);
				goto fail;
			}
			PQclear(res);
			continue;
		}
		PQclear(res);
		res = NULL;
		/* One transaction per migration: it is applied and recorded
		 * together, or not at all. */
		if (wr_exec(db, "BEGIN", NULL) != WR_OK)
			goto fail;
		if (wr_exec(db, m->sql, NULL) != WR_OK) {
			char why[sizeof(db->errmsg)];

			memcpy(why, db->errmsg, sizeof(why));
			wr_exec(db, "ROLLBACK", NULL);
			snprintf(db->errmsg, sizeof(db->errmsg),
				 "migration %s failed: %.400s", m->name, why);
			goto fail;
		}
		if (wr_exec_params(db,
				   "INSERT INTO alog_schema_migrations "
				   "(version, name, checksum) "
				   "VALUES ($1, $2, $3)",
				   3, params, NULL, NULL, NULL) != WR_OK ||
		    wr_exec(db, "COMMIT", NULL) != WR_OK) {
			wr_exec(db, "ROLLBACK", NULL);
			goto fail;
		}
		wr_log_info("applied migration %s", m->name);
		applied++;
	}
	wr_exec(db, "SELECT pg_advisory_unlock(" WR_MIGRATE_LOCK ")", NULL);
	if (wr_schema_check(db) < 0)
		goto fail_unlocked;
	wr_log_info("schema is current (%zu migrations, %d applied now)",
		    wr_migrations_count, applied);
	return 0;
fail:
	if (db->conn)
		wr_exec(db, "SELECT pg_advisory_unlock(" WR_MIGRATE_LOCK ")",
			NULL);
fail_unlocked:
	wr_log_error("migrate: %s", db->errmsg);
	return -1;
}

int wr_schema_check(struct wr_db *db)
{
	PGresult *res = NULL;
	size_t i, t;
	int row, n;

	if (wr_exec(db,
		    "SELECT version, name, checksum FROM alog_schema_migrations "
		    "ORDER BY version",
		    &res) != WR_OK) {
		char why[sizeof(db->errmsg)];

		memcpy(why, db->errmsg, sizeof(why));
		snprintf(db->errmsg, sizeof(db->errmsg),
			 "no migrations applied (%.300s); run alog-writer "
			 "migrate",
			 why);
		return -1;
	}
	n = PQntuples(res);
	for (i = 0; i < wr_migrations_count; i++) {
		const struct wr_migration *m = &wr_migrations[i];
		char sum[65];

		sha256_hex(m->sql, m->len, sum);
		for (row = 0; row < n; row++)
			if (atoi(PQgetvalue(res, row, 0)) ==
			    migration_version(m->name))
				break;
		if (row == n) {
			snprintf(db->errmsg, sizeof(db->errmsg),
				 "the database is behind: migration %s is not "
				 "applied; run alog-writer migrate",
				 m->name);
			goto fail;
		}
		if (strcmp(PQgetvalue(res, row, 1), m->name) ||
		    strcmp(PQgetvalue(res, row, 2), sum)) {
			snprintf(db->errmsg, sizeof(db->errmsg),
				 "migration %s has drifted: recorded as %s "
				 "with checksum %.12s, the code has %.12s",
				 m->name, PQgetvalue(res, row, 1),
				 PQgetvalue(res, row, 2), sum);
			goto fail;
		}
	}
	if ((size_t)n > wr_migrations_count) {
		snprintf(db->errmsg, sizeof(db->errmsg),
			 "the database has %d migrations, this writer knows "
			 "%zu (last applied: %s): use the newer writer",
			 n, wr_migrations_count, PQgetvalue(res, n - 1, 1));
		goto fail;
	}
	PQclear(res);
	res = NULL;

	/* Every column the writer writes, by name: a dropped or renamed
	 * column is named here, not discovered by a failing COPY. */
	for (t = 0; wr_tables[t].name; t++) {
		const char *params[1] = { wr_tables[t].name };

		if (wr_exec_params(db,
				   "SELECT column_name FROM "
				   "information_schema.columns WHERE "
				   "table_schema = current_schema() AND "
				   "table_name = $1",
				   1, params, NULL, NULL, &res) != WR_OK)
			return -1;
		n = PQntuples(res);
		if (n == 0) {
			snprintf(db->errmsg, sizeof(db->errmsg),
				 "table %s is missing", wr_tables[t].name);
			goto fail;
		}
		for (i = 0; wr_tables[t].columns[i]; i++) {
			for (row = 0; row < n; row++)
				if (!strcmp(PQgetvalue(res, row, 0),
					    wr_tables[t].columns[i]))
					break;
			if (row == n) {
				snprintf(db->errmsg, sizeof(db->errmsg),
					 "column %s.%s is missing",
					 wr_tables[t].name,
					 wr_tables[t].columns[i]);
				goto fail;
			}
		}
		PQclear(res);
		res = NULL;
	}
	return 0;
fail:
	PQclear(res);
	return -1;
}
