/*
 * log_consumer.c - consumer checkpoints: the offset below which a reader of
 * the log (the shipper on an edge, the writer on the canonical host) no
 * longer needs records, kept in <dir>/consumers/<name> so that the log's
 * writer, in another process, can apply retention without ever deleting
 * what a consumer has not finished with. Format: docs/log-format.md.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "alog_common.h"
#include "alog_log.h"

#define CONSUMER_MAGIC "ALOGCONS"
#define CONSUMER_VERSION 1
#define CONSUMER_BYTES 48
#define CONSUMER_DIR "consumers"

static bool consumer_name_ok(const char *name)
{
	size_t len;

	if (!name)
		return false;
	len = strlen(name);
	if (len == 0 || len > ALOG_CONSUMER_NAME_MAX || name[0] == '.')
		return false;
	if (len >= 4 && strcmp(name + len - 4, ".tmp") == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		      ch == '-'))
			return false;
	}
	return true;
}

static void consumer_encode(uint8_t b[CONSUMER_BYTES], uint64_t offset,
			    uint64_t time_ms)
{
	memset(b, 0, CONSUMER_BYTES);
	memcpy(b, CONSUMER_MAGIC, 8);
	alog_put_u16(b + 8, CONSUMER_VERSION);
	alog_put_u16(b + 10, CONSUMER_BYTES);
	alog_put_u64(b + 16, offset);
	alog_put_u64(b + 24, time_ms);
	alog_put_u64(b + 40, XXH3_64bits(b, 40));
}

static int consumer_decode(const uint8_t *b, size_t len, uint64_t *offset,
			   uint64_t *time_ms)
{
	if (len != CONSUMER_BYTES || memcmp(b, CONSUMER_MAGIC, 8) != 0)
		return -EBADMSG;
	if (alog_get_u64(b + 40) != XXH3_64bits(b, 40))
		return -EBADMSG;
	if (alog_get_u16(b + 8) != CONSUMER_VERSION ||
	    alog_get_u16(b + 10) != CONSUMER_BYTES)
		return -EBADMSG;
	*offset = alog_get_u64(b + 16);
	if (time_ms)
		*time_ms = alog_get_u64(b + 24);
	return 0;
}

static int consumer_dir_path(char *buf, size_t cap, const char *dir)
{
	int n = snprintf(buf, cap, "%s/" CONSUMER_DIR, dir);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int alog_consumer_commit(const char *dir, const char *name, uint64_t offset)
{
	uint8_t b[CONSUMER_BYTES];
	char cdir[PATH_MAX];
	int rc;

	if (!dir || !consumer_name_ok(name))
		return -EINVAL;
	rc = consumer_dir_path(cdir, sizeof(cdir), dir);
	if (rc < 0)
		return rc;
	if (mkdir(cdir, 0755) == 0) {
		/* The new directory entry must survive a crash too. */
		rc = alog_dir_sync(dir);
		if (rc < 0)
			return rc;
	} else if (errno != EEXIST) {
		return -errno;
	}
	consumer_encode(b, offset, alog_now_ms());
	return alog_file_replace(cdir, name, b, sizeof(b));
}

static int consumer_read_at(int dirfd, const char *name, uint64_t *offset,
			    uint64_t *time_ms)
{
	uint8_t b[CONSUMER_BYTES + 1];
	ssize_t n;
	int fd, rc = 0;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = pread(fd, b, sizeof(b), 0);
	if (n < 0)
		rc = -errno;
	close(fd);
	if (rc < 0)
		return rc;
	return consumer_decode(b, (size_t)n, offset, time_ms);
}

int alog_consumer_read(const char *dir, const char *name, uint64_t *offset,
		       uint64_t *time_ms)
{
	char cdir[PATH_MAX];
	int dirfd, rc;

	if (!dir || !offset || !consumer_name_ok(name))
		return -EINVAL;
	rc = consumer_dir_path(cdir, sizeof(cdir), dir);
	if (rc < 0)
		return rc;
	dirfd = open(cdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	rc = consumer_read_at(dirfd, name, offset, time_ms);
	close(dirfd);
	return rc;
}

/* Smallest committed offset over all consumers; ALOG_OFFSET_ANY if none. */
static int consumer_min(const char *dir, uint64_t *min_offset)
{
	char cdir[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int rc;

	*min_offset = ALOG_OFFSET_ANY;
	rc = consumer_dir_path(cdir, sizeof(cdir), dir);
	if (rc < 0)
		return rc;
	d = opendir(cdir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	rc = 0;
	while ((de = readdir(d)) != NULL) {
		uint64_t off;

		/* Leftover temp files of interrupted commits are not
		 * consumers; anything else in here is. */
		if (!consumer_name_ok(de->d_name))
			continue;
		rc = consumer_read_at(dirfd(d), de->d_name, &off, NULL);
		if (rc == -ENOENT) { /* removed since readdir */
			rc = 0;
			continue;
		}
		if (rc < 0)
			break;
		if (off < *min_offset)
			*min_offset = off;
	}
	closedir(d);
	if (rc < 0)
		*min_offset = ALOG_OFFSET_ANY;
	return rc;
}

int alog_log_retain_consumers(struct alog_log *log, const char *dir,
			      uint64_t now_ms, uint64_t *min_offset)
{
	uint64_t m;
	int rc;

	if (!log || !dir)
		return -EINVAL;
	rc = consumer_min(dir, &m);
	if (min_offset)
		*min_offset = m;
	if (rc < 0)
		return rc;
	if (m == ALOG_OFFSET_ANY)
		return 0;
	return alog_log_retain(log, m, now_ms);
}
