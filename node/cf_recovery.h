/* SPDX-License-Identifier: MIT */
/*
 * cf_recovery.h - transactional peer recovery of a failed instance
 * (patent Figure 8; docs/design.md §7) and the detector that starts it.
 *
 * The same code recovers a peer's instance (counterpart) and the system's own
 * home instance found INACTIVE_FAILED at start (self-recovery). Nothing here
 * knows the agent: what the agent does with it (when to recover, fences that
 * wait, the log lines of a recovery) is cf_agent_recovery.h.
 */
#ifndef CF_RECOVERY_H
#define CF_RECOVERY_H

#include <stdbool.h>
#include <stdint.h>

#include "cf_fence.h"
#include "cf_layout.h"
#include "cf_wire.h"

struct cf_session;
struct cf_data;

struct cf_recovery_report {
	uint32_t inst;
	uint32_t incident;
	char inst_name[CF_NAME_MAX];
	int result;           /* 0, or -errno of the step that stopped it */
	enum cf_phase reached; /* last phase started */
	/* registration rejected (-EBUSY): who holds the instance */
	uint64_t holder_reg;
	char holder_name[CF_NAME_MAX];
	/* the failed incarnation, from the instance slot */
	uint32_t failed_sys, failed_epoch;
	char failed_name[CF_NAME_MAX];
	char fence_msg[200];
	/* disk fence not confirmed yet (cf_recover_instance returned -EINPROGRESS) */
	struct cf_fence_target fence_target;
	uint32_t fail_wd_ms;          /* the failed incarnation's announced watchdog, 0: none */
	enum cf_fence_wait wait;      /* why we wait, for cfctl status */
	int wait_err;                 /* -errno of the last fence attempt */
	uint32_t wait_tries;
	uint32_t wait_left_ms;
	uint64_t t_phase_mono;        /* monotonic start of the phase reached (to resume) */
	uint64_t wd_deadline_mono;    /* CF_FWAIT_WATCHDOG: when the failed system certainly cannot write */
	bool fence_skipped; /* the failed owner could not be fenced (unknown, or agent none): logged as a warning */
	bool held;          /* cf_recover_held: the registration was already ours (ACTIVE), no CAS */
	char err_msg[200];
	uint64_t fail_real_ns;   /* CF's CLOCK_REALTIME at the declaration */
	uint64_t detect_real_ns; /* CLOCK_REALTIME when this system learned of it */
	uint64_t done_real_ns;   /* CLOCK_REALTIME after unregister */
	uint64_t locks_free_real_ns; /* CLOCK_REALTIME when every lock was released */
	uint32_t cf_fence_us;    /* as the CF reported it */
	uint64_t records_scanned, txns_inflight, updates_applied, locks_released;
	uint64_t updates_unwritten; /* in-flight UPDATEs never written to the data: nothing to write back */
	uint64_t log_bytes;
	/* where the log scan began and ended (logical positions) and why it ended */
	uint64_t log_head, log_end, log_next_lsn, log_stop_lsn;
	int log_stop;               /* 0 zeros or an earlier lap's record; -EBADMSG bytes that do not parse */
	const char *log_stop_where; /* static; NULL unless -EBADMSG */
	uint64_t log_both, log_both_txid; /* transactions with a COMMIT and an ABORT (the first one's txid) */
	uint64_t phase_ns[CF_PHASE_COUNT];
};

/* Called at the start of every phase (the daemon logs the timeline from it). */
typedef void (*cf_recovery_phase_fn)(void *arg, const struct cf_recovery_report *rep, enum cf_phase phase);

/* What a recovery decided for one unfinished transaction of the log (env->decided). */
struct cf_txn_outcome {
	uint64_t txid;
	bool committed; /* its COMMIT is in the log; else backed out */
};

struct cf_recovery_env {
	struct cf_session *s;       /* the agent's session: registration, attach, log, locks */
	struct cf_data *data;       /* the shared data directory */
	const struct cf_fence_cfg *fence;
	cf_recovery_phase_fn on_phase; /* may be NULL */
	void *arg;
	/* the counterpart's own lease: a frozen, declared counterpart must not write */
	int (*lease)(void *lease_arg); /* may be NULL */
	void *lease_arg;
	int step_attempts; /* retries of a failing backout/sync/release/unregister step (default 5) */
	/*
	 * Called once the backout is synced and marked in the log and the locks
	 * are released, before the unregister: the daemon sets the instance's
	 * data-directory marker clean there (cf_marker.h). May be NULL.
	 */
	void (*backed_out)(void *arg, uint32_t inst, const char *name);
	/*
	 * May be NULL. After the log is read, before anything is written back:
	 * the outcome this recovery gives each transaction of the log without an
	 * END - committed (its COMMIT is in the log) or not (backed out now, or
	 * already by its ABORT) - all n of them in one call, in txid order.
	 * cfnode --recovery-journal writes them down for audits and the journal
	 * check of the fault suite.
	 */
	void (*decided)(void *arg, uint32_t inst, const char *inst_name, const struct cf_txn_outcome *v, size_t n);
	/* the watchdog wait: T/2 (the failed system's lease) + its watchdog timeout + margin */
	uint64_t hb_timeout_ns; /* T of the CF */
	uint64_t wd_margin_ns;  /* 0: CF_WD_MARGIN_NS */
};

#define CF_WD_MARGIN_NS 250000000ull /* scheduling of the watchdog itself; clock rates differ by ppm only */
#define CF_FENCE_RETRY_MS 1000       /* a waiting disk fence is tried again this often */
#define CF_FENCE_LOG_MS 5000         /* and logged as an error this often */
#define CF_FENCE_PUBLISH_MS 250      /* its rinfo (reason, age) is rewritten this often */

/*
 * Recover instance inst whose registration word was seen as failed_reg
 * (INACTIVE_FAILED(k)). detect_real_ns: when this system learned of the
 * failure (CLOCK_REALTIME); cf_fence_us: from the CF's event (0 if polled).
 *
 * Returns 0 when the instance is back to INACTIVE_CLEAN(k) with its in-flight
 * transactions backed out and every lock released; -EBUSY when another
 * system won the registration (rep names it); -ESTALE when the word is no
 * longer failed_reg; -ENOLINK when the fence agent could not confirm (the
 * registration stays ours: locks stay held, an operator must act); the
 * session's error when this incarnation's connection died (the CF will make
 * the instance INACTIVE_FAILED(k+1) and another peer starts over).
 */
int cf_recover_instance(const struct cf_recovery_env *env, uint32_t inst, uint64_t failed_reg,
			uint64_t detect_real_ns, uint32_t cf_fence_us, struct cf_recovery_report *rep);

/*
 * Continue a recovery that returned -EINPROGRESS, once its fence holds: how
 * says why (logged as the fence message). Same returns as cf_recover_instance.
 */
int cf_recover_resume(const struct cf_recovery_env *env, uint32_t inst, uint64_t failed_reg, const char *how,
		      enum cf_fence_wait why, struct cf_recovery_report *rep);
/*
 * Recover instance inst that this incarnation already holds: held_reg is
 * ACTIVE(this system, its epoch, k), kept by a new primary CF at a duplexed
 * takeover (docs/design.md, "Incarnations kept across a switch"). No
 * registration CAS; the disk fence of the instance's failed owner (the slot's
 * fail_* of incident k) first when fence is set (a peer's instance: its owner
 * may not have been fenced before the switch), not for this system's own
 * home instance (its workload is parked). Then attach, read log, back out,
 * sync, release and unregister as any recovery. Same returns as
 * cf_recover_instance (-EINPROGRESS: the fence waits; cf_recover_resume).
 */
int cf_recover_held(const struct cf_recovery_env *env, uint32_t inst, uint64_t held_reg, bool fence,
		    struct cf_recovery_report *rep);
/* Try the fence agent once more for a waiting recovery: 0 when it confirmed now. */
int cf_recover_fence_retry(const struct cf_recovery_env *env, struct cf_recovery_report *rep);
/* The rinfo record of a waiting recovery (phase, reason, age so far), for publishing. */
void cf_recover_rinfo(const struct cf_recovery_env *env, const struct cf_recovery_report *rep,
		      struct cf_rinfo_slot *ri);

/* cf_phase_str, cf_fence_wait_str: proto/cf_layout.h */

/* ---- detector: which failed instances to recover, by policy ---- */

#define CF_DETECT_MAX CF_MAX_INSTANCES_LIMIT

struct cf_detector {
	enum cf_policy policy;
	/* incident already tried per instance (each system tries once per incident, [0039]) */
	uint32_t tried[CF_DETECT_MAX];
	bool tried_valid[CF_DETECT_MAX];
	/* incident already announced in operator mode */
	uint32_t announced[CF_DETECT_MAX];
	bool announced_valid[CF_DETECT_MAX];
	/* when each failed incident was first seen, CLOCK_REALTIME */
	uint64_t seen_ns[CF_DETECT_MAX];
	uint32_t seen_incident[CF_DETECT_MAX];
	uint32_t fence_us[CF_DETECT_MAX];
};

enum cf_detect_action {
	CF_DETECT_NOTHING = 0,
	CF_DETECT_RECOVER,  /* try to register now */
	CF_DETECT_ANNOUNCE, /* operator policy: say it failed, wait for cfctl recover */
};

void cf_detector_init(struct cf_detector *d, enum cf_policy policy);
/*
 * Decide for instance inst whose word is reg (read from the table, or carried
 * by an event): RECOVER once per incident under policy auto, ANNOUNCE once per
 * incident under policy operator; operator_request forces RECOVER (cfctl
 * recover) even if this incident was tried. Records what it decided.
 */
enum cf_detect_action cf_detector_decide(struct cf_detector *d, uint32_t inst, uint64_t reg, bool operator_request);
/* Note when an incident was first seen (keeps the earliest). */
void cf_detector_seen(struct cf_detector *d, uint32_t inst, uint32_t incident, uint64_t real_ns, uint32_t fence_us);

#endif
