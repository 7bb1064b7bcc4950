/* SPDX-License-Identifier: MIT */
/*
 * cf_wire.h - frames on a tcp connection, and control messages (both transports).
 *
 * tcp: a connection is a stream of frames. Every frame starts with
 * struct cf_frame_hdr (16 bytes, little-endian); `len` counts the whole frame.
 * Requests carry a client-chosen id; the response to a request carries the
 * same id. The server executes a connection's requests in the order received
 * and answers in that order (RC queue-pair semantics). Frames from the server
 * with op CF_OP_CTRL and id 0 are unsolicited events.
 *
 * verbs: one-sided ops are real RDMA operations; control messages are
 * two-sided SEND/RECV whose payload is exactly the ctrl message below (no
 * frame header).
 *
 * Control messages: struct cf_ctrl_hdr then a type-specific body. The body
 * structs are fixed-size; a message whose length differs from its type's body
 * size is malformed (-EBADMSG) and closes that connection.
 */
#ifndef CF_WIRE_H
#define CF_WIRE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_layout.h"

/*
 * Version 2: on tcp every frame after the handshake carries a MAC (CF_FF_MAC,
 * cf_auth.h "Frame integrity"). Version 3: both handshake MACs also bind the
 * HELLO's version range and role and the chosen version (struct
 * cf_auth_terms), so no peer on the path can pick the version. An older
 * peer's MACs would not verify, so it is refused at HELLO with an ERROR
 * naming both ranges. Version 4: a node's lock table keeps its record list's
 * span in the log header (cf_log_hdr.rec_span) and a counterpart reads only
 * that prefix; a version-3 owner would take entries beyond a span it never
 * wrote, so the two are not mixed on one CF.
 */
#define CF_PROTO_VERSION_MIN 4u
#define CF_PROTO_VERSION_MAX 4u
#define CF_HELLO_MAGIC 0x58504643u /* "CFPX" */

#define CF_FRAME_MAX_PAYLOAD (64u * 1024u)
#define CF_FRAME_MAX (CF_FRAME_MAX_PAYLOAD + 64u)
#define CF_CTRL_MAX 4096u

enum cf_op {
	CF_OP_READ = 1,  /* body: cf_req_rw; response payload: the bytes */
	CF_OP_WRITE = 2, /* body: cf_req_rw then len bytes; response: empty */
	CF_OP_CAS = 3,   /* body: cf_req_atomic; response: cf_resp_atomic (old value) */
	CF_OP_FAA = 4,   /* body: cf_req_atomic (compare = add); response: old value */
	CF_OP_CTRL = 5,  /* body: a ctrl message; response (if any) is a CTRL frame with the same id */
	CF_OP_RESP = 6,  /* server → client: cf_resp then payload */
};

/* Frame flags. */
#define CF_FF_NO_RESP 0x1u /* client does not want a completion (unsignaled) for a WRITE */
/*
 * tcp, protocol 2: the frame's last CF_FRAME_TAG_LEN bytes are its MAC (`len`
 * counts them). Every frame after the handshake has it, in both directions;
 * before, none may (cf_auth.h, "Frame integrity").
 */
#define CF_FF_MAC 0x2u
#define CF_FRAME_TAG_LEN 16u

struct cf_frame_hdr {
	uint32_t len; /* whole frame incl. this header */
	uint16_t op;
	uint16_t flags;
	uint64_t id;
};
_Static_assert(sizeof(struct cf_frame_hdr) == 16, "frame hdr");

struct cf_req_rw {
	uint64_t addr;
	uint32_t rkey;
	uint32_t len;
};
_Static_assert(sizeof(struct cf_req_rw) == 16, "req rw");

struct cf_req_atomic {
	uint64_t addr;
	uint32_t rkey;
	uint32_t pad;
	uint64_t compare; /* FAA: the addend */
	uint64_t swap;
};
_Static_assert(sizeof(struct cf_req_atomic) == 32, "req atomic");

struct cf_resp {
	int32_t status; /* 0 or -errno (CF_E* below for the grant errors) */
	uint32_t pad;
	uint64_t value; /* CAS/FAA: the old value */
};
_Static_assert(sizeof(struct cf_resp) == 16, "resp");
/* the largest frames (a full WRITE, a full READ's answer) keep room for the MAC */
_Static_assert(sizeof(struct cf_frame_hdr) + sizeof(struct cf_req_rw) + CF_FRAME_MAX_PAYLOAD + CF_FRAME_TAG_LEN <=
		       CF_FRAME_MAX, "frame max with tag");

/*
 * Error codes a one-sided request can get (negative errno values):
 *   -EACCES   no grant with that rkey on this connection, or right missing
 *   -ERANGE   address range outside the grant
 *   -EINVAL   misaligned atomic (not 8-byte aligned) or bad length
 *   -EMSGSIZE length above CF_FRAME_MAX_PAYLOAD
 */

/*
 * Validate a frame header read off the wire: 0 or -EBADMSG. With CF_FF_MAC the
 * per-op length rules apply to len - CF_FRAME_TAG_LEN.
 */
int cf_frame_check(const struct cf_frame_hdr *h);

/* ---------------- control messages ---------------- */

enum cf_ctrl_type {
	/* handshake (any role) */
	CF_CTRL_HELLO = 1,      /* c→s cf_hello */
	CF_CTRL_CHALLENGE = 2,  /* s→c cf_challenge */
	CF_CTRL_AUTH = 3,       /* c→s cf_auth */
	CF_CTRL_WELCOME = 4,    /* s→c cf_welcome (or CF_CTRL_ERROR) */
	/* system membership */
	CF_CTRL_JOIN = 10,      /* c→s cf_join: first connection of a system (its agent connection) */
	CF_CTRL_JOINED = 11,    /* s→c cf_joined */
	CF_CTRL_CONN_ATTACH = 12, /* c→s cf_conn_attach: a further connection of a joined system */
	CF_CTRL_GOODBYE = 13,   /* c→s cf_empty: clean leave of the whole system */
	CF_CTRL_PERSIST = 14,   /* c→s cf_persist_msg → cf_status: make a written range durable (verbs, --nvram) */
	/* lock hand-off (docs/design.md, "Lock hand-off"): system connections */
	CF_CTRL_LOCK_WAIT = 15,   /* c→s cf_lock_wait → cf_lock_wait_r: queue me for a class; granted now or by an event */
	CF_CTRL_LOCK_CANCEL = 16, /* c→s cf_lock_wait → cf_lock_wait_r: leave the queue (or learn it was granted) */
	CF_CTRL_LOCK_KICK = 17,   /* c→s cf_lock_kick, no reply: I released a queued (Q) class, serve its waiters */
	/* the sentinel (node/cf_sentinel.h): a system's death told as its process starts to exit */
	CF_CTRL_SENTINEL = 18, /* c→s cf_conn_attach → cf_status: this connection is the incarnation's sentinel */
	CF_CTRL_DIED = 19,     /* c→s cf_empty → cf_status, sentinel connection only: its system is exiting */
	/* instances */
	CF_CTRL_INST_OPEN = 20,   /* c→s cf_inst_name → cf_inst_info: find or create (home = sender) */
	CF_CTRL_INST_ATTACH = 21, /* c→s cf_inst_ref → cf_grants (cf_inst_grants if CF_ATTACH_LOG_HDR): log + record
				     list, only if ACTIVE(sender) */
	CF_CTRL_INST_UNREG = 22,  /* c→s cf_inst_ref → cf_status: ACTIVE(sender,k) → INACTIVE_CLEAN(k), revoke */
	/* console (role CF_ROLE_CONSOLE) */
	CF_CTRL_POLICY_SET = 30,  /* c→s cf_policy_msg → cf_status; pushed to all systems as an event */
	CF_CTRL_RECOVER = 31,     /* c→s cf_recover → cf_recover_r */
	CF_CTRL_FENCE_CONFIRM = 32, /* c→s cf_fence_confirm → cf_recover_r: the operator vouches SYSTEM is down */
	CF_CTRL_RECOVER_RETRY = 33, /* c→s cf_recover → cf_recover_r: `cfctl recover --retry` */
	CF_CTRL_WATCHDOG = 34,    /* system: cf_watchdog_msg → cf_status, right after JOINED, before any claim */
	CF_CTRL_SUSPECT = 35,     /* system: cf_suspect → cf_status: a peer's heartbeat looks silent to me */
	CF_CTRL_RESTART_INFO = 36,   /* c→s cf_empty → cf_restart_info: the CF's restart-recovery state */
	CF_CTRL_RESTART_INFO_R = 37, /* s→c cf_restart_info */
	/* console or monitor (role CF_ROLE_MONITOR: this request only) */
	CF_CTRL_METRICS = 38,        /* c→s cf_metrics_req → cf_metrics_r: one chunk of the OpenMetrics text */
	CF_CTRL_METRICS_R = 39,      /* s→c cf_metrics_r */
	/* replies and events */
	CF_CTRL_STATUS = 40,      /* s→c cf_status: generic reply */
	CF_CTRL_GRANTS = 41,      /* s→c cf_grants */
	CF_CTRL_INST_INFO = 42,   /* s→c cf_inst_info */
	CF_CTRL_RECOVER_R = 43,   /* s→c cf_recover_r */
	CF_CTRL_DUPLEX_INFO = 44,   /* console: cf_empty → cf_duplex_info: this CF's duplexing */
	CF_CTRL_DUPLEX_INFO_R = 45, /* s→c cf_duplex_info */
	CF_CTRL_LOCK_WAIT_R = 46,   /* s→c cf_lock_wait_r */
	CF_CTRL_INST_GRANTS = 47,   /* s→c cf_inst_grants: INST_ATTACH's answer to CF_ATTACH_LOG_HDR */
	CF_CTRL_EVENT = 50,       /* s→c cf_event, unsolicited (frame id 0) */
	CF_CTRL_ERROR = 60,       /* s→c cf_status with a message, then the server closes */
};

/*
 * CF_ROLE_MONITOR authenticates with the CF's monitor key (cfserver
 * --monitor-key), not the cluster key: the role chooses which key both MACs
 * of the handshake use, so a monitor key can only ever open a MONITOR
 * connection. A monitor gets no grants and may send CF_CTRL_METRICS only.
 */
enum cf_role { CF_ROLE_SYSTEM = 1, CF_ROLE_CONSOLE = 2, CF_ROLE_MONITOR = 3 };

struct cf_ctrl_hdr {
	uint16_t type;
	uint16_t pad;
	uint32_t len; /* whole message incl. this header */
};
_Static_assert(sizeof(struct cf_ctrl_hdr) == 8, "ctrl hdr");

#define CF_NONCE_LEN 32u
#define CF_MAC_LEN 32u /* crypto_auth_hmacsha512256 */
#define CF_KEY_LEN 32u

struct cf_hello {
	uint32_t magic; /* CF_HELLO_MAGIC */
	uint16_t version_min, version_max;
	uint32_t role; /* enum cf_role */
	uint32_t pad;
	uint8_t client_nonce[CF_NONCE_LEN];
};

/* The server proves it knows the key too: mac = HMAC(key, "srv" | client_nonce | server_nonce). */
struct cf_challenge {
	uint16_t version; /* chosen */
	uint16_t pad0;
	uint32_t pad1;
	uint8_t server_nonce[CF_NONCE_LEN];
	uint8_t mac[CF_MAC_LEN];
};

/* mac = HMAC(key, "cli" | server_nonce | client_nonce | role) */
struct cf_auth {
	uint8_t mac[CF_MAC_LEN];
};

struct cf_welcome {
	struct cf_geometry geo;
	uint64_t generation;
	uint64_t hb_interval_ns; /* h */
	uint64_t hb_timeout_ns;  /* T */
	uint64_t image_size;
	uint64_t policy;
};

/* A grant: a byte range of the image this connection may touch. */
#define CF_R_READ 0x1u
#define CF_R_WRITE 0x2u
#define CF_R_ATOMIC 0x4u

enum cf_region {
	CF_RGN_IMAGE = 1,     /* whole image (console: read only) */
	CF_RGN_HEADER = 2,
	CF_RGN_SYSTEMS = 3,
	CF_RGN_HB_OWN = 4,    /* this system's heartbeat slot */
	CF_RGN_INSTANCES = 5,
	CF_RGN_RINFO = 6,
	CF_RGN_LOCKS = 7,
	CF_RGN_RECORDS = 8,   /* one instance's record list (inst set) */
	CF_RGN_LOG = 9,       /* one instance's log region (inst set) */
	CF_RGN_HEARTBEATS = 10, /* all heartbeat slots, read */
};

struct cf_grant {
	uint32_t region;   /* enum cf_region */
	uint32_t inst;     /* instance index for RECORDS/LOG, else 0 */
	uint64_t image_off; /* where this range starts in the image */
	uint64_t addr;     /* remote address of the first byte of the range */
	uint64_t len;
	uint32_t rkey;
	uint32_t rights;   /* CF_R_* */
};
_Static_assert(sizeof(struct cf_grant) == 40, "grant");

#define CF_MAX_GRANTS 12u
struct cf_grants {
	int32_t status;
	uint32_t count;
	struct cf_grant g[CF_MAX_GRANTS];
};

struct cf_join {
	char name[CF_NAME_MAX];
	char host[CF_HOST_MAX];
	uint64_t pid;
	uint64_t starttime;
};

/*
 * Reply to JOIN: the system index, its new epoch, a token for further
 * connections, and the grants every system gets:
 *   HEADER r, SYSTEMS r, HEARTBEATS r, HB_OWN rw, INSTANCES r+atomic,
 *   RINFO rw, LOCKS r+atomic.
 */
struct cf_joined {
	int32_t status;
	uint32_t sys;
	uint32_t epoch;
	uint32_t flags; /* CF_JOINED_*; was pad (always 0), so an older CF reads as volatile */
	uint64_t token;
	struct cf_grants grants;
};

/*
 * The CF keeps its image on a medium that survives power loss (--nvram): a
 * node whose transport's completions do not imply durability (verbs) must
 * send CF_CTRL_PERSIST for what has to survive (cf_transport.h). Without the
 * flag nothing is persisted and no PERSIST is sent. The JOINED body keeps its
 * size (the flag takes the old pad word, which every earlier server zeroed),
 * so the protocol version stays 1: an older CF reads as volatile, which is
 * what it is over verbs (it never persisted a node's WRITEs).
 */
#define CF_JOINED_DURABLE 0x1u

struct cf_conn_attach {
	uint32_t sys;
	uint32_t epoch;
	uint64_t token;
};

struct cf_inst_name {
	char name[CF_NAME_MAX];
};

struct cf_inst_info {
	int32_t status;
	uint32_t index;
	uint32_t home_sys;
	uint32_t pad;
	uint64_t reg; /* registration word at the time of the reply */
};

struct cf_inst_ref {
	uint32_t index;
	uint32_t flags; /* CF_ATTACH_* (INST_ATTACH), else 0; was padding: a CF older than a flag ignores it */
};

/*
 * INST_ATTACH: answer with cf_inst_grants, the instance's log header with the
 * grants. The counterpart then reads the ring from the head at once: the
 * header's own READ was a round trip on the failover path. The CF reads the
 * header after its fence of the failed owner, so nothing writes it any more.
 * An older CF answers cf_grants, and the reader READs the header itself.
 */
#define CF_ATTACH_LOG_HDR 1u

struct cf_inst_grants {
	struct cf_grants grants;
	struct cf_log_hdr log; /* as the CF's memory held it when the grants went out */
};

struct cf_status {
	int32_t status; /* 0 or -errno */
	uint32_t pad;
	char msg[120];  /* human-readable reason, NUL-terminated */
};

struct cf_policy_msg {
	uint32_t policy; /* enum cf_policy */
	uint32_t pad;
};

struct cf_recover {
	char inst[CF_NAME_MAX];
	char on[CF_NAME_MAX]; /* system name, or empty for any live system */
};

struct cf_fence_confirm {
	char sys[CF_NAME_MAX]; /* the failed system the operator vouches for */
};

/* A system runs a watchdog that it pets only while its lease holds. */
struct cf_watchdog_msg {
	uint32_t timeout_ms; /* 0: none; at most CF_WD_TIMEOUT_MAX_MS */
	uint32_t pad;
};
#define CF_WD_TIMEOUT_MAX_MS 600000u

/*
 * Node-side detection (docs/design.md, "Who detects"): the sender read sys's
 * heartbeat slot one-sided and saw hb unchanged for its lease timeout while
 * sys was ACTIVE in epoch. The CF decides with its own clock (a sweep now).
 */
struct cf_suspect {
	uint32_t sys;
	uint32_t epoch;
	uint64_t hb;        /* the heartbeat counter the sender saw standing still */
	uint64_t silent_ms; /* for how long, by the sender's clock */
};

struct cf_recover_r {
	int32_t status;
	uint32_t sys; /* chosen system */
	char msg[120];
};

enum cf_event_type {
	CF_EV_SYS_FAILED = 1,  /* sys failed (epoch = the failed incarnation), already fenced */
	CF_EV_INST_FAILED = 2, /* inst is now INACTIVE_FAILED(incident); reg = the new word */
	CF_EV_POLICY = 3,      /* cluster policy changed to `policy` */
	CF_EV_RECOVER = 4,     /* operator asks this system to recover inst */
	CF_EV_INST_CLEAN = 5,  /* inst unregistered: INACTIVE_CLEAN (waiters may start) */
	CF_EV_FENCE_CONFIRM = 6, /* operator confirmed sys (epoch) down: the counterpart of inst may proceed */
	CF_EV_FENCE_RETRY = 7,   /* operator asks the counterpart of inst to retry its fence now */
	CF_EV_RESTART_DONE = 8, /* restart recovery over, lock table and record lists cleared: attach */
	/*
	 * Sent on the connection that asked (LOCK_WAIT), not the agent's: the
	 * CF's CAS gave the class to the waiter. sys = the lock class, inst and
	 * epoch = the waiter's, reg = the lock word the grant left, policy = the
	 * waiter's ticket (cf_lock_wait).
	 */
	CF_EV_LOCK_GRANTED = 9,
};

/*
 * A CF restarted on an --nvram image first recovers, from their durable logs,
 * every instance that was not FREE or INACTIVE_CLEAN at the restart: until
 * then it refuses INST_ATTACH for new work with CF_STATUS_RESTART_RECOVERY
 * (the node waits and retries), then it clears the lock table and record lists
 * and opens (docs/design.md, "Durability").
 */
enum cf_restart_state {
	CF_RESTART_OPEN = 0,     /* normal operation */
	CF_RESTART_RECOVERY = 1, /* attaches for new work refused until `left` reaches 0 */
};
#define CF_STATUS_RESTART_RECOVERY (-EAGAIN)

struct cf_restart_info {
	uint32_t state;   /* enum cf_restart_state */
	uint32_t left;    /* instances still to be recovered */
	uint64_t pending; /* bitmap of their indexes */
	uint64_t since_ns; /* CLOCK_REALTIME when the state was entered */
};

const char *cf_restart_state_str(uint32_t state);

/* A duplexed CF (docs/design.md, "A duplexed CF"), as the CF that answers sees it. */
enum cf_duplex_role { CF_DUPLEX_SINGLE = 0, CF_DUPLEX_PRIMARY = 1 };
enum cf_duplex_link {
	CF_DUPLEX_ALONE = 0,   /* no secondary: a death of this CF ends every incarnation */
	CF_DUPLEX_SYNCING = 1, /* a secondary is copying the image */
	CF_DUPLEX_IN_SYNC = 2, /* every durable write is acknowledged by both CFs */
	CF_DUPLEX_FENCING = 3, /* the secondary was lost: durable acknowledgements wait for its fence */
};
struct cf_duplex_info {
	uint32_t role;  /* enum cf_duplex_role */
	uint32_t link;  /* enum cf_duplex_link */
	uint64_t synced_bytes, image_bytes;
	char secondary[112]; /* "NAME pid P on HOST", NUL-terminated */
};
const char *cf_duplex_link_str(uint32_t link);

struct cf_event {
	uint32_t type;
	uint32_t sys;
	uint32_t epoch;
	uint32_t inst;
	uint64_t reg;
	uint64_t policy;
	uint64_t time_ns;   /* CLOCK_REALTIME at the CF when the failure was declared */
	uint32_t cause;     /* enum cf_fail_cause */
	uint32_t fence_us;  /* how long the CF fence took */
};

struct cf_empty {
	uint64_t pad;
};

/*
 * Lock hand-off. A node whose lock CAS found the class held asks to be
 * queued: the CF checks that the sender's system holds inst (its own record
 * of attached instances, at the sender's epoch), queues it behind the waiters
 * of that class (FIFO; S waiters at the head are served together), sets Q in
 * the word, and gives the class to the head with its own CAS whenever the
 * holders let it (at once, on a KICK, or by its backstop scan). The grant
 * goes in the reply when it can be made at once (granted 1), else as event
 * CF_EV_LOCK_GRANTED with the ticket. CANCEL (same body) takes a waiter off
 * the queue: granted 0 if it was still waiting, 1 (and the word) if the grant
 * happened first, in which case the node holds the class.
 */
struct cf_lock_wait {
	uint32_t klass;
	uint32_t inst;
	uint32_t epoch; /* the sender's system epoch: the X word's tag */
	uint32_t mode;  /* enum cf_lock_mode */
	uint64_t ticket; /* chosen by the node, unique per connection: the event names it */
};

struct cf_lock_wait_r {
	int32_t status; /* 0, or -errno: refused (EINVAL, EPERM, ENOSPC, ...): the node polls instead */
	uint32_t granted;
	uint64_t word;  /* granted: the word the CF's CAS left */
};

struct cf_lock_kick {
	uint32_t klass;
	uint32_t pad;
};

/*
 * PERSIST: make image bytes [offset, offset+length) durable at the CF; the
 * STATUS reply comes once they are. The range must lie inside one of the
 * sending connection's WRITE grants (-EINVAL otherwise, or when empty or
 * wrapping; nothing is persisted then). A volatile CF answers 0 at once.
 */
struct cf_persist_msg {
	uint64_t offset;
	uint64_t length;
};
_Static_assert(sizeof(struct cf_persist_msg) == 16, "persist");

/*
 * METRICS: the CF's metrics in the OpenMetrics text format (docs/design.md,
 * "Metrics"), fetched in chunks because a control message is at most
 * CF_CTRL_MAX bytes. A request with snapshot 0 makes the CF render a new
 * snapshot and answer its first chunk; the client then asks for the rest by
 * (snapshot, offset) until offset + len == total. The CF keeps the last few
 * snapshots (cfserver/cf_metrics.h): a request for one that is gone gets
 * status -ESTALE, and the client starts again. Fixed-size bodies of new types:
 * no protocol version change (an older CF closes on the unknown type).
 */
#define CF_METRICS_CHUNK 3968u
struct cf_metrics_req {
	uint64_t snapshot; /* 0: a new snapshot */
	uint32_t offset;   /* byte offset into the snapshot's text */
	uint32_t pad;
};
_Static_assert(sizeof(struct cf_metrics_req) == 16, "metrics req");

struct cf_metrics_r {
	int32_t status;    /* 0, -ESTALE (snapshot gone), -EINVAL (offset past the end) */
	uint32_t total;    /* bytes of the snapshot's text */
	uint64_t snapshot; /* its id (never 0) */
	uint32_t offset;   /* of this chunk */
	uint32_t len;      /* bytes of text in this chunk */
	char text[CF_METRICS_CHUNK];
};
_Static_assert(sizeof(struct cf_ctrl_hdr) + sizeof(struct cf_metrics_r) <= CF_CTRL_MAX, "metrics reply");

/* Size of the body for a ctrl type, or 0 if the type is unknown. */
size_t cf_ctrl_body_size(uint16_t type);
/*
 * Check a received control message (whole, len bytes): 0 or -EBADMSG when the
 * header is short, the type unknown, or the length does not match the type.
 */
int cf_ctrl_check(const void *msg, size_t len);
/* Build a message: header + body into out (cap >= sizeof hdr + body); returns total length. */
size_t cf_ctrl_build(void *out, uint16_t type, const void *body, size_t body_len);
const char *cf_ctrl_type_str(uint16_t type);
const char *cf_event_type_str(uint32_t type);

/* Largest control message body. */
#define CF_CTRL_BODY_MAX (sizeof(struct cf_metrics_r))
_Static_assert(sizeof(struct cf_joined) <= CF_CTRL_BODY_MAX, "ctrl body max");
_Static_assert(sizeof(struct cf_ctrl_hdr) + CF_CTRL_BODY_MAX <= CF_CTRL_MAX, "ctrl max");

#endif
