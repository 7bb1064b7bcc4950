/* SPDX-License-Identifier: MIT */
/*
 * cf_lock.h - record locks in the CF lock table, tracked in the instance's
 * lock record list.
 *
 * A resource name hashes to a class (cf_lock_class); the class's 64-bit lock
 * word (cf_words.h) names every holder instance. Several names of one class
 * share one hold of this instance: a per-class {mode, refs} in memory, so
 * false contention with oneself is free; false contention with another
 * instance is allowed and counted (the CF lock structure does the same).
 *
 * Every name held has an entry in the record list (struct cf_rec_entry),
 * written BEFORE the CAS that takes the class: the WRITE and the CAS are posted
 * together on one connection (RC order) and only the CAS is awaited, so an
 * uncontended acquire costs one round trip and a crash at any point leaves
 * nothing untracked (spin counterexample "rlorder").
 *
 * Contended acquire: bounded exponential backoff (10 us .. 1 ms, jittered),
 * re-reading the word, until timeout_ms; then -ETIMEDOUT. timeout_ms == 0 is a
 * try: one attempt, -EBUSY when another instance holds the class.
 *
 * Release: when the last name of a class goes, CAS the word to
 * cf_lock_release_next (retrying on change), then clear the entry (posted).
 * cf_lock_release_owner does it for all of an owner's names at once: every
 * class it frees CASed in one batch (one round trip), newest first.
 *
 * Names are owned by a caller tag (a transaction): a name held in X by one
 * tag (or requested in X while held by another) is -EALREADY with the
 * holder's tag, so the caller can finish that holder first.
 */
#ifndef CF_LOCK_H
#define CF_LOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "cf_layout.h"
#include "cf_words.h"

struct cf_session;

/* Latency histogram: log-linear buckets of nanoseconds (about 6 % resolution). */
#define CF_HIST_SUB 16u
#define CF_HIST_BUCKETS (64u * CF_HIST_SUB)
struct cf_lock_hist {
	uint64_t n, sum, max, min;
	uint64_t b[CF_HIST_BUCKETS];
};
void cf_lock_hist_add(struct cf_lock_hist *h, uint64_t ns);
void cf_lock_hist_merge(struct cf_lock_hist *into, const struct cf_lock_hist *from);
/* Value at percentile p (0..100): the upper bound of its bucket. */
uint64_t cf_lock_hist_pct(const struct cf_lock_hist *h, double p);

struct cf_lock_stats {
	uint64_t acquires;     /* successful acquires (names) */
	uint64_t cas_acquires; /* of which took the class with a CAS */
	uint64_t shared_self;  /* of which rode on a class hold this instance already had */
	uint64_t contended;    /* acquires that found the class held by another instance (incl. false contention) */
	uint64_t self_conflicts; /* -EALREADY: the name held by another transaction of this instance */
	uint64_t timeouts;
	uint64_t releases;
	uint64_t queued;       /* waits queued at the CF (lock hand-off) */
	uint64_t handed;       /* of which the CF granted (in the reply or by event) */
	uint64_t polls;        /* lock-word re-reads while waiting (no hand-off: an old CF, a full queue, tests) */
	uint64_t kicks;        /* releases of a queued class, told to the CF */
	struct cf_lock_hist lat; /* acquire latency, CAS acquires only */
};

struct cf_lock_name;
struct cf_lock_cstate;

struct cf_lock_table {
	struct cf_session *s;
	uint8_t *mem; /* memory image instead of a session (tests) */
	uint32_t inst, epoch;
	uint32_t lock_entries, rec_entries;
	uint64_t locks_off, rec_off; /* image offsets */
	uint64_t span_off;           /* the instance's cf_log_hdr.rec_span */
	uint32_t span;               /* entries below it may be used: what rec_span says (0: not written yet) */
	struct cf_lock_name *names;  /* [rec_entries], index = record list entry */
	struct cf_lock_cstate *cls;  /* [rec_entries] */
	int32_t *name_bkt, *cls_bkt; /* hash buckets [nbkt] */
	uint32_t nbkt;
	int32_t name_free, cls_free;
	uint32_t nheld;    /* record entries in use */
	uint32_t nclasses; /* classes held */
	struct cf_rec_entry *ent; /* [rec_entries] staging of posted entry WRITEs */
	uint64_t rng;
	uint64_t ticket;  /* the last LOCK_WAIT's */
	uint64_t acq_seq; /* names acquired so far: their order */
	bool no_handoff;  /* the CF has no lock hand-off (-ENOSYS): poll, as before */
	struct cf_lock_stats st;
};

/*
 * Lock table of instance inst (its record list must be granted to s, i.e.
 * after INST_ATTACH), holder tag epoch (the owner system's epoch).
 */
int cf_lock_table_init(struct cf_lock_table *t, struct cf_session *s, uint32_t inst, uint32_t epoch);
/* Same over an image in memory (unit tests): atomics are CPU atomics. */
int cf_lock_table_init_mem(struct cf_lock_table *t, void *image, const struct cf_image_map *map, uint32_t inst,
			   uint32_t epoch);
void cf_lock_table_fini(struct cf_lock_table *t); /* frees memory only; holds stay (see release_owner) */

/*
 * Acquire name in mode m for owner tag. 0 with *entry (record list index);
 * -EALREADY (*holder = the owner tag holding it), -EBUSY (try), -ETIMEDOUT,
 * -ENOSPC (record list full), -EINVAL (name too long/empty), -EBADMSG (the
 * lock word is malformed), or the session's error (the incarnation is over).
 */
int cf_lock_acquire(struct cf_lock_table *t, const char *name, enum cf_lock_mode m, uint64_t owner, int timeout_ms,
		    uint32_t *entry, uint64_t *holder);
/* Release one name (its entry). */
int cf_lock_release(struct cf_lock_table *t, uint32_t entry);
/* Release every name of owner tag. */
int cf_lock_release_owner(struct cf_lock_table *t, uint64_t owner);
/* Does this instance hold name locally (any owner)? mode out, or 0. */
enum cf_lock_mode cf_lock_local_mode(const struct cf_lock_table *t, const char *name);
/* Mode in which owner tag holds name, or 0. */
enum cf_lock_mode cf_lock_owner_mode(const struct cf_lock_table *t, const char *name, uint64_t owner);

/*
 * Recovery and clean start: release every hold of instance inst that its
 * record list names (for each used entry: CAS the class word removing inst,
 * retrying on change; a class inst does not hold is skipped), then clear the
 * list. epoch is the incarnation the holds were taken under (the failed
 * registration word's): the first CAS compares with the word that implies,
 * so a right guess costs no READ; a wrong one (0 when unknown) costs one more
 * round trip, never correctness. s must hold the RECORDS grant of inst and
 * the LOCKS grant. *released counts the classes freed of inst (may be NULL).
 * records: the first nrecords entries of the record list already read
 * (cf_lock_post_read_records, then cf_session_drain; nrecords the span of
 * cf_log_hdr, beyond which no entry is in use), or NULL to read the whole
 * list here. The list is cleared by POSTED writes: the caller's next awaited
 * operation on s covers them.
 */
int cf_lock_release_instance(struct cf_session *s, uint32_t inst, uint32_t epoch,
			     const struct cf_rec_entry *records, uint32_t nrecords, uint32_t *released);
/* Same on a memory image (tests). */
int cf_lock_release_instance_mem(void *image, const struct cf_image_map *map, uint32_t inst, uint32_t epoch,
				 uint32_t *released);

/*
 * Post the READs of the first n entries of instance inst's record list into
 * out without waiting: they complete by the next cf_session_drain, whose
 * result covers them. Recovery overlaps them with its fdatasync.
 */
int cf_lock_post_read_records(struct cf_session *s, uint32_t inst, struct cf_rec_entry *out, uint32_t n);

/* Read instance inst's record list into out[record_entries] (cfctl, recovery). */
int cf_lock_read_records(struct cf_session *s, uint32_t inst, struct cf_rec_entry *out);

#endif
