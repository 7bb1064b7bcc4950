/* SPDX-License-Identifier: MIT */
/*
 * cf_pbatch.h - group the PERSIST requests of one loop iteration.
 *
 * Every PERSIST request (cf_wire.h) that arrives while the loop dispatches
 * one iteration's input is queued here; before the loop blocks again (an
 * ev_prepare watcher) the queued ranges are sorted and merged, each merged
 * range is persisted once (libpmem2: a cache flush on DAX, msync on a file),
 * and only then is every queued request answered. N nodes committing at
 * once cost one msync per distinct range, not N.
 *
 * The core answers nothing of a connection out of order: before it handles a
 * further request of a connection with a queued PERSIST it flushes
 * (cf_pbatch_has / cf_pbatch_flush), and a closing connection's entries are
 * dropped unanswered (cf_pbatch_forget).
 */
#ifndef CF_PBATCH_H
#define CF_PBATCH_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CF_PBATCH_MAX 4096u /* queued requests; a full queue flushes at once */

struct cf_pbatch_req {
	void *owner; /* the connection to answer */
	uint64_t id;
	uint64_t off, len;
};

struct cf_pbatch_stats {
	uint64_t requests; /* PERSIST requests queued */
	uint64_t flushes;  /* groups flushed (one per loop iteration that had any) */
	uint64_t ranges;   /* persist calls after merging */
	uint64_t bytes;    /* bytes in those calls */
	uint64_t max_group; /* most requests answered by one flush */
};

struct cf_pbatch {
	struct ev_loop *loop;
	ev_prepare prep;
	struct cf_pbatch_req *q, *tmp;
	size_t n, cap;
	void *arg;
	void (*persist)(void *arg, uint64_t off, uint64_t len);
	void (*answer)(void *arg, void *owner, uint64_t id, int status);
	struct cf_pbatch_stats st;
};

void cf_pbatch_init(struct cf_pbatch *b, struct ev_loop *loop, void *arg,
		    void (*persist)(void *arg, uint64_t off, uint64_t len),
		    void (*answer)(void *arg, void *owner, uint64_t id, int status));
/* Stop the watcher, drop the queue unanswered (accepts a zeroed struct). */
void cf_pbatch_fini(struct cf_pbatch *b);
/* Queue a request (range already checked); 0 or -ENOMEM. */
int cf_pbatch_add(struct cf_pbatch *b, void *owner, uint64_t id, uint64_t off, uint64_t len);
/* Persist the merged queue, then answer each request. */
void cf_pbatch_flush(struct cf_pbatch *b);
bool cf_pbatch_has(const struct cf_pbatch *b, const void *owner);
void cf_pbatch_forget(struct cf_pbatch *b, const void *owner);

/*
 * Pure: sort v[0..n) by offset and merge overlapping or touching ranges in
 * place; returns the count of merged ranges (unit-tested).
 */
size_t cf_pbatch_merge(struct cf_pbatch_req *v, size_t n);

#endif
