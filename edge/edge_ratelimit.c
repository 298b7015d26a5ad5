/*
 * edge_ratelimit.c - token buckets per 64-bit key in bounded memory.
 *
 * Everything is allocated at create: entries_max buckets split over a few
 * stripes, each stripe with its own mutex, a chained hash index and an LRU
 * list threaded through the entries by 32-bit indices. A key not in its
 * stripe takes a free entry or, when the stripe is full, the least recently
 * used one, which then starts again with a full bucket. Eviction is LRU per
 * stripe (exact LRU below EDGE_RL_STRIPE_MIN_ENTRIES, where there is one
 * stripe); keys are spread over stripes by a mix of their bits.
 */
#include "edge_privacy.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define EDGE_RL_STRIPES 16
#define EDGE_RL_STRIPE_MIN_ENTRIES 1024 /* fewer: one stripe, exact LRU */
#define NIL UINT32_MAX

struct rl_entry {
	uint64_t key;
	uint64_t last_ns;
	double tokens;
	uint32_t hash_next; /* chain in the bucket index */
	uint32_t lru_prev, lru_next;
};

struct rl_stripe {
	pthread_mutex_t lock;
	struct rl_entry *entries;
	uint32_t *index; /* nindex heads, NIL = empty */
	uint32_t nindex; /* power of two >= cap */
	uint32_t cap, used;
	uint32_t lru_head, lru_tail; /* head: most recently used */
};

struct edge_ratelimit {
	double rate_per_s, burst;
	unsigned nstripes;
	struct rl_stripe stripes[];
};

/* splitmix64's finaliser: callers' keys need not be well mixed. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

struct edge_ratelimit *edge_ratelimit_create(size_t entries_max,
					     double rate_per_s, double burst)
{
	struct edge_ratelimit *r;
	unsigned nstripes;
	size_t per;

	if (entries_max == 0 || entries_max > (size_t)UINT32_MAX / 2 ||
	    !isfinite(rate_per_s) || rate_per_s < 0 || !isfinite(burst) ||
	    burst < 0)
		return NULL;
	nstripes = entries_max >= (size_t)EDGE_RL_STRIPES *
					   EDGE_RL_STRIPE_MIN_ENTRIES ?
			   EDGE_RL_STRIPES :
			   1;
	per = entries_max / nstripes; /* total never exceeds entries_max */

	r = calloc(1, sizeof(*r) + nstripes * sizeof(r->stripes[0]));
	if (!r)
		return NULL;
	r->rate_per_s = rate_per_s;
	/* A bucket smaller than one event would refuse everything. */
	r->burst = burst < 1 ? 1 : burst;
	r->nstripes = nstripes;
	for (unsigned i = 0; i < nstripes; i++) {
		struct rl_stripe *st = &r->stripes[i];

		st->cap = (uint32_t)per;
		st->nindex = 1;
		while (st->nindex < st->cap)
			st->nindex <<= 1;
		st->entries = calloc(st->cap, sizeof(st->entries[0]));
		st->index = malloc(st->nindex * sizeof(st->index[0]));
		if (!st->entries || !st->index) {
			free(st->entries);
			free(st->index);
			st->entries = NULL;
			st->index = NULL;
			r->nstripes = i; /* destroy frees what was built */
			edge_ratelimit_destroy(r);
			return NULL;
		}
		memset(st->index, 0xff, st->nindex * sizeof(st->index[0]));
		st->lru_head = st->lru_tail = NIL;
		pthread_mutex_init(&st->lock, NULL);
	}
	return r;
}

void edge_ratelimit_destroy(struct edge_ratelimit *r)
{
	if (!r)
		return;
	for (unsigned i = 0; i < r->nstripes; i++) {
		pthread_mutex_destroy(&r->stripes[i].lock);
		free(r->stripes[i].entries);
		free(r->stripes[i].index);
	}
	free(r);
}

static void lru_unlink(struct rl_stripe *st, uint32_t i)
{
	struct rl_entry *e = &st->entries[i];

	if (e->lru_prev != NIL)
		st->entries[e->lru_prev].lru_next = e->lru_next;
	else
		st->lru_head = e->lru_next;
	if (e->lru_next != NIL)
		st->entries[e->lru_next].lru_prev = e->lru_prev;
	else
		st->lru_tail = e->lru_prev;
}

static void lru_push_head(struct rl_stripe *st, uint32_t i)
{
	struct rl_entry *e = &st->entries[i];

	e->lru_prev = NIL;
	e->lru_next = st->lru_head;
	if (st->lru_head != NIL)
		st->entries[st->lru_head].lru_prev = i;
	st->lru_head = i;
	if (st->lru_tail == NIL)
		st->lru_tail = i;
}

static void index_remove(struct rl_stripe *st, uint32_t slot, uint32_t i)
{
	uint32_t *p = &st->index[slot];

	while (*p != i) {
		assert(*p != NIL);
		p = &st->entries[*p].hash_next;
	}
	*p = st->entries[i].hash_next;
}

/* The entry for key, created (full bucket) if missing; most recent now. */
static struct rl_entry *stripe_get(struct edge_ratelimit *r,
				   struct rl_stripe *st, uint64_t key,
				   uint64_t h, uint64_t now_ns)
{
	uint32_t slot = (uint32_t)h & (st->nindex - 1);
	uint32_t i;
	struct rl_entry *e;

	for (i = st->index[slot]; i != NIL; i = st->entries[i].hash_next)
		if (st->entries[i].key == key)
			break;
	if (i != NIL) {
		if (st->lru_head != i) {
			lru_unlink(st, i);
			lru_push_head(st, i);
		}
		return &st->entries[i];
	}

	if (st->used < st->cap) {
		i = st->used++;
	} else {
		/* Full: recycle the least recently used entry. */
		i = st->lru_tail;
		e = &st->entries[i];
		index_remove(st, (uint32_t)mix64(e->key) & (st->nindex - 1), i);
		lru_unlink(st, i);
	}
	e = &st->entries[i];
	e->key = key;
	e->tokens = r->burst;
	e->last_ns = now_ns;
	e->hash_next = st->index[slot];
	st->index[slot] = i;
	lru_push_head(st, i);
	return e;
}

bool edge_ratelimit_take(struct edge_ratelimit *r, uint64_t key,
			 uint64_t now_ns, unsigned n)
{
	uint64_t h = mix64(key);
	struct rl_stripe *st;
	struct rl_entry *e;
	bool ok;

	if (r->rate_per_s == 0)
		return true;
	st = &r->stripes[(h >> 59) % r->nstripes];

	pthread_mutex_lock(&st->lock);
	e = stripe_get(r, st, key, h, now_ns);
	if (now_ns > e->last_ns) {
		e->tokens +=
			(double)(now_ns - e->last_ns) * r->rate_per_s / 1e9;
		if (e->tokens > r->burst)
			e->tokens = r->burst;
		e->last_ns = now_ns;
	}
	/* A clock that went back adds nothing and moves nothing. */
	ok = e->tokens >= (double)n;
	if (ok)
		e->tokens -= (double)n;
	pthread_mutex_unlock(&st->lock);
	return ok;
}
