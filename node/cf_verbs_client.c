/* SPDX-License-Identifier: MIT */
/*
 * cf_verbs_client.c - the verbs backend, client side (struct cf_client_ops).
 *
 * One connection = one rdma_cm id with one RC QP, one CQ (sends and receives)
 * on one completion channel, and one registered buffer:
 *   [ arena (CL_ARENA bytes) | CL_RQ_DEPTH receive slots of CF_CTRL_MAX ]
 * The arena is a ring of staging space for READ destinations, CAS/FAA
 * results and non-inline WRITE/SEND payloads, so the hot path never registers
 * memory: post_* copies into the arena (or out of it at completion time).
 * Send-queue completions arrive in post order, so arena space and SQ entries
 * are released in order when a (possibly later) signaled completion is seen.
 *
 * Hot-path tricks, each with its reason:
 *   - Doorbell batching: post_* only chain the WR; poll()/recv_ctrl()/
 *     send_ctrl() ring the doorbell once for the whole chain (one
 *     ibv_post_send; on rxe one syscall). A record-list WRITE and the lock
 *     CAS posted together therefore leave as one batch, and RC still executes
 *     them in order at the CF, so only the CAS completion needs awaiting.
 *   - Selective signaling: CF_POST_UNSIGNALED WRITEs get no IBV_SEND_SIGNALED,
 *     saving a CQE and its poll. But an SQ entry (and our arena space) is
 *     freed only when a later signaled WR completes, so every
 *     CL_SIGNAL_EVERY-th WR (and any WR after CL_ARENA/4 unsignaled bytes) is
 *     signaled anyway, internally; otherwise a stream of unsignaled WRITEs
 *     would fill the SQ with nothing ever completing.
 *   - Inline: WRITEs and ctrl SENDs up to the QP's max_inline_data go with
 *     IBV_SEND_INLINE: the payload is copied into the WQE at the doorbell,
 *     which saves the HCA a DMA read of the payload (lower latency for
 *     lock-record writes and control messages). The bytes are staged in the
 *     arena at post time either way, so the caller's buffer is free at once
 *     (tcp semantics) even though the doorbell may ring later.
 *   - Hybrid waiting: poll()/recv_ctrl() spin on the CQ for up to
 *     CF_VERBS_SPIN_US (default 50 us) before sleeping on the completion
 *     channel: a one-sided op usually completes within that, and then costs
 *     no interrupt, no wakeup and no channel syscalls.
 *   - Busy polling (env CF_VERBS_BUSYPOLL=1): never sleep; spin until the
 *     timeout. Lowest and steadiest latency, at the cost of one CPU core at
 *     100% for as long as the caller waits (heartbeat waits included). Off by
 *     default.
 *   - The CQ is re-armed (ibv_req_notify_cq) only after a notification was
 *     consumed, not on every call: arming is a syscall on some providers.
 *
 * Errors: any error completion puts an RC QP in error; the connection is then
 * dead (cf_transport.h). A refused op (bad rkey, missing right, out of
 * bounds: -EACCES; bad length: -EINVAL) still gets its completion with that
 * status, as on tcp; flushed ops get none; poll() then returns -ECONNRESET and
 * every later call does too. Unlike tcp, a refusal therefore also ends the
 * connection; the protocol never relies on surviving one.
 *
 * ctrl_fd is an epoll fd over the completion channel and the CM event
 * channel, so a libev watcher wakes for control messages and for the
 * server's DISCONNECT alike. It may fire for a one-sided completion too (the
 * CQ is shared); ctrl_pending() then consumes the notification and re-arms,
 * so the fd goes quiet again.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "cf_addr.h"
#include "cf_transport.h"
#include "cf_util.h"

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

static int neg_errno(void) { return errno ? -errno : -EIO; }
static int post_ret(int r) { return r > 0 ? -r : (r < 0 ? neg_errno() : 0); }

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return neg_errno();
	return 0;
}

static int wc_to_errno(enum ibv_wc_status s)
{
	switch (s) {
	case IBV_WC_SUCCESS: return 0;
	case IBV_WC_REM_ACCESS_ERR:
	case IBV_WC_LOC_PROT_ERR: return -EACCES;
	case IBV_WC_REM_INV_REQ_ERR: return -EINVAL;
	case IBV_WC_LOC_LEN_ERR: return -EMSGSIZE;
	case IBV_WC_WR_FLUSH_ERR: return -ECONNRESET;
	case IBV_WC_RETRY_EXC_ERR:
	case IBV_WC_RNR_RETRY_EXC_ERR: return -ETIMEDOUT;
	default: return -EIO;
	}
}

static uint8_t *arena(struct cf_conn *c, uint64_t off) { return c->mem + off % CL_ARENA; }
static uint8_t *rq_slot(struct cf_conn *c, unsigned i) { return c->mem + CL_ARENA + (size_t)i * CF_CTRL_MAX; }

static void set_dead(struct cf_conn *c, int err)
{
	if (c->dead)
		return;
	c->dead = err ? err : -ECONNRESET;
	/* make every outstanding WR complete (flushed) instead of hanging */
	if (c->id && c->id->qp) {
		struct ibv_qp_attr a = {.qp_state = IBV_QPS_ERR};
		ibv_modify_qp(c->id->qp, &a, IBV_QP_STATE);
	}
}

static int post_recv(struct cf_conn *c, unsigned i)
{
	struct ibv_sge sge = {.addr = (uintptr_t)rq_slot(c, i), .length = CF_CTRL_MAX, .lkey = c->mr->lkey};
	struct ibv_recv_wr wr = {.wr_id = CL_RECV_TAG | i, .sg_list = &sge, .num_sge = 1}, *bad;
	return post_ret(ibv_post_recv(c->id->qp, &wr, &bad));
}

/*
 * Which failed ops get a completion of their own: the refusals tcp also
 * answers per op (bad rkey, missing right, out of bounds, bad length). A
 * transport failure (flushed, retries exhausted, ...) gives none: poll()
 * then returns -ECONNRESET, as tcp does when its connection dies, and the
 * caller knows every outstanding op is lost.
 */
static bool per_op_status(int status)
{
	return status == 0 || status == -EACCES || status == -EINVAL || status == -EMSGSIZE;
}

static void wc_push(struct cf_conn *c, const struct sq_ent *e, int status)
{
	struct cf_wc *w;

	if (!e->report)
		return;
	c->reported_out--;
	if (!per_op_status(status))
		return;
	/* cannot overflow: post_* refuse when wc_n + reported_out reaches CL_WCQ */
	w = &c->wcq[(c->wc_head + c->wc_n++) % CL_WCQ];
	w->wr_id = e->user_wr_id;
	w->status = status;
	w->op = e->op;
	w->value = 0;
	if (status == 0 && (e->op == CF_OP_CAS || e->op == CF_OP_FAA))
		/* the original value; rdma-core delivers it in host byte order */
		memcpy(&w->value, arena(c, e->aoff), 8);
}

/* The send WR with sequence number s completed with status st. */
static void sq_complete(struct cf_conn *c, uint64_t s, enum ibv_wc_status st)
{
	/* RC: everything before s completed successfully (an earlier failure
	 * would have produced its own error completion first). */
	while (c->done <= s && c->done < c->posted) {
		struct sq_ent *e = &c->sq[c->done % CL_SQ_DEPTH];
		int status = c->done == s ? wc_to_errno(st) : 0;
		if (status == 0 && e->op == CF_OP_READ && e->local)
			memcpy(e->local, arena(c, e->aoff), e->len);
		wc_push(c, e, status);
		c->a_tail = e->aend;
		c->done++;
	}
}

static void handle_wc(struct cf_conn *c, const struct ibv_wc *wc)
{
	if (wc->wr_id & CL_RECV_TAG) {
		unsigned slot = (unsigned)(wc->wr_id & ~CL_RECV_TAG);
		if (wc->status != IBV_WC_SUCCESS) {
			set_dead(c, wc_to_errno(wc->status));
			return;
		}
		if (slot >= CL_RQ_DEPTH || wc->byte_len > CF_CTRL_MAX) {
			set_dead(c, CF_CORRUPT());
			return;
		}
		c->rq_fifo[(c->rq_head + c->rq_n) % CL_RQ_DEPTH] = slot;
		c->rq_len[slot] = wc->byte_len;
		c->rq_n++;
		return;
	}
	if (wc->status != IBV_WC_SUCCESS) {
		set_dead(c, wc_to_errno(wc->status)); /* FLUSH_ERR after that one: expected */
	} else if (wc->wr_id >= c->done && wc->wr_id < c->posted) {
		/* byte_len is defined for READ and atomics: a short one is a broken HCA
		 * or provider, and the staged bytes must not be handed out */
		const struct sq_ent *e = &c->sq[wc->wr_id % CL_SQ_DEPTH];
		uint32_t want = e->op == CF_OP_READ ? e->len : 8u;
		if ((e->op == CF_OP_READ || e->op == CF_OP_CAS || e->op == CF_OP_FAA) && wc->byte_len != want) {
			set_dead(c, -EIO);
			sq_complete(c, wc->wr_id, IBV_WC_GENERAL_ERR);
			return;
		}
	}
	sq_complete(c, wc->wr_id, wc->status);
}

/* Reap every CQE that is there; 0 or -errno (connection dead). */
static int drain_cq(struct cf_conn *c)
{
	struct ibv_wc wc[16];
	int n, i;

	while ((n = ibv_poll_cq(c->cq, 16, wc)) > 0)
		for (i = 0; i < n; i++)
			handle_wc(c, &wc[i]);
	if (n < 0)
		set_dead(c, -EIO);
	return c->dead;
}

/* CM events: the server's fence/close shows up as DISCONNECTED. */
static void drain_cm(struct cf_conn *c)
{
	struct rdma_cm_event *ev;

	while (rdma_get_cm_event(c->ech, &ev) == 0) {
		enum rdma_cm_event_type t = ev->event;
		rdma_ack_cm_event(ev);
		if (t == RDMA_CM_EVENT_DISCONNECTED || t == RDMA_CM_EVENT_DEVICE_REMOVAL ||
		    t == RDMA_CM_EVENT_TIMEWAIT_EXIT)
			set_dead(c, -ECONNRESET);
	}
}

/* Consume channel notifications (a read syscall each time it is called). */
static void consume_events(struct cf_conn *c)
{
	struct ibv_cq *cq;
	void *ctx;

	while (ibv_get_cq_event(c->cch, &cq, &ctx) == 0) {
		ibv_ack_cq_events(cq, 1);
		c->armed = false;
	}
}

/*
 * Make sure a future completion fires the channel (ctrl_fd). Cheap when
 * already armed: no syscall. An armed CQ that fired leaves the fd readable
 * until the next wait consumes the event: a spurious wakeup at worst, which
 * ctrl_fd's contract ("may have something") allows.
 */
static void arm(struct cf_conn *c)
{
	if (c->armed || c->dead)
		return;
	if (ibv_req_notify_cq(c->cq, 0) == 0)
		c->armed = true;
	else
		set_dead(c, -EIO);
}

/* Hand every built WR to the HCA: one doorbell for the whole chain. */
static int flush_sq(struct cf_conn *c)
{
	struct ibv_send_wr *bad = NULL;
	uint64_t i;
	int r;

	if (c->posted == c->seq)
		return 0;
	for (i = c->posted; i + 1 < c->seq; i++)
		c->sq[i % CL_SQ_DEPTH].wr.next = &c->sq[(i + 1) % CL_SQ_DEPTH].wr;
	c->sq[(c->seq - 1) % CL_SQ_DEPTH].wr.next = NULL;
	r = post_ret(ibv_post_send(c->id->qp, &c->sq[c->posted % CL_SQ_DEPTH].wr, &bad));
	if (r < 0) {
		/* WRs before bad went out; the rest never will: the incarnation is over */
		for (i = c->posted; i < c->seq && &c->sq[i % CL_SQ_DEPTH].wr != bad; i++)
			;
		c->posted = i;
		set_dead(c, r);
		return r;
	}
	c->posted = c->seq;
	return 0;
}

/*
 * Wait (bounded by deadline_ns; UINT64_MAX = forever) for CQ or CM activity.
 * Hybrid: spin on the CQ for up to spin_ns first (a completion that comes
 * within that never pays for an interrupt, a wakeup and the four syscalls of
 * arming and consuming the channel), then sleep on the channel. Busy-poll
 * mode spins until the deadline and looks at CM events once per millisecond
 * only (each look is a syscall).
 */
static void wait_activity(struct cf_conn *c, uint64_t deadline_ns)
{
	struct pollfd p = {.fd = c->efd, .events = POLLIN};
	uint64_t now = cf_mono_ns(), spin_end, next_cm;
	struct ibv_wc wc;
	int ms;

	if (deadline_ns <= now)
		return;
	spin_end = c->busypoll ? deadline_ns : now + c->spin_ns;
	if (spin_end > deadline_ns)
		spin_end = deadline_ns;
	next_cm = now + 1000000;
	for (unsigned spins = 1; now < spin_end; spins++) {
		if (ibv_poll_cq(c->cq, 1, &wc) > 0) {
			handle_wc(c, &wc);
			return;
		}
		/* read the clock every 32 polls only: polling the CQ is a few
		 * loads, the clock is an rdtsc (and emulated under TCG) */
		if (spins % 32)
			continue;
		now = cf_mono_ns();
		if (now >= next_cm) {
			drain_cm(c);
			if (c->dead)
				return;
			next_cm = now + 1000000;
		}
	}
	if (now >= deadline_ns)
		return;
	consume_events(c);
	arm(c);
	/* a CQE that arrived before the arm does not fire the channel: look once more */
	if (ibv_poll_cq(c->cq, 1, &wc) > 0) {
		handle_wc(c, &wc);
		return;
	}
	ms = deadline_ns == UINT64_MAX ? -1 : (int)((deadline_ns - now + 999999) / 1000000);
	poll(&p, 1, ms);
	drain_cm(c);
	consume_events(c);
	arm(c);
}

static uint64_t deadline_of(int timeout_ms)
{
	if (timeout_ms < 0)
		return UINT64_MAX;
	return cf_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
}

/*
 * Make room for one WR needing `bytes` of arena. Waits for completions if the
 * SQ or the arena is full; the forced signaling in sq_build() guarantees one
 * is coming.
 */
static int sq_room(struct cf_conn *c, uint32_t bytes, bool need_wc)
{
	uint64_t deadline = 0;

	for (;;) {
		uint64_t head = c->a_head;
		bool wc_ok = !need_wc || c->wc_n + c->reported_out < CL_WCQ;
		if (bytes && head % CL_ARENA + bytes > CL_ARENA)
			head += CL_ARENA - head % CL_ARENA; /* don't straddle the wrap */
		if (c->seq - c->done < CL_SQ_DEPTH && head + bytes - c->a_tail <= CL_ARENA && wc_ok)
			return 0; /* the common case: no clock read, no syscall */
		if (flush_sq(c) < 0 || drain_cq(c) < 0)
			return -ECONNRESET;
		if (need_wc && c->wc_n + c->reported_out >= CL_WCQ)
			return -ENOBUFS; /* too many unreaped completions: the caller must poll() */
		if (c->seq - c->done < CL_SQ_DEPTH && head + bytes - c->a_tail <= CL_ARENA)
			continue;
		if (!deadline)
			deadline = cf_mono_ns() + CL_STALL_NS;
		if (cf_mono_ns() > deadline) {
			set_dead(c, -ETIMEDOUT);
			return -ETIMEDOUT;
		}
		wait_activity(c, deadline);
	}
}

/* Build (not post) one WR; staging bytes are taken from the arena. */
static struct sq_ent *sq_build(struct cf_conn *c, uint32_t op, uint32_t bytes, uint64_t wr_id, bool report,
			       int *err)
{
	struct sq_ent *e;
	bool sig;
	int r;

	r = sq_room(c, bytes, report);
	if (r < 0) {
		*err = r;
		return NULL;
	}
	e = &c->sq[c->seq % CL_SQ_DEPTH];
	memset(e, 0, sizeof(*e));
	if (bytes) {
		if (c->a_head % CL_ARENA + bytes > CL_ARENA)
			c->a_head += CL_ARENA - c->a_head % CL_ARENA;
		e->aoff = c->a_head;
		c->a_head += (bytes + 63u) & ~63u; /* 64-byte steps keep atomics 8-aligned */
		c->unsig_bytes += bytes;
	}
	e->aend = c->a_head;
	e->op = op;
	e->len = bytes;
	e->user_wr_id = wr_id;
	e->report = report;
	/* Forced signaling: see the header comment (SQ entries are freed only by
	 * a signaled completion). */
	sig = report || ++c->since_signal >= CL_SIGNAL_EVERY || c->unsig_bytes > CL_ARENA / 4 ||
	      c->seq - c->done >= CL_SQ_DEPTH / 2;
	if (sig) {
		c->since_signal = 0;
		c->unsig_bytes = 0;
		c->last_signaled = c->seq + 1;
	}
	if (report)
		c->reported_out++;
	e->wr.wr_id = c->seq;
	e->wr.send_flags = sig ? IBV_SEND_SIGNALED : 0;
	e->wr.sg_list = &e->sge;
	e->wr.num_sge = 1;
	e->sge.addr = (uintptr_t)arena(c, e->aoff);
	e->sge.length = bytes;
	e->sge.lkey = c->mr->lkey;
	c->seq++;
	return e;
}

static int check_live(struct cf_conn *c) { return c->dead ? -ECONNRESET : 0; }

static int v_post_read(struct cf_conn *c, void *local, uint32_t len, uint64_t raddr, uint32_t rkey, uint64_t wr_id,
		       unsigned flags)
{
	struct sq_ent *e;
	int r = check_live(c);

	if (r < 0)
		return r;
	if (len == 0 || !local)
		return -EINVAL;
	if (len > CF_FRAME_MAX_PAYLOAD)
		return -EMSGSIZE;
	e = sq_build(c, CF_OP_READ, len, wr_id, true, &r); /* READs are always reported */
	if (!e)
		return r;
	e->local = local;
	e->wr.opcode = IBV_WR_RDMA_READ;
	e->wr.wr.rdma.remote_addr = raddr;
	e->wr.wr.rdma.rkey = rkey;
	return 0;
}

static int v_post_write(struct cf_conn *c, const void *local, uint32_t len, uint64_t raddr, uint32_t rkey,
			uint64_t wr_id, unsigned flags)
{
	struct sq_ent *e;
	int r = check_live(c);

	if (r < 0)
		return r;
	if (len == 0 || !local)
		return -EINVAL;
	if (len > CF_FRAME_MAX_PAYLOAD)
		return -EMSGSIZE;
	e = sq_build(c, CF_OP_WRITE, len, wr_id, !(flags & CF_POST_UNSIGNALED), &r);
	if (!e)
		return r;
	/* Copied now, so the caller's buffer is free on return (as on tcp, and
	 * the batch may go out later). Small ones still go inline: see header. */
	memcpy(arena(c, e->aoff), local, len);
	if (len <= c->max_inline)
		e->wr.send_flags |= IBV_SEND_INLINE;
	e->wr.opcode = IBV_WR_RDMA_WRITE;
	e->wr.wr.rdma.remote_addr = raddr;
	e->wr.wr.rdma.rkey = rkey;
	return 0;
}

static int post_atomic(struct cf_conn *c, uint32_t op, uint64_t raddr, uint32_t rkey, uint64_t cmp_add, uint64_t swap,
		       uint64_t wr_id)
{
	struct sq_ent *e;
	int r = check_live(c);

	if (r < 0)
		return r;
	if (raddr % 8)
		return -EINVAL;
	e = sq_build(c, op, 8, wr_id, true, &r);
	if (!e)
		return r;
	e->wr.opcode = op == CF_OP_CAS ? IBV_WR_ATOMIC_CMP_AND_SWP : IBV_WR_ATOMIC_FETCH_AND_ADD;
	e->wr.wr.atomic.remote_addr = raddr;
	e->wr.wr.atomic.rkey = rkey;
	e->wr.wr.atomic.compare_add = cmp_add;
	e->wr.wr.atomic.swap = swap;
	return 0;
}

static int v_post_cas(struct cf_conn *c, uint64_t raddr, uint32_t rkey, uint64_t compare, uint64_t swap,
		      uint64_t wr_id, unsigned flags)
{
	return post_atomic(c, CF_OP_CAS, raddr, rkey, compare, swap, wr_id);
}

static int v_post_faa(struct cf_conn *c, uint64_t raddr, uint32_t rkey, uint64_t add, uint64_t wr_id, unsigned flags)
{
	return post_atomic(c, CF_OP_FAA, raddr, rkey, add, 0, wr_id);
}

static int v_poll(struct cf_conn *c, struct cf_wc *wc, int max, int timeout_ms)
{
	uint64_t deadline = deadline_of(timeout_ms);
	int n = 0;

	if (max <= 0)
		return -EINVAL;
	flush_sq(c);
	for (;;) {
		drain_cq(c);
		if (c->wc_n)
			break;
		if (c->dead)
			return -ECONNRESET;
		if (timeout_ms == 0 || cf_mono_ns() >= deadline)
			break;
		wait_activity(c, deadline);
	}
	while (n < max && c->wc_n) {
		wc[n++] = c->wcq[c->wc_head];
		c->wc_head = (c->wc_head + 1) % CL_WCQ;
		c->wc_n--;
	}
	arm(c); /* keep ctrl_fd live for messages arriving later */
	return n;
}

static int v_send_ctrl(struct cf_conn *c, const void *msg, size_t len)
{
	struct sq_ent *e;
	int r = check_live(c);

	if (r < 0)
		return r;
	if (len == 0 || len > CF_CTRL_MAX)
		return -EMSGSIZE;
	e = sq_build(c, CF_OP_CTRL, (uint32_t)len, 0, false, &r);
	if (!e)
		return r;
	memcpy(arena(c, e->aoff), msg, len);
	if (len <= c->max_inline)
		e->wr.send_flags |= IBV_SEND_INLINE; /* no DMA read of the payload: lower latency */
	e->wr.opcode = IBV_WR_SEND;
	/* ring the doorbell now: a control message is a request someone waits for */
	return flush_sq(c);
}

/*
 * recv_ctrl and ctrl_pending are what a ctrl_fd watcher calls: consume what
 * made the fd readable (channel notifications, CM events) and re-arm, or a
 * level-triggered watcher fires forever - and a real-time event thread
 * spinning on it starves the softirq that soft-RoCE completes everything in.
 */
static void quiesce(struct cf_conn *c)
{
	consume_events(c);
	drain_cm(c);
	arm(c);
	drain_cq(c); /* after the arm: a completion in between is not lost */
}

static int v_recv_ctrl(struct cf_conn *c, void *buf, size_t cap, int timeout_ms)
{
	uint64_t deadline = deadline_of(timeout_ms);
	unsigned slot;
	uint32_t len;
	int r;

	flush_sq(c);
	quiesce(c);
	for (;;) {
		drain_cq(c);
		if (c->rq_n)
			break;
		if (c->dead)
			return -ECONNRESET;
		if (timeout_ms == 0 || cf_mono_ns() >= deadline)
			return -ETIMEDOUT;
		wait_activity(c, deadline);
	}
	slot = c->rq_fifo[c->rq_head];
	c->rq_head = (c->rq_head + 1) % CL_RQ_DEPTH;
	c->rq_n--;
	len = c->rq_len[slot];
	if (len <= cap)
		memcpy(buf, rq_slot(c, slot), len);
	r = c->dead ? 0 : post_recv(c, slot);
	if (r < 0)
		set_dead(c, r);
	arm(c);
	return len <= cap ? (int)len : -EMSGSIZE;
}

static int v_ctrl_fd(struct cf_conn *c) { return c->efd; }

static int v_ctrl_pending(struct cf_conn *c)
{
	quiesce(c);
	return c->rq_n > 0 || c->dead;
}

static void v_close(struct cf_conn *c)
{
	if (!c)
		return;
	if (c->id) {
		if (c->id->qp) {
			rdma_disconnect(c->id);
			rdma_destroy_qp(c->id);
		}
	}
	if (c->mr)
		ibv_dereg_mr(c->mr);
	if (c->cq) {
		consume_events(c); /* ack outstanding notifications before destroying the CQ */
		ibv_destroy_cq(c->cq);
	}
	if (c->cch)
		ibv_destroy_comp_channel(c->cch);
	if (c->pd)
		ibv_dealloc_pd(c->pd);
	if (c->id)
		rdma_destroy_id(c->id);
	if (c->ech)
		rdma_destroy_event_channel(c->ech);
	if (c->efd >= 0)
		close(c->efd);
	free(c->mem);
	free(c);
}

/* Wait for one CM event of type want, bounded by deadline. */
static int cm_expect(struct cf_conn *c, enum rdma_cm_event_type want, uint64_t deadline)
{
	struct pollfd p = {.fd = c->ech->fd, .events = POLLIN};
	struct rdma_cm_event *ev;

	for (;;) {
		if (rdma_get_cm_event(c->ech, &ev) == 0) {
			enum rdma_cm_event_type got = ev->event;
			int st = ev->status;
			rdma_ack_cm_event(ev);
			if (got == want)
				return 0;
			switch (got) {
			case RDMA_CM_EVENT_REJECTED: return -ECONNREFUSED;
			case RDMA_CM_EVENT_ADDR_ERROR: return st < 0 ? st : -EADDRNOTAVAIL;
			case RDMA_CM_EVENT_ROUTE_ERROR: return st < 0 ? st : -ENETUNREACH;
			case RDMA_CM_EVENT_UNREACHABLE: return -EHOSTUNREACH;
			case RDMA_CM_EVENT_CONNECT_ERROR: return st < 0 ? st : -ECONNREFUSED;
			default: return -EPROTO;
			}
		}
		if (errno != EAGAIN)
			return neg_errno();
		uint64_t now = cf_mono_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		poll(&p, 1, (int)((deadline - now + 999999) / 1000000));
	}
}

static int v_connect(const char *addr, int timeout_ms, struct cf_conn **out)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICSERV, .ai_socktype = SOCK_STREAM}, *ai = NULL;
	struct ibv_device_attr da;
	struct ibv_qp_init_attr qa;
	struct rdma_conn_param p;
	struct epoll_event ee = {.events = EPOLLIN};
	char host[CF_ADDR_HOST_MAX], port[8];
	uint64_t deadline, now;
	size_t memlen = CL_ARENA + (size_t)CL_RQ_DEPTH * CF_CTRL_MAX;
	struct cf_conn *c;
	uint16_t pn;
	unsigned i;
	int r, left;

	r = cf_addr_split(addr, host, sizeof(host), &pn);
	if (r < 0)
		return r;
	if (timeout_ms <= 0)
		timeout_ms = 10000;
	deadline = cf_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->efd = -1;
	c->busypoll = getenv("CF_VERBS_BUSYPOLL") && strcmp(getenv("CF_VERBS_BUSYPOLL"), "1") == 0;
	c->spin_ns = CL_SPIN_US_DEFAULT * 1000ull;
	if (getenv("CF_VERBS_SPIN_US"))
		c->spin_ns = strtoull(getenv("CF_VERBS_SPIN_US"), NULL, 10) * 1000ull;
	snprintf(port, sizeof(port), "%u", pn);
	r = getaddrinfo(host, port, &hints, &ai);
	if (r) {
		r = r == EAI_SYSTEM ? neg_errno() : -EHOSTUNREACH;
		ai = NULL;
		goto err_close;
	}
	c->ech = rdma_create_event_channel();
	if (!c->ech) {
		r = neg_errno();
		goto err_close;
	}
	if ((r = set_nonblock(c->ech->fd)) < 0)
		goto err_close;
	if (rdma_create_id(c->ech, &c->id, c, RDMA_PS_TCP)) {
		r = neg_errno();
		c->id = NULL;
		goto err_close;
	}
	/* address and route resolution, each bounded by what is left of timeout_ms */
	left = (int)((deadline - cf_mono_ns()) / 1000000);
	if (rdma_resolve_addr(c->id, NULL, ai->ai_addr, left > 0 ? left : 1)) {
		r = neg_errno();
		goto err_close;
	}
	if ((r = cm_expect(c, RDMA_CM_EVENT_ADDR_RESOLVED, deadline)) < 0)
		goto err_close;
	now = cf_mono_ns();
	left = now < deadline ? (int)((deadline - now) / 1000000) : 0;
	if (rdma_resolve_route(c->id, left > 0 ? left : 1)) {
		r = neg_errno();
		goto err_close;
	}
	if ((r = cm_expect(c, RDMA_CM_EVENT_ROUTE_RESOLVED, deadline)) < 0)
		goto err_close;
	if (ibv_query_device(c->id->verbs, &da)) {
		r = neg_errno();
		goto err_close;
	}
	if (da.atomic_cap == IBV_ATOMIC_NONE || da.max_qp_init_rd_atom < 1) {
		r = -EOPNOTSUPP; /* no RDMA atomics: cfplex cannot run on this device */
		goto err_close;
	}
	c->pd = ibv_alloc_pd(c->id->verbs);
	c->cch = ibv_create_comp_channel(c->id->verbs);
	if (!c->pd || !c->cch) {
		r = neg_errno();
		goto err_close;
	}
	if ((r = set_nonblock(c->cch->fd)) < 0)
		goto err_close;
	c->cq = ibv_create_cq(c->id->verbs, CL_SQ_DEPTH + CL_RQ_DEPTH, c, c->cch, 0);
	if (!c->cq) {
		r = neg_errno();
		goto err_close;
	}
	if (posix_memalign((void **)&c->mem, 4096, memlen)) {
		r = -ENOMEM;
		goto err_close;
	}
	memset(c->mem, 0, memlen);
	c->mr = ibv_reg_mr(c->pd, c->mem, memlen, IBV_ACCESS_LOCAL_WRITE);
	if (!c->mr) {
		r = neg_errno();
		goto err_close;
	}
	memset(&qa, 0, sizeof(qa));
	qa.send_cq = c->cq;
	qa.recv_cq = c->cq;
	qa.qp_type = IBV_QPT_RC;
	qa.cap.max_send_wr = CL_SQ_DEPTH;
	qa.cap.max_recv_wr = CL_RQ_DEPTH;
	qa.cap.max_send_sge = 1;
	qa.cap.max_recv_sge = 1;
	qa.cap.max_inline_data = CL_INLINE_WANT;
	if (rdma_create_qp(c->id, c->pd, &qa)) {
		qa.cap.max_inline_data = 0; /* provider without inline: do without */
		if (rdma_create_qp(c->id, c->pd, &qa)) {
			r = neg_errno();
			goto err_close;
		}
	}
	c->max_inline = qa.cap.max_inline_data;
	for (i = 0; i < CL_RQ_DEPTH; i++)
		if ((r = post_recv(c, i)) < 0)
			goto err_close;
	memset(&p, 0, sizeof(p));
	/* both > 0, or READ and atomics never complete (rxe) */
	p.initiator_depth = (uint8_t)(da.max_qp_init_rd_atom < 16 ? da.max_qp_init_rd_atom : 16);
	p.responder_resources = 1;
	p.retry_count = 7;
	p.rnr_retry_count = 7; /* the server re-posts RECVs after each message; wait, don't fail */
	if (rdma_connect(c->id, &p)) {
		r = neg_errno();
		goto err_close;
	}
	if ((r = cm_expect(c, RDMA_CM_EVENT_ESTABLISHED, deadline)) < 0)
		goto err_close;
	c->efd = epoll_create1(EPOLL_CLOEXEC);
	if (c->efd < 0) {
		r = neg_errno();
		goto err_close;
	}
	ee.data.fd = c->cch->fd;
	if (epoll_ctl(c->efd, EPOLL_CTL_ADD, c->cch->fd, &ee)) {
		r = neg_errno();
		goto err_close;
	}
	ee.data.fd = c->ech->fd;
	if (epoll_ctl(c->efd, EPOLL_CTL_ADD, c->ech->fd, &ee)) {
		r = neg_errno();
		goto err_close;
	}
	arm(c);
	freeaddrinfo(ai);
	*out = c;
	return 0;
err_close:
	/*
	 * rdma_cm says ENODEV (or EADDRNOTAVAIL) when no RDMA device routes to
	 * the address - e.g. 127.0.0.1. For the caller that is "the CF is not
	 * reachable here", the same class tcp reports, not a local fault.
	 */
	if (r == -ENODEV || r == -EADDRNOTAVAIL)
		r = -ENETUNREACH;
	if (ai)
		freeaddrinfo(ai);
	v_close(c);
	return r;
}

const struct cf_client_ops cf_verbs_client = {
	.name = "verbs",
	.completion_durable = 0, /* a WRITE completion is not durability: PERSIST */
	.connect = v_connect,
	.close = v_close,
	.post_read = v_post_read,
	.post_write = v_post_write,
	.post_cas = v_post_cas,
	.post_faa = v_post_faa,
	.poll = v_poll,
	.send_ctrl = v_send_ctrl,
	.recv_ctrl = v_recv_ctrl,
	.ctrl_fd = v_ctrl_fd,
	.ctrl_pending = v_ctrl_pending,
};
