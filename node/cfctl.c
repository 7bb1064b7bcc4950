/* SPDX-License-Identifier: MIT */
/*
 * cfctl - the operator console.
 *
 *   cfctl status  --cf ADDR --cluster-key FILE [--json] [--watch [SECONDS]]
 *   cfctl locks   [RECORD] --cf ADDR --cluster-key FILE [--json]
 *   cfctl health  --cf ADDR --cluster-key FILE
 *   cfctl recover INSTANCE [--on SYSTEM] --cf ADDR --cluster-key FILE
 *   cfctl policy auto|operator --cf ADDR --cluster-key FILE
 *   cfctl verify  --data DIR [--total T] [--json]
 *   cfctl data-release INSTANCE --data DIR --force
 *   cfctl mkdata  --data DIR --accounts N --balance B [--force]
 *   cfctl metrics --cf ADDR (--cluster-key FILE | --key MONITOR_KEY)
 *   cfctl keygen  [--out FILE]
 *
 * Exit codes (cf_cli.h, the same in every program): 0 ok, 1 failed (verify
 * found a problem, request refused; health: degraded), 2 usage, 69 CF
 * unavailable, 77 key problem (the key file unusable, or refused by the CF).
 * Diagnostics on stderr are lines of the one log (cf_slog.h); results go to
 * stdout.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <signal.h>
#include <sodium.h>

#include "cf_auth.h"
#include "cf_bank.h"
#include "cf_cli.h"
#include "cf_fence.h"
#include "cf_lock.h"
#include "cf_marker.h"
#include "cf_recovery.h"
#include "cf_session.h"
#include "cf_slog.h"
#include "cf_util.h"
#include "cf_words.h"

#define EX_FAIL CF_EX_FAIL
#define EX_USAGE_ CF_EX_USAGE
#define EX_UNAVAILABLE_ CF_EX_UNAVAILABLE
#define EX_KEY CF_EX_KEY
#define READ_CHUNK 32768u
#define MAX_NAMES_SHOWN 8u  /* text: lock names per instance */
#define MAX_NAMES_JSON 64u  /* JSON: lock_names per instance */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: cfctl COMMAND [options]\n"
		"\n"
		"  status  --cf HOST:PORT --cluster-key FILE [--json] [--watch [SECONDS]] [--transport tcp|verbs]\n"
		"          systems, instances, locks held, log use, recovery in progress. --watch:\n"
		"          again every SECONDS (default 1) until interrupted (exit 0); exits 69/77\n"
		"          as health does when the CF goes away or refuses the key\n"
		"  locks   [RECORD] --cf HOST:PORT --cluster-key FILE [--json]\n"
		"          every lock word held: its holders, and the instances waiting for it\n"
		"          (record-list entries the word does not cover); RECORD (f0.r17): its\n"
		"          lock class only\n"
		"  health  --cf HOST:PORT --cluster-key FILE [--transport tcp|verbs]\n"
		"          exit 0 when every system is ACTIVE and no instance is failed or in\n"
		"          recovery; 1 when degraded, one line per problem; 69/77 when the state\n"
		"          cannot be read (CF unreachable, key refused)\n"
		"  recover INSTANCE [--on SYSTEM] [--retry] --cf HOST:PORT --cluster-key FILE\n"
		"          start peer recovery of a failed instance (policy operator). --retry: if a\n"
		"          counterpart waits on its disk fence, it tries its fence agent again now;\n"
		"          if the instance is failed and unowned (the counterpart gave up), any live\n"
		"          system (or --on SYSTEM) tries it again, even one that tried this incident\n"
		"  fence-confirm SYSTEM --cf HOST:PORT --cluster-key FILE\n"
		"          you vouch that SYSTEM's failed incarnation is down (powered off, or can no\n"
		"          longer write the data directory): every recovery waiting on its fence\n"
		"          proceeds with the backout. Refused if no recovery waits on it. A wrong\n"
		"          confirmation can corrupt data, as with stonith_admin --confirm\n"
		"  policy  auto|operator --cf HOST:PORT --cluster-key FILE\n"
		"          switch the cluster's recovery policy\n"
		"  verify  --data DIR [--total T] [--json]\n"
		"          every record's crc valid and the bank total equal to T (default: the\n"
		"          total recorded at mkdata), and the instances' data-directory markers;\n"
		"          exit 0 when the data holds, 1 when not\n"
		"  data-release INSTANCE --data DIR --force\n"
		"          mark INSTANCE's data-directory marker clean, after a volatile CF was lost\n"
		"          with its open transactions (cfnode exit 78), once the data is restored or\n"
		"          accepted as it is\n"
		"  mkdata  --data DIR --accounts N --balance B [--force]\n"
		"          create the bank's record file DIR/f0.cfd (N accounts of balance B); an\n"
		"          existing one is refused (exit 1) unless --force, which replaces it\n"
		"  metrics --cf HOST:PORT (--cluster-key FILE | --key MONITOR_KEY)\n"
		"          the CF's metrics in the OpenMetrics text format; --key: authenticate\n"
		"          with the CF's monitor key (cfserver --monitor-key), which may read the\n"
		"          metrics and nothing else\n"
		"  keygen  [--out FILE]\n"
		"          a new cluster key (64 hex digits): into FILE, created with mode 0600\n"
		"          (never over an existing file), or on stdout. Key files must be 0600:\n"
		"          every program refuses one that group or others may access\n"
		"\n"
		"  --log-level LEVEL  err|warn|info|debug (default info); --log-prefix  a syslog\n"
		"          priority <N> before every line on stderr (automatic when stderr is the\n"
		"          journal: JOURNAL_STREAM)\n"
		"  --cf A,B  a duplexed CF: both addresses, each tried in turn until one answers\n"
		"  -h, --help  this help;  --version  print the version\n"
		"\n"
		"Exit codes: 0 ok, 1 failed or refused (health: degraded), 2 usage, 69 CF unavailable,\n"
		"77 key problem (key file unusable, or refused by the CF).\n");
}

struct opts {
	const char *cf, *key, *mkey, *transport, *data, *on, *out;
	bool json, have_total, retry, watch;
	double watch_s;
	int64_t total;
	uint64_t accounts;
	int64_t balance;
	bool have_accounts, have_balance;
	bool force;
};

static int parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || !*s || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

/*
 * A console session (the cluster key), or with --key a monitor session (the
 * monitor key: cfctl metrics only).
 */
static int open_session(const struct opts *o, struct cf_session *s, enum cf_role role)
{
	const char *file = role == CF_ROLE_MONITOR ? o->mkey : o->key;
	const char *what = role == CF_ROLE_MONITOR ? "monitor key" : "cluster key";
	uint8_t key[CF_KEY_LEN];
	int r;

	if (!o->cf || !file) {
		cf_slog_usage("--cf and --cluster-key are required");
		return EX_USAGE_;
	}
	if (cf_auth_init()) {
		cf_slog_err("libsodium failed to start");
		return EX_FAIL;
	}
	r = cf_key_load(file, key);
	if (r) {
		char why[512];
		cf_slog_err("%s", cf_key_explain_as(what, file, r, why, sizeof(why)));
		return EX_KEY; /* a key problem, as in cfserver and cfnode */
	}
	r = cf_session_open(s, o->transport, o->cf, key, role, 0); /* 0: CF_CONNECT_TIMEOUT_MS or 3 s */
	sodium_memzero(key, sizeof(key));
	if (!r)
		return 0;
	switch (r) {
	case -EPERM:
	case -EACCES:
		cf_slog_err("CF %s refused the %s%s%s", o->cf, what,
			cf_session_error_msg(s) ? ": " : "", cf_session_error_msg(s) ? cf_session_error_msg(s) : "");
		return EX_KEY;
	case -ECONNREFUSED:
	case -ETIMEDOUT:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
	case -ENOENT:
		cf_slog_err("CF %s unavailable: %s", o->cf, strerror(-r));
		return EX_UNAVAILABLE_;
	default:
		cf_slog_err("connect to %s: %s%s%s", o->cf, strerror(-r),
			cf_session_error_msg(s) ? ": the CF says: " : "", cf_session_error_msg(s) ? cf_session_error_msg(s) : "");
		return EX_FAIL;
	}
}

static int parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || !*s || *end || !(v >= 0.1 && v <= 86400))
		return -EINVAL;
	*out = v;
	return 0;
}

static int open_console(const struct opts *o, struct cf_session *s)
{
	return open_session(o, s, CF_ROLE_CONSOLE);
}

static int read_range(struct cf_session *s, uint64_t off, void *buf, uint64_t len)
{
	for (uint64_t p = 0; p < len; p += READ_CHUNK) {
		uint32_t n = (uint32_t)(len - p < READ_CHUNK ? len - p : READ_CHUNK);
		int r = cf_session_read(s, off + p, (uint8_t *)buf + p, n);
		if (r)
			return r;
	}
	return 0;
}

static void name_of(const char *field, char out[CF_NAME_MAX])
{
	memcpy(out, field, CF_NAME_MAX);
	out[CF_NAME_MAX - 1] = 0;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static const char *cause_str(uint64_t c)
{
	switch (c) {
	case CF_FAIL_NONE: return "-";
	case CF_FAIL_CONN_LOST: return "connection lost";
	case CF_FAIL_HB_TIMEOUT: return "heartbeat timeout";
	case CF_FAIL_READMIT: return "re-admitted";
	case CF_FAIL_PROTOCOL: return "protocol error";
	}
	return "?";
}

/*
 * The lock state of one instance, from its record list and the lock words.
 * A node writes its record-list entry before its lock CAS (so that recovery
 * finds every class it may hold), so an entry alone does not mean held: the
 * instance may be waiting for the class, or between its release CAS and
 * clearing the entry. Held means the class's lock word names the instance in
 * a mode that covers the entry's (X covers S). The list and the words are
 * read one after the other, not atomically: a snapshot of a moving system.
 */
struct inst_locks {
	uint32_t entries; /* record-list entries in use */
	uint32_t held;    /* of those, held per the lock word */
	uint64_t *word;   /* [record_entries]: the class's lock word, for used entries */
};

static bool rec_held(const struct cf_rec_entry *e, uint64_t w, uint32_t inst)
{
	if (!cf_lock_valid(w) || !cf_lock_held_by(w, inst))
		return false;
	return e->used == 1u + CF_LOCK_S || cf_lock_is_x(w);
}

static int read_inst_locks(struct cf_session *s, const struct cf_image_map *m, const struct cf_rec_entry *recs,
			   uint32_t inst, struct inst_locks *l)
{
	l->entries = l->held = 0;
	for (uint32_t k = 0; k < m->geo.record_entries; k++) {
		uint64_t w = 0;
		l->word[k] = 0;
		if (!recs[k].used)
			continue;
		l->entries++;
		if (recs[k].klass < m->geo.lock_entries) {
			int r = read_range(s, cf_lock_off(m, (uint32_t)recs[k].klass), &w, sizeof(w));
			if (r)
				return r;
		}
		l->word[k] = w;
		l->held += rec_held(&recs[k], w, inst);
	}
	return 0;
}

/*
 * "X", "S, 3 holders" (an S word is a bitmap of its holders), or when not
 * held "X, waiting" (live) / "X, not held" (an instance that is not running:
 * an entry a crash left between its release CAS and clearing it).
 */
static void rec_mode_str(const struct cf_rec_entry *e, uint64_t w, uint32_t inst, bool live, char *out, size_t cap)
{
	const char *mode = e->used == 1u + CF_LOCK_X ? "X" : "S";

	if (!rec_held(e, w, inst))
		snprintf(out, cap, "%s, %s", mode, live ? "waiting" : "not held");
	else if (cf_lock_is_s(w))
		snprintf(out, cap, "S, %d holder%s", __builtin_popcountll(cf_lock_s_holders(w)),
			 __builtin_popcountll(cf_lock_s_holders(w)) == 1 ? "" : "s");
	else
		snprintf(out, cap, "%s", mode);
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull) };
	nanosleep(&ts, NULL);
}

/* Why a recovery waits on its disk fence, from the counterpart's codes and the failed incarnation. */
static void fence_reason(const struct cf_rinfo_slot *ri, const char *fs, const char *fh, char *out, size_t cap)
{
	const char *err = ri->wait_err ? strerror(-ri->wait_err) : "not confirmed";

	if (ri->wait == CF_FWAIT_WATCHDOG)
		snprintf(out, cap, "waiting out the watchdog of %s on host %s: %u ms left (fence agent: %s)", fs, fh,
			 ri->wait_left_ms, err);
	else if (ri->wait == CF_FWAIT_OPERATOR)
		snprintf(out, cap,
			 "no fence agent reaches %s on host %s (%s) and it announced no watchdog; %u attempts; "
			 "if it is down: cfctl fence-confirm %s",
			 fs, fh, err, ri->wait_tries, fs);
	else
		snprintf(out, cap, "fence agent failed for %s on host %s (%s); %u attempts, retried every %d ms; "
			 "if it is down: cfctl fence-confirm %s", fs, fh, err, ri->wait_tries, 1000, fs);
}

static int cmd_status(const struct opts *o)
{
	struct cf_session s;
	const struct cf_image_map *m;
	struct cf_header hdr;
	struct cf_sys_slot *sys = NULL;
	struct cf_hb_slot *hb1 = NULL, *hb2 = NULL;
	struct cf_inst_slot *inst = NULL;
	struct cf_rinfo_slot *ri = NULL;
	struct cf_rec_entry *recs = NULL;
	struct inst_locks lk = { 0 };
	uint64_t gap_ns, now = cf_real_ns();
	struct cf_restart_info rinfo;
	struct cf_duplex_info dinfo;
	struct cf_empty empty = {0};
	int rc, r;

	memset(&s, 0, sizeof(s));
	rc = open_console(o, &s);
	if (rc)
		return rc;
	m = &s.map;
	sys = calloc(m->geo.max_systems, sizeof(*sys));
	hb1 = calloc(m->geo.max_systems, sizeof(*hb1));
	hb2 = calloc(m->geo.max_systems, sizeof(*hb2));
	inst = calloc(m->geo.max_instances, sizeof(*inst));
	ri = calloc(m->geo.max_instances, sizeof(*ri));
	recs = malloc(m->records_size);
	lk.word = calloc(m->geo.record_entries, sizeof(*lk.word));
	if (!sys || !hb1 || !hb2 || !inst || !ri || !recs || !lk.word) {
		cf_slog_err("out of memory");
		rc = EX_FAIL;
		goto out;
	}
	/* Heartbeat age: two reads of the counters, 2h apart. */
	gap_ns = 2 * (s.welcome.hb_interval_ns ? s.welcome.hb_interval_ns : 5000000ull);
	r = read_range(&s, 0, &hdr, sizeof(hdr));
	if (!r)
		r = read_range(&s, m->off_heartbeats, hb1, m->geo.max_systems * sizeof(*hb1));
	if (!r) {
		sleep_ns(gap_ns);
		r = read_range(&s, m->off_heartbeats, hb2, m->geo.max_systems * sizeof(*hb2));
	}
	if (!r)
		r = read_range(&s, m->off_systems, sys, m->geo.max_systems * sizeof(*sys));
	if (!r)
		r = read_range(&s, m->off_instances, inst, m->geo.max_instances * sizeof(*inst));
	if (!r)
		r = read_range(&s, m->off_rinfo, ri, m->geo.max_instances * sizeof(*ri));
	if (r) {
		cf_slog_err("reading the CF image: %s", strerror(-r));
		rc = EX_FAIL;
		goto out;
	}
	/* the restart barrier lives in cfserver's memory, not in the image: ask */
	memset(&rinfo, 0, sizeof(rinfo));
	r = cf_session_rpc(&s, CF_CTRL_RESTART_INFO, &empty, sizeof(empty), CF_CTRL_RESTART_INFO_R, &rinfo,
			   sizeof(rinfo), 5000);
	if (r) {
		cf_slog_err("restart state: %s", strerror(-r));
		rc = EX_FAIL;
		goto out;
	}
	/* so does the duplexing (docs/design.md, "A duplexed CF") */
	memset(&dinfo, 0, sizeof(dinfo));
	r = cf_session_rpc(&s, CF_CTRL_DUPLEX_INFO, &empty, sizeof(empty), CF_CTRL_DUPLEX_INFO_R, &dinfo,
			   sizeof(dinfo), 5000);
	if (r) {
		/* an older cfserver closes on a request it does not know: say so, show the rest */
		memset(&dinfo, 0, sizeof(dinfo));
		dinfo.role = UINT32_MAX;
	}
	dinfo.secondary[sizeof(dinfo.secondary) - 1] = 0;
	if (o->json) {
		printf("{\"generation\":%" PRIu64 ",\"policy\":\"%s\",\"hb_interval_ms\":%.3f,\"hb_timeout_ms\":%.3f,",
		       hdr.generation, hdr.policy == CF_POLICY_OPERATOR ? "operator" : "auto",
		       (double)s.welcome.hb_interval_ns / 1e6, (double)s.welcome.hb_timeout_ns / 1e6);
		printf("\"restart\":{\"state\":\"%s\",\"left\":%u},", cf_restart_state_str(rinfo.state), rinfo.left);
		printf("\"cf\":{\"address\":\"%s\",\"duplexed\":%s,\"link\":\"%s\",\"secondary\":\"%s\","
		       "\"synced_bytes\":%" PRIu64 ",\"image_bytes\":%" PRIu64 "},",
		       s.addr, dinfo.role == CF_DUPLEX_PRIMARY ? "true" : "false",
		       dinfo.role == CF_DUPLEX_PRIMARY ? cf_duplex_link_str(dinfo.link)
						       : dinfo.role == UINT32_MAX ? "unknown" : "single", dinfo.secondary,
		       dinfo.synced_bytes, dinfo.image_bytes);
		printf("\"systems\":[");
	} else {
		printf("CF generation %" PRIu64 ", policy %s, h %.1f ms, T %.1f ms\n", hdr.generation,
		       hdr.policy == CF_POLICY_OPERATOR ? "operator" : "auto", (double)s.welcome.hb_interval_ns / 1e6,
		       (double)s.welcome.hb_timeout_ns / 1e6);
		if (dinfo.role == UINT32_MAX)
			printf("CF %s: duplexing unknown (this cfserver does not answer DUPLEX_INFO)\n\n", s.addr);
		else if (dinfo.role != CF_DUPLEX_PRIMARY)
			printf("CF %s: single (not duplexed)\n\n", s.addr);
		else if (dinfo.link == CF_DUPLEX_ALONE)
			printf("CF %s: duplexed primary running ALONE (no secondary): its death ends every incarnation\n\n",
			       s.addr);
		else if (dinfo.link == CF_DUPLEX_SYNCING)
			printf("CF %s: duplexed primary; secondary %s copying the image (%.0f%%)\n\n", s.addr,
			       dinfo.secondary,
			       dinfo.image_bytes ? 100.0 * (double)dinfo.synced_bytes / (double)dinfo.image_bytes : 0.0);
		else
			printf("CF %s: duplexed primary; secondary %s %s\n\n", s.addr, dinfo.secondary,
			       dinfo.link == CF_DUPLEX_IN_SYNC ? "in sync: takes over if this CF dies"
							       : "lost: fencing it, durable acknowledgements wait");
		if (rinfo.state == CF_RESTART_RECOVERY) {
			printf("restart recovery: %u instances left:", rinfo.left);
			for (uint32_t i = 0; i < m->geo.max_instances && i < 64; i++)
				if (rinfo.pending & (1ull << i))
					printf(" %.*s", (int)CF_NAME_MAX, inst[i].name[0] ? inst[i].name : "?");
			printf(" (attaches for new work wait)\n\n");
		}
		printf("%-3s %-15s %-7s %6s %-10s %12s %-16s %8s  %s\n", "#", "SYSTEM", "STATE", "EPOCH", "HEARTBEAT",
		       "HB", "HOST", "PID", "FAILURE");
	}
	bool first = true;
	for (uint32_t i = 0; i < m->geo.max_systems; i++) {
		char name[CF_NAME_MAX], host[CF_HOST_MAX];
		enum cf_sys_state st = cf_sysword_state(sys[i].state);
		const char *beat;
		if (st == CF_SYS_FREE && !sys[i].name[0])
			continue;
		name_of(sys[i].name, name);
		memcpy(host, sys[i].host, sizeof(host));
		host[sizeof(host) - 1] = 0;
		beat = st != CF_SYS_ACTIVE ? "-" : hb2[i].hb != hb1[i].hb ? "beating" : "SILENT";
		if (o->json) {
			printf("%s{\"index\":%u,\"name\":", first ? "" : ",", i);
			json_str(stdout, name);
			printf(",\"state\":\"%s\",\"epoch\":%u,\"heartbeat\":\"%s\",\"hb\":%" PRIu64
			       ",\"hb_per_s\":%.0f,\"host\":",
			       cf_sys_state_str(st), cf_sysword_epoch(sys[i].state), beat, hb2[i].hb,
			       (double)(hb2[i].hb - hb1[i].hb) * 1e9 / (double)gap_ns);
			json_str(stdout, host);
			printf(",\"watchdog_ms\":%u", sys[i].wd_timeout_ms);
			printf(",\"pid\":%" PRIu64 ",\"fail_cause\":\"%s\",\"failed_ago_ms\":%.1f", sys[i].pid,
			       cause_str(sys[i].fail_cause),
			       sys[i].fail_ns && now > sys[i].fail_ns ? (double)(now - sys[i].fail_ns) / 1e6 : 0.0);
			/* the status riding on the heartbeat is current only while the system is ACTIVE */
			if (st == CF_SYS_ACTIVE)
				printf(",\"commits\":%" PRIu64 ",\"aborts\":%" PRIu64 ",\"inflight\":%" PRIu64
				       ",\"log_used\":%" PRIu64 ",\"locks_held\":%" PRIu64,
				       hb2[i].commits, hb2[i].aborts, hb2[i].inflight, hb2[i].log_used, hb2[i].locks_held);
			printf("}");
		} else {
			printf("%-3u %-15s %-7s %6u %-10s %12" PRIu64 " %-16.16s %8" PRIu64 "  %s\n", i, name,
			       cf_sys_state_str(st), cf_sysword_epoch(sys[i].state), beat, hb2[i].hb, host, sys[i].pid,
			       st == CF_SYS_FAILED ? cause_str(sys[i].fail_cause) : "");
		}
		first = false;
	}
	if (o->json)
		printf("],\"instances\":[");
	else
		printf("\n%-3s %-15s %-15s %-15s %6s %8s %-15s %10s %8s %7s %6s  %s\n", "#", "INSTANCE", "STATE", "OWNER",
		       "EPOCH", "INCIDENT", "HOME", "LOG BYTES", "COMMITS", "ABORTS", "LOCKS", "RECOVERY");
	first = true;
	for (uint32_t i = 0; i < m->geo.max_instances; i++) {
		char name[CF_NAME_MAX], owner[CF_NAME_MAX] = "-", home[CF_NAME_MAX] = "-", cp[CF_NAME_MAX] = "-";
		uint64_t w = inst[i].reg;
		enum cf_reg_state st = cf_reg_state(w);
		const struct cf_hb_slot *h = NULL;
		char rec[96] = "";
		if (st == CF_REG_FREE && !inst[i].name[0])
			continue;
		name_of(inst[i].name, name);
		if (st == CF_REG_ACTIVE && cf_reg_owner(w) < m->geo.max_systems)
			name_of(sys[cf_reg_owner(w)].name, owner);
		if (inst[i].home_sys < m->geo.max_systems) {
			name_of(sys[inst[i].home_sys].name, home);
			if (hb2[inst[i].home_sys].home_inst == (uint64_t)i + 1)
				h = &hb2[inst[i].home_sys];
		}
		/* the status riding on a heartbeat is current only while its owner is the home system */
		if (h && !(st == CF_REG_ACTIVE && cf_reg_owner(w) == inst[i].home_sys))
			h = NULL;
		r = read_range(&s, cf_rec_off(m, i), recs, m->records_size);
		if (r) {
			cf_slog_err("reading the record list of %s: %s", name, strerror(-r));
			rc = EX_FAIL;
			goto out;
		}
		r = read_inst_locks(&s, m, recs, i, &lk);
		if (r) {
			cf_slog_err("reading the lock words of %s: %s", name, strerror(-r));
			rc = EX_FAIL;
			goto out;
		}
		if (ri[i].counterpart && ri[i].counterpart <= m->geo.max_systems)
			name_of(sys[ri[i].counterpart - 1].name, cp);
		char reason[256] = "";
		bool waiting = (ri[i].phase == CF_PHASE_DISK_FENCE || ri[i].phase == CF_PHASE_WD_WAIT) &&
			       (ri[i].wait == CF_FWAIT_AGENT || ri[i].wait == CF_FWAIT_OPERATOR ||
				ri[i].wait == CF_FWAIT_WATCHDOG) && st == CF_REG_ACTIVE;
		char fs[CF_NAME_MAX] = "?", fh[CF_HOST_MAX] = "";
		if (waiting) {
			if (inst[i].fail_sys < m->geo.max_systems)
				name_of(sys[inst[i].fail_sys].name, fs);
			memcpy(fh, inst[i].fail_host, sizeof(inst[i].fail_host));
			fh[sizeof(inst[i].fail_host) - 1] = 0;
			fence_reason(&ri[i], fs, fh, reason, sizeof(reason));
		}
		if (ri[i].phase != CF_PHASE_NONE) {
			uint64_t end = ri[i].end_ns ? ri[i].end_ns : now;
			snprintf(rec, sizeof(rec), "%s by %s, incident %" PRIu64 ", %.1f ms",
				 cf_phase_str((enum cf_phase)ri[i].phase), cp, ri[i].incident,
				 end > ri[i].start_ns ? (double)(end - ri[i].start_ns) / 1e6 : 0.0);
		}
		if (o->json) {
			uint32_t shown = 0;
			printf("%s{\"index\":%u,\"name\":", first ? "" : ",", i);
			json_str(stdout, name);
			printf(",\"state\":\"%s\",\"owner\":", cf_reg_state_str(st));
			json_str(stdout, owner);
			printf(",\"owner_epoch\":%u,\"incident\":%u,\"home\":", cf_reg_epoch(w), cf_reg_incident(w));
			json_str(stdout, home);
			/* "locks" and "locks_held": held per the lock words; the waiting are listed, not counted */
			printf(",\"locks\":%u,\"locks_held\":%u,\"locks_waiting\":%u,\"lock_names\":[", lk.held, lk.held,
			       lk.entries - lk.held);
			for (uint32_t k = 0; k < m->geo.record_entries && shown < MAX_NAMES_JSON; k++) {
				char n[CF_RES_NAME_MAX + 1];
				bool held;
				if (!recs[k].used)
					continue;
				held = rec_held(&recs[k], lk.word[k], i);
				memcpy(n, recs[k].name, CF_RES_NAME_MAX);
				n[CF_RES_NAME_MAX] = 0;
				printf("%s{\"name\":", shown ? "," : "");
				json_str(stdout, n);
				printf(",\"mode\":\"%s\",\"class\":%" PRIu64 ",\"held\":%s",
				       recs[k].used == 1u + CF_LOCK_X ? "X" : "S", recs[k].klass, held ? "true" : "false");
				if (held && cf_lock_is_s(lk.word[k]))
					printf(",\"s_holders\":%d", __builtin_popcountll(cf_lock_s_holders(lk.word[k])));
				printf("}");
				shown++;
			}
			printf("],\"lock_names_total\":%u,\"lock_names_truncated\":%s", lk.entries,
			       lk.entries > shown ? "true" : "false");
			if (h)
				printf(",\"log_used\":%" PRIu64 ",\"commits\":%" PRIu64 ",\"aborts\":%" PRIu64
				       ",\"inflight\":%" PRIu64,
				       h->log_used, h->commits, h->aborts, h->inflight);
			printf(",\"recovery\":{\"phase\":\"%s\",\"counterpart\":",
			       cf_phase_str((enum cf_phase)(ri[i].phase < CF_PHASE_COUNT ? ri[i].phase : 0)));
			json_str(stdout, cp);
			printf(",\"incident\":%" PRIu64 ",\"start_ns\":%" PRIu64 ",\"end_ns\":%" PRIu64
			       ",\"txns_backed_out\":%" PRIu64 ",\"locks_released\":%" PRIu64 ",\"phase_us\":{",
			       ri[i].incident, ri[i].start_ns, ri[i].end_ns, ri[i].txns_backed_out, ri[i].locks_released);
			for (int p = CF_PHASE_DETECT; p < CF_PHASE_COUNT; p++)
				printf("%s\"%s\":%u", p == CF_PHASE_DETECT ? "" : ",", cf_phase_str((enum cf_phase)p),
				       ri[i].phase_us[p]);
			printf("},\"fence_wait\":\"%s\"", cf_fence_wait_str((enum cf_fence_wait)ri[i].wait));
			if (waiting) {
				printf(",\"waiting\":true,\"fence_of\":");
				json_str(stdout, fs);
				printf(",\"fence_host\":");
				json_str(stdout, fh);
				printf(",\"reason\":");
				json_str(stdout, reason);
				printf(",\"wait_ms\":%.1f,\"age_ms\":%.1f,\"wait_err\":%d,\"wait_tries\":%u,"
				       "\"wait_left_ms\":%u",
				       ri[i].phase_us[ri[i].phase] / 1e3,
				       now > ri[i].start_ns ? (double)(now - ri[i].start_ns) / 1e6 : 0.0, ri[i].wait_err,
				       ri[i].wait_tries, ri[i].wait_left_ms);
			}
			printf("}}");
		} else {
			char lb[24] = "-", cm[24] = "-", ab[24] = "-";
			if (h) {
				snprintf(lb, sizeof(lb), "%" PRIu64, h->log_used);
				snprintf(cm, sizeof(cm), "%" PRIu64, h->commits);
				snprintf(ab, sizeof(ab), "%" PRIu64, h->aborts);
			}
			printf("%-3u %-15s %-15s %-15s %6u %8u %-15s %10s %8s %7s %6u  %s\n", i, name, cf_reg_state_str(st),
			       owner, cf_reg_epoch(w), cf_reg_incident(w), home, lb, cm, ab, lk.held, rec);
			if (waiting)
				printf("      WAITING %.1f s: %s\n", ri[i].phase_us[ri[i].phase] / 1e6, reason);
			if (lk.entries) {
				uint32_t shown = 0;
				printf("      locks:");
				for (uint32_t k = 0; k < m->geo.record_entries && shown < MAX_NAMES_SHOWN; k++) {
					char md[32];
					if (!recs[k].used)
						continue;
					rec_mode_str(&recs[k], lk.word[k], i, st == CF_REG_ACTIVE, md, sizeof(md));
					printf(" %.*s(%s)", (int)CF_RES_NAME_MAX, recs[k].name, md);
					shown++;
				}
				if (lk.entries > shown)
					printf(" ... and %u more", lk.entries - shown);
				if (lk.held < lk.entries)
					printf("  [%u held, %u %s]", lk.held, lk.entries - lk.held,
					       st == CF_REG_ACTIVE ? "waiting" : "not held");
				printf("\n");
			}
		}
		first = false;
	}
	if (o->json)
		printf("]}\n");
	rc = 0;
out:
	free(sys);
	free(hb1);
	free(hb2);
	free(inst);
	free(ri);
	free(recs);
	free(lk.word);
	cf_session_close(&s);
	return rc;
}

/*
 * cfctl status --watch [SECONDS]: a frame every SECONDS (default 1) until
 * SIGINT or SIGTERM (exit 0), like watch(1); on a terminal each frame
 * replaces the last. A frame that cannot be read (the CF went away, the key
 * is refused) ends it with health's code for "cannot tell" (69, 77), so a
 * script watching the exit status sees the same codes as from cfctl health.
 * With --json every frame is one JSON document on its own line.
 */
static volatile sig_atomic_t watch_stop;

static void on_watch_signal(int sig)
{
	(void)sig;
	watch_stop = 1;
}

static int cmd_status(const struct opts *o);

static int cmd_status_watch(const struct opts *o)
{
	struct sigaction sa;
	bool tty = isatty(STDOUT_FILENO);
	uint64_t period = (uint64_t)(o->watch_s * 1e9), next = cf_mono_ns();
	unsigned frame = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_watch_signal; /* no SA_RESTART: the sleep ends at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	while (!watch_stop) {
		char when[32] = "?";
		time_t t = time(NULL);
		struct tm tm;
		int rc;
		if (gmtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (tty && !o->json)
			printf("\033[H\033[2J");
		if (!o->json)
			printf("Every %.1f s: cfctl status --cf %s  %s  (frame %u)\n\n", o->watch_s, o->cf, when, ++frame);
		fflush(stdout);
		rc = cmd_status(o);
		fflush(stdout);
		if (watch_stop)
			break;
		if (rc) {
			cf_slog_err("status --watch: the CF's state cannot be read any more");
			return rc == EX_FAIL ? EX_UNAVAILABLE_ : rc; /* health's codes: 1 is "degraded", never "cannot tell" */
		}
		next += period;
		for (uint64_t now = cf_mono_ns(); !watch_stop && now < next; now = cf_mono_ns())
			sleep_ns(next - now);
		if (cf_mono_ns() > next + period)
			next = cf_mono_ns(); /* a slow frame: no burst to catch up */
	}
	return 0;
}

/*
 * cfctl locks [RECORD]: every non-zero lock word, its holders (named by the
 * word) and the record-list entries of its class, told apart as held or
 * waiting by rec_held() (status's rule: an entry is written before the CAS,
 * so an entry the word does not cover is a waiter, or, for an instance that
 * is not running, a leftover). RECORD (a resource name, f0.r17) shows its
 * class only, and of the entries only those of that name. A snapshot read
 * word by word of a moving system, as status is.
 */
struct lock_view {
	const struct cf_image_map *m;
	const struct cf_sys_slot *sys;
	const struct cf_inst_slot *inst;
	struct cf_rec_entry **recs;   /* [max_instances]: record lists (NULL: instance never opened) */
	const uint64_t *table;        /* the lock table */
};

static void inst_and_owner(const struct lock_view *v, uint32_t i, char in[CF_NAME_MAX], char on[CF_NAME_MAX])
{
	uint64_t w = i < v->m->geo.max_instances ? v->inst[i].reg : 0;

	snprintf(in, CF_NAME_MAX, "inst#%u", i);
	strcpy(on, "-");
	if (i >= v->m->geo.max_instances)
		return;
	if (v->inst[i].name[0])
		name_of(v->inst[i].name, in);
	if (cf_reg_state(w) == CF_REG_ACTIVE && cf_reg_owner(w) < v->m->geo.max_systems)
		name_of(v->sys[cf_reg_owner(w)].name, on);
}

/* One lock word: its holders, then the entries of its class that it does not cover. */
static void print_lock(const struct lock_view *v, uint32_t klass, const char *filter, bool json, bool *first)
{
	const struct cf_image_map *m = v->m;
	uint64_t w = v->table[klass], holders = 0;
	char in[CF_NAME_MAX], on[CF_NAME_MAX], md[32], n[CF_RES_NAME_MAX + 1];
	bool f;

	if (cf_lock_valid(w) && cf_lock_is_x(w))
		holders = 1ull << (cf_lock_x_inst(w) & 63);
	else if (cf_lock_valid(w) && cf_lock_is_s(w))
		holders = cf_lock_s_holders(w);
	if (json) {
		printf("%s{\"class\":%u,\"word\":\"%#" PRIx64 "\",\"mode\":\"%s\",\"holders\":[", *first ? "" : ",", klass, w,
		       !cf_lock_valid(w) ? "malformed" : cf_lock_is_x(w) ? "X" : cf_lock_is_s(w) ? "S" : "free");
	} else {
		printf("class %u %s %#" PRIx64 "\n", klass,
		       !cf_lock_valid(w) ? "MALFORMED" : cf_lock_is_x(w) ? "X" : cf_lock_is_s(w) ? "S" : "free", w);
	}
	*first = false;
	/* the holders the word names, with the names their record lists give this class */
	f = true;
	for (uint32_t i = 0; i < 64; i++) {
		bool fn = true;
		if (!(holders & (1ull << i)))
			continue;
		inst_and_owner(v, i, in, on);
		if (json) {
			printf("%s{\"instance\":", f ? "" : ",");
			json_str(stdout, in);
			printf(",\"system\":");
			json_str(stdout, on);
			printf(",\"names\":[");
		} else {
			printf("  held by %s (%s):", in, on);
		}
		f = false;
		for (uint32_t k = 0; i < m->geo.max_instances && v->recs[i] && k < m->geo.record_entries; k++) {
			const struct cf_rec_entry *e = &v->recs[i][k];
			if (!e->used || e->klass != klass || !rec_held(e, w, i))
				continue;
			memcpy(n, e->name, CF_RES_NAME_MAX);
			n[CF_RES_NAME_MAX] = 0;
			if (filter && strcmp(n, filter))
				continue;
			if (json) {
				printf("%s", fn ? "" : ",");
				json_str(stdout, n);
			} else {
				rec_mode_str(e, w, i, true, md, sizeof(md));
				printf(" %s(%s)", n, md);
			}
			fn = false;
		}
		if (json)
			printf("]}");
		else
			printf("%s\n", fn ? " (no record-list entry)" : "");
	}
	/* entries of the class the word does not cover: waiters (or leftovers of an instance not running) */
	if (json)
		printf("],\"waiters\":[");
	f = true;
	for (uint32_t i = 0; i < m->geo.max_instances; i++) {
		bool live = cf_reg_state(v->inst[i].reg) == CF_REG_ACTIVE;
		for (uint32_t k = 0; v->recs[i] && k < m->geo.record_entries; k++) {
			const struct cf_rec_entry *e = &v->recs[i][k];
			if (!e->used || e->klass != klass || rec_held(e, w, i))
				continue;
			memcpy(n, e->name, CF_RES_NAME_MAX);
			n[CF_RES_NAME_MAX] = 0;
			if (filter && strcmp(n, filter))
				continue;
			inst_and_owner(v, i, in, on);
			rec_mode_str(e, w, i, live, md, sizeof(md));
			if (json) {
				printf("%s{\"instance\":", f ? "" : ",");
				json_str(stdout, in);
				printf(",\"system\":");
				json_str(stdout, on);
				printf(",\"name\":");
				json_str(stdout, n);
				printf(",\"mode\":\"%s\",\"waiting\":%s}", e->used == 1u + CF_LOCK_X ? "X" : "S",
				       live ? "true" : "false");
			} else {
				printf("  %s %s (%s): %s(%s)\n", live ? "waiting" : "not held", in, on, n, md);
			}
			f = false;
		}
	}
	if (json)
		printf("]}");
}

static int cmd_locks(const struct opts *o, const char *record)
{
	struct cf_session s;
	const struct cf_image_map *m;
	struct lock_view v = {0};
	struct cf_sys_slot *sys = NULL;
	struct cf_inst_slot *inst = NULL;
	uint64_t *table = NULL;
	uint32_t want = 0, nwords = 0, nwait = 0;
	bool first = true;
	int rc, r;

	if (record && (!record[0] || strlen(record) >= CF_RES_NAME_MAX)) {
		cf_slog_usage("locks: RECORD must be a resource name of 1..%u characters (f0.r17)",
			CF_RES_NAME_MAX - 1);
		return EX_USAGE_;
	}
	memset(&s, 0, sizeof(s));
	rc = open_console(o, &s);
	if (rc)
		return rc;
	m = &s.map;
	rc = EX_FAIL;
	sys = calloc(m->geo.max_systems, sizeof(*sys));
	inst = calloc(m->geo.max_instances, sizeof(*inst));
	table = malloc((size_t)m->geo.lock_entries * 8u);
	v.recs = calloc(m->geo.max_instances, sizeof(*v.recs));
	if (!sys || !inst || !table || !v.recs) {
		cf_slog_err("out of memory");
		goto out;
	}
	v.m = m;
	v.sys = sys;
	v.inst = inst;
	v.table = table;
	/* the entries first, then the words: an entry is written before its CAS, so a hold read is explained */
	r = read_range(&s, m->off_systems, sys, m->geo.max_systems * sizeof(*sys));
	if (!r)
		r = read_range(&s, m->off_instances, inst, m->geo.max_instances * sizeof(*inst));
	for (uint32_t i = 0; !r && i < m->geo.max_instances; i++) {
		if (!inst[i].name[0] && cf_reg_state(inst[i].reg) == CF_REG_FREE)
			continue;
		v.recs[i] = malloc(m->records_size);
		if (!v.recs[i]) {
			r = -ENOMEM;
			break;
		}
		r = read_range(&s, cf_rec_off(m, i), v.recs[i], m->records_size);
	}
	if (!r)
		r = read_range(&s, m->off_locks, table, (uint64_t)m->geo.lock_entries * 8u);
	if (r) {
		cf_slog_err("locks: reading the CF image: %s", strerror(-r));
		goto out;
	}
	if (record)
		want = cf_lock_class(record, m->geo.lock_entries);
	if (o->json) {
		printf("{\"lock_entries\":%u,", m->geo.lock_entries);
		if (record) {
			printf("\"record\":");
			json_str(stdout, record);
			printf(",\"record_class\":%u,", want);
		}
		printf("\"locks\":[");
	}
	for (uint32_t k = 0; k < m->geo.lock_entries; k++) {
		if (!table[k] || (record && k != want))
			continue;
		print_lock(&v, k, record, o->json, &first);
		nwords++;
	}
	/* waiters on a class whose word is free now (released since, or between two tries) are not shown */
	for (uint32_t i = 0; i < m->geo.max_instances; i++)
		for (uint32_t k = 0; v.recs[i] && k < m->geo.record_entries; k++) {
			const struct cf_rec_entry *e = &v.recs[i][k];
			if (e->used && e->klass < m->geo.lock_entries && table[e->klass] && !rec_held(e, table[e->klass], i) &&
			    (!record || e->klass == want) && cf_reg_state(inst[i].reg) == CF_REG_ACTIVE)
				nwait++;
		}
	if (o->json)
		printf("],\"words\":%u,\"waiting\":%u}\n", nwords, nwait);
	else if (record && !nwords)
		printf("%s (class %u): free\n", record, want);
	else
		printf("%u lock word%s held, %u entr%s waiting\n", nwords, nwords == 1 ? "" : "s", nwait,
		       nwait == 1 ? "y" : "ies");
	rc = 0;
out:
	for (uint32_t i = 0; v.recs && i < m->geo.max_instances; i++)
		free(v.recs[i]);
	free(v.recs);
	free(table);
	free(sys);
	free(inst);
	cf_session_close(&s);
	return rc;
}

/*
 * cfctl health: the exit-code contract for monitoring, after pg_isready and
 * crm_mon. 0: every system ACTIVE, no instance failed, no recovery running or
 * waiting. 1: degraded, one line per problem on stdout. Anything else: the
 * state could not be read (2 usage, 69 CF unreachable or unreadable, 77 key
 * refused), so a monitor that tests for 0 and 1 never mistakes "cannot tell"
 * for either.
 */
static int cmd_health(const struct opts *o)
{
	struct cf_session s;
	const struct cf_image_map *m;
	struct cf_sys_slot *sys = NULL;
	struct cf_inst_slot *inst = NULL;
	struct cf_rinfo_slot *ri = NULL;
	struct cf_restart_info rinfo;
	struct cf_empty empty = { 0 };
	uint64_t now = cf_real_ns();
	uint32_t nsys = 0, ninst = 0, problems = 0;
	int rc, r;

	memset(&s, 0, sizeof(s));
	rc = open_console(o, &s);
	if (rc)
		return rc == EX_FAIL ? EX_UNAVAILABLE_ : rc; /* 1 is "degraded": never for "cannot tell" */
	m = &s.map;
	rc = EX_UNAVAILABLE_;
	sys = calloc(m->geo.max_systems, sizeof(*sys));
	inst = calloc(m->geo.max_instances, sizeof(*inst));
	ri = calloc(m->geo.max_instances, sizeof(*ri));
	if (!sys || !inst || !ri) {
		cf_slog_err("out of memory");
		goto out;
	}
	r = read_range(&s, m->off_systems, sys, m->geo.max_systems * sizeof(*sys));
	if (!r)
		r = read_range(&s, m->off_instances, inst, m->geo.max_instances * sizeof(*inst));
	if (!r)
		r = read_range(&s, m->off_rinfo, ri, m->geo.max_instances * sizeof(*ri));
	memset(&rinfo, 0, sizeof(rinfo));
	if (!r)
		r = cf_session_rpc(&s, CF_CTRL_RESTART_INFO, &empty, sizeof(empty), CF_CTRL_RESTART_INFO_R, &rinfo,
				   sizeof(rinfo), 5000);
	if (r) {
		cf_slog_err("health: reading the CF state: %s", strerror(-r));
		goto out;
	}
	if (rinfo.state == CF_RESTART_RECOVERY) {
		printf("CF restart recovery: %u instance(s) left to recover; attaches for new work wait\n", rinfo.left);
		problems++;
	}
	{
		struct cf_duplex_info di;
		memset(&di, 0, sizeof(di));
		r = cf_session_rpc(&s, CF_CTRL_DUPLEX_INFO, &empty, sizeof(empty), CF_CTRL_DUPLEX_INFO_R, &di,
				   sizeof(di), 5000);
		if (r) {
			cf_slog_err("health: reading the duplex state: %s", strerror(-r));
			goto out;
		}
		if (di.role == CF_DUPLEX_PRIMARY && di.link != CF_DUPLEX_IN_SYNC) {
			printf("CF duplexed but %s: no secondary can take over now\n",
			       di.link == CF_DUPLEX_ALONE ? "running alone" : cf_duplex_link_str(di.link));
			problems++;
		}
	}
	for (uint32_t i = 0; i < m->geo.max_systems; i++) {
		char name[CF_NAME_MAX];
		enum cf_sys_state st = cf_sysword_state(sys[i].state);
		if (st == CF_SYS_FREE)
			continue;
		nsys++;
		if (st != CF_SYS_FAILED)
			continue;
		name_of(sys[i].name, name);
		printf("system %s FAILED (epoch %u, %s, %.1f s ago)\n", name, cf_sysword_epoch(sys[i].state),
		       cause_str(sys[i].fail_cause),
		       sys[i].fail_ns && now > sys[i].fail_ns ? (double)(now - sys[i].fail_ns) / 1e9 : 0.0);
		problems++;
	}
	for (uint32_t i = 0; i < m->geo.max_instances; i++) {
		char name[CF_NAME_MAX], cp[CF_NAME_MAX] = "?";
		uint64_t w = inst[i].reg;
		enum cf_reg_state st = cf_reg_state(w);
		uint32_t owner = cf_reg_owner(w);
		bool running = ri[i].phase != CF_PHASE_NONE && ri[i].phase != CF_PHASE_DONE;
		if (st == CF_REG_FREE)
			continue;
		ninst++;
		name_of(inst[i].name, name);
		if (ri[i].counterpart && ri[i].counterpart <= m->geo.max_systems)
			name_of(sys[ri[i].counterpart - 1].name, cp);
		if (st == CF_REG_FAILED) {
			/* the CF's policy may be auto and still no system recover it (cfnode --policy operator) */
			printf("instance %s INACTIVE_FAILED (incident %u): not recovered yet (cfctl recover %s asks a live "
			       "system to)\n", name, cf_reg_incident(w), name);
			problems++;
		} else if (st == CF_REG_ACTIVE && (owner >= m->geo.max_systems ||
						   cf_reg_owner_stale(w, sys[owner].state))) {
			printf("instance %s ACTIVE under a failed incarnation of its owner (incident %u): not yet "
			       "failed by the CF\n", name, cf_reg_incident(w));
			problems++;
		} else if (st == CF_REG_ACTIVE && running) {
			bool waiting = (ri[i].phase == CF_PHASE_DISK_FENCE || ri[i].phase == CF_PHASE_WD_WAIT) &&
				       (ri[i].wait == CF_FWAIT_AGENT || ri[i].wait == CF_FWAIT_OPERATOR ||
					ri[i].wait == CF_FWAIT_WATCHDOG);
			if (waiting) {
				char fs[CF_NAME_MAX] = "?", fh[CF_HOST_MAX], reason[256];
				if (inst[i].fail_sys < m->geo.max_systems)
					name_of(sys[inst[i].fail_sys].name, fs);
				memcpy(fh, inst[i].fail_host, sizeof(inst[i].fail_host));
				fh[sizeof(inst[i].fail_host) - 1] = 0;
				fence_reason(&ri[i], fs, fh, reason, sizeof(reason));
				printf("instance %s recovery by %s WAITING on a fence for %.1f s: %s\n", name, cp,
				       ri[i].phase_us[ri[i].phase < CF_PHASE_COUNT ? ri[i].phase : 0] / 1e6, reason);
			} else {
				printf("instance %s ACTIVE in recovery by %s (phase %s, incident %" PRIu64 ", %.1f s)\n", name,
				       cp, cf_phase_str((enum cf_phase)(ri[i].phase < CF_PHASE_COUNT ? ri[i].phase : 0)),
				       ri[i].incident,
				       now > ri[i].start_ns ? (double)(now - ri[i].start_ns) / 1e9 : 0.0);
			}
			problems++;
		}
	}
	if (!problems)
		printf("ok: %u system(s) ACTIVE, %u instance(s), no recovery running or waiting\n", nsys, ninst);
	rc = problems ? EX_FAIL : 0;
out:
	free(sys);
	free(inst);
	free(ri);
	cf_session_close(&s);
	return rc;
}

/*
 * cfctl metrics: the CF's OpenMetrics text, fetched chunk by chunk from one
 * snapshot (cf_wire.h, CF_CTRL_METRICS). A snapshot the CF replaced meanwhile
 * (-ESTALE: several scrapers at once) is fetched again from the start, a few
 * times. With --key the session is a monitor's (the monitor key: this
 * request only), else a console's.
 */
#define METRICS_TRIES 5

static int fetch_metrics(struct cf_session *s, char **out, uint32_t *len)
{
	static struct cf_metrics_r rep;
	struct cf_metrics_req q;
	char *text = NULL;
	int r = -ESTALE;

	for (int t = 0; t < METRICS_TRIES && r == -ESTALE; t++) {
		uint32_t total = 0, got = 0;
		memset(&q, 0, sizeof(q));
		do {
			q.offset = got;
			r = cf_session_rpc(s, CF_CTRL_METRICS, &q, sizeof(q), CF_CTRL_METRICS_R, &rep, sizeof(rep), 5000);
			if (!r)
				r = rep.status;
			if (r)
				break;
			if (!q.snapshot) {
				total = rep.total;
				free(text);
				text = malloc((size_t)total + 1);
				if (!text)
					return -ENOMEM;
				q.snapshot = rep.snapshot;
			}
			if (rep.snapshot != q.snapshot || rep.total != total || rep.offset != got ||
			    rep.len > CF_METRICS_CHUNK || rep.len > total - got || (!rep.len && got < total)) {
				r = -EPROTO;
				break;
			}
			memcpy(text + got, rep.text, rep.len);
			got += rep.len;
		} while (got < total);
		if (!r) {
			text[total] = 0;
			*out = text;
			*len = total;
			return 0;
		}
	}
	free(text);
	return r;
}

static int cmd_metrics(const struct opts *o)
{
	struct cf_session s;
	char *text = NULL;
	uint32_t len = 0;
	int rc, r;

	memset(&s, 0, sizeof(s));
	rc = open_session(o, &s, o->mkey ? CF_ROLE_MONITOR : CF_ROLE_CONSOLE);
	if (rc)
		return rc;
	r = fetch_metrics(&s, &text, &len);
	if (r) {
		cf_slog_err("metrics: %s%s%s", strerror(-r), cf_session_error_msg(&s) ? ": the CF says: " : "",
			cf_session_error_msg(&s) ? cf_session_error_msg(&s) : "");
		cf_session_close(&s);
		return EX_FAIL;
	}
	cf_session_close(&s);
	fwrite(text, 1, len, stdout);
	free(text);
	return fflush(stdout) ? EX_FAIL : 0;
}

/*
 * A console request answered with RECOVER_R (recover, recover --retry,
 * fence-confirm): send it, print the CF's answer. what/name label the errors;
 * dflt is printed when the CF's answer carries no message.
 */
static int console_recover_rpc(const struct opts *o, uint16_t type, const void *req, size_t len, const char *what,
			       const char *name, const char *dflt)
{
	struct cf_session s;
	struct cf_recover_r rep;
	int rc, r;

	memset(&s, 0, sizeof(s));
	rc = open_console(o, &s);
	if (rc)
		return rc;
	r = cf_session_rpc(&s, type, req, len, CF_CTRL_RECOVER_R, &rep, sizeof(rep), 5000);
	cf_session_close(&s);
	if (r) {
		cf_slog_err("%s %s: %s", what, name, strerror(-r));
		return EX_FAIL;
	}
	rep.msg[sizeof(rep.msg) - 1] = 0;
	if (rep.status) {
		cf_slog_err("%s %s refused: %s", what, name, rep.msg[0] ? rep.msg : strerror(-rep.status));
		return EX_FAIL;
	}
	printf("%s\n", rep.msg[0] ? rep.msg : dflt);
	return 0;
}

static int cmd_recover(const struct opts *o, const char *instname)
{
	struct cf_recover req;

	if (cf_name_check(instname) || (o->on && cf_name_check(o->on))) {
		cf_slog_usage("bad name: 1-15 characters of [A-Za-z0-9_.-]");
		return EX_USAGE_;
	}
	memset(&req, 0, sizeof(req));
	cf_name_put(req.inst, instname);
	if (o->on)
		cf_name_put(req.on, o->on);
	return console_recover_rpc(o, o->retry ? CF_CTRL_RECOVER_RETRY : CF_CTRL_RECOVER, &req, sizeof(req), "recover",
				   instname, "recovery requested");
}

static int cmd_fence_confirm(const struct opts *o, const char *sysname)
{
	struct cf_fence_confirm req;

	if (cf_name_check(sysname)) {
		cf_slog_usage("bad system name '%s': 1-15 characters of [A-Za-z0-9_.-]", sysname);
		return EX_USAGE_;
	}
	if (o->on || o->retry) {
		cf_slog_usage("fence-confirm takes no --on or --retry");
		return EX_USAGE_;
	}
	memset(&req, 0, sizeof(req));
	cf_name_put(req.sys, sysname);
	return console_recover_rpc(o, CF_CTRL_FENCE_CONFIRM, &req, sizeof(req), "fence-confirm", sysname,
				   "fence confirmed");
}

static int cmd_policy(const struct opts *o, const char *pol)
{
	struct cf_session s;
	struct cf_policy_msg pm = { 0 };
	struct cf_status st;
	int rc, r;

	if (!strcmp(pol, "auto"))
		pm.policy = CF_POLICY_AUTO;
	else if (!strcmp(pol, "operator"))
		pm.policy = CF_POLICY_OPERATOR;
	else {
		cf_slog_usage("policy must be auto or operator");
		return EX_USAGE_;
	}
	memset(&s, 0, sizeof(s));
	rc = open_console(o, &s);
	if (rc)
		return rc;
	r = cf_session_rpc(&s, CF_CTRL_POLICY_SET, &pm, sizeof(pm), CF_CTRL_STATUS, &st, sizeof(st), 5000);
	cf_session_close(&s);
	if (r) {
		cf_slog_err("policy %s: %s", pol, strerror(-r));
		return EX_FAIL;
	}
	st.msg[sizeof(st.msg) - 1] = 0;
	if (st.status) {
		cf_slog_err("policy %s refused: %s", pol, st.msg);
		return EX_FAIL;
	}
	printf("%s\n", st.msg[0] ? st.msg : pol);
	return 0;
}

static void show_markers(const char *dir);

static int cmd_verify(const struct opts *o)
{
	int r;

	if (!o->data) {
		cf_slog_usage("verify needs --data DIR");
		return EX_USAGE_;
	}
	r = cf_bank_verify(o->data, o->have_total, o->total, o->json, stdout);
	if (!o->json)
		show_markers(o->data);
	return r ? EX_FAIL : 0;
}

static void print_marker(const char *name, const struct cf_marker *m)
{
	char img[40];
	time_t t = (time_t)(m->time_ns / 1000000000ull);
	struct tm tm;
	char when[32] = "?";

	cf_marker_image_str(m->image, img, sizeof(img));
	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("marker %-15s %-6s image %s  system %s host %s pid %llu at %s\n", name, cf_marker_state_str(m->state),
	       img, m->system, m->host, (unsigned long long)m->pid, when);
}

/* The markers of DIR (text mode of verify): informational, in-use is normal under a live CF. */
static void show_markers(const char *dir)
{
	static char names[CF_MARKER_MAX_LIST][CF_NAME_MAX];
	size_t n = 0;
	int r = cf_marker_list(dir, names, CF_MARKER_MAX_LIST, &n);

	if (r == -ENOENT || (!r && !n)) {
		printf("markers: none (no instance has written to %s yet)\n", dir);
		return;
	}
	if (r) {
		printf("markers: %s/" CF_MARKER_DIR ": %s\n", dir, strerror(-r));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct cf_marker m;
		char why[160];
		r = cf_marker_read(dir, names[i], &m, why, sizeof(why));
		if (r == -EBADMSG)
			printf("marker %-15s CORRUPT: %s\n", names[i], why);
		else if (r)
			printf("marker %-15s %s\n", names[i], strerror(-r));
		else
			print_marker(names[i], &m);
	}
	printf("markers: an instance in-use under a CF image that is gone keeps cfnode from starting (exit 78) "
	       "until its open transactions are backed out, or cfctl data-release\n");
}

static int cmd_data_release(const struct opts *o, const char *inst)
{
	struct cf_marker m;
	char why[160], host[CF_HOST_MAX], img[40];
	uint64_t zero[2] = { 0, 0 };
	const uint64_t *image = zero;
	int r;

	if (!o->data) {
		cf_slog_usage("data-release needs --data DIR");
		return EX_USAGE_;
	}
	if (cf_name_check(inst)) {
		cf_slog_usage("bad instance name '%s': 1-15 characters of [A-Za-z0-9_.-]", inst);
		return EX_USAGE_;
	}
	r = cf_marker_read(o->data, inst, &m, why, sizeof(why));
	if (r == -ENOENT) {
		cf_slog_err("data-release: %s has no marker in %s/" CF_MARKER_DIR ": nothing to release "
				"(cfctl verify --data %s lists the markers)",
			inst, o->data, o->data);
		return EX_FAIL;
	}
	if (r && r != -EBADMSG) {
		cf_slog_err("data-release: marker of %s: %s", inst, strerror(-r));
		return EX_FAIL;
	}
	if (r == -EBADMSG)
		printf("marker %-15s CORRUPT: %s\n", inst, why);
	else
		print_marker(inst, &m);
	if (!r && m.state == CF_MARKER_CLEAN) {
		printf("%s is clean already: nothing changed\n", inst);
		return 0;
	}
	if (gethostname(host, sizeof(host)) < 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = 0;
	if (!r && !strcmp(m.host, host) && m.pid && m.pid <= INT32_MAX && kill((pid_t)m.pid, 0) == 0 &&
	    (!m.starttime || cf_proc_starttime(m.pid) == m.starttime)) {
		cf_slog_err("data-release: %s is still in use by pid %llu on this host (system %s): stop "
				"it first; nothing changed",
			inst, (unsigned long long)m.pid, m.system);
		return EX_FAIL;
	}
	if (!o->force) {
		cf_slog_usage("data-release: %s may have left uncommitted updates in %s with no undo log left. "
				"Restore the data or accept it as it is (cfctl verify --data %s), then repeat with "
				"--force; nothing changed",
			inst, o->data, o->data);
		return EX_USAGE_;
	}
	if (!r)
		image = m.image;
	r = cf_marker_set(o->data, inst, CF_MARKER_CLEAN, image, "cfctl", host, (uint64_t)getpid(),
			  cf_proc_starttime((uint64_t)getpid()));
	if (r) {
		cf_slog_err("data-release: write the marker of %s: %s", inst, strerror(-r));
		return EX_FAIL;
	}
	cf_marker_image_str(image, img, sizeof(img));
	printf("%s released: marker set clean (image %s) by the operator; cfnode may start on %s again\n", inst,
	       img, o->data);
	return 0;
}

static int cmd_mkdata(const struct opts *o)
{
	bool existed = false;
	int r;

	if (!o->data || !o->have_accounts || !o->have_balance) {
		cf_slog_usage("mkdata needs --data DIR --accounts N --balance B");
		return EX_USAGE_;
	}
	if (o->accounts < 2 || o->accounts > CF_DATA_MAX_RECORDS) {
		cf_slog_usage("--accounts must be 2..%llu", (unsigned long long)CF_DATA_MAX_RECORDS);
		return EX_USAGE_;
	}
	if (mkdir(o->data, 0755) < 0 && errno != EEXIST) {
		cf_slog_err("mkdir %s: %s", o->data, strerror(errno));
		return EX_FAIL;
	}
	if (o->force) {
		char path[4096];
		struct stat st;
		snprintf(path, sizeof(path), "%s/f0.cfd", o->data);
		existed = stat(path, &st) == 0;
	}
	r = cf_bank_mkdata(o->data, o->accounts, o->balance, o->force);
	if (r == -EEXIST) {
		struct cf_data d;
		struct cf_data_file *f;
		char what[96] = "";
		if (!cf_data_open(&d, o->data) && !cf_data_file(&d, CF_BANK_FILE, &f))
			snprintf(what, sizeof(what), " (%" PRIu64 " accounts, total %" PRId64 " at mkdata)", f->rec_count,
				 f->initial_total);
		cf_data_close(&d);
		cf_slog_err("mkdata: %s/f0.cfd exists already%s: refusing to overwrite it. "
				"Give --force to replace it; its data is lost. Nothing changed",
			o->data, what);
		return EX_FAIL;
	}
	if (r) {
		cf_slog_err("mkdata %s: %s", o->data,
			r == -EINVAL ? "total balance out of range" : strerror(-r));
		return EX_FAIL;
	}
	printf("created %s/f0.cfd: %" PRIu64 " accounts of balance %" PRId64 " (total %" PRId64 ")%s\n", o->data,
	       o->accounts, o->balance, (int64_t)o->accounts * o->balance, existed ? ", replacing the one there" : "");
	return 0;
}

/*
 * A new cluster key, 64 hex digits. --out FILE: created O_EXCL with mode 0600
 * (never over an existing file or through a link). To stdout: warned when
 * stdout is a regular file that group or others may read, since every
 * program refuses such a key file (cf_key_load).
 */
static int cmd_keygen(const struct opts *o)
{
	uint8_t key[CF_KEY_LEN];
	char hex[2 * CF_KEY_LEN + 2];
	struct stat st;
	int fd = STDOUT_FILENO, rc = 0;
	size_t len;

	if (cf_auth_init()) {
		cf_slog_err("libsodium failed to start");
		return EX_FAIL;
	}
	if (o->out) {
		fd = open(o->out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) {
			cf_slog_err("keygen --out %s: %s%s", o->out, strerror(errno),
				errno == EEXIST ? " (refusing to overwrite a key; remove it first)" : "");
			return EX_FAIL;
		}
		/* the umask may have taken bits away, never added them; make it exactly 0600 */
		if (fchmod(fd, 0600) < 0) {
			cf_slog_err("keygen --out %s: chmod: %s", o->out, strerror(errno));
			rc = EX_FAIL;
			goto out;
		}
	} else if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & (S_IRWXG | S_IRWXO))) {
		cf_slog_warn("the key goes to a file that group or others may access (mode %04o): "
				"cfserver, cfnode and cfctl refuse it until it is 0600; use cfctl keygen --out FILE, "
				"or chmod 600 the file",
			(unsigned)(st.st_mode & 07777));
	}
	randombytes_buf(key, sizeof(key));
	for (unsigned i = 0; i < sizeof(key); i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	hex[2 * CF_KEY_LEN] = '\n';
	hex[2 * CF_KEY_LEN + 1] = 0;
	len = 2 * CF_KEY_LEN + 1;
	sodium_memzero(key, sizeof(key));
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, hex + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			cf_slog_err("keygen: write: %s", n < 0 ? strerror(errno) : "short write");
			rc = EX_FAIL;
			goto out;
		}
		off += (size_t)n;
	}
	if (o->out && fsync(fd) < 0) {
		cf_slog_err("keygen --out %s: fsync: %s", o->out, strerror(errno));
		rc = EX_FAIL;
	}
out:
	sodium_memzero(hex, sizeof(hex));
	if (o->out && close(fd) < 0 && !rc) {
		cf_slog_err("keygen --out %s: %s", o->out, strerror(errno));
		rc = EX_FAIL;
	}
	if (rc && o->out)
		unlink(o->out); /* no half-written key left behind */
	else if (o->out)
		cf_slog_info("keygen: a new cluster key in %s (mode 0600)", o->out); /* for the journal: who made keys */
	return rc;
}

int main(int argc, char **argv)
{
	enum { O_CF = 256, O_KEY, O_TRANSPORT, O_DATA, O_TOTAL, O_ACCOUNTS, O_BALANCE, O_JSON, O_ON, O_FORCE, O_RETRY, O_VERSION, O_OUT, O_MKEY, O_WATCH,
	       O_LOGLEVEL, O_LOGPREFIX };
	static const struct option lopts[] = {
		{ "cf", required_argument, NULL, O_CF },
		{ "cluster-key", required_argument, NULL, O_KEY },
		{ "key", required_argument, NULL, O_MKEY },
		{ "watch", optional_argument, NULL, O_WATCH },
		{ "transport", required_argument, NULL, O_TRANSPORT },
		{ "data", required_argument, NULL, O_DATA },
		{ "total", required_argument, NULL, O_TOTAL },
		{ "accounts", required_argument, NULL, O_ACCOUNTS },
		{ "balance", required_argument, NULL, O_BALANCE },
		{ "json", no_argument, NULL, O_JSON },
		{ "on", required_argument, NULL, O_ON },
		{ "force", no_argument, NULL, O_FORCE },
		{ "retry", no_argument, NULL, O_RETRY },
		{ "out", required_argument, NULL, O_OUT },
		{ "log-level", required_argument, NULL, O_LOGLEVEL },
		{ "log-prefix", no_argument, NULL, O_LOGPREFIX },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .transport = "tcp" };
	const char *cmd, *arg = NULL;
	int c;
	int64_t v;

	cf_slog_init("cfctl");
	opterr = 0; /* cf_cli_bad_option says it in one line */
	while ((c = getopt_long(argc, argv, ":h", lopts, NULL)) != -1) {
		switch (c) {
		case O_CF: o.cf = optarg; break;
		case O_KEY: o.key = optarg; break;
		case O_MKEY: o.mkey = optarg; break;
		case O_WATCH:
			o.watch = true;
			o.watch_s = 1.0;
			if (optarg && parse_seconds(optarg, &o.watch_s)) {
				cf_slog_usage("--watch SECONDS must be a number from 0.1 to 86400");
				return EX_USAGE_;
			}
			break;
		case O_TRANSPORT:
			if (strcmp(optarg, "tcp") && strcmp(optarg, "verbs")) {
				cf_slog_usage("--transport must be tcp or verbs");
				return EX_USAGE_;
			}
			o.transport = optarg;
			break;
		case O_DATA: o.data = optarg; break;
		case O_TOTAL:
			if (parse_i64(optarg, &o.total)) {
				cf_slog_usage("--total must be an integer");
				return EX_USAGE_;
			}
			o.have_total = true;
			break;
		case O_ACCOUNTS:
			if (parse_i64(optarg, &v) || v < 2) {
				cf_slog_usage("--accounts must be an integer >= 2");
				return EX_USAGE_;
			}
			o.accounts = (uint64_t)v;
			o.have_accounts = true;
			break;
		case O_BALANCE:
			if (parse_i64(optarg, &o.balance)) {
				cf_slog_usage("--balance must be an integer");
				return EX_USAGE_;
			}
			o.have_balance = true;
			break;
		case O_JSON: o.json = true; break;
		case O_ON: o.on = optarg; break;
		case O_FORCE: o.force = true; break;
		case O_RETRY: o.retry = true; break;
		case O_OUT: o.out = optarg; break;
		case O_LOGLEVEL:
			if (cf_slog_level_parse(optarg, &cf_slog_level)) {
				cf_slog_usage("--log-level must be err, warn, info or debug");
				return EX_USAGE_;
			}
			break;
		case O_LOGPREFIX: cf_slog_force_prefix(); break;
		case 'h': usage(stdout); return 0;
		case O_VERSION: return cf_cli_version("cfctl") ? EX_FAIL : 0;
		default: return cf_cli_bad_option("cfctl", c, argv, EX_USAGE_);
		}
	}
	/* Options may come before or after the command (getopt moves the words to the end). */
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE_;
	}
	cmd = argv[optind++];
	if (!strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (optind < argc)
		arg = argv[optind++];
	if (optind < argc) {
		cf_slog_usage("unexpected argument '%s'", argv[optind]);
		return EX_USAGE_;
	}
	if (o.mkey && strcmp(cmd, "metrics")) {
		cf_slog_usage("--key (a monitor key) goes with metrics only");
		return EX_USAGE_;
	}
	if (o.watch && strcmp(cmd, "status")) {
		cf_slog_usage("--watch goes with status only");
		return EX_USAGE_;
	}
	if (o.out && strcmp(cmd, "keygen")) {
		cf_slog_usage("--out goes with keygen only");
		return EX_USAGE_;
	}
	if (!strcmp(cmd, "locks")) {
		if (o.retry || o.on) {
			cf_slog_usage("locks takes [RECORD] [--json]");
			return EX_USAGE_;
		}
		return cmd_locks(&o, arg);
	}
	if (!strcmp(cmd, "recover") || !strcmp(cmd, "policy") || !strcmp(cmd, "data-release") ||
	    !strcmp(cmd, "fence-confirm")) {
		if (!arg) {
			cf_slog_usage("%s needs an argument (see --help)", cmd);
			return EX_USAGE_;
		}
		if (!strcmp(cmd, "data-release"))
			return cmd_data_release(&o, arg);
		if (!strcmp(cmd, "fence-confirm"))
			return cmd_fence_confirm(&o, arg);
		if (o.retry && strcmp(cmd, "recover")) {
			cf_slog_usage("--retry goes with recover only");
			return EX_USAGE_;
		}
		return !strcmp(cmd, "recover") ? cmd_recover(&o, arg) : cmd_policy(&o, arg);
	}
	if (o.retry) {
		cf_slog_usage("--retry goes with recover only");
		return EX_USAGE_;
	}
	/* --watch SECONDS with a space: getopt leaves SECONDS as the argument */
	if (o.watch && arg && parse_seconds(arg, &o.watch_s) == 0)
		arg = NULL;
	if (arg) {
		cf_slog_usage("unexpected argument '%s'", arg);
		return EX_USAGE_;
	}
	if (!strcmp(cmd, "status"))
		return o.watch ? cmd_status_watch(&o) : cmd_status(&o);
	if (!strcmp(cmd, "health"))
		return cmd_health(&o);
	if (!strcmp(cmd, "metrics"))
		return cmd_metrics(&o);
	if (!strcmp(cmd, "verify"))
		return cmd_verify(&o);
	if (!strcmp(cmd, "mkdata"))
		return cmd_mkdata(&o);
	if (!strcmp(cmd, "keygen"))
		return cmd_keygen(&o);
	cf_slog_usage("unknown command '%s' (see --help)", cmd);
	return EX_USAGE_;
}
