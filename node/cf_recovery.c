/* SPDX-License-Identifier: MIT */
/*
 * cf_recovery.c - transactional peer recovery (patent Figure 8, claims 1-30;
 * DESIGN §4; spin model `base`).
 *
 * A counterpart C recovers instance I, failed in incident k:
 *   register    CAS I: INACTIVE_FAILED(k) → ACTIVE(C, e, k). Exactly one CAS
 *               wins; every other system (the failed one included) sees
 *               ACTIVE and is rejected. Each system tries once per incident.
 *   disk fence  the incarnation that owned I when it failed (the instance
 *               slot's fail_*, written by cfserver before it published
 *               FAILED(k)) is fenced from the data directory by the fence
 *               agent, and we wait for the confirmation. When the agent
 *               cannot confirm (another host, agent failing) the recovery
 *               does not stop: it returns -EINPROGRESS holding the
 *               registration and the locks, and the agent loop retries the
 *               fence every second, logs and publishes the wait (rinfo),
 *               until the agent confirms, the operator confirms (cfctl
 *               fence-confirm), or, for a system that announced a watchdog,
 *               T/2 + watchdog + margin have passed (phase watchdog-wait;
 *               argument at fence_wait()); cf_recover_resume goes on at
 *               attach.
 *   attach      cfserver grants I's log and record list to this connection
 *               only because the word says ACTIVE(C).
 *   read log    scan from the head; stops at the first torn/corrupt record.
 *   back out    before-images of every in-flight transaction (UPDATEs with no
 *               COMMIT/ABORT), reverse LSN order.
 *   sync        fdatasync every touched file; then ABORT records.
 *   release     every hold of I named by its record list; list cleared;
 *               log reset.
 *   unregister  a control request: cfserver revokes our grants on I as it
 *               CASes ACTIVE(C, e, k) → INACTIVE_CLEAN(k).
 *
 * Invariants this code keeps (DESIGN §6):
 *   - Nothing of I is written (data, log, locks) unless our registration CAS
 *     won and our connection is alive: if C dies, cfserver fences C BEFORE it
 *     republishes I as FAILED(k+1), so no late write of C lands after that.
 *   - No before-image is written before the fence agent confirmed, the
 *     operator confirmed, or the failed system's watchdog has certainly
 *     fired (model counterexample "lease"); with --fence-agent none only
 *     the lease stands, and that choice is logged as unsafe.
 *   - I's locks are released only after its backout is synced (invariant 4).
 *   - Every step is idempotent: before-images are absolute, ABORT is appended
 *     only after the sync, releases remove only I's hold. A counterpart that
 *     dies anywhere leaves a state the next one finishes.
 */
#include "cf_recovery.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cf_agent.h"
#include "cf_data.h"
#include "cf_fault.h"
#include "cf_lock.h"
#include "cf_log.h"
#include "cf_marker.h"
#include "cf_session.h"
#include "cf_txn.h"
#include "cf_util.h"
#include "cf_words.h"

const char *cf_phase_str(enum cf_phase p)
{
	static const char *const n[CF_PHASE_COUNT] = {
		[CF_PHASE_NONE] = "none",         [CF_PHASE_DETECT] = "detect",
		[CF_PHASE_CF_FENCE] = "cf-fence", [CF_PHASE_REGISTER] = "register",
		[CF_PHASE_DISK_FENCE] = "disk-fence", [CF_PHASE_WD_WAIT] = "watchdog-wait",
		[CF_PHASE_ATTACH] = "attach",
		[CF_PHASE_READ_LOG] = "read-log", [CF_PHASE_BACKOUT] = "backout",
		[CF_PHASE_SYNC] = "sync",         [CF_PHASE_RELEASE] = "release",
		[CF_PHASE_UNREGISTER] = "unregister", [CF_PHASE_DONE] = "done",
	};
	return (unsigned)p < CF_PHASE_COUNT ? n[p] : "?";
}

/* ---------------- one recovery ---------------- */

struct run {
	const struct cf_recovery_env *env;
	struct cf_recovery_report *rep;
	uint32_t inst;
	uint64_t rinfo_off;
	uint64_t t_phase; /* monotonic start of the running phase */
	uint64_t t_start; /* monotonic start of this call: after we learned of the failure */
	/*
	 * One buffer per phase: the rinfo WRITEs are posted without waiting (they
	 * are informational and must not add round trips to the failover), so
	 * each posted buffer must stay untouched until its completion.
	 */
	struct cf_rinfo_slot ri[CF_PHASE_COUNT];
};

static void fill_rinfo(uint32_t sys, const struct cf_recovery_report *rep, struct cf_rinfo_slot *ri, enum cf_phase p)
{
	memset(ri, 0, sizeof(*ri));
	ri->phase = p;
	ri->counterpart = (uint64_t)sys + 1;
	ri->incident = rep->incident;
	ri->start_ns = rep->fail_real_ns ? rep->fail_real_ns : rep->detect_real_ns;
	ri->end_ns = rep->done_real_ns;
	ri->txns_backed_out = rep->txns_inflight;
	ri->locks_released = rep->locks_released;
	ri->wait = rep->wait;
	ri->wait_err = rep->wait_err;
	ri->wait_tries = rep->wait_tries;
	ri->wait_left_ms = rep->wait_left_ms;
	for (int i = 0; i < CF_PHASE_COUNT; i++)
		ri->phase_us[i] = (uint32_t)(rep->phase_ns[i] / 1000u);
}

static void rinfo_fill(struct run *x, struct cf_rinfo_slot *ri, enum cf_phase p)
{
	fill_rinfo(x->env->s->sys, x->rep, ri, p);
}

void cf_recover_rinfo(const struct cf_recovery_env *env, const struct cf_recovery_report *rep,
		      struct cf_rinfo_slot *ri)
{
	uint64_t now = cf_mono_ns();

	fill_rinfo(env->s->sys, rep, ri, rep->reached);
	/* the running phase so far: its age, within one publication period */
	if (rep->reached < CF_PHASE_COUNT && now > rep->t_phase_mono)
		ri->phase_us[rep->reached] =
			(uint32_t)((rep->phase_ns[rep->reached] + now - rep->t_phase_mono) / 1000u);
}

const char *cf_fence_wait_str(enum cf_fence_wait w)
{
	switch (w) {
	case CF_FWAIT_NONE: return "none";
	case CF_FWAIT_AGENT: return "agent";
	case CF_FWAIT_WATCHDOG: return "watchdog";
	case CF_FWAIT_OPERATOR: return "operator";
	case CF_FWAIT_CONFIRMED: return "confirmed";
	case CF_FWAIT_FENCED: return "fenced";
	case CF_FWAIT_WD_EXPIRED: return "watchdog-expired";
	}
	return "?";
}

static void phase(struct run *x, enum cf_phase p)
{
	struct cf_recovery_report *rep = x->rep;
	uint64_t now = cf_mono_ns();

	if (rep->reached != CF_PHASE_NONE && rep->reached < CF_PHASE_COUNT)
		rep->phase_ns[rep->reached] += now - x->t_phase;
	x->t_phase = now;
	rep->t_phase_mono = now;
	rep->reached = p;
	if (x->env->on_phase)
		x->env->on_phase(x->env->arg, rep, p);
	if (p >= CF_PHASE_REGISTER + 1 && p < CF_PHASE_DONE) {
		/* we own the instance from here: publish progress for cfctl status */
		rinfo_fill(x, &x->ri[p], p);
		cf_session_post_write(x->env->s, x->rinfo_off, &x->ri[p], sizeof(x->ri[p]), CF_POST_UNSIGNALED);
	}
}

static int fail(struct run *x, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct run *x, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->rep->err_msg, sizeof(x->rep->err_msg), fmt, ap);
	va_end(ap);
	x->rep->result = r;
	return r;
}

/* Retry a local step that failed for a reason other than the connection. */
static bool retry_step(struct run *x, int r, int attempt)
{
	int max = x->env->step_attempts > 0 ? x->env->step_attempts : 5;

	if (r >= 0 || attempt + 1 >= max || x->env->s->dead || r == -ENOLINK || r == -EBADMSG)
		return false;
	struct timespec ts = {0, (long)(50000000L << (attempt < 4 ? attempt : 4))};
	nanosleep(&ts, NULL);
	return true;
}

static int disk_fence(struct run *x, const struct cf_inst_slot *slot)
{
	struct cf_recovery_report *rep = x->rep;
	struct cf_fence_target t;
	struct cf_sys_slot ss;
	int r;

	memset(&t, 0, sizeof(t));
	if (slot->fail_incident != rep->incident || slot->fail_sys == CF_NO_SYS) {
		snprintf(rep->fence_msg, sizeof(rep->fence_msg),
			 "failed owner of %s unknown for incident %u: cannot fence, relying on the lease", rep->inst_name,
			 rep->incident);
		rep->fence_skipped = true;
		return 0;
	}
	rep->failed_sys = slot->fail_sys;
	rep->failed_epoch = slot->fail_epoch;
	if (cf_session_read(x->env->s, cf_sys_off(&x->env->s->map, slot->fail_sys), &ss, sizeof(ss)) == 0)
		memcpy(rep->failed_name, ss.name, CF_NAME_MAX - 1);
	memcpy(t.name, rep->failed_name, CF_NAME_MAX);
	memcpy(t.host, slot->fail_host, sizeof(slot->fail_host));
	t.host[sizeof(slot->fail_host) - 1] = 0;
	t.pid = slot->fail_pid;
	t.starttime = slot->fail_starttime;
	if (!t.pid && (x->env->fence->kind == CF_FENCE_LOCAL || x->env->fence->kind == CF_FENCE_AUTO)) {
		/* only when the failed incarnation's slot was already reused (orphan scan) */
		snprintf(rep->fence_msg, sizeof(rep->fence_msg),
			 "pid of %s's failed incarnation unknown: cannot fence locally, relying on the lease", t.name);
		rep->fence_skipped = true;
		return 0;
	}
	if (t.pid == (uint64_t)getpid() && t.starttime == cf_proc_starttime(t.pid)) {
		/* Cannot happen for a live incarnation (its word would not be FAILED). */
		snprintf(rep->fence_msg, sizeof(rep->fence_msg), "refusing to fence this very process (pid %llu)",
			 (unsigned long long)t.pid);
		return -EINVAL;
	}
	rep->fence_target = t;
	rep->fail_wd_ms = slot->fail_wd_ms;
	r = cf_fence_run(x->env->fence, &t, rep->fence_msg, sizeof(rep->fence_msg));
	rep->fence_skipped = x->env->fence->kind == CF_FENCE_NONE;
	rep->wait_tries = 1;
	return r;
}

/*
 * The fence agent could not confirm (err). Never a silent stall, never a
 * skipped fence: say why we wait and how it ends.
 *   - the failed incarnation announced a watchdog that it pets only while its
 *     lease holds: its last completed beat was issued before the CF declared
 *     it (the CF fenced its connections first), so its lease ended by
 *     declaration + T/2, its last pet was no later, and its watchdog fired by
 *     declaration + T/2 + wd_timeout. We learned of the failure after the
 *     declaration, so our own monotonic "now" + T/2 + wd + margin is later
 *     still (no cross-host clock comparison). Phase watchdog-wait.
 *   - otherwise wait in disk-fence: the agent is retried every
 *     CF_FENCE_RETRY_MS by the caller, and `cfctl fence-confirm` ends it.
 */
static int fence_wait(struct run *x, int err)
{
	struct cf_recovery_report *rep = x->rep;
	const struct cf_recovery_env *env = x->env;
	uint64_t margin = env->wd_margin_ns ? env->wd_margin_ns : CF_WD_MARGIN_NS;

	rep->wait_err = err;
	if (rep->fail_wd_ms && env->fence->kind != CF_FENCE_NONE && env->hb_timeout_ns) {
		uint64_t wait = env->hb_timeout_ns / 2 + (uint64_t)rep->fail_wd_ms * 1000000ull + margin;
		rep->wait = CF_FWAIT_WATCHDOG;
		rep->wd_deadline_mono = x->t_start + wait;
		rep->wait_left_ms = (uint32_t)(wait / 1000000ull);
		phase(x, CF_PHASE_WD_WAIT);
	} else {
		rep->wait = err == -EHOSTUNREACH ? CF_FWAIT_OPERATOR : CF_FWAIT_AGENT;
		/* publish the reason now: phase() posted disk-fence before we knew it */
		rinfo_fill(x, &x->ri[CF_PHASE_WD_WAIT], CF_PHASE_DISK_FENCE);
		cf_session_post_write(env->s, x->rinfo_off, &x->ri[CF_PHASE_WD_WAIT], sizeof(x->ri[CF_PHASE_WD_WAIT]),
				      CF_POST_UNSIGNALED);
	}
	fail(x, -EINPROGRESS, "disk fence not confirmed: %s", rep->fence_msg);
	return -EINPROGRESS;
}

int cf_recover_fence_retry(const struct cf_recovery_env *env, struct cf_recovery_report *rep)
{
	struct cf_fence_cfg one = *env->fence;
	char msg[sizeof(rep->fence_msg)];
	int r;

	one.attempts = 1;
	r = cf_fence_run(&one, &rep->fence_target, msg, sizeof(msg));
	rep->wait_tries++;
	memcpy(rep->fence_msg, msg, sizeof(msg));
	rep->wait_err = r < 0 ? r : 0;
	return r;
}

static int recover(const struct cf_recovery_env *env, uint32_t inst, uint64_t failed_reg, uint64_t detect_real_ns,
		   uint32_t cf_fence_us, struct cf_recovery_report *rep, const char *resume_how)
{
	struct cf_session *s = env->s;
	const struct cf_image_map *m = &s->map;
	struct cf_log_scan sc;
	struct cf_inst_slot slot;
	struct cf_log log;
	void *region = NULL;
	struct cf_rec_entry *records = NULL; /* the record list, read during the sync */
	struct run *x;
	uint64_t old, mine;
	uint32_t released = 0;
	bool log_attached = false, scanned = false;
	int r, a;

	if (resume_how) {
		if (inst != rep->inst || rep->reached < CF_PHASE_DISK_FENCE || rep->reached > CF_PHASE_WD_WAIT)
			return -EINVAL;
		goto setup;
	}
	memset(rep, 0, sizeof(*rep));
	rep->inst = inst;
	rep->incident = cf_reg_incident(failed_reg);
	rep->detect_real_ns = detect_real_ns;
	rep->cf_fence_us = cf_fence_us;
	rep->failed_sys = CF_NO_SYS;
setup:
	if (inst >= m->geo.max_instances || cf_reg_state(failed_reg) != CF_REG_FAILED)
		return -EINVAL;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->env = env;
	x->rep = rep;
	x->inst = inst;
	x->rinfo_off = cf_rinfo_off(m, inst);
	x->t_phase = x->t_start = cf_mono_ns();
	memset(&sc, 0, sizeof(sc));
	if (resume_how) {
		/* the wait counts in the phase it happened in */
		x->t_phase = rep->t_phase_mono;
		snprintf(rep->fence_msg, sizeof(rep->fence_msg), "%s", resume_how);
		rep->result = 0;
		rep->err_msg[0] = 0;
		rep->wait_left_ms = 0;
		goto attach;
	}

	r = cf_session_read(s, cf_inst_off(m, inst), &slot, sizeof(slot));
	if (r < 0) {
		fail(x, r, "read instance slot: %s", strerror(-r));
		goto out;
	}
	memcpy(rep->inst_name, slot.name, CF_NAME_MAX - 1);
	rep->fail_real_ns = slot.fail_incident == rep->incident ? slot.fail_ns : 0;
	/* detect: from the CF's declaration to this system knowing of it */
	if (rep->fail_real_ns && detect_real_ns > rep->fail_real_ns)
		rep->phase_ns[CF_PHASE_DETECT] = detect_real_ns - rep->fail_real_ns;
	rep->phase_ns[CF_PHASE_CF_FENCE] = (uint64_t)cf_fence_us * 1000u;

	/* 1. register: the CAS only one system wins */
	phase(x, CF_PHASE_REGISTER);
	mine = cf_reg_active(s->sys, s->epoch, rep->incident);
	r = cf_session_cas(s, cf_inst_off(m, inst), failed_reg, mine, &old);
	if (r < 0) {
		fail(x, r, "registration CAS: %s", strerror(-r));
		goto out;
	}
	if (old != failed_reg) {
		rep->holder_reg = old;
		if (cf_reg_state(old) == CF_REG_ACTIVE) {
			struct cf_sys_slot hs;
			if (cf_session_read(s, cf_sys_off(m, cf_reg_owner(old)), &hs, sizeof(hs)) == 0)
				memcpy(rep->holder_name, hs.name, CF_NAME_MAX - 1);
			r = fail(x, -EBUSY, "registration for %s rejected: ACTIVE(owner %s, epoch %u, incident %u)",
				 rep->inst_name, rep->holder_name[0] ? rep->holder_name : "?", cf_reg_epoch(old),
				 cf_reg_incident(old));
		} else
			r = fail(x, -ESTALE, "registration for %s: word changed to %s (incident %u)", rep->inst_name,
				 cf_reg_state_str(cf_reg_state(old)), cf_reg_incident(old));
		goto out;
	}

	CF_FAULT("rec.after_register");
	/* 2. initialise the counterpart; make sure the failed owner cannot write the disk */
	phase(x, CF_PHASE_DISK_FENCE);
	r = disk_fence(x, &slot);
	if (r < 0) {
		/* Keep the registration: the locks stay held until the fence holds. */
		r = fence_wait(x, r);
		goto out;
	}

attach:
	/* 3. authorised attach of the private log and the record list */
	phase(x, CF_PHASE_ATTACH);
	r = cf_session_inst_attach(s, inst);
	if (r < 0) {
		fail(x, r, "attach %s: %s", rep->inst_name, strerror(-r));
		goto out;
	}

	CF_FAULT("rec.after_attach");
	/* 4. read the whole log, find the in-flight transactions */
	phase(x, CF_PHASE_READ_LOG);
	r = cf_log_attach(&log, s, inst, &sc, &region);
	if (r < 0) {
		fail(x, r, "read log of %s: %s", rep->inst_name, strerror(-r));
		goto out;
	}
	log_attached = scanned = true;
	rep->records_scanned = sc.n;
	rep->log_bytes = sc.end - sc.head;

	/* 5. before-images back, reverse LSN order */
	phase(x, CF_PHASE_BACKOUT);
	a = 0;
	do {
		r = cf_txn_backout_apply(env->data, &sc, env->lease, env->lease_arg, &rep->updates_applied);
	} while (retry_step(x, r, a++));
	if (r < 0) {
		fail(x, r, "back out %s: %s%s%s", rep->inst_name, strerror(-r), r == -EBADMSG ? " " : "",
		     r == -EBADMSG ? cf_data_corrupt_msg(env->data) : "");
		goto out;
	}

	/*
	 * 6. sync, then ABORT so that a second recovery finds nothing to do.
	 * The record list is read meanwhile: nobody but us writes it since the
	 * failed system was fenced, and its READs (256 KiB by default) then cost
	 * nothing on top of the fdatasync.
	 */
	phase(x, CF_PHASE_SYNC);
	records = malloc(m->records_size);
	if (records && cf_lock_post_read_records(s, inst, records) < 0) {
		free(records);
		records = NULL; /* release reads it itself */
	}
	a = 0;
	do
		r = cf_data_sync_all(env->data);
	while (retry_step(x, r, a++));
	if (r >= 0) {
		uint32_t ntx = 0;
		r = cf_txn_backout_mark(&log, &sc, env->lease, env->lease_arg, &ntx);
		rep->txns_inflight = ntx;
	}
	if (r < 0) {
		fail(x, r, "sync after backout of %s: %s", rep->inst_name, strerror(-r));
		goto out;
	}

	CF_FAULT("rec.after_backout");
	/* 7. release every lock the record list names; clear it; reset the log */
	phase(x, CF_PHASE_RELEASE);
	if (records && (r = cf_session_drain(s)) < 0) {
		fail(x, r, "read the record list of %s: %s", rep->inst_name, strerror(-r));
		goto out;
	}
	/*
	 * The X words of the failed owner name its epoch (cf_lock_x): guess them
	 * with that epoch, so each class is released by one CAS. (The FAILED word
	 * carries no epoch; guessing 0 cost every X class a second round.)
	 */
	r = cf_lock_release_instance(s, inst, rep->failed_epoch, records, &released);
	rep->locks_released = released;
	if (r >= 0)
		r = cf_log_reset(&log);
	if (r < 0) {
		fail(x, r, "release locks of %s: %s", rep->inst_name, strerror(-r));
		goto out;
	}
	rep->locks_free_real_ns = cf_real_ns();

	/*
	 * After the release (the locks are free as early as before) and before the
	 * unregister: a home that claims I next writes its marker after ours.
	 */
	if (env->backed_out)
		env->backed_out(env->arg, inst, rep->inst_name);
	CF_FAULT("rec.before_unregister");
	/* 8. unregister: cfserver revokes our access as it CASes to INACTIVE_CLEAN(k) */
	phase(x, CF_PHASE_UNREGISTER);
	rep->done_real_ns = cf_real_ns();
	rinfo_fill(x, &x->ri[CF_PHASE_DONE], CF_PHASE_DONE);
	x->ri[CF_PHASE_DONE].phase = CF_PHASE_UNREGISTER;
	/* the final record, while we still own the instance */
	cf_session_write(s, x->rinfo_off, &x->ri[CF_PHASE_DONE], sizeof(x->ri[CF_PHASE_DONE]));
	r = cf_session_inst_unreg(s, inst, rep->err_msg, sizeof(rep->err_msg));
	if (r < 0) {
		fail(x, r, "unregister %s: %s", rep->inst_name, rep->err_msg[0] ? rep->err_msg : strerror(-r));
		goto out;
	}
	cf_session_forget_inst(s, inst);
	phase(x, CF_PHASE_DONE);
	rep->done_real_ns = cf_real_ns();
	/* Done record: written after unregister with the full breakdown (RINFO is ours to write). */
	rinfo_fill(x, &x->ri[CF_PHASE_DONE], CF_PHASE_DONE);
	cf_session_write(s, x->rinfo_off, &x->ri[CF_PHASE_DONE], sizeof(x->ri[CF_PHASE_DONE]));
	rep->result = 0;
	r = 0;
out:
	/* a waiting fence keeps its phase open: cf_recover_resume closes it */
	if (r != -EINPROGRESS && rep->reached < CF_PHASE_DONE && rep->reached != CF_PHASE_NONE)
		rep->phase_ns[rep->reached] += cf_mono_ns() - x->t_phase;
	if (scanned)
		cf_log_scan_free(&sc);
	free(region);
	if (log_attached)
		cf_log_detach(&log);
	/* posted rinfo buffers live in x, posted record READs in records: wait for them */
	if (!s->dead)
		cf_session_drain(s);
	free(records);
	free(x);
	return r;
}

int cf_recover_instance(const struct cf_recovery_env *env, uint32_t inst, uint64_t failed_reg,
			uint64_t detect_real_ns, uint32_t cf_fence_us, struct cf_recovery_report *rep)
{
	return recover(env, inst, failed_reg, detect_real_ns, cf_fence_us, rep, NULL);
}

int cf_recover_resume(const struct cf_recovery_env *env, uint32_t inst, uint64_t failed_reg, const char *how,
		      enum cf_fence_wait why, struct cf_recovery_report *rep)
{
	rep->wait = why;
	return recover(env, inst, failed_reg, rep->detect_real_ns, rep->cf_fence_us, rep, how);
}

/* ---------------- detector ---------------- */

void cf_detector_init(struct cf_detector *d, enum cf_policy policy)
{
	memset(d, 0, sizeof(*d));
	d->policy = policy;
}

void cf_detector_seen(struct cf_detector *d, uint32_t inst, uint32_t incident, uint64_t real_ns, uint32_t fence_us)
{
	if (inst >= CF_DETECT_MAX)
		return;
	if (d->seen_incident[inst] != incident || !d->seen_ns[inst]) {
		d->seen_incident[inst] = incident;
		d->seen_ns[inst] = real_ns;
		d->fence_us[inst] = fence_us;
	}
}

enum cf_detect_action cf_detector_decide(struct cf_detector *d, uint32_t inst, uint64_t reg, bool operator_request)
{
	uint32_t k = cf_reg_incident(reg);

	if (inst >= CF_DETECT_MAX || cf_reg_state(reg) != CF_REG_FAILED)
		return CF_DETECT_NOTHING;
	if (operator_request) {
		d->tried[inst] = k;
		d->tried_valid[inst] = true;
		return CF_DETECT_RECOVER;
	}
	if (d->policy == CF_POLICY_OPERATOR) {
		if (d->announced_valid[inst] && d->announced[inst] == k)
			return CF_DETECT_NOTHING;
		d->announced[inst] = k;
		d->announced_valid[inst] = true;
		return CF_DETECT_ANNOUNCE;
	}
	if (d->tried_valid[inst] && d->tried[inst] == k)
		return CF_DETECT_NOTHING; /* once per incident ([0039]) */
	d->tried[inst] = k;
	d->tried_valid[inst] = true;
	return CF_DETECT_RECOVER;
}

/* ---------------- agent hooks ---------------- */

/*
 * A recovery waiting on its disk fence (cf_recover_instance returned
 * -EINPROGRESS). State machine, per instance:
 *   IDLE → WAIT_AGENT    fence agent failed / cannot reach: retried every
 *                        CF_FENCE_RETRY_MS, logged as an error every
 *                        CF_FENCE_LOG_MS, published every CF_FENCE_PUBLISH_MS
 *   IDLE → WAIT_WD       the failed system announced a watchdog: wait out
 *                        lease + watchdog timeout (published, logged)
 *   WAIT_* → IDLE        fence confirmed (agent, operator, watchdog
 *                        deadline): the recovery resumes at attach; or it
 *                        stopped for good (our connection died).
 */
enum pend_state { PEND_IDLE = 0, PEND_WAIT_AGENT, PEND_WAIT_WD };

static const char *pend_state_str(enum pend_state p)
{
	switch (p) {
	case PEND_IDLE: return "idle";
	case PEND_WAIT_AGENT: return "wait-agent";
	case PEND_WAIT_WD: return "wait-watchdog";
	}
	return "?";
}

struct cf_pending {
	enum pend_state state;
	uint64_t reg; /* the INACTIVE_FAILED(k) word we registered from */
	struct cf_recovery_report rep;
	uint64_t next_try, next_log, next_pub; /* monotonic ns */
	struct cf_rinfo_slot ri;
};

struct cf_recovery_state {
	struct cf_detector det;
	struct cf_pending pend[CF_DETECT_MAX];
	struct cf_data data;
	bool data_open;
	uint64_t recoveries, rejections;
	struct cf_inst_slot *table; /* scratch for polling */
};

static struct cf_recovery_state *st_of(struct cf_agent *a)
{
	return a->recovery;
}

int cf_recovery_init(struct cf_agent *a)
{
	struct cf_recovery_state *st = calloc(1, sizeof(*st));
	enum cf_policy p;

	if (!st)
		return -ENOMEM;
	p = a->o.policy >= 0 ? (enum cf_policy)a->o.policy : (enum cf_policy)a->s.welcome.policy;
	cf_detector_init(&st->det, p);
	st->table = calloc(a->s.map.geo.max_instances, sizeof(struct cf_inst_slot));
	if (!st->table) {
		free(st);
		return -ENOMEM;
	}
	a->recovery = st;
	if (a->o.fence.kind == CF_FENCE_NONE)
		cf_agent_log(a, CF_AGENT_WARN,
			     "fence agent none: failed systems are NOT fenced from the data directory; "
			     "a frozen system that resumes may write after its backout (unsafe, relies on the lease)");
	cf_agent_log(a, CF_AGENT_INFO, "recovery policy %s, fence agent %s",
		     p == CF_POLICY_AUTO ? "auto" : "operator", cf_fence_kind_str(a->o.fence.kind));
	return 0;
}

void cf_recovery_fini(struct cf_agent *a)
{
	struct cf_recovery_state *st = st_of(a);

	if (!st)
		return;
	if (st->data_open)
		cf_data_close(&st->data);
	free(st->table);
	free(st);
	a->recovery = NULL;
}

void cf_recovery_set_policy(struct cf_agent *a, enum cf_policy p)
{
	struct cf_recovery_state *st = st_of(a);

	if (!st || st->det.policy == p)
		return;
	st->det.policy = p;
	/* announcements of the old policy do not count as tries */
	memset(st->det.announced_valid, 0, sizeof(st->det.announced_valid));
	cf_agent_log(a, CF_AGENT_INFO, "recovery policy now %s", p == CF_POLICY_AUTO ? "auto" : "operator");
}

static void on_phase_log(void *arg, const struct cf_recovery_report *rep, enum cf_phase p)
{
	struct cf_agent *a = arg;

	if (p == CF_PHASE_DISK_FENCE)
		cf_agent_log(a, CF_AGENT_INFO, "recovery %s: registered as counterpart (incident %u)", rep->inst_name,
			     rep->incident);
	else if (p == CF_PHASE_ATTACH)
		cf_agent_log(a, rep->fence_skipped ? CF_AGENT_WARN : CF_AGENT_INFO, "recovery %s: disk fence: %s",
			     rep->inst_name, rep->fence_msg);
	else if (p == CF_PHASE_BACKOUT)
		cf_agent_log(a, CF_AGENT_INFO, "recovery %s: log read: %llu records, %llu bytes", rep->inst_name,
			     (unsigned long long)rep->records_scanned, (unsigned long long)rep->log_bytes);
	else if (p == CF_PHASE_RELEASE)
		cf_agent_log(a, CF_AGENT_INFO, "recovery %s: backed out %llu in-flight transactions (%llu updates)",
			     rep->inst_name, (unsigned long long)rep->txns_inflight,
			     (unsigned long long)rep->updates_applied);
	else if (p == CF_PHASE_UNREGISTER)
		cf_agent_log(a, CF_AGENT_INFO, "recovery %s: released %llu locks", rep->inst_name,
			     (unsigned long long)rep->locks_released);
}

static void log_report(struct cf_agent *a, const struct cf_recovery_report *rep)
{
	char line[1024];
	int n = 0;
	uint64_t total = 0;

	for (int p = CF_PHASE_DETECT; p < CF_PHASE_DONE; p++) {
		n += snprintf(line + n, sizeof(line) - (size_t)n, "%s\"%s_us\":%.1f", p == CF_PHASE_DETECT ? "" : ",",
			      cf_phase_str((enum cf_phase)p), rep->phase_ns[p] / 1000.0);
		total += rep->phase_ns[p];
	}
	cf_agent_log(a, CF_AGENT_INFO,
		     "recovery %s (incident %u) by %s done: %llu txns backed out (%llu updates), %llu locks released, "
		     "failed system %s; %.3f ms from declaration to unregister",
		     rep->inst_name, rep->incident, a->o.system, (unsigned long long)rep->txns_inflight,
		     (unsigned long long)rep->updates_applied, (unsigned long long)rep->locks_released,
		     rep->failed_name[0] ? rep->failed_name : "?", total / 1e6);
	/* one machine-readable line for the demo and the benchmarks */
	cf_agent_log(a, CF_AGENT_INFO,
		     "RECOVERY {\"inst\":\"%s\",\"incident\":%u,\"counterpart\":\"%s\",\"failed\":\"%s\","
		     "\"fail_ns\":%llu,\"detect_ns\":%llu,\"locks_free_ns\":%llu,\"done_ns\":%llu,"
		     "\"txns\":%llu,\"updates\":%llu,\"locks\":%llu,\"log_bytes\":%llu,%s}",
		     rep->inst_name, rep->incident, a->o.system, rep->failed_name,
		     (unsigned long long)rep->fail_real_ns, (unsigned long long)rep->detect_real_ns,
		     (unsigned long long)rep->locks_free_real_ns, (unsigned long long)rep->done_real_ns,
		     (unsigned long long)rep->txns_inflight, (unsigned long long)rep->updates_applied,
		     (unsigned long long)rep->locks_released, (unsigned long long)rep->log_bytes, line);
}

/* The recovered instance has nothing in flight in the data any more: its marker says so. */
static void marker_clean(void *arg, uint32_t inst, const char *name)
{
	struct cf_agent *a = arg;
	int r = cf_marker_set(a->o.data_dir, name, CF_MARKER_CLEAN, a->image_id, a->o.system, a->host, a->pid,
			      a->starttime);

	if (r < 0)
		cf_agent_log(a, CF_AGENT_WARN,
			     "recovery: data-directory marker of %s not set clean: %s (it stays in-use: a restart "
			     "after a loss of this CF will ask the operator)",
			     name, strerror(-r));
}
static int recovery_outcome(struct cf_agent *a, uint32_t inst, uint64_t reg, int r, struct cf_recovery_report *rep);
static void env_of(struct cf_agent *a, struct cf_recovery_env *env);
static void pend_event(struct cf_agent *a, const struct cf_event *ev);

static int run_recovery(struct cf_agent *a, uint32_t inst, uint64_t reg, struct cf_recovery_report *rep)
{
	struct cf_recovery_state *st = st_of(a);
	struct cf_recovery_env env;
	uint64_t seen = st->det.seen_incident[inst] == cf_reg_incident(reg) && st->det.seen_ns[inst]
				? st->det.seen_ns[inst]
				: cf_real_ns();
	uint32_t fence_us = st->det.seen_incident[inst] == cf_reg_incident(reg) ? st->det.fence_us[inst] : 0;
	int r;

	if (!st->data_open) {
		r = cf_data_open(&st->data, a->o.data_dir);
		if (r < 0) {
			cf_agent_log(a, CF_AGENT_ERR, "recovery: open data directory %s: %s", a->o.data_dir,
				     strerror(-r));
			return r;
		}
		st->data_open = true;
	}
	env_of(a, &env);
	r = cf_recover_instance(&env, inst, reg, seen, fence_us, rep);
	return recovery_outcome(a, inst, reg, r, rep);
}

static void env_of(struct cf_agent *a, struct cf_recovery_env *env)
{
	struct cf_recovery_state *st = st_of(a);

	memset(env, 0, sizeof(*env));
	env->s = &a->s;
	env->data = &st->data;
	env->fence = &a->o.fence;
	env->on_phase = on_phase_log;
	env->arg = a;
	env->lease = cf_agent_lease_cb;
	env->lease_arg = a;
	env->step_attempts = 5;
	env->hb_timeout_ns = a->s.welcome.hb_timeout_ns;
	env->wd_margin_ns = a->o.wd_margin_ns;
	env->backed_out = marker_clean;
}

static void pend_set(struct cf_agent *a, uint32_t inst, enum pend_state to)
{
	struct cf_pending *p = &st_of(a)->pend[inst];

	/* legal: idle → wait-*, wait-* → idle, wait-agent → wait-agent (retry) */
	assert((p->state == PEND_IDLE) != (to == PEND_IDLE) || (p->state == to && to == PEND_WAIT_AGENT));
	cf_agent_log(a, CF_AGENT_DEBUG, "recovery %s: fence %s -> %s", p->rep.inst_name, pend_state_str(p->state),
		     pend_state_str(to));
	p->state = to;
}

static void pend_log(struct cf_agent *a, struct cf_pending *p)
{
	const struct cf_recovery_report *rep = &p->rep;
	double age = (double)(cf_mono_ns() - rep->t_phase_mono) / 1e9;

	if (p->state == PEND_WAIT_WD)
		cf_agent_log(a, CF_AGENT_WARN,
			     "recovery of %s (incident %u) waits %.1f s more for the watchdog of %s on host %s "
			     "(announced %u ms; lease T/2 + watchdog + margin): %s",
			     rep->inst_name, rep->incident, rep->wait_left_ms / 1e3, rep->fence_target.name,
			     rep->fence_target.host, rep->fail_wd_ms, rep->fence_msg);
	else
		cf_agent_log(a, CF_AGENT_ERR,
			     "recovery of %s (incident %u) waits in phase disk-fence for %.1f s (%u attempts): %s; its "
			     "locks stay held. Fence %s, or if you know it is down: cfctl fence-confirm %s",
			     rep->inst_name, rep->incident, age, rep->wait_tries, rep->fence_msg, rep->fence_target.name,
			     rep->fence_target.name);
}

static void pend_publish(struct cf_agent *a, struct cf_pending *p)
{
	struct cf_recovery_env env;

	env_of(a, &env);
	cf_recover_rinfo(&env, &p->rep, &p->ri);
	cf_session_write(&a->s, cf_rinfo_off(&a->s.map, p->rep.inst), &p->ri, sizeof(p->ri));
}

static int pend_resume(struct cf_agent *a, uint32_t inst, const char *how, enum cf_fence_wait why)
{
	struct cf_recovery_state *st = st_of(a);
	struct cf_pending *p = &st->pend[inst];
	struct cf_recovery_env env;
	struct cf_recovery_report rep = p->rep;
	uint64_t reg = p->reg;
	int r;

	pend_set(a, inst, PEND_IDLE);
	env_of(a, &env);
	r = cf_recover_resume(&env, inst, reg, how, why, &rep);
	return recovery_outcome(a, inst, reg, r, &rep);
}

static int recovery_outcome(struct cf_agent *a, uint32_t inst, uint64_t reg, int r, struct cf_recovery_report *rep)
{
	struct cf_recovery_state *st = st_of(a);

	if (r == -EINPROGRESS) {
		struct cf_pending *p = &st->pend[inst];
		uint64_t now = cf_mono_ns();
		pend_set(a, inst, rep->wait == CF_FWAIT_WATCHDOG ? PEND_WAIT_WD : PEND_WAIT_AGENT);
		p->reg = reg;
		p->rep = *rep;
		p->next_try = now + CF_FENCE_RETRY_MS * 1000000ull;
		p->next_log = now + CF_FENCE_LOG_MS * 1000000ull;
		p->next_pub = now;
		pend_log(a, p);
		pend_publish(a, p);
		return r;
	}
	if (r == 0) {
		st->recoveries++;
		log_report(a, rep);
	} else if (r == -EBUSY || r == -ESTALE) {
		st->rejections++;
		cf_agent_log(a, CF_AGENT_INFO, "%s", rep->err_msg);
	} else {
		cf_agent_log(a, CF_AGENT_ERR, "recovery of %s (incident %u) stopped in phase %s: %s",
			     rep->inst_name[0] ? rep->inst_name : "?", rep->incident, cf_phase_str(rep->reached),
			     rep->err_msg[0] ? rep->err_msg : strerror(-r));
		if (a->s.dead)
			cf_agent_set_over(a, a->s.dead);
	}
	return r;
}

static bool is_home(struct cf_agent *a, uint32_t inst)
{
	return a->home && a->home->index == inst;
}

static void consider(struct cf_agent *a, uint32_t inst, uint64_t reg, bool operator_request)
{
	struct cf_recovery_state *st = st_of(a);
	struct cf_recovery_report rep;
	char name[CF_NAME_MAX] = "";

	/* The home instance is claimed (and self-recovered) by cf_agent_claim. */
	if (is_home(a, inst) && !operator_request)
		return;
	switch (cf_detector_decide(&st->det, inst, reg, operator_request)) {
	case CF_DETECT_NOTHING:
		return;
	case CF_DETECT_ANNOUNCE:
		if (inst < a->s.map.geo.max_instances)
			memcpy(name, st->table[inst].name, CF_NAME_MAX - 1);
		cf_agent_log(a, CF_AGENT_WARN,
			     "instance %s failed (incident %u): policy operator, waiting for `cfctl recover %s`",
			     name[0] ? name : "?", cf_reg_incident(reg), name[0] ? name : "<instance>");
		return;
	case CF_DETECT_RECOVER:
		run_recovery(a, inst, reg, &rep);
		return;
	}
}

void cf_recovery_on_event(struct cf_agent *a, const struct cf_event *ev)
{
	struct cf_recovery_state *st = st_of(a);
	uint64_t now = cf_real_ns();
	uint64_t reg;

	if (!st)
		return;
	switch (ev->type) {
	case CF_EV_SYS_FAILED:
		cf_agent_log(a, CF_AGENT_INFO, "system %u (epoch %u) declared failed by the CF (%s), fenced in %u us",
			     ev->sys, ev->epoch,
			     ev->cause == CF_FAIL_CONN_LOST    ? "connection lost"
			     : ev->cause == CF_FAIL_HB_TIMEOUT ? "heartbeat silence"
			     : ev->cause == CF_FAIL_READMIT    ? "rejoined"
							       : "protocol",
			     ev->fence_us);
		break;
	case CF_EV_INST_FAILED:
		cf_detector_seen(&st->det, ev->inst, cf_reg_incident(ev->reg), now, ev->fence_us);
		if (ev->inst < a->s.map.geo.max_instances)
			cf_session_read(&a->s, cf_inst_off(&a->s.map, ev->inst), &st->table[ev->inst],
					sizeof(st->table[ev->inst]));
		consider(a, ev->inst, ev->reg, false);
		break;
	case CF_EV_POLICY:
		cf_recovery_set_policy(a, (enum cf_policy)ev->policy);
		if (ev->policy == CF_POLICY_AUTO)
			cf_recovery_tick(a);
		break;
	case CF_EV_RECOVER:
		if (cf_agent_read_reg(a, ev->inst, &reg) < 0)
			break;
		cf_detector_seen(&st->det, ev->inst, cf_reg_incident(reg), now, 0);
		cf_session_read(&a->s, cf_inst_off(&a->s.map, ev->inst), &st->table[ev->inst],
				sizeof(st->table[ev->inst]));
		cf_agent_log(a, CF_AGENT_INFO, "operator asks this system to recover %s", st->table[ev->inst].name);
		if (cf_reg_state(reg) != CF_REG_FAILED) {
			cf_agent_log(a, CF_AGENT_WARN, "operator recover of %s: it is %s now, nothing to do",
				     st->table[ev->inst].name, cf_reg_state_str(cf_reg_state(reg)));
			break;
		}
		consider(a, ev->inst, reg, true);
		break;
	case CF_EV_FENCE_CONFIRM:
	case CF_EV_FENCE_RETRY:
		pend_event(a, ev);
		break;
	default:
		break;
	}
}

/* Waiting fences: retry, watchdog deadline, publish, log (every agent tick). */
static void pend_tick(struct cf_agent *a)
{
	struct cf_recovery_state *st = st_of(a);
	uint64_t now = cf_mono_ns();
	char how[sizeof(st->pend[0].rep.fence_msg)];

	for (uint32_t i = 0; i < CF_DETECT_MAX && !a->s.dead; i++) {
		struct cf_pending *p = &st->pend[i];
		if (p->state == PEND_IDLE)
			continue;
		if (p->state == PEND_WAIT_WD) {
			if (now >= p->rep.wd_deadline_mono) {
				snprintf(how, sizeof(how),
					 "watchdog wait over: %s (watchdog %u ms) cannot write since its lease and "
					 "watchdog ran out", p->rep.fence_target.name, p->rep.fail_wd_ms);
				cf_agent_log(a, CF_AGENT_WARN, "recovery %s: %s", p->rep.inst_name, how);
				pend_resume(a, i, how, CF_FWAIT_WD_EXPIRED);
				continue;
			}
			p->rep.wait_left_ms = (uint32_t)((p->rep.wd_deadline_mono - now) / 1000000ull);
		} else if (now >= p->next_try) {
			struct cf_recovery_env env;
			env_of(a, &env);
			if (cf_recover_fence_retry(&env, &p->rep) == 0) {
				snprintf(how, sizeof(how), "%s (after %u attempts)", p->rep.fence_msg, p->rep.wait_tries);
				pend_resume(a, i, how, CF_FWAIT_FENCED);
				continue;
			}
			p->next_try = cf_mono_ns() + CF_FENCE_RETRY_MS * 1000000ull;
		}
		if (now >= p->next_log) {
			pend_log(a, p);
			p->next_log = now + CF_FENCE_LOG_MS * 1000000ull;
		}
		if (now >= p->next_pub) {
			pend_publish(a, p);
			p->next_pub = now + CF_FENCE_PUBLISH_MS * 1000000ull;
		}
	}
}

static void pend_event(struct cf_agent *a, const struct cf_event *ev)
{
	struct cf_recovery_state *st = st_of(a);
	struct cf_pending *p;
	char how[200];

	if (ev->inst >= CF_DETECT_MAX)
		return;
	p = &st->pend[ev->inst];
	if (p->state == PEND_IDLE) {
		cf_agent_log(a, CF_AGENT_WARN, "operator %s for instance %u: no recovery of it waits on a fence here",
			     ev->type == CF_EV_FENCE_CONFIRM ? "fence-confirm" : "recover --retry", ev->inst);
		return;
	}
	if (ev->type == CF_EV_FENCE_RETRY) {
		cf_agent_log(a, CF_AGENT_INFO, "operator asks to retry the fence of %s for %s now",
			     p->rep.fence_target.name, p->rep.inst_name);
		p->next_try = 0;
		pend_tick(a);
		return;
	}
	if (ev->sys != p->rep.failed_sys || ev->epoch != p->rep.failed_epoch) {
		cf_agent_log(a, CF_AGENT_WARN,
			     "fence-confirm for system %u epoch %u ignored: %s waits on system %u epoch %u", ev->sys,
			     ev->epoch, p->rep.inst_name, p->rep.failed_sys, p->rep.failed_epoch);
		return;
	}
	snprintf(how, sizeof(how), "fence of %s (epoch %u, host %s) confirmed by the operator (cfctl fence-confirm)",
		 p->rep.fence_target.name, p->rep.failed_epoch, p->rep.fence_target.host);
	cf_agent_log(a, CF_AGENT_WARN, "recovery %s: %s: proceeding with the backout", p->rep.inst_name, how);
	pend_resume(a, ev->inst, how, CF_FWAIT_CONFIRMED);
}

bool cf_recovery_pending(struct cf_agent *a, uint32_t inst)
{
	struct cf_recovery_state *st = st_of(a);

	return st && inst < CF_DETECT_MAX && st->pend[inst].state != PEND_IDLE;
}

void cf_recovery_tick(struct cf_agent *a)
{
	struct cf_recovery_state *st = st_of(a);
	const struct cf_image_map *m = &a->s.map;
	uint32_t n = m->geo.max_instances;
	int r;

	if (!st || a->s.dead)
		return;
	pend_tick(a);
	/* Fallback to the events: one READ of the whole instance table. */
	r = cf_session_read(&a->s, m->off_instances, st->table, n * (uint32_t)sizeof(struct cf_inst_slot));
	if (r < 0) {
		if (a->s.dead)
			cf_agent_set_over(a, a->s.dead);
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint64_t reg = st->table[i].reg;
		if (cf_reg_state(reg) != CF_REG_FAILED)
			continue;
		cf_detector_seen(&st->det, i, cf_reg_incident(reg), cf_real_ns(), 0);
		consider(a, i, reg, false);
	}
}

int cf_agent_self_recover(struct cf_agent *a, struct cf_inst_ctx *ic, uint64_t reg)
{
	struct cf_recovery_report rep;

	if (!st_of(a) && cf_recovery_init(a) < 0)
		return -ENOMEM;
	cf_agent_log(a, CF_AGENT_INFO, "home instance %s is INACTIVE_FAILED (incident %u): recovering it first",
		     ic->name, cf_reg_incident(reg));
	return run_recovery(a, ic->index, reg, &rep);
}
