/*
 * test_log.c - unit tests of the append log: framing, appends, rolling,
 * cursors, following, retention, the disk budget, recovery and damage.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alog_common.h"
#include "alog_log.h"
#include "log_format.h"
#include "log_internal.h"
#include "test_util.h"

/* Payload of record i: deterministic, varied length, never empty. */
static size_t payload_for(uint64_t i, uint8_t *buf, size_t max)
{
	size_t len = 1 + (i * 7919) % 700;

	if (len > max)
		len = max;
	for (size_t k = 0; k < len; k++)
		buf[k] = (uint8_t)(i * 31 + k * 17 + (i >> 8));
	return len;
}

static struct alog_log *open_log(const char *dir, uint64_t seg_bytes, int *err)
{
	struct alog_log_options o;

	alog_log_options_init(&o);
	o.create = true;
	o.segment_bytes_max = seg_bytes;
	o.record_bytes_max = 64 * 1024;
	o.batch_bytes_max = 256 * 1024;
	return alog_log_open(dir, &o, err);
}

static int append_range(struct alog_log *log, uint64_t from, uint64_t to)
{
	uint8_t buf[1024];

	for (uint64_t i = from; i < to; i++) {
		struct iovec iov = { buf, payload_for(i, buf, sizeof(buf)) };
		uint64_t off;
		int rc = alog_log_append_wait(log, &iov, 1, NULL, &off);

		if (rc < 0)
			return rc;
		if (off != i)
			return -EILSEQ;
	}
	return 0;
}

/* Read [from, to) and compare every payload; returns records read. */
static uint64_t check_range(const char *dir, uint64_t from, uint64_t to)
{
	struct alog_cursor *c;
	struct alog_record r;
	uint8_t want[1024];
	uint64_t n = 0;
	int err, rc;

	c = alog_cursor_open(dir, from, &err);
	REQUIRE(c);
	while (n < to - from && (rc = alog_cursor_next(c, &r)) == 1) {
		size_t len = payload_for(from + n, want, sizeof(want));

		CHECK_EQ(r.offset, from + n);
		CHECK_EQ(r.len, len);
		if (r.len == len)
			CHECK(memcmp(r.data, want, len) == 0);
		n++;
	}
	alog_cursor_close(c);
	return n;
}

static void test_format(void)
{
	uint8_t buf[128] = { 0 };
	struct log_rec_header h;
	const char *why = "";

	memcpy(buf + 32, "hello", 5);
	log_rec_encode(buf, 5, 42, 1000);
	CHECK_EQ(log_rec_decode(buf, 37, 42, 100, &h, &why), LOG_REC_OK);
	CHECK_EQ(h.len, 5);
	CHECK_EQ(h.offset, 42);
	CHECK_EQ(h.time_ms, 1000);
	CHECK_EQ(log_rec_decode(buf, 37, 43, 100, &h, &why), LOG_REC_INVALID);
	CHECK_EQ(log_rec_decode(buf, 36, 42, 100, &h, &why),
		 LOG_REC_INCOMPLETE);
	CHECK_EQ(log_rec_decode(buf, 37, 42, 4, &h, &why), LOG_REC_INVALID);
	for (size_t i = 0; i < 37; i++) {
		buf[i] ^= 0x10;
		CHECK(log_rec_decode(buf, 37, 42, 100, &h, &why) != LOG_REC_OK);
		buf[i] ^= 0x10;
	}
	CHECK_EQ(log_rec_decode(buf + 40, 64, 0, 100, &h, &why), LOG_REC_END);
	CHECK_EQ(log_rec_decode(buf, 0, 0, 100, &h, &why), LOG_REC_END);

	{
		uint64_t base;
		char name[LOG_NAME_BYTES];

		log_seg_name(name, 1234, "seg");
		CHECK(strcmp(name, "00000000000000001234.seg") == 0);
		CHECK(log_seg_name_parse(name, "seg", &base) && base == 1234);
		CHECK(!log_seg_name_parse(name, "idx", &base));
		CHECK(!log_seg_name_parse("99999999999999999999.seg", "seg",
					  &base));
		CHECK(!log_seg_name_parse("0000000000000000123x.seg", "seg",
					  &base));
	}
}

static void test_basic_and_reopen(void)
{
	char *dir = t_tmpdir("basic");
	struct alog_log *log;
	struct alog_log_stats st;
	int err;

	log = open_log(dir, 1 << 20, &err);
	REQUIRE(log);
	CHECK_EQ(append_range(log, 0, 3000), 0);
	alog_log_stats(log, &st);
	CHECK_EQ(st.next_offset, 3000);
	CHECK_EQ(st.durable_offset, 3000);
	CHECK(st.segments >= 2); /* ~1 MB of records in 1 MiB segments */
	alog_log_close(log);
	CHECK_EQ(check_range(dir, 0, 3000), 3000);
	CHECK_EQ(check_range(dir, 1777, 3000), 3000 - 1777);

	/* Reopen: same offsets continue, nothing dropped. */
	log = open_log(dir, 1 << 20, &err);
	REQUIRE(log);
	CHECK_EQ(alog_log_recovery(log)->bytes_dropped, 0);
	CHECK_EQ(append_range(log, 3000, 3500), 0);
	alog_log_close(log);
	CHECK_EQ(check_range(dir, 0, 3500), 3500);

	{
		struct alog_log_info info;
		uint64_t total = 0;

		CHECK_EQ(alog_log_inspect(dir, &info), 0);
		for (size_t i = 0; i < info.nsegments; i++) {
			total += info.segments[i].records;
			if (i + 1 < info.nsegments) {
				CHECK(info.segments[i].sealed);
				CHECK_EQ(info.segments[i].next_offset,
					 info.segments[i + 1].base_offset);
			}
		}
		CHECK_EQ(total, 3500);
		CHECK_EQ(info.head_offset, 3500);
		free(info.segments);
	}
	t_rmrf(dir);
	free(dir);
}

static void test_errors(void)
{
	char *dir = t_tmpdir("errors");
	char path[4200];
	struct alog_log *log, *log2;
	struct alog_log_options o;
	uint8_t big[70000] = { 1 };
	struct iovec iov = { big, sizeof(big) };
	int err = 0, fd;

	snprintf(path, sizeof(path), "%s/missing", dir);
	alog_log_options_init(&o);
	CHECK(alog_log_open(path, &o, &err) == NULL);
	CHECK_EQ(err, -ENOENT);
	CHECK(alog_cursor_open(path, 0, &err) == NULL);
	CHECK_EQ(err, -ENOENT);

	/* A directory with other files is foreign, even with create. */
	snprintf(path, sizeof(path), "%s/foreign", dir);
	REQUIRE(mkdir(path, 0755) == 0);
	snprintf(path, sizeof(path), "%s/foreign/notes.txt", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	REQUIRE(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/foreign", dir);
	o.create = true;
	CHECK(alog_log_open(path, &o, &err) == NULL);
	CHECK_EQ(err, -ENOTRECOVERABLE);
	CHECK(alog_cursor_open(path, 0, &err) == NULL);
	CHECK_EQ(err, -ENOTRECOVERABLE);

	/* Bad options are refused. */
	o.segment_bytes_max = 1000;
	snprintf(path, sizeof(path), "%s/log", dir);
	CHECK(alog_log_open(path, &o, &err) == NULL);
	CHECK_EQ(err, -EINVAL);

	log = open_log(path, 1 << 20, &err);
	REQUIRE(log);
	/* One writer at a time. */
	log2 = open_log(path, 1 << 20, &err);
	CHECK(log2 == NULL);
	CHECK_EQ(err, -EWOULDBLOCK);
	CHECK_EQ(alog_log_append_wait(log, &iov, 1, NULL, NULL), -EMSGSIZE);
	iov.iov_len = 0;
	CHECK_EQ(alog_log_append_wait(log, &iov, 1, NULL, NULL), -EINVAL);
	iov.iov_len = 10;
	{
		struct alog_append_opts ao = { .expect_offset = 5,
					       .time_ms = 0 };
		uint64_t off = 99;

		CHECK_EQ(alog_log_append_wait(log, &iov, 1, &ao, NULL),
			 -ESPIPE);
		ao.expect_offset = 0;
		ao.time_ms = 123456;
		CHECK_EQ(alog_log_append_wait(log, &iov, 1, &ao, &off), 0);
		CHECK_EQ(off, 0);
	}
	alog_log_close(log);
	{
		struct alog_cursor *c = alog_cursor_open(path, 0, &err);
		struct alog_record r;

		REQUIRE(c);
		CHECK_EQ(alog_cursor_next(c, &r), 1);
		CHECK_EQ(r.time_ms, 123456);
		CHECK_EQ(alog_cursor_next(c, &r), 0);
		alog_cursor_close(c);
		c = alog_cursor_open(path, 5, &err);
		REQUIRE(c);
		CHECK_EQ(alog_cursor_next(c, &r), -ERANGE);
		alog_cursor_close(c);
	}
	t_rmrf(dir);
	free(dir);
}

/* A new log can start at any offset (a canonical log mirroring an edge). */
static void test_first_offset_and_batches(void)
{
	char *dir = t_tmpdir("first");
	struct alog_log_options o;
	struct alog_log *log;
	struct iovec iov[3] = { { "a", 1 }, { "bb", 2 }, { "ccc", 3 } };
	uint64_t off;
	int err;

	alog_log_options_init(&o);
	o.create = true;
	o.first_offset = 1000000;
	log = alog_log_open(dir, &o, &err);
	REQUIRE(log);
	CHECK_EQ(alog_log_append_wait(log, iov, 3, NULL, &off), 0);
	CHECK_EQ(off, 1000000);
	CHECK_EQ(alog_log_append_wait(log, iov, 1, NULL, &off), 0);
	CHECK_EQ(off, 1000003);
	alog_log_close(log);
	{
		struct alog_cursor *c =
			alog_cursor_open(dir, ALOG_OFFSET_ANY, &err);
		struct alog_record r;

		REQUIRE(c);
		CHECK_EQ(alog_cursor_next(c, &r), 1);
		CHECK_EQ(r.offset, 1000000);
		CHECK_EQ(alog_cursor_next(c, &r), 1);
		CHECK(r.len == 2 && memcmp(r.data, "bb", 2) == 0);
		alog_cursor_close(c);
	}
	t_rmrf(dir);
	free(dir);
}

struct follower_arg {
	const char *dir;
	uint64_t want;
	uint64_t got;
};

static void *follower(void *p)
{
	struct follower_arg *a = p;
	struct alog_cursor *c;
	struct alog_record r;
	uint8_t want[1024];
	int err, rc;

	c = alog_cursor_open(a->dir, 0, &err);
	REQUIRE(c);
	while (a->got < a->want) {
		rc = alog_cursor_next(c, &r);
		if (rc == 0) {
			/* Bounded: a stuck follower fails the test, not CI. */
			if (alog_cursor_wait(c, 10000) == 0)
				break;
			continue;
		}
		if (rc < 0)
			break;
		size_t len = payload_for(a->got, want, sizeof(want));
		if (r.offset != a->got || r.len != len ||
		    memcmp(r.data, want, len) != 0)
			break;
		a->got++;
	}
	alog_cursor_close(c);
	return NULL;
}

/* A reader follows the tail while appends roll segments under it. */
static void test_follow(void)
{
	char *dir = t_tmpdir("follow");
	struct follower_arg a = { .dir = dir, .want = 4000 };
	struct alog_log *log;
	pthread_t t;
	int err;

	log = open_log(dir, 1 << 20, &err);
	REQUIRE(log);
	REQUIRE(pthread_create(&t, NULL, follower, &a) == 0);
	for (uint64_t i = 0; i < 4000; i += 100) {
		CHECK_EQ(append_range(log, i, i + 100), 0);
		usleep(1000);
	}
	pthread_join(t, NULL);
	CHECK_EQ(a.got, 4000);
	alog_log_close(log);
	t_rmrf(dir);
	free(dir);
}

static void test_retention_and_budget(void)
{
	char *dir = t_tmpdir("retain");
	struct alog_log_options o;
	struct alog_log *log;
	struct alog_log_stats st;
	uint8_t buf[1024];
	uint64_t i;
	int err, rc = 0, n;

	alog_log_options_init(&o);
	o.create = true;
	o.segment_bytes_max = 1 << 20;
	o.disk_budget_bytes = 4 << 20; /* four segments */
	o.batch_bytes_max = 256 * 1024;
	o.record_bytes_max = 64 * 1024;
	log = alog_log_open(dir, &o, &err);
	REQUIRE(log);
	for (i = 0; i < 100000; i++) {
		struct iovec iov = { buf, payload_for(i, buf, sizeof(buf)) };

		rc = alog_log_append_wait(log, &iov, 1, NULL, NULL);
		if (rc < 0)
			break;
	}
	CHECK_EQ(rc, -EDQUOT);
	alog_log_stats(log, &st);
	CHECK_EQ(st.segments, 4);
	CHECK(st.disk_bytes <= o.disk_budget_bytes);
	/* Everything accepted before the budget stopped us is intact. */
	CHECK_EQ(st.next_offset, i);
	CHECK_EQ(check_range(dir, 0, i), i);

	/* Nothing acknowledged downstream: nothing may be deleted. */
	CHECK_EQ(alog_log_retain(log, 0, alog_now_ms()), 0);
	/* Acked up to the middle: whole segments below it go. */
	n = alog_log_retain(log, i / 2, alog_now_ms());
	CHECK(n >= 1);
	alog_log_stats(log, &st);
	CHECK(st.start_offset > 0 && st.start_offset <= i / 2);
	{
		struct alog_cursor *c = alog_cursor_open(dir, 0, &err);
		struct alog_record r;

		REQUIRE(c);
		CHECK_EQ(alog_cursor_next(c, &r), -ERANGE);
		alog_cursor_close(c);
	}
	CHECK_EQ(check_range(dir, st.start_offset, i), i - st.start_offset);
	/* Space is back: appends work again and continue the offsets. */
	CHECK_EQ(append_range(log, i, i + 500), 0);
	alog_log_close(log);

	/* The retention checkpoint survives a reopen. */
	log = alog_log_open(dir, &o, &err);
	REQUIRE(log);
	alog_log_stats(log, &st);
	CHECK(st.start_offset > 0);
	CHECK_EQ(st.next_offset, i + 500);
	alog_log_close(log);

	/* Minimum age: a fresh segment is kept even when acknowledged. */
	o.retention_age_min_ms = 3600 * 1000;
	log = alog_log_open(dir, &o, &err);
	REQUIRE(log);
	CHECK_EQ(alog_log_retain(log, UINT64_MAX, alog_now_ms()), 0);
	CHECK(alog_log_retain(log, UINT64_MAX, alog_now_ms() + 7200 * 1000) >=
	      1);
	alog_log_close(log);
	t_rmrf(dir);
	free(dir);
}

/* Path of the last segment file of dir. */
static void last_segment(const char *dir, char *out, size_t outlen)
{
	struct alog_log_info info;

	REQUIRE(alog_log_inspect(dir, &info) == 0 && info.nsegments > 0);
	snprintf(out, outlen, "%s/%020" PRIu64 ".seg", dir,
		 info.segments[info.nsegments - 1].base_offset);
	free(info.segments);
}

static void copy_file(const char *from, const char *to)
{
	char cmd[9000];

	snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s'", from, to);
	REQUIRE(system(cmd) == 0);
}

/*
 * Truncate the active segment at every byte position of its last three
 * records, reopen, and check exactly the complete records survive.
 */
static void test_torn_tail_every_byte(void)
{
	char *dir = t_tmpdir("torn");
	char src[4200], seg[4400], work[4200];
	struct alog_log *log;
	uint64_t ends[4];
	int err;

	snprintf(src, sizeof(src), "%s/src", dir);
	log = open_log(src, 1 << 20, &err);
	REQUIRE(log);
	CHECK_EQ(append_range(log, 0, 50), 0);
	alog_log_close(log);
	/* Record boundaries of the last three records. */
	{
		uint8_t buf[1024];
		uint64_t pos = 64;

		for (uint64_t i = 0; i < 50; i++) {
			if (i == 47)
				ends[0] = pos;
			pos += 32 + payload_for(i, buf, sizeof(buf));
			if (i >= 47)
				ends[i - 46] = pos;
		}
	}
	for (uint64_t cut = ends[0]; cut <= ends[3]; cut++) {
		struct alog_log_stats st;
		uint64_t want = 47;

		snprintf(work, sizeof(work), "%s/w", dir);
		t_rmrf(work);
		copy_file(src, work);
		last_segment(work, seg, sizeof(seg));
		/* Simulate the crash: bytes past cut never reached disk. */
		{
			int fd = open(seg, O_RDWR);
			static const uint8_t z[2048];

			REQUIRE(fd >= 0);
			REQUIRE(pwrite(fd, z, ends[3] - cut + 1, (off_t)cut) >=
				0);
			close(fd);
		}
		for (int k = 1; k <= 3; k++)
			if (cut >= ends[k])
				want = 47 + (uint64_t)k;
		log = open_log(work, 1 << 20, &err);
		REQUIRE(log);
		alog_log_stats(log, &st);
		CHECK_EQ(st.next_offset, want);
		{
			/* Dropped: from the last whole record to the last
			 * non-zero byte that survived the cut. */
			uint64_t end_kept = ends[want - 47], nz = end_kept;
			uint8_t b;
			char srcseg[4400];
			int fd;

			last_segment(src, srcseg, sizeof(srcseg));
			fd = open(srcseg, O_RDONLY);
			REQUIRE(fd >= 0);
			for (uint64_t q = end_kept; q < cut; q++)
				if (pread(fd, &b, 1, (off_t)q) == 1 && b != 0)
					nz = q + 1;
			close(fd);
			CHECK_EQ(alog_log_recovery(log)->bytes_dropped,
				 nz - end_kept);
		}
		CHECK_EQ(append_range(log, want, want + 2), 0);
		alog_log_close(log);
		CHECK_EQ(check_range(work, 0, want + 2), want + 2);
	}
	t_rmrf(dir);
	free(dir);
}

static void flip_byte(const char *path, uint64_t pos)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	REQUIRE(fd >= 0);
	REQUIRE(pread(fd, &b, 1, (off_t)pos) == 1);
	b ^= 0x5a;
	REQUIRE(pwrite(fd, &b, 1, (off_t)pos) == 1);
	close(fd);
}

static void test_bit_flips(void)
{
	char *dir = t_tmpdir("flip");
	char src[4200], work[4200], seg[4400];
	struct alog_log *log;
	struct alog_log_info info;
	uint8_t buf[1024];
	uint64_t pos_of[3001], p = 64;
	int err;

	snprintf(src, sizeof(src), "%s/src", dir);
	log = open_log(src, 1 << 20, &err);
	REQUIRE(log);
	CHECK_EQ(append_range(log, 0, 3000), 0);
	alog_log_close(log);
	REQUIRE(alog_log_inspect(src, &info) == 0 && info.nsegments >= 2);
	uint64_t last_base = info.segments[info.nsegments - 1].base_offset;
	uint64_t first_next = info.segments[0].next_offset;
	free(info.segments);
	for (uint64_t i = last_base; i < 3000; i++) {
		pos_of[i - last_base] = p;
		p += 32 + payload_for(i, buf, sizeof(buf));
	}

	/* 1. Flip in the last record of the active segment: a torn tail. */
	snprintf(work, sizeof(work), "%s/w1", dir);
	copy_file(src, work);
	last_segment(work, seg, sizeof(seg));
	flip_byte(seg, pos_of[2999 - last_base] + 40);
	log = open_log(work, 1 << 20, &err);
	REQUIRE(log);
	CHECK(alog_log_recovery(log)->bytes_dropped > 0);
	CHECK(!alog_log_recovery(log)->quarantined);
	alog_log_close(log);
	CHECK_EQ(check_range(work, 0, 3000), 2999);

	/* 2. Flip in the middle of the active segment: valid records follow,
	 *    so the cut bytes are kept in quarantine/, and the log opens. */
	snprintf(work, sizeof(work), "%s/w2", dir);
	copy_file(src, work);
	last_segment(work, seg, sizeof(seg));
	uint64_t mid = last_base + (3000 - last_base) / 2;
	flip_byte(seg, pos_of[mid - last_base] + 35);
	log = open_log(work, 1 << 20, &err);
	REQUIRE(log);
	CHECK(alog_log_recovery(log)->quarantined);
	CHECK_EQ(alog_log_recovery(log)->drop_position,
		 pos_of[mid - last_base]);
	alog_log_close(log);
	{
		char q[4400];
		struct stat st;

		snprintf(q, sizeof(q),
			 "%s/quarantine/%020" PRIu64 ".seg.at-%" PRIu64, work,
			 last_base, pos_of[mid - last_base]);
		CHECK(stat(q, &st) == 0 && st.st_size > 0);
	}
	CHECK_EQ(check_range(work, 0, 3000), mid);

	/* 3. Flip inside a sealed segment: the log still opens and appends;
	 *    a reader gets -EBADMSG with the place, and can skip past it. */
	snprintf(work, sizeof(work), "%s/w3", dir);
	copy_file(src, work);
	snprintf(seg, sizeof(seg), "%s/%020d.seg", work, 0);
	flip_byte(seg, 64 + 32); /* the 1-byte payload of record 0 */
	log = open_log(work, 1 << 20, &err);
	REQUIRE(log);
	CHECK_EQ(append_range(log, 3000, 3010), 0);
	alog_log_close(log);
	{
		struct alog_cursor *c = alog_cursor_open(work, 0, &err);
		struct alog_record r;
		uint64_t lost_from, lost_to, n = 0;
		int rc;

		REQUIRE(c);
		CHECK_EQ(alog_cursor_next(c, &r), -EBADMSG);
		REQUIRE(alog_cursor_damage(c));
		CHECK_EQ(alog_cursor_damage(c)->segment_base, 0);
		CHECK_EQ(alog_cursor_damage(c)->position, 64);
		CHECK_EQ(alog_cursor_damage(c)->offset, 0);
		CHECK_EQ(alog_cursor_skip_damage(c, &lost_from, &lost_to), 0);
		CHECK_EQ(lost_from, 0);
		CHECK_EQ(lost_to, 1);
		while ((rc = alog_cursor_next(c, &r)) == 1)
			n++;
		CHECK_EQ(rc, 0);
		CHECK_EQ(n, 3009);
		alog_cursor_close(c);
	}
	/* 4. A sealed segment's index is damaged: rebuilt on open. */
	snprintf(work, sizeof(work), "%s/w4", dir);
	copy_file(src, work);
	snprintf(seg, sizeof(seg), "%s/%020d.idx", work, 0);
	flip_byte(seg, 20);
	log = open_log(work, 1 << 20, &err);
	REQUIRE(log);
	CHECK_EQ(alog_log_recovery(log)->indexes_rebuilt, 1);
	alog_log_close(log);
	CHECK_EQ(check_range(work, 0, 3000), 3000);
	CHECK_EQ(check_range(work, first_next - 1, 3000),
		 3000 - first_next + 1);
	t_rmrf(dir);
	free(dir);
}

/* Crash between creating the next segment and sealing the old one. */
static void test_crash_mid_roll(void)
{
	char *dir = t_tmpdir("midroll");
	char path[4400];
	struct alog_log *log;
	struct alog_log_stats st;
	struct alog_log_info info;
	int err;

	log = open_log(dir, 1 << 20, &err);
	REQUIRE(log);
	CHECK_EQ(append_range(log, 0, 100), 0);
	alog_log_close(log);
	/* Fake the crash: an empty next segment exists, the old one has no
	 * index. Its base claims offsets that were never written. */
	{
		struct log_seg_header sh = { .base_offset = 150,
					     .created_ms = alog_now_ms(),
					     .segment_bytes_max = 1 << 20 };
		uint8_t hdr[64];
		int fd;

		REQUIRE(alog_log_inspect(dir, &info) == 0);
		memcpy(sh.identity, info.identity, 16);
		free(info.segments);
		log_seg_header_encode(hdr, &sh);
		snprintf(path, sizeof(path), "%s/%020d.seg", dir, 150);
		fd = open(path, O_CREAT | O_RDWR, 0644);
		REQUIRE(fd >= 0);
		REQUIRE(pwrite(fd, hdr, 64, 0) == 64);
		REQUIRE(ftruncate(fd, 1 << 20) == 0);
		close(fd);
	}
	log = open_log(dir, 1 << 20, &err);
	REQUIRE(log);
	CHECK_EQ(alog_log_recovery(log)->segments_removed, 1);
	alog_log_stats(log, &st);
	CHECK_EQ(st.next_offset, 100);
	CHECK_EQ(append_range(log, 100, 200), 0);
	alog_log_close(log);
	CHECK_EQ(check_range(dir, 0, 200), 200);
	t_rmrf(dir);
	free(dir);
}

static void test_write_mode(void)
{
	char *dir = t_tmpdir("wmode");
	struct alog_log_options o;
	struct alog_log *log;
	struct alog_log_stats st;
	int err;

	alog_log_options_init(&o);
	o.create = true;
	o.durability = ALOG_DURABLE_WRITE;
	o.fsync_interval_ms = 50;
	log = alog_log_open(dir, &o, &err);
	REQUIRE(log);
	CHECK_EQ(append_range(log, 0, 200), 0);
	CHECK_EQ(alog_log_sync(log), 0);
	alog_log_stats(log, &st);
	CHECK_EQ(st.durable_offset, 200);
	CHECK(st.fsyncs < st.commits); /* not one fsync per commit */
	alog_log_close(log);
	CHECK_EQ(check_range(dir, 0, 200), 200);
	t_rmrf(dir);
	free(dir);
}

static void test_age_roll(void)
{
	char *dir = t_tmpdir("age");
	struct alog_log_options o;
	struct alog_log *log;
	struct alog_log_stats st;
	int err;

	alog_log_options_init(&o);
	o.create = true;
	o.segment_bytes_max = 1 << 20;
	o.record_bytes_max = 64 * 1024;
	o.segment_age_max_ms = 50;
	log = alog_log_open(dir, &o, &err);
	REQUIRE(log);
	CHECK_EQ(append_range(log, 0, 10), 0);
	/* Bounded wait for the roll by age (50 ms), not a timing assertion. */
	for (int i = 0; i < 200; i++) {
		alog_log_stats(log, &st);
		if (st.segments >= 2)
			break;
		usleep(10000);
	}
	CHECK(st.segments >= 2);
	CHECK_EQ(append_range(log, 10, 20), 0);
	alog_log_close(log);
	CHECK_EQ(check_range(dir, 0, 20), 20);
	t_rmrf(dir);
	free(dir);
}

/*
 * Retention racing a segment roll (found by the shipper's tests): after a
 * roll the old segment is sealed while its last batch is still on its way
 * to disk, and for that while it is neither active nor in the sealed list.
 * Retention then moved the log's start past it, so a reader at the
 * acknowledged offset got -ERANGE. The fault hook runs in the commit
 * thread just before that batch's fdatasync; it retains exactly then.
 */
static struct alog_log *race_log;
static const char *race_dir;
static uint64_t race_violations, race_windows;

static int race_hook(void)
{
	struct alog_log_stats st;
	struct alog_log_info info;

	alog_log_stats(race_log, &st);
	if (alog_log_inspect(race_dir, &info) != 0)
		return 0;
	/* More segment files than the log counts: one is being sealed. */
	if (info.nsegments == st.segments + 1) {
		free(info.segments);
		race_windows++;
		if (alog_log_retain(race_log, st.durable_offset,
				    alog_now_ms()) < 0)
			return 0;
		if (alog_log_inspect(race_dir, &info) != 0)
			return 0;
		if (info.start_offset > st.durable_offset)
			race_violations++;
	}
	free(info.segments);
	return 0;
}

static void *race_appender(void *p)
{
	uint8_t buf[400];

	memset(buf, 'r', sizeof(buf));
	for (int i = 0; i < 5000; i++) {
		struct iovec iov = { buf, sizeof(buf) };

		if (alog_log_append_wait(p, &iov, 1, NULL, NULL) != 0)
			break;
	}
	return NULL;
}

static void test_retention_races_rolls(void)
{
	char *dir = t_tmpdir("race");
	struct alog_log_options o;
	struct alog_log_stats st;
	pthread_t app[4];
	int err;

	alog_log_options_init(&o);
	o.create = true;
	o.segment_bytes_max = 1 << 20;
	o.record_bytes_max = 4096;
	o.batch_bytes_max = 64 * 1024;
	race_log = alog_log_open(dir, &o, &err);
	REQUIRE(race_log);
	race_dir = dir;
	log_fault_fsync_hook = race_hook;
	/* Several appenders, so the old segment's last batch is in flight
	 * when it rolls. */
	for (int i = 0; i < 4; i++)
		REQUIRE(pthread_create(&app[i], NULL, race_appender,
				       race_log) == 0);
	for (int i = 0; i < 4; i++)
		pthread_join(app[i], NULL);
	log_fault_fsync_hook = NULL;
	alog_log_stats(race_log, &st);
	CHECK_EQ(st.next_offset, 20000);
	CHECK(race_windows > 0);
	CHECK_EQ(race_violations, 0);
	alog_log_close(race_log);
	{
		/* Everything from the start on is readable, with no gap. */
		struct alog_cursor *c =
			alog_cursor_open(dir, ALOG_OFFSET_ANY, &err);
		struct alog_record r;
		uint64_t first = UINT64_MAX, n = 0;
		int rc;

		REQUIRE(c);
		while ((rc = alog_cursor_next(c, &r)) == 1) {
			if (first == UINT64_MAX)
				first = r.offset;
			n++;
		}
		CHECK_EQ(rc, 0);
		CHECK_EQ(first + n, 20000);
		alog_cursor_close(c);
	}
	t_rmrf(dir);
	free(dir);
}

static int fault_countdown;

static int fault_fsync(void)
{
	return --fault_countdown == 0 ? -EIO : 0;
}

struct fault_ack {
	int status;
	int called;
};

static void fault_cb(void *arg, int status, uint64_t offset)
{
	struct fault_ack *a = arg;

	(void)offset;
	__atomic_store_n(&a->status, status, __ATOMIC_SEQ_CST);
	__atomic_store_n(&a->called, 1, __ATOMIC_SEQ_CST);
}

/* A failed fdatasync stops the log: that batch and everything after it
 * fails, HEAD stays at the last durable record, reopen recovers. */
static void test_fsync_failure_is_fatal(void)
{
	char *dir = t_tmpdir("failstop");
	struct alog_log *log;
	struct alog_log_stats st;
	struct fault_ack a = { 0, 0 };
	struct iovec iov = { "x", 1 };
	uint64_t head = 0;
	int err, dirfd;

	log = open_log(dir, 1 << 20, &err);
	REQUIRE(log);
	CHECK_EQ(append_range(log, 0, 100), 0);
	fault_countdown = 1;
	log_fault_fsync_hook = fault_fsync;
	CHECK_EQ(alog_log_append(log, &iov, 1, NULL, fault_cb, &a), 0);
	CHECK_EQ(alog_log_sync(log), -EIO);
	/* The callback comes from the commit thread: wait for it (bounded). */
	for (int i = 0;
	     i < 10000 && !__atomic_load_n(&a.called, __ATOMIC_SEQ_CST); i++)
		usleep(1000);
	CHECK(__atomic_load_n(&a.called, __ATOMIC_SEQ_CST));
	CHECK_EQ(__atomic_load_n(&a.status, __ATOMIC_SEQ_CST), -EIO);
	/* No retry-and-pretend: later appends fail, even when fsync works. */
	log_fault_fsync_hook = NULL;
	CHECK_EQ(alog_log_append_wait(log, &iov, 1, NULL, NULL), -EIO);
	alog_log_stats(log, &st);
	CHECK_EQ(st.failed, -EIO);
	CHECK_EQ(st.durable_offset, 100);
	dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	REQUIRE(dirfd >= 0);
	CHECK_EQ(log_read_head(dirfd, &head), 0);
	CHECK_EQ(head, 100); /* readers never saw the unsynced record */
	close(dirfd);
	alog_log_close(log);
	/* Reopen: recovery decides; the 100 durable records are there. */
	log = open_log(dir, 1 << 20, &err);
	REQUIRE(log);
	alog_log_stats(log, &st);
	CHECK(st.next_offset >= 100);
	CHECK_EQ(st.failed, 0);
	alog_log_close(log);
	CHECK_EQ(check_range(dir, 0, 100), 100);
	t_rmrf(dir);
	free(dir);
}

/*
 * Batches in flight together: appenders that do not wait keep the commit
 * thread submitting while earlier batches are still on their way to disk.
 * Callbacks must still come in offset order, each with status 0 meaning
 * every earlier record is durable; then one fdatasync fails in the middle
 * of such a pipeline: what was acknowledged is a prefix, every later
 * callback fails, HEAD stays at that prefix.
 */
struct pipe_state {
	pthread_mutex_t mu;
	uint64_t expect; /* next first_offset a callback must carry */
	uint64_t ok, failed, misordered, late_ok;
	uint64_t refused; /* appends refused at once (log already failed) */
	struct alog_log *log;
	uint64_t per_thread;
};

static void pipe_cb(void *arg, int status, uint64_t first_offset)
{
	struct pipe_state *s = arg;

	pthread_mutex_lock(&s->mu);
	if (status == 0) {
		/* Offsets are handed out in order and every append here is
		 * one record, so callbacks must come exactly in order. */
		if (first_offset != s->expect)
			s->misordered++;
		if (s->failed > 0)
			s->late_ok++;
		s->expect = first_offset + 1;
		s->ok++;
	} else {
		s->failed++;
	}
	pthread_mutex_unlock(&s->mu);
}

static void *pipe_appender(void *p)
{
	struct pipe_state *s = p;
	uint8_t buf[200];

	memset(buf, 'p', sizeof(buf));
	for (uint64_t i = 0; i < s->per_thread; i++) {
		struct iovec iov = { buf, 1 + i % sizeof(buf) };

		if (alog_log_append(s->log, &iov, 1, NULL, pipe_cb, s) < 0) {
			pthread_mutex_lock(&s->mu);
			s->refused += s->per_thread - i;
			pthread_mutex_unlock(&s->mu);
			break;
		}
	}
	return NULL;
}

static void run_pipeline(struct pipe_state *s, unsigned threads)
{
	pthread_t t[8];

	for (unsigned i = 0; i < threads; i++)
		REQUIRE(pthread_create(&t[i], NULL, pipe_appender, s) == 0);
	for (unsigned i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	(void)alog_log_sync(s->log);
}

static void test_commits_in_flight(void)
{
	char *dir = t_tmpdir("inflight");
	struct alog_log_options o;
	struct alog_log_stats st;
	struct pipe_state s = { .per_thread = 20000 };
	uint64_t head = 0;
	int err, dirfd;

	pthread_mutex_init(&s.mu, NULL);
	alog_log_options_init(&o);
	o.create = true;
	o.commits_in_flight = 8;
	o.batch_bytes_max = 64 * 1024; /* many batches */
	o.record_bytes_max = 1024;
	s.log = alog_log_open(dir, &o, &err);
	REQUIRE(s.log);
	run_pipeline(&s, 4);
	/* Durable first, callbacks right after: wait for them (bounded). */
	for (int i = 0; i < 10000; i++) {
		bool all;

		pthread_mutex_lock(&s.mu);
		all = s.ok + s.failed >= 80000;
		pthread_mutex_unlock(&s.mu);
		if (all)
			break;
		usleep(1000);
	}
	alog_log_stats(s.log, &st);
	pthread_mutex_lock(&s.mu);
	CHECK_EQ(s.ok, 80000);
	CHECK_EQ(s.misordered, 0);
	pthread_mutex_unlock(&s.mu);
	CHECK_EQ(st.durable_offset, 80000);
	CHECK(st.inflight_max > 1); /* the pipeline did overlap */
	CHECK(st.inflight_max <= 8);
	CHECK_EQ(st.fsyncs, st.commits);

	/* The 5th fdatasync from now fails, with batches queued behind it. */
	fault_countdown = 5;
	log_fault_fsync_hook = fault_fsync;
	run_pipeline(&s, 4);
	log_fault_fsync_hook = NULL;
	alog_log_stats(s.log, &st);
	/* Closing joins the commit thread: every callback has run. */
	alog_log_close(s.log);
	CHECK_EQ(st.failed, -EIO);
	CHECK_EQ(s.misordered, 0);
	CHECK_EQ(s.late_ok, 0); /* nothing acknowledged after the failure */
	CHECK(s.failed > 0);
	CHECK(s.ok > 80000 && s.ok < 160000);
	CHECK_EQ(st.durable_offset, s.expect);
	dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	REQUIRE(dirfd >= 0);
	CHECK_EQ(log_read_head(dirfd, &head), 0);
	CHECK_EQ(head, s.expect); /* readers see exactly the acknowledged */
	close(dirfd);
	/* Every accepted append got exactly one callback. */
	CHECK_EQ(s.ok + s.failed + s.refused, 160000);
	/* Reopen: the acknowledged prefix is all there. */
	s.log = alog_log_open(dir, &o, &err);
	REQUIRE(s.log);
	alog_log_stats(s.log, &st);
	CHECK(st.next_offset >= s.expect);
	alog_log_close(s.log);
	pthread_mutex_destroy(&s.mu);
	t_rmrf(dir);
	free(dir);
}

/*
 * Batches in flight across segment rolls: with 1 MiB segments the 8-deep
 * pipeline rolls every few hundred batches. A roll's batch goes alone (the
 * old segment is sealed before anything reaches the new one), so every
 * record is found, in order, in sealed segments whose indexes check out.
 */
static void test_commits_in_flight_rolls(void)
{
	char *dir = t_tmpdir("inflight-roll");
	const struct alog_recovery_report *rep;
	struct alog_log_options o;
	struct alog_log_stats st;
	struct pipe_state s = { .per_thread = 15000 };
	struct alog_cursor *c;
	struct alog_record r;
	uint64_t n = 0;
	int err, rc;

	pthread_mutex_init(&s.mu, NULL);
	alog_log_options_init(&o);
	o.create = true;
	o.commits_in_flight = 8;
	o.segment_bytes_max = 1 << 20;
	o.batch_bytes_max = 32 * 1024;
	o.record_bytes_max = 1024;
	s.log = alog_log_open(dir, &o, &err);
	REQUIRE(s.log);
	run_pipeline(&s, 4);
	alog_log_stats(s.log, &st);
	alog_log_close(s.log);
	CHECK_EQ(s.ok, 60000);
	CHECK_EQ(s.misordered, 0);
	CHECK(st.segments > 5); /* it did roll, repeatedly */
	CHECK(st.inflight_max > 1);
	/* Reopen: nothing to repair, every sealed index is good. */
	s.log = alog_log_open(dir, &o, &err);
	REQUIRE(s.log);
	rep = alog_log_recovery(s.log);
	CHECK_EQ(rep->bytes_dropped, 0);
	CHECK_EQ(rep->indexes_rebuilt, 0);
	CHECK_EQ(rep->segments, st.segments);
	alog_log_close(s.log);
	c = alog_cursor_open(dir, 0, &err);
	REQUIRE(c);
	while ((rc = alog_cursor_next(c, &r)) == 1) {
		if (r.offset != n)
			break;
		n++;
	}
	CHECK_EQ(rc, 0);
	CHECK_EQ(n, 60000);
	alog_cursor_close(c);
	pthread_mutex_destroy(&s.mu);
	t_rmrf(dir);
	free(dir);
}

static int fail_prepare(void)
{
	return -EIO;
}

static int slow_prepare(void)
{
	usleep(1500 * 1000); /* longer than filling a 1 MiB segment */
	return 0;
}

/* Slow from the second preparation on (the first is a new log's first
 * segment, inside open): longer than filling three 1 MiB segments. */
static int slow_prepare_calls;

static int slow_after_open(void)
{
	if (slow_prepare_calls++ > 0)
		usleep(5000 * 1000);
	return 0;
}

/* Bytes of the log's segment and temp files as the filesystem has them. */
static uint64_t dir_bytes(const char *dir)
{
	char cmd[4400];
	unsigned long long n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		 "find '%s' -maxdepth 1 -type f \\( -name '*.seg' -o -name "
		 "'*.tmp' \\) -printf '%%s\\n' | awk '{s+=$1} END{print s+0}'",
		 dir);
	p = popen(cmd, "r");
	REQUIRE(p);
	CHECK(fscanf(p, "%llu", &n) == 1);
	pclose(p);
	return n;
}

/* Append until the budget stops it, checking the files on disk against
 * the budget as it goes; *n: records appended. */
static int fill_to_budget(struct alog_log *log, const char *dir,
			  uint64_t budget, uint64_t *n)
{
	uint8_t buf[1024];
	uint64_t i;
	int rc = 0;

	for (i = 0; i < 100000; i++) {
		struct iovec iov = { buf, payload_for(i, buf, sizeof(buf)) };

		rc = alog_log_append_wait(log, &iov, 1, NULL, NULL);
		if (rc < 0)
			break;
		if (i % 250 == 0)
			CHECK(dir_bytes(dir) <= budget);
	}
	*n = i;
	return rc;
}

static bool file_exists(const char *dir, const char *name, off_t *size)
{
	char path[4300];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (stat(path, &st) != 0)
		return false;
	if (size)
		*size = st.st_size;
	return true;
}

/* Wait (5 s at most) for the preparer to have next.seg.tmp ready. */
static bool wait_prepared(struct alog_log *log, uint64_t want_disk)
{
	struct alog_log_stats st;

	for (int i = 0; i < 500; i++) {
		alog_log_stats(log, &st);
		if (st.segment_prepared && st.disk_bytes == want_disk)
			return true;
		usleep(10000);
	}
	return false;
}

/*
 * prepare_segments: the next segment is zeroed ahead of the roll, rolls
 * use it, the records are the same as ever, the budget counts it, a failed
 * preparation falls back to the plain roll, and nothing of it outlives
 * close. (What it is for, fewer writes per fdatasync, is measured by
 * bench/edge, not here.)
 */
static void test_prepared_segments(void)
{
	char *dir = t_tmpdir("prepared");
	struct alog_log_options o;
	struct alog_log *log;
	struct alog_log_stats st;
	off_t size = 0;
	uint64_t i, n = 9000; /* ~3.2 MB of 1 MiB segments */
	int err, rc = 0, fd;

	alog_log_options_init(&o);
	o.create = true;
	o.segment_bytes_max = 1 << 20;
	o.record_bytes_max = 64 * 1024;
	o.batch_bytes_max = 256 * 1024;
	o.prepare_segments = true;

	/* Padded commits must not overlap: one in flight in fsync mode. */
	o.commits_in_flight = 2;
	CHECK(alog_log_open(dir, &o, &err) == NULL);
	CHECK_EQ(err, -EINVAL);
	o.commits_in_flight = 1;

	log = alog_log_open(dir, &o, &err);
	REQUIRE(log);
	/* Active segment + the prepared one, which counts on disk. */
	CHECK(wait_prepared(log, 2u << 20));
	CHECK(file_exists(dir, "next.seg.tmp", &size));
	CHECK_EQ(size, (off_t)(1 << 20));
	CHECK_EQ(append_range(log, 0, n), 0);
	CHECK(alog_log_sync(log) == 0);
	alog_log_stats(log, &st);
	CHECK(st.segments >= 3);
	CHECK_EQ(st.rolls_prepared + st.rolls_plain, st.segments - 1);
	CHECK(st.rolls_prepared >= 1);
	CHECK_EQ(st.prepare_errors, 0);
	CHECK_EQ(check_range(dir, 0, n), n);
	alog_log_close(log);
	CHECK(!file_exists(dir, "next.seg.tmp", NULL));

	/* Reopened the plain way: recovery finds every record, and the
	 * zeros after the last one are a clean end, not a torn tail. */
	o.prepare_segments = false;
	o.create = false;
	log = alog_log_open(dir, &o, &err);
	REQUIRE(log);
	CHECK_EQ(alog_log_recovery(log)->bytes_dropped, 0);
	alog_log_stats(log, &st);
	CHECK_EQ(st.next_offset, n);
	CHECK_EQ(st.rolls_prepared + st.rolls_plain, 0);
	alog_log_close(log);
	CHECK_EQ(check_range(dir, 0, n), n);

	/* A stale next.seg.tmp (a crash while preparing) goes on open. */
	{
		char path[4300];

		snprintf(path, sizeof(path), "%s/next.seg.tmp", dir);
		fd = open(path, O_WRONLY | O_CREAT, 0644);
		REQUIRE(fd >= 0);
		CHECK(write(fd, "stale", 5) == 5);
		close(fd);
	}
	log = alog_log_open(dir, &o, &err);
	REQUIRE(log);
	CHECK(!file_exists(dir, "next.seg.tmp", NULL));
	alog_log_close(log);

	/* Preparation fails: counted, rolls go the plain way, nothing lost
	 * and no half-made file left. */
	o.prepare_segments = true;
	log_fault_prepare_hook = fail_prepare;
	log = alog_log_open(dir, &o, &err);
	REQUIRE(log);
	CHECK_EQ(append_range(log, n, n + 4000), 0);
	alog_log_stats(log, &st);
	CHECK(st.prepare_errors >= 1);
	CHECK_EQ(st.prepare_last_error, -EIO);
	CHECK_EQ(st.rolls_prepared, 0);
	CHECK(st.rolls_plain >= 1);
	CHECK(!file_exists(dir, "next.seg.tmp", NULL));
	alog_log_close(log);
	log_fault_prepare_hook = NULL;
	CHECK_EQ(check_range(dir, 0, n + 4000), n + 4000);
	t_rmrf(dir);

	/* The budget holds the prepared file too, from the start of its
	 * making: with 4 MiB of 1 MiB segments the preparer makes one only
	 * while the budget has room for it and a plain roll besides. */
	o.create = true;
	o.disk_budget_bytes = 4u << 20;
	log = alog_log_open(dir, &o, &err);
	REQUIRE(log);
	CHECK(wait_prepared(log, 2u << 20));
	rc = fill_to_budget(log, dir, o.disk_budget_bytes, &i);
	CHECK_EQ(rc, -EDQUOT);
	alog_log_stats(log, &st);
	CHECK_EQ(st.segments, 4);
	/* Whether the second roll finds its segment made yet or not,
	 * two of the three are prepared ones. */
	CHECK_EQ(st.rolls_prepared, 2);
	CHECK_EQ(st.rolls_plain, 1);
	CHECK(st.disk_bytes <= o.disk_budget_bytes);
	CHECK(!file_exists(dir, "next.seg.tmp", NULL));
	alog_log_close(log);
	CHECK_EQ(check_range(dir, 0, i), i);
	t_rmrf(dir);

	/* A slow preparer: rolls come while it works (the plain way, in
	 * the room it left), and the files never pass the budget. */
	slow_prepare_calls = 0;
	log_fault_prepare_hook = slow_after_open;
	log = alog_log_open(dir, &o, &err);
	REQUIRE(log);
	rc = fill_to_budget(log, dir, o.disk_budget_bytes, &i);
	CHECK_EQ(rc, -EDQUOT);
	alog_log_stats(log, &st);
	CHECK(st.rolls_plain >= 1);
	/* A roll that finds the budget's last room held by the segment
	 * being prepared waits for it instead of failing early. */
	CHECK_EQ(st.segments, 4);
	CHECK(st.disk_bytes <= o.disk_budget_bytes);
	alog_log_close(log);
	log_fault_prepare_hook = NULL;
	CHECK(dir_bytes(dir) <= o.disk_budget_bytes);
	CHECK_EQ(check_range(dir, 0, i), i);
	t_rmrf(dir);

	/* A new log whose first segment cannot be prepared opens anyway
	 * (the plain way) and says so; closing while the preparer works
	 * leaves no half-made file. */
	o.disk_budget_bytes = 0;
	log_fault_prepare_hook = fail_prepare;
	log = alog_log_open(dir, &o, &err);
	REQUIRE(log);
	alog_log_stats(log, &st);
	CHECK(st.prepare_errors >= 1);
	CHECK_EQ(append_range(log, 0, 100), 0);
	alog_log_close(log);
	log_fault_prepare_hook = slow_prepare;
	o.create = false;
	log = alog_log_open(dir, &o, &err);
	REQUIRE(log);
	usleep(100 * 1000); /* the preparer is in its first chunk now */
	alog_log_close(log);
	log_fault_prepare_hook = NULL;
	CHECK(!file_exists(dir, "next.seg.tmp", NULL));
	CHECK_EQ(check_range(dir, 0, 100), 100);
	t_rmrf(dir);
	o.create = true;

	/* Write mode (one batch in flight there too): padded commits, a
	 * reopen finds everything. */
	o.durability = ALOG_DURABLE_WRITE;
	o.fsync_interval_ms = 50;
	log = alog_log_open(dir, &o, &err);
	REQUIRE(log);
	CHECK_EQ(append_range(log, 0, 6000), 0);
	CHECK(alog_log_sync(log) == 0);
	alog_log_stats(log, &st);
	CHECK(st.rolls_prepared >= 1);
	alog_log_close(log);
	o.create = false;
	o.prepare_segments = false;
	log = alog_log_open(dir, &o, &err);
	REQUIRE(log);
	CHECK_EQ(alog_log_recovery(log)->bytes_dropped, 0);
	alog_log_close(log);
	CHECK_EQ(check_range(dir, 0, 6000), 6000);
	t_rmrf(dir);
	free(dir);
}

int main(int argc, char **argv)
{
	/* test_log [NAME...]: only the tests named (without test_). */
	static const struct {
		const char *name;
		void (*fn)(void);
	} tests[] = {
		{ "format", test_format },
		{ "basic_and_reopen", test_basic_and_reopen },
		{ "errors", test_errors },
		{ "first_offset_and_batches", test_first_offset_and_batches },
		{ "follow", test_follow },
		{ "retention_and_budget", test_retention_and_budget },
		{ "torn_tail_every_byte", test_torn_tail_every_byte },
		{ "bit_flips", test_bit_flips },
		{ "crash_mid_roll", test_crash_mid_roll },
		{ "write_mode", test_write_mode },
		{ "age_roll", test_age_roll },
		{ "fsync_failure_is_fatal", test_fsync_failure_is_fatal },
		{ "retention_races_rolls", test_retention_races_rolls },
		{ "commits_in_flight", test_commits_in_flight },
		{ "commits_in_flight_rolls", test_commits_in_flight_rolls },
		{ "prepared_segments", test_prepared_segments },
	};

	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		bool run = argc < 2;

		for (int k = 1; k < argc; k++)
			run |= strcmp(argv[k], tests[i].name) == 0;
		if (run)
			tests[i].fn();
	}
	return t_summary("test_log");
}
