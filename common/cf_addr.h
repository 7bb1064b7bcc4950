/* SPDX-License-Identifier: MIT */
/*
 * cf_addr.h - parse "host:port" (and "[v6addr]:port") for both transports.
 * Pure: no name resolution, no sockets.
 */
#ifndef CF_ADDR_H
#define CF_ADDR_H

#include <stddef.h>
#include <stdint.h>

#define CF_ADDR_HOST_MAX 256u

/*
 * Split s into host (NUL-terminated, brackets of an IPv6 literal removed) and
 * port. 0, or -EINVAL when the text is malformed (no colon, empty host, port
 * not a decimal in 0..65535), -ENAMETOOLONG when host does not fit hostcap.
 */
int cf_addr_split(const char *s, char *host, size_t hostcap, uint16_t *port);

/*
 * A listening tcp socket on "host:port" (empty host: every address; port 0: any
 * free one), SO_REUSEADDR, with the extra socket type flags given (SOCK_NONBLOCK,
 * SOCK_CLOEXEC). Returns the fd and the bound port in *bound, or -errno
 * (-EADDRNOTAVAIL for a host that does not resolve).
 */
int cf_addr_listen(const char *addr, int type_flags, int backlog, int *bound);

#endif
