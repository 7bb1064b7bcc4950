/* SPDX-License-Identifier: MIT */
/*
 * test_watch - node-side detection (node/cf_watch.c) on hand-made snapshots
 * of the system table and the heartbeat slots: a peer whose counter stands
 * still for more than T is reported once per T, never before; a counter that
 * moves restarts its clock; a new incarnation (epoch) starts a fresh clock; a
 * system that is not ACTIVE, or this system itself, is never reported; the
 * clock is the observer's sight of the move, so a late first look does not
 * count the time before it.
 */
#include <stdio.h>
#include <string.h>

#include "cf_watch.h"
#include "cf_words.h"

#include "unit_check.h"

#define MS 1000000ull
#define N 4

static struct cf_sys_slot sys[N];
static struct cf_hb_slot hb[N];

static void active(uint32_t k, uint32_t epoch)
{
	sys[k].state = cf_sysword(CF_SYS_ACTIVE, epoch);
	hb[k].epoch = epoch;
}

int main(void)
{
	struct cf_watch w;
	struct cf_suspect s[N];
	uint64_t t = 1000 * MS;

	memset(sys, 0, sizeof(sys));
	memset(hb, 0, sizeof(hb));
	hb[1].hb = hb[2].hb = 1; /* both have beaten; the starting case is at the end */
	cf_watch_init(&w, 0, N, 50 * MS);
	active(0, 1); /* this system: never reported */
	active(1, 4);
	active(2, 7);
	sys[3].state = cf_sysword(CF_SYS_FAILED, 2); /* not ACTIVE: never reported */

	CHECK(cf_watch_observe(&w, sys, hb, t, s, N) == 0); /* first sight starts the clocks */
	hb[2].hb++;
	CHECK(cf_watch_observe(&w, sys, hb, t + 40 * MS, s, N) == 0);
	/* 1 silent 50 ms (not more): nothing yet */
	CHECK(cf_watch_observe(&w, sys, hb, t + 50 * MS, s, N) == 0);
	/* 1 silent 51 ms: reported; 2 moved at +40: silent 11 ms */
	CHECK(cf_watch_observe(&w, sys, hb, t + 51 * MS, s, N) == 1);
	CHECK(s[0].sys == 1 && s[0].epoch == 4 && s[0].hb == 1 && s[0].silent_ms == 51);
	/* reported once per T */
	CHECK(cf_watch_observe(&w, sys, hb, t + 91 * MS, s, N) == 1 && s[0].sys == 2); /* moved at +40 */
	CHECK(cf_watch_observe(&w, sys, hb, t + 100 * MS, s, N) == 0);
	CHECK(cf_watch_observe(&w, sys, hb, t + 102 * MS, s, N) == 1 && s[0].sys == 1 && s[0].silent_ms == 102);
	/* 1's counter moves: its clock restarts, no report until T after */
	hb[1].hb = 9;
	CHECK(cf_watch_observe(&w, sys, hb, t + 110 * MS, s, N) == 0);
	CHECK(cf_watch_observe(&w, sys, hb, t + 142 * MS, s, N) == 1 && s[0].sys == 2); /* 2 again, T after */
	CHECK(cf_watch_observe(&w, sys, hb, t + 160 * MS, s, N) == 0);
	CHECK(cf_watch_observe(&w, sys, hb, t + 161 * MS, s, N) == 1 && s[0].sys == 1 && s[0].hb == 9);
	/* 2 fails and comes back as a new incarnation with the same counter value: a fresh clock */
	sys[2].state = cf_sysword(CF_SYS_FAILED, 7);
	CHECK(cf_watch_observe(&w, sys, hb, t + 170 * MS, s, N) == 0);
	active(2, 8);
	CHECK(cf_watch_observe(&w, sys, hb, t + 200 * MS, s, N) == 0);
	CHECK(cf_watch_observe(&w, sys, hb, t + 250 * MS, s, N) == 1 && s[0].sys == 1); /* 1 again; 2 silent 50, not more */
	CHECK(w.peer[2].epoch == 8 && w.peer[2].seen_ns == t + 200 * MS);
	/* an epoch change while ACTIVE (missed the FAILED in between): also a fresh clock */
	active(1, 5);
	CHECK(cf_watch_observe(&w, sys, hb, t + 400 * MS, s, N) == 1 && s[0].sys == 2);
	CHECK(w.peer[1].epoch == 5 && w.peer[1].seen_ns == t + 400 * MS);
	/* a garbage system word is ignored */
	sys[1].state = ~0ull;
	CHECK(cf_watch_observe(&w, sys, hb, t + 900 * MS, s, N) == 1 && s[0].sys == 2);
	CHECK(w.reports == 8);
	/* a system that has not beaten yet (counter 0) gets 2T: it is starting */
	cf_watch_init(&w, 0, N, 50 * MS);
	memset(sys, 0, sizeof(sys));
	memset(hb, 0, sizeof(hb));
	active(3, 1);
	CHECK(cf_watch_observe(&w, sys, hb, t, s, N) == 0);
	CHECK(cf_watch_observe(&w, sys, hb, t + 60 * MS, s, N) == 0);
	CHECK(cf_watch_observe(&w, sys, hb, t + 100 * MS, s, N) == 0);
	CHECK(cf_watch_observe(&w, sys, hb, t + 101 * MS, s, N) == 1 && s[0].sys == 3 && s[0].hb == 0);
	if (failures) {
		fprintf(stderr, "test_watch: %d failure(s)\n", failures);
		return 1;
	}
	printf("test_watch: ok\n");
	return 0;
}
