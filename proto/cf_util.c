/* SPDX-License-Identifier: MIT */
#include "cf_util.h"

#include <errno.h>
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
