/* SPDX-License-Identifier: MIT */
/*
 * cf_core_base.c - what every module of cfserver's control plane uses, and
 * which calls none of them: a connection's state machine (every change goes
 * through core_set_state, which asserts the transition is legal and traces
 * it), sending (a message, a STATUS, a refusal that closes), events (every
 * one built by core_event), grants, the connections of a system incarnation
 * (linked, unlinked, ended by core_end_conns), the server's own writes of
 * image words (core_local_cas, core_word_cas, core_persist) and the names
 * that log lines use.
 */
#include "cf_core_int.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cf_persist.h"
#include "cf_slog.h"
#include "cf_util.h"

/* ---------------- connection state machine ---------------- */

const char *core_conn_state_str(enum conn_state s)
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

void core_set_state(struct core_conn *cc, enum conn_state to)
{
	if (!conn_transition_ok(cc->state, to)) {
		cf_slog_err("BUG: connection %s: illegal transition %s -> %s", cc->peer, core_conn_state_str(cc->state),
			core_conn_state_str(to));
		assert(0 && "illegal connection state transition");
	}
	cf_slog_debug("conn %s: %s -> %s", cc->peer, core_conn_state_str(cc->state), core_conn_state_str(to));
	cc->state = to;
}

/* ---------------- image words and names ---------------- */

/* Every persist of image bytes goes here (loop or persister thread): timed for the metrics. */
void core_image_persist(struct cf_core *c, uint64_t off, uint64_t len)
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
void core_persist(struct cf_core *c, uint64_t off, uint64_t len)
{
	if (c->dx && c->gc) {
		cf_persist_add(c->gc, off, len);
		cf_persist_commit(c->gc);
		return;
	}
	core_image_persist(c, off, len);
}

/*
 * The server's own compare-and-swap of an image word: through the transport's
 * atomic path once clients can reach the image. Before the listener opens
 * (cf_core_new taking over an image) nothing else can, and a plain store is
 * that CAS.
 */
int core_local_cas(struct cf_core *c, uint64_t off, uint64_t compare, uint64_t swap, uint64_t *old)
{
	uint64_t *p = (uint64_t *)(c->base + off);

	if (c->ts)
		return c->ops->local_cas(c->ts, off, compare, swap, old);
	*old = *p;
	if (*old == compare)
		*p = swap;
	return 0;
}

/* The server's own CAS on an image word, persisted once it took. */
int core_word_cas(struct cf_core *c, uint64_t off, uint64_t compare, uint64_t swap)
{
	uint64_t old = 0;
	int r = core_local_cas(c, off, compare, swap, &old);

	if (r < 0)
		return r;
	if (old != compare)
		return -EAGAIN;
	core_persist(c, off, 8);
	return 0;
}

const char *core_sys_name(struct cf_core *c, uint32_t s, char buf[CF_NAME_MAX])
{
	if (s >= c->map->geo.max_systems) {
		snprintf(buf, CF_NAME_MAX, "sys#%u", s);
		return buf;
	}
	core_name_of(sys_slot(c, s)->name, buf);
	if (!buf[0])
		snprintf(buf, CF_NAME_MAX, "sys#%u", s);
	return buf;
}

const char *core_inst_name(struct cf_core *c, uint32_t i, char buf[CF_NAME_MAX])
{
	core_name_of(inst_slot(c, i)->name, buf);
	if (!buf[0])
		snprintf(buf, CF_NAME_MAX, "inst#%u", i);
	return buf;
}

/* Describe a registration word for messages: "ACTIVE (owner SYS1, epoch 3)". */
void core_reg_desc(struct cf_core *c, uint64_t w, char *buf, size_t cap)
{
	char sn[CF_NAME_MAX];

	if (cf_reg_state(w) == CF_REG_ACTIVE)
		snprintf(buf, cap, "ACTIVE (owner %s, epoch %u, incident %u)", core_sys_name(c, cf_reg_owner(w), sn),
			 cf_reg_epoch(w), cf_reg_incident(w));
	else if (cf_reg_state(w) == CF_REG_FAILED)
		snprintf(buf, cap, "INACTIVE_FAILED (incident %u)", cf_reg_incident(w));
	else if (cf_reg_state(w) == CF_REG_CLEAN)
		snprintf(buf, cap, "INACTIVE_CLEAN (incident %u)", cf_reg_incident(w));
	else
		snprintf(buf, cap, "FREE");
}

/* ---------------- sending and events ---------------- */

int core_send(struct core_conn *cc, uint64_t id, uint16_t type, const void *body, size_t len)
{
	uint8_t buf[CF_CTRL_MAX];
	size_t n = cf_ctrl_build(buf, type, body, len);

	return cc->core->ops->send_ctrl(cc->sc, id, buf, n);
}

void core_status(struct core_conn *cc, uint64_t id, uint16_t type, int status, const char *fmt, ...)
{
	struct cf_status st;
	va_list ap;

	memset(&st, 0, sizeof(st));
	st.status = status;
	va_start(ap, fmt);
	vsnprintf(st.msg, sizeof(st.msg), fmt, ap);
	va_end(ap);
	core_send(cc, id, type, &st, sizeof(st));
}

/* Refuse and close (ERROR then graceful close). */
void core_refuse(struct core_conn *cc, uint64_t id, uint32_t cause, const char *msg)
{
	core_status(cc, id, CF_CTRL_ERROR, -EPROTO, "%s", msg);
	if (cc->state != CS_CLOSING && cc->state != CS_FENCED && cc->state != CS_LEFT) {
		cc->cause = cause;
		core_set_state(cc, CS_CLOSING);
	}
	cc->core->ops->close(cc->sc);
}

/*
 * Every event is built here: its type, the system (s at epoch e) and the
 * instance (i, word reg) it is about, the cluster policy, and t_ns (the
 * CF's real time of what it reports). Failure events add cause and fence_us.
 */
struct cf_event core_event(struct cf_core *c, uint32_t type, uint32_t s, uint32_t e, uint32_t i,
			   uint64_t reg, uint64_t t_ns)
{
	return (struct cf_event){.type = type, .sys = s, .epoch = e, .inst = i, .reg = reg,
				 .policy = load64(&hdr(c)->policy), .time_ns = t_ns};
}

/* To system s's JOIN connection (its agent). */
void core_event_to(struct cf_core *c, uint32_t s, const struct cf_event *ev)
{
	core_send(c->sys[s].agent, 0, CF_CTRL_EVENT, ev, sizeof(*ev));
}

/* To every live system. */
void core_event_all(struct cf_core *c, const struct cf_event *ev)
{
	for (uint32_t s = 0; s < c->map->geo.max_systems; s++) {
		if (c->sys[s].live && c->sys[s].agent)
			core_event_to(c, s, ev);
	}
}

/* ---------------- grants ---------------- */

int core_grant(struct core_conn *cc, uint32_t region, uint32_t inst, uint64_t off, uint64_t len,
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

/* ---------------- the connections of a system ---------------- */

void core_sys_link(struct cf_core *c, uint32_t s, struct core_conn *cc)
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

void core_sys_unlink(struct cf_core *c, struct core_conn *cc)
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

/*
 * End incarnation s: each of its connections leaves the system's list, goes
 * to state to (CS_FENCED by failure processing, CS_LEFT at GOODBYE), loses
 * its grants and is fenced (ops->fence: a barrier), except keep, the
 * GOODBYE's own connection, which answers and then closes. Returns how many
 * were fenced.
 */
unsigned core_end_conns(struct cf_core *c, uint32_t s, enum conn_state to, struct core_conn *keep)
{
	struct core_sys *cs = &c->sys[s];
	struct core_conn *cc;
	unsigned n = 0;

	while ((cc = cs->conns)) {
		core_sys_unlink(c, cc);
		if (cc->state == CS_SYSTEM)
			core_set_state(cc, to);
		cc->ngrants = 0;
		if (cc != keep) {
			c->ops->fence(cc->sc);
			n++;
		}
	}
	cs->live = 0;
	cs->kept = 0;
	cs->agent = NULL;
	return n;
}
