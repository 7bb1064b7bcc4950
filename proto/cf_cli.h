/* SPDX-License-Identifier: MIT */
/*
 * cf_cli.h - what every cfplex program says the same way on its command line:
 * the version line and the one-line answer to an option getopt_long refused.
 *
 * CFPLEX_VERSION comes from one place, meson's project(version:), passed to
 * every target by add_project_arguments in the top-level meson.build.
 *
 * Usage: parse with an optstring that starts with ':' and opterr = 0, then
 *   case ':': case '?': return cf_cli_bad_option("cfctl", c, argv, EX_USAGE);
 */
#ifndef CF_CLI_H
#define CF_CLI_H

#include <getopt.h>
#include <stdio.h>

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
