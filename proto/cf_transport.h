/* SPDX-License-Identifier: MIT */
/*
 * cf_transport.h - the one transport interface, client side and server side.
 *
 * Everything above this interface is written once. Two backends implement it
 * with the same semantics:
 *   tcp   - cfserver executes each one-sided request on the CF image in its
 *           loop thread; every CAS/FAA/8-byte WRITE is linearizable against
 *           all others (the loop executes requests one at a time).
 *   verbs - rdma-core: librdmacm, one RC queue pair per connection, real
 *           READ/WRITE/CAS/FAA on registered memory.
 *
 * Semantics both backends give (the protocol relies on them; see
 * docs/design.md §0, M1-M6):
 *   - Requests posted on one connection execute at the CF in post order (RC).
 *     So a record-list WRITE posted before a lock CAS lands first, and only
 *     the CAS completion needs awaiting.
 *   - A completion means the op executed and is visible at the CF, and
 *     nothing more: with --nvram it is not yet durable, over either backend
 *     (a NIC wrote the CF's memory, not its medium; the tcp server answers
 *     as soon as it executed the op).
 *   - Persist: "make image bytes [off, off+len) durable at the CF; return
 *     once they are". One mechanism for both backends: a CF_CTRL_PERSIST
 *     request on the same connection (cf_session_persist). Connection order
 *     puts it behind every WRITE posted before it; the CF persists the range,
 *     grouped with the other PERSISTs and its own control-path writes of its
 *     loop iteration, and answers. Sent only when the CF says it is durable
 *     (JOINED flag CF_JOINED_DURABLE): a DRAM CF has nothing to make durable.
 *     Persisting only covers bytes whose WRITE completed (or was posted
 *     before it on the same connection). docs/design.md, "Durability", has
 *     the contract per medium and the hardware assumptions.
 *   - A connection that reports an error is dead; its incarnation is over.
 *   - Server fence is a barrier: when fence() returns, no request of that
 *     connection executes any more, even one already received.
 *
 * All functions return 0 (or a count/length) or a negative errno.
 */
#ifndef CF_TRANSPORT_H
#define CF_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "cf_wire.h"

struct ev_loop;

/* ---------------- client side ---------------- */

struct cf_conn; /* one connection = one RC queue pair (verbs) or one socket (tcp) */

struct cf_wc {
	uint64_t wr_id;
	int32_t status; /* 0 or -errno */
	uint32_t op;    /* enum cf_op */
	uint64_t value; /* CAS/FAA: the old value */
};

#define CF_POST_UNSIGNALED 0x1u /* no completion reported for this op (WRITE only) */

struct cf_client_ops {
	const char *name;
	/* Connect to "host:port" (tcp) or "addr:port" (verbs, rdma_cm). Raw: no handshake. */
	int (*connect)(const char *addr, int timeout_ms, struct cf_conn **out);
	void (*close)(struct cf_conn *c); /* accepts NULL */
	/* One-sided posts; `local` must stay valid until the completion. */
	int (*post_read)(struct cf_conn *c, void *local, uint32_t len, uint64_t raddr, uint32_t rkey,
			 uint64_t wr_id, unsigned flags);
	int (*post_write)(struct cf_conn *c, const void *local, uint32_t len, uint64_t raddr, uint32_t rkey,
			  uint64_t wr_id, unsigned flags);
	int (*post_cas)(struct cf_conn *c, uint64_t raddr, uint32_t rkey, uint64_t compare, uint64_t swap,
			uint64_t wr_id, unsigned flags);
	int (*post_faa)(struct cf_conn *c, uint64_t raddr, uint32_t rkey, uint64_t add, uint64_t wr_id,
			unsigned flags);
	/*
	 * Push posted work out and reap up to max completions, waiting up to
	 * timeout_ms (0: don't wait, -1: forever) for at least one. Returns the
	 * count, or -errno when the connection is dead (then every outstanding op
	 * is lost: the caller's incarnation is over).
	 */
	int (*poll)(struct cf_conn *c, struct cf_wc *wc, int max, int timeout_ms);
	/* Two-sided control messages (whole cf_ctrl messages). */
	int (*send_ctrl)(struct cf_conn *c, const void *msg, size_t len);
	/*
	 * Receive one control message (a reply or an event) into buf; returns its
	 * length, -ETIMEDOUT, or -errno. Events arriving while poll() waits for
	 * completions are queued for recv_ctrl.
	 */
	int (*recv_ctrl)(struct cf_conn *c, void *buf, size_t cap, int timeout_ms);
	/* An fd that becomes readable when recv_ctrl may have something (libev). */
	int (*ctrl_fd)(struct cf_conn *c);
	/* Are control messages queued already (so the fd need not fire)? */
	int (*ctrl_pending)(struct cf_conn *c);
	/*
	 * Frame integrity (cf_auth.h): from the next frame on, every frame sent
	 * carries a MAC under tx and every frame received must carry one under
	 * rx, counted from 0 in each direction; a received frame whose MAC fails
	 * kills the connection (-EBADMSG). The session calls it right after its
	 * AUTH went out. Exception: the first frame received may be an ERROR
	 * without a MAC (the server refused the AUTH, so it has no keys); it is
	 * delivered and the connection is dead after it. NULL where the backend
	 * has no frames of its own to protect (verbs: docs/design.md §7).
	 */
	int (*set_frame_keys)(struct cf_conn *c, const uint8_t tx[CF_KEY_LEN], const uint8_t rx[CF_KEY_LEN]);
	/*
	 * May be NULL (a backend whose posts never wait: verbs refuses a full
	 * queue). fn(arg) is asked between the waits of a post that cannot go out
	 * yet (tcp: a socket whose send buffer stays full, a peer cut off); a
	 * -errno kills the connection with it at once instead of after the
	 * flush timeout. The session's abort and stall hook (cf_session.h).
	 */
	void (*set_stop)(struct cf_conn *c, int (*fn)(void *arg), void *arg);
};

/* ---------------- server side ---------------- */

struct cf_sconn; /* the server's end of one connection */
struct cf_persist;
struct cf_tserver;

struct cf_server_cbs {
	void *arg;
	/* A connection arrived (raw, before any handshake). */
	void (*on_accept)(void *arg, struct cf_sconn *sc);
	/* A whole control message arrived on sc (already length-checked against CF_CTRL_MAX). */
	void (*on_ctrl)(void *arg, struct cf_sconn *sc, uint64_t id, const void *msg, size_t len);
	/*
	 * sc closed: by the peer (clean = it said goodbye first... the server
	 * decides that; the transport reports only the close), by an error, or
	 * after fence(). After this call sc is invalid.
	 */
	void (*on_close)(void *arg, struct cf_sconn *sc, int err);
};

struct cf_server_ops {
	const char *name;
	/* Listen on addr ("host:port"), serve the image (size bytes) from loop. */
	int (*listen)(struct ev_loop *loop, const char *addr, void *image, uint64_t size,
		      const struct cf_server_cbs *cbs, struct cf_tserver **out);
	void (*destroy)(struct cf_tserver *t); /* closes every connection */
	/* The bound port (for tests using port 0). */
	int (*port)(struct cf_tserver *t);
	/* Send a control message on sc; id 0 for events, else the request id it answers. */
	int (*send_ctrl)(struct cf_sconn *sc, uint64_t id, const void *msg, size_t len);
	/* Grant sc access to [off, off+len) of the image with rights CF_R_*; fills g. */
	int (*grant)(struct cf_sconn *sc, uint32_t region, uint32_t inst, uint64_t off, uint64_t len,
		     uint32_t rights, struct cf_grant *g);
	/* Revoke one grant (by rkey); its rkey is invalid on return. */
	int (*revoke)(struct cf_sconn *sc, uint32_t rkey);
	/* Barrier fence: revoke everything, drop queued requests, close. on_close follows. */
	int (*fence)(struct cf_sconn *sc);
	/* Close sc gracefully after flushing queued replies (e.g. after an ERROR message). */
	void (*close)(struct cf_sconn *sc);
	/*
	 * The server's own atomic on an image word (linearizable with all client
	 * atomics: the loop thread on tcp, a loopback queue pair on verbs).
	 */
	int (*local_cas)(struct cf_tserver *t, uint64_t off, uint64_t compare, uint64_t swap, uint64_t *old);
	/* Opaque per-connection pointer for the server core. */
	void (*set_data)(struct cf_sconn *sc, void *data);
	void *(*get_data)(struct cf_sconn *sc);
	/* Peer address as text, for logs. */
	const char *(*peer)(struct cf_sconn *sc);
	/*
	 * Frame integrity (cf_auth.h): from the next frame on, every frame sent
	 * on sc carries a MAC under tx, and every frame received must carry one
	 * under rx; one that does not, or whose MAC fails, closes sc (on_close
	 * with -EBADMSG). Called when the AUTH verified, before WELCOME is sent.
	 * NULL where the backend has no frames of its own (verbs).
	 */
	int (*set_frame_keys)(struct cf_sconn *sc, const uint8_t tx[CF_KEY_LEN], const uint8_t rx[CF_KEY_LEN]);
};

extern const struct cf_client_ops cf_tcp_client;
extern const struct cf_client_ops cf_verbs_client;
extern const struct cf_server_ops cf_tcp_server;
extern const struct cf_server_ops cf_verbs_server;

#endif
