/* SPDX-License-Identifier: MIT */
/*
 * cf_sentinel.h - a system's death told to the CF before its exit completes.
 *
 * The CF declares a system failed when one of its connections closes without
 * GOODBYE. A SIGKILLed process closes its sockets (and releases its verbs
 * device files, which ends its QPs) only at the end of its exit, after the
 * kernel has freed its memory: 1-2 ms for a system process on a loaded
 * 2-vCPU host, the largest part of a failover (bench/RESULTS.md), and more
 * the larger the process.
 *
 * The sentinel is a small child process, started at JOIN: this very program
 * again (posix_spawn of /proc/self/exe, never a fork: cf_sentinel_start says
 * why), whose main() hands over to cf_sentinel_child(). It opens a connection
 * of its own to the CF, over the system's transport, and names itself the
 * incarnation's sentinel with the incarnation's token (CF_CTRL_SENTINEL): a
 * connection with no grants whose close means nothing. It then waits on a
 * robust, process-shared mutex that the joining thread (the agent's, which
 * lives as long as the process) holds. A thread's robust mutexes are released
 * by the kernel at the start of its exit, before the memory is freed, with the
 * owner-died mark: the sentinel wakes, says DIED on its connection (the CF
 * declares the system failed, cause "process exiting") and exits. A clean
 * leave stops it quietly first; a switch of CF gives it the new CF to attach
 * to. It never writes data: at worst (it died, could not start, or could not
 * attach) the system's death is seen as before, when its own connections
 * close. The same mechanism on tcp and verbs: the sentinel shares no
 * connection with its system, so nothing of the system's outlives it.
 */
#ifndef CF_SENTINEL_H
#define CF_SENTINEL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cf_wire.h"

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
/* The CF and incarnation to watch for: the sentinel's connection to make (replaces the one before). */
struct cf_sentinel_target {
	char transport[8]; /* "tcp" or "verbs" */
	char addr[128];    /* one CF: the one the system's JOIN connection reached */
	uint8_t key[CF_KEY_LEN];
	uint32_t sys, epoch;
	uint64_t token;
	int32_t connect_timeout_ms;
	/* its log lines: the system's IDENT ("cfnode[SYS1]"), level and priority prefix (cf_slog.h) */
	char log_ident[CF_NAME_MAX + 16];
	int32_t log_level;
	uint32_t log_prefix;
};
/* Give the sentinel its target; it connects on its own, without holding up the caller. 0 or -errno. */
int cf_sentinel_watch(struct cf_sentinel *s, const struct cf_sentinel_target *t);
/* Stop it without a word to the CF (a clean leave), and reap it. From the owner thread. */
void cf_sentinel_stop(struct cf_sentinel *s);

#endif
