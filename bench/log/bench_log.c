/*
 * bench_log.c - durable append throughput and latency of the alog log,
 * measured against the machine's own limit in the same run.
 *
 * For each point (record size x appender threads x appends in flight) the
 * benchmark opens a fresh log in fsync mode, lets the appenders run for a
 * fixed time, and then replays on the same filesystem what the log asked of
 * the disk: the same bytes (record headers included) cut into the same
 * number of fdatasyncs, written with plain pwrite into a preallocated file.
 * The ratio of the two is the number to watch: the machine is shared and
 * noisy, absolute rates move with it, the ratio much less.
 *
 * Appenders use the asynchronous alog_log_append(). Each keeps up to K
 * appends outstanding in a ring of K slots; the durable callback, which runs
 * on the log's commit thread, stamps the completion time into its slot,
 * clears the slot's busy flag and makes a futex wake only when the appender
 * sleeps on that very slot. Latencies (append call to durable callback) go
 * into a log-linear histogram owned by each appender, so nothing is
 * allocated per append, and the histograms are merged at the end.
 *
 * Output: a table on stdout, and every point as JSON with --json FILE.
 * Exit status: 0, 1 when a point failed or appended nothing or the JSON
 * could not be written, 2 on bad usage, 3 when the watchdog fired.
 */
#include "alog_common.h"
#include "alog_log.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/magic.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define BENCH_LIST_MAX 16
#define BENCH_APPENDERS_MAX 1024u
#define BENCH_INFLIGHT_MAX 65536u
#define BENCH_SIZE_MAX (1u << 20) /* the log's default record_bytes_max */
#define BENCH_RECORD_HEADER_BYTES 32u
#define BENCH_SEGMENT_BYTES (256ull << 20)
#define BENCH_PAYLOAD_SPREAD 4096u /* records start at varying offsets */
#define BENCH_BASELINE_BUF_MAX (8u << 20)
#define BENCH_PROBE_CHUNK_BYTES (4u << 20) /* = default batch_bytes_max */
#define BENCH_PROBE_CHUNKS 512u            /* 2 GiB preallocated at most */
#define BENCH_DRAIN_TIMEOUT_S 30
#define BENCH_MB 1e6

/* Targets from the issue, printed next to the results. */
#define BENCH_TARGET_BIG_SIZE 65536u
#define BENCH_TARGET_BIG_RATIO 0.80
#define BENCH_TARGET_SMALL_SIZE 300u
#define BENCH_TARGET_SMALL_APPENDERS 64u
#define BENCH_TARGET_SMALL_INFLIGHT 64u
#define BENCH_TARGET_SMALL_REC_S 1000000.0

/*
 * Log-linear latency histogram in nanoseconds: values below 32 exactly, then
 * 32 buckets per power of two (at most 3% error), up to 2^64.
 */
#define BENCH_HIST_SUB_BITS 5u
#define BENCH_HIST_SUB (1u << BENCH_HIST_SUB_BITS)
#define BENCH_HIST_BUCKETS \
	(BENCH_HIST_SUB + (64u - BENCH_HIST_SUB_BITS) * BENCH_HIST_SUB)

struct bench_hist {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t max_ns;
	uint64_t buckets[BENCH_HIST_BUCKETS];
};

struct bench_cfg {
	char work_dir[PATH_MAX]; /* our own fresh directory, removed at exit */
	double seconds;
	unsigned sizes[BENCH_LIST_MAX];
	unsigned nsizes;
	unsigned appenders[BENCH_LIST_MAX];
	unsigned nappenders;
	unsigned inflight[BENCH_LIST_MAX];
	unsigned ninflight;
	const char *json_path;
	bool quick;
	uint8_t *payload; /* BENCH_PAYLOAD_SPREAD + largest size, filled once */
};

/* A sequential write + fdatasync run: the baseline or the disk probe. */
struct bench_seq {
	uint64_t bytes;  /* written */
	uint64_t fsyncs; /* fdatasyncs done */
	double seconds;
	double mb_s;
	bool truncated; /* stopped at the time cap before the end */
	int err;
};

struct bench_point {
	unsigned size;
	unsigned appenders;
	unsigned inflight;
	int err; /* first error, 0 if none */
	const char *err_where;
	double seconds;           /* start to the last durable callback */
	uint64_t records;         /* acknowledged durable */
	uint64_t failed;          /* callbacks with status < 0 */
	uint64_t app_records_min; /* fairness: fewest and most records */
	uint64_t app_records_max; /* acknowledged to one appender */
	uint64_t log_records;     /* alog_log_stats() deltas */
	uint64_t log_bytes;
	uint64_t log_commits;
	uint64_t log_fsyncs;
	double cpu_s; /* user + system time of the whole process */
	double rec_s;
	double payload_mb_s;
	double log_mb_s;
	double ratio; /* log MB/s / baseline MB/s, 0 if unknown */
	double lat_mean_us, lat_p50_us, lat_p90_us, lat_p99_us, lat_p999_us,
		lat_max_us;
	struct bench_seq base;
};

/* State shared by the appenders of one point. */
struct bench_run {
	struct alog_log *log;
	const uint8_t *payload;
	unsigned size;
	unsigned inflight;
	pthread_barrier_t start;
	atomic_bool stop;
};

struct bench_appender;

/* One append in flight. A cache line each: the commit thread writes it. */
struct bench_slot {
	_Alignas(64) atomic_uint busy; /* futex word: 1 while in flight */
	unsigned index;
	int status;     /* callback status */
	uint64_t t0_ns; /* append call; 0 = nothing to harvest */
	uint64_t done_ns;
	struct bench_appender *app;
};

struct bench_appender {
	/* Slot index + 1 the appender sleeps on, 0 if awake. Own line. */
	_Alignas(64) atomic_uint waiting;
	_Alignas(64) struct bench_run *run;
	struct bench_slot *slots;
	pthread_t thread;
	uint64_t appended;
	uint64_t completed;
	uint64_t failed;
	int err;
	struct bench_hist hist;
};

/* ---- Watchdog ---------------------------------------------------------- */

/* A hung library must not hang CTest or the shell: give up loudly. */
static volatile sig_atomic_t bench_phase;
static const char *const bench_phase_names[] = {
	"setup", "disk probe", "log open", "appending",
	"drain", "log close",  "baseline", "cleanup",
};
enum {
	BENCH_PH_SETUP,
	BENCH_PH_PROBE,
	BENCH_PH_OPEN,
	BENCH_PH_APPEND,
	BENCH_PH_DRAIN,
	BENCH_PH_CLOSE,
	BENCH_PH_BASELINE,
	BENCH_PH_CLEANUP
};

static void bench_write_str(const char *s)
{
	ssize_t rc = write(STDERR_FILENO, s, strlen(s));

	(void)rc;
}

static void bench_on_alarm(int sig)
{
	(void)sig;
	bench_write_str("alog-bench-log: watchdog fired during ");
	bench_write_str(bench_phase_names[bench_phase]);
	bench_write_str("; giving up\n");
	_exit(3);
}

static void bench_watchdog_arm(double seconds)
{
	alarm((unsigned)ceil(seconds));
}

/* ---- Histogram --------------------------------------------------------- */

static unsigned bench_hist_index(uint64_t v)
{
	unsigned e;

	if (v < BENCH_HIST_SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	return BENCH_HIST_SUB + (e - BENCH_HIST_SUB_BITS) * BENCH_HIST_SUB +
	       (unsigned)((v >> (e - BENCH_HIST_SUB_BITS)) &
			  (BENCH_HIST_SUB - 1));
}

/* The middle of bucket idx. */
static uint64_t bench_hist_value(unsigned idx)
{
	unsigned g, s, shift;

	if (idx < BENCH_HIST_SUB)
		return idx;
	g = (idx - BENCH_HIST_SUB) / BENCH_HIST_SUB;
	s = (idx - BENCH_HIST_SUB) % BENCH_HIST_SUB;
	shift = g; /* e - SUB_BITS */
	return ((uint64_t)(BENCH_HIST_SUB + s) << shift) +
	       ((1ull << shift) >> 1);
}

static inline void bench_hist_add(struct bench_hist *h, uint64_t v)
{
	h->count++;
	h->sum_ns += v;
	if (v > h->max_ns)
		h->max_ns = v;
	h->buckets[bench_hist_index(v)]++;
}

static void bench_hist_merge(struct bench_hist *dst,
			     const struct bench_hist *src)
{
	dst->count += src->count;
	dst->sum_ns += src->sum_ns;
	if (src->max_ns > dst->max_ns)
		dst->max_ns = src->max_ns;
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
}

/* Value at quantile q (0..1) in microseconds, 0 for an empty histogram. */
static double bench_hist_quantile_us(const struct bench_hist *h, double q)
{
	uint64_t rank, seen = 0, v;

	if (h->count == 0)
		return 0;
	rank = (uint64_t)ceil(q * (double)h->count);
	if (rank == 0)
		rank = 1;
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			v = bench_hist_value(i);
			if (v > h->max_ns)
				v = h->max_ns;
			return (double)v / 1e3;
		}
	}
	return (double)h->max_ns / 1e3;
}

/* ---- Small helpers ----------------------------------------------------- */

static double bench_ns_to_s(uint64_t ns)
{
	return (double)ns / 1e9;
}

static double bench_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void bench_sleep_until(uint64_t deadline_ns)
{
	for (;;) {
		uint64_t now = alog_mono_ns();
		struct timespec ts;

		if (now >= deadline_ns)
			return;
		ts.tv_sec = (time_t)((deadline_ns - now) / 1000000000u);
		ts.tv_nsec = (long)((deadline_ns - now) % 1000000000u);
		nanosleep(&ts, NULL);
	}
}

/* Not all zero, not compressible, the same in every run. */
static void bench_fill(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed | 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)(x >> 24);
	}
}

static int bench_rm_one(const char *path, const struct stat *sb, int type,
			struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	if (remove(path) != 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static int bench_rm_rf(const char *path)
{
	int rc = nftw(path, bench_rm_one, 16, FTW_DEPTH | FTW_PHYS);

	if (rc < 0 && errno == ENOENT)
		return 0;
	return rc < 0 ? -errno : rc;
}

static const char *bench_fs_name(long type)
{
	switch ((unsigned long)type) {
	case EXT4_SUPER_MAGIC:
		return "ext2/3/4";
	case XFS_SUPER_MAGIC:
		return "xfs";
	case BTRFS_SUPER_MAGIC:
		return "btrfs";
	case TMPFS_MAGIC:
		return "tmpfs";
	case OVERLAYFS_SUPER_MAGIC:
		return "overlayfs";
	default:
		return "other";
	}
}

/* ---- Appenders ---------------------------------------------------------- */

static long bench_futex(atomic_uint *word, int op, unsigned val)
{
	return syscall(SYS_futex, (unsigned *)word, op, val, NULL, NULL, 0);
}

/*
 * Runs on the log's commit thread: stamp, release the slot, and wake the
 * appender only if it sleeps on this slot. The seq_cst store of busy and the
 * load of waiting pair with the appender's store of waiting and load of busy
 * (Dekker), so a sleeper is never missed and a runner is never woken.
 */
static void bench_on_durable(void *arg, int status, uint64_t first_offset)
{
	struct bench_slot *s = arg;
	struct bench_appender *a = s->app;

	(void)first_offset;
	s->done_ns = alog_mono_ns();
	s->status = status;
	atomic_store(&s->busy, 0);
	if (atomic_load(&a->waiting) == s->index + 1)
		bench_futex(&s->busy, FUTEX_WAKE_PRIVATE, 1);
}

static void bench_slot_wait(struct bench_appender *a, struct bench_slot *s)
{
	while (atomic_load_explicit(&s->busy, memory_order_acquire)) {
		atomic_store(&a->waiting, s->index + 1);
		if (atomic_load(&s->busy))
			bench_futex(&s->busy, FUTEX_WAIT_PRIVATE, 1);
		atomic_store_explicit(&a->waiting, 0, memory_order_relaxed);
	}
}

/* Account a finished append. Only the appender thread calls this. */
static void bench_slot_harvest(struct bench_appender *a, struct bench_slot *s)
{
	if (s->t0_ns == 0)
		return;
	if (s->status == 0) {
		bench_hist_add(&a->hist, s->done_ns > s->t0_ns ?
						 s->done_ns - s->t0_ns :
						 0);
		a->completed++;
	} else {
		a->failed++;
		if (a->err == 0)
			a->err = s->status;
	}
	s->t0_ns = 0;
}

static void *bench_appender_main(void *arg)
{
	struct bench_appender *a = arg;
	struct bench_run *run = a->run;
	unsigned k = run->inflight, i = 0;
	uint64_t seq = 0;

	pthread_barrier_wait(&run->start);
	while (!atomic_load_explicit(&run->stop, memory_order_relaxed)) {
		struct bench_slot *s = &a->slots[i];
		struct iovec iov;
		int rc;

		/* The oldest slot: busy means K appends are outstanding. */
		bench_slot_wait(a, s);
		bench_slot_harvest(a, s);

		iov.iov_base =
			(void *)(run->payload +
				 ((seq * 64u) & (BENCH_PAYLOAD_SPREAD - 1)));
		iov.iov_len = run->size;
		atomic_store_explicit(&s->busy, 1, memory_order_relaxed);
		s->t0_ns = alog_mono_ns();
		rc = alog_log_append(run->log, &iov, 1, NULL, bench_on_durable,
				     s);
		if (rc < 0) {
			atomic_store_explicit(&s->busy, 0,
					      memory_order_relaxed);
			s->t0_ns = 0;
			a->err = rc;
			break;
		}
		seq++;
		if (++i == k)
			i = 0;
	}
	for (unsigned j = 0; j < k; j++) {
		bench_slot_wait(a, &a->slots[j]);
		bench_slot_harvest(a, &a->slots[j]);
	}
	a->appended = seq;
	return NULL;
}

/* ---- Sequential write + fdatasync (baseline and disk probe) ------------ */

/*
 * Write `bytes` into a fresh preallocated dir/name with plain pwrite, cut
 * into `chunks` pieces of (nearly) equal size, fdatasync after each piece.
 * Stops early (truncated) after cap_s seconds.
 */
static void bench_seq_write(const char *dir, const char *name, uint64_t bytes,
			    uint64_t chunks, double cap_s,
			    struct bench_seq *out)
{
	char path[PATH_MAX];
	uint64_t q, r, pos = 0, t0, cap_ns;
	size_t buf_len;
	uint8_t *buf;
	int fd;

	memset(out, 0, sizeof(*out));
	if (bytes == 0)
		return;
	if (chunks == 0)
		chunks = 1;
	if (chunks > bytes)
		chunks = bytes;
	q = bytes / chunks;
	r = bytes % chunks;
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path)) {
		out->err = -ENAMETOOLONG;
		return;
	}
	buf_len = BENCH_BASELINE_BUF_MAX;
	if (q + (r != 0) < buf_len)
		buf_len = (size_t)(q + (r != 0)); /* the largest chunk */
	buf = malloc(buf_len);
	if (!buf) {
		out->err = -ENOMEM;
		return;
	}
	bench_fill(buf, buf_len, 0x5eed5eedu);

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		out->err = -errno;
		goto out_free;
	}
	/* Like a log segment: allocated up front, allocation made durable. */
	if (fallocate(fd, 0, 0, (off_t)bytes) != 0 || fsync(fd) != 0 ||
	    alog_dir_sync(dir) != 0) {
		out->err = errno ? -errno : -EIO;
		goto out_close;
	}

	cap_ns = (uint64_t)(cap_s * 1e9);
	t0 = alog_mono_ns();
	for (uint64_t c = 0; c < chunks; c++) {
		uint64_t left = q + (c < r);

		while (left > 0) {
			size_t n = left < buf_len ? (size_t)left : buf_len;
			ssize_t w = pwrite(fd, buf, n, (off_t)pos);

			if (w < 0) {
				if (errno == EINTR)
					continue;
				out->err = -errno;
				goto out_close;
			}
			pos += (uint64_t)w;
			left -= (uint64_t)w;
		}
		if (fdatasync(fd) != 0) {
			out->err = -errno;
			goto out_close;
		}
		out->fsyncs++;
		if (c + 1 < chunks && alog_mono_ns() - t0 > cap_ns) {
			out->truncated = true;
			break;
		}
	}
	out->seconds = bench_ns_to_s(alog_mono_ns() - t0);
	out->bytes = pos;
	out->mb_s = out->seconds > 0 ? (double)pos / BENCH_MB / out->seconds :
				       0;

out_close:
	close(fd);
	unlink(path);
out_free:
	free(buf);
}

/* The disk's own sequential rate: 4 MiB per fdatasync for `seconds`. */
static void bench_disk_probe(const struct bench_cfg *cfg, struct bench_seq *out)
{
	bench_phase = BENCH_PH_PROBE;
	bench_watchdog_arm(cfg->seconds * 2 + 120);
	bench_seq_write(cfg->work_dir, "disk-probe.dat",
			(uint64_t)BENCH_PROBE_CHUNK_BYTES * BENCH_PROBE_CHUNKS,
			BENCH_PROBE_CHUNKS, cfg->seconds, out);
	alarm(0);
}

/* ---- One point ---------------------------------------------------------- */

static void bench_point_fail(struct bench_point *pt, int err, const char *where)
{
	if (pt->err == 0) {
		pt->err = err;
		pt->err_where = where;
	}
}

/* Stats counters may trail the callbacks by a moment; wait for them. */
static void bench_stats_settle(struct alog_log *log,
			       const struct alog_log_stats *s0,
			       uint64_t appended, struct alog_log_stats *s1)
{
	for (int i = 0; i < 200; i++) {
		alog_log_stats(log, s1);
		if (s1->records - s0->records >= appended &&
		    s1->durable_offset >= s1->next_offset)
			return;
		usleep(1000);
	}
}

static void bench_point_run(const struct bench_cfg *cfg, struct bench_point *pt)
{
	struct alog_log_options opts;
	struct alog_log_stats s0, s1;
	struct bench_appender *apps = NULL;
	struct bench_hist *merged = NULL;
	struct bench_run run;
	char log_dir[PATH_MAX];
	uint64_t t_start, t_end, appended = 0;
	double cpu0, cpu1;
	bool barrier_ready = false;
	int err = 0;

	memset(&run, 0, sizeof(run));
	if (snprintf(log_dir, sizeof(log_dir), "%s/log", cfg->work_dir) >=
	    (int)sizeof(log_dir)) {
		bench_point_fail(pt, -ENAMETOOLONG, "log directory name");
		return;
	}
	bench_watchdog_arm(cfg->seconds * 4 + BENCH_DRAIN_TIMEOUT_S + 120);

	bench_phase = BENCH_PH_OPEN;
	alog_log_options_init(&opts);
	opts.create = true;
	opts.durability = ALOG_DURABLE_FSYNC;
	opts.segment_bytes_max = BENCH_SEGMENT_BYTES;
	run.log = alog_log_open(log_dir, &opts, &err);
	if (!run.log) {
		bench_point_fail(pt, err, "alog_log_open");
		goto out_cleanup;
	}
	run.payload = cfg->payload;
	run.size = pt->size;
	run.inflight = pt->inflight;
	atomic_init(&run.stop, false);

	if (posix_memalign((void **)&apps, 64, pt->appenders * sizeof(*apps)) !=
	    0) {
		apps = NULL;
		bench_point_fail(pt, -ENOMEM, "allocating appenders");
		goto out_close;
	}
	memset(apps, 0, pt->appenders * sizeof(*apps));
	merged = calloc(1, sizeof(*merged));
	if (!merged) {
		bench_point_fail(pt, -ENOMEM, "allocating the histogram");
		goto out_close;
	}
	for (unsigned i = 0; i < pt->appenders; i++) {
		struct bench_appender *a = &apps[i];

		atomic_init(&a->waiting, 0);
		a->run = &run;
		if (posix_memalign((void **)&a->slots, 64,
				   pt->inflight * sizeof(*a->slots)) != 0) {
			a->slots = NULL;
			bench_point_fail(pt, -ENOMEM, "allocating slots");
			goto out_close;
		}
		memset(a->slots, 0, pt->inflight * sizeof(*a->slots));
		for (unsigned j = 0; j < pt->inflight; j++) {
			atomic_init(&a->slots[j].busy, 0);
			a->slots[j].index = j;
			a->slots[j].app = a;
		}
	}

	if (pthread_barrier_init(&run.start, NULL, pt->appenders + 1) != 0) {
		bench_point_fail(pt, -EAGAIN, "pthread_barrier_init");
		goto out_close;
	}
	barrier_ready = true;
	alog_log_stats(run.log, &s0);
	for (unsigned i = 0; i < pt->appenders; i++) {
		int rc = pthread_create(&apps[i].thread, NULL,
					bench_appender_main, &apps[i]);

		if (rc != 0) {
			/* Nobody can pass the barrier now: report and bail out. */
			fprintf(stderr, "alog-bench-log: pthread_create: %s\n",
				strerror(rc));
			exit(1);
		}
	}

	bench_phase = BENCH_PH_APPEND;
	pthread_barrier_wait(&run.start);
	t_start = alog_mono_ns();
	cpu0 = bench_cpu_s();
	bench_sleep_until(t_start + (uint64_t)(cfg->seconds * 1e9));
	atomic_store(&run.stop, true);

	bench_phase = BENCH_PH_DRAIN;
	for (unsigned i = 0; i < pt->appenders; i++) {
		struct timespec dl;
		int rc;

		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += BENCH_DRAIN_TIMEOUT_S;
		rc = pthread_timedjoin_np(apps[i].thread, NULL, &dl);
		if (rc != 0) {
			alog_log_stats(run.log, &s1);
			fprintf(stderr,
				"alog-bench-log: appender %u still busy %d s after stop "
				"(%s): appends are never acknowledged? log stats: "
				"next_offset=%" PRIu64
				" durable_offset=%" PRIu64 " commits=%" PRIu64
				" fsyncs=%" PRIu64 " failed=%d\n",
				i, BENCH_DRAIN_TIMEOUT_S, strerror(rc),
				s1.next_offset, s1.durable_offset, s1.commits,
				s1.fsyncs, s1.failed);
			exit(1);
		}
	}
	t_end = alog_mono_ns();
	cpu1 = bench_cpu_s();

	for (unsigned i = 0; i < pt->appenders; i++) {
		struct bench_appender *a = &apps[i];

		appended += a->appended;
		pt->records += a->completed;
		if (i == 0 || a->completed < pt->app_records_min)
			pt->app_records_min = a->completed;
		if (a->completed > pt->app_records_max)
			pt->app_records_max = a->completed;
		pt->failed += a->failed;
		bench_hist_merge(merged, &a->hist);
		if (a->err)
			bench_point_fail(pt, a->err, "append");
	}
	bench_stats_settle(run.log, &s0, appended, &s1);
	if (s1.failed)
		bench_point_fail(pt, s1.failed, "log stopped");
	pt->log_records = s1.records - s0.records;
	pt->log_bytes = s1.bytes - s0.bytes;
	pt->log_commits = s1.commits - s0.commits;
	pt->log_fsyncs = s1.fsyncs - s0.fsyncs;
	pt->seconds = bench_ns_to_s(t_end - t_start);
	pt->cpu_s = cpu1 - cpu0;
	pt->rec_s = (double)pt->records / pt->seconds;
	pt->payload_mb_s =
		(double)pt->records * pt->size / BENCH_MB / pt->seconds;
	pt->log_mb_s = (double)pt->log_bytes / BENCH_MB / pt->seconds;
	pt->lat_mean_us = merged->count ? (double)merged->sum_ns /
						  (double)merged->count / 1e3 :
					  0;
	pt->lat_p50_us = bench_hist_quantile_us(merged, 0.50);
	pt->lat_p90_us = bench_hist_quantile_us(merged, 0.90);
	pt->lat_p99_us = bench_hist_quantile_us(merged, 0.99);
	pt->lat_p999_us = bench_hist_quantile_us(merged, 0.999);
	pt->lat_max_us = (double)merged->max_ns / 1e3;
	if (pt->records == 0)
		bench_point_fail(pt, -ENODATA, "no record was acknowledged");

out_close:
	bench_phase = BENCH_PH_CLOSE;
	alog_log_close(run.log); /* no callback can touch a slot after this */
	for (unsigned i = 0; apps && i < pt->appenders; i++)
		free(apps[i].slots);
	if (barrier_ready)
		pthread_barrier_destroy(&run.start);
	free(apps);
	free(merged);

	/* The machine's limit for exactly what the log just asked of it. */
	if (pt->log_bytes > 0) {
		double cap = pt->seconds * 3 > pt->seconds + 5 ?
				     pt->seconds * 3 :
				     pt->seconds + 5;

		bench_phase = BENCH_PH_CLEANUP;
		bench_rm_rf(log_dir);
		bench_phase = BENCH_PH_BASELINE;
		bench_seq_write(cfg->work_dir, "baseline.dat", pt->log_bytes,
				pt->log_fsyncs, cap, &pt->base);
		if (pt->base.err)
			bench_point_fail(pt, pt->base.err, "baseline");
		else if (pt->base.mb_s > 0)
			pt->ratio = pt->log_mb_s / pt->base.mb_s;
	}
out_cleanup:
	bench_phase = BENCH_PH_CLEANUP;
	bench_rm_rf(log_dir);
	alarm(0);
}

/* ---- Output ------------------------------------------------------------- */

static void bench_size_str(char *buf, size_t len, unsigned size)
{
	if (size >= 1024 && size % 1024 == 0)
		snprintf(buf, len, "%uK", size / 1024);
	else
		snprintf(buf, len, "%uB", size);
}

static void bench_table_header(void)
{
	printf("%5s %4s %4s %11s %9s %9s %6s %9s %9s %8s %9s %5s\n", "size",
	       "app", "infl", "log rec/s", "log MB/s", "base MB/s", "ratio",
	       "p50 us", "p99 us", "commits", "rec/commit", "cpu%");
	fflush(stdout);
}

static void bench_table_row(const struct bench_point *pt)
{
	char size[16];

	bench_size_str(size, sizeof(size), pt->size);
	printf("%5s %4u %4u %11.0f %9.2f %9.2f %6.3f %9.1f %9.1f %8" PRIu64
	       " %9.1f %5.0f%s%s%s\n",
	       size, pt->appenders, pt->inflight, pt->rec_s, pt->log_mb_s,
	       pt->base.mb_s, pt->ratio, pt->lat_p50_us, pt->lat_p99_us,
	       pt->log_commits,
	       pt->log_commits ? (double)pt->records / (double)pt->log_commits :
				 0,
	       pt->seconds > 0 ? 100 * pt->cpu_s / pt->seconds : 0,
	       pt->base.truncated ? "  (baseline cut short)" : "",
	       pt->err ? "  ERROR: " : "", pt->err ? pt->err_where : "");
	if (pt->err)
		printf("      %s\n", alog_strerror(pt->err));
	fflush(stdout);
}

/*
 * The disk's sequential rate for a point is the best of the two probes and
 * the point's own baseline: the disk is shared and its rate swings between
 * runs of a few seconds, so take the highest rate it showed us rather than
 * a lucky low one (this makes the target harder, never easier).
 */
struct bench_targets {
	const struct bench_point *big_best; /* 64 KB point closest to disk */
	double big_disk_mb_s;               /* its disk reference */
	double big_vs_disk;                 /* its log MB/s / big_disk_mb_s */
	const struct bench_point *small;    /* 300 B, 64 x 64 */
	bool big_pass, small_pass;
};

static double bench_disk_ref(const struct bench_point *pt,
			     const struct bench_seq *p0,
			     const struct bench_seq *p1)
{
	double ref = p0->mb_s > p1->mb_s ? p0->mb_s : p1->mb_s;

	return pt->base.mb_s > ref ? pt->base.mb_s : ref;
}

static void bench_targets_eval(const struct bench_point *pts, size_t npts,
			       const struct bench_seq *p0,
			       const struct bench_seq *p1,
			       struct bench_targets *t)
{
	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < npts; i++) {
		const struct bench_point *pt = &pts[i];
		double ref = bench_disk_ref(pt, p0, p1);

		if (pt->err)
			continue;
		if (pt->size == BENCH_TARGET_BIG_SIZE && ref > 0 &&
		    (!t->big_best || pt->log_mb_s / ref > t->big_vs_disk)) {
			t->big_best = pt;
			t->big_disk_mb_s = ref;
			t->big_vs_disk = pt->log_mb_s / ref;
		}
		if (pt->size == BENCH_TARGET_SMALL_SIZE &&
		    pt->appenders == BENCH_TARGET_SMALL_APPENDERS &&
		    pt->inflight == BENCH_TARGET_SMALL_INFLIGHT)
			t->small = pt;
	}
	t->big_pass = t->big_best && t->big_vs_disk >= BENCH_TARGET_BIG_RATIO;
	t->small_pass = t->small && t->small->rec_s >= BENCH_TARGET_SMALL_REC_S;
}

static void bench_targets_print(const struct bench_targets *t,
				const struct bench_seq *p0,
				const struct bench_seq *p1)
{
	printf("\ntargets (disk rate = best of the probes and the point's own "
	       "baseline)\n");
	if (t->big_best)
		printf("  64K records >= %.0f%% of the disk's sequential rate: "
		       "best point %u app x %u infl: %.2f MB/s = %.1f%% of "
		       "%.2f MB/s (probes %.2f, %.2f; baseline %.2f): %s\n",
		       BENCH_TARGET_BIG_RATIO * 100, t->big_best->appenders,
		       t->big_best->inflight, t->big_best->log_mb_s,
		       100 * t->big_vs_disk, t->big_disk_mb_s, p0->mb_s,
		       p1->mb_s, t->big_best->base.mb_s,
		       t->big_pass ? "PASS" : "MISS");
	else
		printf("  64K records >= %.0f%% of the disk's sequential rate: "
		       "not measured\n",
		       BENCH_TARGET_BIG_RATIO * 100);
	if (t->small)
		printf("  300B at 64 app x 64 infl >= %.0f rec/s: %.0f rec/s "
		       "(%.1f%% of target): %s\n",
		       BENCH_TARGET_SMALL_REC_S, t->small->rec_s,
		       100 * t->small->rec_s / BENCH_TARGET_SMALL_REC_S,
		       t->small_pass ? "PASS" : "MISS");
	else
		printf("  300B at 64 app x 64 infl >= %.0f rec/s: not measured\n",
		       BENCH_TARGET_SMALL_REC_S);
}

static void bench_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void bench_json_seq(FILE *f, const struct bench_seq *s)
{
	fprintf(f,
		"{\"bytes\": %" PRIu64 ", \"fdatasyncs\": %" PRIu64
		", \"seconds\": %.6f, \"mb_s\": %.3f, \"truncated\": %s, "
		"\"error\": %d}",
		s->bytes, s->fsyncs, s->seconds, s->mb_s,
		s->truncated ? "true" : "false", s->err);
}

static int bench_json_write(const struct bench_cfg *cfg,
			    const struct bench_point *pts, size_t npts,
			    const struct bench_seq *p0,
			    const struct bench_seq *p1,
			    const struct bench_targets *t, long fs_type)
{
	struct alog_log_options defaults;
	struct utsname un;
	char date[32];
	time_t now = time(NULL);
	struct tm tm;
	FILE *f;
	int rc = 0;

	alog_log_options_init(&defaults);
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (uname(&un) != 0)
		memset(&un, 0, sizeof(un));

	f = fopen(cfg->json_path, "w");
	if (!f)
		return -errno;
	fprintf(f,
		"{\n  \"benchmark\": \"log\",\n  \"format\": 1,\n  \"date\": ");
	bench_json_str(f, date);
	fprintf(f, ",\n  \"kernel\": ");
	bench_json_str(f, un.release);
	fprintf(f, ",\n  \"machine\": ");
	bench_json_str(f, un.machine);
	fprintf(f, ",\n  \"cpus\": %ld,\n  \"dir\": ",
		sysconf(_SC_NPROCESSORS_ONLN));
	bench_json_str(f, cfg->work_dir);
	fprintf(f, ",\n  \"fs\": ");
	bench_json_str(f, bench_fs_name(fs_type));
	fprintf(f,
		",\n  \"durability\": \"fsync\",\n  \"seconds_per_point\": %.3f,"
		"\n  \"quick\": %s,\n  \"segment_bytes_max\": %llu,"
		"\n  \"batch_bytes_max\": %u,\n  \"batch_records_max\": %u,"
		"\n  \"record_header_bytes\": %u,\n  \"mb\": 1000000,"
		"\n  \"disk_probe_chunk_bytes\": %u,\n  \"disk_probe_start\": ",
		cfg->seconds, cfg->quick ? "true" : "false",
		(unsigned long long)BENCH_SEGMENT_BYTES,
		defaults.batch_bytes_max, defaults.batch_records_max,
		BENCH_RECORD_HEADER_BYTES, BENCH_PROBE_CHUNK_BYTES);
	bench_json_seq(f, p0);
	fprintf(f, ",\n  \"disk_probe_end\": ");
	bench_json_seq(f, p1);
	fprintf(f, ",\n  \"points\": [");
	for (size_t i = 0; i < npts; i++) {
		const struct bench_point *pt = &pts[i];

		fprintf(f,
			"%s\n    {\"size\": %u, \"appenders\": %u, \"inflight\": %u,"
			" \"seconds\": %.6f, \"records\": %" PRIu64
			", \"failed\": %" PRIu64
			", \"appender_records_min\": %" PRIu64
			", \"appender_records_max\": %" PRIu64
			",\n     \"rec_s\": %.1f,"
			" \"payload_mb_s\": %.3f, \"log_mb_s\": %.3f,"
			" \"baseline_mb_s\": %.3f, \"ratio\": %.4f,\n"
			"     \"log\": {\"records\": %" PRIu64
			", \"bytes\": %" PRIu64 ", \"commits\": %" PRIu64
			", \"fdatasyncs\": %" PRIu64
			", \"records_per_commit\": %.2f, \"cpu_s\": %.3f},\n"
			"     \"latency_us\": {\"mean\": %.1f, \"p50\": %.1f,"
			" \"p90\": %.1f, \"p99\": %.1f, \"p999\": %.1f,"
			" \"max\": %.1f},\n     \"baseline\": ",
			i ? "," : "", pt->size, pt->appenders, pt->inflight,
			pt->seconds, pt->records, pt->failed,
			pt->app_records_min, pt->app_records_max, pt->rec_s,
			pt->payload_mb_s, pt->log_mb_s, pt->base.mb_s,
			pt->ratio, pt->log_records, pt->log_bytes,
			pt->log_commits, pt->log_fsyncs,
			pt->log_commits ?
				(double)pt->records / (double)pt->log_commits :
				0,
			pt->cpu_s, pt->lat_mean_us, pt->lat_p50_us,
			pt->lat_p90_us, pt->lat_p99_us, pt->lat_p999_us,
			pt->lat_max_us);
		bench_json_seq(f, &pt->base);
		fprintf(f, ",\n     \"error\": %d, \"error_where\": ", pt->err);
		bench_json_str(f, pt->err_where ? pt->err_where : "");
		fprintf(f, "}");
	}
	fprintf(f, "\n  ],\n  \"targets\": [\n");
	fprintf(f,
		"    {\"name\": \"64K records >= 80%% of disk sequential rate\","
		" \"measured\": %s, \"appenders\": %u, \"inflight\": %u,"
		" \"log_mb_s\": %.3f, \"disk_mb_s\": %.3f, \"ratio\": %.4f,"
		" \"goal\": %.2f, \"pass\": %s},\n",
		t->big_best ? "true" : "false",
		t->big_best ? t->big_best->appenders : 0,
		t->big_best ? t->big_best->inflight : 0,
		t->big_best ? t->big_best->log_mb_s : 0, t->big_disk_mb_s,
		t->big_vs_disk, BENCH_TARGET_BIG_RATIO,
		t->big_pass ? "true" : "false");
	fprintf(f,
		"    {\"name\": \"300B at 64 appenders x 64 in flight >= 1M rec/s\","
		" \"measured\": %s, \"rec_s\": %.1f, \"goal\": %.1f, \"pass\": %s}\n"
		"  ]\n}\n",
		t->small ? "true" : "false", t->small ? t->small->rec_s : 0,
		BENCH_TARGET_SMALL_REC_S, t->small_pass ? "true" : "false");
	if (ferror(f))
		rc = -EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

/* ---- Options ---------------------------------------------------------- */

static void bench_usage(FILE *f)
{
	fprintf(f,
		"usage: alog-bench-log [options]\n"
		"  --dir DIR        make a fresh work directory inside DIR (default "
		"$TMPDIR or /tmp)\n"
		"  --seconds S      appending time per point (default 2; 0.5 with "
		"--quick)\n"
		"  --sizes LIST     record sizes, e.g. 100,300,1K,64K (suffix K = "
		"1024, M = 1048576)\n"
		"  --appenders LIST appender threads (default 1,4,16,64)\n"
		"  --inflight LIST  appends in flight per appender (default 1,64)\n"
		"  --quick          smoke test: 300B x {1,64} appenders x {1,64} "
		"in flight\n"
		"  --json FILE      also write every point as JSON to FILE\n");
}

/* Comma-separated list of integers, with K/M suffixes when sizes is set. */
static int bench_parse_list(const char *arg, unsigned *out, unsigned *n,
			    bool sizes, unsigned lo, unsigned hi)
{
	const char *p = arg;

	*n = 0;
	while (*p) {
		unsigned long long v;
		char *end;

		if (*n == BENCH_LIST_MAX)
			return -E2BIG;
		errno = 0;
		v = strtoull(p, &end, 10);
		if (end == p || errno)
			return -EINVAL;
		if (sizes && (*end == 'K' || *end == 'k')) {
			v *= 1024;
			end++;
		} else if (sizes && (*end == 'M' || *end == 'm')) {
			v *= 1024 * 1024;
			end++;
		}
		if (sizes && (*end == 'B' || *end == 'b'))
			end++;
		if (*end != ',' && *end != '\0')
			return -EINVAL;
		if (v < lo || v > hi)
			return -ERANGE;
		out[(*n)++] = (unsigned)v;
		p = *end == ',' ? end + 1 : end;
	}
	return *n ? 0 : -EINVAL;
}

static int bench_parse_args(int argc, char **argv, struct bench_cfg *cfg,
			    const char **parent)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "seconds", required_argument, NULL, 's' },
		{ "sizes", required_argument, NULL, 'z' },
		{ "appenders", required_argument, NULL, 'a' },
		{ "inflight", required_argument, NULL, 'i' },
		{ "quick", no_argument, NULL, 'q' },
		{ "json", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const unsigned def_sizes[] = { 100, 300, 1024, 65536 };
	static const unsigned def_appenders[] = { 1, 4, 16, 64 };
	static const unsigned def_inflight[] = { 1, 64 };
	bool have_seconds = false, have_sizes = false, have_appenders = false,
	     have_inflight = false;
	int c, li = 0;

	while ((c = getopt_long(argc, argv, "", longopts, &li)) != -1) {
		char *end;
		int rc = 0;

		switch (c) {
		case 'd':
			*parent = optarg;
			break;
		case 's':
			errno = 0;
			cfg->seconds = strtod(optarg, &end);
			if (end == optarg || *end || errno ||
			    !(cfg->seconds > 0) || cfg->seconds > 3600)
				rc = -EINVAL;
			have_seconds = true;
			break;
		case 'z':
			rc = bench_parse_list(optarg, cfg->sizes, &cfg->nsizes,
					      true, 1, BENCH_SIZE_MAX);
			have_sizes = true;
			break;
		case 'a':
			rc = bench_parse_list(optarg, cfg->appenders,
					      &cfg->nappenders, false, 1,
					      BENCH_APPENDERS_MAX);
			have_appenders = true;
			break;
		case 'i':
			rc = bench_parse_list(optarg, cfg->inflight,
					      &cfg->ninflight, false, 1,
					      BENCH_INFLIGHT_MAX);
			have_inflight = true;
			break;
		case 'q':
			cfg->quick = true;
			break;
		case 'j':
			cfg->json_path = optarg;
			break;
		case 'h':
			bench_usage(stdout);
			exit(0);
		default:
			bench_usage(stderr);
			return -EINVAL;
		}
		if (rc < 0) {
			fprintf(stderr,
				"alog-bench-log: bad value for --%s: %s (%s)\n",
				longopts[li].name, optarg, strerror(-rc));
			return rc;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "alog-bench-log: unexpected argument '%s'\n",
			argv[optind]);
		bench_usage(stderr);
		return -EINVAL;
	}
	if (cfg->quick) {
		static const unsigned q_sizes[] = { 300 };
		static const unsigned q_appenders[] = { 1, 64 };
		static const unsigned q_inflight[] = { 1, 64 };

		if (!have_seconds)
			cfg->seconds = 0.5;
		if (!have_sizes) {
			memcpy(cfg->sizes, q_sizes, sizeof(q_sizes));
			cfg->nsizes = ALOG_ARRAY_LEN(q_sizes);
		}
		if (!have_appenders) {
			memcpy(cfg->appenders, q_appenders,
			       sizeof(q_appenders));
			cfg->nappenders = ALOG_ARRAY_LEN(q_appenders);
		}
		if (!have_inflight) {
			memcpy(cfg->inflight, q_inflight, sizeof(q_inflight));
			cfg->ninflight = ALOG_ARRAY_LEN(q_inflight);
		}
	}
	if (!have_seconds && !cfg->quick)
		cfg->seconds = 2;
	if (!cfg->nsizes) {
		memcpy(cfg->sizes, def_sizes, sizeof(def_sizes));
		cfg->nsizes = ALOG_ARRAY_LEN(def_sizes);
	}
	if (!cfg->nappenders) {
		memcpy(cfg->appenders, def_appenders, sizeof(def_appenders));
		cfg->nappenders = ALOG_ARRAY_LEN(def_appenders);
	}
	if (!cfg->ninflight) {
		memcpy(cfg->inflight, def_inflight, sizeof(def_inflight));
		cfg->ninflight = ALOG_ARRAY_LEN(def_inflight);
	}
	return 0;
}

/* ---- Main ------------------------------------------------------------- */

static int bench_make_work_dir(struct bench_cfg *cfg, const char *parent)
{
	if (!parent)
		parent = getenv("TMPDIR");
	if (!parent || !*parent)
		parent = "/tmp";
	if (mkdir(parent, 0755) != 0 && errno != EEXIST)
		return -errno;
	if (snprintf(cfg->work_dir, sizeof(cfg->work_dir),
		     "%s/alog-bench-log.XXXXXX",
		     parent) >= (int)sizeof(cfg->work_dir))
		return -ENAMETOOLONG;
	if (!mkdtemp(cfg->work_dir))
		return -errno;
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_cfg cfg;
	struct bench_point *pts;
	struct bench_seq probe0, probe1;
	struct bench_targets targets;
	const char *parent = NULL;
	struct statfs sfs;
	unsigned max_size = 0;
	size_t npts = 0, bad = 0;
	long fs_type = 0;
	int rc, status = 0;

	memset(&cfg, 0, sizeof(cfg));
	if (bench_parse_args(argc, argv, &cfg, &parent) < 0)
		return 2;
	signal(SIGALRM, bench_on_alarm);
	bench_phase = BENCH_PH_SETUP;

	rc = bench_make_work_dir(&cfg, parent);
	if (rc < 0) {
		fprintf(stderr,
			"alog-bench-log: cannot make a work directory in %s: %s\n",
			parent ? parent : "$TMPDIR", strerror(-rc));
		return 1;
	}
	if (statfs(cfg.work_dir, &sfs) == 0)
		fs_type = (long)sfs.f_type;
	for (unsigned i = 0; i < cfg.nsizes; i++)
		if (cfg.sizes[i] > max_size)
			max_size = cfg.sizes[i];
	cfg.payload = malloc(BENCH_PAYLOAD_SPREAD + max_size);
	npts = (size_t)cfg.nsizes * cfg.nappenders * cfg.ninflight;
	pts = calloc(npts, sizeof(*pts));
	if (!cfg.payload || !pts) {
		fprintf(stderr, "alog-bench-log: out of memory\n");
		status = 1;
		goto out_rm;
	}
	bench_fill(cfg.payload, BENCH_PAYLOAD_SPREAD + max_size,
		   0xa10915eedull);

	printf("alog-bench-log: %zu points x %.2f s, fsync durability, "
	       "work dir %s (%s)\n",
	       npts, cfg.seconds, cfg.work_dir, bench_fs_name(fs_type));
	if ((unsigned long)fs_type == TMPFS_MAGIC)
		printf("WARNING: tmpfs ignores fdatasync; these numbers say nothing "
		       "about durability cost\n");
	printf("log MB/s and base MB/s count the bytes written including the "
	       "32-byte record headers (MB = 10^6 B);\nbase = pwrite + fdatasync "
	       "of the same bytes with the same number of fdatasyncs; ratio = "
	       "log/base;\nlatency = append call to durable callback; cpu%% = "
	       "process CPU over the point (100%% = one core)\n\n");

	bench_disk_probe(&cfg, &probe0);
	if (probe0.err)
		fprintf(stderr, "alog-bench-log: disk probe failed: %s\n",
			strerror(-probe0.err));
	printf("disk sequential write (%u MiB per fdatasync): %.2f MB/s\n\n",
	       BENCH_PROBE_CHUNK_BYTES >> 20, probe0.mb_s);
	bench_table_header();

	npts = 0;
	for (unsigned zi = 0; zi < cfg.nsizes; zi++)
		for (unsigned ai = 0; ai < cfg.nappenders; ai++)
			for (unsigned ii = 0; ii < cfg.ninflight; ii++) {
				struct bench_point *pt = &pts[npts++];

				pt->size = cfg.sizes[zi];
				pt->appenders = cfg.appenders[ai];
				pt->inflight = cfg.inflight[ii];
				bench_point_run(&cfg, pt);
				bench_table_row(pt);
				if (pt->err || pt->records == 0)
					bad++;
			}

	bench_disk_probe(&cfg, &probe1);
	printf("\ndisk sequential write (%u MiB per fdatasync): %.2f MB/s at the "
	       "start, %.2f MB/s at the end\n",
	       BENCH_PROBE_CHUNK_BYTES >> 20, probe0.mb_s, probe1.mb_s);
	bench_targets_eval(pts, npts, &probe0, &probe1, &targets);
	bench_targets_print(&targets, &probe0, &probe1);

	if (cfg.json_path) {
		rc = bench_json_write(&cfg, pts, npts, &probe0, &probe1,
				      &targets, fs_type);
		if (rc < 0) {
			fprintf(stderr, "alog-bench-log: cannot write %s: %s\n",
				cfg.json_path, strerror(-rc));
			status = 1;
		} else {
			printf("\nwrote %s\n", cfg.json_path);
		}
	}
	if (bad) {
		fprintf(stderr,
			"alog-bench-log: %zu of %zu points failed or "
			"appended nothing\n",
			bad, npts);
		status = 1;
	}

out_rm:
	bench_phase = BENCH_PH_CLEANUP;
	bench_rm_rf(cfg.work_dir);
	free(pts);
	free(cfg.payload);
	return status;
}
