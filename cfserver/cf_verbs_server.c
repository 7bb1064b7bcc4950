/* SPDX-License-Identifier: MIT */
/*
 * cf_verbs_server.c - the verbs backend, server side: connections, completions and
 * the per-connection operations (the ops table and the device: cf_verbs_server_dev.c).
 *
 * Design
 *   - One rdma_cm listener on ADDR:PORT. ADDR must name an RDMA-capable
 *     interface (a wildcard bind has no device yet, and the CF image must be
 *     registered before the first client arrives).
 *   - Protection domains keep every connection to what it was granted, from
 *     the moment its QP exists (before its handshake, too):
 *       - the server's own PD holds the loopback QP pair of local_cas and the
 *         one MR with remote rights over the whole image; no client QP is
 *         ever in it, so that rkey works from no client QP, even if guessed;
 *       - clients get per-connection type-2 memory windows (bound on that
 *         connection's QP, so the rkey is useless on any other QP), bound to
 *         a second image MR with LOCAL_WRITE | MW_BIND only, in a PD shared
 *         by the client QPs: its own rkey gives no remote access at all;
 *       - or, on devices without MEM_WINDOW_TYPE_2B (rxe), a per-grant MR in
 *         a PD of that connection alone: its rkey, leaked or guessed, works
 *         from no other QP (a PD check of the HCA, as for windows).
 *   - Per connection: one RC QP, a send CQ (ctrl SENDs, BIND_MW, LOCAL_INV;
 *     polled synchronously, never from the event loop) and a recv CQ (ctrl
 *     RECVs; all recv CQs share one completion channel watched by libev). Two
 *     CQs so that a synchronous wait for a bind or an invalidation never
 *     reaps - and so never has to re-enter the core with - a control message.
 *   - Control messages: SEND/RECV whose payload is exactly the cf_ctrl message
 *     (no frame header). The request id handed to on_ctrl is a per-connection
 *     sequence number: verbs carries no id on the wire, and the client API
 *     matches replies by order (one RC QP delivers in order).
 *   - on_close always runs from the loop (an ev_prepare reaper), never inside
 *     a call into this backend, so the core may fence/close from any callback.
 *   - local_cas goes through a loopback RC QP to our own MR: devices report
 *     IBV_ATOMIC_HCA (rxe does), i.e. RDMA atomics are atomic only against
 *     other RDMA atomics of the same HCA, so a CPU CAS on a word a client may
 *     CAS at the same moment could be lost.
 *
 * Fence (M1, docs/design.md §0): ibv_modify_qp(ERR) is not documented to
 * stop requests the responder already accepted. So fence first invalidates
 * every window of the connection with IBV_WR_LOCAL_INV and waits for each
 * completion (or deregisters its MRs in the fallback; ibv_dereg_mr returns
 * only once the HCA no longer accepts the rkey), then moves the QP to ERR,
 * deallocates the windows (a definite invalidation even if the QP had already
 * failed and the LOCAL_INV was flushed), destroys the QP, and only then
 * returns.
 */
#include "cf_verbs_server_int.h"

static const char *sc_state_str(enum sc_state s)
{
	switch (s) {
	case SC_LIVE: return "live";
	case SC_CLOSING: return "closing";
	case SC_FREED: return "freed";
	}
	return "?";
}

/* ---------------- connections ---------------- */

static void linger_cb(struct ev_loop *loop, ev_timer *w, int revents);

static uint8_t *recv_slot(struct cf_sconn *sc, unsigned i) { return sc->bufs + (size_t)i * CF_CTRL_MAX; }
static uint8_t *send_slot(struct cf_sconn *sc, uint64_t seq)
{
	return sc->bufs + (size_t)(SV_RECV_DEPTH + seq % SV_SEND_DEPTH) * CF_CTRL_MAX;
}

static int post_recv(struct cf_sconn *sc, unsigned i)
{
	struct ibv_sge sge = {.addr = (uintptr_t)recv_slot(sc, i), .length = CF_CTRL_MAX, .lkey = sc->bufmr->lkey};
	struct ibv_recv_wr wr = {.wr_id = i, .sg_list = &sge, .num_sge = 1}, *bad;
	return cf_verbs_post_ret(ibv_post_recv(sc->id->qp, &wr, &bad));
}

/*
 * Reap the send CQ. Completions of one send queue arrive in post order, and
 * every WR we post is signaled, so send_done is simply the last wr_id + 1.
 */
static int reap_send(struct cf_sconn *sc)
{
	struct ibv_wc wc[8];
	int n, i;

	n = ibv_poll_cq(sc->scq, 8, wc);
	if (n < 0)
		return -EIO;
	for (i = 0; i < n; i++) {
		sc->send_done = wc[i].wr_id + 1;
		sc->send_status = cf_verbs_wc_errno(wc[i].status);
		if (wc[i].status != IBV_WC_SUCCESS) {
			/* IBV_WC_WR_FLUSH_ERR after a fenced/failed QP is expected: the
			 * connection is over, not the server. */
			sc->qp_dead = true;
			if (wc[i].status != IBV_WC_WR_FLUSH_ERR)
				vlog("%s: send completion %s (wr %" PRIu64 ")", sc->peer,
				     ibv_wc_status_str(wc[i].status), (uint64_t)wc[i].wr_id);
		}
	}
	return n;
}

/* Wait (bounded) until WR seq completed; its status, or -ETIMEDOUT. */
static int wait_send(struct cf_sconn *sc, uint64_t seq)
{
	/* The loop thread blocks here: binds and invalidations complete in
	 * microseconds on hardware (a few hundred under emulation), and fence
	 * must not return before they did. */
	uint64_t deadline = cf_mono_ns() + SV_SYNC_WAIT_NS;
	unsigned spins = 0;
	int r;

	while (sc->send_done <= seq) {
		r = reap_send(sc);
		if (r < 0)
			return r;
		if (r == 0) {
			if (cf_mono_ns() > deadline)
				return -ETIMEDOUT;
			sv_sync_pause(&spins);
		}
	}
	/* send_status is the status of the last reaped WR; seq is the newest posted. */
	return sc->send_status;
}

/*
 * Room for one more signaled WR on the send queue, without waiting: a full
 * queue means SENDs the peer has not acknowledged (a peer that posts no
 * RECVs keeps them in RNR retry for ever, rnr_retry 7), and the loop never
 * waits on what a peer controls (docs/design.md §7, "Stalling the CF"). -ENOBUFS then.
 */
static int send_room(struct cf_sconn *sc)
{
	int r;

	if (sc->send_seq - sc->send_done < SV_SEND_DEPTH)
		return 0;
	r = reap_send(sc);
	if (r < 0)
		return r;
	return sc->send_seq - sc->send_done < SV_SEND_DEPTH ? 0 : -ENOBUFS;
}

/* Nothing posted is still waiting for its completion (after one look at the CQ). */
static bool send_idle(struct cf_sconn *sc)
{
	if (sc->send_done < sc->send_seq)
		reap_send(sc);
	return sc->send_done >= sc->send_seq;
}

static int post_sync(struct cf_sconn *sc, struct ibv_send_wr *wr)
{
	struct ibv_send_wr *bad;
	uint64_t seq;
	int r;

	if (sc->qp_dead || !sc->id->qp)
		return -ECONNRESET;
	r = send_room(sc);
	if (r < 0)
		return r;
	seq = sc->send_seq;
	wr->wr_id = seq;
	wr->send_flags |= IBV_SEND_SIGNALED;
	r = cf_verbs_post_ret(ibv_post_send(sc->id->qp, wr, &bad));
	if (r < 0)
		return r;
	sc->send_seq++;
	return wait_send(sc, seq);
}

static void grant_release(struct sgrant *g)
{
	if (g->mw)
		ibv_dealloc_mw(g->mw);
	if (g->mr)
		ibv_dereg_mr(g->mr);
	memset(g, 0, sizeof(*g));
}

/* Invalidate one grant: LOCAL_INV awaited (windows) or dereg (MRs). */
static int grant_invalidate(struct cf_sconn *sc, struct sgrant *g)
{
	int r = 0;

	/*
	 * LOCAL_INV only on an idle send queue: behind a SEND the peer does not
	 * acknowledge it would wait on the peer (the dealloc below revokes anyway).
	 */
	if (g->mw && !sc->qp_dead && send_idle(sc)) {
		struct ibv_send_wr wr = {.opcode = IBV_WR_LOCAL_INV, .invalidate_rkey = g->rkey};
		r = post_sync(sc, &wr);
	}
	/* dealloc/dereg is the definitive revocation in both modes (also when
	 * the QP already failed and LOCAL_INV could only be flushed). */
	grant_release(g);
	return r == -ECONNRESET ? 0 : r;
}

/*
 * The barrier: after this returns no request of sc executes at the CF.
 * Order matters: invalidate all access first (a LOCAL_INV awaited where the
 * send queue is idle, so the wait is the device's, never the peer's; the
 * dealloc/dereg is the revocation), then error and destroy the QP.
 */
static void conn_teardown_qp(struct cf_sconn *sc)
{
	unsigned i;

	for (i = 0; i < sc->ngrants; i++)
		grant_invalidate(sc, &sc->g[i]);
	sc->ngrants = 0;
	if (sc->id && sc->id->qp) {
		struct ibv_qp_attr a = {.qp_state = IBV_QPS_ERR};
		ibv_modify_qp(sc->id->qp, &a, IBV_QP_STATE);
		sc->qp_dead = true;
		/* rdma_disconnect sends the DREQ so the client learns at once
		 * (DISCONNECTED) instead of at its next op's retry timeout. */
		rdma_disconnect(sc->id);
		rdma_destroy_qp(sc->id);
	}
}

static void conn_free(struct cf_sconn *sc)
{
	if (!sc)
		return;
	if (sc->id) {
		if (sc->id->qp)
			rdma_destroy_qp(sc->id);
		rdma_destroy_id(sc->id);
	}
	if (sc->rcq)
		ibv_destroy_cq(sc->rcq);
	if (sc->scq)
		ibv_destroy_cq(sc->scq);
	if (sc->bufmr)
		ibv_dereg_mr(sc->bufmr);
	/* last: its QP and MRs are gone (the grants with the teardown) */
	if (sc->own_pd && sc->pd && ibv_dealloc_pd(sc->pd))
		vlog("%s: the connection's protection domain is still in use: leaked", sc->peer);
	free(sc->bufs);
	free(sc);
}

void sv_reap_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct cf_tserver *t = w->data;

	while (t->zombies) {
		struct cf_sconn *sc = t->zombies;
		t->zombies = sc->znext;
		if (t->cbs.on_close)
			t->cbs.on_close(t->cbs.arg, sc, sc->close_err);
		sc->state = SC_FREED;
		conn_free(sc);
	}
	ev_prepare_stop(loop, w);
}

/* sc is over: barrier-teardown now, on_close from the reaper. */
void sv_conn_kill(struct cf_sconn *sc, int err)
{
	struct cf_tserver *t = sc->t;

	if (sc->state != SC_LIVE)
		return;
	sc->state = SC_CLOSING;
	sc->close_err = err;
	ev_timer_stop(t->loop, &sc->linger_w);
	conn_teardown_qp(sc);
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		t->conns = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	t->nconns--;
	sc->znext = t->zombies;
	t->zombies = sc;
	ev_prepare_start(t->loop, &t->reap_w);
}

static void peer_text(struct rdma_cm_id *id, char *out, size_t cap)
{
	struct sockaddr *sa = rdma_get_peer_addr(id);
	char ip[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof(ip));
	snprintf(out, cap, "%s:%u", ip, ntohs(rdma_get_dst_port(id)));
}

static int conn_create(struct cf_tserver *t, struct rdma_cm_id *id, struct cf_sconn **out)
{
	struct cf_sconn *sc;
	struct ibv_qp_init_attr qa;
	size_t blen = (size_t)(SV_RECV_DEPTH + SV_SEND_DEPTH) * CF_CTRL_MAX;
	unsigned i;
	int r;

	if (id->verbs != t->verbs)
		return -EXDEV; /* arrived on another device than the image is registered on */
	sc = calloc(1, sizeof(*sc));
	if (!sc)
		return -ENOMEM;
	sc->t = t;
	sc->id = id;
	sc->state = SC_LIVE;
	ev_timer_init(&sc->linger_w, linger_cb, 0.001, 0.001);
	sc->linger_w.data = sc;
	peer_text(id, sc->peer, sizeof(sc->peer));
	if (posix_memalign((void **)&sc->bufs, 4096, blen)) {
		r = -ENOMEM;
		goto err_free;
	}
	if (t->use_mw) {
		sc->pd = t->cpd;
	} else {
		sc->pd = ibv_alloc_pd(t->verbs);
		if (!sc->pd) {
			r = cf_verbs_neg_errno();
			goto err_free;
		}
		sc->own_pd = true;
	}
	sc->bufmr = ibv_reg_mr(sc->pd, sc->bufs, blen, IBV_ACCESS_LOCAL_WRITE);
	if (!sc->bufmr) {
		r = cf_verbs_neg_errno();
		goto err_free;
	}
	sc->rcq = ibv_create_cq(t->verbs, SV_RECV_DEPTH, sc, t->cch, 0);
	sc->scq = ibv_create_cq(t->verbs, SV_SEND_DEPTH, sc, NULL, 0);
	if (!sc->rcq || !sc->scq) {
		r = cf_verbs_neg_errno();
		goto err_free;
	}
	memset(&qa, 0, sizeof(qa));
	qa.send_cq = sc->scq;
	qa.recv_cq = sc->rcq;
	qa.qp_type = IBV_QPT_RC;
	qa.cap.max_send_wr = SV_SEND_DEPTH;
	qa.cap.max_recv_wr = SV_RECV_DEPTH;
	qa.cap.max_send_sge = 1;
	qa.cap.max_recv_sge = 1;
	if (rdma_create_qp(id, sc->pd, &qa)) {
		r = cf_verbs_neg_errno();
		goto err_free;
	}
	for (i = 0; i < SV_RECV_DEPTH; i++) {
		r = post_recv(sc, i);
		if (r < 0)
			goto err_free;
	}
	r = ibv_req_notify_cq(sc->rcq, 0) ? -EIO : 0;
	if (r < 0)
		goto err_free;
	*out = sc;
	return 0;
err_free:
	sc->id = NULL; /* the caller rejects and destroys the id */
	if (id->qp)
		rdma_destroy_qp(id);
	conn_free(sc);
	return r;
}

/* ---------------- libev callbacks ---------------- */

static void on_connect_request(struct cf_tserver *t, struct rdma_cm_id *id, const struct rdma_conn_param *cp)
{
	struct rdma_conn_param p;
	struct cf_sconn *sc = NULL;
	int r;

	if (t->nconns >= SV_MAX_CONNS) {
		vlog("refusing connection: %u connections", t->nconns);
		rdma_reject(id, NULL, 0);
		rdma_destroy_id(id);
		return;
	}
	r = conn_create(t, id, &sc);
	if (r < 0) {
		vlog("refusing connection: %s", strerror(-r));
		rdma_reject(id, NULL, 0);
		rdma_destroy_id(id);
		return;
	}
	/* responder_resources/initiator_depth must be > 0 or READ and atomics
	 * never complete (rxe): the client's READ/atomic depth, capped by ours. */
	memset(&p, 0, sizeof(p));
	p.responder_resources = cp->initiator_depth ? cp->initiator_depth : 1;
	if (p.responder_resources > t->attr.max_qp_rd_atom)
		p.responder_resources = (uint8_t)t->attr.max_qp_rd_atom;
	p.initiator_depth = 1;
	p.rnr_retry_count = 7;
	if (rdma_accept(id, &p)) {
		vlog("rdma_accept: %m");
		rdma_reject(id, NULL, 0);
		conn_free(sc); /* destroys the id too */
		return;
	}
	id->context = sc;
	sc->next = t->conns;
	if (t->conns)
		t->conns->prev = sc;
	t->conns = sc;
	t->nconns++;
	/* on_accept now, not at ESTABLISHED: the QP is RTS after rdma_accept, and
	 * the client's first SEND may complete before our ESTABLISHED event. */
	if (t->cbs.on_accept)
		t->cbs.on_accept(t->cbs.arg, sc);
}

void sv_cm_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct cf_tserver *t = w->data;
	struct rdma_cm_event *ev;

	while (rdma_get_cm_event(t->ech, &ev) == 0) {
		enum rdma_cm_event_type type = ev->event;
		struct rdma_cm_id *id = ev->id;
		struct rdma_conn_param cp = ev->param.conn;
		struct cf_sconn *sc = id->context;

		rdma_ack_cm_event(ev);
		switch (type) {
		case RDMA_CM_EVENT_CONNECT_REQUEST:
			on_connect_request(t, id, &cp);
			break;
		case RDMA_CM_EVENT_ESTABLISHED:
			break;
		case RDMA_CM_EVENT_DISCONNECTED:
			/* the peer closed (or crashed: its kernel disconnects) */
			if (sc && sc->state == SC_LIVE)
				sv_conn_kill(sc, 0);
			break;
		case RDMA_CM_EVENT_REJECTED:
		case RDMA_CM_EVENT_CONNECT_ERROR:
		case RDMA_CM_EVENT_UNREACHABLE:
			if (sc && sc->state == SC_LIVE)
				sv_conn_kill(sc, -ECONNRESET);
			break;
		case RDMA_CM_EVENT_DEVICE_REMOVAL:
			vlog("device removed: closing every connection");
			while (t->conns)
				sv_conn_kill(t->conns, -ENODEV);
			break;
		default:
			break;
		}
	}
}

/* Deliver the ctrl messages of one connection's recv CQ. */
static void conn_recv(struct cf_tserver *t, struct cf_sconn *sc)
{
	struct ibv_wc wc;

	while (sc->state == SC_LIVE) {
		int n = ibv_poll_cq(sc->rcq, 1, &wc);
		if (n <= 0) {
			if (n < 0)
				sv_conn_kill(sc, -EIO);
			return;
		}
		if (wc.status != IBV_WC_SUCCESS) {
			/* a message longer than our buffer (LOC_LEN_ERR) or a QP error:
			 * the connection is dead either way */
			if (wc.status != IBV_WC_WR_FLUSH_ERR)
				vlog("%s: recv completion %s", sc->peer, ibv_wc_status_str(wc.status));
			sv_conn_kill(sc, cf_verbs_wc_errno(wc.status));
			return;
		}
		if (wc.opcode != IBV_WC_RECV || wc.wr_id >= SV_RECV_DEPTH || wc.byte_len > CF_CTRL_MAX) {
			sv_conn_kill(sc, CF_CORRUPT());
			return;
		}
		if (t->cbs.on_ctrl)
			t->cbs.on_ctrl(t->cbs.arg, sc, ++sc->next_id, recv_slot(sc, (unsigned)wc.wr_id), wc.byte_len);
		/* the callback may have closed or fenced sc (still allocated until the reaper runs) */
		if (sc->state == SC_LIVE && post_recv(sc, (unsigned)wc.wr_id) < 0)
			sv_conn_kill(sc, -ECONNRESET);
	}
}

void sv_cq_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct cf_tserver *t = w->data;
	struct ibv_cq *cq;
	void *ctx;

	while (ibv_get_cq_event(t->cch, &cq, &ctx) == 0) {
		struct cf_sconn *sc = ctx;
		ibv_ack_cq_events(cq, 1);
		if (sc->state != SC_LIVE)
			continue; /* fenced: drop whatever it had queued */
		/* re-arm before polling so a completion after the poll still fires */
		if (ibv_req_notify_cq(cq, 0)) {
			sv_conn_kill(sc, -EIO);
			continue;
		}
		conn_recv(t, sc);
	}
}

int sv_port(struct cf_tserver *t) { return t->port; }

int sv_send_ctrl(struct cf_sconn *sc, uint64_t id, const void *msg, size_t len)
{
	struct ibv_sge sge;
	struct ibv_send_wr wr = {0}, *bad;
	uint8_t *slot;
	int r;

	(void)id; /* verbs carries no request id: replies match requests by order */
	if (sc->state != SC_LIVE || sc->qp_dead)
		return -ECONNRESET;
	if (len == 0 || len > CF_CTRL_MAX)
		return -EMSGSIZE;
	r = send_room(sc);
	if (r < 0) {
		/* the peer takes no replies: close it rather than wait (or lose a reply and go on) */
		vlog("%s: %u replies not taken by the peer: closing", sc->peer, SV_SEND_DEPTH);
		sv_conn_kill(sc, r);
		return r;
	}
	slot = send_slot(sc, sc->send_seq);
	memcpy(slot, msg, len);
	sge.addr = (uintptr_t)slot;
	sge.length = (uint32_t)len;
	sge.lkey = sc->bufmr->lkey;
	wr.wr_id = sc->send_seq;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_SEND;
	/* Signaled: a slot is reused only after its completion is reaped (the
	 * control path is not hot; simple beats selective signaling here). */
	wr.send_flags = IBV_SEND_SIGNALED;
	r = cf_verbs_post_ret(ibv_post_send(sc->id->qp, &wr, &bad));
	if (r < 0)
		return r;
	sc->send_seq++;
	reap_send(sc); /* opportunistic: keep the ring drained */
	return 0;
}

int sv_grant(struct cf_sconn *sc, uint32_t region, uint32_t inst, uint64_t off, uint64_t len, uint32_t rights,
		   struct cf_grant *g)
{
	struct cf_tserver *t = sc->t;
	struct sgrant *sg;
	int acc = 0, r;

	if (sc->state != SC_LIVE || sc->qp_dead)
		return -ECONNRESET;
	if (len == 0 || off > t->size || len > t->size - off || !rights || (rights & ~7u))
		return -EINVAL;
	if (sc->ngrants >= SV_MAX_GRANTS)
		return -ENOSPC;
	if (rights & CF_R_READ)
		acc |= IBV_ACCESS_REMOTE_READ;
	if (rights & CF_R_WRITE)
		acc |= IBV_ACCESS_REMOTE_WRITE;
	if (rights & CF_R_ATOMIC)
		acc |= IBV_ACCESS_REMOTE_ATOMIC;
	sg = &sc->g[sc->ngrants];
	memset(sg, 0, sizeof(*sg));
	if (t->use_mw) {
		struct ibv_send_wr wr = {0};
		sg->mw = ibv_alloc_mw(sc->pd, IBV_MW_TYPE_2);
		if (!sg->mw)
			return cf_verbs_neg_errno();
		/* type 2: the bind is a WR on this connection's QP, so the window
		 * (and its rkey) is usable from this QP only */
		sg->rkey = ibv_inc_rkey(sg->mw->rkey);
		wr.opcode = IBV_WR_BIND_MW;
		wr.bind_mw.mw = sg->mw;
		wr.bind_mw.rkey = sg->rkey;
		wr.bind_mw.bind_info.mr = t->cmr;
		wr.bind_mw.bind_info.addr = (uintptr_t)(t->image + off);
		wr.bind_mw.bind_info.length = len;
		wr.bind_mw.bind_info.mw_access_flags = (unsigned)acc;
		r = post_sync(sc, &wr);
		if (r < 0) {
			grant_release(sg);
			return r;
		}
	} else {
		sg->mr = ibv_reg_mr(sc->pd, t->image + off, len, IBV_ACCESS_LOCAL_WRITE | acc);
		if (!sg->mr)
			return cf_verbs_neg_errno();
		sg->rkey = sg->mr->rkey;
	}
	sc->ngrants++;
	memset(g, 0, sizeof(*g));
	g->region = region;
	g->inst = inst;
	g->image_off = off;
	g->addr = (uintptr_t)(t->image + off);
	g->len = len;
	g->rkey = sg->rkey;
	g->rights = rights;
	return 0;
}

int sv_revoke(struct cf_sconn *sc, uint32_t rkey)
{
	unsigned i;
	int r;

	if (sc->state != SC_LIVE)
		return 0; /* already torn down: nothing of it is valid */
	for (i = 0; i < sc->ngrants; i++)
		if (sc->g[i].rkey == rkey)
			break;
	if (i == sc->ngrants)
		return -ENOENT;
	r = grant_invalidate(sc, &sc->g[i]);
	sc->g[i] = sc->g[--sc->ngrants];
	return r;
}

int sv_fence(struct cf_sconn *sc)
{
	/* conn_kill runs the barrier (conn_teardown_qp) before returning. */
	if (sc->state == SC_LIVE)
		sv_conn_kill(sc, 0);
	return 0;
}

/*
 * Graceful close: queued replies (an ERROR message) go out first, but their
 * completions are the peer's to give: never waited for in the loop. The
 * linger timer looks every millisecond, for at most SV_CLOSE_LINGER_NS.
 */
static void linger_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct cf_sconn *sc = w->data;

	if (sc->state != SC_LIVE)
		return;
	if (sc->qp_dead || send_idle(sc) || cf_mono_ns() > sc->linger_end_ns)
		sv_conn_kill(sc, 0); /* stops this timer */
}

void sv_close(struct cf_sconn *sc)
{
	if (sc->state != SC_LIVE || ev_is_active(&sc->linger_w))
		return;
	if (sc->qp_dead || send_idle(sc)) {
		sv_conn_kill(sc, 0);
		return;
	}
	sc->linger_end_ns = cf_mono_ns() + SV_CLOSE_LINGER_NS;
	ev_timer_start(sc->t->loop, &sc->linger_w);
}

void sv_set_data(struct cf_sconn *sc, void *data) { sc->data = data; }
void *sv_get_data(struct cf_sconn *sc) { return sc->data; }
const char *sv_peer(struct cf_sconn *sc) { return sc->peer; }

/* keep the state names referenced for debugging builds */
const char *cf_verbs_sc_state_str(const struct cf_sconn *sc);
const char *cf_verbs_sc_state_str(const struct cf_sconn *sc) { return sc_state_str(sc->state); }
