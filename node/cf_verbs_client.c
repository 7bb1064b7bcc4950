/* SPDX-License-Identifier: MIT */
/*
 * cf_verbs_client.c - the verbs backend, client side (struct cf_client_ops):
 * connection setup and teardown, and the ops table; the data path is
 * cf_verbs_client_io.c (files: cf_verbs_client.h).
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
 * connection; the session layer (cf_session.c) ends the session on a refusal
 * over either transport, so the two cannot differ above it.
 *
 * ctrl_fd is an epoll fd over the completion channel and the CM event
 * channel, so a libev watcher wakes for control messages and for the
 * server's DISCONNECT alike. It may fire for a one-sided completion too (the
 * CQ is shared); ctrl_pending() then consumes the notification and re-arms,
 * so the fd goes quiet again.
 */
#include "cf_verbs_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "cf_addr.h"
#include "cf_util.h"

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return cf_verbs_neg_errno();
	return 0;
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
		cf_vc_consume_events(c); /* ack outstanding notifications before destroying the CQ */
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
			return cf_verbs_neg_errno();
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
		r = r == EAI_SYSTEM ? cf_verbs_neg_errno() : -EHOSTUNREACH;
		ai = NULL;
		goto err_close;
	}
	c->ech = rdma_create_event_channel();
	if (!c->ech) {
		r = cf_verbs_neg_errno();
		goto err_close;
	}
	if ((r = set_nonblock(c->ech->fd)) < 0)
		goto err_close;
	if (rdma_create_id(c->ech, &c->id, c, RDMA_PS_TCP)) {
		r = cf_verbs_neg_errno();
		c->id = NULL;
		goto err_close;
	}
	/* address and route resolution, each bounded by what is left of timeout_ms */
	left = (int)((deadline - cf_mono_ns()) / 1000000);
	if (rdma_resolve_addr(c->id, NULL, ai->ai_addr, left > 0 ? left : 1)) {
		r = cf_verbs_neg_errno();
		goto err_close;
	}
	if ((r = cm_expect(c, RDMA_CM_EVENT_ADDR_RESOLVED, deadline)) < 0)
		goto err_close;
	now = cf_mono_ns();
	left = now < deadline ? (int)((deadline - now) / 1000000) : 0;
	if (rdma_resolve_route(c->id, left > 0 ? left : 1)) {
		r = cf_verbs_neg_errno();
		goto err_close;
	}
	if ((r = cm_expect(c, RDMA_CM_EVENT_ROUTE_RESOLVED, deadline)) < 0)
		goto err_close;
	if (ibv_query_device(c->id->verbs, &da)) {
		r = cf_verbs_neg_errno();
		goto err_close;
	}
	if (da.atomic_cap == IBV_ATOMIC_NONE || da.max_qp_init_rd_atom < 1) {
		r = -EOPNOTSUPP; /* no RDMA atomics: cfplex cannot run on this device */
		goto err_close;
	}
	c->pd = ibv_alloc_pd(c->id->verbs);
	c->cch = ibv_create_comp_channel(c->id->verbs);
	if (!c->pd || !c->cch) {
		r = cf_verbs_neg_errno();
		goto err_close;
	}
	if ((r = set_nonblock(c->cch->fd)) < 0)
		goto err_close;
	c->cq = ibv_create_cq(c->id->verbs, CL_SQ_DEPTH + CL_RQ_DEPTH, c, c->cch, 0);
	if (!c->cq) {
		r = cf_verbs_neg_errno();
		goto err_close;
	}
	if (posix_memalign((void **)&c->mem, 4096, memlen)) {
		r = -ENOMEM;
		goto err_close;
	}
	memset(c->mem, 0, memlen);
	c->mr = ibv_reg_mr(c->pd, c->mem, memlen, IBV_ACCESS_LOCAL_WRITE);
	if (!c->mr) {
		r = cf_verbs_neg_errno();
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
			r = cf_verbs_neg_errno();
			goto err_close;
		}
	}
	c->max_inline = qa.cap.max_inline_data;
	for (i = 0; i < CL_RQ_DEPTH; i++)
		if ((r = cf_vc_post_recv(c, i)) < 0)
			goto err_close;
	memset(&p, 0, sizeof(p));
	/* both > 0, or READ and atomics never complete (rxe) */
	p.initiator_depth = (uint8_t)(da.max_qp_init_rd_atom < 16 ? da.max_qp_init_rd_atom : 16);
	p.responder_resources = 1;
	p.retry_count = 7;
	p.rnr_retry_count = 7; /* the server re-posts RECVs after each message; wait, don't fail */
	if (rdma_connect(c->id, &p)) {
		r = cf_verbs_neg_errno();
		goto err_close;
	}
	if ((r = cm_expect(c, RDMA_CM_EVENT_ESTABLISHED, deadline)) < 0)
		goto err_close;
	c->efd = epoll_create1(EPOLL_CLOEXEC);
	if (c->efd < 0) {
		r = cf_verbs_neg_errno();
		goto err_close;
	}
	ee.data.fd = c->cch->fd;
	if (epoll_ctl(c->efd, EPOLL_CTL_ADD, c->cch->fd, &ee)) {
		r = cf_verbs_neg_errno();
		goto err_close;
	}
	ee.data.fd = c->ech->fd;
	if (epoll_ctl(c->efd, EPOLL_CTL_ADD, c->ech->fd, &ee)) {
		r = cf_verbs_neg_errno();
		goto err_close;
	}
	cf_vc_arm(c);
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
	.connect = v_connect,
	.close = v_close,
	.post_read = cf_vc_post_read,
	.post_write = cf_vc_post_write,
	.post_cas = cf_vc_post_cas,
	.post_faa = cf_vc_post_faa,
	.poll = cf_vc_poll,
	.send_ctrl = cf_vc_send_ctrl,
	.recv_ctrl = cf_vc_recv_ctrl,
	.ctrl_fd = cf_vc_ctrl_fd,
	.ctrl_pending = cf_vc_ctrl_pending,
};
