/*
 * alog_common.h - small helpers shared by every alog component.
 *
 * Explicit little-endian put/get for every byte that goes to disk or the
 * wire (never write a struct), clocks, and the atomic-file helper that all
 * checkpoints and metadata go through (temp + fsync + rename + fsync dir).
 */
#ifndef ALOG_COMMON_H
#define ALOG_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ALOG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static inline void alog_put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void alog_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void alog_put_u64(uint8_t *p, uint64_t v)
{
	alog_put_u32(p, (uint32_t)v);
	alog_put_u32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t alog_get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t alog_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static inline uint64_t alog_get_u64(const uint8_t *p)
{
	return (uint64_t)alog_get_u32(p) |
	       ((uint64_t)alog_get_u32(p + 4) << 32);
}

/* Wall-clock milliseconds since the Unix epoch. */
uint64_t alog_now_ms(void);

/* Monotonic nanoseconds, for intervals and latency. */
uint64_t alog_mono_ns(void);

/*
 * Replace dir/name with len bytes of data atomically: write dir/name.tmp,
 * fsync it, rename it over dir/name, fsync dir. Returns 0 or -errno; on
 * error the old file is untouched and the temp file removed.
 */
int alog_file_replace(const char *dir, const char *name, const void *data,
		      size_t len);

/*
 * The same for a full path, creating the file with mode (0600 for
 * secrets): path.tmp is created with O_EXCL | O_NOFOLLOW (a stale one left
 * by a crash is removed first), written, fsynced, renamed over path, and
 * path's directory fsynced. Returns 0 or -errno; on error path is
 * untouched and the temp file removed.
 */
int alog_path_replace(const char *path, const void *data, size_t len,
		      unsigned mode);

/*
 * The directory part of path into dir (cap bytes): "." when path has no
 * slash, "/" for a file in the root. Returns 0 or -ENAMETOOLONG.
 */
int alog_path_parent(const char *path, char *dir, size_t cap);

/* fsync a directory by path. Returns 0 or -errno. */
int alog_dir_sync(const char *dir);

/* Fill buf with len cryptographically random bytes. Returns 0 or -errno. */
int alog_random_bytes(void *buf, size_t len);

#endif /* ALOG_COMMON_H */
