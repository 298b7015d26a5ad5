/*
 * log_writer.c - open, recover, append (group commit), roll, retain, close.
 *
 * Appenders copy framed records into the "fill" batch under the log mutex
 * and leave. The commit thread swaps the fill batch for a spare one and
 * submits it with io_uring (a write linked to an fdatasync) without
 * waiting; while batches are on their way to disk the next one fills up,
 * so the batch size grows with the load: that is the group commit. The
 * callbacks of a finished batch run once the next one is submitted, so
 * they overlap its I/O. In fsync mode up to commits_in_flight batches
 * (default 1) may be in flight at once, so the device sees several flushes
 * queued; an appender that arrives while the commit thread waits for
 * completions then wakes it through an eventfd read queued in the same
 * ring. On this project's 2-CPU VM more than one in flight made the edge
 * slower (every extra fdatasync costs CPU that request handling needs):
 * see docs/log-format.md before raising it.
 * Batches complete in any order but are finished strictly in offset
 * order: the segment index, HEAD and the callbacks advance only once every
 * earlier batch is durable, so a callback with status 0 still means every
 * earlier record is durable too. Each batch's fdatasync follows its own
 * write, so it is durable by its own flush whatever the others did; after
 * a failure nothing later is acknowledged. Write mode, rolls and the
 * interval fdatasync keep one batch in flight.
 *
 * Rolling: an appender whose records do not fit in the active segment sets
 * roll_pending and waits. The commit thread creates the next segment (temp,
 * fallocate, fsync, rename, fsync dir) before any record can go to it, so a
 * failure to create it (disk full) fails only the appends that asked for it.
 * The old segment is sealed (truncate, fdatasync, index) after its last
 * batch is durable. Recovery copes with a crash at any point of this.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "alog_common.h"
#include "log_internal.h"

int (*log_fault_fsync_hook)(void);
int (*log_fault_prepare_hook)(void);

/* The segment the preparer makes ahead of a roll (docs/log-format.md). */
#define LOG_PREP_NAME "next.seg.tmp"
/* Zeros per write while preparing. */
#define LOG_PREP_CHUNK (1u << 20)

/* Batches the commit thread may have in flight at most (fsync mode). */
#define LOG_INFLIGHT_MAX 8
/* io_uring user data: batch index << 2 | what. */
#define LOG_UD_WRITE 0u
#define LOG_UD_SYNC 1u
#define LOG_UD_KICK 3u

struct log_waiter {
	alog_durable_fn cb;
	void *arg;
	uint64_t first_offset;
};

struct log_batch {
	uint8_t *buf;
	size_t used;
	size_t cap;
	struct log_waiter *waiters;
	uint32_t nwaiters;
	uint32_t records;
	uint64_t first_offset; /* offset of the first record in buf */
	uint64_t next_offset;  /* one past the last */
	uint64_t file_pos;     /* where buf[0] goes in its segment */
	struct log_segment *seg;
	uint32_t copiers;        /* appenders still copying into buf (futex) */
	uint32_t commit_waiting; /* the commit thread sleeps on copiers */
	/* In flight (commit thread only). */
	struct log_segment *seal; /* sealed after this batch (a roll) */
	bool sync;
	int err;           /* failed before or at submission */
	int status;        /* for the callbacks, once finished */
	int res[2];        /* write, fdatasync */
	size_t pad;        /* zeros written after used (prepare_segments) */
	struct iovec iov[2];
	unsigned cqes;     /* completions still to come */
	uint64_t submit_ns;
	uint64_t done_ns;
};

/* An appender waiting for batch space, in arrival order. */
struct space_waiter {
	pthread_cond_t cv;
	struct space_waiter *next;
};

/* Wait until every appender that reserved space in b has copied its
 * records (they copy outside the log mutex). */
static void batch_wait_copiers(struct log_batch *b)
{
	uint32_t v;

	__atomic_store_n(&b->commit_waiting, 1, __ATOMIC_SEQ_CST);
	while ((v = __atomic_load_n(&b->copiers, __ATOMIC_SEQ_CST)) != 0)
		syscall(SYS_futex, &b->copiers, FUTEX_WAIT_PRIVATE, v, NULL,
			NULL, 0);
	__atomic_store_n(&b->commit_waiting, 0, __ATOMIC_SEQ_CST);
}

/* The active segment; owned by the commit thread once the log is open. */
struct log_segment {
	uint64_t base;
	int fd;
	uint64_t cap_bytes; /* file size (preallocated) */
	uint64_t created_ms;
	uint64_t data_end;    /* written bytes */
	uint64_t next_offset; /* written records */
	uint64_t last_time_ms;
	uint64_t next_index_pos;
	struct log_idx_entry *idx;
	uint32_t nidx, capidx;
};

/* A sealed segment, for retention and the disk budget. */
struct log_sealed {
	uint64_t base;
	uint64_t next_offset;
	uint64_t file_bytes;
	uint64_t sealed_ms;
};

struct alog_log {
	char dir[PATH_MAX];
	int dirfd;
	int lockfd;
	int headfd;
	struct alog_log_options o;
	struct log_meta meta;
	struct alog_recovery_report rep;

	pthread_mutex_t mu;
	pthread_cond_t work_cv;    /* commit thread waits for work */
	pthread_cond_t space_cv;   /* appenders wait for room or a roll */
	pthread_cond_t durable_cv; /* alog_log_sync waits */
	struct space_waiter *space_q, *space_q_tail;
	struct log_batch batches[LOG_INFLIGHT_MAX + 2];
	unsigned nbatches; /* commits_in_flight + 2 */
	struct log_batch *fill;
	/* Commit thread only: batches neither filling nor in flight, and
	 * the batches in flight, oldest first (a ring). */
	struct log_batch *spare[LOG_INFLIGHT_MAX + 2];
	unsigned nspare;
	/* Finished batches whose appenders are still to be called back:
	 * the callbacks run once the next batch is submitted, so they
	 * overlap its I/O. */
	struct log_batch *done[LOG_INFLIGHT_MAX + 2];
	unsigned ndone;
	struct log_batch *inflight[LOG_INFLIGHT_MAX];
	unsigned if_first, if_count;
	/* The commit thread, waiting for completions with room for another
	 * batch, is woken by appenders through kick_fd (an eventfd read
	 * queued in its ring). io_waiting and kicked are under mu. */
	int kick_fd;
	uint64_t kick_val;
	bool kick_armed;
	bool io_waiting;
	bool kicked;
	uint64_t next_offset;  /* next offset to hand out */
	uint64_t fill_seg_pos; /* position after fill's last byte */
	uint64_t fill_seg_cap; /* capacity of the segment fill targets */
	bool roll_pending;
	uint64_t roll_gen;
	int roll_error;
	bool sync_requested;
	bool closing;
	bool committer_idle;
	int failed;
	uint64_t written_offset;
	uint64_t durable_offset;
	uint64_t last_fsync_ns;
	uint64_t age_roll_retry_ns; /* after a failed roll by age */
	/* Base of the segment being sealed (no longer active, not yet in
	 * sealed[]), or UINT64_MAX: retention must not skip past it. */
	uint64_t sealing_base;
	struct log_sealed *sealed;
	size_t nsealed, capsealed;
	uint64_t disk_bytes;
	uint64_t commits, fsyncs, records, bytes;
	uint64_t commit_hist[ALOG_LOG_HIST_BUCKETS + 1];
	uint64_t commit_ns_sum;
	uint32_t inflight_max;

	/* prepare_segments: the preparer thread keeps LOG_PREP_NAME ready
	 * for the next roll. Under mu. */
	pthread_cond_t prep_cv; /* the preparer waits for work or a nap */
	enum { PREP_EMPTY, PREP_WORKING, PREP_READY, PREP_TAKEN } prep_state;
	int prep_fd;         /* PREP_READY: the prepared file, open */
	uint64_t prep_bytes; /* its size from the start of its preparation
			      * to its roll: counted in disk_bytes */
	uint64_t prep_retry_ns;
	unsigned prep_fails_in_row;
	uint64_t rolls_prepared, rolls_plain, prepare_errors;
	int prepare_last_error;
	pthread_t prep_thread;
	bool prep_thread_ok;
	size_t page_bytes;   /* commits are padded to a multiple of it */
	uint8_t *zeros;      /* page-aligned zeros: LOG_PREP_CHUNK bytes */

	pthread_mutex_t retain_mu;
	struct log_segment *active; /* commit thread only, after open */
	struct io_uring ring;
	bool ring_ok;
	pthread_t thread;
	bool thread_ok;
};

void alog_log_options_init(struct alog_log_options *o)
{
	memset(o, 0, sizeof(*o));
	o->durability = ALOG_DURABLE_FSYNC;
	o->fsync_interval_ms = 200;
	o->record_bytes_max = 1u << 20;
	o->segment_bytes_max = 64ull << 20;
	o->segment_age_max_ms = 3600 * 1000;
	o->batch_bytes_max = 4u << 20;
	o->batch_records_max = 65536;
	o->index_interval_bytes = 4096;
	o->commits_in_flight = 1;
}

const char *alog_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case -EDQUOT:
		return "log disk budget reached";
	case -ENOSPC:
		return "disk full";
	case -EMSGSIZE:
		return "record too large";
	case -ESPIPE:
		return "record offset does not follow the log";
	case -EBADMSG:
		return "damaged data";
	case -ENOTRECOVERABLE:
		return "not an alog log directory";
	case -ESHUTDOWN:
		return "log is closing";
	case -EWOULDBLOCK:
		return "log is open by another process";
	case -ERANGE:
		return "offset outside the log";
	case -EPROTONOSUPPORT:
		return "unsupported log format version";
	default:
		return strerror(-err);
	}
}

static int validate_options(const struct alog_log_options *o)
{
	if (o->record_bytes_max < 1 ||
	    o->record_bytes_max > ALOG_RECORD_BYTES_HARD_MAX)
		return -EINVAL;
	if (o->segment_bytes_max < (1u << 20) ||
	    o->segment_bytes_max > (1ull << 30) ||
	    o->segment_bytes_max < LOG_SEG_HEADER_BYTES + LOG_REC_HEADER_BYTES +
					   (uint64_t)o->record_bytes_max)
		return -EINVAL;
	if (o->batch_bytes_max < LOG_REC_HEADER_BYTES + o->record_bytes_max)
		return -EINVAL;
	if (o->batch_records_max < 1 || o->batch_records_max > (1u << 20))
		return -EINVAL;
	if (o->index_interval_bytes < 512 ||
	    o->index_interval_bytes > (1u << 20))
		return -EINVAL;
	if (o->durability != ALOG_DURABLE_FSYNC &&
	    o->durability != ALOG_DURABLE_WRITE)
		return -EINVAL;
	if (o->durability == ALOG_DURABLE_WRITE && o->fsync_interval_ms == 0)
		return -EINVAL;
	if (o->commits_in_flight > LOG_INFLIGHT_MAX)
		return -EINVAL;
	/* Padded commits must not overlap: one batch in flight. */
	if (o->prepare_segments && o->durability == ALOG_DURABLE_FSYNC &&
	    o->commits_in_flight > 1)
		return -EINVAL;
	return 0;
}

/* ---- Segments ------------------------------------------------------------ */

static int prepare_file(struct alog_log *log, bool pace);

static void segment_free(struct log_segment *seg)
{
	if (!seg)
		return;
	if (seg->fd >= 0)
		close(seg->fd);
	free(seg->idx);
	free(seg);
}

static int segment_index_add(struct log_segment *seg, uint64_t offset,
			     uint64_t pos, uint32_t interval)
{
	if (seg->nidx > 0 && pos < seg->next_index_pos)
		return 0;
	if (seg->nidx == seg->capidx) {
		uint32_t ncap = seg->capidx ? seg->capidx * 2 : 256;
		struct log_idx_entry *n = realloc(seg->idx, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		seg->idx = n;
		seg->capidx = ncap;
	}
	seg->idx[seg->nidx].rel_offset = (uint32_t)(offset - seg->base);
	seg->idx[seg->nidx].position = (uint32_t)pos;
	seg->nidx++;
	seg->next_index_pos = (pos / interval + 1) * interval;
	return 0;
}

/*
 * Make the segment for base: a new file (temp, fallocate), or with
 * prep_fd >= 0 the prepared LOG_PREP_NAME, whose zeros are already
 * written; then the header, fdatasync, rename, fsync of the directory.
 * Takes prep_fd (closed or kept by the segment either way).
 */
static int segment_create(struct alog_log *log, uint64_t base, int prep_fd,
			  struct log_segment **out)
{
	char tmp[LOG_NAME_BYTES + 8], name[LOG_NAME_BYTES];
	uint8_t page[4096];
	size_t hdr_len = LOG_SEG_HEADER_BYTES;
	struct log_seg_header sh;
	struct log_segment *seg;
	int fd = prep_fd, rc;

	log_seg_name(name, base, "seg");
	if (prep_fd >= 0)
		snprintf(tmp, sizeof(tmp), "%s", LOG_PREP_NAME);
	else
		snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	seg = calloc(1, sizeof(*seg));
	if (!seg) {
		rc = -ENOMEM;
		goto out_unlink;
	}
	seg->fd = -1;
	if (prep_fd < 0) {
		fd = openat(log->dirfd, tmp,
			    O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			rc = -errno;
			goto out_free;
		}
		rc = posix_fallocate(fd, 0, (off_t)log->o.segment_bytes_max);
		if (rc != 0) {
			rc = -rc;
			goto out_unlink;
		}
	}
	memset(&sh, 0, sizeof(sh));
	sh.base_offset = base;
	sh.created_ms = alog_now_ms();
	memcpy(sh.identity, log->meta.identity, 16);
	sh.segment_bytes_max = log->o.segment_bytes_max;
	memset(page, 0, sizeof(page));
	log_seg_header_encode(page, &sh);
	/* A prepared file's first page need not be read in: write it
	 * whole (its zeros are the bytes the file already has). */
	if (prep_fd >= 0)
		hdr_len = sizeof(page);
	rc = log_pwrite_all(fd, page, hdr_len, 0);
	if (rc < 0)
		goto out_unlink;
	if (fdatasync(fd) != 0 ||
	    renameat(log->dirfd, tmp, log->dirfd, name) != 0) {
		rc = -errno;
		goto out_unlink;
	}
	if (fsync(log->dirfd) != 0) {
		rc = -errno;
		unlinkat(log->dirfd, name, 0);
		goto out_close;
	}
	seg->fd = fd;
	seg->base = base;
	seg->cap_bytes = log->o.segment_bytes_max;
	seg->created_ms = sh.created_ms;
	seg->data_end = LOG_SEG_HEADER_BYTES;
	seg->next_offset = base;
	*out = seg;
	return 0;

out_unlink:
	unlinkat(log->dirfd, tmp, 0);
out_close:
	if (fd >= 0)
		close(fd);
out_free:
	free(seg);
	return rc;
}

/* Seal: cut the preallocated zeros, make it durable, write the index. */
static int segment_seal(struct alog_log *log, struct log_segment *seg,
			uint64_t *sealed_ms)
{
	char name[LOG_NAME_BYTES];
	struct log_idx_header ih;
	uint8_t *buf;
	size_t len;
	int rc;

	if (ftruncate(seg->fd, (off_t)seg->data_end) != 0 ||
	    fdatasync(seg->fd) != 0)
		return -errno;
	ih.count = seg->nidx;
	ih.base_offset = seg->base;
	ih.next_offset = seg->next_offset;
	ih.data_end = seg->data_end;
	ih.sealed_ms = alog_now_ms();
	ih.last_time_ms = seg->last_time_ms;
	len = LOG_IDX_HEADER_BYTES + (size_t)seg->nidx * LOG_IDX_ENTRY_BYTES;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	log_idx_encode(buf, &ih, seg->idx);
	log_seg_name(name, seg->base, "idx");
	rc = alog_file_replace(log->dir, name, buf, len);
	free(buf);
	*sealed_ms = ih.sealed_ms;
	return rc;
}

/*
 * Scan a segment from its header on, verifying every record, and fill
 * seg's data_end, next_offset and in-memory index. *bad_pos is where the
 * scan stopped on something that is not a clean end (0 if clean).
 */
static int segment_scan(struct alog_log *log, struct log_segment *seg,
			struct seg_scan *s, uint64_t *bad_pos, uint64_t *nrec)
{
	uint64_t pos = LOG_SEG_HEADER_BYTES, off = seg->base;

	*bad_pos = 0;
	*nrec = 0;
	for (;;) {
		struct log_rec_header h;
		enum log_rec_status st;
		const uint8_t *payload;
		const char *why;
		int err, rc;

		st = seg_scan_at(s, pos, off, &h, &payload, &why, &err);
		if (err)
			return err;
		if (st == LOG_REC_END)
			break;
		if (st != LOG_REC_OK) {
			*bad_pos = pos;
			break;
		}
		rc = segment_index_add(seg, off, pos,
				       log->o.index_interval_bytes);
		if (rc < 0)
			return rc;
		seg->last_time_ms = h.time_ms;
		pos += LOG_REC_HEADER_BYTES + h.len;
		off++;
		(*nrec)++;
	}
	seg->data_end = pos;
	seg->next_offset = off;
	return 0;
}

/* Open an existing segment file and check its header. */
static int segment_open(struct alog_log *log, uint64_t base, int flags,
			struct log_segment **out)
{
	char name[LOG_NAME_BYTES];
	uint8_t hdr[LOG_SEG_HEADER_BYTES];
	struct log_seg_header sh;
	struct log_segment *seg;
	struct stat st;
	int rc;

	seg = calloc(1, sizeof(*seg));
	if (!seg)
		return -ENOMEM;
	log_seg_name(name, base, "seg");
	seg->fd = openat(log->dirfd, name, flags | O_CLOEXEC);
	if (seg->fd < 0) {
		rc = -errno;
		goto out_free;
	}
	if (fstat(seg->fd, &st) != 0) {
		rc = -errno;
		goto out_free;
	}
	rc = log_pread_all(seg->fd, hdr, sizeof(hdr), 0);
	if (rc == 0)
		rc = log_seg_header_decode(hdr, sizeof(hdr), &sh);
	if (rc == -EIO)
		rc = -EBADMSG; /* shorter than a header */
	if (rc < 0)
		goto out_free;
	if (sh.base_offset != base ||
	    memcmp(sh.identity, log->meta.identity, 16)) {
		rc = -EBADMSG;
		goto out_free;
	}
	seg->base = base;
	seg->cap_bytes = (uint64_t)st.st_size;
	seg->created_ms = sh.created_ms;
	seg->data_end = LOG_SEG_HEADER_BYTES;
	seg->next_offset = base;
	*out = seg;
	return 0;
out_free:
	segment_free(seg);
	return rc;
}

/* ---- Recovery ------------------------------------------------------------ */

static int sealed_push(struct alog_log *log, const struct log_sealed *s)
{
	if (log->nsealed == log->capsealed) {
		size_t ncap = log->capsealed ? log->capsealed * 2 : 64;
		struct log_sealed *n = realloc(log->sealed, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		log->sealed = n;
		log->capsealed = ncap;
	}
	log->sealed[log->nsealed++] = *s;
	log->disk_bytes += s->file_bytes;
	return 0;
}

static void unlink_segment(struct alog_log *log, uint64_t base)
{
	char name[LOG_NAME_BYTES];

	log_seg_name(name, base, "seg");
	unlinkat(log->dirfd, name, 0);
	log_seg_name(name, base, "idx");
	unlinkat(log->dirfd, name, 0);
}

/* A valid index for base that agrees with the file, or -EBADMSG. */
static int load_index(struct alog_log *log, uint64_t base, uint64_t file_bytes,
		      struct log_idx_header *ih)
{
	char name[LOG_NAME_BYTES];
	uint8_t *buf;
	size_t len;
	int rc;

	log_seg_name(name, base, "idx");
	rc = log_read_file(log->dirfd, name, 64u << 20, &buf, &len);
	if (rc < 0)
		return rc;
	rc = log_idx_decode(buf, len, ih);
	free(buf);
	if (rc == 0 && (ih->base_offset != base || ih->data_end != file_bytes))
		rc = -EBADMSG;
	return rc;
}

/* Copy [from, to) of the active segment to quarantine/ for the operator. */
static int quarantine_bytes(struct alog_log *log, struct seg_scan *s,
			    uint64_t base, uint64_t from, uint64_t to)
{
	char qdir[PATH_MAX], name[64];
	uint8_t *buf;
	int rc;

	if (snprintf(qdir, sizeof(qdir), "%s/quarantine", log->dir) >=
	    (int)sizeof(qdir))
		return -ENAMETOOLONG;
	if (mkdir(qdir, 0755) != 0 && errno != EEXIST)
		return -errno;
	buf = malloc(to - from);
	if (!buf)
		return -ENOMEM;
	rc = log_pread_all(s->fd, buf, to - from, from);
	if (rc == 0) {
		snprintf(name, sizeof(name), "%020" PRIu64 ".seg.at-%" PRIu64,
			 base, from);
		rc = alog_file_replace(qdir, name, buf, to - from);
	}
	free(buf);
	return rc;
}

/* Recover the active segment: keep every valid record, cut a torn tail. */
static int recover_active(struct alog_log *log, struct log_segment *seg)
{
	struct seg_scan s;
	uint64_t bad_pos, nrec, end;
	int rc;

	rc = seg_scan_init(&s, seg->fd, ALOG_RECORD_BYTES_HARD_MAX);
	if (rc < 0)
		return rc;
	rc = segment_scan(log, seg, &s, &bad_pos, &nrec);
	if (rc < 0)
		goto out;
	log->rep.records_scanned += nrec;
	if (bad_pos == 0)
		bad_pos = seg->data_end; /* zeros from here, but check */
	rc = seg_scan_nonzero_end(&s, bad_pos, &end);
	if (rc < 0)
		goto out;
	if (end > bad_pos) {
		uint64_t fpos, foff;
		static const uint8_t zeros[65536];

		rc = seg_scan_resync(&s, bad_pos, end, seg->next_offset,
				     UINT64_MAX, &fpos, &foff);
		if (rc < 0)
			goto out;
		if (rc == 1) {
			rc = quarantine_bytes(log, &s, seg->base, bad_pos, end);
			if (rc < 0)
				goto out;
			log->rep.quarantined = true;
		}
		log->rep.bytes_dropped = end - bad_pos;
		log->rep.drop_position = bad_pos;
		log->rep.drop_segment_base = seg->base;
		for (uint64_t p = bad_pos; p < end;) {
			size_t n = end - p < sizeof(zeros) ? (size_t)(end - p) :
							     sizeof(zeros);

			rc = log_pwrite_all(seg->fd, zeros, n, p);
			if (rc < 0)
				goto out;
			p += n;
		}
	}
	/* Whatever we keep must be durable before anyone sees it. */
	if (fdatasync(seg->fd) != 0)
		rc = -errno;
	else
		rc = 0;
out:
	seg_scan_free(&s);
	return rc;
}

/*
 * Bring the directory to a consistent state and set up the active segment
 * (see "Recovery" in docs/log-format.md).
 */
static int log_recover(struct alog_log *log)
{
	uint64_t *bases = NULL;
	size_t n = 0, first = 0;
	struct log_segment *seg = NULL;
	int rc;

	rc = log_list_segments(log->dirfd, &bases, &n);
	if (rc < 0)
		return rc;
	/* Finish an interrupted retention. */
	while (first + 1 < n && bases[first + 1] <= log->meta.start_offset) {
		unlink_segment(log, bases[first]);
		log->rep.segments_removed++;
		first++;
	}
	/*
	 * A roll creates the next segment before the last batch of the old
	 * one is durable; a crash in between leaves an empty last segment
	 * after an unsealed one. Drop such empty segments so the unsealed
	 * one becomes active again and keeps its offsets dense.
	 */
	while (n - first >= 2) {
		struct log_idx_header ih;
		struct log_segment *last, *prev;
		struct stat st;
		uint64_t bad, nrec;
		struct seg_scan s;
		bool prev_sealed;

		rc = segment_open(log, bases[n - 2], O_RDONLY, &prev);
		if (rc < 0)
			break;
		prev_sealed = fstat(prev->fd, &st) == 0 &&
			      load_index(log, bases[n - 2],
					 (uint64_t)st.st_size, &ih) == 0 &&
			      ih.next_offset == bases[n - 1];
		segment_free(prev);
		if (prev_sealed)
			break;
		rc = segment_open(log, bases[n - 1], O_RDONLY, &last);
		if (rc < 0)
			break;
		rc = seg_scan_init(&s, last->fd, ALOG_RECORD_BYTES_HARD_MAX);
		if (rc == 0) {
			rc = segment_scan(log, last, &s, &bad, &nrec);
			seg_scan_free(&s);
		}
		segment_free(last);
		if (rc < 0 || nrec > 0)
			break;
		unlink_segment(log, bases[n - 1]);
		log->rep.segments_removed++;
		n--;
	}
	rc = 0;

	/* Sealed segments: header, and an index that agrees, else rebuild. */
	for (size_t i = first; i + 1 < n; i++) {
		struct log_idx_header ih;
		struct log_sealed sl;
		struct seg_scan s;
		uint64_t bad, nrec;

		rc = segment_open(log, bases[i], O_RDWR, &seg);
		if (rc < 0)
			goto out;
		if (load_index(log, bases[i], seg->cap_bytes, &ih) == 0 &&
		    ih.next_offset == bases[i + 1]) {
			sl.base = bases[i];
			sl.next_offset = ih.next_offset;
			sl.file_bytes = seg->cap_bytes;
			sl.sealed_ms = ih.sealed_ms;
		} else {
			rc = seg_scan_init(&s, seg->fd,
					   ALOG_RECORD_BYTES_HARD_MAX);
			if (rc < 0)
				goto out;
			rc = segment_scan(log, seg, &s, &bad, &nrec);
			seg_scan_free(&s);
			if (rc < 0)
				goto out;
			if (bad == 0 && seg->next_offset == bases[i + 1]) {
				uint64_t sealed_ms;

				rc = segment_seal(log, seg, &sealed_ms);
				if (rc < 0)
					goto out;
				log->rep.indexes_rebuilt++;
				sl.file_bytes = seg->data_end;
				sl.sealed_ms = sealed_ms;
			} else {
				/* Damaged: leave it for readers and verify. */
				sl.file_bytes = seg->cap_bytes;
				sl.sealed_ms = seg->created_ms;
			}
			sl.base = bases[i];
			sl.next_offset = bases[i + 1];
		}
		segment_free(seg);
		seg = NULL;
		rc = sealed_push(log, &sl);
		if (rc < 0)
			goto out;
	}

	if (first < n) {
		struct log_idx_header ih;

		rc = segment_open(log, bases[n - 1], O_RDWR, &seg);
		if (rc < 0)
			goto out;
		if (load_index(log, bases[n - 1], seg->cap_bytes, &ih) == 0) {
			/* The last segment is sealed: start a new one after it. */
			struct log_sealed sl = {
				.base = bases[n - 1],
				.next_offset = ih.next_offset,
				.file_bytes = seg->cap_bytes,
				.sealed_ms = ih.sealed_ms,
			};

			segment_free(seg);
			seg = NULL;
			rc = sealed_push(log, &sl);
			if (rc < 0)
				goto out;
			rc = segment_create(log, ih.next_offset, -1, &seg);
			if (rc < 0)
				goto out;
		} else {
			rc = recover_active(log, seg);
			if (rc < 0)
				goto out;
		}
	} else {
		/* A new log: with prepare_segments its first segment is
		 * zeroed here, before anything is appended (unpaced). */
		int pfd = log->o.prepare_segments ? prepare_file(log, false) :
						    -1;

		if (pfd < 0 && log->o.prepare_segments) {
			log->prepare_errors++; /* the plain way then */
			log->prepare_last_error = pfd;
		}

		rc = segment_create(log, log->meta.start_offset,
				    pfd >= 0 ? pfd : -1, &seg);
		if (rc < 0 && pfd >= 0) /* the plain way then */
			rc = segment_create(log, log->meta.start_offset, -1,
					    &seg);
		if (rc < 0)
			goto out;
	}
	log->rep.segments = log->nsealed + 1;
	log->active = seg;
	log->disk_bytes += seg->cap_bytes;
	log->next_offset = seg->next_offset;
	log->written_offset = seg->next_offset;
	log->durable_offset = seg->next_offset;
	log->fill_seg_pos = seg->data_end;
	log->fill_seg_cap = seg->cap_bytes;
	seg = NULL;
out:
	segment_free(seg);
	free(bases);
	return rc;
}

/* Remove leftovers of interrupted atomic writes. */
static void remove_tmp_files(struct alog_log *log)
{
	char name[LOG_NAME_BYTES + 8];

	/* Segment temp names are "<base>.seg.tmp" / "<base>.idx.tmp": they
	 * do not parse as segments, so list them by a second pass. */
	{
		int fd = dup(log->dirfd);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		struct dirent *de;

		if (!d) {
			if (fd >= 0)
				close(fd);
			return;
		}
		rewinddir(d);
		while ((de = readdir(d)) != NULL) {
			size_t len = strlen(de->d_name);

			if (len > 4 && len < sizeof(name) &&
			    strcmp(de->d_name + len - 4, ".tmp") == 0)
				unlinkat(log->dirfd, de->d_name, 0);
		}
		closedir(d);
	}
}

/* ---- Commit thread ------------------------------------------------------- */

static void batch_reset(struct log_batch *b)
{
	b->used = 0;
	b->nwaiters = 0;
	b->records = 0;
}

/* Update the active segment's in-memory index with a written batch. */
static int batch_index(struct alog_log *log, struct log_batch *b)
{
	struct log_segment *seg = b->seg;
	size_t p = 0;
	uint64_t off = b->first_offset;
	int rc;

	while (p < b->used) {
		uint32_t len = alog_get_u32(b->buf + p + 8);

		rc = segment_index_add(seg, off, b->file_pos + p,
				       log->o.index_interval_bytes);
		if (rc < 0)
			return rc;
		seg->last_time_ms = alog_get_u64(b->buf + p + 24);
		p += LOG_REC_HEADER_BYTES + len;
		off++;
	}
	return 0;
}

static void fail_waiters(struct log_batch *b, int status)
{
	for (uint32_t i = 0; i < b->nwaiters; i++)
		b->waiters[i].cb(b->waiters[i].arg, status,
				 b->waiters[i].first_offset);
}

/* Fail-stop: record the error once; every later append fails with it. */
static void log_fail(struct alog_log *log, int err)
{
	pthread_mutex_lock(&log->mu);
	if (!log->failed)
		log->failed = err;
	for (struct space_waiter *w = log->space_q; w; w = w->next)
		pthread_cond_signal(&w->cv);
	pthread_cond_broadcast(&log->space_cv);
	pthread_cond_broadcast(&log->durable_cv);
	pthread_mutex_unlock(&log->mu);
}

static uint64_t deadline_ms_from_now(struct alog_log *log, uint64_t now_ns)
{
	uint64_t wait_ms = 1000;

	if (log->o.durability == ALOG_DURABLE_WRITE &&
	    log->written_offset > log->durable_offset) {
		uint64_t due = log->last_fsync_ns +
			       (uint64_t)log->o.fsync_interval_ms * 1000000u;

		wait_ms = due > now_ns ? (due - now_ns) / 1000000u + 1 : 0;
	}
	if (log->o.segment_age_max_ms > 0 &&
	    log->fill_seg_pos > LOG_SEG_HEADER_BYTES) {
		uint64_t now = alog_now_ms();
		uint64_t due =
			log->active->created_ms + log->o.segment_age_max_ms;
		uint64_t w = due > now ? due - now : 0;

		if (now_ns < log->age_roll_retry_ns &&
		    w < (log->age_roll_retry_ns - now_ns) / 1000000u + 1)
			w = (log->age_roll_retry_ns - now_ns) / 1000000u + 1;
		if (w < wait_ms)
			wait_ms = w;
	}
	return wait_ms;
}

static void cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu,
			 uint64_t wait_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(wait_ms / 1000);
	ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(cv, mu, &ts);
}

static void cond_wait_ns(pthread_cond_t *cv, pthread_mutex_t *mu,
			 uint64_t wait_ns)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(wait_ns / 1000000000ull);
	ts.tv_nsec += (long)(wait_ns % 1000000000ull);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(cv, mu, &ts);
}

/* ---- Preparer thread (prepare_segments) ---------------------------------- */

/*
 * Pause as long as the last zeroing write took (the preparer keeps the
 * disk at most half busy; at most 100 ms). False when the log closes.
 */
static bool prep_nap(struct alog_log *log, uint64_t took_ns)
{
	bool go;

	if (took_ns > 100000000ull)
		took_ns = 100000000ull;
	pthread_mutex_lock(&log->mu);
	if (!log->closing && !log->failed)
		cond_wait_ns(&log->prep_cv, &log->mu, took_ns);
	go = !log->closing && !log->failed;
	pthread_mutex_unlock(&log->mu);
	return go;
}

/*
 * Make LOG_PREP_NAME: allocated to segment_bytes_max and zeroed by real
 * writes (O_DIRECT where the filesystem takes it: the zeros need not pass
 * through the page cache), then one fdatasync. Returns its fd, or -errno
 * (-ECANCELED when the log closed meanwhile) with the file deleted.
 */
static int prepare_file(struct alog_log *log, bool pace)
{
	uint64_t cap = log->o.segment_bytes_max;
	int fd, dfd, rc = 0;

	fd = openat(log->dirfd, LOG_PREP_NAME,
		    O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	dfd = openat(log->dirfd, LOG_PREP_NAME, O_WRONLY | O_DIRECT | O_CLOEXEC);
	rc = -posix_fallocate(fd, 0, (off_t)cap);
	for (uint64_t pos = 0; rc == 0 && pos < cap;) {
		size_t n = cap - pos < LOG_PREP_CHUNK ? (size_t)(cap - pos) :
							  LOG_PREP_CHUNK;
		uint64_t t0 = alog_mono_ns();

		if (log_fault_prepare_hook &&
		    (rc = log_fault_prepare_hook()) < 0)
			break;
		if (dfd >= 0 && n % log->page_bytes == 0) {
			rc = log_pwrite_all(dfd, log->zeros, n, pos);
			if (rc == -EINVAL) { /* O_DIRECT refused after all */
				close(dfd);
				dfd = -1;
				rc = 0;
				continue;
			}
		} else {
			/* Paced like the direct writes: each chunk on the
			 * disk before the nap, and out of the page cache. */
			rc = log_pwrite_all(fd, log->zeros, n, pos);
			if (rc == 0 &&
			    sync_file_range(fd, (off_t)pos, (off_t)n,
					    SYNC_FILE_RANGE_WAIT_BEFORE |
						    SYNC_FILE_RANGE_WRITE |
						    SYNC_FILE_RANGE_WAIT_AFTER) !=
				    0)
				rc = -errno;
			if (rc == 0)
				(void)posix_fadvise(fd, (off_t)pos, (off_t)n,
						    POSIX_FADV_DONTNEED);
		}
		if (rc < 0)
			break;
		pos += n;
		if (pace && !prep_nap(log, alog_mono_ns() - t0))
			rc = -ECANCELED;
	}
	if (rc == 0 && fdatasync(fd) != 0)
		rc = -errno;
	if (dfd >= 0)
		close(dfd);
	if (rc < 0) {
		close(fd);
		unlinkat(log->dirfd, LOG_PREP_NAME, 0);
		return rc;
	}
	return fd;
}

/*
 * Room to prepare a segment: the budget must hold it and one more plain
 * segment besides (a roll can come while it is being made). Under mu.
 */
static bool prep_budget_room(const struct alog_log *log)
{
	return log->o.disk_budget_bytes == 0 ||
	       log->disk_bytes + 2 * log->o.segment_bytes_max <=
		       log->o.disk_budget_bytes;
}

/* And the filesystem must have twice a segment free, so the preparer
 * never takes the last space a roll or a seal needs. Without mu. */
static bool prep_fs_room(const struct alog_log *log)
{
	struct statvfs vfs;

	if (fstatvfs(log->dirfd, &vfs) != 0)
		return true; /* fallocate will tell */
	return (uint64_t)vfs.f_bavail * vfs.f_frsize >=
	       2 * log->o.segment_bytes_max;
}

/*
 * Keep the next segment ready: whenever there is none, the log is healthy
 * and there is room (prep_budget_room, prep_fs_room), make one; its bytes
 * count in disk_bytes from the start. After a failure wait 1 s, doubling up to 64 s while
 * failures follow each other. Retention frees space without a signal, so
 * the room is looked at again every second.
 */
static void *prep_main(void *arg)
{
	struct alog_log *log = arg;

	pthread_mutex_lock(&log->mu);
	while (!log->closing) {
		uint64_t now = alog_mono_ns();
		int rc;

		bool fs_room;

		if (log->prep_state != PREP_EMPTY || log->failed ||
		    now < log->prep_retry_ns || !prep_budget_room(log)) {
			cond_wait_ms(&log->prep_cv, &log->mu, 1000);
			continue;
		}
		pthread_mutex_unlock(&log->mu);
		fs_room = prep_fs_room(log);
		pthread_mutex_lock(&log->mu);
		if (!fs_room) {
			cond_wait_ms(&log->prep_cv, &log->mu, 1000);
			continue;
		}
		if (log->closing || log->prep_state != PREP_EMPTY ||
		    log->failed || !prep_budget_room(log))
			continue;
		log->prep_state = PREP_WORKING;
		log->prep_bytes = log->o.segment_bytes_max;
		log->disk_bytes += log->prep_bytes;
		pthread_mutex_unlock(&log->mu);
		rc = prepare_file(log, true);
		pthread_mutex_lock(&log->mu);
		/* A roll may be waiting for this one (commit_main). */
		pthread_cond_broadcast(&log->work_cv);
		if (rc >= 0) {
			log->prep_fd = rc;
			log->prep_state = PREP_READY;
			log->prep_fails_in_row = 0;
			continue;
		}
		log->prep_state = PREP_EMPTY;
		log->disk_bytes -= log->prep_bytes;
		log->prep_bytes = 0;
		if (rc != -ECANCELED) {
			unsigned k = log->prep_fails_in_row < 6 ?
					     log->prep_fails_in_row :
					     6;

			log->prepare_errors++;
			log->prepare_last_error = rc;
			log->prep_fails_in_row++;
			log->prep_retry_ns =
				alog_mono_ns() + (1000000000ull << k);
		}
	}
	pthread_mutex_unlock(&log->mu);
	return NULL;
}

/* Queue the read of kick_fd that lets an appender wake the commit thread
 * out of its wait for completions. */
static void kick_arm(struct alog_log *log)
{
	struct io_uring_sqe *sqe;

	if (log->kick_armed)
		return;
	sqe = io_uring_get_sqe(&log->ring);
	if (!sqe)
		return; /* the ring is full of I/O; a completion will wake us */
	io_uring_prep_read(sqe, log->kick_fd, &log->kick_val,
			   sizeof(log->kick_val), 0);
	io_uring_sqe_set_data64(sqe, LOG_UD_KICK);
	if (io_uring_submit(&log->ring) == 1)
		log->kick_armed = true;
}

/*
 * Submit a batch: write at its position, linked to an fdatasync when it
 * syncs. Nothing is waited for here. HEAD is not part of the submission:
 * batches complete in any order and HEAD may only move once every earlier
 * batch is durable, so batch_finish writes it, in offset order.
 */
static void batch_submit(struct alog_log *log, struct log_batch *b)
{
	uint64_t idx = (uint64_t)(b - log->batches);
	struct io_uring_sqe *sqe;
	unsigned n = 0;
	int rc;

	b->err = 0;
	b->res[0] = b->res[1] = 0;
	b->cqes = 0;
	b->submit_ns = alog_mono_ns();
	if (b->sync && log_fault_fsync_hook &&
	    (rc = log_fault_fsync_hook()) < 0) {
		if (b->used > 0)
			(void)log_pwrite_all(b->seg->fd, b->buf, b->used,
					     b->file_pos);
		b->err = rc;
		b->done_ns = alog_mono_ns();
		return;
	}
	b->pad = 0;
	if (b->used > 0 && log->o.prepare_segments) {
		/* To the end of the last page, so the kernel need not read
		 * that page in first (its zeros are on disk, written). */
		uint64_t end = b->file_pos + b->used;

		b->pad = (size_t)((log->page_bytes - end % log->page_bytes) %
				  log->page_bytes);
		if (end + b->pad > b->seg->cap_bytes)
			b->pad = (size_t)(b->seg->cap_bytes - end);
	}
	if (b->used > 0) {
		sqe = io_uring_get_sqe(&log->ring);
		if (b->pad > 0) {
			b->iov[0].iov_base = b->buf;
			b->iov[0].iov_len = b->used;
			b->iov[1].iov_base = log->zeros;
			b->iov[1].iov_len = b->pad;
			io_uring_prep_writev(sqe, b->seg->fd, b->iov, 2,
					     b->file_pos);
		} else {
			io_uring_prep_write(sqe, b->seg->fd, b->buf,
					    (unsigned)b->used, b->file_pos);
		}
		if (b->sync)
			sqe->flags |= IOSQE_IO_LINK;
		io_uring_sqe_set_data64(sqe, idx << 2 | LOG_UD_WRITE);
		n++;
	}
	if (b->sync) {
		sqe = io_uring_get_sqe(&log->ring);
		io_uring_prep_fsync(sqe, b->seg->fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data64(sqe, idx << 2 | LOG_UD_SYNC);
		n++;
	}
	if (n == 0) {
		b->done_ns = b->submit_ns;
		return;
	}
	do
		rc = io_uring_submit(&log->ring);
	while (rc == -EINTR);
	if (rc >= 0 && (unsigned)rc < n)
		rc = -EIO; /* part of the batch is left in the ring */
	if (rc < 0) {
		/* What the ring holds of this batch can no longer be
		 * accounted for: stop the log now, before anything later
		 * is submitted behind it. */
		b->err = rc;
		b->done_ns = alog_mono_ns();
		log_fail(log, rc);
		return;
	}
	b->cqes = n;
}

/* Take the completions that are there, or (wait) block for one first. */
static int reap(struct alog_log *log, bool wait)
{
	struct io_uring_cqe *cqe;
	int rc;

	if (wait) {
		do
			rc = io_uring_wait_cqe(&log->ring, &cqe);
		while (rc == -EINTR);
		if (rc < 0)
			return rc;
	}
	while (io_uring_peek_cqe(&log->ring, &cqe) == 0) {
		uint64_t ud = io_uring_cqe_get_data64(cqe);
		unsigned what = (unsigned)(ud & 3);
		struct log_batch *b;

		if (what == LOG_UD_KICK) {
			log->kick_armed = false;
		} else if ((ud >> 2) < log->nbatches) {
			b = &log->batches[ud >> 2];
			if (b->cqes > 0) {
				b->res[what] = cqe->res;
				if (--b->cqes == 0)
					b->done_ns = alog_mono_ns();
			}
		}
		io_uring_cqe_seen(&log->ring, cqe);
	}
	return 0;
}

/* Result of a batch whose completions are all in; a short write is
 * finished here by hand (it broke the link, so the fdatasync too). */
static int batch_result(struct log_batch *b)
{
	int rc;

	if (b->err)
		return b->err;
	/* Interrupted (a stopped and continued process): do it by hand. */
	if (b->used > 0 && (b->res[0] == -EINTR || b->res[0] == -EAGAIN))
		b->res[0] = 0;
	if (b->used > 0 && b->res[0] < 0)
		return b->res[0];
	if (b->used > 0 && (size_t)b->res[0] < b->used + b->pad) {
		/* The zeros of the pad are on disk already: only records
		 * need finishing. */
		if ((size_t)b->res[0] < b->used) {
			rc = log_pwrite_all(b->seg->fd, b->buf + b->res[0],
					    b->used - (size_t)b->res[0],
					    b->file_pos + (uint64_t)b->res[0]);
			if (rc < 0)
				return rc;
		}
		if (b->sync && fdatasync(b->seg->fd) != 0)
			return -errno;
		return 0;
	}
	if (b->sync && (b->res[1] == -EINTR || b->res[1] == -EAGAIN))
		return fdatasync(b->seg->fd) == 0 ? 0 : -errno;
	if (b->sync && b->res[1] < 0)
		return b->res[1];
	return 0;
}

/*
 * The oldest batch in flight is complete: make it visible (index, HEAD),
 * seal the segment it closed, count it, and call its appenders back. After
 * a failure every later batch fails with the first error, whatever its own
 * I/O did, so nothing after a hole is ever acknowledged.
 */
static void batch_finish(struct alog_log *log, struct log_batch *b)
{
	struct log_segment *old = b->seal;
	uint8_t head[LOG_HEAD_BYTES];
	int rc, failed;

	pthread_mutex_lock(&log->mu);
	failed = log->failed;
	pthread_mutex_unlock(&log->mu);
	rc = failed ? failed : batch_result(b);
	if (rc == 0 && b->used > 0) {
		b->seg->data_end = b->file_pos + b->used;
		b->seg->next_offset = b->next_offset;
		rc = batch_index(log, b);
	}
	if (rc == 0) {
		log_head_encode(head,
				b->used ? b->next_offset : log->written_offset,
				alog_now_ms());
		rc = log_pwrite_all(log->headfd, head, LOG_HEAD_BYTES, 0);
	}
	if (rc == 0 && old) {
		struct log_sealed sl;

		rc = segment_seal(log, old, &sl.sealed_ms);
		if (rc == 0) {
			sl.base = old->base;
			sl.next_offset = old->next_offset;
			sl.file_bytes = old->data_end;
			pthread_mutex_lock(&log->mu);
			log->disk_bytes -= old->cap_bytes;
			rc = sealed_push(log, &sl);
			log->sealing_base = UINT64_MAX;
			pthread_mutex_unlock(&log->mu);
		}
	}
	if (old) {
		segment_free(old);
		b->seal = NULL;
	}
	b->status = rc;
	if (rc < 0) {
		log_fail(log, rc);
		return;
	}

	pthread_mutex_lock(&log->mu);
	log->commits += b->used > 0;
	{
		uint64_t dt = b->done_ns - b->submit_ns;
		int hb = 0;

		while (hb < ALOG_LOG_HIST_BUCKETS &&
		       dt > (ALOG_LOG_HIST_BASE_NS << hb))
			hb++;
		log->commit_hist[hb]++;
		log->commit_ns_sum += dt;
	}
	log->fsyncs += b->sync;
	log->bytes += b->used;
	log->records += b->records;
	if (b->used > 0)
		log->written_offset = b->next_offset;
	if (b->sync) {
		log->durable_offset = log->written_offset;
		log->last_fsync_ns = alog_mono_ns();
	}
	pthread_cond_broadcast(&log->durable_cv);
	pthread_mutex_unlock(&log->mu);
}

/* Finish the complete batches at the front of the in-flight ring, in
 * offset order; their callbacks wait in done[]. */
static void finish_ready(struct alog_log *log)
{
	while (log->if_count > 0) {
		struct log_batch *b = log->inflight[log->if_first];

		if (b->cqes > 0)
			break;
		batch_finish(log, b);
		log->if_first = (log->if_first + 1) % LOG_INFLIGHT_MAX;
		log->if_count--;
		log->done[log->ndone++] = b;
	}
}

/* Call the finished batches' appenders back (status 0: durable), in
 * offset order, and give the batches back as spares. Without mu. */
static void run_done(struct alog_log *log)
{
	for (unsigned i = 0; i < log->ndone; i++) {
		struct log_batch *b = log->done[i];

		fail_waiters(b, b->status);
		batch_reset(b);
		log->spare[log->nspare++] = b;
	}
	log->ndone = 0;
}

/*
 * Called with mu held and batches in flight: sleep until a completion (or,
 * with kickable, an appender's kick), then finish what is complete.
 * Returns with mu held.
 */
static void wait_io(struct alog_log *log, bool kickable)
{
	int rc;

	log->io_waiting = kickable;
	log->kicked = false;
	pthread_mutex_unlock(&log->mu);
	run_done(log);
	if (kickable)
		kick_arm(log);
	rc = reap(log, true);
	if (rc < 0) {
		/* The ring itself failed: nothing in flight can be trusted
		 * to complete, so stop the log. */
		log_fail(log, rc);
		for (unsigned i = 0; i < log->if_count; i++) {
			struct log_batch *b = log->inflight
				[(log->if_first + i) % LOG_INFLIGHT_MAX];

			b->cqes = 0;
			b->done_ns = alog_mono_ns();
		}
	}
	finish_ready(log);
	pthread_mutex_lock(&log->mu);
	log->io_waiting = false;
}

static void *commit_main(void *arg)
{
	struct alog_log *log = arg;
	unsigned depth = log->nbatches - 2;

	pthread_mutex_lock(&log->mu);
	for (;;) {
		struct log_segment *old = NULL, *fresh = NULL;
		struct log_batch *take;
		bool sync, serial, roll_age = false, fsync_due = false;
		unsigned in_flight;
		uint64_t now_ns = alog_mono_ns(), wait_ms;
		int rc;

		if (log->failed) {
			/* Let what is in flight come back (its appenders are
			 * failed in order), fail everything still queued,
			 * then wait for close. */
			struct log_batch *b = log->fill;

			if (log->if_count > 0) {
				wait_io(log, false);
				continue;
			}
			if (log->ndone > 0) {
				pthread_mutex_unlock(&log->mu);
				run_done(log);
				pthread_mutex_lock(&log->mu);
				continue;
			}
			if (b->nwaiters > 0) {
				struct log_batch copy = *b;

				batch_reset(b);
				pthread_mutex_unlock(&log->mu);
				/* A callback may free what a copier still reads. */
				batch_wait_copiers(b);
				fail_waiters(&copy, log->failed);
				pthread_mutex_lock(&log->mu);
				pthread_cond_broadcast(&log->space_cv);
				continue;
			}
			if (log->closing)
				break;
			log->committer_idle = true;
			pthread_cond_wait(&log->work_cv, &log->mu);
			log->committer_idle = false;
			continue;
		}
		wait_ms = deadline_ms_from_now(log, now_ns);
		if (log->o.segment_age_max_ms > 0 && wait_ms == 0 &&
		    log->fill_seg_pos > LOG_SEG_HEADER_BYTES &&
		    now_ns >= log->age_roll_retry_ns &&
		    alog_now_ms() >=
			    log->active->created_ms + log->o.segment_age_max_ms)
			roll_age = true;
		if (log->o.durability == ALOG_DURABLE_WRITE &&
		    log->written_offset > log->durable_offset &&
		    (wait_ms == 0 || log->sync_requested || log->closing))
			fsync_due = true;
		if (log->fill->used == 0 && !log->roll_pending && !roll_age &&
		    !fsync_due) {
			if (log->if_count > 0) {
				wait_io(log, log->if_count < depth);
				continue;
			}
			if (log->ndone > 0) {
				pthread_mutex_unlock(&log->mu);
				run_done(log);
				pthread_mutex_lock(&log->mu);
				continue;
			}
			if (log->closing)
				break;
			log->committer_idle = true;
			cond_wait_ms(&log->work_cv, &log->mu, wait_ms);
			log->committer_idle = false;
			continue;
		}
		/*
		 * Batches overlap only in fsync mode and away from rolls: a
		 * roll creates and seals segments around one batch, which
		 * stays alone in flight until the old segment is sealed (a
		 * crash must never find records in the new segment while the
		 * old one's last batch is not durable: recovery would see a
		 * damaged sealed segment, not a torn tail); and in write mode
		 * an fdatasync must follow every earlier write.
		 */
		serial = log->o.durability != ALOG_DURABLE_FSYNC ||
			 log->roll_pending || roll_age || fsync_due ||
			 log->sealing_base != UINT64_MAX;
		if (log->if_count > 0 && (serial || log->if_count == depth)) {
			wait_io(log, false);
			continue;
		}
		if (log->nspare == 0 ||
		    ((log->roll_pending || roll_age) && log->ndone > 0)) {
			/* Spares wait for their callbacks; and a roll's
			 * segment creation should not delay callbacks. */
			pthread_mutex_unlock(&log->mu);
			run_done(log);
			pthread_mutex_lock(&log->mu);
			continue;
		}
		if (roll_age)
			log->roll_pending = true;

		if (log->roll_pending) {
			uint64_t base = log->next_offset;
			/* A prepared segment's bytes are counted already
			 * (disk_bytes holds them from the start of its
			 * preparation): it needs no room. */
			int prep_fd = log->prep_state == PREP_READY ?
					      log->prep_fd :
					      -1;
			bool over_budget =
				prep_fd < 0 && log->o.disk_budget_bytes > 0 &&
				log->disk_bytes + log->o.segment_bytes_max >
					log->o.disk_budget_bytes;
			bool prepared = false;

			if (over_budget && log->prep_state == PREP_WORKING) {
				/* The budget's last room is the segment being
				 * prepared: wait for it (made, or failed and
				 * its room given back) rather than refuse. */
				cond_wait_ms(&log->work_cv, &log->mu, 100);
				continue;
			}
			if (prep_fd >= 0) {
				log->prep_fd = -1;
				log->prep_state = PREP_TAKEN;
			}
			pthread_mutex_unlock(&log->mu);
			if (over_budget) {
				rc = -EDQUOT;
			} else {
				rc = segment_create(log, base, prep_fd, &fresh);
				prepared = rc == 0 && prep_fd >= 0;
				/* The prepared file failed: the plain way, in
				 * the room it held. */
				if (rc < 0 && prep_fd >= 0)
					rc = segment_create(log, base, -1,
							    &fresh);
			}
			pthread_mutex_lock(&log->mu);
			if (prep_fd >= 0) {
				/* Renamed, or deleted on failure: its bytes
				 * are the new segment's, or nobody's. */
				if (rc < 0)
					log->disk_bytes -= log->prep_bytes;
				log->prep_state = PREP_EMPTY;
				log->prep_bytes = 0;
				pthread_cond_signal(&log->prep_cv);
			} else if (rc == 0) {
				log->disk_bytes += fresh->cap_bytes;
			}
			if (rc == 0) {
				if (prepared)
					log->rolls_prepared++;
				else
					log->rolls_plain++;
			}
			if (rc < 0) {
				log->roll_pending = false;
				log->roll_error = rc;
				log->roll_gen++;
				log->age_roll_retry_ns = now_ns + 1000000000ull;
				pthread_cond_broadcast(&log->space_cv);
				if (log->fill->used == 0 && !fsync_due) {
					/* Don't spin on a roll that keeps failing. */
					if (roll_age)
						cond_wait_ms(&log->work_cv,
							     &log->mu, 1000);
					continue;
				}
			}
		}

		/* Swap the fill batch for a spare. */
		take = log->fill;
		log->fill = log->spare[--log->nspare];
		batch_reset(log->fill);
		if (fresh) {
			old = log->active;
			log->sealing_base = old->base;
			log->active = fresh;
			log->fill_seg_pos = LOG_SEG_HEADER_BYTES;
			log->fill_seg_cap = fresh->cap_bytes;
			log->roll_pending = false;
			log->roll_error = 0;
			log->roll_gen++;
		}
		log->fill->seg = log->active;
		log->fill->file_pos = log->fill_seg_pos;
		log->fill->first_offset = log->next_offset;
		pthread_cond_broadcast(&log->space_cv);
		if (log->space_q)
			pthread_cond_signal(&log->space_q->cv);
		sync = log->o.durability == ALOG_DURABLE_FSYNC || old != NULL ||
		       fsync_due;
		log->sync_requested = false;
		pthread_mutex_unlock(&log->mu);

		batch_wait_copiers(take);
		take->sync = sync;
		take->seal = old;
		batch_submit(log, take);
		log->inflight[(log->if_first + log->if_count) %
			      LOG_INFLIGHT_MAX] = take;
		log->if_count++;
		in_flight = log->if_count;
		/* The previous batches' callbacks, and whatever else came
		 * back meanwhile, while this batch is on its way to disk. */
		run_done(log);
		if (reap(log, false) == 0)
			finish_ready(log);
		pthread_mutex_lock(&log->mu);
		if (in_flight > log->inflight_max)
			log->inflight_max = in_flight;
	}
	pthread_mutex_unlock(&log->mu);
	return NULL;
}

/* ---- Open / close -------------------------------------------------------- */

static int log_init_meta(struct alog_log *log, bool create)
{
	uint8_t buf[LOG_META_BYTES];
	int rc;

	rc = log_read_meta(log->dirfd, &log->meta);
	if (rc != -ENOENT)
		return rc;
	if (!create)
		return -ENOTRECOVERABLE;
	/* Only an empty directory becomes a new log. */
	{
		int fd = dup(log->dirfd);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		struct dirent *de;
		bool foreign = false;

		if (!d) {
			if (fd >= 0)
				close(fd);
			return -errno;
		}
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") &&
			    strcmp(de->d_name, "..") &&
			    strcmp(de->d_name, "LOCK"))
				foreign = true;
		}
		closedir(d);
		if (foreign)
			return -ENOTRECOVERABLE;
	}
	rc = alog_random_bytes(log->meta.identity, 16);
	if (rc < 0)
		return rc;
	log->meta.created_ms = alog_now_ms();
	log->meta.start_offset = log->o.first_offset;
	log_meta_encode(buf, &log->meta);
	return alog_file_replace(log->dir, "LOG", buf, sizeof(buf));
}

struct alog_log *alog_log_open(const char *dir,
			       const struct alog_log_options *opts, int *err)
{
	struct alog_log *log;
	uint8_t head[LOG_HEAD_BYTES];
	int rc;

	log = calloc(1, sizeof(*log));
	if (!log) {
		*err = -ENOMEM;
		return NULL;
	}
	log->dirfd = log->lockfd = log->headfd = log->kick_fd = -1;
	log->prep_fd = -1;
	log->sealing_base = UINT64_MAX;
	pthread_mutex_init(&log->mu, NULL);
	pthread_mutex_init(&log->retain_mu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&log->work_cv, &ca);
		pthread_cond_init(&log->prep_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	pthread_cond_init(&log->space_cv, NULL);
	pthread_cond_init(&log->durable_cv, NULL);
	if (opts)
		log->o = *opts;
	else
		alog_log_options_init(&log->o);
	rc = validate_options(&log->o);
	if (rc < 0)
		goto out_close;
	if (snprintf(log->dir, sizeof(log->dir), "%s", dir) >=
	    (int)sizeof(log->dir)) {
		rc = -ENAMETOOLONG;
		goto out_close;
	}
	if (log->o.create && mkdir(dir, 0755) != 0 && errno != EEXIST) {
		rc = -errno;
		goto out_close;
	}
	log->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (log->dirfd < 0) {
		rc = -errno;
		goto out_close;
	}
	if (faccessat(log->dirfd, "LOG", F_OK, 0) != 0 && !log->o.create) {
		rc = -ENOTRECOVERABLE;
		goto out_close;
	}
	log->lockfd =
		openat(log->dirfd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (log->lockfd < 0) {
		rc = -errno;
		goto out_close;
	}
	if (flock(log->lockfd, LOCK_EX | LOCK_NB) != 0) {
		rc = -errno;
		goto out_close;
	}
	rc = log_init_meta(log, log->o.create);
	if (rc < 0)
		goto out_close;
	remove_tmp_files(log);
	log->headfd =
		openat(log->dirfd, "HEAD", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (log->headfd < 0) {
		rc = -errno;
		goto out_close;
	}
	log->nbatches = (log->o.durability == ALOG_DURABLE_FSYNC &&
			 log->o.commits_in_flight > 1 ?
				 log->o.commits_in_flight :
				 1) +
			2;
	log->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (log->kick_fd < 0) {
		rc = -errno;
		goto out_close;
	}
	for (unsigned i = 0; i < log->nbatches; i++) {
		struct log_batch *b = &log->batches[i];

		b->cap = log->o.batch_bytes_max;
		b->buf = malloc(b->cap);
		b->waiters =
			malloc(sizeof(*b->waiters) * log->o.batch_records_max);
		if (!b->buf || !b->waiters) {
			rc = -ENOMEM;
			goto out_close;
		}
	}
	if (log->o.prepare_segments) {
		long pg = sysconf(_SC_PAGESIZE);

		log->page_bytes = pg >= 512 && pg <= 65536 ? (size_t)pg : 4096;
		if (posix_memalign((void **)&log->zeros, log->page_bytes,
				   LOG_PREP_CHUNK) != 0) {
			log->zeros = NULL;
			rc = -ENOMEM;
			goto out_close;
		}
		memset(log->zeros, 0, LOG_PREP_CHUNK);
	}
	rc = log_recover(log);
	if (rc < 0)
		goto out_close;
	log_head_encode(head, log->next_offset, alog_now_ms());
	rc = log_pwrite_all(log->headfd, head, sizeof(head), 0);
	if (rc < 0)
		goto out_close;
	log->fill = &log->batches[0];
	for (unsigned i = 1; i < log->nbatches; i++)
		log->spare[log->nspare++] = &log->batches[i];
	log->fill->seg = log->active;
	log->fill->file_pos = log->fill_seg_pos;
	log->fill->first_offset = log->next_offset;
	log->last_fsync_ns = alog_mono_ns();
	rc = io_uring_queue_init(32, &log->ring, 0);
	if (rc < 0)
		goto out_close;
	log->ring_ok = true;
	rc = -pthread_create(&log->thread, NULL, commit_main, log);
	if (rc < 0)
		goto out_close;
	log->thread_ok = true;
	if (log->o.prepare_segments) {
		rc = -pthread_create(&log->prep_thread, NULL, prep_main, log);
		if (rc < 0)
			goto out_close;
		log->prep_thread_ok = true;
	}
	return log;

out_close:
	alog_log_close(log);
	*err = rc;
	return NULL;
}

void alog_log_close(struct alog_log *log)
{
	if (!log)
		return;
	if (log->prep_thread_ok) {
		pthread_mutex_lock(&log->mu);
		log->closing = true;
		pthread_cond_broadcast(&log->prep_cv);
		pthread_mutex_unlock(&log->mu);
		pthread_join(log->prep_thread, NULL);
	}
	if (log->thread_ok) {
		pthread_mutex_lock(&log->mu);
		log->closing = true;
		pthread_cond_broadcast(&log->work_cv);
		pthread_cond_broadcast(&log->space_cv);
		for (struct space_waiter *w = log->space_q; w; w = w->next)
			pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&log->mu);
		pthread_join(log->thread, NULL);
	}
	if (log->ring_ok)
		io_uring_queue_exit(&log->ring);
	if (log->prep_fd >= 0) { /* made for a roll that never came */
		close(log->prep_fd);
		unlinkat(log->dirfd, LOG_PREP_NAME, 0);
	}
	free(log->zeros);
	segment_free(log->active);
	for (unsigned i = 0; i < log->nbatches; i++) {
		free(log->batches[i].buf);
		free(log->batches[i].waiters);
	}
	free(log->sealed);
	if (log->kick_fd >= 0)
		close(log->kick_fd);
	if (log->headfd >= 0)
		close(log->headfd);
	if (log->lockfd >= 0)
		close(log->lockfd); /* releases the flock */
	if (log->dirfd >= 0)
		close(log->dirfd);
	pthread_mutex_destroy(&log->mu);
	pthread_mutex_destroy(&log->retain_mu);
	pthread_cond_destroy(&log->work_cv);
	pthread_cond_destroy(&log->prep_cv);
	pthread_cond_destroy(&log->space_cv);
	pthread_cond_destroy(&log->durable_cv);
	free(log);
}

const struct alog_recovery_report *alog_log_recovery(const struct alog_log *log)
{
	return &log->rep;
}

/* ---- Append -------------------------------------------------------------- */

/* Leave the queue of appenders waiting for batch space; wake the next. */
static void space_queue_leave(struct alog_log *log, struct space_waiter *me)
{
	struct space_waiter **pp = &log->space_q;

	while (*pp && *pp != me)
		pp = &(*pp)->next;
	if (*pp)
		*pp = me->next;
	if (log->space_q_tail == me) {
		struct space_waiter *t = log->space_q;

		while (t && t->next)
			t = t->next;
		log->space_q_tail = t;
	}
	if (log->space_q)
		pthread_cond_signal(&log->space_q->cv);
	pthread_cond_destroy(&me->cv);
}

/*
 * With mu held: wake the commit thread if it waits for completions with
 * room for another batch. One eventfd write per wait, however many
 * appenders arrive (the write is a few microseconds; under the lock it
 * keeps the order of kicked and io_waiting simple).
 */
static void kick(struct alog_log *log)
{
	if (log->io_waiting && !log->kicked) {
		log->kicked = true;
		(void)eventfd_write(log->kick_fd, 1);
	}
}

int alog_log_append(struct alog_log *log, const struct iovec *iov, unsigned n,
		    const struct alog_append_opts *opts, alog_durable_fn cb,
		    void *arg)
{
	struct space_waiter me;
	struct log_batch *b;
	uint64_t total = 0, time_ms, gen, offset;
	bool queued = false;
	uint8_t *dst;
	int rc = 0;

	if (!log || !iov || n == 0 || !cb)
		return -EINVAL;
	if (n > log->o.batch_records_max)
		return -EMSGSIZE;
	for (unsigned i = 0; i < n; i++) {
		if (iov[i].iov_len == 0 || (!iov[i].iov_base))
			return -EINVAL;
		if (iov[i].iov_len > log->o.record_bytes_max)
			return -EMSGSIZE;
		total += LOG_REC_HEADER_BYTES + iov[i].iov_len;
	}
	if (total > log->o.batch_bytes_max ||
	    total > log->o.segment_bytes_max - LOG_SEG_HEADER_BYTES)
		return -EMSGSIZE;
	time_ms = opts && opts->time_ms ? opts->time_ms : alog_now_ms();

	pthread_mutex_lock(&log->mu);
	for (;;) {
		b = log->fill;
		if (log->failed) {
			rc = log->failed;
			goto out_unlock;
		}
		if (log->closing) {
			rc = -ESHUTDOWN;
			goto out_unlock;
		}
		if (opts && opts->expect_offset != ALOG_OFFSET_ANY &&
		    opts->expect_offset != log->next_offset) {
			rc = -ESPIPE;
			goto out_unlock;
		}
		if (log->roll_pending) {
			pthread_cond_wait(&log->space_cv, &log->mu);
			continue;
		}
		if (log->fill_seg_pos + total > log->fill_seg_cap) {
			/* The budget is known here: fail without a trip. */
			/* A segment made or being made needs no room. */
			if (log->o.disk_budget_bytes > 0 &&
			    log->prep_state == PREP_EMPTY &&
			    log->disk_bytes + log->o.segment_bytes_max >
				    log->o.disk_budget_bytes) {
				rc = -EDQUOT;
				goto out_unlock;
			}
			log->roll_pending = true;
			gen = log->roll_gen;
			pthread_cond_signal(&log->work_cv);
			while (log->roll_gen == gen && !log->failed &&
			       !log->closing)
				pthread_cond_wait(&log->space_cv, &log->mu);
			if (log->roll_gen != gen && log->roll_error) {
				rc = log->roll_error;
				goto out_unlock;
			}
			continue;
		}
		/*
		 * Waiting for batch space is first come, first served: each
		 * waiter sleeps on its own condition variable in a queue, and
		 * only the head is woken when a batch is swapped out. A
		 * broadcast would let late arrivals starve early ones.
		 */
		if ((log->space_q && log->space_q != &me) ||
		    b->used + total > b->cap ||
		    b->records + n > log->o.batch_records_max) {
			if (!queued) {
				pthread_cond_init(&me.cv, NULL);
				me.next = NULL;
				if (log->space_q_tail)
					log->space_q_tail->next = &me;
				else
					log->space_q = &me;
				log->space_q_tail = &me;
				queued = true;
			}
			if (log->committer_idle)
				pthread_cond_signal(&log->work_cv);
			else
				kick(log);
			pthread_cond_wait(&me.cv, &log->mu);
			continue;
		}
		break;
	}
	if (queued) {
		space_queue_leave(log, &me);
		queued = false;
	}
	/* Reserve under the lock; copy and checksum outside it. */
	offset = log->next_offset;
	log->next_offset += n;
	b->waiters[b->nwaiters].cb = cb;
	b->waiters[b->nwaiters].arg = arg;
	b->waiters[b->nwaiters].first_offset = offset;
	b->nwaiters++;
	dst = b->buf + b->used;
	b->used += total;
	b->records += n;
	b->next_offset = log->next_offset;
	log->fill_seg_pos += total;
	__atomic_add_fetch(&b->copiers, 1, __ATOMIC_SEQ_CST);
	if (log->committer_idle)
		pthread_cond_signal(&log->work_cv);
	else
		kick(log);
	pthread_mutex_unlock(&log->mu);

	for (unsigned i = 0; i < n; i++) {
		memcpy(dst + LOG_REC_HEADER_BYTES, iov[i].iov_base,
		       iov[i].iov_len);
		log_rec_encode(dst, (uint32_t)iov[i].iov_len, offset++,
			       opts && opts->times_ms ? opts->times_ms[i] :
							time_ms);
		dst += LOG_REC_HEADER_BYTES + iov[i].iov_len;
	}
	if (__atomic_sub_fetch(&b->copiers, 1, __ATOMIC_SEQ_CST) == 0 &&
	    __atomic_load_n(&b->commit_waiting, __ATOMIC_SEQ_CST))
		syscall(SYS_futex, &b->copiers, FUTEX_WAKE_PRIVATE, 1, NULL,
			NULL, 0);
	return 0;

out_unlock:
	if (queued)
		space_queue_leave(log, &me);
	pthread_mutex_unlock(&log->mu);
	return rc;
}

struct append_waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int status;
	uint64_t offset;
};

static void append_waiter_cb(void *arg, int status, uint64_t first_offset)
{
	struct append_waiter *w = arg;

	pthread_mutex_lock(&w->mu);
	w->done = true;
	w->status = status;
	w->offset = first_offset;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int alog_log_append_wait(struct alog_log *log, const struct iovec *iov,
			 unsigned n, const struct alog_append_opts *opts,
			 uint64_t *offset)
{
	struct append_waiter w = { .done = false };
	int rc;

	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	rc = alog_log_append(log, iov, n, opts, append_waiter_cb, &w);
	if (rc == 0) {
		pthread_mutex_lock(&w.mu);
		while (!w.done)
			pthread_cond_wait(&w.cv, &w.mu);
		pthread_mutex_unlock(&w.mu);
		rc = w.status;
		if (rc == 0 && offset)
			*offset = w.offset;
	}
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	return rc;
}

int alog_log_sync(struct alog_log *log)
{
	uint64_t target;
	int rc = 0;

	pthread_mutex_lock(&log->mu);
	target = log->next_offset;
	while (log->durable_offset < target && !log->failed) {
		log->sync_requested = true;
		pthread_cond_signal(&log->work_cv);
		pthread_cond_wait(&log->durable_cv, &log->mu);
	}
	if (log->durable_offset < target)
		rc = log->failed;
	pthread_mutex_unlock(&log->mu);
	return rc;
}

void alog_log_stats(struct alog_log *log, struct alog_log_stats *st)
{
	pthread_mutex_lock(&log->mu);
	st->start_offset = log->meta.start_offset;
	st->next_offset = log->next_offset;
	st->durable_offset = log->durable_offset;
	st->segments = log->nsealed + 1;
	st->disk_bytes = log->disk_bytes;
	st->disk_budget_bytes = log->o.disk_budget_bytes;
	st->commits = log->commits;
	st->fsyncs = log->fsyncs;
	st->records = log->records;
	st->bytes = log->bytes;
	st->failed = log->failed;
	st->active_free_bytes = log->fill_seg_cap - log->fill_seg_pos;
	memcpy(st->commit_hist, log->commit_hist, sizeof(st->commit_hist));
	st->commit_ns_sum = log->commit_ns_sum;
	st->inflight_max = log->inflight_max;
	st->rolls_prepared = log->rolls_prepared;
	st->rolls_plain = log->rolls_plain;
	st->prepare_errors = log->prepare_errors;
	st->prepare_last_error = log->prepare_last_error;
	st->segment_prepared = log->prep_state == PREP_READY;
	pthread_mutex_unlock(&log->mu);
}

/* ---- Retention ----------------------------------------------------------- */

int alog_log_retain(struct alog_log *log, uint64_t acked_offset,
		    uint64_t now_ms)
{
	struct log_meta m;
	uint8_t buf[LOG_META_BYTES];
	struct log_sealed *gone = NULL;
	size_t k = 0;
	uint64_t new_start, freed = 0;
	int rc = 0;

	pthread_mutex_lock(&log->retain_mu);
	pthread_mutex_lock(&log->mu);
	while (k < log->nsealed && log->sealed[k].next_offset <= acked_offset &&
	       now_ms >= log->sealed[k].sealed_ms &&
	       now_ms - log->sealed[k].sealed_ms >= log->o.retention_age_min_ms)
		k++;
	/* The first segment kept: the next sealed one, else one still being
	 * sealed after a roll (it is in neither list yet), else the active. */
	new_start = k < log->nsealed                ? log->sealed[k].base :
		    log->sealing_base != UINT64_MAX ? log->sealing_base :
						      log->active->base;
	m = log->meta;
	if (k > 0) {
		/* The commit thread may grow log->sealed meanwhile: copy. */
		gone = malloc(k * sizeof(*gone));
		if (gone)
			memcpy(gone, log->sealed, k * sizeof(*gone));
		else
			rc = -ENOMEM;
	}
	pthread_mutex_unlock(&log->mu);
	if (k == 0 || rc < 0)
		goto out;
	/* Checkpoint first: a crash after it finishes the deletion on open. */
	m.start_offset = new_start;
	log_meta_encode(buf, &m);
	rc = alog_file_replace(log->dir, "LOG", buf, sizeof(buf));
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < k; i++) {
		unlink_segment(log, gone[i].base);
		freed += gone[i].file_bytes;
	}
	rc = alog_dir_sync(log->dir);
	pthread_mutex_lock(&log->mu);
	log->meta.start_offset = new_start;
	memmove(log->sealed, log->sealed + k,
		(log->nsealed - k) * sizeof(*log->sealed));
	log->nsealed -= k;
	log->disk_bytes -= freed;
	pthread_mutex_unlock(&log->mu);
	if (rc == 0)
		rc = (int)k;
out:
	free(gone);
	pthread_mutex_unlock(&log->retain_mu);
	return rc;
}
