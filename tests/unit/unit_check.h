/* SPDX-License-Identifier: MIT */
/*
 * unit_check.h - the unit tests' CHECK: a failed condition is counted and
 * named with its file and line, and the test goes on; main returns
 * failures != 0. Included once per test program.
 */
#ifndef UNIT_CHECK_H
#define UNIT_CHECK_H

#include <stdio.h>

static int failures;
#define CHECK(c)                                                                        \
	do {                                                                            \
		if (!(c)) {                                                             \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
			failures++;                                                     \
		}                                                                       \
	} while (0)

#endif
