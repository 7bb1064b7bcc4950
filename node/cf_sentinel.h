/* SPDX-License-Identifier: MIT */
/*
 * cf_sentinel.h - a system's death told to the CF before its exit completes.
 *
 * The CF declares a system failed when one of its connections closes without
 * GOODBYE. A SIGKILLed process closes its sockets only at the end of its
 * exit, after the kernel has freed its memory: 1-2 ms for a system process
 * on a loaded 2-vCPU host, the largest part of a failover (bench/RESULTS.md).
 *
 * The sentinel is a small child process, started at JOIN: this very program
 * again (posix_spawn of /proc/self/exe, never a fork: cf_sentinel_start says
 * why), whose main() hands over to cf_sentinel_child(). It holds a copy of
 * the system's JOIN connection (tcp: a socket passed with SCM_RIGHTS) and
 * waits on a robust, process-shared mutex that the joining thread (the
 * agent's, which lives as long as the process) holds. A thread's robust
 * mutexes are released by the kernel at the start of its exit, before the
 * memory is freed, with the owner-died mark: the sentinel wakes, shuts the
 * connection down (shutdown(2) acts on the socket whoever else holds it, so
 * the CF sees its end at once) and exits. A clean leave stops it quietly
 * first. It never writes data and never talks to the CF: at worst (it died,
 * or could not start) the system's death is seen as before, when its own
 * sockets close.
 *
 * tcp only: a verbs connection ends when its device files are released,
 * which another process holding them would delay.
 */
#ifndef CF_SENTINEL_H
#define CF_SENTINEL_H

#include <stdbool.h>
#include <sys/types.h>

struct cf_sentinel_shm;

struct cf_sentinel {
	struct cf_sentinel_shm *shm; /* NULL: not running */
	int ctl;                     /* our end of the socketpair the fds travel on */
	pid_t pid;
};

/* argv[1] of the sentinel: the program's main() must call cf_sentinel_child() when it sees it. */
#define CF_SENTINEL_ARG "--cf-sentinel-child"

/*
 * Start the sentinel; the calling thread becomes the owner whose exit it
 * watches (it must live as long as the process: cfnode's main thread).
 * Only for a program whose main() calls cf_sentinel_child() first.
 * 0 or -errno (nothing started: the system works without it).
 */
int cf_sentinel_start(struct cf_sentinel *s);
/*
 * The sentinel's side, from main(argc, argv) when argv[1] is
 * CF_SENTINEL_ARG: never returns when started by cf_sentinel_start();
 * 2 for arguments it did not make (main exits with it).
 */
int cf_sentinel_child(int argc, char **argv);
/* The connection to shut down when the owner dies (replaces the one before). 0 or -errno. */
int cf_sentinel_watch(struct cf_sentinel *s, int fd);
/* Stop it without touching the connection (a clean leave), and reap it. From the owner thread. */
void cf_sentinel_stop(struct cf_sentinel *s);

#endif
