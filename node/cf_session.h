/* SPDX-License-Identifier: MIT */
/*
 * cf_session.h - one authenticated connection to cfserver, over either
 * transport, with its grants; addressing by image offset.
 *
 * A session is used by one thread at a time. Upper layers (locks, log,
 * transactions, recovery, cfctl) never see rkeys: they name image offsets
 * (cf_layout.h helpers) and the session finds the grant that covers them.
 */
#ifndef CF_SESSION_H
#define CF_SESSION_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cf_layout.h"
#include "cf_transport.h"
#include "cf_wire.h"

#define CF_SESSION_MAX_GRANTS 64u
#define CF_SESSION_EVQ 64u

struct cf_session {
	const struct cf_client_ops *ops;
	struct cf_conn *conn;
	uint32_t role;
	struct cf_welcome welcome; /* geometry, generation, h, T, policy */
	struct cf_image_map map;
	/* system role */
	uint32_t sys;
	uint32_t epoch;
	uint64_t token;
	uint32_t cf_flags;     /* CF_JOINED_* from the CF (CF_JOINED_DURABLE) */
	uint64_t persist_reqs; /* PERSIST requests sent */
	struct cf_grant grants[CF_SESSION_MAX_GRANTS];
	uint32_t ngrants;
	uint64_t next_wr;
	int dead; /* -errno once the connection failed: the incarnation is over */
	char addr[128]; /* the CF this session reached (one of a "A,B" list) */
	char err_msg[136]; /* why the last open or request was refused (cf_session_error_msg), or "" */
	/* events received while waiting for a reply */
	struct cf_event evq[CF_SESSION_EVQ];
	uint32_t evq_head, evq_len;
	uint64_t ev_dropped;
	/* -errno another thread asked this session to end with (cf_session_abort), 0: none */
	_Atomic int abort_err;
	/*
	 * May be NULL. Looked at between the same slices: -errno ends the
	 * session (the agent's "the CF stopped answering", cf_agent.c), 0 goes on.
	 * Set after cf_session_open (which clears the session).
	 */
	int (*stall_fn)(void *arg);
	void *stall_arg;
	/* lock hand-off: the one LOCK_WAIT this session has pending (ticket 0: none) and its grant */
	uint64_t lk_ticket, lk_word;
	bool lk_granted;
};

/* "tcp" or "verbs" → ops, or NULL. */
const struct cf_client_ops *cf_transport_by_name(const char *name);

/*
 * Connect and authenticate (HELLO/CHALLENGE/AUTH/WELCOME). addr is one CF or
 * a duplexed pair "A,B" (each tried in turn until one answers, within the
 * connect bound); s->addr says which. Errors:
 * -ECONNREFUSED/-ETIMEDOUT/-EHOSTUNREACH (unreachable), -EPROTO (version),
 * -EPERM (key refused, or the server failed to prove the key).
 * A console session gets its read grant here.
 */
int cf_session_open(struct cf_session *s, const char *transport, const char *addr,
		    const uint8_t key[CF_KEY_LEN], enum cf_role role, int timeout_ms);

/*
 * The connect-and-handshake bound for a timeout_ms <= 0: the environment's
 * CF_CONNECT_TIMEOUT_MS (1..600000) if set and valid, else 3000 ms. The same
 * idea as libpq's PGCONNECT_TIMEOUT: a slow fabric (or the soft-RoCE rig under
 * CPU emulation) is configured once, for every tool.
 */
int cf_session_connect_timeout(int timeout_ms);
void cf_session_close(struct cf_session *s); /* accepts a half-open session */
/* Why the last open or request was refused, in words, or NULL: "the CF says: " and its
 * own words (e.g. both version ranges), or this client's when it refused the CF's answer. */
const char *cf_session_error_msg(const struct cf_session *s);
/* The CF went away under a request or a handshake (not refused, not unreachable): a connection lost. */
static inline bool cf_conn_lost(int r)
{
	return r == -ECONNRESET || r == -ECONNABORTED || r == -EPIPE || r == -ENOTCONN;
}

/*
 * From another thread: make the thread using s stop waiting on it. Every wait
 * of the session (an op's completion, a control reply) looks at err between
 * slices of at most 20 ms and then ends the session with it, as a lost
 * connection would. Used when the CF switches (cf_node.c): a workload thread
 * blocked on a frozen CF gets its error within 20 ms, not after the op
 * timeout. Nothing else of s is touched here.
 */
void cf_session_abort(struct cf_session *s, int err);

/* First connection of a system: JOIN → sys, epoch, token, grants. */
int cf_session_join(struct cf_session *s, const char *name, const char *host, uint64_t pid,
		    uint64_t starttime);
/* A further connection of a joined system (heartbeat, workload). */
int cf_session_attach(struct cf_session *s, uint32_t sys, uint32_t epoch, uint64_t token);
/*
 * The sentinel's connection of a joined system (node/cf_sentinel.h): no
 * grants; its close is no failure. died: the system's process is exiting,
 * the CF declares it failed (the answer may be lost to the fence: a lost
 * connection after the send is the usual end).
 */
int cf_session_sentinel(struct cf_session *s, uint32_t sys, uint32_t epoch, uint64_t token);
int cf_session_died(struct cf_session *s, int timeout_ms);
/* Clean leave (agent connection). */
int cf_session_goodbye(struct cf_session *s);

/*
 * Request/reply RPC: send a ctrl message, wait for the reply of reply_type
 * (or CF_CTRL_STATUS/ERROR), queueing events that arrive meanwhile.
 * Returns 0 with the reply body copied to reply, or -errno.
 */
int cf_session_rpc(struct cf_session *s, uint16_t type, const void *body, size_t body_len,
		   uint16_t reply_type, void *reply, size_t reply_len, int timeout_ms);
/* Instance helpers over cf_session_rpc. */
int cf_session_inst_open(struct cf_session *s, const char *name, struct cf_inst_info *out);
int cf_session_inst_attach(struct cf_session *s, uint32_t inst); /* adds LOG and RECORDS grants */
/*
 * The same, and the instance's log header as the CF held it when it granted
 * (CF_ATTACH_LOG_HDR): 1 with *hdr filled, 0 when the CF is older and did not
 * send it (read it yourself), or -errno.
 */
int cf_session_inst_attach_log(struct cf_session *s, uint32_t inst, struct cf_log_hdr *hdr);
int cf_session_inst_unreg(struct cf_session *s, uint32_t inst, char *msg, size_t msglen);
/* Drop local knowledge of an instance's grants (after unregister). */
void cf_session_forget_inst(struct cf_session *s, uint32_t inst);

/* Next event: from the queue, or from the wire within timeout_ms. -ETIMEDOUT if none. */
int cf_session_next_event(struct cf_session *s, struct cf_event *ev, int timeout_ms);
/* fd for libev: readable when an event may be waiting (check cf_session_event_pending too). */
/*
 * Lock hand-off (cf_wire.h, struct cf_lock_wait; docs/design.md, "Lock
 * hand-off"), one wait at a time per session. lock_wait: 1 granted at once
 * (*word), 0 queued, or -errno: refused (the CF's status: -ENOSYS from a CF
 * without hand-off) or the session's death. lock_granted: wait up to
 * timeout_ms for the queued wait's grant: 0 (*word), -ETIMEDOUT, -errno.
 * lock_cancel: leave the queue: 0 left, 1 the grant came first (*word, the
 * class is held). lock_kick: tell the CF a queued class was released (no
 * reply).
 */
int cf_session_lock_wait(struct cf_session *s, const struct cf_lock_wait *w, uint64_t *word);
int cf_session_lock_granted(struct cf_session *s, int timeout_ms, uint64_t *word);
int cf_session_lock_cancel(struct cf_session *s, const struct cf_lock_wait *w, uint64_t *word);
int cf_session_lock_kick(struct cf_session *s, uint32_t klass);

int cf_session_fd(struct cf_session *s);
int cf_session_event_pending(struct cf_session *s);

/* The grant covering [off, off+len) with rights, or NULL. */
const struct cf_grant *cf_session_grant_for(const struct cf_session *s, uint64_t off, uint64_t len,
					    uint32_t rights);

/*
 * One-sided ops by image offset. Synchronous forms wait for the completion
 * (bounded by the session's op timeout); post forms return at once and their
 * completion is reaped by cf_session_wait/drain. -EACCES when no grant covers
 * the range (checked locally first, and by the server).
 */
int cf_session_read(struct cf_session *s, uint64_t off, void *buf, uint32_t len);
int cf_session_write(struct cf_session *s, uint64_t off, const void *buf, uint32_t len);
int cf_session_cas(struct cf_session *s, uint64_t off, uint64_t compare, uint64_t swap, uint64_t *old);
int cf_session_faa(struct cf_session *s, uint64_t off, uint64_t add, uint64_t *old);
/* Post a WRITE without waiting (unsignaled when flags has CF_POST_UNSIGNALED). */
int cf_session_post_write(struct cf_session *s, uint64_t off, const void *buf, uint32_t len, unsigned flags);
/* Post a READ without waiting: buf holds the data once cf_session_drain returns 0. */
int cf_session_post_read(struct cf_session *s, uint64_t off, void *buf, uint32_t len);
/*
 * The record-list WRITE and the lock CAS in one round trip: both posted on
 * this connection (RC order: the WRITE lands first), only the CAS awaited.
 */
int cf_session_write_then_cas(struct cf_session *s, uint64_t woff, const void *wbuf, uint32_t wlen,
			      uint64_t coff, uint64_t compare, uint64_t swap, uint64_t *old);
/* Wait until every posted op has completed (unsignaled ones are covered by a later signaled one). */
int cf_session_drain(struct cf_session *s);

/*
 * Does making bytes durable at the CF need a request on this session? When
 * the CF is durable (--nvram, or a duplexed pair: JOINED flag), over either
 * transport: a completion is never durability (cf_transport.h).
 */
static inline int cf_session_persist_needed(const struct cf_session *s)
{
	return (s->cf_flags & CF_JOINED_DURABLE) && s->ops;
}

/*
 * Make image bytes [off, off+len) durable at the CF; returns once they are
 * (cf_transport.h, "Persist"). Covers every WRITE posted on this session
 * before it. 0 at once where nothing is needed; else one CF_CTRL_PERSIST
 * round trip: -EINVAL when the range is not inside one of the session's
 * write grants, or the session's error.
 */
int cf_session_persist(struct cf_session *s, uint64_t off, uint64_t len);

/*
 * A batch of one-sided ops, posted together and reaped together: n ops cost
 * about one round trip instead of n (the transport pipelines them; RC order
 * still holds). Each op gets its own status (0 or -errno) and, for CAS/FAA,
 * the old value. Returns 0 when every op was executed, or the session's
 * error: the connection is dead, or the CF refused an op of this batch or an
 * earlier one (a refusal ends the session on every transport, as it ends an
 * RC queue pair; ops still at status 1 then have an unknown outcome). An op
 * refused here, before posting (no grant: -EACCES, bad op: -EINVAL), has that
 * status and the session lives.
 */
struct cf_batch_op {
	uint32_t op;      /* CF_OP_READ, CF_OP_WRITE, CF_OP_CAS, CF_OP_FAA */
	uint32_t len;     /* READ/WRITE bytes */
	uint64_t off;     /* image offset */
	void *buf;        /* READ destination / WRITE source */
	uint64_t compare; /* CAS compare, FAA addend */
	uint64_t swap;
	uint64_t value;   /* out: CAS/FAA old value */
	int32_t status;   /* out */
};
#define CF_BATCH_DEPTH 32u /* ops in flight at once, within every backend's queue depth */
int cf_session_batch(struct cf_session *s, struct cf_batch_op *ops, size_t n);

/* Default op timeout (ms) before a connection is declared dead. */
#define CF_SESSION_OP_TIMEOUT_MS 5000

#endif
