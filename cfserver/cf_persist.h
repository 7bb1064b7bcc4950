/* SPDX-License-Identifier: MIT */
/*
 * cf_persist.h - group commit of the CF image (--nvram), one persist per loop
 * iteration for everybody.
 *
 * Whoever makes image bytes that must be durable before something is
 * acknowledged (a client's PERSIST control request, over either transport;
 * cfserver's own control-path writes, core_persist) adds the range with
 * cf_persist_add() and asks to be
 * called back with cf_persist_after(). Nothing is persisted at that moment.
 * Once per loop iteration (an ev_prepare watcher at the lowest priority, i.e.
 * after every callback of the iteration has run and just before the loop
 * blocks) the component persists every range added since the last commit -
 * merged, see below - and then runs every callback registered before it, in
 * registration order. A callback therefore never runs before the bytes added
 * ahead of it are durable; the responses it releases are sent after ONE
 * persist shared by every connection that executed requests in the iteration.
 *
 * How ranges are merged depends on the store granularity of the mapping
 * (cf_persist_new's `gran`):
 *   - page granularity (a file in the page cache, persist = msync): each call
 *     is a system call and, on a disk, a device cache flush, while the kernel
 *     writes back only the dirty pages of the span: so ONE call over the span
 *     of all ranges;
 *   - cache-line granularity (DAX, persist = CPU cache flushes and a fence):
 *     the cost is per flushed line, so the exact ranges, merged only when they
 *     overlap or share a line.
 *
 * With CF_PERSIST_THREAD (page granularity only: msync blocks for a device
 * cache flush, milliseconds on a disk) the commit point hands the span to a
 * persister thread and the loop goes on serving everything else - lock
 * atomics, reads, heartbeats - while the disk flushes. Ranges and callbacks
 * added meanwhile wait and form the next batch, started at the end of the
 * loop iteration in which the thread reports back (ev_async). One batch at a
 * time, so the order "a callback never runs before the bytes added ahead of
 * it are durable" holds across batches. With CF_PERSIST_ADAPTIVE the loop
 * persists in place again while the calls are fast (a tmpfs msync takes
 * ~10 us, less than the hand-off to another thread and back).
 *
 * Every function is called from the loop's thread (the persister thread only
 * calls the range function). Functions return 0 or a negative errno.
 */
#ifndef CF_PERSIST_H
#define CF_PERSIST_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct cf_persist;

/* Make [off, off+len) of the image durable now (cf_image_persist, or a test's stub). */
typedef void cf_persist_range_fn(void *arg, uint64_t off, uint64_t len);
/* Called once after the commit that covers everything added before cf_persist_after(). */
typedef void cf_persist_done_fn(void *arg);

struct cf_persist_stats {
	uint64_t commits;    /* commit points that persisted something or ran callbacks */
	uint64_t calls;      /* calls of the range function (msyncs on a page-cache file) */
	uint64_t ranges;     /* cf_persist_add() calls */
	uint64_t bytes;      /* bytes handed to the range function */
	uint64_t callbacks;  /* callbacks run */
	uint64_t max_ranges; /* most ranges in one commit */
};

#define CF_PERSIST_THREAD 0x1u   /* persist in a thread (gran >= 4096, loop required) */
#define CF_PERSIST_ADAPTIVE 0x2u /* with THREAD: only while persists take >= 100 us (EWMA) */
#define CF_PERSIST_ANY_GRAN 0x4u /* with THREAD: allow it at cache-line granularity too (a replica) */

/*
 * gran: the store granularity in bytes (4096: msync; 64: cache-line flushes).
 * The range function must be safe to call from another thread with
 * CF_PERSIST_THREAD.
 */
int cf_persist_new(struct ev_loop *loop, uint64_t gran, unsigned flags, cf_persist_range_fn *fn, void *fn_arg,
		   struct cf_persist **out);
/* Commits what is pending (ranges, then callbacks), then frees. Accepts NULL. */
void cf_persist_free(struct cf_persist *p);
/* [off, off+len) must be durable at the next commit. -ENOMEM: persisted at once instead. */
int cf_persist_add(struct cf_persist *p, uint64_t off, uint64_t len);
/*
 * Run done(arg) after the next commit. -ENOMEM: nothing registered (the
 * caller may commit with cf_persist_commit() and go on).
 */
int cf_persist_after(struct cf_persist *p, cf_persist_done_fn *done, void *arg);
/* Forget a registered callback (its object is going away). Returns 0 or -ENOENT. */
int cf_persist_cancel(struct cf_persist *p, cf_persist_done_fn *done, void *arg);
/*
 * Commit now, in this thread, after waiting for a batch in flight (shutdown,
 * tests, out of memory). The watcher commits once per iteration.
 */
void cf_persist_commit(struct cf_persist *p);
/*
 * Batches are numbered from 1 in the order they are made durable. A range
 * added now goes out in batch cf_persist_batch(); every batch up to
 * cf_persist_done() is durable. A user that coalesces its callbacks (one per
 * batch, not one per item) tags each waiting item with cf_persist_batch() and
 * in its callback releases the items whose tag is <= cf_persist_done(): with
 * the thread, items added while a batch is in flight belong to the next one.
 */
uint64_t cf_persist_batch(const struct cf_persist *p);
uint64_t cf_persist_done(const struct cf_persist *p);
/*
 * A replica (cf_duplex.h): every batch is also shipped to a second CF and is
 * durable only once that CF acknowledged it (or is fenced). snap() runs in
 * the loop thread at the batch's hand-off with the batch's exact ranges
 * (sorted, merged where they overlap or touch) and copies their bytes: the
 * copy is consistent with every request the loop executed before it. send()
 * and wait() run where the persist runs (the thread, or the loop for a
 * synchronous commit): send() puts the copy on the wire, the local persist
 * follows, then wait() returns once the replica acknowledged it or cannot
 * promote any more. Each job is passed to wait() exactly once, which frees it.
 */
struct cf_persist_range {
	uint64_t off, len;
};
struct cf_persist_replica {
	void *arg;
	/* r NULL: out of memory for the range list; the replica must not let the batch be acknowledged */
	void *(*snap)(void *arg, const struct cf_persist_range *r, size_t n);
	void (*send)(void *arg, void *job);
	void (*wait)(void *arg, void *job);
};
/*
 * Attach a replica (before the first add). From then on every batch goes
 * through the thread when there is one (a round trip to another host is
 * never in the loop), and a commit point with nothing added still makes no
 * batch. A synchronous cf_persist_commit ships in the calling thread.
 */
void cf_persist_set_replica(struct cf_persist *p, const struct cf_persist_replica *rep);

/* Anything added or registered and not yet committed, or a batch in flight? */
int cf_persist_pending(const struct cf_persist *p);
void cf_persist_get_stats(const struct cf_persist *p, struct cf_persist_stats *st);

#endif
