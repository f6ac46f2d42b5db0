/*
 * The one main() of every Check test program.  suites.h is generated
 * by the Makefile from the test_<name>.c files of the directory being
 * built: one PV_SUITE(name) line each, naming <name>_suite().
 * CK_RUN_SUITE / CK_RUN_CASE pick tests, CK_FORK=no helps a debugger.
 */
#include <stdlib.h>

#include <check.h>

#define PV_SUITE(name) Suite *name##_suite(void);
#include "suites.h"
#undef PV_SUITE

int
main(void)
{
	SRunner *sr;
	int failed;

	sr = srunner_create(NULL);
#define PV_SUITE(name) srunner_add_suite(sr, name##_suite());
#include "suites.h"
#undef PV_SUITE
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
