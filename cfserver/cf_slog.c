/* SPDX-License-Identifier: MIT */
#include "cf_slog.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf_util.h"

int cfs_log_level = CFS_INFO;

static const char *const level_names[] = {"err", "warn", "info", "debug"};

void cfs_log(enum cfs_level lvl, const char *fmt, ...)
{
	char line[1024];
	uint64_t ns = cf_mono_ns();
	va_list ap;
	int n;

	if ((int)lvl > cfs_log_level)
		return;
	n = snprintf(line, sizeof(line), "%llu.%06llu %-5s ", (unsigned long long)(ns / 1000000000ull),
		     (unsigned long long)(ns % 1000000000ull / 1000ull), level_names[lvl]);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	/* one write(2) per line, so lines of concurrent writers do not interleave */
	strcat(line, "\n");
	if (write(STDERR_FILENO, line, strlen(line)) < 0)
		return;
}

int cfs_level_parse(const char *s, int *lvl)
{
	for (int i = 0; i < (int)CF_ARRAY_SIZE(level_names); i++) {
		if (!strcmp(s, level_names[i]) || (s[0] == '0' + i && !s[1])) {
			*lvl = i;
			return 0;
		}
	}
	if (!strcmp(s, "error") || !strcmp(s, "warning"))
		return *lvl = !strcmp(s, "error") ? CFS_ERR : CFS_WARN, 0;
	return -EINVAL;
}
