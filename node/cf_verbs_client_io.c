/* SPDX-License-Identifier: MIT */
/*
 * cf_verbs_client_io.c - the verbs backend's data path, client side: the
 * arena, the send queue and its selective signaling, completions, the posts,
 * poll and control messages. The design and the hot-path tricks are written
 * at the top of cf_verbs_client.c; the connection's layout in
 * cf_verbs_client.h.
 */
#include "cf_verbs_client.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "cf_util.h"

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

int cf_vc_post_recv(struct cf_conn *c, unsigned i)
{
	struct ibv_sge sge = {.addr = (uintptr_t)rq_slot(c, i), .length = CF_CTRL_MAX, .lkey = c->mr->lkey};
	struct ibv_recv_wr wr = {.wr_id = CL_RECV_TAG | i, .sg_list = &sge, .num_sge = 1}, *bad;
	return cf_verbs_post_ret(ibv_post_recv(c->id->qp, &wr, &bad));
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
		int status = c->done == s ? cf_verbs_wc_errno(st) : 0;
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
			set_dead(c, cf_verbs_wc_errno(wc->status));
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
		set_dead(c, cf_verbs_wc_errno(wc->status)); /* FLUSH_ERR after that one: expected */
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
void cf_vc_consume_events(struct cf_conn *c)
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
void cf_vc_arm(struct cf_conn *c)
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
	r = cf_verbs_post_ret(ibv_post_send(c->id->qp, &c->sq[c->posted % CL_SQ_DEPTH].wr, &bad));
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
	cf_vc_consume_events(c);
	cf_vc_arm(c);
	/* a CQE that arrived before the arm does not fire the channel: look once more */
	if (ibv_poll_cq(c->cq, 1, &wc) > 0) {
		handle_wc(c, &wc);
		return;
	}
	ms = deadline_ns == UINT64_MAX ? -1 : (int)((deadline_ns - now + 999999) / 1000000);
	poll(&p, 1, ms);
	drain_cm(c);
	cf_vc_consume_events(c);
	cf_vc_arm(c);
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

/* A READ or WRITE of len bytes at local: postable? (the same refusals as tcp, before posting) */
static int check_rw(struct cf_conn *c, const void *local, uint32_t len)
{
	if (c->dead)
		return -ECONNRESET;
	if (len == 0 || !local)
		return -EINVAL;
	return len > CF_FRAME_MAX_PAYLOAD ? -EMSGSIZE : 0;
}

int cf_vc_post_read(struct cf_conn *c, void *local, uint32_t len, uint64_t raddr, uint32_t rkey, uint64_t wr_id,
		    unsigned flags)
{
	struct sq_ent *e;
	int r = check_rw(c, local, len);

	if (r < 0)
		return r;
	e = sq_build(c, CF_OP_READ, len, wr_id, true, &r); /* READs are always reported */
	if (!e)
		return r;
	e->local = local;
	e->wr.opcode = IBV_WR_RDMA_READ;
	e->wr.wr.rdma.remote_addr = raddr;
	e->wr.wr.rdma.rkey = rkey;
	return 0;
}

int cf_vc_post_write(struct cf_conn *c, const void *local, uint32_t len, uint64_t raddr, uint32_t rkey,
		     uint64_t wr_id, unsigned flags)
{
	struct sq_ent *e;
	int r = check_rw(c, local, len);

	if (r < 0)
		return r;
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

int cf_vc_post_cas(struct cf_conn *c, uint64_t raddr, uint32_t rkey, uint64_t compare, uint64_t swap,
		   uint64_t wr_id, unsigned flags)
{
	return post_atomic(c, CF_OP_CAS, raddr, rkey, compare, swap, wr_id);
}

int cf_vc_post_faa(struct cf_conn *c, uint64_t raddr, uint32_t rkey, uint64_t add, uint64_t wr_id, unsigned flags)
{
	return post_atomic(c, CF_OP_FAA, raddr, rkey, add, 0, wr_id);
}

int cf_vc_poll(struct cf_conn *c, struct cf_wc *wc, int max, int timeout_ms)
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
	cf_vc_arm(c); /* keep ctrl_fd live for messages arriving later */
	return n;
}

int cf_vc_send_ctrl(struct cf_conn *c, const void *msg, size_t len)
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
	cf_vc_consume_events(c);
	drain_cm(c);
	cf_vc_arm(c);
	drain_cq(c); /* after the arm: a completion in between is not lost */
}

int cf_vc_recv_ctrl(struct cf_conn *c, void *buf, size_t cap, int timeout_ms)
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
	r = c->dead ? 0 : cf_vc_post_recv(c, slot);
	if (r < 0)
		set_dead(c, r);
	cf_vc_arm(c);
	return len <= cap ? (int)len : -EMSGSIZE;
}

int cf_vc_ctrl_fd(struct cf_conn *c) { return c->efd; }

int cf_vc_ctrl_pending(struct cf_conn *c)
{
	quiesce(c);
	return c->rq_n > 0 || c->dead;
}
