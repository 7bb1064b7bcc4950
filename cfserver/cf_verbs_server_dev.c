/* SPDX-License-Identifier: MIT */
/*
 * cf_verbs_server_dev.c - the verbs server's device side and its entry points
 * (cf_verbs_server_int.h): listen and destroy, the protection domains and the
 * image MRs, the loopback QP pair of local_cas, the device and memory-window
 * probes, and the ops table. It calls into cf_verbs_server.c (the connections),
 * never the other way.
 */
#include "cf_verbs_server_int.h"

int sv_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return cf_verbs_neg_errno();
	return 0;
}

/* ---------------- loopback QP (local_cas) ---------------- */

static int lb_expect(struct lbqp *lb, enum rdma_cm_event_type want, struct rdma_cm_id **id)
{
	struct pollfd pfd = {.fd = lb->ech->fd, .events = POLLIN};
	struct rdma_cm_event *ev;
	uint64_t deadline = cf_mono_ns() + (uint64_t)SV_CM_TIMEOUT_MS * 1000000ull;

	for (;;) {
		if (rdma_get_cm_event(lb->ech, &ev) == 0) {
			enum rdma_cm_event_type got = ev->event;
			int status = ev->status;
			if (id)
				*id = ev->id;
			rdma_ack_cm_event(ev);
			if (got != want) {
				vlog("loopback QP: got %s (status %d), wanted %s", rdma_event_str(got), status,
				     rdma_event_str(want));
				return status < 0 ? status : -ECONNREFUSED;
			}
			return 0;
		}
		if (errno != EAGAIN)
			return cf_verbs_neg_errno();
		int64_t left = (int64_t)(deadline - cf_mono_ns()) / 1000000;
		if (left <= 0)
			return -ETIMEDOUT;
		poll(&pfd, 1, (int)left);
	}
}

static int lb_qp(struct cf_tserver *t, struct rdma_cm_id *id, struct ibv_cq *cq)
{
	struct ibv_qp_init_attr qa = {0};

	qa.send_cq = cq;
	qa.recv_cq = cq;
	qa.qp_type = IBV_QPT_RC;
	qa.cap.max_send_wr = 4;
	qa.cap.max_recv_wr = 1;
	qa.cap.max_send_sge = 1;
	qa.cap.max_recv_sge = 1;
	return rdma_create_qp(id, t->pd, &qa) ? cf_verbs_neg_errno() : 0;
}

static int lb_setup(struct cf_tserver *t, struct lbqp *lb, struct sockaddr *bound)
{
	struct sockaddr_storage ss;
	struct rdma_conn_param p = {.responder_resources = 1, .initiator_depth = 1, .retry_count = 7,
				    .rnr_retry_count = 7};
	struct rdma_cm_id *got = NULL;
	socklen_t sl = bound->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int r;

	lb->ech = rdma_create_event_channel();
	if (!lb->ech)
		return cf_verbs_neg_errno();
	if ((r = sv_set_nonblock(lb->ech->fd)) < 0)
		return r;
	if (rdma_create_id(lb->ech, &lb->lid, NULL, RDMA_PS_TCP) ||
	    rdma_create_id(lb->ech, &lb->cli, NULL, RDMA_PS_TCP))
		return cf_verbs_neg_errno();
	memcpy(&ss, bound, sl);
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = 0;
	if (rdma_bind_addr(lb->lid, (struct sockaddr *)&ss) || rdma_listen(lb->lid, 1))
		return cf_verbs_neg_errno();
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = rdma_get_src_port(lb->lid);
	else
		((struct sockaddr_in6 *)&ss)->sin6_port = rdma_get_src_port(lb->lid);
	if (rdma_resolve_addr(lb->cli, NULL, (struct sockaddr *)&ss, SV_CM_TIMEOUT_MS))
		return cf_verbs_neg_errno();
	if ((r = lb_expect(lb, RDMA_CM_EVENT_ADDR_RESOLVED, NULL)) < 0)
		return r;
	if (rdma_resolve_route(lb->cli, SV_CM_TIMEOUT_MS))
		return cf_verbs_neg_errno();
	if ((r = lb_expect(lb, RDMA_CM_EVENT_ROUTE_RESOLVED, NULL)) < 0)
		return r;
	if (lb->cli->verbs != t->verbs)
		return -EXDEV;
	lb->buf = aligned_alloc(64, 64);
	if (!lb->buf)
		return -ENOMEM;
	lb->mr = ibv_reg_mr(t->pd, lb->buf, 64, IBV_ACCESS_LOCAL_WRITE);
	lb->cq = ibv_create_cq(t->verbs, 8, NULL, NULL, 0);
	lb->scq = ibv_create_cq(t->verbs, 8, NULL, NULL, 0);
	if (!lb->mr || !lb->cq || !lb->scq)
		return cf_verbs_neg_errno();
	if ((r = lb_qp(t, lb->cli, lb->cq)) < 0)
		return r;
	if (rdma_connect(lb->cli, &p))
		return cf_verbs_neg_errno();
	if ((r = lb_expect(lb, RDMA_CM_EVENT_CONNECT_REQUEST, &got)) < 0)
		return r;
	lb->srv = got;
	if ((r = lb_qp(t, lb->srv, lb->scq)) < 0)
		return r;
	if (rdma_accept(lb->srv, &p))
		return cf_verbs_neg_errno();
	if ((r = lb_expect(lb, RDMA_CM_EVENT_ESTABLISHED, NULL)) < 0 ||
	    (r = lb_expect(lb, RDMA_CM_EVENT_ESTABLISHED, NULL)) < 0)
		return r;
	return 0;
}

static void lb_destroy(struct lbqp *lb)
{
	if (lb->cli) {
		if (lb->cli->qp)
			rdma_destroy_qp(lb->cli);
		rdma_destroy_id(lb->cli);
	}
	if (lb->srv) {
		if (lb->srv->qp)
			rdma_destroy_qp(lb->srv);
		rdma_destroy_id(lb->srv);
	}
	if (lb->lid)
		rdma_destroy_id(lb->lid);
	if (lb->cq)
		ibv_destroy_cq(lb->cq);
	if (lb->scq)
		ibv_destroy_cq(lb->scq);
	if (lb->mr)
		ibv_dereg_mr(lb->mr);
	free(lb->buf);
	if (lb->ech)
		rdma_destroy_event_channel(lb->ech);
}

/* Wait (bounded) for one completion on cq; its status as 0/-errno. */
static int lb_wait(struct ibv_cq *cq)
{
	uint64_t deadline = cf_mono_ns() + SV_SYNC_WAIT_NS;
	unsigned spins = 0;
	struct ibv_wc wc;
	int n;

	while ((n = ibv_poll_cq(cq, 1, &wc)) == 0) {
		if (cf_mono_ns() > deadline)
			return -ETIMEDOUT;
		sv_sync_pause(&spins);
	}
	return n < 0 ? -EIO : cf_verbs_wc_errno(wc.status);
}

/*
 * Does this device enforce a type-2 window's bounds? rxe does not: it checks
 * an access through a window against the window's MR only. Probe on a
 * throwaway loopback pair: bind a window over image[0,64) with REMOTE_READ on
 * the responder QP, READ inside it (must work), then READ image[64,72)
 * through it (must fail). A device that lets the second READ through gets
 * per-grant MRs instead, which it does bound-check, because invariant 7
 * (out-of-range offsets get an error) matters more than the window's
 * per-QP binding.
 */
static int probe_mw_bounds(struct cf_tserver *t, struct sockaddr *bound, bool *enforced)
{
	struct lbqp lb = {0};
	struct ibv_mw *mw = NULL;
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sge;
	uint32_t rkey;
	int r;

	*enforced = false;
	if (t->size < 128)
		return -EINVAL;
	r = lb_setup(t, &lb, bound);
	if (r < 0)
		goto out;
	mw = ibv_alloc_mw(t->pd, IBV_MW_TYPE_2);
	if (!mw) {
		r = cf_verbs_neg_errno();
		goto out;
	}
	rkey = ibv_inc_rkey(mw->rkey);
	memset(&wr, 0, sizeof(wr));
	wr.opcode = IBV_WR_BIND_MW;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.bind_mw.mw = mw;
	wr.bind_mw.rkey = rkey;
	wr.bind_mw.bind_info.mr = t->mr;
	wr.bind_mw.bind_info.addr = (uintptr_t)t->image;
	wr.bind_mw.bind_info.length = 64;
	wr.bind_mw.bind_info.mw_access_flags = IBV_ACCESS_REMOTE_READ;
	if ((r = cf_verbs_post_ret(ibv_post_send(lb.srv->qp, &wr, &bad))) < 0 || (r = lb_wait(lb.scq)) < 0)
		goto out;
	sge.addr = (uintptr_t)lb.buf;
	sge.length = 8;
	sge.lkey = lb.mr->lkey;
	memset(&wr, 0, sizeof(wr));
	wr.opcode = IBV_WR_RDMA_READ;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.wr.rdma.rkey = rkey;
	wr.wr.rdma.remote_addr = (uintptr_t)t->image;
	if ((r = cf_verbs_post_ret(ibv_post_send(lb.cli->qp, &wr, &bad))) < 0 || (r = lb_wait(lb.cq)) < 0)
		goto out; /* even an in-bounds READ fails: the probe proves nothing */
	wr.wr.rdma.remote_addr = (uintptr_t)t->image + 64;
	if ((r = cf_verbs_post_ret(ibv_post_send(lb.cli->qp, &wr, &bad))) < 0)
		goto out;
	*enforced = lb_wait(lb.cq) != 0;
out:
	if (mw)
		ibv_dealloc_mw(mw);
	lb_destroy(&lb);
	return r;
}

int sv_local_cas(struct cf_tserver *t, uint64_t off, uint64_t compare, uint64_t swap, uint64_t *old)
{
	/*
	 * Not a CPU CAS: the device reports IBV_ATOMIC_HCA, so only RDMA atomics
	 * of this HCA are atomic against the clients' RDMA CAS/FAA on the same
	 * word. We send our own CAS through a loopback RC QP to our own MR.
	 */
	struct ibv_sge sge = {.addr = (uintptr_t)t->lb.buf, .length = 8, .lkey = t->lb.mr->lkey};
	struct ibv_send_wr wr = {.wr_id = 1, .sg_list = &sge, .num_sge = 1, .opcode = IBV_WR_ATOMIC_CMP_AND_SWP,
				 .send_flags = IBV_SEND_SIGNALED}, *bad;
	struct ibv_wc wc;
	uint64_t deadline;
	unsigned spins = 0;
	int n, r;

	if (off % 8 || off + 8 > t->size || off + 8 < off)
		return -EINVAL;
	if (t->lb.broken)
		return -EIO;
	wr.wr.atomic.remote_addr = (uintptr_t)(t->image + off);
	wr.wr.atomic.rkey = t->mr->rkey;
	wr.wr.atomic.compare_add = compare;
	wr.wr.atomic.swap = swap;
	r = cf_verbs_post_ret(ibv_post_send(t->lb.cli->qp, &wr, &bad));
	if (r < 0)
		return r;
	deadline = cf_mono_ns() + SV_SYNC_WAIT_NS;
	while ((n = ibv_poll_cq(t->lb.cq, 1, &wc)) == 0) {
		sv_sync_pause(&spins);
		if (cf_mono_ns() > deadline) {
			t->lb.broken = true; /* the WR may still complete into lb_buf: never reuse */
			return -ETIMEDOUT;
		}
	}
	if (n < 0)
		return -EIO;
	if (wc.status != IBV_WC_SUCCESS) {
		vlog("loopback CAS: %s", ibv_wc_status_str(wc.status));
		t->lb.broken = true;
		return cf_verbs_wc_errno(wc.status);
	}
	/* The original value lands in host byte order (rdma-core converts). */
	*old = *(volatile uint64_t *)t->lb.buf;
	return 0;
}

/* ---------------- server ops ---------------- */

static int probe_device(struct cf_tserver *t)
{
	const char *name = ibv_get_device_name(t->verbs->device);
	bool mw2b;

	if (ibv_query_device(t->verbs, &t->attr))
		return cf_verbs_neg_errno();
	mw2b = (t->attr.device_cap_flags & IBV_DEVICE_MEM_WINDOW_TYPE_2B) && t->attr.max_mw > 0;
	vlog_info("device %s: atomic_cap=%s max_mw=%d mw_type_2b=%s max_qp_wr=%d max_sge=%d max_mr_size=%" PRIu64
	     " max_qp_rd_atom=%d",
	     name,
	     t->attr.atomic_cap == IBV_ATOMIC_NONE ? "NONE" : t->attr.atomic_cap == IBV_ATOMIC_HCA ? "HCA" : "GLOB",
	     t->attr.max_mw, mw2b ? "yes" : "no", t->attr.max_qp_wr, t->attr.max_sge, (uint64_t)t->attr.max_mr_size,
	     t->attr.max_qp_rd_atom);
	if (t->attr.atomic_cap == IBV_ATOMIC_NONE) {
		vlog("device %s has no RDMA atomics (atomic_cap NONE): cfplex needs CAS/FAA; refusing it", name);
		return -EOPNOTSUPP;
	}
	if (t->attr.max_qp_rd_atom < 1) {
		vlog("device %s: max_qp_rd_atom 0, no READ/atomic responder resources; refusing it", name);
		return -EOPNOTSUPP;
	}
	if (t->size > t->attr.max_mr_size) {
		vlog("image of %" PRIu64 " bytes exceeds max_mr_size", t->size);
		return -EFBIG;
	}
	if ((uint32_t)t->attr.max_qp_wr < SV_SEND_DEPTH)
		return -EOPNOTSUPP;
	t->use_mw = mw2b;
	if (getenv("CF_VERBS_NO_MW") && strcmp(getenv("CF_VERBS_NO_MW"), "1") == 0)
		t->use_mw = false;
	if (t->use_mw) {
		/* some providers advertise the flag but refuse type 2: try once */
		struct ibv_mw *mw = ibv_alloc_mw(t->pd, IBV_MW_TYPE_2);
		if (mw)
			ibv_dealloc_mw(mw);
		else
			t->use_mw = false;
	}
	return 0;
}

void sv_destroy(struct cf_tserver *t)
{
	if (!t)
		return;
	while (t->conns) {
		struct cf_sconn *sc = t->conns;
		sv_conn_kill(sc, -ESHUTDOWN);
	}
	if (t->loop) {
		ev_io_stop(t->loop, &t->cm_w);
		ev_io_stop(t->loop, &t->cq_w);
		sv_reap_cb(t->loop, &t->reap_w, 0); /* on_close for every connection, then free */
	}
	lb_destroy(&t->lb);
	if (t->cmr)
		ibv_dereg_mr(t->cmr);
	if (t->cpd)
		ibv_dealloc_pd(t->cpd);
	if (t->mr)
		ibv_dereg_mr(t->mr);
	if (t->lid)
		rdma_destroy_id(t->lid); /* after every per-connection CQ is gone */
	if (t->cch)
		ibv_destroy_comp_channel(t->cch);
	if (t->pd)
		ibv_dealloc_pd(t->pd);
	if (t->ech)
		rdma_destroy_event_channel(t->ech);
	free(t);
}

int sv_listen(struct ev_loop *loop, const char *addr, void *image, uint64_t size,
		    const struct cf_server_cbs *cbs, struct cf_tserver **out)
{
	struct cf_tserver *t;
	struct addrinfo hints = {.ai_flags = AI_NUMERICSERV | AI_PASSIVE, .ai_socktype = SOCK_STREAM}, *ai = NULL;
	char host[CF_ADDR_HOST_MAX], portstr[8];
	uint16_t port;
	int r;

	r = cf_addr_split(addr, host, sizeof(host), &port);
	if (r < 0)
		return r;
	if (!image || size == 0 || (uintptr_t)image % 8)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->cbs = *cbs;
	t->image = image;
	t->size = size;
	snprintf(portstr, sizeof(portstr), "%u", port);
	r = getaddrinfo(host, portstr, &hints, &ai);
	if (r) {
		r = r == EAI_SYSTEM ? cf_verbs_neg_errno() : -EADDRNOTAVAIL;
		goto err_destroy;
	}
	t->ech = rdma_create_event_channel();
	if (!t->ech) {
		r = cf_verbs_neg_errno();
		goto err_destroy;
	}
	if (rdma_create_id(t->ech, &t->lid, t, RDMA_PS_TCP) || rdma_bind_addr(t->lid, ai->ai_addr)) {
		r = cf_verbs_neg_errno();
		goto err_destroy;
	}
	if (!t->lid->verbs) {
		vlog("%s is not the address of an RDMA device (wildcard binds are refused: the image must be "
		     "registered on one device)", addr);
		r = -EADDRNOTAVAIL;
		goto err_destroy;
	}
	t->verbs = t->lid->verbs;
	t->pd = ibv_alloc_pd(t->verbs);
	if (!t->pd) {
		r = cf_verbs_neg_errno();
		goto err_destroy;
	}
	r = probe_device(t);
	if (r < 0)
		goto err_destroy;
	/* No IBV_ACCESS_RELAXED_ORDERING: M3 (docs/design.md §0) needs a later READ through this
	 * HCA to see every completed WRITE. */
	t->mr = ibv_reg_mr(t->pd, image, size,
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE |
				   IBV_ACCESS_REMOTE_ATOMIC | (t->use_mw ? IBV_ACCESS_MW_BIND : 0));
	if (!t->mr) {
		r = cf_verbs_neg_errno();
		vlog("registering the %" PRIu64 "-byte image: %s", size, strerror(-r));
		goto err_destroy;
	}
	t->cch = ibv_create_comp_channel(t->verbs);
	if (!t->cch) {
		r = cf_verbs_neg_errno();
		goto err_destroy;
	}
	if ((r = sv_set_nonblock(t->cch->fd)) < 0 || (r = sv_set_nonblock(t->ech->fd)) < 0)
		goto err_destroy;
	if (rdma_listen(t->lid, 64)) {
		r = cf_verbs_neg_errno();
		goto err_destroy;
	}
	t->port = ntohs(rdma_get_src_port(t->lid));
	r = lb_setup(t, &t->lb, rdma_get_local_addr(t->lid));
	if (r < 0) {
		vlog("loopback QP for the server's own atomics: %s", strerror(-r));
		goto err_destroy;
	}
	if (t->use_mw && !(getenv("CF_VERBS_FORCE_MW") && strcmp(getenv("CF_VERBS_FORCE_MW"), "1") == 0)) {
		bool enforced;
		int pr = probe_mw_bounds(t, rdma_get_local_addr(t->lid), &enforced);
		if (pr < 0 || !enforced) {
			vlog("%s: memory windows are not usable for grants (%s): falling back",
			     ibv_get_device_name(t->verbs->device),
			     pr < 0 ? strerror(-pr) : "the device does not check a window's bounds");
			t->use_mw = false;
		}
	}
	if (t->use_mw) {
		/* the windows' MR: no remote right of its own, in the clients' PD (not the server's) */
		t->cpd = ibv_alloc_pd(t->verbs);
		t->cmr = t->cpd ? ibv_reg_mr(t->cpd, image, size, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_MW_BIND) : NULL;
		if (!t->cmr) {
			r = cf_verbs_neg_errno();
			vlog("registering the image for memory windows: %s", strerror(-r));
			goto err_destroy;
		}
	}
	vlog_info("grants use %s", t->use_mw ? "type-2 memory windows (bound per QP, LOCAL_INV to revoke)"
					  : "per-grant memory regions (in a protection domain of their connection alone; "
					    "dereg to revoke)");
	t->loop = loop;
	ev_io_init(&t->cm_w, sv_cm_cb, t->ech->fd, EV_READ);
	ev_io_init(&t->cq_w, sv_cq_cb, t->cch->fd, EV_READ);
	ev_prepare_init(&t->reap_w, sv_reap_cb);
	t->cm_w.data = t->cq_w.data = t->reap_w.data = t;
	ev_io_start(loop, &t->cm_w);
	ev_io_start(loop, &t->cq_w);
	freeaddrinfo(ai);
	*out = t;
	return 0;
err_destroy:
	if (ai)
		freeaddrinfo(ai);
	sv_destroy(t);
	return r;
}

const struct cf_server_ops cf_verbs_server = {
	.name = "verbs",
	.listen = sv_listen,
	.destroy = sv_destroy,
	.port = sv_port,
	.send_ctrl = sv_send_ctrl,
	.grant = sv_grant,
	.revoke = sv_revoke,
	.fence = sv_fence,
	.close = sv_close,
	.local_cas = sv_local_cas,
	.set_data = sv_set_data,
	.get_data = sv_get_data,
	.peer = sv_peer,
};
