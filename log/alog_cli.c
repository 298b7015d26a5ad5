/*
 * alog_cli.c - `alog`, the operator's tool for looking into a log directory.
 *
 * Everything goes through the public API in alog_log.h: `ls` and `stat`
 * describe the directory with alog_log_inspect(); `dump`, `tail` and
 * `verify` read it with a cursor, so they work beside a running writer and
 * never read past the HEAD watermark; `append` is a small writer for tests
 * and scripts. The library never prints, so this file owns every message
 * and maps errors to exit codes: 0 ok, 1 usage error, 2 operational error,
 * 3 damage found.
 *
 * Output for people escapes payload bytes so that a record can never move
 * the cursor, ring the bell or hide text (see cli_print_payload_text());
 * --json output is one JSON object per line (JSON Lines) for jq and
 * scripts.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "alog_common.h"
#include "alog_event.h"
#include "alog_log.h"

enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_USAGE = 1,
	CLI_EXIT_ERROR = 2,
	CLI_EXIT_DAMAGE = 3,
};

/* Human output shows at most this many characters of a payload. */
#define CLI_PAYLOAD_CHARS_MAX 200
/* `append` keeps at most this many records waiting for their callback. */
#define CLI_APPEND_IN_FLIGHT_MAX 256
/* Bytes read from stdin at a time by `append`, on top of one whole line. */
#define CLI_READ_CHUNK_BYTES (64u << 10)
#define CLI_TAIL_RECORDS_DEFAULT 10
/* While printing a backlog, `tail -f` looks for SIGINT this often. */
#define CLI_SIGNAL_CHECK_RECORDS 1024

/* ---- Options ------------------------------------------------------------ */

enum cli_opt {
	CLI_OPT_HELP = 1u << 0,
	CLI_OPT_JSON = 1u << 1,
	CLI_OPT_FROM = 1u << 2,
	CLI_OPT_COUNT = 1u << 3,
	CLI_OPT_FULL = 1u << 4,
	CLI_OPT_FOLLOW = 1u << 5,
	CLI_OPT_LINES = 1u << 6,
	CLI_OPT_CREATE = 1u << 7,
	CLI_OPT_DURABILITY = 1u << 8,
	CLI_OPT_EVENTS = 1u << 9,
	CLI_OPT_COMMIT = 1u << 10,
};

struct cli_option {
	const char *long_name; /* without the leading "--" */
	char short_name;       /* 0 if none */
	bool has_value;
	enum cli_opt id;
};

static const struct cli_option cli_options[] = {
	{ "help", 'h', false, CLI_OPT_HELP },
	{ "json", 0, false, CLI_OPT_JSON },
	{ "from", 0, true, CLI_OPT_FROM },
	{ "count", 0, true, CLI_OPT_COUNT },
	{ "full", 0, false, CLI_OPT_FULL },
	{ "follow", 'f', false, CLI_OPT_FOLLOW },
	{ "lines", 'n', true, CLI_OPT_LINES },
	{ "create", 0, false, CLI_OPT_CREATE },
	{ "durability", 0, true, CLI_OPT_DURABILITY },
	{ "events", 0, false, CLI_OPT_EVENTS },
	{ "commit", 0, true, CLI_OPT_COMMIT },
};

struct cli_args {
	const char *dir;
	unsigned seen; /* CLI_OPT_* given on the command line */
	uint64_t from_offset;
	uint64_t count_records;
	uint64_t tail_records;
	enum alog_durability durability;
	const char *commit; /* consumers --commit NAME=OFFSET */
};

struct cli_command {
	const char *name;
	int (*run)(const struct cli_args *args);
	unsigned options; /* CLI_OPT_* accepted */
	const char *synopsis;
	const char *summary;
	const char *help;
};

/* ---- Small helpers -------------------------------------------------------- */

/*
 * Strict unsigned decimal: digits only (no sign, no spaces, no 0x), and
 * nothing after them. strtoull alone would accept " -1" as 2^64 - 1.
 */
static bool cli_parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

static void cli_format_time(uint64_t time_ms, char *buf, size_t size)
{
	char date[32];
	struct tm tm;
	time_t secs;

	/* Fits: UINT64_MAX / 1000 < INT64_MAX; gmtime_r fails on huge years. */
	secs = (time_t)(time_ms / 1000);
	if (gmtime_r(&secs, &tm) == NULL ||
	    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		snprintf(buf, size, "@%" PRIu64 "ms", time_ms);
		return;
	}
	snprintf(buf, size, "%s.%03uZ", date, (unsigned)(time_ms % 1000));
}

/* "12s", "3m12s", "5h03m", "4d02h": two units are enough to read an age. */
static void cli_format_age(uint64_t age_ms, char *buf, size_t size)
{
	uint64_t s = age_ms / 1000;

	if (s < 60)
		snprintf(buf, size, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(buf, size, "%" PRIu64 "m%02" PRIu64 "s", s / 60,
			 s % 60);
	else if (s < 86400)
		snprintf(buf, size, "%" PRIu64 "h%02" PRIu64 "m", s / 3600,
			 s / 60 % 60);
	else
		snprintf(buf, size, "%" PRIu64 "d%02" PRIu64 "h", s / 86400,
			 s / 3600 % 24);
}

static void cli_format_bytes(uint64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = { "KiB", "MiB", "GiB",
					     "TiB", "PiB", "EiB" };
	double v = (double)bytes / 1024;
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(buf, size, "%" PRIu64 "B", bytes);
		return;
	}
	while (v >= 1024 && u + 1 < ALOG_ARRAY_LEN(units)) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, "%.1f%s", v, units[u]);
}

/*
 * Length (2..4) of the well-formed UTF-8 sequence at p, with its code
 * point in *cp, or 0 if p does not start one (overlong forms, surrogates
 * and values above U+10FFFF are not well-formed). ASCII is the caller's.
 */
static size_t cli_utf8_len(const uint8_t *p, size_t avail, uint32_t *cp)
{
	uint32_t c, min;
	size_t len = 0;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		c = p[0] & 0x1fu;
		min = 0x80;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		c = p[0] & 0x0fu;
		min = 0x800;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		c = p[0] & 0x07u;
		min = 0x10000;
	} else {
		return 0;
	}
	if (avail < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3fu);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/*
 * Code points that print as nothing or reorder the text around them (C1
 * controls, zero-width and bidi controls, line/paragraph separators, BOM):
 * a payload must not be able to make a terminal show something else than
 * what is stored.
 */
static bool cli_codepoint_hidden(uint32_t cp)
{
	return cp < 0xa0 || cp == 0xad || (cp >= 0x200b && cp <= 0x200f) ||
	       (cp >= 0x2028 && cp <= 0x202e) ||
	       (cp >= 0x2060 && cp <= 0x206f) || cp == 0xfeff;
}

/* The two-character escape of newline, tab and CR; NULL for others. */
static const char *cli_escape_short(uint8_t b)
{
	switch (b) {
	case '\n':
		return "\\n";
	case '\t':
		return "\\t";
	case '\r':
		return "\\r";
	default:
		return NULL;
	}
}

/*
 * A payload for people: printable ASCII and visible UTF-8 as they are;
 * backslash as \\, newline, tab and CR as \n \t \r; every other byte
 * (controls, hidden code points, bytes that are not UTF-8) as \xNN. Unless
 * full, stops after CLI_PAYLOAD_CHARS_MAX characters and says how many
 * bytes were left out.
 */
static void cli_print_payload_text(FILE *out, const uint8_t *data, size_t len,
				   bool full)
{
	size_t pos = 0, chars = 0;

	while (pos < len) {
		uint8_t b = data[pos];
		uint32_t cp = 0;
		size_t n;

		if (!full && chars == CLI_PAYLOAD_CHARS_MAX)
			break;
		chars++;
		if (b >= 0x20 && b < 0x7f) {
			if (b == '\\')
				fputs("\\\\", out);
			else
				putc(b, out);
			pos++;
			continue;
		}
		if (cli_escape_short(b) != NULL) {
			fputs(cli_escape_short(b), out);
			pos++;
			continue;
		}
		n = b >= 0x80 ? cli_utf8_len(data + pos, len - pos, &cp) : 0;
		if (n > 0 && !cli_codepoint_hidden(cp)) {
			fwrite(data + pos, 1, n, out);
			pos += n;
			continue;
		}
		if (n == 0)
			n = 1;
		for (size_t i = 0; i < n; i++)
			fprintf(out, "\\x%02x", data[pos + i]);
		pos += n;
	}
	if (pos < len)
		fprintf(out, "\xe2\x80\xa6(+%zu bytes)", len - pos);
}

/*
 * A JSON string. Well-formed UTF-8 passes through; quote, backslash and
 * control characters are escaped. A byte that is not part of well-formed
 * UTF-8 is written as \u00NN (its value as a Latin-1 character): the
 * output stays valid JSON, but such a payload cannot be told apart from
 * text that really holds U+0080..U+00FF. Use `dump` without --json, which
 * shows those bytes as \xNN, when the exact bytes matter.
 */
static void cli_print_json_string(FILE *out, const uint8_t *data, size_t len)
{
	size_t pos = 0;

	putc('"', out);
	while (pos < len) {
		uint8_t b = data[pos];
		uint32_t cp;
		size_t n;

		if (b == '"' || b == '\\') {
			putc('\\', out);
			putc(b, out);
			pos++;
		} else if (cli_escape_short(b) != NULL) {
			fputs(cli_escape_short(b), out);
			pos++;
		} else if (b < 0x20 || b == 0x7f) {
			fprintf(out, "\\u%04x", b);
			pos++;
		} else if (b < 0x80) {
			putc(b, out);
			pos++;
		} else if ((n = cli_utf8_len(data + pos, len - pos, &cp)) > 0) {
			fwrite(data + pos, 1, n, out);
			pos += n;
		} else {
			fprintf(out, "\\u%04x", b);
			pos++;
		}
	}
	putc('"', out);
}

struct cli_print_opts {
	bool json;
	bool full;
	bool events;
};

static void cli_json_field(const char *name, const struct alog_str *v)
{
	if (v->len == 0)
		return;
	printf(",\"%s\":", name);
	cli_print_json_string(stdout, (const uint8_t *)v->p, v->len);
}

/* One decoded event record (docs/event-format.md) as a JSON line. */
static void cli_print_event(const struct alog_record *rec)
{
	static const char *const sources[] = { "?", "track", "plausible",
					       "umami" };
	static const char *const utm[] = { "utm_source", "utm_medium",
					   "utm_campaign", "utm_content",
					   "utm_term" };
	struct alog_event e;
	int rc = alog_event_decode(rec->data, rec->len, &e);

	if (rc < 0) {
		printf("{\"offset\":%" PRIu64 ",\"error\":\"%s\"}\n",
		       rec->offset,
		       rc == -EPROTONOSUPPORT ? "unknown event version" :
						"not an event record");
		return;
	}
	printf("{\"offset\":%" PRIu64 ",\"kind\":\"%s\",\"source\":\"%s\","
	       "\"flags\":%u,\"id\":\"",
	       rec->offset, alog_event_kind_name(e.kind),
	       e.source < 4 ? sources[e.source] : "?", e.flags);
	for (int i = 0; i < 16; i++)
		printf("%s%02x",
		       i == 4 || i == 6 || i == 8 || i == 10 ? "-" : "",
		       e.id[i]);
	printf("\",\"received_ms\":%" PRIu64 ",\"client_ms\":%" PRIu64
	       ",\"visitor\":\"%016" PRIx64 "\"",
	       e.received_ms, e.client_ms, e.visitor);
	if (e.country[0])
		printf(",\"country\":\"%c%c\"", e.country[0], e.country[1]);
	cli_json_field("site", &e.site);
	cli_json_field("name", &e.name);
	cli_json_field("url", &e.url);
	cli_json_field("referrer", &e.referrer);
	cli_json_field("session_id", &e.session_id);
	cli_json_field("user_id", &e.user_id);
	cli_json_field("user_agent", &e.user_agent);
	cli_json_field("region", &e.region);
	cli_json_field("city", &e.city);
	for (int i = 0; i < ALOG_UTM_COUNT; i++)
		cli_json_field(utm[i], &e.utm[i]);
	cli_json_field("content_id", &e.content_id);
	cli_json_field("content_type", &e.content_type);
	cli_json_field("title", &e.title);
	cli_json_field("hostname", &e.hostname);
	cli_json_field("language", &e.language);
	cli_json_field("timezone", &e.timezone);
	cli_json_field("funnel_id", &e.funnel_id);
	cli_json_field("step_id", &e.step_id);
	cli_json_field("target_id", &e.target_id);
	cli_json_field("target_type", &e.target_type);
	if (e.has_screen)
		printf(",\"screen\":[%u,%u]", e.screen_w, e.screen_h);
	if (e.has_viewport)
		printf(",\"viewport\":[%u,%u]", e.viewport_w, e.viewport_h);
	if (e.has_touch_points)
		printf(",\"touch_points\":%u", e.touch_points);
	if (e.has_value)
		printf(",\"value_micros\":%" PRId64 ",\"currency\":\"%.3s\"",
		       e.value_micros, e.currency);
	if (e.has_step_order)
		printf(",\"step_order\":%" PRIu32, e.step_order);
	/* JSON fields are objects already: embed them as they are. */
	if (e.props.len)
		printf(",\"props\":%.*s", (int)e.props.len, e.props.p);
	if (e.device_extra.len)
		printf(",\"device_extra\":%.*s", (int)e.device_extra.len,
		       e.device_extra.p);
	fputs("}\n", stdout);
}

static void cli_print_record(const struct alog_record *rec,
			     const struct cli_print_opts *po)
{
	char when[48];

	if (po->events) {
		cli_print_event(rec);
		return;
	}

	if (po->json) {
		printf("{\"offset\":%" PRIu64 ",\"time_ms\":%" PRIu64
		       ",\"len\":%" PRIu32 ",\"data\":",
		       rec->offset, rec->time_ms, rec->len);
		cli_print_json_string(stdout, rec->data, rec->len);
		fputs("}\n", stdout);
		return;
	}
	cli_format_time(rec->time_ms, when, sizeof(when));
	printf("%" PRIu64 " %s %" PRIu32 " ", rec->offset, when, rec->len);
	cli_print_payload_text(stdout, rec->data, rec->len, po->full);
	putc('\n', stdout);
}

/* Flush stdout and turn a failed write (disk full, closed pipe) into 2. */
static int cli_stdout_finish(int ex)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "alog: writing to stdout: %s\n",
			strerror(errno));
		return ex == CLI_EXIT_OK ? CLI_EXIT_ERROR : ex;
	}
	return ex;
}

/* ---- Errors --------------------------------------------------------------- */

/*
 * Opening dir failed (inspect, cursor or, if writer, the log itself). The
 * library says -ENOENT or -ENOTRECOVERABLE for both a missing directory
 * and one that is not a log; look at the directory to say which.
 */
static int cli_report_dir_error(const char *dir, int err, bool writer)
{
	struct stat st;
	int dirfd;
	bool has_log;

	fflush(stdout);
	if (err == -ENOENT || err == -ENOTRECOVERABLE || err == -ENOTDIR) {
		if (stat(dir, &st) != 0) {
			if (errno == ENOENT)
				fprintf(stderr, "alog: %s: no such directory\n",
					dir);
			else
				fprintf(stderr, "alog: %s: %s\n", dir,
					strerror(errno));
			return CLI_EXIT_ERROR;
		}
		if (!S_ISDIR(st.st_mode)) {
			fprintf(stderr, "alog: %s: not a directory\n", dir);
			return CLI_EXIT_ERROR;
		}
		dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		has_log = dirfd >= 0 && fstatat(dirfd, "LOG", &st, 0) == 0;
		if (dirfd >= 0)
			close(dirfd);
		if (!has_log) {
			fprintf(stderr,
				"alog: %s: not an alog log directory (no LOG file)\n",
				dir);
			return CLI_EXIT_ERROR;
		}
		if (err == -ENOTRECOVERABLE) {
			fprintf(stderr,
				"alog: %s: LOG file is not an alog LOG file\n",
				dir);
			return CLI_EXIT_ERROR;
		}
	}
	/*
	 * Readers get -EBADMSG at open only from LOG's checksum; the writer
	 * also from recovery (a damaged segment header, for example).
	 */
	if (err == -EBADMSG) {
		if (writer)
			fprintf(stderr,
				"alog: %s: recovery found damaged data (%s); run 'alog verify %s'\n",
				dir, alog_strerror(err), dir);
		else
			fprintf(stderr,
				"alog: %s: LOG file is damaged (checksum mismatch)\n",
				dir);
		return CLI_EXIT_DAMAGE;
	}
	if (err == -EPROTONOSUPPORT) {
		fprintf(stderr, "alog: %s: %s (LOG says another version)\n",
			dir, alog_strerror(err));
		return CLI_EXIT_ERROR;
	}
	if (err == -EWOULDBLOCK) {
		fprintf(stderr,
			"alog: %s: another process has the log open for writing (%s)\n",
			dir, alog_strerror(err));
		return CLI_EXIT_ERROR;
	}
	fprintf(stderr, "alog: %s: %s\n", dir, alog_strerror(err));
	return CLI_EXIT_ERROR;
}

static int cli_inspect(const char *dir, struct alog_log_info *info)
{
	int rc;

	memset(info, 0, sizeof(*info));
	rc = alog_log_inspect(dir, info);
	if (rc < 0)
		return cli_report_dir_error(dir, rc, false);
	return CLI_EXIT_OK;
}

/* Offset the next record will get according to the segments. */
static uint64_t cli_info_next_offset(const struct alog_log_info *info)
{
	uint64_t next = info->start_offset;

	if (info->nsegments > 0 &&
	    info->segments[info->nsegments - 1].next_offset > next)
		next = info->segments[info->nsegments - 1].next_offset;
	return next;
}

/* End of what a cursor can see: HEAD may lag the segments, never lead. */
static uint64_t cli_info_visible_end(const struct alog_log_info *info)
{
	uint64_t end = cli_info_next_offset(info);

	if (info->head_offset != UINT64_MAX && info->head_offset < end)
		end = info->head_offset;
	if (end < info->start_offset)
		end = info->start_offset;
	return end;
}

/* -ERANGE: say which offsets there are, so the user can pick one. */
static int cli_report_range(const char *dir, uint64_t offset)
{
	struct alog_log_info info;

	fflush(stdout);
	if (alog_log_inspect(dir, &info) < 0) {
		fprintf(stderr,
			"alog: %s: offset %" PRIu64 " is outside the log\n",
			dir, offset);
		return CLI_EXIT_ERROR;
	}
	if (cli_info_visible_end(&info) == info.start_offset)
		fprintf(stderr,
			"alog: %s: offset %" PRIu64
			" is outside the log (it is empty, next offset %" PRIu64
			")\n",
			dir, offset, info.start_offset);
	else
		fprintf(stderr,
			"alog: %s: offset %" PRIu64
			" is outside the log (records %" PRIu64 "..%" PRIu64
			")\n",
			dir, offset, info.start_offset,
			cli_info_visible_end(&info) - 1);
	free(info.segments);
	return CLI_EXIT_ERROR;
}

static int cli_open_cursor(const char *dir, uint64_t offset,
			   struct alog_cursor **c)
{
	int err = 0;

	*c = alog_cursor_open(dir, offset, &err);
	if (*c != NULL)
		return CLI_EXIT_OK;
	if (err == -ERANGE)
		return cli_report_range(dir, offset);
	return cli_report_dir_error(dir, err, false);
}

/* Where a cursor found damage; NULL when it was not in a segment. */
static void cli_print_damage(FILE *out, const struct alog_damage *d,
			     uint64_t offset)
{
	if (d == NULL) {
		fprintf(out, "damaged data reading offset %" PRIu64 "\n",
			offset);
		return;
	}
	fprintf(out,
		"damaged record in segment %020" PRIu64
		".seg at file position %" PRIu64 " (offset %" PRIu64 "): %s\n",
		d->segment_base, d->position, d->offset,
		d->reason != NULL ? d->reason : "unknown reason");
}

/* A cursor call failed: say so and pick the exit code. */
static int cli_report_cursor_error(const char *dir, struct alog_cursor *c,
				   int err)
{
	fflush(stdout);
	if (err == -EBADMSG) {
		fprintf(stderr, "alog: %s: ", dir);
		cli_print_damage(stderr, alog_cursor_damage(c),
				 alog_cursor_offset(c));
		fprintf(stderr,
			"alog: run 'alog verify %s' for a full report\n", dir);
		return CLI_EXIT_DAMAGE;
	}
	if (err == -ERANGE)
		return cli_report_range(dir, alog_cursor_offset(c));
	fprintf(stderr, "alog: %s: reading offset %" PRIu64 ": %s\n", dir,
		alog_cursor_offset(c), alog_strerror(err));
	return CLI_EXIT_ERROR;
}

/* ---- ls ------------------------------------------------------------------- */

enum {
	CLI_LS_COLUMNS = 6
};

/* Offsets and counts align right, text left; no padding at the end. */
static void cli_ls_print_row(const char *const row[CLI_LS_COLUMNS],
			     const size_t width[CLI_LS_COLUMNS])
{
	for (size_t col = 0; col < CLI_LS_COLUMNS; col++) {
		bool right = col == 1 || col == 2;

		if (col + 1 == CLI_LS_COLUMNS)
			printf("%s\n", row[col]);
		else
			printf(right ? "%*s  " : "%-*s  ", (int)width[col],
			       row[col]);
	}
}

static int cli_cmd_ls(const struct cli_args *args)
{
	static const char *const header[CLI_LS_COLUMNS] = {
		"BASE", "LAST", "RECORDS", "DATA/FILE", "AGE", "STATE"
	};
	char(*cells)[CLI_LS_COLUMNS][48] = NULL;
	size_t width[CLI_LS_COLUMNS];
	struct alog_log_info info;
	uint64_t now_ms = alog_now_ms();
	int ex;

	ex = cli_inspect(args->dir, &info);
	if (ex != CLI_EXIT_OK)
		return ex;

	if (args->seen & CLI_OPT_JSON) {
		for (size_t i = 0; i < info.nsegments; i++) {
			const struct alog_segment_info *s = &info.segments[i];
			bool last = i + 1 == info.nsegments;

			printf("{\"base_offset\":%" PRIu64, s->base_offset);
			if (s->records > 0)
				printf(",\"last_offset\":%" PRIu64,
				       s->next_offset - 1);
			else
				fputs(",\"last_offset\":null", stdout);
			printf(",\"next_offset\":%" PRIu64
			       ",\"records\":%" PRIu64
			       ",\"data_bytes\":%" PRIu64
			       ",\"file_bytes\":%" PRIu64
			       ",\"created_ms\":%" PRIu64 ",\"age_ms\":%" PRIu64
			       ",\"last_time_ms\":%" PRIu64
			       ",\"sealed\":%s,\"state\":\"%s\"}\n",
			       s->next_offset, s->records, s->data_bytes,
			       s->file_bytes, s->created_ms,
			       now_ms > s->created_ms ? now_ms - s->created_ms :
							0,
			       s->last_time_ms, s->sealed ? "true" : "false",
			       s->sealed ? "sealed" :
			       last      ? "active" :
					   "no-index");
		}
		free(info.segments);
		return cli_stdout_finish(CLI_EXIT_OK);
	}

	/* Size the columns to their widest cell, like ls -l. */
	cells = calloc(info.nsegments > 0 ? info.nsegments : 1, sizeof(*cells));
	if (cells == NULL) {
		fprintf(stderr, "alog: out of memory\n");
		free(info.segments);
		return CLI_EXIT_ERROR;
	}
	for (size_t col = 0; col < CLI_LS_COLUMNS; col++)
		width[col] = strlen(header[col]);
	for (size_t i = 0; i < info.nsegments; i++) {
		const struct alog_segment_info *s = &info.segments[i];
		char data[24], file[24];

		snprintf(cells[i][0], sizeof(cells[i][0]), "%" PRIu64,
			 s->base_offset);
		if (s->records > 0)
			snprintf(cells[i][1], sizeof(cells[i][1]), "%" PRIu64,
				 s->next_offset - 1);
		else
			snprintf(cells[i][1], sizeof(cells[i][1]), "-");
		snprintf(cells[i][2], sizeof(cells[i][2]), "%" PRIu64,
			 s->records);
		cli_format_bytes(s->data_bytes, data, sizeof(data));
		cli_format_bytes(s->file_bytes, file, sizeof(file));
		snprintf(cells[i][3], sizeof(cells[i][3]), "%s/%s", data, file);
		cli_format_age(now_ms > s->created_ms ? now_ms - s->created_ms :
							0,
			       cells[i][4], sizeof(cells[i][4]));
		snprintf(cells[i][5], sizeof(cells[i][5]), "%s",
			 s->sealed               ? "sealed" :
			 i + 1 == info.nsegments ? "active" :
						   "no-index");
		for (size_t col = 0; col < CLI_LS_COLUMNS; col++)
			if (strlen(cells[i][col]) > width[col])
				width[col] = strlen(cells[i][col]);
	}
	cli_ls_print_row(header, width);
	for (size_t i = 0; i < info.nsegments; i++) {
		const char *row[CLI_LS_COLUMNS];

		for (size_t col = 0; col < CLI_LS_COLUMNS; col++)
			row[col] = cells[i][col];
		cli_ls_print_row(row, width);
	}
	free(cells);
	free(info.segments);
	return cli_stdout_finish(CLI_EXIT_OK);
}

/* ---- stat ----------------------------------------------------------------- */

static int cli_cmd_stat(const struct cli_args *args)
{
	struct alog_log_info info;
	uint64_t next, records = 0, disk_bytes = 0, now_ms = alog_now_ms();
	char identity[33], created[48], age[32], disk[24];
	bool empty;
	int ex;

	ex = cli_inspect(args->dir, &info);
	if (ex != CLI_EXIT_OK)
		return ex;
	for (size_t i = 0; i < info.nsegments; i++) {
		records += info.segments[i].records;
		disk_bytes += info.segments[i].file_bytes;
	}
	for (size_t i = 0; i < sizeof(info.identity); i++)
		snprintf(identity + 2 * i, 3, "%02x", info.identity[i]);
	next = cli_info_next_offset(&info);
	empty = next == 0 || next <= info.start_offset;

	if (args->seen & CLI_OPT_JSON) {
		printf("{\"identity\":\"%s\",\"created_ms\":%" PRIu64
		       ",\"first_offset\":%" PRIu64,
		       identity, info.created_ms, info.start_offset);
		if (empty)
			fputs(",\"last_offset\":null", stdout);
		else
			printf(",\"last_offset\":%" PRIu64, next - 1);
		printf(",\"next_offset\":%" PRIu64, next);
		if (info.head_offset == UINT64_MAX)
			fputs(",\"head_offset\":null", stdout);
		else
			printf(",\"head_offset\":%" PRIu64, info.head_offset);
		printf(",\"records\":%" PRIu64 ",\"segments\":%zu"
		       ",\"disk_bytes\":%" PRIu64 "}\n",
		       records, info.nsegments, disk_bytes);
		free(info.segments);
		return cli_stdout_finish(CLI_EXIT_OK);
	}

	cli_format_time(info.created_ms, created, sizeof(created));
	cli_format_age(now_ms > info.created_ms ? now_ms - info.created_ms : 0,
		       age, sizeof(age));
	cli_format_bytes(disk_bytes, disk, sizeof(disk));
	printf("identity      %s\n", identity);
	printf("created       %s (%s ago)\n", created, age);
	printf("first offset  %" PRIu64 "\n", info.start_offset);
	if (empty)
		printf("last offset   empty\n");
	else
		printf("last offset   %" PRIu64 "\n", next - 1);
	if (info.head_offset == UINT64_MAX)
		printf("head          none (no HEAD file)\n");
	else if (info.head_offset < next)
		printf("head          %" PRIu64 " (%" PRIu64
		       " records not yet visible)\n",
		       info.head_offset, next - info.head_offset);
	else
		printf("head          %" PRIu64 "\n", info.head_offset);
	printf("records       %" PRIu64 "\n", records);
	printf("segments      %zu\n", info.nsegments);
	printf("disk used     %s (%" PRIu64 " bytes)\n", disk, disk_bytes);
	free(info.segments);
	return cli_stdout_finish(CLI_EXIT_OK);
}

/* ---- dump ----------------------------------------------------------------- */

static int cli_cmd_dump(const struct cli_args *args)
{
	struct cli_print_opts po = {
		.json = args->seen & CLI_OPT_JSON,
		.full = args->seen & CLI_OPT_FULL,
		.events = args->seen & CLI_OPT_EVENTS,
	};
	uint64_t from = args->seen & CLI_OPT_FROM ? args->from_offset :
						    ALOG_OFFSET_ANY;
	uint64_t left = args->seen & CLI_OPT_COUNT ? args->count_records :
						     UINT64_MAX;
	struct alog_cursor *c;
	struct alog_record rec;
	int ex, rc;

	ex = cli_open_cursor(args->dir, from, &c);
	if (ex != CLI_EXIT_OK)
		return ex;
	for (; left > 0; left--) {
		rc = alog_cursor_next(c, &rec);
		if (rc == 0)
			break;
		if (rc < 0) {
			ex = cli_report_cursor_error(args->dir, c, rc);
			break;
		}
		cli_print_record(&rec, &po);
	}
	alog_cursor_close(c);
	return cli_stdout_finish(ex);
}

/* ---- verify --------------------------------------------------------------- */

static const char *cli_plural(uint64_t n)
{
	return n == 1 ? "" : "s";
}

/* What one pass of a cursor over the whole log found. */
struct cli_verify_tally {
	uint64_t records_ok;
	uint64_t records_lost; /* in damaged ranges */
	uint64_t ranges;       /* damaged ranges */
	uint64_t first_offset; /* UINT64_MAX until something was read */
	uint64_t end_offset;   /* where the cursor stopped */
	bool damaged;
};

/*
 * Cross-check the cursor's count with the one alog_log_inspect() made
 * before it (sealed segments from their index, the active one by a scan up
 * to HEAD). A writer appending meanwhile makes the cursor see more; that is
 * fine. Fewer means records the segments claim could not be read. Returns
 * false on a mismatch. Once damage was found the counts may differ by
 * design (inspect's scan of the active segment stops at the damage), so
 * then it only says what inspect counted.
 */
static bool cli_verify_cross_check(const struct alog_log_info *info,
				   const struct cli_verify_tally *t)
{
	uint64_t inspect_records = 0, covered = t->records_ok + t->records_lost;

	for (size_t i = 0; i < info->nsegments; i++)
		inspect_records += info->segments[i].records;
	if (covered == inspect_records)
		return true;
	if (t->damaged) {
		printf("note: inspect counts %" PRIu64
		       " records; it stops at damage in the active segment\n",
		       inspect_records);
		return true;
	}
	if (covered > inspect_records &&
	    t->end_offset > cli_info_next_offset(info)) {
		printf("note: %" PRIu64
		       " records were appended while verifying\n",
		       covered - inspect_records);
		return true;
	}
	printf("record count mismatch: the segments hold %" PRIu64
	       " records, the cursor read %" PRIu64 "\n",
	       inspect_records, t->records_ok);
	return false;
}

/* After -EBADMSG: report the damage and step over it. false: cannot go on. */
static bool cli_verify_skip(struct alog_cursor *c, struct cli_verify_tally *t,
			    struct alog_damage *last)
{
	const struct alog_damage *d = alog_cursor_damage(c);
	uint64_t lost_from, lost_to;
	int rc;

	t->damaged = true;
	cli_print_damage(stdout, d, alog_cursor_offset(c));
	if (d == NULL)
		return false; /* nothing to skip */
	if (d->segment_base == last->segment_base &&
	    d->position == last->position && d->offset == last->offset) {
		printf("  skipping the damage made no progress; stopping\n");
		return false;
	}
	*last = *d;
	rc = alog_cursor_skip_damage(c, &lost_from, &lost_to);
	if (rc < 0) {
		printf("  cannot skip past the damage: %s; stopping\n",
		       alog_strerror(rc));
		return false;
	}
	t->ranges++;
	if (t->first_offset == UINT64_MAX)
		t->first_offset = lost_from;
	if (lost_to > lost_from) {
		printf("  lost offsets %" PRIu64 "..%" PRIu64 " (%" PRIu64
		       " record%s)\n",
		       lost_from, lost_to - 1, lost_to - lost_from,
		       cli_plural(lost_to - lost_from));
		t->records_lost += lost_to - lost_from;
	} else {
		printf("  no records lost\n");
	}
	return true;
}

static int cli_cmd_verify(const struct cli_args *args)
{
	struct cli_verify_tally t = { .first_offset = UINT64_MAX };
	struct alog_damage last = { .segment_base = UINT64_MAX };
	uint64_t expect_offset = UINT64_MAX;
	struct alog_log_info info;
	struct alog_cursor *c;
	struct alog_record rec;
	int ex, rc;

	/* Inspect first: a writer may append while we read, never remove. */
	ex = cli_inspect(args->dir, &info);
	if (ex != CLI_EXIT_OK)
		return ex;
	ex = cli_open_cursor(args->dir, ALOG_OFFSET_ANY, &c);
	if (ex != CLI_EXIT_OK)
		goto out_free_info;
	for (;;) {
		rc = alog_cursor_next(c, &rec);
		if (rc == 0)
			break;
		if (rc == -EBADMSG) {
			if (!cli_verify_skip(c, &t, &last))
				break;
			expect_offset = alog_cursor_offset(c);
			continue;
		}
		if (rc < 0) {
			ex = cli_report_cursor_error(args->dir, c, rc);
			goto out_close_cursor;
		}
		/* Offsets are dense: each record starts where the last ended. */
		if (expect_offset != UINT64_MAX &&
		    rec.offset != expect_offset) {
			printf("offset %" PRIu64 " found where %" PRIu64
			       " was expected\n",
			       rec.offset, expect_offset);
			t.damaged = true;
		}
		if (t.first_offset == UINT64_MAX)
			t.first_offset = rec.offset;
		expect_offset = rec.offset + 1;
		t.records_ok++;
	}
	t.end_offset = alog_cursor_offset(c);
	if (!cli_verify_cross_check(&info, &t))
		t.damaged = true;

	if (t.first_offset != UINT64_MAX && t.end_offset > t.first_offset)
		printf("%" PRIu64 " record%s ok (offsets %" PRIu64 "..%" PRIu64
		       ") in %zu segment%s, ",
		       t.records_ok, cli_plural(t.records_ok), t.first_offset,
		       t.end_offset - 1, info.nsegments,
		       cli_plural(info.nsegments));
	else
		printf("%" PRIu64 " record%s ok in %zu segment%s, ",
		       t.records_ok, cli_plural(t.records_ok), info.nsegments,
		       cli_plural(info.nsegments));
	if (t.damaged)
		printf("%" PRIu64 " damaged range%s, %" PRIu64
		       " record%s lost: DAMAGED\n",
		       t.ranges, cli_plural(t.ranges), t.records_lost,
		       cli_plural(t.records_lost));
	else
		printf("no damage\n");
	ex = t.damaged ? CLI_EXIT_DAMAGE : CLI_EXIT_OK;

out_close_cursor:
	alog_cursor_close(c);
out_free_info:
	free(info.segments);
	return cli_stdout_finish(ex);
}

/* ---- tail ----------------------------------------------------------------- */

/* True once SIGINT or SIGTERM is pending on the (non-blocking) signalfd. */
static bool cli_stop_requested(int sigfd)
{
	struct signalfd_siginfo si;

	return read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si);
}

/*
 * Follow mode blocks SIGINT/SIGTERM and takes them from a signalfd polled
 * together with the cursor's inotify descriptor. A flag set by a handler
 * would leave a window between testing it and going to sleep in which a
 * Ctrl-C is lost; this way there is none and no global state either.
 */
static int cli_signals_block(int *sigfd)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0)
		return -errno;
	*sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (*sigfd < 0)
		return -errno;
	return 0;
}

static int cli_cmd_tail(const struct cli_args *args)
{
	struct cli_print_opts po = {
		.json = args->seen & CLI_OPT_JSON,
		.full = args->seen & CLI_OPT_FULL,
		.events = args->seen & CLI_OPT_EVENTS,
	};
	bool follow = args->seen & CLI_OPT_FOLLOW;
	uint64_t from, printed = 0;
	struct alog_cursor *c;
	struct alog_record rec;
	int sigfd = -1, ex, rc;

	if (args->seen & CLI_OPT_FROM) {
		from = args->from_offset;
	} else {
		struct alog_log_info info;
		uint64_t n = args->seen & CLI_OPT_LINES ?
				     args->tail_records :
				     CLI_TAIL_RECORDS_DEFAULT;
		uint64_t end;

		ex = cli_inspect(args->dir, &info);
		if (ex != CLI_EXIT_OK)
			return ex;
		end = cli_info_visible_end(&info);
		from = end - info.start_offset > n ? end - n :
						     info.start_offset;
		free(info.segments);
	}
	if (follow) {
		rc = cli_signals_block(&sigfd);
		if (rc < 0) {
			fprintf(stderr, "alog: cannot set up signals: %s\n",
				strerror(-rc));
			return CLI_EXIT_ERROR;
		}
	}

	ex = cli_open_cursor(args->dir, from, &c);
	if (ex != CLI_EXIT_OK)
		goto out_close_sigfd;
	if (follow && alog_cursor_fd(c) < 0) {
		fprintf(stderr, "alog: %s: cannot follow: no change notifier\n",
			args->dir);
		ex = CLI_EXIT_ERROR;
		goto out_close_cursor;
	}
	for (;;) {
		struct pollfd pfd[2];

		while ((rc = alog_cursor_next(c, &rec)) == 1) {
			cli_print_record(&rec, &po);
			if (follow &&
			    ++printed % CLI_SIGNAL_CHECK_RECORDS == 0 &&
			    cli_stop_requested(sigfd))
				goto out_close_cursor;
		}
		if (rc < 0) {
			ex = cli_report_cursor_error(args->dir, c, rc);
			break;
		}
		if (!follow)
			break;
		/* Whoever reads our output sees each record as it comes. */
		if (fflush(stdout) != 0)
			break;
		pfd[0] = (struct pollfd){ .fd = sigfd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = alog_cursor_fd(c),
					  .events = POLLIN };
		rc = poll(pfd, 2, -1);
		if (rc < 0 && errno != EINTR) {
			fprintf(stderr, "alog: poll: %s\n", strerror(errno));
			ex = CLI_EXIT_ERROR;
			break;
		}
		if (pfd[0].revents != 0 && cli_stop_requested(sigfd))
			break;
		/* Consumes the inotify events; never sleeps here. */
		rc = alog_cursor_wait(c, 0);
		if (rc < 0) {
			fprintf(stderr, "alog: %s: waiting for records: %s\n",
				args->dir, alog_strerror(rc));
			ex = CLI_EXIT_ERROR;
			break;
		}
	}
out_close_cursor:
	alog_cursor_close(c);
out_close_sigfd:
	if (sigfd >= 0)
		close(sigfd);
	return cli_stdout_finish(ex);
}

/* ---- append --------------------------------------------------------------- */

/* Shared with the log's commit thread, which runs cli_append_done(). */
struct cli_append_state {
	pthread_mutex_t lock;
	pthread_cond_t done;
	unsigned in_flight;
	uint64_t acked_records;
	uint64_t first_offset; /* lowest acknowledged offset */
	uint64_t last_offset;  /* highest acknowledged offset */
	int status;            /* first error reported by a callback */
};

static void cli_append_done(void *arg, int status, uint64_t first_offset)
{
	struct cli_append_state *st = arg;

	pthread_mutex_lock(&st->lock);
	if (status < 0) {
		if (st->status == 0)
			st->status = status;
	} else {
		if (st->acked_records == 0 || first_offset < st->first_offset)
			st->first_offset = first_offset;
		if (st->acked_records == 0 || first_offset > st->last_offset)
			st->last_offset = first_offset;
		st->acked_records++;
	}
	st->in_flight--;
	pthread_cond_signal(&st->done);
	pthread_mutex_unlock(&st->lock);
}

/* Wait until at most in_flight_max appends are pending; their status. */
static int cli_append_drain(struct cli_append_state *st, unsigned in_flight_max)
{
	int status;

	pthread_mutex_lock(&st->lock);
	while (st->in_flight > in_flight_max)
		pthread_cond_wait(&st->done, &st->lock);
	status = st->status;
	pthread_mutex_unlock(&st->lock);
	return status;
}

/*
 * Lines from a file descriptor through one buffer that holds a whole line
 * of up to line_bytes_max bytes, so memory stays bounded whatever the input.
 */
struct cli_line_reader {
	int fd;
	uint8_t *buf;
	size_t cap_bytes;
	size_t start, end; /* unread bytes are buf[start..end) */
	size_t scanned;    /* of those, known to hold no newline */
	bool eof;
	uint64_t line_no; /* of the line handed out last */
};

/*
 * Hand out the next line (without its newline) as a view into the buffer,
 * valid until the next call. Returns 1, 0 at the end of input, -EMSGSIZE
 * when the line is longer than line_bytes_max, or -errno on a read error.
 */
static int cli_line_next(struct cli_line_reader *r, size_t line_bytes_max,
			 const uint8_t **line, size_t *len)
{
	for (;;) {
		size_t avail = r->end - r->start;
		uint8_t *nl = memchr(r->buf + r->start + r->scanned, '\n',
				     avail - r->scanned);
		ssize_t n;

		if (nl != NULL) {
			*line = r->buf + r->start;
			*len = (size_t)(nl - *line);
			r->start += *len + 1;
			r->scanned = 0;
			r->line_no++;
			return *len > line_bytes_max ? -EMSGSIZE : 1;
		}
		r->scanned = avail;
		if (avail > line_bytes_max) {
			r->line_no++;
			return -EMSGSIZE;
		}
		if (r->eof) {
			if (avail == 0)
				return 0;
			*line = r->buf + r->start;
			*len = avail;
			r->start = r->end;
			r->scanned = 0;
			r->line_no++;
			return 1;
		}
		if (r->end == r->cap_bytes) {
			memmove(r->buf, r->buf + r->start, avail);
			r->start = 0;
			r->end = avail;
		}
		n = read(r->fd, r->buf + r->end, r->cap_bytes - r->end);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			r->eof = true;
		r->end += (size_t)n;
	}
}

static int cli_cmd_append(const struct cli_args *args)
{
	struct cli_append_state st = {
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.done = PTHREAD_COND_INITIALIZER,
	};
	struct cli_line_reader reader = { .fd = STDIN_FILENO };
	struct alog_log_options opts;
	struct alog_log *log;
	const uint8_t *line = NULL;
	size_t len = 0;
	int ex = CLI_EXIT_OK, err = 0, rc;

	alog_log_options_init(&opts);
	opts.create = args->seen & CLI_OPT_CREATE;
	if (args->seen & CLI_OPT_DURABILITY)
		opts.durability = args->durability;

	/* One whole line plus room to read more behind it. */
	reader.cap_bytes =
		(size_t)opts.record_bytes_max + 1 + CLI_READ_CHUNK_BYTES;
	reader.buf = malloc(reader.cap_bytes);
	if (reader.buf == NULL) {
		fprintf(stderr, "alog: out of memory\n");
		return CLI_EXIT_ERROR;
	}

	log = alog_log_open(args->dir, &opts, &err);
	if (log == NULL) {
		ex = cli_report_dir_error(args->dir, err, true);
		if (err == -ENOENT && !opts.create)
			fprintf(stderr,
				"alog: use --create to create a new log\n");
		goto out_free;
	}

	for (;;) {
		struct iovec iov;

		rc = cli_line_next(&reader, opts.record_bytes_max, &line, &len);
		if (rc == 0)
			break;
		if (rc == -EMSGSIZE) {
			fprintf(stderr,
				"alog: stdin line %" PRIu64
				": longer than record_bytes_max (%" PRIu32
				" bytes)\n",
				reader.line_no, opts.record_bytes_max);
			ex = CLI_EXIT_ERROR;
			break;
		}
		if (rc < 0) {
			fprintf(stderr, "alog: reading stdin: %s\n",
				strerror(-rc));
			ex = CLI_EXIT_ERROR;
			break;
		}
		if (len == 0)
			continue;
		rc = cli_append_drain(&st, CLI_APPEND_IN_FLIGHT_MAX - 1);
		if (rc < 0)
			break; /* reported below, after the drain */
		pthread_mutex_lock(&st.lock);
		st.in_flight++;
		pthread_mutex_unlock(&st.lock);
		iov.iov_base = (void *)line;
		iov.iov_len = len;
		rc = alog_log_append(log, &iov, 1, NULL, cli_append_done, &st);
		if (rc < 0) {
			pthread_mutex_lock(&st.lock);
			st.in_flight--;
			pthread_mutex_unlock(&st.lock);
			fprintf(stderr,
				"alog: %s: appending stdin line %" PRIu64
				": %s\n",
				args->dir, reader.line_no, alog_strerror(rc));
			ex = CLI_EXIT_ERROR;
			break;
		}
	}

	/* What was appended before an error stays appended: make it durable. */
	rc = alog_log_sync(log);
	if (rc < 0 && ex == CLI_EXIT_OK) {
		fprintf(stderr, "alog: %s: sync: %s\n", args->dir,
			alog_strerror(rc));
		ex = CLI_EXIT_ERROR;
	}
	rc = cli_append_drain(&st, 0);
	if (rc < 0 && ex == CLI_EXIT_OK) {
		fprintf(stderr, "alog: %s: append failed: %s\n", args->dir,
			alog_strerror(rc));
		ex = CLI_EXIT_ERROR;
	}
	alog_log_close(log);

	if (st.acked_records > 0)
		fprintf(stderr,
			"appended %" PRIu64 " records, offsets %" PRIu64
			"..%" PRIu64 "\n",
			st.acked_records, st.first_offset, st.last_offset);
	else
		fprintf(stderr, "appended 0 records\n");
out_free:
	pthread_cond_destroy(&st.done);
	pthread_mutex_destroy(&st.lock);
	free(reader.buf);
	return ex;
}

/* ---- Command line --------------------------------------------------------- */

/*
 * consumers: the checkpoints of the log's consumers (the shipper, the
 * writer) and how far each trails the log; --commit sets one by hand.
 */
static int cli_cmd_consumers(const struct cli_args *args)
{
	struct alog_log_info info;
	uint64_t last_next = 0;
	DIR *d;
	struct dirent *de;
	char path[PATH_MAX];
	int rc;

	rc = alog_log_inspect(args->dir, &info);
	if (rc < 0)
		return cli_report_dir_error(args->dir, rc, false);
	if (info.nsegments > 0)
		last_next = info.segments[info.nsegments - 1].next_offset;
	free(info.segments);
	if (args->commit) {
		const char *eq = strrchr(args->commit, '=');
		char name[ALOG_CONSUMER_NAME_MAX + 1];
		uint64_t off;

		if (!eq || eq == args->commit ||
		    (size_t)(eq - args->commit) > ALOG_CONSUMER_NAME_MAX ||
		    !cli_parse_u64(eq + 1, &off)) {
			fprintf(stderr,
				"alog consumers: --commit takes NAME=OFFSET\n");
			return CLI_EXIT_USAGE;
		}
		memcpy(name, args->commit, (size_t)(eq - args->commit));
		name[eq - args->commit] = 0;
		rc = alog_consumer_commit(args->dir, name, off);
		if (rc < 0) {
			fprintf(stderr, "alog: %s: consumer %s: %s\n",
				args->dir, name, alog_strerror(rc));
			return CLI_EXIT_ERROR;
		}
		return CLI_EXIT_OK;
	}
	snprintf(path, sizeof(path), "%s/consumers", args->dir);
	d = opendir(path);
	if (!d)
		return CLI_EXIT_OK; /* no consumers yet */
	while ((de = readdir(d)) != NULL) {
		uint64_t off, when;

		if (de->d_name[0] == '.')
			continue;
		rc = alog_consumer_read(args->dir, de->d_name, &off, &when);
		if (rc == -EINVAL)
			continue; /* a temp file or a stray name */
		if (rc < 0) {
			printf("%s\tdamaged checkpoint (%s)\n", de->d_name,
			       alog_strerror(rc));
			continue;
		}
		printf("%s\t%" PRIu64 "\tlag %" PRIu64
		       " records\tcommitted %" PRIu64 " ms\n",
		       de->d_name, off, last_next > off ? last_next - off : 0,
		       when);
	}
	closedir(d);
	return cli_stdout_finish(CLI_EXIT_OK);
}

static const struct cli_command cli_commands[] = {
	{ "ls", cli_cmd_ls, CLI_OPT_HELP | CLI_OPT_JSON, "ls DIR [--json]",
	  "list the segments",
	  "One row per segment: base and last offset, records, data bytes /\n"
	  "file bytes (the active segment is preallocated), age since it was\n"
	  "created, and whether it is sealed or active.\n"
	  "\n"
	  "  --json   one JSON object per segment and line\n" },
	{ "stat", cli_cmd_stat, CLI_OPT_HELP | CLI_OPT_JSON,
	  "stat DIR [--json]", "summarise the log",
	  "Identity, creation time, first and last offset, the HEAD watermark\n"
	  "(what readers may see), records, segments and disk used.\n"
	  "\n"
	  "  --json   one JSON object\n" },
	{ "dump", cli_cmd_dump,
	  CLI_OPT_HELP | CLI_OPT_JSON | CLI_OPT_FROM | CLI_OPT_COUNT |
		  CLI_OPT_FULL | CLI_OPT_EVENTS,
	  "dump DIR [--from N] [--count N] [--json] [--full] [--events]",
	  "print records",
	  "Prints `offset time length payload` per record, from the start of\n"
	  "the log (or offset N) to the last visible record; time is ISO-8601\n"
	  "UTC with milliseconds. Payload bytes that are not printable UTF-8\n"
	  "(controls, invisible or bidi characters, invalid bytes) are shown\n"
	  "as \\xNN, newline, tab and CR as \\n \\t \\r and backslash as \\\\;\n"
	  "payloads are cut after 200 characters.\n"
	  "\n"
	  "  --from N    start at offset N\n"
	  "  --count N   print at most N records\n"
	  "  --full      do not cut long payloads\n"
	  "  --json      JSON lines {\"offset\",\"time_ms\",\"len\",\"data\"}; data\n"
	  "              is the payload as a JSON string, bytes that are not\n"
	  "              UTF-8 appear as \\u0080..\\u00ff (lossy)\n"
	  "  --events    decode each payload as an alog event record\n"
	  "              (docs/event-format.md): one JSON object per line\n"
	  "\n"
	  "Exits 3 if it meets a damaged record.\n" },
	{ "verify", cli_cmd_verify, CLI_OPT_HELP, "verify DIR",
	  "check every record, report damage",
	  "Reads every record from the start of the log, checking each\n"
	  "checksum. For a damaged record it prints the segment, file\n"
	  "position, offset and reason, skips past it and prints the offsets\n"
	  "lost; at the end a summary. Exits 0 if the log is clean, 3 if\n"
	  "damage was found.\n" },
	{ "tail", cli_cmd_tail,
	  CLI_OPT_HELP | CLI_OPT_JSON | CLI_OPT_FROM | CLI_OPT_LINES |
		  CLI_OPT_FOLLOW | CLI_OPT_FULL | CLI_OPT_EVENTS,
	  "tail DIR [-f] [-n N | --from N] [--json] [--full] [--events]",
	  "print the last records, follow new ones",
	  "Prints the last 10 records (in the format of dump), then with -f\n"
	  "waits for new ones and prints them as they become visible, until\n"
	  "SIGINT or SIGTERM.\n"
	  "\n"
	  "  -f, --follow      keep printing new records\n"
	  "  -n, --lines N     print the last N records\n"
	  "  --from N          start at offset N instead\n"
	  "  --json, --full, --events  as for dump\n" },
	{ "consumers", cli_cmd_consumers, CLI_OPT_HELP | CLI_OPT_COMMIT,
	  "consumers DIR [--commit NAME=OFFSET]",
	  "show (or set) consumer checkpoints",
	  "One line per consumer (the shipper, the writer): the offset it has\n"
	  "acknowledged and how many records it trails the log. Retention\n"
	  "never deletes what the slowest consumer still needs.\n"
	  "\n"
	  "  --commit NAME=OFFSET   set a checkpoint by hand (atomic)\n" },
	{ "append", cli_cmd_append,
	  CLI_OPT_HELP | CLI_OPT_CREATE | CLI_OPT_DURABILITY,
	  "append DIR [--create] [--durability fsync|write]",
	  "append stdin lines as records",
	  "Appends each non-empty line of stdin (without its newline; a CR\n"
	  "before it is kept) as one record, then waits until all are durable\n"
	  "and prints the offsets they got to stderr. A line longer than\n"
	  "record_bytes_max (1 MiB) is an error; the lines before it stay\n"
	  "appended.\n"
	  "\n"
	  "  --create            create the log (and directory) if missing\n"
	  "  --durability MODE   fsync (default): acknowledge after fdatasync;\n"
	  "                      write: after write, fdatasync on an interval\n" },
};

static const struct cli_command *cli_command_find(const char *name)
{
	for (size_t i = 0; i < ALOG_ARRAY_LEN(cli_commands); i++)
		if (strcmp(cli_commands[i].name, name) == 0)
			return &cli_commands[i];
	return NULL;
}

static void cli_usage(FILE *out)
{
	fputs("usage: alog COMMAND DIR [options]\n"
	      "\n"
	      "Look into an alog log directory.\n"
	      "\n"
	      "commands:\n",
	      out);
	for (size_t i = 0; i < ALOG_ARRAY_LEN(cli_commands); i++)
		fprintf(out, "  %-8s%s\n", cli_commands[i].name,
			cli_commands[i].summary);
	fputs("\n"
	      "Run 'alog COMMAND --help' for a command's options.\n"
	      "Exit status: 0 ok, 1 usage error, 2 operational error,\n"
	      "3 damage found.\n",
	      out);
}

static void cli_command_usage(FILE *out, const struct cli_command *cmd,
			      bool full)
{
	fprintf(out, "usage: alog %s\n", cmd->synopsis);
	if (full)
		fprintf(out, "\n%s", cmd->help);
	else
		fprintf(out, "Try 'alog %s --help' for more.\n", cmd->name);
}

static int cli_usage_error(const struct cli_command *cmd)
{
	cli_command_usage(stderr, cmd, false);
	return CLI_EXIT_USAGE;
}

static const struct cli_option *cli_option_by_long(const char *name, size_t len)
{
	for (size_t i = 0; i < ALOG_ARRAY_LEN(cli_options); i++)
		if (strlen(cli_options[i].long_name) == len &&
		    memcmp(cli_options[i].long_name, name, len) == 0)
			return &cli_options[i];
	return NULL;
}

static const struct cli_option *cli_option_by_short(char name)
{
	for (size_t i = 0; i < ALOG_ARRAY_LEN(cli_options); i++)
		if (cli_options[i].short_name != 0 &&
		    cli_options[i].short_name == name)
			return &cli_options[i];
	return NULL;
}

static int cli_option_value(const struct cli_command *cmd,
			    const struct cli_option *opt, const char *value,
			    struct cli_args *args)
{
	uint64_t *dst = NULL;

	switch (opt->id) {
	case CLI_OPT_FROM:
		dst = &args->from_offset;
		break;
	case CLI_OPT_COUNT:
		dst = &args->count_records;
		break;
	case CLI_OPT_LINES:
		dst = &args->tail_records;
		break;
	case CLI_OPT_COMMIT:
		args->commit = value;
		return CLI_EXIT_OK;
	case CLI_OPT_DURABILITY:
		if (strcmp(value, "fsync") == 0) {
			args->durability = ALOG_DURABLE_FSYNC;
		} else if (strcmp(value, "write") == 0) {
			args->durability = ALOG_DURABLE_WRITE;
		} else {
			fprintf(stderr,
				"alog %s: --durability: '%s' is not fsync or write\n",
				cmd->name, value);
			return CLI_EXIT_USAGE;
		}
		return CLI_EXIT_OK;
	default:
		return CLI_EXIT_OK;
	}
	if (!cli_parse_u64(value, dst)) {
		fprintf(stderr,
			"alog %s: --%s: '%s' is not a number (expected decimal digits)\n",
			cmd->name, opt->long_name, value);
		return CLI_EXIT_USAGE;
	}
	/* UINT64_MAX is ALOG_OFFSET_ANY, never a record's offset. */
	if (opt->id == CLI_OPT_FROM && *dst == ALOG_OFFSET_ANY) {
		fprintf(stderr, "alog %s: --from: offset %s is too large\n",
			cmd->name, value);
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

/*
 * Options may come before or after DIR; "--name=value", "--name value",
 * "-n5" and "-n 5" are accepted, "--" ends the options.
 */
static int cli_parse_args(const struct cli_command *cmd, int argc, char **argv,
			  struct cli_args *args)
{
	bool options_done = false;

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value = NULL;
		const struct cli_option *opt;
		int ex;

		if (options_done || arg[0] != '-' || arg[1] == '\0') {
			if (args->dir != NULL) {
				fprintf(stderr,
					"alog %s: unexpected argument '%s'\n",
					cmd->name, arg);
				return cli_usage_error(cmd);
			}
			args->dir = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			options_done = true;
			continue;
		}
		if (arg[1] == '-') {
			const char *eq = strchr(arg + 2, '=');
			size_t len = eq != NULL ? (size_t)(eq - (arg + 2)) :
						  strlen(arg + 2);

			opt = cli_option_by_long(arg + 2, len);
			if (opt != NULL && eq != NULL) {
				if (!opt->has_value) {
					fprintf(stderr,
						"alog %s: option --%s takes no value\n",
						cmd->name, opt->long_name);
					return cli_usage_error(cmd);
				}
				value = eq + 1;
			}
		} else {
			opt = cli_option_by_short(arg[1]);
			if (opt != NULL && arg[2] != '\0') {
				if (!opt->has_value)
					opt = NULL;
				else
					value = arg + 2;
			}
		}
		if (opt == NULL || !(cmd->options & opt->id)) {
			fprintf(stderr, "alog %s: unknown option '%s'\n",
				cmd->name, arg);
			return cli_usage_error(cmd);
		}
		if (opt->id == CLI_OPT_HELP) {
			args->seen |= CLI_OPT_HELP;
			return CLI_EXIT_OK;
		}
		if (opt->has_value && value == NULL) {
			if (i + 1 >= argc) {
				fprintf(stderr,
					"alog %s: option '%s' needs a value\n",
					cmd->name, arg);
				return cli_usage_error(cmd);
			}
			value = argv[++i];
		}
		if (args->seen & opt->id) {
			fprintf(stderr, "alog %s: option --%s given twice\n",
				cmd->name, opt->long_name);
			return cli_usage_error(cmd);
		}
		args->seen |= opt->id;
		if (opt->has_value) {
			ex = cli_option_value(cmd, opt, value, args);
			if (ex != CLI_EXIT_OK)
				return cli_usage_error(cmd);
		}
	}
	if ((args->seen & CLI_OPT_FROM) && (args->seen & CLI_OPT_LINES)) {
		fprintf(stderr, "alog %s: give --from or -n, not both\n",
			cmd->name);
		return cli_usage_error(cmd);
	}
	if (args->dir == NULL) {
		fprintf(stderr, "alog %s: missing DIR\n", cmd->name);
		return cli_usage_error(cmd);
	}
	if (args->dir[0] == '\0') {
		fprintf(stderr, "alog %s: DIR is empty\n", cmd->name);
		return cli_usage_error(cmd);
	}
	return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
	const struct cli_command *cmd;
	struct cli_args args = { .dir = NULL };
	int ex;

	if (argc < 2) {
		cli_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		cli_usage(stdout);
		return cli_stdout_finish(CLI_EXIT_OK);
	}
	if (strcmp(argv[1], "help") == 0) {
		if (argc == 2) {
			cli_usage(stdout);
			return cli_stdout_finish(CLI_EXIT_OK);
		}
		cmd = cli_command_find(argv[2]);
		if (cmd == NULL || argc > 3) {
			cli_usage(stderr);
			return CLI_EXIT_USAGE;
		}
		cli_command_usage(stdout, cmd, true);
		return cli_stdout_finish(CLI_EXIT_OK);
	}
	cmd = cli_command_find(argv[1]);
	if (cmd == NULL) {
		fprintf(stderr, "alog: unknown command '%s'\n\n", argv[1]);
		cli_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	ex = cli_parse_args(cmd, argc - 1, argv + 1, &args);
	if (ex != CLI_EXIT_OK)
		return ex;
	if (args.seen & CLI_OPT_HELP) {
		cli_command_usage(stdout, cmd, true);
		return cli_stdout_finish(CLI_EXIT_OK);
	}
	return cmd->run(&args);
}
