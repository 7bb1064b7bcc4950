/* SPDX-License-Identifier: MIT */
/*
 * test_metrics - cfserver/cf_metrics.c on a hand-made image: the text says
 * what the image holds (lock words per instance from X and S words, node
 * counters of ACTIVE systems only, log bytes only while the home system owns
 * its instance), the persist histogram is cumulative with +Inf = _count, the
 * text ends with "# EOF"; and the chunked answers: a new snapshot, its chunks
 * by offset reassembling the text, a reused snapshot inside the minimum age,
 * -EINVAL past the end or for an offset without a snapshot, -ESTALE once a
 * snapshot was replaced by CF_METRICS_SNAPSHOTS newer ones.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_metrics.h"
#include "cf_words.h"

#include "unit_check.h"

static struct cf_metrics_view view;
static unsigned fills;

static void fill(void *arg, struct cf_metrics_view *v)
{
	(void)arg;
	*v = view;
	fills++;
}

static int has(const char *text, const char *line)
{
	char want[256];

	snprintf(want, sizeof(want), "\n%s\n", line);
	return strstr(text, want) != NULL;
}

int main(void)
{
	struct cf_geometry g = {4, 4, 64, 16, 64 * 1024};
	static struct cf_metrics m;
	struct cf_image_map map;
	struct cf_metrics_req q;
	static struct cf_metrics_r r;
	struct cf_sys_slot *ss;
	struct cf_hb_slot *hb;
	struct cf_inst_slot *is;
	uint64_t *locks;
	uint8_t *img;
	char *text, *again;
	uint32_t len, got;
	uint64_t first;

	cf_image_map(&g, &map);
	img = calloc(1, map.image_size);
	CHECK(img != NULL);
	if (!img)
		return 1;
	/* SYS1 ACTIVE (epoch 2) with NTS001 at home; SYS2 FAILED with a stale slot; NTS002 ACTIVE under SYS1 */
	ss = (void *)(img + cf_sys_off(&map, 0));
	ss->state = cf_sysword(CF_SYS_ACTIVE, 2);
	strcpy(ss->name, "SYS1");
	ss = (void *)(img + cf_sys_off(&map, 1));
	ss->state = cf_sysword(CF_SYS_FAILED, 1);
	strcpy(ss->name, "SYS\"2");
	hb = (void *)(img + cf_hb_off(&map, 0));
	hb->hb = 77, hb->commits = 5, hb->aborts = 1, hb->inflight = 2, hb->locks_held = 3, hb->home_inst = 1,
	hb->log_used = 100;
	hb = (void *)(img + cf_hb_off(&map, 1));
	hb->commits = 999, hb->home_inst = 2, hb->log_used = 555;
	is = (void *)(img + cf_inst_off(&map, 0));
	is->reg = cf_reg_active(0, 2, 0);
	is->home_sys = 0;
	strcpy(is->name, "NTS001");
	is = (void *)(img + cf_inst_off(&map, 1));
	is->reg = cf_reg_active(0, 2, 1); /* a counterpart (SYS1) recovers SYS2's home instance */
	is->home_sys = 1;
	strcpy(is->name, "NTS002");
	locks = (uint64_t *)(img + map.off_locks);
	locks[3] = cf_lock_x(0, 2);
	locks[5] = CF_LOCK_SBIT | 0x3; /* S, held by instances 0 and 1 */
	locks[9] = cf_lock_x(1, 2);

	view.map = &map;
	view.base = img;
	view.conns[CF_MC_SYSTEM] = 3;
	view.conns[CF_MC_MONITOR] = 1;
	view.takeovers = 4;
	view.restart_state = CF_RESTART_RECOVERY;
	view.restart_left = 1;
	view.duplexed = 1;
	view.duplex_link = CF_DUPLEX_IN_SYNC;
	view.duplex_synced = map.image_size;
	view.image_bytes = map.image_size;
	cf_metrics_init(&m);
	m.joins = 6;
	m.failures[CF_FAIL_HB_TIMEOUT] = 2;
	m.failures[CF_FAIL_EXITING] = 5; /* every cause has its label (cf_restart and no_resume were "none") */
	m.failures[CF_FAIL_NO_RESUME] = 7;
	cf_metrics_persist_time(&m, 500);       /* le 1e-06 */
	cf_metrics_persist_time(&m, 2000000);   /* le 0.0025 */
	cf_metrics_persist_time(&m, 1000000000); /* +Inf only */

	CHECK(cf_metrics_render(&m, &view, &text, &len) == 0);
	CHECK(len == strlen(text) && len > CF_METRICS_CHUNK);
	CHECK(len >= 6 && !strcmp(text + len - 6, "# EOF\n"));
	CHECK(has(text, "cfplex_connections{role=\"system\"} 3"));
	CHECK(has(text, "cfplex_joins_total 6"));
	CHECK(has(text, "cfplex_failures_total{cause=\"hb_timeout\"} 2"));
	CHECK(has(text, "cfplex_failures_total{cause=\"exiting\"} 5"));
	CHECK(has(text, "cfplex_failures_total{cause=\"no_resume\"} 7"));
	CHECK(has(text, "cfplex_failures_total{cause=\"cf_restart\"} 0"));
	CHECK(has(text, "cfplex_takeover_refusals_total 4"));
	CHECK(has(text, "cfplex_restart_recovery 1") && has(text, "cfplex_restart_recovery_instances_left 1"));
	CHECK(has(text, "cfplex_systems{state=\"active\"} 1") && has(text, "cfplex_systems{state=\"failed\"} 1"));
	CHECK(has(text, "cfplex_instances{state=\"active\"} 2") && has(text, "cfplex_instances{state=\"free\"} 2"));
	CHECK(has(text, "cfplex_lock_words_nonzero 3"));
	CHECK(has(text, "cfplex_instance_lock_words_held{instance=\"NTS001\"} 2"));
	CHECK(has(text, "cfplex_instance_lock_words_held{instance=\"NTS002\"} 2"));
	/* node counters: the ACTIVE system's slot only */
	CHECK(has(text, "cfplex_node_commits_total{system=\"SYS1\"} 5"));
	CHECK(has(text, "cfplex_node_heartbeats_total{system=\"SYS1\"} 77"));
	CHECK(has(text, "cfplex_node_open_transactions{system=\"SYS1\"} 2"));
	CHECK(strstr(text, "999") == NULL && strstr(text, "SYS\\\"2") == NULL);
	/* log bytes: NTS001 at home; not NTS002, which a counterpart owns (its home's slot is not about it) */
	CHECK(has(text, "cfplex_instance_log_bytes_used{instance=\"NTS001\"} 100"));
	CHECK(strstr(text, "log_bytes_used{instance=\"NTS002\"}") == NULL);
	/* the histogram: cumulative, +Inf = count */
	CHECK(has(text, "cfplex_persist_seconds_bucket{le=\"1e-06\"} 1"));
	CHECK(has(text, "cfplex_persist_seconds_bucket{le=\"0.001\"} 1"));
	CHECK(has(text, "cfplex_persist_seconds_bucket{le=\"0.0025\"} 2"));
	CHECK(has(text, "cfplex_persist_seconds_bucket{le=\"0.1\"} 2"));
	CHECK(has(text, "cfplex_persist_seconds_bucket{le=\"+Inf\"} 3"));
	CHECK(has(text, "cfplex_persist_seconds_count 3"));
	CHECK(has(text, "cfplex_duplexed 1") && has(text, "cfplex_duplex_link{state=\"in_sync\"} 1") &&
	      has(text, "cfplex_duplex_link{state=\"alone\"} 0"));

	/* a new snapshot, then its chunks by offset: the same text */
	memset(&q, 0, sizeof(q));
	cf_metrics_answer(&m, &q, fill, NULL, &r);
	CHECK(r.status == 0 && r.snapshot != 0 && r.offset == 0 && r.len == CF_METRICS_CHUNK && fills == 1);
	first = r.snapshot;
	again = calloc(1, (size_t)r.total + 1);
	CHECK(again != NULL);
	memcpy(again, r.text, r.len);
	got = r.len;
	while (again && got < r.total) {
		q.snapshot = first;
		q.offset = got;
		cf_metrics_answer(&m, &q, fill, NULL, &r);
		CHECK(r.status == 0 && r.snapshot == first && r.offset == got && r.len > 0);
		if (r.status || !r.len)
			break;
		memcpy(again + got, r.text, r.len);
		got += r.len;
	}
	CHECK(again && got == r.total && !strcmp(again + got - 6, "# EOF\n"));
	CHECK(fills == 1); /* chunks come from the snapshot, not a new rendering */
	/* past the end; an offset without a snapshot; an unknown snapshot */
	q.snapshot = first;
	q.offset = r.total + 1;
	cf_metrics_answer(&m, &q, fill, NULL, &r);
	CHECK(r.status == -EINVAL);
	q.snapshot = 0;
	q.offset = 8;
	cf_metrics_answer(&m, &q, fill, NULL, &r);
	CHECK(r.status == -EINVAL);
	q.snapshot = first + 100;
	q.offset = 0;
	cf_metrics_answer(&m, &q, fill, NULL, &r);
	CHECK(r.status == -ESTALE);
	/* inside the minimum age a new request gets the same snapshot, not a rendering */
	memset(&q, 0, sizeof(q));
	cf_metrics_answer(&m, &q, fill, NULL, &r);
	CHECK(r.status == 0 && r.snapshot == first && fills == 1);
	/* older than that: new ones; after CF_METRICS_SNAPSHOTS of them the first is gone */
	for (unsigned k = 0; k < CF_METRICS_SNAPSHOTS; k++) {
		for (unsigned i = 0; i < CF_METRICS_SNAPSHOTS; i++)
			m.snap[i].taken_ns = 0;
		memset(&q, 0, sizeof(q));
		cf_metrics_answer(&m, &q, fill, NULL, &r);
		CHECK(r.status == 0 && r.snapshot > first);
		q.snapshot = first;
		q.offset = CF_METRICS_CHUNK;
		cf_metrics_answer(&m, &q, fill, NULL, &r);
		CHECK(k + 1 < CF_METRICS_SNAPSHOTS ? r.status == 0 : r.status == -ESTALE);
	}
	CHECK(fills == 1 + CF_METRICS_SNAPSHOTS);

	free(text);
	free(again);
	cf_metrics_fini(&m);
	free(img);
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	else
		printf("ok: metrics text and snapshots\n");
	return failures ? 1 : 0;
}
