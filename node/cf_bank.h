/* SPDX-License-Identifier: MIT */
/*
 * cf_bank.h - the built-in workloads of cfnode (patent Figures 4a/4b) and the
 * bank's data-directory tools (cfctl mkdata / verify).
 *
 * Bank: file 0 holds `accounts` records of one int64 balance each (record
 * size 8). Each transaction moves a random amount between two distinct random
 * accounts, locking both in lock-class order, then account-id order (id order
 * alone can deadlock through false contention of hash classes; one order on
 * classes cannot). With K transactions in flight
 * one thread pipelines: it opens transactions and commits the oldest once K
 * are open. When a lock is held by another instance it first commits its own
 * open transactions (so it then holds only the current transaction's locks,
 * taken in class order: no deadlock) and retries with backoff until the lock
 * timeout; when the lock is held by one of its own open transactions it
 * commits up to that one.
 *
 * Test workloads: hold (lock one record and keep it), lock (try one record:
 * the contended-timeout case), backout (voluntary backout restores the exact
 * before-images), logfull (one transaction fills the log: -ENOSPC, backed out
 * cleanly).
 */
#ifndef CF_BANK_H
#define CF_BANK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cf_lock.h"
#include "cf_txn.h"

struct cf_session;

#define CF_BANK_FILE 0u
#define CF_BANK_REC_SIZE 8u

struct cf_bank_opts {
	double duration_s; /* 0: run for txns */
	uint64_t txns;     /* 0: run for duration */
	uint32_t inflight; /* K >= 1 */
	uint32_t rate;     /* begin at most this many transactions a second; 0: no limit */
	/*
	 * Commit the whole ring as one group when it is full (cf_txn_commit_group;
	 * the context should defer its writes, cf_txn.h); else the oldest alone.
	 */
	bool group_commit;
	uint64_t seed;
	int64_t max_amount;
	uint64_t accounts; /* use accounts [0, accounts) of the file; 0: all */
	const char *journal; /* append "txid from to amount" per commit, or NULL */
	const char *image;   /* the CF image id, named on the journal's "I" line (may be NULL) */
	/* test workloads */
	uint64_t record;
	int hold_ms;
	uint32_t updates;
	_Atomic int *stop; /* set by another thread to end the run early */
	/*
	 * The CF was lost under the run (err), its open transactions backed out
	 * as far as this thread can (from memory on a volatile CF; the log
	 * decides the rest): wait in cf_lost until the system has switched to
	 * another CF and says 0 (the run goes on, its journal too), or fails
	 * (the run ends with err). NULL: the run ends (cf_node_switch.c).
	 */
	int (*cf_lost)(void *arg, int err);
	void *cf_lost_arg;
};

struct cf_bank_result {
	uint64_t commits, aborts, timeouts, log_full, self_waits, busy_waits;
	uint64_t lease_aborts; /* transactions backed out because the lease lapsed */
	uint64_t lease_waits;  /* commits/backouts that waited for the lease to come back */
	uint64_t self_backouts; /* backed out from memory after the (volatile) CF was lost */
	uint64_t commit_points; /* commits of one or more transactions together (one COMMIT wait each) */
	uint64_t group_commits; /* of those, shared by more than one transaction */
	uint64_t cf_switches;   /* times the run went on after a switch of CF (cf_lost) */
	double elapsed_s;
	struct cf_lock_stats lock;
	struct cf_lock_hist cas_rtt; /* raw CAS round trips on the same session */
	struct cf_lock_hist commit_lat; /* each commit point: cf_txn_commit_group, from call to return */
	int err;                     /* the error that ended the run, or 0 */
};

/* Run the bank on an attached transaction context. s: for the raw CAS probe (may be NULL). */
int cf_bank_run(struct cf_txn_ctx *c, struct cf_session *s, const struct cf_bank_opts *o, struct cf_bank_result *res);
void cf_bank_print(FILE *out, const char *who, const struct cf_bank_result *res, bool json);

/* Test workloads; they print one line saying what happened. 0 or -errno. */
int cf_bank_hold(struct cf_txn_ctx *c, const struct cf_bank_opts *o, FILE *out);
int cf_bank_lock(struct cf_txn_ctx *c, const struct cf_bank_opts *o, FILE *out);
int cf_bank_backout(struct cf_txn_ctx *c, const struct cf_bank_opts *o, FILE *out);
int cf_bank_logfull(struct cf_txn_ctx *c, const struct cf_bank_opts *o, FILE *out);

/* Data directory tools. */
/* The bank's file: -EEXIST if there is one already, unless replace (see cf_data_create). */
int cf_bank_mkdata(const char *dir, uint64_t accounts, int64_t balance, bool replace);
/*
 * Check every record's crc and the total against expect_total (or the total
 * stored in the file header when have_total is false). Prints a report (off
 * accounts named) to out. 0 when it holds, -EBADMSG when corrupt, -EDOM when
 * the total is off, other -errno.
 */
int cf_bank_verify(const char *dir, bool have_total, int64_t expect_total, bool json, FILE *out);

#endif
