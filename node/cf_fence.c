/* SPDX-License-Identifier: MIT */
#include "cf_fence.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cf_proc.h"
#include "cf_util.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

const char *cf_fence_kind_str(enum cf_fence_kind k)
{
	switch (k) {
	case CF_FENCE_NONE: return "none";
	case CF_FENCE_LOCAL: return "local";
	case CF_FENCE_EXTERNAL: return "external";
	case CF_FENCE_AUTO: return "auto";
	}
	return "?";
}

int cf_fence_parse(struct cf_fence_cfg *cfg, const char *spec)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->timeout_ms = 2000;
	cfg->attempts = 3;
	if (!spec || !*spec)
		return -EINVAL;
	if (!strcmp(spec, "auto"))
		cfg->kind = CF_FENCE_AUTO;
	else if (!strcmp(spec, "local"))
		cfg->kind = CF_FENCE_LOCAL;
	else if (!strcmp(spec, "none"))
		cfg->kind = CF_FENCE_NONE;
	else if (spec[0] == '/') {
		if (access(spec, X_OK) < 0)
			return -errno;
		cfg->kind = CF_FENCE_EXTERNAL;
		cfg->agent = spec;
	} else
		return -EINVAL;
	return 0;
}

int cf_fence_arg_check(const char *kv)
{
	const char *eq = strchr(kv, '=');

	/* one option a line on the agent's stdin: a newline would smuggle in another (action=...) */
	if (!eq || eq == kv || strchr(kv, '\n') || strchr(kv, '\r') || strchr(eq + 1, '='))
		return -EINVAL;
	if (strlen(kv) >= CF_FENCE_ARG_MAX)
		return -E2BIG;
	return 0;
}

int cf_fence_add_arg(struct cf_fence_cfg *cfg, const char *kv)
{
	int r = cf_fence_arg_check(kv);

	if (r < 0)
		return r;
	if (cfg->nargs >= CF_FENCE_MAX_ARGS)
		return -E2BIG;
	cfg->args[cfg->nargs++] = kv;
	return 0;
}

void cf_fence_map_free(struct cf_fence_cfg *cfg)
{
	free(cfg->map);
	cfg->map = NULL;
	cfg->nmap = 0;
}

int cf_fence_map_load(struct cf_fence_cfg *cfg, const char *path, char *why, size_t whylen)
{
	char line[4096];
	FILE *f;
	int ln = 0, r = 0;

	why[0] = 0;
	cf_fence_map_free(cfg);
	cfg->map = calloc(CF_FENCE_MAP_MAX, sizeof(*cfg->map));
	if (!cfg->map)
		return -ENOMEM;
	f = fopen(path, "re");
	if (!f) {
		r = -errno;
		snprintf(why, whylen, "%s: %s", path, strerror(-r));
		goto err_free;
	}
	while (fgets(line, sizeof(line), f)) {
		struct cf_fence_map_entry *e;
		char *save = NULL, *tok;
		ln++;
		if (!strchr(line, '\n') && !feof(f)) {
			r = -E2BIG;
			snprintf(why, whylen, "%s:%d: line too long", path, ln);
			goto err_close;
		}
		line[strcspn(line, "\r\n")] = 0;
		tok = strtok_r(line, " \t", &save);
		if (!tok || tok[0] == '#')
			continue;
		if (strlen(tok) >= CF_HOST_MAX || strchr(tok, '=')) {
			r = -EINVAL;
			snprintf(why, whylen, "%s:%d: '%s' is not a system or host name", path, ln, tok);
			goto err_close;
		}
		if (cfg->nmap >= CF_FENCE_MAP_MAX) {
			r = -E2BIG;
			snprintf(why, whylen, "%s:%d: more than %d entries", path, ln, CF_FENCE_MAP_MAX);
			goto err_close;
		}
		e = &cfg->map[cfg->nmap];
		snprintf(e->name, sizeof(e->name), "%s", tok);
		while ((tok = strtok_r(NULL, " \t", &save))) {
			if (tok[0] == '#')
				break;
			r = cf_fence_arg_check(tok);
			if (r == 0 && e->nargs >= CF_FENCE_MAX_ARGS)
				r = -E2BIG;
			if (r < 0) {
				snprintf(why, whylen, "%s:%d: bad option '%.64s': one key=value, no '=' or newline in the value",
					 path, ln, tok);
				goto err_close;
			}
			snprintf(e->args[e->nargs++], CF_FENCE_ARG_MAX, "%s", tok);
		}
		cfg->nmap++;
	}
	fclose(f);
	return 0;
err_close:
	fclose(f);
err_free:
	cf_fence_map_free(cfg);
	return r;
}

const struct cf_fence_map_entry *cf_fence_map_find(const struct cf_fence_cfg *cfg, const char *sys, const char *host)
{
	for (int i = 0; i < cfg->nmap; i++)
		if (!strcmp(cfg->map[i].name, sys))
			return &cfg->map[i];
	for (int i = 0; host && host[0] && i < cfg->nmap; i++)
		if (!strcmp(cfg->map[i].name, host))
			return &cfg->map[i];
	return NULL;
}

uint64_t cf_proc_starttime(uint64_t pid)
{
	char path[64], buf[1024];
	unsigned long long st = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%llu/stat", (unsigned long long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* comm may hold spaces and parentheses: fields resume after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++;
	/* field 3 is state; starttime is field 22 → skip 19 more fields */
	for (int f = 3; f < 22 && p; f++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &st) != 1)
		return 0;
	return st;
}

static bool same_host(const struct cf_fence_target *t)
{
	char host[CF_HOST_MAX] = "";

	gethostname(host, sizeof(host) - 1);
	return t->host[0] && strncmp(host, t->host, sizeof(host)) == 0;
}

/* The executable of pid, as a path (" (deleted)" dropped: replaced by an upgrade in place). */
static int exe_path(const char *proc, char *out, size_t cap)
{
	ssize_t n = readlink(proc, out, cap - 1);
	size_t k;

	if (n < 0)
		return -errno;
	out[n] = 0;
	k = (size_t)n;
	if (k > 10 && !strcmp(out + k - 10, " (deleted)"))
		out[k - 10] = 0;
	return 0;
}

/*
 * Is pid recognisably a process of the same cfplex program as this one, run
 * by the same user? The pid and start time of a failed system come from its
 * own JOIN, which the CF cannot check (docs/design.md §7, threat model): a buggy or hostile member
 * could name any process of this host. 0, or -EPERM with the reason.
 */
static int same_program(uint64_t pid, char *why, size_t len)
{
	char self[PATH_MAX], other[PATH_MAX], proc[64];
	struct stat st;
	int r;

	snprintf(proc, sizeof(proc), "/proc/%llu", (unsigned long long)pid);
	if (stat(proc, &st) < 0)
		return -errno;
	if (st.st_uid != geteuid()) {
		snprintf(why, len, "it belongs to uid %u, not %u", (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	snprintf(proc, sizeof(proc), "/proc/%llu/exe", (unsigned long long)pid);
	if ((r = exe_path("/proc/self/exe", self, sizeof(self))) < 0) {
		snprintf(why, len, "this process's executable cannot be read: %s", strerror(-r));
		return -EPERM;
	}
	if ((r = exe_path(proc, other, sizeof(other))) < 0) {
		/* a process past its exit's memory teardown (or a kernel thread) has no exe */
		snprintf(why, len, "its executable cannot be read: %s", strerror(-r));
		return -ENOEXEC;
	}
	if (strcmp(self, other)) {
		snprintf(why, len, "it runs %.200s, not %.200s", other, self);
		return -EPERM;
	}
	return 0;
}

/* Has the process of this pidfd exited? (Its pidfd turns readable then.) */
static bool exited(int pidfd)
{
	struct pollfd pfd = {.fd = pidfd, .events = POLLIN};

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

/*
 * Has every thread of pid begun its exit? A thread's flags word in
 * /proc/PID/task/TID/stat (proc(5), field 9) carries PF_EXITING from the
 * first step of do_exit on, for good. Such a thread has left every system
 * call and runs no user code: it issues no write again. A write it was
 * making when the SIGKILL came finished first (a thread in a pwrite or an
 * O_DIRECT write leaves it only when the write is done; cfplex uses no
 * asynchronous I/O), and what it wrote is in this host's page cache, which
 * the counterpart's writes follow. What is left of its exit is freeing its
 * memory, then closing its files: on a loaded 2-vCPU host 1-2 ms for a
 * system process, and what the pidfd would wait for. true also when the
 * process is gone; false when anything cannot be read (cf_fence.h).
 */
#define PF_EXITING_ 0x00000004u
bool cf_fence_all_exiting(uint64_t pid)
{
	char path[96], buf[512];
	struct dirent *de;
	bool all = true;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%llu/task", (unsigned long long)pid);
	d = opendir(path);
	if (!d)
		return errno == ENOENT;
	while (all && (de = readdir(d)) != NULL) {
		char *end, *p;
		unsigned long long flags;
		ssize_t n;
		int fd, k;
		long tid = strtol(de->d_name, &end, 10);

		if (tid <= 0 || *end)
			continue;
		snprintf(path, sizeof(path), "/proc/%llu/task/%ld/stat", (unsigned long long)pid, tid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			all = errno == ENOENT; /* reaped meanwhile: exited */
			continue;
		}
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0) {
			all = n < 0 && errno == ESRCH;
			continue;
		}
		buf[n] = 0;
		/* "tid (comm) state ppid pgrp session tty_nr tpgid flags ...": comm may hold anything */
		p = strrchr(buf, ')');
		for (k = 0; p && k < 7; k++)
			p = strchr(p + 1, ' ');
		if (!p || sscanf(p + 1, "%llu", &flags) != 1) {
			all = false;
			continue;
		}
		all = (flags & PF_EXITING_) != 0;
	}
	closedir(d);
	return all;
}

/*
 * Wait until the process of pidfd fd (pid) cannot write any more: it exited
 * (its pidfd turns readable) or every thread of it is exiting (all_exiting),
 * whichever comes first; at most timeout_ms. 1 when it exited, 2 when every
 * thread is exiting, 0 on timeout, -errno. Polled every 100 us.
 */
static int wait_unable(int fd, uint64_t pid, int timeout_ms)
{
	uint64_t deadline = cf_mono_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000ull;
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	struct timespec tick = {.tv_sec = 0, .tv_nsec = 100000};

	for (;;) {
		int r;

		if (exited(fd))
			return 1;
		if (cf_fence_all_exiting(pid))
			return 2;
		if (cf_mono_ns() >= deadline)
			return 0;
		r = ppoll(&pfd, 1, &tick, NULL);
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/*
 * After the SIGKILL, each thread of the victim (recognised: its identity was
 * just checked, and the pidfd pins it) gets the lowest real-time priority, so
 * that its exit runs at once instead of queueing behind the survivors' work:
 * the exit frees the process's memory before it can be confirmed, and a frozen
 * system's threads, woken by the kill at normal priority on a busy machine,
 * took up to 6 ms to get there (the disk fence's p99 under SIGSTOP). After,
 * not before: a killed thread runs no more user code, so a live victim spinning
 * at that priority cannot hold off the kill itself. Best effort: without the
 * privilege, or for a thread already gone, nothing changes.
 */
static void hasten_exit(uint64_t pid, int pidfd)
{
	struct sched_param sp = {.sched_priority = 1};
	char path[64];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%llu/task", (unsigned long long)pid);
	d = opendir(path);
	if (!d)
		return;
	/* once it has exited, its pid (and its threads' ids) may be reaped and reused: stop */
	while (!exited(pidfd) && (de = readdir(d)) != NULL) {
		char *end;
		long tid = strtol(de->d_name, &end, 10);
		if (tid > 0 && *end == 0)
			(void)sched_setscheduler((pid_t)tid, SCHED_FIFO, &sp);
	}
	closedir(d);
}

static int fence_local(const struct cf_fence_cfg *cfg, const struct cf_fence_target *t, char *msg, size_t len)
{
	char host[CF_HOST_MAX] = "";
	int fd, r;

	gethostname(host, sizeof(host) - 1);
	if (strncmp(host, t->host, sizeof(host)) != 0) {
		snprintf(msg, len, "%s fence agent cannot reach %s on host %s (this is %s)",
			 cfg->kind == CF_FENCE_AUTO ? "auto" : "local", t->name, t->host, host);
		return -EHOSTUNREACH;
	}
	if (t->pid <= 1 || t->pid > INT32_MAX) {
		snprintf(msg, len, "no usable pid recorded for %s", t->name);
		return -EINVAL;
	}
	fd = (int)syscall(SYS_pidfd_open, (pid_t)t->pid, 0);
	if (fd < 0) {
		if (errno == ESRCH) {
			snprintf(msg, len, "%s (pid %llu) already gone", t->name, (unsigned long long)t->pid);
			return 0;
		}
		r = -errno;
		snprintf(msg, len, "pidfd_open(%llu): %s", (unsigned long long)t->pid, strerror(-r));
		return r;
	}
	/*
	 * Already exited (a zombie its parent has not reaped yet): it cannot
	 * write, and its executable can no longer be read, so the identity check
	 * below would refuse it. The pidfd is readable once the process exited.
	 */
	if (exited(fd)) {
		close(fd);
		snprintf(msg, len, "%s (pid %llu) already gone (exited)", t->name, (unsigned long long)t->pid);
		return 0;
	}
	/*
	 * The pidfd pins this process. If its start time differs from the one
	 * recorded at join, the pid was reused: the system we must fence is gone.
	 */
	uint64_t st = cf_proc_starttime(t->pid);
	if (!st) {
		/*
		 * The pidfd says it runs, yet its start time cannot be read
		 * (/proc mounted hidepid, an unreadable stat): nothing proves the
		 * pid was reused, so it is not "gone". Not fenced; the caller retries.
		 */
		close(fd);
		snprintf(msg, len, "%s (pid %llu) runs but its start time cannot be read (/proc/%llu/stat): not fenced",
			 t->name, (unsigned long long)t->pid, (unsigned long long)t->pid);
		return -EIO;
	}
	if (!t->starttime) {
		close(fd);
		snprintf(msg, len, "no process start time recorded for %s: pid %llu may be anything now, not killed",
			 t->name, (unsigned long long)t->pid);
		return -EPERM;
	}
	if (st != t->starttime) {
		close(fd);
		snprintf(msg, len, "%s (pid %llu) already gone (pid reused)", t->name, (unsigned long long)t->pid);
		return 0;
	}
	/* kill only what is recognisably a system of ours: never an unrelated process */
	{
		char why[480];
		r = same_program(t->pid, why, sizeof(why));
		if (r == -ENOEXEC) {
			/*
			 * No executable: most likely exiting (a SIGKILLed process
			 * loses it when its main thread exits, before the others
			 * are done). Every thread exiting, or the pinned pidfd
			 * turning readable, says so; anything else stays refused.
			 */
			r = wait_unable(fd, t->pid, cfg->timeout_ms);
			if (r == 2) {
				close(fd);
				snprintf(msg, len, "%s (pid %llu) dying, exit confirmed (every thread exiting)", t->name,
					 (unsigned long long)t->pid);
				return 0;
			}
			r = r == 1 ? -ENOENT : -EPERM;
		}
		if (r == -ESRCH || r == -ENOENT) {
			close(fd);
			snprintf(msg, len, "%s (pid %llu) already gone", t->name, (unsigned long long)t->pid);
			return 0;
		}
		if (r < 0) {
			close(fd);
			snprintf(msg, len, "pid %llu recorded for %s is not a cfplex system process: %s; not killed",
				 (unsigned long long)t->pid, t->name, r == -EPERM ? why : strerror(-r));
			return -EPERM;
		}
	}
	if (syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0) < 0 && errno != ESRCH) {
		r = -errno;
		close(fd);
		snprintf(msg, len, "SIGKILL %s (pid %llu): %s", t->name, (unsigned long long)t->pid, strerror(-r));
		return r;
	}
	hasten_exit(t->pid, fd);
	/* Our confirmation: every thread exiting, or the process gone (wait_unable). */
	r = wait_unable(fd, t->pid, cfg->timeout_ms);
	close(fd);
	if (r == 0) {
		snprintf(msg, len, "%s (pid %llu) did not exit within %d ms of SIGKILL", t->name,
			 (unsigned long long)t->pid, cfg->timeout_ms);
		return -ETIMEDOUT;
	}
	if (r < 0)
		return r;
	snprintf(msg, len, "%s (pid %llu) killed, exit confirmed (%s)", t->name, (unsigned long long)t->pid,
		 r == 1 ? "exited" : "every thread exiting");
	return 0;
}

static int fence_external(const struct cf_fence_cfg *cfg, const struct cf_fence_target *t, const char *action,
			  char *msg, size_t len)
{
	const struct cf_fence_map_entry *me = cf_fence_map_find(cfg, t->name, t->host);
	int in[2], status = 0, r;
	int pid;
	uint64_t deadline;

	/*
	 * The target's name and host come from the CF image (the failed system
	 * wrote its host at JOIN): nothing that is not one plain value goes to
	 * the agent's stdin.
	 */
	if (strpbrk(t->name, "=\n\r") || strpbrk(t->host, "=\n\r")) {
		snprintf(msg, len, "refusing to pass system '%.16s' host '%.64s' to fence agent %s: '=' or newline in a value",
			 t->name, t->host, cfg->agent);
		return -EINVAL;
	}

	if (pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	/* stdin from the pipe; spawned, not forked (cf_spawn: the counterpart's pages stay its own) */
	{
		char *argv[] = {(char *)cfg->agent, NULL};
		r = cf_spawn(cfg->agent, argv, (int[]){in[0]}, 1, &pid);
	}
	close(in[0]);
	if (r < 0) {
		close(in[1]);
		snprintf(msg, len, "fence agent %s cannot be run: %s", cfg->agent, strerror(-r));
		return r;
	}
	/* fence-agents convention: options on stdin, one key=value a line. */
	dprintf(in[1], "action=%s\nplug=%s\nnodename=%s\n", action, t->name, t->host);
	for (int i = 0; i < cfg->nargs; i++)
		dprintf(in[1], "%s\n", cfg->args[i]);
	for (int i = 0; me && i < me->nargs; i++)
		dprintf(in[1], "%s\n", me->args[i]);
	close(in[1]);
	deadline = cf_mono_ns() + (uint64_t)cfg->timeout_ms * 1000000ull;
	for (;;) {
		r = (int)waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (cf_mono_ns() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			snprintf(msg, len, "fence agent %s timed out after %d ms for %s", cfg->agent, cfg->timeout_ms,
				 t->name);
			return -ETIMEDOUT;
		}
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		snprintf(msg, len, "fence agent %s confirmed %s %s", cfg->agent, t->name, action);
		return 0;
	}
	snprintf(msg, len, "fence agent %s failed for %s%s (%s %d)", cfg->agent, t->name,
		 strcmp(action, "off") ? " action=on" : "",
		 WIFEXITED(status) ? "exit" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	return -EIO;
}

int cf_fence_run(const struct cf_fence_cfg *cfg, const struct cf_fence_target *t, char *msg, size_t msglen)
{
	int r = -EINVAL;

	msg[0] = 0;
	if (cfg->kind == CF_FENCE_NONE) {
		snprintf(msg, msglen, "fence agent none: %s NOT fenced from the data directory (unsafe)", t->name);
		return 0;
	}
	/*
	 * A target on this very host (a system recovering its own previous
	 * incarnation, or a peer beside us) is fenced locally even when an
	 * external agent is configured: a power fence would power off its caller,
	 * and the pidfd kill confirmed by the exit is a complete fence here.
	 */
	bool here = cfg->kind == CF_FENCE_EXTERNAL && t->pid && same_host(t);

	for (int a = 0; a < (cfg->attempts > 0 ? cfg->attempts : 1); a++) {
		r = cfg->kind == CF_FENCE_EXTERNAL && !here ? fence_external(cfg, t, "off", msg, msglen)
							    : fence_local(cfg, t, msg, msglen);
		/* A host we cannot reach, or a process we will not kill, does not change by retrying now. */
		if (r == 0 || r == -EHOSTUNREACH || r == -EINVAL || r == -EPERM)
			break;
	}
	return r;
}

int cf_fence_unfence(const struct cf_fence_cfg *cfg, const struct cf_fence_target *self, char *msg, size_t msglen)
{
	int r = -EINVAL;

	struct cf_fence_cfg slow = *cfg;

	msg[0] = 0;
	if (cfg->kind != CF_FENCE_EXTERNAL)
		return 0;
	/* off the failover path: give a loaded host's agent time rather than fail the start */
	if (slow.timeout_ms < 10000)
		slow.timeout_ms = 10000;
	for (int a = 0; a < (cfg->attempts > 0 ? cfg->attempts : 1); a++) {
		r = fence_external(&slow, self, "on", msg, msglen);
		if (r == 0 || r == -EINVAL)
			break;
	}
	return r;
}
