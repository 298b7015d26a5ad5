/*
 * log_internal.h - pieces shared by the log's writer and its readers.
 *
 * The segment scanner reads a segment file through a bounded buffer with
 * pread (never mmap: a media error must become an error code, not SIGBUS)
 * and hands back records with their checksums verified. The directory
 * helpers list segments in offset order and read LOG and HEAD.
 */
#ifndef ALOG_LOG_INTERNAL_H
#define ALOG_LOG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alog_log.h"
#include "log_format.h"

#define LOG_SCAN_CHUNK_BYTES (1u << 20)

struct seg_scan {
	int fd;
	uint64_t file_bytes;
	uint32_t record_bytes_max;
	uint8_t *buf;
	size_t cap;
	uint64_t buf_pos; /* file position of buf[0] */
	size_t buf_len;
};

/* Prepare a scanner on fd (borrowed). Returns 0 or -errno. */
int seg_scan_init(struct seg_scan *s, int fd, uint32_t record_bytes_max);
void seg_scan_free(struct seg_scan *s);
/* Forget buffered bytes and re-read the file size (the file may grow). */
int seg_scan_refresh(struct seg_scan *s);

/*
 * Decode the record at file position pos. On LOG_REC_OK, *payload points
 * into the scanner's buffer until the next call. *err is set (and
 * LOG_REC_INVALID returned) on an I/O error.
 */
enum log_rec_status seg_scan_at(struct seg_scan *s, uint64_t pos,
				uint64_t expect_offset,
				struct log_rec_header *h,
				const uint8_t **payload, const char **why,
				int *err);

/* Position of the last non-zero byte at or after pos, plus one; pos if
 * everything from pos on is zero. Returns 0 or -errno. */
int seg_scan_nonzero_end(struct seg_scan *s, uint64_t pos, uint64_t *end);

/*
 * Look for a record that decodes cleanly at a position in (pos, end) with
 * an offset in [min_offset, before_offset). Used to tell bit rot (valid
 * records follow the damage) from a torn tail, and to resync a reader.
 * Returns 1 and sets *found_pos / *found_offset, 0 if none, or -errno.
 */
int seg_scan_resync(struct seg_scan *s, uint64_t pos, uint64_t end,
		    uint64_t min_offset, uint64_t before_offset,
		    uint64_t *found_pos, uint64_t *found_offset);

/* Sorted base offsets of the *.seg files in dirfd. Caller frees *bases. */
int log_list_segments(int dirfd, uint64_t **bases, size_t *n);

/* Read and check LOG. -ENOENT if absent, -ENOTRECOVERABLE if foreign. */
int log_read_meta(int dirfd, struct log_meta *m);

/* Read HEAD; -ENOENT if absent, -EBADMSG if it stays damaged. */
int log_read_head(int dirfd, uint64_t *next_offset);

/* Read a whole small file (at most max bytes) into a malloc'd buffer. */
int log_read_file(int dirfd, const char *name, size_t max, uint8_t **buf,
		  size_t *len);

/* pread/pwrite all bytes or fail with -errno (-EIO on a short read). */
int log_pread_all(int fd, void *buf, size_t len, uint64_t pos);
int log_pwrite_all(int fd, const void *buf, size_t len, uint64_t pos);

/*
 * Fault injection for tests, in the spirit of SQLite's test VFS: when set,
 * it is called before each fdatasync of a commit; a negative return is
 * taken as that fdatasync's result (the batch is written, not synced).
 * Never set outside tests.
 */
extern int (*log_fault_fsync_hook)(void);
/* Likewise before each zeroing write of the preparer (prepare_segments):
 * a negative return fails that preparation with it. */
extern int (*log_fault_prepare_hook)(void);

#endif /* ALOG_LOG_INTERNAL_H */
