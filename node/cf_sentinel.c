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
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct cf_sentinel_shm {
	pthread_mutex_t m; /* held by the owner thread; robust, process-shared */
	_Atomic int quiet; /* a clean stop: leave the connection alone */
};

/* How often the sentinel looks for a new connection to watch, and whether it was told to stop. */
#define TICK_NS 20000000L

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
 * The child: only system calls and the mutex from here on (forked from a
 * process that may have threads). Never returns.
 */
static void sentinel_main(struct cf_sentinel_shm *shm, int ctl, pid_t parent)
{
	struct sched_param sp = {.sched_priority = 10};
	int held = -1, devnull;

	(void)prctl(PR_SET_NAME, "cf-sentinel", 0, 0, 0);
	/* a terminal's ^C or a service manager's TERM is the system's to handle: it stops us quietly */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	/* keep nothing of the parent's open but ctl: its sockets must close when it closes them */
	if (ctl != 3) {
		if (dup2(ctl, 3) < 0)
			_exit(1);
		ctl = 3;
	}
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int i = 0; i < 3 && devnull >= 0; i++)
		(void)dup2(devnull, i);
	(void)syscall(SYS_close_range, 4u, ~0u, 0u);
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

int cf_sentinel_start(struct cf_sentinel *s)
{
	pthread_mutexattr_t ma;
	struct cf_sentinel_shm *shm;
	pid_t parent = getpid(), pid;
	int sv[2], r;

	s->shm = NULL;
	s->ctl = -1;
	s->pid = 0;
	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED)
		return -errno;
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
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(sv[0]);
		close(sv[1]);
		goto err_unlock;
	}
	if (pid == 0) {
		close(sv[0]);
		sentinel_main(shm, sv[1], parent);
	}
	close(sv[1]);
	s->shm = shm;
	s->ctl = sv[0];
	s->pid = pid;
	return 0;
err_unlock:
	pthread_mutex_unlock(&shm->m);
err_map:
	munmap(shm, sizeof(*shm));
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
