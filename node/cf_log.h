/* SPDX-License-Identifier: MIT */
/*
 * cf_log.h - an instance's private undo log in its CF log region.
 *
 * Region: struct cf_log_hdr {head, head_lsn} then a ring of ring_size bytes
 * (cf_layout.h). Positions are logical byte offsets that only grow; the ring
 * offset of a logical position p is p % ring_size. Records are those of
 * cf_logrec.h.
 *
 * Invariants (the writer keeps them, recovery relies on them):
 *  - LSNs are consecutive from head_lsn. A PAD record consumes an LSN too.
 *  - A record never straddles the ring end: when fewer bytes than the next
 *    record remain before the end, a PAD fills them (if at least a header fits;
 *    otherwise the reader wraps by itself) and the record goes to offset 0.
 *  - The header's head is never past the first record of a transaction that
 *    has neither COMMIT nor ABORT in the log ("pinned"), and the writer never
 *    reuses ring space before the CF holds a head past it: free space is
 *    computed from the head value last written to the CF. So everything a
 *    recovery needs lies in [head, tail).
 *  - Scanning from head stops at the first record that fails
 *    cf_logrec_parse (torn, corrupt: -EBADMSG) or LSN continuity (stale bytes
 *    of an earlier lap). Nothing past that point is ever applied.
 *  - A reserve of CF_LOG_TXN_RESERVE bytes per pinned transaction is kept
 *    free for its terminal records, so COMMIT/ABORT/END always fit: log full
 *    (-ENOSPC) can only hit BEGIN and UPDATE, and the transaction then backs
 *    out cleanly.
 *
 * Write-ahead: cf_log_append(..., CF_LOG_WAIT) returns only once the record
 * is visible at the CF (the completion), so a data write after it is covered.
 * On a durable CF reached by a transport whose completions are not
 * durability (verbs to an --nvram CF, cf_transport.h) it returns only once
 * the record is also durable: one persist covering every byte appended since
 * the last persist (BEGIN and UPDATE together, END of the previous
 * transaction with the COMMIT). cf_log_flush persists the same way (the
 * ABORT records of a backout, before its locks go). A region header (head)
 * that is not yet durable is persisted before the writer reuses ring space
 * it freed: otherwise, after a power loss, the durable old head could point
 * at overwritten records and hide a live transaction.
 */
#ifndef CF_LOG_H
#define CF_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_layout.h"
#include "cf_logrec.h"

struct cf_session;

/*
 * COMMIT|ABORT + END, each possibly preceded by a PAD that wastes < a record
 * (4 headers), and a write mark with its PAD (2 more): a mark uses the
 * reserve, and between two marks of a log comes an UPDATE, whose append
 * keeps the whole reserve free (cf_txn_flush).
 */
#define CF_LOG_TXN_RESERVE (6u * sizeof(struct cf_logrec_hdr))
#define CF_LOG_POST_ARENA (128u * 1024u) /* posted records awaiting completion */

/* A pinned transaction: its first record's position and LSN. */
struct cf_log_pin {
	uint64_t pos, lsn;
	struct cf_log_pin *prev, *next;
	bool pinned;
};

struct cf_log {
	struct cf_session *s;
	uint32_t inst;
	uint64_t region_off; /* image offset of the region (its header) */
	uint64_t ring_size;
	uint64_t head, head_lsn; /* as the CF holds them */
	uint64_t tail, next_lsn; /* where the next record goes */
	uint64_t npinned;
	struct cf_log_pin *pins_first, *pins_last; /* in position order */
	/* posted (unawaited) records must stay valid until completion */
	uint8_t *post_arena; /* CF_LOG_POST_ARENA bytes, reused from the start after a drain */
	uint32_t post_used;
	uint8_t *buf; /* staging for one record */
	uint8_t *mem; /* memory-backed region (tests, offline tools) instead of the session */
	/* durability (cf_session_persist_needed at attach; never for l->mem) */
	bool persist;
	uint64_t durable_tail; /* ring bytes before this position are durable */
	uint64_t durable_head; /* the head value last made durable */
	bool head_unpersisted; /* attached to a durable CF: its header may be ahead of the durable one's */
	/* counters */
	uint64_t appends, head_writes, full, persists, marks;
};

/* One parsed record of a scan. image points into the caller's region buffer. */
struct cf_log_rec {
	struct cf_logrec_hdr h;
	uint64_t pos; /* logical position */
	const uint8_t *image;
};

struct cf_log_scan {
	uint64_t head, head_lsn; /* from the region header */
	uint32_t rec_span;       /* cf_log_attach: the record-list entries to read (cf_log_rec_span) */
	uint64_t end, next_lsn;  /* where a valid scan stopped: the writer continues here */
	/*
	 * 1 + the LSN of the last PAD scanned (a write mark or the ring's end), 0
	 * if none: an UPDATE of a CF_LR_BEGIN_MARKED transaction at an LSN from
	 * here on was never written to the data (cf_logrec.h).
	 */
	uint64_t mark_end;
	/*
	 * Why the scan stopped: 0 on zero bytes or a whole record of an earlier
	 * lap (LSN); -EBADMSG on bytes that do not parse — a torn or corrupt
	 * record, or leftovers of an earlier lap (indistinguishable, and never
	 * applied either way).
	 */
	int stop;
	uint64_t stop_lsn; /* the LSN of the whole record that ended it (0 if none) */
	const char *stop_where;  /* cf_corrupt_where() when stop == -EBADMSG */
	struct cf_log_rec *recs; /* in LSN order, PADs left out */
	size_t n, cap;
	/* cf_log_attach's copy of the region, which recs' images point into: the scan's to free */
	void *copy;
	uint64_t copy_len;
	uint64_t copy_from, copy_n; /* the ring bytes read into it (cf_log_copy_put) */
};

/* ---- pure: parse a whole region (header + ring) already in memory ---- */

/*
 * Scan region (region_len bytes = struct cf_log_hdr + ring) from head, filling
 * sc (recs allocated; free with cf_log_scan_free). Returns 0 (the scan's stop
 * reason is in sc->stop, never an error by itself), -EBADMSG when the header
 * is impossible (head beyond anything), or -ENOMEM.
 */
int cf_log_scan(const void *region, uint64_t region_len, struct cf_log_scan *sc);
void cf_log_scan_free(struct cf_log_scan *sc);

/*
 * The in-flight transactions of a scan (records but no COMMIT or ABORT): their
 * UPDATE records in reverse LSN order (the backout order) into *out (allocated,
 * free()), count in *n; distinct txids in *ntx (may be NULL).
 */
int cf_log_scan_inflight(const struct cf_log_scan *sc, struct cf_log_rec **out, size_t *n, size_t *ntx);
/*
 * The same UPDATEs, less those that never reached the data (no write mark
 * after them in a transaction that promised one, cf_logrec.h; *nunwritten of
 * them): what a backout writes back. *out may be NULL when *n is 0.
 */
int cf_log_scan_written(const struct cf_log_scan *sc, struct cf_log_rec **out, size_t *n, size_t *nunwritten);
/* Is txid in-flight in this scan? */
bool cf_log_scan_txn_open(const struct cf_log_scan *sc, uint64_t txid);
/*
 * The distinct in-flight txids of a scan (records but no COMMIT or ABORT), in
 * the order of their first records, into *out (allocated, free()), count in
 * *n. 0 or -ENOMEM.
 */
int cf_log_scan_open_txids(const struct cf_log_scan *sc, uint64_t **out, size_t *n);

/* ---- in-memory ring arithmetic (pure; unit-tested) ---- */

/* Bytes free for records after head (as the CF holds it). */
static inline uint64_t cf_log_free(const struct cf_log *l) { return l->ring_size - (l->tail - l->head); }
static inline uint64_t cf_log_used(const struct cf_log *l) { return l->tail - l->head; }

/*
 * Lay out a record of `size` bytes at l->tail: sets *pad (bytes to skip at the
 * ring end, 0 if none) and returns the total bytes consumed (pad + size).
 */
uint64_t cf_log_need(const struct cf_log *l, uint32_t size, uint64_t *pad);

/* ---- on a session ---- */

/*
 * Attach instance inst's log region through session s (which must hold its
 * LOG grant): reads and scans the region, positions the writer after the
 * last valid record. On a durable CF the live records it found count as
 * not yet durable: the next cf_log_persist or cf_log_flush persists them
 * with whatever was appended since. Nothing may be
 * acted on from what it found before that (cf_txn_backout_close persists
 * the emptied log): a switch of CF or a power loss could still
 * take those bytes back. When sc is not NULL the scan is handed to the
 * caller (recovery: the records, the in-flight transactions) together with
 * the copy of the region its images point into (sc->copy), which
 * cf_log_scan_free releases.
 */
int cf_log_attach(struct cf_log *l, struct cf_session *s, uint32_t inst, struct cf_log_scan *sc);
/*
 * The same, from a header already known (cf_session_inst_attach_log: the CF
 * sent it with the grants, after its fence of every earlier writer), which
 * saves its READ; NULL: READ it.
 */
int cf_log_attach_hdr(struct cf_log *l, struct cf_session *s, uint32_t inst, const struct cf_log_hdr *known,
		      struct cf_log_scan *sc);
void cf_log_detach(struct cf_log *l);

/*
 * Make one copy of a log region of size bytes resident now, for the next
 * cf_log_attach to read into (cf_log_copy.c): a recovery then meets no page
 * fault where it reads the failed instance's log. Call it off the failover
 * path, once the geometry is known (the agent does, as it starts). Costs size
 * bytes of memory for the life of the process; nothing above
 * CF_LOG_COPY_WARM_MAX is kept. 0 or -ENOMEM (reads then map afresh).
 */
#define CF_LOG_COPY_WARM_MAX (64ull << 20)
int cf_log_copy_warm(uint64_t size);
/* Internal (cf_log.c): a zeroed copy of size bytes, or NULL; its return, with the ring bytes written. */
void *cf_log_copy_get(uint64_t size);
void cf_log_copy_put(void *copy, uint64_t size, uint64_t from, uint64_t n);

/*
 * A log over a region in memory (region_len bytes incl. header), positioned
 * like cf_log_attach: for unit tests and offline tools. No session I/O.
 */
int cf_log_attach_mem(struct cf_log *l, void *region, uint64_t region_len);

enum cf_log_flags {
	CF_LOG_WAIT = 0x1,     /* wait for the completion (write-ahead, commit point) */
	CF_LOG_TERMINAL = 0x2, /* may use the reserve (COMMIT, ABORT, END) */
};

/*
 * Append a record. Posted records (no CF_LOG_WAIT) must be header-only
 * (BEGIN, END). Returns 0 with *lsn (may be NULL) or -ENOSPC (log full:
 * nothing written), -EINVAL, or the session's error.
 */
int cf_log_append(struct cf_log *l, enum cf_logrec_type type, uint64_t txid, uint32_t file, uint64_t offset,
		  const void *image, uint32_t len, unsigned flags, uint64_t *lsn);

/*
 * A write mark (cf_logrec.h): a posted header-only PAD, which may use the
 * reserve. The data writes it allows may start once it is at the CF, as
 * after any posted record: after a cf_log_flush.
 */
int cf_log_mark(struct cf_log *l);

/* Pin the next record's position (call before a transaction's first append). */
void cf_log_pin(struct cf_log *l, struct cf_log_pin *p);
void cf_log_unpin(struct cf_log *l, struct cf_log_pin *p);

/*
 * Move the CF's head to the oldest pin (or the tail when none): one WRITE of
 * the header. Done lazily by append when space runs short; callable directly.
 */
int cf_log_advance_head(struct cf_log *l);
/*
 * Wait until every posted append has landed (one round trip), and on a
 * persisting log until it is durable too (cf_log_persist).
 */
int cf_log_flush(struct cf_log *l);
/*
 * Make everything appended (and the head) durable at the CF: one persist per
 * disjoint dirty range (usually one), none when nothing changed or the log
 * does not persist. Bytes posted but not yet completed are covered: the
 * persist request follows them on the same connection.
 */
int cf_log_persist(struct cf_log *l);

/*
 * Reset a log region: head = tail, head_lsn = next_lsn, i.e. empty, LSNs go
 * on (recovery, after its ABORT/END records, and a clean start).
 */
int cf_log_reset(struct cf_log *l);

/*
 * Empty the log and make that durable before returning: head = tail, LSNs go
 * on, and (on a durable CF) the header persisted, nothing else. What a
 * recovery does once its before-images are synced, before it releases a
 * lock: no later scan of this log, at this CF or from its durable copy
 * after a switch or a restart, finds a transaction to back out again, so a
 * record that another system commits after the release is never overwritten
 * by a second backout; a COMMIT the scan found stays committed for the same
 * reason. One awaited WRITE (memory CF) or one persist (durable CF).
 */
int cf_log_close_durable(struct cf_log *l);

#endif
