/* SPDX-License-Identifier: MIT */
/*
 * cf_core.c - cfserver's control plane (both transports): it calls only
 * struct cf_server_ops. This file holds the transport's callbacks (accept,
 * close, durable ranges), the dispatch of every control message by the
 * connection's state, and the lifecycle (cf_core.h). The rest of the control
 * plane is one module per room, sharing struct cf_core through
 * cf_core_int.h (which also says how they call each other, in layers):
 *   cf_core_base.c    what every module uses: a connection's state machine,
 *                     sending, events (core_event), grants, a system's
 *                     connections, the server's own writes of image words;
 *   cf_member.c       the handshake (HELLO, AUTH: which key for which role)
 *                     and membership: JOIN, CONN_ATTACH, GOODBYE, WATCHDOG;
 *   cf_inst.c         instances: INST_OPEN, INST_ATTACH, INST_UNREG, decided
 *                     by the CF's own record of registrations (core_inst);
 *   cf_failure.c      failure processing, steps (1)-(4) in its opening
 *                     comment; the orphan scan; the takeover of an image a
 *                     previous run left; mark_instance_failed(), the one
 *                     writer of INACTIVE_FAILED;
 *   cf_restart.c      the restart barrier: no new work until the instances
 *                     failed at a restart are recovered from their logs;
 *   cf_sweep.c        the heartbeat sweep (with the handshake bound), the
 *                     orphan timer, SUSPECT reports from the systems;
 *   cf_console.c      the console's requests (POLICY_SET, RECOVER,
 *                     FENCE_CONFIRM, RECOVER_RETRY, RESTART_INFO,
 *                     DUPLEX_INFO) and the metrics (console and monitor);
 *   cf_persist_req.c  PERSIST requests, answered after the group commit
 *                     that covers them;
 *   cf_lockq.c        lock hand-off: the queues of lock waiters, served by
 *                     the CF's own CAS (LOCK_WAIT, LOCK_CANCEL, LOCK_KICK).
 * The path of a request: transport -> cb_ctrl (here) -> the module's
 * handler, which answers it. The path of a crash: transport -> cb_close
 * (here) -> fail_system (cf_failure.c).
 */
#include "cf_core_int.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_duplex.h"
#include "cf_persist.h"
#include "cf_slog.h"
#include "cf_util.h"

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
	member_handshake_budget(c, cc); /* --max-conns is checked once it has authenticated */
	cf_slog_debug("conn %s: accepted", cc->peer);
}

static void cb_close(void *arg, struct cf_sconn *sc, int err)
{
	struct cf_core *c = arg;
	struct core_conn *cc = c->ops->get_data(sc);
	char sn[CF_NAME_MAX];

	if (!cc)
		return;
	preq_forget(c, cc);
	lockq_forget(c, cc);
	if (cc->state == CS_SYSTEM && cc->sentinel) {
		/* a sentinel that goes says nothing: its system is seen as before, when its own connections close */
		if (!c->shutting_down)
			cf_slog_info("conn %s: the sentinel of %s closed (%s)", cc->peer,
				     core_sys_name(c, (uint32_t)cc->sys, sn), err ? strerror(-err) : "EOF");
		core_sys_unlink(c, cc);
	} else if (cc->state == CS_SYSTEM && !c->shutting_down) {
		uint32_t s = (uint32_t)cc->sys;
		core_sys_unlink(c, cc);
		cf_slog_info("conn %s of %s closed without goodbye (%s)", cc->peer, core_sys_name(c, s, sn),
			 err ? strerror(-err) : "EOF");
		/* -EBADMSG: the transport refused a frame (malformed, or its MAC): the peer's protocol error */
		fail_system(c, s, cc->cause ? cc->cause : err == -EBADMSG ? CF_FAIL_PROTOCOL : CF_FAIL_CONN_LOST);
	} else if (cc->on_sys) {
		uint32_t s = (uint32_t)cc->sys;
		core_sys_unlink(c, cc);
		if (cc->state == CS_CLOSING && !c->shutting_down)
			fail_system(c, s, cc->cause ? cc->cause : CF_FAIL_PROTOCOL);
	}
	cf_slog_debug("conn %s: closed in state %s", cc->peer, core_conn_state_str(cc->state));
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
		core_status(cc, id, CF_CTRL_STATUS, -ENOSYS, "unknown control message type %u", h->type);
		return;
	}
	if (cf_ctrl_check(msg, len) < 0) {
		cf_slog_warn("conn %s: malformed control message (%zu bytes, %s): closing", cc->peer, len,
			 cf_corrupt_where());
		core_refuse(cc, id, CF_FAIL_PROTOCOL, "malformed control message");
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
			return member_on_hello(cc, id, body);
		break;
	case CS_CHALLENGED:
		if (type == CF_CTRL_AUTH)
			return member_on_auth(cc, id, body);
		break;
	case CS_AUTHED:
		if (type == CF_CTRL_JOIN)
			return member_on_join(cc, id, body);
		if (type == CF_CTRL_CONN_ATTACH)
			return member_on_conn_attach(cc, id, body);
		if (type == CF_CTRL_SENTINEL)
			return member_on_sentinel(cc, id, body);
		break;
	case CS_SYSTEM:
		if (cc->sentinel) {
			if (type == CF_CTRL_DIED)
				return member_on_died(cc, id);
			break; /* nothing else: a sentinel holds no grants and speaks for no work */
		}
		switch (type) {
		case CF_CTRL_DIED:
			core_status(cc, id, CF_CTRL_STATUS, -EPERM, "DIED is a sentinel's (CF_CTRL_SENTINEL)");
			return;
		case CF_CTRL_INST_OPEN: return inst_on_open(cc, id, body);
		case CF_CTRL_INST_ATTACH: return inst_on_attach(cc, id, body);
		case CF_CTRL_INST_UNREG: return inst_on_unreg(cc, id, body);
		case CF_CTRL_GOODBYE: return member_on_goodbye(cc, id);
		case CF_CTRL_PERSIST: return preq_on_persist(cc, id, body);
		case CF_CTRL_WATCHDOG: return member_on_watchdog(cc, id, body);
		case CF_CTRL_SUSPECT: return sweep_on_suspect(cc, id, body);
		case CF_CTRL_LOCK_WAIT: return lockq_on_wait(cc, id, body);
		case CF_CTRL_LOCK_CANCEL: return lockq_on_cancel(cc, id, body);
		case CF_CTRL_LOCK_KICK: return lockq_on_kick(cc, body);
		}
		break;
	case CS_CONSOLE:
		switch (type) {
		case CF_CTRL_POLICY_SET: return console_on_policy_set(cc, id, body);
		case CF_CTRL_RECOVER: return console_on_recover(cc, id, body);
		case CF_CTRL_FENCE_CONFIRM: return console_on_fence_confirm(cc, id, body);
		case CF_CTRL_RECOVER_RETRY: return console_on_recover_retry(cc, id, body);
		case CF_CTRL_RESTART_INFO: return console_on_restart_info(cc, id);
		case CF_CTRL_DUPLEX_INFO: return console_on_duplex_info(cc, id);
		case CF_CTRL_METRICS: return console_on_metrics(cc, id, body);
		}
		break;
	case CS_MONITOR:
		if (type == CF_CTRL_METRICS)
			return console_on_metrics(cc, id, body);
		return console_monitor_refused(cc, id, type);
	default:
		return;
	}
	snprintf(m, sizeof(m), "unexpected %s in connection state %s", cf_ctrl_type_str(type),
		 core_conn_state_str(cc->state));
	cf_slog_warn("conn %s: %s: closing", cc->peer, m);
	core_refuse(cc, id, CF_FAIL_PROTOCOL, m);
}

static void cb_persist(void *arg, uint64_t off, uint64_t len)
{
	core_image_persist(arg, off, len);
}

/* ---------------- lifecycle ---------------- */

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
	if (lockq_init(c) < 0) {
		free(c);
		return -ENOMEM;
	}
	take_over_image(c);
	*out = c;
	return 0;
}

int cf_core_listen(struct cf_core *c, const char *addr)
{
	struct cf_server_cbs cbs = {.arg = c, .on_accept = cb_accept, .on_ctrl = cb_ctrl, .on_close = cb_close};
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
		cf_slog_info("group commit: duplexed: every batch is shipped to the secondary and acknowledged by it%s",
			 gran ? ", and persisted here" : "");
	} else if (gran) {
		/* msync blocks for a device flush: in a thread, while the loop serves the rest */
		r = cf_persist_new(c->loop, gran, gran >= CF_PAGE ? CF_PERSIST_THREAD | CF_PERSIST_ADAPTIVE : 0, cb_persist, c, &c->gc);
		if (r < 0)
			return r;
		cf_slog_info("group commit: %s (%s, %llu-byte granularity)",
			 gran >= CF_PAGE ? "one persist at a time in a persister thread while persists are slow, batching what arrives meanwhile"
					 : "one persist per loop iteration",
			 gran >= CF_PAGE ? "msync" : "CPU cache flushes", (unsigned long long)gran);
	}
	r = c->ops->listen(c->loop, addr, c->base, c->map->image_size, &cbs, &c->ts);
	if (r < 0)
		return r;
	sweep_start(c);
	return 0;
}

void cf_core_set_duplex(struct cf_core *c, struct cf_duplex *dx)
{
	c->dx = dx;
	c->cluster.hb_timeout_ns = c->cfg.hb_timeout_ns;
	cf_duplex_set_cluster(dx, &c->cluster);
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
	sweep_stop(c);
	if (c->ts)
		c->ops->destroy(c->ts);
	lockq_log(c);
	lockq_fini(c); /* after the transport: its closes forget their waiters */
	if (c->gc) {
		struct cf_persist_stats st;
		cf_duplex_detach_persist(c->dx); /* an image copy in progress stops here; dx outlives gc */
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
