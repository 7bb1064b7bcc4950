/* SPDX-License-Identifier: MIT */
/*
 * cf_console.c - the operator's console: POLICY_SET, RECOVER (and RECOVER
 * --retry), FENCE_CONFIRM, RESTART_INFO, DUPLEX_INFO; and METRICS, which a
 * console or a monitor may request (a monitor nothing else: anything else
 * it sends is refused and the connection closed). What a request changes
 * reaches the systems as an event (core_event); the image itself changes
 * only by the policy word, and by the orphan scan's work that RECOVER does
 * first.
 */
#include "cf_core_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cf_duplex.h"
#include "cf_persist.h"
#include "cf_slog.h"
#include "cf_util.h"

void console_on_policy_set(struct core_conn *cc, uint64_t id, const struct cf_policy_msg *p)
{
	struct cf_core *c = cc->core;
	uint64_t old;
	struct cf_event ev;

	if (p->policy != CF_POLICY_AUTO && p->policy != CF_POLICY_OPERATOR) {
		core_status(cc, id, CF_CTRL_STATUS, -EINVAL, "unknown policy %u (auto = 0, operator = 1)", p->policy);
		return;
	}
	for (;;) {
		old = load64(&hdr(c)->policy);
		if (core_word_cas(c, offsetof(struct cf_header, policy), old, p->policy) == 0)
			break;
	}
	core_status(cc, id, CF_CTRL_STATUS, 0, "policy %s", p->policy == CF_POLICY_AUTO ? "auto" : "operator");
	ev = core_event(c, CF_EV_POLICY, 0, 0, 0, 0, cf_real_ns()); /* carries the policy just set */
	core_event_all(c, &ev);
	cf_slog_info("POLICY_SET from console %s: %s", cc->peer, p->policy == CF_POLICY_AUTO ? "auto" : "operator");
}

void console_on_restart_info(struct core_conn *cc, uint64_t id)
{
	struct cf_core *c = cc->core;
	struct cf_restart_info ri;

	memset(&ri, 0, sizeof(ri));
	ri.state = c->rstate;
	ri.left = (uint32_t)__builtin_popcountll(c->rpending);
	ri.pending = c->rpending;
	ri.since_ns = c->rsince_ns;
	core_send(cc, id, CF_CTRL_RESTART_INFO_R, &ri, sizeof(ri));
}

void console_on_duplex_info(struct core_conn *cc, uint64_t id)
{
	struct cf_core *c = cc->core;
	struct cf_duplex_info di;

	memset(&di, 0, sizeof(di));
	di.image_bytes = c->map->image_size;
	if (c->dx) {
		di.role = CF_DUPLEX_PRIMARY;
		di.link = (uint32_t)cf_duplex_state(c->dx, di.secondary, sizeof(di.secondary), &di.synced_bytes);
		if (di.link == CF_DUPLEX_ALONE)
			di.secondary[0] = 0;
	}
	core_send(cc, id, CF_CTRL_DUPLEX_INFO_R, &di, sizeof(di));
}

/* The system slot named name, or -1. */
static int sys_by_name(struct cf_core *c, const char *name)
{
	for (uint32_t k = 0; k < c->map->geo.max_systems; k++) {
		char sn[CF_NAME_MAX];
		core_name_of(sys_slot(c, k)->name, sn);
		if (sn[0] && !strcmp(sn, name))
			return (int)k;
	}
	return -1;
}

static int live_sys(struct cf_core *c, uint32_t s)
{
	return s < c->map->geo.max_systems && c->sys[s].live && c->sys[s].agent &&
	       cf_sysword_state(sysword(c, s)) == CF_SYS_ACTIVE;
}

/* The instance a RECOVER names (in: its name), rr cleared; or -1 with rr the refusal. */
static int recover_inst(struct cf_core *c, const struct cf_recover *m, char in[CF_NAME_MAX], struct cf_recover_r *rr)
{
	int i;

	memset(rr, 0, sizeof(*rr));
	if (core_name_in(m->inst, in) < 0) {
		rr->status = -EINVAL;
		snprintf(rr->msg, sizeof(rr->msg), "instance name longer than %d characters", CF_NAME_MAX - 1);
		return -1;
	}
	i = inst_find(c, in, NULL);
	if (i < 0) {
		rr->status = -ENOENT;
		snprintf(rr->msg, sizeof(rr->msg), "no instance named %s", in);
	}
	return i;
}

void console_on_recover(struct core_conn *cc, uint64_t id, const struct cf_recover *m)
{
	struct cf_core *c = cc->core;
	char in[CF_NAME_MAX], on[CF_NAME_MAX], desc[96];
	struct cf_recover_r rr;
	struct cf_event ev;
	uint64_t w;
	int i, s = -1;

	core_name_of(m->on, on);
	i = recover_inst(c, m, in, &rr);
	if (i < 0)
		goto reply;
	/* a stale holder or owner, a word the CF did not grant: do the orphan scan's work now */
	orphan_check(c, (uint32_t)i, regword(c, (uint32_t)i), "RECOVER");
	w = regword(c, (uint32_t)i);
	if (cf_reg_state(w) != CF_REG_FAILED) {
		core_reg_desc(c, w, desc, sizeof(desc));
		rr.status = cf_reg_state(w) == CF_REG_ACTIVE ? -EBUSY : -EINVAL;
		snprintf(rr.msg, sizeof(rr.msg), "%.15s is %.64s: not failed, nothing to recover", in, desc);
		goto reply;
	}
	if (on[0]) {
		s = sys_by_name(c, on);
		if (s < 0 || !live_sys(c, (uint32_t)s)) {
			rr.status = -EHOSTDOWN;
			snprintf(rr.msg, sizeof(rr.msg), "%s is not an active, connected system", on);
			goto reply;
		}
	} else {
		for (uint32_t k = 0; k < c->map->geo.max_systems && s < 0; k++)
			if (live_sys(c, k))
				s = (int)k;
		if (s < 0) {
			rr.status = -EHOSTDOWN;
			snprintf(rr.msg, sizeof(rr.msg), "no live system to recover %s", in);
			goto reply;
		}
	}
	ev = core_event(c, CF_EV_RECOVER, (uint32_t)s, cf_sysword_epoch(sysword(c, (uint32_t)s)), (uint32_t)i, w,
			cf_real_ns());
	core_event_to(c, (uint32_t)s, &ev);
	rr.status = 0;
	rr.sys = (uint32_t)s;
	snprintf(rr.msg, sizeof(rr.msg), "recovery of %s (incident %u) requested on %s", in, cf_reg_incident(w),
		 core_sys_name(c, (uint32_t)s, on));
reply:
	cf_slog_info("RECOVER %s from console %s: %s", in, cc->peer, rr.msg);
	core_send(cc, id, CF_CTRL_RECOVER_R, &rr, sizeof(rr));
}

/*
 * Fencing across hosts (docs/design.md §7): the operator's ways out of a
 * recovery that waits on its disk fence, FENCE_CONFIRM and RECOVER --retry.
 *
 * Does instance i wait on a disk fence, by a live counterpart? Then its owner
 * (the counterpart) in *owner. The rinfo slot is the counterpart's word for
 * it; the registration word and fail_* must agree with it.
 */
static bool waits_on_fence(struct cf_core *c, uint32_t i, uint32_t *owner)
{
	const struct cf_rinfo_slot *ri = (const struct cf_rinfo_slot *)(c->base + cf_rinfo_off(c->map, i));
	const struct cf_inst_slot *is = inst_slot(c, i);
	uint64_t w = regword(c, i);
	uint32_t o = cf_reg_owner(w);

	if (cf_reg_state(w) != CF_REG_ACTIVE || !live_sys(c, o) || cf_reg_owner_stale(w, sysword(c, o)))
		return false;
	if (is->fail_incident != cf_reg_incident(w) || ri->incident != cf_reg_incident(w) || ri->counterpart != o + 1u)
		return false;
	if (ri->phase != CF_PHASE_DISK_FENCE && ri->phase != CF_PHASE_WD_WAIT)
		return false;
	if (ri->wait != CF_FWAIT_AGENT && ri->wait != CF_FWAIT_OPERATOR && ri->wait != CF_FWAIT_WATCHDOG)
		return false;
	*owner = o;
	return true;
}

void console_on_fence_confirm(struct core_conn *cc, uint64_t id, const struct cf_fence_confirm *m)
{
	struct cf_core *c = cc->core;
	char sn[CF_NAME_MAX], in[CF_NAME_MAX], on[CF_NAME_MAX];
	struct cf_recover_r rr;
	struct cf_event ev;
	uint32_t n = 0, o;
	int s, k = 0;

	memset(&rr, 0, sizeof(rr));
	if (core_name_in(m->sys, sn) < 0 || cf_name_check(sn) < 0) {
		rr.status = -EINVAL;
		snprintf(rr.msg, sizeof(rr.msg), "bad system name: 1..15 chars of [A-Za-z0-9_.-]");
		goto reply;
	}
	s = sys_by_name(c, sn);
	if (s < 0) {
		rr.status = -ENOENT;
		snprintf(rr.msg, sizeof(rr.msg), "no system named %s", sn);
		goto reply;
	}
	for (uint32_t i = 0; i < c->map->geo.max_instances; i++) {
		if (!waits_on_fence(c, i, &o) || inst_slot(c, i)->fail_sys != (uint32_t)s)
			continue;
		ev = core_event(c, CF_EV_FENCE_CONFIRM, (uint32_t)s, inst_slot(c, i)->fail_epoch, i, regword(c, i),
				cf_real_ns());
		core_event_to(c, o, &ev);
		if (!n++) {
			rr.sys = o;
			k = snprintf(rr.msg, sizeof(rr.msg), "fence of %s confirmed by the operator:", sn);
		}
		if (k > 0 && (size_t)k < sizeof(rr.msg))
			k += snprintf(rr.msg + k, sizeof(rr.msg) - (size_t)k, " %s (counterpart %s)", core_inst_name(c, i, in),
				      core_sys_name(c, o, on));
	}
	if (!n) {
		rr.status = -ESRCH;
		snprintf(rr.msg, sizeof(rr.msg), "no recovery waits on a fence of %s", sn);
	}
reply:
	cf_slog_info("FENCE_CONFIRM %s from console %s: %s", sn, cc->peer, rr.msg);
	core_send(cc, id, CF_CTRL_RECOVER_R, &rr, sizeof(rr));
}

/*
 * cfctl recover INST --retry: a recovery that waits on its fence is told to
 * try its fence agent again now; a failed instance (nobody registered, or
 * the counterpart gave up and died) is offered again like `recover`, even to
 * a system that already tried this incident.
 */
void console_on_recover_retry(struct core_conn *cc, uint64_t id, const struct cf_recover *m)
{
	struct cf_core *c = cc->core;
	char in[CF_NAME_MAX], on[CF_NAME_MAX], desc[96];
	struct cf_recover_r rr;
	struct cf_event ev;
	uint32_t o;
	int i;

	i = recover_inst(c, m, in, &rr);
	if (i < 0)
		goto reply;
	if (waits_on_fence(c, (uint32_t)i, &o)) {
		core_name_of(m->on, on);
		if (on[0] && sys_by_name(c, on) != (int)o) {
			rr.status = -EBUSY;
			snprintf(rr.msg, sizeof(rr.msg), "%s waits on its fence at its counterpart %s, not %s", in,
				 core_sys_name(c, o, desc), on);
			goto reply;
		}
		ev = core_event(c, CF_EV_FENCE_RETRY, o, 0, (uint32_t)i, regword(c, (uint32_t)i), cf_real_ns());
		core_event_to(c, o, &ev);
		rr.sys = o;
		snprintf(rr.msg, sizeof(rr.msg), "%s's counterpart %s asked to retry its fence now", in,
			 core_sys_name(c, o, on));
		goto reply;
	}
	console_on_recover(cc, id, m);
	return;
reply:
	cf_slog_info("RECOVER --retry %s from console %s: %s", in, cc->peer, rr.msg);
	core_send(cc, id, CF_CTRL_RECOVER_R, &rr, sizeof(rr));
}

static enum cf_metrics_conn conn_role_of(enum conn_state s)
{
	switch (s) {
	case CS_NEW:
	case CS_CHALLENGED:
	case CS_AUTHED: return CF_MC_HANDSHAKE;
	case CS_SYSTEM: return CF_MC_SYSTEM;
	case CS_CONSOLE: return CF_MC_CONSOLE;
	case CS_MONITOR: return CF_MC_MONITOR;
	case CS_LEFT:
	case CS_FENCED:
	case CS_CLOSING: return CF_MC_CLOSING;
	}
	return CF_MC_CLOSING;
}

static void metrics_fill(void *arg, struct cf_metrics_view *v)
{
	struct cf_core *c = arg;

	v->map = c->map;
	v->base = c->base;
	v->hb_interval_ns = c->cfg.hb_interval_ns;
	v->hb_timeout_ns = c->cfg.hb_timeout_ns;
	v->durable = c->im->persist_fn != NULL || c->dx; /* duplexed: the secondary holds a copy */
	for (struct core_conn *cc = c->conns; cc; cc = cc->next)
		v->conns[conn_role_of(cc->state)]++;
	v->takeovers = c->takeovers;
	v->resumes = c->resumes;
	v->restored = c->restored;
	v->suspects = c->suspects;
	v->suspects_declared = c->suspects_declared;
	v->persist_requests = c->pw.requests;
	v->persist_refused = c->pw.refused;
	v->persist_groups = c->pw.groups;
	v->persist_max_group = c->pw.max_group;
	const struct cf_lockq_stats *lq = lockq_stats(c, &v->lock_waiting);
	if (lq) {
		v->lock_waits = lq->waits;
		v->lock_granted_now = lq->granted_now;
		v->lock_granted_later = lq->granted_later;
		v->lock_cancels = lq->cancels;
		v->lock_dropped = lq->dropped;
		v->lock_kicks = lq->kicks;
		v->lock_wait_ns_sum = lq->wait_ns_sum;
	}
	if (c->gc) {
		v->have_gc = 1;
		cf_persist_get_stats(c->gc, &v->gc);
	}
	v->restart_state = c->rstate;
	v->restart_left = (uint32_t)__builtin_popcountll(c->rpending);
	v->image_bytes = c->map->image_size;
	if (c->dx) {
		char peer[8];
		v->duplexed = 1;
		v->duplex_link = (uint32_t)cf_duplex_state(c->dx, peer, sizeof(peer), &v->duplex_synced);
	}
}

/* A console or a monitor asks for (a chunk of) the metrics text. */
void console_on_metrics(struct core_conn *cc, uint64_t id, const struct cf_metrics_req *q)
{
	struct cf_metrics_r r;

	cf_metrics_answer(&cc->core->metrics, q, metrics_fill, cc->core, &r);
	if (r.status < 0 && r.status != -ESTALE)
		cf_slog_warn("conn %s: METRICS refused: %s", cc->peer, strerror(-r.status));
	core_send(cc, id, CF_CTRL_METRICS_R, &r, sizeof(r));
}

/*
 * Anything but METRICS on a monitor connection: refused with a STATUS that
 * says why, then closed. The CF decides by the connection's state, set from
 * the key that authenticated it, never by anything the client says.
 */
void console_monitor_refused(struct core_conn *cc, uint64_t id, uint16_t type)
{
	cc->core->metrics.monitor_refused++;
	cf_slog_warn("conn %s: monitor sent %s: refused, closing (a monitor may only request METRICS)", cc->peer,
		 cf_ctrl_type_str(type));
	core_status(cc, id, CF_CTRL_STATUS, -EPERM,
		    "%s refused: a monitor connection may only request metrics; closing", cf_ctrl_type_str(type));
	cc->cause = CF_FAIL_NONE;
	core_set_state(cc, CS_CLOSING);
	cc->core->ops->close(cc->sc);
}
