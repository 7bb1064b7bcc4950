/* SPDX-License-Identifier: MIT */
/* cf_proc.c - see cf_proc.h. */
#include "cf_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cf_malloc_keep(size_t warm)
{
	void *p;

	(void)mallopt(M_TRIM_THRESHOLD, 256 << 20);
	(void)mallopt(M_MMAP_THRESHOLD, 16 << 20);
	if (!warm || warm >= (16u << 20) || !(p = malloc(warm)))
		return;
	explicit_bzero(p, warm); /* written, never elided: the pages are allocated */
	free(p);                 /* back to the top of the heap, which stays */
}

#define SPAWN_FDS_MAX 8

int cf_spawn(const char *path, char *const argv[], const int *fds, int nfds, int *pid)
{
	int moved[SPAWN_FDS_MAX], r = 0;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	pid_t p;

	if (nfds < 0 || nfds > SPAWN_FDS_MAX)
		return -EINVAL;
	/* a source below nfds could be overwritten by an earlier dup2 in the child */
	for (int i = 0; i < nfds; i++) {
		moved[i] = -1;
		if (fds[i] >= 0 && fds[i] < nfds && (moved[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, nfds)) < 0)
			r = -errno;
	}
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGTERM);
	if (!r && (r = -posix_spawn_file_actions_init(&fa)) == 0) {
		if ((r = -posix_spawnattr_init(&at)) == 0) {
			for (int i = 0; !r && i < nfds; i++)
				if (fds[i] >= 0)
					r = -posix_spawn_file_actions_adddup2(&fa, moved[i] >= 0 ? moved[i] : fds[i], i);
			if (!r)
				r = -posix_spawnattr_setsigmask(&at, &none);
			if (!r)
				r = -posix_spawnattr_setsigdefault(&at, &dfl);
			if (!r)
				r = -posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
			if (!r && (r = -posix_spawn(&p, path, &fa, &at, argv, environ)) == 0)
				*pid = (int)p;
			posix_spawnattr_destroy(&at);
		}
		posix_spawn_file_actions_destroy(&fa);
	}
	for (int i = 0; i < nfds; i++)
		if (moved[i] >= 0)
			close(moved[i]);
	return r;
}
