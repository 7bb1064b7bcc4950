/* SPDX-License-Identifier: MIT */
/*
 * cfnode.h - the cfplex application API (libcfnode; man 3 cfnode).
 *
 * An application that keeps fixed-size records in files of a shared data
 * directory, locks them in the coupling facility (CF) and logs their undo
 * there, so that when the application dies a peer backs its open
 * transactions out and releases their locks.
 *
 *   cfn_open    join the CF as a system, start the heartbeat and the agent
 *               (failure detection and peer recovery run inside the library,
 *               on threads of its own), claim and attach the home instance
 *   cfn_begin   a transaction on the home instance
 *   cfn_lock    lock a record (shared or exclusive) in the CF
 *   cfn_read    read a record (shared lock taken if none is held)
 *   cfn_update  write a record: exclusive lock, the before-image appended to
 *               the undo log in the CF and acknowledged, then the data write
 *   cfn_commit  fdatasync, COMMIT in the log (the commit point), unlock
 *   cfn_abort   before-images written back, fdatasync, ABORT, unlock
 *   cfn_close   leave the cluster cleanly
 *
 * Return convention: every int function returns 0 or a negative errno;
 * cfn_strerror() says what it means here. -ECONNABORTED from any call means
 * this incarnation is over (the connection to the CF was lost, or the lease
 * did not come back): see "Failure model" in cfnode(3). With cf_addr naming
 * a duplexed pair ("A,B") a lost CF is switched for the other inside the
 * library and the handle goes on: a transaction that was open then is
 * backed out, and its calls return -ECONNRESET (cfn_commit: -EINPROGRESS
 * when its COMMIT was sent and never answered); see "A duplexed CF" there.
 *
 * Threads: a struct cfn and its transactions are used by one thread at a
 * time (the application serializes; a mutex around the calls is enough).
 * The library runs two threads of its own per handle (heartbeat, agent); the
 * on_over and log callbacks may be called from them. It installs no signal
 * handler. One handle per process is the tested configuration.
 */
#ifndef CFNODE_H
#define CFNODE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CFN_API_VERSION 1

struct cfn;     /* a member of the cluster with its home instance (opaque) */
struct cfn_txn; /* an open transaction (opaque) */

enum cfn_lock_mode { CFN_LOCK_S = 1, CFN_LOCK_X = 2 };
enum cfn_policy { CFN_POLICY_CLUSTER = 0, CFN_POLICY_AUTO, CFN_POLICY_OPERATOR };
enum cfn_log_level { CFN_LOG_ERR = 0, CFN_LOG_WARN, CFN_LOG_INFO, CFN_LOG_DEBUG };

/* Zero-initialize, then fill in; 0 and NULL mean the defaults named. */
struct cfn_config {
	const char *cf_addr;   /* cfserver, "host:port" or "[v6]:port"; a duplexed pair "A,B" (required) */
	const char *transport; /* "tcp" (NULL) or "verbs" */
	const char *key_file;  /* cluster key, 64 hex digits, mode 0600 (required) */
	const char *system;    /* this system, 1-15 of [A-Za-z0-9_.-] (required) */
	const char *instance;  /* home instance, same alphabet (required) */
	const char *data_dir;  /* shared data directory (required) */
	unsigned hb_interval_ms;     /* heartbeat h; 0: the CF's */
	unsigned hb_timeout_ms;      /* lease T, at most the CF's; 0: the CF's */
	unsigned connect_timeout_ms; /* 0: $CF_CONNECT_TIMEOUT_MS, else 3000 */
	unsigned lock_timeout_ms;    /* cfn_lock(..., -1) waits this long; 0: 2000 */
	unsigned marker_wait_ms;     /* wait for a lost volatile CF's self-backouts; 0: 10000 */
	enum cfn_policy policy;      /* recovery policy of this system */
	const char *fence_agent;     /* "auto" (NULL), "local", "none" or a path */
	const char *const *fence_args; /* "key=value" for an external agent, NULL-terminated */
	const char *fence_map;       /* per-target agent options file (external agent) */
	const char *watchdog;        /* watchdog device or FIFO stand-in; NULL: none */
	unsigned watchdog_timeout_ms; /* 0: 5000 */
	int group_commit;            /* nonzero: keep data writes until the commit (cfnode --group-commit) */
	/* Messages the daemon would print, one line each, without newline. NULL: silent. */
	void (*log)(void *arg, int level, const char *msg);
	void *log_arg;
	/*
	 * Called once when the incarnation ends while the handle is open (err:
	 * the -errno that ended it), from a library thread. Every call on the
	 * handle then returns -ECONNABORTED; see cfnode(3) for what to do.
	 */
	void (*on_over)(void *arg, int err);
	void *on_over_arg;
};

/*
 * Join, heartbeat, check the data directory's markers, claim and attach the
 * home instance (waiting while a peer recovers it), start the agent. 0 and
 * *out, or: -EINVAL (config), -ECONNREFUSED/-ETIMEDOUT/-EHOSTUNREACH (CF
 * unreachable), -EACCES/-EPERM (cluster key refused), -EUCLEAN (the data
 * directory needs the operator: do not retry), -ECONNABORTED, other -errno.
 */
int cfn_open(const struct cfn_config *cfg, struct cfn **out);
/*
 * Leave and free h (accepts NULL), on the thread that owns its transactions.
 * Transactions still open are aborted first (cfn_abort). Then: unregister the
 * home instance and GOODBYE, 0. When a backout failed (-EBUSY) or the
 * incarnation ended (-ECONNABORTED) there is no clean leave: the CF fails the
 * system and a peer backs out what was left. h and its transactions are
 * freed in every case.
 */
int cfn_close(struct cfn *h);
/* 0 while h is a member; else the error that ended the incarnation. */
int cfn_status(const struct cfn *h);
/* System number and epoch of this incarnation (either pointer may be NULL). */
void cfn_identity(const struct cfn *h, unsigned *sys, unsigned *epoch);

/*
 * Create record file `file` (0..63, "f<file>.cfd") in data_dir with count
 * zeroed records of rec_size bytes (1..4000). -EEXIST if it exists. Call it
 * before any system uses the file (setup, not a transaction).
 */
int cfn_create_file(const char *data_dir, unsigned file, unsigned rec_size, uint64_t count);
/* A record file's geometry: 0, -ENOENT, -EBADMSG (corrupt header). */
int cfn_file_info(struct cfn *h, unsigned file, unsigned *rec_size, uint64_t *count);

int cfn_begin(struct cfn *h, struct cfn_txn **out);
/*
 * Lock a record for t. timeout_ms: 0 try once, -1 the configured lock
 * timeout. 0, -EBUSY (timeout 0, held elsewhere), -ETIMEDOUT, -EALREADY
 * (another open transaction of this handle holds it: end that one),
 * -ENOLINK (lease lapsed: abort t), -ENOSPC (record list full), -ECONNABORTED.
 * A failed lock leaves t open: abort it (or continue without the record).
 */
int cfn_lock(struct cfn_txn *t, unsigned file, uint64_t rec, enum cfn_lock_mode mode, int timeout_ms);
/* Read record rec (len must be the file's record size); S lock if none held. -EBADMSG: corrupt slot. */
int cfn_read(struct cfn_txn *t, unsigned file, uint64_t rec, void *buf, size_t len);
/*
 * Replace record rec (len must be the record size); X lock if not held. The
 * before-image reaches the CF's undo log before the data file is written.
 * -ENOSPC: the undo log is full (abort t). On any error, abort t.
 */
int cfn_update(struct cfn_txn *t, unsigned file, uint64_t rec, const void *buf, size_t len);
/*
 * Commit and free t. 0: committed (durable in the data files, locks
 * released). Any other error: t was backed out, not committed.
 * -ECONNABORTED: on a lone volatile CF backed out from memory; on a durable
 * or duplexed CF in doubt, decided by the log (committed iff its COMMIT
 * reached the CF; a peer backs it out otherwise). Waits up to 5 s for a
 * lapsed lease.
 */
int cfn_commit(struct cfn_txn *t);
/*
 * Back out and free t: 0, or -ECONNABORTED when the CF is no longer
 * reachable (a volatile CF's before-images are then written back from
 * memory, else a peer backs t out from the log).
 */
int cfn_abort(struct cfn_txn *t);

/* What err (a negative errno returned here) means for a caller of this API. Never NULL. */
const char *cfn_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif
