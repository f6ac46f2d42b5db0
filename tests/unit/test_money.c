/*
 * Unit tests of pv_money: the currency table (zero-, two-, three- and
 * four-decimal currencies), formatting, strict parsing with rounding
 * refused, int64 limits both ways, and format/parse round trips.
 */
#include <stdint.h>
#include <string.h>

#include "pv_money.h"
#include "pv_test.h"

/* Formats and returns a static buffer (one call per assertion). */
static const char *
fmt(int64_t minor, const char *currency)
{
	static char buf[PV_MONEY_FORMAT_SIZE];
	struct pv_err err = { 0 };

	ck_assert_msg(pv_money_format(minor, currency, buf, sizeof(buf),
	                  &err) == 0,
	    "format failed: %s", err.msg);
	return buf;
}

/* Parses s, expecting success, and returns the minor units. */
static int64_t
parse_ok(const char *s, const char *currency, int allow_negative)
{
	struct pv_err err = { 0 };
	int64_t v = 12345;

	ck_assert_msg(pv_money_parse(s, strlen(s), currency, allow_negative, &v,
	                  "amount", &err) == 0,
	    "refused \"%s\" %s: %s", s, currency, err.msg);
	return v;
}

/* Parses s, expecting PV_E_INVALID on "amount" and *minor untouched. */
static void
parse_bad(const char *s, size_t len, const char *currency, int allow_negative)
{
	struct pv_err err = { 0 };
	int64_t v = 12345;

	ck_assert_msg(pv_money_parse(s, len, currency, allow_negative, &v,
	                  "amount", &err) == -1,
	    "accepted \"%s\" %s as %lld", s, currency, (long long)v);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_str_eq(err.field, "amount");
	ck_assert_int_eq(v, 12345);
}

START_TEST(test_money_exponent_knows_zero_decimal_currencies)
{
	static const char *const zero[] = { "JPY", "KRW", "VND", "CLP", "ISK",
		"UGX", "XAF", "XOF", "XPF", "PYG", "RWF", "KMF", "GNF", "DJF",
		"BIF", "VUV", "UYI", NULL };
	size_t i;

	for (i = 0; zero[i] != NULL; i++)
		ck_assert_msg(pv_money_exponent(zero[i]) == 0, "%s", zero[i]);
}
END_TEST

START_TEST(test_money_exponent_knows_three_and_four_decimals)
{
	static const char *const three[] = { "BHD", "IQD", "JOD", "KWD", "LYD",
		"OMR", "TND", NULL };
	size_t i;

	for (i = 0; three[i] != NULL; i++)
		ck_assert_msg(pv_money_exponent(three[i]) == 3, "%s", three[i]);
	ck_assert_int_eq(pv_money_exponent("CLF"), 4);
	ck_assert_int_eq(pv_money_exponent("UYW"), 4);
}
END_TEST

START_TEST(test_money_exponent_knows_two_decimal_currencies)
{
	static const char *const two[] = { "USD", "EUR", "GBP", "CHF", "CAD",
		"AUD", "CNY", "INR", "BRL", "MXN", "SEK", "HUF", "TWD", "IDR",
		"MGA", "MRU", "AED", "ZAR", "XCD", "XCG", "ZWG", NULL };
	size_t i;

	for (i = 0; two[i] != NULL; i++)
		ck_assert_msg(pv_money_exponent(two[i]) == 2, "%s", two[i]);
}
END_TEST

START_TEST(test_money_exponent_unknown_is_minus_one)
{
	static const char *const bad[] = { "usd", "Usd", "USDX", "US", "",
		"XXX", "XTS", "XAU", "XDR", "HRK", "ABC", "U5D", "USD ", NULL };
	size_t i;

	for (i = 0; bad[i] != NULL; i++)
		ck_assert_msg(pv_money_exponent(bad[i]) == -1, "%s", bad[i]);
	ck_assert_int_eq(pv_money_exponent(NULL), -1);
}
END_TEST

/* The table is sorted (so bsearch finds every entry) and complete. */
START_TEST(test_money_currency_at_lists_every_code_in_order)
{
	const char *prev = "", *c;
	size_t i;

	for (i = 0; (c = pv_money_currency_at(i)) != NULL; i++) {
		ck_assert_msg(strcmp(prev, c) < 0, "%s after %s", c, prev);
		ck_assert_uint_eq(strlen(c), 3);
		ck_assert_msg(pv_money_exponent(c) >= 0, "%s not found", c);
		ck_assert_int_le(pv_money_exponent(c), 4);
		prev = c;
	}
	ck_assert_uint_ge(i, 150);
}
END_TEST

START_TEST(test_money_currency_check_names_field)
{
	struct pv_err err = { 0 };

	ck_assert_int_eq(pv_money_currency_check("EUR", "currency", &err), 0);
	ck_assert_int_eq(pv_money_currency_check("eur", "currency", &err), -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_str_eq(err.field, "currency");
}
END_TEST

START_TEST(test_money_currency_from_lower_converts_stripe_codes)
{
	char out[PV_MONEY_CURRENCY_SIZE];
	static const char *const bad[] = { "USD", "Usd", "xyz", "us", "usdd",
		"", "u$d", NULL };
	struct pv_err err = { 0 };
	size_t i;

	ck_assert_int_eq(pv_money_currency_from_lower("usd", out, "currency",
	                     &err),
	    0);
	ck_assert_str_eq(out, "USD");
	ck_assert_int_eq(pv_money_currency_from_lower("jpy", out, "currency",
	                     &err),
	    0);
	ck_assert_str_eq(out, "JPY");
	for (i = 0; bad[i] != NULL; i++) {
		pv_err_clear(&err);
		ck_assert_msg(pv_money_currency_from_lower(bad[i], out,
		                  "currency", &err) == -1,
		    "%s", bad[i]);
		ck_assert_int_eq(err.code, PV_E_INVALID);
		ck_assert_str_eq(err.field, "currency");
	}
}
END_TEST

START_TEST(test_money_currency_to_lower_for_stripe)
{
	char out[PV_MONEY_CURRENCY_SIZE];
	struct pv_err err = { 0 };

	ck_assert_int_eq(pv_money_currency_to_lower("KWD", out, &err), 0);
	ck_assert_str_eq(out, "kwd");
	ck_assert_int_eq(pv_money_currency_to_lower("kwd", out, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
}
END_TEST

START_TEST(test_money_format_uses_currency_exponent)
{
	ck_assert_str_eq(fmt(4800, "USD"), "48.00");
	ck_assert_str_eq(fmt(4800, "JPY"), "4800");
	ck_assert_str_eq(fmt(1234, "KWD"), "1.234");
	ck_assert_str_eq(fmt(12345, "CLF"), "1.2345");
	ck_assert_str_eq(fmt(1, "USD"), "0.01");
	ck_assert_str_eq(fmt(5, "KWD"), "0.005");
	ck_assert_str_eq(fmt(0, "USD"), "0.00");
	ck_assert_str_eq(fmt(0, "JPY"), "0");
	ck_assert_str_eq(fmt(100000, "USD"), "1000.00");
}
END_TEST

START_TEST(test_money_format_handles_negatives_and_limits)
{
	ck_assert_str_eq(fmt(-5, "USD"), "-0.05");
	ck_assert_str_eq(fmt(-4800, "JPY"), "-4800");
	ck_assert_str_eq(fmt(-1, "KWD"), "-0.001");
	ck_assert_str_eq(fmt(INT64_MAX, "USD"), "92233720368547758.07");
	ck_assert_str_eq(fmt(INT64_MIN, "USD"), "-92233720368547758.08");
	ck_assert_str_eq(fmt(INT64_MIN, "JPY"), "-9223372036854775808");
	ck_assert_str_eq(fmt(INT64_MIN, "CLF"), "-922337203685477.5808");
	ck_assert_str_eq(fmt(INT64_MIN, "KWD"), "-9223372036854775.808");
}
END_TEST

START_TEST(test_money_format_refuses_small_buffer_and_unknown_currency)
{
	struct pv_err err = { 0 };
	char buf[6];

	ck_assert_int_eq(pv_money_format(4800, "USD", buf, 6, &err), 0);
	ck_assert_str_eq(buf, "48.00");
	ck_assert_int_eq(pv_money_format(-4800, "USD", buf, 6, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INTERNAL);
	ck_assert_str_eq(buf, "");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_money_format(1, "usd", buf, 6, &err), -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_str_eq(err.field, "currency");
}
END_TEST

START_TEST(test_money_parse_converts_major_units)
{
	ck_assert_int_eq(parse_ok("48.00", "USD", 0), 4800);
	ck_assert_int_eq(parse_ok("48", "USD", 0), 4800);
	ck_assert_int_eq(parse_ok("48.5", "USD", 0), 4850);
	ck_assert_int_eq(parse_ok("0.50", "USD", 0), 50);
	ck_assert_int_eq(parse_ok("0.05", "USD", 0), 5);
	ck_assert_int_eq(parse_ok("0", "USD", 0), 0);
	ck_assert_int_eq(parse_ok("0.00", "USD", 0), 0);
	ck_assert_int_eq(parse_ok("10", "USD", 0), 1000);
	ck_assert_int_eq(parse_ok("4800", "JPY", 0), 4800);
	ck_assert_int_eq(parse_ok("0", "JPY", 0), 0);
	ck_assert_int_eq(parse_ok("1.234", "KWD", 0), 1234);
	ck_assert_int_eq(parse_ok("1.5", "KWD", 0), 1500);
	ck_assert_int_eq(parse_ok("0.001", "KWD", 0), 1);
	ck_assert_int_eq(parse_ok("1.2345", "CLF", 0), 12345);
}
END_TEST

START_TEST(test_money_parse_refuses_rounding)
{
	struct pv_err err = { 0 };
	int64_t v;

	ck_assert_int_eq(pv_money_parse("48.001", 6, "USD", 0, &v, "amount",
	                     &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_str_eq(err.field, "amount");
	ck_assert_str_eq(err.msg,
	    "amount has more than 2 decimal places for USD");
	pv_err_clear(&err);
	ck_assert_int_eq(pv_money_parse("4800.5", 6, "JPY", 0, &v, "total",
	                     &err),
	    -1);
	ck_assert_str_eq(err.field, "total");
	ck_assert_str_eq(err.msg, "total cannot have decimal places in JPY");
	parse_bad("4800.0", 6, "JPY", 0);
	parse_bad("1.2345", 6, "KWD", 0);
	parse_bad("0.000", 5, "USD", 0);
	parse_bad("1.23456", 7, "CLF", 0);
}
END_TEST

START_TEST(test_money_parse_refuses_malformed_text)
{
	static const char *const bad[] = { ".", "1.", ".5", "+1", "+0.50", " 1",
		"1 ", "1\t", "1e3", "1E3", "1e-2", "007", "00", "00.50",
		"01.00", "1.2.3", "1,00", "1,000.00", "0x10", "--5", "-", "-.5",
		"1.-5", "NaN", "Infinity", "inf", "$5", "5USD", "\xd9\xa1",
		"1_000", "\xef\xbc\x91", NULL };
	char huge[PV_MONEY_PARSE_MAX + 2];
	size_t i;

	for (i = 0; bad[i] != NULL; i++)
		parse_bad(bad[i], strlen(bad[i]), "USD", 1);
	parse_bad("", 0, "USD", 0);
	parse_bad(NULL, 0, "USD", 0);
	/* The length is the whole text: an embedded NUL is refused. */
	parse_bad("48.00\0", 6, "USD", 0);
	parse_bad("4\0.00", 5, "USD", 0);
	/* Overlong text is refused before it is read. */
	memset(huge, '0', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	huge[0] = '1';
	parse_bad(huge, PV_MONEY_PARSE_MAX + 1, "USD", 0);
}
END_TEST

START_TEST(test_money_parse_handles_negatives)
{
	struct pv_err err = { 0 };
	int64_t v;

	ck_assert_int_eq(parse_ok("-0.05", "USD", 1), -5);
	ck_assert_int_eq(parse_ok("-48", "USD", 1), -4800);
	ck_assert_int_eq(parse_ok("-4800", "JPY", 1), -4800);
	ck_assert_int_eq(parse_ok("-1.234", "KWD", 1), -1234);
	ck_assert_int_eq(pv_money_parse("-0.05", 5, "USD", 0, &v, "amount",
	                     &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_str_eq(err.msg, "amount must not be negative");
	parse_bad("-0", 2, "USD", 1);
	parse_bad("-0.00", 5, "USD", 1);
	parse_bad("-0", 2, "JPY", 1);
}
END_TEST

START_TEST(test_money_parse_refuses_overflow)
{
	ck_assert_int_eq(parse_ok("92233720368547758.07", "USD", 0), INT64_MAX);
	parse_bad("92233720368547758.08", 20, "USD", 0);
	parse_bad("92233720368547759", 17, "USD", 0);
	parse_bad("100000000000000000", 18, "USD", 0);
	ck_assert_int_eq(parse_ok("-92233720368547758.08", "USD", 1),
	    INT64_MIN);
	parse_bad("-92233720368547758.09", 21, "USD", 1);
	ck_assert_int_eq(parse_ok("9223372036854775807", "JPY", 0), INT64_MAX);
	parse_bad("9223372036854775808", 19, "JPY", 0);
	parse_bad("99999999999999999999", 20, "JPY", 0);
	ck_assert_int_eq(parse_ok("-9223372036854775808", "JPY", 1), INT64_MIN);
	parse_bad("-9223372036854775809", 20, "JPY", 1);
	ck_assert_int_eq(parse_ok("9223372036854775.807", "KWD", 0), INT64_MAX);
	parse_bad("9223372036854775.808", 20, "KWD", 0);
	/* The padding multiplication overflows, not the digits. */
	parse_bad("9223372036854776", 16, "KWD", 0);
	parse_bad("18446744073709551616", 20, "JPY", 0);
}
END_TEST

START_TEST(test_money_parse_refuses_unknown_currency)
{
	struct pv_err err = { 0 };
	int64_t v;

	ck_assert_int_eq(pv_money_parse("1.00", 4, "usd", 0, &v, "amount",
	                     &err),
	    -1);
	ck_assert_int_eq(err.code, PV_E_INVALID);
	ck_assert_str_eq(err.field, "currency");
}
END_TEST

/* format then parse gives back the same minor units, in every currency. */
START_TEST(test_money_format_parse_roundtrip)
{
	static const int64_t vals[] = { 0, 1, 5, 9, 10, 99, 100, 101, 4800,
		123456789, -1, -99, -100, -4800, INT64_MAX, INT64_MIN,
		INT64_MIN + 1 };
	char buf[PV_MONEY_FORMAT_SIZE];
	struct pv_err err = { 0 };
	const char *c;
	size_t i, j;
	int64_t v;

	for (j = 0; (c = pv_money_currency_at(j)) != NULL; j++) {
		for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
			ck_assert_int_eq(pv_money_format(vals[i], c, buf,
			                     sizeof(buf), &err),
			    0);
			ck_assert_msg(pv_money_parse(buf, strlen(buf), c, 1, &v,
			                  "amount", &err) == 0,
			    "%s %s: %s", buf, c, err.msg);
			ck_assert_int_eq(v, vals[i]);
		}
	}
}
END_TEST

Suite *
money_suite(void)
{
	Suite *s = suite_create("money");
	TCase *tc;

	tc = tcase_create("currency");
	tcase_add_test(tc, test_money_exponent_knows_zero_decimal_currencies);
	tcase_add_test(tc, test_money_exponent_knows_three_and_four_decimals);
	tcase_add_test(tc, test_money_exponent_knows_two_decimal_currencies);
	tcase_add_test(tc, test_money_exponent_unknown_is_minus_one);
	tcase_add_test(tc, test_money_currency_at_lists_every_code_in_order);
	tcase_add_test(tc, test_money_currency_check_names_field);
	tcase_add_test(tc,
	    test_money_currency_from_lower_converts_stripe_codes);
	tcase_add_test(tc, test_money_currency_to_lower_for_stripe);
	suite_add_tcase(s, tc);

	tc = tcase_create("format");
	tcase_add_test(tc, test_money_format_uses_currency_exponent);
	tcase_add_test(tc, test_money_format_handles_negatives_and_limits);
	tcase_add_test(tc,
	    test_money_format_refuses_small_buffer_and_unknown_currency);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse");
	tcase_add_test(tc, test_money_parse_converts_major_units);
	tcase_add_test(tc, test_money_parse_refuses_rounding);
	tcase_add_test(tc, test_money_parse_refuses_malformed_text);
	tcase_add_test(tc, test_money_parse_handles_negatives);
	tcase_add_test(tc, test_money_parse_refuses_overflow);
	tcase_add_test(tc, test_money_parse_refuses_unknown_currency);
	tcase_add_test(tc, test_money_format_parse_roundtrip);
	suite_add_tcase(s, tc);
	return s;
}
