/* SPDX-License-Identifier: MIT */
/*
 * kvstore - a small key-value store over one record file of a cfplex data
 * directory, written against the public API only (<cfnode.h>, man 3 cfnode).
 *
 * Keys hash (FNV-1a) to a record; a collision moves on to the next record,
 * at most KV_PROBE of them (open addressing; a deleted key leaves a
 * tombstone so that the keys behind it stay reachable). Every put and del is
 * one transaction: the probed records are locked in the CF (X), their
 * before-images go to the undo log there, then the data file is written.
 * When a kvstore process dies inside a transaction, a peer kvstore (its agent
 * thread, inside libcfnode) restores the before-images and releases the locks.
 *
 *   kvstore --data DIR init RECORDS      create the file (no CF needed)
 *   kvstore OPTIONS put KEY VALUE        one transaction each
 *   kvstore OPTIONS get KEY
 *   kvstore OPTIONS del KEY
 *   kvstore OPTIONS serve                commands on stdin, one a line:
 *                                        put K V | get K | del K | quit
 *
 * KV_PAUSE=after-update[:MS] (environment): the first put of the process
 * stops inside its open transaction, after its update reached the data
 * file, prints "paused" and waits for a signal (or MS milliseconds, then
 * commits). The tests kill -9 it there, or kill the CF meanwhile. Once: a
 * put tried again (a switch of CF backed it out) goes through.
 *
 * Exit codes as cfnode(8): 0, 1 error, 2 usage, 69 CF unreachable, 75 this
 * incarnation is over (run again), 78 the data directory needs the operator.
 */
#include <cfnode.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KV_FILE 1    /* f1.cfd: f0.cfd is the bank's by convention */
#define KV_REC 128   /* bytes a record */
#define KV_PROBE 8   /* records a key may move on to */
#define KV_KEY_MAX 40
#define KV_VAL_MAX 80
#define KV_RETRIES 20 /* a transaction that met a lock timeout or a lapsed lease is tried again */

enum kv_state { KV_FREE = 0, KV_USED = 1, KV_DELETED = 2 };

struct kv_rec {
	unsigned char state, klen, vlen, pad;
	char key[KV_KEY_MAX];
	char val[KV_VAL_MAX];
	char spare[KV_REC - 4 - KV_KEY_MAX - KV_VAL_MAX];
};
_Static_assert(sizeof(struct kv_rec) == KV_REC, "record size");

static const char *sysname = "?";
static int quiet;
static atomic_int over;

static void log_cb(void *arg, int level, const char *msg)
{
	if (quiet && level > CFN_LOG_WARN)
		return;
	fprintf(stderr, "kvstore[%s] %s\n", sysname, msg);
}

static void over_cb(void *arg, int err)
{
	atomic_store(&over, err ? err : -EPIPE);
}

static uint64_t hash(const char *k)
{
	uint64_t h = 1469598103934665603ull;

	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 1099511628211ull;
	return h;
}

/* KV_PAUSE=after-update[:MS]: -1 for ever, MS, or 0 (no pause, or paused once already) */
static long pause_ms(void)
{
	static bool paused;
	const char *p = getenv("KV_PAUSE");

	if (paused || !p || strncmp(p, "after-update", 12))
		return 0;
	paused = true;
	return p[12] == ':' ? strtol(p + 13, NULL, 10) : -1;
}

/*
 * One transaction over the probe sequence of key: find the record that holds
 * it (or, for a put, the first free or deleted one) and apply op there.
 * 0, -ENOENT (get/del of a missing key), -ENOSPC (probe sequence full), or
 * an error of the API (the transaction is aborted).
 */
static int kv_txn(struct cfn *h, uint64_t nrec, char op, const char *key, const char *val, char *out)
{
	struct cfn_txn *t;
	struct kv_rec r, hit;
	uint64_t first = hash(key) % nrec, at = UINT64_MAX, spare = UINT64_MAX;
	int e;

	e = cfn_begin(h, &t);
	if (e)
		return e;
	for (uint64_t i = 0; i < KV_PROBE && i < nrec; i++) {
		uint64_t rec = (first + i) % nrec;
		/* X for a write, taken before the read: no S to X upgrade (man 3 cfnode) */
		e = cfn_lock(t, KV_FILE, rec, op == 'g' ? CFN_LOCK_S : CFN_LOCK_X, -1);
		if (!e)
			e = cfn_read(t, KV_FILE, rec, &r, sizeof(r));
		if (e)
			goto abort;
		if (r.state == KV_USED && r.klen == strlen(key) && !memcmp(r.key, key, r.klen)) {
			at = rec;
			hit = r;
			break;
		}
		if (r.state != KV_USED && spare == UINT64_MAX)
			spare = rec;
		if (r.state == KV_FREE)
			break; /* the key was never placed further on */
	}
	switch (op) {
	case 'g':
		if (at == UINT64_MAX) {
			e = -ENOENT;
			goto abort;
		}
		memcpy(out, hit.val, hit.vlen);
		out[hit.vlen] = 0;
		return cfn_commit(t);
	case 'd':
		if (at == UINT64_MAX) {
			e = -ENOENT;
			goto abort;
		}
		memset(&r, 0, sizeof(r));
		r.state = KV_DELETED;
		e = cfn_update(t, KV_FILE, at, &r, sizeof(r));
		break;
	default:
		if (at == UINT64_MAX)
			at = spare;
		if (at == UINT64_MAX) {
			e = -ENOSPC;
			goto abort;
		}
		memset(&r, 0, sizeof(r));
		r.state = KV_USED;
		r.klen = (unsigned char)strlen(key);
		r.vlen = (unsigned char)strlen(val);
		memcpy(r.key, key, r.klen);
		memcpy(r.val, val, r.vlen);
		e = cfn_update(t, KV_FILE, at, &r, sizeof(r));
		long ms = e ? 0 : pause_ms();
		if (ms) {
			/* the deterministic crash point of the tests: inside the open transaction */
			struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
			printf("paused put %s record %llu\n", key, (unsigned long long)at);
			fflush(stdout);
			while (ms < 0)
				pause();
			nanosleep(&ts, NULL);
		}
		break;
	}
	if (e)
		goto abort;
	return cfn_commit(t);
abort:
	{
		int ea = cfn_abort(t);
		return ea == -ECONNABORTED ? ea : e;
	}
}

/*
 * kv_txn, tried again while it meets a lock timeout or a lapsed lease, or
 * the switch of a duplexed CF: -ECONNRESET (the transaction was backed out,
 * the handle goes on) or -EINPROGRESS (a commit in doubt: done or not, the
 * log at the new CF decided). put and del are idempotent, so a retry does
 * what was asked either way; a del in doubt that finds the key gone did it.
 */
static int kv_do(struct cfn *h, uint64_t nrec, char op, const char *key, const char *val, char *out)
{
	int e = -EAGAIN;
	bool doubt = false;

	if (strlen(key) == 0 || strlen(key) > KV_KEY_MAX || (val && strlen(val) > KV_VAL_MAX))
		return -EINVAL;
	for (int i = 0; i < KV_RETRIES; i++) {
		e = kv_txn(h, nrec, op, key, val, out);
		if (e == -EINPROGRESS)
			doubt = true;
		if (e != -ETIMEDOUT && e != -ENOLINK && e != -EBUSY && e != -ECONNRESET && e != -EINPROGRESS)
			break;
	}
	return op == 'd' && doubt && e == -ENOENT ? 0 : e;
}

/* One command: prints its answer line (OK, VALUE v, NOTFOUND, ERR why) and returns its error. */
static int command(struct cfn *h, uint64_t nrec, char *line)
{
	char *cmd = strtok(line, " \t\n"), *key = strtok(NULL, " \t\n"), *val = strtok(NULL, "\n");
	char out[KV_VAL_MAX + 1];
	int e;

	for (size_t n = val ? strlen(val) : 0; n && (val[n - 1] == ' ' || val[n - 1] == '\t'); n--)
		val[n - 1] = 0;
	if (!cmd || (strcmp(cmd, "put") && strcmp(cmd, "get") && strcmp(cmd, "del")) || !key ||
	    (!strcmp(cmd, "put") == !val)) {
		printf("ERR usage: put KEY VALUE | get KEY | del KEY | quit\n");
		fflush(stdout);
		return -EINVAL;
	}
	e = kv_do(h, nrec, cmd[0], key, val, out);
	if (!e && cmd[0] == 'g')
		printf("VALUE %s\n", out);
	else if (!e)
		printf("OK\n");
	else if (e == -ENOENT)
		printf("NOTFOUND\n");
	else
		printf("ERR %s\n", cfn_strerror(e));
	fflush(stdout);
	return e;
}

static int exit_code(int e)
{
	switch (e) {
	case 0: return 0;
	case -EINVAL: return 2;
	case -ECONNREFUSED:
	case -ETIMEDOUT:
	case -EHOSTUNREACH:
	case -ENETUNREACH: return 69;
	case -ECONNABORTED: return 75;
	case -EUCLEAN: return 78;
	default: return 1;
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: kvstore --data DIR init RECORDS\n"
		   "       kvstore --cf HOST:PORT --cluster-key FILE --system NAME --instance NAME --data DIR\n"
		   "               [--transport tcp|verbs] [--fence-agent A] [-q] put KEY VALUE | get KEY | del KEY | serve\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "cf", required_argument, NULL, 'c' },	     { "cluster-key", required_argument, NULL, 'k' },
		{ "system", required_argument, NULL, 's' },    { "instance", required_argument, NULL, 'i' },
		{ "data", required_argument, NULL, 'd' },      { "transport", required_argument, NULL, 't' },
		{ "fence-agent", required_argument, NULL, 'f' }, { "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },	     { NULL, 0, NULL, 0 },
	};
	struct cfn_config cfg = { .log = log_cb, .on_over = over_cb };
	struct cfn *h;
	uint64_t nrec;
	unsigned rs;
	int c, e, ec;

	while ((c = getopt_long(argc, argv, "qh", lopts, NULL)) != -1) {
		switch (c) {
		case 'c': cfg.cf_addr = optarg; break;
		case 'k': cfg.key_file = optarg; break;
		case 's': cfg.system = sysname = optarg; break;
		case 'i': cfg.instance = optarg; break;
		case 'd': cfg.data_dir = optarg; break;
		case 't': cfg.transport = optarg; break;
		case 'f': cfg.fence_agent = optarg; break;
		case 'q': quiet = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc || !cfg.data_dir) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[optind], "init")) {
		char *end;
		unsigned long long n = optind + 1 < argc ? strtoull(argv[optind + 1], &end, 10) : 0;
		if (!n || *end) {
			usage(stderr);
			return 2;
		}
		e = cfn_create_file(cfg.data_dir, KV_FILE, KV_REC, n);
		if (e)
			fprintf(stderr, "kvstore: init %s: %s\n", cfg.data_dir, cfn_strerror(e));
		return exit_code(e);
	}
	e = cfn_open(&cfg, &h);
	if (e) {
		fprintf(stderr, "kvstore: cannot join as %s: %s\n", sysname, cfn_strerror(e));
		return exit_code(e);
	}
	e = cfn_file_info(h, KV_FILE, &rs, &nrec);
	if (!e && rs != KV_REC)
		e = -EBADMSG;
	if (e) {
		fprintf(stderr, "kvstore: %s/f%d.cfd: %s (kvstore --data DIR init RECORDS)\n", cfg.data_dir, KV_FILE,
			cfn_strerror(e));
		cfn_close(h);
		return 1;
	}
	if (!strcmp(argv[optind], "serve")) {
		char line[256];
		printf("READY\n");
		fflush(stdout);
		e = 0;
		/* a failed command is answered and the next one read; only the end of the incarnation ends it */
		while (e != -ECONNABORTED && fgets(line, sizeof(line), stdin) && strncmp(line, "quit", 4))
			e = command(h, nrec, line);
		if (e != -ECONNABORTED)
			e = 0;
	} else {
		char line[256] = "";
		for (int i = optind; i < argc; i++) {
			strncat(line, argv[i], sizeof(line) - strlen(line) - 2);
			strcat(line, " ");
		}
		e = command(h, nrec, line);
	}
	ec = cfn_close(h);
	if (!e)
		e = ec;
	if (e == -ECONNABORTED || atomic_load(&over))
		fprintf(stderr, "kvstore[%s]: this incarnation is over (exit 75): run again to rejoin\n", sysname);
	return exit_code(e);
}
