/* SPDX-License-Identifier: MIT */
/*
 * cf_member.c - the handshake and membership: who may talk to the CF, as
 * what, and which connections make up a system incarnation.
 *   (1) HELLO: magic, protocol versions, role; the server's CHALLENGE is
 *       MACed with the role's key (role_key: the monitor key for MONITOR,
 *       the cluster key for every other role);
 *   (2) AUTH: the client's MAC; then WELCOME (geometry, h, T, generation,
 *       policy). A MONITOR gets no grant, a CONSOLE one READ grant up to the
 *       logs, a SYSTEM connection waits for (3);
 *   (3) JOIN (a new incarnation: epoch + 1, a token, the system grants; an
 *       old incarnation still ACTIVE is failed first) or CONN_ATTACH (a
 *       further connection of a live incarnation, proven by its token);
 *   (4) GOODBYE: a clean leave (FREE), unless the incarnation still holds an
 *       instance: then it is a failure (cf_failure.c).
 * WATCHDOG: the incarnation's announced watchdog timeout, kept in its slot
 * for the counterpart's wait (docs/design.md §7, "Fencing across hosts").
 */
#include "cf_core_int.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cf_auth.h"
#include "cf_fault.h"
#include "cf_slog.h"
#include "cf_util.h"

/* the least grace a new incarnation gets for its first beat (JOIN below) */
#define CF_FIRST_BEAT_GRACE_NS 1000000000ull

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
void member_handshake_budget(struct cf_core *c, struct core_conn *newcomer)
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
			     "goes (%llu dropped so far)", v->peer, core_conn_state_str(v->state), n, HANDSHAKE_MAX,
			     (unsigned long long)c->handshakes_dropped);
	v->cause = CF_FAIL_NONE;
	core_set_state(v, CS_CLOSING);
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
	core_refuse(cc, id, CF_FAIL_NONE, "too many connections");
	return -EUSERS;
}

void member_on_hello(struct core_conn *cc, uint64_t id, const struct cf_hello *h)
{
	struct cf_core *c = cc->core;
	struct cf_challenge ch;
	char msg[120];
	unsigned lo, hi, vmin = CF_PROTO_VERSION_MIN, vmax = CF_PROTO_VERSION_MAX;

	if (CF_FAULT_FAILS("srv.hello_unanswered"))
		return; /* a hung CF (edges.sh hung): the handshake bound (cf_sweep.c) closes the connection */
	if (h->magic != CF_HELLO_MAGIC) {
		cf_slog_warn("conn %s: bad HELLO magic %#x", cc->peer, h->magic);
		core_refuse(cc, id, CF_FAIL_PROTOCOL, "bad HELLO magic: not a cfplex client");
		return;
	}
	if (CF_FAULT_FAILS("srv.hello_newer_only"))
		vmin = vmax = CF_PROTO_VERSION_MAX + 1; /* a CF of the next protocol version only (edges.sh version) */
	lo = h->version_min > vmin ? h->version_min : vmin;
	hi = h->version_max < vmax ? h->version_max : vmax;
	if (lo > hi) {
		snprintf(msg, sizeof(msg), "protocol version mismatch: client speaks %u..%u, server %u..%u",
			 h->version_min, h->version_max, vmin, vmax);
		cf_slog_warn("conn %s: %s", cc->peer, msg);
		core_refuse(cc, id, CF_FAIL_PROTOCOL, msg);
		return;
	}
	if (h->role != CF_ROLE_SYSTEM && h->role != CF_ROLE_CONSOLE && h->role != CF_ROLE_MONITOR) {
		cf_slog_warn("conn %s: unknown role %u", cc->peer, h->role);
		core_refuse(cc, id, CF_FAIL_PROTOCOL, "unknown role");
		return;
	}
	if (conns_limit(cc, id) < 0) /* early, with a reason; checked again at AUTH */
		return;
	if (h->role == CF_ROLE_MONITOR && !c->cfg.has_monitor_key) {
		cf_slog_warn("conn %s: monitor role refused: no --monitor-key configured", cc->peer);
		core_refuse(cc, id, CF_FAIL_NONE, "monitor role refused: this CF has no monitor key (cfserver --monitor-key)");
		return;
	}
	cc->version = (uint16_t)hi;
	cc->role = h->role;
	memcpy(cc->cnonce, h->client_nonce, CF_NONCE_LEN);
	cf_auth_nonce(cc->snonce);
	memset(&ch, 0, sizeof(ch));
	ch.version = cc->version;
	if (CF_FAULT_FAILS("srv.hello_choose_newer"))
		ch.version = CF_PROTO_VERSION_MAX + 1; /* a CF that ignores the client's range (edges.sh version) */
	memcpy(ch.server_nonce, cc->snonce, CF_NONCE_LEN);
	cc->terms = cf_auth_terms_of(h, ch.version); /* the HELLO as read, the version as sent */
	cf_auth_mac_server(role_key(c, cc->role), cc->cnonce, cc->snonce, &cc->terms, ch.mac);
	core_set_state(cc, CS_CHALLENGED);
	core_send(cc, id, CF_CTRL_CHALLENGE, &ch, sizeof(ch));
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

void member_on_auth(struct core_conn *cc, uint64_t id, const struct cf_auth *a)
{
	struct cf_core *c = cc->core;
	struct cf_header *h = hdr(c);
	uint8_t want[CF_MAC_LEN];
	struct cf_welcome w;
	struct cf_grants gs;
	int r;

	cf_auth_mac_client(role_key(c, cc->role), cc->snonce, cc->cnonce, &cc->terms, want);
	r = cf_auth_verify(want, a->mac);
	sodium_memzero(want, sizeof(want));
	if (r < 0) {
		cf_slog_warn("conn %s: authentication failed (wrong %s key)", cc->peer,
			 cc->role == CF_ROLE_MONITOR ? "monitor" : "cluster");
		core_refuse(cc, id, CF_FAIL_PROTOCOL, "authentication failed");
		return;
	}
	if (conns_limit(cc, id) < 0)
		return;
	r = set_frame_keys(cc);
	if (r < 0) {
		cf_slog_warn("conn %s: frame keys: %s: closing", cc->peer, strerror(-r));
		core_refuse(cc, id, CF_FAIL_PROTOCOL, "frame keys");
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
		core_set_state(cc, CS_MONITOR);
		core_send(cc, id, CF_CTRL_WELCOME, &w, sizeof(w));
		cf_slog_debug("conn %s: monitor authenticated (protocol %u)", cc->peer, cc->version);
		return;
	}
	if (cc->role == CF_ROLE_CONSOLE) {
		/* one READ grant over header .. record lists: never the private logs (invariant 5) */
		core_set_state(cc, CS_CONSOLE);
		core_send(cc, id, CF_CTRL_WELCOME, &w, sizeof(w));
		memset(&gs, 0, sizeof(gs));
		r = core_grant(cc, CF_RGN_IMAGE, 0, 0, c->map->off_logs, CF_R_READ, &gs.g[0]);
		gs.status = r;
		gs.count = r < 0 ? 0 : 1;
		core_send(cc, id, CF_CTRL_GRANTS, &gs, sizeof(gs));
		cf_slog_debug("conn %s: console authenticated (protocol %u)", cc->peer, cc->version);
		return;
	}
	core_set_state(cc, CS_AUTHED);
	core_send(cc, id, CF_CTRL_WELCOME, &w, sizeof(w));
	cf_slog_debug("conn %s: system connection authenticated (protocol %u)", cc->peer, cc->version);
}

/*
 * JOINED's flags: durable when the image persists or a secondary keeps a copy
 * (then a verbs node sends PERSIST, which is what ships its log records).
 */
static uint32_t joined_flags(const struct cf_core *c)
{
	return c->im->persist_fn || c->dx ? CF_JOINED_DURABLE : 0;
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
		r = core_grant(cc, want[k].region, 0, want[k].off, want[k].len, want[k].rights, &gs->g[k]);
		if (r < 0)
			return r;
		gs->count++;
	}
	return 0;
}

/*
 * May the slot of a system that left be given to another name? Only a system
 * that said GOODBYE (FREE: nothing of it is in flight) and that no instance
 * still names: not as its owner (an ACTIVE word) and not as the failed owner
 * of a recovery still to come (fail_sys of a word that is not CLEAN or FREE).
 */
static bool sys_reclaimable(struct cf_core *c, uint32_t s)
{
	if (cf_sysword_state(sysword(c, s)) != CF_SYS_FREE || c->sys[s].live)
		return false;
	for (uint32_t i = 0; i < c->map->geo.max_instances; i++) {
		uint64_t w = regword(c, i);
		if (cf_reg_state(w) == CF_REG_ACTIVE && cf_reg_owner(w) == s)
			return false;
		if (cf_reg_state(w) == CF_REG_FAILED && inst_slot(c, i)->fail_sys == s)
			return false;
	}
	return true;
}

/*
 * The slot of name: its own, else one never used, else one reclaimed from a
 * system that left (sys_reclaimable; its epoch counter goes on, so no word of
 * the old name can be taken for the new one's). -1: the table is full.
 */
static int find_sys(struct cf_core *c, const char *name)
{
	char n[CF_NAME_MAX], old[CF_NAME_MAX];
	int empty = -1;

	for (uint32_t s = 0; s < c->map->geo.max_systems; s++) {
		core_name_of(sys_slot(c, s)->name, n);
		if (!strcmp(n, name))
			return (int)s;
		if (!n[0] && empty < 0 && cf_sysword_state(sysword(c, s)) == CF_SYS_FREE)
			empty = (int)s;
	}
	if (empty >= 0)
		return empty;
	for (uint32_t s = 0; s < c->map->geo.max_systems; s++) {
		if (!sys_reclaimable(c, s))
			continue;
		core_name_of(sys_slot(c, s)->name, old);
		cf_slog_info("JOIN %s: system table full: slot %u reclaimed from %s, which left cleanly", name, s, old);
		/* its clean instances lose their home: they are not the new name's (and may be reclaimed in turn) */
		for (uint32_t i = 0; i < c->map->geo.max_instances; i++) {
			struct cf_inst_slot *is = inst_slot(c, i);
			if (is->home_sys == s) {
				is->home_sys = CF_NO_SYS;
				core_persist(c, cf_inst_off(c->map, i), sizeof(*is));
			}
		}
		return (int)s;
	}
	return -1;
}

/*
 * The proof of system s's token kept in the image (cf_layout.h,
 * CF_TOKEN_PROOF_OFF): a hash, so that reading it does not give the token.
 */
static uint8_t *token_proof_at(struct cf_core *c, uint32_t s)
{
	return c->base + CF_TOKEN_PROOF_OFF + (uint64_t)s * CF_TOKEN_PROOF_LEN;
}

static void token_proof(uint64_t token, uint32_t s, uint32_t e, uint8_t out[CF_TOKEN_PROOF_LEN])
{
	uint8_t in[16];

	memcpy(in, &token, 8);
	memcpy(in + 8, &s, 4);
	memcpy(in + 12, &e, 4);
	crypto_generichash(out, CF_TOKEN_PROOF_LEN, in, sizeof(in), NULL, 0);
}

/*
 * Resume (docs/design.md, "Incarnations kept across a switch"): the first
 * connection of an incarnation this CF kept at its takeover, proven by the
 * token the old primary gave it (its proof came with the copy). It becomes
 * the incarnation's JOIN connection (events), and the incarnation is live
 * here, with a first-beat grace as at a JOIN. 0, or -EPERM.
 */
static int resume_kept(struct cf_core *c, struct core_conn *cc, const struct cf_conn_attach *a)
{
	struct core_sys *cs = &c->sys[a->sys];
	uint8_t want[CF_TOKEN_PROOF_LEN];
	char sn[CF_NAME_MAX];

	if (!cs->kept || !sys_incarnation(sysword(c, a->sys), a->epoch))
		return -EPERM;
	token_proof(a->token, a->sys, a->epoch, want);
	if (sodium_memcmp(want, token_proof_at(c, a->sys), CF_TOKEN_PROOF_LEN) != 0)
		return -EPERM;
	cs->kept = 0;
	cs->live = 1;
	cs->agent = cc;
	cs->token = a->token;
	cs->hb_last = load64(&hb_slot(c, a->sys)->hb);
	cs->hb_seen_ns = cf_mono_ns() +
			 (c->cfg.hb_timeout_ns > CF_FIRST_BEAT_GRACE_NS ? c->cfg.hb_timeout_ns : CF_FIRST_BEAT_GRACE_NS);
	c->resumes++;
	cf_slog_info("RESUME: %s (system %u, epoch %u) is back from %s after the takeover", core_sys_name(c, a->sys, sn),
		     a->sys, a->epoch, cc->peer);
	return 0;
}

void member_on_join(struct core_conn *cc, uint64_t id, const struct cf_join *j)
{
	struct cf_core *c = cc->core;
	char name[CF_NAME_MAX], host[CF_HOST_MAX];
	struct cf_joined jd;
	struct cf_sys_slot *slot;
	struct core_sys *cs;
	uint64_t w;
	uint32_t e;
	int s, r;

	if (core_name_in(j->name, name) < 0)
		name[0] = 0; /* refused below as a bad name */
	memcpy(host, j->host, CF_HOST_MAX);
	host[CF_HOST_MAX - 1] = 0;
	if (cf_name_check(name) < 0) {
		core_status(cc, id, CF_CTRL_STATUS, -EINVAL, "bad system name: 1..15 chars of [A-Za-z0-9_.-]");
		return;
	}
	s = find_sys(c, name);
	if (s < 0) {
		cf_slog_warn("JOIN %s from %s refused: system table full (%u)", name, cc->peer, c->map->geo.max_systems);
		core_status(cc, id, CF_CTRL_STATUS, -ENOSPC, "system table full (max-systems %u)",
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
	core_persist(c, cf_sys_off(c->map, (uint32_t)s), sizeof(*slot));
	r = core_word_cas(c, cf_sys_off(c->map, (uint32_t)s), w, cf_sysword(CF_SYS_ACTIVE, e));
	if (r < 0) {
		cf_slog_err("JOIN %s: system word changed under us", name);
		core_status(cc, id, CF_CTRL_STATUS, -EAGAIN, "system slot busy, retry");
		return;
	}
	cs->live = 1;
	cs->agent = cc;
	c->metrics.joins++;
	randombytes_buf(&cs->token, sizeof(cs->token));
	/* its proof reaches a secondary's copy before the JOINED answer goes (core_persist) */
	token_proof(cs->token, (uint32_t)s, e, token_proof_at(c, (uint32_t)s));
	core_persist(c, CF_TOKEN_PROOF_OFF + (uint64_t)s * CF_TOKEN_PROOF_LEN, CF_TOKEN_PROOF_LEN);
	cs->hb_last = load64(&hb_slot(c, (uint32_t)s)->hb);
	/*
	 * A new incarnation still has to open its heartbeat connection and
	 * authenticate it before its first beat: a grace for that first beat
	 * only, of T but at least CF_FIRST_BEAT_GRACE_NS. One T alone was 20 ms
	 * in all at T = 10 ms, short for a connection and a handshake on a
	 * loaded host or under emulation. The longer grace delays nothing that
	 * matters: a system holds nothing before its first beat (cfnode beats
	 * once, synchronously, before it attaches any instance). A process
	 * crash meanwhile is still seen at once (its JOIN connection closes); a
	 * host that dies or is cut off meanwhile is declared after grace + T.
	 */
	cs->hb_seen_ns = cf_mono_ns() +
			 (c->cfg.hb_timeout_ns > CF_FIRST_BEAT_GRACE_NS ? c->cfg.hb_timeout_ns : CF_FIRST_BEAT_GRACE_NS);
	core_set_state(cc, CS_SYSTEM);
	core_sys_link(c, (uint32_t)s, cc);

	memset(&jd, 0, sizeof(jd));
	jd.sys = (uint32_t)s;
	jd.epoch = e;
	jd.token = cs->token;
	jd.flags = joined_flags(c);
	r = system_grants(cc, (uint32_t)s, &jd.grants);
	jd.status = r;
	jd.grants.status = r;
	core_send(cc, id, CF_CTRL_JOINED, &jd, sizeof(jd));
	cf_slog_info("JOIN %s: system %d epoch %u from %s (host %s pid %llu)", name, s, e, cc->peer, host,
		 (unsigned long long)j->pid);
}

void member_on_conn_attach(struct core_conn *cc, uint64_t id, const struct cf_conn_attach *a)
{
	struct cf_core *c = cc->core;
	struct cf_joined jd;
	uint64_t w;
	int r;

	if (a->sys >= c->map->geo.max_systems) {
		core_status(cc, id, CF_CTRL_STATUS, -EINVAL, "no system %u", a->sys);
		return;
	}
	w = sysword(c, a->sys);
	if (c->sys[a->sys].kept && resume_kept(c, cc, a) < 0) {
		cf_slog_warn("CONN_ATTACH from %s refused: system %u epoch %u kept at the takeover, token not proven",
			     cc->peer, a->sys, a->epoch);
		core_status(cc, id, CF_CTRL_STATUS, -EPERM, "system %u epoch %u: not this incarnation's token", a->sys,
			    a->epoch);
		return;
	}
	if (!c->sys[a->sys].live || !sys_incarnation(w, a->epoch) ||
	    sodium_memcmp(&c->sys[a->sys].token, &a->token, sizeof(a->token)) != 0) {
		cf_slog_warn("CONN_ATTACH from %s refused: system %u epoch %u is not a live incarnation", cc->peer,
			 a->sys, a->epoch);
		core_status(cc, id, CF_CTRL_STATUS, -EPERM, "system %u epoch %u is not a live incarnation", a->sys,
			    a->epoch);
		return;
	}
	core_set_state(cc, CS_SYSTEM);
	core_sys_link(c, a->sys, cc);
	memset(&jd, 0, sizeof(jd));
	jd.sys = a->sys;
	jd.epoch = a->epoch;
	jd.token = a->token;
	jd.flags = joined_flags(c);
	r = system_grants(cc, a->sys, &jd.grants);
	jd.status = r;
	jd.grants.status = r;
	core_send(cc, id, CF_CTRL_JOINED, &jd, sizeof(jd));
	cf_slog_debug("CONN_ATTACH: %s is a further connection of system %u epoch %u", cc->peer, a->sys, a->epoch);
}

/*
 * The sentinel of an incarnation (node/cf_sentinel.h): a connection of its
 * own, proven by the incarnation's token like CONN_ATTACH, that holds no
 * grants and may say one thing, DIED. Its close is no failure (a sentinel
 * that dies leaves the system as it was without one); the incarnation's end
 * fences it with the rest. Never the connection that resumes a kept
 * incarnation: the system's own comes first.
 */
void member_on_sentinel(struct core_conn *cc, uint64_t id, const struct cf_conn_attach *a)
{
	struct cf_core *c = cc->core;
	char sn[CF_NAME_MAX];

	if (a->sys >= c->map->geo.max_systems) {
		core_status(cc, id, CF_CTRL_STATUS, -EINVAL, "no system %u", a->sys);
		return;
	}
	if (!c->sys[a->sys].live || !sys_incarnation(sysword(c, a->sys), a->epoch) ||
	    sodium_memcmp(&c->sys[a->sys].token, &a->token, sizeof(a->token)) != 0) {
		cf_slog_warn("SENTINEL from %s refused: system %u epoch %u is not a live incarnation", cc->peer, a->sys,
			     a->epoch);
		core_status(cc, id, CF_CTRL_STATUS, -EPERM, "system %u epoch %u is not a live incarnation", a->sys,
			    a->epoch);
		return;
	}
	core_set_state(cc, CS_SYSTEM);
	cc->sentinel = 1;
	core_sys_link(c, a->sys, cc);
	core_status(cc, id, CF_CTRL_STATUS, 0, "sentinel of system %u epoch %u", a->sys, a->epoch);
	cf_slog_info("SENTINEL: %s watches %s (system %u epoch %u)", cc->peer, core_sys_name(c, a->sys, sn), a->sys,
		     a->epoch);
}

/*
 * DIED: the sentinel saw its system's process start to exit. Only a
 * sentinel's, which only its incarnation's token opens: a member can declare
 * no one but itself. The answer may not come: the failure fences this
 * connection with the others.
 */
void member_on_died(struct core_conn *cc, uint64_t id)
{
	struct cf_core *c = cc->core;
	uint32_t s = (uint32_t)cc->sys;
	char sn[CF_NAME_MAX];

	cf_slog_info("DIED: the sentinel of %s says its process is exiting", core_sys_name(c, s, sn));
	core_status(cc, id, CF_CTRL_STATUS, 0, "declared");
	fail_system(c, s, CF_FAIL_EXITING);
}

static int owns_active(struct cf_core *c, uint32_t s, uint32_t e)
{
	for (uint32_t i = 0; i < c->map->geo.max_instances; i++) {
		uint64_t w = regword(c, i);
		/* a word naming it counts unless the CF granted the instance to another (then a member wrote it) */
		if (inst_held_by(c, i, s, e) || (!c->inst[i].held && reg_owned_by(w, s, e)))
			return 1;
	}
	return 0;
}

void member_on_goodbye(struct core_conn *cc, uint64_t id)
{
	struct cf_core *c = cc->core;
	uint32_t s = (uint32_t)cc->sys;
	uint64_t w = sysword(c, s);
	uint32_t e = cf_sysword_epoch(w);
	char sn[CF_NAME_MAX];

	core_sys_name(c, s, sn);
	if (owns_active(c, s, e)) {
		cf_slog_warn("GOODBYE from %s while it still owns ACTIVE instances: failure processing instead", sn);
		fail_system(c, s, CF_FAIL_CONN_LOST);
		return;
	}
	/* clean leave: every connection of the incarnation goes, without failure processing */
	core_end_conns(c, s, CS_LEFT, cc);
	if (core_word_cas(c, cf_sys_off(c->map, s), w, cf_sysword(CF_SYS_FREE, e)) < 0)
		cf_slog_err("GOODBYE %s: system word changed under us", sn);
	core_status(cc, id, CF_CTRL_STATUS, 0, "goodbye %s", sn);
	c->ops->close(cc->sc);
	cf_slog_info("GOODBYE: %s (epoch %u) left cleanly", sn, e);
}

/*
 * Fencing across hosts (docs/design.md §7): the watchdog timeout a system
 * announces on its JOIN connection, kept in its slot; failure processing
 * copies it into the instances' fail_* for the counterpart's wait.
 */
void member_on_watchdog(struct core_conn *cc, uint64_t id, const struct cf_watchdog_msg *m)
{
	struct cf_core *c = cc->core;
	struct cf_sys_slot *slot;
	char sn[CF_NAME_MAX];

	if (cc->sys < 0 || c->sys[cc->sys].agent != cc) {
		core_status(cc, id, CF_CTRL_STATUS, -EPERM, "a watchdog is announced on the JOIN connection");
		return;
	}
	if (m->timeout_ms > CF_WD_TIMEOUT_MAX_MS || m->pad) {
		core_status(cc, id, CF_CTRL_STATUS, -EINVAL, "watchdog timeout %u ms out of range (0..%u)",
			    m->timeout_ms, CF_WD_TIMEOUT_MAX_MS);
		return;
	}
	slot = sys_slot(c, (uint32_t)cc->sys);
	slot->wd_timeout_ms = m->timeout_ms;
	core_persist(c, cf_sys_off(c->map, (uint32_t)cc->sys), sizeof(*slot));
	cf_slog_info("%s announces a watchdog of %u ms", core_sys_name(c, (uint32_t)cc->sys, sn), m->timeout_ms);
	core_status(cc, id, CF_CTRL_STATUS, 0, "watchdog %u ms recorded", m->timeout_ms);
}
