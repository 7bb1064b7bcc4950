/* SPDX-License-Identifier: MIT */
/*
 * cf_txn.h - transactions on the shared data directory: undo-only, force at
 * commit (docs/design.md §6).
 *
 *   update  = lock X (if not held) → UPDATE(before-image = the slot's current
 *             bytes) appended to the CF log, completion awaited → lease check →
 *             pwrite of the new slot
 *   commit  = fdatasync touched files → COMMIT appended, awaited (the commit
 *             point) → release locks → END (posted)
 *
 * Group commit (ctx->defer_writes, docs/design.md "Group commit on a node"):
 * an update posts its UPDATE and keeps the new slot in memory; the next
 * durable point of the context (cf_txn_flush: before a commit, a backout, a
 * read of that record, or when the caller asks) awaits every posted UPDATE
 * at once, checks the lease and only then writes the kept slots. The
 * write-ahead rule is the same (no data write before its before-image is
 * durable at the CF); one wait covers many updates. cf_txn_commit_group
 * commits several open transactions with one flush, one fdatasync per file
 * and one awaited batch of COMMITs.
 *   backout = before-images applied in reverse LSN order → fdatasync →
 *             ABORT appended, awaited → release locks → END (posted)
 *
 * The lease is checked before every CF write and every data write: expired
 * → -ENOLINK ("lease expired"); the caller waits for the lease to come back
 * (cf_txn_lease_wait) and backs out, or retries a commit (both are
 * idempotent). If it does not come back the incarnation is over and peer
 * recovery backs the transaction out from the log.
 *
 * Several transactions of one context may be open at once; a context (its
 * session, log and lock table) is used by one thread. Errors are returned,
 * never exit(). A session error means the incarnation is over (M5, docs/design.md §0).
 */
#ifndef CF_TXN_H
#define CF_TXN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_data.h"
#include "cf_lock.h"
#include "cf_log.h"

struct cf_session;

/* Counters other threads read (the heartbeat carries them to the CF). */
struct cf_txn_pub {
	_Atomic uint64_t log_used, locks_held, commits, aborts, inflight;
};

struct cf_txn_ctx {
	struct cf_data *data;
	struct cf_log *log;
	struct cf_lock_table *locks;
	/* 0 while the lease is valid, else -ENOLINK; NULL: no lease (tests, tools) */
	int (*lease_check)(void *arg);
	void *lease_arg;
	uint64_t next_txid; /* unique per instance incarnation: (epoch << 32) | counter */
	int lock_timeout_ms;
	uint32_t nopen;
	uint64_t commits, aborts, lease_refusals, log_full;
	struct cf_txn_pub *pub; /* may be NULL */
	/*
	 * The CF is volatile: when a backout through the CF fails (the
	 * incarnation is over), back out from the before-images in memory
	 * instead (cf_txn_self_backout). Set by the daemon; off by default.
	 */
	bool self_backout;
	/* 0 when a self-backout may write now, else -errno (why not); called with
	 * lease_arg; NULL: always */
	int (*self_backout_check)(void *arg);
	uint64_t self_backouts; /* transactions backed out that way */
	/*
	 * The log outlives this incarnation's connection (a durable CF, or a
	 * duplexed one whose secondary holds a copy): a self-backout leaves a
	 * transaction whose COMMIT is in doubt to the recovery that reads it.
	 * Off: a lone volatile CF, whose log dies with it, so nobody else can
	 * decide and the self-backout aborts it.
	 */
	bool log_survives;
	uint32_t in_doubt; /* open transactions a self-backout left to the log that way */
	/* group commit (above): updates keep their data writes until cf_txn_flush */
	bool defer_writes;
	struct cf_txn *deferred; /* open transactions with kept writes (list by next_deferred) */
	uint64_t flushes, deferred_writes; /* durable points, data writes they carried */
};

struct cf_txn_upd {
	uint32_t file;
	uint32_t len;
	uint64_t off;
	uint8_t *before;
	uint8_t *after; /* the new slot, while its write is kept (defer_writes); else NULL */
};

enum cf_txn_state { CF_TXN_IDLE = 0, CF_TXN_OPEN, CF_TXN_COMMITTED, CF_TXN_ABORTED };
const char *cf_txn_state_str(enum cf_txn_state st);

struct cf_txn {
	struct cf_txn_ctx *ctx;
	uint64_t id;
	enum cf_txn_state state;
	bool logged; /* BEGIN appended (pinned in the log) */
	/*
	 * COMMIT or ABORT acknowledged by the CF: past this point locks may be
	 * released one by one and another instance may write the records, so
	 * no before-image of t may be written again (cf_txn_self_backout).
	 */
	enum cf_logrec_type terminal; /* 0 until then */
	/*
	 * The terminal record handed to the CF, acknowledged or not. A COMMIT
	 * posted and not acknowledged is IN DOUBT: it may be in the log, and
	 * then the transaction is committed for whoever recovers the log. Its
	 * before-images are never written by this node (cf_txn_backout,
	 * cf_txn_self_backout while the log survives): the log decides.
	 */
	enum cf_logrec_type posted;
	bool left_in_doubt; /* counted in ctx->in_doubt */
	struct cf_log_pin pin;
	struct cf_txn_upd *upd;
	size_t nupd, cap;
	uint64_t touched; /* bitmap of data file ids */
	uint32_t nkept; /* updates whose data write is kept for the next flush */
	struct cf_txn *next_deferred;
};

void cf_txn_ctx_init(struct cf_txn_ctx *c, struct cf_data *data, struct cf_log *log, struct cf_lock_table *locks,
		     uint32_t epoch);

/* Lock name of a record: "f<file>.r<rec>". */
void cf_txn_lock_name(char *buf, size_t cap, uint32_t file, uint64_t rec);

int cf_txn_begin(struct cf_txn_ctx *c, struct cf_txn *t);
/*
 * Lock a record for t: 0, -EALREADY (*holder_txid = the transaction of this
 * instance holding it), -EBUSY (timeout_ms 0 and another instance holds it),
 * -ETIMEDOUT, -ENOLINK (lease), -ENOSPC (record list full), session errors.
 * timeout_ms < 0: the context's lock_timeout_ms.
 */
int cf_txn_lock(struct cf_txn *t, uint32_t file, uint64_t rec, enum cf_lock_mode m, int timeout_ms,
		uint64_t *holder_txid);
/* Read a record's payload (S lock taken if t holds none on it). -EBADMSG: corrupt slot. */
int cf_txn_read(struct cf_txn *t, uint32_t file, uint64_t rec, void *payload);
/* Update a record (X lock taken if not held). -ENOSPC: log full (back out). */
int cf_txn_update(struct cf_txn *t, uint32_t file, uint64_t rec, const void *payload);
int cf_txn_commit(struct cf_txn *t);
/*
 * Commit n open transactions of one context together: one cf_txn_flush, one
 * fdatasync per file any of them touched, their COMMITs posted and awaited
 * once, then each one's locks released. On an error none of them is
 * committed unless its COMMIT was acknowledged (t->terminal == CF_LR_COMMIT,
 * state still OPEN when the release failed); a retry after -ENOLINK is safe.
 */
int cf_txn_commit_group(struct cf_txn *const *ts, size_t n);
/*
 * The context's durable point: await every posted UPDATE (durable at a
 * durable CF), check the lease, write every kept slot. 0 when nothing is kept.
 */
int cf_txn_flush(struct cf_txn_ctx *c);
/*
 * Back out t. -EALREADY when its COMMIT was acknowledged (it is committed);
 * -EINPROGRESS when its COMMIT was posted and not acknowledged (in doubt: t
 * is left to the recovery of the log, nothing is written).
 */
int cf_txn_backout(struct cf_txn *t);
/*
 * Back out what a log scan shows in flight (a clean start finding leftovers;
 * usable by recovery): before-images written back in reverse LSN order
 * (lease-checked when lease != NULL; not those never written, below),
 * fdatasync of every file written to, then
 * the log emptied durably (cf_txn_backout_close). Idempotent: a second run
 * over a fresh scan finds nothing in flight. *ntx: transactions backed out
 * (may be NULL).
 */
int cf_txn_backout_scan(struct cf_data *d, struct cf_log *log, const struct cf_log_scan *sc, int (*lease)(void *),
			void *lease_arg, uint32_t *ntx);
/*
 * Its two halves, for recovery (which times them apart and syncs between):
 * apply writes the before-images (*nupd of them), but not those of UPDATEs
 * that were never written to the data (no write mark after them in a
 * transaction that promised one, cf_logrec.h; *nunwritten of them): when it
 * wrote none, cf_data_sync_all syncs nothing. Close empties the log and
 * makes that durable (cf_log_close_durable), counting the in-flight
 * transactions it ends (*ntx) - only after the caller's fdatasync, so that a
 * second recovery is a no-op only once the data is safe, and before any lock
 * is released, so that a second recovery never writes a before-image over
 * what another system committed since.
 */
int cf_txn_backout_apply(struct cf_data *d, const struct cf_log_scan *sc, int (*lease)(void *), void *lease_arg,
			 uint64_t *nupd, uint64_t *nunwritten);
int cf_txn_backout_close(struct cf_log *log, const struct cf_log_scan *sc, int (*lease)(void *), void *lease_arg,
			 uint32_t *ntx);

/*
 * Self-backout, for a volatile CF whose connection is lost (docs/design.md,
 * "A volatile CF"): no CF operation and no lease check. If t is open and its
 * COMMIT/ABORT was not acknowledged, write its before-images back in reverse
 * order and fdatasync the files it touched; t ends ABORTED (no ABORT record:
 * the log is gone, or a peer writes the same images after fencing us). A t
 * whose terminal record was acknowledged ends in that state untouched.
 * A t whose COMMIT is in doubt is left open and untouched (-EINPROGRESS)
 * when the context's log_survives; on a lone volatile CF it is backed out.
 * Locks are not released (the CF is unreachable). Idempotent.
 */
int cf_txn_self_backout(struct cf_txn *t);

/*
 * Wait (polling every millisecond, at most timeout_ms) for a lapsed lease to
 * come back: 0, -ENOLINK (still lapsed), or the incarnation's error.
 */
int cf_txn_lease_wait(struct cf_txn_ctx *c, int timeout_ms);
/* Free a finished transaction's memory (also after a failed commit/backout). */
void cf_txn_free(struct cf_txn *t);

#endif
