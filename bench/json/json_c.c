/*
 * json_c.c - the json-c parse + walk for json_bench.c, in a file of its
 * own because json-c's headers and jansson's declare the same names
 * (json_object_get, json_object_iter_next, json_type). The shared
 * libraries version those symbols, so both can live in one process.
 *
 * One tokener per thread, reset for each body, in strict mode and
 * validating UTF-8 as jansson does. json-c accepts "\u0000" in strings and
 * keeps the last of duplicate keys; the edge would have to check for
 * duplicates itself.
 */
#include "json_bench.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

static void visit(struct json_object *o, struct json_tally *t)
{
	t->values++;
	switch (json_object_get_type(o)) {
	case json_type_object: {
		json_object_object_foreach(o, k, v)
		{
			t->keys++;
			json_tally_string(t, k, strlen(k));
			visit(v, t);
		}
		break;
	}
	case json_type_array: {
		size_t i, n = json_object_array_length(o);

		for (i = 0; i < n; i++)
			visit(json_object_array_get_idx(o, i), t);
		break;
	}
	case json_type_string:
		json_tally_string(t, json_object_get_string(o),
				  (size_t)json_object_get_string_len(o));
		break;
	case json_type_int:
		t->ints++;
		t->int_sum += (uint64_t)json_object_get_int64(o);
		break;
	case json_type_double:
		t->reals++;
		t->real_sum += json_object_get_double(o);
		break;
	case json_type_boolean:
		t->bools++;
		break;
	case json_type_null: /* json-c stores null members as NULL */
		t->nulls++;
		break;
	}
}

void *jc_create(void)
{
	struct json_tokener *tok = json_tokener_new();

	if (tok)
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
						    JSON_TOKENER_VALIDATE_UTF8);
	return tok;
}

void jc_destroy(void *tokener)
{
	if (tokener)
		json_tokener_free(tokener);
}

int jc_parse_visit(void *tokener, const char *p, size_t len,
		   struct json_tally *t, char *err, size_t err_len)
{
	struct json_tokener *tok = tokener;
	struct json_object *root;
	enum json_tokener_error jerr;

	if (len > (size_t)INT32_MAX) {
		snprintf(err, err_len, "body too large for json-c");
		return -1;
	}
	json_tokener_reset(tok);
	root = json_tokener_parse_ex(tok, p, (int)len);
	jerr = json_tokener_get_error(tok);
	if (jerr != json_tokener_success) {
		/* json_tokener_continue: the text ended inside a value */
		snprintf(err, err_len, "%s at byte %zu",
			 json_tokener_error_desc(jerr),
			 json_tokener_get_parse_end(tok));
		json_object_put(root);
		return -1;
	}
	if (json_tokener_get_parse_end(tok) != len) {
		snprintf(err, err_len, "trailing bytes after byte %zu",
			 json_tokener_get_parse_end(tok));
		json_object_put(root);
		return -1;
	}
	visit(root, t);
	json_object_put(root);
	return 0;
}

const char *jc_version(void)
{
	return json_c_version();
}
