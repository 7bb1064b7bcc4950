/* SPDX-License-Identifier: MIT */
/*
 * test_gcommit - cfserver's group commit component (cfserver/cf_persist.c)
 * under --nvram, with stub persist functions that record each call.
 *
 *   1. exact ranges sorted and merged (overlapping, touching, contained,
 *      sharing a cache line) at 64-byte granularity, one span at page
 *      granularity, callbacks after the persist, cancel, an empty commit is
 *      none. (The PERSIST answers on top of it: test_persist_answer.)
 *   2. the persister thread (CF_PERSIST_THREAD): the commit point hands the
 *      span over and returns while the thread is still persisting (the loop
 *      is not held by a slow flush); a callback runs only after its persist
 *      returned; what is added while a batch is in flight waits and goes out
 *      as ONE next batch; a synchronous commit waits for the batch in flight;
 *      cancel reaches a batch in flight;
 *   2b. CF_PERSIST_ADAPTIVE: fast persists (a tmpfs msync) move back into the
 *      loop after the first, slow ones (a disk's) stay with the thread.
 *
 * (The tcp backend used to hold its answers for this component's commits;
 * since durability is PERSIST's on both transports it holds nothing:
 * docs/design.md, "Durability".)
 */
#include <errno.h>
#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf_persist.h"
#include "cf_util.h"

static int failures;
#define CHECK(c)                                                                     \
	do {                                                                         \
		if (!(c)) {                                                          \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			failures++;                                                  \
		}                                                                    \
	} while (0)

static struct ev_loop *loop;
static int persist_calls;
static uint64_t persisted_lo[64], persisted_len[64];

/* The stub persist: records each call. */
static void stub_persist(void *arg, uint64_t off, uint64_t len)
{
	if (persist_calls < 64) {
		persisted_lo[persist_calls] = off;
		persisted_len[persist_calls] = len;
	}
	persist_calls++;
}

/* ---------------- cf_persist alone ---------------- */

static int order[8], norder;
static void cb_mark(void *arg)
{
	/* a callback runs after the persist of everything added before it */
	order[norder++] = (int)(intptr_t)arg * 10 + persist_calls;
}

static void test_persist_alone(void)
{
	struct cf_persist *p;

	persist_calls = 0;
	norder = 0;
	CHECK(cf_persist_new(NULL, 64, 0, stub_persist, NULL, &p) == 0);
	cf_persist_add(p, 1000, 8);   /* line 960..1024 */
	cf_persist_add(p, 1016, 8);   /* same line: merged */
	cf_persist_add(p, 4096, 16);  /* far away: its own call */
	cf_persist_add(p, 130, 4);    /* out of order: sorted */
	CHECK(cf_persist_after(p, cb_mark, (void *)1) == 0);
	CHECK(cf_persist_after(p, cb_mark, (void *)2) == 0);
	CHECK(cf_persist_cancel(p, cb_mark, (void *)2) == 0);
	CHECK(persist_calls == 0);
	cf_persist_commit(p);
	CHECK(persist_calls == 3);
	CHECK(persisted_lo[0] == 130 && persisted_len[0] == 4);
	CHECK(persisted_lo[1] == 1000 && persisted_len[1] == 24);
	CHECK(persisted_lo[2] == 4096 && persisted_len[2] == 16);
	CHECK(norder == 1 && order[0] == 13);
	cf_persist_free(p);

	/* overlapping, touching and swallowed ranges, given out of order (the PERSIST case) */
	persist_calls = 0;
	CHECK(cf_persist_new(NULL, 64, 0, stub_persist, NULL, &p) == 0);
	cf_persist_add(p, 1000, 100);
	cf_persist_add(p, 4096, 1);
	cf_persist_add(p, 40, 20);
	cf_persist_add(p, 0, 50);
	cf_persist_add(p, 1050, 2); /* inside [1000, 1100) */
	cf_persist_add(p, 60, 5);   /* touches [40, 60) */
	cf_persist_commit(p);
	CHECK(persist_calls == 3);
	CHECK(persisted_lo[0] == 0 && persisted_len[0] == 65);
	CHECK(persisted_lo[1] == 1000 && persisted_len[1] == 100);
	CHECK(persisted_lo[2] == 4096 && persisted_len[2] == 1);
	cf_persist_commit(p); /* nothing pending: no call, no commit */
	{
		struct cf_persist_stats st;
		cf_persist_get_stats(p, &st);
		CHECK(persist_calls == 3 && st.commits == 1 && st.ranges == 6);
	}
	cf_persist_free(p);

	persist_calls = 0;
	CHECK(cf_persist_new(NULL, 4096, 0, stub_persist, NULL, &p) == 0);
	cf_persist_add(p, 100, 8);
	cf_persist_add(p, 1u << 20, 8);
	cf_persist_commit(p);
	CHECK(persist_calls == 1 && persisted_lo[0] == 100 && persisted_len[0] == (1u << 20) + 8 - 100);
	cf_persist_free(p);
}

/* 2. the persister thread: a slow stub, a flag the callbacks read */
static _Atomic int slow_calls, slow_done;
static uint64_t slow_lo[8], slow_len[8];
static int cb_seen[8], cb_n;

static void slow_persist(void *arg, uint64_t off, uint64_t len)
{
	int i = atomic_fetch_add(&slow_calls, 1);

	if (i < 8)
		slow_lo[i] = off, slow_len[i] = len;
	usleep(50000); /* a device flush */
	atomic_fetch_add(&slow_done, 1);
}

static void cb_done_count(void *arg)
{
	if (cb_n < 8)
		cb_seen[cb_n++] = (int)(intptr_t)arg * 100 + atomic_load(&slow_done);
}

static void run_until(struct cf_persist *p, int done)
{
	for (int i = 0; i < 400 && (atomic_load(&slow_done) < done || cf_persist_pending(p)); i++)
		ev_run(loop, EVRUN_ONCE);
}

static void test_persist_thread(void)
{
	struct cf_persist *p;
	struct cf_persist_stats st;
	uint64_t t0;

	CHECK(cf_persist_new(NULL, 4096, CF_PERSIST_THREAD, slow_persist, NULL, &p) == -EINVAL); /* needs a loop */
	CHECK(cf_persist_new(loop, 64, CF_PERSIST_THREAD, slow_persist, NULL, &p) == -EINVAL);   /* msync only */
	CHECK(cf_persist_new(loop, 4096, CF_PERSIST_THREAD, slow_persist, NULL, &p) == 0);
	cf_persist_add(p, 100, 8);
	CHECK(cf_persist_after(p, cb_done_count, (void *)1) == 0);
	t0 = cf_mono_ns();
	ev_run(loop, EVRUN_NOWAIT); /* the commit point: handed over, not waited for */
	CHECK(cf_mono_ns() - t0 < 40000000ull);
	CHECK(cb_n == 0 && cf_persist_pending(p));
	/* meanwhile: two more ranges and callbacks, and one to cancel in flight */
	cf_persist_add(p, 8192, 8);
	cf_persist_add(p, 1u << 20, 8);
	CHECK(cf_persist_after(p, cb_done_count, (void *)2) == 0);
	CHECK(cf_persist_after(p, cb_done_count, (void *)3) == 0);
	ev_run(loop, EVRUN_NOWAIT);
	CHECK(atomic_load(&slow_calls) <= atomic_load(&slow_done) + 1); /* one batch at a time */
	run_until(p, 2);
	CHECK(atomic_load(&slow_calls) == 2); /* what waited went out as one batch */
	CHECK(slow_lo[0] == 100 && slow_len[0] == 8);
	CHECK(slow_lo[1] == 8192 && slow_len[1] == (1u << 20) + 8 - 8192);
	/* each callback after its own persist returned: 1 after the first, 2 and 3 after the second */
	CHECK(cb_n == 3 && cb_seen[0] == 101 && cb_seen[1] == 202 && cb_seen[2] == 302);

	/* cancel in flight; a synchronous commit waits for the batch, then commits the rest itself */
	cb_n = 0;
	cf_persist_add(p, 300, 8);
	CHECK(cf_persist_after(p, cb_done_count, (void *)4) == 0);
	ev_run(loop, EVRUN_NOWAIT);
	CHECK(cf_persist_cancel(p, cb_done_count, (void *)4) == 0);
	cf_persist_add(p, 400, 8);
	CHECK(cf_persist_after(p, cb_done_count, (void *)5) == 0);
	cf_persist_commit(p);
	CHECK(atomic_load(&slow_done) == 4 && !cf_persist_pending(p));
	CHECK(cb_n == 1 && cb_seen[0] == 504);
	cf_persist_get_stats(p, &st);
	CHECK(st.calls == 4 && st.callbacks == 4);
	cf_persist_free(p);
}

/* 2b: adaptive */
static _Atomic int quick_calls;
static pthread_t quick_thr[16];

static void quick_persist(void *arg, uint64_t off, uint64_t len)
{
	int i = atomic_fetch_add(&quick_calls, 1);

	if (i < 16)
		quick_thr[i] = pthread_self();
	if (arg)
		usleep(2000); /* a disk */
}

static void test_persist_adaptive(void)
{
	for (int slow = 0; slow < 2; slow++) {
		struct cf_persist *p;
		int inloop = 0;
		atomic_store(&quick_calls, 0);
		CHECK(cf_persist_new(loop, 4096, CF_PERSIST_THREAD | CF_PERSIST_ADAPTIVE, quick_persist,
				     slow ? (void *)1 : NULL, &p) == 0);
		for (int b = 0; b < 6; b++) {
			cf_persist_add(p, 4096u * (uint64_t)b, 8);
			ev_run(loop, EVRUN_NOWAIT);
			for (int k = 0; k < 2000 && cf_persist_pending(p); k++)
				ev_run(loop, EVRUN_NOWAIT), usleep(100);
		}
		CHECK(atomic_load(&quick_calls) == 6);
		for (int i = 0; i < 6; i++)
			inloop += pthread_equal(quick_thr[i], pthread_self()) != 0;
		/* fast: the first in the thread (it starts there), then in the loop; slow: all in the thread */
		CHECK(slow ? inloop == 0 : (inloop == 5 && !pthread_equal(quick_thr[0], pthread_self())));
		cf_persist_free(p);
	}
}

int main(void)
{
	loop = ev_default_loop(0);
	test_persist_alone();
	test_persist_thread();
	test_persist_adaptive();
	if (failures)
		fprintf(stderr, "test_gcommit: %d check(s) failed\n", failures);
	else
		fprintf(stderr, "test_gcommit: ok\n");
	return failures ? 1 : 0;
}
