/* SPDX-License-Identifier: MIT */
/* cf_txn.c - transactions (protocol in cf_txn.h). */
#include "cf_txn.h"
#include "cf_fault.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cf_session.h"
#include "cf_util.h"

#define DEFAULT_LOCK_TIMEOUT_MS 2000

const char *cf_txn_state_str(enum cf_txn_state st)
{
	switch (st) {
	case CF_TXN_IDLE: return "IDLE";
	case CF_TXN_OPEN: return "OPEN";
	case CF_TXN_COMMITTED: return "COMMITTED";
	case CF_TXN_ABORTED: return "ABORTED";
	}
	return "?";
}

/* The only transitions: IDLE → OPEN → COMMITTED | ABORTED. */
static void set_state(struct cf_txn *t, enum cf_txn_state to)
{
	assert((t->state == CF_TXN_IDLE && to == CF_TXN_OPEN) ||
	       (t->state == CF_TXN_OPEN && (to == CF_TXN_COMMITTED || to == CF_TXN_ABORTED)));
	t->state = to;
}

static void publish(struct cf_txn_ctx *c)
{
	if (!c->pub)
		return;
	atomic_store_explicit(&c->pub->log_used, cf_log_used(c->log), memory_order_relaxed);
	atomic_store_explicit(&c->pub->locks_held, c->locks->nheld, memory_order_relaxed);
	atomic_store_explicit(&c->pub->commits, c->commits, memory_order_relaxed);
	atomic_store_explicit(&c->pub->aborts, c->aborts, memory_order_relaxed);
	atomic_store_explicit(&c->pub->inflight, c->nopen, memory_order_relaxed);
}

static int lease(struct cf_txn_ctx *c)
{
	int r;

	/*
	 * The incarnation's own connection is gone: whatever the heartbeat
	 * thread has noticed yet, nothing is written on this node's view any
	 * more. The log (a recovery), or on a lone volatile CF the self-backout
	 * (which checks no lease), decides what the data holds.
	 */
	if (c->log && c->log->s && c->log->s->dead) {
		c->lease_refusals++;
		return c->log->s->dead;
	}
	if (!c->lease_check)
		return 0;
	r = c->lease_check(c->lease_arg);
	if (r)
		c->lease_refusals++;
	return r;
}

void cf_txn_ctx_init(struct cf_txn_ctx *c, struct cf_data *data, struct cf_log *log, struct cf_lock_table *locks,
		     uint32_t epoch)
{
	memset(c, 0, sizeof(*c));
	c->data = data;
	c->log = log;
	c->locks = locks;
	c->next_txid = ((uint64_t)epoch << 32) | 1u;
	c->lock_timeout_ms = DEFAULT_LOCK_TIMEOUT_MS;
}

void cf_txn_lock_name(char *buf, size_t cap, uint32_t file, uint64_t rec)
{
	snprintf(buf, cap, "f%u.r%llu", file, (unsigned long long)rec);
}

int cf_txn_begin(struct cf_txn_ctx *c, struct cf_txn *t)
{
	memset(t, 0, sizeof(*t));
	t->ctx = c;
	t->id = c->next_txid++;
	set_state(t, CF_TXN_OPEN);
	c->nopen++;
	publish(c);
	return 0;
}

int cf_txn_lock(struct cf_txn *t, uint32_t file, uint64_t rec, enum cf_lock_mode m, int timeout_ms,
		uint64_t *holder_txid)
{
	struct cf_txn_ctx *c = t->ctx;
	char name[CF_RES_NAME_MAX];
	uint32_t e;
	int r;

	if (t->state != CF_TXN_OPEN)
		return -EINVAL;
	cf_txn_lock_name(name, sizeof(name), file, rec);
	/* Already ours in a sufficient mode? (owner tag = txid) */
	if (cf_lock_owner_mode(c->locks, name, t->id) >= m)
		return 0;
	r = lease(c);
	if (r)
		return r;
	r = cf_lock_acquire(c->locks, name, m, t->id, timeout_ms < 0 ? c->lock_timeout_ms : timeout_ms, &e,
			    holder_txid);
	publish(c);
	return r;
}

/* Does t hold name in mode >= m? The lock table tracks names per owner. */
static bool holds(struct cf_txn *t, uint32_t file, uint64_t rec, enum cf_lock_mode m)
{
	char name[CF_RES_NAME_MAX];

	cf_txn_lock_name(name, sizeof(name), file, rec);
	return cf_lock_owner_mode(t->ctx->locks, name, t->id) >= m;
}

/* t keeps a write of this record: flush, so that the data holds what t wrote. */
static int flush_if_kept(struct cf_txn *t, const struct cf_data_file *f, uint32_t file, uint64_t rec)
{
	uint64_t off;

	if (!t->nkept || rec >= f->rec_count)
		return 0;
	off = cf_data_slot_off(f, rec);
	for (size_t i = 0; i < t->nupd; i++)
		if (t->upd[i].after && t->upd[i].file == file && t->upd[i].off == off)
			return cf_txn_flush(t->ctx);
	return 0;
}

int cf_txn_read(struct cf_txn *t, uint32_t file, uint64_t rec, void *payload)
{
	struct cf_data_file *f;
	int r;

	if (t->state != CF_TXN_OPEN)
		return -EINVAL;
	if (!holds(t, file, rec, CF_LOCK_S)) {
		r = cf_txn_lock(t, file, rec, CF_LOCK_S, -1, NULL);
		if (r)
			return r;
	}
	r = cf_data_file(t->ctx->data, file, &f);
	if (r)
		return r;
	r = flush_if_kept(t, f, file, rec);
	if (r)
		return r;
	return cf_data_read(t->ctx->data, f, rec, payload);
}

int cf_txn_update(struct cf_txn *t, uint32_t file, uint64_t rec, const void *payload)
{
	struct cf_txn_ctx *c = t->ctx;
	uint8_t slot[CF_DATA_SLOT_HDR + CF_DATA_MAX_REC_SIZE];
	struct cf_data_file *f;
	struct cf_txn_upd *u;
	uint32_t len;
	int r;

	if (t->state != CF_TXN_OPEN || file >= 64)
		return -EINVAL;
	if (!holds(t, file, rec, CF_LOCK_X)) {
		r = cf_txn_lock(t, file, rec, CF_LOCK_X, -1, NULL);
		if (r)
			return r;
	}
	r = cf_data_file(c->data, file, &f);
	if (r)
		return r;
	if (rec >= f->rec_count)
		return -ERANGE;
	r = flush_if_kept(t, f, file, rec); /* the before-image is what the data holds */
	if (r)
		return r;
	len = cf_data_slot_size(f);
	if (t->nupd == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 4;
		u = realloc(t->upd, cap * sizeof(*u));
		if (!u)
			return -ENOMEM;
		t->upd = u;
		t->cap = cap;
	}
	u = &t->upd[t->nupd];
	u->after = NULL;
	u->before = malloc(len);
	if (!u->before)
		return -ENOMEM;
	r = cf_data_read_slot(c->data, f, rec, u->before);
	if (r)
		goto err_free;
	u->file = file;
	u->len = len;
	u->off = cf_data_slot_off(f, rec);
	r = lease(c);
	if (r)
		goto err_free;
	if (!t->logged) {
		cf_log_pin(c->log, &t->pin);
		t->logged = true;
		/* group commit: every data write of t follows a write mark (cf_txn_flush) */
		r = cf_log_append(c->log, CF_LR_BEGIN, t->id, c->defer_writes ? CF_LR_BEGIN_MARKED : 0, 0, NULL, 0, 0,
				  NULL);
		if (r)
			goto err_free;
	}
	if (c->defer_writes) {
		/* group commit: posted now, awaited at the next flush, which writes the slot */
		u->after = malloc(len);
		if (!u->after) {
			r = -ENOMEM;
			goto err_free;
		}
		r = cf_log_append(c->log, CF_LR_UPDATE, t->id, file, u->off, u->before, len, 0, NULL);
		if (r) {
			if (r == -ENOSPC)
				c->log_full++;
			goto err_free;
		}
		t->nupd++;
		cf_data_make_slot(f, rec, payload, u->after);
		if (!t->nkept++) {
			t->next_deferred = c->deferred;
			c->deferred = t;
		}
		publish(c);
		return 0;
	}
	/* Write-ahead: the before-image is at the CF before the data write. */
	r = cf_log_append(c->log, CF_LR_UPDATE, t->id, file, u->off, u->before, len, CF_LOG_WAIT, NULL);
	if (r) {
		if (r == -ENOSPC)
			c->log_full++;
		goto err_free;
	}
	t->nupd++; /* from here on backout restores it, whether the pwrite lands or not */
	CF_FAULT("txn.after_undo");
	r = lease(c);
	if (r)
		goto out;
	/* a freeze here is what no lease survives: the disk fence must stop it */
	CF_FAULT("txn.after_lease_check");
	cf_data_make_slot(f, rec, payload, slot);
	r = cf_data_pwrite(c->data, file, u->off, slot, len);
	if (r)
		goto out;
	CF_FAULT("txn.after_data_write");
	t->touched |= 1ull << file;
out:
	publish(c);
	return r;
err_free:
	free(u->before);
	free(u->after);
	u->before = u->after = NULL;
	publish(c);
	return r;
}

/* Forget t's kept writes (they never reach the data): t is backed out or freed. */
static void drop_kept(struct cf_txn *t)
{
	struct cf_txn_ctx *c = t->ctx;

	if (!c || !t->nkept)
		return;
	for (struct cf_txn **p = &c->deferred; *p; p = &(*p)->next_deferred) {
		if (*p == t) {
			*p = t->next_deferred;
			break;
		}
	}
	for (size_t i = 0; i < t->nupd; i++) {
		free(t->upd[i].after);
		t->upd[i].after = NULL;
	}
	t->nkept = 0;
	t->next_deferred = NULL;
}

int cf_txn_flush(struct cf_txn_ctx *c)
{
	int r;

	if (!c->deferred)
		return 0;
	/*
	 * The write mark first: an UPDATE with no mark after it was never written
	 * to the data, and its recovery writes nothing back for it (cf_logrec.h).
	 * Posted: the flush below completes it, as the before-images.
	 */
	r = cf_log_mark(c->log);
	if (r)
		return r;
	/* Write-ahead: every kept slot's before-image is at the CF (durable there) first. */
	r = cf_log_flush(c->log);
	if (r)
		return r;
	c->flushes++;
	CF_FAULT("txn.after_undo");
	while (c->deferred) {
		struct cf_txn *t = c->deferred;
		for (size_t i = 0; i < t->nupd; i++) {
			struct cf_txn_upd *u = &t->upd[i];
			if (!u->after)
				continue;
			r = lease(c);
			if (r)
				goto out;
			/* a freeze here is what no lease survives: the disk fence must stop it */
			CF_FAULT("txn.after_lease_check");
			r = cf_data_pwrite(c->data, u->file, u->off, u->after, u->len);
			if (r)
				goto out;
			CF_FAULT("txn.after_data_write");
			t->touched |= 1ull << u->file;
			free(u->after);
			u->after = NULL;
			t->nkept--;
			c->deferred_writes++;
		}
		c->deferred = t->next_deferred;
		t->next_deferred = NULL;
	}
out:
	publish(c);
	return r;
}

static int sync_files(struct cf_txn_ctx *c, uint64_t mask)
{
	for (uint32_t i = 0; i < 64; i++) {
		struct cf_data_file *f;
		int r;
		if (!(mask & (1ull << i)))
			continue;
		r = cf_data_file(c->data, i, &f);
		if (!r)
			r = cf_data_sync(c->data, f);
		if (r)
			return r;
	}
	return 0;
}

static int sync_touched(struct cf_txn *t)
{
	return sync_files(t->ctx, t->touched);
}

/*
 * The end of open transactions: their COMMITs (or ABORTs) posted and awaited
 * once - the commit point - then, one by one, locks released and END posted.
 * A transaction whose terminal record was acknowledged before (a retry after
 * a failed release) is not logged again.
 */
static int finish_group(struct cf_txn *const *ts, size_t n, enum cf_logrec_type type)
{
	struct cf_txn_ctx *c = ts[0]->ctx;
	size_t nlog = 0;
	int r;

	for (size_t i = 0; i < n; i++) {
		struct cf_txn *t = ts[i];
		if (t->state != CF_TXN_OPEN || !t->logged || t->terminal)
			continue;
		if (!nlog++ && (r = lease(c)))
			return r;
		/* from here on the CF may have it, whatever this call returns */
		if (t->posted != CF_LR_COMMIT)
			t->posted = type;
		r = cf_log_append(c->log, type, t->id, 0, 0, NULL, 0, CF_LOG_TERMINAL, NULL);
		if (r)
			return r;
	}
	if (nlog) {
		/* COMMIT: the commit point. ABORT: the before-images are synced. */
		r = cf_log_flush(c->log);
		/* the CF executed them and the answer was lost with the connection: in doubt */
		if (!r && CF_FAULT_FAILS("txn.commit_unanswered"))
			r = -EPIPE;
		if (r)
			return r;
		for (size_t i = 0; i < n; i++)
			if (ts[i]->state == CF_TXN_OPEN && ts[i]->logged)
				ts[i]->terminal = type;
		if (type == CF_LR_COMMIT)
			CF_FAULT("txn.after_commit");
	}
	CF_FAULT("txn.before_release");
	for (size_t i = 0; i < n; i++) {
		struct cf_txn *t = ts[i];
		if (t->state != CF_TXN_OPEN)
			continue;
		r = cf_lock_release_owner(c->locks, t->id);
		if (r)
			return r;
		if (t->logged) {
			r = cf_log_append(c->log, CF_LR_END, t->id, 0, 0, NULL, 0, CF_LOG_TERMINAL, NULL);
			if (r)
				return r;
			cf_log_unpin(c->log, &t->pin);
		}
		set_state(t, type == CF_LR_COMMIT ? CF_TXN_COMMITTED : CF_TXN_ABORTED);
		c->nopen--;
		if (type == CF_LR_COMMIT)
			c->commits++;
		else
			c->aborts++;
	}
	publish(c);
	return 0;
}

int cf_txn_commit_group(struct cf_txn *const *ts, size_t n)
{
	struct cf_txn_ctx *c;
	uint64_t mask = 0;
	int r;

	if (!n)
		return 0;
	c = ts[0]->ctx;
	for (size_t i = 0; i < n; i++) {
		if (ts[i]->ctx != c || (ts[i]->state != CF_TXN_OPEN && ts[i]->state != CF_TXN_COMMITTED))
			return -EINVAL;
		if (ts[i]->state == CF_TXN_OPEN && ts[i]->terminal == CF_LR_ABORT)
			return -EINVAL;
	}
	r = cf_txn_flush(c);
	if (r)
		return r;
	for (size_t i = 0; i < n; i++)
		if (ts[i]->state == CF_TXN_OPEN && !ts[i]->terminal)
			mask |= ts[i]->touched;
	r = sync_files(c, mask);
	if (r)
		return r;
	CF_FAULT("txn.after_fsync");
	return finish_group(ts, n, CF_LR_COMMIT);
}

int cf_txn_commit(struct cf_txn *t)
{
	if (t->state != CF_TXN_OPEN)
		return -EINVAL;
	return cf_txn_commit_group(&t, 1);
}

/* t's before-images written back, newest first, then the touched files synced. */
static int restore_before_images(struct cf_txn *t, bool check_lease)
{
	struct cf_txn_ctx *c = t->ctx;
	int r;

	for (size_t i = t->nupd; i-- > 0;) {
		const struct cf_txn_upd *u = &t->upd[i];
		if (check_lease && (r = lease(c)))
			return r;
		r = cf_data_pwrite(c->data, u->file, u->off, u->before, u->len);
		if (r)
			return r;
		t->touched |= 1ull << u->file;
	}
	return sync_touched(t);
}

int cf_txn_backout(struct cf_txn *t)
{
	int r;

	if (t->state != CF_TXN_OPEN)
		return -EINVAL;
	if (t->terminal == CF_LR_COMMIT)
		return -EALREADY; /* committed: its release failed, nothing to undo */
	if (t->posted == CF_LR_COMMIT)
		return -EINPROGRESS; /* in doubt: the log decides, never this node */
	drop_kept(t); /* never written: their before-images are what the data holds */
	if (!t->terminal) {
		/* once the ABORT is acknowledged, locks go one by one: never write again */
		r = restore_before_images(t, true);
		if (r)
			return r;
	}
	return finish_group(&t, 1, CF_LR_ABORT);
}

int cf_txn_self_backout(struct cf_txn *t)
{
	struct cf_txn_ctx *c = t->ctx;
	int r;

	if (t->state != CF_TXN_OPEN)
		return 0;
	if (t->posted == CF_LR_COMMIT && t->terminal != CF_LR_COMMIT && c->log_survives) {
		if (!t->left_in_doubt) {
			t->left_in_doubt = true;
			c->in_doubt++;
		}
		return -EINPROGRESS; /* in doubt, and the log that decides it outlives us */
	}
	drop_kept(t);
	if (!t->terminal && c->self_backout_check && (r = c->self_backout_check(c->lease_arg)))
		return r;
	if (!t->terminal) {
		/* the CF is gone: no lease to check (self_backout_check decided) */
		r = restore_before_images(t, false);
		if (r)
			return r;
	}
	if (t->terminal == CF_LR_COMMIT) {
		set_state(t, CF_TXN_COMMITTED);
		c->commits++;
	} else {
		set_state(t, CF_TXN_ABORTED);
		c->aborts++;
		if (!t->terminal)
			c->self_backouts++;
	}
	c->nopen--;
	publish(c);
	return 0;
}

int cf_txn_backout_apply(struct cf_data *d, const struct cf_log_scan *sc, int (*lease_fn)(void *), void *lease_arg,
			  uint64_t *nupd, uint64_t *nunwritten)
{
	struct cf_log_rec *v = NULL;
	size_t n = 0, skipped = 0;
	int r;

	/* only what may have reached the data: writing the rest back would change nothing but cost the sync */
	r = cf_log_scan_written(sc, &v, &n, &skipped);
	if (r)
		return r;
	for (size_t i = 0; i < n; i++) {
		/* a counterpart that froze and was declared failed must not write */
		if (lease_fn && (r = lease_fn(lease_arg)))
			goto out;
		r = cf_data_pwrite(d, v[i].h.file, v[i].h.offset, v[i].image, v[i].h.length);
		if (r)
			goto out;
		CF_FAULT("rec.mid_backout");
	}
	if (nupd)
		*nupd = n;
	if (nunwritten)
		*nunwritten = skipped;
out:
	free(v);
	return r;
}

int cf_txn_backout_close(struct cf_log *log, const struct cf_log_scan *sc, int (*lease_fn)(void *), void *lease_arg,
			 uint32_t *ntx)
{
	uint64_t *txids;
	size_t ntxids = 0;
	int r;

	/* the in-flight transactions (also those with no UPDATE): what the close ends */
	r = cf_log_scan_open_txids(sc, &txids, &ntxids);
	if (r)
		return r;
	free(txids);
	/* a counterpart that froze and was declared failed must not write */
	if (lease_fn && (r = lease_fn(lease_arg)))
		return r;
	/*
	 * An empty log, durable before the caller releases a lock: no ABORT/END
	 * records (they took a flush of their own and a reset after the release,
	 * one round trip more on the failover path than this), and what the
	 * attach found, a COMMIT included, is final as it is.
	 */
	r = cf_log_close_durable(log);
	if (!r && ntx)
		*ntx = (uint32_t)ntxids;
	return r;
}

int cf_txn_backout_scan(struct cf_data *d, struct cf_log *log, const struct cf_log_scan *sc,
			 int (*lease_fn)(void *), void *lease_arg, uint32_t *ntx)
{
	int r = cf_txn_backout_apply(d, sc, lease_fn, lease_arg, NULL, NULL);

	/* the files written to (none when nothing was written back) */
	if (!r)
		r = cf_data_sync_all(d);
	if (!r)
		r = cf_txn_backout_close(log, sc, lease_fn, lease_arg, ntx);
	return r;
}

int cf_txn_lease_wait(struct cf_txn_ctx *c, int timeout_ms)
{
	uint64_t t0 = cf_mono_ns();
	struct timespec ms = { 0, 1000000L };
	int r;

	if (!c->lease_check)
		return 0;
	while ((r = c->lease_check(c->lease_arg)) == -ENOLINK) {
		if (cf_mono_ns() - t0 >= (uint64_t)timeout_ms * 1000000ull)
			break;
		nanosleep(&ms, NULL);
	}
	return r;
}

void cf_txn_free(struct cf_txn *t)
{
	if (!t)
		return;
	drop_kept(t);
	for (size_t i = 0; i < t->nupd; i++)
		free(t->upd[i].before);
	free(t->upd);
	t->upd = NULL;
	t->nupd = t->cap = 0;
}
