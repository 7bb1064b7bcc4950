/* SPDX-License-Identifier: MIT */
/*
 * cfnode - a system of the cluster: joins the CF, heartbeats, takes its home
 * instance, runs a workload on the shared data directory, and (through
 * cf_recovery.c) detects failed peers and recovers their instances.
 *
 * Exit codes: 0 ok, 1 other error, 2 usage, 69 CF unavailable, 75 this
 * incarnation is over (connection to the CF lost, or declared failed:
 * restart to rejoin), 77 cluster key refused, 78 the data directory needs the
 * operator (an instance was in use under a volatile CF image that is gone and
 * its open transactions were not backed out: see cfctl data-release).
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
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cf_agent.h"
#include "cf_auth.h"
#include "cf_cli.h"
#include "cf_bank.h"
#include "cf_marker.h"
#include "cf_recovery.h"
#include "cf_notify.h"
#include "cf_util.h"

#define EX_OK_ 0
#define EX_OTHER 1
#define EX_USAGE_ 2
#define EX_UNAVAILABLE_ 69
#define EX_OVER 75
#define EX_KEY 77
#define EX_DATA 78 /* the data directory needs the operator (not restartable: fix, then start) */
#define DEFAULT_MARKER_WAIT_MS 10000
#define SELF_BACKOUT_WAIT_S 20 /* the workload thread's self-backout: writes and one fdatasync per file */

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
		"  --cluster-key FILE     cluster key (64 hex digits, mode 0600; cfctl keygen --out) (required)\n"
		"  --transport tcp|verbs  transport (default tcp)\n"
		"  --hb-interval MS       heartbeat interval h (default: the CF's, 5 ms)\n"
		"  --hb-timeout MS        lease timeout T, at most the CF's (default: the CF's)\n"
		"  --connect-timeout MS   (default $CF_CONNECT_TIMEOUT_MS, else 3000)\n"
		"  --workload W           none (default) | bank | hold | lock | backout | logfull\n"
		"  --accounts N           bank: use accounts 0..N-1 (default: all in the file)\n"
		"  --duration S           bank: run S seconds (default 10)\n"
		"  --txns M               bank: run M transactions instead\n"
		"  --inflight K           bank: transactions in flight (default 1)\n"
		"  --group-commit on|off  bank: updates keep their data writes until the next durable point,\n"
		"                         and a full ring of K commits as one group (default on)\n"
		"  --seed N               random seed\n"
		"  --journal FILE         bank: append \"txid from to amount\" per committed transaction\n"
		"  --lock-timeout MS      give up a contended lock after MS (default 2000)\n"
		"  --record R             hold/lock: the account to lock (default 0)\n"
		"  --hold-ms MS           hold: keep the lock MS (default 5000)\n"
		"  --updates N            backout: updates before the voluntary backout (default 16)\n"
		"  --json                 workload report as JSON\n"
		"  --policy auto|operator recovery policy of this system (default: the cluster's)\n"
		"  --fence-agent A        auto | local | none | /path/to/fence_agent (default auto: local for\n"
		"                         this host, else the target's watchdog, else wait for fence-confirm)\n"
		"  --fence-arg K=V        option for an external fence agent (repeatable)\n"
		"  --fence-map FILE       per system or host name, agent options: lines \"NAME k=v k=v ...\"\n"
		"  --unfence              run the external agent with action=on for this system at join,\n"
		"                         before it writes data (fence_scsi)\n"
		"  --watchdog PATH        arm a watchdog (character device: Linux watchdog API; FIFO: the test\n"
		"                         stand-in), pet it while the lease holds, announce it to the CF\n"
		"  --watchdog-timeout MS  its timeout (default 5000; a device rounds up to whole seconds)\n"
		"  --fence-wd-margin MS   slack added when waiting out a failed peer's watchdog (default 250)\n"
		"  --data-io buffered|direct  data file I/O: page cache (default), or O_DIRECT for a data\n"
		"                         directory on NFS shared by several hosts\n"
		"  --marker-wait MS       wait for another instance's self-backout after a volatile CF\n"
		"                         was lost, at most MS (default 10000), before refusing (78)\n"
		"  -q, --quiet / -v, --verbose\n"
		"  -h, --help\n"
		"      --version          print the version\n"
		"\n"
		"Exit codes: 0 ok, 1 error, 2 usage, 69 CF unavailable, 75 incarnation over (restart to rejoin),\n"
		"77 cluster key refused, 78 the data directory needs the operator (do not restart: see the\n"
		"message, cfctl verify and cfctl data-release).\n");
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

static void image_str(const uint64_t id[2], char *buf, size_t cap)
{
	cf_marker_image_str(id, buf, cap);
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
static int check_markers(struct cf_agent *a, const char *dir, uint64_t wait_ms)
{
	static char names[CF_MARKER_MAX_LIST][CF_NAME_MAX];
	uint64_t t0 = cf_mono_ns();
	char cur[40], old[40], why[160];
	bool said = false;
	size_t n = 0;
	int r;

	image_str(a->image_id, cur, sizeof(cur));
	for (;;) {
		struct cf_marker m, stale;
		bool pending = false, alive = false;

		r = cf_marker_list(dir, names, CF_MARKER_MAX_LIST, &n);
		if (r == -ENOENT)
			return 0;
		if (r) {
			say(CF_AGENT_ERR, "data directory %s: markers in %s/" CF_MARKER_DIR ": %s", dir, dir, strerror(-r));
			return EX_OTHER;
		}
		for (size_t i = 0; i < n; i++) {
			r = cf_marker_read(dir, names[i], &m, why, sizeof(why));
			if (r == -ENOENT)
				continue;
			if (r == -EBADMSG) {
				say(CF_AGENT_ERR,
				    "data directory %s: the marker of instance %s (%s/" CF_MARKER_DIR "/%s) is corrupt: %s. "
				    "Refusing to start: whether %s left uncommitted updates in the data is unknown. Check "
				    "the data (cfctl verify --data %s), restore or accept it, then run: cfctl data-release "
				    "--data %s %s --force",
				    dir, names[i], dir, names[i], why, names[i], dir, dir, names[i]);
				return EX_DATA;
			}
			if (r) {
				say(CF_AGENT_ERR, "data directory %s: marker of %s: %s", dir, names[i], strerror(-r));
				return EX_OTHER;
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
				say(CF_AGENT_INFO, "data directory %s: every instance of a lost CF image has backed out", dir);
			return 0;
		}
		image_str(stale.image, old, sizeof(old));
		/* its owner may still be backing out: here and running, or on another host (unknown) */
		if ((alive || strcmp(stale.host, a->host)) && cf_mono_ns() - t0 < wait_ms * 1000000ull &&
		    !atomic_load(&a->stop) && !cf_agent_over(a)) {
			struct timespec ts = { 0, 50 * 1000000L };
			if (!said)
				say(CF_AGENT_WARN,
				    "data directory %s: instance %s (system %s, host %s, pid %llu) is in use under CF "
				    "image %s, which is gone (this CF is image %s): waiting up to %.1f s for it to back "
				    "out its open transactions from memory",
				    dir, stale.instance, stale.system, stale.host, (unsigned long long)stale.pid, old, cur,
				    (double)wait_ms / 1000.0);
			said = true;
			nanosleep(&ts, NULL);
			continue;
		}
		say(CF_AGENT_ERR,
		    "data directory %s needs the operator: instance %s of system %s (host %s, pid %llu%s) was in use "
		    "under CF image %s, which is gone (a volatile CF restarted, or its image was replaced), and its "
		    "open transactions were not backed out: their uncommitted updates may be in the data, with no undo "
		    "log left. Refusing to start (exit 78). Make sure that process is gone, check the data (cfctl verify "
		    "--data %s), restore it or accept it, then run: cfctl data-release --data %s %s --force",
		    dir, stale.instance, stale.system, stale.host, (unsigned long long)stale.pid,
		    marker_owner_alive_here(a, &stale) ? ", still running" : "", old, dir, dir, stale.instance);
		return EX_DATA;
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
static int self_backout_check(void *arg)
{
	struct cf_agent *a = arg;
	uint64_t over_ns = atomic_load(&a->over_ns), last = atomic_load(&a->hb.last_ok_ns);
	uint64_t at = over_ns ? over_ns : cf_mono_ns();

	return last && at - last < a->hb_timeout_ns ? 0 : -ESTALE;
}

/* Set the home instance's marker; 0 or -errno (logged). */
static int set_marker(struct cf_agent *a, const char *inst, enum cf_marker_state st)
{
	int r = cf_marker_set(a->o.data_dir, inst, st, a->image_id, a->o.system, a->host, a->pid, a->starttime);

	if (r < 0)
		say(CF_AGENT_ERR, "data directory %s: cannot set the marker of %s %s: %s", a->o.data_dir, inst,
		    cf_marker_state_str(st), strerror(-r));
	return r;
}

/*
 * The incarnation is over and the workload thread has returned: on a volatile
 * CF its open transactions were backed out from memory (cf_bank.c
 * backout_cur); if none is left open, say so in the marker. Otherwise the
 * marker stays in use and every restart asks the operator.
 */
static void after_self_backout(struct cf_agent *a, struct cf_inst_ctx *home, bool joined)
{
	if (!a->cf_volatile || !home)
		return;
	if (!joined || !home->attached) {
		say(CF_AGENT_ERR,
		    "self-backout of %s did not finish (the workload did not return): its data-directory marker stays "
		    "in use, restarts will ask the operator",
		    home->name);
		return;
	}
	if (home->txn.nopen) {
		say(CF_AGENT_ERR,
		    "self-backout of %s: %u transaction(s) not backed out from memory%s: its data-directory marker "
		    "stays as it is; if this CF is gone, restarts will ask the operator",
		    home->name, home->txn.nopen,
		    self_backout_check(a) ? " (the heartbeat was older than T when the incarnation ended: a peer may "
					    "have recovered the instance already)"
					  : "");
		return;
	}
	if (set_marker(a, home->name, CF_MARKER_CLEAN) == 0)
		say(CF_AGENT_WARN,
		    "volatile CF lost: self-backout of %s done (%llu open transaction(s) backed out from the "
		    "before-images in memory, files synced); its data-directory marker is clean",
		    home->name, (unsigned long long)home->txn.self_backouts);
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
	/* on a volatile CF the thread backs out what it has open before it returns */
	until.tv_sec += a->cf_volatile ? SELF_BACKOUT_WAIT_S : 1;
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
		O_JSON, O_POLICY, O_FENCE, O_FENCEARG, O_WATCHDOG, O_WDTIMEOUT, O_WDMARGIN, O_FENCEMAP, O_UNFENCE, O_DATAIO,
		O_MARKERWAIT, O_GROUP, O_VERSION,
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
		{ "group-commit", required_argument, NULL, O_GROUP },
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
		{ "fence-map", required_argument, NULL, O_FENCEMAP },
		{ "unfence", no_argument, NULL, O_UNFENCE },
		{ "watchdog", required_argument, NULL, O_WATCHDOG },
		{ "watchdog-timeout", required_argument, NULL, O_WDTIMEOUT },
		{ "fence-wd-margin", required_argument, NULL, O_WDMARGIN },
		{ "data-io", required_argument, NULL, O_DATAIO },
		{ "marker-wait", required_argument, NULL, O_MARKERWAIT },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct cf_agent_opts o = { .transport = "tcp", .policy = -1 };
	struct wl_run w = { .kind = WL_NONE };
	const char *key_file = NULL, *fence_spec = "auto", *wd_path = NULL;
	uint64_t wd_timeout_ms = 5000;
	const char *fence_map = NULL;
	bool unfence = false;
	const char *fence_args[CF_FENCE_MAX_ARGS];
	int nfence_args = 0;
	uint64_t v, lock_timeout = 2000, marker_wait = DEFAULT_MARKER_WAIT_MS;
	static struct cf_agent a;
	struct cf_session ws;
	struct cf_inst_ctx *home = NULL;
	pthread_t thr;
	bool thr_started = false, marked = false;
	int c, r, rc = EX_OK_;

	memset(&ws, 0, sizeof(ws));
	w.bo.duration_s = 10;
	w.bo.hold_ms = 5000;
	w.bo.inflight = 1;
	w.bo.group_commit = true; /* docs/design.md §6: the stall of issue 10 was the tests' probe, not group commit */
	opterr = 0; /* cf_cli_bad_option says it in one line */
	while ((c = getopt_long(argc, argv, ":qvh", lopts, NULL)) != -1) {
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
		case O_GROUP:
			if (!strcmp(optarg, "on"))
				w.bo.group_commit = true;
			else if (!strcmp(optarg, "off"))
				w.bo.group_commit = false;
			else
				bad = "--group-commit must be on or off";
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
		case O_WATCHDOG: wd_path = optarg; break;
		case O_FENCEMAP: fence_map = optarg; break;
		case O_UNFENCE: unfence = true; break;
		case O_WDTIMEOUT:
			if (parse_u64(optarg, &wd_timeout_ms) || wd_timeout_ms < CF_WD_TIMEOUT_MIN_MS ||
			    wd_timeout_ms > CF_WD_TIMEOUT_MAX_MS)
				bad = "--watchdog-timeout must be 100..600000 ms";
			break;
		case O_WDMARGIN: {
			uint64_t ms;
			if (parse_u64(optarg, &ms) || ms > 600000)
				bad = "--fence-wd-margin must be 0..600000 ms";
			else
				o.wd_margin_ns = ms * 1000000ull;
			break;
		}
		case O_FENCEARG:
			if (nfence_args == CF_FENCE_MAX_ARGS)
				bad = "too many --fence-arg";
			else
				fence_args[nfence_args++] = optarg;
			break;
		case O_DATAIO:
			if (!strcmp(optarg, "buffered"))
				cf_data_set_io(CF_DATA_IO_BUFFERED);
			else if (!strcmp(optarg, "direct"))
				cf_data_set_io(CF_DATA_IO_DIRECT);
			else
				bad = "--data-io must be buffered or direct";
			break;
		case O_MARKERWAIT:
			if (parse_u64(optarg, &marker_wait) || marker_wait > 3600000)
				bad = "--marker-wait must be 0..3600000 ms";
			break;
		case 'q': verbosity = CF_AGENT_WARN; break;
		case 'v': verbosity = CF_AGENT_DEBUG; break;
		case 'h': usage(stdout); return EX_OK_;
		case O_VERSION: return cf_cli_version("cfnode") ? EX_OTHER : EX_OK_;
		default: return cf_cli_bad_option("cfnode", c, argv, EX_USAGE_);
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
		fprintf(stderr, "cfnode: bad --fence-agent '%s': auto, local, none or a path\n", fence_spec);
		return EX_USAGE_;
	}
	for (int i = 0; i < nfence_args; i++) {
		if (cf_fence_add_arg(&o.fence, fence_args[i])) {
			fprintf(stderr, "cfnode: bad --fence-arg '%s': expected KEY=VALUE, no '=' or newline in the value\n",
				fence_args[i]);
			return EX_USAGE_;
		}
	}
	if ((fence_map || unfence) && o.fence.kind != CF_FENCE_EXTERNAL) {
		fprintf(stderr, "cfnode: --fence-map and --unfence need an external --fence-agent PATH\n");
		return EX_USAGE_;
	}
	if (fence_map) {
		char why[256];
		if (cf_fence_map_load(&o.fence, fence_map, why, sizeof(why))) {
			fprintf(stderr, "cfnode: bad --fence-map: %s\n", why);
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
		char why[512];
		fprintf(stderr, "cfnode: %s\n", cf_key_explain(key_file, r, why, sizeof(why)));
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
				r == -EBADMSG || (r == -EINVAL && d.io == CF_DATA_IO_DIRECT) ? cf_data_corrupt_msg(&d)
											    : strerror(-r));
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
	{
		char id[40];
		image_str(a.image_id, id, sizeof(id));
		say(CF_AGENT_INFO, "CF image %s (%s)", id,
		    a.cf_volatile ? "volatile: a lost CF is backed out from memory" : "durable");
	}
	rc = check_markers(&a, o.data_dir, marker_wait);
	if (rc)
		goto out_leave;
	if (wd_path) {
		char msg[128];
		/* armed and announced before the home instance is claimed: before any write */
		r = cf_agent_watchdog_arm(&a, wd_path, (uint32_t)wd_timeout_ms, msg, sizeof(msg));
		if (r) {
			say(CF_AGENT_ERR, "watchdog %s: %s%s%s", wd_path,
			    r == -ENXIO ? "a FIFO that nobody reads (is the watchdog stand-in running?)" : strerror(-r),
			    msg[0] ? ": the CF says: " : "", msg);
			rc = a.s.dead ? EX_OVER : EX_OTHER;
			goto out_fini;
		}
		say(CF_AGENT_INFO, "watchdog %s armed (%u ms, %s), petted while the lease holds; announced to the CF",
		    wd_path, a.wd.timeout_ms, a.wd.chardev ? "device" : "FIFO stand-in");
	}
	if (unfence) {
		struct cf_fence_target self;
		char msg[200];
		/* before this system writes anything: fence_scsi registers its key here */
		memset(&self, 0, sizeof(self));
		snprintf(self.name, sizeof(self.name), "%s", o.system);
		memcpy(self.host, a.host, sizeof(self.host));
		self.pid = a.pid;
		self.starttime = a.starttime;
		r = cf_fence_unfence(&o.fence, &self, msg, sizeof(msg));
		if (r) {
			say(CF_AGENT_ERR, "unfence (action=on for %s): %s", o.system, msg[0] ? msg : strerror(-r));
			rc = EX_OTHER;
			goto out_fini;
		}
		say(CF_AGENT_INFO, "unfenced: %s", msg);
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
	/* before the first data write of this incarnation (the attach may back out leftovers) */
	if (set_marker(&a, o.instance, w.kind != WL_NONE ? CF_MARKER_INUSE : CF_MARKER_CLEAN) < 0) {
		rc = EX_OTHER;
		goto out_leave;
	}
	marked = true;
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
		home->txn.self_backout = a.cf_volatile;
		/* group commit (cf_txn.h) where the workload commits in groups: the bank */
		home->txn.defer_writes = w.bo.group_commit && w.kind == WL_BANK;
		home->txn.self_backout_check = self_backout_check;
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
	/* joined, home instance ACTIVE here, recovery module armed: a member */
	cf_notify_ready();
	r = cf_agent_run(&a);
	if (r) {
		/* The incarnation is over: no clean leave, nothing carried over. */
		bool joined;
		rc = over_exit(&a, r);
		fflush(stdout);
		joined = end_threads(&a, &w, thr, thr_started);
		if (thr_started)
			after_self_backout(&a, home, joined);
		end_incarnation(&a, home, &ws, joined);
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
				after_self_backout(&a, home, true);
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
	/* nothing of the home instance is in flight any more: a clean leave, or it was never used */
	if (marked && !r && (rc == EX_OK_ || rc == EX_OTHER))
		(void)set_marker(&a, home->name, CF_MARKER_CLEAN);
out_fini:
	cf_agent_fini(&a);
	cf_fence_map_free(&o.fence);
	return rc;
}
