/* SPDX-License-Identifier: MIT */
#include "cf_fence.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

int cf_fence_add_arg(struct cf_fence_cfg *cfg, const char *kv)
{
	if (!strchr(kv, '=') || kv[0] == '=' || strchr(kv, '\n'))
		return -EINVAL;
	if (cfg->nargs >= CF_FENCE_MAX_ARGS)
		return -E2BIG;
	cfg->args[cfg->nargs++] = kv;
	return 0;
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

static int fence_local(const struct cf_fence_cfg *cfg, const struct cf_fence_target *t, char *msg, size_t len)
{
	char host[CF_HOST_MAX] = "";
	struct pollfd pfd;
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
	 * The pidfd pins this process. If its start time differs from the one
	 * recorded at join, the pid was reused: the system we must fence is gone.
	 */
	uint64_t st = cf_proc_starttime(t->pid);
	if (t->starttime && st != t->starttime) {
		close(fd);
		snprintf(msg, len, "%s (pid %llu) already gone (pid reused)", t->name, (unsigned long long)t->pid);
		return 0;
	}
	if (syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0) < 0 && errno != ESRCH) {
		r = -errno;
		close(fd);
		snprintf(msg, len, "SIGKILL %s (pid %llu): %s", t->name, (unsigned long long)t->pid, strerror(-r));
		return r;
	}
	/* The pidfd turns readable when the process has exited: our confirmation. */
	pfd.fd = fd;
	pfd.events = POLLIN;
	do
		r = poll(&pfd, 1, cfg->timeout_ms);
	while (r < 0 && errno == EINTR);
	close(fd);
	if (r == 0) {
		snprintf(msg, len, "%s (pid %llu) did not exit within %d ms of SIGKILL", t->name,
			 (unsigned long long)t->pid, cfg->timeout_ms);
		return -ETIMEDOUT;
	}
	if (r < 0)
		return -errno;
	snprintf(msg, len, "%s (pid %llu) killed, exit confirmed", t->name, (unsigned long long)t->pid);
	return 0;
}

static int fence_external(const struct cf_fence_cfg *cfg, const struct cf_fence_target *t, char *msg, size_t len)
{
	int in[2], status = 0, r;
	pid_t pid;
	uint64_t deadline;

	if (pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(in[0]);
		close(in[1]);
		return r;
	}
	if (pid == 0) {
		dup2(in[0], 0);
		execl(cfg->agent, cfg->agent, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	/* fence-agents convention: options on stdin, one key=value a line. */
	dprintf(in[1], "action=off\nplug=%s\nnodename=%s\n", t->name, t->host);
	for (int i = 0; i < cfg->nargs; i++)
		dprintf(in[1], "%s\n", cfg->args[i]);
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
		snprintf(msg, len, "fence agent %s confirmed %s off", cfg->agent, t->name);
		return 0;
	}
	snprintf(msg, len, "fence agent %s failed for %s (%s %d)", cfg->agent, t->name,
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
	for (int a = 0; a < (cfg->attempts > 0 ? cfg->attempts : 1); a++) {
		r = cfg->kind == CF_FENCE_EXTERNAL ? fence_external(cfg, t, msg, msglen) : fence_local(cfg, t, msg, msglen);
		/* A host we cannot reach does not come closer by retrying. */
		if (r == 0 || r == -EHOSTUNREACH || r == -EINVAL)
			break;
	}
	return r;
}
