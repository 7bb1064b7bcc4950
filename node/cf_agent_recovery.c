/* SPDX-License-Identifier: MIT */
/*
 * cf_agent_recovery.c - the agent's side of peer recovery (see
 * cf_agent_recovery.h): CF events and the polled instance table go through
 * the detector (cf_recovery.h) to recoveries run by the engine
 * (cf_recovery.c), whose phases, invariants and numbered steps are written
 * there; here are the policy, the fences that wait and the log lines.
 */
#include "cf_agent_recovery.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf_agent.h"
#include "cf_data.h"
#include "cf_marker.h"
#include "cf_session.h"
#include "cf_util.h"
#include "cf_words.h"

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

/* Why a recovery's log scan ended: what the next bytes were. */
static const char *log_end_why(const struct cf_recovery_report *rep, char *buf, size_t len)
{
	if (rep->log_stop == -EBADMSG)
		return "bytes that do not parse (torn or corrupt)";
	if (rep->log_stop_lsn)
		snprintf(buf, len, "a record of an earlier lap (LSN %llu)", (unsigned long long)rep->log_stop_lsn);
	else
		snprintf(buf, len, "zero bytes");
	return buf;
}

static void on_phase_log(void *arg, const struct cf_recovery_report *rep, enum cf_phase p)
{
	struct cf_agent *a = arg;
	char why[64];

	if (p == CF_PHASE_DISK_FENCE)
		cf_agent_log(a, CF_AGENT_INFO, "recovery %s: %s (incident %u)", rep->inst_name,
			     rep->held ? "held across a switch of CF: fencing its failed owner again"
				       : "registered as counterpart",
			     rep->incident);
	else if (p == CF_PHASE_ATTACH)
		cf_agent_log(a, rep->fence_skipped ? CF_AGENT_WARN : CF_AGENT_INFO, "recovery %s: disk fence: %s",
			     rep->inst_name, rep->fence_msg);
	else if (p == CF_PHASE_BACKOUT) {
		cf_agent_log(a, CF_AGENT_INFO,
			     "recovery %s: log read: %llu records, %llu bytes (positions %llu..%llu, LSN %llu next); "
			     "it ends at %s%s%s",
			     rep->inst_name, (unsigned long long)rep->records_scanned, (unsigned long long)rep->log_bytes,
			     (unsigned long long)rep->log_head, (unsigned long long)rep->log_end,
			     (unsigned long long)rep->log_next_lsn, log_end_why(rep, why, sizeof(why)),
			     rep->log_stop_where ? ": " : "", rep->log_stop_where ? rep->log_stop_where : "");
		if (rep->log_both)
			cf_agent_log(a, CF_AGENT_ERR,
				     "recovery %s: %llu transaction(s) have both a COMMIT and an ABORT in the log (first "
				     "txid %llu): their owner backed out what it had sent a COMMIT for; the data may have "
				     "lost them",
				     rep->inst_name, (unsigned long long)rep->log_both,
				     (unsigned long long)rep->log_both_txid);
	} else if (p == CF_PHASE_RELEASE)
		cf_agent_log(a, CF_AGENT_INFO,
			     "recovery %s: backed out %llu in-flight transactions (%llu updates written back, %llu never "
			     "written)",
			     rep->inst_name, (unsigned long long)rep->txns_inflight,
			     (unsigned long long)rep->updates_applied, (unsigned long long)rep->updates_unwritten);
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
		     "recovery %s (incident %u) by %s done%s: %llu txns backed out (%llu updates written back, %llu "
		     "never written), %llu locks released, failed system %s; %.3f ms from declaration to unregister",
		     rep->inst_name, rep->incident, a->o.system, rep->held ? " (held across a switch of CF)" : "",
		     (unsigned long long)rep->txns_inflight, (unsigned long long)rep->updates_applied,
		     (unsigned long long)rep->updates_unwritten, (unsigned long long)rep->locks_released,
		     rep->failed_name[0] ? rep->failed_name : "?", total / 1e6);
	/*
	 * One machine-readable line for the demo and the benchmarks. A held
	 * registration recovered after a switch of CF (cf_recover_held) is no
	 * new incident won by a CAS: RECOVERY-HELD, so that "one RECOVERY per
	 * incident" stays checkable (the same holder may run it after each switch).
	 */
	cf_agent_log(a, CF_AGENT_INFO,
		     "%s {\"inst\":\"%s\",\"incident\":%u,\"counterpart\":\"%s\",\"failed\":\"%s\","
		     "\"fail_ns\":%llu,\"detect_ns\":%llu,\"locks_free_ns\":%llu,\"done_ns\":%llu,"
		     "\"txns\":%llu,\"updates\":%llu,\"unwritten\":%llu,\"locks\":%llu,\"log_bytes\":%llu,%s}",
		     rep->held ? "RECOVERY-HELD" : "RECOVERY", rep->inst_name, rep->incident, a->o.system, rep->failed_name,
		     (unsigned long long)rep->fail_real_ns, (unsigned long long)rep->detect_real_ns,
		     (unsigned long long)rep->locks_free_real_ns, (unsigned long long)rep->done_real_ns,
		     (unsigned long long)rep->txns_inflight, (unsigned long long)rep->updates_applied,
		     (unsigned long long)rep->updates_unwritten, (unsigned long long)rep->locks_released,
		     (unsigned long long)rep->log_bytes, line);
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
static int data_open(struct cf_agent *a);
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

	if ((r = data_open(a)) < 0)
		return r;
	env_of(a, &env);
	r = cf_recover_instance(&env, inst, reg, seen, fence_us, rep);
	return recovery_outcome(a, inst, reg, r, rep);
}

/*
 * env->decided: a line per transaction appended to --recovery-journal, all of
 * a recovery's lines in one write (this runs once the emptied log is durable,
 * before the locks are released). Best effort: it only reports.
 */
static void decided_write(void *arg, uint32_t inst, const char *inst_name, const struct cf_txn_outcome *v, size_t n)
{
	struct cf_agent *a = arg;
	enum { LINE_MAX_ = 128 }; /* "R" + index + txid + C|B + name (< CF_NAME_MAX) + 32 hex digits */
	char image[40], *buf = malloc(n * LINE_MAX_);
	size_t len = 0;
	int fd;

	if (!buf)
		return;
	cf_marker_image_str(a->image_id, image, sizeof(image));
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, LINE_MAX_, "R %u %" PRIu64 " %c %s %s\n", inst, v[i].txid,
					v[i].committed ? 'C' : 'B', inst_name, image);
	fd = open(a->o.recovery_journal, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len)
		cf_agent_log(a, CF_AGENT_WARN, "recovery journal %s: %s", a->o.recovery_journal, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(buf);
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
	env->decided = a->o.recovery_journal ? decided_write : NULL;
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
		/* the slot's READ may still be posted (cf_recovery_on_event) */
		if (inst < a->s.map.geo.max_instances && cf_session_drain(&a->s) == 0)
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
			     cf_fail_cause_str(ev->cause),
			     ev->fence_us);
		break;
	case CF_EV_INST_FAILED:
		cf_detector_seen(&st->det, ev->inst, cf_reg_incident(ev->reg), now, ev->fence_us);
		/*
		 * Posted, not awaited: a recovery's first READ (the same slot) comes
		 * after it and covers it, and an announcement waits for it (consider).
		 * Awaited here it cost every failover a round trip before the
		 * registration.
		 */
		if (ev->inst < a->s.map.geo.max_instances)
			cf_session_post_read(&a->s, cf_inst_off(&a->s.map, ev->inst), &st->table[ev->inst],
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

void cf_recovery_switched(struct cf_agent *a)
{
	struct cf_recovery_state *st = st_of(a);

	if (!st)
		return;
	for (uint32_t i = 0; i < CF_DETECT_MAX; i++) {
		if (st->pend[i].state != PEND_IDLE) {
			cf_agent_log(a, CF_AGENT_INFO, "recovery of %s: its fence wait ends with the switch of CF",
				     st->pend[i].rep.inst_name);
			pend_set(a, i, PEND_IDLE);
		}
		st->det.tried_valid[i] = false;
	}
}

/* The data directory, opened once for every recovery this system runs. */
static int data_open(struct cf_agent *a)
{
	struct cf_recovery_state *st = st_of(a);
	int r;

	if (st->data_open)
		return 0;
	r = cf_data_open(&st->data, a->o.data_dir);
	if (r < 0) {
		cf_agent_log(a, CF_AGENT_ERR, "recovery: open data directory %s: %s", a->o.data_dir, strerror(-r));
		return r;
	}
	st->data_open = true;
	return 0;
}

int cf_agent_recover_held(struct cf_agent *a, uint32_t inst, uint64_t reg, bool fence)
{
	struct cf_recovery_report rep;
	struct cf_recovery_env env;
	int r;

	if (!st_of(a) && (r = cf_recovery_init(a)) < 0)
		return r;
	if ((r = data_open(a)) < 0)
		return r;
	env_of(a, &env);
	r = cf_recover_held(&env, inst, reg, fence, &rep);
	return recovery_outcome(a, inst, reg, r, &rep);
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

/*
 * The restart rule (docs/design.md §7, "A restarted system and its own
 * instance"): under policy auto the restarted home races like any peer; under
 * policy operator it recovers its own instance only when the instance failed
 * because the CF restarted or a secondary took over (no system failed: nothing
 * for the operator to judge). After a failure of its own it waits, as every
 * peer does, for `cfctl recover` (which may name it: --on).
 */
bool cf_agent_self_recovery_allowed(struct cf_agent *a, uint32_t inst, uint64_t reg)
{
	struct cf_inst_slot slot;

	if (!st_of(a) && cf_recovery_init(a) < 0)
		return true; /* no memory for the module: cf_agent_self_recover says so */
	if (st_of(a)->det.policy != CF_POLICY_OPERATOR)
		return true;
	if (cf_session_read(&a->s, cf_inst_off(&a->s.map, inst), &slot, sizeof(slot)) < 0)
		return false;
	return slot.fail_cause == CF_FAIL_CF_RESTART && slot.fail_incident == cf_reg_incident(reg);
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
