/* SPDX-License-Identifier: MIT */
/*
 * test_pbatch - cfserver's grouping of PERSIST requests (cfserver/cf_pbatch.c):
 * the requests queued in one loop iteration are persisted once per merged
 * range, before the loop blocks, and only then answered; a closing
 * connection's requests are dropped unanswered.
 */
#include <ev.h>
#include <stdio.h>
#include <string.h>

#include "cf_pbatch.h"

static int failures;
#define CHECK(c)                                                                   \
	do {                                                                       \
		if (!(c)) {                                                        \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
			failures++;                                                \
		}                                                                  \
	} while (0)

static struct {
	uint64_t off, len;
} persisted[64];
static unsigned npersisted, nanswered, answered_before_persist;
static uint64_t answered_ids[64];

static void fake_persist(void *arg, uint64_t off, uint64_t len)
{
	persisted[npersisted].off = off;
	persisted[npersisted].len = len;
	npersisted++;
}

static void fake_answer(void *arg, void *owner, uint64_t id, int status)
{
	if (!npersisted)
		answered_before_persist++;
	answered_ids[nanswered++] = id;
}

static void test_merge(void)
{
	struct cf_pbatch_req v[] = {
		{NULL, 1, 100, 10}, {NULL, 2, 0, 50}, {NULL, 3, 40, 20}, {NULL, 4, 200, 1},
		{NULL, 5, 60, 5},   {NULL, 6, 105, 2}, {NULL, 7, 0, 8},
	};
	size_t k = cf_pbatch_merge(v, sizeof(v) / sizeof(v[0]));

	CHECK(k == 3);
	CHECK(v[0].off == 0 && v[0].len == 65);   /* [0,50) [40,60) [60,65) [0,8): touching ranges merge */
	CHECK(v[1].off == 100 && v[1].len == 10); /* [100,110) swallows [105,107) */
	CHECK(v[2].off == 200 && v[2].len == 1);
	CHECK(cf_pbatch_merge(v, 0) == 0);
}

static void test_group(void)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct cf_pbatch b;
	int a, c, d; /* three connections */

	cf_pbatch_init(&b, loop, NULL, fake_persist, fake_answer);
	/* one iteration's input: five requests of three connections, two ranges after merging */
	CHECK(cf_pbatch_add(&b, &a, 11, 4096, 128) == 0);
	CHECK(cf_pbatch_add(&b, &c, 21, 4096 + 128, 64) == 0);
	CHECK(cf_pbatch_add(&b, &d, 31, 1 << 20, 4096) == 0);
	CHECK(cf_pbatch_add(&b, &a, 12, 4096 + 64, 64) == 0);
	CHECK(cf_pbatch_add(&b, &c, 22, (1 << 20) + 100, 10) == 0);
	CHECK(cf_pbatch_has(&b, &a) && cf_pbatch_has(&b, &d));
	CHECK(npersisted == 0 && nanswered == 0); /* nothing before the loop's prepare */
	ev_run(loop, EVRUN_NOWAIT);
	CHECK(npersisted == 2);
	CHECK(persisted[0].off == 4096 && persisted[0].len == 192);
	CHECK(persisted[1].off == (1 << 20) && persisted[1].len == 4096);
	CHECK(nanswered == 5 && answered_before_persist == 0);
	CHECK(answered_ids[0] == 11 && answered_ids[4] == 22); /* arrival order */
	CHECK(b.st.requests == 5 && b.st.flushes == 1 && b.st.ranges == 2 && b.st.max_group == 5);
	CHECK(!cf_pbatch_has(&b, &a));
	/* nothing queued: the next iteration persists nothing */
	ev_run(loop, EVRUN_NOWAIT);
	CHECK(npersisted == 2 && b.st.flushes == 1);
	/* a closing connection's request is dropped unanswered */
	npersisted = nanswered = 0;
	CHECK(cf_pbatch_add(&b, &a, 13, 0, 8) == 0);
	CHECK(cf_pbatch_add(&b, &c, 23, 8192, 8) == 0);
	cf_pbatch_forget(&b, &a);
	cf_pbatch_flush(&b); /* the core's flush before a later request of c */
	CHECK(npersisted == 1 && persisted[0].off == 8192);
	CHECK(nanswered == 1 && answered_ids[0] == 23);
	cf_pbatch_fini(&b);
	ev_loop_destroy(loop);
}

int main(void)
{
	test_merge();
	test_group();
	if (failures) {
		fprintf(stderr, "test_pbatch: %d failure(s)\n", failures);
		return 1;
	}
	printf("test_pbatch: ok\n");
	return 0;
}
