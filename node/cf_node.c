/* SPDX-License-Identifier: MIT */
/*
 * cf_node.c - the life of one incarnation (see cf_node.h). Moved out of
 * cfnode.c's main so that the daemon and the library (cfnode.h) take the same
 * path: join, heartbeat, marker check, watchdog, unfence, claim, marker,
 * recovery, attach; the clean leave; the end of an incarnation that is over.
 */
#include "cf_node.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cf_marker.h"
#include "cf_agent_recovery.h"
#include "cf_util.h"
#include "cf_words.h"

#define say(n, level, ...) cf_agent_log(&(n)->a, level, __VA_ARGS__)

void cf_node_init(struct cf_node *n, const struct cf_node_opts *o)
{
	pthread_condattr_t ca;

	memset(n, 0, sizeof(*n));
	n->o = *o;
	if (n->o.switch_wait_ms && n->o.agent.cf_addr && strchr(n->o.agent.cf_addr, ','))
		n->o.agent.stall_ends_sessions = true;
	cf_agent_init(&n->a, &n->o.agent);
	pthread_mutex_init(&n->gate.mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&n->gate.cv, &ca);
	pthread_condattr_destroy(&ca);
}

static int session_exit_code(int r)
{
	switch (r) {
	case -ECONNREFUSED:
	case -ETIMEDOUT:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
	case -EADDRNOTAVAIL:
	case -ENOENT: /* host not found */
	case -ENODEV:
		return CF_NODE_EX_UNAVAILABLE;
	case -EPERM:
	case -EACCES:
		return CF_NODE_EX_KEY;
	default:
		return CF_NODE_EX_OTHER;
	}
}

int cf_node_over(struct cf_node *n, int err)
{
	struct cf_agent *a = &n->a;

	n->err = err ? err : -EPIPE;
	if (err == -ENOLINK) {
		say(n, CF_AGENT_ERR,
		    "lease expired and did not come back: this incarnation (%s epoch %u) is over; restart to rejoin as a "
		    "new incarnation",
		    a->o.system, a->epoch);
		return CF_NODE_EX_OVER;
	}
	/* -EACCES: a one-sided op refused (grants revoked: fenced; or a dying CF's memory already gone) */
	say(n, CF_AGENT_ERR,
	    "connection to CF lost (%s): this incarnation (%s epoch %u) is over; restart to rejoin as a new incarnation",
	    err == -EACCES ? "it refused an operation: this system fenced, or the CF died"
			   : strerror(err < 0 ? -err : EPIPE),
	    a->o.system, a->epoch);
	return CF_NODE_EX_OVER;
}

/* Is the marker's writer still running here? (false when it is on another host: unknown) */
static bool marker_owner_alive_here(const struct cf_agent *a, const struct cf_marker *m)
{
	if (strcmp(m->host, a->host) || m->pid == 0 || m->pid > INT32_MAX)
		return false;
	if (kill((pid_t)m->pid, 0) < 0 && errno == ESRCH)
		return false;
	return !m->starttime || cf_proc_starttime(m->pid) == m->starttime;
}

/*
 * Before any data write of this incarnation: every marker in use under
 * another CF image means that image's undo logs are gone with uncommitted
 * work possibly in the data (docs/design.md, "A volatile CF"). Its owner may
 * still be backing out from memory: wait at most wait_ms (not at all when it
 * is known dead), then refuse. Returns 0 or an exit code.
 */
static int check_markers(struct cf_node *n, const char *dir, uint64_t wait_ms)
{
	static char names[CF_MARKER_MAX_LIST][CF_NAME_MAX];
	struct cf_agent *a = &n->a;
	uint64_t t0 = cf_mono_ns();
	char cur[40], old[40], why[160];
	bool said = false;
	size_t cnt = 0;
	int r;

	cf_marker_image_str(a->image_id, cur, sizeof(cur));
	for (;;) {
		struct cf_marker m, stale;
		bool pending = false, alive = false;

		r = cf_marker_list(dir, names, CF_MARKER_MAX_LIST, &cnt);
		if (r == -ENOENT)
			return 0;
		if (r) {
			n->err = r;
			say(n, CF_AGENT_ERR, "data directory %s: markers in %s/" CF_MARKER_DIR ": %s", dir, dir,
			    strerror(-r));
			return CF_NODE_EX_OTHER;
		}
		for (size_t i = 0; i < cnt; i++) {
			r = cf_marker_read(dir, names[i], &m, why, sizeof(why));
			if (r == -ENOENT)
				continue;
			if (r == -EBADMSG) {
				n->err = -EUCLEAN;
				say(n, CF_AGENT_ERR,
				    "data directory %s: the marker of instance %s (%s/" CF_MARKER_DIR "/%s) is corrupt: %s. "
				    "Refusing to start: whether %s left uncommitted updates in the data is unknown. Check "
				    "the data (cfctl verify --data %s), restore or accept it, then run: cfctl data-release "
				    "--data %s %s --force",
				    dir, names[i], dir, names[i], why, names[i], dir, dir, names[i]);
				return CF_NODE_EX_DATA;
			}
			if (r) {
				n->err = r;
				say(n, CF_AGENT_ERR, "data directory %s: marker of %s: %s", dir, names[i], strerror(-r));
				return CF_NODE_EX_OTHER;
			}
			if (m.state != CF_MARKER_INUSE || cf_marker_same_image(&m, a->image_id))
				continue;
			if (!pending || marker_owner_alive_here(a, &m))
				stale = m;
			pending = true;
			alive |= marker_owner_alive_here(a, &m);
		}
		if (!pending) {
			if (said)
				say(n, CF_AGENT_INFO, "data directory %s: every instance of a lost CF image has backed out",
				    dir);
			return 0;
		}
		cf_marker_image_str(stale.image, old, sizeof(old));
		/* its owner may still be backing out: here and running, or on another host (unknown) */
		if ((alive || strcmp(stale.host, a->host)) && cf_mono_ns() - t0 < wait_ms * 1000000ull &&
		    !atomic_load(&a->stop) && !cf_agent_over(a)) {
			struct timespec ts = { 0, 50 * 1000000L };
			if (!said)
				say(n, CF_AGENT_WARN,
				    "data directory %s: instance %s (system %s, host %s, pid %llu) is in use under CF "
				    "image %s, which is gone (this CF is image %s): waiting up to %.1f s for it to back "
				    "out its open transactions from memory",
				    dir, stale.instance, stale.system, stale.host, (unsigned long long)stale.pid, old, cur,
				    (double)wait_ms / 1000.0);
			said = true;
			nanosleep(&ts, NULL);
			continue;
		}
		n->err = -EUCLEAN;
		say(n, CF_AGENT_ERR,
		    "data directory %s needs the operator: instance %s of system %s (host %s, pid %llu%s) was in use "
		    "under CF image %s, which is gone (a volatile CF restarted, or its image was replaced), and its "
		    "open transactions were not backed out: their uncommitted updates may be in the data, with no undo "
		    "log left. Refusing to start (exit 78). Make sure that process is gone, check the data (cfctl verify "
		    "--data %s), restore it or accept it, then run: cfctl data-release --data %s %s --force",
		    dir, stale.instance, stale.system, stale.host, (unsigned long long)stale.pid,
		    marker_owner_alive_here(a, &stale) ? ", still running" : "", old, dir, dir, stale.instance);
		return CF_NODE_EX_DATA;
	}
}

/*
 * May the workload back out from memory now? Only if this incarnation ended
 * while its heartbeat was younger than T: then a CF that is in fact alive had
 * not declared us failed by silence, and a peer recovers us only after its
 * disk fence (kill and confirmed exit), so our writes land first. A process
 * that was frozen past T (a zombie) may find its instance recovered and its
 * locks released without a fence (--fence-agent none): it must not write.
 * Its marker stays in use; if the CF is gone, the operator decides.
 */
int cf_node_self_backout_check(void *arg)
{
	struct cf_agent *a = arg;
	uint64_t over_ns = atomic_load(&a->over_ns), last = atomic_load(&a->hb.last_ok_ns);
	uint64_t at = over_ns ? over_ns : cf_mono_ns();

	return last && at - last < a->hb_timeout_ns ? 0 : -ESTALE;
}

/* Set the home instance's marker; 0 or -errno (logged). */
int cf_node_set_marker(struct cf_node *n, const char *inst, int state)
{
	enum cf_marker_state st = (enum cf_marker_state)state;
	struct cf_agent *a = &n->a;
	int r = cf_marker_set(a->o.data_dir, inst, st, a->image_id, a->o.system, a->host, a->pid, a->starttime);

	if (r < 0) {
		n->err = r;
		say(n, CF_AGENT_ERR, "data directory %s: cannot set the marker of %s %s: %s", a->o.data_dir, inst,
		    cf_marker_state_str(st), strerror(-r));
	}
	return r;
}

/*
 * The incarnation is over and the workload has returned: on a volatile CF
 * its open transactions were backed out from memory (cf_txn_self_backout);
 * if none is left open, say so in the marker. Otherwise the marker stays in
 * use and every restart asks the operator.
 */
static void after_self_backout(struct cf_node *n, bool joined)
{
	struct cf_agent *a = &n->a;
	struct cf_inst_ctx *home = n->home;

	if (!a->cf_volatile || !home)
		return;
	if (!joined || !home->attached) {
		say(n, CF_AGENT_ERR,
		    "self-backout of %s did not finish (the workload did not return): its data-directory marker stays "
		    "in use, restarts will ask the operator",
		    home->name);
		return;
	}
	if (home->txn.nopen && home->txn.nopen == home->txn.in_doubt) {
		say(n, CF_AGENT_WARN,
		    "self-backout of %s: %u transaction(s) whose COMMIT was sent and never answered are left to the "
		    "recovery of the CF's copy of the log (a duplexed CF), which decides them; its data-directory marker "
		    "stays in use until then",
		    home->name, home->txn.nopen);
		return;
	}
	if (home->txn.nopen) {
		say(n, CF_AGENT_ERR,
		    "self-backout of %s: %u transaction(s) not backed out from memory%s: its data-directory marker "
		    "stays as it is; if this CF is gone, restarts will ask the operator",
		    home->name, home->txn.nopen,
		    cf_node_self_backout_check(a) ? " (the heartbeat was older than T when the incarnation ended: a "
						    "peer may have recovered the instance already)"
						  : "");
		return;
	}
	if (cf_node_set_marker(n, home->name, CF_MARKER_CLEAN) == 0)
		say(n, CF_AGENT_WARN,
		    "volatile CF lost: self-backout of %s done (%llu open transaction(s) backed out from the "
		    "before-images in memory, files synced); its data-directory marker is clean",
		    home->name, (unsigned long long)home->txn.self_backouts);
}

void cf_node_end_over(struct cf_node *n, bool workload_ran, bool joined)
{
	cf_agent_hb_stop(&n->a);
	if (workload_ran)
		after_self_backout(n, joined);
	cf_recovery_fini(&n->a);
	if (!joined)
		return; /* the process exits: the kernel takes it all back */
	if (n->home)
		cf_inst_ctx_detach(n->home);
	cf_session_close(&n->ws);
	cf_agent_fini(&n->a);
	cf_fence_map_free(&n->o.agent.fence);
}

/* Failed at a step: what to undo, the -errno, the exit code. */
static int fail(struct cf_node *n, enum cf_node_stage undo, int err, int rc)
{
	n->stage = undo;
	if (err)
		n->err = err;
	return rc;
}

/*
 * A claim or attach (which may wait) failed with r: a requested stop
 * (-EINTR) is no error and leaves with undo_stop; an error on a dead session
 * or an incarnation over is the end of it; anything else is an error.
 */
static int wait_failed(struct cf_node *n, int r, int dead, enum cf_node_stage undo_stop, enum cf_node_stage undo,
		       const char *stopped, const char *what)
{
	const char *inst = n->o.agent.instance;

	if (r == -EINTR) {
		say(n, CF_AGENT_INFO, "%s %s", stopped, inst);
		return fail(n, undo_stop, r, CF_NODE_EX_OK);
	}
	/*
	 * A CF killed while this system waited to attach (its restart recovery)
	 * can reset the connection before the session or the agent has marked
	 * anything dead: still the lost CF's exit (75), never a plain error (1).
	 */
	if (dead || cf_agent_over(&n->a) || cf_conn_lost(r))
		return fail(n, undo, r, cf_node_over(n, r));
	say(n, CF_AGENT_ERR, "%s %s: %s", what, inst, strerror(-r));
	return fail(n, undo, r, CF_NODE_EX_OTHER);
}

/* The workload session and the attach of the home instance (o.workload). */
int cf_node_attach_home(struct cf_node *n)
{
	struct cf_agent *a = &n->a;
	struct cf_inst_ctx *home = n->home;
	int r;

	r = cf_agent_open_session(a, &n->ws);
	if (!r)
		r = cf_inst_ctx_attach(home, &n->ws, true);
	/* -EINTR: stopped while the CF's restart recovery made us wait */
	if (r)
		return wait_failed(n, r, n->ws.dead, CF_NODE_RECOVERY, CF_NODE_RECOVERY, "stopped while waiting to attach",
				   "attach");
	n->attached = true;
	home->txn.lock_timeout_ms = n->o.lock_timeout_ms;
	home->txn.self_backout = a->cf_volatile;
	home->txn.log_survives = !a->cf_volatile || (n->ws.cf_flags & CF_JOINED_DURABLE);
	home->txn.defer_writes = n->o.defer_writes;
	home->txn.self_backout_check = cf_node_self_backout_check;
	return CF_NODE_EX_OK;
}

int cf_node_start(struct cf_node *n)
{
	struct cf_agent *a = &n->a;
	const struct cf_agent_opts *o = &n->o.agent;
	int r, rc;

	r = cf_agent_join(a);
	if (r) {
		rc = session_exit_code(r);
		if (rc == CF_NODE_EX_UNAVAILABLE)
			say(n, CF_AGENT_ERR, "CF %s unavailable: %s", o->cf_addr, strerror(-r));
		else if (rc == CF_NODE_EX_KEY)
			say(n, CF_AGENT_ERR, "CF %s refused the cluster key (%s)", o->cf_addr,
			    n->o.key_file ? n->o.key_file : "?");
		else
			say(n, CF_AGENT_ERR, "join %s as %s: %s%s%s", o->cf_addr, o->system, strerror(-r),
			    cf_session_error_msg(&a->s) ? ": " : "",
			    cf_session_error_msg(&a->s) ? cf_session_error_msg(&a->s) : "");
		return fail(n, CF_NODE_JOINED, r, rc);
	}
	say(n, CF_AGENT_INFO, "joined %s as system #%u epoch %u (h %.1f ms, T %.1f ms)", o->cf_addr, a->sys,
	    a->epoch, (double)(o->hb_interval_ns ? o->hb_interval_ns : a->s.welcome.hb_interval_ns) / 1e6,
	    (double)a->hb_timeout_ns / 1e6);
	r = cf_agent_hb_start(a);
	if (r) {
		/* the CF declared us failed before the first beat (closed, or refused it): over */
		bool over = a->s.dead || a->hb.s.dead || cf_conn_lost(r);
		say(n, CF_AGENT_ERR, "heartbeat: %s%s", strerror(-r),
		    over ? ": this incarnation is over; restart to rejoin as a new incarnation" : "");
		return fail(n, CF_NODE_JOINED, r,
			    r == -EINVAL ? CF_NODE_EX_USAGE : over ? CF_NODE_EX_OVER : CF_NODE_EX_OTHER);
	}
	{
		char id[40];
		cf_marker_image_str(a->image_id, id, sizeof(id));
		say(n, CF_AGENT_INFO, "CF image %s (%s)", id,
		    a->cf_volatile ? "volatile: a lost CF is backed out from memory" : "durable");
	}
	rc = check_markers(n, o->data_dir, n->o.marker_wait_ms);
	if (rc)
		return fail(n, CF_NODE_MEMBER, 0, rc);
	if (n->o.watchdog) {
		char msg[128];
		/* armed and announced before the home instance is claimed: before any write */
		r = cf_agent_watchdog_arm(a, n->o.watchdog, n->o.wd_timeout_ms, msg, sizeof(msg));
		if (r) {
			say(n, CF_AGENT_ERR, "watchdog %s: %s%s%s", n->o.watchdog,
			    r == -ENXIO ? "a FIFO that nobody reads (is the watchdog stand-in running?)" : strerror(-r),
			    msg[0] ? ": the CF says: " : "", msg);
			return fail(n, CF_NODE_JOINED, r, a->s.dead ? CF_NODE_EX_OVER : CF_NODE_EX_OTHER);
		}
		say(n, CF_AGENT_INFO, "watchdog %s armed (%u ms, %s), petted while the lease holds; announced to the CF",
		    n->o.watchdog, a->wd.timeout_ms, a->wd.chardev ? "device" : "FIFO stand-in");
	}
	if (n->o.unfence) {
		struct cf_fence_target self;
		char msg[200];
		/* before this system writes anything: fence_scsi registers its key here */
		memset(&self, 0, sizeof(self));
		snprintf(self.name, sizeof(self.name), "%s", o->system);
		memcpy(self.host, a->host, sizeof(self.host));
		self.pid = a->pid;
		self.starttime = a->starttime;
		r = cf_fence_unfence(&a->o.fence, &self, msg, sizeof(msg));
		if (r) {
			say(n, CF_AGENT_ERR, "unfence (action=on for %s): %s", o->system, msg[0] ? msg : strerror(-r));
			return fail(n, CF_NODE_JOINED, r, CF_NODE_EX_OTHER);
		}
		say(n, CF_AGENT_INFO, "unfenced: %s", msg);
	}
	r = cf_agent_inst_open(a, o->instance, true, &n->home);
	if (r) {
		say(n, CF_AGENT_ERR, "open instance %s: %s", o->instance, strerror(-r));
		return fail(n, CF_NODE_JOINED, r, a->s.dead ? cf_node_over(n, a->s.dead) : CF_NODE_EX_OTHER);
	}
	r = cf_agent_claim(a, n->home);
	if (r)
		return wait_failed(n, r, a->s.dead, CF_NODE_MEMBER, CF_NODE_JOINED, "stopped while waiting for",
				   "take instance");
	say(n, CF_AGENT_INFO, "instance %s (#%u) is ACTIVE here (incident %u)", o->instance, n->home->index,
	    cf_reg_incident(n->home->reg));
	/* before the first data write of this incarnation (the attach may back out leftovers) */
	if (cf_node_set_marker(n, o->instance, n->o.workload ? CF_MARKER_INUSE : CF_MARKER_CLEAN) < 0)
		return fail(n, CF_NODE_MEMBER, 0, CF_NODE_EX_OTHER);
	n->marked = true;
	r = cf_recovery_init(a);
	if (r) {
		say(n, CF_AGENT_ERR, "recovery module: %s", strerror(-r));
		return fail(n, CF_NODE_MEMBER, r, CF_NODE_EX_OTHER);
	}
	n->stage = CF_NODE_RECOVERY;
	if (n->o.workload)
		return cf_node_attach_home(n);
	return CF_NODE_EX_OK;
}

int cf_node_leave(struct cf_node *n, int rc)
{
	struct cf_agent *a = &n->a;
	int r;

	if (n->stage >= CF_NODE_RECOVERY)
		cf_recovery_fini(a);
	if (n->stage >= CF_NODE_MEMBER) {
		/*
		 * Posted record-list clears must land while the instance is still
		 * ours: the unregister below revokes this session's grants on it.
		 */
		if (n->attached && !n->ws.dead)
			(void)cf_session_drain(&n->ws);
		/* GOODBYE first: a connection closing before it would be a failure at the CF. */
		r = cf_agent_leave(a);
		if (n->home)
			cf_inst_ctx_detach(n->home);
		cf_session_close(&n->ws);
		if (r == -EBUSY) {
			n->err = r;
			rc = CF_NODE_EX_OVER; /* left to peer recovery: restart to rejoin */
		} else if (r && rc == CF_NODE_EX_OK) {
			n->err = r;
			say(n, CF_AGENT_ERR, "clean leave: %s", strerror(-r));
			rc = CF_NODE_EX_OTHER;
		} else if (rc == CF_NODE_EX_OK) {
			say(n, CF_AGENT_INFO, "left the cluster cleanly");
		}
		/* nothing of the home instance is in flight any more: a clean leave, or it was never used */
		if (n->marked && !r && (rc == CF_NODE_EX_OK || rc == CF_NODE_EX_OTHER))
			(void)cf_node_set_marker(n, n->home->name, CF_MARKER_CLEAN);
	}
	cf_agent_fini(a);
	cf_fence_map_free(&n->o.agent.fence);
	n->stage = CF_NODE_NONE;
	return rc;
}
