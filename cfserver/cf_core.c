/* SPDX-License-Identifier: MIT */
/*
 * cf_core.c - cfserver's control plane (both transports).
 *
 * Failure processing follows DESIGN §4 and the model's "Design changes", in
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
 * explain.
 *
 * Registrations: the word is a claim any member can CAS (every system has
 * atomic rights on the instance table); what the CF granted is its own record
 * (struct core_inst). INST_ATTACH and INST_UNREG go by that record.
 *
 * CAS-able words (system state, registration, header policy) are changed only
 * through ops->local_cas while clients can reach the image: on verbs a plain
 * CPU store is not atomic against the NIC's atomics (IBV_ATOMIC_HCA).
 */
#include "cf_core.h"
#include "cf_fault.h"

#include <assert.h>
#include <errno.h>
#include <ev.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_auth.h"
#include "cf_duplex.h"
#include "cf_metrics.h"
#include "cf_persist.h"
#include "cf_slog.h"
#include "cf_util.h"
#include "cf_words.h"

#define HANDSHAKE_TIMEOUT_NS (5ull * 1000000000ull)
/*
 * Connections not authenticated yet have a budget of their own, not --max-conns
 * (issue 11, item 5): at most this many at once; a newcomer beyond it drops the
 * oldest (handshake_budget). So connections that never speak cannot lock out a
 * console or a restarted system, and cost at most 64 sockets for 5 s each.
 */
#define HANDSHAKE_MAX 64u
#define CONN_GRANTS_MAX 128u

/* ---------------- connection state machine ---------------- */

enum conn_state {
	CS_NEW,        /* accepted, waiting for HELLO */
	CS_CHALLENGED, /* CHALLENGE sent, waiting for AUTH */
	CS_AUTHED,     /* WELCOME sent (system role), waiting for JOIN or CONN_ATTACH */
	CS_SYSTEM,     /* a connection of a live system incarnation */
	CS_CONSOLE,    /* an operator console */
	CS_MONITOR,    /* authenticated with the monitor key: METRICS only, no grants */
	CS_LEFT,       /* its system said GOODBYE: closing, no failure processing */
	CS_FENCED,     /* fenced by failure processing: closing */
	CS_CLOSING,    /* refused or protocol error: closing */
};

static const char *conn_state_str(enum conn_state s)
{
	switch (s) {
	case CS_NEW: return "NEW";
	case CS_CHALLENGED: return "CHALLENGED";
	case CS_AUTHED: return "AUTHED";
	case CS_SYSTEM: return "SYSTEM";
	case CS_CONSOLE: return "CONSOLE";
	case CS_MONITOR: return "MONITOR";
	case CS_LEFT: return "LEFT";
	case CS_FENCED: return "FENCED";
	case CS_CLOSING: return "CLOSING";
	}
	return "?";
}

static int conn_transition_ok(enum conn_state from, enum conn_state to)
{
	switch (to) {
	case CS_CHALLENGED: return from == CS_NEW;
	case CS_AUTHED: return from == CS_CHALLENGED;
	case CS_CONSOLE: return from == CS_CHALLENGED;
	case CS_MONITOR: return from == CS_CHALLENGED;
	case CS_SYSTEM: return from == CS_AUTHED;
	case CS_LEFT: return from == CS_SYSTEM;
	case CS_FENCED: return from == CS_SYSTEM;
	case CS_CLOSING: return from != CS_FENCED && from != CS_LEFT;
	case CS_NEW: return 0;
	}
	return 0;
}

struct cgrant {
	uint32_t region, inst, rkey, rights;
	uint64_t off, len; /* image range (PERSIST requests must lie inside a WRITE grant) */
};

struct core_conn {
	struct cf_core *core;
	struct cf_sconn *sc;
	struct core_conn *prev, *next;      /* all connections */
	struct core_conn *sys_prev, *sys_next; /* connections of one system */
	enum conn_state state;
	uint32_t role;
	uint16_t version;
	int sys;      /* system index once SYSTEM, else -1 */
	int on_sys;   /* linked on the system's list */
	uint32_t cause; /* enum cf_fail_cause to use if it closes */
	uint64_t accepted_ns;
	uint8_t cnonce[CF_NONCE_LEN], snonce[CF_NONCE_LEN];
	struct cgrant grants[CONN_GRANTS_MAX];
	uint32_t ngrants;
	uint32_t persist_waiting; /* its PERSIST requests waiting for the next group commit */
	char peer[64];
};

static void set_state(struct core_conn *cc, enum conn_state to)
{
	if (!conn_transition_ok(cc->state, to)) {
		cf_slog_err("BUG: connection %s: illegal transition %s -> %s", cc->peer, conn_state_str(cc->state),
			conn_state_str(to));
		assert(0 && "illegal connection state transition");
	}
	cf_slog_debug("conn %s: %s -> %s", cc->peer, conn_state_str(cc->state), conn_state_str(to));
	cc->state = to;
}

/*
 * The PERSIST requests (cf_wire.h) of one loop iteration, waiting for the
 * group commit (cf_persist.h) that makes their ranges durable: their ranges
 * went to gc with cf_persist_add, and ONE cf_persist_after callback
 * (persist_answer) answers them all, in arrival order, after that commit.
 */
struct persist_wait_req {
	struct core_conn *cc; /* NULL: the connection closed, nothing to answer */
	uint64_t id;
	uint64_t batch; /* cf_persist_batch() when it came: answered once that batch is durable */
};

struct persist_wait {
	struct persist_wait_req *q;  /* waiting, in arrival (and so batch) order */
	size_t n, cap;
	uint64_t armed_batch; /* the newest batch persist_answer is registered for (0: none) */
	uint64_t requests, refused; /* accepted (waited for a commit) / refused PERSISTs */
	uint64_t groups, max_group; /* commits that answered some / most answered by one */
};

struct core_sys {
	struct core_conn *conns; /* live connections of the current incarnation */
	struct core_conn *agent; /* its JOIN connection: events go there */
	int live;                /* joined in this server run and not failed/left */
	uint64_t token;
	uint64_t hb_last;
	uint64_t hb_seen_ns; /* monotonic, when hb_last was first seen */
	int suspected_by;    /* system index + 1 of a peer that reported it silent (SUSPECT), 0: none */
};

/*
 * What the CF itself knows of instance i's registration (docs/design.md §7,
 * "Registrations: what the CF checks"). Every system has atomic rights on the
 * whole instance table, so the word is a claim that any member can forge; the
 * CF decides by this record, in its own memory:
 *   base   the last registration word the CF itself set: INACTIVE_CLEAN(0) at
 *          INST_OPEN, INACTIVE_CLEAN(k) at INST_UNREG, INACTIVE_FAILED(k+1) by
 *          failure processing, the orphan scan, RECOVER, or the takeover of a
 *          reloaded image. The one legal node change of it is the registration
 *          CAS to ACTIVE(s, e, k) at the same incident k, by any live system
 *          (from FAILED a counterpart; from CLEAN the home, or another system
 *          that takes the instance over while nobody holds it).
 *   held   the incarnation (hsys, hepoch, incident hinc) the CF granted the log
 *          and record list to since base was set (its first INST_ATTACH).
 *          While set, INST_ATTACH and INST_UNREG from anyone else are refused
 *          (a takeover attempt), a word that names someone else is put back,
 *          and failure processing of that incarnation fails the instance
 *          whatever the word says. Cleared whenever the CF sets base.
 * A reloaded image starts with no holder: every ACTIVE word becomes FAILED
 * there (take_over_image), and base is read from the words.
 */
struct core_inst {
	uint64_t base;
	uint32_t hsys, hepoch, hinc;
	int held;
};

struct cf_core {
	struct ev_loop *loop;
	const struct cf_server_ops *ops;
	struct cf_tserver *ts;
	struct cf_image *im;
	struct cf_core_cfg cfg;
	struct cf_image_map *map;
	uint8_t *base;
	struct core_sys sys[CF_MAX_SYSTEMS_LIMIT];
	struct core_inst inst[CF_MAX_INSTANCES_LIMIT];
	uint64_t takeovers; /* INST_ATTACH / INST_UNREG refused as takeover attempts */
	uint64_t restored;  /* registration words the CF put back */
	struct core_conn *conns;
	unsigned nconns;
	uint64_t handshakes_dropped; /* by the handshake budget */
	int shutting_down;
	ev_timer sweep, orphan;
	uint64_t last_sweep_ns;	  /* when the sweep last ran: a late sweep means this loop stalled */
	uint64_t suspects, suspects_declared; /* SUSPECT requests; those after which the sweep declared */
	uint64_t sweep_period_ns; /* h/2, at least 0.5 ms */
	struct cf_persist *gc;    /* --nvram or duplexed: group commit (client writes, PERSIST) (else NULL) */
	struct cf_duplex *dx;     /* duplexed: every gc batch is shipped to the secondary too */
	struct persist_wait pw;   /* PERSIST requests waiting for gc's next commit */
	/*
	 * Restart barrier (docs/design.md, "Durability"): server DRAM, rebuilt
	 * from the image at every start. While rstate is CF_RESTART_RECOVERY,
	 * INST_ATTACH is granted only to the registered owner of an instance in
	 * rpending (a recovery); the last of them to unregister clears the lock
	 * table and the record lists and opens the CF.
	 */
	enum cf_restart_state rstate;
	uint64_t rpending; /* bit i: instance i must still be recovered from its log */
	uint64_t rsince_ns;
	struct cf_metrics metrics; /* counters, persist latency, snapshots (cf_metrics.h) */
};

_Static_assert(CF_MAX_INSTANCES_LIMIT <= 64, "restart barrier: one bit per instance in a 64-bit word");

/* ---------------- image access ---------------- */

static struct cf_header *hdr(struct cf_core *c)
{
	return (struct cf_header *)c->base;
}
static struct cf_sys_slot *sys_slot(struct cf_core *c, uint32_t s)
{
	return (struct cf_sys_slot *)(c->base + cf_sys_off(c->map, s));
}
static struct cf_hb_slot *hb_slot(struct cf_core *c, uint32_t s)
{
	return (struct cf_hb_slot *)(c->base + cf_hb_off(c->map, s));
}
static struct cf_inst_slot *inst_slot(struct cf_core *c, uint32_t i)
{
	return (struct cf_inst_slot *)(c->base + cf_inst_off(c->map, i));
}
static uint64_t load64(const uint64_t *w)
{
	return __atomic_load_n(w, __ATOMIC_SEQ_CST);
}
static uint64_t sysword(struct cf_core *c, uint32_t s)
{
	return load64(&sys_slot(c, s)->state);
}
static uint64_t regword(struct cf_core *c, uint32_t i)
{
	return load64(&inst_slot(c, i)->reg);
}
/* Every persist of image bytes goes here (loop or persister thread): timed for the metrics. */
static void image_persist(struct cf_core *c, uint64_t off, uint64_t len)
{
	uint64_t t0;

	if (!c->im->persist_fn)
		return; /* DRAM: nothing to persist, nothing to time */
	t0 = cf_mono_ns();
	cf_image_persist(c->im, off, len);
	cf_metrics_persist_time(&c->metrics, cf_mono_ns() - t0);
}
/*
 * cfserver's own writes of what a restart reads (control path): durable
 * before the reply. Duplexed, "durable" includes the secondary's copy, so
 * they go through the group commit, committed now (after any batch in
 * flight, so they reach the secondary in the order they were made).
 */
static void persist(struct cf_core *c, uint64_t off, uint64_t len)
{
	if (c->dx && c->gc) {
		cf_persist_add(c->gc, off, len);
		cf_persist_commit(c->gc);
		return;
	}
	image_persist(c, off, len);
}

/*
 * JOINED's flags: durable when the image persists or a secondary keeps a copy
 * (then a verbs node sends PERSIST, which is what ships its log records).
 */
static uint32_t joined_flags(const struct cf_core *c)
{
	return c->im->persist_fn || c->dx ? CF_JOINED_DURABLE : 0;
}

/* The server's own CAS on an image word: through the transport's atomic path. */
static int word_cas(struct cf_core *c, uint64_t off, uint64_t compare, uint64_t swap)
{
	uint64_t old = 0;
	int r = c->ops->local_cas(c->ts, off, compare, swap, &old);

	if (r < 0)
		return r;
	if (old != compare)
		return -EAGAIN;
	persist(c, off, 8);
	return 0;
}

static void name_of(const char field[CF_NAME_MAX], char out[CF_NAME_MAX])
{
	memcpy(out, field, CF_NAME_MAX);
	out[CF_NAME_MAX - 1] = 0;
}

static const char *sys_name(struct cf_core *c, uint32_t s, char buf[CF_NAME_MAX])
{
	if (s >= c->map->geo.max_systems) {
		snprintf(buf, CF_NAME_MAX, "sys#%u", s);
		return buf;
	}
	name_of(sys_slot(c, s)->name, buf);
	if (!buf[0])
		snprintf(buf, CF_NAME_MAX, "sys#%u", s);
	return buf;
}

static const char *inst_name(struct cf_core *c, uint32_t i, char buf[CF_NAME_MAX])
{
	name_of(inst_slot(c, i)->name, buf);
	if (!buf[0])
		snprintf(buf, CF_NAME_MAX, "inst#%u", i);
	return buf;
}

static const char *cause_str(uint32_t cause)
{
	switch (cause) {
	case CF_FAIL_CONN_LOST: return "connection lost without goodbye";
	case CF_FAIL_HB_TIMEOUT: return "heartbeat silence";
	case CF_FAIL_READMIT: return "re-admission of a new incarnation";
	case CF_FAIL_PROTOCOL: return "protocol violation";
	}
	return "none";
}

/* Describe a registration word for messages: "ACTIVE (owner SYS1, epoch 3)". */
static void reg_desc(struct cf_core *c, uint64_t w, char *buf, size_t cap)
{
	char sn[CF_NAME_MAX];

	if (cf_reg_state(w) == CF_REG_ACTIVE)
		snprintf(buf, cap, "ACTIVE (owner %s, epoch %u, incident %u)", sys_name(c, cf_reg_owner(w), sn),
			 cf_reg_epoch(w), cf_reg_incident(w));
	else if (cf_reg_state(w) == CF_REG_FAILED)
		snprintf(buf, cap, "INACTIVE_FAILED (incident %u)", cf_reg_incident(w));
	else if (cf_reg_state(w) == CF_REG_CLEAN)
		snprintf(buf, cap, "INACTIVE_CLEAN (incident %u)", cf_reg_incident(w));
	else
		snprintf(buf, cap, "FREE");
}

/* ---------------- sending ---------------- */

static int send_msg(struct core_conn *cc, uint64_t id, uint16_t type, const void *body, size_t len)
{
	uint8_t buf[CF_CTRL_MAX];
	size_t n = cf_ctrl_build(buf, type, body, len);

	return cc->core->ops->send_ctrl(cc->sc, id, buf, n);
}

static void send_status(struct core_conn *cc, uint64_t id, uint16_t type, int status, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void send_status(struct core_conn *cc, uint64_t id, uint16_t type, int status, const char *fmt, ...)
{
	struct cf_status st;
	va_list ap;

	memset(&st, 0, sizeof(st));
	st.status = status;
	va_start(ap, fmt);
	vsnprintf(st.msg, sizeof(st.msg), fmt, ap);
	va_end(ap);
	send_msg(cc, id, type, &st, sizeof(st));
}

/* Refuse and close (ERROR then graceful close). */
static void refuse(struct core_conn *cc, uint64_t id, uint32_t cause, const char *msg)
{
	send_status(cc, id, CF_CTRL_ERROR, -EPROTO, "%s", msg);
	if (cc->state != CS_CLOSING && cc->state != CS_FENCED && cc->state != CS_LEFT) {
		cc->cause = cause;
		set_state(cc, CS_CLOSING);
	}
	cc->core->ops->close(cc->sc);
}

static void event_all(struct cf_core *c, const struct cf_event *ev)
{
	for (uint32_t s = 0; s < c->map->geo.max_systems; s++) {
		if (c->sys[s].live && c->sys[s].agent)
			send_msg(c->sys[s].agent, 0, CF_CTRL_EVENT, ev, sizeof(*ev));
	}
}

/* ---------------- grants ---------------- */

static int conn_grant(struct core_conn *cc, uint32_t region, uint32_t inst, uint64_t off, uint64_t len,
		      uint32_t rights, struct cf_grant *g)
{
	int r;

	if (cc->ngrants >= CONN_GRANTS_MAX)
		return -ENOSPC;
	r = cc->core->ops->grant(cc->sc, region, inst, off, len, rights, g);
	if (r < 0)
		return r;
	cc->grants[cc->ngrants++] = (struct cgrant){region, inst, g->rkey, rights, off, len};
	return 0;
}

/* Revoke every grant on instance i held by any connection. */
static void revoke_inst(struct cf_core *c, uint32_t i)
{
	for (struct core_conn *cc = c->conns; cc; cc = cc->next) {
		for (uint32_t k = 0; k < cc->ngrants;) {
			struct cgrant *g = &cc->grants[k];
			if ((g->region == CF_RGN_LOG || g->region == CF_RGN_RECORDS) && g->inst == i) {
				c->ops->revoke(cc->sc, g->rkey);
				*g = cc->grants[--cc->ngrants];
			} else {
				k++;
			}
		}
	}
}

/* The grants every connection of a system gets (cf_wire.h, struct cf_joined). */
static int system_grants(struct core_conn *cc, uint32_t s, struct cf_grants *gs)
{
	struct cf_core *c = cc->core;
	const struct cf_image_map *m = c->map;
	const struct cf_geometry *g = &m->geo;
	struct {
		uint32_t region;
		uint64_t off, len;
		uint32_t rights;
	} want[] = {
		{CF_RGN_HEADER, 0, sizeof(struct cf_header), CF_R_READ},
		{CF_RGN_SYSTEMS, m->off_systems, (uint64_t)g->max_systems * sizeof(struct cf_sys_slot), CF_R_READ},
		{CF_RGN_HEARTBEATS, m->off_heartbeats, (uint64_t)g->max_systems * sizeof(struct cf_hb_slot),
		 CF_R_READ},
		{CF_RGN_HB_OWN, cf_hb_off(m, s), sizeof(struct cf_hb_slot), CF_R_READ | CF_R_WRITE},
		{CF_RGN_INSTANCES, m->off_instances, (uint64_t)g->max_instances * sizeof(struct cf_inst_slot),
		 CF_R_READ | CF_R_ATOMIC},
		{CF_RGN_RINFO, m->off_rinfo, (uint64_t)g->max_instances * sizeof(struct cf_rinfo_slot),
		 CF_R_READ | CF_R_WRITE},
		{CF_RGN_LOCKS, m->off_locks, (uint64_t)g->lock_entries * 8u, CF_R_READ | CF_R_ATOMIC},
	};
	int r;

	memset(gs, 0, sizeof(*gs));
	for (size_t k = 0; k < CF_ARRAY_SIZE(want); k++) {
		r = conn_grant(cc, want[k].region, 0, want[k].off, want[k].len, want[k].rights, &gs->g[k]);
		if (r < 0)
			return r;
		gs->count++;
	}
	return 0;
}

/* ---------------- system membership of connections ---------------- */

static void sys_link(struct cf_core *c, uint32_t s, struct core_conn *cc)
{
	struct core_sys *cs = &c->sys[s];

	cc->sys = (int)s;
	cc->on_sys = 1;
	cc->sys_prev = NULL;
	cc->sys_next = cs->conns;
	if (cs->conns)
		cs->conns->sys_prev = cc;
	cs->conns = cc;
}

static void sys_unlink(struct cf_core *c, struct core_conn *cc)
{
	struct core_sys *cs;

	if (!cc->on_sys)
		return;
	cs = &c->sys[cc->sys];
	if (cc->sys_prev)
		cc->sys_prev->sys_next = cc->sys_next;
	else
		cs->conns = cc->sys_next;
	if (cc->sys_next)
		cc->sys_next->sys_prev = cc->sys_prev;
	if (cs->agent == cc)
		cs->agent = NULL;
	cc->on_sys = 0;
	cc->sys_prev = cc->sys_next = NULL;
}

/* ---------------- failure processing ---------------- */

static void inst_failed_event(struct cf_core *c, uint32_t i, uint64_t nw, uint32_t s, uint32_t e, uint64_t t_ns,
			      uint32_t cause, uint32_t fence_us)
{
	struct cf_event ev = {.type = CF_EV_INST_FAILED, .sys = s, .epoch = e, .inst = i, .reg = nw,
			      .policy = load64(&hdr(c)->policy), .time_ns = t_ns, .cause = cause,
			      .fence_us = fence_us};
	event_all(c, &ev);
}

/*
 * An instance that fails while the CF is in restart recovery joins the set:
 * its record list may be stale too, and its recovery must be able to attach.
 */
static void barrier_add(struct cf_core *c, uint32_t i)
{
	char in[CF_NAME_MAX];

	if (c->rstate != CF_RESTART_RECOVERY || (c->rpending & (1ull << i)))
		return;
	c->rpending |= 1ull << i;
	cf_slog_info("restart recovery: %s failed meanwhile: %d instance(s) left", inst_name(c, i, in),
		 __builtin_popcountll(c->rpending));
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
				 inst_name(c, i, in), ss ? sys_name(c, s, sn) : "?",
				 is->fail_sys < c->map->geo.max_systems ? sys_name(c, is->fail_sys, fn) : "?",
				 is->fail_epoch,
				 is->fail_sys < c->map->geo.max_systems ? sys_name(c, is->fail_sys, fn) : "?");
		is->fail_incident = incident;
		persist(c, cf_inst_off(c->map, i), sizeof(*is));
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
	persist(c, cf_inst_off(c->map, i), sizeof(*is));
}

/* ---------------- registrations: the CF's own record (struct core_inst) ---------------- */

/* The CF set instance i's word to w (CLEAN or FAILED): a new base, nobody holds it. */
static void inst_set(struct cf_core *c, uint32_t i, uint64_t w)
{
	c->inst[i].base = w;
	c->inst[i].held = 0;
}

static bool held_by(const struct cf_core *c, uint32_t i, uint32_t s, uint32_t e)
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
static int reg_legal(const struct cf_core *c, uint32_t i, uint64_t w, uint32_t s, uint32_t e, const char **why)
{
	const struct core_inst *ci = &c->inst[i];

	if (cf_reg_state(w) != CF_REG_ACTIVE || cf_reg_owner(w) != s || cf_reg_epoch(w) != e) {
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
static void restore_word(struct cf_core *c, uint32_t i, uint64_t w, const char *ctx)
{
	uint64_t want = inst_expected(c, i);
	char in[CF_NAME_MAX], was[96], now[96];

	if (w == want)
		return;
	inst_name(c, i, in);
	reg_desc(c, w, was, sizeof(was));
	reg_desc(c, want, now, sizeof(now));
	if (word_cas(c, cf_inst_off(c->map, i), w, want) == 0) {
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
	sys_name(c, s, sn);
	sys_name(c, ci->hsys, hn);
	inst_name(c, i, in);
	reg_desc(c, w, desc, sizeof(desc));
	cf_slog_warn("%s %s by %s (epoch %u) refused: takeover attempt: the CF granted %s to %s (epoch %u, incident "
		 "%u); its word says %s",
		 op, in, sn, e, in, hn, ci->hepoch, ci->hinc, desc);
	send_status(cc, id, CF_CTRL_STATUS, -EACCES, "%s is registered to %s (epoch %u) by the CF's record, not to %s",
		    in, hn, ci->hepoch, sn);
	restore_word(c, i, w, "takeover attempt");
}

/*
 * Fail instance i on behalf of incarnation (s, e), which held it at incident
 * k: record it (names s), then CAS the word, whatever it is now (w), to
 * INACTIVE_FAILED(k+1). Returns the new word, or 0 if w changed meanwhile.
 */
static uint64_t fail_inst(struct cf_core *c, uint32_t i, uint32_t s, uint32_t e, uint64_t w, uint32_t k,
			  uint64_t t_ns, uint32_t cause)
{
	uint64_t nw = cf_reg_failed(k + 1);

	record_failure(c, i, s, e, cf_reg_incident(nw), t_ns, cause);
	if (word_cas(c, cf_inst_off(c->map, i), w, nw) < 0)
		return 0;
	inst_set(c, i, nw);
	barrier_add(c, i);
	return nw;
}

/* DESIGN §4 failure processing of system s's current incarnation. */
static void fail_system(struct cf_core *c, uint32_t s, uint32_t cause)
{
	struct core_sys *cs = &c->sys[s];
	uint64_t t0 = cf_mono_ns(), t_ns = cf_real_ns(), w = sysword(c, s), iw;
	uint32_t e = cf_sysword_epoch(w), nfenced = 0, fence_us, failed[CF_MAX_INSTANCES_LIMIT], nfailed = 0;
	uint64_t neww[CF_MAX_INSTANCES_LIMIT];
	struct cf_sys_slot *slot = sys_slot(c, s);
	char sn[CF_NAME_MAX], in[CF_NAME_MAX];
	struct core_conn *cc;
	int r;

	if (cf_sysword_state(w) != CF_SYS_ACTIVE)
		return;
	sys_name(c, s, sn);
	cf_slog_info("failure: %s (system %u, epoch %u): %s; processing starts", sn, s, e, cause_str(cause));

	/* (1) fence: a barrier on every connection of the incarnation, grants dropped with it */
	while ((cc = cs->conns)) {
		sys_unlink(c, cc);
		if (cc->state == CS_SYSTEM)
			set_state(cc, CS_FENCED);
		cc->ngrants = 0;
		c->ops->fence(cc->sc);
		nfenced++;
	}
	cs->live = 0;
	cs->agent = NULL;
	fence_us = (uint32_t)((cf_mono_ns() - t0) / 1000u);
	c->metrics.fences += nfenced;
	c->metrics.failures[cause < CF_METRICS_CAUSES ? cause : CF_FAIL_NONE]++;
	cf_slog_info("failure: %s step 1: fenced %u connection(s) in %u us", sn, nfenced, fence_us);
	CF_FAULT("srv.between_fence_and_mark");

	/* (2) mark FAILED, same epoch (fields first, the word last) */
	slot->fail_ns = t_ns;
	slot->fail_cause = cause;
	persist(c, cf_sys_off(c->map, s), sizeof(*slot));
	r = word_cas(c, cf_sys_off(c->map, s), w, cf_sysword(CF_SYS_FAILED, e));
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
		bool by_holder = held_by(c, i, s, e);
		for (int tries = 0; tries < 8; tries++) {
			iw = regword(c, i);
			bool by_word = cf_reg_state(iw) == CF_REG_ACTIVE && cf_reg_owner(iw) == s && cf_reg_epoch(iw) == e;
			uint32_t k = by_holder ? c->inst[i].hinc : cf_reg_incident(iw);
			char desc[96];
			if (!by_holder && !by_word)
				break;
			if (!by_holder && c->inst[i].held) {
				restore_word(c, i, iw, "failure processing");
				break;
			}
			uint64_t nw = fail_inst(c, i, s, e, iw, k, t_ns, cause);
			if (nw) {
				failed[nfailed] = i;
				neww[nfailed++] = nw;
				reg_desc(c, iw, desc, sizeof(desc));
				if (by_word)
					cf_slog_info("failure: %s step 3: %s ACTIVE(%s, epoch %u, incident %u) -> "
						 "INACTIVE_FAILED(%u)",
						 sn, inst_name(c, i, in), sn, e, k, cf_reg_incident(nw));
				else
					cf_slog_warn("failure: %s step 3: %s, granted to %s (epoch %u, incident %u), was %s "
						 "(changed by a member): INACTIVE_FAILED(%u) all the same",
						 sn, inst_name(c, i, in), sn, e, k, desc, cf_reg_incident(nw));
				break;
			}
		}
	}
	if (!nfailed)
		cf_slog_info("failure: %s step 3: it owned no ACTIVE instance", sn);

	/* (4) events to every live system */
	struct cf_event ev = {.type = CF_EV_SYS_FAILED, .sys = s, .epoch = e, .inst = 0, .reg = 0,
			      .policy = load64(&hdr(c)->policy), .time_ns = t_ns, .cause = cause,
			      .fence_us = fence_us};
	event_all(c, &ev);
	for (uint32_t k = 0; k < nfailed; k++)
		inst_failed_event(c, failed[k], neww[k], s, e, t_ns, cause, fence_us);
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
static uint64_t orphan_check(struct cf_core *c, uint32_t i, uint64_t w, const char *ctx)
{
	const struct core_inst *ci = &c->inst[i];
	char in[CF_NAME_MAX], desc[96];
	uint32_t o = cf_reg_owner(w), oe = cf_reg_epoch(w), k = cf_reg_incident(w);
	const char *why;
	uint64_t nw;

	if (ci->held) {
		uint64_t hw = sysword(c, ci->hsys);
		if (cf_sysword_state(hw) == CF_SYS_ACTIVE && cf_sysword_epoch(hw) == ci->hepoch) {
			restore_word(c, i, w, ctx);
			return 0;
		}
		/* failure processing missed it (its word kept changing): the holder's failure is owed */
		o = ci->hsys;
		oe = ci->hepoch;
		k = ci->hinc;
	} else if (cf_reg_state(w) != CF_REG_ACTIVE) {
		restore_word(c, i, w, ctx);
		return 0;
	} else if (reg_legal(c, i, w, o, oe, &why) < 0) {
		/* not a registration the base allows, whoever it names: put back */
		restore_word(c, i, w, why);
		return 0;
	} else if (o < c->map->geo.max_systems && !cf_reg_owner_stale(w, sysword(c, o))) {
		/* registered by a live system, not attached yet */
		return 0;
	}
	nw = fail_inst(c, i, o, oe, w, k, cf_real_ns(), CF_FAIL_NONE);
	if (!nw)
		return 0;
	reg_desc(c, w, desc, sizeof(desc));
	cf_slog_warn("%s: %s was %s with a stale owner -> INACTIVE_FAILED(%u)", ctx, inst_name(c, i, in), desc,
		 cf_reg_incident(nw));
	inst_failed_event(c, i, nw, o, oe, cf_real_ns(), CF_FAIL_NONE, 0);
	return nw;
}

/*
 * Any instance whose holder (or, nobody holding it, whose ACTIVE word's owner)
 * is not ACTIVE with the same epoch becomes INACTIVE_FAILED(k+1); a word the
 * CF did not grant is put back.
 */
static void orphan_scan(struct cf_core *c)
{
	for (uint32_t i = 0; i < c->map->geo.max_instances; i++)
		orphan_check(c, i, regword(c, i), "orphan scan");
}

/* ---------------- handshake ---------------- */

/* Not authenticated yet: counts against the handshake budget, not --max-conns. */
static int conn_in_handshake(const struct core_conn *cc)
{
	return cc->state == CS_NEW || cc->state == CS_CHALLENGED;
}

/* Authenticated connections that are not going away: what --max-conns bounds. */
static unsigned conns_authenticated(const struct cf_core *c)
{
	unsigned n = 0;

	for (const struct core_conn *cc = c->conns; cc; cc = cc->next)
		n += cc->state == CS_AUTHED || cc->state == CS_SYSTEM || cc->state == CS_CONSOLE ||
		     cc->state == CS_MONITOR;
	return n;
}

/*
 * Room for the newcomer in the handshake budget: beyond HANDSHAKE_MAX the
 * oldest connection that has not even sent its HELLO is dropped, or if every
 * one has, the oldest. An honest client speaks at once, so a flood of silent
 * connections does not push it out. Dropped without linger (nothing to flush),
 * logged once per 100.
 */
static void handshake_budget(struct cf_core *c, struct core_conn *newcomer)
{
	struct core_conn *oldest = NULL, *oldest_silent = NULL, *v;
	unsigned n = 0;

	for (struct core_conn *cc = c->conns; cc; cc = cc->next) { /* newest first */
		if (cc == newcomer || !conn_in_handshake(cc))
			continue;
		n++;
		oldest = cc;
		if (cc->state == CS_NEW)
			oldest_silent = cc;
	}
	if (n < HANDSHAKE_MAX)
		return;
	v = oldest_silent ? oldest_silent : oldest;
	if (c->handshakes_dropped++ % 100 == 0)
		cf_slog_warn("conn %s: dropped in state %s: %u connections in the handshake (at most %u), the oldest "
			     "goes (%llu dropped so far)", v->peer, conn_state_str(v->state), n, HANDSHAKE_MAX,
			     (unsigned long long)c->handshakes_dropped);
	v->cause = CF_FAIL_NONE;
	set_state(v, CS_CLOSING);
	c->ops->fence(v->sc);
}

/* --max-conns counts authenticated connections; 0 or refused (cc is closing). */
static int conns_limit(struct core_conn *cc, uint64_t id)
{
	struct cf_core *c = cc->core;
	unsigned n = conns_authenticated(c);

	if (n < c->cfg.max_conns)
		return 0;
	cf_slog_warn("conn %s refused: %u authenticated connections open (max-conns %u)", cc->peer, n,
		     c->cfg.max_conns);
	refuse(cc, id, CF_FAIL_NONE, "too many connections");
	return -EUSERS;
}

/*
 * The key both MACs of a connection's handshake use: the monitor key for the
 * MONITOR role, the cluster key for every other. The role a client claims
 * only picks the key; a monitor key cannot open any other role, and the
 * cluster key cannot open a MONITOR connection (a console may read the
 * metrics anyway).
 */
static const uint8_t *role_key(const struct cf_core *c, uint32_t role)
{
	return role == CF_ROLE_MONITOR ? c->cfg.monitor_key : c->cfg.key;
}

static void on_hello(struct core_conn *cc, uint64_t id, const struct cf_hello *h)
{
	struct cf_core *c = cc->core;
	struct cf_challenge ch;
	char msg[120];
	unsigned lo, hi;

	if (h->magic != CF_HELLO_MAGIC) {
		cf_slog_warn("conn %s: bad HELLO magic %#x", cc->peer, h->magic);
		refuse(cc, id, CF_FAIL_PROTOCOL, "bad HELLO magic: not a cfplex client");
		return;
	}
	lo = h->version_min > CF_PROTO_VERSION_MIN ? h->version_min : CF_PROTO_VERSION_MIN;
	hi = h->version_max < CF_PROTO_VERSION_MAX ? h->version_max : CF_PROTO_VERSION_MAX;
	if (lo > hi) {
		snprintf(msg, sizeof(msg), "protocol version mismatch: client speaks %u..%u, server %u..%u",
			 h->version_min, h->version_max, CF_PROTO_VERSION_MIN, CF_PROTO_VERSION_MAX);
		cf_slog_warn("conn %s: %s", cc->peer, msg);
		refuse(cc, id, CF_FAIL_PROTOCOL, msg);
		return;
	}
	if (h->role != CF_ROLE_SYSTEM && h->role != CF_ROLE_CONSOLE && h->role != CF_ROLE_MONITOR) {
		cf_slog_warn("conn %s: unknown role %u", cc->peer, h->role);
		refuse(cc, id, CF_FAIL_PROTOCOL, "unknown role");
		return;
	}
	if (conns_limit(cc, id) < 0) /* early, with a reason; checked again at AUTH */
		return;
	if (h->role == CF_ROLE_MONITOR && !c->cfg.has_monitor_key) {
		cf_slog_warn("conn %s: monitor role refused: no --monitor-key configured", cc->peer);
		refuse(cc, id, CF_FAIL_NONE, "monitor role refused: this CF has no monitor key (cfserver --monitor-key)");
		return;
	}
	cc->version = (uint16_t)hi;
	cc->role = h->role;
	memcpy(cc->cnonce, h->client_nonce, CF_NONCE_LEN);
	cf_auth_nonce(cc->snonce);
	memset(&ch, 0, sizeof(ch));
	ch.version = cc->version;
	memcpy(ch.server_nonce, cc->snonce, CF_NONCE_LEN);
	cf_auth_mac_server(role_key(c, cc->role), cc->cnonce, cc->snonce, ch.mac);
	set_state(cc, CS_CHALLENGED);
	send_msg(cc, id, CF_CTRL_CHALLENGE, &ch, sizeof(ch));
}

/*
 * Frame integrity (cf_auth.h): from WELCOME on, every frame of this connection
 * carries a MAC under keys derived from the handshake; a backend without
 * frames of its own (verbs) has no set_frame_keys.
 */
static int set_frame_keys(struct core_conn *cc)
{
	struct cf_core *c = cc->core;
	uint8_t c2s[CF_KEY_LEN], s2c[CF_KEY_LEN];
	int r;

	if (!c->ops->set_frame_keys)
		return 0;
	cf_auth_frame_keys(role_key(c, cc->role), cc->cnonce, cc->snonce, cc->role, c2s, s2c);
	r = c->ops->set_frame_keys(cc->sc, s2c, c2s);
	sodium_memzero(c2s, sizeof(c2s));
	sodium_memzero(s2c, sizeof(s2c));
	return r;
}

static void on_auth(struct core_conn *cc, uint64_t id, const struct cf_auth *a)
{
	struct cf_core *c = cc->core;
	struct cf_header *h = hdr(c);
	uint8_t want[CF_MAC_LEN];
	struct cf_welcome w;
	struct cf_grants gs;
	int r;

	cf_auth_mac_client(role_key(c, cc->role), cc->snonce, cc->cnonce, cc->role, want);
	r = cf_auth_verify(want, a->mac);
	sodium_memzero(want, sizeof(want));
	if (r < 0) {
		cf_slog_warn("conn %s: authentication failed (wrong %s key)", cc->peer,
			 cc->role == CF_ROLE_MONITOR ? "monitor" : "cluster");
		refuse(cc, id, CF_FAIL_PROTOCOL, "authentication failed");
		return;
	}
	if (conns_limit(cc, id) < 0)
		return;
	r = set_frame_keys(cc);
	if (r < 0) {
		cf_slog_warn("conn %s: frame keys: %s: closing", cc->peer, strerror(-r));
		refuse(cc, id, CF_FAIL_PROTOCOL, "frame keys");
		return;
	}
	memset(&w, 0, sizeof(w));
	w.geo = c->map->geo;
	w.generation = load64(&h->generation);
	w.hb_interval_ns = c->cfg.hb_interval_ns;
	w.hb_timeout_ns = c->cfg.hb_timeout_ns;
	w.image_size = c->map->image_size;
	w.policy = load64(&h->policy);
	if (cc->role == CF_ROLE_MONITOR) {
		/* no grant: the metrics are all it may read (docs/design.md §7, "The monitor role") */
		set_state(cc, CS_MONITOR);
		send_msg(cc, id, CF_CTRL_WELCOME, &w, sizeof(w));
		cf_slog_debug("conn %s: monitor authenticated (protocol %u)", cc->peer, cc->version);
		return;
	}
	if (cc->role == CF_ROLE_CONSOLE) {
		/* one READ grant over header .. record lists: never the private logs (invariant 5) */
		set_state(cc, CS_CONSOLE);
		send_msg(cc, id, CF_CTRL_WELCOME, &w, sizeof(w));
		memset(&gs, 0, sizeof(gs));
		r = conn_grant(cc, CF_RGN_IMAGE, 0, 0, c->map->off_logs, CF_R_READ, &gs.g[0]);
		gs.status = r;
		gs.count = r < 0 ? 0 : 1;
		send_msg(cc, id, CF_CTRL_GRANTS, &gs, sizeof(gs));
		cf_slog_debug("conn %s: console authenticated (protocol %u)", cc->peer, cc->version);
		return;
	}
	set_state(cc, CS_AUTHED);
	send_msg(cc, id, CF_CTRL_WELCOME, &w, sizeof(w));
	cf_slog_debug("conn %s: system connection authenticated (protocol %u)", cc->peer, cc->version);
}

/* ---------------- membership ---------------- */

static int find_sys(struct cf_core *c, const char *name)
{
	char n[CF_NAME_MAX];
	int empty = -1;

	for (uint32_t s = 0; s < c->map->geo.max_systems; s++) {
		name_of(sys_slot(c, s)->name, n);
		if (!strcmp(n, name))
			return (int)s;
		if (!n[0] && empty < 0 && cf_sysword_state(sysword(c, s)) == CF_SYS_FREE)
			empty = (int)s;
	}
	return empty;
}

static void on_join(struct core_conn *cc, uint64_t id, const struct cf_join *j)
{
	struct cf_core *c = cc->core;
	char name[CF_NAME_MAX], host[CF_HOST_MAX];
	struct cf_joined jd;
	struct cf_sys_slot *slot;
	struct core_sys *cs;
	uint64_t w;
	uint32_t e;
	int s, r;

	name_of(j->name, name);
	memcpy(host, j->host, CF_HOST_MAX);
	host[CF_HOST_MAX - 1] = 0;
	if (cf_name_check(name) < 0) {
		send_status(cc, id, CF_CTRL_STATUS, -EINVAL, "bad system name: 1..15 chars of [A-Za-z0-9_.-]");
		return;
	}
	s = find_sys(c, name);
	if (s < 0) {
		cf_slog_warn("JOIN %s from %s refused: system table full (%u)", name, cc->peer, c->map->geo.max_systems);
		send_status(cc, id, CF_CTRL_STATUS, -ENOSPC, "system table full (max-systems %u)",
			    c->map->geo.max_systems);
		return;
	}
	cs = &c->sys[s];
	slot = sys_slot(c, (uint32_t)s);
	w = sysword(c, (uint32_t)s);
	if (cf_sysword_state(w) == CF_SYS_ACTIVE) {
		/* re-admission: the old incarnation is still ACTIVE; fail it first */
		cf_slog_info("JOIN %s from %s: old incarnation (epoch %u) still ACTIVE: failing it first", name,
			 cc->peer, cf_sysword_epoch(w));
		fail_system(c, (uint32_t)s, CF_FAIL_READMIT);
		w = sysword(c, (uint32_t)s);
	}
	e = (cf_sysword_epoch(w) + 1) & CF_EPOCH_MASK;
	if (!e)
		e = 1;
	/* the slot's plain fields first, the CAS-able state word last */
	slot->pid = j->pid;
	slot->starttime = j->starttime;
	slot->join_ns = cf_real_ns();
	slot->fail_ns = 0;
	slot->fail_cause = CF_FAIL_NONE;
	slot->wd_timeout_ms = 0; /* until this incarnation announces one (CF_CTRL_WATCHDOG) */
	memset(slot->name, 0, CF_NAME_MAX);
	memcpy(slot->name, name, strlen(name));
	memcpy(slot->host, host, CF_HOST_MAX);
	persist(c, cf_sys_off(c->map, (uint32_t)s), sizeof(*slot));
	r = word_cas(c, cf_sys_off(c->map, (uint32_t)s), w, cf_sysword(CF_SYS_ACTIVE, e));
	if (r < 0) {
		cf_slog_err("JOIN %s: system word changed under us", name);
		send_status(cc, id, CF_CTRL_STATUS, -EAGAIN, "system slot busy, retry");
		return;
	}
	cs->live = 1;
	cs->agent = cc;
	c->metrics.joins++;
	randombytes_buf(&cs->token, sizeof(cs->token));
	cs->hb_last = load64(&hb_slot(c, (uint32_t)s)->hb);
	/*
	 * A new incarnation still has to open its heartbeat connection and
	 * authenticate it before its first beat: one extra T of grace for that
	 * first beat only (a crash meanwhile is still seen at once: its JOIN
	 * connection closes).
	 */
	cs->hb_seen_ns = cf_mono_ns() + c->cfg.hb_timeout_ns;
	set_state(cc, CS_SYSTEM);
	sys_link(c, (uint32_t)s, cc);

	memset(&jd, 0, sizeof(jd));
	jd.sys = (uint32_t)s;
	jd.epoch = e;
	jd.token = cs->token;
	jd.flags = joined_flags(c);
	r = system_grants(cc, (uint32_t)s, &jd.grants);
	jd.status = r;
	jd.grants.status = r;
	send_msg(cc, id, CF_CTRL_JOINED, &jd, sizeof(jd));
	cf_slog_info("JOIN %s: system %d epoch %u from %s (host %s pid %llu)", name, s, e, cc->peer, host,
		 (unsigned long long)j->pid);
}

static void on_conn_attach(struct core_conn *cc, uint64_t id, const struct cf_conn_attach *a)
{
	struct cf_core *c = cc->core;
	struct cf_joined jd;
	uint64_t w;
	int r;

	if (a->sys >= c->map->geo.max_systems) {
		send_status(cc, id, CF_CTRL_STATUS, -EINVAL, "no system %u", a->sys);
		return;
	}
	w = sysword(c, a->sys);
	if (!c->sys[a->sys].live || cf_sysword_state(w) != CF_SYS_ACTIVE || cf_sysword_epoch(w) != a->epoch ||
	    sodium_memcmp(&c->sys[a->sys].token, &a->token, sizeof(a->token)) != 0) {
		cf_slog_warn("CONN_ATTACH from %s refused: system %u epoch %u is not a live incarnation", cc->peer,
			 a->sys, a->epoch);
		send_status(cc, id, CF_CTRL_STATUS, -EPERM, "system %u epoch %u is not a live incarnation", a->sys,
			    a->epoch);
		return;
	}
	set_state(cc, CS_SYSTEM);
	sys_link(c, a->sys, cc);
	memset(&jd, 0, sizeof(jd));
	jd.sys = a->sys;
	jd.epoch = a->epoch;
	jd.token = a->token;
	jd.flags = joined_flags(c);
	r = system_grants(cc, a->sys, &jd.grants);
	jd.status = r;
	jd.grants.status = r;
	send_msg(cc, id, CF_CTRL_JOINED, &jd, sizeof(jd));
	cf_slog_debug("CONN_ATTACH: %s is a further connection of system %u epoch %u", cc->peer, a->sys, a->epoch);
}

static int owns_active(struct cf_core *c, uint32_t s, uint32_t e)
{
	for (uint32_t i = 0; i < c->map->geo.max_instances; i++) {
		uint64_t w = regword(c, i);
		/* a word naming it counts unless the CF granted the instance to another (then a member wrote it) */
		if (held_by(c, i, s, e) || (!c->inst[i].held && cf_reg_state(w) == CF_REG_ACTIVE &&
					     cf_reg_owner(w) == s && cf_reg_epoch(w) == e))
			return 1;
	}
	return 0;
}

static void on_goodbye(struct core_conn *cc, uint64_t id)
{
	struct cf_core *c = cc->core;
	uint32_t s = (uint32_t)cc->sys;
	struct core_sys *cs = &c->sys[s];
	uint64_t w = sysword(c, s);
	uint32_t e = cf_sysword_epoch(w);
	char sn[CF_NAME_MAX];
	struct core_conn *o;

	sys_name(c, s, sn);
	if (owns_active(c, s, e)) {
		cf_slog_warn("GOODBYE from %s while it still owns ACTIVE instances: failure processing instead", sn);
		fail_system(c, s, CF_FAIL_CONN_LOST);
		return;
	}
	/* clean leave: every connection of the incarnation goes, without failure processing */
	while ((o = cs->conns)) {
		sys_unlink(c, o);
		if (o->state == CS_SYSTEM)
			set_state(o, CS_LEFT);
		o->ngrants = 0;
		if (o != cc)
			c->ops->fence(o->sc);
	}
	cs->live = 0;
	if (word_cas(c, cf_sys_off(c->map, s), w, cf_sysword(CF_SYS_FREE, e)) < 0)
		cf_slog_err("GOODBYE %s: system word changed under us", sn);
	send_status(cc, id, CF_CTRL_STATUS, 0, "goodbye %s", sn);
	c->ops->close(cc->sc);
	cf_slog_info("GOODBYE: %s (epoch %u) left cleanly", sn, e);
}

/* ---------------- instances ---------------- */

static int find_inst(struct cf_core *c, const char *name, int *empty)
{
	char n[CF_NAME_MAX];

	if (empty)
		*empty = -1;
	for (uint32_t i = 0; i < c->map->geo.max_instances; i++) {
		name_of(inst_slot(c, i)->name, n);
		if (n[0] && !strcmp(n, name))
			return (int)i;
		if (empty && *empty < 0 && !n[0] && regword(c, i) == 0)
			*empty = (int)i;
	}
	return -1;
}

static void on_inst_open(struct core_conn *cc, uint64_t id, const struct cf_inst_name *m)
{
	struct cf_core *c = cc->core;
	struct cf_inst_info info;
	struct cf_inst_slot *slot;
	char name[CF_NAME_MAX], sn[CF_NAME_MAX];
	int i, empty;

	name_of(m->name, name);
	if (cf_name_check(name) < 0) {
		send_status(cc, id, CF_CTRL_STATUS, -EINVAL, "bad instance name: 1..15 chars of [A-Za-z0-9_.-]");
		return;
	}
	i = find_inst(c, name, &empty);
	if (i < 0) {
		if (empty < 0) {
			cf_slog_warn("INST_OPEN %s by %s refused: instance table full", name, sys_name(c, (uint32_t)cc->sys, sn));
			send_status(cc, id, CF_CTRL_STATUS, -ENOSPC, "instance table full (max-instances %u)",
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
		persist(c, cf_inst_off(c->map, (uint32_t)i), sizeof(*slot));
		if (word_cas(c, cf_inst_off(c->map, (uint32_t)i), 0, cf_reg_clean(0)) < 0) {
			send_status(cc, id, CF_CTRL_STATUS, -EAGAIN, "instance slot busy, retry");
			return;
		}
		inst_set(c, (uint32_t)i, cf_reg_clean(0));
		cf_slog_info("INST_OPEN: created %s (index %d, home %s)", name, i, sys_name(c, (uint32_t)cc->sys, sn));
	}
	memset(&info, 0, sizeof(info));
	info.index = (uint32_t)i;
	info.home_sys = inst_slot(c, (uint32_t)i)->home_sys;
	info.reg = regword(c, (uint32_t)i);
	send_msg(cc, id, CF_CTRL_INST_INFO, &info, sizeof(info));
}

/*
 * May system s (epoch e) do op (INST_ATTACH, INST_UNREG) on instance i's
 * registration? The CF's record decides (struct core_inst); the word only
 * names a candidate. Returns the word to act on, or 0 (never a registration
 * word) once the request has been answered with a refusal.
 */
static uint64_t reg_request(struct cf_core *c, struct core_conn *cc, uint64_t id, const char *op, uint32_t i,
			    uint32_t s, uint32_t e)
{
	char sn[CF_NAME_MAX], in[CF_NAME_MAX], desc[96], ctx[64];
	const struct core_inst *ci;
	const char *why;
	uint64_t w;

	if (i >= c->map->geo.max_instances) {
		send_status(cc, id, CF_CTRL_STATUS, -EINVAL, "no instance %u", i);
		return 0;
	}
	ci = &c->inst[i];
	sys_name(c, s, sn);
	inst_name(c, i, in);
	w = regword(c, i);
	if (ci->held && !held_by(c, i, s, e)) {
		takeover_refused(c, cc, id, op, i, s, e, w);
		return 0;
	}
	if (ci->held) {
		/* its holder (again): the word goes back to what the CF granted if a member changed it */
		snprintf(ctx, sizeof(ctx), "%s by its holder", op);
		restore_word(c, i, w, ctx);
		w = regword(c, i);
		if (w != inst_expected(c, i)) {
			send_status(cc, id, CF_CTRL_STATUS, -EAGAIN, "%s changed during %s, retry", in, op);
			return 0;
		}
		return w;
	}
	if (cf_reg_state(w) != CF_REG_ACTIVE || cf_reg_owner(w) != s || cf_reg_epoch(w) != e) {
		reg_desc(c, w, desc, sizeof(desc));
		cf_slog_warn("%s %s by %s (epoch %u) refused: %s", op, in, sn, e, desc);
		send_status(cc, id, CF_CTRL_STATUS, -EACCES, "%s is %.72s: not registered to %s", in, desc, sn);
		return 0;
	}
	if (reg_legal(c, i, w, s, e, &why) < 0) {
		reg_desc(c, w, desc, sizeof(desc));
		cf_slog_warn("%s %s by %s (epoch %u) refused: %s: %s", op, in, sn, e, desc, why);
		send_status(cc, id, CF_CTRL_STATUS, -EACCES, "%s: %s", in, why);
		snprintf(ctx, sizeof(ctx), "%s of an illegal registration", op);
		restore_word(c, i, w, ctx);
		return 0;
	}
	return w;
}

static void on_inst_attach(struct core_conn *cc, uint64_t id, const struct cf_inst_ref *ref)
{
	struct cf_core *c = cc->core;
	uint32_t s = (uint32_t)cc->sys, e = cf_sysword_epoch(sysword(c, s)), i = ref->index;
	char sn[CF_NAME_MAX], in[CF_NAME_MAX];
	struct core_inst *ci;
	struct cf_grants gs;
	uint64_t w;
	int r;

	w = reg_request(c, cc, id, "INST_ATTACH", i, s, e);
	if (!w)
		return;
	ci = &c->inst[i];
	sys_name(c, s, sn);
	inst_name(c, i, in);
	if (c->rstate == CF_RESTART_RECOVERY && !(c->rpending & (1ull << i))) {
		/* new work during restart recovery: the node waits and retries (not an error) */
		cf_slog_info("INST_ATTACH %s by %s deferred: restart recovery, %d instance(s) left", in, sn,
			 __builtin_popcountll(c->rpending));
		send_status(cc, id, CF_CTRL_STATUS, CF_STATUS_RESTART_RECOVERY,
			    "CF restart recovery in progress: %d instances left", __builtin_popcountll(c->rpending));
		return;
	}
	/*
	 * The counterpart of fail_incident attaches: it says its disk fence of
	 * the failed owner holds. From here it may write before-images, so a
	 * death of it is its own failure to fence, not the old owner's. Durable
	 * before the grants go out (cf_layout.h, fail_open).
	 */
	if (open_failure(c, i, w))
		inst_slot(c, i)->fail_open = 0;
	/*
	 * Durable (and, duplexed, in the secondary's copy) before the grants go
	 * out, whatever the transport: over verbs the registration CAS was the
	 * NIC's and nobody persisted it, and a restart or a takeover that found
	 * INACTIVE_CLEAN here would never recover the log the grants let fill.
	 */
	persist(c, cf_inst_off(c->map, i), sizeof(struct cf_inst_slot));
	memset(&gs, 0, sizeof(gs));
	/* attached again (e.g. after a retry): old grants on this instance go, fresh ones come */
	for (uint32_t k = 0; k < cc->ngrants; k++)
		if ((cc->grants[k].region == CF_RGN_LOG || cc->grants[k].region == CF_RGN_RECORDS) &&
		    cc->grants[k].inst == i)
			goto fresh;
	goto grant;
fresh:
	revoke_inst(c, i);
grant:
	r = conn_grant(cc, CF_RGN_RECORDS, i, cf_rec_off(c->map, i), c->map->records_size,
		       CF_R_READ | CF_R_WRITE | CF_R_ATOMIC, &gs.g[0]);
	if (r == 0)
		r = conn_grant(cc, CF_RGN_LOG, i, cf_log_off(c->map, i), c->map->geo.log_size,
			       CF_R_READ | CF_R_WRITE, &gs.g[1]);
	if (r < 0) {
		send_status(cc, id, CF_CTRL_STATUS, r, "cannot grant: %s", strerror(-r));
		return;
	}
	gs.count = 2;
	ci->held = 1;
	ci->hsys = s;
	ci->hepoch = e;
	ci->hinc = cf_reg_incident(w);
	send_msg(cc, id, CF_CTRL_GRANTS, &gs, sizeof(gs));
	cf_slog_info("INST_ATTACH: %s may use the log and record list of %s (incident %u)", sn, in, cf_reg_incident(w));
}

/*
 * Zero every non-zero word of [off, off+len) through the transport's atomic
 * path (on verbs a CPU store is not atomic against the NIC's atomics). Nobody
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
			if (c->ops->local_cas(c->ts, p, w, 0, &old) == 0 && old == w) {
				n++;
				break;
			}
			if (tries == 3)
				(*missed)++;
		}
	}
	return n;
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
	uint64_t t0 = cf_mono_ns(), missed = 0, nl, nr;
	const struct cf_image_map *m = c->map;
	struct cf_event ev;

	nl = clear_words(c, m->off_locks, (uint64_t)m->geo.lock_entries * 8u, &missed);
	nr = clear_words(c, m->off_records, (uint64_t)m->geo.max_instances * m->records_size, &missed);
	persist(c, m->off_locks, m->off_logs - m->off_locks);
	if (missed)
		cf_slog_err("restart recovery: %llu word(s) changed while the lock table was cleared: BUG",
			(unsigned long long)missed);
	c->rstate = CF_RESTART_OPEN;
	cf_slog_info("restart recovery: done in %llu ms; cleared %llu lock word(s) and %llu record-list word(s) in "
		 "%llu us; the CF is open",
		 (unsigned long long)((cf_real_ns() - c->rsince_ns) / 1000000u), (unsigned long long)nl,
		 (unsigned long long)nr, (unsigned long long)((cf_mono_ns() - t0) / 1000u));
	memset(&ev, 0, sizeof(ev));
	ev.type = CF_EV_RESTART_DONE;
	ev.policy = load64(&hdr(c)->policy);
	ev.time_ns = cf_real_ns();
	event_all(c, &ev);
}

static void on_inst_unreg(struct core_conn *cc, uint64_t id, const struct cf_inst_ref *ref)
{
	struct cf_core *c = cc->core;
	uint32_t s = (uint32_t)cc->sys, e = cf_sysword_epoch(sysword(c, s)), i = ref->index;
	char sn[CF_NAME_MAX], in[CF_NAME_MAX];
	struct core_inst *ci;
	struct cf_event ev;
	uint64_t w, nw;

	w = reg_request(c, cc, id, "INST_UNREG", i, s, e);
	if (!w)
		return;
	ci = &c->inst[i];
	sys_name(c, s, sn);
	inst_name(c, i, in);
	/*
	 * A failed instance is freed only by the system that attached its log
	 * (and so backed it out). With the record open that is the fail_open
	 * rule (cf_layout.h); the CF's own record says it too, so a member that
	 * clears fail_open (inside everyone's atomic grant) does not bypass it.
	 */
	if (open_failure(c, i, w) || (!ci->held && cf_reg_state(ci->base) == CF_REG_FAILED)) {
		/* an honest counterpart attaches (after its fence) before it backs out and unregisters */
		cf_slog_warn("INST_UNREG %s by %s refused: the failed incarnation's log was never attached", in, sn);
		send_status(cc, id, CF_CTRL_STATUS, -EBUSY,
			    "%s not recovered: the log of incident %u was never attached (disk fence first)", in,
			    cf_reg_incident(w));
		return;
	}
	nw = cf_reg_clean(cf_reg_incident(w));
	if (word_cas(c, cf_inst_off(c->map, i), w, nw) < 0) {
		send_status(cc, id, CF_CTRL_STATUS, -EAGAIN, "%s changed during unregister, retry", in);
		return;
	}
	inst_set(c, i, nw);
	/* unregister revokes access to the log and record list, whoever holds it */
	revoke_inst(c, i);
	send_status(cc, id, CF_CTRL_STATUS, 0, "%s unregistered: INACTIVE_CLEAN(%u)", in, cf_reg_incident(nw));
	memset(&ev, 0, sizeof(ev));
	ev.type = CF_EV_INST_CLEAN;
	ev.sys = s;
	ev.epoch = e;
	ev.inst = i;
	ev.reg = nw;
	ev.policy = load64(&hdr(c)->policy);
	ev.time_ns = cf_real_ns();
	event_all(c, &ev);
	cf_slog_info("INST_UNREG: %s by %s: INACTIVE_CLEAN(%u), grants revoked", in, sn, cf_reg_incident(nw));
	if (c->rstate == CF_RESTART_RECOVERY && (c->rpending & (1ull << i))) {
		c->rpending &= ~(1ull << i);
		cf_slog_info("restart recovery: %s recovered, %d instance(s) left", in, __builtin_popcountll(c->rpending));
		if (!c->rpending)
			restart_done(c);
	}
}

/* ---------------- console ---------------- */

static void on_policy_set(struct core_conn *cc, uint64_t id, const struct cf_policy_msg *p)
{
	struct cf_core *c = cc->core;
	uint64_t old;
	struct cf_event ev;

	if (p->policy != CF_POLICY_AUTO && p->policy != CF_POLICY_OPERATOR) {
		send_status(cc, id, CF_CTRL_STATUS, -EINVAL, "unknown policy %u (auto = 0, operator = 1)", p->policy);
		return;
	}
	for (;;) {
		old = load64(&hdr(c)->policy);
		if (word_cas(c, offsetof(struct cf_header, policy), old, p->policy) == 0)
			break;
	}
	send_status(cc, id, CF_CTRL_STATUS, 0, "policy %s", p->policy == CF_POLICY_AUTO ? "auto" : "operator");
	memset(&ev, 0, sizeof(ev));
	ev.type = CF_EV_POLICY;
	ev.policy = p->policy;
	ev.time_ns = cf_real_ns();
	event_all(c, &ev);
	cf_slog_info("POLICY_SET from console %s: %s", cc->peer, p->policy == CF_POLICY_AUTO ? "auto" : "operator");
}

static void on_restart_info(struct core_conn *cc, uint64_t id)
{
	struct cf_core *c = cc->core;
	struct cf_restart_info ri;

	memset(&ri, 0, sizeof(ri));
	ri.state = c->rstate;
	ri.left = (uint32_t)__builtin_popcountll(c->rpending);
	ri.pending = c->rpending;
	ri.since_ns = c->rsince_ns;
	send_msg(cc, id, CF_CTRL_RESTART_INFO_R, &ri, sizeof(ri));
}

static void on_duplex_info(struct core_conn *cc, uint64_t id)
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
	send_msg(cc, id, CF_CTRL_DUPLEX_INFO_R, &di, sizeof(di));
}

static int live_sys(struct cf_core *c, uint32_t s)
{
	return s < c->map->geo.max_systems && c->sys[s].live && c->sys[s].agent &&
	       cf_sysword_state(sysword(c, s)) == CF_SYS_ACTIVE;
}

static void on_recover(struct core_conn *cc, uint64_t id, const struct cf_recover *m)
{
	struct cf_core *c = cc->core;
	char in[CF_NAME_MAX], on[CF_NAME_MAX], desc[96];
	struct cf_recover_r rr;
	struct cf_event ev;
	uint64_t w;
	int i, s = -1;

	name_of(m->inst, in);
	name_of(m->on, on);
	memset(&rr, 0, sizeof(rr));
	i = find_inst(c, in, NULL);
	if (i < 0) {
		rr.status = -ENOENT;
		snprintf(rr.msg, sizeof(rr.msg), "no instance named %s", in);
		goto reply;
	}
	/* a stale holder or owner, a word the CF did not grant: do the orphan scan's work now */
	orphan_check(c, (uint32_t)i, regword(c, (uint32_t)i), "RECOVER");
	w = regword(c, (uint32_t)i);
	if (cf_reg_state(w) != CF_REG_FAILED) {
		reg_desc(c, w, desc, sizeof(desc));
		rr.status = cf_reg_state(w) == CF_REG_ACTIVE ? -EBUSY : -EINVAL;
		snprintf(rr.msg, sizeof(rr.msg), "%s is %.72s: not failed, nothing to recover", in, desc);
		goto reply;
	}
	if (on[0]) {
		s = -1;
		for (uint32_t k = 0; k < c->map->geo.max_systems; k++) {
			char sn[CF_NAME_MAX];
			name_of(sys_slot(c, k)->name, sn);
			if (!strcmp(sn, on))
				s = (int)k;
		}
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
	memset(&ev, 0, sizeof(ev));
	ev.type = CF_EV_RECOVER;
	ev.sys = (uint32_t)s;
	ev.epoch = cf_sysword_epoch(sysword(c, (uint32_t)s));
	ev.inst = (uint32_t)i;
	ev.reg = w;
	ev.policy = load64(&hdr(c)->policy);
	ev.time_ns = cf_real_ns();
	send_msg(c->sys[s].agent, 0, CF_CTRL_EVENT, &ev, sizeof(ev));
	rr.status = 0;
	rr.sys = (uint32_t)s;
	snprintf(rr.msg, sizeof(rr.msg), "recovery of %s (incident %u) requested on %s", in, cf_reg_incident(w),
		 sys_name(c, (uint32_t)s, on));
reply:
	cf_slog_info("RECOVER %s from console %s: %s", in, cc->peer, rr.msg);
	send_msg(cc, id, CF_CTRL_RECOVER_R, &rr, sizeof(rr));
}

/* ---------------- PERSIST (cf_wire.h, cf_persist.h) ---------------- */

/*
 * gc made a batch durable: answer, in arrival order, every waiting PERSIST
 * whose batch is durable (a prefix of the queue: batches only grow). Those
 * that came while that batch was with the persister thread wait for theirs.
 */
static void persist_answer(void *arg)
{
	struct cf_core *c = arg;
	struct persist_wait *pw = &c->pw;
	uint64_t done = cf_persist_done(c->gc);
	size_t m = 0;

	while (m < pw->n && pw->q[m].batch <= done)
		m++;
	/* an answer may close a connection: persist_forget clears its entries in place */
	for (size_t i = 0; i < m; i++) {
		struct core_conn *cc = pw->q[i].cc;
		if (!cc)
			continue;
		pw->q[i].cc = NULL;
		cc->persist_waiting--;
		if (cc->state == CS_SYSTEM)
			send_status(cc, pw->q[i].id, CF_CTRL_STATUS, 0, "persisted");
	}
	if (m) {
		pw->groups++;
		if (m > pw->max_group)
			pw->max_group = m;
		memmove(pw->q, pw->q + m, (pw->n - m) * sizeof(*pw->q));
		pw->n -= m;
	}
}

/* A closing connection: its waiting PERSISTs are dropped unanswered. */
static void persist_forget(struct cf_core *c, struct core_conn *cc)
{
	struct persist_wait *pw = &c->pw;

	if (!cc->persist_waiting)
		return;
	for (size_t i = 0; i < pw->n; i++)
		if (pw->q[i].cc == cc)
			pw->q[i].cc = NULL;
	cc->persist_waiting = 0;
}

static int persist_wait(struct cf_core *c, struct core_conn *cc, uint64_t id)
{
	struct persist_wait *pw = &c->pw;

	if (pw->n == pw->cap) {
		size_t cap = pw->cap ? pw->cap * 2 : 16;
		struct persist_wait_req *q = realloc(pw->q, cap * sizeof(*q));
		if (!q)
			return -ENOMEM;
		pw->q = q;
		pw->cap = cap;
	}
	uint64_t b = cf_persist_batch(c->gc);
	if (pw->armed_batch != b) {
		int r = cf_persist_after(c->gc, persist_answer, c);
		if (r < 0)
			return r;
		pw->armed_batch = b;
	}
	pw->q[pw->n++] = (struct persist_wait_req){cc, id, b};
	cc->persist_waiting++;
	return 0;
}

static void on_persist(struct core_conn *cc, uint64_t id, const struct cf_persist_msg *p)
{
	struct cf_core *c = cc->core;
	uint64_t off = p->offset, len = p->length;
	int r;

	if (!len || off > c->map->image_size || len > c->map->image_size - off) {
		c->pw.refused++;
		send_status(cc, id, CF_CTRL_STATUS, -EINVAL, "PERSIST [%llu, +%llu): empty or outside the image",
			    (unsigned long long)off, (unsigned long long)len);
		return;
	}
	for (uint32_t k = 0; k < cc->ngrants; k++) {
		const struct cgrant *g = &cc->grants[k];
		if ((g->rights & CF_R_WRITE) && off >= g->off && off - g->off <= g->len && len <= g->len - (off - g->off))
			goto granted;
	}
	c->pw.refused++;
	send_status(cc, id, CF_CTRL_STATUS, -EINVAL, "PERSIST [%llu, +%llu): not inside a write grant of this connection",
		    (unsigned long long)off, (unsigned long long)len);
	return;
granted:
	if (!c->gc) {
		send_status(cc, id, CF_CTRL_STATUS, 0, "volatile CF: nothing to persist");
		return;
	}
	c->pw.requests++;
	cf_persist_add(c->gc, off, len); /* -ENOMEM: persisted at once */
	r = persist_wait(c, cc, id);
	if (r < 0) { /* out of memory: commit now and answer */
		cf_persist_commit(c->gc);
		send_status(cc, id, CF_CTRL_STATUS, 0, "persisted");
	}
}

/*
 * Fencing across hosts (issue 16): the watchdog a system announces, and the
 * operator's ways out of a recovery that waits on its disk fence.
 */
static void on_watchdog(struct core_conn *cc, uint64_t id, const struct cf_watchdog_msg *m)
{
	struct cf_core *c = cc->core;
	struct cf_sys_slot *slot;
	char sn[CF_NAME_MAX];

	if (cc->sys < 0 || c->sys[cc->sys].agent != cc) {
		send_status(cc, id, CF_CTRL_STATUS, -EPERM, "a watchdog is announced on the JOIN connection");
		return;
	}
	if (m->timeout_ms > CF_WD_TIMEOUT_MAX_MS || m->pad) {
		send_status(cc, id, CF_CTRL_STATUS, -EINVAL, "watchdog timeout %u ms out of range (0..%u)",
			    m->timeout_ms, CF_WD_TIMEOUT_MAX_MS);
		return;
	}
	slot = sys_slot(c, (uint32_t)cc->sys);
	slot->wd_timeout_ms = m->timeout_ms;
	persist(c, cf_sys_off(c->map, (uint32_t)cc->sys), sizeof(*slot));
	cf_slog_info("%s announces a watchdog of %u ms", sys_name(c, (uint32_t)cc->sys, sn), m->timeout_ms);
	send_status(cc, id, CF_CTRL_STATUS, 0, "watchdog %u ms recorded", m->timeout_ms);
}

/*
 * Node-side detection (docs/design.md, "Who detects"): a system read a peer's
 * heartbeat slot one-sided and saw it stand still for its lease timeout. The
 * CF does not take its word for it: it runs its sweep now (fed at the lowest
 * priority, so the input of this iteration - a late heartbeat included -
 * executes first, and a stall of this loop is not counted), which declares
 * the peer failed only if the CF's own clock agrees. The answer says what
 * the CF saw; the declaration, if any, reaches everybody as an event.
 */
static void on_suspect(struct core_conn *cc, uint64_t id, const struct cf_suspect *m)
{
	struct cf_core *c = cc->core;
	struct core_sys *cs;
	char sn[CF_NAME_MAX], tn[CF_NAME_MAX];
	uint64_t w, now = cf_mono_ns(), age;

	if (cc->sys < 0 || c->sys[cc->sys].agent != cc) {
		send_status(cc, id, CF_CTRL_STATUS, -EPERM, "a suspicion is reported on the JOIN connection");
		return;
	}
	if (m->sys >= c->map->geo.max_systems || m->sys == (uint32_t)cc->sys || m->epoch > CF_EPOCH_MASK) {
		send_status(cc, id, CF_CTRL_STATUS, -EINVAL, "SUSPECT of system %u epoch %u: not another system",
			    m->sys, m->epoch);
		return;
	}
	c->suspects++;
	cs = &c->sys[m->sys];
	w = sysword(c, m->sys);
	sys_name(c, (uint32_t)cc->sys, sn);
	sys_name(c, m->sys, tn);
	if (!cs->live || cf_sysword_state(w) != CF_SYS_ACTIVE || cf_sysword_epoch(w) != m->epoch) {
		send_status(cc, id, CF_CTRL_STATUS, -ESTALE, "%s epoch %u is not active here (already failed or left)",
			    tn, m->epoch);
		return;
	}
	age = now > cs->hb_seen_ns ? now - cs->hb_seen_ns : 0;
	if (!cs->suspected_by)
		cs->suspected_by = cc->sys + 1;
	cf_slog_info("SUSPECT from %s: %s heartbeat %llu silent for %llu ms by its clock; here %llu ms since it moved "
		 "(T = %llu ms): sweeping now", sn, tn, (unsigned long long)m->hb, (unsigned long long)m->silent_ms,
		 (unsigned long long)(age / 1000000u), (unsigned long long)(c->cfg.hb_timeout_ns / 1000000u));
	ev_feed_event(c->loop, &c->sweep, EV_TIMER);
	send_status(cc, id, CF_CTRL_STATUS, 0, "%s: heartbeat last moved %llu ms ago here (T = %llu ms): swept now",
		    tn, (unsigned long long)(age / 1000000u), (unsigned long long)(c->cfg.hb_timeout_ns / 1000000u));
}

static int sys_by_name(struct cf_core *c, const char *name)
{
	for (uint32_t k = 0; k < c->map->geo.max_systems; k++) {
		char sn[CF_NAME_MAX];
		name_of(sys_slot(c, k)->name, sn);
		if (sn[0] && !strcmp(sn, name))
			return (int)k;
	}
	return -1;
}

/*
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

static void on_fence_confirm(struct core_conn *cc, uint64_t id, const struct cf_fence_confirm *m)
{
	struct cf_core *c = cc->core;
	char sn[CF_NAME_MAX], in[CF_NAME_MAX], on[CF_NAME_MAX];
	struct cf_recover_r rr;
	struct cf_event ev;
	uint32_t n = 0, o;
	int s, k = 0;

	name_of(m->sys, sn);
	memset(&rr, 0, sizeof(rr));
	if (cf_name_check(sn) < 0) {
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
		memset(&ev, 0, sizeof(ev));
		ev.type = CF_EV_FENCE_CONFIRM;
		ev.sys = (uint32_t)s;
		ev.epoch = inst_slot(c, i)->fail_epoch;
		ev.inst = i;
		ev.reg = regword(c, i);
		ev.time_ns = cf_real_ns();
		send_msg(c->sys[o].agent, 0, CF_CTRL_EVENT, &ev, sizeof(ev));
		if (!n++) {
			rr.sys = o;
			k = snprintf(rr.msg, sizeof(rr.msg), "fence of %s confirmed by the operator:", sn);
		}
		if (k > 0 && (size_t)k < sizeof(rr.msg))
			k += snprintf(rr.msg + k, sizeof(rr.msg) - (size_t)k, " %s (counterpart %s)", inst_name(c, i, in),
				      sys_name(c, o, on));
	}
	if (!n) {
		rr.status = -ESRCH;
		snprintf(rr.msg, sizeof(rr.msg), "no recovery waits on a fence of %s", sn);
	}
reply:
	cf_slog_info("FENCE_CONFIRM %s from console %s: %s", sn, cc->peer, rr.msg);
	send_msg(cc, id, CF_CTRL_RECOVER_R, &rr, sizeof(rr));
}

/*
 * cfctl recover INST --retry: a recovery that waits on its fence is told to
 * try its fence agent again now; a failed instance (nobody registered, or
 * the counterpart gave up and died) is offered again like `recover`, even to
 * a system that already tried this incident.
 */
static void on_recover_retry(struct core_conn *cc, uint64_t id, const struct cf_recover *m)
{
	struct cf_core *c = cc->core;
	char in[CF_NAME_MAX], on[CF_NAME_MAX], desc[96];
	struct cf_recover_r rr;
	struct cf_event ev;
	uint32_t o;
	int i;

	name_of(m->inst, in);
	memset(&rr, 0, sizeof(rr));
	i = find_inst(c, in, NULL);
	if (i < 0) {
		rr.status = -ENOENT;
		snprintf(rr.msg, sizeof(rr.msg), "no instance named %s", in);
		goto reply;
	}
	if (waits_on_fence(c, (uint32_t)i, &o)) {
		name_of(m->on, on);
		if (on[0] && sys_by_name(c, on) != (int)o) {
			rr.status = -EBUSY;
			snprintf(rr.msg, sizeof(rr.msg), "%s waits on its fence at its counterpart %s, not %s", in,
				 sys_name(c, o, desc), on);
			goto reply;
		}
		memset(&ev, 0, sizeof(ev));
		ev.type = CF_EV_FENCE_RETRY;
		ev.sys = o;
		ev.inst = (uint32_t)i;
		ev.reg = regword(c, (uint32_t)i);
		ev.time_ns = cf_real_ns();
		send_msg(c->sys[o].agent, 0, CF_CTRL_EVENT, &ev, sizeof(ev));
		rr.sys = o;
		snprintf(rr.msg, sizeof(rr.msg), "%s's counterpart %s asked to retry its fence now", in,
			 sys_name(c, o, on));
		goto reply;
	}
	on_recover(cc, id, m);
	return;
reply:
	cf_slog_info("RECOVER --retry %s from console %s: %s", in, cc->peer, rr.msg);
	send_msg(cc, id, CF_CTRL_RECOVER_R, &rr, sizeof(rr));
}

/* ---------------- metrics (cf_metrics.h) ---------------- */

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
	v->restored = c->restored;
	v->suspects = c->suspects;
	v->suspects_declared = c->suspects_declared;
	v->persist_requests = c->pw.requests;
	v->persist_refused = c->pw.refused;
	v->persist_groups = c->pw.groups;
	v->persist_max_group = c->pw.max_group;
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
static void on_metrics(struct core_conn *cc, uint64_t id, const struct cf_metrics_req *q)
{
	struct cf_metrics_r r;

	cf_metrics_answer(&cc->core->metrics, q, metrics_fill, cc->core, &r);
	if (r.status < 0 && r.status != -ESTALE)
		cf_slog_warn("conn %s: METRICS refused: %s", cc->peer, strerror(-r.status));
	send_msg(cc, id, CF_CTRL_METRICS_R, &r, sizeof(r));
}

/*
 * Anything but METRICS on a monitor connection: refused with a STATUS that
 * says why, then closed. The CF decides by the connection's state, set from
 * the key that authenticated it, never by anything the client says.
 */
static void monitor_refused(struct core_conn *cc, uint64_t id, uint16_t type)
{
	cc->core->metrics.monitor_refused++;
	cf_slog_warn("conn %s: monitor sent %s: refused, closing (a monitor may only request METRICS)", cc->peer,
		 cf_ctrl_type_str(type));
	send_status(cc, id, CF_CTRL_STATUS, -EPERM,
		    "%s refused: a monitor connection may only request metrics; closing", cf_ctrl_type_str(type));
	cc->cause = CF_FAIL_NONE;
	set_state(cc, CS_CLOSING);
	cc->core->ops->close(cc->sc);
}

/* ---------------- transport callbacks ---------------- */

static void cb_accept(void *arg, struct cf_sconn *sc)
{
	struct cf_core *c = arg;
	struct core_conn *cc = calloc(1, sizeof(*cc));

	if (!cc) {
		cf_slog_err("out of memory for a connection");
		c->ops->fence(sc);
		return;
	}
	cc->core = c;
	cc->sc = sc;
	cc->state = CS_NEW;
	cc->sys = -1;
	cc->accepted_ns = cf_mono_ns();
	snprintf(cc->peer, sizeof(cc->peer), "%s", c->ops->peer(sc));
	cc->next = c->conns;
	if (c->conns)
		c->conns->prev = cc;
	c->conns = cc;
	c->nconns++;
	c->ops->set_data(sc, cc);
	handshake_budget(c, cc); /* --max-conns is checked once it has authenticated */
	cf_slog_debug("conn %s: accepted", cc->peer);
}

static void cb_close(void *arg, struct cf_sconn *sc, int err)
{
	struct cf_core *c = arg;
	struct core_conn *cc = c->ops->get_data(sc);
	char sn[CF_NAME_MAX];

	if (!cc)
		return;
	persist_forget(c, cc);
	if (cc->state == CS_SYSTEM && !c->shutting_down) {
		uint32_t s = (uint32_t)cc->sys;
		sys_unlink(c, cc);
		cf_slog_info("conn %s of %s closed without goodbye (%s)", cc->peer, sys_name(c, s, sn),
			 err ? strerror(-err) : "EOF");
		/* -EBADMSG: the transport refused a frame (malformed, or its MAC): the peer's protocol error */
		fail_system(c, s, cc->cause ? cc->cause : err == -EBADMSG ? CF_FAIL_PROTOCOL : CF_FAIL_CONN_LOST);
	} else if (cc->on_sys) {
		uint32_t s = (uint32_t)cc->sys;
		sys_unlink(c, cc);
		if (cc->state == CS_CLOSING && !c->shutting_down)
			fail_system(c, s, cc->cause ? cc->cause : CF_FAIL_PROTOCOL);
	}
	cf_slog_debug("conn %s: closed in state %s", cc->peer, conn_state_str(cc->state));
	if (cc->prev)
		cc->prev->next = cc->next;
	else
		c->conns = cc->next;
	if (cc->next)
		cc->next->prev = cc->prev;
	c->nconns--;
	free(cc);
}

static void cb_ctrl(void *arg, struct cf_sconn *sc, uint64_t id, const void *msg, size_t len)
{
	struct cf_core *c = arg;
	struct core_conn *cc = c->ops->get_data(sc);
	const struct cf_ctrl_hdr *h = msg;
	const void *body = (const uint8_t *)msg + sizeof(*h);
	char m[120];
	uint16_t type;

	if (!cc || cc->state == CS_CLOSING || cc->state == CS_FENCED || cc->state == CS_LEFT)
		return;
	if (len >= sizeof(*h) && h->len == len && !cf_ctrl_body_size(h->type) &&
	    (cc->state == CS_AUTHED || cc->state == CS_SYSTEM || cc->state == CS_CONSOLE)) {
		/*
		 * A well-formed message of a type this CF does not know, from an
		 * authenticated peer (a newer client): say so and go on. Before the
		 * handshake ends anything but the handshake closes the connection.
		 */
		cf_slog_debug("conn %s: unknown control message type %u: ENOSYS", cc->peer, h->type);
		send_status(cc, id, CF_CTRL_STATUS, -ENOSYS, "unknown control message type %u", h->type);
		return;
	}
	if (cf_ctrl_check(msg, len) < 0) {
		cf_slog_warn("conn %s: malformed control message (%zu bytes, %s): closing", cc->peer, len,
			 cf_corrupt_where());
		refuse(cc, id, CF_FAIL_PROTOCOL, "malformed control message");
		return;
	}
	type = h->type;
	/*
	 * Answer a waiting PERSIST of this connection before anything later of
	 * it: commit now (the group is cut short, the reply order is kept).
	 */
	if (cc->persist_waiting)
		cf_persist_commit(c->gc);
	switch (cc->state) {
	case CS_NEW:
		if (type == CF_CTRL_HELLO)
			return on_hello(cc, id, body);
		break;
	case CS_CHALLENGED:
		if (type == CF_CTRL_AUTH)
			return on_auth(cc, id, body);
		break;
	case CS_AUTHED:
		if (type == CF_CTRL_JOIN)
			return on_join(cc, id, body);
		if (type == CF_CTRL_CONN_ATTACH)
			return on_conn_attach(cc, id, body);
		break;
	case CS_SYSTEM:
		switch (type) {
		case CF_CTRL_INST_OPEN: return on_inst_open(cc, id, body);
		case CF_CTRL_INST_ATTACH: return on_inst_attach(cc, id, body);
		case CF_CTRL_INST_UNREG: return on_inst_unreg(cc, id, body);
		case CF_CTRL_GOODBYE: return on_goodbye(cc, id);
		case CF_CTRL_PERSIST: return on_persist(cc, id, body);
		case CF_CTRL_WATCHDOG: return on_watchdog(cc, id, body);
		case CF_CTRL_SUSPECT: return on_suspect(cc, id, body);
		}
		break;
	case CS_CONSOLE:
		switch (type) {
		case CF_CTRL_POLICY_SET: return on_policy_set(cc, id, body);
		case CF_CTRL_RECOVER: return on_recover(cc, id, body);
		case CF_CTRL_FENCE_CONFIRM: return on_fence_confirm(cc, id, body);
		case CF_CTRL_RECOVER_RETRY: return on_recover_retry(cc, id, body);
		case CF_CTRL_RESTART_INFO: return on_restart_info(cc, id);
		case CF_CTRL_DUPLEX_INFO: return on_duplex_info(cc, id);
		case CF_CTRL_METRICS: return on_metrics(cc, id, body);
		}
		break;
	case CS_MONITOR:
		if (type == CF_CTRL_METRICS)
			return on_metrics(cc, id, body);
		return monitor_refused(cc, id, type);
	default:
		return;
	}
	snprintf(m, sizeof(m), "unexpected %s in connection state %s", cf_ctrl_type_str(type),
		 conn_state_str(cc->state));
	cf_slog_warn("conn %s: %s: closing", cc->peer, m);
	refuse(cc, id, CF_FAIL_PROTOCOL, m);
}

static void cb_persist(void *arg, uint64_t off, uint64_t len)
{
	image_persist(arg, off, len);
}

/*
 * Which client writes must be durable before they are acknowledged (see
 * docs/design.md, "Durability"): the logs, the instance and recovery-info
 * slots. Not the heartbeat slots: a restart fails every system that was ACTIVE
 * whatever its heartbeat said. Not the lock table and the record lists: a
 * restart does not read them as truth (restart_barrier: the instances failed
 * at the restart are recovered from their durable logs while nobody may lock,
 * then both are cleared).
 */
static int cb_durable(void *arg, uint64_t off, uint64_t len)
{
	struct cf_core *c = arg;

	if (off >= c->map->off_heartbeats && off + len <= c->map->off_instances)
		return 0;
	if (off >= c->map->off_locks && off + len <= c->map->off_logs)
		return 0;
	return 1;
}

/* ---------------- timers ---------------- */

static void sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct cf_core *c = w->data;
	uint64_t now = cf_mono_ns(), hb;
	char sn[CF_NAME_MAX];
	/*
	 * If this loop itself did not run for a while (no CPU, a long batch),
	 * heartbeats may have been sitting unread in socket buffers: silence
	 * across our own stall is not the systems' silence. The stall (beyond
	 * one sweep period) is not counted in anyone's heartbeat age. (The sweep
	 * runs at the lowest priority, so pending input of this iteration has
	 * been executed before it looks.) It used to restart every age at now,
	 * which gave a frozen system up to one more T whenever the loop stalled
	 * (SIGSTOP failover p99 98 ms at T = 50); only the stall is owed.
	 */
	uint64_t gap = c->last_sweep_ns ? now - c->last_sweep_ns : 0, credit = 0;

	if (gap > c->cfg.hb_timeout_ns / 4) {
		credit = gap > c->sweep_period_ns ? gap - c->sweep_period_ns : 0;
		cf_slog_debug("sweep: loop stalled %llu us: not counted in heartbeat ages",
			  (unsigned long long)(gap / 1000u));
	}
	c->last_sweep_ns = now;
	for (uint32_t s = 0; s < c->map->geo.max_systems; s++) {
		struct core_sys *cs = &c->sys[s];
		if (!cs->live)
			continue;
		hb = load64(&hb_slot(c, s)->hb);
		if (hb != cs->hb_last) {
			cs->hb_last = hb;
			cs->hb_seen_ns = now;
			cs->suspected_by = 0;
			continue;
		}
		/* a first-beat grace may put hb_seen_ns in the future: leave it */
		if (credit && cs->hb_seen_ns < now)
			cs->hb_seen_ns = now - cs->hb_seen_ns > credit ? cs->hb_seen_ns + credit : now;
		if (now > cs->hb_seen_ns && now - cs->hb_seen_ns > c->cfg.hb_timeout_ns) {
			char by[CF_NAME_MAX] = "";
			if (cs->suspected_by) {
				sys_name(c, (uint32_t)cs->suspected_by - 1, by);
				c->suspects_declared++;
			}
			cf_slog_info("sweep: %s heartbeat unchanged for %llu ms (T = %llu ms)%s%s", sys_name(c, s, sn),
				 (unsigned long long)((now - cs->hb_seen_ns) / 1000000u),
				 (unsigned long long)(c->cfg.hb_timeout_ns / 1000000u),
				 cs->suspected_by ? ": run at once on a SUSPECT from " : "", by);
			CF_FAULT("srv.mid_sweep");
			fail_system(c, s, CF_FAIL_HB_TIMEOUT);
		}
	}
	/* limit on what an unauthenticated peer holds: a bounded handshake */
	for (struct core_conn *cc = c->conns; cc; cc = cc->next) {
		if ((cc->state == CS_NEW || cc->state == CS_CHALLENGED || cc->state == CS_AUTHED) &&
		    now - cc->accepted_ns > HANDSHAKE_TIMEOUT_NS) {
			cf_slog_warn("conn %s: handshake not finished in %llu s: closing", cc->peer,
				 (unsigned long long)(HANDSHAKE_TIMEOUT_NS / 1000000000ull));
			refuse(cc, 0, CF_FAIL_NONE, "handshake timeout");
		}
	}
}

static void orphan_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	orphan_scan(w->data);
}

/* ---------------- lifecycle ---------------- */

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
static void restart_barrier(struct cf_core *c)
{
	const struct cf_image_map *m = c->map;
	char in[CF_NAME_MAX];
	uint64_t nl = 0, nr = 0;

	c->rpending = 0;
	for (uint32_t i = 0; i < m->geo.max_instances; i++) {
		uint32_t st = cf_reg_state(inst_slot(c, i)->reg);
		if (st == CF_REG_FAILED || st == CF_REG_ACTIVE) {
			c->rpending |= 1ull << i;
			cf_slog_info("restart recovery: %s must be recovered from its log", inst_name(c, i, in));
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
	for (uint64_t *w = (uint64_t *)(c->base + m->off_locks), *e = w + m->geo.lock_entries; w < e; w++)
		if (*w) {
			*w = 0;
			nl++;
		}
	for (uint64_t *w = (uint64_t *)(c->base + m->off_records),
		      *e = (uint64_t *)(c->base + m->off_records + (uint64_t)m->geo.max_instances * m->records_size);
	     w < e; w++)
		if (*w) {
			*w = 0;
			nr++;
		}
	if (nl || nr) {
		persist(c, m->off_locks, m->off_logs - m->off_locks);
		cf_slog_info("restart: no instance to recover; cleared %llu stale lock word(s) and %llu record-list "
			 "word(s)",
			 (unsigned long long)nl, (unsigned long long)nr);
	}
}

/*
 * Before the listener opens: nothing can reach the image, so plain stores are
 * safe here. Systems left ACTIVE by a previous run died with its connections.
 */
static void take_over_image(struct cf_core *c)
{
	struct cf_header *h = hdr(c);
	char sn[CF_NAME_MAX], in[CF_NAME_MAX];
	uint64_t now = cf_real_ns();

	h->generation++;
	persist(c, 0, sizeof(*h));
	cf_slog_info("image generation %llu", (unsigned long long)h->generation);
	for (uint32_t s = 0; s < c->map->geo.max_systems; s++) {
		struct cf_sys_slot *slot = sys_slot(c, s);
		uint64_t w = slot->state;
		uint32_t e = cf_sysword_epoch(w);
		if (cf_sysword_state(w) != CF_SYS_ACTIVE)
			continue;
		slot->fail_ns = now;
		slot->fail_cause = CF_FAIL_CONN_LOST;
		slot->state = cf_sysword(CF_SYS_FAILED, e);
		persist(c, cf_sys_off(c->map, s), sizeof(*slot));
		cf_slog_info("restart: %s (epoch %u) was ACTIVE in the previous run: FAILED", sys_name(c, s, sn), e);
		for (uint32_t i = 0; i < c->map->geo.max_instances; i++) {
			struct cf_inst_slot *is = inst_slot(c, i);
			uint64_t iw = is->reg;
			if (cf_reg_state(iw) == CF_REG_ACTIVE && cf_reg_owner(iw) == s && cf_reg_epoch(iw) == e) {
				record_failure(c, i, s, e, cf_reg_incident(iw) + 1, now, CF_FAIL_CONN_LOST);
				is->reg = cf_reg_failed(cf_reg_incident(iw) + 1);
				persist(c, cf_inst_off(c->map, i), sizeof(*is));
				cf_slog_info("restart: %s -> INACTIVE_FAILED(%u)", inst_name(c, i, in),
					 cf_reg_incident(iw) + 1);
			}
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
		if (cf_reg_state(iw) == CF_REG_ACTIVE) {
			record_failure(c, i, cf_reg_owner(iw), cf_reg_epoch(iw), cf_reg_incident(iw) + 1, now,
				       CF_FAIL_NONE);
			is->reg = cf_reg_failed(cf_reg_incident(iw) + 1);
			persist(c, cf_inst_off(c->map, i), sizeof(*is));
			cf_slog_warn("restart: %s had a stale owner (%s, epoch %u) -> INACTIVE_FAILED(%u)",
				 inst_name(c, i, in), sys_name(c, cf_reg_owner(iw), sn), cf_reg_epoch(iw),
				 cf_reg_incident(iw) + 1);
		}
		inst_set(c, i, is->reg);
	}
	restart_barrier(c);
}

int cf_core_new(struct ev_loop *loop, const struct cf_server_ops *ops, struct cf_image *im,
		const struct cf_core_cfg *cfg, struct cf_core **out)
{
	struct cf_core *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->ops = ops;
	c->im = im;
	c->cfg = *cfg;
	c->map = &im->map;
	c->base = im->base;
	cf_metrics_init(&c->metrics);
	take_over_image(c);
	*out = c;
	return 0;
}

int cf_core_listen(struct cf_core *c, const char *addr)
{
	struct cf_server_cbs cbs = {.arg = c, .on_accept = cb_accept, .on_ctrl = cb_ctrl, .on_close = cb_close,
				    .durable = cb_durable};
	double sweep = (double)c->cfg.hb_interval_ns / 2e9, orphan = (double)c->cfg.hb_timeout_ns / 1e9;
	uint64_t gran = cf_image_persist_gran(c->im);
	int r;

	if (c->dx) {
		/*
		 * Duplexed: a batch is durable once the secondary has it too (and
		 * this medium, if it persists). The round trip to the other CF is
		 * never made in the loop: always the thread. A DRAM image gets a
		 * group commit whose local persist does nothing.
		 */
		r = cf_persist_new(c->loop, gran ? gran : CF_PAGE, CF_PERSIST_THREAD | CF_PERSIST_ANY_GRAN, cb_persist, c,
				   &c->gc);
		if (r < 0)
			return r;
		cf_duplex_attach_persist(c->dx, c->gc);
		cbs.gc = c->gc;
		cf_slog_info("group commit: duplexed: every batch is shipped to the secondary and acknowledged by it%s",
			 gran ? ", and persisted here" : "");
	} else if (gran) {
		/* msync blocks for a device flush: in a thread, while the loop serves the rest */
		r = cf_persist_new(c->loop, gran, gran >= CF_PAGE ? CF_PERSIST_THREAD | CF_PERSIST_ADAPTIVE : 0, cb_persist, c, &c->gc);
		if (r < 0)
			return r;
		cbs.gc = c->gc;
		cf_slog_info("group commit: %s (%s, %llu-byte granularity)",
			 gran >= CF_PAGE ? "one persist at a time in a persister thread while persists are slow, batching what arrives meanwhile"
					 : "one persist per loop iteration",
			 gran >= CF_PAGE ? "msync" : "CPU cache flushes", (unsigned long long)gran);
	}
	r = c->ops->listen(c->loop, addr, c->base, c->map->image_size, &cbs, &c->ts);
	if (r < 0)
		return r;
	if (c->cfg.sweep_ns)
		sweep = (double)c->cfg.sweep_ns / 1e9;
	if (sweep < 0.0005)
		sweep = 0.0005;
	c->sweep_period_ns = (uint64_t)(sweep * 1e9);
	ev_timer_init(&c->sweep, sweep_cb, sweep, sweep);
	ev_set_priority(&c->sweep, EV_MINPRI);
	c->sweep.data = c;
	ev_timer_start(c->loop, &c->sweep);
	ev_timer_init(&c->orphan, orphan_cb, orphan, orphan);
	c->orphan.data = c;
	ev_timer_start(c->loop, &c->orphan);
	return 0;
}

void cf_core_set_duplex(struct cf_core *c, struct cf_duplex *dx)
{
	c->dx = dx;
}

int cf_core_port(struct cf_core *c)
{
	return c->ts ? c->ops->port(c->ts) : -ENOTCONN;
}

void cf_core_free(struct cf_core *c)
{
	if (!c)
		return;
	c->shutting_down = 1;
	/* the PERSIST figures only; what they cost is in the "group commit" line */
	if (c->pw.requests || c->pw.refused)
		cf_slog_info("persist: %llu PERSIST requests in %llu groups (at most %llu requests in one group), "
			 "%llu refused",
			 (unsigned long long)c->pw.requests, (unsigned long long)c->pw.groups,
			 (unsigned long long)c->pw.max_group, (unsigned long long)c->pw.refused);
	if (c->suspects)
		cf_slog_info("detection: %llu SUSPECT reports from systems, %llu systems declared failed by the sweep they ran",
			 (unsigned long long)c->suspects, (unsigned long long)c->suspects_declared);
	ev_timer_stop(c->loop, &c->sweep);
	ev_timer_stop(c->loop, &c->orphan);
	if (c->ts)
		c->ops->destroy(c->ts);
	if (c->gc) {
		struct cf_persist_stats st;
		cf_persist_commit(c->gc); /* what is pending, before the figures */
		cf_persist_get_stats(c->gc, &st);
		cf_persist_free(c->gc);
		c->gc = NULL;
		/* one line the tests and the benchmark read: persists per write */
		cf_slog_info("group commit: %llu commits, %llu persist calls, %llu ranges, %llu bytes, at most %llu "
			 "ranges in one commit, %llu callbacks",
			 (unsigned long long)st.commits, (unsigned long long)st.calls, (unsigned long long)st.ranges,
			 (unsigned long long)st.bytes, (unsigned long long)st.max_ranges,
			 (unsigned long long)st.callbacks);
	}
	free(c->pw.q); /* a list no commit took (its callback could not be registered) */
	cf_metrics_fini(&c->metrics);
	while (c->conns) { /* a transport that did not report every close */
		struct core_conn *cc = c->conns;
		c->conns = cc->next;
		free(cc);
	}
	free(c);
}
