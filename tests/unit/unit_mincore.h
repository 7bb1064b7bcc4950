/* SPDX-License-Identifier: MIT */
/*
 * unit_mincore.h - for the unit tests that check residency (test_image: the
 * CF's image made resident at open; test_persist: cfnode's warmed heap):
 * how many pages of a range are not in memory. Included once per test program.
 */
#ifndef UNIT_MINCORE_H
#define UNIT_MINCORE_H

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "cf_layout.h"

/* pages of [p, p + len) not in memory, or (size_t)-1 */
static size_t absent_pages(const void *p, size_t len)
{
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)(CF_PAGE - 1);
	size_t n = ((uintptr_t)p + len - a + CF_PAGE - 1) / CF_PAGE, absent = 0;
	unsigned char *v = malloc(n);

	if (!v || mincore((void *)a, n * CF_PAGE, v) < 0) {
		free(v);
		return (size_t)-1;
	}
	for (size_t i = 0; i < n; i++)
		absent += !(v[i] & 1);
	free(v);
	return absent;
}

#endif
