/*
 * writer_gen.c - append realistic event records to a log, as an edge
 * would, for the writer's tests, demo and benchmark.
 *
 *   writer_gen DIR COUNT [--seed N] [--sites N] [--visitors N]
 *              [--rate EVENTS_PER_S] [--bad-every N] [--age-days D]
 *              [--batch N] [--first-offset N] [--active N]
 *              [--span-hours H] [--segment-mb N] [--dup-at N] [--quiet]
 *
 * Events are page views (most), custom events, conversions with revenue,
 * funnel steps and engagement, from a pool of visitors on a few sites
 * (uniformly; or with --active N, N visitors at a time who each send 1..15
 * events close together and leave, as real traffic does),
 * with real user agents, referrers (search, social, other sites, none),
 * UTM tags on some URLs and countries. --bad-every N makes every Nth
 * record one the writer must dead-letter (alternately: bytes that are not
 * an event record, and a record whose properties PostgreSQL's jsonb
 * refuses). --age-days shifts receive times into the past. Prints the
 * number of good and bad records appended.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alog_common.h"
#include "alog_event.h"
#include "alog_log.h"

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* splitmix64: reproducible for a seed */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#define PICK(a) (a[rnd() % (sizeof(a) / sizeof(a[0]))])

/* Browser versions vary by visitor (%u: major, build): about 2,000
 * distinct agents, as a real day of traffic has, not 10. */
static const char *const agents[] = {
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%u.0.%u.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.%u Safari/605.1.%u",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_%u like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E%u Safari/604.1",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%u.0.%u.43 Mobile Safari/537.36",
	"Mozilla/5.0 (X11; Linux x86_64; rv:%u.0) Gecko/20100101 Firefox/%u.0",
	"Mozilla/5.0 (iPad; CPU OS 16_%u like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E%u Safari/604.1",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%u.0.0.0 Safari/537.36 Edg/119.0.%u.97",
	"Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%u.0.%u.0 Safari/537.36",
	"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:%u.0) Gecko/20100101 Firefox/%u.0",
};

static const char *const paths[] = {
	"/", "/", "/", "/pricing", "/blog/", "/blog/durable-logs",
	"/blog/privacy-first-analytics", "/docs/getting-started",
	"/docs/api", "/about", "/contact", "/signup", "/checkout",
};

static const char *const referrers[] = {
	"", "", "", "https://www.google.com/", "https://www.google.co.uk/search?q=alog",
	"https://duckduckgo.com/", "https://t.co/abc123", "https://m.facebook.com/",
	"https://news.ycombinator.com/item?id=1", "https://blog.example.org/links",
	"https://www.reddit.com/r/selfhosted/", "https://www.bing.com/search?q=x",
};

static const char *const utms[] = {
	"", "", "", "", "?utm_source=newsletter&utm_medium=email&utm_campaign=launch",
	"?utm_source=google&utm_medium=cpc&utm_campaign=brand&gclid=xyz",
	"?utm_source=twitter&utm_medium=social", "?ref=producthunt",
};

static const char *const countries[] = { "US", "DE", "GB", "FR", "IN",
					 "BR", "JP", "NL", "" };
static const char *const events[] = { "signup", "download", "Outbound Link: Click",
				      "video_play", "search" };

static struct alog_str S(const char *s)
{
	struct alog_str v = { s, s ? strlen(s) : 0 };

	return v;
}

int main(int argc, char **argv)
{
	struct alog_log_options opts;
	struct alog_log *log;
	uint64_t count, seed = 1, sites = 3, visitors = 0, rate = 0;
	uint64_t bad_every = 0, age_days = 0, batch = 256, good = 0, bad = 0;
	uint64_t first_offset = 0, active = 0, next_visitor = 0, span_hours = 0;
	uint64_t span_start = 0, segment_mb = 0, dup_at = 0;
	uint8_t last_id[16] = { 0 };
	uint64_t last_ms = 0;
	static uint64_t slot_visitor[65536], slot_left[65536];
	uint64_t i, t0;
	bool quiet = false;
	int err, a;
	static uint8_t bufs[1024][ALOG_EVENT_BYTES_MAX];
	struct iovec iov[1024];

	if (argc < 3) {
		fprintf(stderr, "usage: writer_gen DIR COUNT [--seed N] "
				"[--sites N] [--visitors N] [--rate N] "
				"[--bad-every N] [--age-days D] [--batch N] "
				"[--quiet]\n");
		return 2;
	}
	count = strtoull(argv[2], NULL, 10);
	for (a = 3; a < argc; a++) {
		uint64_t *dst = NULL;

		if (!strcmp(argv[a], "--quiet")) {
			quiet = true;
			continue;
		}
		if (!strcmp(argv[a], "--seed")) dst = &seed;
		else if (!strcmp(argv[a], "--sites")) dst = &sites;
		else if (!strcmp(argv[a], "--visitors")) dst = &visitors;
		else if (!strcmp(argv[a], "--rate")) dst = &rate;
		else if (!strcmp(argv[a], "--bad-every")) dst = &bad_every;
		else if (!strcmp(argv[a], "--age-days")) dst = &age_days;
		else if (!strcmp(argv[a], "--batch")) dst = &batch;
		else if (!strcmp(argv[a], "--first-offset")) dst = &first_offset;
		else if (!strcmp(argv[a], "--active")) dst = &active;
		else if (!strcmp(argv[a], "--span-hours")) dst = &span_hours;
		else if (!strcmp(argv[a], "--segment-mb")) dst = &segment_mb;
		else if (!strcmp(argv[a], "--dup-at")) dst = &dup_at;
		if (!dst || a + 1 >= argc) {
			fprintf(stderr, "writer_gen: bad option %s\n", argv[a]);
			return 2;
		}
		*dst = strtoull(argv[++a], NULL, 10);
	}
	if (!visitors)
		visitors = count / 8 + 1;
	if (!sites || batch < 1 || batch > 1024 || active > 65536) {
		fprintf(stderr, "writer_gen: --sites >= 1, --batch 1..1024, "
				"--active 0..65536\n");
		return 2;
	}
	rng_state = seed;

	alog_log_options_init(&opts);
	opts.create = true;
	opts.first_offset = first_offset;
	if (segment_mb) {
		opts.segment_bytes_max = segment_mb << 20;
		opts.record_bytes_max = 64 * 1024; /* events are <= 16 KiB */
	}
	log = alog_log_open(argv[1], &opts, &err);
	if (!log) {
		fprintf(stderr, "writer_gen: %s: %s\n", argv[1],
			alog_strerror(err));
		return 1;
	}
	t0 = alog_mono_ns();
	for (i = 0; i < count;) {
		unsigned n = 0;

		for (; n < batch && i < count; n++, i++) {
			struct alog_event e;
			char url[512], site[48], host[64], props[128], ua[256];
			uint64_t v;
			uint64_t id_rand = rnd();
			size_t len;
			unsigned kind_pick = (unsigned)(rnd() % 100);

			if (active) {
				/* Visitors come, send a few events close
				 * together, and leave. */
				uint64_t slot = rnd() % active;

				if (!slot_left[slot]) {
					slot_visitor[slot] = next_visitor++;
					slot_left[slot] = 1 + rnd() % 15;
				}
				slot_left[slot]--;
				v = slot_visitor[slot];
			} else {
				v = rnd() % visitors;
			}
			memset(&e, 0, sizeof(e));
			if (bad_every && (i + 1) % bad_every == 0) {
				if ((i / bad_every) % 2 == 0) {
					/* Not an event record at all. */
					memcpy(bufs[n], "not an event record", 19);
					iov[n].iov_base = bufs[n];
					iov[n].iov_len = 19;
					bad++;
					continue;
				}
				/* Valid record; jsonb refuses \u0000. */
				snprintf(props, sizeof(props),
					 "{\"note\":\"nul \\u0000 here\"}");
				e.props = S(props);
				bad++;
			} else {
				good++;
			}
			snprintf(site, sizeof(site), "site%" PRIu64 ".example",
				 v % sites);
			snprintf(host, sizeof(host), "www.site%" PRIu64 ".example",
				 v % sites);
			snprintf(url, sizeof(url), "https://%s%s%s", host,
				 PICK(paths), rnd() % 4 == 0 ? PICK(utms) : "");
			e.source = ALOG_SOURCE_PLAUSIBLE;
			e.received_ms = alog_now_ms() - age_days * 86400000ull;
			if (span_hours) {
				/* A backlog: receive times spread evenly over
				 * the last span_hours, in log order. */
				if (!span_start)
					span_start = e.received_ms -
						     span_hours * 3600000ull;
				e.received_ms = span_start +
						i * span_hours * 3600000ull /
							(count ? count : 1);
			}
			/* UUIDv7: 48-bit ms time, version, random. */
			{
				uint64_t be = 0;
				int k;

				for (k = 0; k < 6; k++)
					e.id[k] = (uint8_t)(e.received_ms >>
							    (40 - 8 * k));
				e.id[6] = (uint8_t)(0x70 | (id_rand & 0x0f));
				e.id[7] = (uint8_t)(id_rand >> 8);
				e.id[8] = (uint8_t)(0x80 | ((id_rand >> 16) & 0x3f));
				be = rnd();
				memcpy(e.id + 9, &be, 7);
				e.id[15] ^= (uint8_t)i;
			}
			/* --dup-at N: record N repeats record N-1's id and
			 * time, as a broken edge might. */
			if (dup_at && i == dup_at) {
				memcpy(e.id, last_id, 16);
				e.received_ms = last_ms;
			}
			memcpy(last_id, e.id, 16);
			last_ms = e.received_ms;
			/* Visitor hash: stable per visitor and seed. */
			e.visitor = (v + 1) * 0x9e3779b97f4a7c15ull ^
				    (seed << 32);
			{
				const char *cc = PICK(countries);

				if (*cc)
					memcpy(e.country, cc, 2);
			}
			e.site = S(site);
			e.url = S(url);
			e.referrer = S(PICK(referrers));
			{
				unsigned variant = (unsigned)(v % 2000);

				/* The format is one of the table's. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
				snprintf(ua, sizeof(ua), agents[v % 10],
					 100 + variant % 31, variant);
#pragma GCC diagnostic pop
				e.user_agent = S(ua);
			}
			e.language = S("en-US");
			e.has_screen = true;
			e.screen_w = 1920;
			e.screen_h = 1080;
			if (kind_pick < 80) {
				e.kind = ALOG_KIND_PAGEVIEW;
				e.name = S("pageview");
			} else if (kind_pick < 90) {
				e.kind = ALOG_KIND_EVENT;
				e.name = S(PICK(events));
				if (!e.props.len) {
					snprintf(props, sizeof(props),
						 "{\"plan\":\"pro\",\"n\":%u}",
						 (unsigned)(rnd() % 10));
					e.props = S(props);
				}
			} else if (kind_pick < 95) {
				e.kind = ALOG_KIND_CONVERSION;
				e.name = S("purchase");
				e.has_value = true;
				e.value_micros = (int64_t)(rnd() % 100000) * 1000;
				memcpy(e.currency, "EUR", 3);
			} else if (kind_pick < 98) {
				e.kind = ALOG_KIND_FUNNEL;
				e.name = S("funnel");
				e.funnel_id = S("onboarding");
				e.step_id = S("step");
				e.has_step_order = true;
				e.step_order = (uint32_t)(rnd() % 4 + 1);
			} else {
				e.kind = ALOG_KIND_ENGAGEMENT;
				e.name = S("engagement");
				e.flags = ALOG_EVENT_F_NONINTERACTIVE;
			}
			if (!e.has_value)
				memcpy(e.currency, "   ", 3);
			if (alog_event_encode(&e, bufs[n], sizeof(bufs[n]),
					      &len) < 0) {
				fprintf(stderr, "writer_gen: encode failed\n");
				return 1;
			}
			iov[n].iov_base = bufs[n];
			iov[n].iov_len = len;
		}
		/* One record per append unit: the writer sees many records
		 * per log batch either way. */
		err = alog_log_append_wait(log, iov, n, NULL, NULL);
		if (err < 0) {
			fprintf(stderr, "writer_gen: append: %s\n",
				alog_strerror(err));
			return 1;
		}
		if (rate) {
			uint64_t due = t0 + i * 1000000000ull / rate;
			uint64_t now = alog_mono_ns();

			if (due > now)
				usleep((useconds_t)((due - now) / 1000));
		}
	}
	alog_log_close(log);
	if (!quiet)
		printf("good %" PRIu64 " bad %" PRIu64 "\n", good, bad);
	return 0;
}
