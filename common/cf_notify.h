/* SPDX-License-Identifier: MIT */
/*
 * cf_notify.h - systemd readiness (Type=notify) for the daemons, without
 * libsystemd: datagrams of "KEY=VALUE" lines to $NOTIFY_SOCKET.
 */
#ifndef CF_NOTIFY_H
#define CF_NOTIFY_H

/*
 * $NOTIFY_SOCKET is a filesystem or abstract (@) AF_UNIX address. Nothing
 * happens when it is unset; errors are ignored (a supervisor that asked and
 * cannot hear times the start out).
 */
void cf_notify_ready(void);
/* "READY=1" (ready != 0) and "STATUS=<text>": what `systemctl status` shows. */
void cf_notify_status(int ready, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
