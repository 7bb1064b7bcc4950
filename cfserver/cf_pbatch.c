/* SPDX-License-Identifier: MIT */
/* cf_pbatch.c - group the PERSIST requests of one loop iteration (cf_pbatch.h). */
#include "cf_pbatch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int cmp_off(const void *a, const void *b)
{
	const struct cf_pbatch_req *x = a, *y = b;

	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return (x->len > y->len) - (x->len < y->len);
}

size_t cf_pbatch_merge(struct cf_pbatch_req *v, size_t n)
{
	size_t k = 0;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_off);
	for (size_t i = 1; i < n; i++) {
		uint64_t end = v[k].off + v[k].len; /* ranges were checked: no wrap */
		if (v[i].off <= end) {
			uint64_t e2 = v[i].off + v[i].len;
			if (e2 > end)
				v[k].len = e2 - v[k].off;
		} else {
			v[++k] = v[i];
		}
	}
	return k + 1;
}

static void prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)revents;
	cf_pbatch_flush(w->data);
}

void cf_pbatch_init(struct cf_pbatch *b, struct ev_loop *loop, void *arg,
		    void (*persist)(void *arg, uint64_t off, uint64_t len),
		    void (*answer)(void *arg, void *owner, uint64_t id, int status))
{
	memset(b, 0, sizeof(*b));
	b->loop = loop;
	b->arg = arg;
	b->persist = persist;
	b->answer = answer;
	ev_prepare_init(&b->prep, prepare_cb);
	b->prep.data = b;
}

void cf_pbatch_fini(struct cf_pbatch *b)
{
	if (!b || !b->loop)
		return;
	ev_prepare_stop(b->loop, &b->prep);
	free(b->q);
	free(b->tmp);
	b->q = b->tmp = NULL;
	b->n = b->cap = 0;
}

int cf_pbatch_add(struct cf_pbatch *b, void *owner, uint64_t id, uint64_t off, uint64_t len)
{
	if (b->n == CF_PBATCH_MAX)
		cf_pbatch_flush(b);
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct cf_pbatch_req *q = realloc(b->q, cap * sizeof(*q));
		if (!q)
			return -ENOMEM;
		b->q = q;
		q = realloc(b->tmp, cap * sizeof(*q));
		if (!q)
			return -ENOMEM;
		b->tmp = q;
		b->cap = cap;
	}
	b->q[b->n++] = (struct cf_pbatch_req){owner, id, off, len};
	b->st.requests++;
	if (!ev_is_active(&b->prep))
		ev_prepare_start(b->loop, &b->prep);
	return 0;
}

void cf_pbatch_flush(struct cf_pbatch *b)
{
	size_t n = b->n, k;

	if (b->loop && ev_is_active(&b->prep))
		ev_prepare_stop(b->loop, &b->prep);
	if (!n)
		return;
	memcpy(b->tmp, b->q, n * sizeof(*b->q));
	k = cf_pbatch_merge(b->tmp, n);
	for (size_t i = 0; i < k; i++) {
		b->persist(b->arg, b->tmp[i].off, b->tmp[i].len);
		b->st.bytes += b->tmp[i].len;
	}
	b->st.flushes++;
	b->st.ranges += k;
	if (n > b->st.max_group)
		b->st.max_group = n;
	/* answers may close connections (forget): take the queue first */
	b->n = 0;
	for (size_t i = 0; i < n; i++)
		b->answer(b->arg, b->q[i].owner, b->q[i].id, 0);
}

bool cf_pbatch_has(const struct cf_pbatch *b, const void *owner)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->q[i].owner == owner)
			return true;
	return false;
}

void cf_pbatch_forget(struct cf_pbatch *b, const void *owner)
{
	size_t k = 0;

	for (size_t i = 0; i < b->n; i++)
		if (b->q[i].owner != owner)
			b->q[k++] = b->q[i];
	b->n = k;
}
