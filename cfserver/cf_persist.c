/* SPDX-License-Identifier: MIT */
/* cf_persist.c - group commit of the CF image; see cf_persist.h. */
#include "cf_persist.h"

#include <errno.h>
#include <ev.h>
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
};

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
	p->st.calls++;
	p->st.bytes += hi - lo;
	p->fn(p->fn_arg, lo, hi - lo);
}

static int range_cmp(const void *a, const void *b)
{
	const struct prange *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static void persist_ranges(struct cf_persist *p)
{
	uint64_t lo, hi, mask = p->gran - 1;

	if (!p->nr)
		return;
	if (p->nr > p->st.max_ranges)
		p->st.max_ranges = p->nr;
	if (p->gran >= 4096) {
		/* msync: one call; the kernel writes back only the span's dirty pages */
		lo = p->r[0].lo, hi = p->r[0].hi;
		for (size_t i = 1; i < p->nr; i++) {
			lo = p->r[i].lo < lo ? p->r[i].lo : lo;
			hi = p->r[i].hi > hi ? p->r[i].hi : hi;
		}
		call(p, lo, hi);
		p->nr = 0;
		return;
	}
	/* cache lines: exact ranges, merged where they overlap or share a line */
	qsort(p->r, p->nr, sizeof(*p->r), range_cmp);
	lo = p->r[0].lo, hi = p->r[0].hi;
	for (size_t i = 1; i < p->nr; i++) {
		if ((p->r[i].lo & ~mask) <= ((hi + mask) & ~mask)) {
			hi = p->r[i].hi > hi ? p->r[i].hi : hi;
			continue;
		}
		call(p, lo, hi);
		lo = p->r[i].lo, hi = p->r[i].hi;
	}
	call(p, lo, hi);
	p->nr = 0;
}

void cf_persist_commit(struct cf_persist *p)
{
	struct pcb *cbs;
	size_t n;

	if (!p->nr && !p->ncb)
		return;
	p->st.commits++;
	persist_ranges(p);
	/*
	 * Run the callbacks registered up to here. One may register another
	 * (or add ranges): that belongs to the next commit, so take the list.
	 */
	while (p->ncb) {
		cbs = p->cb;
		n = p->ncb;
		p->cb = NULL;
		p->ncb = p->capcb = 0;
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
		if (p->nr) /* a callback added bytes: its own callbacks wait for the next commit */
			break;
	}
}

static void commit_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct cf_persist *p = w->data;

	cf_persist_commit(p);
	if (!p->nr && !p->ncb)
		ev_prepare_stop(loop, w);
}

static void arm(struct cf_persist *p)
{
	if (p->loop && !ev_is_active(&p->commit_w))
		ev_prepare_start(p->loop, &p->commit_w);
}

int cf_persist_new(struct ev_loop *loop, uint64_t gran, cf_persist_range_fn *fn, void *fn_arg,
		   struct cf_persist **out)
{
	struct cf_persist *p;

	if (!fn || !gran || (gran & (gran - 1)))
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->loop = loop;
	p->gran = gran;
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

int cf_persist_pending(const struct cf_persist *p)
{
	return p->nr || p->ncb;
}

void cf_persist_get_stats(const struct cf_persist *p, struct cf_persist_stats *st)
{
	*st = p->st;
}
