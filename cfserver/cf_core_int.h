/* SPDX-License-Identifier: MIT */
/*
 * cf_core_int.h - what the modules of cfserver's control plane share, private
 * to them (cf_core.h is the interface main.c sees). One struct cf_core, the
 * connection and system state it holds, the CF's own record of
 * registrations, inline access to the image, and the functions one module
 * calls in another (below, with the layers they form). Which module does
 * what is in cf_core.c's opening comment.
 *
 * CAS-able words (system state, registration, header policy) are changed only
 * through core_local_cas/core_word_cas while clients can reach the image: on
 * verbs a plain CPU store is not atomic against the NIC's atomics
 * (IBV_ATOMIC_HCA).
 */
#ifndef CF_CORE_INT_H
#define CF_CORE_INT_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cf_auth.h"
#include "cf_core.h"
#include "cf_duplex.h"
#include "cf_metrics.h"
#include "cf_words.h"

#define CONN_GRANTS_MAX 128u
/*
 * Connections not authenticated yet have a budget of their own, not --max-conns
 * (docs/design.md §7, "Stalling the CF"): at most this many at once; a
 * newcomer beyond it drops the oldest (member_handshake_budget). So connections
 * that never speak cannot lock out a console or a restarted system, and cost at
 * most 64 sockets for 5 s each.
 */
#define HANDSHAKE_MAX 64u

struct cf_persist;
struct cf_lockq;

/* Lock hand-off counters (cf_lockq.c), shown by the metrics. */
struct cf_lockq_stats {
	uint64_t waits;         /* LOCK_WAITs queued */
	uint64_t granted_now;   /* ... granted in the reply (the class came free meanwhile) */
	uint64_t granted_later; /* ... granted by event, after a release */
	uint64_t grants;        /* the CF's grant CASes */
	uint64_t cancels, kicks, backstops, dropped, refused, malformed, serve_busy;
	uint64_t max_waiting;
	uint64_t wait_ns_sum, wait_ns_max; /* queued → granted */
};

/* ---------------- connections, systems, instances ---------------- */

/* A connection's state: legal transitions in conn_transition_ok (cf_core.c), changed only by core_set_state. */
enum conn_state {
	CS_NEW,        /* accepted, waiting for HELLO */
	CS_CHALLENGED, /* CHALLENGE sent, waiting for AUTH */
	CS_AUTHED,     /* WELCOME sent (system role), waiting for JOIN or CONN_ATTACH */
	CS_SYSTEM,     /* a connection of a live system incarnation */
	CS_CONSOLE,    /* an operator console */
	CS_MONITOR,    /* authenticated with the monitor key: METRICS only, no grants */
	CS_LEFT,       /* its system said GOODBYE: closing, no failure processing */
	CS_FENCED,     /* fenced by failure processing: closing */
	CS_CLOSING,    /* refused or protocol error: closing */
};

struct cgrant {
	uint32_t region, inst, rkey, rights;
	uint64_t off, len; /* image range (PERSIST requests must lie inside a WRITE grant) */
};

struct core_conn {
	struct cf_core *core;
	struct cf_sconn *sc;
	struct core_conn *prev, *next;      /* all connections */
	struct core_conn *sys_prev, *sys_next; /* connections of one system */
	enum conn_state state;
	uint32_t role;
	uint16_t version;
	int sys;      /* system index once SYSTEM, else -1 */
	int on_sys;   /* linked on the system's list */
	int sentinel; /* SYSTEM: the incarnation's sentinel (CF_CTRL_SENTINEL): no grants, DIED only, its close is no failure */
	uint32_t cause; /* enum cf_fail_cause to use if it closes */
	uint64_t accepted_ns;
	uint8_t cnonce[CF_NONCE_LEN], snonce[CF_NONCE_LEN];
	struct cf_auth_terms terms; /* what the handshake's MACs bind (cf_auth.h) */
	struct cgrant grants[CONN_GRANTS_MAX];
	uint32_t ngrants;
	uint32_t persist_waiting; /* its PERSIST requests waiting for the next group commit */
	uint32_t lock_waits;      /* its lock waits queued at the CF (cf_lockq.c) */
	char peer[64];
};

/*
 * The PERSIST requests (cf_wire.h) of one loop iteration, waiting for the
 * group commit (cf_persist.h) that makes their ranges durable: their ranges
 * went to gc with cf_persist_add, and ONE cf_persist_after callback
 * (persist_answer) answers them all, in arrival order, after that commit.
 */
struct persist_wait_req {
	struct core_conn *cc; /* NULL: the connection closed, nothing to answer */
	uint64_t id;
	uint64_t batch; /* cf_persist_batch() when it came: answered once that batch is durable */
};

struct persist_wait {
	struct persist_wait_req *q;  /* waiting, in arrival (and so batch) order */
	size_t n, cap;
	uint64_t armed_batch; /* the newest batch persist_answer is registered for (0: none) */
	uint64_t requests, refused; /* accepted (waited for a commit) / refused PERSISTs */
	uint64_t groups, max_group; /* commits that answered some / most answered by one */
};

struct core_sys {
	struct core_conn *conns; /* live connections of the current incarnation */
	struct core_conn *agent; /* its JOIN connection: events go there */
	int live;                /* joined in this server run and not failed/left */
	/*
	 * ACTIVE in the image this CF took over from a duplexed primary, not
	 * back yet: it may resume (CONN_ATTACH with its token) until hb_seen_ns,
	 * then the sweep fails it (CF_FAIL_NO_RESUME). Never live at once.
	 */
	int kept;
	uint64_t token;
	uint64_t hb_last;
	uint64_t hb_seen_ns; /* monotonic, when hb_last was first seen */
	int suspected_by;    /* system index + 1 of a peer that reported it silent (SUSPECT), 0: none */
};

/*
 * What the CF itself knows of instance i's registration (docs/design.md §7,
 * "Registrations: what the CF checks"). Every system has atomic rights on the
 * whole instance table, so the word is a claim that any member can forge; the
 * CF decides by this record, in its own memory:
 *   base   the last registration word the CF itself set: INACTIVE_CLEAN(0) at
 *          INST_OPEN, INACTIVE_CLEAN(k) at INST_UNREG, INACTIVE_FAILED(k+1) by
 *          failure processing, the orphan scan, RECOVER, or the takeover of a
 *          reloaded image. The one legal node change of it is the registration
 *          CAS to ACTIVE(s, e, k) at the same incident k, by any live system
 *          (from FAILED a counterpart; from CLEAN the home, or another system
 *          that takes the instance over while nobody holds it).
 *   held   the incarnation (hsys, hepoch, incident hinc) the CF granted the log
 *          and record list to since base was set (its first INST_ATTACH).
 *          While set, INST_ATTACH and INST_UNREG from anyone else are refused
 *          (a takeover attempt), a word that names someone else is put back,
 *          and failure processing of that incarnation fails the instance
 *          whatever the word says. Cleared whenever the CF sets base.
 * A reloaded image starts with no holder: every ACTIVE word becomes FAILED
 * there (take_over_image), and base is read from the words.
 */
struct core_inst {
	uint64_t base;
	uint32_t hsys, hepoch, hinc;
	int held;
};

struct cf_core {
	struct ev_loop *loop;
	const struct cf_server_ops *ops;
	struct cf_tserver *ts;
	struct cf_image *im;
	struct cf_core_cfg cfg;
	struct cf_image_map *map;
	uint8_t *base;
	struct core_sys sys[CF_MAX_SYSTEMS_LIMIT];
	struct core_inst inst[CF_MAX_INSTANCES_LIMIT];
	uint64_t takeovers; /* INST_ATTACH / INST_UNREG refused as takeover attempts */
	uint64_t resumes;   /* incarnations kept at a duplexed takeover that came back (resume_kept) */
	struct cf_duplex_cluster cluster; /* what a duplexed primary's tie-breaker reads (cf_sweep.c) */
	uint64_t restored;  /* registration words the CF put back */
	struct core_conn *conns;
	unsigned nconns;
	uint64_t handshakes_dropped; /* by the handshake budget */
	int shutting_down;
	ev_timer sweep, orphan;
	uint64_t last_sweep_ns;	  /* when the sweep last ran: a late sweep means this loop stalled */
	uint64_t suspects, suspects_declared; /* SUSPECT requests; those after which the sweep declared */
	uint64_t sweep_period_ns; /* h/2, at least 0.5 ms */
	struct cf_persist *gc;    /* --nvram or duplexed: group commit (client writes, PERSIST) (else NULL) */
	struct cf_duplex *dx;     /* duplexed: every gc batch is shipped to the secondary too */
	struct persist_wait pw;   /* PERSIST requests waiting for gc's next commit */
	/*
	 * Restart barrier (docs/design.md, "Durability"): server DRAM, rebuilt
	 * from the image at every start. While rstate is CF_RESTART_RECOVERY,
	 * INST_ATTACH is granted only to the registered owner of an instance in
	 * rpending (a recovery); the last of them to unregister clears the lock
	 * table and the record lists and opens the CF.
	 */
	enum cf_restart_state rstate;
	uint64_t rpending; /* bit i: instance i must still be recovered from its log */
	uint64_t rsince_ns;
	struct cf_metrics metrics; /* counters, persist latency, snapshots (cf_metrics.h) */
	struct cf_lockq *lockq;    /* lock waiters' queues (cf_lockq.c) */
};

_Static_assert(CF_MAX_INSTANCES_LIMIT <= 64, "restart barrier: one bit per instance in a 64-bit word");

/* ---------------- image access ---------------- */

static inline struct cf_header *hdr(struct cf_core *c)
{
	return (struct cf_header *)c->base;
}
static inline struct cf_sys_slot *sys_slot(struct cf_core *c, uint32_t s)
{
	return (struct cf_sys_slot *)(c->base + cf_sys_off(c->map, s));
}
static inline struct cf_hb_slot *hb_slot(struct cf_core *c, uint32_t s)
{
	return (struct cf_hb_slot *)(c->base + cf_hb_off(c->map, s));
}
static inline struct cf_inst_slot *inst_slot(struct cf_core *c, uint32_t i)
{
	return (struct cf_inst_slot *)(c->base + cf_inst_off(c->map, i));
}
static inline uint64_t load64(const uint64_t *w)
{
	return __atomic_load_n(w, __ATOMIC_SEQ_CST);
}
static inline uint64_t sysword(struct cf_core *c, uint32_t s)
{
	return load64(&sys_slot(c, s)->state);
}
static inline uint64_t regword(struct cf_core *c, uint32_t i)
{
	return load64(&inst_slot(c, i)->reg);
}
/* The liveness test: does system word w describe incarnation e, ACTIVE? */
static inline bool sys_incarnation(uint64_t w, uint32_t e)
{
	return cf_sysword_state(w) == CF_SYS_ACTIVE && cf_sysword_epoch(w) == e;
}
/* The ownership test: is w the registration of incarnation (s, e), ACTIVE under that owner and epoch? */
static inline bool reg_owned_by(uint64_t w, uint32_t s, uint32_t e)
{
	return cf_reg_state(w) == CF_REG_ACTIVE && cf_reg_owner(w) == s && cf_reg_epoch(w) == e;
}

/* A name field of the image as a C string. */
static inline void core_name_of(const char field[CF_NAME_MAX], char out[CF_NAME_MAX])
{
	memcpy(out, field, CF_NAME_MAX);
	out[CF_NAME_MAX - 1] = 0;
}

/*
 * A name a member sent: at most CF_NAME_MAX - 1 characters and terminated in
 * its field. An unterminated one would be cut to 15 characters and name
 * something else: -EINVAL, and the caller refuses the request.
 */
static inline int core_name_in(const char field[CF_NAME_MAX], char out[CF_NAME_MAX])
{
	if (!memchr(field, 0, CF_NAME_MAX))
		return -EINVAL;
	core_name_of(field, out);
	return 0;
}

/*
 * ---------------- what one module calls in another ----------------
 *
 * In layers, so that no two files call each other: cf_core.c (the
 * transport's callbacks, the dispatch, the lifecycle) calls the modules that
 * serve requests; cf_console.c, cf_member.c and cf_sweep.c call
 * cf_failure.c; cf_console.c, cf_member.c and cf_failure.c call cf_inst.c;
 * cf_failure.c and cf_inst.c call cf_restart.c; all of them call
 * cf_core_base.c, which calls none of them.
 */

/* cf_core_base.c: what every module uses (connections, sending, events, grants, image words, names). */
const char *core_conn_state_str(enum conn_state s);
void core_set_state(struct core_conn *cc, enum conn_state to);
void core_image_persist(struct cf_core *c, uint64_t off, uint64_t len);
void core_persist(struct cf_core *c, uint64_t off, uint64_t len);
int core_local_cas(struct cf_core *c, uint64_t off, uint64_t compare, uint64_t swap, uint64_t *old);
int core_word_cas(struct cf_core *c, uint64_t off, uint64_t compare, uint64_t swap);
const char *core_sys_name(struct cf_core *c, uint32_t s, char buf[CF_NAME_MAX]);
const char *core_inst_name(struct cf_core *c, uint32_t i, char buf[CF_NAME_MAX]);
void core_reg_desc(struct cf_core *c, uint64_t w, char *buf, size_t cap);
int core_send(struct core_conn *cc, uint64_t id, uint16_t type, const void *body, size_t len);
void core_status(struct core_conn *cc, uint64_t id, uint16_t type, int status, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
void core_refuse(struct core_conn *cc, uint64_t id, uint32_t cause, const char *msg);
struct cf_event core_event(struct cf_core *c, uint32_t type, uint32_t s, uint32_t e, uint32_t i,
			   uint64_t reg, uint64_t t_ns);
void core_event_to(struct cf_core *c, uint32_t s, const struct cf_event *ev);
void core_event_all(struct cf_core *c, const struct cf_event *ev);
int core_grant(struct core_conn *cc, uint32_t region, uint32_t inst, uint64_t off, uint64_t len,
	       uint32_t rights, struct cf_grant *g);
void core_sys_link(struct cf_core *c, uint32_t s, struct core_conn *cc);
void core_sys_unlink(struct cf_core *c, struct core_conn *cc);
unsigned core_end_conns(struct cf_core *c, uint32_t s, enum conn_state to, struct core_conn *keep);

/* cf_member.c: the handshake and membership (JOIN, CONN_ATTACH, GOODBYE, WATCHDOG). */
void member_handshake_budget(struct cf_core *c, struct core_conn *newcomer);
void member_on_hello(struct core_conn *cc, uint64_t id, const struct cf_hello *h);
void member_on_auth(struct core_conn *cc, uint64_t id, const struct cf_auth *a);
void member_on_join(struct core_conn *cc, uint64_t id, const struct cf_join *j);
void member_on_conn_attach(struct core_conn *cc, uint64_t id, const struct cf_conn_attach *a);
void member_on_goodbye(struct core_conn *cc, uint64_t id);
void member_on_sentinel(struct core_conn *cc, uint64_t id, const struct cf_conn_attach *a);
void member_on_died(struct core_conn *cc, uint64_t id);
void member_on_watchdog(struct core_conn *cc, uint64_t id, const struct cf_watchdog_msg *m);

/* cf_inst.c: instances (INST_OPEN, INST_ATTACH, INST_UNREG) and the CF's record of who holds each. */
void inst_set(struct cf_core *c, uint32_t i, uint64_t w);
bool inst_held_by(const struct cf_core *c, uint32_t i, uint32_t s, uint32_t e);
int inst_reg_legal(const struct cf_core *c, uint32_t i, uint64_t w, uint32_t s, uint32_t e, const char **why);
void inst_restore_word(struct cf_core *c, uint32_t i, uint64_t w, const char *ctx);
int inst_find(struct cf_core *c, const char *name, int *empty);
void inst_on_open(struct core_conn *cc, uint64_t id, const struct cf_inst_name *m);
void inst_on_attach(struct core_conn *cc, uint64_t id, const struct cf_inst_ref *ref);
void inst_on_unreg(struct core_conn *cc, uint64_t id, const struct cf_inst_ref *ref);

/* cf_failure.c: failure processing, steps (1)-(4), the orphan scan, the takeover of a reloaded image. */
/* The only writer of INACTIVE_FAILED: see its comment in cf_failure.c. */
uint64_t mark_instance_failed(struct cf_core *c, uint32_t i, uint32_t s, uint32_t e, uint64_t w, uint32_t k,
			      uint64_t t_ns, uint32_t cause);
void fail_system(struct cf_core *c, uint32_t s, uint32_t cause);
uint64_t orphan_check(struct cf_core *c, uint32_t i, uint64_t w, const char *ctx);
void orphan_scan(struct cf_core *c);
void take_over_image(struct cf_core *c);

/* cf_restart.c: the restart barrier and the end of restart recovery. */
void restart_barrier_add(struct cf_core *c, uint32_t i);
int restart_defers_attach(struct cf_core *c, struct core_conn *cc, uint64_t id, uint32_t i, const char *in,
			  const char *sn);
void restart_recovered(struct cf_core *c, uint32_t i, const char *in);
void restart_barrier(struct cf_core *c);

/* cf_sweep.c: the heartbeat sweep (and the handshake bound), the orphan timer, SUSPECT reports. */
void sweep_start(struct cf_core *c);
void sweep_stop(struct cf_core *c);
void sweep_on_suspect(struct core_conn *cc, uint64_t id, const struct cf_suspect *m);

/* cf_console.c: the console's requests and the metrics (console and monitor). */
void console_on_policy_set(struct core_conn *cc, uint64_t id, const struct cf_policy_msg *p);
void console_on_restart_info(struct core_conn *cc, uint64_t id);
void console_on_duplex_info(struct core_conn *cc, uint64_t id);
void console_on_recover(struct core_conn *cc, uint64_t id, const struct cf_recover *m);
void console_on_fence_confirm(struct core_conn *cc, uint64_t id, const struct cf_fence_confirm *m);
void console_on_recover_retry(struct core_conn *cc, uint64_t id, const struct cf_recover *m);
void console_on_metrics(struct core_conn *cc, uint64_t id, const struct cf_metrics_req *q);
void console_monitor_refused(struct core_conn *cc, uint64_t id, uint16_t type);

/* cf_lockq.c: lock hand-off, the queues of lock waiters (LOCK_WAIT, LOCK_CANCEL, LOCK_KICK). */
int lockq_init(struct cf_core *c);
void lockq_fini(struct cf_core *c);
void lockq_forget(struct cf_core *c, struct core_conn *cc);
void lockq_on_wait(struct core_conn *cc, uint64_t id, const struct cf_lock_wait *m);
void lockq_on_cancel(struct core_conn *cc, uint64_t id, const struct cf_lock_wait *m);
void lockq_on_kick(struct core_conn *cc, const struct cf_lock_kick *m);
const struct cf_lockq_stats *lockq_stats(const struct cf_core *c, uint32_t *waiting);
void lockq_log(const struct cf_core *c); /* one line of figures, at the end */

/* cf_persist_req.c: PERSIST requests, answered after the group commit that covers them. */
void preq_forget(struct cf_core *c, struct core_conn *cc);
void preq_on_persist(struct core_conn *cc, uint64_t id, const struct cf_persist_msg *p);

#endif
