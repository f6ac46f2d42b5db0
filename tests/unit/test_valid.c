/* Unit tests of pv_valid: integers, booleans, UTF-8, text, e-mail, ids,
 * countries, enumerations and the field-naming message convention. */
#include <stdint.h>
#include <string.h>

#include "pv_valid.h"
#include "pv_test.h"

static struct pv_err err;

static void
setup(void)
{
	pv_err_clear(&err);
}

/* Expects a PV_E_INVALID about field with exactly msg. */
#define ck_invalid(f, m) \
	do { \
		ck_assert_int_eq(err.code, PV_E_INVALID); \
		ck_assert_str_eq(err.field, (f)); \
		ck_assert_str_eq(err.msg, (m)); \
	} while (0)

/* Each string is refused by pv_valid_int64 over the full int64 range. */
static void
int_refused(const char *s)
{
	int64_t v = 42;

	pv_err_clear(&err);
	ck_assert_msg(pv_valid_int64(s, INT64_MIN, INT64_MAX, &v, "n", &err) ==
	        -1,
	    "accepted \"%s\"", s);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_str_eq(err.field, "n");
}

START_TEST(test_valid_int64_accepts_canonical)
{
	int64_t v;

	ck_assert_int_eq(pv_valid_int64("0", 0, 10, &v, "n", &err), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(pv_valid_int64("42", 0, 100, &v, "n", &err), 0);
	ck_assert_int_eq(v, 42);
	ck_assert_int_eq(pv_valid_int64("-17", -20, 0, &v, "n", &err), 0);
	ck_assert_int_eq(v, -17);
	ck_assert_int_eq(pv_valid_int64("9223372036854775807", INT64_MIN,
	                     INT64_MAX, &v, "n", &err),
	    0);
	ck_assert(v == INT64_MAX);
	ck_assert_int_eq(pv_valid_int64("-9223372036854775808", INT64_MIN,
	                     INT64_MAX, &v, "n", &err),
	    0);
	ck_assert(v == INT64_MIN);
	ck_assert_int_eq(err.code, PV_OK);
}
END_TEST

START_TEST(test_valid_int64_refuses_non_canonical)
{
	static const char *const bad[] = { "", "-", "+1", " 1", "1 ", "01",
		"00", "-0", "-01", "1.0", "1e3", "0x10", "12a", "a12", "1_000",
		"１", "--1", "\t1" };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		int_refused(bad[i]);
	pv_err_clear(&err);
	int_refused(NULL);
	ck_assert_str_eq(err.msg, "\"n\" is required");
}
END_TEST

START_TEST(test_valid_int64_detects_overflow)
{
	int64_t v = 7;

	int_refused("9223372036854775808");
	ck_assert_str_eq(err.msg, "\"n\" is too large");
	int_refused("-9223372036854775809");
	ck_assert_str_eq(err.msg, "\"n\" is too small");
	int_refused("99999999999999999999999999999999");
	int_refused("18446744073709551616"); /* 2^64 must not wrap to 0 */
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_int64("18446744073709551617", 0, 100, &v,
	                     "limit", &err),
	    -1);
	ck_invalid("limit", "\"limit\" must be between 0 and 100");
	ck_assert_int_eq(v, 7);
}
END_TEST

START_TEST(test_valid_int64_checks_range)
{
	int64_t v;

	ck_assert_int_eq(pv_valid_int64("101", 1, 100, &v, "limit", &err), -1);
	ck_invalid("limit", "\"limit\" must be between 1 and 100");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_int64("0", 1, INT64_MAX, &v, "offset", &err),
	    -1);
	ck_invalid("offset", "\"offset\" must be at least 1");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_int64("5", INT64_MIN, 4, &v, "x", &err), -1);
	ck_invalid("x", "\"x\" must be at most 4");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_int64("5", 3, 3, &v, "x", &err), -1);
	ck_invalid("x", "\"x\" must be 3");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_int64("365", 1, 365, &v, "days", &err), 0);
	ck_assert_int_eq(v, 365);
}
END_TEST

START_TEST(test_valid_bool_accepts_python_spellings)
{
	static const char *const yes[] = { "true", "True", "TRUE", "1" };
	static const char *const no[] = { "false", "False", "FALSE", "0" };
	bool b;
	size_t i;

	for (i = 0; i < 4; i++) {
		b = false;
		ck_assert_int_eq(pv_valid_bool(yes[i], &b, "f", &err), 0);
		ck_assert(b);
		ck_assert_int_eq(pv_valid_bool(no[i], &b, "f", &err), 0);
		ck_assert(!b);
	}
	ck_assert_int_eq(err.code, PV_OK);
}
END_TEST

START_TEST(test_valid_bool_refuses_others)
{
	static const char *const bad[] = { "", "yes", "no", "tRUE", "2",
		"true ", "on", "-1", "t" };
	bool b;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pv_err_clear(&err);
		ck_assert_int_eq(pv_valid_bool(bad[i], &b, "in_stock", &err),
		    -1);
		ck_invalid("in_stock", "\"in_stock\" must be true or false");
	}
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_bool(NULL, &b, "in_stock", &err), -1);
}
END_TEST

START_TEST(test_valid_utf8_accepts_well_formed)
{
	ck_assert(pv_valid_utf8("", 0));
	ck_assert(pv_valid_utf8("plain", 5));
	ck_assert(pv_valid_utf8("\xc2\x80", 2));         /* U+0080 */
	ck_assert(pv_valid_utf8("caf\xc3\xa9", 5));      /* é */
	ck_assert(pv_valid_utf8("\xe0\xa0\x80", 3));     /* U+0800 */
	ck_assert(pv_valid_utf8("\xed\x9f\xbf", 3));     /* U+D7FF */
	ck_assert(pv_valid_utf8("\xee\x80\x80", 3));     /* U+E000 */
	ck_assert(pv_valid_utf8("\xef\xbf\xbf", 3));     /* U+FFFF */
	ck_assert(pv_valid_utf8("\xf0\x90\x80\x80", 4)); /* U+10000 */
	ck_assert(pv_valid_utf8("\xf0\x9f\x98\x80", 4)); /* emoji */
	ck_assert(pv_valid_utf8("\xf4\x8f\xbf\xbf", 4)); /* U+10FFFF */
	ck_assert(pv_valid_utf8("a\0b", 3));             /* NUL is UTF-8 */
}
END_TEST

START_TEST(test_valid_utf8_refuses_malformed)
{
	ck_assert(!pv_valid_utf8("\x80", 1));             /* lone cont. */
	ck_assert(!pv_valid_utf8("a\xbf", 2));            /* lone cont. */
	ck_assert(!pv_valid_utf8("\xc0\x80", 2));         /* overlong NUL */
	ck_assert(!pv_valid_utf8("\xc1\xbf", 2));         /* overlong */
	ck_assert(!pv_valid_utf8("\xe0\x80\xaf", 3));     /* overlong '/' */
	ck_assert(!pv_valid_utf8("\xe0\x9f\xbf", 3));     /* overlong */
	ck_assert(!pv_valid_utf8("\xf0\x8f\xbf\xbf", 4)); /* overlong */
	ck_assert(!pv_valid_utf8("\xed\xa0\x80", 3));     /* U+D800 */
	ck_assert(!pv_valid_utf8("\xed\xbf\xbf", 3));     /* U+DFFF */
	ck_assert(!pv_valid_utf8("\xf4\x90\x80\x80", 4)); /* U+110000 */
	ck_assert(!pv_valid_utf8("\xf5\x80\x80\x80", 4));
	ck_assert(!pv_valid_utf8("\xf8\x88\x80\x80\x80", 5));
	ck_assert(!pv_valid_utf8("\xfe", 1));
	ck_assert(!pv_valid_utf8("\xff", 1));
	ck_assert(!pv_valid_utf8("\xc3", 1));         /* cut off */
	ck_assert(!pv_valid_utf8("\xe2\x82", 2));     /* cut off */
	ck_assert(!pv_valid_utf8("\xe2\x82\x41", 3)); /* bad cont. */
	ck_assert(!pv_valid_utf8("\xc3\xa9\xa9", 3)); /* extra cont. */
}
END_TEST

START_TEST(test_valid_utf8_clip_keeps_whole_chars)
{
	/* "aé€😀" = 1 + 2 + 3 + 4 bytes. */
	const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";

	ck_assert_uint_eq(pv_valid_utf8_clip(s, 10, 20), 10);
	ck_assert_uint_eq(pv_valid_utf8_clip(s, 10, 10), 10);
	ck_assert_uint_eq(pv_valid_utf8_clip(s, 10, 9), 6);
	ck_assert_uint_eq(pv_valid_utf8_clip(s, 10, 7), 6);
	ck_assert_uint_eq(pv_valid_utf8_clip(s, 10, 6), 6);
	ck_assert_uint_eq(pv_valid_utf8_clip(s, 10, 5), 3);
	ck_assert_uint_eq(pv_valid_utf8_clip(s, 10, 2), 1);
	ck_assert_uint_eq(pv_valid_utf8_clip(s, 10, 1), 1);
	ck_assert_uint_eq(pv_valid_utf8_clip(s, 10, 0), 0);
	ck_assert_uint_eq(pv_valid_utf8_clip("\x80\x80\x80\x80\x80", 5, 4), 4);
}
END_TEST

START_TEST(test_valid_text_accepts_text)
{
	const char *s = "Ship to caf\xc3\xa9, door 2";

	ck_assert_int_eq(pv_valid_text(s, strlen(s), 1, 100, 0, "t", &err), 0);
	ck_assert_int_eq(pv_valid_text("", 0, 0, 10, 0, "t", &err), 0);
	ck_assert_int_eq(pv_valid_text("a\tb\nc\r\nd", 8, 0, 10,
	                     PV_VALID_MULTILINE, "t", &err),
	    0);
	ck_assert_int_eq(err.code, PV_OK);
}
END_TEST

START_TEST(test_valid_text_refuses_controls_and_nul)
{
	static const char *const bad[] = { "a\tb", "a\nb", "a\rb", "a\x01",
		"a\x1b[31m", "a\x7f", "a\xc2\x85", "a\xc2\x9f" };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pv_err_clear(&err);
		ck_assert_int_eq(pv_valid_text(bad[i], strlen(bad[i]), 0, 100,
		                     0, "reason", &err),
		    -1);
		ck_invalid("reason",
		    "\"reason\" must not contain control characters");
	}
	/* Multiline allows tab and newlines but not a bare CR or ESC. */
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_text("a\rb", 3, 0, 10, PV_VALID_MULTILINE,
	                     "reason", &err),
	    -1);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_text("a\r", 2, 0, 10, PV_VALID_MULTILINE,
	                     "reason", &err),
	    -1);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_text("a\x1b", 2, 0, 10, PV_VALID_MULTILINE,
	                     "reason", &err),
	    -1);
	/* An embedded NUL: strlen(s) != len. */
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_text("a\0b", 3, 0, 10, PV_VALID_MULTILINE,
	                     "reason", &err),
	    -1);
	ck_invalid("reason", "\"reason\" must not contain NUL characters");
}
END_TEST

START_TEST(test_valid_text_refuses_bad_utf8_and_length)
{
	ck_assert_int_eq(pv_valid_text("a\xc0\x80", 3, 0, 10, 0, "name", &err),
	    -1);
	ck_invalid("name", "\"name\" must be valid UTF-8");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_text("\xed\xa0\x80", 3, 0, 10, 0, "name",
	                     &err),
	    -1);
	ck_invalid("name", "\"name\" must be valid UTF-8");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_text("", 0, 1, 10, 0, "name", &err), -1);
	ck_invalid("name", "\"name\" must not be empty");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_text("ab", 2, 3, 10, 0, "name", &err), -1);
	ck_invalid("name", "\"name\" must be at least 3 bytes long");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_text("abcd", 4, 0, 3, 0, "name", &err), -1);
	ck_invalid("name", "\"name\" must be at most 3 bytes long");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_text(NULL, 0, 0, 3, 0, "name", &err), -1);
	ck_invalid("name", "\"name\" is required");
}
END_TEST

START_TEST(test_valid_email_accepts_practical)
{
	static const char *const good[] = { "a@b.co",
		"jo.smith+tag@example.com", "x_y-z@mail.example.co.uk",
		"caf\xc3\xa9@exampl\xc3\xa9.fr", "1@2.3" };
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(pv_valid_email(good[i], strlen(good[i]), "e",
		                  &err) == 0,
		    "refused %s", good[i]);
	ck_assert_int_eq(err.code, PV_OK);
}
END_TEST

START_TEST(test_valid_email_refuses_bad)
{
	static const char *const bad[] = { "", "plain", "@b.co", "a@", "a@b",
		"a@@b.co", "a@b@c.co", "a b@c.co", "a@b .co",
		"a@b.co\r\nBcc: x@y.z", "a@b.co\n", "a\t@b.co", ".a@b.co",
		"a.@b.co", "a..b@c.co", "a@.b.co", "a@b.co.", "a@b..co",
		"\"a\"@b.co", "a<b@c.co", "a@[1.2.3.4]", "a,b@c.co",
		"a\xc0\x80@b.co", "a\x7f@b.co" };
	char big[300];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pv_err_clear(&err);
		ck_assert_msg(pv_valid_email(bad[i], strlen(bad[i]),
		                  "customer_email", &err) == -1,
		    "accepted %s", bad[i]);
		ck_assert_int_eq(err.code, PV_E_INVALID);
		ck_assert_str_eq(err.field, "customer_email");
	}
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_email("a@b.co", 6, "e", &err), 0);
	/* NUL inside: strlen != len. */
	ck_assert_int_eq(pv_valid_email("a@b.co\0x", 8, "e", &err), -1);
	/* 65-byte local part, then a 255-byte address. */
	pv_err_clear(&err);
	memset(big, 'a', 65);
	memcpy(big + 65, "@b.co", 6);
	ck_assert_int_eq(pv_valid_email(big, strlen(big), "e", &err), -1);
	pv_err_clear(&err);
	memset(big, 'a', 64);
	big[64] = '@';
	memset(big + 65, 'b', 190);
	memcpy(big + 251, ".com", 5);
	ck_assert_uint_eq(strlen(big), 255);
	ck_assert_int_eq(pv_valid_email(big, strlen(big), "e", &err), -1);
	ck_invalid("e", "\"e\" must be at most 254 bytes long");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_email(big + 1, strlen(big + 1), "e", &err),
	    0);
}
END_TEST

START_TEST(test_valid_id_checks_prefix_and_hex)
{
	ck_assert_int_eq(pv_valid_id("ORD_0123456789ABCDEF", "ORD_", 16,
	                     "order_id", &err),
	    0);
	ck_assert_int_eq(err.code, PV_OK);
	ck_assert_int_eq(pv_valid_id("ORD_0123456789abcdef", "ORD_", 16,
	                     "order_id", &err),
	    -1);
	ck_invalid("order_id",
	    "\"order_id\" must be ORD_ followed by 16 "
	    "uppercase hex digits");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_id("ORD_0123456789ABCDE", "ORD_", 16,
	                     "order_id", &err),
	    -1);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_id("ORD_0123456789ABCDEF0", "ORD_", 16,
	                     "order_id", &err),
	    -1);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_id("PAY_0123456789ABCDEF", "ORD_", 16,
	                     "order_id", &err),
	    -1);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_id("ord_0123456789ABCDEF", "ORD_", 16,
	                     "order_id", &err),
	    -1);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_id("ORD_0123456789ABCDEG", "ORD_", 16,
	                     "order_id", &err),
	    -1);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_id("ORD_", "ORD_", 16, "order_id", &err), -1);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_id(NULL, "ORD_", 16, "order_id", &err), -1);
	ck_invalid("order_id", "\"order_id\" is required");
}
END_TEST

START_TEST(test_valid_country_checks_shape)
{
	ck_assert(pv_valid_country("US"));
	ck_assert(pv_valid_country("JP"));
	ck_assert(!pv_valid_country("us"));
	ck_assert(!pv_valid_country("U"));
	ck_assert(!pv_valid_country("USA"));
	ck_assert(!pv_valid_country(""));
	ck_assert(!pv_valid_country("U1"));
	ck_assert(!pv_valid_country("\xc3\x9c"
	                            "S"));
	ck_assert(!pv_valid_country(NULL));
}
END_TEST

START_TEST(test_valid_enum_finds_index)
{
	static const char *const names[] = { "pending", "paid", "shipped",
		NULL };
	size_t i = 99;

	ck_assert_int_eq(pv_valid_enum("paid", names, &i, "status", &err), 0);
	ck_assert_uint_eq(i, 1);
	ck_assert_int_eq(pv_valid_enum("pending", names, &i, "status", &err),
	    0);
	ck_assert_uint_eq(i, 0);
	ck_assert_int_eq(pv_valid_enum("Paid", names, &i, "status", &err), -1);
	ck_invalid("status",
	    "\"status\" must be one of pending, paid, shipped");
	ck_assert_uint_eq(i, 0);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_enum("", names, &i, "status", &err), -1);
	pv_err_clear(&err);
	ck_assert_int_eq(pv_valid_enum(NULL, names, &i, "status", &err), -1);
	ck_invalid("status", "\"status\" is required");
}
END_TEST

START_TEST(test_valid_enum_long_list_still_a_sentence)
{
	static const char *const names[] = {
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
		"cccccccccccccccccccccccccccccccccccccccc",
		"dddddddddddddddddddddddddddddddddddddddd",
		"eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", NULL
	};
	size_t i;

	ck_assert_int_eq(pv_valid_enum("x", names, &i, "kind", &err), -1);
	ck_invalid("kind", "\"kind\" is not one of the accepted values");
}
END_TEST

START_TEST(test_valid_fail_names_value_or_field)
{
	char longname[100];

	PV_ERR_INVALID(&err, NULL, "must be %d", 3);
	ck_invalid("", "value must be 3");
	pv_err_clear(&err);
	PV_ERR_INVALID(&err, "", "is odd");
	ck_invalid("", "value is odd");
	/* First error wins. */
	PV_ERR_INVALID(&err, "x", "is even");
	ck_invalid("", "value is odd");
	/* A long field is clipped the same way in field and message. */
	pv_err_clear(&err);
	memset(longname, 'k', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	PV_ERR_INVALID(&err, longname, "is wrong");
	ck_assert_uint_eq(strlen(err.field), sizeof(err.field) - 1);
	ck_assert_ptr_nonnull(strstr(err.msg, err.field));
	ck_assert_int_eq(strncmp(err.msg, "\"kkk", 4), 0);
	ck_assert_ptr_nonnull(strstr(err.msg, "k\" is wrong"));
}
END_TEST

Suite *
valid_suite(void)
{
	Suite *s = suite_create("valid");
	TCase *tc;

	tc = tcase_create("int64");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_valid_int64_accepts_canonical);
	tcase_add_test(tc, test_valid_int64_refuses_non_canonical);
	tcase_add_test(tc, test_valid_int64_detects_overflow);
	tcase_add_test(tc, test_valid_int64_checks_range);
	suite_add_tcase(s, tc);

	tc = tcase_create("bool");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_valid_bool_accepts_python_spellings);
	tcase_add_test(tc, test_valid_bool_refuses_others);
	suite_add_tcase(s, tc);

	tc = tcase_create("utf8");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_valid_utf8_accepts_well_formed);
	tcase_add_test(tc, test_valid_utf8_refuses_malformed);
	tcase_add_test(tc, test_valid_utf8_clip_keeps_whole_chars);
	suite_add_tcase(s, tc);

	tc = tcase_create("text");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_valid_text_accepts_text);
	tcase_add_test(tc, test_valid_text_refuses_controls_and_nul);
	tcase_add_test(tc, test_valid_text_refuses_bad_utf8_and_length);
	suite_add_tcase(s, tc);

	tc = tcase_create("email");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_valid_email_accepts_practical);
	tcase_add_test(tc, test_valid_email_refuses_bad);
	suite_add_tcase(s, tc);

	tc = tcase_create("id");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_valid_id_checks_prefix_and_hex);
	tcase_add_test(tc, test_valid_country_checks_shape);
	suite_add_tcase(s, tc);

	tc = tcase_create("enum");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, test_valid_enum_finds_index);
	tcase_add_test(tc, test_valid_enum_long_list_still_a_sentence);
	tcase_add_test(tc, test_valid_fail_names_value_or_field);
	suite_add_tcase(s, tc);
	return s;
}
