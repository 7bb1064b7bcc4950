/* SPDX-License-Identifier: MIT */
/*
 * fuzz.h - shared by the libFuzzer targets of tests/fuzz and by the replay
 * runner (fuzz_replay.c) that feeds the seed corpora and the kept crash inputs
 * through the same entry points in every normal build.
 *
 * A target checks properties with FUZZ_ASSERT, which aborts: libFuzzer (and
 * the sanitizers) then report the input as a crash.
 */
#ifndef CF_FUZZ_H
#define CF_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_ASSERT(c)                                                                          \
	do {                                                                                    \
		if (!(c)) {                                                                     \
			fprintf(stderr, "%s:%d: fuzz assertion failed: %s\n", __FILE__, __LINE__, #c); \
			abort();                                                                \
		}                                                                               \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
