/* SPDX-License-Identifier: MIT */
/*
 * cfctl_data.c - cfctl verify, data-release and mkdata: the shared data
 * directory and its markers, read and written without a CF (see cfctl.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cfctl.h"
#include "cf_bank.h"
#include "cf_fence.h"
#include "cf_marker.h"
#include "cf_slog.h"
#include "cf_util.h"

static void show_markers(const char *dir);

int cfctl_verify(const struct cfctl_opts *o)
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

int cfctl_data_release(const struct cfctl_opts *o, const char *inst)
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

int cfctl_mkdata(const struct cfctl_opts *o)
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
