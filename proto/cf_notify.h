/* SPDX-License-Identifier: MIT */
/*
 * cf_notify.h - systemd readiness (Type=notify) for the daemons, without
 * libsystemd: one datagram "READY=1" to $NOTIFY_SOCKET.
 */
#ifndef CF_NOTIFY_H
#define CF_NOTIFY_H

/*
 * $NOTIFY_SOCKET is a filesystem or abstract (@) AF_UNIX address. Nothing
 * happens when it is unset; errors are ignored (a supervisor that asked and
 * cannot hear times the start out).
 */
void cf_notify_ready(void);

#endif
