/* SPDX-License-Identifier: MIT */
/*
 * cfctl_common.c - what cfctl's commands share (see cfctl.h): opening the
 * console or monitor session, reading the image through it in chunks, and
 * printing names, JSON strings and failure causes. It calls no command.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "cfctl.h"
#include "cf_auth.h"
#include "cf_key.h"
#include "cf_session.h"
#include "cf_slog.h"

#define READ_CHUNK 32768u

/*
 * A console session (the cluster key), or with --key a monitor session (the
 * monitor key: cfctl metrics only).
 */
int cfctl_open_session(const struct cfctl_opts *o, struct cf_session *s, enum cf_role role)
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
			cf_session_error_msg(s) ? ": " : "", cf_session_error_msg(s) ? cf_session_error_msg(s) : "");
		return EX_FAIL;
	}
}

int cfctl_open_console(const struct cfctl_opts *o, struct cf_session *s)
{
	return cfctl_open_session(o, s, CF_ROLE_CONSOLE);
}

int cfctl_read_range(struct cf_session *s, uint64_t off, void *buf, uint64_t len)
{
	for (uint64_t p = 0; p < len; p += READ_CHUNK) {
		uint32_t n = (uint32_t)(len - p < READ_CHUNK ? len - p : READ_CHUNK);
		int r = cf_session_read(s, off + p, (uint8_t *)buf + p, n);
		if (r)
			return r;
	}
	return 0;
}

void cfctl_name_of(const char *field, char out[CF_NAME_MAX])
{
	memcpy(out, field, CF_NAME_MAX);
	out[CF_NAME_MAX - 1] = 0;
}

void cfctl_json_str(FILE *f, const char *s)
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

const char *cfctl_cause_str(uint64_t c)
{
	return c == CF_FAIL_NONE ? "-" : cf_fail_cause_str((uint32_t)c);
}
