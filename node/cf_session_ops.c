/* SPDX-License-Identifier: MIT */
/*
 * cf_session_ops.c - a session's one-sided operations (READ, WRITE, CAS, FAA,
 * posted and awaited, batches) on the grants its handshake gave it; the
 * handshake, control requests and events are cf_session.c.
 */
#include "cf_session_int.h"

#include <errno.h>
#include <string.h>

#include "cf_util.h"

const struct cf_grant *cf_session_grant_for(const struct cf_session *s, uint64_t off, uint64_t len, uint32_t rights)
{
	for (uint32_t i = 0; i < s->ngrants; i++) {
		const struct cf_grant *g = &s->grants[i];
		if (off >= g->image_off && off - g->image_off <= g->len && len <= g->len - (off - g->image_off) &&
		    (g->rights & rights) == rights)
			return g;
	}
	return NULL;
}

static uint64_t raddr(const struct cf_grant *g, uint64_t off)
{
	return g->addr + (off - g->image_off);
}

/*
 * Wait for the completion of wr_id (bounded by the op timeout). Completions
 * of other posted ops are consumed. An op the CF refused (an error
 * completion) ends the session on every transport, as it ends an RC queue
 * pair over verbs: the first such error is the session's, returned once
 * wr_id completes (or at once, when the connection is gone).
 */
static int wait_wr(struct cf_session *s, uint64_t wr_id, uint64_t *value)
{
	uint64_t t0 = cf_mono_ns();
	struct cf_wc wc[16];
	int n, left;

	for (;;) {
		left = CF_SESSION_OP_TIMEOUT_MS - (int)((cf_mono_ns() - t0) / 1000000u);
		if (left <= 0)
			return kill_session(s, -ETIMEDOUT);
		if ((n = aborted(s)))
			return n;
		n = s->ops->poll(s->conn, wc, (int)CF_ARRAY_SIZE(wc), slice_ms(left));
		if (n < 0)
			return kill_session(s, n);
		for (int i = 0; i < n; i++) {
			if (wc[i].status < 0)
				kill_session(s, wc[i].status);
			if (wc[i].wr_id == wr_id) {
				if (value)
					*value = wc[i].value;
				/* later completions of this batch belong to ops posted after wr_id: none */
				return s->dead;
			}
		}
	}
}

static int batch_post(struct cf_session *s, struct cf_batch_op *o, uint64_t id);

/* One op, posted and awaited: the synchronous calls below. */
static int sync_op(struct cf_session *s, struct cf_batch_op *o)
{
	uint64_t id;
	int r;

	if (s->dead)
		return s->dead;
	id = ++s->next_wr;
	r = batch_post(s, o, id);
	return r < 0 ? r : wait_wr(s, id, &o->value);
}

int cf_session_read(struct cf_session *s, uint64_t off, void *buf, uint32_t len)
{
	struct cf_batch_op o = {.op = CF_OP_READ, .off = off, .buf = buf, .len = len};

	return sync_op(s, &o);
}

int cf_session_write(struct cf_session *s, uint64_t off, const void *buf, uint32_t len)
{
	struct cf_batch_op o = {.op = CF_OP_WRITE, .off = off, .buf = (void *)buf, .len = len};

	return sync_op(s, &o);
}

int cf_session_cas(struct cf_session *s, uint64_t off, uint64_t compare, uint64_t swap, uint64_t *old)
{
	struct cf_batch_op o = {.op = CF_OP_CAS, .off = off, .compare = compare, .swap = swap};
	int r = sync_op(s, &o);

	if (r == 0 && old)
		*old = o.value;
	return r;
}

int cf_session_faa(struct cf_session *s, uint64_t off, uint64_t add, uint64_t *old)
{
	struct cf_batch_op o = {.op = CF_OP_FAA, .off = off, .compare = add};
	int r = sync_op(s, &o);

	if (r == 0 && old)
		*old = o.value;
	return r;
}

int cf_session_post_write(struct cf_session *s, uint64_t off, const void *buf, uint32_t len, unsigned flags)
{
	const struct cf_grant *g;
	int r;

	if (s->dead)
		return s->dead;
	g = cf_session_grant_for(s, off, len, CF_R_WRITE);
	if (!g)
		return -EACCES;
	r = s->ops->post_write(s->conn, buf, len, raddr(g, off), g->rkey, ++s->next_wr, flags);
	return r < 0 ? post_failed(s, r) : r;
}

int cf_session_post_read(struct cf_session *s, uint64_t off, void *buf, uint32_t len)
{
	const struct cf_grant *g;
	int r;

	if (s->dead)
		return s->dead;
	g = cf_session_grant_for(s, off, len, CF_R_READ);
	if (!g)
		return -EACCES;
	r = s->ops->post_read(s->conn, buf, len, raddr(g, off), g->rkey, ++s->next_wr, 0);
	return r < 0 ? post_failed(s, r) : r;
}

int cf_session_write_then_cas(struct cf_session *s, uint64_t woff, const void *wbuf, uint32_t wlen, uint64_t coff,
			      uint64_t compare, uint64_t swap, uint64_t *old)
{
	const struct cf_grant *gw, *gc;
	uint64_t id;
	int r;

	if (s->dead)
		return s->dead;
	gw = cf_session_grant_for(s, woff, wlen, CF_R_WRITE);
	gc = cf_session_grant_for(s, coff, 8, CF_R_ATOMIC);
	if (!gw || !gc)
		return -EACCES;
	/* RC order: the WRITE executes before the CAS; only the CAS is awaited */
	r = s->ops->post_write(s->conn, wbuf, wlen, raddr(gw, woff), gw->rkey, ++s->next_wr, CF_POST_UNSIGNALED);
	if (r < 0)
		return post_failed(s, r);
	id = ++s->next_wr;
	r = s->ops->post_cas(s->conn, raddr(gc, coff), gc->rkey, compare, swap, id, 0);
	return r < 0 ? post_failed(s, r) : wait_wr(s, id, old);
}

int cf_session_drain(struct cf_session *s)
{
	const struct cf_grant *g;
	uint64_t marker, id;
	int r;

	if (s->dead)
		return s->dead;
	/* a READ behind everything posted: RC order makes its completion the last */
	g = cf_session_grant_for(s, 0, 8, CF_R_READ);
	if (!g) {
		for (uint32_t i = 0; i < s->ngrants && !g; i++)
			if (s->grants[i].rights & CF_R_READ)
				g = &s->grants[i];
		if (!g)
			return 0;
	}
	id = ++s->next_wr;
	r = s->ops->post_read(s->conn, &marker, 8, g->addr, g->rkey, id, 0);
	return r < 0 ? post_failed(s, r) : wait_wr(s, id, NULL);
}

/* Post one op: -EACCES/-EINVAL when refused here (no grant, bad op: nothing posted, the session lives). */
static int batch_post(struct cf_session *s, struct cf_batch_op *o, uint64_t id)
{
	const struct cf_grant *g;
	uint32_t need;
	int r;

	switch (o->op) {
	case CF_OP_READ: need = CF_R_READ; break;
	case CF_OP_WRITE: need = CF_R_WRITE; break;
	case CF_OP_CAS:
	case CF_OP_FAA: need = CF_R_ATOMIC; break;
	default: return -EINVAL;
	}
	g = cf_session_grant_for(s, o->off, o->op == CF_OP_READ || o->op == CF_OP_WRITE ? o->len : 8, need);
	if (!g)
		return -EACCES;
	switch (o->op) {
	case CF_OP_READ: r = s->ops->post_read(s->conn, o->buf, o->len, raddr(g, o->off), g->rkey, id, 0); break;
	case CF_OP_WRITE: r = s->ops->post_write(s->conn, o->buf, o->len, raddr(g, o->off), g->rkey, id, 0); break;
	case CF_OP_CAS: r = s->ops->post_cas(s->conn, raddr(g, o->off), g->rkey, o->compare, o->swap, id, 0); break;
	default: r = s->ops->post_faa(s->conn, raddr(g, o->off), g->rkey, o->compare, id, 0); break;
	}
	return r < 0 ? post_failed(s, r) : r;
}

int cf_session_batch(struct cf_session *s, struct cf_batch_op *ops, size_t n)
{
	struct cf_wc wc[CF_BATCH_DEPTH];

	for (size_t base = 0; base < n; base += CF_BATCH_DEPTH) {
		size_t m = n - base < CF_BATCH_DEPTH ? n - base : CF_BATCH_DEPTH, left = 0;
		uint64_t first = s->next_wr + 1, t0 = cf_mono_ns();

		if (s->dead)
			return s->dead;
		for (size_t i = 0; i < m; i++) {
			struct cf_batch_op *o = &ops[base + i];
			int r = batch_post(s, o, ++s->next_wr);
			o->status = r < 0 ? r : 1; /* 1: in flight */
			if (r == -EACCES || r == -EINVAL)
				continue; /* refused locally: nothing posted */
			if (r < 0) /* even one post_failed() lets live: ops of this chunk are in flight */
				return kill_session(s, r);
			left++;
		}
		while (left > 0) {
			int ms = CF_SESSION_OP_TIMEOUT_MS - (int)((cf_mono_ns() - t0) / 1000000u);
			if (ms <= 0)
				return kill_session(s, -ETIMEDOUT);
			if (aborted(s))
				return s->dead;
			int k = s->ops->poll(s->conn, wc, (int)CF_ARRAY_SIZE(wc), slice_ms(ms));
			if (k < 0)
				return kill_session(s, k);
			for (int j = 0; j < k; j++) {
				uint64_t idx = wc[j].wr_id - first;
				/* a refused op ends the session (wait_wr), an earlier posted op's too */
				if (wc[j].status < 0)
					kill_session(s, wc[j].status);
				if (wc[j].wr_id < first || idx >= m)
					continue;
				struct cf_batch_op *o = &ops[base + idx];
				if (o->status != 1)
					continue;
				o->status = wc[j].status;
				o->value = wc[j].value;
				left--;
			}
			if (s->dead)
				return s->dead; /* the ops still at status 1: unknown */
		}
	}
	return 0;
}
