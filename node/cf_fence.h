/* SPDX-License-Identifier: MIT */
/*
 * cf_fence.h - disk fencing of a failed system before its instance is backed out.
 *
 * The CF fence stops a failed system from changing the CF, but a system that is
 * only frozen may still hold a data-file write it decided on before it froze
 * (M6, docs/design.md §0: the model's counterexample "lease"). So before a counterpart writes a single
 * before-image, a fence agent must confirm the failed system can no longer
 * write the data directory:
 *   local    - the failed system runs on this host: SIGKILL through a pidfd,
 *              confirmed by its exit (pid reuse guarded by the process start
 *              time recorded at join). A process that is already gone is
 *              fenced.
 *   external - any program with the fence-agents calling convention
 *              (fence_ipmilan, fence_scsi, ...): options on stdin as
 *              "key=value" lines with action=off and plug=<system>; exit 0
 *              means fenced.
 *   auto     - (the default) local for a target on this host; for another
 *              host -EHOSTUNREACH, upon which the recovery waits out the
 *              target's watchdog if it announced one, else waits visibly
 *              (retried, logged, in cfctl status) for `cfctl fence-confirm`.
 *   none     - explicit, logged, unsafe: relies on the lease alone.
 */
#ifndef CF_FENCE_H
#define CF_FENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_layout.h"

enum cf_fence_kind { CF_FENCE_NONE = 0, CF_FENCE_LOCAL = 1, CF_FENCE_EXTERNAL = 2, CF_FENCE_AUTO = 3 };

#define CF_FENCE_MAX_ARGS 16
#define CF_FENCE_MAP_MAX 64
#define CF_FENCE_ARG_MAX 256 /* one "key=value" */

/* --fence-map: per system or host name, the options its agent needs (plug=2 ipaddr=...). */
struct cf_fence_map_entry {
	char name[CF_HOST_MAX]; /* a system name or a host name */
	char args[CF_FENCE_MAX_ARGS][CF_FENCE_ARG_MAX];
	int nargs;
};

struct cf_fence_cfg {
	enum cf_fence_kind kind;
	const char *agent;                 /* path, for CF_FENCE_EXTERNAL */
	const char *args[CF_FENCE_MAX_ARGS]; /* "key=value" extra options */
	int nargs;
	int timeout_ms; /* per attempt */
	int attempts;   /* tries before giving up */
	struct cf_fence_map_entry *map; /* NULL: no map (owned: cf_fence_map_free) */
	int nmap;
};

struct cf_fence_target {
	char name[CF_NAME_MAX];
	char host[CF_HOST_MAX];
	uint64_t pid;
	uint64_t starttime;
};

/* Parse "auto", "local", "none" or a path into cfg (defaults: 2 s per attempt, 3 attempts). */
int cf_fence_parse(struct cf_fence_cfg *cfg, const char *spec);
/*
 * Add "k=v" to an external agent's options: 0, -EINVAL (no key, no '=', or a
 * '=' or newline in the value: the agent reads one key=value a line on
 * stdin), -E2BIG.
 */
int cf_fence_add_arg(struct cf_fence_cfg *cfg, const char *kv);
/* 0 when kv is one well-formed "key=value" option line (see cf_fence_add_arg). */
int cf_fence_arg_check(const char *kv);
/*
 * Load a host map: lines "NAME key=value ..." (NAME a system or host name;
 * blank lines and '#' comments ignored). 0, or -EINVAL/-E2BIG/-errno with
 * why naming the line.
 */
int cf_fence_map_load(struct cf_fence_cfg *cfg, const char *path, char *why, size_t whylen);
void cf_fence_map_free(struct cf_fence_cfg *cfg);
/* The map entry for t: by system name first, then by host name; NULL if none. */
const struct cf_fence_map_entry *cf_fence_map_find(const struct cf_fence_cfg *cfg, const char *sys, const char *host);
/*
 * Unfence: run the external agent with action=on for this very system (name,
 * host) before it writes data (fence_scsi registers its key). 0 when the
 * agent confirmed; for a kind other than external, 0 without doing anything.
 */
int cf_fence_unfence(const struct cf_fence_cfg *cfg, const struct cf_fence_target *self, char *msg, size_t msglen);
/*
 * Fence t. 0 once confirmed; -EHOSTUNREACH when the local agent cannot reach
 * the target's host; -ETIMEDOUT / -EIO when the agent did not confirm after
 * every attempt. For CF_FENCE_NONE returns 0 without doing anything (the
 * caller logs the unsafe choice). msg receives a human-readable account.
 */
int cf_fence_run(const struct cf_fence_cfg *cfg, const struct cf_fence_target *t, char *msg, size_t msglen);
const char *cf_fence_kind_str(enum cf_fence_kind k);

/* /proc/PID/stat start time (field 22) of pid, or 0 if unknown. */
uint64_t cf_proc_starttime(uint64_t pid);

/*
 * Has every thread of process pid begun its exit (PF_EXITING, /proc/PID/task/
 * TID/stat)? Such a process writes nothing again: the local fence's
 * confirmation, before its memory is freed (cf_fence.c). true when it is
 * gone; false when a thread is not exiting or anything cannot be read.
 */
bool cf_fence_all_exiting(uint64_t pid);

#endif
