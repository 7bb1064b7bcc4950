/* SPDX-License-Identifier: MIT */
/*
 * cf_recovery.c - transactional peer recovery (patent Figure 8, claims 1-30;
 * docs/design.md §7).
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
 *   sync        fdatasync every touched file; then I's log emptied, durably
 *               (no ABORT records: an empty log is the mark).
 *   release     every hold of I named by its record list; list cleared.
 *   unregister  a control request: cfserver revokes our grants on I as it
 *               CASes ACTIVE(C, e, k) → INACTIVE_CLEAN(k).
 *
 * A registration already held (cf_recover_held: kept by a new primary CF at a
 * duplexed takeover, docs/design.md "Incarnations kept across a switch")
 * skips the CAS, and for this system's own home instance the disk fence too.
 *
 * Invariants this code keeps (I1-I7, M1-M6: docs/design.md §0):
 *   - Nothing of I is written (data, log, locks) unless our registration CAS
 *     won and our connection is alive: if C dies, cfserver fences C BEFORE it
 *     republishes I as FAILED(k+1), so no late write of C lands after that.
 *   - No before-image is written before the fence agent confirmed, the
 *     operator confirmed, or the failed system's watchdog has certainly
 *     fired (model counterexample "lease"); with --fence-agent none only
 *     the lease stands, and that choice is logged as unsafe.
 *   - I's locks are released only after its backout is synced (I4).
 *   - Every step is idempotent: before-images are absolute, the log is
 *     emptied only after the sync and before the first release, releases
 *     remove only I's hold. A counterpart that dies anywhere leaves a state
 *     the next one finishes.
 */
#include "cf_recovery.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cf_data.h"
#include "cf_fault.h"
#include "cf_lock.h"
#include "cf_log.h"
#include "cf_session.h"
#include "cf_txn.h"
#include "cf_util.h"
#include "cf_words.h"

/* ---------------- one recovery ---------------- */

struct run {
	const struct cf_recovery_env *env;
	struct cf_recovery_report *rep;
	uint32_t inst;
	uint64_t rinfo_off;
	uint64_t t_phase; /* monotonic start of the running phase */
	uint64_t t_start; /* monotonic start of this call: after we learned of the failure */
	uint32_t nrecords; /* the record list's span (cf_log_hdr): entries the release reads */
	/*
	 * The system table (the failed owner's name for its fence, a winner's for
	 * a rejection), READ with the instance slot (post_slot_reads).
	 */
	struct cf_sys_slot systems[CF_MAX_SYSTEMS_LIMIT];
	struct txn_seen *txns; /* the log's transactions by txid (summarize), ntxns of them */
	size_t ntxns;
	struct cf_log_hdr log_hdr; /* the log's header, sent by the CF with the attach's grants */
	bool have_log_hdr;
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
	if (slot->fail_sys < x->env->s->map.geo.max_systems)
		memcpy(rep->failed_name, x->systems[slot->fail_sys].name, CF_NAME_MAX - 1);
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

/*
 * The steps of recover(), one per phase (numbered as in the opening comment
 * and the log lines). Each does its phase's work and, when it stops, records
 * why (fail()); recover() starts the phases (phase()), so their timing is
 * measured in one place, and owns what outlives a step: the slot, the log and
 * its scan, the record list.
 */

/*
 * The instance slot (name, failed owner, the CF's declaration time) and the
 * system table, posted: the registration CAS behind them completes them (RC
 * order), so the three cost one round trip (the slot's READ, awaited alone
 * before the CAS, and the failed owner's system slot after it had cost two
 * more). Without a CAS (a held registration) the caller drains.
 */
static int post_slot_reads(struct run *x, struct cf_inst_slot *slot)
{
	struct cf_session *s = x->env->s;
	const struct cf_image_map *m = &s->map;
	int r;

	memset(slot, 0, sizeof(*slot));
	r = cf_session_post_read(s, cf_inst_off(m, x->inst), slot, sizeof(*slot));
	if (r == 0)
		r = cf_session_post_read(s, m->off_systems, x->systems,
					 m->geo.max_systems * (uint32_t)sizeof(x->systems[0]));
	return r < 0 ? fail(x, r, "read instance slot: %s", strerror(-r)) : 0;
}

/* What the instance slot says, once its READ completed. */
static void take_slot(struct run *x, const struct cf_inst_slot *slot, uint64_t detect_real_ns, uint32_t cf_fence_us)
{
	struct cf_recovery_report *rep = x->rep;

	memcpy(rep->inst_name, slot->name, CF_NAME_MAX - 1);
	rep->fail_real_ns = slot->fail_incident == rep->incident ? slot->fail_ns : 0;
	/* detect: from the CF's declaration to this system knowing of it */
	if (rep->fail_real_ns && detect_real_ns > rep->fail_real_ns)
		rep->phase_ns[CF_PHASE_DETECT] = detect_real_ns - rep->fail_real_ns;
	rep->phase_ns[CF_PHASE_CF_FENCE] = (uint64_t)cf_fence_us * 1000u;
}

/*
 * 1. register: the CAS only one system wins. The slot READs posted before it
 * (post_slot_reads) are complete once it is, and taken then.
 */
static int step_register(struct run *x, uint64_t failed_reg, const struct cf_inst_slot *slot, uint64_t detect_real_ns,
			 uint32_t cf_fence_us)
{
	struct cf_session *s = x->env->s;
	const struct cf_image_map *m = &s->map;
	struct cf_recovery_report *rep = x->rep;
	uint64_t old, mine = cf_reg_active(s->sys, s->epoch, rep->incident);
	int r;

	r = cf_session_cas(s, cf_inst_off(m, x->inst), failed_reg, mine, &old);
	if (r < 0)
		return fail(x, r, "registration CAS: %s", strerror(-r));
	take_slot(x, slot, detect_real_ns, cf_fence_us);
	if (old == failed_reg)
		return 0;
	rep->holder_reg = old;
	if (cf_reg_state(old) == CF_REG_ACTIVE) {
		/* the table was read before the CAS; the winner joined long before it registered */
		if (cf_reg_owner(old) < m->geo.max_systems)
			memcpy(rep->holder_name, x->systems[cf_reg_owner(old)].name, CF_NAME_MAX - 1);
		return fail(x, -EBUSY, "registration for %s rejected: ACTIVE(owner %s, epoch %u, incident %u)",
			    rep->inst_name, rep->holder_name[0] ? rep->holder_name : "?", cf_reg_epoch(old),
			    cf_reg_incident(old));
	}
	return fail(x, -ESTALE, "registration for %s: word changed to %s (incident %u)", rep->inst_name,
		    cf_reg_state_str(cf_reg_state(old)), cf_reg_incident(old));
}

/*
 * 2. initialise the counterpart; make sure the failed owner cannot write the
 * disk. -EINPROGRESS: not confirmed yet; the registration is kept, so the
 * locks stay held until the fence holds (cf_recover_resume goes on).
 */
static int step_disk_fence(struct run *x, const struct cf_inst_slot *slot)
{
	int r = disk_fence(x, slot);

	return r < 0 ? fence_wait(x, r) : 0;
}

/* 3. authorised attach of the private log and the record list */
static int step_attach(struct run *x)
{
	int r = cf_session_inst_attach_log(x->env->s, x->inst, &x->log_hdr);

	if (r < 0)
		return fail(x, r, "attach %s: %s", x->rep->inst_name, strerror(-r));
	x->have_log_hdr = r == 1; /* else a CF older than CF_ATTACH_LOG_HDR: read_live READs it */
	return 0;
}

struct txn_seen {
	uint64_t txid;
	uint8_t types; /* bit per record type */
};

static int cmp_txn_seen(const void *a, const void *b)
{
	const struct txn_seen *x = a, *y = b;

	return x->txid < y->txid ? -1 : x->txid > y->txid;
}

/*
 * What the scan says of each transaction (its record types, by txid), and the
 * count of transactions with both a COMMIT and an ABORT (a writer that backed
 * out a transaction whose COMMIT it had sent: never right), taken with the
 * log's read so that the report of the read (env->on_phase at the backout)
 * has it. No memory: no summary, nothing told, nothing counted.
 */
static void summarize(struct run *x, const struct cf_log_scan *sc)
{
	struct txn_seen *v;
	size_t n = 0;

	if (!sc->n || !(v = malloc(sc->n * sizeof(*v))))
		return;
	for (size_t i = 0; i < sc->n; i++)
		v[i] = (struct txn_seen){ .txid = sc->recs[i].h.txid, .types = (uint8_t)(1u << (sc->recs[i].h.type & 7)) };
	qsort(v, sc->n, sizeof(*v), cmp_txn_seen);
	for (size_t i = 0; i < sc->n; i++) {
		if (n && v[n - 1].txid == v[i].txid)
			v[n - 1].types |= v[i].types;
		else
			v[n++] = v[i];
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t t = v[i].types;
		if ((t & (1u << CF_LR_COMMIT)) && (t & (1u << CF_LR_ABORT)) && !x->rep->log_both++)
			x->rep->log_both_txid = v[i].txid;
	}
	x->txns = v;
	x->ntxns = n;
}

/* env->decided for every transaction of the summary without an END. */
static void tell_outcomes(struct run *x)
{
	const struct cf_recovery_env *env = x->env;
	struct cf_txn_outcome *out;
	size_t nout = 0;

	if (!env->decided || !x->txns || !(out = malloc(x->ntxns * sizeof(*out))))
		return;
	for (size_t i = 0; i < x->ntxns; i++) {
		uint8_t t = x->txns[i].types;
		if (!(t & (1u << CF_LR_END)))
			out[nout++] = (struct cf_txn_outcome){ .txid = x->txns[i].txid, .committed = t & (1u << CF_LR_COMMIT) };
	}
	if (nout)
		env->decided(env->arg, x->rep->inst, x->rep->inst_name, out, nout);
	free(out);
}

/* 4. read the whole log, find the in-flight transactions */
static int step_read_log(struct run *x, struct cf_log *log, struct cf_log_scan *sc)
{
	int r = cf_log_attach_hdr(log, x->env->s, x->inst, x->have_log_hdr ? &x->log_hdr : NULL, sc);

	if (r < 0)
		return fail(x, r, "read log of %s: %s", x->rep->inst_name, strerror(-r));
	x->rep->records_scanned = sc->n;
	x->rep->log_bytes = sc->end - sc->head;
	x->rep->log_head = sc->head;
	x->rep->log_end = sc->end;
	x->rep->log_next_lsn = sc->next_lsn;
	x->rep->log_stop_lsn = sc->stop_lsn;
	x->rep->log_stop = sc->stop;
	x->rep->log_stop_where = sc->stop == -EBADMSG ? sc->stop_where : NULL;
	summarize(x, sc);
	return 0;
}

/* 5. before-images back, reverse LSN order */
static int step_backout(struct run *x, const struct cf_log_scan *sc)
{
	const struct cf_recovery_env *env = x->env;
	int r, a = 0;

	do {
		r = cf_txn_backout_apply(env->data, sc, env->lease, env->lease_arg, &x->rep->updates_applied,
					 &x->rep->updates_unwritten);
	} while (retry_step(x, r, a++));
	if (r < 0)
		return fail(x, r, "back out %s: %s%s%s", x->rep->inst_name, strerror(-r), r == -EBADMSG ? " " : "",
			    r == -EBADMSG ? cf_data_corrupt_msg(env->data) : "");
	return 0;
}

/*
 * The input of the release, posted at the start of the sync: nobody but us
 * writes the record list since the failed system was fenced, and its READs
 * then overlap the fdatasync. Only the span the log header names (read with
 * the log): the entries the owner ever used at once, a few KiB, where the
 * whole list is 256 KiB by default and its READ, behind the survivors'
 * traffic, took 0.5-3 ms. NULL: the release reads the whole list itself.
 */
static struct cf_rec_entry *prefetch_records(struct run *x, const struct cf_log_scan *sc)
{
	struct cf_rec_entry *records = malloc(((size_t)sc->rec_span + 1) * sizeof(*records));

	x->nrecords = sc->rec_span;
	if (records && cf_lock_post_read_records(x->env->s, x->inst, records, x->nrecords) < 0) {
		free(records);
		records = NULL;
	}
	return records;
}

/*
 * 6. sync, then empty the log, durably, so that a second recovery finds
 * nothing to do: from then on what the log's attach found, COMMITs included,
 * is final, and the decisions may be told (--recovery-journal): here, before
 * the locks go, since a counterpart that died between the close and a later
 * telling would leave them untold for good (the next one finds an empty
 * log). The close's awaited operation also completes the record list's READs
 * posted before the sync (RC order).
 */
static int step_sync(struct run *x, struct cf_log *log, const struct cf_log_scan *sc)
{
	const struct cf_recovery_env *env = x->env;
	int r, a = 0;

	/*
	 * Only the files the backout wrote to: when it wrote nothing back (every
	 * in-flight UPDATE was never written to the data, cf_txn_backout_apply),
	 * the data already holds, durably, what a sync would make durable.
	 */
	do
		r = cf_data_sync_all(env->data);
	while (retry_step(x, r, a++));
	if (r >= 0) {
		uint32_t ntx = 0;
		r = cf_txn_backout_close(log, sc, env->lease, env->lease_arg, &ntx);
		x->rep->txns_inflight = ntx;
	}
	if (r >= 0)
		tell_outcomes(x);
	return r < 0 ? fail(x, r, "sync after backout of %s: %s", x->rep->inst_name, strerror(-r)) : 0;
}

/*
 * 7. release every lock the record list names; clear it.
 * records: prefetch_records() posted its READs, or NULL. Over a memory CF the
 * close's awaited WRITE came after them, so they are complete; over a durable
 * one the close ends with a PERSIST's reply, a SEND of the CF's that RC does
 * not order after the READs' answers, so they are awaited here.
 */
static int step_release(struct run *x, struct cf_rec_entry *records)
{
	struct cf_session *s = x->env->s;
	struct cf_recovery_report *rep = x->rep;
	uint32_t released = 0;
	int r;

	if (records && cf_session_persist_needed(s) && (r = cf_session_drain(s)) < 0)
		return fail(x, r, "read the record list of %s: %s", rep->inst_name, strerror(-r));
	/*
	 * The X words of the failed owner name its epoch (cf_lock_x): guess them
	 * with that epoch, so each class is released by one CAS. (The FAILED word
	 * carries no epoch; guessing 0 cost every X class a second round.)
	 */
	r = cf_lock_release_instance(s, x->inst, rep->failed_epoch, records, x->nrecords, &released);
	rep->locks_released = released;
	if (r < 0)
		return fail(x, r, "release locks of %s: %s", rep->inst_name, strerror(-r));
	/* the CASes that freed them have completed; the list's clearing WRITEs are posted */
	rep->locks_free_real_ns = cf_real_ns();
	return 0;
}

/* 8. unregister: cfserver revokes our access as it CASes to INACTIVE_CLEAN(k) */
static int step_unregister(struct run *x)
{
	struct cf_session *s = x->env->s;
	struct cf_recovery_report *rep = x->rep;
	int r;

	rep->done_real_ns = cf_real_ns();
	rinfo_fill(x, &x->ri[CF_PHASE_DONE], CF_PHASE_DONE);
	x->ri[CF_PHASE_DONE].phase = CF_PHASE_UNREGISTER;
	/* the final record, while we still own the instance */
	cf_session_write(s, x->rinfo_off, &x->ri[CF_PHASE_DONE], sizeof(x->ri[CF_PHASE_DONE]));
	r = cf_session_inst_unreg(s, x->inst, rep->err_msg, sizeof(rep->err_msg));
	if (r < 0)
		return fail(x, r, "unregister %s: %s", rep->inst_name, rep->err_msg[0] ? rep->err_msg : strerror(-r));
	cf_session_forget_inst(s, x->inst);
	return 0;
}

/* Done record: written after unregister with the full breakdown (RINFO is ours to write). */
static void publish_done(struct run *x)
{
	x->rep->done_real_ns = cf_real_ns();
	rinfo_fill(x, &x->ri[CF_PHASE_DONE], CF_PHASE_DONE);
	cf_session_write(x->env->s, x->rinfo_off, &x->ri[CF_PHASE_DONE], sizeof(x->ri[CF_PHASE_DONE]));
}

/* How recover() starts: a registration of its own, after a waiting fence, or one already held. */
enum rec_mode { REC_REGISTER, REC_RESUME, REC_HELD_FENCE, REC_HELD };

/* ACTIVE(this session's system and epoch), at any incident */
static bool reg_is_ours(const struct cf_session *s, uint64_t w)
{
	return cf_reg_state(w) == CF_REG_ACTIVE && cf_reg_owner(w) == s->sys &&
	       cf_reg_epoch(w) == (s->epoch & CF_EPOCH_MASK);
}

static int recover(const struct cf_recovery_env *env, uint32_t inst, uint64_t failed_reg, uint64_t detect_real_ns,
		   uint32_t cf_fence_us, struct cf_recovery_report *rep, enum rec_mode mode, const char *resume_how)
{
	struct cf_session *s = env->s;
	const struct cf_image_map *m = &s->map;
	struct cf_log_scan sc;
	struct cf_inst_slot slot;
	struct cf_log log;
	struct cf_rec_entry *records = NULL; /* the record list, prefetched during the sync */
	struct run *x;
	bool log_attached = false, scanned = false;
	int r;

	if (mode == REC_RESUME) {
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
	rep->held = mode == REC_HELD_FENCE || mode == REC_HELD;
setup:
	/* a held registration is ours already: ACTIVE(this incarnation) */
	if (inst >= m->geo.max_instances ||
	    (rep->held ? !reg_is_ours(s, failed_reg) : cf_reg_state(failed_reg) != CF_REG_FAILED))
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
	if (mode == REC_RESUME) {
		/* the wait counts in the phase it happened in */
		x->t_phase = rep->t_phase_mono;
		snprintf(rep->fence_msg, sizeof(rep->fence_msg), "%s", resume_how);
		rep->result = 0;
		rep->err_msg[0] = 0;
		rep->wait_left_ms = 0;
		goto attach;
	}

	if (mode == REC_REGISTER) {
		phase(x, CF_PHASE_REGISTER);
		if ((r = post_slot_reads(x, &slot)) < 0 ||
		    (r = step_register(x, failed_reg, &slot, detect_real_ns, cf_fence_us)) < 0)
			goto out;
		CF_FAULT("rec.after_register");
	} else {
		if ((r = post_slot_reads(x, &slot)) < 0)
			goto out;
		if ((r = cf_session_drain(s)) < 0) {
			fail(x, r, "read instance slot: %s", strerror(-r));
			goto out;
		}
		take_slot(x, &slot, detect_real_ns, cf_fence_us);
	}
	if (mode != REC_HELD) {
		phase(x, CF_PHASE_DISK_FENCE);
		if ((r = step_disk_fence(x, &slot)) < 0)
			goto out;
	} else {
		snprintf(rep->fence_msg, sizeof(rep->fence_msg),
			 "none needed: this system's own instance, held across a switch of CF, its workload parked");
	}
attach:
	phase(x, CF_PHASE_ATTACH);
	if ((r = step_attach(x)) < 0)
		goto out;
	CF_FAULT("rec.after_attach");
	phase(x, CF_PHASE_READ_LOG);
	if ((r = step_read_log(x, &log, &sc)) < 0)
		goto out;
	log_attached = scanned = true;
	phase(x, CF_PHASE_BACKOUT);
	if ((r = step_backout(x, &sc)) < 0)
		goto out;
	phase(x, CF_PHASE_SYNC);
	records = prefetch_records(x, &sc);
	if ((r = step_sync(x, &log, &sc)) < 0)
		goto out;
	CF_FAULT("rec.after_backout");
	phase(x, CF_PHASE_RELEASE);
	if ((r = step_release(x, records)) < 0)
		goto out;
	/*
	 * After the release (the locks are free as early as before) and before the
	 * unregister: a home that claims I next writes its marker after ours. Its
	 * syncs count in the unregister phase: "release" is the locks.
	 */
	phase(x, CF_PHASE_UNREGISTER);
	if (env->backed_out)
		env->backed_out(env->arg, inst, rep->inst_name);
	CF_FAULT("rec.before_unregister");
	if ((r = step_unregister(x)) < 0)
		goto out;
	phase(x, CF_PHASE_DONE);
	publish_done(x);
	rep->result = 0;
	r = 0;
out:
	/* a waiting fence keeps its phase open: cf_recover_resume closes it */
	if (r != -EINPROGRESS && rep->reached < CF_PHASE_DONE && rep->reached != CF_PHASE_NONE)
		rep->phase_ns[rep->reached] += cf_mono_ns() - x->t_phase;
	if (scanned)
		cf_log_scan_free(&sc);
	if (log_attached)
		cf_log_detach(&log);
	/* posted rinfo buffers live in x, posted record READs in records: wait for them */
	if (!s->dead)
		cf_session_drain(s);
	free(records);
	free(x->txns);
	free(x);
	return r;
}

int cf_recover_instance(const struct cf_recovery_env *env, uint32_t inst, uint64_t failed_reg,
			uint64_t detect_real_ns, uint32_t cf_fence_us, struct cf_recovery_report *rep)
{
	return recover(env, inst, failed_reg, detect_real_ns, cf_fence_us, rep, REC_REGISTER, NULL);
}

int cf_recover_held(const struct cf_recovery_env *env, uint32_t inst, uint64_t held_reg, bool fence,
		    struct cf_recovery_report *rep)
{
	return recover(env, inst, held_reg, cf_real_ns(), 0, rep, fence ? REC_HELD_FENCE : REC_HELD, NULL);
}

int cf_recover_resume(const struct cf_recovery_env *env, uint32_t inst, uint64_t failed_reg, const char *how,
		      enum cf_fence_wait why, struct cf_recovery_report *rep)
{
	rep->wait = why;
	return recover(env, inst, failed_reg, rep->detect_real_ns, rep->cf_fence_us, rep, REC_RESUME, how);
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
