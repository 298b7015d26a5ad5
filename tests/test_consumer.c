/*
 * test_consumer.c - consumer checkpoints: round trip, name rules, damage
 * detection, and that retention driven by consumers deletes nothing without
 * consumers, follows the slowest one, and stops on a damaged checkpoint.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alog_common.h"
#include "alog_log.h"
#include "test_util.h"

static void test_round_trip(void)
{
	char *dir = t_tmpdir("cons-rt");
	uint64_t off = 1, t = 0, now = alog_now_ms();

	CHECK_EQ(alog_consumer_read(dir, "shipper", &off, &t), -ENOENT);
	CHECK_EQ(alog_consumer_commit(dir, "shipper", 12345), 0);
	CHECK_EQ(alog_consumer_read(dir, "shipper", &off, &t), 0);
	CHECK_EQ(off, 12345);
	CHECK(t >= now && t <= alog_now_ms());
	CHECK_EQ(alog_consumer_commit(dir, "shipper", UINT64_MAX - 1), 0);
	CHECK_EQ(alog_consumer_read(dir, "shipper", &off, NULL), 0);
	CHECK_EQ(off == UINT64_MAX - 1, 1);

	/* Names: the rules in alog_log.h. */
	CHECK_EQ(alog_consumer_commit(dir, "", 1), -EINVAL);
	CHECK_EQ(alog_consumer_commit(dir, ".hidden", 1), -EINVAL);
	CHECK_EQ(alog_consumer_commit(dir, "a/b", 1), -EINVAL);
	CHECK_EQ(alog_consumer_commit(dir, "x.tmp", 1), -EINVAL);
	CHECK_EQ(alog_consumer_commit(dir, "..", 1), -EINVAL);
	CHECK_EQ(alog_consumer_commit(dir, "with space", 1), -EINVAL);
	{
		char name[ALOG_CONSUMER_NAME_MAX + 2];

		memset(name, 'a', sizeof(name));
		name[ALOG_CONSUMER_NAME_MAX] = '\0';
		CHECK_EQ(alog_consumer_commit(dir, name, 1), 0);
		name[ALOG_CONSUMER_NAME_MAX] = 'a';
		name[ALOG_CONSUMER_NAME_MAX + 1] = '\0';
		CHECK_EQ(alog_consumer_commit(dir, name, 1), -EINVAL);
	}
	CHECK_EQ(alog_consumer_commit("/nonexistent/alog/dir", "s", 1),
		 -ENOENT);
	t_rmrf(dir);
	free(dir);
}

/* Flip one byte of the checkpoint file: read must say -EBADMSG. */
static void corrupt_file(const char *dir, const char *name, off_t pos)
{
	char path[4096];
	uint8_t b;
	int fd;

	snprintf(path, sizeof(path), "%s/consumers/%s", dir, name);
	fd = open(path, O_RDWR);
	REQUIRE(fd >= 0);
	REQUIRE(pread(fd, &b, 1, pos) == 1);
	b ^= 0x40;
	REQUIRE(pwrite(fd, &b, 1, pos) == 1);
	close(fd);
}

static void test_damage(void)
{
	char *dir = t_tmpdir("cons-bad");
	char path[4096];
	uint64_t off;
	int fd;

	for (off_t pos = 0; pos < 48; pos += 5) {
		CHECK_EQ(alog_consumer_commit(dir, "c", 77), 0);
		corrupt_file(dir, "c", pos);
		CHECK_EQ(alog_consumer_read(dir, "c", &off, NULL), -EBADMSG);
	}
	/* Truncated and over-long files. */
	CHECK_EQ(alog_consumer_commit(dir, "c", 77), 0);
	snprintf(path, sizeof(path), "%s/consumers/c", dir);
	REQUIRE(truncate(path, 47) == 0);
	CHECK_EQ(alog_consumer_read(dir, "c", &off, NULL), -EBADMSG);
	CHECK_EQ(alog_consumer_commit(dir, "c", 77), 0);
	fd = open(path, O_WRONLY | O_APPEND);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, "x", 1) == 1);
	close(fd);
	CHECK_EQ(alog_consumer_read(dir, "c", &off, NULL), -EBADMSG);
	t_rmrf(dir);
	free(dir);
}

static struct alog_log *open_small(const char *dir)
{
	struct alog_log_options o;
	int err = 0;
	struct alog_log *log;

	alog_log_options_init(&o);
	o.create = true;
	o.segment_bytes_max = 1u << 20;
	o.record_bytes_max = 64 * 1024;
	o.batch_bytes_max = 256 * 1024;
	log = alog_log_open(dir, &o, &err);
	REQUIRE(log);
	return log;
}

static uint64_t start_offset(struct alog_log *log)
{
	struct alog_log_stats st;

	alog_log_stats(log, &st);
	return st.start_offset;
}

static void test_retain(void)
{
	char *dir = t_tmpdir("cons-retain");
	struct alog_log *log = open_small(dir);
	static uint8_t buf[16 * 1024];
	uint64_t m = 0, later = alog_now_ms() + 3600 * 1000;
	uint64_t n = 0;
	int rc;

	memset(buf, 'x', sizeof(buf));
	/* About 6 segments of 1 MiB. */
	for (; n < 400; n++) {
		struct iovec iov = { buf, sizeof(buf) };

		REQUIRE(alog_log_append_wait(log, &iov, 1, NULL, NULL) == 0);
	}
	/* No consumers: nothing goes, whatever the age. */
	CHECK_EQ(alog_log_retain_consumers(log, dir, later, &m), 0);
	CHECK_EQ(m == ALOG_OFFSET_ANY, 1);
	CHECK_EQ(start_offset(log), 0);

	/* Two consumers: the slowest one decides. */
	CHECK_EQ(alog_consumer_commit(dir, "fast", n), 0);
	CHECK_EQ(alog_consumer_commit(dir, "slow", 100), 0);
	/* A leftover temp file is not a consumer. */
	{
		char tmp[4096];
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%s/consumers/slow.tmp", dir);
		f = fopen(tmp, "w");
		REQUIRE(f);
		fputs("junk", f);
		fclose(f);
	}
	rc = alog_log_retain_consumers(log, dir, later, &m);
	CHECK(rc >= 1);
	CHECK_EQ(m, 100);
	CHECK(start_offset(log) > 0 && start_offset(log) <= 100);

	/* A damaged checkpoint stops retention. */
	CHECK_EQ(alog_consumer_commit(dir, "slow", n), 0);
	corrupt_file(dir, "slow", 17);
	{
		uint64_t before = start_offset(log);

		CHECK_EQ(alog_log_retain_consumers(log, dir, later, &m),
			 -EBADMSG);
		CHECK_EQ(start_offset(log), before);
	}
	/* Repaired: everything sealed below n may go, the active segment
	 * stays. */
	CHECK_EQ(alog_consumer_commit(dir, "slow", n), 0);
	CHECK(alog_log_retain_consumers(log, dir, later, &m) >= 1);
	CHECK_EQ(m, n);
	CHECK(start_offset(log) > 100);
	{
		struct alog_cursor *c;
		struct alog_record rec;
		int err = 0;

		c = alog_cursor_open(dir, 0, &err);
		REQUIRE(c);
		CHECK_EQ(alog_cursor_next(c, &rec), -ERANGE);
		alog_cursor_close(c);
	}
	/* Not old enough: the minimum age is respected. */
	alog_log_close(log);
	{
		struct alog_log_options o;
		int err = 0;

		alog_log_options_init(&o);
		o.segment_bytes_max = 1u << 20;
		o.record_bytes_max = 64 * 1024;
		o.batch_bytes_max = 256 * 1024;
		o.retention_age_min_ms = 3600 * 1000;
		log = alog_log_open(dir, &o, &err);
		REQUIRE(log);
	}
	for (uint64_t k = 0; k < 200; k++, n++) {
		struct iovec iov = { buf, sizeof(buf) };

		REQUIRE(alog_log_append_wait(log, &iov, 1, NULL, NULL) == 0);
	}
	CHECK_EQ(alog_consumer_commit(dir, "fast", n), 0);
	CHECK_EQ(alog_consumer_commit(dir, "slow", n), 0);
	{
		uint64_t before = start_offset(log);

		CHECK_EQ(alog_log_retain_consumers(log, dir, alog_now_ms(), &m),
			 0);
		CHECK_EQ(start_offset(log), before);
	}
	CHECK_EQ(alog_log_retain_consumers(NULL, dir, 0, NULL), -EINVAL);
	alog_log_close(log);
	t_rmrf(dir);
	free(dir);
}

int main(void)
{
	test_round_trip();
	test_damage();
	test_retain();
	return t_summary("test_consumer");
}
