/* SPDX-License-Identifier: MIT */
#include "cf_wire.h"

#include <errno.h>
#include <string.h>

#include "cf_util.h"

int cf_frame_check(const struct cf_frame_hdr *h)
{
	uint32_t tag = h->flags & CF_FF_MAC ? CF_FRAME_TAG_LEN : 0, len;

	if (h->len < sizeof(*h) + tag || h->len > CF_FRAME_MAX)
		return CF_CORRUPT();
	len = h->len - tag; /* header and body: what the per-op rules are about */
	switch (h->op) {
	case CF_OP_READ:
		if (len != sizeof(*h) + sizeof(struct cf_req_rw))
			return CF_CORRUPT();
		break;
	case CF_OP_WRITE:
		if (len < sizeof(*h) + sizeof(struct cf_req_rw))
			return CF_CORRUPT();
		break;
	case CF_OP_CAS:
	case CF_OP_FAA:
		if (len != sizeof(*h) + sizeof(struct cf_req_atomic))
			return CF_CORRUPT();
		break;
	case CF_OP_CTRL:
		if (len < sizeof(*h) + sizeof(struct cf_ctrl_hdr) || len > sizeof(*h) + CF_CTRL_MAX)
			return CF_CORRUPT();
		break;
	case CF_OP_RESP:
		if (len < sizeof(*h) + sizeof(struct cf_resp))
			return CF_CORRUPT();
		break;
	default:
		return CF_CORRUPT();
	}
	if (h->flags & ~(CF_FF_NO_RESP | CF_FF_MAC))
		return CF_CORRUPT();
	return 0;
}

size_t cf_ctrl_body_size(uint16_t type)
{
	switch (type) {
	case CF_CTRL_HELLO: return sizeof(struct cf_hello);
	case CF_CTRL_CHALLENGE: return sizeof(struct cf_challenge);
	case CF_CTRL_AUTH: return sizeof(struct cf_auth);
	case CF_CTRL_WELCOME: return sizeof(struct cf_welcome);
	case CF_CTRL_JOIN: return sizeof(struct cf_join);
	case CF_CTRL_JOINED: return sizeof(struct cf_joined);
	case CF_CTRL_CONN_ATTACH: return sizeof(struct cf_conn_attach);
	case CF_CTRL_GOODBYE: return sizeof(struct cf_empty);
	case CF_CTRL_PERSIST: return sizeof(struct cf_persist_msg);
	case CF_CTRL_LOCK_WAIT: return sizeof(struct cf_lock_wait);
	case CF_CTRL_LOCK_CANCEL: return sizeof(struct cf_lock_wait);
	case CF_CTRL_LOCK_KICK: return sizeof(struct cf_lock_kick);
	case CF_CTRL_SENTINEL: return sizeof(struct cf_conn_attach);
	case CF_CTRL_DIED: return sizeof(struct cf_empty);
	case CF_CTRL_LOCK_WAIT_R: return sizeof(struct cf_lock_wait_r);
	case CF_CTRL_INST_OPEN: return sizeof(struct cf_inst_name);
	case CF_CTRL_INST_ATTACH: return sizeof(struct cf_inst_ref);
	case CF_CTRL_INST_UNREG: return sizeof(struct cf_inst_ref);
	case CF_CTRL_POLICY_SET: return sizeof(struct cf_policy_msg);
	case CF_CTRL_RECOVER: return sizeof(struct cf_recover);
	case CF_CTRL_FENCE_CONFIRM: return sizeof(struct cf_fence_confirm);
	case CF_CTRL_RECOVER_RETRY: return sizeof(struct cf_recover);
	case CF_CTRL_WATCHDOG: return sizeof(struct cf_watchdog_msg);
	case CF_CTRL_SUSPECT: return sizeof(struct cf_suspect);
	case CF_CTRL_RESTART_INFO: return sizeof(struct cf_empty);
	case CF_CTRL_RESTART_INFO_R: return sizeof(struct cf_restart_info);
	case CF_CTRL_DUPLEX_INFO: return sizeof(struct cf_empty);
	case CF_CTRL_DUPLEX_INFO_R: return sizeof(struct cf_duplex_info);
	case CF_CTRL_METRICS: return sizeof(struct cf_metrics_req);
	case CF_CTRL_METRICS_R: return sizeof(struct cf_metrics_r);
	case CF_CTRL_STATUS: return sizeof(struct cf_status);
	case CF_CTRL_GRANTS: return sizeof(struct cf_grants);
	case CF_CTRL_INST_GRANTS: return sizeof(struct cf_inst_grants);
	case CF_CTRL_INST_INFO: return sizeof(struct cf_inst_info);
	case CF_CTRL_RECOVER_R: return sizeof(struct cf_recover_r);
	case CF_CTRL_EVENT: return sizeof(struct cf_event);
	case CF_CTRL_ERROR: return sizeof(struct cf_status);
	}
	return 0;
}

int cf_ctrl_check(const void *msg, size_t len)
{
	struct cf_ctrl_hdr h;
	size_t body;

	if (len < sizeof(h) || len > CF_CTRL_MAX)
		return CF_CORRUPT();
	memcpy(&h, msg, sizeof(h));
	body = cf_ctrl_body_size(h.type);
	if (!body || h.len != len || len != sizeof(h) + body || h.pad)
		return CF_CORRUPT();
	return 0;
}

size_t cf_ctrl_build(void *out, uint16_t type, const void *body, size_t body_len)
{
	struct cf_ctrl_hdr h = {.type = type, .pad = 0, .len = (uint32_t)(sizeof(h) + body_len)};

	memcpy(out, &h, sizeof(h));
	if (body_len)
		memcpy((char *)out + sizeof(h), body, body_len);
	return sizeof(h) + body_len;
}

const char *cf_ctrl_type_str(uint16_t type)
{
	switch (type) {
	case CF_CTRL_HELLO: return "HELLO";
	case CF_CTRL_CHALLENGE: return "CHALLENGE";
	case CF_CTRL_AUTH: return "AUTH";
	case CF_CTRL_WELCOME: return "WELCOME";
	case CF_CTRL_JOIN: return "JOIN";
	case CF_CTRL_JOINED: return "JOINED";
	case CF_CTRL_CONN_ATTACH: return "CONN_ATTACH";
	case CF_CTRL_GOODBYE: return "GOODBYE";
	case CF_CTRL_PERSIST: return "PERSIST";
	case CF_CTRL_LOCK_WAIT: return "LOCK_WAIT";
	case CF_CTRL_LOCK_CANCEL: return "LOCK_CANCEL";
	case CF_CTRL_LOCK_KICK: return "LOCK_KICK";
	case CF_CTRL_SENTINEL: return "SENTINEL";
	case CF_CTRL_DIED: return "DIED";
	case CF_CTRL_LOCK_WAIT_R: return "LOCK_WAIT_R";
	case CF_CTRL_INST_GRANTS: return "INST_GRANTS";
	case CF_CTRL_INST_OPEN: return "INST_OPEN";
	case CF_CTRL_INST_ATTACH: return "INST_ATTACH";
	case CF_CTRL_INST_UNREG: return "INST_UNREG";
	case CF_CTRL_POLICY_SET: return "POLICY_SET";
	case CF_CTRL_RECOVER: return "RECOVER";
	case CF_CTRL_FENCE_CONFIRM: return "FENCE_CONFIRM";
	case CF_CTRL_RECOVER_RETRY: return "RECOVER_RETRY";
	case CF_CTRL_WATCHDOG: return "WATCHDOG";
	case CF_CTRL_SUSPECT: return "SUSPECT";
	case CF_CTRL_RESTART_INFO: return "RESTART_INFO";
	case CF_CTRL_RESTART_INFO_R: return "RESTART_INFO_R";
	case CF_CTRL_DUPLEX_INFO: return "DUPLEX_INFO";
	case CF_CTRL_DUPLEX_INFO_R: return "DUPLEX_INFO_R";
	case CF_CTRL_METRICS: return "METRICS";
	case CF_CTRL_METRICS_R: return "METRICS_R";
	case CF_CTRL_STATUS: return "STATUS";
	case CF_CTRL_GRANTS: return "GRANTS";
	case CF_CTRL_INST_INFO: return "INST_INFO";
	case CF_CTRL_RECOVER_R: return "RECOVER_R";
	case CF_CTRL_EVENT: return "EVENT";
	case CF_CTRL_ERROR: return "ERROR";
	}
	return "?";
}

const char *cf_event_type_str(uint32_t type)
{
	switch (type) {
	case CF_EV_SYS_FAILED: return "SYS_FAILED";
	case CF_EV_INST_FAILED: return "INST_FAILED";
	case CF_EV_POLICY: return "POLICY";
	case CF_EV_RECOVER: return "RECOVER";
	case CF_EV_INST_CLEAN: return "INST_CLEAN";
	case CF_EV_FENCE_CONFIRM: return "FENCE_CONFIRM";
	case CF_EV_FENCE_RETRY: return "FENCE_RETRY";
	case CF_EV_RESTART_DONE: return "RESTART_DONE";
	case CF_EV_LOCK_GRANTED: return "LOCK_GRANTED";
	}
	return "?";
}

const char *cf_duplex_link_str(uint32_t link)
{
	switch (link) {
	case CF_DUPLEX_ALONE: return "alone";
	case CF_DUPLEX_SYNCING: return "syncing";
	case CF_DUPLEX_IN_SYNC: return "in-sync";
	case CF_DUPLEX_FENCING: return "fencing";
	}
	return "?";
}

const char *cf_restart_state_str(uint32_t state)
{
	switch (state) {
	case CF_RESTART_OPEN: return "open";
	case CF_RESTART_RECOVERY: return "restart recovery";
	}
	return "?";
}
