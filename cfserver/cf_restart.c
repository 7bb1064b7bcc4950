/* SPDX-License-Identifier: MIT */
/*
 * cf_restart.c - the restart barrier and restart recovery (docs/design.md,
 * "Durability"). The lock table and the record lists are not persisted, so
 * after a restart they cannot be trusted; the logs can. In order:
 *   (1) cf_core_new takes over the image (take_over_image, cf_failure.c):
 *       every system the previous run left ACTIVE is FAILED, its instances
 *       INACTIVE_FAILED;
 *   (2) restart_barrier: every instance that is FAILED or ACTIVE now must be
 *       recovered from its log (rpending). None: the lock table and record
 *       lists are cleared at once and the CF opens;
 *   (3) while rstate is CF_RESTART_RECOVERY, INST_ATTACH is granted only for
 *       a pending instance (a recovery); new work is told to wait and retry
 *       (restart_defers_attach); an instance that fails meanwhile joins the
 *       set (restart_barrier_add);
 *   (4) each pending instance's INST_UNREG takes it out of the set
 *       (restart_recovered); after the last, restart_done clears the lock
 *       table and the record lists, persists them, opens the CF and pushes
 *       RESTART_DONE to every live system.
 */
#include "cf_core_int.h"

#include <stdio.h>
#include <string.h>

#include "cf_slog.h"
#include "cf_util.h"
/*
 * Zero every non-zero word of [off, off+len) through the transport's atomic
 * path (on verbs a CPU store is not atomic against the NIC's atomics; before
 * the listener opens, core_local_cas is a plain store). Nobody
 * changes these words meanwhile (restart_done says why), so a CAS that misses
 * is a bug: counted, the word retried a few times. Returns the words cleared.
 */
static uint64_t clear_words(struct cf_core *c, uint64_t off, uint64_t len, uint64_t *missed)
{
	uint64_t n = 0;

	for (uint64_t p = off; p + 8 <= off + len; p += 8) {
		for (int tries = 0; tries < 4; tries++) {
			uint64_t w = load64((const uint64_t *)(c->base + p)), old = 0;
			if (!w)
				break;
			if (core_local_cas(c, p, w, 0, &old) == 0 && old == w) {
				n++;
				break;
			}
			if (tries == 3)
				(*missed)++;
		}
	}
	return n;
}

/* Clear the lock table and the record lists (*nl, *nr: words cleared); returns the words that kept changing. */
static uint64_t clear_stale(struct cf_core *c, uint64_t *nl, uint64_t *nr)
{
	const struct cf_image_map *m = c->map;
	uint64_t missed = 0;

	*nl = clear_words(c, m->off_locks, (uint64_t)m->geo.lock_entries * 8u, &missed);
	*nr = clear_words(c, m->off_records, (uint64_t)m->geo.max_instances * m->records_size, &missed);
	return missed;
}

/*
 * The restart barrier (docs/design.md, "Durability"). The lock table and the
 * record lists are not persisted, so after a power loss they are stale page
 * snapshots. Which instances must be recovered from their logs before anyone
 * may lock again: every one that is neither FREE (never used) nor
 * INACTIVE_CLEAN. A CLEAN one has nothing in flight in its durable log: it got
 * there only by its owner's INST_UNREG, sent after a clean leave (no open
 * transaction, no lock, every log write answered, i.e. persisted) or after a
 * recovery (ABORT/END answered); the CAS to CLEAN is persisted before its
 * reply. ACTIVE words left here (an owner that was not ACTIVE) are orphans the
 * scan fails. If the set is empty nobody can reach the image yet, so the
 * clear is plain stores, now.
 */
void restart_barrier(struct cf_core *c)
{
	const struct cf_image_map *m = c->map;
	char in[CF_NAME_MAX];
	uint64_t nl, nr;

	c->rpending = 0;
	for (uint32_t i = 0; i < m->geo.max_instances; i++) {
		uint32_t st = cf_reg_state(inst_slot(c, i)->reg);
		if (st == CF_REG_FAILED || st == CF_REG_ACTIVE) {
			c->rpending |= 1ull << i;
			cf_slog_info("restart recovery: %s must be recovered from its log", core_inst_name(c, i, in));
		}
	}
	c->rsince_ns = cf_real_ns();
	if (c->rpending) {
		c->rstate = CF_RESTART_RECOVERY;
		cf_slog_info("restart recovery: %d instance(s) left; attaches for new work wait until they are recovered",
			 __builtin_popcountll(c->rpending));
		return;
	}
	c->rstate = CF_RESTART_OPEN;
	clear_stale(c, &nl, &nr); /* nothing else can reach the image yet: nothing can miss */
	if (nl || nr) {
		core_persist(c, m->off_locks, m->off_logs - m->off_locks);
		cf_slog_info("restart: no instance to recover; cleared %llu stale lock word(s) and %llu record-list "
			 "word(s)",
			 (unsigned long long)nl, (unsigned long long)nr);
	}
}

/*
 * INST_ATTACH of instance i (named in) by sn during restart recovery: new
 * work, unless i is one the barrier waits for. Then the node waits and
 * retries (not an error): answered here, returns 1. Else 0.
 */
int restart_defers_attach(struct cf_core *c, struct core_conn *cc, uint64_t id, uint32_t i, const char *in,
			  const char *sn)
{
	if (c->rstate != CF_RESTART_RECOVERY || (c->rpending & (1ull << i)))
		return 0;
	cf_slog_info("INST_ATTACH %s by %s deferred: restart recovery, %d instance(s) left", in, sn,
		 __builtin_popcountll(c->rpending));
	core_status(cc, id, CF_CTRL_STATUS, CF_STATUS_RESTART_RECOVERY,
		    "CF restart recovery in progress: %d instances left", __builtin_popcountll(c->rpending));
	return 1;
}

/*
 * An instance that fails while the CF is in restart recovery joins the set:
 * its record list may be stale too, and its recovery must be able to attach.
 */
void restart_barrier_add(struct cf_core *c, uint32_t i)
{
	char in[CF_NAME_MAX];

	if (c->rstate != CF_RESTART_RECOVERY || (c->rpending & (1ull << i)))
		return;
	c->rpending |= 1ull << i;
	cf_slog_info("restart recovery: %s failed meanwhile: %d instance(s) left", core_inst_name(c, i, in),
		 __builtin_popcountll(c->rpending));
}

/*
 * The last instance failed at the restart has been recovered from its log.
 * Nobody holds a lock now: every attach since the restart was a recovery
 * (new work was refused), recoveries take no lock, and every recovered
 * instance has unregistered, which revoked its log and record-list grants.
 * A release CAS still in flight from a counterpart can only lower a word
 * (cf_lock_release_next), so it is harmless after the clear too. What is left
 * in the lock table and record lists is stale (not persisted since a power
 * loss, or a hold the recovery's record list did not name): clear it all,
 * persist that, open, and tell the waiting systems.
 */
static void restart_done(struct cf_core *c)
{
	uint64_t t0 = cf_mono_ns(), missed, nl, nr;
	const struct cf_image_map *m = c->map;
	struct cf_event ev;

	missed = clear_stale(c, &nl, &nr);
	core_persist(c, m->off_locks, m->off_logs - m->off_locks);
	if (missed)
		cf_slog_err("restart recovery: %llu word(s) changed while the lock table was cleared: BUG",
			(unsigned long long)missed);
	c->rstate = CF_RESTART_OPEN;
	cf_slog_info("restart recovery: done in %llu ms; cleared %llu lock word(s) and %llu record-list word(s) in "
		 "%llu us; the CF is open",
		 (unsigned long long)((cf_real_ns() - c->rsince_ns) / 1000000u), (unsigned long long)nl,
		 (unsigned long long)nr, (unsigned long long)((cf_mono_ns() - t0) / 1000u));
	ev = core_event(c, CF_EV_RESTART_DONE, 0, 0, 0, 0, cf_real_ns());
	core_event_all(c, &ev);
}

/* Instance i (named in) unregistered: if the barrier waited for it, one fewer; the last one opens the CF. */
void restart_recovered(struct cf_core *c, uint32_t i, const char *in)
{
	if (c->rstate != CF_RESTART_RECOVERY || !(c->rpending & (1ull << i)))
		return;
	c->rpending &= ~(1ull << i);
	cf_slog_info("restart recovery: %s recovered, %d instance(s) left", in, __builtin_popcountll(c->rpending));
	if (!c->rpending)
		restart_done(c);
}
