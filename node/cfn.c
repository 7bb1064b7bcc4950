/* SPDX-License-Identifier: MIT */
/*
 * cfn.c - the application API of cfnode.h: a thin layer over cf_node (the
 * member's life, shared with the cfnode daemon) and cf_txn (transactions).
 *
 * Where cfnode runs the agent loop in its main thread and the workload in a
 * thread of its own, the library turns it round: the application's threads
 * are the workload, and cfn_open starts a thread for the agent loop (events,
 * detection, peer recovery). What cfnode does with exit code 75 becomes
 * -ECONNABORTED on every call and the on_over callback; its self-backout on a
 * volatile CF happens in cfn_abort/cfn_commit, on the thread that owns the
 * transaction, as the bank workload does it (cf_bank.c backout_cur).
 *
 * A switch of duplexed CFs (cf_addr "A,B"; cf_node_switch.c) keeps the
 * incarnation, as it does cfnode's: where cfnode's bank parks, the agent
 * thread quiesces the application instead. Every call runs between
 * call_begin and call_end; while a switch runs, calls wait in call_begin.
 * The switch stops the call in progress (its session is aborted), waits for
 * it to return, and settles every transaction still open, on the agent
 * thread, with the mutex held: backed out from memory on a volatile pair,
 * left to the log at the new primary otherwise (which backs it out there,
 * the held recovery). Such a transaction is "lost": every call on it then
 * returns -ECONNRESET (cfn_abort 0), and the call that failed when the CF
 * went returns -ECONNRESET too, or -EINPROGRESS for a commit whose COMMIT
 * was posted and never answered (the log at the new primary decides it).
 */
#include "cfnode.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cf_auth.h"
#include "cf_key.h"
#include "cf_node.h"
#include "cf_util.h"

#define LEASE_WAIT_MS 5000 /* as the bank: a lapsed lease may come back within 5 s */
#define CFN_SWITCH_WAIT_MS 10000u /* cfnode --switch-wait's default */

struct cfn {
	struct cf_node n;
	pthread_t agent_thr;
	bool agent_started;
	/* a switch of duplexed CFs: calls wait while it runs (above) */
	pthread_mutex_t mu;
	pthread_cond_t cv;  /* CLOCK_MONOTONIC */
	bool in_call;       /* an API call uses the node (one thread at a time: cfnode(3)) */
	bool switching;     /* the agent thread switches CF: calls wait */
	bool agent_done;    /* the agent loop ended for good: no switch comes */
	uint64_t round;     /* switches ended, either way */
	int switch_result;  /* of the last: 0 kept, else the -errno the incarnation ended with */
	void (*log)(void *arg, int level, const char *msg);
	void *log_arg;
	void (*on_over)(void *arg, int err);
	void *on_over_arg;
	_Atomic int told; /* on_over called */
	struct cfn_txn *txns; /* open transactions, freed by cfn_close if the application left any */
};

struct cfn_txn {
	struct cfn *h;
	struct cf_txn t;
	struct cfn_txn *next, **pprev;
	/* settled by a switch of CF (t is freed): -ECONNRESET backed out, -EINPROGRESS in doubt; 0: open */
	int lost;
};

static void txn_free(struct cfn_txn *t)
{
	if (!t->lost)
		cf_txn_free(&t->t);
	*t->pprev = t->next;
	if (t->next)
		t->next->pprev = t->pprev;
	free(t);
}

_Static_assert((int)CFN_LOCK_S == (int)CF_LOCK_S && (int)CFN_LOCK_X == (int)CF_LOCK_X, "lock modes");
_Static_assert((int)CFN_LOG_ERR == CF_AGENT_ERR && (int)CFN_LOG_DEBUG == CF_AGENT_DEBUG, "log levels");

__attribute__((format(printf, 3, 0))) static void log_fwd(void *arg, int level, const char *fmt, va_list ap)
{
	struct cfn *h = arg;
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	h->log(h->log_arg, level, msg);
}

/* The incarnation is over (err): tell the application once. */
static void tell_over(struct cfn *h, int err)
{
	int zero = 0;

	if (h->on_over && atomic_compare_exchange_strong(&h->told, &zero, 1))
		h->on_over(h->on_over_arg, err);
}

/* Can a lost CF be switched for the other of a pair (cf_addr "A,B")? */
static bool can_switch(const struct cfn *h)
{
	return h->n.o.switch_wait_ms != 0;
}

/* An API call begins: it waits while a switch runs. The switch round it began in. */
static uint64_t call_begin(struct cfn *h)
{
	uint64_t round;

	pthread_mutex_lock(&h->mu);
	while (h->switching)
		pthread_cond_wait(&h->cv, &h->mu);
	h->in_call = true;
	round = h->round;
	pthread_mutex_unlock(&h->mu);
	return round;
}

/*
 * It ended with r. -ECONNABORTED where a switch may keep the incarnation:
 * wait for it (the call no longer uses the node: the switch settles what is
 * open). Kept: the call returns kept instead (-ECONNRESET, -EINPROGRESS, 0).
 */
static int call_end(struct cfn *h, uint64_t round, int r, int kept)
{
	pthread_mutex_lock(&h->mu);
	h->in_call = false;
	pthread_cond_broadcast(&h->cv);
	if (r == -ECONNABORTED && can_switch(h)) {
		while (h->round == round && !h->agent_done)
			pthread_cond_wait(&h->cv, &h->mu);
		if (h->round != round && h->switch_result == 0)
			r = kept;
	}
	pthread_mutex_unlock(&h->mu);
	return r;
}

/*
 * Settle an open transaction for a switch of CF (agent thread, mutex held,
 * no call in progress): through the CF if it still could, else from memory
 * on a volatile pair (as backout below); else the log at the new primary
 * backs it out. Frees t->t; t stays the application's until it ends it.
 */
static void settle(struct cfn_txn *t)
{
	struct cf_txn_ctx *c = &t->h->n.home->txn;
	int r = cf_txn_backout(&t->t);

	if (r && r != -EALREADY && r != -EINPROGRESS && c->self_backout)
		r = cf_txn_self_backout(&t->t);
	/* -EALREADY (its COMMIT answered) cannot be here: cfn_commit ends t in the same call */
	t->lost = r == -EINPROGRESS || r == -EALREADY ? -EINPROGRESS : -ECONNRESET;
	cf_txn_free(&t->t);
}

/* Step (2) of a switch (cf_node.h quiesce): the call in progress returns, the rest wait; settle what is open. */
static int quiesce(void *arg, uint64_t end_ns)
{
	struct cfn *h = arg;
	struct timespec ts = { (time_t)(end_ns / 1000000000ull), (long)(end_ns % 1000000000ull) };
	int r = 0, n = 0;

	pthread_mutex_lock(&h->mu);
	h->switching = true;
	while (h->in_call && !r)
		if (pthread_cond_timedwait(&h->cv, &h->mu, &ts) == ETIMEDOUT)
			r = -ETIMEDOUT;
	for (struct cfn_txn *t = h->txns; !r && t; t = t->next)
		if (!t->lost) {
			settle(t);
			n++;
		}
	pthread_mutex_unlock(&h->mu);
	if (r)
		cf_agent_log(&h->n.a, CF_AGENT_ERR, "switch of CF: the application did not return from its call");
	else
		cf_agent_log(&h->n.a, CF_AGENT_INFO, "switch of CF: the application waits; %d open transaction(s) settled", n);
	return r;
}

static void *agent_main(void *arg)
{
	struct cfn *h = arg;
	struct cf_node *n = &h->n;
	int r;

	/* a lost CF of a duplexed pair: switch to the other and run again, as cfnode */
	while ((r = cf_agent_run(&n->a)) && cf_node_may_switch(n, r)) {
		r = cf_node_switch(n, r);
		pthread_mutex_lock(&h->mu);
		h->switching = false;
		h->switch_result = r;
		h->round++;
		pthread_cond_broadcast(&h->cv);
		pthread_mutex_unlock(&h->mu);
		if (r)
			break;
	}
	if (r && atomic_load(&n->a.over))
		r = atomic_load(&n->a.over);
	pthread_mutex_lock(&h->mu);
	h->agent_done = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	if (r)
		tell_over(h, r);
	return NULL;
}

int cfn_status(const struct cfn *h)
{
	struct cf_node *n = (struct cf_node *)&h->n;

	if (cf_agent_over(&n->a))
		return cf_agent_over(&n->a);
	return n->ws.dead;
}

static bool is_over(struct cfn *h)
{
	return cfn_status(h) != 0;
}

/*
 * After a failed call: if the incarnation is over (a dead session: the CF
 * is gone or failed us), make the agent loop end too and say so.
 */
static int check_over(struct cfn *h, int r)
{
	if (!is_over(h))
		return r;
	if (!cf_agent_over(&h->n.a))
		cf_agent_set_over(&h->n.a, h->n.ws.dead ? h->n.ws.dead : r);
	return -ECONNABORTED;
}

/* A lapsed lease did not come back within LEASE_WAIT_MS: the incarnation is over (cfnode: exit 75). */
static int lease_gone(struct cfn *h)
{
	cf_agent_set_over(&h->n.a, -ENOLINK);
	return -ECONNABORTED;
}

static int errno_of(int rc, int err)
{
	switch (rc) {
	case CF_NODE_EX_OK: return 0;
	case CF_NODE_EX_USAGE: return -EINVAL;
	case CF_NODE_EX_OVER: return -ECONNABORTED;
	case CF_NODE_EX_DATA: return -EUCLEAN;
	default: return err ? err : -EIO;
	}
}

static int agent_opts(const struct cfn_config *cfg, struct cf_node_opts *no)
{
	struct cf_agent_opts *o = &no->agent;
	int r;

	if (!cfg->cf_addr || !cfg->key_file || !cfg->system || !cfg->instance || !cfg->data_dir)
		return -EINVAL;
	if (cf_name_check(cfg->system) || cf_name_check(cfg->instance))
		return -EINVAL;
	if (cfg->transport && strcmp(cfg->transport, "tcp") && strcmp(cfg->transport, "verbs"))
		return -EINVAL;
	if (cfg->policy > CFN_POLICY_OPERATOR)
		return -EINVAL;
	o->cf_addr = cfg->cf_addr;
	o->transport = cfg->transport ? cfg->transport : "tcp";
	o->system = cfg->system;
	o->instance = cfg->instance;
	o->data_dir = cfg->data_dir;
	o->hb_interval_ns = (uint64_t)cfg->hb_interval_ms * 1000000ull;
	o->hb_timeout_ns = (uint64_t)cfg->hb_timeout_ms * 1000000ull;
	o->connect_timeout_ms = (int)cfg->connect_timeout_ms;
	o->policy = cfg->policy == CFN_POLICY_AUTO	 ? CF_POLICY_AUTO
		    : cfg->policy == CFN_POLICY_OPERATOR ? CF_POLICY_OPERATOR
							 : -1;
	o->app_signals = true;
	r = cf_fence_parse(&o->fence, cfg->fence_agent ? cfg->fence_agent : "auto");
	for (size_t i = 0; !r && cfg->fence_args && cfg->fence_args[i]; i++)
		r = cf_fence_add_arg(&o->fence, cfg->fence_args[i]);
	if (!r && cfg->fence_map) {
		char why[256];
		r = o->fence.kind == CF_FENCE_EXTERNAL ? cf_fence_map_load(&o->fence, cfg->fence_map, why, sizeof(why))
						       : -EINVAL;
	}
	if (r)
		return r;
	r = cf_key_load(cfg->key_file, o->key);
	if (r)
		return r;
	no->key_file = cfg->key_file;
	no->watchdog = cfg->watchdog;
	no->wd_timeout_ms = cfg->watchdog_timeout_ms ? cfg->watchdog_timeout_ms : 5000;
	no->marker_wait_ms = cfg->marker_wait_ms ? cfg->marker_wait_ms : CF_NODE_MARKER_WAIT_MS;
	no->workload = true;
	no->lock_timeout_ms = cfg->lock_timeout_ms ? (int)cfg->lock_timeout_ms : 2000;
	no->defer_writes = cfg->group_commit != 0;
	/* a duplexed pair: a lost CF is looked for at the other for 10 s, as cfnode --switch-wait */
	no->switch_wait_ms = strchr(cfg->cf_addr, ',') ? CFN_SWITCH_WAIT_MS : 0;
	return 0;
}

static void handle_free(struct cfn *h)
{
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

int cfn_open(const struct cfn_config *cfg, struct cfn **out)
{
	struct cf_node_opts no;
	struct cf_data d;
	struct cfn *h;
	sigset_t all, old;
	int r, rc;

	*out = NULL;
	if (!cfg)
		return -EINVAL;
	memset(&no, 0, sizeof(no));
	if (cf_auth_init())
		return -EIO;
	r = agent_opts(cfg, &no);
	if (r) {
		cf_fence_map_free(&no.agent.fence);
		return r;
	}
	/* the data directory must be usable before we take an instance (as cfnode) */
	r = cf_data_open(&d, cfg->data_dir);
	cf_data_close(&d);
	if (r) {
		cf_fence_map_free(&no.agent.fence);
		return r;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		cf_fence_map_free(&no.agent.fence);
		return -ENOMEM;
	}
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&h->cv, &ca);
		pthread_condattr_destroy(&ca);
		pthread_mutex_init(&h->mu, NULL);
	}
	h->log = cfg->log;
	h->log_arg = cfg->log_arg;
	h->on_over = cfg->on_over;
	h->on_over_arg = cfg->on_over_arg;
	if (h->log) {
		no.agent.logf = log_fwd;
		no.agent.log_arg = h;
	}
	cf_node_init(&h->n, &no);
	h->n.quiesce = quiesce;
	h->n.quiesce_arg = h;
	rc = cf_node_start(&h->n);
	if (rc || !cf_node_ready(&h->n)) {
		r = errno_of(rc, h->n.err);
		if (!r)
			r = -EINTR; /* stopped while it waited: cannot happen without a stop request */
		cf_node_leave(&h->n, rc);
		handle_free(h);
		return r;
	}
	/* the agent thread takes no signal of the application's */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = -pthread_create(&h->agent_thr, NULL, agent_main, h);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		cf_node_leave(&h->n, CF_NODE_EX_OTHER);
		handle_free(h);
		return r;
	}
	h->agent_started = true;
	*out = h;
	return 0;
}

static int backout(struct cfn_txn *t);

/* Stop the agent thread (a requested stop, or it ended with the incarnation). */
static void stop_agent(struct cfn *h)
{
	if (!h->agent_started)
		return;
	cf_agent_request_stop(&h->n.a);
	pthread_join(h->agent_thr, NULL);
	h->agent_started = false;
}

int cfn_close(struct cfn *h)
{
	int rc, r = 0;

	if (!h)
		return 0;
	/* transactions the application left open are aborted here, on its thread, as cfn_abort does */
	(void)call_begin(h);
	while (h->txns)
		(void)backout(h->txns);
	pthread_mutex_lock(&h->mu);
	h->in_call = false;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	stop_agent(h);
	if (is_over(h)) {
		/* exit code 75: nothing carried over; the open transactions were self-backed-out or are a peer's */
		cf_node_over(&h->n, cfn_status(h));
		cf_node_end_over(&h->n, true, true);
		r = -ECONNABORTED;
		goto out_free;
	}
	rc = cf_node_leave(&h->n, CF_NODE_EX_OK);
	if (rc == CF_NODE_EX_OVER)
		r = h->n.err == -EBUSY ? -EBUSY : -ECONNABORTED;
	else if (rc)
		r = h->n.err ? h->n.err : -EIO;
out_free:
	handle_free(h);
	return r;
}

void cfn_identity(const struct cfn *h, unsigned *sys, unsigned *epoch)
{
	if (sys)
		*sys = h->n.a.sys;
	if (epoch)
		*epoch = h->n.a.epoch;
}

int cfn_create_file(const char *data_dir, unsigned file, unsigned rec_size, uint64_t count)
{
	if (!data_dir || file >= CF_DATA_MAX_FILES || rec_size == 0 || rec_size > CF_DATA_MAX_REC_SIZE || count == 0 ||
	    count > CF_DATA_MAX_RECORDS)
		return -EINVAL;
	return cf_data_create(data_dir, file, rec_size, count, 0, NULL, NULL, false);
}

static int file_info(struct cfn *h, unsigned file, unsigned *rec_size, uint64_t *count)
{
	struct cf_data_file *f;
	int r;

	if (file >= CF_DATA_MAX_FILES)
		return -EINVAL;
	r = cf_data_file(&h->n.home->data, file, &f);
	if (r)
		return r;
	if (rec_size)
		*rec_size = f->rec_size;
	if (count)
		*count = f->rec_count;
	return 0;
}

int cfn_file_info(struct cfn *h, unsigned file, unsigned *rec_size, uint64_t *count)
{
	uint64_t round = call_begin(h); /* the home instance's files are set up again by a switch */
	int r = file_info(h, file, rec_size, count);

	return call_end(h, round, r, r);
}

static int begin(struct cfn *h, struct cfn_txn **out)
{
	struct cfn_txn *t;
	int r;

	if (is_over(h))
		return -ECONNABORTED;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->h = h;
	r = cf_txn_begin(&h->n.home->txn, &t->t);
	if (r) {
		free(t);
		return check_over(h, r);
	}
	t->next = h->txns;
	t->pprev = &h->txns;
	if (h->txns)
		h->txns->pprev = &t->next;
	h->txns = t;
	*out = t;
	return 0;
}

int cfn_begin(struct cfn *h, struct cfn_txn **out)
{
	uint64_t round;

	*out = NULL;
	round = call_begin(h);
	return call_end(h, round, begin(h, out), -ECONNRESET);
}

/* The record exists and len is its size: 0, -EINVAL, -ENOENT, -EBADMSG. */
static int check_rec(struct cfn_txn *t, unsigned file, uint64_t rec, size_t len)
{
	unsigned rs;
	uint64_t n;
	int r;

	if (t->lost)
		return t->lost;
	if (is_over(t->h))
		return -ECONNABORTED;
	r = file_info(t->h, file, &rs, &n);
	if (r)
		return r;
	return rec < n && (len == SIZE_MAX || len == rs) ? 0 : -EINVAL;
}

static int lock(struct cfn_txn *t, unsigned file, uint64_t rec, enum cfn_lock_mode mode, int timeout_ms)
{
	int r = check_rec(t, file, rec, SIZE_MAX);

	if (r)
		return r;
	if (mode != CFN_LOCK_S && mode != CFN_LOCK_X)
		return -EINVAL;
	r = cf_txn_lock(&t->t, file, rec, (enum cf_lock_mode)mode, timeout_ms < 0 ? -1 : timeout_ms, NULL);
	return r ? check_over(t->h, r) : 0;
}

int cfn_lock(struct cfn_txn *t, unsigned file, uint64_t rec, enum cfn_lock_mode mode, int timeout_ms)
{
	uint64_t round = call_begin(t->h);

	return call_end(t->h, round, lock(t, file, rec, mode, timeout_ms), -ECONNRESET);
}

static int read_rec(struct cfn_txn *t, unsigned file, uint64_t rec, void *buf, size_t len)
{
	int r = check_rec(t, file, rec, len);

	if (r)
		return r;
	r = cf_txn_read(&t->t, file, rec, buf);
	return r ? check_over(t->h, r) : 0;
}

int cfn_read(struct cfn_txn *t, unsigned file, uint64_t rec, void *buf, size_t len)
{
	uint64_t round = call_begin(t->h);

	return call_end(t->h, round, read_rec(t, file, rec, buf, len), -ECONNRESET);
}

static int update(struct cfn_txn *t, unsigned file, uint64_t rec, const void *buf, size_t len)
{
	int r = check_rec(t, file, rec, len);

	if (r)
		return r;
	r = cf_txn_update(&t->t, file, rec, buf);
	return r ? check_over(t->h, r) : 0;
}

int cfn_update(struct cfn_txn *t, unsigned file, uint64_t rec, const void *buf, size_t len)
{
	uint64_t round = call_begin(t->h);

	return call_end(t->h, round, update(t, file, rec, buf, len), -ECONNRESET);
}

/*
 * Back t out through the CF, waiting out a lapsed lease; when that fails
 * the incarnation is over, and on a volatile CF this thread, which owns it,
 * writes its before-images back from memory (docs/design.md, "A volatile
 * CF"), as cf_bank.c backout_cur does. A transaction a switch of CF settled
 * is only freed (-ECONNRESET: backed out; -EINPROGRESS: in doubt). Frees t.
 */
static int backout(struct cfn_txn *t)
{
	struct cf_txn_ctx *c = &t->h->n.home->txn;
	struct cfn *h = t->h;
	int r;

	if (t->lost) {
		r = t->lost;
		txn_free(t);
		return r;
	}
	while ((r = cf_txn_backout(&t->t)) == -ENOLINK) {
		r = cf_txn_lease_wait(c, LEASE_WAIT_MS);
		if (r)
			break;
	}
	if (r == -EALREADY) /* its COMMIT was acknowledged: it is committed */
		r = 0;
	else if (r && c->self_backout)
		(void)cf_txn_self_backout(&t->t);
	txn_free(t);
	return r == -ENOLINK ? lease_gone(h) : r ? check_over(h, r) : 0;
}

/* cfn_commit; *doubt: its COMMIT was posted and never answered (the log decides). */
static int commit(struct cfn_txn *t, bool *doubt)
{
	struct cfn *h = t->h;
	struct cf_txn_ctx *c = &h->n.home->txn;
	int r, rb;

	if (t->lost) {
		r = t->lost;
		txn_free(t);
		return r;
	}
	while ((r = cf_txn_commit(&t->t)) == -ENOLINK) {
		r = cf_txn_lease_wait(c, LEASE_WAIT_MS);
		if (r)
			break;
	}
	if (!r || t->t.terminal == CF_LR_COMMIT) { /* committed (a failed release afterwards is recovery's) */
		txn_free(t);
		if (r)
			(void)(r == -ENOLINK ? lease_gone(h) : check_over(h, r));
		return 0;
	}
	if (r == -ENOLINK)
		r = lease_gone(h); /* first: the backout then fails at once and backs out from memory */
	rb = backout(t);
	if (rb == -EINPROGRESS) {
		/* its COMMIT was posted, never answered: only the log decides, and this incarnation cannot read it */
		*doubt = true;
		if (!cf_agent_over(&h->n.a))
			cf_agent_set_over(&h->n.a, h->n.ws.dead ? h->n.ws.dead : r);
		return -ECONNABORTED;
	}
	r = check_over(h, r);
	return r == -ECONNABORTED || rb == -ECONNABORTED ? -ECONNABORTED : r;
}

int cfn_commit(struct cfn_txn *t)
{
	struct cfn *h;
	uint64_t round;
	bool doubt = false;
	int r;

	if (!t)
		return -EINVAL;
	h = t->h;
	round = call_begin(h);
	r = commit(t, &doubt);
	return call_end(h, round, r, doubt ? -EINPROGRESS : -ECONNRESET);
}

int cfn_abort(struct cfn_txn *t)
{
	struct cfn *h;
	uint64_t round;
	int r;

	if (!t)
		return -EINVAL;
	h = t->h;
	round = call_begin(h);
	r = backout(t);
	if (r == -ECONNRESET)
		r = 0; /* a switch of CF backed it out: as asked */
	/* the CF went during the backout and a switch kept the incarnation: backed out (memory, or the log there) */
	return call_end(h, round, r, 0);
}

const char *cfn_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case -ECONNABORTED:
		return "this incarnation is over (connection to the CF lost, or the lease did not come back): abort "
		       "every open transaction, cfn_close, then cfn_open again";
	case -ECONNRESET:
		return "the CF of the duplexed pair was switched for the other while this transaction was open: it "
		       "was backed out (end it with cfn_abort); the handle goes on: begin again";
	case -EINPROGRESS:
		return "in doubt: the CF was switched while this commit waited for its answer; it is committed if "
		       "and only if its COMMIT reached the CF that took over (read the data to know); the handle "
		       "goes on";
	case -ENOLINK: return "lease lapsed: abort the transaction";
	case -EALREADY: return "another open transaction of this handle holds the record: end that one first";
	case -EBUSY: return "the record is locked by another system, or cfn_close left work to peer recovery";
	case -ETIMEDOUT: return "timed out (lock wait, or the CF did not answer)";
	case -ENOSPC: return "the undo log or the record list is full: abort the transaction";
	case -EUCLEAN:
		return "the data directory needs the operator (an instance was in use under a lost volatile CF): see "
		       "cfctl verify and cfctl data-release; do not retry";
	case -EBADMSG: return "corrupt record or file header";
	case -EACCES:
	case -EPERM: return "the CF refused the cluster key, or the request";
	case -ECONNREFUSED:
	case -EHOSTUNREACH:
	case -ENETUNREACH: return "the CF cannot be reached";
	case -EINVAL: return "invalid argument (configuration, record number or length)";
	default: return err < 0 ? strerror(-err) : "not an error code of this API";
	}
}
