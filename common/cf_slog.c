/* SPDX-License-Identifier: MIT */
#include "cf_slog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cf_util.h"

int cf_slog_level = CF_SLOG_INFO;

static const char *prog = "cfplex";
static const char *ident = "cfplex";
static bool prefixed;
static bool mono;

/* syslog priorities (LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG) and the words of a line */
static const char *const level_prefix[] = { "<3>", "<4>", "<6>", "<7>" };
static const char *const level_word[] = { "error", "warning", "info", "debug" };
static const char *const level_names[] = { "err", "warn", "info", "debug" };

/* JOURNAL_STREAM is "DEVICE:INODE" of the journal's stream; stderr is that stream if they match */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int n = 0;

	if (!e || sscanf(e, "%llu:%llu%n", &dev, &ino, &n) != 2 || e[n])
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void cf_slog_init(const char *p)
{
	const char *e = getenv("CF_LOG_PREFIX");
	const char *c = getenv("CF_LOG_CLOCK");

	prog = ident = p;
	if (e && *e)
		prefixed = strcmp(e, "0") != 0;
	else
		prefixed = stderr_is_journal();
	mono = c && !strcmp(c, "monotonic");
}

void cf_slog_set_ident(const char *id)
{
	ident = id;
}

void cf_slog_force_prefix(void)
{
	prefixed = true;
}

bool cf_slog_prefixed(void)
{
	return prefixed;
}

static int put_time(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char hms[32];

	if (mono) {
		uint64_t ns = cf_mono_ns();
		return snprintf(buf, len, "%llu.%06llu", (unsigned long long)(ns / 1000000000ull),
				(unsigned long long)(ns % 1000000000ull / 1000ull));
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(hms, sizeof(hms), "%Y-%m-%dT%H:%M:%S", &tm);
	return snprintf(buf, len, "%s.%03ldZ", hms, ts.tv_nsec / 1000000L);
}

/* one write(2) per line, so lines of concurrent writers do not interleave */
static void put_line(char *line, size_t cap, int n)
{
	size_t len = n < 0 ? 0 : (size_t)n >= cap - 1 ? cap - 2 : (size_t)n;

	line[len++] = '\n';
	if (write(STDERR_FILENO, line, len) < 0)
		return;
}

void cf_slogv(int lvl, const char *fmt, va_list ap)
{
	char line[4096];
	int n = 0, m;

	if (lvl < CF_SLOG_ERR)
		lvl = CF_SLOG_ERR;
	if (lvl > cf_slog_level || lvl > CF_SLOG_DEBUG)
		return;
	if (prefixed)
		n += snprintf(line + n, sizeof(line) - (size_t)n, "%s", level_prefix[lvl]);
	n += put_time(line + n, sizeof(line) - (size_t)n);
	n += snprintf(line + n, sizeof(line) - (size_t)n, " %s %s: ", ident, level_word[lvl]);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	put_line(line, sizeof(line), m < 0 ? n : n + m);
}

void cf_slog(int lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cf_slogv(lvl, fmt, ap);
	va_end(ap);
}

void cf_slog_usage(const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n, m;

	n = snprintf(line, sizeof(line), "%s%s: ", prefixed ? level_prefix[CF_SLOG_ERR] : "", prog);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	put_line(line, sizeof(line), m < 0 ? n : n + m);
}

int cf_slog_level_parse(const char *s, int *lvl)
{
	for (int i = 0; i < (int)CF_ARRAY_SIZE(level_names); i++) {
		if (!strcmp(s, level_names[i]) || !strcmp(s, level_word[i]) || (s[0] == '0' + i && !s[1])) {
			*lvl = i;
			return 0;
		}
	}
	return -EINVAL;
}
