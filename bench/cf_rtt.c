/* SPDX-License-Identifier: MIT */
/*
 * cf_rtt - round-trip latency of READ/WRITE/CAS/FAA over a cf_session, the
 * way perftest measures: warm-up, then N timed iterations of one synchronous
 * op, reported as min/median/p99/p99.9/max (and --json).
 *
 * Against a running cfserver (--cf ADDR --key FILE), or one it starts itself
 * (--cfserver PATH: ephemeral loopback port, fresh key, killed at the end).
 * It joins as a system and keeps its heartbeat alive on a second connection,
 * so the run is not cut short by T.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cf_auth.h"
#include "cf_key.h"
#include "cf_session.h"
#include "cf_util.h"

struct hb {
	struct cf_session s;
	volatile int stop;
	long interval_ns;
};

static void *hb_main(void *p)
{
	struct hb *h = p;
	struct cf_hb_slot slot;
	struct timespec ts = {.tv_sec = 0, .tv_nsec = h->interval_ns};

	/* like cfnode's heartbeat thread: real-time when allowed */
	struct sched_param sp = {.sched_priority = 10};
	pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
	memset(&slot, 0, sizeof(slot));
	slot.epoch = h->s.epoch;
	while (!h->stop) {
		slot.hb++;
		if (cf_session_write(&h->s, cf_hb_off(&h->s.map, h->s.sys), &slot, sizeof(slot)) < 0)
			break;
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t pct(const uint64_t *v, size_t n, double p)
{
	size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);

	return v[i < n ? i : n - 1];
}

static pid_t start_server(const char *bin, const char *dir, char *addr, size_t cap, char *keyfile, size_t kcap)
{
	char portfile[512], port[32], hex[2 * CF_KEY_LEN + 2];
	uint8_t key[CF_KEY_LEN];
	FILE *f;
	pid_t pid;

	snprintf(keyfile, kcap, "%s/key", dir);
	snprintf(portfile, sizeof(portfile), "%s/port", dir);
	cf_auth_nonce(key);
	for (unsigned i = 0; i < CF_KEY_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	{
		/* 0600: every program refuses a key file that group or others may read */
		int kfd = open(keyfile, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (kfd < 0 || fchmod(kfd, 0600) < 0 || !(f = fdopen(kfd, "w"))) {
			int e = errno;
			if (kfd >= 0)
				close(kfd);
			return -e;
		}
	}
	fprintf(f, "%s\n", hex);
	fclose(f);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execl(bin, bin, "--listen", "127.0.0.1:0", "--port-file", portfile, "--cluster-key", keyfile,
		      "--log-level", "warn", "--log-size", "64K", "--hb-timeout", "1000", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 1000; i++) {
		f = fopen(portfile, "r");
		if (f && fgets(port, sizeof(port), f)) {
			fclose(f);
			port[strcspn(port, "\n")] = 0;
			snprintf(addr, cap, "127.0.0.1:%s", port);
			return pid;
		}
		if (f)
			fclose(f);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	return -ETIMEDOUT;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: cf_rtt (--cf ADDR --key FILE | --cfserver PATH) [options]\n"
		   "  --transport tcp|verbs   (default tcp)\n"
		   "  --iters N               timed iterations per op (default 20000)\n"
		   "  --warmup N              untimed iterations first (default 2000)\n"
		   "  --ops LIST              comma list of read,write,cas,faa (default all)\n"
		   "  --size BYTES            READ/WRITE size (default 8, max 128)\n"
		   "  --json                  one JSON object on stdout\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"cf", required_argument, NULL, 'c'},      {"key", required_argument, NULL, 'k'},
		{"cfserver", required_argument, NULL, 'S'}, {"transport", required_argument, NULL, 't'},
		{"iters", required_argument, NULL, 'n'},   {"warmup", required_argument, NULL, 'w'},
		{"ops", required_argument, NULL, 'o'},     {"size", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},          {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *cf = NULL, *keyfile = NULL, *server_bin = NULL, *transport = "tcp", *ops = "read,write,cas,faa";
	char addrbuf[128], keybuf[512], dir[] = "/tmp/cf_rtt.XXXXXX", cmdline[2048] = "";
	long iters = 20000, warmup = 2000;
	uint32_t size = 8;
	int json = 0, o, r, first = 1;
	pid_t spid = 0;
	uint8_t key[CF_KEY_LEN], buf[128] = {0};
	static struct hb hb;
	struct cf_session s;
	pthread_t th;
	uint64_t *lat, old;

	for (int i = 0; i < argc; i++) {
		strncat(cmdline, argv[i], sizeof(cmdline) - strlen(cmdline) - 2);
		strcat(cmdline, i + 1 < argc ? " " : "");
	}
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'c': cf = optarg; break;
		case 'k': keyfile = optarg; break;
		case 'S': server_bin = optarg; break;
		case 't': transport = optarg; break;
		case 'n': iters = atol(optarg); break;
		case 'w': warmup = atol(optarg); break;
		case 'o': ops = optarg; break;
		case 's': size = (uint32_t)atoi(optarg); break;
		case 'j': json = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (iters < 1 || warmup < 0 || size < 1 || size > sizeof(buf) || (!cf && !server_bin) ||
	    (cf && !keyfile)) {
		usage(stderr);
		return 2;
	}
	if (cf_auth_init() < 0)
		return 1;
	if (!cf) {
		if (!mkdtemp(dir)) {
			perror("mkdtemp");
			return 1;
		}
		spid = start_server(server_bin, dir, addrbuf, sizeof(addrbuf), keybuf, sizeof(keybuf));
		if (spid < 0) {
			fprintf(stderr, "cf_rtt: cannot start %s: %s\n", server_bin, strerror(-spid));
			return 1;
		}
		cf = addrbuf;
		keyfile = keybuf;
	}
	r = cf_key_load(keyfile, key);
	if (r < 0) {
		char why[512];
		fprintf(stderr, "cf_rtt: %s\n", cf_key_explain(keyfile, r, why, sizeof(why)));
		goto out;
	}
	r = cf_session_open(&s, transport, cf, key, CF_ROLE_SYSTEM, 5000);
	if (r == 0) {
		char name[16];
		snprintf(name, sizeof(name), "RTT%d", (int)(getpid() % 100000));
		r = cf_session_join(&s, name, "localhost", (uint64_t)getpid(), 0);
	}
	if (r < 0) {
		fprintf(stderr, "cf_rtt: session to %s: %s\n", cf, strerror(-r));
		goto out;
	}
	hb.interval_ns = (long)s.welcome.hb_interval_ns;
	r = cf_session_open(&hb.s, transport, cf, key, CF_ROLE_SYSTEM, 5000);
	if (r == 0)
		r = cf_session_attach(&hb.s, s.sys, s.epoch, s.token);
	if (r < 0 || pthread_create(&th, NULL, hb_main, &hb)) {
		fprintf(stderr, "cf_rtt: heartbeat connection: %s\n", strerror(-r));
		goto out;
	}
	lat = calloc((size_t)iters, sizeof(*lat));
	if (!lat) {
		r = -ENOMEM;
		goto out_hb;
	}
	if (!json)
		printf("# %s\n# transport %s, server %s, %ld iterations after %ld warm-up, size %u\n"
		       "%-6s %10s %10s %10s %10s %10s %10s (us)\n",
		       cmdline, transport, cf, iters, warmup, size, "op", "min", "median", "p99", "p99.9", "max",
		       "mean");
	else
		printf("{\"command\": \"%s\", \"transport\": \"%s\", \"iters\": %ld, \"warmup\": %ld, \"size\": %u, "
		       "\"results\": [",
		       cmdline, transport, iters, warmup, size);
	{
		/* the op targets: the last lock word (atomics), our heartbeat slot's spare words (READ/WRITE) */
		uint64_t aoff = cf_lock_off(&s.map, s.map.geo.lock_entries - 1);
		uint64_t woff = s.map.off_rinfo + (uint64_t)(s.map.geo.max_instances - 1) * sizeof(struct cf_rinfo_slot);
		char list[256], *save = NULL, *op;

		snprintf(list, sizeof(list), "%s", ops);
		for (op = strtok_r(list, ",", &save); op; op = strtok_r(NULL, ",", &save)) {
			int kind = !strcmp(op, "read") ? 0 : !strcmp(op, "write") ? 1 : !strcmp(op, "cas") ? 2
							   : !strcmp(op, "faa") ? 3 : -1;
			double sum = 0;
			if (kind < 0) {
				fprintf(stderr, "cf_rtt: unknown op %s\n", op);
				r = -EINVAL;
				break;
			}
			for (long i = -warmup; i < iters; i++) {
				uint64_t t0 = cf_mono_ns();
				switch (kind) {
				case 0: r = cf_session_read(&s, woff, buf, size); break;
				case 1: r = cf_session_write(&s, woff, buf, size); break;
				case 2: r = cf_session_cas(&s, aoff, (uint64_t)i, (uint64_t)i + 1, &old); break;
				default: r = cf_session_faa(&s, aoff, 1, &old); break;
				}
				if (r < 0) {
					fprintf(stderr, "cf_rtt: %s: %s\n", op, strerror(-r));
					goto out_lat;
				}
				if (i >= 0)
					lat[i] = cf_mono_ns() - t0;
			}
			qsort(lat, (size_t)iters, sizeof(*lat), cmp_u64);
			for (long i = 0; i < iters; i++)
				sum += (double)lat[i];
			if (!json)
				printf("%-6s %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f\n", op, lat[0] / 1e3,
				       pct(lat, (size_t)iters, 50) / 1e3, pct(lat, (size_t)iters, 99) / 1e3,
				       pct(lat, (size_t)iters, 99.9) / 1e3, lat[iters - 1] / 1e3, sum / (double)iters / 1e3);
			else
				printf("%s{\"op\": \"%s\", \"min_us\": %.2f, \"median_us\": %.2f, \"p99_us\": %.2f, "
				       "\"p999_us\": %.2f, \"max_us\": %.2f, \"mean_us\": %.2f}",
				       first ? "" : ", ", op, lat[0] / 1e3, pct(lat, (size_t)iters, 50) / 1e3,
				       pct(lat, (size_t)iters, 99) / 1e3, pct(lat, (size_t)iters, 99.9) / 1e3,
				       lat[iters - 1] / 1e3, sum / (double)iters / 1e3);
			first = 0;
		}
	}
	if (json)
		printf("]}\n");
	if (r == 0)
		cf_session_goodbye(&s);
out_lat:
	free(lat);
out_hb:
	hb.stop = 1;
	pthread_join(th, NULL);
	cf_session_close(&hb.s);
	cf_session_close(&s);
out:
	if (spid > 0) {
		kill(spid, SIGTERM);
		waitpid(spid, NULL, 0);
		unlink(keybuf);
		snprintf(keybuf, sizeof(keybuf), "%s/port", dir);
		unlink(keybuf);
		rmdir(dir);
	}
	return r < 0 ? 1 : 0;
}
