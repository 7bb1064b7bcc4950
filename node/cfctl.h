/* SPDX-License-Identifier: MIT */
/*
 * cfctl.h - what the files of cfctl share (internal, not installed): the
 * options, the exit codes, the session and output helpers, and the commands
 * of each family. Files, each calling only those listed after it:
 *   cfctl.c         main and option parsing, the console requests (recover,
 *                   fence-confirm, policy), keygen
 *   cfctl_status.c  status (--json, --watch), health, metrics
 *   cfctl_locks.c   locks, and the held-or-waiting rule status shares
 *   cfctl_data.c    verify, data-release, mkdata: the data directory, no CF
 *   cfctl_field.c   --field: fields of the JSON document status or locks prints
 *   cfctl_common.c  sessions, chunked reads, names and JSON strings
 */
#ifndef CFCTL_H
#define CFCTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cf_cli.h"
#include "cf_layout.h"
#include "cf_session.h"

#define EX_FAIL CF_EX_FAIL
#define EX_USAGE_ CF_EX_USAGE
#define EX_UNAVAILABLE_ CF_EX_UNAVAILABLE
#define EX_KEY CF_EX_KEY

struct cfctl_opts {
	const char *cf, *key, *mkey, *transport, *data, *on, *out;
	bool json, have_total, retry, watch;
	double watch_s;
	int64_t total;
	uint64_t accounts;
	int64_t balance;
	bool have_accounts, have_balance;
	bool force;
	/* --field QUERY, in the order given (status, locks) */
#define CFCTL_FIELDS_MAX 32u
	const char *fields[CFCTL_FIELDS_MAX];
	uint32_t nfields;
};

/* cfctl_common.c: sessions and output */
/* A console session (the cluster key), or with --key a monitor session (the monitor key: metrics only). */
int cfctl_open_session(const struct cfctl_opts *o, struct cf_session *s, enum cf_role role);
int cfctl_open_console(const struct cfctl_opts *o, struct cf_session *s);
/* READ len bytes at off, in chunks a frame holds. */
int cfctl_read_range(struct cf_session *s, uint64_t off, void *buf, uint64_t len);
/* A name field of the image as a C string. */
void cfctl_name_of(const char *field, char out[CF_NAME_MAX]);
/* s as a JSON string, quoted and escaped. */
void cfctl_json_str(FILE *f, const char *s);
/* A failure cause (enum cf_fail_cause) in words. */
const char *cfctl_cause_str(uint64_t c);

/* cfctl_field.c */
/* --field queries for cmd ("status", "locks"): 0, or EX_USAGE_ once the first bad one is said. */
int cfctl_fields_check(const char *cmd, const char *const *q, uint32_t n);
/*
 * print(o, arg, stdout) without --field; with it, print's JSON document
 * (o->json set) read back and answered a line per query on stdout.
 */
int cfctl_with_fields(const struct cfctl_opts *o, const char *arg,
		      int (*print)(const struct cfctl_opts *o, const char *arg, FILE *out));

/* cfctl_locks.c */
/* The record-list entry e of inst is held: the class's word w names inst in a mode covering e's (X covers S). */
bool cfctl_rec_held(const struct cf_rec_entry *e, uint64_t w, uint32_t inst);
void cfctl_rec_mode_str(const struct cf_rec_entry *e, uint64_t w, uint32_t inst, bool live, char *out, size_t cap);
int cfctl_locks(const struct cfctl_opts *o, const char *record);

/* cfctl_status.c */
int cfctl_status(const struct cfctl_opts *o);
int cfctl_status_watch(const struct cfctl_opts *o);
int cfctl_health(const struct cfctl_opts *o);
int cfctl_metrics(const struct cfctl_opts *o);

/* cfctl_data.c */
int cfctl_verify(const struct cfctl_opts *o);
int cfctl_data_release(const struct cfctl_opts *o, const char *inst);
int cfctl_mkdata(const struct cfctl_opts *o);

#endif
