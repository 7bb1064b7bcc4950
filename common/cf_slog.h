/* SPDX-License-Identifier: MIT */
/*
 * cf_slog.h - the one log of cfserver, cfnode and cfctl: one line per event on
 * stderr, written with one write(2) so that threads do not interleave,
 *
 *   [<P>]2026-12-02T06:25:15.366Z IDENT LEVEL: message
 *
 * IDENT is "cfserver", "cfnode[SYSTEM]" or "cfctl"; LEVEL is error, warning,
 * info or debug (the levels err, warn, info, debug of --log-level); the time
 * is the wall clock in UTC, milliseconds. <P> is the syslog priority (3, 4, 6,
 * 7) that journald reads (sd-daemon(3)): written when stderr is the journal's
 * stream (JOURNAL_STREAM names its device:inode, systemd.exec(5)), or when
 * asked (--log-prefix, CF_LOG_PREFIX=1), so that journalctl -p err filters.
 * CF_LOG_CLOCK=monotonic writes CLOCK_MONOTONIC seconds.microseconds in place
 * of the time (bench/failover.py measures against its own monotonic clock).
 *
 * Command-line errors (exit 2) are answers to the command line, not events:
 * cf_slog_usage writes "PROG: message", with the <3> prefix under the same
 * rule. Library code does not log (STYLE.md): libcfnode hands its lines to a
 * callback, which cfnode points here.
 */
#ifndef CF_SLOG_H
#define CF_SLOG_H

#include <stdarg.h>
#include <stdbool.h>

enum cf_slog_level { CF_SLOG_ERR = 0, CF_SLOG_WARN = 1, CF_SLOG_INFO = 2, CF_SLOG_DEBUG = 3 };

/* lines above this level are dropped; default CF_SLOG_INFO */
extern int cf_slog_level;

/*
 * Name the program (kept, not copied: a static or argv string) and decide the
 * prefix from the environment. Call first in main.
 */
void cf_slog_init(const char *prog);
/* The IDENT of every later line (kept, not copied); default: the program name. */
void cf_slog_set_ident(const char *ident);
/* --log-prefix: the priority prefix even where stderr is not the journal. */
void cf_slog_force_prefix(void);
/* Is the prefix written? (the tests' view of the decision) */
bool cf_slog_prefixed(void);
/* Parse "err|warn|info|debug" (also "error", "warning", or 0..3): 0 or -EINVAL. */
int cf_slog_level_parse(const char *s, int *lvl);

void cf_slog(int lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cf_slogv(int lvl, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* "PROG: message" for a command-line error (see above) */
void cf_slog_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* the level test inline, so a dropped debug line does not format its arguments */
#define cf_slog_at(lvl, ...)                      \
	do {                                      \
		if (cf_slog_level >= (lvl))       \
			cf_slog((lvl), __VA_ARGS__); \
	} while (0)
#define cf_slog_err(...) cf_slog_at(CF_SLOG_ERR, __VA_ARGS__)
#define cf_slog_warn(...) cf_slog_at(CF_SLOG_WARN, __VA_ARGS__)
#define cf_slog_info(...) cf_slog_at(CF_SLOG_INFO, __VA_ARGS__)
#define cf_slog_debug(...) cf_slog_at(CF_SLOG_DEBUG, __VA_ARGS__)

#endif
