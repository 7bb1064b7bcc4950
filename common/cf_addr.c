/* SPDX-License-Identifier: MIT */
#include "cf_addr.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int cf_addr_split(const char *s, char *host, size_t hostcap, uint16_t *port)
{
	const char *h, *colon, *p;
	size_t hlen;
	unsigned long v = 0;

	if (!s || !host || !port || hostcap == 0)
		return -EINVAL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -EINVAL; /* bare IPv6 needs brackets */
		h = s;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0)
		return -EINVAL;
	if (hlen >= hostcap)
		return -ENAMETOOLONG;
	p = colon + 1;
	if (*p == '\0' || strlen(p) > 5)
		return -EINVAL;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 65535)
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (uint16_t)v;
	return 0;
}

int cf_addr_listen(const char *addr, int type_flags, int backlog, int *bound)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[CF_ADDR_HOST_MAX], port[8];
	uint16_t pnum;
	int fd, r, one = 1;

	r = cf_addr_split(addr, host, sizeof(host), &pnum);
	if (r < 0)
		return r;
	snprintf(port, sizeof(port), "%u", (unsigned)pnum);
	r = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (r)
		return r == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;
	fd = socket(res->ai_family, SOCK_STREAM | type_flags, 0);
	if (fd < 0) {
		r = -errno;
		freeaddrinfo(res);
		return r;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, backlog) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		r = -errno;
		freeaddrinfo(res);
		close(fd);
		return r;
	}
	freeaddrinfo(res);
	*bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						: ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}
