/* SPDX-License-Identifier: MIT */
/*
 * cf_slog.h - cfserver's log: one line per event on stderr,
 * "<monotonic seconds> <level> <message>". The daemon logs at decision points;
 * the transport and image modules return -errno and let the caller log, except
 * for per-connection events that only the transport sees (malformed frames).
 */
#ifndef CF_SLOG_H
#define CF_SLOG_H

enum cfs_level { CFS_ERR = 0, CFS_WARN = 1, CFS_INFO = 2, CFS_DEBUG = 3 };

extern int cfs_log_level;

void cfs_log(enum cfs_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parse "err|warn|info|debug" (or 0..3): 0 or -EINVAL. */
int cfs_level_parse(const char *s, int *lvl);

#define cfs_err(...) cfs_log(CFS_ERR, __VA_ARGS__)
#define cfs_warn(...) cfs_log(CFS_WARN, __VA_ARGS__)
#define cfs_info(...)                              \
	do {                                       \
		if (cfs_log_level >= CFS_INFO)     \
			cfs_log(CFS_INFO, __VA_ARGS__); \
	} while (0)
#define cfs_debug(...)                              \
	do {                                        \
		if (cfs_log_level >= CFS_DEBUG)     \
			cfs_log(CFS_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
