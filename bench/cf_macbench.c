/* SPDX-License-Identifier: MIT */
/*
 * cf_macbench - the CPU cost of frame integrity (proto/cf_auth.h): ns to seal
 * one frame, and to seal and check it (what one frame costs its two ends), for
 * a CAS request (48 bytes + tag), a CAS answer (32 + tag) and a full 64 KiB
 * WRITE, on this CPU, one thread. A CAS round trip costs the request's and the
 * answer's seal+check. Median of 15 runs of N frames each (N/500 for 64 KiB).
 *   cf_macbench [N]   (default 200000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_auth.h"
#include "cf_util.h"

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double per_frame_ns(size_t body, long n, int check)
{
	static uint8_t f[sizeof(struct cf_frame_hdr) + CF_FRAME_MAX_PAYLOAD + 64];
	struct cf_frame_hdr h = {.len = (uint32_t)(sizeof(h) + body + CF_FRAME_TAG_LEN), .op = CF_OP_CAS,
				 .flags = CF_FF_MAC};
	struct cf_frame_mac tx, rx;
	uint8_t key[CF_KEY_LEN];
	double runs[15];

	cf_auth_nonce(key);
	memset(f, 0x5a, sizeof(f));
	for (int r = 0; r < 15; r++) {
		uint64_t t0;
		cf_frame_mac_init(&tx, key);
		cf_frame_mac_init(&rx, key);
		t0 = cf_mono_ns();
		for (long i = 0; i < n; i++) {
			h.id = (uint64_t)i;
			memcpy(f, &h, sizeof(h));
			if (cf_frame_seal(&tx, f, h.len) < 0 || (check && cf_frame_open(&rx, f, h.len) < 0)) {
				fprintf(stderr, "cf_macbench: seal/open failed\n");
				exit(1);
			}
		}
		runs[r] = (double)(cf_mono_ns() - t0) / (double)n;
	}
	qsort(runs, 15, sizeof(runs[0]), cmp);
	return runs[7];
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 200000;
	static const struct {
		const char *what;
		size_t body;
	} fr[] = {
		{"CAS request (48 B + tag)", 32},
		{"CAS answer (32 B + tag)", 16},
		{"WRITE 64 KiB", 16 + CF_FRAME_MAX_PAYLOAD},
	};

	if (cf_auth_init() < 0 || n <= 0)
		return 1;
	for (size_t i = 0; i < sizeof(fr) / sizeof(fr[0]); i++) {
		long k = fr[i].body > 4096 ? (n / 500 > 0 ? n / 500 : 1) : n;
		double seal = per_frame_ns(fr[i].body, k, 0), both = per_frame_ns(fr[i].body, k, 1);
		printf("%-26s seal %8.1f ns  seal+check %8.1f ns\n", fr[i].what, seal, both);
	}
	return 0;
}
