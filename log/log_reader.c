/*
 * log_reader.c - cursors, inspection, and the segment scanner they share
 * with recovery.
 *
 * Readers never take the writer's lock and may live in other processes.
 * They never read past the HEAD watermark, which the writer publishes only
 * after a batch is durable (or written, in write mode), so a reader never
 * sees a record that a crash could still take back. Following the tail
 * uses inotify on the log directory: no polling.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alog_common.h"
#include "log_internal.h"

/* ---- I/O helpers -------------------------------------------------------- */

int log_pread_all(int fd, void *buf, size_t len, uint64_t pos)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)pos);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		pos += (uint64_t)n;
	}
	return 0;
}

int log_pwrite_all(int fd, const void *buf, size_t len, uint64_t pos)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, (off_t)pos);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		pos += (uint64_t)n;
	}
	return 0;
}

int log_read_file(int dirfd, const char *name, size_t max, uint8_t **buf,
		  size_t *len)
{
	struct stat st;
	uint8_t *b;
	int fd, rc;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out_close;
	}
	if ((uint64_t)st.st_size > max) {
		rc = -EFBIG;
		goto out_close;
	}
	b = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
	if (!b) {
		rc = -ENOMEM;
		goto out_close;
	}
	rc = log_pread_all(fd, b, (size_t)st.st_size, 0);
	if (rc < 0) {
		free(b);
		goto out_close;
	}
	*buf = b;
	*len = (size_t)st.st_size;
out_close:
	close(fd);
	return rc;
}

int log_read_meta(int dirfd, struct log_meta *m)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	rc = log_read_file(dirfd, "LOG", 4096, &buf, &len);
	if (rc == -EFBIG)
		return -ENOTRECOVERABLE;
	if (rc < 0)
		return rc;
	rc = log_meta_decode(buf, len, m);
	free(buf);
	return rc;
}

/* Read HEAD through an open descriptor. */
static int log_read_head_fd(int fd, uint64_t *next_offset)
{
	uint8_t buf[LOG_HEAD_BYTES];
	int rc = -EBADMSG;

	/* The writer rewrites HEAD in place; a read that races it fails the
	 * checksum and is simply repeated. */
	for (int tries = 0; tries < 100 && rc == -EBADMSG; tries++) {
		ssize_t n = pread(fd, buf, sizeof(buf), 0);

		if (n < 0) {
			rc = -errno;
			break;
		}
		rc = log_head_decode(buf, (size_t)n, next_offset);
	}
	return rc;
}

int log_read_head(int dirfd, uint64_t *next_offset)
{
	int fd, rc;

	fd = openat(dirfd, "HEAD", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = log_read_head_fd(fd, next_offset);
	close(fd);
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int log_list_segments(int dirfd, uint64_t **bases, size_t *n)
{
	uint64_t *v = NULL, base;
	size_t cnt = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int fd;

	fd = dup(dirfd);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (!log_seg_name_parse(de->d_name, "seg", &base))
			continue;
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			uint64_t *nv;

			if (ncap > LOG_SEGMENTS_MAX) {
				free(v);
				closedir(d);
				return -EMFILE;
			}
			nv = realloc(v, ncap * sizeof(*v));
			if (!nv) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
			cap = ncap;
		}
		v[cnt++] = base;
	}
	closedir(d);
	if (cnt > 1)
		qsort(v, cnt, sizeof(*v), cmp_u64);
	*bases = v;
	*n = cnt;
	return 0;
}

/* ---- Segment scanner ---------------------------------------------------- */

int seg_scan_init(struct seg_scan *s, int fd, uint32_t record_bytes_max)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->record_bytes_max = record_bytes_max;
	s->cap = LOG_SCAN_CHUNK_BYTES;
	if (s->cap < (size_t)record_bytes_max + LOG_REC_HEADER_BYTES)
		s->cap = (size_t)record_bytes_max + LOG_REC_HEADER_BYTES;
	s->buf = malloc(s->cap);
	if (!s->buf)
		return -ENOMEM;
	return seg_scan_refresh(s);
}

void seg_scan_free(struct seg_scan *s)
{
	free(s->buf);
	s->buf = NULL;
}

int seg_scan_refresh(struct seg_scan *s)
{
	struct stat st;

	s->buf_len = 0;
	s->buf_pos = 0;
	if (fstat(s->fd, &st) != 0)
		return -errno;
	s->file_bytes = (uint64_t)st.st_size;
	return 0;
}

/* Make [pos, pos + want) buffered, or as much of it as the file has.
 * Returns the bytes available from pos, or -errno. */
static ssize_t seg_scan_fill(struct seg_scan *s, uint64_t pos, size_t want)
{
	size_t len;

	if (pos >= s->file_bytes)
		return 0;
	if (want > s->file_bytes - pos)
		want = (size_t)(s->file_bytes - pos);
	if (pos >= s->buf_pos && pos + want <= s->buf_pos + s->buf_len)
		return (ssize_t)(s->buf_pos + s->buf_len - pos);
	len = s->cap;
	if (len > s->file_bytes - pos)
		len = (size_t)(s->file_bytes - pos);
	s->buf_len = 0;
	s->buf_pos = pos;
	while (s->buf_len < len) {
		ssize_t n = pread(s->fd, s->buf + s->buf_len, len - s->buf_len,
				  (off_t)(pos + s->buf_len));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) {
			/* The file shrank (a seal truncated its zero tail). */
			s->file_bytes = pos + s->buf_len;
			break;
		}
		s->buf_len += (size_t)n;
	}
	return (ssize_t)s->buf_len;
}

enum log_rec_status seg_scan_at(struct seg_scan *s, uint64_t pos,
				uint64_t expect_offset,
				struct log_rec_header *h,
				const uint8_t **payload, const char **why,
				int *err)
{
	enum log_rec_status st;
	ssize_t avail;
	const uint8_t *p;

	*err = 0;
	avail = seg_scan_fill(s, pos, LOG_REC_HEADER_BYTES);
	if (avail < 0) {
		*err = (int)avail;
		*why = "read error";
		return LOG_REC_INVALID;
	}
	if (avail >= LOG_REC_HEADER_BYTES) {
		/* Peek at the length to buffer the whole record. */
		uint32_t len = alog_get_u32(s->buf + (pos - s->buf_pos) + 8);

		if (len <= s->record_bytes_max) {
			avail = seg_scan_fill(
				s, pos, LOG_REC_HEADER_BYTES + (size_t)len);
			if (avail < 0) {
				*err = (int)avail;
				*why = "read error";
				return LOG_REC_INVALID;
			}
		}
	}
	p = s->buf + (pos - s->buf_pos);
	st = log_rec_decode(p, (size_t)avail, expect_offset,
			    s->record_bytes_max, h, why);
	if (st == LOG_REC_OK)
		*payload = p + LOG_REC_HEADER_BYTES;
	return st;
}

int seg_scan_nonzero_end(struct seg_scan *s, uint64_t pos, uint64_t *end)
{
	uint64_t last = pos;

	while (pos < s->file_bytes) {
		ssize_t n = seg_scan_fill(s, pos, s->cap);
		const uint8_t *p;

		if (n < 0)
			return (int)n;
		p = s->buf + (pos - s->buf_pos);
		for (ssize_t i = n - 1; i >= 0; i--) {
			if (p[i] != 0) {
				last = pos + (uint64_t)i + 1;
				break;
			}
		}
		pos += (uint64_t)n;
	}
	*end = last;
	return 0;
}

int seg_scan_resync(struct seg_scan *s, uint64_t pos, uint64_t end,
		    uint64_t min_offset, uint64_t before_offset,
		    uint64_t *found_pos, uint64_t *found_offset)
{
	for (uint64_t p = pos + 1; p + LOG_REC_HEADER_BYTES <= end; p++) {
		struct log_rec_header h;
		const uint8_t *payload, *b;
		const char *why;
		ssize_t n;
		uint64_t off;
		uint32_t len;
		int err;

		n = seg_scan_fill(s, p, LOG_REC_HEADER_BYTES);
		if (n < 0)
			return (int)n;
		if (n < LOG_REC_HEADER_BYTES)
			break;
		/* Cheap filters before the checksum. */
		b = s->buf + (p - s->buf_pos);
		len = alog_get_u32(b + 8);
		off = alog_get_u64(b + 16);
		if (len == 0 || len > s->record_bytes_max || off < min_offset ||
		    off >= before_offset || alog_get_u32(b + 12) != 0)
			continue;
		if (seg_scan_at(s, p, UINT64_MAX, &h, &payload, &why, &err) ==
		    LOG_REC_OK) {
			*found_pos = p;
			*found_offset = h.offset;
			return 1;
		}
		if (err)
			return err;
	}
	return 0;
}

/* ---- Cursor ------------------------------------------------------------- */

struct alog_cursor {
	int dirfd;
	int ino_fd;
	uint8_t identity[16];
	uint32_t record_bytes_max;
	uint64_t offset; /* next offset to hand out */
	int seg_fd;      /* -1: no segment positioned */
	uint64_t seg_base;
	uint64_t pos; /* file position of the record at offset */
	struct seg_scan scan;
	bool damaged;
	struct alog_damage damage;
	uint64_t damage_end; /* offset the damage stretches to, if known */
	/* HEAD, read only when the cursor has caught up with what it last
	 * said (it only grows): not three system calls per record. */
	int head_fd;
	uint64_t head;
};

static int cursor_open_dir(const char *dir, int *dirfd, struct log_meta *m)
{
	int fd, rc;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = log_read_meta(fd, m);
	if (rc == -ENOENT)
		rc = -ENOTRECOVERABLE; /* a directory, but not a log */
	if (rc < 0) {
		close(fd);
		return rc;
	}
	*dirfd = fd;
	return 0;
}

struct alog_cursor *alog_cursor_open(const char *dir, uint64_t offset, int *err)
{
	struct alog_cursor *c;
	struct log_meta m;
	int rc;

	c = calloc(1, sizeof(*c));
	if (!c) {
		*err = -ENOMEM;
		return NULL;
	}
	c->seg_fd = -1;
	c->ino_fd = -1;
	c->dirfd = -1;
	c->head_fd = -1;
	rc = cursor_open_dir(dir, &c->dirfd, &m);
	if (rc < 0)
		goto out_free;
	memcpy(c->identity, m.identity, 16);
	c->record_bytes_max = ALOG_RECORD_BYTES_HARD_MAX;
	c->offset = offset == ALOG_OFFSET_ANY ? m.start_offset : offset;
	c->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (c->ino_fd < 0) {
		rc = -errno;
		goto out_free;
	}
	if (inotify_add_watch(c->ino_fd, dir,
			      IN_MODIFY | IN_CREATE | IN_MOVED_TO |
				      IN_CLOSE_WRITE | IN_DELETE) < 0) {
		rc = -errno;
		goto out_free;
	}
	return c;

out_free:
	alog_cursor_close(c);
	*err = rc;
	return NULL;
}

static void cursor_drop_segment(struct alog_cursor *c)
{
	if (c->seg_fd >= 0) {
		seg_scan_free(&c->scan);
		close(c->seg_fd);
	}
	c->seg_fd = -1;
}

void alog_cursor_close(struct alog_cursor *c)
{
	if (!c)
		return;
	cursor_drop_segment(c);
	if (c->ino_fd >= 0)
		close(c->ino_fd);
	if (c->head_fd >= 0)
		close(c->head_fd);
	if (c->dirfd >= 0)
		close(c->dirfd);
	free(c);
}

uint64_t alog_cursor_offset(const struct alog_cursor *c)
{
	return c->offset;
}

const struct alog_damage *alog_cursor_damage(const struct alog_cursor *c)
{
	return c->damaged ? &c->damage : NULL;
}

int alog_cursor_fd(const struct alog_cursor *c)
{
	return c->ino_fd;
}

static int cursor_set_damage(struct alog_cursor *c, uint64_t pos,
			     const char *reason, uint64_t end)
{
	c->damaged = true;
	c->damage.segment_base = c->seg_base;
	c->damage.position = pos;
	c->damage.offset = c->offset;
	c->damage.reason = reason;
	c->damage_end = end;
	return -EBADMSG;
}

/* Open segment base and position at the record with offset c->offset,
 * using the index when there is a valid one. */
static int cursor_load_segment(struct alog_cursor *c, uint64_t base)
{
	char name[LOG_NAME_BYTES];
	uint8_t hdr[LOG_SEG_HEADER_BYTES];
	struct log_seg_header sh;
	uint8_t *idx = NULL;
	size_t idx_len;
	struct log_idx_header ih;
	uint64_t pos = LOG_SEG_HEADER_BYTES, at = base;
	int fd, rc;

	cursor_drop_segment(c);
	log_seg_name(name, base, "seg");
	fd = openat(c->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = log_pread_all(fd, hdr, sizeof(hdr), 0);
	if (rc == 0)
		rc = log_seg_header_decode(hdr, sizeof(hdr), &sh);
	if (rc == 0 && (sh.base_offset != base ||
			memcmp(sh.identity, c->identity, 16) != 0))
		rc = -EBADMSG;
	if (rc < 0) {
		close(fd);
		c->seg_base = base;
		c->pos = 0;
		return cursor_set_damage(c, 0, "bad segment header",
					 UINT64_MAX);
	}
	rc = seg_scan_init(&c->scan, fd, c->record_bytes_max);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	c->seg_fd = fd;
	c->seg_base = base;

	log_seg_name(name, base, "idx");
	if (log_read_file(c->dirfd, name, 64u << 20, &idx, &idx_len) == 0) {
		if (log_idx_decode(idx, idx_len, &ih) == 0 &&
		    ih.base_offset == base) {
			for (uint32_t i = 0; i < ih.count; i++) {
				struct log_idx_entry e;

				log_idx_entry_get(idx, i, &e);
				if (base + e.rel_offset > c->offset)
					break;
				at = base + e.rel_offset;
				pos = e.position;
			}
		}
		free(idx);
	}
	/* Walk forward from the index entry to the wanted offset. */
	while (at < c->offset) {
		struct log_rec_header h;
		const uint8_t *payload;
		const char *why;
		int err;

		if (seg_scan_at(&c->scan, pos, at, &h, &payload, &why, &err) !=
		    LOG_REC_OK) {
			if (err)
				return err;
			c->pos = pos;
			c->offset = at;
			return 0; /* next() sorts out end versus damage */
		}
		pos += LOG_REC_HEADER_BYTES + h.len;
		at++;
	}
	c->pos = pos;
	return 0;
}

/* Find the segment holding c->offset (and check it is not below start). */
static int cursor_seek(struct alog_cursor *c)
{
	struct log_meta m;
	uint64_t *bases, base;
	size_t n, i;
	int rc;

	rc = log_read_meta(c->dirfd, &m);
	if (rc < 0)
		return rc;
	if (c->offset < m.start_offset)
		return -ERANGE;
	rc = log_list_segments(c->dirfd, &bases, &n);
	if (rc < 0)
		return rc;
	if (n == 0 || c->offset < bases[0]) {
		free(bases);
		return n == 0 ? 0 : -ERANGE;
	}
	for (i = 0; i + 1 < n && bases[i + 1] <= c->offset; i++)
		;
	base = bases[i];
	free(bases);
	return cursor_load_segment(c, base);
}

/* The base of the first segment after the current one, or UINT64_MAX. */
static int cursor_next_base(struct alog_cursor *c, uint64_t *next)
{
	uint64_t *bases;
	size_t n;
	int rc;

	rc = log_list_segments(c->dirfd, &bases, &n);
	if (rc < 0)
		return rc;
	*next = UINT64_MAX;
	for (size_t i = 0; i < n; i++) {
		if (bases[i] > c->seg_base) {
			*next = bases[i];
			break;
		}
	}
	free(bases);
	return 0;
}

int alog_cursor_next(struct alog_cursor *c, struct alog_record *rec)
{
	uint64_t head, next_base;
	bool have_head, refreshed = false;
	int rc;

	c->damaged = false;
	if (c->head_fd >= 0 && c->offset < c->head) {
		head = c->head; /* known to be visible already */
		rc = 0;
	} else {
		if (c->head_fd < 0) {
			c->head_fd = openat(c->dirfd, "HEAD",
					    O_RDONLY | O_CLOEXEC);
			rc = c->head_fd < 0 ? -errno : 0;
		} else {
			rc = 0;
		}
		if (rc == 0)
			rc = log_read_head_fd(c->head_fd, &head);
		if (rc == 0)
			c->head = head;
	}
	if (rc == -ENOENT) {
		have_head = false;
		head = UINT64_MAX;
	} else if (rc < 0) {
		return rc;
	} else {
		have_head = true;
	}
	if (c->offset >= head)
		return c->offset == head ? 0 : -ERANGE;

	for (int hops = 0; hops < 1000; hops++) {
		struct log_rec_header h;
		enum log_rec_status st;
		const uint8_t *payload;
		const char *why = "";
		int err;

		if (c->seg_fd < 0) {
			rc = cursor_seek(c);
			if (rc < 0)
				return rc;
			if (c->seg_fd < 0)
				return 0; /* no segments yet */
		}
		st = seg_scan_at(&c->scan, c->pos, c->offset, &h, &payload,
				 &why, &err);
		if (err)
			return err;
		if (st == LOG_REC_OK) {
			rec->offset = h.offset;
			rec->time_ms = h.time_ms;
			rec->data = payload;
			rec->len = h.len;
			c->pos += LOG_REC_HEADER_BYTES + h.len;
			c->offset++;
			return 1;
		}
		/* Not a record here: the segment ended, the writer is still
		 * ahead of our buffered view, or the record is damaged. */
		rc = cursor_next_base(c, &next_base);
		if (rc < 0)
			return rc;
		if (st == LOG_REC_END && next_base == c->offset) {
			cursor_drop_segment(c);
			continue;
		}
		if (next_base != UINT64_MAX && !refreshed) {
			/* Our buffer may predate the last writes to a segment
			 * that was active when we read it: re-read first. */
			rc = seg_scan_refresh(&c->scan);
			if (rc < 0)
				return rc;
			refreshed = true;
			continue;
		}
		if (next_base == UINT64_MAX) {
			/* Last segment: re-read from disk before judging. */
			rc = seg_scan_refresh(&c->scan);
			if (rc < 0)
				return rc;
			st = seg_scan_at(&c->scan, c->pos, c->offset, &h,
					 &payload, &why, &err);
			if (err)
				return err;
			if (st == LOG_REC_OK)
				continue; /* buffered again: loop returns it */
			if (!have_head)
				return 0; /* unrecovered tail: not ours to judge */
			if (st == LOG_REC_END) {
				/* HEAD is past us but the data isn't here: a
				 * roll may be in progress; look again. */
				rc = cursor_next_base(c, &next_base);
				if (rc < 0)
					return rc;
				if (next_base == c->offset) {
					cursor_drop_segment(c);
					continue;
				}
				return cursor_set_damage(
					c, c->pos,
					"records below HEAD are missing", head);
			}
			return cursor_set_damage(c, c->pos, why, head);
		}
		if (st == LOG_REC_END && next_base > c->offset)
			return cursor_set_damage(
				c, c->pos, "offsets missing between segments",
				next_base);
		return cursor_set_damage(c, c->pos, why, next_base);
	}
	return -ELOOP;
}

int alog_cursor_skip_damage(struct alog_cursor *c, uint64_t *lost_from,
			    uint64_t *lost_to)
{
	uint64_t found_pos, found_off, end;
	int rc;

	if (!c->damaged)
		return -EINVAL;
	*lost_from = c->offset;
	if (c->seg_fd >= 0 && c->damage.position >= LOG_SEG_HEADER_BYTES) {
		rc = seg_scan_refresh(&c->scan);
		if (rc < 0)
			return rc;
		end = c->scan.file_bytes;
		rc = seg_scan_resync(&c->scan, c->damage.position, end,
				     c->offset, c->damage_end, &found_pos,
				     &found_off);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			c->pos = found_pos;
			c->offset = found_off;
			*lost_to = found_off;
			c->damaged = false;
			return 0;
		}
	}
	/* Nothing readable left in this segment: go to the next one. */
	if (c->damage_end == UINT64_MAX) {
		uint64_t next;

		rc = cursor_next_base(c, &next);
		if (rc < 0)
			return rc;
		if (next == UINT64_MAX)
			return -ENODATA;
		c->damage_end = next;
	}
	cursor_drop_segment(c);
	c->offset = c->damage_end;
	*lost_to = c->damage_end;
	c->damaged = false;
	return 0;
}

int alog_cursor_wait(struct alog_cursor *c, int timeout_ms)
{
	struct pollfd pfd = { .fd = c->ino_fd, .events = POLLIN };
	char buf[4096]
		__attribute__((aligned(__alignof__(struct inotify_event))));
	int n;

	n = poll(&pfd, 1, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (n == 0)
		return 0;
	while (read(c->ino_fd, buf, sizeof(buf)) > 0)
		;
	return 1;
}

/* ---- Inspection --------------------------------------------------------- */

/* Scan a segment without an index: count records up to limit. */
static int inspect_scan(int fd, uint64_t base, uint64_t limit,
			struct alog_segment_info *si)
{
	struct seg_scan s;
	uint64_t pos = LOG_SEG_HEADER_BYTES, off = base;
	int rc;

	rc = seg_scan_init(&s, fd, ALOG_RECORD_BYTES_HARD_MAX);
	if (rc < 0)
		return rc;
	while (off < limit) {
		struct log_rec_header h;
		const uint8_t *payload;
		const char *why;
		int err;

		if (seg_scan_at(&s, pos, off, &h, &payload, &why, &err) !=
		    LOG_REC_OK) {
			rc = err;
			break;
		}
		si->last_time_ms = h.time_ms;
		pos += LOG_REC_HEADER_BYTES + h.len;
		off++;
	}
	seg_scan_free(&s);
	si->next_offset = off;
	si->records = off - base;
	si->data_bytes = pos;
	return rc;
}

int alog_log_inspect(const char *dir, struct alog_log_info *info)
{
	struct log_meta m;
	uint64_t *bases = NULL;
	size_t n = 0;
	int dirfd = -1, rc;

	memset(info, 0, sizeof(*info));
	rc = cursor_open_dir(dir, &dirfd, &m);
	if (rc < 0)
		return rc;
	memcpy(info->identity, m.identity, 16);
	info->created_ms = m.created_ms;
	info->start_offset = m.start_offset;
	if (log_read_head(dirfd, &info->head_offset) != 0)
		info->head_offset = UINT64_MAX;
	rc = log_list_segments(dirfd, &bases, &n);
	if (rc < 0)
		goto out_close;
	info->segments = calloc(n ? n : 1, sizeof(*info->segments));
	if (!info->segments) {
		rc = -ENOMEM;
		goto out_free;
	}
	info->nsegments = n;
	for (size_t i = 0; i < n; i++) {
		struct alog_segment_info *si = &info->segments[i];
		char name[LOG_NAME_BYTES];
		uint8_t hdr[LOG_SEG_HEADER_BYTES], *idx;
		struct log_seg_header sh;
		struct log_idx_header ih;
		size_t idx_len;
		struct stat st;
		int fd;

		si->base_offset = bases[i];
		si->next_offset = bases[i];
		log_seg_name(name, bases[i], "seg");
		fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* deleted by retention meanwhile */
		if (fstat(fd, &st) == 0)
			si->file_bytes = (uint64_t)st.st_size;
		if (log_pread_all(fd, hdr, sizeof(hdr), 0) == 0 &&
		    log_seg_header_decode(hdr, sizeof(hdr), &sh) == 0)
			si->created_ms = sh.created_ms;
		log_seg_name(name, bases[i], "idx");
		if (log_read_file(dirfd, name, 64u << 20, &idx, &idx_len) ==
		    0) {
			if (log_idx_decode(idx, idx_len, &ih) == 0 &&
			    ih.base_offset == bases[i]) {
				si->sealed = true;
				si->next_offset = ih.next_offset;
				si->records = ih.next_offset - bases[i];
				si->data_bytes = ih.data_end;
				si->last_time_ms = ih.last_time_ms;
			}
			free(idx);
		}
		if (!si->sealed) {
			uint64_t limit = i + 1 < n ? bases[i + 1] :
						     info->head_offset;

			inspect_scan(fd, bases[i], limit, si);
		}
		close(fd);
	}
	rc = 0;
out_free:
	free(bases);
out_close:
	close(dirfd);
	return rc;
}
