/*
 * alog_common.c - clocks and atomic file replacement shared by components.
 */
#include "alog_common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

uint64_t alog_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t alog_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int alog_dir_sync(const char *dir)
{
	int fd, rc = 0;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

int alog_path_parent(const char *path, char *dir, size_t cap)
{
	size_t len = strlen(path);
	char *slash;

	if (len >= cap)
		return -ENAMETOOLONG;
	memcpy(dir, path, len + 1);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, cap, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	return 0;
}

/* fsync the directory that holds path. */
static int path_dir_sync(const char *path)
{
	char dir[PATH_MAX];
	int rc = alog_path_parent(path, dir, sizeof(dir));

	return rc ? rc : alog_dir_sync(dir);
}

int alog_path_replace(const char *path, const void *data, size_t len,
		      unsigned mode)
{
	const int flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW;
	char tmp[PATH_MAX];
	const uint8_t *p = data;
	int fd, rc;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, flags, (mode_t)mode);
	if (fd < 0 && errno == EEXIST) {
		unlink(tmp); /* left by a crash */
		fd = open(tmp, flags, (mode_t)mode);
	}
	if (fd < 0)
		return -errno;
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out_unlink;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) != 0) {
		rc = -errno;
		goto out_unlink;
	}
	if (close(fd) != 0) {
		fd = -1;
		rc = -errno;
		goto out_unlink;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		rc = -errno;
		goto out_unlink;
	}
	return path_dir_sync(path);

out_unlink:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return rc;
}

int alog_file_replace(const char *dir, const char *name, const void *data,
		      size_t len)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	return alog_path_replace(path, data, len, 0644);
}

int alog_random_bytes(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
