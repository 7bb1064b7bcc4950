/* SPDX-License-Identifier: MIT */
/*
 * cf_fault.h - named fault-injection points (SQLite faultsim, redis DEBUG).
 *
 * Compiled in only with -Dfault-injection=true (CF_FAULT_INJECTION); in a
 * release build CF_FAULT() is nothing. A point fires when the environment
 * names it:
 *
 *   CF_FAULT=<point>[:<action>[:<skip>]]     e.g. CF_FAULT=txn.after_undo:kill:20
 *
 * action: kill (SIGKILL itself: a process crash, default), stop (SIGSTOP
 * itself: a freeze; SIGCONT resumes it), abort, fail (only where the point is
 * CF_FAULT_FAILS: the call returns 1 and the caller takes its error path, as
 * for an allocation that failed). skip: how many passes to let
 * through before firing (default 0). A point fires at most once per process.
 * CF_FAULT_LOG=1 prints each firing to stderr first.
 *
 * The points the crash loop runs (keep in sync with tests/fault/points.txt):
 *   txn.after_lock_record txn.after_lock_cas txn.after_undo txn.after_data_write
 *   txn.after_fsync txn.after_commit txn.before_release txn.after_lease_check
 *   rec.after_register rec.after_attach rec.mid_backout rec.after_backout
 *   rec.before_unregister
 *   srv.mid_sweep srv.between_fence_and_mark
 * Not in points.txt, each driven by a test of its own: with action fail,
 * dx.copy (a duplexed primary cannot copy a batch), txn.commit_unanswered (the
 * CF executed a group's COMMITs, their answer is lost), and in cfserver's HELLO
 * (tests/fault/edges.sh version, hung) srv.hello_unanswered (no answer: the
 * handshake bound closes the connection), srv.hello_newer_only (a CF of version
 * CF_PROTO_VERSION_MAX + 1 only: the version mismatch refusal) and
 * srv.hello_choose_newer (the CHALLENGE, authenticated as ever, chooses that
 * version whatever the client offers); and hb.before_first_beat (a new
 * incarnation between its JOIN and its first beat:
 * tests/recovery/test_first_beat.sh freezes it there).
 */
#ifndef CF_FAULT_H
#define CF_FAULT_H

#ifdef CF_FAULT_INJECTION
/* 1 when the point fired with action "fail" (no signal: the caller takes its error path). */
int cf_fault_point(const char *name);
#define CF_FAULT(name) ((void)cf_fault_point(name))
#define CF_FAULT_FAILS(name) cf_fault_point(name)
#else
#define CF_FAULT(name) ((void)0)
#define CF_FAULT_FAILS(name) 0
#endif

#endif
