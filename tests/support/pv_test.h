#ifndef PV_TEST_H
#define PV_TEST_H

/*
 * Shared by every Check test file: declares each suite of the test
 * program being built (suites.h is generated per test directory) so
 * test files need no prototypes of their own.
 */
#include <check.h>

#define PV_SUITE(name) Suite *name##_suite(void);
#include "suites.h"
#undef PV_SUITE

#endif /* PV_TEST_H */
