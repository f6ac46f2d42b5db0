/* Unit tests of pv_json: strict parsing, duplicate keys, typed getters,
 * field paths, builders, output and allocation-failure injection. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pv_arena.h"
#include "pv_json.h"
#include "pv_valid.h"
#include "pv_test.h"

static struct pv_arena *a;
static struct pv_err err;

static void
setup(void)
{
	a = pv_arena_new(4 * 1024 * 1024);
	ck_assert_ptr_nonnull(a);
	pv_err_clear(&err);
}

static void
teardown(void)
{
	pv_arena_free(a);
}

/* Parses a C string literal (sizeof - 1 keeps embedded NULs). */
#define PARSE(lit, out) pv_json_parse(a, (lit), sizeof(lit) - 1, (out), &err)

/* Parses s[0..len) expecting success; returns the root. */
static struct json_object *
ok(const char *s, size_t len)
{
	struct json_object *o = NULL;

	pv_err_clear(&err);
	ck_assert_msg(pv_json_parse(a, s, len, &o, &err) == 0,
	    "refused %.*s: %s", (int)len, s, err.msg);
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(err.code, PV_OK);
	return o;
}

/* Parses s[0..len) expecting PV_E_INVALID with exactly msg. */
static void
bad(const char *s, size_t len, const char *msg)
{
	struct json_object *o = (struct json_object *)&o;

	pv_err_clear(&err);
	ck_assert_msg(pv_json_parse(a, s, len, &o, &err) == -1, "accepted %.*s",
	    (int)len, s);
	ck_assert_ptr_null(o);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_str_eq(err.msg, msg);
}

#define OK(lit)       ok((lit), sizeof(lit) - 1)
#define BAD(lit, msg) bad((lit), sizeof(lit) - 1, (msg))

/* Text of n nested containers: an object root, then objects or arrays,
 * the innermost holding 1.  Returns malloc'd memory. */
static char *
nest(int n, int arrays)
{
	char *s = malloc((size_t)n * 6 + 8), *p = s;
	int i;

	ck_assert_ptr_nonnull(s);
	*p++ = '{';
	for (i = 1; i < n; i++) {
		if (i == 1 || !arrays) {
			memcpy(p, "\"a\":", 4);
			p += 4;
		}
		*p++ = arrays ? '[' : '{';
	}
	if (!arrays || n == 1) {
		memcpy(p, "\"a\":", 4);
		p += 4;
	}
	*p++ = '1';
	for (i = n - 1; i >= 1; i--)
		*p++ = arrays ? ']' : '}';
	*p++ = '}';
	*p = '\0';
	return s;
}

/* Serialises o into a C string for comparisons. */
static const char *
str(struct json_object *o)
{
	const char *s;
	size_t len;

	ck_assert_int_eq(pv_json_to_str(a, o, &s, &len, &err), 0);
	ck_assert_uint_eq(strlen(s), len);
	return s;
}

START_TEST(test_json_parse_accepts_object)
{
	struct json_object *o;

	o = OK("{\"a\":1,\"b\":[true,false,null,\"x\",-0,1.5e3,{}]}");
	ck_assert_str_eq(str(o),
	    "{\"a\":1,\"b\":[true,false,null,\"x\",0,"
	    "1.5e3,{}]}");
	o = OK(" \t\r\n{ \"a\" : { } } \r\n\t ");
	ck_assert_str_eq(str(o), "{\"a\":{}}");
	OK("{}");
	OK("{\"\":\"\"}");
	OK("{\"n\":-1.25E-3,\"m\":0.5,\"k\":1e+2,\"z\":0}");
}
END_TEST

START_TEST(test_json_parse_empty_or_not_object)
{
	struct json_object *o;

	bad("", 0, "request body must be a JSON object");
	bad("   \r\n", 5, "request body must be a JSON object");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_json_parse(a, NULL, 0, &o, &err), -1);
	ck_assert_str_eq(err.msg, "request body must be a JSON object");
	BAD("[]", "request body must be a JSON object");
	BAD("[{\"a\":1}]", "request body must be a JSON object");
	BAD("\"a\"", "request body must be a JSON object");
	BAD("1", "request body must be a JSON object");
	BAD("true", "request body must be a JSON object");
	BAD("null", "request body must be a JSON object");
	BAD("\xef\xbb\xbf{}", "request body must be a JSON object");
}
END_TEST

START_TEST(test_json_parse_refuses_trailing_bytes)
{
	BAD("{} x",
	    "request body is not valid JSON: unexpected data after "
	    "the object at byte 3");
	BAD("{}{}",
	    "request body is not valid JSON: unexpected data after "
	    "the object at byte 2");
	BAD("{},",
	    "request body is not valid JSON: unexpected data after "
	    "the object at byte 2");
	BAD("{}\0",
	    "request body is not valid JSON: unexpected data after "
	    "the object at byte 2");
	BAD("{}\n\"a\"",
	    "request body is not valid JSON: unexpected data "
	    "after the object at byte 3");
	BAD("{}\f",
	    "request body is not valid JSON: unexpected data after "
	    "the object at byte 2");
	OK("{} \t\r\n");
}
END_TEST

START_TEST(test_json_parse_refuses_bad_syntax)
{
	BAD("{\"a\":1",
	    "request body is not valid JSON: unexpected end of "
	    "input at byte 6");
	BAD("{\"a\":\"x",
	    "request body is not valid JSON: unexpected end of "
	    "input at byte 7");
	BAD("{\"a\":01}",
	    "request body is not valid JSON: invalid number at "
	    "byte 5");
	BAD("{\"a\":-01}",
	    "request body is not valid JSON: invalid number at "
	    "byte 5");
	BAD("{\"a\":00}",
	    "request body is not valid JSON: invalid number at "
	    "byte 5");
	BAD("{\"a\":1.}",
	    "request body is not valid JSON: invalid number at "
	    "byte 5");
	BAD("{\"a\":.5}",
	    "request body is not valid JSON: unexpected "
	    "character at byte 5");
	BAD("{\"a\":+1}",
	    "request body is not valid JSON: unexpected "
	    "character at byte 5");
	BAD("{\"a\":-}",
	    "request body is not valid JSON: invalid number at "
	    "byte 5");
	BAD("{\"a\":1e}",
	    "request body is not valid JSON: invalid number at "
	    "byte 5");
	BAD("{\"a\":0x10}",
	    "request body is not valid JSON: invalid number "
	    "at byte 5");
	BAD("{\"a\":NaN}",
	    "request body is not valid JSON: invalid literal "
	    "at byte 5");
	BAD("{\"a\":Infinity}",
	    "request body is not valid JSON: invalid "
	    "literal at byte 5");
	BAD("{\"a\":-Infinity}",
	    "request body is not valid JSON: invalid "
	    "number at byte 5");
	BAD("{\"a\":True}",
	    "request body is not valid JSON: invalid literal "
	    "at byte 5");
	BAD("{\"a\":nul}",
	    "request body is not valid JSON: invalid literal "
	    "at byte 5");
	BAD("{'a':1}",
	    "request body is not valid JSON: unexpected character "
	    "at byte 1");
	BAD("{\"a\":1,}",
	    "request body is not valid JSON: unexpected "
	    "character at byte 7");
	BAD("{\"a\" 1}",
	    "request body is not valid JSON: object property "
	    "name separator ':' expected at byte 5");
	BAD("{\"a\":[1 2]}",
	    "request body is not valid JSON: array value "
	    "separator ',' expected at byte 8");
	BAD("{\"a\":1]",
	    "request body is not valid JSON: object value "
	    "separator ',' expected at byte 6");
	BAD("{/*c*/}",
	    "request body is not valid JSON: unexpected character "
	    "at byte 1");
	BAD("{\"a\":\"\\x\"}",
	    "request body is not valid JSON: invalid "
	    "escape in string at byte 6");
	BAD("{\"a\":\"\\u12G4\"}",
	    "request body is not valid JSON: invalid "
	    "\\u escape at byte 6");
	/* The earlier problem wins: json-c's ':' before the lexer's NaN. */
	BAD("{\"a\" 1,\"b\":NaN}",
	    "request body is not valid JSON: object "
	    "property name separator ':' expected at "
	    "byte 5");
	BAD("{\"a\" NaN}",
	    "request body is not valid JSON: invalid literal "
	    "at byte 5");
}
END_TEST

START_TEST(test_json_parse_refuses_control_characters)
{
	struct json_object *o;
	const char *s;

	BAD("{\"a\":\"x\ty\"}",
	    "request body is not valid JSON: control "
	    "character in string at byte 7");
	BAD("{\"a\":\"x\x01\"}",
	    "request body is not valid JSON: control "
	    "character in string at byte 7");
	BAD("{\"a\":\"x\0y\"}",
	    "request body is not valid JSON: control "
	    "character in string at byte 7");
	BAD("{\"a\tb\":1}",
	    "request body is not valid JSON: control "
	    "character in string at byte 3");
	/* Escaped, they are fine. */
	o = OK("{\"a\":\"x\\ty\\n\\u0001\"}");
	ck_assert_int_eq(pv_json_str(o, "a", 0, 10, &s, &err), 0);
	ck_assert_str_eq(s, "x\ty\n\x01");
}
END_TEST

START_TEST(test_json_parse_refuses_bad_utf8)
{
	BAD("{\"a\":\"\xc0\x80\"}",
	    "request body is not valid JSON: invalid "
	    "UTF-8 at byte 6");
	BAD("{\"a\":\"\xe0\x80\xaf\"}",
	    "request body is not valid JSON: "
	    "invalid UTF-8 at byte 6");
	BAD("{\"a\":\"x\x80\"}",
	    "request body is not valid JSON: invalid "
	    "UTF-8 at byte 7");
	BAD("{\"a\":\"\xed\xa0\x80\"}",
	    "request body is not valid JSON: "
	    "invalid UTF-8 at byte 6");
	BAD("{\"a\":\"\xf4\x90\x80\x80\"}",
	    "request body is not valid JSON: "
	    "invalid UTF-8 at byte 6");
	BAD("{\"a\":\"\xc3\"}",
	    "request body is not valid JSON: invalid "
	    "UTF-8 at byte 6");
	BAD("{\"\xff\":1}",
	    "request body is not valid JSON: invalid UTF-8 at "
	    "byte 2");
	BAD("{\"a\":1\xc3\xa9}",
	    "request body is not valid JSON: "
	    "unexpected character at byte 6");
	BAD("{\"a\":\xc3\xa9}",
	    "request body is not valid JSON: unexpected "
	    "character at byte 5");
	BAD("{\"a\":\x80}",
	    "request body is not valid JSON: invalid UTF-8 at "
	    "byte 5");
}
END_TEST

START_TEST(test_json_parse_refuses_unpaired_surrogates)
{
	struct json_object *o;
	const char *s;

	BAD("{\"a\":\"\\ud800\"}",
	    "request body is not valid JSON: unpaired "
	    "UTF-16 surrogate in \\u escape at byte 6");
	BAD("{\"a\":\"\\udc00\"}",
	    "request body is not valid JSON: unpaired "
	    "UTF-16 surrogate in \\u escape at byte 6");
	BAD("{\"a\":\"\\ud800\\u0041\"}",
	    "request body is not valid JSON: "
	    "unpaired UTF-16 surrogate in \\u "
	    "escape at byte 6");
	BAD("{\"a\":\"x\\uD83Dy\"}",
	    "request body is not valid JSON: "
	    "unpaired UTF-16 surrogate in \\u escape "
	    "at byte 7");
	BAD("{\"\\ud800\":1}",
	    "request body is not valid JSON: unpaired "
	    "UTF-16 surrogate in \\u escape at byte 2");
	BAD("{\"a\":\"\\ud800",
	    "request body is not valid JSON: unexpected "
	    "end of input at byte 12");
	o = OK("{\"a\":\"\\ud83d\\ude00\\u00e9\\u20AC\"}");
	ck_assert_int_eq(pv_json_str(o, "a", 0, 20, &s, &err), 0);
	ck_assert_str_eq(s, "\xf0\x9f\x98\x80\xc3\xa9\xe2\x82\xac");
	o = OK("{\"a\":\"\xf0\x9f\x98\x80 caf\xc3\xa9\"}");
	ck_assert_str_eq(str(o), "{\"a\":\"\xf0\x9f\x98\x80 caf\xc3\xa9\"}");
}
END_TEST

START_TEST(test_json_parse_depth_16_ok_17_refused)
{
	char *s;

	s = nest(16, 0);
	ok(s, strlen(s));
	free(s);
	s = nest(16, 1);
	ok(s, strlen(s));
	free(s);
	s = nest(17, 0);
	bad(s, strlen(s),
	    "request body has nesting deeper than 16 levels at "
	    "byte 80");
	free(s);
	s = nest(17, 1);
	bad(s, strlen(s),
	    "request body has nesting deeper than 16 levels at "
	    "byte 20");
	free(s);
	s = nest(200, 1);
	bad(s, strlen(s),
	    "request body has nesting deeper than 16 levels at "
	    "byte 20");
	free(s);
	/* 16 levels of empty arrays under the root are 17. */
	BAD("{\"a\":[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]}",
	    "request body has nesting deeper than 16 levels at byte 20");
	OK("{\"a\":[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]}");
}
END_TEST

START_TEST(test_json_parse_caps_containers)
{
	size_t n = PV_JSON_MAX_CONTAINERS, i;
	char *s = malloc(n * 3 + 16), *p = s;
	struct json_object *o;

	/* Root and array are 2 containers; n - 2 objects fill the cap. */
	ck_assert_ptr_nonnull(s);
	memcpy(p, "{\"a\":[", 6);
	p += 6;
	for (i = 0; i < n - 2; i++) {
		memcpy(p, "{},", 3);
		p += 3;
	}
	memcpy(p - 1, "]}", 3);
	o = ok(s, strlen(s));
	ck_assert_uint_eq(json_object_array_length(
	                      json_object_object_get(o, "a")),
	    n - 2);
	memcpy(p - 1, ",{}]}", 6);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_json_parse(a, s, strlen(s), &o, &err), -1);
	ck_assert_int_eq(err.code, PV_E_TOOBIG);
	ck_assert_str_eq(err.msg,
	    "request body has more than 20000 JSON objects and arrays");
	free(s);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_json_parse(a, "{}", (size_t)INT_MAX + 1, &o, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_TOOBIG);
}
END_TEST

START_TEST(test_json_parse_refuses_duplicate_keys)
{
	BAD("{\"a\":1,\"a\":2}", "duplicate key \"a\"");
	ck_assert_str_eq(err.field, "a");
	BAD("{\"a\":1,\"b\":2,\"a\":1}", "duplicate key \"a\"");
	/* Escaped spellings of the same key. */
	BAD("{\"a\":1,\"\\u0061\":2}", "duplicate key \"a\"");
	BAD("{\"/\":1,\"\\/\":2}", "duplicate key \"/\"");
	BAD("{\"caf\xc3\xa9\":1,\"caf\\u00E9\":2}",
	    "duplicate key \"caf\xc3\xa9\"");
	BAD("{\"\xf0\x9f\x98\x80\":1,\"\\ud83d\\ude00\":2}",
	    "duplicate key \"\xf0\x9f\x98\x80\"");
	BAD("{\"a\\nb\":1,\"a\\u000ab\":2}", "duplicate key \"a\nb\"");
	/* Nested, with the path in err->field. */
	BAD("{\"x\":{\"b\":1,\"b\":2}}", "duplicate key \"b\"");
	ck_assert_str_eq(err.field, "x.b");
	BAD("{\"items\":[{\"q\":1},{\"p\":0,\"q\":1,\"q\":2}]}",
	    "duplicate key \"q\"");
	ck_assert_str_eq(err.field, "items[1].q");
	BAD("{\"s\":{\"t\":[[{\"u\":1,\"u\":1}]]}}", "duplicate key \"u\"");
	ck_assert_str_eq(err.field, "s.t[0][0].u");
	/* A duplicate whose first value held objects json-c dropped. */
	BAD("{\"a\":{\"x\":{\"y\":1}},\"a\":{\"z\":1}}", "duplicate key \"a\"");
	ck_assert_str_eq(err.field, "a");
	/* A later object is found after earlier, clean ones. */
	BAD("{\"p\":{\"q\":1},\"r\":[{},{\"k\":[]}],\"s\":{\"t\":1,\"t\":2}}",
	    "duplicate key \"t\"");
	ck_assert_str_eq(err.field, "s.t");
	/* The first object (by opening brace) with a duplicate is named. */
	BAD("{\"a\":{\"b\":1,\"b\":2},\"c\":1,\"c\":2}", "duplicate key \"c\"");
	BAD("{\"c\":{\"b\":1,\"b\":2},\"d\":1}", "duplicate key \"b\"");
	ck_assert_str_eq(err.field, "c.b");
}
END_TEST

START_TEST(test_json_parse_allows_distinct_keys)
{
	OK("{\"a\":{\"a\":{\"a\":1}}}");
	OK("{\"l\":[{\"a\":1},{\"a\":1}],\"a\":1}");
	OK("{\"a\\\"b\":1,\"a\\\\b\":2,\"a\":3,\"A\":4,\"a \":5}");
	OK("{\"\\u00e9\":1,\"e\\u0301\":2}");
}
END_TEST

START_TEST(test_json_parse_refuses_nul_in_key)
{
	BAD("{\"a\\u0000b\":1}",
	    "request body has an object key with "
	    "\\u0000 at byte 1");
	BAD("{\"x\":{\"a\\u0000\":1,\"a\\u0000c\":2}}",
	    "request body has an object key with \\u0000 at byte 6");
	/* In a value it parses; the getters refuse it. */
	OK("{\"a\":\"x\\u0000y\",\"b\":[\"\\u0000\"]}");
}
END_TEST

START_TEST(test_json_parse_fail_after_each_allocation)
{
	static const char doc[] =
	    "{\"a\":[{\"b\":1},{\"c\":[2,3]}],\"d\":\"e\"}";
	static const char dup[] = "{\"a\":[{\"b\":1},{\"c\":2,\"c\":3}]}";
	struct json_object *o;
	long n;
	int rc;

	for (n = 0;; n++) {
		pv_err_clear(&err);
		pv_arena_reset(a);
		pv_arena_fail_after(a, n);
		if ((rc = PARSE(doc, &o)) == 0)
			break;
		ck_assert_int_eq(err.code, PV_E_NOMEM);
		ck_assert_ptr_null(o);
	}
	ck_assert_int_ge(n, 2);
	ck_assert_int_eq(json_object_object_length(o), 2);
	/* The error path allocates too: it must fail cleanly as well. */
	for (n = 0;; n++) {
		pv_err_clear(&err);
		pv_arena_reset(a);
		pv_arena_fail_after(a, n);
		ck_assert_int_eq(PARSE(dup, &o), -1);
		if (err.code != PV_E_NOMEM)
			break;
	}
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_str_eq(err.msg, "duplicate key \"c\"");
	ck_assert_str_eq(err.field, "a[1].c");
	ck_assert_int_ge(n, 3);
	pv_arena_fail_after(a, -1);
}
END_TEST

/* Exactly one error, about field, saying msg. */
#define ck_invalid(f, m) \
	do { \
		ck_assert_int_eq(err.code, PV_E_INVALID); \
		ck_assert_str_eq(err.field, (f)); \
		ck_assert_str_eq(err.msg, (m)); \
		pv_err_clear(&err); \
	} while (0)

START_TEST(test_json_str_checks_type_and_length)
{
	struct json_object *o;
	const char *s;

	o = OK("{\"s\":\"hello\",\"e\":\"\",\"n\":null,\"i\":5,\"z\":"
	       "\"a\\u0000b\","
	       "\"u\":\"\\u00e9\"}");
	ck_assert_int_eq(pv_json_str(o, "s", 1, 5, &s, &err), 0);
	ck_assert_str_eq(s, "hello");
	ck_assert_int_eq(pv_json_str(o, "e", 0, 5, &s, &err), 0);
	ck_assert_str_eq(s, "");
	ck_assert_int_eq(pv_json_str(o, "u", 2, 2, &s, &err), 0);
	ck_assert_int_eq(err.code, PV_OK);
	ck_assert_int_eq(pv_json_str(o, "s", 1, 4, &s, &err), -1);
	ck_assert_ptr_null(s);
	ck_invalid("s", "\"s\" must be at most 4 bytes long");
	ck_assert_int_eq(pv_json_str(o, "s", 6, 9, &s, &err), -1);
	ck_invalid("s", "\"s\" must be at least 6 bytes long");
	ck_assert_int_eq(pv_json_str(o, "e", 1, 9, &s, &err), -1);
	ck_invalid("e", "\"e\" must not be empty");
	ck_assert_int_eq(pv_json_str(o, "x", 1, 9, &s, &err), -1);
	ck_invalid("x", "\"x\" is required");
	ck_assert_int_eq(pv_json_str(o, "n", 1, 9, &s, &err), -1);
	ck_invalid("n", "\"n\" must be a string, not null");
	ck_assert_int_eq(pv_json_str(o, "i", 1, 9, &s, &err), -1);
	ck_invalid("i", "\"i\" must be a string, not an integer");
	ck_assert_int_eq(pv_json_str(o, "z", 1, 9, &s, &err), -1);
	ck_invalid("z", "\"z\" must not contain NUL characters");
}
END_TEST

START_TEST(test_json_str_opt_absent_or_null)
{
	struct json_object *o;
	const char *s = "stale";

	o = OK("{\"n\":null,\"s\":\"v\",\"i\":[]}");
	ck_assert_int_eq(pv_json_str_opt(o, "x", 1, 9, &s, &err), 0);
	ck_assert_ptr_null(s);
	s = "stale";
	ck_assert_int_eq(pv_json_str_opt(o, "n", 1, 9, &s, &err), 0);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(pv_json_str_opt(o, "s", 1, 9, &s, &err), 0);
	ck_assert_str_eq(s, "v");
	ck_assert_int_eq(pv_json_str_opt(o, "i", 1, 9, &s, &err), -1);
	ck_invalid("i", "\"i\" must be a string, not an array");
	ck_assert_int_eq(pv_json_str_opt(o, "s", 2, 9, &s, &err), -1);
	ck_invalid("s", "\"s\" must be at least 2 bytes long");
}
END_TEST

START_TEST(test_json_int_refuses_doubles_and_strings)
{
	struct json_object *o;
	int64_t v = 0;

	o = OK("{\"i\":7,\"f\":1.0,\"e\":1e3,\"s\":\"7\",\"b\":true,\"n\":null,"
	       "\"neg\":-7,\"z\":-0}");
	ck_assert_int_eq(pv_json_int(o, "i", 1, 10, &v, &err), 0);
	ck_assert_int_eq(v, 7);
	ck_assert_int_eq(pv_json_int(o, "neg", -10, 10, &v, &err), 0);
	ck_assert_int_eq(v, -7);
	ck_assert_int_eq(pv_json_int(o, "z", 0, 0, &v, &err), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(pv_json_int(o, "f", 0, 10, &v, &err), -1);
	ck_invalid("f",
	    "\"f\" must be an integer without a fraction or "
	    "exponent");
	ck_assert_int_eq(pv_json_int(o, "e", 0, 10000, &v, &err), -1);
	ck_invalid("e",
	    "\"e\" must be an integer without a fraction or "
	    "exponent");
	ck_assert_int_eq(pv_json_int(o, "s", 0, 10, &v, &err), -1);
	ck_invalid("s", "\"s\" must be an integer, not a string");
	ck_assert_int_eq(pv_json_int(o, "b", 0, 10, &v, &err), -1);
	ck_invalid("b", "\"b\" must be an integer, not a boolean");
	ck_assert_int_eq(pv_json_int(o, "n", 0, 10, &v, &err), -1);
	ck_invalid("n", "\"n\" must be an integer, not null");
	ck_assert_int_eq(pv_json_int(o, "missing", 0, 10, &v, &err), -1);
	ck_invalid("missing", "\"missing\" is required");
	ck_assert_int_eq(pv_json_int(o, "i", 8, 10, &v, &err), -1);
	ck_invalid("i", "\"i\" must be between 8 and 10");
	ck_assert_int_eq(pv_json_int(o, "i", 1, 6, &v, &err), -1);
	ck_invalid("i", "\"i\" must be between 1 and 6");
	ck_assert_int_eq(pv_json_int(o, "neg", 0, INT64_MAX, &v, &err), -1);
	ck_invalid("neg", "\"neg\" must be at least 0");
}
END_TEST

START_TEST(test_json_int_range_and_overflow)
{
	struct json_object *o;
	int64_t v = 0;

	o = OK("{\"t\":1000000000000,\"big\":1000000000000000000000000000000,"
	       "\"nbig\":-1000000000000000000000000000000,"
	       "\"u\":9223372036854775808,\"umax\":18446744073709551615,"
	       "\"max\":9223372036854775807,\"max1\":9223372036854775806,"
	       "\"min\":-9223372036854775808,\"min1\":-9223372036854775807}");
	ck_assert_int_eq(pv_json_int(o, "t", 0, INT64_MAX, &v, &err), 0);
	ck_assert(v == 1000000000000LL);
	ck_assert_int_eq(pv_json_int(o, "t", 0, 999999999999LL, &v, &err), -1);
	ck_invalid("t", "\"t\" must be between 0 and 999999999999");
	/* json-c clamps 10^30 to 2^64-1: refused, never clamped. */
	ck_assert_int_eq(pv_json_int(o, "big", 0, INT64_MAX, &v, &err), -1);
	ck_invalid("big", "\"big\" is too large");
	ck_assert_int_eq(pv_json_int(o, "big", INT64_MIN, INT64_MAX, &v, &err),
	    -1);
	ck_invalid("big", "\"big\" is too large");
	ck_assert_int_eq(pv_json_int(o, "big", 1, 1000, &v, &err), -1);
	ck_invalid("big", "\"big\" must be between 1 and 1000");
	ck_assert_int_eq(pv_json_int(o, "nbig", INT64_MIN, 0, &v, &err), -1);
	ck_invalid("nbig", "\"nbig\" is too small");
	ck_assert_int_eq(pv_json_int(o, "u", 0, INT64_MAX, &v, &err), -1);
	ck_invalid("u", "\"u\" is too large");
	ck_assert_int_eq(pv_json_int(o, "umax", 0, INT64_MAX, &v, &err), -1);
	ck_invalid("umax", "\"umax\" is too large");
	/* The extremes are indistinguishable from clamping: refused. */
	ck_assert_int_eq(pv_json_int(o, "max", 0, INT64_MAX, &v, &err), -1);
	ck_invalid("max", "\"max\" is too large");
	ck_assert_int_eq(pv_json_int(o, "min", INT64_MIN, 0, &v, &err), -1);
	ck_invalid("min", "\"min\" is too small");
	ck_assert_int_eq(pv_json_int(o, "max1", 0, INT64_MAX, &v, &err), 0);
	ck_assert(v == INT64_MAX - 1);
	ck_assert_int_eq(pv_json_int(o, "min1", INT64_MIN, 0, &v, &err), 0);
	ck_assert(v == INT64_MIN + 1);
	ck_assert_int_eq(err.code, PV_OK);
}
END_TEST

START_TEST(test_json_int_opt_default)
{
	struct json_object *o;
	int64_t v = 0;

	o = OK("{\"limit\":50,\"offset\":null,\"bad\":\"1\"}");
	ck_assert_int_eq(pv_json_int_opt(o, "limit", 1, 100, 20, &v, &err), 0);
	ck_assert_int_eq(v, 50);
	ck_assert_int_eq(pv_json_int_opt(o, "offset", 0, 100, 0, &v, &err), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(pv_json_int_opt(o, "x", 1, 100, -1, &v, &err), 0);
	ck_assert_int_eq(v, -1);
	ck_assert_int_eq(pv_json_int_opt(o, "limit", 1, 10, 20, &v, &err), -1);
	ck_invalid("limit", "\"limit\" must be between 1 and 10");
	ck_assert_int_eq(pv_json_int_opt(o, "bad", 1, 10, 20, &v, &err), -1);
	ck_invalid("bad", "\"bad\" must be an integer, not a string");
}
END_TEST

START_TEST(test_json_bool_only_true_false)
{
	struct json_object *o;
	bool b = false;

	o = OK("{\"t\":true,\"f\":false,\"s\":\"true\",\"i\":1,\"n\":null}");
	ck_assert_int_eq(pv_json_bool(o, "t", &b, &err), 0);
	ck_assert(b);
	ck_assert_int_eq(pv_json_bool(o, "f", &b, &err), 0);
	ck_assert(!b);
	ck_assert_int_eq(pv_json_bool(o, "s", &b, &err), -1);
	ck_invalid("s", "\"s\" must be true or false, not a string");
	ck_assert_int_eq(pv_json_bool(o, "i", &b, &err), -1);
	ck_invalid("i", "\"i\" must be true or false, not an integer");
	ck_assert_int_eq(pv_json_bool(o, "n", &b, &err), -1);
	ck_invalid("n", "\"n\" must be true or false, not null");
	ck_assert_int_eq(pv_json_bool(o, "x", &b, &err), -1);
	ck_invalid("x", "\"x\" is required");
	ck_assert_int_eq(pv_json_bool_opt(o, "x", true, &b, &err), 0);
	ck_assert(b);
	ck_assert_int_eq(pv_json_bool_opt(o, "n", false, &b, &err), 0);
	ck_assert(!b);
	ck_assert_int_eq(pv_json_bool_opt(o, "t", false, &b, &err), 0);
	ck_assert(b);
	ck_assert_int_eq(pv_json_bool_opt(o, "i", false, &b, &err), -1);
	ck_invalid("i", "\"i\" must be true or false, not an integer");
}
END_TEST

START_TEST(test_json_obj_and_arr_getters)
{
	struct json_object *o, *v;

	o = OK(
	    "{\"o\":{\"k\":1},\"a\":[1,2,3],\"e\":[],\"n\":null,\"s\":\"x\"}");
	ck_assert_int_eq(pv_json_obj(o, "o", &v, &err), 0);
	ck_assert(json_object_is_type(v, json_type_object));
	ck_assert_int_eq(pv_json_obj(o, "a", &v, &err), -1);
	ck_assert_ptr_null(v);
	ck_invalid("a", "\"a\" must be an object, not an array");
	ck_assert_int_eq(pv_json_obj(o, "x", &v, &err), -1);
	ck_invalid("x", "\"x\" is required");
	ck_assert_int_eq(pv_json_obj_opt(o, "x", &v, &err), 0);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(pv_json_obj_opt(o, "n", &v, &err), 0);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(pv_json_obj_opt(o, "o", &v, &err), 0);
	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(pv_json_obj_opt(o, "s", &v, &err), -1);
	ck_invalid("s", "\"s\" must be an object, not a string");

	ck_assert_int_eq(pv_json_arr(o, "a", 1, 3, &v, &err), 0);
	ck_assert_uint_eq(json_object_array_length(v), 3);
	ck_assert_int_eq(pv_json_arr(o, "a", 1, 2, &v, &err), -1);
	ck_invalid("a", "\"a\" must have at most 2 elements");
	ck_assert_int_eq(pv_json_arr(o, "a", 4, 9, &v, &err), -1);
	ck_invalid("a", "\"a\" must have at least 4 elements");
	ck_assert_int_eq(pv_json_arr(o, "e", 1, 9, &v, &err), -1);
	ck_invalid("e", "\"e\" must not be empty");
	ck_assert_int_eq(pv_json_arr(o, "e", 0, 9, &v, &err), 0);
	ck_assert_int_eq(pv_json_arr(o, "o", 0, 9, &v, &err), -1);
	ck_invalid("o", "\"o\" must be an array, not an object");
	ck_assert_int_eq(pv_json_arr_opt(o, "x", 1, 9, &v, &err), 0);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(pv_json_arr_opt(o, "n", 1, 9, &v, &err), 0);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(pv_json_arr_opt(o, "e", 1, 9, &v, &err), -1);
	ck_invalid("e", "\"e\" must not be empty");
}
END_TEST

START_TEST(test_json_only_keys_names_unknown)
{
	static const char *const keys[] = { "merchant_id", "items", "color",
		NULL };
	struct json_object *o;
	char body[200];
	int n;

	o = OK("{\"merchant_id\":\"m\",\"items\":[]}");
	ck_assert_int_eq(pv_json_only_keys(o, keys, &err), 0);
	o = OK("{}");
	ck_assert_int_eq(pv_json_only_keys(o, keys, &err), 0);
	o = OK("{\"merchant_id\":\"m\",\"colour\":\"red\",\"size\":1}");
	ck_assert_int_eq(pv_json_only_keys(o, keys, &err), -1);
	ck_invalid("colour", "unknown field \"colour\"");
	o = OK("{\"Items\":[]}");
	ck_assert_int_eq(pv_json_only_keys(o, keys, &err), -1);
	ck_invalid("Items", "unknown field \"Items\"");
	/* A long key is clipped to fit err->field, on a character boundary. */
	n = snprintf(body, sizeof(body), "{\"%s\xc3\xa9\":1}",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	ck_assert_int_gt(n, 0);
	o = ok(body, (size_t)n);
	ck_assert_int_eq(pv_json_only_keys(o, keys, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_uint_eq(strlen(err.field), 62);
	ck_assert(pv_valid_utf8(err.msg, strlen(err.msg)));
}
END_TEST

/* One line item: the shape a handler would validate. */
static int
read_item(struct json_object *it, struct pv_err *e)
{
	static const char *const keys[] = { "product_id", "quantity", NULL };
	const char *id;
	int64_t q;

	if (pv_json_only_keys(it, keys, e) ||
	    pv_json_str(it, "product_id", 1, 64, &id, e) ||
	    pv_json_int(it, "quantity", 1, 1000, &q, e))
		return -1;
	return 0;
}

static int
read_items(struct json_object *body, struct pv_err *e)
{
	struct json_object *items, *it;
	size_t i;

	if (pv_json_arr(body, "items", 1, 100, &items, e) == -1)
		return -1;
	for (i = 0; i < json_object_array_length(items); i++)
		if (pv_json_at_obj(items, i, &it, e) == -1 ||
		    read_item(it, e) == -1)
			return pv_json_err_prefix(e, "items[%zu]", i);
	return 0;
}

START_TEST(test_json_err_prefix_names_nested_path)
{
	struct json_object *o, *ship;
	const char *s;

	o = OK("{\"items\":[{\"product_id\":\"p\",\"quantity\":1},"
	       "{\"product_id\":\"q\",\"quantity\":2},"
	       "{\"product_id\":\"r\",\"quantity\":0}]}");
	ck_assert_int_eq(read_items(o, &err), -1);
	ck_invalid("items[2].quantity",
	    "\"items[2].quantity\" must be between 1 and 1000");
	o = OK("{\"items\":[{\"product_id\":\"p\",\"quantity\":1},7]}");
	ck_assert_int_eq(read_items(o, &err), -1);
	ck_invalid("items[1]",
	    "\"items[1]\" must be an object, not an integer");
	o = OK("{\"items\":[{\"product_id\":\"p\",\"quantity\":1,\"qty\":1}]}");
	ck_assert_int_eq(read_items(o, &err), -1);
	ck_invalid("items[0].qty", "unknown field \"items[0].qty\"");
	o = OK("{\"items\":[{\"quantity\":1}]}");
	ck_assert_int_eq(read_items(o, &err), -1);
	ck_invalid("items[0].product_id",
	    "\"items[0].product_id\" is required");
	o = OK("{\"items\":[{\"product_id\":\"p\",\"quantity\":1}]}");
	ck_assert_int_eq(read_items(o, &err), 0);

	/* Objects, and two levels of prefix. */
	o = OK("{\"shipping_address\":{\"city\":\"\"}}");
	ck_assert_int_eq(pv_json_obj(o, "shipping_address", &ship, &err), 0);
	ck_assert_int_eq(pv_json_str(ship, "city", 1, 100, &s, &err), -1);
	ck_assert_int_eq(pv_json_err_prefix(&err, "shipping_address"), -1);
	ck_assert_int_eq(pv_json_err_prefix(&err, "order"), -1);
	ck_invalid("order.shipping_address.city",
	    "\"order.shipping_address.city\" must not be empty");
}
END_TEST

START_TEST(test_json_err_prefix_leaves_others_alone)
{
	int64_t v;
	struct json_object *o;

	/* Clear err: nothing to do. */
	ck_assert_int_eq(pv_json_err_prefix(&err, "x"), -1);
	ck_assert_int_eq(err.code, PV_OK);
	/* No field: memory, syntax. */
	PV_ERR(&err, PV_E_NOMEM, NULL, "out of memory");
	pv_json_err_prefix(&err, "items[%d]", 1);
	ck_assert_str_eq(err.field, "");
	ck_assert_str_eq(err.msg, "out of memory");
	pv_err_clear(&err);
	/* Element of an element: "[1]" joins without a dot. */
	o = OK("{\"m\":[[1,2],[3,\"x\"]]}");
	ck_assert_int_eq(pv_json_at_int(json_object_array_get_idx(
	                                    json_object_object_get(o, "m"), 1),
	                     1, 0, 9, &v, &err),
	    -1);
	pv_json_err_prefix(&err, "[%d]", 1);
	pv_json_err_prefix(&err, "m[%d]", 1);
	ck_invalid("m[1][1]", "\"m[1][1]\" must be an integer, not a string");
	/* Elements out of range are our bug, not the client's. */
	ck_assert_int_eq(pv_json_at_int(json_object_object_get(o, "m"), 5, 0, 9,
	                     &v, &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
}
END_TEST

/* A key of 61 ASCII bytes and one 3-byte character: 64 bytes. */
#define LONGKEY \
	"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\xe2" \
	"\x82\xac"
/* 56 ASCII bytes and a 3-byte character: "abcd." puts it at 61..63. */
#define MIDKEY \
	"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\xe2\x82\xac"

START_TEST(test_json_err_prefix_clips_on_char_boundary)
{
	struct json_object *o, *v;

	o = OK("{\"" LONGKEY "\":1,\"" MIDKEY "\":2}");
	ck_assert_int_eq(pv_json_obj(o, LONGKEY, &v, &err), -1);
	ck_assert_uint_eq(strlen(err.field), 61);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_json_obj(o, MIDKEY, &v, &err), -1);
	ck_assert_uint_eq(strlen(err.field), 59);
	pv_json_err_prefix(&err, "abcd");
	ck_assert(pv_valid_utf8(err.field, strlen(err.field)));
	ck_assert(pv_valid_utf8(err.msg, strlen(err.msg)));
	ck_assert_uint_eq(strlen(err.field), 61);
	ck_assert_int_eq(strncmp(err.field, "abcd.kkk", 8), 0);
	ck_assert_int_eq(strncmp(err.msg, "\"abcd.kkk", 9), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "kk\" must be an object"));
	pv_err_clear(&err);
	/* A long prefix made from client data is cut the same way. */
	ck_assert_int_eq(pv_json_obj(o, LONGKEY, &v, &err), -1);
	pv_json_err_prefix(&err, "%s", LONGKEY LONGKEY);
	ck_assert(pv_valid_utf8(err.field, strlen(err.field)));
	ck_assert(pv_valid_utf8(err.msg, strlen(err.msg)));
	pv_err_clear(&err);
	/* And a duplicate deep under long keys. */
	BAD("{\"" LONGKEY "\":{\"" LONGKEY "\":[{\"x\":1,\"x\":2}]}}",
	    "duplicate key \"x\"");
	ck_assert_uint_le(strlen(err.field), sizeof(err.field) - 1);
	ck_assert(pv_valid_utf8(err.field, strlen(err.field)));
	ck_assert_uint_eq(strlen(err.field), 61);
}
END_TEST

START_TEST(test_json_at_readers)
{
	struct json_object *o, *arr, *v;
	const char *s;
	int64_t i;

	o = OK("{\"a\":[\"x\",\"\",3,{},null]}");
	arr = json_object_object_get(o, "a");
	ck_assert_int_eq(pv_json_at_str(arr, 0, 1, 5, &s, &err), 0);
	ck_assert_str_eq(s, "x");
	ck_assert_int_eq(pv_json_at_str(arr, 1, 1, 5, &s, &err), -1);
	ck_invalid("", "value must not be empty");
	ck_assert_int_eq(pv_json_at_int(arr, 2, 0, 5, &i, &err), 0);
	ck_assert_int_eq(i, 3);
	ck_assert_int_eq(pv_json_at_obj(arr, 3, &v, &err), 0);
	ck_assert_int_eq(pv_json_at_obj(arr, 4, &v, &err), -1);
	ck_assert_int_eq(pv_json_err_prefix(&err, "a[%d]", 4), -1);
	ck_invalid("a[4]", "\"a[4]\" must be an object, not null");
}
END_TEST

START_TEST(test_json_build_reply)
{
	struct json_object *r, *pay, *items, *it;
	const char *s;
	size_t len;

	r = pv_json_new_obj(a, &err);
	pay = pv_json_new_obj(a, &err);
	items = pv_json_new_arr(a, &err);
	it = pv_json_new_obj(a, &err);
	pv_json_set_str(r, "status", "success", &err);
	pv_json_set_str(r, "order_id", "ORD_0123456789ABCDEF", &err);
	pv_json_set_int(r, "total_minor", 4800, &err);
	pv_json_set_str(r, "total", "48.00", &err);
	pv_json_set_bool(r, "valid", true, &err);
	pv_json_set_bool(r, "is_partial", false, &err);
	pv_json_set_str(r, "next_cursor", NULL, &err);
	pv_json_set_str(pay, "url", "https://pay.example/a/b", &err);
	pv_json_set_int(pay, "neg", INT64_MIN, &err);
	pv_json_set(r, "payment", pay, &err);
	pv_json_set_str(it, "sku", "\"q\"\n\xc3\xa9<", &err);
	pv_json_push(items, it, &err);
	pv_json_push(items, it, &err); /* shared child */
	pv_json_push_str(items, "s", &err);
	pv_json_push_str(items, NULL, &err);
	pv_json_push_int(items, -1, &err);
	pv_json_push(items, NULL, &err);
	pv_json_set(r, "items", items, &err);
	pv_json_set_strn(r, "bin", "a\0b", 3, &err);
	pv_json_set_int(r, "total_minor", 4801, &err); /* replaces */
	ck_assert_int_eq(pv_json_to_str(a, r, &s, &len, &err), 0);
	ck_assert_str_eq(s,
	    "{\"status\":\"success\",\"order_id\":\"ORD_0123456789ABCDEF\","
	    "\"total_minor\":4801,\"total\":\"48.00\",\"valid\":true,"
	    "\"is_partial\":false,\"next_cursor\":null,"
	    "\"payment\":{\"url\":\"https://pay.example/a/b\","
	    "\"neg\":-9223372036854775808},"
	    "\"items\":[{\"sku\":\"\\\"q\\\"\\n\xc3\xa9<\"},"
	    "{\"sku\":\"\\\"q\\\"\\n\xc3\xa9<\"},\"s\",null,-1,null],"
	    "\"bin\":\"a\\u0000b\"}");
	ck_assert_uint_eq(len, strlen(s));
	ck_assert_int_eq(pv_json_to_str(a, r, &s, NULL, &err), 0);
}
END_TEST

START_TEST(test_json_build_round_trip)
{
	static const char text[] =
	    "{\"a\":[1,-2,{\"b\":\"c\\\"d\\\\e\\u0001\"}],\"f\":null,"
	    "\"g\":true,\"h\":\"\xe2\x82\xac/\\ud83d\\ude00\",\"i\":{},"
	    "\"j\":[],\"k\":\"x\\u0000y\",\"l\":1.50}";
	struct json_object *o, *o2;
	const char *s, *s2;
	size_t len, len2;

	o = OK(text);
	ck_assert_int_eq(pv_json_to_str(a, o, &s, &len, &err), 0);
	ck_assert_str_eq(s,
	    "{\"a\":[1,-2,{\"b\":\"c\\\"d\\\\e\\u0001\"}],"
	    "\"f\":null,\"g\":true,"
	    "\"h\":\"\xe2\x82\xac/\xf0\x9f\x98\x80\",\"i\":{},"
	    "\"j\":[],\"k\":\"x\\u0000y\",\"l\":1.50}");
	o2 = ok(s, len);
	ck_assert_int_eq(pv_json_to_str(a, o2, &s2, &len2, &err), 0);
	ck_assert_uint_eq(len, len2);
	ck_assert_int_eq(memcmp(s, s2, len), 0);
	/* A parsed subtree can go into a reply: it is referenced, not
	 * stolen, so both trees stay valid until the arena resets. */
	o2 = pv_json_new_obj(a, &err);
	pv_json_set(o2, "echo", json_object_object_get(o, "a"), &err);
	ck_assert_str_eq(str(o2),
	    "{\"echo\":[1,-2,{\"b\":\"c\\\"d\\\\e\\u0001\""
	    "}]}");
	ck_assert_str_eq(str(json_object_object_get(o, "a")),
	    "[1,-2,{\"b\":\"c\\\"d\\\\e\\u0001\"}]");
}
END_TEST

START_TEST(test_json_build_sticky_errors)
{
	struct json_object *r, *arr;
	const char *s = "stale";

	/* A failed constructor: every later call is a no-op failure. */
	pv_arena_fail_after(a, 0);
	r = pv_json_new_obj(a, &err);
	ck_assert_ptr_null(r);
	ck_assert_int_eq(err.code, PV_E_NOMEM);
	pv_arena_fail_after(a, -1);
	ck_assert_int_eq(pv_json_set_str(r, "a", "b", &err), -1);
	ck_assert_int_eq(pv_json_set_int(r, "a", 1, &err), -1);
	ck_assert_int_eq(pv_json_set_bool(r, "a", true, &err), -1);
	ck_assert_int_eq(pv_json_set_strn(r, "a", "b", 1, &err), -1);
	ck_assert_int_eq(pv_json_set(r, "a", NULL, &err), -1);
	ck_assert_int_eq(pv_json_push_str(r, "a", &err), -1);
	ck_assert_int_eq(pv_json_push_int(r, 1, &err), -1);
	ck_assert_int_eq(pv_json_push(r, NULL, &err), -1);
	ck_assert_ptr_null(pv_json_new_arr(a, &err));
	ck_assert_int_eq(pv_json_to_str(a, r, &s, NULL, &err), -1);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(err.code, PV_E_NOMEM);
	ck_assert_str_eq(err.msg, "injected allocation failure");

	/* Misuse is our bug: 500, not a crash. */
	pv_err_clear(&err);
	ck_assert_int_eq(pv_json_set_str(NULL, "a", "b", &err), -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
	pv_err_clear(&err);
	arr = pv_json_new_arr(a, &err);
	ck_assert_int_eq(pv_json_set_int(arr, "a", 1, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
	pv_err_clear(&err);
	r = pv_json_new_obj(a, &err);
	ck_assert_int_eq(pv_json_push_int(r, 1, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_json_to_str(a, NULL, &s, NULL, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_json_set_strn(r, "a", "b", (size_t)INT_MAX + 1,
	                     &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_TOOBIG);
}
END_TEST

/* Builds a small reply; 0 or -1 with err set. */
static int
build(const char **out)
{
	struct json_object *r, *arr;

	r = pv_json_new_obj(a, &err);
	arr = pv_json_new_arr(a, &err);
	pv_json_set_str(r, "status", "success", &err);
	pv_json_push_int(arr, 1, &err);
	pv_json_set(r, "list", arr, &err);
	return pv_json_to_str(a, r, out, NULL, &err);
}

START_TEST(test_json_build_fail_after_each_allocation)
{
	const char *s;
	long n;

	for (n = 0;; n++) {
		pv_err_clear(&err);
		pv_arena_reset(a);
		pv_arena_fail_after(a, n);
		if (build(&s) == 0)
			break;
		ck_assert_int_eq(err.code, PV_E_NOMEM);
	}
	ck_assert_int_eq(n, 3);
	ck_assert_str_eq(s, "{\"status\":\"success\",\"list\":[1]}");
	pv_arena_fail_after(a, -1);
}
END_TEST

Suite *
json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_json_parse_accepts_object);
	tcase_add_test(tc, test_json_parse_empty_or_not_object);
	tcase_add_test(tc, test_json_parse_refuses_trailing_bytes);
	tcase_add_test(tc, test_json_parse_refuses_bad_syntax);
	tcase_add_test(tc, test_json_parse_refuses_control_characters);
	tcase_add_test(tc, test_json_parse_refuses_bad_utf8);
	tcase_add_test(tc, test_json_parse_refuses_unpaired_surrogates);
	tcase_add_test(tc, test_json_parse_depth_16_ok_17_refused);
	tcase_add_test(tc, test_json_parse_caps_containers);
	tcase_add_test(tc, test_json_parse_refuses_duplicate_keys);
	tcase_add_test(tc, test_json_parse_allows_distinct_keys);
	tcase_add_test(tc, test_json_parse_refuses_nul_in_key);
	tcase_add_test(tc, test_json_parse_fail_after_each_allocation);
	suite_add_tcase(s, tc);

	tc = tcase_create("get");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_json_str_checks_type_and_length);
	tcase_add_test(tc, test_json_str_opt_absent_or_null);
	tcase_add_test(tc, test_json_int_refuses_doubles_and_strings);
	tcase_add_test(tc, test_json_int_range_and_overflow);
	tcase_add_test(tc, test_json_int_opt_default);
	tcase_add_test(tc, test_json_bool_only_true_false);
	tcase_add_test(tc, test_json_obj_and_arr_getters);
	tcase_add_test(tc, test_json_only_keys_names_unknown);
	tcase_add_test(tc, test_json_at_readers);
	suite_add_tcase(s, tc);

	tc = tcase_create("path");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_json_err_prefix_names_nested_path);
	tcase_add_test(tc, test_json_err_prefix_leaves_others_alone);
	tcase_add_test(tc, test_json_err_prefix_clips_on_char_boundary);
	suite_add_tcase(s, tc);

	tc = tcase_create("build");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_json_build_reply);
	tcase_add_test(tc, test_json_build_round_trip);
	tcase_add_test(tc, test_json_build_sticky_errors);
	tcase_add_test(tc, test_json_build_fail_after_each_allocation);
	suite_add_tcase(s, tc);
	return s;
}
