/* SPDX-License-Identifier: MIT */
/*
 * cf_lockq.c - lock hand-off: the CF's queues of lock waiters (docs/design.md,
 * "Lock hand-off"; the messages in cf_wire.h, the Q bit in cf_words.h).
 *
 * A node whose lock CAS found the class held sends LOCK_WAIT. The CF checks
 * it (the sender's system holds the instance at that epoch, by the CF's own
 * record; the class and mode are in range), puts it at the tail of that
 * class's queue and serves the class (serve_class):
 *   - while the head can take the class given its holders, the CF's own CAS
 *     gives it to the head (the word's Q bit stays while others wait), and
 *     the head learns it in the WAIT's reply or by event CF_EV_LOCK_GRANTED;
 *   - when the head cannot, the CF sets Q so that no newcomer barges in: a
 *     node never takes a Q word it does not hold already, it queues;
 *   - a class with nobody queued loses its Q.
 * A node that releases a Q word keeps Q in it (cf_lock_release_next) and
 * sends LOCK_KICK; a KICK lost with its sender (or never sent by a buggy
 * member) is covered by a backstop timer that serves every queued class
 * each BACKSTOP_S while any waiter is queued.
 *
 * Recovery. A waiter's record-list entry is written before its first CAS,
 * so a class granted to a waiter that dies before it learns it is released
 * by its counterpart like any hold. A closed connection's waiters leave the
 * queues (lockq_forget). The queues are server memory: a CF that takes over
 * (restart, duplexed secondary) starts with none, and a stray Q bit left in
 * a word only makes the next acquirer queue, whose WAIT serves the class.
 * Nothing here is persisted: the lock table never is (docs/design.md,
 * "Durability").
 */
#include "cf_core_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cf_slog.h"
#include "cf_util.h"

#define LOCKQ_MAX 4096u      /* waiters queued at once, all classes */
#define LOCKQ_PER_CONN 256u  /* per connection (a session waits for one; a library may have more) */
#define LOCKQ_BUCKETS 1024u  /* class → queue hash */
#define BACKSTOP_S 0.002
#define SERVE_ROUNDS 4096u   /* CAS attempts per serve: the word changes under nodes' CASes */

struct waiter {
	struct core_conn *cc; /* NULL: free */
	uint64_t ticket, reply_id, since_ns;
	uint32_t klass, inst, epoch, mode;
	int32_t next; /* in its class's queue, or the free list */
	bool granted;
};

struct queue {
	uint32_t klass;
	int32_t head, tail;
	int32_t next; /* hash chain, or the free list */
};

struct cf_lockq {
	struct cf_core *c;
	struct waiter w[LOCKQ_MAX];
	struct queue q[LOCKQ_MAX];
	int32_t bucket[LOCKQ_BUCKETS];
	int32_t wfree, qfree;
	uint32_t nwaiting, nqueues;
	ev_timer backstop;
	struct cf_lockq_stats st;
};

static uint32_t bucket_of(uint32_t klass)
{
	return (klass * 2654435761u) >> 22; /* 10 bits */
}

static int32_t queue_find(struct cf_lockq *lq, uint32_t klass)
{
	for (int32_t i = lq->bucket[bucket_of(klass)]; i >= 0; i = lq->q[i].next)
		if (lq->q[i].klass == klass)
			return i;
	return -1;
}

static int32_t queue_get(struct cf_lockq *lq, uint32_t klass)
{
	int32_t i = queue_find(lq, klass);
	uint32_t b = bucket_of(klass);

	if (i >= 0 || lq->qfree < 0)
		return i;
	i = lq->qfree;
	lq->qfree = lq->q[i].next;
	lq->q[i] = (struct queue){.klass = klass, .head = -1, .tail = -1, .next = lq->bucket[b]};
	lq->bucket[b] = i;
	lq->nqueues++;
	return i;
}

static void queue_put(struct cf_lockq *lq, int32_t i)
{
	int32_t *pp = &lq->bucket[bucket_of(lq->q[i].klass)];

	while (*pp != i)
		pp = &lq->q[*pp].next;
	*pp = lq->q[i].next;
	lq->q[i].next = lq->qfree;
	lq->qfree = i;
	lq->nqueues--;
}

/* Unlink waiter wi from queue qi (prev: its predecessor, -1 at the head) and free it. */
static void waiter_drop(struct cf_lockq *lq, int32_t qi, int32_t prev, int32_t wi)
{
	struct queue *q = &lq->q[qi];

	if (prev < 0)
		q->head = lq->w[wi].next;
	else
		lq->w[prev].next = lq->w[wi].next;
	if (q->tail == wi)
		q->tail = prev;
	lq->w[wi].cc->lock_waits--;
	lq->w[wi].cc = NULL;
	lq->w[wi].next = lq->wfree;
	lq->wfree = wi;
	lq->nwaiting--;
	if (!lq->nwaiting)
		ev_timer_stop(lq->c->loop, &lq->backstop);
}

static uint64_t word_off(struct cf_core *c, uint32_t klass)
{
	return c->map->off_locks + (uint64_t)klass * 8u;
}

/*
 * Take a Q that no waiter stands behind out of the word at off: 0 done (or
 * nothing to do), 1 the word changed under the CAS (look again).
 */
static int clear_q(struct cf_core *c, uint64_t off, uint64_t w)
{
	uint64_t old = 0;

	if (!cf_lock_queued(w) || core_local_cas(c, off, w, w & ~CF_LOCK_QBIT, &old) < 0)
		return 0;
	return old != w;
}

/* Tell the waiter: in the reply to its WAIT if that is still being answered, else by event. */
static void tell_granted(struct cf_core *c, struct waiter *w, uint64_t word)
{
	uint64_t wait_ns = cf_mono_ns() - w->since_ns;

	c->lockq->st.wait_ns_sum += wait_ns;
	if (wait_ns > c->lockq->st.wait_ns_max)
		c->lockq->st.wait_ns_max = wait_ns;
	if (w->reply_id) {
		w->granted = true; /* lockq_on_wait answers */
		return;
	}
	struct cf_event ev = {.type = CF_EV_LOCK_GRANTED, .sys = w->klass, .epoch = w->epoch, .inst = w->inst,
			      .reg = word, .policy = w->ticket};
	c->lockq->st.granted_later++;
	(void)core_send(w->cc, 0, CF_CTRL_EVENT, &ev, sizeof(ev));
}

/*
 * Give queue qi's class to its head for as long as the holders let it (S
 * waiters at the head go together, one CAS each), keep Q in the word while
 * anyone waits, take it out when nobody does. A head whose WAIT is being
 * answered (reply_id) is unlinked and marked granted: lockq_on_wait answers.
 * A head whose connection was fenced (its system declared failed, the close
 * not reported yet) leaves the queue instead: a grant would only wait for
 * its counterpart.
 */
static void serve(struct cf_core *c, int32_t qi)
{
	struct cf_lockq *lq = c->lockq;
	uint64_t off = word_off(c, lq->q[qi].klass);

	for (uint32_t round = 0; round < SERVE_ROUNDS; round++) {
		struct queue *q = &lq->q[qi];
		uint64_t w = load64((const uint64_t *)(const void *)(c->base + off)), want, old = 0, next;
		int32_t hi = q->head;
		int r;

		if (hi < 0) {
			if (clear_q(c, off, w))
				continue; /* changed under us: look again */
			queue_put(lq, qi);
			return;
		}
		struct waiter *h = &lq->w[hi];
		if (h->cc->state != CS_SYSTEM) {
			waiter_drop(lq, qi, -1, hi);
			lq->st.dropped++;
			continue;
		}
		r = cf_lock_acquire_next(cf_lock_holding(w), h->inst, h->epoch, (enum cf_lock_mode)h->mode, &next);
		if (r == -EINVAL) {
			/* a member wrote a malformed word: the waiters wait for it to be released or time out */
			lq->st.malformed++;
			return;
		}
		if (r == -EBUSY) {
			if (cf_lock_queued(w))
				return; /* marked: its release will KICK (or the backstop serves it) */
			if (core_local_cas(c, off, w, w | CF_LOCK_QBIT, &old) < 0)
				return;
			if (old != w)
				continue;
			return;
		}
		want = next | (h->next >= 0 ? CF_LOCK_QBIT : 0);
		if (core_local_cas(c, off, w, want, &old) < 0)
			return;
		if (old != w)
			continue;
		lq->st.grants++;
		tell_granted(c, h, want);
		if (h->reply_id) {
			/* lockq_on_wait answers and frees it */
			q->head = h->next;
			if (q->tail == hi)
				q->tail = -1;
			h->next = -1;
			continue;
		}
		waiter_drop(lq, qi, -1, hi);
	}
	lq->st.serve_busy++; /* the word kept changing: the backstop comes back to it */
}

static void serve_class(struct cf_core *c, uint32_t klass)
{
	int32_t qi = queue_find(c->lockq, klass);
	uint64_t off = word_off(c, klass);

	if (qi >= 0) {
		serve(c, qi);
		return;
	}
	/* nobody queued here: a stray Q (a takeover's image, a buggy member) goes */
	for (uint32_t round = 0; round < SERVE_ROUNDS; round++)
		if (!clear_q(c, off, load64((const uint64_t *)(const void *)(c->base + off))))
			return;
}

static void backstop_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct cf_core *c = t->data;
	struct cf_lockq *lq = c->lockq;

	(void)loop;
	(void)revents;
	lq->st.backstops++;
	for (uint32_t b = 0; b < LOCKQ_BUCKETS; b++) {
		for (int32_t i = lq->bucket[b], nx; i >= 0; i = nx) {
			nx = lq->q[i].next; /* serve may free i */
			serve(c, i);
		}
	}
}

int lockq_init(struct cf_core *c)
{
	struct cf_lockq *lq = calloc(1, sizeof(*lq));

	if (!lq)
		return -ENOMEM;
	lq->c = c;
	for (uint32_t i = 0; i < LOCKQ_BUCKETS; i++)
		lq->bucket[i] = -1;
	for (uint32_t i = 0; i < LOCKQ_MAX; i++) {
		lq->w[i].next = i + 1 < LOCKQ_MAX ? (int32_t)i + 1 : -1;
		lq->q[i].next = i + 1 < LOCKQ_MAX ? (int32_t)i + 1 : -1;
	}
	lq->wfree = lq->qfree = 0;
	ev_timer_init(&lq->backstop, backstop_cb, BACKSTOP_S, BACKSTOP_S);
	lq->backstop.data = c;
	c->lockq = lq;
	return 0;
}

void lockq_fini(struct cf_core *c)
{
	if (!c->lockq)
		return;
	ev_timer_stop(c->loop, &c->lockq->backstop);
	free(c->lockq);
	c->lockq = NULL;
}

const struct cf_lockq_stats *lockq_stats(const struct cf_core *c, uint32_t *waiting)
{
	*waiting = c->lockq ? c->lockq->nwaiting : 0;
	return c->lockq ? &c->lockq->st : NULL;
}

void lockq_log(const struct cf_core *c)
{
	const struct cf_lockq_stats *st = c->lockq ? &c->lockq->st : NULL;
	uint64_t n;

	if (!st || !st->waits)
		return;
	n = st->granted_now + st->granted_later;
	cf_slog_info("lock hand-off: %llu waits queued, %llu granted (%llu at once, %llu after a release), "
		     "%llu cancelled, %llu dropped with their connection, %llu refused; %llu kicks, %llu backstop "
		     "scans; queued to granted mean %.1f us, max %.1f us; at most %llu waiting",
		     (unsigned long long)st->waits, (unsigned long long)n, (unsigned long long)st->granted_now,
		     (unsigned long long)st->granted_later, (unsigned long long)st->cancels,
		     (unsigned long long)st->dropped, (unsigned long long)st->refused, (unsigned long long)st->kicks,
		     (unsigned long long)st->backstops, n ? (double)st->wait_ns_sum / (double)n / 1e3 : 0.0,
		     (double)st->wait_ns_max / 1e3, (unsigned long long)st->max_waiting);
}

static void reply(struct core_conn *cc, uint64_t id, int status, bool granted, uint64_t word)
{
	struct cf_lock_wait_r r = {.status = status, .granted = granted, .word = word};

	(void)core_send(cc, id, CF_CTRL_LOCK_WAIT_R, &r, sizeof(r));
}

/* A WAIT or CANCEL names a class in the table and an instance this system holds, at its epoch. */
static int wait_check(struct core_conn *cc, const struct cf_lock_wait *m, const char **why)
{
	struct cf_core *c = cc->core;
	uint32_t s = (uint32_t)cc->sys;

	if (m->klass >= c->map->geo.lock_entries)
		return *why = "class out of range", -EINVAL;
	if (m->mode != CF_LOCK_S && m->mode != CF_LOCK_X)
		return *why = "mode", -EINVAL;
	if (m->inst >= c->map->geo.max_instances || m->inst >= 56)
		return *why = "instance out of range", -EINVAL;
	if (!sys_incarnation(sysword(c, s), m->epoch) || !inst_held_by(c, m->inst, s, m->epoch))
		return *why = "not an instance this incarnation holds", -EPERM;
	if (!m->ticket)
		return *why = "ticket 0", -EINVAL;
	return 0;
}

void lockq_on_wait(struct core_conn *cc, uint64_t id, const struct cf_lock_wait *m)
{
	struct cf_core *c = cc->core;
	struct cf_lockq *lq = c->lockq;
	const char *why = NULL;
	int32_t qi, wi;
	int r = wait_check(cc, m, &why);

	if (r) {
		lq->st.refused++;
		cf_slog_debug("conn %s: LOCK_WAIT refused: %s", cc->peer, why);
		return reply(cc, id, r, false, 0);
	}
	if (cc->lock_waits >= LOCKQ_PER_CONN || lq->wfree < 0 || (qi = queue_get(lq, m->klass)) < 0) {
		lq->st.refused++;
		return reply(cc, id, -ENOSPC, false, 0); /* the node polls instead */
	}
	wi = lq->wfree;
	lq->wfree = lq->w[wi].next;
	lq->w[wi] = (struct waiter){.cc = cc, .ticket = m->ticket, .reply_id = id, .since_ns = cf_mono_ns(),
				    .klass = m->klass, .inst = m->inst, .epoch = m->epoch, .mode = m->mode, .next = -1};
	if (lq->q[qi].tail >= 0)
		lq->w[lq->q[qi].tail].next = wi;
	else
		lq->q[qi].head = wi;
	lq->q[qi].tail = wi;
	cc->lock_waits++;
	if (!lq->nwaiting++)
		ev_timer_again(c->loop, &lq->backstop);
	lq->st.waits++;
	if (lq->nwaiting > lq->st.max_waiting)
		lq->st.max_waiting = lq->nwaiting;
	serve(c, qi);
	if (lq->w[wi].granted) {
		/* serve unlinked it: answer with the grant and free it */
		uint64_t word = load64((const uint64_t *)(const void *)(c->base + word_off(c, m->klass)));
		lq->st.granted_now++;
		reply(cc, id, 0, true, word);
		cc->lock_waits--;
		lq->w[wi].cc = NULL;
		lq->w[wi].next = lq->wfree;
		lq->wfree = wi;
		if (!--lq->nwaiting)
			ev_timer_stop(c->loop, &lq->backstop);
		return;
	}
	lq->w[wi].reply_id = 0; /* from now on a grant goes by event */
	reply(cc, id, 0, false, 0);
}

void lockq_on_cancel(struct core_conn *cc, uint64_t id, const struct cf_lock_wait *m)
{
	struct cf_core *c = cc->core;
	struct cf_lockq *lq = c->lockq;
	int32_t qi = m->klass < c->map->geo.lock_entries ? queue_find(lq, m->klass) : -1;

	for (int32_t prev = -1, wi = qi >= 0 ? lq->q[qi].head : -1; wi >= 0; prev = wi, wi = lq->w[wi].next) {
		if (lq->w[wi].cc != cc || lq->w[wi].ticket != m->ticket)
			continue;
		waiter_drop(lq, qi, prev, wi);
		lq->st.cancels++;
		reply(cc, id, 0, false, 0);
		serve(c, qi); /* a waiter behind it may go now (S behind a cancelled X), or Q goes */
		return;
	}
	reply(cc, id, -ENOENT, false, 0); /* granted already (its event went first), or never queued */
}

void lockq_on_kick(struct core_conn *cc, const struct cf_lock_kick *m)
{
	struct cf_core *c = cc->core;

	if (m->klass >= c->map->geo.lock_entries)
		return;
	c->lockq->st.kicks++;
	serve_class(c, m->klass);
}

void lockq_forget(struct cf_core *c, struct core_conn *cc)
{
	struct cf_lockq *lq = c->lockq;

	if (!lq || !lq->nwaiting)
		return;
	for (uint32_t b = 0; b < LOCKQ_BUCKETS; b++) {
		for (int32_t qi = lq->bucket[b], qn; qi >= 0; qi = qn) {
			bool dropped = false;
			qn = lq->q[qi].next;
			for (int32_t prev = -1, wi = lq->q[qi].head, nx; wi >= 0; wi = nx) {
				nx = lq->w[wi].next;
				if (lq->w[wi].cc == cc) {
					waiter_drop(lq, qi, prev, wi);
					lq->st.dropped++;
					dropped = true;
				} else
					prev = wi;
			}
			if (dropped)
				serve(c, qi); /* those behind it, or Q out */
		}
	}
}
