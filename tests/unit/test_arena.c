/* Unit tests of pv_arena: alignment, caps, defers, failure injection. */
#include <stdint.h>
#include <string.h>

#include "pv_arena.h"
#include "pv_test.h"

static struct pv_arena *a;
static int ran;

static void
setup(void)
{
	a = pv_arena_new(1024 * 1024);
	ck_assert_ptr_nonnull(a);
	ran = 0;
}

static void
teardown(void)
{
	pv_arena_free(a);
}

static void
count(void *arg)
{
	(void)arg;
	ran++;
}

START_TEST(test_arena_alloc_aligned)
{
	struct pv_err err = { 0 };
	void *p, *q;

	p = pv_arena_alloc(a, 3, &err);
	q = pv_arena_alloc(a, 1, &err);
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(q);
	ck_assert_uint_eq((uintptr_t)p % 16, 0);
	ck_assert_uint_eq((uintptr_t)q % 16, 0);
	ck_assert_ptr_ne(p, q);
}
END_TEST

START_TEST(test_arena_alloc_grows_past_first_block)
{
	struct pv_err err = { 0 };
	char *p;
	int i;

	for (i = 0; i < 100; i++) {
		p = pv_arena_alloc(a, 4000, &err);
		ck_assert_ptr_nonnull(p);
		memset(p, i, 4000);
	}
	ck_assert_uint_ge(pv_arena_used(a), 400000);
	pv_arena_reset(a);
	ck_assert_uint_eq(pv_arena_used(a), 0);
}
END_TEST

START_TEST(test_arena_alloc_cap_is_toobig)
{
	struct pv_err err = { 0 };

	ck_assert_ptr_null(pv_arena_alloc(a, 2 * 1024 * 1024, &err));
	ck_assert_int_eq(err.code, PV_E_TOOBIG);
	pv_err_clear(&err);
	ck_assert_ptr_null(pv_arena_alloc(a, SIZE_MAX, &err));
	ck_assert_int_eq(err.code, PV_E_TOOBIG);
	pv_err_clear(&err);
	ck_assert_ptr_null(pv_arena_calloc(a, SIZE_MAX / 2, 4, &err));
	ck_assert_int_eq(err.code, PV_E_TOOBIG);
}
END_TEST

START_TEST(test_arena_defer_runs_on_reset)
{
	struct pv_err err = { 0 };

	ck_assert_int_eq(pv_arena_defer(a, count, NULL, &err), 0);
	ck_assert_int_eq(pv_arena_defer(a, count, NULL, &err), 0);
	ck_assert_int_eq(ran, 0);
	pv_arena_reset(a);
	ck_assert_int_eq(ran, 2);
	pv_arena_reset(a);
	ck_assert_int_eq(ran, 2);
}
END_TEST

START_TEST(test_arena_defer_failure_runs_now)
{
	struct pv_err err = { 0 };

	pv_arena_fail_after(a, 0);
	ck_assert_int_eq(pv_arena_defer(a, count, NULL, &err), -1);
	ck_assert_int_eq(err.code, PV_E_NOMEM);
	ck_assert_int_eq(ran, 1);
}
END_TEST

START_TEST(test_arena_printf_formats)
{
	struct pv_err err = { 0 };
	char *s;

	s = pv_arena_printf(a, &err, "%s-%d", "ord", 42);
	ck_assert_str_eq(s, "ord-42");
	ck_assert_str_eq(pv_arena_strndup(a, "abcdef", 3, &err), "abc");
}
END_TEST

/* Every allocation of a multi-step function fails cleanly in turn. */
START_TEST(test_arena_fail_after_injects_each_step)
{
	struct pv_err err;
	long n;
	char *s;

	for (n = 0;; n++) {
		pv_err_clear(&err);
		pv_arena_reset(a);
		pv_arena_fail_after(a, n);
		s = pv_arena_printf(a, &err, "%s", "x");
		if (s != NULL)
			s = pv_arena_strdup(a, "y", &err);
		if (s != NULL)
			break;
		ck_assert_int_eq(err.code, PV_E_NOMEM);
	}
	ck_assert_int_eq(n, 2);
	pv_arena_fail_after(a, -1);
}
END_TEST

Suite *
arena_suite(void)
{
	Suite *s = suite_create("arena");
	TCase *tc = tcase_create("alloc");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_arena_alloc_aligned);
	tcase_add_test(tc, test_arena_alloc_grows_past_first_block);
	tcase_add_test(tc, test_arena_alloc_cap_is_toobig);
	tcase_add_test(tc, test_arena_defer_runs_on_reset);
	tcase_add_test(tc, test_arena_defer_failure_runs_now);
	tcase_add_test(tc, test_arena_printf_formats);
	tcase_add_test(tc, test_arena_fail_after_injects_each_step);
	suite_add_tcase(s, tc);
	return s;
}
