/* SPDX-License-Identifier: MIT */
/*
 * cf_verbs_client.h - the verbs backend's client side, internal (not
 * installed): one connection's state, shared by its two files.
 *   cf_verbs_client.c     connection setup and teardown (rdma_cm, PD, CQ,
 *                         QP, the registered buffer) and the ops table
 *   cf_verbs_client_io.c  the data path: arena, send queue, completions,
 *                         posts, poll, control messages (cf_vc_*)
 * Outside these two files only the ops table, struct cf_client_ops
 * cf_verbs_client (cf_transport.h), is used.
 */
#ifndef CF_VERBS_CLIENT_H
#define CF_VERBS_CLIENT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "cf_transport.h"
#include "cf_verbs_err.h"

#define CL_SQ_DEPTH 128u
#define CL_RQ_DEPTH 16u
#define CL_SIGNAL_EVERY (CL_SQ_DEPTH / 4u)
#define CL_ARENA (1u << 20)             /* >= 4 x CF_FRAME_MAX_PAYLOAD, see sq_room() */
#define CL_WCQ (2u * CL_SQ_DEPTH)       /* completions reaped but not yet returned by poll() */
#define CL_INLINE_WANT 256u
#define CL_STALL_NS (10ull * 1000000000ull) /* bound on waiting for SQ/arena room */
#define CL_RECV_TAG (1ull << 63)
#define CL_SPIN_US_DEFAULT 50u /* hybrid wait: see wait_activity() */

_Static_assert(CL_ARENA >= 4u * CF_FRAME_MAX_PAYLOAD, "arena must hold the unsignaled tail plus one op");

struct sq_ent {
	struct ibv_send_wr wr;
	struct ibv_sge sge;
	uint64_t user_wr_id;
	void *local;   /* READ: copy the arena bytes here at completion */
	uint64_t aoff; /* arena offset (monotonic; mod CL_ARENA) of this op's staging bytes */
	uint64_t aend; /* arena head after this op: the tail moves here when it completes */
	uint32_t len;
	uint32_t op;   /* enum cf_op */
	bool report;   /* the user wants a completion */
};

struct cf_conn {
	struct rdma_event_channel *ech;
	struct rdma_cm_id *id;
	struct ibv_pd *pd;
	struct ibv_comp_channel *cch;
	struct ibv_cq *cq;
	struct ibv_mr *mr;
	uint8_t *mem;
	int efd;
	uint32_t max_inline;
	bool busypoll, armed;
	uint64_t spin_ns; /* hybrid wait: spin this long before sleeping */
	int dead; /* 0, or the -errno that ended the connection */
	/* send queue: seq = WRs built, posted = handed to the HCA, done = completed */
	uint64_t seq, posted, done;
	uint64_t last_signaled; /* seq + 1 of the newest signaled WR (0: none) */
	uint64_t unsig_bytes;   /* arena bytes since the last signaled WR */
	unsigned since_signal;
	unsigned reported_out;  /* outstanding WRs that will produce a user completion */
	struct sq_ent sq[CL_SQ_DEPTH];
	uint64_t a_head, a_tail;
	struct cf_wc wcq[CL_WCQ];
	unsigned wc_head, wc_n;
	unsigned rq_fifo[CL_RQ_DEPTH]; /* receive slots holding a message, in arrival order */
	uint32_t rq_len[CL_RQ_DEPTH];
	unsigned rq_head, rq_n;
};


/* Post the RECV of receive slot i. */
int cf_vc_post_recv(struct cf_conn *c, unsigned i);
/* Request a completion-channel notification, if none is requested yet. */
void cf_vc_arm(struct cf_conn *c);
/* Acknowledge the channel's pending notifications (before destroying the CQ, too). */
void cf_vc_consume_events(struct cf_conn *c);

/* the data-path half of struct cf_client_ops (cf_transport.h states their contract) */
int cf_vc_post_read(struct cf_conn *c, void *local, uint32_t len, uint64_t raddr, uint32_t rkey, uint64_t wr_id,
		    unsigned flags);
int cf_vc_post_write(struct cf_conn *c, const void *local, uint32_t len, uint64_t raddr, uint32_t rkey,
		     uint64_t wr_id, unsigned flags);
int cf_vc_post_cas(struct cf_conn *c, uint64_t raddr, uint32_t rkey, uint64_t compare, uint64_t swap,
		   uint64_t wr_id, unsigned flags);
int cf_vc_post_faa(struct cf_conn *c, uint64_t raddr, uint32_t rkey, uint64_t add, uint64_t wr_id, unsigned flags);
int cf_vc_poll(struct cf_conn *c, struct cf_wc *wc, int max, int timeout_ms);
int cf_vc_send_ctrl(struct cf_conn *c, const void *msg, size_t len);
int cf_vc_recv_ctrl(struct cf_conn *c, void *buf, size_t cap, int timeout_ms);
int cf_vc_ctrl_fd(struct cf_conn *c);
int cf_vc_ctrl_pending(struct cf_conn *c);

#endif
