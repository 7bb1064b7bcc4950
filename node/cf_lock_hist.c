/* SPDX-License-Identifier: MIT */
/*
 * cf_lock_hist.c - the latency histograms of cf_lock.h (lock acquires, CAS
 * round trips, commits): log-linear buckets, 16 per power of two, so a
 * percentile is within 1/16 of its value; merge adds them up.
 */
#include "cf_lock.h"

static uint32_t hist_bucket(uint64_t v)
{
	uint32_t msb, sub;

	if (v < CF_HIST_SUB)
		return (uint32_t)v;
	msb = 63u - (uint32_t)__builtin_clzll(v);
	sub = (uint32_t)(v >> (msb - 4)) & (CF_HIST_SUB - 1);
	return (msb - 3) * CF_HIST_SUB + sub;
}

static uint64_t hist_upper(uint32_t b)
{
	uint32_t msb, sub;

	if (b < CF_HIST_SUB)
		return b;
	msb = b / CF_HIST_SUB + 3;
	sub = b % CF_HIST_SUB;
	return ((uint64_t)(CF_HIST_SUB + sub + 1) << (msb - 4)) - 1;
}

void cf_lock_hist_add(struct cf_lock_hist *h, uint64_t ns)
{
	uint32_t b = hist_bucket(ns);

	if (b >= CF_HIST_BUCKETS)
		b = CF_HIST_BUCKETS - 1;
	h->b[b]++;
	if (!h->n || ns < h->min)
		h->min = ns;
	h->n++;
	h->sum += ns;
	if (ns > h->max)
		h->max = ns;
}

void cf_lock_hist_merge(struct cf_lock_hist *into, const struct cf_lock_hist *from)
{
	if (!from->n)
		return;
	if (!into->n || from->min < into->min)
		into->min = from->min;
	into->n += from->n;
	into->sum += from->sum;
	if (from->max > into->max)
		into->max = from->max;
	for (uint32_t i = 0; i < CF_HIST_BUCKETS; i++)
		into->b[i] += from->b[i];
}

uint64_t cf_lock_hist_pct(const struct cf_lock_hist *h, double p)
{
	uint64_t want, acc = 0;

	if (!h->n)
		return 0;
	want = (uint64_t)(p / 100.0 * (double)h->n + 0.5);
	if (want < 1)
		want = 1;
	if (want > h->n)
		want = h->n;
	for (uint32_t i = 0; i < CF_HIST_BUCKETS; i++) {
		acc += h->b[i];
		if (acc >= want) {
			uint64_t u = hist_upper(i);
			return u > h->max ? h->max : u;
		}
	}
	return h->max;
}
