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

/*
 * For the programs (cfserver, cfnode), never the library: memory malloc got
 * back stays with the process (no trim of the heap's top below 256 MiB, no
 * mmap for blocks below 16 MiB), so a buffer freed and allocated again is
 * resident. Otherwise the failover path (a recovery's scan, the CF's
 * answers) meets fresh pages, and a page fault costs 10 us on a slow VM.
 * warm bytes (below 16 MiB) of the calling thread's heap are written and
 * given back, so that its first allocations of that much are resident too:
 * cfnode's main thread runs the agent, whose first recovery allocated 20-25
 * fresh pages (its scan, the release) in each failover of the benchmark.
 */
void cf_malloc_keep(size_t warm);

/*
 * Start program path (argv) as a child, never by fork(): a fork of a process
 * with threads and large buffers copies its page tables and write-protects
 * every private page it has, so that each first write afterwards (in the
 * parent, for as long as the child lives) is a copy-on-write fault with a TLB
 * shootdown of the other CPUs. posix_spawn shares the address space until the
 * exec. The child's fd i is fds[i] for each i < nfds with fds[i] >= 0
 * (sources below nfds are moved out of the way first); every other fd with
 * FD_CLOEXEC is closed by the exec. It starts with an empty signal mask and
 * SIGPIPE, SIGINT, SIGTERM at their defaults, whatever the caller set.
 * 0 with *pid, or -errno (an exec's failure too: glibc reports it here).
 */
int cf_spawn(const char *path, char *const argv[], const int *fds, int nfds, int *pid);

#define CF_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
