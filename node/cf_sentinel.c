/* SPDX-License-Identifier: MIT */
/*
 * cf_sentinel.c - the sentinel process (cf_sentinel.h).
 */
#include "cf_sentinel.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cf_session.h"
#include "cf_slog.h"
#include "cf_proc.h"
#include "cf_util.h"

struct cf_sentinel_shm {
	pthread_mutex_t m; /* held by the owner thread; robust, process-shared */
	_Atomic int quiet; /* a clean stop: say nothing to the CF */
};

/* How often the sentinel looks for a new target, and whether it was told to stop. */
#define TICK_NS 20000000L
/* How long it waits for the CF's answer to DIED before it exits (the CF acts on arrival). */
#define DIED_WAIT_MS 1000
/* How long a clean stop waits for it before it is killed. */
#define STOP_WAIT_MS 200
/* the fds the child finds its end of the socketpair and the memfd on */
#define CTL_FD 3
#define SHM_FD 4

/* The newest target the owner sent (ctl is a SOCK_SEQPACKET): 1 if one came, 0 if none, or -errno (-EPIPE: closed). */
static int recv_target(int ctl, struct cf_sentinel_target *t)
{
	struct cf_sentinel_target in;
	int got = 0;
	ssize_t n;

	while ((n = recv(ctl, &in, sizeof(in), MSG_DONTWAIT)) == (ssize_t)sizeof(in)) {
		*t = in;
		got = 1;
	}
	if (n == 0)
		return -EPIPE;
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
		return -errno;
	return got; /* a message of another size is not ours: dropped */
}

/* Log as the system does (the target's IDENT, level and prefix), on the system's stderr. */
static void log_as(const struct cf_sentinel_target *t)
{
	static char ident[sizeof(t->log_ident)];

	memcpy(ident, t->log_ident, sizeof(ident));
	ident[sizeof(ident) - 1] = 0;
	if (ident[0])
		cf_slog_set_ident(ident);
	if (t->log_level >= CF_SLOG_ERR && t->log_level <= CF_SLOG_DEBUG)
		cf_slog_level = t->log_level;
	if (t->log_prefix)
		cf_slog_force_prefix();
}

/* Connect to t's CF as the incarnation's sentinel. true if attached. */
static bool attach(struct cf_session *ss, const struct cf_sentinel_target *t)
{
	const char *why;
	int r;

	r = cf_session_open(ss, t->transport, t->addr, t->key, CF_ROLE_SYSTEM, t->connect_timeout_ms);
	if (!r)
		r = cf_session_sentinel(ss, t->sys, t->epoch, t->token);
	if (!r)
		return true;
	why = cf_session_error_msg(ss);
	/* -EPERM: the incarnation ended while we connected (a short life, a clean leave): nothing to watch */
	cf_slog(r == -EPERM ? CF_SLOG_INFO : CF_SLOG_WARN,
		"sentinel: cannot watch system %u epoch %u at %s (%s): %s%s%s; its death is seen when its connections close",
		t->sys, t->epoch, t->addr, t->transport, strerror(-r), why ? ": " : "", why ? why : "");
	cf_session_close(ss);
	return false;
}

/*
 * The child's loop, in the program posix_spawn started (cf_sentinel_child).
 * Never returns.
 */
static void sentinel_main(struct cf_sentinel_shm *shm, int ctl, pid_t parent)
{
	static struct cf_session ss;
	static struct cf_sentinel_target t;
	struct sched_param sp = {.sched_priority = 10};
	bool attached = false;

	/* woken by the owner's death, it must run at once (as the heartbeat thread does) */
	(void)sched_setscheduler(0, SCHED_FIFO, &sp);
	for (;;) {
		struct timespec ts;
		int r;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += TICK_NS;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		r = pthread_mutex_timedlock(&shm->m, &ts);
		if (r == EOWNERDEAD || (r == ETIMEDOUT && getppid() != parent)) {
			/* the owner thread is exiting: the system is dead, tell the CF now */
			if (!atomic_load(&shm->quiet) && attached) {
				r = cf_session_died(&ss, DIED_WAIT_MS);
				/* a lost connection after the send is the usual end: the failure fenced it */
				if (r < 0 && !cf_conn_lost(r))
					cf_slog_warn("sentinel: DIED for system %u epoch %u: %s", t.sys, t.epoch, strerror(-r));
			}
			_exit(0);
		}
		if (r == 0 || atomic_load(&shm->quiet))
			_exit(0); /* unlocked by its owner: a clean stop */
		if (r != ETIMEDOUT)
			_exit(1); /* the mutex is unusable: the system works without us */
		r = recv_target(ctl, &t);
		if (r == 1) {
			log_as(&t);
			if (attached)
				cf_session_close(&ss);
			attached = attach(&ss, &t);
			explicit_bzero(t.key, sizeof(t.key)); /* the next target brings it again */
		}
		if (r == -EPIPE && atomic_load(&shm->quiet))
			_exit(0);
	}
}

int cf_sentinel_child(int argc, char **argv)
{
	struct cf_sentinel_shm *shm;
	char *end;
	long parent;
	int devnull;

	/* its own name until a target names the system it watches (log_as) */
	cf_slog_init("cf-sentinel");
	parent = argc == 3 && !strcmp(argv[1], CF_SENTINEL_ARG) ? strtol(argv[2], &end, 10) : 0;
	if (parent <= 1 || *end || fcntl(SHM_FD, F_GETFD) < 0 || fcntl(CTL_FD, F_GETFD) < 0) {
		cf_slog_usage("%s is the program's own sentinel (cf_sentinel.h), started by itself: not an option",
			      CF_SENTINEL_ARG);
		return 2;
	}
	(void)prctl(PR_SET_NAME, "cf-sentinel", 0, 0, 0);
	/* a terminal's ^C or a service manager's TERM is the system's to handle: it stops us quietly */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED, SHM_FD, 0);
	if (shm == MAP_FAILED) {
		/* stderr is still the system's: its log says why it runs without a sentinel */
		cf_slog_warn("cannot map the owner's mutex: %s; the system goes on without a sentinel", strerror(errno));
		return 1;
	}
	/* keep nothing of the system's open but ctl and stderr (its log) */
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int i = 0; i < 2 && devnull >= 0; i++)
		(void)dup2(devnull, i);
	(void)syscall(SYS_close_range, (unsigned)CTL_FD + 1u, ~0u, 0u);
	sentinel_main(shm, CTL_FD, (pid_t)parent);
	return 1;
}

/*
 * Not fork(): a fork write-protects every private page of the system (its
 * buffers, its heap, the application's memory) for as long as the child
 * lives. Every first write to each page afterwards is a copy-on-write fault
 * with a TLB shootdown of the other CPUs, and the child keeps the old copy:
 * the system's memory would double as it is written. A failover's 64 KiB log
 * READ into the JOIN session's input buffer took 0.5-1 ms of such faults.
 * posix_spawn shares nothing after the exec of this very program
 * (/proc/self/exe), which hands the arguments to cf_sentinel_child(); the
 * mutex lives in a memfd the child maps, its targets come over ctl.
 */
int cf_sentinel_start(struct cf_sentinel *s)
{
	pthread_mutexattr_t ma;
	struct cf_sentinel_shm *shm;
	char pidarg[24];
	char *argv[] = {"cf-sentinel", CF_SENTINEL_ARG, pidarg, NULL};
	int sv[2] = {-1, -1}, mfd, pid, r;

	s->shm = NULL;
	s->ctl = -1;
	s->pid = 0;
	mfd = memfd_create("cf-sentinel", MFD_CLOEXEC);
	if (mfd < 0)
		return -errno;
	if (ftruncate(mfd, sizeof(*shm)) < 0) {
		r = -errno;
		close(mfd);
		return r;
	}
	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (shm == MAP_FAILED) {
		r = -errno;
		close(mfd);
		return r;
	}
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	r = -pthread_mutex_init(&shm->m, &ma);
	pthread_mutexattr_destroy(&ma);
	if (r)
		goto err_map;
	atomic_store(&shm->quiet, 0);
	if ((r = -pthread_mutex_lock(&shm->m)))
		goto err_map;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		r = -errno;
		goto err_unlock;
	}
	snprintf(pidarg, sizeof(pidarg), "%ld", (long)getpid());
	{
		int fds[SHM_FD + 1] = {-1, -1, STDERR_FILENO, [CTL_FD] = sv[1], [SHM_FD] = mfd};
		r = cf_spawn("/proc/self/exe", argv, fds, SHM_FD + 1, &pid);
	}
	if (r)
		goto err_fds;
	close(sv[1]);
	close(mfd);
	s->shm = shm;
	s->ctl = sv[0];
	s->pid = pid;
	return 0;
err_fds:
	close(sv[0]);
	close(sv[1]);
err_unlock:
	pthread_mutex_unlock(&shm->m);
err_map:
	munmap(shm, sizeof(*shm));
	close(mfd);
	return r;
}

int cf_sentinel_watch(struct cf_sentinel *s, const struct cf_sentinel_target *t)
{
	if (!s->shm || !t)
		return -EINVAL;
	return send(s->ctl, t, sizeof(*t), MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)sizeof(*t) ? 0 : -errno;
}

void cf_sentinel_stop(struct cf_sentinel *s)
{
	bool unlocked;

	if (!s->shm)
		return;
	atomic_store(&s->shm->quiet, 1);
	/*
	 * From another thread than the owner this fails (EPERM): the sentinel
	 * sees quiet at its next tick. The mutex then stays on the owner's
	 * robust list, so its page stays mapped (one page, till the process ends).
	 */
	unlocked = pthread_mutex_unlock(&s->shm->m) == 0;
	close(s->ctl);
	/*
	 * It leaves within a tick, unless it is connecting to a CF that does not
	 * answer (up to the connect bound): quiet, its end means nothing to the
	 * CF, so it is not waited for.
	 */
	for (int i = 0; waitpid(s->pid, NULL, WNOHANG) == 0; i++) {
		if (i == STOP_WAIT_MS) {
			kill(s->pid, SIGKILL);
			while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
				;
			break;
		}
		usleep(1000);
	}
	if (unlocked)
		munmap(s->shm, sizeof(*s->shm));
	s->shm = NULL;
	s->ctl = -1;
	s->pid = 0;
}
