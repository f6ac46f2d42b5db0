#ifndef PV_FUZZ_CHECK_H
#define PV_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

/*
 * The libFuzzer harnesses' assertion: a property that does not hold
 * prints where and what, then aborts, which libFuzzer reports as a
 * crash with the input that caused it.  Unlike assert() it stays in
 * every build.
 */
#define check(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, \
			    #cond); \
			abort(); \
		} \
	} while (0)

#endif /* PV_FUZZ_CHECK_H */
