/* SPDX-License-Identifier: MIT */
/*
 * test_fence.c - fence agent options: what may reach an external
 * agent's stdin, how the agent is started, the host map, and the watchdog's
 * FIFO stand-in protocol.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cf_fence.h"
#include "cf_watchdog.h"

#include "unit_check.h"

static void test_args(void)
{
	struct cf_fence_cfg cfg;

	CHECK(cf_fence_parse(&cfg, "auto") == 0 && cfg.kind == CF_FENCE_AUTO);
	CHECK(cf_fence_parse(&cfg, "bogus") == -EINVAL);
	CHECK(cf_fence_arg_check("ipaddr=192.0.2.1") == 0);
	CHECK(cf_fence_arg_check("k=") == 0);
	CHECK(cf_fence_arg_check("=v") == -EINVAL);
	CHECK(cf_fence_arg_check("novalue") == -EINVAL);
	CHECK(cf_fence_arg_check("k=a=b") == -EINVAL);
	CHECK(cf_fence_arg_check("k=a\naction=on") == -EINVAL);
	CHECK(cf_fence_arg_check("k=a\r") == -EINVAL);
	memset(&cfg, 0, sizeof(cfg));
	CHECK(cf_fence_add_arg(&cfg, "k=a=b") == -EINVAL && cfg.nargs == 0);
	for (int i = 0; i < CF_FENCE_MAX_ARGS; i++)
		CHECK(cf_fence_add_arg(&cfg, "k=v") == 0);
	CHECK(cf_fence_add_arg(&cfg, "k=v") == -E2BIG);
}

static int map_from(struct cf_fence_cfg *cfg, const char *text, char *why, size_t whylen)
{
	char path[] = "/tmp/cf_fence_map_XXXXXX";
	int fd = mkstemp(path), r;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		close(fd);
		unlink(path);
		return -EIO;
	}
	close(fd);
	r = cf_fence_map_load(cfg, path, why, whylen);
	unlink(path);
	return r;
}

static void test_map(void)
{
	struct cf_fence_cfg cfg;
	const struct cf_fence_map_entry *e;
	char why[256];

	memset(&cfg, 0, sizeof(cfg));
	CHECK(map_from(&cfg, "# comment\n\nSYS2 plug=2 ipaddr=192.0.2.12\nhostC\tport=3 # tail\n", why, sizeof(why)) ==
	      0);
	CHECK(cfg.nmap == 2);
	e = cf_fence_map_find(&cfg, "SYS2", "hostC");
	CHECK(e && e->nargs == 2 && !strcmp(e->args[1], "ipaddr=192.0.2.12")); /* by name first */
	e = cf_fence_map_find(&cfg, "SYS9", "hostC");
	CHECK(e && e->nargs == 1 && !strcmp(e->args[0], "port=3"));
	CHECK(cf_fence_map_find(&cfg, "SYS9", "hostD") == NULL);
	cf_fence_map_free(&cfg);
	CHECK(map_from(&cfg, "SYS2 plug=2\nSYS3 login=x=y\n", why, sizeof(why)) == -EINVAL);
	CHECK(strstr(why, ":2: bad option 'login=x=y'") != NULL);
	CHECK(cfg.map == NULL && cfg.nmap == 0);
	CHECK(map_from(&cfg, "a=b port=1\n", why, sizeof(why)) == -EINVAL);
	CHECK(map_from(&cfg, "SYS2 noequals\n", why, sizeof(why)) == -EINVAL);
	CHECK(cf_fence_map_load(&cfg, "/nonexistent/map", why, sizeof(why)) == -ENOENT);
}

static void test_watchdog_fifo(void)
{
	char dir[] = "/tmp/cf_wd_XXXXXX", path[64], buf[16];
	struct cf_watchdog w;
	int rd, wr;
	ssize_t n;

	if (!mkdtemp(dir)) {
		CHECK(0);
		return;
	}
	snprintf(path, sizeof(path), "%s/wd", dir);
	CHECK(cf_watchdog_open(&w, dir, 1000) == -EINVAL);  /* a directory */
	CHECK(cf_watchdog_open(&w, path, 1000) == -ENOENT);
	CHECK(mkfifo(path, 0600) == 0);
	CHECK(cf_watchdog_open(&w, path, 1000) == -ENXIO);  /* nobody reads */
	CHECK(cf_watchdog_open(&w, path, 10) == -EINVAL);   /* timeout out of range */
	rd = open(path, O_RDONLY | O_NONBLOCK);
	CHECK(rd >= 0);
	CHECK(cf_watchdog_open(&w, path, 1000) == 0 && w.state == CF_WD_ARMED && w.timeout_ms == 1000);
	CHECK(cf_watchdog_pet(&w) == 0);
	n = read(rd, buf, sizeof(buf));
	CHECK(n == 2 && buf[0] == '.' && buf[1] == '.'); /* one at arming, one pet */
	CHECK(cf_watchdog_disarm(&w) == 0 && w.state == CF_WD_DISARMED);
	n = read(rd, buf, sizeof(buf));
	CHECK(n == 1 && buf[0] == 'V'); /* magic close */
	CHECK(cf_watchdog_pet(&w) == -EBADF);
	CHECK(cf_watchdog_disarm(&w) == 0); /* idempotent */
	/* a regular file is no watchdog */
	snprintf(path, sizeof(path), "%s/plain", dir);
	wr = open(path, O_CREAT | O_WRONLY, 0600);
	CHECK(wr >= 0);
	close(wr);
	CHECK(cf_watchdog_open(&w, path, 1000) == -EINVAL);
	unlink(path);
	snprintf(path, sizeof(path), "%s/wd", dir);
	unlink(path);
	close(rd);
	rmdir(dir);
}

/* Until pid's (main thread's) state is Z, for at most 2 s. */
static void wait_zombie(pid_t pid)
{
	for (int i = 0; i < 400; i++) {
		char path[64], st = 0;
		FILE *f;
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		f = fopen(path, "r");
		if (f && fscanf(f, "%*d %*s %c", &st) == 1 && st == 'Z') {
			fclose(f);
			return;
		}
		if (f)
			fclose(f);
		usleep(5000);
	}
}

/*
 * The local fence kills only a process of this same program, by this user,
 * with the start time recorded at JOIN (a member's JOIN names a pid
 * the CF cannot check). An unrelated process (sleep) with its true start time
 * is refused and lives; a target with no start time is refused; a child of
 * this program (fork, the same executable) is killed and its exit confirmed.
 */
static void test_local_identity(void)
{
	struct cf_fence_cfg cfg;
	struct cf_fence_target t;
	char msg[512];
	pid_t other, mine;
	int status;

	memset(&cfg, 0, sizeof(cfg));
	CHECK(cf_fence_parse(&cfg, "local") == 0);
	cfg.timeout_ms = 2000;
	other = fork();
	if (other == 0) {
		execlp("sleep", "sleep", "30", (char *)NULL);
		_exit(127);
	}
	mine = fork();
	if (mine == 0) {
		pause();
		_exit(0);
	}
	usleep(200000); /* the sleep has exec'd */
	memset(&t, 0, sizeof(t));
	strcpy(t.name, "SYSX");
	gethostname(t.host, sizeof(t.host) - 1);
	t.pid = (uint64_t)other;
	t.starttime = cf_proc_starttime(t.pid);
	CHECK(t.starttime != 0);
	CHECK(cf_fence_run(&cfg, &t, msg, sizeof(msg)) == -EPERM);
	CHECK(strstr(msg, "not a cfplex system process") && strstr(msg, "sleep"));
	CHECK(kill(other, 0) == 0); /* alive */
	t.starttime = 0;
	CHECK(cf_fence_run(&cfg, &t, msg, sizeof(msg)) == -EPERM && strstr(msg, "no process start time"));
	CHECK(kill(other, 0) == 0);
	t.pid = (uint64_t)mine;
	t.starttime = cf_proc_starttime(t.pid);
	CHECK(cf_fence_run(&cfg, &t, msg, sizeof(msg)) == 0 && strstr(msg, "killed, exit confirmed"));
	CHECK(waitpid(mine, &status, 0) == mine && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	kill(other, SIGKILL);
	waitpid(other, &status, 0);

	/*
	 * A system that died and is not reaped yet (its supervisor is slow) is a
	 * zombie: gone, though its executable can no longer be read. Fenced at
	 * once, not refused and retried a second later.
	 */
	mine = fork();
	if (mine == 0) {
		pause();
		_exit(0);
	}
	t.pid = (uint64_t)mine;
	t.starttime = cf_proc_starttime(t.pid);
	CHECK(t.starttime != 0);
	kill(mine, SIGKILL);
	wait_zombie(mine);
	CHECK(cf_fence_run(&cfg, &t, msg, sizeof(msg)) == 0 && strstr(msg, "already gone"));
	CHECK(waitpid(mine, &status, 0) == mine);
}

/*
 * The local fence confirms a killed process once every thread of it is
 * exiting (PF_EXITING), not only once its exit is complete: a system's exit
 * frees its memory first, 1-2 ms on a loaded small host. A live process is
 * not exiting; a killed one is, before it is reaped; a gone one counts as
 * exiting. A process with 256 MiB to free is confirmed through the flag,
 * while its memory is still being freed.
 */
static void *sleeper(void *arg)
{
	for (;;)
		pause();
	return arg;
}

static void test_exiting(void)
{
	struct cf_fence_cfg cfg;
	struct cf_fence_target t;
	char msg[512];
	int status, p[2];
	pid_t child;
	char c;

	child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	CHECK(!cf_fence_all_exiting((uint64_t)child)); /* alive (running or asleep: not exiting either way) */
	kill(child, SIGKILL);
	for (int i = 0; i < 400 && !cf_fence_all_exiting((uint64_t)child); i++)
		usleep(5000);
	CHECK(cf_fence_all_exiting((uint64_t)child)); /* a zombie now */
	CHECK(waitpid(child, &status, 0) == child);
	CHECK(cf_fence_all_exiting((uint64_t)child)); /* gone */

	memset(&cfg, 0, sizeof(cfg));
	CHECK(cf_fence_parse(&cfg, "local") == 0);
	cfg.timeout_ms = 5000;
	CHECK(pipe(p) == 0);
	child = fork();
	if (child == 0) {
		size_t n = 256u << 20; /* in small pages: their freeing takes a while */
		char *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			_exit(1);
		(void)madvise(m, n, MADV_NOHUGEPAGE);
		memset(m, 1, n);
		(void)!write(p[1], "r", 1);
		pause();
		_exit(0);
	}
	close(p[1]);
	CHECK(read(p[0], &c, 1) == 1); /* its memory is touched */
	close(p[0]);
	CHECK(!cf_fence_all_exiting((uint64_t)child));
	memset(&t, 0, sizeof(t));
	strcpy(t.name, "SYSY");
	gethostname(t.host, sizeof(t.host) - 1);
	t.pid = (uint64_t)child;
	t.starttime = cf_proc_starttime(t.pid);
	/* which comes first is the machine's business: tests/recovery/test_sentinel.sh sees the flag win */
	CHECK(cf_fence_run(&cfg, &t, msg, sizeof(msg)) == 0);
	CHECK(strstr(msg, "killed, exit confirmed (every thread exiting)") || strstr(msg, "killed, exit confirmed (exited)"));
	CHECK(waitpid(child, &status, 0) == child && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	/* a main thread gone (a zombie leader) while another thread lives: not exiting */
	CHECK(pipe(p) == 0);
	child = fork();
	if (child == 0) {
		pthread_t th;
		if (pthread_create(&th, NULL, sleeper, NULL))
			_exit(1);
		(void)!write(p[1], "r", 1);
		pthread_exit(NULL);
	}
	close(p[1]);
	CHECK(read(p[0], &c, 1) == 1);
	close(p[0]);
	wait_zombie(child); /* the leader */
	CHECK(!cf_fence_all_exiting((uint64_t)child));
	kill(child, SIGKILL);
	CHECK(waitpid(child, &status, 0) == child);
}

static char *slurp(const char *path)
{
	static char buf[8192];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return buf;
}

/*
 * An external agent: its options arrive on its stdin; it starts with an empty
 * signal mask and SIGPIPE/SIGTERM at their defaults whatever the caller set
 * (it is a program of its own, not a copy of the system); its exit status is
 * the answer; and an agent that is gone by the time of the fence says so.
 */
static void test_external(void)
{
	char dir[] = "/tmp/cf_fence_ext_XXXXXX", agent[96], out[96], sig[96], msg[512], *text;
	struct cf_fence_target t;
	struct cf_fence_cfg cfg;
	sigset_t block, old;
	FILE *f;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(agent, sizeof(agent), "%s/agent", dir);
	snprintf(out, sizeof(out), "%s/stdin", dir);
	snprintf(sig, sizeof(sig), "%s/sig", dir);
	f = fopen(agent, "w");
	CHECK(f != NULL);
	if (!f)
		return;
	fprintf(f, "#!/bin/sh\nd=$(dirname \"$0\")\ncat > \"$d/stdin\"\n"
		   "grep -E '^(SigBlk|SigIgn):' /proc/$$/status > \"$d/sig\"\n"
		   "[ -e \"$d/fail\" ] && exit 3\nexit 0\n");
	fclose(f);
	CHECK(chmod(agent, 0755) == 0);
	CHECK(cf_fence_parse(&cfg, agent) == 0 && cfg.kind == CF_FENCE_EXTERNAL);
	CHECK(cf_fence_add_arg(&cfg, "ipaddr=192.0.2.1") == 0);
	memset(&t, 0, sizeof(t));
	snprintf(t.name, sizeof(t.name), "SYS9");
	snprintf(t.host, sizeof(t.host), "hostZ");

	/* what the caller's thread set must not reach the agent */
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGTERM);
	CHECK(pthread_sigmask(SIG_BLOCK, &block, &old) == 0);
	signal(SIGPIPE, SIG_IGN);
	CHECK(cf_fence_run(&cfg, &t, msg, sizeof(msg)) == 0 && strstr(msg, "confirmed SYS9 off"));
	text = slurp(out);
	CHECK(text && !strcmp(text, "action=off\nplug=SYS9\nnodename=hostZ\nipaddr=192.0.2.1\n"));
	text = slurp(sig);
	/* SigBlk all zero; SigIgn without SIGPIPE (13, bit 0x1000) and SIGTERM (15, 0x4000) */
	CHECK(text && strstr(text, "SigBlk:\t0000000000000000"));
	if (text) {
		const char *ign = strstr(text, "SigIgn:");
		unsigned long long mask = ign ? strtoull(ign + 7, NULL, 16) : ~0ull;
		CHECK((mask & 0x5000ull) == 0);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	signal(SIGPIPE, SIG_DFL);

	/* its exit status is the answer */
	snprintf(sig, sizeof(sig), "%s/fail", dir);
	f = fopen(sig, "w");
	if (f)
		fclose(f);
	cfg.attempts = 1;
	CHECK(cf_fence_run(&cfg, &t, msg, sizeof(msg)) == -EIO && strstr(msg, "(exit 3)"));
	unlink(sig);

	/* removed after the options were checked: a clear error, no child left behind */
	CHECK(unlink(agent) == 0);
	CHECK(cf_fence_run(&cfg, &t, msg, sizeof(msg)) == -ENOENT && strstr(msg, "cannot be run"));
	CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
	unlink(out);
	snprintf(sig, sizeof(sig), "%s/sig", dir);
	unlink(sig);
	rmdir(dir);
}

int main(void)
{
	test_args();
	test_local_identity();
	test_external();
	test_exiting();
	test_map();
	test_watchdog_fifo();
	if (failures) {
		fprintf(stderr, "test_fence: %d failures\n", failures);
		return 1;
	}
	printf("test_fence: ok\n");
	return 0;
}
