/* SPDX-License-Identifier: MIT */
/*
 * cf_node.h - the life of one incarnation of a system, shared by the cfnode
 * daemon and the public library (cfnode.h): join, heartbeat, the data-directory
 * marker check, watchdog and unfence, claim of the home instance, its marker,
 * the recovery module, the attach of the home instance on a workload session;
 * then the clean leave, or the end of an incarnation that is over.
 *
 * The caller runs the agent loop (cf_agent_run on n->a) in a thread of its
 * choice: cfnode in its main thread, the library in a thread of its own.
 *
 * Every step logs once, at its decision point, through the agent's logger
 * (cf_agent_opts.logf), with the words cfnode has always used: the tests and
 * the operators read them. Results are cfnode's exit codes (CF_NODE_EX_*);
 * n->err keeps the -errno behind the last failure.
 */
#ifndef CF_NODE_H
#define CF_NODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cf_agent.h"

/* cfnode's exit codes, the classification of every outcome (sysexits.h values; cf_cli.h's table) */
enum cf_node_ex {
	CF_NODE_EX_OK = 0,
	CF_NODE_EX_OTHER = 1,
	CF_NODE_EX_USAGE = 2,
	CF_NODE_EX_UNAVAILABLE = 69, /* the CF cannot be reached */
	CF_NODE_EX_OVER = 75,        /* this incarnation is over: restart to rejoin */
	CF_NODE_EX_KEY = 77,         /* cluster key refused by the CF, or its file unusable */
	CF_NODE_EX_DATA = 78,        /* the data directory needs the operator: do not restart */
};

#define CF_NODE_MARKER_WAIT_MS 10000

struct cf_node_opts {
	struct cf_agent_opts agent; /* address, names, key, h, T, policy, fence, logger */
	const char *key_file;       /* named in messages only (the key is in agent.key) */
	const char *watchdog;       /* NULL: none */
	uint32_t wd_timeout_ms;
	bool unfence;
	uint64_t marker_wait_ms;
	/*
	 * Attach the home instance on a workload session (n->ws) for
	 * transactions; the marker then says in-use (clean otherwise).
	 */
	bool workload;
	int lock_timeout_ms;
	bool defer_writes; /* group commit (cf_txn.h) */
	/*
	 * A lost CF, when agent.cf_addr names a duplexed pair ("A,B"): look this
	 * long for the new primary and resume there, keeping the incarnation
	 * (cf_node_switch). 0: the incarnation ends (exit 75), as with one CF.
	 */
	uint64_t switch_wait_ms;
};

/* The workload's side of a switch of CF (cf_node_park), shared with the agent thread. */
struct cf_node_gate {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	bool workload;     /* a workload thread runs that parks (cf_node_park) */
	bool parked;       /* it waits in cf_node_park */
	bool closed;       /* no more switches (cf_node_unpark): cf_node_park returns at once */
	uint64_t round;    /* switches ended (either way) */
	int result;        /* of the last: 0 resumed, else the -errno the workload ends with */
};

/* How far cf_node_start got: what cf_node_leave has to undo. */
enum cf_node_stage {
	CF_NODE_NONE = 0,
	CF_NODE_JOINED,    /* undo: fini only */
	CF_NODE_MEMBER,    /* undo: clean leave */
	CF_NODE_RECOVERY,  /* undo: recovery module, clean leave */
};

struct cf_node {
	struct cf_agent a;
	struct cf_node_opts o;
	struct cf_session ws; /* the workload session (o.workload) */
	struct cf_inst_ctx *home;
	enum cf_node_stage stage;
	bool marked;   /* the home marker was set by this incarnation */
	bool attached; /* the home instance is attached on ws */
	int err;       /* -errno of the last failure (0: none) */
	struct cf_node_gate gate;
	/*
	 * A workload that is not a thread of the node's own (libcfnode: the
	 * application's threads) does not park: at step (2) of a switch the
	 * agent thread calls this instead, to keep it from the old CF (calls
	 * wait, the one in progress has failed) and to settle what it has open
	 * (cf_node_switch.c). 0, or -errno to end the incarnation. NULL: the gate.
	 */
	int (*quiesce)(void *arg, uint64_t end_ns);
	void *quiesce_arg;
	uint64_t switches; /* switches of CF this incarnation survived */
};

/* Copy the options and set up the agent; nothing that can fail. */
void cf_node_init(struct cf_node *n, const struct cf_node_opts *o);
/*
 * Join ... attach (above). CF_NODE_EX_OK when the system is a member with its
 * home instance ACTIVE here (and attached on n->ws when o.workload); else the
 * exit code, logged, and cf_node_leave(n, code) ends it. A stop requested
 * while it waited (a->stop) is CF_NODE_EX_OK with n->stage below
 * CF_NODE_RECOVERY or without the attach: check cf_node_ready().
 */
int cf_node_start(struct cf_node *n);
static inline bool cf_node_ready(const struct cf_node *n)
{
	return n->stage == CF_NODE_RECOVERY && (n->attached || !n->o.workload);
}

/*
 * Keeping the incarnation across a switch of duplexed CFs (cf_node_switch.c;
 * docs/design.md, "Incarnations kept across a switch").
 *
 * cf_node_may_switch: the agent loop ended with err; may this system look
 * for the other CF of its pair (switch_wait_ms, a pair in --cf, no stop
 * requested, a workload that parks, a quiesce hook, or no workload)?
 *
 * cf_node_switch (agent thread): stop every use of the old CF, wait for the
 * workload to park (or quiesce it), resume at the new primary (CONN_ATTACH of this very
 * incarnation), heartbeat again, recover from their logs the instances this
 * system holds there (its home included), claim and attach the home again,
 * and let the workload go on. 0: resumed, the agent loop runs again; else
 * -errno, logged: the incarnation is over (the workload is released with it).
 *
 * cf_node_park (the workload's cf_bank_opts.cf_lost; arg: the node): called
 * by the workload thread after a CF error with nothing left open; waits for
 * the switch. 0: go on; else the error to end with.
 *
 * cf_node_unpark: release a parked workload with err (the loop ended without
 * a switch: a stop, or the incarnation is over), and close the gate: a
 * workload that parks later returns err at once.
 */
bool cf_node_may_switch(struct cf_node *n, int err);
int cf_node_switch(struct cf_node *n, int err);
int cf_node_park(void *node, int err);
void cf_node_unpark(struct cf_node *n, int err);
/* Internal to cf_node*.c: the home marker, and the attach of the home instance on the workload session. */
int cf_node_set_marker(struct cf_node *n, const char *inst, int state);
int cf_node_attach_home(struct cf_node *n);

/* The incarnation ended with err: log it the one way (-ENOLINK: the lease). CF_NODE_EX_OVER. */
int cf_node_over(struct cf_node *n, int err);

/*
 * May the workload back out from memory now (cf_txn_ctx.self_backout_check)?
 * 0 only if the incarnation ended while its heartbeat was younger than T.
 */
int cf_node_self_backout_check(void *agent);

/*
 * End an incarnation that is over (no clean leave). workload_ran: the home
 * instance's workload ran and returned, and it backed out on a volatile CF
 * what it had open: the marker says clean if nothing is left open. joined:
 * every thread that used the home instance has returned (else nothing is
 * freed: the process exits and the kernel takes it back).
 */
void cf_node_end_over(struct cf_node *n, bool workload_ran, bool joined);

/*
 * The orderly end, from wherever cf_node_start got (rc: the outcome so far):
 * recovery module off, posted record-list clears drained, GOODBYE before any
 * other connection closes, the home marker clean after a clean leave, then
 * everything freed. Returns the final exit code (CF_NODE_EX_OVER when the
 * leave was refused because something was left to peer recovery).
 */
int cf_node_leave(struct cf_node *n, int rc);

#endif
