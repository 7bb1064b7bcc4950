/* SPDX-License-Identifier: MIT */
#include "cf_notify.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void send_msg(const char *msg, size_t len)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@'))
		return;
	n = strlen(path);
	if (n >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, n);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = 0;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void)sendto(fd, msg, len, MSG_NOSIGNAL, (struct sockaddr *)&sa,
		     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
	close(fd);
}

void cf_notify_ready(void)
{
	send_msg("READY=1", 7);
}

void cf_notify_status(int ready, const char *fmt, ...)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf), "%sSTATUS=", ready ? "READY=1\n" : "");
	va_list ap;

	if (!getenv("NOTIFY_SOCKET") || n < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	for (char *p = buf + n; *p; p++)
		if (*p == '\n')
			*p = ' '; /* one STATUS line */
	send_msg(buf, strlen(buf));
}
