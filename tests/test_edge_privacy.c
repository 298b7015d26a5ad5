/*
 * test_edge_privacy.c - unit tests for edge/edge_privacy.h: CIDRs and
 * X-Forwarded-For, the salt file and visitor hash, opt-out, bots, UUIDv7,
 * geo lookups on MaxMind DBs built at test time, and the rate limiter.
 *
 * usage: test_edge_privacy MAKE_TEST_GEO.pl [IPLDB.mmdb]
 * The perl script (Debian libmaxmind-db-writer-perl) builds the geo test
 * databases in a scratch directory; the optional second argument is a real
 * @ip-location-db country database, skipped when the file is absent.
 */
#include "edge_privacy.h"

#include "alog_common.h"
#include "test_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/evp.h>

#define DAY_MS 86400000ull
/* 2024-03-10 12:00 UTC: mid-day, far from midnight. */
#define T0 (19792 * DAY_MS + 12 * 3600000ull)

static struct edge_addr addr_of(const char *s)
{
	struct edge_cidr c;

	REQUIRE(edge_cidr_parse(s, &c) == 0);
	REQUIRE(c.prefix_bits == 128);
	return c.net;
}

static bool addr_eq(const struct edge_addr *a, const char *s)
{
	struct edge_addr b = addr_of(s);

	return memcmp(a->b, b.b, 16) == 0;
}

/* ---- CIDR and client address ------------------------------------------ */

static void test_cidr(void)
{
	static const char *const bad[] = { "",
					   "/8",
					   "10.0.0.0/",
					   "10.0.0.0/33",
					   "::/129",
					   "10.0.0.0/8x",
					   "10.0.0.0/-1",
					   "abc",
					   "10.0.0.0 /8",
					   " 10.0.0.0",
					   "10.0.0",
					   "1.2.3.4.5",
					   "::1/1234",
					   "fe80::1%eth0",
					   "[::1]",
					   "1.2.3.4:80",
					   "10.0.0.0/8/8" };
	struct edge_cidr c;

	CHECK_EQ(edge_cidr_parse("10.0.0.0/8", &c), 0);
	CHECK_EQ(c.prefix_bits, 104);
	CHECK(addr_eq(&c.net, "::ffff:10.0.0.0"));
	CHECK_EQ(edge_cidr_parse("10.1.2.3/8", &c), 0); /* host bits masked */
	CHECK(addr_eq(&c.net, "10.0.0.0"));
	CHECK_EQ(edge_cidr_parse("127.0.0.1", &c), 0);
	CHECK_EQ(c.prefix_bits, 128);
	CHECK(addr_eq(&c.net, "::ffff:127.0.0.1"));
	CHECK_EQ(edge_cidr_parse("::1", &c), 0);
	CHECK_EQ(c.prefix_bits, 128);
	CHECK_EQ(edge_cidr_parse("0.0.0.0/0", &c), 0);
	CHECK_EQ(c.prefix_bits, 96); /* every IPv4 address, no IPv6 */
	CHECK_EQ(edge_cidr_parse("::/0", &c), 0);
	CHECK_EQ(c.prefix_bits, 0);
	CHECK_EQ(edge_cidr_parse("2001:db8::ff/33", &c), 0);
	CHECK_EQ(c.prefix_bits, 33);
	CHECK(addr_eq(&c.net, "2001:db8::"));
	CHECK_EQ(edge_cidr_parse("192.168.1.129/25", &c), 0);
	CHECK(addr_eq(&c.net, "192.168.1.128"));
	for (size_t i = 0; i < ALOG_ARRAY_LEN(bad); i++) {
		int rc = edge_cidr_parse(bad[i], &c);

		if (rc != -EINVAL)
			fprintf(stderr, "accepted bad CIDR \"%s\"\n", bad[i]);
		CHECK_EQ(rc, -EINVAL);
	}
	CHECK_EQ(edge_cidr_parse(NULL, &c), -EINVAL);
}

static void test_sockaddr(void)
{
	struct sockaddr_in in = { .sin_family = AF_INET };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct edge_addr a;

	inet_pton(AF_INET, "198.51.100.4", &in.sin_addr);
	CHECK_EQ(edge_addr_from_sockaddr((struct sockaddr *)&in, &a), 0);
	CHECK(addr_eq(&a, "::ffff:198.51.100.4"));
	inet_pton(AF_INET6, "2001:db8::4", &in6.sin6_addr);
	CHECK_EQ(edge_addr_from_sockaddr((struct sockaddr *)&in6, &a), 0);
	CHECK(addr_eq(&a, "2001:db8::4"));
	CHECK_EQ(edge_addr_from_sockaddr((struct sockaddr *)&un, &a),
		 -EAFNOSUPPORT);
}

static struct edge_cidr trusted[3];

/* The client for peer and headers (either may be NULL). */
static struct edge_addr client(const char *peer, const char *xff,
			       const char *real_ip)
{
	struct edge_addr p = addr_of(peer), out;

	memset(&out, 0xaa, sizeof(out));
	CHECK_EQ(edge_client_addr(&p, xff, xff ? strlen(xff) : 0, real_ip,
				  real_ip ? strlen(real_ip) : 0, trusted,
				  ALOG_ARRAY_LEN(trusted), &out),
		 0);
	return out;
}

#define CLIENT_IS(peer, xff, real_ip, want)                                \
	do {                                                               \
		struct edge_addr _got = client(peer, xff, real_ip);        \
		char _txt[INET6_ADDRSTRLEN];                               \
		bool _ok = addr_eq(&_got, want);                           \
		CHECK(_ok);                                                \
		if (!_ok)                                                  \
			fprintf(stderr, "  xff \"%s\": got %s, want %s\n", \
				xff ? xff : "(null)",                      \
				inet_ntop(AF_INET6, _got.b, _txt,          \
					  sizeof(_txt)),                   \
				want);                                     \
	} while (0)

static void test_client_addr(void)
{
	const char *proxy = "10.0.0.5", *outsider = "198.51.100.9";
	char *big;
	size_t n = 0;

	REQUIRE(edge_cidr_parse("127.0.0.1/32", &trusted[0]) == 0);
	REQUIRE(edge_cidr_parse("::1/128", &trusted[1]) == 0);
	REQUIRE(edge_cidr_parse("10.0.0.0/8", &trusted[2]) == 0);

	/* Untrusted peers: headers are ignored. */
	CLIENT_IS(outsider, "203.0.113.7", NULL, outsider);
	CLIENT_IS(outsider, NULL, "203.0.113.7", outsider);
	CLIENT_IS(outsider, NULL, NULL, outsider);

	/* Trusted chain, right to left, skipping trusted hops. */
	CLIENT_IS(proxy, "203.0.113.7", NULL, "203.0.113.7");
	CLIENT_IS(proxy, "203.0.113.7, 10.0.0.2", NULL, "203.0.113.7");
	CLIENT_IS(proxy, "198.51.100.1, 203.0.113.7,10.0.0.2 ,\t127.0.0.1",
		  NULL, "203.0.113.7");
	CLIENT_IS("127.0.0.1", "203.0.113.7", NULL, "203.0.113.7");
	CLIENT_IS("::ffff:127.0.0.1", "203.0.113.7", NULL, "203.0.113.7");
	CLIENT_IS("::1", "203.0.113.7", NULL, "203.0.113.7");
	/* Every hop trusted: the left-most is the origin. */
	CLIENT_IS(proxy, "10.0.0.3, 10.0.0.2", NULL, "10.0.0.3");
	/* A spoofed left part is not believed past an untrusted hop. */
	CLIENT_IS(proxy, "1.1.1.1, 203.0.113.7", NULL, "203.0.113.7");

	/* IPv6 and ports. */
	CLIENT_IS(proxy, "2001:db8::1", NULL, "2001:db8::1");
	CLIENT_IS(proxy, "[2001:db8::1]:443", NULL, "2001:db8::1");
	CLIENT_IS(proxy, "[2001:db8::1]", NULL, "2001:db8::1");
	CLIENT_IS(proxy, "203.0.113.7:8080, [::1]:80", NULL, "203.0.113.7");
	CLIENT_IS("::1", "2001:db8::2, ::1", NULL, "2001:db8::2");

	/* Garbage anywhere we look: the peer. */
	CLIENT_IS(proxy, "203.0.113.7, nonsense", NULL, proxy);
	CLIENT_IS(proxy, "nonsense, 203.0.113.7", NULL, "203.0.113.7");
	CLIENT_IS(proxy, "203.0.113.7,,10.0.0.2", NULL, proxy);
	CLIENT_IS(proxy, ",", NULL, proxy);
	CLIENT_IS(proxy, "unknown", NULL, proxy);
	CLIENT_IS(proxy, "fe80::1%eth0", NULL, proxy);
	CLIENT_IS(proxy, "[203.0.113.7]:80", NULL, proxy);
	CLIENT_IS(proxy, "[2001:db8::1", NULL, proxy);
	CLIENT_IS(proxy, "[2001:db8::1]x", NULL, proxy);
	CLIENT_IS(proxy, "[2001:db8::1]:", NULL, proxy);
	CLIENT_IS(proxy, "203.0.113.7:", NULL, proxy);
	CLIENT_IS(proxy, "203.0.113.7:8o", NULL, proxy);
	CLIENT_IS(proxy, "203.0.113.7:123456", NULL, proxy);
	CLIENT_IS(proxy, "203.0.113.7 10.0.0.2", NULL, proxy);
	CLIENT_IS(proxy, "0x7f.1", NULL, proxy);
	CLIENT_IS(proxy, "1111:2222:3333:4444:5555:6666:7777:8888:9999", NULL,
		  proxy);

	/* X-Real-IP: only without X-Forwarded-For. */
	CLIENT_IS(proxy, NULL, "203.0.113.9", "203.0.113.9");
	CLIENT_IS(proxy, NULL, " 2001:db8::9 ", "2001:db8::9");
	CLIENT_IS(proxy, "", "203.0.113.9", "203.0.113.9");
	CLIENT_IS(proxy, "  ", "203.0.113.9", "203.0.113.9");
	CLIENT_IS(proxy, "203.0.113.7", "203.0.113.9", "203.0.113.7");
	CLIENT_IS(proxy, NULL, "garbage", proxy);
	CLIENT_IS(proxy, NULL, "", proxy);

	/* 8 KiB of trusted hops: linear walk, left-most wins. */
	big = malloc(8192);
	REQUIRE(big);
	while (n + 12 < 8192)
		n += (size_t)sprintf(big + n, "%s10.0.0.%d", n ? ", " : "",
				     (int)(n % 200) + 1);
	CLIENT_IS(proxy, big, NULL, "10.0.0.1");
	memcpy(big, "203.0.113.1,", 12);
	CLIENT_IS(proxy, big, NULL, proxy); /* 2nd hop is now ".0.0.x" */
	free(big);
}

/* ---- Salts and visitor hash ------------------------------------------- */

static uint64_t vhash(struct edge_salts *s, uint64_t now_ms, const char *site,
		      const char *addr, const char *ua)
{
	struct edge_addr a = addr_of(addr);
	uint64_t h = 0;

	CHECK_EQ(edge_visitor_hash(s, now_ms, site, strlen(site), &a, ua,
				   strlen(ua), &h),
		 0);
	return h;
}

/* The visitor hash computed apart: HMAC-SHA256(salt, site 0 addr16 0 ua),
 * first 8 bytes little-endian (docs/privacy.md). */
static uint64_t vhash_oracle(const uint8_t salt[32], const char *site,
			     const char *addr, const char *ua)
{
	struct edge_addr a = addr_of(addr);
	uint8_t msg[512], md[32];
	size_t n = 0, md_len = 0;

	memcpy(msg + n, site, strlen(site));
	n += strlen(site);
	msg[n++] = 0;
	memcpy(msg + n, a.b, 16);
	n += 16;
	msg[n++] = 0;
	memcpy(msg + n, ua, strlen(ua));
	n += strlen(ua);
	REQUIRE(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, salt, 32, msg, n,
			  md, sizeof(md), &md_len) != NULL);
	REQUIRE(md_len == 32);
	return alog_get_u64(md);
}

static size_t read_file(const char *path, uint8_t *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, buf, cap);
	close(fd);
	return n > 0 ? (size_t)n : 0;
}

static void write_file(const char *path, const void *buf, size_t len,
		       mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	REQUIRE(fd >= 0);
	REQUIRE(write(fd, buf, len) == (ssize_t)len);
	REQUIRE(fchmod(fd, mode) == 0);
	close(fd);
}

/* The salt file as docs/edge-config.md describes it, for day. */
static void check_salt_file(const char *path, uint64_t day,
			    uint8_t salt_out[32])
{
	uint8_t buf[128], md[32];
	unsigned md_len = 0;
	struct stat st;
	size_t n = read_file(path, buf, sizeof(buf));

	CHECK_EQ(n, 64);
	REQUIRE(stat(path, &st) == 0);
	CHECK_EQ(st.st_mode & 07777, 0600);
	CHECK(memcmp(buf, "ALOGSALT", 8) == 0);
	CHECK_EQ(alog_get_u32(buf + 8), 1);
	CHECK_EQ(alog_get_u32(buf + 12), 0);
	CHECK_EQ(alog_get_u64(buf + 16), day);
	REQUIRE(EVP_Digest(buf, 56, md, &md_len, EVP_sha256(), NULL) == 1);
	CHECK(memcmp(md, buf + 56, 8) == 0);
	if (salt_out)
		memcpy(salt_out, buf + 24, 32);
}

static bool contains(const uint8_t *hay, size_t n, const void *needle,
		     size_t len)
{
	return memmem(hay, n, needle, len) != NULL;
}

static void test_visitor_hash(void)
{
	const char *ua = "Mozilla/5.0 (X11; Linux x86_64) Firefox/125.0";
	const char *ip4 = "203.0.113.77", *ip6 = "2001:db8::77";
	uint64_t day = T0 / DAY_MS, h, h2;
	struct edge_salts *s, *s2;
	struct edge_addr a4 = addr_of(ip4), a6 = addr_of(ip6);
	uint8_t salt1[32], salt2[32], buf[128];
	char *dir = t_tmpdir("salt"), path[4200], sub[4300];
	struct stat st;
	size_t n;
	int err = 1, werr = 1;

	snprintf(path, sizeof(path), "%s/run/alog/edge-salt", dir);
	snprintf(sub, sizeof(sub), "%s/run/alog", dir);

	/* First open: parent directories made 0700, file made 0600. */
	s = edge_salts_open(path, T0, &err);
	REQUIRE(s);
	CHECK_EQ(err, 0);
	CHECK_EQ(edge_salts_file_status(s, &werr), EDGE_SALTS_FILE_CREATED);
	CHECK_EQ(werr, 0);
	REQUIRE(stat(sub, &st) == 0);
	CHECK_EQ(st.st_mode & 07777, 0700);
	check_salt_file(path, day, salt1);

	/* Stable within a day; different per site, UA and address. */
	h = vhash(s, T0, "site-a", ip4, ua);
	CHECK(h != 0);
	CHECK_EQ(vhash(s, T0 + 3600000, "site-a", ip4, ua), h);
	CHECK_EQ(vhash(s, day * DAY_MS, "site-a", ip4, ua), h);
	CHECK_EQ(vhash(s, day * DAY_MS + DAY_MS - 1, "site-a", ip4, ua), h);
	CHECK(vhash(s, T0, "site-b", ip4, ua) != h);
	CHECK(vhash(s, T0, "site-a", "203.0.113.78", ua) != h);
	CHECK(vhash(s, T0, "site-a", ip6, ua) != h);
	CHECK(vhash(s, T0, "site-a", ip4, "curl/8.0") != h);
	/* The separators make the parts unambiguous. */
	CHECK(vhash(s, T0, "site-a", ip4, "") !=
	      vhash(s, T0, "site-", ip4, ""));
	/* The salt in the file keys the hash; each hash starts afresh
	 * (a thread reuses its keyed context, reset per hash). */
	CHECK_EQ(h, vhash_oracle(salt1, "site-a", ip4, ua));
	CHECK_EQ(vhash(s, T0, "site-b", ip6, "curl/8.0"),
		 vhash_oracle(salt1, "site-b", ip6, "curl/8.0"));
	CHECK_EQ(vhash(s, T0, "site-a", ip4, ua), h);
	/* The client key is per address and not a visitor hash. */
	CHECK_EQ(edge_client_key(s, T0, &a4), edge_client_key(s, T0 + 1, &a4));
	CHECK(edge_client_key(s, T0, &a4) != edge_client_key(s, T0, &a6));
	CHECK(edge_client_key(s, T0, &a4) != h);

	/* Restart the same day: the same salt is read back. */
	edge_salts_close(s);
	s = edge_salts_open(path, T0 + 60000, &err);
	REQUIRE(s);
	CHECK_EQ(edge_salts_file_status(s, NULL), EDGE_SALTS_FILE_LOADED);
	CHECK_EQ(vhash(s, T0 + 60000, "site-a", ip4, ua), h);

	/* Privacy: the file holds no trace of the addresses hashed. */
	n = read_file(path, buf, sizeof(buf));
	CHECK(!contains(buf, n, a4.b + 12, 4));
	CHECK(!contains(buf, n, a4.b, 16));
	CHECK(!contains(buf, n, a6.b, 16));
	CHECK(!contains(buf, n, ip4, strlen(ip4)));
	CHECK(!contains(buf, n, ip6, strlen(ip6)));

	/* Next day: rotated, the file holds the new salt only. */
	h2 = vhash(s, T0 + DAY_MS, "site-a", ip4, ua);
	CHECK(h2 != h);
	CHECK_EQ(edge_salts_file_status(s, &werr), EDGE_SALTS_FILE_ROTATED);
	CHECK_EQ(werr, 0);
	check_salt_file(path, day + 1, salt2);
	/* This thread's keyed context follows the rotation. */
	CHECK_EQ(h2, vhash_oracle(salt2, "site-a", ip4, ua));
	CHECK(memcmp(salt1, salt2, 32) != 0);
	n = read_file(path, buf, sizeof(buf));
	CHECK(!contains(buf, n, salt1, 32));
	CHECK(!contains(buf, n, salt1, 8));
	CHECK(access(sub, F_OK) == 0);
	snprintf(sub, sizeof(sub), "%s.tmp", path);
	CHECK(access(sub, F_OK) != 0); /* no temp left behind */
	/* A clock stepping back does not bring yesterday's salt back. */
	CHECK_EQ(vhash(s, T0, "site-a", ip4, ua), h2);
	edge_salts_close(s);

	/* Same-day restart after rotation keeps the new identities. */
	s = edge_salts_open(path, T0 + DAY_MS + 5, &err);
	REQUIRE(s);
	CHECK_EQ(edge_salts_file_status(s, NULL), EDGE_SALTS_FILE_LOADED);
	CHECK_EQ(vhash(s, T0 + DAY_MS, "site-a", ip4, ua), h2);
	edge_salts_close(s);

	/* A file from an earlier day is replaced. */
	s = edge_salts_open(path, T0 + 2 * DAY_MS, &err);
	REQUIRE(s);
	CHECK_EQ(edge_salts_file_status(s, NULL), EDGE_SALTS_FILE_REPLACED);
	check_salt_file(path, day + 2, NULL);
	CHECK(vhash(s, T0 + 2 * DAY_MS, "site-a", ip4, ua) != h2);
	edge_salts_close(s);

	/* Damaged files: garbage, a flipped salt bit, wrong size, too open
	 * permissions. Each is replaced by a fresh, valid file. */
	for (int kind = 0; kind < 4; kind++) {
		uint8_t good[64];
		mode_t mode = 0600;

		REQUIRE(read_file(path, good, sizeof(good)) == 64);
		if (kind == 0) {
			memset(good, 'x', sizeof(good));
		} else if (kind == 1) {
			good[30] ^= 1;
		} else if (kind == 3) {
			mode = 0644;
		}
		write_file(path, good, kind == 2 ? 63 : 64, mode);
		s = edge_salts_open(path, T0 + 2 * DAY_MS, &err);
		REQUIRE(s);
		CHECK_EQ(edge_salts_file_status(s, NULL),
			 EDGE_SALTS_FILE_REPLACED);
		check_salt_file(path, day + 2, salt2);
		if (kind == 3) /* a salt others could read is not reused */
			CHECK(memcmp(salt2, good + 24, 32) != 0);
		edge_salts_close(s);
	}
	/* Memory only. */
	s = edge_salts_open(NULL, T0, &err);
	REQUIRE(s);
	CHECK_EQ(edge_salts_file_status(s, NULL), EDGE_SALTS_MEMORY_ONLY);
	s2 = edge_salts_open("", T0, &err);
	REQUIRE(s2);
	CHECK(vhash(s, T0, "site-a", ip4, ua) !=
	      vhash(s2, T0, "site-a", ip4, ua));
	edge_salts_close(s);
	edge_salts_close(s2);
	edge_salts_close(NULL);

	/* Unwritable location: open fails and says why. */
	snprintf(sub, sizeof(sub), "%s/file", dir);
	write_file(sub, "x", 1, 0600);
	snprintf(path, sizeof(path), "%s/file/salt", dir);
	err = 0;
	CHECK(edge_salts_open(path, T0, &err) == NULL);
	CHECK(err < 0);

	t_rmrf(dir);
	free(dir);
}

/* Threads hashing across midnight: every hash is the day's. */
struct midnight_arg {
	struct edge_salts *s;
	uint64_t ref_before, *ref_after_out;
	uint64_t *hashes;
	int n;
};

#define MIDNIGHT (19793 * DAY_MS)

static void *midnight_thread(void *p)
{
	struct midnight_arg *a = p;
	struct edge_addr addr = addr_of("203.0.113.5");

	for (int i = 0; i < a->n; i++) {
		uint64_t now = MIDNIGHT - (uint64_t)a->n / 2 + (uint64_t)i;

		if (edge_visitor_hash(a->s, now, "s", 1, &addr, "ua", 2,
				      &a->hashes[i]) != 0)
			a->hashes[i] = 0;
	}
	return NULL;
}

static void test_salts_threads(void)
{
	enum {
		THREADS = 4,
		N = 4000
	};
	struct midnight_arg args[THREADS];
	pthread_t th[THREADS];
	char *dir = t_tmpdir("salt-mt"), path[4200];
	struct edge_salts *s;
	uint64_t before, after;
	int err, bad = 0;

	snprintf(path, sizeof(path), "%s/salt", dir);
	s = edge_salts_open(path, MIDNIGHT - N, &err);
	REQUIRE(s);
	before = vhash(s, MIDNIGHT - N, "s", "203.0.113.5", "ua");
	for (int t = 0; t < THREADS; t++) {
		args[t] = (struct midnight_arg){ .s = s, .n = N };
		args[t].hashes = calloc(N, sizeof(uint64_t));
		REQUIRE(args[t].hashes);
		REQUIRE(pthread_create(&th[t], NULL, midnight_thread,
				       &args[t]) == 0);
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	after = vhash(s, MIDNIGHT, "s", "203.0.113.5", "ua");
	CHECK(before != after);
	for (int t = 0; t < THREADS; t++) {
		for (int i = 0; i < N; i++) {
			uint64_t h = args[t].hashes[i];
			bool past = i >= N / 2;

			/* Before midnight a thread may already see the new
			 * salt (another crossed first); never the reverse. */
			if (past ? h != after : (h != before && h != after))
				bad++;
		}
		free(args[t].hashes);
	}
	CHECK_EQ(bad, 0);
	check_salt_file(path, MIDNIGHT / DAY_MS, NULL);
	edge_salts_close(s);
	t_rmrf(dir);
	free(dir);
}

/* More threads than keep their own keyed context (64): the rest copy the
 * template per hash, and every thread gets the same answers. */
struct many_arg {
	struct edge_salts *s;
	uint64_t h[3];
};

static void *many_thread(void *p)
{
	struct many_arg *a = p;
	struct edge_addr addr = addr_of("198.51.100.4");

	for (int i = 0; i < 3; i++)
		if (edge_visitor_hash(a->s, T0, i == 1 ? "t" : "s", 1, &addr,
				      "ua", 2, &a->h[i]) != 0)
			a->h[i] = 0;
	return NULL;
}

static void test_salts_many_threads(void)
{
	enum { THREADS = 80 };
	static struct many_arg args[THREADS];
	pthread_t th[THREADS];
	struct edge_salts *s;
	uint64_t want_s, want_t;
	int err, bad = 0;

	s = edge_salts_open(NULL, T0, &err);
	REQUIRE(s);
	want_s = vhash(s, T0, "s", "198.51.100.4", "ua");
	want_t = vhash(s, T0, "t", "198.51.100.4", "ua");
	CHECK(want_s != want_t);
	for (int t = 0; t < THREADS; t++) {
		args[t].s = s;
		/* One at a time, so no thread's slot is a reused one. */
		REQUIRE(pthread_create(&th[t], NULL, many_thread, &args[t]) ==
			0);
		pthread_join(th[t], NULL);
	}
	for (int t = 0; t < THREADS; t++)
		if (args[t].h[0] != want_s || args[t].h[1] != want_t ||
		    args[t].h[2] != want_s)
			bad++;
	CHECK_EQ(bad, 0);
	edge_salts_close(s);
}

/* ---- Opt-out and bots ---------------------------------------------------- */

static bool OPT(const char *dnt, const char *gpc)
{
	return edge_privacy_opt_out(dnt, dnt ? strlen(dnt) : 0, gpc,
				    gpc ? strlen(gpc) : 0);
}

static void test_opt_out(void)
{
	CHECK(OPT("1", NULL));
	CHECK(OPT(" 1 ", NULL));
	CHECK(OPT(NULL, "1"));
	CHECK(OPT("0", "1"));
	CHECK(OPT("\t1", "0"));
	CHECK(!OPT(NULL, NULL));
	CHECK(!OPT("0", "0"));
	CHECK(!OPT("", ""));
	CHECK(!OPT("yes", NULL));
	CHECK(!OPT("11", NULL));
	CHECK(!OPT("1, 1", NULL));
	CHECK(!OPT("null", "?1"));
	/* Length counts, not NUL: "1" as the first byte of a longer value. */
	CHECK(!edge_privacy_opt_out("10", 2, NULL, 0));
	CHECK(edge_privacy_opt_out("10", 1, NULL, 0));
}

static void test_bots(void)
{
	static const char *const bots[] = {
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
		"Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)",
		"Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
		"Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
		"DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
		"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; +https://openai.com/gptbot)",
		"CCBot/2.0 (https://commoncrawl.org/faq/)",
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Linux; Android 7.0; Moto G (4)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
		"curl/8.5.0",
		"Wget/1.21.4",
		"python-requests/2.31.0",
		"Python-urllib/3.11",
		"Go-http-client/1.1",
		"Java/17.0.2",
		"okhttp/4.12.0",
		"libwww-perl/6.72",
		"Apache-HttpClient/4.5.14 (Java/17.0.8)",
		"Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
		"Mozilla/5.0 (X11; Linux x86_64) Selenium",
		"axios/1.6.2",
		"node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
		"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) BingPreview/1.0b",
		"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
		"Twitterbot/1.0",
		"WhatsApp/2.23.20.0",
		"Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
		"Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
		"Scrapy/2.11 (+https://scrapy.org)",
		"PostmanRuntime/7.36.0",
		"Mozilla/5.0 (X11; Linux x86_64) Playwright/1.40",
		"Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
		"ia_archiver (+http://www.alexa.com/site/help/webmasters; crawler@alexa.com)",
		"GOOGLEBOT",
		"",
		"   ",
	};
	static const char *const people[] = {
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
		"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
		"Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
	};
	char *longua;

	for (size_t i = 0; i < ALOG_ARRAY_LEN(bots); i++) {
		bool b = edge_ua_is_bot(bots[i], strlen(bots[i]));

		if (!b)
			fprintf(stderr, "not a bot?: %s\n", bots[i]);
		CHECK(b);
	}
	for (size_t i = 0; i < ALOG_ARRAY_LEN(people); i++) {
		bool b = edge_ua_is_bot(people[i], strlen(people[i]));

		if (b)
			fprintf(stderr, "a bot?: %s\n", people[i]);
		CHECK(!b);
	}
	CHECK(edge_ua_is_bot(NULL, 0));
	/* Only len bytes count. */
	CHECK(!edge_ua_is_bot("Mozilla/5.0 Googlebot", 11));
	/* A long UA is still scanned to the end. */
	longua = malloc(8192);
	REQUIRE(longua);
	memset(longua, 'b', 8192);
	memcpy(longua + 8192 - 6, "spider", 6);
	CHECK(edge_ua_is_bot(longua, 8192));
	CHECK(!edge_ua_is_bot(longua, 8192 - 6));
	free(longua);
}

/* ---- UUIDv7 ---------------------------------------------------------------- */

static uint64_t uuid_ms(const uint8_t u[16])
{
	uint64_t ms = 0;

	for (int i = 0; i < 6; i++)
		ms = ms << 8 | u[i];
	return ms;
}

static void test_uuid7(void)
{
	enum {
		N = 10000
	};
	uint8_t(*ids)[16] = malloc(N * 16);
	uint64_t t = 1700000000123ull, now = alog_now_ms();
	int unordered = 0, badlayout = 0;
	unsigned rand_b_ones = 0;

	REQUIRE(ids);
	/* 10,000 ids in one millisecond: the counter then the timestamp
	 * carry them, strictly increasing. */
	for (int i = 0; i < N; i++)
		edge_uuid7(ids[i], t);
	CHECK_EQ(uuid_ms(ids[0]), t);
	for (int i = 0; i < N; i++) {
		if ((ids[i][6] >> 4) != 7 || (ids[i][8] >> 6) != 2)
			badlayout++;
		if (uuid_ms(ids[i]) < t || uuid_ms(ids[i]) > t + N / 2048 + 1)
			badlayout++;
		if (i > 0 && memcmp(ids[i - 1], ids[i], 16) >= 0)
			unordered++;
		rand_b_ones += (unsigned)__builtin_popcount(ids[i][15]);
	}
	CHECK_EQ(badlayout, 0);
	CHECK_EQ(unordered, 0);
	/* rand_b is random: about half its bits set. */
	CHECK(rand_b_ones > N * 8 * 4 / 10 && rand_b_ones < N * 8 * 6 / 10);

	/* Over real time, with the clock moving. */
	for (int i = 0; i < N; i++)
		edge_uuid7(ids[i], now + (uint64_t)i / 100);
	for (int i = 1; i < N; i++)
		if (memcmp(ids[i - 1], ids[i], 16) >= 0)
			unordered++;
	CHECK_EQ(unordered, 0);
	CHECK_EQ(uuid_ms(ids[N - 1]), now + (N - 1) / 100);

	/* A small step back stays monotonic; a replay of old times starts
	 * afresh at the time given. */
	edge_uuid7(ids[0], now + 1000);
	edge_uuid7(ids[1], now + 999);
	CHECK(memcmp(ids[0], ids[1], 16) < 0);
	edge_uuid7(ids[2], t);
	CHECK_EQ(uuid_ms(ids[2]), t);
	free(ids);
}

/* ---- Geo ------------------------------------------------------------------- */

static void geo_expect(struct edge_geo *g, const char *ip, const char *cc,
		       const char *region, const char *city)
{
	struct edge_addr a = addr_of(ip);
	struct edge_geo_result r;
	char got_cc[3] = { 0 };

	memset(&r, 0x55, sizeof(r));
	CHECK_EQ(edge_geo_lookup(g, &a, &r), 0);
	memcpy(got_cc, r.country, 2);
	if (strcmp(got_cc, cc) != 0 || strcmp(r.region, region) != 0 ||
	    strcmp(r.city, city) != 0) {
		fprintf(stderr, "geo %s: got \"%s\" \"%s\" \"%s\"\n", ip,
			got_cc, r.region, r.city);
		CHECK(false);
	} else {
		CHECK(true);
	}
	if (!*cc)
		CHECK(r.country[0] == 0 && r.country[1] == 0);
}

static void test_geo_built(const char *script, const char *dir,
			   const char *layout)
{
	char db[4200], cmd[9000];
	struct edge_geo *g;
	int err = 1;

	snprintf(db, sizeof(db), "%s/test-%s.mmdb", dir, layout);
	snprintf(cmd, sizeof(cmd), "perl '%s' '%s' %s", script, db, layout);
	REQUIRE(system(cmd) == 0);
	g = edge_geo_open(db, &err);
	REQUIRE(g);
	CHECK_EQ(err, 0);
	geo_expect(g, "192.0.2.7", "DE", "Bavaria", "M\xc3\xbcnchen");
	geo_expect(g, "::ffff:192.0.2.200", "DE", "Bavaria", "M\xc3\xbcnchen");
	geo_expect(g, "2001:db8:1::5", "JP", "Tokyo", "Shibuya");
	geo_expect(g, "2001:db8:1:ffff::1", "JP", "Tokyo", "Shibuya");
	geo_expect(g, "198.51.100.1", "FR", "", "");
	geo_expect(g, "10.0.0.1", "", "", "");
	geo_expect(g, "2001:db8:2::1", "", "", "");
	geo_expect(g, "::1", "", "", "");
	edge_geo_close(g);
}

static void test_geo(const char *script, const char *ipldb)
{
	char *dir = t_tmpdir("geo"), bad[4200];
	struct edge_addr a = addr_of("192.0.2.7");
	struct edge_geo_result r;
	int err = 0;

	test_geo_built(script, dir, "geolite2");
	test_geo_built(script, dir, "ipldb");

	/* No database: empty results. */
	memset(&r, 0x55, sizeof(r));
	CHECK_EQ(edge_geo_lookup(NULL, &a, &r), 0);
	CHECK(r.country[0] == 0 && r.region[0] == 0 && r.city[0] == 0);
	edge_geo_close(NULL);

	/* Missing and corrupt files. */
	snprintf(bad, sizeof(bad), "%s/missing.mmdb", dir);
	CHECK(edge_geo_open(bad, &err) == NULL);
	CHECK_EQ(err, -ENOENT);
	snprintf(bad, sizeof(bad), "%s/bad.mmdb", dir);
	write_file(bad, "not a maxmind db at all", 23, 0644);
	err = 0;
	CHECK(edge_geo_open(bad, &err) == NULL);
	CHECK_EQ(err, -EINVAL);

	/* A real @ip-location-db database when one was installed. */
	if (ipldb && access(ipldb, R_OK) == 0) {
		struct edge_geo *g = edge_geo_open(ipldb, &err);

		REQUIRE(g);
		geo_expect(g, "8.8.8.8", "US", "", "");
		geo_expect(g, "2001:4860:4860::8888", "US", "", "");
		geo_expect(g, "10.1.2.3", "", "", "");
		edge_geo_close(g);
		printf("geo: checked %s\n", ipldb);
	} else {
		printf("geo: no @ip-location-db database at %s, skipped\n",
		       ipldb ? ipldb : "(none)");
	}
	t_rmrf(dir);
	free(dir);
}

/* ---- Rate limits ------------------------------------------------------------- */

#define MS_NS 1000000ull

static void test_ratelimit_basic(void)
{
	struct edge_ratelimit *r = edge_ratelimit_create(100, 10, 5);
	uint64_t t = 1000 * MS_NS;
	int ok = 0;

	REQUIRE(r);
	/* Burst, then refused. */
	for (int i = 0; i < 5; i++)
		CHECK(edge_ratelimit_take(r, 1, t, 1));
	CHECK(!edge_ratelimit_take(r, 1, t, 1));
	/* Another key has its own bucket. */
	CHECK(edge_ratelimit_take(r, 2, t, 5));
	CHECK(!edge_ratelimit_take(r, 2, t, 1));
	/* 10/s: one token per 100 ms. */
	CHECK(!edge_ratelimit_take(r, 1, t + 50 * MS_NS, 1));
	CHECK(edge_ratelimit_take(r, 1, t + 100 * MS_NS, 1));
	CHECK(!edge_ratelimit_take(r, 1, t + 100 * MS_NS, 1));
	/* A long pause refills to the burst, not beyond. */
	for (int i = 0; i < 10; i++)
		ok += edge_ratelimit_take(r, 1, t + 60000 * MS_NS, 1);
	CHECK_EQ(ok, 5);
	/* A clock going back adds nothing. */
	CHECK(!edge_ratelimit_take(r, 1, t, 1));
	/* n tokens at once; more than the burst never passes. */
	CHECK(edge_ratelimit_take(r, 3, t, 5));
	CHECK(!edge_ratelimit_take(r, 4, t + 3600000 * MS_NS, 6));
	/* Sustained rate over a simulated minute: 10/s + the burst. */
	ok = 0;
	for (uint64_t ms = 0; ms < 60000; ms += 10)
		ok += edge_ratelimit_take(r, 5, t + ms * MS_NS, 1);
	CHECK(ok >= 600 && ok <= 606);
	edge_ratelimit_destroy(r);

	/* Rate 0: unlimited. */
	r = edge_ratelimit_create(1, 0, 0);
	REQUIRE(r);
	for (int i = 0; i < 1000; i++)
		CHECK(edge_ratelimit_take(r, (uint64_t)i, t, 100));
	edge_ratelimit_destroy(r);

	/* Bad parameters. */
	CHECK(edge_ratelimit_create(0, 1, 1) == NULL);
	CHECK(edge_ratelimit_create(10, -1, 1) == NULL);
	CHECK(edge_ratelimit_create(10, 1, -1) == NULL);
	CHECK(edge_ratelimit_create(10, 1.0 / 0.0, 1) == NULL);
	edge_ratelimit_destroy(NULL);
}

static void test_ratelimit_lru(void)
{
	/* Tiny rate: a bucket emptied stays empty unless evicted (a fresh
	 * entry starts full), which makes eviction visible. */
	struct edge_ratelimit *r = edge_ratelimit_create(3, 1e-9, 1);
	uint64_t t = 1;
	int present = 0;

	REQUIRE(r);
	CHECK(edge_ratelimit_take(r, 'A', t, 1));
	CHECK(edge_ratelimit_take(r, 'B', t, 1));
	CHECK(edge_ratelimit_take(r, 'C', t, 1));
	CHECK(!edge_ratelimit_take(r, 'A', t, 1)); /* A now most recent */
	CHECK(edge_ratelimit_take(r, 'D', t, 1));  /* evicts B */
	CHECK(!edge_ratelimit_take(r, 'A', t, 1));
	CHECK(!edge_ratelimit_take(r, 'C', t, 1));
	CHECK(!edge_ratelimit_take(r, 'D', t, 1));
	CHECK(edge_ratelimit_take(r, 'B', t, 1)); /* fresh again; evicts A */
	CHECK(edge_ratelimit_take(r, 'A', t, 1));
	edge_ratelimit_destroy(r);

	/* 100,000 keys through 1,000 entries: exactly the last 1,000 stay. */
	r = edge_ratelimit_create(1000, 1e-9, 1);
	REQUIRE(r);
	for (uint64_t k = 0; k < 100000; k++)
		CHECK(edge_ratelimit_take(r, k, t, 1));
	for (uint64_t k = 99000; k < 100000; k++)
		present += !edge_ratelimit_take(r, k, t, 1);
	CHECK_EQ(present, 1000);
	CHECK(edge_ratelimit_take(r, 98999, t, 1)); /* was evicted */
	CHECK(edge_ratelimit_take(r, 0, t, 1));
	edge_ratelimit_destroy(r);
}

struct rl_arg {
	struct edge_ratelimit *r;
	int seed, allowed;
};

enum {
	RL_KEYS = 1000,
	RL_TAKES = 50000,
	RL_BURST = 3
};

static void *rl_thread(void *p)
{
	struct rl_arg *a = p;
	uint64_t x = (uint64_t)a->seed * 0x9e3779b97f4a7c15ull + 1;

	for (int i = 0; i < RL_TAKES; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		a->allowed += edge_ratelimit_take(a->r, x % RL_KEYS * 7919,
						  (uint64_t)i, 1);
	}
	return NULL;
}

static void test_ratelimit_threads(void)
{
	enum {
		THREADS = 4
	};
	/* Striped (16 x 2048 entries); the keys all fit, so exactly the
	 * burst of every key is handed out, however threads interleave. */
	struct edge_ratelimit *r = edge_ratelimit_create(32768, 1e-9, RL_BURST);
	struct rl_arg args[THREADS];
	pthread_t th[THREADS];
	int total = 0;

	REQUIRE(r);
	for (int t = 0; t < THREADS; t++) {
		args[t] = (struct rl_arg){ .r = r, .seed = t + 1 };
		REQUIRE(pthread_create(&th[t], NULL, rl_thread, &args[t]) == 0);
	}
	for (int t = 0; t < THREADS; t++) {
		pthread_join(th[t], NULL);
		total += args[t].allowed;
	}
	CHECK_EQ(total, RL_KEYS * RL_BURST);
	edge_ratelimit_destroy(r);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s MAKE_TEST_GEO.pl [IPLDB.mmdb]\n",
			argv[0]);
		return 2;
	}
	test_cidr();
	test_sockaddr();
	test_client_addr();
	test_visitor_hash();
	test_salts_threads();
	test_salts_many_threads();
	test_opt_out();
	test_bots();
	test_uuid7();
	test_geo(argv[1], argc > 2 ? argv[2] : NULL);
	test_ratelimit_basic();
	test_ratelimit_lru();
	test_ratelimit_threads();
	return t_summary("test_edge_privacy");
}
