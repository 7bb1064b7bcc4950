/* SPDX-License-Identifier: MIT */
#include "cf_fault.h"

#ifdef CF_FAULT_INJECTION
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct {
	atomic_int state; /* 0 unparsed, 1 armed, 2 disarmed/fired */
	char point[128];
	char action[16];
	atomic_long skip;
} f;

static void parse(void)
{
	const char *e = getenv("CF_FAULT");
	int expect = 0;

	if (!atomic_compare_exchange_strong(&f.state, &expect, 3))
		return;
	if (!e || !*e) {
		atomic_store(&f.state, 2);
		return;
	}
	char buf[128];
	snprintf(buf, sizeof(buf), "%s", e);
	char *a = strchr(buf, ':');
	char *k = NULL;
	if (a) {
		*a++ = 0;
		k = strchr(a, ':');
		if (k)
			*k++ = 0;
	}
	snprintf(f.point, sizeof(f.point), "%s", buf);
	snprintf(f.action, sizeof(f.action), "%s", a && *a ? a : "kill");
	atomic_store(&f.skip, k ? atol(k) : 0);
	atomic_store(&f.state, 1);
}

int cf_fault_point(const char *name)
{
	int s = atomic_load(&f.state);

	if (s == 0 || s == 3) {
		parse();
		s = atomic_load(&f.state);
	}
	if (s != 1 || strcmp(name, f.point) != 0)
		return 0;
	if (atomic_fetch_sub(&f.skip, 1) > 0)
		return 0;
	atomic_store(&f.state, 2);
	if (getenv("CF_FAULT_LOG"))
		fprintf(stderr, "cf-fault: %s fires (%s) in pid %d\n", name, f.action, (int)getpid());
	if (!strcmp(f.action, "fail"))
		return 1;
	if (!strcmp(f.action, "stop"))
		raise(SIGSTOP);
	else if (!strcmp(f.action, "abort"))
		abort();
	else
		raise(SIGKILL);
	return 0;
}
#endif
