/* SPDX-License-Identifier: MIT */
/*
 * cf_tcp_client.c - the tcp transport, client side (struct cf_client_ops).
 *
 * Posts append a frame to one output buffer; poll() pushes the whole buffer
 * out with one send() (doorbell batching: a WRITE and the CAS behind it leave
 * in one segment) and reaps responses. The server answers in request order,
 * so outstanding ops sit in a FIFO ring: a response for id X retires every
 * unsignaled WRITE before X (they succeeded, or the server would have
 * answered them with an error) and completes X. Buffers are allocated at
 * connect; the hot path does not malloc.
 *
 * Control frames (replies and events, id 0) are queued for recv_ctrl;
 * responses read by recv_ctrl are turned into completions for poll().
 * One connection is used by one thread.
 *
 * Frame integrity (cf_auth.h): once the session has sent its AUTH it sets the
 * frame keys; every frame posted from then on gets its MAC as it is appended
 * to the output (append order is send order), and every frame read is checked
 * before it is parsed. A frame without a MAC or with a wrong one kills the
 * connection (-EBADMSG): nothing of it or after it is believed.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cf_transport.h"
#include "cf_addr.h"
#include "cf_auth.h"
#include "cf_util.h"

#define RING 4096u          /* outstanding ops + unreaped completions */
#define UNSIG_RUN 256u      /* every so many unsignaled WRITEs, one is answered (hidden) */
#define IN_CAP (4u * CF_FRAME_MAX)
#define OUT_INIT (256u * 1024u)
#define CTRLQ_MAX 1024u
#define FLUSH_TIMEOUT_MS 10000
/*
 * Busy-poll this long before sleeping in poll() when an answer is due:
 * env CF_TCP_SPIN_US (default 0 = off). A loopback round trip is ~15 us, less
 * than a sleep/wake-up pair, so spinning helps when client and server have
 * cores of their own; on 2 shared cores it costs more than it saves.
 */
#define SPIN_US_MAX 1000u

enum { P_SIGNALED = 0x1, P_HIDDEN = 0x2 };

struct pend {
	uint64_t id, wr_id;
	void *local;
	uint32_t len;
	uint16_t op;
	uint16_t flags;
};

struct ctrlmsg {
	struct ctrlmsg *next;
	uint64_t id; /* 0: an event */
	size_t len;
	uint8_t data[];
};

struct cf_conn {
	int fd;
	int dead; /* -errno once broken */
	uint64_t next_id;
	uint8_t *out;
	size_t out_len, out_cap;
	uint8_t *in;
	size_t in_off, in_len;
	struct pend ring[RING];
	uint32_t ring_head, ring_len;
	struct cf_wc cq[RING];
	uint32_t cq_head, cq_len;
	uint32_t unsig_run;
	uint64_t spin_ns;
	struct ctrlmsg *cq_first, *cq_last;
	uint32_t nctrl;
	int macs; /* frame keys set: every frame in and out has a MAC */
	struct cf_frame_mac tx, rx;
	int (*stop_fn)(void *arg); /* set_stop: asked while a post waits for room */
	void *stop_arg;
};

/* Between the waits of a post: the owner's reason to give up now (set_stop), 0: wait on. */
static int stop_reason(struct cf_conn *c)
{
	return c->stop_fn ? c->stop_fn(c->stop_arg) : 0;
}

static int elapsed_ms(uint64_t start_ns)
{
	return (int)((cf_mono_ns() - start_ns) / 1000000u);
}

static int remaining(int timeout_ms, uint64_t start_ns)
{
	int left;

	if (timeout_ms < 0)
		return -1;
	left = timeout_ms - elapsed_ms(start_ns);
	return left < 0 ? 0 : left;
}

static int set_dead(struct cf_conn *c, int err)
{
	if (!c->dead)
		c->dead = err ? err : -ECONNRESET;
	return c->dead;
}

/* ---------------- input ---------------- */

static void cq_push(struct cf_conn *c, uint64_t wr_id, int status, uint16_t op, uint64_t value)
{
	struct cf_wc *wc = &c->cq[(c->cq_head + c->cq_len) % RING];

	wc->wr_id = wr_id;
	wc->status = status;
	wc->op = op;
	wc->value = value;
	c->cq_len++;
}

static int on_resp(struct cf_conn *c, const struct cf_frame_hdr *h, const uint8_t *body)
{
	struct cf_resp r;
	size_t plen = h->len - sizeof(*h) - sizeof(r);
	struct pend *p;

	memcpy(&r, body, sizeof(r));
	for (;;) {
		if (!c->ring_len)
			return CF_CORRUPT(); /* a response nobody asked for */
		p = &c->ring[c->ring_head];
		if (p->id == h->id)
			break;
		if (p->flags & P_SIGNALED)
			return CF_CORRUPT(); /* a signaled op skipped: responses out of order */
		/* an unsignaled WRITE before this response: it executed, successfully */
		c->ring_head = (c->ring_head + 1) % RING;
		c->ring_len--;
	}
	if (p->op == CF_OP_READ && r.status == 0) {
		if (plen != p->len)
			return CF_CORRUPT();
		memcpy(p->local, body + sizeof(r), plen);
	} else if (plen) {
		return CF_CORRUPT();
	}
	/* errors are always reported, as verbs reports error completions of unsignaled WRs */
	if (((p->flags & P_SIGNALED) && !(p->flags & P_HIDDEN)) || r.status)
		cq_push(c, p->wr_id, r.status, p->op, r.value);
	c->ring_head = (c->ring_head + 1) % RING;
	c->ring_len--;
	return 0;
}

static int on_ctrl_frame(struct cf_conn *c, const struct cf_frame_hdr *h, const uint8_t *body)
{
	size_t len = h->len - sizeof(*h);
	struct ctrlmsg *m;

	if (c->nctrl >= CTRLQ_MAX) {
		/* nobody reads events: the oldest goes (the instance table is the fallback) */
		struct ctrlmsg **pp = &c->cq_first, *prev = NULL;
		while (*pp && (*pp)->id != 0)
			prev = *pp, pp = &(*pp)->next;
		if (!*pp)
			return -ENOBUFS; /* only replies queued: the peer misbehaves */
		m = *pp;
		*pp = m->next;
		if (c->cq_last == m)
			c->cq_last = prev;
		free(m);
		c->nctrl--;
	}
	m = malloc(sizeof(*m) + len); /* control messages are rare: not the hot path */
	if (!m)
		return -ENOMEM;
	m->next = NULL;
	m->id = h->id;
	m->len = len;
	memcpy(m->data, body, len);
	if (c->cq_last)
		c->cq_last->next = m;
	else
		c->cq_first = m;
	c->cq_last = m;
	c->nctrl++;
	return 0;
}

/* A control frame carrying an ERROR message. */
static int is_error(const struct cf_frame_hdr *h, const uint8_t *body)
{
	struct cf_ctrl_hdr ch;

	if (h->op != CF_OP_CTRL)
		return 0;
	memcpy(&ch, body, sizeof(ch)); /* cf_frame_check: a CTRL body holds a ctrl header */
	return ch.type == CF_CTRL_ERROR;
}

static int parse_input(struct cf_conn *c)
{
	struct cf_frame_hdr h;
	uint32_t flen;
	int r;

	while (c->in_len - c->in_off >= sizeof(h)) {
		memcpy(&h, c->in + c->in_off, sizeof(h));
		if (cf_frame_check(&h) < 0 || (h.op != CF_OP_RESP && h.op != CF_OP_CTRL))
			return set_dead(c, -EPROTO);
		if (c->in_len - c->in_off < h.len)
			break;
		flen = h.len;
		if (c->macs && !(h.flags & CF_FF_MAC) && c->rx.seq == 0 && is_error(&h, c->in + c->in_off + sizeof(h))) {
			/* the CF refused our AUTH, so it has no keys: its ERROR is the last frame */
			r = on_ctrl_frame(c, &h, c->in + c->in_off + sizeof(h));
			c->in_off = c->in_len = 0;
			return set_dead(c, r < 0 ? r : -ECONNRESET);
		}
		if (!!(h.flags & CF_FF_MAC) != c->macs)
			return set_dead(c, c->macs ? -EBADMSG : -EPROTO);
		if (c->macs) {
			if (cf_frame_open(&c->rx, c->in + c->in_off, h.len) < 0)
				return set_dead(c, -EBADMSG);
			h.len -= CF_FRAME_TAG_LEN;
		}
		r = h.op == CF_OP_RESP ? on_resp(c, &h, c->in + c->in_off + sizeof(h))
				       : on_ctrl_frame(c, &h, c->in + c->in_off + sizeof(h));
		if (r < 0)
			return set_dead(c, r == -EBADMSG ? -EPROTO : r);
		c->in_off += flen;
	}
	if (c->in_off == c->in_len) {
		c->in_off = c->in_len = 0;
	} else if (c->in_off > IN_CAP / 2) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
	return 0;
}

/* One recv() (data must be there or it returns 0); parses what came. */
static int read_some(struct cf_conn *c)
{
	ssize_t n;

	if (c->in_len == IN_CAP) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
	n = recv(c->fd, c->in + c->in_len, IN_CAP - c->in_len, MSG_DONTWAIT);
	if (n == 0)
		return set_dead(c, -ECONNRESET);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : set_dead(c, -errno);
	c->in_len += (size_t)n;
	return parse_input(c);
}

/*
 * Wait up to timeout_ms for input, read it. 0 (maybe nothing came) or -errno.
 * Spin-then-sleep: a loopback round trip is ~10 us, less than the cost of
 * sleeping in poll() and being woken, so try non-blocking reads for a short
 * while first (only when there is an answer to wait for).
 */
static int wait_input(struct cf_conn *c, int timeout_ms)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	uint64_t spin_end;
	size_t before;
	int r;

	if (c->spin_ns && timeout_ms != 0 && c->ring_len) {
		spin_end = cf_mono_ns() + c->spin_ns;
		do {
			before = c->in_len;
			r = read_some(c);
			if (r < 0 || c->in_len != before || c->cq_len || c->cq_first)
				return r;
		} while (cf_mono_ns() < spin_end);
	}
	r = poll(&pfd, 1, timeout_ms);

	if (r < 0)
		return errno == EINTR ? 0 : set_dead(c, -errno);
	if (r == 0)
		return 0;
	return read_some(c);
}

/* ---------------- output ---------------- */

/* Send everything posted: one send() when the socket takes it all. */
static int flush(struct cf_conn *c)
{
	size_t off = 0;
	uint64_t t0 = 0;
	ssize_t n;
	int r;

	while (off < c->out_len) {
		n = send(c->fd, c->out + off, c->out_len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return set_dead(c, -errno);
		/* the socket is full: read responses meanwhile, so neither side stalls */
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN | POLLOUT};
		if (!t0)
			t0 = cf_mono_ns();
		if (elapsed_ms(t0) > FLUSH_TIMEOUT_MS)
			return set_dead(c, -ETIMEDOUT);
		if ((r = stop_reason(c)))
			return set_dead(c, r);
		r = poll(&pfd, 1, 20);
		if (r < 0 && errno != EINTR)
			return set_dead(c, -errno);
		if (r > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR))) {
			r = read_some(c);
			if (r < 0)
				return r;
		}
	}
	c->out_len = 0;
	return 0;
}

static int out_reserve(struct cf_conn *c, size_t n)
{
	uint8_t *p;
	size_t cap;

	if (c->out_len + n <= c->out_cap)
		return 0;
	if (c->out_len >= OUT_INIT) { /* plenty queued: push it out rather than grow */
		int r = flush(c);
		if (r < 0)
			return r;
		if (n <= c->out_cap)
			return 0;
	}
	cap = c->out_cap;
	while (cap < c->out_len + n)
		cap *= 2;
	p = realloc(c->out, cap);
	if (!p)
		return -ENOMEM;
	c->out = p;
	c->out_cap = cap;
	return 0;
}

static int post(struct cf_conn *c, uint16_t op, uint16_t fflags, const void *req, size_t reqlen,
		const void *data, uint32_t dlen, void *local, uint32_t llen, uint64_t wr_id, unsigned flags)
{
	struct cf_frame_hdr h = {.len = (uint32_t)(sizeof(h) + reqlen + dlen), .op = op, .flags = fflags};
	struct pend *p;
	int r;

	if (c->dead)
		return c->dead;
	if (c->macs) {
		h.len += CF_FRAME_TAG_LEN;
		h.flags |= CF_FF_MAC;
	}
	if (c->ring_len + c->cq_len >= RING) {
		/*
		 * Full. Unsignaled WRITEs retire once a later answer arrives:
		 * push everything out and take in answers (bounded). Completions
		 * the caller has not reaped stay: then -ENOBUFS.
		 */
		uint64_t t0 = cf_mono_ns();
		r = flush(c);
		if (r < 0)
			return r;
		while (c->ring_len + c->cq_len >= RING && c->ring_len && elapsed_ms(t0) < FLUSH_TIMEOUT_MS) {
			if ((r = stop_reason(c)))
				return set_dead(c, r);
			r = wait_input(c, 20);
			if (r < 0)
				return r;
		}
		if (c->ring_len + c->cq_len >= RING)
			return -ENOBUFS; /* reap completions first */
	}
	r = out_reserve(c, h.len);
	if (r < 0)
		return r;
	h.id = c->next_id++;
	p = &c->ring[(c->ring_head + c->ring_len) % RING];
	p->id = h.id;
	p->wr_id = wr_id;
	p->local = local;
	p->len = llen;
	p->op = op;
	p->flags = P_SIGNALED;
	if (op == CF_OP_WRITE && (flags & CF_POST_UNSIGNALED)) {
		if (++c->unsig_run >= UNSIG_RUN) {
			/* answered but not reported: lets the ring retire the WRITEs before it */
			p->flags = P_SIGNALED | P_HIDDEN;
			c->unsig_run = 0;
		} else {
			p->flags = 0;
			h.flags |= CF_FF_NO_RESP;
		}
	} else {
		c->unsig_run = 0;
	}
	c->ring_len++;
	memcpy(c->out + c->out_len, &h, sizeof(h));
	memcpy(c->out + c->out_len + sizeof(h), req, reqlen);
	if (dlen)
		memcpy(c->out + c->out_len + sizeof(h) + reqlen, data, dlen);
	if (c->macs && (r = cf_frame_seal(&c->tx, c->out + c->out_len, h.len)) < 0)
		return set_dead(c, r);
	c->out_len += h.len;
	return 0;
}

/* ---------------- ops ---------------- */

static void c_close(struct cf_conn *c)
{
	struct ctrlmsg *m;

	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	while ((m = c->cq_first)) {
		c->cq_first = m->next;
		free(m);
	}
	cf_frame_mac_wipe(&c->tx);
	cf_frame_mac_wipe(&c->rx);
	free(c->in);
	free(c->out);
	free(c);
}

static int c_connect(const char *addr, int timeout_ms, struct cf_conn **out)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char host[CF_ADDR_HOST_MAX], port[8];
	uint16_t pnum;
	struct cf_conn *c;
	struct pollfd pfd;
	socklen_t sl;
	int r, one = 1, err = 0;

	r = cf_addr_split(addr, host, sizeof(host), &pnum);
	if (r < 0)
		return r;
	snprintf(port, sizeof(port), "%u", (unsigned)pnum);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->next_id = 1;
	if (getenv("CF_TCP_SPIN_US")) {
		unsigned long us = strtoul(getenv("CF_TCP_SPIN_US"), NULL, 10);
		c->spin_ns = (us > SPIN_US_MAX ? SPIN_US_MAX : us) * 1000u;
	}
	c->in = malloc(IN_CAP);
	c->out = malloc(OUT_INIT);
	c->out_cap = OUT_INIT;
	if (!c->in || !c->out) {
		r = -ENOMEM;
		goto err_conn;
	}
	/*
	 * Resident now: a recovery's first large READ answer (a failed log's
	 * window) would otherwise meet a page fault per 4 KiB of the input
	 * buffer, 10 us each on a slow VM, in the middle of a failover.
	 */
	memset(c->in, 0, IN_CAP);
	r = getaddrinfo(host, port, &hints, &res);
	if (r) {
		r = r == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
		goto err_conn;
	}
	c->fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		r = -errno;
		goto err_res;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, res->ai_addr, res->ai_addrlen) < 0) {
		if (errno != EINPROGRESS) {
			r = -errno;
			goto err_res;
		}
		pfd.fd = c->fd;
		pfd.events = POLLOUT;
		r = poll(&pfd, 1, timeout_ms);
		if (r == 0) {
			r = -ETIMEDOUT;
			goto err_res;
		}
		if (r < 0) {
			r = -errno;
			goto err_res;
		}
		sl = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
		if (err) {
			r = -err;
			goto err_res;
		}
	}
	freeaddrinfo(res);
	*out = c;
	return 0;
err_res:
	freeaddrinfo(res);
err_conn:
	c_close(c);
	return r;
}

static int c_post_read(struct cf_conn *c, void *local, uint32_t len, uint64_t raddr, uint32_t rkey,
		       uint64_t wr_id, unsigned flags)
{
	struct cf_req_rw rq = {.addr = raddr, .rkey = rkey, .len = len};

	if (len > CF_FRAME_MAX_PAYLOAD)
		return -EMSGSIZE;
	return post(c, CF_OP_READ, 0, &rq, sizeof(rq), NULL, 0, local, len, wr_id, flags & ~CF_POST_UNSIGNALED);
}

static int c_post_write(struct cf_conn *c, const void *local, uint32_t len, uint64_t raddr, uint32_t rkey,
			uint64_t wr_id, unsigned flags)
{
	struct cf_req_rw rq = {.addr = raddr, .rkey = rkey, .len = len};

	if (len > CF_FRAME_MAX_PAYLOAD)
		return -EMSGSIZE;
	return post(c, CF_OP_WRITE, 0, &rq, sizeof(rq), local, len, NULL, 0, wr_id, flags);
}

static int c_post_cas(struct cf_conn *c, uint64_t raddr, uint32_t rkey, uint64_t compare, uint64_t swap,
		      uint64_t wr_id, unsigned flags)
{
	struct cf_req_atomic rq = {.addr = raddr, .rkey = rkey, .compare = compare, .swap = swap};

	return post(c, CF_OP_CAS, 0, &rq, sizeof(rq), NULL, 0, NULL, 0, wr_id, flags & ~CF_POST_UNSIGNALED);
}

static int c_post_faa(struct cf_conn *c, uint64_t raddr, uint32_t rkey, uint64_t add, uint64_t wr_id,
		      unsigned flags)
{
	struct cf_req_atomic rq = {.addr = raddr, .rkey = rkey, .compare = add};

	return post(c, CF_OP_FAA, 0, &rq, sizeof(rq), NULL, 0, NULL, 0, wr_id, flags & ~CF_POST_UNSIGNALED);
}

static int reap(struct cf_conn *c, struct cf_wc *wc, int max)
{
	int n = 0;

	while (n < max && c->cq_len) {
		wc[n++] = c->cq[c->cq_head];
		c->cq_head = (c->cq_head + 1) % RING;
		c->cq_len--;
	}
	return n;
}

static int c_poll(struct cf_conn *c, struct cf_wc *wc, int max, int timeout_ms)
{
	uint64_t t0;
	int r, n;

	if (c->dead)
		return c->dead;
	if (c->out_len) {
		r = flush(c);
		if (r < 0)
			return r;
	}
	n = reap(c, wc, max);
	if (n)
		return n;
	t0 = cf_mono_ns();
	for (;;) {
		/* nothing outstanding that will be answered: do not wait */
		if (!c->ring_len)
			return 0;
		r = wait_input(c, remaining(timeout_ms, t0));
		if (r < 0)
			return r;
		n = reap(c, wc, max);
		if (n)
			return n;
		if (timeout_ms >= 0 && remaining(timeout_ms, t0) == 0)
			return 0;
	}
}

static int c_send_ctrl(struct cf_conn *c, const void *msg, size_t len)
{
	struct cf_frame_hdr h = {.len = (uint32_t)(sizeof(h) + len), .op = CF_OP_CTRL, .flags = 0};
	int r;

	if (c->dead)
		return c->dead;
	if (len > CF_CTRL_MAX)
		return -EMSGSIZE;
	if (c->macs) {
		h.len += CF_FRAME_TAG_LEN;
		h.flags |= CF_FF_MAC;
	}
	r = out_reserve(c, h.len);
	if (r < 0)
		return r;
	h.id = c->next_id++;
	memcpy(c->out + c->out_len, &h, sizeof(h));
	memcpy(c->out + c->out_len + sizeof(h), msg, len);
	if (c->macs && (r = cf_frame_seal(&c->tx, c->out + c->out_len, h.len)) < 0)
		return set_dead(c, r);
	c->out_len += h.len;
	return flush(c);
}

static int c_recv_ctrl(struct cf_conn *c, void *buf, size_t cap, int timeout_ms)
{
	struct ctrlmsg *m;
	uint64_t t0 = cf_mono_ns();
	size_t len;
	int r;

	if (c->out_len) {
		r = flush(c);
		if (r < 0)
			return r;
	}
	while (!c->cq_first) {
		if (c->dead)
			return c->dead;
		if (timeout_ms >= 0 && remaining(timeout_ms, t0) == 0) {
			/* one last non-blocking look */
			r = wait_input(c, 0);
			if (r < 0)
				return r;
			if (!c->cq_first)
				return -ETIMEDOUT;
			break;
		}
		r = wait_input(c, remaining(timeout_ms, t0));
		if (r < 0)
			return r;
	}
	m = c->cq_first;
	if (m->len > cap)
		return -EMSGSIZE;
	c->cq_first = m->next;
	if (!c->cq_first)
		c->cq_last = NULL;
	c->nctrl--;
	len = m->len;
	memcpy(buf, m->data, len);
	free(m);
	return (int)len;
}

static int c_ctrl_fd(struct cf_conn *c)
{
	return c->fd;
}

static int c_ctrl_pending(struct cf_conn *c)
{
	return c->cq_first != NULL;
}

static int c_set_frame_keys(struct cf_conn *c, const uint8_t tx[CF_KEY_LEN], const uint8_t rx[CF_KEY_LEN])
{
	if (c->dead)
		return c->dead;
	if (c->macs)
		return -EALREADY;
	cf_frame_mac_init(&c->tx, tx);
	cf_frame_mac_init(&c->rx, rx);
	c->macs = 1;
	return 0;
}

static void c_set_stop(struct cf_conn *c, int (*fn)(void *arg), void *arg)
{
	c->stop_fn = fn;
	c->stop_arg = arg;
}

const struct cf_client_ops cf_tcp_client = {
	.name = "tcp",
	.connect = c_connect,
	.close = c_close,
	.post_read = c_post_read,
	.post_write = c_post_write,
	.post_cas = c_post_cas,
	.post_faa = c_post_faa,
	.poll = c_poll,
	.send_ctrl = c_send_ctrl,
	.recv_ctrl = c_recv_ctrl,
	.ctrl_fd = c_ctrl_fd,
	.ctrl_pending = c_ctrl_pending,
	.set_frame_keys = c_set_frame_keys,
	.set_stop = c_set_stop,
};
