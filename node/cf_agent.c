/* SPDX-License-Identifier: MIT */
/* cf_agent.c - membership, heartbeat, lease, instance contexts (see cf_agent.h). */
#include "cf_agent.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cf_recovery.h"
#include "cf_util.h"
#include "cf_words.h"

/* <linux/ioprio.h> is not in glibc's headers everywhere: the two values used. */
#define IOPRIO_WHO_PROCESS_ 1
#define IOPRIO_RT_(level) ((1 << 13) | (level)) /* class RT (1) << IOPRIO_CLASS_SHIFT (13) */

#define CLAIM_POLL_MS 50
#define TICK_S 0.05

void cf_agent_log(struct cf_agent *a, int level, const char *fmt, ...)
{
	va_list ap;

	if (!a->o.logf)
		return;
	va_start(ap, fmt);
	a->o.logf(a->o.log_arg, level, fmt, ap);
	va_end(ap);
}

void cf_agent_init(struct cf_agent *a, const struct cf_agent_opts *o)
{
	memset(a, 0, sizeof(*a));
	a->o = *o;
	if (!a->o.transport)
		a->o.transport = "tcp";
	a->o.connect_timeout_ms = cf_session_connect_timeout(a->o.connect_timeout_ms);
	a->s.dead = 0;
}

void cf_agent_set_over(struct cf_agent *a, int err)
{
	int zero = 0;
	uint64_t none = 0;

	if (err >= 0)
		err = -EPIPE;
	atomic_compare_exchange_strong(&a->over_ns, &none, cf_mono_ns()); /* before over: readers see both */
	if (atomic_compare_exchange_strong(&a->over, &zero, err))
		cf_agent_poke(a);
}

void cf_agent_poke(struct cf_agent *a)
{
	if (a->loop)
		ev_async_send(a->loop, &a->wake);
}

void cf_agent_request_stop(struct cf_agent *a)
{
	atomic_store(&a->stop, 1);
	cf_agent_poke(a);
}

/* ---------------- join ---------------- */

int cf_agent_join(struct cf_agent *a)
{
	int r;

	a->pid = (uint64_t)getpid();
	a->starttime = cf_proc_starttime(a->pid);
	if (gethostname(a->host, sizeof(a->host)) < 0)
		strcpy(a->host, "localhost");
	a->host[sizeof(a->host) - 1] = 0;
	r = cf_session_open(&a->s, a->o.transport, a->o.cf_addr, a->o.key, CF_ROLE_SYSTEM, a->o.connect_timeout_ms);
	if (r)
		return r;
	r = cf_session_join(&a->s, a->o.system, a->host, a->pid, a->starttime);
	if (r)
		return r;
	{
		struct cf_header h;
		r = cf_session_read(&a->s, 0, &h, sizeof(h));
		if (r)
			return r;
		a->image_id[0] = h.reserved[CF_HDR_IMAGE_ID0];
		a->image_id[1] = h.reserved[CF_HDR_IMAGE_ID1];
		a->cf_volatile = h.reserved[CF_HDR_DURABILITY] == CF_IMAGE_VOLATILE;
		if (!a->image_id[0] && !a->image_id[1]) { /* an image formatted before ids: cf_layout.h */
			a->image_id[0] = h.created_ns;
			a->image_id[1] = h.crc;
		}
	}
	a->sys = a->s.sys;
	a->epoch = a->s.epoch;
	a->token = a->s.token;
	a->hb_timeout_ns = a->s.welcome.hb_timeout_ns;
	if (a->o.hb_timeout_ns) {
		if (a->o.hb_timeout_ns > a->s.welcome.hb_timeout_ns) {
			cf_agent_log(a, CF_AGENT_ERR,
				     "--hb-timeout %llu ms exceeds the CF's T = %llu ms: the lease would outlive the "
				     "failure detection",
				     (unsigned long long)(a->o.hb_timeout_ns / 1000000),
				     (unsigned long long)(a->s.welcome.hb_timeout_ns / 1000000));
			return -EINVAL;
		}
		a->hb_timeout_ns = a->o.hb_timeout_ns;
	}
	return 0;
}

int cf_agent_open_session(struct cf_agent *a, struct cf_session *s)
{
	/* the CF the JOIN reached, not the next of a duplexed pair: the token is that CF's */
	const char *addr = a->s.addr[0] ? a->s.addr : a->o.cf_addr;
	int r = cf_session_open(s, a->o.transport, addr, a->o.key, CF_ROLE_SYSTEM, a->o.connect_timeout_ms);

	if (r)
		return r;
	r = cf_session_attach(s, a->sys, a->epoch, a->token);
	if (r)
		cf_session_close(s);
	return r;
}

/* ---------------- heartbeat ---------------- */

static void hb_beat(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct cf_agent *a = w->data;
	struct cf_hb *hb = &a->hb;
	struct cf_txn_pub *pub = atomic_load(&a->hb_pub);
	uint64_t issued = cf_mono_ns();
	int r;

	hb->slot.hb++;
	hb->slot.epoch = a->epoch;
	hb->slot.home_inst = atomic_load(&a->hb_home1);
	if (pub) {
		hb->slot.log_used = atomic_load_explicit(&pub->log_used, memory_order_relaxed);
		hb->slot.locks_held = atomic_load_explicit(&pub->locks_held, memory_order_relaxed);
		hb->slot.commits = atomic_load_explicit(&pub->commits, memory_order_relaxed);
		hb->slot.aborts = atomic_load_explicit(&pub->aborts, memory_order_relaxed);
		hb->slot.inflight = atomic_load_explicit(&pub->inflight, memory_order_relaxed);
	}
	r = cf_session_write(&hb->s, cf_hb_off(&hb->s.map, a->sys), &hb->slot, sizeof(hb->slot));
	if (r) {
		atomic_store(&hb->err, r);
		if (!atomic_load(&a->leaving))
			cf_agent_set_over(a, r);
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	atomic_store(&hb->last_ok_ns, issued);
	atomic_fetch_add(&hb->beats, 1);
	/* the watchdog is petted only while the lease holds (cf_watchdog.h) */
	struct cf_watchdog *wd = atomic_load(&a->wd_on);
	if (wd && cf_agent_lease_check(a) == 0)
		cf_watchdog_pet(wd);
}

int cf_agent_watchdog_arm(struct cf_agent *a, const char *path, uint32_t timeout_ms, char *msg, size_t msglen)
{
	struct cf_watchdog_msg m = { 0 };
	struct cf_status st;
	int r;

	msg[0] = 0;
	r = cf_watchdog_open(&a->wd, path, timeout_ms);
	if (r < 0)
		return r;
	m.timeout_ms = a->wd.timeout_ms;
	r = cf_session_rpc(&a->s, CF_CTRL_WATCHDOG, &m, sizeof(m), CF_CTRL_STATUS, &st, sizeof(st), 5000);
	if (r == 0 && st.status) {
		st.msg[sizeof(st.msg) - 1] = 0;
		snprintf(msg, msglen, "%s", st.msg);
		r = st.status;
	}
	if (r < 0) {
		cf_watchdog_disarm(&a->wd);
		return r;
	}
	/* announced: the heartbeat thread pets it from its next beat on */
	atomic_store(&a->wd_on, &a->wd);
	return 0;
}

static void hb_stop_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

static void *hb_main(void *arg)
{
	struct cf_agent *a = arg;
	struct sched_param sp = { .sched_priority = 1 };
	sigset_t all;

	/* Signals are the agent thread's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	/*
	 * A heartbeat that shares a CPU queue with the workload expires under load
	 * (FaRM's lesson). The thread sleeps in poll() between beats and never
	 * spins, so the lowest real-time priority costs the rest nothing; without
	 * the privilege it stays a normal thread.
	 */
	if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0)
		atomic_store(&a->hb.realtime, 1);

	ev_run(a->hb.loop, 0);
	return NULL;
}

int cf_agent_hb_start(struct cf_agent *a)
{
	struct cf_hb *hb = &a->hb;
	int r;

	hb->interval_ns = a->o.hb_interval_ns ? a->o.hb_interval_ns : a->s.welcome.hb_interval_ns;
	if (!hb->interval_ns)
		hb->interval_ns = 5000000;
	if (hb->interval_ns * 2 >= a->hb_timeout_ns) {
		cf_agent_log(a, CF_AGENT_ERR, "heartbeat interval %llu us is not below T/2 = %llu us",
			     (unsigned long long)(hb->interval_ns / 1000),
			     (unsigned long long)(a->hb_timeout_ns / 2000));
		return -EINVAL;
	}
	r = cf_agent_open_session(a, &hb->s);
	if (r)
		return r;
	hb->loop = ev_loop_new(EVFLAG_AUTO);
	if (!hb->loop) {
		r = -ENOMEM;
		goto err_close;
	}
	ev_timer_init(&hb->timer, hb_beat, 0., (double)hb->interval_ns / 1e9);
	hb->timer.data = a;
	ev_timer_again(hb->loop, &hb->timer);
	ev_async_init(&hb->stop_async, hb_stop_cb);
	ev_async_start(hb->loop, &hb->stop_async);
	/* First beat synchronously: the lease starts valid. */
	hb_beat(hb->loop, &hb->timer, 0);
	r = atomic_load(&hb->err);
	if (r)
		goto err_loop;
	/*
	 * The heartbeat must run on time even when workload threads keep every
	 * core busy (FaRM's lesson; corosync runs real-time for the same reason):
	 * ask for a real-time priority, and carry on without one if refused.
	 */
	{
		pthread_attr_t at;
		struct sched_param sp = {.sched_priority = 10};

		pthread_attr_init(&at);
		pthread_attr_setinheritsched(&at, PTHREAD_EXPLICIT_SCHED);
		pthread_attr_setschedpolicy(&at, SCHED_RR);
		pthread_attr_setschedparam(&at, &sp);
		r = -pthread_create(&hb->thr, &at, hb_main, a);
		pthread_attr_destroy(&at);
		if (r == -EPERM) {
			cf_agent_log(a, CF_AGENT_INFO, "heartbeat thread: no real-time priority (not permitted)");
			r = -pthread_create(&hb->thr, NULL, hb_main, a);
		}
	}
	if (r)
		goto err_loop;
	hb->running = true;
	return 0;
err_loop:
	ev_loop_destroy(hb->loop);
	hb->loop = NULL;
err_close:
	cf_session_close(&hb->s);
	return r;
}

void cf_agent_hb_stop(struct cf_agent *a)
{
	struct cf_hb *hb = &a->hb;

	if (!hb->running)
		return;
	ev_async_send(hb->loop, &hb->stop_async);
	pthread_join(hb->thr, NULL);
	hb->running = false;
	ev_loop_destroy(hb->loop);
	hb->loop = NULL;
	/*
	 * The session stays open: the CF treats any connection of a system closing
	 * before its GOODBYE as a failure. cf_agent_fini closes it.
	 */
}

uint64_t cf_agent_hb_age_ms(struct cf_agent *a)
{
	return (cf_mono_ns() - atomic_load(&a->hb.last_ok_ns)) / 1000000ull;
}

int cf_agent_lease_check(struct cf_agent *a)
{
	uint64_t last = atomic_load(&a->hb.last_ok_ns);
	int over = atomic_load(&a->over);

	if (over)
		return over;
	if (!last || cf_mono_ns() - last >= a->hb_timeout_ns / 2)
		return -ENOLINK;
	return 0;
}

int cf_agent_lease_cb(void *agent)
{
	return cf_agent_lease_check(agent);
}

/* ---------------- instances ---------------- */

int cf_agent_inst_open(struct cf_agent *a, const char *name, bool home, struct cf_inst_ctx **out)
{
	struct cf_inst_info info;
	struct cf_inst_ctx *ic;
	int r;

	if (cf_name_check(name))
		return -EINVAL;
	r = cf_session_inst_open(&a->s, name, &info);
	if (r)
		return r;
	if (info.status)
		return info.status;
	if (info.index >= a->s.map.geo.max_instances || info.index >= CF_AGENT_MAX_INSTS)
		return CF_CORRUPT();
	ic = cf_agent_inst_find(a, info.index);
	if (ic) {
		*out = ic;
		return 0;
	}
	ic = calloc(1, sizeof(*ic));
	if (!ic)
		return -ENOMEM;
	ic->a = a;
	ic->index = info.index;
	cf_name_put(ic->name, name);
	ic->home = home;
	ic->reg = info.reg;
	ic->log_off = cf_log_off(&a->s.map, info.index);
	ic->rec_off = cf_rec_off(&a->s.map, info.index);
	ic->log_size = a->s.map.geo.log_size;
	ic->data.dirfd = -1;
	a->insts[a->ninsts++] = ic;
	if (home) {
		a->home = ic;
		atomic_store(&a->hb_home1, (uint64_t)info.index + 1);
		atomic_store(&a->hb_pub, &ic->pub);
	}
	*out = ic;
	return 0;
}

struct cf_inst_ctx *cf_agent_inst_find(struct cf_agent *a, uint32_t index)
{
	for (uint32_t i = 0; i < a->ninsts; i++)
		if (a->insts[i]->index == index)
			return a->insts[i];
	return NULL;
}

void cf_agent_inst_free(struct cf_agent *a, struct cf_inst_ctx *ic)
{
	if (!ic)
		return;
	cf_inst_ctx_detach(ic);
	for (uint32_t i = 0; i < a->ninsts; i++) {
		if (a->insts[i] == ic) {
			a->insts[i] = a->insts[--a->ninsts];
			break;
		}
	}
	if (a->home == ic) {
		a->home = NULL;
		atomic_store(&a->hb_pub, NULL);
	}
	free(ic);
}

int cf_agent_read_reg(struct cf_agent *a, uint32_t index, uint64_t *reg)
{
	return cf_session_read(&a->s, cf_inst_off(&a->s.map, index), reg, sizeof(*reg));
}

int cf_agent_read_sys(struct cf_agent *a, uint32_t sys, struct cf_sys_slot *out)
{
	if (sys >= a->s.map.geo.max_systems)
		return -EINVAL;
	return cf_session_read(&a->s, cf_sys_off(&a->s.map, sys), out, sizeof(*out));
}

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

/* ---------------- instance context ---------------- */

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
	struct cf_log_scan sc;
	void *region = NULL;
	int r, delay_ms = RESTART_WAIT_MIN_MS, tries = 0;
	uint64_t t0 = cf_mono_ns();

	while ((r = cf_session_inst_attach(s, ic->index)) == CF_STATUS_RESTART_RECOVERY) {
		if (!tries++)
			cf_agent_log(a, CF_AGENT_WARN, "%s: the CF says: %s: waiting to attach", ic->name,
				     cf_session_error_msg(s) ? cf_session_error_msg(s) : "restart recovery");
		r = restart_wait(a, &delay_ms);
		if (r)
			return r;
	}
	if (r)
		return r;
	if (tries)
		cf_agent_log(a, CF_AGENT_INFO, "%s: CF restart recovery over after %llu ms (%d attach attempts): attached",
			     ic->name, (unsigned long long)((cf_mono_ns() - t0) / 1000000u), tries + 1);
	ic->s = s;
	r = cf_data_open(&ic->data, a->o.data_dir);
	if (r)
		return r;
	r = cf_log_attach(&ic->log, s, ic->index, &sc, &region);
	if (r)
		goto err_data;
	if (clean_start) {
		uint32_t ntx = 0, rel = 0;
		r = cf_txn_backout_scan(&ic->data, &ic->log, &sc, cf_agent_lease_cb, a, &ntx);
		if (r)
			goto err_scan;
		if (ntx)
			cf_agent_log(a, CF_AGENT_WARN, "%s: backed out %u transaction(s) left in flight in its log",
				     ic->name, ntx);
		r = cf_lock_release_instance(s, ic->index, 0 /* the holds' epoch is not known here */, NULL,
					     &rel);
		if (r)
			goto err_scan;
		if (rel)
			cf_agent_log(a, CF_AGENT_WARN, "%s: released %u lock class(es) left in its record list",
				     ic->name, rel);
		r = cf_log_reset(&ic->log);
		if (r)
			goto err_scan;
	}
	cf_log_scan_free(&sc);
	free(region);
	r = cf_lock_table_init(&ic->locks, s, ic->index, a->epoch);
	if (r)
		goto err_log;
	cf_txn_ctx_init(&ic->txn, &ic->data, &ic->log, &ic->locks, a->epoch);
	ic->txn.lease_check = cf_agent_lease_cb;
	ic->txn.lease_arg = a;
	ic->txn.pub = &ic->pub;
	ic->attached = true;
	return 0;
err_scan:
	cf_log_scan_free(&sc);
	free(region);
err_log:
	cf_log_detach(&ic->log);
err_data:
	cf_data_close(&ic->data);
	return r;
}

void cf_inst_ctx_detach(struct cf_inst_ctx *ic)
{
	if (!ic || !ic->attached)
		return;
	if (ic->s && !ic->s->dead)
		(void)cf_session_drain(ic->s); /* posted entry clears and END records reach the CF */
	cf_lock_table_fini(&ic->locks);
	cf_log_detach(&ic->log);
	cf_data_close(&ic->data);
	ic->attached = false;
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

int cf_agent_run(struct cf_agent *a)
{
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
	}
	if (cf_session_event_pending(&a->s))
		drain_events(a);
	check_flags(a);
	if (!atomic_load(&a->over) && !atomic_load(&a->stop))
		ev_run(a->loop, 0);
	r = atomic_load(&a->over);
	return r;
}

int cf_agent_leave(struct cf_agent *a)
{
	int r = 0, first = 0;

	atomic_store(&a->leaving, 1);
	cf_agent_hb_stop(a);
	if (a->s.dead)
		return a->s.dead;
	/*
	 * Only an instance with nothing in flight may be unregistered: a clean
	 * INACTIVE_CLEAN with locks or open transactions left behind would strand
	 * them for good. If a workload could not back out what it had open, leave
	 * without GOODBYE instead: the CF fails this system and a peer (or our own
	 * restart) recovers the instance from its log.
	 */
	for (uint32_t i = 0; i < a->ninsts; i++) {
		struct cf_inst_ctx *ic = a->insts[i];
		if (ic->attached && (ic->txn.nopen || ic->locks.nheld)) {
			cf_agent_log(a, CF_AGENT_ERR,
				     "%s still has %u open transactions and %u locks that could not be backed out: "
				     "no clean leave, leaving it to peer recovery",
				     ic->name, ic->txn.nopen, ic->locks.nheld);
			return -EBUSY;
		}
	}
	for (uint32_t i = 0; i < a->ninsts; i++) {
		struct cf_inst_ctx *ic = a->insts[i];
		uint64_t w;
		char msg[120] = "";
		if (cf_agent_read_reg(a, ic->index, &w))
			break;
		if (cf_reg_state(w) != CF_REG_ACTIVE || cf_reg_owner(w) != a->sys)
			continue;
		r = cf_session_inst_unreg(&a->s, ic->index, msg, sizeof(msg));
		if (r) {
			cf_agent_log(a, CF_AGENT_WARN, "unregister %s: %s (%s)", ic->name, strerror(-r), msg);
			if (!first)
				first = r;
		}
	}
	r = cf_session_goodbye(&a->s);
	if (r && !first)
		first = r;
	return first;
}

void cf_agent_fini(struct cf_agent *a)
{
	if (!a)
		return;
	cf_agent_hb_stop(a);
	/* no thread of ours writes any more: disarm (a crash never gets here, and it fires) */
	atomic_store(&a->wd_on, NULL);
	cf_watchdog_disarm(&a->wd);
	cf_session_close(&a->hb.s);
	while (a->ninsts)
		cf_agent_inst_free(a, a->insts[a->ninsts - 1]);
	if (a->loop) {
		ev_async_stop(a->loop, &a->wake);
		ev_io_stop(a->loop, &a->ev_w);
		ev_timer_stop(a->loop, &a->tick);
		ev_timer_stop(a->loop, &a->watch_t);
		ev_signal_stop(a->loop, &a->sigint);
		ev_signal_stop(a->loop, &a->sigterm);
		ev_loop_destroy(a->loop);
		a->loop = NULL;
	}
	cf_session_close(&a->s);
}
