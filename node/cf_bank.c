/* SPDX-License-Identifier: MIT */
/* cf_bank.c - built-in workloads and bank data tools (see cf_bank.h). */
#include "cf_bank.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cf_session.h"
#include "cf_util.h"

#define JOURNAL_SYNC_EVERY 64u
#define CAS_PROBES 2000u

struct slot {
	struct cf_txn t;
	uint64_t from, to;
	int64_t amount;
	bool open;
};

struct bank {
	struct cf_txn_ctx *c;
	const struct cf_bank_opts *o;
	struct cf_bank_result *res;
	struct slot *q; /* ring of K open transactions, oldest at head */
	struct cf_txn **ts; /* K: a commit group */
	uint32_t k, head, n;
	uint64_t rng;
	struct cf_data_file *f;
	int journal_fd; /* -1: no journal */
	int journal_err; /* the journal failed: fatal for the run, and not "log full" */
	uint32_t unsynced;
	uint64_t naccts;
	uint64_t next_ns; /* --rate: the earliest begin of the next transaction */
};

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/*
 * The journal of committed transfers (for the fault suite's exact check):
 * one write(2) per line on an O_APPEND fd, so a killed writer loses no line
 * it wrote and no line is ever written twice by stdio buffers at exit. An
 * intent line "P txid from to amount" precedes the commit, a line
 * "txid from to amount" follows it; fdatasync every JOURNAL_SYNC_EVERY lines.
 * Each line is written whole before the next (a killed writer loses no line
 * it wrote); "I INDEX IMAGE" opens every run.
 */
static int journal_write(struct bank *b, const char *line, int n)
{
	for (int done = 0; done < n;) {
		ssize_t w = write(b->journal_fd, line + done, (size_t)(n - done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) /* a short write at the edge of a full disk: the retry names ENOSPC */
			return b->journal_err = w < 0 ? -errno : -EIO;
		done += (int)w;
	}
	return 0;
}

static int journal_line(struct bank *b, const char *prefix, const struct slot *sl)
{
	char line[128];
	int n;

	if (b->journal_fd < 0)
		return 0;
	n = snprintf(line, sizeof(line), "%s%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64 "\n", prefix, sl->t.id,
		     sl->from, sl->to, sl->amount);
	return journal_write(b, line, n);
}

/* "I INDEX IMAGE": whose transactions follow (a recovery journal names the instance by its index) */
static int journal_start(struct bank *b)
{
	char line[96];
	int n = snprintf(line, sizeof(line), "I %u %s\n", b->c->log->inst, b->o->image ? b->o->image : "-");

	return journal_write(b, line, n);
}

static int journal_sync(struct bank *b)
{
	if (b->journal_fd < 0 || !b->unsynced)
		return 0;
	if (fdatasync(b->journal_fd))
		return b->journal_err = -errno;
	b->unsynced = 0;
	return 0;
}

/* A lapsed lease comes back with the next heartbeat; wait for it at most this long. */
#define LEASE_WAIT_MS 5000

/*
 * Commit the n oldest open transactions as one group (cf_txn_commit_group):
 * intent lines first, then one commit point for all, then a line for each
 * one committed. Retired from the head of the ring as far as committed.
 */
static int commit_n(struct bank *b, uint32_t n)
{
	int r, rj = 0;

	if (n > b->n)
		n = b->n;
	if (!n)
		return 0;
	for (uint32_t i = 0; i < n; i++) {
		struct slot *sl = &b->q[(b->head + i) % b->k];
		b->ts[i] = &sl->t;
		rj = journal_line(b, "P ", sl);
		if (rj)
			return rj;
	}
	uint64_t t0 = cf_mono_ns();
	while ((r = cf_txn_commit_group(b->ts, n)) == -ENOLINK) {
		b->res->lease_waits++;
		r = cf_txn_lease_wait(b->c, LEASE_WAIT_MS);
		if (r)
			break;
	}
	if (!r) {
		cf_lock_hist_add(&b->res->commit_lat, cf_mono_ns() - t0);
		b->res->commit_points++;
		if (n > 1)
			b->res->group_commits++;
	}
	/* committed: each slot is done whatever the journal says next */
	for (uint32_t i = 0; i < n; i++) {
		struct slot *sl = &b->q[(b->head + i) % b->k];
		if (!sl->open || sl->t.state != CF_TXN_COMMITTED)
			continue;
		b->res->commits++;
		if (!rj) {
			rj = journal_line(b, "", sl);
			if (!rj && ++b->unsynced >= JOURNAL_SYNC_EVERY)
				rj = journal_sync(b);
		}
		cf_txn_free(&sl->t);
		sl->open = false;
	}
	while (b->n && !b->q[b->head].open) {
		b->head = (b->head + 1) % b->k;
		b->n--;
	}
	return r ? r : rj;
}

/* Commit the oldest open transaction, or with group commit every open one. */
static int commit_oldest(struct bank *b)
{
	return commit_n(b, b->o->group_commit ? b->n : 1);
}

static int commit_all(struct bank *b)
{
	return commit_n(b, b->n);
}

/* Commit from the oldest up to and including the one with txid. */
static int commit_through(struct bank *b, uint64_t txid)
{
	for (uint32_t i = 0; i < b->n; i++)
		if (b->q[(b->head + i) % b->k].t.id == txid)
			return commit_n(b, i + 1);
	return commit_all(b);
}

static int backout_cur(struct bank *b, struct slot *sl)
{
	int r;

	while ((r = cf_txn_backout(&sl->t)) == -ENOLINK) {
		b->res->lease_waits++;
		r = cf_txn_lease_wait(b->c, LEASE_WAIT_MS);
		if (r)
			break;
	}
	/*
	 * The backout through the CF failed: the incarnation is over. On a
	 * volatile CF nobody else can back this transaction out (its log dies
	 * with the CF), so this thread, which owns it, does it now from the
	 * before-images in memory, before they are freed. r stays the error:
	 * the run ends.
	 */
	if (r && b->c->self_backout && cf_txn_self_backout(&sl->t) == 0)
		b->res->self_backouts++;
	cf_txn_free(&sl->t);
	sl->open = false;
	if (r)
		return r;
	b->res->aborts++;
	return 0;
}

static int lock_acct(struct bank *b, struct slot *sl, uint64_t acct)
{
	uint64_t holder;
	int r;

	for (;;) {
		r = cf_txn_lock(&sl->t, CF_BANK_FILE, acct, CF_LOCK_X, 0, &holder);
		if (r == -EALREADY) {
			b->res->self_waits++;
			r = commit_through(b, holder);
			if (r)
				return r;
			continue;
		}
		if (r == -EBUSY) {
			/* Another instance holds it: hold nothing but this transaction's locks, then wait. */
			b->res->busy_waits++;
			r = commit_all(b);
			if (r)
				return r;
			r = cf_txn_lock(&sl->t, CF_BANK_FILE, acct, CF_LOCK_X, -1, &holder);
		}
		return r;
	}
}

/*
 * Lock order: by lock class, then by account id. Ordering by id alone is not
 * enough: two accounts of one class are one lock word, so A holding class(1)
 * waiting for class(2) and B holding class(2) via account 0 waiting for
 * class(1) via account 3 would be a deadlock through false contention. One
 * total order on classes, shared by every instance, makes waits acyclic.
 */
static bool lock_before(const struct bank *b, uint64_t x, uint64_t y)
{
	char nx[CF_RES_NAME_MAX], ny[CF_RES_NAME_MAX];
	uint32_t cx, cy;

	cf_txn_lock_name(nx, sizeof(nx), CF_BANK_FILE, x);
	cf_txn_lock_name(ny, sizeof(ny), CF_BANK_FILE, y);
	cx = cf_lock_class(nx, b->c->locks->lock_entries);
	cy = cf_lock_class(ny, b->c->locks->lock_entries);
	return cx != cy ? cx < cy : x < y;
}

static bool done(struct bank *b, uint64_t t0)
{
	if (b->o->stop && atomic_load(b->o->stop))
		return true;
	if (b->o->txns)
		return b->res->commits + b->res->aborts + b->n >= b->o->txns;
	return (double)(cf_mono_ns() - t0) / 1e9 >= b->o->duration_s;
}

/*
 * --rate: sleep until the next transaction's turn. A late begin moves the
 * schedule (no burst to catch up): a paced run is a steady load, such as
 * a test under CPU emulation wants, where a closed loop at full speed takes
 * the CPUs the processes it tests need. Open transactions keep their locks
 * across the sleep, as a slow application's do.
 */
static void pace(struct bank *b)
{
	uint64_t now = cf_mono_ns();

	while (b->next_ns > now) {
		uint64_t d = b->next_ns - now;
		struct timespec ts = {.tv_sec = (time_t)(d / 1000000000u), .tv_nsec = (long)(d % 1000000000u)};
		(void)nanosleep(&ts, NULL); /* EINTR: look again */
		now = cf_mono_ns();
	}
	b->next_ns = now + 1000000000u / b->o->rate;
}

static void cas_probe(struct cf_session *s, struct cf_lock_hist *h)
{
	/* A CAS that never matches changes nothing: a pure atomic round trip. */
	uint64_t off = cf_lock_off(&s->map, cf_lock_class("cfplex.cas-probe", s->map.geo.lock_entries)), old;

	for (uint32_t i = 0; i < CAS_PROBES + 100; i++) {
		uint64_t t0 = cf_mono_ns();
		if (cf_session_cas(s, off, 0xfffffffffffffffeull, 0xfffffffffffffffeull, &old))
			return;
		if (i >= 100)
			cf_lock_hist_add(h, cf_mono_ns() - t0);
	}
}

int cf_bank_run(struct cf_txn_ctx *c, struct cf_session *s, const struct cf_bank_opts *o, struct cf_bank_result *res)
{
	struct bank b = { .c = c, .o = o, .res = res, .journal_fd = -1 };
	uint64_t t0;
	int r;

	memset(res, 0, sizeof(*res));
	b.k = o->inflight ? o->inflight : 1;
	b.rng = o->seed ? o->seed : (cf_mono_ns() ^ (uint64_t)getpid() << 20);
	if (!b.rng)
		b.rng = 1;
	r = cf_data_file(c->data, CF_BANK_FILE, &b.f);
	if (r)
		return r;
	if (b.f->rec_size != CF_BANK_REC_SIZE || b.f->rec_count < 2 || o->accounts == 1 ||
	    o->accounts > b.f->rec_count)
		return -EINVAL;
	b.naccts = o->accounts ? o->accounts : b.f->rec_count;
	b.q = calloc(b.k, sizeof(*b.q));
	b.ts = calloc(b.k, sizeof(*b.ts));
	if (!b.q || !b.ts) {
		r = -ENOMEM;
		goto out_free;
	}
	if (o->journal) {
		b.journal_fd = open(o->journal, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (b.journal_fd < 0) {
			r = -errno;
			goto out_free;
		}
		r = journal_start(&b);
		if (r) {
			close(b.journal_fd);
			goto out_free;
		}
	}
	if (s)
		cas_probe(s, &res->cas_rtt);
	t0 = cf_mono_ns();
run:
	while (!done(&b, t0)) {
		struct slot *sl;
		uint64_t x, y;

		if (o->rate) {
			pace(&b);
			if (done(&b, t0))
				break;
		}
		sl = &b.q[(b.head + b.n) % b.k];
		x = rnd(&b.rng) % b.naccts;
		y = rnd(&b.rng) % (b.naccts - 1);
		int64_t amount = 1 + (int64_t)(rnd(&b.rng) % (uint64_t)(o->max_amount > 0 ? o->max_amount : 100));
		int64_t bx, by;

		if (y >= x)
			y++;
		sl->from = x;
		sl->to = y;
		sl->amount = amount;
		cf_txn_begin(c, &sl->t);
		sl->open = true;
		{
			bool xfirst = lock_before(&b, x, y);
			r = lock_acct(&b, sl, xfirst ? x : y);
			if (!r)
				r = lock_acct(&b, sl, xfirst ? y : x);
		}
		if (!r)
			r = cf_txn_read(&sl->t, CF_BANK_FILE, x, &bx);
		if (!r)
			r = cf_txn_read(&sl->t, CF_BANK_FILE, y, &by);
		if (!r) {
			bx -= amount;
			by += amount;
			r = cf_txn_update(&sl->t, CF_BANK_FILE, x, &bx);
		}
		if (!r)
			r = cf_txn_update(&sl->t, CF_BANK_FILE, y, &by);
		/* -ETIMEDOUT: a lock wait that timed out, unless the session died of a timeout (the CF's loss) */
		if (!b.journal_err && ((r == -ETIMEDOUT && !(s && s->dead)) || r == -ENOSPC || r == -ENOLINK)) {
			if (r == -ETIMEDOUT)
				res->timeouts++;
			else if (r == -ENOSPC)
				res->log_full++;
			else
				res->lease_aborts++;
			r = backout_cur(&b, sl);
			if (!r)
				r = commit_all(&b); /* frees log space and locks */
			if (r)
				break;
			continue;
		}
		if (r) {
			/* fatal for this run (lease, connection, corrupt data, journal): back out, report */
			(void)backout_cur(&b, sl);
			break;
		}
		b.n++;
		if (b.n == b.k && (r = commit_oldest(&b)))
			break;
	}
	if (!r)
		r = commit_all(&b);
	/*
	 * A fatal error leaves up to K-1 transactions open with their locks: back
	 * them out, newest first. What cannot be backed out stays open, and the
	 * caller must then not leave the cluster cleanly (a peer recovers it).
	 */
	for (uint32_t i = b.n; r && i > 0; i--) {
		struct slot *open_sl = &b.q[(b.head + i - 1) % b.k];
		if (open_sl->open && backout_cur(&b, open_sl) == 0)
			b.n--;
	}
	/*
	 * The CF was lost: every slot is closed now (backout_cur frees what it
	 * could not back out: the log decides it). If the system switches to
	 * another CF, go on: the context was set up again under us (its data
	 * files too), and the journal says where this part starts.
	 */
	if (r && !b.journal_err && o->cf_lost && o->cf_lost(o->cf_lost_arg, r) == 0) {
		b.head = b.n = 0;
		res->cf_switches++;
		r = cf_data_file(c->data, CF_BANK_FILE, &b.f);
		if (!r && b.journal_fd >= 0)
			r = journal_start(&b);
		if (!r)
			goto run;
	}
	res->elapsed_s = (double)(cf_mono_ns() - t0) / 1e9;
	if (!r)
		r = cf_log_advance_head(c->log); /* nothing pinned: the log is empty at the CF */
	{
		int rj = journal_sync(&b);
		if (!r)
			r = rj;
	}
	res->lock = c->locks->st;
	res->err = r;
	if (b.journal_fd >= 0)
		close(b.journal_fd);
out_free:
	for (uint32_t i = 0; b.q && i < b.k; i++)
		cf_txn_free(&b.q[i].t);
	free(b.q);
	free(b.ts);
	return r;
}

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

void cf_bank_print(FILE *out, const char *who, const struct cf_bank_result *res, bool json)
{
	const struct cf_lock_hist *h = &res->lock.lat, *c = &res->cas_rtt, *cl = &res->commit_lat;
	double tps = res->elapsed_s > 0 ? (double)res->commits / res->elapsed_s : 0;

	if (json) {
		fprintf(out, "{\"commit_us\":{\"n\":%" PRIu64 ",\"p50\":%.1f,\"p99\":%.1f},", cl->n,
			us(cf_lock_hist_pct(cl, 50)), us(cf_lock_hist_pct(cl, 99)));
		fprintf(out,
			"\"who\":\"%s\",\"commits\":%" PRIu64 ",\"aborts\":%" PRIu64 ",\"lock_timeouts\":%" PRIu64
			",\"log_full\":%" PRIu64 ",\"lease_aborts\":%" PRIu64 ",\"commit_points\":%" PRIu64
			",\"cf_switches\":%" PRIu64 ",\"elapsed_s\":%.3f,\"txn_per_s\":%.1f,"
			"\"lock_acquire_us\":{\"n\":%" PRIu64 ",\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"max\":%.1f},"
			"\"cas_rtt_us\":{\"n\":%" PRIu64 ",\"p50\":%.1f,\"p99\":%.1f},"
			"\"locks\":{\"acquires\":%" PRIu64 ",\"cas\":%" PRIu64 ",\"shared_self\":%" PRIu64
			",\"contended\":%" PRIu64 ",\"self_conflicts\":%" PRIu64 ",\"queued\":%" PRIu64
			",\"handed\":%" PRIu64 ",\"polls\":%" PRIu64 ",\"kicks\":%" PRIu64 "},\"error\":%d}\n",
			who, res->commits, res->aborts, res->timeouts, res->log_full, res->lease_aborts, res->commit_points,
			res->cf_switches, res->elapsed_s, tps,
			h->n,
			us(cf_lock_hist_pct(h, 50)), us(cf_lock_hist_pct(h, 90)), us(cf_lock_hist_pct(h, 99)), us(h->max),
			c->n, us(cf_lock_hist_pct(c, 50)), us(cf_lock_hist_pct(c, 99)), res->lock.acquires,
			res->lock.cas_acquires, res->lock.shared_self, res->lock.contended, res->lock.self_conflicts,
			res->lock.queued, res->lock.handed, res->lock.polls, res->lock.kicks, res->err);
		return;
	}
	fprintf(out, "bank %s: %" PRIu64 " transactions committed in %.2f s = %.1f txn/s; %" PRIu64
		     " aborted (%" PRIu64 " lock timeouts, %" PRIu64 " log full, %" PRIu64 " lease lapses)\n",
		who, res->commits, res->elapsed_s, tps, res->aborts, res->timeouts, res->log_full, res->lease_aborts);
	if (res->cf_switches)
		fprintf(out, "  went on across %" PRIu64 " switch(es) of CF (this incarnation kept)\n", res->cf_switches);
	fprintf(out, "  lock acquire (n=%" PRIu64 "): p50 %.1f us  p90 %.1f us  p99 %.1f us  max %.1f us\n", h->n,
		us(cf_lock_hist_pct(h, 50)), us(cf_lock_hist_pct(h, 90)), us(cf_lock_hist_pct(h, 99)), us(h->max));
	if (c->n)
		fprintf(out, "  raw CAS round trip (n=%" PRIu64 "): p50 %.1f us  p99 %.1f us\n", c->n,
			us(cf_lock_hist_pct(c, 50)), us(cf_lock_hist_pct(c, 99)));
	fprintf(out, "  locks: %" PRIu64 " class CASes, %" PRIu64 " on own class holds, %" PRIu64
		     " found the class held by another instance, %" PRIu64 " waits on own transactions\n",
		res->lock.cas_acquires, res->lock.shared_self, res->lock.contended, res->lock.self_conflicts);
	if (res->lock.queued || res->lock.polls)
		fprintf(out, "  lock hand-off: %" PRIu64 " waits queued at the CF, %" PRIu64 " handed over, %" PRIu64
			     " lock-word polls, %" PRIu64 " releases told to the CF\n",
			res->lock.queued, res->lock.handed, res->lock.polls, res->lock.kicks);
}

/* ---------------- test workloads ---------------- */

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

int cf_bank_hold(struct cf_txn_ctx *c, const struct cf_bank_opts *o, FILE *out)
{
	struct cf_txn t;
	uint64_t t0;
	int r;

	cf_txn_begin(c, &t);
	r = cf_txn_lock(&t, CF_BANK_FILE, o->record, CF_LOCK_X, -1, NULL);
	if (r) {
		fprintf(out, "hold: lock f0.r%" PRIu64 ": %s\n", o->record, strerror(-r));
		(void)cf_txn_backout(&t);
		cf_txn_free(&t);
		return r;
	}
	fprintf(out, "holding f0.r%" PRIu64 "\n", o->record);
	fflush(out);
	t0 = cf_mono_ns();
	while (cf_mono_ns() - t0 < (uint64_t)o->hold_ms * 1000000ull && !(o->stop && atomic_load(o->stop)))
		sleep_ms(5);
	r = cf_txn_commit(&t);
	cf_txn_free(&t);
	fprintf(out, "released f0.r%" PRIu64 "\n", o->record);
	return r;
}

int cf_bank_lock(struct cf_txn_ctx *c, const struct cf_bank_opts *o, FILE *out)
{
	struct cf_txn t;
	uint64_t t0 = cf_mono_ns();
	int r;

	cf_txn_begin(c, &t);
	r = cf_txn_lock(&t, CF_BANK_FILE, o->record, CF_LOCK_X, -1, NULL);
	if (r == -ETIMEDOUT)
		fprintf(out, "lock f0.r%" PRIu64 ": timed out after %.0f ms (-ETIMEDOUT); transaction backed out\n",
			o->record, (double)(cf_mono_ns() - t0) / 1e6);
	else if (r)
		fprintf(out, "lock f0.r%" PRIu64 ": %s\n", o->record, strerror(-r));
	else
		fprintf(out, "lock f0.r%" PRIu64 ": acquired in %.3f ms\n", o->record, (double)(cf_mono_ns() - t0) / 1e6);
	if (r) {
		int rb = cf_txn_backout(&t);
		if (rb)
			r = rb;
	} else {
		r = cf_txn_commit(&t);
	}
	cf_txn_free(&t);
	return r;
}

/* Snapshot raw slots of records [0, n) */
static int snapshot(struct cf_txn_ctx *c, struct cf_data_file *f, uint64_t n, uint8_t *buf)
{
	uint32_t ss = cf_data_slot_size(f);

	for (uint64_t i = 0; i < n; i++) {
		int r = cf_data_read_slot(c->data, f, i, buf + i * ss);
		if (r)
			return r;
	}
	return 0;
}

/*
 * The bank file, its first *n records (at most max) snapshotted into *before,
 * and room for a second snapshot in *after (both freed by the caller, also on
 * an error).
 */
static int snapshot_first(struct cf_txn_ctx *c, uint64_t max, struct cf_data_file **f, uint64_t *n, uint8_t **before,
			  uint8_t **after)
{
	int r = cf_data_file(c->data, CF_BANK_FILE, f);

	if (r)
		return r;
	*n = (*f)->rec_count < max ? (*f)->rec_count : max;
	*before = malloc(*n * cf_data_slot_size(*f));
	*after = malloc(*n * cf_data_slot_size(*f));
	if (!*before || !*after)
		return -ENOMEM;
	return snapshot(c, *f, *n, *before);
}

/*
 * Back t out (and free it), then compare every record with its before-image.
 * What goes wrong is said on out as "WHAT: ...". 0, -EDOM when records
 * differ, or the error.
 */
static int backout_check(struct cf_txn_ctx *c, struct cf_txn *t, struct cf_data_file *f, uint64_t n,
			 const uint8_t *before, uint8_t *after, FILE *out, const char *what)
{
	uint32_t ss = cf_data_slot_size(f);
	uint64_t bad = 0;
	int r = cf_txn_backout(t);

	cf_txn_free(t);
	if (r == 0)
		r = snapshot(c, f, n, after);
	if (r) {
		fprintf(out, "%s: backout failed: %s\n", what, strerror(-r));
		return r;
	}
	for (uint64_t i = 0; i < n; i++)
		if (memcmp(before + i * ss, after + i * ss, ss))
			bad++;
	if (bad) {
		fprintf(out, "%s: %" PRIu64 " of %" PRIu64 " records differ from their before-images\n", what, bad, n);
		return -EDOM;
	}
	return 0;
}

int cf_bank_backout(struct cf_txn_ctx *c, const struct cf_bank_opts *o, FILE *out)
{
	struct cf_data_file *f;
	struct cf_txn t;
	uint64_t n, rng = o->seed ? o->seed : 42;
	uint32_t updates = o->updates ? o->updates : 16;
	uint8_t *before = NULL, *after = NULL;
	int r;

	r = snapshot_first(c, 64, &f, &n, &before, &after);
	if (r)
		goto out;
	cf_txn_begin(c, &t);
	for (uint32_t i = 0; i < updates && !r; i++) {
		uint64_t rec = rnd(&rng) % n;
		int64_t v = (int64_t)rnd(&rng);
		r = cf_txn_update(&t, CF_BANK_FILE, rec, &v); /* the same record may repeat: reverse order matters */
	}
	if (r) {
		fprintf(out, "backout: update failed: %s\n", strerror(-r));
		(void)cf_txn_backout(&t);
		cf_txn_free(&t);
		goto out;
	}
	r = backout_check(c, &t, f, n, before, after, out, "backout");
	if (r == 0)
		fprintf(out, "backout: %u updates backed out, %" PRIu64 " records restored byte for byte\n", updates, n);
out:
	free(before);
	free(after);
	return r;
}

int cf_bank_logfull(struct cf_txn_ctx *c, const struct cf_bank_opts *o, FILE *out)
{
	struct cf_data_file *f;
	struct cf_txn t;
	uint64_t n, k = 0;
	uint8_t *before = NULL, *after = NULL;
	int r;

	r = snapshot_first(c, 256, &f, &n, &before, &after);
	if (r)
		goto out;
	cf_txn_begin(c, &t);
	for (;;) {
		int64_t v = (int64_t)k * 1000 + 7;
		r = cf_txn_update(&t, CF_BANK_FILE, k % n, &v);
		if (r)
			break;
		k++;
	}
	if (r != -ENOSPC) {
		fprintf(out, "logfull: update %" PRIu64 " failed with %s, not -ENOSPC\n", k, strerror(-r));
		(void)cf_txn_backout(&t);
		cf_txn_free(&t);
		goto out;
	}
	r = backout_check(c, &t, f, n, before, after, out, "logfull");
	if (r)
		goto out;
	/* The log is usable again. */
	cf_txn_begin(c, &t);
	{
		int64_t v;
		r = cf_txn_read(&t, CF_BANK_FILE, 0, &v);
		if (!r)
			r = cf_txn_update(&t, CF_BANK_FILE, 0, &v);
		if (!r)
			r = cf_txn_commit(&t);
		else
			(void)cf_txn_backout(&t);
	}
	cf_txn_free(&t);
	if (r) {
		fprintf(out, "logfull: the log is not usable after the backout: %s\n", strerror(-r));
		goto out;
	}
	fprintf(out, "logfull: log full (-ENOSPC) after %" PRIu64 " updates; transaction backed out, %" PRIu64
		     " records restored byte for byte; log usable again\n",
		k, n);
out:
	free(before);
	free(after);
	return r;
}

/* ---------------- data tools ---------------- */

static void fill_balance(void *arg, uint64_t idx, void *payload)
{
	memcpy(payload, arg, 8);
}

int cf_bank_mkdata(const char *dir, uint64_t accounts, int64_t balance, bool replace)
{
	__int128 total = (__int128)balance * (__int128)accounts;

	if (accounts < 2 || total > INT64_MAX || total < INT64_MIN)
		return -EINVAL;
	return cf_data_create(dir, CF_BANK_FILE, CF_BANK_REC_SIZE, accounts, (int64_t)total, fill_balance, &balance, replace);
}

int cf_bank_verify(const char *dir, bool have_total, int64_t expect_total, bool json, FILE *out)
{
	struct cf_data d;
	struct cf_data_file *f;
	__int128 sum = 0;
	uint64_t bad = 0;
	int r;

	r = cf_data_open(&d, dir);
	if (r) {
		fprintf(out, "verify: %s: %s\n", dir, strerror(-r));
		return r;
	}
	r = cf_data_file(&d, CF_BANK_FILE, &f);
	if (r) {
		fprintf(out, "verify: %s/f0.cfd: %s\n", dir, r == -EBADMSG ? cf_data_corrupt_msg(&d) : strerror(-r));
		goto out;
	}
	if (f->rec_size != CF_BANK_REC_SIZE) {
		fprintf(out, "verify: f0.cfd has %u-byte records, not a bank file\n", f->rec_size);
		r = -EINVAL;
		goto out;
	}
	if (!have_total)
		expect_total = f->initial_total;
	for (uint64_t i = 0; i < f->rec_count; i++) {
		int64_t v;
		int rr = cf_data_read(&d, f, i, &v);
		if (rr) {
			if (bad < 20 && !json)
				fprintf(out, "verify: account %" PRIu64 ": %s\n", i, cf_data_corrupt_msg(&d));
			bad++;
			continue;
		}
		sum += v;
	}
	if (json) {
		fprintf(out, "{\"accounts\":%" PRIu64 ",\"total\":%" PRId64 ",\"expected\":%" PRId64
			     ",\"corrupt\":%" PRIu64 ",\"ok\":%s}\n",
			f->rec_count, (int64_t)sum, expect_total, bad, (!bad && sum == expect_total) ? "true" : "false");
	} else if (bad) {
		fprintf(out, "verify: FAILED: %" PRIu64 " of %" PRIu64 " accounts corrupt\n", bad, f->rec_count);
	} else if (sum != expect_total) {
		fprintf(out, "verify: FAILED: total %" PRId64 " != expected %" PRId64 " (off by %" PRId64 ") over %" PRIu64
			     " accounts\n",
			(int64_t)sum, expect_total, (int64_t)(sum - expect_total), f->rec_count);
	} else {
		fprintf(out, "verify: ok: %" PRIu64 " accounts, total %" PRId64 " as expected, every record crc valid\n",
			f->rec_count, expect_total);
	}
	r = bad ? -EBADMSG : sum != expect_total ? -EDOM : 0;
out:
	cf_data_close(&d);
	return r;
}
