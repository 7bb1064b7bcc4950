/* SPDX-License-Identifier: MIT */
/*
 * fuzz_ctrl_interp.h - interpret a checked control message field by field,
 * the way a careful receiver must: every string field bounded by its array
 * (a peer need not NUL-terminate), every count and index range-checked before
 * use, every word decoded and validated. Used by fuzz_ctrl and fuzz_frame.
 *
 * Returns 0 when the message is acceptable, a negative errno when a receiver
 * must refuse it. Properties a receiver relies on are FUZZ_ASSERTed.
 */
#ifndef CF_FUZZ_CTRL_INTERP_H
#define CF_FUZZ_CTRL_INTERP_H

#include <errno.h>
#include <string.h>

#include "cf_auth.h"
#include "cf_layout.h"
#include "cf_wire.h"
#include "cf_words.h"
#include "fuzz.h"

/* The session a fuzzed peer talks to: default geometry. */
static struct cf_image_map fz_map;
static int fz_map_ready;

static const struct cf_image_map *fz_session_map(void)
{
	if (!fz_map_ready) {
		struct cf_geometry g = {CF_DEFAULT_MAX_SYSTEMS, CF_DEFAULT_MAX_INSTANCES, CF_DEFAULT_LOCK_ENTRIES,
					CF_DEFAULT_RECORD_ENTRIES, CF_DEFAULT_LOG_SIZE};
		FUZZ_ASSERT(cf_geometry_check(&g, NULL) == 0);
		cf_image_map(&g, &fz_map);
		fz_map_ready = 1;
	}
	return &fz_map;
}

/* A name field: at most CF_NAME_MAX-1 chars, NUL-terminated inside the field, valid chars. */
static int fz_name(const char field[CF_NAME_MAX], char out[CF_NAME_MAX])
{
	size_t n = strnlen(field, CF_NAME_MAX);

	if (n == CF_NAME_MAX)
		return -EINVAL;
	memcpy(out, field, n + 1);
	if (cf_name_check(out) < 0)
		return -EINVAL;
	FUZZ_ASSERT(strlen(out) == n && n >= 1 && n < CF_NAME_MAX);
	return 0;
}

/* A free-text field (status messages, host names): bounded, printable copy. */
static size_t fz_text(const char *field, size_t cap, char *out, size_t outcap)
{
	size_t n = strnlen(field, cap), i;

	for (i = 0; i < n && i + 1 < outcap; i++)
		out[i] = field[i] >= 0x20 && field[i] < 0x7f ? field[i] : '?';
	out[i] = 0;
	return n;
}

static int fz_grants(const struct cf_grants *gs)
{
	const struct cf_image_map *m = fz_session_map();

	if (gs->status < 0)
		return 0; /* a refusal carries no grants the receiver would use */
	if (gs->count > CF_MAX_GRANTS)
		return -EBADMSG;
	for (uint32_t i = 0; i < gs->count; i++) {
		const struct cf_grant *g = &gs->g[i];
		if (g->region < CF_RGN_IMAGE || g->region > CF_RGN_HEARTBEATS)
			return -EBADMSG;
		if (!g->rights || (g->rights & ~(CF_R_READ | CF_R_WRITE | CF_R_ATOMIC)))
			return -EBADMSG;
		if (!g->len || g->image_off > m->image_size || g->len > m->image_size - g->image_off)
			return -EBADMSG;
		if (g->addr + g->len < g->addr)
			return -EBADMSG;
		if ((g->region == CF_RGN_RECORDS || g->region == CF_RGN_LOG) && g->inst >= m->geo.max_instances)
			return -EBADMSG;
		FUZZ_ASSERT(g->image_off + g->len <= m->image_size);
	}
	return 0;
}

/* msg has passed cf_ctrl_check (whole message, len bytes). */
static int fz_ctrl_interpret(const void *msg, size_t len)
{
	union {
		struct cf_hello hello;
		struct cf_challenge challenge;
		struct cf_auth auth;
		struct cf_welcome welcome;
		struct cf_join join;
		struct cf_joined joined;
		struct cf_conn_attach attach;
		struct cf_inst_name inst_name;
		struct cf_inst_info inst_info;
		struct cf_inst_ref inst_ref;
		struct cf_status status;
		struct cf_policy_msg policy;
		struct cf_recover recover;
		struct cf_recover_r recover_r;
		struct cf_event event;
		struct cf_grants grants;
		struct cf_inst_grants inst_grants;
		struct cf_empty empty;
		struct cf_persist_msg persist;
		struct cf_fence_confirm fence_confirm;
		struct cf_watchdog_msg watchdog;
		struct cf_restart_info restart_info;
		struct cf_suspect suspect;
		struct cf_duplex_info duplex_info;
		struct cf_metrics_req metrics_req;
		struct cf_metrics_r metrics_r;
		struct cf_lock_wait lock_wait;
		struct cf_lock_wait_r lock_wait_r;
		struct cf_lock_kick lock_kick;
	} u;
	struct cf_ctrl_hdr h;
	char name[CF_NAME_MAX], name2[CF_NAME_MAX], text[256];
	const struct cf_image_map *m = fz_session_map();
	size_t body;

	FUZZ_ASSERT(len >= sizeof(h) && len <= CF_CTRL_MAX);
	memcpy(&h, msg, sizeof(h));
	body = cf_ctrl_body_size(h.type);
	FUZZ_ASSERT(body > 0 && body <= sizeof(u) && h.len == len && len == sizeof(h) + body && h.pad == 0);
	FUZZ_ASSERT(strcmp(cf_ctrl_type_str(h.type), "?") != 0);
	memset(&u, 0, sizeof(u));
	memcpy(&u, (const char *)msg + sizeof(h), body);

	switch (h.type) {
	case CF_CTRL_HELLO: {
		uint16_t lo, hi;
		if (u.hello.magic != CF_HELLO_MAGIC || u.hello.version_min > u.hello.version_max)
			return -EPROTO;
		lo = u.hello.version_min > CF_PROTO_VERSION_MIN ? u.hello.version_min : CF_PROTO_VERSION_MIN;
		hi = u.hello.version_max < CF_PROTO_VERSION_MAX ? u.hello.version_max : CF_PROTO_VERSION_MAX;
		if (lo > hi)
			return -EPROTO;
		if (u.hello.role != CF_ROLE_SYSTEM && u.hello.role != CF_ROLE_CONSOLE && u.hello.role != CF_ROLE_MONITOR)
			return -EINVAL;
		FUZZ_ASSERT(hi >= CF_PROTO_VERSION_MIN && hi <= CF_PROTO_VERSION_MAX);
		return 0;
	}
	case CF_CTRL_CHALLENGE:
		if (u.challenge.version < CF_PROTO_VERSION_MIN || u.challenge.version > CF_PROTO_VERSION_MAX)
			return -EPROTO;
		return 0;
	case CF_CTRL_AUTH:
		return 0; /* verified by the handshake state machine */
	case CF_CTRL_WELCOME: {
		struct cf_image_map wm;
		if (cf_geometry_check(&u.welcome.geo, NULL) < 0)
			return -EBADMSG;
		cf_image_map(&u.welcome.geo, &wm);
		if (wm.image_size != u.welcome.image_size)
			return -EBADMSG;
		if (u.welcome.policy > CF_POLICY_OPERATOR)
			return -EBADMSG;
		if (!u.welcome.hb_interval_ns || u.welcome.hb_timeout_ns <= u.welcome.hb_interval_ns)
			return -EBADMSG;
		FUZZ_ASSERT(cf_log_off(&wm, wm.geo.max_instances - 1) + wm.geo.log_size == wm.image_size);
		return 0;
	}
	case CF_CTRL_JOIN:
		if (fz_name(u.join.name, name) < 0)
			return -EINVAL;
		if (strnlen(u.join.host, CF_HOST_MAX) == CF_HOST_MAX)
			return -EINVAL;
		fz_text(u.join.host, CF_HOST_MAX, text, sizeof(text));
		return 0;
	case CF_CTRL_JOINED:
		if (u.joined.status < 0)
			return 0;
		if (u.joined.sys >= m->geo.max_systems || u.joined.epoch > CF_EPOCH_MASK)
			return -EBADMSG;
		return fz_grants(&u.joined.grants);
	case CF_CTRL_CONN_ATTACH:
	case CF_CTRL_SENTINEL:
		if (u.attach.sys >= m->geo.max_systems || u.attach.epoch > CF_EPOCH_MASK)
			return -EINVAL;
		return 0;
	case CF_CTRL_GOODBYE:
	case CF_CTRL_DIED:
		return 0;
	case CF_CTRL_PERSIST:
		/* what the CF checks before the grants: a non-empty range inside the image */
		if (!u.persist.length || u.persist.offset > m->image_size ||
		    u.persist.length > m->image_size - u.persist.offset)
			return -EINVAL;
		FUZZ_ASSERT(u.persist.offset + u.persist.length <= m->image_size);
		return 0;
	case CF_CTRL_INST_OPEN:
		return fz_name(u.inst_name.name, name);
	case CF_CTRL_INST_ATTACH:
	case CF_CTRL_INST_UNREG:
		if (u.inst_ref.index >= m->geo.max_instances)
			return -EINVAL;
		FUZZ_ASSERT(cf_log_off(m, u.inst_ref.index) + m->geo.log_size <= m->image_size);
		FUZZ_ASSERT(cf_rec_off(m, u.inst_ref.index) + m->records_size <= m->off_logs);
		return 0;
	case CF_CTRL_POLICY_SET:
		if (u.policy.policy > CF_POLICY_OPERATOR)
			return -EINVAL;
		return 0;
	case CF_CTRL_RECOVER:
	case CF_CTRL_RECOVER_RETRY: /* the same body: cf_recover */
		if (fz_name(u.recover.inst, name) < 0)
			return -EINVAL;
		if (u.recover.on[0] && fz_name(u.recover.on, name2) < 0)
			return -EINVAL;
		return 0;
	case CF_CTRL_FENCE_CONFIRM:
		return fz_name(u.fence_confirm.sys, name);
	case CF_CTRL_WATCHDOG:
		/* what on_watchdog checks before it records the timeout */
		if (u.watchdog.timeout_ms > CF_WD_TIMEOUT_MAX_MS || u.watchdog.pad)
			return -EINVAL;
		return 0;
	case CF_CTRL_SUSPECT:
		/* what on_suspect checks before it looks at the system (the sender is checked by state) */
		if (u.suspect.sys >= m->geo.max_systems || u.suspect.epoch > CF_EPOCH_MASK)
			return -EINVAL;
		return 0;
	case CF_CTRL_RESTART_INFO:
		return 0;
	case CF_CTRL_LOCK_WAIT:
	case CF_CTRL_LOCK_CANCEL: /* the same body */
		/* what cf_lockq.c wait_check looks at before the sender's hold of the instance */
		if (u.lock_wait.klass >= m->geo.lock_entries || u.lock_wait.inst >= m->geo.max_instances ||
		    u.lock_wait.inst >= 56 || (u.lock_wait.mode != CF_LOCK_S && u.lock_wait.mode != CF_LOCK_X) ||
		    !u.lock_wait.ticket || u.lock_wait.epoch > CF_EPOCH_MASK)
			return -EINVAL;
		FUZZ_ASSERT(cf_lock_off(m, u.lock_wait.klass) + 8 <= m->off_records);
		return 0;
	case CF_CTRL_LOCK_KICK:
		if (u.lock_kick.klass >= m->geo.lock_entries)
			return -EINVAL;
		return 0;
	case CF_CTRL_LOCK_WAIT_R:
		/* what cf_session_lock_wait takes: a refusal, or a grant whose word the node then holds */
		if (u.lock_wait_r.status < 0)
			return 0;
		if (u.lock_wait_r.status > 0 || u.lock_wait_r.granted > 1 ||
		    (u.lock_wait_r.granted && !cf_lock_valid(u.lock_wait_r.word)))
			return -EBADMSG;
		return 0;
	case CF_CTRL_DUPLEX_INFO:
	case CF_CTRL_DUPLEX_INFO_R:
		return 0; /* known types (duplex); their fields are not modelled here yet */
	case CF_CTRL_METRICS:
		/* what cf_metrics_answer checks: a new snapshot starts at offset 0 */
		if (!u.metrics_req.snapshot && u.metrics_req.offset)
			return -EINVAL;
		return 0;
	case CF_CTRL_METRICS_R:
		/* what cfctl's fetch_metrics checks of a chunk */
		if (u.metrics_r.status < 0)
			return u.metrics_r.status;
		if (!u.metrics_r.snapshot || u.metrics_r.len > CF_METRICS_CHUNK || u.metrics_r.offset > u.metrics_r.total ||
		    u.metrics_r.len > u.metrics_r.total - u.metrics_r.offset)
			return -EBADMSG;
		return 0;
	case CF_CTRL_RESTART_INFO_R:
		if (u.restart_info.state > CF_RESTART_RECOVERY)
			return -EBADMSG;
		if (u.restart_info.left > m->geo.max_instances || u.restart_info.left > 64)
			return -EBADMSG;
		if ((uint32_t)__builtin_popcountll(u.restart_info.pending) != u.restart_info.left &&
		    u.restart_info.left <= 64)
			return -EBADMSG;
		FUZZ_ASSERT(strcmp(cf_restart_state_str(u.restart_info.state), "?") != 0);
		return 0;
	case CF_CTRL_STATUS:
	case CF_CTRL_ERROR:
		FUZZ_ASSERT(fz_text(u.status.msg, sizeof(u.status.msg), text, sizeof(text)) <= sizeof(u.status.msg));
		return u.status.status > 0 ? -EBADMSG : 0;
	case CF_CTRL_GRANTS:
		return fz_grants(&u.grants);
	case CF_CTRL_INST_GRANTS:
		/* the header is the CF's word: cf_log_scan refuses an impossible one, and read_ring wraps any head */
		return fz_grants(&u.inst_grants.grants);
	case CF_CTRL_INST_INFO: {
		uint64_t w = u.inst_info.reg;
		if (u.inst_info.status < 0)
			return 0;
		if (u.inst_info.index >= m->geo.max_instances || u.inst_info.home_sys >= m->geo.max_systems)
			return -EBADMSG;
		if (!cf_reg_valid(w))
			return -EBADMSG;
		FUZZ_ASSERT(cf_reg_state(w) <= CF_REG_STATE_MAX);
		FUZZ_ASSERT(cf_regword(cf_reg_state(w), cf_reg_owner(w), cf_reg_epoch(w), cf_reg_incident(w)) == w);
		FUZZ_ASSERT(strcmp(cf_reg_state_str(cf_reg_state(w)), "?") != 0);
		return 0;
	}
	case CF_CTRL_RECOVER_R:
		fz_text(u.recover_r.msg, sizeof(u.recover_r.msg), text, sizeof(text));
		if (u.recover_r.status == 0 && u.recover_r.sys >= m->geo.max_systems)
			return -EBADMSG;
		return 0;
	case CF_CTRL_EVENT:
		if (strcmp(cf_event_type_str(u.event.type), "?") == 0)
			return -EBADMSG;
		if (u.event.cause > CF_FAIL_EXITING)
			return -EBADMSG;
		FUZZ_ASSERT(strcmp(cf_fail_cause_str(u.event.cause), "unknown") != 0);
		switch (u.event.type) {
		case CF_EV_SYS_FAILED:
			if (u.event.sys >= m->geo.max_systems || u.event.epoch > CF_EPOCH_MASK)
				return -EBADMSG;
			break;
		case CF_EV_INST_FAILED:
		case CF_EV_INST_CLEAN:
		case CF_EV_RECOVER:
		case CF_EV_FENCE_CONFIRM:
		case CF_EV_FENCE_RETRY:
			if (u.event.inst >= m->geo.max_instances)
				return -EBADMSG;
			if (u.event.type != CF_EV_RECOVER && !cf_reg_valid(u.event.reg))
				return -EBADMSG;
			break;
		case CF_EV_POLICY:
			if (u.event.policy > CF_POLICY_OPERATOR)
				return -EBADMSG;
			break;
		case CF_EV_LOCK_GRANTED:
			/* sys: the lock class; reg: the word the grant left, naming the waiter */
			if (u.event.sys >= m->geo.lock_entries || u.event.inst >= m->geo.max_instances ||
			    !cf_lock_valid(u.event.reg) || !cf_lock_held_by(u.event.reg, u.event.inst))
				return -EBADMSG;
			break;
		}
		return 0;
	}
	FUZZ_ASSERT(0); /* cf_ctrl_check let an unknown type through */
	return -EBADMSG;
}

#endif
