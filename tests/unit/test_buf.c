/* Unit tests of pv_buf: sticky errors, caps, escaping. */
#include <string.h>

#include "pv_buf.h"
#include "pv_test.h"

static struct pv_arena *a;

static void
setup(void)
{
	a = pv_arena_new(1024 * 1024);
}

static void
teardown(void)
{
	pv_arena_free(a);
}

START_TEST(test_buf_append_grows_and_terminates)
{
	struct pv_err err = { 0 };
	struct pv_buf b;
	const char *out;
	size_t len;
	int i;

	pv_buf_init(&b, a, 100000);
	for (i = 0; i < 1000; i++)
		pv_buf_printf(&b, "%03d,", i % 1000);
	ck_assert_int_eq(pv_buf_finish(&b, &out, &len, &err), 0);
	ck_assert_uint_eq(len, 4000);
	ck_assert_uint_eq(strlen(out), 4000);
	ck_assert(strncmp(out, "000,001,002,", 12) == 0);
}
END_TEST

START_TEST(test_buf_cap_is_sticky)
{
	struct pv_err err = { 0 };
	struct pv_buf b;
	const char *out;

	pv_buf_init(&b, a, 8);
	pv_buf_puts(&b, "1234567");
	ck_assert(!pv_buf_failed(&b));
	pv_buf_puts(&b, "8");
	ck_assert(pv_buf_failed(&b));
	pv_buf_puts(&b, "");
	ck_assert_int_eq(pv_buf_finish(&b, &out, NULL, &err), -1);
	ck_assert_int_eq(err.code, PV_E_TOOBIG);
}
END_TEST

START_TEST(test_buf_empty_finish_is_empty_string)
{
	struct pv_err err = { 0 };
	struct pv_buf b;
	const char *out;
	size_t len = 99;

	pv_buf_init(&b, a, 8);
	ck_assert_int_eq(pv_buf_finish(&b, &out, &len, &err), 0);
	ck_assert_str_eq(out, "");
	ck_assert_uint_eq(len, 0);
}
END_TEST

START_TEST(test_buf_html_escapes_quotes)
{
	struct pv_err err = { 0 };
	struct pv_buf b;
	const char *out;
	const char *in = "<script>\"a\" & 'b'</script>";

	pv_buf_init(&b, a, 1024);
	pv_buf_html(&b, in, strlen(in));
	ck_assert_int_eq(pv_buf_finish(&b, &out, NULL, &err), 0);
	ck_assert_str_eq(out,
	    "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;"
	    "&lt;/script&gt;");
}
END_TEST

START_TEST(test_buf_urlenc_keeps_unreserved)
{
	struct pv_err err = { 0 };
	struct pv_buf b;
	const char *out;

	pv_buf_init(&b, a, 1024);
	pv_buf_urlenc(&b, "a b/c?d=é~_.-", strlen("a b/c?d=é~_.-"));
	ck_assert_int_eq(pv_buf_finish(&b, &out, NULL, &err), 0);
	ck_assert_str_eq(out, "a%20b%2Fc%3Fd%3D%C3%A9~_.-");
}
END_TEST

START_TEST(test_buf_nomem_reported_at_finish)
{
	struct pv_err err = { 0 };
	struct pv_buf b;
	const char *out;

	pv_buf_init(&b, a, 1024);
	pv_arena_fail_after(a, 0);
	pv_buf_puts(&b, "x");
	pv_arena_fail_after(a, -1);
	pv_buf_puts(&b, "y");
	ck_assert_int_eq(pv_buf_finish(&b, &out, NULL, &err), -1);
	ck_assert_int_eq(err.code, PV_E_NOMEM);
}
END_TEST

Suite *
buf_suite(void)
{
	Suite *s = suite_create("buf");
	TCase *tc = tcase_create("append");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_buf_append_grows_and_terminates);
	tcase_add_test(tc, test_buf_cap_is_sticky);
	tcase_add_test(tc, test_buf_empty_finish_is_empty_string);
	tcase_add_test(tc, test_buf_html_escapes_quotes);
	tcase_add_test(tc, test_buf_urlenc_keeps_unreserved);
	tcase_add_test(tc, test_buf_nomem_reported_at_finish);
	suite_add_tcase(s, tc);
	return s;
}
