/* SPDX-License-Identifier: MIT */
#include "cf_util.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

__thread const char *cf_corrupt_site;

uint32_t cf_crc32(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	/* zlib takes uInt lengths: feed large buffers in pieces. */
	while (len > 0) {
		uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
		crc = (uint32_t)crc32(crc, p, n);
		p += n;
		len -= n;
	}
	return crc;
}

void cf_malloc_keep(size_t warm)
{
	void *p;

	(void)mallopt(M_TRIM_THRESHOLD, 256 << 20);
	(void)mallopt(M_MMAP_THRESHOLD, 16 << 20);
	if (!warm || warm >= (16u << 20) || !(p = malloc(warm)))
		return;
	explicit_bzero(p, warm); /* written, never elided: the pages are allocated */
	free(p);                 /* back to the top of the heap, which stays */
}
