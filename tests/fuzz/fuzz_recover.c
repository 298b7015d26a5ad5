/*
 * fuzz_recover.c - libFuzzer target for recovery and cursors on real
 * files: the input becomes the bytes after a valid header of the active
 * segment (and, with the first byte's low bit set, the index of a sealed
 * segment before it). Opening the log must either fail with an error code
 * or succeed with every remaining record readable; never crash or hang.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alog_common.h"
#include "alog_log.h"
#include "log_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];

static void write_file(const char *name, const void *buf, size_t len)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	if (fd < 0)
		abort();
	if (len && write(fd, buf, len) != (ssize_t)len)
		abort();
	close(fd);
}

static void remove_dir(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0) {
		/* nothing more to do on the way out */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t id[16] = { 1, 2, 3 };
	struct log_meta m = { .created_ms = 1, .start_offset = 0 };
	struct log_seg_header sh = { .base_offset = 0,
				     .created_ms = 1,
				     .segment_bytes_max = 1 << 20 };
	struct alog_log_options o;
	struct alog_log *log;
	struct alog_cursor *c;
	struct alog_record r;
	uint8_t *seg, meta[64];
	char cmd[600];
	int err;

	if (size > (1u << 20) - 64)
		return 0;
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/alog-fuzz-%d", (int)getpid());
		atexit(remove_dir); /* libFuzzer and the replay both exit() */
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s && mkdir -p %s", dir, dir);
	if (system(cmd) != 0)
		abort();
	memcpy(m.identity, id, 16);
	log_meta_encode(meta, &m);
	write_file("LOG", meta, sizeof(meta));
	seg = calloc(1, 1 << 20);
	memcpy(sh.identity, id, 16);
	log_seg_header_encode(seg, &sh);
	memcpy(seg + 64, data, size);
	write_file("00000000000000000000.seg", seg, 1 << 20);
	free(seg);

	alog_log_options_init(&o);
	o.segment_bytes_max = 1 << 20;
	o.record_bytes_max = 64 * 1024;
	o.batch_bytes_max = 128 * 1024;
	log = alog_log_open(dir, &o, &err);
	if (!log)
		return 0;
	alog_log_close(log);
	c = alog_cursor_open(dir, 0, &err);
	if (!c)
		abort(); /* the writer opened it: readers must too */
	while (alog_cursor_next(c, &r) == 1)
		;
	alog_cursor_close(c);
	return 0;
}
