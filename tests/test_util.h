/*
 * test_util.h - the few helpers alog's C tests share: checks that report
 * file:line and count, scratch directories, and a closing summary line.
 */
#ifndef ALOG_TEST_UTIL_H
#define ALOG_TEST_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_checks, t_failed;

#define CHECK(cond)                                                          \
	do {                                                                 \
		t_checks++;                                                  \
		if (!(cond)) {                                               \
			t_failed++;                                          \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
				__LINE__, #cond);                            \
		}                                                            \
	} while (0)

#define CHECK_EQ(a, b)                                                       \
	do {                                                                 \
		long long _a = (long long)(a), _b = (long long)(b);          \
		t_checks++;                                                  \
		if (_a != _b) {                                              \
			t_failed++;                                          \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s = %lld, %s = %lld\n", \
				__FILE__, __LINE__, #a, _a, #b, _b);          \
		}                                                            \
	} while (0)

/* Fatal: the rest of the test cannot run. */
#define REQUIRE(cond)                                                        \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: REQUIRE failed: %s (errno %d)\n", \
				__FILE__, __LINE__, #cond, errno);           \
			exit(1);                                             \
		}                                                            \
	} while (0)

/* A fresh scratch directory under $TMPDIR; caller frees. */
static inline char *t_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *p = malloc(4096);

	REQUIRE(p);
	snprintf(p, 4096, "%s/alog-%s-XXXXXX", base, tag);
	REQUIRE(mkdtemp(p));
	return p;
}

static inline void t_rmrf(const char *dir)
{
	char cmd[8400];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not remove %s\n", dir);
}

static inline int t_summary(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, t_checks, t_failed);
	return t_failed ? 1 : 0;
}

#endif
