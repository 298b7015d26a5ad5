/*
 * edge_geo.c - country / region / city of an address from a MaxMind DB.
 *
 * Two layouts are read, field by field, so one code path serves both:
 *   GeoLite2 / GeoIP2:   country.iso_code (registered_country.iso_code as a
 *                        fallback), subdivisions.0.names.en, city.names.en
 *   @ip-location-db:     country_code, state1, city (a plain string)
 * The database is mmapped read-only by libmaxminddb, whose lookups on a
 * shared MMDB_s are thread-safe. Only the three strings leave this file.
 */
#include "edge_privacy.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <maxminddb.h>

struct edge_geo {
	MMDB_s db;
};

static int mmdb_errno(int status, int saved_errno)
{
	switch (status) {
	case MMDB_FILE_OPEN_ERROR:
		return saved_errno ? -saved_errno : -ENOENT;
	case MMDB_IO_ERROR:
		return -EIO;
	case MMDB_OUT_OF_MEMORY_ERROR:
		return -ENOMEM;
	default: /* corrupt or unknown format */
		return -EINVAL;
	}
}

struct edge_geo *edge_geo_open(const char *path, int *err)
{
	struct edge_geo *g;
	int status, dummy;

	if (!err)
		err = &dummy;
	if (!path || !*path) {
		*err = -EINVAL;
		return NULL;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		*err = -ENOMEM;
		return NULL;
	}
	errno = 0;
	status = MMDB_open(path, MMDB_MODE_MMAP, &g->db);
	if (status != MMDB_SUCCESS) {
		*err = mmdb_errno(status, errno);
		free(g);
		return NULL;
	}
	*err = 0;
	return g;
}

void edge_geo_close(struct edge_geo *g)
{
	if (!g)
		return;
	MMDB_close(&g->db);
	free(g);
}

/*
 * Copy a UTF-8 string of the database into dst (NUL-terminated), cut at a
 * character boundary when too long. Strings with control characters are
 * refused (""): they would only be trouble downstream.
 */
static bool copy_text(char *dst, size_t cap, const char *src, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)src[i] < 0x20 || src[i] == 0x7f)
			return false;
	if (len >= cap) {
		len = cap - 1;
		/* Back off over continuation bytes to a lead byte, and drop
		 * that character too. */
		while (len > 0 && ((unsigned char)src[len] & 0xc0) == 0x80)
			len--;
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
	return len > 0;
}

/* The UTF-8 string at path (NULL-terminated, as MMDB_aget_value wants). */
static bool get_text(MMDB_entry_s *entry, const char *const *path, char *dst,
		     size_t cap)
{
	MMDB_entry_data_s data;

	if (MMDB_aget_value(entry, &data, path) != MMDB_SUCCESS ||
	    !data.has_data || data.type != MMDB_DATA_TYPE_UTF8_STRING)
		return false;
	return copy_text(dst, cap, data.utf8_string, data.data_size);
}

/* A two-letter code (any case) into out, upper-cased; else false. */
static bool get_country(MMDB_entry_s *entry, const char *const *path,
			char out[2])
{
	char cc[4]; /* room to see that "USA" is not a code */

	if (!get_text(entry, path, cc, sizeof(cc)) || strlen(cc) != 2)
		return false;
	for (int i = 0; i < 2; i++) {
		if (cc[i] >= 'a' && cc[i] <= 'z')
			cc[i] = (char)(cc[i] - 32);
		if (cc[i] < 'A' || cc[i] > 'Z')
			return false;
	}
	memcpy(out, cc, 2);
	return true;
}

int edge_geo_lookup(struct edge_geo *g, const struct edge_addr *addr,
		    struct edge_geo_result *out)
{
	static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0,    0,
					       0, 0, 0, 0, 0xff, 0xff };
	static const char *const geolite_country[] = { "country", "iso_code",
						       NULL };
	static const char *const geolite_registered[] = { "registered_country",
							  "iso_code", NULL };
	static const char *const ipldb_country[] = { "country_code", NULL };
	static const char *const geolite_region[] = { "subdivisions", "0",
						      "names", "en", NULL };
	static const char *const ipldb_region[] = { "state1", NULL };
	static const char *const geolite_city[] = { "city", "names", "en",
						    NULL };
	static const char *const ipldb_city[] = { "city", NULL };
	struct sockaddr_storage ss;
	MMDB_lookup_result_s res;
	int status;

	memset(out, 0, sizeof(*out));
	if (!g)
		return 0;

	/*
	 * v4 (and v4-mapped) addresses go in as AF_INET so libmaxminddb
	 * finds them in IPv4-only databases and in the IPv4 subtree of
	 * IPv6 ones alike.
	 */
	memset(&ss, 0, sizeof(ss));
	if (memcmp(addr->b, v4_mapped, sizeof(v4_mapped)) == 0) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, addr->b + 12, 4);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, addr->b, 16);
	}
	res = MMDB_lookup_sockaddr(&g->db, (struct sockaddr *)&ss, &status);
	if (status == MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR)
		return 0; /* unknown to this database */
	if (status != MMDB_SUCCESS)
		return -EIO;
	if (!res.found_entry)
		return 0;

	if (!get_country(&res.entry, geolite_country, out->country) &&
	    !get_country(&res.entry, ipldb_country, out->country))
		get_country(&res.entry, geolite_registered, out->country);
	if (!get_text(&res.entry, geolite_region, out->region,
		      sizeof(out->region)))
		get_text(&res.entry, ipldb_region, out->region,
			 sizeof(out->region));
	if (!get_text(&res.entry, geolite_city, out->city, sizeof(out->city)))
		get_text(&res.entry, ipldb_city, out->city, sizeof(out->city));
	return 0;
}
