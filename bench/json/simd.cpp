/*
 * simd.cpp - the simdjson DOM parser behind an extern "C" entry point, the
 * shim the edge (which is C) would need to call it.
 *
 * One dom::parser per thread, reused for every body, as simdjson intends:
 * its buffers grow to the largest body once and are kept. Bodies come with
 * JSON_BENCH_PADDING readable bytes after them, so parse() reads them in
 * place instead of copying each into a padded buffer. The walk fills the
 * same tally as the C parsers' walks in json_bench.c. No exceptions cross
 * into C: errors come back as simdjson error codes or messages.
 *
 * simdjson already refuses what jansson refuses in UTF-8 (invalid and
 * overlong sequences, lone surrogates). With strict set, the walk also
 * refuses what else jansson refuses for the edge: duplicate keys (jansson's
 * JSON_REJECT_DUPLICATES), "\u0000" in strings and keys, and integers above
 * INT64_MAX, so that row measures a drop-in replacement, checks included.
 */
#include "json_bench.h"

#include <simdjson.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <vector>

static_assert(simdjson::SIMDJSON_PADDING <= JSON_BENCH_PADDING,
	      "body buffers must carry simdjson's padding");

/* objects with more keys are checked for duplicates by sorting */
static constexpr size_t PAIRWISE_KEYS_MAX = 16;

using simdjson::dom::element;
using simdjson::dom::element_type;

struct simd_state {
	simdjson::dom::parser parser;
	/* a stack of the keys of the objects being walked; views into the
	 * parser's document, capacity kept across bodies */
	std::vector<std::string_view> keys;
	std::vector<std::string_view> sorted;
};

struct walk {
	struct simd_state *st;
	struct json_tally *t;
	bool strict;
	const char *fail; /* why the walk stopped, or NULL */
};

static bool visit_string(struct walk *w, std::string_view s)
{
	json_tally_string(w->t, s.data(), s.size());
	if (w->strict && memchr(s.data(), '\0', s.size())) {
		w->fail = "\\u0000 is not allowed";
		return false;
	}
	return true;
}

/* Keys st->keys[base..] are one object's: false on a duplicate. */
static bool keys_unique(struct simd_state *st, size_t base)
{
	size_t n = st->keys.size() - base, i, j;

	if (n <= PAIRWISE_KEYS_MAX) {
		for (i = base + 1; i < st->keys.size(); i++)
			for (j = base; j < i; j++)
				if (st->keys[i] == st->keys[j])
					return false;
		return true;
	}
	st->sorted.assign(st->keys.begin() + (std::ptrdiff_t)base,
			  st->keys.end());
	std::sort(st->sorted.begin(), st->sorted.end());
	return std::adjacent_find(st->sorted.begin(), st->sorted.end()) ==
	       st->sorted.end();
}

static bool visit(struct walk *w, element e)
{
	struct json_tally *t = w->t;

	t->values++;
	switch (e.type()) {
	case element_type::OBJECT: {
		/* a named copy: value_unsafe() refers into the temporary */
		simdjson::dom::object o = e.get_object().value_unsafe();
		size_t base = w->st->keys.size();

		for (simdjson::dom::key_value_pair kv : o) {
			t->keys++;
			if (!visit_string(w, kv.key) || !visit(w, kv.value))
				return false;
			if (w->strict)
				w->st->keys.push_back(kv.key);
		}
		if (w->strict) {
			if (!keys_unique(w->st, base)) {
				w->fail = "duplicate object key";
				return false;
			}
			w->st->keys.resize(base);
		}
		break;
	}
	case element_type::ARRAY: {
		simdjson::dom::array a = e.get_array().value_unsafe();

		for (element c : a)
			if (!visit(w, c))
				return false;
		break;
	}
	case element_type::STRING:
		return visit_string(w, e.get_string().value_unsafe());
	case element_type::INT64:
		t->ints++;
		t->int_sum += (uint64_t)e.get_int64().value_unsafe();
		break;
	case element_type::UINT64:
		if (w->strict) {
			w->fail = "too big integer";
			return false;
		}
		t->ints++;
		t->int_sum += e.get_uint64().value_unsafe();
		break;
	case element_type::DOUBLE:
		t->reals++;
		t->real_sum += e.get_double().value_unsafe();
		break;
	case element_type::BOOL:
		t->bools++;
		break;
	case element_type::NULL_VALUE:
		t->nulls++;
		break;
	}
	return true;
}

extern "C" void *simd_create(void)
{
	return new (std::nothrow) simd_state();
}

extern "C" void simd_destroy(void *state)
{
	delete static_cast<struct simd_state *>(state);
}

extern "C" int simd_parse_visit(void *state, const char *p, size_t len,
				int strict, struct json_tally *t, char *err,
				size_t err_len)
{
	auto *st = static_cast<struct simd_state *>(state);
	struct walk w = { st, t, strict != 0, nullptr };
	simdjson::error_code ec;
	element root;

	/* false: the buffer is padded, parse it where it is */
	ec = st->parser.parse(reinterpret_cast<const uint8_t *>(p), len, false)
		     .get(root);
	if (ec) {
		snprintf(err, err_len, "%s", simdjson::error_message(ec));
		return -1;
	}
	st->keys.clear();
	try {
		if (!visit(&w, root)) {
			snprintf(err, err_len, "%s", w.fail);
			return -1;
		}
	} catch (const std::bad_alloc &) {
		snprintf(err, err_len, "out of memory");
		return -1;
	}
	return 0;
}

#define SIMD_STR2(x) #x
#define SIMD_STR(x) SIMD_STR2(x)

extern "C" const char *simd_version(void)
{
	return SIMD_STR(SIMDJSON_VERSION); /* of the header compiled against */
}

extern "C" const char *simd_implementation(void)
{
	static std::string name;

	name = simdjson::get_active_implementation()->name();
	return name.c_str();
}
