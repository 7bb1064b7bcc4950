/* SPDX-License-Identifier: MIT */
/*
 * cfctl_status.c - cfctl status (text, --json, --watch), health and metrics:
 * the CF's state read through a console (or monitor) session (see cfctl.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfctl.h"
#include "cf_lock.h"
#include "cf_slog.h"
#include "cf_util.h"
#include "cf_words.h"

#define MAX_NAMES_SHOWN 8u  /* text: lock names per instance */
#define MAX_NAMES_JSON 64u  /* JSON: lock_names per instance */

/*
 * The lock state of one instance, from its record list and the lock words:
 * an entry is held when cfctl_rec_held() says so (cfctl_locks.c). The list
 * and the words are read one after the other, not atomically: a snapshot of
 * a moving system.
 */
struct inst_locks {
	uint32_t entries; /* record-list entries in use */
	uint32_t held;    /* of those, held per the lock word */
	uint64_t *word;   /* [record_entries]: the class's lock word, for used entries */
};

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
			int r = cfctl_read_range(s, cf_lock_off(m, (uint32_t)recs[k].klass), &w, sizeof(w));
			if (r)
				return r;
		}
		l->word[k] = w;
		l->held += cfctl_rec_held(&recs[k], w, inst);
	}
	return 0;
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

static int status_print(const struct cfctl_opts *o, const char *arg, FILE *out)
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

	(void)arg;
	memset(&s, 0, sizeof(s));
	rc = cfctl_open_console(o, &s);
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
	r = cfctl_read_range(&s, 0, &hdr, sizeof(hdr));
	if (!r)
		r = cfctl_read_range(&s, m->off_heartbeats, hb1, m->geo.max_systems * sizeof(*hb1));
	if (!r) {
		sleep_ns(gap_ns);
		r = cfctl_read_range(&s, m->off_heartbeats, hb2, m->geo.max_systems * sizeof(*hb2));
	}
	if (!r)
		r = cfctl_read_range(&s, m->off_systems, sys, m->geo.max_systems * sizeof(*sys));
	if (!r)
		r = cfctl_read_range(&s, m->off_instances, inst, m->geo.max_instances * sizeof(*inst));
	if (!r)
		r = cfctl_read_range(&s, m->off_rinfo, ri, m->geo.max_instances * sizeof(*ri));
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
		fprintf(out, "{\"generation\":%" PRIu64 ",\"policy\":\"%s\",\"hb_interval_ms\":%.3f,\"hb_timeout_ms\":%.3f,",
		             hdr.generation, hdr.policy == CF_POLICY_OPERATOR ? "operator" : "auto",
		             (double)s.welcome.hb_interval_ns / 1e6, (double)s.welcome.hb_timeout_ns / 1e6);
		fprintf(out, "\"restart\":{\"state\":\"%s\",\"left\":%u},", cf_restart_state_str(rinfo.state), rinfo.left);
		fprintf(out, "\"cf\":{\"address\":\"%s\",\"duplexed\":%s,\"link\":\"%s\",\"secondary\":\"%s\","
		             "\"synced_bytes\":%" PRIu64 ",\"image_bytes\":%" PRIu64 "},",
		             s.addr, dinfo.role == CF_DUPLEX_PRIMARY ? "true" : "false",
		             dinfo.role == CF_DUPLEX_PRIMARY ? cf_duplex_link_str(dinfo.link)
						             : dinfo.role == UINT32_MAX ? "unknown" : "single", dinfo.secondary,
		             dinfo.synced_bytes, dinfo.image_bytes);
		fprintf(out, "\"systems\":[");
	} else {
		fprintf(out, "CF generation %" PRIu64 ", policy %s, h %.1f ms, T %.1f ms\n", hdr.generation,
		             hdr.policy == CF_POLICY_OPERATOR ? "operator" : "auto", (double)s.welcome.hb_interval_ns / 1e6,
		             (double)s.welcome.hb_timeout_ns / 1e6);
		if (dinfo.role == UINT32_MAX)
			fprintf(out, "CF %s: duplexing unknown (this cfserver does not answer DUPLEX_INFO)\n\n", s.addr);
		else if (dinfo.role != CF_DUPLEX_PRIMARY)
			fprintf(out, "CF %s: single (not duplexed)\n\n", s.addr);
		else if (dinfo.link == CF_DUPLEX_ALONE)
			fprintf(out, "CF %s: duplexed primary running ALONE (no secondary): its death ends every incarnation\n\n",
			             s.addr);
		else if (dinfo.link == CF_DUPLEX_SYNCING)
			fprintf(out, "CF %s: duplexed primary; secondary %s copying the image (%.0f%%)\n\n", s.addr,
			             dinfo.secondary,
			             dinfo.image_bytes ? 100.0 * (double)dinfo.synced_bytes / (double)dinfo.image_bytes : 0.0);
		else
			fprintf(out, "CF %s: duplexed primary; secondary %s %s\n\n", s.addr, dinfo.secondary,
			             dinfo.link == CF_DUPLEX_IN_SYNC ? "in sync: takes over if this CF dies"
							       : "lost: fencing it, durable acknowledgements wait");
		if (rinfo.state == CF_RESTART_RECOVERY) {
			fprintf(out, "restart recovery: %u instances left:", rinfo.left);
			for (uint32_t i = 0; i < m->geo.max_instances && i < 64; i++)
				if (rinfo.pending & (1ull << i))
					fprintf(out, " %.*s", (int)CF_NAME_MAX, inst[i].name[0] ? inst[i].name : "?");
			fprintf(out, " (attaches for new work wait)\n\n");
		}
		fprintf(out, "%-3s %-15s %-7s %6s %-10s %12s %-16s %8s  %s\n", "#", "SYSTEM", "STATE", "EPOCH", "HEARTBEAT",
		             "HB", "HOST", "PID", "FAILURE");
	}
	bool first = true;
	for (uint32_t i = 0; i < m->geo.max_systems; i++) {
		char name[CF_NAME_MAX], host[CF_HOST_MAX];
		enum cf_sys_state st = cf_sysword_state(sys[i].state);
		const char *beat;
		if (st == CF_SYS_FREE && !sys[i].name[0])
			continue;
		cfctl_name_of(sys[i].name, name);
		memcpy(host, sys[i].host, sizeof(host));
		host[sizeof(host) - 1] = 0;
		beat = st != CF_SYS_ACTIVE ? "-" : hb2[i].hb != hb1[i].hb ? "beating" : "SILENT";
		if (o->json) {
			fprintf(out, "%s{\"index\":%u,\"name\":", first ? "" : ",", i);
			cfctl_json_str(out, name);
			fprintf(out, ",\"state\":\"%s\",\"epoch\":%u,\"heartbeat\":\"%s\",\"hb\":%" PRIu64
			             ",\"hb_per_s\":%.0f,\"host\":",
			             cf_sys_state_str(st), cf_sysword_epoch(sys[i].state), beat, hb2[i].hb,
			             (double)(hb2[i].hb - hb1[i].hb) * 1e9 / (double)gap_ns);
			cfctl_json_str(out, host);
			fprintf(out, ",\"watchdog_ms\":%u", sys[i].wd_timeout_ms);
			fprintf(out, ",\"pid\":%" PRIu64 ",\"fail_cause\":\"%s\",\"failed_ago_ms\":%.1f", sys[i].pid,
			             cfctl_cause_str(sys[i].fail_cause),
			             sys[i].fail_ns && now > sys[i].fail_ns ? (double)(now - sys[i].fail_ns) / 1e6 : 0.0);
			/*
			 * The status riding on the heartbeat is current only while the system
			 * is ACTIVE, and only once this incarnation has beaten: until its first
			 * beat the slot still holds the previous incarnation's figures.
			 */
			if (st == CF_SYS_ACTIVE && hb2[i].epoch == cf_sysword_epoch(sys[i].state))
				fprintf(out, ",\"commits\":%" PRIu64 ",\"aborts\":%" PRIu64 ",\"inflight\":%" PRIu64
				             ",\"log_used\":%" PRIu64 ",\"locks_held\":%" PRIu64,
				             hb2[i].commits, hb2[i].aborts, hb2[i].inflight, hb2[i].log_used, hb2[i].locks_held);
			fprintf(out, "}");
		} else {
			fprintf(out, "%-3u %-15s %-7s %6u %-10s %12" PRIu64 " %-16.16s %8" PRIu64 "  %s\n", i, name,
			             cf_sys_state_str(st), cf_sysword_epoch(sys[i].state), beat, hb2[i].hb, host, sys[i].pid,
			             st == CF_SYS_FAILED ? cfctl_cause_str(sys[i].fail_cause) : "");
		}
		first = false;
	}
	if (o->json)
		fprintf(out, "],\"instances\":[");
	else
		fprintf(out, "\n%-3s %-15s %-15s %-15s %6s %8s %-15s %10s %8s %7s %6s  %s\n", "#", "INSTANCE", "STATE", "OWNER",
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
		cfctl_name_of(inst[i].name, name);
		if (st == CF_REG_ACTIVE && cf_reg_owner(w) < m->geo.max_systems)
			cfctl_name_of(sys[cf_reg_owner(w)].name, owner);
		if (inst[i].home_sys < m->geo.max_systems) {
			cfctl_name_of(sys[inst[i].home_sys].name, home);
			if (hb2[inst[i].home_sys].home_inst == (uint64_t)i + 1)
				h = &hb2[inst[i].home_sys];
		}
		/*
		 * The status riding on a heartbeat is current only while its owner is the
		 * home system, in the incarnation that wrote the slot.
		 */
		if (h && !(st == CF_REG_ACTIVE && cf_reg_owner(w) == inst[i].home_sys && h->epoch == cf_reg_epoch(w)))
			h = NULL;
		r = cfctl_read_range(&s, cf_rec_off(m, i), recs, m->records_size);
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
			cfctl_name_of(sys[ri[i].counterpart - 1].name, cp);
		char reason[256] = "";
		bool waiting = (ri[i].phase == CF_PHASE_DISK_FENCE || ri[i].phase == CF_PHASE_WD_WAIT) &&
			       (ri[i].wait == CF_FWAIT_AGENT || ri[i].wait == CF_FWAIT_OPERATOR ||
				ri[i].wait == CF_FWAIT_WATCHDOG) && st == CF_REG_ACTIVE;
		char fs[CF_NAME_MAX] = "?", fh[CF_HOST_MAX] = "";
		if (waiting) {
			if (inst[i].fail_sys < m->geo.max_systems)
				cfctl_name_of(sys[inst[i].fail_sys].name, fs);
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
			fprintf(out, "%s{\"index\":%u,\"name\":", first ? "" : ",", i);
			cfctl_json_str(out, name);
			fprintf(out, ",\"state\":\"%s\",\"owner\":", cf_reg_state_str(st));
			cfctl_json_str(out, owner);
			fprintf(out, ",\"owner_epoch\":%u,\"incident\":%u,\"home\":", cf_reg_epoch(w), cf_reg_incident(w));
			cfctl_json_str(out, home);
			/* "locks" and "locks_held": held per the lock words; the waiting are listed, not counted */
			fprintf(out, ",\"locks\":%u,\"locks_held\":%u,\"locks_waiting\":%u,\"lock_names\":[", lk.held, lk.held,
			             lk.entries - lk.held);
			for (uint32_t k = 0; k < m->geo.record_entries && shown < MAX_NAMES_JSON; k++) {
				char n[CF_RES_NAME_MAX + 1];
				bool held;
				if (!recs[k].used)
					continue;
				held = cfctl_rec_held(&recs[k], lk.word[k], i);
				memcpy(n, recs[k].name, CF_RES_NAME_MAX);
				n[CF_RES_NAME_MAX] = 0;
				fprintf(out, "%s{\"name\":", shown ? "," : "");
				cfctl_json_str(out, n);
				fprintf(out, ",\"mode\":\"%s\",\"class\":%" PRIu64 ",\"held\":%s",
				             recs[k].used == 1u + CF_LOCK_X ? "X" : "S", recs[k].klass, held ? "true" : "false");
				if (held && cf_lock_is_s(lk.word[k]))
					fprintf(out, ",\"s_holders\":%d", __builtin_popcountll(cf_lock_s_holders(lk.word[k])));
				fprintf(out, "}");
				shown++;
			}
			fprintf(out, "],\"lock_names_total\":%u,\"lock_names_truncated\":%s", lk.entries,
			             lk.entries > shown ? "true" : "false");
			if (h)
				fprintf(out, ",\"log_used\":%" PRIu64 ",\"commits\":%" PRIu64 ",\"aborts\":%" PRIu64
				             ",\"inflight\":%" PRIu64,
				             h->log_used, h->commits, h->aborts, h->inflight);
			fprintf(out, ",\"recovery\":{\"phase\":\"%s\",\"counterpart\":",
			             cf_phase_str((enum cf_phase)(ri[i].phase < CF_PHASE_COUNT ? ri[i].phase : 0)));
			cfctl_json_str(out, cp);
			fprintf(out, ",\"incident\":%" PRIu64 ",\"start_ns\":%" PRIu64 ",\"end_ns\":%" PRIu64
			             ",\"txns_backed_out\":%" PRIu64 ",\"locks_released\":%" PRIu64 ",\"phase_us\":{",
			             ri[i].incident, ri[i].start_ns, ri[i].end_ns, ri[i].txns_backed_out, ri[i].locks_released);
			for (int p = CF_PHASE_DETECT; p < CF_PHASE_COUNT; p++)
				fprintf(out, "%s\"%s\":%u", p == CF_PHASE_DETECT ? "" : ",", cf_phase_str((enum cf_phase)p),
				             ri[i].phase_us[p]);
			fprintf(out, "},\"fence_wait\":\"%s\"", cf_fence_wait_str((enum cf_fence_wait)ri[i].wait));
			if (waiting) {
				fprintf(out, ",\"waiting\":true,\"fence_of\":");
				cfctl_json_str(out, fs);
				fprintf(out, ",\"fence_host\":");
				cfctl_json_str(out, fh);
				fprintf(out, ",\"reason\":");
				cfctl_json_str(out, reason);
				fprintf(out, ",\"wait_ms\":%.1f,\"age_ms\":%.1f,\"wait_err\":%d,\"wait_tries\":%u,"
				             "\"wait_left_ms\":%u",
				             ri[i].phase_us[ri[i].phase] / 1e3,
				             now > ri[i].start_ns ? (double)(now - ri[i].start_ns) / 1e6 : 0.0, ri[i].wait_err,
				             ri[i].wait_tries, ri[i].wait_left_ms);
			}
			fprintf(out, "}}");
		} else {
			char lb[24] = "-", cm[24] = "-", ab[24] = "-";
			if (h) {
				snprintf(lb, sizeof(lb), "%" PRIu64, h->log_used);
				snprintf(cm, sizeof(cm), "%" PRIu64, h->commits);
				snprintf(ab, sizeof(ab), "%" PRIu64, h->aborts);
			}
			fprintf(out, "%-3u %-15s %-15s %-15s %6u %8u %-15s %10s %8s %7s %6u  %s\n", i, name, cf_reg_state_str(st),
			             owner, cf_reg_epoch(w), cf_reg_incident(w), home, lb, cm, ab, lk.held, rec);
			if (waiting)
				fprintf(out, "      WAITING %.1f s: %s\n", ri[i].phase_us[ri[i].phase] / 1e6, reason);
			if (lk.entries) {
				uint32_t shown = 0;
				fprintf(out, "      locks:");
				for (uint32_t k = 0; k < m->geo.record_entries && shown < MAX_NAMES_SHOWN; k++) {
					char md[32];
					if (!recs[k].used)
						continue;
					cfctl_rec_mode_str(&recs[k], lk.word[k], i, st == CF_REG_ACTIVE, md, sizeof(md));
					fprintf(out, " %.*s(%s)", (int)CF_RES_NAME_MAX, recs[k].name, md);
					shown++;
				}
				if (lk.entries > shown)
					fprintf(out, " ... and %u more", lk.entries - shown);
				if (lk.held < lk.entries)
					fprintf(out, "  [%u held, %u %s]", lk.held, lk.entries - lk.held,
					             st == CF_REG_ACTIVE ? "waiting" : "not held");
				fprintf(out, "\n");
			}
		}
		first = false;
	}
	if (o->json)
		fprintf(out, "]}\n");
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

int cfctl_status(const struct cfctl_opts *o)
{
	return cfctl_with_fields(o, NULL, status_print);
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

int cfctl_status_watch(const struct cfctl_opts *o)
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
		rc = cfctl_status(o);
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
 * cfctl health: the exit-code contract for monitoring, after pg_isready and
 * crm_mon. 0: every system ACTIVE, no instance failed, no recovery running or
 * waiting. 1: degraded, one line per problem on stdout. Anything else: the
 * state could not be read (2 usage, 69 CF unreachable or unreadable, 77 key
 * refused), so a monitor that tests for 0 and 1 never mistakes "cannot tell"
 * for either.
 */
int cfctl_health(const struct cfctl_opts *o)
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
	rc = cfctl_open_console(o, &s);
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
	r = cfctl_read_range(&s, m->off_systems, sys, m->geo.max_systems * sizeof(*sys));
	if (!r)
		r = cfctl_read_range(&s, m->off_instances, inst, m->geo.max_instances * sizeof(*inst));
	if (!r)
		r = cfctl_read_range(&s, m->off_rinfo, ri, m->geo.max_instances * sizeof(*ri));
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
		cfctl_name_of(sys[i].name, name);
		printf("system %s FAILED (epoch %u, %s, %.1f s ago)\n", name, cf_sysword_epoch(sys[i].state),
		       cfctl_cause_str(sys[i].fail_cause),
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
		cfctl_name_of(inst[i].name, name);
		if (ri[i].counterpart && ri[i].counterpart <= m->geo.max_systems)
			cfctl_name_of(sys[ri[i].counterpart - 1].name, cp);
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
					cfctl_name_of(sys[inst[i].fail_sys].name, fs);
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

int cfctl_metrics(const struct cfctl_opts *o)
{
	struct cf_session s;
	char *text = NULL;
	uint32_t len = 0;
	int rc, r;

	memset(&s, 0, sizeof(s));
	rc = cfctl_open_session(o, &s, o->mkey ? CF_ROLE_MONITOR : CF_ROLE_CONSOLE);
	if (rc)
		return rc;
	r = fetch_metrics(&s, &text, &len);
	if (r) {
		cf_slog_err("metrics: %s%s%s", strerror(-r), cf_session_error_msg(&s) ? ": " : "",
			cf_session_error_msg(&s) ? cf_session_error_msg(&s) : "");
		cf_session_close(&s);
		return EX_FAIL;
	}
	cf_session_close(&s);
	fwrite(text, 1, len, stdout);
	free(text);
	return fflush(stdout) ? EX_FAIL : 0;
}
