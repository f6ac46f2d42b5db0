/* Unit tests of pv_log_escape: log lines can never be forged or split. */
#include <string.h>

#include "pv_log.h"
#include "pv_test.h"

START_TEST(test_log_escape_control_and_quotes)
{
	char out[64];

	ck_assert_str_eq(pv_log_escape(out, sizeof(out), "a\nb\"c\\d\x01"),
	    "a\\x0ab\\x22c\\x5cd\\x01");
}
END_TEST

START_TEST(test_log_escape_truncates_with_dots)
{
	char out[8];

	ck_assert_str_eq(pv_log_escape(out, sizeof(out), "abcdefghijkl"),
	    "abcd...");
	ck_assert_str_eq(pv_log_escape(out, sizeof(out), "\n\n\n"), "\\x0a...");
	ck_assert_str_eq(pv_log_escape(out, 3, "abc"), "");
}
END_TEST

START_TEST(test_log_level_parse_names)
{
	ck_assert_int_eq(pv_log_level_parse("debug"), PV_LOG_DEBUG);
	ck_assert_int_eq(pv_log_level_parse("loud"), -1);
}
END_TEST

Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("escape");

	tcase_add_test(tc, test_log_escape_control_and_quotes);
	tcase_add_test(tc, test_log_escape_truncates_with_dots);
	tcase_add_test(tc, test_log_level_parse_names);
	suite_add_tcase(s, tc);
	return s;
}
