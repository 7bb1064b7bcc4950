/* SPDX-License-Identifier: MIT */
/*
 * cf_failure.c - failure processing at cfserver (docs/design.md §5).
 *
 * Failure processing (docs/design.md §5; M1, M2 of §0), in
 * this order, and nothing else changes an instance word on behalf of a failed
 * system:
 *   (1) fence every connection of the system: a barrier (ops->fence), so that
 *       nothing it still has in flight can change the CF; its grants go too;
 *   (2) mark its system word FAILED (same epoch: the next JOIN is epoch+1);
 *   (3) CAS to INACTIVE_FAILED(k+1) every instance the incarnation holds by
 *       the CF's record (struct core_inst: it was granted the log at incident
 *       k), whatever its word says now, and every word ACTIVE(sys, epoch, k)
 *       that nobody holds (registered, not attached); never one that another
 *       incarnation holds (a home instance a counterpart owns): a word naming
 *       sys there was written by a member, and is put back;
 *   (4) push SYS_FAILED and one INST_FAILED per instance to every live system.
 * Triggers: a system connection closing without GOODBYE, heartbeat silence
 * for T (the sweep), re-admission of a name whose slot is still ACTIVE, a
 * GOODBYE while it holds an instance. The orphan scan turns any instance whose
 * holder (or, unheld, whose ACTIVE word's owner) is not ACTIVE with the same
 * epoch into INACTIVE_FAILED(k+1), and puts back words the record does not
 * explain. A reloaded image (take_over_image) runs the same processing for
 * every system the previous run left ACTIVE, before anyone can connect.
 *
 * Step (3), the orphan scan and the takeover change an instance word to
 * INACTIVE_FAILED through one function, mark_instance_failed(): the failed
 * incarnation is recorded in the slot's fail_* (for the next counterpart's
 * disk fence) and persisted before the word changes.
 */
#include "cf_core_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cf_fault.h"
#include "cf_slog.h"
#include "cf_util.h"

/*
 * Record in instance i's slot which incarnation (system s, epoch e) owned it
 * when it failed, for the next counterpart's disk fence. Plain stores: none of
 * these fields is a CAS target, and they are written BEFORE the CAS that
 * publishes INACTIVE_FAILED(incident), so a reader that sees that incident
 * finds them. The pid is known only while s's slot still describes epoch e
 * (a rejoined system's slot describes its new incarnation): else 0, unknown.
 */
static void record_failure(struct cf_core *c, uint32_t i, uint32_t s, uint32_t e, uint32_t incident, uint64_t t_ns,
			   uint32_t cause)
{
	struct cf_inst_slot *is = inst_slot(c, i);
	const struct cf_sys_slot *ss = s < c->map->geo.max_systems ? sys_slot(c, s) : NULL;
	bool same = ss && cf_sysword_epoch(ss->state) == e;
	char in[CF_NAME_MAX], fn[CF_NAME_MAX], sn[CF_NAME_MAX];

	/*
	 * The owner at incident-1 registered but never attached: a counterpart
	 * that died before its disk fence held. It wrote nothing; the owner
	 * named in the record may still write. Carry the record forward
	 * (fail_incident == incident: a retry of this very call).
	 */
	if (is->fail_open && (is->fail_incident + 1 == incident || is->fail_incident == incident)) {
		if (is->fail_incident != incident)
			cf_slog_warn("failure: %s: %s died before its disk fence of %s (epoch %u) held: the next "
				 "counterpart fences %s",
				 core_inst_name(c, i, in), ss ? core_sys_name(c, s, sn) : "?",
				 is->fail_sys < c->map->geo.max_systems ? core_sys_name(c, is->fail_sys, fn) : "?",
				 is->fail_epoch,
				 is->fail_sys < c->map->geo.max_systems ? core_sys_name(c, is->fail_sys, fn) : "?");
		is->fail_incident = incident;
		core_persist(c, cf_inst_off(c->map, i), sizeof(*is));
		return;
	}
	is->fail_open = 1;
	is->fail_sys = ss ? s : CF_NO_SYS;
	is->fail_epoch = e;
	is->fail_incident = incident;
	is->fail_pid = same ? ss->pid : 0;
	is->fail_starttime = same ? ss->starttime : 0;
	is->fail_ns = t_ns;
	is->fail_cause = (uint16_t)cause;
	is->fail_wd_ms = same ? ss->wd_timeout_ms : 0;
	memset(is->fail_host, 0, sizeof(is->fail_host));
	if (ss)
		memcpy(is->fail_host, ss->host, sizeof(is->fail_host) - 1);
	core_persist(c, cf_inst_off(c->map, i), sizeof(*is));
}

/*
 * The one place an instance word becomes INACTIVE_FAILED (failure processing
 * step 3, the orphan scan, the takeover of a reloaded image): fail instance i
 * on behalf of incarnation (s, e), which held it at incident k. Record it
 * (fail_*, naming s), then CAS the word, whatever it is now (w), to
 * INACTIVE_FAILED(k+1), which becomes the CF's base; during restart recovery
 * the instance joins the barrier. Returns the new word, or 0 if w changed
 * meanwhile. Logs and events are the caller's: they say why.
 */
uint64_t mark_instance_failed(struct cf_core *c, uint32_t i, uint32_t s, uint32_t e, uint64_t w, uint32_t k,
			      uint64_t t_ns, uint32_t cause)
{
	uint64_t nw = cf_reg_failed(k + 1);

	record_failure(c, i, s, e, cf_reg_incident(nw), t_ns, cause);
	if (core_word_cas(c, cf_inst_off(c->map, i), w, nw) < 0)
		return 0;
	inst_set(c, i, nw);
	restart_barrier_add(c, i);
	return nw;
}

/* SYS_FAILED (i = 0, w = 0) or INST_FAILED to every live system: declared at t_ns, of cause, fenced in fence_us. */
static void failure_event(struct cf_core *c, uint32_t type, uint32_t s, uint32_t e, uint32_t i, uint64_t w,
			  uint64_t t_ns, uint32_t cause, uint32_t fence_us)
{
	struct cf_event ev = core_event(c, type, s, e, i, w, t_ns);

	ev.cause = cause;
	ev.fence_us = fence_us;
	core_event_all(c, &ev);
}

/* Failure processing of system s's current incarnation (docs/design.md §5). */
void fail_system(struct cf_core *c, uint32_t s, uint32_t cause)
{
	uint64_t t0 = cf_mono_ns(), t_ns = cf_real_ns(), w = sysword(c, s), iw;
	uint32_t e = cf_sysword_epoch(w), nfenced, fence_us, failed[CF_MAX_INSTANCES_LIMIT], nfailed = 0;
	uint64_t neww[CF_MAX_INSTANCES_LIMIT];
	struct cf_sys_slot *slot = sys_slot(c, s);
	char sn[CF_NAME_MAX], in[CF_NAME_MAX];
	int r;

	if (cf_sysword_state(w) != CF_SYS_ACTIVE)
		return;
	core_sys_name(c, s, sn);
	cf_slog_info("failure: %s (system %u, epoch %u): %s; processing starts", sn, s, e, cf_fail_cause_str(cause));

	/* (1) fence: a barrier on every connection of the incarnation, grants dropped with it */
	nfenced = core_end_conns(c, s, CS_FENCED, NULL);
	fence_us = (uint32_t)((cf_mono_ns() - t0) / 1000u);
	c->metrics.fences += nfenced;
	c->metrics.failures[cause < CF_METRICS_CAUSES ? cause : CF_FAIL_NONE]++;
	cf_slog_info("failure: %s step 1: fenced %u connection(s) in %u us", sn, nfenced, fence_us);
	CF_FAULT("srv.between_fence_and_mark");

	/* (2) mark FAILED, same epoch (fields first, the word last) */
	slot->fail_ns = t_ns;
	slot->fail_cause = cause;
	core_persist(c, cf_sys_off(c->map, s), sizeof(*slot));
	r = core_word_cas(c, cf_sys_off(c->map, s), w, cf_sysword(CF_SYS_FAILED, e));
	if (r < 0)
		cf_slog_err("failure: %s step 2: system word changed under us (%d)", sn, r);
	else
		cf_slog_info("failure: %s step 2: system word FAILED (epoch %u)", sn, e);

	/*
	 * (3) the instances this incarnation holds by the CF's record, whatever
	 * their words say now, and the words that name it and that nobody else
	 * holds (registered, not attached yet). A word naming it while the CF
	 * granted the instance to another incarnation is not its: put back.
	 */
	for (uint32_t i = 0; i < c->map->geo.max_instances; i++) {
		bool by_holder = inst_held_by(c, i, s, e);
		for (int tries = 0; tries < 8; tries++) {
			iw = regword(c, i);
			bool by_word = reg_owned_by(iw, s, e);
			uint32_t k = by_holder ? c->inst[i].hinc : cf_reg_incident(iw);
			char desc[96];
			if (!by_holder && !by_word)
				break;
			if (!by_holder && c->inst[i].held) {
				inst_restore_word(c, i, iw, "failure processing");
				break;
			}
			uint64_t nw = mark_instance_failed(c, i, s, e, iw, k, t_ns, cause);
			if (nw) {
				failed[nfailed] = i;
				neww[nfailed++] = nw;
				core_reg_desc(c, iw, desc, sizeof(desc));
				if (by_word)
					cf_slog_info("failure: %s step 3: %s ACTIVE(%s, epoch %u, incident %u) -> "
						 "INACTIVE_FAILED(%u)",
						 sn, core_inst_name(c, i, in), sn, e, k, cf_reg_incident(nw));
				else
					cf_slog_warn("failure: %s step 3: %s, granted to %s (epoch %u, incident %u), was %s "
						 "(changed by a member): INACTIVE_FAILED(%u) all the same",
						 sn, core_inst_name(c, i, in), sn, e, k, desc, cf_reg_incident(nw));
				break;
			}
		}
	}
	if (!nfailed)
		cf_slog_info("failure: %s step 3: it owned no ACTIVE instance", sn);

	/* (4) events to every live system */
	failure_event(c, CF_EV_SYS_FAILED, s, e, 0, 0, t_ns, cause, fence_us);
	for (uint32_t k = 0; k < nfailed; k++)
		failure_event(c, CF_EV_INST_FAILED, s, e, failed[k], neww[k], t_ns, cause, fence_us);
	cf_slog_info("failure: %s step 4: events pushed (SYS_FAILED + %u INST_FAILED); done in %llu us", sn, nfailed,
		 (unsigned long long)((cf_mono_ns() - t0) / 1000u));
}

/*
 * The orphan scan's work on instance i (found: w): a holder, or else an
 * ACTIVE word's owner, that is not a live incarnation any more fails the
 * instance (INACTIVE_FAILED(k+1), the failure recorded naming it); a word the
 * CF's record does not explain is put back. Returns the new word if it failed
 * the instance, else 0.
 */
uint64_t orphan_check(struct cf_core *c, uint32_t i, uint64_t w, const char *ctx)
{
	const struct core_inst *ci = &c->inst[i];
	char in[CF_NAME_MAX], desc[96];
	uint32_t o = cf_reg_owner(w), oe = cf_reg_epoch(w), k = cf_reg_incident(w);
	const char *why;
	uint64_t nw;

	if (ci->held) {
		uint64_t hw = sysword(c, ci->hsys);
		if (sys_incarnation(hw, ci->hepoch)) {
			inst_restore_word(c, i, w, ctx);
			return 0;
		}
		/* failure processing missed it (its word kept changing): the holder's failure is owed */
		o = ci->hsys;
		oe = ci->hepoch;
		k = ci->hinc;
	} else if (cf_reg_state(w) != CF_REG_ACTIVE) {
		inst_restore_word(c, i, w, ctx);
		return 0;
	} else if (inst_reg_legal(c, i, w, o, oe, &why) < 0) {
		/* not a registration the base allows, whoever it names: put back */
		inst_restore_word(c, i, w, why);
		return 0;
	} else if (o < c->map->geo.max_systems && !cf_reg_owner_stale(w, sysword(c, o))) {
		/* registered by a live system, not attached yet */
		return 0;
	}
	nw = mark_instance_failed(c, i, o, oe, w, k, cf_real_ns(), CF_FAIL_NONE);
	if (!nw)
		return 0;
	core_reg_desc(c, w, desc, sizeof(desc));
	cf_slog_warn("%s: %s was %s with a stale owner -> INACTIVE_FAILED(%u)", ctx, core_inst_name(c, i, in), desc,
		 cf_reg_incident(nw));
	failure_event(c, CF_EV_INST_FAILED, o, oe, i, nw, cf_real_ns(), CF_FAIL_NONE, 0);
	return nw;
}

/*
 * Any instance whose holder (or, nobody holding it, whose ACTIVE word's owner)
 * is not ACTIVE with the same epoch becomes INACTIVE_FAILED(k+1); a word the
 * CF did not grant is put back.
 */
void orphan_scan(struct cf_core *c)
{
	for (uint32_t i = 0; i < c->map->geo.max_instances; i++)
		orphan_check(c, i, regword(c, i), "orphan scan");
}

/*
 * A duplexed takeover keeps system s (epoch e), ACTIVE in the copy: it stays
 * ACTIVE, and every instance whose word names it stays ACTIVE and held by it
 * (struct core_inst), so its INST_ATTACH and INST_UNREG are its own and
 * nobody else's registration can win. The restart barrier waits for them
 * (ACTIVE: pending) until the system, back, recovers each from its log and
 * unregisters it. If it does not come back within resume_ns, the sweep fails
 * it as any silent system: fenced first, then peer recovery.
 */
static void keep_system(struct cf_core *c, uint32_t s, uint32_t e, uint64_t deadline_ns)
{
	struct core_sys *cs = &c->sys[s];
	char sn[CF_NAME_MAX], in[CF_NAME_MAX];
	unsigned n = 0;

	cs->kept = 1;
	cs->hb_last = load64(&hb_slot(c, s)->hb);
	cs->hb_seen_ns = deadline_ns;
	for (uint32_t i = 0; i < c->map->geo.max_instances; i++) {
		uint64_t iw = inst_slot(c, i)->reg;
		if (!reg_owned_by(iw, s, e))
			continue;
		inst_set(c, i, iw);
		c->inst[i].held = 1;
		c->inst[i].hsys = s;
		c->inst[i].hepoch = e;
		c->inst[i].hinc = cf_reg_incident(iw);
		cf_slog_info("takeover: %s stays ACTIVE, held by %s", core_inst_name(c, i, in), core_sys_name(c, s, sn));
		n++;
	}
	cf_slog_info("takeover: %s (epoch %u) kept with %u instance(s): it has %llu ms to come back",
		     core_sys_name(c, s, sn), e, n, (unsigned long long)(c->cfg.resume_ns / 1000000u));
}

/*
 * Before the listener opens: nothing can reach the image, so plain stores are
 * safe here. Systems left ACTIVE by a previous run died with its connections.
 */
void take_over_image(struct cf_core *c)
{
	struct cf_header *h = hdr(c);
	char sn[CF_NAME_MAX], in[CF_NAME_MAX];
	uint64_t now = cf_real_ns(), deadline = cf_mono_ns() + c->cfg.resume_ns;

	h->generation++;
	core_persist(c, 0, sizeof(*h));
	cf_slog_info("image generation %llu", (unsigned long long)h->generation);
	for (uint32_t s = 0; s < c->map->geo.max_systems; s++) {
		struct cf_sys_slot *slot = sys_slot(c, s);
		uint64_t w = slot->state;
		uint32_t e = cf_sysword_epoch(w);
		if (cf_sysword_state(w) != CF_SYS_ACTIVE)
			continue;
		if (c->cfg.keep_systems) {
			keep_system(c, s, e, deadline);
			continue;
		}
		slot->fail_ns = now;
		slot->fail_cause = CF_FAIL_CF_RESTART;
		slot->state = cf_sysword(CF_SYS_FAILED, e);
		core_persist(c, cf_sys_off(c->map, s), sizeof(*slot));
		cf_slog_info("restart: %s (epoch %u) was ACTIVE in the previous run: FAILED", core_sys_name(c, s, sn), e);
		for (uint32_t i = 0; i < c->map->geo.max_instances; i++) {
			struct cf_inst_slot *is = inst_slot(c, i);
			uint64_t iw = is->reg;
			/* the cause lets the restarted home recover it under policy operator too (§7) */
			if (reg_owned_by(iw, s, e) &&
			    mark_instance_failed(c, i, s, e, iw, cf_reg_incident(iw), now, CF_FAIL_CF_RESTART))
				cf_slog_info("restart: %s -> INACTIVE_FAILED(%u)", core_inst_name(c, i, in),
					 cf_reg_incident(iw) + 1);
		}
	}
	/*
	 * The CF's record of registrations (struct core_inst) starts here: no
	 * holder. An ACTIVE word left now names a system that was not ACTIVE (an
	 * orphan): it fails here, as the orphan scan would, so that every word
	 * is one the CF set and the record starts from it.
	 */
	for (uint32_t i = 0; i < c->map->geo.max_instances; i++) {
		struct cf_inst_slot *is = inst_slot(c, i);
		uint64_t iw = is->reg;
		if (c->inst[i].held)
			continue; /* kept, with its system (keep_system) */
		if (cf_reg_state(iw) == CF_REG_ACTIVE &&
		    mark_instance_failed(c, i, cf_reg_owner(iw), cf_reg_epoch(iw), iw, cf_reg_incident(iw), now,
					 CF_FAIL_NONE))
			cf_slog_warn("restart: %s had a stale owner (%s, epoch %u) -> INACTIVE_FAILED(%u)",
				 core_inst_name(c, i, in), core_sys_name(c, cf_reg_owner(iw), sn), cf_reg_epoch(iw),
				 cf_reg_incident(iw) + 1);
		inst_set(c, i, is->reg);
	}
	restart_barrier(c);
}
