/* SPDX-License-Identifier: MIT */
/*
 * cf_tcp_server.c - the tcp transport, server side (struct cf_server_ops): listening,
 * reading and executing frames (the output side and a connection's end:
 * cf_tcp_server_out.c, which never calls back into this file).
 *
 * cfserver executes each one-sided request itself, in its single loop thread,
 * on the same image the verbs backend would register. One request at a time,
 * so every READ/WRITE/CAS/FAA is linearizable against all others and against
 * the server's own local_cas.
 *
 * Per connection: a read buffer parsed into frames (cf_wire.h), executed in
 * arrival order, answered in the same order into an output buffer. The fenced
 * flag is checked before EVERY frame, and fence() drops whatever input is
 * still queued: when fence() returns no request of that connection executes
 * any more (the barrier M1, docs/design.md §0).
 *
 * Durability (--nvram) is not this backend's: an answer means the request
 * executed and is visible at the CF, as a verbs completion does. A client
 * that needs bytes durable asks with a PERSIST control request on the same
 * connection (cf_persist_req.c: grouped with every other PERSIST and
 * control-path write of the loop iteration). It used to hold every answer
 * after a durable WRITE until the next group commit, which made each lock CAS
 * and READ behind an UPDATE wait for a device flush (docs/design.md,
 * "Durability": why that went).
 *
 * on_close is never called from inside another callback of the core: closed
 * and fenced connections are reaped from an ev_prepare watcher.
 *
 * Frame integrity (cf_auth.h): once the core has verified the AUTH it calls
 * set_frame_keys; from then on every frame appended gets its MAC as it is
 * appended (the output is one ordered stream, so append order is send order
 * and the sequence numbers match), and every frame read is checked before it
 * executes: a frame without a MAC or with a wrong one closes the connection,
 * and nothing of it or after it executes.
 */
#include "cf_tcp_server_int.h"

/* ts_kick's idle watcher (cf_tcp_server_out.c): one poll without blocking, then stop */
static void kick_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	ev_idle_stop(loop, w);
}

static void reaper_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct cf_tserver *t = w->data;
	struct cf_sconn *c, *next;

	/*
	 * Output first: a failure processing that fenced these connections
	 * queued its events to every other system (written by their write
	 * watchers, after this prepare phase); the closes below take 15-60 us
	 * each over loopback and must not hold them back.
	 */
	for (c = t->live; c; c = next) {
		next = c->next; /* a failed send moves c to the dead list */
		if (c->out_off < c->out_len)
			ts_conn_flush(c);
	}
	/* on_close may fence further connections: loop until nothing is left */
	while ((c = t->dead)) {
		list_del(&t->dead, c);
		t->nconns--;
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		if (t->cbs.on_close)
			t->cbs.on_close(t->cbs.arg, c, c->dead_err);
		cf_frame_mac_wipe(&c->tx);
		cf_frame_mac_wipe(&c->rx);
		free(c->in);
		free(c->out);
		free(c);
	}
	ev_prepare_stop(loop, w);
}
/* ---------------- one-sided execution ---------------- */

static int grant_check(struct cf_sconn *c, uint32_t rkey, uint64_t addr, uint64_t len, uint32_t right)
{
	const struct tgrant *g = NULL;

	for (uint32_t i = 0; i < c->ngrants; i++) {
		if (c->grants[i].rkey == rkey) {
			g = &c->grants[i];
			break;
		}
	}
	if (!g || !(g->rights & right))
		return -EACCES;
	if (len == 0)
		return -EINVAL;
	if (len > CF_FRAME_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (addr < g->off || addr - g->off > g->len || len > g->len - (addr - g->off))
		return -ERANGE;
	return 0;
}

static int exec_frame(struct cf_sconn *c, const struct cf_frame_hdr *h, const uint8_t *body)
{
	struct cf_tserver *t = c->t;
	struct cf_req_rw rw;
	struct cf_req_atomic at;
	uint64_t *word, old;
	size_t blen = h->len - sizeof(*h);
	int r;

	switch (h->op) {
	case CF_OP_READ:
		memcpy(&rw, body, sizeof(rw));
		r = grant_check(c, rw.rkey, rw.addr, rw.len, CF_R_READ);
		if (r < 0) {
			ts_put_resp(c, h->id, r, 0, NULL, 0);
			return 0;
		}
		ts_put_resp(c, h->id, 0, 0, t->image + rw.addr, rw.len);
		return 0;
	case CF_OP_WRITE:
		memcpy(&rw, body, sizeof(rw));
		if (rw.len != blen - sizeof(rw))
			return CF_CORRUPT(); /* the frame and its request disagree on the length */
		r = grant_check(c, rw.rkey, rw.addr, rw.len, CF_R_WRITE);
		if (r == 0) {
			memcpy(t->image + rw.addr, body + sizeof(rw), rw.len);
		}
		/* an unsignaled WRITE is still answered when it fails (as a verbs error completion) */
		if (r < 0 || !(h->flags & CF_FF_NO_RESP))
			ts_put_resp(c, h->id, r, 0, NULL, 0);
		return 0;
	case CF_OP_CAS:
	case CF_OP_FAA:
		memcpy(&at, body, sizeof(at));
		r = grant_check(c, at.rkey, at.addr, 8, CF_R_ATOMIC);
		if (r == 0 && at.addr % 8)
			r = -EINVAL;
		if (r < 0) {
			ts_put_resp(c, h->id, r, 0, NULL, 0);
			return 0;
		}
		word = (uint64_t *)(t->image + at.addr);
		if (h->op == CF_OP_CAS) {
			old = at.compare;
			__atomic_compare_exchange_n(word, &old, at.swap, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		} else {
			old = __atomic_fetch_add(word, at.compare, __ATOMIC_SEQ_CST);
		}
		ts_put_resp(c, h->id, 0, old, NULL, 0);
		return 0;
	case CF_OP_CTRL:
		if (t->cbs.on_ctrl)
			t->cbs.on_ctrl(t->cbs.arg, c, h->id, body, blen);
		return 0;
	default:
		return CF_CORRUPT(); /* RESP from a client */
	}
}

/* Execute every whole frame in the read buffer, one at a time. */
static void process_input(struct cf_sconn *c)
{
	struct cf_frame_hdr h;
	size_t pos = 0, flen;
	int r;

	/* the fence check is per frame: a fence from any callback stops the next frame */
	while (!c->fenced && !c->closing && !c->dead && c->in_len - pos >= sizeof(h)) {
		memcpy(&h, c->in + pos, sizeof(h));
		r = cf_frame_check(&h);
		if (r < 0) {
			cf_slog_warn("tcp %s: malformed frame (len %u op %u flags %#x, %s): closing this connection",
				 c->peer, h.len, h.op, h.flags, cf_corrupt_where());
			ts_conn_dead(c, r);
			return;
		}
		if (c->in_len - pos < h.len)
			break;
		if (ts_out_pending(c) > OUT_HIGH) {
			/* back-pressure: stop reading until the peer takes its replies */
			c->paused = 1;
			ev_io_stop(c->t->loop, &c->rio);
			break;
		}
		flen = h.len; /* what the frame takes in the stream, tag included */
		if (!!(h.flags & CF_FF_MAC) != c->macs) {
			cf_slog_warn("conn %s: frame %s a MAC %s the handshake: closing", c->peer,
				     c->macs ? "without" : "with", c->macs ? "after" : "before");
			ts_conn_dead(c, -EBADMSG);
			return;
		}
		if (c->macs) {
			if (cf_frame_open(&c->rx, c->in + pos, h.len) < 0) {
				cf_slog_warn("conn %s: frame MAC refused (frame %llu of the connection, op %u, %u bytes): "
					     "closing", c->peer, (unsigned long long)c->rx.seq, h.op, h.len);
				ts_conn_dead(c, -EBADMSG);
				return;
			}
			h.len -= CF_FRAME_TAG_LEN; /* the request ends where its tag begins */
			h.flags &= (uint16_t)~CF_FF_MAC;
		}
		r = exec_frame(c, &h, c->in + pos + sizeof(h));
		if (r < 0) {
			cf_slog_warn("tcp %s: malformed %s frame (%s): closing this connection", c->peer,
				 h.op == CF_OP_WRITE ? "WRITE" : "RESP", cf_corrupt_where());
			ts_conn_dead(c, r);
			return;
		}
		pos += flen;
	}
	if (c->fenced || c->dead || c->closing) {
		c->in_len = 0; /* fence or close: queued requests are dropped */
		return;
	}
	if (pos) {
		memmove(c->in, c->in + pos, c->in_len - pos);
		c->in_len -= pos;
	}
}

void ts_rio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct cf_sconn *c = w->data;
	ssize_t n;
	int eof = 0;

	if (c->closing) {
		/* draining a gracefully closed peer: discard until EOF */
		uint8_t sink[4096];
		n = recv(c->fd, sink, sizeof(sink), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			ts_conn_dead(c, 0);
		return;
	}
	/*
	 * A full buffer (a paused reader fed again before it executed anything)
	 * reads nothing: a recv of 0 bytes returns 0, which is not the peer's EOF.
	 */
	n = c->in_len < IN_CAP ? recv(c->fd, c->in + c->in_len, IN_CAP - c->in_len, 0) : (errno = EAGAIN, -1);
	if (n == 0) {
		eof = 1;
	} else if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			ts_conn_dead(c, -errno);
			return;
		}
	} else {
		c->in_len += (size_t)n;
	}
	process_input(c);
	if (!c->dead)
		ts_conn_flush(c);
	if (eof && !c->dead) {
		/*
		 * Requests that arrived before the close have executed and their
		 * answers went out as far as the socket took them; the rest goes
		 * with the connection (clients say GOODBYE, which closes gracefully,
		 * rather than half-close with answers outstanding).
		 */
		ts_conn_dead(c, c->in_len ? -EPIPE : 0);
	}
}

static void linger_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	ts_conn_dead(w->data, 0);
}

static void lio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct cf_tserver *t = w->data;
	struct sockaddr_storage ss;
	socklen_t sl;
	char host[64], serv[16];
	struct cf_sconn *c;
	int fd, one = 1;

	for (;;) {
		sl = sizeof(ss);
		fd = accept4(t->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* the listener stays readable: pause it, or the loop spins */
				cf_slog_warn("tcp: accept: %s: not accepting for 100 ms", strerror(errno));
				ev_io_stop(loop, &t->lio);
				ev_timer_set(&t->accept_retry, 0.1, 0.);
				ev_timer_start(loop, &t->accept_retry);
			} else if (errno != EAGAIN && errno != EWOULDBLOCK) {
				cf_slog_warn("tcp: accept: %s", strerror(errno));
			}
			return;
		}
		if (t->nconns >= CONNS_HARD) {
			cf_slog_warn("tcp: %u connections open, refusing another", t->nconns);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c || !(c->in = malloc(IN_CAP)) || !(c->out = malloc(OUT_INIT))) {
			if (c)
				free(c->in);
			free(c);
			close(fd);
			cf_slog_err("tcp: out of memory accepting a connection");
			continue;
		}
		/*
		 * Resident now: a page fault costs 10 us on a slow VM, and the first
		 * large answer (a recovery's 64 KiB window of a failed log) would
		 * meet 16 of them in the middle of a failover.
		 */
		c->out_cap = OUT_INIT;
		memset(c->out, 0, OUT_INIT);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->t = t;
		c->fd = fd;
		if (getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv, sizeof(serv),
				NI_NUMERICHOST | NI_NUMERICSERV) == 0)
			snprintf(c->peer, sizeof(c->peer), "%s:%s", host, serv);
		else
			snprintf(c->peer, sizeof(c->peer), "?");
		ev_io_init(&c->rio, ts_rio_cb, fd, EV_READ);
		ev_io_init(&c->wio, ts_wio_cb, fd, EV_WRITE);
		ev_timer_init(&c->linger, linger_cb, CLOSE_LINGER, 0.);
		c->rio.data = c->wio.data = c->linger.data = c;
		list_add(&t->live, c);
		t->nconns++;
		ev_io_start(loop, &c->rio);
		if (t->cbs.on_accept)
			t->cbs.on_accept(t->cbs.arg, c);
	}
}

static void accept_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct cf_tserver *t = w->data;

	ev_io_start(loop, &t->lio);
}

/* ---------------- ops ---------------- */

static int t_listen(struct ev_loop *loop, const char *addr, void *image, uint64_t size,
		    const struct cf_server_cbs *cbs, struct cf_tserver **out)
{
	struct cf_tserver *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->loop = loop;
	t->image = image;
	t->size = size;
	t->cbs = *cbs;
	t->next_rkey = 1;
	t->lfd = cf_addr_listen(addr, SOCK_NONBLOCK | SOCK_CLOEXEC, 128, &t->port);
	if (t->lfd < 0) {
		int r = t->lfd;
		free(t);
		return r;
	}
	ev_io_init(&t->lio, lio_cb, t->lfd, EV_READ);
	t->lio.data = t;
	ev_io_start(loop, &t->lio);
	ev_timer_init(&t->accept_retry, accept_retry_cb, 0.1, 0.);
	t->accept_retry.data = t;
	ev_prepare_init(&t->reaper, reaper_cb);
	t->reaper.data = t;
	ev_idle_init(&t->kick, kick_cb);
	ev_set_priority(&t->kick, EV_MAXPRI);
	*out = t;
	return 0;
}

static void t_destroy(struct cf_tserver *t)
{
	if (!t)
		return;
	ev_io_stop(t->loop, &t->lio);
	ev_timer_stop(t->loop, &t->accept_retry);
	if (t->lfd >= 0)
		close(t->lfd);
	while (t->live)
		ts_conn_dead(t->live, -ESHUTDOWN);
	reaper_cb(t->loop, &t->reaper, 0);
	ev_idle_stop(t->loop, &t->kick);
	free(t);
}

static int t_port(struct cf_tserver *t)
{
	return t->port;
}

static int t_send_ctrl(struct cf_sconn *c, uint64_t id, const void *msg, size_t len)
{
	int r;

	if (len > CF_CTRL_MAX)
		return -EMSGSIZE;
	r = ts_conn_put(c, CF_OP_CTRL, id, msg, len, NULL, 0);
	if (r < 0)
		return r;
	/* written at the end of the current batch, or by the write watcher */
	ev_io_start(c->t->loop, &c->wio);
	return 0;
}

static int t_grant(struct cf_sconn *c, uint32_t region, uint32_t inst, uint64_t off, uint64_t len,
		   uint32_t rights, struct cf_grant *g)
{
	struct cf_tserver *t = c->t;
	struct tgrant *tg;

	if (c->dead || c->fenced)
		return -ENOTCONN;
	if (off > t->size || len > t->size - off || !len)
		return -ERANGE;
	if (c->ngrants >= GRANTS_MAX)
		return -ENOSPC;
	tg = &c->grants[c->ngrants++];
	tg->off = off;
	tg->len = len;
	tg->rights = rights;
	tg->rkey = t->next_rkey++; /* never reused while the server runs */
	if (!t->next_rkey)
		t->next_rkey = 1;
	memset(g, 0, sizeof(*g));
	g->region = region;
	g->inst = inst;
	g->image_off = off;
	g->addr = off; /* tcp addresses are image offsets */
	g->len = len;
	g->rkey = tg->rkey;
	g->rights = rights;
	return 0;
}

static int t_revoke(struct cf_sconn *c, uint32_t rkey)
{
	for (uint32_t i = 0; i < c->ngrants; i++) {
		if (c->grants[i].rkey == rkey) {
			c->grants[i] = c->grants[--c->ngrants];
			return 0;
		}
	}
	return -ENOENT;
}

static int t_fence(struct cf_sconn *c)
{
	/* barrier: the loop is single-threaded, so from here no frame of c executes */
	c->fenced = 1;
	c->ngrants = 0;
	c->in_len = 0;
	ts_conn_dead(c, -ECANCELED);
	return 0;
}

static void t_close(struct cf_sconn *c)
{
	if (c->dead || c->closing)
		return;
	c->closing = 1;
	c->ngrants = 0;
	c->in_len = 0;
	c->paused = 0;
	ev_io_start(c->t->loop, &c->rio); /* to see the peer's EOF */
	ev_timer_start(c->t->loop, &c->linger);
	ts_conn_flush(c);
}

static int t_local_cas(struct cf_tserver *t, uint64_t off, uint64_t compare, uint64_t swap, uint64_t *old)
{
	uint64_t expect = compare;

	if (off % 8 || off > t->size - 8)
		return -EINVAL;
	/* the loop thread executes client atomics too: this is linearizable with them */
	__atomic_compare_exchange_n((uint64_t *)(t->image + off), &expect, swap, 0, __ATOMIC_SEQ_CST,
				    __ATOMIC_SEQ_CST);
	*old = expect;
	return 0;
}

static void t_set_data(struct cf_sconn *c, void *data)
{
	c->data = data;
}

static void *t_get_data(struct cf_sconn *c)
{
	return c->data;
}

static const char *t_peer(struct cf_sconn *c)
{
	return c->peer;
}

static int t_set_frame_keys(struct cf_sconn *c, const uint8_t tx[CF_KEY_LEN], const uint8_t rx[CF_KEY_LEN])
{
	if (c->dead || c->fenced)
		return -ENOTCONN;
	if (c->macs)
		return -EALREADY;
	cf_frame_mac_init(&c->tx, tx);
	cf_frame_mac_init(&c->rx, rx);
	c->macs = 1;
	return 0;
}

const struct cf_server_ops cf_tcp_server = {
	.name = "tcp",
	.listen = t_listen,
	.destroy = t_destroy,
	.port = t_port,
	.send_ctrl = t_send_ctrl,
	.grant = t_grant,
	.revoke = t_revoke,
	.fence = t_fence,
	.close = t_close,
	.local_cas = t_local_cas,
	.set_data = t_set_data,
	.get_data = t_get_data,
	.peer = t_peer,
	.set_frame_keys = t_set_frame_keys,
};
