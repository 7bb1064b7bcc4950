/* SPDX-License-Identifier: MIT */
/* cf_persist.c - group commit of the CF image; see cf_persist.h. */
#include "cf_persist.h"
#include "cf_util.h"

#include <errno.h>
#include <ev.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define RANGES_INIT 64u
#define CBS_INIT 16u

struct prange {
	uint64_t lo, hi;
};

struct pcb {
	cf_persist_done_fn *fn;
	void *arg;
};

struct cf_persist {
	struct ev_loop *loop;
	ev_prepare commit_w;
	uint64_t gran;
	cf_persist_range_fn *fn;
	void *fn_arg;
	struct prange *r;
	size_t nr, capr;
	struct pcb *cb;
	size_t ncb, capcb;
	struct pcb *running; /* the callbacks a commit is running (cancel reaches them too) */
	size_t nrunning;
	struct cf_persist_stats st;
	/*
	 * The persister thread (CF_PERSIST_THREAD): one batch at a time. The
	 * loop hands it a span and keeps the batch's callbacks in fly; the
	 * thread persists and wakes the loop (done_w), which runs them.
	 */
	bool threaded;
	bool busy; /* loop's view: a batch is with the thread */
	struct pcb *fly;
	size_t nfly;
	ev_async done_w;
	pthread_t thr;
	pthread_mutex_t mu;
	pthread_cond_t cv;       /* thread waits for a job; loop waits for job_done */
	bool job, job_done, quit; /* under mu */
	/* batch ids: bytes added now go out in batch_next; batch_done is durable */
	uint64_t batch_next, batch_done, fly_batch;
	/*
	 * CF_PERSIST_ADAPTIVE: how long a persist call takes (EWMA, 1/8): at or
	 * above CF_PERSIST_SLOW_NS the thread is used, below it the loop calls
	 * in place (a tmpfs msync is ~10 us: a hand-off would cost more).
	 */
	bool adaptive;
	uint64_t ewma_ns, job_ns;
	/* a replica (cf_persist_set_replica): every batch is shipped too */
	bool has_rep;
	struct cf_persist_replica rep;
	void *job_rep;          /* under mu: the thread's batch copy for the replica */
	struct prange *job_calls; /* under mu: the local persist calls of the thread's batch */
	size_t job_ncalls;
};

#define CF_PERSIST_SLOW_NS 100000ull

static void learn(struct cf_persist *p, uint64_t ns)
{
	p->ewma_ns = p->ewma_ns - p->ewma_ns / 8 + ns / 8;
}

/* Hand this batch to the thread? */
static bool use_thread(const struct cf_persist *p)
{
	return p->threaded && (p->busy || p->has_rep || !p->adaptive || p->ewma_ns >= CF_PERSIST_SLOW_NS);
}

static int grow(void **p, size_t *cap, size_t n, size_t elem, size_t init)
{
	size_t c;
	void *q;

	if (n < *cap)
		return 0;
	c = *cap ? *cap * 2 : init;
	q = realloc(*p, c * elem);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

static void call(struct cf_persist *p, uint64_t lo, uint64_t hi)
{
	uint64_t t0 = cf_mono_ns();

	p->st.calls++;
	p->st.bytes += hi - lo;
	p->fn(p->fn_arg, lo, hi - lo);
	learn(p, cf_mono_ns() - t0);
}

static int range_cmp(const void *a, const void *b)
{
	const struct prange *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* The span of every range added (page granularity: msync writes back only its dirty pages). */
static void span(const struct cf_persist *p, uint64_t *lo, uint64_t *hi)
{
	*lo = p->r[0].lo, *hi = p->r[0].hi;
	for (size_t i = 1; i < p->nr; i++) {
		*lo = p->r[i].lo < *lo ? p->r[i].lo : *lo;
		*hi = p->r[i].hi > *hi ? p->r[i].hi : *hi;
	}
}

/*
 * The local persist calls for the ranges added (p->r, emptied): page
 * granularity one call over the span, cache lines the exact ranges merged
 * where they overlap or share a line. With a replica, *snap receives the
 * batch's bytes first (exact ranges merged where they overlap or touch).
 * Returns the number of calls in *out (malloc'd; NULL with 0 when nothing).
 */
static size_t plan(struct cf_persist *p, struct prange **out, void **snap)
{
	uint64_t lo, hi, mask = p->gran - 1;
	struct prange *c;
	size_t n = 0;

	*out = NULL;
	if (snap)
		*snap = NULL;
	if (!p->nr)
		return 0;
	if (p->nr > p->st.max_ranges)
		p->st.max_ranges = p->nr;
	/* one msync over the span needs no order; cache lines and a replica's copy do */
	if (p->gran < 4096 || p->has_rep)
		qsort(p->r, p->nr, sizeof(*p->r), range_cmp);
	if (snap && p->has_rep) {
		struct cf_persist_range *x = malloc(p->nr * sizeof(*x));
		size_t k = 0;
		if (!x) {
			*snap = p->rep.snap(p->rep.arg, NULL, 0); /* the replica decides: never acknowledged uncopied */
		} else {
			for (size_t i = 0; i < p->nr; i++) {
				if (k && p->r[i].lo <= x[k - 1].off + x[k - 1].len) {
					uint64_t end = x[k - 1].off + x[k - 1].len;
					if (p->r[i].hi > end)
						x[k - 1].len = p->r[i].hi - x[k - 1].off;
					continue;
				}
				x[k++] = (struct cf_persist_range){p->r[i].lo, p->r[i].hi - p->r[i].lo};
			}
			*snap = p->rep.snap(p->rep.arg, x, k);
			free(x);
		}
	}
	c = malloc(p->nr * sizeof(*c));
	if (!c) { /* out of memory: one call over the span, in place */
		span(p, &lo, &hi);
		call(p, lo, hi);
		p->nr = 0;
		return 0;
	}
	if (p->gran >= 4096) {
		/* msync: one call; the kernel writes back only the span's dirty pages */
		span(p, &lo, &hi);
		c[n++] = (struct prange){lo, hi};
	} else {
		/* cache lines: exact ranges, merged where they overlap or share a line */
		lo = p->r[0].lo, hi = p->r[0].hi;
		for (size_t i = 1; i < p->nr; i++) {
			if ((p->r[i].lo & ~mask) <= ((hi + mask) & ~mask)) {
				hi = p->r[i].hi > hi ? p->r[i].hi : hi;
				continue;
			}
			c[n++] = (struct prange){lo, hi};
			lo = p->r[i].lo, hi = p->r[i].hi;
		}
		c[n++] = (struct prange){lo, hi};
	}
	p->nr = 0;
	*out = c;
	return n;
}

/* A batch's persist: ship to the replica, persist locally meanwhile, wait for the replica. */
static void run_job(struct cf_persist *p, struct prange *c, size_t n, void *rep, bool count)
{
	if (rep)
		p->rep.send(p->rep.arg, rep);
	for (size_t i = 0; i < n; i++) {
		if (count)
			call(p, c[i].lo, c[i].hi);
		else
			p->fn(p->fn_arg, c[i].lo, c[i].hi - c[i].lo);
	}
	if (rep)
		p->rep.wait(p->rep.arg, rep);
}

static void persist_ranges(struct cf_persist *p)
{
	struct prange *c;
	void *rep;
	size_t n = plan(p, &c, &rep);

	run_job(p, c, n, rep, true);
	free(c);
}

/* Run the callbacks in cbs (taken from the lists: cancel reaches them through running). */
static void run_cbs(struct cf_persist *p, struct pcb *cbs, size_t n)
{
	p->running = cbs;
	p->nrunning = n;
	for (size_t i = 0; i < n; i++) {
		cf_persist_done_fn *fn = cbs[i].fn;
		if (!fn) /* cancelled */
			continue;
		cbs[i].fn = NULL;
		p->st.callbacks++;
		fn(cbs[i].arg);
	}
	p->running = NULL;
	p->nrunning = 0;
	free(cbs);
}

/* Take the registered callbacks: they belong to the commit being made. */
static struct pcb *take_cbs(struct cf_persist *p, size_t *n)
{
	struct pcb *cbs = p->cb;

	*n = p->ncb;
	p->cb = NULL;
	p->ncb = p->capcb = 0;
	return cbs;
}

/* The batch with the thread is persisted: run its callbacks (loop thread). */
static void finish_batch(struct cf_persist *p)
{
	struct pcb *cbs = p->fly;
	size_t n = p->nfly;

	p->fly = NULL;
	p->nfly = 0;
	p->busy = false;
	p->batch_done = p->fly_batch;
	learn(p, p->job_ns); /* written under mu before job_done, read after it */
	run_cbs(p, cbs, n);
}

/* Wait for the thread's batch, then finish it here. */
static void wait_batch(struct cf_persist *p)
{
	if (!p->busy)
		return;
	pthread_mutex_lock(&p->mu);
	while (!p->job_done)
		pthread_cond_wait(&p->cv, &p->mu);
	p->job_done = false;
	pthread_mutex_unlock(&p->mu);
	finish_batch(p);
}

void cf_persist_commit(struct cf_persist *p)
{
	struct pcb *cbs;
	size_t n;

	wait_batch(p);
	if (!p->nr && !p->ncb)
		return;
	p->st.commits++;
	persist_ranges(p);
	p->batch_done = p->batch_next++;
	/*
	 * Run the callbacks registered up to here. One may register another
	 * (or add ranges): that belongs to the next commit, so take the list.
	 */
	while (p->ncb) {
		cbs = take_cbs(p, &n);
		run_cbs(p, cbs, n);
		if (p->nr) /* a callback added bytes: its own callbacks wait for the next commit */
			break;
		if (p->ncb) /* registered by a callback, nothing added since: durable already */
			p->batch_done = p->batch_next++;
	}
}

/*
 * The loop's commit point with a thread: hand every range added so far (one
 * span: page granularity) and the callbacks registered so far to the thread,
 * unless it is busy - then they wait, and grow, until its batch is done.
 * Callbacks with no bytes pending and nothing in flight run at once.
 */
static void start_batch(struct cf_persist *p)
{
	struct prange *calls;
	size_t ncalls;
	void *rep;

	if (p->busy)
		return;
	if (!p->nr) {
		while (p->ncb && !p->nr && !p->busy) {
			size_t n;
			struct pcb *cbs = take_cbs(p, &n);
			p->st.commits++;
			p->batch_done = p->batch_next++; /* nothing to persist: durable already */
			run_cbs(p, cbs, n);
		}
		if (!p->nr)
			return;
	}
	p->st.commits++;
	ncalls = plan(p, &calls, &rep);
	for (size_t i = 0; i < ncalls; i++) {
		p->st.calls++;
		p->st.bytes += calls[i].hi - calls[i].lo;
	}
	p->fly = take_cbs(p, &p->nfly);
	p->fly_batch = p->batch_next++;
	p->busy = true;
	pthread_mutex_lock(&p->mu);
	p->job_calls = calls;
	p->job_ncalls = ncalls;
	p->job_rep = rep;
	p->job = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static void *persister(void *arg)
{
	struct cf_persist *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->job && !p->quit)
			pthread_cond_wait(&p->cv, &p->mu);
		if (!p->job)
			break; /* quit with nothing to do */
		struct prange *calls = p->job_calls;
		size_t ncalls = p->job_ncalls;
		void *rep = p->job_rep;
		uint64_t t0 = cf_mono_ns();
		pthread_mutex_unlock(&p->mu);
		run_job(p, calls, ncalls, rep, false);
		free(calls);
		t0 = cf_mono_ns() - t0;
		pthread_mutex_lock(&p->mu);
		p->job_ns = t0;
		p->job = false;
		p->job_done = true;
		pthread_cond_broadcast(&p->cv);
		if (p->loop)
			ev_async_send(p->loop, &p->done_w);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void arm(struct cf_persist *p);

static void done_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct cf_persist *p = w->data;
	bool done;

	if (!p->busy)
		return; /* a synchronous commit finished it already */
	pthread_mutex_lock(&p->mu);
	done = p->job_done;
	p->job_done = false;
	pthread_mutex_unlock(&p->mu);
	if (!done)
		return;
	finish_batch(p);
	if (p->nr || p->ncb)
		arm(p); /* what arrived meanwhile: the next batch, at this iteration's end */
}

static void commit_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct cf_persist *p = w->data;

	if (use_thread(p))
		start_batch(p);
	else
		cf_persist_commit(p);
	/* with a batch in flight, done_cb arms again for what waits */
	if ((!p->nr && !p->ncb) || p->busy)
		ev_prepare_stop(loop, w);
}

static void arm(struct cf_persist *p)
{
	if (p->loop && !ev_is_active(&p->commit_w))
		ev_prepare_start(p->loop, &p->commit_w);
}

int cf_persist_new(struct ev_loop *loop, uint64_t gran, unsigned flags, cf_persist_range_fn *fn, void *fn_arg,
		   struct cf_persist **out)
{
	struct cf_persist *p;
	int r;

	if (!fn || !gran || (gran & (gran - 1)))
		return -EINVAL;
	if ((flags & CF_PERSIST_ADAPTIVE) && !(flags & CF_PERSIST_THREAD))
		return -EINVAL;
	if (flags & ~(CF_PERSIST_THREAD | CF_PERSIST_ADAPTIVE | CF_PERSIST_ANY_GRAN))
		return -EINVAL;
	if ((flags & CF_PERSIST_ANY_GRAN) && !(flags & CF_PERSIST_THREAD))
		return -EINVAL;
	if ((flags & CF_PERSIST_THREAD) && (!loop || (gran < 4096 && !(flags & CF_PERSIST_ANY_GRAN))))
		return -EINVAL; /* a thread pays off for msync (or a replica) only, and needs the loop to wake */
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	if (flags & CF_PERSIST_THREAD) {
		pthread_mutex_init(&p->mu, NULL);
		pthread_cond_init(&p->cv, NULL);
		ev_async_init(&p->done_w, done_cb);
		p->done_w.data = p;
		ev_async_start(loop, &p->done_w);
		r = -pthread_create(&p->thr, NULL, persister, p);
		if (r) {
			ev_async_stop(loop, &p->done_w);
			pthread_cond_destroy(&p->cv);
			pthread_mutex_destroy(&p->mu);
			free(p);
			return r;
		}
		p->threaded = true;
		p->adaptive = flags & CF_PERSIST_ADAPTIVE;
		p->ewma_ns = CF_PERSIST_SLOW_NS; /* the thread until the first calls say otherwise */
	}
	p->loop = loop;
	p->gran = gran;
	p->batch_next = 1;
	p->fn = fn;
	p->fn_arg = fn_arg;
	ev_prepare_init(&p->commit_w, commit_cb);
	/* lowest priority: after every other prepare watcher (the tcp reaper) */
	ev_set_priority(&p->commit_w, EV_MINPRI);
	p->commit_w.data = p;
	*out = p;
	return 0;
}

void cf_persist_free(struct cf_persist *p)
{
	if (!p)
		return;
	cf_persist_commit(p);
	if (p->loop)
		ev_prepare_stop(p->loop, &p->commit_w);
	if (p->threaded) {
		pthread_mutex_lock(&p->mu);
		p->quit = true;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->thr, NULL);
		ev_async_stop(p->loop, &p->done_w);
		pthread_cond_destroy(&p->cv);
		pthread_mutex_destroy(&p->mu);
	}
	free(p->r);
	free(p->cb);
	free(p);
}

int cf_persist_add(struct cf_persist *p, uint64_t off, uint64_t len)
{
	struct prange *last;

	if (!len)
		return 0;
	p->st.ranges++;
	/* the common case: a client appending to its log extends its last range */
	if (p->nr) {
		last = &p->r[p->nr - 1];
		if (off <= last->hi && off + len >= last->lo) {
			last->lo = off < last->lo ? off : last->lo;
			last->hi = off + len > last->hi ? off + len : last->hi;
			arm(p);
			return 0;
		}
	}
	if (grow((void **)&p->r, &p->capr, p->nr, sizeof(*p->r), RANGES_INIT) < 0) {
		call(p, off, off + len); /* durable now rather than not at all */
		return -ENOMEM;
	}
	p->r[p->nr++] = (struct prange){off, off + len};
	arm(p);
	return 0;
}

int cf_persist_after(struct cf_persist *p, cf_persist_done_fn *done, void *arg)
{
	if (grow((void **)&p->cb, &p->capcb, p->ncb, sizeof(*p->cb), CBS_INIT) < 0)
		return -ENOMEM;
	p->cb[p->ncb++] = (struct pcb){done, arg};
	arm(p);
	return 0;
}

int cf_persist_cancel(struct cf_persist *p, cf_persist_done_fn *done, void *arg)
{
	int r = -ENOENT;

	for (size_t i = 0; i < p->nfly; i++) {
		if (p->fly[i].fn == done && p->fly[i].arg == arg) {
			p->fly[i].fn = NULL;
			r = 0;
		}
	}
	for (size_t i = 0; i < p->nrunning; i++) {
		if (p->running[i].fn == done && p->running[i].arg == arg) {
			p->running[i].fn = NULL;
			r = 0;
		}
	}
	for (size_t i = 0; i < p->ncb; i++) {
		if (p->cb[i].fn == done && p->cb[i].arg == arg) {
			p->cb[i].fn = NULL;
			r = 0;
		}
	}
	return r;
}

void cf_persist_set_replica(struct cf_persist *p, const struct cf_persist_replica *rep)
{
	p->rep = *rep;
	p->has_rep = true;
}

uint64_t cf_persist_batch(const struct cf_persist *p)
{
	return p->batch_next;
}

uint64_t cf_persist_done(const struct cf_persist *p)
{
	return p->batch_done;
}

int cf_persist_pending(const struct cf_persist *p)
{
	return p->nr || p->ncb || p->busy;
}

void cf_persist_get_stats(const struct cf_persist *p, struct cf_persist_stats *st)
{
	*st = p->st;
}
