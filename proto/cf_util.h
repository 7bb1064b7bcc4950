/* SPDX-License-Identifier: MIT */
/* cf_util.h - tiny shared helpers: CRC, corruption reporting, time. */
#ifndef CF_UTIL_H
#define CF_UTIL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* CRC-32 (zlib polynomial) of a buffer, seeded with crc (0 to start). */
uint32_t cf_crc32(uint32_t crc, const void *buf, size_t len);

/*
 * Corrupt input returns -EBADMSG through this macro, which records where it was
 * found (SQLite's CORRUPT_BKPT): cf_corrupt_where() names the last site.
 */
extern __thread const char *cf_corrupt_site;
#define CF_STR2(x) #x
#define CF_STR(x) CF_STR2(x)
#define CF_CORRUPT() (cf_corrupt_site = __FILE__ ":" CF_STR(__LINE__), -EBADMSG)
static inline const char *cf_corrupt_where(void) { return cf_corrupt_site ? cf_corrupt_site : "?"; }

static inline uint64_t cf_now_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static inline uint64_t cf_mono_ns(void) { return cf_now_ns(CLOCK_MONOTONIC); }
static inline uint64_t cf_real_ns(void) { return cf_now_ns(CLOCK_REALTIME); }

#define CF_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
