/* SPDX-License-Identifier: MIT */
/*
 * cf_inst.c - instances: INST_OPEN, INST_ATTACH, INST_UNREG, and the CF's own
 * record of registrations (struct core_inst, docs/design.md §7,
 * "Registrations: what the CF checks").
 *
 * The word is a claim any member can CAS (every system has atomic rights on
 * the instance table); what the CF granted is its own record. INST_ATTACH and
 * INST_UNREG go by that record (reg_request):
 *   (1) while a holder is recorded, only the holder is served, and the word
 *       is put back to ACTIVE(holder) if a member changed it; anyone else's
 *       request is a takeover attempt: refused, logged naming both;
 *   (2) with no holder, the word must be the asker's registration and one the
 *       base allows (inst_reg_legal): the CAS at the base's incident;
 *   (3) INST_ATTACH grants the log and the record list and records the
 *       holder; during restart recovery only for a pending instance;
 *   (4) INST_UNREG of a failed instance only after its log was attached
 *       (fail_open); the word becomes INACTIVE_CLEAN(k), every grant on the
 *       instance is revoked, INST_CLEAN goes to every live system.
 * A word neither the CF nor a legal registration wrote is put back
 * (inst_restore_word), never a reason to fail anyone: a one-sided CAS
 * carries no sender.
 */
#include "cf_core_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cf_slog.h"
#include "cf_util.h"

/* The CF set instance i's word to w (CLEAN or FAILED): a new base, nobody holds it. */
void inst_set(struct cf_core *c, uint32_t i, uint64_t w)
{
	c->inst[i].base = w;
	c->inst[i].held = 0;
}

bool inst_held_by(const struct cf_core *c, uint32_t i, uint32_t s, uint32_t e)
{
	const struct core_inst *ci = &c->inst[i];

	return ci->held && ci->hsys == s && ci->hepoch == e;
}

/* The word instance i holds if nobody broke the protocol (an unattached registration aside). */
static uint64_t inst_expected(const struct cf_core *c, uint32_t i)
{
	const struct core_inst *ci = &c->inst[i];

	return ci->held ? cf_reg_active(ci->hsys, ci->hepoch, ci->hinc) : ci->base;
}

/*
 * Is w, found while nobody holds instance i, a registration by system s epoch
 * e that the CF's base allows? 0, or -EACCES with *why.
 */
int inst_reg_legal(const struct cf_core *c, uint32_t i, uint64_t w, uint32_t s, uint32_t e, const char **why)
{
	const struct core_inst *ci = &c->inst[i];

	if (!reg_owned_by(w, s, e)) {
		*why = "not registered to it";
		return -EACCES;
	}
	/*
	 * Any live system may register from either: a counterpart from FAILED(k);
	 * from CLEAN(k) the home system, or another that takes the instance over
	 * while nobody holds it (an instance may move: test_wait_active).
	 */
	if ((cf_reg_state(ci->base) == CF_REG_FAILED || cf_reg_state(ci->base) == CF_REG_CLEAN) &&
	    cf_reg_incident(w) == cf_reg_incident(ci->base))
		return 0;
	*why = cf_reg_state(ci->base) == CF_REG_FREE ? "the instance was never opened"
						       : "its incident is not the one the CF set";
	return -EACCES;
}

/*
 * Put instance i's word (found: w) back to what the CF's record says. A word
 * that neither the CF nor a legal registration wrote was written by a member
 * breaking the protocol. A one-sided CAS carries no sender, and a word naming
 * system A may have been written by B to get A failed, so the CF fails nobody
 * on it: it logs, counts and undoes it.
 */
void inst_restore_word(struct cf_core *c, uint32_t i, uint64_t w, const char *ctx)
{
	uint64_t want = inst_expected(c, i);
	char in[CF_NAME_MAX], was[96], now[96];

	if (w == want)
		return;
	core_inst_name(c, i, in);
	core_reg_desc(c, w, was, sizeof(was));
	core_reg_desc(c, want, now, sizeof(now));
	if (core_word_cas(c, cf_inst_off(c->map, i), w, want) == 0) {
		c->restored++;
		cf_slog_warn("registration: %s: %s was %s, which the CF did not grant (protocol violation by a member): "
			 "restored to %s",
			 ctx, in, was, now);
	} else {
		cf_slog_warn("registration: %s: %s was %s, which the CF did not grant: it changed again while being "
			 "restored to %s",
			 ctx, in, was, now);
	}
}

/*
 * op (INST_ATTACH / INST_UNREG) of instance i by system s epoch e, while the
 * CF's record says another incarnation holds it: refused; logged naming both.
 */
static void takeover_refused(struct cf_core *c, struct core_conn *cc, uint64_t id, const char *op, uint32_t i,
			     uint32_t s, uint32_t e, uint64_t w)
{
	const struct core_inst *ci = &c->inst[i];
	char sn[CF_NAME_MAX], hn[CF_NAME_MAX], in[CF_NAME_MAX], desc[96];

	c->takeovers++;
	core_sys_name(c, s, sn);
	core_sys_name(c, ci->hsys, hn);
	core_inst_name(c, i, in);
	core_reg_desc(c, w, desc, sizeof(desc));
	cf_slog_warn("%s %s by %s (epoch %u) refused: takeover attempt: the CF granted %s to %s (epoch %u, incident "
		 "%u); its word says %s",
		 op, in, sn, e, in, hn, ci->hepoch, ci->hinc, desc);
	core_status(cc, id, CF_CTRL_STATUS, -EACCES, "%s is registered to %s (epoch %u) by the CF's record, not to %s",
		    in, hn, ci->hepoch, sn);
	inst_restore_word(c, i, w, "takeover attempt");
}

/*
 * Registration word w of instance i is a counterpart's (or a self-recovering
 * home's) that has not attached yet: the failed owner of the record may still
 * write the data files.
 */
static bool open_failure(struct cf_core *c, uint32_t i, uint64_t w)
{
	const struct cf_inst_slot *is = inst_slot(c, i);

	return is->fail_open && is->fail_incident == cf_reg_incident(w);
}

/* Is g a grant of instance i's log or record list? */
static bool grant_on_inst(const struct cgrant *g, uint32_t i)
{
	return (g->region == CF_RGN_LOG || g->region == CF_RGN_RECORDS) && g->inst == i;
}

/* Revoke every grant on instance i held by any connection. */
static void revoke_inst(struct cf_core *c, uint32_t i)
{
	for (struct core_conn *cc = c->conns; cc; cc = cc->next) {
		for (uint32_t k = 0; k < cc->ngrants;) {
			struct cgrant *g = &cc->grants[k];
			if (grant_on_inst(g, i)) {
				c->ops->revoke(cc->sc, g->rkey);
				*g = cc->grants[--cc->ngrants];
			} else {
				k++;
			}
		}
	}
}

/*
 * May instance slot i be given to another name? Only a CLEAN instance (its log
 * holds nothing in flight, nobody holds it: the CF's record says so) whose home
 * system is not a member now (it left: a home that comes back opens its name
 * again and gets another slot; a live one may still act on its old index).
 */
static bool inst_reclaimable(struct cf_core *c, uint32_t i)
{
	uint32_t home = inst_slot(c, i)->home_sys;

	if (cf_reg_state(regword(c, i)) != CF_REG_CLEAN || c->inst[i].held || c->inst[i].base != regword(c, i))
		return false;
	return home >= c->map->geo.max_systems || cf_sysword_state(sysword(c, home)) != CF_SYS_ACTIVE;
}

int inst_find(struct cf_core *c, const char *name, int *empty)
{
	char n[CF_NAME_MAX];

	if (empty)
		*empty = -1;
	for (uint32_t i = 0; i < c->map->geo.max_instances; i++) {
		core_name_of(inst_slot(c, i)->name, n);
		if (n[0] && !strcmp(n, name))
			return (int)i;
		if (empty && *empty < 0 && !n[0] && regword(c, i) == 0)
			*empty = (int)i;
	}
	return -1;
}

void inst_on_open(struct core_conn *cc, uint64_t id, const struct cf_inst_name *m)
{
	struct cf_core *c = cc->core;
	struct cf_inst_info info;
	struct cf_inst_slot *slot;
	char name[CF_NAME_MAX], sn[CF_NAME_MAX];
	int i, empty;

	if (core_name_in(m->name, name) < 0 || cf_name_check(name) < 0) {
		core_status(cc, id, CF_CTRL_STATUS, -EINVAL, "bad instance name: 1..15 chars of [A-Za-z0-9_.-]");
		return;
	}
	i = inst_find(c, name, &empty);
	if (i < 0 && empty < 0) {
		for (uint32_t k = 0; k < c->map->geo.max_instances; k++) {
			if (!inst_reclaimable(c, k))
				continue;
			char old[CF_NAME_MAX];
			core_name_of(inst_slot(c, k)->name, old);
			cf_slog_info("INST_OPEN %s: instance table full: slot %u reclaimed from %s (clean, its home gone)",
				     name, k, old);
			slot = inst_slot(c, k);
			/* the word stays INACTIVE_CLEAN(k): incidents only grow; the old recovery record goes */
			memset(slot->name, 0, CF_NAME_MAX);
			memcpy(slot->name, name, strlen(name));
			slot->home_sys = (uint32_t)cc->sys;
			slot->fail_open = 0;
			core_persist(c, cf_inst_off(c->map, k), sizeof(*slot));
			memset(c->base + cf_rinfo_off(c->map, k), 0, sizeof(struct cf_rinfo_slot));
			core_persist(c, cf_rinfo_off(c->map, k), sizeof(struct cf_rinfo_slot));
			i = (int)k;
			break;
		}
	}
	if (i < 0) {
		if (empty < 0) {
			cf_slog_warn("INST_OPEN %s by %s refused: instance table full", name, core_sys_name(c, (uint32_t)cc->sys, sn));
			core_status(cc, id, CF_CTRL_STATUS, -ENOSPC, "instance table full (max-instances %u)",
				    c->map->geo.max_instances);
			return;
		}
		i = empty;
		slot = inst_slot(c, (uint32_t)i);
		/* description first (plain fields), then FREE -> INACTIVE_CLEAN(0) through the atomic path */
		memset(slot->name, 0, CF_NAME_MAX);
		memcpy(slot->name, name, strlen(name));
		slot->home_sys = (uint32_t)cc->sys;
		slot->index = (uint32_t)i;
		slot->fail_open = 0;
		core_persist(c, cf_inst_off(c->map, (uint32_t)i), sizeof(*slot));
		if (core_word_cas(c, cf_inst_off(c->map, (uint32_t)i), 0, cf_reg_clean(0)) < 0) {
			core_status(cc, id, CF_CTRL_STATUS, -EAGAIN, "instance slot busy, retry");
			return;
		}
		inst_set(c, (uint32_t)i, cf_reg_clean(0));
		cf_slog_info("INST_OPEN: created %s (index %d, home %s)", name, i, core_sys_name(c, (uint32_t)cc->sys, sn));
	}
	slot = inst_slot(c, (uint32_t)i);
	if (slot->home_sys >= c->map->geo.max_systems) {
		/* its home's slot was reclaimed: the system that opens it by name is its home now */
		slot->home_sys = (uint32_t)cc->sys;
		core_persist(c, cf_inst_off(c->map, (uint32_t)i), sizeof(*slot));
	}
	memset(&info, 0, sizeof(info));
	info.index = (uint32_t)i;
	info.home_sys = inst_slot(c, (uint32_t)i)->home_sys;
	info.reg = regword(c, (uint32_t)i);
	core_send(cc, id, CF_CTRL_INST_INFO, &info, sizeof(info));
}

/* An INST_ATTACH or INST_UNREG the CF allows: who asks, for which instance, and the word to act on. */
struct reg_req {
	uint32_t s, e, i; /* the asking system and its epoch; the instance */
	uint64_t w;
	char sn[CF_NAME_MAX], in[CF_NAME_MAX];
};

/*
 * May the system of cc do op (INST_ATTACH, INST_UNREG) on instance i's
 * registration? The CF's record decides (struct core_inst); the word only
 * names a candidate. Fills *q and returns 0, or answers with a refusal and
 * returns -1.
 */
static int reg_request(struct core_conn *cc, uint64_t id, const char *op, uint32_t i, struct reg_req *q)
{
	struct cf_core *c = cc->core;
	uint32_t s = (uint32_t)cc->sys, e = cf_sysword_epoch(sysword(c, s));
	char *sn = q->sn, *in = q->in, desc[96], ctx[64];
	const struct core_inst *ci;
	const char *why;
	uint64_t w;

	if (i >= c->map->geo.max_instances) {
		core_status(cc, id, CF_CTRL_STATUS, -EINVAL, "no instance %u", i);
		return -1;
	}
	ci = &c->inst[i];
	core_sys_name(c, s, sn);
	core_inst_name(c, i, in);
	w = regword(c, i);
	if (ci->held && !inst_held_by(c, i, s, e)) {
		takeover_refused(c, cc, id, op, i, s, e, w);
		return -1;
	}
	if (ci->held) {
		/* its holder (again): the word goes back to what the CF granted if a member changed it */
		snprintf(ctx, sizeof(ctx), "%s by its holder", op);
		inst_restore_word(c, i, w, ctx);
		w = regword(c, i);
		if (w != inst_expected(c, i)) {
			core_status(cc, id, CF_CTRL_STATUS, -EAGAIN, "%s changed during %s, retry", in, op);
			return -1;
		}
	} else if (!reg_owned_by(w, s, e)) {
		core_reg_desc(c, w, desc, sizeof(desc));
		cf_slog_warn("%s %s by %s (epoch %u) refused: %s", op, in, sn, e, desc);
		core_status(cc, id, CF_CTRL_STATUS, -EACCES, "%s is %.72s: not registered to %s", in, desc, sn);
		return -1;
	} else if (inst_reg_legal(c, i, w, s, e, &why) < 0) {
		core_reg_desc(c, w, desc, sizeof(desc));
		cf_slog_warn("%s %s by %s (epoch %u) refused: %s: %s", op, in, sn, e, desc, why);
		core_status(cc, id, CF_CTRL_STATUS, -EACCES, "%s: %s", in, why);
		snprintf(ctx, sizeof(ctx), "%s of an illegal registration", op);
		inst_restore_word(c, i, w, ctx);
		return -1;
	}
	q->s = s;
	q->e = e;
	q->i = i;
	q->w = w;
	return 0;
}

void inst_on_attach(struct core_conn *cc, uint64_t id, const struct cf_inst_ref *ref)
{
	struct cf_core *c = cc->core;
	struct cf_inst_grants ig;
	struct cf_grants *gsp = &ig.grants;
	struct reg_req q;
	uint32_t i;
	int r;

	if (reg_request(cc, id, "INST_ATTACH", ref->index, &q) < 0)
		return;
	i = q.i;
	if (restart_defers_attach(c, cc, id, i, q.in, q.sn))
		return;
	/*
	 * The counterpart of fail_incident attaches: it says its disk fence of
	 * the failed owner holds. From here it may write before-images, so a
	 * death of it is its own failure to fence, not the old owner's. Durable
	 * before the grants go out (cf_layout.h, fail_open).
	 */
	if (open_failure(c, i, q.w))
		inst_slot(c, i)->fail_open = 0;
	/*
	 * Durable (and, duplexed, in the secondary's copy) before the grants go
	 * out, whatever the transport: over verbs the registration CAS was the
	 * NIC's and nobody persisted it, and a restart or a takeover that found
	 * INACTIVE_CLEAN here would never recover the log the grants let fill.
	 */
	core_persist(c, cf_inst_off(c->map, i), sizeof(struct cf_inst_slot));
	memset(&ig, 0, sizeof(ig));
	/* attached again (e.g. after a retry): old grants on this instance go, fresh ones come */
	for (uint32_t k = 0; k < cc->ngrants; k++)
		if (grant_on_inst(&cc->grants[k], i)) {
			revoke_inst(c, i);
			break;
		}
	r = core_grant(cc, CF_RGN_RECORDS, i, cf_rec_off(c->map, i), c->map->records_size,
		       CF_R_READ | CF_R_WRITE | CF_R_ATOMIC, &gsp->g[0]);
	if (r == 0)
		r = core_grant(cc, CF_RGN_LOG, i, cf_log_off(c->map, i), c->map->geo.log_size,
			       CF_R_READ | CF_R_WRITE, &gsp->g[1]);
	if (r < 0) {
		core_status(cc, id, CF_CTRL_STATUS, r, "cannot grant: %s", strerror(-r));
		return;
	}
	gsp->count = 2;
	c->inst[i] = (struct core_inst){.base = c->inst[i].base, .held = 1, .hsys = q.s, .hepoch = q.e,
					.hinc = cf_reg_incident(q.w)};
	if (ref->flags & CF_ATTACH_LOG_HDR) {
		/*
		 * The header as it is now: whoever held the instance before was
		 * fenced (failure processing, or its INST_UNREG) before the word
		 * let this system register, so no write of theirs lands after this.
		 */
		memcpy(&ig.log, c->base + cf_log_off(c->map, i), sizeof(ig.log));
		core_send(cc, id, CF_CTRL_INST_GRANTS, &ig, sizeof(ig));
	} else {
		core_send(cc, id, CF_CTRL_GRANTS, gsp, sizeof(*gsp));
	}
	cf_slog_info("INST_ATTACH: %s may use the log and record list of %s (incident %u)", q.sn, q.in,
		 cf_reg_incident(q.w));
}

void inst_on_unreg(struct core_conn *cc, uint64_t id, const struct cf_inst_ref *ref)
{
	struct cf_core *c = cc->core;
	const struct core_inst *ci;
	struct cf_event ev;
	struct reg_req q;
	uint64_t nw;
	uint32_t i;

	if (reg_request(cc, id, "INST_UNREG", ref->index, &q) < 0)
		return;
	i = q.i;
	ci = &c->inst[i];
	/*
	 * A failed instance is freed only by the system that attached its log
	 * (and so backed it out). With the record open that is the fail_open
	 * rule (cf_layout.h); the CF's own record says it too, so a member that
	 * clears fail_open (inside everyone's atomic grant) does not bypass it.
	 */
	if (open_failure(c, i, q.w) || (!ci->held && cf_reg_state(ci->base) == CF_REG_FAILED)) {
		/* an honest counterpart attaches (after its fence) before it backs out and unregisters */
		cf_slog_warn("INST_UNREG %s by %s refused: the failed incarnation's log was never attached", q.in, q.sn);
		core_status(cc, id, CF_CTRL_STATUS, -EBUSY,
			    "%s not recovered: the log of incident %u was never attached (disk fence first)", q.in,
			    cf_reg_incident(q.w));
		return;
	}
	nw = cf_reg_clean(cf_reg_incident(q.w));
	if (core_word_cas(c, cf_inst_off(c->map, i), q.w, nw) < 0) {
		core_status(cc, id, CF_CTRL_STATUS, -EAGAIN, "%s changed during unregister, retry", q.in);
		return;
	}
	inst_set(c, i, nw);
	/* unregister revokes access to the log and record list, whoever holds it */
	revoke_inst(c, i);
	core_status(cc, id, CF_CTRL_STATUS, 0, "%s unregistered: INACTIVE_CLEAN(%u)", q.in, cf_reg_incident(nw));
	ev = core_event(c, CF_EV_INST_CLEAN, q.s, q.e, i, nw, cf_real_ns());
	core_event_all(c, &ev);
	cf_slog_info("INST_UNREG: %s by %s: INACTIVE_CLEAN(%u), grants revoked", q.in, q.sn, cf_reg_incident(nw));
	restart_recovered(c, i, q.in);
}
