/* SPDX-License-Identifier: MIT */
/*
 * cf_sweep.c - failure detection at the CF: the heartbeat sweep, by the CF's
 * own monotonic clock (docs/design.md §7, "Who detects").
 *   (1) every --sweep-interval (default h/2), at the lowest priority so that
 *       the input of this loop iteration (a late heartbeat) is counted first,
 *       the sweep reads each live system's heartbeat word;
 *   (2) a counter that moved restarts that system's silence; a stall of this
 *       loop itself is credited, not counted as anyone's silence;
 *   (3) a counter unmoved for more than T: fail_system (cf_failure.c);
 *   (4) a connection still in its handshake after HANDSHAKE_TIMEOUT_NS is
 *       closed.
 * A SUSPECT report from a system only runs the sweep now; the CF's clock
 * still decides. The orphan scan (cf_failure.c) runs on its own timer, every
 * T.
 */
#include "cf_core_int.h"

#include <stdio.h>

#include "cf_fault.h"
#include "cf_slog.h"
#include "cf_util.h"

#define HANDSHAKE_TIMEOUT_NS (5ull * 1000000000ull)

static void sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct cf_core *c = w->data;
	uint64_t now = cf_mono_ns(), hb;
	uint32_t members = 0;
	char sn[CF_NAME_MAX];
	/*
	 * If this loop itself did not run for a while (no CPU, a long batch),
	 * heartbeats may have been sitting unread in socket buffers: silence
	 * across our own stall is not the systems' silence. The stall (beyond
	 * one sweep period) is not counted in anyone's heartbeat age. (The sweep
	 * runs at the lowest priority, so pending input of this iteration has
	 * been executed before it looks.) It used to restart every age at now,
	 * which gave a frozen system up to one more T whenever the loop stalled
	 * (SIGSTOP failover p99 98 ms at T = 50); only the stall is owed.
	 */
	uint64_t gap = c->last_sweep_ns ? now - c->last_sweep_ns : 0, credit = 0;

	if (gap > c->cfg.hb_timeout_ns / 4) {
		credit = gap > c->sweep_period_ns ? gap - c->sweep_period_ns : 0;
		cf_slog_debug("sweep: loop stalled %llu us: not counted in heartbeat ages",
			  (unsigned long long)(gap / 1000u));
	}
	c->last_sweep_ns = now;
	for (uint32_t s = 0; s < c->map->geo.max_systems; s++) {
		struct core_sys *cs = &c->sys[s];
		if (cs->kept && now > cs->hb_seen_ns) {
			/* kept at the takeover (keep_system), not back by its deadline */
			cf_slog_warn("sweep: %s did not come back within %llu ms of the takeover: failing it",
				     core_sys_name(c, s, sn), (unsigned long long)(c->cfg.resume_ns / 1000000u));
			fail_system(c, s, CF_FAIL_NO_RESUME);
			atomic_store(&c->cluster.silenced_ns, now);
			continue;
		}
		members += cs->kept || cs->live;
		if (!cs->live)
			continue;
		hb = load64(&hb_slot(c, s)->hb);
		if (hb != cs->hb_last) {
			cs->hb_last = hb;
			cs->hb_seen_ns = now;
			cs->suspected_by = 0;
			atomic_store(&c->cluster.heard_ns, now);
			continue;
		}
		/* a first-beat grace may put hb_seen_ns in the future: leave it */
		if (credit && cs->hb_seen_ns < now)
			cs->hb_seen_ns = now - cs->hb_seen_ns > credit ? cs->hb_seen_ns + credit : now;
		if (now > cs->hb_seen_ns && now - cs->hb_seen_ns > c->cfg.hb_timeout_ns) {
			char by[CF_NAME_MAX] = "";
			if (cs->suspected_by) {
				core_sys_name(c, (uint32_t)cs->suspected_by - 1, by);
				c->suspects_declared++;
			}
			cf_slog_info("sweep: %s heartbeat unchanged for %llu ms (T = %llu ms)%s%s", core_sys_name(c, s, sn),
				 (unsigned long long)((now - cs->hb_seen_ns) / 1000000u),
				 (unsigned long long)(c->cfg.hb_timeout_ns / 1000000u),
				 cs->suspected_by ? ": run at once on a SUSPECT from " : "", by);
			CF_FAULT("srv.mid_sweep");
			fail_system(c, s, CF_FAIL_HB_TIMEOUT);
			atomic_store(&c->cluster.silenced_ns, now);
		}
	}
	/* the duplex link's tie-breaker (cf_duplex.c): members first, then the time that dates them */
	atomic_store(&c->cluster.members, members);
	atomic_store(&c->cluster.swept_ns, now);
	/* limit on what an unauthenticated peer holds: a bounded handshake */
	for (struct core_conn *cc = c->conns; cc; cc = cc->next) {
		if ((cc->state == CS_NEW || cc->state == CS_CHALLENGED || cc->state == CS_AUTHED) &&
		    now - cc->accepted_ns > HANDSHAKE_TIMEOUT_NS) {
			cf_slog_warn("conn %s: handshake not finished in %llu s: closing", cc->peer,
				 (unsigned long long)(HANDSHAKE_TIMEOUT_NS / 1000000000ull));
			core_refuse(cc, 0, CF_FAIL_NONE, "handshake timeout");
		}
	}
}

static void orphan_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	orphan_scan(w->data);
}

/* The sweep every --sweep-interval (default h/2, at least 0.5 ms), at the lowest priority; the orphan scan every T. */
void sweep_start(struct cf_core *c)
{
	double sweep = (double)c->cfg.hb_interval_ns / 2e9, orphan = (double)c->cfg.hb_timeout_ns / 1e9;

	if (c->cfg.sweep_ns)
		sweep = (double)c->cfg.sweep_ns / 1e9;
	if (sweep < 0.0005)
		sweep = 0.0005;
	c->sweep_period_ns = (uint64_t)(sweep * 1e9);
	ev_timer_init(&c->sweep, sweep_cb, sweep, sweep);
	ev_set_priority(&c->sweep, EV_MINPRI);
	c->sweep.data = c;
	ev_timer_start(c->loop, &c->sweep);
	ev_timer_init(&c->orphan, orphan_cb, orphan, orphan);
	c->orphan.data = c;
	ev_timer_start(c->loop, &c->orphan);
}

void sweep_stop(struct cf_core *c)
{
	ev_timer_stop(c->loop, &c->sweep);
	ev_timer_stop(c->loop, &c->orphan);
}

/*
 * Node-side detection (docs/design.md, "Who detects"): a system read a peer's
 * heartbeat slot one-sided and saw it stand still for its lease timeout. The
 * CF does not take its word for it: it runs its sweep now (fed at the lowest
 * priority, so the input of this iteration - a late heartbeat included -
 * executes first, and a stall of this loop is not counted), which declares
 * the peer failed only if the CF's own clock agrees. The answer says what
 * the CF saw; the declaration, if any, reaches everybody as an event.
 */
void sweep_on_suspect(struct core_conn *cc, uint64_t id, const struct cf_suspect *m)
{
	struct cf_core *c = cc->core;
	struct core_sys *cs;
	char sn[CF_NAME_MAX], tn[CF_NAME_MAX];
	uint64_t w, now = cf_mono_ns(), age;

	if (cc->sys < 0 || c->sys[cc->sys].agent != cc) {
		core_status(cc, id, CF_CTRL_STATUS, -EPERM, "a suspicion is reported on the JOIN connection");
		return;
	}
	if (m->sys >= c->map->geo.max_systems || m->sys == (uint32_t)cc->sys || m->epoch > CF_EPOCH_MASK) {
		core_status(cc, id, CF_CTRL_STATUS, -EINVAL, "SUSPECT of system %u epoch %u: not another system",
			    m->sys, m->epoch);
		return;
	}
	c->suspects++;
	cs = &c->sys[m->sys];
	w = sysword(c, m->sys);
	core_sys_name(c, (uint32_t)cc->sys, sn);
	core_sys_name(c, m->sys, tn);
	if (!cs->live || !sys_incarnation(w, m->epoch)) {
		core_status(cc, id, CF_CTRL_STATUS, -ESTALE, "%s epoch %u is not active here (already failed or left)",
			    tn, m->epoch);
		return;
	}
	age = now > cs->hb_seen_ns ? now - cs->hb_seen_ns : 0;
	if (!cs->suspected_by)
		cs->suspected_by = cc->sys + 1;
	cf_slog_info("SUSPECT from %s: %s heartbeat %llu silent for %llu ms by its clock; here %llu ms since it moved "
		 "(T = %llu ms): sweeping now", sn, tn, (unsigned long long)m->hb, (unsigned long long)m->silent_ms,
		 (unsigned long long)(age / 1000000u), (unsigned long long)(c->cfg.hb_timeout_ns / 1000000u));
	ev_feed_event(c->loop, &c->sweep, EV_TIMER);
	core_status(cc, id, CF_CTRL_STATUS, 0, "%s: heartbeat last moved %llu ms ago here (T = %llu ms): swept now",
		    tn, (unsigned long long)(age / 1000000u), (unsigned long long)(c->cfg.hb_timeout_ns / 1000000u));
}
