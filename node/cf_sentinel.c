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
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cf_util.h"

struct cf_sentinel_shm {
	pthread_mutex_t m; /* held by the owner thread; robust, process-shared */
	_Atomic int quiet; /* a clean stop: leave the connection alone */
};

/* How often the sentinel looks for a new connection to watch, and whether it was told to stop. */
#define TICK_NS 20000000L
/* the fds the child finds its end of the socketpair and the memfd on */
#define CTL_FD 3
#define SHM_FD 4

static int recv_fd(int ctl, int *fd)
{
	char byte, cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm;
	ssize_t n = recvmsg(ctl, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n <= 0)
		return n == 0 ? -EPIPE : -errno;
	cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
		return -EBADMSG;
	memcpy(fd, CMSG_DATA(cm), sizeof(int));
	return 0;
}

/*
 * The child's loop, in the program posix_spawn started (cf_sentinel_child).
 * Never returns.
 */
static void sentinel_main(struct cf_sentinel_shm *shm, int ctl, pid_t parent)
{
	struct sched_param sp = {.sched_priority = 10};
	int held = -1;

	/* woken by the owner's death, it must run at once (as the heartbeat thread does) */
	(void)sched_setscheduler(0, SCHED_FIFO, &sp);
	for (;;) {
		struct timespec ts;
		int r, fd = -1;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += TICK_NS;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		r = pthread_mutex_timedlock(&shm->m, &ts);
		if (r == EOWNERDEAD || (r == ETIMEDOUT && getppid() != parent)) {
			/* the owner thread is exiting: the system is dead, tell the CF now */
			if (!atomic_load(&shm->quiet) && held >= 0)
				(void)shutdown(held, SHUT_RDWR);
			_exit(0);
		}
		if (r == 0 || atomic_load(&shm->quiet))
			_exit(0); /* unlocked by its owner: a clean stop */
		if (r != ETIMEDOUT)
			_exit(1); /* the mutex is unusable: the system works without us */
		while ((r = recv_fd(ctl, &fd)) == 0) {
			if (held >= 0)
				close(held);
			held = fd;
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

	parent = argc == 3 && !strcmp(argv[1], CF_SENTINEL_ARG) ? strtol(argv[2], &end, 10) : 0;
	if (parent <= 1 || *end || fcntl(SHM_FD, F_GETFD) < 0 || fcntl(CTL_FD, F_GETFD) < 0) {
		fprintf(stderr, "%s is the program's own sentinel (cf_sentinel.h), started by itself: not an option\n",
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
		fprintf(stderr, "cf-sentinel: cannot map the owner's mutex: %s; the system goes on without it\n",
			strerror(errno));
		return 1;
	}
	/* keep nothing open but ctl: the system's sockets must close when it closes them */
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int i = 0; i < 3 && devnull >= 0; i++)
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
 * mutex lives in a memfd the child maps, the connection comes over ctl.
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
		int fds[SHM_FD + 1] = {-1, -1, -1, [CTL_FD] = sv[1], [SHM_FD] = mfd};
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

int cf_sentinel_watch(struct cf_sentinel *s, int fd)
{
	char byte = 0, cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm;

	if (!s->shm || fd < 0)
		return -EINVAL;
	memset(cbuf, 0, sizeof(cbuf));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(s->ctl, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) == 1 ? 0 : -errno;
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
	while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (unlocked)
		munmap(s->shm, sizeof(*s->shm));
	s->shm = NULL;
	s->ctl = -1;
	s->pid = 0;
}
