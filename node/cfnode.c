/* SPDX-License-Identifier: MIT */
/*
 * cfnode - a system of the cluster: joins the CF, heartbeats, takes its home
 * instance, runs a workload on the shared data directory, and (through
 * cf_recovery.c) detects failed peers and recovers their instances.
 *
 * Exit codes (cf_cli.h, the same in every program): 0 ok, 1 other error,
 * 2 usage, 69 CF unavailable, 75 this incarnation is over (connection to the
 * CF lost, or declared failed: restart to rejoin), 77 cluster key problem
 * (the key file unusable, or refused by the CF), 78 the data directory needs
 * the operator (an instance was in use under a volatile CF image that is gone
 * and its open transactions were not backed out: see cfctl data-release).
 *
 * Logging: cf_slog.h, with IDENT cfnode[SYSTEM]; libcfnode's lines come
 * through the agent's logger callback.
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
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cf_agent.h"
#include "cf_auth.h"
#include "cf_key.h"
#include "cf_cli.h"
#include "cf_marker.h"
#include "cf_bank.h"
#include "cf_node.h"
#include "cf_notify.h"
#include "cf_slog.h"
#include "cf_proc.h"
#include "cf_util.h"

/* exit codes: cf_node.h (the data directory needing the operator is 78, not restartable) */
_Static_assert((int)CF_NODE_EX_OK == CF_EX_OK && (int)CF_NODE_EX_OTHER == CF_EX_FAIL &&
		       (int)CF_NODE_EX_USAGE == CF_EX_USAGE && (int)CF_NODE_EX_UNAVAILABLE == CF_EX_UNAVAILABLE &&
		       (int)CF_NODE_EX_OVER == CF_EX_OVER && (int)CF_NODE_EX_KEY == CF_EX_KEY &&
		       (int)CF_NODE_EX_DATA == CF_EX_DATA,
	       "cfnode's exit codes are the table of cf_cli.h");
#define EX_OK_ CF_NODE_EX_OK
#define EX_OTHER CF_NODE_EX_OTHER
#define EX_USAGE_ CF_NODE_EX_USAGE
/* the main thread's heap made resident at start: a recovery of a 4 MiB log's scan and release fit (cf_proc.h) */
#define CF_NODE_HEAP_WARM (8u << 20)
#define SELF_BACKOUT_WAIT_S 20 /* the workload thread's self-backout: writes and one fdatasync per file */

enum workload { WL_NONE, WL_BANK, WL_HOLD, WL_LOCK, WL_BACKOUT, WL_LOGFULL };
static const char *const wl_names[] = { "none", "bank", "hold", "lock", "backout", "logfull" };

_Static_assert((int)CF_AGENT_ERR == CF_SLOG_ERR && (int)CF_AGENT_DEBUG == CF_SLOG_DEBUG, "log levels");

static char ident[8 + CF_NAME_MAX + 2] = "cfnode";
static struct cf_agent *g_agent;

/* the agent's logger (libcfnode does not print): the one log of cf_slog.h */
static void logf_stderr(void *arg, int level, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
static void logf_stderr(void *arg, int level, const char *fmt, va_list ap)
{
	cf_slogv(level, fmt, ap);
}

#define say(level, ...) cf_slog_at(level, __VA_ARGS__)

static void usage(FILE *out)
{
	fprintf(out,
		"usage: cfnode --cf HOST:PORT --system NAME --instance NAME --data DIR --cluster-key FILE [options]\n"
		"\n"
		"Joins the coupling facility as system NAME, takes its home instance, and runs a workload on the\n"
		"shared data directory DIR.\n"
		"\n"
		"  --cf ADDR[,ADDR]       cfserver HOST:PORT (required); a duplexed CF: both\n"
		"  --system NAME          this system's name, 1-15 chars [A-Za-z0-9_.-] (required)\n"
		"  --instance NAME        home instance (required)\n"
		"  --data DIR             shared data directory (required; cfctl mkdata creates it)\n"
		"  --cluster-key FILE     cluster key (64 hex digits, mode 0600; cfctl keygen --out) (required)\n"
		"  --transport tcp|verbs  transport (default tcp)\n"
		"  --hb-interval MS       heartbeat interval h (default: the CF's, 5 ms)\n"
		"  --hb-timeout MS        lease timeout T, at most the CF's (default: the CF's)\n"
		"  --connect-timeout MS   (default $CF_CONNECT_TIMEOUT_MS, else 3000)\n"
		"  --switch-wait MS       a duplexed CF (--cf A,B) lost: look this long for the other\n"
		"                         one and resume there, keeping this incarnation (default\n"
		"                         10000; 0: the incarnation ends, exit 75)\n"
		"  --ballast MIB          hold MIB of memory, touched (tests, benchmarks: a process the\n"
		"                         size of a real system, whose exit takes as long)\n"
		"  --workload W           none (default) | bank | hold | lock | backout | logfull\n"
		"  --accounts N           bank: use accounts 0..N-1 (default: all in the file)\n"
		"  --duration S           bank: run S seconds (default 10)\n"
		"  --txns M               bank: run M transactions instead\n"
		"  --inflight K           bank: transactions in flight (default 1)\n"
		"  --rate N               bank: begin at most N transactions a second (default: no limit)\n"
		"  --group-commit on|off  bank: updates keep their data writes until the next durable point,\n"
		"                         and a full ring of K commits as one group (default on)\n"
		"  --seed N               random seed\n"
		"  --journal FILE         bank: append \"txid from to amount\" per committed transaction\n"
		"                         (\"P ...\" before its commit, \"I INST_INDEX IMAGE\" at each start)\n"
		"  --recovery-journal FILE  append per transaction each recovery by this system decides,\n"
		"                         \"R INST_INDEX TXID C|B INST_NAME IMAGE\" (C: committed, its COMMIT is in the\n"
		"                         failed instance's log; B: backed out), for audits and journal checks\n"
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
		"  --log-level LEVEL      err|warn|info|debug (default info)\n"
		"  -q, --quiet / -v, --verbose  same as --log-level warn / debug\n"
		"  --log-prefix           a syslog priority <N> before every log line (automatic when\n"
		"                         stderr is the journal: JOURNAL_STREAM)\n"
		"  -h, --help\n"
		"      --version          print the version\n"
		"\n"
		"Exit codes: 0 ok, 1 error, 2 usage, 69 CF unavailable, 75 incarnation over (restart to rejoin),\n"
		"77 cluster key problem (unusable or refused), 78 the data directory needs the operator\n"
		"(do not restart: see the message, cfctl verify and cfctl data-release).\n");
}

/* Every number the same way as in cfserver and cfctl (cf_cli.h: decimal, no sign). */
static int parse_u64(const char *s, uint64_t *out)
{
	return cf_cli_parse_u64(s, 0, 0, UINT64_MAX, out);
}

static int parse_ms(const char *s, uint64_t max, uint64_t *out)
{
	return cf_cli_parse_u64(s, 0, 1, max, out);
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
	char image[40]; /* the CF image id, for the journal */
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

int main(int argc, char **argv)
{
	enum {
		O_CF = 256, O_SYSTEM, O_INSTANCE, O_DATA, O_KEY, O_TRANSPORT, O_HBI, O_HBT, O_CTO, O_WORKLOAD,
		O_ACCOUNTS, O_DURATION, O_TXNS, O_INFLIGHT, O_RATE, O_SEED, O_JOURNAL, O_LOCKTO, O_RECORD, O_HOLD, O_UPDATES,
		O_JSON, O_POLICY, O_FENCE, O_FENCEARG, O_WATCHDOG, O_WDTIMEOUT, O_WDMARGIN, O_FENCEMAP, O_UNFENCE, O_DATAIO,
		O_MARKERWAIT, O_GROUP, O_VERSION, O_LOGLEVEL, O_LOGPREFIX, O_RJOURNAL, O_SWITCHWAIT, O_BALLAST,
	};
	/* the sentinel is this program again (cf_sentinel.h) */
	if (argc > 1 && !strcmp(argv[1], CF_SENTINEL_ARG))
		return cf_sentinel_child(argc, argv);
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
		{ "switch-wait", required_argument, NULL, O_SWITCHWAIT },
		{ "ballast", required_argument, NULL, O_BALLAST },
		{ "workload", required_argument, NULL, O_WORKLOAD },
		{ "accounts", required_argument, NULL, O_ACCOUNTS },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "txns", required_argument, NULL, O_TXNS },
		{ "inflight", required_argument, NULL, O_INFLIGHT },
		{ "rate", required_argument, NULL, O_RATE },
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
		{ "recovery-journal", required_argument, NULL, O_RJOURNAL },
		{ "log-level", required_argument, NULL, O_LOGLEVEL },
		{ "log-prefix", no_argument, NULL, O_LOGPREFIX },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct cf_agent_opts o = { .transport = "tcp", .policy = -1, .sentinel = true };
	struct wl_run w = { .kind = WL_NONE };
	const char *key_file = NULL, *fence_spec = "auto", *wd_path = NULL;
	uint64_t wd_timeout_ms = 5000;
	const char *fence_map = NULL;
	bool unfence = false;
	const char *fence_args[CF_FENCE_MAX_ARGS];
	int nfence_args = 0;
	uint64_t v, lock_timeout = 2000, marker_wait = CF_NODE_MARKER_WAIT_MS, switch_wait = 10000, ballast_mib = 0;
	static struct cf_node n;
	pthread_t thr;
	bool thr_started = false;
	int c, r, rc = EX_OK_;

	w.bo.duration_s = 10;
	w.bo.hold_ms = 5000;
	w.bo.inflight = 1;
	w.bo.group_commit = true; /* docs/design.md §6: the rig's stall was the tests' probe, not group commit */
	cf_slog_init("cfnode");
	cf_malloc_keep(CF_NODE_HEAP_WARM); /* a recovery meets no fresh pages (cf_proc.h) */
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
		case O_SWITCHWAIT:
			if (parse_u64(optarg, &switch_wait) || switch_wait > 600000)
				bad = "--switch-wait must be 0..600000 ms";
			break;
		case O_BALLAST:
			if (parse_u64(optarg, &ballast_mib) || ballast_mib > 65536)
				bad = "--ballast must be 0..65536 MiB";
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
		case O_RATE:
			if (parse_u64(optarg, &v) || v == 0 || v > 1000000)
				bad = "--rate must be 1..1000000 transactions a second";
			w.bo.rate = (uint32_t)v;
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
		case O_RJOURNAL: o.recovery_journal = optarg; break;
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
		case O_LOGLEVEL:
			if (cf_slog_level_parse(optarg, &cf_slog_level))
				bad = "--log-level must be err, warn, info or debug";
			break;
		case O_LOGPREFIX: cf_slog_force_prefix(); break;
		case 'q': cf_slog_level = CF_SLOG_WARN; break;
		case 'v': cf_slog_level = CF_SLOG_DEBUG; break;
		case 'h': usage(stdout); return EX_OK_;
		case O_VERSION: return cf_cli_version("cfnode") ? EX_OTHER : EX_OK_;
		default: return cf_cli_bad_option("cfnode", c, argv, EX_USAGE_);
		}
		if (bad) {
			cf_slog_usage("%s (got '%s')", bad, optarg);
			return EX_USAGE_;
		}
	}
	if (optind < argc) {
		cf_slog_usage("unexpected argument '%s'", argv[optind]);
		return EX_USAGE_;
	}
	if (!o.cf_addr || !o.system || !o.instance || !o.data_dir || !key_file) {
		cf_slog_usage("--cf, --system, --instance, --data and --cluster-key are required (see --help)");
		return EX_USAGE_;
	}
	if (cf_name_check(o.system)) {
		cf_slog_usage("bad system name '%s': 1-15 characters of [A-Za-z0-9_.-]", o.system);
		return EX_USAGE_;
	}
	if (cf_name_check(o.instance)) {
		cf_slog_usage("bad instance name '%s': 1-15 characters of [A-Za-z0-9_.-]", o.instance);
		return EX_USAGE_;
	}
	if (cf_fence_parse(&o.fence, fence_spec)) {
		cf_slog_usage("bad --fence-agent '%s': auto, local, none or a path", fence_spec);
		return EX_USAGE_;
	}
	for (int i = 0; i < nfence_args; i++) {
		if (cf_fence_add_arg(&o.fence, fence_args[i])) {
			cf_slog_usage("bad --fence-arg '%s': expected KEY=VALUE, no '=' or newline in the value",
				fence_args[i]);
			return EX_USAGE_;
		}
	}
	if ((fence_map || unfence) && o.fence.kind != CF_FENCE_EXTERNAL) {
		cf_slog_usage("--fence-map and --unfence need an external --fence-agent PATH");
		return EX_USAGE_;
	}
	if (fence_map) {
		char why[256];
		if (cf_fence_map_load(&o.fence, fence_map, why, sizeof(why))) {
			cf_slog_usage("bad --fence-map: %s", why);
			return EX_USAGE_;
		}
	}
	snprintf(ident, sizeof(ident), "cfnode[%s]", o.system);
	cf_slog_set_ident(ident);
	o.logf = logf_stderr;
	if (cf_auth_init()) {
		say(CF_SLOG_ERR, "libsodium failed to start");
		return EX_OTHER;
	}
	r = cf_key_load(key_file, o.key);
	if (r) {
		char why[512];
		say(CF_SLOG_ERR, "%s", cf_key_explain(key_file, r, why, sizeof(why)));
		return CF_NODE_EX_KEY; /* a key problem, as in cfserver and cfctl */
	}
	/*
	 * Ballast: memory in small pages, written once, kept till the end. A
	 * killed process frees it before its sockets close (cf_sentinel.h).
	 * Not inherited by a fork (cfnode makes none; its sentinel and fence
	 * agents are spawned): such a child would hold the pages and the killed
	 * process would not free them itself.
	 */
	if (ballast_mib) {
		size_t bytes = (size_t)ballast_mib << 20;
		void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED) {
			say(CF_SLOG_ERR, "--ballast %" PRIu64 " MiB: %s", ballast_mib, strerror(errno));
			return EX_OTHER;
		}
		(void)madvise(m, bytes, MADV_NOHUGEPAGE);
		(void)madvise(m, bytes, MADV_DONTFORK);
		memset(m, 0x5a, bytes);
	}
	/* The data directory must be usable before we take an instance. */
	{
		struct cf_data d;
		struct cf_data_file *f;
		r = cf_data_open(&d, o.data_dir);
		if (!r && w.kind != WL_NONE)
			r = cf_data_file(&d, CF_BANK_FILE, &f);
		if (r) {
			say(CF_SLOG_ERR, "data directory %s: %s", o.data_dir,
				r == -EBADMSG || (r == -EINVAL && d.io == CF_DATA_IO_DIRECT) ? cf_data_corrupt_msg(&d)
											    : strerror(-r));
			cf_data_close(&d);
			return EX_OTHER;
		}
		if (w.kind != WL_NONE && w.bo.accounts > f->rec_count) {
			cf_slog_usage("--accounts %" PRIu64 " but %s/f0.cfd has %" PRIu64 " records",
				w.bo.accounts, o.data_dir, f->rec_count);
			cf_data_close(&d);
			return EX_USAGE_;
		}
		if (w.kind != WL_NONE && w.bo.record >= f->rec_count) {
			cf_slog_usage("--record %" PRIu64 " but the file has %" PRIu64 " records", w.bo.record,
				f->rec_count);
			cf_data_close(&d);
			return EX_USAGE_;
		}
		cf_data_close(&d);
	}

	{
		struct cf_node_opts no = {
			.agent = o,
			.key_file = key_file,
			.watchdog = wd_path,
			.wd_timeout_ms = (uint32_t)wd_timeout_ms,
			.unfence = unfence,
			.marker_wait_ms = marker_wait,
			.workload = w.kind != WL_NONE,
			.lock_timeout_ms = (int)lock_timeout,
			/* group commit (cf_txn.h) where the workload commits in groups: the bank */
			.defer_writes = w.bo.group_commit && w.kind == WL_BANK,
			.switch_wait_ms = switch_wait,
		};
		cf_node_init(&n, &no);
	}
	g_agent = &n.a;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	rc = cf_node_start(&n);
	if (rc || !cf_node_ready(&n))
		return cf_node_leave(&n, rc);
	if (w.kind != WL_NONE) {
		w.a = &n.a;
		w.ic = n.home;
		w.ws = &n.ws;
		w.bo.stop = &w.stop;
		cf_marker_image_str(n.a.image_id, w.image, sizeof(w.image));
		w.bo.image = w.image;
		if (w.kind == WL_BANK) {
			/* the bank parks while the system switches to the other CF of a pair */
			w.bo.cf_lost = cf_node_park;
			w.bo.cf_lost_arg = &n;
			n.gate.workload = true;
		}
		r = -pthread_create(&thr, NULL, wl_main, &w);
		if (r) {
			say(CF_AGENT_ERR, "workload thread: %s", strerror(-r));
			return cf_node_leave(&n, EX_OTHER);
		}
		thr_started = true;
		say(CF_AGENT_INFO, "workload %s started", wl_names[w.kind]);
	}
	/* joined, home instance ACTIVE here, recovery module armed: a member */
	cf_notify_ready();
	/* a lost CF of a duplexed pair: switch to the other and run again (cf_node_switch.c) */
	while ((r = cf_agent_run(&n.a)) && cf_node_may_switch(&n, r) && cf_node_switch(&n, r) == 0)
		;
	if (r)
		r = atomic_load(&n.a.over) ? atomic_load(&n.a.over) : r;
	cf_node_unpark(&n, r);
	if (r) {
		/* The incarnation is over: no clean leave, nothing carried over. */
		bool joined;
		rc = cf_node_over(&n, r);
		fflush(stdout);
		joined = end_threads(&n.a, &w, thr, thr_started);
		cf_node_end_over(&n, thr_started, joined);
		return rc;
	}
	if (thr_started) {
		atomic_store(&w.stop, 1);
		pthread_join(thr, NULL);
		if (w.kind == WL_BANK)
			cf_bank_print(stdout, o.system, &w.res, w.json);
		fflush(stdout);
		if (w.r) {
			if (n.ws.dead || cf_agent_over(&n.a) || w.r == -ENOLINK) {
				rc = cf_node_over(&n, n.ws.dead ? n.ws.dead : w.r);
				cf_node_end_over(&n, true, true);
				return rc;
			}
			say(CF_AGENT_ERR, "workload %s: %s", wl_names[w.kind],
			    w.r == -EBADMSG && cf_data_corrupt_msg(&n.home->data)[0] ? cf_data_corrupt_msg(&n.home->data)
										    : strerror(-w.r));
			rc = EX_OTHER;
		}
	}
	return cf_node_leave(&n, rc);
}
