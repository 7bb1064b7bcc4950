/* SPDX-License-Identifier: MIT */
/*
 * cfnode - a system of the cluster: joins the CF, heartbeats, takes its home
 * instance, runs a workload on the shared data directory, and (through
 * cf_recovery.c) detects failed peers and recovers their instances.
 *
 * Exit codes: 0 ok, 1 other error, 2 usage, 69 CF unavailable, 75 this
 * incarnation is over (connection to the CF lost, or declared failed:
 * restart to rejoin), 77 cluster key refused.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cf_agent.h"
#include "cf_auth.h"
#include "cf_bank.h"
#include "cf_recovery.h"
#include "cf_util.h"

#define EX_OK_ 0
#define EX_OTHER 1
#define EX_USAGE_ 2
#define EX_UNAVAILABLE_ 69
#define EX_OVER 75
#define EX_KEY 77

enum workload { WL_NONE, WL_BANK, WL_HOLD, WL_LOCK, WL_BACKOUT, WL_LOGFULL };
static const char *const wl_names[] = { "none", "bank", "hold", "lock", "backout", "logfull" };

static int verbosity = CF_AGENT_INFO;
static const char *sysname = "?";
static struct cf_agent *g_agent;

static void logf_stderr(void *arg, int level, const char *fmt, va_list ap)
{
	static const char *const lv[] = { "error", "warning", "info", "debug" };
	struct timespec ts;

	if (level > verbosity)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(stderr, "%02ld:%02ld:%02ld.%03ld cfnode[%s] %s: ", (long)(ts.tv_sec / 3600 % 24),
		(long)(ts.tv_sec / 60 % 60), (long)(ts.tv_sec % 60), ts.tv_nsec / 1000000L, sysname, lv[level]);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void say(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	logf_stderr(NULL, level, fmt, ap);
	va_end(ap);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: cfnode --cf HOST:PORT --system NAME --instance NAME --data DIR --cluster-key FILE [options]\n"
		"\n"
		"Joins the coupling facility as system NAME, takes its home instance, and runs a workload on the\n"
		"shared data directory DIR.\n"
		"\n"
		"  --cf HOST:PORT         cfserver address (required)\n"
		"  --system NAME          this system's name, 1-15 chars [A-Za-z0-9_.-] (required)\n"
		"  --instance NAME        home instance (required)\n"
		"  --data DIR             shared data directory (required; cfctl mkdata creates it)\n"
		"  --cluster-key FILE     cluster key (64 hex digits; cfctl keygen) (required)\n"
		"  --transport tcp|verbs  transport (default tcp)\n"
		"  --hb-interval MS       heartbeat interval h (default: the CF's, 5 ms)\n"
		"  --hb-timeout MS        lease timeout T, at most the CF's (default: the CF's)\n"
		"  --connect-timeout MS   (default $CF_CONNECT_TIMEOUT_MS, else 3000)\n"
		"  --workload W           none (default) | bank | hold | lock | backout | logfull\n"
		"  --accounts N           bank: use accounts 0..N-1 (default: all in the file)\n"
		"  --duration S           bank: run S seconds (default 10)\n"
		"  --txns M               bank: run M transactions instead\n"
		"  --inflight K           bank: transactions in flight (default 1)\n"
		"  --seed N               random seed\n"
		"  --journal FILE         bank: append \"txid from to amount\" per committed transaction\n"
		"  --lock-timeout MS      give up a contended lock after MS (default 2000)\n"
		"  --record R             hold/lock: the account to lock (default 0)\n"
		"  --hold-ms MS           hold: keep the lock MS (default 5000)\n"
		"  --updates N            backout: updates before the voluntary backout (default 16)\n"
		"  --json                 workload report as JSON\n"
		"  --policy auto|operator recovery policy of this system (default: the cluster's)\n"
		"  --fence-agent A        local | none | /path/to/fence_agent (default local)\n"
		"  --fence-arg K=V        option for an external fence agent (repeatable)\n"
		"  -q, --quiet / -v, --verbose\n"
		"  -h, --help\n"
		"\n"
		"Exit codes: 0 ok, 1 error, 2 usage, 69 CF unavailable, 75 incarnation over (restart to rejoin),\n"
		"77 cluster key refused.\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_ms(const char *s, uint64_t max, uint64_t *out)
{
	int r = parse_u64(s, out);
	return r ? r : (*out == 0 || *out > max) ? -ERANGE : 0;
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
		return EX_UNAVAILABLE_;
	case -EPERM:
	case -EACCES:
		return EX_KEY;
	default:
		return EX_OTHER;
	}
}

struct wl_run {
	struct cf_agent *a;
	struct cf_inst_ctx *ic;
	struct cf_session *ws;
	enum workload kind;
	struct cf_bank_opts bo;
	bool json;
	int r;
	struct cf_bank_result res;
	_Atomic int stop;
};

static void *wl_main(void *arg)
{
	struct wl_run *w = arg;
	struct cf_txn_ctx *c = &w->ic->txn;

	switch (w->kind) {
	case WL_BANK:
		w->r = cf_bank_run(c, w->ws, &w->bo, &w->res);
		break;
	case WL_HOLD:
		w->r = cf_bank_hold(c, &w->bo, stdout);
		break;
	case WL_LOCK:
		w->r = cf_bank_lock(c, &w->bo, stdout);
		break;
	case WL_BACKOUT:
		w->r = cf_bank_backout(c, &w->bo, stdout);
		break;
	case WL_LOGFULL:
		w->r = cf_bank_logfull(c, &w->bo, stdout);
		break;
	case WL_NONE:
		break;
	}
	fflush(stdout);
	cf_agent_request_stop(w->a);
	return NULL;
}

static void on_signal(int sig)
{
	if (g_agent)
		atomic_store(&g_agent->stop, 1);
}

static int over_exit(struct cf_agent *a, int err)
{
	if (err == -ENOLINK) {
		say(CF_AGENT_ERR,
		    "lease expired and did not come back: this incarnation (%s epoch %u) is over; restart to rejoin as a "
		    "new incarnation",
		    a->o.system, a->epoch);
		return EX_OVER;
	}
	say(CF_AGENT_ERR,
	    "connection to CF lost (%s): this incarnation (%s epoch %u) is over; restart to rejoin as a new incarnation",
	    strerror(err < 0 ? -err : EPIPE), a->o.system, a->epoch);
	return EX_OVER;
}

/*
 * The incarnation is over: stop the heartbeat thread and ask the workload to
 * stop. Its every CF or data write is lease-checked and the lease is gone, so
 * nothing it still does can land; wait for it a bounded time only (it may sit
 * in an fdatasync or a lock backoff), then let it die with the process.
 */
static bool end_threads(struct cf_agent *a, struct wl_run *w, pthread_t thr, bool started)
{
	struct timespec until;

	cf_agent_hb_stop(a);
	if (!started)
		return true;
	atomic_store(&w->stop, 1);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 1;
	if (pthread_timedjoin_np(thr, NULL, &until) == 0)
		return true;
	pthread_detach(thr);
	return false;
}

/* After end_threads: free what the ended incarnation held, unless a thread still uses it. */
static void end_incarnation(struct cf_agent *a, struct cf_inst_ctx *home, struct cf_session *ws, bool joined)
{
	cf_recovery_fini(a);
	if (!joined)
		return; /* the process exits: the kernel takes it all back */
	if (home)
		cf_inst_ctx_detach(home);
	cf_session_close(ws);
	cf_agent_fini(a);
}

int main(int argc, char **argv)
{
	enum {
		O_CF = 256, O_SYSTEM, O_INSTANCE, O_DATA, O_KEY, O_TRANSPORT, O_HBI, O_HBT, O_CTO, O_WORKLOAD,
		O_ACCOUNTS, O_DURATION, O_TXNS, O_INFLIGHT, O_SEED, O_JOURNAL, O_LOCKTO, O_RECORD, O_HOLD, O_UPDATES,
		O_JSON, O_POLICY, O_FENCE, O_FENCEARG,
	};
	static const struct option lopts[] = {
		{ "cf", required_argument, NULL, O_CF },
		{ "system", required_argument, NULL, O_SYSTEM },
		{ "instance", required_argument, NULL, O_INSTANCE },
		{ "data", required_argument, NULL, O_DATA },
		{ "cluster-key", required_argument, NULL, O_KEY },
		{ "transport", required_argument, NULL, O_TRANSPORT },
		{ "hb-interval", required_argument, NULL, O_HBI },
		{ "hb-timeout", required_argument, NULL, O_HBT },
		{ "connect-timeout", required_argument, NULL, O_CTO },
		{ "workload", required_argument, NULL, O_WORKLOAD },
		{ "accounts", required_argument, NULL, O_ACCOUNTS },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "txns", required_argument, NULL, O_TXNS },
		{ "inflight", required_argument, NULL, O_INFLIGHT },
		{ "seed", required_argument, NULL, O_SEED },
		{ "journal", required_argument, NULL, O_JOURNAL },
		{ "lock-timeout", required_argument, NULL, O_LOCKTO },
		{ "record", required_argument, NULL, O_RECORD },
		{ "hold-ms", required_argument, NULL, O_HOLD },
		{ "updates", required_argument, NULL, O_UPDATES },
		{ "json", no_argument, NULL, O_JSON },
		{ "policy", required_argument, NULL, O_POLICY },
		{ "fence-agent", required_argument, NULL, O_FENCE },
		{ "fence-arg", required_argument, NULL, O_FENCEARG },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cf_agent_opts o = { .transport = "tcp", .policy = -1 };
	struct wl_run w = { .kind = WL_NONE };
	const char *key_file = NULL, *fence_spec = "local";
	const char *fence_args[CF_FENCE_MAX_ARGS];
	int nfence_args = 0;
	uint64_t v, lock_timeout = 2000;
	static struct cf_agent a;
	struct cf_session ws;
	struct cf_inst_ctx *home = NULL;
	pthread_t thr;
	bool thr_started = false;
	int c, r, rc = EX_OK_;

	memset(&ws, 0, sizeof(ws));
	w.bo.duration_s = 10;
	w.bo.hold_ms = 5000;
	w.bo.inflight = 1;
	while ((c = getopt_long(argc, argv, "qvh", lopts, NULL)) != -1) {
		const char *bad = NULL;
		switch (c) {
		case O_CF: o.cf_addr = optarg; break;
		case O_SYSTEM: o.system = optarg; break;
		case O_INSTANCE: o.instance = optarg; break;
		case O_DATA: o.data_dir = optarg; break;
		case O_KEY: key_file = optarg; break;
		case O_TRANSPORT:
			if (strcmp(optarg, "tcp") && strcmp(optarg, "verbs"))
				bad = "--transport must be tcp or verbs";
			o.transport = optarg;
			break;
		case O_HBI:
			if (parse_ms(optarg, 10000, &v))
				bad = "--hb-interval must be 1..10000 ms";
			o.hb_interval_ns = v * 1000000ull;
			break;
		case O_HBT:
			if (parse_ms(optarg, 600000, &v))
				bad = "--hb-timeout must be 1..600000 ms";
			o.hb_timeout_ns = v * 1000000ull;
			break;
		case O_CTO:
			if (parse_ms(optarg, 600000, &v))
				bad = "--connect-timeout must be 1..600000 ms";
			o.connect_timeout_ms = (int)v;
			break;
		case O_WORKLOAD: {
			size_t i;
			for (i = 0; i < CF_ARRAY_SIZE(wl_names); i++)
				if (!strcmp(optarg, wl_names[i]))
					break;
			if (i == CF_ARRAY_SIZE(wl_names))
				bad = "--workload must be none, bank, hold, lock, backout or logfull";
			else
				w.kind = (enum workload)i;
			break;
		}
		case O_ACCOUNTS:
			if (parse_u64(optarg, &v) || v < 2)
				bad = "--accounts must be at least 2";
			w.bo.accounts = v;
			break;
		case O_DURATION: {
			char *end;
			double d = strtod(optarg, &end);
			if (*end || !(d > 0) || d > 86400 * 7)
				bad = "--duration must be a positive number of seconds";
			w.bo.duration_s = d;
			break;
		}
		case O_TXNS:
			if (parse_u64(optarg, &v) || v == 0)
				bad = "--txns must be a positive count";
			w.bo.txns = v;
			break;
		case O_INFLIGHT:
			if (parse_u64(optarg, &v) || v == 0 || v > 1024)
				bad = "--inflight must be 1..1024";
			w.bo.inflight = (uint32_t)v;
			break;
		case O_SEED:
			if (parse_u64(optarg, &v))
				bad = "--seed must be a number";
			w.bo.seed = v;
			break;
		case O_JOURNAL: w.bo.journal = optarg; break;
		case O_LOCKTO:
			if (parse_u64(optarg, &lock_timeout) || lock_timeout > 3600000)
				bad = "--lock-timeout must be 0..3600000 ms";
			break;
		case O_RECORD:
			if (parse_u64(optarg, &v))
				bad = "--record must be a record number";
			w.bo.record = v;
			break;
		case O_HOLD:
			if (parse_ms(optarg, 3600000, &v))
				bad = "--hold-ms must be 1..3600000";
			w.bo.hold_ms = (int)v;
			break;
		case O_UPDATES:
			if (parse_u64(optarg, &v) || v == 0 || v > 100000)
				bad = "--updates must be 1..100000";
			w.bo.updates = (uint32_t)v;
			break;
		case O_JSON: w.json = true; break;
		case O_POLICY:
			if (!strcmp(optarg, "auto"))
				o.policy = CF_POLICY_AUTO;
			else if (!strcmp(optarg, "operator"))
				o.policy = CF_POLICY_OPERATOR;
			else
				bad = "--policy must be auto or operator";
			break;
		case O_FENCE: fence_spec = optarg; break;
		case O_FENCEARG:
			if (nfence_args == CF_FENCE_MAX_ARGS)
				bad = "too many --fence-arg";
			else
				fence_args[nfence_args++] = optarg;
			break;
		case 'q': verbosity = CF_AGENT_WARN; break;
		case 'v': verbosity = CF_AGENT_DEBUG; break;
		case 'h': usage(stdout); return EX_OK_;
		default: usage(stderr); return EX_USAGE_;
		}
		if (bad) {
			fprintf(stderr, "cfnode: %s (got '%s')\n", bad, optarg);
			return EX_USAGE_;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "cfnode: unexpected argument '%s'\n", argv[optind]);
		return EX_USAGE_;
	}
	if (!o.cf_addr || !o.system || !o.instance || !o.data_dir || !key_file) {
		fprintf(stderr, "cfnode: --cf, --system, --instance, --data and --cluster-key are required (see --help)\n");
		return EX_USAGE_;
	}
	if (cf_name_check(o.system)) {
		fprintf(stderr, "cfnode: bad system name '%s': 1-15 characters of [A-Za-z0-9_.-]\n", o.system);
		return EX_USAGE_;
	}
	if (cf_name_check(o.instance)) {
		fprintf(stderr, "cfnode: bad instance name '%s': 1-15 characters of [A-Za-z0-9_.-]\n", o.instance);
		return EX_USAGE_;
	}
	if (cf_fence_parse(&o.fence, fence_spec)) {
		fprintf(stderr, "cfnode: bad --fence-agent '%s': local, none or a path\n", fence_spec);
		return EX_USAGE_;
	}
	for (int i = 0; i < nfence_args; i++) {
		if (cf_fence_add_arg(&o.fence, fence_args[i])) {
			fprintf(stderr, "cfnode: bad --fence-arg '%s': expected KEY=VALUE\n", fence_args[i]);
			return EX_USAGE_;
		}
	}
	sysname = o.system;
	o.logf = logf_stderr;
	if (cf_auth_init()) {
		fprintf(stderr, "cfnode: libsodium failed to start\n");
		return EX_OTHER;
	}
	r = cf_key_load(key_file, o.key);
	if (r) {
		fprintf(stderr, "cfnode: cannot use cluster key %s: %s\n", key_file,
			r == -EINVAL ? "not 64 hex digits or 32 raw bytes" : strerror(-r));
		return EX_OTHER;
	}
	/* The data directory must be usable before we take an instance. */
	{
		struct cf_data d;
		struct cf_data_file *f;
		r = cf_data_open(&d, o.data_dir);
		if (!r && w.kind != WL_NONE)
			r = cf_data_file(&d, CF_BANK_FILE, &f);
		if (r) {
			fprintf(stderr, "cfnode: data directory %s: %s\n", o.data_dir,
				r == -EBADMSG ? cf_data_corrupt_msg(&d) : strerror(-r));
			cf_data_close(&d);
			return EX_OTHER;
		}
		if (w.kind != WL_NONE && w.bo.accounts > f->rec_count) {
			fprintf(stderr, "cfnode: --accounts %" PRIu64 " but %s/f0.cfd has %" PRIu64 " records\n",
				w.bo.accounts, o.data_dir, f->rec_count);
			cf_data_close(&d);
			return EX_USAGE_;
		}
		if (w.kind != WL_NONE && w.bo.record >= f->rec_count) {
			fprintf(stderr, "cfnode: --record %" PRIu64 " but the file has %" PRIu64 " records\n", w.bo.record,
				f->rec_count);
			cf_data_close(&d);
			return EX_USAGE_;
		}
		cf_data_close(&d);
	}

	cf_agent_init(&a, &o);
	g_agent = &a;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	r = cf_agent_join(&a);
	if (r) {
		rc = session_exit_code(r);
		if (rc == EX_UNAVAILABLE_)
			say(CF_AGENT_ERR, "CF %s unavailable: %s", o.cf_addr, strerror(-r));
		else if (rc == EX_KEY)
			say(CF_AGENT_ERR, "CF %s refused the cluster key (%s)", o.cf_addr, key_file);
		else
			say(CF_AGENT_ERR, "join %s as %s: %s%s%s", o.cf_addr, o.system, strerror(-r),
			    cf_session_error_msg(&a.s) ? ": the CF says: " : "",
			    cf_session_error_msg(&a.s) ? cf_session_error_msg(&a.s) : "");
		goto out_fini;
	}
	say(CF_AGENT_INFO, "joined %s as system #%u epoch %u (h %.1f ms, T %.1f ms)", o.cf_addr, a.sys, a.epoch,
	    (double)(o.hb_interval_ns ? o.hb_interval_ns : a.s.welcome.hb_interval_ns) / 1e6,
	    (double)a.hb_timeout_ns / 1e6);
	r = cf_agent_hb_start(&a);
	if (r) {
		say(CF_AGENT_ERR, "heartbeat: %s", strerror(-r));
		rc = r == -EINVAL ? EX_USAGE_ : a.s.dead ? EX_OVER : EX_OTHER;
		goto out_fini;
	}
	r = cf_agent_inst_open(&a, o.instance, true, &home);
	if (r) {
		say(CF_AGENT_ERR, "open instance %s: %s", o.instance, strerror(-r));
		rc = a.s.dead ? over_exit(&a, a.s.dead) : EX_OTHER;
		goto out_fini;
	}
	r = cf_agent_claim(&a, home);
	if (r == -EINTR) {
		say(CF_AGENT_INFO, "stopped while waiting for %s", o.instance);
		rc = EX_OK_;
		goto out_leave;
	}
	if (r) {
		if (a.s.dead || cf_agent_over(&a))
			rc = over_exit(&a, r);
		else {
			say(CF_AGENT_ERR, "take instance %s: %s", o.instance, strerror(-r));
			rc = EX_OTHER;
		}
		goto out_fini;
	}
	say(CF_AGENT_INFO, "instance %s (#%u) is ACTIVE here (incident %u)", o.instance, home->index,
	    cf_reg_incident(home->reg));
	r = cf_recovery_init(&a);
	if (r) {
		say(CF_AGENT_ERR, "recovery module: %s", strerror(-r));
		rc = EX_OTHER;
		goto out_leave;
	}
	if (w.kind != WL_NONE) {
		r = cf_agent_open_session(&a, &ws);
		if (!r)
			r = cf_inst_ctx_attach(home, &ws, true);
		if (r == -EINTR) { /* stopped while the CF's restart recovery made us wait */
			say(CF_AGENT_INFO, "stopped while waiting to attach %s", o.instance);
			rc = EX_OK_;
			goto out_recovery;
		}
		if (r) {
			if (ws.dead || cf_agent_over(&a))
				rc = over_exit(&a, r);
			else {
				say(CF_AGENT_ERR, "attach %s: %s", o.instance, strerror(-r));
				rc = EX_OTHER;
			}
			goto out_recovery;
		}
		home->txn.lock_timeout_ms = (int)lock_timeout;
		w.a = &a;
		w.ic = home;
		w.ws = &ws;
		w.bo.stop = &w.stop;
		r = -pthread_create(&thr, NULL, wl_main, &w);
		if (r) {
			say(CF_AGENT_ERR, "workload thread: %s", strerror(-r));
			rc = EX_OTHER;
			goto out_recovery;
		}
		thr_started = true;
		say(CF_AGENT_INFO, "workload %s started", wl_names[w.kind]);
	}
	r = cf_agent_run(&a);
	if (r) {
		/* The incarnation is over: no clean leave, nothing carried over. */
		rc = over_exit(&a, r);
		fflush(stdout);
		end_incarnation(&a, home, &ws, end_threads(&a, &w, thr, thr_started));
		return rc;
	}
	if (thr_started) {
		atomic_store(&w.stop, 1);
		pthread_join(thr, NULL);
		thr_started = false;
		/*
		 * Posted record-list clears must land while the instance is still
		 * ours: the unregister below revokes this session's grants on it.
		 */
		if (!ws.dead)
			(void)cf_session_drain(&ws);
		if (w.kind == WL_BANK)
			cf_bank_print(stdout, o.system, &w.res, w.json);
		fflush(stdout);
		if (w.r) {
			if (ws.dead || cf_agent_over(&a) || w.r == -ENOLINK) {
				rc = over_exit(&a, ws.dead ? ws.dead : w.r);
				end_incarnation(&a, home, &ws, end_threads(&a, &w, thr, false));
				return rc;
			}
			say(CF_AGENT_ERR, "workload %s: %s", wl_names[w.kind],
			    w.r == -EBADMSG && cf_data_corrupt_msg(&home->data)[0] ? cf_data_corrupt_msg(&home->data)
										  : strerror(-w.r));
			rc = EX_OTHER;
		}
	}
out_recovery:
	cf_recovery_fini(&a);
out_leave:
	if (thr_started) {
		atomic_store(&w.stop, 1);
		pthread_join(thr, NULL);
		if (!ws.dead)
			(void)cf_session_drain(&ws);
	}
	/* GOODBYE first: a connection closing before it would be a failure at the CF. */
	r = cf_agent_leave(&a);
	if (home)
		cf_inst_ctx_detach(home);
	cf_session_close(&ws);
	if (r == -EBUSY) {
		rc = EX_OVER; /* left to peer recovery: restart to rejoin */
	} else if (r && rc == EX_OK_) {
		say(CF_AGENT_ERR, "clean leave: %s", strerror(-r));
		rc = EX_OTHER;
	} else if (rc == EX_OK_) {
		say(CF_AGENT_INFO, "left the cluster cleanly");
	}
out_fini:
	cf_agent_fini(&a);
	return rc;
}
