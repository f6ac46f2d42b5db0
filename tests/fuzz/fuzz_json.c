/*
 * libFuzzer harness for pv_json_parse(), the gate every request body,
 * webhook and upstream reply passes.  Each input gets a fresh arena.
 * Beyond "no crash, no leak" it checks properties: a refusal carries a
 * 4xx code and UTF-8 message and field (they end up in JSON replies),
 * an accepted document serialises to text that parses again and
 * serialises to the same bytes, and duplicate keys are checked against
 * a second, independent count.  The getters are run over every member
 * so type confusion shows up too.  Not built by the Makefile:
 *
 *	mkdir -p build/fuzz && clang -std=c11 -D_POSIX_C_SOURCE=200809L \
 *	    -D_DEFAULT_SOURCE -g -O1 -fno-omit-frame-pointer \
 *	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *	    -Ilib $(pkg-config --cflags json-c) tests/fuzz/fuzz_json.c \
 *	    lib/pv_json.c lib/pv_valid.c lib/pv_arena.c lib/pv_err.c \
 *	    $(pkg-config --libs json-c) -o build/fuzz/fuzz_json
 *	cp -R tests/fuzz/corpus/json build/fuzz/corpus
 *	build/fuzz/fuzz_json -max_total_time=20 -max_len=8192 \
 *	    -dict=tests/fuzz/json.dict build/fuzz/corpus
 *
 * (The copy keeps new inputs out of the seed corpus in git.)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "pv_arena.h"
#include "pv_json.h"
#include "pv_valid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property failed: say which, then crash so libFuzzer keeps the input. */
/*
 * Independent duplicate-key oracle: in valid JSON every member has
 * exactly one ':' outside strings, so a tree with fewer members than
 * that lost some to duplicates.
 */
static size_t
colons(const uint8_t *p, size_t n)
{
	size_t i, c = 0;
	int instr = 0;

	for (i = 0; i < n; i++) {
		if (instr && p[i] == '\\')
			i++;
		else if (p[i] == '"')
			instr = !instr;
		else if (!instr && p[i] == ':')
			c++;
	}
	return c;
}

static size_t
members(struct json_object *o)
{
	size_t n = 0, i;

	if (json_object_is_type(o, json_type_array)) {
		for (i = 0; i < json_object_array_length(o); i++)
			n += members(json_object_array_get_idx(o, i));
		return n;
	}
	if (!json_object_is_type(o, json_type_object))
		return 0;
	json_object_object_foreach (o, key, val) {
		(void)key;
		n += 1 + members(val);
	}
	return n;
}

/* A refusal for a duplicate must be one: plain json-c keeps fewer. */
static void
really_dup(const uint8_t *data, size_t size)
{
	struct json_tokener *tok;
	struct json_object *o;

	if ((tok = json_tokener_new_ex(PV_JSON_MAX_DEPTH + 1)) == NULL)
		return;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, (const char *)data, (int)size);
	check(o != NULL);
	check(members(o) < colons(data, size));
	json_object_put(o);
	json_tokener_free(tok);
}

/* Every getter on every member: each must succeed or fail cleanly. */
static void
poke(struct json_object *o)
{
	static const char *const none[] = { NULL };
	struct json_object *v;
	struct pv_err err;
	const char *s;
	int64_t i;
	bool b;
	size_t n;

	json_object_object_foreach (o, key, val) {
		(void)val;
		memset(&err, 0, sizeof(err));
		if (pv_json_str(o, key, 0, 64, &s, &err) == 0)
			check(strlen(s) <= 64);
		memset(&err, 0, sizeof(err));
		(void)pv_json_int(o, key, -1000, 1000, &i, &err);
		memset(&err, 0, sizeof(err));
		(void)pv_json_bool_opt(o, key, false, &b, &err);
		memset(&err, 0, sizeof(err));
		if (pv_json_arr_opt(o, key, 0, 1000, &v, &err) == 0 &&
		    v != NULL) {
			for (n = 0; n < json_object_array_length(v); n++) {
				memset(&err, 0, sizeof(err));
				if (pv_json_at_str(v, n, 0, 100, &s, &err) ==
				        -1 &&
				    err.code == PV_E_INVALID) {
					pv_json_err_prefix(&err, "%s[%zu]", key,
					    n);
					check(pv_valid_utf8(err.msg,
					    strlen(err.msg)));
				}
			}
		}
		memset(&err, 0, sizeof(err));
		if (pv_json_obj(o, key, &v, &err) == -1) {
			pv_json_err_prefix(&err, "outer");
			check(pv_valid_utf8(err.field, strlen(err.field)));
			check(pv_valid_utf8(err.msg, strlen(err.msg)));
		}
	}
	memset(&err, 0, sizeof(err));
	if (pv_json_only_keys(o, none, &err) == -1) {
		check(err.code == PV_E_INVALID);
		check(pv_valid_utf8(err.field, strlen(err.field)));
		check(pv_valid_utf8(err.msg, strlen(err.msg)));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *o, *o2;
	struct pv_arena *a;
	struct pv_err err;
	const char *s, *s2;
	size_t len, len2;

	if ((a = pv_arena_new(0)) == NULL)
		return 0;
	memset(&err, 0, sizeof(err));
	if (pv_json_parse(a, (const char *)data, size, &o, &err) == -1) {
		check(o == NULL);
		check(err.code == PV_E_INVALID || err.code == PV_E_TOOBIG);
		check(err.msg[0] != '\0');
		check(pv_valid_utf8(err.msg, strlen(err.msg)));
		check(pv_valid_utf8(err.field, strlen(err.field)));
		if (strncmp(err.msg, "duplicate key ", 14) == 0)
			really_dup(data, size);
		goto out;
	}
	check(json_object_is_type(o, json_type_object));
	check(members(o) == colons(data, size));
	check(pv_json_to_str(a, o, &s, &len, &err) == 0);
	check(pv_valid_utf8(s, len));
	check(pv_json_parse(a, s, len, &o2, &err) == 0);
	check(pv_json_to_str(a, o2, &s2, &len2, &err) == 0);
	check(len == len2 && memcmp(s, s2, len) == 0);
	poke(o);
out:
	pv_arena_free(a);
	return 0;
}
