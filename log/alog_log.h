/*
 * alog_log.h - the durable segmented append log.
 *
 * One writer process appends records; any number of readers, in this process
 * or others, read them by offset and follow the tail. The on-disk format is
 * specified in docs/log-format.md. Appends are group-committed: appender
 * threads copy records into a shared batch buffer, a commit thread writes the
 * batch with io_uring and (in fsync mode) fdatasyncs it in the same linked
 * submission, then calls each appender's callback. A callback with status 0
 * means the record is durable and will be found at the offset it was given
 * after any crash.
 *
 * Errors are negative errno values: -EDQUOT (disk budget reached), -ENOSPC
 * (disk full), -EIO and others (the log has failed and stopped), -EMSGSIZE
 * (record too large), -EINVAL (bad argument), -ESPIPE (expected offset did
 * not match), -EBADMSG (damaged record or damaged LOG file), -ENOTRECOVERABLE
 * (a foreign directory: no LOG file, or not an alog LOG file),
 * -EPROTONOSUPPORT (a LOG of another format version), -ESHUTDOWN (closing).
 */
#ifndef ALOG_LOG_H
#define ALOG_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define ALOG_OFFSET_ANY UINT64_MAX
#define ALOG_RECORD_BYTES_HARD_MAX (16u << 20)

enum alog_durability {
	ALOG_DURABLE_FSYNC = 0, /* ack after fdatasync (default) */
	ALOG_DURABLE_WRITE = 1, /* ack after write, fdatasync on an interval */
};

struct alog_log_options {
	bool create;           /* create the directory/log if missing */
	uint64_t first_offset; /* offset of the first record of a new log */
	enum alog_durability durability;
	uint32_t fsync_interval_ms;    /* write mode: fdatasync cadence (200) */
	uint32_t record_bytes_max;     /* 1 MiB */
	uint64_t segment_bytes_max;    /* 64 MiB */
	uint64_t segment_age_max_ms;   /* roll by age; 0 = never (1 h) */
	uint32_t batch_bytes_max;      /* group commit buffer (4 MiB) */
	uint32_t batch_records_max;    /* records per commit (65536) */
	uint32_t index_interval_bytes; /* 4096 */
	uint32_t commits_in_flight;    /* fsync mode: batches in flight (1) */
	uint64_t disk_budget_bytes;    /* 0 = unlimited */
	uint64_t retention_age_min_ms; /* keep acked segments this long (0) */
	/* Zero the next segment ahead of its roll on a thread of the log's
	 * own, and write each commit to the end of its last page, so an
	 * fdatasync need not write the file's extent map (false). Needs
	 * commits_in_flight 1 in fsync mode. docs/log-format.md. */
	bool prepare_segments;
};

/* Defaults as documented in docs/log-format.md. */
void alog_log_options_init(struct alog_log_options *opts);

/* What recovery found when the log was opened. */
struct alog_recovery_report {
	uint64_t segments;          /* segments found */
	uint64_t records_scanned;   /* records verified in the active segment */
	uint64_t bytes_dropped;     /* torn tail cut from the active segment */
	uint64_t drop_position;     /* file position of the cut (if dropped) */
	uint64_t drop_segment_base; /* segment that was cut */
	bool quarantined;         /* dropped bytes held valid-looking records */
	uint64_t indexes_rebuilt; /* sealed segments whose index was rebuilt */
	uint64_t segments_removed; /* below start offset (interrupted retention) */
};

struct alog_log;

/*
 * Open (or with opts->create, create) the log in dir. Takes the directory's
 * writer lock (-EWOULDBLOCK if another process holds it), runs recovery and
 * starts the commit thread. opts may be NULL for defaults. Returns NULL and
 * sets *err on failure. Caller closes with alog_log_close().
 */
struct alog_log *alog_log_open(const char *dir,
			       const struct alog_log_options *opts, int *err);

/*
 * Flush and make durable everything appended, stop the commit thread, seal
 * nothing (the active segment stays active) and release the lock. Pending
 * appends complete (successfully or not) before it returns. Accepts NULL.
 */
void alog_log_close(struct alog_log *log);

/*
 * Called once per append batch from the log's commit thread, when the
 * records are durable (status 0, first_offset = offset of the first record)
 * or when they failed (status < 0). Must be quick and must not call
 * alog_log_close(); it may append.
 */
typedef void (*alog_durable_fn)(void *arg, int status, uint64_t first_offset);

struct alog_append_opts {
	uint64_t expect_offset; /* ALOG_OFFSET_ANY, or the offset the first
				 * record must get (-ESPIPE otherwise) */
	uint64_t time_ms;       /* record time; 0 = now */
	const uint64_t *times_ms; /* NULL, or one time per record (taken as
				   * they are, 0 included): a mirror keeps
				   * each record's original time */
};

/*
 * Append n records (iov[i] is one record's payload, 1..record_bytes_max
 * bytes) as one all-or-nothing unit: they get consecutive offsets, land in
 * the same segment and become durable together. The payload is copied before
 * the call returns. On success returns 0 and cb will be called exactly once
 * with the outcome; on immediate failure returns -errno and cb is never
 * called. Blocks while the batch buffer is full (backpressure). opts may be
 * NULL. Thread-safe.
 */
int alog_log_append(struct alog_log *log, const struct iovec *iov, unsigned n,
		    const struct alog_append_opts *opts, alog_durable_fn cb,
		    void *arg);

/*
 * Append and wait until durable. Returns 0 and sets *offset (may be NULL)
 * to the first record's offset, or -errno. Thread-safe.
 */
int alog_log_append_wait(struct alog_log *log, const struct iovec *iov,
			 unsigned n, const struct alog_append_opts *opts,
			 uint64_t *offset);

/* Wait until everything appended so far is durable. 0 or -errno. */
int alog_log_sync(struct alog_log *log);

#define ALOG_LOG_HIST_BUCKETS 16
#define ALOG_LOG_HIST_BASE_NS 50000ull /* bucket i: <= 50 us * 2^i */

struct alog_log_stats {
	uint64_t start_offset;   /* lowest offset retained */
	uint64_t next_offset;    /* offset the next append will get */
	uint64_t durable_offset; /* every record below this is durable */
	uint64_t segments;
	uint64_t disk_bytes; /* sum of segment file sizes */
	uint64_t disk_budget_bytes;
	uint64_t commits; /* group commits written */
	uint64_t fsyncs;
	uint64_t records; /* records appended since open */
	uint64_t bytes;   /* bytes written since open, headers included */
	int failed;       /* 0, or the error that stopped the log */
	uint64_t active_free_bytes; /* room left in the active segment */
	/* Commit cycles (write + fdatasync, as observed by the commit
	 * thread) by duration; the last bucket is +Inf. */
	uint64_t commit_hist[ALOG_LOG_HIST_BUCKETS + 1];
	uint64_t commit_ns_sum;
	uint32_t inflight_max; /* most batches in flight at once so far */
	/* Rolls onto a segment prepared ahead (prepare_segments), rolls
	 * that made theirs the plain way, preparations that failed (and
	 * the last one's error, 0 if none). A prepared file counts in
	 * disk_bytes. */
	uint64_t rolls_prepared, rolls_plain, prepare_errors;
	int prepare_last_error;
	bool segment_prepared; /* the next segment waits, made (counted in
				* disk_bytes: room for the next roll) */
};

/* Snapshot of the log's counters. Thread-safe. */
void alog_log_stats(struct alog_log *log, struct alog_log_stats *st);

/* The report from the recovery run by alog_log_open(). Borrowed. */
const struct alog_recovery_report *
alog_log_recovery(const struct alog_log *log);

/*
 * Retention: delete whole sealed segments whose records are all below
 * acked_offset and that were sealed at least retention_age_min_ms before
 * now_ms. Returns the number of segments deleted, or -errno. Thread-safe.
 */
int alog_log_retain(struct alog_log *log, uint64_t acked_offset,
		    uint64_t now_ms);

/* Human-readable text for an alog error code (negative errno). */
const char *alog_strerror(int err);

/* ---- Readers ---------------------------------------------------------- */

struct alog_record {
	uint64_t offset;
	uint64_t time_ms;
	const uint8_t *data; /* borrowed until the next cursor call */
	uint32_t len;
};

/* Where a reader found damage (after -EBADMSG). */
struct alog_damage {
	uint64_t segment_base;
	uint64_t position;  /* file position of the bad record */
	uint64_t offset;    /* offset expected there */
	const char *reason; /* static string */
};

struct alog_cursor;

/*
 * Open a cursor on the log in dir, positioned at offset (ALOG_OFFSET_ANY:
 * the start of the log). Works without the writer and from other
 * processes; never reads past the HEAD watermark when one exists. Returns
 * NULL and sets *err (-ENOENT: no log there, -ENOTRECOVERABLE: foreign
 * directory). Not thread-safe: one cursor per thread.
 */
struct alog_cursor *alog_cursor_open(const char *dir, uint64_t offset,
				     int *err);
void alog_cursor_close(struct alog_cursor *c);

/*
 * Read the next record. Returns 1 and fills *rec, 0 when no further record
 * is visible yet, or -errno: -ERANGE when the cursor's offset is below the
 * log's start (deleted by retention) or above its end, -EBADMSG on a
 * damaged record (alog_cursor_damage() says where).
 */
int alog_cursor_next(struct alog_cursor *c, struct alog_record *rec);

/* The offset the next alog_cursor_next() will return. */
uint64_t alog_cursor_offset(const struct alog_cursor *c);

/* Where the last -EBADMSG was found. Borrowed. */
const struct alog_damage *alog_cursor_damage(const struct alog_cursor *c);

/*
 * After -EBADMSG: move past the damage to the next record that can be read
 * (next index entry or next segment). Sets *lost_from and *lost_to to the
 * half-open range of offsets skipped. Returns 0 or -errno.
 */
int alog_cursor_skip_damage(struct alog_cursor *c, uint64_t *lost_from,
			    uint64_t *lost_to);

/*
 * Block until the log may have new records (inotify on the directory and
 * HEAD; no polling) or timeout_ms passes (-1: forever). Returns 1 if woken
 * by a change, 0 on timeout, -errno on error.
 */
int alog_cursor_wait(struct alog_cursor *c, int timeout_ms);

/* The inotify descriptor behind alog_cursor_wait(), for poll()/io_uring. */
int alog_cursor_fd(const struct alog_cursor *c);

/* ---- Inspection -------------------------------------------------------- */

struct alog_segment_info {
	uint64_t base_offset;
	uint64_t next_offset; /* last offset + 1 (base if empty) */
	uint64_t records;
	uint64_t data_bytes; /* bytes used by header and records */
	uint64_t file_bytes; /* bytes on disk (preallocated if active) */
	uint64_t created_ms;
	uint64_t last_time_ms; /* newest record's time, 0 if empty */
	bool sealed;           /* has a valid index */
};

struct alog_log_info {
	uint8_t identity[16];
	uint64_t created_ms;
	uint64_t start_offset;
	uint64_t head_offset; /* HEAD watermark (next_offset), or UINT64_MAX */
	size_t nsegments;
	struct alog_segment_info *segments; /* caller frees with free() */
};

/*
 * Describe the log in dir without opening it for writing. Returns 0 or
 * -errno (-ENOENT missing directory, -ENOTRECOVERABLE foreign directory).
 * Caller frees info->segments with free().
 */
int alog_log_inspect(const char *dir, struct alog_log_info *info);

/* ---- Consumer checkpoints ---------------------------------------------- */
/*
 * A consumer (the shipper, the writer) records the offset below which it no
 * longer needs the log in <dir>/consumers/<name> (format: docs/log-format.md,
 * "Consumer checkpoints"). Consumers are readers and may live in other
 * processes; the log's writer applies retention with the smallest committed
 * offset, so a consumer that has not caught up keeps its records on disk.
 * A name is 1..64 bytes of [A-Za-z0-9._-], not starting with '.' and not
 * ending in ".tmp".
 */
#define ALOG_CONSUMER_NAME_MAX 64

/*
 * Atomically replace consumer name's checkpoint with offset (temp + fsync +
 * rename + fsync dir; creates <dir>/consumers/ if needed). Returns 0 or
 * -errno (-EINVAL bad name, -ENOENT no such directory). Safe to call from
 * any process; concurrent commits of the same name are last-writer-wins.
 */
int alog_consumer_commit(const char *dir, const char *name, uint64_t offset);

/*
 * Read consumer name's checkpoint. Returns 0 and sets *offset (and
 * *time_ms, the commit time, if not NULL), -ENOENT when there is none,
 * -EBADMSG when the file is damaged, -EINVAL for a bad name.
 */
int alog_consumer_read(const char *dir, const char *name, uint64_t *offset,
		       uint64_t *time_ms);

/*
 * Retention driven by the consumers: alog_log_retain(log, m, now_ms) with m
 * the smallest offset committed by any consumer of dir (the directory log
 * was opened on). No consumers: deletes nothing and returns 0. A damaged
 * checkpoint file: deletes nothing and returns -EBADMSG. Otherwise returns
 * what alog_log_retain returns. *min_offset (may be NULL) gets m, or
 * ALOG_OFFSET_ANY when there is no consumer. Thread-safe.
 */
int alog_log_retain_consumers(struct alog_log *log, const char *dir,
			      uint64_t now_ms, uint64_t *min_offset);

#endif /* ALOG_LOG_H */
