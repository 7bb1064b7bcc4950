/* SPDX-License-Identifier: MIT */
/*
 * cf_node_switch.c - an incarnation kept across a switch of duplexed CFs
 * (docs/design.md, "Incarnations kept across a switch"; cf_node.h).
 *
 * The new primary keeps every system its copy has ACTIVE, at its epoch, with
 * the instances it holds (cf_failure.c keep_system), and waits for each to
 * come back within --duplex-resume. Here, on the agent thread, once the agent
 * loop ends with the CF lost:
 *   (1) every wait on the old CF ends: the workload session and the heartbeat
 *       session are aborted (cf_session_abort), the heartbeat thread stops;
 *   (2) the workload backs out what it has open as far as it can (from
 *       memory on a volatile pair; what it cannot decide, a COMMIT posted and
 *       not answered, the log decides in (5)) and parks (cf_node_park); a
 *       library's application is quiesced instead (n->quiesce, cfn.c);
 *   (3) its context goes: nothing of the old session is used again;
 *   (4) resume: the other CFs of --cf first, then the old one, until one
 *       accepts CONN_ATTACH of this incarnation (sys, epoch, token); it must
 *       serve the same image (its id); then the heartbeat again (the lease
 *       comes back);
 *   (5) every instance the new primary says this incarnation holds is
 *       recovered from its log (cf_recover_held: the home without a fence,
 *       its workload being parked; a peer's with its failed owner's fence
 *       first), which takes it out of the CF's restart barrier; recoveries
 *       that waited on a fence at the old CF start again (the detector
 *       forgets what it tried);
 *   (6) the home instance is claimed and attached again (the attach waits
 *       for the CF's restart recovery to end, as after a restart), its txids
 *       going on from where they were;
 *   (7) the workload goes on.
 * Any step failing ends the incarnation as before (exit 75): the CF failed
 * it, or will when its resume window closes, and its peers recover it.
 */
#include "cf_node.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cf_agent_recovery.h"
#include "cf_marker.h"
#include "cf_util.h"
#include "cf_words.h"

#define say(n, level, ...) cf_agent_log(&(n)->a, level, __VA_ARGS__)
#define RETRY_MS 2          /* a CF not listening yet refuses at once: look again soon */
#define OLD_CF_AFTER_MS 2000 /* the CF that was lost: only after this, and one round in OLD_CF_EVERY */
#define OLD_CF_EVERY 25

bool cf_node_may_switch(struct cf_node *n, int err)
{
	const char *addr = n->o.agent.cf_addr;

	if (!err || err == -EINTR || !n->o.switch_wait_ms || !addr || !strchr(addr, ','))
		return false;
	if (atomic_load(&n->a.stop))
		return false;
	/* a workload that does not park ends with the CF, and with it the incarnation */
	return !n->o.workload || n->gate.workload || n->quiesce;
}

/* The workload's side (cf_bank_opts.cf_lost). */
int cf_node_park(void *node, int err)
{
	struct cf_node *n = node;
	struct cf_node_gate *g = &n->gate;
	uint64_t round;
	int r;

	/* not the CF's loss (corrupt data, a journal error), or no pair to switch to: no switch is waited for */
	if (!n->ws.dead && !cf_agent_over(&n->a) && err != -ENOLINK)
		return err;
	if (!n->o.switch_wait_ms || !strchr(n->o.agent.cf_addr, ','))
		return err;
	/*
	 * The agent loop may not have seen it yet (only the workload's connection
	 * failed). Before parked is published: once it is, the switch may run to
	 * its end and clear "over" for the new CF, which this must not set again.
	 */
	cf_agent_set_over(&n->a, n->ws.dead ? n->ws.dead : err);
	say(n, CF_AGENT_INFO, "workload parked (%s): it waits for the switch of CF", strerror(-err));
	pthread_mutex_lock(&g->mu);
	if (g->closed) {
		/* the agent loop ended for good already: nobody would open the gate */
		pthread_mutex_unlock(&g->mu);
		return err;
	}
	round = g->round;
	g->parked = true;
	pthread_cond_broadcast(&g->cv);
	while (g->round == round)
		pthread_cond_wait(&g->cv, &g->mu);
	r = g->result;
	g->parked = false;
	pthread_mutex_unlock(&g->mu);
	say(n, CF_AGENT_DEBUG, "workload unparked: %s", r ? strerror(-r) : "it goes on");
	return r;
}

static void gate_open(struct cf_node *n, int result)
{
	struct cf_node_gate *g = &n->gate;

	pthread_mutex_lock(&g->mu);
	g->result = result;
	g->round++;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

void cf_node_unpark(struct cf_node *n, int err)
{
	bool parked;

	pthread_mutex_lock(&n->gate.mu);
	n->gate.closed = true; /* a workload that parks from now on returns at once */
	parked = n->gate.parked;
	pthread_mutex_unlock(&n->gate.mu);
	if (parked)
		gate_open(n, err ? err : -EINTR);
}

/* (2) until the workload parks, or returns (it then asked the agent to stop), or end passes. */
static int wait_parked(struct cf_node *n, uint64_t end)
{
	struct cf_node_gate *g = &n->gate;
	int r = 0;

	if (!g->workload)
		return 0;
	pthread_mutex_lock(&g->mu);
	while (!g->parked && !r) {
		struct timespec ts = {(time_t)(end / 1000000000ull), (long)(end % 1000000000ull)};
		if (atomic_load(&n->a.stop))
			r = -ECANCELED; /* the workload returned: nothing to go on with */
		else if (pthread_cond_timedwait(&g->cv, &g->mu, &ts) == ETIMEDOUT)
			r = -ETIMEDOUT;
	}
	pthread_mutex_unlock(&g->mu);
	return r;
}

/* The addresses of the --cf list, the one the old session reached (old) last. */
static int addr_order(const char *list, const char *old, char out[][128], int max)
{
	char buf[512], *save = NULL;
	int n = 0;

	snprintf(buf, sizeof(buf), "%s", list);
	for (char *a = strtok_r(buf, ",", &save); a && n < max; a = strtok_r(NULL, ",", &save))
		if (strcmp(a, old))
			snprintf(out[n++], 128, "%s", a);
	if (n < max && old[0])
		snprintf(out[n++], 128, "%s", old);
	return n;
}

/* (4) the agent session again, at the CF that kept this incarnation. */
static int resume(struct cf_node *n, const char *old, uint64_t T, uint64_t end)
{
	struct cf_agent *a = &n->a;
	char addrs[4][128];
	int na = addr_order(a->o.cf_addr, old, addrs, 4), r = -ETIMEDOUT;
	/* a frozen CF accepts connections (its kernel does) and never answers: bound each try */
	uint64_t per_ms = 2 * T / 1000000ull > 1000 ? 2 * T / 1000000ull : 1000;

	uint64_t t0 = cf_mono_ns();

	for (unsigned round = 0;; round++) {
		for (int i = 0; i < na; i++) {
			uint64_t now = cf_mono_ns();
			if (now >= end)
				return r;
			/*
			 * The lost CF takes an incarnation back only if it took over again
			 * meanwhile (a double failure); frozen, it accepts a connection and
			 * never answers, which costs a whole try: seldom, and not at first.
			 */
			if (old[0] && !strcmp(addrs[i], old) &&
			    (now - t0 < OLD_CF_AFTER_MS * 1000000ull || round % OLD_CF_EVERY))
				continue;
			uint64_t left = (end - now) / 1000000ull + 1;
			r = cf_session_open(&a->s, a->o.transport, addrs[i], a->o.key, CF_ROLE_SYSTEM,
					    (int)(left < per_ms ? left : per_ms));
			if (r == -EPERM || r == -EPROTO)
				return r; /* the key or the protocol refused: no other CF will do better */
			if (r)
				continue;
			r = cf_session_attach(&a->s, a->sys, a->epoch, a->token);
			if (r == 0) {
				struct cf_header h;
				r = cf_session_read(&a->s, 0, &h, sizeof(h));
				if (!r && (h.reserved[CF_HDR_IMAGE_ID0] != a->image_id[0] ||
					   h.reserved[CF_HDR_IMAGE_ID1] != a->image_id[1])) {
					say(n, CF_AGENT_ERR, "CF %s serves another image: not the pair this system joined",
					    addrs[i]);
					r = -ESTALE;
				}
				if (!r) {
					cf_agent_watch_session(a, &a->s);
					cf_agent_sentinel_watch(a);
					return 0;
				}
				cf_session_close(&a->s);
				return r;
			}
			say(n, CF_AGENT_ERR, "CF %s does not take this incarnation back: %s%s%s", addrs[i], strerror(-r),
			    cf_session_error_msg(&a->s) ? ": " : "",
			    cf_session_error_msg(&a->s) ? cf_session_error_msg(&a->s) : "");
			cf_session_close(&a->s);
			return r; /* failed by the CF (it was alive), or the resume window closed */
		}
		usleep(RETRY_MS * 1000);
	}
}

/* (5) every instance the new primary says we hold, from its log. */
static int recover_held(struct cf_node *n)
{
	struct cf_agent *a = &n->a;
	uint32_t ni = a->s.map.geo.max_instances, home = n->home ? n->home->index : UINT32_MAX;
	int r;

	cf_recovery_switched(a);
	for (uint32_t i = 0; i < ni; i++) {
		uint64_t w;
		if ((r = cf_agent_read_reg(a, i, &w)) < 0)
			return r;
		if (cf_reg_state(w) != CF_REG_ACTIVE || cf_reg_owner(w) != a->sys ||
		    cf_reg_epoch(w) != (a->epoch & CF_EPOCH_MASK))
			continue;
		r = cf_agent_recover_held(a, i, w, i != home);
		if (r == -EINPROGRESS)
			continue; /* a peer's instance waits on its fence: the agent loop goes on with it */
		if (r < 0)
			return r;
	}
	return 0;
}

/* (6) the home instance, as cf_node_start took it: claim, marker, attach. */
static int home_again(struct cf_node *n, uint64_t next_txid)
{
	struct cf_agent *a = &n->a;
	int r;

	if (!n->home)
		return 0;
	r = cf_agent_claim(a, n->home);
	if (r)
		return r;
	if (cf_node_set_marker(n, n->home->name, n->o.workload ? CF_MARKER_INUSE : CF_MARKER_CLEAN) < 0)
		return -EIO;
	if (!n->o.workload)
		return 0;
	r = cf_node_attach_home(n);
	if (r)
		return n->err ? n->err : -EIO;
	/* txids are unique per incarnation: they go on, never start again */
	if (n->home->txn.next_txid < next_txid)
		n->home->txn.next_txid = next_txid;
	return 0;
}

int cf_node_switch(struct cf_node *n, int err)
{
	struct cf_agent *a = &n->a;
	uint64_t t0 = cf_mono_ns(), end = t0 + n->o.switch_wait_ms * 1000000ull, T = a->s.welcome.hb_timeout_ns;
	uint64_t next_txid = n->home ? n->home->txn.next_txid : 0;
	char old[128];
	int r;

	snprintf(old, sizeof(old), "%s", a->s.addr);
	say(n, CF_AGENT_WARN,
	    "connection to CF %s lost (%s): looking for the other CF of the pair; this incarnation (%s epoch %u) is "
	    "kept if it takes us back within %llu ms",
	    old[0] ? old : "?", strerror(-err), a->o.system, a->epoch, (unsigned long long)n->o.switch_wait_ms);
	/* (1) */
	cf_session_abort(&n->ws, -ECONNABORTED);
	cf_session_abort(&a->hb.s, -ECONNABORTED);
	cf_agent_hb_stop(a);
	cf_session_close(&a->hb.s);
	/* (2) */
	r = n->quiesce ? n->quiesce(n->quiesce_arg, end) : wait_parked(n, end);
	if (r) {
		say(n, CF_AGENT_ERR, "switch of CF: the workload did not stop: %s", strerror(-r));
		goto fail;
	}
	/* (3) */
	if (n->home)
		cf_inst_ctx_detach(n->home);
	n->attached = false;
	cf_session_close(&n->ws);
	cf_session_abort(&a->s, -ECONNABORTED); /* nothing to drain from a CF that may be frozen */
	cf_session_close(&a->s);
	/* (4) */
	atomic_store(&a->hb.last_ok_ns, 0); /* no lease until the new CF answers a beat */
	r = resume(n, old, T, end);
	if (r)
		goto fail;
	atomic_store(&a->hb.err, 0);
	atomic_store(&a->over_ns, 0);
	atomic_store(&a->over, 0);
	r = cf_agent_hb_start(a);
	if (r) {
		say(n, CF_AGENT_ERR, "switch of CF: heartbeat at %s: %s", a->s.addr, strerror(-r));
		goto fail;
	}
	cf_agent_rebind(a);
	say(n, CF_AGENT_INFO, "resumed at CF %s after %.1f ms: same incarnation (epoch %u)", a->s.addr,
	    (double)(cf_mono_ns() - t0) / 1e6, a->epoch);
	/* (5) */
	r = recover_held(n);
	if (r) {
		say(n, CF_AGENT_ERR, "switch of CF: recovery of the instances held here: %s", strerror(-r));
		goto fail;
	}
	/* (6) */
	r = home_again(n, next_txid);
	if (r) {
		if (r != -EINTR)
			say(n, CF_AGENT_ERR, "switch of CF: home instance %s: %s", n->home->name, strerror(-r));
		goto fail;
	}
	/* (7) */
	n->switches++;
	say(n, CF_AGENT_INFO, "switched to CF %s in %.1f ms: incarnation kept (%llu switch(es)), workload goes on",
	    a->s.addr, (double)(cf_mono_ns() - t0) / 1e6, (unsigned long long)n->switches);
	gate_open(n, 0);
	return 0;
fail:
	if (!atomic_load(&a->over))
		cf_agent_set_over(a, r);
	gate_open(n, r);
	return r;
}
