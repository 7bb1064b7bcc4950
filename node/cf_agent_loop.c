/* SPDX-License-Identifier: MIT */
/*
 * cf_agent_loop.c - the agent thread's waits (see cf_agent.h): claiming the
 * home instance, attaching it while the CF recovers from a restart, and the
 * agent loop itself (CF events, the fallback tick, the watch of the peers'
 * heartbeats). Each hands CF events to recovery (cf_agent_recovery.h) while
 * it waits; the membership it stands on is cf_agent.c, which calls neither.
 */
#include "cf_agent.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

#include "cf_agent_recovery.h"
#include "cf_util.h"
#include "cf_words.h"

/* <linux/ioprio.h> is not in glibc's headers everywhere: the two values used. */
#define IOPRIO_WHO_PROCESS_ 1
#define IOPRIO_RT_(level) ((1 << 13) | (level)) /* class RT (1) << IOPRIO_CLASS_SHIFT (13) */

#define CLAIM_POLL_MS 50
#define TICK_S 0.05

/* ---------------- claim ---------------- */

static void sys_name(struct cf_agent *a, uint32_t sys, char *buf, size_t cap)
{
	struct cf_sys_slot ss;

	if (cf_agent_read_sys(a, sys, &ss) == 0 && ss.name[0])
		snprintf(buf, cap, "%.*s", (int)CF_NAME_MAX, ss.name);
	else
		snprintf(buf, cap, "system #%u", sys);
}

int cf_agent_claim(struct cf_agent *a, struct cf_inst_ctx *ic)
{
	uint64_t w, old, said = ~0ull;
	bool self_unavailable = false;
	int r;

	for (;;) {
		struct cf_event ev;
		if (atomic_load(&a->stop))
			return -EINTR;
		if ((r = cf_agent_over(a)))
			return r;
		r = cf_agent_read_reg(a, ic->index, &w);
		if (r)
			return r;
		if (!cf_reg_valid(w))
			return CF_CORRUPT();
		switch (cf_reg_state(w)) {
		case CF_REG_FREE:
		case CF_REG_CLEAN: {
			uint64_t mine = cf_reg_active(a->sys, a->epoch, cf_reg_incident(w));
			r = cf_session_cas(&a->s, cf_inst_off(&a->s.map, ic->index), w, mine, &old);
			if (r)
				return r;
			if (old == w) {
				ic->reg = mine;
				return 0;
			}
			continue; /* changed under us: look again */
		}
		case CF_REG_ACTIVE:
			if (cf_reg_owner(w) == a->sys && cf_reg_epoch(w) == (a->epoch & CF_EPOCH_MASK)) {
				/*
				 * Ours, but maybe only as the counterpart of our own failed
				 * incarnation, waiting on its disk fence: not claimed until
				 * its backout is done and it is CLEAN again.
				 */
				if (cf_recovery_pending(a, ic->index)) {
					cf_recovery_tick(a);
					break;
				}
				ic->reg = w;
				return 0;
			}
			if (said != w) {
				if (cf_reg_owner(w) == a->sys)
					cf_agent_log(a, CF_AGENT_WARN,
						     "%s is still held by my previous incarnation (epoch %u): waiting for "
						     "the CF to declare it failed",
						     ic->name, cf_reg_epoch(w));
				else {
					char who[32];
					sys_name(a, cf_reg_owner(w), who, sizeof(who));
					cf_agent_log(a, CF_AGENT_WARN, "waiting for peer recovery of %s by %s", ic->name,
						     who);
				}
				said = w;
			}
			break;
		case CF_REG_FAILED:
			if (!self_unavailable && !cf_agent_self_recovery_allowed(a, ic->index, w)) {
				/* policy operator: it waits like any peer (asked again each round: the policy may change) */
				if (said != w)
					cf_agent_log(a, CF_AGENT_WARN,
						     "%s is INACTIVE_FAILED (incident %u): policy operator, waiting for "
						     "`cfctl recover %s` (--on %s recovers it here)",
						     ic->name, cf_reg_incident(w), ic->name, a->o.system);
				said = w;
				break;
			}
			if (!self_unavailable) {
				r = cf_agent_self_recover(a, ic, w);
				if (r == 0)
					continue;
				if (r == -EINPROGRESS)
					break; /* waits on its fence: retried by cf_recovery_tick below */
				if (r == -EBUSY || r == -ESTALE)
					continue; /* a peer won the registration (or the word moved on): look again */
				if (r != -ENOSYS)
					return r;
				self_unavailable = true;
			}
			if (said != w) {
				cf_agent_log(a, CF_AGENT_WARN, "%s is INACTIVE_FAILED (incident %u): waiting for a peer to recover it",
					     ic->name, cf_reg_incident(w));
				said = w;
			}
			break;
		}
		/* Wait for an event (INST_CLEAN) or poll again. */
		r = cf_session_next_event(&a->s, &ev, CLAIM_POLL_MS);
		if (r && r != -ETIMEDOUT)
			return r;
		if (r == 0 && ev.type != CF_EV_INST_CLEAN)
			cf_recovery_on_event(a, &ev);
	}
}

/* ---------------- attach ---------------- */

#define RESTART_WAIT_MIN_MS 50
#define RESTART_WAIT_MAX_MS 1000

/*
 * The CF refused an attach for new work: it restarted and is still recovering
 * instances from their logs (docs/design.md, "Durability"). Not an error:
 * wait for RESTART_DONE or *delay_ms (doubled each time, bounded), serving
 * the recovery module meanwhile (this system may be the counterpart the CF
 * waits for), then let the caller retry.
 */
static int restart_wait(struct cf_agent *a, int *delay_ms)
{
	uint64_t until = cf_mono_ns() + (uint64_t)*delay_ms * 1000000ull;
	struct cf_event ev;
	int r;

	*delay_ms = *delay_ms * 2 > RESTART_WAIT_MAX_MS ? RESTART_WAIT_MAX_MS : *delay_ms * 2;
	for (;;) {
		uint64_t now = cf_mono_ns();
		if (atomic_load(&a->stop))
			return -EINTR;
		if ((r = cf_agent_over(a)))
			return r;
		cf_recovery_tick(a);
		if (now >= until)
			return 0;
		r = cf_session_next_event(&a->s, &ev, (int)((until - now + 999999) / 1000000));
		if (r == -ETIMEDOUT || r == -EAGAIN)
			return 0;
		if (r)
			return r;
		if (ev.type == CF_EV_RESTART_DONE)
			return 0;
		cf_recovery_on_event(a, &ev);
	}
}

int cf_inst_ctx_attach(struct cf_inst_ctx *ic, struct cf_session *s, bool clean_start)
{
	struct cf_agent *a = ic->a;
	int r, delay_ms = RESTART_WAIT_MIN_MS, tries = 0;
	uint64_t t0 = cf_mono_ns();

	while ((r = cf_session_inst_attach(s, ic->index)) == CF_STATUS_RESTART_RECOVERY) {
		if (!tries++)
			cf_agent_log(a, CF_AGENT_WARN, "%s: %s: waiting to attach", ic->name,
				     cf_session_error_msg(s) ? cf_session_error_msg(s) : "the CF's restart recovery");
		r = restart_wait(a, &delay_ms);
		if (r)
			return r;
	}
	if (r)
		return r;
	if (tries)
		cf_agent_log(a, CF_AGENT_INFO, "%s: CF restart recovery over after %llu ms (%d attach attempts): attached",
			     ic->name, (unsigned long long)((cf_mono_ns() - t0) / 1000000u), tries + 1);
	return cf_inst_ctx_setup(ic, s, clean_start);
}

/* ---------------- agent loop ---------------- */

static void check_flags(struct cf_agent *a)
{
	if (atomic_load(&a->over) || atomic_load(&a->stop))
		ev_break(a->loop, EVBREAK_ALL);
}

static void drain_events(struct cf_agent *a)
{
	struct cf_event ev;
	int r;

	for (int i = 0; i < 64; i++) {
		r = cf_session_next_event(&a->s, &ev, 0);
		if (r == -ETIMEDOUT || r == -EAGAIN)
			break;
		if (r) {
			if (!atomic_load(&a->leaving))
				cf_agent_set_over(a, r);
			break;
		}
		cf_recovery_on_event(a, &ev);
	}
}

static void cfev_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct cf_agent *a = w->data;

	drain_events(a);
	check_flags(a);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct cf_agent *a = w->data;

	if (cf_session_event_pending(&a->s))
		drain_events(a);
	cf_recovery_tick(a);
	check_flags(a);
}

/*
 * Node-side detection: READ the system table and the heartbeat slots (both
 * posted, one wait) and report each peer silent for T to the CF, which
 * sweeps at once and declares only if its own clock agrees (cf_watch.h).
 */
static void watch_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct cf_agent *a = w->data;
	const struct cf_image_map *m = &a->s.map;
	uint32_t n = a->watch.nsys, k;
	struct cf_sys_slot sys[CF_MAX_SYSTEMS_LIMIT];
	struct cf_hb_slot hb[CF_MAX_SYSTEMS_LIMIT];
	struct cf_suspect sus[CF_MAX_SYSTEMS_LIMIT];
	int r;

	if (a->s.dead || atomic_load(&a->over) || atomic_load(&a->stop) || atomic_load(&a->leaving))
		return;
	r = cf_session_post_read(&a->s, m->off_systems, sys, n * (uint32_t)sizeof(*sys));
	if (!r)
		r = cf_session_post_read(&a->s, m->off_heartbeats, hb, n * (uint32_t)sizeof(*hb));
	if (!r)
		r = cf_session_drain(&a->s);
	if (r) {
		if (a->s.dead)
			cf_agent_set_over(a, a->s.dead);
		return;
	}
	k = cf_watch_observe(&a->watch, sys, hb, cf_mono_ns(), sus, CF_MAX_SYSTEMS_LIMIT);
	for (uint32_t i = 0; i < k; i++) {
		struct cf_status st;
		char name[CF_NAME_MAX + 12];
		snprintf(name, sizeof(name), "%.*s", (int)(CF_NAME_MAX - 1), sys[sus[i].sys].name);
		if (!name[0] || cf_name_check(name) < 0)
			snprintf(name, sizeof(name), "system #%u", sus[i].sys);
		r = cf_session_rpc(&a->s, CF_CTRL_SUSPECT, &sus[i], sizeof(sus[i]), CF_CTRL_STATUS, &st, sizeof(st),
				   5000);
		if (r) {
			if (a->s.dead)
				cf_agent_set_over(a, a->s.dead);
			return;
		}
		st.msg[sizeof(st.msg) - 1] = 0;
		cf_agent_log(a, st.status ? CF_AGENT_INFO : CF_AGENT_WARN,
			     "watch: %s (epoch %u) heartbeat %llu unmoved for %llu ms: reported to the CF: %s%s%s",
			     name, sus[i].epoch, (unsigned long long)sus[i].hb,
			     (unsigned long long)sus[i].silent_ms, st.status ? strerror(-st.status) : "",
			     st.status ? ": " : "", st.msg);
	}
	if (cf_session_event_pending(&a->s))
		drain_events(a);
	check_flags(a);
}

static void wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	check_flags(w->data);
}

static void sig_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct cf_agent *a = w->data;

	cf_agent_log(a, CF_AGENT_INFO, "signal %d: leaving", w->signum);
	atomic_store(&a->stop, 1);
	ev_break(loop, EVBREAK_ALL);
}

void cf_agent_rebind(struct cf_agent *a)
{
	if (!a->loop)
		return;
	ev_io_stop(a->loop, &a->ev_w);
	ev_io_set(&a->ev_w, cf_session_fd(&a->s), EV_READ);
	ev_io_start(a->loop, &a->ev_w);
	cf_watch_init(&a->watch, a->sys, a->s.map.geo.max_systems, a->s.welcome.hb_timeout_ns);
}

int cf_agent_run(struct cf_agent *a)
{
	/*
	 * The copy a recovery reads a failed instance's log into, resident
	 * before any recovery: its page faults would be on the failover path
	 * (cf_log_copy.c). Before the real-time priority below: on a slow VM,
	 * 4 MiB of first touches take 10 ms.
	 */
	if (cf_log_copy_warm(a->s.map.geo.log_size) < 0)
		cf_agent_log(a, CF_AGENT_WARN, "no memory for a resident log copy: each recovery maps its own");
	/*
	 * The agent thread turns CF events into recoveries: the failover time is
	 * its latency. Ask for a real-time priority (best effort) so that it does
	 * not wait for a CPU behind workload threads; threads created before this
	 * point (the workload's) keep their normal policy.
	 */
	{
		struct sched_param sp = {.sched_priority = 9};
		if (pthread_setschedparam(pthread_self(), SCHED_RR, &sp) != 0)
			cf_agent_log(a, CF_AGENT_DEBUG, "agent thread: no real-time priority (not permitted)");
		/*
		 * The same for its disk I/O: a recovery's before-image writes and
		 * their fdatasync share the data disk with the survivors' commits,
		 * and the locks stay held until that sync returns. The real-time I/O
		 * class is served first by the mq-deadline and bfq schedulers (no
		 * effect under "none"). Per thread: the workload's commits keep
		 * their class.
		 */
		if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS_, 0, IOPRIO_RT_(4)) != 0)
			cf_agent_log(a, CF_AGENT_DEBUG, "agent thread: no real-time I/O priority: %s", strerror(errno));
	}
	int r;

	if (!a->loop) {
		/*
		 * Not the default loop: that one reaps every child on SIGCHLD, which
		 * would steal the exit status of an external fence agent.
		 */
		a->loop = ev_loop_new(EVFLAG_AUTO);
		if (!a->loop)
			return -ENOMEM;
		ev_async_init(&a->wake, wake_cb);
		a->wake.data = a;
		ev_async_start(a->loop, &a->wake);
		ev_io_init(&a->ev_w, cfev_cb, cf_session_fd(&a->s), EV_READ);
		a->ev_w.data = a;
		ev_io_start(a->loop, &a->ev_w);
		ev_timer_init(&a->tick, tick_cb, TICK_S, TICK_S);
		a->tick.data = a;
		ev_timer_start(a->loop, &a->tick);
		{
			uint64_t h = a->hb.interval_ns ? a->hb.interval_ns : a->s.welcome.hb_interval_ns;
			uint64_t T = a->s.welcome.hb_timeout_ns, per = h > T / 8 ? h : T / 8;
			cf_watch_init(&a->watch, a->sys, a->s.map.geo.max_systems, T);
			if (per < 1000000u)
				per = 1000000u;
			ev_timer_init(&a->watch_t, watch_cb, (double)per / 1e9, (double)per / 1e9);
			a->watch_t.data = a;
			ev_timer_start(a->loop, &a->watch_t);
		}
		ev_signal_init(&a->sigint, sig_cb, SIGINT);
		a->sigint.data = a;
		ev_signal_init(&a->sigterm, sig_cb, SIGTERM);
		a->sigterm.data = a;
		if (!a->o.app_signals) {
			ev_signal_start(a->loop, &a->sigint);
			ev_signal_start(a->loop, &a->sigterm);
		}
		atomic_store(&a->loop_ready, true); /* then over and stop are read below */
	}
	if (cf_session_event_pending(&a->s))
		drain_events(a);
	check_flags(a);
	if (!atomic_load(&a->over) && !atomic_load(&a->stop))
		ev_run(a->loop, 0);
	r = atomic_load(&a->over);
	return r;
}
