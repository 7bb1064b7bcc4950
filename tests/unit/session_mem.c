/* SPDX-License-Identifier: MIT */
/*
 * session_mem.c - the session calls over an in-memory CF image (session_mem.h).
 *
 * Kept apart from session_stub.c on purpose: the stub's callers (test_lock,
 * test_log, test_txn) run on memory-backed logs and lock tables that must
 * never reach a session, and the stub fails loudly if one does; a session
 * that works would hide such a regression.
 *
 * Every op executes at once, in program order, so posted ops complete before
 * the next call (RC order holds trivially) and drain only reports the
 * connection's state. Atomics are CPU atomics on the image word.
 */
#include "session_mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_words.h"

struct cf_conn {
	struct mem_cf *cf;
	uint64_t attached; /* bitmap of instances whose log and record list are granted */
};

void mem_session_open(struct cf_session *s, struct mem_cf *cf, uint32_t sys, uint32_t epoch)
{
	struct cf_conn *c = calloc(1, sizeof(*c));

	if (!c)
		abort();
	memset(s, 0, sizeof(*s));
	c->cf = cf;
	s->conn = c;
	s->map = cf->map;
	s->welcome.geo = cf->map.geo;
	s->role = CF_ROLE_SYSTEM;
	s->sys = sys;
	s->epoch = epoch;
}

/* Never called through: cf_session_persist_needed only asks that a transport is there. */
static const struct cf_client_ops mem_ops;

void mem_session_durable(struct cf_session *s)
{
	if (!s->conn->cf->durable)
		abort();
	s->cf_flags |= CF_JOINED_DURABLE;
	s->ops = &mem_ops;
}

void mem_session_kill(struct cf_session *s, int err)
{
	s->dead = err;
	s->conn->attached = 0;
}

void mem_session_close(struct cf_session *s)
{
	free(s->conn);
	s->conn = NULL;
}

static int overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* The grant check the CF and the transport make: -EACCES outside what this connection holds. */
static int check(struct cf_session *s, uint64_t off, uint64_t len, uint8_t **p)
{
	const struct cf_image_map *m = &s->conn->cf->map;

	if (s->dead)
		return s->dead;
	if (off > m->image_size || len > m->image_size - off)
		return -EACCES;
	for (uint32_t i = 0; i < m->geo.max_instances; i++) {
		if (s->conn->attached & (1ull << i))
			continue;
		if (overlaps(off, len, cf_log_off(m, i), m->geo.log_size) ||
		    overlaps(off, len, cf_rec_off(m, i), m->records_size))
			return -EACCES;
	}
	*p = s->conn->cf->img + off;
	return 0;
}

struct mem_trace mem_trace;
bool mem_attach_sends_hdr = true;

int cf_session_read(struct cf_session *s, uint64_t off, void *buf, uint32_t len)
{
	const struct cf_image_map *m = &s->map;
	uint8_t *p;
	int r = check(s, off, len, &p);

	if (!r)
		memcpy(buf, p, len);
	if (!r && off >= m->off_logs && off < m->off_logs + (uint64_t)m->geo.max_instances * m->geo.log_size &&
	    (off - m->off_logs) % m->geo.log_size == 0)
		mem_trace.log_hdr_reads++;
	return r;
}

int cf_session_write(struct cf_session *s, uint64_t off, const void *buf, uint32_t len)
{
	uint8_t *p;
	int r = check(s, off, len, &p);

	if (!r)
		memcpy(p, buf, len);
	return r;
}

static uint64_t cur_batch; /* the batch running, 0: none */

int cf_session_cas(struct cf_session *s, uint64_t off, uint64_t compare, uint64_t swap, uint64_t *old)
{
	uint8_t *p;
	int r = off % 8 ? -EINVAL : check(s, off, 8, &p);

	if (r)
		return r;
	if (mem_trace.ncas < MEM_TRACE_MAX) {
		mem_trace.cas_off[mem_trace.ncas] = off;
		mem_trace.cas_batch[mem_trace.ncas++] = cur_batch;
	}
	uint64_t expect = compare;
	__atomic_compare_exchange_n((uint64_t *)(void *)p, &expect, swap, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	if (old)
		*old = expect;
	return 0;
}

int cf_session_faa(struct cf_session *s, uint64_t off, uint64_t add, uint64_t *old)
{
	uint8_t *p;
	int r = off % 8 ? -EINVAL : check(s, off, 8, &p);

	if (r)
		return r;
	uint64_t v = __atomic_fetch_add((uint64_t *)(void *)p, add, __ATOMIC_SEQ_CST);
	if (old)
		*old = v;
	return 0;
}

int cf_session_post_write(struct cf_session *s, uint64_t off, const void *buf, uint32_t len, unsigned flags)
{
	(void)flags;
	return cf_session_write(s, off, buf, len);
}

int cf_session_post_read(struct cf_session *s, uint64_t off, void *buf, uint32_t len)
{
	return cf_session_read(s, off, buf, len);
}

int cf_session_write_then_cas(struct cf_session *s, uint64_t woff, const void *wbuf, uint32_t wlen, uint64_t coff,
			      uint64_t compare, uint64_t swap, uint64_t *old)
{
	int r = cf_session_write(s, woff, wbuf, wlen);

	return r ? r : cf_session_cas(s, coff, compare, swap, old);
}

int cf_session_drain(struct cf_session *s)
{
	return s->dead;
}

int cf_session_batch(struct cf_session *s, struct cf_batch_op *ops, size_t n)
{
	if (s->dead)
		return s->dead;
	cur_batch = ++mem_trace.batches;
	for (size_t i = 0; i < n; i++) {
		struct cf_batch_op *o = &ops[i];
		switch (o->op) {
		case CF_OP_READ: o->status = cf_session_read(s, o->off, o->buf, o->len); break;
		case CF_OP_WRITE: o->status = cf_session_write(s, o->off, o->buf, o->len); break;
		case CF_OP_CAS: o->status = cf_session_cas(s, o->off, o->compare, o->swap, &o->value); break;
		case CF_OP_FAA: o->status = cf_session_faa(s, o->off, o->compare, &o->value); break;
		default: o->status = -EINVAL;
		}
	}
	cur_batch = 0;
	return 0;
}

int cf_session_persist(struct cf_session *s, uint64_t off, uint64_t len)
{
	uint8_t *p;
	int r = len ? check(s, off, len, &p) : -EINVAL;

	if (!r && s->conn->cf->durable)
		memcpy(s->conn->cf->durable + off, p, len);
	return r;
}

static uint64_t *reg_word(struct cf_session *s, uint32_t inst)
{
	return (uint64_t *)(void *)(s->conn->cf->img + cf_inst_off(&s->conn->cf->map, inst));
}

/* INST_ATTACH: granted only to the incarnation the word names ACTIVE. */
int cf_session_inst_attach(struct cf_session *s, uint32_t inst)
{
	uint64_t w;

	if (s->dead)
		return s->dead;
	if (inst >= s->map.geo.max_instances)
		return -EINVAL;
	w = __atomic_load_n(reg_word(s, inst), __ATOMIC_SEQ_CST);
	if (cf_reg_state(w) != CF_REG_ACTIVE || cf_reg_owner(w) != s->sys || cf_reg_epoch(w) != s->epoch) {
		snprintf(s->err_msg, sizeof(s->err_msg), "instance %u not registered to this incarnation", inst);
		return -EACCES;
	}
	s->conn->attached |= 1ull << inst;
	return 0;
}

int cf_session_inst_attach_log(struct cf_session *s, uint32_t inst, struct cf_log_hdr *hdr)
{
	int r = cf_session_inst_attach(s, inst);

	if (r < 0 || !hdr || !mem_attach_sends_hdr)
		return r;
	memcpy(hdr, s->conn->cf->img + cf_log_off(&s->conn->cf->map, inst), sizeof(*hdr));
	return 1;
}

/* INST_UNREG: ACTIVE(me, e, k) -> INACTIVE_CLEAN(k), grants revoked. */
int cf_session_inst_unreg(struct cf_session *s, uint32_t inst, char *msg, size_t msglen)
{
	uint64_t w;

	if (s->dead)
		return s->dead;
	if (inst >= s->map.geo.max_instances)
		return -EINVAL;
	w = __atomic_load_n(reg_word(s, inst), __ATOMIC_SEQ_CST);
	if (cf_reg_state(w) != CF_REG_ACTIVE || cf_reg_owner(w) != s->sys || cf_reg_epoch(w) != s->epoch ||
	    !__atomic_compare_exchange_n(reg_word(s, inst), &w, cf_reg_clean(cf_reg_incident(w)), false,
					 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
		if (msg && msglen)
			snprintf(msg, msglen, "instance %u not registered to this incarnation", inst);
		return -EACCES;
	}
	s->conn->attached &= ~(1ull << inst);
	return 0;
}

void cf_session_forget_inst(struct cf_session *s, uint32_t inst)
{
	if (inst < 64)
		s->conn->attached &= ~(1ull << inst);
}

/* Lock hand-off: no CF queues in memory. A waiter polls (-ENOSYS, as from a CF without them); a KICK is traced. */
int cf_session_lock_wait(struct cf_session *s, const struct cf_lock_wait *w, uint64_t *word)
{
	(void)s, (void)w, (void)word;
	return -ENOSYS;
}
int cf_session_lock_granted(struct cf_session *s, int timeout_ms, uint64_t *word)
{
	(void)s, (void)timeout_ms, (void)word;
	return -ENOSYS;
}
int cf_session_lock_cancel(struct cf_session *s, const struct cf_lock_wait *w, uint64_t *word)
{
	(void)s, (void)w, (void)word;
	return -ENOSYS;
}
int cf_session_lock_kick(struct cf_session *s, uint32_t klass)
{
	if (s->dead)
		return s->dead;
	if (mem_trace.nkicks < MEM_TRACE_MAX)
		mem_trace.kick_class[mem_trace.nkicks++] = klass;
	return 0;
}
