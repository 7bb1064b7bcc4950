/* SPDX-License-Identifier: MIT */
/*
 * cf_log_copy.c - the memory a log is read into (cf_log.h, cf_log_copy_warm).
 *
 * cf_log_attach reads a log region into a copy of the region's size, from
 * the head in growing windows, and scans it after each (cf_log.c,
 * read_live). A fresh anonymous mapping is zero where nothing was read, so a
 * scan that runs past the window stops at once. But every page it touches is
 * a page fault on the failover path, and a fault costs 10 us on the 2-vCPU
 * VM of bench/RESULTS.md: 0.2 ms for the first 64 KiB window.
 *
 * So one copy per process is made resident once, off that path
 * (cf_log_copy_warm), and lent to one reader at a time. The reader says what
 * it wrote into it (the header and a span of the ring) and that is zeroed
 * when the copy comes back: the next reader finds zeros wherever it did not
 * read, as in a fresh mapping. (read_live never decides from bytes it did not
 * read: it reads on until its scan stops inside what it read. Another log's
 * records beyond the window would only make it read more.) A reader that
 * finds the copy lent, or of another size, gets a fresh mapping as before.
 */
#include "cf_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>

static struct {
	pthread_mutex_t mu;
	uint8_t *buf;
	uint64_t size;
	bool lent;
} warm = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *fresh(uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

int cf_log_copy_warm(uint64_t size)
{
	uint8_t *p;

	if (size <= sizeof(struct cf_log_hdr) || size > CF_LOG_COPY_WARM_MAX)
		return 0; /* not kept resident: every read maps afresh */
	pthread_mutex_lock(&warm.mu);
	if ((warm.buf && warm.size == size) || warm.lent) {
		pthread_mutex_unlock(&warm.mu);
		return 0;
	}
	if (warm.buf)
		munmap(warm.buf, warm.size); /* the geometry changed (another CF) */
	warm.buf = NULL;
	p = fresh(size);
	if (!p) {
		pthread_mutex_unlock(&warm.mu);
		return -ENOMEM;
	}
	/*
	 * Not inherited by a fork (an external fence agent's is on the failover
	 * path): its page tables would be copied for a child that never reads it.
	 */
	(void)madvise(p, size, MADV_DONTFORK);
	memset(p, 0, size); /* every page resident now */
	warm.buf = p;
	warm.size = size;
	pthread_mutex_unlock(&warm.mu);
	return 0;
}

void *cf_log_copy_get(uint64_t size)
{
	void *p = NULL;

	pthread_mutex_lock(&warm.mu);
	if (warm.buf && warm.size == size && !warm.lent) {
		warm.lent = true;
		p = warm.buf;
	}
	pthread_mutex_unlock(&warm.mu);
	return p ? p : fresh(size);
}

void cf_log_copy_put(void *copy, uint64_t size, uint64_t from, uint64_t n)
{
	uint64_t hdr = sizeof(struct cf_log_hdr), ring = size - hdr, pos, first;
	uint8_t *b = copy;

	if (!copy)
		return;
	pthread_mutex_lock(&warm.mu);
	if (b != warm.buf) {
		pthread_mutex_unlock(&warm.mu);
		munmap(copy, size);
		return;
	}
	pthread_mutex_unlock(&warm.mu);
	/* zero what the reader wrote: the header and [from, from + n) of the ring, which may wrap */
	memset(b, 0, hdr);
	if (n > ring)
		n = ring;
	pos = from % ring;
	first = n < ring - pos ? n : ring - pos;
	memset(b + hdr + pos, 0, first);
	memset(b + hdr, 0, n - first);
	pthread_mutex_lock(&warm.mu);
	warm.lent = false;
	pthread_mutex_unlock(&warm.mu);
}
