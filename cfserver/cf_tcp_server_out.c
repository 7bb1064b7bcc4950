/* SPDX-License-Identifier: MIT */
/*
 * cf_tcp_server_out.c - the tcp server's output side and the end of a
 * connection (cf_tcp_server_int.h): queueing sealed frames, writing them, and
 * closing a connection for the reaper. cf_tcp_server.c calls into it, never
 * the other way.
 */
#include "cf_tcp_server_int.h"

/* ---------------- the end of a connection ---------------- */

static void conn_stop_io(struct cf_sconn *c)
{
	ev_io_stop(c->t->loop, &c->rio);
	ev_io_stop(c->t->loop, &c->wio);
	ev_timer_stop(c->t->loop, &c->linger);
}

/* The connection is finished: the reaper closes the socket and reports it. */
void ts_conn_dead(struct cf_sconn *c, int err)
{
	struct cf_tserver *t = c->t;

	if (c->dead)
		return;
	c->dead = 1;
	c->dead_err = err;
	c->fenced = 1;
	c->in_len = 0;
	c->ngrants = 0;
	conn_stop_io(c);
	/*
	 * The socket is closed by the reaper, not here: with its watchers
	 * stopped nothing of c is read or executed any more, which is the
	 * barrier. A close(2) of a loopback socket delivers the FIN (or RST) to
	 * the peer inline, 15-60 us each; failure processing fences every
	 * connection of the incarnation before it publishes the failure, and
	 * those closes held back the events by 50-250 us.
	 */
	list_del(&t->live, c);
	list_add(&t->dead, c);
	ev_prepare_start(t->loop, &t->reaper);
	ts_kick(t);
}

/*
 * Called from the prepare phase (a PERSIST answer sent after the group commit,
 * cf_persist's callbacks), a started reaper or a fed read event would wait for
 * the next unrelated event: an idle watcher makes the loop poll without
 * blocking once, so they run now.
 */
void ts_kick(struct cf_tserver *t)
{
	ev_idle_start(t->loop, &t->kick);
}


/* ---------------- output ---------------- */

/* The sent bytes out[0, out_off) are gone (moved away or all sent): rebase the offsets. */
static void out_shift(struct cf_sconn *c)
{
	c->out_len -= c->out_off;
	c->out_off = 0;
}

static int out_reserve(struct cf_sconn *c, size_t n)
{
	size_t need, cap;
	uint8_t *p;

	if (c->out_off && c->out_off == c->out_len)
		out_shift(c);
	need = c->out_len + n;
	if (need <= c->out_cap)
		return 0;
	if (c->out_off) { /* compact before growing */
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		out_shift(c);
		need = c->out_len + n;
		if (need <= c->out_cap)
			return 0;
	}
	if (need > OUT_HARD)
		return -ENOBUFS;
	cap = c->out_cap ? c->out_cap : OUT_INIT;
	while (cap < need)
		cap *= 2;
	p = realloc(c->out, cap);
	if (!p)
		return -ENOMEM;
	c->out = p;
	c->out_cap = cap;
	return 0;
}

size_t ts_out_pending(const struct cf_sconn *c)
{
	return c->out_len - c->out_off;
}

void ts_wio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	ts_conn_flush(w->data);
}


/* Send what the socket takes; the rest when it is writable again. */
void ts_conn_flush(struct cf_sconn *c)
{
	ssize_t n;

	while (!c->dead && c->out_off < c->out_len) {
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				ev_io_start(c->t->loop, &c->wio);
				return;
			}
			ts_conn_dead(c, -errno);
			return;
		}
		c->out_off += (size_t)n;
	}
	if (c->dead)
		return;
	ev_io_stop(c->t->loop, &c->wio);
	out_shift(c);
	if (c->closing) {
		/* replies are out: half-close and wait (bounded) for the peer's EOF */
		shutdown(c->fd, SHUT_WR);
		return;
	}
	if (c->paused) {
		c->paused = 0;
		ev_io_start(c->t->loop, &c->rio);
		ev_feed_event(c->t->loop, &c->rio, EV_READ); /* execute what is already buffered */
		ts_kick(c->t);
	}
}

/* Append one frame (header + up to two parts). Failure closes the connection. */
int ts_conn_put(struct cf_sconn *c, uint16_t op, uint64_t id, const void *a, size_t alen, const void *b,
		    size_t blen)
{
	struct cf_frame_hdr h = {.len = (uint32_t)(sizeof(h) + alen + blen), .op = op, .flags = 0, .id = id};
	size_t start;
	int r;

	if (c->dead || c->fenced)
		return -ENOTCONN;
	if (c->macs) {
		h.len += CF_FRAME_TAG_LEN;
		h.flags |= CF_FF_MAC;
	}
	r = out_reserve(c, h.len);
	if (r < 0) {
		cf_slog_warn("tcp %s: %zu bytes of replies not read by the peer: closing", c->peer, ts_out_pending(c));
		ts_conn_dead(c, r);
		return r;
	}
	start = c->out_len; /* after out_reserve: it may have compacted the buffer */
	memcpy(c->out + c->out_len, &h, sizeof(h));
	c->out_len += sizeof(h);
	if (alen)
		memcpy(c->out + c->out_len, a, alen);
	c->out_len += alen;
	if (blen)
		memcpy(c->out + c->out_len, b, blen);
	c->out_len += blen;
	if (c->macs) {
		c->out_len += CF_FRAME_TAG_LEN;
		r = cf_frame_seal(&c->tx, c->out + start, h.len);
		if (r < 0) {
			cf_slog_warn("conn %s: frame sequence exhausted: closing", c->peer);
			ts_conn_dead(c, r);
			return r;
		}
	}
	return 0;
}

void ts_put_resp(struct cf_sconn *c, uint64_t id, int status, uint64_t value, const void *data, size_t len)
{
	struct cf_resp r = {.status = status, .pad = 0, .value = value};

	ts_conn_put(c, CF_OP_RESP, id, &r, sizeof(r), data, len);
}
