/* SPDX-License-Identifier: MIT */
/*
 * cf_agent.h - a system's membership in the cluster: join, heartbeat and
 * lease, instance contexts, the agent event loop.
 *
 * Threads and connections of one cfnode process (a session is used by one
 * thread only):
 *   agent thread (main): the JOIN session, one libev loop: CF events, the
 *                        detector and recovery (cf_agent_recovery.h), the watch
 *                        of the peers' heartbeats (cf_watch.h), shutdown.
 *   heartbeat thread:    its own session (CONN_ATTACH) and libev loop; every h
 *                        it WRITEs the whole struct cf_hb_slot (hb++, epoch,
 *                        home instance, status counters) and records the
 *                        monotonic time at which the last completed beat was
 *                        ISSUED (conservative: the CF saw it no earlier).
 *   workload thread:     its own session, holding the home instance's LOG and
 *                        RECORDS grants (INST_ATTACH).
 *
 * Lease: cf_agent_lease_check() is valid while the last completed heartbeat
 * was issued less than T/2 ago (T from the server's WELCOME, or a smaller
 * --hb-timeout). Every data-directory write and every CF write of a
 * transaction checks it first; expired → -ENOLINK.
 *
 * Files, each calling only those below it: cf_agent.c (join, heartbeat,
 * lease, instance contexts), cf_agent_recovery.c (the agent's side of peer
 * recovery, cf_agent_recovery.h), cf_agent_loop.c (cf_agent_claim,
 * cf_inst_ctx_attach and cf_agent_run: the waits that serve recovery).
 *
 * Incarnation (M5, docs/design.md §0): any connection error ends it. The process must not
 * carry locks or transactions over: cf_agent_over() returns the error and the
 * daemon exits (code 75) to be restarted as a new incarnation.
 */
#ifndef CF_AGENT_H
#define CF_AGENT_H

#include <ev.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cf_data.h"
#include "cf_fence.h"
#include "cf_lock.h"
#include "cf_log.h"
#include "cf_sentinel.h"
#include "cf_session.h"
#include "cf_txn.h"
#include "cf_watch.h"
#include "cf_watchdog.h"

struct cf_agent;

enum cf_agent_level { CF_AGENT_ERR = 0, CF_AGENT_WARN = 1, CF_AGENT_INFO = 2, CF_AGENT_DEBUG = 3 };

struct cf_agent_opts {
	const char *cf_addr;
	const char *transport; /* "tcp" (default) or "verbs" */
	const char *system;
	const char *instance;
	const char *data_dir;
	uint8_t key[CF_KEY_LEN];
	uint64_t hb_interval_ns; /* 0: the server's h */
	uint64_t hb_timeout_ns;  /* 0: the server's T; else must be <= it */
	int connect_timeout_ms;
	/*
	 * Start the sentinel at JOIN (cf_sentinel.h): the joining thread
	 * must live as long as the process, for its exit is taken as the
	 * process's death. cfnode's main thread does; an application's thread
	 * that opened a libcfnode handle need not, so the library leaves it out.
	 */
	bool sentinel;
	/* for the detector and recovery (cf_agent_recovery.c) */
	int policy; /* -1: the cluster's; else enum cf_policy */
	struct cf_fence_cfg fence;
	uint64_t wd_margin_ns; /* slack on a failed system's watchdog wait; 0: CF_WD_MARGIN_NS */
	/*
	 * cfnode --recovery-journal: every recovery this system runs appends the
	 * outcome it gives each unfinished transaction of the failed instance's
	 * log, "R INST_INDEX TXID C|B INST_NAME IMAGE" (C committed: its COMMIT is in the
	 * log; B backed out). NULL: none.
	 */
	const char *recovery_journal;
	/* the daemon's logger (library code does not print) */
	void (*logf)(void *arg, int level, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
	void *log_arg;
	/* the process's signals are an application's (the library): no SIGINT/SIGTERM watchers */
	bool app_signals;
	/*
	 * A CF that does not complete a heartbeat for 2 T ends every session's
	 * wait (-EHOSTDOWN, within 20 ms) instead of the 5 s op timeout: set
	 * when the system may switch to another CF of a duplexed pair, which
	 * takes over from a frozen primary after its link timeout.
	 */
	bool stall_ends_sessions;
};

/*
 * An instance this system works on: its home instance, or one it assumed as
 * counterpart. The log, lock table and transaction context are used by the
 * thread that owns s.
 */
struct cf_inst_ctx {
	struct cf_agent *a;
	uint32_t index;
	char name[CF_NAME_MAX];
	bool home;
	uint64_t reg;      /* the registration word as we last set/saw it */
	uint64_t log_off;  /* image offset of its log region */
	uint64_t rec_off;  /* image offset of its record list */
	uint64_t log_size;
	struct cf_session *s; /* holds its LOG and RECORDS grants (after cf_inst_ctx_attach) */
	struct cf_data data;  /* the data directory, opened by the using thread */
	struct cf_log log;
	struct cf_lock_table locks;
	struct cf_txn_ctx txn;
	struct cf_txn_pub pub;
	bool attached;
};

struct cf_hb {
	struct cf_session s;
	pthread_t thr;
	struct ev_loop *loop;
	ev_timer timer;
	ev_async stop_async;
	uint64_t interval_ns;
	struct cf_hb_slot slot;
	_Atomic uint64_t last_ok_ns; /* issue time of the last completed beat */
	_Atomic uint64_t beats;
	_Atomic int err;
	_Atomic int realtime; /* the thread runs SCHED_FIFO */
	bool running;
};

#define CF_AGENT_MAX_INSTS CF_MAX_INSTANCES_LIMIT

struct cf_agent {
	struct cf_agent_opts o;
	struct cf_session s; /* JOIN session (agent thread) */
	struct cf_sentinel sen; /* tells the CF of this process's death early (cf_sentinel.h) */
	uint32_t sys, epoch;
	uint64_t token;
	char host[CF_HOST_MAX];
	uint64_t pid, starttime;
	uint64_t hb_timeout_ns; /* T in force */
	/* the CF image joined (header reserved[0..2], read at join): markers name it */
	uint64_t image_id[2];
	bool cf_volatile; /* the image dies with cfserver: self-backout on a lost CF */
	struct cf_hb hb;
	_Atomic(struct cf_txn_pub *) hb_pub; /* counters the heartbeat carries */
	_Atomic uint64_t hb_home1;           /* home instance index + 1 */
	struct cf_inst_ctx *insts[CF_AGENT_MAX_INSTS];
	uint32_t ninsts;
	struct cf_inst_ctx *home;
	/* agent loop */
	struct ev_loop *loop;
	ev_async wake; /* other threads poke the agent loop */
	/*
	 * loop and wake are set up (the agent thread creates them lazily in
	 * cf_agent_run): other threads poke only after seeing this, which
	 * publishes both. A poke before it is not lost: the flag it accompanies
	 * (over, stop) is checked before the loop first blocks.
	 */
	atomic_bool loop_ready;
	ev_io ev_w;    /* JOIN session: events */
	ev_timer tick;
	/* node-side detection (cf_watch.h): the heartbeat table read every max(h, T/8) */
	ev_timer watch_t;
	struct cf_watch watch;
	ev_signal sigint, sigterm;
	_Atomic int over;   /* -errno: this incarnation is over */
	_Atomic uint64_t over_ns; /* monotonic time it was first marked over (0: not yet) */
	_Atomic int stop;   /* shutdown requested */
	_Atomic int leaving;
	void *recovery;     /* cf_agent_recovery.c's state */
	/* the watchdog (--watchdog): petted by the heartbeat thread while the lease holds */
	struct cf_watchdog wd;
	_Atomic(struct cf_watchdog *) wd_on; /* &wd once armed and announced, else NULL */
};

void cf_agent_log(struct cf_agent *a, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void cf_agent_init(struct cf_agent *a, const struct cf_agent_opts *o);
/*
 * Connect, authenticate and JOIN (records pid, start time and host). Errors of
 * cf_session_open (-ECONNREFUSED/-ETIMEDOUT/-EHOSTUNREACH: unavailable,
 * -EPERM: key refused, -EPROTO) or of the JOIN.
 */
int cf_agent_join(struct cf_agent *a);
/* Start the sentinel, or tell it of the CF this incarnation is on now (cf_agent.c). */
void cf_agent_sentinel_watch(struct cf_agent *a);
/* A further session of this system (CONN_ATTACH): workload, recovery. */
int cf_agent_open_session(struct cf_agent *a, struct cf_session *s);
/* The stall hook of a session of this system (cf_session.h; stall_ends_sessions). */
void cf_agent_watch_session(struct cf_agent *a, struct cf_session *s);
/* After a->s was opened again (a switch of CF): the agent loop watches the new connection. */
void cf_agent_rebind(struct cf_agent *a);
/* Start the heartbeat thread; returns after the first beat completed. */
int cf_agent_hb_start(struct cf_agent *a);
void cf_agent_hb_stop(struct cf_agent *a);
/*
 * 0 while the lease is valid, -ENOLINK when it lapsed (it comes back with the
 * next completed heartbeat, unless the CF declares this system failed), or
 * the error that ended the incarnation.
 */
int cf_agent_lease_check(struct cf_agent *a);
int cf_agent_lease_cb(void *agent); /* same, for cf_txn_ctx.lease_check */
/* Milliseconds since the last completed heartbeat was issued. */
uint64_t cf_agent_hb_age_ms(struct cf_agent *a);

/*
 * Arm the watchdog at path (cf_watchdog.h) and announce it to the CF
 * (CF_CTRL_WATCHDOG), after the heartbeat started and before any instance is
 * claimed: from then on the heartbeat thread pets it after each beat while
 * the lease holds. A counterpart that cannot fence this system otherwise
 * waits out T/2 + the announced timeout. cf_agent_fini disarms it (magic
 * close): by then no thread of this process writes any more. msg receives the
 * CF's refusal if any.
 */
int cf_agent_watchdog_arm(struct cf_agent *a, const char *path, uint32_t timeout_ms, char *msg, size_t msglen);

/* INST_OPEN: a context for the named instance (index, home, reg, offsets). */
int cf_agent_inst_open(struct cf_agent *a, const char *name, bool home, struct cf_inst_ctx **out);
struct cf_inst_ctx *cf_agent_inst_find(struct cf_agent *a, uint32_t index);
void cf_agent_inst_free(struct cf_agent *a, struct cf_inst_ctx *ic);

/* Read an instance's registration word / a system slot through the JOIN session. */
int cf_agent_read_reg(struct cf_agent *a, uint32_t index, uint64_t *reg);
int cf_agent_read_sys(struct cf_agent *a, uint32_t sys, struct cf_sys_slot *out);

/*
 * Take the home instance: CAS INACTIVE_CLEAN(k) → ACTIVE(me, epoch, k). Waits
 * (logging once who holds it) while it is ACTIVE under another owner or under
 * an older incarnation of this system, retrying on INST_CLEAN events and by
 * polling every 50 ms; on INACTIVE_FAILED calls cf_agent_self_recover().
 * Returns 0 once ACTIVE(me), -EINTR when stop was requested, or -errno.
 */
int cf_agent_claim(struct cf_agent *a, struct cf_inst_ctx *ic);

/*
 * Attach ic on session s (INST_ATTACH: LOG and RECORDS grants), open the data
 * directory, attach the log (scan) and the lock table, and set up the
 * transaction context with the agent's lease. With clean_start, any holds left
 * in the record list are released and the log is reset (a CLEAN instance has
 * nothing in flight; in-flight records found are backed out first).
 */
int cf_inst_ctx_attach(struct cf_inst_ctx *ic, struct cf_session *s, bool clean_start);
/* The part of cf_inst_ctx_attach after the CF granted the attach on s (nothing waits). */
int cf_inst_ctx_setup(struct cf_inst_ctx *ic, struct cf_session *s, bool clean_start);
void cf_inst_ctx_detach(struct cf_inst_ctx *ic);

/*
 * Agent loop (agent thread): CF events to cf_recovery_on_event, a 50 ms tick
 * to cf_recovery_tick (fallback polling), SIGINT/SIGTERM → stop. Returns 0 on
 * a requested stop, or the error that ended the incarnation.
 */
int cf_agent_run(struct cf_agent *a);
/* Ask the agent loop to stop / to look at its flags (any thread). */
void cf_agent_request_stop(struct cf_agent *a);
void cf_agent_poke(struct cf_agent *a);
/* Mark the incarnation over (any thread): err is the connection error. */
void cf_agent_set_over(struct cf_agent *a, int err);
static inline int cf_agent_over(struct cf_agent *a) { return atomic_load(&a->over); }

/*
 * Clean leave: stop the heartbeat, unregister every instance still ACTIVE(me)
 * (INST_UNREG → INACTIVE_CLEAN), GOODBYE. Close the system's other sessions
 * only after this: the CF treats a connection closing before the GOODBYE as
 * a failure of the system.
 */
int cf_agent_leave(struct cf_agent *a);
void cf_agent_fini(struct cf_agent *a);

#endif
