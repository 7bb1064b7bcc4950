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
