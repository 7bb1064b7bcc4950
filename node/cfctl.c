/* SPDX-License-Identifier: MIT */
/*
 * cfctl - the operator console.
 *
 *   cfctl status  --cf ADDR --cluster-key FILE [--json | --field QUERY...] [--watch [SECONDS]]
 *   cfctl locks   [RECORD] --cf ADDR --cluster-key FILE [--json | --field QUERY...]
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
#include <unistd.h>

#include <sodium.h>

#include "cfctl.h"
#include "cf_auth.h"
#include "cf_key.h"
#include "cf_cli.h"
#include "cf_fence.h"
#include "cf_session.h"
#include "cf_slog.h"
#include "cf_util.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: cfctl COMMAND [options]\n"
		"\n"
		"  status  --cf HOST:PORT --cluster-key FILE [--json | --field QUERY...] [--watch [SECONDS]]\n"
		"          [--transport tcp|verbs]\n"
		"          systems, instances, locks held, log use, recovery in progress. --watch:\n"
		"          again every SECONDS (default 1) until interrupted (exit 0); exits 69/77\n"
		"          as health does when the CF goes away or refuses the key\n"
		"  locks   [RECORD] --cf HOST:PORT --cluster-key FILE [--json | --field QUERY...]\n"
		"          every lock word held: its holders, and the instances waiting for it\n"
		"          (record-list entries the word does not cover); RECORD (f0.r17): its\n"
		"          lock class only\n"
		"  --field QUERY (status, locks; up to 32): fields of the --json document, one line\n"
		"          per QUERY, space-separated, \"-\" when absent; KEY a.b: field b of object a:\n"
		"            'cf KEY...'          the document's own (generation, restart.state;\n"
		"                                 locks: words, held_by.INSTANCE)\n"
		"            'sys NAME KEY...'    a system          'inst NAME KEY...'  an instance\n"
		"            'systems [KEY...]'   a line per system: its name, then KEYs\n"
		"            'instances [KEY...]' a line per instance, the same\n"
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

/*
 * A console request answered with RECOVER_R (recover, recover --retry,
 * fence-confirm): send it, print the CF's answer. what/name label the errors;
 * dflt is printed when the CF's answer carries no message.
 */
static int console_recover_rpc(const struct cfctl_opts *o, uint16_t type, const void *req, size_t len, const char *what,
			       const char *name, const char *dflt)
{
	struct cf_session s;
	struct cf_recover_r rep;
	int rc, r;

	memset(&s, 0, sizeof(s));
	rc = cfctl_open_console(o, &s);
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

static int cmd_recover(const struct cfctl_opts *o, const char *instname)
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

static int cmd_fence_confirm(const struct cfctl_opts *o, const char *sysname)
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

static int cmd_policy(const struct cfctl_opts *o, const char *pol)
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
	rc = cfctl_open_console(o, &s);
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

/*
 * A new cluster key, 64 hex digits. --out FILE: created O_EXCL with mode 0600
 * (never over an existing file or through a link). To stdout: warned when
 * stdout is a regular file that group or others may read, since every
 * program refuses such a key file (cf_key_load).
 */
static int cmd_keygen(const struct cfctl_opts *o)
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
	       O_LOGLEVEL, O_LOGPREFIX, O_FIELD };
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
		{ "field", required_argument, NULL, O_FIELD },
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
	struct cfctl_opts o = { .transport = "tcp" };
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
		case O_FIELD:
			if (o.nfields == CFCTL_FIELDS_MAX) {
				cf_slog_usage("at most %u --field queries", CFCTL_FIELDS_MAX);
				return EX_USAGE_;
			}
			o.fields[o.nfields++] = optarg;
			break;
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
	if (o.nfields) {
		if (strcmp(cmd, "status") && strcmp(cmd, "locks")) {
			cf_slog_usage("--field goes with status and locks only");
			return EX_USAGE_;
		}
		if (o.json || o.watch) {
			cf_slog_usage("--field prints fields: not with --json or --watch");
			return EX_USAGE_;
		}
		if (cfctl_fields_check(cmd, o.fields, o.nfields))
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
		return cfctl_locks(&o, arg);
	}
	if (!strcmp(cmd, "recover") || !strcmp(cmd, "policy") || !strcmp(cmd, "data-release") ||
	    !strcmp(cmd, "fence-confirm")) {
		if (!arg) {
			cf_slog_usage("%s needs an argument (see --help)", cmd);
			return EX_USAGE_;
		}
		if (!strcmp(cmd, "data-release"))
			return cfctl_data_release(&o, arg);
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
		return o.watch ? cfctl_status_watch(&o) : cfctl_status(&o);
	if (!strcmp(cmd, "health"))
		return cfctl_health(&o);
	if (!strcmp(cmd, "metrics"))
		return cfctl_metrics(&o);
	if (!strcmp(cmd, "verify"))
		return cfctl_verify(&o);
	if (!strcmp(cmd, "mkdata"))
		return cfctl_mkdata(&o);
	if (!strcmp(cmd, "keygen"))
		return cmd_keygen(&o);
	cf_slog_usage("unknown command '%s' (see --help)", cmd);
	return EX_USAGE_;
}
