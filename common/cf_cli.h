/* SPDX-License-Identifier: MIT */
/*
 * cf_cli.h - what every cfplex program says the same way on its command line:
 * the version line, the one-line answer to an option getopt_long refused, and
 * how a number is read.
 *
 * CFPLEX_VERSION comes from one place, meson's project(version:), passed to
 * every target by add_project_arguments in the top-level meson.build.
 *
 * Usage: parse with an optstring that starts with ':' and opterr = 0, then
 *   case ':': case '?': return cf_cli_bad_option("cfctl", c, argv, EX_USAGE);
 */
#ifndef CF_CLI_H
#define CF_CLI_H

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cf_slog.h"

#ifndef CFPLEX_VERSION
#error "CFPLEX_VERSION is set by meson (project version); build with meson"
#endif

/*
 * Exit codes: one per cause in every program (the man pages' EXIT STATUS and
 * the README carry this table). The values above 64 are sysexits.h's.
 */
enum cf_exit {
	CF_EX_OK = 0,
	CF_EX_FAIL = 1,         /* another error (cfctl: failed or refused; health: degraded) */
	CF_EX_USAGE = 2,        /* command line: unknown option, bad or missing value */
	CF_EX_IMAGE = 3,        /* cfserver: the CF image was refused */
	CF_EX_LISTEN = 4,       /* cfserver: cannot listen */
	CF_EX_DUPLEX = 6,       /* cfserver: a secondary that cannot follow or must not take over */
	CF_EX_UNAVAILABLE = 69, /* the CF cannot be reached (EX_UNAVAILABLE) */
	CF_EX_OVER = 75,        /* cfnode: this incarnation is over, restart to rejoin (EX_TEMPFAIL) */
	CF_EX_KEY = 77,         /* a key file unusable, or the key refused by the CF (EX_NOPERM) */
	CF_EX_DATA = 78,        /* cfnode: the data directory needs the operator (EX_CONFIG) */
};

/* "PROG (cfplex) VERSION" on stdout, the format cfserver has always printed. */
static inline int cf_cli_version(const char *prog)
{
	printf("%s (cfplex) %s\n", prog, CFPLEX_VERSION);
	return fflush(stdout) ? 1 : 0;
}

/*
 * A number on a command line, the same in every program: decimal digits only
 * (no sign, no space, no base prefix: "010" is ten), at most UINT64_MAX; with
 * size_suffix, an optional K, M or G (powers of 1024, "KiB"/"KB" accepted).
 * 0 with *out set, -EINVAL (not a number), or -ERANGE (outside [min, max]).
 */
static inline int cf_cli_parse_u64(const char *s, int size_suffix, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long x;
	unsigned shift = 0;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno || end == s)
		return -EINVAL;
	if (size_suffix && *end) {
		switch (*end++) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		default: return -EINVAL;
		}
		if (*end == 'i')
			end++;
		if (*end == 'B')
			end++;
		if (x > (UINT64_MAX >> shift))
			return -ERANGE;
		x <<= shift;
	}
	if (*end)
		return -EINVAL;
	if (x < min || x > max)
		return -ERANGE;
	*out = x;
	return 0;
}

static inline int cf_cli_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t x;
	int r = cf_cli_parse_u64(s, 0, min, max, &x);

	if (r == 0)
		*out = (uint32_t)x;
	return r;
}

/*
 * After getopt_long returned c == '?' (unknown option) or ':' (missing value):
 * one line on stderr, no help text, and the program's usage exit code back.
 */
static inline int cf_cli_bad_option(const char *prog, int c, char *const argv[], int usage_rc)
{
	const char *word = optind > 0 ? argv[optind - 1] : "?";
	char shortopt[3] = { '-', (char)optopt, 0 };

	/* a short option inside a cluster (-qx): name the letter, not the word */
	if (optopt && !(word[0] == '-' && word[1] == '-'))
		word = shortopt;
	(void)prog; /* cf_slog_init named it */
	if (c == ':')
		cf_slog_usage("option '%s' needs a value (try --help)", word);
	else
		cf_slog_usage("unknown option '%s' (try --help)", word);
	return usage_rc;
}

#endif
