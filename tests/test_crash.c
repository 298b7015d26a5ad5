/*
 * test_crash.c - kill -9 a process appending under load, many times, and
 * check that every record whose append was reported durable is in the log
 * exactly once after reopen, at the offset it was given, with its bytes.
 *
 * The child runs several appender threads with many appends in flight.
 * Each durable callback writes (offset, record id) to a pipe; the parent
 * collects those, kills the child at a random moment, reopens the log (which
 * runs recovery), and reads everything back. Record ids are unique across
 * all rounds, so a duplicate or a stray record is caught too.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alog_common.h"
#include "alog_log.h"
#include "test_util.h"

#define THREADS 4
#define INFLIGHT 32
#define ROUNDS_DEFAULT 20

/* Every other round: segments prepared ahead of the roll, commits padded
 * (prepare_segments), so the kill also lands mid-preparation. */
static bool prepare_mode;

struct ack {
	uint64_t offset;
	uint64_t id;
};

struct child_ctx {
	struct alog_log *log;
	int pipe_fd;
	uint64_t id_base;
	pthread_mutex_t mu;
};

struct pending {
	struct child_ctx *ctx;
	uint64_t id;
	pthread_mutex_t *mu;
	pthread_cond_t *cv;
	int *inflight;
};

static size_t record_bytes(uint64_t id, uint8_t *buf)
{
	size_t len = 16 + id % 400;

	alog_put_u64(buf, id);
	alog_put_u64(buf + 8, ~id);
	for (size_t i = 16; i < len; i++)
		buf[i] = (uint8_t)(id + i);
	return len;
}

static void child_durable(void *arg, int status, uint64_t offset)
{
	struct pending *p = arg;
	uint8_t msg[16];

	if (status == 0) {
		alog_put_u64(msg, offset);
		alog_put_u64(msg + 8, p->id);
		/* 16 bytes < PIPE_BUF: atomic. */
		if (write(p->ctx->pipe_fd, msg, sizeof(msg)) != sizeof(msg))
			_exit(3);
	}
	pthread_mutex_lock(p->mu);
	(*p->inflight)--;
	pthread_cond_signal(p->cv);
	pthread_mutex_unlock(p->mu);
	free(p);
}

static void *child_thread(void *arg)
{
	struct child_ctx *ctx = arg;
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	int inflight = 0;
	uint8_t buf[512];

	for (;;) {
		struct pending *p = malloc(sizeof(*p));
		struct iovec iov;
		uint64_t id;

		if (!p)
			_exit(4);
		pthread_mutex_lock(&ctx->mu);
		id = ctx->id_base++;
		pthread_mutex_unlock(&ctx->mu);
		iov.iov_base = buf;
		iov.iov_len = record_bytes(id, buf);
		*p = (struct pending){ ctx, id, &mu, &cv, &inflight };
		pthread_mutex_lock(&mu);
		while (inflight >= INFLIGHT)
			pthread_cond_wait(&cv, &mu);
		inflight++;
		pthread_mutex_unlock(&mu);
		if (alog_log_append(ctx->log, &iov, 1, NULL, child_durable,
				    p) != 0)
			_exit(5);
	}
	return NULL;
}

static void child_main(const char *dir, int pipe_fd, uint64_t id_base)
{
	struct alog_log_options o;
	struct child_ctx ctx;
	pthread_t t[THREADS];
	int err;

	alog_log_options_init(&o);
	o.create = true;
	o.segment_bytes_max = 1 << 20; /* roll often: crash mid-roll too */
	o.record_bytes_max = 4096;
	o.batch_bytes_max = 64 * 1024;
	o.prepare_segments = prepare_mode;
	ctx.log = alog_log_open(dir, &o, &err);
	if (!ctx.log)
		_exit(2);
	ctx.pipe_fd = pipe_fd;
	ctx.id_base = id_base;
	pthread_mutex_init(&ctx.mu, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, child_thread, &ctx);
	for (;;)
		pause();
}

/* Durable acks seen so far, indexed by offset. */
static uint64_t *acked_id;
static uint8_t *acked;
static size_t acked_cap;

static void note_ack(uint64_t offset, uint64_t id)
{
	if (offset >= acked_cap) {
		size_t ncap = acked_cap ? acked_cap : 1 << 16;

		while (ncap <= offset)
			ncap *= 2;
		acked_id = realloc(acked_id, ncap * sizeof(*acked_id));
		acked = realloc(acked, ncap);
		REQUIRE(acked_id && acked);
		memset(acked + acked_cap, 0, ncap - acked_cap);
		acked_cap = ncap;
	}
	CHECK(!acked[offset]); /* one ack per offset, ever */
	acked[offset] = 1;
	acked_id[offset] = id;
}

static void drain_pipe(int fd)
{
	uint8_t msg[16 * 256];
	ssize_t n;
	size_t have = 0;

	while ((n = read(fd, msg + have, sizeof(msg) - have)) > 0) {
		have += (size_t)n;
		size_t whole = have / 16 * 16;
		for (size_t i = 0; i < whole; i += 16)
			note_ack(alog_get_u64(msg + i),
				 alog_get_u64(msg + i + 8));
		memmove(msg, msg + whole, have - whole);
		have -= whole;
	}
}

/* Reopen (recovery), then read everything back and check it. Returns the
 * log's next offset. */
static uint64_t verify_log(const char *dir, uint64_t *ids_seen_max)
{
	struct alog_log_options o;
	struct alog_log *log;
	struct alog_log_stats st;
	struct alog_cursor *c;
	struct alog_record r;
	uint64_t expect = 0;
	uint8_t want[512];
	int err, rc;

	alog_log_options_init(&o);
	o.segment_bytes_max = 1 << 20;
	o.record_bytes_max = 4096;
	o.batch_bytes_max = 64 * 1024;
	log = alog_log_open(dir, &o, &err);
	if (!log)
		fprintf(stderr, "reopen failed: %s\n", alog_strerror(err));
	REQUIRE(log);
	alog_log_stats(log, &st);
	alog_log_close(log);

	c = alog_cursor_open(dir, 0, &err);
	REQUIRE(c);
	while ((rc = alog_cursor_next(c, &r)) == 1) {
		uint64_t id;

		CHECK_EQ(r.offset, expect);
		REQUIRE(r.len >= 16);
		id = alog_get_u64(r.data);
		CHECK_EQ(alog_get_u64(r.data + 8), ~id);
		CHECK(r.len == record_bytes(id, want) &&
		      memcmp(r.data, want, r.len) == 0);
		if (r.offset < acked_cap && acked[r.offset])
			CHECK_EQ(acked_id[r.offset], id);
		if (id > *ids_seen_max)
			*ids_seen_max = id;
		expect++;
	}
	CHECK_EQ(rc, 0);
	alog_cursor_close(c);
	CHECK_EQ(expect, st.next_offset);
	/* Every acknowledged offset is present. */
	for (uint64_t off = expect; off < acked_cap; off++) {
		if (acked[off]) {
			fprintf(stderr,
				"acked offset %" PRIu64
				" lost (log ends at %" PRIu64 ")\n",
				off, expect);
			CHECK(!acked[off]);
			break;
		}
	}
	return expect;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : ROUNDS_DEFAULT;
	char *dir = t_tmpdir("crash");
	uint64_t id_base = 1, ids_max = 0, acks = 0;
	char logdir[4200];

	snprintf(logdir, sizeof(logdir), "%s/log", dir);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	for (int round = 0; round < rounds; round++) {
		int pfd[2], status;
		pid_t pid;
		useconds_t run_us = 20000 + (useconds_t)(rand() % 300000);

		REQUIRE(pipe(pfd) == 0);
		prepare_mode = round % 2 == 1;
		pid = fork();
		REQUIRE(pid >= 0);
		if (pid == 0) {
			close(pfd[0]);
			child_main(logdir, pfd[1], id_base);
		}
		close(pfd[1]);
		usleep(run_us);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
			fprintf(stderr, "child exited early with status %d\n",
				status);
			CHECK(0);
		}
		drain_pipe(pfd[0]);
		close(pfd[0]);
		verify_log(logdir, &ids_max);
		/* Next round's ids never collide with anything written. */
		id_base = ids_max + 1000000;
	}
	for (size_t i = 0; i < acked_cap; i++)
		acks += acked[i];
	printf("crash: %d rounds, %" PRIu64 " durable acks checked\n", rounds,
	       acks);
	CHECK(acks > 0);
	t_rmrf(dir);
	free(dir);
	free(acked);
	free(acked_id);
	return t_summary("test_crash");
}
