/* SPDX-License-Identifier: MIT */
#include "cf_watchdog.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/watchdog.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

const char *cf_wd_state_str(enum cf_wd_state s)
{
	switch (s) {
	case CF_WD_CLOSED: return "closed";
	case CF_WD_ARMED: return "armed";
	case CF_WD_DISARMED: return "disarmed";
	}
	return "?";
}

int cf_watchdog_open(struct cf_watchdog *w, const char *path, uint32_t timeout_ms)
{
	struct stat st;
	int r, secs;

	memset(w, 0, sizeof(*w));
	w->fd = -1;
	if (timeout_ms < CF_WD_TIMEOUT_MIN_MS || timeout_ms > CF_WD_TIMEOUT_MAX_MS)
		return -EINVAL;
	if (stat(path, &st) < 0)
		return -errno;
	if (S_ISCHR(st.st_mode)) {
		w->chardev = true;
		w->fd = open(path, O_WRONLY | O_CLOEXEC);
		if (w->fd < 0)
			return -errno;
		secs = (int)((timeout_ms + 999u) / 1000u);
		if (ioctl(w->fd, WDIOC_SETTIMEOUT, &secs) < 0 || ioctl(w->fd, WDIOC_GETTIMEOUT, &secs) < 0) {
			r = -errno;
			goto err_disarm;
		}
		if (secs <= 0 || (uint32_t)secs > CF_WD_TIMEOUT_MAX_MS / 1000u) {
			r = -EINVAL;
			goto err_disarm;
		}
		w->timeout_ms = (uint32_t)secs * 1000u;
	} else if (S_ISFIFO(st.st_mode)) {
		/* non-blocking: a slow reader must never stall the heartbeat thread */
		w->fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (w->fd < 0)
			return -errno; /* ENXIO: nobody reads it */
		w->timeout_ms = timeout_ms;
	} else
		return -EINVAL;
	w->state = CF_WD_ARMED;
	r = cf_watchdog_pet(w);
	if (r < 0)
		goto err_disarm;
	return 0;
err_disarm:
	/* opened but unusable: disarm rather than leave it to fire */
	if (write(w->fd, "V", 1) < 0) {
		/* nothing more to do: closing follows */
	}
	close(w->fd);
	w->fd = -1;
	w->state = CF_WD_CLOSED;
	return r;
}

int cf_watchdog_pet(struct cf_watchdog *w)
{
	ssize_t n;

	if (w->state != CF_WD_ARMED)
		return -EBADF;
	n = write(w->fd, ".", 1);
	if (n == 1) {
		w->pets++;
		return 0;
	}
	w->pet_errors++;
	return n < 0 ? -errno : -EIO;
}

int cf_watchdog_disarm(struct cf_watchdog *w)
{
	int r = 0;

	if (w->state != CF_WD_ARMED)
		return 0;
	if (write(w->fd, "V", 1) != 1)
		r = -errno;
	close(w->fd);
	w->fd = -1;
	w->state = CF_WD_DISARMED;
	return r;
}
