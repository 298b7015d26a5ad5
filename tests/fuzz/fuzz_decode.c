/*
 * fuzz_decode.c - libFuzzer target for the log's decoders: the input is
 * taken as a segment body (records from position 0), and as LOG, HEAD,
 * segment header and index bytes. Nothing may crash, read out of bounds or
 * accept a record whose checksum does not match.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "alog_log.h"
#include "log_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct log_meta m;
	struct log_seg_header sh;
	struct log_idx_header ih;
	uint64_t next;
	size_t pos = 0;
	uint64_t expect = size > 0 ? data[0] : 0;

	(void)log_meta_decode(data, size, &m);
	(void)log_head_decode(data, size, &next);
	(void)log_seg_header_decode(data, size, &sh);
	if (log_idx_decode(data, size, &ih) == 0) {
		for (uint32_t i = 0; i < ih.count; i++) {
			struct log_idx_entry e;

			log_idx_entry_get(data, i, &e);
			if (e.position >= ih.data_end)
				abort(); /* decode promised entries inside data */
		}
	}
	/* Walk records as a reader would, in sequence and with any offset. */
	for (int pass = 0; pass < 2; pass++) {
		pos = 0;
		while (pos < size) {
			struct log_rec_header h;
			const char *why;
			enum log_rec_status st;

			st = log_rec_decode(data + pos, size - pos,
					    pass ? UINT64_MAX : expect,
					    1u << 20, &h, &why);
			if (st != LOG_REC_OK)
				break;
			if (h.len == 0 || h.len > size - pos - 32)
				abort();
			pos += 32 + h.len;
			expect++;
		}
	}
	return 0;
}
