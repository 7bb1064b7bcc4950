/* SPDX-License-Identifier: MIT */
/*
 * cf_persist_req.c - the PERSIST control request (cf_wire.h): make a range a
 * node wrote inside its own write grant durable before it is answered.
 *   (1) preq_on_persist checks the range against the connection's write
 *       grants, adds it to the group commit (cf_persist.h), queues the
 *       request with the batch it is in;
 *   (2) once per batch, persist_answer is registered to run after that
 *       batch's commit; it answers, in arrival order, every request whose
 *       batch is durable;
 *   (3) a closing connection's waiting requests are dropped (preq_forget);
 *       a later request of a connection with one waiting commits at once
 *       (cb_ctrl), so that its answers keep their order.
 * A CF without a group commit (DRAM, not duplexed) answers at once.
 */
#include "cf_core_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cf_persist.h"

/*
 * gc made a batch durable: answer, in arrival order, every waiting PERSIST
 * whose batch is durable (a prefix of the queue: batches only grow). Those
 * that came while that batch was with the persister thread wait for theirs.
 */
static void persist_answer(void *arg)
{
	struct cf_core *c = arg;
	struct persist_wait *pw = &c->pw;
	uint64_t done = cf_persist_done(c->gc);
	size_t m = 0;

	while (m < pw->n && pw->q[m].batch <= done)
		m++;
	/* an answer may close a connection: persist_forget clears its entries in place */
	for (size_t i = 0; i < m; i++) {
		struct core_conn *cc = pw->q[i].cc;
		if (!cc)
			continue;
		pw->q[i].cc = NULL;
		cc->persist_waiting--;
		if (cc->state == CS_SYSTEM)
			core_status(cc, pw->q[i].id, CF_CTRL_STATUS, 0, "persisted");
	}
	if (m) {
		pw->groups++;
		if (m > pw->max_group)
			pw->max_group = m;
		memmove(pw->q, pw->q + m, (pw->n - m) * sizeof(*pw->q));
		pw->n -= m;
	}
}

/* A closing connection: its waiting PERSISTs are dropped unanswered. */
void preq_forget(struct cf_core *c, struct core_conn *cc)
{
	struct persist_wait *pw = &c->pw;

	if (!cc->persist_waiting)
		return;
	for (size_t i = 0; i < pw->n; i++)
		if (pw->q[i].cc == cc)
			pw->q[i].cc = NULL;
	cc->persist_waiting = 0;
}

static int persist_wait(struct cf_core *c, struct core_conn *cc, uint64_t id)
{
	struct persist_wait *pw = &c->pw;

	if (pw->n == pw->cap) {
		size_t cap = pw->cap ? pw->cap * 2 : 16;
		struct persist_wait_req *q = realloc(pw->q, cap * sizeof(*q));
		if (!q)
			return -ENOMEM;
		pw->q = q;
		pw->cap = cap;
	}
	uint64_t b = cf_persist_batch(c->gc);
	if (pw->armed_batch != b) {
		int r = cf_persist_after(c->gc, persist_answer, c);
		if (r < 0)
			return r;
		pw->armed_batch = b;
	}
	pw->q[pw->n++] = (struct persist_wait_req){cc, id, b};
	cc->persist_waiting++;
	return 0;
}

void preq_on_persist(struct core_conn *cc, uint64_t id, const struct cf_persist_msg *p)
{
	struct cf_core *c = cc->core;
	uint64_t off = p->offset, len = p->length;
	int r;

	if (!len || off > c->map->image_size || len > c->map->image_size - off) {
		c->pw.refused++;
		core_status(cc, id, CF_CTRL_STATUS, -EINVAL, "PERSIST [%llu, +%llu): empty or outside the image",
			    (unsigned long long)off, (unsigned long long)len);
		return;
	}
	for (uint32_t k = 0; k < cc->ngrants; k++) {
		const struct cgrant *g = &cc->grants[k];
		if ((g->rights & CF_R_WRITE) && off >= g->off && off - g->off <= g->len && len <= g->len - (off - g->off))
			goto granted;
	}
	c->pw.refused++;
	core_status(cc, id, CF_CTRL_STATUS, -EINVAL, "PERSIST [%llu, +%llu): not inside a write grant of this connection",
		    (unsigned long long)off, (unsigned long long)len);
	return;
granted:
	if (!c->gc) {
		core_status(cc, id, CF_CTRL_STATUS, 0, "volatile CF: nothing to persist");
		return;
	}
	c->pw.requests++;
	cf_persist_add(c->gc, off, len); /* -ENOMEM: persisted at once */
	r = persist_wait(c, cc, id);
	if (r < 0) { /* out of memory: commit now and answer */
		cf_persist_commit(c->gc);
		core_status(cc, id, CF_CTRL_STATUS, 0, "persisted");
	}
}
