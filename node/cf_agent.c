/* SPDX-License-Identifier: MIT */
/*
 * cf_agent.c - membership, heartbeat, lease, instance contexts (see
 * cf_agent.h). The waits and the agent loop, which serve recovery, are
 * cf_agent_loop.c: nothing here calls recovery.
 */
#include "cf_agent.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cf_fault.h"
#include "cf_slog.h"
#include "cf_util.h"
#include "cf_words.h"

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
	if (atomic_load(&a->loop_ready))
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
	cf_agent_watch_session(a, &a->s);
	cf_agent_sentinel_watch(a);
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

/*
 * The sentinel (cf_sentinel.h) tells the CF the moment this process starts to
 * die, so the CF need not wait for its exit to free its memory. Started at
 * the first JOIN, from the thread that joins (cfnode's main thread, which
 * runs the agent until the process ends: o.sentinel); told of each CF this
 * incarnation joins or attaches to (a switch of CF). CF_SENTINEL=off leaves
 * it out (A/B runs). Best effort: without it a death is seen when the
 * process's connections close.
 */
void cf_agent_sentinel_watch(struct cf_agent *a)
{
	const char *env = getenv("CF_SENTINEL");
	struct cf_sentinel_target t;
	int r;

	if (!a->o.sentinel || (env && !strcmp(env, "off")))
		return;
	if (!a->sen.shm && (r = cf_sentinel_start(&a->sen)) < 0) {
		cf_agent_log(a, CF_AGENT_DEBUG, "sentinel: %s (a death is seen when the connections close)",
			     strerror(-r));
		return;
	}
	memset(&t, 0, sizeof(t));
	snprintf(t.transport, sizeof(t.transport), "%s", a->o.transport);
	snprintf(t.addr, sizeof(t.addr), "%s", a->s.addr);
	memcpy(t.key, a->o.key, sizeof(t.key));
	t.sys = a->s.sys;
	t.epoch = a->s.epoch;
	t.token = a->s.token;
	t.connect_timeout_ms = a->o.connect_timeout_ms;
	/* the sentinel is cfnode's (o.sentinel): its lines are cfnode's, as cfnode logs */
	snprintf(t.log_ident, sizeof(t.log_ident), "cfnode[%s]", a->o.system);
	t.log_level = cf_slog_level;
	t.log_prefix = cf_slog_prefixed();
	r = cf_sentinel_watch(&a->sen, &t);
	sodium_memzero(t.key, sizeof(t.key));
	if (r < 0)
		cf_agent_log(a, CF_AGENT_DEBUG, "sentinel: watch: %s", strerror(-r));
}

/*
 * The CF completed no heartbeat for 2 T (none yet: nothing to say):
 * -EHOSTDOWN, not -ETIMEDOUT, which callers read as a lock wait that ran out.
 */
static int stall_check(void *arg)
{
	struct cf_agent *a = arg;
	uint64_t last = atomic_load(&a->hb.last_ok_ns), T = a->s.welcome.hb_timeout_ns;

	return last && T && cf_mono_ns() - last > 2 * T ? -EHOSTDOWN : 0;
}

void cf_agent_watch_session(struct cf_agent *a, struct cf_session *s)
{
	if (!a->o.stall_ends_sessions)
		return;
	s->stall_fn = stall_check;
	s->stall_arg = a;
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
	else
		cf_agent_watch_session(a, s);
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
	sigset_t all;

	/* Signals are the agent thread's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
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
	/* First beat synchronously: the lease starts valid, before anything is attached. */
	CF_FAULT("hb.before_first_beat");
	hb_beat(hb->loop, &hb->timer, 0);
	r = atomic_load(&hb->err);
	if (r)
		goto err_loop;
	r = -pthread_create(&hb->thr, NULL, hb_main, a);
	if (r)
		goto err_loop;
	/*
	 * A heartbeat that shares a CPU queue with the workload expires under load
	 * (FaRM's lesson; corosync runs real-time for the same reason). The thread
	 * sleeps in poll() between beats and never spins, so a real-time priority
	 * costs the rest nothing. Above the agent thread's (SCHED_RR 9,
	 * cf_agent_run), whose recoveries compute, and above cfserver's (5) on a
	 * shared host: a beat is a few microseconds of work, and the one thing a
	 * system must not be late for. Without the privilege it stays a normal
	 * thread.
	 */
	{
		struct sched_param sp = {.sched_priority = 10};
		if (pthread_setschedparam(hb->thr, SCHED_FIFO, &sp) == 0)
			atomic_store(&hb->realtime, 1);
		else
			cf_agent_log(a, CF_AGENT_INFO, "heartbeat thread: no real-time priority (not permitted)");
	}
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

/* ---------------- instance context ---------------- */

int cf_inst_ctx_setup(struct cf_inst_ctx *ic, struct cf_session *s, bool clean_start)
{
	struct cf_agent *a = ic->a;
	struct cf_log_scan sc;
	int r;

	ic->s = s;
	r = cf_data_open(&ic->data, a->o.data_dir);
	if (r)
		return r;
	r = cf_log_attach(&ic->log, s, ic->index, &sc);
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
		r = cf_lock_release_instance(s, ic->index, 0 /* the holds' epoch is not known here */, NULL, 0,
					     &rel);
		if (r)
			goto err_scan;
		if (rel)
			cf_agent_log(a, CF_AGENT_WARN, "%s: released %u lock class(es) left in its record list",
				     ic->name, rel);
		/* the log was emptied (durably) by the backout; the list's clearing WRITEs are posted */
	}
	cf_log_scan_free(&sc);
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
	cf_sentinel_stop(&a->sen); /* quietly: what is closed from here on was said goodbye to, or is over */
	cf_agent_hb_stop(a);
	/* no thread of ours writes any more: disarm (a crash never gets here, and it fires) */
	atomic_store(&a->wd_on, NULL);
	cf_watchdog_disarm(&a->wd);
	cf_session_close(&a->hb.s);
	while (a->ninsts)
		cf_agent_inst_free(a, a->insts[a->ninsts - 1]);
	if (a->loop) {
		atomic_store(&a->loop_ready, false);
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
