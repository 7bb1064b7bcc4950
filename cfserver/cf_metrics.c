/* SPDX-License-Identifier: MIT */
/*
 * cf_metrics.c - the OpenMetrics text of cfserver (see cf_metrics.h).
 *
 * Format (OpenMetrics 1.0 text): every family has "# TYPE" (and "# HELP",
 * "# UNIT" for a unit) before its samples, a counter's samples end in _total,
 * label values are quoted and escaped, the text ends with "# EOF". Names are
 * cfplex_*. The node counters come from the heartbeat slots (docs/design.md
 * §9, "Status rides on the heartbeat"): only ACTIVE systems' slots are
 * current, so only they are shown; a counter starts again at a new
 * incarnation (a counter reset, which OpenMetrics allows).
 */
#include "cf_metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_util.h"
#include "cf_words.h"

/* Persist latency bucket bounds (seconds): 1 us .. 100 ms, then +Inf. */
static const uint64_t lat_le_ns[CF_METRICS_LAT_BUCKETS] = {
	1000,    2500,    5000,     10000,    25000,    50000,    100000,   250000,
	500000,  1000000, 2500000,  5000000,  10000000, 25000000, 50000000, 100000000,
};

void cf_metrics_init(struct cf_metrics *m)
{
	memset(m, 0, sizeof(*m));
	m->next_id = 1;
}

void cf_metrics_fini(struct cf_metrics *m)
{
	for (unsigned i = 0; i < CF_METRICS_SNAPSHOTS; i++) {
		free(m->snap[i].text);
		m->snap[i].text = NULL;
	}
}

void cf_metrics_persist_time(struct cf_metrics *m, uint64_t ns)
{
	unsigned b = 0;

	while (b < CF_METRICS_LAT_BUCKETS && ns > lat_le_ns[b])
		b++;
	__atomic_fetch_add(&m->lat_b[b], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&m->lat_sum_ns, ns, __ATOMIC_RELAXED);
	__atomic_fetch_add(&m->lat_count, 1, __ATOMIC_RELAXED);
}

static uint64_t ld(const uint64_t *w)
{
	return __atomic_load_n(w, __ATOMIC_RELAXED);
}

/* A label value: names are [A-Za-z0-9_.-] (cf_name_check), but a member wrote them: escape anyway. */
static void label(FILE *f, const char *field, size_t cap)
{
	fputc('"', f);
	for (size_t i = 0; i < cap && field[i]; i++) {
		char c = field[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
			fputc('?', f);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# TYPE %s %s\n# HELP %s %s\n", name, type, name, help);
}

static void counter(FILE *f, const char *name, const char *help, uint64_t v)
{
	family(f, name, "counter", help);
	fprintf(f, "%s_total %llu\n", name, (unsigned long long)v);
}

static void gauge(FILE *f, const char *name, const char *help, double v)
{
	family(f, name, "gauge", help);
	fprintf(f, "%s %.17g\n", name, v);
}

static const char *const conn_role[CF_MC_COUNT] = {"handshake", "system", "console", "monitor", "closing"};
static const char *const cause_label[CF_METRICS_CAUSES] = {
	"none", "conn_lost", "hb_timeout", "readmit", "protocol", "cf_restart", "no_resume", "exiting",
};
_Static_assert(CF_FAIL_EXITING + 1 == CF_METRICS_CAUSES, "a label for every enum cf_fail_cause");

static void render_systems(FILE *f, const struct cf_metrics_view *v)
{
	const struct cf_image_map *m = v->map;
	uint32_t nst[CF_SYS_STATE_MAX + 1] = {0};
	static const struct {
		const char *name, *type, *help;
		size_t off;
	} node[] = {
		{"cfplex_node_commits", "counter", "transactions committed by the system's current incarnation (heartbeat slot)",
		 offsetof(struct cf_hb_slot, commits)},
		{"cfplex_node_aborts", "counter", "transactions aborted by the system's current incarnation (heartbeat slot)",
		 offsetof(struct cf_hb_slot, aborts)},
		{"cfplex_node_open_transactions", "gauge", "open transactions of the system (heartbeat slot)",
		 offsetof(struct cf_hb_slot, inflight)},
		{"cfplex_node_locks_held", "gauge", "lock record-list entries in use by the system (heartbeat slot)",
		 offsetof(struct cf_hb_slot, locks_held)},
		{"cfplex_node_log_bytes_used", "gauge", "bytes in use in the system's home instance log (heartbeat slot)",
		 offsetof(struct cf_hb_slot, log_used)},
		{"cfplex_node_heartbeats", "counter", "heartbeats of the system's current incarnation",
		 offsetof(struct cf_hb_slot, hb)},
	};

	for (uint32_t s = 0; s < m->geo.max_systems; s++) {
		const struct cf_sys_slot *ss = (const void *)(v->base + cf_sys_off(m, s));
		uint32_t st = cf_sysword_state(ld(&ss->state));
		if (st <= CF_SYS_STATE_MAX && (st != CF_SYS_FREE || ss->name[0]))
			nst[st]++;
	}
	family(f, "cfplex_systems", "gauge", "system slots in use, by state (free: left cleanly)");
	for (uint32_t st = 0; st <= CF_SYS_STATE_MAX; st++)
		fprintf(f, "cfplex_systems{state=\"%s\"} %u\n", st == CF_SYS_FREE ? "free" : st == CF_SYS_ACTIVE ? "active" : "failed",
			nst[st]);
	for (size_t k = 0; k < CF_ARRAY_SIZE(node); k++) {
		family(f, node[k].name, node[k].type, node[k].help);
		for (uint32_t s = 0; s < m->geo.max_systems; s++) {
			const struct cf_sys_slot *ss = (const void *)(v->base + cf_sys_off(m, s));
			const uint8_t *hb = v->base + cf_hb_off(m, s);
			if (cf_sysword_state(ld(&ss->state)) != CF_SYS_ACTIVE)
				continue;
			fprintf(f, "%s%s{system=", node[k].name, node[k].type[0] == 'c' ? "_total" : "");
			label(f, ss->name, CF_NAME_MAX);
			fprintf(f, "} %llu\n", (unsigned long long)ld((const uint64_t *)(hb + node[k].off)));
		}
	}
}

static void render_instances(FILE *f, const struct cf_metrics_view *v)
{
	const struct cf_image_map *m = v->map;
	const uint64_t *lw = (const uint64_t *)(v->base + m->off_locks);
	uint32_t held[CF_MAX_INSTANCES_LIMIT] = {0}, nst[CF_REG_STATE_MAX + 1] = {0};
	uint64_t nonzero = 0;

	/* one pass over the lock table: which instances each word names as holders */
	for (uint32_t k = 0; k < m->geo.lock_entries; k++) {
		uint64_t w = ld(&lw[k]);
		if (!w)
			continue;
		nonzero++;
		if (!cf_lock_valid(w))
			continue;
		if (cf_lock_is_x(w)) {
			if (cf_lock_x_inst(w) < CF_MAX_INSTANCES_LIMIT)
				held[cf_lock_x_inst(w)]++;
		} else {
			for (uint64_t b = cf_lock_s_holders(w); b; b &= b - 1)
				held[__builtin_ctzll(b)]++;
		}
	}
	for (uint32_t i = 0; i < m->geo.max_instances; i++)
		if (cf_reg_state(ld(&((const struct cf_inst_slot *)(v->base + cf_inst_off(m, i)))->reg)) <= CF_REG_STATE_MAX)
			nst[cf_reg_state(ld(&((const struct cf_inst_slot *)(v->base + cf_inst_off(m, i)))->reg))]++;
	family(f, "cfplex_instances", "gauge", "instance slots by registration state");
	for (uint32_t st = 0; st <= CF_REG_STATE_MAX; st++)
		fprintf(f, "cfplex_instances{state=\"%s\"} %u\n",
			st == CF_REG_FREE ? "free" : st == CF_REG_CLEAN ? "inactive_clean" : st == CF_REG_FAILED ? "inactive_failed" : "active",
			nst[st]);
	gauge(f, "cfplex_lock_words_nonzero", "lock words (hash classes) held by anyone", (double)nonzero);
	family(f, "cfplex_instance_lock_words_held", "gauge", "lock words (hash classes) that name the instance as a holder");
	for (uint32_t i = 0; i < m->geo.max_instances; i++) {
		const struct cf_inst_slot *is = (const void *)(v->base + cf_inst_off(m, i));
		if (!is->name[0])
			continue;
		fprintf(f, "cfplex_instance_lock_words_held{instance=");
		label(f, is->name, CF_NAME_MAX);
		fprintf(f, "} %u\n", held[i]);
	}
	/* log use rides on the home system's heartbeat: current only while that system owns it (as cfctl status) */
	family(f, "cfplex_instance_log_bytes_used", "gauge",
	       "bytes in use in the instance's undo log, while its home system runs it");
	for (uint32_t i = 0; i < m->geo.max_instances; i++) {
		const struct cf_inst_slot *is = (const void *)(v->base + cf_inst_off(m, i));
		uint64_t w = ld(&is->reg);
		uint32_t h = is->home_sys;
		const struct cf_hb_slot *hb;
		if (!is->name[0] || h >= m->geo.max_systems || cf_reg_state(w) != CF_REG_ACTIVE || cf_reg_owner(w) != h)
			continue;
		hb = (const void *)(v->base + cf_hb_off(m, h));
		if (ld(&hb->home_inst) != (uint64_t)i + 1)
			continue;
		fprintf(f, "cfplex_instance_log_bytes_used{instance=");
		label(f, is->name, CF_NAME_MAX);
		fprintf(f, "} %llu\n", (unsigned long long)ld(&hb->log_used));
	}
}

static void render_duplex(FILE *f, const struct cf_metrics_view *v)
{
	static const char *const link[] = {"alone", "syncing", "in_sync", "fencing"};

	gauge(f, "cfplex_image_bytes", "size of the CF image", (double)v->image_bytes);
	gauge(f, "cfplex_duplexed", "1: a duplexed primary (--duplex-listen)", v->duplexed);
	if (!v->duplexed)
		return;
	family(f, "cfplex_duplex_link", "gauge", "the link to the secondary: 1 for its state");
	for (uint32_t k = 0; k < CF_ARRAY_SIZE(link); k++)
		fprintf(f, "cfplex_duplex_link{state=\"%s\"} %d\n", link[k], v->duplex_link == k);
	gauge(f, "cfplex_duplex_synced_bytes", "bytes of the image the secondary has copied", (double)v->duplex_synced);
}

static void render_persist(FILE *f, const struct cf_metrics *mt, const struct cf_metrics_view *v)
{
	uint64_t cum = 0;

	gauge(f, "cfplex_durable", "1: the image is on --nvram and persisted; 0: DRAM", v->durable);
	counter(f, "cfplex_persist_requests", "PERSIST requests that waited for a group commit", v->persist_requests);
	counter(f, "cfplex_persist_refused", "PERSIST requests refused (range not inside a write grant)",
		v->persist_refused);
	counter(f, "cfplex_persist_answer_groups", "group commits that answered PERSIST requests", v->persist_groups);
	gauge(f, "cfplex_persist_answer_group_max", "most PERSIST requests answered by one group commit",
	      (double)v->persist_max_group);
	counter(f, "cfplex_group_commits", "group commits (persisted something or ran callbacks)",
		v->have_gc ? v->gc.commits : 0);
	counter(f, "cfplex_group_commit_persist_calls", "persist calls of the group commit (msyncs on a file)",
		v->have_gc ? v->gc.calls : 0);
	counter(f, "cfplex_group_commit_ranges", "ranges added to the group commit", v->have_gc ? v->gc.ranges : 0);
	counter(f, "cfplex_group_commit_bytes", "bytes handed to the persist calls of the group commit",
		v->have_gc ? v->gc.bytes : 0);
	fprintf(f, "# TYPE cfplex_persist_seconds histogram\n# UNIT cfplex_persist_seconds seconds\n"
		   "# HELP cfplex_persist_seconds duration of one persist of image bytes (group commit and control "
		   "path)\n");
	for (unsigned b = 0; b <= CF_METRICS_LAT_BUCKETS; b++) {
		cum += ld(&mt->lat_b[b]);
		if (b < CF_METRICS_LAT_BUCKETS)
			fprintf(f, "cfplex_persist_seconds_bucket{le=\"%g\"} %llu\n", (double)lat_le_ns[b] / 1e9,
				(unsigned long long)cum);
		else
			fprintf(f, "cfplex_persist_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	}
	/* count from the buckets, so that count == +Inf bucket even while the persister thread adds */
	fprintf(f, "cfplex_persist_seconds_count %llu\ncfplex_persist_seconds_sum %.9f\n", (unsigned long long)cum,
		(double)ld(&mt->lat_sum_ns) / 1e9);
}

int cf_metrics_render(const struct cf_metrics *mt, const struct cf_metrics_view *v, char **out, uint32_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	if (!f)
		return -ENOMEM;
	family(f, "cfplex_connections", "gauge", "open connections, by role");
	for (unsigned r = 0; r < CF_MC_COUNT; r++)
		fprintf(f, "cfplex_connections{role=\"%s\"} %u\n", conn_role[r], v->conns[r]);
	counter(f, "cfplex_joins", "JOINs admitted (new system incarnations)", mt->joins);
	family(f, "cfplex_failures", "counter", "systems declared failed by the CF, by cause");
	for (unsigned c = 1; c < CF_METRICS_CAUSES; c++)
		fprintf(f, "cfplex_failures_total{cause=\"%s\"} %llu\n", cause_label[c],
			(unsigned long long)mt->failures[c]);
	counter(f, "cfplex_fences", "connections fenced by failure processing (step 1)", mt->fences);
	counter(f, "cfplex_takeover_refusals", "INST_ATTACH/INST_UNREG refused as takeover attempts", v->takeovers);
	counter(f, "cfplex_resumes", "systems kept at a duplexed takeover that came back to this CF", v->resumes);
	counter(f, "cfplex_registrations_restored", "registration words the CF put back (not granted by it)",
		v->restored);
	counter(f, "cfplex_suspects", "SUSPECT reports from systems", v->suspects);
	counter(f, "cfplex_lock_waits", "lock waits queued at the CF (LOCK_WAIT, lock hand-off)", v->lock_waits);
	counter(f, "cfplex_lock_handoffs", "lock waits the CF granted after a release (by event)", v->lock_granted_later);
	counter(f, "cfplex_lock_granted_at_once", "lock waits granted in the LOCK_WAIT reply", v->lock_granted_now);
	counter(f, "cfplex_lock_wait_cancels", "lock waits that timed out and left the queue", v->lock_cancels);
	counter(f, "cfplex_lock_waits_dropped", "lock waits dropped with their connection", v->lock_dropped);
	counter(f, "cfplex_lock_kicks", "releases of a queued class told to the CF (LOCK_KICK)", v->lock_kicks);
	family(f, "cfplex_lock_wait_seconds", "counter", "queued to granted, summed over the granted lock waits");
	fprintf(f, "cfplex_lock_wait_seconds_total %.9f\n", (double)v->lock_wait_ns_sum / 1e9);
	gauge(f, "cfplex_lock_waiting", "lock waits queued at the CF now", v->lock_waiting);
	counter(f, "cfplex_monitor_refused", "requests refused on monitor connections (then closed)",
		mt->monitor_refused);
	gauge(f, "cfplex_restart_recovery", "1 while the CF is in restart recovery (attaches for new work wait)",
	      v->restart_state == CF_RESTART_RECOVERY);
	gauge(f, "cfplex_restart_recovery_instances_left", "instances still to be recovered before the CF opens",
	      v->restart_left);
	gauge(f, "cfplex_heartbeat_interval_seconds", "h: how often the systems beat", (double)v->hb_interval_ns / 1e9);
	gauge(f, "cfplex_heartbeat_timeout_seconds", "T: heartbeat silence that fails a system",
	      (double)v->hb_timeout_ns / 1e9);
	render_systems(f, v);
	render_instances(f, v);
	render_persist(f, mt, v);
	render_duplex(f, v);
	counter(f, "cfplex_metrics_snapshots", "metrics snapshots rendered (this one included)", mt->snapshots + 1);
	fputs("# EOF\n", f);
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	if (n > CF_METRICS_TEXT_MAX) {
		free(buf);
		return -E2BIG;
	}
	*out = buf;
	*len = (uint32_t)n;
	return 0;
}

static struct cf_metrics_snap *snap_find(struct cf_metrics *m, uint64_t id)
{
	for (unsigned i = 0; i < CF_METRICS_SNAPSHOTS; i++)
		if (m->snap[i].text && m->snap[i].id == id)
			return &m->snap[i];
	return NULL;
}

static struct cf_metrics_snap *snap_newest(struct cf_metrics *m)
{
	struct cf_metrics_snap *n = NULL;

	for (unsigned i = 0; i < CF_METRICS_SNAPSHOTS; i++)
		if (m->snap[i].text && (!n || m->snap[i].id > n->id))
			n = &m->snap[i];
	return n;
}

static int snap_take(struct cf_metrics *m, cf_metrics_fill_fn *fill, void *arg, struct cf_metrics_snap **out)
{
	struct cf_metrics_snap *s = snap_newest(m), *victim = &m->snap[0];
	struct cf_metrics_view v;
	uint64_t now = cf_mono_ns();
	char *text;
	uint32_t len;
	int r;

	/* at most ~5 % of the loop's time: a 2^24-word lock table takes tens of ms to scan */
	uint64_t min_age = m->render_ns * 20 > CF_METRICS_MIN_AGE_NS ? m->render_ns * 20 : CF_METRICS_MIN_AGE_NS;

	if (s && now - s->taken_ns < min_age) {
		*out = s;
		return 0;
	}
	memset(&v, 0, sizeof(v));
	fill(arg, &v);
	r = cf_metrics_render(m, &v, &text, &len);
	if (r < 0)
		return r;
	m->render_ns = cf_mono_ns() - now;
	for (unsigned i = 0; i < CF_METRICS_SNAPSHOTS; i++) {
		if (!m->snap[i].text) {
			victim = &m->snap[i];
			break;
		}
		if (m->snap[i].id < victim->id)
			victim = &m->snap[i];
	}
	free(victim->text);
	victim->text = text;
	victim->len = len;
	victim->id = m->next_id++;
	victim->taken_ns = now;
	m->snapshots++;
	*out = victim;
	return 0;
}

void cf_metrics_answer(struct cf_metrics *m, const struct cf_metrics_req *q, cf_metrics_fill_fn *fill, void *arg,
		       struct cf_metrics_r *r)
{
	struct cf_metrics_snap *s;
	uint32_t n;

	memset(r, 0, sizeof(*r));
	if (!q->snapshot) {
		r->status = q->offset ? -EINVAL : snap_take(m, fill, arg, &s);
		if (r->status < 0)
			return;
	} else if (!(s = snap_find(m, q->snapshot))) {
		r->status = -ESTALE;
		r->snapshot = q->snapshot;
		return;
	}
	r->snapshot = s->id;
	r->total = s->len;
	if (q->offset > s->len) {
		r->status = -EINVAL;
		return;
	}
	n = s->len - q->offset < CF_METRICS_CHUNK ? s->len - q->offset : CF_METRICS_CHUNK;
	r->offset = q->offset;
	r->len = n;
	memcpy(r->text, s->text + q->offset, n);
}
