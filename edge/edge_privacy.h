/*
 * edge_privacy.h - privacy at the door: which address is the client's,
 * the cookie-less visitor identity, geo lookup, Do-Not-Track / GPC and bot
 * detection, and event ids.
 *
 * The client address lives in a struct edge_addr on the request's stack
 * and is used only by edge_visitor_hash() and edge_geo_lookup(); nothing
 * here logs it, stores it or returns it in another form (the rate limiter
 * keys on a keyed hash of it, never the address).
 */
#ifndef EDGE_PRIVACY_H
#define EDGE_PRIVACY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An IPv4 or IPv6 address; v4 is stored v4-mapped (::ffff:a.b.c.d). */
struct edge_addr {
	uint8_t b[16];
};

struct edge_cidr {
	struct edge_addr net;
	uint8_t prefix_bits; /* 0..128, on the v4-mapped form for v4 */
};

/* Parse "10.0.0.0/8", "::1", "127.0.0.1" into a CIDR. 0 or -EINVAL. */
int edge_cidr_parse(const char *s, struct edge_cidr *out);

/* Peer socket address to edge_addr. 0 or -EAFNOSUPPORT. */
int edge_addr_from_sockaddr(const struct sockaddr *sa, struct edge_addr *out);

/*
 * The client address: when the peer is one of the trusted proxies, the
 * right-most address of X-Forwarded-For that is not itself a trusted proxy
 * (or X-Real-IP when there is no X-Forwarded-For); otherwise the peer.
 * Header values are untrusted: a malformed entry makes the function fall
 * back to the peer. xff / real_ip may be NULL. Returns 0.
 */
int edge_client_addr(const struct edge_addr *peer, const char *xff,
		     size_t xff_len, const char *real_ip, size_t real_ip_len,
		     const struct edge_cidr *trusted, size_t ntrusted,
		     struct edge_addr *out);

/*
 * Daily salts. The current salt is random (OpenSSL RAND_bytes), rotates at
 * midnight UTC, lives in memory and in a 0600 file at path (meant for a
 * tmpfs such as /run) so a restart keeps the day's identities; the file is
 * rewritten atomically on rotation, and the old salt is wiped from memory
 * (OPENSSL_cleanse). A file from an earlier day is ignored and replaced.
 * path NULL: memory only.
 */
struct edge_salts;
struct edge_salts *edge_salts_open(const char *path, uint64_t now_ms,
				   int *err);
void edge_salts_close(struct edge_salts *s); /* wipes; accepts NULL */

/* What became of the salt file, for the caller to log (libraries don't). */
enum edge_salts_file_state {
	EDGE_SALTS_MEMORY_ONLY,   /* path NULL or "" */
	EDGE_SALTS_FILE_LOADED,   /* today's salt read back (a restart) */
	EDGE_SALTS_FILE_CREATED,  /* there was no file: a new one written */
	EDGE_SALTS_FILE_REPLACED, /* damaged, foreign, insecure (not 0600 or
				     another owner) or earlier day: replaced */
	EDGE_SALTS_FILE_ROTATED,  /* midnight: the new day's salt written */
	EDGE_SALTS_FILE_UNSAVED,  /* midnight: writing failed (*write_err);
				     the old file was removed and the new
				     salt lives in memory only */
};

/* The latest file event: at open, then at each rotation. *write_err (may
 * be NULL) is 0 or the -errno of a failed write. Thread-safe. */
enum edge_salts_file_state edge_salts_file_status(struct edge_salts *s,
						  int *write_err);

/*
 * Visitor hash: first 8 bytes of HMAC-SHA256(salt of the day of now_ms,
 * site || 0 || address || 0 || user agent). Rotates the salt first when
 * the day changed. Thread-safe. Returns 0 or -errno.
 */
int edge_visitor_hash(struct edge_salts *s, uint64_t now_ms, const char *site,
		      size_t site_len, const struct edge_addr *addr,
		      const char *ua, size_t ua_len, uint64_t *out);

/* A keyed hash of the address alone with the day's salt, for rate
 * limiting per client without keeping addresses. Thread-safe. */
uint64_t edge_client_key(struct edge_salts *s, uint64_t now_ms,
			 const struct edge_addr *addr);

/* "DNT: 1" or "Sec-GPC: 1" (values trimmed). NULL/0 means absent. */
bool edge_privacy_opt_out(const char *dnt, size_t dnt_len, const char *gpc,
			  size_t gpc_len);

/* Obvious bots by user agent (crawlers, headless browsers, HTTP
 * libraries, empty UA). Case-insensitive substring rules. */
bool edge_ua_is_bot(const char *ua, size_t ua_len);

/* UUIDv7 (RFC 9562) from now_ms and random bits. Thread-safe. */
void edge_uuid7(uint8_t out[16], uint64_t now_ms);

/* ---- Geo (libmaxminddb) ------------------------------------------------- */

struct edge_geo;

/*
 * Open a MaxMind DB: GeoLite2/GeoIP2 Country or City layouts
 * (country.iso_code, subdivisions[0].names.en, city.names.en) and the
 * @ip-location-db/...-mmdb layouts (country_code, and region/city fields
 * where present). Returns NULL with *err on failure.
 */
struct edge_geo *edge_geo_open(const char *path, int *err);
void edge_geo_close(struct edge_geo *g);

struct edge_geo_result {
	char country[2]; /* zeros if unknown */
	char region[64]; /* "" if unknown */
	char city[64];   /* "" if unknown */
};

/* Look up addr; unknown addresses give an empty result and 0. g may be
 * NULL (no database): empty result. Thread-safe. */
int edge_geo_lookup(struct edge_geo *g, const struct edge_addr *addr,
		    struct edge_geo_result *out);

/* ---- Rate limits ---------------------------------------------------------- */

/*
 * Token buckets keyed by a 64-bit key (a site's hash, or edge_client_key),
 * in a fixed-size table (entries_max, evicting the least recently used):
 * memory is bounded whatever the traffic. rate_per_s 0 = unlimited.
 */
struct edge_ratelimit;
struct edge_ratelimit *edge_ratelimit_create(size_t entries_max,
					     double rate_per_s, double burst);
void edge_ratelimit_destroy(struct edge_ratelimit *r);
/* Take n tokens for key at now_ns; false means over the limit (429).
 * Thread-safe. */
bool edge_ratelimit_take(struct edge_ratelimit *r, uint64_t key,
			 uint64_t now_ns, unsigned n);

#endif /* EDGE_PRIVACY_H */
