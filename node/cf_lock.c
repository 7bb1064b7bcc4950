/* SPDX-License-Identifier: MIT */
/* cf_lock.c - record locks (design in cf_lock.h). */
#include "cf_lock.h"
#include "cf_fault.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cf_session.h"
#include "cf_util.h"

#define BACKOFF_MIN_NS 10000ull
#define BACKOFF_MAX_NS 1000000ull
#define RELEASE_RETRIES 100000u
#define READ_CHUNK 32768u

struct cf_lock_name {
	char name[CF_RES_NAME_MAX];
	uint64_t owner;
	uint64_t seq; /* acquisition order: released newest first */
	int32_t next; /* bucket chain, or free list */
	int32_t cls;  /* index into cls[] */
	uint8_t mode;
	bool used;
};

struct cf_lock_cstate {
	uint32_t klass;
	uint32_t refs;
	uint64_t word; /* the word as our last successful CAS left it */
	int32_t next;
	uint8_t mode;
	bool used;
};

/* ---------------- I/O: a session, or a memory image ---------------- */

struct lkio {
	struct cf_session *s;
	uint8_t *mem;
};

static int io_cas(struct lkio io, uint64_t off, uint64_t cmp, uint64_t swap, uint64_t *old)
{
	if (io.mem) {
		uint64_t expect = cmp;
		__atomic_compare_exchange_n((uint64_t *)(void *)(io.mem + off), &expect, swap, false, __ATOMIC_SEQ_CST,
					    __ATOMIC_SEQ_CST);
		*old = expect;
		return 0;
	}
	return cf_session_cas(io.s, off, cmp, swap, old);
}

static int io_write_then_cas(struct lkio io, uint64_t woff, const void *wbuf, uint32_t wlen, uint64_t coff,
			     uint64_t cmp, uint64_t swap, uint64_t *old)
{
	if (io.mem) {
		memcpy(io.mem + woff, wbuf, wlen);
		return io_cas(io, coff, cmp, swap, old);
	}
	return cf_session_write_then_cas(io.s, woff, wbuf, wlen, coff, cmp, swap, old);
}

static int io_read(struct lkio io, uint64_t off, void *buf, uint32_t len)
{
	if (io.mem) {
		if (len == 8)
			*(uint64_t *)buf = __atomic_load_n((uint64_t *)(void *)(io.mem + off), __ATOMIC_SEQ_CST);
		else
			memcpy(buf, io.mem + off, len);
		return 0;
	}
	return cf_session_read(io.s, off, buf, len);
}

static int io_write(struct lkio io, uint64_t off, const void *buf, uint32_t len, bool post)
{
	if (io.mem) {
		memcpy(io.mem + off, buf, len);
		return 0;
	}
	if (post)
		return cf_session_post_write(io.s, off, buf, len, CF_POST_UNSIGNALED);
	return cf_session_write(io.s, off, buf, len);
}

/* A batch over either backing: the session pipelines it, memory runs it in place. */
static int io_batch(struct lkio io, struct cf_batch_op *ops, size_t n)
{
	if (!io.mem)
		return cf_session_batch(io.s, ops, n);
	for (size_t i = 0; i < n; i++) {
		struct cf_batch_op *o = &ops[i];
		o->status = 0;
		if (o->op == CF_OP_READ)
			o->status = io_read(io, o->off, o->buf, o->len);
		else if (o->op == CF_OP_WRITE)
			o->status = io_write(io, o->off, o->buf, o->len, false);
		else if (o->op == CF_OP_CAS)
			o->status = io_cas(io, o->off, o->compare, o->swap, &o->value);
		else
			o->status = -EINVAL;
	}
	return 0;
}

static struct lkio tio(const struct cf_lock_table *t)
{
	return (struct lkio){ .s = t->s, .mem = t->mem };
}

static const struct cf_rec_entry zero_entry;

/* ---------------- local tables ---------------- */

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

static int table_alloc(struct cf_lock_table *t, const struct cf_image_map *map, uint32_t inst, uint32_t epoch)
{
	uint32_t n = map->geo.record_entries;

	if (inst >= map->geo.max_instances || inst >= 56)
		return -EINVAL;
	t->inst = inst;
	t->epoch = epoch;
	t->lock_entries = map->geo.lock_entries;
	t->rec_entries = n;
	t->locks_off = map->off_locks;
	t->rec_off = cf_rec_off(map, inst);
	t->span_off = cf_log_off(map, inst) + offsetof(struct cf_log_hdr, rec_span);
	t->span = 0; /* a new incarnation's list is empty: its first entry writes the span */
	t->nbkt = 1;
	while (t->nbkt < 2 * n)
		t->nbkt <<= 1;
	t->names = calloc(n, sizeof(*t->names));
	t->cls = calloc(n, sizeof(*t->cls));
	t->ent = calloc(n, sizeof(*t->ent));
	t->name_bkt = malloc(t->nbkt * sizeof(int32_t));
	t->cls_bkt = malloc(t->nbkt * sizeof(int32_t));
	if (!t->names || !t->cls || !t->ent || !t->name_bkt || !t->cls_bkt) {
		cf_lock_table_fini(t);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < t->nbkt; i++)
		t->name_bkt[i] = t->cls_bkt[i] = -1;
	for (uint32_t i = 0; i < n; i++) {
		t->names[i].next = i + 1 < n ? (int32_t)(i + 1) : -1;
		t->cls[i].next = i + 1 < n ? (int32_t)(i + 1) : -1;
	}
	t->name_free = t->cls_free = 0;
	t->rng = 0x9e3779b97f4a7c15ull ^ cf_mono_ns() ^ ((uint64_t)inst << 32);
	return 0;
}

int cf_lock_table_init(struct cf_lock_table *t, struct cf_session *s, uint32_t inst, uint32_t epoch)
{
	memset(t, 0, sizeof(*t));
	t->s = s;
	return table_alloc(t, &s->map, inst, epoch);
}

int cf_lock_table_init_mem(struct cf_lock_table *t, void *image, const struct cf_image_map *map, uint32_t inst,
			   uint32_t epoch)
{
	memset(t, 0, sizeof(*t));
	t->mem = image;
	return table_alloc(t, map, inst, epoch);
}

void cf_lock_table_fini(struct cf_lock_table *t)
{
	if (!t)
		return;
	free(t->names);
	free(t->cls);
	free(t->ent);
	free(t->name_bkt);
	free(t->cls_bkt);
	t->names = NULL;
	t->cls = NULL;
	t->ent = NULL;
	t->name_bkt = t->cls_bkt = NULL;
}

static int32_t cls_find(const struct cf_lock_table *t, uint32_t klass)
{
	for (int32_t i = t->cls_bkt[klass & (t->nbkt - 1)]; i >= 0; i = t->cls[i].next)
		if (t->cls[i].klass == klass)
			return i;
	return -1;
}

static int32_t cls_add(struct cf_lock_table *t, uint32_t klass, uint8_t mode, uint64_t word)
{
	int32_t i = t->cls_free;
	uint32_t b = klass & (t->nbkt - 1);

	if (i < 0)
		return -1;
	t->cls_free = t->cls[i].next;
	t->cls[i] = (struct cf_lock_cstate){ .klass = klass, .mode = mode, .word = word, .used = true };
	t->cls[i].next = t->cls_bkt[b];
	t->cls_bkt[b] = i;
	t->nclasses++;
	return i;
}

static void cls_del(struct cf_lock_table *t, int32_t i)
{
	int32_t *pp = &t->cls_bkt[t->cls[i].klass & (t->nbkt - 1)];

	while (*pp != i)
		pp = &t->cls[*pp].next;
	*pp = t->cls[i].next;
	t->cls[i].used = false;
	t->cls[i].next = t->cls_free;
	t->cls_free = i;
	t->nclasses--;
}

static int32_t name_alloc(struct cf_lock_table *t)
{
	int32_t i = t->name_free;

	if (i < 0)
		return -1;
	t->name_free = t->names[i].next;
	t->nheld++;
	return i;
}

/*
 * Entry e is about to be written: make the record list's span (cf_log_hdr)
 * cover it first. A posted WRITE on the table's session, ahead of the
 * entry's own: RC order lands it first, so a counterpart that reads the span
 * and then the prefix it names finds every entry written. Entries are taken
 * lowest index first (name_alloc), so the span grows in steps of
 * SPAN_STEP to the most entries ever held at once, not once per lock.
 */
#define SPAN_STEP 64u
static int span_cover(struct cf_lock_table *t, int32_t e)
{
	uint32_t n;
	uint64_t w;
	int r;

	if ((uint32_t)e < t->span)
		return 0;
	n = ((uint32_t)e / SPAN_STEP + 1) * SPAN_STEP;
	if (n > t->rec_entries)
		n = t->rec_entries;
	w = cf_log_rec_span_word(n);
	r = io_write(tio(t), t->span_off, &w, sizeof(w), true);
	if (r == 0)
		t->span = n;
	return r;
}

static void name_link(struct cf_lock_table *t, int32_t i)
{
	uint32_t b = name_hash(t->names[i].name) & (t->nbkt - 1);

	t->names[i].next = t->name_bkt[b];
	t->name_bkt[b] = i;
	t->names[i].used = true;
	t->names[i].seq = ++t->acq_seq;
}

static void name_free(struct cf_lock_table *t, int32_t i, bool linked)
{
	if (linked) {
		int32_t *pp = &t->name_bkt[name_hash(t->names[i].name) & (t->nbkt - 1)];
		while (*pp != i)
			pp = &t->names[*pp].next;
		*pp = t->names[i].next;
	}
	t->names[i].used = false;
	t->names[i].next = t->name_free;
	t->name_free = i;
	t->nheld--;
}

enum cf_lock_mode cf_lock_local_mode(const struct cf_lock_table *t, const char *name)
{
	uint8_t m = 0;

	for (int32_t i = t->name_bkt[name_hash(name) & (t->nbkt - 1)]; i >= 0; i = t->names[i].next)
		if (!strcmp(t->names[i].name, name) && t->names[i].mode > m)
			m = t->names[i].mode;
	return (enum cf_lock_mode)m;
}

enum cf_lock_mode cf_lock_owner_mode(const struct cf_lock_table *t, const char *name, uint64_t owner)
{
	uint8_t m = 0;

	for (int32_t i = t->name_bkt[name_hash(name) & (t->nbkt - 1)]; i >= 0; i = t->names[i].next)
		if (t->names[i].owner == owner && !strcmp(t->names[i].name, name) && t->names[i].mode > m)
			m = t->names[i].mode;
	return (enum cf_lock_mode)m;
}

/* ---------------- acquire / release ---------------- */

static void backoff_sleep(struct cf_lock_table *t, uint64_t *ns)
{
	struct timespec ts;
	uint64_t d;

	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 7;
	t->rng ^= t->rng << 17;
	d = *ns / 2 + t->rng % (*ns / 2 + 1); /* jitter in [ns/2, ns] */
	ts.tv_sec = (time_t)(d / 1000000000ull);
	ts.tv_nsec = (long)(d % 1000000000ull);
	nanosleep(&ts, NULL);
	*ns = *ns * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : *ns * 2;
}

/*
 * Lock hand-off (cf_wire.h, struct cf_lock_wait): queue at the CF for klass
 * and sleep until it grants the class, in at most left_ms (-1: forever).
 * 0 with *word (the word the CF's CAS left: we hold the class), -ETIMEDOUT
 * (left the queue, nothing held), -EAGAIN (not queued: poll instead), or the
 * session's error. The entry written before the first CAS stays in the
 * record list meanwhile, so a grant to a waiter that dies is released by its
 * counterpart like any other hold.
 */
static int handoff_wait(struct cf_lock_table *t, uint32_t klass, enum cf_lock_mode m, int left_ms, uint64_t *word)
{
	struct cf_lock_wait w = {.klass = klass, .inst = t->inst, .epoch = t->epoch, .mode = (uint32_t)m,
				 .ticket = ++t->ticket};
	int r = cf_session_lock_wait(t->s, &w, word);

	if (r == -ENOSYS || r == -EPROTO) {
		t->no_handoff = true; /* a CF without hand-off: never ask again */
		return t->s->dead ? t->s->dead : -EAGAIN;
	}
	if (r < 0)
		return t->s->dead ? t->s->dead : -EAGAIN;
	t->st.queued++;
	if (r == 1) {
		t->st.handed++;
		return 0;
	}
	r = cf_session_lock_granted(t->s, left_ms, word);
	if (r == -ETIMEDOUT) {
		r = cf_session_lock_cancel(t->s, &w, word);
		if (r == 1)
			r = 0; /* granted just before the cancel: ours */
		else if (r == 0)
			return -ETIMEDOUT;
	}
	if (r == 0)
		t->st.handed++;
	return r;
}

static void drop_entry(struct cf_lock_table *t, int32_t e)
{
	/*
	 * The entry was written to the CF before a CAS that did not take the class:
	 * clear it (awaited: this is the slow path, and a stale entry would show in
	 * cfctl status until the next recovery or clean start).
	 */
	(void)io_write(tio(t), t->rec_off + (uint64_t)e * sizeof(struct cf_rec_entry), &zero_entry,
		       sizeof(zero_entry), false);
	name_free(t, e, false);
}

int cf_lock_acquire(struct cf_lock_table *t, const char *name, enum cf_lock_mode m, uint64_t owner, int timeout_ms,
		    uint32_t *entry, uint64_t *holder)
{
	size_t len = name ? strlen(name) : 0;
	uint32_t klass;
	int32_t e, c;
	uint64_t cmp, next, old, t0, backoff = BACKOFF_MIN_NS;
	bool first = true, counted = false;
	int r;

	if (len == 0 || len >= CF_RES_NAME_MAX || (m != CF_LOCK_S && m != CF_LOCK_X))
		return -EINVAL;
	/* A name another transaction of this instance holds, incompatibly. */
	for (int32_t i = t->name_bkt[name_hash(name) & (t->nbkt - 1)]; i >= 0; i = t->names[i].next) {
		if (strcmp(t->names[i].name, name) || t->names[i].owner == owner)
			continue;
		if (m == CF_LOCK_X || t->names[i].mode == CF_LOCK_X) {
			t->st.self_conflicts++;
			if (holder)
				*holder = t->names[i].owner;
			return -EALREADY;
		}
	}
	klass = cf_lock_class(name, t->lock_entries);
	e = name_alloc(t);
	if (e < 0)
		return -ENOSPC;
	if ((r = span_cover(t, e)) < 0) {
		name_free(t, e, false);
		return r;
	}
	memset(&t->names[e], 0, sizeof(t->names[e]));
	memcpy(t->names[e].name, name, len);
	t->names[e].owner = owner;
	t->names[e].mode = (uint8_t)m;
	memset(&t->ent[e], 0, sizeof(t->ent[e]));
	t->ent[e].used = 1u + (uint64_t)m;
	t->ent[e].klass = klass;
	memcpy(t->ent[e].name, name, len);

	c = cls_find(t, klass);
	if (c >= 0 && t->cls[c].mode >= m) {
		/* Our class hold covers it: record the name (posted), no CAS. */
		r = io_write(tio(t), t->rec_off + (uint64_t)e * sizeof(struct cf_rec_entry), &t->ent[e],
			     sizeof(t->ent[e]), true);
		if (r) {
			name_free(t, e, false);
			return r;
		}
		t->names[e].cls = c;
		t->cls[c].refs++;
		name_link(t, e);
		t->st.acquires++;
		t->st.shared_self++;
		*entry = (uint32_t)e;
		return 0;
	}
	t0 = cf_mono_ns();
	cmp = c >= 0 ? t->cls[c].word : 0; /* optimistic: the class is free */
	r = cf_lock_acquire_next(cmp, t->inst, t->epoch, m, &next);
	if (r) {
		name_free(t, e, false);
		return -EBADMSG;
	}
	for (;;) {
		if (first)
			r = io_write_then_cas(tio(t), t->rec_off + (uint64_t)e * sizeof(struct cf_rec_entry), &t->ent[e],
					      sizeof(t->ent[e]), t->locks_off + (uint64_t)klass * 8u, cmp, next, &old);
		else
			r = io_cas(tio(t), t->locks_off + (uint64_t)klass * 8u, cmp, next, &old);
		if (r) {
			name_free(t, e, false);
			return r;
		}
		/* record entry written, the CAS lost: the state "entry without hold" */
		if (first && old != cmp)
			CF_FAULT("txn.after_lock_record");
		first = false;
		if (old == cmp)
			break;
		/* Lost: old is the current word. Compatible now? */
		cmp = old;
		for (;;) {
			r = cf_lock_acquire_next(cmp, t->inst, t->epoch, m, &next);
			if (r == 0)
				break;
			if (r != -EBUSY) {
				drop_entry(t, e);
				return CF_CORRUPT();
			}
			if (!counted) {
				t->st.contended++;
				counted = true;
			}
			if (timeout_ms == 0) {
				drop_entry(t, e);
				return -EBUSY;
			}
			if (cf_mono_ns() - t0 >= (uint64_t)timeout_ms * 1000000ull) {
				t->st.timeouts++;
				drop_entry(t, e);
				return -ETIMEDOUT;
			}
			if (t->s && !t->no_handoff) {
				int left = timeout_ms < 0 ? -1 : timeout_ms - (int)((cf_mono_ns() - t0) / 1000000ull);
				r = handoff_wait(t, klass, m, left, &next);
				if (r == 0)
					goto granted;
				if (r == -ETIMEDOUT) {
					t->st.timeouts++;
					drop_entry(t, e);
					return r;
				}
				if (r != -EAGAIN) {
					name_free(t, e, false);
					return r;
				}
				/* not queued (the CF refused: a full queue, an old CF): poll */
			}
			if (t->no_handoff || !t->s || r == -EAGAIN)
				backoff_sleep(t, &backoff);
			t->st.polls++;
			r = io_read(tio(t), t->locks_off + (uint64_t)klass * 8u, &cmp, 8);
			if (r) {
				name_free(t, e, false);
				return r;
			}
		}
	}
granted:
	CF_FAULT("txn.after_lock_cas");
	if (c < 0) {
		c = cls_add(t, klass, (uint8_t)m, next);
		if (c < 0) { /* cannot happen: one class per name at most */
			name_free(t, e, false);
			return -ENOSPC;
		}
	} else {
		t->cls[c].word = next;
		if (m > t->cls[c].mode)
			t->cls[c].mode = (uint8_t)m;
	}
	t->names[e].cls = c;
	t->cls[c].refs++;
	name_link(t, e);
	t->st.acquires++;
	t->st.cas_acquires++;
	cf_lock_hist_add(&t->st.lat, cf_mono_ns() - t0);
	*entry = (uint32_t)e;
	return 0;
}

/*
 * Free classes klass[0..n) of inst, each CASed from the word guessed for it
 * (word[i]: ours as our last CAS left it, or what a record list implies), all
 * in one batch, a round trip, in the given order; a guess the word moved past
 * (a waiter set Q, another S holder came or went) goes into the next round
 * with the word the CF returned. A class the word no longer gives inst is left.
 * A class freed with waiters queued at the CF is KICKed (a lost KICK: the
 * CF's backstop). ops, which: scratch of n. *freed, *kicks (may be NULL): counts.
 * The one release of lock words, a transaction's (release_batch) and a failed
 * instance's (release_instance).
 */
static int release_classes(struct lkio io, uint64_t locks_off, uint32_t inst, uint64_t *klass, uint64_t *word,
			   uint32_t n, struct cf_batch_op *ops, uint32_t *which, uint32_t *freed, uint32_t *kicks)
{
	int r;

	for (uint32_t k = 0; k < RELEASE_RETRIES; k++) {
		uint32_t m = 0;
		for (uint32_t j = 0; j < n; j++) {
			uint64_t next;
			if (klass[j] == UINT64_MAX || cf_lock_release_next(word[j], inst, &next)) {
				klass[j] = UINT64_MAX; /* not (or no longer) held by inst: e.g. entry written, CAS never landed */
				continue;
			}
			which[m] = j;
			ops[m++] = (struct cf_batch_op){.op = CF_OP_CAS, .off = locks_off + klass[j] * 8u,
							.compare = word[j], .swap = next};
		}
		if (!m)
			return 0;
		r = io_batch(io, ops, m);
		if (r)
			return r;
		for (uint32_t q = 0; q < m; q++) {
			uint32_t j = which[q];
			if (ops[q].status)
				return ops[q].status;
			if (ops[q].value != ops[q].compare) {
				word[j] = ops[q].value; /* changed under us: the next round tries what it is now */
				continue;
			}
			if (freed)
				(*freed)++;
			/* waiters queued at the CF: serve them now, not at its backstop */
			if (cf_lock_queued(ops[q].compare) && io.s) {
				if (kicks)
					(*kicks)++;
				r = cf_session_lock_kick(io.s, (uint32_t)klass[j]);
				if (r)
					return r;
			}
			klass[j] = UINT64_MAX;
		}
	}
	return 0;
}

/*
 * Release entries e[0..n) in that order (at most CF_BATCH_DEPTH): every class
 * they leave free in one round trip (release_classes), each guessing the word
 * our own last CAS left; then the entries cleared (posted). Before, each class
 * was its own awaited CAS: the holder of a hot record let go one round trip
 * later per class. The order stays the given one (one connection executes in
 * order), so a waiter handed the last class finds the others free.
 */
static int release_batch(struct cf_lock_table *t, const int32_t *e, uint32_t n)
{
	struct cf_batch_op ops[CF_BATCH_DEPTH];
	uint64_t klass[CF_BATCH_DEPTH], word[CF_BATCH_DEPTH];
	uint32_t which[CF_BATCH_DEPTH], m = 0, kicks = 0;
	int r;

	for (uint32_t k = 0; k < n; k++) {
		int32_t c = t->names[e[k]].cls;

		name_free(t, e[k], true);
		t->st.releases++;
		if (--t->cls[c].refs)
			continue;
		klass[m] = t->cls[c].klass;
		word[m++] = t->cls[c].word;
		cls_del(t, c);
	}
	r = release_classes(tio(t), t->locks_off, t->inst, klass, word, m, ops, which, NULL, &kicks);
	t->st.kicks += kicks;
	if (r)
		return r;
	/* Clear the entries after the CASes: a crash in between leaves entries recovery skips. */
	for (uint32_t k = 0; k < n; k++) {
		r = io_write(tio(t), t->rec_off + (uint64_t)e[k] * sizeof(struct cf_rec_entry), &zero_entry,
			     sizeof(zero_entry), true);
		if (r)
			return r;
	}
	return 0;
}

int cf_lock_release(struct cf_lock_table *t, uint32_t entry)
{
	int32_t e = (int32_t)entry;

	if (entry >= t->rec_entries || !t->names[e].used)
		return -EINVAL;
	return release_batch(t, &e, 1);
}

static int seq_desc(const void *a, const void *b, void *arg)
{
	const struct cf_lock_name *n = arg;
	uint64_t x = n[*(const int32_t *)a].seq, y = n[*(const int32_t *)b].seq;

	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * Newest first: a transaction took its locks in one global order (the bank:
 * by class), so its oldest lock is the one the next transaction queues on.
 * Released last, it hands the next one a set whose other classes are free
 * already: one hand-off per transaction, not one per lock.
 */
int cf_lock_release_owner(struct cf_lock_table *t, uint64_t owner)
{
	int32_t stack[64], *mine = stack;
	uint32_t n = 0, cap = 64;
	bool short_of_memory = false;
	int first_err = 0;

	for (uint32_t i = 0; i < t->rec_entries; i++) {
		if (!t->names[i].used || t->names[i].owner != owner)
			continue;
		if (n == cap) {
			int32_t *m = malloc(2 * cap * sizeof(*m));
			if (!m) {
				short_of_memory = true; /* these now, the rest in index order below */
				break;
			}
			memcpy(m, mine, n * sizeof(*m));
			if (mine != stack)
				free(mine);
			mine = m;
			cap *= 2;
		}
		mine[n++] = (int32_t)i;
	}
	qsort_r(mine, n, sizeof(*mine), seq_desc, t->names);
	for (uint32_t k = 0; k < n; k += CF_BATCH_DEPTH) {
		int r = release_batch(t, mine + k, n - k < CF_BATCH_DEPTH ? n - k : CF_BATCH_DEPTH);
		if (r && !first_err)
			first_err = r;
	}
	if (mine != stack)
		free(mine);
	for (uint32_t i = 0; short_of_memory && i < t->rec_entries; i++) { /* what an allocation failure left */
		if (!t->names[i].used || t->names[i].owner != owner)
			continue;
		int r = cf_lock_release(t, i);
		if (r && !first_err)
			first_err = r;
	}
	return first_err;
}

/* ---------------- another instance's holds (recovery) ---------------- */

/*
 * Release every hold of inst that its record list names. Pipelined, because
 * this is on the failover path: the list is read in one batch, the lock words
 * of its distinct classes in another, then every release CAS in a third; a
 * CAS that finds the word changed (another holder came or went) is retried
 * with the value it returned. So the cost is about three round trips,
 * whatever the number of locks.
 */
/*
 * Round trips, on the failover path: one batch READs the record list, one
 * batch CASes every class (compare = the word the entries imply: X(inst,
 * epoch) or S{inst}, so the class words need no READ first - a wrong guess
 * returns the real word, and the retry uses it), and posted WRITEs clear the
 * used part of the list, left for the caller's next awaited operation on the
 * session to cover (it must await one before it relies on the list clear).
 */
static int release_instance(struct lkio io, const struct cf_image_map *map, uint32_t inst, uint32_t epoch,
			    const struct cf_rec_entry *pre, uint32_t npre, uint32_t *released)
{
	uint64_t size = map->records_size, base = cf_rec_off(map, inst);
	uint32_t n = map->geo.record_entries, done = 0, ncls = 0, nchunks, lo = UINT32_MAX, hi = 0;
	struct cf_rec_entry *ents = NULL;
	struct cf_batch_op *ops = NULL;
	uint64_t *cls = NULL, *word = NULL;
	uint32_t *which = NULL; /* batch op → class index */
	uint8_t *zero = NULL;
	int r = 0;

	if (inst >= map->geo.max_instances)
		return -EINVAL;
	if (pre && npre < n)
		n = npre; /* the span: no entry beyond it is in use */
	nchunks = (uint32_t)((size + READ_CHUNK - 1) / READ_CHUNK);
	ents = pre ? NULL : malloc(size);
	zero = calloc(1, READ_CHUNK);
	cls = malloc(n * sizeof(*cls));
	word = malloc(n * sizeof(*word));
	which = malloc(n * sizeof(*which));
	ops = calloc(n > nchunks ? n : nchunks, sizeof(*ops));
	if ((!pre && !ents) || !zero || !cls || !word || !which || !ops) {
		r = -ENOMEM;
		goto out_free;
	}
	if (!pre) {
		for (uint32_t c = 0; c < nchunks; c++) {
			uint64_t p = (uint64_t)c * READ_CHUNK;
			ops[c] = (struct cf_batch_op){.op = CF_OP_READ, .off = base + p, .buf = (uint8_t *)ents + p,
						      .len = (uint32_t)(size - p < READ_CHUNK ? size - p : READ_CHUNK)};
		}
		r = io_batch(io, ops, nchunks);
		for (uint32_t c = 0; !r && c < nchunks; c++)
			r = ops[c].status;
		if (r)
			goto out_free;
		pre = ents;
	}
	/*
	 * Distinct classes named by used, well-formed entries, each with the
	 * word its entries imply; [lo, hi] spans every entry in use.
	 */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t j;
		if (pre[i].used) {
			lo = lo < i ? lo : i;
			hi = i;
		}
		if (!pre[i].used || pre[i].used > 1u + CF_LOCK_X || pre[i].klass >= map->geo.lock_entries)
			continue; /* free, or malformed: names nothing we could release */
		for (j = 0; j < ncls && cls[j] != pre[i].klass; j++)
			;
		if (j == ncls) {
			cls[ncls++] = pre[i].klass;
			word[j] = CF_LOCK_SBIT | (1ull << inst);
		}
		if (pre[i].used == 1u + CF_LOCK_X)
			word[j] = cf_lock_x(inst, epoch);
	}
	/*
	 * One guess a class: the word its entries imply. A class with waiters
	 * queued at the CF has Q too, so its guess fails and returns the word,
	 * and the next round uses it: one round trip more, for the few
	 * recoveries that find a queued class. (Both guesses in every first round
	 * cost each recovery 3 us per class over tcp, 0.26-0.76 ms for 60-120
	 * classes, bench/RESULTS.md.)
	 */
	r = release_classes(io, map->off_locks, inst, cls, word, ncls, ops, which, &done, NULL);
	if (r)
		goto out_free;
	/* entries outside [lo, hi] are free already */
	for (uint64_t p = (uint64_t)lo * sizeof(*pre), end = (uint64_t)(hi + 1) * sizeof(*pre); lo <= hi && p < end;
	     p += READ_CHUNK) {
		uint32_t len = (uint32_t)(end - p < READ_CHUNK ? end - p : READ_CHUNK);
		r = io_write(io, base + p, zero, len, true);
		if (r)
			goto out_free;
	}
	/*
	 * No drain: a posted WRITE's bytes are copied when it is posted (both
	 * transports), and whatever the caller does next on the same session
	 * executes at the CF after these (RC order): the recovery's UNREG, a
	 * clean start's first lock or log operation. One round trip less on the
	 * failover path.
	 */
	if (released)
		*released = done;
out_free:
	free(ops);
	free(which);
	free(word);
	free(cls);
	free(zero);
	free(ents);
	return r;
}

int cf_lock_release_instance(struct cf_session *s, uint32_t inst, uint32_t epoch,
			     const struct cf_rec_entry *records, uint32_t nrecords, uint32_t *released)
{
	return release_instance((struct lkio){ .s = s }, &s->map, inst, epoch, records, nrecords, released);
}

int cf_lock_release_instance_mem(void *image, const struct cf_image_map *map, uint32_t inst, uint32_t epoch,
				 uint32_t *released)
{
	return release_instance((struct lkio){ .mem = image }, map, inst, epoch, NULL, 0, released);
}

/* The first n entries of inst's record list into out, in READ_CHUNK pieces: posted, or each awaited. */
static int records_read(struct cf_session *s, uint32_t inst, struct cf_rec_entry *out, uint32_t n, bool post)
{
	uint64_t size = (uint64_t)n * sizeof(*out), base = cf_rec_off(&s->map, inst);

	if (inst >= s->map.geo.max_instances || n > s->map.geo.record_entries)
		return -EINVAL;
	for (uint64_t p = 0; p < size; p += READ_CHUNK) {
		uint32_t len = (uint32_t)(size - p < READ_CHUNK ? size - p : READ_CHUNK);
		int r = post ? cf_session_post_read(s, base + p, (uint8_t *)out + p, len)
			     : cf_session_read(s, base + p, (uint8_t *)out + p, len);
		if (r)
			return r;
	}
	return 0;
}

int cf_lock_post_read_records(struct cf_session *s, uint32_t inst, struct cf_rec_entry *out, uint32_t n)
{
	return records_read(s, inst, out, n, true);
}

int cf_lock_read_records(struct cf_session *s, uint32_t inst, struct cf_rec_entry *out)
{
	return records_read(s, inst, out, s->map.geo.record_entries, false);
}
