/* SPDX-License-Identifier: MIT */
/*
 * cf_lockbench - the READ bandwidth term of the failover floor: how fast one session
 * can READ a large region of the CF (the lock table) in the chunk size peer recovery
 * uses to read a log (32 KiB), synchronously, the way the recovery does.  Reports
 * bytes/s over whole passes (min/median/max) as one JSON object with --json.
 *
 * Against a running cfserver (--cf ADDR --key FILE).  It joins as a system and keeps
 * its heartbeat alive on a second connection, so the run is not cut short by T.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: cf_lockbench --cf ADDR --key FILE [options]\n"
		   "  --transport tcp|verbs   (default tcp)\n"
		   "  --passes N              timed passes over the lock table (default 20)\n"
		   "  --chunk BYTES           READ size (default 32768, max 65536)\n"
		   "  --json                  one JSON object on stdout\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"cf", required_argument, NULL, 'c'},     {"key", required_argument, NULL, 'k'},
		{"transport", required_argument, NULL, 't'}, {"passes", required_argument, NULL, 'n'},
		{"chunk", required_argument, NULL, 's'},  {"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	const char *cf = NULL, *keyfile = NULL, *transport = "tcp";
	long passes = 20;
	uint32_t chunk = 32768;
	int json = 0, o, r;
	uint8_t key[CF_KEY_LEN], *buf = NULL;
	static struct hb hb;
	struct cf_session s;
	pthread_t th;
	double *bw = NULL;
	uint64_t off, len;

	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'c': cf = optarg; break;
		case 'k': keyfile = optarg; break;
		case 't': transport = optarg; break;
		case 'n': passes = atol(optarg); break;
		case 's': chunk = (uint32_t)atol(optarg); break;
		case 'j': json = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!cf || !keyfile || passes < 1 || passes > 100000 || chunk < 8 || chunk > 65536) {
		usage(stderr);
		return 2;
	}
	if (cf_auth_init() < 0)
		return 1;
	r = cf_key_load(keyfile, key);
	if (r < 0) {
		char why[512];
		fprintf(stderr, "cf_lockbench: %s\n", cf_key_explain(keyfile, r, why, sizeof(why)));
		return 1;
	}
	r = cf_session_open(&s, transport, cf, key, CF_ROLE_SYSTEM, 5000);
	if (r == 0) {
		char name[16];
		snprintf(name, sizeof(name), "LKB%d", (int)(getpid() % 100000));
		r = cf_session_join(&s, name, "localhost", (uint64_t)getpid(), 0);
		if (r < 0)
			cf_session_close(&s);
	}
	if (r < 0) {
		fprintf(stderr, "cf_lockbench: session to %s: %s\n", cf, strerror(-r));
		return 1;
	}
	hb.interval_ns = (long)s.welcome.hb_interval_ns;
	r = cf_session_open(&hb.s, transport, cf, key, CF_ROLE_SYSTEM, 5000);
	if (r == 0) {
		r = cf_session_attach(&hb.s, s.sys, s.epoch, s.token);
		if (r < 0)
			cf_session_close(&hb.s);
	}
	if (r < 0 || (r = -pthread_create(&th, NULL, hb_main, &hb)) < 0) {
		fprintf(stderr, "cf_lockbench: heartbeat connection: %s\n", strerror(-r));
		goto out_session;
	}
	off = cf_lock_off(&s.map, 0);
	len = (uint64_t)s.map.geo.lock_entries * 8u;
	buf = malloc(chunk);
	bw = calloc((size_t)passes, sizeof(*bw));
	if (!buf || !bw) {
		r = -ENOMEM;
		goto out_hb;
	}
	for (long i = -2; i < passes; i++) { /* two warm-up passes */
		uint64_t t0 = cf_mono_ns(), dt;

		for (uint64_t p = 0; p < len; p += chunk) {
			uint32_t n = (uint32_t)(len - p < chunk ? len - p : chunk);

			r = cf_session_read(&s, off + p, buf, n);
			if (r < 0) {
				fprintf(stderr, "cf_lockbench: READ %u bytes: %s\n", n, strerror(-r));
				goto out_hb;
			}
		}
		dt = cf_mono_ns() - t0;
		if (i >= 0)
			bw[i] = (double)len / ((double)dt / 1e9);
	}
	qsort(bw, (size_t)passes, sizeof(*bw), cmp_dbl);
	if (json)
		printf("{\"op\": \"read_bw\", \"transport\": \"%s\", \"region_bytes\": %llu, \"chunk\": %u, "
		       "\"passes\": %ld, \"min_Bps\": %.0f, \"median_Bps\": %.0f, \"max_Bps\": %.0f}\n",
		       transport, (unsigned long long)len, chunk, passes, bw[0], bw[passes / 2], bw[passes - 1]);
	else
		printf("READ %u-byte chunks over %llu bytes, %ld passes: min %.1f MB/s, median %.1f MB/s, max %.1f MB/s\n",
		       chunk, (unsigned long long)len, passes, bw[0] / 1e6, bw[passes / 2] / 1e6, bw[passes - 1] / 1e6);
	cf_session_goodbye(&s);
out_hb:
	hb.stop = 1;
	pthread_join(th, NULL);
	cf_session_close(&hb.s);
out_session:
	cf_session_close(&s);
	free(buf);
	free(bw);
	return r < 0 ? 1 : 0;
}
