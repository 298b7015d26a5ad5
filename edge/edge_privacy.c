/*
 * edge_privacy.c - which address is the client's, daily salts and the
 * cookie-less visitor hash, Do-Not-Track / GPC, bot rules and UUIDv7.
 *
 * The address arrives in a struct edge_addr on the caller's stack and leaves
 * only as an HMAC under a salt that is random, lives one UTC day and is then
 * wiped (memory and file), so yesterday's hashes cannot be recomputed.
 * The salt file format is in docs/edge-config.md ("Salt file").
 */
#include "edge_privacy.h"

#include "alog_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define MS_PER_DAY 86400000u

/* ---- Addresses ------------------------------------------------------------ */

static const uint8_t v4_mapped_prefix[12] = { 0, 0, 0, 0, 0,    0,
					      0, 0, 0, 0, 0xff, 0xff };

/* Longest address text we accept: an IPv6 address in full v4 form. */
#define ADDR_TEXT_MAX 45

/* Parse exactly len bytes of address text (no port, no brackets). */
static int addr_parse(const char *s, size_t len, struct edge_addr *out,
		      bool *is_v4)
{
	char buf[ADDR_TEXT_MAX + 1];
	struct in_addr a4;

	if (len == 0 || len > ADDR_TEXT_MAX)
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		memcpy(out->b, v4_mapped_prefix, 12);
		memcpy(out->b + 12, &a4, 4);
		*is_v4 = true;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, out->b) == 1) {
		*is_v4 = false;
		return 0;
	}
	return -EINVAL;
}

static void cidr_mask(struct edge_addr *a, unsigned prefix_bits)
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned bits = prefix_bits > i * 8 ? prefix_bits - i * 8 : 0;

		if (bits >= 8)
			continue;
		a->b[i] &= (uint8_t)(0xff00u >> bits);
	}
}

int edge_cidr_parse(const char *s, struct edge_cidr *out)
{
	const char *slash;
	size_t addr_len;
	unsigned prefix, max;
	bool v4;

	if (!s)
		return -EINVAL;
	slash = strchr(s, '/');
	addr_len = slash ? (size_t)(slash - s) : strlen(s);
	if (addr_parse(s, addr_len, &out->net, &v4) != 0)
		return -EINVAL;
	max = v4 ? 32 : 128;
	prefix = max;
	if (slash) {
		const char *p = slash + 1;

		/* 1..3 decimal digits, nothing else. */
		if (*p == '\0' || strlen(p) > 3)
			return -EINVAL;
		prefix = 0;
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				return -EINVAL;
			prefix = prefix * 10 + (unsigned)(*p - '0');
		}
		if (prefix > max)
			return -EINVAL;
	}
	out->prefix_bits = (uint8_t)(v4 ? prefix + 96 : prefix);
	cidr_mask(&out->net, out->prefix_bits);
	return 0;
}

int edge_addr_from_sockaddr(const struct sockaddr *sa, struct edge_addr *out)
{
	if (sa && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		memcpy(out->b, v4_mapped_prefix, 12);
		memcpy(out->b + 12, &in->sin_addr, 4);
		return 0;
	}
	if (sa && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
			(const struct sockaddr_in6 *)sa;

		memcpy(out->b, &in6->sin6_addr, 16);
		return 0;
	}
	return -EAFNOSUPPORT;
}

static bool cidr_contains(const struct edge_cidr *c, const struct edge_addr *a)
{
	unsigned bits = c->prefix_bits, full = bits / 8, rest = bits % 8;

	if (memcmp(c->net.b, a->b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((c->net.b[full] ^ a->b[full]) & (uint8_t)(0xff00u >> rest)) ==
	       0;
}

static bool addr_trusted(const struct edge_addr *a,
			 const struct edge_cidr *trusted, size_t ntrusted)
{
	for (size_t i = 0; i < ntrusted; i++)
		if (cidr_contains(&trusted[i], a))
			return true;
	return false;
}

static bool is_digits(const char *s, size_t len, size_t max)
{
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/*
 * One forwarded-for entry, already trimmed: "1.2.3.4", "1.2.3.4:80",
 * "2001:db8::1", "[2001:db8::1]" or "[2001:db8::1]:80". Anything else
 * (zone ids, "unknown", obfuscated RFC 7239 names) is -EINVAL.
 */
static int forwarded_addr_parse(const char *s, size_t len,
				struct edge_addr *out)
{
	const char *colon;
	bool v4;

	if (len == 0)
		return -EINVAL;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', len);
		size_t after;

		if (!close)
			return -EINVAL;
		after = len - (size_t)(close + 1 - s);
		if (after != 0 &&
		    (close[1] != ':' || !is_digits(close + 2, after - 1, 5)))
			return -EINVAL;
		if (addr_parse(s + 1, (size_t)(close - s - 1), out, &v4) != 0 ||
		    v4)
			return -EINVAL;
		return 0;
	}
	colon = memchr(s, ':', len);
	if (colon && !memchr(colon + 1, ':', len - (size_t)(colon + 1 - s))) {
		/* Exactly one colon: IPv4 with a port. */
		size_t alen = (size_t)(colon - s);

		if (!is_digits(colon + 1, len - alen - 1, 5))
			return -EINVAL;
		if (addr_parse(s, alen, out, &v4) != 0 || !v4)
			return -EINVAL;
		return 0;
	}
	return addr_parse(s, len, out, &v4);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

static void trim(const char **s, size_t *len)
{
	while (*len > 0 && is_space(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_space((*s)[*len - 1]))
		(*len)--;
}

int edge_client_addr(const struct edge_addr *peer, const char *xff,
		     size_t xff_len, const char *real_ip, size_t real_ip_len,
		     const struct edge_cidr *trusted, size_t ntrusted,
		     struct edge_addr *out)
{
	struct edge_addr a;
	size_t end;

	*out = *peer;
	if (!addr_trusted(peer, trusted, ntrusted))
		return 0;
	if (xff)
		trim(&xff, &xff_len);
	if (real_ip)
		trim(&real_ip, &real_ip_len);

	if (!xff || xff_len == 0) {
		if (real_ip && real_ip_len > 0 &&
		    forwarded_addr_parse(real_ip, real_ip_len, &a) == 0)
			*out = a;
		return 0;
	}

	/*
	 * Right to left: each hop appended the address it saw, so the first
	 * untrusted one is the client as far as we can believe. Every byte
	 * is looked at once or twice (scan + copy): linear in xff_len.
	 */
	end = xff_len;
	for (;;) {
		size_t start = end, tlen;
		const char *tok;

		while (start > 0 && xff[start - 1] != ',')
			start--;
		tok = xff + start;
		tlen = end - start;
		trim(&tok, &tlen);
		if (forwarded_addr_parse(tok, tlen, &a) != 0)
			return 0; /* garbage: the peer it is */
		if (!addr_trusted(&a, trusted, ntrusted) || start == 0) {
			/* All hops trusted: the left-most is the origin. */
			*out = a;
			return 0;
		}
		end = start - 1; /* skip the comma */
	}
}

/* ---- Salts ----------------------------------------------------------------- */

/*
 * Salt file, 64 bytes, little-endian (docs/edge-config.md, "Salt file"):
 *   0  8  magic "ALOGSALT"
 *   8  4  version (1)
 *  12  4  reserved, 0
 *  16  8  UTC day number (ms since the epoch / 86400000)
 *  24 32  salt
 *  56  8  first 8 bytes of SHA-256 over bytes 0..55
 */
#define SALT_BYTES 32
#define SALT_FILE_BYTES 64
#define SALT_FILE_VERSION 1
#define SALT_OFF_VERSION 8
#define SALT_OFF_RESERVED 12
#define SALT_OFF_DAY 16
#define SALT_OFF_SALT 24
#define SALT_OFF_SUM 56
_Static_assert(SALT_OFF_SALT + SALT_BYTES == SALT_OFF_SUM, "salt layout");
_Static_assert(SALT_OFF_SUM + 8 == SALT_FILE_BYTES, "salt file size");

static const char salt_magic[8] = { 'A', 'L', 'O', 'G', 'S', 'A', 'L', 'T' };

/* Threads that keep their own keyed HMAC context (more hash by copying). */
#define SALT_HMAC_SLOTS 64

struct edge_salts {
	pthread_rwlock_t lock; /* read: hashing; write: rotation */
	uint64_t day;
	uint8_t salt[SALT_BYTES];
	EVP_MAC *mac;
	EVP_MAC_CTX *keyed; /* HMAC-SHA256 keyed with salt: the template */
	/* Per-thread copies of keyed (index: hmac_thread_slot()), made at a
	 * thread's first hash and reset for each next one: a copy per hash
	 * cost more than the HMAC itself. Only thread i touches slot[i]
	 * under the read lock; a rotation frees them all under the write
	 * lock, so no copy of a rotated salt's key outlives it. */
	EVP_MAC_CTX *slot[SALT_HMAC_SLOTS];
	char *path;         /* NULL: memory only */
	pthread_mutex_t state_lock;
	enum edge_salts_file_state state;
	int state_err;
};

static int salt_file_sum(const uint8_t *buf, uint8_t sum[8])
{
	uint8_t md[32];
	unsigned md_len = 0;

	if (EVP_Digest(buf, SALT_OFF_SUM, md, &md_len, EVP_sha256(), NULL) !=
		    1 ||
	    md_len != sizeof(md))
		return -EIO;
	memcpy(sum, md, 8);
	return 0;
}

static int salt_file_encode(uint8_t buf[SALT_FILE_BYTES], uint64_t day,
			    const uint8_t salt[SALT_BYTES])
{
	memcpy(buf, salt_magic, sizeof(salt_magic));
	alog_put_u32(buf + SALT_OFF_VERSION, SALT_FILE_VERSION);
	alog_put_u32(buf + SALT_OFF_RESERVED, 0);
	alog_put_u64(buf + SALT_OFF_DAY, day);
	memcpy(buf + SALT_OFF_SALT, salt, SALT_BYTES);
	return salt_file_sum(buf, buf + SALT_OFF_SUM);
}

/* True when buf is a well-formed version-1 salt file for day. */
static bool salt_file_valid(const uint8_t buf[SALT_FILE_BYTES], uint64_t day)
{
	uint8_t sum[8];

	if (memcmp(buf, salt_magic, sizeof(salt_magic)) != 0)
		return false;
	if (alog_get_u32(buf + SALT_OFF_VERSION) != SALT_FILE_VERSION ||
	    alog_get_u32(buf + SALT_OFF_RESERVED) != 0)
		return false;
	if (salt_file_sum(buf, sum) != 0 ||
	    CRYPTO_memcmp(sum, buf + SALT_OFF_SUM, 8) != 0)
		return false;
	return alog_get_u64(buf + SALT_OFF_DAY) == day;
}

/* mkdir -p for path's parent, each created directory 0700. */
static int make_parent_dirs(const char *path)
{
	char dir[PATH_MAX];
	int rc = alog_path_parent(path, dir, sizeof(dir));

	if (rc)
		return rc;
	if (!strcmp(dir, ".") || !strcmp(dir, "/"))
		return 0; /* they exist */
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Write the salt file atomically and privately (0600, see
 * alog_path_replace), wiping the encoded copy afterwards. */
static int salt_file_write(const char *path, uint64_t day,
			   const uint8_t salt[SALT_BYTES])
{
	uint8_t buf[SALT_FILE_BYTES];
	int rc;

	rc = make_parent_dirs(path);
	if (rc != 0)
		return rc;
	rc = salt_file_encode(buf, day, salt);
	if (rc == 0)
		rc = alog_path_replace(path, buf, sizeof(buf), 0600);
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

/*
 * Read path's salt for day. 0 and the salt when the file is ours (a
 * regular file of this user, not readable by others, the right size,
 * magic, version, checksum and day); -ENOENT when absent; -EINVAL when it
 * is there but unusable (damaged, foreign, insecure or another day).
 */
static int salt_file_read(const char *path, uint64_t day,
			  uint8_t salt[SALT_BYTES])
{
	uint8_t buf[SALT_FILE_BYTES + 1];
	struct stat st;
	size_t got = 0;
	int fd, rc = -EINVAL;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -EINVAL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 077) != 0 ||
	    st.st_size != SALT_FILE_BYTES)
		goto out_close;
	while (got < sizeof(buf)) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got == SALT_FILE_BYTES && salt_file_valid(buf, day)) {
		memcpy(salt, buf + SALT_OFF_SALT, SALT_BYTES);
		rc = 0;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
out_close:
	close(fd);
	return rc;
}

static int random_fill(void *buf, size_t len)
{
	if (len <= INT_MAX && RAND_bytes(buf, (int)len) == 1)
		return 0;
	return alog_random_bytes(buf, len);
}

static void salts_free_keys(struct edge_salts *s)
{
	/* The provider wipes each key as its context is freed. */
	for (size_t i = 0; i < SALT_HMAC_SLOTS; i++) {
		EVP_MAC_CTX_free(s->slot[i]);
		s->slot[i] = NULL;
	}
	EVP_MAC_CTX_free(s->keyed);
	s->keyed = NULL;
}

/* Build the keyed HMAC template for the current salt. */
static int salts_key(struct edge_salts *s)
{
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	ctx = EVP_MAC_CTX_new(s->mac);
	if (!ctx)
		return -ENOMEM;
	if (EVP_MAC_init(ctx, s->salt, sizeof(s->salt), params) != 1) {
		EVP_MAC_CTX_free(ctx);
		return -EIO;
	}
	s->keyed = ctx;
	return 0;
}

static void salts_set_state(struct edge_salts *s,
			    enum edge_salts_file_state state, int err)
{
	pthread_mutex_lock(&s->state_lock);
	s->state = state;
	s->state_err = err;
	pthread_mutex_unlock(&s->state_lock);
}

/*
 * A fresh salt for day, in memory and (when there is a path) in the file.
 * Caller holds the write lock or owns s exclusively. On a file error the
 * new salt is still used (identities simply do not survive a restart), the
 * old file is removed so an earlier salt does not outlive its day, and the
 * error is returned.
 */
static int salts_new(struct edge_salts *s, uint64_t day)
{
	uint8_t fresh[SALT_BYTES];
	int rc;

	rc = random_fill(fresh, sizeof(fresh));
	if (rc != 0)
		return rc;
	OPENSSL_cleanse(s->salt, sizeof(s->salt));
	memcpy(s->salt, fresh, sizeof(fresh));
	OPENSSL_cleanse(fresh, sizeof(fresh));
	s->day = day;
	salts_free_keys(s);
	rc = salts_key(s);
	if (rc != 0)
		return rc;
	if (s->path) {
		rc = salt_file_write(s->path, day, s->salt);
		if (rc != 0)
			unlink(s->path);
	}
	return rc;
}

struct edge_salts *edge_salts_open(const char *path, uint64_t now_ms, int *err)
{
	pthread_rwlockattr_t attr;
	int dummy;
	struct edge_salts *s;
	uint64_t day = now_ms / MS_PER_DAY;
	int rc;

	if (!err)
		err = &dummy;
	s = calloc(1, sizeof(*s));
	if (!s) {
		*err = -ENOMEM;
		return NULL;
	}
	/* Writer preference: under steady hashing traffic glibc's default
	 * (readers first) could postpone the midnight rotation forever. */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(
		&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	rc = pthread_rwlock_init(&s->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	if (rc != 0) {
		free(s);
		*err = -rc;
		return NULL;
	}
	pthread_mutex_init(&s->state_lock, NULL);
	s->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!s->mac) {
		rc = -ENOSYS;
		goto out_close;
	}
	if (path && *path) {
		s->path = strdup(path);
		if (!s->path) {
			rc = -ENOMEM;
			goto out_close;
		}
		rc = salt_file_read(path, day, s->salt);
		if (rc == 0) {
			s->day = day;
			rc = salts_key(s);
			if (rc != 0)
				goto out_close;
			s->state = EDGE_SALTS_FILE_LOADED;
			*err = 0;
			return s;
		}
		s->state = rc == -ENOENT ? EDGE_SALTS_FILE_CREATED :
					   EDGE_SALTS_FILE_REPLACED;
	} else {
		s->state = EDGE_SALTS_MEMORY_ONLY;
	}
	rc = salts_new(s, day);
	if (rc != 0)
		goto out_close;
	*err = 0;
	return s;

out_close:
	edge_salts_close(s);
	*err = rc;
	return NULL;
}

void edge_salts_close(struct edge_salts *s)
{
	if (!s)
		return;
	salts_free_keys(s);
	EVP_MAC_free(s->mac);
	free(s->path);
	pthread_rwlock_destroy(&s->lock);
	pthread_mutex_destroy(&s->state_lock);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

enum edge_salts_file_state edge_salts_file_status(struct edge_salts *s,
						  int *write_err)
{
	enum edge_salts_file_state state;

	pthread_mutex_lock(&s->state_lock);
	state = s->state;
	if (write_err)
		*write_err = s->state_err;
	pthread_mutex_unlock(&s->state_lock);
	return state;
}

/*
 * Take the read lock on a salt that is current for now_ms, rotating first
 * under the write lock when the UTC day moved forward. A clock stepping
 * back across midnight keeps the newer salt: an old salt never returns.
 * -EIO (lock still held) when no fresh salt could be made: the caller
 * must not hash with yesterday's.
 */
static int salts_rdlock_current(struct edge_salts *s, uint64_t now_ms)
{
	uint64_t day = now_ms / MS_PER_DAY;

	pthread_rwlock_rdlock(&s->lock);
	if (day <= s->day)
		return 0;
	pthread_rwlock_unlock(&s->lock);

	pthread_rwlock_wrlock(&s->lock);
	if (day > s->day) {
		int rc = salts_new(s, day);

		if (s->path)
			salts_set_state(s,
					rc == 0 ? EDGE_SALTS_FILE_ROTATED :
						  EDGE_SALTS_FILE_UNSAVED,
					rc);
	}
	pthread_rwlock_unlock(&s->lock);
	pthread_rwlock_rdlock(&s->lock);
	return day <= s->day ? 0 : -EIO;
}

/* This thread's index into edge_salts.slot, or -1 past the last slot. */
static int hmac_thread_slot(void)
{
	static atomic_int next_slot;
	static __thread int mine = -2;

	if (mine == -2) {
		int i = atomic_fetch_add(&next_slot, 1);

		mine = i < SALT_HMAC_SLOTS ? i : -1;
	}
	return mine;
}

/* HMAC over the concatenation of n parts, first 8 bytes little-endian.
 * Caller holds the read lock. */
static int salts_hmac(struct edge_salts *s, const void *const *parts,
		      const size_t *lens, size_t n, uint64_t *out)
{
	uint8_t md[32];
	size_t md_len = 0;
	EVP_MAC_CTX *ctx;
	int slot = hmac_thread_slot(), rc = -EIO;

	if (!s->keyed)
		return -EIO; /* salts_new failed to key (out of memory) */
	if (slot >= 0 && s->slot[slot]) {
		ctx = s->slot[slot];
		/* No key: back to the keyed state, ready for a message. */
		if (EVP_MAC_init(ctx, NULL, 0, NULL) != 1) {
			EVP_MAC_CTX_free(ctx); /* the next hash makes another */
			s->slot[slot] = NULL;
			return -EIO;
		}
	} else {
		ctx = EVP_MAC_CTX_dup(s->keyed);
		if (!ctx)
			return -ENOMEM;
		if (slot >= 0)
			s->slot[slot] = ctx;
	}
	for (size_t i = 0; i < n; i++)
		if (lens[i] > 0 && EVP_MAC_update(ctx, parts[i], lens[i]) != 1)
			goto out;
	if (EVP_MAC_final(ctx, md, &md_len, sizeof(md)) != 1 ||
	    md_len != sizeof(md))
		goto out;
	*out = alog_get_u64(md);
	rc = 0;
out:
	if (slot < 0)
		EVP_MAC_CTX_free(ctx);
	OPENSSL_cleanse(md, sizeof(md));
	return rc;
}

int edge_visitor_hash(struct edge_salts *s, uint64_t now_ms, const char *site,
		      size_t site_len, const struct edge_addr *addr,
		      const char *ua, size_t ua_len, uint64_t *out)
{
	static const uint8_t zero;
	const void *parts[] = { site, &zero, addr->b, &zero, ua };
	const size_t lens[] = { site_len, 1, sizeof(addr->b), 1, ua_len };
	int rc;

	rc = salts_rdlock_current(s, now_ms);
	if (rc == 0)
		rc = salts_hmac(s, parts, lens, ALOG_ARRAY_LEN(parts), out);
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

uint64_t edge_client_key(struct edge_salts *s, uint64_t now_ms,
			 const struct edge_addr *addr)
{
	/* Starts with a byte no site id has, so it never equals a visitor
	 * hash input. */
	static const uint8_t domain[] = "\xff"
					"client-key";
	const void *parts[] = { domain, addr->b };
	const size_t lens[] = { sizeof(domain), sizeof(addr->b) };
	uint64_t key = 0;

	if (salts_rdlock_current(s, now_ms) != 0 ||
	    salts_hmac(s, parts, lens, ALOG_ARRAY_LEN(parts), &key) != 0)
		key = 0; /* out of memory: every client shares one bucket */
	pthread_rwlock_unlock(&s->lock);
	return key;
}

/* ---- Opt-out and bots -------------------------------------------------------- */

static bool header_is_one(const char *v, size_t len)
{
	if (!v)
		return false;
	trim(&v, &len);
	return len == 1 && v[0] == '1';
}

bool edge_privacy_opt_out(const char *dnt, size_t dnt_len, const char *gpc,
			  size_t gpc_len)
{
	return header_is_one(dnt, dnt_len) || header_is_one(gpc, gpc_len);
}

/*
 * Lower-case substrings of user agents that are not people. Crawlers
 * mostly say "bot", "crawl" or "spider"; the rest are preview fetchers,
 * monitoring, automation and HTTP libraries that name themselves.
 */
static const char *const bot_rules[] = {
	/* crawlers and archivers */
	"bot",
	"crawl",
	"spider",
	"slurp",
	"archiver",
	"ia_archiver",
	"mediapartners-google",
	"google-inspectiontool",
	"googleother",
	"feedfetcher",
	"chatgpt-user",
	"perplexity",
	/* link previews */
	"facebookexternalhit",
	"facebookcatalog",
	"bingpreview",
	"embedly",
	"quora link preview",
	"whatsapp",
	"skypeuripreview",
	"vkshare",
	"preview",
	/* performance and uptime monitoring */
	"headless",
	"lighthouse",
	"pagespeed",
	"ptst/",
	"gtmetrix",
	"pingdom",
	"statuscake",
	"site24x7",
	"uptime",
	"monitor",
	/* automation */
	"phantomjs",
	"selenium",
	"webdriver",
	"puppeteer",
	"playwright",
	"cypress",
	"jsdom",
	"prerender",
	"rendertron",
	/* HTTP clients and libraries */
	"curl",
	"wget",
	"python-requests",
	"python-urllib",
	"aiohttp",
	"httpx",
	"scrapy",
	"go-http-client",
	"java/",
	"okhttp",
	"libwww",
	"httpclient",
	"httpie",
	"axios/",
	"node-fetch",
	"undici",
	"got (",
	"guzzlehttp",
	"ruby",
	"postmanruntime",
	"insomnia",
	/* scanners */
	"zgrab",
	"masscan",
	"nmap",
	"nikto",
	"sqlmap",
	"nuclei",
	"scanner",
	"validator",
};

static inline unsigned char ascii_lower(char c)
{
	unsigned char u = (unsigned char)c;

	return (unsigned char)((unsigned)(u - 'A') < 26u ? u + 32 : u);
}

/* Case-insensitive: does lower-case pat occur in s at i? */
static bool match_at(const char *s, size_t len, size_t i, const char *pat,
		     size_t plen)
{
	if (len - i < plen)
		return false;
	for (size_t k = 0; k < plen; k++)
		if (ascii_lower(s[i + k]) != (unsigned char)pat[k])
			return false;
	return true;
}

static bool contains_rule(const char *s, size_t len, const char *pat)
{
	size_t plen = strlen(pat);
	unsigned char first = (unsigned char)pat[0];

	if (plen > len)
		return false;
	for (size_t i = 0; i + plen <= len; i++) {
		if (ascii_lower(s[i]) != first)
			continue;
		if (!match_at(s, len, i, pat, plen))
			continue;
		/* "Cubot" is a phone maker, not a robot. */
		if (plen == 3 && memcmp(pat, "bot", 3) == 0 && i >= 2 &&
		    match_at(s, len, i - 2, "cubot", 5))
			continue;
		return true;
	}
	return false;
}

/*
 * The hot path: every request asks this. Lower-case the agent once, then
 * let memmem (SIMD in glibc) look for each rule; only "bot" needs a second
 * look, for "Cubot" phones. An agent longer than the buffer takes the
 * byte-by-byte path above.
 */
static bool lower_contains(const char *low, size_t len, const char *pat)
{
	size_t plen = strlen(pat);
	const char *p = low, *end = low + len;

	while ((p = memmem(p, (size_t)(end - p), pat, plen)) != NULL) {
		if (!(plen == 3 && p - low >= 2 &&
		      memcmp(p - 2, "cubot", 5) == 0))
			return true;
		p++;
	}
	return false;
}

/*
 * Real traffic repeats a few hundred user agents: remember each verdict in
 * a small per-thread table keyed by the agent's XXH3 hash and length
 * (a 64-bit collision between two agents is not a practical concern).
 */
#define UA_CACHE_SLOTS 1024

struct ua_cache_slot {
	uint64_t hash;
	uint32_t len; /* 0: empty */
	bool bot;
};

static bool ua_is_bot_uncached(const char *ua, size_t ua_len);

bool edge_ua_is_bot(const char *ua, size_t ua_len)
{
	static __thread struct ua_cache_slot cache[UA_CACHE_SLOTS];
	struct ua_cache_slot *slot;
	uint64_t h;

	if (ua)
		trim(&ua, &ua_len);
	if (!ua || ua_len == 0)
		return true;
	h = XXH3_64bits(ua, ua_len);
	slot = &cache[h % UA_CACHE_SLOTS];
	if (slot->len == ua_len && slot->hash == h)
		return slot->bot;
	slot->hash = h;
	slot->len = (uint32_t)ua_len;
	slot->bot = ua_is_bot_uncached(ua, ua_len);
	return slot->bot;
}

static bool ua_is_bot_uncached(const char *ua, size_t ua_len)
{
	char low[1024];

	if (ua_len > sizeof(low)) {
		for (size_t i = 0; i < ALOG_ARRAY_LEN(bot_rules); i++)
			if (contains_rule(ua, ua_len, bot_rules[i]))
				return true;
		return false;
	}
	for (size_t i = 0; i < ua_len; i++)
		low[i] = ascii_lower(ua[i]);
	for (size_t i = 0; i < ALOG_ARRAY_LEN(bot_rules); i++)
		if (lower_contains(low, ua_len, bot_rules[i]))
			return true;
	return false;
}

/* ---- UUIDv7 ------------------------------------------------------------------ */

/*
 * RFC 9562 UUIDv7 with the "fixed-length dedicated counter" method: the
 * 12-bit rand_a field is a counter that starts at a random value below
 * 0x800 each new millisecond and counts up within it, so ids from one
 * process are strictly increasing. When the counter would overflow, or the
 * clock goes back by less than UUID7_BACKSTEP_MAX_MS, the timestamp is
 * carried forward from the last id instead (RFC 9562 6.2 allows both); a
 * bigger step back (a caller replaying old events) starts afresh at now_ms.
 * The 62 bits of rand_b are fresh random bytes for every id.
 */
#define UUID7_BACKSTEP_MAX_MS 10000u

static pthread_mutex_t uuid7_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t uuid7_last_ms;
static uint16_t uuid7_counter;

/*
 * Random bits for ids come from a per-thread pool refilled 4 KiB at a
 * time: one RAND_bytes call per ~400 ids instead of one per id (it was
 * the third-largest cost of a batch request). Ids are not secrets; salts
 * still take their bytes straight from random_fill().
 */
static int uuid_random(uint8_t *out, size_t len)
{
	static __thread uint8_t pool[4096];
	static __thread size_t left;

	if (left < len) {
		if (random_fill(pool, sizeof(pool)) != 0)
			return -EIO;
		left = sizeof(pool);
	}
	memcpy(out, pool + sizeof(pool) - left, len);
	left -= len;
	return 0;
}

void edge_uuid7(uint8_t out[16], uint64_t now_ms)
{
	uint8_t rnd[10];
	uint64_t ms;
	uint16_t counter;

	if (uuid_random(rnd, sizeof(rnd)) != 0) {
		/* No entropy source at all: keep ids unique by the counter
		 * and time, and at least not constant. */
		uint64_t t = alog_mono_ns();

		memcpy(rnd, &t, sizeof(t));
		rnd[8] = (uint8_t)(t >> 3);
		rnd[9] = (uint8_t)(t >> 11);
	}
	now_ms &= (1ull << 48) - 1;

	pthread_mutex_lock(&uuid7_lock);
	if (now_ms > uuid7_last_ms ||
	    uuid7_last_ms - now_ms > UUID7_BACKSTEP_MAX_MS) {
		ms = now_ms;
		counter = (uint16_t)(((rnd[0] << 8) | rnd[1]) & 0x7ff);
	} else if (uuid7_counter < 0xfff) {
		ms = uuid7_last_ms;
		counter = (uint16_t)(uuid7_counter + 1);
	} else {
		ms = uuid7_last_ms + 1;
		counter = (uint16_t)(((rnd[0] << 8) | rnd[1]) & 0x7ff);
	}
	uuid7_last_ms = ms;
	uuid7_counter = counter;
	pthread_mutex_unlock(&uuid7_lock);

	for (int i = 0; i < 6; i++)
		out[i] = (uint8_t)(ms >> (40 - 8 * i));
	out[6] = (uint8_t)(0x70 | (counter >> 8));
	out[7] = (uint8_t)counter;
	out[8] = (uint8_t)(0x80 | (rnd[2] & 0x3f));
	memcpy(out + 9, rnd + 3, 7);
}
